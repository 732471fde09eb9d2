//! CPU reference of the fbank: rayon over chunks of frames, one rustfft plan shared by all, the
//! sparse mel matrix (each triangle's bin range) from [`FbankPlan`].
//!
//! The frame arithmetic (DC, pre-emphasis, window, FFT, mel sums) is in f64: a pure tone puts ~1e10
//! of dynamic range across the mel bins, and an f32 FFT (torchaudio's included) is then ~1e-2 off in
//! the log of the quietest bins; in f64 the result is within 1e-3 of torchaudio's float64 run.
//! The f64 FFT costs little at 512 points (see `aural bench --op fbank`).

use rayon::prelude::*;
use rustfft::FftPlanner;

use super::{AstNorm, FbankPlan};
use crate::power_pair::PowerPair;
use crate::{Result, Tensor};

/// Frames per rayon task.
const FRAMES_PER_TASK: usize = 32;

/// The DC-free, pre-emphasised, windowed frame, zero-padded to n_fft, into `out` (f64).
/// Written without loop-carried state so the compiler vectorises it.
#[inline(always)]
fn prepare_frame(x: &[f32], plan: &FbankPlan, out: &mut [f64]) {
    let o = &plan.opts;
    let win = plan.win;
    let mean = if o.remove_dc_offset {
        // four partial sums: a single f64 accumulator would serialise the loop.
        let mut acc = [0f64; 4];
        let chunks = x[..win].chunks_exact(4);
        let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
        for c in chunks {
            for l in 0..4 {
                acc[l] += c[l] as f64;
            }
        }
        (acc[0] + acc[1] + acc[2] + acc[3] + rest) / win as f64
    } else {
        0.0
    };
    // pre-emphasis on the DC-free frame, kaldi style: y[i] = x[i] − p·x[i−1], y[0] = x[0] − p·x[0].
    // Slices of exact lengths zipped together: no bounds checks in the loop, so it vectorises.
    let p = o.preemph as f64;
    let (x, window) = (&x[..win], &plan.window[..win]);
    let (head, rest) = out.split_at_mut(win);
    head[0] = ((x[0] as f64 - mean) * (1.0 - p)) * window[0] as f64;
    for (((o, &xi), &xp), &wi) in head[1..].iter_mut().zip(&x[1..]).zip(&x[..win - 1]).zip(&window[1..]) {
        *o = ((xi as f64 - mean) - p * (xp as f64 - mean)) * wi as f64;
    }
    rest.fill(0.0);
}

/// Natural log of positive, finite f64 values in place: x = 2^e·m with m ∈ [√½, √2),
/// ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.1716, by its series to s¹⁵ (error < 1e-13 relative).
/// Branch-free so the compiler vectorises it; libm's scalar log was a quarter of the frame's time.
#[inline(always)]
fn ln_in_place(v: &mut [f64]) {
    const LN2: f64 = std::f64::consts::LN_2;
    for x in v.iter_mut() {
        let bits = x.to_bits();
        let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let big = m > std::f64::consts::SQRT_2;
        m = if big { m * 0.5 } else { m };
        e += big as i64;
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let poly = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 / 15.0))))));
        *x = e as f64 * LN2 + 2.0 * s * poly;
    }
}

/// Mel projection and log of the two power spectra of a frame pair, into one output row each
/// (`e`: scratch of 2 × mel bins). One pass over each triangle's weights serves both frames, halving
/// the loop overhead of the short sparse rows.
#[inline(always)]
fn mel_log(pa: &[f64], pb: &[f64], plan: &FbankPlan, e: &mut [f64], oa: &mut [f32], ob: Option<&mut [f32]>) {
    let mb = &plan.mel;
    let nm = oa.len();
    let (ea, eb) = e.split_at_mut(nm);
    for (m, (ea, eb)) in ea.iter_mut().zip(eb.iter_mut()).enumerate() {
        let (s, l, off) = (mb.start[m] as usize, mb.len[m] as usize, mb.offset[m] as usize);
        let (mut sa, mut sb) = (0f64, 0f64);
        for ((&w, &a), &b) in mb.weights[off..off + l].iter().zip(&pa[s..s + l]).zip(&pb[s..s + l]) {
            sa += w as f64 * a;
            sb += w as f64 * b;
        }
        *ea = sa.max(f32::EPSILON as f64);
        *eb = sb.max(f32::EPSILON as f64);
    }
    let rows = if ob.is_some() { 2 * nm } else { nm };
    ln_in_place(&mut e[..rows]);
    let store = |out: &mut [f32], e: &[f64]| {
        for (y, &v) in out.iter_mut().zip(e) {
            let v = v as f32;
            *y = match plan.opts.ast_norm {
                Some(a) => a.apply(v),
                None => v,
            };
        }
    };
    store(oa, &e[..nm]);
    if let Some(ob) = ob {
        store(ob, &e[nm..]);
    }
}

