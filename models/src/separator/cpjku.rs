//! The CP-JKU extensions of ResUNet30 (seed 003; DESIGN.md §6.5): time-FiLM from the stage-2 SED
//! model's strong logits, the injection of its hidden states at the bottleneck, the dual-path RNN
//! there. (The iterative wrapper is in [`super::resunet`]: it only adds an input channel and a loop.)
//!
//! - Time-FiLM: the logits row of each slot's queried class, (B, S, T_sed) (zeros for a silent slot;
//!   thresholded at 0 with `binarize_sed_preds`) → per frame Linear(S → 512)-LN-ReLU-Linear-LN-ReLU
//!   (`time_embedding.{0,1,3,4}`, a [`MlpEmbedding`]) → the *label* FiLM layers (`film.*`, so their bias counts twice;
//!   the checkpoint's `time_film.*` are dead) → β_t (B, C, T_sed) per FiLM point → bilinear resize
//!   along time (align_corners=False) to the input rows of the convolution it feeds (the padded
//!   length) → the conv's fused pre-activation: BN(x) + β + β_t(t) ("additive"), or
//!   σ(β_t(t))·(BN(x) + β) ("multiplicative").
//! - Injection: hidden states (B, layers, tokens, dim) → Σ softmax(`soundbeam_weights`)·h → (B, dim,
//!   grid_t, grid_f) → `downsample_bn` + LeakyReLU(0.01) fused into a bilinear resize to the
//!   bottleneck grid → 1×1 `downsample_conv` (dim → C) → "add": each of the bottleneck and the
//!   injected map standardised per (item, channel) over the grid (unbiased std + 1e-6), then
//!   `weight_x_center`·x̂ + `weight_soundbeam_features`·f̂; "concat": `merge_conv`(LeakyReLU(
//!   `merge_bn`([x, f]))), the concat read without a copy.
//! - DPRNN (`DPRNN.0.*`): per block, rows (along time, batch B·F) then columns (along frequency, batch
//!   B·T): a bidirectional GRU (`{row,col}_rnn.{i}.rnn`, 2 layers) + Linear(2H → C) (`.proj`) +
//!   GroupNorm(1, C, eps 1e-8) + residual (fused into the GroupNorm); then PReLU (one slope,
//!   `output.0`) fused as the pre-activation of the 1×1 conv `output.1`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use aural_runtime::ops::conv2d::{conv2d, Conv2d, PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::ops::groupnorm::group_norm;
use aural_runtime::ops::gru::{gru, GruDirWeights, GruWeights};
use aural_runtime::ops::matmul::{Activation, Linear};
use aural_runtime::ops::resize::resize_bilinear;
use aural_runtime::ops::shape::permute;
use aural_runtime::ops::standardize::standardize_add;
use aural_runtime::ops::unary::sigmoid;
use aural_runtime::{Device, Error, Result, Tensor};

use super::config::{DprnnConfig, InjectConfig, InjectMethod, SeparatorConfig, TimeFilmKind};
use super::film::{Film, MlpEmbedding};
use super::resunet::FoldedBn;
use crate::params::Params;

/// LeakyReLU slope of the injection's BatchNorm and of the concat merge.
const SLOPE: f32 = 0.01;

/// What the CP-JKU separator takes besides the mixture and the label vector: the stage-2 SED model's
/// outputs for the mixture, and the number of passes of the iterative model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// (B, classes, frames): strong logits (250 frames for 10 s), for time-FiLM.
    pub strong_logits: Option<&'a Tensor>,
    /// (B, layers, tokens, dim): hidden states (cls removed), for the injection.
    pub embeddings: Option<&'a Tensor>,
    /// Passes of the iterative model; None: the config's `iterations`.
    pub iterations: Option<usize>,
}

/// The per-frame logits of each slot's queried class: (B, S, T) host values, row-major.
/// A slot is the `classes`-wide part of the label vector; its class is the argmax, a silent slot
/// (all zeros) gives zeros.
pub fn selected_logits(labels: &[f32], b: usize, sources: usize, logits: &Tensor, binarize: bool) -> Result<(Vec<f32>, usize)> {
    let s = logits.shape();
    if s.len() != 3 || s[0] != b || s[2] == 0 {
        return Err(Error::Msg(format!("separator: strong logits must be ({b}, classes, frames), got {s:?}")));
    }
    let (classes, frames) = (s[1], s[2]);
    if labels.len() != b * sources * classes {
        return Err(Error::Msg(format!(
            "separator: the strong logits have {classes} classes but the label vector has {} entries per slot",
            labels.len() / (b * sources).max(1)
        )));
    }
    let v = logits.to_vec()?;
    let mut out = vec![0f32; b * sources * frames];
    for bi in 0..b {
        for si in 0..sources {
            let slot = &labels[(bi * sources + si) * classes..][..classes];
            if slot.iter().all(|&x| x == 0.0) {
                continue;
            }
            // torch.argmax: the first maximum.
            let mut k = 0;
            for (i, &x) in slot.iter().enumerate() {
                if x > slot[k] {
                    k = i;
                }
            }
            let row = &v[(bi * classes + k) * frames..][..frames];
            let dst = &mut out[(bi * sources + si) * frames..][..frames];
            for (d, &x) in dst.iter_mut().zip(row) {
                *d = if binarize { f32::from(x > 0.0) } else { x };
            }
        }
    }
    Ok((out, frames))
}

