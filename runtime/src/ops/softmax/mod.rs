//! Softmax over the last dimension (f32), numerically stable (the row max is subtracted), with
//! PyTorch semantics: masked entries of -inf give 0, a row of all -inf gives NaN.
//!
//! CPU: `cpu.rs` (rayon over rows). CUDA: `cuda.rs` launching `kernels/cuda/softmax.cu`
//! (`softmax_fwd_f32_v1` thread per row, `_v2` warp per row, `_v3` block per row for L ≥ 1024).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

fn rows_len(x: &Tensor) -> Result<(usize, usize)> {
    expect_dtype("softmax", x, DType::F32)?;
    if x.rank() == 0 {
        return Err(Error::shape("softmax", format!("needs at least one dimension, got shape {:?}", x.shape())));
    }
    let len = *x.shape().last().unwrap();
    Ok((if len == 0 { 0 } else { x.numel() / len }, len))
}

/// `softmax(x, dim=-1)`: y[r, j] = exp(x[r, j] − max_r) / Σ_k exp(x[r, k] − max_r).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let (rows, len) = rows_len(x)?;
    match x.device() {
        Device::Cpu => cpu::softmax(x.cpu_f32()?, rows, len, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda::softmax(x, rows, len, None),
    }
}

/// Like [`softmax`] on a GPU device, forcing kernel version `v` (1, 2 or 3); benches and tests.
pub fn softmax_version(x: &Tensor, v: u32) -> Result<Tensor> {
    let (rows, len) = rows_len(x)?;
    match x.device() {
        Device::Cpu => cpu::softmax(x.cpu_f32()?, rows, len, x.shape()),
        _ => cuda::softmax(x, rows, len, Some(v)),
    }
}

/// The version the dispatcher picks for rows of length `len`: a block per row for long rows
/// (attention over 1214 tokens), a warp per row otherwise.
pub fn default_version(len: usize) -> u32 {
    if len >= 1024 {
        3
    } else {
        2
    }
}

/// Benchmark cases: AST attention probabilities (12 heads × 1214 × 1214) and AST-SED's
/// frequency-wise attention (101 frames · 12 heads rows of 13), per backend and kernel version.
fn forward_bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let mut out = Vec::new();
    for (case, shape) in [("attn_12x1214x1214", vec![12usize, 1214, 1214]), ("freq_attn_1212x13", vec![101 * 12, 13])] {
        let x = crate::testing::rand_tensor(&shape, 3);
        let work = Work::Bytes(8.0 * x.numel() as f64);
        out.extend(version_cases("softmax", case, device, DType::F32, work, &[1, 2, 3], (1e-7, 1e-5), vec![x], |t, v| match v {
            None => softmax(&t[0]),
            Some(v) => softmax_version(&t[0], v),
        })?);
    }
    Ok(out)
}

/// Benchmark cases: softmax forward (attention rows over 1214 tokens; frequency-wise rows of 13) and
/// the backward of the 1214-token rows.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let mut out = forward_bench_cases(device)?;
    let y = softmax(&crate::testing::rand_tensor(&[12, 1214, 1214], 3))?;
    let dy = crate::testing::rand_tensor(&[12, 1214, 1214], 4);
    let work = Work::Bytes(12.0 * y.numel() as f64);
    out.extend(version_cases("softmax", "bwd_12x1214x1214", device, DType::F32, work, &[1], (1e-7, 1e-5), vec![y, dy], |t, _v| softmax_bwd(&t[0], &t[1]))?);
    Ok(out)
}
