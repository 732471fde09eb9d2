//! One `trainer separator` step (forward with training-mode BatchNorm, −SNR, backward, gradient
//! clipping 0.5, AdamW — exactly [`SepTrainer::micro_step`] + [`SepTrainer::update`]) on a random
//! batch: the step `scripts/compare_separator_train_step.py` times against PyTorch on the same model.
//!
//! Run: `AURAL_BENCH_MODEL=DIR AURAL_BENCH_BATCH=2 AURAL_BENCH_SECONDS=10 AURAL_BENCH_STEPS=3
//! [AURAL_BENCH_DEVICE=cuda] cargo bench -p aural-trainer --bench separator_train_step` (default: the
//! small separator of the golden fixtures, batch 2, 1 s, 5 steps, CPU). The first step is a warm-up
//! and not counted. `AURAL_PROFILE_BACKWARD=1` prints the backward's time per op kind.

use std::time::Instant;

use aural_models::separator::train::TrainableSeparator;
use aural_runtime::testing::{fixture_path, rand_vec};
use aural_runtime::{Device, Tensor};
use aural_trainer::config::SepTrainConfig;
use aural_trainer::separator::{SepBatch, SepTrainer};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d)
}

fn main() {
    aural_runtime::malloc::keep_all_freed_memory();
    let dir = std::env::var("AURAL_BENCH_MODEL").map(Into::into).unwrap_or_else(|_| fixture_path("separator_train_small"));
    let (b, secs, steps): (usize, f64, usize) = (env("AURAL_BENCH_BATCH", 2), env("AURAL_BENCH_SECONDS", 1.0), env("AURAL_BENCH_STEPS", 5));
    let dev = match std::env::var("AURAL_BENCH_DEVICE") {
        Ok(d) => Device::parse(&d).expect("AURAL_BENCH_DEVICE").0,
        Err(_) => Device::Cpu,
    };
    dev.check().expect("the device is not usable");
    let model = TrainableSeparator::load(&dir, dev).expect("loading the model");
    let c = model.config.clone();
    let toml = format!(
        "[model]\ninit = {:?}\n[data]\ntrain = {{ soundscape = \"-\", oracle_target = \"-\" }}\n[train]\nbatch = {b}\nsteps = 1000\nlr = 1e-4\n",
        dir.display().to_string()
    );
    let cfg = SepTrainConfig::from_text(&toml, "bench.toml".as_ref(), ".".as_ref()).unwrap();
    let mut tr = SepTrainer::new(cfg, model, dev);
    let len = (secs * c.sample_rate as f64) as usize;
    let mix: Vec<f32> = rand_vec(b * c.input_channels * len, 1).iter().map(|v| v * 0.3).collect();
    let target: Vec<f32> = mix.chunks(len).step_by(c.input_channels).flat_map(|ch0| ch0.iter().map(|v| 0.5 * v)).collect();
    let mut labels = vec![0f32; b * c.label_len];
    for i in 0..b {
        labels[i * c.label_len + (3 + 5 * i) % c.label_len] = 1.0;
    }
    let batch = SepBatch {
        mixture: Tensor::from_vec(mix, &[b, c.input_channels, len]).unwrap(),
        labels: Tensor::from_vec(labels, &[b, c.label_len]).unwrap(),
        target: Tensor::from_vec(target, &[b, 1, len]).unwrap(),
        files: Vec::new(),
    };
    let mut times = Vec::new();
    for i in 0..=steps {
        let t = Instant::now();
        let (loss, mut grads) = tr.micro_step(&batch).unwrap();
        let t_step = t.elapsed().as_secs_f64();
        tr.update(&mut grads, 1000, 100).unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!("step {i}: {s:.3} s (forward + backward {t_step:.3} s, clipping + AdamW {:.3} s), loss {loss:.4}", s - t_step);
        if i > 0 {
            times.push(s);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "aural: separator train step on {dev}, batch {b}, {secs} s, {} parameters, {} threads: median {:.1} ms, min {:.1} ms over {steps} steps",
        tr.model.store.numel(),
        rayon::current_num_threads(),
        1e3 * times[times.len() / 2],
        1e3 * times[0]
    );
}
