//! The M2D audio tagger of the DCASE 2025 task 4 baseline (M2dAt; DESIGN.md §6.4), inference.
//!
//! waveform (B, L) at 32 kHz (the mixture's reference channel) → log-mel ([`log_mel`]: n_fft = win =
//! 800, hop 320, periodic Hann, center/reflect, power, Slaney mel 50–16000 Hz, log(x + f32 eps)) →
//! (x − mean)/std → frames padded with zeros to a multiple of the patch width → units of 1001 frames
//! (the last one shorter) → per unit: 16×16 patches (5 frequency × t′ time, frequency-major) + the
//! position table (cut per frequency row for a short unit), the cls token with its own position
//! prepended, pre-LN ViT blocks (LayerNorm eps 1e-6, exact GELU; the AST blocks, `ast::AstModel::block`),
//! final LayerNorm, cls dropped → features: the mean of every patch token of every unit (768-d), or,
//! when the head is 5 × 768 wide, the 5 frequency tokens of each time step concatenated and averaged
//! over time → BatchNorm1d (no affine, running statistics, eps 1e-5) → Linear → sigmoid.
//!
//! Checkpoint: `config.json` ([`M2dConfig`]) + `model.safetensors` with the PyTorch module's names:
//! `backbone.{cls_token, pos_embed, norm_stats, patch_embed.proj.*, blocks.{i}.{norm1, attn.qkv,
//! attn.proj, norm2, mlp.fc1, mlp.fc2}.*, norm.*}`, `head_norm.{running_mean, running_var}`,
//! `head.{weight, bias}`; `num_batches_tracked` and the front end's `to_spec.*` buffers are ignored.
//! `scripts/convert_m2d_ckpt.py` makes this directory from the baseline's Lightning checkpoint or an
//! M2D weights file.

pub mod config;
pub mod sed;

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::ops::melspec::{log_mel, MelOpts};
use aural_runtime::ops::patch_embed::{patch_embed, PatchEmbed};
use aural_runtime::ops::{shape, unary};
use aural_runtime::{DType, Device, Error, Result, Tensor};

pub use config::M2dConfig;
pub use sed::{M2dSed, SedOutput};

use crate::ast::{AstConfig, AstLayer, AstModel, PatchSize};
use crate::params::Params;

/// The tagger on one device.
#[derive(Debug, Clone)]
pub struct M2dTagger {
    pub config: M2dConfig,
    pub device: Device,
    /// The ViT: patch embedding, cls token (`prefix`), the full position table (1 + F′T′, D), blocks,
    /// final LayerNorm (the AST implementation: the same pre-LN blocks).
    pub vit: AstModel,
    /// (mean, std) of the log-mel normalisation.
    pub norm_stats: (f32, f32),
    /// head_norm running (mean, var), host values.
    pub head_norm: (Vec<f32>, Vec<f32>),
    /// head (classes, features) and bias, host values.
    pub head: (Vec<f32>, Vec<f32>),
    /// The head reads the 5 frequency tokens of a time step concatenated (5·D) instead of the mean token (D).
    pub stacked: bool,
    /// Checkpoint tensors that matched nothing (a warning, not an error).
    pub unexpected: Vec<String>,
}

fn ignorable(name: &str) -> bool {
    name.ends_with("num_batches_tracked") || name.starts_with("to_spec.") || name.starts_with("backbone.to_spec.")
}

impl M2dTagger {
    /// Loads `dir/config.json` + `dir/model.safetensors` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<M2dTagger> {
        let dir = dir.as_ref();
        let config = M2dConfig::from_file(dir.join("config.json"))?;
        let (tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
        M2dTagger::from_tensors(config, &tensors, &st, device)
    }

    pub fn from_tensors(config: M2dConfig, tensors: &BTreeMap<String, Tensor>, source: &Path, device: Device) -> Result<M2dTagger> {
        config.validate()?;
        if config.architecture != "m2d_at" {
            return Err(Error::File {
                path: source.display().to_string(),
                msg: format!("the tagger needs \"architecture\": \"m2d_at\", not \"{}\" (an m2d_sed checkpoint is CP-JKU's SED model)", config.architecture),
            });
        }
        let mut p = Params::new(tensors, source, device);
        let d = config.embed_dim;
        let fp = config.freq_patches();
        let vit = load_vit(&mut p, &config, "backbone.", device)?;
        let norm_stats = match tensors.get("backbone.norm_stats") {
            Some(_) => {
                let v = p.take("backbone.norm_stats", &[2])?.to_vec()?;
                (v[0], v[1])
            }
            None => (config.norm_mean, config.norm_std),
        };
        let k = config.classes.len();
        let feat = tensors.get("head.weight").map(|t| t.shape().get(1).copied().unwrap_or(0)).unwrap_or(d);
        let stacked = feat == d * fp && fp > 1;
        let feat = if stacked { d * fp } else { d };
        let head_norm = (p.take("head_norm.running_mean", &[feat])?.to_vec()?, p.take("head_norm.running_var", &[feat])?.to_vec()?);
        let head = (p.take("head.weight", &[k, feat])?.to_vec()?, p.take("head.bias", &[k])?.to_vec()?);
        let unexpected = tensors.keys().filter(|k| !p.used.contains(*k) && !ignorable(k)).cloned().collect();
        Ok(M2dTagger { config, device, vit, norm_stats, head_norm, head, stacked, unexpected })
    }

