//! The TOML configurations of `trainer sed` ([`SedTrainConfig`]; README "Fine-tuning AST-SED" has a
//! complete example) and `trainer separator` ([`SepTrainConfig`]; README "Fine-tuning the separator").
//!
//! Every table rejects unknown keys (a misspelt option is an error naming it, with the line), every
//! value is validated before any audio is read, and relative paths are taken from the config file's
//! folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::augment::AugmentConfig;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SedTrainConfig {
    pub model: ModelCfg,
    pub data: DataCfg,
    pub train: TrainCfg,
    #[serde(default)]
    pub validation: ValidationCfg,
    #[serde(default)]
    pub augment: AugmentConfig,
}

/// Where the weights come from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelCfg {
    /// An AST-SED / AST-GRU checkpoint directory (config.json + model.safetensors).
    pub init: Option<PathBuf>,
    /// Or an HF AST checkpoint directory: the AST part from it, the rest fresh (`new`).
    pub ast: Option<PathBuf>,
    /// With `ast`: the new model's settings (the keys of an AST-SED config.json except `ast`, which
    /// comes from the HF directory; `classes` defaults to `data.classes`). Alone (no `init`, no
    /// `ast`): a model trained from scratch, its `[model.new.ast]` table giving the AST's settings.
    pub new: Option<toml::Table>,
    /// Which weights a checkpoint's model.safetensors holds: "teacher" (default) or "student".
    #[serde(default = "teacher")]
    pub save: String,
}

fn teacher() -> String {
    "teacher".into()
}

/// A set of clips: an audio folder and, for labelled sets, a TSV.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetCfg {
    pub audio: PathBuf,
    pub tsv: Option<PathBuf>,
    /// Validation only: `filename duration` TSV.
    pub durations: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataCfg {
    /// Strongly labelled (`filename onset offset event_label`).
    pub strong: Option<SetCfg>,
    /// A second strongly labelled set (the paper's synthetic-strong part of the batch).
    pub synthetic: Option<SetCfg>,
    /// Weakly labelled (`filename event_labels`, labels comma-separated).
    pub weak: Option<SetCfg>,
    /// Unlabelled (audio only).
    pub unlabeled: Option<SetCfg>,
    /// Validation (audio + strong TSV + durations TSV).
    pub validation: Option<SetCfg>,
    /// The class list; default: the checkpoint's config.json.
    pub classes: Option<Vec<String>>,
    /// Optional folder of cached fbank features (one file per clip, keyed by path, size and mtime).
    pub cache: Option<PathBuf>,
    /// Threads decoding and computing features ahead of the step (default 2).
    #[serde(default = "two")]
    pub workers: usize,
    /// Batches prepared ahead (default 2).
    #[serde(default = "two")]
    pub prefetch: usize,
}

fn two() -> usize {
    2
}

/// Samples per step from each set.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BatchCfg {
    #[serde(default)]
    pub strong: usize,
    #[serde(default)]
    pub synthetic: usize,
    #[serde(default)]
    pub weak: usize,
    #[serde(default)]
    pub unlabeled: usize,
}

