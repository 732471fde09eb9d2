//! CPU spectral ends of the separator: the network input (magnitude, bn0, padding, transposed to
//! time-major) and the fused complex mask + out_conv, rayon over (item, target) and blocks of frames.

use rayon::prelude::*;

use super::{MaskGeom, OutConv};
use crate::ops::conv2d::cpu::SendPtr;
use crate::{DType, Result, Tensor};

/// Frames per task of the mask (its output rows are (F, T), the network's (T, F): a block of frames
/// keeps both sides' cache lines live).
const FRAME_BLOCK: usize = 32;

pub(super) fn magnitude_input(spec: &[f32], scale: &[f32], shift: &[f32], (planes, f, t, tp): (usize, usize, usize, usize), shape: &[usize]) -> Result<Tensor> {
    let fo = f - 1;
    let mut out = vec![0f32; planes * tp * fo];
    if out.is_empty() {
        return Tensor::from_vec(out, shape);
    }
    out.par_chunks_mut(tp * fo).enumerate().for_each(|(pl, o)| {
        let re = &spec[pl * 2 * f * t..][..f * t];
        let im = &spec[(pl * 2 + 1) * f * t..][..f * t];
        for t0 in (0..t).step_by(FRAME_BLOCK) {
            let t1 = (t0 + FRAME_BLOCK).min(t);
            for fi in 0..fo {
                let (sc, sh) = (scale[fi], shift[fi]);
                for ti in t0..t1 {
                    let (r, i) = (re[fi * t + ti], im[fi * t + ti]);
                    o[ti * fo + fi] = (r * r + i * i).max(1e-10).sqrt() * sc + sh;
                }
            }
        }
    });
    Tensor::from_vec(out, shape)
}

fn f32_values(t: &Tensor) -> Result<std::borrow::Cow<'_, [f32]>> {
    Ok(match t.dtype() {
        DType::F32 => std::borrow::Cow::Borrowed(t.cpu_f32()?),
        DType::F16 => std::borrow::Cow::Owned(t.cpu_f16()?.iter().map(|v| v.to_f32()).collect()),
    })
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn complex_mask(spec: &Tensor, x: &Tensor, oc: Option<&OutConv>, gate: Option<&Tensor>, g: &MaskGeom) -> Result<Tensor> {
    let spec = f32_values(spec)?;
    let x = f32_values(x)?;
    let (w, bias) = match oc {
        Some(oc) => (Some(oc.weight.cpu_f32()?), Some(oc.bias.cpu_f32()?)),
        None => (None, None),
    };
    let gate = gate.map(|t| t.cpu_f32()).transpose()?;
    let (c, f, t, tp, fo) = (g.cin, g.freq, g.frames, g.net_frames, g.freq - 1);
    let len = g.batch * g.targets * g.cout * 2 * f * t;
    let mut out = vec![0f32; len];
    if len == 0 {
        return Tensor::from_vec(out, &g.out_shape());
    }
    let base = SendPtr(out.as_mut_ptr());
    let blocks = t.div_ceil(FRAME_BLOCK);
    (0..g.batch * g.targets * blocks).into_par_iter().for_each(|task| {
        let (bs, blk) = (task / blocks, task % blocks);
        let (b, s) = (bs / g.targets, bs % g.targets);
        let (t0, t1) = (blk * FRAME_BLOCK, ((blk + 1) * FRAME_BLOCK).min(t));
        let gv = gate.map_or(1.0, |gt| gt[b * g.targets + s]);
        // SAFETY: this task owns frames t0..t1 of every (o, re/im, f) row of item (b, s).
        let obase = unsafe { base.at((b * g.targets + s) * g.cout * 2 * f * t) };
        let mut yr = vec![0f32; c];
        let mut yi = vec![0f32; c];
        for fi in 0..f {
            for ti in t0..t1 {
                for ci in 0..c {
                    let sp = (b * c + ci) * 2 * f * t + fi * t + ti;
                    let (re, im) = (spec[sp], spec[sp + f * t]);
                    let (x0, x1, x2) = if fi < fo {
                        let xb = ((b * g.targets + s) * c + ci) * 3 * tp * fo + ti * fo + fi;
                        (x[xb], x[xb + tp * fo], x[xb + 2 * tp * fo])
                    } else {
                        (0.0, 0.0, 0.0)
                    };
                    let mag = (re * re + im * im).max(1e-10).sqrt();
                    let (cs, sn) = (re / mag, im / mag);
                    let (mm, mr, mi) = (sigmoid(x0), x1.tanh(), x2.tanh());
                    let mn = (mr * mr + mi * mi).sqrt().max(1e-10);
                    let (mc, ms) = (mr / mn, mi / mn);
                    let a = (mag * mm).max(0.0);
                    yr[ci] = a * (cs * mc - sn * ms);
                    yi[ci] = a * (sn * mc + cs * ms);
                }
                for o in 0..g.cout {
                    let (r, i) = match (w, bias) {
                        (Some(w), Some(bias)) => {
                            let (mut r, mut i) = (bias[o], bias[o]);
                            for ci in 0..c {
                                r += w[o * c + ci] * yr[ci];
                                i += w[o * c + ci] * yi[ci];
                            }
                            (r, i)
                        }
                        _ => (yr[o], yi[o]),
                    };
                    // SAFETY: see obase.
                    unsafe {
                        *obase.add((o * 2) * f * t + fi * t + ti) = gv * r;
                        *obase.add((o * 2 + 1) * f * t + fi * t + ti) = gv * i;
                    }
                }
            }
        }
    });
    Tensor::from_vec(out, &g.out_shape())
}
