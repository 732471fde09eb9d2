//! AST-SED / AST-GRU as a differentiable graph: the same model as [`AstSed`](super::AstSed), written
//! with `aural_autograd` ops over a [`ParamStore`] whose names are the checkpoint's, so gradients,
//! optimizer state and saved checkpoints address parameters by the names users see in PyTorch.
//!
//! The store holds exactly the parameters the model uses: AST blocks past `ast_layers` and an
//! `ASTForAudioClassification` classifier stay in the file but are not parameters. The AST's Q, K and
//! V projections stay three parameters (their gradients are separate tensors, as in PyTorch); the
//! graph concatenates them into one packed projection per block, so the forward is one GEMM.
//! Dropout is not modelled (AST-SED fine-tunes without it; the gradient check runs torch in eval()).

use std::collections::BTreeMap;
use std::path::Path;

use aural_autograd::ops::{self, GruParams};
use aural_autograd::{ParamStore, Tape, Var};
use aural_runtime::{Device, Error, Result, Tensor};

use super::{Architecture, AstSed, SedConfig};
use crate::ast::load::Checkpoint;

/// Names of one AST block's parameters in the checkpoint's scheme.
#[derive(Debug, Clone)]
struct BlockNames {
    ln1: [String; 2],
    q: [String; 2],
    k: [String; 2],
    v: [String; 2],
    o: [String; 2],
    ln2: [String; 2],
    fc1: [String; 2],
    fc2: [String; 2],
}

/// A trainable AST-SED. Cloning shares nothing mutable: a clone's store is updated on its own (the
/// mean teacher is a clone of the student).
#[derive(Debug, Clone)]
pub struct TrainableAstSed {
    pub config: SedConfig,
    pub store: ParamStore,
    /// Checkpoint tensors the model does not use (AST blocks past `ast_layers`, a classifier), on
    /// the host, written back by [`TrainableAstSed::save`] so a saved checkpoint holds everything the
    /// loaded one did.
    pub extra: BTreeMap<String, Tensor>,
    /// `ast.` + the checkpoint's AST prefix (`""` or `audio_spectrogram_transformer.`).
    ast_prefix: String,
    blocks: Vec<BlockNames>,
}

/// The model's outputs on a tape.
pub struct TrainOutput {
    /// (B, T′·u, K) probabilities.
    pub strong: Var,
    /// (B, K) probabilities.
    pub weak: Var,
}

