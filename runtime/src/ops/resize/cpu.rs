//! CPU bilinear resize: per-axis tap tables computed once, then rayon over (n, c) planes. With a
//! pre-activation the source plane is activated once into a per-plane buffer (an upsample reads each
//! source sample several times). Every product and sum is rounded separately, in the kernel's order.

use rayon::prelude::*;

use super::Geom;
use crate::ops::conv2d::PreAct;
use crate::{Result, Tensor};

/// One output index's taps along an axis: `(i0, i1, λ)`.
pub(crate) fn axis_taps(input: usize, output: usize, scale: f32) -> Vec<(usize, usize, f32)> {
    (0..output)
        .map(|d| {
            let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let l = (src - i0 as f32).clamp(0.0, 1.0);
            (i0, (i0 + 1).min(input - 1), l)
        })
        .collect()
}

pub(super) fn resize_bilinear(x: &Tensor, pre: Option<&PreAct>, g: &Geom) -> Result<Tensor> {
    let xs = x.cpu_f32()?;
    let (sh, sw) = g.scales();
    let (th, tw) = (axis_taps(g.h, g.ho, sh), axis_taps(g.w, g.wo, sw));
    let pre = match pre {
        Some(p) => Some((p.scale.cpu_f32()?, p.shift.cpu_f32()?, p.slope)),
        None => None,
    };
    let (hw, ohw) = (g.h * g.w, g.ho * g.wo);
    let mut out = vec![0f32; g.n * g.c * ohw];
    out.par_chunks_mut(ohw.max(1)).enumerate().for_each_init(
        || vec![0f32; if pre.is_some() { hw } else { 0 }],
        |buf, (pl, o)| {
            let src = &xs[pl * hw..][..hw];
            let a: &[f32] = match pre {
                Some((scale, shift, slope)) => {
                    let c = pl % g.c;
                    let (sc, sf) = (scale[c], if g.shift_per_batch { shift[pl] } else { shift[c] });
                    for (d, &v) in buf.iter_mut().zip(src) {
                        let t = v * sc + sf;
                        *d = if t < 0.0 { t * slope } else { t };
                    }
                    &buf[..]
                }
                None => src,
            };
            for (oh, &(h0, h1, lh)) in th.iter().enumerate() {
                let (r0, r1) = (&a[h0 * g.w..][..g.w], &a[h1 * g.w..][..g.w]);
                let mh = 1.0 - lh;
                for (y, &(w0, w1, lw)) in o[oh * g.wo..][..g.wo].iter_mut().zip(&tw) {
                    let mw = 1.0 - lw;
                    let t0 = r0[w0] * mw + r0[w1] * lw;
                    let t1 = r1[w0] * mw + r1[w1] * lw;
                    *y = t0 * mh + t1 * lh;
                }
            }
        },
    );
    Tensor::from_vec(out, &g.out_shape())
}
