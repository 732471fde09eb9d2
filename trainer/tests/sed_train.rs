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

/// A fresh directory, removed when the returned guard drops (also when the test fails).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-sed-train-{name}-")).tempdir().unwrap()
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
    let tmp_dir = tmp("e2e");
    let d = tmp_dir.path();
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
    let tmp_dir = tmp("resume");
    let d = tmp_dir.path();
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
    let tmp_dir = tmp("kill");
    let d = tmp_dir.path();
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
    let tmp_dir = tmp("bad");
    let d = tmp_dir.path();
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
    std::fs::write(d.join("data/validation/v1.wav"), b"RIFF").unwrap();
    let e = run("r4b");
    assert!(e.contains("validation") && e.contains("v1.wav"), "{e}");
    std::fs::remove_file(d.join("data/validation/v1.wav")).unwrap();
    // Config errors name the key.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("lr = 2e-3", "lr = 2e-3\nlearning_rate = 1")).unwrap();
    let e = run("r5");
    assert!(e.contains("learning_rate"), "{e}");
    std::fs::write(&cfg, text.replace("batch = { strong = 2, weak = 2, unlabeled = 2 }", "batch = { strong = 2, unlabeled = 2 }")).unwrap();
    let e = run("r6");
    assert!(e.contains("batch.weak"), "{e}");
}

/// The student's tensors of a run's last checkpoint (trainer_state holds them when the teacher is saved).
fn student(run: &Path) -> std::collections::BTreeMap<String, aural_runtime::Tensor> {
    aural_runtime::safetensors_io::load(run.join("last/trainer_state.safetensors"))
        .unwrap()
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("student/").map(|n| (n.to_string(), v)))
        .collect()
}

#[test]
fn frozen_blocks_do_not_move_and_the_feature_cache_changes_nothing() {
    let tmp_dir = tmp("freeze");
    let d = tmp_dir.path();
    let cfg = setup(&d, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("clip_grad_norm = 5.0", "clip_grad_norm = 5.0\nfreeze_ast_blocks = 1\naccumulate = 2")
            .replace("workers = 2", "workers = 2\ncache = \"cache\""),
    )
    .unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", a.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "3"]));
    let cached = std::fs::read_dir(d.join("cache")).unwrap().count();
    assert!(cached >= 18, "{cached} cached feature files");
    // A second run reads the cache: the same losses.
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", b.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "3"]));
    let (la, lb) = (log(&a), log(&b));
    assert_eq!(la.len(), 3);
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x["loss"], y["loss"]);
    }
    let init = aural_runtime::safetensors_io::load(fixture_path("ast_sed_small").join("model.safetensors")).unwrap();
    let s = student(&a);
    let mut moved = Vec::new();
    for (name, t) in &s {
        let same = t.to_vec().unwrap() == init[name].to_vec().unwrap();
        let frozen = name.starts_with("ast.embeddings.") || name.starts_with("ast.encoder.layer.0.");
        if frozen {
            assert!(same, "{name} is frozen but changed");
        } else if !same {
            moved.push(name.clone());
        }
    }
    assert!(moved.iter().any(|n| n.starts_with("ast.encoder.layer.1.")) && moved.iter().any(|n| n.starts_with("head.")), "{moved:?}");
}

#[test]
fn a_nan_loss_names_the_step_the_files_and_the_op() {
    let tmp_dir = tmp("nan");
    let d = tmp_dir.path();
    let cfg = setup(&d, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("lr = 2e-3\nlr_ast = 5e-4\nclip_grad_norm = 5.0", "lr = 1e30")).unwrap();
    let o = trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", d.join("run").to_str().unwrap(), "--device", "cpu", "--quiet"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("step 2") && e.contains(".wav") && e.contains("the loss is"), "{e}");
    assert!(e.contains("the first op of this pass that produced NaN/inf"), "{e}");
}

