//! CPU reference of one GRU layer.
//!
//! 1. Input projections of every step as one GEMM per direction (`ops::matmul::linear`, the `gemm`
//!    crate on both cores): xp = x·W_ihᵀ + b_ih, (B, T, 3H).
//! 2. The recurrence, both directions concurrently (`rayon::join`, one core each). Per step
//!    gh = W_hh·h + b_hh is a (3H × H)·H matrix-vector product per batch element: blocks of 4 rows of
//!    W_hh, each loaded once and dotted with every batch element's h (AVX2+FMA with 8 accumulators
//!    when the CPU has them, detected at run time; a portable 8-lane loop otherwise). Then the gates.
//!
//! Cache: W_hh is 3H·H·4 bytes (1.77 MB at H = 384) per direction — more than one core's L2 here
//! (1 MB), so a plain sweep would stream it from L3 every step. The row blocks are visited in
//! alternating order (serpentine: rows 0→3H on even steps, 3H→0 on odd ones), so the rows swept last
//! — still in L2 — are the first ones read at the next step.

use super::GruDirWeights;
use crate::ops::matmul::linear;
use crate::{Result, Tensor};

/// One layer: x (B, T, I) → (B, T·repeat, D·H), every input frame seen `repeat` times. `h0`:
/// (D, B, H) of this layer (host data), or none.
pub(super) fn layer(x: &Tensor, dirs: &[GruDirWeights], h0: Option<&[f32]>, repeat: usize) -> Result<Tensor> {
    Ok(layer_impl(x, dirs, h0, false, repeat)?.0)
}

/// [`layer`] that also returns what the backward needs (`super::GruSaved`): the input projections
/// xp = x·W_ihᵀ + b_ih of both directions as one GEMM with the stacked W_ih, and every step's
/// gh = W_hh·h_{t−1} + b_hh, both (B, T, D·3H) (direction d at columns d·3H..).
pub(super) fn layer_train(x: &Tensor, dirs: &[GruDirWeights]) -> Result<(Tensor, Tensor, Tensor)> {
    let (y, saved) = layer_impl(x, dirs, None, true, 1)?;
    let (xp, gh) = saved.expect("saved tensors requested");
    Ok((y, xp, gh))
}

type Saved = Option<(Tensor, Tensor)>;

fn layer_impl(x: &Tensor, dirs: &[GruDirWeights], h0: Option<&[f32]>, save: bool, repeat: usize) -> Result<(Tensor, Saved)> {
    let (b, t) = (x.shape()[0], x.shape()[1] * repeat);
    let h = dirs[0].w_hh.shape()[1];
    let d = dirs.len();
    let g3 = 3 * h;
    let mut out = vec![0f32; b * t * d * h];
    if out.is_empty() {
        let saved = if save { Some((Tensor::from_vec(vec![], &[b, t, d * g3])?, Tensor::from_vec(vec![], &[b, t, d * g3])?)) } else { None };
        return Ok((Tensor::from_vec(out, &[b, t, d * h])?, saved));
    }
    // Input projections: per direction (inference), or one GEMM with the stacked weights (training,
    // so that xp is already the saved (B, T, D·3H) tensor). `xp_row` is the row stride of xps[di].
    let (xps, xp_row, xp_off): (Vec<Tensor>, usize, usize) = if save && d > 1 {
        let w_ih = crate::ops::shape::concat(&dirs.iter().map(|w| &w.w_ih).collect::<Vec<_>>(), 0)?;
        let b_ih = if dirs.iter().any(|w| w.b_ih.is_some()) {
            let parts = dirs
                .iter()
                .map(|w| w.b_ih.clone().map_or_else(|| Tensor::zeros(&[g3], crate::DType::F32, crate::Device::Cpu), Ok))
                .collect::<Result<Vec<_>>>()?;
            Some(crate::ops::shape::concat(&parts.iter().collect::<Vec<_>>(), 0)?)
        } else {
            None
        };
        (vec![repeat_rows(linear(x, &w_ih, b_ih.as_ref())?, repeat)?], d * g3, g3)
    } else {
        (dirs.iter().map(|w| repeat_rows(linear(x, &w.w_ih, w.b_ih.as_ref())?, repeat)).collect::<Result<Vec<_>>>()?, g3, 0)
    };
    let mut gh_all = if save { vec![0f32; b * t * d * g3] } else { Vec::new() };
    let out_ptr = SyncPtr(out.as_mut_ptr());
    let gh_ptr = SyncPtr(gh_all.as_mut_ptr());
    let run = |di: usize| -> Result<()> {
        let w = &dirs[di];
        let bhh = w.b_hh.as_ref().map(|t| t.cpu_f32()).transpose()?;
        let h0d = h0.map(|v| &v[di * b * h..(di + 1) * b * h]);
        // SAFETY: direction di writes only columns di·H .. (di+1)·H of every row of `out` (and
        // di·3H .. (di+1)·3H of `gh_all`); the two directions' column ranges are disjoint and both
        // buffers outlive both closures.
        let dst = Strided { ptr: out_ptr, row: d * h, offset: di * h };
        let ghd = save.then_some(Strided { ptr: gh_ptr, row: d * g3, offset: di * g3 });
        let (xp, off) = if xps.len() == 1 { (xps[0].cpu_f32()?, di * xp_off) } else { (xps[di].cpu_f32()?, 0) };
        let xv = XpView { data: xp, row: xp_row, offset: off };
        recur(&xv, w.w_hh.cpu_f32()?, bhh, h0d, di == 1, b, t, h, &dst, ghd.as_ref());
        Ok(())
    };
    if d == 2 {
        let (a, c) = rayon::join(|| run(0), || run(1));
        a?;
        c?;
    } else {
        run(0)?;
    }
    let saved = if save {
        let xp = if xps.len() == 1 { xps[0].clone() } else { unreachable!("training stacks W_ih") };
        Some((xp, Tensor::from_vec(gh_all, &[b, t, d * g3])?))
    } else {
        None
    };
    Ok((Tensor::from_vec(out, &[b, t, d * h])?, saved))
}

