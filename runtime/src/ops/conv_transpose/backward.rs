//! Backward of [`super::conv_transpose2d`] (kernel = stride, no bias, optional fused pre-activation;
//! issue #18). With `y[b, o, h·sh + i, w·sw + j] = Σ_c W[c, o, i, j]·a[b, c, h, w]`:
//! - `da[b, c, h, w] = Σ_{o, i, j} W[c, o, i, j]·dy[b, o, h·sh + i, w·sw + j]`
//! - `dW[c, o, i, j] = Σ_{b, h, w} a[b, c, h, w]·dy[b, o, h·sh + i, w·sw + j]`
//!
//! and through the pre-activation, with `z = x·scale[c] + shift` (`+ t[b, c, h]` for
//! [`TimeFilmMode::Add`]) recomputed as the forward rounds it and `leaky'(z) = 1 if z > 0 else slope`
//! (PyTorch's `leaky_relu_backward`, which tests `z > 0`):
//! - Add / no time: `dz = da·leaky'(z)`, `dt[b, c, h] = Σ_w dz`
//! - Gate: `dz = da·t·leaky'(z)`, `dt[b, c, h] = Σ_w da·leaky(z)`
//! - `dx = dz·scale[c]`, `dscale[c] = Σ_{b, h, w} dz·x`, `dshift = Σ_{h, w} dz` (and over b when the
//!   shift is (C)).
//!
//! Without a pre-activation `a = x` and `dx = da`.
//!
//! CPU: dy gathered by phase, P[b] (O·sh·sw × H·W); per item one `gemm` da = W·P[b] and one
//! dW += a[b]·P[b]ᵀ; the pre-activation terms in a rayon loop over (b, c) planes. CUDA: `kernels/cuda/conv_transpose.cu` —
//! `conv_transpose_data_bwd_f32_v1` (one thread per input element: da, dx, and the per-element dz,
//! the activation a and the Gate's da·leaky(z)) and `conv_transpose_weight_bwd_f32_v1` (one block per
//! weight element, reducing over B·H·W); dscale/dshift/dt are then reduced with the runtime's
//! `binary::mul` and `reduce::sum` ops (so on the device, no host round trip).

use gemm::Parallelism;
use rayon::prelude::*;

use super::cuda::{pre_bufs, ConvTransposeParams};
use super::{geometry, Geom};
use crate::gpu::{backend, Launch};
use crate::ops::conv2d::{PreAct, TimeFilmMode};
use crate::ops::{binary, reduce};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "conv_transpose2d_bwd";
const THREADS: u32 = 256;

/// Gradients of [`super::conv_transpose2d`].
#[derive(Debug, Clone)]
pub struct ConvTransposeGrads {
    /// (B, C, H, W).
    pub dx: Tensor,
    /// (C, O, sh, sw).
    pub dweight: Tensor,
    /// (C), when a pre-activation was given.
    pub dscale: Option<Tensor>,
    /// The given shift's shape, (C) or (B, C), when a pre-activation was given.
    pub dshift: Option<Tensor>,
    /// (B, C, H), when the pre-activation has a time-FiLM.
    pub dtime: Option<Tensor>,
}

/// Gradients of `conv_transpose2d(x, weight, pre)` given the output gradient `dy` (B, O, H·sh, W·sw).
pub fn conv_transpose2d_bwd(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, dy: &Tensor) -> Result<ConvTransposeGrads> {
    conv_transpose2d_bwd_version(x, weight, pre, dy, None)
}

