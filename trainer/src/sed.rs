//! `trainer sed`: fine-tunes AST-SED / AST-GRU with mean teacher (seed 000 §3.2, the DESED baseline's
//! recipe), on any device, resumable bit for bit.
//!
//! One optimizer step (global step n = 1, 2, …):
//! 1. `accumulate` micro-batches from the [`Loader`](crate::data::Loader), each: student forward on
//!    the tape, teacher forward without one (same augmented input), then
//!    L = BCE(strong frames of the strongly labelled samples) + w·BCE(clip scores of the weakly
//!    labelled samples) + c(n)·(MSE(student frames, teacher frames) + MSE(student clip, teacher clip))
//!    over every sample, c(n) = consistency·exp_rampup(n, rampup) (the DESED baseline's weight);
//!    backward of L/accumulate, gradients summed.
//! 2. Frozen parameters dropped, gradients clipped (global norm), every group's lr = base ·
//!    [`lr_factor`], AdamW.
//! 3. Teacher ← α·teacher + (1 − α)·student with α = [`ema_alpha`](crate::run::ema_alpha)(n, ema).
//!
//! A NaN/inf loss stops the run with the step, the batch's files and the first op that produced a
//! non-finite value (the forward is replayed on a checking tape); a non-finite gradient names the
//! parameters.
//!
//! ## Initialisation from an HF AST (`[model] ast = "dir"`)
//! The AST tensors come from the HF checkpoint (its classifier is dropped); the new layers are drawn
//! from a ChaCha stream of the seed as PyTorch initialises the same modules: Linear weight and bias
//! U(±1/√fan_in) (kaiming_uniform with a = √5); MultiheadAttention in_proj xavier_uniform, its biases
//! and the out_proj bias 0; LayerNorm 1 and 0; GRU U(±1/√hidden); the per-frame FTE CLS N(0, 0.02²).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use aural_autograd::optim::{ast_layer_id, clip_grad_norm, AdamW, ParamGroup};
use aural_autograd::{ops, Grads, ParamStore, Tape};
use aural_models::ast_sed::train::{TrainOutput, TrainableAstSed};
use aural_models::ast_sed::{AstSed, DetectOpts, SedConfig};
use aural_models::audio::{self, Channels};
use aural_models::sed::metrics::io::{ground_truth, read_durations, read_strong};
use aural_models::sed::metrics::report::{evaluate, EvalOptions, Predictions, Which};
use aural_models::sed::metrics::{GroundTruth, ScoreTable};
use aural_runtime::ops::binary::add;
use aural_runtime::ops::fbank::{AstNorm, FbankOpts};
use aural_runtime::ops::unary::affine;
use aural_runtime::{safetensors_io, DType, Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::config::SedTrainConfig;
use crate::data::{self, rng_for, DataSet, Frontend, Loader, Plan, SetKind};
use crate::run::{
    ema_alpha, exp_rampup, lr_factor, plot_curves, progress, read_trainer_state, restore_optimizer, start, write_trainer_state, RunArgs, RunDir, SavedState,
    Started,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
}

/// Stream purposes of the initialisation draws.
const INIT: u64 = 10;

/// The training state (what a checkpoint restores) and the step; the loop of [`run`] drives it.
pub struct SedTrainer {
    pub cfg: SedTrainConfig,
    pub model: TrainableAstSed,
    pub teacher: ParamStore,
    pub opt: AdamW,
    base_lrs: Vec<f64>,
    pub frozen: HashSet<String>,
    /// Optimizer steps done.
    pub step: u64,
    best: Option<(f64, u64)>,
    device: Device,
}

pub fn run(a: Args) -> Result<()> {
    let a = a.run;
    let Started { run, cfg, resume, device: dev } = start(&a, SedTrainConfig::from_text)?;
    let root = run.root.clone();
    let t0 = Instant::now();
    let model = load_model(&cfg, dev)?;
    let mc = model.config.clone();
    let classes = mc.classes.clone();
    let sets = load_sets(&cfg, &classes)?;
    let val = match &cfg.data.validation {
        Some(v) => Some(Validation::load(v, &classes)?),
        None => None,
    };
    let norm = AstNorm { max_length: mc.ast.max_length, ..AstNorm::AUDIOSET };
    let frontend = Frontend {
        opts: FbankOpts { sample_rate: mc.sample_rate as f32, num_mel_bins: mc.ast.num_mel_bins, ast_norm: None, ..Default::default() },
        norm,
        rate: mc.sample_rate,
        cache: cfg.data.cache.clone(),
    };
    let plan = Arc::new(Plan {
        sets,
        batch: cfg.train.batch,
        seed: cfg.train.seed,
        frontend,
        l: mc.ast.max_length,
        f: mc.frames(),
        k: classes.len(),
        hop_s: mc.geometry().hop_s,
        augment: cfg.augment.clone(),
    });
    let per_epoch = cfg.train.steps_per_epoch.unwrap_or_else(|| plan.default_steps_per_epoch());
    let total = cfg.train.steps.unwrap_or_else(|| cfg.train.epochs.unwrap() * per_epoch);
    let end = a.max_steps.map_or(total, |m| m.min(total));
    let every = cfg.validation.every_steps.unwrap_or(per_epoch);
    eprintln!(
        "data: {} ({:.1} s to check); {per_epoch} steps per epoch, {total} steps in all",
        plan.sets.iter().map(|s| format!("{} {} clips", s.kind.name(), s.clips.len())).collect::<Vec<_>>().join(", "),
        t0.elapsed().as_secs_f64()
    );

    let mut tr = SedTrainer::new(cfg.clone(), model, dev)?;
    if resume {
        let dir = run.checkpoint("last").ok_or_else(|| anyhow!("{}: no complete checkpoint (last/) to resume from", root.display()))?;
        tr.restore(&dir)?;
        eprintln!("resuming {} at step {}", dir.display(), tr.step);
    }
    run.truncate_log("log.jsonl", tr.step)?;
    run.truncate_log("validation.jsonl", tr.step)?;
    if tr.step >= end {
        eprintln!("nothing to do: the run is at step {} (stop at {end})", tr.step);
        return Ok(());
    }

    let acc = cfg.train.accumulate as u64;
    let loader = Loader::start(plan.clone(), tr.step * acc, end * acc, cfg.data.workers, cfg.data.prefetch)?;
    let bar = progress(a.quiet, end, tr.step);
    let rampup = cfg.train.mean_teacher.rampup_steps.unwrap_or(total / 4);
    while tr.step < end {
        let ts = Instant::now();
        let n = tr.step + 1;
        let mut logs = StepLog::default();
        let mut acc_grads: Option<Grads> = None;
        let cw = if cfg.train.mean_teacher.enabled { cfg.train.mean_teacher.consistency * exp_rampup(n, rampup) } else { 0.0 };
        // The teacher's weights change once per optimizer step: one inference graph serves every
        // micro-batch of the step.
        let teacher = if cw > 0.0 { Some(tr.teacher_graph()?) } else { None };
        for _ in 0..acc {
            let batch = loader.next()?;
            let g = tr
                .micro_step(&batch, teacher.as_ref(), cw, acc as f32, &mut logs)
                .with_context(|| format!("step {n}, batch files: {}", batch.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))?;
            acc_grads = Some(match acc_grads {
                None => g,
                Some(prev) => sum_grads(&tr.model.store, prev, g)?,
            });
        }
        let mut grads = acc_grads.unwrap();
        let gn = tr.update(&mut grads, total, per_epoch).with_context(|| format!("step {n}"))?;
        let secs = ts.elapsed().as_secs_f64();
        let clips_per_s = (plan.batch.total() as u64 * acc) as f64 / secs;
        let lr = tr.opt.groups.iter().map(|g| g.lr).fold(0.0, f64::max);
        let line = json!({
            "step": tr.step, "epoch": tr.step as f64 / per_epoch as f64,
            "loss": logs.total / acc as f64, "loss_supervised": logs.sup / acc as f64,
            "loss_frame": logs.frame / acc as f64, "loss_clip": logs.clip / acc as f64,
            "loss_consistency": logs.cons / acc as f64, "consistency_weight": logs.cw,
            "lr": lr, "grad_norm": gn, "seconds": secs,
            "clips_per_s": clips_per_s,
        });
        run.append("log.jsonl", &line)?;
        bar.set_position(tr.step);
        bar.set_message(format!("loss {:.4} ({clips_per_s:.2} clips/s)", logs.total / acc as f64));
        if tr.step % every == 0 || tr.step == end {
            if let Some(v) = &val {
                bar.set_message("validating…");
                let r = tr.validate(v)?;
                let (sel, metric) = (&cfg.validation.select, &cfg.validation.metric);
                let value = pick(&r[sel.as_str()], metric);
                let mut vline = json!({"step": tr.step, "epoch": tr.step as f64 / per_epoch as f64, "student": r["student"], "teacher": r["teacher"]});
                let improved = value.is_finite() && tr.best.is_none_or(|(b, _)| value > b);
                if improved {
                    tr.best = Some((value, tr.step));
                    let which = if sel == "teacher" { &tr.teacher } else { &tr.model.store };
                    run.write_checkpoint("best", |d| {
                        tr.model.save(d, which)?;
                        std::fs::write(d.join("metrics.json"), serde_json::to_string_pretty(&vline)?)?;
                        Ok(())
                    })?;
                }
                vline["best"] = json!({"metric": format!("{sel}/{metric}"), "value": tr.best.map(|b| b.0), "step": tr.best.map(|b| b.1)});
                bar.println(format!(
                    "step {}: {sel} {metric} {value:.4}{} (student {:.4}, teacher {:.4})",
                    tr.step,
                    if improved { " (best)" } else { "" },
                    pick(&r["student"], metric),
                    pick(&r["teacher"], metric)
                ));
                run.append("validation.jsonl", &vline)?;
            }
            tr.checkpoint(&run)?;
            let _ = plot_curves(
                &root.join("curves.png"),
                &run.read_log("log.jsonl")?,
                &run.read_log("validation.jsonl")?,
                &["loss", "loss_supervised", "loss_consistency"],
                &[
                    ("teacher.psds1", "teacher PSDS1"),
                    ("student.psds1", "student PSDS1"),
                    ("teacher.event_f1", "teacher EB-F1"),
                    ("student.event_f1", "student EB-F1"),
                ],
            )
            .map_err(|e| bar.println(format!("warning: curves.png not written: {e:#}")));
        }
    }
    bar.finish_and_clear();
    eprintln!("done: step {} in {:.1} s → {}", tr.step, t0.elapsed().as_secs_f64(), root.display());
    Ok(())
}

fn pick(r: &Value, metric: &str) -> f64 {
    r[metric].as_f64().unwrap_or(f64::NAN)
}

/// The losses of one step (sums over its micro-batches).
#[derive(Debug, Default, Clone)]
pub struct StepLog {
    pub total: f64,
    pub sup: f64,
    pub frame: f64,
    pub clip: f64,
    pub cons: f64,
    pub cw: f64,
}

fn sum_grads(store: &ParamStore, mut a: Grads, b: Grads) -> Result<Grads> {
    for (_, v) in store.iter() {
        if let Some(gb) = b.get(v) {
            let s = match a.get(v) {
                Some(ga) => add(ga, gb)?,
                None => gb.clone(),
            };
            a.insert_id(v.id(), s);
        }
    }
    Ok(a)
}

/// The model of `[model]`: a checkpoint, or an HF AST with fresh new layers.
fn load_model(cfg: &SedTrainConfig, dev: Device) -> Result<TrainableAstSed> {
    let m = match (&cfg.model.init, &cfg.model.ast) {
        (Some(dir), _) => TrainableAstSed::load(dir, dev).with_context(|| format!("loading {}", dir.display()))?,
        (None, Some(ast)) => init_from_ast(ast, cfg.model.new.as_ref().unwrap(), cfg.data.classes.as_deref(), cfg.train.seed, dev)?,
        (None, None) => init_from_scratch(cfg.model.new.as_ref().unwrap(), cfg.data.classes.as_deref(), cfg.train.seed, dev)?,
    };
    if let Some(c) = &cfg.data.classes {
        if *c != m.config.classes {
            bail!("[data] classes {:?} differ from the model's {:?} (its heads predict those, in that order)", c, m.config.classes);
        }
    }
    Ok(m)
}

/// An AST-SED whose AST comes from an HF checkpoint and whose new layers are fresh (module doc).
pub fn init_from_ast(ast_dir: &Path, new: &toml::Table, classes: Option<&[String]>, seed: u64, dev: Device) -> Result<TrainableAstSed> {
    let hf_cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(ast_dir.join("config.json")).with_context(|| format!("reading {}/config.json", ast_dir.display()))?)
            .with_context(|| format!("{}/config.json", ast_dir.display()))?;
    let mut j = serde_json::to_value(new).context("[model.new]")?;
    if j.get("ast").is_some() {
        bail!("[model.new] takes no `ast` table: the AST's settings come from {}/config.json", ast_dir.display());
    }
    j["ast"] = hf_cfg;
    let config = new_config(j, classes)?;
    let (hf, st) = safetensors_io::load_checkpoint_dir(ast_dir).with_context(|| format!("loading {}", ast_dir.display()))?;
    let t: BTreeMap<String, Tensor> = hf.into_iter().filter(|(k, _)| !k.starts_with("classifier.")).map(|(k, v)| (format!("ast.{k}"), v)).collect();
    fresh_heads(config, t, &st, seed, dev)
}

