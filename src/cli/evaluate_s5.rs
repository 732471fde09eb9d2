//! `aural evaluate-s5`: the DCASE 2025 task 4 (S5) metrics — label prediction accuracy and CA-SDRi,
//! plus a per-class table — of separated sources on disk against the reference dry sources, in the
//! baseline's layout (models::s5::metrics::evaluate_dirs, whose doc lists the rules and how the file
//! matching differs from the baseline's: exact `<name>_<Label>.wav` names instead of a name prefix;
//! a mixture without estimates counts as all-missed with a warning instead of crashing).
//!
//! Prints a table; `--json` writes every number with stable keys (`label_accuracy` in percent,
//! `ca_sdri` in dB, `n_mixtures`, `classes`, `per_class`, `per_mixture`, `warnings`; NaN as null).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use aural::models::s5::metrics::evaluate_dirs;
use aural::models::separator::S5_CLASSES;

/// Warnings printed to stderr before the rest are only counted (the JSON holds them all).
const MAX_PRINTED_WARNINGS: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// The estimated sources, `<name>_<Label>.wav` (what `aural separate` writes); the labels with a
    /// file are the predicted labels.
    #[arg(long, value_name = "DIR")]
    estimates: PathBuf,
    /// The reference dry sources, `<name>_<Label>.wav` (the data set's `oracle_target/`); the labels
    /// with a file are the reference labels.
    #[arg(long, value_name = "DIR")]
    reference: PathBuf,
    /// The mixtures, `<name>.wav` (the data set's `soundscape/`); channel 0 is the SDRi baseline.
    #[arg(long, value_name = "DIR")]
    mixtures: PathBuf,
    /// Write every number as JSON.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let classes: Vec<String> = S5_CLASSES.iter().map(|s| s.to_string()).collect();
    let rep = evaluate_dirs(&a.mixtures, &a.reference, &a.estimates, &classes)?;
    for w in rep.warnings.iter().take(MAX_PRINTED_WARNINGS) {
        eprintln!("warning: {w}");
    }
    if rep.warnings.len() > MAX_PRINTED_WARNINGS {
        let more = rep.warnings.len() - MAX_PRINTED_WARNINGS;
        eprintln!("warning: … and {more} more{}", if a.json.is_some() { " (all in the JSON)" } else { " (--json keeps them all)" });
    }
    eprintln!("evaluated {} mixtures in {:.3} s", rep.n_mixtures, t0.elapsed().as_secs_f64());
    print!("{}", rep.table());
    if let Some(j) = &a.json {
        super::write_atomic(j, serde_json::to_string_pretty(&rep)?.as_bytes())?;
    }
    Ok(())
}
