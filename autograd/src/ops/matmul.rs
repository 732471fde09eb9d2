//! Matrix products. For C = op(A)·op(B) (+ bias), with G = ∂L/∂C:
//! - dA: G·op(B)ᵀ as a matmul of G with B (its transpose flag flipped); when A is stored transposed
//!   the result is transposed back (a permute of the last two dims).
//! - dB: op(A)ᵀ·G (or Gᵀ·op(A) when B is stored transposed) per batch; a 2-D B shared by every batch
//!   gets the sum over batches, computed as one GEMM over the flattened (batch·M) rows.
//! - dbias: G summed over every row.
//! `linear` (x·Wᵀ + b, nn.Linear) is the trans_b case with x's leading dims flattened.

use aural_runtime::ops::matmul::{self as rm, MatmulOpts};
use aural_runtime::ops::reduce as rr;
use aural_runtime::ops::shape as rs;
use aural_runtime::{Result, Tensor};

use crate::tape::record;
use crate::Var;

fn swap_last2(t: &Tensor) -> Result<Tensor> {
    let r = t.rank();
    let mut dims: Vec<usize> = (0..r).collect();
    dims.swap(r - 1, r - 2);
    rs::permute(t, &dims)
}

/// `a · b`.
pub fn matmul(a: &Var, b: &Var) -> Result<Var> {
    matmul_opts(a, b, false, false, None)
}

/// `op(a) · op(b) + bias` with the runtime's shape rules (batched, or `b` 2-D and shared).
pub fn matmul_opts(a: &Var, b: &Var, trans_a: bool, trans_b: bool, bias: Option<&Var>) -> Result<Var> {
    let opts = MatmulOpts { trans_a, trans_b, bias: bias.map(|v| v.value().clone()), ..Default::default() };
    let y = rm::matmul_opts(a.value(), b.value(), &opts)?;
    let (av, bv) = (a.value().clone(), b.value().clone());
    let mut inputs = vec![a, b];
    inputs.extend(bias);
    let has_bias = bias.is_some();
    record("matmul", &inputs, y, move |g, n| {
        let shared_b = bv.rank() == 2 && av.rank() > 2;
        let da = if n[0] {
            let t = rm::matmul_opts(g, &bv, &MatmulOpts { trans_b: !trans_b, ..Default::default() })?;
            Some(if trans_a { swap_last2(&t)? } else { t })
        } else {
            None
        };
        let db = if n[1] {
            Some(if !shared_b {
                if !trans_b {
                    rm::matmul_opts(&av, g, &MatmulOpts { trans_a: !trans_a, ..Default::default() })?
                } else {
                    rm::matmul_opts(g, &av, &MatmulOpts { trans_a: true, trans_b: trans_a, ..Default::default() })?
                }
            } else {
                let a_nat = if trans_a { swap_last2(&av)? } else { av.clone() };
                let k = a_nat.shape()[a_nat.rank() - 1];
                let nn = g.shape()[g.rank() - 1];
                let a2 = a_nat.reshape(&[usize::MAX, k])?;
                let g2 = g.reshape(&[usize::MAX, nn])?;
                if !trans_b {
                    rm::matmul_opts(&a2, &g2, &MatmulOpts { trans_a: true, ..Default::default() })?
                } else {
                    rm::matmul_opts(&g2, &a2, &MatmulOpts { trans_a: true, ..Default::default() })?
                }
            })
        } else {
            None
        };
        let mut out = vec![da, db];
        if has_bias {
            out.push(if n[2] {
                let nn = g.shape()[g.rank() - 1];
                Some(rr::sum(&g.reshape(&[usize::MAX, nn])?, 0, false)?)
            } else {
                None
            });
        }
        Ok(out)
    })
}

/// `nn.Linear`: `x · wᵀ + bias`, `w` (N, K), `x` (…, K) → (…, N).
pub fn linear(x: &Var, w: &Var, bias: Option<&Var>) -> Result<Var> {
    let y = rm::linear(x.value(), w.value(), bias.map(|b| b.value()))?;
    let (xv, wv) = (x.value().clone(), w.value().clone());
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let has_bias = bias.is_some();
    record("linear", &inputs, y, move |g, n| {
        let (nn, k) = (wv.shape()[0], wv.shape()[1]);
        let g2 = g.reshape(&[usize::MAX, nn])?;
        let dx = if n[0] { Some(rm::matmul(&g2, &wv)?.reshape(xv.shape())?) } else { None };
        let dw = if n[1] {
            let x2 = xv.reshape(&[usize::MAX, k])?;
            Some(rm::matmul_opts(&g2, &x2, &MatmulOpts { trans_a: true, ..Default::default() })?)
        } else {
            None
        };
        let mut out = vec![dx, dw];
        if has_bias {
            out.push(if n[2] { Some(rr::sum(&g2, 0, false)?) } else { None });
        }
        Ok(out)
    })
}
