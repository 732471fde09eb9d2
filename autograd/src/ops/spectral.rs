//! The separator's spectral back end on Vars, for training with a waveform loss.
//!
//! [`stft`]: `aural_runtime::ops::stft::stft` of a Var signal; backward its adjoint `stft_bwd`
//! (kernels `stft_frames_bwd_f32_v1`, `stft_ola_bwd_f32_v1`).
//!
//! [`istft`]: `aural_runtime::ops::stft::istft` (torch.istft, periodic Hann, center=True) of the
//! spectrum planes (…, 2, F, T) to (…, length). It is linear in the spectrum; its backward is the
//! adjoint `aural_runtime::ops::stft::istft_bwd`: the waveform gradient divided by the window-sum-
//! square envelope and un-cropped, then per frame the windowed slice's real FFT scaled by c_k/N
//! (c_k = 1 at DC and Nyquist, whose imaginary parts get no gradient, 2 elsewhere). Kernels
//! `istft_ola_bwd_f32_v1`, `istft_frames_bwd_f32_v1` on GPU devices.
//!
//! [`complex_mask`]: `aural_runtime::ops::complex_mask::complex_mask`, the network output's complex
//! masks applied to the mixture's STFT (`spec`, a constant) with the optional out_conv (weight,
//! bias: Vars) and source gate (a constant). Backward: `complex_mask_bwd`, gradients of x (zero at
//! the padded frames), the weight and the bias (formulas in its module doc). Kernels
//! `complex_mask_data_bwd_f32_v1`, `complex_mask_weight_bwd_f32_v1`, `complex_mask_wsum_bwd_f32_v1`.
//!
//! [`magnitude_input`]: the network input (|X|·scale + shift, time-padded, Nyquist bin dropped) with
//! bn0's folded scale and shift as Vars; the spectrum is a constant.

use aural_runtime::ops::complex_mask::{self as cm, OutConv};
use aural_runtime::ops::reduce as rr;
use aural_runtime::ops::shape as rs;
use aural_runtime::ops::stft::{self as st, StftOpts};
use aural_runtime::{Result, Tensor};

use crate::tape::record;
use crate::Var;

/// `stft(x, o)` on a Var: (…, L) → (…, 2, F, T); backward `stft_bwd` (the adjoint).
pub fn stft(x: &Var, o: &StftOpts) -> Result<Var> {
    let y = st::stft(x.value(), o)?;
    let len = *x.shape().last().unwrap_or(&0);
    let o = *o;
    record("stft", &[x], y, move |g, _| Ok(vec![Some(st::stft_bwd(g, &o, len)?)]))
}

/// `istft(spec, o, Some(length))` on a Var: (…, 2, F, T) → (…, length).
pub fn istft(spec: &Var, o: &StftOpts, length: usize) -> Result<Var> {
    let y = st::istft(spec.value(), o, Some(length))?;
    let frames = *spec.shape().last().unwrap_or(&0);
    let o = *o;
    record("istft", &[spec], y, move |g, _| Ok(vec![Some(st::istft_bwd(g, &o, frames)?)]))
}

/// `complex_mask(spec, x, targets, out_conv, gate)` on Vars: `x` (B, S·C·3, T′, F − 1) the network
/// output, `out_conv` (weight (O, C) or (O, C, 1, 1), bias (O)); `spec` (B, C, 2, F, T) and `gate`
/// (B, S) are constants. Output (B, S, O, 2, F, T). Inputs recorded: x, then weight and bias.
pub fn complex_mask(spec: &Tensor, x: &Var, targets: usize, out_conv: Option<(&Var, &Var)>, gate: Option<&Tensor>) -> Result<Var> {
    let sv = spec.clone();
    let xv = x.value().clone();
    let wb = out_conv.map(|(w, b)| (w.value().clone(), b.value().clone()));
    let gv = gate.cloned();
    let y = {
        let oc = wb.as_ref().map(|(w, b)| OutConv { weight: w, bias: b });
        cm::complex_mask(&sv, &xv, targets, oc.as_ref(), gv.as_ref())?
    };
    let mut vars: Vec<&Var> = vec![x];
    if let Some((w, b)) = out_conv {
        vars.extend([w, b]);
    }
    record("complex_mask", &vars, y, move |g, _| {
        let oc = wb.as_ref().map(|(w, b)| OutConv { weight: w, bias: b });
        let gr = cm::complex_mask_bwd(&sv, &xv, targets, oc.as_ref(), gv.as_ref(), g)?;
        let mut out = vec![Some(gr.dx)];
        if wb.is_some() {
            out.push(gr.dweight);
            out.push(gr.dbias);
        }
        Ok(out)
    })
}

/// `aural_runtime::ops::complex_mask::magnitude_input` with bn0's folded `scale`, `shift` (F) as
/// Vars (the spectrum is a constant: the mixture needs no gradient). Backward:
/// dshift[f] = Σ_{b,c,t<T} g[b,c,t,f], dscale[f] = Σ g·|X| over the same (the padded frames are
/// constant zeros), both 0 at the Nyquist bin f = F − 1, which the network does not read.
pub fn magnitude_input(spec: &Tensor, scale: &Var, shift: &Var, net_frames: usize) -> Result<Var> {
    let y = cm::magnitude_input(spec, scale.value(), shift.value(), net_frames)?;
    let spec = spec.clone();
    record("magnitude_input", &[scale, shift], y, move |g, needs| {
        let s = spec.shape();
        let (b, c, f, t) = (s[0], s[1], s[3], s[4]);
        let dev = g.device();
        let fo = f - 1;
        let pad = |v: Tensor| -> Result<Tensor> { rs::concat(&[&v, &Tensor::zeros(&[1], aural_runtime::DType::F32, dev)?], 0) };
        let rows = |x: &Tensor| -> Result<Tensor> { rr::sum(&rs::slice(x, 2, 0, t)?.reshape(&[b * c * t, fo])?, 0, false) };
        let dscale = if needs[0] {
            let ones = Tensor::full(&[f], 1.0, dev)?;
            let zeros = Tensor::zeros(&[f], aural_runtime::DType::F32, dev)?;
            let mag = cm::magnitude_input(&spec, &ones, &zeros, net_frames)?;
            Some(pad(rows(&aural_runtime::ops::binary::mul(g, &mag)?)?)?)
        } else {
            None
        };
        let dshift = if needs[1] { Some(pad(rows(g)?)?) } else { None };
        Ok(vec![dscale, dshift])
    })
}
