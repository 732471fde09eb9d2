//! The DCASE SED metrics, each equal to its reference package (read their source for the edge cases
//! each file documents):
//!
//! - [`event_based`]: sed_eval 0.2.1 `EventBasedMetrics` (collar + percentage of length, optimal
//!   bipartite matching, substitutions, class-wise and overall F1 / precision / recall / error rate);
//! - [`segment_based`]: sed_eval 0.2.1 `SegmentBasedMetrics` (fixed segments, event rolls);
//! - [`psds`]: the threshold-independent PSDS of sed_scores_eval 0.0.4
//!   (`intersection_based.psds`) from per-file score tables;
//! - [`psds_op`]: psds_eval 0.5.3 `PSDSEval` on operating points (events from thresholding the score
//!   tables at the DESED baseline's thresholds), the number the DESED 2022 baseline reports;
//! - [`tune`]: per-class thresholds and median filters that maximise the event-based F1;
//! - [`io`]: the DCASE TSV readers (reference, durations, predictions, score tables) with errors
//!   naming the file and line.
//!
//! Everything works on one [`GroundTruth`] (files, durations, classes, reference events) and,
//! per file, predicted events ([`Ev`]) or a [`ScoreTable`]. Files are named by their id: the file
//! name without the `.wav` (or any) extension, as sed_scores_eval names them.

pub mod event_based;
pub mod io;
pub mod psds;
pub mod psds_op;
pub mod report;
pub mod segment_based;
pub mod tune;

use super::{Result, SedError};

/// One event of a file: onset and offset in seconds, the class as an index into
/// [`GroundTruth::classes`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ev {
    pub onset: f64,
    pub offset: f64,
    pub class: usize,
}

/// The evaluation set: every file of the durations TSV (in its order) with its duration, the class
/// list, and the reference events of each file in the order of the reference TSV.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// File ids (file name without extension), in the order of the durations TSV.
    pub files: Vec<String>,
    /// Duration of each file in seconds.
    pub durations: Vec<f64>,
    pub classes: Vec<String>,
    /// Reference events of each file (`events[i]` for `files[i]`), in reference-TSV order.
    pub events: Vec<Vec<Ev>>,
}

impl GroundTruth {
    /// The reference with the events of one class that overlap or touch merged into one (onset of
    /// the first, latest offset), per file sorted by (class, onset). sed_scores_eval refuses such
    /// references ("Connected/overlapping events"), psds_eval refuses overlapping ones (touching ones
    /// it accepts, identical duplicates it counts twice); the PSDS functions take this form. Returns
    /// the merged reference and how many events were merged away.
    pub fn merged(&self) -> (GroundTruth, usize) {
        let mut merged_away = 0;
        let events = self
            .events
            .iter()
            .map(|evs| {
                let mut v = evs.clone();
                v.sort_by(|a, b| a.class.cmp(&b.class).then(a.onset.total_cmp(&b.onset)).then(a.offset.total_cmp(&b.offset)));
                let mut out: Vec<Ev> = Vec::with_capacity(v.len());
                for e in v {
                    match out.last_mut() {
                        Some(last) if last.class == e.class && e.onset <= last.offset => {
                            last.offset = last.offset.max(e.offset);
                            merged_away += 1;
                        }
                        _ => out.push(e),
                    }
                }
                out
            })
            .collect();
        (GroundTruth { events, ..self.clone() }, merged_away)
    }
}

/// Frame-level scores of one file in the sed_scores_eval layout: frame f spans
/// `timestamps[f] .. timestamps[f + 1]` (strictly increasing, `frames + 1` values) and has one score
/// per class, `scores[f · classes + c]`; classes in the order of [`GroundTruth::classes`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    pub timestamps: Vec<f64>,
    pub classes: usize,
    pub scores: Vec<f64>,
}

