//! Plot support shared by the CLI's plots and the trainer's curves: a TrueType font for plotters'
//! pure-Rust glyph renderer (`ab_glyph`), found at run time (`AURAL_FONT`, else DejaVu Sans /
//! Liberation Sans / FreeSans in the usual system folders), so the build needs no fontconfig or
//! freetype.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name fonts are registered under.
pub const FONT: &str = "sans-serif";

/// Registers a system TTF with plotters once; false when none was found (a warning says so, and
/// plots are drawn without text).
pub fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("AURAL_FONT").into_iter().collect();
        for dir in [
            "/usr/share/fonts/truetype",
            "/usr/share/fonts/TTF",
            "/usr/share/fonts",
            "/usr/local/share/fonts",
            "/Library/Fonts",
            "/System/Library/Fonts/Supplemental",
        ] {
            for f in [
                "dejavu/DejaVuSans.ttf",
                "DejaVuSans.ttf",
                "liberation/LiberationSans-Regular.ttf",
                "LiberationSans-Regular.ttf",
                "freefont/FreeSans.ttf",
                "Arial.ttf",
            ] {
                candidates.push(format!("{dir}/{f}"));
            }
        }
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!("warning: no TrueType font found (set AURAL_FONT=/path/to/font.ttf): plots are drawn without text");
        false
    })
}