impl BatchCfg {
    pub fn total(&self) -> usize {
        self.strong + self.synthetic + self.weak + self.unlabeled
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainCfg {
    #[serde(default)]
    pub seed: u64,
    pub batch: BatchCfg,
    /// Total optimizer steps (or `epochs`).
    pub steps: Option<u64>,
    pub epochs: Option<u64>,
    /// Steps per epoch; default: the fewest full batches any used set gives (the DESED baseline's
    /// `ConcatDatasetBatchSampler`), at least 1.
    pub steps_per_epoch: Option<u64>,
    /// Learning rate of the new layers (FTE, LGD, heads).
    pub lr: f64,
    /// Learning rate of the AST backbone (default: `lr`).
    pub lr_ast: Option<f64>,
    /// Layer-wise decay over the AST (embeddings → block i → rest): AST block i gets
    /// lr_ast·decay^(L − i), the embeddings lr_ast·decay^(L+1) (1 = off).
    #[serde(default = "one")]
    pub layer_decay: f64,
    #[serde(default = "wd")]
    pub weight_decay: f64,
    #[serde(default = "betas")]
    pub betas: [f64; 2],
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default)]
    pub schedule: ScheduleCfg,
    /// Clip the global gradient norm to this (off when absent).
    pub clip_grad_norm: Option<f64>,
    /// Freeze the patch embedding and the first N AST blocks.
    #[serde(default)]
    pub freeze_ast_blocks: usize,
    /// Micro-batches whose gradients are averaged per optimizer step.
    #[serde(default = "one_u")]
    pub accumulate: usize,
    /// Weight of the clip-level (weak) BCE.
    #[serde(default = "half")]
    pub weak_loss_weight: f64,
    #[serde(default)]
    pub mean_teacher: MeanTeacherCfg,
}

fn one() -> f64 {
    1.0
}
fn one_u() -> usize {
    1
}
fn half() -> f64 {
    0.5
}
fn wd() -> f64 {
    1e-2
}
fn betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn eps() -> f64 {
    1e-8
}

/// Learning-rate schedule: a factor on every group's lr.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCfg {
    /// "constant", "exp" (constant, then exponential decay: the paper) or "cosine".
    #[serde(default = "exp")]
    pub kind: String,
    /// Warm-up steps (factor ramps up before the schedule proper).
    #[serde(default)]
    pub warmup_steps: u64,
    /// "linear" (0 → 1) or "exp" (the DESED baseline's exp(−5(1 − t)²)).
    #[serde(default = "linear")]
    pub warmup: String,
    /// "exp": steps at the full rate after the warm-up (default: half the run).
    pub constant_steps: Option<u64>,
    /// "exp": factor per epoch after the constant part.
    #[serde(default = "gamma")]
    pub gamma: f64,
    /// "cosine": the final factor.
    #[serde(default)]
    pub min_factor: f64,
}

impl Default for ScheduleCfg {
    fn default() -> Self {
        ScheduleCfg { kind: exp(), warmup_steps: 0, warmup: linear(), constant_steps: None, gamma: gamma(), min_factor: 0.0 }
    }
}

fn exp() -> String {
    "exp".into()
}
fn linear() -> String {
    "linear".into()
}
fn gamma() -> f64 {
    0.9
}

/// Mean teacher (DESED baseline): teacher ← α·teacher + (1 − α)·student with
/// α = min(1 − 1/(step + 1), ema); consistency weight = consistency·exp(−5(1 − min(step, rampup)/rampup)²).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MeanTeacherCfg {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "ema")]
    pub ema: f64,
    /// Maximum consistency weight (DESED `const_max`).
    #[serde(default = "two_f")]
    pub consistency: f64,
    /// Ramp-up length in steps (default: a quarter of the run, as the DESED baseline's 50 of 200 epochs).
    pub rampup_steps: Option<u64>,
}

impl Default for MeanTeacherCfg {
    fn default() -> Self {
        MeanTeacherCfg { enabled: true, ema: ema(), consistency: two_f(), rampup_steps: None }
    }
}

