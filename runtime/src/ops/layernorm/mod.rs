//! Layer normalisation over the last dimension (f32), biased variance, as
//! `torch.nn.functional.layer_norm(x, (L,), weight, bias, eps)`.
//!
//! CPU: `cpu.rs` (rayon over rows, two-pass mean/variance with 8-lane pairwise sums). CUDA: `cuda.rs`
//! launching `kernels/cuda/layernorm.cu` (`layernorm_fwd_f32_v1` thread per row, `_v2` warp per row).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

fn check(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> Result<(usize, usize)> {
    let name = "layernorm";
    expect_dtype(name, x, DType::F32)?;
    if x.rank() == 0 {
        return Err(Error::shape(name, format!("needs at least one dimension, got shape {:?}", x.shape())));
    }
    let len = *x.shape().last().unwrap();
    let mut ts = vec![x];
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            expect_dtype(name, t, DType::F32)?;
            if t.shape() != [len] {
                return Err(Error::shape(name, format!("{what} has shape {:?}, expected [{len}] for input shape {:?}", t.shape(), x.shape())));
            }
            ts.push(t);
        }
    }
    same_device(name, &ts)?;
    Ok((if len == 0 { 0 } else { x.numel() / len }, len))
}

/// y = (x − mean) / √(var + eps) · weight + bias over the last dim (var biased; weight/bias
/// optional, shape [L]).
pub fn layernorm(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    let (rows, len) = check(x, weight, bias)?;
    match x.device() {
        Device::Cpu => {
            cpu::layernorm(x.cpu_f32()?, weight.map(|w| w.cpu_f32()).transpose()?, bias.map(|b| b.cpu_f32()).transpose()?, eps, rows, len, x.shape())
        }
        Device::Cuda(_) | Device::Emu => cuda::layernorm(x, weight, bias, eps, rows, len, None),
    }
}

/// Like [`layernorm`] on a GPU device, forcing kernel version `v` (1 or 2); benches and tests.
pub fn layernorm_version(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32, v: u32) -> Result<Tensor> {
    let (rows, len) = check(x, weight, bias)?;
    match x.device() {
        Device::Cpu => {
            cpu::layernorm(x.cpu_f32()?, weight.map(|w| w.cpu_f32()).transpose()?, bias.map(|b| b.cpu_f32()).transpose()?, eps, rows, len, x.shape())
        }
        _ => cuda::layernorm(x, weight, bias, eps, rows, len, Some(v)),
    }
}

/// Benchmark cases: AST's layernorm over 1214 tokens × 768 (eps 1e-12, with weight and bias), per
/// backend and kernel version.
fn forward_bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let inputs = vec![rand_tensor(&[1214, 768], 11), rand_tensor(&[768], 12), rand_tensor(&[768], 13)];
    let work = Work::Bytes(4.0 * (2 * 1214 * 768 + 2 * 768) as f64);
    version_cases("layernorm", "1214x768", device, DType::F32, work, &[1, 2], (1e-5, 1e-5), inputs, |t, v| match v {
        None => layernorm(&t[0], Some(&t[1]), Some(&t[2]), 1e-12),
        Some(v) => layernorm_version(&t[0], Some(&t[1]), Some(&t[2]), 1e-12, v),
    })
}

/// Benchmark cases: layer norm forward over AST tokens (1214 × 768) and its backward.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = forward_bench_cases(device)?;
    let inputs = vec![rand_tensor(&[1214, 768], 11), rand_tensor(&[768], 12), rand_tensor(&[1214, 768], 14)];
    let work = Work::Bytes(4.0 * (3 * 1214 * 768 + 3 * 768) as f64);
    out.extend(version_cases("layernorm", "bwd_1214x768", device, DType::F32, work, &[1], (1e-4, 1e-4), inputs, |t, _v| {
        layernorm_bwd(&t[0], Some(&t[1]), &t[2], 1e-12).map(|g| g.dx)
    })?);
    Ok(out)
}
