//! CPU patch embedding: im2col (rayon over patches), one `gemm`-backed `linear` (patches × ph·pw)
//! · Wᵀ + bias, then the prefix tokens and the position embedding (rayon over rows).

use rayon::prelude::*;

use super::{Geom, PatchEmbed};
use crate::{Result, Tensor};

pub(super) fn patch_embed(x: &Tensor, pe: &PatchEmbed, g: &Geom) -> Result<Tensor> {
    let xs = x.cpu_f32()?;
    let (k, patches, rows, n) = (g.kdim(), g.patches(), g.rows(), g.n);
    // im2col: row (b, f, t), column i·pw + j (the weight's (ph, pw) order) = x[b, t·ts + j, f·fs + i].
    let mut cols = vec![0f32; g.batch * patches * k];
    if k > 0 {
        cols.par_chunks_mut(k).enumerate().for_each(|(r, row)| {
            let (b, p) = (r / patches, r % patches);
            let (f, t) = (p / g.to, p % g.to);
            let xb = &xs[b * g.frames * g.mel..];
            for i in 0..g.ph {
                for j in 0..g.pw {
                    row[i * g.pw + j] = xb[(t * g.ts + j) * g.mel + f * g.fs + i];
                }
            }
        });
    }
    let cols = Tensor::from_vec(cols, &[g.batch * patches, k])?;
    let w = pe.weight.reshape(&[n, k])?;
    let y = crate::ops::matmul::linear(&cols, &w, Some(pe.bias))?;
    let y = y.cpu_f32()?;
    let prefix = pe.prefix.map(|t| t.cpu_f32()).transpose()?;
    let pos = pe.pos.map(|t| t.cpu_f32()).transpose()?;
    let mut out = vec![0f32; g.batch * rows * n];
    if n > 0 {
        out.par_chunks_mut(n).enumerate().for_each(|(ri, o)| {
            let (b, r) = (ri / rows, ri % rows);
            if r < g.prefix {
                o.copy_from_slice(&prefix.expect("prefix rows exist only with prefix tokens")[r * n..(r + 1) * n]);
            } else {
                let p = b * patches + (r - g.prefix);
                o.copy_from_slice(&y[p * n..(p + 1) * n]);
            }
            if let Some(pos) = pos {
                o.iter_mut().zip(&pos[r * n..(r + 1) * n]).for_each(|(a, &b)| *a += b);
            }
        });
    }
    Tensor::from_vec(out, &g.out_shape())
}
