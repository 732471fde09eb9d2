//! PSDS on operating points, equal to psds_eval 0.5.3: `PSDSEval(dtc, gtc, cttc, ground_truth,
//! metadata)`, one `add_operating_point(detections)` per operating point, then `psds(alpha_ct,
//! alpha_st, max_efpr)` — what the DESED 2022 baseline reports as `psds*_operating_points` (its 50
//! operating points are the events of the score tables thresholded at 0.01, 0.03, …, 0.99).
//!
//! Per operating point, file and class, with the reference and detection intervals of the class
//! sorted by onset (sorted sweeps, no all-pairs tables):
//!
//! - A detection d and a reference event g *intersect* when d.onset < g.offset and g.onset <
//!   d.offset (strict: touching events do not); intersection = min(offsets) − max(onsets),
//!   precision = intersection / (d.offset − d.onset), coverage = intersection / (g.offset − g.onset).
//! - DTC: d passes when it intersects at least one reference event of its class and the sum of its
//!   precisions over them is ≥ dtc. GTC: g is a true positive when at least one DTC-passing
//!   detection of its class intersects it and the sum of their coverages is ≥ gtc. TPR = true
//!   positives / reference events of the class.
//! - False positives: detections of the class that fail the DTC and intersect the file's 'world'
//!   event [0, duration] (psds_eval 0.5.3 injects one per file). A detection lying wholly outside
//!   [0, duration], or in a file of duration 0, is therefore neither TP nor FP; a detection that
//!   passes the DTC is never an FP, even when its reference event fails the GTC. FPR = FP ·
//!   `unit_s` / (sum of the durations).
//! - Cross triggers (only computed when alpha_ct > 0): a DTC-failing detection of class c counts
//!   once for class k ≠ c when its precisions over the reference events of k sum to ≥ cttc; CTR(c,
//!   k) = count · `unit_s` / (total reference duration of k). eFPR(c) = FPR(c) + alpha_ct ·
//!   mean over k ≠ c of CTR(c, k).
//! - Sums of precisions, of coverages and of reference durations per class are pandas' compensated
//!   (Kahan) group sums in psds_eval's row order (files by name, events by onset), so detections
//!   exactly on the dtc/gtc/cttc boundaries fall on the same side as in psds_eval; the total
//!   duration is numpy's pairwise sum over the files sorted by name.
//!
//! PSD-ROC: every operating point gives each class a point (eFPR, TPR), plus (0, 0). The common
//! x axis is the sorted union of all eFPR values; class c's curve at x is the largest TPR of its
//! points with eFPR ≤ x (psds_eval's `step_curve`, `en_interp` false). eTPR = mean − alpha_st · std
//! over classes (population std, ddof 0), NaN → 0, negatives → 0. PSDS = Σ (x_{i+1} − x_i) · eTPR_i
//! over the points up to max_efpr (max_efpr inserted with the eTPR of the point before it when it
//! is not on the axis; numpy's pairwise sum), divided by max_efpr. Means, stds and sums follow
//! numpy's summation order (classes sorted by name), so the numbers agree to the last bits.
//!
//! psds_eval 0.5.3's edge cases, matched:
//!
//! - The classes are those with at least one reference event of positive length (psds_eval builds
//!   its class list from the ground truth; the DESED baseline passes no `class_names`): a class
//!   without reference events takes no part in the PSD-ROC, its detections count nowhere, and its
//!   entry of [`PsdsResult::class_rocs`] is empty. Zero-length events (reference and detections)
//!   are dropped.
//! - With a single class the mean cross-trigger rate over the other classes is NaN (an empty
//!   nanmean), so psds_eval's eFPR is NaN at every operating point (whatever alpha_ct, even 0): its
//!   curve is (0, 0), (NaN, 0) and its PSDS 0. This function returns the same.
//! - Overlapping events of one class (onset < other's offset and other's onset < offset, not
//!   identical) are refused, in the reference as in the detections (psds_eval raises "intersecting
//!   events/labels for the same class"); merge the reference first with [`GroundTruth::merged`].
//!   Identical duplicates are accepted and count twice (two reference events, both covered by the
//!   same detections; two detections).
//! - An operating point whose detections (zero-length ones dropped) are, as a multiset, those of
//!   an earlier one is skipped (`_operating_point_id`). Empty operating points are valid (one
//!   point at (0, 0) per class); all empty ones after the first are such duplicates. Skipping
//!   changes no number: identical operating points give identical ROC points.
//! - `cttc: None` means no cross triggers; alpha_ct must then be 0, and the numbers equal psds_eval's
//!   with any cttc and alpha_ct 0 (which does not use the cross triggers either).
//!
//! Verified against psds_eval 0.5.3 (numpy 2.3, pandas 2.3) on random sets: thresholded smooth
//! score tables (50 operating points), files without events, classes never present or never
//! predicted, grid-aligned boundaries, empty and duplicate operating points, both DCASE scenarios
//! and other parameters (the ignored test `matches_psds_eval_dump` below).

use rayon::prelude::*;

use super::{Ev, GroundTruth, PsdsParams, PsdsResult};
use crate::sed::{Result, SedError};

