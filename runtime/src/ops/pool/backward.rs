//! Backward of [`super::avg_pool2d`] (kernel = stride, no padding; issue #18):
//! `dx[b, c, h, w] = dy[b, c, h / kh, w / kw] / (kh·kw)` for h < Ho·kh and w < Wo·kw, and 0 on the
//! rows/columns the forward's floor dropped. The division is the f32 IEEE division by the f32 value
//! kh·kw, on CPU and GPU alike, so both are bit-identical.
//!
//! CPU: rayon over (b, c) planes. CUDA: `avg_pool2d_bwd_f32_v1` in `kernels/cuda/pool.cu` (one thread
//! per input element).

use rayon::prelude::*;

use super::cuda::PoolParams;
use super::Geom;
use crate::gpu::{backend, Launch};
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "avg_pool2d_bwd";
const THREADS: u32 = 256;

/// Gradient of `avg_pool2d(x, kernel)` with respect to `x` (of shape `input_shape`, (B, C, H, W)),
/// given the output gradient `dy` (B, C, ⌊H / kh⌋, ⌊W / kw⌋).
pub fn avg_pool2d_bwd(dy: &Tensor, input_shape: &[usize], kernel: (usize, usize)) -> Result<Tensor> {
    avg_pool2d_bwd_version(dy, input_shape, kernel, None)
}

/// [`avg_pool2d_bwd`] forcing kernel version `v` (1) on a GPU device; benches and tests.
pub fn avg_pool2d_bwd_version(dy: &Tensor, input_shape: &[usize], (kh, kw): (usize, usize), v: Option<u32>) -> Result<Tensor> {
    expect_dtype(OP, dy, DType::F32)?;
    same_device(OP, &[dy])?;
    let s = input_shape;
    if s.len() != 4 || kh == 0 || kw == 0 || s[2] < kh || s[3] < kw {
        return Err(Error::shape(OP, format!("input shape must be (B, C, H, W) with H ≥ {kh} and W ≥ {kw} for a ({kh}, {kw}) window, got {s:?}")));
    }
    let g = Geom { planes: s[0] * s[1], h: s[2], w: s[3], kh, kw, ho: s[2] / kh, wo: s[3] / kw };
    if dy.shape() != [s[0], s[1], g.ho, g.wo] {
        return Err(Error::shape(OP, format!("dy {:?} must be [{}, {}, {}, {}] for input {s:?} and window ({kh}, {kw})", dy.shape(), s[0], s[1], g.ho, g.wo)));
    }
    match dy.device() {
        Device::Cpu => cpu(dy.cpu_f32()?, &g, s),
        Device::Cuda(_) | Device::Emu => cuda(dy, &g, s, v),
    }
}

fn cpu(dy: &[f32], g: &Geom, shape: &[usize]) -> Result<Tensor> {
    let div = (g.kh * g.kw) as f32;
    let mut dx = vec![0f32; g.planes * g.h * g.w];
    if dx.is_empty() {
        return Tensor::from_vec(dx, shape);
    }
    dx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(pl, d)| {
        let gp = &dy[pl * g.ho * g.wo..][..g.ho * g.wo];
        for oh in 0..g.ho {
            let grow = &gp[oh * g.wo..][..g.wo];
            for i in 0..g.kh {
                let drow = &mut d[(oh * g.kh + i) * g.w..][..g.w];
                for (ow, &gv) in grow.iter().enumerate() {
                    let v = gv / div;
                    drow[ow * g.kw..][..g.kw].iter_mut().for_each(|t| *t = v);
                }
            }
        }
    });
    Tensor::from_vec(dx, shape)
}

fn cuda(dy: &Tensor, g: &Geom, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("avg_pool2d_bwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: OP, kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    let n = g.planes * g.h * g.w;
    if n > i32::MAX as usize {
        return Err(err(format!("input {shape:?} has {n} elements, over the kernel's i32 indexing")));
    }
    let be = backend(dy.device())?;
    let dx = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(dx, shape, DType::F32, dy.device()));
    }
    let p = PoolParams { planes: g.planes as i32, h: g.h as i32, w: g.w as i32, kh: g.kh as i32, kw: g.kw as i32, ho: g.ho as i32, wo: g.wo as i32, _pad: 0 };
    let blocks = n.div_ceil(THREADS as usize) as u32; // ≤ 2^23: within grid.x's 2^31 − 1
    Launch::new(OP, "pool", kernel.clone()).grid(blocks, 1, 1).block(THREADS, 1, 1).buf(dy.gpu_buf()?).buf(&dx).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(dx, shape, DType::F32, dy.device()))
}
