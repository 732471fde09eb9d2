//! One module per subcommand.
pub mod bench;
pub mod detect;
pub mod doctor;
pub mod embed;
pub mod evaluate;
pub mod evaluate_s5;
pub mod features;
pub mod input;
pub mod plot;
pub mod s5;
pub mod separate;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
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

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a failed
/// run leaves no half-written output (the TSV, JSON and score tables of detect and evaluate).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).and_then(|_| f.flush()).with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
