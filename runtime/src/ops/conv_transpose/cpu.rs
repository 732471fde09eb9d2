//! CPU transposed convolution (kernel = stride): per band of input rows, the activated band (the
//! time-FiLM term fetched once per input row), or the input in place; one `gemm`
//! (O·sh·sw × C)·(C × band) into a per-thread buffer, then the scatter of each (i, j) phase into its
//! output pixels. rayon over bands.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Geom;
use crate::ops::conv2d::cpu::{act_row, Pre, RowTime, SendPtr};
use crate::ops::conv2d::PreAct;
use crate::{Result, Tensor};

const BAND_FLOATS: usize = 1 << 18;

pub(super) fn conv_transpose2d(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, g: &Geom) -> Result<Tensor> {
    let x = x.cpu_f32()?;
    let w = weight.cpu_f32()?;
    let pre = pre.map(|p| Pre::new(p, g.shift_per_batch, g.cin, g.h)).transpose()?;
    let (h, wd, ss) = (g.h, g.w, g.sh * g.sw);
    let hw = h * wd;
    let (ho, wo) = (h * g.sh, wd * g.sw);
    let m = g.cout * ss;
    let len = g.batch * g.cout * ho * wo;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return Tensor::from_vec(out, &g.out_shape());
    }
    let rows = (BAND_FLOATS / ((g.cin + m) * wd).max(1)).clamp(1, h);
    let per_item = h.div_ceil(rows);
    let bands: Vec<(usize, usize, usize)> = (0..g.batch).flat_map(|b| (0..per_item).map(move |i| (b, i * rows, ((i + 1) * rows).min(h)))).collect();
    let base = SendPtr(out.as_mut_ptr());
    let run = |bufs: &mut (Vec<f32>, Vec<f32>), (b, h0, h1): (usize, usize, usize), par: Parallelism| {
        let n = (h1 - h0) * wd;
        let xb = &x[b * g.cin * hw..][..g.cin * hw];
        let (abuf, tmp) = bufs;
        let rhs: &[f32] = match &pre {
            None => &xb[h0 * wd..],
            Some(pr) => {
                abuf.resize(g.cin * n, 0.0);
                for c in 0..g.cin {
                    let (sc, sh) = pr.get(b, c);
                    let (dst, src) = (&mut abuf[c * n..][..n], &xb[c * hw + h0 * wd..][..n]);
                    if pr.time.is_none() {
                        // The band's rows of one channel are contiguous: one call.
                        act_row(dst, src, sc, sh, pr.slope, RowTime::None);
                    } else {
                        // The time-FiLM term is constant along a row (fetched once per row).
                        for (r, (d, s)) in dst.chunks_exact_mut(wd).zip(src.chunks_exact(wd)).enumerate() {
                            act_row(d, s, sc, sh, pr.slope, pr.row_time(b, c, h0 + r));
                        }
                    }
                }
                abuf
            }
        };
        let rhs_rs = if pre.is_some() { n } else { hw };
        tmp.resize(m * n, 0.0);
        // SAFETY: lhs element (r, c) = w[c·m + r] (the (C, O·sh·sw) weight read transposed); rhs C rows
        // of n columns (stride rhs_rs); dst the (m, n) buffer.
        unsafe {
            gemm::gemm(
                m,
                n,
                g.cin,
                tmp.as_mut_ptr(),
                1,
                n as isize,
                false,
                w.as_ptr(),
                m as isize,
                1,
                rhs.as_ptr(),
                1,
                rhs_rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        for o in 0..g.cout {
            for i in 0..g.sh {
                for hr in 0..h1 - h0 {
                    let oh = (h0 + hr) * g.sh + i;
                    // SAFETY: band (b, h0..h1) owns output rows h0·sh .. h1·sh of every channel of item b.
                    let orow = unsafe { std::slice::from_raw_parts_mut(base.at(((b * g.cout + o) * ho + oh) * wo), wo) };
                    for j in 0..g.sw {
                        let src = &tmp[(o * ss + i * g.sw + j) * n + hr * wd..][..wd];
                        for (wi, &v) in src.iter().enumerate() {
                            orow[wi * g.sw + j] = v;
                        }
                    }
                }
            }
        }
    };
    if bands.len() >= 2 * rayon::current_num_threads() {
        bands.par_iter().for_each_init(|| (Vec::new(), Vec::new()), |bufs, &band| run(bufs, band, Parallelism::None));
    } else {
        let mut bufs = (Vec::new(), Vec::new());
        for &band in &bands {
            run(&mut bufs, band, Parallelism::Rayon(0));
        }
    }
    // SAFETY: every output pixel has exactly one source pixel, written by its band above.
    unsafe { out.set_len(len) };
    Tensor::from_vec(out, &g.out_shape())
}
