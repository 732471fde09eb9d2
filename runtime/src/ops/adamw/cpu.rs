//! CPU reference of the AdamW step (plain and amsgrad): rayon over chunks, torch's operation order in f32.

use rayon::prelude::*;

use super::{AdamWScalars, AdamWState};
use crate::{Result, Tensor};

/// One element (shared by the tests' reasoning and the kernel's doc): returns (p, m, v).
#[inline(always)]
pub(crate) fn step1(p: f32, g: f32, m: f32, v: f32, s: &AdamWScalars) -> (f32, f32, f32) {
    let p = p * s.decay;
    let m = m + s.one_m_beta1 * (g - m);
    let v = v * s.beta2 + s.one_m_beta2 * g * g;
    let denom = v.sqrt() / s.bc2_sqrt + s.eps;
    (p + s.neg_step_size * (m / denom), m, v)
}

pub(super) fn adamw(p: &[f32], g: &[f32], m: &[f32], v: &[f32], s: &AdamWScalars, shape: &[usize]) -> Result<AdamWState> {
    let n = p.len();
    let (mut po, mut mo, mut vo) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    const C: usize = 1 << 14;
    po.par_chunks_mut(C).zip(mo.par_chunks_mut(C)).zip(vo.par_chunks_mut(C)).enumerate().for_each(|(c, ((po, mo), vo))| {
        let o = c * C;
        for i in 0..po.len() {
            let (a, b, d) = step1(p[o + i], g[o + i], m[o + i], v[o + i], s);
            po[i] = a;
            mo[i] = b;
            vo[i] = d;
        }
    });
    Ok(AdamWState {
        param: Tensor::from_vec(po, shape)?,
        exp_avg: Tensor::from_vec(mo, shape)?,
        exp_avg_sq: Tensor::from_vec(vo, shape)?,
        max_exp_avg_sq: None,
    })
}

/// `torch.maximum` of two floats: NaN if either is NaN (`f32::max` would drop it).
#[inline(always)]
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// One amsgrad element: returns (p, m, v, vmax). m and v as [`step1`]; then
/// `vmax ← max(vmax, v)` and the denominator uses vmax (torch's `_single_tensor_adam`, amsgrad).
#[inline(always)]
pub(crate) fn step1_amsgrad(p: f32, g: f32, m: f32, v: f32, vmax: f32, s: &AdamWScalars) -> (f32, f32, f32, f32) {
    let p = p * s.decay;
    let m = m + s.one_m_beta1 * (g - m);
    let v = v * s.beta2 + s.one_m_beta2 * g * g;
    let vmax = maximum(vmax, v);
    let denom = vmax.sqrt() / s.bc2_sqrt + s.eps;
    (p + s.neg_step_size * (m / denom), m, v, vmax)
}

pub(super) fn adamw_amsgrad(p: &[f32], g: &[f32], m: &[f32], v: &[f32], vmax: &[f32], s: &AdamWScalars, shape: &[usize]) -> Result<AdamWState> {
    let n = p.len();
    let (mut po, mut mo, mut vo, mut xo) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    const C: usize = 1 << 14;
    po.par_chunks_mut(C).zip(mo.par_chunks_mut(C)).zip(vo.par_chunks_mut(C)).zip(xo.par_chunks_mut(C)).enumerate().for_each(|(c, (((po, mo), vo), xo))| {
        let o = c * C;
        for i in 0..po.len() {
            let j = o + i;
            (po[i], mo[i], vo[i], xo[i]) = step1_amsgrad(p[j], g[j], m[j], v[j], vmax[j], s);
        }
    });
    Ok(AdamWState {
        param: Tensor::from_vec(po, shape)?,
        exp_avg: Tensor::from_vec(mo, shape)?,
        exp_avg_sq: Tensor::from_vec(vo, shape)?,
        max_exp_avg_sq: Some(Tensor::from_vec(xo, shape)?),
    })
}
