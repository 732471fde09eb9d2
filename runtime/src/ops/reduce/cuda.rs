//! Launcher of `kernels/cuda/reduce.cu`.

use super::{ReduceOp, ReduceShape};
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `ReduceParams` in reduce.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ReduceParams {
    pub outer: i32,
    pub len: i32,
    pub inner: i32,
    /// The sum is divided by this (1 for sum, L for mean).
    pub div: f32,
}
const _: () = assert!(std::mem::size_of::<ReduceParams>() == 16);

const V1_THREADS: u32 = 256;
/// v2 block size; must equal `V2_THREADS` in reduce.cu (its shared-memory tree).
const V2_THREADS: u32 = 256;

pub(super) fn reduce(op: ReduceOp, x: &Tensor, rs: &ReduceShape, version: Option<u32>) -> Result<Tensor> {
    let name = op.name();
    if x.numel() > i32::MAX as usize {
        return Err(Error::shape(name, format!("shape {:?} exceeds the CUDA kernel's i32 indexing", x.shape())));
    }
    let n_out = rs.outer * rs.inner;
    let be = backend(x.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, &rs.out, DType::F32, x.device()));
    }
    let v = version.unwrap_or(super::default_version(rs));
    let kname = if op == ReduceOp::Max { "max" } else { "sum" };
    let kernel = format!("{kname}_fwd_f32_v{v}");
    let (grid, block) = match v {
        1 => (grid_1d(n_out, V1_THREADS), V1_THREADS),
        2 => (grid_1d(n_out, 1), V2_THREADS),
        _ => return Err(Error::Launch { op: name, kernel, msg: "no such version (1 or 2)".into() }),
    };
    let p = ReduceParams { outer: rs.outer as i32, len: rs.len as i32, inner: rs.inner as i32, div: if op == ReduceOp::Mean { rs.len as f32 } else { 1.0 } };
    Launch::new(name, "reduce", kernel).grid(grid, 1, 1).block(block, 1, 1).buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &rs.out, DType::F32, x.device()))
}
