use clap::Parser;

/// aural's trainer. Subcommands (`sed`, `separator`, `synth`, `eval`, `grad`) land with their issues.
#[derive(Parser)]
#[command(name = "trainer", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _ = Cli::parse();
    eprintln!("trainer: no subcommands yet (see `trainer --help`)");
    Ok(())
}
