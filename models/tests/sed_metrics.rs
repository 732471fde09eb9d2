//! The DCASE SED metrics against their reference packages on the golden sets of
//! tests/golden/sed_metrics.py (fixtures/sed_metrics/<case>/ + expected.json): event- and
//! segment-based metrics vs sed_eval 0.2.1, PSDS1/PSDS2 vs sed_scores_eval 0.0.4, the PSDS on the
//! DESED baseline's 50 operating points vs psds_eval 0.5.3. Every number within 1e-6; NaN where the
//! reference gives NaN (null in the JSON).
//!
//! The expected numbers come from (see the script for the sets):
//! ```python
//! m = sed_eval.sound_event.EventBasedMetrics(classes, t_collar=0.2, percentage_of_length=0.2,
//!                                            empty_system_output_handling="zero_score")
//! m = sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=1.0)  # evaluated_length = duration
//! sed_scores_eval.intersection_based.psds(scores, gt, durations, dtc_threshold=0.7, gtc_threshold=0.7,
//!     cttc_threshold=None, alpha_ct=0, alpha_st=1, unit_of_time="hour", max_efpr=100)
//! PSDSEval(dtc, gtc, 0.3, ground_truth=gt, metadata=durations) + 50 add_operating_point + psds(...)
//! ```

use std::path::{Path, PathBuf};

use aural_models::sed::metrics::report::{desed_thresholds, evaluate, EvalOptions, Predictions, Report};
use aural_models::sed::metrics::{io, CountMetrics};
use aural_runtime::testing::fixture_path;
use serde_json::Value;

fn case_dir(c: &str) -> PathBuf {
    fixture_path("sed_metrics").join(c)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("sed_metrics").join("expected.json")).unwrap()).unwrap()
}

fn close(what: &str, got: f64, want: &Value) {
    match want.as_f64() {
        None => assert!(got.is_nan(), "{what}: got {got}, the reference gives NaN"),
        Some(w) => assert!((got - w).abs() <= 1e-6 * w.abs().max(1.0), "{what}: got {got}, reference {w} (Δ {:e})", got - w),
    }
}

fn check_counting(what: &str, m: &CountMetrics, classes: &[String], want: &Value) {
    let o = &m.overall;
    let a = &m.macro_avg;
    for (k, v) in [
        ("f1_micro", o.f1),
        ("precision_micro", o.precision),
        ("recall_micro", o.recall),
        ("error_rate", o.error_rate),
        ("substitution_rate", o.substitution_rate),
        ("deletion_rate", o.deletion_rate),
        ("insertion_rate", o.insertion_rate),
        ("f1_macro", a.f1),
        ("precision_macro", a.precision),
        ("recall_macro", a.recall),
        ("error_rate_macro", a.error_rate),
    ] {
        close(&format!("{what}.{k}"), v, &want[k]);
    }
    let cw = want["class_wise"].as_object().unwrap();
    assert_eq!(cw.len(), classes.len(), "{what}: classes");
    for (i, c) in classes.iter().enumerate() {
        let w = &cw[c];
        let s = &m.class_wise[i];
        for (k, v) in [
            ("f1", s.f1),
            ("precision", s.precision),
            ("recall", s.recall),
            ("error_rate", s.error_rate),
            ("nref", m.class_counts[i].nref),
            ("nsys", m.class_counts[i].nsys),
        ] {
            close(&format!("{what}.class_wise.{c}.{k}"), v, &w[k]);
        }
    }
}

