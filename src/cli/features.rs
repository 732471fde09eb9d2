//! `aural features`: log-mel fbank (torchaudio kaldi, AST's call) or AST's `input_values` of WAV
//! files, written to a safetensors file.
//!
//! Audio is resampled to 16 kHz and mixed down to mono (the mean of the channels) before the fbank:
//! HF's `ASTFeatureExtractor` expects mono 16 kHz; `--channel N` takes one channel instead.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use aural::models::audio::{self, Channels};
use aural::runtime::ops::fbank::{fbank, AstNorm, FbankOpts};
use aural::runtime::{safetensors_io, Tensor};

#[derive(clap::Args)]
pub struct Args {
    /// WAV files (any PCM width or float, any channel count, any rate).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Write AST's `input_values` (1024 × 128, padded and normalised) instead of the raw `fbank`.
    #[arg(long)]
    ast: bool,
    /// Use this channel (0-based) instead of mixing down to mono.
    #[arg(long)]
    channel: Option<usize>,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(a: Args) -> Result<()> {
    let dev = super::resolve_device(&a.device)?;
    let opts = FbankOpts { ast_norm: a.ast.then_some(AstNorm::AUDIOSET), ..Default::default() };
    let name = if a.ast { "input_values" } else { "fbank" };
    let ch = a.channel.map(Channels::Select).unwrap_or(Channels::MixDown);
    let mut out: Vec<(String, Tensor)> = Vec::new();
    for p in &a.inputs {
        let au = audio::load(p, opts.sample_rate as u32, ch)?;
        let n = au.num_samples();
        let wave = Tensor::from_vec(au.channels.into_iter().next().unwrap_or_default(), &[n])?.to_device(dev)?;
        let t = fbank(&wave, &opts).with_context(|| format!("fbank of {}", p.display()))?;
        let key = if a.inputs.len() == 1 {
            name.to_string()
        } else {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            format!("{stem}/{name}")
        };
        if out.iter().any(|(k, _)| *k == key) {
            bail!("two inputs share the file stem of {} (tensor name '{key}')", p.display());
        }
        eprintln!("{}: {n} samples at 16 kHz → {key} {:?}", p.display(), t.shape());
        out.push((key, t));
    }
    safetensors_io::save(&a.out, out.iter().map(|(k, t)| (k.as_str(), t))).with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}
