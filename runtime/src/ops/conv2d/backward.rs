//! Backward of [`super::conv2d`] (issue #18: training the separator), f32 weight only. With `a` the
//! activated, zero-padded input, p = k / 2 and (for the pre-activation) z = x·scale[c] + shift (+ t
//! for [`TimeFilmMode::Add`]), leaky'(z) = 1 if z > 0 else slope (PyTorch's choice at 0):
//! - `da[b, c, h, w] = Σ_{o, i, j} W[o, c, i, j]·dy[b, o, h − i + p, w − j + p]` (valid positions only:
//!   the full correlation, i.e. the forward convolution of dy with the weight transposed to
//!   (C, O, k, k) and flipped in i and j);
//! - `dW[o, c, i, j] = Σ_{b, h, w} dy[b, o, h, w]·a[b, c, h + i − p, w + j − p]`, `dbias = Σ_{b, h, w} dy`,
//!   `dresidual = dy`;
//! - Add: `dz = da·leaky'(z)`, `dt[b, c, h] = Σ_w dz`; Gate: `dz = da·t·leaky'(z)`,
//!   `dt[b, c, h] = Σ_w da·leaky(z)`; none: `dz = da·leaky'(z)`;
//! - `dx = dz·scale` (dx = da without a pre-activation), `dscale = Σ_{b, h, w} dz·x`,
//!   `dshift = Σ_{h, w} dz` per (b, c) for a (B, C) shift, also summed over b for a (C) one.
//!
//! CPU: da is the forward CPU convolution (banded im2col + gemm) of dy with the flipped, transposed
//! weight; dW one gemm per band of output pixels, `dy_band (O × n) · im2col(a)_bandᵀ (n × K)`, the
//! bands split into [`DW_GROUPS`] fixed groups (rayon), each summing into its own partial, the partials
//! added in group order (deterministic); the pre-activation chain rayon over (b, c) planes, its sums
//! in f64. CUDA (`kernels/cuda/conv2d.cu`): `conv2d_data_bwd_f32_v1` (block per input row: da, the
//! chain, dx, and per-row sums: dt, Σ dz·x, Σ dz) and `conv2d_weight_bwd_f32_v1` (block per weight
//! element reducing over b, h, w); dbias, dscale and dshift are the per-row sums reduced with
//! [`crate::ops::reduce::sum`] on the device (no host round trip).

use rayon::prelude::*;

use super::cpu::{bands, fill_band, Pre};
use super::cuda::{opt_buf, Conv2dParams};
use super::{geometry, Conv2d, Geom, TimeFilmMode};
use crate::gpu::{backend, Arg, Launch};
use crate::ops::reduce::sum;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

/// Fixed number of band groups of the CPU weight gradient (each its own partial; deterministic for
/// any thread count).
const DW_GROUPS: usize = 16;
/// Threads per block of `conv2d_data_bwd_f32_v1` and `conv2d_weight_bwd_f32_v1` (`C2D_BWD_*` in the .cu).
const BWD_DATA_THREADS: u32 = 128;
const BWD_WEIGHT_THREADS: u32 = 256;

/// Gradients of [`super::conv2d`].
#[derive(Debug, Clone)]
pub struct Conv2dGrads {
    /// One per source, each of its shape (B, C_s, H, W).
    pub dinputs: Vec<Tensor>,
    /// (O, ΣC, k, k).
    pub dweight: Tensor,
    /// (O), when there is a bias.
    pub dbias: Option<Tensor>,
    /// (B, O, H, W) = dy, when there is a residual.
    pub dresidual: Option<Tensor>,
    /// (ΣC), when there is a pre-activation.
    pub dscale: Option<Tensor>,
    /// The shift's shape, (ΣC) or (B, ΣC), when there is a pre-activation.
    pub dshift: Option<Tensor>,
    /// (B, ΣC, H), when there is a time-FiLM.
    pub dtime: Option<Tensor>,
}

/// Gradients of `conv2d(inputs, c)` given the output gradient `dy` (B, O, H, W).
pub fn conv2d_bwd(inputs: &[&Tensor], c: &Conv2d, dy: &Tensor) -> Result<Conv2dGrads> {
    let op = "conv2d_bwd";
    let g = geometry(inputs, c)?;
    if c.weight.dtype() != DType::F32 {
        return Err(Error::DType { op, got: c.weight.dtype(), msg: "the backward takes an f32 weight".into() });
    }
    if dy.dtype() != DType::F32 {
        return Err(Error::DType { op, got: dy.dtype(), msg: "dy must be f32".into() });
    }
    if dy.shape() != g.out_shape() {
        return Err(Error::shape(op, format!("dy {:?} must be the output's shape {:?}", dy.shape(), g.out_shape())));
    }
    same_device(op, &[inputs[0], dy])?;
    match dy.device() {
        Device::Cpu => cpu(inputs, c, &g, dy),
        Device::Cuda(_) | Device::Emu => cuda(inputs, c, &g, dy),
    }
}

