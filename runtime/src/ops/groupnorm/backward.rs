//! Backward of [`super::group_norm`] (`nn.GroupNorm`'s, biased variance). Per item n and group g of
//! m = Cg·S values, with μ, rstd = 1/√(σ² + eps) as the forward and x̂ = (x − μ)·rstd:
//! - `dbias[c] = Σ_{n, s} dy`, `dweight[c] = Σ_{n, s} dy·x̂`, `dresidual = dy`;
//! - `dx = rstd·(dy·w[c] − A/m − x̂·B/m)` with `A = Σ_group dy·w[c]`, `B = Σ_group dy·w[c]·x̂`
//!   (the derivative through μ and σ², which see every value of the group).
//!
//! Precision: μ, rstd, x̂ and every sum in f64; A and B are built from the per-(n, c) sums
//! (`A = Σ_c w[c]·Σ_s dy`, `B = Σ_c w[c]·Σ_s dy·x̂`), which are also dweight's and dbias's partials.
//! dx is computed in f64 and rounded once. The CPU and the kernel differ only in the order of the f64
//! sums.
//!
//! CUDA: `group_norm_data_bwd_f32_v1` in `kernels/cuda/groupnorm.cu` (one block per (n, g), two-pass
//! statistics, then per channel a block reduction of (Σ dy, Σ dy·x̂), then dx), writing per-(n, c)
//! partials that [`crate::ops::reduce::sum`] reduces over items into dweight and dbias on the device.

use rayon::prelude::*;

use super::cpu::group_moments;
use super::cuda::GroupNormParams;
use super::{Geom, OP};
use crate::gpu::{backend, Launch};
use crate::ops::reduce::sum;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const BWD_OP: &str = "group_norm_bwd";
/// Threads per block of `group_norm_data_bwd_f32_v1`.
const THREADS: u32 = 256;

/// Gradients of [`super::group_norm`].
#[derive(Debug, Clone)]
pub struct GroupNormGrads {
    /// x's shape.
    pub dx: Tensor,
    /// (C), when a weight was given.
    pub dweight: Option<Tensor>,
    /// (C), when a bias was given.
    pub dbias: Option<Tensor>,
    /// x's shape (= dy), when a residual was given.
    pub dresidual: Option<Tensor>,
}

/// Gradients of `group_norm(x, groups, weight, bias, eps, residual)` given the output gradient `dy`
/// (x's shape). `weight = None` means ones (and no dweight), `bias = None` zeros (and no dbias); the
/// residual's values are not needed, only whether there is one.
pub fn group_norm_bwd(
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
    residual: Option<&Tensor>,
    dy: &Tensor,
) -> Result<GroupNormGrads> {
    let s = x.shape();
    let c = if s.len() >= 2 { s[1] } else { 0 };
    let dev = x.device();
    let ones;
    let w = match weight {
        Some(w) => w,
        None => {
            ones = Tensor::full(&[c], 1.0, dev)?;
            &ones
        }
    };
    // The bias does not enter the gradients; a zero one stands in for the shape checks.
    let zeros;
    let b = match bias {
        Some(b) => b,
        None => {
            zeros = Tensor::zeros(&[c], DType::F32, dev)?;
            &zeros
        }
    };
    let g = super::geometry(x, groups, w, b, eps, residual)?;
    if dy.dtype() != DType::F32 {
        return Err(Error::DType { op: BWD_OP, got: dy.dtype(), msg: "dy must be f32".into() });
    }
    if dy.shape() != s {
        return Err(Error::shape(BWD_OP, format!("dy {:?} must be the input's shape {s:?}", dy.shape())));
    }
    same_device(BWD_OP, &[x, dy])?;
    let (dx, pdw, pdb) = match dev {
        Device::Cpu => cpu(x, w, eps, &g, dy)?,
        Device::Cuda(_) | Device::Emu => cuda(x, w, eps, &g, dy)?,
    };
    let dweight = weight.map(|_| sum(&pdw, 0, false)).transpose()?;
    let dbias = bias.map(|_| sum(&pdb, 0, false)).transpose()?;
    Ok(GroupNormGrads { dx, dweight, dbias, dresidual: residual.map(|_| dy.clone()) })
}

