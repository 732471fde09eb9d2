//! Backward of [`super::resize_bilinear`]. The interpolation is linear in `a`, so its adjoint scatters
//! each output gradient to its four taps with the forward's weights:
//! `da[p, h, w] = Σ_{oh, ow} Wh[oh, h]·Ww[ow, w]·dy[p, oh, ow]`, with `Wh[oh, h] = (1−λh)·[h = i0h] +
//! λh·[h = i1h]` (both terms when i0 = i1) and likewise along W. Written as a gather (one input element
//! sums the outputs that tap it), the per-axis inverse tap lists are CSR tables built on the host: for
//! input index i, the (output index d, weight) pairs with d ascending (the (1−λ) entry before the λ
//! entry of one d). Each input element then sums `Σ_{(oh, wh) ∈ H[h]} wh·(Σ_{(ow, ww) ∈ W[w]} ww·dy)` in
//! f32, every product and sum rounded separately in that order, so the CPU and the kernel agree bit
//! for bit and the result is deterministic (no atomics).
//!
//! Through the pre-activation `a = leaky(z)`, `z = x·scale[c] + shift` (leaky'(z) = 1 if z > 0 else
//! slope, PyTorch's choice at 0): `dz = da·leaky'(z)`, `dx = dz·scale[c]`, `dscale[c] = Σ_{n, h, w} dz·x`,
//! `dshift[n, c] = Σ_{h, w} dz` for an (N, C) shift, also summed over n for a (C) one. The sums are f64
//! per (n, c) plane; the CPU adds the planes over n in f64, GPU devices round each plane's sum to f32
//! and add them over n with [`crate::ops::reduce::sum`] on the device (no host round trip).
//!
//! CUDA: `resize_bilinear_data_bwd_f32_v1` in `kernels/cuda/resize.cu` (one block per plane).

use rayon::prelude::*;

use super::cpu::axis_taps;
use super::cuda::ResizeParams;
use super::{geometry, Geom};
use crate::gpu::{backend, Launch};
use crate::ops::conv2d::PreAct;
use crate::ops::reduce::sum;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "resize_bilinear_bwd";
/// Threads per block of `resize_bilinear_data_bwd_f32_v1`.
const THREADS: u32 = 256;

/// Gradients of [`super::resize_bilinear`].
#[derive(Debug, Clone)]
pub struct ResizeGrads {
    /// (N, C, H, W).
    pub dx: Tensor,
    /// (C), when there is a pre-activation.
    pub dscale: Option<Tensor>,
    /// The shift's shape, (C) or (N, C), when there is a pre-activation.
    pub dshift: Option<Tensor>,
}

/// Inverse tap table of one axis (`in` inputs, `out` outputs): `off` (in + 1) CSR offsets into
/// `idx`/`wt` (2·out entries), the output indices and weights tapping each input index.
pub(crate) struct AxisTable {
    pub off: Vec<i32>,
    pub idx: Vec<i32>,
    pub wt: Vec<f32>,
}

pub(crate) fn axis_table(input: usize, output: usize, scale: f32) -> AxisTable {
    let taps = axis_taps(input, output, scale);
    let mut off = vec![0i32; input + 1];
    for &(i0, i1, _) in &taps {
        off[i0 + 1] += 1;
        off[i1 + 1] += 1;
    }
    for i in 0..input {
        off[i + 1] += off[i];
    }
    let mut fill: Vec<usize> = off[..input].iter().map(|&o| o as usize).collect();
    let (mut idx, mut wt) = (vec![0i32; 2 * output], vec![0f32; 2 * output]);
    for (d, &(i0, i1, l)) in taps.iter().enumerate() {
        for (i, w) in [(i0, 1.0 - l), (i1, l)] {
            idx[fill[i]] = d as i32;
            wt[fill[i]] = w;
            fill[i] += 1;
        }
    }
    AxisTable { off, idx, wt }
}