impl ScoreTable {
    pub fn new(timestamps: Vec<f64>, classes: usize, scores: Vec<f64>) -> Result<ScoreTable> {
        let frames = timestamps.len().saturating_sub(1);
        if timestamps.is_empty() || scores.len() != frames * classes {
            return Err(SedError::Invalid(format!("score table: {} scores for {} timestamps × {classes} classes", scores.len(), timestamps.len())));
        }
        if let Some(w) = timestamps.windows(2).position(|w| !(w[1] > w[0])) {
            return Err(SedError::Invalid(format!("score table: frame {w} has timestamps {} → {} (must increase)", timestamps[w], timestamps[w + 1])));
        }
        Ok(ScoreTable { timestamps, classes, scores })
    }

    pub fn frames(&self) -> usize {
        self.timestamps.len() - 1
    }

    /// A model's frame scores as a table of a file lasting `duration` s: the frames whose onset is
    /// before the end, the last offset clipped to it (what `aural detect --scores-dir` writes).
    pub fn from_frame_scores(s: &crate::sed::FrameScores, g: &crate::sed::FrameGeometry, duration: f64) -> Result<ScoreTable> {
        let n = (0..s.frames).take_while(|&f| g.time(f) < duration).count();
        let mut timestamps: Vec<f64> = (0..=n).map(|f| g.time(f)).collect();
        if let Some(last) = timestamps.last_mut() {
            *last = last.min(duration);
        }
        let scores = s.data[..n * s.classes].iter().map(|&v| v as f64).collect();
        ScoreTable::new(timestamps, s.classes, scores)
    }

    pub fn get(&self, f: usize, c: usize) -> f64 {
        self.scores[f * self.classes + c]
    }
}

/// The parameters of a PSDS (both [`psds`] and [`psds_op`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsdsParams {
    /// Detection tolerance criterion.
    pub dtc: f64,
    /// Ground-truth intersection criterion.
    pub gtc: f64,
    /// Cross-trigger tolerance criterion (None: cross triggers are not computed; alpha_ct must be 0).
    pub cttc: Option<f64>,
    pub alpha_ct: f64,
    pub alpha_st: f64,
    /// The eFPR up to which the PSD-ROC is integrated, per `unit_s`.
    pub max_efpr: f64,
    /// Seconds per unit of time of the false-positive rate (3600: per hour).
    pub unit_s: f64,
}

impl PsdsParams {
    /// DCASE scenario 1: dtc 0.7, gtc 0.7, no cross triggers, alpha_st 1, max eFPR 100 per hour.
    pub const SCENARIO1: PsdsParams = PsdsParams { dtc: 0.7, gtc: 0.7, cttc: None, alpha_ct: 0.0, alpha_st: 1.0, max_efpr: 100.0, unit_s: 3600.0 };
    /// DCASE scenario 2: dtc 0.1, gtc 0.1, cttc 0.3, alpha_ct 0.5, alpha_st 1, max eFPR 100 per hour.
    pub const SCENARIO2: PsdsParams = PsdsParams { dtc: 0.1, gtc: 0.1, cttc: Some(0.3), alpha_ct: 0.5, alpha_st: 1.0, max_efpr: 100.0, unit_s: 3600.0 };
}

/// A PSDS and its curves.
#[derive(Debug, Clone, PartialEq)]
pub struct PsdsResult {
    /// The normalised area under the PSD-ROC up to max_efpr.
    pub psds: f64,
    /// The effective PSD-ROC: (eFPR, eTPR) points, eFPR ascending.
    pub roc: Vec<(f64, f64)>,
    /// Per class: the single-class ROC (eFPR ascending, TPR).
    pub class_rocs: Vec<Vec<(f64, f64)>>,
}

/// sed_eval's `numpy.spacing(1)`: the eps added to the denominators of the error rates.
const EPS: f64 = f64::EPSILON;

/// Counts of one class or of all classes, as sed_eval accumulates them over files.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Reference events (segments).
    pub nref: f64,
    /// System events (segments).
    pub nsys: f64,
    pub ntp: f64,
    /// Substitutions (overall only; 0 class-wise).
    pub subs: f64,
    /// Deletions (class-wise: Nref − Ntp).
    pub del: f64,
    /// Insertions (class-wise: Nsys − Ntp).
    pub ins: f64,
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, c: &Counts) {
        self.nref += c.nref;
        self.nsys += c.nsys;
        self.ntp += c.ntp;
        self.subs += c.subs;
        self.del += c.del;
        self.ins += c.ins;
    }
}

