//! `trainer separator`: fine-tunes the ResUNet30 separator (the DCASE 2025 task 4 baseline's, or
//! AudioSep's with label conditioning) with the negative-SNR loss, on any device, resumable bit for bit.
//!
//! Data: pre-mixed sets in the baseline's layout, `soundscape/<name>.wav` (the model's input channels)
//! and `oracle_target/<name>_<Label>.wav` (the dry source at microphone 0), labels from the file
//! names (the S5 metrics' reader, [`read_layout`]); every mixture of a set has one length. Or, for
//! training, mixtures made on the fly from dry sources, backgrounds and simulated or given room
//! responses ([`crate::mixing`]).
//!
//! One optimizer step (global step n = 1, 2, …), as the baseline's `LabelQueriedSeparationLightning1LB`:
//! 1. `batch` mixtures in a per-epoch shuffled order; for each, one of its labels drawn at random
//!    (a ChaCha stream of (seed, sample index)) is the query (a one-hot) and its dry source the target.
//!    A model separating S > 1 sources per pass (the baseline's ResUNetK) gets every label of the
//!    mixture in its slots (`LabelQueriedSeparationLightning`): targets (B, S, L), silent slots zero;
//!    the loss below over the B·S rows is then the baseline's masked loss exactly (a silent slot's
//!    output is gated to zero, its SNR is 10·log10(ε/ε) = 0 and its gradient 0).
//! 2. Forward with BatchNorm in training mode (batch statistics; the running statistics updated with
//!    momentum 0.01 as torch does), L = mean over the batch of −SNR(estimate, target)
//!    ([`neg_snr`](aural_autograd::ops::neg_snr), torchmetrics' plain SNR), backward.
//! 3. Gradient clipping (global norm, default 0.5), lr = base · [`lr_factor`], AdamW (amsgrad with
//!    `[train] amsgrad = true`).
//!
//! Validation (every epoch by default, and at the last step): the current weights with BatchNorm in
//! evaluation mode separate every labelled source of every validation mixture (oracle labels), scored
//! with the S5 metrics ([`score_mixture`], [`report`]): CA-SDRi — here the mean SDR improvement over
//! the mixture's channel 0, since oracle labels make every label a true positive — and label accuracy
//! (100 % by construction with oracle labels; it is reported so that logs of the whole system and of
//! the separator alone read alike). The best CA-SDRi is kept in `best/`.
//!
//! CP-JKU separators (DESIGN.md §6.5) train the same way, with `[model] sed` naming the stage-2 SED
//! model (frozen): per batch its strong logits and hidden states are computed without a tape and
//! condition the separator (time-FiLM, injection); an iterative separator runs a number of passes
//! drawn per step from 1..=iterations (stream (seed, PASSES, step)), the gradient through the last
//! pass only (CP-JKU's recipe); validation runs the config's full number of passes.
//!
//! ## Starting from another separator (`[model] config = "new.json"`)
//! `init` may hold a separator of another shape (AudioSep's 1-channel query model, the baseline's
//! 4-channel model): `config` gives the architecture to train, and [`adapt_checkpoint`] builds its
//! first weights — a tensor of the same name and shape is copied; `pre_conv.weight` from one input
//! channel is repeated over the new input channels and divided by their count (more channels than the
//! source: the source's copied, the new ones zero, e.g. the iterative model's feedback channel);
//! `after_conv` from one input channel is repeated per channel; `base.` and the iterative model's
//! `base.ss_model.` map onto each other; everything else is drawn fresh from the seed as PyTorch
//! initialises the module (Linear / Conv / ConvTranspose weight and bias U(±1/√fan_in), BatchNorm,
//! LayerNorm and GroupNorm 1 and 0 with running statistics 0 and 1, GRU U(±1/√hidden), PReLU 0.25,
//! the injection's layer weights 1/L and merge weights 1). The copied and repeated tensors are the
//! pretrained ones: their learning rate is `lr · pretrained_lr_factor` (`[train]`, default 1; CP-JKU
//! uses 0.2), the fresh ones train at `lr`.
//!
//! A NaN/inf loss stops the run with the step, the batch's files and the first op that produced a
//! non-finite value (the forward is replayed on a checking tape).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use aural_autograd::optim::{clip_grad_norm, AdamW, ParamGroup};
use aural_autograd::{ops, Grads, Tape};
use aural_models::audio::{self, Channels};
use aural_models::m2d::M2dSed;
use aural_models::s5::metrics::{read_layout, report, score_mixture, LayoutItem, Slot};
use aural_models::separator::train::{BnMode, TrainableSeparator};
use aural_models::separator::{Conditioning, Conditions, ResUNet, SeparatorConfig};
use aural_runtime::{safetensors_io, Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::config::{PremixedCfg, SepTrainConfig};
use crate::data::{purpose, rng_for, BatchPlan, Loader};
use crate::mixing::{make_sample, Material, MixSpec, Sample};
use crate::run::{lr_factor, plot_curves, progress, read_trainer_state, restore_optimizer, start, write_trainer_state, RunArgs, RunDir, Started};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
}

