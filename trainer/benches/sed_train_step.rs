//! One mean-teacher training step of `trainer sed` (student forward + backward, teacher forward,
//! AdamW, EMA — exactly [`SedTrainer::teacher_graph`] + [`SedTrainer::micro_step`] + [`SedTrainer::update`]) on a batch of random
//! features: the step `scripts/compare_train_step.py` times against PyTorch on the same model.
//!
//! Run: `AURAL_BENCH_MODEL=DIR AURAL_BENCH_BATCH=4 AURAL_BENCH_STEPS=3 [AURAL_BENCH_DEVICE=cuda] cargo bench
//! -p aural-trainer --bench sed_train_step` (default: the small AST-SED of the golden fixtures, batch 4,
//! 10 steps, CPU). On a GPU device every tensor stays there; the time includes the loss read-backs.
//! Batch layout: the first half strongly labelled, then a quarter weak, the rest unlabelled; losses as
//! the trainer (frame BCE + 0.5 clip BCE + consistency weight 1 × MSE of both outputs).

use std::time::Instant;

use aural_models::ast_sed::train::TrainableAstSed;
use aural_runtime::testing::{fixture_path, rand_vec};
use aural_runtime::Device;
use aural_trainer::config::SedTrainConfig;
use aural_trainer::data::Batch;
use aural_trainer::sed::{SedTrainer, StepLog};

fn main() {
    aural_runtime::malloc::keep_all_freed_memory();
    let dir = std::env::var("AURAL_BENCH_MODEL").map(Into::into).unwrap_or_else(|_| fixture_path("ast_sed_small"));
    let b: usize = std::env::var("AURAL_BENCH_BATCH").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let steps: usize = std::env::var("AURAL_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dev = match std::env::var("AURAL_BENCH_DEVICE") {
        Ok(d) => Device::parse(&d).expect("AURAL_BENCH_DEVICE").0,
        Err(_) => Device::Cpu,
    };
    dev.check().expect("the device is not usable");
    let model = TrainableAstSed::load(&dir, dev).expect("loading the model");
    let c = model.config.clone();
    let toml = format!(
        "[model]\ninit = {:?}\n[data]\nstrong = {{ audio = \"-\", tsv = \"-\" }}\n[train]\nbatch = {{ strong = 1 }}\nsteps = 1000\nlr = 1e-4\nlr_ast = 5e-6\n",
        dir.display().to_string()
    );
    let cfg = SedTrainConfig::from_text(&toml, "bench.toml".as_ref(), ".".as_ref()).unwrap();
    let mut tr = SedTrainer::new(cfg, model, dev).unwrap();
    let (l, m, f, k) = (c.ast.max_length, c.ast.num_mel_bins, c.frames(), c.classes.len());
    let x: Vec<f32> = rand_vec(b * l * m, 1).iter().map(|v| v * 1.5).collect();
    let strong: Vec<f32> = rand_vec(b * f * k, 2).iter().map(|v| if *v > 0.6 { 1.0 } else { 0.0 }).collect();
    let weak: Vec<f32> = rand_vec(b * k, 3).iter().map(|v| if *v > 0.5 { 1.0 } else { 0.0 }).collect();
    let batch = Batch { micro: 0, x, strong, weak, files: Vec::new(), b, strong_range: 0..b / 2, weak_range: b / 2..b / 2 + b.div_ceil(4) };
    let mut times = Vec::new();
    for i in 0..steps + 1 {
        let t = Instant::now();
        let mut log = StepLog::default();
        let teacher = tr.teacher_graph().unwrap();
        let mut g = tr.micro_step(&batch, Some(&teacher), 1.0, 1.0, &mut log).unwrap();
        tr.update(&mut g, 1000, 100).unwrap();
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "aural: AST-SED mean-teacher train step on {dev}, batch {b}, {} parameters, {} threads: median {:.1} ms, min {:.1} ms over {steps} steps",
        tr.model.store.numel(),
        rayon::current_num_threads(),
        1e3 * times[times.len() / 2],
        1e3 * times[0]
    );
}
