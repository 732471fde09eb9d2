//! The trainer's TOML configurations (`trainer sed`, `trainer separator`): parsed and validated
//! (validation reads no file).
#![no_main]

use std::path::Path;

use aural_trainer::config::{SedTrainConfig, SepTrainConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (p, base) = (Path::new("fuzz.toml"), Path::new("/nonexistent"));
    let _ = SedTrainConfig::from_text(text, p, base);
    let _ = SepTrainConfig::from_text(text, p, base);
});
