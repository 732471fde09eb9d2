//! ResUNet30 (AudioSep's separator, the DCASE 2025 task 4 baseline's ResUNet / ResUNetK): loading by
//! the baseline's `state_dict()` names and the forward pass on runtime ops (DESIGN.md §6.5).

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::ops::binary::add;
use aural_runtime::ops::complex_mask::{complex_mask, magnitude_input, OutConv};
use aural_runtime::ops::conv2d::{conv2d, fold_batchnorm, Conv2d};
use aural_runtime::ops::conv_transpose::conv_transpose2d;
use aural_runtime::ops::pool::avg_pool2d;
use aural_runtime::ops::stft::{istft, stft, StftOpts};
use aural_runtime::{Device, Error, Result, Tensor};

use super::config::{Conditioning, DprnnPosition, SeparatorConfig, TIME_MULTIPLE};
use super::cpjku::{pre_act, selected_logits, Conditions, Dprnn, Injection, TimeBetas};
use super::film::{Film, LabelEmbedding, MlpEmbedding};
use crate::params::Params;

/// LeakyReLU slope of every pre-activation.
const SLOPE: f32 = 0.01;
/// BatchNorm eps (torch's default).
const BN_EPS: f32 = 1e-5;

/// An eval-mode BatchNorm folded to `y = x·scale + shift`, (C) each.
#[derive(Debug, Clone)]
pub struct FoldedBn {
    pub scale: Tensor,
    pub shift: Tensor,
}

impl FoldedBn {
    pub(crate) fn load(p: &mut Params, prefix: &str, c: usize) -> Result<FoldedBn> {
        let get = |p: &mut Params, n: &str| -> Result<Vec<f32>> { p.take(&format!("{prefix}.{n}"), &[c])?.to_vec() };
        let (w, b, m, v) = (get(p, "weight")?, get(p, "bias")?, get(p, "running_mean")?, get(p, "running_var")?);
        let (scale, shift) = fold_batchnorm(&w, &b, &m, &v, BN_EPS);
        Ok(FoldedBn { scale: Tensor::from_slice(&scale, &[c], p.device)?, shift: Tensor::from_slice(&shift, &[c], p.device)? })
    }

    /// The pre-activation with FiLM's β (B, C) added to the shift.
    fn with_beta(&self, beta: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.scale.clone(), add(beta, &self.shift)?))
    }
}

/// ConvBlockRes(in → out): conv3×3(leaky(bn1(x) + β1)) → conv3×3(leaky(bn2(·) + β2)) + shortcut(x).
#[derive(Debug, Clone)]
pub struct ConvBlockRes {
    /// FiLM path of this block (`encoder_block1->conv_block1`).
    pub path: String,
    pub bn1: FoldedBn,
    pub conv1: Tensor,
    pub bn2: FoldedBn,
    pub conv2: Tensor,
    /// 1×1 conv (weight, bias) when in ≠ out.
    pub shortcut: Option<(Tensor, Tensor)>,
}

impl ConvBlockRes {
    fn load(p: &mut Params, prefix: &str, path: String, cin: usize, cout: usize) -> Result<ConvBlockRes> {
        let shortcut = if cin != cout {
            Some((p.take(&format!("{prefix}.shortcut.weight"), &[cout, cin, 1, 1])?, p.take(&format!("{prefix}.shortcut.bias"), &[cout])?))
        } else {
            None
        };
        Ok(ConvBlockRes {
            path,
            bn1: FoldedBn::load(p, &format!("{prefix}.bn1"), cin)?,
            conv1: p.take(&format!("{prefix}.conv1.weight"), &[cout, cin, 3, 3])?,
            bn2: FoldedBn::load(p, &format!("{prefix}.bn2"), cout)?,
            conv2: p.take(&format!("{prefix}.conv2.weight"), &[cout, cout, 3, 3])?,
            shortcut,
        })
    }

    fn film_paths(&self, out: &mut Vec<(String, usize)>) {
        out.push((format!("{}->beta1", self.path), self.bn1.scale.shape()[0]));
        out.push((format!("{}->beta2", self.path), self.bn2.scale.shape()[0]));
    }

