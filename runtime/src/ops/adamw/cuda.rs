//! Launcher of `kernels/cuda/adamw.cu`.

use super::{AdamWScalars, AdamWState};
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `AdamWParams` in adamw.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AdamWParams {
    pub n: i32,
    pub decay: f32,
    pub one_m_beta1: f32,
    pub beta2: f32,
    pub one_m_beta2: f32,
    pub neg_step_size: f32,
    pub bc2_sqrt: f32,
    pub eps: f32,
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
        let a = AdamWParams {
            n: n as i32,
            decay: s.decay,
            one_m_beta1: s.one_m_beta1,
            beta2: s.beta2,
            one_m_beta2: s.one_m_beta2,
            neg_step_size: s.neg_step_size,
            bc2_sqrt: s.bc2_sqrt,
            eps: s.eps,
        };
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
    Ok(AdamWState { param: t(po), exp_avg: t(mo), exp_avg_sq: t(vo) })
}
