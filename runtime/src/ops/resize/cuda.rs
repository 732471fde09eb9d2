//! Launcher of `kernels/cuda/resize.cu` (`resize_bilinear_fwd_f32_v1`).

use super::Geom;
use crate::gpu::{backend, Launch};
use crate::ops::conv2d::PreAct;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `ResizeParams` in resize.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ResizeParams {
    /// N·C.
    pub planes: i32,
    pub channels: i32,
    pub h: i32,
    pub w: i32,
    pub ho: i32,
    pub wo: i32,
    pub scale_h: f32,
    pub scale_w: f32,
    pub slope: f32,
    /// Bit 0: pre-activation; bit 1: its shift is (N, C).
    pub flags: i32,
}
const _: () = assert!(std::mem::size_of::<ResizeParams>() == 40);

const THREADS: u32 = 256;

pub(super) fn resize_bilinear(x: &Tensor, pre: Option<&PreAct>, g: &Geom, v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("resize_bilinear_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: super::OP, kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    let shape = g.out_shape();
    let n_out = g.n * g.c * g.ho * g.wo;
    if x.numel() > i32::MAX as usize || n_out > i32::MAX as usize {
        return Err(err(format!("input {:?} or output {shape:?} has over 2^31 − 1 elements, beyond the kernel's i32 indexing", x.shape())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, &shape, DType::F32, x.device()));
    }
    let (scale_h, scale_w) = g.scales();
    let p = ResizeParams {
        planes: (g.n * g.c) as i32,
        channels: g.c as i32,
        h: g.h as i32,
        w: g.w as i32,
        ho: g.ho as i32,
        wo: g.wo as i32,
        scale_h,
        scale_w,
        slope: pre.map(|p| p.slope).unwrap_or(0.0),
        flags: pre.is_some() as i32 | ((pre.is_some() && g.shift_per_batch) as i32) << 1,
    };
    let xb = x.gpu_buf()?;
    // Without a pre-activation, scale and shift are passed as x's address and never read (flags say so).
    let (sb, fb) = match pre {
        Some(p) => (p.scale.gpu_buf()?, p.shift.gpu_buf()?),
        None => (xb, xb),
    };
    let blocks = n_out.div_ceil(THREADS as usize) as u32; // ≤ 2^23: within grid.x's 2^31 − 1
    Launch::new(super::OP, "resize", kernel.clone()).grid(blocks, 1, 1).block(THREADS, 1, 1).buf(xb).buf(sb).buf(fb).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &shape, DType::F32, x.device()))
}