fn yes() -> bool {
    true
}
fn ema() -> f64 {
    0.999
}
fn two_f() -> f64 {
    2.0
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidationCfg {
    /// Validate every N steps (default: every epoch) and at the last step.
    pub every_steps: Option<u64>,
    /// The metric that picks `best/`: "psds1" (default), "psds2", "event_f1", "segment_f1".
    #[serde(default = "psds1")]
    pub metric: String,
    /// Which model's metric picks `best/`: "teacher" (default) or "student".
    #[serde(default = "teacher")]
    pub select: String,
    /// Threshold of the event- and segment-based F1 (default 0.5).
    #[serde(default = "half")]
    pub threshold: f64,
    /// Median filter (output frames) before the event-based metrics (default: none).
    #[serde(default = "one_u")]
    pub median_filter: usize,
    /// Windows per forward pass.
    #[serde(default = "four")]
    pub batch: usize,
}

impl Default for ValidationCfg {
    fn default() -> Self {
        ValidationCfg { every_steps: None, metric: psds1(), select: teacher(), threshold: 0.5, median_filter: 1, batch: 4 }
    }
}

fn psds1() -> String {
    "psds1".into()
}
fn four() -> usize {
    4
}

impl SedTrainConfig {
    /// Reads and validates `path`; relative paths become relative to its folder.
    pub fn from_file(path: &Path) -> Result<SedTrainConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        SedTrainConfig::from_text(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and validates `text` (from `path`, for messages) with relative paths taken from `base`.
    pub fn from_text(text: &str, path: &Path, base: &Path) -> Result<SedTrainConfig> {
        let mut c: SedTrainConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        c.resolve_paths(base);
        c.validate().with_context(|| format!("{}", path.display()))?;
        Ok(c)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in [&mut self.model.init, &mut self.model.ast, &mut self.data.cache].into_iter().flatten() {
            fix(p);
        }
        for s in
            [&mut self.data.strong, &mut self.data.synthetic, &mut self.data.weak, &mut self.data.unlabeled, &mut self.data.validation].into_iter().flatten()
        {
            fix(&mut s.audio);
            for p in [&mut s.tsv, &mut s.durations].into_iter().flatten() {
                fix(p);
            }
        }
    }

    /// Every check that needs no file. (Comparisons are written `!(x > 0.0)` so that NaN fails them.)
    #[allow(clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool)]
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        match (&m.init, &m.ast) {
            (Some(_), Some(_)) => bail!("[model]: give `init` (an AST-SED checkpoint) or `ast` (an HF AST checkpoint), not both"),
            (None, None) if m.new.is_none() => bail!(
                "[model]: `init` (an AST-SED / AST-GRU checkpoint directory), `ast` (an HF AST directory) or a [model.new] table with its `ast` settings (from scratch) is required"
            ),
            (None, Some(_)) if m.new.is_none() => {
                bail!("[model]: with `ast`, a [model.new] table gives the new model's settings (architecture, ast_layers, …)")
            }
            (Some(_), None) if m.new.is_some() => bail!("[model]: [model.new] goes with `ast` or alone (from scratch), not with `init`"),
            _ => {}
        }
        if m.save != "teacher" && m.save != "student" {
            bail!("[model] save must be \"teacher\" or \"student\", got {:?}", m.save);
        }
        let d = &self.data;
        let b = &self.train.batch;
        for (name, set, n, needs_tsv) in [
            ("strong", &d.strong, b.strong, true),
            ("synthetic", &d.synthetic, b.synthetic, true),
            ("weak", &d.weak, b.weak, true),
            ("unlabeled", &d.unlabeled, b.unlabeled, false),
        ] {
            match set {
                Some(s) => {
                    if needs_tsv && s.tsv.is_none() {
                        bail!("[data] {name}: `tsv` is required");
                    }
                    if !needs_tsv && s.tsv.is_some() {
                        bail!("[data] unlabeled: takes no `tsv`");
                    }
                    if s.durations.is_some() {
                        bail!("[data] {name}: `durations` belongs to the validation set only");
                    }
                    if n == 0 {
                        bail!("[data] {name} is given but [train] batch.{name} is 0: set its share of the batch");
                    }
                }
                None if n > 0 => bail!("[train] batch.{name} = {n} but [data] has no {name} set"),
                None => {}
            }
        }
        if [b.strong, b.synthetic, b.weak, b.unlabeled].iter().try_fold(0usize, |a, &n| a.checked_add(n)).is_none() {
            bail!("[train] batch: the shares add up to more than {} clips", usize::MAX);
        }
        if b.strong + b.synthetic + b.weak == 0 {
            bail!("[train] batch: at least one labelled set (strong, synthetic or weak) is needed");
        }
        if let Some(v) = &d.validation {
            if v.tsv.is_none() || v.durations.is_none() {
                bail!("[data] validation needs `audio`, `tsv` and `durations`");
            }
        }
        if let Some(c) = &d.classes {
            if c.is_empty() {
                bail!("[data] classes is empty");
            }
            let mut s = c.clone();
            s.sort();
            if let Some(w) = s.windows(2).find(|w| w[0] == w[1]) {
                bail!("[data] classes lists {:?} twice", w[0]);
            }
        }
        if d.workers == 0 || d.prefetch == 0 {
            bail!("[data] workers and prefetch must be ≥ 1");
        }
        let t = &self.train;
        match (t.steps, t.epochs) {
            (Some(_), Some(_)) => bail!("[train]: give `steps` or `epochs`, not both"),
            (None, None) => bail!("[train]: `steps` or `epochs` is required"),
            (Some(0), _) | (_, Some(0)) => bail!("[train]: steps/epochs must be ≥ 1"),
            _ => {}
        }
        if t.steps_per_epoch == Some(0) {
            bail!("[train] steps_per_epoch must be ≥ 1");
        }
        for (k, v) in [("lr", Some(t.lr)), ("lr_ast", t.lr_ast)] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    bail!("[train] {k} must be a finite number ≥ 0, got {v}");
                }
            }
        }
        if !(t.layer_decay > 0.0 && t.layer_decay <= 1.0) {
            bail!("[train] layer_decay must be in (0, 1], got {}", t.layer_decay);
        }
        if !(t.weight_decay >= 0.0) {
            bail!("[train] weight_decay must be ≥ 0, got {}", t.weight_decay);
        }
        if !t.betas.iter().all(|b| (0.0..1.0).contains(b)) || !(t.eps > 0.0) {
            bail!("[train] betas must be in [0, 1) and eps > 0");
        }
        if let Some(c) = t.clip_grad_norm {
            if !(c > 0.0) {
                bail!("[train] clip_grad_norm must be > 0, got {c}");
            }
        }
        if t.accumulate == 0 {
            bail!("[train] accumulate must be ≥ 1");
        }
        if !(t.weak_loss_weight >= 0.0) {
            bail!("[train] weak_loss_weight must be ≥ 0");
        }
        let s = &t.schedule;
        if !["constant", "exp", "cosine"].contains(&s.kind.as_str()) {
            bail!("[train.schedule] kind must be \"constant\", \"exp\" or \"cosine\", got {:?}", s.kind);
        }
        if !["linear", "exp"].contains(&s.warmup.as_str()) {
            bail!("[train.schedule] warmup must be \"linear\" or \"exp\", got {:?}", s.warmup);
        }
        if !(s.gamma > 0.0 && s.gamma <= 1.0) || !(0.0..=1.0).contains(&s.min_factor) {
            bail!("[train.schedule] gamma must be in (0, 1] and min_factor in [0, 1]");
        }
        let mt = &t.mean_teacher;
        if !(0.0..1.0).contains(&mt.ema) || !(mt.consistency >= 0.0) {
            bail!("[train.mean_teacher] ema must be in [0, 1) and consistency ≥ 0");
        }
        let v = &self.validation;
        if !["psds1", "psds2", "event_f1", "segment_f1"].contains(&v.metric.as_str()) {
            bail!("[validation] metric must be \"psds1\", \"psds2\", \"event_f1\" or \"segment_f1\", got {:?}", v.metric);
        }
        if v.select != "teacher" && v.select != "student" {
            bail!("[validation] select must be \"teacher\" or \"student\", got {:?}", v.select);
        }
        if v.every_steps == Some(0) || v.batch == 0 || v.median_filter == 0 {
            bail!("[validation] every_steps, batch and median_filter must be ≥ 1");
        }
        if !(0.0..=1.0).contains(&v.threshold) {
            bail!("[validation] threshold must be in [0, 1]");
        }
        self.augment.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// The configuration of `trainer separator`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SepTrainConfig {
    pub model: SepModelCfg,
    pub data: SepDataCfg,
    pub train: SepTrainCfg,
    #[serde(default)]
    pub validation: SepValidationCfg,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SepModelCfg {
    /// A separator checkpoint directory (`aural separate --model` loads it).
    pub init: PathBuf,
    /// The stage-2 SED model (an `m2d_sed` checkpoint directory) whose strong logits and hidden states
    /// condition a CP-JKU separator (time-FiLM, injection); frozen. Required by such a separator.
    pub sed: Option<PathBuf>,
    /// The separator to train when `init` has another shape (a `config.json`): the weights are adapted
    /// (`aural_trainer::separator::adapt_checkpoint`).
    pub config: Option<PathBuf>,
}