/// An AST-SED trained from scratch: `[model.new]` holds the whole config.json, `ast` (HF ASTConfig
/// fields) included. The AST is drawn as HF's `ASTPreTrainedModel` initialises it (Linear and the
/// patch Conv2d N(0, initializer_range²) with zero biases, `initializer_range` from the table or
/// 0.02; LayerNorm 1/0; cls, distillation and position embeddings 0), the rest as [`init_from_ast`].
pub fn init_from_scratch(new: &toml::Table, classes: Option<&[String]>, seed: u64, dev: Device) -> Result<TrainableAstSed> {
    let j = serde_json::to_value(new).context("[model.new]")?;
    let std = j.get("ast").and_then(|a| a.get("initializer_range")).and_then(Value::as_f64).unwrap_or(0.02);
    if j.get("ast").is_none() {
        bail!("[model.new]: without `ast = DIR` in [model], an [model.new.ast] table (hidden_size, num_hidden_layers, …) gives the AST to train from scratch");
    }
    let config = new_config(j, classes)?;
    let a = &config.ast;
    let (d, m) = (a.hidden_size, a.intermediate_size);
    let (ph, pw) = a.patch_size.dims();
    let mut rng = rng_for(seed, INIT, 2, 0);
    let nd = Normal::new(0.0, std).map_err(|e| anyhow!("[model.new.ast] initializer_range {std}: {e}"))?;
    let mut normal = |shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        Ok(Tensor::from_vec((0..n).map(|_| nd.sample(&mut rng) as f32).collect(), shape)?)
    };
    let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, Device::Cpu);
    let mut t = BTreeMap::new();
    t.insert("ast.embeddings.cls_token".to_string(), zeros(&[1, 1, d])?);
    t.insert("ast.embeddings.distillation_token".to_string(), zeros(&[1, 1, d])?);
    t.insert("ast.embeddings.position_embeddings".to_string(), zeros(&[1, a.seq_len(), d])?);
    t.insert("ast.embeddings.patch_embeddings.projection.weight".to_string(), normal(&[d, 1, ph, pw])?);
    t.insert("ast.embeddings.patch_embeddings.projection.bias".to_string(), zeros(&[d])?);
    let mut lin = |t: &mut BTreeMap<String, Tensor>, name: String, out: usize, inp: usize| -> Result<()> {
        t.insert(format!("{name}.weight"), normal(&[out, inp])?);
        t.insert(format!("{name}.bias"), zeros(&[out])?);
        Ok(())
    };
    for i in 0..a.num_hidden_layers {
        let l = format!("ast.encoder.layer.{i}");
        for q in ["query", "key", "value"] {
            lin(&mut t, format!("{l}.attention.attention.{q}"), d, d)?;
        }
        lin(&mut t, format!("{l}.attention.output.dense"), d, d)?;
        lin(&mut t, format!("{l}.intermediate.dense"), m, d)?;
        lin(&mut t, format!("{l}.output.dense"), d, m)?;
        for n in ["layernorm_before", "layernorm_after"] {
            t.insert(format!("{l}.{n}.weight"), Tensor::full(&[d], 1.0, Device::Cpu)?);
            t.insert(format!("{l}.{n}.bias"), zeros(&[d])?);
        }
    }
    t.insert("ast.layernorm.weight".to_string(), Tensor::full(&[d], 1.0, Device::Cpu)?);
    t.insert("ast.layernorm.bias".to_string(), zeros(&[d])?);
    fresh_heads(config, t, Path::new("[model.new]"), seed, dev)
}

