//! The trainer's checkpoints are what `aural detect` runs: a short `trainer sed` run (the small AST-SED
//! fixture, the toy data set, two epochs) and then `aural detect --model RUN/last` and `RUN/best` on a
//! clip of the toy validation set, with scores equal to the library's on the same checkpoint.

use std::path::PathBuf;
use std::process::Command;

use aural::models::ast_sed::AstSed;
use aural::runtime::testing::fixture_path;
use aural::runtime::Device;
use clap::Parser;

#[derive(Parser)]
struct Trainer {
    #[command(flatten)]
    a: aural_trainer::sed::Args,
}

#[test]
fn detect_loads_a_trained_checkpoint() {
    let tmp = tempfile::Builder::new().prefix("aural-train-detect-").tempdir().unwrap();
    let d = tmp.path();
    let classes: Vec<String> = ["Alarm_bell_ringing", "Cat", "Dog", "Speech", "Vacuum_cleaner"].iter().map(|s| s.to_string()).collect();
    aural_trainer::toy::write_layout(&d.join("data"), &classes, 4, 1.2, 16000, 11).unwrap();
    let cfg = d.join("train.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\ninit = {:?}\n[data]\nstrong = {{ audio = \"data/strong\", tsv = \"data/strong.tsv\" }}\nweak = {{ audio = \"data/weak\", tsv = \"data/weak.tsv\" }}\n\
             validation = {{ audio = \"data/validation\", tsv = \"data/validation.tsv\", durations = \"data/validation_durations.tsv\" }}\n\
             [train]\nbatch = {{ strong = 2, weak = 2 }}\nepochs = 2\nlr = 1e-3\n",
            fixture_path("ast_sed_small").display().to_string()
        ),
    )
    .unwrap();
    let run = d.join("run");
    let t = Trainer::parse_from(["trainer", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu", "--quiet"]);
    aural_trainer::sed::run(t.a).unwrap();
    let clip: PathBuf = d.join("data/validation/v0.wav");
    for ck in ["last", "best"] {
        let model = run.join(ck);
        let scores = d.join(format!("{ck}.safetensors"));
        let o = Command::new(env!("CARGO_BIN_EXE_aural"))
            .args(["detect", "--model", model.to_str().unwrap(), "--device", "cpu", "--scores", scores.to_str().unwrap(), clip.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "aural detect --model {ck}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("filename\tonset\toffset\tevent_label"));
        let got = aural::runtime::safetensors_io::load(&scores).unwrap();
        let m = AstSed::load(&model, Device::Cpu).unwrap();
        let a = aural::models::audio::load(&clip, 16000, aural::models::audio::Channels::MixDown).unwrap();
        let want = m.detect(a.mono(), &Default::default()).unwrap();
        assert_eq!(got["weak"].to_vec().unwrap(), want.weak, "{ck}");
        assert_eq!(got["strong"].to_vec().unwrap(), want.strong.data, "{ck}");
    }
}
