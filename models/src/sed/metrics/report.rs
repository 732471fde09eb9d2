//! One evaluation as `aural evaluate` and the trainer's validation run it: thresholded events →
//! event- and segment-based metrics; score tables → events at one threshold (the same metrics),
//! the threshold-independent PSDS1/PSDS2 (sed_scores_eval) and the PSDS on the DESED baseline's
//! operating points (psds_eval); a text table and a JSON object with stable keys.
//!
//! From score tables, a frame is active for a class when its (median-filtered) score is strictly
//! greater than the threshold (the DESED baseline's decoding); a run of active frames f … g is the
//! event timestamps[f] … timestamps[g + 1]. Events are listed class by class in column order,
//! onsets ascending (as `aural detect` writes them).
//!
//! PSDS needs reference events: classes without any are left out of both PSDS (sed_scores_eval
//! refuses them), and reference events of one class that overlap or touch are merged first
//! (sed_scores_eval refuses those too); both are reported as warnings.

use serde_json::{json, Map, Value};

use super::{event_based, psds, psds_op, segment_based, CountMetrics, Ev, GroundTruth, PsdsParams, PsdsResult, ScoreTable};
use crate::sed::median::median_filter_1d;
use crate::sed::{MedianOn, Result, SedError};

/// The DESED baseline's operating points: `np.arange(1 / (2n), 1, 1 / n)` with n = 50, the floats
/// numpy makes (a[0] = start, a[1] = start + step, a[i] = start + i·(a[1] − a[0])).
pub fn desed_thresholds(n: usize) -> Vec<f64> {
    let (start, step) = (1.0 / (2 * n) as f64, 1.0 / n as f64);
    let len = ((1.0 - start) / step).ceil() as usize;
    let delta = (start + step) - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// Settings of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    pub event: event_based::EventParams,
    /// Segment length of the segment-based metrics, seconds (1.0).
    pub segment_s: f64,
    /// Threshold turning score tables into events for the event/segment-based metrics (0.5).
    pub threshold: f64,
    /// Median filter window (frames, 1 = none) applied to score tables before any thresholding.
    pub median: usize,
    pub median_on: MedianOn,
    pub psds1: PsdsParams,
    pub psds2: PsdsParams,
    /// Operating points of the psds_eval PSDS (the DESED baseline's 50).
    pub op_thresholds: Vec<f64>,
    /// Which metrics to compute (all by default; the PSDS need score tables).
    pub which: Which,
}

/// A selection of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Which {
    pub event: bool,
    pub segment: bool,
    pub psds1: bool,
    pub psds2: bool,
    pub psds1_op: bool,
    pub psds2_op: bool,
}

impl Which {
    pub const ALL: Which = Which { event: true, segment: true, psds1: true, psds2: true, psds1_op: true, psds2_op: true };
    pub const NAMES: [&'static str; 6] = ["event", "segment", "psds1", "psds2", "psds1_op", "psds2_op"];

    /// From names (`event`, `segment`, `psds1`, `psds2`, `psds1_op`, `psds2_op`, `psds` = all four).
    pub fn parse(names: &[String]) -> Result<Which> {
        let mut w = Which { event: false, segment: false, psds1: false, psds2: false, psds1_op: false, psds2_op: false };
        for n in names {
            match n.trim() {
                "event" => w.event = true,
                "segment" => w.segment = true,
                "psds1" => w.psds1 = true,
                "psds2" => w.psds2 = true,
                "psds1_op" => w.psds1_op = true,
                "psds2_op" => w.psds2_op = true,
                "psds" => (w.psds1, w.psds2, w.psds1_op, w.psds2_op) = (true, true, true, true),
                other => return Err(SedError::Invalid(format!("unknown metric '{other}' (one of {}, psds)", Which::NAMES.join(", ")))),
            }
        }
        Ok(w)
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            event: event_based::EventParams::default(),
            segment_s: 1.0,
            threshold: 0.5,
            median: 1,
            median_on: MedianOn::Scores,
            psds1: PsdsParams::SCENARIO1,
            psds2: PsdsParams::SCENARIO2,
            op_thresholds: desed_thresholds(50),
            which: Which::ALL,
        }
    }
}

/// What is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Thresholded events per file.
    Events(Vec<Vec<Ev>>),
    /// One score table per file.
    Scores(Vec<ScoreTable>),
}

