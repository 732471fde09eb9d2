//! The SED training augmentations, on batches of AST input features (normalised log-mel).
//!
//! Two layers:
//! - pure *apply* functions that take their random draws as arguments ([`gain`], [`roll_time`],
//!   [`roll_frames`], [`label_shift`], [`filter_augment_db`] + [`apply_filter`], [`mixup`],
//!   [`mask_along_axis`]), each checked against PyTorch / torchaudio / the DESED baseline's formula on
//!   the same draws (`tests/golden/augment.py` → `tests/golden/fixtures/augment.safetensors`);
//! - [`augment`], which draws those numbers from a seeded [`ChaCha8Rng`] in a fixed, documented order
//!   (so its result is a pure function of the rng state and the config) and applies them.
//!
//! Feature domain. A batch holds AST's `input_values`: `x = (ln P − mean)·s` with `P` the kaldi mel
//! *power* and `s = 1/(2·std)` (AST's normalisation; `log_scale` below). The DESED baseline and
//! FilterAugSED work on the *magnitude* mel (`MelSpectrogram(power=1)`) before the log, so their gains
//! `mag·10^(dB/20)` are `P·10^(dB/10)`, i.e. `x + dB·ln(10)/10·s` here: a filter or gain of `dB` decibels
//! means the same thing in both. Mixup, on the other hand, mixes these normalised log features (as AST
//! recipes mix fbanks), where DESED mixes the linear magnitude mel before its log.

use std::f64::consts::LN_10;
use std::ops::Range;

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, StandardNormal};
use serde::{Deserialize, Deserializer};

/// One batch on the host, augmented in place.
pub struct FeatBatch<'a> {
    /// (b, l, m) row-major: b samples, l fbank frames (time), m mel bins; AST-normalised log-mel
    /// `x = (ln_power − mean)/(2·std)`.
    pub x: &'a mut [f32],
    pub b: usize,
    pub l: usize,
    pub m: usize,
    /// (b, f, k) frame targets at the model's output rate (f output frames per l input frames).
    pub strong: &'a mut [f32],
    pub f: usize,
    pub k: usize,
    /// (b, k) clip targets.
    pub weak: &'a mut [f32],
}

impl FeatBatch<'_> {
    fn check(&self) {
        assert_eq!(self.x.len(), self.b * self.l * self.m, "FeatBatch: x has {} values, not b·l·m = {}·{}·{}", self.x.len(), self.b, self.l, self.m);
        assert_eq!(
            self.strong.len(),
            self.b * self.f * self.k,
            "FeatBatch: strong has {} values, not b·f·k = {}·{}·{}",
            self.strong.len(),
            self.b,
            self.f,
            self.k
        );
        assert_eq!(self.weak.len(), self.b * self.k, "FeatBatch: weak has {} values, not b·k = {}·{}", self.weak.len(), self.b, self.k);
    }
}

// ------------------------------------------------------------------------------------------------
// Config
// ------------------------------------------------------------------------------------------------

/// Which augmentations run (`None` = off). In TOML each is a table under `[augment]`; an empty table
/// (`[augment.mixup]`) turns one on with its defaults.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    pub gain: Option<GainCfg>,
    pub time_shift: Option<TimeShiftCfg>,
    pub filter_augment: Option<FilterAugCfg>,
    pub mixup: Option<MixupCfg>,
    /// Defaults: max_width 100 frames, count 1, p 1, value 0.
    #[serde(deserialize_with = "de_time_mask")]
    pub time_mask: Option<MaskCfg>,
    /// Defaults: max_width 24 bins, count 1, p 1, value 0.
    #[serde(deserialize_with = "de_freq_mask")]
    pub freq_mask: Option<MaskCfg>,
}

/// A random gain per sample, uniform in `db` decibels (a waveform gain: power × 10^(dB/10)).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GainCfg {
    /// [low, high] in dB. Default [-6, 6].
    pub db: [f64; 2],
    /// Probability per sample. Default 1.
    pub p: f64,
}

impl Default for GainCfg {
    fn default() -> Self {
        GainCfg { db: [-6.0, 6.0], p: 1.0 }
    }
}

/// A circular time shift per sample: shift = trunc(N(0, trunc(std·l))) frames (DESED's
/// `int(random.gauss(0, int(shift_range·frames)))`); frame targets shift by [`label_shift`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeShiftCfg {
    /// Standard deviation as a fraction of l (DESED's `shift_range`). Default 0.125.
    pub std: f64,
    /// Probability per sample. Default 1.
    pub p: f64,
}

