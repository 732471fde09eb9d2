//! Data sets of `trainer sed` (DESED layouts) and the batch loader.
//!
//! - Sets: an audio folder (`*.wav`) and a TSV. Strong: `filename onset offset event_label` (the
//!   clips are the files the TSV lists, a row with only a filename is a clip without events); weak:
//!   `filename event_labels` (comma-separated); unlabelled: every WAV of the folder. Everything is
//!   checked before training starts: a TSV file missing from the folder, a label not in the class
//!   list, an event ending after its clip, an unreadable WAV — each an error naming the file (and
//!   the TSV line).
//! - Order: the samples of set s at (micro-)step t are positions t·n_s … t·n_s + n_s − 1 of an endless
//!   stream of per-epoch shuffles of the set, each shuffle seeded by (seed, set, epoch). So the data
//!   order, like every random draw of the trainer, is a function of the seed and the step, and a
//!   resumed run sees exactly the batches of an uninterrupted one.
//! - A batch holds [strong | synthetic | weak | unlabeled] samples in that order.
//! - Features: decode (any WAV), mix down to mono, resample to the model's rate, kaldi fbank (AST's
//!   call), crop a clip longer than the window at a seeded random offset (its events move with it)
//!   or pad a shorter one, and AST-normalise (pad then normalise, as HF `ASTFeatureExtractor`).
//!   Optional on-disk cache of the fbank of each file.
//! - Frame targets: the DESED baseline's `ManyHotEncoder.encode_strong_df` at the model's output frame
//!   rate (the `aural detect` geometry, hop = max_length·10 ms / (T′·upsample)): an event covers frames
//!   ⌊onset/hop⌋ … ⌈offset/hop⌉ − 1, times clipped to [0, frames].
//! - [`Loader`]: a thread that builds the next batches (clips in parallel on `workers` threads, then
//!   the augmentations) while the step runs; at most `prefetch` batches wait.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use aural_models::audio::{self, Channels};
use aural_models::sed::metrics::io::{file_id, read_strong};
use aural_runtime::ops::fbank::{ast_input, fbank, AstNorm, FbankOpts};
use aural_runtime::Tensor;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::augment::{augment, AugmentConfig, FeatBatch};
use crate::config::{BatchCfg, SetCfg};

/// The training sets, in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    Strong,
    Synthetic,
    Weak,
    Unlabeled,
}

impl SetKind {
    pub const ALL: [SetKind; 4] = [SetKind::Strong, SetKind::Synthetic, SetKind::Weak, SetKind::Unlabeled];

    pub fn name(self) -> &'static str {
        match self {
            SetKind::Strong => "strong",
            SetKind::Synthetic => "synthetic",
            SetKind::Weak => "weak",
            SetKind::Unlabeled => "unlabeled",
        }
    }

    pub fn count(self, b: &BatchCfg) -> usize {
        match self {
            SetKind::Strong => b.strong,
            SetKind::Synthetic => b.synthetic,
            SetKind::Weak => b.weak,
            SetKind::Unlabeled => b.unlabeled,
        }
    }
}

/// One clip of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub path: PathBuf,
    /// File id (name without extension), as the TSVs and the metrics name files.
    pub id: String,
    /// Strong labels: (onset s, offset s, class).
    pub events: Vec<(f64, f64, usize)>,
    /// Weak labels (classes present).
    pub weak: Vec<usize>,
    pub duration: f64,
}

#[derive(Debug, Clone)]
pub struct DataSet {
    pub kind: SetKind,
    pub clips: Vec<Clip>,
}

/// The WAV files of a folder (not recursive) by file id; two files with one id are an error.
pub fn list_audio(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("reading the audio folder {}", dir.display()))?;
    let mut out = BTreeMap::new();
    for e in rd {
        let p = e.with_context(|| format!("reading the audio folder {}", dir.display()))?.path();
        let is_wav = p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("wav"));
        if !is_wav || !p.is_file() {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(prev) = out.insert(file_id(&name).to_string(), p.clone()) {
            bail!("{}: two files share the id '{}' ({})", dir.display(), file_id(&name), prev.display());
        }
    }
    if out.is_empty() {
        bail!("{}: no .wav files", dir.display());
    }
    Ok(out)
}

fn class_index(classes: &[String]) -> HashMap<&str, usize> {
    classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect()
}

