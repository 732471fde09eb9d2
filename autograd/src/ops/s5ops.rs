//! Ops of the CP-JKU separator extensions (DCASE 2025 task 4, S5), with their backward rules:
//! `resize_bilinear` (fused BatchNorm + LeakyReLU pre-activation; backward
//! `runtime::ops::resize::resize_bilinear_bwd`, kernel `resize_bilinear_data_bwd_f32_v1`),
//! `group_norm` (with the residual; `runtime::ops::groupnorm::group_norm_bwd`,
//! `group_norm_data_bwd_f32_v1`), `standardize_add` (learned scalar weights;
//! `runtime::ops::standardize::standardize_add_bwd`, `standardize_add_data_bwd_f32_v1`) and `prelu`
//! (`nn.PReLU`, a composite: forward by runtime maximum/minimum/mul/add on the device; backward
//! `dx = dy·(x > 0 ? 1 : a)` through a host mask, `da = Σ dy·min(x, 0)` reduced to a's shape).

use aural_runtime::ops::binary as rb;
use aural_runtime::ops::conv2d::PreAct;
use aural_runtime::ops::groupnorm as rg;
use aural_runtime::ops::resize as rr;
use aural_runtime::ops::standardize as rs;
use aural_runtime::{DType, Error, Result, Tensor};

use super::{host_map2, reduce_to, scalar_of, scalar_tensor};
use crate::tape::record;
use crate::Var;

/// `F.interpolate(x, size, mode='bilinear', align_corners=False)` on Vars, `x` (N, C, H, W) to
/// (N, C, size.0, size.1); with `pre = (scale (C), shift (C) or (N, C), slope)` the input is first
/// activated as `leaky(x·scale[c] + shift, slope)`. Gradients of x, scale and shift.
pub fn resize_bilinear(x: &Var, size: (usize, usize), pre: Option<(&Var, &Var, f32)>) -> Result<Var> {
    let xv = x.value().clone();
    let pv = pre.map(|(s, h, slope)| (s.value().clone(), h.value().clone(), slope));
    let y = rr::resize_bilinear(&xv, size, pv.as_ref().map(pre_act).as_ref())?;
    let mut vars = vec![x];
    if let Some((s, h, _)) = pre {
        vars.push(s);
        vars.push(h);
    }
    record("resize_bilinear", &vars, y, move |g, _| {
        let pre = pv.as_ref().map(pre_act);
        let gr = rr::resize_bilinear_bwd(&xv, size, pre.as_ref(), g)?;
        let mut out = vec![Some(gr.dx)];
        if pv.is_some() {
            out.push(gr.dscale);
            out.push(gr.dshift);
        }
        Ok(out)
    })
}

fn pre_act(p: &(Tensor, Tensor, f32)) -> PreAct<'_> {
    PreAct { scale: &p.0, shift: &p.1, slope: p.2, time: None }
}

/// `nn.GroupNorm(groups, C, eps)(x)` (`weight`, `bias` (C); None: ones / zeros, not learned) plus
/// `residual` (x's shape) when given. Gradients of x, weight, bias and residual.
pub fn group_norm(x: &Var, groups: usize, weight: Option<&Var>, bias: Option<&Var>, eps: f32, residual: Option<&Var>) -> Result<Var> {
    let xv = x.value().clone();
    let c = xv.shape().get(1).copied().unwrap_or(0);
    let dev = xv.device();
    let wv = weight.map(|w| w.value().clone());
    let bv = bias.map(|b| b.value().clone());
    let ones = Tensor::full(&[c], 1.0, dev)?;
    let zeros = Tensor::zeros(&[c], DType::F32, dev)?;
    let y = rg::group_norm(&xv, groups, wv.as_ref().unwrap_or(&ones), bv.as_ref().unwrap_or(&zeros), eps, residual.map(|r| r.value()))?;
    let has_res = residual.is_some();
    let mut vars = vec![x];
    vars.extend(weight);
    vars.extend(bias);
    vars.extend(residual);
    record("group_norm", &vars, y, move |g, _| {
        // The residual's values do not enter the gradients: x stands in for it (same shape).
        let gr = rg::group_norm_bwd(&xv, groups, wv.as_ref(), bv.as_ref(), eps, has_res.then_some(&xv), g)?;
        let mut out = vec![Some(gr.dx)];
        if wv.is_some() {
            out.push(gr.dweight);
        }
        if bv.is_some() {
            out.push(gr.dbias);
        }
        if has_res {
            out.push(gr.dresidual);
        }
        Ok(out)
    })
}

