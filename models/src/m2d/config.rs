//! `M2dConfig`: the `config.json` of an M2D tagger checkpoint directory (the DCASE 2025 task 4
//! baseline's M2dAt).
//!
//! ```json
//! {"architecture": "m2d_at", "classes": [the 18 DCASE 2025 task 4 classes], "sample_rate": 32000,
//!  "n_fft": 800, "win_length": 800, "hop_length": 320, "n_mels": 80, "f_min": 50.0, "f_max": 16000.0,
//!  "norm_mean": -7.1, "norm_std": 4.2, "input_size": [80, 1001], "patch_size": [16, 16],
//!  "embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0, "layer_norm_eps": 1e-6,
//!  "threshold": 0.5, "nevent_range": [1, 3], "ref_channel": 0}
//! ```
//! Missing fields take these defaults (M2D ViT-B/16 on 80 mel × 10 s at 32 kHz); extra fields are
//! allowed. `norm_mean`/`norm_std` are the checkpoint's `backbone.norm_stats` when it has them.

use std::path::Path;

use aural_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::separator::S5_CLASSES;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct M2dConfig {
    pub architecture: String,
    pub classes: Vec<String>,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub win_length: usize,
    pub hop_length: usize,
    pub n_mels: usize,
    pub f_min: f32,
    pub f_max: f32,
    pub norm_mean: f32,
    pub norm_std: f32,
    /// (mel bins, frames of one encoder unit).
    pub input_size: [usize; 2],
    /// (over mel, over frames).
    pub patch_size: [usize; 2],
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    pub layer_norm_eps: f64,
    /// Label selection: classes with a probability ≥ threshold …
    pub threshold: f32,
    /// … at least the first, at most the second of them.
    pub nevent_range: [usize; 2],
    /// The channel of a multi-channel mixture the tagger listens to.
    pub ref_channel: usize,
}

impl Default for M2dConfig {
    fn default() -> Self {
        M2dConfig {
            architecture: "m2d_at".into(),
            classes: S5_CLASSES.iter().map(|s| s.to_string()).collect(),
            sample_rate: 32000,
            n_fft: 800,
            win_length: 800,
            hop_length: 320,
            n_mels: 80,
            f_min: 50.0,
            f_max: 16000.0,
            norm_mean: -7.1,
            norm_std: 4.2,
            input_size: [80, 1001],
            patch_size: [16, 16],
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_ratio: 4.0,
            layer_norm_eps: 1e-6,
            threshold: 0.5,
            nevent_range: [1, 3],
            ref_channel: 0,
        }
    }
}

impl M2dConfig {
    /// Reads and validates `path` (errors name the file).
    pub fn from_file(path: impl AsRef<Path>) -> Result<M2dConfig> {
        let path = path.as_ref();
        let file_err = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let c: M2dConfig = serde_json::from_str(&text).map_err(|e| file_err(format!("not a valid M2D tagger config: {e}")))?;
        c.validate().map_err(|e| file_err(e.to_string()))?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("M2D config: {m}")));
        if self.architecture != "m2d_at" {
            return bad(format!("architecture '{}' is not supported (only \"m2d_at\")", self.architecture));
        }
        if self.classes.is_empty() {
            return bad("classes is empty".into());
        }
        if self.embed_dim == 0 || self.num_heads == 0 || self.embed_dim % self.num_heads != 0 || self.depth == 0 {
            return bad(format!("embed_dim {} must be a positive multiple of num_heads {} and depth {} positive", self.embed_dim, self.num_heads, self.depth));
        }
        let [ph, pw] = self.patch_size;
        let [m, t] = self.input_size;
        if ph == 0 || pw == 0 || m != self.n_mels || m < ph || t < pw {
            return bad(format!("input_size {:?} must be (n_mels {}, frames) and hold a {ph}×{pw} patch", self.input_size, self.n_mels));
        }
        if self.n_fft == 0 || self.win_length == 0 || self.win_length > self.n_fft || self.hop_length == 0 || self.sample_rate == 0 {
            return bad(format!(
                "front end n_fft {}, win_length {}, hop {} at {} Hz is not usable",
                self.n_fft, self.win_length, self.hop_length, self.sample_rate
            ));
        }
        if !(self.f_min >= 0.0 && self.f_max > self.f_min && self.f_max <= self.sample_rate as f32 / 2.0) {
            return bad(format!("f_min {} and f_max {} must satisfy 0 ≤ f_min < f_max ≤ sample_rate/2", self.f_min, self.f_max));
        }
        if !(self.norm_std.is_finite() && self.norm_std != 0.0 && self.norm_mean.is_finite()) {
            return bad(format!("norm_std {} / norm_mean {} are not usable", self.norm_std, self.norm_mean));
        }
        let [lo, hi] = self.nevent_range;
        if lo > hi || hi == 0 {
            return bad(format!("nevent_range {:?} must be [min, max] with min ≤ max and max ≥ 1", self.nevent_range));
        }
        Ok(())
    }

    /// Patch rows along frequency (5 for 80 mel).
    pub fn freq_patches(&self) -> usize {
        (self.input_size[0] - self.patch_size[0]) / self.patch_size[0] + 1
    }

    /// Patch columns of a full unit (62 for 1001 frames).
    pub fn time_patches(&self) -> usize {
        (self.input_size[1] - self.patch_size[1]) / self.patch_size[1] + 1
    }
}