impl Default for TimeShiftCfg {
    fn default() -> Self {
        TimeShiftCfg { std: 0.125, p: 1.0 }
    }
}

/// FilterAugment's filter shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterType {
    /// Piecewise-linear in dB between n_band + 1 random factors.
    Linear,
    /// One random factor per band.
    Step,
}

/// FilterAugment (Nam et al., ICASSP 2022; the DESED baseline's / FilterAugSED's `filt_aug`): a random
/// per-mel-bin filter in dB; band boundaries per batch, factors per sample.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterAugCfg {
    /// Factor range in dB. Default [-6, 6].
    pub db_range: [f64; 2],
    /// Number of bands, randint [low, high) (high exclusive). Default [3, 6].
    pub n_band: [usize; 2],
    /// Minimum band width in mel bins. Default 6.
    pub min_bw: usize,
    /// Default "linear".
    pub filter_type: FilterType,
    /// When set: with this probability (one draw per batch) use a step filter with n_band [2, 5] and
    /// min_bw 4 (DESED's float `filter_type`), else a linear one with `n_band` / `min_bw` above.
    /// Needs `filter_type = "linear"`. Default unset.
    pub step_prob: Option<f64>,
    /// Probability per sample. Default 1.
    pub p: f64,
}

impl Default for FilterAugCfg {
    fn default() -> Self {
        FilterAugCfg { db_range: [-6.0, 6.0], n_band: [3, 6], min_bw: 6, filter_type: FilterType::Linear, step_prob: None, p: 1.0 }
    }
}

/// Mixup within each mixup set (e.g. the strong part and the weak part of a batch, as DESED does):
/// λ ~ Beta(alpha, alpha) and a uniform random permutation per set.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixupCfg {
    /// Probability per set. Default 0.5.
    pub p: f64,
    /// Beta(alpha, alpha). Default 0.2.
    pub alpha: f64,
    /// Soft targets λ·t + (1−λ)·t[perm] (true, the default) or hard ones clamp(t + t[perm], 0, 1).
    pub soft: bool,
}

impl Default for MixupCfg {
    fn default() -> Self {
        MixupCfg { p: 0.5, alpha: 0.2, soft: true }
    }
}

/// SpecAugment-style masks along one axis, torchaudio's `TimeMasking` / `FrequencyMasking`
/// (`iid_masks=False` on one sample, i.e. `mask_along_axis`).
#[derive(Clone, Debug, PartialEq)]
pub struct MaskCfg {
    /// torchaudio's `time_mask_param` / `freq_mask_param`: the width is uniform in [0, max_width).
    pub max_width: usize,
    /// Masks per sample (independent draws, applied one after another).
    pub count: usize,
    /// Probability per sample (one coin for all `count` masks). Not torchaudio's `p`, which caps the
    /// masked proportion.
    pub p: f64,
    /// Value written into the masked cells (0 = the AST normalisation's mean).
    pub value: f32,
}

impl MaskCfg {
    /// Defaults of `[augment.time_mask]`: 100 frames, 1 mask, p 1, value 0.
    pub fn time_default() -> Self {
        MaskCfg { max_width: 100, count: 1, p: 1.0, value: 0.0 }
    }
    /// Defaults of `[augment.freq_mask]`: 24 bins, 1 mask, p 1, value 0.
    pub fn freq_default() -> Self {
        MaskCfg { max_width: 24, count: 1, p: 1.0, value: 0.0 }
    }
}

/// The TOML form of a mask table: every key optional, the axis supplies the defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskToml {
    max_width: Option<usize>,
    count: Option<usize>,
    p: Option<f64>,
    value: Option<f32>,
}

impl MaskToml {
    fn with_defaults(self, d: MaskCfg) -> MaskCfg {
        MaskCfg {
            max_width: self.max_width.unwrap_or(d.max_width),
            count: self.count.unwrap_or(d.count),
            p: self.p.unwrap_or(d.p),
            value: self.value.unwrap_or(d.value),
        }
    }
}

fn de_time_mask<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaskCfg>, D::Error> {
    Ok(Option::<MaskToml>::deserialize(d)?.map(|t| t.with_defaults(MaskCfg::time_default())))
}