/// The format tag of `trainer_state.json`.
const FORMAT: &str = "aural trainer separator v1";

/// A pre-mixed set: its mixtures (with their reference files) and the common length.
pub struct PremixedSet {
    pub items: Vec<LayoutItem>,
    /// Samples of every mixture.
    pub len: usize,
}

impl PremixedSet {
    /// Reads the layout of `c` for a model with `channels` input channels at `rate` Hz; every file's
    /// header is checked (channels, rate, length) before training starts.
    pub fn load(c: &PremixedCfg, classes: &[String], channels: usize, rate: u32, what: &str) -> Result<PremixedSet> {
        let (items, warnings) = read_layout(&c.soundscape, &c.oracle_target, classes).map_err(|e| anyhow!("[data] {what}: {e}"))?;
        for w in warnings {
            eprintln!("warning: [data] {what}: {w}");
        }
        let lens: Vec<Result<usize>> = items
            .par_iter()
            .map(|it| {
                let h = audio::read_wav(&it.mixture).map_err(|e| anyhow!("[data] {what}: {e}"))?;
                if h.channels.len() != channels || h.sample_rate != rate {
                    bail!(
                        "[data] {what}: {}: {} channels at {} Hz; the model takes {channels} channels at {rate} Hz",
                        it.mixture.display(),
                        h.channels.len(),
                        h.sample_rate
                    );
                }
                Ok(h.num_samples())
            })
            .collect();
        let mut len = None;
        for (it, l) in items.iter().zip(lens) {
            let l = l?;
            match len {
                None => len = Some(l),
                Some(m) if m != l => bail!(
                    "[data] {what}: {} has {l} samples, {} has {m}: the mixtures of a set must have one length",
                    it.mixture.display(),
                    items[0].mixture.display()
                ),
                _ => {}
            }
        }
        Ok(PremixedSet { items, len: len.unwrap_or(0) })
    }
}

/// One batch: mixtures (B, C, L), one-hot queries (B, K), targets (B, 1, L).
pub struct SepBatch {
    pub mixture: Tensor,
    pub labels: Tensor,
    pub target: Tensor,
    pub files: Vec<PathBuf>,
}

/// Where training mixtures come from.
pub enum TrainData {
    Premixed(PremixedSet),
    /// Mixed on the fly (`aural_trainer::mixing`), `per_epoch` mixtures an epoch.
    Mix {
        material: Material,
        spec: MixSpec,
        per_epoch: usize,
    },
}

/// The batches of a run: sample g = micro·batch + j is mixture `order(epoch)[g mod n]` with the label
/// drawn from stream (seed, LABEL, g) (pre-mixed), or on-the-fly mixture g.
pub struct SepPlan {
    pub data: TrainData,
    pub batch: usize,
    pub seed: u64,
    pub channels: usize,
    pub rate: u32,
    pub classes: usize,
    /// Sources per pass (S): 1 queries one label drawn per mixture; S > 1 (ResUNetK) queries every
    /// label of the mixture in its slots, silent slots with zero targets.
    pub sources: usize,
}

