//! One module per subcommand.
pub mod bench;
pub mod detect;
pub mod doctor;
pub mod embed;
pub mod features;
pub mod plot;

use anyhow::{anyhow, Result};
use aural::runtime::Device;

/// Resolves `--device auto|cpu|cuda[:N]|emu`, checking that the device is usable now. Prints the
/// reason for the choice to stderr.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let (dev, why) = Device::parse(spec)?;
    dev.check().map_err(|e| anyhow!("{dev} is not usable: {e}"))?;
    eprintln!("device: {dev} ({why})");
    Ok(dev)
}
