//! `aural embed`: AST embeddings of WAV files → safetensors.
//!
//! Per file (read, resampled and turned into features on worker threads ahead of the model;
//! `--batch` files per forward pass, in the order of the output's names; each written as its batch
//! finishes): 16 kHz mono audio (models::audio; mixed down unless `--channel`), AST's fbank and
//! input normalisation (ops::fbank, HF `ASTFeatureExtractor`: pad/truncate to the config's
//! max_length, AudioSet mean/std), then the AST backbone loaded from an HF checkpoint directory
//! (config.json + model.safetensors). Written per file (`<stem>/` prefix when several inputs):
//! `last_hidden_state` (tokens × D); with `--layer K` `hidden_states.K` instead (HF's
//! `hidden_states[K]`: 0 = embeddings, K = output of block K, before the final LayerNorm); with
//! `--pooled` `pooler_output` (D) = (cls + distillation)/2 of those tokens, as HF's ASTModel pooler;
//! with `--logits` the `logits` (labels) of an ASTForAudioClassification checkpoint's head.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aural::models::ast::AstModel;
use aural::models::audio::Channels;
use aural::runtime::ops::fbank::{fbank, AstNorm, FbankOpts};
use aural::runtime::{DType, Tensor};

use super::input::InputOpts;

#[derive(clap::Args)]
pub struct Args {
    /// HF AST checkpoint directory (config.json + model.safetensors, or a sharded save's
    /// model.safetensors.index.json + shards): ASTModel or ASTForAudioClassification, e.g.
    /// MIT/ast-finetuned-audioset-10-10-0.4593.
    #[arg(long)]
    model: PathBuf,
    /// WAV files (any PCM width or float, any channel count, any rate).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Write hidden state K (0 = embeddings, K = output of block K) instead of last_hidden_state;
    /// only the first K blocks are run.
    #[arg(long)]
    layer: Option<usize>,
    /// Write pooler_output = (cls + distillation) / 2 instead of the tokens.
    #[arg(long, conflicts_with = "logits")]
    pooled: bool,
    /// Write `logits` (labels) of an ASTForAudioClassification checkpoint's classifier head
    /// (LayerNorm + dense on the pooled token) instead of the tokens.
    #[arg(long, conflicts_with = "layer")]
    logits: bool,
    /// Use this channel (0-based) instead of mixing down to mono.
    #[arg(long)]
    channel: Option<usize>,
    /// Subtract the clip's mean from the waveform before the fbank (the original AST code; HF's
    /// feature extractor does not).
    #[arg(long)]
    subtract_mean: bool,
    /// Time the model: run the forward pass N times per file (after one warm-up) and print the
    /// median, the minimum and the time per op kind (the written tensors are unchanged).
    #[arg(long, value_name = "N")]
    profile: Option<usize>,
    /// Files per forward pass.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Set NaN and infinite samples to 0 (with a warning) instead of refusing the file.
    #[arg(long)]
    allow_nonfinite: bool,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(a: Args) -> Result<()> {
    let dev = super::resolve_device(&a.device)?;
    let t0 = Instant::now();
    let model = AstModel::load(&a.model, dev, a.layer).with_context(|| format!("loading the AST checkpoint {}", a.model.display()))?;
    if !model.unexpected.is_empty() {
        eprintln!("warning: {} tensor(s) of the checkpoint are not AST parameters and were ignored: {}", model.unexpected.len(), model.unexpected.join(", "));
    }
    let c = &model.config;
    eprintln!(
        "model: {} blocks of {}, {} heads, {} tokens ({:.2} s to load)",
        model.layers.len(),
        c.hidden_size,
        c.num_attention_heads,
        c.seq_len(),
        t0.elapsed().as_secs_f64()
    );
    let opts = FbankOpts { num_mel_bins: c.num_mel_bins, ast_norm: Some(AstNorm { max_length: c.max_length, ..AstNorm::AUDIOSET }), ..Default::default() };
    let ch = a.channel.map(Channels::Select).unwrap_or(Channels::MixDown);
    if a.logits && model.classifier.is_none() {
        bail!("{}: --logits needs an ASTForAudioClassification checkpoint (classifier.dense.*), this one has no classifier head", a.model.display());
    }
    let what = match (a.pooled, a.layer) {
        _ if a.logits => "logits".to_string(),
        (true, _) => "pooler_output".to_string(),
        (false, Some(k)) => format!("hidden_states.{k}"),
        (false, None) => "last_hidden_state".to_string(),
    };
    // Tensor names, checked before any file is processed: several inputs are named by file stem.
    let keys: Vec<String> = if a.inputs.len() == 1 {
        vec![what.to_string()]
    } else {
        super::input_stems(&a.inputs, &what)?.into_iter().map(|stem| format!("{stem}/{what}")).collect()
    };
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    // Worker threads decode, resample and compute the files' input_values a few files ahead of
    // the model, which runs on batches of `--batch` files; each file's tensor is written as its
    // batch finishes (the shapes are known from the config, so the file's header comes first):
    // memory holds a batch of outputs whatever the number of files.
    let io = InputOpts { channels: ch, allow_nonfinite: a.allow_nonfinite, raw: None };
    let features = |i: usize| -> Result<(usize, Vec<f32>)> {
        let p = &a.inputs[i];
        let mut b = super::input::open(p, opts.sample_rate as u32, &io)?;
        let mut wave = Vec::new();
        while let Some(x) = b.next_block(super::input::BLOCK_FRAMES)? {
            wave.extend_from_slice(&x[0]);
        }
        super::input::warn_zeroed(p, &mut b);
        let n = wave.len();
        if a.subtract_mean && n > 0 {
            let m = wave.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            wave.iter_mut().for_each(|x| *x -= m as f32);
        }
        let x = fbank(&Tensor::from_vec(wave, &[n])?, &opts).with_context(|| format!("fbank of {}", p.display()))?;
        Ok((n, x.into_vec()?))
    };
    let (l, mel, d) = (c.max_length, c.num_mel_bins, c.hidden_size);
    let shape: Vec<usize> = match (&model.classifier, a.logits, a.pooled) {
        (Some(h), true, _) => vec![h.dense.0.shape()[0]],
        (_, _, true) => vec![d],
        _ => vec![c.seq_len(), d],
    };
    let specs: Vec<(String, DType, Vec<usize>)> = keys.iter().map(|k| (k.clone(), DType::F32, shape.clone())).collect();
    let (order, index) = super::input::stored_order(&keys);
    // the model on the files `ids` (a batch: order[pos..pos + batch], or one file asked out of order)
    let run_batch = |ids: &[usize], get: &mut dyn FnMut(usize) -> Result<(usize, Vec<f32>)>| -> Result<Vec<(usize, Tensor)>> {
        let t = Instant::now();
        let mut ns = Vec::with_capacity(ids.len());
        let mut x = Vec::with_capacity(ids.len() * l * mel);
        for &i in ids {
            let (n, f) = get(i)?;
            ns.push(n);
            x.extend_from_slice(&f);
        }
        let b = ids.len();
        let x = Tensor::from_vec(x, &[b, l, mel])?.to_device(dev)?;
        let names = || ids.iter().map(|&i| a.inputs[i].display().to_string()).collect::<Vec<_>>().join(", ");
        let tokens = match a.layer {
            Some(k) => model.hidden_state(&x, k),
            None => model.forward(&x),
        }
        .with_context(|| format!("AST forward of {}", names()))?;
        if let Some(reps) = a.profile {
            profile(&model, &x, a.layer, reps)?;
        }
        let y = if a.logits {
            model.logits(&tokens)?
        } else if a.pooled {
            model.pooled(&tokens)?.reshape(&[b, d])?
        } else {
            tokens
        };
        let yv = y.to_device(aural::runtime::Device::Cpu)?.into_vec()?;
        let per = yv.len() / b;
        let mut out = Vec::with_capacity(b);
        for (j, (&i, n)) in ids.iter().zip(ns).enumerate() {
            let yi = Tensor::from_vec(yv[j * per..(j + 1) * per].to_vec(), &shape)?;
            eprintln!(
                "{}: {n} samples at 16 kHz → {} {:?} ({:.2} s for a batch of {b})",
                a.inputs[i].display(),
                keys[i],
                yi.shape(),
                t.elapsed().as_secs_f64()
            );
            out.push((i, yi));
        }
        Ok(out)
    };
    super::input::in_order(&order, features, |get| {
        let (mut done, mut pos): (HashMap<usize, Tensor>, usize) = (HashMap::new(), 0);
        super::input::save_streamed(&a.out, specs, |name| {
            let i = index[name];
            if let Some(t) = done.remove(&i) {
                return Ok(t);
            }
            let ids: Vec<usize> = if order.get(pos) == Some(&i) {
                let ids = order[pos..(pos + a.batch).min(order.len())].to_vec();
                pos += ids.len();
                ids
            } else {
                vec![i]
            };
            done.extend(run_batch(&ids, get)?);
            done.remove(&i).context("internal: a batch without its first file")
        })
    })
}

/// `--profile N`: times N forward passes (after a warm-up) and one profiled pass.
fn profile(model: &AstModel, x: &Tensor, layer: Option<usize>, reps: usize) -> Result<()> {
    let sync = |t: &Tensor| -> Result<()> {
        if !t.device().is_cpu() {
            aural::runtime::gpu::backend(t.device())?.synchronize()?;
        }
        Ok(())
    };
    let run = || -> Result<Tensor> {
        let y = match layer {
            Some(k) => model.hidden_state(x, k)?,
            None => model.forward(x)?,
        };
        sync(&y)?;
        Ok(y)
    };
    run()?;
    let mut times = Vec::new();
    let cpu0 = cpu_seconds();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| (b - a) / times.len() as f64);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("aural forward: median {:.4} s, min {:.4} s over {} runs ({} threads)", times[times.len() / 2], times[0], times.len(), rayon_threads());
    if let Some(c) = cpu {
        println!("aural forward: {c:.4} CPU-seconds per run (user + system, all threads)");
    }
    if layer.is_none() {
        let (_, prof) = model.forward_profiled(x)?;
        let total: f64 = prof.iter().map(|p| p.1).sum();
        println!("per op (one profiled forward, {total:.4} s):");
        for (name, t) in prof {
            println!("  {name:<12} {t:>8.4} s  {:>5.1}%", 100.0 * t / total);
        }
    }
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// This process's CPU time (user + system, all threads) from /proc/self/stat (Linux; 10 ms ticks).
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
