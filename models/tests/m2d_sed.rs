//! CP-JKU's stage-2 SED model (M2D at 16 kHz + strong attention head) vs the PyTorch reference of
//! tests/golden/m2d_sed.py: strong logits within 1e-4 at 4, 10, 13 and 50 s (upsampled, two units,
//! pooled), weak probabilities, the 13 hidden-state layout (here 3: patch embedding + 2 blocks) and the
//! resampler against `torchaudio.functional.resample(x, a, b, resampling_method="sinc_interp_kaiser")`;
//! the model on the emulator (and a real GPU) vs the CPU; loader errors.

use aural_models::audio::resample_kaiser;
use aural_models::m2d::{M2dSed, M2dTagger};
use aural_runtime::ops::shape::{concat, slice};
use aural_runtime::testing::{assert_close, fixture, fixture_path};
use aural_runtime::{Device, Tensor};

/// The 2-channel mixture the script feeds (channel 1 = half of channel 0: must be ignored).
fn mixture(w: &Tensor) -> Tensor {
    let half = aural_runtime::ops::unary::affine(w, 0.5, 0.0).unwrap();
    let n = w.shape()[1];
    concat(&[&w.reshape(&[1, 1, n]).unwrap(), &half.reshape(&[1, 1, n]).unwrap()], 1).unwrap()
}

#[test]
fn resampler_matches_torchaudio_kaiser() {
    let io = fixture("m2d_sed_small_io.safetensors");
    let x = io["rs_input"].to_vec().unwrap();
    for (a, b) in [(44100, 16000), (32000, 16000), (16000, 32000), (22050, 16000)] {
        let got = resample_kaiser(&x, a, b);
        // In f64 both sides compute the same sums: the difference is the final rounding to f32.
        let want64 = io[&format!("rs64_{a}_{b}")].to_vec().unwrap();
        assert_eq!(got.len(), want64.len(), "{a} → {b}");
        assert_close(&format!("resample {a} → {b} vs torchaudio f64"), &got, &want64, 1e-7, 1e-6);
        // torchaudio on f32 input builds its kernel in f32 too (up to 2w + o = 475 taps at 44.1 → 16
        // kHz, each ~1e-7 relative off): within 1e-5 of a 0.55 peak.
        let want = io[&format!("rs_{a}_{b}")].to_vec().unwrap();
        assert_close(&format!("resample {a} → {b} vs torchaudio f32"), &got, &want, 1e-5, 1e-5);
    }
    assert_eq!(resample_kaiser(&x, 16000, 16000), x);
    assert!(resample_kaiser(&[], 32000, 16000).is_empty());
}

#[test]
fn strong_logits_weak_and_hidden_states_match_pytorch() {
    let io = fixture("m2d_sed_small_io.safetensors");
    let waves = fixture("m2d_small_io.safetensors");
    let model = M2dSed::load(fixture_path("m2d_sed_small"), Device::Cpu).unwrap();
    assert!(model.unexpected.is_empty(), "{:?}", model.unexpected);
    let w10 = &waves["wave_10s"];
    let head = slice(&model.input(&mixture(w10)).unwrap(), 1, 0, 4000).unwrap();
    assert_close("16 kHz input", &head.to_vec().unwrap(), &io["resampled_10s_head"].to_vec().unwrap(), 2e-6, 1e-5);
    let out = model.forward(&mixture(w10)).unwrap();
    assert_close("strong logits 10 s", &out.strong_logits.to_vec().unwrap(), &io["strong_logits_10s"].to_vec().unwrap(), 1e-4, 1e-4);
    assert_close("weak 10 s", &out.weak[0], &io["weak_10s"].to_vec().unwrap(), 1e-5, 1e-4);
    assert_eq!(out.hidden_states.shape(), [1, 3, 310, 64]);
    assert_close("hidden states 10 s", &out.hidden_states.to_vec().unwrap(), &io["hidden_10s"].to_vec().unwrap(), 1e-4, 1e-4);
    let w4 = &waves["wave_4s"];
    let out = model.forward(&mixture(w4)).unwrap();
    assert_close("strong logits 4 s", &out.strong_logits.to_vec().unwrap(), &io["strong_logits_4s"].to_vec().unwrap(), 1e-4, 1e-4);
    let w13 = concat(&[w10, &slice(w10, 1, 0, 96000).unwrap()], 1).unwrap();
    let out = model.forward(&mixture(&w13)).unwrap();
    assert_close("strong logits 13 s", &out.strong_logits.to_vec().unwrap(), &io["strong_logits_13s"].to_vec().unwrap(), 1e-4, 1e-4);
    assert_eq!(out.hidden_states.shape(), [1, 3, 405, 64]);
    let tail = slice(&out.hidden_states, 2, 395, 10).unwrap();
    assert_close("hidden states 13 s tail", &tail.to_vec().unwrap(), &io["hidden_13s_tail"].to_vec().unwrap(), 1e-4, 1e-4);
    let w50 = concat(&[w10, w10, w10, w10, w10], 1).unwrap();
    let out = model.forward(&mixture(&w50)).unwrap();
    assert_close("strong logits 50 s", &out.strong_logits.to_vec().unwrap(), &io["strong_logits_50s"].to_vec().unwrap(), 1e-4, 1e-4);
}