#[test]
fn init_from_an_hf_ast_checkpoint() {
    // An HF AST directory: the small fixture's AST part under HF names and its `ast` config.
    let tmp_dir = tmp("hf");
    let d = tmp_dir.path();
    let hf = d.join("hf-ast");
    std::fs::create_dir_all(&hf).unwrap();
    let src = fixture_path("ast_sed_small");
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    std::fs::write(hf.join("config.json"), cfg["ast"].to_string()).unwrap();
    let t = aural_runtime::safetensors_io::load(src.join("model.safetensors")).unwrap();
    let ast: Vec<(String, aural_runtime::Tensor)> = t.iter().filter_map(|(k, v)| k.strip_prefix("ast.").map(|n| (n.to_string(), v.clone()))).collect();
    aural_runtime::safetensors_io::save(hf.join("model.safetensors"), ast.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    let new: toml::Table = toml::from_str(
        "architecture = \"ast-sed\"\nast_layers = 2\nfte_layers = 2\nfte_heads = 4\nfte_mlp = 96\nfte_max_frames = 16\nupsample = 3\ngru_hidden = 24",
    )
    .unwrap();
    let m = aural_trainer::sed::init_from_ast(&hf, &new, Some(&classes()), 5, Device::Cpu).unwrap();
    let get = |n: &str| m.store.get(n).unwrap().value().to_vec().unwrap();
    for (k, v) in &ast {
        if m.store.contains(&format!("ast.{k}")) {
            assert_eq!(get(&format!("ast.{k}")), v.to_vec().unwrap(), "{k}");
        }
    }
    let max_abs = |v: &[f32]| v.iter().fold(0f32, |a, x| a.max(x.abs()));
    assert!(get("fte.blocks.0.attn.in_proj_bias").iter().all(|&x| x == 0.0) && get("fte.blocks.1.attn.out_proj.bias").iter().all(|&x| x == 0.0));
    assert!(get("fte.blocks.0.norm1.weight").iter().all(|&x| x == 1.0) && get("fte.blocks.0.norm2.bias").iter().all(|&x| x == 0.0));
    // Bounds of the uniform inits, each nearly reached.
    for (n, bound) in [
        ("fte.blocks.0.attn.in_proj_weight", (6.0f32 / (64.0 + 192.0)).sqrt()),
        ("fte.blocks.0.mlp.fc1.weight", 1.0 / 64f32.sqrt()),
        ("fte.blocks.0.mlp.fc2.weight", 1.0 / 96f32.sqrt()),
        ("lgd.gru.weight_hh_l0_reverse", 1.0 / 24f32.sqrt()),
        ("head.strong.weight", 1.0 / 48f32.sqrt()),
    ] {
        let a = max_abs(&get(n));
        assert!(a <= bound && a > 0.9 * bound, "{n}: max |w| {a}, bound {bound}");
    }
    let cls = get("fte.cls");
    let sd = (cls.iter().map(|x| x * x).sum::<f32>() / cls.len() as f32).sqrt();
    assert!((sd - 0.02).abs() < 0.003, "fte.cls std {sd}");
    // The same seed draws the same model; the trainer runs from it and writes a loadable checkpoint.
    let m2 = aural_trainer::sed::init_from_ast(&hf, &new, Some(&classes()), 5, Device::Cpu).unwrap();
    assert_eq!(m2.store.get("head.attn.weight").unwrap().value().to_vec().unwrap(), get("head.attn.weight"));
    let cfg = setup(&d, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let init_line = text.lines().find(|l| l.starts_with("init = ")).unwrap().to_string();
    let text = text.replace(&init_line, &format!("ast = {:?}\n[model.new]\narchitecture = \"ast-sed\"\nast_layers = 2\nfte_layers = 2\nfte_heads = 4\nfte_mlp = 96\nfte_max_frames = 16\nupsample = 3\ngru_hidden = 24", hf.display().to_string()));
    let text = text.replace("workers = 2", &format!("workers = 2\nclasses = {:?}", classes()));
    std::fs::write(&cfg, text).unwrap();
    let run = d.join("run");
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "2"]));
    AstSed::load(run.join("last"), Device::Cpu).unwrap();
}

