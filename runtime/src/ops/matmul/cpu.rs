//! CPU matmul: the `gemm` crate for the product, then the bias + GELU epilogue with rayon over rows.
//!
//! Why `gemm` (sarah-quinones/gemm): pure Rust (no system BLAS to find, link or ship), runtime SIMD
//! dispatch (AVX2/FMA, AVX-512, NEON chosen when the binary runs, so one build is fast everywhere),
//! BLAS-class packed micro-kernels with cache blocking, and rayon parallelism. Its strided interface
//! (separate row and column strides for every operand) expresses `trans_a` / `trans_b` without any
//! copy: a transposed operand is just the same buffer read with swapped strides.
//!
//! f16 inputs are converted to f32 first and multiplied in f32 (exact products, f32 accumulation — the
//! same numbers the tensor-core kernel produces up to summation order); gemm's own f16 path would
//! round its output to f16, and the op returns f32.

use gemm::Parallelism;
use rayon::prelude::*;

use super::{Activation, Geometry};

/// Below this many multiply-adds per matrix a batched product runs one matrix per rayon task
/// (gemm single-threaded); above it gemm parallelises each matrix itself.
const SMALL_GEMM: usize = 48 * 48 * 48;

/// `out[b] = op(a[b]) · op(b[b])` for every batch, then the epilogue. `a`, `b` are f32, row-major
/// as stored; `g` says the shapes, transposes and batch strides.
pub(super) fn matmul(a: &[f32], b: &[f32], bias: Option<&[f32]>, act: Activation, g: &Geometry) -> Vec<f32> {
    let (m, n, k) = (g.m, g.n, g.k);
    let len = g.batch * m * n;
    if m * n == 0 {
        return vec![0f32; len];
    }
    // The output is not zeroed first: gemm writes every element (read_dst = false), and a memset of
    // a reused heap block cost ~1% of an AST-SED training step.
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let base = OutPtr(out.as_mut_ptr());
    let run = |bi: usize, par: Parallelism| {
        let ab = &a[bi * g.a_batch_stride..];
        let bb = &b[bi * g.b_batch_stride..];
        // SAFETY: matrix bi occupies out[bi·m·n .. (bi + 1)·m·n], inside the capacity; batches are
        // disjoint, so concurrent tasks write disjoint ranges.
        unsafe { gemm_one(ab, bb, base.at(bi * m * n), g, par) };
    };
    if g.batch > 1 && m * n * k <= SMALL_GEMM {
        (0..g.batch).into_par_iter().for_each(|bi| run(bi, Parallelism::None));
    } else {
        for bi in 0..g.batch {
            run(bi, Parallelism::Rayon(0));
        }
    }
    // SAFETY: every one of the len elements was written above.
    unsafe { out.set_len(len) };
    if bias.is_some() || act != Activation::None {
        epilogue(&mut out, n, bias, act);
    }
    out
}

