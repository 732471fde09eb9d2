//! BatchNorm folded to the per-channel `scale`/`shift` that a fused pre-activation reads
//! (`y = x·scale + shift`, the separator's convolutions take them in their input read), in training
//! mode (batch statistics, with their gradient) or evaluation mode (running statistics).
//!
//! [`batch_norm_fold`] over sources x_i (B, C_i, …) read as their channel concatenation (the decoder's
//! upsampled map and skip), with γ, β over the concatenated channels, n = B·Π(…) values per channel:
//! ```text
//! training:  μ = Σx/n,  σ² = Σ(x − μ)²/n (biased, as torch normalises),  r = 1/sqrt(σ² + eps)
//! evaluation: μ, σ² the running mean and variance (constants)
//! scale = γ·r,  shift = β − μ·γ·r                    → one (2, C) Var [scale; shift]
//! ```
//! Backward (gs, gh the gradients of scale and shift): dγ = gs·r − gh·μ·r, dβ = gh; in training mode
//! also dx = dμ/n + dσ²·2(x − μ)/n with dμ = −gh·γ·r and dσ² = −(gs·γ − gh·μ·γ)·r³/2 — per channel an
//! affine map of x, `dx = A_c + B_c·x` (the path of σ² through μ vanishes: Σ(x − μ) = 0). The
//! per-channel algebra is done on the host in f64 (C values). On the CPU the statistics are one pass
//! per (item, channel) plane (f64 sums of x and x², rayon) and dx one fused pass; on GPU devices they
//! are runtime ops (the mean by pairwise / compensated f32 reductions, then the centred squares; dx a
//! broadcast multiply-add), so the op runs on every device.
//!
//! Training mode also returns the batch mean and the *unbiased* variance (n/(n − 1)·σ²), which
//! torch's running statistics take: `running ← (1 − momentum)·running + momentum·batch`
//! ([`update_running`]).

use aural_runtime::ops::binary as rb;
use aural_runtime::ops::reduce as rr;
use aural_runtime::{Error, Result, Tensor};

use crate::tape::record;
use crate::Var;

/// Where the statistics come from.
#[derive(Debug, Clone, Copy)]
pub enum BnStats<'a> {
    /// Training mode: the batch's.
    Batch,
    /// Evaluation mode: the running mean and variance (C) each.
    Running { mean: &'a Tensor, var: &'a Tensor },
}

/// The folded BatchNorm.
pub struct BnFold {
    /// (C).
    pub scale: Var,
    /// (C).
    pub shift: Var,
    /// Training mode: the batch mean and unbiased variance (C) each, on the host.
    pub batch: Option<(Vec<f32>, Vec<f32>)>,
}

/// Per-channel (mean, centred sum of squares, n) of x viewed as (B, C, R), on the host (f64).
fn moments(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::Msg(format!("batch_norm_fold: a source must be (B, C, …), got {s:?}")));
    }
    let (b, c) = (s[0], s[1]);
    let r: usize = s[2..].iter().product();
    let n = b * r;
    if n == 0 {
        return Err(Error::Msg(format!("batch_norm_fold: a source {s:?} has no values per channel")));
    }
    if x.device().is_cpu() {
        use rayon::prelude::*;
        // Σx and Σx² per plane in f64, then per channel: Σ(x − μ)² = Σx² − n·μ².
        let planes: Vec<(f64, f64)> =
            x.cpu_f32()?.par_chunks(r).map(|p| p.iter().fold((0f64, 0f64), |(a, q), &v| (a + v as f64, q + v as f64 * v as f64))).collect();
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for (i, (a, q)) in planes.into_iter().enumerate() {
            sum[i % c] += a;
            sq[i % c] += q;
        }
        let mu: Vec<f64> = sum.iter().map(|v| v / n as f64).collect();
        let css = sq.iter().zip(&mu).map(|(q, m)| (q - n as f64 * m * m).max(0.0)).collect();
        return Ok((mu, css, n));
    }
    let x3 = x.reshape(&[b, c, r])?;
    let sum = rr::sum(&rr::sum(&x3, 2, false)?, 0, false)?.to_vec()?;
    let mu: Vec<f32> = sum.iter().map(|v| (*v as f64 / n as f64) as f32).collect();
    let d = rb::sub(&x3, &Tensor::from_slice(&mu, &[1, c, 1], x.device())?)?;
    let sq = rr::sum(&rr::sum(&rb::mul(&d, &d)?, 2, false)?, 0, false)?.to_vec()?;
    // μ as used (rounded to f32) and Σ(x − μ)² about it.
    Ok((mu.iter().map(|&v| v as f64).collect(), sq.iter().map(|&v| v as f64).collect(), n))
}