#[test]
fn from_scratch() {
    // [model.new] with its [model.new.ast] table: the small fixture's architecture, every weight drawn.
    let tmp_dir = tmp("scratch");
    let d = tmp_dir.path();
    let src = fixture_path("ast_sed_small");
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let mut new: toml::Table = toml::from_str(
        "architecture = \"ast-sed\"\nast_layers = 2\nfte_layers = 2\nfte_heads = 4\nfte_mlp = 96\nfte_max_frames = 16\nupsample = 3\ngru_hidden = 24",
    )
    .unwrap();
    let e = aural_trainer::sed::init_from_scratch(&new, Some(&classes()), 5, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("[model.new.ast]"), "{e}");
    new.insert("ast".into(), toml::Value::try_from(&cfg["ast"]).unwrap());
    let m = aural_trainer::sed::init_from_scratch(&new, Some(&classes()), 5, Device::Cpu).unwrap();
    // the fixture's tensors, names and shapes (of the blocks the model uses)
    let t = aural_runtime::safetensors_io::load(src.join("model.safetensors")).unwrap();
    for (k, v) in &t {
        if m.store.contains(k) {
            assert_eq!(m.store.get(k).unwrap().value().shape(), v.shape(), "{k}");
        }
    }
    let names: Vec<String> = m.store.iter().map(|(n, _)| n.to_string()).collect();
    assert!(names.iter().all(|n| t.contains_key(n)), "{names:?}");
    let get = |n: &str| m.store.get(n).unwrap().value().to_vec().unwrap();
    // HF's init: N(0, 0.02²) weights, zero biases, LayerNorm 1/0, zero embeddings
    for n in [
        "ast.encoder.layer.0.attention.attention.query.weight",
        "ast.encoder.layer.1.intermediate.dense.weight",
        "ast.embeddings.patch_embeddings.projection.weight",
    ] {
        let w = get(n);
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let sd = (w.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / w.len() as f32).sqrt();
        assert!(mean.abs() < 0.002 && (sd - 0.02).abs() < 0.002, "{n}: mean {mean}, std {sd}");
        // a normal, not a uniform of that std (whose |w| stays below 0.0347)
        assert!(w.iter().any(|x| x.abs() > 0.05), "{n}");
    }
    for n in ["ast.encoder.layer.0.attention.output.dense.bias", "ast.embeddings.position_embeddings", "ast.embeddings.cls_token", "ast.layernorm.bias"] {
        assert!(get(n).iter().all(|&x| x == 0.0), "{n}");
    }
    assert!(get("ast.encoder.layer.1.layernorm_before.weight").iter().all(|&x| x == 1.0));
    // the trainer runs from it ([model.new] alone) and writes a checkpoint `aural detect` loads
    let cfgp = setup(&d, "");
    let text = std::fs::read_to_string(&cfgp).unwrap();
    let init_line = text.lines().find(|l| l.starts_with("init = ")).unwrap().to_string();
    let table = toml::to_string(&new).unwrap();
    let text = text.replace(&init_line, &format!("[model.new]\n{}", table.split("[ast]").next().unwrap()));
    let text = text.replace("[data]", &format!("[model.new.ast]\n{}\n[data]", table.split("[ast]").nth(1).unwrap()));
    let text = text.replace("workers = 2", &format!("workers = 2\nclasses = {:?}", classes()));
    std::fs::write(&cfgp, text).unwrap();
    let run = d.join("run");
    ok(&trainer(&["sed", "--config", cfgp.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "2"]));
    let loaded = AstSed::load(run.join("last"), Device::Cpu).unwrap();
    assert_eq!(loaded.config.ast, m.config.ast);
}

#[test]
fn the_emulated_gpu_runs_the_same_step() {
    // The CUDA code path (every tensor on the device) under the CUDA-on-CPU emulator: the first
    // step's losses equal the CPU's up to summation order.
    let tmp_dir = tmp("emu");
    let d = tmp_dir.path();
    let cfg = setup(&d, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // One small batch and no validation set keep the emulator's run short.
    let text = text.replace("batch = { strong = 2, weak = 2, unlabeled = 2 }", "batch = { strong = 1, weak = 1, unlabeled = 1 }");
    let text = text.lines().filter(|l| !l.starts_with("validation = ")).collect::<Vec<_>>().join("\n");
    std::fs::write(&cfg, text).unwrap();
    let (c, e) = (d.join("cpu"), d.join("emu"));
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", c.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "2"]));
    ok(&trainer(&["sed", "--config", cfg.to_str().unwrap(), "--out", e.to_str().unwrap(), "--device", "emu", "--quiet", "--max-steps", "2"]));
    let (lc, le) = (log(&c), log(&e));
    for (x, y) in lc.iter().zip(&le) {
        for k in ["loss", "loss_supervised", "loss_consistency"] {
            let (a, b) = (x[k].as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{k} at step {}: cpu {a}, emu {b}", x["step"]);
        }
    }
    AstSed::load(e.join("last"), Device::Cpu).unwrap();
}