/// `operating_points[k][i]`: the detected events of file `gt.files[i]` at operating point k (k in the order they were added).
pub fn psds_operating_points(gt: &GroundTruth, operating_points: &[Vec<Vec<Ev>>], p: &PsdsParams) -> Result<PsdsResult> {
    check_params(p)?;
    let reference = Reference::new(gt)?;
    if reference.order.is_empty() {
        return Err(SedError::Invalid("psds: the reference has no event of positive length".into()));
    }
    if operating_points.is_empty() {
        return Err(SedError::Invalid("psds: no operating points".into()));
    }
    let ops: Vec<OpDets> =
        operating_points.par_iter().enumerate().map(|(k, op)| OpDets::new(k, op, gt)).collect::<Vec<Result<OpDets>>>().into_iter().collect::<Result<_>>()?;

    // psds_eval's `_operating_point_id`: skip an operating point equal to an earlier one.
    let mut kept: Vec<usize> = Vec::with_capacity(ops.len());
    for k in 0..ops.len() {
        if !kept.iter().any(|&j| ops[j].hash == ops[k].hash && ops[j].same_as(&ops[k])) {
            kept.push(k);
        }
    }

    let cttc = if p.alpha_ct > 0.0 { p.cttc } else { None };
    let counts: Vec<Counts> = kept.par_iter().map(|&k| reference.count(&ops[k], p, cttc)).collect();
    Ok(reference.curves(&counts, p, cttc.is_some()))
}

fn check_params(p: &PsdsParams) -> Result<()> {
    let unit = |name: &str, v: f64| {
        if (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(SedError::Invalid(format!("psds: {name} must be between 0 and 1, got {v}")))
        }
    };
    unit("dtc", p.dtc)?;
    unit("gtc", p.gtc)?;
    if let Some(c) = p.cttc {
        unit("cttc", c)?;
    }
    unit("alpha_ct", p.alpha_ct)?;
    if p.cttc.is_none() && p.alpha_ct != 0.0 {
        return Err(SedError::Invalid(format!("psds: alpha_ct = {} needs a cttc (cross triggers); give cttc or set alpha_ct to 0", p.alpha_ct)));
    }
    if !(p.alpha_st >= 0.0 && p.alpha_st.is_finite()) {
        return Err(SedError::Invalid(format!("psds: alpha_st must be finite and ≥ 0, got {}", p.alpha_st)));
    }
    if !(p.max_efpr > 0.0 && p.max_efpr.is_finite()) {
        return Err(SedError::Invalid(format!("psds: max_efpr must be finite and > 0, got {}", p.max_efpr)));
    }
    if !(p.unit_s > 0.0 && p.unit_s.is_finite()) {
        return Err(SedError::Invalid(format!("psds: unit_s must be finite and > 0, got {}", p.unit_s)));
    }
    Ok(())
}

/// pandas' compensated group sum (`group_sum`).
#[derive(Default, Clone, Copy)]
struct Kahan {
    sum: f64,
    comp: f64,
}

impl Kahan {
    fn add(&mut self, v: f64) {
        let y = v - self.comp;
        let t = self.sum + y;
        self.comp = t - self.sum - y;
        if self.comp.is_nan() {
            self.comp = 0.0;
        }
        self.sum = t;
    }
}

/// numpy's pairwise summation (`np.sum` of a contiguous float64 array).
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// One event of positive length of a file (reference or detection).
#[derive(Debug, Clone, Copy)]
struct Iv {
    class: usize,
    on: f64,
    off: f64,
}

/// Sorts one file's events by (class, onset, offset) and refuses overlapping non-identical events
/// of one class (psds_eval's table validation, on the events before zero-length ones are dropped).
fn sort_and_check(evs: &mut [Iv], what: &dyn Fn() -> String, classes: &[String]) -> Result<()> {
    evs.sort_by(|a, b| a.class.cmp(&b.class).then(a.on.total_cmp(&b.on)).then(a.off.total_cmp(&b.off)));
    // Sorted by onset, two distinct events i < j intersect iff offset_i > onset_j.
    let mut i = 0;
    while i < evs.len() {
        let c = evs[i].class;
        let mut last: Option<Iv> = None; // the event with the latest offset before the current run of identical events
        while i < evs.len() && evs[i].class == c {
            let e = evs[i];
            if let Some(l) = last {
                if l.off > e.on {
                    return Err(SedError::Invalid(format!(
                        "psds: {}: overlapping events of class '{}' ({}–{} s and {}–{} s); psds_eval refuses them (merge the reference with GroundTruth::merged)",
                        what(),
                        classes[c],
                        l.on,
                        l.off,
                        e.on,
                        e.off
                    )));
                }
            }
            let mut j = i + 1;
            while j < evs.len() && evs[j].class == c && evs[j].on.to_bits() == e.on.to_bits() && evs[j].off.to_bits() == e.off.to_bits() {
                j += 1;
            }
            if last.is_none_or(|l| e.off > l.off) {
                last = Some(e);
            }
            i = j;
        }
    }
    Ok(())
}

/// Validates and copies one file's events.
fn file_events(evs: &[Ev], n_classes: usize, what: &dyn Fn() -> String, classes: &[String]) -> Result<Vec<Iv>> {
    let mut out = Vec::with_capacity(evs.len());
    for (j, e) in evs.iter().enumerate() {
        if !e.onset.is_finite() || !e.offset.is_finite() {
            return Err(SedError::Invalid(format!("psds: {}: event {j} has onset {} and offset {} (must be finite)", what(), e.onset, e.offset)));
        }
        if e.offset < e.onset {
            return Err(SedError::Invalid(format!("psds: {}: event {j} has offset {} < onset {}", what(), e.offset, e.onset)));
        }
        if e.class >= n_classes {
            return Err(SedError::Invalid(format!("psds: {}: event {j} has class {} but there are {n_classes} classes", what(), e.class)));
        }
        out.push(Iv { class: e.class, on: e.onset, off: e.offset });
    }
    sort_and_check(&mut out, what, classes)?;
    out.retain(|e| e.off > e.on);
    Ok(out)
}

