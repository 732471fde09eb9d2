//! `trainer synth`: determinism, labels against the placed audio, stems summing to the mixture, the
//! drawn SNRs, the polyphony rules, file sources and bad options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aural_models::audio::{read_wav, write_wav};

/// An output path `name` (not created: `trainer synth` creates it) in a fresh temporary directory,
/// which is removed when this drops (also when the test fails). Derefs to the path.
struct TmpOut {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TmpOut {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TmpOut {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

fn tmp(name: &str) -> TmpOut {
    let dir = tempfile::Builder::new().prefix(&format!("aural-synth-{name}-")).tempdir().unwrap();
    TmpOut { path: dir.path().join(name), _dir: dir }
}

fn synth(out: &Path, args: &[&str]) -> std::process::Output {
    let o = Command::new(env!("CARGO_BIN_EXE_trainer")).arg("synth").arg("--out").arg(out).args(args).output().unwrap();
    o
}

fn ok(out: &Path, args: &[&str]) {
    let o = synth(out, args);
    assert!(o.status.success(), "trainer synth {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn mono(p: &Path) -> Vec<f32> {
    read_wav(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).channels.remove(0)
}

/// Rows of a TSV after its header.
fn rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p).unwrap().lines().skip(1).map(|l| l.split('\t').map(String::from).collect()).collect()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for sub in ["", "audio", "stems"] {
        let d = dir.join(sub);
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd {
                let p = e.unwrap().path();
                if p.is_file() {
                    m.insert(format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read(&p).unwrap());
                }
            }
        }
    }
    m
}

#[test]
fn same_seed_same_files_and_one_soundscape_alone() {
    let (a, b, one) = (tmp("det-a"), tmp("det-b"), tmp("det-one"));
    let args = ["--builtin", "--count", "6", "--seed", "7", "--duration", "4", "--stems"];
    ok(&a, &args);
    ok(&b, &[&args[..], &["--threads", "1"]].concat());
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.len() > 6 * 3, "{} files", fa.len());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs between two runs with the same seed");
    }
    // soundscape 4 regenerated alone equals the one of the full run
    ok(&one, &["--builtin", "--count", "1", "--start", "4", "--seed", "7", "--duration", "4", "--stems"]);
    let fo = files(&one);
    assert_eq!(fo["audio/syn_00004.wav"], fa["audio/syn_00004.wav"]);
    let full: Vec<_> = rows(&a.join("strong.tsv")).into_iter().filter(|r| r[0] == "syn_00004.wav").collect();
    assert_eq!(rows(&one.join("strong.tsv")), full);
    // another seed: other audio
    let c = tmp("det-c");
    ok(&c, &["--builtin", "--count", "6", "--seed", "8", "--duration", "4"]);
    assert_ne!(files(&c)["audio/syn_00000.wav"], fa["audio/syn_00000.wav"]);
}