/// [`conv_transpose2d_bwd`] forcing kernel version `v` (1) on a GPU device; benches and tests.
pub fn conv_transpose2d_bwd_version(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, dy: &Tensor, v: Option<u32>) -> Result<ConvTransposeGrads> {
    let g = geometry(x, weight, pre)?;
    if dy.dtype() != DType::F32 {
        return Err(Error::DType { op: OP, got: dy.dtype(), msg: "dy must be f32".into() });
    }
    if dy.device() != x.device() {
        return Err(Error::shape(OP, format!("dy is on {} but x on {}", dy.device(), x.device())));
    }
    if dy.shape() != g.out_shape() {
        return Err(Error::shape(OP, format!("dy {:?} must be {:?} for input {:?} and weight {:?}", dy.shape(), g.out_shape(), x.shape(), weight.shape())));
    }
    match x.device() {
        Device::Cpu => cpu(x, weight, pre, dy, &g),
        Device::Cuda(_) | Device::Emu => cuda(x, weight, pre, dy, &g, v),
    }
}

fn leaky(z: f32, slope: f32) -> f32 {
    if z < 0.0 {
        z * slope
    } else {
        z
    }
}

fn cpu(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, dy: &Tensor, g: &Geom) -> Result<ConvTransposeGrads> {
    let (xv, wv, gv) = (x.cpu_f32()?, weight.cpu_f32()?, dy.cpu_f32()?);
    let (c_n, o_n, h_n, w_n, sh, sw) = (g.cin, g.cout, g.h, g.w, g.sh, g.sw);
    let (hw, ss) = (h_n * w_n, sh * sw);
    let (ho, wo) = (h_n * sh, w_n * sw);
    let planes = g.batch * c_n;
    // (scale, shift, slope, time values, mode) read on the host.
    let pv = match pre {
        Some(p) => Some((p.scale.cpu_f32()?, p.shift.cpu_f32()?, p.slope, p.time.map(|t| t.values.cpu_f32()).transpose()?, p.time.map(|t| t.mode))),
        None => None,
    };
    let mut dx = vec![0f32; planes * hw];
    let mut act = if pv.is_some() { vec![0f32; planes * hw] } else { Vec::new() };
    // Per plane: Σ dz·x, Σ dz; per (plane, row): dt.
    let mut dsc = vec![0f32; planes];
    let mut dsh = vec![0f32; planes];
    let mut dt = vec![0f32; if pv.as_ref().is_some_and(|p| p.3.is_some()) { planes * h_n } else { 0 }];
    // dy gathered by phase: P[b][(o, i, j), (h, w)] = dy[b, o, h·sh + i, w·sw + j] (B × O·sh·sw × H·W).
    let m = o_n * ss;
    let mut ph = vec![0f32; g.batch * m * hw];
    if !ph.is_empty() {
        ph.par_chunks_mut(hw).enumerate().for_each(|(r, prow)| {
            let (b, q) = (r / m, r % m);
            let (o, i, j) = (q / ss, (q % ss) / sw, q % sw);
            let gp = &gv[(b * o_n + o) * ho * wo..][..ho * wo];
            for h in 0..h_n {
                let grow = &gp[(h * sh + i) * wo..][..wo];
                for (w, t) in prow[h * w_n..][..w_n].iter_mut().enumerate() {
                    *t = grow[w * sw + j];
                }
            }
        });
    }
    // da[b] (C × H·W) = W (C × O·sh·sw) · P[b], into dx.
    if planes * hw > 0 && m > 0 {
        for b in 0..g.batch {
            // SAFETY: dst (C, H·W) row-major inside dx; lhs the (C, O·sh·sw) weight row-major; rhs P[b].
            unsafe {
                gemm::gemm(
                    c_n,
                    hw,
                    m,
                    dx[b * c_n * hw..].as_mut_ptr(),
                    1,
                    hw as isize,
                    false,
                    wv.as_ptr(),
                    1,
                    m as isize,
                    ph[b * m * hw..].as_ptr(),
                    1,
                    hw as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::Rayon(0),
                );
            }
        }
    }
    if planes * hw > 0 {
        let mut act_chunks: Vec<&mut [f32]> = if pv.is_some() { act.chunks_mut(hw).collect() } else { (0..planes).map(|_| <&mut [f32]>::default()).collect() };
        let mut dt_chunks: Vec<&mut [f32]> = if dt.is_empty() { (0..planes).map(|_| <&mut [f32]>::default()).collect() } else { dt.chunks_mut(h_n).collect() };
        dx.par_chunks_mut(hw)
            .zip(act_chunks.par_iter_mut())
            .zip(dt_chunks.par_iter_mut())
            .zip(dsc.par_iter_mut().zip(dsh.par_iter_mut()))
            .enumerate()
            .for_each(|(pl, (((d, a), dtp), (psc, psh)))| {
                let (b, c) = (pl / c_n, pl % c_n);
                let Some((scale, shift, slope, time, mode)) = &pv else { return };
                let sc = scale[c];
                let shv = if g.shift_per_batch { shift[b * c_n + c] } else { shift[c] };
                let xp = &xv[pl * hw..][..hw];
                let (mut s_zx, mut s_z) = (0f32, 0f32);
                for h in 0..h_n {
                    let tv = time.as_ref().map(|t| t[(b * c_n + c) * h_n + h]);
                    let mut s_t = 0f32;
                    for w in 0..w_n {
                        let k = h * w_n + w;
                        let mut z = xp[k] * sc + shv;
                        if *mode == Some(TimeFilmMode::Add) {
                            z += tv.unwrap();
                        }
                        let da = d[k];
                        let lz = leaky(z, *slope);
                        let dl = if z > 0.0 { 1.0 } else { *slope };
                        let dz = match mode {
                            Some(TimeFilmMode::Gate) => {
                                let t = tv.unwrap();
                                a[k] = lz * t;
                                s_t += da * lz;
                                da * t * dl
                            }
                            _ => {
                                a[k] = lz;
                                da * dl
                            }
                        };
                        if *mode == Some(TimeFilmMode::Add) {
                            s_t += dz;
                        }
                        s_zx += dz * xp[k];
                        s_z += dz;
                        d[k] = dz * sc;
                    }
                    if !dtp.is_empty() {
                        dtp[h] = s_t;
                    }
                }
                *psc = s_zx;
                *psh = s_z;
            });
    }
    // dW (C × O·sh·sw) = Σ_b a[b] (C × H·W) · P[b]ᵀ.
    let a_all: &[f32] = if pv.is_some() { &act } else { xv };
    let mut dw = vec![0f32; c_n * m];
    if !dw.is_empty() && hw > 0 {
        for b in 0..g.batch {
            // SAFETY: dst the (C, O·sh·sw) dW; lhs a[b] (C, H·W) row-major; rhs P[b] read transposed.
            unsafe {
                gemm::gemm(
                    c_n,
                    m,
                    hw,
                    dw.as_mut_ptr(),
                    1,
                    m as isize,
                    b > 0,
                    a_all[b * c_n * hw..].as_ptr(),
                    1,
                    hw as isize,
                    ph[b * m * hw..].as_ptr(),
                    hw as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::Rayon(0),
                );
            }
        }
    }
    let dweight = Tensor::from_vec(dw, weight.shape())?;
    let dx = Tensor::from_vec(dx, x.shape())?;
    let Some(p) = pre else {
        return Ok(ConvTransposeGrads { dx, dweight, dscale: None, dshift: None, dtime: None });
    };
    let sum_b = |v: &[f32]| -> Vec<f32> { (0..c_n).map(|c| (0..g.batch).map(|b| v[b * c_n + c]).sum()).collect() };
    let dscale = Tensor::from_vec(sum_b(&dsc), &[c_n])?;
    let dshift = if g.shift_per_batch { Tensor::from_vec(dsh, p.shift.shape())? } else { Tensor::from_vec(sum_b(&dsh), &[c_n])? };
    let dtime = if p.time.is_some() { Some(Tensor::from_vec(dt, &[g.batch, c_n, h_n])?) } else { None };
    Ok(ConvTransposeGrads { dx, dweight, dscale: Some(dscale), dshift: Some(dshift), dtime })
}