/// Log-mel of two frames with one complex FFT: z = a + i·b, then for k ≤ n/2
/// A[k] = (Z[k] + conj Z[n−k]) / 2 and B[k] = (Z[k] − conj Z[n−k]) / 2i, so
/// |A[k]|² = |Z[k] + conj Z[n−k]|² / 4 and |B[k]|² = |Z[k] − conj Z[n−k]|² / 4.
/// `xb` None: a single frame (b = 0). Halves the FFT work of a real-input transform.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn frame_pair(xa: &[f32], xb: Option<&[f32]>, plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, w: &mut Work, oa: &mut [f32], ob: Option<&mut [f32]>) {
    let pp = &mut w.pp;
    prepare_frame(xa, plan, &mut pp.ra);
    match xb {
        Some(xb) => prepare_frame(xb, plan, &mut pp.rb),
        None => pp.rb.fill(0.0),
    }
    pp.run(fft);
    mel_log(&pp.pa, &pp.pb, plan, &mut w.e, oa, ob);
}

/// Per-task work space: the frame pair's FFT buffers and the mel sums.
struct Work {
    pp: PowerPair,
    e: Vec<f64>,
}

/// The frames of one task, from frame `f0`, into `chunk` (whole rows).
#[inline(always)]
fn task_frames(wave: &[f32], plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, w: &mut Work, f0: usize, chunk: &mut [f32]) {
    let nm = plan.opts.num_mel_bins;
    let frame = |f: usize| &wave[f * plan.shift..f * plan.shift + plan.win];
    for (j, rows2) in chunk.chunks_mut(2 * nm).enumerate() {
        let f = f0 + 2 * j;
        if rows2.len() == 2 * nm {
            let (ra, rb) = rows2.split_at_mut(nm);
            frame_pair(frame(f), Some(frame(f + 1)), plan, fft, w, ra, Some(rb));
        } else {
            frame_pair(frame(f), None, plan, fft, w, rows2, None);
        }
    }
}

/// [`task_frames`] compiled for AVX2 + FMA (the build targets baseline x86-64): the window, mel and ln
/// loops vectorise 4-wide in f64. Chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn frames_avx2(wave: &[f32], plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, w: &mut Work, f0: usize, chunk: &mut [f32]) {
    task_frames(wave, plan, fft, w, f0, chunk)
}

pub(super) fn fbank(wave: &[f32], plan: &FbankPlan) -> Result<Tensor> {
    let nm = plan.opts.num_mel_bins;
    let frames = plan.frames(wave.len());
    let rows = plan.out_rows(wave.len());
    let computed = frames.min(rows);
    let mut out = vec![0f32; rows * nm];
    let fft = FftPlanner::<f64>::new().plan_fft_forward(plan.n_fft);
    let (head, tail) = out.split_at_mut(computed * nm);
    // Work space once per rayon job (for_each_init), not once per task.
    let work = || Work { pp: PowerPair::new(fft.as_ref()), e: vec![0.0; 2 * nm] };
    head.par_chunks_mut(FRAMES_PER_TASK * nm).enumerate().for_each_init(work, |w, (c, chunk)| {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { frames_avx2(wave, plan, fft.as_ref(), w, c * FRAMES_PER_TASK, chunk) };
            return;
        }
        task_frames(wave, plan, fft.as_ref(), w, c * FRAMES_PER_TASK, chunk);
    });
    if let Some(a) = plan.opts.ast_norm {
        let pad = a.apply(0.0);
        tail.iter_mut().for_each(|v| *v = pad);
    }
    Tensor::from_vec(out, &[rows, nm])
}

pub(super) fn ast_input(fb: &[f32], frames: usize, nm: usize, a: &AstNorm) -> Result<Tensor> {
    let rows = a.max_length;
    let mut out = vec![a.apply(0.0); rows * nm];
    let n = frames.min(rows) * nm;
    out[..n].par_iter_mut().zip(&fb[..n]).for_each(|(o, &x)| *o = a.apply(x));
    Tensor::from_vec(out, &[rows, nm])
}

#[cfg(test)]
mod tests {
    #[test]
    fn ln_matches_std() {
        let mut xs: Vec<f64> = (0..2000).map(|i| (1.0137f64).powi(i - 1000) * 1.2345e-3).collect();
        xs.extend([f32::EPSILON as f64, 1.0, 2.0, std::f64::consts::SQRT_2, 0.5, 1e10, 3.7e-30]);
        let mut got = xs.clone();
        super::ln_in_place(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            assert!((g - x.ln()).abs() <= 1e-12 * x.ln().abs().max(1.0), "ln({x}) = {g}, want {}", x.ln());
        }
    }
}
