//! Multi-head scaled dot-product self-attention (no mask) on the runtime's fused op. Backward:
//! `runtime::ops::attention::attention_qkv_bwd` / `attention_heads_bwd` — recompute-based as
//! flash-attention (P recomputed from Q, K; dS = P ⊙ (dP − rowsum(dO ⊙ O))); kernel
//! `attention_bwd_f32_v1` for sequences of ≤ 32 tokens on GPU devices.

use aural_runtime::ops::attention as ra;
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

/// `aural_runtime::ops::attention::attention_qkv`: one packed (B, S, 3·D) = [Q | K | V] (a fused QKV
/// linear) → (B, S, D), `heads` heads of D/heads, `softmax(scale·QKᵀ)·V` per head.
pub fn attention_qkv(qkv: &Var, heads: usize, scale: f32) -> Result<Var> {
    let y = ra::attention_qkv(qkv.value(), heads, scale)?;
    let (xv, yv) = (qkv.value().clone(), y.clone());
    record("attention_qkv", &[qkv], y, move |g, _| Ok(vec![Some(ra::attention_qkv_bwd(&xv, &yv, g, heads, scale)?)]))
}

/// `aural_runtime::ops::attention::attention_heads`: q, k, v (B, S, D) projection outputs → (B, S, D).
pub fn attention_heads(q: &Var, k: &Var, v: &Var, heads: usize, scale: f32) -> Result<Var> {
    let y = ra::attention_heads(q.value(), k.value(), v.value(), heads, scale)?;
    let (qv, kv, vv, yv) = (q.value().clone(), k.value().clone(), v.value().clone(), y.clone());
    record("attention_heads", &[q, k, v], y, move |g, _| {
        let (dq, dk, dv) = ra::attention_heads_bwd(&qv, &kv, &vv, &yv, g, heads, scale)?;
        Ok(vec![Some(dq), Some(dk), Some(dv)])
    })
}
