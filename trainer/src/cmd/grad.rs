//! `trainer grad`: one forward + backward of the AST-SED model on a batch, gradients by name.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use aural_autograd::Tape;
use aural_models::ast_sed::train::TrainableAstSed;
use aural_runtime::{safetensors_io, Device, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// AST-SED or AST-GRU checkpoint directory (config.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// safetensors file with `input_values` (batch × frames × mel).
    #[arg(long)]
    input: PathBuf,
    /// safetensors file with `strong` (batch × frames × classes) and `weak` (batch × classes).
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

pub fn run(a: Args) -> Result<()> {
    let (dev, why) = Device::parse(&a.device)?;
    dev.check().map_err(|e| anyhow!("{dev} is not usable: {e}"))?;
    eprintln!("device: {dev} ({why})");
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
    let mut outs: Vec<(String, Tensor)> = vec![("loss".into(), Tensor::from_vec(vec![lv], &[1])?)];
    for (name, v) in model.store.iter() {
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
