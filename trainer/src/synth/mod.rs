//! `trainer synth`: labelled soundscapes, as Scaper makes DESED's synthetic set.
//!
//! Each soundscape is a background plus a number of foreground events, each event scaled to a drawn
//! SNR and placed at a drawn onset under a polyphony limit. Everything about soundscape `i` comes from
//! the random streams `(seed, i, …)`, so any one of them can be regenerated alone (`--start i --count 1`)
//! and the order of the parallel work changes nothing.
//!
//! Loudness: the SNR of an event is `10·log10(mean(e²) / mean(b²))`, the mean square of the event over
//! its own samples (its whole extent, the same rule for every source, builtin or file) against the
//! background's over the whole soundscape. The background's level is drawn in dBFS RMS (`--level`): the
//! soundscape's random gain. An event's leading and trailing samples below −60 dB of its peak are cut
//! off, so its label starts and ends where it sounds. No peak normalisation unless `--peak-normalize` asks for it (then the
//! mixture and every stem are scaled by the same factor), so the stems sum to the mixture.
//!
//! Layout of `OUT`: `audio/<name>.wav`, `strong.tsv` (`filename onset offset event_label`), `weak.tsv`
//! (`filename event_labels`), `durations.tsv`, `events.tsv` (each placed event with its drawn SNR, its
//! level and its source), `meta.json` (the parameters, the class list and the generator's version);
//! `--stems`: `stems/<name>_<k>_<class>.wav` (event k as placed in the mix) and
//! `stems/<name>_background.wav`. Onsets and durations are whole milliseconds, so the TSVs are exact.

pub mod bank;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::data::rng_for;
use aural_models::audio::{self, Channels};

/// Bumped whenever the same parameters would give different audio.
pub const GENERATOR_VERSION: u32 = 1;

/// Random-stream purposes (see [`rng_for`]): a soundscape's plan and background, and each event.
const SCENE: u64 = 20;
const EVENT: u64 = 21;

/// A closed range `[lo, hi]` given as `A` or `A,B` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub lo: f64,
    pub hi: f64,
}

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Span, String> {
        let parse = |t: &str| t.trim().parse::<f64>().map_err(|_| format!("{t:?} is not a number"));
        let (lo, hi) = match s.split_once(',') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let v = parse(s)?;
                (v, v)
            }
        };
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(format!("{s:?}: expected A or A,B with A ≤ B, both finite"));
        }
        Ok(Span { lo, hi })
    }
}

impl Span {
    fn draw(&self, rng: &mut impl Rng) -> f64 {
        if self.hi > self.lo {
            rng.gen_range(self.lo..=self.hi)
        } else {
            self.lo
        }
    }
}

/// Where onsets fall: uniformly over the soundscape, or a normal distribution (seconds) truncated to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Onset {
    Uniform,
    Normal { mean: f64, std: f64 },
}

impl std::str::FromStr for Onset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Onset, String> {
        if s == "uniform" {
            return Ok(Onset::Uniform);
        }
        if let Some(rest) = s.strip_prefix("normal:") {
            let sp: Span = rest.parse()?;
            if sp.hi > 0.0 {
                return Ok(Onset::Normal { mean: sp.lo, std: sp.hi });
            }
        }
        Err(format!("{s:?}: expected `uniform` or `normal:MEAN,STD` (seconds, STD > 0)"))
    }
}

/// The soundscape parameters (every one of them is written to meta.json).
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub seed: u64,
    pub rate: u32,
    /// Seconds per soundscape.
    pub duration: f64,
    /// Number of events drawn per soundscape (integers).
    pub events: Span,
    /// Event SNR in dB against the background.
    pub snr: Span,
    /// Background level, dBFS RMS (the soundscape's random gain).
    pub level: Span,
    /// At most this many events sound at once (1 = no overlap).
    pub polyphony: usize,
    /// Minimum gap (seconds) between two events of the same class (they never overlap).
    pub same_class_gap: f64,
    pub onset: Onset,
    /// Scale each mixture (and its stems) so its peak is this many dBFS.
    pub peak_normalize: Option<f64>,
    /// Write 16-bit PCM instead of 32-bit float (then the stems sum to the mixture within quantisation).
    pub pcm16: bool,
    pub stems: bool,
}

