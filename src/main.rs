//! The `aural` command-line interface.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "aural", version, about = "aural: a fast inference core for audio deep learning (CPU and CUDA).")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Report the CUDA driver, GPUs, NVRTC, the kernel cache, and which device `auto` picks.
    ///
    /// Examples:
    ///   aural doctor
    ///   aural doctor --device cuda      # exits 2 with one line when no GPU is usable
    ///   aural doctor --compile          # compile every kernel with NVRTC now
    Doctor(cli::doctor::Args),
    /// Measure op throughput (GFLOP/s or GB/s) per op, device and kernel version.
    ///
    /// Examples:
    ///   aural bench
    ///   aural bench --op matmul --json > run.json
    Bench(cli::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Doctor(a) => cli::doctor::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aural: {e:#}");
            ExitCode::from(2)
        }
    }
}