fn de_freq_mask<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaskCfg>, D::Error> {
    Ok(Option::<MaskToml>::deserialize(d)?.map(|t| t.with_defaults(MaskCfg::freq_default())))
}

fn check_p(key: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{key} must be in [0, 1], got {p}"))
    }
}

fn check_range(key: &str, r: [f64; 2]) -> Result<(), String> {
    if !r[0].is_finite() || !r[1].is_finite() {
        return Err(format!("{key} must be finite, got [{}, {}]", r[0], r[1]));
    }
    if r[0] > r[1] {
        return Err(format!("{key} must have low <= high, got [{}, {}]", r[0], r[1]));
    }
    Ok(())
}

impl AugmentConfig {
    /// Checks every enabled augmentation's values; the message names the key
    /// (e.g. `augment.mixup.alpha must be > 0, got -1`).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(g) = &self.gain {
            check_range("augment.gain.db", g.db)?;
            check_p("augment.gain.p", g.p)?;
        }
        if let Some(t) = &self.time_shift {
            if !(t.std.is_finite() && t.std >= 0.0) {
                return Err(format!("augment.time_shift.std must be >= 0, got {}", t.std));
            }
            check_p("augment.time_shift.p", t.p)?;
        }
        if let Some(fa) = &self.filter_augment {
            check_range("augment.filter_augment.db_range", fa.db_range)?;
            let [lo, hi] = fa.n_band;
            if lo < 1 {
                return Err(format!("augment.filter_augment.n_band low must be >= 1, got [{lo}, {hi}]"));
            }
            if hi <= lo {
                return Err(format!("augment.filter_augment.n_band must have low < high (high is exclusive), got [{lo}, {hi}]"));
            }
            if fa.min_bw < 1 {
                return Err(format!("augment.filter_augment.min_bw must be >= 1, got {}", fa.min_bw));
            }
            if let Some(q) = fa.step_prob {
                check_p("augment.filter_augment.step_prob", q)?;
                if fa.filter_type != FilterType::Linear {
                    return Err("augment.filter_augment.step_prob needs filter_type = \"linear\" (it picks step or linear per batch)".into());
                }
            }
            check_p("augment.filter_augment.p", fa.p)?;
        }
        if let Some(mx) = &self.mixup {
            check_p("augment.mixup.p", mx.p)?;
            if !(mx.alpha.is_finite() && mx.alpha > 0.0) {
                return Err(format!("augment.mixup.alpha must be > 0, got {}", mx.alpha));
            }
        }
        for (name, mask) in [("time_mask", &self.time_mask), ("freq_mask", &self.freq_mask)] {
            if let Some(mk) = mask {
                if mk.max_width < 1 {
                    return Err(format!("augment.{name}.max_width must be > 0, got {}", mk.max_width));
                }
                if mk.count < 1 {
                    return Err(format!("augment.{name}.count must be > 0, got {}", mk.count));
                }
                check_p(&format!("augment.{name}.p"), mk.p)?;
                if !mk.value.is_finite() {
                    return Err(format!("augment.{name}.value must be finite, got {}", mk.value));
                }
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// Apply functions (explicit draws)
// ------------------------------------------------------------------------------------------------

/// An axis of one (l, m) sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Along the l frames (torchaudio `TimeMasking`).
    Time,
    /// Along the m mel bins (torchaudio `FrequencyMasking`).
    Freq,
}

/// torchaudio.functional.mask_along_axis on one (l, m) sample, given its two `torch.rand(1)` draws
/// (`u_value` first, then `u_start`), all in f32 as torch computes them:
///
/// `v = u_value·param; v0 = u_start·(size − v); start = trunc(v0); end = trunc(v0) + trunc(v)`, and
/// positions [start, end) along `axis` (size = l or m) are set to `value`. Returns the masked range
/// (clipped to the axis; empty when trunc(v) = 0). `param` = 0 masks nothing (torchaudio returns
/// before drawing).
#[allow(clippy::too_many_arguments)]
pub fn mask_along_axis(sample: &mut [f32], l: usize, m: usize, axis: Axis, param: usize, u_value: f32, u_start: f32, value: f32) -> Range<usize> {
    assert_eq!(sample.len(), l * m, "mask_along_axis: sample has {} values, not l·m = {l}·{m}", sample.len());
    if param < 1 {
        return 0..0;
    }
    let size = match axis {
        Axis::Time => l,
        Axis::Freq => m,
    };
    let v = u_value * param as f32;
    let v0 = u_start * (size as f32 - v);
    let start = v0.trunc() as i64;
    let end = start + v.trunc() as i64;
    let (s, e) = (start.clamp(0, size as i64) as usize, end.clamp(0, size as i64) as usize);
    if s < e {
        match axis {
            Axis::Time => sample[s * m..e * m].fill(value),
            Axis::Freq => {
                for row in sample.chunks_exact_mut(m) {
                    row[s..e].fill(value);
                }
            }
        }
    }
    s..e
}

/// `torch.roll(sample, shift, dims=time)` on one (l, m) sample: out[t] = in[(t − shift) mod l].
pub fn roll_time(sample: &mut [f32], l: usize, m: usize, shift: isize) {
    assert_eq!(sample.len(), l * m, "roll_time: sample has {} values, not l·m = {l}·{m}", sample.len());
    if l > 0 {
        sample.rotate_right(shift.rem_euclid(l as isize) as usize * m);
    }
}

/// `torch.roll(targets, shift, dims=frames)` on one (f, k) frame-target matrix.
pub fn roll_frames(targets: &mut [f32], f: usize, k: usize, shift: isize) {
    roll_time(targets, f, k, shift)
}

/// The frame-target shift for a feature shift of `shift_frames` of l input frames when the model
/// outputs f frames: sign(s)·round(|s|·f/l), rounding halves away from zero (exact integer arithmetic).
///
/// DESED shifts its labels by `shift // net_pooling` (towards zero), its pooling being an integer;
/// AST-SED's ratio f/l (e.g. 1010/1024) is not one, so we round to the nearest output frame.
pub fn label_shift(shift_frames: isize, l: usize, f: usize) -> isize {
    assert!(l > 0, "label_shift: l = 0");
    let a = shift_frames.unsigned_abs() as u128;
    let r = ((2 * a * f as u128 + l as u128) / (2 * l as u128)) as isize;
    if shift_frames < 0 {
        -r
    } else {
        r
    }
}

/// FilterAugment's minimum band width after DESED's reduction: `min_bw` decreases while
/// `m − n_band·min_bw + 1 < 0`.
pub fn effective_min_bw(m: usize, n_band: usize, min_bw: usize) -> usize {
    let mut bw = min_bw;
    while bw > 0 && (m as i64) - (n_band * bw) as i64 + 1 < 0 {
        bw -= 1;
    }
    bw
}

/// FilterAugment's band boundaries (n_band + 1 values from 0 to m): `raw` holds the n_band − 1 draws
/// `randint(0, m − n_band·min_bw + 1)` (`min_bw` already reduced by [`effective_min_bw`]); they are sorted
/// and offset by `arange(1, n_band)·min_bw`, with 0 prepended and m appended.
pub fn filter_boundaries(m: usize, n_band: usize, min_bw: usize, raw: &[usize]) -> Vec<usize> {
    assert_eq!(raw.len() + 1, n_band, "filter_boundaries: {} raw draws for {n_band} bands", raw.len());
    let mut r = raw.to_vec();
    r.sort_unstable();
    let mut b = Vec::with_capacity(n_band + 1);
    b.push(0);
    b.extend(r.iter().enumerate().map(|(i, &v)| v + (i + 1) * min_bw));
    b.push(m);
    b
}

/// `torch.linspace(start, end, steps)` in f32 as torch 2.9's CPU kernel computes it: steps = 1 gives
/// [start]; else step = (end − start)/(steps − 1) and value i is fma(step, i, start) for i < steps/2 and
/// fma(−step, steps − 1 − i, end) otherwise (the kernel's `start + step·i` / `end − step·(steps−i−1)`,
/// contracted to a fused multiply-add in the x86-64 build).
pub fn torch_linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    match steps {
        0 => vec![],
        1 => vec![start],
        _ => {
            let step = (end - start) / (steps - 1) as f32;
            let half = steps / 2;
            (0..steps).map(|i| if i < half { step.mul_add(i as f32, start) } else { (-step).mul_add((steps - 1 - i) as f32, end) }).collect()
        }
    }
}