/// The input projections of one direction: row r (= b·T + t) at data[r·row + offset ..][..3H].
struct XpView<'a> {
    data: &'a [f32],
    row: usize,
    offset: usize,
}

/// (B, T, N) → (B, T·repeat, N), each row repeated.
pub(super) fn repeat_rows(xp: Tensor, repeat: usize) -> Result<Tensor> {
    if repeat == 1 {
        return Ok(xp);
    }
    crate::ops::shape::repeat_interleave(&xp, 1, repeat)
}

#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only for the disjoint column ranges described at its use.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

/// Row-major destination: element (row r, column j) at ptr[r·row + offset + j].
struct Strided {
    ptr: SyncPtr,
    row: usize,
    offset: usize,
}

/// The recurrence of one direction. xp: (B, T, 3H) strided; whh: (3H, H); out rows are (b·T + t);
/// `gh_out`, when given, receives every step's W_hh·h + b_hh (3H per row).
#[allow(clippy::too_many_arguments)]
fn recur(
    xp: &XpView,
    whh: &[f32],
    bhh: Option<&[f32]>,
    h0: Option<&[f32]>,
    reverse: bool,
    b: usize,
    t: usize,
    h: usize,
    dst: &Strided,
    gh_out: Option<&Strided>,
) {
    let g3 = 3 * h;
    let mut hs = match h0 {
        Some(v) => v.to_vec(),
        None => vec![0f32; b * h],
    };
    let mut gh = vec![0f32; b * g3];
    for s in 0..t {
        let tt = if reverse { t - 1 - s } else { s };
        matvec(whh, &hs, bhh, &mut gh, b, h, s % 2 == 1);
        for bi in 0..b {
            let x = &xp.data[(bi * t + tt) * xp.row + xp.offset..][..g3];
            let g = &gh[bi * g3..(bi + 1) * g3];
            if let Some(o) = gh_out {
                // SAFETY: as for `dst` below (row (bi·T + tt), columns offset..offset + 3H).
                unsafe { std::ptr::copy_nonoverlapping(g.as_ptr(), o.ptr.0.add((bi * t + tt) * o.row + o.offset), g3) };
            }
            let hb = &mut hs[bi * h..(bi + 1) * h];
            for j in 0..h {
                let r = sigmoid(x[j] + g[j]);
                let z = sigmoid(x[h + j] + g[h + j]);
                let n = (x[2 * h + j] + r * g[2 * h + j]).tanh();
                hb[j] = (1.0 - z) * n + z * hb[j];
            }
            // SAFETY: row (bi·T + tt) < B·T, columns offset..offset + H < row length (see `layer`).
            unsafe {
                let p = dst.ptr.0.add((bi * t + tt) * dst.row + dst.offset);
                std::ptr::copy_nonoverlapping(hb.as_ptr(), p, h);
            }
        }
    }
}

