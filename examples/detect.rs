//! Sound event detection from Rust: the builtin demo model (or a checkpoint directory) on a WAV.
//!
//! ```sh
//! cargo run --release --example detect -- assets/demo/clips/syn_00000.wav [MODEL_DIR]
//! ```

use aural::models::ast_sed::{AstSed, DetectOpts};
use aural::models::audio::{self, Channels};
use aural::models::sed::events_to_tsv;
use aural::Device;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wav = args.first().map(String::as_str).unwrap_or("assets/demo/clips/syn_00000.wav");
    let (device, why) = Device::auto();
    eprintln!("device: {device} ({why})");
    let model = match args.get(1) {
        Some(dir) => AstSed::load(dir, device)?,
        None => aural::demo::load(device)?,
    };
    // mono at the model's rate (mixed down and resampled as needed)
    let audio = audio::load(wav, model.config.sample_rate, Channels::MixDown)?;
    let scores = model.detect(audio.mono(), &DetectOpts::default())?;
    // the checkpoint's median filters and thresholds, events clipped to the audio
    let mut post = model.config.post_process()?;
    post.clip_duration = Some(audio.num_samples() as f64 / audio.sample_rate as f64);
    let name = std::path::Path::new(wav).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let events = post.events(&name, &scores.strong)?;
    print!("{}", events_to_tsv(&events));
    for (class, p) in model.config.classes.iter().zip(&scores.weak) {
        eprintln!("{class:>14}: clip probability {p:.3}");
    }
    Ok(())
}
