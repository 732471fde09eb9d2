//! The CP-JKU separator (time-FiLM, hidden-state injection, DPRNN, iterative refinement) vs the
//! PyTorch reference of tests/golden/cpjku.py (random weights, small widths; see that script for the
//! exact formulas): the bottleneck intermediates within 1e-4 and the separated waveform (and the
//! iterative model's first pass) within SNR ≥ 80 dB of PyTorch's, f32 CPU; the whole model through
//! the CUDA kernels under the emulator (and a real GPU when present) vs the CPU; the errors when a
//! condition the config needs is missing.
//! For instance the additive time-FiLM in the reference is
//! `leaky_relu(bn1(x) + beta1 + F.interpolate(beta_t, size=(x.shape[2], 1), mode='bilinear', align_corners=False), 0.01)`.

use std::collections::BTreeMap;

use aural_models::separator::{Conditions, ResUNet};
use aural_runtime::ops::shape::slice;
use aural_runtime::testing::{assert_close, fixture, fixture_path};
use aural_runtime::{Device, Tensor};

fn snr_db(got: &[f32], want: &[f32]) -> f64 {
    let s: f64 = want.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    10.0 * (s / n.max(1e-300)).log10()
}

/// Per item: exact zeros where the reference is silent, else SNR ≥ 80 dB; returns the worst SNR.
fn check_waves(what: &str, got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    let per = g.len() / got.shape()[0];
    let mut worst = f64::INFINITY;
    for (i, (g, w)) in g.chunks(per).zip(w.chunks(per)).enumerate() {
        if w.iter().all(|&v| v == 0.0) {
            assert!(g.iter().all(|&v| v == 0.0), "{what} item {i}: a silent query must give zeros");
            continue;
        }
        let snr = snr_db(g, w);
        assert!(snr >= 80.0, "{what} item {i}: SNR {snr:.1} dB vs PyTorch");
        worst = worst.min(snr);
    }
    worst
}

fn conditions<'a>(io: &'a BTreeMap<String, Tensor>) -> Conditions<'a> {
    Conditions { strong_logits: io.get("strong_logits"), embeddings: io.get("embeddings"), iterations: None }
}