/// The config of `[model.new]` (its `ast` table filled in), classes defaulting to `[data] classes`.
fn new_config(mut j: Value, classes: Option<&[String]>) -> Result<SedConfig> {
    if j.get("classes").is_none() {
        let c = classes.ok_or_else(|| anyhow!("[model.new] classes or [data] classes is required for a new model"))?;
        j["classes"] = json!(c);
    }
    let config: SedConfig = serde_json::from_value(j).context("[model.new]: not a valid AST-SED configuration")?;
    config.validate().context("[model.new]")?;
    Ok(config)
}

/// Adds the new layers (FTE, LGD, heads), drawn as PyTorch initialises them, to the AST's tensors `t`.
fn fresh_heads(config: SedConfig, mut t: BTreeMap<String, Tensor>, st: &Path, seed: u64, dev: Device) -> Result<TrainableAstSed> {
    let c = config.ast.hidden_size;
    let mut rng = rng_for(seed, INIT, 0, 0);
    let mut uni = |shape: &[usize], bound: f64| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        Ok(Tensor::from_vec((0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect(), shape)?)
    };
    let mut put = |k: String, v: Tensor| {
        t.insert(k, v);
    };
    let lin = |fan_in: usize| 1.0 / (fan_in as f64).sqrt();
    if config.architecture == aural_models::ast_sed::Architecture::AstSed {
        let mut r2 = rng_for(seed, INIT, 1, 0);
        let nd = Normal::new(0.0, 0.02).unwrap();
        put("fte.cls".into(), Tensor::from_vec((0..config.fte_max_frames * c).map(|_| nd.sample(&mut r2) as f32).collect(), &[config.fte_max_frames, c])?);
        for i in 0..config.fte_layers {
            let b = format!("fte.blocks.{i}");
            put(format!("{b}.attn.in_proj_weight"), uni(&[3 * c, c], (6.0 / (4 * c) as f64).sqrt())?);
            put(format!("{b}.attn.in_proj_bias"), Tensor::zeros(&[3 * c], DType::F32, Device::Cpu)?);
            put(format!("{b}.attn.out_proj.weight"), uni(&[c, c], lin(c))?);
            put(format!("{b}.attn.out_proj.bias"), Tensor::zeros(&[c], DType::F32, Device::Cpu)?);
            for nrm in ["norm1", "norm2"] {
                put(format!("{b}.{nrm}.weight"), Tensor::full(&[c], 1.0, Device::Cpu)?);
                put(format!("{b}.{nrm}.bias"), Tensor::zeros(&[c], DType::F32, Device::Cpu)?);
            }
            put(format!("{b}.mlp.fc1.weight"), uni(&[config.fte_mlp, c], lin(c))?);
            put(format!("{b}.mlp.fc1.bias"), uni(&[config.fte_mlp], lin(c))?);
            put(format!("{b}.mlp.fc2.weight"), uni(&[c, config.fte_mlp], lin(config.fte_mlp))?);
            put(format!("{b}.mlp.fc2.bias"), uni(&[c], lin(config.fte_mlp))?);
        }
    }
    let h = config.gru_hidden;
    for sfx in ["", "_reverse"] {
        for (w, shp) in [("weight_ih_l0", vec![3 * h, c]), ("weight_hh_l0", vec![3 * h, h]), ("bias_ih_l0", vec![3 * h]), ("bias_hh_l0", vec![3 * h])] {
            put(format!("lgd.gru.{w}{sfx}"), uni(&shp, lin(h))?);
        }
    }
    let k = config.classes.len();
    for head in ["strong", "attn"] {
        put(format!("head.{head}.weight"), uni(&[k, 2 * h], lin(2 * h))?);
        put(format!("head.{head}.bias"), uni(&[k], lin(2 * h))?);
    }
    Ok(TrainableAstSed::from_tensors(config, t, st, dev)?)
}