/// The time-FiLM values of one forward: β_t (B, C, T_sed, 1) of every FiLM point, resized on demand
/// to the rows a convolution reads (cached: the iterative model reuses them every pass).
pub struct TimeBetas {
    pub mode: TimeFilmKind,
    betas: BTreeMap<String, Tensor>,
    resized: RefCell<BTreeMap<(String, usize), Tensor>>,
}

impl TimeBetas {
    /// β_t of every FiLM layer for the selected logits (B, S, T) (host, row-major).
    pub fn new(mode: TimeFilmKind, emb: &MlpEmbedding, film: &Film, sel: &[f32], (b, s, t): (usize, usize, usize), device: Device) -> Result<TimeBetas> {
        // (B, S, T) → (B·T, S): one embedding per frame.
        let mut frames = vec![0f32; b * t * s];
        for bi in 0..b {
            for si in 0..s {
                for ti in 0..t {
                    frames[(bi * t + ti) * s + si] = sel[(bi * s + si) * t + ti];
                }
            }
        }
        let e = emb.forward(&Tensor::from_slice(&frames, &[b * t, s], device)?)?;
        let mut betas = BTreeMap::new();
        for (path, layer) in &film.layers {
            let beta = layer.forward(&e, Activation::None)?; // (B·T, C)
            let c = beta.shape()[1];
            let beta = permute(&beta.reshape(&[b, t, c])?, &[0, 2, 1])?.reshape(&[b, c, t, 1])?;
            betas.insert(path.clone(), beta);
        }
        Ok(TimeBetas { mode, betas, resized: RefCell::new(BTreeMap::new()) })
    }

    /// The values (B, C, rows) of FiLM point `path` at `rows` input rows: β_t resized (additive) or
    /// σ(β_t resized) (multiplicative).
    fn values(&self, path: &str, rows: usize) -> Result<Tensor> {
        let key = (path.to_string(), rows);
        if let Some(t) = self.resized.borrow().get(&key) {
            return Ok(t.clone());
        }
        let beta = self.betas.get(path).ok_or_else(|| Error::Msg(format!("separator: no time-FiLM β for '{path}'")))?;
        let (b, c) = (beta.shape()[0], beta.shape()[1]);
        let mut v = resize_bilinear(beta, (rows, 1), None)?.reshape(&[b, c, rows])?;
        if self.mode == TimeFilmKind::Multiplicative {
            v = sigmoid(&v)?;
        }
        self.resized.borrow_mut().insert(key, v.clone());
        Ok(v)
    }

    /// The conv pre-activation's time term of FiLM point `path` for an input of `rows` rows; the
    /// returned tensor must outlive the [`TimeFilm`] built from it.
    pub(crate) fn term(&self, path: &str, rows: usize) -> Result<(Tensor, TimeFilmMode)> {
        let mode = match self.mode {
            TimeFilmKind::Additive => TimeFilmMode::Add,
            TimeFilmKind::Multiplicative => TimeFilmMode::Gate,
        };
        Ok((self.values(path, rows)?, mode))
    }
}

/// A pre-activation with an optional time term.
pub(crate) fn pre_act<'a>(scale: &'a Tensor, shift: &'a Tensor, slope: f32, time: Option<&'a (Tensor, TimeFilmMode)>) -> PreAct<'a> {
    PreAct { scale, shift, slope, time: time.map(|(v, mode)| TimeFilm { values: v, mode: *mode }) }
}

/// How the injected map joins the bottleneck.
#[derive(Debug, Clone)]
pub enum Merge {
    /// (weight_x_center, weight_soundbeam_features).
    Add(f32, f32),
    /// merge_bn (2C) folded, merge_conv (C, 2C, 1, 1) + bias.
    Concat(FoldedBn, (Tensor, Tensor)),
}

/// The hidden-state injection at the bottleneck.
#[derive(Debug, Clone)]
pub struct Injection {
    pub config: InjectConfig,
    /// softmax(soundbeam_weights), host values.
    pub layer_weights: Vec<f64>,
    pub bn: FoldedBn,
    /// downsample_conv (C, dim, 1, 1) + bias.
    pub conv: (Tensor, Tensor),
    pub merge: Merge,
}