    /// Over the channel concatenation of `inputs` (one, or the decoder's upsampled map and skip).
    fn forward(&self, inputs: &[&Tensor], betas: &BTreeMap<String, Tensor>, time: Option<&TimeBetas>) -> Result<Tensor> {
        let (p1, p2) = (format!("{}->beta1", self.path), format!("{}->beta2", self.path));
        let (s1, h1) = self.bn1.with_beta(beta(betas, &p1)?)?;
        let (s2, h2) = self.bn2.with_beta(beta(betas, &p2)?)?;
        let rows = inputs[0].shape()[2];
        let (t1, t2) = match time {
            Some(tb) => (Some(tb.term(&p1, rows)?), Some(tb.term(&p2, rows)?)),
            None => (None, None),
        };
        let x = conv2d(inputs, &Conv2d { weight: &self.conv1, bias: None, pre: Some(pre_act(&s1, &h1, SLOPE, t1.as_ref())), residual: None })?;
        let residual = match &self.shortcut {
            Some((w, b)) => conv2d(inputs, &Conv2d { weight: w, bias: Some(b), pre: None, residual: None })?,
            None => inputs[0].clone(),
        };
        conv2d(&[&x], &Conv2d { weight: &self.conv2, bias: None, pre: Some(pre_act(&s2, &h2, SLOPE, t2.as_ref())), residual: Some(&residual) })
    }
}

fn beta<'a>(betas: &'a BTreeMap<String, Tensor>, path: &str) -> Result<&'a Tensor> {
    betas.get(path).ok_or_else(|| Error::Msg(format!("separator: no FiLM β for '{path}'")))
}

/// Decoder block: ConvTranspose2d(leaky(bn1(x) + β1)) (kernel = stride), concat with the skip,
/// ConvBlockRes(2·out → out). (Its `bn2` and β2 are stored in checkpoints but unused.)
#[derive(Debug, Clone)]
pub struct DecoderBlock {
    pub path: String,
    pub bn1: FoldedBn,
    /// (in, out, sh, sw).
    pub conv1: Tensor,
    pub block: ConvBlockRes,
}

/// ResUNet30 with its FiLM layers and (label conditioning) label embedding.
#[derive(Debug, Clone)]
pub struct ResUNet {
    pub config: SeparatorConfig,
    pub device: Device,
    pub bn0: FoldedBn,
    /// (c0, C_in, 1, 1), (c0).
    pub pre_conv: (Tensor, Tensor),
    /// encoder_block1..6, then conv_block7a; with their pools (time, freq).
    pub encoders: Vec<(ConvBlockRes, (usize, usize))>,
    pub decoders: Vec<DecoderBlock>,
    pub after_conv: (Tensor, Tensor),
    /// (O, C_in, 1, 1), (O).
    pub out_conv: Option<(Tensor, Tensor)>,
    pub film: Film,
    pub label_embedding: Option<LabelEmbedding>,
    /// The iterative model's BatchNorm of the feedback channel's magnitude (F).
    pub bn0_fb: Option<FoldedBn>,
    /// CP-JKU time-FiLM's frame embedding.
    pub time_embedding: Option<MlpEmbedding>,
    /// CP-JKU hidden-state injection.
    pub inject: Option<Injection>,
    /// CP-JKU dual-path RNN.
    pub dprnn: Option<Dprnn>,
    /// Checkpoint tensors that matched nothing (a warning, not an error).
    pub unexpected: Vec<String>,
}

/// Encoder pools over (time, frequency); conv_block7a has none.
pub(crate) const POOLS: [(usize, usize); 7] = [(2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2), (1, 1)];

/// Tensors that are derived or dead in the baseline's and CP-JKU's checkpoints: ignored silently.
pub(crate) fn ignorable(name: &str) -> bool {
    let net = name.strip_prefix("base.ss_model.").or_else(|| name.strip_prefix("base.")).unwrap_or("");
    name.ends_with(".num_batches_tracked")
        || net.starts_with("stft.")
        || net.starts_with("istft.")
        || (net.starts_with("decoder_block") && name.contains(".bn2.") && !name.contains(".conv_block2."))
        || (name.starts_with("film.decoder_block") && name.contains("->beta2.") && !name.contains("->conv_block2->"))
        || name.starts_with("time_film.")
}

