//! CPU attention: the reference, and fast.
//!
//! Long sequences (S > 32), Dh a multiple of 16 on AVX-512 CPUs: the register-tiled kernels of
//! [`tiles`] (Kᵀ and V laid out once per head, no per-block packing). Otherwise, through `gemm`:
//! rayon over (sequence·head, block of 128 query rows). Per task:
//! 1. `scores = scale · Q_blk · Kᵀ` (128 × S) — one `gemm` call reading Q and K in place through
//!    strides (Kᵀ is K with swapped strides; no copies, no permutes);
//! 2. per row `p = exp(s − max)` and `l = Σ p` — a vectorised pass with a polynomial exp (Cephes
//!    `expf` coefficients, ≤ 2 ulp on the reduced range), compiled for AVX-512 / AVX2+FMA when the
//!    CPU has them (runtime detection), plain SSE2 otherwise;
//! 3. `O_blk = P · V` — one `gemm` call writing straight into the strided output rows, then each
//!    row is divided by its `l` (normalising the 128 × Dh output instead of the 128 × S
//!    probabilities).
//!

//! The 128 × S scores stay in a per-thread buffer (620 KB for S = 1214: L2-resident; 64-row blocks
//! were ~15% slower, 256 and whole-head blocks no faster). Work per task is
//! 2 · 128·S·Dh multiply-adds, so gemm's packing overhead is small.
//!
//! Short sequences (S ≤ 32, AST-SED's 13-token frequency attention): gemm's packing would cost more
//! than the products, so each (sequence, head) is done directly: 16-lane dot products for the scores,
//! the same softmax pass, and 16-lane AXPYs for P·V. Rayon over groups of (sequence, head).

use gemm::Parallelism;
use rayon::prelude::*;

use super::Layout;

/// Query rows per task of the long path.
const QBLOCK: usize = 128;
/// Longest sequence of the direct (short) path.
const SHORT: usize = 32;

/// The output buffer shared by tasks that write disjoint (row, head) ranges of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint element ranges (distinct (sequence, head, query row) triples).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

pub(super) fn attention(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; l.out_len()];
    if out.is_empty() || l.dh == 0 {
        return out;
    }
    // Bounds of every element the strided views touch (checked once here; the unsafe code below
    // relies on it).
    let last_in = (l.batch - 1) * l.in_batch + (l.seq - 1) * l.in_row + (l.heads - 1) * l.in_head + l.dh;
    assert!(q.len() >= l.q_off + last_in && k.len() >= l.k_off + last_in && v.len() >= l.v_off + last_in, "attention: layout exceeds the inputs");
    let last_out = (l.batch - 1) * l.out_batch + (l.seq - 1) * l.out_row + (l.heads - 1) * l.out_head + l.dh;
    assert!(out.len() >= last_out, "attention: layout exceeds the output");
    let o = OutPtr(out.as_mut_ptr());
    if l.seq <= SHORT {
        short(q, k, v, l, scale, o);
    } else if tiles::usable(l.dh) {
        tiles::long(q, k, v, l, scale, o);
    } else {
        long(q, k, v, l, scale, o);
    }
    out
}

/// Task `t` of the long paths: (sequence, head) unit `u`, query rows i0..i0 + rows, and the unit's
/// offsets `base` in the inputs and `obase` in the output ([`Layout::unit_bases`]).
struct QBlock {
    u: usize,
    i0: usize,
    rows: usize,
    base: usize,
    obase: usize,
}

impl QBlock {
    fn of(l: &Layout, t: usize, nblk: usize) -> QBlock {
        let (u, blk) = (t / nblk, t % nblk);
        let i0 = blk * QBLOCK;
        let (base, obase) = l.unit_bases(u);
        QBlock { u, i0, rows: QBLOCK.min(l.seq - i0), base, obase }
    }
}

