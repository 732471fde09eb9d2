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
use std::path::Path;

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

/// The incremental [`Detector`]: clips of 0.02 s (shorter than a frame), 1.3 s (one window) and
/// 3.5 s (five windows) pushed in blocks of odd sizes, interleaved, their windows sharing
/// batches of 3 across clips, give what an independent computation gives: the whole clip's fbank,
/// each window run alone (batch 1), overlaps averaged at round(s·F/L), weak = the window's own
/// (one window) or attention pooling of the stitch. Bit for bit: the fbank is computed in
/// even-aligned blocks and a window's numbers do not depend on its batch neighbours. The frames
/// `final_scores` reports while the long clip streams equal the finished clip's.
#[test]
fn streaming_detector_equals_whole_clips() {
    use aural_models::ast_sed::{window_starts, Detector};
    use aural_models::sed::{attention_pool, FrameScores, SoftmaxAxis};
    let m = AstSed::load(fixture_path("ast_sed_small"), Device::Cpu).unwrap();
    let au = aural_models::audio::load(fixture_path("ast_sed_clip.wav"), 16000, aural_models::audio::Channels::MixDown).unwrap();
    let clip = |n: usize| -> Vec<f32> { au.channels[0].iter().cycle().take(n).copied().collect() };
    let waves = [clip(56000), clip(320), clip(20800), clip(56000 - 7)];
    let (l, mel, k, f) = (128usize, 48usize, m.config.classes.len(), m.config.frames());
    let opts = DetectOpts { hop_frames: Some(64), batch: 3, keep_fbank: true, ..Default::default() };
    let norm = opts.norm;
    let want: Vec<(Vec<f32>, Vec<f32>, usize)> = waves
        .iter()
        .map(|w| {
            let fo = aural_runtime::ops::fbank::FbankOpts { num_mel_bins: mel, ..Default::default() };
            let fb = if w.len() < 400 {
                Vec::new()
            } else {
                aural_runtime::ops::fbank::fbank(&Tensor::from_vec(w.clone(), &[w.len()]).unwrap(), &fo).unwrap().to_vec().unwrap()
            };
            let n = fb.len() / mel;
            let starts = window_starts(n, l, 64);
            let outs: Vec<_> = starts
                .iter()
                .map(|&s| {
                    let mut x = vec![norm.apply(0.0); l * mel];
                    let rows = n.saturating_sub(s).min(l);
                    for (d, v) in x[..rows * mel].iter_mut().zip(&fb[s * mel..]) {
                        *d = norm.apply(*v);
                    }
                    let o = m.forward(&Tensor::from_vec(x, &[1, l, mel]).unwrap()).unwrap();
                    (o.strong.to_vec().unwrap(), o.att.to_vec().unwrap(), o.weak.to_vec().unwrap())
                })
                .collect();
            if starts.len() == 1 {
                return (outs[0].0.clone(), outs[0].2.clone(), 1);
            }
            let off = |s: usize| ((s * f) as f64 / l as f64).round() as usize;
            let total = off(*starts.last().unwrap()) + f;
            let (mut ss, mut sa, mut cnt) = (vec![0f32; total * k], vec![0f32; total * k], vec![0f32; total]);
            for (w, &s) in starts.iter().enumerate() {
                for t in 0..f {
                    cnt[off(s) + t] += 1.0;
                    for j in 0..k {
                        ss[(off(s) + t) * k + j] += outs[w].0[t * k + j];
                        sa[(off(s) + t) * k + j] += outs[w].1[t * k + j];
                    }
                }
            }
            for i in 0..total * k {
                ss[i] /= cnt[i / k];
                sa[i] /= cnt[i / k];
            }
            let (st, at) = (FrameScores::new(total, k, ss).unwrap(), FrameScores::new(total, k, sa).unwrap());
            let weak = attention_pool(&st, &at, SoftmaxAxis::Time).unwrap();
            (st.data, weak, starts.len())
        })
        .collect();
    assert_eq!(want.iter().map(|w| w.2).collect::<Vec<_>>(), [5, 1, 1, 5]);
    let mut d = Detector::new(&m, opts).unwrap();
    let ids: Vec<u64> = waves.iter().map(|_| d.begin()).collect();
    let mut pos = vec![0usize; waves.len()];
    let mut done = Vec::new();
    let mut seen_final = 0;
    for step in 0.. {
        let i = step % waves.len();
        if pos.iter().zip(&waves).all(|(p, w)| *p > w.len()) {
            break;
        }
        if pos[i] > waves[i].len() {
            continue;
        }
        let take = [1999usize, 4801, 333, 12345][step % 4].min(waves[i].len() - pos[i]);
        d.push(ids[i], &waves[i][pos[i]..pos[i] + take]).unwrap();
        pos[i] += take;
        if pos[i] == waves[i].len() {
            d.end(ids[i]).unwrap();
            pos[i] += 1;
        }
        if let Some(fs) = d.final_scores() {
            assert!(fs.frames >= seen_final || fs.frames == 0);
            if done.is_empty() && fs.frames > 0 {
                assert_eq!(fs.data[..], want[0].0[..fs.frames * k], "final frames of the streaming clip");
                seen_final = fs.frames;
            }
        }
        done.extend(d.take_done().unwrap());
    }
    d.flush().unwrap();
    done.extend(d.take_done().unwrap());
    assert!(seen_final > 0 && seen_final < want[0].0.len() / k, "frames final before the end: {seen_final}");
    assert_eq!(done.iter().map(|x| x.0).collect::<Vec<_>>(), ids);
    for ((_, got), (strong, weak, windows)) in done.iter().zip(&want) {
        assert_eq!(got.windows, *windows);
        assert_eq!(got.strong.data, *strong);
        assert_eq!(got.weak, *weak);
    }
    assert_eq!(done[0].1.fbank_frames, 348);
    assert_eq!(done[1].1.fbank_frames, 0);
    // one clip through detect() (the same Detector) equals the interleaved run
    let one = m.detect(&waves[3], &opts).unwrap();
    assert_eq!(one.strong.data, done[3].1.strong.data);
    assert_eq!(one.fbank.len(), one.fbank_frames * mel);
    let e = m.detect(&[], &opts).unwrap_err().to_string();
    assert!(e.contains("empty audio"), "{e}");
}

