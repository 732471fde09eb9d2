//! CPU reference of softmax: rayon over rows; per row max, Σ exp(x − max) (8-lane accumulators),
//! then a division by the sum.

use rayon::prelude::*;

use crate::{Result, Tensor};

/// Rows per rayon task are grouped so a task holds at least this many elements.
const MIN_TASK: usize = 1 << 13;

pub(super) fn softmax(x: &[f32], rows: usize, len: usize, shape: &[usize]) -> Result<Tensor> {
    let mut out = vec![0f32; x.len()];
    if rows == 0 || len == 0 {
        return Tensor::from_vec(out, shape);
    }
    let rows_per_task = (MIN_TASK / len).max(1);
    out.par_chunks_mut(rows_per_task * len).zip(x.par_chunks(rows_per_task * len)).for_each(|(o, i)| {
        for (orow, irow) in o.chunks_exact_mut(len).zip(i.chunks_exact(len)) {
            softmax_row(irow, orow);
        }
    });
    Tensor::from_vec(out, shape)
}

/// One row. A row of all -inf has max -inf, so x − max is NaN and so is the result (as torch).
pub(crate) fn softmax_row(x: &[f32], y: &mut [f32]) {
    let mut m = f32::NEG_INFINITY;
    let mut nan = false;
    for &v in x {
        nan |= v.is_nan();
        m = if v > m { v } else { m };
    }
    if nan {
        y.iter_mut().for_each(|o| *o = f32::NAN);
        return;
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m).exp();
    }
    let s = crate::ops::reduce::sum_f32(y);
    for o in y.iter_mut() {
        *o /= s;
    }
}
