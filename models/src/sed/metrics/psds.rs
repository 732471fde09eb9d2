//! The threshold-independent PSDS of sed_scores_eval 0.0.4 (`intersection_based.psds` with
//! `time_decimals=6`): the normalised area under the PSD-ROC computed exactly over every decision
//! threshold of per-file frame-score tables.
//!
//! Algorithm (per file and class, then per class, then over classes):
//!
//! - Detections at threshold t are the maximal runs of frames with score ≥ t; a run spans
//!   `timestamps[first] .. timestamps[last + 1]`. The frames are swept once in decreasing score
//!   order (a union-find over frames joins runs as frames switch on); after each group of equal
//!   scores only the runs that changed are re-evaluated, and only the reference events they touch.
//!   The statistics at every distinct score are those of sed_scores_eval's `statistics_fn`:
//!   - a run is relevant when `round(Σ_g intersection(run, g)) ≥ round(dtc · run length)` over the
//!     class's reference events g of the file; an irrelevant run is a false positive;
//!   - a reference event g is a true positive when `round(Σ intersection(relevant run, g)) ≥
//!     round(gtc · length(g))`;
//!   - with cttc, a run is a cross trigger on another class c (which has at least one event in the
//!     file) when `round(Σ_{g of c} (1 − relevant) · intersection(run, g)) ≥ round(cttc · run
//!     length)`;
//!   - round = `np.round(·, 6)` (`rint(x · 10⁶) / 10⁶`, ties to even), so a detection or event that
//!     meets a criterion exactly (e.g. 0.7 s of a 1 s event with gtc 0.7) passes despite float error.
//! - The changes of (tp, fp, ct) at each distinct score of each file are pooled per class, sorted by
//!   score and summed from the highest score down (one ROC point per distinct score, plus (0, 0) at
//!   threshold +∞): TPR = tp / max(n_ref, 1), eFPR = `(fp / Σ durations + alpha_ct · mean_c(ct_c /
//!   max(t_ref_c, 1e-12))) · unit_s`, the mean over the other classes, t_ref_c the summed length of
//!   class c's events. The points are sorted by (eFPR, TPR); a point is kept when its TPR exceeds
//!   every TPR before it (the first is always kept), of equal eFPRs the last kept one stays, and
//!   points with eFPR > max_efpr are dropped: the single-class ROC. (Implementation: one radix sort
//!   of the pooled changes per class; with alpha_ct = 0 the eFPR grows with the FP count, so the
//!   best TP count per FP count replaces the second sort.)
//! - The PSD-ROC is evaluated on the union of the classes' eFPRs, each class ROC read as a staircase
//!   (the TPR of the last point at or below the eFPR); eTPR = max(mean − alpha_st · std, 0) over
//!   classes, std with ddof 0 (`np.std`); a final point (max_efpr, last eTPR) is appended. PSDS =
//!   Σ eTPR_i · (eFPR_{i+1} − eFPR_i) / max_efpr (staircase area up to max_efpr).
//!
//! Edge cases, as sed_scores_eval 0.0.4 does them:
//!
//! - For a file without reference event of the class and without cttc, sed_scores_eval's shortcut
//!   (`acceleration_fn`) counts every run as a false positive (even with dtc ≤ 0, where the full
//!   computation would call an event-free run relevant); with cttc the shortcut is never taken (its
//!   test iterates over class names instead of event lists), so there `round(0) ≥ round(dtc · len)`
//!   decides as everywhere else.
//! - Criteria are evaluated at the highest score too: with gtc ≤ 0 every reference event is a true
//!   positive as soon as the threshold falls below the file's highest score, detection or not; with
//!   cttc ≤ 0 every run (relevant or not) is a cross trigger on every other class present in the
//!   file.
//! - TPR and eFPR need not grow as the threshold falls (runs merge, lengthen and stop being
//!   relevant); only points that raise the TPR survive, which is why the ROC is built from sorted
//!   points rather than in threshold order.
//! - Ties in scores switch on all their frames at once: one ROC point per distinct score (−0.0 and
//!   +0.0 are one score, as for `np.unique`).
//! - A class none of whose statistics ever changes (possible only with degenerate criteria, e.g. dtc
//!   ≤ 0 with cttc on a class without events): sed_scores_eval 0.0.4 fails (its statistics arrays
//!   come out empty beside the +∞ threshold); here its ROC is the single point (0, 0).
//! - sed_scores_eval refuses `cttc` with `alpha_ct = 0` and `alpha_ct ≠ 0` without `cttc`, and so
//!   does this function.
//! - A class without any reference event: sed_scores_eval 0.0.4 stops with an assertion ("No ground
//!   truth events for classes"); here it is computed as the rest of its pipeline would (TPR = tp /
//!   max(0, 1) = 0 everywhere, so the class ROC is the single point (0, 0) and drags the mean and the
//!   std of the PSD-ROC).
//! - Score tables with no frame are refused (sed_scores_eval fails on them); the durations are only
//!   summed (events or frames beyond a file's duration are not checked, as in sed_scores_eval).
//!
//! Float evaluation follows the reference's order where it matters: the sum over a file's events of
//! one class is numpy's pairwise sum in reference order; t_ref and the dataset duration are summed
//! in file order; the eFPR is `fp / duration`, plus the cross-trigger term, times unit_s, as
//! sed_scores_eval writes it; the class means and std are sequential sums (pairwise when the
//! PSD-ROC has a single eFPR, as numpy then reduces along one row). The sum over the relevant runs
//! that meet one event is taken in time order (numpy groups it pairwise when the file has a single
//! event of the class); the rounding to 10⁻⁶ that follows hides the difference unless a sum falls
//! within an ulp of a half-microsecond.
//!
//! Verified against sed_scores_eval 0.0.4 on ~1000 random sets × up to 12 parameter sets (files
//! without events, classes never present, constant, tied and ±0 scores, events on frame
//! boundaries, non-uniform timestamps, 1–12 classes, scenarios 1 and 2, max_efpr 0.5 … 100, units
//! second / minute / hour, alpha_st 0 … 2, dtc, gtc or cttc 0): all numbers bit-identical.
//! Files are processed in parallel, then classes (rayon).

