//! CPU reference of the unary ops: rayon over chunks, the op matched once per call so each loop is
//! monomorphic (and vectorises where the math allows).

use half::f16;
use rayon::prelude::*;

use super::UnaryOp;
use crate::{Result, Tensor};

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

fn map(x: &[f32], shape: &[usize], f: impl Fn(f32) -> f32 + Sync) -> Result<Tensor> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| {
        for (y, &v) in o.iter_mut().zip(i) {
            *y = f(v);
        }
    });
    Tensor::from_vec(out, shape)
}

pub(super) fn unary(op: UnaryOp, x: &[f32], shape: &[usize]) -> Result<Tensor> {
    if op == UnaryOp::Gelu {
        // The vectorised erfc fit of the fused GELU epilogue (within 4e-7·(1 + |x|) of `apply`, whose
        // libm-style erfc does not vectorise: ~1.5 ns per value).
        let mut out = x.to_vec();
        out.par_chunks_mut(CHUNK).for_each(crate::ops::matmul::cpu::gelu_slice);
        return Tensor::from_vec(out, shape);
    }
    macro_rules! mono {
        ($($pat:pat),*) => {
            match op {
                $($pat => map(x, shape, move |v| op.apply(v)),)*
            }
        };
    }
    // One arm per variant: inside each closure `op` is a known variant and `apply` folds to it.
    mono!(
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(_),
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Affine { .. }
    )
}

pub(super) fn to_f16(x: &[f32], shape: &[usize]) -> Result<Tensor> {
    let mut out = vec![f16::ZERO; x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| {
        for (y, &v) in o.iter_mut().zip(i) {
            *y = f16::from_f32(v);
        }
    });
    Tensor::from_vec_f16(out, shape)
}

pub(super) fn to_f32(x: &[f16], shape: &[usize]) -> Result<Tensor> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| {
        for (y, &v) in o.iter_mut().zip(i) {
            *y = v.to_f32();
        }
    });
    Tensor::from_vec(out, shape)
}

// ------------------------------------------------------------------------------------------------
// erfc in f32: FreeBSD's s_erff.c (via musl / the `libm` crate, MIT; Copyright (C) 1993 by Sun
// Microsystems, Inc. — "Permission to use, copy, modify, and distribute this software is freely
// granted, provided that this notice is preserved."). Max error ~1 ulp; accurate in relative terms
// for large |x|, which GELU needs on its negative tail.

const ERX: f32 = 8.4506291151e-01;
const PP0: f32 = 1.2837916613e-01;
const PP1: f32 = -3.2504209876e-01;
const PP2: f32 = -2.8481749818e-02;
const PP3: f32 = -5.7702702470e-03;
const PP4: f32 = -2.3763017452e-05;
const QQ1: f32 = 3.9791721106e-01;
const QQ2: f32 = 6.5022252500e-02;
const QQ3: f32 = 5.0813062117e-03;
const QQ4: f32 = 1.3249473704e-04;
const QQ5: f32 = -3.9602282413e-06;
const PA0: f32 = -2.3621185683e-03;
const PA1: f32 = 4.1485610604e-01;
const PA2: f32 = -3.7220788002e-01;
const PA3: f32 = 3.1834661961e-01;
const PA4: f32 = -1.1089469492e-01;
const PA5: f32 = 3.5478305072e-02;
const PA6: f32 = -2.1663755178e-03;
const QA1: f32 = 1.0642088205e-01;
const QA2: f32 = 5.4039794207e-01;
const QA3: f32 = 7.1828655899e-02;
const QA4: f32 = 1.2617121637e-01;
const QA5: f32 = 1.3637083583e-02;
const QA6: f32 = 1.1984500103e-02;
const RA0: f32 = -9.8649440333e-03;
const RA1: f32 = -6.9385856390e-01;
const RA2: f32 = -1.0558626175e+01;
const RA3: f32 = -6.2375331879e+01;
const RA4: f32 = -1.6239666748e+02;
const RA5: f32 = -1.8460508728e+02;
const RA6: f32 = -8.1287437439e+01;
const RA7: f32 = -9.8143291473e+00;
const SA1: f32 = 1.9651271820e+01;
const SA2: f32 = 1.3765776062e+02;
const SA3: f32 = 4.3456588745e+02;
const SA4: f32 = 6.4538726807e+02;
const SA5: f32 = 4.2900814819e+02;
const SA6: f32 = 1.0863500214e+02;
const SA7: f32 = 6.5702495575e+00;
const SA8: f32 = -6.0424413532e-02;
const RB0: f32 = -9.8649431020e-03;
const RB1: f32 = -7.9928326607e-01;
const RB2: f32 = -1.7757955551e+01;
const RB3: f32 = -1.6063638306e+02;
const RB4: f32 = -6.3756646729e+02;
const RB5: f32 = -1.0250950928e+03;
const RB6: f32 = -4.8351919556e+02;
const SB1: f32 = 3.0338060379e+01;
const SB2: f32 = 3.2579251099e+02;
const SB3: f32 = 1.5367296143e+03;
const SB4: f32 = 3.1998581543e+03;
const SB5: f32 = 2.5530502930e+03;
const SB6: f32 = 4.7452853394e+02;
const SB7: f32 = -2.2440952301e+01;