/// The long path through `gemm` (any Dh, any CPU).
fn long(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32, o: OutPtr) {
    let s = l.seq;
    let nblk = s.div_ceil(QBLOCK);
    (0..l.units() * nblk).into_par_iter().for_each_init(
        || vec![0f32; QBLOCK * s],
        |sc, t| {
            #[allow(clippy::redundant_locals)] // capture the Send wrapper, not its raw-pointer field
            let o = o;
            let QBlock { i0, rows, base, obase, .. } = QBlock::of(l, t, nblk);
            let qp = q[l.q_off + base + i0 * l.in_row..].as_ptr();
            let kp = k[l.k_off + base..].as_ptr();
            let vp = v[l.v_off + base..].as_ptr();
            let (in_row, out_row) = (l.in_row as isize, l.out_row as isize);
            // SAFETY: `attention` checked that every (sequence, head, row, d) index of the layout is
            // inside q, k, v and out; sc holds rows × s floats; tasks write disjoint output rows.
            unsafe {
                // scores (rows × s, row-major) = scale · Q_blk (rows × dh) · Kᵀ (dh × s).
                gemm::gemm(
                    rows,
                    s,
                    l.dh,
                    sc.as_mut_ptr(),
                    1,
                    s as isize,
                    false,
                    qp,
                    1,
                    in_row,
                    kp,
                    in_row,
                    1,
                    0.0f32,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            let mut inv = [0f32; QBLOCK];
            for (r, row) in sc[..rows * s].chunks_exact_mut(s).enumerate() {
                inv[r] = 1.0 / softmax_unnormalised(row);
            }
            let op = unsafe { o.0.add(obase + i0 * l.out_row) };
            unsafe {
                // O_blk (rows × dh, row stride out_row) = P (rows × s) · V (s × dh, row stride in_row).
                gemm::gemm(
                    rows,
                    l.dh,
                    s,
                    op,
                    1,
                    out_row,
                    false,
                    sc.as_ptr(),
                    1,
                    s as isize,
                    vp,
                    1,
                    in_row,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                for (r, &iv) in inv.iter().enumerate().take(rows) {
                    let row = std::slice::from_raw_parts_mut(op.offset(r as isize * out_row), l.dh);
                    row.iter_mut().for_each(|x| *x *= iv);
                }
            }
        },
    );
}

/// The long path with register-tiled AVX-512 micro-kernels (Dh a multiple of 16, AVX-512F CPUs).
///
/// `gemm` packs its operands on every call: per 128-row query block that is Kᵀ (S × Dh) for the
/// scores, then P (128 × S) and V for P·V — Kᵀ and V repacked for each of a head's ⌈S/128⌉ blocks.
/// Here each (sequence, head) is laid out once instead — Kᵀ as ⌈S/32⌉ contiguous (Dh × 32) panels
/// (padded keys zero), V as a contiguous (S × Dh) block — and two fixed-shape kernels run on them
/// with no further copies:
/// - scores: 8 query rows × 32 keys in 16 zmm accumulators, Dh steps of 2 loads + 8 broadcasts;
/// - P·V: 4 rows × 64 columns in 16 accumulators, S steps of 4 loads + 4 broadcasts; each row is
///   divided by its softmax sum as it is stored.
///
/// Measured (`aural bench --op attention`, case ast_12x1214x64: 12 heads × 1214 tokens × Dh 64, 2
/// threads, dev box, AVX-512 Zen 4): `gemm` path 30.7 ms (147 GFLOP/s) → tiles 27.2 ms → with the
/// intrinsics softmax below 24.8–26.7 ms (169–183 GFLOP/s). Both tile kernels run at ~205 GFLOP/s,
/// ~89% of the box's measured 231 GFLOP/s FMA peak; the softmax exp is the rest. Same numbers as the
/// `gemm` path up to summation order (tested against it and a naive f64 loop).
mod tiles {
    use rayon::prelude::*;

    use super::{softmax_unnormalised, Layout, OutPtr, QBlock, QBLOCK};

    /// Keys per score tile and query rows per score / P·V tile.
    const NK: usize = 32;
    const MS: usize = 8;
    const MO: usize = 4;
    /// Floats of laid-out Kᵀ/V kept at once (16 MiB: 26 AST heads). Unit tests use a small value so
    /// that their shapes run in several groups.
    #[cfg(not(test))]
    const PACK_FLOATS: usize = 4 << 20;
    #[cfg(test)]
    const PACK_FLOATS: usize = 80_000;

    pub(super) fn usable(dh: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            dh.is_multiple_of(16) && dh > 0 && std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = dh;
            false
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn long(_: &[f32], _: &[f32], _: &[f32], _: &Layout, _: f32, _: OutPtr) {
        unreachable!("tiles::usable is false off x86_64")
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) fn long(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32, o: OutPtr) {
        let (s, dh) = (l.seq, l.dh);
        let sp = s.next_multiple_of(NK);
        let unit_len = dh * sp + s * dh;
        // Per (sequence, head): Kᵀ as sp/32 panels of (dh × 32) — key j, dim d at
        // (j/32)·32·dh + d·32 + j%32, zero for padded keys — then V (s × dh). Laid out for at most
        // `group` units at a time, so a large batch does not double its K/V memory.
        let units = l.units();
        let group = (PACK_FLOATS / unit_len).clamp(1, units);
        let mut packed = vec![0f32; group * unit_len];
        let nblk = s.div_ceil(QBLOCK);
        for g0 in (0..units).step_by(group) {
            let gn = group.min(units - g0);
            packed[..gn * unit_len].par_chunks_mut(unit_len).enumerate().for_each(|(gi, buf)| {
                let u = g0 + gi;
                let (base, _) = l.unit_bases(u);
                let (kt, vp) = buf.split_at_mut(dh * sp);
                for j in 0..s {
                    let kr = &k[l.k_off + base + j * l.in_row..][..dh];
                    let panel = &mut kt[(j / NK) * NK * dh..];
                    for (d, &x) in kr.iter().enumerate() {
                        panel[d * NK + j % NK] = x;
                    }
                    vp[j * dh..(j + 1) * dh].copy_from_slice(&v[l.v_off + base + j * l.in_row..][..dh]);
                }
            });
            let packed = &packed;
            blocks(q, l, scale, o, g0 * nblk..(g0 + gn) * nblk, |u| packed[(u - g0) * unit_len..(u - g0 + 1) * unit_len].split_at(dh * sp));
        }
    }

    /// Query blocks `tasks` (QBlock numbering) of the units whose Kᵀ panels and V `kv(u)` returns.
    #[cfg(target_arch = "x86_64")]
    fn blocks<'a>(q: &[f32], l: &Layout, scale: f32, o: OutPtr, tasks: std::ops::Range<usize>, kv: impl Fn(usize) -> (&'a [f32], &'a [f32]) + Sync) {
        let (s, dh) = (l.seq, l.dh);
        let sp = s.next_multiple_of(NK);
        let nblk = s.div_ceil(QBLOCK);
        tasks.into_par_iter().for_each_init(
            || (vec![0f32; QBLOCK * sp], vec![0f32; QBLOCK * dh]),
            |(sc, qp), t| {
                #[allow(clippy::redundant_locals)] // capture the Send wrapper, not its raw-pointer field
                let o = o;
                let QBlock { u, i0, rows, base, obase } = QBlock::of(l, t, nblk);
                let (kt, vp) = kv(u);
                // Q rows of the block, contiguous; rows past the sequence are zero.
                let rs = rows.next_multiple_of(MS);
                for r in 0..rs {
                    let dst = &mut qp[r * dh..(r + 1) * dh];
                    if r < rows {
                        dst.copy_from_slice(&q[l.q_off + base + (i0 + r) * l.in_row..][..dh]);
                    } else {
                        dst.fill(0.0);
                    }
                }
                let mut inv = [0f32; QBLOCK];
                // SAFETY: qp holds rs·dh floats, kt dh·sp, sc QBLOCK·sp ≥ rs·sp (rs ≤ QBLOCK since
                // QBLOCK is a multiple of MS); the CPU has AVX-512F (`usable`).
                unsafe {
                    for r0 in (0..rs).step_by(MS) {
                        for j0 in (0..sp).step_by(NK) {
                            score_tile(qp.as_ptr().add(r0 * dh), dh, kt.as_ptr().add(j0 * dh), sc.as_mut_ptr().add(r0 * sp + j0), sp, scale);
                        }
                    }
                }
                for r in 0..rows {
                    inv[r] = 1.0 / softmax_unnormalised(&mut sc[r * sp..r * sp + s]);
                }
                let op = unsafe { o.0.add(obase + i0 * l.out_row) };
                // SAFETY: sc rows r0..r0+MO exist (QBLOCK is a multiple of MO) and hold s valid
                // columns; vp holds s·dh floats; `attention` checked the output layout and this task
                // owns output rows i0..i0+rows of head h; only valid rows are stored.
                unsafe {
                    for r0 in (0..rows).step_by(MO) {
                        let n = MO.min(rows - r0);
                        let orow = op.offset(r0 as isize * l.out_row as isize);
                        let p = sc.as_ptr().add(r0 * sp);
                        let iv = &inv[r0..r0 + MO];
                        for c0 in (0..dh).step_by(64) {
                            let (vc, oc) = (vp.as_ptr().add(c0), orow.add(c0));
                            match (dh - c0).min(64) / 16 {
                                4 => pv_tile::<4>(p, sp, s, vc, dh, oc, l.out_row, iv, n),
                                3 => pv_tile::<3>(p, sp, s, vc, dh, oc, l.out_row, iv, n),
                                2 => pv_tile::<2>(p, sp, s, vc, dh, oc, l.out_row, iv, n),
                                _ => pv_tile::<1>(p, sp, s, vc, dh, oc, l.out_row, iv, n),
                            }
                        }
                    }
                }
            },
        );
    }

    /// `c[r·ldc + j] = scale · Σ_d a[r·dh + d] · kt[d·32 + j]` for r < MS, j < 32 (kt: one packed
    /// 32-key panel of Kᵀ).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn score_tile(a: *const f32, dh: usize, kt: *const f32, c: *mut f32, ldc: usize, scale: f32) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); 2]; MS];
        for d in 0..dh {
            let b0 = _mm512_loadu_ps(kt.add(d * NK));
            let b1 = _mm512_loadu_ps(kt.add(d * NK + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * dh + d));
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
        let sv = _mm512_set1_ps(scale);
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * ldc), _mm512_mul_ps(acc[0], sv));
            _mm512_storeu_ps(c.add(r * ldc + 16), _mm512_mul_ps(acc[1], sv));
        }
    }

    /// For r < n (≤ 4): `out[r·ldo + c] = inv[r] · Σ_{j<s} p[r·ldp + j] · v[j·ldv + c]`, c < 16·NV.
    /// Reads 4 rows of p whatever n is (the caller's buffer has them).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn pv_tile<const NV: usize>(p: *const f32, ldp: usize, s: usize, v: *const f32, ldv: usize, out: *mut f32, ldo: usize, inv: &[f32], n: usize) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); NV]; MO];
        for j in 0..s {
            let mut b = [_mm512_setzero_ps(); NV];
            for (c, b) in b.iter_mut().enumerate() {
                *b = _mm512_loadu_ps(v.add(j * ldv + 16 * c));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*p.add(r * ldp + j));
                for c in 0..NV {
                    acc[c] = _mm512_fmadd_ps(x, b[c], acc[c]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(n) {
            let iv = _mm512_set1_ps(inv[r]);
            for (c, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * ldo + 16 * c), _mm512_mul_ps(*a, iv));
            }
        }
    }
}