use super::{GroundTruth, PsdsParams, PsdsResult, Result, ScoreTable, SedError};
use rayon::prelude::*;

/// sed_scores_eval's `time_decimals`: intersections and criterion lengths are rounded to 10⁻⁶ s.
const TIME_DECIMALS: i32 = 6;

/// `np.round(x, TIME_DECIMALS)`: `rint(x · 10^d) / 10^d`, ties to even.
fn round_t(x: f64) -> f64 {
    const F: f64 = 1e6;
    const _: () = assert!(TIME_DECIMALS == 6);
    let y = x * F;
    // rint without a libm call: adding and removing 2^52 rounds to an integer, ties to even.
    const M: f64 = 4503599627370496.0;
    let r = if y.abs() < M { (y + M.copysign(y)) - M.copysign(y) } else { y };
    r / F
}

/// Length of the intersection of `[on, off)` with `[g_on, g_off)` (0 when disjoint), as numpy
/// computes it: `max(min(off, g_off) − max(on, g_on), 0)`.
fn inter(on: f64, off: f64, g: (f64, f64)) -> f64 {
    (off.min(g.1) - on.max(g.0)).max(0.0)
}

/// numpy's sum of a contiguous f64 row (pairwise with 8 accumulators from 8 elements on).
fn np_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut r = 0.0;
        for &v in a {
            r += v;
        }
        r
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// numpy's sum of the intersections of `[on, off)` with `events` (in their order).
fn inter_sum(on: f64, off: f64, events: &[(f64, f64)], buf: &mut Vec<f64>) -> f64 {
    if events.len() < 8 {
        let mut r = 0.0;
        for &g in events {
            r += inter(on, off, g);
        }
        r
    } else {
        buf.clear();
        buf.extend(events.iter().map(|&g| inter(on, off, g)));
        np_sum(buf)
    }
}

/// Sorts `v` by key (ascending; LSD radix, bytes on which all keys agree are skipped).
fn radix_sort(v: &mut Vec<(u64, u64)>, tmp: &mut Vec<(u64, u64)>) {
    let mut hist = [[0usize; 256]; 8];
    for &(k, _) in v.iter() {
        for (b, h) in hist.iter_mut().enumerate() {
            h[((k >> (8 * b)) & 0xff) as usize] += 1;
        }
    }
    tmp.clear();
    tmp.resize(v.len(), (0, 0));
    for (b, h) in hist.iter().enumerate() {
        if h.contains(&v.len()) {
            continue;
        }
        let mut pos = [0usize; 256];
        let mut acc = 0;
        for (p, &n) in pos.iter_mut().zip(h) {
            *p = acc;
            acc += n;
        }
        for &e in v.iter() {
            let d = ((e.0 >> (8 * b)) & 0xff) as usize;
            tmp[pos[d]] = e;
            pos[d] += 1;
        }
        std::mem::swap(v, tmp);
    }
}

