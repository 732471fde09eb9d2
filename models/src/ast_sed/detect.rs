//! Audio → frame and clip scores with an [`AstSed`] model, for clips of any length.
//!
//! 1. The raw kaldi fbank of the whole clip (`ops::fbank`, AST's call, on the model's device).
//! 2. Windows of `max_length` fbank frames (the model's input). A clip that fits is one window,
//!    padded with zeros and normalised exactly as HF `ASTFeatureExtractor` (pad, then
//!    (x − mean)/(2·std)); its scores are the model's output over the whole padded window
//!    (T′·u frames). A longer clip is cut into windows starting every `hop` fbank frames (default
//!    max_length/2), the last one aligned to the clip's end; they run as batches.
//! 3. Stitching (longer clips only): window w starting at fbank frame s_w covers output frames
//!    round(s_w·F/L) .. + F of the clip (F = T′·u output frames per window, L = max_length), i.e.
//!    the clip keeps the model's frame rate (F/L output frames per 10 ms fbank frame: 1010 frames
//!    per 10.24 s for AST-base with u = 10). Overlapping windows are averaged frame by frame — the
//!    strong probabilities and the weak head's attention logits — and the clip's weak scores are
//!    the attention pooling of the stitched frames (softmax over the whole clip's time axis).
//!    With the default hop (L/2) and even F the offsets are exact; otherwise they are rounded to
//!    the nearest output frame (≤ half a frame, 5 ms for AST-base).

use std::collections::VecDeque;

use aural_runtime::ops::fbank::{AstNorm, FbankOpts, FbankStream};
use aural_runtime::{Device, Error, Result, Tensor};

use super::AstSed;
use crate::sed::{attention_pool, FrameScores, SoftmaxAxis};

/// Options of [`AstSed::detect`] and [`Detector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOpts {
    /// Hop between windows of a long clip, in fbank frames (10 ms), at most max_length (windows must
    /// overlap or touch); `None` = max_length / 2.
    pub hop_frames: Option<usize>,
    /// Windows per forward pass (a [`Detector`] fills them across clips).
    pub batch: usize,
    /// AST input normalisation (mean, std); max_length comes from the model.
    pub norm: AstNorm,
    /// Keep the whole clip's fbank in [`ClipScores::fbank`] (for plots); without it memory does
    /// not grow with the clip's length beyond the scores.
    pub keep_fbank: bool,
}

impl Default for DetectOpts {
    fn default() -> Self {
        DetectOpts { hop_frames: None, batch: 4, norm: AstNorm::AUDIOSET, keep_fbank: true }
    }
}

/// The scores of one clip, on the host.
#[derive(Debug, Clone)]
pub struct ClipScores {
    /// Frame probabilities (frames × classes), before post-processing.
    pub strong: FrameScores,
    /// Clip probabilities (classes).
    pub weak: Vec<f32>,
    /// The raw log-mel fbank of the clip (fbank frames × mel), for plots; empty unless
    /// [`DetectOpts::keep_fbank`].
    pub fbank: Vec<f32>,
    pub fbank_frames: usize,
    /// Windows the clip was cut into.
    pub windows: usize,
}

/// Window start frames (fbank frames) for a clip of `n` frames, window `l`, hop `hop`.
pub fn window_starts(n: usize, l: usize, hop: usize) -> Vec<usize> {
    if n <= l {
        return vec![0];
    }
    let hop = hop.max(1);
    let mut s: Vec<usize> = (0..).map(|k| k * hop).take_while(|&s| s + l < n).collect();
    s.push(n - l);
    s
}

impl AstSed {
    /// Scores of one mono waveform at the model's sample rate (see the module doc): a
    /// [`Detector`] with this one clip.
    pub fn detect(&self, wave: &[f32], opts: &DetectOpts) -> Result<ClipScores> {
        let mut d = Detector::new(self, *opts)?;
        let id = d.begin();
        d.push(id, wave)?;
        d.end(id)?;
        d.flush()?;
        let mut done = d.take_done()?;
        Ok(done.pop().expect("the one clip is done after flush").1)
    }
}

