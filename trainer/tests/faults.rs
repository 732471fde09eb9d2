//! Faults during training (CPU, the small AST-SED of the golden fixtures on the toy data set):
//! - `kill -9` (SIGKILL) at seeded random moments of a run, resumed after each kill: the run ends
//!   with exactly the weights, optimizer state, best checkpoint and losses of an uninterrupted run.
//! - A full disk while a checkpoint is written (a file-size limit, `ulimit -f`, with SIGXFSZ ignored so
//!   that `write` fails with EFBIG): the trainer stops with a nonzero status and one line naming the
//!   file, the previous checkpoint is intact, and resuming without the limit finishes the run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aural_runtime::testing::fixture_path;
use serde_json::Value;

/// A fresh directory, removed when the returned guard drops (also when the test fails). The
/// trainer processes a test starts (and kills) write into it; the test owns it.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-faults-{name}-")).tempdir().unwrap()
}

/// Steps of the test run.
const STEPS: u64 = 16;

/// The toy layout and a config of [`STEPS`] steps (4 clips per set, batches of 2: 2 steps per epoch, 8
/// epochs), validated and checkpointed every 2 steps.
fn setup(dir: &Path) -> PathBuf {
    let classes: Vec<String> = ["Alarm_bell_ringing", "Cat", "Dog", "Speech", "Vacuum_cleaner"].iter().map(|s| s.to_string()).collect();
    aural_trainer::toy::write_layout(&dir.join("data"), &classes, 4, 1.5, 16000, 7).unwrap();
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
seed = 5
batch = {{ strong = 2, weak = 2, unlabeled = 2 }}
epochs = 8
lr = 2e-3
lr_ast = 5e-4
[train.mean_teacher]
rampup_steps = 4

[validation]
every_steps = 2

[augment.mixup]
p = 0.5
[augment.time_mask]
max_width = 20
[augment.gain]
"#,
        model = fixture_path("ast_sed_small").display()
    );
    let p = dir.join("train.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
}

