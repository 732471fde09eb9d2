//! `trainer separator` end to end on a small ResUNet30 (the golden fixture `separator_train_small`:
//! 4 → 1 channels, n_fft 256, widths ≤ 12) and generated 4-channel mixtures
//! (`aural_trainer::toy::write_premixed`): the validation CA-SDRi rises over two epochs, the
//! checkpoints load in `aural separate`'s model, a resumed run equals an uninterrupted one bit for bit
//! (CPU), and bad data is reported before training.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aural_models::separator::ResUNet;
use aural_runtime::testing::fixture_path;
use aural_runtime::Device;
use serde_json::Value;

/// A fresh directory, removed when the returned guard drops (also when the test fails).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-sep-train-{name}-")).tempdir().unwrap()
}

fn classes() -> Vec<String> {
    aural_models::separator::S5_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// 16 training and 4 validation mixtures of 1 s, and a config (batch 2: 8 steps per epoch).
fn setup(dir: &Path, steps: u64) -> PathBuf {
    aural_trainer::toy::write_premixed(&dir.join("train"), &classes(), 16, 1.0, 32000, 4, 3).unwrap();
    aural_trainer::toy::write_premixed(&dir.join("val"), &classes(), 4, 1.0, 32000, 4, 4).unwrap();
    let cfg = format!(
        r#"
[model]
init = "{}"
[data]
train = {{ soundscape = "train/soundscape", oracle_target = "train/oracle_target" }}
validation = {{ soundscape = "val/soundscape", oracle_target = "val/oracle_target" }}
[train]
seed = 0
batch = 2
steps = {steps}
lr = 1e-2
"#,
        fixture_path("separator_train_small").display()
    );
    let p = dir.join("sep.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "trainer failed:\n{}", String::from_utf8_lossy(&o.stderr));
}

fn lines(run: &Path, file: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join(file)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn validation_sdri_rises_and_checkpoints_load() {
    let tmp_dir = tmp("rise");
    let d = tmp_dir.path();
    let cfg = setup(&d, 16);
    let run = d.join("run");
    let o = trainer(&["separator", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]);
    ok(&o);
    let log = lines(&run, "log.jsonl");
    assert_eq!(log.len(), 16);
    assert!(log.iter().all(|l| l["loss"].as_f64().unwrap().is_finite() && l["grad_norm"].as_f64().unwrap() > 0.0));
    let val = lines(&run, "validation.jsonl");
    assert_eq!(val.iter().map(|v| v["step"].as_u64().unwrap()).collect::<Vec<_>>(), [8, 16], "validation after each epoch");
    let s: Vec<f64> = val.iter().map(|v| v["ca_sdri"].as_f64().unwrap()).collect();
    eprintln!("validation CA-SDRi per epoch: {s:?}; losses {:?}", log.iter().map(|l| l["loss"].as_f64().unwrap()).collect::<Vec<_>>());
    assert!(s[1] > s[0] + 0.2, "the validation CA-SDRi did not rise over two epochs: {s:?}");
    assert_eq!(val[1]["label_accuracy"].as_f64(), Some(100.0));
    for ck in ["last", "best"] {
        let m = ResUNet::load(run.join(ck), Device::Cpu).unwrap();
        assert!(m.unexpected.is_empty(), "{ck}: {:?}", m.unexpected);
    }
    // The running statistics moved (training-mode BatchNorm updates them), the weights too.
    let a = aural_runtime::safetensors_io::load(fixture_path("separator_train_small").join("model.safetensors")).unwrap();
    let b = aural_runtime::safetensors_io::load(run.join("last/model.safetensors")).unwrap();
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for k in ["base.bn0.running_mean", "base.encoder_block1.conv_block1.bn1.running_var", "base.pre_conv.weight"] {
        assert_ne!(a[k].to_vec().unwrap(), b[k].to_vec().unwrap(), "{k} did not change");
    }
    assert!(run.join("curves.png").exists());
}

#[test]
fn resume_equals_an_uninterrupted_run_bit_for_bit() {
    let tmp_dir = tmp("resume");
    let d = tmp_dir.path();
    let cfg = setup(&d, 6);
    // With amsgrad: its running maximum travels through the checkpoint too.
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("lr = 1e-2", "lr = 1e-2\namsgrad = true")).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    let c = cfg.to_str().unwrap();
    ok(&trainer(&["separator", "--config", c, "--out", a.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "5"]));
    ok(&trainer(&["separator", "--config", c, "--out", b.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "2"]));
    ok(&trainer(&["separator", "--resume", b.to_str().unwrap(), "--device", "cpu", "--quiet", "--max-steps", "5"]));
    let (la, lb) = (lines(&a, "log.jsonl"), lines(&b, "log.jsonl"));
    assert_eq!((la.len(), lb.len()), (5, 5));
    for (x, y) in la.iter().zip(&lb) {
        for k in ["step", "loss", "lr", "grad_norm"] {
            assert_eq!(x[k], y[k], "{k} differs at step {}", x["step"]);
        }
    }
    for f in ["last/model.safetensors", "last/trainer_state.safetensors"] {
        assert!(std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(), "{f} after 5 steps differs");
    }
    let st = aural_runtime::safetensors_io::load(a.join("last/trainer_state.safetensors")).unwrap();
    assert!(st.keys().any(|k| k.starts_with("adam.max_exp_avg_sq/")), "amsgrad's maximum is not in the checkpoint");
}

#[test]
fn bad_data_is_reported_before_training() {
    let tmp_dir = tmp("bad");
    let d = tmp_dir.path();
    let cfg = setup(&d, 4);
    // A mixture with 2 channels (the model takes 4).
    let p = d.join("train/soundscape/m3.wav");
    let spec = hound::WavSpec { channels: 2, sample_rate: 32000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&p, spec).unwrap();
    for _ in 0..32000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let o = trainer(&["separator", "--config", cfg.to_str().unwrap(), "--out", d.join("r").to_str().unwrap(), "--device", "cpu", "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("m3.wav") && err.contains("2 channels"), "{err}");
    assert!(!d.join("r/last").exists());
    // A reference whose label is not a class.
    std::fs::write(d.join("train/oracle_target/m1_Kazoo.wav"), b"RIFF").unwrap();
    let o = trainer(&["separator", "--config", cfg.to_str().unwrap(), "--out", d.join("r2").to_str().unwrap(), "--device", "cpu", "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("m1_Kazoo.wav"), "{err}");
    // A typo in the config.
    std::fs::write(d.join("typo.toml"), std::fs::read_to_string(&cfg).unwrap().replace("lr = ", "lrate = ")).unwrap();
    let o = trainer(&["separator", "--config", d.join("typo.toml").to_str().unwrap(), "--out", d.join("r3").to_str().unwrap(), "--device", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("lrate"), "{err}");
}

/// A CP-JKU separator (the golden fixture cpjku/e2e_sed: iterative with 2 passes, additive time-FiLM,
/// injection "add", DPRNN) conditioned by its stage-2 SED model (m2d_sed_small), on 10 s mixtures:
/// two steps run (the number of passes drawn per step), the loss is finite, validation scores, the
/// checkpoint loads; without `[model] sed` the error says what is missing.
#[test]
fn a_cpjku_separator_trains_with_its_sed_model() {
    let tmp_dir = tmp("cpjku");
    let d = tmp_dir.path();
    aural_trainer::toy::write_premixed(&d.join("train"), &classes(), 2, 10.0, 32000, 4, 5).unwrap();
    let cfg = format!(
        r#"
[model]
init = "{}"
sed = "{}"
[data]
train = {{ soundscape = "train/soundscape", oracle_target = "train/oracle_target" }}
validation = {{ soundscape = "train/soundscape", oracle_target = "train/oracle_target" }}
[train]
batch = 1
steps = 2
lr = 1e-3
"#,
        fixture_path("cpjku/e2e_sed").display(),
        fixture_path("m2d_sed_small").display()
    );
    std::fs::write(d.join("sep.toml"), &cfg).unwrap();
    let run = d.join("run");
    ok(&trainer(&["separator", "--config", d.join("sep.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]));
    let log = lines(&run, "log.jsonl");
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|l| l["loss"].as_f64().unwrap().is_finite()));
    let val = lines(&run, "validation.jsonl");
    assert!(val.last().unwrap()["ca_sdri"].as_f64().unwrap().is_finite());
    let m = ResUNet::load(run.join("last"), Device::Cpu).unwrap();
    assert!(m.unexpected.is_empty(), "{:?}", m.unexpected);
    let no_sed: String = cfg.lines().filter(|l| !l.starts_with("sed =")).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("nosed.toml"), no_sed).unwrap();
    let o = trainer(&["separator", "--config", d.join("nosed.toml").to_str().unwrap(), "--out", d.join("r2").to_str().unwrap(), "--device", "cpu", "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("[model] sed"), "{err}");
}

/// Starting from AudioSep's shape (the 1-channel, query-conditioned fixture `separator/audiosep_1ch`)
/// a 4-channel, label-conditioned separator with out_conv: pre_conv repeated over the channels and
/// divided by 4, after_conv repeated per channel, the label embedding and out_conv fresh (torch's
/// default bounds), the rest copied; the fresh layers train at lr, the copied at lr × 0.2; a short run
/// trains and writes a loadable checkpoint.
#[test]
fn an_audiosep_checkpoint_is_adapted_to_four_channels() {
    use aural_models::separator::SeparatorConfig;
    use aural_trainer::separator::adapt_checkpoint;
    let src_dir = fixture_path("separator/audiosep_1ch");
    let from = SeparatorConfig::from_file(src_dir.join("config.json")).unwrap();
    let target = SeparatorConfig {
        input_channels: 4,
        output_channels: 1,
        out_conv: true,
        conditioning: aural_models::separator::Conditioning::Label,
        label_len: 18,
        ..from.clone()
    };
    let (src, _) = aural_runtime::safetensors_io::load_checkpoint_dir(&src_dir).unwrap();
    let a = adapt_checkpoint(&target, &from, &src, 0).unwrap(); // the run below has seed 0
    let pc = a.tensors["base.pre_conv.weight"].to_vec().unwrap();
    let ps = src["base.pre_conv.weight"].to_vec().unwrap();
    assert_eq!(a.tensors["base.pre_conv.weight"].shape(), [4, 4, 1, 1]);
    for o in 0..4 {
        for c in 0..4 {
            assert_eq!(pc[o * 4 + c], ps[o] / 4.0);
        }
    }
    let ac = a.tensors["base.after_conv.weight"].to_vec().unwrap();
    let asrc = src["base.after_conv.weight"].to_vec().unwrap();
    assert_eq!(a.tensors["base.after_conv.weight"].shape(), [12, 4, 1, 1]);
    for c in 0..4 {
        for k in 0..3 {
            assert_eq!(ac[(c * 3 + k) * 4..][..4], asrc[k * 4..][..4], "after_conv row ({c}, {k})");
        }
    }
    assert_eq!(
        a.tensors["base.encoder_block3.conv_block1.conv1.weight"].to_vec().unwrap(),
        src["base.encoder_block3.conv_block1.conv1.weight"].to_vec().unwrap()
    );
    let mut fresh = a.fresh.clone();
    fresh.sort();
    assert_eq!(
        fresh,
        ["base.out_conv.bias", "base.out_conv.weight"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..5).filter(|i| *i != 2).flat_map(|i| [format!("label_embedding.{i}.bias"), format!("label_embedding.{i}.weight")]))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let le = a.tensors["label_embedding.0.weight"].to_vec().unwrap();
    let bound = 1.0 / (18f32).sqrt();
    assert!(le.iter().all(|v| v.abs() <= bound) && le.iter().any(|v| v.abs() > 0.5 * bound), "Linear(18, …) draws U(±1/√18)");
    assert!(a.tensors["label_embedding.1.weight"].to_vec().unwrap().iter().all(|&v| v == 1.0), "LayerNorm weight 1");
    assert!(a.pretrained.contains("film.encoder_block1->conv_block1->beta1.weight") && !a.pretrained.contains("base.out_conv.weight"));

    // A short run from the adapted weights, with the pretrained tensors at lr × 0.2.
    let tmp_dir = tmp("adapt");
    let d = tmp_dir.path();
    aural_trainer::toy::write_premixed(&d.join("train"), &classes(), 4, 1.0, 32000, 4, 6).unwrap();
    std::fs::write(d.join("target.json"), serde_json::to_string(&target).unwrap()).unwrap();
    let cfg = format!(
        "[model]\ninit = \"{}\"\nconfig = \"target.json\"\n[data]\ntrain = {{ soundscape = \"train/soundscape\", oracle_target = \"train/oracle_target\" }}\n[train]\nbatch = 2\nsteps = 2\nlr = 1e-3\npretrained_lr_factor = 0.2\n",
        src_dir.display()
    );
    std::fs::write(d.join("sep.toml"), cfg).unwrap();
    let run = d.join("run");
    let o = trainer(&["separator", "--config", d.join("sep.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fresh"), "{err}");
    let m = ResUNet::load(run.join("last"), Device::Cpu).unwrap();
    assert_eq!(m.config.input_channels, 4);
    assert!(lines(&run, "log.jsonl").iter().all(|l| l["loss"].as_f64().unwrap().is_finite()));
    // Adam moves each weight by about lr per step: after 2 steps the copied FiLM layer by ≤ 2.5·2e-4,
    // the fresh label embedding by more than 1e-3 somewhere.
    let w = aural_runtime::safetensors_io::load(run.join("last/model.safetensors")).unwrap();
    let moved = |k: &str| w[k].to_vec().unwrap().iter().zip(a.tensors[k].to_vec().unwrap()).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    let (old, new) = (moved("film.encoder_block1->conv_block1->beta1.weight"), moved("label_embedding.0.weight"));
    assert!(old > 0.0 && old <= 2.5 * 2e-4 && new > 1e-3, "pretrained moved {old:e}, fresh {new:e}");
}

/// Mixing on the fly (`[data] train = { mix = DIR }`): dry sources and a background spatialised by
/// simulated shoebox rooms; two steps run and validate on a pre-mixed set, and the run is a
/// function of the seed (a second run gives the same losses).
#[test]
fn mixtures_made_on_the_fly_train() {
    let tmp_dir = tmp("mix");
    let d = tmp_dir.path();
    aural_trainer::toy::write_sources(&d.join("dry"), &classes(), 2, 32000, 8).unwrap();
    aural_trainer::toy::write_premixed(&d.join("val"), &classes(), 2, 1.0, 32000, 4, 4).unwrap();
    let cfg = format!(
        "[model]\ninit = \"{}\"\n[data]\ntrain = {{ mix = \"dry\", seconds = 1.0, mixtures_per_epoch = 4 }}\nvalidation = {{ soundscape = \"val/soundscape\", oracle_target = \"val/oracle_target\" }}\n[train]\nbatch = 2\nsteps = 2\nlr = 1e-3\n",
        fixture_path("separator_train_small").display()
    );
    std::fs::write(d.join("sep.toml"), cfg).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    for r in [&a, &b] {
        ok(&trainer(&["separator", "--config", d.join("sep.toml").to_str().unwrap(), "--out", r.to_str().unwrap(), "--device", "cpu", "--quiet"]));
    }
    let (la, lb) = (lines(&a, "log.jsonl"), lines(&b, "log.jsonl"));
    assert_eq!(la.len(), 2);
    for (x, y) in la.iter().zip(&lb) {
        assert!(x["loss"].as_f64().unwrap().is_finite());
        assert_eq!(x["loss"], y["loss"]);
    }
    assert!(lines(&a, "validation.jsonl").last().unwrap()["ca_sdri"].as_f64().unwrap().is_finite());
}

/// A ResUNetK (3 sources per pass; adapted from the 1-source fixture with `[model] config`) trains on
/// pre-mixed data with every label of a mixture in its slots (the baseline's masked loss) and
/// validates with one pass per mixture.
#[test]
fn a_resunetk_trains_on_all_labels_of_a_mixture() {
    use aural_models::separator::SeparatorConfig;
    let tmp_dir = tmp("resunetk");
    let d = tmp_dir.path();
    aural_trainer::toy::write_premixed(&d.join("train"), &classes(), 4, 0.5, 32000, 4, 12).unwrap();
    let src = fixture_path("separator_train_small");
    let from = SeparatorConfig::from_file(src.join("config.json")).unwrap();
    let k = SeparatorConfig { target_sources_num: 3, label_len: 54, ..from };
    std::fs::write(d.join("k.json"), serde_json::to_string(&k).unwrap()).unwrap();
    let cfg = format!(
        "[model]\ninit = \"{}\"\nconfig = \"k.json\"\n[data]\ntrain = {{ soundscape = \"train/soundscape\", oracle_target = \"train/oracle_target\" }}\nvalidation = {{ soundscape = \"train/soundscape\", oracle_target = \"train/oracle_target\" }}\n[train]\nbatch = 2\nsteps = 4\nlr = 3e-3\n",
        src.display()
    );
    std::fs::write(d.join("sep.toml"), cfg).unwrap();
    let run = d.join("run");
    ok(&trainer(&["separator", "--config", d.join("sep.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]));
    let log = lines(&run, "log.jsonl");
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|l| l["loss"].as_f64().unwrap().is_finite()));
    let val = lines(&run, "validation.jsonl");
    assert!(val.iter().all(|v| v["ca_sdri"].as_f64().unwrap().is_finite()));
    assert_eq!(ResUNet::load(run.join("last"), Device::Cpu).unwrap().config.target_sources_num, 3);
}