/// A pre-mixed set in the DCASE 2025 task 4 baseline's layout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PremixedCfg {
    /// `<name>.wav` mixtures (the model's input channels, its sample rate).
    pub soundscape: PathBuf,
    /// `<name>_<Label>.wav` dry sources (mono).
    pub oracle_target: PathBuf,
}

/// The training set of `trainer separator`: pre-mixed, or mixed on the fly from `mix`
/// (`sources/<Label>/*.wav`, optional `backgrounds/`, `rirs/`; `aural_trainer::mixing`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSetCfg {
    pub soundscape: Option<PathBuf>,
    pub oracle_target: Option<PathBuf>,
    pub mix: Option<PathBuf>,
    /// On the fly: clip length (default 10 s).
    #[serde(default = "ten")]
    pub seconds: f64,
    /// On the fly: at most this many sources per mixture (default 3).
    #[serde(default = "three")]
    pub max_sources: usize,
    /// On the fly: the SNR range of each source against the background (default [0, 15] dB).
    #[serde(default = "snr_range")]
    pub snr_db: [f64; 2],
    /// On the fly: mixtures per epoch (default 1000).
    #[serde(default = "thousand")]
    pub mixtures_per_epoch: usize,
}

fn ten() -> f64 {
    10.0
}
fn three() -> usize {
    3
}
fn snr_range() -> [f64; 2] {
    [0.0, 15.0]
}
fn thousand() -> usize {
    1000
}