fn locate<'a>(audio: &'a BTreeMap<String, PathBuf>, dir: &Path, tsv: &Path, line: usize, id: &str) -> Result<&'a PathBuf> {
    audio.get(id).ok_or_else(|| anyhow!("{}:{line}: '{id}' has no WAV in {}", tsv.display(), dir.display()))
}

/// Durations from the WAV headers, in parallel; an unreadable file is an error naming it.
fn probe_all(clips: &mut [Clip]) -> Result<()> {
    let d: Vec<Result<f64>> = clips.par_iter().map(|c| audio::probe_seconds(&c.path).map_err(|e| anyhow!("{e}"))).collect();
    for (c, d) in clips.iter_mut().zip(d) {
        c.duration = d?;
    }
    Ok(())
}

/// A strongly labelled set: the files of the TSV, with their events.
pub fn load_strong(kind: SetKind, cfg: &SetCfg, classes: &[String]) -> Result<DataSet> {
    let tsv = cfg.tsv.as_ref().expect("validated: strong sets have a tsv");
    let audio = list_audio(&cfg.audio)?;
    let t = read_strong(tsv).map_err(|e| anyhow!("{e}"))?;
    let idx = class_index(classes);
    let mut clips: Vec<Clip> = Vec::new();
    let mut pos: HashMap<String, usize> = HashMap::new();
    let mut lines: Vec<(usize, usize, f64)> = Vec::new(); // (clip, line, offset) to check against durations
    let mut add = |id: &str, line: usize, clips: &mut Vec<Clip>| -> Result<usize> {
        if let Some(&i) = pos.get(id) {
            return Ok(i);
        }
        let path = locate(&audio, &cfg.audio, tsv, line, id)?.clone();
        clips.push(Clip { path, id: id.to_string(), events: Vec::new(), weak: Vec::new(), duration: 0.0 });
        pos.insert(id.to_string(), clips.len() - 1);
        Ok(clips.len() - 1)
    };
    for id in &t.empty_files {
        add(id, 0, &mut clips)?;
    }
    for e in &t.events {
        let c = *idx
            .get(e.label.as_str())
            .ok_or_else(|| anyhow!("{}:{}: label '{}' is not in the class list ({})", tsv.display(), e.line, e.label, classes.join(", ")))?;
        let i = add(&e.file, e.line, &mut clips)?;
        clips[i].events.push((e.onset, e.offset, c));
        if !clips[i].weak.contains(&c) {
            clips[i].weak.push(c);
        }
        lines.push((i, e.line, e.offset));
    }
    if clips.is_empty() {
        bail!("{}: no clips", tsv.display());
    }
    probe_all(&mut clips)?;
    for (i, line, off) in lines {
        let c = &clips[i];
        // Half a millisecond of slack: TSV times are often rounded to 3 decimals.
        if off > c.duration + 5e-4 {
            bail!("{}:{line}: the event of '{}' ends at {off} s, after the clip's end ({:.4} s)", tsv.display(), c.id, c.duration);
        }
    }
    for c in &mut clips {
        c.weak.sort_unstable();
    }
    Ok(DataSet { kind, clips })
}

/// A weak-label TSV: header with `filename` and `event_labels`; labels comma-separated.
pub fn read_weak(path: &Path, classes: &[String]) -> Result<Vec<(String, Vec<usize>, usize)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_weak(path, &text, classes)
}

/// [`read_weak`] of the text of `path` (named in errors).
pub fn parse_weak(path: &Path, text: &str, classes: &[String]) -> Result<Vec<(String, Vec<usize>, usize)>> {
    let idx = class_index(classes);
    let mut rows = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect::<Vec<_>>()));
    let (hl, header) = rows.next().ok_or_else(|| anyhow!("{}: empty file (a header line is required)", path.display()))?;
    let col = |w: &str| {
        header.iter().position(|c| *c == w).ok_or_else(|| anyhow!("{}:{hl}: the header has no '{w}' column (columns: {})", path.display(), header.join(", ")))
    };
    let (fi, li) = (col("filename")?, col("event_labels")?);
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, f) in rows {
        let name = f.get(fi).copied().unwrap_or("");
        if name.is_empty() {
            bail!("{}:{line}: empty filename", path.display());
        }
        let id = file_id(name).to_string();
        if let Some(prev) = seen.insert(id.clone(), line) {
            bail!("{}:{line}: '{id}' is listed twice (also on line {prev})", path.display());
        }
        let mut labels = Vec::new();
        for l in f.get(li).copied().unwrap_or("").split(',').map(str::trim).filter(|l| !l.is_empty()) {
            let c = *idx.get(l).ok_or_else(|| anyhow!("{}:{line}: label '{l}' is not in the class list ({})", path.display(), classes.join(", ")))?;
            if !labels.contains(&c) {
                labels.push(c);
            }
        }
        labels.sort_unstable();
        out.push((id, labels, line));
    }
    if out.is_empty() {
        bail!("{}: no files listed", path.display());
    }
    Ok(out)
}

