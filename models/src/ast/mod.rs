//! AST — the Audio Spectrogram Transformer backbone (HF `ASTModel`), inference only.
//!
//! `input_values` (B, frames, mel) → fused patch embedding (16×16 conv at stride 10 over the
//! mel × frames image, cls + distillation tokens, position embedding: one `patch_embed` op) →
//! N pre-LN ViT blocks → final LayerNorm → tokens (B, 2 + F′·T′, D). Per block:
//! `h += o_proj(attention(qkv(LN₁(h))))`, `h += fc2(act(fc1(LN₂(h))))` — the Q, K, V projections are
//! fused into one (3D × D) GEMM at load time, the attention reads the packed QKV tensor in place
//! (`ops::attention::attention_qkv`, no permutes), exact GELU is fused into the fc1 GEMM.
//!
//! Weights come from HF checkpoints by their own names ([`load`] module doc), live on the model's
//! device as runtime tensors; every op runs there (CPU, CUDA or the emulator).
//!
//! ```no_run
//! use aural_models::ast::AstModel;
//! use aural_models::runtime::{Device, Tensor};
//! let model = AstModel::load("ast-finetuned-audioset-10-10-0.4593", Device::Cpu, None).unwrap();
//! let x = Tensor::zeros(&[1, 1024, 128], aural_models::runtime::DType::F32, Device::Cpu).unwrap();
//! let tokens = model.forward(&x).unwrap(); // (1, 1214, 768)
//! let grid = model.patch_grid(&tokens).unwrap(); // (1, 12, 101, 768)
//! ```

pub mod config;
pub mod load;

use std::path::Path;

use aural_runtime::ops::attention::attention_qkv;
use aural_runtime::ops::binary::add;
use aural_runtime::ops::layernorm::layernorm;
use aural_runtime::ops::matmul::{linear, Activation, Linear};
use aural_runtime::ops::patch_embed::{patch_embed, PatchEmbed};
use aural_runtime::ops::{shape, unary};
use aural_runtime::{Device, Error, Result, Tensor};

pub use config::{AstConfig, PatchSize};
use load::Checkpoint;

/// One pre-LN transformer block.
#[derive(Debug, Clone)]
pub struct AstLayer {
    pub ln1: (Tensor, Tensor),
    /// [W_q; W_k; W_v] stacked: (3D, D); bias (3D) unless `qkv_bias` is false. The projections are
    /// [`Linear`]s: weights laid out for the device at load time (transposed on the CPU).
    pub qkv: Linear,
    pub o: Linear,
    pub ln2: (Tensor, Tensor),
    pub fc1: Linear,
    pub fc2: Linear,
}

/// HF `ASTMLPHead`: logits = dense(LayerNorm(pooled)), eps = the config's layer_norm_eps.
#[derive(Debug, Clone)]
pub struct AstClassifier {
    pub ln: (Tensor, Tensor),
    pub dense: (Tensor, Tensor),
}

/// The AST backbone on one device.
#[derive(Debug, Clone)]
pub struct AstModel {
    pub config: AstConfig,
    pub device: Device,
    /// Conv2d weight (D, 1, ph, pw) and bias (D).
    pub patch_w: Tensor,
    pub patch_b: Tensor,
    /// [cls; distillation] tokens (2, D).
    pub prefix: Tensor,
    /// (2 + F′T′, D).
    pub pos: Tensor,
    pub layers: Vec<AstLayer>,
    pub final_ln: (Tensor, Tensor),
    /// `ASTForAudioClassification`'s head, when the checkpoint has one: LayerNorm (weight, bias) and
    /// dense (weight (labels, D), bias).
    pub classifier: Option<AstClassifier>,
    /// Checkpoint tensors that matched no AST parameter (a warning, not an error).
    pub unexpected: Vec<String>,
}

impl AstModel {
    /// Loads `dir/config.json` + `dir/model.safetensors` (or a sharded save's
    /// `model.safetensors.index.json` and shards) of an HF `ASTModel` or
    /// `ASTForAudioClassification` checkpoint onto `device`. `n_layers`: keep only the first N blocks
    /// (AST-SED uses 10); `None` keeps `num_hidden_layers`.
    pub fn load(dir: impl AsRef<Path>, device: Device, n_layers: Option<usize>) -> Result<AstModel> {
        let dir = dir.as_ref();
        let (cfg, tensors, file) = load::read_dir(dir)?;
        AstModel::from_tensors(cfg, tensors, &file, device, n_layers)
    }

