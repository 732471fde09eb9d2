//! Losses (mean reduction, shape []).
//! - `bce(p, t)` = −mean(t·max(log p, −100) + (1 − t)·max(log(1 − p), −100)) on probabilities
//!   (`F.binary_cross_entropy`, whose log clamp at −100 keeps p = 0 or 1 finite). Backward as torch:
//!   ∂/∂p = g/N · (p − t) / max(p·(1 − p), 1e-12); ∂/∂t = g/N · (max(log(1 − p), −100) − max(log p, −100)).
//! - `mse(a, b)` = mean((a − b)²): ∂/∂a = g·2(a − b)/N, ∂/∂b = −∂/∂a.

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