    pub fn mel_opts(&self) -> MelOpts {
        mel_opts(&self.config)
    }

    /// The normalised log-mel (B, n_mels, T) of waveforms (B, L).
    pub fn features_in(&self, wave: &Tensor) -> Result<Tensor> {
        normalised_log_mel(&self.config, wave, self.norm_stats)
    }

    /// The final-LayerNorm tokens (B, 1 + F′·t′, D) of one unit (B, n_mels, frames ≤ 1001).
    pub fn encode_unit(&self, x: &Tensor) -> Result<Tensor> {
        encode_unit(&self.vit, &self.config, x, None)
    }

    /// The head's input features (B, D or 5·D) of normalised log-mel frames (B, n_mels, T), host values.
    pub fn features(&self, lms: &Tensor) -> Result<Vec<Vec<f32>>> {
        let (b, m, total) = (lms.shape()[0], lms.shape()[1], lms.shape()[2]);
        let [_, pw] = self.config.patch_size;
        let unit = self.config.input_size[1];
        let d = self.config.embed_dim;
        let fp = self.config.freq_patches();
        let n_units = total.div_ceil(unit);
        let padded = total.div_ceil(pw) * pw;
        let x = if padded > total { shape::concat(&[lms, &Tensor::zeros(&[b, m, padded - total], DType::F32, lms.device())?], 2)? } else { lms.clone() };
        // Σ over time steps of each frequency row's token (B, F′, D), and the number of time steps.
        let mut sums = vec![0f64; b * fp * d];
        let mut steps = 0usize;
        for u in 0..n_units {
            let start = u * unit;
            let len = unit.min(padded - start);
            if len < pw {
                continue;
            }
            let tok = self.encode_unit(&shape::slice(&x, 2, start, len)?)?.to_vec()?;
            let t = (len - pw) / pw + 1;
            let rows = 1 + fp * t;
            for bi in 0..b {
                for f in 0..fp {
                    for ti in 0..t {
                        let r = &tok[(bi * rows + 1 + f * t + ti) * d..][..d];
                        for (s, &v) in sums[(bi * fp + f) * d..][..d].iter_mut().zip(r) {
                            *s += v as f64;
                        }
                    }
                }
            }
            steps += t;
        }
        let n = steps as f64;
        Ok((0..b)
            .map(|bi| {
                let s = &sums[bi * fp * d..][..fp * d];
                if self.stacked {
                    s.iter().map(|v| (v / n) as f32).collect()
                } else {
                    (0..d).map(|j| ((0..fp).map(|f| s[f * d + j]).sum::<f64>() / (n * fp as f64)) as f32).collect()
                }
            })
            .collect())
    }

    /// Clip probabilities (B, classes) of waveforms (B, L) at the model's rate.
    pub fn probabilities(&self, wave: &Tensor) -> Result<Vec<Vec<f32>>> {
        if wave.rank() != 2 {
            return Err(Error::Msg(format!("M2D: waveforms must be (batch, samples), got {:?}", wave.shape())));
        }
        let feats = self.features(&self.features_in(wave)?)?;
        let (mean, var) = &self.head_norm;
        let (w, bias) = &self.head;
        let nf = mean.len();
        Ok(feats
            .iter()
            .map(|f| {
                let z: Vec<f64> = (0..nf).map(|j| (f[j] as f64 - mean[j] as f64) / (var[j] as f64 + 1e-5).sqrt()).collect();
                bias.iter()
                    .enumerate()
                    .map(|(k, &bk)| {
                        let logit = bk as f64 + w[k * nf..][..nf].iter().zip(&z).map(|(&a, &b)| a as f64 * b).sum::<f64>();
                        (1.0 / (1.0 + (-logit).exp())) as f32
                    })
                    .collect()
            })
            .collect())
    }
}

