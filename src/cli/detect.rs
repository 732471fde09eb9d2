//! `aural detect`: sound event detection with an AST-SED / AST-GRU checkpoint.
//!
//! Per file: audio at the model's rate, mono (models::audio; mixed down unless `--channel`) →
//! `AstSed::detect` (fbank, windows of max_length frames, stitched for long clips; see
//! models::ast_sed::detect) → the config's post-processing (per-class median filter and
//! thresholds, events clipped to the audio's length) → DCASE TSV (`filename onset offset
//! event_label`) on stdout, or JSON with `--json`, or into `--tsv FILE`. `--scores` keeps the scores
//! before post-processing (`--scores-dir` as sed_scores_eval tables for `aural evaluate`), `--plot`
//! draws them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aural::models::ast_sed::{AstSed, DetectOpts};
use aural::models::audio::{self, Channels};
use aural::models::sed::metrics::ScoreTable;
use aural::models::sed::{events_to_json, events_to_tsv, write_tsv, Event, FrameGeometry, FrameScores};
use aural::runtime::{safetensors_io, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// AST-SED or AST-GRU checkpoint directory (config.json + model.safetensors); default: the
    /// builtin demo model (ten synthetic classes: beep, chirp, siren, knock, bell, whistle,
    /// click_train, noise_burst, buzz, babble).
    #[arg(long)]
    model: Option<PathBuf>,
    /// WAV files (any PCM width or float, any channel count, any rate: resampled to the model's).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write the DCASE TSV here instead of stdout.
    #[arg(long, value_name = "OUT.tsv")]
    tsv: Option<PathBuf>,
    /// Print the events as JSON on stdout (an array of {filename, onset, offset, event_label}).
    #[arg(long)]
    json: bool,
    /// Write the scores before post-processing: `strong` (frames × classes) and `weak` (classes);
    /// `<file stem>/strong`, `<file stem>/weak` for several inputs.
    #[arg(long, value_name = "OUT.safetensors")]
    scores: Option<PathBuf>,
    /// Write each file's frame scores (post-sigmoid, before post-processing) as a sed_scores_eval
    /// table `DIR/<file id>.tsv` (`onset offset <class>…`, one row per output frame, clipped to the
    /// audio's length): what `aural evaluate --scores DIR` reads.
    #[arg(long, value_name = "DIR")]
    scores_dir: Option<PathBuf>,
    /// Draw spectrogram, frame probabilities and events to a PNG (several inputs: OUT.<stem>.png).
    #[arg(long, value_name = "OUT.png")]
    plot: Option<PathBuf>,
    /// Hop between the windows of clips longer than the model's window, in seconds
    /// (default: half a window; at most one window).
    #[arg(long, value_name = "SECONDS")]
    window_hop: Option<f64>,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Use this channel (0-based) instead of mixing down to mono.
    #[arg(long)]
    channel: Option<usize>,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// `dir/name.png` → `dir/name.<stem>.png` (several inputs).
fn per_file(path: &Path, stem: &str) -> PathBuf {
    let base = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "png".into());
    path.with_file_name(format!("{base}.{stem}.{ext}"))
}

