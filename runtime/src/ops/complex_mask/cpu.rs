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

/// Gradients of one bin of one channel (see `backward.rs`): from the spectrum (re, im), the network
/// outputs x0..x2 and the channel's upstream gradients (G_r, G_i), returns (y_r, y_i) and
/// (dx0, dx1, dx2).
#[inline]
pub(crate) fn mask_bin_bwd(re: f32, im: f32, x: [f32; 3], gr: f32, gi: f32) -> ([f32; 2], [f32; 3]) {
    let mag = (re * re + im * im).max(1e-10).sqrt();
    let (cs, sn) = (re / mag, im / mag);
    let (mm, mr, mi) = (sigmoid(x[0]), x[1].tanh(), x[2].tanh());
    let n = (mr * mr + mi * mi).sqrt();
    let mn = n.max(1e-10);
    let (mc, ms) = (mr / mn, mi / mn);
    let am = mag * mm;
    let a = am.max(0.0);
    let (pr, pi) = (cs * mc - sn * ms, sn * mc + cs * ms);
    let da = gr * pr + gi * pi;
    let dmc = a * (gr * cs + gi * sn);
    let dms = a * (gi * cs - gr * sn);
    let dmm = if am > 0.0 { da * mag } else { 0.0 };
    let (dmr, dmi) = if n >= 1e-10 {
        // dmc/n − mr·(dmc·mr + dms·mi)/n³ = mi·k and dms/n − mi·(…)/n³ = −mr·k with n² = mr² + mi²:
        // only the tangential part survives, computed without the cancellation of the long form.
        let k = (dmc * mi - dms * mr) / (n * n * n);
        (mi * k, -mr * k)
    } else {
        (dmc / 1e-10, dms / 1e-10)
    };
    ([a * pr, a * pi], [dmm * mm * (1.0 - mm), dmr * (1.0 - mr * mr), dmi * (1.0 - mi * mi)])
}

/// dW (flat O·C) and dbias (O) of [`complex_mask_bwd`].
pub(super) type WeightGrads = (Vec<f32>, Vec<f32>);

/// Backward of [`complex_mask`]: dx (B, S·C·3, T′, F − 1), and with out_conv the flat dW (O·C) and
/// dbias (O), accumulated per task in f64 and summed in task order (deterministic).
pub(super) fn complex_mask_bwd(
    spec: &Tensor,
    x: &Tensor,
    oc: Option<&OutConv>,
    gate: Option<&Tensor>,
    grad: &[f32],
    g: &MaskGeom,
) -> Result<(Tensor, Option<WeightGrads>)> {
    let spec = spec.cpu_f32()?;
    let x = x.cpu_f32()?;
    let w = oc.map(|oc| oc.weight.cpu_f32()).transpose()?;
    let gate = gate.map(|t| t.cpu_f32()).transpose()?;
    let (c, f, t, tp, fo, o_n) = (g.cin, g.freq, g.frames, g.net_frames, g.freq - 1, g.cout);
    let dx_shape = [g.batch, g.targets * c * 3, tp, fo];
    let mut dx = vec![0f32; dx_shape.iter().product()];
    let base = SendPtr(dx.as_mut_ptr());
    let blocks = t.div_ceil(FRAME_BLOCK);
    let tasks = g.batch * g.targets * blocks;
    // Per task: dW (O·C) then dbias (O), f64.
    let nw = if w.is_some() { o_n * c + o_n } else { 0 };
    let empty = dx.is_empty();
    let partials: Vec<Vec<f64>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut acc = vec![0f64; nw];
            if empty {
                return acc;
            }
            let (bs, blk) = (task / blocks, task % blocks);
            let b = bs / g.targets;
            let (t0, t1) = (blk * FRAME_BLOCK, ((blk + 1) * FRAME_BLOCK).min(t));
            let gv = gate.map_or(1.0, |gt| gt[bs]);
            let gbase = bs * o_n * 2 * f * t;
            let (mut gr, mut gi) = (vec![0f32; c], vec![0f32; c]);
            for fi in 0..f {
                for ti in t0..t1 {
                    let at = |o: usize, plane: usize| grad[gbase + (o * 2 + plane) * f * t + fi * t + ti];
                    for ci in 0..c {
                        (gr[ci], gi[ci]) = match w {
                            Some(w) => {
                                let (mut r, mut i) = (0f32, 0f32);
                                for o in 0..o_n {
                                    r += w[o * c + ci] * at(o, 0);
                                    i += w[o * c + ci] * at(o, 1);
                                }
                                (gv * r, gv * i)
                            }
                            None => (gv * at(ci, 0), gv * at(ci, 1)),
                        };
                    }
                    for ci in 0..c {
                        let sp = (b * c + ci) * 2 * f * t + fi * t + ti;
                        let xb = (bs * c + ci) * 3 * tp * fo + ti * fo + fi;
                        let xv = if fi < fo { [x[xb], x[xb + tp * fo], x[xb + 2 * tp * fo]] } else { [0.0; 3] };
                        let (y, d) = mask_bin_bwd(spec[sp], spec[sp + f * t], xv, gr[ci], gi[ci]);
                        if fi < fo {
                            // SAFETY: this task owns frames t0..t1 of item (b, s)'s rows of dx.
                            unsafe {
                                for (k, dk) in d.iter().enumerate() {
                                    *base.at(xb + k * tp * fo) = *dk;
                                }
                            }
                        }
                        if w.is_some() {
                            for o in 0..o_n {
                                acc[o * c + ci] += gv as f64 * (at(o, 0) as f64 * y[0] as f64 + at(o, 1) as f64 * y[1] as f64);
                            }
                        }
                    }
                    if w.is_some() {
                        for o in 0..o_n {
                            acc[o_n * c + o] += gv as f64 * (at(o, 0) as f64 + at(o, 1) as f64);
                        }
                    }
                }
            }
            acc
        })
        .collect();
    let wg = w.map(|_| {
        let mut tot = vec![0f64; nw];
        for p in &partials {
            for (a, v) in tot.iter_mut().zip(p) {
                *a += v;
            }
        }
        let tot: Vec<f32> = tot.into_iter().map(|v| v as f32).collect();
        (tot[..o_n * c].to_vec(), tot[o_n * c..].to_vec())
    });
    Ok((Tensor::from_vec(dx, &dx_shape)?, wg))
}
