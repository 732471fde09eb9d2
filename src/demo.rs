//! The demo model, compiled into the library: a small AST-SED (4 blocks of 128, 1.2 M parameters)
//! trained from scratch by `trainer sed` on `trainer synth --builtin` soundscapes, detecting the ten
//! builtin classes (beep, chirp, siren, knock, bell, whistle, click_train, noise_burst, buzz,
//! babble). Its files are `assets/demo/model/` (config.json with the thresholds and median filters
//! tuned on a validation set, model.safetensors); `scripts/train_demo.sh` retrains it from scratch and
//! `assets/demo/README.md` has its numbers on a held-out set. `aural detect` runs it when no `--model`
//! is given.
//!
//! ```no_run
//! let model = aural::demo::load(aural::Device::Cpu).unwrap();
//! let wave = vec![0f32; 16000 * 10];
//! let scores = model.detect(&wave, &Default::default()).unwrap();
//! ```

use std::path::Path;

use crate::models::ast_sed::{AstSed, SedConfig};
use crate::runtime::{safetensors_io, Device};

/// The demo model's config.json.
pub const CONFIG_JSON: &str = include_str!("../assets/demo/model/config.json");
/// The demo model's model.safetensors.
pub const WEIGHTS: &[u8] = include_bytes!("../assets/demo/model/model.safetensors");
/// How messages name it.
pub const NAME: &str = "the builtin demo model (assets/demo/model)";

/// The demo model on `device`.
pub fn load(device: Device) -> anyhow::Result<AstSed> {
    let config = SedConfig::from_json(CONFIG_JSON)?;
    let tensors = safetensors_io::load_bytes(WEIGHTS)?;
    Ok(AstSed::from_tensors(config, tensors, Path::new(NAME), device)?)
}

/// The demo model's classes, in output order.
pub fn classes() -> Vec<String> {
    SedConfig::from_json(CONFIG_JSON).map(|c| c.classes).unwrap_or_default()
}