/// The dB filter (one value per mel bin) of one sample, DESED's `filt_aug` given its draws:
/// `boundaries` (n_band + 1 values, 0 ..= m, see [`filter_boundaries`]) and `factors_db`
/// (`rand·(db_hi − db_lo) + db_lo`). Step: n_band factors, factor i over band i. Linear: n_band + 1
/// factors, band i = `torch.linspace(factor_i, factor_{i+1}, width_i)` ([`torch_linspace`]).
pub fn filter_augment_db(m: usize, n_band: usize, boundaries: &[usize], factors_db: &[f32], step: bool) -> Vec<f32> {
    assert_eq!(boundaries.len(), n_band + 1, "filter_augment_db: {} boundaries for {n_band} bands", boundaries.len());
    assert_eq!(
        factors_db.len(),
        if step { n_band } else { n_band + 1 },
        "filter_augment_db: {} factors for {n_band} {} bands",
        factors_db.len(),
        if step { "step" } else { "linear" }
    );
    let mut filt = vec![0f32; m];
    for i in 0..n_band {
        let (a, b) = (boundaries[i], boundaries[i + 1]);
        assert!(a <= b && b <= m, "filter_augment_db: boundaries {boundaries:?} not sorted within 0..={m}");
        if step {
            filt[a..b].fill(factors_db[i]);
        } else {
            filt[a..b].copy_from_slice(&torch_linspace(factors_db[i], factors_db[i + 1], b - a));
        }
    }
    filt
}