fn load_sets(cfg: &SedTrainConfig, classes: &[String]) -> Result<Vec<DataSet>> {
    let d = &cfg.data;
    let mut sets = Vec::new();
    for kind in SetKind::ALL {
        let set = match kind {
            SetKind::Strong => d.strong.as_ref().map(|s| data::load_strong(kind, s, classes)),
            SetKind::Synthetic => d.synthetic.as_ref().map(|s| data::load_strong(kind, s, classes)),
            SetKind::Weak => d.weak.as_ref().map(|s| data::load_weak(s, classes)),
            SetKind::Unlabeled => d.unlabeled.as_ref().map(data::load_unlabeled),
        };
        if let Some(s) = set {
            sets.push(s.with_context(|| format!("[data] {}", kind.name()))?);
        }
    }
    Ok(sets)
}

/// The validation set: audio paths, ground truth, durations.
struct Validation {
    files: Vec<PathBuf>,
    gt: GroundTruth,
}

impl Validation {
    fn load(v: &crate::config::SetCfg, classes: &[String]) -> Result<Validation> {
        let (tsv, dur) = (v.tsv.as_ref().unwrap(), v.durations.as_ref().unwrap());
        let reference = read_strong(tsv).map_err(|e| anyhow!("{e}"))?;
        let durations = read_durations(dur).map_err(|e| anyhow!("{e}"))?;
        let (gt, warnings) = ground_truth(&reference, &durations, dur, Some(classes), &[]).map_err(|e| anyhow!("[data] validation: {e}"))?;
        for w in warnings {
            eprintln!("warning: [data] validation: {w}");
        }
        let audio = data::list_audio(&v.audio)?;
        let files = gt
            .files
            .iter()
            .map(|f| audio.get(f).cloned().ok_or_else(|| anyhow!("{}: '{f}' has no WAV in {}", dur.display(), v.audio.display())))
            .collect::<Result<Vec<_>>>()?;
        // Unreadable validation audio fails now, not after the first epoch.
        files.par_iter().try_for_each(|f| audio::probe_seconds(f).map(|_| ()).map_err(|e| anyhow!("[data] validation: {e}")))?;
        Ok(Validation { files, gt })
    }
}

