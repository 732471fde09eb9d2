//! Elementwise binary ops with broadcasting. Backward: the output gradient times the partial
//! derivative, summed over the broadcast dims down to each operand's shape.
//! `maximum`/`minimum` follow torch: the gradient goes to the larger (smaller) operand, split in
//! half on ties.

use aural_runtime::ops::binary as rb;
use aural_runtime::ops::broadcast;
use aural_runtime::ops::unary as ru;
use aural_runtime::{Result, Tensor};

use super::reduce_to;
use crate::tape::record;
use crate::Var;

pub fn add(a: &Var, b: &Var) -> Result<Var> {
    let y = rb::add(a.value(), b.value())?;
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    record("add", &[a, b], y, move |g, n| Ok(vec![if n[0] { Some(reduce_to(g, &sa)?) } else { None }, if n[1] { Some(reduce_to(g, &sb)?) } else { None }]))
}

pub fn sub(a: &Var, b: &Var) -> Result<Var> {
    let y = rb::sub(a.value(), b.value())?;
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    record("sub", &[a, b], y, move |g, n| {
        Ok(vec![if n[0] { Some(reduce_to(g, &sa)?) } else { None }, if n[1] { Some(reduce_to(&ru::neg(g)?, &sb)?) } else { None }])
    })
}

pub fn mul(a: &Var, b: &Var) -> Result<Var> {
    let y = rb::mul(a.value(), b.value())?;
    let (av, bv) = (a.value().clone(), b.value().clone());
    record("mul", &[a, b], y, move |g, n| {
        Ok(vec![
            if n[0] { Some(reduce_to(&rb::mul(g, &bv)?, av.shape())?) } else { None },
            if n[1] { Some(reduce_to(&rb::mul(g, &av)?, bv.shape())?) } else { None },
        ])
    })
}

pub fn div(a: &Var, b: &Var) -> Result<Var> {
    let y = rb::div(a.value(), b.value())?;
    let (sa, bv, yv) = (a.shape().to_vec(), b.value().clone(), y.clone());
    record("div", &[a, b], y, move |g, n| {
        Ok(vec![
            if n[0] { Some(reduce_to(&rb::div(g, &bv)?, &sa)?) } else { None },
            // d(a/b)/db = −a/b² = −y/b
            if n[1] { Some(reduce_to(&ru::neg(&rb::mul(g, &rb::div(&yv, &bv)?)?)?, bv.shape())?) } else { None },
        ])
    })
}

fn extremum(op: &'static str, a: &Var, b: &Var, is_max: bool) -> Result<Var> {
    let y = if is_max { rb::maximum(a.value(), b.value())? } else { rb::minimum(a.value(), b.value())? };
    let (av, bv) = (a.value().clone(), b.value().clone());
    record(op, &[a, b], y, move |g, n| {
        let bc = broadcast(op, av.shape(), bv.shape())?;
        let (x, z, gv) = (av.to_vec()?, bv.to_vec()?, g.to_vec()?);
        let total = gv.len();
        let (mut ga, mut gb) = (vec![0f32; total], vec![0f32; total]);
        let r = bc.out.len();
        let mut idx = vec![0usize; r];
        for i in 0..total {
            let (mut ia, mut ib) = (0usize, 0usize);
            for d in 0..r {
                ia += idx[d] * bc.a_strides[d];
                ib += idx[d] * bc.b_strides[d];
            }
            let (p, q) = (x[ia], z[ib]);
            let (wa, wb) = if p == q {
                (0.5, 0.5)
            } else if (p > q) == is_max {
                (1.0, 0.0)
            } else {
                (0.0, 1.0)
            };
            ga[i] = gv[i] * wa;
            gb[i] = gv[i] * wb;
            for d in (0..r).rev() {
                idx[d] += 1;
                if idx[d] < bc.out[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let dev = g.device();
        let up = |v: Vec<f32>| -> Result<Tensor> { Tensor::from_vec(v, &bc.out)?.to_device(dev) };
        Ok(vec![if n[0] { Some(reduce_to(&up(ga)?, av.shape())?) } else { None }, if n[1] { Some(reduce_to(&up(gb)?, bv.shape())?) } else { None }])
    })
}

/// `torch.maximum(a, b)` with broadcasting.
pub fn maximum(a: &Var, b: &Var) -> Result<Var> {
    extremum("maximum", a, b, true)
}

/// `torch.minimum(a, b)` with broadcasting.
pub fn minimum(a: &Var, b: &Var) -> Result<Var> {
    extremum("minimum", a, b, false)
}

/// `x · s` for a scalar `s`.
pub fn scale(x: &Var, s: f32) -> Result<Var> {
    super::unary::affine(x, s, 0.0)
}

/// `x + c` for a scalar `c`.
pub fn add_scalar(x: &Var, c: f32) -> Result<Var> {
    super::unary::affine(x, 1.0, c)
}
