//! The ResUNet30 separator as a differentiable graph: the same model as [`ResUNet`], written with
//! `aural_autograd` ops over a [`ParamStore`] whose names are the checkpoint's (`base.…`, `film.…`,
//! `label_embedding.…`), so gradients, optimizer state and saved checkpoints address parameters by the
//! names the baseline's `state_dict()` has.
//!
//! BatchNorm runs in training mode (batch statistics, gradients through them; the running statistics
//! are updated as torch does with momentum 0.01, [`TrainableSeparator::apply_bn_stats`]) or in
//! evaluation mode (running statistics). Each BatchNorm is folded into the scale/shift that the fused
//! pre-activation of the next convolution reads ([`batch_norm_fold`]), so no normalised map is
//! materialised, in the forward or the backward. bn0 normalises the mixture's magnitudes over
//! (B, C, T) per frequency bin before the time padding, as the baseline does.
//!
//! What is trained: every tensor the model reads, except the running statistics. The dead tensors of
//! the baseline's checkpoints (decoder `bn2`, the decoders' FiLM `beta2`, torchlibrosa's STFT buffers,
//! `num_batches_tracked`) are kept in [`TrainableSeparator::extra`] and written back on save. The
//! mixture's STFT needs no gradient; the waveform's gradient reaches the network through the iSTFT's
//! and the complex mask's backward rules.
//!
//! Every architecture [`ResUNet`] runs: the DCASE 2025 baseline's ResUNet30 / ResUNetK, AudioSep's
//! ResUNet30 (label or query conditioning, with or without `out_conv`), and CP-JKU's extensions
//! ([`super::cpjku`]): time-FiLM (the time embedding and the label FiLM layers on the SED logits,
//! resized bilinearly into each convolution's fused pre-activation), the injection (softmax layer
//! weights, `downsample_bn` in the same BatchNorm mode as the rest, bilinear resize, 1×1 conv, the
//! standardised "add" or the BatchNorm'd "concat" merge), the DPRNN (BiGRU rows and columns, Linear,
//! GroupNorm with the residual, PReLU, 1×1 conv) and the iterative model: its earlier passes run
//! without a tape (their BatchNorms still use and update batch statistics in training mode, as torch
//! does under `no_grad`), the gradient flows through the last pass only, the feedback detached — the
//! CP-JKU recipe, which draws the number of passes at random per step (the caller's choice here).

use std::collections::BTreeMap;
use std::path::Path;

use aural_autograd::ops::{self, batch_norm_fold, BnStats};
use aural_autograd::{ParamStore, Tape, Var};
use aural_runtime::ops::stft::{stft, StftOpts};
use aural_runtime::{Device, Error, Result, Tensor};

use std::cell::RefCell;

use aural_autograd::ops::{GruDirParams, GruParams};
use aural_runtime::ops::conv2d::TimeFilmMode;

use super::config::{Conditioning, DprnnPosition, InjectMethod, SeparatorConfig, TimeFilmKind, TIME_MULTIPLE};
use super::cpjku::{selected_logits, Conditions};
use super::resunet::{ignorable, source_gate, ResUNet};

/// LeakyReLU slope of every pre-activation.
const SLOPE: f32 = 0.01;
/// BatchNorm eps (torch's default).
const BN_EPS: f32 = 1e-5;
/// BatchNorm momentum of the running statistics (every BatchNorm of ResUNet30).
pub const BN_MOMENTUM: f32 = 0.01;

/// Every BatchNorm's batch mean and unbiased variance of a training-mode pass, by prefix, in the
/// order they ran.
pub type BnBatchStats = Vec<(String, (Vec<f32>, Vec<f32>))>;

/// Training (batch statistics) or evaluation (running statistics) BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    Train,
    Eval,
}

/// One ConvBlockRes: its checkpoint prefix, FiLM path and whether it has a 1×1 shortcut.
#[derive(Debug, Clone)]
struct Block {
    prefix: String,
    path: String,
    shortcut: bool,
}

/// A trainable separator. Cloning shares nothing mutable.
#[derive(Debug, Clone)]
pub struct TrainableSeparator {
    pub config: SeparatorConfig,
    pub store: ParamStore,
    /// BatchNorm running (mean, variance) by BatchNorm prefix (`base.bn0`, …), on the device.
    pub running: BTreeMap<String, (Tensor, Tensor)>,
    /// Checkpoint tensors that are not parameters (dead or derived), on the host, written back on save.
    pub extra: BTreeMap<String, Tensor>,
    pub device: Device,
    encoders: Vec<(Block, (usize, usize))>,
    /// (prefix of the decoder block, block).
    decoders: Vec<(String, Block)>,
}

