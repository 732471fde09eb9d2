//! Segment-based metrics, equal to sed_eval 0.2.1 `SegmentBasedMetrics` evaluated file by file
//! with `evaluated_length_seconds` = the file's duration:
//!
//! - Each file is cut into ⌈duration / resolution⌉ segments (DESED: 1 s). An event marks the
//!   segments ⌊onset / resolution⌋ … ⌈offset / resolution⌉ − 1 of its class active (a zero-length
//!   event on a segment boundary marks none); segments past the duration are dropped.
//! - Per segment: Ntp = classes active in both, Nref, Nsys = active classes, S = min(Nref, Nsys) −
//!   Ntp, D = max(0, Nref − Nsys), I = max(0, Nsys − Nref); overall ER = (ΣS + ΣD + ΣI)/ΣNref.
//!   Class-wise: Ntp, Nfp = Nsys − Ntp, Nfn = Nref − Ntp over that class's segments,
//!   ER = (Nfn + Nfp)/Nref. Precision is NaN without system output (sed_eval's segment metrics take
//!   no `empty_system_output_handling`; the DESED baseline does not set one).
//!
//! The DESED baseline's `segment_based_evaluation_df` passes no evaluated length, so sed_eval then
//! evaluates each file up to its last offset (reference or system) instead of its duration. F1 and
//! the error rate are the same either way unless an event ends after the file's duration (it is
//! cut here); only the true negatives (not reported) differ.

use super::{check_estimated, CountMetrics, Counts, Ev, GroundTruth};
use crate::sed::{Result, SedError};

/// Segment-based metrics with segments of `resolution` seconds.
pub fn evaluate(gt: &GroundTruth, estimated: &[Vec<Ev>], resolution: f64) -> Result<CountMetrics> {
    if !(resolution > 0.0 && resolution.is_finite()) {
        return Err(SedError::Invalid(format!("segment-based: the time resolution must be > 0, got {resolution}")));
    }
    check_estimated(gt, estimated, "segment-based")?;
    let k = gt.classes.len();
    let mut overall = Counts::default();
    let mut class_counts = vec![Counts::default(); k];
    for (i, (refs, sys)) in gt.events.iter().zip(estimated).enumerate() {
        let segments = (gt.durations[i] * 1.0 / resolution).ceil() as usize;
        let roll = |events: &[Ev]| -> Vec<bool> {
            let mut r = vec![false; segments * k];
            for e in events {
                let on = (e.onset * 1.0 / resolution).floor().max(0.0) as usize;
                let off = ((e.offset * 1.0 / resolution).ceil().max(0.0) as usize).min(segments);
                for s in on..off {
                    r[s * k + e.class] = true;
                }
            }
            r
        };
        let (a, b) = (roll(refs), roll(sys));
        for s in 0..segments {
            let (ra, sb) = (&a[s * k..(s + 1) * k], &b[s * k..(s + 1) * k]);
            let (mut tp, mut nref, mut nsys) = (0usize, 0usize, 0usize);
            for c in 0..k {
                let (x, y) = (ra[c], sb[c]);
                tp += (x && y) as usize;
                nref += x as usize;
                nsys += y as usize;
                let cc = &mut class_counts[c];
                cc.ntp += (x && y) as usize as f64;
                cc.nref += x as usize as f64;
                cc.nsys += y as usize as f64;
                cc.del += (x && !y) as usize as f64;
                cc.ins += (!x && y) as usize as f64;
            }
            overall.ntp += tp as f64;
            overall.nref += nref as f64;
            overall.nsys += nsys as f64;
            overall.subs += (nref.min(nsys) - tp) as f64;
            overall.del += nref.saturating_sub(nsys) as f64;
            overall.ins += nsys.saturating_sub(nref) as f64;
        }
    }
    Ok(CountMetrics::finish(overall, class_counts, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(onset: f64, offset: f64, class: usize) -> Ev {
        Ev { onset, offset, class }
    }

    #[test]
    fn segments_by_hand() {
        // 4 s file, 1 s segments. Ref: c0 0.5–2.0 (segments 0, 1), c1 2.2–2.4 (segment 2).
        // Sys: c1 0.9–1.1 (segments 0, 1), c0 3.0–3.0 (zero length on a boundary: none).
        let gt = GroundTruth {
            files: vec!["a".into()],
            durations: vec![4.0],
            classes: vec!["x".into(), "y".into()],
            events: vec![vec![ev(0.5, 2.0, 0), ev(2.2, 2.4, 1)]],
        };
        let m = evaluate(&gt, &[vec![ev(0.9, 1.1, 1), ev(3.0, 3.0, 0)]], 1.0).unwrap();
        let o = m.overall_counts;
        // Segments 0 and 1: ref {x}, sys {y} → S = 1 each; segment 2: ref {y} → D = 1.
        assert_eq!((o.nref, o.nsys, o.ntp, o.subs, o.del, o.ins), (3.0, 2.0, 0.0, 2.0, 1.0, 0.0));
        assert_eq!(m.overall.f1, 0.0);
        assert!((m.overall.error_rate - 3.0 / (3.0 + f64::EPSILON)).abs() < 1e-15);
        assert_eq!((m.class_counts[1].ins, m.class_counts[1].del), (2.0, 1.0));
        // Events past the duration are cut: a 2.5 s file has 3 segments.
        let gt2 = GroundTruth { durations: vec![2.5], ..gt.clone() };
        let m = evaluate(&gt2, &[vec![ev(0.0, 9.0, 0)]], 1.0).unwrap();
        assert_eq!((m.overall_counts.nsys, m.overall_counts.ntp), (3.0, 2.0));
        assert!(evaluate(&gt, &[vec![]], 0.0).is_err());
        let none = evaluate(&gt, &[vec![]], 1.0).unwrap();
        assert!(none.overall.precision.is_nan(), "no output: precision NaN as sed_eval");
    }
}
