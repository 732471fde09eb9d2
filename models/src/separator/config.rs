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
//!
//! The CP-JKU extensions (seed 003; DESIGN.md §6.5), each off when absent or null:
//! ```json
//! {"window_size": 2048, "hop_size": 160,
//!  "time_film": "additive" | "multiplicative" | null, "binarize_sed_preds": false,
//!  "inject": {"method": "add" | "concat", "layers": 13, "tokens": 310, "dim": 768, "grid": [5, 62]} | null,
//!  "dprnn": {"blocks": 2, "rnn_layers": 2, "hidden": 256, "channels": 384, "position": "after_inject"} | null,
//!  "iterations": 0}
//! ```
//! `time_film`: the stage-2 SED model's strong logits of the queried class drive a second FiLM term
//! along time. `inject`: that model's hidden states (`layers` × `tokens` × `dim`, tokens
//! frequency-major on a `grid` of (frequency, time) patches) are merged into the bottleneck.
//! `dprnn`: a dual-path RNN on the bottleneck (`position` "after_inject" or "before_inject").
//! `iterations` ≥ 1: the iterative model (the previous pass's estimate as an extra input channel,
//! tensors under `base.ss_model.`), run that many passes; 0: the plain model.

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

/// How the time-FiLM term enters the pre-activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeFilmKind {
    /// BN(x) + β + β_t(t).
    Additive,
    /// σ(β_t(t)) · (BN(x) + β).
    Multiplicative,
}

/// How the injected embeddings merge with the bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectMethod {
    /// Both maps standardised per (item, channel), then `w_x·x̂ + w_f·f̂`.
    Add,
    /// Concatenated along channels → BatchNorm → LeakyReLU → 1×1 conv back to the bottleneck width.
    Concat,
}

/// The hidden states injected at the bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InjectConfig {
    pub method: InjectMethod,
    /// Hidden states weighted together (patch embedding + every block: 13).
    pub layers: usize,
    /// Tokens per hidden state (cls removed): the product of the two grid sizes.
    pub tokens: usize,
    pub dim: usize,
    /// (frequency patches, time patches); the tokens are frequency-major.
    pub grid: [usize; 2],
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig { method: InjectMethod::Add, layers: 13, tokens: 310, dim: 768, grid: [5, 62] }
    }
}

/// Where the DPRNN sits relative to the injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DprnnPosition {
    AfterInject,
    BeforeInject,
}

/// The dual-path RNN of the bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DprnnConfig {
    /// Row + column block pairs.
    pub blocks: usize,
    /// GRU layers of each row/column RNN (2 in the published code).
    pub rnn_layers: usize,
    /// GRU hidden size per direction.
    pub hidden: usize,
    /// The bottleneck width it runs on (= the last of `channels`).
    pub channels: usize,
    pub position: DprnnPosition,
}

impl Default for DprnnConfig {
    fn default() -> Self {
        DprnnConfig { blocks: 2, rnn_layers: 2, hidden: 256, channels: 384, position: DprnnPosition::AfterInject }
    }
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
    /// CP-JKU time-FiLM (off when None).
    pub time_film: Option<TimeFilmKind>,
    /// Threshold the strong logits at 0 (on/off) before the time embedding.
    pub binarize_sed_preds: bool,
    /// CP-JKU embedding injection (off when None).
    pub inject: Option<InjectConfig>,
    /// CP-JKU dual-path RNN (off when None).
    pub dprnn: Option<DprnnConfig>,
    /// 0: the plain model; N ≥ 1: the iterative model, N passes.
    pub iterations: usize,
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
            time_film: None,
            binarize_sed_preds: false,
            inject: None,
            dprnn: None,
            iterations: 0,
        }
    }
}