/// A weakly labelled set.
pub fn load_weak(cfg: &SetCfg, classes: &[String]) -> Result<DataSet> {
    let tsv = cfg.tsv.as_ref().expect("validated: the weak set has a tsv");
    let audio = list_audio(&cfg.audio)?;
    let mut clips = Vec::new();
    for (id, weak, line) in read_weak(tsv, classes)? {
        let path = locate(&audio, &cfg.audio, tsv, line, &id)?.clone();
        clips.push(Clip { path, id, events: Vec::new(), weak, duration: 0.0 });
    }
    probe_all(&mut clips)?;
    Ok(DataSet { kind: SetKind::Weak, clips })
}

/// An unlabelled set: every WAV of the folder.
pub fn load_unlabeled(cfg: &SetCfg) -> Result<DataSet> {
    let mut clips: Vec<Clip> =
        list_audio(&cfg.audio)?.into_iter().map(|(id, path)| Clip { path, id, events: Vec::new(), weak: Vec::new(), duration: 0.0 }).collect();
    probe_all(&mut clips)?;
    Ok(DataSet { kind: SetKind::Unlabeled, clips })
}

/// Frame targets (frames × k) of `events` (seconds, relative to the window's start) at `hop_s` seconds
/// per output frame: the DESED baseline's encoder (onset frame ⌊t/hop⌋, offset frame ⌈t/hop⌉, both
/// clipped to [0, frames]).
pub fn encode_strong(events: &[(f64, f64, usize)], frames: usize, k: usize, hop_s: f64, shift_s: f64) -> Vec<f32> {
    let mut y = vec![0f32; frames * k];
    let to_frame = |t: f64| ((t - shift_s) / hop_s).clamp(0.0, frames as f64);
    for &(on, off, c) in events {
        let a = to_frame(on) as usize;
        let b = to_frame(off).ceil() as usize;
        for f in a..b.min(frames) {
            y[f * k + c] = 1.0;
        }
    }
    y
}

