//! Launcher of `kernels/cuda/pool.cu` (`avg_pool2d_fwd_f32_v1`).

use super::Geom;
use crate::gpu::{backend, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `PoolParams` in pool.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PoolParams {
    /// B·C.
    pub planes: i32,
    pub h: i32,
    pub w: i32,
    pub kh: i32,
    pub kw: i32,
    pub ho: i32,
    pub wo: i32,
    pub _pad: i32,
}
const _: () = assert!(std::mem::size_of::<PoolParams>() == 32);

const THREADS: u32 = 256;

pub(super) fn avg_pool2d(x: &Tensor, g: &Geom, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("avg_pool2d_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: "avg_pool2d", kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    // kh·kw ≤ H·W here (the API checked H ≥ kh, W ≥ kw), so only the tensor sizes can overflow.
    if x.numel() > i32::MAX as usize {
        return Err(err(format!("input {:?} has {} elements, over the kernel's i32 indexing", x.shape(), x.numel())));
    }
    let n_out = g.planes * g.ho * g.wo;
    let be = backend(x.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()));
    }
    let p = PoolParams { planes: g.planes as i32, h: g.h as i32, w: g.w as i32, kh: g.kh as i32, kw: g.kw as i32, ho: g.ho as i32, wo: g.wo as i32, _pad: 0 };
    let blocks = n_out.div_ceil(THREADS as usize) as u32; // ≤ 2^23: within grid.x's 2^31 − 1
    Launch::new("avg_pool2d", "pool", kernel.clone()).grid(blocks, 1, 1).block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()))
}