impl TrainSetCfg {
    /// The pre-mixed folders, when this is a pre-mixed set.
    pub fn premixed(&self) -> Option<PremixedCfg> {
        Some(PremixedCfg { soundscape: self.soundscape.clone()?, oracle_target: self.oracle_target.clone()? })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SepDataCfg {
    /// Pre-mixed (`{ soundscape, oracle_target }`) or mixed on the fly (`{ mix = "dir", … }`).
    pub train: TrainSetCfg,
    pub validation: Option<PremixedCfg>,
    /// Threads decoding audio ahead of the step (default 2).
    #[serde(default = "two")]
    pub workers: usize,
    /// Batches prepared ahead (default 2).
    #[serde(default = "two")]
    pub prefetch: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SepTrainCfg {
    #[serde(default)]
    pub seed: u64,
    /// Mixtures per step (each with one of its labels, drawn at random: the baseline's 1-label training).
    pub batch: usize,
    /// Total optimizer steps (or `epochs`).
    pub steps: Option<u64>,
    pub epochs: Option<u64>,
    /// Steps per epoch; default: ⌊mixtures / batch⌋, at least 1.
    pub steps_per_epoch: Option<u64>,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "betas")]
    pub betas: [f64; 2],
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default = "constant_schedule")]
    pub schedule: ScheduleCfg,
    /// Clip the global gradient norm to this (default 0.5; off with 0).
    #[serde(default = "half")]
    pub clip_grad_norm: f64,
    /// With `[model] config`: the learning rate of the tensors taken from `init` is lr × this (CP-JKU:
    /// 0.2); the fresh ones train at `lr`. Default 1.
    #[serde(default = "one")]
    pub pretrained_lr_factor: f64,
    /// AdamW's amsgrad variant (torch's `amsgrad=True`; CP-JKU trains with it). Default off.
    #[serde(default)]
    pub amsgrad: bool,
}

