//! `aural s5`: the DCASE 2025 task 4 system end to end — the M2D tagger names the classes in a
//! 4-channel mixture, the separator extracts each one.
//!
//! Per mixture: the WAV with all its channels (the separator's channel count; the models' rate, or
//! `--resample`) → the tagger on the reference channel → label selection (threshold, 1–3 labels,
//! class-index order) → one separator pass per label (one ResUNetK pass for up to three) →
//! `OUTDIR/<stem>_<Label>.wav` (no file for 'silence'), and `OUTDIR/labels.tsv` (`filename labels`,
//! labels comma-separated, in slot order without 'silence'); `--json` prints the labels and the
//! probabilities. CP-JKU's system (seed 003): `--sed DIR` adds the stage-2 SED model between the two,
//! whose strong logits and hidden states condition the separator (time-FiLM, injection);
//! `--iterations N` sets the iterative separator's passes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aural::models::audio::{self, Channels};
use aural::models::m2d::{M2dSed, M2dTagger};
use aural::models::s5::S5System;
use aural::models::separator::{ChunkOpts, ResUNet};

#[derive(clap::Args)]
pub struct Args {
    /// M2D tagger checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    tagger: PathBuf,
    /// Separator checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    separator: PathBuf,
    /// Mixtures: WAV files with the separator's channel count (4 for the DCASE 2025 task 4 data).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long, value_name = "OUTDIR")]
    out: PathBuf,
    /// CP-JKU's stage-2 SED model checkpoint (architecture m2d_sed), for a separator with time-FiLM
    /// or embedding injection.
    #[arg(long, value_name = "DIR")]
    sed: Option<PathBuf>,
    /// Passes of an iterative separator (default: its config's `iterations`).
    #[arg(long, value_name = "N")]
    iterations: Option<usize>,
    /// Label selection threshold on the tagger's clip probabilities (default: the tagger config's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Resample mixtures at another rate to the models' (off by default: the task is 32 kHz).
    #[arg(long)]
    resample: bool,
    /// Print a JSON array of {filename, labels, probabilities} on stdout.
    #[arg(long)]
    json: bool,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(t) = a.threshold.filter(|t| !(t.is_finite() && (0.0..=1.0).contains(t))) {
        bail!("--threshold must be a probability in [0, 1], got {t}");
    }
    let dev = super::resolve_device(&a.device)?;
    let t0 = Instant::now();
    let tagger = M2dTagger::load(&a.tagger, dev).with_context(|| format!("loading the tagger checkpoint {}", a.tagger.display()))?;
    let separator = ResUNet::load(&a.separator, dev).with_context(|| format!("loading the separator checkpoint {}", a.separator.display()))?;
    for (what, list) in [("tagger", &tagger.unexpected), ("separator", &separator.unexpected)] {
        if !list.is_empty() {
            eprintln!("warning: {} tensor(s) of the {what} checkpoint are not parameters of the model and were ignored: {}", list.len(), list.join(", "));
        }
    }
    if a.iterations == Some(0) {
        bail!("--iterations must be at least 1");
    }
    if a.iterations.is_some() && separator.config.iterations == 0 {
        bail!("--iterations: this separator is not iterative (its config has \"iterations\": 0)");
    }
    let system = match &a.sed {
        Some(dir) => {
            if !separator.config.needs_sed() {
                bail!("--sed: this separator uses neither time-FiLM nor embedding injection");
            }
            let sed = M2dSed::load(dir, dev).with_context(|| format!("loading the SED model checkpoint {}", dir.display()))?;
            if !sed.unexpected.is_empty() {
                eprintln!(
                    "warning: {} tensor(s) of the SED checkpoint are not parameters of the model and were ignored: {}",
                    sed.unexpected.len(),
                    sed.unexpected.join(", ")
                );
            }
            S5System::with_sed(tagger, separator, sed, a.iterations)?
        }
        None => {
            let mut s = S5System::new(tagger, separator)?;
            s.iterations = a.iterations;
            s
        }
    };
    let (rate, nch) = (system.separator.config.sample_rate, system.separator.config.input_channels);
    eprintln!(
        "models loaded ({:.2} s): tagger {} blocks of {}, separator {} channel(s) in, {} source(s) per pass",
        t0.elapsed().as_secs_f64(),
        system.tagger.config.depth,
        system.tagger.config.embed_dim,
        nch,
        system.separator.config.target_sources_num
    );
    let stems = super::input_stems(&a.inputs, "<label>.wav")?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let bar = indicatif::ProgressBar::new(a.inputs.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} mixtures, {elapsed} elapsed, ETA {eta} {msg}").expect("valid template"));
    if a.inputs.len() == 1 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tsv = String::from("filename\tlabels\n");
    let mut json = Vec::new();
    for (p, stem) in a.inputs.iter().zip(&stems) {
        let t = Instant::now();
        bar.set_message(stem.clone());
        let raw = audio::read_wav(p)?;
        if raw.num_samples() == 0 {
            bail!("{}: the WAV holds no audio samples", p.display());
        }
        if raw.sample_rate != rate && !a.resample {
            bail!("{}: the mixture is at {} Hz but the models run at {rate} Hz (pass --resample to convert it)", p.display(), raw.sample_rate);
        }
        if raw.channels.len() != nch {
            bail!("{}: the mixture has {} channel(s) but the separator takes {nch}", p.display(), raw.channels.len());
        }
        let mix = audio::resample(p, audio::select_channels(p, raw, Channels::All)?, rate)?;
        let out = system.run(&mix.channels, a.threshold, &ChunkOpts::default()).with_context(|| format!("processing {}", p.display()))?;
        for (label, chans) in &out.sources {
            let refs: Vec<&[f32]> = chans.iter().map(Vec::as_slice).collect();
            audio::write_wav(a.out.join(format!("{stem}_{label}.wav")), rate, &refs)?;
        }
        let name = p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let labels: Vec<&str> = out.sources.iter().map(|(l, _)| l.as_str()).collect();
        tsv.push_str(&format!("{name}\t{}\n", labels.join(",")));
        let probs: serde_json::Map<String, serde_json::Value> =
            system.tagger.config.classes.iter().cloned().zip(out.probabilities.iter().map(|&p| serde_json::Value::from(p as f64))).collect();
        json.push(serde_json::json!({"filename": name, "labels": labels, "slots": out.slots, "probabilities": probs}));
        bar.suspend(|| {
            eprintln!("{}: {} ({:.2} s)", p.display(), if labels.is_empty() { "no label".to_string() } else { labels.join(", ") }, t.elapsed().as_secs_f64())
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    super::write_atomic(&a.out.join("labels.tsv"), tsv.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}
