//! CPU attention: the reference, and fast.
//!
//! Long sequences (S > 32): rayon over (sequence·head, block of 128 query rows). Per task:
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
    } else {
        long(q, k, v, l, scale, o);
    }
    out
}

fn long(q: &[f32], k: &[f32], v: &[f32], l: &Layout, scale: f32, o: OutPtr) {
    let s = l.seq;
    let nblk = s.div_ceil(QBLOCK);
    (0..l.units() * nblk).into_par_iter().for_each_init(
        || vec![0f32; QBLOCK * s],
        |sc, t| {
            #[allow(clippy::redundant_locals)] // capture the Send wrapper, not its raw-pointer field
            let o = o;
            let (u, blk) = (t / nblk, t % nblk);
            let (b, h) = (u / l.heads, u % l.heads);
            let i0 = blk * QBLOCK;
            let rows = QBLOCK.min(s - i0);
            let base = b * l.in_batch + h * l.in_head;
            let qp = q[l.q_off + base + i0 * l.in_row..].as_ptr();
            let kp = k[l.k_off + base..].as_ptr();
            let vp = v[l.v_off + base..].as_ptr();
            let (in_row, out_row) = (l.in_row as isize, l.out_row as isize);
            // SAFETY: `attention` checked that every (sequence, head, row, d) index of the layout is
            // inside q, k, v and out; sc holds rows × s floats; tasks write disjoint output rows.
            unsafe {
                // scores (rows × s, row-major) = scale · Q_blk (rows × dh) · Kᵀ (dh × s).
                gemm::gemm(rows, s, l.dh, sc.as_mut_ptr(), 1, s as isize, false, qp, 1, in_row, kp, in_row, 1, 0.0f32, scale, false, false, false, Parallelism::None);
            }
            let mut inv = [0f32; QBLOCK];
            for (r, row) in sc[..rows * s].chunks_exact_mut(s).enumerate() {
                inv[r] = 1.0 / softmax_unnormalised(row);
            }
            let op = unsafe { o.0.add(b * l.out_batch + i0 * l.out_row + h * l.out_head) };
            unsafe {
                // O_blk (rows × dh, row stride out_row) = P (rows × s) · V (s × dh, row stride in_row).
                gemm::gemm(rows, l.dh, s, op, 1, out_row, false, sc.as_ptr(), 1, s as isize, vp, 1, in_row, 0.0f32, 1.0f32, false, false, false, Parallelism::None);
                for (r, &iv) in inv.iter().enumerate().take(rows) {
                    let row = std::slice::from_raw_parts_mut(op.offset(r as isize * out_row), l.dh);
                    row.iter_mut().for_each(|x| *x *= iv);
                }
            }
        },
    );
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
    let (b, h) = (u / l.heads, u % l.heads);
    let base = b * l.in_batch + h * l.in_head;
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
        let orow = unsafe { std::slice::from_raw_parts_mut(o.0.add(b * l.out_batch + i * l.out_row + h * l.out_head), l.dh) };
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
dispatch!(softmax_generic, softmax_avx512, softmax_avx2, fn(x: &mut [f32]) -> f32);

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