impl SepPlan {
    fn order(&self, n: usize, epoch: u64) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut rng_for(self.seed, purpose::ORDER, 0, epoch));
        p
    }

    /// Mixtures an epoch.
    pub fn len(&self) -> usize {
        match &self.data {
            TrainData::Premixed(s) => s.items.len(),
            TrainData::Mix { per_epoch, .. } => *per_epoch,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn default_steps_per_epoch(&self) -> u64 {
        (self.len() / self.batch).max(1) as u64
    }

    fn mixed(&self, micro: u64, material: &Material, spec: &MixSpec) -> Result<SepBatch> {
        let b = self.batch;
        let samples: Vec<Result<Sample>> = (0..b as u64).into_par_iter().map(|j| make_sample(material, spec, micro * b as u64 + j)).collect();
        let (len, ch) = (spec.len, self.channels);
        let (mut mix, mut tgt, mut lab, mut files) = (Vec::with_capacity(b * ch * len), Vec::with_capacity(b * len), vec![0f32; b * self.classes], Vec::new());
        for (j, s) in samples.into_iter().enumerate() {
            let s = s?;
            mix.extend(s.mixture.into_iter().flatten());
            tgt.extend(s.target);
            lab[j * self.classes + s.class] = 1.0;
            files.extend(s.files);
        }
        Ok(SepBatch {
            mixture: Tensor::from_vec(mix, &[b, ch, len])?,
            labels: Tensor::from_vec(lab, &[b, self.classes])?,
            target: Tensor::from_vec(tgt, &[b, 1, len])?,
            files,
        })
    }
}

impl BatchPlan for SepPlan {
    type Batch = SepBatch;

    fn batch(&self, micro: u64) -> Result<SepBatch> {
        let set = match &self.data {
            TrainData::Premixed(s) => s,
            TrainData::Mix { material, spec, .. } => return self.mixed(micro, material, spec),
        };
        let n = set.items.len() as u64;
        let mut members = Vec::with_capacity(self.batch);
        let mut cached: Option<(u64, Vec<usize>)> = None;
        for j in 0..self.batch as u64 {
            let g = micro * self.batch as u64 + j;
            let epoch = g / n;
            if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
                cached = Some((epoch, self.order(set.items.len(), epoch)));
            }
            let it = &set.items[cached.as_ref().unwrap().1[(g % n) as usize]];
            if self.sources > 1 {
                if it.references.len() > self.sources {
                    bail!("{}: {} references; the model separates {} per pass", it.mixture.display(), it.references.len(), self.sources);
                }
                members.push((it, &it.references[..]));
            } else {
                let r = rng_for(self.seed, purpose::LABEL, g, 0).gen_range(0..it.references.len());
                members.push((it, &it.references[r..r + 1]));
            }
        }
        let len = set.len;
        type Loaded = Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)>;
        let loaded: Vec<Loaded> = members
            .par_iter()
            .map(|(it, refs)| {
                let m = audio::load(&it.mixture, self.rate, Channels::All).map_err(|e| anyhow!("{e}"))?;
                if m.channels.len() != self.channels || m.num_samples() != len {
                    bail!("{}: {} channels × {} samples, expected {} × {len}", it.mixture.display(), m.channels.len(), m.num_samples(), self.channels);
                }
                let mut ts = Vec::with_capacity(refs.len());
                for (_, rpath) in refs.iter() {
                    let t = audio::load(rpath, self.rate, Channels::MixDown).map_err(|e| anyhow!("{e}"))?;
                    if t.num_samples() != len {
                        bail!("{}: {} samples, its mixture {} has {len}", rpath.display(), t.num_samples(), it.mixture.display());
                    }
                    ts.push(t.channels.into_iter().next().unwrap_or_default());
                }
                Ok((m.channels, ts))
            })
            .collect();
        let (b, sn, k) = (self.batch, self.sources, self.classes);
        let (mut mix, mut tgt, mut lab) = (Vec::with_capacity(b * self.channels * len), vec![0f32; b * sn * len], vec![0f32; b * sn * k]);
        for (j, l) in loaded.into_iter().enumerate() {
            let (m, ts) = l?;
            mix.extend(m.into_iter().flatten());
            // Slot i: reference i (silent slots: zero label, zero target).
            for (i, (t, (ci, _))) in ts.into_iter().zip(members[j].1).enumerate() {
                tgt[(j * sn + i) * len..][..len].copy_from_slice(&t);
                lab[(j * sn + i) * k + ci] = 1.0;
            }
        }
        Ok(SepBatch {
            mixture: Tensor::from_vec(mix, &[b, self.channels, len])?,
            labels: Tensor::from_vec(lab, &[b, sn * k])?,
            target: Tensor::from_vec(tgt, &[b, sn, len])?,
            files: members.iter().flat_map(|(it, refs)| std::iter::once(it.mixture.clone()).chain(refs.iter().map(|(_, r)| r.clone()))).collect(),
        })
    }
}

