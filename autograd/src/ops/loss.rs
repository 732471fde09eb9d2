//! Losses (mean reduction, shape []).
//! - `bce(p, t)` = −mean(t·max(log p, −100) + (1 − t)·max(log(1 − p), −100)) on probabilities
//!   (`F.binary_cross_entropy`, whose log clamp at −100 keeps p = 0 or 1 finite). Backward as torch:
//!   ∂/∂p = g/N · (p − t) / max(p·(1 − p), 1e-12); ∂/∂t = g/N · (max(log(1 − p), −100) − max(log p, −100)).
//! - `mse(a, b)` = mean((a − b)²): ∂/∂a = g·2(a − b)/N, ∂/∂b = −∂/∂a.
//! - `neg_snr(e, t)` = −mean over the R rows (every axis but the last) of
//!   10·log10((Σt² + ε)/(Σ(t − e)² + ε)), ε = f32::EPSILON — torchmetrics' `signal_noise_ratio`
//!   (zero_mean=False), the DCASE 2025 task 4 baseline's separation loss. Plain SNR, not SI-SDR.
//!   ∂/∂e = g·20(e − t)/(R·ln10·(Σ(t − e)² + ε)) per row; the target gets no gradient.

use aural_runtime::ops::binary as rb;
use aural_runtime::ops::reduce as rr;
use aural_runtime::ops::unary as ru;
use aural_runtime::{Error, Result, Tensor};

use super::{scalar_of, scalar_tensor};
use crate::tape::record;
use crate::Var;

fn mean_all(t: &Tensor) -> Result<Tensor> {
    rr::mean(&t.reshape(&[t.numel()])?, 0, false)
}

fn same_shape(op: &'static str, a: &Var, b: &Var) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Msg(format!("{op}: input {:?} and target {:?} must have one shape", a.shape(), b.shape())));
    }
    Ok(())
}

/// Binary cross-entropy on probabilities, mean over every element.
pub fn bce(p: &Var, t: &Var) -> Result<Var> {
    same_shape("bce", p, t)?;
    let (pv, tv) = (p.value().clone(), t.value().clone());
    let dev = pv.device();
    let floor = scalar_tensor(-100.0, dev)?;
    let lp = rb::maximum(&ru::log(&pv)?, &floor)?;
    let l1p = rb::maximum(&ru::log(&ru::affine(&pv, -1.0, 1.0)?)?, &floor)?;
    // t·lp + (1 − t)·l1p = t·(lp − l1p) + l1p
    let term = rb::add(&rb::mul(&tv, &rb::sub(&lp, &l1p)?)?, &l1p)?;
    let loss = ru::neg(&mean_all(&term)?)?;
    let n = pv.numel() as f32;
    record("bce", &[p, t], loss, move |g, need| {
        let gs = scalar_of(g)? / n;
        let dp = if need[0] {
            let num = rb::sub(&pv, &tv)?;
            let den = rb::maximum(&rb::mul(&pv, &ru::affine(&pv, -1.0, 1.0)?)?, &scalar_tensor(1e-12, dev)?)?;
            Some(ru::affine(&rb::div(&num, &den)?, gs, 0.0)?)
        } else {
            None
        };
        let dt = if need[1] { Some(ru::affine(&rb::sub(&l1p, &lp)?, gs, 0.0)?) } else { None };
        Ok(vec![dp, dt])
    })
}

/// Mean squared error, mean over every element.
pub fn mse(a: &Var, b: &Var) -> Result<Var> {
    same_shape("mse", a, b)?;
    let d = rb::sub(a.value(), b.value())?;
    let loss = mean_all(&rb::mul(&d, &d)?)?;
    let n = d.numel() as f32;
    record("mse", &[a, b], loss, move |g, need| {
        let s = 2.0 * scalar_of(g)? / n;
        let da = ru::affine(&d, s, 0.0)?;
        let db = if need[1] { Some(ru::neg(&da)?) } else { None };
        Ok(vec![if need[0] { Some(da) } else { None }, db])
    })
}

/// Negative SNR in dB, mean over rows (module doc): `est` and `target` (…, L).
pub fn neg_snr(est: &Var, target: &Tensor) -> Result<Var> {
    if est.shape() != target.shape() || est.shape().is_empty() {
        return Err(Error::Msg(format!("neg_snr: estimate {:?} and target {:?} must have one shape (…, samples)", est.shape(), target.shape())));
    }
    let l = *est.shape().last().unwrap();
    let rows = est.value().numel() / l.max(1);
    let dev = est.value().device();
    let (e2, t2) = (est.value().reshape(&[rows, l])?, target.to_device(dev)?.reshape(&[rows, l])?);
    let d = rb::sub(&t2, &e2)?;
    let den: Vec<f64> = rr::sum(&rb::mul(&d, &d)?, 1, false)?.to_vec()?.into_iter().map(|v| v as f64 + f32::EPSILON as f64).collect();
    let num: Vec<f64> = rr::sum(&rb::mul(&t2, &t2)?, 1, false)?.to_vec()?.into_iter().map(|v| v as f64 + f32::EPSILON as f64).collect();
    let loss = -num.iter().zip(&den).map(|(n, d)| 10.0 * (n / d).log10()).sum::<f64>() / rows as f64;
    let shape = est.shape().to_vec();
    record("neg_snr", &[est], Tensor::from_slice(&[loss as f32], &[], dev)?, move |g, _| {
        let gs = scalar_of(g)? as f64;
        // d = t − e, so ∂/∂e = −k·d with k = 20/(R·ln10·den) per row.
        let k: Vec<f32> = den.iter().map(|dn| (-gs * 20.0 / (rows as f64 * std::f64::consts::LN_10 * dn)) as f32).collect();
        let ge = rb::mul(&d, &Tensor::from_slice(&k, &[rows, 1], dev)?)?;
        Ok(vec![Some(ge.reshape(&shape)?)])
    })
}
