//! One module per subcommand.
pub mod bench;
pub mod detect;
pub mod doctor;
pub mod embed;
pub mod evaluate;
pub mod features;
pub mod plot;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use aural::runtime::Device;

/// The file stem of every input: several inputs written to one file are told apart by it
/// (`<stem>/<tensor>`). Two inputs with one stem are refused here, before any file is read, naming
/// both paths; `what` names the tensors for that message.
pub fn input_stems(inputs: &[PathBuf], what: &str) -> Result<Vec<String>> {
    let mut stems: Vec<String> = Vec::new();
    for p in inputs {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(i) = stems.iter().position(|s| *s == stem).filter(|_| inputs.len() > 1) {
            bail!("{} and {} share the file stem '{stem}': both would be written as '{stem}/{what}'", inputs[i].display(), p.display());
        }
        stems.push(stem);
    }
    Ok(stems)
}

/// Resolves `--device auto|cpu|cuda[:N]|emu`, checking that the device is usable now. Prints the
/// reason for the choice to stderr.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let (dev, why) = Device::parse(spec)?;
    dev.check().map_err(|e| anyhow!("{dev} is not usable: {e}"))?;
    eprintln!("device: {dev} ({why})");
    Ok(dev)
}
