//! Event-based metrics, equal to sed_eval 0.2.1 `EventBasedMetrics` with `event_matching_type =
//! 'optimal'` (its default), evaluated file by file and accumulated:
//!
//! - A reference event r and a system event s *hit* when their labels are equal, |r.onset −
//!   s.onset| ≤ t_collar (when onsets are evaluated) and |r.offset − s.offset| ≤ max(t_collar,
//!   percentage_of_length · (r.offset − r.onset)) (when offsets are evaluated). The DESED setting is
//!   t_collar 0.2 s, percentage_of_length 0.2, both evaluated.
//! - True positives are a maximum bipartite matching of the hits. sed_eval computes it with
//!   mir_eval's Hopcroft–Karp code; the *number* of matches of any maximum matching is the same, but
//!   *which* events stay unmatched decides the substitutions below, so [`bipartite_match`] follows
//!   that code's visiting order exactly (graph keys = system events in order of their first hit
//!   row by row, neighbours ascending; BFS layers and the DFS in that order).
//! - Substitutions (overall only): for each unmatched reference event in file order, the first
//!   still-uncounted unmatched system event (in file order) whose onset/offset conditions hold,
//!   whatever its label.
//! - Overall: Nfp = Nsys − Ntp − Nsubs, Nfn = Nref − Ntp − Nsubs, ER = (S + D + I)/Nref.
//!   Class-wise: Ntp from the matching of that class's events alone, Nfp = Nsys − Ntp,
//!   Nfn = Nref − Ntp, ER = (D + I)/Nref. Macro = nanmean over classes ([`super::Scores`]).
//! - Events keep the order of their TSV (sed_eval's `MetaDataContainer` does not sort); the
//!   order only matters for the substitutions.
//!
//! Files: every file of the [`GroundTruth`] is evaluated, including files without reference
//! events (their detections are false positives). The DESED baseline's `event_based_evaluation_df`
//! loops only over the files that have reference events, so on a set with event-free files its
//! numbers differ from these by exactly those files' detections.

use super::{check_estimated, CountMetrics, Counts, Ev, GroundTruth};
use crate::sed::{Result, SedError};

/// Parameters of the event-based metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventParams {
    pub t_collar: f64,
    pub percentage_of_length: f64,
    pub evaluate_onset: bool,
    pub evaluate_offset: bool,
    /// Precision 0 (not NaN) when there is no system output (sed_eval's `empty_system_output_handling
    /// = 'zero_score'`, as the DESED baseline calls it).
    pub zero_score: bool,
}

impl Default for EventParams {
    /// The DESED / DCASE task 4 setting: collar 200 ms, 20 % of the length, onset and offset,
    /// zero score for empty output.
    fn default() -> Self {
        EventParams { t_collar: 0.2, percentage_of_length: 0.2, evaluate_onset: true, evaluate_offset: true, zero_score: true }
    }
}

impl EventParams {
    fn check(&self) -> Result<()> {
        if !(self.t_collar > 0.0 && self.t_collar.is_finite()) {
            return Err(SedError::Invalid(format!("event-based: t_collar must be > 0, got {}", self.t_collar)));
        }
        if !(0.0..=1.0).contains(&self.percentage_of_length) {
            return Err(SedError::Invalid(format!("event-based: percentage_of_length must be in [0, 1], got {}", self.percentage_of_length)));
        }
        if !self.evaluate_onset && !self.evaluate_offset {
            return Err(SedError::Invalid("event-based: evaluate_onset and evaluate_offset cannot both be false".into()));
        }
        Ok(())
    }

    /// The onset/offset conditions (not the label).
    fn times_hit(&self, r: &Ev, s: &Ev) -> bool {
        (!self.evaluate_onset || (r.onset - s.onset).abs() <= self.t_collar)
            && (!self.evaluate_offset || (r.offset - s.offset).abs() <= self.t_collar.max(self.percentage_of_length * (r.offset - r.onset)))
    }
}

