//! CPU reference of STFT/iSTFT: rustfft plans shared by all frames, rayon over (batch, frame).

use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use rustfft::FftPlanner;

use super::StftOpts;
use crate::{Result, Tensor};

/// Index into the reflect-padded signal (torch 'reflect': no edge repeat). Needs pad < len.
#[inline(always)]
pub(super) fn reflect(j: isize, len: usize) -> usize {
    let l = len as isize;
    let j = if j < 0 { -j } else { j };
    (if j >= l { 2 * (l - 1) - j } else { j }) as usize
}

pub(super) fn stft(x: &[f32], batch: usize, len: usize, o: &StftOpts, shape: &[usize]) -> Result<Tensor> {
    let (n, nf, nt) = (o.n_fft, o.n_freq(), o.n_frames(len));
    let w = o.window();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
    let pad = (n / 2) as isize;
    // (batch, frame, freq) complex first, then transposed to planes.
    let mut tmp = vec![Complex32::new(0.0, 0.0); batch * nt * nf];
    tmp.par_chunks_mut(nf).enumerate().for_each_init(
        || (vec![Complex32::new(0.0, 0.0); n], vec![Complex32::new(0.0, 0.0); fft.get_inplace_scratch_len()]),
        |(buf, scratch), (bt, row)| {
            let (b, t) = (bt / nt, bt % nt);
            let xs = &x[b * len..(b + 1) * len];
            let s = (t * o.hop) as isize - pad;
            for i in 0..n {
                buf[i] = Complex32::new(xs[reflect(s + i as isize, len)] * w[i], 0.0);
            }
            fft.process_with_scratch(buf, scratch);
            row.copy_from_slice(&buf[..nf]);
        },
    );
    let mut out = vec![0f32; batch * 2 * nf * nt];
    out.par_chunks_mut(nt).enumerate().for_each(|(r, o_row)| {
        let k = r % nf;
        let plane = (r / nf) % 2;
        let b = r / (2 * nf);
        for (t, y) in o_row.iter_mut().enumerate() {
            let c = tmp[(b * nt + t) * nf + k];
            *y = if plane == 0 { c.re } else { c.im };
        }
    });
    Tensor::from_vec(out, shape)
}

pub(super) fn istft(spec: &[f32], batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize]) -> Result<Tensor> {
    let (n, nf) = (o.n_fft, o.n_freq());
    let w = o.window();
    let ifft = FftPlanner::<f32>::new().plan_fft_inverse(n);
    // windowed time frames (batch, frame, n)
    let mut frames = vec![0f32; batch * nt * n];
    frames.par_chunks_mut(n).enumerate().for_each_init(
        || (vec![Complex32::new(0.0, 0.0); n], vec![Complex32::new(0.0, 0.0); ifft.get_inplace_scratch_len()]),
        |(buf, scratch), (bt, fr)| {
            let (b, t) = (bt / nt, bt % nt);
            let base = b * 2 * nf * nt;
            for k in 0..nf {
                let re = spec[base + k * nt + t];
                // irfft ignores the imaginary part of the DC and Nyquist bins
                let im = if k == 0 || (n % 2 == 0 && k == n / 2) { 0.0 } else { spec[base + (nf + k) * nt + t] };
                buf[k] = Complex32::new(re, im);
            }
            for k in nf..n {
                buf[k] = buf[n - k].conj();
            }
            ifft.process_with_scratch(buf, scratch);
            let inv = 1.0 / n as f32;
            for i in 0..n {
                fr[i] = buf[i].re * inv * w[i];
            }
        },
    );
    let expected = n + o.hop * (nt - 1);
    let start = n / 2;
    let mut out = vec![0f32; batch * len];
    out.par_chunks_mut(len).enumerate().for_each(|(b, y)| {
        for (j, yj) in y.iter_mut().enumerate() {
            let p = j + start;
            if p >= expected {
                break; // torch pads with zeros past the frames
            }
            let t_lo = if p + 1 > n { (p + 1 - n).div_ceil(o.hop) } else { 0 };
            let t_hi = (p / o.hop).min(nt - 1);
            let (mut s, mut e) = (0f32, 0f32);
            for t in t_lo..=t_hi {
                let i = p - t * o.hop;
                s += frames[(b * nt + t) * n + i];
                e += w[i] * w[i];
            }
            *yj = s / e;
        }
    });
    Tensor::from_vec(out, shape)
}

/// The window-sum-square envelope at padded position `p` (< n_fft + hop·(nt − 1)), summed in f32
/// over the covering frames in the order of [`istft`]'s overlap-add (so the backward divides by
/// the very value the forward divided by).
#[inline]
pub(super) fn envelope_at(p: usize, w: &[f32], hop: usize, nt: usize) -> f32 {
    let n = w.len();
    let t_lo = if p + 1 > n { (p + 1 - n).div_ceil(hop) } else { 0 };
    let t_hi = (p / hop).min(nt - 1);
    let mut e = 0f32;
    for t in t_lo..=t_hi {
        let i = p - t * hop;
        e += w[i] * w[i];
    }
    e
}

