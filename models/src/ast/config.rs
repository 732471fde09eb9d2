//! `AstConfig`: HF `ASTConfig` as read from a checkpoint's `config.json`, with HF's defaults (the
//! AudioSet AST-base: hidden 768, 12 layers, 12 heads, MLP 3072, exact GELU, eps 1e-12, 16×16
//! patches at stride 10, 1024 frames × 128 mel bins). Unknown keys (architectures, id2label, …) are
//! ignored.

use std::path::Path;

use aural_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

/// `patch_size`: an int (square patches, HF's usual form) or a `[mel, frames]` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PatchSize {
    Square(usize),
    Rect([usize; 2]),
}

impl PatchSize {
    /// (over mel, over frames).
    pub fn dims(self) -> (usize, usize) {
        match self {
            PatchSize::Square(p) => (p, p),
            PatchSize::Rect([a, b]) => (a, b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AstConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    /// `gelu` (exact, fused into the MLP GEMM), `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast`
    /// (tanh approximation), or `relu`.
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub patch_size: PatchSize,
    pub qkv_bias: bool,
    pub frequency_stride: usize,
    pub time_stride: usize,
    pub max_length: usize,
    pub num_mel_bins: usize,
}

impl Default for AstConfig {
    fn default() -> Self {
        AstConfig {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            patch_size: PatchSize::Square(16),
            qkv_bias: true,
            frequency_stride: 10,
            time_stride: 10,
            max_length: 1024,
            num_mel_bins: 128,
        }
    }
}

impl AstConfig {
    /// Parses `config.json` text.
    pub fn from_json(text: &str) -> std::result::Result<AstConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads and checks a `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<AstConfig> {
        let path = path.as_ref();
        let ferr = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| ferr(e.to_string()))?;
        let c = AstConfig::from_json(&text).map_err(|e| ferr(format!("not a valid AST config.json: {e}")))?;
        c.validate().map_err(|e| ferr(e.to_string()))?;
        Ok(c)
    }

    /// Consistency checks (divisible heads, a patch grid that exists, a known activation).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("AST config: {m}")));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!("hidden_size {} is not divisible by num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if self.grid().is_none() {
            return bad(format!(
                "no patch fits: {}×{} patches on {} mel × {} frames with strides {}/{}",
                self.patch_dims().0,
                self.patch_dims().1,
                self.num_mel_bins,
                self.max_length,
                self.frequency_stride,
                self.time_stride
            ));
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "relu") {
            return bad(format!("hidden_act '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)", self.hidden_act));
        }
        Ok(())
    }

    /// Patch kernel (over mel, over frames).
    pub fn patch_dims(&self) -> (usize, usize) {
        self.patch_size.dims()
    }

    /// (F′, T′): patches along frequency and time (HF `ASTEmbeddings.get_shape`).
    pub fn grid(&self) -> Option<(usize, usize)> {
        let (ph, pw) = self.patch_dims();
        aural_runtime::ops::patch_embed::grid_size(self.num_mel_bins, self.max_length, ph, pw, self.frequency_stride, self.time_stride)
    }

    /// F′·T′.
    pub fn num_patches(&self) -> usize {
        self.grid().map_or(0, |(f, t)| f * t)
    }

    /// Tokens per clip: cls + distillation + patches.
    pub fn seq_len(&self) -> usize {
        2 + self.num_patches()
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn defaults_are_ast_base() {
        let c = AstConfig::from_json("{\"architectures\": [\"ASTForAudioClassification\"], \"id2label\": {\"0\": \"Speech\"}}").unwrap();
        assert_eq!(c, AstConfig::default());
        assert_eq!(c.grid(), Some((12, 101)));
        assert_eq!(c.seq_len(), 1214);
        let r = AstConfig::from_json("{\"patch_size\": [16, 8], \"qkv_bias\": false}").unwrap();
        assert_eq!(r.patch_dims(), (16, 8));
        assert!(!r.qkv_bias);
    }
}