/// The output buffer shared by the batch tasks (each writes its own matrix).
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint ranges (see `matmul`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `offset` must stay inside the allocation.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// One product C(m×n) = op(A)·op(B), C row-major. Strides are in elements: A stored (m,k) row-major
/// has row stride k and column stride 1; stored (k,m) (trans_a) it has row stride 1 and column
/// stride m. Likewise for B.
///
/// # Safety
/// `c` must be valid for writing m·n f32 (it need not be initialised).
unsafe fn gemm_one(a: &[f32], b: &[f32], c: *mut f32, g: &Geometry, par: Parallelism) {
    let (m, n, k) = (g.m, g.n, g.k);
    if k == 0 {
        // SAFETY: the caller guarantees m·n writable elements.
        unsafe { std::ptr::write_bytes(c, 0, m * n) };
        return;
    }
    let (a_rs, a_cs) = if g.trans_a { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if g.trans_b { (1, k as isize) } else { (n as isize, 1) };
    debug_assert!(a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the slices hold at least m·k and k·n elements (checked by the caller's shape logic and
    // asserted above), `c` m·n (the caller's contract); every index gemm forms from these strides
    // stays inside them; `c` is not aliased. read_dst = false, so the uninitialised contents of `c`
    // are never read.
    unsafe {
        gemm::gemm(m, n, k, c, 1, n as isize, false, a.as_ptr(), a_cs, a_rs, b.as_ptr(), b_cs, b_rs, 0.0f32, 1.0f32, false, false, false, par);
    }
}

/// `out[r, j] = act(out[r, j] + bias[j])`, rayon over blocks of rows.
fn epilogue(out: &mut [f32], n: usize, bias: Option<&[f32]>, act: Activation) {
    let rows_per_task = (16384 / n.max(1)).max(1);
    out.par_chunks_mut(rows_per_task * n).for_each(|blk| {
        for row in blk.chunks_mut(n) {
            if let Some(bias) = bias {
                for (y, &bv) in row.iter_mut().zip(bias) {
                    *y += bv;
                }
            }
            if act == Activation::Gelu {
                gelu_slice(row);
            }
        }
    });
}

/// Exact GELU over a slice, vectorised (the epilogue's hot loop: 3.7M values per AST block). Numerical
/// Recipes' `erfcc` Chebyshev fit of erfc (fractional error < 1.2e-7), evaluated in f32 with a branch-free polynomial exp
/// (`ops::attention`'s `exp_poly`), for x ≥ 0 as 0.5·x·(2 − erfc(x/√2)) and for x < 0 as
/// 0.5·x·erfc(|x|/√2) (no cancellation). Compiled for AVX-512 / AVX2+FMA when present (runtime
/// detection). Within 4e-7·(1 + |x|) of the reference `UnaryOp::Gelu` (tested).
pub(crate) fn gelu_slice(y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { gelu_slice_avx512(y) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { gelu_slice_avx2(y) };
        }
    }
    gelu_slice_generic(y)
}

/// [`gelu_f32`] on 16 lanes with intrinsics (the auto-vectorised generic loop ran at ~1.5 ns per
/// value on the dev box, 5.5 ms of a 34 ms AST fc1 layer): the reciprocal as one `vdivps`, the erfc
/// fit by Horner, `exp_avx512` (vscalefps), the sign select as a mask. Masked tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gelu_slice_avx512(y: &mut [f32]) {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps;
    let g = |x: __m512| -> __m512 {
        let z = _mm512_abs_ps(_mm512_mul_ps(x, c(std::f32::consts::FRAC_1_SQRT_2)));
        let t = _mm512_div_ps(c(1.0), _mm512_fmadd_ps(c(0.5), z, c(1.0)));
        let mut q = c(ERFC_FIT[0]);
        for &k in &ERFC_FIT[1..] {
            q = _mm512_fmadd_ps(q, t, c(k));
        }
        // −z² − 1.2655122 + t·q
        let arg = _mm512_fmadd_ps(t, q, _mm512_fnmadd_ps(z, z, c(-1.265_512_2)));
        let erfc = _mm512_mul_ps(t, crate::ops::attention::exp_avx512(arg));
        let pos = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
        let one_plus_erf = _mm512_mask_sub_ps(erfc, pos, c(2.0), erfc);
        _mm512_mul_ps(_mm512_mul_ps(c(0.5), x), one_plus_erf)
    };
    let n = y.len();
    let p = y.as_mut_ptr();
    let full = n / 16 * 16;
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 ≤ n.
        unsafe { _mm512_storeu_ps(p.add(i), g(_mm512_loadu_ps(p.add(i)))) };
        i += 16;
    }
    if full < n {
        let m: __mmask16 = ((1u32 << (n - full)) - 1) as __mmask16;
        // SAFETY: the mask covers exactly the n − full remaining elements.
        unsafe { _mm512_mask_storeu_ps(p.add(full), m, g(_mm512_maskz_loadu_ps(m, p.add(full)))) };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_slice_avx2(y: &mut [f32]) {
    gelu_slice_generic(y)
}

#[inline(always)]
fn gelu_slice_generic(y: &mut [f32]) {
    for v in y.iter_mut() {
        *v = gelu_f32(*v);
    }
}

/// The erfc fit's polynomial in t, highest power first: erfc(z) ≈ t·exp(−z² − 1.2655122 + t·q(t)).
#[allow(clippy::excessive_precision)] // the fit's published coefficients
const ERFC_FIT: [f32; 9] = [0.170_872_77, -0.822_152_2, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7];

/// 1 + erf(x/√2) = 2Φ(x) from the erfc fit (branch-free, so loops over it vectorise).
#[inline(always)]
pub(crate) fn one_plus_erf(x: f32) -> f32 {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let q = ERFC_FIT[1..].iter().fold(ERFC_FIT[0], |q, &k| k + t * q);
    let p = -z * z - 1.265_512_2 + t * q;
    let erfc = t * crate::ops::attention::exp_poly(p);
    if x >= 0.0 {
        2.0 - erfc
    } else {
        erfc
    }
}

#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    0.5 * x * one_plus_erf(x)
}

#[cfg(test)]
mod gelu_tests {
    #[test]
    fn vectorised_gelu_matches_the_reference_gelu() {
        let mut xs: Vec<f32> = (0..20001).map(|i| (i as f32 - 10000.0) * 1e-3).collect();
        xs.extend([-30.0, -9.0, 12.0, 1e6, -1e6, 0.0]);
        let want: Vec<f32> = xs.iter().map(|&x| crate::ops::unary::UnaryOp::Gelu.apply(x)).collect();
        // Every build this CPU can run: the dispatcher's choice, the generic loop, AVX2 and the
        // AVX-512 intrinsics (each on the whole slice: 20007 values, so a masked tail too).
        type Build = (&'static str, fn(&mut [f32]));
        let mut builds: Vec<Build> = vec![("dispatch", super::gelu_slice), ("generic", super::gelu_slice_generic)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                builds.push(("avx2", |y| unsafe { super::gelu_slice_avx2(y) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                builds.push(("avx512", |y| unsafe { super::gelu_slice_avx512(y) }));
            }
        }
        for (name, f) in builds {
            let mut got = xs.clone();
            f(&mut got);
            for ((&x, &g), &w) in xs.iter().zip(&got).zip(&want) {
                assert!((g - w).abs() <= 4e-7 * (1.0 + x.abs()), "{name} gelu({x}): {g} vs {w}");
            }
            let mut nan = [f32::NAN; 3];
            f(&mut nan);
            assert!(nan.iter().all(|v| v.is_nan()), "{name}: gelu(NaN) must be NaN");
            let mut inf = [f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN];
            f(&mut inf);
            assert_eq!(inf[0], f32::INFINITY, "{name}: gelu(+inf)");
            assert!(inf[1].is_nan() || inf[1] == 0.0, "{name}: gelu(-inf) = {}", inf[1]);
            assert_eq!(inf[2], f32::MAX, "{name}: gelu(f32::MAX)");
            assert_eq!(inf[3], 0.0, "{name}: gelu(f32::MIN) = {}", inf[3]);
        }
    }
}
