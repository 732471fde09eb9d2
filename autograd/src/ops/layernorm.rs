//! Layer norm over the last dim. Backward: `runtime::ops::layernorm::layernorm_bwd` (kernel
//! `layernorm_bwd_f32_v1` on GPU devices): dx, dweight = Σ_rows g·x̂, dbias = Σ_rows g.

use aural_runtime::ops::layernorm as rl;
use aural_runtime::Result;

use crate::tape::record;
use crate::Var;

/// `F.layer_norm(x, (L,), weight, bias, eps)`.
pub fn layernorm(x: &Var, weight: Option<&Var>, bias: Option<&Var>, eps: f32) -> Result<Var> {
    let y = rl::layernorm(x.value(), weight.map(|w| w.value()), bias.map(|b| b.value()), eps)?;
    let xv = x.value().clone();
    let wv = weight.map(|w| w.value().clone());
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let (has_w, has_b) = (weight.is_some(), bias.is_some());
    record("layernorm", &inputs, y, move |g, _| {
        let gr = rl::layernorm_bwd(&xv, wv.as_ref(), g, eps)?;
        let mut out = vec![Some(gr.dx)];
        if has_w {
            out.push(Some(gr.dweight));
        }
        if has_b {
            out.push(Some(gr.dbias));
        }
        Ok(out)
    })
}
