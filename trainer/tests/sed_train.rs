//! `trainer sed` end to end on the small AST-SED of the golden fixtures (AST 64 wide, 2 blocks, 48 mel ×
//! 128 frames, 5 classes) and a generated toy data set (`aural_trainer::toy`): the loss decreases,
//! checkpoints appear and load, a resumed run equals an uninterrupted one bit for bit (CPU), a
//! checkpoint killed mid-write is never read, and bad data is reported before training.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aural_models::ast_sed::AstSed;
use aural_runtime::testing::fixture_path;
use aural_runtime::Device;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aural-sed-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn classes() -> Vec<String> {
    ["Alarm_bell_ringing", "Cat", "Dog", "Speech", "Vacuum_cleaner"].iter().map(|s| s.to_string()).collect()
}

/// The toy layout (1.5 s clips: longer than the 1.28 s window, so crops happen) and a config.
fn setup(dir: &Path, extra: &str) -> PathBuf {
    aural_trainer::toy::write_layout(&dir.join("data"), &classes(), 6, 1.5, 16000, 7).unwrap();
    let cfg = format!(
        r#"
[model]
init = "{model}"

[data]
strong = {{ audio = "data/strong", tsv = "data/strong.tsv" }}
weak = {{ audio = "data/weak", tsv = "data/weak.tsv" }}
unlabeled = {{ audio = "data/unlabeled" }}
validation = {{ audio = "data/validation", tsv = "data/validation.tsv", durations = "data/validation_durations.tsv" }}
workers = 2

[train]
seed = 3
batch = {{ strong = 2, weak = 2, unlabeled = 2 }}
epochs = 4
lr = 2e-3
lr_ast = 5e-4
clip_grad_norm = 5.0
[train.mean_teacher]
rampup_steps = 4

[augment.mixup]
p = 0.5
[augment.time_shift]
[augment.time_mask]
max_width = 20
[augment.freq_mask]
max_width = 8
[augment.filter_augment]
[augment.gain]
{extra}
"#,
        model = fixture_path("ast_sed_small").display()
    );
    let p = dir.join("train.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "trainer failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn log(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn trains_validates_and_writes_loadable_checkpoints() {
    let d = tmp("e2e");
    let cfg = setup(&d, "");
    let run = d.join("run");
    let o = trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]);
    ok(&o);
    let l = log(&run);
    // 6 clips per set, 2 per batch: 3 steps per epoch, 4 epochs.
    assert_eq!(l.len(), 12, "{l:?}");
    for (i, v) in l.iter().enumerate() {
        assert_eq!(v["step"].as_u64(), Some(i as u64 + 1));
        for k in ["loss", "loss_supervised", "lr", "seconds"] {
            assert!(v[k].as_f64().is_some_and(f64::is_finite), "{k} in {v}");
        }
    }
    let sup: Vec<f64> = l.iter().map(|v| v["loss_supervised"].as_f64().unwrap()).collect();
    let (first, last) = (sup[..3].iter().sum::<f64>() / 3.0, sup[9..].iter().sum::<f64>() / 3.0);
    assert!(last < first * 0.9, "the supervised loss did not decrease: {sup:?}");
    // Validation every epoch, student and teacher, with the metrics.
    let v: Vec<Value> = std::fs::read_to_string(run.join("validation.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v.iter().map(|x| x["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 6, 9, 12]);
    for who in ["student", "teacher"] {
        assert!(v[3][who]["psds1"].is_number() && v[3][who]["event_f1"].is_number() || v[3][who]["event_f1"].is_null(), "{}", v[3]);
    }
    assert!(run.join("curves.png").exists());
    // Both checkpoints load as `aural detect` loads them and give scores.
    for ck in ["last", "best"] {
        let m = AstSed::load(run.join(ck), Device::Cpu).unwrap_or_else(|e| panic!("{ck}: {e}"));
        let sc = m.detect(&vec![0.01f32; 16000], &Default::default()).unwrap();
        assert!(sc.weak.iter().all(|p| p.is_finite()));
    }
    // A new run into the same directory is refused.
    let o = trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--resume"));
}

#[test]
fn resume_equals_an_uninterrupted_run_bit_for_bit() {
    let d = tmp("resume");
    let cfg = setup(&d, "");
    let (a, b) = (d.join("a"), d.join("b"));
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", a.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "5"]));
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", b.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "2"]));
    ok(&trainer(&["sed", "--resume", b.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "5"]));
    let (la, lb) = (log(&a), log(&b));
    assert_eq!(la.len(), 5);
    assert_eq!(lb.len(), 5);
    for (x, y) in la.iter().zip(&lb) {
        for k in ["step", "loss", "loss_supervised", "loss_consistency", "lr", "grad_norm"] {
            assert_eq!(x[k], y[k], "{k} differs at step {}", x["step"]);
        }
    }
    let wa = std::fs::read(a.join("last/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("last/model.safetensors")).unwrap();
    assert!(wa == wb, "the teacher weights after 5 steps differ");
    let sa = std::fs::read(a.join("last/trainer_state.safetensors")).unwrap();
    let sb = std::fs::read(b.join("last/trainer_state.safetensors")).unwrap();
    assert!(sa == sb, "the student weights / optimizer state after 5 steps differ");
}

#[test]
fn an_unfinished_checkpoint_is_never_read() {
    let d = tmp("kill");
    let cfg = setup(&d, "");
    let run = d.join("run");
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "3"]));
    // A write killed before its swap: a partial temp directory beside last/.
    std::fs::create_dir_all(run.join(".last.tmp")).unwrap();
    std::fs::write(run.join(".last.tmp/model.safetensors"), b"garbage").unwrap();
    ok(&trainer(&["sed", "--resume", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "4"]));
    assert_eq!(log(&run).len(), 4);
    // Killed between the two renames: only .last.old exists; resuming reads it.
    std::fs::rename(run.join("last"), run.join(".last.old")).unwrap();
    ok(&trainer(&["sed", "--resume", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "5"]));
    assert!(run.join("last").is_dir() && !run.join(".last.old").exists());
    assert_eq!(log(&run).len(), 5);
    // Real kills at random moments: whatever survives is a complete checkpoint.
    for delay_ms in [300u64, 900, 1500, 2500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trainer"))
            .args(["sed", "--resume", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "30"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let ck = if run.join("last").is_dir() { run.join("last") } else { run.join(".last.old") };
        AstSed::load(&ck, Device::Cpu).unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
        let st: Value = serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap()).unwrap();
        assert!(st["step"].as_u64().unwrap() >= 5);
    }
    ok(&trainer(&["sed", "--resume", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "12"]));
}

#[test]
fn bad_data_is_reported_before_training() {
    let d = tmp("bad");
    let cfg = setup(&d, "");
    let run = |name: &str| {
        let o = trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", d.join(name).to_str().unwrap(), "--device", "cpu", "--quiet"]);
        assert!(!o.status.success());
        assert!(!d.join(name).join("log.jsonl").exists(), "training started");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let tsv = d.join("data/strong.tsv");
    let good = std::fs::read_to_string(&tsv).unwrap();
    std::fs::write(&tsv, format!("{good}s0.wav\t0.1\t0.5\tTrain\n")).unwrap();
    let e = run("r1");
    assert!(e.contains("strong.tsv:") && e.contains("'Train' is not in the class list"), "{e}");
    std::fs::write(&tsv, format!("{good}s0.wav\t0.1\t1.9\tDog\n")).unwrap();
    let e = run("r2");
    assert!(e.contains("strong.tsv:") && e.contains("after the clip's end"), "{e}");
    std::fs::write(&tsv, format!("{good}missing.wav\t0.1\t0.9\tDog\n")).unwrap();
    let e = run("r3");
    assert!(e.contains("'missing' has no WAV"), "{e}");
    std::fs::write(&tsv, &good).unwrap();
    std::fs::write(d.join("data/unlabeled/u0.wav"), b"RIFF\x10\x00\x00\x00WAVEfmt ").unwrap();
    let e = run("r4");
    assert!(e.contains("u0.wav"), "{e}");
    std::fs::remove_file(d.join("data/unlabeled/u0.wav")).unwrap();
    // Config errors name the key.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("lr = 2e-3", "lr = 2e-3\nlearning_rate = 1")).unwrap();
    let e = run("r5");
    assert!(e.contains("learning_rate"), "{e}");
    std::fs::write(&cfg, text.replace("batch = { strong = 2, weak = 2, unlabeled = 2 }", "batch = { strong = 2, unlabeled = 2 }")).unwrap();
    let e = run("r6");
    assert!(e.contains("batch.weak"), "{e}");
}
