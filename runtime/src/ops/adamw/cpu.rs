//! CPU reference of the AdamW step: rayon over chunks, torch's operation order in f32.

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
    Ok(AdamWState { param: Tensor::from_vec(po, shape)?, exp_avg: Tensor::from_vec(mo, shape)?, exp_avg_sq: Tensor::from_vec(vo, shape)? })
}