/// The results of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub classes: Vec<String>,
    pub files: usize,
    pub event_based: Option<CountMetrics>,
    pub segment_based: Option<CountMetrics>,
    /// From score tables only.
    pub psds1: Option<PsdsResult>,
    pub psds2: Option<PsdsResult>,
    pub psds1_op: Option<PsdsResult>,
    pub psds2_op: Option<PsdsResult>,
    /// The classes the PSDS were computed over (those with reference events).
    pub psds_classes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Events of one score table at `threshold`, after the median filter (`median` frames).
pub fn threshold_events(t: &ScoreTable, threshold: f64, median: usize, on: MedianOn) -> Vec<Ev> {
    decode_columns(&t.timestamps, &score_columns(t, median, on), threshold, median, on)
}

/// The table's class columns, median-filtered when the filter runs on the scores (the part of the
/// decoding that does not depend on the threshold).
fn score_columns(t: &ScoreTable, median: usize, on: MedianOn) -> Vec<Vec<f64>> {
    let cols = (0..t.classes).map(|c| (0..t.frames()).map(|f| t.get(f, c)).collect::<Vec<f64>>());
    if median > 1 && on == MedianOn::Scores {
        cols.map(|c| median_filter_1d(&c, median)).collect()
    } else {
        cols.collect()
    }
}

fn decode_columns(ts: &[f64], cols: &[Vec<f64>], threshold: f64, median: usize, on: MedianOn) -> Vec<Ev> {
    let mut out = Vec::new();
    for (c, col) in cols.iter().enumerate() {
        if median > 1 && on == MedianOn::Binary {
            let active: Vec<f64> = col.iter().map(|&s| if s > threshold { 1.0 } else { 0.0 }).collect();
            push_runs(ts, &median_filter_1d(&active, median), 0.5, c, &mut out);
        } else {
            push_runs(ts, col, threshold, c, &mut out);
        }
    }
    out
}