/// The CP-JKU injection's merge `wx·(x − μx)/(σx + eps) + wf·(f − μf)/(σf + eps)` per (b, c) plane
/// (unbiased std over H·W), `x`, `f` (B, C, H, W); `wx`, `wf` one-element Vars (the learned scalars
/// `weight_x_center`, `weight_soundbeam_features`; read back to the host). Gradients of all four.
pub fn standardize_add(x: &Var, f: &Var, wx: &Var, wf: &Var, eps: f32) -> Result<Var> {
    for (name, w) in [("wx", wx), ("wf", wf)] {
        if w.value().numel() != 1 {
            return Err(Error::Shape { op: "standardize_add", msg: format!("{name} {:?} must have one element", w.shape()) });
        }
    }
    let (a, b) = (scalar_of(wx.value())?, scalar_of(wf.value())?);
    let (xv, fv) = (x.value().clone(), f.value().clone());
    let y = rs::standardize_add(&xv, &fv, a, b, eps)?;
    let (sx, sf) = (wx.shape().to_vec(), wf.shape().to_vec());
    record("standardize_add", &[x, f, wx, wf], y, move |g, _| {
        let gr = rs::standardize_add_bwd(&xv, &fv, a, b, eps, g)?;
        Ok(vec![Some(gr.dx), Some(gr.df), Some(gr.dwx.reshape(&sx)?), Some(gr.dwf.reshape(&sf)?)])
    })
}

/// `nn.PReLU`: `y = x > 0 ? x : a·x`, with `a` one parameter ([1]) or one per channel ((C), dim 1 of
/// x (N, C, …)). Gradients of x and a.
pub fn prelu(x: &Var, a: &Var) -> Result<Var> {
    let (xv, av) = (x.value().clone(), a.value().clone());
    let s = xv.shape();
    // a's broadcast shape against x: [1] for one parameter, else [1, C, 1, …].
    let ab_shape: Vec<usize> = if av.numel() == 1 {
        vec![1]
    } else if s.len() >= 2 && av.shape() == [s[1]] {
        let mut v = vec![1; s.len()];
        v[1] = s[1];
        v
    } else {
        return Err(Error::Shape { op: "prelu", msg: format!("weight {:?} must be [1] or [C] for input {s:?} (channels on dim 1)", av.shape()) });
    };
    let ab = av.reshape(&ab_shape)?;
    let zero = scalar_tensor(0.0, xv.device())?;
    let neg = rb::minimum(&xv, &zero)?;
    let y = rb::add(&rb::maximum(&xv, &zero)?, &rb::mul(&ab, &neg)?)?;
    let a_shape = av.shape().to_vec();
    record("prelu", &[x, a], y, move |g, needs| {
        let dx = if needs[0] {
            // dy where x > 0, else a·dy: gp + a·(dy − gp) with gp = dy·[x > 0].
            let gp = host_map2(&xv, g, |x, g| if x > 0.0 { g } else { 0.0 })?;
            Some(rb::add(&gp, &rb::mul(&ab, &rb::sub(g, &gp)?)?)?)
        } else {
            None
        };
        let da = if needs[1] { Some(reduce_to(&rb::mul(g, &neg)?, &ab_shape)?.reshape(&a_shape)?) } else { None };
        Ok(vec![dx, da])
    })
}
