//! AST-SED and AST-GRU vs the PyTorch reference in `tests/golden/ast_sed.py` (HF ASTModel +
//! torch.nn.MultiheadAttention + torch.nn.GRU with random weights, saved under the checkpoint names),
//! through the user's path: `AstSed::load(dir)` on the committed checkpoint directories.
//!
//! - ast_sed_small / ast_gru_small (AST 64 wide, 3 blocks of which 2 used, 48 mel × 128 frames →
//!   F′ 4 × T′ 12, FTE 2 blocks × 4 heads, ×3 upsampling, BiGRU 24, 5 classes), batch 2: the patch
//!   grid, the frame embeddings, strong (2, 36, 5) and weak (2, 5) within 1e-4; the same on the
//!   emulator (and a GPU when present) against the CPU.
//! - ast_sed_clip.wav through `AstSed::detect` (fbank, padding, normalisation) vs torchaudio's fbank
//!   + the reference model.
//! - Checkpoint errors: a missing and a mis-shaped tensor are named with both shapes; an unknown
//!   tensor is listed in `unexpected`, the checkpoint's unused AST block 2 is not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aural_models::ast_sed::{AstSed, DetectOpts, SedConfig};
use aural_runtime::testing::{assert_close, fixture, fixture_path, gpu_devices};
use aural_runtime::{safetensors_io, Device, Tensor};

fn io() -> BTreeMap<String, Tensor> {
    fixture("ast_sed_small_io.safetensors")
}

fn check_model(dir: &str, key: &str, dev: Device) {
    let io = io();
    let m = AstSed::load(fixture_path(dir), dev).unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert!(m.unexpected.is_empty(), "{dir}: unexpected {:?}", m.unexpected);
    let x = io[&format!("{key}/input_values")].to_device(dev).unwrap();
    let po = m.pte(&x).unwrap();
    let want = |n: &str| io[&format!("{key}/{n}")].to_vec().unwrap();
    assert_eq!(po.shape(), io[&format!("{key}/po")].shape());
    assert_close(&format!("{dev} {key} po"), &po.to_vec().unwrap(), &want("po"), 1e-4, 1e-4);
    let e = m.frame_embeddings(&po).unwrap();
    assert_close(&format!("{dev} {key} fte"), &e.to_vec().unwrap(), &want("fte"), 1e-4, 1e-4);
    let out = m.forward(&x).unwrap();
    assert_eq!(out.strong.shape(), &[2, 36, 5]);
    assert_eq!(out.weak.shape(), &[2, 5]);
    assert_close(&format!("{dev} {key} strong"), &out.strong.to_vec().unwrap(), &want("strong"), 1e-4, 1e-4);
    assert_close(&format!("{dev} {key} weak"), &out.weak.to_vec().unwrap(), &want("weak"), 1e-4, 1e-4);
}

#[test]
fn ast_sed_matches_pytorch() {
    check_model("ast_sed_small", "ast_sed", Device::Cpu);
}

#[test]
fn ast_gru_matches_pytorch() {
    check_model("ast_gru_small", "ast_gru", Device::Cpu);
}

#[test]
fn kernels_match_pytorch() {
    for dev in gpu_devices() {
        check_model("ast_sed_small", "ast_sed", dev);
        check_model("ast_gru_small", "ast_gru", dev);
    }
}

#[test]
fn clip_through_fbank_matches_torchaudio_pipeline() {
    let io = io();
    let m = AstSed::load(fixture_path("ast_sed_small"), Device::Cpu).unwrap();
    let au = aural_models::audio::load(fixture_path("ast_sed_clip.wav"), 16000, aural_models::audio::Channels::MixDown).unwrap();
    let sc = m.detect(&au.channels[0], &DetectOpts::default()).unwrap();
    assert_eq!(sc.windows, 1);
    assert_eq!((sc.strong.frames, sc.strong.classes), (36, 5));
    assert_eq!(sc.fbank_frames, 98);
    assert_close("clip strong", &sc.strong.data, &io["clip/strong"].to_vec().unwrap(), 2e-4, 2e-4);
    assert_close("clip weak", &sc.weak, &io["clip/weak"].to_vec().unwrap(), 2e-4, 2e-4);
}

