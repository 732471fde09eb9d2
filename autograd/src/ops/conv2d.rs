//! The separator's fused 2-D convolution (pre-activation, time-FiLM, bias, residual, two-source
//! concat). Backward: `runtime::ops::conv2d::conv2d_bwd` (kernels `conv2d_data_bwd_f32_v1`,
//! `conv2d_weight_bwd_f32_v1` on GPU devices): gradients of every source, the weight, bias, scale,
//! shift, time-FiLM values and residual.

use aural_runtime::ops::conv2d::{self as rc, Conv2d, PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::{Result, Tensor};

use crate::tape::record;
use crate::Var;

/// The pre-activation of [`conv2d`]: (scale (C), shift (C) or (B, C), LeakyReLU slope, optional
/// time-FiLM values (B, C, H) with their mode).
pub type PreVars<'a> = (&'a Var, &'a Var, f32, Option<(&'a Var, TimeFilmMode)>);

/// `aural_runtime::ops::conv2d::conv2d` on Vars (f32 weight): `inputs` one or two sources (read as
/// their channel concatenation), weight (O, ΣC, k, k), bias (O), residual (B, O, H, W).
pub fn conv2d(inputs: &[&Var], weight: &Var, bias: Option<&Var>, pre: Option<PreVars>, residual: Option<&Var>) -> Result<Var> {
    let xv: Vec<Tensor> = inputs.iter().map(|v| v.value().clone()).collect();
    let wv = weight.value().clone();
    let bv = bias.map(|v| v.value().clone());
    let rv = residual.map(|v| v.value().clone());
    let pv = pre.map(|(s, h, slope, t)| (s.value().clone(), h.value().clone(), slope, t.map(|(t, m)| (t.value().clone(), m))));
    let y = {
        let ins: Vec<&Tensor> = xv.iter().collect();
        rc::conv2d(&ins, &params(&wv, bv.as_ref(), pv.as_ref(), rv.as_ref()))?
    };
    let mut vars: Vec<&Var> = inputs.to_vec();
    vars.push(weight);
    vars.extend(bias);
    if let Some((s, h, _, t)) = pre {
        vars.push(s);
        vars.push(h);
        vars.extend(t.map(|(t, _)| t));
    }
    vars.extend(residual);
    record("conv2d", &vars, y, move |g, _| {
        let ins: Vec<&Tensor> = xv.iter().collect();
        let gr = rc::conv2d_bwd(&ins, &params(&wv, bv.as_ref(), pv.as_ref(), rv.as_ref()), g)?;
        let mut out: Vec<Option<Tensor>> = gr.dinputs.into_iter().map(Some).collect();
        out.push(Some(gr.dweight));
        if bv.is_some() {
            out.push(gr.dbias);
        }
        if let Some((_, _, _, t)) = &pv {
            out.push(gr.dscale);
            out.push(gr.dshift);
            if t.is_some() {
                out.push(gr.dtime);
            }
        }
        if rv.is_some() {
            out.push(gr.dresidual);
        }
        Ok(out)
    })
}

type PreTensors = (Tensor, Tensor, f32, Option<(Tensor, TimeFilmMode)>);

fn params<'a>(w: &'a Tensor, b: Option<&'a Tensor>, pre: Option<&'a PreTensors>, r: Option<&'a Tensor>) -> Conv2d<'a> {
    let pre =
        pre.map(|(scale, shift, slope, t)| PreAct { scale, shift, slope: *slope, time: t.as_ref().map(|(values, mode)| TimeFilm { values, mode: *mode }) });
    Conv2d { weight: w, bias: b, pre, residual: r }
}
