//! CPU reference of the log-mel spectrogram: rayon over chunks of frames (all signals' frames in one
//! list), one rustfft plan of n_fft points (any size: 800 = 2⁵·5² runs rustfft's mixed radix), two real
//! frames per complex FFT, the mel filters applied sparsely (each filter's non-zero bin range).
//!
//! The frame arithmetic (window, FFT, power, mel sums, ln) is in f64, so this is a reference for the
//! f32 kernels: on the golden clips it equals torch.stft + librosa run in float64 after rounding to
//! f32 (torch's own float32 run is up to 1e-4 away on a pure tone).
//!
//! Sparse vs GEMM for the mel projection, measured here (M2D, 10 s = 1001 frames, 2 busy cores, test
//! profile, medians of 30): M2D's Slaney bank has 777 non-zero weights out of 80 × 401 = 32 080 (each
//! bin lies in at most two triangles), so the sparse sums cost 777 multiply-adds per frame, and the
//! whole op took 5.8 ms — about what the FFTs and power spectra alone took (3.1–5.3 ms, the noise of
//! a shared machine). Keeping the (1001, 401) power matrix and applying the bank as one f64 GEMM (the
//! `gemm` crate, rayon) then ln took 8.6 ms: 41× the arithmetic, and the power matrix goes through
//! memory instead of staying in L1 one frame at a time. Sparse it is; the ln (f64, 80 080 values)
//! is ~0.35 ms of one core's time.

use rayon::prelude::*;
use rustfft::FftPlanner;

use super::{reflect, MelPlan};
use crate::power_pair::PowerPair;
use crate::{Result, Tensor};

/// Frames per rayon task.
const FRAMES_PER_TASK: usize = 32;

/// Frame t of signal `x` (reflect-padded by n_fft/2), windowed, zero-padded to n_fft, into `out`.
#[inline(always)]
fn prepare_frame(x: &[f32], t: usize, plan: &MelPlan, out: &mut [f64]) {
    let o = &plan.opts;
    let (left, wl) = (plan.left, o.win_length);
    // First sample of the window in the unpadded signal (may be negative or run past the end).
    let s0 = (t * o.hop + left) as isize - (o.n_fft / 2) as isize;
    out[..left].fill(0.0);
    out[left + wl..].fill(0.0);
    let dst = &mut out[left..left + wl];
    if s0 >= 0 && s0 as usize + wl <= x.len() {
        let src = &x[s0 as usize..s0 as usize + wl];
        for ((d, &v), &w) in dst.iter_mut().zip(src).zip(&plan.window) {
            *d = v as f64 * w;
        }
    } else {
        for (i, (d, &w)) in dst.iter_mut().zip(&plan.window).enumerate() {
            *d = x[reflect(s0 + i as isize, x.len())] as f64 * w;
        }
    }
}

/// Mel projection of one power spectrum, log, into `out` (n_mels values).
#[inline(always)]
fn mel_log(power: &[f64], plan: &MelPlan, out: &mut [f32]) {
    let s = &plan.sparse;
    let offset = plan.opts.log_offset as f64;
    for (m, y) in out.iter_mut().enumerate() {
        let (st, l, off) = (s.start[m] as usize, s.len[m] as usize, s.offset[m] as usize);
        let e: f64 = s.weights[off..off + l].iter().zip(&power[st..st + l]).map(|(&w, &p)| w as f64 * p).sum();
        *y = (e + offset).ln() as f32;
    }
}

/// Log-mel of frames a and (optionally) b with one complex FFT of z = a + i·b: for 0 < k < n,
/// A[k] = (Z[k] + conj Z[n−k]) / 2 and B[k] = (Z[k] − conj Z[n−k]) / 2i, so
/// |A[k]|² = |Z[k] + conj Z[n−k]|² / 4 and |B[k]|² = |Z[k] − conj Z[n−k]|² / 4 (k = 0: Re², Im²).
#[inline(always)]
fn frame_pair(fft: &dyn rustfft::Fft<f64>, plan: &MelPlan, w: &mut PowerPair, oa: &mut [f32], ob: Option<&mut [f32]>) {
    w.run(fft);
    mel_log(&w.pa, plan, oa);
    if let Some(ob) = ob {
        mel_log(&w.pb, plan, ob);
    }
}

/// The frames `g0 .. g0 + rows` of the flattened (signal, frame) list into `chunk` (rows of n_mels).
#[inline(always)]
fn task_frames(x: &[f32], len: usize, plan: &MelPlan, fft: &dyn rustfft::Fft<f64>, w: &mut PowerPair, g0: usize, chunk: &mut [f32]) {
    let nm = plan.opts.n_mels;
    let nt = plan.opts.n_frames(len);
    let signal = |g: usize| &x[(g / nt) * len..(g / nt + 1) * len];
    for (j, rows2) in chunk.chunks_mut(2 * nm).enumerate() {
        let g = g0 + 2 * j;
        prepare_frame(signal(g), g % nt, plan, &mut w.ra);
        if rows2.len() == 2 * nm {
            prepare_frame(signal(g + 1), (g + 1) % nt, plan, &mut w.rb);
            let (ra, rb) = rows2.split_at_mut(nm);
            frame_pair(fft, plan, w, ra, Some(rb));
        } else {
            w.rb.fill(0.0);
            frame_pair(fft, plan, w, rows2, None);
        }
    }
}

/// [`task_frames`] compiled for AVX2 + FMA (the build targets baseline x86-64): the window, power and
/// mel loops vectorise 4-wide in f64. Chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn frames_avx2(x: &[f32], len: usize, plan: &MelPlan, fft: &dyn rustfft::Fft<f64>, w: &mut PowerPair, g0: usize, chunk: &mut [f32]) {
    task_frames(x, len, plan, fft, w, g0, chunk)
}

pub(super) fn log_mel(x: &[f32], batch: usize, len: usize, plan: &MelPlan, shape: &[usize]) -> Result<Tensor> {
    let (n, nm) = (plan.opts.n_fft, plan.opts.n_mels);
    let nt = plan.opts.n_frames(len);
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    // (signal, frame, mel) first, then transposed to (signal, mel, frame).
    let mut tmp = vec![0f32; batch * nt * nm];
    tmp.par_chunks_mut(FRAMES_PER_TASK * nm).enumerate().for_each(|(c, chunk)| {
        let mut w = PowerPair::new(fft.as_ref());
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { frames_avx2(x, len, plan, fft.as_ref(), &mut w, c * FRAMES_PER_TASK, chunk) };
            return;
        }
        task_frames(x, len, plan, fft.as_ref(), &mut w, c * FRAMES_PER_TASK, chunk);
    });
    let mut out = vec![0f32; batch * nm * nt];
    out.par_chunks_mut(nt).enumerate().for_each(|(r, row)| {
        let (b, m) = (r / nm, r % nm);
        for (t, y) in row.iter_mut().enumerate() {
            *y = tmp[(b * nt + t) * nm + m];
        }
    });
    Tensor::from_vec(out, shape)
}
