//! `aural separate` end to end on the small DCASE-baseline fixture model (tests/golden/separator.py):
//! a 4-channel WAV of the fixture's mixture gives `<stem>_<Label>.wav` equal to PyTorch's separated
//! waveform (SNR ≥ 80 dB); a mono file is refused with one sentence; a clip longer than `--chunk`
//! runs in crossfaded chunks and keeps its length; bad labels and a missing query are errors.

use std::path::Path;
use std::process::Command;

use aural::models::audio;
use aural::runtime::testing::{fixture, fixture_path};

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-separate-{tag}-")).tempdir().unwrap()
}

/// `aural separate --model MODEL INPUT --out OUT --device cpu` plus `extra` arguments.
fn separate(model: &Path, input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["separate", "--model", model.to_str().unwrap(), input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"];
    args.extend(extra);
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

fn snr_db(got: &[f32], want: &[f32]) -> f64 {
    let s: f64 = want.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    10.0 * (s / n.max(1e-300)).log10()
}

/// Item 0 of the fixture mixture as a 4-channel float WAV; returns its length.
fn write_mixture(path: &Path) -> usize {
    let io = fixture("separator/resunet_n1024_io.safetensors");
    let m = io["mixture"].to_vec().unwrap();
    let len = io["mixture"].shape()[2];
    let chans: Vec<&[f32]> = (0..4).map(|c| &m[c * len..][..len]).collect();
    audio::write_wav(path, 32000, &chans).unwrap();
    len
}

#[test]
fn separates_like_pytorch_and_refuses_mono() {
    let tmp = tmpdir("golden");
    let d = tmp.path();
    let mix = d.join("mix.wav");
    let len = write_mixture(&mix);
    let model = fixture_path("separator/resunet_n1024");
    let out = d.join("out");
    // The fixture's item 0 is labelled with class 5 (Cough).
    let o = separate(&model, &mix, &out, &["--label", "Cough", "--label", "Speech"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = audio::read_wav(out.join("mix_Cough.wav")).unwrap();
    assert_eq!((got.sample_rate, got.channels.len(), got.num_samples()), (32000, 1, len));
    let io = fixture("separator/resunet_n1024_io.safetensors");
    let want = io["waveform"].to_vec().unwrap();
    let snr = snr_db(&got.channels[0], &want[..len]);
    assert!(snr >= 80.0, "SNR {snr:.1} dB vs PyTorch");
    assert!(out.join("mix_Speech.wav").exists());

    let mono = d.join("mono.wav");
    audio::write_wav(&mono, 32000, &[&got.channels[0]]).unwrap();
    let o = separate(&model, &mono, &out, &["--label", "Cough"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("mono.wav") && err.contains("1 channel(s)") && err.contains("4-channel"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let o = separate(&model, &mix, &out, &["--label", "Caugh"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("Caugh") && err.contains("Cough"), "{err}");
}

#[test]
fn long_clips_run_in_chunks() {
    let tmp = tmpdir("chunks");
    let d = tmp.path();
    let mix = d.join("long.wav");
    let len = write_mixture(&mix);
    let model = fixture_path("separator/resunet_n1024");
    let (one, many) = (d.join("one"), d.join("many"));
    let args = |out: &Path, chunk: &str| separate(&model, &mix, out, &["--label", "Cough", "--chunk", chunk, "--overlap", "0.05"]);
    assert!(args(&one, "10").status.success());
    let o = args(&many, "0.12");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = audio::read_wav(one.join("long_Cough.wav")).unwrap();
    let b = audio::read_wav(many.join("long_Cough.wav")).unwrap();
    assert_eq!(b.num_samples(), len);
    assert!(b.channels[0].iter().all(|v| v.is_finite()));
    // Chunks see less context than the whole clip, but the output must stay the same signal.
    let snr = snr_db(&b.channels[0], &a.channels[0]);
    assert!(snr > 10.0, "chunked vs whole: {snr:.1} dB");
}