impl TrainableAstSed {
    /// Loads a checkpoint directory (validated exactly as [`AstSed::load`]) into a parameter store on
    /// `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<TrainableAstSed> {
        let (config, tensors, st) = super::read_dir(dir.as_ref())?;
        TrainableAstSed::from_tensors(config, tensors, &st, device)
    }

    /// The model from a config and named tensors (validated exactly as [`AstSed::from_tensors`];
    /// `st` names the source in messages).
    pub fn from_tensors(config: SedConfig, tensors: BTreeMap<String, Tensor>, st: &Path, device: Device) -> Result<TrainableAstSed> {
        // Shape and name checks (errors name the tensor and both shapes).
        let checked = AstSed::from_tensors(config.clone(), tensors.clone(), st, Device::Cpu)?;
        let ast_tensors = tensors.iter().filter_map(|(k, v)| k.strip_prefix("ast.").map(|s| (s.to_string(), v.clone()))).collect();
        let ck = Checkpoint::new(ast_tensors, st)?;
        let pair = |i: usize, what: &str| [format!("ast.{}", ck.layer_name(i, what, "weight")), format!("ast.{}", ck.layer_name(i, what, "bias"))];
        let blocks: Vec<BlockNames> = (0..config.ast_layers)
            .map(|i| BlockNames {
                ln1: pair(i, "ln1"),
                q: pair(i, "q"),
                k: pair(i, "k"),
                v: pair(i, "v"),
                o: pair(i, "o"),
                ln2: pair(i, "ln2"),
                fc1: pair(i, "fc1"),
                fc2: pair(i, "fc2"),
            })
            .collect();
        let ast_prefix = format!("ast.{}", ck.prefix);
        let mut used: Vec<String> = [
            "embeddings.patch_embeddings.projection.weight",
            "embeddings.patch_embeddings.projection.bias",
            "embeddings.cls_token",
            "embeddings.distillation_token",
            "embeddings.position_embeddings",
            "layernorm.weight",
            "layernorm.bias",
        ]
        .iter()
        .map(|n| format!("{ast_prefix}{n}"))
        .collect();
        for b in &blocks {
            for p in [&b.ln1, &b.q, &b.k, &b.v, &b.o, &b.ln2, &b.fc1, &b.fc2] {
                used.extend(p.iter().cloned());
            }
        }
        if !config.ast.qkv_bias {
            used.retain(|n| !blocks.iter().any(|b| *n == b.q[1] || *n == b.k[1] || *n == b.v[1]));
        }
        let mut store = ParamStore::new();
        for n in used {
            store.insert(n.clone(), f32_on(&tensors[&n], device)?);
        }
        for (n, t) in &tensors {
            if !n.starts_with("ast.") && !checked.unexpected.contains(n) {
                store.insert(n.clone(), f32_on(t, device)?);
            }
        }
        let extra = tensors.into_iter().filter(|(n, _)| !store.contains(n)).collect();
        Ok(TrainableAstSed { config, store, extra, ast_prefix, blocks })
    }

    /// This model with other weights of the same names and shapes (the mean teacher's, or a
    /// checkpoint's), for inference: an [`AstSed`] on `device`.
    pub fn inference(&self, store: &ParamStore, device: Device) -> Result<AstSed> {
        let tensors = store.iter().map(|(k, v)| (k.clone(), v.value().clone())).collect();
        AstSed::from_tensors(self.config.clone(), tensors, Path::new("(training weights)"), device)
    }

    /// Writes a checkpoint directory `aural detect --model` loads: `config.json` and
    /// `model.safetensors` with `store`'s weights (the student's or the teacher's) and the unused
    /// tensors of the loaded checkpoint.
    pub fn save(&self, dir: &Path, store: &ParamStore) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::File { path: dir.display().to_string(), msg: e.to_string() })?;
        let json = serde_json::to_string_pretty(&self.config).map_err(|e| Error::Msg(e.to_string()))?;
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, json).map_err(|e| Error::File { path: cfg.display().to_string(), msg: e.to_string() })?;
        let all = store.iter().map(|(k, v)| (k.as_str(), v.value())).chain(self.extra.iter().map(|(k, v)| (k.as_str(), v)));
        aural_runtime::safetensors_io::save(dir.join("model.safetensors"), all)
    }

    /// Parameter `name` attached to `tape` (same Var id, so its gradient is found under it). Store
    /// Vars carry no tape: an op whose inputs are all tape-less records nothing, so every parameter
    /// is watched before use — a concat of the Q, K, V weights would otherwise be a constant.
    fn p(&self, tape: &Tape, name: &str) -> Result<Var> {
        Ok(tape.watch(&self.store.get(name)?))
    }

    fn ast(&self, tape: &Tape, name: &str) -> Result<Var> {
        self.p(tape, &format!("{}{name}", self.ast_prefix))
    }

    fn pair(&self, tape: &Tape, names: &[String; 2]) -> Result<(Var, Var)> {
        Ok((self.p(tape, &names[0])?, self.p(tape, &names[1])?))
    }

    /// The forward pass on `x` = input_values (B, max_length, mel), recorded on `tape`.
    pub fn forward(&self, tape: &Tape, x: Tensor) -> Result<TrainOutput> {
        let c = &self.config;
        let a = &c.ast;
        let d = a.hidden_size;
        let (fp, tp) = c.grid();
        let b = x.shape()[0];
        let x = tape.constant(x);
        // PTE.
        let prefix = ops::concat(
            &[&ops::reshape(&self.ast(tape, "embeddings.cls_token")?, &[1, d])?, &ops::reshape(&self.ast(tape, "embeddings.distillation_token")?, &[1, d])?],
            0,
        )?;
        let pos = ops::reshape(&self.ast(tape, "embeddings.position_embeddings")?, &[a.seq_len(), d])?;
        let mut h = ops::patch_embed(
            &x,
            &self.ast(tape, "embeddings.patch_embeddings.projection.weight")?,
            &self.ast(tape, "embeddings.patch_embeddings.projection.bias")?,
            (a.frequency_stride, a.time_stride),
            Some(&prefix),
            Some(&pos),
        )?;
        let eps = a.layer_norm_eps as f32;
        let scale = 1.0 / (a.head_dim() as f32).sqrt();
        for bn in &self.blocks {
            let (w1, b1) = self.pair(tape, &bn.ln1)?;
            let n1 = ops::layernorm(&h, Some(&w1), Some(&b1), eps)?;
            let qkv_w = ops::concat(&[&self.p(tape, &bn.q[0])?, &self.p(tape, &bn.k[0])?, &self.p(tape, &bn.v[0])?], 0)?;
            let qkv_b = if a.qkv_bias { Some(ops::concat(&[&self.p(tape, &bn.q[1])?, &self.p(tape, &bn.k[1])?, &self.p(tape, &bn.v[1])?], 0)?) } else { None };
            let qkv = ops::linear(&n1, &qkv_w, qkv_b.as_ref())?;
            let ctx = ops::attention_qkv(&qkv, a.num_attention_heads, scale)?;
            let (wo, bo) = self.pair(tape, &bn.o)?;
            h = ops::add(&h, &ops::linear(&ctx, &wo, Some(&bo))?)?;
            let (w2, b2) = self.pair(tape, &bn.ln2)?;
            let n2 = ops::layernorm(&h, Some(&w2), Some(&b2), eps)?;
            let (wf1, bf1) = self.pair(tape, &bn.fc1)?;
            let m = ops::linear(&n2, &wf1, Some(&bf1))?;
            let m = match a.hidden_act.as_str() {
                "gelu" => ops::gelu(&m)?,
                "relu" => ops::relu(&m)?,
                _ => ops::gelu_tanh(&m)?,
            };
            let (wf2, bf2) = self.pair(tape, &bn.fc2)?;
            h = ops::add(&h, &ops::linear(&m, &wf2, Some(&bf2))?)?;
        }
        let h = ops::layernorm(&h, Some(&self.ast(tape, "layernorm.weight")?), Some(&self.ast(tape, "layernorm.bias")?), eps)?;
        let po = ops::reshape(&ops::slice(&h, 1, 2, fp * tp)?, &[b, fp, tp, d])?;
        // FTE, or the mean over frequency.
        let e = match c.architecture {
            Architecture::AstGru => ops::mean(&po, 1, false)?,
            Architecture::AstSed => {
                let tokens = ops::permute(&po, &[0, 2, 1, 3])?;
                let cls = ops::reshape(&ops::slice(&self.p(tape, "fte.cls")?, 0, 0, tp)?, &[1, tp, 1, d])?;
                let cls = ops::repeat_interleave(&cls, 0, b)?;
                let mut x = ops::reshape(&ops::concat(&[&cls, &tokens], 2)?, &[b * tp, fp + 1, d])?;
                let heads = c.fte_heads;
                let sc = 1.0 / ((d / heads) as f32).sqrt();
                let feps = c.fte_ln_eps as f32;
                for i in 0..c.fte_layers {
                    let g = |n: &str| self.p(tape, &format!("fte.blocks.{i}.{n}"));
                    let qkv = ops::linear(&x, &g("attn.in_proj_weight")?, Some(&g("attn.in_proj_bias")?))?;
                    let att = ops::linear(&ops::attention_qkv(&qkv, heads, sc)?, &g("attn.out_proj.weight")?, Some(&g("attn.out_proj.bias")?))?;
                    x = ops::layernorm(&ops::add(&att, &x)?, Some(&g("norm1.weight")?), Some(&g("norm1.bias")?), feps)?;
                    let m = ops::gelu(&ops::linear(&x, &g("mlp.fc1.weight")?, Some(&g("mlp.fc1.bias")?))?)?;
                    let m = ops::linear(&m, &g("mlp.fc2.weight")?, Some(&g("mlp.fc2.bias")?))?;
                    x = ops::layernorm(&ops::add(&m, &x)?, Some(&g("norm2.weight")?), Some(&g("norm2.bias")?), feps)?;
                }
                ops::reshape(&ops::slice(&x, 1, 0, 1)?, &[b, tp, d])?
            }
        };
        // LGD and heads.
        let up = ops::repeat_interleave(&e, 1, c.upsample)?;
        let mut gp = GruParams::from_store(&self.store, "lgd.gru.", 0, true)?;
        for d in &mut gp.dirs {
            for v in [&mut d.weight_ih, &mut d.weight_hh].into_iter().chain(d.bias_ih.as_mut()).chain(d.bias_hh.as_mut()) {
                *v = tape.watch(v);
            }
        }
        let y = ops::gru(&up, &gp, true)?;
        let strong = ops::sigmoid(&ops::linear(&y, &self.p(tape, "head.strong.weight")?, Some(&self.p(tape, "head.strong.bias")?))?)?;
        let att = ops::linear(&y, &self.p(tape, "head.attn.weight")?, Some(&self.p(tape, "head.attn.bias")?))?;
        let weak = ops::attention_pool(&strong, &att)?;
        Ok(TrainOutput { strong, weak })
    }

    /// The supervised loss of the AST-SED recipe: BCE(strong) + 0.5·BCE(weak), means over all
    /// elements (targets are probabilities in [0, 1]).
    pub fn supervised_loss(&self, tape: &Tape, out: &TrainOutput, strong: Tensor, weak: Tensor) -> Result<Var> {
        for (what, t, v) in [("strong", &strong, &out.strong), ("weak", &weak, &out.weak)] {
            if t.shape() != v.shape() {
                return Err(Error::Msg(format!("targets '{what}' have shape {:?}, the model predicts {:?}", t.shape(), v.shape())));
            }
        }
        let ls = ops::bce(&out.strong, &tape.constant(strong))?;
        let lw = ops::bce(&out.weak, &tape.constant(weak))?;
        ops::add(&ls, &ops::scale(&lw, 0.5)?)
    }
}

fn f32_on(t: &Tensor, device: Device) -> Result<Tensor> {
    let t = match t.dtype() {
        aural_runtime::DType::F32 => t.clone(),
        aural_runtime::DType::F16 => Tensor::from_vec(t.to_vec()?, t.shape())?,
    };
    t.to_device(device)
}
