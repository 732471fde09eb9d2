//! CPU standardise-and-add: the plane statistics of both maps with `groupnorm`'s parallel f64
//! moments (one group per plane), then the output in parallel over planes.

use rayon::prelude::*;

use crate::ops::groupnorm::cpu::group_moments;
use crate::{Result, Tensor};

pub(super) fn standardize_add(x: &Tensor, f: &Tensor, wx: f32, wf: f32, eps: f32, n: usize) -> Result<Tensor> {
    let (xs, fs) = (x.cpu_f32()?, f.cpu_f32()?);
    let mut out = vec![0f32; xs.len()];
    if out.is_empty() {
        return Tensor::from_vec(out, x.shape());
    }
    // Per plane: (μ, k = w / (σ + eps)) with σ the unbiased std.
    let coef = |xs: &[f32], w: f32| -> Vec<(f64, f32)> {
        group_moments(xs, n).into_iter().map(|(mu, q)| (mu, (w as f64 / ((q / (n - 1) as f64).sqrt() + eps as f64)) as f32)).collect()
    };
    let (cx, cf) = (coef(xs, wx), coef(fs, wf));
    out.par_chunks_mut(n).enumerate().with_min_len((4096 / n).max(1)).for_each(|(pl, o)| {
        let ((mx, kx), (mf, kf)) = (cx[pl], cf[pl]);
        for ((y, &a), &b) in o.iter_mut().zip(&xs[pl * n..][..n]).zip(&fs[pl * n..][..n]) {
            *y = ((a as f64 - mx) as f32) * kx + ((b as f64 - mf) as f32) * kf;
        }
    });
    Tensor::from_vec(out, x.shape())
}