/// The events of `evs` (sorted by onset, non-overlapping but for identical duplicates, so with
/// non-decreasing offsets) that intersect (on, off): a contiguous range.
fn intersecting(evs: &[Iv], on: f64, off: f64) -> std::ops::Range<usize> {
    let lo = evs.partition_point(|g| g.off <= on);
    let hi = evs.partition_point(|g| g.on < off).max(lo);
    lo..hi
}

/// The detections of one operating point: per file sorted by (class, onset, offset), zero-length
/// ones dropped.
struct OpDets {
    evs: Vec<Iv>,
    /// File i's detections: `evs[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    hash: u64,
}

impl OpDets {
    fn new(k: usize, op: &[Vec<Ev>], gt: &GroundTruth) -> Result<OpDets> {
        let n_files = gt.files.len();
        if op.len() != n_files {
            return Err(SedError::Invalid(format!("psds: operating point {k} has detections for {} files, the reference has {n_files}", op.len())));
        }
        let mut evs = Vec::with_capacity(op.iter().map(Vec::len).sum());
        let mut starts = Vec::with_capacity(n_files + 1);
        starts.push(0);
        for (i, f) in op.iter().enumerate() {
            let what = || format!("operating point {k}, file '{}'", gt.files[i]);
            evs.extend(file_events(f, gt.classes.len(), &what, &gt.classes)?);
            starts.push(evs.len());
        }
        // FNV-1a over the canonical form (only to find equal operating points quickly).
        let mut hash = 0xcbf29ce484222325u64;
        let mut mix = |v: u64| {
            hash ^= v;
            hash = hash.wrapping_mul(0x100000001b3);
        };
        for (i, w) in starts.windows(2).enumerate() {
            if w[1] > w[0] {
                mix(i as u64);
                mix((w[1] - w[0]) as u64);
            }
        }
        for e in &evs {
            mix(e.class as u64);
            mix(e.on.to_bits());
            mix(e.off.to_bits());
        }
        Ok(OpDets { evs, starts, hash })
    }

    fn file(&self, i: usize) -> &[Iv] {
        &self.evs[self.starts[i]..self.starts[i + 1]]
    }

    fn same_as(&self, o: &OpDets) -> bool {
        self.starts == o.starts
            && self.evs.len() == o.evs.len()
            && self.evs.iter().zip(&o.evs).all(|(a, b)| a.class == b.class && a.on.to_bits() == b.on.to_bits() && a.off.to_bits() == b.off.to_bits())
    }
}

/// One file of the reference.
struct RefFile {
    duration: f64,
    /// Events of positive length sorted by (class, onset, offset); class c's are
    /// `evs[starts[c]..starts[c + 1]]`.
    evs: Vec<Iv>,
    starts: Vec<usize>,
    /// The classes with events in this file.
    present: Vec<usize>,
}

impl RefFile {
    fn class(&self, c: usize) -> &[Iv] {
        &self.evs[self.starts[c]..self.starts[c + 1]]
    }
}

/// The reference, prepared once for all operating points.
struct Reference {
    n_classes: usize,
    /// The classes with at least one reference event of positive length, sorted by name.
    order: Vec<usize>,
    present: Vec<bool>,
    /// Reference events per class.
    n_events: Vec<usize>,
    /// Total reference duration per class (seconds).
    class_duration: Vec<f64>,
    /// Sum of the positive file durations (seconds).
    total_duration: f64,
    files: Vec<RefFile>,
}

/// TP / FP / cross-trigger counts of one operating point.
struct Counts {
    tp: Vec<u64>,
    fp: Vec<u64>,
    /// `ct[c · n + k]`: detections of c that cross-trigger k (empty when not computed).
    ct: Vec<u64>,
}

impl Counts {
    fn new(n: usize, ct: bool) -> Counts {
        Counts { tp: vec![0; n], fp: vec![0; n], ct: vec![0; if ct { n * n } else { 0 }] }
    }

    fn merge(mut self, o: Counts) -> Counts {
        for (a, b) in self.tp.iter_mut().zip(o.tp).chain(self.fp.iter_mut().zip(o.fp)).chain(self.ct.iter_mut().zip(o.ct)) {
            *a += b;
        }
        self
    }
}