#[inline]
pub(super) fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// gh[b, r] = Σ_k whh[r, k]·hs[b, k] + bhh[r] for every row r of whh (3H × H) and batch element b,
/// by blocks of 4 rows (each block loaded once for all b), in reverse block order when `backwards`.
fn matvec(whh: &[f32], hs: &[f32], bhh: Option<&[f32]>, gh: &mut [f32], b: usize, h: usize, backwards: bool) {
    let rows = 3 * h;
    let blocks = rows.div_ceil(4);
    let one = |blk: usize, gh: &mut [f32]| {
        let r0 = blk * 4;
        let nr = (rows - r0).min(4);
        for bi in 0..b {
            let hb = &hs[bi * h..(bi + 1) * h];
            let s = if nr == 4 { dot4(&whh[r0 * h..(r0 + 4) * h], hb, h) } else { dot_tail(&whh[r0 * h..(r0 + nr) * h], hb, h, nr) };
            for (i, &v) in s[..nr].iter().enumerate() {
                gh[bi * rows + r0 + i] = v + bhh.map_or(0.0, |c| c[r0 + i]);
            }
        }
    };
    if backwards {
        for blk in (0..blocks).rev() {
            one(blk, gh);
        }
    } else {
        for blk in 0..blocks {
            one(blk, gh);
        }
    }
}

pub(super) fn dot_tail(w: &[f32], h: &[f32], n: usize, nr: usize) -> [f32; 4] {
    let mut s = [0f32; 4];
    for (i, si) in s.iter_mut().enumerate().take(nr) {
        *si = dot_portable(&w[i * n..(i + 1) * n], h);
    }
    s
}

/// Four dot products of consecutive rows of `w` (4 × n, row-major) with `h` (n).
#[inline]
pub(super) fn dot4(w: &[f32], h: &[f32], n: usize) -> [f32; 4] {
    debug_assert!(w.len() >= 4 * n && h.len() >= n);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked); w holds 4·n and h n floats (asserted).
            return unsafe { dot4_avx2(w.as_ptr(), h.as_ptr(), n) };
        }
    }
    [dot_portable(&w[..n], h), dot_portable(&w[n..2 * n], h), dot_portable(&w[2 * n..3 * n], h), dot_portable(&w[3 * n..4 * n], h)]
}

/// 8-lane dot product (auto-vectorised on any target).
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_avx2(w: *const f32, h: *const f32, n: usize) -> [f32; 4] {
    use std::arch::x86_64::*;
    let (w0, w1, w2, w3) = (w, w.add(n), w.add(2 * n), w.add(3 * n));
    // Two accumulators per row: 8 independent FMA chains.
    let mut a = [_mm256_setzero_ps(); 8];
    let mut k = 0;
    while k + 16 <= n {
        let h0 = _mm256_loadu_ps(h.add(k));
        let h1 = _mm256_loadu_ps(h.add(k + 8));
        a[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0.add(k)), h0, a[0]);
        a[1] = _mm256_fmadd_ps(_mm256_loadu_ps(w0.add(k + 8)), h1, a[1]);
        a[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1.add(k)), h0, a[2]);
        a[3] = _mm256_fmadd_ps(_mm256_loadu_ps(w1.add(k + 8)), h1, a[3]);
        a[4] = _mm256_fmadd_ps(_mm256_loadu_ps(w2.add(k)), h0, a[4]);
        a[5] = _mm256_fmadd_ps(_mm256_loadu_ps(w2.add(k + 8)), h1, a[5]);
        a[6] = _mm256_fmadd_ps(_mm256_loadu_ps(w3.add(k)), h0, a[6]);
        a[7] = _mm256_fmadd_ps(_mm256_loadu_ps(w3.add(k + 8)), h1, a[7]);
        k += 16;
    }
    if k + 8 <= n {
        let h0 = _mm256_loadu_ps(h.add(k));
        a[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w0.add(k)), h0, a[0]);
        a[2] = _mm256_fmadd_ps(_mm256_loadu_ps(w1.add(k)), h0, a[2]);
        a[4] = _mm256_fmadd_ps(_mm256_loadu_ps(w2.add(k)), h0, a[4]);
        a[6] = _mm256_fmadd_ps(_mm256_loadu_ps(w3.add(k)), h0, a[6]);
        k += 8;
    }
    let hsum = |v: __m256| -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    };
    let mut out = [hsum(_mm256_add_ps(a[0], a[1])), hsum(_mm256_add_ps(a[2], a[3])), hsum(_mm256_add_ps(a[4], a[5])), hsum(_mm256_add_ps(a[6], a[7]))];
    while k < n {
        let hk = *h.add(k);
        out[0] += *w0.add(k) * hk;
        out[1] += *w1.add(k) * hk;
        out[2] += *w2.add(k) * hk;
        out[3] += *w3.add(k) * hk;
        k += 1;
    }
    out
}