/// Appends the runs of frames with value > threshold of class `c` as events.
fn push_runs(ts: &[f64], col: &[f64], threshold: f64, c: usize, out: &mut Vec<Ev>) {
    let mut start = None;
    for (f, &v) in col.iter().enumerate() {
        match (v > threshold, start) {
            (true, None) => start = Some(f),
            (false, Some(s)) => {
                out.push(Ev { onset: ts[s], offset: ts[f], class: c });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Ev { onset: ts[s], offset: ts[col.len()], class: c });
    }
}

/// Runs every metric that `pred` allows.
pub fn evaluate(gt: &GroundTruth, pred: &Predictions, o: &EvalOptions) -> Result<Report> {
    let mut warnings = Vec::new();
    let w = o.which;
    if let Predictions::Scores(t) = pred {
        check_tables(gt, t)?;
    }
    let (mut event_based, mut segment_based) = (None, None);
    if w.event || w.segment {
        let events: Vec<Vec<Ev>> = match pred {
            Predictions::Events(e) => e.clone(),
            Predictions::Scores(t) => {
                use rayon::prelude::*;
                t.par_iter().map(|t| threshold_events(t, o.threshold, o.median, o.median_on)).collect()
            }
        };
        if w.event {
            event_based = Some(event_based::evaluate(gt, &events, &o.event)?);
        }
        if w.segment {
            segment_based = Some(segment_based::evaluate(gt, &events, o.segment_s)?);
        }
    }
    let mut r = Report {
        classes: gt.classes.clone(),
        files: gt.files.len(),
        event_based,
        segment_based,
        psds1: None,
        psds2: None,
        psds1_op: None,
        psds2_op: None,
        psds_classes: Vec::new(),
        warnings: Vec::new(),
    };
    if let (Predictions::Scores(tables), true) = (pred, w.psds1 || w.psds2 || w.psds1_op || w.psds2_op) {
        let (sub, sub_tables, dropped, merged) = psds_subset(gt, tables);
        if !dropped.is_empty() {
            warnings.push(format!("PSDS: class(es) without reference events left out (sed_scores_eval refuses them): {}", dropped.join(", ")));
        }
        if merged > 0 {
            warnings.push(format!(
                "PSDS: {merged} reference event(s) overlapping or touching another of their class merged into it (sed_scores_eval refuses such references)"
            ));
        }
        if sub.classes.is_empty() {
            warnings.push("PSDS: no reference events at all: not computed".into());
        } else {
            let one = sub.classes.len() == 1;
            for (on, params, slot, name) in [(w.psds1, &o.psds1, &mut r.psds1, "PSDS1"), (w.psds2, &o.psds2, &mut r.psds2, "PSDS2")] {
                if !on {
                    continue;
                }
                if one && params.cttc.is_some() {
                    // sed_scores_eval needs another class for cross triggers.
                    warnings.push(format!("{name}: cross triggers (cttc) need at least two classes with reference events: not computed"));
                    continue;
                }
                *slot = Some(psds::psds(&sub, &sub_tables, params)?);
            }
            if one && (w.psds1_op || w.psds2_op) {
                warnings.push(
                    "PSDS on operating points: with a single class psds_eval's eFPR is NaN (an empty mean over the other classes), so its PSDS is 0, as here"
                        .into(),
                );
            }
            if w.psds1_op || w.psds2_op {
                let ops = operating_points(&sub_tables, &o.op_thresholds, o.median, o.median_on);
                if w.psds1_op {
                    r.psds1_op = Some(psds_op::psds_operating_points(&sub, &ops, &o.psds1)?);
                }
                if w.psds2_op {
                    r.psds2_op = Some(psds_op::psds_operating_points(&sub, &ops, &o.psds2)?);
                }
            }
        }
        r.psds_classes = sub.classes;
    }
    r.warnings = warnings;
    Ok(r)
}

fn check_tables(gt: &GroundTruth, t: &[ScoreTable]) -> Result<()> {
    if t.len() != gt.files.len() {
        return Err(SedError::Invalid(format!("{} score tables for {} files", t.len(), gt.files.len())));
    }
    for (t, f) in t.iter().zip(&gt.files) {
        if t.classes != gt.classes.len() {
            return Err(SedError::Invalid(format!("score table of '{f}' has {} classes, the class list {}", t.classes, gt.classes.len())));
        }
        if let Some(i) = t.scores.iter().position(|s| !s.is_finite()) {
            return Err(SedError::Invalid(format!("score table of '{f}': frame {} class '{}' is {}", i / t.classes, gt.classes[i % t.classes], t.scores[i])));
        }
    }
    Ok(())
}

/// The ground truth and tables restricted to the classes with reference events, references merged.
fn psds_subset<'a>(gt: &GroundTruth, tables: &'a [ScoreTable]) -> (GroundTruth, std::borrow::Cow<'a, [ScoreTable]>, Vec<String>, usize) {
    let (m, merged) = gt.merged();
    let k = gt.classes.len();
    let mut present = vec![false; k];
    for e in m.events.iter().flatten() {
        present[e.class] = true;
    }
    let keep: Vec<usize> = (0..k).filter(|&c| present[c]).collect();
    let dropped = (0..k).filter(|&c| !present[c]).map(|c| gt.classes[c].clone()).collect();
    let mut new_index = vec![usize::MAX; k];
    for (i, &c) in keep.iter().enumerate() {
        new_index[c] = i;
    }
    let events = m.events.iter().map(|ev| ev.iter().map(|e| Ev { class: new_index[e.class], ..*e }).collect()).collect();
    let sub = GroundTruth { classes: keep.iter().map(|&c| gt.classes[c].clone()).collect(), events, ..m };
    if keep.len() == k {
        return (sub, std::borrow::Cow::Borrowed(tables), dropped, merged);
    }
    let sub_tables = tables
        .iter()
        .map(|t| ScoreTable {
            timestamps: t.timestamps.clone(),
            classes: keep.len(),
            scores: (0..t.frames()).flat_map(|f| keep.iter().map(move |&c| t.get(f, c))).collect(),
        })
        .collect();
    (sub, sub_tables, dropped, merged)
}