/// The most input / output channels and target sources a config may ask for.
pub const MAX_CHANNELS: usize = 1 << 16;
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
        // Channel counts size the convolutions (and are multiplied together): bounded here.
        if [self.input_channels, self.output_channels, self.target_sources_num].iter().any(|&c| c > MAX_CHANNELS) {
            return bad(format!(
                "input_channels {}, output_channels {} and target_sources_num {} must be at most {MAX_CHANNELS}",
                self.input_channels, self.output_channels, self.target_sources_num
            ));
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
            if Some(self.label_len) != self.target_sources_num.checked_mul(self.classes.len()) {
                return bad(format!(
                    "label_len {} must be target_sources_num {} × {} classes (one one-hot slot per target)",
                    self.label_len,
                    self.target_sources_num,
                    self.classes.len()
                ));
            }
        }
        let bottleneck = self.channels[6];
        if let Some(i) = &self.inject {
            if i.layers == 0 || i.dim == 0 || i.grid[0] == 0 || i.grid[1] == 0 || Some(i.tokens) != i.grid[0].checked_mul(i.grid[1]) {
                return bad(format!(
                    "inject: layers {}, dim {} must be positive and tokens {} = grid {:?} frequency × time patches",
                    i.layers, i.dim, i.tokens, i.grid
                ));
            }
        }
        if let Some(d) = &self.dprnn {
            if d.blocks == 0 || d.rnn_layers == 0 || d.hidden == 0 || d.channels != bottleneck {
                return bad(format!(
                    "dprnn: blocks {}, rnn_layers {}, hidden {} must be positive and channels {} the bottleneck width {bottleneck}",
                    d.blocks, d.rnn_layers, d.hidden, d.channels
                ));
            }
        }
        if self.time_film.is_some() && self.conditioning != Conditioning::Label {
            return bad("time_film needs label conditioning (the strong logits of the queried class)".into());
        }
        if self.iterations > 0 && (self.target_sources_num != 1 || self.output_channels != 1) {
            return bad(format!(
                "the iterative model feeds its one-channel estimate back: it needs target_sources_num 1 and output_channels 1, not {} and {}",
                self.target_sources_num, self.output_channels
            ));
        }
        Ok(())
    }

    /// Whether the model takes the stage-2 SED model's outputs (time-FiLM or injection).
    pub fn needs_sed(&self) -> bool {
        self.time_film.is_some() || self.inject.is_some()
    }

    /// Channels of the network input: the mixture's, plus the feedback channel of the iterative model.
    pub fn net_input_channels(&self) -> usize {
        self.input_channels + usize::from(self.iterations > 0)
    }

    /// The prefix of the network's tensors: `base.ss_model.` in the iterative model, else `base.`.
    pub fn base_prefix(&self) -> &'static str {
        if self.iterations > 0 {
            "base.ss_model."
        } else {
            "base."
        }
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
        assert!(e(r#"{"inject": {"tokens": 300}}"#).contains("tokens 300"));
        assert!(e(r#"{"dprnn": {"channels": 256}}"#).contains("channels 256"));
        assert!(e(r#"{"iterations": 2, "target_sources_num": 3, "label_len": 54}"#).contains("iterative"));
        assert!(e(r#"{"time_film": "additive", "conditioning": "query"}"#).contains("time_film"));
    }

    #[test]
    fn cpjku_switches_parse() {
        let c: SeparatorConfig =
            serde_json::from_str(r#"{"window_size": 2048, "time_film": "additive", "inject": {"method": "add"}, "dprnn": {"blocks": 2}, "iterations": 2}"#)
                .unwrap();
        c.validate().unwrap();
        assert_eq!(c.time_film, Some(TimeFilmKind::Additive));
        assert_eq!(c.inject, Some(InjectConfig::default()));
        assert_eq!(c.dprnn.as_ref().unwrap().position, DprnnPosition::AfterInject);
        assert_eq!((c.net_input_channels(), c.base_prefix()), (5, "base.ss_model."));
        let m: SeparatorConfig = serde_json::from_str(r#"{"time_film": "multiplicative", "inject": null, "dprnn": null}"#).unwrap();
        assert_eq!((m.time_film, m.inject.clone(), m.dprnn.clone(), m.base_prefix()), (Some(TimeFilmKind::Multiplicative), None, None, "base."));
    }
}