impl SedTrainer {
    /// The optimizer groups (per-layer learning rates), the frozen set and the teacher of `model`.
    pub fn new(cfg: SedTrainConfig, model: TrainableAstSed, device: Device) -> Result<SedTrainer> {
        let t = &cfg.train;
        let l = model.config.ast_layers;
        let frozen: HashSet<String> = if t.freeze_ast_blocks > 0 {
            // Layers 0 (embeddings) … N (block N − 1); never the final LayerNorm (layer l + 1).
            model.store.names().into_iter().filter(|n| n.starts_with("ast.") && layer_of(n, l) <= t.freeze_ast_blocks.min(l)).collect()
        } else {
            HashSet::new()
        };
        // One group per distinct lr (AST layers under layer-wise decay, the new layers).
        let mut by_lr: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for n in model.store.names() {
            if frozen.contains(&n) {
                continue;
            }
            let lr = if n.starts_with("ast.") { t.lr_ast.unwrap_or(t.lr) * t.layer_decay.powi((l + 1 - layer_of(&n, l)) as i32) } else { t.lr };
            by_lr.entry(lr.to_bits()).or_default().push(n);
        }
        let groups: Vec<ParamGroup> = by_lr.into_iter().map(|(lr, names)| ParamGroup::new(names, f64::from_bits(lr), t.weight_decay)).collect();
        let base_lrs = groups.iter().map(|g| g.lr).collect();
        let opt = AdamW::new(groups).with_betas(t.betas[0], t.betas[1]).with_eps(t.eps);
        let teacher = model.store.clone();
        Ok(SedTrainer { cfg, model, teacher, opt, base_lrs, frozen, step: 0, best: None, device })
    }

