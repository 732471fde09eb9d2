//! `SeparatorConfig`: the `config.json` of a separator checkpoint directory.
//!
//! ```json
//! {"architecture": "resunet30", "input_channels": 4, "output_channels": 1, "target_sources_num": 1,
//!  "label_len": 18, "condition_size": 512, "window_size": 1024, "hop_size": 160,
//!  "sample_rate": 32000, "classes": [the 18 DCASE 2025 task 4 classes], "out_conv": true,
//!  "channels": [32, 32, 64, 128, 256, 384, 384], "conditioning": "label"}
//! ```
//! Missing fields take these defaults (the DCASE 2025 task 4 baseline's ResUNet); extra fields are
//! allowed. `channels` (an aural extension; the published models all use the default) is the
//! width after pre_conv and after each of the six encoder blocks; the decoder mirrors it.
//! `conditioning`: `"label"` — the condition is the label embedding of a multi-hot label vector of
//! `label_len` = `target_sources_num` × |classes| entries (one one-hot slot per target source);
//! `"query"` — the condition is a given `condition_size` vector (AudioSep's text/audio CLAP
//! embedding), and there is no label embedding.

use std::path::Path;

use aural_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

/// The 18 target classes of DCASE 2025 task 4, in the baseline's index order.
pub const S5_CLASSES: [&str; 18] = [
    "AlarmClock",
    "BicycleBell",
    "Blender",
    "Buzzer",
    "Clapping",
    "Cough",
    "CupboardOpenClose",
    "Dishes",
    "Doorbell",
    "FootSteps",
    "HairDryer",
    "MechanicalFans",
    "MusicalKeyboard",
    "Percussion",
    "Pour",
    "Speech",
    "Typing",
    "VacuumCleaner",
];

/// What the FiLM layers are conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// The label embedding of a multi-hot label vector (the DCASE baseline).
    Label,
    /// An external embedding vector (AudioSep's CLAP query).
    Query,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeparatorConfig {
    pub architecture: String,
    pub input_channels: usize,
    /// Channels of each separated source (after `out_conv`; = input_channels without it).
    pub output_channels: usize,
    /// Sources separated in one pass (1: ResUNet; 3: the baseline's ResUNetK).
    pub target_sources_num: usize,
    pub label_len: usize,
    pub condition_size: usize,
    /// STFT n_fft (= window length).
    pub window_size: usize,
    pub hop_size: usize,
    pub sample_rate: u32,
    pub classes: Vec<String>,
    /// The 1×1 convolution mixing the input channels' masked spectra (the DCASE baseline, CP-JKU).
    pub out_conv: bool,
    /// Widths: after pre_conv, then after encoder blocks 1..6.
    pub channels: Vec<usize>,
    pub conditioning: Conditioning,
}

impl Default for SeparatorConfig {
    fn default() -> Self {
        SeparatorConfig {
            architecture: "resunet30".into(),
            input_channels: 4,
            output_channels: 1,
            target_sources_num: 1,
            label_len: 18,
            condition_size: 512,
            window_size: 1024,
            hop_size: 160,
            sample_rate: 32000,
            classes: S5_CLASSES.iter().map(|s| s.to_string()).collect(),
            out_conv: true,
            channels: vec![32, 32, 64, 128, 256, 384, 384],
            conditioning: Conditioning::Label,
        }
    }
}

/// The frames of the time axis are padded to a multiple of this (2^5: five time-halving pools).
pub const TIME_MULTIPLE: usize = 32;
/// Frequency halvings of the encoder (five (2, 2) pools and one (1, 2)).
pub const FREQ_MULTIPLE: usize = 64;

impl SeparatorConfig {
    /// Reads and validates `path` (errors name the file).
    pub fn from_file(path: impl AsRef<Path>) -> Result<SeparatorConfig> {
        let path = path.as_ref();
        let file_err = |msg: String| Error::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let c: SeparatorConfig = serde_json::from_str(&text).map_err(|e| file_err(format!("not a valid separator config: {e}")))?;
        c.validate().map_err(|e| file_err(e.to_string()))?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("separator config: {m}")));
        if self.architecture != "resunet30" {
            return bad(format!("architecture '{}' is not supported (only \"resunet30\")", self.architecture));
        }
        if self.input_channels == 0 || self.output_channels == 0 || self.target_sources_num == 0 || self.condition_size == 0 {
            return bad("input_channels, output_channels, target_sources_num and condition_size must be positive".into());
        }
        if !self.out_conv && self.output_channels != self.input_channels {
            return bad(format!(
                "without out_conv the output has the input's {} channel(s), not output_channels = {}",
                self.input_channels, self.output_channels
            ));
        }
        if self.window_size == 0 || !(self.window_size / 2).is_multiple_of(FREQ_MULTIPLE) || !self.window_size.is_multiple_of(2) {
            return bad(format!(
                "window_size {} must be even with window_size/2 a multiple of {FREQ_MULTIPLE} (the encoder halves frequency six times)",
                self.window_size
            ));
        }
        if self.hop_size == 0 || self.hop_size > self.window_size {
            return bad(format!("hop_size {} must be in 1..={}", self.hop_size, self.window_size));
        }
        if self.sample_rate == 0 {
            return bad("sample_rate is 0".into());
        }
        if self.channels.len() != 7 || self.channels.contains(&0) {
            return bad(format!("channels {:?} must be 7 positive widths (pre_conv, then encoder blocks 1..6)", self.channels));
        }
        if self.conditioning == Conditioning::Label {
            if self.classes.is_empty() {
                return bad("classes is empty".into());
            }
            if self.label_len != self.target_sources_num * self.classes.len() {
                return bad(format!(
                    "label_len {} must be target_sources_num {} × {} classes (one one-hot slot per target)",
                    self.label_len,
                    self.target_sources_num,
                    self.classes.len()
                ));
            }
        }
        Ok(())
    }

    /// STFT bins F = n_fft/2 + 1.
    pub fn freq_bins(&self) -> usize {
        self.window_size / 2 + 1
    }

    /// Index of a class by name.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_dcase_baseline() {
        let c: SeparatorConfig = serde_json::from_str(r#"{"extra": true}"#).unwrap();
        assert_eq!(c, SeparatorConfig::default());
        c.validate().unwrap();
        assert_eq!(c.freq_bins(), 513);
        assert_eq!(c.class_index("Speech"), Some(15));
    }

    #[test]
    fn invalid_configs_say_why() {
        let e = |j: &str| serde_json::from_str::<SeparatorConfig>(j).unwrap().validate().unwrap_err().to_string();
        assert!(e(r#"{"window_size": 1000}"#).contains("window_size 1000"));
        assert!(e(r#"{"label_len": 20}"#).contains("label_len 20"));
        assert!(e(r#"{"out_conv": false}"#).contains("without out_conv"));
        assert!(e(r#"{"channels": [1, 2]}"#).contains("7 positive widths"));
        assert!(e(r#"{"architecture": "unet"}"#).contains("unet"));
        let k: SeparatorConfig = serde_json::from_str(r#"{"target_sources_num": 3, "label_len": 54}"#).unwrap();
        k.validate().unwrap();
    }
}
