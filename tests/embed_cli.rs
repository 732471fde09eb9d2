//! `aural embed` end to end: the built binary on generated WAVs and a small AST checkpoint directory
//! (the weights of tests/golden/fixtures/ast_small.safetensors) vs the library calls.

use std::path::{Path, PathBuf};
use std::process::Command;

use aural::models::ast::{AstConfig, AstModel};
use aural::runtime::ops::fbank::{fbank, AstNorm, FbankOpts};
use aural::runtime::testing::{assert_tensor_close, fixture, rand_vec};
use aural::runtime::{safetensors_io, Device, Tensor};

fn wav(path: &Path, x: &[f32]) {
    let spec = hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in x {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

fn small_config() -> AstConfig {
    AstConfig {
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 128,
        max_length: 128,
        num_mel_bins: 32,
        ..AstConfig::default()
    }
}

#[test]
fn embed_cli_matches_library() {
    let tmp = tempfile::Builder::new().prefix("aural-embed-cli-").tempdir().unwrap();
    let dir = tmp.path();
    let ck = dir.join("ast");
    std::fs::create_dir_all(&ck).unwrap();
    let cfg = small_config();
    std::fs::write(ck.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let f = fixture("ast_small.safetensors");
    let w: Vec<(String, Tensor)> = f.iter().filter_map(|(k, v)| k.strip_prefix("weights/").map(|n| (n.to_string(), v.clone()))).collect();
    safetensors_io::save(ck.join("model.safetensors"), w.iter().map(|(k, v)| (k.as_str(), v))).unwrap();

    let (a, b): (Vec<f32>, Vec<f32>) = (rand_vec(16000, 3).iter().map(|v| 0.2 * v).collect(), (0..12000).map(|i| 0.3 * (i as f32 * 0.07).sin()).collect());
    let (pa, pb): (PathBuf, PathBuf) = (dir.join("a.wav"), dir.join("b.wav"));
    wav(&pa, &a);
    wav(&pb, &b);
    let exe = env!("CARGO_BIN_EXE_aural");
    let run = |extra: &[&str], inputs: &[&Path], out: &Path| {
        let mut args: Vec<String> =
            vec!["embed".into(), "--model".into(), ck.display().to_string(), "--out".into(), out.display().to_string(), "--device".into(), "cpu".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        let o = Command::new(exe).args(&args).output().unwrap();
        assert!(o.status.success(), "aural {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        safetensors_io::load(out).unwrap()
    };

    let model = AstModel::load(&ck, Device::Cpu, None).unwrap();
    let opts = FbankOpts { num_mel_bins: 32, ast_norm: Some(AstNorm { max_length: 128, ..AstNorm::AUDIOSET }), ..Default::default() };
    let input = |x: &[f32]| fbank(&Tensor::from_vec(x.to_vec(), &[x.len()]).unwrap(), &opts).unwrap().reshape(&[1, 128, 32]).unwrap();
    let (xa, xb) = (input(&a), input(&b));

    let got = run(&[], &[&pa], &dir.join("one.safetensors"));
    let want = model.forward(&xa).unwrap().reshape(&[26, 64]).unwrap();
    assert_tensor_close("embed last_hidden_state", &got["last_hidden_state"], &want, 1e-6, 1e-6);

    let got = run(&["--pooled"], &[&pa, &pb], &dir.join("two.safetensors"));
    let want_b = model.pooled(&model.forward(&xb).unwrap()).unwrap().reshape(&[64]).unwrap();
    assert_eq!(got["b/pooler_output"].shape(), &[64]);
    assert_tensor_close("embed b/pooler_output", &got["b/pooler_output"], &want_b, 1e-6, 1e-6);
    assert!(got.contains_key("a/pooler_output"));

    let got = run(&["--layer", "1"], &[&pb], &dir.join("l1.safetensors"));
    let want = model.forward_hidden_states(&xb).unwrap()[1].reshape(&[26, 64]).unwrap();
    assert_tensor_close("embed hidden_states.1", &got["hidden_states.1"], &want, 1e-6, 1e-6);

    // Five files given out of name order, batches of 2 (the last one short): each file's tokens are
    // its own single-file forward's; then a broken file in the middle stops the job with its name and
    // leaves the previous output as it was.
    let names = ["e", "c", "a2", "d", "b2"];
    let clips: Vec<Vec<f32>> = (0..5).map(|i| rand_vec(8000 + 1000 * i, 20 + i as u64).iter().map(|v| 0.1 * v).collect()).collect();
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{n}.wav"))).collect();
    for (p, x) in paths.iter().zip(&clips) {
        wav(p, x);
    }
    let five = dir.join("five.safetensors");
    let got = run(&["--batch", "2"], &paths.iter().map(|p| p.as_path()).collect::<Vec<_>>(), &five);
    assert_eq!(got.len(), 5);
    for (n, x) in names.iter().zip(&clips) {
        let want = model.forward(&input(x)).unwrap().reshape(&[26, 64]).unwrap();
        assert_tensor_close(&format!("embed --batch 2 {n}"), &got[&format!("{n}/last_hidden_state")], &want, 1e-5, 1e-5);
    }
    let before = std::fs::read(&five).unwrap();
    std::fs::write(&paths[3], b"RIFF\x04\x00\x00\x00WAVE").unwrap();
    let mut args: Vec<String> =
        vec!["embed".into(), "--model".into(), ck.display().to_string(), "--out".into(), five.display().to_string(), "--device".into(), "cpu".into()];
    args.extend(["--batch".into(), "2".into()]);
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let o = Command::new(exe).args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("d.wav"), "{err}");
    assert_eq!(std::fs::read(&five).unwrap(), before);

    // --logits without a classifier head: one clear error.
    let o = Command::new(exe)
        .args(["embed", "--model", ck.to_str().unwrap(), pa.to_str().unwrap(), "--out", "x.safetensors", "--device", "cpu", "--logits"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no classifier head"));

    // Two inputs with one file stem (a broken WAV second): refused before any file is read, both
    // paths named, nothing written.
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("a.wav"), b"RIFF").unwrap();
    let clash = dir.join("clash.safetensors");
    let o = Command::new(exe)
        .args([
            "embed",
            "--model",
            ck.to_str().unwrap(),
            pa.to_str().unwrap(),
            sub.join("a.wav").to_str().unwrap(),
            "--out",
            clash.to_str().unwrap(),
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("share the file stem") && err.contains(sub.join("a.wav").to_str().unwrap()) && err.contains("'a/last_hidden_state'"), "{err}");
    assert!(!clash.exists());

    // A missing checkpoint: exit code 2 and a message naming config.json.
    let o = Command::new(exe)
        .args(["embed", "--model", dir.join("nope").to_str().unwrap(), pa.to_str().unwrap(), "--out", "x.safetensors", "--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.json"));
}

/// `--logits` on an ASTForAudioClassification checkpoint = the library's logits.
#[test]
fn embed_cli_logits() {
    let tmp = tempfile::Builder::new().prefix("aural-embed-cli-logits-").tempdir().unwrap();
    let dir = tmp.path();
    let ck = dir.join("ast");
    std::fs::create_dir_all(&ck).unwrap();
    std::fs::write(ck.join("config.json"), serde_json::to_string(&small_config()).unwrap()).unwrap();
    let f = fixture("ast_cls_small.safetensors");
    let w: Vec<(String, Tensor)> = f.iter().filter_map(|(k, v)| k.strip_prefix("weights/").map(|n| (n.to_string(), v.clone()))).collect();
    safetensors_io::save(ck.join("model.safetensors"), w.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    let a: Vec<f32> = rand_vec(16000, 4).iter().map(|v| 0.2 * v).collect();
    let pa = dir.join("a.wav");
    wav(&pa, &a);
    let out = dir.join("l.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_aural"))
        .args(["embed", "--model", ck.to_str().unwrap(), pa.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu", "--logits"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = safetensors_io::load(&out).unwrap();
    let model = AstModel::load(&ck, Device::Cpu, None).unwrap();
    let opts = FbankOpts { num_mel_bins: 32, ast_norm: Some(AstNorm { max_length: 128, ..AstNorm::AUDIOSET }), ..Default::default() };
    let x = fbank(&Tensor::from_vec(a.clone(), &[a.len()]).unwrap(), &opts).unwrap().reshape(&[1, 128, 32]).unwrap();
    let want = model.logits(&model.forward(&x).unwrap()).unwrap().reshape(&[7]).unwrap();
    assert_tensor_close("embed logits", &got["logits"], &want, 1e-6, 1e-6);
}
