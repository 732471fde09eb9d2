//! Backward of [`super::standardize_add`]. Per plane (b, c) of n = H·W values and z ∈ {x, f} with
//! weight wz: d = z − μz, Q = Σ d², σ = √(Q/(n − 1)) (unbiased), e = σ + eps, k = wz/e, and with
//! ḡ = Σ dy / n, S = Σ dy·d:
//! - `dz = k·(dy − ḡ) − (k/e)·S·d / ((n − 1)·σ)` (through μ: the mean of dy removed; through σ:
//!   ∂σ/∂z = d/((n − 1)σ), ∂k/∂σ = −k/e). Where σ = 0 (a constant plane, d = 0) the second term is 0,
//!   as PyTorch's `std` backward masks it;
//! - `dwz = Σ_planes S / e` (a scalar: wz is one number for the whole map).
//!
//! Precision: all statistics and the per-value gradient in f64, rounded once; the CPU and the kernel
//! differ only in the order of the f64 sums. CUDA: `standardize_add_data_bwd_f32_v1` in
//! `kernels/cuda/standardize.cu` (one block per plane; per-plane dwx/dwf partials summed with
//! [`crate::ops::reduce::sum`] on the device).

use rayon::prelude::*;

use super::cuda::StandardizeParams;
use super::{check, OP};
use crate::gpu::{backend, Launch};
use crate::ops::groupnorm::cpu::group_moments;
use crate::ops::reduce::sum;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const BWD_OP: &str = "standardize_add_bwd";
/// Threads per block of `standardize_add_data_bwd_f32_v1`.
const THREADS: u32 = 256;

/// Gradients of [`super::standardize_add`].
#[derive(Debug, Clone)]
pub struct StandardizeGrads {
    /// (B, C, H, W).
    pub dx: Tensor,
    /// (B, C, H, W).
    pub df: Tensor,
    /// [1]: the gradient of the scalar weight wx.
    pub dwx: Tensor,
    /// [1]: the gradient of the scalar weight wf.
    pub dwf: Tensor,
}

/// Gradients of `standardize_add(x, f, wx, wf, eps)` given the output gradient `dy` (x's shape).
pub fn standardize_add_bwd(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, dy: &Tensor) -> Result<StandardizeGrads> {
    let (planes, n) = check(x, f, wx, wf, eps)?;
    if dy.dtype() != DType::F32 {
        return Err(Error::DType { op: BWD_OP, got: dy.dtype(), msg: "dy must be f32".into() });
    }
    if dy.shape() != x.shape() {
        return Err(Error::shape(BWD_OP, format!("dy {:?} must be the input's shape {:?}", dy.shape(), x.shape())));
    }
    same_device(BWD_OP, &[x, dy])?;
    let (dx, df, pwx, pwf) = match x.device() {
        Device::Cpu => cpu(x, f, wx, wf, eps, n, dy)?,
        Device::Cuda(_) | Device::Emu => cuda(x, f, wx, wf, eps, planes, n, dy)?,
    };
    Ok(StandardizeGrads { dx, df, dwx: sum(&pwx, 0, true)?, dwf: sum(&pwf, 0, true)? })
}

/// One map's per-plane gradient: writes dz, returns S/e.
fn plane_grad(z: &[f32], g: &[f32], (mu, q): (f64, f64), gbar: f64, w: f32, eps: f32, out: &mut [f32]) -> f64 {
    let n1 = (z.len() - 1) as f64;
    let sigma = (q / n1).sqrt();
    let e = sigma + eps as f64;
    let k = w as f64 / e;
    let s: f64 = z.iter().zip(g).map(|(&a, &b)| b as f64 * (a as f64 - mu)).sum();
    let c2 = if sigma > 0.0 { k / e * s / (n1 * sigma) } else { 0.0 };
    for ((o, &a), &b) in out.iter_mut().zip(z).zip(g) {
        *o = (k * (b as f64 - gbar) - c2 * (a as f64 - mu)) as f32;
    }
    s / e
}

type Parts = (Tensor, Tensor, Tensor, Tensor);

fn cpu(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, n: usize, dy: &Tensor) -> Result<Parts> {
    let (xs, fs, gs) = (x.cpu_f32()?, f.cpu_f32()?, dy.cpu_f32()?);
    let (mx, mf) = (group_moments(xs, n), group_moments(fs, n));
    let mut dx = vec![0f32; xs.len()];
    let mut df = vec![0f32; xs.len()];
    let parts: Vec<(f32, f32)> = dx
        .par_chunks_mut(n)
        .zip(df.par_chunks_mut(n))
        .enumerate()
        .map(|(pl, (ox, of))| {
            let r = pl * n..(pl + 1) * n;
            let g = &gs[r.clone()];
            let gbar = g.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let a = plane_grad(&xs[r.clone()], g, mx[pl], gbar, wx, eps, ox);
            let b = plane_grad(&fs[r], g, mf[pl], gbar, wf, eps, of);
            (a as f32, b as f32)
        })
        .collect();
    let p = parts.len();
    let (pa, pb): (Vec<f32>, Vec<f32>) = parts.into_iter().unzip();
    Ok((Tensor::from_vec(dx, x.shape())?, Tensor::from_vec(df, x.shape())?, Tensor::from_vec(pa, &[p])?, Tensor::from_vec(pb, &[p])?))
}

#[allow(clippy::too_many_arguments)]
fn cuda(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, planes: usize, n: usize, dy: &Tensor) -> Result<Parts> {
    let kernel = "standardize_add_data_bwd_f32_v1";
    if x.numel() > i32::MAX as usize {
        return Err(Error::Launch {
            op: OP,
            kernel: kernel.into(),
            msg: format!("input {:?} has {} elements, over the kernel's i32 indexing", x.shape(), x.numel()),
        });
    }
    let dev = x.device();
    let be = backend(dev)?;
    let (dxb, dfb) = (be.alloc(x.numel() * 4)?, be.alloc(x.numel() * 4)?);
    let (pa, pb) = (be.alloc_zeros(planes * 4)?, be.alloc_zeros(planes * 4)?);
    if planes > 0 {
        let p = StandardizeParams { planes: planes as i32, n: n as i32, wx, wf, eps, _pad: 0 };
        Launch::new(BWD_OP, "standardize", kernel)
            .grid(planes as u32, 1, 1)
            .block(THREADS, 1, 1)
            .buf(x.gpu_buf()?)
            .buf(f.gpu_buf()?)
            .buf(dy.gpu_buf()?)
            .buf(&dxb)
            .buf(&dfb)
            .buf(&pa)
            .buf(&pb)
            .param(&p)
            .run(&be)?;
    }
    let t = |b, s: &[usize]| Tensor::from_gpu(b, s, DType::F32, dev);
    Ok((t(dxb, x.shape()), t(dfb, x.shape()), t(pa, &[planes]), t(pb, &[planes])))
}

/// Backward bench case at the separator's size: (1, 384, 63, 16).
pub(super) fn bench_case(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let shape = [1, 384, 63, 16];
    let ins = vec![rand_tensor(&shape, 1311), rand_tensor(&shape, 1312), rand_tensor(&shape, 1313)];
    let bytes = 4.0 * 5.0 * (384 * 63 * 16) as f64;
    version_cases(BWD_OP, "bottleneck_384x63x16", device, DType::F32, Work::Bytes(bytes), &[1], (1e-5, 1e-4), ins, |t, _| {
        Ok(standardize_add_bwd(&t[0], &t[1], 0.5, 1.5, 1e-6, &t[2])?.dx)
    })
}