/// A copy of the ast_sed_small checkpoint with `edit` applied to its tensors, in a temporary directory
/// that is removed when the returned guard drops (also when the test fails).
fn copy_dir(tag: &str, edit: impl FnOnce(&mut BTreeMap<String, Tensor>)) -> tempfile::TempDir {
    let src = fixture_path("ast_sed_small");
    let tmp = tempfile::Builder::new().prefix(&format!("aural_ast_sed_test_{tag}_")).tempdir().unwrap();
    let dst = tmp.path();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
    let mut t = safetensors_io::load(src.join("model.safetensors")).unwrap();
    edit(&mut t);
    safetensors_io::save(dst.join("model.safetensors"), t.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    tmp
}

fn load_err(dir: &Path) -> String {
    AstSed::load(dir, Device::Cpu).unwrap_err().to_string()
}

#[test]
fn checkpoint_errors_name_the_tensor() {
    let d = copy_dir("missing", |t| {
        t.remove("lgd.gru.weight_hh_l0_reverse");
    });
    let e = load_err(d.path());
    assert!(e.contains("lgd.gru.weight_hh_l0_reverse") && e.contains("[72, 24]") && e.contains("model.safetensors"), "{e}");
    let d = copy_dir("shape", |t| {
        t.insert("fte.blocks.1.mlp.fc1.weight".into(), Tensor::zeros(&[95, 64], aural_runtime::DType::F32, Device::Cpu).unwrap());
    });
    let e = load_err(d.path());
    assert!(e.contains("fte.blocks.1.mlp.fc1.weight") && e.contains("[95, 64]") && e.contains("[96, 64]"), "{e}");
    let d = copy_dir("ast", |t| {
        t.remove("ast.encoder.layer.1.attention.attention.value.bias");
    });
    let e = load_err(d.path());
    assert!(e.contains("encoder.layer.1.attention.attention.value.bias"), "{e}");
    let d = copy_dir("extra", |t| {
        t.insert("head.extra.weight".into(), Tensor::zeros(&[2], aural_runtime::DType::F32, Device::Cpu).unwrap());
    });
    let m = AstSed::load(d.path(), Device::Cpu).unwrap();
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