fn run(c: &str, scores: bool, want: &Value) -> Report {
    let d = case_dir(c);
    let reference = io::read_strong(&d.join("reference.tsv")).unwrap();
    let dur_path = d.join("durations.tsv");
    let durations = io::read_durations(&dur_path).unwrap();
    let mut o = EvalOptions { median: want["median"].as_u64().unwrap() as usize, ..Default::default() };
    if scores {
        let files: Vec<String> = durations.iter().map(|x| x.0.clone()).collect();
        let (classes, tables) = io::read_score_dir(&d.join("scores"), &files, None).unwrap();
        let (gt, _) = io::ground_truth(&reference, &durations, &dur_path, Some(&classes), &[]).unwrap();
        evaluate(&gt, &Predictions::Scores(tables), &o).unwrap()
    } else {
        o.median = 1;
        let pred = io::read_strong(&d.join("predictions.tsv")).unwrap();
        let labels: Vec<&str> = pred.events.iter().map(|e| e.label.as_str()).collect();
        let (gt, _) = io::ground_truth(&reference, &durations, &dur_path, None, &labels).unwrap();
        let ev = io::per_file(&gt, &pred).unwrap();
        evaluate(&gt, &Predictions::Events(ev), &o).unwrap()
    }
}

#[test]
fn sed_metrics_event_and_segment_based_equal_sed_eval() {
    let exp = expected();
    for c in ["a", "b", "c"] {
        let want = &exp[c];
        let r = run(c, false, want);
        let classes: Vec<String> = want["classes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(r.classes, classes, "case {c}: union of the labels, sorted");
        check_counting(&format!("{c}.event_based"), r.event_based.as_ref().unwrap(), &r.classes, &want["event_based"]);
        check_counting(&format!("{c}.segment_based"), r.segment_based.as_ref().unwrap(), &r.classes, &want["segment_based"]);
        assert!(r.psds1.is_none() && r.psds1_op.is_none(), "no PSDS from thresholded events");
    }
}

#[test]
fn sed_metrics_from_scores_equal_sed_scores_eval_and_psds_eval() {
    let exp = expected();
    let mut merged = 0;
    for c in ["a", "b", "c"] {
        let want = &exp[c];
        let r = run(c, true, want);
        check_counting(&format!("{c}.scores_event_based"), r.event_based.as_ref().unwrap(), &r.classes, &want["scores_event_based"]);
        for (k, got) in [("psds1", &r.psds1), ("psds2", &r.psds2)] {
            let got = got.as_ref().unwrap();
            close(&format!("{c}.{k}"), got.psds, &want[k]["value"]);
            let efpr = want[k]["roc_efpr"].as_array().unwrap();
            let etpr = want[k]["roc_etpr"].as_array().unwrap();
            assert_eq!(got.roc.len(), efpr.len(), "{c}.{k}: PSD-ROC points");
            for (i, (x, y)) in got.roc.iter().enumerate() {
                close(&format!("{c}.{k}.roc[{i}].efpr"), *x, &efpr[i]);
                close(&format!("{c}.{k}.roc[{i}].etpr"), *y, &etpr[i]);
            }
        }
        close(&format!("{c}.psds1_op"), r.psds1_op.as_ref().unwrap().psds, &want["psds1_op"]);
        close(&format!("{c}.psds2_op"), r.psds2_op.as_ref().unwrap().psds, &want["psds2_op"]);
        merged += want["merged_reference_events"].as_u64().unwrap();
        assert_eq!(r.warnings.iter().any(|w| w.contains("merged")), want["merged_reference_events"].as_u64().unwrap() > 0, "{c}: {:?}", r.warnings);
    }
    assert!(merged > 0, "the sets hold overlapping reference events of one class");
    // The 50 operating points are numpy's floats, bit for bit (a score of 0.03 is not above 0.01 + 0.02).
    let want: Vec<f64> = exp["thresholds"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(desed_thresholds(50), want);
}

#[test]
fn sed_metrics_bad_inputs_name_the_file() {
    let d = case_dir("a");
    let durations = io::read_durations(&d.join("durations.tsv")).unwrap();
    let files: Vec<String> = durations.iter().map(|x| x.0.clone()).collect();
    // A score dir checked against fewer files: an extra table is an error naming it.
    let e = io::read_score_dir(&d.join("scores"), &files[1..], None).unwrap_err().to_string();
    assert!(e.contains(&format!("'{}.tsv' is for a file that is not in the durations", files[0])), "{e}");
    let missing = Path::new("/nonexistent/ref.tsv");
    assert!(io::read_strong(missing).unwrap_err().to_string().contains("/nonexistent/ref.tsv"));
}
