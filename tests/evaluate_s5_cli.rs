//! `aural evaluate-s5` end to end: a small data set in the baseline's layout (soundscape/,
//! oracle_target/, estimates/) written as WAVs, the JSON checked against the library on the same
//! signals in memory; a mixture name that is a prefix of another; a mixture without estimates
//! (all-missed, with a warning); a two-channel estimate (mixed down, with a warning); ignored files;
//! errors that name the file (length mismatch, a .wav that is not a WAV, an unknown label, a mixture
//! without references).

use std::path::Path;
use std::process::{Command, Output};

use aural::models::audio::write_wav;
use aural::models::s5::metrics::{report, score_mixture, Slot};
use serde_json::Value;

const RATE: u32 = 32000;

fn exe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix(&format!("aural-evaluate-s5-cli-{tag}-")).tempdir().unwrap();
    let d = t.path();
    for sub in ["soundscape", "oracle_target", "estimate"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    t
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Deterministic noise in [−gain, gain) (xorshift64*).
fn noise(seed: u64, n: usize, gain: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
            gain * (2.0 * u - 1.0)
        })
        .collect()
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn run_eval(d: &Path, json: Option<&Path>) -> Output {
    let (m, r, e) = (d.join("soundscape"), d.join("oracle_target"), d.join("estimate"));
    let mut args = vec!["evaluate-s5".to_string(), "--estimates".into(), s(&e), "--reference".into(), s(&r), "--mixtures".into(), s(&m)];
    if let Some(j) = json {
        args.extend(["--json".to_string(), s(j)]);
    }
    exe(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

struct Mix {
    name: &'static str,
    mixture: Vec<Vec<f32>>,
    refs: Vec<(&'static str, Vec<f32>)>,
    ests: Vec<(&'static str, Vec<f32>)>,
}

/// Three mixtures: `mix_1` (both labels found), `mix_10` (one found, one false positive; `mix_1` is
/// a prefix of its name), `mix_2` (no estimate file).
fn data_set(n: usize) -> Vec<Mix> {
    let (sp, di, co, bu) = (noise(1, n, 0.3), noise(2, n, 0.2), noise(3, n, 0.4), noise(4, n, 0.25));
    let bg = noise(5, n, 0.05);
    let mix4 = |srcs: &[&[f32]]| -> Vec<Vec<f32>> {
        let mut ch0 = bg.clone();
        for x in srcs {
            ch0 = add(&ch0, x);
        }
        (0..4).map(|c| ch0.iter().map(|v| v * (1.0 - 0.1 * c as f32)).collect()).collect()
    };
    vec![
        Mix {
            name: "mix_1",
            mixture: mix4(&[&sp, &di]),
            refs: vec![("Speech", sp.clone()), ("Dishes", di.clone())],
            ests: vec![("Speech", add(&sp, &noise(6, n, 0.02))), ("Dishes", add(&di, &noise(7, n, 0.05)))],
        },
        Mix {
            name: "mix_10",
            mixture: mix4(&[&co]),
            refs: vec![("Cough", co.clone())],
            ests: vec![("Cough", add(&co, &noise(8, n, 0.1))), ("Blender", noise(9, n, 0.1))],
        },
        Mix { name: "mix_2", mixture: mix4(&[&bu]), refs: vec![("Buzzer", bu.clone())], ests: vec![] },
    ]
}

fn write_set(d: &Path, set: &[Mix]) {
    for m in set {
        let chans: Vec<&[f32]> = m.mixture.iter().map(Vec::as_slice).collect();
        write_wav(d.join("soundscape").join(format!("{}.wav", m.name)), RATE, &chans).unwrap();
        for (l, x) in &m.refs {
            write_wav(d.join("oracle_target").join(format!("{}_{l}.wav", m.name)), RATE, &[x]).unwrap();
        }
        for (l, x) in &m.ests {
            write_wav(d.join("estimate").join(format!("{}_{l}.wav", m.name)), RATE, &[x]).unwrap();
        }
    }
}

fn fails_naming(o: &Output, needles: &[&str]) -> String {
    assert!(!o.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for n in needles {
        assert!(err.contains(n), "stderr should contain '{n}': {err}");
    }
    err
}

#[test]
fn json_matches_the_library() {
    let n = 1500;
    let tmp = tmpdir("ok");
    let d = tmp.path();
    let set = data_set(n);
    write_set(&d, &set);
    // A two-channel estimate (both channels equal: the mean is the signal itself) replaces mix_1's
    // Dishes file; files that are not ours are ignored.
    let dishes = &set[0].ests[1].1;
    write_wav(d.join("estimate/mix_1_Dishes.wav"), RATE, &[dishes, dishes]).unwrap();
    std::fs::write(d.join("estimate/notes.txt"), "not audio").unwrap();
    write_wav(d.join("estimate/other_Speech.wav"), RATE, &[&noise(10, n, 0.1)]).unwrap();

    let j = d.join("out.json");
    let o = run_eval(&d, Some(&j));
    assert!(o.status.success(), "aural failed: {}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("label accuracy") && stdout.contains("CA-SDRi") && stdout.contains("Speech"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();

    // The library on the same signals.
    let classes: Vec<String> = aural::models::separator::S5_CLASSES.iter().map(|c| c.to_string()).collect();
    let scores: Vec<_> = set
        .iter()
        .map(|m| {
            let r: Vec<Slot> = m.refs.iter().map(|(l, x)| Slot { label: l, wave: x }).collect();
            let e: Vec<Slot> = m.ests.iter().map(|(l, x)| Slot { label: l, wave: x }).collect();
            score_mixture(m.name, &m.mixture[0], &r, &e).unwrap()
        })
        .collect();
    let rep = report(scores, &classes);
    let num = |v: &Value| v.as_f64().unwrap();
    assert!((num(&v["label_accuracy"]) - 100.0 / 3.0).abs() < 1e-9, "{}", v["label_accuracy"]);
    assert!((num(&v["label_accuracy"]) - rep.label_accuracy).abs() < 1e-9);
    assert!((num(&v["ca_sdri"]) - rep.ca_sdri).abs() < 1e-9, "{} vs {}", v["ca_sdri"], rep.ca_sdri);
    assert_eq!(v["n_mixtures"], 3);
    let pm = v["per_mixture"].as_array().unwrap();
    assert_eq!(pm.iter().map(|m| m["name"].as_str().unwrap()).collect::<Vec<_>>(), ["mix_1", "mix_10", "mix_2"]);
    for (m, want) in pm.iter().zip(&rep.per_mixture) {
        assert!((num(&m["ca_sdri"]) - want.ca_sdri).abs() < 1e-9, "{}", m["name"]);
        assert_eq!(m["label_correct"], want.label_correct);
    }
    assert_eq!(pm[1]["fp"], serde_json::json!(["Blender"]));
    assert_eq!(pm[1]["tp"][0]["label"], "Cough", "mix_1 does not claim mix_10's files");
    assert_eq!(pm[2]["fn"], serde_json::json!(["Buzzer"]));
    assert_eq!(num(&pm[2]["ca_sdri"]), 0.0);
    let pc = &v["per_class"];
    assert_eq!((pc["Speech"]["tp"].as_u64(), pc["Blender"]["fp"].as_u64(), pc["Buzzer"]["fn"].as_u64()), (Some(1), Some(1), Some(1)));
    assert!(pc["Buzzer"]["sdri_mean"].is_null(), "no TP: null");
    assert!((num(&pc["Speech"]["sdri_mean"]) - rep.per_class["Speech"].sdri_mean).abs() < 1e-9);
    assert_eq!(pc.as_object().unwrap().len(), 18);

    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    let has = |needles: &[&str]| warnings.iter().any(|w| needles.iter().all(|n| w.contains(n)));
    assert!(has(&["mix_2", "no estimate file", "missed"]), "{warnings:?}");
    assert!(has(&["mix_1_Dishes.wav", "2 channels", "mono"]), "{warnings:?}");
    assert!(has(&["other_Speech.wav", "no mixture"]), "{warnings:?}");
    assert!(!has(&["notes.txt"]), "non-.wav files are not looked at");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no estimate file"));
}

#[test]
fn errors_name_the_file() {
    let n = 400;
    // An estimate shorter than its mixture.
    let tmp = tmpdir("len");
    let d = tmp.path();
    let set = data_set(n);
    write_set(&d, &set);
    let bad = d.join("estimate/mix_10_Cough.wav");
    write_wav(&bad, RATE, &[&noise(11, n - 7, 0.1)]).unwrap();
    fails_naming(&run_eval(&d, None), &[&s(&bad), "393 samples", "400"]);

    // A .wav that is not a WAV; no JSON is written on failure.
    write_wav(&bad, RATE, &[&noise(11, n, 0.1)]).unwrap();
    let junk = d.join("estimate/mix_1_Speech.wav");
    std::fs::write(&junk, b"this is not a RIFF file at all, just text").unwrap();
    let j = d.join("out.json");
    fails_naming(&run_eval(&d, Some(&j)), &[&s(&junk)]);
    assert!(!j.exists());

    // `<mixture>_<not a class>.wav`, as the baseline refuses.
    write_wav(&junk, RATE, &[&noise(12, n, 0.1)]).unwrap();
    let odd = d.join("estimate/mix_1_Whistle.wav");
    write_wav(&odd, RATE, &[&noise(13, n, 0.1)]).unwrap();
    fails_naming(&run_eval(&d, None), &[&s(&odd), "Whistle"]);
    std::fs::remove_file(&odd).unwrap();

    // A mixture without any reference file.
    std::fs::remove_file(d.join("oracle_target/mix_2_Buzzer.wav")).unwrap();
    fails_naming(&run_eval(&d, None), &["mix_2.wav", "no reference file"]);
    write_wav(d.join("oracle_target/mix_2_Buzzer.wav"), RATE, &[&set[2].refs[0].1]).unwrap();

    // A reference at another rate.
    let r = d.join("oracle_target/mix_1_Speech.wav");
    write_wav(&r, 16000, &[&set[0].refs[0].1]).unwrap();
    fails_naming(&run_eval(&d, None), &[&s(&r), "16000 Hz"]);
    write_wav(&r, RATE, &[&set[0].refs[0].1]).unwrap();
    assert!(run_eval(&d, None).status.success(), "restored: {}", String::from_utf8_lossy(&run_eval(&d, None).stderr));
}
