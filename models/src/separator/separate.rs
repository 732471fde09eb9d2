//! Running the separator on whole recordings: label vectors from class names, and clips of any
//! length in overlapping chunks with a linear crossfade (bounded memory).

use aural_runtime::{Error, Result, Tensor};

use super::config::{Conditioning, SeparatorConfig};
use super::cpjku::Conditions;
use super::ResUNet;

/// The multi-hot label vector (label_len) of up to `target_sources_num` classes, one one-hot slot
/// each, in the order given; unused slots stay zero (silence). Unknown names are an error listing
/// the model's classes.
pub fn label_vector(config: &SeparatorConfig, labels: &[&str]) -> Result<Vec<f32>> {
    if config.conditioning != Conditioning::Label {
        return Err(Error::Msg("this separator is conditioned on a query vector, not on labels".into()));
    }
    let s = config.target_sources_num;
    if labels.len() > s {
        return Err(Error::Msg(format!("{} labels given, but the separator takes at most {s} per pass", labels.len())));
    }
    let k = config.classes.len();
    let mut v = vec![0f32; config.label_len];
    for (slot, name) in labels.iter().enumerate() {
        let i = config
            .class_index(name)
            .ok_or_else(|| Error::Msg(format!("unknown label '{name}'; the separator's classes are: {}", config.classes.join(", "))))?;
        v[slot * k + i] = 1.0;
    }
    Ok(v)
}

/// One pass of a label-conditioned separator: its condition vector and the label each output slot
/// holds (`None`: an unused slot, silence).
pub type LabelPass = (Vec<f32>, Vec<Option<String>>);

/// The passes that separate `labels` (repeats dropped, order kept): groups of `target_sources_num`
/// labels, one [`label_vector`] each.
pub fn label_passes(config: &SeparatorConfig, labels: &[&str]) -> Result<Vec<LabelPass>> {
    let mut seen = std::collections::BTreeSet::new();
    let labels: Vec<&str> = labels.iter().copied().filter(|l| seen.insert(*l)).collect();
    let s = config.target_sources_num.max(1);
    labels
        .chunks(s)
        .map(|group| {
            let mut names: Vec<Option<String>> = group.iter().map(|l| Some(l.to_string())).collect();
            names.resize(s, None);
            Ok((label_vector(config, group)?, names))
        })
        .collect()
}

/// How long recordings are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkOpts {
    /// Recordings up to this many seconds run in one pass (exactly as the model runs a clip); longer
    /// ones in chunks of this length.
    pub chunk_s: f64,
    /// Overlap of consecutive chunks, crossfaded linearly.
    pub overlap_s: f64,
}

impl Default for ChunkOpts {
    fn default() -> Self {
        ChunkOpts { chunk_s: 10.0, overlap_s: 1.0 }
    }
}

/// Start samples of the chunks covering `len` samples: every chunk is `win` long, consecutive
/// starts at most `win − overlap` apart, the last chunk ends at `len`.
pub fn chunk_starts(len: usize, win: usize, overlap: usize) -> Vec<usize> {
    if len <= win {
        return vec![0];
    }
    let hop = (win - overlap.min(win - 1)).max(1);
    let mut v: Vec<usize> = (0..).map(|i| i * hop).take_while(|&s| s + win < len).collect();
    v.push(len - win);
    v
}