/// Per-clip state of a [`Detector`]: samples not yet framed, the fbank frames later windows need,
/// and the stitching sums over output frames.
struct Clip {
    id: u64,
    fs: FbankStream,
    total_samples: usize,
    /// fbank frames from `fb_base` on (what windows still to be cut need).
    fb: Vec<f32>,
    fb_base: usize,
    /// Every fbank frame (keep_fbank only).
    all_fb: Vec<f32>,
    /// Next regular window (k·hop) to cut.
    next_k: usize,
    ended: bool,
    /// Window starts cut so far, and how many of their outputs were stitched in.
    starts: Vec<usize>,
    stitched: usize,
    /// A window's output waiting for earlier windows (stitching is in window order).
    waiting: Vec<(usize, SedWindow)>,
    ss: Vec<f32>,
    sa: Vec<f32>,
    cnt: Vec<f32>,
    /// The single window's own weak scores (a clip of one window).
    weak1: Vec<f32>,
}

/// One window's outputs: strong and attention logits (frames × classes), weak (classes).
struct SedWindow {
    strong: Vec<f32>,
    att: Vec<f32>,
    weak: Vec<f32>,
}

/// Incremental detection over any number of clips, in bounded memory: samples are pushed in blocks
/// as they arrive (a file read block by block, a stream), fbank frames are computed as soon as
/// they are complete, windows are cut as soon as their frames exist, and windows of consecutive
/// clips share forward passes (`batch` windows each). Clips finish in the order they began. The
/// numbers are those of cutting the whole clip at once ([`AstSed::detect`], the module doc):
/// frames are computed by [`FbankStream`] (equal to the whole clip's), the window set
/// is the same (a regular window is cut once a frame beyond it exists, the end-aligned one at the
/// end), and windows are stitched in order.
pub struct Detector<'m> {
    model: &'m AstSed,
    opts: DetectOpts,
    fo: FbankOpts,
    hop: usize,
    clips: VecDeque<Clip>,
    next_id: u64,
    /// Windows cut and not yet run: (clip id, window index, normalised input rows).
    queue: VecDeque<(u64, usize, Vec<f32>)>,
}