/// Event-based metrics of `estimated[i]` against `gt.events[i]` over every file.
pub fn evaluate(gt: &GroundTruth, estimated: &[Vec<Ev>], p: &EventParams) -> Result<CountMetrics> {
    p.check()?;
    check_estimated(gt, estimated, "event-based")?;
    let k = gt.classes.len();
    let mut overall = Counts::default();
    let mut class_counts = vec![Counts::default(); k];
    for (refs, sys) in gt.events.iter().zip(estimated) {
        let (o, per_class) = file_counts(refs, sys, k, p);
        overall += &o;
        for (acc, c) in class_counts.iter_mut().zip(&per_class) {
            *acc += c;
        }
    }
    Ok(CountMetrics::finish(overall, class_counts, p.zero_score))
}

/// The counts of one file: overall and per class.
fn file_counts(refs: &[Ev], sys: &[Ev], k: usize, p: &EventParams) -> (Counts, Vec<Counts>) {
    let hit = |r: &Ev, s: &Ev| r.class == s.class && p.times_hit(r, s);
    let (nref, nsys) = (refs.len(), sys.len());
    let matching = bipartite_match(&hit_graph(refs, sys, hit), nref);
    let mut ref_ok = vec![false; nref];
    let mut sys_ok = vec![false; nsys];
    for (r, m) in matching.iter().enumerate() {
        if let Some(s) = *m {
            ref_ok[r] = true;
            sys_ok[s] = true;
        }
    }
    let ntp = ref_ok.iter().filter(|&&b| b).count();
    let mut counted = vec![false; nsys];
    let mut subs = 0usize;
    for r in (0..nref).filter(|&r| !ref_ok[r]) {
        if let Some(s) = (0..nsys).find(|&s| !sys_ok[s] && !counted[s] && p.times_hit(&refs[r], &sys[s])) {
            counted[s] = true;
            subs += 1;
        }
    }
    let overall =
        Counts { nref: nref as f64, nsys: nsys as f64, ntp: ntp as f64, subs: subs as f64, del: (nref - ntp - subs) as f64, ins: (nsys - ntp - subs) as f64 };
    let per_class = (0..k)
        .map(|c| {
            let cr: Vec<Ev> = refs.iter().filter(|e| e.class == c).copied().collect();
            let cs: Vec<Ev> = sys.iter().filter(|e| e.class == c).copied().collect();
            let tp = if cr.is_empty() || cs.is_empty() {
                0
            } else {
                bipartite_match(&hit_graph(&cr, &cs, |r, s| p.times_hit(r, s)), cr.len()).iter().flatten().count()
            };
            Counts { nref: cr.len() as f64, nsys: cs.len() as f64, ntp: tp as f64, subs: 0.0, del: (cr.len() - tp) as f64, ins: (cs.len() - tp) as f64 }
        })
        .collect();
    (overall, per_class)
}

/// The hit graph as sed_eval builds it: keys are system events in the order in which they first
/// appear scanning the hit matrix row by row (reference-major), each with its reference
/// neighbours ascending.
fn hit_graph(refs: &[Ev], sys: &[Ev], hit: impl Fn(&Ev, &Ev) -> bool) -> Vec<(usize, Vec<usize>)> {
    let mut slot: Vec<Option<usize>> = vec![None; sys.len()];
    let mut g: Vec<(usize, Vec<usize>)> = Vec::new();
    for (r, re) in refs.iter().enumerate() {
        for (s, se) in sys.iter().enumerate() {
            if hit(re, se) {
                let i = *slot[s].get_or_insert_with(|| {
                    g.push((s, Vec::new()));
                    g.len() - 1
                });
                g[i].1.push(r);
            }
        }
    }
    g
}

