//! CPU reference of the reductions: rayon over outputs. Contiguous rows (inner = 1) are summed
//! pairwise with 8 independent lanes (error O(log L·ε), vectorised); columns (inner > 1) are summed
//! down L with Kahan compensation, a chunk of `inner` at a time (also vectorised, elementwise).

use rayon::prelude::*;

use super::{ReduceOp, ReduceShape};
use crate::{Result, Tensor};

/// Columns per rayon task when inner > 1.
const COLS: usize = 2048;
/// Leaf size of the pairwise sum.
const LEAF: usize = 256;

/// Σ xs in f32, pairwise over halves down to 256-element leaves summed in 8 lanes.
pub fn sum_f32(xs: &[f32]) -> f32 {
    if xs.len() <= LEAF {
        let mut acc = [0f32; 8];
        let mut ch = xs.chunks_exact(8);
        for c in &mut ch {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for &v in ch.remainder() {
            s += v;
        }
        s
    } else {
        let h = (xs.len() / 2).next_multiple_of(8);
        sum_f32(&xs[..h]) + sum_f32(&xs[h..])
    }
}

/// max that propagates NaN (torch.amax).
#[inline(always)]
pub(crate) fn max_nan(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

fn max_row(xs: &[f32]) -> f32 {
    xs.iter().fold(f32::NEG_INFINITY, |m, &v| max_nan(m, v))
}

pub(super) fn reduce(op: ReduceOp, x: &[f32], rs: &ReduceShape) -> Result<Tensor> {
    let (outer, len, inner) = (rs.outer, rs.len, rs.inner);
    let mut out = vec![0f32; outer * inner];
    if out.is_empty() {
        return Tensor::from_vec(out, &rs.out);
    }
    let div = if op == ReduceOp::Mean { len as f32 } else { 1.0 };
    if inner == 1 {
        let per_task = ((1 << 14) / len.max(1)).max(1);
        out.par_chunks_mut(per_task).enumerate().for_each(|(t, o)| {
            for (k, y) in o.iter_mut().enumerate() {
                let r = t * per_task + k;
                let row = &x[r * len..(r + 1) * len];
                *y = match op {
                    ReduceOp::Max => max_row(row),
                    _ => sum_f32(row) / div,
                };
            }
        });
    } else {
        out.par_chunks_mut(inner).enumerate().for_each(|(o, orow)| {
            let base = o * len * inner;
            orow.par_chunks_mut(COLS).enumerate().for_each(|(c, ys)| {
                let j0 = c * COLS;
                let w = ys.len();
                match op {
                    ReduceOp::Max => {
                        ys.iter_mut().for_each(|y| *y = f32::NEG_INFINITY);
                        for l in 0..len {
                            let xs = &x[base + l * inner + j0..][..w];
                            for (y, &v) in ys.iter_mut().zip(xs) {
                                *y = max_nan(*y, v);
                            }
                        }
                    }
                    _ => {
                        let mut comp = vec![0f32; w];
                        ys.iter_mut().for_each(|y| *y = 0.0);
                        for l in 0..len {
                            let xs = &x[base + l * inner + j0..][..w];
                            for ((s, c), &v) in ys.iter_mut().zip(comp.iter_mut()).zip(xs) {
                                let yv = v - *c;
                                let t = *s + yv;
                                *c = (t - *s) - yv;
                                *s = t;
                            }
                        }
                        ys.iter_mut().for_each(|y| *y /= div);
                    }
                }
            });
        });
    }
    Tensor::from_vec(out, &rs.out)
}
