//! Loading HF AST checkpoints by their own names.
//!
//! Accepted naming schemes (detected per checkpoint):
//! - `ASTModel` as published and as `save_pretrained` writes it (transformers 4.x and 5.x alike):
//!   `embeddings.{cls_token, distillation_token, position_embeddings, patch_embeddings.projection.*}`,
//!   `encoder.layer.{i}.{layernorm_before, attention.attention.{query,key,value}, attention.output.dense,
//!   layernorm_after, intermediate.dense, output.dense}.{weight,bias}`, `layernorm.*`;
//! - transformers 5.x in-memory module names (a `state_dict()` saved directly):
//!   `layers.{i}.{layernorm_before, attention.{q,k,v,o}_proj, layernorm_after, mlp.fc1, mlp.fc2}.*`;
//! - either of those under `audio_spectrogram_transformer.` (`ASTForAudioClassification`), whose
//!   `classifier.{layernorm,dense}.*` head is known and not used by the backbone.
//!
//! A missing tensor or a shape that differs from the config's is an error naming the tensor and both
//! shapes. Tensors that match nothing are returned (and printed as one warning by the CLI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aural_runtime::{DType, Error, Result, Tensor};

use super::AstConfig;

/// The tensors of a checkpoint and the bookkeeping of which were used.
pub(crate) struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub used: BTreeSet<String>,
    /// `""` or `"audio_spectrogram_transformer."`.
    pub prefix: String,
    /// 5.x in-memory names (`layers.N.attention.q_proj`).
    pub v5: bool,
    pub source: String,
}

impl Checkpoint {
    pub fn new(tensors: BTreeMap<String, Tensor>, source: &Path) -> Result<Checkpoint> {
        let prefix = if tensors.keys().any(|k| k.starts_with("audio_spectrogram_transformer.")) { "audio_spectrogram_transformer." } else { "" };
        let has = |s: &str| tensors.contains_key(&format!("{prefix}{s}"));
        if !has("embeddings.patch_embeddings.projection.weight") {
            return Err(Error::File {
                path: source.display().to_string(),
                msg: format!("not an AST checkpoint: no tensor '{prefix}embeddings.patch_embeddings.projection.weight' among {} tensors", tensors.len()),
            });
        }
        let v5 = !has("encoder.layer.0.layernorm_before.weight") && has("layers.0.layernorm_before.weight");
        Ok(Checkpoint { tensors, used: BTreeSet::new(), prefix: prefix.to_string(), v5, source: source.display().to_string() })
    }

    /// The backbone tensor `name` (without the model prefix), checked against `shape`, as f32.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&full)
            .ok_or_else(|| Error::File { path: self.source.clone(), msg: format!("missing tensor '{full}' (expected shape {shape:?})") })?;
        if t.shape() != shape {
            return Err(Error::File {
                path: self.source.clone(),
                msg: format!("tensor '{full}' has shape {:?}, expected {shape:?} from config.json", t.shape()),
            });
        }
        self.used.insert(full);
        Ok(match t.dtype() {
            DType::F32 => t.clone(),
            DType::F16 => Tensor::from_vec(t.to_vec()?, t.shape())?,
        })
    }

    /// A tensor outside the backbone prefix (`classifier.*`), checked against `shape`, as f32.
    pub fn take_root(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let saved = std::mem::take(&mut self.prefix);
        let r = self.take(name, shape);
        self.prefix = saved;
        r
    }

    /// Name of a layer parameter in this checkpoint's scheme. `what`: ln1, q, k, v, o, ln2, fc1, fc2.
    pub fn layer_name(&self, i: usize, what: &str, param: &str) -> String {
        let m = if self.v5 {
            match what {
                "ln1" => "layernorm_before",
                "q" => "attention.q_proj",
                "k" => "attention.k_proj",
                "v" => "attention.v_proj",
                "o" => "attention.o_proj",
                "ln2" => "layernorm_after",
                "fc1" => "mlp.fc1",
                _ => "mlp.fc2",
            }
        } else {
            match what {
                "ln1" => "layernorm_before",
                "q" => "attention.attention.query",
                "k" => "attention.attention.key",
                "v" => "attention.attention.value",
                "o" => "attention.output.dense",
                "ln2" => "layernorm_after",
                "fc1" => "intermediate.dense",
                _ => "output.dense",
            }
        };
        let layers = if self.v5 { "layers" } else { "encoder.layer" };
        format!("{layers}.{i}.{m}.{param}")
    }

    /// Tensors that were not used: (unexpected, known but unused — later layers, the classifier).
    pub fn leftovers(&self, cfg: &AstConfig) -> (Vec<String>, Vec<String>) {
        let mut unexpected = Vec::new();
        let mut known = Vec::new();
        for k in self.tensors.keys().filter(|k| !self.used.contains(*k)) {
            let rest = k.strip_prefix(&self.prefix).unwrap_or(k);
            let layer = rest.strip_prefix("encoder.layer.").or_else(|| rest.strip_prefix("layers."));
            let later_layer = layer.and_then(|r| r.split('.').next()).and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n < cfg.num_hidden_layers);
            if k.starts_with("classifier.") || later_layer {
                known.push(k.clone());
            } else {
                unexpected.push(k.clone());
            }
        }
        (unexpected, known)
    }
}

/// Reads `dir/config.json` and the weights (`model.safetensors` or its shards); also returns the file
/// naming the weights.
pub(crate) fn read_dir(dir: &Path) -> Result<(AstConfig, BTreeMap<String, Tensor>, PathBuf)> {
    let cfg = AstConfig::from_file(dir.join("config.json"))?;
    let (tensors, file) = aural_runtime::safetensors_io::load_checkpoint_dir(dir)?;
    Ok((cfg, tensors, file))
}