pub fn run(a: Args) -> Result<()> {
    let dev = super::resolve_device(&a.device)?;
    let t0 = Instant::now();
    let model = match &a.model {
        Some(m) => AstSed::load(m, dev).with_context(|| format!("loading the AST-SED checkpoint {}", m.display()))?,
        None => {
            eprintln!("no --model: using {}, trained on synthetic soundscapes of its ten classes ({})", aural::demo::NAME, aural::demo::classes().join(", "));
            aural::demo::load(dev)?
        }
    };
    if !model.unexpected.is_empty() {
        eprintln!(
            "warning: {} tensor(s) of the checkpoint are not parameters of this model and were ignored: {}",
            model.unexpected.len(),
            model.unexpected.join(", ")
        );
    }
    let c = &model.config;
    eprintln!(
        "model: {:?}, {} AST blocks of {}, {} classes, {} frames per {:.2} s window ({:.2} s to load)",
        c.architecture,
        c.ast_layers,
        c.ast.hidden_size,
        c.classes.len(),
        c.frames(),
        c.ast.max_length as f64 * 0.01,
        t0.elapsed().as_secs_f64()
    );
    let mut post = model.config.post_process()?;
    if let Some(h) = a.window_hop.filter(|h| !(h.is_finite() && *h > 0.0)) {
        bail!("--window-hop must be a positive number of seconds, got {h}");
    }
    let opts = DetectOpts { hop_frames: a.window_hop.map(|s| ((s / 0.01).round() as usize).max(1)), batch: a.batch.max(1), ..Default::default() };
    let ch = a.channel.map(Channels::Select).unwrap_or(Channels::MixDown);
    let several = a.inputs.len() > 1;
    let bar = if several {
        let b = indicatif::ProgressBar::new(a.inputs.len() as u64);
        b.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files, {elapsed} elapsed, ETA {eta} {msg}").expect("valid template"));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut events: Vec<Event> = Vec::new();
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let stems = super::input_stems(&a.inputs, "…")?;
    if let Some(d) = &a.scores_dir {
        // Tables are named `<stem>.tsv`: input_stems has refused two inputs with one stem.
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    for (p, stem) in a.inputs.iter().zip(stems) {
        let t = Instant::now();
        bar.set_message(stem.clone());
        let au = audio::load(p, c.sample_rate, ch)?;
        let n = au.num_samples();
        let wave = au.channels.into_iter().next().unwrap_or_default();
        let sc = model.detect(&wave, &opts).with_context(|| format!("detecting events in {}", p.display()))?;
        let name = p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let duration = n as f64 / c.sample_rate as f64;
        post.clip_duration = Some(duration);
        let ev = post.events(&name, &sc.strong)?;
        bar.suspend(|| eprintln!("{}: {:.2} s, {} window(s), {} event(s) ({:.2} s)", p.display(), duration, sc.windows, ev.len(), t.elapsed().as_secs_f64()));
        if let Some(plot_path) = &a.plot {
            let path = if several { per_file(plot_path, &stem) } else { plot_path.clone() };
            super::plot::plot(
                &path,
                &super::plot::PlotInput {
                    title: &name,
                    fbank: &sc.fbank,
                    mel: c.ast.num_mel_bins,
                    strong: &sc.strong,
                    geometry: post.geometry,
                    labels: &post.labels,
                    thresholds: &post.thresholds,
                    events: &ev,
                    duration_s: duration.max(sc.strong.frames as f64 * post.geometry.hop_s),
                },
            )?;
        }
        if let Some(d) = &a.scores_dir {
            let table = score_table(&sc.strong, &post.geometry, duration, &post.labels)?;
            super::write_atomic(&d.join(format!("{stem}.tsv")), table.as_bytes())?;
        }
        if a.scores.is_some() {
            let key = |what: &str| {
                if several {
                    format!("{stem}/{what}")
                } else {
                    what.to_string()
                }
            };
            let k = sc.weak.len();
            tensors.push((key("strong"), Tensor::from_vec(sc.strong.data.clone(), &[sc.strong.frames, sc.strong.classes])?));
            tensors.push((key("weak"), Tensor::from_vec(sc.weak.clone(), &[k])?));
        }
        events.extend(ev);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(s) = &a.scores {
        safetensors_io::save(s, tensors.iter().map(|(k, t)| (k.as_str(), t))).with_context(|| format!("writing {}", s.display()))?;
    }
    if let Some(tsv) = &a.tsv {
        super::write_atomic(tsv, events_to_tsv(&events).as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", events_to_json(&events)?)?;
    } else if a.tsv.is_none() {
        write_tsv(&mut out, &events)?;
    }
    Ok(())
}

/// A sed_scores_eval score table: header `onset offset <class>…`, then
/// [`ScoreTable::from_frame_scores`]'s rows.
fn score_table(s: &FrameScores, g: &FrameGeometry, duration: f64, labels: &[String]) -> Result<String> {
    let t = ScoreTable::from_frame_scores(s, g, duration)?;
    let mut out = format!("onset\toffset\t{}\n", labels.join("\t"));
    for f in 0..t.frames() {
        out += &format!("{}\t{}", t.timestamps[f], t.timestamps[f + 1]);
        for c in 0..t.classes {
            out += &format!("\t{}", s.get(f, c));
        }
        out.push('\n');
    }
    Ok(out)
}
