//! CPU reference of the fbank: rayon over chunks of frames, one rustfft plan shared by all, the
//! sparse mel matrix (each triangle's bin range) from [`FbankPlan`].
//!
//! The frame arithmetic (DC, pre-emphasis, window, FFT, mel sums) is in f64: a pure tone puts ~1e10
//! of dynamic range across the mel bins, and an f32 FFT (torchaudio's included) is then ~1e-2 off in
//! the log of the quietest bins; in f64 the result is within 1e-3 of torchaudio's float64 run.
//! The f64 FFT costs little at 512 points (see `aural bench --op fbank`).

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;

use super::{AstNorm, FbankPlan};
use crate::{Result, Tensor};

/// Frames per rayon task.
const FRAMES_PER_TASK: usize = 32;

/// Log-mel of one frame into `out` (len = mel bins). `buf`/`scratch`: FFT work space.
#[inline]
pub(super) fn frame_logmel(x: &[f32], plan: &FbankPlan, fft: &dyn rustfft::Fft<f64>, buf: &mut [Complex64], scratch: &mut [Complex64], power: &mut [f64], out: &mut [f32]) {
    let o = &plan.opts;
    let win = plan.win;
    let mean = if o.remove_dc_offset { x.iter().map(|&v| v as f64).sum::<f64>() / win as f64 } else { 0.0 };
    // pre-emphasis on the DC-free frame, kaldi style: y[i] = x[i] − p·x[i−1], y[0] = x[0] − p·x[0].
    let p = o.preemph as f64;
    let mut prev = x[0] as f64 - mean;
    for i in 0..win {
        let cur = x[i] as f64 - mean;
        buf[i] = Complex64::new((cur - p * prev) * plan.window[i] as f64, 0.0);
        prev = cur;
    }
    for b in &mut buf[win..] {
        *b = Complex64::new(0.0, 0.0);
    }
    fft.process_with_scratch(buf, scratch);
    for (k, pw) in power.iter_mut().enumerate() {
        *pw = buf[k].norm_sqr();
    }
    let mb = &plan.mel;
    for (m, y) in out.iter_mut().enumerate() {
        let (s, l, off) = (mb.start[m] as usize, mb.len[m] as usize, mb.offset[m] as usize);
        let e: f64 = mb.weights[off..off + l].iter().zip(&power[s..s + l]).map(|(&w, p)| w as f64 * p).sum();
        let v = e.max(f32::EPSILON as f64).ln() as f32;
        *y = match o.ast_norm {
            Some(a) => a.apply(v),
            None => v,
        };
    }
}

pub(super) fn fbank(wave: &[f32], plan: &FbankPlan) -> Result<Tensor> {
    let nm = plan.opts.num_mel_bins;
    let frames = plan.frames(wave.len());
    let rows = plan.out_rows(wave.len());
    let computed = frames.min(rows);
    let mut out = vec![0f32; rows * nm];
    let fft = FftPlanner::<f64>::new().plan_fft_forward(plan.n_fft);
    let (head, tail) = out.split_at_mut(computed * nm);
    head.par_chunks_mut(FRAMES_PER_TASK * nm).enumerate().for_each(|(c, chunk)| {
        let mut buf = vec![Complex64::new(0.0, 0.0); plan.n_fft];
        let mut scratch = vec![Complex64::new(0.0, 0.0); fft.get_inplace_scratch_len()];
        let mut power = vec![0f64; plan.n_fft / 2 + 1];
        for (j, row) in chunk.chunks_mut(nm).enumerate() {
            let f = c * FRAMES_PER_TASK + j;
            let x = &wave[f * plan.shift..f * plan.shift + plan.win];
            frame_logmel(x, plan, fft.as_ref(), &mut buf, &mut scratch, &mut power, row);
        }
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