fn erfc2(ix: u32, x: f32) -> f32 {
    if ix < 0x3fa00000 {
        // |x| < 1.25
        let s = x.abs() - 1.0;
        let p = PA0 + s * (PA1 + s * (PA2 + s * (PA3 + s * (PA4 + s * (PA5 + s * PA6)))));
        let q = 1.0 + s * (QA1 + s * (QA2 + s * (QA3 + s * (QA4 + s * (QA5 + s * QA6)))));
        return 1.0 - ERX - p / q;
    }
    let x = x.abs();
    let s = 1.0 / (x * x);
    let (r, big_s) = if ix < 0x4036db6d {
        (
            RA0 + s * (RA1 + s * (RA2 + s * (RA3 + s * (RA4 + s * (RA5 + s * (RA6 + s * RA7)))))),
            1.0 + s * (SA1 + s * (SA2 + s * (SA3 + s * (SA4 + s * (SA5 + s * (SA6 + s * (SA7 + s * SA8))))))),
        )
    } else {
        (
            RB0 + s * (RB1 + s * (RB2 + s * (RB3 + s * (RB4 + s * (RB5 + s * RB6))))),
            1.0 + s * (SB1 + s * (SB2 + s * (SB3 + s * (SB4 + s * (SB5 + s * (SB6 + s * SB7)))))),
        )
    };
    let z = f32::from_bits(x.to_bits() & 0xffffe000);
    (-z * z - 0.5625).exp() * ((z - x) * (z + x) + r / big_s).exp() / x
}

/// Complementary error function, f32.
pub fn erfcf(x: f32) -> f32 {
    let ix = x.to_bits();
    let sign = ix >> 31 != 0;
    let ix = ix & 0x7fffffff;
    if ix >= 0x7f800000 {
        // erfc(nan) = nan, erfc(±inf) = 0, 2
        return 2.0 * (sign as u32 as f32) + 1.0 / x;
    }
    if ix < 0x3f580000 {
        // |x| < 0.84375
        if ix < 0x23800000 {
            return 1.0 - x;
        }
        let z = x * x;
        let r = PP0 + z * (PP1 + z * (PP2 + z * (PP3 + z * PP4)));
        let s = 1.0 + z * (QQ1 + z * (QQ2 + z * (QQ3 + z * (QQ4 + z * QQ5))));
        let y = r / s;
        if sign || ix < 0x3e800000 {
            return 1.0 - (x + x * y);
        }
        return 0.5 - (x - 0.5 + x * y);
    }
    if ix < 0x41e00000 {
        // |x| < 28
        return if sign { 2.0 - erfc2(ix, x) } else { erfc2(ix, x) };
    }
    if sign {
        2.0
    } else {
        0.0
    }
}