/// A ChaCha stream for (seed, purpose, a, b): every random draw of the trainer comes from one, so it
/// is a function of the seed and the step (SplitMix64 spreads the four numbers over the 256-bit key).
pub fn rng_for(seed: u64, purpose: u64, a: u64, b: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut x = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, chunk) in key.chunks_mut(8).enumerate() {
        x = x.wrapping_add([a, b, purpose, seed][i]).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Purposes of [`rng_for`] streams.
pub mod purpose {
    pub const ORDER: u64 = 1;
    pub const CROP: u64 = 2;
    pub const AUGMENT: u64 = 3;
    /// `trainer separator`: which of a mixture's labels is queried.
    pub const LABEL: u64 = 4;
    /// `trainer separator`: the passes of an iterative separator at a step.
    pub const PASSES: u64 = 5;
    /// `trainer separator`: an on-the-fly mixture.
    pub const MIX: u64 = 6;
}

/// Feature extraction of the model's front end, with an optional cache of each file's fbank.
#[derive(Debug, Clone)]
pub struct Frontend {
    pub opts: FbankOpts,
    pub norm: AstNorm,
    pub rate: u32,
    pub cache: Option<PathBuf>,
}

impl Frontend {
    /// The raw log-mel fbank of a whole file (frames × mel).
    pub fn fbank(&self, path: &Path) -> Result<Vec<f32>> {
        let cache_file = self.cache.as_ref().map(|d| d.join(format!("{}.f32", self.cache_key(path))));
        if let Some(cf) = &cache_file {
            if let Ok(bytes) = std::fs::read(cf) {
                if bytes.len() % 4 == 0 && bytes.len() / 4 % self.opts.num_mel_bins == 0 {
                    return Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect());
                }
            }
        }
        let a = audio::load(path, self.rate, Channels::MixDown).map_err(|e| anyhow!("{e}"))?;
        let w = a.mono();
        if let Some(i) = w.iter().position(|v| !v.is_finite()) {
            bail!("{}: sample {i} is {} (NaN/inf audio cannot be trained on)", path.display(), w[i]);
        }
        // A clip shorter than one frame has no fbank frame (an empty result, as torchaudio's).
        let fb = fbank(&Tensor::from_vec(w.to_vec(), &[w.len()])?, &self.opts).with_context(|| format!("fbank of {}", path.display()))?.to_vec()?;
        if let Some(cf) = &cache_file {
            let bytes: Vec<u8> = fb.iter().flat_map(|v| v.to_le_bytes()).collect();
            let tmp = cf.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::create_dir_all(cf.parent().unwrap()).with_context(|| format!("creating the cache folder {}", cf.parent().unwrap().display()))?;
            std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, cf)).with_context(|| format!("writing {}", cf.display()))?;
        }
        Ok(fb)
    }

    /// SHA-256 of the path, size, modification time and front-end settings.
    fn cache_key(&self, path: &Path) -> String {
        use sha2::{Digest, Sha256};
        let meta = std::fs::metadata(path).ok();
        let mtime = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        let key = format!("v1|{}|{}|{mtime}|{}|{:?}", path.display(), meta.map_or(0, |m| m.len()), self.rate, self.opts);
        Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One (micro-)batch, on the host.
#[derive(Debug, Clone)]
pub struct Batch {
    pub micro: u64,
    /// (b, l, m) AST input features.
    pub x: Vec<f32>,
    /// (b, f, k) frame targets; (b, k) clip targets.
    pub strong: Vec<f32>,
    pub weak: Vec<f32>,
    /// Source file of each sample.
    pub files: Vec<PathBuf>,
    pub b: usize,
    /// Samples with strong labels (strong + synthetic, at the front).
    pub strong_range: Range<usize>,
    /// Samples with weak labels.
    pub weak_range: Range<usize>,
}

/// Everything that defines the batches: sets, batch composition, front end, targets, augmentations.
#[derive(Debug)]
pub struct Plan {
    pub sets: Vec<DataSet>,
    pub batch: BatchCfg,
    pub seed: u64,
    pub frontend: Frontend,
    /// Window (fbank frames) and output frames per window.
    pub l: usize,
    pub f: usize,
    pub k: usize,
    pub hop_s: f64,
    pub augment: AugmentConfig,
}

impl Plan {
    fn set(&self, kind: SetKind) -> Option<&DataSet> {
        self.sets.iter().find(|s| s.kind == kind)
    }

    /// Steps that see each set's clips once at most: the fewest full batches of any used set (≥ 1).
    pub fn default_steps_per_epoch(&self) -> u64 {
        SetKind::ALL.iter().filter_map(|&k| self.set(k).map(|s| (s.clips.len() / k.count(&self.batch).max(1)) as u64)).min().unwrap_or(1).max(1)
    }

    /// The permutation of set `kind` for one pass over it.
    fn order(&self, kind: SetKind, epoch: u64) -> Vec<usize> {
        let n = self.set(kind).map_or(0, |s| s.clips.len());
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut rng_for(self.seed, purpose::ORDER, kind as u64, epoch));
        p
    }

    /// The clips of micro-batch `micro`: (set, clip index) in batch order.
    pub fn members(&self, micro: u64) -> Vec<(SetKind, usize)> {
        let mut out = Vec::new();
        for kind in SetKind::ALL {
            let (Some(set), n) = (self.set(kind), kind.count(&self.batch)) else { continue };
            let len = set.clips.len() as u64;
            let mut cached: Option<(u64, Vec<usize>)> = None;
            for j in 0..n as u64 {
                let g = micro * n as u64 + j;
                let epoch = g / len;
                if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    cached = Some((epoch, self.order(kind, epoch)));
                }
                out.push((kind, cached.as_ref().unwrap().1[(g % len) as usize]));
            }
        }
        out
    }

    /// Builds micro-batch `micro` (features in parallel on the current rayon pool).
    pub fn batch(&self, micro: u64) -> Result<Batch> {
        let members = self.members(micro);
        let (l, m, f, k) = (self.l, self.frontend.opts.num_mel_bins, self.f, self.k);
        let norm = self.frontend.norm;
        let samples: Vec<Result<(Vec<f32>, Vec<f32>, Vec<f32>)>> = members
            .par_iter()
            .enumerate()
            .map(|(i, &(kind, ci))| {
                let clip = &self.set(kind).unwrap().clips[ci];
                let fb = self.frontend.fbank(&clip.path)?;
                let n = fb.len() / m;
                let start = if n > l { rng_for(self.seed, purpose::CROP, micro, i as u64).gen_range(0..=n - l) } else { 0 };
                // Pad (or cut) to the window, then normalise: HF ASTFeatureExtractor's order.
                let x = ast_input(&Tensor::from_vec(fb[start * m..].to_vec(), &[n - start, m])?, l, norm.mean, norm.std)?.to_vec()?;
                let shift_s = start as f64 * self.frontend.opts.frame_shift_ms as f64 / 1000.0;
                let strong = encode_strong(&clip.events, f, k, self.hop_s, shift_s);
                let mut weak = vec![0f32; k];
                for &c in &clip.weak {
                    weak[c] = 1.0;
                }
                if n > l && kind != SetKind::Weak {
                    // A crop keeps only the classes active inside it.
                    weak.iter_mut().enumerate().for_each(|(c, w)| *w = if (0..f).any(|t| strong[t * k + c] > 0.0) { 1.0 } else { 0.0 });
                }
                Ok((x, strong, weak))
            })
            .collect();
        let b = members.len();
        let mut out = Batch {
            micro,
            x: Vec::with_capacity(b * l * m),
            strong: Vec::with_capacity(b * f * k),
            weak: Vec::with_capacity(b * k),
            files: members.iter().map(|&(kind, ci)| self.set(kind).unwrap().clips[ci].path.clone()).collect(),
            b,
            strong_range: 0..self.batch.strong + self.batch.synthetic,
            weak_range: 0..0,
        };
        out.weak_range = out.strong_range.end..out.strong_range.end + self.batch.weak;
        for s in samples {
            let (x, st, w) = s?;
            out.x.extend(x);
            out.strong.extend(st);
            out.weak.extend(w);
        }
        // Mixup stays within a set.
        let mut sets = Vec::new();
        let mut at = 0;
        for kind in SetKind::ALL {
            let n = kind.count(&self.batch);
            if n > 0 {
                sets.push(at..at + n);
            }
            at += n;
        }
        let mut rng = rng_for(self.seed, purpose::AUGMENT, micro, 0);
        let mut fb = FeatBatch { x: &mut out.x, b, l, m, strong: &mut out.strong, f, k, weak: &mut out.weak };
        augment(&self.augment, &mut rng, &mut fb, &sets, 1.0 / (2.0 * norm.std));
        Ok(out)
    }
}

