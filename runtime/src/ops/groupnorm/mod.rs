//! Group normalisation (`nn.GroupNorm(G, C, eps)`) with an optional residual added to the output: the
//! CP-JKU separator's DPRNN computes `out = x + GroupNorm(rnn_out)` (eps 1e-8, G = 1) after each BiGRU.
//!
//! Math: `x` (N, C, *spatial), S = Π spatial (1 for rank 2). Per item n and group g of Cg = C/G channels,
//! over the m = Cg·S values of the group: `μ = Σ x / m`, `σ² = Σ (x − μ)² / m` (biased, as PyTorch),
//! `y[n, c, s] = (x[n, c, s] − μ) / √(σ² + eps) · weight[c] + bias[c]`, then `y += residual[n, c, s]` when
//! a residual (same shape as x) is given.
//!
//! Precision: μ, σ² and 1/√(σ² + eps) in f64 with two passes (no E[x²] − μ² cancellation, which eps =
//! 1e-8 would not hide); per channel `a = (f32)(rstd·weight[c])`, per value `d = (f32)(x − μ)` (f64
//! subtraction), `y = d·a + bias[c]` in f32, then `+ residual` in f32 (PyTorch adds the f32 GroupNorm
//! output to the f32 residual the same way). Within ~2 ulp of the exact result.
//!
//! Fusion: with the residual the op reads x and r and writes out (12 bytes per value); the unfused
//! `group_norm` then `add` writes the normalised map and reads it back (20 bytes per value) — 8 bytes
//! per value saved, 3.1 MB for the DPRNN's (1, 384, 63, 16) map.
//!
//! CPU: `cpu.rs` (statistics over pieces of ≤ 16384 values of each group in parallel, combined in a
//! fixed order; the output in parallel over (n, c) planes). CUDA: `cuda.rs` launching
//! `kernels/cuda/groupnorm.cu` (`groupnorm_fwd_f32_v1`: one block per (n, g), f64 block sums; v2: each
//! group split into chunks of ~4096 values, per-chunk moments combined exactly in chunk order by a second
//! launch that also writes the output — the default when there are few, long groups, as in the DPRNN).
//!
//! Backward: `backward.rs` ([`group_norm_bwd`]): dx through the group statistics (f64), dweight, dbias
//! and dresidual; `group_norm_data_bwd_f32_v1` on GPU devices (one block per (n, g)), dweight/dbias
//! reduced over items with the runtime's `sum`.

mod backward;
pub(crate) mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "group_norm";

/// Resolved geometry of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    /// N.
    pub items: usize,
    /// C.
    pub channels: usize,
    /// G.
    pub groups: usize,
    /// S, the product of the spatial dims.
    pub spatial: usize,
}

impl Geom {
    /// Values per group, (C/G)·S.
    pub fn group_len(&self) -> usize {
        self.channels / self.groups * self.spatial
    }
}

fn geometry(x: &Tensor, groups: usize, weight: &Tensor, bias: &Tensor, eps: f32, residual: Option<&Tensor>) -> Result<Geom> {
    let mut ts = vec![x, weight, bias];
    ts.extend(residual);
    same_device(OP, &ts)?;
    for t in &ts {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "x, weight, bias and residual must be f32".into() });
        }
    }
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::shape(OP, format!("input must be (N, C, *spatial) with rank ≥ 2, got {s:?}")));
    }
    let c = s[1];
    if groups == 0 || !c.is_multiple_of(groups) {
        return Err(Error::shape(OP, format!("{groups} groups must divide the {c} channels of input {s:?}")));
    }
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if t.shape() != [c] {
            return Err(Error::shape(OP, format!("{what} {:?} must be [{c}] for input {s:?}", t.shape())));
        }
    }
    if let Some(r) = residual {
        if r.shape() != s {
            return Err(Error::shape(OP, format!("residual {:?} must have the input's shape {s:?}", r.shape())));
        }
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::shape(OP, format!("eps {eps} must be finite and ≥ 0 (input {s:?})")));
    }
    Ok(Geom { items: s[0], channels: c, groups, spatial: s[2..].iter().product() })
}

/// `GroupNorm(groups, C, eps)(x)·weight + bias`, plus `residual` when given; see the module doc.
pub fn group_norm(x: &Tensor, groups: usize, weight: &Tensor, bias: &Tensor, eps: f32, residual: Option<&Tensor>) -> Result<Tensor> {
    group_norm_version(x, groups, weight, bias, eps, residual, None)
}

/// [`group_norm`] forcing kernel version `v` (1 or 2) on a GPU device; benches and tests. Ignored on the CPU.
pub fn group_norm_version(x: &Tensor, groups: usize, weight: &Tensor, bias: &Tensor, eps: f32, residual: Option<&Tensor>, v: Option<u32>) -> Result<Tensor> {
    let g = geometry(x, groups, weight, bias, eps, residual)?;
    match x.device() {
        Device::Cpu => cpu::group_norm(x, weight, bias, eps, residual, &g),
        Device::Cuda(_) | Device::Emu => cuda::group_norm(x, weight, bias, eps, residual, &g, v),
    }
}

/// Benchmark cases of the CP-JKU separator's DPRNN on a 10 s clip (bottleneck 384 × 63 × 16): one
/// group with the residual (eps 1e-8, batch 1), and two groups without it at batch 2; and the first
/// case's backward.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    // The f64 sums differ from the CPU's by order only; the f32 output math is the same operations.
    let tol = (1e-5, 1e-5);
    let shape = [1, 384, 63, 16];
    let n = (384 * 63 * 16) as f64;
    let ins = vec![rand_tensor(&shape, 1201), rand_tensor(&[384], 1202), rand_tensor(&[384], 1203), rand_tensor(&shape, 1204)];
    let bytes = 4.0 * (3.0 * n + 2.0 * 384.0);
    out.extend(version_cases(OP, "dprnn_g1_384x63x16_residual", device, DType::F32, Work::Bytes(bytes), &[1, 2], tol, ins, |t, v| {
        group_norm_version(&t[0], 1, &t[1], &t[2], 1e-8, Some(&t[3]), v)
    })?);
    let ins = vec![rand_tensor(&[2, 384, 63, 16], 1205), rand_tensor(&[384], 1206), rand_tensor(&[384], 1207)];
    let bytes = 4.0 * (2.0 * 2.0 * n + 2.0 * 384.0);
    out.extend(version_cases(OP, "g2_2x384x63x16", device, DType::F32, Work::Bytes(bytes), &[1, 2], tol, ins, |t, v| {
        group_norm_version(&t[0], 2, &t[1], &t[2], 1e-5, None, v)
    })?);
    out.extend(backward::bench_case(device)?);
    Ok(out)
}
