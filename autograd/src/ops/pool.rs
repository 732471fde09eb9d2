//! Attention pooling of frame predictions into a clip prediction (AST-SED / DCASE baselines):
//! `weak[b, c] = Σ_t strong[b, t, c]·a[b, t, c] / Σ_t a[b, t, c]`, `a = clamp(softmax_t(att), 1e-7, 1)`.
//! Composed from Var ops (permute, softmax, clamp, mul, sum, div), so its backward is theirs.

use aural_runtime::Result;

use super::{clamp, div, mul, permute, softmax, sum};
use crate::Var;

/// `strong`, `att`: (B, T, C) → weak (B, C).
pub fn attention_pool(strong: &Var, att: &Var) -> Result<Var> {
    let a = permute(&softmax(&permute(att, &[0, 2, 1])?)?, &[0, 2, 1])?;
    let a = clamp(&a, 1e-7, 1.0)?;
    div(&sum(&mul(strong, &a)?, 1, false)?, &sum(&a, 1, false)?)
}
