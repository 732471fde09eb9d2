//! `aural features` end to end: the built binary on generated WAVs vs the library call.

use std::path::PathBuf;
use std::process::Command;

use aural::runtime::ops::fbank::{fbank, AstNorm, FbankOpts, Window};
use aural::runtime::{safetensors_io, Tensor};

fn wav(path: &PathBuf, chans: &[Vec<f32>], rate: u32) {
    let spec = hound::WavSpec { channels: chans.len() as u16, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..chans[0].len() {
        for c in chans {
            w.write_sample(c[i]).unwrap();
        }
    }
    w.finalize().unwrap();
}

#[test]
fn features_cli_matches_library() {
    let dir = std::env::temp_dir().join(format!("aural-features-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = 8000 + 37;
    let a: Vec<f32> = aural::runtime::testing::rand_vec(n, 1).iter().map(|v| 0.3 * v).collect();
    let b: Vec<f32> = (0..n).map(|i| 0.4 * (i as f32 * 0.05).sin()).collect();
    let p1 = dir.join("one.wav");
    let p2 = dir.join("two.wav");
    wav(&p1, &[a.clone(), b.clone()], 16000);
    wav(&p2, &[b.clone()], 16000);
    let exe = env!("CARGO_BIN_EXE_aural");

    // one stereo file → mixed to mono → `fbank`
    let out = dir.join("one.safetensors");
    let st = Command::new(exe).args(["features", p1.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"]).status().unwrap();
    assert!(st.success());
    let got = safetensors_io::load(&out).unwrap();
    let mono: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) * 0.5).collect();
    let want = fbank(&Tensor::from_vec(mono, &[n]).unwrap(), &FbankOpts::default()).unwrap();
    aural::runtime::testing::assert_tensor_close("cli fbank", &got["fbank"], &want, 1e-6, 0.0);

    // two files, --ast, channel 1 of the stereo one → `<stem>/input_values`
    let out2 = dir.join("two.safetensors");
    let st = Command::new(exe)
        .args(["features", p1.to_str().unwrap(), p2.to_str().unwrap(), "--out", out2.to_str().unwrap(), "--ast", "--channel", "0", "--device", "cpu"])
        .status()
        .unwrap();
    assert!(st.success());
    let got = safetensors_io::load(&out2).unwrap();
    let o = FbankOpts { ast_norm: Some(AstNorm::AUDIOSET), ..Default::default() };
    let want1 = fbank(&Tensor::from_vec(a.clone(), &[n]).unwrap(), &o).unwrap();
    let want2 = fbank(&Tensor::from_vec(b.clone(), &[n]).unwrap(), &o).unwrap();
    assert_eq!(got["one/input_values"].shape(), &[1024, 128]);
    aural::runtime::testing::assert_tensor_close("cli one", &got["one/input_values"], &want1, 1e-6, 0.0);
    aural::runtime::testing::assert_tensor_close("cli two", &got["two/input_values"], &want2, 1e-6, 0.0);

    // torchaudio's options: 8 kHz (resampled from 16 kHz), 40 mel, 20/8 ms frames, Blackman, no
    // pre-emphasis, DC kept, 320-sample FFT, edges 50 Hz … Nyquist − 300 Hz; and --ast --max-length.
    let out3 = dir.join("opts.safetensors");
    let args = [
        "--sample-rate",
        "8000",
        "--num-mel-bins",
        "40",
        "--frame-length",
        "20",
        "--frame-shift",
        "8",
        "--window",
        "blackman",
        "--preemphasis",
        "0",
        "--low-freq",
        "50",
        "--high-freq",
        "-300",
        "--keep-dc-offset",
        "--no-round-to-power-of-two",
    ];
    let o = Command::new(exe).arg("features").arg(&p2).args(["--out", out3.to_str().unwrap(), "--device", "cpu"]).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = safetensors_io::load(&out3).unwrap();
    let b8 = aural::models::audio::load(&p2, 8000, aural::models::audio::Channels::MixDown).unwrap().channels.remove(0);
    let o8 = FbankOpts {
        sample_rate: 8000.0,
        num_mel_bins: 40,
        frame_length_ms: 20.0,
        frame_shift_ms: 8.0,
        window: Window::Blackman,
        preemph: 0.0,
        low_freq: 50.0,
        high_freq: -300.0,
        remove_dc_offset: false,
        round_to_power_of_two: false,
        ast_norm: None,
    };
    let want = fbank(&Tensor::from_vec(b8.clone(), &[b8.len()]).unwrap(), &o8).unwrap();
    assert_eq!(got["fbank"].shape(), &[1 + (b8.len() - 160) / 64, 40]);
    aural::runtime::testing::assert_tensor_close("cli fbank with options", &got["fbank"], &want, 1e-6, 0.0);
    let o = Command::new(exe)
        .arg("features")
        .arg(&p2)
        .args(["--out", out3.to_str().unwrap(), "--device", "cpu", "--ast", "--max-length", "20", "--num-mel-bins", "64"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = fbank(
        &Tensor::from_vec(b.clone(), &[n]).unwrap(),
        &FbankOpts { num_mel_bins: 64, ast_norm: Some(AstNorm { max_length: 20, ..AstNorm::AUDIOSET }), ..Default::default() },
    )
    .unwrap();
    aural::runtime::testing::assert_tensor_close("cli --ast --max-length 20", &safetensors_io::load(&out3).unwrap()["input_values"], &want, 1e-6, 0.0);
    // Impossible options: one error before any file is read (the bad WAV is not reached).
    let o = Command::new(exe).args(["features", "nonexistent.wav", "--out", out3.to_str().unwrap(), "--high-freq", "9000"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("fbank options") && err.contains("high_freq 9000"), "{err}");

    // a bad file: exit code 2 and a message naming it
    let bad = dir.join("bad.wav");
    std::fs::write(&bad, b"not audio").unwrap();
    let o = Command::new(exe).args(["features", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.wav"));

    // a valid header with no samples: an error too, not an empty feature matrix
    let silent = dir.join("nosamples.wav");
    wav(&silent, &[vec![]], 16000);
    let o = Command::new(exe).args(["features", silent.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nosamples.wav") && err.contains("no audio samples"), "{err}");
}