/// Applies a per-bin filter of `filt_db` decibels to one (l, m) sample: x[t, j] += filt_db[j]·ln(10)/10·s
/// with s = `log_scale` (the AST normalisation's 1/(2·std)). This equals DESED's
/// `mag·10^(dB/20)` on the magnitude mel, i.e. power·10^(dB/10), followed by AST's log and normalisation.
pub fn apply_filter(sample: &mut [f32], l: usize, m: usize, filt_db: &[f32], log_scale: f32) {
    assert_eq!(sample.len(), l * m, "apply_filter: sample has {} values, not l·m = {l}·{m}", sample.len());
    assert_eq!(filt_db.len(), m, "apply_filter: {} filter values for {m} bins", filt_db.len());
    let c: Vec<f32> = filt_db.iter().map(|&d| (d as f64 * LN_10 / 10.0 * log_scale as f64) as f32).collect();
    for row in sample.chunks_exact_mut(m) {
        for (v, &a) in row.iter_mut().zip(&c) {
            *v += a;
        }
    }
}

/// A waveform gain of `db` decibels on one sample's features: power × 10^(db/10), i.e.
/// x += db·ln(10)/10·s (s = `log_scale`). The only difference from scaling the waveform before the
/// fbank is that the log floor of silent frames (kaldi's ln(ε)) and AST's zero padding move too.
pub fn gain(sample: &mut [f32], db: f32, log_scale: f32) {
    let c = (db as f64 * LN_10 / 10.0 * log_scale as f64) as f32;
    for v in sample {
        *v += c;
    }
}

/// λ as f32 and 1 − λ rounded from f64, as torch multiplies an f32 tensor by Python floats `c` and `1 − c`.
fn mix_weights(lambda: f32) -> (f32, f32) {
    (lambda, (1.0 - lambda as f64) as f32)
}

fn check_perm(range: &Range<usize>, perm: &[usize]) {
    assert_eq!(perm.len(), range.len(), "mixup: permutation of {} for a set of {}", perm.len(), range.len());
    let mut seen = vec![false; perm.len()];
    for &p in perm {
        assert!(p < perm.len() && !seen[p], "mixup: {perm:?} is not a permutation of 0..{}", perm.len());
        seen[p] = true;
    }
}

/// Mixup of the rows `range` of `data` (rows of `n` values): row i ← λ·row i + (1 − λ)·row perm[i]
/// (perm indexes within the range), reading the un-mixed rows. The DESED baseline's
/// `c·data + (1 − c)·data[perm]`, in f32 with 1 − λ rounded from f64.
pub fn mixup_features(data: &mut [f32], n: usize, range: Range<usize>, lambda: f32, perm: &[usize]) {
    check_perm(&range, perm);
    let (a, b) = mix_weights(lambda);
    let orig = data[range.start * n..range.end * n].to_vec();
    for (i, &p) in perm.iter().enumerate() {
        let dst = &mut data[(range.start + i) * n..(range.start + i + 1) * n];
        for ((d, &x), &y) in dst.iter_mut().zip(&orig[i * n..(i + 1) * n]).zip(&orig[p * n..(p + 1) * n]) {
            *d = a * x + b * y;
        }
    }
}