impl Reference {
    fn new(gt: &GroundTruth) -> Result<Reference> {
        let n_files = gt.files.len();
        let n = gt.classes.len();
        if gt.durations.len() != n_files || gt.events.len() != n_files {
            return Err(SedError::Invalid(format!(
                "psds: the reference has {n_files} files, {} durations and {} event lists",
                gt.durations.len(),
                gt.events.len()
            )));
        }
        let mut names: Vec<usize> = (0..n_files).collect();
        names.sort_by(|&a, &b| gt.files[a].cmp(&gt.files[b]));
        if let Some(w) = names.windows(2).find(|w| gt.files[w[0]] == gt.files[w[1]]) {
            return Err(SedError::Invalid(format!("psds: file '{}' appears twice in the reference", gt.files[w[0]])));
        }
        let mut by_name: Vec<usize> = (0..n).collect();
        by_name.sort_by(|&a, &b| gt.classes[a].cmp(&gt.classes[b]));
        if let Some(w) = by_name.windows(2).find(|w| gt.classes[w[0]] == gt.classes[w[1]]) {
            return Err(SedError::Invalid(format!("psds: class '{}' appears twice in the class list", gt.classes[w[0]])));
        }
        let mut files = Vec::with_capacity(n_files);
        for i in 0..n_files {
            let d = gt.durations[i];
            if !(d.is_finite() && d >= 0.0) {
                return Err(SedError::Invalid(format!("psds: file '{}' has duration {d}", gt.files[i])));
            }
            let what = || format!("reference, file '{}'", gt.files[i]);
            let evs = file_events(&gt.events[i], n, &what, &gt.classes)?;
            let mut starts = vec![0; n + 1];
            for e in &evs {
                starts[e.class + 1] += 1;
            }
            for c in 0..n {
                starts[c + 1] += starts[c];
            }
            let present = (0..n).filter(|&c| starts[c + 1] > starts[c]).collect();
            files.push(RefFile { duration: d, evs, starts, present });
        }
        // psds_eval's sums run over its table sorted by (filename, onset).
        let mut n_events = vec![0; n];
        let mut class_duration = vec![Kahan::default(); n];
        for &i in &names {
            for e in &files[i].evs {
                n_events[e.class] += 1;
                class_duration[e.class].add(e.off - e.on);
            }
        }
        // The total is a plain Series.sum (numpy's pairwise sum), the class durations a groupby sum.
        let positive: Vec<f64> = names.iter().map(|&i| files[i].duration).filter(|&d| d > 0.0).collect();
        let total = pairwise_sum(&positive);
        if total <= 0.0 {
            return Err(SedError::Invalid("psds: the files' durations sum to 0".into()));
        }
        let present: Vec<bool> = n_events.iter().map(|&k| k > 0).collect();
        let order = by_name.into_iter().filter(|&c| present[c]).collect();
        Ok(Reference { n_classes: n, order, present, n_events, class_duration: class_duration.iter().map(|k| k.sum).collect(), total_duration: total, files })
    }

