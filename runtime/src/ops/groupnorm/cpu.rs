//! CPU group normalisation: the statistics of every group over pieces of at most [`PIECE`] values in
//! parallel (f64, two passes), each group's pieces combined in a fixed order (deterministic whatever
//! rayon's scheduling); then the output in parallel over (n, c) planes.

use rayon::prelude::*;

use super::Geom;
use crate::{Result, Tensor};

/// Values per parallel piece of a group's sums.
const PIECE: usize = 1 << 14;

/// Σ xs in f64 (four interleaved accumulators, added pairwise at the end).
fn sum_f64(xs: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0f64; 4];
    let mut it = xs.chunks_exact(4);
    for c in &mut it {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v as f64);
        }
    }
    for (a, &v) in acc.iter_mut().zip(it.remainder()) {
        *a += f(v as f64);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Per group of `m` consecutive values of `x` (x.len() / m groups): (mean, Σ (x − mean)²), in f64.
pub(crate) fn group_moments(x: &[f32], m: usize) -> Vec<(f64, f64)> {
    if m == 0 {
        return Vec::new();
    }
    let groups = x.len() / m;
    let per = m.div_ceil(PIECE);
    let piece = |k: usize| -> &[f32] {
        let (gi, j) = (k / per, k % per);
        let start = j * PIECE;
        &x[gi * m + start..gi * m + (start + PIECE).min(m)]
    };
    let combine = |parts: Vec<f64>| -> Vec<f64> { parts.chunks(per).map(|c| c.iter().sum()).collect() };
    let sums = combine((0..groups * per).into_par_iter().map(|k| sum_f64(piece(k), |v| v)).collect());
    let means: Vec<f64> = sums.iter().map(|s| s / m as f64).collect();
    let sq = combine(
        (0..groups * per)
            .into_par_iter()
            .map(|k| {
                let mu = means[k / per];
                sum_f64(piece(k), |v| (v - mu) * (v - mu))
            })
            .collect(),
    );
    means.into_iter().zip(sq).collect()
}

pub(super) fn group_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32, residual: Option<&Tensor>, g: &Geom) -> Result<Tensor> {
    let (xs, w, b) = (x.cpu_f32()?, weight.cpu_f32()?, bias.cpu_f32()?);
    let r = residual.map(|r| r.cpu_f32()).transpose()?;
    let mut out = vec![0f32; xs.len()];
    let m = g.group_len();
    if out.is_empty() {
        return Tensor::from_vec(out, x.shape());
    }
    let stats: Vec<(f64, f64)> = group_moments(xs, m).into_iter().map(|(mu, q)| (mu, 1.0 / (q / m as f64 + eps as f64).sqrt())).collect();
    let (s, cg) = (g.spatial, g.channels / g.groups);
    out.par_chunks_mut(s).enumerate().with_min_len((4096 / s).max(1)).for_each(|(pl, o)| {
        let c = pl % g.channels;
        let (mu, rstd) = stats[(pl / g.channels) * g.groups + c / cg];
        let a = (rstd * w[c] as f64) as f32;
        let xp = &xs[pl * s..][..s];
        for (y, &v) in o.iter_mut().zip(xp) {
            *y = ((v as f64 - mu) as f32) * a + b[c];
        }
        if let Some(r) = r {
            for (y, &rv) in o.iter_mut().zip(&r[pl * s..][..s]) {
                *y += rv;
            }
        }
    });
    Tensor::from_vec(out, x.shape())
}