/// Events of every table at every threshold: `[threshold][file]`.
pub fn operating_points(tables: &[ScoreTable], thresholds: &[f64], median: usize, on: MedianOn) -> Vec<Vec<Vec<Ev>>> {
    use rayon::prelude::*;
    // Per file: the (filtered) columns once, then every threshold.
    let per_file: Vec<Vec<Vec<Ev>>> = tables
        .par_iter()
        .map(|t| {
            let cols = score_columns(t, median, on);
            thresholds.iter().map(|&th| decode_columns(&t.timestamps, &cols, th, median, on)).collect()
        })
        .collect();
    let mut out: Vec<Vec<Vec<Ev>>> = (0..thresholds.len()).map(|_| Vec::with_capacity(tables.len())).collect();
    for f in per_file {
        for (k, ev) in f.into_iter().enumerate() {
            out[k].push(ev);
        }
    }
    out
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn counting_json(m: &Option<CountMetrics>, classes: &[String]) -> Value {
    let Some(m) = m else { return Value::Null };
    let mut cw = Map::new();
    for (i, c) in classes.iter().enumerate() {
        let s = &m.class_wise[i];
        let n = &m.class_counts[i];
        cw.insert(
            c.clone(),
            json!({"f1": num(s.f1), "precision": num(s.precision), "recall": num(s.recall), "error_rate": num(s.error_rate),
                   "deletion_rate": num(s.deletion_rate), "insertion_rate": num(s.insertion_rate), "nref": n.nref, "nsys": n.nsys, "ntp": n.ntp}),
        );
    }
    let (o, a, n) = (&m.overall, &m.macro_avg, &m.overall_counts);
    json!({
        "f1_macro": num(a.f1), "precision_macro": num(a.precision), "recall_macro": num(a.recall), "error_rate_macro": num(a.error_rate),
        "f1_micro": num(o.f1), "precision_micro": num(o.precision), "recall_micro": num(o.recall),
        "error_rate": num(o.error_rate), "substitution_rate": num(o.substitution_rate), "deletion_rate": num(o.deletion_rate), "insertion_rate": num(o.insertion_rate),
        "nref": n.nref, "nsys": n.nsys, "ntp": n.ntp, "substitutions": n.subs, "deletions": n.del, "insertions": n.ins,
        "class_wise": Value::Object(cw),
    })
}

impl Report {
    /// The JSON object with stable keys (`event_based.f1_macro`, `psds1`, …); NaN and missing
    /// values are `null`.
    pub fn to_json(&self, o: &EvalOptions) -> Value {
        let p = |r: &Option<PsdsResult>| r.as_ref().map_or(Value::Null, |r| num(r.psds));
        let roc = |r: &Option<PsdsResult>| {
            r.as_ref()
                .map_or(Value::Null, |r| json!({"efpr": r.roc.iter().map(|x| x.0).collect::<Vec<_>>(), "etpr": r.roc.iter().map(|x| x.1).collect::<Vec<_>>()}))
        };
        let params = |q: &PsdsParams| json!({"dtc": q.dtc, "gtc": q.gtc, "cttc": q.cttc, "alpha_ct": q.alpha_ct, "alpha_st": q.alpha_st, "max_efpr": q.max_efpr, "unit_s": q.unit_s});
        json!({
            "files": self.files,
            "classes": self.classes,
            "event_based": counting_json(&self.event_based, &self.classes),
            "segment_based": counting_json(&self.segment_based, &self.classes),
            "psds1": p(&self.psds1),
            "psds2": p(&self.psds2),
            "psds1_operating_points": p(&self.psds1_op),
            "psds2_operating_points": p(&self.psds2_op),
            "psds_classes": self.psds_classes,
            "psd_roc": {"psds1": roc(&self.psds1), "psds2": roc(&self.psds2)},
            "parameters": {
                "t_collar": o.event.t_collar, "percentage_of_length": o.event.percentage_of_length, "segment_s": o.segment_s,
                "threshold": o.threshold, "median_filter": o.median, "median_on": format!("{:?}", o.median_on).to_lowercase(),
                "psds1": params(&o.psds1), "psds2": params(&o.psds2), "operating_points": o.op_thresholds.len(),
            },
            "warnings": self.warnings,
        })
    }

    /// A readable table: overall and per class.
    pub fn table(&self) -> String {
        let pct = |x: f64| if x.is_finite() { format!("{:6.2}", 100.0 * x) } else { "     -".into() };
        let er = |x: f64| {
            if x.is_finite() && x < 1e6 {
                format!("{x:6.3}")
            } else if x.is_finite() {
                "   inf".into()
            } else {
                "     -".into()
            }
        };
        let mut s = String::new();
        s += &format!("{} files, {} classes\n\n", self.files, self.classes.len());
        s += "                        F1 %   P %    R %    ER\n";
        for (name, m) in [("event-based", &self.event_based), ("segment-based", &self.segment_based)] {
            let Some(m) = m else { continue };
            s += &format!(
                "{name:<14} macro  {} {} {} {}\n",
                pct(m.macro_avg.f1),
                pct(m.macro_avg.precision),
                pct(m.macro_avg.recall),
                er(m.macro_avg.error_rate)
            );
            s += &format!("{:<14} micro  {} {} {} {}\n", "", pct(m.overall.f1), pct(m.overall.precision), pct(m.overall.recall), er(m.overall.error_rate));
        }
        let w = self.classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
        if let Some(eb) = &self.event_based {
            s += &format!("\n{:<w$}  Nref  Nsys  EB-F1 %  EB-P %  EB-R %  SB-F1 %\n", "class");
            for (i, c) in self.classes.iter().enumerate() {
                let (e, n) = (&eb.class_wise[i], &eb.class_counts[i]);
                let g = self.segment_based.as_ref().map_or(f64::NAN, |m| m.class_wise[i].f1);
                s += &format!("{c:<w$} {:5} {:5}   {}  {}  {}   {}\n", n.nref, n.nsys, pct(e.f1), pct(e.precision), pct(e.recall), pct(g));
            }
        }
        let v = |r: &Option<PsdsResult>| r.as_ref().map_or("-".to_string(), |r| format!("{:.4}", r.psds));
        if self.psds1.is_some() || self.psds2.is_some() || self.psds1_op.is_some() || self.psds2_op.is_some() {
            s += &format!(
                "\nPSDS1 {}  PSDS2 {}  (threshold-independent)\nPSDS1 {}  PSDS2 {}  (on the operating points)\n",
                v(&self.psds1),
                v(&self.psds2),
                v(&self.psds1_op),
                v(&self.psds2_op)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_class_sets_evaluate_with_warnings() {
        // One class with reference events: PSDS2 (cttc) is skipped, PSDS1 computed, nothing fails.
        let gt = GroundTruth {
            files: vec!["a".into()],
            durations: vec![3.0],
            classes: vec!["x".into()],
            events: vec![vec![Ev { onset: 0.5, offset: 1.5, class: 0 }]],
        };
        let t = ScoreTable::new(vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], 1, vec![0.1, 0.8, 0.9, 0.2, 0.1, 0.1]).unwrap();
        let r = evaluate(&gt, &Predictions::Scores(vec![t]), &EvalOptions::default()).unwrap();
        assert!(r.psds1.is_some() && r.psds2.is_none());
        assert!(r.warnings.iter().any(|w| w.contains("PSDS2: cross triggers")), "{:?}", r.warnings);
        // The detector finds the one event with no false positive: TPR 1 from eFPR 0, PSDS1 = 1.
        assert!((r.psds1.unwrap().psds - 1.0).abs() < 1e-12);
        assert_eq!(r.event_based.unwrap().overall.f1, 1.0);
    }

    #[test]
    fn numpy_arange_thresholds() {
        let t = desed_thresholds(50);
        assert_eq!(t.len(), 50);
        assert_eq!(t[0], 0.01);
        assert_eq!(t[1], 0.01 + 0.02);
        assert!(t.windows(2).all(|w| w[1] > w[0]) && *t.last().unwrap() < 1.0);
    }

    #[test]
    fn thresholding_runs_and_median() {
        let t = ScoreTable::new(vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5], 2, vec![0.6, 0.1, 0.4, 0.9, 0.7, 0.9, 0.5, 0.2, 0.8, 0.9]).unwrap();
        // Class 0: 0.6 0.4 0.7 0.5 0.8 → frames 0, 2, 4 (0.5 is not > 0.5); class 1: 0.1 0.9 0.9 0.2 0.9.
        let ev = threshold_events(&t, 0.5, 1, MedianOn::Scores);
        let want = [(0.0, 0.5, 0), (1.0, 1.5, 0), (2.0, 2.5, 0), (0.5, 1.5, 1), (2.0, 2.5, 1)];
        assert_eq!(ev.iter().map(|e| (e.onset, e.offset, e.class)).collect::<Vec<_>>(), want);
        // A 3-frame median on the scores: class 0 → 0.6 0.6 0.5 0.7 0.8 → frames 0, 1, 3, 4.
        let ev = threshold_events(&t, 0.5, 3, MedianOn::Scores);
        assert_eq!(ev.iter().filter(|e| e.class == 0).map(|e| (e.onset, e.offset)).collect::<Vec<_>>(), vec![(0.0, 1.0), (1.5, 2.5)]);
        // On the decisions: class 0 is 1 0 1 0 1; the 3-frame majority (edges reflected) is 1 1 0 1 1.
        let ev = threshold_events(&t, 0.5, 3, MedianOn::Binary);
        assert_eq!(ev.iter().filter(|e| e.class == 0).map(|e| (e.onset, e.offset)).collect::<Vec<_>>(), vec![(0.0, 1.0), (1.5, 2.5)]);
        let ops = operating_points(&[t.clone()], &[0.5, 0.95], 1, MedianOn::Scores);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0][0], threshold_events(&t, 0.5, 1, MedianOn::Scores));
        assert!(ops[1][0].is_empty());
    }
}
