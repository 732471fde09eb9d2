//! `config.json` of every model kind: AST, AST-SED / AST-GRU, M2D, the separator. Each parsed and,
//! when that succeeds, validated; what the loaders derive from a valid config is computed too.
#![no_main]

use aural_models::ast::AstConfig;
use aural_models::ast_sed::SedConfig;
use aural_models::m2d::M2dConfig;
use aural_models::separator::SeparatorConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = AstConfig::from_json(text) {
        if c.validate().is_ok() {
            let _ = (c.seq_len(), c.head_dim());
        }
    }
    if let Ok(c) = SedConfig::from_json(text) {
        if c.validate().is_ok() {
            let _ = (c.frames(), c.geometry(), c.post_process());
        }
    }
    if let Ok(c) = M2dConfig::from_json(text) {
        if c.validate().is_ok() {
            let _ = (c.freq_patches(), c.time_patches());
        }
    }
    if let Ok(c) = serde_json::from_str::<SeparatorConfig>(text) {
        if c.validate().is_ok() {
            let _ = (c.freq_bins(), c.net_input_channels(), c.needs_sed());
        }
    }
});
