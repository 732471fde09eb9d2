//! CP-JKU's separator through the CLI (tests/golden/cpjku.py fixtures): `aural separate --conditions`
//! (strong logits + embeddings from a file) and `--iterations`, `aural separate --sed` (the stage-2
//! SED model computing them from the audio) against PyTorch's waveform (SNR ≥ 80 dB), `aural s5 --sed`
//! (tagger → SED model → separator) equal to `aural separate --sed` with the labels it chose, and the
//! errors of missing or conflicting conditions.

use std::path::Path;
use std::process::Command;

use aural::models::audio;
use aural::runtime::testing::{fixture, fixture_path};
use aural::runtime::{safetensors_io, Tensor};

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-cpjku-{tag}-")).tempdir().unwrap()
}

fn aural(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn fails_with(o: &std::process::Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected a failure, got success: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing '{n}' in: {err}");
    }
}

fn snr_db(got: &[f32], want: &[f32]) -> f64 {
    let s: f64 = want.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    10.0 * (s / n.max(1e-300)).log10()
}

fn write_4ch(path: &Path, chans: &[Vec<f32>]) {
    let refs: Vec<&[f32]> = chans.iter().map(Vec::as_slice).collect();
    audio::write_wav(path, 32000, &refs).unwrap();
}

/// The e2e mixture: channel c = (1 − 0.1c)·wave_10s.
fn e2e_mixture() -> Vec<Vec<f32>> {
    let w = fixture("m2d_small_io.safetensors")["wave_10s"].to_vec().unwrap();
    (0..4).map(|c| w.iter().map(|&v| v * (1.0 - 0.1 * c as f32)).collect()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn conditions_file_and_iterations() {
    let tmp = tmpdir("cond");
    let d = tmp.path();
    let io = fixture("cpjku/iter_dprnn_io.safetensors");
    let len = io["mixture"].shape()[2];
    let m = io["mixture"].to_vec().unwrap();
    let mix = d.join("mix.wav");
    write_4ch(&mix, &(0..4).map(|c| m[c * len..][..len].to_vec()).collect::<Vec<_>>());
    let cond = d.join("cond.safetensors");
    let l = &io["strong_logits"];
    let e = &io["embeddings"];
    let tensors = [("strong_logits".to_string(), l.reshape(&l.shape()[1..]).unwrap()), ("embeddings".to_string(), e.reshape(&e.shape()[1..]).unwrap())];
    safetensors_io::save(&cond, tensors.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    let model = fixture_path("cpjku/iter_dprnn");
    let out = d.join("out");
    let base = ["separate", "--model", s(&model), s(&mix), "--out", s(&out), "--device", "cpu", "--label", "MechanicalFans"];
    ok(&aural(&[&base[..], &["--conditions", s(&cond)]].concat()));
    let got = audio::read_wav(out.join("mix_MechanicalFans.wav")).unwrap();
    let snr = snr_db(&got.channels[0], &io["waveform"].to_vec().unwrap());
    assert!(snr >= 80.0, "2 passes: SNR {snr:.1} dB vs PyTorch");
    ok(&aural(&[&base[..], &["--conditions", s(&cond), "--iterations", "1"]].concat()));
    let got = audio::read_wav(out.join("mix_MechanicalFans.wav")).unwrap();
    let snr = snr_db(&got.channels[0], &io["pass1"].to_vec().unwrap());
    assert!(snr >= 80.0, "1 pass: SNR {snr:.1} dB vs PyTorch's first pass");

    fails_with(&aural(&base), &["--sed DIR", "--conditions", "strong_logits", "embeddings"]);
    fails_with(&aural(&[&base[..], &["--conditions", s(&cond), "--iterations", "0"]].concat()), &["--iterations", "at least 1"]);
    fails_with(&aural(&[&base[..], &["--conditions", s(&cond), "--sed", s(&fixture_path("m2d_sed_small"))]].concat()), &["either --sed", "not both"]);
    // A conditions file without the embeddings, and one with the wrong class count, name the file.
    let only = d.join("only_logits.safetensors");
    safetensors_io::save(&only, [("strong_logits", &tensors[0].1)]).unwrap();
    fails_with(&aural(&[&base[..], &["--conditions", s(&only)]].concat()), &["only_logits.safetensors", "'embeddings'"]);
    let bad = d.join("bad.safetensors");
    let z = Tensor::zeros(&[17, 25], aural::runtime::DType::F32, aural::runtime::Device::Cpu).unwrap();
    safetensors_io::save(&bad, [("strong_logits", &z), ("embeddings", &tensors[1].1)]).unwrap();
    fails_with(&aural(&[&base[..], &["--conditions", s(&bad)]].concat()), &["bad.safetensors", "17 classes"]);
    // --iterations on a model that is not iterative.
    let plain = fixture_path("separator/resunet_n1024");
    fails_with(
        &aural(&["separate", "--model", s(&plain), s(&mix), "--out", s(&out), "--device", "cpu", "--label", "Cough", "--iterations", "2"]),
        &["not iterative"],
    );
}

#[test]
fn sed_model_conditions_the_separator_like_pytorch_and_s5_runs_the_three_models() {
    let tmp = tmpdir("sed");
    let d = tmp.path();
    let mix = d.join("clip.wav");
    write_4ch(&mix, &e2e_mixture());
    let model = fixture_path("cpjku/e2e_sed");
    let sed = fixture_path("m2d_sed_small");
    let out = d.join("out");
    ok(&aural(&["separate", "--model", s(&model), "--sed", s(&sed), s(&mix), "--out", s(&out), "--device", "cpu", "--label", "MechanicalFans"]));
    let got = audio::read_wav(out.join("clip_MechanicalFans.wav")).unwrap();
    assert_eq!(got.num_samples(), 320000);
    let want = fixture("cpjku/e2e_sed_io.safetensors")["waveform_head"].to_vec().unwrap();
    let snr = snr_db(&got.channels[0][..want.len()], &want);
    assert!(snr >= 80.0, "SED-conditioned separation: SNR {snr:.1} dB vs PyTorch");

    // The whole system: the tagger picks labels, the SED model runs once, the separator per label.
    let s5out = d.join("s5");
    let tagger = fixture_path("m2d_small");
    ok(&aural(&["s5", "--tagger", s(&tagger), "--separator", s(&model), "--sed", s(&sed), s(&mix), "--out", s(&s5out), "--device", "cpu"]));
    let tsv = std::fs::read_to_string(s5out.join("labels.tsv")).unwrap();
    let labels: Vec<String> = tsv.lines().nth(1).unwrap().split('\t').nth(1).unwrap().split(',').filter(|l| !l.is_empty()).map(String::from).collect();
    assert!(!labels.is_empty(), "{tsv}");
    let mut args: Vec<String> =
        ["separate", "--model", s(&model), "--sed", s(&sed), s(&mix), "--out", s(&out), "--device", "cpu"].iter().map(|x| x.to_string()).collect();
    for l in &labels {
        args.extend(["--label".to_string(), l.clone()]);
    }
    ok(&aural(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    for l in &labels {
        let a = audio::read_wav(s5out.join(format!("clip_{l}.wav"))).unwrap();
        let b = audio::read_wav(out.join(format!("clip_{l}.wav"))).unwrap();
        assert_eq!(a.channels, b.channels, "{l}: aural s5 and aural separate differ");
    }
    fails_with(&aural(&["s5", "--tagger", s(&tagger), "--separator", s(&model), s(&mix), "--out", s(&s5out), "--device", "cpu"]), &["SED model", "--sed"]);
}