/// Foreground sources: the builtin bank (a subset of its classes) or folders of files per class.
#[derive(Debug, Clone)]
pub enum Foreground {
    Builtin(Vec<usize>),
    Files(Vec<(String, Vec<PathBuf>)>),
}

/// Background sources.
#[derive(Debug, Clone)]
pub enum Background {
    Builtin,
    Files(Vec<PathBuf>),
}

/// One placed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub class: String,
    /// Milliseconds.
    pub onset_ms: u64,
    pub len_ms: u64,
    pub snr_db: f64,
    /// What the event was drawn from (a builtin class or a file).
    pub source: String,
}

/// One soundscape, as rendered.
pub struct Scene {
    pub name: String,
    pub mixture: Vec<f32>,
    pub background: Vec<f32>,
    pub background_source: String,
    pub events: Vec<(Placed, Vec<f32>)>,
    /// Events drawn but left out because no onset met the polyphony and same-class rules.
    pub dropped: usize,
}

/// The file name (without extension) of soundscape `index`.
pub fn scene_name(index: u64) -> String {
    format!("syn_{index:05}")
}

fn mean_square(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64
}

/// A file read as mono at `rate` (an error names it).
fn read_mono(path: &Path, rate: u32) -> Result<Vec<f32>> {
    let a = audio::load(path, rate, Channels::MixDown).with_context(|| format!("reading {}", path.display()))?;
    let x = a.channels.into_iter().next().unwrap_or_default();
    if x.iter().any(|v| !v.is_finite()) {
        bail!("{}: non-finite samples", path.display());
    }
    Ok(x)
}

impl Foreground {
    pub fn classes(&self) -> Vec<String> {
        match self {
            Foreground::Builtin(c) => c.iter().map(|&i| bank::CLASSES[i].to_string()).collect(),
            Foreground::Files(c) => c.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// `DIR/<class>/*.wav`, classes in name order; an empty class folder is an error.
    pub fn from_dir(dir: &Path) -> Result<Foreground> {
        let mut classes = Vec::new();
        for e in std::fs::read_dir(dir).with_context(|| format!("reading --fg {}", dir.display()))? {
            let p = e?.path();
            if p.is_dir() {
                let files = wavs(&p)?;
                if files.is_empty() {
                    bail!("--fg: class folder {} holds no .wav file", p.display());
                }
                classes.push((p.file_name().unwrap().to_string_lossy().into_owned(), files));
            }
        }
        if classes.is_empty() {
            bail!("--fg {}: no class folders (expected DIR/<class>/*.wav)", dir.display());
        }
        classes.sort();
        Ok(Foreground::Files(classes))
    }

    /// One event of class `c` (its audio, at most `max_s` seconds, and its source's description).
    fn draw(&self, c: usize, rng: &mut impl Rng, rate: u32, max_s: f64) -> Result<(Vec<f32>, String)> {
        match self {
            Foreground::Builtin(cl) => Ok((bank::render(cl[c], rng, rate, max_s), format!("builtin:{}", bank::CLASSES[cl[c]]))),
            Foreground::Files(cl) => {
                let path = cl[c].1.choose(rng).expect("non-empty");
                let x = read_mono(path, rate)?;
                if x.is_empty() {
                    bail!("{}: no samples", path.display());
                }
                let max = (max_s * rate as f64) as usize;
                let x = if x.len() > max {
                    let a = rng.gen_range(0..=x.len() - max);
                    x[a..a + max].to_vec()
                } else {
                    x
                };
                Ok((x, path.display().to_string()))
            }
        }
    }
}

fn wavs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    v.sort();
    Ok(v)
}

impl Background {
    pub fn from_dir(dir: &Path) -> Result<Background> {
        let v = wavs(dir)?;
        if v.is_empty() {
            bail!("--bg {}: no .wav file", dir.display());
        }
        Ok(Background::Files(v))
    }

