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
//!
//! `"architecture": "m2d_sed"` is CP-JKU's stage-2 SED model ([`super::M2dSed`]): the same encoder in
//! its 16 kHz configuration with a strong (frame) head; its missing fields take
//! [`M2dConfig::sed_default`]: `"sample_rate": 16000, "n_fft": 400, "win_length": 400,
//! "hop_length": 160, "f_max": 8000.0, "input_sample_rate": 32000, "seq_len": 250` (the mixture's rate
//! resampled to `sample_rate` first; the head's frames), and its normalisation is always
//! `norm_mean`/`norm_std` (-7.1, 4.2): CP-JKU's wrapper builds the encoder without a weight file, so
//! the checkpoint's `norm_stats` never reach its front end.

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
    /// The rate of the input audio, resampled to `sample_rate` before the front end (torchaudio's
    /// Kaiser-windowed sinc); None: the input is at `sample_rate`.
    pub input_sample_rate: Option<u32>,
    /// m2d_sed: frames of the strong head (the encoder's time steps resized to it).
    pub seq_len: usize,
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
            input_sample_rate: None,
            seq_len: 250,
        }
    }
}

impl M2dConfig {
    /// The defaults of CP-JKU's stage-2 SED model (M2D at 16 kHz, strong head).
    pub fn sed_default() -> M2dConfig {
        M2dConfig {
            architecture: "m2d_sed".into(),
            sample_rate: 16000,
            n_fft: 400,
            win_length: 400,
            hop_length: 160,
            f_max: 8000.0,
            input_sample_rate: Some(32000),
            ..M2dConfig::default()
        }
    }

    /// Parses a config.json text: the defaults of its architecture for missing fields.
    pub fn from_json(text: &str) -> std::result::Result<M2dConfig, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let serde_json::Value::Object(mut obj) = v else { return Err("the config must be a JSON object".into()) };
        if obj.get("architecture").and_then(|a| a.as_str()) == Some("m2d_sed") {
            let serde_json::Value::Object(defaults) = serde_json::to_value(M2dConfig::sed_default()).map_err(|e| e.to_string())? else { unreachable!() };
            for (k, v) in defaults {
                obj.entry(k).or_insert(v);
            }
        }
        serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| e.to_string())
    }

    /// Reads and validates `path` (errors name the file).
    pub fn from_file(path: impl AsRef<Path>) -> Result<M2dConfig> {
        let path = path.as_ref();
        let file_err = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let c = M2dConfig::from_json(&text).map_err(|e| file_err(format!("not a valid M2D config: {e}")))?;
        c.validate().map_err(|e| file_err(e.to_string()))?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("M2D config: {m}")));
        if self.architecture != "m2d_at" && self.architecture != "m2d_sed" {
            return bad(format!("architecture '{}' is not supported (\"m2d_at\": the tagger, \"m2d_sed\": the stage-2 SED model)", self.architecture));
        }
        if self.input_sample_rate == Some(0) || self.seq_len == 0 {
            return bad(format!("input_sample_rate {:?} and seq_len {} must be positive", self.input_sample_rate, self.seq_len));
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
