//! Backward of [`super::istft`]: its adjoint, the spectrum's gradient from the waveform's.
//!
//! The forward is linear in the spectrum: per frame an inverse real FFT (the imaginary parts of the
//! DC and, for an even N, Nyquist bins ignored), times the window, overlap-add, division by the
//! window-sum-square envelope, crop [N/2, N/2 + length) (zeros past the frames). Its adjoint, for a
//! gradient `grad` (…, length):
//! ```text
//! g'[p] = grad[p − N/2] / env[p]   for N/2 ≤ p < N/2 + length and p < N + hop·(T − 1), else 0
//! u_t[n] = w[n]·g'[t·hop + n]
//! dRe[k, t] =  c_k/N·Σ_n u_t[n]·cos(2πkn/N),   dIm[k, t] = −c_k/N·Σ_n u_t[n]·sin(2πkn/N)
//! ```
//! i.e. c_k/N·rfft(u_t)[k], with c_k = 1 at k = 0 and k = N/2 (even N) — where dIm = 0 — and 2 for
//! the other bins (each stands for itself and its Hermitian mirror).
//!
//! CPU: `cpu.rs` (rustfft forward plan, rayon over (batch, frame)). CUDA: `istft_ola_bwd_f32_v1`
//! (crop and envelope division, one thread per padded sample) and `istft_frames_bwd_f32_v1` (naive
//! DFT, one thread per output bin) in `kernels/cuda/stft.cu`.

use super::{check_envelope, cpu, cuda, StftOpts};
use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

/// Gradient of [`super::istft`]`(spec, o, Some(length))` with respect to `spec`: `grad` (…, length)
/// → (…, 2, F, `frames`), F = n_fft/2 + 1.
pub fn istft_bwd(grad: &Tensor, o: &StftOpts, frames: usize) -> Result<Tensor> {
    istft_bwd_version(grad, o, frames, None)
}

/// [`istft_bwd`] forcing the kernel version (1) on a GPU device; benches and tests.
pub fn istft_bwd_version(grad: &Tensor, o: &StftOpts, frames: usize, v: Option<u32>) -> Result<Tensor> {
    let op = "istft_bwd";
    o.check(op)?;
    expect_dtype(op, grad, DType::F32)?;
    if grad.rank() == 0 {
        return Err(Error::shape(op, "expects a gradient of shape (…, length)"));
    }
    if frames == 0 {
        return Err(Error::shape(op, "needs at least one frame"));
    }
    let len = *grad.shape().last().unwrap();
    check_envelope(o, frames, len)?;
    let batch = grad.numel().checked_div(len).unwrap_or_else(|| grad.shape()[..grad.rank() - 1].iter().product());
    let mut shape = grad.shape()[..grad.rank() - 1].to_vec();
    shape.extend([2, o.n_freq(), frames]);
    match grad.device() {
        Device::Cpu => cpu::istft_bwd(grad.cpu_f32()?, batch, frames, len, o, &shape),
        Device::Cuda(_) | Device::Emu => cuda::istft_bwd(grad, batch, frames, len, o, &shape, v),
    }
}