/// The slots of a mixture's references with the waveforms `w` (one per reference, in order).
fn slots<'a>(it: &LayoutItem, classes: &'a [String], w: &[&'a [f32]]) -> Vec<Slot<'a>> {
    it.references.iter().zip(w).map(|((ci, _), x)| Slot { label: &classes[*ci], wave: x }).collect()
}

/// The training state (what a checkpoint restores) and the step.
pub struct SepTrainer {
    pub cfg: SepTrainConfig,
    pub model: TrainableSeparator,
    pub opt: AdamW,
    base_lrs: Vec<f64>,
    /// Optimizer steps done.
    pub step: u64,
    best: Option<(f64, u64)>,
    device: Device,
    /// The frozen stage-2 SED model of a CP-JKU separator.
    pub sed: Option<M2dSed>,
}

/// Checks that a model can be trained here (label conditioning, one source per pass).
fn check_model(m: &TrainableSeparator, source: &Path) -> Result<()> {
    let c = &m.config;
    if c.conditioning != Conditioning::Label {
        bail!("{}: `trainer separator` trains label-conditioned separators; this one takes a query embedding", source.display());
    }
    if c.label_len != c.target_sources_num * c.classes.len() {
        bail!(
            "{}: label_len {} is not target_sources_num {} × the {} classes: not a label-queried separator `trainer separator` can feed",
            source.display(),
            c.label_len,
            c.target_sources_num,
            c.classes.len()
        );
    }
    if c.output_channels != 1 {
        bail!("{}: the targets are mono; this model outputs {} channels", source.display(), c.output_channels);
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let a = a.run;
    let Started { run, cfg, resume, device: dev } = start(&a, SepTrainConfig::from_text)?;
    let root = run.root.clone();
    let t0 = Instant::now();
    let mut pretrained: Option<BTreeSet<String>> = None;
    let (model, from) = match (resume, run.checkpoint("last")) {
        (true, Some(d)) => (TrainableSeparator::load(&d, dev).with_context(|| format!("loading {}", d.display()))?, Some(d)),
        (true, None) => bail!("{}: no complete checkpoint (last/) to resume from", root.display()),
        (false, _) => match &cfg.model.config {
            None => (TrainableSeparator::load(&cfg.model.init, dev).with_context(|| format!("loading {}", cfg.model.init.display()))?, None),
            Some(c) => {
                let target = SeparatorConfig::from_file(c).with_context(|| format!("[model] config {}", c.display()))?;
                let from = SeparatorConfig::from_file(cfg.model.init.join("config.json"))?;
                let (tensors, st) = safetensors_io::load_checkpoint_dir(&cfg.model.init).with_context(|| format!("loading {}", cfg.model.init.display()))?;
                let a = adapt_checkpoint(&target, &from, &tensors, cfg.train.seed)?;
                eprintln!(
                    "init: {} tensors from {} ({} repeated over input channels), {} fresh",
                    a.pretrained.len(),
                    cfg.model.init.display(),
                    a.repeated.len(),
                    a.fresh.len()
                );
                let m = TrainableSeparator::from_tensors(target, a.tensors, &st, dev)?;
                pretrained = Some(a.pretrained);
                (m, None)
            }
        },
    };
    check_model(&model, &cfg.model.init)?;
    let mc = model.config.clone();
    let sed = match (&cfg.model.sed, mc.needs_sed()) {
        (Some(d), true) => Some(M2dSed::load(d, dev).with_context(|| format!("loading the SED model {}", d.display()))?),
        (None, true) => {
            bail!("{}: this separator is conditioned by the stage-2 SED model (time-FiLM / injection): give [model] sed = \"DIR\"", cfg.model.init.display())
        }
        (Some(d), false) => bail!("[model] sed = {}: this separator takes no SED conditions", d.display()),
        (None, false) => None,
    };
    let d = &cfg.data.train;
    let data = match d.premixed() {
        Some(p) => TrainData::Premixed(PremixedSet::load(&p, &mc.classes, mc.input_channels, mc.sample_rate, "train")?),
        None => {
            let root = d.mix.as_ref().expect("validated");
            let spec = MixSpec {
                rate: mc.sample_rate,
                channels: mc.input_channels,
                len: (d.seconds * mc.sample_rate as f64).round() as usize,
                max_sources: d.max_sources,
                snr_db: (d.snr_db[0], d.snr_db[1]),
                seed: cfg.train.seed,
            };
            TrainData::Mix { material: Material::list(root, &mc.classes)?, spec, per_epoch: d.mixtures_per_epoch }
        }
    };
    let val = match &cfg.data.validation {
        Some(v) => Some(PremixedSet::load(v, &mc.classes, mc.input_channels, mc.sample_rate, "validation")?),
        None => None,
    };
    if mc.target_sources_num > 1 && matches!(data, TrainData::Mix { .. }) {
        bail!("[data] train: mixing on the fly feeds one source per pass; this model separates {} (train it on a pre-mixed set)", mc.target_sources_num);
    }
    let plan = Arc::new(SepPlan {
        data,
        batch: cfg.train.batch,
        seed: cfg.train.seed,
        channels: mc.input_channels,
        rate: mc.sample_rate,
        classes: mc.classes.len(),
        sources: mc.target_sources_num,
    });
    let per_epoch = cfg.train.steps_per_epoch.unwrap_or_else(|| plan.default_steps_per_epoch());
    let total = cfg.train.steps.unwrap_or_else(|| cfg.train.epochs.unwrap() * per_epoch);
    let end = a.max_steps.map_or(total, |m| m.min(total));
    let every = cfg.validation.every_steps.unwrap_or(per_epoch);
    eprintln!(
        "data: {} training mixtures{} of {:.2} s{}; {per_epoch} steps per epoch, {total} steps in all ({:.1} s to check)",
        plan.len(),
        if matches!(plan.data, TrainData::Mix { .. }) { " an epoch, mixed on the fly," } else { "" },
        match &plan.data {
            TrainData::Premixed(s) => s.len,
            TrainData::Mix { spec, .. } => spec.len,
        } as f64
            / mc.sample_rate as f64,
        val.as_ref().map_or(String::new(), |v| format!(", {} validation mixtures", v.items.len())),
        t0.elapsed().as_secs_f64()
    );
    if resume && cfg.model.config.is_some() {
        // The learning-rate groups of an adapted start: the tensors the run began from.
        let from = SeparatorConfig::from_file(cfg.model.init.join("config.json"))?;
        let (tensors, _) = safetensors_io::load_checkpoint_dir(&cfg.model.init).with_context(|| format!("loading {}", cfg.model.init.display()))?;
        pretrained = Some(adapt_checkpoint(&model.config, &from, &tensors, cfg.train.seed)?.pretrained);
    }
    let mut tr = SepTrainer::with_groups(cfg.clone(), model, dev, pretrained.as_ref());
    tr.sed = sed;
    if let Some(d) = &from {
        tr.restore(d)?;
        eprintln!("resuming {} at step {}", d.display(), tr.step);
    }
    run.truncate_log("log.jsonl", tr.step)?;
    run.truncate_log("validation.jsonl", tr.step)?;
    if tr.step >= end {
        eprintln!("nothing to do: the run is at step {} (stop at {end})", tr.step);
        return Ok(());
    }
    let loader = Loader::start(plan.clone(), tr.step, end, cfg.data.workers, cfg.data.prefetch)?;
    let bar = progress(a.quiet, end, tr.step);
    while tr.step < end {
        let ts = Instant::now();
        let n = tr.step + 1;
        let batch = loader.next()?;
        let (loss, mut grads) = tr
            .micro_step(&batch)
            .with_context(|| format!("step {n}, batch files: {}", batch.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))?;
        let gn = tr.update(&mut grads, total, per_epoch).with_context(|| format!("step {n}"))?;
        let secs = ts.elapsed().as_secs_f64();
        let lr = tr.opt.groups.iter().map(|g| g.lr).fold(0.0, f64::max);
        run.append(
            "log.jsonl",
            &json!({"step": tr.step, "epoch": tr.step as f64 / per_epoch as f64, "loss": loss, "lr": lr, "grad_norm": gn, "seconds": secs}),
        )?;
        bar.set_position(tr.step);
        bar.set_message(format!("loss {loss:.3} dB ({secs:.1} s/step)"));
        if tr.step.is_multiple_of(every) || tr.step == end {
            if let Some(v) = &val {
                bar.set_message("validating…");
                let r = tr.validate(v)?;
                let value = r["ca_sdri"].as_f64().unwrap_or(f64::NAN);
                let mut vline = json!({"step": tr.step, "epoch": tr.step as f64 / per_epoch as f64, "ca_sdri": r["ca_sdri"], "label_accuracy": r["label_accuracy"], "loss": r["loss"]});
                let improved = value.is_finite() && tr.best.is_none_or(|(b, _)| value > b);
                if improved {
                    tr.best = Some((value, tr.step));
                    run.write_checkpoint("best", |d| {
                        tr.model.save(d)?;
                        std::fs::write(d.join("metrics.json"), serde_json::to_string_pretty(&vline)?)?;
                        Ok(())
                    })?;
                }
                vline["best"] = json!({"metric": "ca_sdri", "value": tr.best.map(|b| b.0), "step": tr.best.map(|b| b.1)});
                bar.println(format!("step {}: CA-SDRi {value:.3} dB{}", tr.step, if improved { " (best)" } else { "" }));
                run.append("validation.jsonl", &vline)?;
            }
            tr.checkpoint(&run)?;
            let _ = plot_curves(
                &root.join("curves.png"),
                &run.read_log("log.jsonl")?,
                &run.read_log("validation.jsonl")?,
                &["loss"],
                &[("ca_sdri", "CA-SDRi (dB)")],
            )
            .map_err(|e| bar.println(format!("warning: curves.png not written: {e:#}")));
        }
    }
    bar.finish_and_clear();
    eprintln!("done: step {} in {:.1} s → {}", tr.step, t0.elapsed().as_secs_f64(), root.display());
    Ok(())
}

impl SepTrainer {
    /// One parameter group (every parameter at `lr`), AdamW with the config's betas and eps.
    pub fn new(cfg: SepTrainConfig, model: TrainableSeparator, device: Device) -> SepTrainer {
        SepTrainer::with_groups(cfg, model, device, None)
    }

    /// With `pretrained` names: those train at `lr · pretrained_lr_factor`, the others at `lr`.
    pub fn with_groups(cfg: SepTrainConfig, model: TrainableSeparator, device: Device, pretrained: Option<&BTreeSet<String>>) -> SepTrainer {
        let t = &cfg.train;
        let groups = match pretrained {
            Some(p) if t.pretrained_lr_factor != 1.0 => {
                let (old, new): (Vec<String>, Vec<String>) = model.store.names().into_iter().partition(|n| p.contains(n));
                [(old, t.lr * t.pretrained_lr_factor), (new, t.lr)]
                    .into_iter()
                    .filter(|(n, _)| !n.is_empty())
                    .map(|(n, lr)| ParamGroup::new(n, lr, t.weight_decay))
                    .collect()
            }
            _ => vec![ParamGroup::new(model.store.names(), t.lr, t.weight_decay)],
        };
        let base_lrs = groups.iter().map(|g| g.lr).collect();
        let opt = AdamW::new(groups).with_betas(t.betas[0], t.betas[1]).with_eps(t.eps).with_amsgrad(t.amsgrad);
        SepTrainer { cfg, model, opt, base_lrs, step: 0, best: None, device, sed: None }
    }

    /// Forward (training-mode BatchNorm, running statistics updated) + backward of one batch: the
    /// loss (dB) and the gradients.
    pub fn micro_step(&mut self, b: &SepBatch) -> Result<(f64, Grads)> {
        let mixture = b.mixture.to_device(self.device)?;
        let sed = match &self.sed {
            Some(m) => Some(m.forward(&mixture)?),
            None => None,
        };
        let it = self.model.config.iterations;
        let passes = (it > 0).then(|| rng_for(self.cfg.train.seed, purpose::PASSES, self.step, 0).gen_range(1..=it));
        let extra =
            Conditions { strong_logits: sed.as_ref().map(|o| &o.strong_logits), embeddings: sed.as_ref().map(|o| &o.hidden_states), iterations: passes };
        let tape = Tape::new();
        let out = self.model.forward_with(&tape, &mixture, &b.labels, &extra, BnMode::Train)?;
        let est = ops::reshape(&out.waveform, b.target.shape())?;
        let loss = ops::neg_snr(&est, &b.target)?;
        let lv = loss.value().to_vec()?[0];
        if !lv.is_finite() {
            drop((loss, est, out));
            tape.clear();
            let check = Tape::new();
            check.check_finite(true);
            let why = self
                .model
                .forward_with(&check, &mixture, &b.labels, &extra, BnMode::Train)
                .and_then(|o| ops::neg_snr(&ops::reshape(&o.waveform, b.target.shape())?, &b.target).map(|_| ()))
                .err()
                .map_or("no op of the replayed forward produced it (the inputs may hold NaN)".to_string(), |e| e.to_string());
            bail!("the loss is {lv}: {why}");
        }
        let grads = tape.backward(&loss)?;
        self.model.apply_bn_stats(&out.bn_stats)?;
        Ok((lv as f64, grads))
    }

    /// Clipping, schedule, AdamW; returns the gradient norm (before clipping).
    pub fn update(&mut self, grads: &mut Grads, total: u64, per_epoch: u64) -> Result<f64> {
        let c = self.cfg.train.clip_grad_norm;
        let gn = if c > 0.0 {
            clip_grad_norm(&self.model.store, grads, c)?
        } else {
            self.model.store.check_finite(grads)?;
            f64::NAN
        };
        let f = lr_factor(&self.cfg.train.schedule, self.step, total, per_epoch);
        let base = self.base_lrs.clone();
        self.opt.map_lr(|i, _| base[i] * f);
        self.opt.step(&mut self.model.store, grads)?;
        self.step += 1;
        Ok(gn)
    }

    /// The S5 metrics of the current weights (evaluation-mode BatchNorm) on `v` with oracle labels:
    /// {"ca_sdri", "label_accuracy", "loss" (mean −SNR over the separated sources)}.
    fn validate(&self, v: &PremixedSet) -> Result<Value> {
        let m = self.model.inference(self.device)?;
        let c = &m.config;
        let k = c.classes.len();
        let mut scores = Vec::with_capacity(v.items.len());
        let (mut loss, mut nl) = (0.0, 0usize);
        for it in &v.items {
            let mix = audio::load(&it.mixture, c.sample_rate, Channels::All).map_err(|e| anyhow!("validation: {e}"))?;
            let len = mix.num_samples();
            let r = it.references.len();
            // One source per pass: a row per reference; ResUNetK: one row, the references in its slots.
            let sn = c.target_sources_num;
            if r > sn && sn > 1 {
                bail!("validation: {} has {r} references; the model separates {sn} per pass", it.mixture.display());
            }
            let rows = if sn == 1 { r } else { 1 };
            let mut x = Vec::with_capacity(rows * c.input_channels * len);
            for _ in 0..rows {
                x.extend(mix.channels.iter().flatten());
            }
            let mut lab = vec![0f32; rows * sn * k];
            let mut refs = Vec::with_capacity(r);
            for (j, (ci, p)) in it.references.iter().enumerate() {
                // Row j slot 0, or row 0 slot j: the same flat position either way.
                lab[j * k + ci] = 1.0;
                let t = audio::load(p, c.sample_rate, Channels::MixDown).map_err(|e| anyhow!("validation: {e}"))?;
                if t.num_samples() != len {
                    bail!("validation: {} has {} samples, its mixture {} has {len}", p.display(), t.num_samples(), it.mixture.display());
                }
                refs.push(t.channels.into_iter().next().unwrap_or_default());
            }
            let xt = Tensor::from_vec(x, &[rows, c.input_channels, len])?.to_device(self.device)?;
            let sed = match &self.sed {
                Some(s) => Some(s.forward(&xt)?),
                None => None,
            };
            let extra =
                Conditions { strong_logits: sed.as_ref().map(|o| &o.strong_logits), embeddings: sed.as_ref().map(|o| &o.hidden_states), iterations: None };
            let y = m
                .forward_with(&xt, &Tensor::from_vec(lab, &[rows, sn * k])?.to_device(self.device)?, &extra, &mut |_, _| Ok(()))
                .with_context(|| format!("validating on {}", it.mixture.display()))?
                .to_vec()?;
            let est: Vec<&[f32]> = y.chunks(len).collect();
            for (e, t) in est.iter().zip(&refs) {
                loss -= aural_models::s5::metrics::snr_db(e, t);
                nl += 1;
            }
            let rw: Vec<&[f32]> = refs.iter().map(|r| r.as_slice()).collect();
            let (rs, es) = (slots(it, &c.classes, &rw), slots(it, &c.classes, &est));
            scores.push(score_mixture(&it.name, &mix.channels[0], &rs, &es).map_err(|e| anyhow!("validation: {e}"))?);
        }
        let rep = report(scores, &c.classes);
        Ok(json!({"ca_sdri": rep.ca_sdri, "label_accuracy": rep.label_accuracy, "loss": loss / nl.max(1) as f64}))
    }

    /// Writes `last/`: the model (config.json + model.safetensors, BatchNorm running statistics
    /// included) and trainer_state.{safetensors,json} (AdamW moments and step counts, the step, the
    /// best CA-SDRi).
    fn checkpoint(&self, run: &RunDir) -> Result<()> {
        run.write_checkpoint("last", |d| {
            self.model.save(d)?;
            let state =
                json!({"format": FORMAT, "step": self.step, "seed": self.cfg.train.seed, "best": self.best.map(|(v, s)| json!({"value": v, "step": s}))});
            write_trainer_state(d, &self.opt, Vec::new(), state)
        })?;
        Ok(())
    }

    /// Restores the optimizer state, the step and the best metric of `dir` (the model itself was
    /// loaded from it).
    fn restore(&mut self, dir: &Path) -> Result<()> {
        let mut st = read_trainer_state(dir, FORMAT, "trainer separator")?;
        self.step = st.step;
        self.best = st.best;
        restore_optimizer(&mut self.opt, &self.model.store, &mut st.tensors, &st.json["adam_steps"], &st.json_path, &st.tensors_path, self.device)
    }
}

/// The first weights of a separator of `config` from another separator's checkpoint (module doc).
pub struct Adapted {
    pub tensors: BTreeMap<String, Tensor>,
    /// Copied or repeated from the source (the pretrained learning-rate group).
    pub pretrained: BTreeSet<String>,
    /// Repeated over the input channels (a subset of `pretrained`).
    pub repeated: Vec<String>,
    /// Drawn fresh.
    pub fresh: Vec<String>,
}

/// See the module doc, "Starting from another separator".
pub fn adapt_checkpoint(config: &SeparatorConfig, from_config: &SeparatorConfig, from: &BTreeMap<String, Tensor>, seed: u64) -> Result<Adapted> {
    let want = ResUNet::expected_tensors(config).map_err(|e| anyhow!("[model] config: {e}"))?;
    let shapes: BTreeMap<&str, &[usize]> = want.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    let (bp, fp) = (config.base_prefix(), from_config.base_prefix());
    let mut rng = rng_for(seed, INIT, 0, 0);
    let mut out = Adapted { tensors: BTreeMap::new(), pretrained: BTreeSet::new(), repeated: Vec::new(), fresh: Vec::new() };
    for (name, shape) in &want {
        let src_name = name.strip_prefix(bp).map_or(name.clone(), |r| format!("{fp}{r}"));
        let src = from.get(&src_name).map(|t| Ok::<_, anyhow::Error>((t.shape().to_vec(), t.to_vec()?))).transpose()?;
        let n: usize = shape.iter().product();
        let adapted: Option<Vec<f32>> = match &src {
            Some((s, v)) if s == shape => Some(v.clone()),
            Some((s, v)) if name.ends_with("pre_conv.weight") && s.len() == 4 && s[0] == shape[0] && s[1] < shape[1] => {
                // (c0, Cs, 1, 1) → (c0, Ct, 1, 1).
                let (c0, cs, ct) = (shape[0], s[1], shape[1]);
                let mut w = vec![0f32; n];
                for o in 0..c0 {
                    for c in 0..ct {
                        w[o * ct + c] = if cs == 1 {
                            v[o] / ct as f32
                        } else if c < cs {
                            v[o * cs + c]
                        } else {
                            0.0
                        };
                    }
                }
                out.repeated.push(name.clone());
                Some(w)
            }
            Some((s, v)) if (name.ends_with("after_conv.weight") || name.ends_with("after_conv.bias")) && from_config.input_channels == 1 => {
                // Rows (s·1 + 0)·3 + k of the source → (s·C + c)·3 + k.
                let per = n / shape[0];
                let sources = config.target_sources_num;
                if s[0] != 3 * sources || s.iter().skip(1).product::<usize>() != per {
                    None
                } else {
                    let c = config.input_channels;
                    let mut w = vec![0f32; n];
                    for si in 0..sources {
                        for ci in 0..c {
                            for k in 0..3 {
                                let (dst, srow) = (((si * c + ci) * 3 + k) * per, (si * 3 + k) * per);
                                w[dst..dst + per].copy_from_slice(&v[srow..srow + per]);
                            }
                        }
                    }
                    out.repeated.push(name.clone());
                    Some(w)
                }
            }
            _ => None,
        };
        let v = match adapted {
            Some(v) => {
                out.pretrained.insert(name.clone());
                v
            }
            None => {
                out.fresh.push(name.clone());
                fresh(name, shape, &shapes, &mut rng)
            }
        };
        out.tensors.insert(name.clone(), Tensor::from_vec(v, shape)?);
    }
    Ok(out)
}

/// Stream purpose of the fresh draws of [`adapt_checkpoint`].
const INIT: u64 = 11;

/// PyTorch's default initialisation of the tensor `name` of shape `shape` (module doc).
fn fresh(name: &str, shape: &[usize], shapes: &BTreeMap<&str, &[usize]>, rng: &mut impl Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let full = |v: f32| vec![v; n];
    let (prefix, last) = name.rsplit_once('.').unwrap_or(("", name));
    let module = prefix.rsplit('.').next().unwrap_or("");
    let is_norm = module.starts_with("bn")
        || module.ends_with("_bn")
        || prefix.contains("_norm.")
        || ((prefix.starts_with("label_embedding.") || prefix.starts_with("time_embedding.")) && (module == "1" || module == "4"));
    match last {
        "running_mean" => return full(0.0),
        "running_var" => return full(1.0),
        "soundbeam_weights" => return full(1.0 / n.max(1) as f32),
        "weight_x_center" | "weight_soundbeam_features" => return full(1.0),
        _ => {}
    }
    if is_norm {
        return full(if last == "weight" { 1.0 } else { 0.0 });
    }
    if prefix.ends_with("output.0") && last == "weight" {
        return full(0.25);
    }
    let bound = if prefix.ends_with(".rnn") {
        // GRU: U(±1/√hidden), hidden = weight_hh's columns.
        let hh = name.replace("weight_ih", "weight_hh").replace("bias_ih", "weight_hh").replace("bias_hh", "weight_hh");
        1.0 / (shapes.get(hh.as_str()).map_or(1, |s| s.get(1).copied().unwrap_or(1)) as f64).sqrt()
    } else {
        // fan_in = weight.size(1) × the kernel's size: Linear (out, in), Conv2d (out, in, kh, kw), and
        // ConvTranspose2d (in, out, kh, kw), for which torch takes size(1) as well.
        let w = shapes.get(format!("{prefix}.weight").as_str()).copied().unwrap_or(shape);
        let fan_in: usize = w.iter().skip(1).product();
        1.0 / (fan_in.max(1) as f64).sqrt()
    };
    (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect()
}
