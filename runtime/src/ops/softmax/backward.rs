//! Backward of softmax over the last dim (autograd, issue #7): given `y = softmax(x)` and `dy`,
//! `dx = y · (dy − Σ_j y·dy)` per row. CPU: rayon over rows (the reference). CUDA:
//! `softmax_bwd_f32_v1` (warp per row) in `kernels/cuda/softmax.cu`.

use rayon::prelude::*;

use super::cuda::SoftmaxParams;
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

/// `dx` of softmax over the last dim from the forward output `y` and the output gradient `dy`.
pub fn softmax_bwd(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "softmax_bwd";
    expect_dtype(op, y, DType::F32)?;
    expect_dtype(op, dy, DType::F32)?;
    if y.shape() != dy.shape() || y.rank() == 0 {
        return Err(Error::Shape { op, msg: format!("y {:?} and dy {:?} must have one shape of rank ≥ 1", y.shape(), dy.shape()) });
    }
    let len = *y.shape().last().unwrap();
    let rows = if len == 0 { 0 } else { y.numel() / len };
    match same_device(op, &[y, dy])? {
        Device::Cpu => {
            let (yv, gv) = (y.cpu_f32()?, dy.cpu_f32()?);
            let mut out = vec![0f32; yv.len()];
            if len > 0 {
                let per = (8192 / len).max(1) * len;
                out.par_chunks_mut(per).zip(yv.par_chunks(per).zip(gv.par_chunks(per))).for_each(|(o, (ys, gs))| {
                    for ((o, yr), gr) in o.chunks_exact_mut(len).zip(ys.chunks_exact(len)).zip(gs.chunks_exact(len)) {
                        for ((o, &a), &g) in o.iter_mut().zip(yr).zip(gr) {
                            *o = a * g;
                        }
                        let s = crate::ops::reduce::sum_f32(o);
                        for ((o, &a), &g) in o.iter_mut().zip(yr).zip(gr) {
                            *o = a * (g - s);
                        }
                    }
                });
            }
            Tensor::from_vec(out, y.shape())
        }
        Device::Cuda(_) | Device::Emu => {
            let n = y.numel();
            if n > i32::MAX as usize {
                return Err(Error::shape(op, format!("shape {:?} exceeds the CUDA kernel's i32 indexing", y.shape())));
            }
            let be = backend(y.device())?;
            let out = be.alloc(n * 4)?;
            if n > 0 {
                let p = SoftmaxParams { rows: rows as i32, len: len as i32 };
                Launch::new(op, "softmax", "softmax_bwd_f32_v1")
                    .grid(grid_1d(rows, 8), 1, 1)
                    .block(256, 1, 1)
                    .buf(y.gpu_buf()?)
                    .buf(dy.gpu_buf()?)
                    .buf(&out)
                    .param(&p)
                    .run(&be)?;
            }
            Ok(Tensor::from_gpu(out, y.shape(), DType::F32, y.device()))
        }
    }
}
