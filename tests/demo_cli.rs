//! The shipped demo model (assets/demo): `aural detect` without `--model` runs it and finds the
//! labelled events of the shipped example clips; `aural evaluate --tune` on its score tables writes
//! thresholds and median filters with which `aural detect` reaches exactly the tuned F1s.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aural::models::audio::{self, Channels};
use aural::models::sed::events_to_tsv;
use aural::runtime::Device;
use serde_json::Value;

fn exe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

fn ok(o: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "aural failed: {err}");
    (String::from_utf8(o.stdout).unwrap(), err)
}

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-demo-cli-{tag}-")).tempdir().unwrap()
}

fn clips_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/clips")
}

fn clips() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(clips_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn detect_without_a_model_runs_the_demo_and_finds_the_events() {
    let tmp = tmpdir("detect");
    let d = tmp.path();
    let files = clips();
    assert!(files.len() >= 3);
    let tsv = d.join("ev.tsv");
    let mut args = vec!["detect", "--device", "cpu", "--tsv"];
    let t = s(&tsv);
    args.push(&t);
    args.extend(files.iter().map(String::as_str));
    let (_, err) = ok(exe(&args));
    assert!(err.contains("no --model: using the builtin demo model"), "{err}");
    // exactly the library's events of the embedded model
    let m = aural::demo::load(Device::Cpu).unwrap();
    let mut want = Vec::new();
    for f in &files {
        let a = audio::load(f, 16000, Channels::MixDown).unwrap();
        let sc = m.detect(a.mono(), &Default::default()).unwrap();
        let mut pp = m.config.post_process().unwrap();
        pp.clip_duration = Some(a.num_samples() as f64 / 16000.0);
        want.extend(pp.events(&Path::new(f).file_name().unwrap().to_string_lossy(), &sc.strong).unwrap());
    }
    assert_eq!(std::fs::read_to_string(&tsv).unwrap(), events_to_tsv(&want));
    // against the clips' labels (a held-out seed): the events are real
    let j = d.join("m.json");
    ok(exe(&[
        "evaluate",
        "--reference",
        &s(&clips_dir().join("strong.tsv")),
        "--durations",
        &s(&clips_dir().join("durations.tsv")),
        "--predictions",
        &s(&tsv),
        "--json",
        &s(&j),
    ]));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let f1 = v["event_based"]["f1_micro"].as_f64().unwrap();
    assert!(f1 >= 0.6, "event-based micro F1 of the demo model on its example clips: {f1}");
}

#[test]
fn tuned_settings_give_the_tuned_f1_through_detect() {
    let tmp = tmpdir("tune");
    let d = tmp.path();
    let model = d.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("config.json"), aural::demo::CONFIG_JSON).unwrap();
    std::fs::write(model.join("model.safetensors"), aural::demo::WEIGHTS).unwrap();
    let files = clips();
    let scores = d.join("scores");
    let mut args = vec!["detect", "--device", "cpu", "--model"];
    let (ms, ss) = (s(&model), s(&scores));
    args.extend([ms.as_str(), "--scores-dir", ss.as_str()]);
    args.extend(files.iter().map(String::as_str));
    ok(exe(&args));
    let (r, du) = (s(&clips_dir().join("strong.tsv")), s(&clips_dir().join("durations.tsv")));
    let cfg = model.join("config.json");
    let (out, _) =
        ok(exe(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &ss, "--only", "event", "--tune", &s(&cfg), "--tune-medians", "1,3,7,11"]));
    // the printed table: class, threshold, median, F1, F1 at 0.5/1
    let tuned: Vec<(String, f64, usize, f64)> = out
        .lines()
        .skip_while(|l| !l.starts_with("tuned on these files"))
        .skip(2)
        .filter(|l| !l.starts_with("macro"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_string(), c[1].parse().unwrap(), c[2].parse().unwrap(), c[3].parse().unwrap())
        })
        .collect();
    assert_eq!(tuned.len(), aural::demo::classes().len(), "{out}");
    // config.json: every other key kept, the two settings now per class
    let before: Value = serde_json::from_str(aural::demo::CONFIG_JSON).unwrap();
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    for (k, v) in before.as_object().unwrap() {
        if k != "threshold" && k != "median_filter" {
            assert_eq!(&after[k], v, "{k}");
        }
    }
    for (c, t, m, _) in &tuned {
        assert!((after["threshold"][c].as_f64().unwrap() - t).abs() < 1e-3, "{c}");
        assert_eq!(after["median_filter"][c].as_u64().unwrap() as usize, *m, "{c}");
    }
    // detect with the tuned config → evaluate: each class's F1 is the tuned one
    let tsv = d.join("ev.tsv");
    let mut args = vec!["detect", "--device", "cpu", "--model", ms.as_str(), "--tsv"];
    let ts = s(&tsv);
    args.push(&ts);
    args.extend(files.iter().map(String::as_str));
    ok(exe(&args));
    let j = d.join("m.json");
    ok(exe(&[
        "evaluate",
        "--reference",
        &r,
        "--durations",
        &du,
        "--predictions",
        &ts,
        "--only",
        "event",
        "--json",
        &s(&j),
        "--classes",
        &aural::demo::classes().join(","),
    ]));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let mut checked = 0;
    for (c, _, _, f1) in &tuned {
        if f1.is_nan() {
            continue;
        }
        let got = v["event_based"]["class_wise"][c]["f1"].as_f64().unwrap();
        assert!((got - f1).abs() < 1e-4, "{c}: F1 {got} through detect, {f1} tuned");
        checked += 1;
    }
    assert!(checked >= 3, "{checked} classes with reference events");
    // another path: a new JSON with the settings and the F1s
    let new = d.join("tuned.json");
    ok(exe(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &ss, "--only", "event", "--tune", &s(&new), "--tune-thresholds", "0.3,0.5,0.7"]));
    let n: Value = serde_json::from_str(&std::fs::read_to_string(&new).unwrap()).unwrap();
    assert!(n["threshold"].is_object() && n["median_filter"].is_object() && n["event_f1"].is_object(), "{n}");
    assert!(n["threshold"].as_object().unwrap().values().all(|t| [0.3, 0.5, 0.7].contains(&t.as_f64().unwrap())));
    // bad grids are one clear error
    let e = exe(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &ss, "--tune", &s(&new), "--tune-thresholds", "0.9:0.1:0.1"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("FROM ≤ TO"));
}
