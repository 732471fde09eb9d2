//! Criterion bench of the DCASE SED metrics (models::sed::metrics) on the workload: 1000
//! ten-second files × 10 classes × 156-frame score tables (DESED's frame rate), 1–4 reference events
//! per file, predictions = the tables thresholded at 0.5. Ids `metrics/cpu/<metric>/f64/1000x10x156`.
//! The inputs are in memory (reading the TSVs is timed by scripts/compare_metrics.py, which also runs
//! sed_eval, sed_scores_eval and psds_eval on the same kind of set).
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use aural::models::sed::metrics::report::{desed_thresholds, operating_points, threshold_events};
use aural::models::sed::metrics::{event_based, psds, psds_op, segment_based, Ev, GroundTruth, PsdsParams, ScoreTable};
use aural::models::sed::MedianOn;

/// xorshift64*: a fixed synthetic set without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn synthetic(files: usize, classes: usize, frames: usize) -> (GroundTruth, Vec<ScoreTable>) {
    let mut r = Rng(0x9E3779B97F4A7C15);
    let hop = 10.0 / frames as f64;
    let ts: Vec<f64> = (0..=frames).map(|f| ((f as f64 * hop) * 1e6).round() / 1e6).collect();
    let (mut events, mut tables) = (Vec::new(), Vec::new());
    for _ in 0..files {
        let mut ev = Vec::new();
        let mut s: Vec<f64> = (0..frames * classes).map(|_| 0.35 * r.next()).collect();
        let n = 1 + (r.next() * 4.0) as usize;
        let mut used = vec![false; classes];
        for _ in 0..n {
            let c = (r.next() * classes as f64) as usize % classes;
            if std::mem::replace(&mut used[c], true) {
                continue;
            }
            let on = (r.next() * 8.5 * 1000.0).round() / 1000.0;
            let off = ((on + 0.3 + 3.7 * r.next()).min(10.0) * 1000.0).round() / 1000.0;
            ev.push(Ev { onset: on, offset: off, class: c });
            let (a, b) = (on + 0.6 * r.next() - 0.3, off + 0.6 * r.next() - 0.3);
            let amp = 0.3 + 0.5 * r.next();
            for f in 0..frames {
                let t = (ts[f] + ts[f + 1]) / 2.0;
                if t >= a && t <= b {
                    s[f * classes + c] += amp;
                }
            }
        }
        for v in &mut s {
            *v = (v.clamp(0.0, 1.0) * 1e4).round() / 1e4;
        }
        events.push(ev);
        tables.push(ScoreTable::new(ts.clone(), classes, s).unwrap());
    }
    let gt = GroundTruth {
        files: (0..files).map(|i| format!("file_{i:05}")).collect(),
        durations: vec![10.0; files],
        classes: (0..classes).map(|c| format!("class_{c:02}")).collect(),
        events,
    };
    (gt, tables)
}

fn bench(c: &mut Criterion) {
    let (gt, tables) = synthetic(1000, 10, 156);
    let pred: Vec<Vec<Ev>> = tables.iter().map(|t| threshold_events(t, 0.5, 1, MedianOn::Scores)).collect();
    let ops = operating_points(&tables, &desed_thresholds(50), 1, MedianOn::Scores);
    let case = "1000x10x156";
    let mut g = c.benchmark_group("metrics");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    g.bench_function(format!("cpu/psds1/f64/{case}"), |b| b.iter(|| psds::psds(&gt, &tables, &PsdsParams::SCENARIO1).unwrap()));
    g.bench_function(format!("cpu/psds2/f64/{case}"), |b| b.iter(|| psds::psds(&gt, &tables, &PsdsParams::SCENARIO2).unwrap()));
    g.bench_function(format!("cpu/operating_points/f64/{case}"), |b| b.iter(|| operating_points(&tables, &desed_thresholds(50), 1, MedianOn::Scores)));
    g.bench_function(format!("cpu/psds1_op/f64/{case}"), |b| b.iter(|| psds_op::psds_operating_points(&gt, &ops, &PsdsParams::SCENARIO1).unwrap()));
    g.bench_function(format!("cpu/psds2_op/f64/{case}"), |b| b.iter(|| psds_op::psds_operating_points(&gt, &ops, &PsdsParams::SCENARIO2).unwrap()));
    g.bench_function(format!("cpu/event_based/f64/{case}"), |b| b.iter(|| event_based::evaluate(&gt, &pred, &event_based::EventParams::default()).unwrap()));
    g.bench_function(format!("cpu/segment_based/f64/{case}"), |b| b.iter(|| segment_based::evaluate(&gt, &pred, 1.0).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
