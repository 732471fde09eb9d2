//! `aural s5` end to end on a generated 4-channel mixture with the small random-weight tagger and
//! separator fixtures: labels.tsv and one WAV per selected label, equal to the library pipeline
//! (`S5System::run`) on the same mixture; a mono mixture and a mixture at another rate are refused
//! (the latter accepted with --resample).

use std::process::Command;

use aural::models::audio;
use aural::models::m2d::M2dTagger;
use aural::models::s5::S5System;
use aural::models::separator::{ChunkOpts, ResUNet};
use aural::runtime::testing::fixture_path;
use aural::runtime::Device;

fn aural(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

/// 4 channels × 1.5 s at `rate`: decaying tones and noise, each channel a different mix.
fn mixture(rate: u32) -> Vec<Vec<f32>> {
    let n = (1.5 * rate as f64) as usize;
    let mut s = 12345u64;
    let mut noise = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 20001) as f32 / 10000.0 - 1.0
    };
    (0..4)
        .map(|c| {
            (0..n)
                .map(|i| {
                    let t = i as f32 / rate as f32;
                    0.3 * (2.0 * std::f32::consts::PI * (440.0 + 110.0 * c as f32) * t).sin() * (-2.0 * t).exp() + 0.05 * noise()
                })
                .collect()
        })
        .collect()
}

#[test]
fn s5_tags_and_separates_like_the_library() {
    let tmp = tempfile::Builder::new().prefix("aural-s5-cli-").tempdir().unwrap();
    let d = tmp.path();
    let mix = mixture(32000);
    let refs: Vec<&[f32]> = mix.iter().map(Vec::as_slice).collect();
    let wav = d.join("soundscape_1.wav");
    audio::write_wav(&wav, 32000, &refs).unwrap();
    let (tagger, separator) = (fixture_path("m2d_small"), fixture_path("separator/resunet_n1024"));
    let out = d.join("out");
    // `aural s5` with the two fixture models on `input`, plus `extra` arguments.
    let s5 = |input: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["s5", "--tagger", tagger.to_str().unwrap(), "--separator", separator.to_str().unwrap(), input.to_str().unwrap()];
        args.extend(["--out", out.to_str().unwrap(), "--device", "cpu"]);
        args.extend(extra);
        aural(&args)
    };
    let o = s5(&wav, &["--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let system = S5System::new(M2dTagger::load(&tagger, Device::Cpu).unwrap(), ResUNet::load(&separator, Device::Cpu).unwrap()).unwrap();
    let want = system.run(&mix, None, &ChunkOpts::default()).unwrap();
    assert!(!want.sources.is_empty() && want.sources.len() <= 3);
    assert_eq!(want.slots.len(), 3);
    let tsv = std::fs::read_to_string(out.join("labels.tsv")).unwrap();
    let labels: Vec<&str> = want.sources.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(tsv, format!("filename\tlabels\nsoundscape_1.wav\t{}\n", labels.join(",")));
    for (label, chans) in &want.sources {
        let got = audio::read_wav(out.join(format!("soundscape_1_{label}.wav"))).unwrap();
        assert_eq!(got.channels, *chans, "{label}");
    }
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["labels"].as_array().unwrap().len(), labels.len());
    let p = json[0]["probabilities"][&system.tagger.config.classes[0]].as_f64().unwrap();
    assert!((p - want.probabilities[0] as f64).abs() < 1e-6);

    // A mono mixture and one at 16 kHz are refused, naming the file.
    let mono = d.join("mono.wav");
    audio::write_wav(&mono, 32000, &refs[..1]).unwrap();
    let o = s5(&mono, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("mono.wav") && err.contains("1 channel(s)"), "{err}");
    let low = mixture(16000);
    let low_refs: Vec<&[f32]> = low.iter().map(Vec::as_slice).collect();
    let w16 = d.join("low.wav");
    audio::write_wav(&w16, 16000, &low_refs).unwrap();
    let o = s5(&w16, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("16000 Hz") && err.contains("--resample"), "{err}");
    let o = s5(&w16, &["--resample"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