/// Adjoint of [`istft`]: `grad` (batch, len) → d spec (batch, 2, F, nt). Per frame t the windowed
/// slice u = w · g'[t·hop ..][..N] of the envelope-divided, uncropped gradient g' goes through a
/// forward FFT: dRe[k] = c_k/N·Re U[k], dIm[k] = c_k/N·Im U[k] (c_k = 2 except k = 0 and the
/// Nyquist bin of an even N, where c_k = 1 and dIm = 0).
pub(super) fn istft_bwd(grad: &[f32], batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize]) -> Result<Tensor> {
    let (n, nf, hop) = (o.n_fft, o.n_freq(), o.hop);
    let w = o.window();
    let expected = n + hop * (nt - 1);
    let start = n / 2;
    // g'[b, p] = grad[b, p − N/2] / env[p] on the kept samples, 0 elsewhere.
    let mut gp = vec![0f32; batch * expected];
    gp.par_chunks_mut(expected).enumerate().for_each(|(b, row)| {
        let g = &grad[b * len..(b + 1) * len];
        for (p, v) in row.iter_mut().enumerate().skip(start) {
            let j = p - start;
            if j >= len {
                break;
            }
            *v = g[j] / envelope_at(p, &w, hop, nt);
        }
    });
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
    // (batch, frame, freq) complex first, then transposed to planes (as the forward STFT).
    let mut tmp = vec![Complex32::new(0.0, 0.0); batch * nt * nf];
    tmp.par_chunks_mut(nf).enumerate().for_each_init(
        || (vec![Complex32::new(0.0, 0.0); n], vec![Complex32::new(0.0, 0.0); fft.get_inplace_scratch_len()]),
        |(buf, scratch), (bt, row)| {
            let (b, t) = (bt / nt, bt % nt);
            let g = &gp[b * expected + t * hop..][..n];
            for i in 0..n {
                buf[i] = Complex32::new(g[i] * w[i], 0.0);
            }
            fft.process_with_scratch(buf, scratch);
            for (k, y) in row.iter_mut().enumerate() {
                let edge = k == 0 || (n % 2 == 0 && k == n / 2);
                let c = if edge { 1.0 } else { 2.0 };
                let u = buf[k];
                *y = Complex32::new(u.re * c / n as f32, if edge { 0.0 } else { u.im * c / n as f32 });
            }
        },
    );
    let mut out = vec![0f32; batch * 2 * nf * nt];
    out.par_chunks_mut(nt).enumerate().for_each(|(r, o_row)| {
        let k = r % nf;
        let plane = (r / nf) % 2;
        let b = r / (2 * nf);
        for (t, y) in o_row.iter_mut().enumerate() {
            let c = tmp[(b * nt + t) * nf + k];
            *y = if plane == 0 { c.re } else { c.im };
        }
    });
    Tensor::from_vec(out, shape)
}

/// The STFT's adjoint (`super::stft_bwd`): per frame w·Re(inverse DFT of the F gradient bins, the
/// other bins zero) (rustfft, rayon over (batch, frame)), then per item the overlap-add into the
/// padded signal and the reflect padding folded back (sequential in a fixed order: deterministic).
pub(super) fn stft_bwd(g: &[f32], batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize]) -> Result<Tensor> {
    let (n, nf) = (o.n_fft, o.n_freq());
    let w = o.window();
    let ifft = FftPlanner::<f32>::new().plan_fft_inverse(n);
    let mut frames = vec![0f32; batch * nt * n];
    frames.par_chunks_mut(n.max(1)).enumerate().for_each_init(
        || (vec![Complex32::new(0.0, 0.0); n], vec![Complex32::new(0.0, 0.0); ifft.get_inplace_scratch_len()]),
        |(buf, scratch), (bt, fr)| {
            let (b, t) = (bt / nt, bt % nt);
            let gb = &g[b * 2 * nf * nt..];
            buf.iter_mut().for_each(|c| *c = Complex32::new(0.0, 0.0));
            for k in 0..nf {
                buf[k] = Complex32::new(gb[k * nt + t], gb[(nf + k) * nt + t]);
            }
            // Unnormalised inverse: Σ_k Z_k e^{+2πikn/N}; its real part is Σ (Gre cos − Gim sin).
            ifft.process_with_scratch(buf, scratch);
            for (i, v) in fr.iter_mut().enumerate() {
                *v = w[i] * buf[i].re;
            }
        },
    );
    let pad = (n / 2) as isize;
    let mut out = vec![0f32; batch * len];
    out.par_chunks_mut(len.max(1)).enumerate().for_each(|(b, dx)| {
        for t in 0..nt {
            let fr = &frames[(b * nt + t) * n..][..n];
            let s = (t * o.hop) as isize - pad;
            for (i, &v) in fr.iter().enumerate() {
                dx[reflect(s + i as isize, len)] += v;
            }
        }
    });
    Tensor::from_vec(out, shape)
}