/// BatchNorm folded to (scale, shift); see the module doc. `sources` (B, C_i, …) share B and the
/// trailing shape; γ, β (ΣC_i).
pub fn batch_norm_fold(sources: &[&Var], gamma: &Var, beta: &Var, eps: f32, stats: BnStats) -> Result<BnFold> {
    // Evaluation mode reads no source (they may be left out); training mode needs them.
    let ct: usize =
        if sources.is_empty() { gamma.shape().first().copied().unwrap_or(0) } else { sources.iter().map(|v| v.shape().get(1).copied().unwrap_or(0)).sum() };
    if sources.is_empty() && matches!(stats, BnStats::Batch) {
        return Err(Error::Msg("batch_norm_fold: training mode needs the sources (their batch statistics)".into()));
    }
    if gamma.shape() != [ct] || beta.shape() != [ct] {
        return Err(Error::Msg(format!(
            "batch_norm_fold: weight {:?} and bias {:?} must be [{ct}] (the channels of the sources)",
            gamma.shape(),
            beta.shape()
        )));
    }
    let dev = gamma.value().device();
    let g = gamma.value().to_vec()?;
    let bt = beta.value().to_vec()?;
    // Per channel: μ, σ² (what normalises), n.
    let (mu, var, ns): (Vec<f64>, Vec<f64>, Vec<usize>) = match stats {
        BnStats::Batch => {
            let mut mu = Vec::with_capacity(ct);
            let mut var = Vec::with_capacity(ct);
            let mut ns = Vec::with_capacity(ct);
            for s in sources {
                let (m, sq, n) = moments(s.value())?;
                var.extend(sq.iter().map(|v| v / n as f64));
                ns.extend(std::iter::repeat_n(n, m.len()));
                mu.extend(m);
            }
            (mu, var, ns)
        }
        BnStats::Running { mean, var } => {
            if mean.shape() != [ct] || var.shape() != [ct] {
                return Err(Error::Msg(format!("batch_norm_fold: running mean {:?} / var {:?} must be [{ct}]", mean.shape(), var.shape())));
            }
            let f = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_vec()?.into_iter().map(f64::from).collect()) };
            (f(mean)?, f(var)?, vec![0; ct])
        }
    };
    let r: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps as f64).sqrt()).collect();
    let mut y = vec![0f32; 2 * ct];
    for c in 0..ct {
        let sc = g[c] as f64 * r[c];
        y[c] = sc as f32;
        y[ct + c] = (bt[c] as f64 - mu[c] * sc) as f32;
    }
    let y = Tensor::from_slice(&y, &[2, ct], dev)?;
    let batch = matches!(stats, BnStats::Batch).then(|| {
        let m: Vec<f32> = mu.iter().map(|&v| v as f32).collect();
        let v: Vec<f32> = var.iter().zip(&ns).map(|(&v, &n)| (v * n as f64 / (n.max(2) - 1) as f64) as f32).collect();
        (m, v)
    });
    let train = batch.is_some();
    let xs: Vec<Tensor> = if train { sources.iter().map(|v| v.value().clone()).collect() } else { Vec::new() };
    let mut inputs: Vec<&Var> = if train { sources.to_vec() } else { Vec::new() };
    inputs.push(gamma);
    inputs.push(beta);
    let folded = record("batch_norm_fold", &inputs, y, move |gy, needs| {
        let gv = gy.to_vec()?;
        let (gs, gh) = gv.split_at(ct);
        let mut dg = vec![0f32; ct];
        let mut db = vec![0f32; ct];
        let mut a = vec![0f32; ct];
        let mut bb = vec![0f32; ct];
        for c in 0..ct {
            let (gs, gh, gm) = (gs[c] as f64, gh[c] as f64, g[c] as f64);
            dg[c] = (gs * r[c] - gh * mu[c] * r[c]) as f32;
            db[c] = gh as f32;
            if train {
                let n = ns[c] as f64;
                let dmu = -gh * gm * r[c];
                let dr = gs * gm - gh * mu[c] * gm;
                let dvar = -0.5 * dr * r[c] * r[c] * r[c];
                let k = 2.0 * dvar / n;
                bb[c] = k as f32;
                a[c] = (dmu / n - k * mu[c]) as f32;
            }
        }
        let mut out: Vec<Option<Tensor>> = Vec::new();
        let mut off = 0;
        for (i, x) in xs.iter().enumerate() {
            let c = x.shape()[1];
            if needs[i] {
                out.push(Some(affine_channels(x, &bb[off..off + c], &a[off..off + c])?));
            } else {
                out.push(None);
            }
            off += c;
        }
        out.push(Some(Tensor::from_slice(&dg, &[ct], gy.device())?));
        out.push(Some(Tensor::from_slice(&db, &[ct], gy.device())?));
        Ok(out)
    })?;
    let scale = crate::ops::reshape(&crate::ops::slice(&folded, 0, 0, 1)?, &[ct])?;
    let shift = crate::ops::reshape(&crate::ops::slice(&folded, 0, 1, 1)?, &[ct])?;
    Ok(BnFold { scale, shift, batch })
}