    /// The mean teacher as an inference graph (fused epilogues, no tape): the same function as the
    /// training forward, ~10% faster on AST-base (7.8 → 7.0 s for a batch of 4, building included).
    pub fn teacher_graph(&self) -> Result<AstSed> {
        Ok(self.model.inference(&self.teacher, self.device)?)
    }

    /// Forward + backward of one micro-batch; returns the gradients of L / `div`. `teacher` (from
    /// [`SedTrainer::teacher_graph`]) gives the consistency targets when `cw` > 0.
    pub fn micro_step(&self, b: &data::Batch, teacher: Option<&AstSed>, cw: f64, div: f32, logs: &mut StepLog) -> Result<Grads> {
        let mc = &self.model.config;
        let (l, m, f, k) = (mc.ast.max_length, mc.ast.num_mel_bins, mc.frames(), mc.classes.len());
        let x = Tensor::from_vec(b.x.clone(), &[b.b, l, m])?.to_device(self.device)?;
        let ts = Tensor::from_vec(b.strong.clone(), &[b.b, f, k])?;
        let tw = Tensor::from_vec(b.weak.clone(), &[b.b, k])?;
        let (t_strong, t_weak) = match teacher {
            Some(t) if cw > 0.0 => {
                let o = t.forward(&x)?;
                (Some(o.strong), Some(o.weak))
            }
            _ => (None, None),
        };
        let tape = Tape::new();
        let out = self.model.forward(&tape, x.clone())?;
        let parts = self.losses(&tape, &out, b, &ts, &tw, t_strong.as_ref(), t_weak.as_ref(), cw)?;
        let lv = parts.total.value().to_vec()?[0];
        if !lv.is_finite() {
            drop(parts);
            drop(out);
            tape.clear();
            // Replay on a checking tape to name the first op that made a NaN/inf.
            let check = Tape::new();
            check.check_finite(true);
            let why = self
                .model
                .forward(&check, x)
                .map_err(anyhow::Error::from)
                .and_then(|o| self.losses(&check, &o, b, &ts, &tw, t_strong.as_ref(), t_weak.as_ref(), cw).map(|_| ()))
                .err()
                .map_or("no op of the replayed forward produced it (the targets or the teacher's outputs may hold NaN)".to_string(), |e| e.to_string());
            bail!("the loss is {lv}: {why}");
        }
        let scalar = |v: &Option<aural_autograd::Var>| -> Result<f64> { Ok(v.as_ref().map_or(Ok(0.0), |v| v.value().to_vec().map(|x| x[0] as f64))?) };
        logs.total += lv as f64;
        logs.frame += scalar(&parts.frame)?;
        logs.clip += scalar(&parts.clip)?;
        logs.sup += parts.sup.value().to_vec()?[0] as f64;
        logs.cons += scalar(&parts.cons)?;
        logs.cw = cw;
        let loss = if div != 1.0 { ops::scale(&parts.total, 1.0 / div)? } else { parts.total };
        Ok(tape.backward(&loss)?)
    }

