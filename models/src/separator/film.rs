//! FiLM conditioning of ResUNet30 (additive only: every block's β = Linear(condition)), and the label
//! embedding that turns a multi-hot label vector into the condition.
//!
//! The FiLM layers are named by their block path joined with `->`, exactly as the baseline's
//! `state_dict()` stores them (`film.encoder_block1->conv_block1->beta1.weight`, …): 38 layers, of
//! which the decoders' `beta2` (6) are stored but unused.

use std::collections::BTreeMap;

use aural_runtime::ops::layernorm::layernorm;
use aural_runtime::ops::matmul::{Activation, Linear};
use aural_runtime::ops::unary::relu;
use aural_runtime::{Result, Tensor};

use crate::params::Params;

/// Linear(in → hidden) → LayerNorm → ReLU → Linear(hidden → out) → LayerNorm → ReLU, the layers at
/// `{prefix}.{0,1,3,4}` (LayerNorm eps 1e-5): the label embedding (`label_embedding`, label_len → 512
/// → 512) and CP-JKU's per-frame time embedding (`time_embedding`, S → 512 → 512).
#[derive(Debug, Clone)]
pub struct MlpEmbedding {
    pub fc1: Linear,
    pub ln1: (Tensor, Tensor),
    pub fc2: Linear,
    pub ln2: (Tensor, Tensor),
}

/// The label embedding of a multi-hot label vector.
pub type LabelEmbedding = MlpEmbedding;

impl MlpEmbedding {
    pub(crate) fn load(p: &mut Params, prefix: &str, inp: usize, hidden: usize, out: usize) -> Result<MlpEmbedding> {
        Ok(MlpEmbedding {
            fc1: p.linear(&format!("{prefix}.0"), hidden, inp)?,
            ln1: p.norm(&format!("{prefix}.1"), hidden)?,
            fc2: p.linear(&format!("{prefix}.3"), out, hidden)?,
            ln2: p.norm(&format!("{prefix}.4"), out)?,
        })
    }

    /// (B, in) → (B, out).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.fc1.forward(x, Activation::None)?;
        let x = relu(&layernorm(&x, Some(&self.ln1.0), Some(&self.ln1.1), 1e-5)?)?;
        let x = self.fc2.forward(&x, Activation::None)?;
        relu(&layernorm(&x, Some(&self.ln2.0), Some(&self.ln2.1), 1e-5)?)
    }
}

/// The FiLM layers by block path (`encoder_block1->conv_block1->beta1`).
#[derive(Debug, Clone, Default)]
pub struct Film {
    pub layers: BTreeMap<String, Linear>,
}

impl Film {
    /// Takes `film.<path>.{weight,bias}` for every `(path, channels)`.
    pub(crate) fn load(p: &mut Params, paths: &[(String, usize)], condition_size: usize) -> Result<Film> {
        let mut layers = BTreeMap::new();
        for (path, ch) in paths {
            layers.insert(path.clone(), p.linear(&format!("film.{path}"), *ch, condition_size)?);
        }
        Ok(Film { layers })
    }

    /// β of every layer for a condition (B, condition_size): path → (B, channels).
    pub fn betas(&self, condition: &Tensor) -> Result<BTreeMap<String, Tensor>> {
        self.layers.iter().map(|(k, l)| Ok((k.clone(), l.forward(condition, Activation::None)?))).collect()
    }
}
