//! `aural separate`: label-queried source separation with a ResUNet30 checkpoint (the DCASE 2025
//! task 4 baseline's ResUNet / ResUNetK, AudioSep's query-conditioned model).
//!
//! Per file: audio at the model's rate with all its channels (a channel count other than the
//! model's is refused) → one pass per label (ResUNetK: up to three labels per pass) through
//! `separator::separate_long` (clips longer than `--chunk` seconds in overlapping chunks with a
//! linear crossfade) → `OUTDIR/<stem>_<Label>.wav`, 32-bit float, the model's rate, one channel per
//! output channel (the DCASE naming). A query-conditioned model takes `--conditions FILE` (tensor
//! `query`, the condition_size vector) and writes `OUTDIR/<stem>_query.wav`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aural::models::audio::{self, Channels};
use aural::models::separator::{label_vector, separate_long, ChunkOpts, Conditioning, ResUNet};
use aural::runtime::safetensors_io;

#[derive(clap::Args)]
pub struct Args {
    /// Separator checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// WAV files (any PCM width or float, any rate: resampled to the model's; the model's channel count).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Class to extract (repeat for several); one of the model's classes.
    #[arg(long = "label", value_name = "CLASS")]
    labels: Vec<String>,
    /// Output folder (created if missing).
    #[arg(long, value_name = "OUTDIR")]
    out: PathBuf,
    /// What the model is conditioned on besides the label: a safetensors file with tensor `query`
    /// (condition_size values) for a query-conditioned model (AudioSep: a CLAP embedding).
    #[arg(long, value_name = "FILE.safetensors")]
    conditions: Option<PathBuf>,
    /// Clips up to this many seconds run in one pass; longer ones in chunks of this length.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    chunk: f64,
    /// Overlap of consecutive chunks (crossfaded), in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    overlap: f64,
    /// GPU: run the 3×3 convolutions on tensor cores (f16 weights and activations, f32 accumulation).
    #[arg(long)]
    half: bool,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// One pass: the condition vector and the names its output slots are written under (None: silence).
struct Pass {
    cond: Vec<f32>,
    names: Vec<Option<String>>,
}

fn passes(model: &ResUNet, a: &Args) -> Result<Vec<Pass>> {
    let c = &model.config;
    match c.conditioning {
        Conditioning::Query => {
            let Some(path) = &a.conditions else {
                bail!("this separator is conditioned on a query vector: give --conditions FILE.safetensors with a tensor 'query' ({} values)", c.condition_size)
            };
            if !a.labels.is_empty() {
                bail!("this separator is conditioned on a query vector, not on labels: drop --label");
            }
            let t = safetensors_io::load(path).with_context(|| format!("reading {}", path.display()))?;
            let q = t
                .get("query")
                .with_context(|| format!("{}: no tensor 'query' (found: {})", path.display(), t.keys().cloned().collect::<Vec<_>>().join(", ")))?;
            if q.numel() != c.condition_size {
                bail!("{}: tensor 'query' has shape {:?}; the model takes {} values", path.display(), q.shape(), c.condition_size);
            }
            let cond = q.to_vec()?;
            if cond.iter().any(|v| !v.is_finite()) {
                bail!("{}: tensor 'query' holds NaN or infinite values", path.display());
            }
            Ok(vec![Pass { cond, names: vec![Some("query".into())] }])
        }
        Conditioning::Label => {
            if a.labels.is_empty() {
                bail!("give at least one --label CLASS; the separator's classes are: {}", c.classes.join(", "));
            }
            if let Some(p) = &a.conditions {
                let t = safetensors_io::load(p).with_context(|| format!("reading {}", p.display()))?;
                bail!(
                    "{}: this label-conditioned separator takes no extra conditions (the file holds: {})",
                    p.display(),
                    t.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            let labels: Vec<&str> = a.labels.iter().map(String::as_str).filter(|l| seen.insert(*l)).collect();
            let s = c.target_sources_num;
            labels
                .chunks(s)
                .map(|group| {
                    let mut names: Vec<Option<String>> = group.iter().map(|l| Some(l.to_string())).collect();
                    names.resize(s, None);
                    Ok(Pass { cond: label_vector(c, group)?, names })
                })
                .collect()
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    if !(a.chunk.is_finite() && a.chunk > 0.0) || !(a.overlap.is_finite() && a.overlap >= 0.0 && a.overlap < a.chunk) {
        bail!("--chunk must be a positive number of seconds and --overlap in [0, chunk), got {} and {}", a.chunk, a.overlap);
    }
    let dev = super::resolve_device(&a.device)?;
    let t0 = Instant::now();
    let mut model = ResUNet::load(&a.model, dev).with_context(|| format!("loading the separator checkpoint {}", a.model.display()))?;
    if a.half {
        model.half_convs().context("--half")?;
    }
    if !model.unexpected.is_empty() {
        eprintln!(
            "warning: {} tensor(s) of the checkpoint are not parameters of this model and were ignored: {}",
            model.unexpected.len(),
            model.unexpected.join(", ")
        );
    }
    let c = model.config.clone();
    eprintln!(
        "model: ResUNet30, {} input channel(s), {} source(s) per pass, n_fft {} hop {}, {} Hz ({:.2} s to load)",
        c.input_channels,
        c.target_sources_num,
        c.window_size,
        c.hop_size,
        c.sample_rate,
        t0.elapsed().as_secs_f64()
    );
    let passes = passes(&model, &a)?;
    let stems = super::input_stems(&a.inputs, "<label>.wav")?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let opts = ChunkOpts { chunk_s: a.chunk, overlap_s: a.overlap };
    let bar = indicatif::ProgressBar::new((a.inputs.len() * passes.len()) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} passes, {elapsed} elapsed, ETA {eta} {msg}").expect("valid template"));
    if a.inputs.len() * passes.len() == 1 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for (p, stem) in a.inputs.iter().zip(&stems) {
        let t = Instant::now();
        bar.set_message(stem.clone());
        let au = audio::load(p, c.sample_rate, Channels::All)?;
        if au.channels.len() != c.input_channels {
            bail!(
                "{}: the file has {} channel(s) but this separator takes {}-channel input{}",
                p.display(),
                au.channels.len(),
                c.input_channels,
                if c.input_channels == 4 { " (the 4 microphones of a DCASE 2025 task 4 mixture)" } else { "" }
            );
        }
        let n = au.num_samples();
        if n <= c.window_size / 2 {
            bail!("{}: {n} samples at {} Hz is too short: the separator needs more than n_fft/2 = {} samples", p.display(), c.sample_rate, c.window_size / 2);
        }
        let mut written = Vec::new();
        for pass in &passes {
            let y = separate_long(&model, &au.channels, &pass.cond, &opts, |_, _| {}).with_context(|| format!("separating {}", p.display()))?;
            let y = y.to_vec()?;
            let o = c.output_channels;
            for (slot, name) in pass.names.iter().enumerate() {
                let Some(name) = name else { continue };
                let out = a.out.join(format!("{stem}_{name}.wav"));
                let chans: Vec<&[f32]> = (0..o).map(|k| &y[(slot * o + k) * n..][..n]).collect();
                audio::write_wav(&out, c.sample_rate, &chans)?;
                written.push(out);
            }
            bar.inc(1);
        }
        bar.suspend(|| {
            eprintln!(
                "{}: {:.2} s, wrote {} ({:.2} s)",
                p.display(),
                n as f64 / c.sample_rate as f64,
                written.iter().map(|w| w.display().to_string()).collect::<Vec<_>>().join(", "),
                t.elapsed().as_secs_f64()
            )
        });
    }
    bar.finish_and_clear();
    Ok(())
}