    #[allow(clippy::too_many_arguments)]
    fn losses(
        &self,
        tape: &Tape,
        out: &TrainOutput,
        b: &data::Batch,
        ts: &Tensor,
        tw: &Tensor,
        t_strong: Option<&Tensor>,
        t_weak: Option<&Tensor>,
        cw: f64,
    ) -> Result<Losses> {
        let dev = self.device;
        let rows = |t: &Tensor, r: &std::ops::Range<usize>| -> Result<Tensor> { Ok(aural_runtime::ops::shape::slice(t, 0, r.start, r.len())?.to_device(dev)?) };
        let frame = if b.strong_range.is_empty() {
            None
        } else {
            let p = ops::slice(&out.strong, 0, b.strong_range.start, b.strong_range.len())?;
            Some(ops::bce(&p, &tape.constant(rows(ts, &b.strong_range)?))?)
        };
        let clip = if b.weak_range.is_empty() {
            None
        } else {
            let p = ops::slice(&out.weak, 0, b.weak_range.start, b.weak_range.len())?;
            Some(ops::bce(&p, &tape.constant(rows(tw, &b.weak_range)?))?)
        };
        let sup = match (&frame, &clip) {
            (Some(f), Some(c)) => ops::add(f, &ops::scale(c, self.cfg.train.weak_loss_weight as f32)?)?,
            (Some(f), None) => f.clone(),
            (None, Some(c)) => ops::scale(c, self.cfg.train.weak_loss_weight as f32)?,
            (None, None) => unreachable!("validated: a labelled set is in every batch"),
        };
        let cons = match (t_strong, t_weak) {
            (Some(s), Some(w)) => Some(ops::add(&ops::mse(&out.strong, &tape.constant(s.clone()))?, &ops::mse(&out.weak, &tape.constant(w.clone()))?)?),
            _ => None,
        };
        let total = match &cons {
            Some(c) => ops::add(&sup, &ops::scale(c, cw as f32)?)?,
            None => sup.clone(),
        };
        Ok(Losses { total, sup, frame, clip, cons })
    }

    /// Clipping, schedule, AdamW, EMA; returns the gradient norm (before clipping).
    pub fn update(&mut self, grads: &mut Grads, total: u64, per_epoch: u64) -> Result<f64> {
        for n in &self.frozen {
            grads.remove(&self.model.store.get(n)?);
        }
        let gn = match self.cfg.train.clip_grad_norm {
            Some(c) => clip_grad_norm(&self.model.store, grads, c)?,
            None => {
                self.model.store.check_finite(grads)?;
                f64::NAN
            }
        };
        let f = lr_factor(&self.cfg.train.schedule, self.step, total, per_epoch);
        let base = self.base_lrs.clone();
        self.opt.map_lr(|i, _| base[i] * f);
        self.opt.step(&mut self.model.store, grads)?;
        self.step += 1;
        let a = ema_alpha(self.step, self.cfg.train.mean_teacher.ema) as f32;
        for (name, v) in self.model.store.iter() {
            let t = self.teacher.get(name)?;
            let new = add(&affine(t.value(), a, 0.0)?, &affine(v.value(), 1.0 - a, 0.0)?)?;
            self.teacher.set(name, new)?;
        }
        Ok(gn)
    }

