//! Average pooling with kernel = stride and no padding (`F.avg_pool2d(x, kernel_size=(kh, kw))`):
//! ResUNet30's encoder downsampling, (2, 2) and (1, 2) over (time, frequency).
//!
//! Math (NCHW): `out[b, c, h, w] = (1 / (kh·kw)) · Σ_{i<kh, j<kw} x[b, c, h·kh + i, w·kw + j]`, output
//! (B, C, ⌊H / kh⌋, ⌊W / kw⌋) (PyTorch's `ceil_mode=False`: a trailing partial window is dropped).
//! f32; the sum is accumulated in f32 in (i, j) order, then divided by kh·kw.
//!
//! CPU: `cpu.rs` (rayon over (b, c) planes). CUDA: `cuda.rs` launching `kernels/cuda/pool.cu`
//! (`avg_pool2d_fwd_f32_v1`: one thread per output element). Backward: `backward.rs`
//! ([`avg_pool2d_bwd`], kernel `avg_pool2d_bwd_f32_v1`).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "avg_pool2d";

/// Resolved geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    /// B·C planes.
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
}

/// Average pooling of `x` (B, C, H, W) over windows `(kh, kw)` with stride = kernel.
pub fn avg_pool2d(x: &Tensor, kernel: (usize, usize)) -> Result<Tensor> {
    avg_pool2d_version(x, kernel, None)
}

/// [`avg_pool2d`] forcing kernel version `v` (1) on a GPU device.
pub fn avg_pool2d_version(x: &Tensor, (kh, kw): (usize, usize), v: Option<u32>) -> Result<Tensor> {
    expect_dtype(OP, x, DType::F32)?;
    let s = x.shape();
    if s.len() != 4 || kh == 0 || kw == 0 || s[2] < kh || s[3] < kw {
        return Err(Error::shape(OP, format!("needs (B, C, H, W) with H ≥ {kh} and W ≥ {kw} for a ({kh}, {kw}) window, got {s:?}")));
    }
    let g = Geom { planes: s[0] * s[1], h: s[2], w: s[3], kh, kw, ho: s[2] / kh, wo: s[3] / kw };
    let shape = [s[0], s[1], g.ho, g.wo];
    match x.device() {
        Device::Cpu => cpu::avg_pool2d(x.cpu_f32()?, &g, &shape),
        Device::Cuda(_) | Device::Emu => cuda::avg_pool2d(x, &g, &shape, v),
    }
}

/// Benchmark case: encoder block 1's pooling on a 10 s mixture with n_fft 1024 (32 × 2016 × 512).
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let x = crate::testing::rand_tensor(&[1, 32, 2016, 512], 901);
    let bytes = 4.0 * (32 * 2016 * 512) as f64 * 1.25;
    let mut out = version_cases(OP, "32x2016x512_k2x2", device, DType::F32, Work::Bytes(bytes), &[1], (1e-6, 1e-6), vec![x], |t, v| {
        avg_pool2d_version(&t[0], (2, 2), v)
    })?;
    // Backward: dy (32 × 1008 × 256) read once, dx (32 × 2016 × 512) written once.
    let dy = crate::testing::rand_tensor(&[1, 32, 1008, 256], 902);
    out.extend(version_cases(OP, "bwd_32x2016x512_k2x2", device, DType::F32, Work::Bytes(bytes), &[1], (1e-6, 1e-6), vec![dy], |t, v| {
        avg_pool2d_bwd_version(&t[0], &[1, 32, 2016, 512], (2, 2), v)
    })?);
    Ok(out)
}
