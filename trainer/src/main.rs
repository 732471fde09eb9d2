//! The `trainer` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

use aural_trainer::sed;

/// aural's trainer.
#[derive(Parser)]
#[command(name = "trainer", version, about = "aural's trainer: gradients and fine-tuning of the AST-SED models.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Loss and the gradient of every parameter of an AST-SED / AST-GRU checkpoint on one batch.
    ///
    /// loss = BCE(strong, targets `strong`) + 0.5·BCE(weak, targets `weak`) (means over all
    /// elements). Writes `loss` and one tensor per parameter under its checkpoint name — compare
    /// them with `torch.autograd` on your PyTorch model.
    ///
    /// Inputs: `--input` holds `input_values` (batch × frames × mel, as `aural features --ast`
    /// writes one clip; stack clips for a batch); `--targets` holds `strong` (batch × T′·upsample ×
    /// classes) and `weak` (batch × classes).
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
}

fn main() -> ExitCode {
    aural_runtime::malloc::keep_all_freed_memory();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Grad(a) => cmd::grad::run(a),
        Cmd::Sed(a) => sed::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trainer: {e:#}");
            ExitCode::from(2)
        }
    }
}
