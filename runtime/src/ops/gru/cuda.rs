//! Launcher of `kernels/cuda/gru.cu`: the input projections of a layer run as one GEMM of the matmul
//! family (both directions' `W_ih` stacked), then the recurrence kernel — v1 launched once per step,
//! v2 and v3 (persistent) once per layer.

use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::ops::matmul::linear;
use crate::ops::shape::{concat, permute, transpose};
use crate::{DType, Error, Result, Tensor};

use super::GruDirWeights;

/// Mirrors `GruParams` in gru.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GruParams {
    pub batch: i32,
    pub steps: i32,
    pub hidden: i32,
    pub dirs: i32,
    pub has_h0: i32,
    pub step: i32,
    pub splits: i32,
    pub pad1: i32,
}
const _: () = assert!(std::mem::size_of::<GruParams>() == 32);

const V1_THREADS: u32 = 128;
/// Batch elements per v2 block (`GRU_BPB` in gru.cu).
const V2_BPB: usize = 2;
/// Largest hidden size of v2 (one thread per hidden unit).
pub(crate) const V2_MAX_HIDDEN: usize = 1024;

/// The default kernel version for a hidden size: v3 when H % 4 == 0, else v2, else (H > 1024) v1.
pub(crate) fn default_version(hidden: usize) -> u32 {
    if hidden > V2_MAX_HIDDEN {
        1
    } else if hidden % 4 == 0 {
        3
    } else {
        2
    }
}

/// v3's split count S and dynamic shared memory bytes for H and nb = min(B, 2) batch elements: the
/// largest S ≤ 8 with S·round_up(H, 32) ≤ 1024 threads and (nb + (S − 1)·3·nb)·H·4 ≤ 48 KiB.
fn v3_splits(h: usize, nb: usize) -> (usize, usize) {
    let hp = h.div_ceil(32) * 32;
    let smem = |s: usize| (nb + (s - 1) * 3 * nb) * h * 4;
    let s = (1..=8usize).rev().find(|&s| s * hp <= 1024 && smem(s) <= 48 * 1024).unwrap_or(1);
    (s, smem(s))
}

/// One layer on a GPU device: x (B, T, I) → (B, T·repeat, D·H), every input frame seen `repeat`
/// times. `h0`: (D, B, H) of this layer, or none.
pub(super) fn layer(x: &Tensor, dirs: &[GruDirWeights], h0: Option<&Tensor>, version: u32, repeat: usize) -> Result<Tensor> {
    Ok(layer_xp(x, dirs, h0, version, repeat)?.0)
}

