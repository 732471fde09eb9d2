//! CPU average pooling: rayon over (b, c) planes, each output row summing its kh input rows.

use rayon::prelude::*;

use super::Geom;
use crate::{Result, Tensor};

pub(super) fn avg_pool2d(x: &[f32], g: &Geom, shape: &[usize]) -> Result<Tensor> {
    let div = (g.kh * g.kw) as f32;
    let mut out = vec![0f32; g.planes * g.ho * g.wo];
    if out.is_empty() {
        return Tensor::from_vec(out, shape);
    }
    out.par_chunks_mut(g.ho * g.wo).enumerate().for_each(|(pl, o)| {
        let xp = &x[pl * g.h * g.w..][..g.h * g.w];
        for oh in 0..g.ho {
            let orow = &mut o[oh * g.wo..][..g.wo];
            for (ow, y) in orow.iter_mut().enumerate() {
                let mut s = 0f32;
                for i in 0..g.kh {
                    let row = &xp[(oh * g.kh + i) * g.w + ow * g.kw..][..g.kw];
                    for &v in row {
                        s += v;
                    }
                }
                *y = s / div;
            }
        }
    });
    Tensor::from_vec(out, shape)
}