/// A long clip: windows are stitched at the model's frame rate, a clip that repeats the same
/// window content gives the same frames in every copy, and weak = attention pooling of the stitch.
#[test]
fn long_clips_are_windowed_and_stitched() {
    let m = AstSed::load(fixture_path("ast_sed_small"), Device::Cpu).unwrap();
    let au = aural_models::audio::load(fixture_path("ast_sed_clip.wav"), 16000, aural_models::audio::Channels::MixDown).unwrap();
    // 3.5 s of audio → 348 fbank frames; window 128, hop 64 → starts 0, 64, 128, 192, 220.
    let mut wave = Vec::new();
    while wave.len() < 56000 {
        wave.extend_from_slice(&au.channels[0]);
    }
    wave.truncate(56000);
    let sc = m.detect(&wave, &DetectOpts { hop_frames: Some(64), batch: 3, ..Default::default() }).unwrap();
    assert_eq!(sc.fbank_frames, 348);
    assert_eq!(sc.windows, 5);
    // F = 36 output frames per 128 fbank frames; last window at 220 → offset round(220·36/128) = 62.
    assert_eq!(sc.strong.frames, 62 + 36);
    // Frames covered by the first window only equal that window's own output.
    let first = {
        let fo = aural_runtime::ops::fbank::FbankOpts { num_mel_bins: 48, ..Default::default() };
        let fb = aural_runtime::ops::fbank::fbank(&Tensor::from_vec(wave.clone(), &[wave.len()]).unwrap(), &fo).unwrap().to_vec().unwrap();
        let norm = aural_runtime::ops::fbank::AstNorm::AUDIOSET;
        let x: Vec<f32> = fb[..128 * 48].iter().map(|&v| norm.apply(v)).collect();
        m.forward(&Tensor::from_vec(x, &[1, 128, 48]).unwrap()).unwrap().strong.to_vec().unwrap()
    };
    assert_close("first window frames", &sc.strong.data[..18 * 5], &first[..18 * 5], 1e-6, 1e-6);
    assert!(sc.weak.iter().all(|&w| (0.0..=1.0).contains(&w)));
    assert!(sc.strong.data.iter().all(|&w| (0.0..=1.0).contains(&w)));
}

fn copy_dir(tag: &str, edit: impl FnOnce(&mut BTreeMap<String, Tensor>)) -> PathBuf {
    let src = fixture_path("ast_sed_small");
    let dst = std::env::temp_dir().join(format!("aural_ast_sed_test_{}_{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
    let mut t = safetensors_io::load(src.join("model.safetensors")).unwrap();
    edit(&mut t);
    safetensors_io::save(dst.join("model.safetensors"), t.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    dst
}

fn load_err(dir: &Path) -> String {
    let e = AstSed::load(dir, Device::Cpu).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(dir);
    e
}

#[test]
fn checkpoint_errors_name_the_tensor() {
    let d = copy_dir("missing", |t| {
        t.remove("lgd.gru.weight_hh_l0_reverse");
    });
    let e = load_err(&d);
    assert!(e.contains("lgd.gru.weight_hh_l0_reverse") && e.contains("[72, 24]") && e.contains("model.safetensors"), "{e}");
    let d = copy_dir("shape", |t| {
        t.insert("fte.blocks.1.mlp.fc1.weight".into(), Tensor::zeros(&[95, 64], aural_runtime::DType::F32, Device::Cpu).unwrap());
    });
    let e = load_err(&d);
    assert!(e.contains("fte.blocks.1.mlp.fc1.weight") && e.contains("[95, 64]") && e.contains("[96, 64]"), "{e}");
    let d = copy_dir("ast", |t| {
        t.remove("ast.encoder.layer.1.attention.attention.value.bias");
    });
    let e = load_err(&d);
    assert!(e.contains("encoder.layer.1.attention.attention.value.bias"), "{e}");
    let d = copy_dir("extra", |t| {
        t.insert("head.extra.weight".into(), Tensor::zeros(&[2], aural_runtime::DType::F32, Device::Cpu).unwrap());
    });
    let m = AstSed::load(&d, Device::Cpu).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    assert_eq!(m.unexpected, vec!["head.extra.weight".to_string()]);
}

#[test]
fn config_of_the_fixture() {
    let c = SedConfig::from_file(fixture_path("ast_sed_small/config.json")).unwrap();
    assert_eq!(c.grid(), (4, 12));
    assert_eq!(c.frames(), 36);
    let p = c.post_process().unwrap();
    assert_eq!(p.median_windows, vec![3, 5, 7, 1, 9]);
    assert_eq!(p.thresholds, vec![0.5, 0.4, 0.6, 0.45, 0.55]);
    // 128 fbank frames of 10 ms over 36 output frames.
    assert!((p.geometry.hop_s - 1.28 / 36.0).abs() < 1e-12);
}
