//! Per-map standardisation of two same-shaped maps and their weighted sum: the CP-JKU separator's
//! `wx·(x − x.mean(dim=[2, 3])) / (x.std(dim=[2, 3]) + eps) + wf·(f − f.mean(…)) / (f.std(…) + eps)`
//! (eps 1e-6 there), which mixes the injected embedding into the bottleneck at matched scales.
//!
//! Math: `x`, `f` (B, C, H, W), n = H·W ≥ 2. Per (b, c) and z ∈ {x, f}: `μz = Σ z / n`,
//! `σz = √(Σ (z − μz)² / (n − 1))` (unbiased, PyTorch's default `std`), and
//! `out = wx·(x − μx)/(σx + eps) + wf·(f − μf)/(σf + eps)` — eps is added to the std, outside the root.
//!
//! Precision: the statistics in f64 (two passes); per plane `kz = (f32)(wz / (σz + eps))`, per value
//! `out = (f32)(x − μx)·kx + (f32)(f − μf)·kf` in f32 (differences in f64). Within ~2 ulp of the exact
//! result, as close to it as PyTorch's f32 division.
//!
//! CPU: `cpu.rs` (the group statistics of `groupnorm`'s CPU code, one group per plane; the output in
//! parallel over planes). CUDA: `cuda.rs` launching `kernels/cuda/standardize.cu`
//! (`standardize_add_fwd_f32_v1`: one block per plane reading both maps).
//!
//! Backward: `backward.rs` ([`standardize_add_bwd`]): dx, df through the means and unbiased stds (f64),
//! and the scalar weights' gradients dwx, dwf; `standardize_add_data_bwd_f32_v1` on GPU devices.

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "standardize_add";

fn check(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32) -> Result<(usize, usize)> {
    same_device(OP, &[x, f])?;
    for t in [x, f] {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "x and f must be f32".into() });
        }
    }
    let s = x.shape();
    if s.len() != 4 || f.shape() != s {
        return Err(Error::shape(OP, format!("x and f must be (B, C, H, W) of one shape, got {s:?} and {:?}", f.shape())));
    }
    let n = s[2] * s[3];
    if n < 2 {
        return Err(Error::shape(OP, format!("the unbiased std over H·W needs H·W ≥ 2, got {s:?} (H·W = {n})")));
    }
    if !(wx.is_finite() && wf.is_finite() && eps.is_finite()) {
        return Err(Error::shape(OP, format!("weights ({wx}, {wf}) and eps {eps} must be finite (input {s:?})")));
    }
    Ok((s[0] * s[1], n))
}

/// `wx·standardise(x) + wf·standardise(f)` per (b, c) map; see the module doc.
pub fn standardize_add(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32) -> Result<Tensor> {
    standardize_add_version(x, f, wx, wf, eps, None)
}

/// [`standardize_add`] forcing kernel version `v` (1) on a GPU device; benches and tests. Ignored on the CPU.
pub fn standardize_add_version(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, v: Option<u32>) -> Result<Tensor> {
    let (planes, n) = check(x, f, wx, wf, eps)?;
    match x.device() {
        Device::Cpu => cpu::standardize_add(x, f, wx, wf, eps, n),
        Device::Cuda(_) | Device::Emu => cuda::standardize_add(x, f, wx, wf, eps, planes, n, v),
    }
}

/// Benchmark cases of the CP-JKU separator: the embedding mixed into the (1, 384, 63, 16) bottleneck,
/// forward and backward.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let shape = [1, 384, 63, 16];
    let ins = vec![rand_tensor(&shape, 1301), rand_tensor(&shape, 1302)];
    let bytes = 4.0 * 3.0 * (384 * 63 * 16) as f64;
    // The f64 sums differ from the CPU's by order only; the f32 output math is the same operations.
    let mut out = version_cases(OP, "bottleneck_384x63x16", device, DType::F32, Work::Bytes(bytes), &[1], (1e-5, 1e-5), ins, |t, v| {
        standardize_add_version(&t[0], &t[1], 0.5, 1.5, 1e-6, v)
    })?;
    out.extend(backward::bench_case(device)?);
    Ok(out)
}