/// Stems sum to the mixture, each event's energy lies inside its TSV row, its SNR is the drawn one,
/// the polyphony and same-class rules hold.
fn check_scenes(out: &Path, rate: f64, polyphony: usize, gap: f64) {
    let strong = rows(&out.join("strong.tsv"));
    let events = rows(&out.join("events.tsv"));
    let durations = rows(&out.join("durations.tsv"));
    let weak = rows(&out.join("weak.tsv"));
    assert_eq!(weak.len(), durations.len());
    let mut checked = 0;
    for d in &durations {
        let name = d[0].trim_end_matches(".wav");
        let mix = mono(&out.join("audio").join(&d[0]));
        assert_eq!(mix.len() as f64, (d[1].parse::<f64>().unwrap() * rate).round());
        let bg = mono(&out.join("stems").join(format!("{name}_background.wav")));
        let mut sum: Vec<f64> = bg.iter().map(|&v| v as f64).collect();
        let bg_ms = bg.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / bg.len() as f64;
        let mine: Vec<&Vec<String>> = strong.iter().filter(|r| r[0] == d[0]).collect();
        let evs: Vec<&Vec<String>> = events.iter().filter(|r| r[0] == d[0] && r[3] != "background").collect();
        assert_eq!(mine.len(), evs.len());
        let mut labels: Vec<&str> = mine.iter().map(|r| r[3].as_str()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(weak.iter().find(|w| w[0] == d[0]).unwrap()[1], labels.join(","));
        for (k, r) in mine.iter().enumerate() {
            let (on, off) = (r[1].parse::<f64>().unwrap(), r[2].parse::<f64>().unwrap());
            assert!(off > on, "{r:?}");
            let stem = mono(&out.join("stems").join(format!("{name}_{k}_{}.wav", r[3])));
            for (s, v) in sum.iter_mut().zip(&stem) {
                *s += *v as f64;
            }
            // energy: every sample above 1e-6 of the peak lies inside [onset, offset] (± one sample)
            let peak = stem.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.0, "{name} event {k} is silent");
            let active: Vec<usize> = (0..stem.len()).filter(|&i| stem[i].abs() > 1e-6 * peak).collect();
            let (first, last) = (*active.first().unwrap() as f64 / rate, (*active.last().unwrap() + 1) as f64 / rate);
            assert!(first >= on - 1.0 / rate && last <= off + 1.0 / rate, "{name} event {k}: energy {first}–{last} s outside its label {on}–{off}");
            // and it fills the label: energy within 50 ms of both ends
            assert!(first - on < 0.05 && off - last < 0.05, "{name} event {k}: energy {first}–{last} s, label {on}–{off}");
            // SNR: mean square over the label's extent against the background's
            let (a, b) = ((on * rate).round() as usize, ((off * rate).round() as usize).min(stem.len()));
            let ems = stem[a..b].iter().map(|&v| v as f64 * v as f64).sum::<f64>() / (b - a) as f64;
            let snr = 10.0 * (ems / bg_ms).log10();
            let ev = evs.iter().find(|e| e[1] == r[1] && e[3] == r[3]).unwrap();
            let drawn: f64 = ev[4].parse().unwrap();
            assert!((snr - drawn).abs() < 0.1, "{name} event {k}: SNR {snr:.3} dB, drawn {drawn:.3}");
            checked += 1;
        }
        let worst = sum.iter().zip(&mix).map(|(s, m)| (s - *m as f64).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-6, "{name}: stems sum to the mixture within {worst:e}");
        // polyphony, sampled every millisecond; same class never closer than the gap
        let iv: Vec<(f64, f64, &str)> = mine.iter().map(|r| (r[1].parse().unwrap(), r[2].parse().unwrap(), r[3].as_str())).collect();
        for t in 0..(mix.len() as f64 / rate * 1000.0) as usize {
            let t = t as f64 / 1000.0 + 0.0005;
            let n = iv.iter().filter(|e| e.0 <= t && t < e.1).count();
            assert!(n <= polyphony, "{name}: {n} events at {t} s");
        }
        for (i, x) in iv.iter().enumerate() {
            for y in &iv[i + 1..] {
                if x.2 == y.2 {
                    assert!(y.0 >= x.1 + gap - 1e-9 || x.0 >= y.1 + gap - 1e-9, "{name}: {x:?} and {y:?}");
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} events checked");
}

#[test]
fn builtin_labels_stems_and_snr() {
    let out = tmp("builtin");
    ok(&out, &["--builtin", "--count", "8", "--seed", "3", "--duration", "6", "--stems", "--events", "2,6", "--snr=-5,25", "--level=-40,-20"]);
    check_scenes(&out, 16000.0, 2, 0.25);
    // every class and some background appear over a larger set
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["classes"].as_array().unwrap().len(), 10);
    assert_eq!(meta["parameters"]["snr"]["lo"], -5.0);
    drop(out);
    let many = tmp("many");
    ok(&many, &["--builtin", "--count", "60", "--seed", "4", "--duration", "10"]);
    let strong = rows(&many.join("strong.tsv"));
    for c in aural_trainer::synth::bank::CLASSES {
        assert!(strong.iter().any(|r| r[3] == c), "class {c} never drawn");
    }
    drop(many);
    // loud settings: the mixtures beyond full scale are counted and warned about
    let loud = tmp("loud");
    let o = synth(&loud, &["--builtin", "--count", "4", "--seed", "4", "--duration", "3", "--level=-10", "--snr", "20", "--pcm16"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exceed full scale") && err.contains("clipped in the 16-bit files"), "{err}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(loud.join("meta.json")).unwrap()).unwrap();
    assert!(meta["over_full_scale_soundscapes"].as_u64().unwrap() > 0 && meta["over_full_scale_samples"].as_u64().unwrap() > 0);
}

#[test]
fn no_overlap_peak_normalised_and_other_rate() {
    let out = tmp("nooverlap");
    ok(
        &out,
        &["--builtin", "--count", "6", "--seed", "5", "--duration", "8", "--stems", "--events", "4", "--no-overlap", "--rate", "22050", "--peak-normalize=-1"],
    );
    check_scenes(&out, 22050.0, 1, 0.25);
    for r in rows(&out.join("durations.tsv")) {
        let m = mono(&out.join("audio").join(&r[0]));
        let peak = m.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!((20.0 * (peak as f64).log10() + 1.0).abs() < 1e-4, "{}: peak {peak}", r[0]);
    }
}

#[test]
fn folders_of_files_as_sources() {
    let src = tmp("src");
    let rate = 8000u32;
    for (c, f) in [("tone", 440.0f32), ("high", 2000.0)] {
        let d = src.join("fg").join(c);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..2 {
            let n = ((0.5 + i as f32) * rate as f32) as usize;
            let x: Vec<f32> = (0..n).map(|j| 0.3 * (std::f32::consts::TAU * f * j as f32 / rate as f32).sin()).collect();
            // stereo files at another rate: mixed down and resampled
            write_wav(d.join(format!("{i}.wav")), rate, &[&x, &x]).unwrap();
        }
    }
    std::fs::create_dir_all(src.join("bg")).unwrap();
    let noise: Vec<f32> = (0..3 * rate as usize).map(|j| ((j * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1).collect();
    write_wav(src.join("bg").join("b.wav"), rate, &[&noise]).unwrap();
    let out = tmp("files");
    let (fg, bg) = (src.join("fg"), src.join("bg"));
    ok(
        &out,
        &[
            "--fg",
            fg.to_str().unwrap(),
            "--bg",
            bg.to_str().unwrap(),
            "--count",
            "5",
            "--duration",
            "5",
            "--stems",
            "--events",
            "2,4",
            "--same-class-gap",
            "0.5",
        ],
    );
    check_scenes(&out, 16000.0, 2, 0.5);
    let strong = rows(&out.join("strong.tsv"));
    assert!(strong.iter().all(|r| r[3] == "tone" || r[3] == "high"));
    // bad sources and options: one clear sentence, exit status 2
    std::fs::create_dir_all(src.join("fg").join("empty")).unwrap();
    for (args, says) in [
        (vec!["--fg", fg.to_str().unwrap()], "holds no .wav"),
        (vec!["--builtin", "--fg", "x"], "not both"),
        (vec![], "--builtin"),
        (vec!["--builtin", "--classes", "dog"], "no builtin class \"dog\""),
        (vec!["--builtin", "--snr", "9,3"], "A ≤ B"),
        (vec!["--builtin", "--polyphony", "0"], "polyphony"),
        (vec!["--builtin", "--bg", src.join("nothing").to_str().unwrap()], "nothing"),
    ] {
        let o = synth(&out, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
