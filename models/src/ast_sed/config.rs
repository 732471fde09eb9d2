//! `SedConfig`: the `config.json` of an AST-SED / AST-GRU checkpoint directory.
//!
//! ```json
//! {"architecture": "ast-sed", "ast": {…HF ASTConfig fields…}, "ast_layers": 10,
//!  "fte_layers": 2, "fte_heads": 4, "fte_mlp": 768, "fte_max_frames": 101, "upsample": 10,
//!  "gru_hidden": 384, "classes": [...], "sample_rate": 16000,
//!  "median_filter": 7, "threshold": 0.5}
//! ```
//! Missing fields take the defaults above (the paper's AST-SED on AST-base; classes = the 10 DESED
//! classes); extra fields are allowed. `median_filter` and `threshold` are one value for every class
//! or an object `{class: value}` (classes not named take the default: no filter, 0.5); naming a class
//! that is not in `classes` is an error (a typo would silently do nothing).

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::ast::AstConfig;
use crate::sed::{FrameGeometry, MedianOn, PostProcess, DESED_CLASSES};

/// Which head sits between the AST and the local GRU decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// Frequency-wise transformer encoder (the paper's Fig. 1b).
    #[serde(rename = "ast-sed")]
    AstSed,
    /// Mean over frequency of the patch grid (the paper's baseline, Fig. 1a).
    #[serde(rename = "ast-gru")]
    AstGru,
}

/// One value for all classes, or per class by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerClass<T> {
    All(T),
    ByClass(BTreeMap<String, T>),
}

