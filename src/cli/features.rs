//! `aural features`: log-mel fbank (torchaudio's `compliance.kaldi.fbank`, by default with AST's
//! arguments) or AST's `input_values` of WAV files, written to a safetensors file.
//!
//! Audio is resampled to `--sample-rate` (16 kHz) and mixed down to mono (the mean of the channels)
//! before the fbank: HF's `ASTFeatureExtractor` expects mono 16 kHz; `--channel N` takes one channel
//! instead. The fbank options carry torchaudio's names and defaults as AST calls it (`htk_compat`,
//! no energy, no dither): `--num-mel-bins 128 --frame-length 25 --frame-shift 10 --window hanning
//! --preemphasis 0.97 --low-freq 20 --high-freq 0`; `--keep-dc-offset` is `remove_dc_offset=False`,
//! `--no-round-to-power-of-two` is `round_to_power_of_two=False`. With `--ast` the result is
//! padded/truncated to `--max-length` frames (1024) and normalised with AudioSet's mean and std.
//!
//! Files are computed in parallel, each read block by block. When every output's shape is known
//! from the WAV headers (always with `--ast`), the safetensors header is written first and each
//! file's features as soon as they are computed, so memory holds a few files' features whatever
//! their number (tensors are stored by name, so files are computed in the order of their names);
//! with stdin (`-`) among the inputs and no `--ast`, everything is computed, then written.

use std::path::PathBuf;

use anyhow::{Context, Result};
use aural::models::audio::Channels;
use aural::runtime::ops::fbank::{ast_input, AstNorm, FbankOpts, FbankPlan, FbankStream, Window};
use rayon::prelude::*;

use super::input::InputOpts;
use aural::runtime::{safetensors_io, DType, Tensor};

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
    /// With --ast: frames to pad or truncate to (AST's max_length).
    #[arg(long, default_value_t = 1024, requires = "ast")]
    max_length: usize,
    /// Use this channel (0-based) instead of mixing down to mono.
    #[arg(long)]
    channel: Option<usize>,
    /// Resample the audio to this rate (Hz) and compute the fbank at it (`sample_frequency`).
    #[arg(long, default_value_t = 16000)]
    sample_rate: u32,
    /// Mel filters (`num_mel_bins`).
    #[arg(long, default_value_t = 128)]
    num_mel_bins: usize,
    /// Frame length in ms (`frame_length`).
    #[arg(long, default_value_t = 25.0)]
    frame_length: f32,
    /// Frame shift in ms (`frame_shift`).
    #[arg(long, default_value_t = 10.0)]
    frame_shift: f32,
    /// Window (`window_type`).
    #[arg(long, value_enum, default_value = "hanning")]
    window: WindowArg,
    /// Pre-emphasis coefficient (`preemphasis_coefficient`; 0 disables).
    #[arg(long, default_value_t = 0.97)]
    preemphasis: f32,
    /// Lowest mel edge in Hz (`low_freq`).
    #[arg(long, default_value_t = 20.0)]
    low_freq: f32,
    /// Highest mel edge in Hz; ≤ 0 means Nyquist plus this (`high_freq`).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    high_freq: f32,
    /// Keep each frame's DC offset (`remove_dc_offset=False`).
    #[arg(long)]
    keep_dc_offset: bool,
    /// Use the frame length as the FFT size instead of the next power of two
    /// (`round_to_power_of_two=False`; CPU only).
    #[arg(long)]
    no_round_to_power_of_two: bool,
    /// Set NaN and infinite samples to 0 (with a warning) instead of refusing the file.
    #[arg(long)]
    allow_nonfinite: bool,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// torchaudio's `window_type` names.
#[derive(Clone, Copy, clap::ValueEnum)]
enum WindowArg {
    Hanning,
    Hamming,
    Povey,
    Rectangular,
    Blackman,
}

