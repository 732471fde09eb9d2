//! Per-class decision settings tuned on a validation set: for every class, the threshold and the
//! median-filter window (frames, on the scores, as `aural detect` applies them) that maximise that
//! class's event-based F1 (sed_eval's, [`event_based`]) over a grid. A class's event-based counts
//! depend only on its own events, so the classes are tuned independently and the result is the best
//! of the grid for every class at once.

use super::event_based::{self, EventParams};
use super::report::threshold_events;
use super::{GroundTruth, ScoreTable};
use crate::sed::{MedianOn, Result, SedError};

/// One class's best setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuned {
    pub class: String,
    pub threshold: f64,
    pub median: usize,
    /// Its event-based F1 on the tuning set (NaN: no reference event and no detection at any setting).
    pub f1: f64,
    /// The class's F1 at the threshold 0.5 without a median filter, for comparison.
    pub f1_default: f64,
}

/// The grid search (module doc). Ties go to the smaller window, then to the threshold nearer 0.5.
/// A class without reference events keeps 0.5 and no filter.
pub fn tune(gt: &GroundTruth, tables: &[ScoreTable], p: &EventParams, medians: &[usize], thresholds: &[f64]) -> Result<Vec<Tuned>> {
    if medians.is_empty() || thresholds.is_empty() || medians.contains(&0) || thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
        return Err(SedError::Invalid("tuning needs windows ≥ 1 and thresholds in [0, 1]".into()));
    }
    let k = gt.classes.len();
    let has_ref: Vec<bool> = (0..k).map(|c| gt.events.iter().flatten().any(|e| e.class == c)).collect();
    let mut thr: Vec<f64> = thresholds.to_vec();
    thr.sort_by(|a, b| (a - 0.5).abs().total_cmp(&(b - 0.5).abs()).then(a.total_cmp(b)));
    let mut meds = medians.to_vec();
    meds.sort_unstable();
    meds.dedup();
    let f1_at = |t: f64, m: usize| -> Result<Vec<f64>> {
        let est: Vec<_> = tables.iter().map(|tb| threshold_events(tb, t, m, MedianOn::Scores)).collect();
        Ok(event_based::evaluate(gt, &est, p)?.class_wise.iter().map(|s| s.f1).collect())
    };
    let default = f1_at(0.5, 1)?;
    let mut best: Vec<Tuned> =
        (0..k).map(|c| Tuned { class: gt.classes[c].clone(), threshold: 0.5, median: 1, f1: f64::NAN, f1_default: default[c] }).collect();
    for &m in &meds {
        for &t in &thr {
            for (c, f) in f1_at(t, m)?.into_iter().enumerate() {
                if has_ref[c] && (best[c].f1.is_nan() || f > best[c].f1) {
                    best[c] = Tuned { threshold: t, median: m, f1: f, ..best[c].clone() };
                }
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::super::Ev;
    use super::*;

    /// Class "a": scores 0.3 inside its two events, 0.1 outside, one 0.35 spike of one frame; class
    /// "b": 0.9 inside its event; class "c": never in the reference. At 0.5 "a" is never detected;
    /// below 0.3 it is, but the spike is a false positive unless a window ≥ 3 removes it.
    #[test]
    fn picks_the_threshold_and_window_that_detect_each_class() {
        let frames = 100; // 0.1 s each
        let ts: Vec<f64> = (0..=frames).map(|f| f as f64 * 0.1).collect();
        let mut s = vec![0.1; frames * 3];
        for f in (10..30).chain(60..80) {
            s[f * 3] = 0.3;
        }
        s[45 * 3] = 0.35;
        for f in 40..50 {
            s[f * 3 + 1] = 0.9;
        }
        let table = ScoreTable::new(ts, 3, s).unwrap();
        let gt = GroundTruth {
            files: vec!["x".into()],
            durations: vec![10.0],
            classes: vec!["a".into(), "b".into(), "c".into()],
            events: vec![vec![Ev { onset: 1.0, offset: 3.0, class: 0 }, Ev { onset: 6.0, offset: 8.0, class: 0 }, Ev { onset: 4.0, offset: 5.0, class: 1 }]],
        };
        let grid: Vec<f64> = (1..20).map(|i| i as f64 * 0.05).collect();
        let t = tune(&gt, std::slice::from_ref(&table), &EventParams::default(), &[1, 3, 5], &grid).unwrap();
        // "a": F1 0 at 0.5; 1 with a window of 3 and a threshold in [0.1, 0.3), the one nearest 0.5
        assert_eq!(t[0].f1_default, 0.0);
        assert_eq!((t[0].f1, t[0].median), (1.0, 3));
        assert!((t[0].threshold - 0.25).abs() < 1e-9, "{:?}", t[0]);
        // without the window, the spike costs precision: 2 TP, 1 FP → F1 = 0.8
        let est = vec![threshold_events(&table, 0.25, 1, MedianOn::Scores)];
        let r = event_based::evaluate(&gt, &est, &EventParams::default()).unwrap();
        assert!((r.class_wise[0].f1 - 0.8).abs() < 1e-12);
        // "b" is perfect at 0.5 already and keeps it
        assert_eq!((t[1].f1, t[1].median, t[1].threshold), (1.0, 1, 0.5));
        // "c" has no reference: defaults
        assert!(t[2].f1.is_nan());
        assert_eq!((t[2].median, t[2].threshold), (1, 0.5));
        assert!(tune(&gt, &[table], &EventParams::default(), &[0], &grid).is_err());
    }
}
