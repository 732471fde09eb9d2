//! AST-SED and its AST-GRU baseline (seed 000: "AST-SED: An effective sound event detection method
//! based on audio spectrogram transformer", ICASSP 2023), inference.
//!
//! `input_values` (B, max_length, mel) →
//! 1. **PTE**: the AST backbone, first `ast_layers` blocks + AST's final LayerNorm, the cls and
//!    distillation tokens dropped → patch grid PO (B, F′, T′, C).
//! 2. **FTE** (`ast-sed`): per frame t the sequence [cls_t, PO(0,t), …, PO(F′−1,t)] of F′+1 tokens,
//!    `fte_layers` post-LN blocks X̂ = LN(MHSA(X) + X), Y = LN(MLP(X̂) + X̂) (attention along
//!    frequency only: B·T′ independent sequences of F′+1 tokens, which the short-sequence attention
//!    kernel handles in one launch), output the CLS token of each frame → (B, T′, C).
//!    **`ast-gru`**: the mean over frequency of PO instead.
//! 3. **LGD**: nearest-neighbour upsampling ×`upsample` along time, then a bidirectional GRU
//!    (torch.nn.GRU semantics) → (B, T′·u, 2H). The upsampling is folded into the GRU
//!    (`ops::gru::gru_repeat`): the input projection runs on the T′ distinct frames and its rows
//!    are repeated, which gives the same numbers as projecting the upsampled sequence, u× cheaper.
//! 4. **Heads**: strong = σ(Linear(x)) per frame and class; weak = Σ_t strong·a / Σ_t a with
//!    a = clamp(softmax_t(Linear_att(x)), 1e-7, 1) (DESED baseline attention pooling, softmax over
//!    time as the issue specifies).
//!
//! Every op is a runtime op, so the model runs on the CPU, a GPU or the emulator.
//!
//! Checkpoint: a directory with `config.json` ([`SedConfig`]) and `model.safetensors` holding
//! `ast.` + the HF ASTModel names (as HF checkpoints store them), `fte.cls` (fte_max_frames, C),
//! `fte.blocks.{i}.attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}`
//! (torch.nn.MultiheadAttention), `fte.blocks.{i}.{norm1,norm2}.{weight,bias}`,
//! `fte.blocks.{i}.mlp.{fc1,fc2}.{weight,bias}`, `lgd.gru.*` (torch.nn.GRU, bidirectional, one layer),
//! `head.strong.{weight,bias}`, `head.attn.{weight,bias}`. A missing or mis-shaped tensor is an error
//! naming it and both shapes; tensors that match nothing are listed in [`AstSed::unexpected`].

pub mod config;
pub mod detect;
pub mod train;

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::ops::attention::attention_qkv;
use aural_runtime::ops::binary::{add, div, maximum, minimum, mul};
use aural_runtime::ops::gru::{gru_repeat, GruWeights};
use aural_runtime::ops::layernorm::layernorm;
use aural_runtime::ops::matmul::{Activation, Linear};
use aural_runtime::ops::reduce::{mean, sum};
use aural_runtime::ops::softmax::softmax;
use aural_runtime::ops::{shape, unary};
use aural_runtime::{Device, Error, Result, Tensor};

pub use config::{Architecture, PerClass, SedConfig};
pub use detect::{window_starts, ClipScores, DetectOpts, Detector};

use crate::ast::AstModel;
use crate::params::Params;

/// One post-LN block of the frequency-wise transformer encoder.
#[derive(Debug, Clone)]
pub struct FteBlock {
    /// [W_q; W_k; W_v] (3C, C) and bias (3C), as torch.nn.MultiheadAttention's in_proj.
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub norm1: (Tensor, Tensor),
    pub norm2: (Tensor, Tensor),
    pub fc1: Linear,
    pub fc2: Linear,
}

/// Frame-level and clip-level outputs, on the model's device.
#[derive(Debug, Clone)]
pub struct SedOutput {
    /// σ(strong logits): (B, T′·u, K).
    pub strong: Tensor,
    /// Attention logits of the weak head, before the softmax over time: (B, T′·u, K).
    pub att: Tensor,
    /// Attention-pooled clip scores: (B, K).
    pub weak: Tensor,
}

