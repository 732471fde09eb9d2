//! CPU conv2d: bands of output rows, each an im2col band built in a per-thread buffer (with the
//! pre-activation, time-FiLM included, applied once per input row) and one `gemm` call writing
//! (O × band) straight into the output. The output band is pre-filled with the residual and bias, so
//! the epilogue costs no extra pass. rayon over bands when there are enough of them, else gemm's own
//! threads per band.

use std::borrow::Cow;

use gemm::Parallelism;
use rayon::prelude::*;

use super::{Conv2d, Geom, PreAct, TimeFilmMode};
use crate::{DType, Result, Tensor};

/// Target size of one im2col band (floats): the band is written once and read once by gemm's
/// packing, so it should stay in the last-level cache.
const BAND_FLOATS: usize = 1 << 18;

/// The output shared by the band tasks; each writes its own rows.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
// SAFETY: tasks write disjoint ranges (see the callers).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// # Safety
    /// `offset` must stay inside the allocation.
    #[inline]
    pub(crate) unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// The f32 values of a weight tensor (f16 converted).
pub(crate) fn weight_f32(w: &Tensor) -> Result<Cow<'_, [f32]>> {
    Ok(match w.dtype() {
        DType::F32 => Cow::Borrowed(w.cpu_f32()?),
        DType::F16 => Cow::Owned(w.cpu_f16()?.iter().map(|v| v.to_f32()).collect()),
    })
}

/// `dst[i] = leaky(src[i]·scale + shift)`, then the time-FiLM term of the row: `Add(t)` adds t
/// before the activation (`leaky((src[i]·scale + shift) + t)`), `Gate(t)` multiplies after it
/// (`leaky(src[i]·scale + shift)·t`). Each operation is rounded on its own (no FMA), in this order;
/// the CUDA kernels round the same way.
#[inline]
pub(crate) fn act_row(dst: &mut [f32], src: &[f32], scale: f32, shift: f32, slope: f32, time: RowTime) {
    let leaky = |a: f32| if a < 0.0 { a * slope } else { a };
    match time {
        RowTime::None => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = leaky(s * scale + shift)),
        RowTime::Add(t) => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = leaky((s * scale + shift) + t)),
        RowTime::Gate(t) => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = leaky(s * scale + shift) * t),
    }
}

/// The time-FiLM term of one input row (item b, channel c, row h): constant along the row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowTime {
    None,
    Add(f32),
    Gate(f32),
}

/// The pre-activation of input channel `c` (global index) of batch item `b`: (scale, shift, slope),
/// the optional time-FiLM values (B, C, H) with their mode, or the identity.
pub(crate) struct Pre<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    pub per_batch: bool,
    pub slope: f32,
    pub channels: usize,
    /// (values (B, C, rows), mode).
    pub time: Option<(&'a [f32], TimeFilmMode)>,
    /// Input rows H (the time axis of `time`).
    pub rows: usize,
}