/// The outputs of one forward pass.
pub struct SepTrainOutput {
    /// (B, S, O, L).
    pub waveform: Var,
    /// Training mode: every BatchNorm's batch mean and unbiased variance, by prefix (for
    /// [`TrainableSeparator::apply_bn_stats`]).
    pub bn_stats: BnBatchStats,
}

fn f32_on(t: &Tensor, device: Device) -> Result<Tensor> {
    let t = match t.dtype() {
        aural_runtime::DType::F32 => t.clone(),
        aural_runtime::DType::F16 => Tensor::from_vec(t.to_vec()?, t.shape())?,
    };
    t.to_device(device)
}

impl TrainableSeparator {
    /// Loads a checkpoint directory (validated exactly as [`ResUNet::load`]).
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<TrainableSeparator> {
        let dir = dir.as_ref();
        let config = SeparatorConfig::from_file(dir.join("config.json"))?;
        let (tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
        TrainableSeparator::from_tensors(config, tensors, &st, device)
    }

    /// The model from a config and named tensors (names and shapes checked as [`ResUNet::from_tensors`]).
    pub fn from_tensors(config: SeparatorConfig, tensors: BTreeMap<String, Tensor>, st: &Path, device: Device) -> Result<TrainableSeparator> {
        let checked = ResUNet::from_tensors(config.clone(), &tensors, st, Device::Cpu)?;
        let bp = config.base_prefix();
        let mut running = BTreeMap::new();
        let mut store = ParamStore::new();
        let mut extra = BTreeMap::new();
        // A BatchNorm the model reads keeps its running statistics apart (they are not parameters).
        let used_bn = |prefix: &str| {
            let w = format!("{prefix}.weight");
            !ignorable(&w) && !checked.unexpected.contains(&w) && tensors.contains_key(&w)
        };
        for (n, t) in &tensors {
            let stat = n.strip_suffix(".running_mean").or_else(|| n.strip_suffix(".running_var"));
            match stat {
                Some(prefix) if used_bn(prefix) => {
                    if n.ends_with(".running_mean") {
                        let var = tensors
                            .get(&format!("{prefix}.running_var"))
                            .ok_or_else(|| Error::Msg(format!("{}: '{prefix}.running_var' is missing", st.display())))?;
                        running.insert(prefix.to_string(), (f32_on(t, device)?, f32_on(var, device)?));
                    }
                }
                _ if stat.is_some() || ignorable(n) || checked.unexpected.contains(n) => {
                    extra.insert(n.clone(), t.clone());
                }
                _ => {
                    store.insert(n.clone(), f32_on(t, device)?);
                }
            }
        }
        let mut encoders = Vec::new();
        for (k, &pool) in super::resunet::POOLS.iter().enumerate() {
            let name = if k < 6 { format!("encoder_block{}", k + 1) } else { "conv_block7a".to_string() };
            let prefix = format!("{bp}{name}.conv_block1");
            let shortcut = store.contains(&format!("{prefix}.shortcut.weight"));
            encoders.push((Block { prefix, path: format!("{name}->conv_block1"), shortcut }, pool));
        }
        let decoders = (1..=6)
            .map(|k| {
                let prefix = format!("{bp}decoder_block{k}");
                let bprefix = format!("{prefix}.conv_block2");
                let shortcut = store.contains(&format!("{bprefix}.shortcut.weight"));
                (prefix, Block { prefix: bprefix, path: format!("decoder_block{k}->conv_block2"), shortcut })
            })
            .collect();
        Ok(TrainableSeparator { config, store, running, extra, device, encoders, decoders })
    }

    /// Every tensor of a checkpoint: `store`'s parameters, the running statistics and the extra tensors.
    pub fn tensors<'a>(&'a self, store: &'a ParamStore) -> impl Iterator<Item = (String, &'a Tensor)> + 'a {
        store
            .iter()
            .map(|(k, v)| (k.clone(), v.value()))
            .chain(self.running.iter().flat_map(|(p, (m, v))| [(format!("{p}.running_mean"), m), (format!("{p}.running_var"), v)]))
            .chain(self.extra.iter().map(|(k, v)| (k.clone(), v)))
    }

    /// Writes a checkpoint directory `aural separate --model` loads (config.json, model.safetensors).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::File { path: dir.display().to_string(), msg: e.to_string() })?;
        let json = serde_json::to_string_pretty(&self.config).map_err(|e| Error::Msg(e.to_string()))?;
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, json).map_err(|e| Error::File { path: cfg.display().to_string(), msg: e.to_string() })?;
        let host: Vec<(String, Tensor)> = self.tensors(&self.store).map(|(k, t)| Ok((k, t.to_device(Device::Cpu)?))).collect::<Result<_>>()?;
        aural_runtime::safetensors_io::save(dir.join("model.safetensors"), host.iter().map(|(k, t)| (k.as_str(), t)))
    }

    /// The inference model of the current weights and running statistics.
    pub fn inference(&self, device: Device) -> Result<ResUNet> {
        let t: BTreeMap<String, Tensor> = self.tensors(&self.store).map(|(k, t)| (k, t.clone())).collect();
        ResUNet::from_tensors(self.config.clone(), &t, Path::new("(training weights)"), device)
    }

    /// torch's running-statistics update of every BatchNorm of a training-mode pass.
    pub fn apply_bn_stats(&mut self, stats: &BnBatchStats) -> Result<()> {
        for (prefix, batch) in stats {
            let (m, v) = self.running.get(prefix).ok_or_else(|| Error::Msg(format!("no running statistics for BatchNorm '{prefix}'")))?;
            let upd = ops::batchnorm::update_running(m, v, batch, BN_MOMENTUM)?;
            self.running.insert(prefix.clone(), upd);
        }
        Ok(())
    }

    fn p(&self, tape: &Tape, name: &str) -> Result<Var> {
        Ok(tape.watch(&self.store.get(name)?))
    }

    pub fn stft_opts(&self) -> StftOpts {
        StftOpts::new(self.config.window_size, self.config.hop_size)
    }

    /// BatchNorm `prefix` over the channel concatenation of `sources`, folded: (scale (C), shift (C)).
    fn bn(&self, tape: &Tape, prefix: &str, sources: &[&Var], mode: BnMode, stats: &mut BnBatchStats) -> Result<(Var, Var)> {
        let (g, b) = (self.p(tape, &format!("{prefix}.weight"))?, self.p(tape, &format!("{prefix}.bias"))?);
        let st = match mode {
            BnMode::Train => BnStats::Batch,
            BnMode::Eval => {
                let (m, v) = self.running.get(prefix).ok_or_else(|| Error::Msg(format!("no running statistics for BatchNorm '{prefix}'")))?;
                BnStats::Running { mean: m, var: v }
            }
        };
        let f = batch_norm_fold(sources, &g, &b, BN_EPS, st)?;
        if let Some(b) = f.batch {
            stats.push((prefix.to_string(), b));
        }
        Ok((f.scale, f.shift))
    }

    /// ConvBlockRes over the channel concatenation of `inputs` (with time-FiLM when configured).
    fn block(&self, tape: &Tape, blk: &Block, inputs: &[&Var], net: &Net, mode: BnMode, stats: &mut BnBatchStats) -> Result<Var> {
        let beta = |k: &str| -> Result<(String, &Var)> {
            let path = format!("{}->{k}", blk.path);
            let v = net.betas.get(&path).ok_or_else(|| Error::Msg(format!("separator: no FiLM layer 'film.{path}'")))?;
            Ok((path, v))
        };
        let rows = inputs[0].shape()[2];
        let (p1, b1) = beta("beta1")?;
        let (p2, b2) = beta("beta2")?;
        let t1 = net.time.map(|t| t.term(&p1, rows)).transpose()?;
        let t2 = net.time.map(|t| t.term(&p2, rows)).transpose()?;
        let (s1, h1) = self.bn(tape, &format!("{}.bn1", blk.prefix), inputs, mode, stats)?;
        let h1 = ops::add(&h1, b1)?;
        let x = ops::conv2d(
            inputs,
            &self.p(tape, &format!("{}.conv1.weight", blk.prefix))?,
            None,
            Some((&s1, &h1, SLOPE, t1.as_ref().map(|(v, m)| (v, *m)))),
            None,
        )?;
        let residual = if blk.shortcut {
            let (w, b) = (self.p(tape, &format!("{}.shortcut.weight", blk.prefix))?, self.p(tape, &format!("{}.shortcut.bias", blk.prefix))?);
            ops::conv2d(inputs, &w, Some(&b), None, None)?
        } else {
            inputs[0].clone()
        };
        let (s2, h2) = self.bn(tape, &format!("{}.bn2", blk.prefix), &[&x], mode, stats)?;
        let h2 = ops::add(&h2, b2)?;
        ops::conv2d(
            &[&x],
            &self.p(tape, &format!("{}.conv2.weight", blk.prefix))?,
            None,
            Some((&s2, &h2, SLOPE, t2.as_ref().map(|(v, m)| (v, *m)))),
            Some(&residual),
        )
    }

    /// The condition (B, condition_size) of a label vector or a query, on `tape`.
    fn condition(&self, tape: &Tape, cond: &Tensor) -> Result<Var> {
        let x = tape.constant(cond.to_device(self.device)?);
        if self.config.conditioning == Conditioning::Query {
            return Ok(x);
        }
        self.mlp(tape, "label_embedding", x)
    }

    /// Separates on `tape`: `mixture` (B, C_in, L), the label vectors (B, label_len) or queries
    /// (B, condition_size) → waveforms (B, S, O, L), as [`ResUNet::forward`].
    pub fn forward(&self, tape: &Tape, mixture: &Tensor, cond: &Tensor, mode: BnMode) -> Result<SepTrainOutput> {
        self.forward_with(tape, mixture, cond, &Conditions::default(), mode)
    }

    /// [`TrainableSeparator::forward`] with the CP-JKU conditions (strong logits, embeddings — each
    /// required when the config uses it — and the passes of the iterative model: `extra.iterations`,
    /// default the config's). Earlier passes record nothing; the output is the last pass's.
    pub fn forward_with(&self, tape: &Tape, mixture: &Tensor, cond: &Tensor, extra: &Conditions, mode: BnMode) -> Result<SepTrainOutput> {
        let cfg = &self.config;
        let ms = mixture.shape();
        if ms.len() != 3 || ms[1] != cfg.input_channels {
            return Err(Error::Msg(format!("separator: mixture must be (B, {} channels, samples), got {ms:?}", cfg.input_channels)));
        }
        let (b, c, len) = (ms[0], ms[1], ms[2]);
        let want = if cfg.conditioning == Conditioning::Label { cfg.label_len } else { cfg.condition_size };
        if cond.shape() != [b, want] {
            return Err(Error::Msg(format!("separator: the condition must be ({b}, {want}), got {:?}", cond.shape())));
        }
        if len <= cfg.window_size / 2 {
            return Err(Error::Msg(format!("separator: the input has {len} samples; it needs more than n_fft/2 = {} (reflect padding)", cfg.window_size / 2)));
        }
        if mode == BnMode::Train && b * len / cfg.hop_size < 2 {
            return Err(Error::Msg("separator: training-mode BatchNorm needs more than one value per channel".into()));
        }
        let bp = cfg.base_prefix();
        let o = self.stft_opts();
        let mixture = mixture.to_device(self.device)?;
        let spec = stft(&mixture, &o)?;
        let (f, frames) = (spec.shape()[3], spec.shape()[4]);
        let tp = frames.div_ceil(TIME_MULTIPLE) * TIME_MULTIPLE;
        let mut stats = Vec::new();
        let mag = tape.constant(magnitude(&spec)?.reshape(&[b * c, f, frames])?);
        let condition = self.condition(tape, cond)?;
        let mut betas = BTreeMap::new();
        for name in self.store.names() {
            if let Some(path) = name.strip_prefix("film.").and_then(|n| n.strip_suffix(".weight")) {
                let (w, bias) = (self.p(tape, &name)?, self.p(tape, &format!("film.{path}.bias"))?);
                betas.insert(path.to_string(), ops::linear(&condition, &w, Some(&bias))?);
            }
        }
        let time = match cfg.time_film {
            Some(kind) => {
                let logits =
                    extra.strong_logits.ok_or_else(|| Error::Msg("separator: this model uses time-FiLM: give the SED model's strong logits".into()))?;
                let s = cfg.target_sources_num;
                let (sel, t) = selected_logits(&cond.to_vec()?, b, s, logits, cfg.binarize_sed_preds)?;
                Some(self.time_betas(tape, kind, &sel, (b, s, t))?)
            }
            None => None,
        };
        let inject = match (&cfg.inject, extra.embeddings) {
            (Some(_), Some(e)) => Some(self.inject_map(tape, e)?),
            (Some(_), None) => return Err(Error::Msg("separator: this model injects the SED model's hidden states: give the embeddings".into())),
            _ => None,
        };
        let gate = match cfg.conditioning {
            Conditioning::Label => Some(source_gate(cond, cfg.target_sources_num, cfg.label_len, self.device)?),
            Conditioning::Query => None,
        };
        let oc = if cfg.out_conv { Some((self.p(tape, &format!("{bp}out_conv.weight"))?, self.p(tape, &format!("{bp}out_conv.bias"))?)) } else { None };
        let passes = if cfg.iterations > 0 { extra.iterations.unwrap_or(cfg.iterations) } else { 1 };
        if passes == 0 {
            return Err(Error::Msg("separator: the iterative model needs at least 1 pass".into()));
        }
        let mut fb: Option<Tensor> = None;
        let mut waveform = None;
        for pass in 0..passes {
            // Earlier passes: no gradient (the feedback is detached), BatchNorm as in `mode`.
            let _guard = (pass + 1 < passes).then(|| tape.no_grad());
            let net = Net { betas: &betas, time: time.as_ref(), inject: inject.as_ref() };
            // bn0 over the F bins of |X| (B, C, F, T), statistics over (B, C, T); every pass of the
            // iterative model applies it again (and updates its running statistics, as torch does).
            let (s0, h0) = self.bn(tape, &format!("{bp}bn0"), &[&mag], mode, &mut stats)?;
            let x = ops::spectral::magnitude_input(&spec, &s0, &h0, tp)?;
            let y = if cfg.iterations > 0 {
                let prev = match &fb {
                    Some(w) => w.clone(),
                    None => Tensor::zeros(&[b, 1, len], aural_runtime::DType::F32, self.device)?,
                };
                let fspec = stft(&prev, &o)?;
                let fmag = magnitude(&fspec)?.reshape(&[b, f, frames])?;
                let (sf, hf) = self.bn(tape, &format!("{bp}bn0_fb"), &[&tape.constant(fmag)], mode, &mut stats)?;
                let xf = ops::spectral::magnitude_input(&fspec, &sf, &hf, tp)?;
                self.network(tape, &[&x, &xf], &net, mode, &mut stats)?
            } else {
                self.network(tape, &[&x], &net, mode, &mut stats)?
            };
            let masked = ops::spectral::complex_mask(&spec, &y, cfg.target_sources_num, oc.as_ref().map(|(w, b)| (w, b)), gate.as_ref())?;
            let wave = ops::spectral::istft(&masked, &o, len)?;
            if cfg.iterations > 0 {
                fb = Some(wave.value().reshape(&[b, 1, len])?);
            }
            waveform = Some(wave);
        }
        Ok(SepTrainOutput { waveform: waveform.expect("at least one pass"), bn_stats: stats })
    }

    /// The network on the channel concatenation of `inputs` → after_conv's output.
    fn network(&self, tape: &Tape, inputs: &[&Var], net: &Net, mode: BnMode, stats: &mut BnBatchStats) -> Result<Var> {
        let bp = self.config.base_prefix();
        let mut x = ops::conv2d(inputs, &self.p(tape, &format!("{bp}pre_conv.weight"))?, Some(&self.p(tape, &format!("{bp}pre_conv.bias"))?), None, None)?;
        let mut skips = Vec::new();
        for (blk, pool) in &self.encoders {
            let e = self.block(tape, blk, &[&x], net, mode, stats)?;
            x = if *pool == (1, 1) { self.bottleneck(tape, e.clone(), net, mode, stats)? } else { ops::avg_pool2d(&e, *pool)? };
            skips.push(e);
        }
        for (k, (prefix, blk)) in self.decoders.iter().enumerate() {
            let (s1, h1) = self.bn(tape, &format!("{prefix}.bn1"), &[&x], mode, stats)?;
            let path = format!("decoder_block{}->beta1", k + 1);
            let beta = net.betas.get(&path).ok_or_else(|| Error::Msg(format!("separator: no FiLM layer 'film.{path}'")))?;
            let h1 = ops::add(&h1, beta)?;
            let t1 = net.time.map(|t| t.term(&path, x.shape()[2])).transpose()?;
            let up = ops::conv_transpose2d(&x, &self.p(tape, &format!("{prefix}.conv1.weight"))?, Some((&s1, &h1, SLOPE, t1.as_ref().map(|(v, m)| (v, *m)))))?;
            let skip = skips.remove(5 - k);
            x = self.block(tape, blk, &[&up, &skip], net, mode, stats)?;
        }
        ops::conv2d(&[&x], &self.p(tape, &format!("{bp}after_conv.weight"))?, Some(&self.p(tape, &format!("{bp}after_conv.bias"))?), None, None)
    }

    /// The CP-JKU bottleneck: the DPRNN before or after the injection, as configured.
    fn bottleneck(&self, tape: &Tape, x: Var, net: &Net, mode: BnMode, stats: &mut BnBatchStats) -> Result<Var> {
        let at = |p: DprnnPosition| self.config.dprnn.as_ref().is_some_and(|d| d.position == p);
        let mut x = x;
        if at(DprnnPosition::BeforeInject) {
            x = self.dprnn(tape, &x)?;
        }
        if let Some(f) = net.inject {
            x = self.merge(tape, &x, f, mode, stats)?;
        }
        if at(DprnnPosition::AfterInject) {
            x = self.dprnn(tape, &x)?;
        }
        Ok(x)
    }

    /// β_t (B, C, T, 1) of every FiLM layer from the selected logits (B, S, T) (host values): per
    /// frame the time embedding, then the label FiLM layers.
    fn time_betas(&self, tape: &Tape, mode: TimeFilmKind, sel: &[f32], (b, s, t): (usize, usize, usize)) -> Result<TimeVars> {
        let mut frames = vec![0f32; b * t * s];
        for bi in 0..b {
            for si in 0..s {
                for ti in 0..t {
                    frames[(bi * t + ti) * s + si] = sel[(bi * s + si) * t + ti];
                }
            }
        }
        let e = self.mlp(tape, "time_embedding", tape.constant(Tensor::from_slice(&frames, &[b * t, s], self.device)?))?;
        let mut betas = BTreeMap::new();
        for name in self.store.names() {
            if let Some(path) = name.strip_prefix("film.").and_then(|n| n.strip_suffix(".weight")) {
                let (w, bias) = (self.p(tape, &name)?, self.p(tape, &format!("film.{path}.bias"))?);
                let beta = ops::linear(&e, &w, Some(&bias))?;
                let c = beta.shape()[1];
                let beta = ops::reshape(&ops::permute(&ops::reshape(&beta, &[b, t, c])?, &[0, 2, 1])?, &[b, c, t, 1])?;
                betas.insert(path.to_string(), beta);
            }
        }
        Ok(TimeVars { mode, betas, resized: RefCell::new(BTreeMap::new()) })
    }

    /// Linear-LayerNorm-ReLU-Linear-LayerNorm-ReLU at `{prefix}.{0,1,3,4}`.
    fn mlp(&self, tape: &Tape, prefix: &str, x: Var) -> Result<Var> {
        let l = |i: usize| -> Result<(Var, Var)> { Ok((self.p(tape, &format!("{prefix}.{i}.weight"))?, self.p(tape, &format!("{prefix}.{i}.bias"))?)) };
        let (w0, b0) = l(0)?;
        let (w1, b1) = l(1)?;
        let (w3, b3) = l(3)?;
        let (w4, b4) = l(4)?;
        let x = ops::linear(&x, &w0, Some(&b0))?;
        let x = ops::relu(&ops::layernorm(&x, Some(&w1), Some(&b1), 1e-5)?)?;
        let x = ops::linear(&x, &w3, Some(&b3))?;
        ops::relu(&ops::layernorm(&x, Some(&w4), Some(&b4), 1e-5)?)
    }

    /// Σ softmax(soundbeam_weights)_l·h_l of the hidden states (B, layers, tokens, dim) as a map
    /// (B, dim, grid_t, grid_f) (tokens frequency-major).
    fn inject_map(&self, tape: &Tape, e: &Tensor) -> Result<Var> {
        let ic = self.config.inject.as_ref().expect("injection configured");
        let s = e.shape();
        if s.len() != 4 || s[1] != ic.layers || s[2] != ic.tokens || s[3] != ic.dim {
            return Err(Error::Msg(format!("separator: embeddings must be (batch, {} layers, {} tokens, {} dim), got {s:?}", ic.layers, ic.tokens, ic.dim)));
        }
        let b = s[0];
        let (gf, gt, d) = (ic.grid[0], ic.grid[1], ic.dim);
        let w = ops::softmax(&ops::reshape(&self.p(tape, "soundbeam_weights")?, &[1, ic.layers])?)?;
        let h = tape.constant(e.to_device(self.device)?.reshape(&[b, ic.layers, ic.tokens * d])?);
        let avg = ops::sum(&ops::mul(&h, &ops::reshape(&w, &[1, ic.layers, 1])?)?, 1, false)?;
        ops::permute(&ops::reshape(&avg, &[b, gf, gt, d])?, &[0, 3, 2, 1])
    }

    /// The bottleneck `x` (B, C, T, F) merged with the injected map `feats` (B, dim, grid_t, grid_f).
    fn merge(&self, tape: &Tape, x: &Var, feats: &Var, mode: BnMode, stats: &mut BnBatchStats) -> Result<Var> {
        let bp = self.config.base_prefix();
        let ic = self.config.inject.as_ref().expect("injection configured");
        let (t, f) = (x.shape()[2], x.shape()[3]);
        let (s, h) = self.bn(tape, &format!("{bp}downsample_bn"), &[feats], mode, stats)?;
        let g = ops::s5ops::resize_bilinear(feats, (t, f), Some((&s, &h, SLOPE)))?;
        let g =
            ops::conv2d(&[&g], &self.p(tape, &format!("{bp}downsample_conv.weight"))?, Some(&self.p(tape, &format!("{bp}downsample_conv.bias"))?), None, None)?;
        match ic.method {
            InjectMethod::Add => {
                let wx = ops::reshape(&self.p(tape, &format!("{bp}weight_x_center"))?, &[1])?;
                let wf = ops::reshape(&self.p(tape, &format!("{bp}weight_soundbeam_features"))?, &[1])?;
                ops::s5ops::standardize_add(x, &g, &wx, &wf, 1e-6)
            }
            InjectMethod::Concat => {
                let (s2, h2) = self.bn(tape, &format!("{bp}merge_bn"), &[x, &g], mode, stats)?;
                let (w, b) = (self.p(tape, &format!("{bp}merge_conv.weight"))?, self.p(tape, &format!("{bp}merge_conv.bias"))?);
                ops::conv2d(&[x, &g], &w, Some(&b), Some((&s2, &h2, SLOPE, None)), None)
            }
        }
    }

    /// The dual-path RNN (`DPRNN.0.*`): per block rows then columns, then PReLU and the 1×1 conv.
    fn dprnn(&self, tape: &Tape, x: &Var) -> Result<Var> {
        let dc = self.config.dprnn.as_ref().expect("DPRNN configured");
        let pre = format!("{}DPRNN.0", self.config.base_prefix());
        let mut x = x.clone();
        for i in 0..dc.blocks {
            x = self.dual_path(tape, &x, &format!("{pre}.row_rnn.{i}"), &format!("{pre}.row_norm.{i}"), 2)?;
            x = self.dual_path(tape, &x, &format!("{pre}.col_rnn.{i}"), &format!("{pre}.col_norm.{i}"), 3)?;
        }
        let a = self.p(tape, &format!("{pre}.output.0.weight"))?;
        let x = ops::s5ops::prelu(&x, &a)?;
        ops::conv2d(&[&x], &self.p(tape, &format!("{pre}.output.1.weight"))?, Some(&self.p(tape, &format!("{pre}.output.1.bias"))?), None, None)
    }

    /// x + GroupNorm(1)(Linear(BiGRU(x along `axis`))): `axis` 2 along time (rows), 3 along frequency.
    fn dual_path(&self, tape: &Tape, x: &Var, prefix: &str, norm: &str, axis: usize) -> Result<Var> {
        let dc = self.config.dprnn.as_ref().expect("DPRNN configured");
        let s = x.shape().to_vec();
        let (b, c, t, f) = (s[0], s[1], s[2], s[3]);
        let (order, other, seq) = if axis == 2 { ([0, 3, 2, 1], f, t) } else { ([0, 2, 3, 1], t, f) };
        let mut y = ops::reshape(&ops::permute(x, &order)?, &[b * other, seq, c])?;
        for l in 0..dc.rnn_layers {
            let mut dirs = Vec::new();
            for sfx in ["", "_reverse"] {
                let n = |w: &str| format!("{prefix}.rnn.{w}_l{l}{sfx}");
                dirs.push(GruDirParams {
                    weight_ih: self.p(tape, &n("weight_ih"))?,
                    weight_hh: self.p(tape, &n("weight_hh"))?,
                    bias_ih: Some(self.p(tape, &n("bias_ih"))?),
                    bias_hh: Some(self.p(tape, &n("bias_hh"))?),
                });
            }
            y = ops::gru(&y, &GruParams { dirs }, true)?;
        }
        let h2 = y.shape()[2];
        let y = ops::linear(
            &ops::reshape(&y, &[b * other * seq, h2])?,
            &self.p(tape, &format!("{prefix}.proj.weight"))?,
            Some(&self.p(tape, &format!("{prefix}.proj.bias"))?),
        )?;
        let back = if axis == 2 { [0, 3, 2, 1] } else { [0, 3, 1, 2] };
        let y = ops::permute(&ops::reshape(&y, &[b, other, seq, c])?, &back)?;
        let (w, bias) = (self.p(tape, &format!("{norm}.weight"))?, self.p(tape, &format!("{norm}.bias"))?);
        ops::s5ops::group_norm(&y, 1, Some(&w), Some(&bias), 1e-8, Some(x))
    }
}