/// (dx, per-(n, c) Σ dy·x̂, per-(n, c) Σ dy), the partials (N, C).
fn cpu(x: &Tensor, w: &Tensor, eps: f32, g: &Geom, dy: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let (xs, ws, gs) = (x.cpu_f32()?, w.cpu_f32()?, dy.cpu_f32()?);
    let m = g.group_len();
    let (s, cg) = (g.spatial, g.channels / g.groups);
    let mut dx = vec![0f32; xs.len()];
    let mut pdw = vec![0f32; g.items * g.channels];
    let mut pdb = vec![0f32; g.items * g.channels];
    if m > 0 {
        let stats = group_moments(xs, m);
        dx.par_chunks_mut(m).zip(pdw.par_chunks_mut(cg)).zip(pdb.par_chunks_mut(cg)).enumerate().for_each(|(gi, ((d, pw), pb))| {
            let (mu, q) = stats[gi];
            let rstd = 1.0 / (q / m as f64 + eps as f64).sqrt();
            let c0 = (gi % g.groups) * cg;
            let (xg, gg) = (&xs[gi * m..][..m], &gs[gi * m..][..m]);
            let (mut a, mut bsum) = (0f64, 0f64);
            for k in 0..cg {
                let (mut sg, mut sgx) = (0f64, 0f64);
                for j in k * s..(k + 1) * s {
                    let xh = (xg[j] as f64 - mu) * rstd;
                    sg += gg[j] as f64;
                    sgx += gg[j] as f64 * xh;
                }
                pb[k] = sg as f32;
                pw[k] = sgx as f32;
                let wc = ws[c0 + k] as f64;
                a += wc * sg;
                bsum += wc * sgx;
            }
            let (a, bsum) = (a / m as f64, bsum / m as f64);
            for (j, dj) in d.iter_mut().enumerate() {
                let wc = ws[c0 + j / s] as f64;
                let xh = (xg[j] as f64 - mu) * rstd;
                *dj = (rstd * (gg[j] as f64 * wc - a - xh * bsum)) as f32;
            }
        });
    }
    let nc = [g.items, g.channels];
    Ok((Tensor::from_vec(dx, x.shape())?, Tensor::from_vec(pdw, &nc)?, Tensor::from_vec(pdb, &nc)?))
}

fn cuda(x: &Tensor, w: &Tensor, eps: f32, g: &Geom, dy: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let kernel = "group_norm_data_bwd_f32_v1";
    let n = x.numel();
    if n > i32::MAX as usize {
        return Err(Error::Launch { op: OP, kernel: kernel.into(), msg: format!("input {:?} has {n} elements, over the kernel's i32 indexing", x.shape()) });
    }
    let dev = x.device();
    let be = backend(dev)?;
    let nc = g.items * g.channels;
    let (dxb, pw, pb) = (be.alloc(n * 4)?, be.alloc_zeros(nc * 4)?, be.alloc_zeros(nc * 4)?);
    if n > 0 {
        let p = GroupNormParams { items: g.items as i32, channels: g.channels as i32, groups: g.groups as i32, spatial: g.spatial as i32, eps, flags: 0 };
        Launch::new(BWD_OP, "groupnorm", kernel)
            .grid((g.items * g.groups) as u32, 1, 1)
            .block(THREADS, 1, 1)
            .buf(x.gpu_buf()?)
            .buf(w.gpu_buf()?)
            .buf(dy.gpu_buf()?)
            .buf(&dxb)
            .buf(&pw)
            .buf(&pb)
            .param(&p)
            .run(&be)?;
    }
    let shape = [g.items, g.channels];
    Ok((Tensor::from_gpu(dxb, x.shape(), DType::F32, dev), Tensor::from_gpu(pw, &shape, DType::F32, dev), Tensor::from_gpu(pb, &shape, DType::F32, dev)))
}

/// Backward bench case at the DPRNN size: (1, 384, 63, 16), one group, with the residual.
pub(super) fn bench_case(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let shape = [1, 384, 63, 16];
    let n = (384 * 63 * 16) as f64;
    let ins = vec![rand_tensor(&shape, 1211), rand_tensor(&[384], 1212), rand_tensor(&[384], 1213), rand_tensor(&shape, 1214)];
    let bytes = 4.0 * (3.0 * n + 2.0 * 384.0);
    version_cases(BWD_OP, "dprnn_g1_384x63x16_residual", device, DType::F32, Work::Bytes(bytes), &[1], (1e-5, 1e-4), ins, |t, _| {
        Ok(group_norm_bwd(&t[0], 1, Some(&t[1]), Some(&t[2]), 1e-8, Some(&t[0]), &t[3])?.dx)
    })
}