impl<'a> Pre<'a> {
    /// The CPU view of `p` for `channels` input channels and `rows` input rows (shapes already checked).
    pub fn new(p: &PreAct<'a>, per_batch: bool, channels: usize, rows: usize) -> Result<Pre<'a>> {
        let time = match &p.time {
            Some(t) => Some((t.values.cpu_f32()?, t.mode)),
            None => None,
        };
        Ok(Pre { scale: p.scale.cpu_f32()?, shift: p.shift.cpu_f32()?, per_batch, slope: p.slope, channels, time, rows })
    }

    #[inline]
    pub fn get(&self, b: usize, c: usize) -> (f32, f32) {
        let sh = if self.per_batch { self.shift[b * self.channels + c] } else { self.shift[c] };
        (self.scale[c], sh)
    }

    /// The time-FiLM term of row `h` of channel `c` of item `b`.
    #[inline]
    pub fn row_time(&self, b: usize, c: usize, h: usize) -> RowTime {
        match self.time {
            None => RowTime::None,
            Some((t, mode)) => {
                let v = t[(b * self.channels + c) * self.rows + h];
                match mode {
                    TimeFilmMode::Add => RowTime::Add(v),
                    TimeFilmMode::Gate => RowTime::Gate(v),
                }
            }
        }
    }
}

pub(super) fn conv2d(inputs: &[&Tensor], c: &Conv2d, g: &Geom) -> Result<Tensor> {
    let xs: Vec<&[f32]> = inputs.iter().map(|t| t.cpu_f32()).collect::<Result<_>>()?;
    let w = weight_f32(c.weight)?;
    let bias = c.bias.map(|t| t.cpu_f32()).transpose()?;
    let residual = c.residual.map(|t| t.cpu_f32()).transpose()?;
    let ct = g.cin_total();
    let pre = c.pre.as_ref().map(|p| Pre::new(p, g.shift_per_batch, ct, g.h)).transpose()?;
    let (h, wd, k) = (g.h, g.w, g.k);
    let hw = h * wd;
    let kdim = ct * k * k;
    let len = g.batch * g.cout * hw;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len == 0 {
        return Tensor::from_vec(out, &g.out_shape());
    }
    let bands = bands(g.batch, h, wd, kdim);
    let base = SendPtr(out.as_mut_ptr());
    let direct = k == 1 && pre.is_none();
    let run = |buf: &mut Vec<f32>, band: Band, par: Parallelism| {
        let Band { b, h0, h1, w0, w1 } = band;
        let n = (h1 - h0) * (w1 - w0);
        let off = h0 * wd + w0;
        // SAFETY: the band owns out[b, o, off .. off + n] for every o (whole rows, or a column range of
        // one row); bands are disjoint.
        let dst = unsafe { base.at(b * g.cout * hw + off) };
        let read_dst = bias.is_some() || residual.is_some();
        if read_dst {
            for o in 0..g.cout {
                // SAFETY: as above; n elements of row o of this band.
                let row = unsafe { std::slice::from_raw_parts_mut(dst.add(o * hw), n) };
                match residual {
                    Some(r) => row.copy_from_slice(&r[b * g.cout * hw + o * hw + off..][..n]),
                    None => row.fill(0.0),
                }
                if let Some(bias) = bias {
                    let bv = bias[o];
                    row.iter_mut().for_each(|y| *y += bv);
                }
            }
        }
        if direct {
            // 1×1 without a pre-activation: gemm reads each input in place, one call per source.
            let mut c0 = 0;
            for (s, x) in xs.iter().enumerate() {
                let cs = g.cin[s];
                // A source with no channels is empty (gemm with k = 0 reads no rhs): don't slice past it.
                let rhs = if cs == 0 { &x[..] } else { &x[b * cs * hw + off..] };
                // SAFETY: lhs: columns c0..c0+cs of the (O, ΣC) weight (row stride ΣC); rhs: cs rows
                // (stride hw) of n columns inside x; dst: O rows (stride hw) of n columns of this band.
                unsafe { gemm_rows(g.cout, n, cs, dst, hw, read_dst || s > 0, &w[c0..], ct, rhs, hw, par) };
                c0 += cs;
            }
            return;
        }
        buf.resize(kdim * n, 0.0);
        fill_band(buf, &xs, g, pre.as_ref(), band);
        // SAFETY: lhs (O, K) row-major; rhs the (K, n) band; dst O rows (stride hw) of n columns.
        unsafe { gemm_rows(g.cout, n, kdim, dst, hw, read_dst, &w, kdim, buf, n, par) };
    };
    if bands.len() >= 2 * rayon::current_num_threads() {
        bands.par_iter().for_each_init(Vec::new, |buf, band| run(buf, *band, Parallelism::None));
    } else {
        let mut buf = Vec::new();
        for &band in &bands {
            run(&mut buf, band, Parallelism::Rayon(0));
        }
    }
    // SAFETY: every band wrote all O × n of its elements, and the bands cover the output.
    unsafe { out.set_len(len) };
    Tensor::from_vec(out, &g.out_shape())
}

/// `dst (m × n) (+)= lhs (m × k) · rhs (k × n)`, every matrix row-major with unit column stride and
/// the given row strides; `accumulate` adds to dst instead of overwriting it.
///
/// # Safety
/// `dst` must be valid for m rows of n elements at stride `dst_rs`, and the slices must hold the
/// rows the strides reach (`lhs` m rows at `lhs_rs`, `rhs` k rows at `rhs_rs`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rows(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    // SAFETY: the caller's contract; gemm forms only indices inside the strided rows.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// A block of output pixels of batch item `b`: rows h0..h1 × columns w0..w1, either whole rows
/// (w0 = 0, w1 = W) or a column range of one row, so its pixels are contiguous in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Band {
    pub b: usize,
    pub h0: usize,
    pub h1: usize,
    pub w0: usize,
    pub w1: usize,
}