fn cuda(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, dy: &Tensor, g: &Geom, v: Option<u32>) -> Result<ConvTransposeGrads> {
    let v = v.unwrap_or(1);
    let kd = format!("conv_transpose_data_bwd_f32_v{v}");
    let kw = format!("conv_transpose_weight_bwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: OP, kernel: kd.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    let (c_n, o_n, ss) = (g.cin, g.cout, g.sh * g.sw);
    let hw = g.h * g.w;
    let n_in = g.batch * c_n * hw;
    let n_w = c_n * o_n * ss;
    let big = [n_in, dy.numel(), n_w, g.h * g.sh, g.w * g.sw].into_iter().max().unwrap_or(0);
    if big > i32::MAX as usize {
        return Err(err(format!("input {:?} with weight {:?} exceeds the kernels' i32 indexing", x.shape(), weight.shape())));
    }
    let dev = x.device();
    let be = backend(dev)?;
    let time = pre.and_then(|p| p.time);
    let gate = time.is_some_and(|t| t.mode == TimeFilmMode::Gate);
    let dx = be.alloc(n_in * 4)?;
    let dz = be.alloc(if pre.is_some() { n_in * 4 } else { 4 })?;
    let act = be.alloc(if pre.is_some() { n_in * 4 } else { 4 })?;
    let gt = be.alloc(if gate { n_in * 4 } else { 4 })?;
    let dw = be.alloc(n_w * 4)?;
    let p = ConvTransposeParams::new(g, pre);
    if n_in > 0 {
        let blocks = n_in.div_ceil(THREADS as usize) as u32;
        let l = Launch::new(OP, "conv_transpose", kd.clone()).grid(blocks, 1, 1).block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(weight.gpu_buf()?);
        pre_bufs(l, pre)?.buf(dy.gpu_buf()?).buf(&dx).buf(&dz).buf(&act).buf(&gt).param(&p).run(&be)?;
    }
    if n_w > 0 {
        // Rows of a: the activation when there is a pre-activation, else x itself.
        let a_buf = if pre.is_some() { &act } else { x.gpu_buf()? };
        Launch::new(OP, "conv_transpose", kw.clone()).grid(n_w as u32, 1, 1).block(THREADS, 1, 1).buf(a_buf).buf(dy.gpu_buf()?).buf(&dw).param(&p).run(&be)?;
    }
    let dx = Tensor::from_gpu(dx, x.shape(), DType::F32, dev);
    let dweight = Tensor::from_gpu(dw, weight.shape(), DType::F32, dev);
    let Some(pa) = pre else {
        return Ok(ConvTransposeGrads { dx, dweight, dscale: None, dshift: None, dtime: None });
    };
    let (b_n, h_n, w_n) = (g.batch, g.h, g.w);
    let dz = Tensor::from_gpu(dz, x.shape(), DType::F32, dev);
    // (B, C, H·W) → (B, C) sums, then over B.
    let per_plane = |t: &Tensor| -> Result<Tensor> { reduce::sum(&t.reshape(&[b_n, c_n, hw])?, 2, false) };
    let dscale = reduce::sum(&per_plane(&binary::mul(&dz, x)?)?, 0, false)?;
    let dsh_bc = per_plane(&dz)?;
    let dshift = if g.shift_per_batch { dsh_bc.reshape(pa.shift.shape())? } else { reduce::sum(&dsh_bc, 0, false)? };
    let dtime = match time {
        None => None,
        Some(_) => {
            let src = if gate { Tensor::from_gpu(gt, x.shape(), DType::F32, dev) } else { dz.clone() };
            Some(reduce::sum(&src.reshape(&[b_n, c_n, h_n, w_n])?, 3, false)?)
        }
    };
    Ok(ConvTransposeGrads { dx, dweight, dscale: Some(dscale), dshift: Some(dshift), dtime })
}