/// Separates one recording `mixture` (C_in, L) with one condition (label vector or query) →
/// (S, O, L). Long recordings run chunk by chunk (see [`ChunkOpts`]); `progress` is called after
/// each chunk with (done, total).
pub fn separate_long(model: &ResUNet, mixture: &[Vec<f32>], cond: &[f32], opts: &ChunkOpts, mut progress: impl FnMut(usize, usize)) -> Result<Tensor> {
    let cfg = &model.config;
    let c = mixture.len();
    let len = mixture.first().map_or(0, |x| x.len());
    if c != cfg.input_channels {
        return Err(Error::Msg(format!("the separator takes {}-channel audio, this recording has {c} channel(s)", cfg.input_channels)));
    }
    let sr = cfg.sample_rate as f64;
    let win = ((opts.chunk_s * sr).round() as usize).max(cfg.window_size);
    let overlap = ((opts.overlap_s * sr).round() as usize).min(win / 2);
    let starts = chunk_starts(len, win, overlap);
    let cond_t = Tensor::from_slice(cond, &[1, cond.len()], model.device)?;
    let run = |s0: usize, n: usize| -> Result<Vec<f32>> {
        let mut x = Vec::with_capacity(c * n);
        for ch in mixture {
            x.extend_from_slice(&ch[s0..s0 + n]);
        }
        let x = Tensor::from_slice(&x, &[1, c, n], model.device)?;
        model.forward(&x, &cond_t)?.to_vec()
    };
    let (s, o) = (cfg.target_sources_num, cfg.output_channels);
    if starts.len() == 1 {
        let y = run(0, len)?;
        progress(1, 1);
        return Tensor::from_vec(y, &[s, o, len]);
    }
    let mut acc = vec![0f32; s * o * len];
    let mut wsum = vec![0f32; len];
    for (i, &s0) in starts.iter().enumerate() {
        let y = run(s0, win)?;
        // Linear ramps over the overlaps with the previous and the next chunk.
        let left = if i > 0 { starts[i - 1] + win - s0 } else { 0 };
        let right = if i + 1 < starts.len() { s0 + win - starts[i + 1] } else { 0 };
        for t in 0..win {
            let mut w = 1f32;
            if t < left {
                w = w.min((t as f32 + 0.5) / left as f32);
            }
            if t >= win - right {
                w = w.min(((win - t) as f32 - 0.5) / right as f32);
            }
            wsum[s0 + t] += w;
            for so in 0..s * o {
                acc[so * len + s0 + t] += w * y[so * win + t];
            }
        }
        progress(i + 1, starts.len());
    }
    for so in 0..s * o {
        for (a, &w) in acc[so * len..(so + 1) * len].iter_mut().zip(&wsum) {
            *a /= w;
        }
    }
    Tensor::from_vec(acc, &[s, o, len])
}

/// Separates one whole recording `mixture` (C_in, L) with one label vector and the CP-JKU
/// conditions → (S, O, L). The strong logits and the hidden states describe the whole clip, so it
/// runs in one pass whatever its length.
pub fn separate_conditioned(model: &ResUNet, mixture: &[Vec<f32>], cond: &[f32], extra: &Conditions) -> Result<Tensor> {
    let cfg = &model.config;
    let c = mixture.len();
    if c != cfg.input_channels {
        return Err(Error::Msg(format!("the separator takes {}-channel audio, this recording has {c} channel(s)", cfg.input_channels)));
    }
    let len = mixture.first().map_or(0, |x| x.len());
    let x = Tensor::from_vec(mixture.concat(), &[1, c, len])?.to_device(model.device)?;
    let cond_t = Tensor::from_slice(cond, &[1, cond.len()], model.device)?;
    let y = model.forward_with(&x, &cond_t, extra, &mut |_, _| Ok(()))?;
    let (s, o) = (cfg.target_sources_num, cfg.output_channels);
    y.reshape(&[s, o, len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_recording() {
        assert_eq!(chunk_starts(100, 100, 10), vec![0]);
        assert_eq!(chunk_starts(50, 100, 10), vec![0]);
        assert_eq!(chunk_starts(250, 100, 10), vec![0, 90, 150]);
        assert_eq!(chunk_starts(190, 100, 10), vec![0, 90]);
        for (len, win, ov) in [(1001, 100, 30), (12345, 1000, 100), (101, 100, 99)] {
            let s = chunk_starts(len, win, ov);
            assert_eq!(s[0], 0);
            assert_eq!(*s.last().unwrap() + win, len);
            assert!(s.windows(2).all(|p| p[1] > p[0] && p[1] - p[0] <= win - ov.min(win - 1)));
        }
    }

    #[test]
    fn label_vectors_have_one_slot_per_target() {
        let c = SeparatorConfig { target_sources_num: 3, label_len: 54, ..Default::default() };
        let v = label_vector(&c, &["Speech", "Dishes"]).unwrap();
        assert_eq!(v.iter().filter(|&&x| x == 1.0).count(), 2);
        assert_eq!(v[15], 1.0);
        assert_eq!(v[18 + 7], 1.0);
        let e = label_vector(&c, &["Speach"]).unwrap_err().to_string();
        assert!(e.contains("Speach") && e.contains("Speech"), "{e}");
        let e = label_vector(&SeparatorConfig::default(), &["Speech", "Dishes"]).unwrap_err().to_string();
        assert!(e.contains("at most 1"), "{e}");
    }
}