/// Bands whose im2col block (kdim × pixels) holds about [`BAND_FLOATS`]: several rows when a row is
/// small, column ranges of one row when a row alone is larger (the deep-channel, wide levels).
pub(crate) fn bands(batch: usize, h: usize, w: usize, kdim: usize) -> Vec<Band> {
    let per_band = (BAND_FLOATS / kdim.max(1)).max(16);
    let mut v = Vec::new();
    for b in 0..batch {
        if per_band >= w {
            let rows = (per_band / w).clamp(1, h);
            v.extend((0..h.div_ceil(rows)).map(|i| Band { b, h0: i * rows, h1: ((i + 1) * rows).min(h), w0: 0, w1: w }));
        } else {
            let pieces = w.div_ceil(per_band);
            let cw = w.div_ceil(pieces);
            for r in 0..h {
                v.extend((0..pieces).map(|i| Band { b, h0: r, h1: r + 1, w0: i * cw, w1: ((i + 1) * cw).min(w) }).filter(|bd| bd.w0 < bd.w1));
            }
        }
    }
    v
}

/// The im2col block of a band: row `(c·k + i)·k + j`, column `(h − h0)·(w1 − w0) + (w − w0)` holds
/// `a[c, h + i − p, w + j − p]` (0 outside the image), `a` the activated input.
pub(crate) fn fill_band(buf: &mut [f32], xs: &[&[f32]], g: &Geom, pre: Option<&Pre>, band: Band) {
    let Band { b, h0, h1, w0, w1 } = band;
    let (h, wd, k) = (g.h, g.w, g.k);
    let p = k / 2;
    let hw = h * wd;
    let bw = w1 - w0;
    let n = (h1 - h0) * bw;
    let pw = bw + 2 * p;
    let arows = h1 - h0 + 2 * p;
    // Input columns w0 − p .. w1 + p that exist, and where they sit in a padded row.
    let (c0, c1) = (w0.saturating_sub(p), (w1 + p).min(wd));
    let at = c0 + p - w0;
    // The activated input rows h0 − p .. h1 + p of one channel, columns w0 − p .. w1 + p, zero
    // outside the image.
    let mut a = vec![0f32; arows * pw];
    let mut cg = 0;
    for (s, x) in xs.iter().enumerate() {
        for c in 0..g.cin[s] {
            let plane = &x[(b * g.cin[s] + c) * hw..][..hw];
            let (sc, sh) = pre.map_or((1.0, 0.0), |pr| pr.get(b, cg));
            for r in 0..arows {
                let row = &mut a[r * pw..][..pw];
                let src_h = (h0 + r) as isize - p as isize;
                if src_h < 0 || src_h >= h as isize {
                    row.fill(0.0);
                    continue;
                }
                let src = &plane[src_h as usize * wd + c0..][..c1 - c0];
                let dst = &mut row[at..at + (c1 - c0)];
                match pre {
                    // The time-FiLM term depends on (b, c, row) only: fetched once per row.
                    Some(pr) => act_row(dst, src, sc, sh, pr.slope, pr.row_time(b, cg, src_h as usize)),
                    None => dst.copy_from_slice(src),
                }
            }
            for i in 0..k {
                for j in 0..k {
                    let dst = &mut buf[((cg * k + i) * k + j) * n..][..n];
                    for hr in 0..h1 - h0 {
                        dst[hr * bw..][..bw].copy_from_slice(&a[(hr + i) * pw + j..][..bw]);
                    }
                }
            }
            cg += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_tile_the_output_once() {
        for (batch, h, w, kdim) in [(2, 7, 9, 27), (1, 2016, 512, 288), (1, 3, 512, 6912), (1, 63, 8, 3456), (1, 5, 1000, 1 << 17)] {
            let mut hit = vec![0u8; batch * h * w];
            for bd in bands(batch, h, w, kdim) {
                assert!(bd.w0 == 0 && bd.w1 == w || bd.h1 == bd.h0 + 1, "{bd:?}");
                for r in bd.h0..bd.h1 {
                    for c in bd.w0..bd.w1 {
                        hit[(bd.b * h + r) * w + c] += 1;
                    }
                }
            }
            assert!(hit.iter().all(|&x| x == 1), "({batch}, {h}, {w}, {kdim})");
        }
    }
}
