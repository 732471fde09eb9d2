//! CPU reference of the fbank: rayon over chunks of frames, one rustfft plan shared by all, the
//! sparse mel matrix (each triangle's bin range) from [`FbankPlan`].
//!
//! The frame arithmetic (DC, pre-emphasis, window, FFT, mel sums) is in f64: a pure tone puts ~1e10
//! of dynamic range across the mel bins, and an f32 FFT (torchaudio's included) is then ~1e-2 off in
//! the log of the quietest bins; in f64 the result is within 1e-3 of torchaudio's float64 run.
//! The f64 FFT costs little at 512 points (see `aural bench --op fbank`).

use std::mem::MaybeUninit;

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
fn mel_log(pa: &[f64], pb: &[f64], pab: &mut [f64], plan: &FbankPlan, e: &mut [f64], oa: &mut [MaybeUninit<f32>], ob: Option<&mut [MaybeUninit<f32>]>) {
    let mb = &plan.mel;
    let nm = oa.len();
    // the two spectra interleaved, so that each weight multiplies both frames' bins in one 2-lane
    // operation (the sums keep their order: the same bits as one frame at a time)
    for ((ab, &a), &b) in pab.chunks_exact_mut(2).zip(pa).zip(pb) {
        ab[0] = a;
        ab[1] = b;
    }
    let (ea, eb) = e.split_at_mut(nm);
    for (m, (ea, eb)) in ea.iter_mut().zip(eb.iter_mut()).enumerate() {
        let (s, l, off) = (mb.start[m] as usize, mb.len[m] as usize, mb.offset[m] as usize);
        let mut acc = [0f64; 2];
        for (&w, ab) in mb.weights[off..off + l].iter().zip(pab[2 * s..2 * (s + l)].chunks_exact(2)) {
            let w = w as f64;
            acc[0] += w * ab[0];
            acc[1] += w * ab[1];
        }
        *ea = acc[0].max(f32::EPSILON as f64);
        *eb = acc[1].max(f32::EPSILON as f64);
    }
    let rows = if ob.is_some() { 2 * nm } else { nm };
    ln_in_place(&mut e[..rows]);
    // every value of the row written (the rows are nm long, as `e`'s halves)
    let store = |out: &mut [MaybeUninit<f32>], e: &[f64]| {
        for (y, &v) in out.iter_mut().zip(e) {
            let v = v as f32;
            y.write(match plan.opts.ast_norm {
                Some(a) => a.apply(v),
                None => v,
            });
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
fn frame_pair(
    xa: &[f32],
    xb: Option<&[f32]>,
    plan: &FbankPlan,
    fft: &dyn rustfft::Fft<f64>,
    w: &mut Work,
    oa: &mut [MaybeUninit<f32>],
    ob: Option<&mut [MaybeUninit<f32>]>,
) {
    let pp = &mut w.pp;
    prepare_frame(xa, plan, &mut pp.ra);
    match xb {
        Some(xb) => prepare_frame(xb, plan, &mut pp.rb),
        None => pp.rb.fill(0.0),
    }
    pp.run(fft);
    mel_log(&pp.pa, &pp.pb, &mut w.pab, plan, &mut w.e, oa, ob);
}

/// Per-task work space: the frame pair's FFT buffers and the mel sums.
struct Work {
    pp: PowerPair,
    e: Vec<f64>,
    /// the two power spectra interleaved (2 × (n_fft/2 + 1))
    pab: Vec<f64>,
}

/// The frames of one task, from frame `f0`, into `chunk` (whole rows).
#[inline(always)]
fn task_frames(wave: &[f32], plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, w: &mut Work, f0: usize, chunk: &mut [MaybeUninit<f32>]) {
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
unsafe fn frames_avx2(wave: &[f32], plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, w: &mut Work, f0: usize, chunk: &mut [MaybeUninit<f32>]) {
    task_frames(wave, plan, fft, w, f0, chunk)
}

pub(super) fn fbank(wave: &[f32], plan: &FbankPlan) -> Result<Tensor> {
    let nm = plan.opts.num_mel_bins;
    let frames = plan.frames(wave.len());
    let rows = plan.out_rows(wave.len());
    let computed = frames.min(rows);
    let mut out = Vec::with_capacity(rows * nm);
    fbank_into(wave, plan, &mut out.spare_capacity_mut()[..computed * nm]);
    // SAFETY: fbank_into wrote all of the first computed × nm values.
    unsafe { out.set_len(computed * nm) };
    // AST's padding rows
    out.resize(rows * nm, plan.opts.ast_norm.map_or(0.0, |a| a.apply(0.0)));
    Tensor::from_vec(out, &[rows, nm])
}

/// The first `out.len() / num_mel_bins` frames of `wave` (whole rows, at most `plan.frames(wave.len())`)
/// into `out` (memory not yet written; every value of it is written), normalised as the plan says. Frames are paired for the FFT from the first (even-aligned):
/// a caller that splits a signal into calls of even frame counts gets the whole signal's bits.
pub(super) fn fbank_into(wave: &[f32], plan: &FbankPlan, out: &mut [MaybeUninit<f32>]) {
    let nm = plan.opts.num_mel_bins;
    debug_assert!(out.len() % nm == 0 && out.len() / nm <= plan.frames(wave.len()));
    let fft = fft_plan(plan.n_fft);
    out.par_chunks_mut(FRAMES_PER_TASK * nm).enumerate().for_each(|(c, chunk)| {
        // Work space once per thread, kept between calls (a stream calls this per block).
        WORK.with(|cell| {
            let mut slot = cell.borrow_mut();
            let scratch = fft.get_inplace_scratch_len();
            if !matches!(&*slot, Some(w) if w.pp.fits(plan.n_fft, scratch) && w.e.len() == 2 * nm) {
                *slot = Some(Work { pp: PowerPair::new(fft.as_ref()), e: vec![0.0; 2 * nm], pab: vec![0.0; 2 * (plan.n_fft / 2 + 1)] });
            }
            let w = slot.as_mut().expect("set just above");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                unsafe { frames_avx2(wave, plan, fft.as_ref(), w, c * FRAMES_PER_TASK, chunk) };
                return;
            }
            task_frames(wave, plan, fft.as_ref(), w, c * FRAMES_PER_TASK, chunk);
        })
    });
}

thread_local! {
    static WORK: std::cell::RefCell<Option<Work>> = const { std::cell::RefCell::new(None) };
}

/// The forward FFT of `n` points, planned once per size for the process (rustfft's planner keeps
/// its plans; a new planner per call re-planned every block of a stream).
fn fft_plan(n: usize) -> std::sync::Arc<dyn rustfft::Fft<f64>> {
    use std::sync::{Mutex, OnceLock};
    static PLANNER: OnceLock<Mutex<FftPlanner<f64>>> = OnceLock::new();
    PLANNER.get_or_init(|| Mutex::new(FftPlanner::new())).lock().unwrap_or_else(|e| e.into_inner()).plan_fft_forward(n)
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
