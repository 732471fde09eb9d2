//! CPU reference of layernorm: rayon over rows; per row a two-pass mean and biased variance (8-lane
//! pairwise sums, so 768-wide rows keep ~1e-7 relative accuracy), then one normalising pass.

use rayon::prelude::*;

use crate::ops::reduce::sum_f32;
use crate::{Result, Tensor};

const MIN_TASK: usize = 1 << 13;

pub(super) fn layernorm(x: &[f32], w: Option<&[f32]>, b: Option<&[f32]>, eps: f32, rows: usize, len: usize, shape: &[usize]) -> Result<Tensor> {
    let mut out = vec![0f32; x.len()];
    if rows == 0 || len == 0 {
        return Tensor::from_vec(out, shape);
    }
    let per_task = (MIN_TASK / len).max(1) * len;
    out.par_chunks_mut(per_task).zip(x.par_chunks(per_task)).for_each(|(o, i)| {
        for (yr, xr) in o.chunks_exact_mut(len).zip(i.chunks_exact(len)) {
            let mean = sum_f32(xr) / len as f32;
            // yr holds the squared deviations first, then the output.
            for (y, &v) in yr.iter_mut().zip(xr) {
                let d = v - mean;
                *y = d * d;
            }
            let var = sum_f32(yr) / len as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for (y, &v) in yr.iter_mut().zip(xr) {
                *y = (v - mean) * rstd;
            }
            if let Some(w) = w {
                yr.iter_mut().zip(w).for_each(|(y, &g)| *y *= g);
            }
            if let Some(b) = b {
                yr.iter_mut().zip(b).for_each(|(y, &c)| *y += c);
            }
        }
    });
    Tensor::from_vec(out, shape)
}