fn args<'a>(run: &'a Path, cfg: &'a Path, resume: bool) -> Vec<&'a str> {
    let mut a = vec!["sed", "--device", "cpu", "--quiet"];
    if resume {
        a.extend(["--resume", run.to_str().unwrap()]);
    } else {
        a.extend(["--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    }
    a
}

fn ok(o: &Output) {
    assert!(o.status.success(), "trainer failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// Whether `run` holds a complete `last` checkpoint (as the trainer finds it).
fn has_checkpoint(run: &Path) -> bool {
    run.join("last").is_dir() || run.join(".last.old").is_dir()
}

fn checkpoint_step(run: &Path) -> Option<u64> {
    let d = if run.join("last").is_dir() { run.join("last") } else { run.join(".last.old") };
    let st: Value = serde_json::from_str(&std::fs::read_to_string(d.join("trainer_state.json")).ok()?).ok()?;
    st["step"].as_u64()
}

/// Every file of a finished run that must not depend on interruptions: the checkpoints, and the logged
/// losses without their timings.
fn outcome(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in ["last/model.safetensors", "last/trainer_state.safetensors", "last/trainer_state.json", "best/model.safetensors", "best/metrics.json"] {
        out.push((f.to_string(), std::fs::read(run.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", run.display()))));
    }
    let log: Vec<String> = std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "clips_per_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v.to_string()
        })
        .collect();
    out.push(("log.jsonl".into(), log.join("\n").into_bytes()));
    out
}

/// splitmix64: the test's reproducible random moments.
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// The highest step in RUN/log.jsonl (0: none), reading complete lines only.
fn logged_step(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("log.jsonl")).unwrap_or_default();
    text.lines().map_while(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|v| v["step"].as_u64()).max().unwrap_or(0)
}

#[test]
fn kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let tmp_dir = tmp("kill9");
    let d = tmp_dir.path();
    let cfg = setup(&d);
    let (reference, run) = (d.join("reference"), d.join("run"));
    let t0 = Instant::now();
    ok(&trainer().args(args(&reference, &cfg, false)).output().unwrap());
    let (t_ref, end) = (t0.elapsed(), STEPS);
    let step_time = t_ref / end as u32;
    // Each kill: a random step 1–3 steps past the last one logged before the (re)start (never the
    // last step), then a random 0–1.5 steps' time more, so the moments fall within steps, validations
    // and checkpoint writes alike; seeded, so the same moments every time (up to timing).
    let mut rng = 21u64;
    let mut kills = Vec::new();
    while kills.len() < 4 {
        let logged = logged_step(&run);
        if logged + 1 >= end {
            break;
        }
        let target = (logged + 1 + (next(&mut rng) * 3.0) as u64).min(end - 1);
        let extra = step_time.mul_f64(1.5 * next(&mut rng));
        let resume = has_checkpoint(&run);
        let mut child = trainer().args(args(&run, &cfg, resume)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Lines after the checkpoint's step are dropped when the run restarts: wait for a new one.
        let t = Instant::now();
        while logged_step(&run) < target {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("the run ended ({st}) before reaching step {target} for kill {}", kills.len() + 1);
            }
            assert!(t.elapsed() < Duration::from_secs(120), "step {target} not reached in 120 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(extra);
        if child.try_wait().unwrap().is_some() {
            break; // Finished within the extra time: no kill.
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills.push((target, extra, resume, checkpoint_step(&run)));
    }
    eprintln!("uninterrupted run: {t_ref:?}; kills (after step, + time, resumed, checkpoint step left): {kills:?}");
    assert!(kills.len() >= 3, "only {} kills: {kills:?}", kills.len());
    ok(&trainer().args(args(&run, &cfg, has_checkpoint(&run))).output().unwrap());
    let (a, b) = (outcome(&reference), outcome(&run));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between the uninterrupted run and the run killed {} times ({kills:?})", kills.len());
    }
}

#[test]
fn a_full_disk_during_a_checkpoint_stops_cleanly_and_keeps_the_previous_one() {
    let tmp_dir = tmp("full");
    let d = tmp_dir.path();
    let cfg = setup(&d);
    let run = d.join("run");
    ok(&trainer().args(args(&run, &cfg, false)).args(["--max-steps", "2"]).output().unwrap());
    let before: Vec<(String, Vec<u8>)> = ["last", "best"]
        .iter()
        .flat_map(|c| std::fs::read_dir(run.join(c)).unwrap().map(|e| e.unwrap().path()))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(before.len() >= 6, "{before:?}");
    // Files of at most 200 kB (400 blocks of 512 bytes): the logs fit, the 780 kB model.safetensors does
    // not. SIGXFSZ ignored (inherited through exec): the write fails with EFBIG instead of a signal.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -f 400 && trap '' XFSZ && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_trainer")]);
    let o = cmd.args(args(&run, &cfg, true)).args(["--max-steps", "4"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the trainer succeeded with a full disk: {err}");
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or("");
    eprintln!("the full disk's message: {last}");
    assert!(last.starts_with("trainer: writing checkpoint ") && last.contains("File too large"), "{err}");
    assert!(last.contains(&run.display().to_string()) && last.contains("model.safetensors"), "the message does not name the file: {last}");
    assert_eq!(err.lines().filter(|l| l.contains("File too large")).count(), 1, "{err}");
    // The previous checkpoints are untouched, the unfinished one is gone.
    assert!(!run.join(".last.tmp").exists() && !run.join(".best.tmp").exists());
    for (p, bytes) in &before {
        assert!(std::fs::read(p).is_ok_and(|b| &b == bytes), "{p} changed after the failed write");
    }
    assert_eq!(checkpoint_step(&run), Some(2));
    // Without the limit the run continues from step 2 to the end.
    ok(&trainer().args(args(&run, &cfg, true)).args(["--max-steps", "4"]).output().unwrap());
    assert_eq!(checkpoint_step(&run), Some(4));
    assert!(!run.join(".last.tmp").exists() && !run.join(".best.tmp").exists());
}
