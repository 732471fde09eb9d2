//! `aural separate`: label-queried source separation with a ResUNet30 checkpoint (the DCASE 2025
//! task 4 baseline's ResUNet / ResUNetK, AudioSep's query-conditioned model).
//!
//! Per file: audio at the model's rate with all its channels (a channel count other than the
//! model's is refused) → one pass per label (ResUNetK: up to three labels per pass) through
//! `separator::separate_long` (clips longer than `--chunk` seconds in overlapping chunks with a
//! linear crossfade) → `OUTDIR/<stem>_<Label>.wav`, 32-bit float, the model's rate, one channel per
//! output channel (the DCASE naming). A query-conditioned model takes `--conditions FILE` (tensor
//! `query`, the condition_size vector) and writes `OUTDIR/<stem>_query.wav`.
//!
//! CP-JKU's separator (time-FiLM, embedding injection, DPRNN, iterations; seed 003) takes the stage-2
//! SED model's outputs for each file: computed by `--sed DIR` (that model's checkpoint), or given by
//! `--conditions FILE` with tensors `strong_logits` (classes × frames, 250 frames for 10 s; resized
//! in time like the model does) and `embeddings` (layers × tokens × dim, 13 × 310 × 768) — for tests
//! and for users who compute them elsewhere. Such a file describes one clip: with several inputs use
//! `--sed`. The whole clip runs in one pass (the conditions cover it); `--iterations N` overrides the
//! iterative model's number of passes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aural::models::audio::{self, Channels};
use aural::models::m2d::M2dSed;
use aural::models::separator::{label_passes, separate_conditioned, separate_long, ChunkOpts, Conditioning, Conditions, ResUNet};
use aural::runtime::{safetensors_io, Tensor};

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
    /// (condition_size values) for a query-conditioned model (AudioSep: a CLAP embedding); for
    /// CP-JKU's separator, tensors `strong_logits` (classes × frames) and `embeddings` (layers ×
    /// tokens × dim) of the one input.
    #[arg(long, value_name = "FILE.safetensors")]
    conditions: Option<PathBuf>,
    /// CP-JKU's stage-2 SED model checkpoint (architecture m2d_sed): computes the separator's
    /// conditions for every input.
    #[arg(long, value_name = "DIR")]
    sed: Option<PathBuf>,
    /// Passes of an iterative separator (default: its config's `iterations`).
    #[arg(long, value_name = "N")]
    iterations: Option<usize>,
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
            if let Some(p) = a.conditions.as_ref().filter(|_| !c.needs_sed()) {
                let t = safetensors_io::load(p).with_context(|| format!("reading {}", p.display()))?;
                bail!(
                    "{}: this label-conditioned separator takes no extra conditions (the file holds: {})",
                    p.display(),
                    t.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let labels: Vec<&str> = a.labels.iter().map(String::as_str).collect();
            Ok(label_passes(c, &labels)?.into_iter().map(|(cond, names)| Pass { cond, names }).collect())
        }
    }
}

/// Where the CP-JKU conditions come from.
enum SedSource {
    None,
    Model(Box<M2dSed>),
    /// (strong_logits (1, classes, frames), embeddings (1, layers, tokens, dim)), either may be absent.
    File(Option<Tensor>, Option<Tensor>),
}

