//! CP-JKU's stage-2 SED model (seed 003): the M2D encoder in its 16 kHz configuration with a strong
//! attention head — its strong logits drive the separator's time-FiLM, its hidden states the
//! injection (DESIGN.md §6.5).
//!
//! mixture (B, C, L) at `input_sample_rate` → channel `ref_channel` → resampled to `sample_rate`
//! ([`crate::audio::resample_kaiser`], torchaudio's Kaiser sinc) → log-mel (n_fft 400, hop 160, 80 mel
//! 50–8000 Hz, Slaney) → (x − mean)/std with the config's (-7.1, 4.2) → units of 1001 frames, each
//! through the ViT (the tagger's unit encoder), their tokens concatenated along time: the final-norm
//! tokens as (B, t′, F′·D) (the F′ frequency tokens of a time step side by side, frequency-major), and
//! the hidden states (patch embedding + every block, cls removed, (B, F′·t′, D) each) →
//! the sequence resized to `seq_len` frames (adaptive average pooling when longer, linear
//! interpolation with align_corners=False when shorter) → strong logits = strong_head(x) (B, classes,
//! seq_len); weak = Σ_t σ(strong)·s / Σ_t s with s = clamp(softmax_classes(weak_head(x)), 1e-7, 1).
//! An optional `head_norm` (BatchNorm1d without affine) precedes both heads when the checkpoint has it.
//!
//! Checkpoint: `config.json` ([`M2dConfig`] with `"architecture": "m2d_sed"`) + `model.safetensors`
//! with the wrapper's `state_dict()` names: `model.m2d.backbone.*` (as M2dAt's `backbone.*`),
//! `strong_head.{weight,bias}`, `weak_head.{weight,bias}`, optionally `head_norm.{running_mean,
//! running_var}`; the front end's buffers (`model.m2d.to_spec.*`, `*mel_transform*`) and
//! `model.m2d.backbone.norm_stats` are ignored. `scripts/convert_cpjku_ckpt.py` exports it from a
//! CP-JKU Lightning checkpoint (`embedding_model.*`).

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::ops::shape;
use aural_runtime::{DType, Device, Error, Result, Tensor};

use super::{encode_unit, load_vit, normalised_log_mel, M2dConfig};
use crate::ast::AstModel;
use crate::params::Params;

/// The model on one device.
#[derive(Debug, Clone)]
pub struct M2dSed {
    pub config: M2dConfig,
    pub device: Device,
    pub vit: AstModel,
    /// (classes, F′·D) and (classes), host values.
    pub strong_head: (Vec<f32>, Vec<f32>),
    pub weak_head: (Vec<f32>, Vec<f32>),
    /// BatchNorm1d (no affine) running (mean, var) before the heads, when present.
    pub head_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// Checkpoint tensors that matched nothing (a warning, not an error).
    pub unexpected: Vec<String>,
}

/// What the model gives for a batch of mixtures.
#[derive(Debug, Clone)]
pub struct SedOutput {
    /// (B, classes, seq_len).
    pub strong_logits: Tensor,
    /// (B, classes): the attention head's clip probabilities.
    pub weak: Vec<Vec<f32>>,
    /// (B, depth + 1, tokens, D): the patch embedding and every block's output, cls removed.
    pub hidden_states: Tensor,
}

fn ignorable(name: &str) -> bool {
    name.ends_with("num_batches_tracked") || name.contains("to_spec.") || name.contains("mel_transform") || name == "model.m2d.backbone.norm_stats"
}

impl M2dSed {
    /// Loads `dir/config.json` + `dir/model.safetensors` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<M2dSed> {
        let dir = dir.as_ref();
        let config = M2dConfig::from_file(dir.join("config.json"))?;
        let (tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
        M2dSed::from_tensors(config, &tensors, &st, device)
    }