/// [`layer`], also returning the input projections xp (B, T·repeat, D·3H) it computed.
pub(super) fn layer_xp(x: &Tensor, dirs: &[GruDirWeights], h0: Option<&Tensor>, version: u32, repeat: usize) -> Result<(Tensor, Tensor)> {
    let (b, t) = (x.shape()[0], x.shape()[1] * repeat);
    let h = dirs[0].w_hh.shape()[1];
    let d = dirs.len();
    let kernel = format!("gru_fwd_f32_v{version}");
    let n_out = b * t * d * h;
    if n_out > i32::MAX as usize || b * t * d * 3 * h > i32::MAX as usize || d * 3 * h * h > i32::MAX as usize {
        return Err(Error::Launch { op: "gru", kernel, msg: format!("sizes B={b} T={t} H={h} exceed the kernel's i32 indexing") });
    }
    if version >= 2 && h > V2_MAX_HIDDEN {
        return Err(Error::Launch { op: "gru", kernel, msg: format!("v{version} runs one thread per hidden unit: H = {h} > {V2_MAX_HIDDEN}") });
    }
    if version == 3 && h % 4 != 0 {
        return Err(Error::Launch { op: "gru", kernel, msg: format!("v3 loads float4 weights: H = {h} must be a multiple of 4") });
    }
    if !(1..=3).contains(&version) {
        return Err(Error::Launch { op: "gru", kernel, msg: "no such version (1, 2 or 3)".into() });
    }
    let dev = x.device();
    let be = backend(dev)?;
    let out = be.alloc(n_out * 4)?;
    let out_shape = [b, t, d * h];
    if n_out == 0 {
        return Ok((Tensor::from_gpu(out, &out_shape, DType::F32, dev), Tensor::zeros(&[b, t, d * 3 * h], DType::F32, dev)?));
    }
    // Input projections of every step, both directions in one GEMM: xp (B, T, D·3H).
    let stack = |f: &dyn Fn(&GruDirWeights) -> Tensor| -> Result<Tensor> {
        let parts: Vec<Tensor> = dirs.iter().map(f).collect();
        if parts.len() == 1 {
            Ok(parts[0].clone())
        } else {
            concat(&parts.iter().collect::<Vec<_>>(), 0)
        }
    };
    let zeros3h = || Tensor::zeros(&[3 * h], DType::F32, dev);
    let w_ih = stack(&|w| w.w_ih.clone())?;
    let b_ih = match dirs.iter().any(|w| w.b_ih.is_some()) {
        true => Some(concat(&dirs.iter().map(|w| w.b_ih.clone().map_or_else(zeros3h, Ok)).collect::<Result<Vec<_>>>()?.iter().collect::<Vec<_>>(), 0)?),
        false => None,
    };
    let xp = super::cpu::repeat_rows(linear(x, &w_ih, b_ih.as_ref())?, repeat)?;
    let b_hh = concat(&dirs.iter().map(|w| w.b_hh.clone().map_or_else(zeros3h, Ok)).collect::<Result<Vec<_>>>()?.iter().collect::<Vec<_>>(), 0)?;
    // W_hh stacked (D, 3H, H); v2 reads its transpose (D, H, 3H), v3 the k-quad layout (D, H/4, 3H, 4).
    let whh = stack(&|w| w.w_hh.reshape(&[1, 3 * h, h]).expect("reshape of a (3H, H) tensor"))?;
    let whh = match version {
        2 => transpose(&whh, 1, 2)?,
        3 => permute(&whh.reshape(&[d, 3 * h, h / 4, 4])?, &[0, 2, 1, 3])?,
        _ => whh,
    };
    let nb = b.min(V2_BPB);
    let (splits, smem3) = v3_splits(h, nb);
    let p =
        GruParams { batch: b as i32, steps: t as i32, hidden: h as i32, dirs: d as i32, has_h0: h0.is_some() as i32, step: 0, splits: splits as i32, pad1: 0 };
    let (xpb, wb, bb) = (xp.gpu_buf()?, whh.gpu_buf()?, b_hh.gpu_buf()?);
    // An absent h0 is passed as xp's address and never read (has_h0 says so).
    let h0b = h0.map(|t| t.gpu_buf()).transpose()?.unwrap_or(xpb);
    match version {
        1 => {
            let grid = grid_1d(d * b * h, V1_THREADS);
            for s in 0..t {
                Launch::new("gru", "gru", kernel.clone())
                    .grid(grid, 1, 1)
                    .block(V1_THREADS, 1, 1)
                    .buf(xpb)
                    .buf(wb)
                    .buf(bb)
                    .buf(h0b)
                    .buf(&out)
                    .param(&GruParams { step: s as i32, ..p })
                    .run(&be)?;
            }
        }
        _ => {
            // Persistent kernels: v3 splits k over `splits` thread groups, v2 one thread per unit.
            let (threads, smem) = if version == 3 { (splits * h.div_ceil(32) * 32, smem3) } else { (h.div_ceil(32) * 32, V2_BPB * h * 4) };
            Launch::new("gru", "gru", kernel)
                .grid(d as u32, b.div_ceil(V2_BPB) as u32, 1)
                .block(threads as u32, 1, 1)
                .smem(smem as u32)
                .buf(xpb)
                .buf(wb)
                .buf(bb)
                .buf(h0b)
                .buf(&out)
                .param(&p)
                .run(&be)?;
        }
    }
    Ok((Tensor::from_gpu(out, &out_shape, DType::F32, dev), xp))
}
