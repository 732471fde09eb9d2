//! Short-time Fourier transform and its inverse, like `torch.stft` / `torch.istft` with a periodic
//! Hann window (`torch.hann_window(win_length)`, zero-padded to `n_fft` centred), `center=True`,
//! `pad_mode='reflect'`, `onesided=True`, `normalized=False`.
//!
//! Layout: a signal `(…, L)` gives `(…, 2, F, T)` — the real and imaginary planes, F = n_fft/2 + 1
//! frequencies, T = 1 + L / hop frames. [`istft`] takes `(…, 2, F, T)` back to `(…, length)` by
//! inverse FFT, windowing, overlap-add and division by the window-sum-square envelope (torch.istft;
//! an envelope below 1e-11 inside the output is an error, as in torch). Batches over all leading axes
//! (the separator: 4 channels × 10 s at 32 kHz, n_fft 2048, hop 160).
//!
//! CPU: `cpu.rs` (rustfft, rayon over frames). CUDA: `cuda.rs` launching `kernels/cuda/stft.cu`:
//! `stft_fwd_f32_v1` (naive DFT, one thread per output bin — the reference port), `stft_fwd_f32_v2`
//! (one block per frame, shared-memory radix-2 FFT; power-of-two n_fft ≤ 2048), `istft_frames_fwd_f32_v1`
//! / `_v2` (inverse DFT / FFT per frame into a frame buffer) and `istft_ola_fwd_f32_v1` (overlap-add by
//! gathering: one thread per output sample, deterministic). A non-power-of-two n_fft (or > 2048)
//! runs v1.
//!
//! Backward (`backward.rs`): [`istft_bwd`] is the adjoint of [`istft`] (the spectrum's gradient from
//! the waveform's: envelope division and crop undone, then per frame the windowed slice's rfft
//! scaled by c_k/N), for training with a waveform loss; kernels `istft_ola_bwd_f32_v1` and
//! `istft_frames_bwd_f32_v1`.

mod backward;
mod cpu;
mod cuda;

pub use backward::*;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

/// STFT geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StftOpts {
    pub n_fft: usize,
    pub hop: usize,
    /// Window length (≤ n_fft); the periodic Hann window is centred in the n_fft frame.
    pub win_length: usize,
}

impl StftOpts {
    /// `win_length = n_fft`.
    pub fn new(n_fft: usize, hop: usize) -> StftOpts {
        StftOpts { n_fft, hop, win_length: n_fft }
    }
    pub fn n_freq(&self) -> usize {
        self.n_fft / 2 + 1
    }
    /// Frames of a signal of `len` samples with `center=True`: 1 + len / hop.
    pub fn n_frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }
    /// The window, `n_fft` values: periodic Hann of `win_length`, zero-padded on both sides.
    pub fn window(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.n_fft];
        let left = (self.n_fft - self.win_length) / 2;
        for i in 0..self.win_length {
            w[left + i] = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / self.win_length as f64).cos()) as f32;
        }
        w
    }
    fn check(&self, op: &'static str) -> Result<()> {
        if self.n_fft < 2 || self.hop == 0 || self.win_length == 0 || self.win_length > self.n_fft {
            return Err(Error::shape(op, format!("need n_fft ≥ 2, hop ≥ 1, 1 ≤ win_length ≤ n_fft; got {self:?}")));
        }
        Ok(())
    }
}

/// `torch.stft(x, n_fft, hop, win_length, hann_window(win_length), center=True,
/// pad_mode='reflect', return_complex=True)` as planes: `(…, L)` → `(…, 2, F, T)`.
pub fn stft(x: &Tensor, o: &StftOpts) -> Result<Tensor> {
    stft_version(x, o, None)
}

/// [`stft`] forcing a kernel version (1 or 2) on a GPU device; benches and tests.
pub fn stft_version(x: &Tensor, o: &StftOpts, v: Option<u32>) -> Result<Tensor> {
    let op = "stft";
    o.check(op)?;
    expect_dtype(op, x, DType::F32)?;
    if x.rank() == 0 {
        return Err(Error::shape(op, "expects a signal of shape (…, samples)"));
    }
    let len = *x.shape().last().unwrap();
    if len <= o.n_fft / 2 {
        return Err(Error::shape(op, format!("reflect padding needs more than n_fft/2 = {} samples, got {len}", o.n_fft / 2)));
    }
    let batch = x.numel() / len;
    let mut shape = x.shape()[..x.rank() - 1].to_vec();
    shape.extend([2, o.n_freq(), o.n_frames(len)]);
    match x.device() {
        Device::Cpu => cpu::stft(x.cpu_f32()?, batch, len, o, &shape),
        Device::Cuda(_) | Device::Emu => cuda::stft(x, batch, len, o, &shape, v),
    }
}