/// The label and time conditions and the injected map of one forward (shared by every pass).
struct Net<'a> {
    betas: &'a BTreeMap<String, Var>,
    time: Option<&'a TimeVars>,
    inject: Option<&'a Var>,
}

/// Time-FiLM's β_t (B, C, T_sed, 1) by FiLM path, resized on demand (cached per rows).
struct TimeVars {
    mode: TimeFilmKind,
    betas: BTreeMap<String, Var>,
    resized: RefCell<BTreeMap<(String, usize), Var>>,
}

impl TimeVars {
    /// The pre-activation's time term of FiLM point `path` at `rows` input rows (B, C, rows):
    /// β_t resized (additive) or σ(β_t resized) (multiplicative).
    fn term(&self, path: &str, rows: usize) -> Result<(Var, TimeFilmMode)> {
        let mode = match self.mode {
            TimeFilmKind::Additive => TimeFilmMode::Add,
            TimeFilmKind::Multiplicative => TimeFilmMode::Gate,
        };
        let key = (path.to_string(), rows);
        if let Some(v) = self.resized.borrow().get(&key) {
            return Ok((v.clone(), mode));
        }
        let beta = self.betas.get(path).ok_or_else(|| Error::Msg(format!("separator: no time-FiLM β for '{path}'")))?;
        let (b, c) = (beta.shape()[0], beta.shape()[1]);
        let mut v = ops::reshape(&ops::s5ops::resize_bilinear(beta, (rows, 1), None)?, &[b, c, rows])?;
        if self.mode == TimeFilmKind::Multiplicative {
            v = ops::sigmoid(&v)?;
        }
        // Only values on the tape are kept: the iterative model's earlier passes record nothing, and
        // a value they made would cut the last pass's gradient.
        if v.requires_grad() || !beta.requires_grad() {
            self.resized.borrow_mut().insert(key, v.clone());
        }
        Ok((v, mode))
    }
}

/// |X| = sqrt(max(re² + im², 1e-10)) of STFT planes (B, C, 2, F, T) → (B, C, F, T).
fn magnitude(spec: &Tensor) -> Result<Tensor> {
    use aural_runtime::ops::{binary as rb, shape as rs, unary as ru};
    let re = rs::slice(spec, 2, 0, 1)?;
    let im = rs::slice(spec, 2, 1, 1)?;
    let p = rb::add(&rb::mul(&re, &re)?, &rb::mul(&im, &im)?)?;
    let p = rb::maximum(&p, &Tensor::full(&[1], 1e-10, spec.device())?)?;
    let s = spec.shape();
    ru::sqrt(&p)?.reshape(&[s[0], s[1], s[3], s[4]])
}