impl<T: Copy> PerClass<T> {
    /// One value per class of `classes`; `missing` for classes a map does not name.
    pub fn resolve(&self, classes: &[String], missing: T, what: &str) -> Result<Vec<T>> {
        match self {
            PerClass::All(v) => Ok(vec![*v; classes.len()]),
            PerClass::ByClass(m) => {
                if let Some(k) = m.keys().find(|k| !classes.contains(k)) {
                    return Err(Error::Msg(format!("config: {what} names class '{k}', which is not in classes {classes:?}")));
                }
                Ok(classes.iter().map(|c| m.get(c).copied().unwrap_or(missing)).collect())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SedConfig {
    pub architecture: Architecture,
    /// The backbone's HF `ASTConfig` (HF defaults = AST-base).
    pub ast: AstConfig,
    /// AST blocks kept (the first N), followed by AST's final LayerNorm.
    pub ast_layers: usize,
    pub fte_layers: usize,
    pub fte_heads: usize,
    pub fte_mlp: usize,
    /// Rows of the learnable per-frame CLS sequence `fte.cls`; the first T′ are used.
    pub fte_max_frames: usize,
    /// LayerNorm eps of the FTE blocks (torch's default).
    pub fte_ln_eps: f64,
    /// Nearest-neighbour upsampling factor along time before the GRU.
    pub upsample: usize,
    /// GRU hidden size per direction.
    pub gru_hidden: usize,
    pub classes: Vec<String>,
    pub sample_rate: u32,
    /// Median filter window in output frames (odd; 1 = none).
    pub median_filter: PerClass<usize>,
    pub threshold: PerClass<f32>,
}

impl Default for SedConfig {
    fn default() -> Self {
        SedConfig {
            architecture: Architecture::AstSed,
            ast: AstConfig::default(),
            ast_layers: 10,
            fte_layers: 2,
            fte_heads: 4,
            fte_mlp: 768,
            fte_max_frames: 101,
            fte_ln_eps: 1e-5,
            upsample: 10,
            gru_hidden: 384,
            classes: DESED_CLASSES.iter().map(|s| s.to_string()).collect(),
            sample_rate: 16000,
            median_filter: PerClass::All(7),
            threshold: PerClass::All(0.5),
        }
    }
}

/// The most output frames per window a config may ask for (T′ · upsample; the paper's model has 1010).
pub const MAX_FRAMES: usize = 1 << 20;

impl SedConfig {
    pub fn from_json(text: &str) -> std::result::Result<SedConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads and validates `path` (errors name the file).
    pub fn from_file(path: impl AsRef<Path>) -> Result<SedConfig> {
        let path = path.as_ref();
        let file_err = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let c = SedConfig::from_json(&text).map_err(|e| file_err(format!("not a valid AST-SED config: {e}")))?;
        c.validate().map_err(|e| file_err(e.to_string()))?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        self.ast.validate()?;
        let bad = |m: String| Err(Error::Msg(format!("AST-SED config: {m}")));
        if self.ast_layers == 0 || self.ast_layers > self.ast.num_hidden_layers {
            return bad(format!("ast_layers {} must be in 1..={} (ast.num_hidden_layers)", self.ast_layers, self.ast.num_hidden_layers));
        }
        let (_, t) = self.ast.grid().expect("validated");
        if self.architecture == Architecture::AstSed {
            if self.fte_heads == 0 || self.ast.hidden_size % self.fte_heads != 0 {
                return bad(format!("hidden size {} is not divisible by fte_heads {}", self.ast.hidden_size, self.fte_heads));
            }
            if self.fte_max_frames < t {
                return bad(format!("fte_max_frames {} is less than the {t} patch frames of the AST grid", self.fte_max_frames));
            }
            if self.fte_mlp == 0 {
                return bad("fte_mlp is 0".into());
            }
        }
        if self.upsample == 0 || self.gru_hidden == 0 {
            return bad(format!("upsample {} and gru_hidden {} must be positive", self.upsample, self.gru_hidden));
        }
        // frames() = T′ · upsample sizes every output: bounded (and without overflow) here.
        if t.checked_mul(self.upsample).is_none_or(|f| f > MAX_FRAMES) {
            return bad(format!("upsample {} × {t} patch frames is more than {MAX_FRAMES} output frames per window", self.upsample));
        }
        if self.classes.is_empty() {
            return bad("classes is empty".into());
        }
        if self.sample_rate == 0 {
            return bad("sample_rate is 0".into());
        }
        let m = self.median_filter.resolve(&self.classes, 1, "median_filter")?;
        if let Some((c, _)) = self.classes.iter().zip(&m).find(|(_, &w)| w == 0) {
            return bad(format!("median_filter of '{c}' is 0 frames (1 = no filter)"));
        }
        self.threshold.resolve(&self.classes, 0.5, "threshold")?;
        Ok(())
    }

    /// (F′, T′) of the AST patch grid.
    pub fn grid(&self) -> (usize, usize) {
        self.ast.grid().expect("validated config")
    }

    /// Output frames per window: T′ · upsample.
    pub fn frames(&self) -> usize {
        self.grid().1 * self.upsample
    }

    /// Output frame → seconds: `max_length` fbank frames of 10 ms map onto T′·upsample frames.
    pub fn geometry(&self) -> FrameGeometry {
        let (_, pw) = self.ast.patch_dims();
        FrameGeometry::ast_sed(self.ast.max_length, 0.01, pw, self.ast.time_stride, self.upsample)
    }

    /// Post-processing from the config: per-class thresholds and median windows, this geometry.
    pub fn post_process(&self) -> Result<PostProcess> {
        Ok(PostProcess {
            labels: self.classes.clone(),
            thresholds: self.threshold.resolve(&self.classes, 0.5, "threshold")?,
            median_windows: self.median_filter.resolve(&self.classes, 1, "median_filter")?,
            median_on: MedianOn::Scores,
            geometry: self.geometry(),
            clip_duration: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_paper() {
        let c = SedConfig::from_json("{\"extra\": 1}").unwrap();
        assert_eq!(c, SedConfig::default());
        c.validate().unwrap();
        assert_eq!(c.grid(), (12, 101));
        assert_eq!(c.frames(), 1010);
        assert!((c.geometry().hop_s - 10.24 / 1010.0).abs() < 1e-12);
    }

    #[test]
    fn per_class_settings() {
        let c =
            SedConfig::from_json(r#"{"classes": ["a", "b", "c"], "median_filter": {"b": 5}, "threshold": {"a": 0.3, "c": 0.7}, "architecture": "ast-gru"}"#)
                .unwrap();
        assert_eq!(c.architecture, Architecture::AstGru);
        let p = c.post_process().unwrap();
        assert_eq!(p.median_windows, vec![1, 5, 1]);
        assert_eq!(p.thresholds, vec![0.3, 0.5, 0.7]);
        let typo = SedConfig::from_json(r#"{"classes": ["a"], "threshold": {"A": 0.3}}"#).unwrap();
        let e = typo.validate().unwrap_err().to_string();
        assert!(e.contains("'A'"), "{e}");
        let zero = SedConfig::from_json(r#"{"classes": ["a"], "median_filter": 0}"#).unwrap();
        assert!(zero.validate().is_err());
        assert!(SedConfig::from_json(r#"{"architecture": "crnn"}"#).is_err());
        let few = SedConfig::from_json(r#"{"fte_max_frames": 50}"#).unwrap();
        assert!(few.validate().unwrap_err().to_string().contains("fte_max_frames"));
    }
}
