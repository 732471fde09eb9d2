//! Launcher of `kernels/cuda/layernorm.cu`.

use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `LayerNormParams` in layernorm.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LayerNormParams {
    pub rows: i32,
    pub len: i32,
    pub eps: f32,
    /// Bit 0: weight present; bit 1: bias present.
    pub flags: i32,
}
const _: () = assert!(std::mem::size_of::<LayerNormParams>() == 16);

const V1_THREADS: u32 = 128;
const V2_THREADS: u32 = 256;

pub(super) fn layernorm(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32, rows: usize, len: usize, version: Option<u32>) -> Result<Tensor> {
    let n = x.numel();
    if n > i32::MAX as usize {
        return Err(Error::shape("layernorm", format!("shape {:?} exceeds the CUDA kernel's i32 indexing", x.shape())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    let v = version.unwrap_or(2);
    let kernel = format!("layernorm_fwd_f32_v{v}");
    let (grid, block) = match v {
        1 => (grid_1d(rows, V1_THREADS), V1_THREADS),
        2 => (grid_1d(rows, V2_THREADS / 32), V2_THREADS),
        _ => return Err(Error::Launch { op: "layernorm", kernel, msg: "no such version (1 or 2)".into() }),
    };
    let xb = x.gpu_buf()?;
    // An absent weight/bias is passed as x's address and never read (flags say so).
    let wb = weight.map(|w| w.gpu_buf()).transpose()?.unwrap_or(xb);
    let bb = bias.map(|b| b.gpu_buf()).transpose()?.unwrap_or(xb);
    let p = LayerNormParams { rows: rows as i32, len: len as i32, eps, flags: weight.is_some() as i32 | (bias.is_some() as i32) << 1 };
    Launch::new("layernorm", "layernorm", kernel).grid(grid, 1, 1).block(block, 1, 1).buf(xb).buf(wb).buf(bb).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
}
