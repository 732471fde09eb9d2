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
    let tmp = tempfile::Builder::new().prefix("aural-features-cli-").tempdir().unwrap();
    let dir = tmp.path();
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

/// Outputs whose shapes come from the WAV headers are written as the files are computed; with stdin
/// among the inputs everything is computed first. Both give the same tensors, for resampled stereo
/// files of odd lengths given out of name order; a broken input stops the job with its name, and
/// an existing output stays as it was (no temporary file left).
#[test]
fn streamed_output_equals_the_collected_one() {
    let tmp = tempfile::Builder::new().prefix("aural-features-stream-").tempdir().unwrap();
    let dir = tmp.path();
    let exe = env!("CARGO_BIN_EXE_aural");
    let mut paths = Vec::new();
    for (i, (name, rate, n)) in
        [("z", 44_100u32, 44_100 * 3 + 17), ("a", 22_050, 22_050 + 3), ("m", 48_000, 96_001), ("k", 8_000, 12_345)].into_iter().enumerate()
    {
        let x: Vec<f32> = aural::runtime::testing::rand_vec(n, i as u64 + 5).iter().map(|v| 0.3 * v).collect();
        let y: Vec<f32> = (0..n).map(|j| 0.2 * (j as f32 * 0.01 * (i + 1) as f32).sin()).collect();
        let p = dir.join(format!("{name}.wav"));
        wav(&p, &[x, y], rate);
        paths.push(p);
    }
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let streamed = dir.join("streamed.safetensors");
    let st = Command::new(exe).arg("features").args(paths.iter().map(s)).args(["--out", &s(&streamed), "--device", "cpu"]).status().unwrap();
    assert!(st.success());
    // the last file through stdin: shapes unknown before reading, every file computed first
    let collected = dir.join("collected.safetensors");
    let st = Command::new(exe)
        .arg("features")
        .args(paths[..3].iter().map(s))
        .args(["-", "--out", &s(&collected), "--device", "cpu"])
        .stdin(std::fs::File::open(&paths[3]).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let (a, b) = (safetensors_io::load(&streamed).unwrap(), safetensors_io::load(&collected).unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), ["a/fbank", "k/fbank", "m/fbank", "z/fbank"]);
    for (ka, kb) in [("a/fbank", "a/fbank"), ("m/fbank", "m/fbank"), ("z/fbank", "z/fbank"), ("k/fbank", "-/fbank")] {
        assert_eq!(a[ka].shape(), b[kb].shape(), "{ka}");
        assert!(a[ka].to_vec().unwrap() == b[kb].to_vec().unwrap(), "{ka}: streamed and collected differ");
    }
    // 3 s at 44.1 kHz + 17 samples → ⌈(3·44100 + 17)·16000/44100⌉ = 48 007 samples → 298 frames
    assert_eq!(a["z/fbank"].shape(), &[298, 128]);

    // a NaN near the end of z.wav, the last tensor of the file: found after the others were
    // written; its name in the error, the previous output kept, no temporary file left
    let mut x = vec![0.1f32; 20_000];
    x[19_000] = f32::NAN;
    wav(&paths[0], &[x], 16_000);
    let before = std::fs::read(&streamed).unwrap();
    let o = Command::new(exe).arg("features").args(paths.iter().map(s)).args(["--out", &s(&streamed), "--device", "cpu"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("z.wav") && err.contains("NaN"), "{err}");
    assert!(err.contains("m/fbank"), "the files before z were written first: {err}");
    assert_eq!(std::fs::read(&streamed).unwrap(), before);
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".tmp")).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
