//! Launchers of `kernels/cuda/adamw.cu` (`adamw_fwd_f32_v1`, `adamw_amsgrad_fwd_f32_v1`).

use super::{AdamWScalars, AdamWState};
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `AdamWParams` in adamw.cu: the element count, then the step's scalars in
/// [`AdamWScalars`]' field order (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AdamWParams {
    pub n: i32,
    pub s: AdamWScalars,
}
const _: () = assert!(std::mem::size_of::<AdamWParams>() == 32);

pub(super) fn adamw(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, s: &AdamWScalars) -> Result<AdamWState> {
    let n = p.numel();
    if n > i32::MAX as usize {
        return Err(Error::shape("adamw", format!("{n} elements exceed the CUDA kernel's i32 indexing")));
    }
    let dev = p.device();
    let be = backend(dev)?;
    let (po, mo, vo) = (be.alloc(n * 4)?, be.alloc(n * 4)?, be.alloc(n * 4)?);
    if n > 0 {
        let a = AdamWParams { n: n as i32, s: *s };
        Launch::new("adamw", "adamw", "adamw_fwd_f32_v1")
            .grid(grid_1d(n, 256), 1, 1)
            .block(256, 1, 1)
            .buf(p.gpu_buf()?)
            .buf(g.gpu_buf()?)
            .buf(m.gpu_buf()?)
            .buf(v.gpu_buf()?)
            .buf(&po)
            .buf(&mo)
            .buf(&vo)
            .param(&a)
            .run(&be)?;
    }
    let t = |b| Tensor::from_gpu(b, p.shape(), DType::F32, dev);
    Ok(AdamWState { param: t(po), exp_avg: t(mo), exp_avg_sq: t(vo), max_exp_avg_sq: None })
}

/// Launches `adamw_amsgrad_fwd_f32_v1` (same [`AdamWParams`] as the plain kernel, one more input and
/// output: the previous and the new max_exp_avg_sq).
pub(super) fn adamw_amsgrad(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, vmax: &Tensor, s: &AdamWScalars) -> Result<AdamWState> {
    let n = p.numel();
    if n > i32::MAX as usize {
        return Err(Error::shape("adamw_amsgrad", format!("{n} elements exceed the CUDA kernel's i32 indexing")));
    }
    let dev = p.device();
    let be = backend(dev)?;
    let (po, mo, vo, xo) = (be.alloc(n * 4)?, be.alloc(n * 4)?, be.alloc(n * 4)?, be.alloc(n * 4)?);
    if n > 0 {
        let a = AdamWParams { n: n as i32, s: *s };
        Launch::new("adamw_amsgrad", "adamw", "adamw_amsgrad_fwd_f32_v1")
            .grid(grid_1d(n, 256), 1, 1)
            .block(256, 1, 1)
            .buf(p.gpu_buf()?)
            .buf(g.gpu_buf()?)
            .buf(m.gpu_buf()?)
            .buf(v.gpu_buf()?)
            .buf(vmax.gpu_buf()?)
            .buf(&po)
            .buf(&mo)
            .buf(&vo)
            .buf(&xo)
            .param(&a)
            .run(&be)?;
    }
    let t = |b| Tensor::from_gpu(b, p.shape(), DType::F32, dev);
    Ok(AdamWState { param: t(po), exp_avg: t(mo), exp_avg_sq: t(vo), max_exp_avg_sq: Some(t(xo)) })
}
