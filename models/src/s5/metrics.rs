//! The DCASE 2025 task 4 (S5) metrics: label prediction accuracy and class-aware SDR improvement
//! (CA-SDRi), as the baseline's `src/evaluation/evaluate.py` computes them (its `ca_metric` in
//! `src/utils.py`, with torchmetrics' `signal_noise_ratio`), over in-memory signals
//! ([`score_mixture`], [`report`]) or over the baseline's directory layout ([`evaluate_dirs`]).
//!
//! # The rules
//! Per mixture, with `R` = the set of reference labels and `P` = the set of predicted labels
//! (`"silence"` removed from both; a label given in two slots counts once, and its **last** slot's
//! waveform is the one scored — the baseline builds `{label: waveform}` dicts):
//! - TP = R ∩ P, FP = P − R, FN = R − P;
//! - each TP label scores `SNR(estimate, reference) − SNR(mixture, reference)`, the mixture being its
//!   channel 0; each FP and each FN label scores 0;
//! - the mixture's CA-SDRi is the mean of those |TP| + |FP| + |FN| numbers (NaN when all three sets
//!   are empty, as torch's mean of an empty tensor — it cannot happen with S5 data, where every
//!   mixture has 1–3 target sources);
//! - the mixture's label prediction is correct when P = R (two empty sets are equal).
//!
//! `SNR(x, ref) = 10·log10((Σ ref² + ε) / (Σ (ref − x)² + ε))` with `ε = f32::EPSILON` (2⁻²³) in both
//! numerator and denominator and no zero-mean: torchmetrics' `signal_noise_ratio(preds, target,
//! zero_mean=False)` with `eps = torch.finfo(preds.dtype).eps` on the baseline's float32 tensors. An
//! estimate equal to its reference gives a large but finite SNR, an all-zero estimate 0 dB exactly.
//! The baseline computes in float32; here the sums, the logarithm and the means are in f64 (the
//! samples are f32), which differs from it by a few 1e-6 dB.
//!
//! Over a data set: CA-SDRi = the mean of the mixtures' CA-SDRi (dB); label accuracy = 100 × the
//! share of mixtures whose label prediction is correct (percent, as the baseline prints it). Both
//! are NaN for an empty set.
//!
//! Per class (not part of the task's metrics; for diagnosis): `tp`, `fp`, `fn` = the number of
//! mixtures where the class is a TP, an FP, a missed label; `sdri_mean` = the mean SDRi over its TPs
//! (NaN — `null` in JSON — without TPs); `ca_sdri` = the class's own share of the pooled
//! computation: the sum of its TP SDRi over `tp + fp + fn` (what CA-SDRi would be if every mixture
//! held only this class; NaN when all three counts are 0).
//!
//! # Files ([`evaluate_dirs`])
//! The baseline's layout (`data/dev_set/<split>/`): mixtures `MIXDIR/<name>.wav` (any channel count,
//! channel 0 is used), references `REFDIR/<name>_<Label>.wav` (`oracle_target/`), estimates
//! `ESTDIR/<name>_<Label>.wav`; the reference and predicted label sets are the labels that have a
//! file. Only files ending in `.wav` are looked at, as in the baseline. Differences from the
//! baseline's `DatasetS5Waveform`:
//! - A file belongs to a mixture when its name is exactly `<name>_<Label>.wav` for a known class
//!   `Label`. The baseline takes every file that *starts with* `<name>`, so mixture `s_1` also
//!   claims `s_10_Speech.wav` (and then fails on the label `0_Speech`): it needs no mixture name to
//!   be a prefix of another; here any names work. As in the baseline, a file `<name>_<X>.wav` whose
//!   `X` is not a class (`silence` included) is an error; a `.wav` file that belongs to no mixture
//!   is ignored with a warning (the baseline ignores it silently).
//! - A mixture without any estimate file counts as all its labels missed (CA-SDRi 0, label
//!   prediction wrong), with a warning; the baseline crashes on it (`np.zeros_like(dry_sources[0])`).
//!   A mixture without any reference file is an error (every S5 mixture has 1–3 target sources;
//!   the baseline crashes there too).
//! - References and estimates are read as mono, as the baseline's `librosa.load(path, sr=None)`
//!   does: a multi-channel file is mixed down to the mean of its channels, with a warning.
//! - Every file must have the mixture's sample rate (the baseline asserts 32 kHz for every file) and,
//!   after the mixdown, the mixture's length (the baseline's `torch.stack`/torchmetrics shape checks
//!   fail otherwise); errors name the file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::select::SILENCE;
use crate::audio::{read_wav, AudioError};