    pub fn from_tensors(config: M2dConfig, tensors: &BTreeMap<String, Tensor>, source: &Path, device: Device) -> Result<M2dSed> {
        config.validate()?;
        if config.architecture != "m2d_sed" {
            return Err(Error::File {
                path: source.display().to_string(),
                msg: format!("a stage-2 SED model needs \"architecture\": \"m2d_sed\", not \"{}\"", config.architecture),
            });
        }
        let mut p = Params::new(tensors, source, device);
        let vit = load_vit(&mut p, &config, "model.m2d.backbone.", device)?;
        let width = config.embed_dim * config.freq_patches();
        let k = config.classes.len();
        let head = |p: &mut Params, name: &str| -> Result<(Vec<f32>, Vec<f32>)> {
            Ok((p.take(&format!("{name}.weight"), &[k, width])?.to_vec()?, p.take(&format!("{name}.bias"), &[k])?.to_vec()?))
        };
        let strong_head = head(&mut p, "strong_head")?;
        let weak_head = head(&mut p, "weak_head")?;
        let head_norm = if tensors.contains_key("head_norm.running_mean") {
            Some((p.take("head_norm.running_mean", &[width])?.to_vec()?, p.take("head_norm.running_var", &[width])?.to_vec()?))
        } else {
            None
        };
        let unexpected = tensors.keys().filter(|k| !p.used.contains(*k) && !ignorable(k)).cloned().collect();
        Ok(M2dSed { config, device, vit, strong_head, weak_head, head_norm, unexpected })
    }

    /// The model's input (B, L′) at `sample_rate`: channel `ref_channel` of `mixture` (B, C, L) at
    /// `input_sample_rate`, resampled.
    pub fn input(&self, mixture: &Tensor) -> Result<Tensor> {
        let s = mixture.shape();
        let c = &self.config;
        if s.len() != 3 || s[1] <= c.ref_channel || s[2] == 0 {
            return Err(Error::Msg(format!("SED model: the mixture must be (batch, channels > {}, samples > 0), got {s:?}", c.ref_channel)));
        }
        let (b, ch, l) = (s[0], s[1], s[2]);
        let v = mixture.to_vec()?;
        let from = c.input_sample_rate.unwrap_or(c.sample_rate);
        let rows: Vec<Vec<f32>> = (0..b).map(|bi| crate::audio::resample_kaiser(&v[(bi * ch + c.ref_channel) * l..][..l], from, c.sample_rate)).collect();
        let n = rows[0].len();
        if n <= c.n_fft / 2 {
            return Err(Error::Msg(format!("SED model: {l} samples is too short (needs more than n_fft/2 = {} after resampling)", c.n_fft / 2)));
        }
        Tensor::from_vec(rows.concat(), &[b, n])?.to_device(self.device)
    }