/// Checks torch.istft's condition: the window-sum-square envelope over the kept samples is ≥ 1e-11.
fn check_envelope(o: &StftOpts, frames: usize, keep: usize) -> Result<()> {
    let w = o.window();
    let expected = o.n_fft + o.hop * (frames - 1);
    let mut env = vec![0f64; expected];
    for t in 0..frames {
        for (i, &wi) in w.iter().enumerate() {
            env[t * o.hop + i] += (wi as f64) * (wi as f64);
        }
    }
    let start = o.n_fft / 2;
    let end = (start + keep).min(expected);
    if let Some(min) = env[start..end].iter().copied().reduce(f64::min) {
        if min < 1e-11 {
            return Err(Error::shape("istft", format!("window overlap-add envelope is {min:e} (< 1e-11) for {o:?}: the frames do not cover the signal")));
        }
    }
    Ok(())
}

/// `torch.istft(X, n_fft, hop, win_length, hann_window(win_length), center=True, length=length)`
/// from planes: `(…, 2, F, T)` → `(…, length)`; `length = None` gives hop·(T − 1).
pub fn istft(spec: &Tensor, o: &StftOpts, length: Option<usize>) -> Result<Tensor> {
    istft_version(spec, o, length, None)
}

/// [`istft`] forcing a kernel version (1 or 2) of the per-frame inverse on a GPU device.
pub fn istft_version(spec: &Tensor, o: &StftOpts, length: Option<usize>, v: Option<u32>) -> Result<Tensor> {
    let op = "istft";
    o.check(op)?;
    expect_dtype(op, spec, DType::F32)?;
    let r = spec.rank();
    if r < 3 || spec.shape()[r - 3] != 2 || spec.shape()[r - 2] != o.n_freq() {
        return Err(Error::shape(op, format!("expects (…, 2, {}, frames) planes for n_fft {}, got {:?}", o.n_freq(), o.n_fft, spec.shape())));
    }
    let frames = spec.shape()[r - 1];
    if frames == 0 {
        return Err(Error::shape(op, "needs at least one frame"));
    }
    let expected = o.n_fft + o.hop * (frames - 1);
    let len = length.unwrap_or(expected - o.n_fft);
    check_envelope(o, frames, len)?;
    let batch = spec.numel() / (2 * o.n_freq() * frames);
    let mut shape = spec.shape()[..r - 3].to_vec();
    shape.push(len);
    match spec.device() {
        Device::Cpu => cpu::istft(spec.cpu_f32()?, batch, frames, len, o, &shape),
        Device::Cuda(_) | Device::Emu => cuda::istft(spec, batch, frames, len, o, &shape, v),
    }
}

/// Benchmark cases: STFT of 4 × 10 s at 32 kHz, n_fft 2048, hop 160 (the separator's front end);
/// istft's backward on 1 × 1 × 10 s, n_fft 1024, hop 160 (its back end, in training).
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let o = StftOpts::new(2048, 160);
    let x = crate::testing::rand_tensor(&[4, 320_000], 3);
    let t = o.n_frames(320_000);
    let work = Work::Flops(4.0 * t as f64 * 5.0 * o.n_fft as f64 * (o.n_fft as f64).log2());
    // f32 FFT of 2048 points vs the CPU: errors grow like log2(n_fft)·ε·‖frame‖.
    let mut out =
        version_cases("stft", "4x10s@32k_nfft2048_hop160", device, DType::F32, work, &[2], (2e-3, 1e-4), vec![x], move |t, v| stft_version(&t[0], &o, v))?;
    // The separator's training back end: istft's backward on 1 × 1 × 10 s at 32 kHz, n_fft 1024,
    // hop 160 (2001 frames). Work: the naive DFT of v1 (2 multiply-adds per sample and bin).
    let ob = StftOpts::new(1024, 160);
    let g = crate::testing::rand_tensor(&[1, 1, 320_000], 4);
    let frames = ob.n_frames(320_000);
    let work = Work::Flops(4.0 * frames as f64 * ob.n_freq() as f64 * ob.n_fft as f64);
    out.extend(version_cases("istft_bwd", "1x1x10s@32k_nfft1024_hop160", device, DType::F32, work, &[1], (1e-4, 1e-3), vec![g], move |t, v| {
        istft_bwd_version(&t[0], &ob, frames, v)
    })?);
    // The STFT's backward (its adjoint) on the same geometry: (1, 1, 2, 513, 2001) → 10 s.
    let gs = crate::testing::rand_tensor(&[1, 1, 2, ob.n_freq(), frames], 5);
    out.extend(version_cases("stft_bwd", "1x1x10s@32k_nfft1024_hop160", device, DType::F32, work, &[1], (1e-3, 1e-3), vec![gs], move |t, _v| {
        stft_bwd(&t[0], &ob, 320_000)
    })?);
    Ok(out)
}