fn short(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32, o: OutPtr) {
    // Group (sequence, head) units so a task holds ≥ ~64k multiply-adds.
    let per_unit = 2 * l.seq * l.seq * l.dh;
    let group = (65536 / per_unit.max(1)).max(1);
    let units = l.units();
    (0..units.div_ceil(group)).into_par_iter().for_each(|g| {
        #[allow(clippy::redundant_locals)] // capture the Send wrapper, not its raw-pointer field
        let o = o;
        let mut p = [0f32; SHORT * SHORT];
        for u in g * group..((g + 1) * group).min(units) {
            short_unit(q, k, v, l, scale, o, u, &mut p);
        }
    });
}

/// One (sequence, head) of the short path.
#[allow(clippy::too_many_arguments)]
fn short_unit(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32, o: OutPtr, u: usize, p: &mut [f32; SHORT * SHORT]) {
    let s = l.seq;
    let (base, obase) = l.unit_bases(u);
    fn row<'a>(t: &'a [f32], l: &Layout, off: usize, base: usize, i: usize) -> &'a [f32] {
        let st = off + base + i * l.in_row;
        &t[st..st + l.dh]
    }
    for i in 0..s {
        let qi = row(q, l, l.q_off, base, i);
        for j in 0..s {
            p[i * s + j] = scale * dot(qi, row(k, l, l.k_off, base, j));
        }
        let sum = softmax_unnormalised(&mut p[i * s..(i + 1) * s]);
        let inv = 1.0 / sum;
        // SAFETY: `attention` checked the output layout; (u, i) rows are owned by this task.
        let orow = unsafe { std::slice::from_raw_parts_mut(o.0.add(obase + i * l.out_row), l.dh) };
        orow.iter_mut().for_each(|x| *x = 0.0);
        for j in 0..s {
            axpy(p[i * s + j] * inv, row(v, l, l.v_off, base, j), orow);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Vectorised kernels (runtime-dispatched to AVX-512 / AVX2+FMA builds of the same code).

macro_rules! dispatch {
    ($generic:ident, $avx512:ident, $avx2:ident, fn($($a:ident: $t:ty),*) -> $r:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $avx512($($a: $t),*) -> $r { $generic($($a),*) }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($a: $t),*) -> $r { $generic($($a),*) }
    };
}

/// Row softmax without the division: x ← exp(x − max x), returns Σ x.
pub(crate) fn softmax_unnormalised(x: &mut [f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the enabled features (checked just above).
            return unsafe { softmax_avx512(x) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { softmax_avx2(x) };
        }
    }
    softmax_generic(x)
}

/// exp of 16 lanes as [`exp_poly`] computes it — n = round(x·log₂e), Cody–Waite r = x − n·ln2, the
/// same degree-6 polynomial — but with 2ⁿ applied by `vscalefps` (no clamps or exponent-bit
/// arithmetic; underflow and −∞ go to 0, NaN stays NaN). Shared by the softmax below and the
/// matmul epilogue's GELU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients, kept as printed
pub(crate) fn exp_avx512(d: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // −∞ (and anything below −110) → exactly 0: without the clamp r = −∞ + ∞ would be NaN. The
    // constant is the first operand so that a NaN `d` passes through vmaxps unchanged.
    let d = _mm512_max_ps(_mm512_set1_ps(-110.0), d);
    let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(d, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(t, _mm512_set1_ps(0.693_359_4), d);
    let r = _mm512_fnmadd_ps(t, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.000_000_1e-1));
    let y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0));
    _mm512_scalef_ps(y, t)
}

