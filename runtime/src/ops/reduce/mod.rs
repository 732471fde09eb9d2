//! Reductions over one axis (f32, f32 accumulation): [`sum`], [`mean`], [`max`] (torch `amax`,
//! NaN-propagating), with `keepdim` and negative axes.
//!
//! The tensor is viewed as (outer, L, inner) around the reduced axis. CPU: `cpu.rs` (rayon; pairwise
//! sums along contiguous rows, Kahan-compensated column sums otherwise, so long sums stay accurate).
//! CUDA: `cuda.rs` launching `kernels/cuda/reduce.cu` (`sum|max_fwd_f32_v1` thread per output,
//! `_v2` block per output with a shared-memory tree).

mod cpu;
mod cuda;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

pub(crate) use cpu::sum_f32;

/// The reductions. `Mean` is `Sum` divided by L (same kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 3] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max];
    fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
        }
    }
}

/// The (outer, L, inner) view of `shape` around `axis`, and the output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReduceShape {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    pub out: Vec<usize>,
}

/// Resolves the axis and the view; `op` names the caller in errors.
pub fn reduce_shape(op: &'static str, shape: &[usize], axis: isize, keepdim: bool) -> Result<ReduceShape> {
    let r = shape.len() as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::shape(op, format!("axis {axis} out of range for shape {shape:?}")));
    }
    let a = a as usize;
    let mut out = shape.to_vec();
    if keepdim {
        out[a] = 1;
    } else {
        out.remove(a);
    }
    Ok(ReduceShape { outer: shape[..a].iter().product(), len: shape[a], inner: shape[a + 1..].iter().product(), out })
}

fn prepare(op: ReduceOp, x: &Tensor, axis: isize, keepdim: bool) -> Result<ReduceShape> {
    let name = op.name();
    expect_dtype(name, x, DType::F32)?;
    let rs = reduce_shape(name, x.shape(), axis, keepdim)?;
    if op == ReduceOp::Max && rs.len == 0 && rs.outer * rs.inner > 0 {
        return Err(Error::shape(name, format!("cannot take the max over axis {axis} of size 0 (shape {:?})", x.shape())));
    }
    Ok(rs)
}

/// `op` over `axis` (negative counts from the end); `keepdim` keeps it as size 1.
pub fn reduce(op: ReduceOp, x: &Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
    let rs = prepare(op, x, axis, keepdim)?;
    match x.device() {
        Device::Cpu => cpu::reduce(op, x.cpu_f32()?, &rs),
        Device::Cuda(_) | Device::Emu => cuda::reduce(op, x, &rs, None),
    }
}

/// Like [`reduce`] on a GPU device, forcing kernel version `v` (1 or 2); benches and tests.
pub fn reduce_version(op: ReduceOp, x: &Tensor, axis: isize, keepdim: bool, v: u32) -> Result<Tensor> {
    let rs = prepare(op, x, axis, keepdim)?;
    match x.device() {
        Device::Cpu => cpu::reduce(op, x.cpu_f32()?, &rs),
        _ => cuda::reduce(op, x, &rs, Some(v)),
    }
}

/// Σ over `axis` (torch `x.sum(dim=axis, keepdim=keepdim)`).
pub fn sum(x: &Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
    reduce(ReduceOp::Sum, x, axis, keepdim)
}
/// Mean over `axis` (torch `x.mean(dim=axis, keepdim=keepdim)`; NaN over an empty axis).
pub fn mean(x: &Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
    reduce(ReduceOp::Mean, x, axis, keepdim)
}
/// Max over `axis`, values only, NaN-propagating (torch `x.amax(dim=axis, keepdim=keepdim)`).
pub fn max(x: &Tensor, axis: isize, keepdim: bool) -> Result<Tensor> {
    reduce(ReduceOp::Max, x, axis, keepdim)
}

/// The version the dispatcher picks: a block per output when rows are long and outputs few or
/// contiguous rows are reduced; a thread per output (coalesced across `inner`) otherwise.
pub fn default_version(rs: &ReduceShape) -> u32 {
    if rs.len >= 256 && (rs.inner == 1 || rs.outer * rs.inner <= 2048) {
        2
    } else {
        1
    }
}

/// Benchmark cases: AST-GRU's mean over frequency of (12, 101, 768) (axis 0) and a sum over the
/// hidden dim of 1214 × 768, per backend and kernel version.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let mut out = Vec::new();
    for (case, op, shape, axis) in
        [("mean_12x101x768_axis0", ReduceOp::Mean, vec![12usize, 101, 768], 0isize), ("sum_1214x768_axis-1", ReduceOp::Sum, vec![1214, 768], -1)]
    {
        let x = crate::testing::rand_tensor(&shape, 5);
        let rs = reduce_shape("bench", &shape, axis, false)?;
        let work = Work::Bytes(4.0 * (x.numel() + rs.outer * rs.inner) as f64);
        out.extend(version_cases("reduce", case, device, DType::F32, work, &[1, 2], (1e-5, 1e-5), vec![x], move |t, v| match v {
            None => reduce(op, &t[0], axis, false),
            Some(v) => reduce_version(op, &t[0], axis, false, v),
        })?);
    }
    Ok(out)
}
