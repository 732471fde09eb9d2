//! Backward of the exact GELU (autograd, issue #7): `dx = dy · (Φ(x) + x·φ(x))`, torch's
//! `gelu_backward(dy, x, approximate='none')`. CPU: rayon over chunks (the reference). CUDA:
//! `gelu_bwd_f32_v1` in `kernels/cuda/unary.cu`. The other unary backward rules are compositions of
//! runtime ops (`autograd/src/ops/unary.rs`).

use rayon::prelude::*;

use super::cuda::UnaryParams;
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

/// d gelu(x) / dx = Φ(x) + x·φ(x), f32 (the CPU reference of `gelu_bwd_f32_v1`).
#[inline]
pub fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * super::cpu::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2);
    let pdf = 0.398_942_3 * (-0.5 * x * x).exp();
    cdf + x * pdf
}

/// `dy · gelu'(x)` elementwise; `x` is the forward input, `dy` the gradient of the output.
pub fn gelu_bwd(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "gelu_bwd";
    expect_dtype(op, x, DType::F32)?;
    expect_dtype(op, dy, DType::F32)?;
    if x.shape() != dy.shape() {
        return Err(Error::Shape { op, msg: format!("x {:?} and dy {:?} must have one shape", x.shape(), dy.shape()) });
    }
    match same_device(op, &[x, dy])? {
        Device::Cpu => {
            let (xv, gv) = (x.cpu_f32()?, dy.cpu_f32()?);
            let mut out = vec![0f32; xv.len()];
            out.par_chunks_mut(1 << 14).zip(xv.par_chunks(1 << 14).zip(gv.par_chunks(1 << 14))).for_each(|(o, (xs, gs))| {
                for ((o, &a), &g) in o.iter_mut().zip(xs).zip(gs) {
                    *o = g * gelu_grad(a);
                }
            });
            Tensor::from_vec(out, x.shape())
        }
        Device::Cuda(_) | Device::Emu => {
            let n = x.numel();
            if n > i32::MAX as usize {
                return Err(Error::shape(op, format!("{n} elements exceed the CUDA kernel's i32 indexing")));
            }
            let be = backend(x.device())?;
            let out = be.alloc(n * 4)?;
            if n > 0 {
                let p = UnaryParams { n: n as i32, a: 0.0, b: 0.0, _pad: 0 };
                Launch::new(op, "unary", "gelu_bwd_f32_v1")
                    .grid(grid_1d(n, 256), 1, 1)
                    .block(256, 1, 1)
                    .buf(x.gpu_buf()?)
                    .buf(dy.gpu_buf()?)
                    .buf(&out)
                    .param(&p)
                    .run(&be)?;
            }
            Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
        }
    }
}
