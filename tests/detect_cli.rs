//! `aural detect` end to end: the built binary on the golden AST-SED checkpoint
//! (tests/golden/fixtures/ast_sed_small) and WAVs: scores vs the PyTorch reference, events vs the
//! library's post-processing, TSV/JSON/--tsv/--scores/--plot outputs, several and long files, bad input.

use std::path::Path;
use std::process::{Command, Output};

use aural::models::ast_sed::{AstSed, DetectOpts};
use aural::models::audio::{self, Channels};
use aural::models::sed::{events_to_tsv, Event};
use aural::runtime::testing::{assert_close, fixture, fixture_path};
use aural::runtime::{safetensors_io, Device};

fn exe(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aural")).args(args).output().unwrap()
}

fn detect(extra: &[&str], inputs: &[&Path]) -> Output {
    let mut args: Vec<String> = vec!["detect".into(), "--model".into(), fixture_path("ast_sed_small").display().to_string(), "--device".into(), "cpu".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    exe(&args)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "aural detect failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The library's events for `path` (the CLI must print exactly these).
fn library_events(path: &Path) -> Vec<Event> {
    let m = AstSed::load(fixture_path("ast_sed_small"), Device::Cpu).unwrap();
    let au = audio::load(path, 16000, Channels::MixDown).unwrap();
    let sc = m.detect(&au.channels[0], &DetectOpts::default()).unwrap();
    let mut pp = m.config.post_process().unwrap();
    pp.clip_duration = Some(au.num_samples() as f64 / 16000.0);
    pp.events(&path.file_name().unwrap().to_string_lossy(), &sc.strong).unwrap()
}

/// A fresh directory for one test; it is removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-detect-cli-{tag}-")).tempdir().unwrap()
}

#[test]
fn one_clip_scores_events_plot() {
    let tmp = tmpdir("one");
    let dir = tmp.path();
    let clip = fixture_path("ast_sed_clip.wav");
    let (scores, png, tsv) = (dir.join("s.safetensors"), dir.join("clip.png"), dir.join("ev.tsv"));
    let want = library_events(&clip);
    assert!(!want.is_empty(), "the fixture clip should produce events with its thresholds");

    // Default: DCASE TSV on stdout.
    let out = ok(&detect(&[], &[&clip]));
    assert_eq!(out, events_to_tsv(&want));
    assert!(out.starts_with("filename\tonset\toffset\tevent_label\n"));
    assert!(out.lines().skip(1).all(|l| l.starts_with("ast_sed_clip.wav\t")));

    // --json + --scores + --plot + --tsv.
    let out = ok(&detect(&["--json", "--scores", scores.to_str().unwrap(), "--plot", png.to_str().unwrap(), "--tsv", tsv.to_str().unwrap()], &[&clip]));
    let got: Vec<Event> = serde_json::from_str(&out).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.event_label, w.event_label);
        assert!((g.onset - w.onset).abs() < 1e-3 && (g.offset - w.offset).abs() < 1e-3);
        assert!(g.offset <= 1.0 + 1e-9, "offsets are clipped to the 1 s clip: {g:?}");
    }
    assert_eq!(std::fs::read_to_string(&tsv).unwrap(), events_to_tsv(&want));
    let s = safetensors_io::load(&scores).unwrap();
    let io = fixture("ast_sed_small_io.safetensors");
    assert_eq!(s["strong"].shape(), &[36, 5]);
    assert_eq!(s["weak"].shape(), &[5]);
    assert_close("cli strong vs torch", &s["strong"].to_vec().unwrap(), &io["clip/strong"].to_vec().unwrap(), 2e-4, 2e-4);
    assert_close("cli weak vs torch", &s["weak"].to_vec().unwrap(), &io["clip/weak"].to_vec().unwrap(), 2e-4, 2e-4);
    let img = std::fs::read(&png).unwrap();
    assert_eq!(&img[..8], b"\x89PNG\r\n\x1a\n");
    assert!(img.len() > 10_000, "plot of {} bytes", img.len());
}

