//! Launcher of `kernels/cuda/standardize.cu` (`standardize_add_fwd_f32_v1`).

use crate::gpu::{backend, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `StandardizeParams` in standardize.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StandardizeParams {
    /// B·C.
    pub planes: i32,
    /// H·W.
    pub n: i32,
    pub wx: f32,
    pub wf: f32,
    pub eps: f32,
    pub _pad: i32,
}
const _: () = assert!(std::mem::size_of::<StandardizeParams>() == 24);

const THREADS: u32 = 256;

#[allow(clippy::too_many_arguments)]
pub(super) fn standardize_add(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, planes: usize, n: usize, v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("standardize_add_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: super::OP, kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    if x.numel() > i32::MAX as usize {
        return Err(err(format!("input {:?} has {} elements, over the kernel's i32 indexing", x.shape(), x.numel())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(x.numel() * 4)?;
    if x.numel() == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    let p = StandardizeParams { planes: planes as i32, n: n as i32, wx, wf, eps, _pad: 0 };
    Launch::new(super::OP, "standardize", kernel.clone())
        .grid(planes as u32, 1, 1)
        .block(THREADS, 1, 1)
        .buf(x.gpu_buf()?)
        .buf(f.gpu_buf()?)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
}