    /// Builds the model from a config and named tensors (the checkpoint's names); `source` is for
    /// messages.
    pub fn from_tensors(
        config: AstConfig,
        tensors: std::collections::BTreeMap<String, Tensor>,
        source: &Path,
        device: Device,
        n_layers: Option<usize>,
    ) -> Result<AstModel> {
        config.validate()?;
        let n = n_layers.unwrap_or(config.num_hidden_layers);
        if n > config.num_hidden_layers {
            return Err(Error::Msg(format!("AST: {n} layers requested but the checkpoint config has {}", config.num_hidden_layers)));
        }
        let mut ck = Checkpoint::new(tensors, source)?;
        let (d, ff) = (config.hidden_size, config.intermediate_size);
        let (ph, pw) = config.patch_dims();
        let dev = |t: Tensor| t.to_device(device);
        let patch_w = dev(ck.take("embeddings.patch_embeddings.projection.weight", &[d, 1, ph, pw])?)?;
        let patch_b = dev(ck.take("embeddings.patch_embeddings.projection.bias", &[d])?)?;
        let cls = ck.take("embeddings.cls_token", &[1, 1, d])?.reshape(&[1, d])?;
        let dist = ck.take("embeddings.distillation_token", &[1, 1, d])?.reshape(&[1, d])?;
        let prefix = dev(shape::concat(&[&cls, &dist], 0)?)?;
        let pos = dev(ck.take("embeddings.position_embeddings", &[1, config.seq_len(), d])?.reshape(&[config.seq_len(), d])?)?;
        let mut layers = Vec::with_capacity(n);
        for i in 0..n {
            let mut wb = |what: &str, shape_w: &[usize], shape_b: &[usize]| -> Result<(Tensor, Tensor)> {
                let w = ck.take(&ck.layer_name(i, what, "weight"), shape_w)?;
                let b = ck.take(&ck.layer_name(i, what, "bias"), shape_b)?;
                Ok((w, b))
            };
            let ln1 = wb("ln1", &[d], &[d])?;
            let ln2 = wb("ln2", &[d], &[d])?;
            let o = wb("o", &[d, d], &[d])?;
            let fc1 = wb("fc1", &[ff, d], &[ff])?;
            let fc2 = wb("fc2", &[d, ff], &[d])?;
            let mut qw = Vec::new();
            let mut qb = Vec::new();
            for what in ["q", "k", "v"] {
                qw.push(ck.take(&ck.layer_name(i, what, "weight"), &[d, d])?);
                if config.qkv_bias {
                    qb.push(ck.take(&ck.layer_name(i, what, "bias"), &[d])?);
                }
            }
            let qkv_w = dev(shape::concat(&qw.iter().collect::<Vec<_>>(), 0)?)?;
            let qkv_b = if config.qkv_bias { Some(dev(shape::concat(&qb.iter().collect::<Vec<_>>(), 0)?)?) } else { None };
            let pair = |(w, b): (Tensor, Tensor)| -> Result<(Tensor, Tensor)> { Ok((w.to_device(device)?, b.to_device(device)?)) };
            let lin = |(w, b): (Tensor, Tensor)| -> Result<Linear> { Linear::new(w.to_device(device)?, Some(b.to_device(device)?)) };
            layers.push(AstLayer { ln1: pair(ln1)?, qkv: Linear::new(qkv_w, qkv_b)?, o: lin(o)?, ln2: pair(ln2)?, fc1: lin(fc1)?, fc2: lin(fc2)? });
        }
        let fw = dev(ck.take("layernorm.weight", &[d])?)?;
        let fb = dev(ck.take("layernorm.bias", &[d])?)?;
        let classifier = match ck.tensors.get("classifier.dense.weight").map(|t| t.shape().to_vec()) {
            Some(s) if s.len() == 2 => {
                let labels = s[0];
                let mut root = |n: &str, shape: &[usize]| -> Result<Tensor> { dev(ck.take_root(n, shape)?) };
                Some(AstClassifier {
                    ln: (root("classifier.layernorm.weight", &[d])?, root("classifier.layernorm.bias", &[d])?),
                    dense: (root("classifier.dense.weight", &[labels, d])?, root("classifier.dense.bias", &[labels])?),
                })
            }
            Some(s) => {
                return Err(Error::File {
                    path: source.display().to_string(),
                    msg: format!("tensor 'classifier.dense.weight' has shape {s:?}, expected (labels, {d})"),
                })
            }
            None => None,
        };
        let (unexpected, _known) = ck.leftovers(&config);
        Ok(AstModel { config, device, patch_w, patch_b, prefix, pos, layers, final_ln: (fw, fb), classifier, unexpected })
    }