    /// Strong logits, weak probabilities and hidden states of mixtures (B, C, L).
    pub fn forward(&self, mixture: &Tensor) -> Result<SedOutput> {
        let c = &self.config;
        let lms = normalised_log_mel(c, &self.input(mixture)?, (c.norm_mean, c.norm_std))?;
        let (b, m, total) = (lms.shape()[0], lms.shape()[1], lms.shape()[2]);
        let [_, pw] = c.patch_size;
        let unit = c.input_size[1];
        let (d, fp) = (c.embed_dim, c.freq_patches());
        let padded = total.div_ceil(pw) * pw;
        let x = if padded > total { shape::concat(&[&lms, &Tensor::zeros(&[b, m, padded - total], DType::F32, lms.device())?], 2)? } else { lms };
        // Per unit: tokens (B, 1 + F′t′, D) and the hidden states; joined along time.
        let mut seq: Vec<Vec<f32>> = vec![Vec::new(); b]; // (t, F′·D) rows per item
        let mut states: Vec<Vec<Tensor>> = Vec::new();
        let mut steps = 0;
        for start in (0..total).step_by(unit) {
            let len = unit.min(padded - start);
            if len < pw {
                continue;
            }
            let mut st = Vec::new();
            let tok = encode_unit(&self.vit, c, &shape::slice(&x, 2, start, len)?, Some(&mut st))?.to_vec()?;
            let t = (len - pw) / pw + 1;
            let rows = 1 + fp * t;
            for (bi, out) in seq.iter_mut().enumerate() {
                for ti in 0..t {
                    for f in 0..fp {
                        out.extend_from_slice(&tok[(bi * rows + 1 + f * t + ti) * d..][..d]);
                    }
                }
            }
            steps += t;
            states.push(st);
        }
        if steps == 0 {
            return Err(Error::Msg("SED model: the input holds no whole patch".into()));
        }
        let width = fp * d;
        let frames = c.seq_len;
        let resized: Vec<Vec<f32>> = seq.iter().map(|s| resize_sequence(s, steps, width, frames)).collect();
        let k = c.classes.len();
        let mut strong = vec![0f32; b * k * frames];
        let mut weak = Vec::with_capacity(b);
        for (bi, r) in resized.iter().enumerate() {
            let (mut num, mut den) = (vec![0f64; k], vec![0f64; k]);
            for t in 0..frames {
                let mut row: Vec<f64> = r[t * width..][..width].iter().map(|&v| v as f64).collect();
                if let Some((mean, var)) = &self.head_norm {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (*v - mean[j] as f64) / (var[j] as f64 + 1e-5).sqrt();
                    }
                }
                let logits = |(w, bias): &(Vec<f32>, Vec<f32>)| -> Vec<f64> {
                    (0..k).map(|ci| bias[ci] as f64 + w[ci * width..][..width].iter().zip(&row).map(|(&a, &x)| a as f64 * x).sum::<f64>()).collect()
                };
                let ls = logits(&self.strong_head);
                let lw = logits(&self.weak_head);
                let mx = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = lw.iter().map(|v| (v - mx).exp()).collect();
                let se: f64 = e.iter().sum();
                for ci in 0..k {
                    strong[(bi * k + ci) * frames + t] = ls[ci] as f32;
                    let sof = (e[ci] / se).clamp(1e-7, 1.0);
                    num[ci] += sof / (1.0 + (-ls[ci]).exp());
                    den[ci] += sof;
                }
            }
            weak.push(num.iter().zip(&den).map(|(n, d)| (n / d) as f32).collect());
        }
        // Hidden states: each layer's units joined along tokens → (B, layers, tokens, D).
        let layers = states[0].len();
        let mut hs = Vec::with_capacity(layers);
        for l in 0..layers {
            let parts: Vec<&Tensor> = states.iter().map(|st| &st[l]).collect();
            let joined = if parts.len() == 1 { parts[0].clone() } else { shape::concat(&parts, 1)? };
            let s = joined.shape().to_vec();
            hs.push(joined.reshape(&[s[0], 1, s[1], s[2]])?);
        }
        let hidden_states = shape::concat(&hs.iter().collect::<Vec<_>>(), 1)?;
        Ok(SedOutput { strong_logits: Tensor::from_vec(strong, &[b, k, frames])?.to_device(self.device)?, weak, hidden_states })
    }
}

/// A (steps, width) sequence resized to `frames` steps: adaptive average pooling when longer
/// (bin i = [⌊i·n/f⌋, ⌈(i+1)·n/f⌉)), linear interpolation (align_corners=False) when shorter.
pub fn resize_sequence(x: &[f32], steps: usize, width: usize, frames: usize) -> Vec<f32> {
    let mut out = vec![0f32; frames * width];
    if steps == frames {
        out.copy_from_slice(&x[..frames * width]);
    } else if steps > frames {
        for i in 0..frames {
            let (a, b) = (i * steps / frames, ((i + 1) * steps).div_ceil(frames));
            for j in 0..width {
                let s: f64 = (a..b).map(|t| x[t * width + j] as f64).sum();
                out[i * width + j] = (s / (b - a) as f64) as f32;
            }
        }
    } else {
        let scale = steps as f64 / frames as f64;
        for i in 0..frames {
            let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(steps - 1);
            let i1 = (i0 + 1).min(steps - 1);
            let l = src - i0 as f64;
            for j in 0..width {
                out[i * width + j] = ((1.0 - l) * x[i0 * width + j] as f64 + l * x[i1 * width + j] as f64) as f32;
            }
        }
    }
    out
}
