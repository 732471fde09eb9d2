//! Data movement. Backward: reshape → reshape back; permute → the inverse permutation; concat →
//! slices of the gradient; slice → the gradient padded with zeros (concat); repeat_interleave → the
//! gradient viewed as (O, R, times, I) and summed over `times`.

use aural_runtime::ops::reduce as rr;
use aural_runtime::ops::shape as rs;
use aural_runtime::{DType, Error, Result, Tensor};

use crate::tape::record;
use crate::Var;

/// Same data, new shape (one dim may be `usize::MAX`, inferred).
pub fn reshape(x: &Var, shape: &[usize]) -> Result<Var> {
    let y = x.value().reshape(shape)?;
    let s = x.shape().to_vec();
    record("reshape", &[x], y, move |g, _| Ok(vec![Some(g.reshape(&s)?)]))
}

/// `x.permute(dims)`.
pub fn permute(x: &Var, dims: &[usize]) -> Result<Var> {
    let y = rs::permute(x.value(), dims)?;
    let mut inv = vec![0usize; dims.len()];
    for (i, &d) in dims.iter().enumerate() {
        inv[d] = i;
    }
    record("permute", &[x], y, move |g, _| Ok(vec![Some(rs::permute(g, &inv)?)]))
}

/// Swaps axes `a` and `b` (negative counts from the end).
pub fn transpose(x: &Var, a: isize, b: isize) -> Result<Var> {
    let (a, b) = (x.value().axis(a, "transpose")?, x.value().axis(b, "transpose")?);
    let mut dims: Vec<usize> = (0..x.value().rank()).collect();
    dims.swap(a, b);
    permute(x, &dims)
}

/// `torch.cat(xs, dim=axis)`.
pub fn concat(xs: &[&Var], axis: isize) -> Result<Var> {
    let ts: Vec<&Tensor> = xs.iter().map(|v| v.value()).collect();
    let y = rs::concat(&ts, axis)?;
    let ax = y.axis(axis, "concat")?;
    let lens: Vec<usize> = xs.iter().map(|v| v.shape()[ax]).collect();
    record("concat", xs, y, move |g, n| {
        let mut out = Vec::with_capacity(lens.len());
        let mut off = 0;
        for (i, &l) in lens.iter().enumerate() {
            out.push(if n[i] { Some(rs::slice(g, ax as isize, off, l)?) } else { None });
            off += l;
        }
        Ok(out)
    })
}

/// `torch.narrow(x, axis, start, len)`.
pub fn slice(x: &Var, axis: isize, start: usize, len: usize) -> Result<Var> {
    let y = rs::slice(x.value(), axis, start, len)?;
    let ax = x.value().axis(axis, "slice")?;
    let shape = x.shape().to_vec();
    record("slice", &[x], y, move |g, _| {
        let dim = shape[ax];
        let zeros = |k: usize| -> Result<Tensor> {
            let mut s = shape.clone();
            s[ax] = k;
            Tensor::zeros(&s, DType::F32, g.device())
        };
        let mut parts = Vec::new();
        if start > 0 {
            parts.push(zeros(start)?);
        }
        parts.push(g.clone());
        if start + len < dim {
            parts.push(zeros(dim - start - len)?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        Ok(vec![Some(if refs.len() == 1 { g.clone() } else { rs::concat(&refs, ax as isize)? })])
    })
}

/// `torch.repeat_interleave(x, times, dim=axis)` (nearest-neighbour upsampling along `axis`).
pub fn repeat_interleave(x: &Var, axis: isize, times: usize) -> Result<Var> {
    if times == 0 {
        return Err(Error::Msg("repeat_interleave: times must be ≥ 1 for autograd".into()));
    }
    let y = rs::repeat_interleave(x.value(), axis, times)?;
    let ax = x.value().axis(axis, "repeat_interleave")?;
    let shape = x.shape().to_vec();
    record("repeat_interleave", &[x], y, move |g, _| {
        let o: usize = shape[..ax].iter().product();
        let i: usize = shape[ax + 1..].iter().product();
        let g4 = g.reshape(&[o, shape[ax], times, i])?;
        Ok(vec![Some(rr::sum(&g4, 2, false)?.reshape(&shape)?)])
    })
}
