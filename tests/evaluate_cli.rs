//! `aural evaluate` end to end: `aural detect --scores-dir` on the golden AST-SED checkpoint and clip,
//! then `aural evaluate --scores` / `--predictions` on what it wrote; the golden metric sets
//! (tests/golden/sed_metrics.py) through the CLI's JSON; bad input.

use std::path::Path;
use std::process::{Command, Output};

use aural::models::sed::metrics::io;
use aural::models::sed::metrics::report::{evaluate, EvalOptions, Predictions};
use aural::runtime::safetensors_io;
use aural::runtime::testing::fixture_path;
use serde_json::Value;

fn exe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "aural failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-evaluate-cli-{tag}-")).tempdir().unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn detect_scores_dir_then_evaluate() {
    let tmp = tmpdir("e2e");
    let d = tmp.path();
    let clip = fixture_path("ast_sed_clip.wav");
    let model = fixture_path("ast_sed_small");
    let (scores_dir, st, ev) = (d.join("scores"), d.join("s.safetensors"), d.join("events.tsv"));
    ok(&exe(&["detect", "--model", &s(&model), "--device", "cpu", &s(&clip), "--scores-dir", &s(&scores_dir), "--scores", &s(&st), "--tsv", &s(&ev)]));

    // The table: the model's classes, one row per output frame before the clip's end, the scores
    // `--scores` writes (f32 printed exactly).
    let cfg: Value = json(&model.join("config.json"));
    let classes: Vec<String> = cfg["classes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let (names, table) = io::read_score_table(&scores_dir.join("ast_sed_clip.tsv")).unwrap();
    assert_eq!(names, classes);
    let strong = safetensors_io::load(&st).unwrap()["strong"].to_vec().unwrap();
    let k = classes.len();
    let duration = hound::WavReader::open(&clip).unwrap().duration() as f64 / 16000.0;
    assert!(table.frames() < strong.len() / k, "frames past the audio are dropped (the window is padded)");
    assert!((table.timestamps.last().unwrap() - duration).abs() < 1e-12, "the last offset is the clip's end");
    assert!(table.timestamps[table.frames() - 1] < duration);
    for (i, v) in table.scores.iter().enumerate() {
        assert_eq!(*v as f32, strong[i], "score {i}");
    }

    // Reference = the detected events: --predictions gives a perfect event-based F1.
    let dur = d.join("durations.tsv");
    std::fs::write(&dur, format!("filename\tduration\nast_sed_clip.wav\t{duration}\n")).unwrap();
    let events = std::fs::read_to_string(&ev).unwrap();
    assert!(events.lines().count() > 1, "the fixture clip has events");
    let out_json = d.join("m.json");
    let table_txt = ok(&exe(&["evaluate", "--reference", &s(&ev), "--durations", &s(&dur), "--predictions", &s(&ev), "--json", &s(&out_json)]));
    assert!(table_txt.contains("event-based") && table_txt.contains("segment-based"), "{table_txt}");
    let m = json(&out_json);
    assert_eq!(m["event_based"]["f1_micro"], 1.0);
    assert_eq!(m["segment_based"]["f1_micro"], 1.0);
    assert_eq!(m["event_based"]["error_rate"], 0.0);
    assert!(m["psds1"].is_null(), "no PSDS from events");

    // --scores: the same numbers as the library on the same tables, PSDS in [0, 1], a PNG.
    let png = d.join("roc.png");
    ok(&exe(&["evaluate", "--reference", &s(&ev), "--durations", &s(&dur), "--scores", &s(&scores_dir), "--json", &s(&out_json), "--plot", &s(&png)]));
    let m = json(&out_json);
    let reference = io::read_strong(&ev).unwrap();
    let durations = io::read_durations(&dur).unwrap();
    let (cls, tables) = io::read_score_dir(&scores_dir, &["ast_sed_clip".to_string()], None).unwrap();
    let (gt, _) = io::ground_truth(&reference, &durations, &dur, Some(&cls), &[]).unwrap();
    let lib = evaluate(&gt, &Predictions::Scores(tables), &EvalOptions::default()).unwrap();
    let want = lib.to_json(&EvalOptions::default());
    for key in ["psds1", "psds2", "psds1_operating_points", "psds2_operating_points"] {
        assert_eq!(m[key], want[key], "{key}");
        let v = m[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert_eq!(m["event_based"], want["event_based"]);
    for key in ["f1_macro", "f1_micro", "error_rate"] {
        assert!(m["event_based"].get(key).is_some() && m["segment_based"].get(key).is_some(), "{key}");
    }
    assert!(m["event_based"]["class_wise"].as_object().unwrap().keys().eq(classes.iter()));
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
}

#[test]
fn golden_sets_through_the_cli() {
    let exp = json(&fixture_path("sed_metrics").join("expected.json"));
    let tmp = tmpdir("golden");
    let d = tmp.path();
    for c in ["a", "b"] {
        let cd = fixture_path("sed_metrics").join(c);
        let out = d.join(format!("{c}.json"));
        let median = exp[c]["median"].as_u64().unwrap().to_string();
        let (r, du) = (s(&cd.join("reference.tsv")), s(&cd.join("durations.tsv")));
        ok(&exe(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &s(&cd.join("scores")), "--median-filter", &median, "--json", &s(&out)]));
        let m = json(&out);
        for (key, want) in [
            ("psds1", &exp[c]["psds1"]["value"]),
            ("psds2", &exp[c]["psds2"]["value"]),
            ("psds1_operating_points", &exp[c]["psds1_op"]),
            ("psds2_operating_points", &exp[c]["psds2_op"]),
        ] {
            let (g, w) = (m[key].as_f64().unwrap(), want.as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{c}.{key}: {g} vs {w}");
        }
        ok(&exe(&["evaluate", "--reference", &r, "--durations", &du, "--predictions", &s(&cd.join("predictions.tsv")), "--json", &s(&out)]));
        let m = json(&out);
        for key in ["f1_macro", "f1_micro", "error_rate"] {
            let (g, w) = (m["event_based"][key].as_f64().unwrap(), exp[c]["event_based"][key].as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{c}.event_based.{key}: {g} vs {w}");
            let (g, w) = (m["segment_based"][key].as_f64().unwrap(), exp[c]["segment_based"][key].as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{c}.segment_based.{key}: {g} vs {w}");
        }
    }
    // Parameters are settable: a looser PSDS1 is not smaller on the same tables.
    let cd = fixture_path("sed_metrics").join("a");
    let out = d.join("loose.json");
    let (r, du, sc) = (s(&cd.join("reference.tsv")), s(&cd.join("durations.tsv")), s(&cd.join("scores")));
    ok(&exe(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &sc, "--psds1", "dtc=0.3,gtc=0.3", "--json", &s(&out)]));
    let loose = json(&out)["psds1"].as_f64().unwrap();
    assert!(loose >= exp["a"]["psds1"]["value"].as_f64().unwrap(), "{loose}");
    assert_eq!(json(&out)["parameters"]["psds1"]["dtc"], 0.3);
}

#[test]
fn bad_input_is_one_clear_error() {
    let tmp = tmpdir("bad");
    let d = tmp.path();
    let cd = fixture_path("sed_metrics").join("a");
    let (r, du) = (s(&cd.join("reference.tsv")), s(&cd.join("durations.tsv")));
    let run = |args: &[&str]| {
        let o = exe(args);
        assert_eq!(o.status.code(), Some(2), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // A malformed line: the file and the line.
    let p = d.join("p.tsv");
    std::fs::write(&p, "filename\tonset\toffset\tevent_label\nY000_a.wav\t1.0\t0.5\tDog\nY000_a.wav\tx\t2\tDog\n").unwrap();
    let e = run(&["evaluate", "--reference", &r, "--durations", &du, "--predictions", &s(&p)]);
    assert!(e.contains("p.tsv:2: offset 0.5 is before onset 1"), "{e}");
    // A file that is not in the durations.
    std::fs::write(&p, "filename\tonset\toffset\tevent_label\nnope.wav\t1.0\t2\tDog\n").unwrap();
    let e = run(&["evaluate", "--reference", &r, "--durations", &du, "--predictions", &s(&p)]);
    assert!(e.contains("p.tsv:2: file 'nope' is not in the durations file"), "{e}");
    // A label outside --classes.
    std::fs::write(&p, "filename\tonset\toffset\tevent_label\nY000_a.wav\t1.0\t2\tCat\n").unwrap();
    let e =
        run(&["evaluate", "--reference", &r, "--durations", &du, "--predictions", &s(&p), "--classes", "Alarm_bell_ringing,Blender,Dog,Speech,Vacuum_cleaner"]);
    assert!(e.contains("label 'Cat' is not in the class list"), "{e}");
    // Neither or both prediction kinds; bad PSDS parameters.
    assert!(!exe(&["evaluate", "--reference", &r, "--durations", &du]).status.success());
    let e = run(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &s(&cd.join("scores")), "--psds1", "alpha_ct=0.5"]);
    assert!(e.contains("alpha_ct = 0.5 needs a cttc"), "{e}");
    let e = run(&["evaluate", "--reference", &r, "--durations", &du, "--scores", &s(&cd.join("scores")), "--psds2", "dtx=1"]);
    assert!(e.contains("unknown key 'dtx'"), "{e}");
    // No JSON is left behind by a failed run.
    let j = d.join("out.json");
    let _ = run(&["evaluate", "--reference", &r, "--durations", &s(&d.join("missing.tsv")), "--predictions", &s(&p), "--json", &s(&j)]);
    assert!(!j.exists());
}
