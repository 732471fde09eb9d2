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

use aural_runtime::ops::fbank::{fbank, AstNorm, FbankOpts};
use aural_runtime::{Device, Error, Result, Tensor};

use super::AstSed;
use crate::sed::{attention_pool, FrameScores, SoftmaxAxis};

/// Options of [`AstSed::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOpts {
    /// Hop between windows of a long clip, in fbank frames (10 ms), at most max_length (windows must
    /// overlap or touch); `None` = max_length / 2.
    pub hop_frames: Option<usize>,
    /// Windows per forward pass.
    pub batch: usize,
    /// AST input normalisation (mean, std); max_length comes from the model.
    pub norm: AstNorm,
}

impl Default for DetectOpts {
    fn default() -> Self {
        DetectOpts { hop_frames: None, batch: 4, norm: AstNorm::AUDIOSET }
    }
}

/// The scores of one clip, on the host.
#[derive(Debug, Clone)]
pub struct ClipScores {
    /// Frame probabilities (frames × classes), before post-processing.
    pub strong: FrameScores,
    /// Clip probabilities (classes).
    pub weak: Vec<f32>,
    /// The raw log-mel fbank of the clip (fbank frames × mel), for plots.
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
    /// Scores of one mono waveform at the model's sample rate (see the module doc).
    pub fn detect(&self, wave: &[f32], opts: &DetectOpts) -> Result<ClipScores> {
        let c = &self.config;
        let (l, mel) = (c.ast.max_length, c.ast.num_mel_bins);
        if wave.is_empty() {
            return Err(Error::Msg("detect: empty audio".into()));
        }
        let fo = FbankOpts { sample_rate: c.sample_rate as f32, num_mel_bins: mel, ast_norm: None, ..Default::default() };
        let dev = self.device;
        // Clips shorter than one 25 ms frame have no fbank frame: one all-padding window.
        let fb: Vec<f32> = if wave.len() < (fo.sample_rate * fo.frame_length_ms / 1000.0).round() as usize {
            Vec::new()
        } else {
            fbank(&Tensor::from_vec(wave.to_vec(), &[wave.len()])?.to_device(dev)?, &fo)?.to_vec()?
        };
        let n = fb.len() / mel;
        let hop = opts.hop_frames.unwrap_or(l / 2).max(1);
        if hop > l {
            return Err(Error::Msg(format!(
                "detect: a window hop of {hop} fbank frames is longer than the window ({l} frames = {:.2} s): parts of a long clip would get no scores",
                l as f64 * 0.01
            )));
        }
        let starts = window_starts(n, l, hop);
        let norm = opts.norm;
        let pad = norm.apply(0.0);
        let k = c.classes.len();
        let f = c.frames();
        let (mut strong, mut att, mut weak) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in starts.chunks(opts.batch.max(1)) {
            let mut x = vec![pad; chunk.len() * l * mel];
            for (i, &s) in chunk.iter().enumerate() {
                let rows = (n - s).min(l);
                for (dst, src) in x[i * l * mel..][..rows * mel].iter_mut().zip(&fb[s * mel..(s + rows) * mel]) {
                    *dst = norm.apply(*src);
                }
            }
            let x = Tensor::from_vec(x, &[chunk.len(), l, mel])?.to_device(dev)?;
            let out = self.forward(&x)?;
            strong.extend(out.strong.to_device(Device::Cpu)?.to_vec()?);
            att.extend(out.att.to_device(Device::Cpu)?.to_vec()?);
            weak.extend(out.weak.to_device(Device::Cpu)?.to_vec()?);
        }
        let windows = starts.len();
        if windows == 1 {
            return Ok(ClipScores { strong: FrameScores::new(f, k, strong).map_err(sed_err)?, weak, fbank: fb, fbank_frames: n, windows });
        }
        let off = |s: usize| ((s * f) as f64 / l as f64).round() as usize;
        let total = off(*starts.last().unwrap()) + f;
        let (mut ss, mut sa, mut cnt) = (vec![0f32; total * k], vec![0f32; total * k], vec![0f32; total]);
        for (w, &s) in starts.iter().enumerate() {
            let o = off(s);
            for t in 0..f {
                cnt[o + t] += 1.0;
                for j in 0..k {
                    ss[(o + t) * k + j] += strong[(w * f + t) * k + j];
                    sa[(o + t) * k + j] += att[(w * f + t) * k + j];
                }
            }
        }
        for (t, &cn) in cnt.iter().enumerate() {
            for j in 0..k {
                ss[t * k + j] /= cn;
                sa[t * k + j] /= cn;
            }
        }
        let strong = FrameScores::new(total, k, ss).map_err(sed_err)?;
        let att = FrameScores::new(total, k, sa).map_err(sed_err)?;
        let weak = attention_pool(&strong, &att, SoftmaxAxis::Time).map_err(sed_err)?;
        Ok(ClipScores { strong, weak, fbank: fb, fbank_frames: n, windows })
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