    /// Checks `input_values` against the config: (B, max_length, num_mel_bins).
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = &self.config;
        if x.rank() != 3 || x.shape()[1] != c.max_length || x.shape()[2] != c.num_mel_bins {
            return Err(Error::Msg(format!(
                "AST: input_values must be (batch, max_length {}, num_mel_bins {}), got {:?}",
                c.max_length,
                c.num_mel_bins,
                x.shape()
            )));
        }
        if x.device() != self.device {
            return Err(Error::Msg(format!("AST: input is on {} but the model is on {}", x.device(), self.device)));
        }
        Ok(())
    }

    /// Embedding output: (B, 2 + F′T′, D) (HF `hidden_states[0]`).
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let pe = PatchEmbed {
            weight: &self.patch_w,
            bias: &self.patch_b,
            stride: (self.config.frequency_stride, self.config.time_stride),
            prefix: Some(&self.prefix),
            pos: Some(&self.pos),
        };
        patch_embed(x, &pe)
    }

    /// One block: h + attn(LN₁ h), then + MLP(LN₂ ·).
    pub fn block(&self, i: usize, h: &Tensor) -> Result<Tensor> {
        let (c, l) = (&self.config, &self.layers[i]);
        let eps = c.layer_norm_eps as f32;
        let a = layernorm(h, Some(&l.ln1.0), Some(&l.ln1.1), eps)?;
        let qkv = l.qkv.forward(&a, Activation::None)?;
        let ctx = attention_qkv(&qkv, c.num_attention_heads, 1.0 / (c.head_dim() as f32).sqrt())?;
        let h = add(h, &l.o.forward(&ctx, Activation::None)?)?;
        let a = layernorm(&h, Some(&l.ln2.0), Some(&l.ln2.1), eps)?;
        let m = self.mlp_in(l, &a)?;
        add(&h, &l.fc2.forward(&m, Activation::None)?)
    }

    /// act(fc1(a)): exact GELU fused into the GEMM; relu and the tanh GELUs after it.
    fn mlp_in(&self, l: &AstLayer, a: &Tensor) -> Result<Tensor> {
        match self.config.hidden_act.as_str() {
            "gelu" => l.fc1.forward(a, Activation::Gelu),
            "relu" => unary::relu(&l.fc1.forward(a, Activation::None)?),
            _ => unary::gelu_tanh(&l.fc1.forward(a, Activation::None)?),
        }
    }

    /// The final LayerNorm.
    pub fn final_norm(&self, h: &Tensor) -> Result<Tensor> {
        layernorm(h, Some(&self.final_ln.0), Some(&self.final_ln.1), self.config.layer_norm_eps as f32)
    }

    /// `last_hidden_state`: (B, 2 + F′T′, D) — HF `ASTModel(...).last_hidden_state` (after the final
    /// LayerNorm, over the loaded blocks).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.embed(x)?;
        for i in 0..self.layers.len() {
            h = self.block(i, &h)?;
        }
        self.final_norm(&h)
    }

    /// [`forward`](Self::forward) with wall-clock time per op kind (patch_embed, layernorm, qkv,
    /// attention, out_proj, residual, fc1_gelu, fc2, final_ln), in seconds, summed over blocks. On a
    /// GPU the stream is synchronised after every op (so the total is slower than `forward`).
    pub fn forward_profiled(&self, x: &Tensor) -> Result<(Tensor, Vec<(&'static str, f64)>)> {
        let mut prof: Vec<(&'static str, f64)> = Vec::new();
        let be = if self.device.is_cpu() { None } else { Some(aural_runtime::gpu::backend(self.device)?) };
        let mut timed = |name: &'static str, f: &mut dyn FnMut() -> Result<Tensor>| -> Result<Tensor> {
            let t = std::time::Instant::now();
            let y = f()?;
            if let Some(be) = &be {
                be.synchronize()?;
            }
            let dt = t.elapsed().as_secs_f64();
            match prof.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += dt,
                None => prof.push((name, dt)),
            }
            Ok(y)
        };
        let c = &self.config;
        let eps = c.layer_norm_eps as f32;
        let mut h = timed("patch_embed", &mut || self.embed(x))?;
        for l in &self.layers {
            let a = timed("layernorm", &mut || layernorm(&h, Some(&l.ln1.0), Some(&l.ln1.1), eps))?;
            let qkv = timed("qkv", &mut || l.qkv.forward(&a, Activation::None))?;
            let ctx = timed("attention", &mut || attention_qkv(&qkv, c.num_attention_heads, 1.0 / (c.head_dim() as f32).sqrt()))?;
            let o = timed("out_proj", &mut || l.o.forward(&ctx, Activation::None))?;
            h = timed("residual", &mut || add(&h, &o))?;
            let a = timed("layernorm", &mut || layernorm(&h, Some(&l.ln2.0), Some(&l.ln2.1), eps))?;
            let m = timed("fc1_act", &mut || self.mlp_in(l, &a))?;
            let m = timed("fc2", &mut || l.fc2.forward(&m, Activation::None))?;
            h = timed("residual", &mut || add(&h, &m))?;
        }
        let y = timed("final_ln", &mut || self.final_norm(&h))?;
        Ok((y, prof))
    }

    /// Every hidden state as HF's `output_hidden_states=True`: index 0 the embeddings, index k the
    /// output of block k (before the final LayerNorm), k = 1..=N loaded blocks.
    pub fn forward_hidden_states(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut hs = vec![self.embed(x)?];
        for i in 0..self.layers.len() {
            let h = self.block(i, hs.last().unwrap())?;
            hs.push(h);
        }
        Ok(hs)
    }

    /// Hidden state `k` only (0 = embeddings, k = output of block k), without keeping the others.
    pub fn hidden_state(&self, x: &Tensor, k: usize) -> Result<Tensor> {
        if k > self.layers.len() {
            return Err(Error::Msg(format!("AST: hidden state {k} requested but {} blocks are loaded (0..={})", self.layers.len(), self.layers.len())));
        }
        let mut h = self.embed(x)?;
        for i in 0..k {
            h = self.block(i, &h)?;
        }
        Ok(h)
    }

    /// HF's pooler output: (cls + distillation) / 2 of `tokens` (B, S, D) → (B, D).
    pub fn pooled(&self, tokens: &Tensor) -> Result<Tensor> {
        let cls = shape::slice(tokens, 1, 0, 1)?;
        let dist = shape::slice(tokens, 1, 1, 1)?;
        let s = add(&cls, &dist)?;
        let (b, d) = (tokens.shape()[0], tokens.shape()[2]);
        unary::affine(&s, 0.5, 0.0)?.reshape(&[b, d])
    }

    /// `ASTForAudioClassification` logits (B, labels) from `tokens` (B, S, D): the classifier head on
    /// the pooled (cls + distillation)/2 token. An error when the checkpoint has no classifier.
    pub fn logits(&self, tokens: &Tensor) -> Result<Tensor> {
        let c = self.classifier.as_ref().ok_or_else(|| {
            Error::Msg("AST: this checkpoint has no classifier head (classifier.dense.*): it is an ASTModel, not ASTForAudioClassification".into())
        })?;
        let p = layernorm(&self.pooled(tokens)?, Some(&c.ln.0), Some(&c.ln.1), self.config.layer_norm_eps as f32)?;
        linear(&p, &c.dense.0, Some(&c.dense.1))
    }

    /// The patch tokens as a grid: (B, 2 + F′T′, D) → (B, F′, T′, D) (drops cls and distillation).
    pub fn patch_grid(&self, tokens: &Tensor) -> Result<Tensor> {
        let (f, t) = self.config.grid().expect("validated config");
        if tokens.rank() != 3 || tokens.shape()[1] != 2 + f * t {
            return Err(Error::Msg(format!("AST: patch_grid needs (B, {}, D) tokens, got {:?}", 2 + f * t, tokens.shape())));
        }
        let (b, d) = (tokens.shape()[0], tokens.shape()[2]);
        shape::slice(tokens, 1, 2, f * t)?.reshape(&[b, f, t, d])
    }
}
