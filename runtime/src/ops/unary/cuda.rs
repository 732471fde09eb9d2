//! Launcher of `kernels/cuda/unary.cu`.

use super::UnaryOp;
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `UnaryParams` in unary.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct UnaryParams {
    pub n: i32,
    /// First scalar (leaky_relu slope, affine scale).
    pub a: f32,
    /// Second scalar (affine shift).
    pub b: f32,
    pub _pad: i32,
}
const _: () = assert!(std::mem::size_of::<UnaryParams>() == 16);

const THREADS: u32 = 256;

fn check_n(op: &'static str, n: usize) -> Result<()> {
    if n > i32::MAX as usize {
        return Err(Error::shape(op, format!("{n} elements exceed the CUDA kernel's i32 indexing")));
    }
    Ok(())
}

pub(super) fn unary(op: UnaryOp, x: &Tensor, version: Option<u32>) -> Result<Tensor> {
    let n = x.numel();
    check_n("unary", n)?;
    let be = backend(x.device())?;
    let out = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    let v = version.unwrap_or(if n % 4 == 0 { 2 } else { 1 });
    let kernel = format!("{}_fwd_f32_v{v}", op.name());
    let work = match v {
        1 => n,
        2 if n % 4 == 0 => n / 4,
        2 => return Err(Error::Launch { op: "unary", kernel, msg: format!("v2 (float4) needs n % 4 == 0, n = {n}") }),
        _ => return Err(Error::Launch { op: "unary", kernel, msg: "no such version (1 or 2)".into() }),
    };
    let (a, b) = op.params();
    let p = UnaryParams { n: n as i32, a, b, _pad: 0 };
    Launch::new("unary", "unary", kernel).grid(grid_1d(work, THREADS), 1, 1).block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
}

/// f32 → f16 (`to_f16_fwd_f32_v1`) or f16 → f32 (`to_f32_fwd_f16_v1`).
pub(super) fn cast(x: &Tensor, to: DType) -> Result<Tensor> {
    let n = x.numel();
    let op = if to == DType::F16 { "to_f16" } else { "to_f32" };
    check_n(op, n)?;
    let be = backend(x.device())?;
    let out = be.alloc(n * to.size())?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), to, x.device()));
    }
    let kernel = format!("{op}_fwd_{}_v1", x.dtype());
    let p = UnaryParams { n: n as i32, a: 0.0, b: 0.0, _pad: 0 };
    Launch::new(op, "unary", kernel).grid(grid_1d(n, THREADS), 1, 1).block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), to, x.device()))
}
