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
//! [`stft_bwd`], the adjoint of [`super::stft`] (a gradient for whatever is upstream of an STFT):
//! ```text
//! u_t[n] = w[n]·Σ_{k<F} (Gre[k, t]·cos(2πkn/N) − Gim[k, t]·sin(2πkn/N))
//! dx[j]  = Σ over the (t, n) with reflect(t·hop − N/2 + n) = j of u_t[n]
//! ```
//! (the imaginary parts of DC and Nyquist multiply sin(0) = sin(πn) = 0: no contribution). CPU: rustfft
//! inverse plans, then a per-item overlap-add; CUDA: `stft_frames_bwd_f32_v1`, `stft_ola_bwd_f32_v1`.
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

/// Gradient of [`super::stft`]`(x, o)` with respect to `x`: `grad` (…, 2, F, T) → (…, `len`), the
/// signal's length (T must be 1 + len / hop). See the module doc.
pub fn stft_bwd(grad: &Tensor, o: &StftOpts, len: usize) -> Result<Tensor> {
    let op = "stft_bwd";
    o.check(op)?;
    expect_dtype(op, grad, DType::F32)?;
    let r = grad.rank();
    if r < 3 || grad.shape()[r - 3] != 2 || grad.shape()[r - 2] != o.n_freq() || grad.shape()[r - 1] != o.n_frames(len) {
        return Err(Error::shape(op, format!("expects (…, 2, {}, {}) for a signal of {len} samples, got {:?}", o.n_freq(), o.n_frames(len), grad.shape())));
    }
    if len <= o.n_fft / 2 {
        return Err(Error::shape(op, format!("reflect padding needs more than n_fft/2 = {} samples, got {len}", o.n_fft / 2)));
    }
    let nt = o.n_frames(len);
    let batch = grad.numel() / (2 * o.n_freq() * nt);
    let mut shape = grad.shape()[..r - 3].to_vec();
    shape.push(len);
    match grad.device() {
        Device::Cpu => cpu::stft_bwd(grad.cpu_f32()?, batch, nt, len, o, &shape),
        Device::Cuda(_) | Device::Emu => cuda::stft_bwd(grad, batch, nt, len, o, &shape),
    }
}
