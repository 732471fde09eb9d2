//! The C ABI: examples/detect.c compiled by the build machine's C compiler against the built
//! libaural_capi and run on the demo clip, its output against the Rust library's numbers; the entry
//! points called directly with bad arguments (status codes and messages, never a panic).

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use aural::models::ast::{AstConfig, AstModel};
use aural::models::ast_sed::DetectOpts;
use aural::models::audio::{self, Channels};
use aural::runtime::{safetensors_io, Device, Tensor};
use aural_capi::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A fresh directory, removed when the returned guard drops (also when the test fails).
fn tmp(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-capi-{tag}-")).tempdir().unwrap()
}

/// Where cargo put libaural_capi.so for this test: target/<profile>/deps (this test's folder), or
/// target/<profile> when it was built on its own.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    if deps.join("libaural_capi.so").exists() {
        deps
    } else {
        deps.parent().unwrap().to_path_buf()
    }
}

/// The small AST of the golden fixtures as an HF checkpoint directory.
fn ast_dir(d: &Path) -> PathBuf {
    let ck = d.join("ast");
    std::fs::create_dir_all(&ck).unwrap();
    let cfg = AstConfig {
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 128,
        max_length: 128,
        num_mel_bins: 32,
        ..AstConfig::default()
    };
    std::fs::write(ck.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let f = safetensors_io::load(root().join("tests/golden/fixtures/ast_small.safetensors")).unwrap();
    let w: Vec<(String, Tensor)> = f.iter().filter_map(|(k, v)| k.strip_prefix("weights/").map(|n| (n.to_string(), v.clone()))).collect();
    safetensors_io::save(ck.join("model.safetensors"), w.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    ck
}

#[test]
fn the_c_example_prints_the_rust_numbers() {
    let dir = tmp("example");
    let d = dir.path();
    let lib = lib_dir();
    assert!(lib.join("libaural_capi.so").exists(), "no libaural_capi.so in {}", lib.display());
    let exe = d.join("detect");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .arg(root().join("capi/examples/detect.c"))
        .arg("-I")
        .arg(root().join("capi/include"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-laural_capi")
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler {cc}: {e}"));
    assert!(o.status.success(), "{cc} detect.c: {}", String::from_utf8_lossy(&o.stderr));
    let clip = root().join("assets/demo/clips/syn_00000.wav");
    let x = audio::load(&clip, 16000, Channels::MixDown).unwrap().channels.remove(0);
    let raw = d.join("clip.f32");
    std::fs::write(&raw, x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let ast = ast_dir(&d);
    let o = Command::new(&exe).arg(&raw).arg("16000").env("AURAL_AST_DIR", &ast).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "detect: {out}\n{}", String::from_utf8_lossy(&o.stderr));

    // the Rust library on the same samples
    let m = aural::demo::load(Device::Cpu).unwrap();
    let sc = m.detect(&x, &DetectOpts::default()).unwrap();
    let mut pp = m.config.post_process().unwrap();
    pp.clip_duration = Some(x.len() as f64 / 16000.0);
    let ev = pp.events("c", &sc.strong).unwrap();
    let mut want = vec![format!("aural {}: {} classes, {:.6} s per frame", env!("CARGO_PKG_VERSION"), m.config.classes.len(), m.config.geometry().hop_s)];
    for (c, w) in m.config.classes.iter().zip(&sc.weak) {
        want.push(format!("weak {c} {w:.6}"));
    }
    let sum: f64 = sc.strong.data.iter().map(|&v| v as f64).sum();
    want.push(format!("strong {} x {} sum {sum:.6}", sc.strong.frames, sc.strong.classes));
    for e in &ev {
        want.push(format!("event {:.3} {:.3} {}", e.onset, e.offset, e.event_label));
    }
    want.push("error wave is NULL".into());
    let am = AstModel::load(&ast, Device::Cpu, None).unwrap();
    let f = aural::runtime::ops::fbank::fbank(
        &Tensor::from_vec(x.clone(), &[x.len()]).unwrap(),
        &aural::runtime::ops::fbank::FbankOpts {
            num_mel_bins: 32,
            ast_norm: Some(aural::runtime::ops::fbank::AstNorm { max_length: 128, ..aural::runtime::ops::fbank::AstNorm::AUDIOSET }),
            ..Default::default()
        },
    )
    .unwrap()
    .reshape(&[1, 128, 32])
    .unwrap();
    let p = am.pooled(&am.forward(&f).unwrap()).unwrap().to_vec().unwrap();
    want.push(format!("pooled 1 x 64 first {:.6} last {:.6}", p[0], p[63]));
    assert!(!ev.is_empty());
    assert_eq!(out.lines().collect::<Vec<_>>(), want.iter().map(String::as_str).collect::<Vec<_>>());
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(aural_last_error()) }.to_string_lossy().into_owned()
}

#[test]
fn bad_arguments_are_status_codes_with_messages() {
    unsafe {
        let mut det: *mut AuralDetector = std::ptr::null_mut();
        let missing = CString::new("/nowhere/model").unwrap();
        assert_eq!(aural_detector_load(missing.as_ptr(), std::ptr::null(), &mut det), AuralStatus::AuralEngineError);
        assert!(det.is_null());
        assert!(last_error().contains("/nowhere/model"), "{}", last_error());
        let tpu = CString::new("tpu").unwrap();
        assert_eq!(aural_detector_load(std::ptr::null(), tpu.as_ptr(), &mut det), AuralStatus::AuralInvalidArgument);
        assert!(last_error().contains("unknown device"), "{}", last_error());
        assert_eq!(aural_detector_load(std::ptr::null(), std::ptr::null(), std::ptr::null_mut()), AuralStatus::AuralInvalidArgument);
        let cpu = CString::new("cpu").unwrap();
        assert_eq!(aural_detector_load(std::ptr::null(), cpu.as_ptr(), &mut det), AuralStatus::AuralOk);
        assert_eq!(last_error(), "");
        let mut res: *mut AuralDetection = std::ptr::null_mut();
        let x = vec![0.1f32, f32::NAN, 0.0];
        assert_eq!(aural_detector_run(det, x.as_ptr(), 3, 16000, &mut res), AuralStatus::AuralInvalidArgument);
        assert!(last_error().contains("index 1"), "{}", last_error());
        assert_eq!(aural_detector_run(det, x.as_ptr(), 0, 16000, &mut res), AuralStatus::AuralInvalidArgument);
        assert_eq!(aural_detector_run(det, x.as_ptr(), 1, 0, &mut res), AuralStatus::AuralInvalidArgument);
        assert_eq!(aural_detector_run(std::ptr::null(), x.as_ptr(), 1, 16000, &mut res), AuralStatus::AuralInvalidArgument);
        let mut name = std::ptr::null();
        assert_eq!(aural_detector_class_name(det, 99, &mut name), AuralStatus::AuralInvalidArgument);
        assert!(last_error().contains("out of range"));
        assert_eq!(aural_detector_class_name(det, 0, &mut name), AuralStatus::AuralOk);
        assert_eq!(CStr::from_ptr(name).to_str().unwrap(), "beep");
        // a short buffer at another rate works; out-of-range event index is an error
        let y: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.3).sin() * 0.2).collect();
        assert_eq!(aural_detector_run(det, y.as_ptr(), y.len(), 8000, &mut res), AuralStatus::AuralOk);
        let (mut frames, mut classes, mut data) = (0usize, 0usize, std::ptr::null());
        assert_eq!(aural_detection_strong(res, &mut frames, &mut classes, &mut data), AuralStatus::AuralOk);
        assert_eq!(classes, 10);
        assert!(frames > 0 && !data.is_null());
        let mut e = AuralEvent { onset: 0.0, offset: 0.0, class_index: 0 };
        assert_eq!(aural_detection_event(res, 1000, &mut e), AuralStatus::AuralInvalidArgument);
        aural_detection_free(res);
        aural_detector_free(det);
        aural_detector_free(std::ptr::null_mut());
        aural_detection_free(std::ptr::null_mut());
        let mut ast: *mut AuralAst = std::ptr::null_mut();
        assert_eq!(aural_ast_load(std::ptr::null(), cpu.as_ptr(), &mut ast), AuralStatus::AuralInvalidArgument);
        assert!(last_error().contains("model_dir is NULL"));
    }
}
