//! Sum and mean over an axis. Backward: the gradient (with the axis kept as size 1) repeated along the
//! axis (`repeat_interleave`, a broadcast), scaled by 1/L for the mean.

use aural_runtime::ops::reduce as rr;
use aural_runtime::ops::shape as rs;
use aural_runtime::ops::unary as ru;
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

fn reduce(op: &'static str, x: &Var, axis: isize, keepdim: bool, is_mean: bool) -> Result<Var> {
    let y = if is_mean { rr::mean(x.value(), axis, keepdim)? } else { rr::sum(x.value(), axis, keepdim)? };
    let ax = x.value().axis(axis, op)?;
    let shape = x.shape().to_vec();
    record(op, &[x], y, move |g, _| {
        let mut ks = shape.clone();
        ks[ax] = 1;
        let len = shape[ax];
        let gk = g.reshape(&ks)?;
        let gk = if is_mean { ru::affine(&gk, 1.0 / len as f32, 0.0)? } else { gk };
        Ok(vec![Some(rs::repeat_interleave(&gk, ax as isize, len)?)])
    })
}

/// `x.sum(dim=axis, keepdim=keepdim)`.
pub fn sum(x: &Var, axis: isize, keepdim: bool) -> Result<Var> {
    reduce("sum", x, axis, keepdim, false)
}

/// `x.mean(dim=axis, keepdim=keepdim)`.
pub fn mean(x: &Var, axis: isize, keepdim: bool) -> Result<Var> {
    reduce("mean", x, axis, keepdim, true)
}

/// Σ of every element, shape [].
pub fn sum_all(x: &Var) -> Result<Var> {
    sum(&super::reshape(x, &[x.value().numel()])?, 0, false)
}

/// Mean of every element, shape [].
pub fn mean_all(x: &Var) -> Result<Var> {
    mean(&super::reshape(x, &[x.value().numel()])?, 0, false)
}
