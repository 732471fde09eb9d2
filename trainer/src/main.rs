//! The `trainer` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

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
}

fn main() -> ExitCode {
    aural_runtime::malloc::keep_freed_memory();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Grad(a) => cmd::grad::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trainer: {e:#}");
            ExitCode::from(2)
        }
    }
}