impl<'m> Detector<'m> {
    pub fn new(model: &'m AstSed, opts: DetectOpts) -> Result<Detector<'m>> {
        let c = &model.config;
        let l = c.ast.max_length;
        let fo = FbankOpts { sample_rate: c.sample_rate as f32, num_mel_bins: c.ast.num_mel_bins, ast_norm: None, ..Default::default() };
        FbankStream::new(&fo, model.device)?;
        let hop = opts.hop_frames.unwrap_or(l / 2).max(1);
        if hop > l {
            return Err(Error::Msg(format!(
                "detect: a window hop of {hop} fbank frames is longer than the window ({l} frames = {:.2} s): parts of a long clip would get no scores",
                l as f64 * 0.01
            )));
        }
        Ok(Detector { model, opts, fo, hop, clips: VecDeque::new(), next_id: 0, queue: VecDeque::new() })
    }

    /// Starts a clip; its id names it in [`Detector::push`], [`Detector::end`] and the results.
    pub fn begin(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let fs = FbankStream::new(&self.fo, self.model.device).expect("checked in Detector::new");
        self.clips.push_back(Clip {
            id,
            fs,
            total_samples: 0,
            fb: Vec::new(),
            fb_base: 0,
            all_fb: Vec::new(),
            next_k: 0,
            ended: false,
            starts: Vec::new(),
            stitched: 0,
            waiting: Vec::new(),
            ss: Vec::new(),
            sa: Vec::new(),
            cnt: Vec::new(),
            weak1: Vec::new(),
        });
        id
    }

    fn clip(&mut self, id: u64) -> Result<usize> {
        match self.clips.iter().position(|c| c.id == id) {
            Some(i) if !self.clips[i].ended => Ok(i),
            _ => Err(Error::Msg(format!("detect: clip {id} is not open"))),
        }
    }

    /// Appends samples (mono, the model's rate) to clip `id`; runs forward passes as windows fill
    /// batches.
    pub fn push(&mut self, id: u64, samples: &[f32]) -> Result<()> {
        let i = self.clip(id)?;
        let c = &mut self.clips[i];
        c.total_samples += samples.len();
        let start = c.fb.len();
        c.fs.push_into(samples, &mut c.fb)?;
        self.frames(i, start)?;
        self.run_full_batches()
    }

    /// Ends clip `id`: its last frames and windows are cut (they run with the next full batch or
    /// at [`Detector::flush`]).
    pub fn end(&mut self, id: u64) -> Result<()> {
        let i = self.clip(id)?;
        if self.clips[i].total_samples == 0 {
            return Err(Error::Msg("detect: empty audio".into()));
        }
        let c = &mut self.clips[i];
        let start = c.fb.len();
        c.fs.finish_into(&mut c.fb)?;
        self.frames(i, start)?;
        let l = self.model.config.ast.max_length;
        let c = &mut self.clips[i];
        c.ended = true;
        let n = c.fs.frames();
        // the regular windows (k·hop + l < n), then the end-aligned one; one window when n ≤ l
        self.cut_windows(i, n)?;
        let c = &self.clips[i];
        let last = if n <= l { 0 } else { n - l };
        if c.starts.last() != Some(&last) || c.starts.is_empty() {
            self.cut(i, last)?;
        }
        self.run_full_batches()
    }

    /// Runs every window still queued (the end of the input).
    pub fn flush(&mut self) -> Result<()> {
        while !self.queue.is_empty() {
            self.run_batch()?;
        }
        Ok(())
    }

    /// The clips finished so far, in the order they began: (id, scores).
    pub fn take_done(&mut self) -> Result<Vec<(u64, ClipScores)>> {
        let mut out = Vec::new();
        while self.clips.front().is_some_and(|c| c.ended && c.stitched == c.starts.len()) {
            let c = self.clips.pop_front().unwrap();
            out.push((c.id, self.finish(c)?));
        }
        Ok(out)
    }

    /// The frame probabilities of the oldest unfinished clip that no later window can change
    /// (frames × classes, from its first frame): for printing the events of a stream as they
    /// complete. The numbers equal those of the finished clip.
    pub fn final_scores(&self) -> Option<FrameScores> {
        let c = self.clips.front()?;
        let (k, f, l) = (self.k(), self.model.config.frames(), self.model.config.ast.max_length);
        // windows not stitched yet start at or after the first unstitched one, the next regular
        // start, and the end-aligned one (≥ n − l for the frames so far)
        let next = c.starts.get(c.stitched).copied().unwrap_or(c.next_k * self.hop).min(c.fs.frames().saturating_sub(l));
        let fin = (((next * f) as f64 / l as f64).round() as usize).min(c.cnt.len());
        let p = (0..fin * k).map(|i| c.ss[i] / c.cnt[i / k]).collect();
        FrameScores::new(fin, k, p).ok()
    }

    fn k(&self) -> usize {
        self.model.config.classes.len()
    }

    /// Takes the fbank frames appended to clip `i`'s buffer from `start` on (frames × mel) and cuts
    /// the windows they complete.
    fn frames(&mut self, i: usize, start: usize) -> Result<()> {
        let c = &mut self.clips[i];
        if c.fb.len() == start {
            return Ok(());
        }
        if self.opts.keep_fbank {
            c.all_fb.extend_from_slice(&c.fb[start..]);
        }
        let n = c.fs.frames();
        self.cut_windows(i, n)
    }

    /// Cuts the regular windows k·hop with k·hop + l < n (a frame beyond them exists).
    fn cut_windows(&mut self, i: usize, n: usize) -> Result<()> {
        let l = self.model.config.ast.max_length;
        while self.clips[i].next_k * self.hop + l < n {
            let s = self.clips[i].next_k * self.hop;
            self.clips[i].next_k += 1;
            self.cut(i, s)?;
        }
        // drop the frames no window will need: everything before the next regular start and
        // before the last l frames (the end-aligned window)
        let c = &mut self.clips[i];
        let keep_from = (c.next_k * self.hop).min(c.fs.frames().saturating_sub(l));
        if keep_from > c.fb_base {
            let mel = self.fo.num_mel_bins;
            c.fb.drain(..(keep_from - c.fb_base) * mel);
            c.fb_base = keep_from;
        }
        Ok(())
    }

    /// Queues the window starting at fbank frame `s` of clip `i` (padded, normalised).
    fn cut(&mut self, i: usize, s: usize) -> Result<()> {
        let (l, mel) = (self.model.config.ast.max_length, self.fo.num_mel_bins);
        let norm = self.opts.norm;
        let c = &mut self.clips[i];
        let rows = c.fs.frames().saturating_sub(s).min(l);
        let mut x = vec![norm.apply(0.0); l * mel];
        let from = (s - c.fb_base) * mel;
        for (dst, src) in x[..rows * mel].iter_mut().zip(&c.fb[from..from + rows * mel]) {
            *dst = norm.apply(*src);
        }
        c.starts.push(s);
        let w = c.starts.len() - 1;
        self.queue.push_back((c.id, w, x));
        Ok(())
    }

    fn run_full_batches(&mut self) -> Result<()> {
        while self.queue.len() >= self.opts.batch.max(1) {
            self.run_batch()?;
        }
        Ok(())
    }

    /// One forward pass over the first `batch` queued windows; their outputs are stitched.
    fn run_batch(&mut self) -> Result<()> {
        let (l, mel) = (self.model.config.ast.max_length, self.fo.num_mel_bins);
        let b = self.queue.len().min(self.opts.batch.max(1));
        let jobs: Vec<(u64, usize, Vec<f32>)> = self.queue.drain(..b).collect();
        let mut x = Vec::with_capacity(b * l * mel);
        for j in &jobs {
            x.extend_from_slice(&j.2);
        }
        let dev = self.model.device;
        let x = Tensor::from_vec(x, &[b, l, mel])?.to_device(dev)?;
        let out = self.model.forward(&x)?;
        let strong = out.strong.to_device(Device::Cpu)?.to_vec()?;
        let att = out.att.to_device(Device::Cpu)?.to_vec()?;
        let weak = out.weak.to_device(Device::Cpu)?.to_vec()?;
        let (k, f) = (self.k(), self.model.config.frames());
        for (j, (id, w, _)) in jobs.into_iter().enumerate() {
            let win = SedWindow {
                strong: strong[j * f * k..(j + 1) * f * k].to_vec(),
                att: att[j * f * k..(j + 1) * f * k].to_vec(),
                weak: weak[j * k..(j + 1) * k].to_vec(),
            };
            let i = self.clips.iter().position(|c| c.id == id).expect("a queued window's clip is open");
            self.clips[i].waiting.push((w, win));
            self.stitch(i);
        }
        Ok(())
    }

    /// Adds the waiting outputs of clip `i` to its sums, in window order.
    fn stitch(&mut self, i: usize) {
        let (k, f, l) = (self.k(), self.model.config.frames(), self.model.config.ast.max_length);
        let c = &mut self.clips[i];
        while let Some(p) = c.waiting.iter().position(|(w, _)| *w == c.stitched) {
            let (w, win) = c.waiting.swap_remove(p);
            let o = ((c.starts[w] * f) as f64 / l as f64).round() as usize;
            if c.cnt.len() < o + f {
                c.cnt.resize(o + f, 0.0);
                c.ss.resize((o + f) * k, 0.0);
                c.sa.resize((o + f) * k, 0.0);
            }
            for t in 0..f {
                c.cnt[o + t] += 1.0;
                for j in 0..k {
                    c.ss[(o + t) * k + j] += win.strong[t * k + j];
                    c.sa[(o + t) * k + j] += win.att[t * k + j];
                }
            }
            if w == 0 {
                c.weak1 = win.weak;
            }
            c.stitched += 1;
        }
    }

    /// The scores of a clip whose windows are all stitched.
    fn finish(&self, mut c: Clip) -> Result<ClipScores> {
        let k = self.k();
        let windows = c.starts.len();
        let (fbank, fbank_frames) = (std::mem::take(&mut c.all_fb), c.fs.frames());
        if windows == 1 {
            // the window's own outputs (the sums hold them once)
            let strong = FrameScores::new(c.cnt.len(), k, c.ss).map_err(sed_err)?;
            return Ok(ClipScores { strong, weak: c.weak1, fbank, fbank_frames, windows });
        }
        let total = c.cnt.len();
        for (t, &cn) in c.cnt.iter().enumerate() {
            for j in 0..k {
                c.ss[t * k + j] /= cn;
                c.sa[t * k + j] /= cn;
            }
        }
        let strong = FrameScores::new(total, k, c.ss).map_err(sed_err)?;
        let att = FrameScores::new(total, k, c.sa).map_err(sed_err)?;
        let weak = attention_pool(&strong, &att, SoftmaxAxis::Time).map_err(sed_err)?;
        Ok(ClipScores { strong, weak, fbank, fbank_frames, windows })
    }
}

fn sed_err(e: crate::sed::SedError) -> Error {
    Error::Msg(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::window_starts;

    #[test]
    fn windows_cover_the_clip() {
        assert_eq!(window_starts(0, 1024, 512), vec![0]);
        assert_eq!(window_starts(1024, 1024, 512), vec![0]);
        assert_eq!(window_starts(1025, 1024, 512), vec![0, 1]);
        assert_eq!(window_starts(2998, 1024, 512), vec![0, 512, 1024, 1536, 1974]);
        for n in [1500usize, 2048, 3000, 4097] {
            let s = window_starts(n, 1024, 300);
            assert_eq!(*s.last().unwrap() + 1024, n);
            assert!(s.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 300));
        }
    }
}