impl ResUNet {
    /// Loads `dir/config.json` + `dir/model.safetensors` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<ResUNet> {
        let dir = dir.as_ref();
        let config = SeparatorConfig::from_file(dir.join("config.json"))?;
        let (tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
        ResUNet::from_tensors(config, &tensors, &st, device)
    }

    /// Builds the model from a config and the checkpoint's tensors (baseline `state_dict()` names).
    pub fn from_tensors(config: SeparatorConfig, tensors: &BTreeMap<String, Tensor>, source: &Path, device: Device) -> Result<ResUNet> {
        Self::build(config, Params::new(tensors, source, device), tensors).map(|(m, _)| m)
    }

    /// Every tensor (name, shape) a checkpoint of `config` holds, in loading order (running
    /// statistics included; the dead tensors of the baseline's checkpoints not).
    pub fn expected_tensors(config: &SeparatorConfig) -> Result<Vec<(String, Vec<usize>)>> {
        let empty = BTreeMap::new();
        let (_, p) = Self::build(config.clone(), Params::probing(&empty), &empty)?;
        Ok(p.probe.unwrap_or_default())
    }

    fn build<'a>(config: SeparatorConfig, mut p: Params<'a>, tensors: &BTreeMap<String, Tensor>) -> Result<(ResUNet, Params<'a>)> {
        config.validate()?;
        let device = p.device;
        let c = &config.channels;
        let (cin, f) = (config.input_channels, config.freq_bins());
        let bp = config.base_prefix();
        let bn0 = FoldedBn::load(&mut p, &format!("{bp}bn0"), f)?;
        let nin = config.net_input_channels();
        let pre_conv = (p.take(&format!("{bp}pre_conv.weight"), &[c[0], nin, 1, 1])?, p.take(&format!("{bp}pre_conv.bias"), &[c[0]])?);
        let mut encoders = Vec::new();
        for (k, &pool) in POOLS.iter().enumerate() {
            let name = if k < 6 { format!("encoder_block{}", k + 1) } else { "conv_block7a".to_string() };
            let (i, o) = if k < 6 { (c[k], c[k + 1]) } else { (c[6], c[6]) };
            let block = ConvBlockRes::load(&mut p, &format!("{bp}{name}.conv_block1"), format!("{name}->conv_block1"), i, o)?;
            encoders.push((block, pool));
        }
        let mut decoders = Vec::new();
        let mut prev = c[6];
        for k in 1..=6 {
            let out = c[7 - k];
            let (sh, sw) = POOLS[6 - k];
            let name = format!("decoder_block{k}");
            let bn1 = FoldedBn::load(&mut p, &format!("{bp}{name}.bn1"), prev)?;
            let conv1 = p.take(&format!("{bp}{name}.conv1.weight"), &[prev, out, sh, sw])?;
            let block = ConvBlockRes::load(&mut p, &format!("{bp}{name}.conv_block2"), format!("{name}->conv_block2"), 2 * out, out)?;
            decoders.push(DecoderBlock { path: name, bn1, conv1, block });
            prev = out;
        }
        let s = config.target_sources_num;
        let after_conv = (p.take(&format!("{bp}after_conv.weight"), &[cin * 3 * s, c[1], 1, 1])?, p.take(&format!("{bp}after_conv.bias"), &[cin * 3 * s])?);
        let out_conv = if config.out_conv {
            let o = config.output_channels;
            Some((p.take(&format!("{bp}out_conv.weight"), &[o, cin, 1, 1])?, p.take(&format!("{bp}out_conv.bias"), &[o])?))
        } else {
            None
        };
        let mut paths = Vec::new();
        for (b, _) in &encoders {
            b.film_paths(&mut paths);
        }
        for d in &decoders {
            paths.push((format!("{}->beta1", d.path), d.bn1.scale.shape()[0]));
            d.block.film_paths(&mut paths);
        }
        let film = Film::load(&mut p, &paths, config.condition_size)?;
        let label_embedding = match config.conditioning {
            Conditioning::Label => Some(LabelEmbedding::load(&mut p, "label_embedding", config.label_len, config.condition_size, config.condition_size)?),
            Conditioning::Query => None,
        };
        let bn0_fb = if config.iterations > 0 { Some(FoldedBn::load(&mut p, &format!("{bp}bn0_fb"), f)?) } else { None };
        let time_embedding = match config.time_film {
            Some(_) => Some(MlpEmbedding::load(&mut p, "time_embedding", s, 512, config.condition_size)?),
            None => None,
        };
        let inject = match &config.inject {
            Some(ic) => Some(Injection::load(&mut p, &config, ic)?),
            None => None,
        };
        let dprnn = match &config.dprnn {
            Some(dc) => Some(Dprnn::load(&mut p, &config, dc)?),
            None => None,
        };
        let unexpected = tensors.keys().filter(|k| !p.used.contains(*k) && !ignorable(k)).cloned().collect();
        let m = ResUNet {
            config,
            device,
            bn0,
            pre_conv,
            encoders,
            decoders,
            after_conv,
            out_conv,
            film,
            label_embedding,
            bn0_fb,
            time_embedding,
            inject,
            dprnn,
            unexpected,
        };
        Ok((m, p))
    }

    /// Stores the weights of every 3×3 convolution in f16, so a GPU runs them on tensor cores (the
    /// activation rounded to f16 as it is staged, f32 accumulation; `conv2d_fwd_f16_v3`). GPU devices
    /// only: the CPU would convert them back on every call.
    pub fn half_convs(&mut self) -> Result<()> {
        if self.device.is_cpu() {
            return Err(Error::Msg("f16 convolutions are for GPU devices (tensor cores); the CPU runs f32".into()));
        }
        let half = |t: &mut Tensor| -> Result<()> {
            *t = aural_runtime::ops::unary::to_f16(t)?;
            Ok(())
        };
        for b in self.encoders.iter_mut().map(|(b, _)| b).chain(self.decoders.iter_mut().map(|d| &mut d.block)) {
            half(&mut b.conv1)?;
            half(&mut b.conv2)?;
        }
        Ok(())
    }

    pub fn stft_opts(&self) -> StftOpts {
        StftOpts::new(self.config.window_size, self.config.hop_size)
    }

    /// The condition (B, condition_size) of a label vector (B, label_len) or a query.
    pub fn condition(&self, cond: &Tensor) -> Result<Tensor> {
        match &self.label_embedding {
            Some(le) => le.forward(cond),
            None => Ok(cond.clone()),
        }
    }

    /// The network on its input (B, C_in, T′, F − 1) with FiLM βs → after_conv output (B, S·C_in·3, T′, F − 1).
    pub fn network(&self, x: &Tensor, betas: &BTreeMap<String, Tensor>) -> Result<Tensor> {
        self.network_traced(&[x], betas, &NetExtras::default(), &mut |_, _| Ok(()))
    }

    /// [`ResUNet::network`] over the channel concatenation of `inputs` (the iterative model's mixture
    /// and feedback magnitudes, read without a copy), with the CP-JKU extras, handing each
    /// intermediate to `trace`: `pre_conv`, `enc{k}` (encoder k's unpooled output), `enc{k}_pool`,
    /// `center`, `inject_features` and `merged` (injection), `dprnn`, `dec{k}`, `after_conv`.
    pub fn network_traced(
        &self,
        inputs: &[&Tensor],
        betas: &BTreeMap<String, Tensor>,
        extras: &NetExtras,
        trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let time = extras.time;
        let mut x = conv2d(inputs, &Conv2d { weight: &self.pre_conv.0, bias: Some(&self.pre_conv.1), pre: None, residual: None })?;
        trace("pre_conv", &x)?;
        let mut skips = Vec::new();
        for (k, (block, pool)) in self.encoders.iter().enumerate() {
            let e = block.forward(&[&x], betas, time)?;
            if *pool == (1, 1) {
                x = e.clone();
                trace("center", &x)?;
                x = self.bottleneck(x, extras, trace)?;
            } else {
                x = avg_pool2d(&e, *pool)?;
                trace(&format!("enc{}", k + 1), &e)?;
                trace(&format!("enc{}_pool", k + 1), &x)?;
            }
            skips.push(e);
        }
        // Decoder k reads the unpooled output of encoder 7 − k (skips[6 − k] counting from 1).
        for (k, d) in self.decoders.iter().enumerate() {
            let p1 = format!("{}->beta1", d.path);
            let (s1, h1) = d.bn1.with_beta(beta(betas, &p1)?)?;
            let t1 = time.map(|tb| tb.term(&p1, x.shape()[2])).transpose()?;
            let up = conv_transpose2d(&x, &d.conv1, Some(&pre_act(&s1, &h1, SLOPE, t1.as_ref())))?;
            // The skip is dropped once read: only the unread skips stay alive.
            let skip = skips.remove(5 - k);
            x = d.block.forward(&[&up, &skip], betas, time)?;
            trace(&format!("dec{}", k + 1), &x)?;
        }
        let y = conv2d(&[&x], &Conv2d { weight: &self.after_conv.0, bias: Some(&self.after_conv.1), pre: None, residual: None })?;
        trace("after_conv", &y)?;
        Ok(y)
    }

    /// The CP-JKU bottleneck: DPRNN before or after the injection, as configured.
    fn bottleneck(&self, x: Tensor, extras: &NetExtras, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let dprnn_at = |pos: DprnnPosition| self.dprnn.as_ref().filter(|_| self.config.dprnn.as_ref().map(|d| d.position) == Some(pos));
        let mut x = x;
        if let Some(d) = dprnn_at(DprnnPosition::BeforeInject) {
            x = d.forward(&x)?;
            trace("dprnn", &x)?;
        }
        if let Some(inj) = &self.inject {
            let feats = extras.inject.ok_or_else(|| Error::Msg("separator: this model injects the SED model's hidden states: give the embeddings".into()))?;
            x = inj.merge(&x, feats)?;
            trace("merged", &x)?;
        }
        if let Some(d) = dprnn_at(DprnnPosition::AfterInject) {
            x = d.forward(&x)?;
            trace("dprnn", &x)?;
        }
        Ok(x)
    }

    /// Separates: `mixture` (B, C_in, L) and the condition input (label vectors (B, label_len) or
    /// queries (B, condition_size)) → waveforms (B, S, O, L). With label conditioning a slot whose
    /// label entries are all zero (silence) gives exact zeros.
    pub fn forward(&self, mixture: &Tensor, cond: &Tensor) -> Result<Tensor> {
        self.forward_with(mixture, cond, &Conditions::default(), &mut |_, _| Ok(()))
    }

    /// [`ResUNet::forward`], handing the intermediates to `trace`: `condition`, `net_input`, those of
    /// [`ResUNet::network_traced`], and `masked` (the (B, S, O, 2, F, T) spectra before the iSTFT).
    pub fn forward_traced(&self, mixture: &Tensor, cond: &Tensor, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        self.forward_with(mixture, cond, &Conditions::default(), trace)
    }

    /// [`ResUNet::forward`] with the CP-JKU conditions (strong logits, embeddings, passes; each
    /// required when the config uses it). The iterative model runs its passes here, the label and
    /// time conditions and the injected map computed once; `trace` sees every pass's intermediates
    /// (`fb_input` is the feedback channel's network input) and `pass{i}` (each pass's output).
    pub fn forward_with(&self, mixture: &Tensor, cond: &Tensor, extra: &Conditions, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let cfg = &self.config;
        let ms = mixture.shape();
        if ms.len() != 3 || ms[1] != cfg.input_channels {
            return Err(Error::Msg(format!("separator: mixture must be (B, {} channels, samples), got {ms:?}", cfg.input_channels)));
        }
        let b = ms[0];
        let want = match cfg.conditioning {
            Conditioning::Label => cfg.label_len,
            Conditioning::Query => cfg.condition_size,
        };
        if cond.shape() != [b, want] {
            let what = if cfg.conditioning == Conditioning::Label { "label vector" } else { "query" };
            return Err(Error::Msg(format!("separator: the {what} must be ({b}, {want}), got {:?}", cond.shape())));
        }
        let len = ms[2];
        if len <= cfg.window_size / 2 {
            return Err(Error::Msg(format!("separator: the input has {len} samples; it needs more than n_fft/2 = {} (reflect padding)", cfg.window_size / 2)));
        }
        let o = self.stft_opts();
        let spec = stft(mixture, &o)?;
        let frames = spec.shape()[4];
        let tp = frames.div_ceil(TIME_MULTIPLE) * TIME_MULTIPLE;
        let condition = self.condition(cond)?;
        trace("condition", &condition)?;
        let betas = self.film.betas(&condition)?;
        let time = match (&self.time_embedding, cfg.time_film) {
            (Some(te), Some(mode)) => {
                let logits =
                    extra.strong_logits.ok_or_else(|| Error::Msg("separator: this model uses time-FiLM: give the SED model's strong logits".into()))?;
                let s = cfg.target_sources_num;
                let (sel, t) = selected_logits(&cond.to_vec()?, b, s, logits, cfg.binarize_sed_preds)?;
                Some(TimeBetas::new(mode, te, &self.film, &sel, (b, s, t), self.device)?)
            }
            _ => None,
        };
        let inject = match (&self.inject, extra.embeddings) {
            (Some(inj), Some(e)) => {
                let f = inj.features_map(e, self.device)?;
                trace("inject_features", &f)?;
                Some(f)
            }
            (Some(_), None) => return Err(Error::Msg("separator: this model injects the SED model's hidden states: give the embeddings".into())),
            _ => None,
        };
        let extras = NetExtras { time: time.as_ref(), inject: inject.as_ref() };
        let x = magnitude_input(&spec, &self.bn0.scale, &self.bn0.shift, tp)?;
        trace("net_input", &x)?;
        let gate = match cfg.conditioning {
            Conditioning::Label => Some(source_gate(cond, cfg.target_sources_num, cfg.label_len, self.device)?),
            Conditioning::Query => None,
        };
        let oc = self.out_conv.as_ref().map(|(w, b)| OutConv { weight: w, bias: b });
        let passes = if cfg.iterations > 0 { extra.iterations.unwrap_or(cfg.iterations) } else { 1 };
        if passes == 0 {
            return Err(Error::Msg("separator: the iterative model needs at least 1 pass".into()));
        }
        let mut fb: Option<Tensor> = None;
        let mut out = None;
        for pass in 0..passes {
            let y = match &self.bn0_fb {
                Some(bn) => {
                    // The feedback channel: the previous estimate (zeros on pass 1), magnitude only.
                    let prev = match &fb {
                        Some(w) => w.clone(),
                        None => Tensor::zeros(&[b, 1, len], aural_runtime::DType::F32, self.device)?,
                    };
                    let xf = magnitude_input(&stft(&prev, &o)?, &bn.scale, &bn.shift, tp)?;
                    trace("fb_input", &xf)?;
                    self.network_traced(&[&x, &xf], &betas, &extras, trace)?
                }
                None => self.network_traced(&[&x], &betas, &extras, trace)?,
            };
            let masked = complex_mask(&spec, &y, cfg.target_sources_num, oc.as_ref(), gate.as_ref())?;
            drop(y);
            trace("masked", &masked)?;
            let wave = istft(&masked, &o, Some(len))?;
            if self.bn0_fb.is_some() {
                trace(&format!("pass{}", pass + 1), &wave)?;
                fb = Some(wave.reshape(&[b, 1, len])?);
            }
            out = Some(wave);
        }
        Ok(out.expect("at least one pass"))
    }
}

/// The CP-JKU inputs of one network pass.
#[derive(Default, Clone, Copy)]
pub struct NetExtras<'a> {
    /// Time-FiLM values.
    pub time: Option<&'a TimeBetas>,
    /// The injected map (B, dim, grid_t, grid_f) ([`Injection::features_map`]).
    pub inject: Option<&'a Tensor>,
}

/// (B, S): 1 where slot s of the label vector (B, label_len) has a nonzero entry, else 0 (the
/// baseline's source mask).
pub(crate) fn source_gate(labels: &Tensor, s: usize, label_len: usize, device: Device) -> Result<Tensor> {
    let v = labels.to_vec()?;
    let per = label_len / s;
    let g: Vec<f32> = v.chunks(per).map(|slot| if slot.iter().any(|&x| x != 0.0) { 1.0 } else { 0.0 }).collect();
    Tensor::from_slice(&g, &[labels.shape()[0], s], device)
}