fn write_wav(path: &Path, rate: u32, channels: u16, x: &[f32]) {
    let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in x {
        w.write_sample((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn several_and_long_files() {
    let tmp = tmpdir("many");
    let dir = tmp.path();
    let clip = audio::load(fixture_path("ast_sed_clip.wav"), 16000, Channels::MixDown).unwrap().channels.remove(0);
    // 3.5 s at 16 kHz (windowed and stitched) and 1 s at 22.05 kHz stereo (resampled, mixed down).
    let long: Vec<f32> = clip.iter().cycle().take(56000).copied().collect();
    let (pl, ps) = (dir.join("long.wav"), dir.join("stereo.wav"));
    write_wav(&pl, 16000, 1, &long);
    let st: Vec<f32> = (0..22050)
        .flat_map(|i| {
            let v = 0.3 * (i as f32 * 0.05).sin();
            [v, 0.5 * v]
        })
        .collect();
    write_wav(&ps, 22050, 2, &st);
    let scores = dir.join("s.safetensors");
    let out = ok(&detect(&["--scores", scores.to_str().unwrap()], &[&pl, &ps]));
    let mut want = library_events(&pl);
    want.extend(library_events(&ps));
    assert_eq!(out, events_to_tsv(&want));
    let s = safetensors_io::load(&scores).unwrap();
    // 348 fbank frames: windows at 0, 64, 128, 192, 220 → 62 + 36 frames.
    assert_eq!(s["long/strong"].shape(), &[98, 5]);
    assert_eq!(s["stereo/strong"].shape(), &[36, 5]);
    assert!(want.iter().filter(|e| e.filename == "long.wav").all(|e| e.offset <= 3.5 + 1e-9));
    // Same stem twice is refused.
    let o = detect(&[], &[&pl, &pl]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("share the file stem"));
    // A hop longer than the 1.28 s window would leave frames unscored; a non-positive hop is meaningless.
    let o = detect(&["--window-hop", "1.5"], &[&pl]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("longer than the window") && err.contains("128 frames"), "{err}");
    for bad in ["0", "-1", "NaN"] {
        let o = detect(&[&format!("--window-hop={bad}")], &[&pl]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.code() == Some(2) && err.contains("--window-hop must be a positive"), "{bad}: {err}");
    }
    // The longest allowed hop (one window) still scores every frame.
    let s1 = dir.join("s1.safetensors");
    ok(&detect(&["--window-hop", "1.28", "--scores", s1.to_str().unwrap()], &[&pl]));
    let st = safetensors_io::load(&s1).unwrap()["strong"].to_vec().unwrap();
    assert!(st.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
}

#[test]
fn bad_input_is_one_clear_error() {
    let tmp = tmpdir("bad");
    let dir = tmp.path();
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    let o = detect(&[], &[&junk]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("junk.wav") && !err.contains("panicked"), "{err}");
    let empty = dir.join("empty.wav");
    write_wav(&empty, 16000, 1, &[]);
    let o = detect(&[], &[&empty]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("empty.wav") && !err.contains("panicked"), "{err}");
    let o = exe(&["detect".into(), "--model".into(), dir.display().to_string(), fixture_path("ast_sed_clip.wav").display().to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("config.json"), "{err}");
}

/// `aural detect -`: a 60 s WAV stream on stdin (16-bit, as a recorder would send it, data size
/// 0xFFFFFFFF) gives the file path's events; the first ones are printed while most of the audio is
/// still to come (the test waits for one before sending the rest). Headerless PCM with
/// --raw-format likewise. NaN samples: an error naming the file and frame, or zeroed with
/// --allow-nonfinite.
#[test]
fn stdin_stream_and_nonfinite() {
    use std::io::{BufRead, Write};
    use std::process::Stdio;
    let tmp = tmpdir("stream");
    let dir = tmp.path();
    let clip = audio::load(fixture_path("ast_sed_clip.wav"), 16000, Channels::MixDown).unwrap().channels.remove(0);
    let long: Vec<f32> = clip.iter().cycle().take(16000 * 60).enumerate().map(|(i, &v)| v * (0.2 + 0.8 * ((i / 48000) % 2) as f32)).collect();
    let pcm: Vec<u8> = long.iter().flat_map(|&v| ((v * 32767.0).round() as i16).to_le_bytes()).collect();
    let pl = dir.join("long.wav");
    let spec = hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&pl, spec).unwrap();
    pcm.chunks(2).for_each(|b| w.write_sample(i16::from_le_bytes([b[0], b[1]])).unwrap());
    w.finalize().unwrap();
    let rows = |out: &str, name: &str| -> Vec<String> {
        let mut r: Vec<String> = out.lines().skip(1).map(|l| l.replacen(name, "X", 1)).collect();
        r.sort();
        r
    };
    let want = rows(&ok(&detect(&[], &[&pl])), "long.wav");
    assert!(want.len() > 20, "{want:?}");
    let mut stream = b"RIFF\xff\xff\xff\xffWAVEfmt ".to_vec();
    stream.extend(16u32.to_le_bytes());
    stream.extend([1u8, 0, 1, 0]);
    stream.extend(16000u32.to_le_bytes());
    stream.extend(32000u32.to_le_bytes());
    stream.extend([2u8, 0, 16, 0]);
    stream.extend(b"data\xff\xff\xff\xff");
    let head = stream.len();
    stream.extend(&pcm);
    for (extra, body) in [(vec![], &stream[..]), (vec!["--raw-format", "s16:16000:1"], &stream[head..])] {
        let mut args: Vec<String> =
            vec!["detect".into(), "--model".into(), fixture_path("ast_sed_small").display().to_string(), "--device".into(), "cpu".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("-".into());
        let mut child =
            Command::new(env!("CARGO_BIN_EXE_aural")).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines() {
                tx.send(l.unwrap()).unwrap();
            }
        });
        // the first 40 % (24 s), then wait for an event row before sending the rest
        let cut = body.len() * 2 / 5;
        stdin.write_all(&body[..cut]).unwrap();
        stdin.flush().unwrap();
        let mut lines = vec![rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the header")];
        lines.push(rx.recv_timeout(std::time::Duration::from_secs(60)).expect("an event row before the end of the stream"));
        stdin.write_all(&body[cut..]).unwrap();
        drop(stdin);
        let st = child.wait_with_output().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        assert_eq!(lines[0], "filename\tonset\toffset\tevent_label");
        assert_eq!(rows(&lines.join("\n"), "-"), want, "{extra:?}");
    }
    // NaN in a float WAV
    let mut x = clip.clone();
    x[5000] = f32::NAN;
    let pn = dir.join("nan.wav");
    let spec = hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(&pn, spec).unwrap();
    x.iter().for_each(|&v| w.write_sample(v).unwrap());
    w.finalize().unwrap();
    let o = detect(&[], &[&pn]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("nan.wav") && err.contains("frame 5000") && err.contains("--allow-nonfinite"), "{err}");
    let o = detect(&["--allow-nonfinite"], &[&pn]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 NaN or infinite sample(s) were set to 0"));
    ok(&o);
    let o = detect(&["--raw-format", "s16:16000"], &[&pn]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--raw-format describes stdin"));
}
