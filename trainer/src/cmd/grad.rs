//! `trainer grad`: one forward + backward of a model on a batch, gradients by name. The checkpoint's
//! `config.json` says which model: AST-SED / AST-GRU (BCE losses on `input_values`) or a separator
//! (−SNR on `mixture` + `label_vector`, BatchNorm in evaluation mode).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use aural_autograd::{ops, Grads, ParamStore, Tape};
use aural_models::ast_sed::train::TrainableAstSed;
use aural_runtime::{safetensors_io, Device, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// AST-SED / AST-GRU or separator checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// safetensors file with `input_values` (batch × frames × mel; AST-SED), or `mixture` (batch ×
    /// channels × samples) and `label_vector` (batch × label_len; separator; CP-JKU models also
    /// `strong_logits` and/or `embeddings`).
    #[arg(long)]
    input: PathBuf,
    /// safetensors file with `strong` (batch × frames × classes) and `weak` (batch × classes)
    /// (AST-SED), or `waveform` (batch × 1 × samples, the dry targets; separator).
    #[arg(long)]
    targets: PathBuf,
    /// Output safetensors: `loss` and the gradient of every parameter under its name.
    #[arg(long)]
    out: PathBuf,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

fn tensor(file: &std::path::Path, name: &str) -> Result<Tensor> {
    let mut m = safetensors_io::load(file).with_context(|| format!("reading {}", file.display()))?;
    let t = m.remove(name).ok_or_else(|| anyhow!("{}: no tensor '{name}' (found: {})", file.display(), m.keys().cloned().collect::<Vec<_>>().join(", ")))?;
    if t.dtype() != aural_runtime::DType::F32 {
        return Ok(Tensor::from_vec(t.to_vec()?, t.shape())?);
    }
    Ok(t)
}

/// Whether `dir/config.json` describes a separator (`"architecture": "resunet30"`).
fn is_separator(dir: &Path) -> Result<bool> {
    let p = dir.join("config.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?).with_context(|| format!("{}", p.display()))?;
    Ok(v["architecture"].as_str() == Some("resunet30"))
}

pub fn run(a: Args) -> Result<()> {
    let (dev, why) = Device::parse(&a.device)?;
    dev.check().map_err(|e| anyhow!("{dev} is not usable: {e}"))?;
    eprintln!("device: {dev} ({why})");
    if is_separator(&a.model)? {
        return separator(&a, dev);
    }
    let t0 = Instant::now();
    let model = TrainableAstSed::load(&a.model, dev).with_context(|| format!("loading {}", a.model.display()))?;
    let c = &model.config;
    let x = tensor(&a.input, "input_values")?;
    let want = [x.shape().first().copied().unwrap_or(0), c.ast.max_length, c.ast.num_mel_bins];
    if x.rank() != 3 || x.shape()[1..] != want[1..] {
        bail!("{}: input_values has shape {:?}, expected (batch, {}, {}) for this model", a.input.display(), x.shape(), want[1], want[2]);
    }
    if x.to_vec()?.iter().any(|v| !v.is_finite()) {
        bail!("{}: input_values holds NaN or inf", a.input.display());
    }
    let b = x.shape()[0];
    let (ts, tw) = (tensor(&a.targets, "strong")?, tensor(&a.targets, "weak")?);
    let k = c.classes.len();
    if ts.shape() != [b, c.frames(), k] || tw.shape() != [b, k] {
        bail!(
            "{}: targets strong {:?} / weak {:?}, expected ({b}, {}, {k}) / ({b}, {k}) for this model and batch",
            a.targets.display(),
            ts.shape(),
            tw.shape(),
            c.frames()
        );
    }
    let tape = Tape::new();
    let out = model.forward(&tape, x.to_device(dev)?)?;
    let loss = model.supervised_loss(&tape, &out, ts.to_device(dev)?, tw.to_device(dev)?)?;
    let lv = loss.value().to_vec()?[0];
    if !lv.is_finite() {
        bail!("the loss is {lv}: refusing to write gradients");
    }
    let grads = tape.backward(&loss)?;
    model.store.check_finite(&grads)?;
    write(&a, lv, &model.store, &grads, t0)
}

/// Writes `loss` and the gradient of every parameter of `store` (zeros where none reached it).
fn write(a: &Args, lv: f32, store: &ParamStore, grads: &Grads, t0: Instant) -> Result<()> {
    let mut outs: Vec<(String, Tensor)> = vec![("loss".into(), Tensor::from_vec(vec![lv], &[1])?)];
    for (name, v) in store.iter() {
        let g = match grads.get(v) {
            Some(g) => g.to_device(Device::Cpu)?,
            None => Tensor::zeros(v.shape(), aural_runtime::DType::F32, Device::Cpu)?,
        };
        outs.push((name.clone(), g));
    }
    safetensors_io::save(&a.out, outs.iter().map(|(k, t)| (k.as_str(), t))).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("loss {lv:.6}, {} parameter gradients → {} ({:.2} s)", outs.len() - 1, a.out.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

/// A separator: loss = mean over the batch of −SNR(estimate, `waveform`), BatchNorm in evaluation mode.
/// A CP-JKU model also reads `strong_logits` (B × classes × frames, time-FiLM) and `embeddings` (B ×
/// layers × tokens × dim, injection) from `--input`; the iterative model runs the config's passes,
/// the gradient through the last one (CP-JKU's training rule).
fn separator(a: &Args, dev: Device) -> Result<()> {
    use aural_models::separator::train::{BnMode, TrainableSeparator};
    let t0 = Instant::now();
    let model = TrainableSeparator::load(&a.model, dev).with_context(|| format!("loading {}", a.model.display()))?;
    let c = &model.config;
    let mix = tensor(&a.input, "mixture")?;
    let b = mix.shape().first().copied().unwrap_or(0);
    if mix.rank() != 3 || mix.shape()[1] != c.input_channels || b == 0 {
        bail!("{}: mixture has shape {:?}, expected (batch, {}, samples) for this model", a.input.display(), mix.shape(), c.input_channels);
    }
    let len = mix.shape()[2];
    let cond_name = if c.conditioning == aural_models::separator::Conditioning::Label { "label_vector" } else { "query" };
    let cond = tensor(&a.input, cond_name)?;
    let target = tensor(&a.targets, "waveform")?;
    let want = [b, c.target_sources_num * c.output_channels, len];
    if target.shape() != want {
        bail!("{}: waveform has shape {:?}, expected {want:?} (batch, sources × output channels, samples)", a.targets.display(), target.shape());
    }
    for (what, t, file) in [("mixture", &mix, &a.input), ("waveform", &target, &a.targets)] {
        if t.to_vec()?.iter().any(|v| !v.is_finite()) {
            bail!("{}: {what} holds NaN or inf", file.display());
        }
    }
    // CP-JKU models also take the SED model's strong logits and hidden states.
    let logits = if c.time_film.is_some() { Some(tensor(&a.input, "strong_logits")?) } else { None };
    let emb = if c.inject.is_some() { Some(tensor(&a.input, "embeddings")?) } else { None };
    let extra = aural_models::separator::Conditions { strong_logits: logits.as_ref(), embeddings: emb.as_ref(), iterations: None };
    let tape = Tape::new();
    let out = model.forward_with(&tape, &mix, &cond, &extra, BnMode::Eval).with_context(|| format!("{}", a.input.display()))?;
    let loss = ops::neg_snr(&ops::reshape(&out.waveform, &want)?, &target)?;
    let lv = loss.value().to_vec()?[0];
    if !lv.is_finite() {
        bail!("the loss is {lv}: refusing to write gradients");
    }
    let grads = tape.backward(&loss)?;
    model.store.check_finite(&grads)?;
    write(a, lv, &model.store, &grads, t0)
}
