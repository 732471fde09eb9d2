//! The S5 system as the DCASE 2025 task 4 baseline runs it: the tagger on the mixture's reference
//! channel → label selection → one separator pass per selected label (or one ResUNetK pass for up to
//! three) → the dry source of each label.

use aural_runtime::{Error, Result};

use super::select::select_labels;
use crate::m2d::M2dTagger;
use crate::separator::{label_vector, separate_long, ChunkOpts, ResUNet};

/// The tagger and the separator, on one device.
pub struct S5System {
    pub tagger: M2dTagger,
    pub separator: ResUNet,
}

/// What the system made of one mixture.
#[derive(Debug, Clone)]
pub struct S5Output {
    /// The tagger's clip probability per class (the tagger's class order).
    pub probabilities: Vec<f32>,
    /// The selected labels in class-index order, padded with "silence" (the baseline's slots).
    pub slots: Vec<String>,
    /// (label, its separated source: output channels × samples), for every non-silence slot.
    pub sources: Vec<(String, Vec<Vec<f32>>)>,
}

impl S5System {
    /// Checks that the two models fit together: the same rate, and every tagger class known to the
    /// separator.
    pub fn new(tagger: M2dTagger, separator: ResUNet) -> Result<S5System> {
        let (t, s) = (&tagger.config, &separator.config);
        if t.sample_rate != s.sample_rate {
            return Err(Error::Msg(format!("the tagger runs at {} Hz and the separator at {} Hz", t.sample_rate, s.sample_rate)));
        }
        if let Some(c) = t.classes.iter().find(|c| s.class_index(c).is_none()) {
            return Err(Error::Msg(format!("the tagger's class '{c}' is not one of the separator's classes ({})", s.classes.join(", "))));
        }
        Ok(S5System { tagger, separator })
    }

    /// Runs the system on one mixture (channels × samples at the models' rate). `threshold`
    /// overrides the tagger config's.
    pub fn run(&self, mixture: &[Vec<f32>], threshold: Option<f32>, chunk: &ChunkOpts) -> Result<S5Output> {
        let tc = &self.tagger.config;
        let ch = mixture
            .get(tc.ref_channel)
            .ok_or_else(|| Error::Msg(format!("the tagger listens to channel {} but the mixture has {}", tc.ref_channel, mixture.len())))?;
        let wave = aural_runtime::Tensor::from_slice(ch, &[1, ch.len()], self.tagger.device)?;
        let probabilities = self.tagger.probabilities(&wave)?.remove(0);
        let [lo, hi] = tc.nevent_range;
        let slots = select_labels(&probabilities, &tc.classes, threshold.unwrap_or(tc.threshold), (lo, hi))?;
        let labels: Vec<&str> = slots.iter().map(String::as_str).filter(|l| *l != "silence").collect();
        let sc = &self.separator.config;
        let (s, o) = (sc.target_sources_num, sc.output_channels);
        let len = ch.len();
        let mut sources = Vec::new();
        for group in labels.chunks(s) {
            let y = separate_long(&self.separator, mixture, &label_vector(sc, group)?, chunk, |_, _| {})?.to_vec()?;
            for (slot, name) in group.iter().enumerate() {
                let chans = (0..o).map(|k| y[(slot * o + k) * len..][..len].to_vec()).collect();
                sources.push((name.to_string(), chans));
            }
        }
        Ok(S5Output { probabilities, slots, sources })
    }
}