/// Mixup of target rows (rows of `n` values), reading the un-mixed rows: soft
/// clamp(λ·t + (1 − λ)·t[perm], 0, 1), hard clamp(t + t[perm], 0, 1) (DESED's `mixup_label_type`).
pub fn mixup_targets(targets: &mut [f32], n: usize, range: Range<usize>, lambda: f32, perm: &[usize], soft: bool) {
    check_perm(&range, perm);
    let (a, b) = mix_weights(lambda);
    let orig = targets[range.start * n..range.end * n].to_vec();
    for (i, &p) in perm.iter().enumerate() {
        let dst = &mut targets[(range.start + i) * n..(range.start + i + 1) * n];
        for ((d, &x), &y) in dst.iter_mut().zip(&orig[i * n..(i + 1) * n]).zip(&orig[p * n..(p + 1) * n]) {
            let v = if soft { a * x + b * y } else { x + y };
            *d = v.clamp(0.0, 1.0);
        }
    }
}

/// DESED's mixup on the samples `range` of a batch with one λ and one permutation of 0..range.len():
/// features ([`mixup_features`]) and both strong and weak targets ([`mixup_targets`]).
pub fn mixup(batch: &mut FeatBatch, range: Range<usize>, lambda: f32, perm: &[usize], soft: bool) {
    batch.check();
    assert!(range.end <= batch.b, "mixup: samples {range:?} outside a batch of {}", batch.b);
    mixup_features(batch.x, batch.l * batch.m, range.clone(), lambda, perm);
    mixup_targets(batch.strong, batch.f * batch.k, range.clone(), lambda, perm, soft);
    mixup_targets(batch.weak, batch.k, range, lambda, perm, soft);
}

// ------------------------------------------------------------------------------------------------
// Drawing
// ------------------------------------------------------------------------------------------------