/// torchmetrics' `eps` for float32 tensors: `torch.finfo(torch.float32).eps` = 2⁻²³.
pub const EPS: f64 = f32::EPSILON as f64;

/// Why the metrics could not be computed. Every variant names the mixture or the file.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// A signal's length differs from its mixture's.
    #[error("{what}: {len} samples, but the mixture {mixture} has {mixture_len} (the lengths must be equal)")]
    Length { what: String, len: usize, mixture: String, mixture_len: usize },
    /// A file's sample rate differs from its mixture's.
    #[error("{path}: {rate} Hz, but the mixture {mixture} is at {mixture_rate} Hz")]
    Rate { path: PathBuf, rate: u32, mixture: PathBuf, mixture_rate: u32 },
    /// A directory cannot be listed.
    #[error("{path}: cannot list the directory: {msg}")]
    Dir { path: PathBuf, msg: String },
    /// A file name that does not fit the layout, a mixture without reference files, …
    #[error("{0}")]
    Layout(String),
}

/// `10·log10((Σ ref² + ε) / (Σ (ref − x)² + ε))`, ε = [`EPS`], in f64 (torchmetrics'
/// `signal_noise_ratio` without zero-mean). The slices must have equal lengths (panics otherwise;
/// [`score_mixture`] checks them first).
pub fn snr_db(x: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(x.len(), reference.len(), "snr_db: signals of unequal length");
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (&e, &r) in x.iter().zip(reference) {
        let (e, r) = (e as f64, r as f64);
        s += r * r;
        n += (r - e) * (r - e);
    }
    10.0 * ((s + EPS) / (n + EPS)).log10()
}

/// One source slot: a label (`"silence"` for an empty slot) and its waveform.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub label: &'a str,
    pub wave: &'a [f32],
}

/// A true-positive label's numbers (dB).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TpScore {
    pub label: String,
    /// SNR(estimate, reference).
    pub snr_estimate: f64,
    /// SNR(mixture channel 0, reference).
    pub snr_mixture: f64,
    /// `snr_estimate − snr_mixture`.
    pub sdri: f64,
}

/// One mixture's result. Label lists are sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixtureScore {
    pub name: String,
    /// The reference label set ('silence' removed).
    pub reference: Vec<String>,
    /// The predicted label set ('silence' removed).
    pub predicted: Vec<String>,
    /// Predicted set = reference set.
    pub label_correct: bool,
    pub tp: Vec<TpScore>,
    pub fp: Vec<String>,
    #[serde(rename = "fn")]
    pub missed: Vec<String>,
    /// The mean over TP (SDRi) + FP (0) + FN (0); NaN when there is no label at all.
    pub ca_sdri: f64,
}