/// The `--conditions` file of a CP-JKU separator: `strong_logits` and `embeddings`, checked against
/// the config (the shapes the model needs, finite values).
fn conditions_file(path: &std::path::Path, model: &ResUNet) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let c = &model.config;
    let t = safetensors_io::load(path).with_context(|| format!("reading {}", path.display()))?;
    let found = || t.keys().cloned().collect::<Vec<_>>().join(", ");
    let take = |name: &str, rank: usize, what: &str| -> Result<Tensor> {
        let x = t.get(name).with_context(|| format!("{}: no tensor '{name}' ({what}; found: {})", path.display(), found()))?;
        let s = x.shape().to_vec();
        let x = match s.len() {
            r if r == rank => x.reshape(&[&[1], &s[..]].concat())?,
            r if r == rank + 1 && s[0] == 1 => x.clone(),
            _ => bail!("{}: tensor '{name}' has shape {s:?}; expected {what}", path.display()),
        };
        if x.to_vec()?.iter().any(|v| !v.is_finite()) {
            bail!("{}: tensor '{name}' holds NaN or infinite values", path.display());
        }
        Ok(x.to_device(model.device)?)
    };
    let logits = match c.time_film {
        Some(_) => {
            let x = take("strong_logits", 2, &format!("({} classes, frames) strong logits", c.classes.len()))?;
            if x.shape()[1] != c.classes.len() {
                bail!("{}: tensor 'strong_logits' has {} classes; the separator has {}", path.display(), x.shape()[1], c.classes.len());
            }
            Some(x)
        }
        None => None,
    };
    let embeddings = match &c.inject {
        Some(i) => {
            let x = take("embeddings", 3, &format!("({}, {}, {}) hidden states", i.layers, i.tokens, i.dim))?;
            if x.shape()[1..] != [i.layers, i.tokens, i.dim] {
                bail!("{}: tensor 'embeddings' has shape {:?}; the separator takes ({}, {}, {})", path.display(), &x.shape()[1..], i.layers, i.tokens, i.dim);
            }
            Some(x)
        }
        None => None,
    };
    Ok((logits, embeddings))
}

fn sed_source(model: &ResUNet, a: &Args) -> Result<SedSource> {
    let c = &model.config;
    if !c.needs_sed() {
        if a.sed.is_some() {
            bail!("--sed: this separator uses neither time-FiLM nor embedding injection");
        }
        return Ok(SedSource::None);
    }
    match (&a.sed, &a.conditions) {
        (Some(_), Some(_)) => bail!("give either --sed DIR or --conditions FILE, not both"),
        (Some(dir), None) => {
            let sed = M2dSed::load(dir, model.device).with_context(|| format!("loading the SED model checkpoint {}", dir.display()))?;
            let d = &sed.config;
            if d.classes != c.classes {
                bail!("{}: the SED model's classes differ from the separator's (the strong logits are indexed by the label)", dir.display());
            }
            let rate = d.input_sample_rate.unwrap_or(d.sample_rate);
            if rate != c.sample_rate {
                bail!("{}: the SED model reads {rate} Hz audio but the separator runs at {} Hz", dir.display(), c.sample_rate);
            }
            Ok(SedSource::Model(Box::new(sed)))
        }
        (None, Some(f)) => {
            if a.inputs.len() > 1 {
                bail!("--conditions describes one clip, but {} inputs were given (use --sed DIR to compute them per file)", a.inputs.len());
            }
            let (l, e) = conditions_file(f, model)?;
            Ok(SedSource::File(l, e))
        }
        (None, None) => bail!(
            "this separator is conditioned on the stage-2 SED model's outputs ({}): give --sed DIR (its checkpoint) or --conditions FILE.safetensors",
            [c.time_film.map(|_| "time-FiLM: strong_logits"), c.inject.as_ref().map(|_| "injection: embeddings")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
    let sed = sed_source(&model, &a)?;
    if a.iterations == Some(0) {
        bail!("--iterations must be at least 1");
    }
    if a.iterations.is_some() && c.iterations == 0 {
        bail!("--iterations: this separator is not iterative (its config has \"iterations\": 0)");
    }
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
        let computed = match &sed {
            SedSource::Model(m) => {
                let x = Tensor::from_vec(au.channels.concat(), &[1, au.channels.len(), n])?.to_device(m.device)?;
                Some(m.forward(&x).with_context(|| format!("the SED model on {}", p.display()))?)
            }
            _ => None,
        };
        let extra = match (&sed, &computed) {
            (SedSource::File(l, e), _) => Some(Conditions { strong_logits: l.as_ref(), embeddings: e.as_ref(), iterations: a.iterations }),
            (_, Some(o)) => Some(Conditions { strong_logits: Some(&o.strong_logits), embeddings: Some(&o.hidden_states), iterations: a.iterations }),
            _ if a.iterations.is_some() => Some(Conditions { iterations: a.iterations, ..Default::default() }),
            _ => None,
        };
        for pass in &passes {
            let y = match &extra {
                Some(e) => separate_conditioned(&model, &au.channels, &pass.cond, e),
                None => separate_long(&model, &au.channels, &pass.cond, &opts, |_, _| {}),
            }
            .with_context(|| format!("separating {}", p.display()))?;
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