impl From<WindowArg> for Window {
    fn from(w: WindowArg) -> Window {
        match w {
            WindowArg::Hanning => Window::Hanning,
            WindowArg::Hamming => Window::Hamming,
            WindowArg::Povey => Window::Povey,
            WindowArg::Rectangular => Window::Rectangular,
            WindowArg::Blackman => Window::Blackman,
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let dev = super::resolve_device(&a.device)?;
    let opts = FbankOpts {
        sample_rate: a.sample_rate as f32,
        num_mel_bins: a.num_mel_bins,
        frame_length_ms: a.frame_length,
        frame_shift_ms: a.frame_shift,
        preemph: a.preemphasis,
        low_freq: a.low_freq,
        high_freq: a.high_freq,
        remove_dc_offset: !a.keep_dc_offset,
        window: a.window.into(),
        round_to_power_of_two: !a.no_round_to_power_of_two,
        ast_norm: a.ast.then_some(AstNorm { max_length: a.max_length, ..AstNorm::AUDIOSET }),
    };
    // Bad options are one error before any file is read.
    FbankPlan::new(&opts).context("fbank options")?;
    let name = if a.ast { "input_values" } else { "fbank" };
    let ch = a.channel.map(Channels::Select).unwrap_or(Channels::MixDown);
    let keys: Vec<String> = if a.inputs.len() == 1 {
        vec![name.to_string()]
    } else {
        super::input_stems(&a.inputs, &name)?.into_iter().map(|stem| format!("{stem}/{name}")).collect()
    };
    let io = InputOpts { channels: ch, allow_nonfinite: a.allow_nonfinite, raw: None };
    let one = |p: &PathBuf| -> Result<(Tensor, usize)> {
        let mut b = super::input::open(p, a.sample_rate, &io)?;
        let mut fs = FbankStream::new(&opts, dev)?;
        // the output's size from the header, reserved once (no doubling of a growing Vec)
        let mut fb = Vec::new();
        if let Some(t) = b.total_frames().and_then(|t| usize::try_from(t).ok()) {
            fb.reserve_exact(FbankPlan::cached(&opts)?.frames(t) * opts.num_mel_bins);
        }
        let mut n = 0;
        while let Some(x) = b.next_block(super::input::BLOCK_FRAMES)? {
            n += x[0].len();
            fs.push_into(&x[0], &mut fb)?;
        }
        fs.finish_into(&mut fb)?;
        super::input::warn_zeroed(p, &mut b);
        let rows = fs.frames();
        let raw = Tensor::from_vec(fb, &[rows, opts.num_mel_bins])?;
        let t = match opts.ast_norm {
            Some(an) => ast_input(&raw.to_device(dev)?, an.max_length, an.mean, an.std)?,
            None => raw,
        };
        Ok((t, n))
    };
    let one = |i: usize| one(&a.inputs[i]).with_context(|| format!("fbank of {}", a.inputs[i].display()));
    let report =
        |i: usize, key: &str, t: &Tensor, n: usize| eprintln!("{}: {n} samples at {} Hz → {key} {:?}", a.inputs[i].display(), a.sample_rate, t.shape());

    match shapes(&a, &opts, &io)? {
        // Every shape known from the headers: the file's header is written first, then each
        // file's fbank as soon as it is computed (files in the order the file stores them, a few
        // ahead on worker threads): memory is a few files' features, whatever their number.
        Some(shapes) => {
            let specs: Vec<(String, DType, Vec<usize>)> = keys.iter().zip(shapes).map(|(k, s)| (k.clone(), DType::F32, s)).collect();
            let (order, index) = super::input::stored_order(&keys);
            super::input::in_order(&order, one, |rx| {
                super::input::save_streamed(&a.out, specs, |name| {
                    let (t, n) = rx(index[name])?;
                    report(index[name], name, &t, n);
                    Ok(t)
                })
            })
        }
        // A stream of unknown length (stdin): every file computed, then written.
        None => {
            let results: Vec<Result<(Tensor, usize)>> = (0..a.inputs.len()).into_par_iter().map(one).collect();
            let mut out: Vec<(String, Tensor)> = Vec::new();
            for (i, (key, r)) in keys.into_iter().zip(results).enumerate() {
                let (t, n) = r?;
                report(i, &key, &t, n);
                out.push((key, t));
            }
            Ok(safetensors_io::save(&a.out, out.iter().map(|(k, t)| (k.as_str(), t)))?)
        }
    }
}

/// The output shape of every input, from the WAV headers (AST's input has one shape); `None` when
/// an input's length is not known before it is read (stdin).
fn shapes(a: &Args, opts: &FbankOpts, io: &InputOpts) -> Result<Option<Vec<Vec<usize>>>> {
    let nm = opts.num_mel_bins;
    if let Some(an) = opts.ast_norm {
        return Ok(Some(vec![vec![an.max_length, nm]; a.inputs.len()]));
    }
    let plan = FbankPlan::cached(opts)?;
    let mut out = Vec::with_capacity(a.inputs.len());
    for p in &a.inputs {
        if p.as_os_str() == "-" {
            return Ok(None);
        }
        let b = super::input::open(p, a.sample_rate, io).with_context(|| format!("fbank of {}", p.display()))?;
        match b.total_frames().and_then(|t| usize::try_from(t).ok()) {
            Some(t) => out.push(vec![plan.frames(t), nm]),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}