/// Augments `batch` in place; the result is a pure function of (`cfg`, the rng state, the batch,
/// `mixup_sets`, `log_scale`). Order: gain → time shift → FilterAugment → mixup → time masks →
/// freq masks; an augmentation whose config is `None` is skipped.
///
/// Draws. First, always, six 32-byte seeds are read from `rng` (`fill_bytes`), one per stage in the
/// order above, and each stage draws from its own `ChaCha8Rng::from_seed(seed)`: `rng` advances by the
/// same amount whatever the config, and turning one augmentation on or off leaves the others' draws
/// unchanged. A "coin" is `gen::<f64>() < p`; `U` is `gen::<f64>()` and `u` is `gen::<f32>()` (both in [0, 1)).
/// Within each stage:
/// - gain: per sample: coin; if heads, `db = lo + (hi − lo)·U`; [`gain`].
/// - time shift: per sample: coin; if heads, `z ~ StandardNormal`, shift = trunc(z·trunc(std·l));
///   features [`roll_time`] by shift, frame targets [`roll_frames`] by [`label_shift`]`(shift, l, f)`.
/// - FilterAugment (boundaries per batch, factors per sample, as DESED): if `step_prob` is set, `U`
///   picks step (U < step_prob: n_band [2, 5), min_bw 4) or linear (configured n_band / min_bw);
///   n_band = `gen_range(lo..hi)`; if n_band ≤ 1 nothing else happens (DESED returns the features);
///   else n_band − 1 draws `gen_range(0..=m − n_band·min_bw)` ([`effective_min_bw`],
///   [`filter_boundaries`]); then per sample: coin; if heads, n_band (step) or n_band + 1 (linear)
///   factors `u·(hi − lo) + lo` in f32; [`filter_augment_db`] + [`apply_filter`].
/// - mixup: per range of `mixup_sets` with ≥ 2 samples, in order: coin; if heads,
///   λ = `Beta(alpha, alpha)` (f64, rounded to f32), then perm = `(0..n).shuffle()`; [`mixup`].
/// - time masks, then (own stream) freq masks: per sample: coin; if heads, `count` times: `u_value = u`,
///   `u_start = u`, [`mask_along_axis`]. Masks never touch targets.
///
/// `mixup_sets` are ranges of samples (e.g. strong / weak / unlabelled parts); they must lie within
/// the batch and not overlap. `log_scale` = 1/(2·std) of the AST normalisation.
pub fn augment(cfg: &AugmentConfig, rng: &mut ChaCha8Rng, batch: &mut FeatBatch, mixup_sets: &[Range<usize>], log_scale: f32) {
    batch.check();
    let mut stages: [ChaCha8Rng; 6] = std::array::from_fn(|_| {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        ChaCha8Rng::from_seed(seed)
    });
    let [r_gain, r_shift, r_filt, r_mix, r_tmask, r_fmask] = &mut stages;
    let (b, l, m, f, k) = (batch.b, batch.l, batch.m, batch.f, batch.k);
    let n = l * m;

    if let Some(g) = &cfg.gain {
        for i in 0..b {
            if r_gain.gen::<f64>() < g.p {
                let db = g.db[0] + (g.db[1] - g.db[0]) * r_gain.gen::<f64>();
                gain(&mut batch.x[i * n..(i + 1) * n], db as f32, log_scale);
            }
        }
    }

    if let Some(t) = &cfg.time_shift {
        let sigma = (t.std * l as f64).trunc();
        for i in 0..b {
            if r_shift.gen::<f64>() < t.p {
                let z: f64 = StandardNormal.sample(r_shift);
                let s = (z * sigma).trunc() as isize;
                roll_time(&mut batch.x[i * n..(i + 1) * n], l, m, s);
                roll_frames(&mut batch.strong[i * f * k..(i + 1) * f * k], f, k, label_shift(s, l, f));
            }
        }
    }

    if let Some(fa) = &cfg.filter_augment {
        let (step, n_band, min_bw) = match fa.step_prob {
            Some(q) if r_filt.gen::<f64>() < q => (true, [2, 5], 4),
            Some(_) => (false, fa.n_band, fa.min_bw),
            None => (fa.filter_type == FilterType::Step, fa.n_band, fa.min_bw),
        };
        let nb = r_filt.gen_range(n_band[0]..n_band[1]);
        if nb > 1 {
            let bw = effective_min_bw(m, nb, min_bw);
            let hi = m + 1 - nb * bw; // ≥ 0 by effective_min_bw
            let raw: Vec<usize> = (0..nb - 1).map(|_| r_filt.gen_range(0..hi)).collect();
            let bounds = filter_boundaries(m, nb, bw, &raw);
            let (lo, span) = (fa.db_range[0] as f32, (fa.db_range[1] - fa.db_range[0]) as f32);
            let nf = if step { nb } else { nb + 1 };
            for i in 0..b {
                if r_filt.gen::<f64>() < fa.p {
                    let factors: Vec<f32> = (0..nf).map(|_| r_filt.gen::<f32>() * span + lo).collect();
                    let filt = filter_augment_db(m, nb, &bounds, &factors, step);
                    apply_filter(&mut batch.x[i * n..(i + 1) * n], l, m, &filt, log_scale);
                }
            }
        }
    }

    if let Some(mx) = &cfg.mixup {
        let mut used = vec![false; b];
        for r in mixup_sets {
            assert!(r.end <= b, "augment: mixup set {r:?} outside a batch of {b}");
            for u in &mut used[r.clone()] {
                assert!(!*u, "augment: mixup sets {mixup_sets:?} overlap");
                *u = true;
            }
        }
        let beta = Beta::new(mx.alpha, mx.alpha).unwrap_or_else(|e| panic!("augment: mixup alpha {}: {e}", mx.alpha));
        for r in mixup_sets {
            if r.len() < 2 {
                continue;
            }
            if r_mix.gen::<f64>() < mx.p {
                let lambda = beta.sample(r_mix) as f32;
                let mut perm: Vec<usize> = (0..r.len()).collect();
                perm.shuffle(r_mix);
                mixup(batch, r.clone(), lambda, &perm, mx.soft);
            }
        }
    }

    for (mask, axis, r) in [(&cfg.time_mask, Axis::Time, r_tmask), (&cfg.freq_mask, Axis::Freq, r_fmask)] {
        if let Some(mk) = mask {
            for i in 0..b {
                if r.gen::<f64>() < mk.p {
                    for _ in 0..mk.count {
                        let (uv, us) = (r.gen::<f32>(), r.gen::<f32>());
                        mask_along_axis(&mut batch.x[i * n..(i + 1) * n], l, m, axis, mk.max_width, uv, us, mk.value);
                    }
                }
            }
        }
    }
}