    /// Counts of one operating point (cross triggers when `cttc` is given).
    fn count(&self, op: &OpDets, p: &PsdsParams, cttc: Option<f64>) -> Counts {
        let n = self.n_classes;
        (0..self.files.len())
            .into_par_iter()
            .fold(
                || (Counts::new(n, cttc.is_some()), Vec::new()),
                |(mut acc, mut pass), i| {
                    self.count_file(&self.files[i], op.file(i), p, cttc, &mut acc, &mut pass);
                    (acc, pass)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(|| Counts::new(n, cttc.is_some()), Counts::merge)
    }

    fn count_file(&self, f: &RefFile, dets: &[Iv], p: &PsdsParams, cttc: Option<f64>, acc: &mut Counts, pass: &mut Vec<bool>) {
        let n = self.n_classes;
        let mut s = 0;
        while s < dets.len() {
            let c = dets[s].class;
            let e = s + dets[s..].iter().position(|d| d.class != c).unwrap_or(dets.len() - s);
            let group = &dets[s..e];
            s = e;
            if !self.present[c] {
                continue;
            }
            let refs = f.class(c);
            pass.clear();
            for d in group {
                let len = d.off - d.on;
                let r = intersecting(refs, d.on, d.off);
                let ok = !r.is_empty() && {
                    let mut sum = Kahan::default();
                    for g in &refs[r] {
                        sum.add((d.off.min(g.off) - d.on.max(g.on)) / len);
                    }
                    sum.sum >= p.dtc
                };
                pass.push(ok);
                if ok {
                    continue;
                }
                if d.on < f.duration && d.off > 0.0 {
                    acc.fp[c] += 1;
                }
                if let Some(cttc) = cttc {
                    for &k in f.present.iter().filter(|&&k| k != c) {
                        let other = f.class(k);
                        let r = intersecting(other, d.on, d.off);
                        if r.is_empty() {
                            continue;
                        }
                        let mut sum = Kahan::default();
                        for g in &other[r] {
                            sum.add((d.off.min(g.off) - d.on.max(g.on)) / len);
                        }
                        if sum.sum >= cttc {
                            acc.ct[c * n + k] += 1;
                        }
                    }
                }
            }
            for g in refs {
                let len = g.off - g.on;
                let r = intersecting(group, g.on, g.off);
                let mut sum = Kahan::default();
                let mut any = false;
                for (d, _) in group[r.clone()].iter().zip(&pass[r]).filter(|&(_, &ok)| ok) {
                    any = true;
                    sum.add((d.off.min(g.off) - d.on.max(g.on)) / len);
                }
                if any && sum.sum >= p.gtc {
                    acc.tp[c] += 1;
                }
            }
        }
    }

    /// psds_eval's `psd_roc_curves` (step curves), `_effective_tp_ratio` and `_auc`.
    fn curves(&self, counts: &[Counts], p: &PsdsParams, with_ct: bool) -> PsdsResult {
        let m = self.order.len();
        let n = self.n_classes;
        // (eFPR, TPR) per class (in name order), one per operating point, then (0, 0).
        let points: Vec<Vec<(f64, f64)>> = self
            .order
            .iter()
            .map(|&c| {
                let mut pts: Vec<(f64, f64)> = counts
                    .iter()
                    .map(|k| {
                        let tpr = k.tp[c] as f64 / self.n_events[c] as f64;
                        let fpr = k.fp[c] as f64 * p.unit_s / self.total_duration;
                        // numpy's nanmean over the other classes (NaN when there are none).
                        let ct_mean = if m < 2 {
                            f64::NAN
                        } else if with_ct {
                            let sum = self.order.iter().filter(|&&o| o != c).fold(0.0, |s, &o| s + k.ct[c * n + o] as f64 * p.unit_s / self.class_duration[o]);
                            sum / (m - 1) as f64
                        } else {
                            0.0
                        };
                        (fpr + p.alpha_ct * ct_mean, tpr)
                    })
                    .collect();
                pts.push((0.0, 0.0));
                pts
            })
            .collect();
        let mut xs: Vec<f64> = points.iter().flatten().map(|pt| pt.0).filter(|x| !x.is_nan()).collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        xs.dedup();
        if points.iter().flatten().any(|pt| pt.0.is_nan()) {
            xs.push(f64::NAN);
        }
        let ys: Vec<Vec<f64>> = points
            .into_iter()
            .map(|mut pts| {
                pts.retain(|pt| !pt.0.is_nan());
                pts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
                let (mut j, mut best) = (0, 0.0f64);
                xs.iter()
                    .map(|&x| {
                        while j < pts.len() && pts[j].0 <= x {
                            best = best.max(pts[j].1);
                            j += 1;
                        }
                        best
                    })
                    .collect()
            })
            .collect();
        let etpr: Vec<f64> = (0..xs.len())
            .map(|t| {
                let mean = ys.iter().fold(0.0, |s, y| s + y[t]) / m as f64;
                let var = ys.iter().fold(0.0, |s, y| s + (y[t] - mean) * (y[t] - mean)) / m as f64;
                let e = mean - p.alpha_st * var.sqrt();
                if e.is_nan() || e < 0.0 {
                    0.0
                } else {
                    e
                }
            })
            .collect();
        let psds = auc(&xs, &etpr, p.max_efpr) / p.max_efpr;
        let mut class_rocs = vec![Vec::new(); n];
        for (&c, y) in self.order.iter().zip(&ys) {
            class_rocs[c] = xs.iter().copied().zip(y.iter().copied()).collect();
        }
        PsdsResult { psds, roc: xs.into_iter().zip(etpr).collect(), class_rocs }
    }
}

/// psds_eval's `_auc` (rectangles, the y of the left point) up to `max_x` (> 0); `x` ascending with
/// at most one NaN, at the end.
fn auc(x: &[f64], y: &[f64], max_x: f64) -> f64 {
    let mut x = x.to_vec();
    let mut y = y.to_vec();
    if !x.contains(&max_x) {
        let i = x.partition_point(|&v| v < max_x);
        let yi = if i == 0 { *y.last().unwrap() } else { y[i - 1] };
        x.insert(i, max_x);
        y.insert(i, yi);
    }
    let valid = x.partition_point(|&v| v <= max_x);
    let areas: Vec<f64> = (0..valid.saturating_sub(1)).map(|i| (x[i + 1] - x[i]) * y[i]).collect();
    pairwise_sum(&areas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(onset: f64, offset: f64, class: usize) -> Ev {
        Ev { onset, offset, class }
    }

    fn gt(files: &[(&str, f64, Vec<Ev>)], classes: &[&str]) -> GroundTruth {
        GroundTruth {
            files: files.iter().map(|f| f.0.to_string()).collect(),
            durations: files.iter().map(|f| f.1).collect(),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            events: files.iter().map(|f| f.2.clone()).collect(),
        }
    }

    fn params(dtc: f64, gtc: f64, cttc: Option<f64>, alpha_ct: f64, alpha_st: f64, max_efpr: f64) -> PsdsParams {
        PsdsParams { dtc, gtc, cttc, alpha_ct, alpha_st, max_efpr, unit_s: 3600.0 }
    }

    fn err(r: Result<PsdsResult>) -> String {
        match r {
            Err(SedError::Invalid(m)) => m,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn two_classes_by_hand() {
        // One hour of audio, so FPR = number of false positives.
        let g = gt(&[("a", 3600.0, vec![ev(0.0, 2.0, 0), ev(10.0, 12.0, 1)])], &["x", "y"]);
        let op0 = vec![vec![ev(0.0, 2.0, 0)]];
        let op1 = vec![vec![ev(0.0, 2.0, 0), ev(20.0, 21.0, 0), ev(10.0, 12.0, 1), ev(30.0, 31.0, 1)]];
        let ops = vec![op0, op1];
        // Class x: (0, 1), (1, 1); class y: (0, 0), (1, 1); axis 0, 1. Mean 0.5, 1; std 0.5, 0.
        let r = psds_operating_points(&g, &ops, &params(0.7, 0.7, None, 0.0, 0.0, 2.0)).unwrap();
        assert_eq!(r.roc, vec![(0.0, 0.5), (1.0, 1.0)]);
        assert_eq!(r.class_rocs, vec![vec![(0.0, 1.0), (1.0, 1.0)], vec![(0.0, 0.0), (1.0, 1.0)]]);
        assert_eq!(r.psds, (0.5 * 1.0 + 1.0 * 1.0) / 2.0);
        let r = psds_operating_points(&g, &ops, &params(0.7, 0.7, None, 0.0, 1.0, 2.0)).unwrap();
        assert_eq!(r.roc, vec![(0.0, 0.0), (1.0, 1.0)]);
        assert_eq!(r.psds, 0.5);
        // max_efpr on the axis: only [0, 1] counts.
        let r = psds_operating_points(&g, &ops, &params(0.7, 0.7, None, 0.0, 0.0, 1.0)).unwrap();
        assert_eq!(r.psds, 0.5);
        // psds_eval with a cttc and alpha_ct 0 gives the same numbers.
        let with_ct = psds_operating_points(&g, &ops, &params(0.7, 0.7, Some(0.3), 0.0, 0.0, 2.0)).unwrap();
        assert_eq!(with_ct, psds_operating_points(&g, &ops, &params(0.7, 0.7, None, 0.0, 0.0, 2.0)).unwrap());
        // Two hours of audio halve the FPRs.
        let mut g2 = g.clone();
        g2.durations[0] = 7200.0;
        let r = psds_operating_points(&g2, &ops, &params(0.7, 0.7, None, 0.0, 0.0, 2.0)).unwrap();
        assert_eq!(r.roc, vec![(0.0, 0.5), (0.5, 1.0)]);
        assert_eq!(r.psds, (0.5 * 0.5 + 1.0 * 1.5) / 2.0);
    }

    #[test]
    fn dtc_and_gtc_boundaries_are_inclusive() {
        let g = gt(&[("a", 3600.0, vec![ev(0.5, 1.5, 0), ev(5.0, 6.0, 1)])], &["x", "y"]);
        // Precision 0.5 and coverage 0.5.
        let ops = vec![vec![vec![ev(0.0, 1.0, 0)]]];
        let tpr_x = |dtc: f64, gtc: f64| psds_operating_points(&g, &ops, &params(dtc, gtc, None, 0.0, 0.0, 1.0)).unwrap().class_rocs[0].clone();
        assert_eq!(tpr_x(0.5, 0.5), vec![(0.0, 1.0)]);
        // Failing the DTC: a false positive.
        assert_eq!(tpr_x(0.5000001, 0.5), vec![(0.0, 0.0), (1.0, 0.0)]);
        // Passing the DTC but not the GTC: neither TP nor FP.
        assert_eq!(tpr_x(0.5, 0.5000001), vec![(0.0, 0.0)]);
        // Two detections covering a quarter each sum to the GTC.
        let ops2 = vec![vec![vec![ev(0.5, 0.75, 0), ev(1.25, 1.5, 0)]]];
        let r = psds_operating_points(&g, &ops2, &params(1.0, 0.5, None, 0.0, 0.0, 1.0)).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 1.0)]);
        let r = psds_operating_points(&g, &ops2, &params(1.0, 0.51, None, 0.0, 0.0, 1.0)).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 0.0)]);
        // Touching is not intersecting: a detection right after the event is a false positive.
        let ops3 = vec![vec![vec![ev(1.5, 2.0, 0)]]];
        let r = psds_operating_points(&g, &ops3, &params(0.0, 0.0, None, 0.0, 0.0, 1.0)).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 0.0), (1.0, 0.0)]);
    }

    #[test]
    fn cross_triggers_and_world() {
        let g = gt(&[("a", 3600.0, vec![ev(0.0, 10.0, 0), ev(20.0, 30.0, 1), ev(40.0, 50.0, 2)])], &["x", "y", "z"]);
        // x fires inside y (FP of x and cross trigger x → y), and once after the end of the file
        // (neither TP nor FP); y detects its event.
        let ops = vec![vec![vec![ev(20.0, 25.0, 0), ev(3600.0, 3601.0, 0), ev(20.0, 30.0, 1)]]];
        let r = psds_operating_points(&g, &ops, &params(0.1, 0.1, Some(0.3), 0.5, 0.0, 100.0)).unwrap();
        // eFPR of x = 1 + 0.5 · (3600 / 10 + 0) / 2 = 91.
        assert_eq!(r.class_rocs[0], vec![(0.0, 0.0), (91.0, 0.0)]);
        assert_eq!(r.class_rocs[1], vec![(0.0, 1.0), (91.0, 1.0)]);
        assert_eq!(r.class_rocs[2], vec![(0.0, 0.0), (91.0, 0.0)]);
        assert!((r.psds - 1.0 / 3.0).abs() < 1e-15);
        // cttc 1: the detection lies wholly in y (precision 1).
        let r = psds_operating_points(&g, &ops, &params(0.1, 0.1, Some(1.0), 0.5, 0.0, 100.0)).unwrap();
        assert_eq!(r.class_rocs[0][1].0, 91.0);
        let ops2 = vec![vec![vec![ev(15.0, 25.0, 0), ev(20.0, 30.0, 1)]]];
        let r = psds_operating_points(&g, &ops2, &params(0.1, 0.1, Some(0.5), 0.5, 0.0, 100.0)).unwrap();
        assert_eq!(r.class_rocs[0][1].0, 91.0);
        let r = psds_operating_points(&g, &ops2, &params(0.1, 0.1, Some(0.51), 0.5, 0.0, 100.0)).unwrap();
        assert_eq!(r.class_rocs[0][1].0, 1.0);
    }

    #[test]
    fn absent_classes_single_class_duplicates_and_empty_points() {
        let g = gt(&[("a", 3600.0, vec![ev(0.0, 2.0, 0), ev(10.0, 12.0, 2)]), ("b", 0.0, vec![])], &["x", "never", "y"]);
        let op = vec![vec![ev(0.0, 2.0, 0), ev(20.0, 21.0, 1)], vec![ev(0.0, 1.0, 2)]];
        let empty = vec![vec![], vec![]];
        let base = psds_operating_points(&g, std::slice::from_ref(&op), &PsdsParams::SCENARIO1).unwrap();
        // The class without reference events counts nowhere; a detection in a file of duration 0 is no FP.
        assert_eq!(base.roc, vec![(0.0, 0.0)]);
        assert_eq!(base.class_rocs, vec![vec![(0.0, 1.0)], vec![], vec![(0.0, 0.0)]]);
        let shuffled = vec![vec![ev(20.0, 21.0, 1), ev(0.0, 2.0, 0)], vec![ev(0.0, 1.0, 2), ev(3.0, 3.0, 2)]];
        let more = psds_operating_points(&g, &[empty.clone(), op.clone(), empty.clone(), shuffled], &PsdsParams::SCENARIO1).unwrap();
        assert_eq!(more, base);
        // A single class: eFPR NaN at every operating point (psds_eval 0.5.3), PSDS 0.
        let g1 = gt(&[("a", 3600.0, vec![ev(0.0, 2.0, 0)])], &["x"]);
        let r = psds_operating_points(&g1, &[vec![vec![ev(0.0, 2.0, 0)]]], &PsdsParams::SCENARIO1).unwrap();
        assert_eq!(r.psds, 0.0);
        assert_eq!(r.roc.len(), 2);
        assert_eq!(r.roc[0], (0.0, 0.0));
        assert!(r.roc[1].0.is_nan() && r.roc[1].1 == 0.0);
        // Identical reference events count twice: one detection covers both.
        let gd = gt(&[("a", 3600.0, vec![ev(0.0, 2.0, 0), ev(0.0, 2.0, 0), ev(2.0, 3.0, 0), ev(5.0, 6.0, 1)])], &["x", "y"]);
        let r = psds_operating_points(&gd, &[vec![vec![ev(0.0, 2.0, 0)]]], &params(0.7, 0.7, None, 0.0, 0.0, 100.0)).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 2.0 / 3.0)]);
    }

    #[test]
    fn errors() {
        let g = gt(&[("a", 10.0, vec![ev(0.0, 2.0, 0), ev(3.0, 4.0, 1)]), ("b", 10.0, vec![])], &["x", "y"]);
        let ok = vec![vec![ev(0.0, 1.0, 0)], vec![]];
        let p = PsdsParams::SCENARIO1;
        assert!(psds_operating_points(&g, std::slice::from_ref(&ok), &p).is_ok());
        assert!(err(psds_operating_points(&g, &[ok.clone(), vec![vec![]]], &p)).contains("operating point 1 has detections for 1 files"));
        let m = err(psds_operating_points(&g, &[vec![vec![], vec![ev(2.0, 1.0, 0)]]], &p));
        assert!(m.contains("'b'") && m.contains("offset 1 < onset 2"), "{m}");
        let m = err(psds_operating_points(&g, &[vec![vec![], vec![ev(1.0, 2.0, 2)]]], &p));
        assert!(m.contains("'b'") && m.contains("class 2"), "{m}");
        let m = err(psds_operating_points(&g, &[vec![vec![ev(1.0, 3.0, 1), ev(0.0, 1.5, 1)], vec![]]], &p));
        assert!(m.contains("'a'") && m.contains("overlapping") && m.contains("'y'"), "{m}");
        let m = err(psds_operating_points(&g, &[vec![vec![ev(f64::NAN, 3.0, 1)], vec![]]], &p));
        assert!(m.contains("finite"), "{m}");
        let m = err(psds_operating_points(&g, std::slice::from_ref(&ok), &params(0.7, 0.7, None, 0.5, 1.0, 100.0)));
        assert!(m.contains("alpha_ct") && m.contains("cttc"), "{m}");
        assert!(err(psds_operating_points(&g, std::slice::from_ref(&ok), &params(1.5, 0.7, None, 0.0, 1.0, 100.0))).contains("dtc"));
        assert!(err(psds_operating_points(&g, std::slice::from_ref(&ok), &params(0.7, 0.7, None, 0.0, 1.0, 0.0))).contains("max_efpr"));
        assert!(err(psds_operating_points(&g, &[], &p)).contains("no operating points"));
        let mut over = g.clone();
        over.events[0].push(ev(1.0, 2.5, 0));
        let m = err(psds_operating_points(&over, std::slice::from_ref(&ok), &p));
        assert!(m.contains("reference") && m.contains("'a'") && m.contains("overlapping"), "{m}");
        // The merged reference is accepted.
        assert!(psds_operating_points(&over.merged().0, std::slice::from_ref(&ok), &p).is_ok());
        // A zero-length event strictly inside another one of its class overlaps it (psds_eval).
        let mut zero_in = g.clone();
        zero_in.events[0].push(ev(1.0, 1.0, 0));
        assert!(err(psds_operating_points(&zero_in, std::slice::from_ref(&ok), &p)).contains("overlapping"));
        let mut zero_edge = g.clone();
        zero_edge.events[0].push(ev(2.0, 2.0, 0));
        assert!(psds_operating_points(&zero_edge, std::slice::from_ref(&ok), &p).is_ok());
        let mut empty = g.clone();
        empty.events = vec![vec![ev(1.0, 1.0, 0)], vec![]];
        assert!(err(psds_operating_points(&empty, std::slice::from_ref(&ok), &p)).contains("no event"));
        let mut silent = g.clone();
        silent.durations = vec![0.0, 0.0];
        assert!(err(psds_operating_points(&silent, std::slice::from_ref(&ok), &p)).contains("durations"));
        let mut short = g.clone();
        short.durations.pop();
        assert!(err(psds_operating_points(&short, std::slice::from_ref(&ok), &p)).contains("durations"));
        let mut twice = g.clone();
        twice.files[1] = "a".into();
        assert!(err(psds_operating_points(&twice, &[ok], &p)).contains("twice"));
    }

    #[test]
    fn numpy_pairwise_sum() {
        let a: Vec<f64> = (0..300).map(|i| ((i * 7919) % 1000) as f64 * 0.1 + 1e-3 / (i + 1) as f64).collect();
        for n in [0, 5, 8, 9, 128, 129, 300] {
            let exact: f64 = a[..n].iter().sum();
            assert!((pairwise_sum(&a[..n]) - exact).abs() <= 1e-9 * exact.abs().max(1.0));
        }
        assert_eq!(pairwise_sum(&[1.0; 9]), 9.0);
    }

    /// Compares with dumps of psds_eval 0.5.3 (a JSON file named by PSDS_OP_DUMP, written by
    /// tests/golden/psds_op_random.py): `cargo test -p aural-models --lib psds_op -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn matches_psds_eval_dump() {
        use serde_json::Value;
        let path = std::env::var("PSDS_OP_DUMP").expect("PSDS_OP_DUMP: path of the JSON dump");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // Floats are written as strings (serde_json's default float parsing is not correctly rounded), NaN as null.
        let num = |x: &Value| match x {
            Value::String(s) => s.parse::<f64>().unwrap(),
            Value::Null => f64::NAN,
            _ => x.as_f64().unwrap(),
        };
        let evs = |x: &Value| -> Vec<Ev> { x.as_array().unwrap().iter().map(|e| ev(num(&e[0]), num(&e[1]), e[2].as_u64().unwrap() as usize)).collect() };
        let close = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * (1.0 + b.abs());
        let (mut n_cases, mut max_diff, mut max_rel, mut n_inexact) = (0, 0.0f64, 0.0f64, 0);
        for s in v["sets"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            let g = GroundTruth {
                files: s["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect(),
                durations: s["durations"].as_array().unwrap().iter().map(num).collect(),
                classes: s["classes"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect(),
                events: s["gt"].as_array().unwrap().iter().map(evs).collect(),
            };
            let ops: Vec<Vec<Vec<Ev>>> = s["ops"].as_array().unwrap().iter().map(|op| op.as_array().unwrap().iter().map(evs).collect()).collect();
            for case in s["cases"].as_array().unwrap() {
                let cttc = Some(&case["cttc"]).filter(|c| !c.is_null()).map(num);
                let p = params(num(&case["dtc"]), num(&case["gtc"]), cttc, num(&case["alpha_ct"]), num(&case["alpha_st"]), num(&case["max_efpr"]));
                let mut variants = vec![p];
                if p.alpha_ct == 0.0 {
                    variants.push(PsdsParams { cttc: if cttc.is_some() { None } else { Some(0.3) }, ..p });
                }
                for p in variants {
                    let what = format!("{name} {p:?}");
                    let t0 = std::time::Instant::now();
                    let r = psds_operating_points(&g, &ops, &p);
                    if g.files.len() >= 500 {
                        println!("{what}: {} files, {} operating points: {:.1} ms", g.files.len(), ops.len(), t0.elapsed().as_secs_f64() * 1e3);
                    }
                    if let Some(e) = case.get("error") {
                        assert!(r.is_err(), "{what}: psds_eval raised {e}, we returned {r:?}");
                        continue;
                    }
                    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
                    n_cases += 1;
                    let mut cmp = |a: f64, b: f64, item: &str| {
                        if !(a.is_nan() && b.is_nan()) && a != b {
                            n_inexact += 1;
                            max_diff = max_diff.max((a - b).abs());
                            max_rel = max_rel.max((a - b).abs() / b.abs());
                            if std::env::var("PSDS_OP_VERBOSE").is_ok() {
                                println!("{what}: {item}: ours {a}, psds_eval {b}");
                            }
                        }
                        assert!(close(a, b), "{what}: {item}: ours {a}, psds_eval {b}");
                    };
                    cmp(r.psds, num(&case["psds"]), "psds");
                    let (rx, ry) = (case["roc_x"].as_array().unwrap(), case["roc_y"].as_array().unwrap());
                    assert_eq!(r.roc.len(), rx.len(), "{what}: roc length");
                    for (k, (pt, (x, y))) in r.roc.iter().zip(rx.iter().zip(ry)).enumerate() {
                        cmp(pt.0, num(x), &format!("roc x[{k}]"));
                        cmp(pt.1, num(y), &format!("roc y[{k}]"));
                    }
                    let crocs = case["class_rocs"].as_object().unwrap();
                    for (c, roc) in r.class_rocs.iter().enumerate() {
                        match crocs.get(&c.to_string()) {
                            None => assert!(roc.is_empty(), "{what}: class {c} has no reference events but a ROC"),
                            Some(ys) => {
                                let ys = ys.as_array().unwrap();
                                assert_eq!(roc.len(), ys.len(), "{what}: class {c} roc length");
                                for (k, (pt, y)) in roc.iter().zip(ys).enumerate() {
                                    cmp(pt.0, num(&rx[k]), &format!("class {c} x[{k}]"));
                                    cmp(pt.1, num(y), &format!("class {c} y[{k}]"));
                                }
                            }
                        }
                    }
                }
            }
        }
        println!("psds_op: {n_cases} cases equal to psds_eval: {n_inexact} numbers not bit-equal, max abs difference {max_diff:e}, max relative {max_rel:e}");
        assert!(n_cases > 0);
    }
}