/// The ViT of an M2D checkpoint, its tensors under `prefix` (`backbone.` in M2dAt, `model.m2d.backbone.`
/// in CP-JKU's SED wrapper): patch embedding, cls token (as `prefix`), the full position table, blocks,
/// final LayerNorm — the AST implementation (the same pre-LN blocks).
pub(crate) fn load_vit(p: &mut Params, config: &M2dConfig, prefix: &str, device: Device) -> Result<AstModel> {
    let d = config.embed_dim;
    let (fp, tp) = (config.freq_patches(), config.time_patches());
    let [ph, pw] = config.patch_size;
    let hidden = (d as f64 * config.mlp_ratio).round() as usize;
    let cls = p.take(&format!("{prefix}cls_token"), &[1, 1, d])?.reshape(&[1, d])?;
    let pos = p.take(&format!("{prefix}pos_embed"), &[1, 1 + fp * tp, d])?.reshape(&[1 + fp * tp, d])?;
    let patch_w = p.take(&format!("{prefix}patch_embed.proj.weight"), &[d, 1, ph, pw])?;
    let patch_b = p.take(&format!("{prefix}patch_embed.proj.bias"), &[d])?;
    let mut layers = Vec::new();
    for i in 0..config.depth {
        let b = format!("{prefix}blocks.{i}");
        layers.push(AstLayer {
            ln1: p.norm(&format!("{b}.norm1"), d)?,
            qkv: p.linear(&format!("{b}.attn.qkv"), 3 * d, d)?,
            o: p.linear(&format!("{b}.attn.proj"), d, d)?,
            ln2: p.norm(&format!("{b}.norm2"), d)?,
            fc1: p.linear(&format!("{b}.mlp.fc1"), hidden, d)?,
            fc2: p.linear(&format!("{b}.mlp.fc2"), d, hidden)?,
        });
    }
    let final_ln = p.norm(&format!("{prefix}norm"), d)?;
    let ast = AstConfig {
        hidden_size: d,
        num_hidden_layers: config.depth,
        num_attention_heads: config.num_heads,
        intermediate_size: hidden,
        hidden_act: "gelu".into(),
        layer_norm_eps: config.layer_norm_eps,
        patch_size: PatchSize::Rect([ph, pw]),
        qkv_bias: true,
        frequency_stride: ph,
        time_stride: pw,
        max_length: config.input_size[1],
        num_mel_bins: config.input_size[0],
    };
    Ok(AstModel { config: ast, device, patch_w, patch_b, prefix: cls, pos, layers, final_ln, classifier: None, unexpected: Vec::new() })
}

/// The front end of a config.
pub(crate) fn mel_opts(c: &M2dConfig) -> MelOpts {
    MelOpts {
        sample_rate: c.sample_rate,
        n_fft: c.n_fft,
        win_length: c.win_length,
        hop: c.hop_length,
        n_mels: c.n_mels,
        f_min: c.f_min,
        f_max: c.f_max,
        log_offset: f32::EPSILON,
    }
}

/// The normalised log-mel (B, n_mels, T) of waveforms (B, L).
pub(crate) fn normalised_log_mel(c: &M2dConfig, wave: &Tensor, (m, s): (f32, f32)) -> Result<Tensor> {
    let x = log_mel(wave, &mel_opts(c))?;
    unary::affine(&x, 1.0 / s, -m / s)
}

/// The position table of a unit with `t` time patches: row 0 (cls), then each frequency row's first
/// `t` entries.
fn pos_table(vit: &AstModel, c: &M2dConfig, t: usize) -> Result<Tensor> {
    let tp = c.time_patches();
    if t == tp {
        return Ok(vit.pos.clone());
    }
    let mut rows = vec![shape::slice(&vit.pos, 0, 0, 1)?];
    for f in 0..c.freq_patches() {
        rows.push(shape::slice(&vit.pos, 0, 1 + f * tp, t)?);
    }
    shape::concat(&rows.iter().collect::<Vec<_>>(), 0)
}

/// The final-LayerNorm tokens (B, 1 + F′·t′, D) of one unit (B, n_mels, frames ≤ 1001). With
/// `states`, also pushes the hidden states (B, F′·t′, D) without the cls token: the patch embedding
/// (before the positions are added), then every block's output (before the final LayerNorm).
pub(crate) fn encode_unit(vit: &AstModel, c: &M2dConfig, x: &Tensor, mut states: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
    let [ph, pw] = c.patch_size;
    let frames = x.shape()[2];
    if frames < pw {
        return Err(Error::Msg(format!("M2D: a unit of {frames} frames is shorter than one {pw}-frame patch")));
    }
    let t = (frames - pw) / pw + 1;
    let pos = pos_table(vit, c, t)?;
    let xt = shape::transpose(x, 1, 2)?;
    if let Some(st) = states.as_deref_mut() {
        let bare = PatchEmbed { weight: &vit.patch_w, bias: &vit.patch_b, stride: (ph, pw), prefix: None, pos: None };
        st.push(patch_embed(&xt, &bare)?);
    }
    let pe = PatchEmbed { weight: &vit.patch_w, bias: &vit.patch_b, stride: (ph, pw), prefix: Some(&vit.prefix), pos: Some(&pos) };
    let mut h = patch_embed(&xt, &pe)?;
    let n = h.shape()[1];
    for i in 0..vit.layers.len() {
        h = vit.block(i, &h)?;
        if let Some(st) = states.as_deref_mut() {
            st.push(shape::slice(&h, 1, 1, n - 1)?);
        }
    }
    vit.final_norm(&h)
}