/// An AST-SED or AST-GRU model on one device.
#[derive(Debug, Clone)]
pub struct AstSed {
    pub config: SedConfig,
    pub device: Device,
    pub ast: AstModel,
    /// The first T′ rows of `fte.cls`: (T′, C); `None` for AST-GRU.
    pub fte_cls: Option<Tensor>,
    pub fte: Vec<FteBlock>,
    pub gru: GruWeights,
    pub strong: Linear,
    pub attn: Linear,
    /// Checkpoint tensors that matched no parameter (a warning, not an error).
    pub unexpected: Vec<String>,
}

impl AstSed {
    /// Loads `dir/config.json` + `dir/model.safetensors` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<AstSed> {
        let (config, tensors, st) = read_dir(dir.as_ref())?;
        AstSed::from_tensors(config, tensors, &st, device)
    }

    /// Builds the model from a config and the checkpoint's named tensors; `source` is for messages.
    pub fn from_tensors(config: SedConfig, tensors: BTreeMap<String, Tensor>, source: &Path, device: Device) -> Result<AstSed> {
        config.validate()?;
        let mut ast_tensors = BTreeMap::new();
        let mut rest = BTreeMap::new();
        for (k, v) in tensors {
            match k.strip_prefix("ast.") {
                Some(s) => {
                    ast_tensors.insert(s.to_string(), v);
                }
                None => {
                    rest.insert(k, v);
                }
            }
        }
        if ast_tensors.is_empty() {
            return Err(Error::File {
                path: source.display().to_string(),
                msg: "no 'ast.' tensors: not an AST-SED checkpoint (an HF AST checkpoint goes to `aural embed`)".into(),
            });
        }
        let ast = AstModel::from_tensors(config.ast.clone(), ast_tensors, source, device, Some(config.ast_layers))?;
        let mut unexpected: Vec<String> = ast.unexpected.iter().map(|n| format!("ast.{n}")).collect();
        let c = config.ast.hidden_size;
        let (_, tp) = config.grid();
        let mut p = Params::new(&rest, source, device);
        let (fte_cls, fte) = match config.architecture {
            Architecture::AstGru => (None, Vec::new()),
            Architecture::AstSed => {
                let cls = p.take("fte.cls", &[config.fte_max_frames, c])?;
                let cls = shape::slice(&cls, 0, 0, tp)?;
                let mut blocks = Vec::new();
                for i in 0..config.fte_layers {
                    let b = format!("fte.blocks.{i}");
                    let in_proj =
                        Linear::new(p.take(&format!("{b}.attn.in_proj_weight"), &[3 * c, c])?, Some(p.take(&format!("{b}.attn.in_proj_bias"), &[3 * c])?))?;
                    blocks.push(FteBlock {
                        in_proj,
                        out_proj: p.linear(&format!("{b}.attn.out_proj"), c, c)?,
                        norm1: p.norm(&format!("{b}.norm1"), c)?,
                        norm2: p.norm(&format!("{b}.norm2"), c)?,
                        fc1: p.linear(&format!("{b}.mlp.fc1"), config.fte_mlp, c)?,
                        fc2: p.linear(&format!("{b}.mlp.fc2"), c, config.fte_mlp)?,
                    });
                }
                (Some(cls), blocks)
            }
        };
        let h = config.gru_hidden;
        let mut gmap = BTreeMap::new();
        for sfx in ["", "_reverse"] {
            for (w, shp) in [("weight_ih_l0", vec![3 * h, c]), ("weight_hh_l0", vec![3 * h, h]), ("bias_ih_l0", vec![3 * h]), ("bias_hh_l0", vec![3 * h])] {
                let n = format!("{w}{sfx}");
                gmap.insert(n.clone(), p.take(&format!("lgd.gru.{n}"), &shp)?);
            }
        }
        let gru = GruWeights::from_tensors(&gmap, "", 1, true)?;
        let k = config.classes.len();
        let strong = p.linear("head.strong", k, 2 * h)?;
        let attn = p.linear("head.attn", k, 2 * h)?;
        unexpected.extend(rest.keys().filter(|n| !p.used.contains(*n)).cloned());
        Ok(AstSed { config, device, ast, fte_cls, fte, gru, strong, attn, unexpected })
    }

    /// PTE: (B, max_length, mel) → patch grid (B, F′, T′, C).
    pub fn pte(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = self.ast.forward(x)?;
        self.ast.patch_grid(&tokens)
    }

    /// FTE (or, for AST-GRU, the mean over frequency): (B, F′, T′, C) → (B, T′, C).
    pub fn frame_embeddings(&self, po: &Tensor) -> Result<Tensor> {
        let (b, f, t, c) = (po.shape()[0], po.shape()[1], po.shape()[2], po.shape()[3]);
        let Some(cls) = &self.fte_cls else {
            return mean(po, 1, false);
        };
        // (B, T′, F′, C) with each frame's CLS in front → B·T′ sequences of F′+1 tokens.
        let tokens = shape::permute(po, &[0, 2, 1, 3])?;
        let cls = shape::repeat_interleave(&cls.reshape(&[1, t, 1, c])?, 0, b)?;
        let mut x = shape::concat(&[&cls, &tokens], 2)?.reshape(&[b * t, f + 1, c])?;
        let heads = self.config.fte_heads;
        let scale = 1.0 / ((c / heads) as f32).sqrt();
        let eps = self.config.fte_ln_eps as f32;
        for blk in &self.fte {
            let qkv = blk.in_proj.forward(&x, Activation::None)?;
            let a = blk.out_proj.forward(&attention_qkv(&qkv, heads, scale)?, Activation::None)?;
            x = layernorm(&add(&a, &x)?, Some(&blk.norm1.0), Some(&blk.norm1.1), eps)?;
            let m = blk.fc1.forward(&x, Activation::Gelu)?;
            let m = blk.fc2.forward(&m, Activation::None)?;
            x = layernorm(&add(&m, &x)?, Some(&blk.norm2.0), Some(&blk.norm2.1), eps)?;
        }
        shape::slice(&x, 1, 0, 1)?.reshape(&[b, t, c])
    }

    /// LGD: (B, T′, C) → upsampled BiGRU states (B, T′·u, 2H).
    pub fn decoder(&self, e: &Tensor) -> Result<Tensor> {
        gru_repeat(e, &self.gru, None, true, self.config.upsample)
    }

    /// Heads on the decoder states (B, T, 2H).
    pub fn heads(&self, y: &Tensor) -> Result<SedOutput> {
        let strong = unary::sigmoid(&self.strong.forward(y, Activation::None)?)?;
        let att = self.attn.forward(y, Activation::None)?;
        let weak = attention_pool(&strong, &att)?;
        Ok(SedOutput { strong, att, weak })
    }

    /// The whole model on `input_values` (B, max_length, mel) as `aural features --ast` writes it.
    pub fn forward(&self, x: &Tensor) -> Result<SedOutput> {
        let po = self.pte(x)?;
        let e = self.frame_embeddings(&po)?;
        let y = self.decoder(&e)?;
        self.heads(&y)
    }
}

/// Reads `dir/config.json` (validated) and the weights (`model.safetensors` or its shards); also
/// returns the file naming the weights.
pub(crate) fn read_dir(dir: &Path) -> Result<(SedConfig, BTreeMap<String, Tensor>, std::path::PathBuf)> {
    let config = SedConfig::from_file(dir.join("config.json"))?;
    let (tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
    Ok((config, tensors, st))
}

/// weak = Σ_t strong·a / Σ_t a, a = clamp(softmax_t(att), 1e-7, 1): (B, T, K) ×2 → (B, K), on
/// the tensors' device. (`sed::attention_pool` is the host version for stitched scores.)
pub fn attention_pool(strong: &Tensor, att: &Tensor) -> Result<Tensor> {
    let dev = att.device();
    let a = shape::permute(&softmax(&shape::permute(att, &[0, 2, 1])?)?, &[0, 2, 1])?;
    let a = minimum(&maximum(&a, &Tensor::full(&[1], 1e-7, dev)?)?, &Tensor::full(&[1], 1.0, dev)?)?;
    div(&sum(&mul(strong, &a)?, 1, false)?, &sum(&a, 1, false)?)
}