/// What a [`Loader`] builds batches from: micro-batch `micro` of the run, deterministically.
pub trait BatchPlan: Send + Sync + 'static {
    type Batch: Send + 'static;
    fn batch(&self, micro: u64) -> Result<Self::Batch>;
}

impl BatchPlan for Plan {
    type Batch = Batch;
    fn batch(&self, micro: u64) -> Result<Batch> {
        Plan::batch(self, micro)
    }
}

/// Builds batches `from..to` on a thread ahead of the training step (every trainer's).
pub struct Loader<B> {
    rx: Receiver<Result<B>>,
    _handle: std::thread::JoinHandle<()>,
}

impl<B: Send + 'static> Loader<B> {
    pub fn start<P: BatchPlan<Batch = B>>(plan: Arc<P>, from: u64, to: u64, workers: usize, prefetch: usize) -> Result<Loader<B>> {
        let pool =
            rayon::ThreadPoolBuilder::new().num_threads(workers).thread_name(|i| format!("loader-{i}")).build().context("starting the loader's threads")?;
        let (tx, rx) = sync_channel(prefetch);
        let handle = std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || {
                for micro in from..to {
                    let b = pool.install(|| plan.batch(micro));
                    let failed = b.is_err();
                    if tx.send(b).is_err() || failed {
                        return;
                    }
                }
            })
            .context("starting the loader thread")?;
        Ok(Loader { rx, _handle: handle })
    }

    /// The next batch (blocks until it is ready).
    pub fn next(&self) -> Result<B> {
        self.rx.recv().map_err(|_| anyhow!("the loader thread stopped"))?
    }
}
