//! Elementwise unary ops. Backward rules (y = f(x), g = ∂L/∂y):
//! gelu `g·(Φ(x) + x·φ(x))` (kernel `gelu_bwd_f32_v1`), gelu_tanh (host), relu `g·[x > 0]` (host
//! mask), leaky_relu `g·(x > 0 ? 1 : slope)` (host), sigmoid `g·y·(1 − y)`, tanh `g·(1 − y²)`, exp
//! `g·y`, log `g/x`, sqrt `g/(2y)`, neg `−g`, abs `g·sign(x)` (host), affine `g·scale`, clamp
//! `g·[lo ≤ x ≤ hi]` (host; torch's inclusive rule).

use aural_runtime::ops::binary as rb;
use aural_runtime::ops::unary as ru;
use aural_runtime::Result;

use super::{host_map2, scalar_tensor};
use crate::tape::record;
use crate::Var;

pub fn gelu(x: &Var) -> Result<Var> {
    let y = ru::gelu(x.value())?;
    let xv = x.value().clone();
    record("gelu", &[x], y, move |g, _| Ok(vec![Some(ru::gelu_bwd(&xv, g)?)]))
}

pub fn gelu_tanh(x: &Var) -> Result<Var> {
    let y = ru::gelu_tanh(x.value())?;
    let xv = x.value().clone();
    record("gelu_tanh", &[x], y, move |g, _| {
        Ok(vec![Some(host_map2(&xv, g, |x, g| {
            const K: f32 = 0.797_884_6;
            let u = K * (x + 0.044715 * x * x * x);
            let t = u.tanh();
            let du = K * (1.0 + 3.0 * 0.044715 * x * x);
            g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
        })?)])
    })
}

pub fn relu(x: &Var) -> Result<Var> {
    let y = ru::relu(x.value())?;
    let xv = x.value().clone();
    record("relu", &[x], y, move |g, _| Ok(vec![Some(host_map2(&xv, g, |x, g| if x > 0.0 { g } else { 0.0 })?)]))
}

pub fn leaky_relu(x: &Var, slope: f32) -> Result<Var> {
    let y = ru::leaky_relu(x.value(), slope)?;
    let xv = x.value().clone();
    record("leaky_relu", &[x], y, move |g, _| Ok(vec![Some(host_map2(&xv, g, move |x, g| if x > 0.0 { g } else { g * slope })?)]))
}

pub fn sigmoid(x: &Var) -> Result<Var> {
    let y = ru::sigmoid(x.value())?;
    let yv = y.clone();
    record("sigmoid", &[x], y, move |g, _| Ok(vec![Some(rb::mul(g, &rb::mul(&yv, &ru::affine(&yv, -1.0, 1.0)?)?)?)]))
}

pub fn tanh(x: &Var) -> Result<Var> {
    let y = ru::tanh(x.value())?;
    let yv = y.clone();
    record("tanh", &[x], y, move |g, _| Ok(vec![Some(rb::mul(g, &ru::affine(&rb::mul(&yv, &yv)?, -1.0, 1.0)?)?)]))
}

pub fn exp(x: &Var) -> Result<Var> {
    let y = ru::exp(x.value())?;
    let yv = y.clone();
    record("exp", &[x], y, move |g, _| Ok(vec![Some(rb::mul(g, &yv)?)]))
}

pub fn log(x: &Var) -> Result<Var> {
    let y = ru::log(x.value())?;
    let xv = x.value().clone();
    record("log", &[x], y, move |g, _| Ok(vec![Some(rb::div(g, &xv)?)]))
}

pub fn sqrt(x: &Var) -> Result<Var> {
    let y = ru::sqrt(x.value())?;
    let yv = y.clone();
    record("sqrt", &[x], y, move |g, _| Ok(vec![Some(rb::div(g, &ru::affine(&yv, 2.0, 0.0)?)?)]))
}

pub fn neg(x: &Var) -> Result<Var> {
    let y = ru::neg(x.value())?;
    record("neg", &[x], y, move |g, _| Ok(vec![Some(ru::neg(g)?)]))
}

pub fn abs(x: &Var) -> Result<Var> {
    let y = ru::abs(x.value())?;
    let xv = x.value().clone();
    // torch: sign(x)·g, 0 at x = 0.
    record("abs", &[x], y, move |g, _| {
        Ok(vec![Some(host_map2(&xv, g, |x, g| {
            if x > 0.0 {
                g
            } else if x < 0.0 {
                -g
            } else {
                0.0
            }
        })?)])
    })
}

/// `x·scale + shift`.
pub fn affine(x: &Var, scale: f32, shift: f32) -> Result<Var> {
    let y = ru::affine(x.value(), scale, shift)?;
    record("affine", &[x], y, move |g, _| Ok(vec![Some(ru::affine(g, scale, 0.0)?)]))
}

/// `torch.clamp(x, lo, hi)`; the gradient passes where lo ≤ x ≤ hi (inclusive, as torch).
pub fn clamp(x: &Var, lo: f32, hi: f32) -> Result<Var> {
    let dev = x.value().device();
    let y = rb::minimum(&rb::maximum(x.value(), &scalar_tensor(lo, dev)?)?, &scalar_tensor(hi, dev)?)?;
    let xv = x.value().clone();
    record("clamp", &[x], y, move |g, _| Ok(vec![Some(host_map2(&xv, g, move |x, g| if x >= lo && x <= hi { g } else { 0.0 })?)]))
}
