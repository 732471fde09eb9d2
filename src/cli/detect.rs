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
use aural::models::ast_sed::{AstSed, ClipScores, DetectOpts, Detector};
use aural::models::audio::Channels;
use aural::models::sed::metrics::ScoreTable;
use aural::models::sed::{events_to_json, events_to_tsv, write_tsv, Event, FrameGeometry, FrameScores, PostProcess};
use aural::runtime::{safetensors_io, Tensor};

use super::input::{InputOpts, Msg};

#[derive(clap::Args)]
pub struct Args {
    /// AST-SED or AST-GRU checkpoint directory (config.json + model.safetensors); default: the
    /// builtin demo model (ten synthetic classes: beep, chirp, siren, knock, bell, whistle,
    /// click_train, noise_burst, buzz, babble).
    #[arg(long)]
    model: Option<PathBuf>,
    /// WAV files (any PCM width or float, any channel count, any rate: resampled to the model's);
    /// `-` reads a WAV stream (or, with --raw-format, headerless PCM) from stdin and prints each
    /// event as soon as no later window can change it.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// stdin is headerless little-endian PCM: FORMAT:RATE[:CHANNELS], FORMAT one of u8, s16, s24,
    /// s32, f32, f64 (e.g. s16:16000:1).
    #[arg(long, value_name = "FORMAT:RATE[:CH]")]
    raw_format: Option<String>,
    /// Set NaN and infinite samples to 0 (with a warning) instead of refusing the file.
    #[arg(long)]
    allow_nonfinite: bool,
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
    /// Windows per forward pass; the windows of consecutive files share them. Default: 4 on a GPU,
    /// 1 on the CPU (AST-base on 2 cores: 100 files at 0.617 files/s with 1, 0.558 with 4 —
    /// larger activations, more cache misses, no more parallelism) and on stdin (lowest latency).
    #[arg(long)]
    batch: Option<usize>,
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
    let post = model.config.post_process()?;
    if let Some(h) = a.window_hop.filter(|h| !(h.is_finite() && *h > 0.0)) {
        bail!("--window-hop must be a positive number of seconds, got {h}");
    }
    let stream = a.inputs.iter().any(|p| p.as_os_str() == "-");
    if stream && a.inputs.len() > 1 {
        bail!("stdin (-) must be the only input");
    }
    let batch = a.batch.unwrap_or(if stream || dev.is_cpu() { 1 } else { 4 });
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    let opts = DetectOpts { hop_frames: a.window_hop.map(|s| ((s / 0.01).round() as usize).max(1)), batch, keep_fbank: a.plot.is_some(), ..Default::default() };
    let ch = a.channel.map(Channels::Select).unwrap_or(Channels::MixDown);
    let raw = a.raw_format.as_deref().map(super::input::parse_raw_format).transpose()?;
    if raw.is_some() && !stream {
        bail!("--raw-format describes stdin: give - as the input");
    }
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
    // Events go to stdout file by file as files finish (TSV without --tsv/--json); the rest is
    // written at the end.
    let print_now = !a.json && a.tsv.is_none();
    let mut out = std::io::stdout().lock();
    if print_now {
        write_tsv(&mut out, &[])?;
    }
    // The reader thread decodes and resamples up to 32 blocks (about 30 s of audio) ahead while
    // the model runs; the Detector shares forward passes between consecutive files' windows.
    let rx = super::input::spawn_reader(a.inputs.clone(), c.sample_rate, InputOpts { channels: ch, allow_nonfinite: a.allow_nonfinite, raw }, 32);
    let mut det = Detector::new(&model, opts)?;
    // open files: (input index, detector id, start time, samples once ended)
    let mut open: std::collections::VecDeque<(usize, u64, Instant, usize)> = Default::default();
    let mut printed: Vec<Event> = Vec::new();
    let guard = post.median_windows.iter().copied().max().unwrap_or(1) / 2 + 1;
    let mut finish = |i: usize, n: usize, t: Instant, sc: ClipScores, printed: &mut Vec<Event>, out: &mut std::io::StdoutLock| -> Result<()> {
        let p = &a.inputs[i];
        let stem = &stems[i];
        let name = if stream { "-".to_string() } else { p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default() };
        let duration = n as f64 / c.sample_rate as f64;
        let post = PostProcess { clip_duration: Some(duration), ..post.clone() };
        let ev = post.events(&name, &sc.strong)?;
        bar.suspend(|| eprintln!("{}: {:.2} s, {} window(s), {} event(s) ({:.2} s)", p.display(), duration, sc.windows, ev.len(), t.elapsed().as_secs_f64()));
        if let Some(plot_path) = &a.plot {
            let path = if several { per_file(plot_path, stem) } else { plot_path.clone() };
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
        if print_now {
            // a stream's events printed before are not printed again
            let new: Vec<Event> = ev.iter().filter(|e| !printed.contains(e)).cloned().collect();
            write_rows(&mut *out, &new)?;
        }
        events.extend(ev);
        bar.inc(1);
        Ok(())
    };
    let mut current: Option<u64> = None;
    loop {
        let msg = match rx.recv() {
            Ok(m) => Some(m?),
            Err(_) => None,
        };
        let end = msg.is_none();
        match msg {
            Some(Msg::Begin(i)) => {
                let id = det.begin();
                bar.set_message(stems[i].clone());
                open.push_back((i, id, Instant::now(), 0));
                current = Some(id);
            }
            Some(Msg::Block(x)) => {
                let id = current.expect("blocks follow a begin");
                det.push(id, &x).with_context(|| format!("detecting events in {}", a.inputs[open.back().map_or(0, |o| o.0)].display()))?;
                if stream && print_now {
                    // events that end before the frames later windows can still change, and
                    // before the median filter's reach of them
                    if let Some(fs) = det.final_scores() {
                        let stable = fs.frames.saturating_sub(guard) as f64 * post.geometry.hop_s + post.geometry.offset_s;
                        for e in post.events("-", &fs)? {
                            if e.offset < stable && !printed.contains(&e) {
                                write_rows(&mut out, std::slice::from_ref(&e))?;
                                printed.push(e);
                            }
                        }
                    }
                }
            }
            Some(Msg::End(i, n)) => {
                let o = open.iter_mut().find(|o| o.0 == i).expect("an end follows its begin");
                o.3 = n;
                det.end(o.1).with_context(|| format!("detecting events in {}", a.inputs[i].display()))?;
                current = None;
            }
            None => det.flush()?,
        }
        for (id, sc) in det.take_done()? {
            let (i, _, t, n) = open.pop_front().filter(|o| o.1 == id).expect("clips finish in order");
            finish(i, n, t, sc, &mut printed, &mut out)?;
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(s) = &a.scores {
        safetensors_io::save(s, tensors.iter().map(|(k, t)| (k.as_str(), t))).with_context(|| format!("writing {}", s.display()))?;
    }
    if let Some(tsv) = &a.tsv {
        super::write_atomic(tsv, events_to_tsv(&events).as_bytes())?;
    }
    if a.json {
        writeln!(out, "{}", events_to_json(&events)?)?;
    }
    Ok(())
}

/// The rows of a DCASE TSV (no header), flushed: stdout gets each file's events as it finishes.
fn write_rows(out: &mut impl Write, events: &[Event]) -> Result<()> {
    let tsv = events_to_tsv(events);
    out.write_all(tsv.split_once('\n').map_or("", |(_, rows)| rows).as_bytes())?;
    out.flush()?;
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
