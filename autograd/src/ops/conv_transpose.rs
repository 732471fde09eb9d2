//! Transposed 2-D convolution with kernel = stride, no bias, and the decoder block's fused
//! pre-activation (ResUNet30's decoder upsampling). Backward:
//! `runtime::ops::conv_transpose::conv_transpose2d_bwd` (kernels `conv_transpose_data_bwd_f32_v1` and
//! `conv_transpose_weight_bwd_f32_v1` on GPU devices): dx, dweight and, with a pre-activation, dscale,
//! dshift (the shift's own shape, (C) or (B, C)) and the time-FiLM's dtime.

use aural_runtime::ops::conv2d::{PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::ops::conv_transpose as rc;
use aural_runtime::{Result, Tensor};

use crate::tape::record;
use crate::Var;

/// The pre-activation on Vars: `(scale (C), shift (C) or (B, C), LeakyReLU slope, optional time-FiLM
/// (values (B, C, H), mode))`; see `aural_runtime::ops::conv2d::PreAct`.
pub type PreActVars<'a> = (&'a Var, &'a Var, f32, Option<(&'a Var, TimeFilmMode)>);

/// The pre-activation's tensors, kept by the tape entry for the backward.
type PreActOwned = (Tensor, Tensor, f32, Option<(Tensor, TimeFilmMode)>);

fn pre_of(p: &Option<PreActOwned>) -> Option<PreAct<'_>> {
    p.as_ref().map(|(scale, shift, slope, time)| PreAct {
        scale,
        shift,
        slope: *slope,
        time: time.as_ref().map(|(values, mode)| TimeFilm { values, mode: *mode }),
    })
}

/// `ConvTranspose2d(C, O, kernel_size = stride = (sh, sw), bias = False)` applied to
/// `a = leaky(x·scale + shift [+ t])` (or `leaky(x·scale + shift)·t`, or `a = x` without `pre`);
/// x (B, C, H, W), weight (C, O, sh, sw) → (B, O, H·sh, W·sw).
pub fn conv_transpose2d(x: &Var, weight: &Var, pre: Option<PreActVars>) -> Result<Var> {
    let pv = pre.map(|(s, b, slope, t)| (s.value().clone(), b.value().clone(), slope, t.map(|(v, m)| (v.value().clone(), m))));
    let y = rc::conv_transpose2d(x.value(), weight.value(), pre_of(&pv).as_ref())?;
    let (xv, wv) = (x.value().clone(), weight.value().clone());
    let mut inputs = vec![x, weight];
    if let Some((s, b, _, t)) = pre {
        inputs.extend([s, b]);
        inputs.extend(t.map(|(v, _)| v));
    }
    record("conv_transpose2d", &inputs, y, move |g, _| {
        let gr = rc::conv_transpose2d_bwd(&xv, &wv, pre_of(&pv).as_ref(), g)?;
        let mut out = vec![Some(gr.dx), Some(gr.dweight)];
        if let Some((_, _, _, t)) = &pv {
            out.extend([gr.dscale, gr.dshift]);
            if t.is_some() {
                out.push(gr.dtime);
            }
        }
        Ok(out)
    })
}