/// Order-preserving map of a finite f64 to u64 (−0 and +0, equal scores, map to one key).
fn order_key(x: f64) -> u64 {
    let b = (x + 0.0).to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// The changes of the statistics of one class in one file when the threshold falls to `score[i]`,
/// descending scores (`d[i]`). Cross triggers sparse: the changes of delta i are
/// `ct[ct_end[i − 1] .. ct_end[i]]`, (other-class position, change) (empty without cttc).
#[derive(Default)]
struct Deltas {
    /// (score, tp change, fp change)
    d: Vec<(f64, i32, i32)>,
    ct_end: Vec<u32>,
    ct: Vec<(u32, i32)>,
}

/// Validated parameters.
struct Cfg {
    dtc: f64,
    gtc: f64,
    cttc: Option<f64>,
    classes: usize,
}

/// Scratch of the per-file sweep, reused across classes and files of one thread.
#[derive(Default)]
struct Sweep {
    col: Vec<f64>,
    order: Vec<(u64, u32)>,
    parent: Vec<u32>,
    end: Vec<u32>,
    active: Vec<bool>,
    counted: Vec<bool>,
    rel: Vec<bool>,
    ct: Vec<bool>,
    dirty_runs: Vec<u32>,
    buf: Vec<f64>,
    g_thr: Vec<f64>,
    g_tp: Vec<bool>,
    g_range: Vec<(usize, usize)>,
    g_dirty: Vec<bool>,
    dirty_gts: Vec<usize>,
    act: Vec<(u32, usize)>,
    cts: Vec<i64>,
    prev_cts: Vec<i64>,
}

/// Root of frame `f`'s run: its first frame (path halving).
fn find(parent: &mut [u32], mut f: usize) -> usize {
    while parent[f] as usize != f {
        let p = parent[f] as usize;
        parent[f] = parent[p];
        f = parent[f] as usize;
    }
    f
}

/// Statistics changes of class `c` in one file. `gts[k]` are the file's reference events of class k
/// in reference order.
fn class_deltas(table: &ScoreTable, c: usize, gts: &[Vec<(f64, f64)>], cfg: &Cfg, sw: &mut Sweep, out: &mut Deltas) {
    let n = table.timestamps.len() - 1;
    let k = cfg.classes;
    let ts = &table.timestamps;
    let mut col = std::mem::take(&mut sw.col);
    col.clear();
    col.extend(table.scores.iter().skip(c).step_by(k).take(n));
    sweep(ts, &col, c, gts, cfg, sw, out);
    sw.col = col;
}

/// [`class_deltas`] on the class's score column `col`.
fn sweep(ts: &[f64], col: &[f64], c: usize, gts: &[Vec<(f64, f64)>], cfg: &Cfg, sw: &mut Sweep, out: &mut Deltas) {
    let n = col.len();
    let k = cfg.classes;
    let target = &gts[c];
    if target.is_empty() && cfg.cttc.is_none() {
        // sed_scores_eval's shortcut: +1 false positive where a run starts (local maximum), −1 where
        // two runs join (local minimum).
        for i in 0..n {
            let s = col[i];
            let up = i == 0 || s > col[i - 1];
            let down = i + 1 < n && col[i + 1] > s;
            let d = up as i32 - down as i32;
            if d != 0 {
                out.d.push((s, 0, d));
            }
        }
        return;
    }
    // Other classes with events in this file (the others never count a cross trigger here):
    // (position among the other classes, class).
    sw.act.clear();
    if cfg.cttc.is_some() {
        sw.act.extend((0..k).filter(|&j| j != c && !gts[j].is_empty()).map(|j| ((if j < c { j } else { j - 1 }) as u32, j)));
    }
    let n_act = sw.act.len();

    sw.order.clear();
    sw.order.extend(col.iter().enumerate().map(|(f, &x)| (!order_key(x), f as u32)));
    sw.order.sort_unstable();
    sw.parent.clear();
    sw.parent.extend(0..n as u32);
    sw.end.clear();
    sw.end.extend(0..n as u32);
    for v in [&mut sw.active, &mut sw.counted, &mut sw.rel] {
        v.clear();
        v.resize(n, false);
    }
    sw.ct.clear();
    sw.ct.resize(n * n_act, false);
    sw.cts.clear();
    sw.cts.resize(n_act, 0);
    sw.prev_cts.clear();
    sw.prev_cts.resize(n_act, 0);
    sw.g_thr.clear();
    sw.g_tp.clear();
    sw.g_range.clear();
    sw.g_dirty.clear();
    sw.dirty_gts.clear();
    let mut tps = 0i64;
    for &g in target {
        let thr = round_t(cfg.gtc * (g.1 - g.0));
        let tp = 0.0 >= thr;
        tps += tp as i64;
        sw.g_thr.push(thr);
        sw.g_tp.push(tp);
        // Frames that can meet g: ts[f + 1] > onset and ts[f] < offset.
        sw.g_range.push((ts[1..].partition_point(|&t| t <= g.0), ts[..n].partition_point(|&t| t < g.1)));
        sw.g_dirty.push(false);
    }
    let (mut n_runs, mut n_rel) = (0i64, 0i64);
    let (mut prev_tp, mut prev_fp) = (0i64, 0i64);

    let mut i = 0;
    while i < n {
        let key = sw.order[i].0;
        let u = col[sw.order[i].1 as usize];
        sw.dirty_runs.clear();
        while i < n && sw.order[i].0 == key {
            let f = sw.order[i].1 as usize;
            i += 1;
            sw.active[f] = true;
            let mut root = f;
            // Joined runs stop counting until re-evaluated below.
            let mut uncount = |sw: &mut Sweep, a: usize| {
                if sw.counted[a] {
                    sw.counted[a] = false;
                    n_runs -= 1;
                    n_rel -= sw.rel[a] as i64;
                    for j in 0..n_act {
                        sw.cts[j] -= sw.ct[a * n_act + j] as i64;
                    }
                }
            };
            if f > 0 && sw.active[f - 1] {
                let a = find(&mut sw.parent, f - 1);
                uncount(sw, a);
                sw.parent[f] = a as u32;
                sw.end[a] = f as u32;
                root = a;
            }
            if f + 1 < n && sw.active[f + 1] {
                // f was off, so f + 1 starts its run.
                let b = f + 1;
                uncount(sw, b);
                sw.parent[b] = root as u32;
                sw.end[root] = sw.end[b];
            }
            sw.dirty_runs.push(root as u32);
        }
        // Evaluate the runs that changed.
        for d in 0..sw.dirty_runs.len() {
            let l = find(&mut sw.parent, sw.dirty_runs[d] as usize);
            if sw.counted[l] {
                continue;
            }
            let (on, off) = (ts[l], ts[sw.end[l] as usize + 1]);
            let len = off - on;
            for (j, &g) in target.iter().enumerate() {
                if inter(on, off, g) > 0.0 && !sw.g_dirty[j] {
                    sw.g_dirty[j] = true;
                    sw.dirty_gts.push(j);
                }
            }
            let rel = round_t(inter_sum(on, off, target, &mut sw.buf)) >= round_t(cfg.dtc * len);
            sw.rel[l] = rel;
            sw.counted[l] = true;
            n_runs += 1;
            n_rel += rel as i64;
            if let Some(cttc) = cfg.cttc {
                let thr = round_t(cttc * len);
                for a in 0..n_act {
                    let tot = if rel { 0.0 } else { round_t(inter_sum(on, off, &gts[sw.act[a].1], &mut sw.buf)) };
                    let is_ct = tot >= thr;
                    sw.ct[l * n_act + a] = is_ct;
                    sw.cts[a] += is_ct as i64;
                }
            }
        }
        // Re-evaluate the reference events met by a changed run.
        for d in 0..sw.dirty_gts.len() {
            let j = sw.dirty_gts[d];
            sw.g_dirty[j] = false;
            let g = target[j];
            let (mut f, fb) = sw.g_range[j];
            let mut s = 0.0;
            while f < fb {
                if sw.active[f] {
                    let l = find(&mut sw.parent, f);
                    let r = sw.end[l] as usize;
                    if sw.rel[l] {
                        s += inter(ts[l], ts[r + 1], g);
                    }
                    f = r + 1;
                } else {
                    f += 1;
                }
            }
            let tp = round_t(s) >= sw.g_thr[j];
            if tp != sw.g_tp[j] {
                sw.g_tp[j] = tp;
                tps += if tp { 1 } else { -1 };
            }
        }
        sw.dirty_gts.clear();
        let fps = n_runs - n_rel;
        if tps != prev_tp || fps != prev_fp || sw.cts != sw.prev_cts {
            out.d.push((u, (tps - prev_tp) as i32, (fps - prev_fp) as i32));
            if cfg.cttc.is_some() {
                for a in 0..n_act {
                    let d = sw.cts[a] - sw.prev_cts[a];
                    if d != 0 {
                        out.ct.push((sw.act[a].0, d as i32));
                    }
                }
                out.ct_end.push(out.ct.len() as u32);
            }
            prev_tp = tps;
            prev_fp = fps;
            sw.prev_cts.copy_from_slice(&sw.cts);
        }
    }
}

/// The single-class ROC of class `c` from the changes of all files.
fn class_roc(c: usize, per_file: &[Vec<Deltas>], n_ref: usize, t_ref_other: &[f64], duration: f64, p: &PsdsParams) -> Vec<(f64, f64)> {
    let n_other = t_ref_other.len();
    let total: usize = per_file.iter().map(|d| d[c].d.len()).sum();
    let with_ct_counts = p.cttc.is_some();
    // tp and fp changes of entry i (with cross triggers; without, they travel in the sort payload)
    let mut tp_fp: Vec<(i32, i32)> = Vec::new();
    let mut ct_range: Vec<(u32, u32)> = Vec::new();
    let mut ct: Vec<(u32, i32)> = Vec::new();
    let pack = |tp: i32, fp: i32| ((tp as u32 as u64) << 32) | fp as u32 as u64;
    // (descending-score key, entry index or packed changes)
    let mut keys: Vec<(u64, u64)> = Vec::with_capacity(total);
    for d in per_file {
        let d = &d[c];
        if with_ct_counts {
            for &(s, tp, fp) in &d.d {
                keys.push((!order_key(s), tp_fp.len() as u64));
                tp_fp.push((tp, fp));
            }
        } else {
            keys.extend(d.d.iter().map(|&(s, tp, fp)| (!order_key(s), pack(tp, fp))));
        }
        if with_ct_counts {
            let base = ct.len() as u32;
            let mut start = base;
            for &e in &d.ct_end {
                ct_range.push((start, base + e));
                start = base + e;
            }
            ct.extend_from_slice(&d.ct);
        }
    }
    let mut tmp = Vec::new();
    radix_sort(&mut keys, &mut tmp);

    let n_ref = n_ref.max(1) as f64;
    let efpr = |fp: i64, cts: &[i64]| -> f64 {
        let fp_rate = fp as f64 / duration;
        let e = if p.alpha_ct == 0.0 {
            fp_rate
        } else {
            let mut sum = 0.0;
            for (j, &x) in cts.iter().enumerate() {
                sum += x as f64 / t_ref_other[j].max(1e-12);
            }
            fp_rate + p.alpha_ct * (sum / n_other as f64)
        };
        e * p.unit_s
    };
    // The states after each distinct score, highest first, after the all-zero state (threshold ∞).
    let (mut acc_tp, mut acc_fp) = (0i64, 0i64);
    let mut acc_ct = vec![0i64; if with_ct_counts { n_other } else { 0 }];
    let mut states: Vec<(i64, i64)> = Vec::with_capacity(keys.len() + 1);
    // eFPR bits, TPR bits (with cross triggers, the eFPR is computed on the fly)
    let mut points: Vec<(u64, u64)> = Vec::new();
    let with_ct = p.alpha_ct != 0.0;
    if with_ct {
        points.reserve(keys.len() + 1);
        points.push((efpr(0, &acc_ct).to_bits(), 0f64.to_bits()));
    } else {
        states.push((0, 0));
    }
    let mut i = 0;
    while i < keys.len() {
        let s = keys[i].0;
        while i < keys.len() && keys[i].0 == s {
            let e = keys[i].1;
            if with_ct_counts {
                let e = e as usize;
                acc_tp += tp_fp[e].0 as i64;
                acc_fp += tp_fp[e].1 as i64;
                let (a, b) = ct_range[e];
                for &(j, d) in &ct[a as usize..b as usize] {
                    acc_ct[j as usize] += d as i64;
                }
            } else {
                acc_tp += (e >> 32) as u32 as i32 as i64;
                acc_fp += e as u32 as i32 as i64;
            }
            i += 1;
        }
        if with_ct {
            points.push((efpr(acc_fp, &acc_ct).to_bits(), (acc_tp as f64 / n_ref).to_bits()));
        } else {
            states.push((acc_fp, acc_tp));
        }
    }
    if with_ct {
        // eFPR ≥ 0, so its bits sort as the values.
        radix_sort(&mut points, &mut tmp);
    } else {
        // The eFPR grows with the false-positive count: the highest TP count per FP count, in
        // FP order.
        let max_fp = states.iter().map(|s| s.0).max().unwrap_or(0).max(0) as usize;
        let mut best_tp = vec![-1i64; max_fp + 1];
        for &(f, t) in &states {
            let b = &mut best_tp[f.max(0) as usize];
            *b = (*b).max(t);
        }
        points = best_tp.iter().enumerate().filter(|(_, &t)| t >= 0).map(|(f, &t)| (efpr(f as i64, &[]).to_bits(), (t as f64 / n_ref).to_bits())).collect();
    }
    // sed_scores_eval's `_unique_cummax_sort` on points sorted by eFPR (the order within one eFPR
    // does not matter): keep a point when its TPR beats every earlier one (the first always), of
    // one eFPR the last kept.
    let mut roc: Vec<(f64, f64)> = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for (k, &(xb, yb)) in points.iter().enumerate() {
        let (x, y) = (f64::from_bits(xb), f64::from_bits(yb));
        if k == 0 || y > best {
            best = y;
            match roc.last_mut() {
                Some(last) if last.0 == x => *last = (x, y),
                _ => roc.push((x, y)),
            }
        }
    }
    let cut = roc.partition_point(|q| q.0 <= p.max_efpr);
    roc.truncate(cut);
    roc
}

fn invalid<T>(msg: String) -> Result<T> {
    Err(SedError::Invalid(format!("psds: {msg}")))
}

fn check_params(p: &PsdsParams, classes: usize) -> Result<()> {
    for (name, v) in [("dtc", p.dtc), ("gtc", p.gtc), ("alpha_ct", p.alpha_ct), ("alpha_st", p.alpha_st), ("max_efpr", p.max_efpr), ("unit_s", p.unit_s)] {
        if !v.is_finite() {
            return invalid(format!("{name} is {v} (must be finite)"));
        }
    }
    if p.alpha_ct < 0.0 || p.alpha_st < 0.0 {
        return invalid(format!("alpha_ct {} and alpha_st {} must be ≥ 0", p.alpha_ct, p.alpha_st));
    }
    if p.max_efpr <= 0.0 || p.unit_s <= 0.0 {
        return invalid(format!("max_efpr {} and unit_s {} must be > 0", p.max_efpr, p.unit_s));
    }
    match p.cttc {
        None if p.alpha_ct != 0.0 => invalid(format!("alpha_ct is {} but no cttc is given (cross triggers are not computed)", p.alpha_ct)),
        Some(_) if p.alpha_ct == 0.0 => invalid("cttc is given but alpha_ct is 0 (sed_scores_eval refuses this; leave cttc out)".into()),
        Some(c) if !c.is_finite() => invalid(format!("cttc is {c} (must be finite)")),
        Some(_) if classes < 2 => invalid("cross triggers (cttc) need at least two classes".into()),
        _ => Ok(()),
    }
}

/// One file's reference events per class: (onset, offset), in reference order.
type ClassEvents = Vec<Vec<(f64, f64)>>;

/// Reference events per file per class (reference order), after checking them.
fn check_ground_truth(gt: &GroundTruth, scores: &[ScoreTable]) -> Result<Vec<ClassEvents>> {
    let n = gt.files.len();
    let k = gt.classes.len();
    if n == 0 {
        return invalid("no file".into());
    }
    if k == 0 {
        return invalid("no class".into());
    }
    if gt.durations.len() != n || gt.events.len() != n || scores.len() != n {
        return invalid(format!("{n} files but {} durations, {} event lists and {} score tables", gt.durations.len(), gt.events.len(), scores.len()));
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    for id in &gt.files {
        if !seen.insert(id.as_str()) {
            return invalid(format!("file id {id} appears twice"));
        }
    }
    for (id, &d) in gt.files.iter().zip(&gt.durations) {
        if !(d.is_finite() && d >= 0.0) {
            return invalid(format!("file {id}: duration {d} (must be finite and ≥ 0)"));
        }
    }
    let mut per_file = Vec::with_capacity(n);
    for (id, evs) in gt.files.iter().zip(&gt.events) {
        let mut per_class = vec![Vec::new(); k];
        for e in evs {
            if e.class >= k {
                return invalid(format!("file {id}: event of class index {} but there are {k} classes", e.class));
            }
            if !(e.onset.is_finite() && e.offset.is_finite() && e.offset > e.onset) {
                return invalid(format!("file {id}: {} event {} → {} (times must be finite, offset > onset)", gt.classes[e.class], e.onset, e.offset));
            }
            per_class[e.class].push((e.onset, e.offset));
        }
        for (c, list) in per_class.iter().enumerate() {
            let mut sorted = list.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            if let Some(w) = sorted.windows(2).find(|w| w[1].0 <= w[0].1) {
                return invalid(format!(
                    "file {id}: {} events {} → {} and {} → {} overlap or touch (merge them with GroundTruth::merged)",
                    gt.classes[c], w[0].0, w[0].1, w[1].0, w[1].1
                ));
            }
        }
        per_file.push(per_class);
    }
    for (id, t) in gt.files.iter().zip(scores) {
        if t.classes != k {
            return invalid(format!("file {id}: score table has {} classes, the reference {k}", t.classes));
        }
        if t.timestamps.len() < 2 {
            return invalid(format!("file {id}: score table has no frame"));
        }
        let frames = t.timestamps.len() - 1;
        if t.scores.len() != frames * k {
            return invalid(format!("file {id}: {} scores for {frames} frames × {k} classes", t.scores.len()));
        }
        if let Some(f) = t.timestamps.iter().position(|x| !x.is_finite()) {
            return invalid(format!("file {id}: timestamp {f} is {}", t.timestamps[f]));
        }
        if let Some(f) = t.timestamps.windows(2).position(|w| w[1] <= w[0]) {
            return invalid(format!("file {id}: frame {f} has timestamps {} → {} (must increase)", t.timestamps[f], t.timestamps[f + 1]));
        }
        if let Some(i) = t.scores.iter().position(|x| !x.is_finite()) {
            return invalid(format!("file {id}: frame {} (t = {} s), class {}: score {}", i / k, t.timestamps[i / k], gt.classes[i % k], t.scores[i]));
        }
    }
    Ok(per_file)
}

/// The PSDS of sed_scores_eval 0.0.4 (`intersection_based.psds`, `time_decimals=6`) with `p.unit_s`
/// seconds per unit of the false-positive rate.
///
/// `scores[i]` belongs to `gt.files[i]` (same classes, in `gt.classes` order); `gt` has no
/// overlapping or touching events of one class (the caller merges them with `GroundTruth::merged`).
pub fn psds(gt: &GroundTruth, scores: &[ScoreTable], p: &PsdsParams) -> Result<PsdsResult> {
    check_params(p, gt.classes.len())?;
    let gts = check_ground_truth(gt, scores)?;
    let k = gt.classes.len();
    let mut duration = 0.0;
    for &d in &gt.durations {
        duration += d;
    }
    if duration <= 0.0 {
        return invalid(format!("total duration is {duration} s"));
    }
    let mut n_ref = vec![0usize; k];
    let mut t_ref = vec![0.0f64; k];
    for file in &gts {
        for (c, list) in file.iter().enumerate() {
            n_ref[c] += list.len();
        }
    }
    for evs in &gt.events {
        for e in evs {
            t_ref[e.class] += e.offset - e.onset;
        }
    }
    let cfg = Cfg { dtc: p.dtc, gtc: p.gtc, cttc: p.cttc, classes: k };

    let per_file: Vec<Vec<Deltas>> = scores
        .par_iter()
        .zip(gts.par_iter())
        .map_init(Sweep::default, |sw, (table, file_gts)| {
            (0..k)
                .map(|c| {
                    let mut d = Deltas { d: Vec::with_capacity(table.timestamps.len()), ..Deltas::default() };
                    class_deltas(table, c, file_gts, &cfg, sw, &mut d);
                    d
                })
                .collect()
        })
        .collect();

    let class_rocs: Vec<Vec<(f64, f64)>> = (0..k)
        .into_par_iter()
        .map(|c| {
            let t_ref_other: Vec<f64> = (0..k).filter(|&j| j != c).map(|j| t_ref[j]).collect();
            class_roc(c, &per_file, n_ref[c], &t_ref_other, duration, p)
        })
        .collect();

    // PSD-ROC on the union of the classes' eFPRs.
    let mut xs: Vec<f64> = class_rocs.iter().flat_map(|r| r.iter().map(|q| q.0)).collect();
    xs.sort_unstable_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let mut ptr = vec![0usize; k];
    let mut vals = vec![0.0; k];
    let mut sqdev = Vec::with_capacity(k);
    // numpy's mean / std over the classes (axis 0 of a classes × points array) add the classes in
    // order, except for a single point where the reduction runs along one row: pairwise.
    let single = xs.len() == 1;
    let class_sum = |v: &[f64]| {
        if single {
            np_sum(v)
        } else {
            let mut s = 0.0;
            for &x in v {
                s += x;
            }
            s
        }
    };
    let mut roc = Vec::with_capacity(xs.len() + 1);
    for &x in &xs {
        for (c, r) in class_rocs.iter().enumerate() {
            while ptr[c] + 1 < r.len() && r[ptr[c] + 1].0 <= x {
                ptr[c] += 1;
            }
            vals[c] = match r.first() {
                Some(first) if x >= first.0 => r[ptr[c]].1,
                _ => 0.0,
            };
        }
        let mu = class_sum(&vals) / k as f64;
        sqdev.clear();
        sqdev.extend(vals.iter().map(|&v| (v - mu) * (v - mu)));
        let sigma = (class_sum(&sqdev) / k as f64).sqrt();
        roc.push((x, (mu - p.alpha_st * sigma).max(0.0)));
    }
    let last = roc.last().map_or(0.0, |q| q.1);
    roc.push((p.max_efpr, last));
    let mut area = 0.0;
    for (i, &(x, y)) in roc.iter().enumerate() {
        let next = roc.get(i + 1).map_or(p.max_efpr, |q| q.0);
        area += y * (next - x);
    }
    Ok(PsdsResult { psds: area / p.max_efpr, roc, class_rocs })
}

#[cfg(test)]
mod tests {
    use super::super::Ev;
    use super::*;

    fn gt(durations: &[f64], classes: usize, events: Vec<Vec<Ev>>) -> GroundTruth {
        GroundTruth {
            files: (0..durations.len()).map(|i| format!("f{i}")).collect(),
            durations: durations.to_vec(),
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            events,
        }
    }

    fn ev(onset: f64, offset: f64, class: usize) -> Ev {
        Ev { onset, offset, class }
    }

    /// A table of `frames` one-second frames from per-class score columns.
    fn table(cols: &[Vec<f64>]) -> ScoreTable {
        let frames = cols[0].len();
        let scores = (0..frames).flat_map(|f| cols.iter().map(move |c| c[f])).collect();
        ScoreTable::new((0..=frames).map(|f| f as f64).collect(), cols.len(), scores).unwrap()
    }

    /// `len` frames of `base` with frames `ranges` set to their score.
    fn col(len: usize, base: f64, ranges: &[(usize, usize, f64)]) -> Vec<f64> {
        let mut v = vec![base; len];
        for &(a, b, s) in ranges {
            v[a..b].fill(s);
        }
        v
    }

    fn params(max_efpr: f64, alpha_st: f64) -> PsdsParams {
        PsdsParams { max_efpr, alpha_st, ..PsdsParams::SCENARIO1 }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_detector_scores_one() {
        // Event 2 → 5 s, scores 1 exactly there: TPR 1 at eFPR 0. At threshold 0 the whole clip is one
        // 10 s run that meets the event for 3 s < 0.7 · 10: a false positive, and the event is lost.
        let g = gt(&[10.0], 1, vec![vec![ev(2.0, 5.0, 0)]]);
        let r = psds(&g, &[table(&[col(10, 0.0, &[(2, 5, 1.0)])])], &PsdsParams::SCENARIO1).unwrap();
        assert!(close(r.psds, 1.0), "{r:?}");
        assert_eq!(r.class_rocs, vec![vec![(0.0, 1.0)]]);
        assert_eq!(r.roc, vec![(0.0, 1.0), (100.0, 1.0)]);
    }

    #[test]
    fn staircase_area_by_hand() {
        // 100 s clip, events 10 → 20 and 50 → 60. Thresholds: 0.9 finds the first event (TPR 0.5,
        // no FP); 0.7 adds a false run 80 → 85 (1 FP in 100 s = 36 per hour); 0.5 finds the second
        // event (TPR 1 at 36). PSDS = (0.5 · 36 + 1 · 64) / 100.
        let g = gt(&[100.0], 1, vec![vec![ev(10.0, 20.0, 0), ev(50.0, 60.0, 0)]]);
        let t = table(&[col(100, 0.0, &[(10, 20, 0.9), (50, 60, 0.5), (80, 85, 0.7)])]);
        let r = psds(&g, &[t], &PsdsParams::SCENARIO1).unwrap();
        assert_eq!(r.class_rocs.len(), 1);
        let cr = &r.class_rocs[0];
        assert_eq!(cr.len(), 2, "{cr:?}");
        assert!(close(cr[0].0, 0.0) && close(cr[0].1, 0.5) && close(cr[1].0, 36.0) && close(cr[1].1, 1.0), "{cr:?}");
        assert!(close(r.psds, 0.82), "{}", r.psds);
        // max_efpr below the second step: only TPR 0.5.
        let r = psds(&g, &[table(&[col(100, 0.0, &[(10, 20, 0.9), (50, 60, 0.5), (80, 85, 0.7)])])], &params(30.0, 1.0)).unwrap();
        assert!(close(r.psds, 0.5), "{}", r.psds);
    }

    #[test]
    fn class_mean_and_std() {
        // Class 0 perfect (TPR 1 at 0), class 1 a constant score: one 10 s run meeting its 1 s event
        // for 1 s: a false positive, TPR 0. Mean 0.5, std 0.5.
        let g = gt(&[10.0], 2, vec![vec![ev(2.0, 5.0, 0), ev(0.0, 1.0, 1)]]);
        let t = table(&[col(10, 0.0, &[(2, 5, 1.0)]), col(10, 0.5, &[])]);
        let r = psds(&g, std::slice::from_ref(&t), &params(100.0, 0.0)).unwrap();
        assert!(close(r.psds, 0.5), "{r:?}");
        assert_eq!(r.class_rocs[1], vec![(0.0, 0.0)]);
        let r = psds(&g, &[t], &params(100.0, 1.0)).unwrap();
        assert!(close(r.psds, 0.0), "{r:?}");
    }

    #[test]
    fn cross_triggers_by_hand() {
        // 200 s clip, class 0 event 10 → 20, class 1 event 50 → 60 (t_ref 10 s each).
        // Class 0 scores 0.9 on 50 → 60 (a false positive and a cross trigger on class 1: 10 s ≥ 0.3 ·
        // 10 s), 0.6 on its event. At 0.9: eFPR = (1/200 + 0.5 · 1/10) · 3600 = 198, TPR 0; at 0.6:
        // (198, 1); at 0 one 200 s run: not relevant (10 < 0.1 · 200), no cross trigger (10 < 0.3 ·
        // 200), eFPR 18, TPR 0. ROC (0, 0), (198, 1). Class 1: TPR 1 at 0.
        // PSD-ROC (alpha_st 1): 0 up to 198, then 1 → PSDS = 102 / 300.
        let g = gt(&[200.0], 2, vec![vec![ev(10.0, 20.0, 0), ev(50.0, 60.0, 1)]]);
        let t = table(&[col(200, 0.0, &[(50, 60, 0.9), (10, 20, 0.6)]), col(200, 0.0, &[(50, 60, 0.8)])]);
        let p = PsdsParams { max_efpr: 300.0, ..PsdsParams::SCENARIO2 };
        let r = psds(&g, std::slice::from_ref(&t), &p).unwrap();
        let c0 = &r.class_rocs[0];
        assert!(c0.len() == 2 && close(c0[0].0, 0.0) && close(c0[0].1, 0.0) && close(c0[1].0, 198.0) && close(c0[1].1, 1.0), "{c0:?}");
        assert_eq!(r.class_rocs[1], vec![(0.0, 1.0)]);
        assert!(close(r.psds, 102.0 / 300.0), "{r:?}");
        let r = psds(&g, &[t], &PsdsParams { alpha_st: 0.0, ..p }).unwrap();
        assert!(close(r.psds, (0.5 * 198.0 + 102.0) / 300.0), "{}", r.psds);
    }

    #[test]
    fn criteria_met_exactly_pass() {
        // 0.1 s frames (timestamps k · 0.1, not exact decimals); event 0 → 1 s, detection 0.3 → 1.0 s:
        // 0.7 s of the event = gtc · 1 s exactly, and all of the detection lies in the event.
        let ts: Vec<f64> = (0..=20).map(|k| k as f64 * 0.1).collect();
        let s = (0..20).map(|f| if (3..10).contains(&f) { 1.0 } else { 0.0 }).collect();
        let g = gt(&[2.0], 1, vec![vec![ev(0.0, 1.0, 0)]]);
        let r = psds(&g, &[ScoreTable::new(ts, 1, s).unwrap()], &PsdsParams::SCENARIO1).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 1.0)]);
    }

    #[test]
    fn files_without_events_count_runs() {
        // File 0: the event gets score 0.1 only. File 1 (no event): scores 0.5, 0.2, 0.5 — two false
        // runs at 0.5 that join into one at 0.2. 20 s in all: the TPR reaches 1 at 1 FP = 180 / h.
        let g = gt(&[10.0, 10.0], 1, vec![vec![ev(2.0, 5.0, 0)], vec![]]);
        let t0 = table(&[col(10, 0.0, &[(2, 5, 0.1)])]);
        let mut t1 = table(&[col(3, 0.0, &[(0, 1, 0.5), (1, 2, 0.2), (2, 3, 0.5)])]);
        t1.timestamps = vec![0.0, 1.0, 2.0, 3.0];
        let r = psds(&g, &[t0, t1], &params(200.0, 1.0)).unwrap();
        let c = &r.class_rocs[0];
        assert!(c.len() == 2 && c[0] == (0.0, 0.0) && close(c[1].0, 180.0) && c[1].1 == 1.0, "{c:?}");
        assert!(close(r.psds, 0.1), "{}", r.psds);
    }

    #[test]
    fn tied_scores_switch_on_together() {
        // Frames 0 and 2 share a score: at that threshold the true run (on the event) and the false
        // one appear together, so there is no point (eFPR 0, TPR 1). One FP in 3 s = 1200 / h.
        // Scores +0.0 and −0.0 are one threshold too.
        let g = gt(&[3.0], 1, vec![vec![ev(0.0, 1.0, 0)]]);
        for (a, b) in [(0.5, 0.5), (0.0, -0.0), (-0.0, 0.0)] {
            let t = table(&[vec![a, -1.0, b]]);
            let r = psds(&g, &[t], &params(2000.0, 1.0)).unwrap();
            let c = &r.class_rocs[0];
            assert!(c.len() == 2 && c[0] == (0.0, 0.0) && close(c[1].0, 1200.0) && c[1].1 == 1.0, "{a} {b}: {c:?}");
        }
        // Untied, the true run comes first: TPR 1 at eFPR 0.
        let r = psds(&g, &[table(&[vec![0.6, -1.0, 0.5]])], &params(2000.0, 1.0)).unwrap();
        assert_eq!(r.class_rocs[0], vec![(0.0, 1.0)]);
    }

    #[test]
    fn class_without_events_has_zero_tpr() {
        let g = gt(&[10.0], 2, vec![vec![ev(2.0, 5.0, 0)]]);
        let t = table(&[col(10, 0.0, &[(2, 5, 1.0)]), col(10, 0.0, &[(6, 8, 1.0)])]);
        let r = psds(&g, &[t], &params(100.0, 0.0)).unwrap();
        assert_eq!(r.class_rocs[1], vec![(0.0, 0.0)]);
        assert!(close(r.psds, 0.5), "{}", r.psds);
    }

    #[test]
    fn invalid_inputs() {
        let g = gt(&[10.0], 2, vec![vec![ev(2.0, 5.0, 0)]]);
        let ok = table(&[col(10, 0.0, &[]), col(10, 0.0, &[])]);
        let err = |g: &GroundTruth, s: &[ScoreTable], p: &PsdsParams| match psds(g, s, p) {
            Err(SedError::Invalid(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        };
        assert!(err(&g, &[], &PsdsParams::SCENARIO1).contains("1 files but 1 durations, 1 event lists and 0 score tables"));
        assert!(err(&g, &[table(&[col(10, 0.0, &[])])], &PsdsParams::SCENARIO1).contains("score table has 1 classes, the reference 2"));
        let p = PsdsParams { alpha_ct: 0.5, ..PsdsParams::SCENARIO1 };
        assert!(err(&g, std::slice::from_ref(&ok), &p).contains("no cttc"));
        let p = PsdsParams { alpha_ct: 0.0, ..PsdsParams::SCENARIO2 };
        assert!(err(&g, std::slice::from_ref(&ok), &p).contains("alpha_ct is 0"));
        assert!(err(&g, std::slice::from_ref(&ok), &params(0.0, 1.0)).contains("max_efpr"));
        let mut bad = ok.clone();
        bad.scores[7 * 2 + 1] = f64::NAN;
        let m = err(&g, &[bad], &PsdsParams::SCENARIO1);
        assert!(m.contains("file f0") && m.contains("frame 7") && m.contains("class c1"), "{m}");
        let mut bad = ok.clone();
        bad.timestamps.truncate(1);
        assert!(err(&g, &[bad], &PsdsParams::SCENARIO1).contains("no frame"));
        let overlap = gt(&[10.0], 2, vec![vec![ev(2.0, 5.0, 0), ev(5.0, 6.0, 0)]]);
        assert!(err(&overlap, std::slice::from_ref(&ok), &PsdsParams::SCENARIO1).contains("overlap or touch"));
        let backwards = gt(&[10.0], 2, vec![vec![ev(5.0, 5.0, 1)]]);
        assert!(err(&backwards, std::slice::from_ref(&ok), &PsdsParams::SCENARIO1).contains("offset > onset"));
        let zero = gt(&[0.0], 2, vec![vec![]]);
        assert!(err(&zero, std::slice::from_ref(&ok), &PsdsParams::SCENARIO1).contains("total duration"));
        let one = gt(&[10.0], 1, vec![vec![]]);
        assert!(err(&one, &[table(&[col(10, 0.0, &[])])], &PsdsParams::SCENARIO2).contains("two classes"));
    }

    /// Compares with sed_scores_eval results dumped by tests/golden/psds_random.py (floats as u64 bit
    /// patterns):
    /// `PSDS_REF_JSON=/path/to/sets.json cargo test --release -p aural-models --lib psds -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn matches_sed_scores_eval_dump() {
        use serde_json::Value;
        let path = std::env::var("PSDS_REF_JSON").expect("set PSDS_REF_JSON");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let f = |x: &Value| f64::from_bits(x.as_u64().unwrap());
        let fl = |x: &Value| x.as_array().unwrap().iter().map(f).collect::<Vec<f64>>();
        let (mut d_psds, mut d_roc, mut d_class, mut cases) = (0f64, 0f64, 0f64, 0);
        for set in v["sets"].as_array().unwrap() {
            let classes: Vec<String> = set["classes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
            let k = classes.len();
            let g = GroundTruth {
                files: set["files"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect(),
                durations: fl(&set["durations"]),
                classes,
                events: set["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|evs| evs.as_array().unwrap().iter().map(|e| ev(f(&e[0]), f(&e[1]), e[2].as_u64().unwrap() as usize)).collect())
                    .collect(),
            };
            let tables: Vec<ScoreTable> =
                set["tables"].as_array().unwrap().iter().map(|t| ScoreTable::new(fl(&t["timestamps"]), k, fl(&t["scores"])).unwrap()).collect();
            for case in set["cases"].as_array().unwrap() {
                let q = &case["params"];
                let p = PsdsParams {
                    dtc: f(&q[0]),
                    gtc: f(&q[1]),
                    cttc: if q[2].is_null() { None } else { Some(f(&q[2])) },
                    alpha_ct: f(&q[3]),
                    alpha_st: f(&q[4]),
                    max_efpr: f(&q[5]),
                    unit_s: f(&q[6]),
                };
                let t0 = std::time::Instant::now();
                let r = psds(&g, &tables, &p).unwrap();
                let el = t0.elapsed().as_secs_f64();
                if let Some(rs) = case.get("ref_seconds") {
                    let mut best = el;
                    for _ in 0..4 {
                        let t0 = std::time::Instant::now();
                        std::hint::black_box(psds(&g, &tables, &p).unwrap());
                        best = best.min(t0.elapsed().as_secs_f64());
                    }
                    println!("timing {p:?}: ours {best:.4} s (first call {el:.4} s), sed_scores_eval {:.3} s", rs.as_f64().unwrap());
                }
                cases += 1;
                let ctx = format!("set files {:?}.. params {p:?}", &g.files[..1]);
                d_psds = d_psds.max((r.psds - f(&case["psds"])).abs());
                let (rx, ry) = (fl(&case["roc_x"]), fl(&case["roc_y"]));
                assert_eq!(r.roc.len(), rx.len(), "{ctx}: roc {:?} vs x {rx:?} y {ry:?}", r.roc);
                for (i, &(x, y)) in r.roc.iter().enumerate() {
                    d_roc = d_roc.max((x - rx[i]).abs()).max((y - ry[i]).abs());
                }
                for c in 0..k {
                    let (cx, cy) = (fl(&case["class_x"][c]), fl(&case["class_y"][c]));
                    let ours = &r.class_rocs[c];
                    assert_eq!(ours.len(), cx.len(), "{ctx}: class {c}: {ours:?} vs x {cx:?} y {cy:?}");
                    for (i, &(x, y)) in ours.iter().enumerate() {
                        d_class = d_class.max((x - cx[i]).abs()).max((y - cy[i]).abs());
                    }
                }
                assert!(d_psds < 1e-6 && d_roc < 1e-6 && d_class < 1e-6, "{ctx}: {d_psds} {d_roc} {d_class}");
            }
        }
        println!("{cases} cases: max |Δ| psds {d_psds:e}, psd-roc {d_roc:e}, class rocs {d_class:e}");
    }
}
