//! Launcher of `kernels/cuda/softmax.cu`.

use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `SoftmaxParams` in softmax.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SoftmaxParams {
    pub rows: i32,
    pub len: i32,
}
const _: () = assert!(std::mem::size_of::<SoftmaxParams>() == 8);

/// Threads per block: v1 (thread per row), v2 (8 warps = 8 rows per block), v3 (one row per block).
const V1_THREADS: u32 = 128;
const V2_THREADS: u32 = 256;
const V3_THREADS: u32 = 256;

pub(super) fn softmax(x: &Tensor, rows: usize, len: usize, version: Option<u32>) -> Result<Tensor> {
    let n = x.numel();
    if n > i32::MAX as usize {
        return Err(Error::shape("softmax", format!("shape {:?} exceeds the CUDA kernel's i32 indexing", x.shape())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    let v = version.unwrap_or(super::default_version(len));
    let kernel = format!("softmax_fwd_f32_v{v}");
    let (grid, block) = match v {
        1 => (grid_1d(rows, V1_THREADS), V1_THREADS),
        2 => (grid_1d(rows, V2_THREADS / 32), V2_THREADS),
        3 => (grid_1d(rows, 1), V3_THREADS),
        _ => return Err(Error::Launch { op: "softmax", kernel, msg: "no such version (1, 2 or 3)".into() }),
    };
    let p = SoftmaxParams { rows: rows as i32, len: len as i32 };
    Launch::new("softmax", "softmax", kernel).grid(grid, 1, 1).block(block, 1, 1).buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
}