fn scalar(p: &mut Params, name: &str) -> Result<f32> {
    // A 0-d parameter (torch.tensor(1.0)); a 1-element one is accepted too.
    let shape = p.tensors.get(name).map(|t| t.shape().to_vec()).unwrap_or_default();
    let want: &[usize] = if shape == [1] { &[1] } else { &[] };
    Ok(p.take(name, want)?.to_vec()?[0])
}

impl Injection {
    pub(crate) fn load(p: &mut Params, cfg: &SeparatorConfig, ic: &InjectConfig) -> Result<Injection> {
        let bp = cfg.base_prefix();
        let c = cfg.channels[6];
        let w = p.take("soundbeam_weights", &[ic.layers])?.to_vec()?;
        let m = w.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let e: Vec<f64> = w.iter().map(|&x| (x as f64 - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        let layer_weights = e.iter().map(|x| x / sum).collect();
        let bn = FoldedBn::load(p, &format!("{bp}downsample_bn"), ic.dim)?;
        let conv = (p.take(&format!("{bp}downsample_conv.weight"), &[c, ic.dim, 1, 1])?, p.take(&format!("{bp}downsample_conv.bias"), &[c])?);
        let merge = match ic.method {
            InjectMethod::Add => Merge::Add(scalar(p, &format!("{bp}weight_x_center"))?, scalar(p, &format!("{bp}weight_soundbeam_features"))?),
            InjectMethod::Concat => Merge::Concat(
                FoldedBn::load(p, &format!("{bp}merge_bn"), 2 * c)?,
                (p.take(&format!("{bp}merge_conv.weight"), &[c, 2 * c, 1, 1])?, p.take(&format!("{bp}merge_conv.bias"), &[c])?),
            ),
        };
        Ok(Injection { config: ic.clone(), layer_weights, bn, conv, merge })
    }

    /// The weighted hidden states as a map (B, dim, grid_t, grid_f), from (B, layers, tokens, dim).
    pub fn features_map(&self, embeddings: &Tensor, device: Device) -> Result<Tensor> {
        let ic = &self.config;
        let s = embeddings.shape();
        if s.len() != 4 || s[1] != ic.layers || s[2] != ic.tokens || s[3] != ic.dim {
            return Err(Error::Msg(format!("separator: embeddings must be (batch, {} layers, {} tokens, {} dim), got {s:?}", ic.layers, ic.tokens, ic.dim)));
        }
        let b = s[0];
        let (gf, gt, d) = (ic.grid[0], ic.grid[1], ic.dim);
        let v = embeddings.to_vec()?;
        let per = ic.tokens * d;
        let mut out = vec![0f32; b * d * gt * gf];
        let mut acc = vec![0f64; per];
        for bi in 0..b {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (l, &wl) in self.layer_weights.iter().enumerate() {
                for (a, &x) in acc.iter_mut().zip(&v[(bi * ic.layers + l) * per..][..per]) {
                    *a += wl * x as f64;
                }
            }
            // token f·gt + t, feature j → [b, j, t, f].
            for f in 0..gf {
                for t in 0..gt {
                    let tok = &acc[(f * gt + t) * d..][..d];
                    for (j, &x) in tok.iter().enumerate() {
                        out[((bi * d + j) * gt + t) * gf + f] = x as f32;
                    }
                }
            }
        }
        Tensor::from_slice(&out, &[b, d, gt, gf], device)
    }

    /// The bottleneck `x` (B, C, T, F) merged with the injected map `feats` (B, dim, grid_t, grid_f).
    pub fn merge(&self, x: &Tensor, feats: &Tensor) -> Result<Tensor> {
        let (t, f) = (x.shape()[2], x.shape()[3]);
        let pre = PreAct { scale: &self.bn.scale, shift: &self.bn.shift, slope: SLOPE, time: None };
        let g = resize_bilinear(feats, (t, f), Some(&pre))?;
        let g = conv2d(&[&g], &Conv2d { weight: &self.conv.0, bias: Some(&self.conv.1), pre: None, residual: None })?;
        match &self.merge {
            Merge::Add(wx, wf) => standardize_add(x, &g, *wx, *wf, 1e-6),
            Merge::Concat(bn, (w, b)) => {
                let pre = PreAct { scale: &bn.scale, shift: &bn.shift, slope: SLOPE, time: None };
                conv2d(&[x, &g], &Conv2d { weight: w, bias: Some(b), pre: Some(pre), residual: None })
            }
        }
    }
}

/// One row or column path of a DPRNN block.
#[derive(Debug, Clone)]
pub struct DualPathRnn {
    pub rnn: GruWeights,
    pub proj: Linear,
    pub norm: (Tensor, Tensor),
}

impl DualPathRnn {
    fn load(p: &mut Params, prefix: &str, norm: &str, dc: &DprnnConfig) -> Result<DualPathRnn> {
        let (c, h) = (dc.channels, dc.hidden);
        let mut layers = Vec::new();
        for l in 0..dc.rnn_layers {
            let inp = if l == 0 { c } else { 2 * h };
            let mut dirs = Vec::new();
            for sfx in ["", "_reverse"] {
                let n = |w: &str| format!("{prefix}.rnn.{w}_l{l}{sfx}");
                dirs.push(GruDirWeights {
                    w_ih: p.take(&n("weight_ih"), &[3 * h, inp])?,
                    w_hh: p.take(&n("weight_hh"), &[3 * h, h])?,
                    b_ih: Some(p.take(&n("bias_ih"), &[3 * h])?),
                    b_hh: Some(p.take(&n("bias_hh"), &[3 * h])?),
                });
            }
            layers.push(dirs);
        }
        Ok(DualPathRnn { rnn: GruWeights::new(layers)?, proj: p.linear(&format!("{prefix}.proj"), c, 2 * h)?, norm: p.norm(norm, c)? })
    }

    /// x (B, C, T, F) + GroupNorm(proj(BiGRU(x along `axis`))): `axis` 2 runs along time (rows), 3 along
    /// frequency (columns).
    fn forward(&self, x: &Tensor, axis: usize) -> Result<Tensor> {
        let s = x.shape();
        let (b, c, t, f) = (s[0], s[1], s[2], s[3]);
        // Sequences of the chosen axis, batched over the other one: (B, other, seq, C).
        let (order, other, seq) = if axis == 2 { ([0, 3, 2, 1], f, t) } else { ([0, 2, 3, 1], t, f) };
        let xs = permute(x, &order)?.reshape(&[b * other, seq, c])?;
        let y = gru(&xs, &self.rnn, None, true)?;
        let y = self.proj.forward(&y.reshape(&[b * other * seq, y.shape()[2]])?, Activation::None)?;
        // Back to (B, C, T, F): the inverse of `order`.
        let back = if axis == 2 { [0, 3, 2, 1] } else { [0, 3, 1, 2] };
        let y = permute(&y.reshape(&[b, other, seq, c])?, &back)?;
        group_norm(&y, 1, &self.norm.0, &self.norm.1, 1e-8, Some(x))
    }
}

/// The dual-path RNN of the bottleneck (`DPRNN.0.*`).
#[derive(Debug, Clone)]
pub struct Dprnn {
    /// (row, column) of every block.
    pub blocks: Vec<(DualPathRnn, DualPathRnn)>,
    /// PReLU's slope, then the 1×1 conv (C, C, 1, 1) + bias.
    pub prelu: f32,
    pub ones: Tensor,
    pub zeros: Tensor,
    pub out: (Tensor, Tensor),
}

impl Dprnn {
    pub(crate) fn load(p: &mut Params, cfg: &SeparatorConfig, dc: &DprnnConfig) -> Result<Dprnn> {
        let pre = format!("{}DPRNN.0", cfg.base_prefix());
        let mut blocks = Vec::new();
        for i in 0..dc.blocks {
            blocks.push((
                DualPathRnn::load(p, &format!("{pre}.row_rnn.{i}"), &format!("{pre}.row_norm.{i}"), dc)?,
                DualPathRnn::load(p, &format!("{pre}.col_rnn.{i}"), &format!("{pre}.col_norm.{i}"), dc)?,
            ));
        }
        let prelu = p.take(&format!("{pre}.output.0.weight"), &[1])?.to_vec()?[0];
        let c = dc.channels;
        let out = (p.take(&format!("{pre}.output.1.weight"), &[c, c, 1, 1])?, p.take(&format!("{pre}.output.1.bias"), &[c])?);
        let ones = Tensor::from_slice(&vec![1f32; c], &[c], p.device)?;
        let zeros = Tensor::from_slice(&vec![0f32; c], &[c], p.device)?;
        Ok(Dprnn { blocks, prelu, ones, zeros, out })
    }

    /// x (B, C, T, F) → (B, C, T, F).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (row, col) in &self.blocks {
            x = row.forward(&x, 2)?;
            x = col.forward(&x, 3)?;
        }
        // PReLU with one slope is the LeakyReLU of the conv's pre-activation (scale 1, shift 0).
        let pre = PreAct { scale: &self.ones, shift: &self.zeros, slope: self.prelu, time: None };
        conv2d(&[&x], &Conv2d { weight: &self.out.0, bias: Some(&self.out.1), pre: Some(pre), residual: None })
    }
}