/// AVX-512 row softmax (the hot pass of long attention: S² exps per head): the max pass, then
/// [`exp_avx512`]`(x − max)` and the sum. Masked loads/stores for the tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_avx512(x: &mut [f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = x.len();
    let ptr = x.as_mut_ptr();
    let full = n / 16 * 16;
    let tail: __mmask16 = ((1u32 << (n - full)) - 1) as __mmask16;
    let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i < full {
        mv = _mm512_max_ps(mv, _mm512_loadu_ps(ptr.add(i)));
        i += 16;
    }
    mv = _mm512_mask_max_ps(mv, tail, mv, _mm512_maskz_loadu_ps(tail, ptr.add(full)));
    let m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    let exp = |v: __m512| -> __m512 { exp_avx512(_mm512_sub_ps(v, m)) };
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    i = 0;
    while i + 32 <= full {
        let (e0, e1) = (exp(_mm512_loadu_ps(ptr.add(i))), exp(_mm512_loadu_ps(ptr.add(i + 16))));
        _mm512_storeu_ps(ptr.add(i), e0);
        _mm512_storeu_ps(ptr.add(i + 16), e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
        i += 32;
    }
    if i < full {
        let e = exp(_mm512_loadu_ps(ptr.add(i)));
        _mm512_storeu_ps(ptr.add(i), e);
        s0 = _mm512_add_ps(s0, e);
    }
    if tail != 0 {
        let e = exp(_mm512_maskz_loadu_ps(tail, ptr.add(full)));
        _mm512_mask_storeu_ps(ptr.add(full), tail, e);
        s1 = _mm512_mask_add_ps(s1, tail, s1, e);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_avx2(x: &mut [f32]) -> f32 {
    softmax_generic(x)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the enabled features.
            return unsafe { dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_generic(a, b)
}
dispatch!(dot_generic, dot_avx512, dot_avx2, fn(a: &[f32], b: &[f32]) -> f32);

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the enabled features.
            return unsafe { axpy_avx512(alpha, x, y) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { axpy_avx2(alpha, x, y) };
        }
    }
    axpy_generic(alpha, x, y)
}
dispatch!(axpy_generic, axpy_avx512, axpy_avx2, fn(alpha: f32, x: &[f32], y: &mut [f32]) -> ());

const LANES: usize = 16;

#[inline(always)]
fn softmax_generic(x: &mut [f32]) -> f32 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            mx[l] = if c[l] > mx[l] { c[l] } else { mx[l] };
        }
    }
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for v in mx {
        m = if v > m { v } else { m };
    }
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let e = exp_poly(c[l] - m);
            c[l] = e;
            acc[l] += e;
        }
    }
    let mut s = 0f32;
    for e in chunks.into_remainder() {
        *e = exp_poly(*e - m);
        s += *e;
    }
    for a in acc {
        s += a;
    }
    s
}