/// Gradients of `resize_bilinear(x, out_hw, pre)` given the output gradient `dy` (N, C, Ho, Wo).
pub fn resize_bilinear_bwd(x: &Tensor, out_hw: (usize, usize), pre: Option<&PreAct>, dy: &Tensor) -> Result<ResizeGrads> {
    let g = geometry(x, out_hw, pre)?;
    if dy.dtype() != DType::F32 {
        return Err(Error::DType { op: OP, got: dy.dtype(), msg: "dy must be f32".into() });
    }
    if dy.shape() != g.out_shape() {
        return Err(Error::shape(OP, format!("dy {:?} must be the output's shape {:?} (input {:?})", dy.shape(), g.out_shape(), x.shape())));
    }
    same_device(OP, &[x, dy])?;
    match x.device() {
        Device::Cpu => cpu(x, pre, &g, dy),
        Device::Cuda(_) | Device::Emu => cuda(x, pre, &g, dy),
    }
}

fn cpu(x: &Tensor, pre: Option<&PreAct>, g: &Geom, dy: &Tensor) -> Result<ResizeGrads> {
    let (xs, gs) = (x.cpu_f32()?, dy.cpu_f32()?);
    let (sh, sw) = g.scales();
    let (th, tw) = (axis_table(g.h, g.ho, sh), axis_table(g.w, g.wo, sw));
    let pre_v = match pre {
        Some(p) => Some((p.scale.cpu_f32()?, p.shift.cpu_f32()?, p.slope)),
        None => None,
    };
    let (hw, ohw) = (g.h * g.w, g.ho * g.wo);
    let mut dx = vec![0f32; g.n * g.c * hw];
    let sums: Vec<(f64, f64)> = dx
        .par_chunks_mut(hw)
        .enumerate()
        .map(|(pl, d)| {
            let gp = &gs[pl * ohw..][..ohw];
            let xp = &xs[pl * hw..][..hw];
            let (mut ssc, mut ssh) = (0f64, 0f64);
            for h in 0..g.h {
                for w in 0..g.w {
                    let mut da = 0f32;
                    for eh in th.off[h] as usize..th.off[h + 1] as usize {
                        let row = &gp[th.idx[eh] as usize * g.wo..][..g.wo];
                        let mut acc = 0f32;
                        for ew in tw.off[w] as usize..tw.off[w + 1] as usize {
                            acc += tw.wt[ew] * row[tw.idx[ew] as usize];
                        }
                        da += th.wt[eh] * acc;
                    }
                    let j = h * g.w + w;
                    d[j] = match pre_v {
                        Some((scale, shift, slope)) => {
                            let c = pl % g.c;
                            let (sc, sf) = (scale[c], if g.shift_per_batch { shift[pl] } else { shift[c] });
                            let z = xp[j] * sc + sf;
                            let dz = if z > 0.0 { da } else { da * slope };
                            ssc += dz as f64 * xp[j] as f64;
                            ssh += dz as f64;
                            dz * sc
                        }
                        None => da,
                    };
                }
            }
            (ssc, ssh)
        })
        .collect();
    let dx = Tensor::from_vec(dx, x.shape())?;
    let Some(p) = pre else {
        return Ok(ResizeGrads { dx, dscale: None, dshift: None });
    };
    let mut dscale = vec![0f64; g.c];
    let mut dshift = vec![0f64; p.shift.numel()];
    for (pl, &(a, b)) in sums.iter().enumerate() {
        dscale[pl % g.c] += a;
        dshift[if g.shift_per_batch { pl } else { pl % g.c }] += b;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    Ok(ResizeGrads { dx, dscale: Some(Tensor::from_vec(f32s(dscale), &[g.c])?), dshift: Some(Tensor::from_vec(f32s(dshift), p.shift.shape())?) })
}

fn cuda(x: &Tensor, pre: Option<&PreAct>, g: &Geom, dy: &Tensor) -> Result<ResizeGrads> {
    let kernel = "resize_bilinear_data_bwd_f32_v1";
    let err = |msg: String| Error::Launch { op: OP, kernel: kernel.into(), msg };
    let planes = g.n * g.c;
    if x.numel() > i32::MAX as usize || dy.numel() > i32::MAX as usize || 2 * (g.ho + g.wo) + g.h + g.w + 2 > i32::MAX as usize {
        return Err(err(format!("input {:?} or output gradient {:?} exceeds the kernel's i32 indexing", x.shape(), dy.shape())));
    }
    let dev = x.device();
    let be = backend(dev)?;
    let dxb = be.alloc(x.numel() * 4)?;
    let has_pre = pre.is_some();
    let (psc, psh) = if has_pre { (Some(be.alloc(planes * 4)?), Some(be.alloc(planes * 4)?)) } else { (None, None) };
    if planes > 0 {
        let (sh, sw) = g.scales();
        let (th, tw) = (axis_table(g.h, g.ho, sh), axis_table(g.w, g.wo, sw));
        let mut ints: Vec<i32> = Vec::with_capacity(g.h + g.w + 2 + 2 * (g.ho + g.wo));
        ints.extend(&th.off);
        ints.extend(&th.idx);
        ints.extend(&tw.off);
        ints.extend(&tw.idx);
        let mut wts: Vec<f32> = th.wt.clone();
        wts.extend(&tw.wt);
        let ib = be.upload(bytemuck::cast_slice(&ints))?;
        let wb = be.upload(bytemuck::cast_slice(&wts))?;
        let p = ResizeParams {
            planes: planes as i32,
            channels: g.c as i32,
            h: g.h as i32,
            w: g.w as i32,
            ho: g.ho as i32,
            wo: g.wo as i32,
            scale_h: sh,
            scale_w: sw,
            slope: pre.map(|p| p.slope).unwrap_or(0.0),
            flags: has_pre as i32 | ((has_pre && g.shift_per_batch) as i32) << 1,
        };
        let xb = x.gpu_buf()?;
        // Without a pre-activation, scale, shift and the partial sums are passed as x's or dx's
        // address and never touched (flags say so).
        let (sb, fb) = match pre {
            Some(p) => (p.scale.gpu_buf()?, p.shift.gpu_buf()?),
            None => (xb, xb),
        };
        Launch::new(OP, "resize", kernel)
            .grid(planes as u32, 1, 1)
            .block(THREADS, 1, 1)
            .buf(dy.gpu_buf()?)
            .buf(xb)
            .buf(sb)
            .buf(fb)
            .buf(&ib)
            .buf(&wb)
            .buf(&dxb)
            .buf(psc.as_ref().unwrap_or(&dxb))
            .buf(psh.as_ref().unwrap_or(&dxb))
            .param(&p)
            .run(&be)?;
    }
    let dx = Tensor::from_gpu(dxb, x.shape(), DType::F32, dev);
    let Some(pa) = pre else {
        return Ok(ResizeGrads { dx, dscale: None, dshift: None });
    };
    if planes == 0 {
        return Ok(ResizeGrads { dx, dscale: Some(Tensor::zeros(&[g.c], DType::F32, dev)?), dshift: Some(Tensor::zeros(pa.shift.shape(), DType::F32, dev)?) });
    }
    let t2 = |b| Tensor::from_gpu(b, &[g.n, g.c], DType::F32, dev);
    let dscale = sum(&t2(psc.unwrap()), 0, false)?;
    let psh = t2(psh.unwrap());
    let dshift = if g.shift_per_batch { psh } else { sum(&psh, 0, false)? };
    Ok(ResizeGrads { dx, dscale: Some(dscale), dshift: Some(dshift) })
}

/// Backward bench case at the injection size: (768, 62 × 5) → (63 × 16) with the pre-activation.
pub(super) fn bench_case(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let ins = vec![rand_tensor(&[1, 768, 62, 5], 1105), rand_tensor(&[768], 1106), rand_tensor(&[1, 768], 1107), rand_tensor(&[1, 768, 63, 16], 1108)];
    let bytes = 4.0 * (2 * 768 * 62 * 5 + 768 * 63 * 16 + 4 * 768) as f64;
    // The data gradient is bit-identical; the f64 plane sums differ from the CPU's by order only.
    version_cases(OP, "inject_768x62x5_to_63x16_preact", device, DType::F32, Work::Bytes(bytes), &[1], (1e-5, 1e-5), ins, |t, _| {
        let pre = PreAct { scale: &t[1], shift: &t[2], slope: 0.01, time: None };
        let r = resize_bilinear_bwd(&t[0], (63, 16), Some(&pre), &t[3])?;
        Ok(r.dx)
    })
}