/// Scores one mixture (module doc, "The rules"). `mixture` is its reference channel (channel 0);
/// every non-silence slot must have its length. `name` names the mixture in errors and the result.
pub fn score_mixture(name: &str, mixture: &[f32], reference: &[Slot], estimate: &[Slot]) -> Result<MixtureScore, MetricsError> {
    // {label: waveform}: a later slot of the same label replaces an earlier one (the baseline's dict).
    let dict = |slots: &[Slot<'_>], what: &str| -> Result<BTreeMap<String, Vec<f32>>, MetricsError> {
        let mut d = BTreeMap::new();
        for s in slots.iter().filter(|s| s.label != SILENCE) {
            if s.wave.len() != mixture.len() {
                return Err(MetricsError::Length {
                    what: format!("mixture {name}: {what} {}", s.label),
                    len: s.wave.len(),
                    mixture: name.to_string(),
                    mixture_len: mixture.len(),
                });
            }
            d.insert(s.label.to_string(), s.wave.to_vec());
        }
        Ok(d)
    };
    let refs = dict(reference, "reference")?;
    let ests = dict(estimate, "estimate")?;
    let mut tp = Vec::new();
    for (label, r) in &refs {
        if let Some(e) = ests.get(label) {
            let (snr_estimate, snr_mixture) = (snr_db(e, r), snr_db(mixture, r));
            tp.push(TpScore { label: label.clone(), snr_estimate, snr_mixture, sdri: snr_estimate - snr_mixture });
        }
    }
    let fp: Vec<String> = ests.keys().filter(|l| !refs.contains_key(*l)).cloned().collect();
    let missed: Vec<String> = refs.keys().filter(|l| !ests.contains_key(*l)).cloned().collect();
    let count = tp.len() + fp.len() + missed.len();
    let ca_sdri = if count == 0 { f64::NAN } else { tp.iter().map(|t| t.sdri).sum::<f64>() / count as f64 };
    Ok(MixtureScore {
        name: name.to_string(),
        label_correct: refs.keys().eq(ests.keys()),
        reference: refs.into_keys().collect(),
        predicted: ests.into_keys().collect(),
        tp,
        fp,
        missed,
        ca_sdri,
    })
}

/// One class's row of the per-class table (definitions in the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub missed: usize,
    /// Mean SDRi over the TPs (dB); NaN (JSON null) without TPs.
    pub sdri_mean: f64,
    /// Σ TP SDRi / (tp + fp + fn) (dB); NaN when all counts are 0.
    pub ca_sdri: f64,
}

/// A data set's result. JSON (serde): `label_accuracy`, `ca_sdri`, `n_mixtures`, `classes`,
/// `per_class` (an object keyed by class), `per_mixture`, `warnings`; NaN is written as `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Percent of mixtures whose predicted label set equals the reference set.
    pub label_accuracy: f64,
    /// Mean CA-SDRi over the mixtures (dB).
    pub ca_sdri: f64,
    pub n_mixtures: usize,
    /// The per-class rows' order: the classes given to [`report`], then any other label seen.
    pub classes: Vec<String>,
    pub per_class: BTreeMap<String, ClassScore>,
    pub per_mixture: Vec<MixtureScore>,
    /// What the file reader noticed (empty from [`report`]).
    pub warnings: Vec<String>,
}

/// The data-set numbers and per-class table of scored mixtures. Every class of `classes` gets a row
/// (zeros when unseen); labels outside `classes` get rows after them.
pub fn report(mixtures: Vec<MixtureScore>, classes: &[String]) -> Report {
    let n = mixtures.len();
    let correct = mixtures.iter().filter(|m| m.label_correct).count();
    let label_accuracy = if n == 0 { f64::NAN } else { 100.0 * correct as f64 / n as f64 };
    let ca_sdri = if n == 0 { f64::NAN } else { mixtures.iter().map(|m| m.ca_sdri).sum::<f64>() / n as f64 };
    let mut order: Vec<String> = classes.to_vec();
    let mut known: HashSet<String> = classes.iter().cloned().collect();
    // (tp, fp, fn, Σ sdri) per label
    let mut acc: HashMap<String, (usize, usize, usize, f64)> = HashMap::new();
    for m in &mixtures {
        let labels = m.tp.iter().map(|t| &t.label).chain(&m.fp).chain(&m.missed);
        for l in labels {
            if known.insert(l.clone()) {
                order.push(l.clone());
            }
        }
        for t in &m.tp {
            let a = acc.entry(t.label.clone()).or_default();
            a.0 += 1;
            a.3 += t.sdri;
        }
        for l in &m.fp {
            acc.entry(l.clone()).or_default().1 += 1;
        }
        for l in &m.missed {
            acc.entry(l.clone()).or_default().2 += 1;
        }
    }
    let per_class = order
        .iter()
        .map(|c| {
            let (tp, fp, missed, sum) = acc.get(c).copied().unwrap_or_default();
            let div = |a: f64, b: usize| if b == 0 { f64::NAN } else { a / b as f64 };
            (c.clone(), ClassScore { tp, fp, missed, sdri_mean: div(sum, tp), ca_sdri: div(sum, tp + fp + missed) })
        })
        .collect();
    Report { label_accuracy, ca_sdri, n_mixtures: n, classes: order, per_class, per_mixture: mixtures, warnings: Vec::new() }
}