#[inline(always)]
fn dot_generic(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    for v in acc {
        s += v;
    }
    s
}

#[inline(always)]
fn axpy_generic(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += alpha * xv;
    }
}

/// exp(x) for x ≤ 0 (softmax arguments; also fine for x ≤ 88): Cody–Waite reduction x = n·ln2 + r,
/// |r| ≤ ln2/2, Cephes' degree-6 polynomial for e^r, 2^n built in the exponent bits. Branch-free, so it
/// vectorises. x < −87 gives ≈ 1.6e-38 instead of a denormal/0 (irrelevant next to the row's 1).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients, kept as printed
pub(crate) fn exp_poly(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer in the mantissa
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    let n_i = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    y * f32::from_bits(((n_i + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values uniform in [−scale, scale).
    fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        crate::testing::rand_vec(n, seed).into_iter().map(|x| x * scale).collect()
    }

    /// The AVX-512 tile path against the `gemm` path on packed-QKV layouts: sequences that are not
    /// multiples of 32 keys or 128 query rows, Dh 16…80 (80 = one 64-wide and one 16-wide column
    /// chunk), batch > 1, units laid out in several groups. Skipped on CPUs without AVX-512 (the gemm path is then the only one).
    #[test]
    fn tiles_match_the_gemm_path() {
        if !tiles::usable(16) {
            eprintln!("no AVX-512F: tile path not available here, nothing to compare");
            return;
        }
        // (3, 257, 4, 64): 12 units laid out 2 at a time (the test PACK_FLOATS), so 6 groups.
        for &(b, s, h, dh) in &[(1usize, 33usize, 1usize, 16usize), (2, 129, 3, 32), (1, 257, 2, 64), (2, 70, 1, 48), (1, 150, 2, 80), (3, 257, 4, 64)] {
            let w = h * dh;
            let qkv = vals(b * s * 3 * w, (s * 31 + dh) as u64, 2.0);
            let l = super::super::layout_qkv(&crate::Tensor::from_vec(qkv.clone(), &[b, s, 3 * w]).unwrap(), h).unwrap();
            let scale = 1.0 / (dh as f32).sqrt();
            let mut want = vec![0f32; l.out_len()];
            let mut got = vec![0f32; l.out_len()];
            long(&qkv, &qkv, &qkv, &l, scale, OutPtr(want.as_mut_ptr()));
            tiles::long(&qkv, &qkv, &qkv, &l, scale, OutPtr(got.as_mut_ptr()));
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
            assert!(worst < 2e-6, "b{b} s{s} h{h} dh{dh}: max |tiles − gemm| {worst}");
        }
    }

    /// Every softmax build (AVX-512 intrinsics, AVX2 and generic `exp_poly`) against f64, on lengths
    /// around the 16-lane and 32-wide steps and on scores spread far enough to underflow.
    #[test]
    fn softmax_builds_agree_with_f64() {
        // −∞ entries (a masked score) give exactly 0 in the AVX-512 build.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut x = vec![0.5f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
            // SAFETY: the CPU has AVX-512F.
            let sum = unsafe { softmax_avx512(&mut x) };
            assert_eq!((x[1], x[3]), (0.0, 0.0));
            assert!((sum as f64 - (1.0 + (-1.5f64).exp())).abs() < 1e-6, "{sum}");
        }
        for &n in &[1usize, 2, 15, 16, 17, 31, 32, 33, 47, 100, 1214] {
            for &spread in &[1.0f32, 40.0, 200.0] {
                let x = vals(n, n as u64 + spread as u64, spread);
                let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
                let want: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
                let want_sum: f64 = want.iter().sum();
                let mut builds: Vec<(&str, Vec<f32>, f32)> = Vec::new();
                let mut g = x.clone();
                let sg = softmax_generic(&mut g);
                builds.push(("generic", g, sg));
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        let mut a = x.clone();
                        // SAFETY: the CPU has AVX-512F.
                        let sa = unsafe { softmax_avx512(&mut a) };
                        builds.push(("avx512", a, sa));
                    }
                    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                        let mut a = x.clone();
                        // SAFETY: the CPU has AVX2 and FMA.
                        let sa = unsafe { softmax_avx2(&mut a) };
                        builds.push(("avx2", a, sa));
                    }
                }
                for (name, y, sum) in builds {
                    assert!(((sum as f64) - want_sum).abs() <= 1e-6 * want_sum, "{name} n{n} spread{spread}: sum {sum} vs {want_sum}");
                    for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                        // 2 ulp of the result plus the f32 rounding of the argument x − max.
                        let tol = w * (2.4e-7 + 1.2e-7 * (x[i] as f64 - m).abs()) + 1e-37;
                        assert!(((g as f64) - w).abs() <= tol, "{name} n{n} spread{spread} [{i}]: {g} vs {w}");
                    }
                }
            }
        }
    }
    #[test]
    fn exp_poly_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 10.0 {
            let want = (x as f64).exp();
            let got = exp_poly(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
    }
    #[test]
    fn softmax_row_sums() {
        let mut x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let want: f64 = x.iter().map(|&v| ((v - m) as f64).exp()).sum();
        let s = softmax_unnormalised(&mut x);
        assert!(((s as f64) - want).abs() < 1e-5 * want);
    }
}