    /// Student and teacher on the validation set: {"student": metrics, "teacher": metrics}.
    fn validate(&self, v: &Validation) -> Result<Value> {
        let mut out = json!({});
        let vc = &self.cfg.validation;
        let opts = EvalOptions {
            threshold: vc.threshold,
            median: vc.median_filter,
            which: Which { event: true, segment: true, psds1: true, psds2: true, psds1_op: false, psds2_op: false },
            ..Default::default()
        };
        let g = self.model.config.geometry();
        let who = ["student", "teacher"];
        let graphs = [self.model.inference(&self.model.store, self.device)?, self.teacher_graph()?];
        let mut tables: [Vec<ScoreTable>; 2] = Default::default();
        let opts_d = DetectOpts { batch: vc.batch, ..Default::default() };
        for (path, &dur) in v.files.iter().zip(&v.gt.durations) {
            // Decoded once for both models.
            let a = audio::load(path, self.model.config.sample_rate, Channels::MixDown).map_err(|e| anyhow!("{e}"))?;
            for (m, t) in graphs.iter().zip(tables.iter_mut()) {
                let sc = m.detect(a.mono(), &opts_d).with_context(|| format!("validating on {}", path.display()))?;
                t.push(ScoreTable::from_frame_scores(&sc.strong, &g, dur).map_err(|e| anyhow!("{e}"))?);
            }
        }
        for (who, tables) in who.into_iter().zip(tables) {
            let r = evaluate(&v.gt, &Predictions::Scores(tables), &opts).map_err(|e| anyhow!("validation: {e}"))?;
            let j = r.to_json(&opts);
            out[who] = json!({
                "psds1": j["psds1"], "psds2": j["psds2"],
                "event_f1": j["event_based"]["f1_macro"], "event_f1_micro": j["event_based"]["f1_micro"],
                "segment_f1": j["segment_based"]["f1_macro"], "segment_er": j["segment_based"]["error_rate"],
            });
        }
        Ok(out)
    }

    /// Writes `last/`: config.json + model.safetensors (teacher or student, `[model] save`) that
    /// `aural detect` loads, and trainer_state.{safetensors,json} (the other weights, AdamW moments
    /// and step counts, the step and the best metric).
    fn checkpoint(&self, run: &RunDir) -> Result<()> {
        let teacher_first = self.cfg.model.save == "teacher";
        let (main, other, other_key) =
            if teacher_first { (&self.teacher, &self.model.store, "student") } else { (&self.model.store, &self.teacher, "teacher") };
        run.write_checkpoint("last", |d| {
            self.model.save(d, main)?;
            let tensors = other.iter().map(|(k, v)| (format!("{other_key}/{k}"), v.value().clone())).collect();
            let state = json!({
                "format": "aural trainer sed v1", "step": self.step, "seed": self.cfg.train.seed, "model_weights": self.cfg.model.save,
                "best": self.best.map(|(v, s)| json!({"value": v, "step": s})),
            });
            write_trainer_state(d, &self.opt, tensors, state)
        })?;
        Ok(())
    }

    /// Restores everything [`SedTrainer::checkpoint`] wrote.
    fn restore(&mut self, dir: &Path) -> Result<()> {
        let SavedState { json: state, json_path: sp, tensors: mut file, tensors_path: tp, step, best } =
            read_trainer_state(dir, "aural trainer sed v1", "trainer sed")?;
        if state["model_weights"] != self.cfg.model.save.as_str() {
            bail!("{}: the checkpoint's model.safetensors holds the {} weights, the config says {}", sp.display(), state["model_weights"], self.cfg.model.save);
        }
        self.step = step;
        self.best = best;
        let teacher_first = self.cfg.model.save == "teacher";
        let mp = dir.join("model.safetensors");
        let mut main = self.model.store.clone();
        main.load_into(&mp).with_context(|| format!("restoring from {}", mp.display()))?;
        let other_key = if teacher_first { "student/" } else { "teacher/" };
        let mut other = self.model.store.clone();
        other.take_from(&mut file, other_key, &tp)?;
        let (student, teacher) = if teacher_first { (other, main) } else { (main, other) };
        // Keep the student's Var ids (the optimizer groups name parameters; ids only matter per tape).
        for (name, v) in student.iter() {
            self.model.store.set(name, v.value().clone())?;
        }
        self.teacher = teacher;
        restore_optimizer(&mut self.opt, &self.model.store, &mut file, &state["adam_steps"], &sp, &tp, self.device)?;
        Ok(())
    }
}

struct Losses {
    total: aural_autograd::Var,
    sup: aural_autograd::Var,
    frame: Option<aural_autograd::Var>,
    clip: Option<aural_autograd::Var>,
    cons: Option<aural_autograd::Var>,
}

/// The layer of an `ast.` parameter for freezing and layer-wise decay: 0 embeddings, i + 1 block i,
/// `ast_layers` + 1 the final LayerNorm.
fn layer_of(name: &str, ast_layers: usize) -> usize {
    ast_layer_id(name.strip_prefix("ast.").unwrap_or(name), ast_layers)
}