fn check_case(name: &str) -> f64 {
    let dir = fixture_path(&format!("cpjku/{name}"));
    let io = fixture(&format!("cpjku/{name}_io.safetensors"));
    let model = ResUNet::load(&dir, Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(model.unexpected.is_empty(), "{name}: unexpected tensors {:?}", model.unexpected);
    let mut seen: BTreeMap<String, Tensor> = BTreeMap::new();
    let y = model
        .forward_with(&io["mixture"], &io["label_vector"], &conditions(&io), &mut |k, t| {
            seen.entry(k.to_string()).or_insert(t.clone());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for k in ["center", "merged", "dprnn"] {
        let Some(want) = io.get(k) else { continue };
        let got = slice(&seen[k], 0, 0, 1).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name} {k}");
        assert_close(&format!("{name} {k}"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-4, 1e-4);
    }
    if let Some(want) = io.get("pass1") {
        check_waves(&format!("{name} pass 1"), &seen["pass1"], want);
    }
    let worst = check_waves(&format!("{name} waveform"), &y, &io["waveform"]);
    println!("{name}: waveform SNR ≥ {worst:.1} dB vs PyTorch");
    worst
}

#[test]
fn time_film_matches_pytorch() {
    check_case("tfilm");
}

#[test]
fn time_film_and_injection_match_pytorch() {
    check_case("tfilm_inject");
}

#[test]
fn iterative_model_with_dprnn_matches_pytorch() {
    check_case("iter_dprnn");
}

#[test]
fn multiplicative_time_film_concat_injection_and_dprnn_first_match_pytorch() {
    check_case("mult_concat");
}

#[test]
fn passes_can_be_overridden_and_the_first_pass_is_the_one_pass_model() {
    let dir = fixture_path("cpjku/iter_dprnn");
    let io = fixture("cpjku/iter_dprnn_io.safetensors");
    let model = ResUNet::load(&dir, Device::Cpu).unwrap();
    let one = Conditions { iterations: Some(1), ..conditions(&io) };
    let y = model.forward_with(&io["mixture"], &io["label_vector"], &one, &mut |_, _| Ok(())).unwrap();
    check_waves("iter_dprnn, 1 pass", &y, &io["pass1"]);
    let zero = Conditions { iterations: Some(0), ..conditions(&io) };
    let e = model.forward_with(&io["mixture"], &io["label_vector"], &zero, &mut |_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("at least 1 pass"), "{e}");
}

#[test]
fn missing_conditions_are_clear_errors() {
    let io = fixture("cpjku/tfilm_inject_io.safetensors");
    let model = ResUNet::load(fixture_path("cpjku/tfilm_inject"), Device::Cpu).unwrap();
    let e = model.forward(&io["mixture"], &io["label_vector"]).unwrap_err().to_string();
    assert!(e.contains("strong logits"), "{e}");
    let only_logits = Conditions { strong_logits: io.get("strong_logits"), ..Default::default() };
    let e = model.forward_with(&io["mixture"], &io["label_vector"], &only_logits, &mut |_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("embeddings"), "{e}");
    // Mis-shaped conditions name both shapes.
    let bad = Tensor::zeros(&[2, 17, 25], aural_runtime::DType::F32, Device::Cpu).unwrap();
    let c = Conditions { strong_logits: Some(&bad), ..conditions(&io) };
    let e = model.forward_with(&io["mixture"], &io["label_vector"], &c, &mut |_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("17 classes"), "{e}");
    let bad = Tensor::zeros(&[2, 4, 11, 16], aural_runtime::DType::F32, Device::Cpu).unwrap();
    let c = Conditions { embeddings: Some(&bad), ..conditions(&io) };
    let e = model.forward_with(&io["mixture"], &io["label_vector"], &c, &mut |_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("12 tokens") && e.contains("[2, 4, 11, 16]"), "{e}");
}

#[test]
fn a_missing_extension_tensor_is_named() {
    let dir = fixture_path("cpjku/iter_dprnn");
    let (mut tensors, st) = aural_runtime::safetensors_io::load_checkpoint_dir(&dir).unwrap();
    let config = aural_models::separator::SeparatorConfig::from_file(dir.join("config.json")).unwrap();
    for name in ["base.ss_model.DPRNN.0.col_rnn.1.rnn.weight_hh_l1_reverse", "base.ss_model.bn0_fb.running_var", "time_embedding.3.weight", "soundbeam_weights"]
    {
        let t = tensors.remove(name).unwrap();
        let e = ResUNet::from_tensors(config.clone(), &tensors, &st, Device::Cpu).unwrap_err().to_string();
        assert!(e.contains(name), "{name}: {e}");
        tensors.insert(name.to_string(), t);
    }
}

/// Every op of the CP-JKU model through the CUDA kernels under the emulator (and a real GPU when
/// present) vs the CPU: time-FiLM in the conv kernels, resize, GroupNorm, the standardised merge, the GRU
/// over rows and columns, the iterative loop. (The multiplicative time-FiLM and the concat merge are
/// the conv kernels' Gate mode and two-source read, covered under the emulator by runtime/tests/conv2d.rs.)
#[test]
fn runs_on_gpu_devices_like_the_cpu() {
    for name in ["iter_dprnn"] {
        let dir = fixture_path(&format!("cpjku/{name}"));
        let io = fixture(&format!("cpjku/{name}_io.safetensors"));
        let cpu = ResUNet::load(&dir, Device::Cpu).unwrap();
        let want = cpu.forward_with(&io["mixture"], &io["label_vector"], &conditions(&io), &mut |_, _| Ok(())).unwrap();
        for dev in aural_runtime::testing::gpu_devices() {
            let model = ResUNet::load(&dir, dev).unwrap();
            let on: BTreeMap<String, Tensor> = io.iter().map(|(k, v)| (k.clone(), v.to_device(dev).unwrap())).collect();
            let y = model.forward_with(&on["mixture"], &on["label_vector"], &conditions(&on), &mut |_, _| Ok(())).unwrap();
            assert_eq!(y.device(), dev);
            let snr = snr_db(&y.to_vec().unwrap(), &want.to_vec().unwrap());
            assert!(snr >= 80.0, "{name} on {dev}: SNR {snr:.1} dB vs the CPU");
        }
    }
}