/// The checks every counting metric makes of its input: one event list per file, every class
/// index (reference and estimated) in range. `what` names the metric in the message.
pub(crate) fn check_estimated(gt: &GroundTruth, estimated: &[Vec<Ev>], what: &str) -> Result<()> {
    if estimated.len() != gt.files.len() {
        return Err(SedError::Invalid(format!("{what}: {} predicted files for {} files", estimated.len(), gt.files.len())));
    }
    let k = gt.classes.len();
    for (i, (refs, sys)) in gt.events.iter().zip(estimated).enumerate() {
        if let Some(e) = refs.iter().chain(sys).find(|e| e.class >= k) {
            return Err(SedError::Invalid(format!("{what}: file '{}' has an event of class {} (there are {k} classes)", gt.files[i], e.class)));
        }
    }
    Ok(())
}

/// F-score, precision, recall and error rates from [`Counts`], with sed_eval's conventions:
/// precision = Ntp/Nsys (NaN when Nsys = 0, or 0 with `zero_score` — DESED's event-based call),
/// recall = Ntp/Nref (NaN when Nref = 0), F = 2PR/(P+R) (0 when P = R = 0, NaN when either is NaN),
/// rates = count/(Nref + eps) with eps = 2.2e-16 (so an insertion in a class without reference
/// events gives an error rate near 4.5e15, as sed_eval reports).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Scores {
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub error_rate: f64,
    pub substitution_rate: f64,
    pub deletion_rate: f64,
    pub insertion_rate: f64,
}

impl Scores {
    pub fn from_counts(c: &Counts, zero_score: bool) -> Scores {
        let precision = if c.nsys == 0.0 {
            if zero_score {
                0.0
            } else {
                f64::NAN
            }
        } else {
            c.ntp / c.nsys
        };
        let recall = if c.nref == 0.0 { f64::NAN } else { c.ntp / c.nref };
        let f1 = if precision == 0.0 && recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        let (s, d, i) = (c.subs / (c.nref + EPS), c.del / (c.nref + EPS), c.ins / (c.nref + EPS));
        Scores { f1, precision, recall, error_rate: s + d + i, substitution_rate: s, deletion_rate: d, insertion_rate: i }
    }

    /// The class-wise average: numpy.nanmean of each field over classes (NaN when all are NaN).
    pub fn nanmean(all: &[Scores]) -> Scores {
        let m = |f: fn(&Scores) -> f64| {
            let v: Vec<f64> = all.iter().map(f).filter(|x| !x.is_nan()).collect();
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        Scores {
            f1: m(|s| s.f1),
            precision: m(|s| s.precision),
            recall: m(|s| s.recall),
            error_rate: m(|s| s.error_rate),
            substitution_rate: m(|s| s.substitution_rate),
            deletion_rate: m(|s| s.deletion_rate),
            insertion_rate: m(|s| s.insertion_rate),
        }
    }
}

/// The result of a counting metric (event- or segment-based): overall (micro), class-wise and
/// their average (macro).
#[derive(Debug, Clone, PartialEq)]
pub struct CountMetrics {
    pub overall_counts: Counts,
    pub overall: Scores,
    pub class_counts: Vec<Counts>,
    pub class_wise: Vec<Scores>,
    /// numpy.nanmean over classes (sed_eval's `class_wise_average`).
    pub macro_avg: Scores,
}

impl CountMetrics {
    pub(crate) fn finish(overall_counts: Counts, class_counts: Vec<Counts>, zero_score: bool) -> CountMetrics {
        let class_wise: Vec<Scores> = class_counts.iter().map(|c| Scores::from_counts(c, zero_score)).collect();
        CountMetrics {
            overall: Scores::from_counts(&overall_counts, zero_score),
            macro_avg: Scores::nanmean(&class_wise),
            overall_counts,
            class_counts,
            class_wise,
        }
    }
}