/// The weight (O, C, k, k) transposed to (C, O, k, k) and flipped in both kernel axes.
fn flipped_weight(w: &[f32], o: usize, c: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut out = vec![0f32; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            for t in 0..kk {
                out[(ci * o + oi) * kk + (kk - 1 - t)] = w[(oi * c + ci) * kk + t];
            }
        }
    }
    out
}

/// Splits a (B, ΣC, …) tensor's values by source channels into one tensor per source.
fn split_sources(v: &[f32], g: &Geom, inner: usize) -> Result<Vec<Tensor>> {
    let ct = g.cin_total();
    let mut out = Vec::new();
    let mut c0 = 0;
    for &cs in &g.cin {
        let mut d = Vec::with_capacity(g.batch * cs * inner);
        for b in 0..g.batch {
            d.extend_from_slice(&v[(b * ct + c0) * inner..][..cs * inner]);
        }
        out.push(Tensor::from_vec(d, &[g.batch, cs, g.h, g.w])?);
        c0 += cs;
    }
    Ok(out)
}

fn cpu(inputs: &[&Tensor], c: &Conv2d, g: &Geom, dy: &Tensor) -> Result<Conv2dGrads> {
    let (h, wd, k) = (g.h, g.w, g.k);
    let hw = h * wd;
    let ct = g.cin_total();
    let kdim = ct * k * k;
    let w = c.weight.cpu_f32()?;
    let dyv = dy.cpu_f32()?;
    let xs: Vec<&[f32]> = inputs.iter().map(|t| t.cpu_f32()).collect::<Result<_>>()?;
    let pre = c.pre.as_ref().map(|p| Pre::new(p, g.shift_per_batch, ct, h)).transpose()?;

    // da: the forward convolution of dy with the flipped, transposed weight.
    let wf = Tensor::from_vec(flipped_weight(w, g.cout, ct, k), &[ct, g.cout, k, k])?;
    let gt = Geom { batch: g.batch, cin: vec![g.cout], h, w: wd, cout: ct, k, shift_per_batch: false };
    let da = super::cpu::conv2d(&[dy], &Conv2d { weight: &wf, bias: None, pre: None, residual: None }, &gt)?;
    let da = da.cpu_f32()?;

    // dW: per band, dy_band (O × n, row stride hw) · im2col(a)_bandᵀ (n × K).
    let bl = if hw == 0 { Vec::new() } else { bands(g.batch, h, wd, kdim) };
    let per = bl.len().div_ceil(DW_GROUPS).max(1);
    let partials: Vec<Vec<f32>> = bl
        .par_chunks(per)
        .map(|grp| {
            let mut acc = vec![0f32; g.cout * kdim];
            let mut buf = Vec::new();
            for &band in grp {
                let n = (band.h1 - band.h0) * (band.w1 - band.w0);
                buf.resize(kdim * n, 0.0);
                fill_band(&mut buf, &xs, g, pre.as_ref(), band);
                let off = band.b * g.cout * hw + band.h0 * wd + band.w0;
                // SAFETY: dst (O × K) row-major in acc; lhs O rows of n values at stride hw inside dy
                // (the band's pixels are contiguous in each output plane); rhs the (K × n) band read
                // transposed (column stride n, row stride 1).
                unsafe {
                    gemm::gemm(
                        g.cout,
                        kdim,
                        n,
                        acc.as_mut_ptr(),
                        1,
                        kdim as isize,
                        true,
                        dyv[off..].as_ptr(),
                        1,
                        hw as isize,
                        buf.as_ptr(),
                        n as isize,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
            }
            acc
        })
        .collect();
    let mut dw = vec![0f32; g.cout * kdim];
    for p in &partials {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    let dweight = Tensor::from_vec(dw, c.weight.shape())?;

    let dbias = match c.bias {
        Some(_) => {
            let mut db = vec![0f64; g.cout];
            for b in 0..g.batch {
                for (o, s) in db.iter_mut().enumerate() {
                    *s += dyv[(b * g.cout + o) * hw..][..hw].iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            Some(Tensor::from_vec(db.into_iter().map(|v| v as f32).collect(), &[g.cout])?)
        }
        None => None,
    };
    let dresidual = c.residual.map(|_| dy.clone());

    let Some(pr) = pre else {
        return Ok(Conv2dGrads { dinputs: split_sources(da, g, hw)?, dweight, dbias, dresidual, dscale: None, dshift: None, dtime: None });
    };
    // The pre-activation chain, one (b, c) plane per task: dx, the plane's Σ dz·x and Σ dz, dt's row.
    let mut dx = vec![0f32; g.batch * ct * hw];
    let mut dt = vec![0f32; g.batch * ct * h];
    let slope = pr.slope;
    let sums: Vec<(f64, f64)> = dx
        .par_chunks_mut(hw.max(1))
        .zip(dt.par_chunks_mut(h.max(1)))
        .enumerate()
        .map(|(q, (dxp, dtp))| {
            let (b, cg) = (q / ct, q % ct);
            let (s, cl) = if cg < g.cin[0] { (0, cg) } else { (1, cg - g.cin[0]) };
            let xp = &xs[s][(b * g.cin[s] + cl) * hw..][..hw];
            let dap = &da[q * hw..][..hw];
            let (sc, sh) = pr.get(b, cg);
            let (mut ssc, mut ssh) = (0f64, 0f64);
            for r in 0..h {
                let tv = pr.time.map(|(t, _)| t[(b * ct + cg) * h + r]);
                let mode = pr.time.map(|(_, m)| m);
                let mut srow = 0f64;
                for j in r * wd..(r + 1) * wd {
                    let x = xp[j];
                    let mut z = x * sc + sh;
                    if mode == Some(TimeFilmMode::Add) {
                        z += tv.unwrap();
                    }
                    let d1 = if z > 0.0 { 1.0 } else { slope };
                    let (dz, dtc) = match mode {
                        Some(TimeFilmMode::Gate) => {
                            let lz = if z < 0.0 { z * slope } else { z };
                            (dap[j] * tv.unwrap() * d1, dap[j] * lz)
                        }
                        _ => {
                            let dz = dap[j] * d1;
                            (dz, dz)
                        }
                    };
                    dxp[j] = dz * sc;
                    ssc += dz as f64 * x as f64;
                    ssh += dz as f64;
                    srow += dtc as f64;
                }
                dtp[r] = srow as f32;
            }
            (ssc, ssh)
        })
        .collect();
    let mut dscale = vec![0f64; ct];
    let mut dshift = vec![0f64; if g.shift_per_batch { g.batch * ct } else { ct }];
    for (q, &(a, b)) in sums.iter().enumerate() {
        dscale[q % ct] += a;
        dshift[if g.shift_per_batch { q } else { q % ct }] += b;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let shift_shape = c.pre.as_ref().unwrap().shift.shape().to_vec();
    Ok(Conv2dGrads {
        dinputs: split_sources(&dx, g, hw)?,
        dweight,
        dbias,
        dresidual,
        dscale: Some(Tensor::from_vec(f32s(dscale), &[ct])?),
        dshift: Some(Tensor::from_vec(f32s(dshift), &shift_shape)?),
        dtime: if pr.time.is_some() { Some(Tensor::from_vec(dt, &[g.batch, ct, h])?) } else { None },
    })
}

fn cuda(inputs: &[&Tensor], c: &Conv2d, g: &Geom, dy: &Tensor) -> Result<Conv2dGrads> {
    let dev = dy.device();
    let (h, wd, k) = (g.h, g.w, g.k);
    let hw = h * wd;
    let ct = g.cin_total();
    let kdim = ct * k * k;
    let time = c.pre.and_then(|p| p.time);
    let err = |kernel: &str, msg: String| Error::Launch { op: "conv2d_bwd", kernel: kernel.to_string(), msg };
    let limit = i32::MAX as usize - 256;
    let mut sizes: Vec<usize> = inputs.iter().map(|t| t.numel()).collect();
    sizes.extend([c.weight.numel(), dy.numel(), g.batch * hw, kdim]);
    if sizes.iter().any(|&n| n > limit) {
        return Err(err("conv2d_data_bwd_f32_v1", format!("a tensor exceeds the kernels' i32 indexing (inputs {:?}, dy {:?})", g.cin, dy.shape())));
    }
    if h > 2_147_483_647 || ct > 65535 || g.batch > 65535 || g.cout > 65535 {
        return Err(err(
            "conv2d_data_bwd_f32_v1",
            format!("grid (H {h}, C {ct}, B {}) / (k², C, O {}) exceeds CUDA's 65535 limit on grid.y/grid.z", g.batch, g.cout),
        ));
    }
    if g.batch * hw == 0 || ct == 0 || g.cout == 0 {
        // Nothing to launch: every gradient is a sum over an empty set (or has no elements).
        let z = |shape: &[usize]| Tensor::zeros(shape, DType::F32, dev);
        let pre = c.pre.as_ref();
        return Ok(Conv2dGrads {
            dinputs: g.cin.iter().map(|&cs| z(&[g.batch, cs, h, wd])).collect::<Result<_>>()?,
            dweight: z(c.weight.shape())?,
            dbias: c.bias.map(|_| z(&[g.cout])).transpose()?,
            dresidual: c.residual.map(|_| dy.clone()),
            dscale: pre.map(|_| z(&[ct])).transpose()?,
            dshift: pre.map(|p| z(p.shift.shape())).transpose()?,
            dtime: time.map(|_| z(&[g.batch, ct, h])).transpose()?,
        });
    }
    let be = backend(dev)?;
    let c1 = g.cin.get(1).copied().unwrap_or(0);
    let p = Conv2dParams::new(c, g, 0);
    let x1 = inputs.get(1).copied().filter(|_| c1 > 0);
    let dxs: Vec<_> = g.cin.iter().map(|&cs| be.alloc(g.batch * cs * hw * 4)).collect::<Result<_>>()?;
    let rows = g.batch * ct * h;
    let has_pre = c.pre.is_some();
    let (psc, psh, dt) = if has_pre { (Some(be.alloc(rows * 4)?), Some(be.alloc(rows * 4)?), Some(be.alloc(rows * 4)?)) } else { (None, None, None) };
    let dw = be.alloc(c.weight.numel() * 4)?;
    {
        let l = Launch::new("conv2d_bwd", "conv2d", "conv2d_data_bwd_f32_v1")
            .grid(h as u32, ct as u32, g.batch as u32)
            .block(BWD_DATA_THREADS, 1, 1)
            .buf(dy.gpu_buf()?)
            .buf(c.weight.gpu_buf()?)
            .buf(inputs[0].gpu_buf()?);
        let l = opt_buf(l, x1)?;
        let l = opt_buf(l, c.pre.map(|p| p.scale))?;
        let l = opt_buf(l, c.pre.map(|p| p.shift))?;
        let l = opt_buf(l, time.map(|t| t.values))?.buf(&dxs[0]);
        let l = match dxs.get(1) {
            Some(b) if c1 > 0 => l.buf(b),
            _ => {
                let mut l = l;
                l.args.push(Arg::Ptr(0));
                l
            }
        };
        let mut l = l;
        for b in [&dt, &psc, &psh] {
            l = match b {
                Some(b) => l.buf(b),
                None => {
                    l.args.push(Arg::Ptr(0));
                    l
                }
            };
        }
        l.param(&p).run(&be)?;
    }
    {
        let l = Launch::new("conv2d_bwd", "conv2d", "conv2d_weight_bwd_f32_v1")
            .grid((k * k) as u32, ct as u32, g.cout as u32)
            .block(BWD_WEIGHT_THREADS, 1, 1)
            .buf(dy.gpu_buf()?)
            .buf(inputs[0].gpu_buf()?);
        let l = opt_buf(l, x1)?;
        let l = opt_buf(l, c.pre.map(|p| p.scale))?;
        let l = opt_buf(l, c.pre.map(|p| p.shift))?;
        let l = opt_buf(l, time.map(|t| t.values))?;
        l.buf(&dw).param(&p).run(&be)?;
    }
    let dinputs = dxs.into_iter().zip(&g.cin).map(|(b, &cs)| Tensor::from_gpu(b, &[g.batch, cs, h, wd], DType::F32, dev)).collect();
    let dweight = Tensor::from_gpu(dw, c.weight.shape(), DType::F32, dev);
    let dbias = match c.bias {
        Some(_) => Some(sum(&sum(&dy.reshape(&[g.batch, g.cout, hw])?, 2, false)?, 0, false)?),
        None => None,
    };
    let dresidual = c.residual.map(|_| dy.clone());
    let (mut dscale, mut dshift, mut dtime) = (None, None, None);
    if let (Some(psc), Some(psh), Some(dt)) = (psc, psh, dt) {
        let t3 = |b| Tensor::from_gpu(b, &[g.batch, ct, h], DType::F32, dev);
        dscale = Some(sum(&sum(&t3(psc), 2, false)?, 0, false)?);
        let sh = sum(&t3(psh), 2, false)?;
        dshift = Some(if g.shift_per_batch { sh } else { sum(&sh, 0, false)? });
        if time.is_some() {
            dtime = Some(t3(dt));
        }
    }
    Ok(Conv2dGrads { dinputs, dweight, dbias, dresidual, dscale, dshift, dtime })
}
