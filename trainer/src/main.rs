//! The `trainer` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

use aural_trainer::{sed, separator, synth};

/// aural's trainer.
#[derive(Parser)]
#[command(name = "trainer", version, about = "aural's trainer: gradients and fine-tuning of the AST-SED models and the separator.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Loss and the gradient of every parameter of an AST-SED / AST-GRU or separator checkpoint on one batch.
    ///
    /// AST-SED: loss = BCE(strong, targets `strong`) + 0.5·BCE(weak, targets `weak`) (means over
    /// all elements); `--input` holds `input_values` (batch × frames × mel, as `aural features
    /// --ast` writes one clip; stack clips for a batch); `--targets` holds `strong` (batch ×
    /// T′·upsample × classes) and `weak` (batch × classes).
    ///
    /// Separator (ResUNet30): loss = mean over the batch of −SNR(estimate, target) in dB (plain
    /// SNR, torchmetrics' eps), BatchNorm in evaluation mode; `--input` holds `mixture` (batch ×
    /// channels × samples) and `label_vector` (batch × label_len one-hots; `query` for a
    /// query-conditioned model); `--targets` holds `waveform` (batch × 1 × samples).
    ///
    /// Writes `loss` and one tensor per parameter under its checkpoint name — compare them with
    /// `torch.autograd` on your PyTorch model.
    ///
    /// Examples:
    ///   trainer grad --model ast-sed/ --input x.safetensors --targets t.safetensors --out g.safetensors
    ///   trainer grad --model ast-sed/ --input x.safetensors --targets t.safetensors --out g.safetensors --device cuda
    #[command(verbatim_doc_comment)]
    Grad(cmd::grad::Args),
    /// Fine-tune AST-SED / AST-GRU on DESED-format data with mean teacher (resumable).
    ///
    /// The TOML configuration names the data sets, the model to start from and the training
    /// settings (README "Fine-tuning AST-SED" has a complete example). RUN_DIR gets last/ and best/
    /// (checkpoint directories `aural detect --model` loads), log.jsonl (one line per step),
    /// validation.jsonl, curves.png, and the state to resume from.
    ///
    /// Examples:
    ///   trainer sed --config train.toml --out runs/a
    ///   trainer sed --config train.toml --out runs/a --max-steps 100 --device cuda
    ///   trainer sed --resume runs/a --max-steps 200
    #[command(verbatim_doc_comment)]
    Sed(sed::Args),
    /// Fine-tune a ResUNet30 separator on pre-mixed data (the DCASE 2025 task 4 layout) with −SNR (resumable).
    ///
    /// The TOML configuration names the checkpoint to start from, the soundscape/oracle_target
    /// folders and the training settings (README "Fine-tuning the separator"). RUN_DIR gets last/
    /// and best/ (checkpoint directories `aural separate --model` loads), log.jsonl,
    /// validation.jsonl (CA-SDRi, label accuracy), curves.png, and the state to resume from.
    ///
    /// Examples:
    ///   trainer separator --config sep.toml --out runs/s
    ///   trainer separator --resume runs/s --max-steps 200
    #[command(verbatim_doc_comment)]
    Separator(separator::Args),
    /// Labelled soundscapes (Scaper-like): a background plus events at drawn SNRs, onsets and polyphony.
    ///
    /// Foreground: --builtin (ten procedural classes compiled in: beep, chirp, siren, knock, bell,
    /// whistle, click_train, noise_burst, buzz, babble) or --fg DIR (DIR/<class>/*.wav);
    /// background: --bg DIR or builtin (coloured noise, room tone, mains hum, mixtures). OUT gets
    /// audio/<name>.wav, strong.tsv, weak.tsv, durations.tsv, events.tsv (drawn SNRs), meta.json,
    /// and with --stems each event as placed and the background (they sum to the mixture).
    /// Soundscape i depends only on --seed and i.
    ///
    /// Examples:
    ///   trainer synth --builtin --count 1000 --out data/train --seed 1
    ///   trainer synth --fg sources/ --bg backgrounds/ --count 500 --snr 0,20 --polyphony 3 --out data/x
    ///   trainer synth --builtin --start 17 --count 1 --seed 1 --stems --out one/
    #[command(verbatim_doc_comment)]
    Synth(synth::Args),
}

fn main() -> ExitCode {
    aural_runtime::malloc::keep_all_freed_memory();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Grad(a) => cmd::grad::run(a),
        Cmd::Sed(a) => sed::run(a),
        Cmd::Separator(a) => separator::run(a),
        Cmd::Synth(a) => synth::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trainer: {e:#}");
            ExitCode::from(2)
        }
    }
}