impl Report {
    /// A plain-text table: the two task metrics, then one row per class.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let f = |x: f64, d: usize| if x.is_nan() { "-".to_string() } else { format!("{x:.d$}") };
        s += &format!("mixtures            {}\n", self.n_mixtures);
        s += &format!("label accuracy      {} %\n", f(self.label_accuracy, 2));
        s += &format!("CA-SDRi             {} dB\n\n", f(self.ca_sdri, 3));
        let w = self.classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
        s += &format!("{:<w$}  {:>5}  {:>5}  {:>5}  {:>10}  {:>10}\n", "class", "TP", "FP", "FN", "SDRi(TP)", "CA-SDRi");
        for c in &self.classes {
            let r = &self.per_class[c];
            s += &format!("{c:<w$}  {:>5}  {:>5}  {:>5}  {:>10}  {:>10}\n", r.tp, r.fp, r.missed, f(r.sdri_mean, 3), f(r.ca_sdri, 3));
        }
        s
    }
}

/// The `.wav` files of a directory (names only, sorted); other files are not looked at.
fn list_wavs(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<String>, MetricsError> {
    let err = |e: std::io::Error| MetricsError::Dir { path: dir.to_path_buf(), msg: e.to_string() };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            warnings.push(format!("{}: not a UTF-8 file name, ignored", entry.path().display()));
            continue;
        };
        if name.ends_with(".wav") && !entry.path().is_dir() {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Assigns the `<name>_<Label>.wav` files of `dir` to the mixtures: mixture → (class index, path),
/// in class order.
fn assign(
    dir: &Path,
    what: &str,
    names: &HashSet<&str>,
    classes: &[String],
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, Vec<(usize, PathBuf)>>, MetricsError> {
    let mut out: HashMap<String, Vec<(usize, PathBuf)>> = HashMap::new();
    for file in list_wavs(dir, warnings)? {
        let stem = &file[..file.len() - 4];
        let path = dir.join(&file);
        let hits: Vec<(&str, usize)> = classes
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let m = stem.strip_suffix(c.as_str())?.strip_suffix('_')?;
                names.contains(m).then_some((m, k))
            })
            .collect();
        match hits[..] {
            [(m, k)] => out.entry(m.to_string()).or_default().push((k, path)),
            [] => {
                // `<mixture>_<not a class>.wav` is an error (the baseline asserts); anything else is
                // not ours.
                let owner = stem.match_indices('_').map(|(i, _)| &stem[..i]).find(|p| names.contains(p));
                match owner {
                    Some(m) => {
                        return Err(MetricsError::Layout(format!(
                            "{}: not a valid {what} file name for mixture {m}: '{}' is not one of the {} classes",
                            path.display(),
                            &stem[m.len() + 1..],
                            classes.len()
                        )))
                    }
                    None => warnings.push(format!("{}: belongs to no mixture, ignored", path.display())),
                }
            }
            _ => {
                let list: Vec<String> = hits.iter().map(|(m, k)| format!("{m} + {}", classes[*k])).collect();
                return Err(MetricsError::Layout(format!("{}: ambiguous {what} file name ({})", path.display(), list.join(", "))));
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// A reference or estimate file as mono at the mixture's rate and length.
fn read_source(path: &Path, mixture: &Path, rate: u32, len: usize, warnings: &mut Vec<String>) -> Result<Vec<f32>, MetricsError> {
    let a = read_wav(path)?;
    if a.sample_rate != rate {
        return Err(MetricsError::Rate { path: path.to_path_buf(), rate: a.sample_rate, mixture: mixture.to_path_buf(), mixture_rate: rate });
    }
    let mono = if a.channels.len() == 1 {
        a.channels.into_iter().next().expect("one channel")
    } else {
        warnings.push(format!("{}: {} channels mixed down to mono (their mean), as the baseline's librosa.load does", path.display(), a.channels.len()));
        let k = a.channels.len() as f64;
        (0..a.num_samples()).map(|i| (a.channels.iter().map(|c| c[i] as f64).sum::<f64>() / k) as f32).collect()
    };
    if mono.len() != len {
        return Err(MetricsError::Length { what: path.display().to_string(), len: mono.len(), mixture: mixture.display().to_string(), mixture_len: len });
    }
    Ok(mono)
}

/// Labelled waveforms as slots.
fn slots<'a>(v: &'a [(usize, Vec<f32>)], classes: &'a [String]) -> Vec<Slot<'a>> {
    v.iter().map(|(k, x)| Slot { label: &classes[*k], wave: x }).collect()
}

/// One mixture of a data set in the baseline's layout: its name, its file and its reference files
/// (class index, path), sorted by class.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutItem {
    pub name: String,
    pub mixture: PathBuf,
    pub references: Vec<(usize, PathBuf)>,
}

/// Reads a data set in the baseline's layout (module doc, "Files": `<name>.wav` mixtures, their
/// `<name>_<Label>.wav` references), in name order, with the same rules as [`evaluate_dirs`]; every
/// mixture must have a reference. Returns the warnings too (files that belong to no mixture).
pub fn read_layout(mixtures: &Path, reference: &Path, classes: &[String]) -> Result<(Vec<LayoutItem>, Vec<String>), MetricsError> {
    let mut warnings = Vec::new();
    let mix_files = list_wavs(mixtures, &mut warnings)?;
    if mix_files.is_empty() {
        return Err(MetricsError::Layout(format!("{}: no .wav mixtures", mixtures.display())));
    }
    let names: Vec<&str> = mix_files.iter().map(|f| &f[..f.len() - 4]).collect();
    let set: HashSet<&str> = names.iter().copied().collect();
    let mut refs = assign(reference, "reference", &set, classes, &mut warnings)?;
    let items = names
        .iter()
        .map(|&name| {
            let mixture = mixtures.join(format!("{name}.wav"));
            let references = refs
                .remove(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| MetricsError::Layout(format!("mixture {}: no reference file {}/{name}_<Label>.wav", mixture.display(), reference.display())))?;
            Ok(LayoutItem { name: name.to_string(), mixture, references })
        })
        .collect::<Result<Vec<_>, MetricsError>>()?;
    Ok((items, warnings))
}

/// Evaluates a data set in the baseline's layout (module doc, "Files"): mixtures `<name>.wav` in
/// `mixtures`, `<name>_<Label>.wav` references in `reference` and estimates in `estimates`, labels
/// from `classes`. Mixtures are scored in name order (in parallel); the report's `warnings` say what
/// was ignored, mixed down, or counted as all-missed.
pub fn evaluate_dirs(mixtures: &Path, reference: &Path, estimates: &Path, classes: &[String]) -> Result<Report, MetricsError> {
    let mut warnings = Vec::new();
    let mix_files = list_wavs(mixtures, &mut warnings)?;
    if mix_files.is_empty() {
        return Err(MetricsError::Layout(format!("{}: no .wav mixtures", mixtures.display())));
    }
    let names: Vec<&str> = mix_files.iter().map(|f| &f[..f.len() - 4]).collect();
    let set: HashSet<&str> = names.iter().copied().collect();
    let refs = assign(reference, "reference", &set, classes, &mut warnings)?;
    let ests = assign(estimates, "estimate", &set, classes, &mut warnings)?;
    let none = Vec::new();
    let one = |name: &str| -> Result<(MixtureScore, Vec<String>), MetricsError> {
        let mut w = Vec::new();
        let mpath = mixtures.join(format!("{name}.wav"));
        let r = refs.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            MetricsError::Layout(format!(
                "mixture {}: no reference file {}/{name}_<Label>.wav (every S5 mixture has 1-3 target sources)",
                mpath.display(),
                reference.display()
            ))
        })?;
        let e = ests.get(name).unwrap_or(&none);
        let mix = read_wav(&mpath)?;
        let (rate, len) = (mix.sample_rate, mix.num_samples());
        let ch0 = mix.channels.into_iter().next().unwrap_or_default();
        let load = |files: &[(usize, PathBuf)], w: &mut Vec<String>| -> Result<Vec<(usize, Vec<f32>)>, MetricsError> {
            files.iter().map(|(k, p)| Ok((*k, read_source(p, &mpath, rate, len, w)?))).collect()
        };
        let rw = load(r, &mut w)?;
        let ew = load(e, &mut w)?;
        if e.is_empty() {
            w.push(format!(
                "mixture {}: no estimate file in {}: all {} of its labels count as missed (the baseline crashes here)",
                mpath.display(),
                estimates.display(),
                r.len()
            ));
        }
        let s = score_mixture(name, &ch0, &slots(&rw, classes), &slots(&ew, classes))?;
        Ok((s, w))
    };
    let results: Vec<Result<(MixtureScore, Vec<String>), MetricsError>> = names.par_iter().map(|n| one(n)).collect();
    let mut scored = Vec::with_capacity(results.len());
    for r in results {
        let (s, w) = r?;
        scored.push(s);
        warnings.extend(w);
    }
    let mut rep = report(scored, classes);
    rep.warnings = warnings;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snr_edges() {
        let r = [0.5f32, -0.25, 0.125, 1.0];
        // An all-zero estimate: 0 dB exactly.
        assert_eq!(snr_db(&[0.0; 4], &r), 0.0);
        // The reference itself: (‖r‖² + ε)/ε.
        let e = r.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
        assert!((snr_db(&r, &r) - 10.0 * ((e + EPS) / EPS).log10()).abs() < 1e-12);
        // A silent reference: finite.
        assert!(snr_db(&r, &[0.0; 4]).is_finite());
    }

    #[test]
    fn mixture_rules() {
        let mix = [1.0f32, 1.0, 1.0, 1.0];
        let (a, b, z) = ([1.0f32, 0.0, 1.0, 0.0], [0.0f32, 1.0, 0.0, 1.0], [0.0f32; 4]);
        let refs = [Slot { label: "A", wave: &a }, Slot { label: "B", wave: &b }, Slot { label: SILENCE, wave: &[] }];
        // A twice (the last slot, a copy of the reference, counts), C a false positive, B missed.
        let ests = [Slot { label: "A", wave: &z }, Slot { label: "C", wave: &z }, Slot { label: "A", wave: &a }];
        let s = score_mixture("m", &mix, &refs, &ests).unwrap();
        assert_eq!((s.fp.clone(), s.missed.clone(), s.label_correct), (vec!["C".to_string()], vec!["B".to_string()], false));
        let tp = &s.tp[0];
        assert_eq!(tp.label, "A");
        assert_eq!(tp.snr_estimate, snr_db(&a, &a));
        assert!((s.ca_sdri - tp.sdri / 3.0).abs() < 1e-12);
        // No labels at all: NaN; a wrong length: an error naming the label.
        assert!(score_mixture("m", &mix, &[], &[]).unwrap().ca_sdri.is_nan());
        let e = score_mixture("m", &mix, &[Slot { label: "A", wave: &a[..3] }], &[]).unwrap_err().to_string();
        assert!(e.contains("reference A") && e.contains("3 samples"), "{e}");
        let rep = report(vec![s], &["A".to_string(), "Z".to_string()]);
        assert_eq!(rep.classes, ["A", "Z", "C", "B"]);
        assert_eq!(rep.label_accuracy, 0.0);
        assert_eq!((rep.per_class["Z"].tp, rep.per_class["C"].fp, rep.per_class["B"].missed), (0, 1, 1));
        assert!(rep.per_class["Z"].sdri_mean.is_nan());
    }
}