    /// `n` samples of background: a random excerpt of a file (looped when shorter), or builtin.
    fn draw(&self, rng: &mut impl Rng, rate: u32, n: usize) -> Result<(Vec<f32>, String)> {
        match self {
            Background::Builtin => {
                let (kind, x) = bank::background(rng, rate, n);
                Ok((x, format!("builtin:{kind}")))
            }
            Background::Files(files) => {
                let path = files.choose(rng).expect("non-empty");
                let x = read_mono(path, rate)?;
                if x.is_empty() {
                    bail!("{}: no samples", path.display());
                }
                let a = if x.len() > n { rng.gen_range(0..=x.len() - n) } else { 0 };
                Ok(((0..n).map(|i| x[(a + i) % x.len()]).collect(), path.display().to_string()))
            }
        }
    }
}

/// Soundscape `index`: its background, events and their placement (module doc).
pub fn render_scene(p: &Params, fg: &Foreground, bg: &Background, index: u64) -> Result<Scene> {
    let rate = p.rate;
    let n = (p.duration * rate as f64).round() as usize;
    let dur_ms = (p.duration * 1000.0).round() as u64;
    let mut rng = rng_for(p.seed, SCENE, index, 0);
    let level = p.level.draw(&mut rng);
    let (mut background, background_source) = bg.draw(&mut rng, rate, n)?;
    let ms = mean_square(&background);
    if !(ms > 0.0) {
        bail!("soundscape {index}: the background ({background_source}) is silent, so an SNR cannot be set");
    }
    let g = (10f64.powf(level / 20.0) / ms.sqrt()) as f32;
    background.iter_mut().for_each(|v| *v *= g);
    let bg_ms = mean_square(&background);
    let count = rng.gen_range(p.events.lo.round() as usize..=p.events.hi.round() as usize);
    let classes = fg.classes();
    let mut events: Vec<(Placed, Vec<f32>)> = Vec::new();
    let mut dropped = 0;
    for k in 0..count {
        let mut er = rng_for(p.seed, EVENT, index, k as u64);
        let c = er.gen_range(0..classes.len());
        let (x, source) = fg.draw(c, &mut er, rate, p.duration)?;
        let x = trim(x);
        let len_ms = ((x.len() as f64 * 1000.0 / rate as f64).floor() as u64).clamp(1, dur_ms);
        let snr = p.snr.draw(&mut er);
        let mut placed = None;
        for _ in 0..100 {
            let latest = dur_ms - len_ms;
            let on = match p.onset {
                Onset::Uniform => er.gen_range(0..=latest),
                Onset::Normal { mean, std } => (Normal::new(mean, std).unwrap().sample(&mut er) * 1000.0).round().clamp(0.0, latest as f64) as u64,
            };
            if fits(&events, &classes[c], on, on + len_ms, p) {
                placed = Some(on);
                break;
            }
        }
        let Some(on) = placed else {
            dropped += 1;
            continue;
        };
        let len = ms_to_samples(len_ms, rate).min(x.len());
        let mut x = x[..len].to_vec();
        let ems = mean_square(&x);
        if !(ems > 0.0) {
            dropped += 1;
            continue;
        }
        let g = ((bg_ms * 10f64.powf(snr / 10.0)) / ems).sqrt() as f32;
        x.iter_mut().for_each(|v| *v *= g);
        let mut stem = vec![0f32; n];
        let a = ms_to_samples(on, rate);
        for (s, v) in stem[a..].iter_mut().zip(&x) {
            *s = *v;
        }
        events.push((Placed { class: classes[c].clone(), onset_ms: on, len_ms, snr_db: snr, source }, stem));
    }
    events.sort_by_key(|e| e.0.onset_ms);
    let mut mixture = background.clone();
    for (_, s) in &events {
        for (m, v) in mixture.iter_mut().zip(s) {
            *m += *v;
        }
    }
    if let Some(db) = p.peak_normalize {
        let peak = mixture.iter().fold(0f32, |m, v| m.max(v.abs()));
        if peak > 0.0 {
            let g = 10f32.powf(db as f32 / 20.0) / peak;
            for x in std::iter::once(&mut mixture).chain(std::iter::once(&mut background)).chain(events.iter_mut().map(|e| &mut e.1)) {
                x.iter_mut().for_each(|v| *v *= g);
            }
        }
    }
    Ok(Scene { name: scene_name(index), mixture, background, background_source, events, dropped })
}

/// Drops the leading and trailing samples below −60 dB of the peak, so the label starts and ends
/// where the sound does.
fn trim(x: Vec<f32>) -> Vec<f32> {
    let floor = 1e-3 * x.iter().fold(0f32, |m, v| m.max(v.abs()));
    match (x.iter().position(|v| v.abs() > floor), x.iter().rposition(|v| v.abs() > floor)) {
        (Some(a), Some(b)) => x[a..=b].to_vec(),
        _ => x,
    }
}

fn ms_to_samples(ms: u64, rate: u32) -> usize {
    (ms as u128 * rate as u128 / 1000) as usize
}

/// Whether an event of `class` over [a, b) ms keeps the polyphony limit and the same-class gap.
fn fits(events: &[(Placed, Vec<f32>)], class: &str, a: u64, b: u64, p: &Params) -> bool {
    let gap = (p.same_class_gap * 1000.0).round() as u64;
    let over = |e: &Placed| e.onset_ms < b && a < e.onset_ms + e.len_ms;
    if events.iter().any(|(e, _)| e.class == class && e.onset_ms < b + gap && a < e.onset_ms + e.len_ms + gap) {
        return false;
    }
    // the most events active at once inside [a, b): checked at a and at every onset inside
    let points = std::iter::once(a).chain(events.iter().map(|e| e.0.onset_ms).filter(|&t| t > a && t < b));
    points.into_iter().all(|t| 1 + events.iter().filter(|(e, _)| over(e) && e.onset_ms <= t && t < e.onset_ms + e.len_ms).count() <= p.polyphony)
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub soundscapes: usize,
    pub events: usize,
    /// Mixtures with samples beyond full scale (|x| > 1: clipped in 16-bit files) and their count.
    pub over_full_scale: usize,
    pub over_full_scale_samples: u64,
}

/// Writes soundscapes `start..start + count` under `out` (module doc), in parallel.
pub fn generate(out: &Path, p: &Params, fg: &Foreground, bg: &Background, start: u64, count: u64) -> Result<Summary> {
    let adir = out.join("audio");
    std::fs::create_dir_all(&adir).with_context(|| format!("creating {}", adir.display()))?;
    let sdir = out.join("stems");
    if p.stems {
        std::fs::create_dir_all(&sdir).with_context(|| format!("creating {}", sdir.display()))?;
    }
    let write = |path: &Path, x: &[f32]| -> Result<()> {
        if p.pcm16 {
            write_pcm16(path, p.rate, x)
        } else {
            audio::write_wav(path, p.rate, &[x]).map_err(|e| anyhow!("{e}"))
        }
    };
    let over = std::sync::atomic::AtomicU64::new(0);
    let over_scenes = std::sync::atomic::AtomicUsize::new(0);
    let bar = indicatif::ProgressBar::new(count);
    bar.set_style(indicatif::ProgressStyle::with_template("synth {pos}/{len} [{elapsed_precise} < {eta_precise}]").unwrap());
    let scenes: Vec<(String, Vec<Placed>, usize, String)> = (start..start + count)
        .into_par_iter()
        .map(|i| -> Result<_> {
            let s = render_scene(p, fg, bg, i)?;
            let k = s.mixture.iter().filter(|v| v.abs() > 1.0).count() as u64;
            if k > 0 {
                over.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
                over_scenes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            write(&adir.join(format!("{}.wav", s.name)), &s.mixture)?;
            if p.stems {
                for (k, (e, x)) in s.events.iter().enumerate() {
                    write(&sdir.join(format!("{}_{k}_{}.wav", s.name, e.class)), x)?;
                }
                write(&sdir.join(format!("{}_background.wav", s.name)), &s.background)?;
            }
            bar.inc(1);
            Ok((s.name, s.events.into_iter().map(|e| e.0).collect(), s.dropped, s.background_source))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let (mut strong, mut weak, mut durations, mut evs) = (
        "filename\tonset\toffset\tevent_label\n".to_string(),
        "filename\tevent_labels\n".to_string(),
        "filename\tduration\n".to_string(),
        "filename\tonset\toffset\tevent_label\tsnr_db\tsource\n".to_string(),
    );
    let (mut placed, mut dropped) = (0, 0);
    for (name, events, d, bgsrc) in &scenes {
        dropped += d;
        placed += events.len();
        let f = format!("{name}.wav");
        for e in events {
            let (on, off) = (e.onset_ms as f64 / 1000.0, (e.onset_ms + e.len_ms) as f64 / 1000.0);
            let _ = writeln!(strong, "{f}\t{on:.3}\t{off:.3}\t{}", e.class);
            let _ = writeln!(evs, "{f}\t{on:.3}\t{off:.3}\t{}\t{:.4}\t{}", e.class, e.snr_db, e.source);
        }
        let _ = writeln!(evs, "{f}\t0.000\t{:.3}\tbackground\t\t{bgsrc}", p.duration);
        let mut labels: Vec<&str> = events.iter().map(|e| e.class.as_str()).collect();
        labels.sort();
        labels.dedup();
        let _ = writeln!(weak, "{f}\t{}", labels.join(","));
        let _ = writeln!(durations, "{f}\t{}", p.duration);
    }
    let meta = json!({
        "generator": "aural trainer synth",
        "generator_version": GENERATOR_VERSION,
        "aural_version": env!("CARGO_PKG_VERSION"),
        "parameters": p,
        "foreground": match fg { Foreground::Builtin(_) => "builtin".to_string(), Foreground::Files(_) => "files".to_string() },
        "background": match bg { Background::Builtin => "builtin".to_string(), Background::Files(_) => "files".to_string() },
        "classes": fg.classes(),
        "start": start,
        "count": count,
        "events_placed": placed,
        "events_dropped": dropped,
        "over_full_scale_soundscapes": over_scenes.load(std::sync::atomic::Ordering::Relaxed),
        "over_full_scale_samples": over.load(std::sync::atomic::Ordering::Relaxed),
        "loudness": "SNR = 10·log10(mean square of the event over its extent / mean square of the background over the soundscape); level = background dBFS RMS",
    });
    for (name, text) in [
        ("strong.tsv", strong),
        ("weak.tsv", weak),
        ("durations.tsv", durations),
        ("events.tsv", evs),
        ("meta.json", serde_json::to_string_pretty(&meta)? + "\n"),
    ] {
        write_text(&out.join(name), &text)?;
    }
    Ok(Summary { soundscapes: scenes.len(), events: placed, over_full_scale: over_scenes.into_inner(), over_full_scale_samples: over.into_inner() })
}

/// Text through a temporary file and a rename.
fn write_text(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_file_name(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// A mono 16-bit PCM WAV (clipped to ±1), through a temporary file and a rename.
fn write_pcm16(path: &Path, rate: u32, x: &[f32]) -> Result<()> {
    let tmp = path.with_file_name(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    let mut bytes = Vec::with_capacity(44 + 2 * x.len());
    let data = 2 * x.len() as u32;
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&(2 * rate).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data.to_le_bytes());
    for &v in x {
        bytes.extend_from_slice(&((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// `trainer synth`'s options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder (audio/, stems/, TSVs, meta.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Use the builtin procedural bank for the foreground (and the background, unless --bg).
    #[arg(long)]
    pub builtin: bool,
    /// Foreground folder: one sub-folder per class holding WAVs (DIR/<class>/*.wav).
    #[arg(long)]
    pub fg: Option<PathBuf>,
    /// Background folder of WAVs (random excerpts, looped when shorter); default: builtin backgrounds.
    #[arg(long)]
    pub bg: Option<PathBuf>,
    /// With --builtin: only these classes (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Number of soundscapes.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Index of the first soundscape (soundscape i is the same whatever the count).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seconds per soundscape.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 16000)]
    pub rate: u32,
    /// Events per soundscape: N or MIN,MAX.
    #[arg(long, default_value = "1,5")]
    pub events: Span,
    /// Event SNR in dB against the background: V or MIN,MAX.
    #[arg(long, default_value = "6,30", allow_hyphen_values = true)]
    pub snr: Span,
    /// Background level in dBFS RMS (the soundscape's random gain): V or MIN,MAX.
    #[arg(long, default_value = "-60,-45", allow_hyphen_values = true)]
    pub level: Span,
    /// Most events sounding at once.
    #[arg(long, default_value_t = 2)]
    pub polyphony: usize,
    /// No two events overlap (= --polyphony 1).
    #[arg(long)]
    pub no_overlap: bool,
    /// Minimum gap in seconds between two events of the same class.
    #[arg(long, default_value_t = 0.25)]
    pub same_class_gap: f64,
    /// Onset distribution: uniform or normal:MEAN,STD (seconds, truncated to the soundscape).
    #[arg(long, default_value = "uniform")]
    pub onset: Onset,
    /// Also write each event as placed in the mix and the background (they sum to the mixture).
    #[arg(long)]
    pub stems: bool,
    /// Scale each mixture and its stems so the mixture's peak is this many dBFS (off by default).
    #[arg(long, allow_hyphen_values = true)]
    pub peak_normalize: Option<f64>,
    /// 16-bit PCM instead of 32-bit float WAVs.
    #[arg(long)]
    pub pcm16: bool,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Args {
    /// The parameters and sources the options name, validated.
    pub fn resolve(&self) -> Result<(Params, Foreground, Background)> {
        let fg = match (&self.fg, self.builtin) {
            (Some(_), true) => bail!("give --builtin or --fg DIR, not both"),
            (None, false) => bail!("give --builtin (the procedural bank) or --fg DIR (DIR/<class>/*.wav)"),
            (Some(d), false) => {
                if self.classes.is_some() {
                    bail!("--classes picks builtin classes; with --fg the class folders are the classes");
                }
                Foreground::from_dir(d)?
            }
            (None, true) => {
                let idx = match &self.classes {
                    None => (0..bank::CLASSES.len()).collect(),
                    Some(c) => c
                        .iter()
                        .map(|n| {
                            bank::CLASSES
                                .iter()
                                .position(|b| b == n)
                                .ok_or_else(|| anyhow!("--classes: no builtin class {n:?} (there are {})", bank::CLASSES.join(", ")))
                        })
                        .collect::<Result<Vec<_>>>()?,
                };
                if idx.is_empty() {
                    bail!("--classes: empty");
                }
                Foreground::Builtin(idx)
            }
        };
        let bg = match &self.bg {
            Some(d) => Background::from_dir(d)?,
            None => Background::Builtin,
        };
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(self.duration > 0.0 && self.duration <= 3600.0) {
            bail!("--duration must be in (0, 3600] seconds, got {}", self.duration);
        }
        if !(8000..=192_000).contains(&self.rate) {
            bail!("--rate must be 8000–192000 Hz, got {}", self.rate);
        }
        if self.events.lo < 0.0 || self.events.hi > 1000.0 {
            bail!("--events must lie in 0..1000");
        }
        let polyphony = if self.no_overlap { 1 } else { self.polyphony };
        if polyphony == 0 {
            bail!("--polyphony must be at least 1");
        }
        if !(self.same_class_gap >= 0.0) {
            bail!("--same-class-gap must be ≥ 0");
        }
        if self.count == 0 {
            bail!("--count must be at least 1");
        }
        let p = Params {
            seed: self.seed,
            rate: self.rate,
            duration: self.duration,
            events: self.events,
            snr: self.snr,
            level: self.level,
            polyphony,
            same_class_gap: self.same_class_gap,
            onset: self.onset,
            peak_normalize: self.peak_normalize,
            pcm16: self.pcm16,
            stems: self.stems,
        };
        Ok((p, fg, bg))
    }
}

/// `trainer synth`.
pub fn run(a: Args) -> Result<()> {
    let (p, fg, bg) = a.resolve()?;
    let t = std::time::Instant::now();
    let job = || generate(&a.out, &p, &fg, &bg, a.start, a.count);
    let s = match a.threads {
        Some(k) => rayon::ThreadPoolBuilder::new().num_threads(k.max(1)).build()?.install(job)?,
        None => job()?,
    };
    eprintln!("trainer synth: {} soundscapes, {} events, in {:.1} s → {}", s.soundscapes, s.events, t.elapsed().as_secs_f64(), a.out.display());
    if s.over_full_scale > 0 {
        eprintln!(
            "warning: {} of {} mixtures exceed full scale ({} samples with |x| > 1{}): lower --level or use --peak-normalize",
            s.over_full_scale,
            s.soundscapes,
            s.over_full_scale_samples,
            if p.pcm16 { ", clipped in the 16-bit files" } else { "; kept in the float files" }
        );
    }
    Ok(())
}