fn constant_schedule() -> ScheduleCfg {
    ScheduleCfg { kind: "constant".into(), ..Default::default() }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SepValidationCfg {
    /// Validate every N steps (default: every epoch) and at the last step.
    pub every_steps: Option<u64>,
}

impl SepTrainConfig {
    /// Parses and validates `text` (from `path`, for messages) with relative paths taken from `base`.
    pub fn from_text(text: &str, path: &Path, base: &Path) -> Result<SepTrainConfig> {
        let mut c: SepTrainConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.model.init);
        for p in [c.model.sed.as_mut(), c.model.config.as_mut()].into_iter().flatten() {
            fix(p);
        }
        for p in [c.data.train.soundscape.as_mut(), c.data.train.oracle_target.as_mut(), c.data.train.mix.as_mut()].into_iter().flatten() {
            fix(p);
        }
        if let Some(s) = c.data.validation.as_mut() {
            fix(&mut s.soundscape);
            fix(&mut s.oracle_target);
        }
        c.validate().with_context(|| format!("{}", path.display()))?;
        Ok(c)
    }

    /// Every check that needs no file (comparisons written so that NaN fails them).
    #[allow(clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool)]
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.batch == 0 {
            bail!("[train] batch must be ≥ 1");
        }
        match (t.steps, t.epochs) {
            (Some(_), Some(_)) => bail!("[train]: give `steps` or `epochs`, not both"),
            (None, None) => bail!("[train]: `steps` or `epochs` is required"),
            (Some(0), _) | (_, Some(0)) => bail!("[train] steps / epochs must be ≥ 1"),
            _ => {}
        }
        if t.steps_per_epoch == Some(0) {
            bail!("[train] steps_per_epoch must be ≥ 1");
        }
        if !(t.lr.is_finite() && t.lr >= 0.0) {
            bail!("[train] lr must be a finite number ≥ 0, got {}", t.lr);
        }
        if !(t.weight_decay >= 0.0) {
            bail!("[train] weight_decay must be ≥ 0, got {}", t.weight_decay);
        }
        if !t.betas.iter().all(|b| (0.0..1.0).contains(b)) || !(t.eps > 0.0) {
            bail!("[train] betas must be in [0, 1) and eps > 0");
        }
        if !(t.pretrained_lr_factor.is_finite() && t.pretrained_lr_factor >= 0.0) {
            bail!("[train] pretrained_lr_factor must be a finite number ≥ 0, got {}", t.pretrained_lr_factor);
        }
        if !(t.clip_grad_norm >= 0.0) {
            bail!("[train] clip_grad_norm must be ≥ 0 (0: off), got {}", t.clip_grad_norm);
        }
        let s = &t.schedule;
        if !["constant", "exp", "cosine"].contains(&s.kind.as_str()) {
            bail!("[train.schedule] kind must be \"constant\", \"exp\" or \"cosine\", got {:?}", s.kind);
        }
        if !["linear", "exp"].contains(&s.warmup.as_str()) {
            bail!("[train.schedule] warmup must be \"linear\" or \"exp\", got {:?}", s.warmup);
        }
        if !(s.gamma > 0.0 && s.gamma <= 1.0) || !(0.0..=1.0).contains(&s.min_factor) {
            bail!("[train.schedule] gamma must be in (0, 1] and min_factor in [0, 1]");
        }
        let d = &self.data.train;
        match (&d.soundscape, &d.oracle_target, &d.mix) {
            (Some(_), Some(_), None) | (None, None, Some(_)) => {}
            _ => bail!("[data] train: give `soundscape` and `oracle_target` (pre-mixed), or `mix` (a folder of sources/<Label>/ to mix on the fly)"),
        }
        if d.mix.is_some() && (!(d.seconds > 0.0 && d.seconds <= 600.0) || d.max_sources == 0 || !(d.snr_db[0] <= d.snr_db[1]) || d.mixtures_per_epoch == 0) {
            bail!("[data] train: seconds must be in (0, 600], max_sources and mixtures_per_epoch ≥ 1, snr_db = [low, high] with low ≤ high");
        }
        if self.validation.every_steps == Some(0) {
            bail!("[validation] every_steps must be ≥ 1");
        }
        if self.data.workers == 0 || self.data.prefetch == 0 {
            bail!("[data] workers and prefetch must be ≥ 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The complete example of README "Fine-tuning AST-SED" parses and validates (the README stays true).
    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = &readme[readme.find("### Fine-tuning AST-SED").expect("README section")..];
        let start = section.find("```toml\n").unwrap() + 8;
        let text = &section[start..start + section[start..].find("```").unwrap()];
        let c = SedTrainConfig::from_text(text, Path::new("README.md"), Path::new("/data")).unwrap();
        assert_eq!(c.train.batch, BatchCfg { strong: 3, synthetic: 3, weak: 6, unlabeled: 6 });
        assert_eq!(c.data.strong.as_ref().unwrap().audio, Path::new("/data/audio/train/strong"));
        assert!(c.augment.mixup.is_some() && c.augment.gain.is_some() && c.augment.filter_augment.is_some());
        assert_eq!(c.validation.median_filter, 7);
    }

    /// Batch shares whose sum overflowed in `validate` (a panic in debug builds), found with the
    /// `toml` fuzz target's harness: an error naming the section.
    #[test]
    fn huge_batch_shares_are_an_error() {
        let text = include_str!("../../fuzz/corpus/toml/min_batch_overflow.toml");
        let e = SedTrainConfig::from_text(text, Path::new("t.toml"), Path::new("/data")).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.starts_with("t.toml: [train] batch: the shares add up to more than"), "{e}");
    }

    /// The example of README "Fine-tuning the separator" parses and validates.
    #[test]
    fn the_readme_separator_example_is_a_valid_config() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let section = &readme[readme.find("### Fine-tuning the separator").expect("README section")..];
        let start = section.find("```toml\n").unwrap() + 8;
        let text = &section[start..start + section[start..].find("```").unwrap()];
        let c = SepTrainConfig::from_text(text, Path::new("README.md"), Path::new("/data")).unwrap();
        assert_eq!(c.train.batch, 2);
        assert_eq!(c.train.clip_grad_norm, 0.5);
        assert_eq!(c.train.schedule.kind, "cosine");
        assert_eq!(c.data.train.soundscape.as_deref(), Some(Path::new("/data/dev_set/train/soundscape")));
        let e = SepTrainConfig::from_text(&text.replace("batch = 2", "batch = 0"), Path::new("x.toml"), Path::new(".")).unwrap_err();
        assert!(format!("{e:#}").contains("batch"), "{e:#}");
    }

    #[test]
    fn errors_name_the_key() {
        let base = "[model]\ninit = \"m\"\n[data]\nstrong = { audio = \"a\", tsv = \"t\" }\n[train]\nbatch = { strong = 2 }\nsteps = 10\nlr = 1e-4\n";
        let p = Path::new("x.toml");
        SedTrainConfig::from_text(base, p, Path::new(".")).unwrap();
        for (extra, want) in [
            ("[train.schedule]\nkind = \"linear\"\n", "kind"),
            ("[validation]\nmetric = \"f1\"\n", "metric"),
            ("[train.mean_teacher]\nema = 1.5\n", "ema"),
            ("[augment.mixup]\nalpha = -1\n", "alpha"),
            ("[data.extra]\n", "extra"),
        ] {
            let e = SedTrainConfig::from_text(&format!("{base}{extra}"), p, Path::new(".")).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{extra}: {e:#}");
        }
        let e = SedTrainConfig::from_text(&base.replace("lr = 1e-4", "lr = nan"), p, Path::new(".")).unwrap_err();
        assert!(format!("{e:#}").contains("lr"), "{e:#}");
    }
}