/// `x·k[c] + a[c]` over the channel axis 1 of x (B, C, …).
fn affine_channels(x: &Tensor, k: &[f32], a: &[f32]) -> Result<Tensor> {
    let s = x.shape();
    let (b, c) = (s[0], s[1]);
    let r: usize = s[2..].iter().product();
    let dev = x.device();
    if dev.is_cpu() {
        use rayon::prelude::*;
        let xv = x.cpu_f32()?;
        let mut out = vec![0f32; xv.len()];
        out.par_chunks_mut(r.max(1)).zip(xv.par_chunks(r.max(1))).enumerate().for_each(|(i, (o, xp))| {
            let (kc, ac) = (k[i % c], a[i % c]);
            o.iter_mut().zip(xp).for_each(|(o, &v)| *o = v * kc + ac);
        });
        return Tensor::from_vec(out, s);
    }
    let x3 = x.reshape(&[b, c, r])?;
    let y = rb::add(&rb::mul(&x3, &Tensor::from_slice(k, &[1, c, 1], dev)?)?, &Tensor::from_slice(a, &[1, c, 1], dev)?)?;
    y.reshape(s)
}

/// torch's running-statistics update, `running ← (1 − momentum)·running + momentum·batch`, for
/// the running mean and variance (C) each (device tensors; `batch` from [`BnFold::batch`]).
pub fn update_running(running_mean: &Tensor, running_var: &Tensor, batch: &(Vec<f32>, Vec<f32>), momentum: f32) -> Result<(Tensor, Tensor)> {
    let upd = |r: &Tensor, b: &[f32]| -> Result<Tensor> {
        let rv = r.to_vec()?;
        if rv.len() != b.len() {
            return Err(Error::Msg(format!("update_running: running statistics {:?} and the batch's {} channels differ", r.shape(), b.len())));
        }
        let v: Vec<f32> = rv.iter().zip(b).map(|(&r, &b)| (1.0 - momentum) * r + momentum * b).collect();
        Tensor::from_slice(&v, r.shape(), r.device())
    };
    Ok((upd(running_mean, &batch.0)?, upd(running_var, &batch.1)?))
}