#[test]
fn runs_on_gpu_devices_like_the_cpu() {
    let waves = fixture("m2d_small_io.safetensors");
    let m = mixture(&slice(&waves["wave_4s"], 1, 0, 64000).unwrap());
    let want = M2dSed::load(fixture_path("m2d_sed_small"), Device::Cpu).unwrap().forward(&m).unwrap();
    for dev in aural_runtime::testing::gpu_devices() {
        let got = M2dSed::load(fixture_path("m2d_sed_small"), dev).unwrap().forward(&m.to_device(dev).unwrap()).unwrap();
        assert_close(&format!("{dev} strong logits"), &got.strong_logits.to_vec().unwrap(), &want.strong_logits.to_vec().unwrap(), 1e-4, 1e-4);
        assert_close(&format!("{dev} hidden"), &got.hidden_states.to_vec().unwrap(), &want.hidden_states.to_vec().unwrap(), 1e-4, 1e-4);
    }
}

#[test]
fn loaders_tell_the_two_m2d_models_apart_and_name_bad_tensors() {
    let e = M2dTagger::load(fixture_path("m2d_sed_small"), Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("m2d_sed"), "{e}");
    let e = M2dSed::load(fixture_path("m2d_small"), Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("m2d_sed"), "{e}");
    let dir = fixture_path("m2d_sed_small");
    let (mut tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(&dir).unwrap();
    let config = aural_models::m2d::M2dConfig::from_file(dir.join("config.json")).unwrap();
    tensors.remove("strong_head.bias");
    let e = M2dSed::from_tensors(config.clone(), &tensors, &st, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("strong_head.bias"), "{e}");
    tensors.insert("weak_head.weight".into(), Tensor::zeros(&[18, 10], aural_runtime::DType::F32, Device::Cpu).unwrap());
    tensors.insert("strong_head.bias".into(), Tensor::zeros(&[18], aural_runtime::DType::F32, Device::Cpu).unwrap());
    let e = M2dSed::from_tensors(config, &tensors, &st, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("weak_head.weight") && e.contains("[18, 10]"), "{e}");
    // m2d_sed defaults: a config with only the architecture is the 16 kHz CP-JKU front end.
    let c = aural_models::m2d::M2dConfig::from_json(r#"{"architecture": "m2d_sed"}"#).unwrap();
    assert_eq!((c.sample_rate, c.n_fft, c.hop_length, c.f_max, c.input_sample_rate, c.seq_len), (16000, 400, 160, 8000.0, Some(32000), 250));
    let short = Tensor::zeros(&[1, 1, 100], aural_runtime::DType::F32, Device::Cpu).unwrap();
    let m = M2dSed::load(&dir, Device::Cpu).unwrap();
    assert!(m.forward(&short).unwrap_err().to_string().contains("too short"));
}
