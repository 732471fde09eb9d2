//! AST's patch embedding (a strided one-channel Conv2d over the spectrogram, flattened
//! frequency-major, prefix tokens prepended, position embedding added) on the runtime's fused op.
//! Backward: `runtime::ops::patch_embed::patch_embed_bwd` — gradients of the weight (one GEMM with
//! the im2col of x), bias, prefix tokens and position embedding. x is the frozen fbank input: no gradient
//! flows to it (it may still be on the tape, as the Var that carries the tape).

use aural_runtime::ops::patch_embed::{self as rp, PatchEmbed};
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

/// `patch_embed(x, {weight, bias, stride, prefix, pos})`: x (B, frames, mel), weight (N, 1, ph, pw)
/// or (N, ph, pw), bias (N), stride (over mel, over frames), prefix (P, N), pos (P + F′T′, N) or
/// (1, P + F′T′, N) → (B, P + F′T′, N). See `aural_runtime::ops::patch_embed`.
pub fn patch_embed(x: &Var, weight: &Var, bias: &Var, stride: (usize, usize), prefix: Option<&Var>, pos: Option<&Var>) -> Result<Var> {
    let pe = PatchEmbed { weight: weight.value(), bias: bias.value(), stride, prefix: prefix.map(|v| v.value()), pos: pos.map(|v| v.value()) };
    let y = rp::patch_embed(x.value(), &pe)?;
    let (xv, wv, bv) = (x.value().clone(), weight.value().clone(), bias.value().clone());
    let (pv, sv) = (prefix.map(|v| v.value().clone()), pos.map(|v| v.value().clone()));
    let mut inputs = vec![x, weight, bias];
    inputs.extend(prefix);
    inputs.extend(pos);
    record("patch_embed", &inputs, y, move |g, _| {
        let pe = PatchEmbed { weight: &wv, bias: &bv, stride, prefix: pv.as_ref(), pos: sv.as_ref() };
        let gr = rp::patch_embed_bwd(&xv, &pe, g)?;
        let mut out = vec![None, Some(gr.dweight), Some(gr.dbias)];
        if pv.is_some() {
            out.push(gr.dprefix);
        }
        if sv.is_some() {
            out.push(gr.dpos);
        }
        Ok(out)
    })
}
