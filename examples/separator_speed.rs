//! Times the separator's forward pass (what `scripts/compare_separator.py` compares with PyTorch):
//! `cargo run --release --example separator_speed -- CHECKPOINT_DIR IO.safetensors [REPS]`.
//! IO holds `mixture` (1, C, L), `label_vector` (1, label_len) and PyTorch's `waveform` (and, for the
//! CP-JKU separator, `strong_logits` and `embeddings`, its conditions). Prints one
//! JSON line per repetition (seconds per forward, and the seconds between the model's stages: STFT +
//! network input, each encoder/decoder block, the mask, the iSTFT) and the SNR vs PyTorch, then the resident set size before the first pass and at its peak.

use std::time::Instant;

use aural::models::separator::{Conditions, ResUNet};
use aural::runtime::{safetensors_io, Device};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 3, "usage: separator_speed CHECKPOINT_DIR IO.safetensors [REPS]");
    let reps: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let model = ResUNet::load(&args[1], Device::Cpu)?;
    let io = safetensors_io::load(&args[2])?;
    let (mixture, cond) = (&io["mixture"], io.get("label_vector").or_else(|| io.get("query")).expect("label_vector or query"));
    let base_rss = status_mb("VmRSS:");
    for _ in 0..reps {
        let t0 = Instant::now();
        let mut last = t0;
        let mut stages = Vec::new();
        let extra = Conditions { strong_logits: io.get("strong_logits"), embeddings: io.get("embeddings"), iterations: None };
        let y = model.forward_with(mixture, cond, &extra, &mut |k, _| {
            let now = Instant::now();
            // The iterative model passes every stage once per pass: summed per stage.
            let k = if k.starts_with("pass") { "istft" } else { k };
            match stages.iter_mut().find(|(name, _)| name == k) {
                Some((_, t)) => *t += (now - last).as_secs_f64(),
                None => stages.push((k.to_string(), (now - last).as_secs_f64())),
            }
            last = now;
            Ok(())
        })?;
        let total = t0.elapsed().as_secs_f64();
        stages.push(("istft".into(), (Instant::now() - last).as_secs_f64()));
        let (got, want) = (y.to_vec()?, io["waveform"].to_vec()?);
        let s: f64 = want.iter().map(|&x| (x as f64).powi(2)).sum();
        let n: f64 = got.iter().zip(&want).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        let stages: serde_json::Map<String, serde_json::Value> = stages.into_iter().map(|(k, v)| (k, v.into())).collect();
        println!("{}", serde_json::json!({"forward_s": total, "snr_db": 10.0 * (s / n.max(1e-300)).log10(), "stages": stages}));
    }
    println!("{}", serde_json::json!({"base_rss_mb": base_rss, "peak_rss_mb": status_mb("VmHWM:")}));
    Ok(())
}

/// A memory figure of this process from /proc/self/status (Linux), in MB; 0 elsewhere.
fn status_mb(key: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}
