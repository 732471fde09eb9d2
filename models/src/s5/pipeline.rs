//! The S5 system as the DCASE 2025 task 4 baseline runs it: the tagger on the mixture's reference
//! channel → label selection → one separator pass per selected label (or one ResUNetK pass for up to
//! three) → the dry source of each label. With CP-JKU's separator (seed 003) the stage-2 SED model runs
//! once per mixture between the two: its strong logits (time-FiLM) and hidden states (injection)
//! condition every separator pass, the iterative model refining each source N times.

use aural_runtime::{Error, Result};

use super::select::select_labels;
use crate::m2d::{M2dSed, M2dTagger};
use crate::separator::{label_vector, separate_conditioned, separate_long, ChunkOpts, Conditions, ResUNet};

/// The tagger, the separator and (CP-JKU) the stage-2 SED model, on one device.
pub struct S5System {
    pub tagger: M2dTagger,
    pub separator: ResUNet,
    pub sed: Option<M2dSed>,
    /// Passes of an iterative separator (None: its config's).
    pub iterations: Option<usize>,
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

fn check_pair(tagger: &M2dTagger, separator: &ResUNet) -> Result<()> {
    let (t, s) = (&tagger.config, &separator.config);
    if t.sample_rate != s.sample_rate {
        return Err(Error::Msg(format!("the tagger runs at {} Hz and the separator at {} Hz", t.sample_rate, s.sample_rate)));
    }
    if let Some(c) = t.classes.iter().find(|c| s.class_index(c).is_none()) {
        return Err(Error::Msg(format!("the tagger's class '{c}' is not one of the separator's classes ({})", s.classes.join(", "))));
    }
    Ok(())
}

impl S5System {
    /// Checks that the two models fit together: the same rate, and every tagger class known to the
    /// separator.
    pub fn new(tagger: M2dTagger, separator: ResUNet) -> Result<S5System> {
        if separator.config.needs_sed() {
            return Err(Error::Msg(
                "this separator (time-FiLM / embedding injection) needs the stage-2 SED model (S5System::with_sed; `aural s5 --sed DIR`)".into(),
            ));
        }
        check_pair(&tagger, &separator)?;
        Ok(S5System { tagger, separator, sed: None, iterations: None })
    }

    /// The CP-JKU system: the separator conditioned by the SED model's outputs. The SED model must
    /// read audio at the separator's rate and know its classes in the same order (the strong logits
    /// are indexed by the label vector).
    pub fn with_sed(tagger: M2dTagger, separator: ResUNet, sed: M2dSed, iterations: Option<usize>) -> Result<S5System> {
        check_pair(&tagger, &separator)?;
        let (d, s) = (&sed.config, &separator.config);
        let rate = d.input_sample_rate.unwrap_or(d.sample_rate);
        if rate != s.sample_rate {
            return Err(Error::Msg(format!("the SED model reads {rate} Hz audio and the separator runs at {} Hz", s.sample_rate)));
        }
        if d.classes != s.classes {
            return Err(Error::Msg(format!("the SED model's classes ({}) differ from the separator's ({})", d.classes.join(", "), s.classes.join(", "))));
        }
        Ok(S5System { tagger, separator, sed: Some(sed), iterations })
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
        let sed = match &self.sed {
            Some(m) if !labels.is_empty() => {
                let x = aural_runtime::Tensor::from_vec(mixture.concat(), &[1, mixture.len(), len])?.to_device(m.device)?;
                Some(m.forward(&x)?)
            }
            _ => None,
        };
        let mut sources = Vec::new();
        for group in labels.chunks(s) {
            let lv = label_vector(sc, group)?;
            let y = match &sed {
                Some(o) => {
                    let extra = Conditions { strong_logits: Some(&o.strong_logits), embeddings: Some(&o.hidden_states), iterations: self.iterations };
                    separate_conditioned(&self.separator, mixture, &lv, &extra)?
                }
                None if self.iterations.is_some() => {
                    separate_conditioned(&self.separator, mixture, &lv, &Conditions { iterations: self.iterations, ..Default::default() })?
                }
                None => separate_long(&self.separator, mixture, &lv, chunk, |_, _| {})?,
            }
            .to_vec()?;
            for (slot, name) in group.iter().enumerate() {
                let chans = (0..o).map(|k| y[(slot * o + k) * len..][..len].to_vec()).collect();
                sources.push((name.to_string(), chans));
            }
        }
        Ok(S5Output { probabilities, slots, sources })
    }
}