/// Maximum bipartite matching in the visiting order of mir_eval's `bipartite_match` (Hopcroft–Karp):
/// `graph` lists left vertices (system events) in key order with their right neighbours (reference
/// events); returns, per right vertex `0..n_right`, its matched left vertex.
pub fn bipartite_match(graph: &[(usize, Vec<usize>)], n_right: usize) -> Vec<Option<usize>> {
    // Left vertices are addressed by their position in `graph`; translated back at the end.
    let n_left = graph.len();
    let mut matching: Vec<Option<usize>> = vec![None; n_right];
    for (u, (_, adj)) in graph.iter().enumerate() {
        if let Some(&v) = adj.iter().find(|&&v| matching[v].is_none()) {
            matching[v] = Some(u);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Pred {
        Absent,
        Free,
        Via(usize),
    }
    loop {
        // preds[v]: the left vertices of the previous layer that reach v (None = not layered).
        let mut preds: Vec<Option<Vec<usize>>> = vec![None; n_right];
        let mut unmatched: Vec<usize> = Vec::new();
        let mut pred = vec![Pred::Free; n_left];
        for m in matching.iter().flatten() {
            pred[*m] = Pred::Absent;
        }
        let mut layer: Vec<usize> = (0..n_left).filter(|&u| pred[u] == Pred::Free).collect();
        while !layer.is_empty() && unmatched.is_empty() {
            let mut order: Vec<usize> = Vec::new();
            let mut new_layer: Vec<Option<Vec<usize>>> = vec![None; n_right];
            for &u in &layer {
                for &v in &graph[u].1 {
                    if preds[v].is_none() {
                        new_layer[v].get_or_insert_with(|| {
                            order.push(v);
                            Vec::new()
                        });
                        new_layer[v].as_mut().expect("just inserted").push(u);
                    }
                }
            }
            layer.clear();
            for v in order {
                preds[v] = new_layer[v].take();
                match matching[v] {
                    Some(m) => {
                        layer.push(m);
                        pred[m] = Pred::Via(v);
                    }
                    None => unmatched.push(v),
                }
            }
        }
        if unmatched.is_empty() {
            break;
        }
        fn recurse(v: usize, preds: &mut [Option<Vec<usize>>], pred: &mut [Pred], matching: &mut [Option<usize>]) -> bool {
            if let Some(list) = preds[v].take() {
                for u in list {
                    let pu = pred[u];
                    if pu != Pred::Absent {
                        pred[u] = Pred::Absent;
                        let ok = match pu {
                            Pred::Free => true,
                            Pred::Via(w) => recurse(w, preds, pred, matching),
                            Pred::Absent => unreachable!(),
                        };
                        if ok {
                            matching[v] = Some(u);
                            return true;
                        }
                    }
                }
            }
            false
        }
        for v in unmatched {
            recurse(v, &mut preds, &mut pred, &mut matching);
        }
    }
    matching.into_iter().map(|m| m.map(|u| graph[u].0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(onset: f64, offset: f64, class: usize) -> Ev {
        Ev { onset, offset, class }
    }

    fn gt1(events: Vec<Ev>, k: usize) -> GroundTruth {
        GroundTruth { files: vec!["a".into()], durations: vec![10.0], classes: (0..k).map(|c| format!("c{c}")).collect(), events: vec![events] }
    }

    #[test]
    fn collar_boundaries_and_length_percentage() {
        // Reference 1.0–3.0 (length 2: offset tolerance max(0.2, 0.4) = 0.4).
        let gt = gt1(vec![ev(1.0, 3.0, 0)], 1);
        let p = EventParams::default();
        for (s, hit) in [(ev(1.2, 3.4, 0), true), (ev(1.25, 3.0, 0), false), (ev(0.8, 2.6, 0), true), (ev(1.0, 3.45, 0), false)] {
            let m = evaluate(&gt, &[vec![s]], &p).unwrap();
            assert_eq!(m.overall_counts.ntp, if hit { 1.0 } else { 0.0 }, "{s:?}");
        }
    }

    #[test]
    fn counts_f1_and_error_rate_by_hand() {
        // Two classes. Refs: c0 0–1, c0 5–6, c1 2–4. Sys: c0 0.1–1.1 (TP), c1 5.05–6.1 (substitution
        // of the c0 5–6 ref), c1 8–9 (insertion). c1 2–4 is a deletion.
        let gt = gt1(vec![ev(0.0, 1.0, 0), ev(5.0, 6.0, 0), ev(2.0, 4.0, 1)], 2);
        let sys = vec![ev(0.1, 1.1, 0), ev(5.05, 6.1, 1), ev(8.0, 9.0, 1)];
        let m = evaluate(&gt, &[sys], &EventParams::default()).unwrap();
        let o = m.overall_counts;
        assert_eq!((o.nref, o.nsys, o.ntp, o.subs, o.del, o.ins), (3.0, 3.0, 1.0, 1.0, 1.0, 1.0));
        assert!((m.overall.f1 - 1.0 / 3.0).abs() < 1e-15);
        assert!((m.overall.error_rate - 3.0 / (3.0 + f64::EPSILON)).abs() < 1e-15);
        // Class 0: P = 1/1, R = 1/2 → F = 2/3; class 1: P = 0/2, R = 0/1 → F = 0; macro 1/3.
        assert!((m.class_wise[0].f1 - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(m.class_wise[1].f1, 0.0);
        assert!((m.macro_avg.f1 - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(m.class_counts[1].ins, 2.0);
    }

    #[test]
    fn empty_output_and_absent_class() {
        let gt = GroundTruth {
            files: vec!["a".into(), "b".into()],
            durations: vec![10.0, 10.0],
            classes: vec!["x".into(), "y".into()],
            events: vec![vec![ev(0.0, 1.0, 0)], vec![]],
        };
        // No output: zero_score gives P = 0, F = 0; without it P is NaN.
        let m = evaluate(&gt, &[vec![], vec![]], &EventParams::default()).unwrap();
        assert_eq!((m.overall.precision, m.overall.f1, m.class_wise[0].f1), (0.0, 0.0, 0.0));
        assert!(m.class_wise[1].f1.is_nan(), "class y has no reference: recall NaN");
        assert_eq!(m.macro_avg.f1, 0.0, "nanmean skips y");
        let m = evaluate(&gt, &[vec![], vec![]], &EventParams { zero_score: false, ..Default::default() }).unwrap();
        assert!(m.overall.precision.is_nan() && m.overall.f1.is_nan());
        // A detection in the event-free file b is a false positive; class y's insertion rate is 1/eps.
        let m = evaluate(&gt, &[vec![ev(0.0, 1.0, 0)], vec![ev(3.0, 4.0, 1)]], &EventParams::default()).unwrap();
        assert_eq!(m.overall_counts.ins, 1.0);
        assert_eq!(m.class_wise[1].insertion_rate, 1.0 / f64::EPSILON);
        assert!(evaluate(&gt, &[vec![]], &EventParams::default()).is_err());
        assert!(evaluate(&gt, &[vec![ev(0.0, 1.0, 5)], vec![]], &EventParams::default()).unwrap_err().to_string().contains("file 'a'"));
    }

    #[test]
    fn matching_is_maximum() {
        // s0 hits r0 and r1, s1 hits only r0: a greedy match of s0–r0 leaves s1 out; the maximum is 2.
        let graph = vec![(0usize, vec![0usize, 1]), (1, vec![0])];
        let m = bipartite_match(&graph, 2);
        assert_eq!(m.iter().flatten().count(), 2);
        assert_eq!(m, vec![Some(1), Some(0)]);
        // s0:{r0}, s1:{r0, r1}, s2:{r1}: two right vertices, so at most 2 matches.
        let graph = vec![(0usize, vec![0usize]), (1, vec![0, 1]), (2, vec![1])];
        assert_eq!(bipartite_match(&graph, 2).iter().flatten().count(), 2);
        assert_eq!(bipartite_match(&[], 3), vec![None, None, None]);
    }
}
