//! Audio input, in one place: WAV decoding (hound), channel policy, and resampling (rubato).
//!
//! - WAV through hound: 8/16/24/32-bit integer PCM (scaled to [−1, 1) by 2^(bits−1), as
//!   torchaudio/soundfile do) and 32-bit float, any channel count. 64-bit float WAVs (what
//!   `scipy.io.wavfile.write` makes of a float64 array; hound does not read them) are read by a
//!   small RIFF reader here ([`read_wav_f64`]): the `fmt ` chunk says IEEE float (plain or
//!   WAVE_FORMAT_EXTENSIBLE) with 64 bits, the `data` chunk holds little-endian f64 frames.
//! - Channels: [`Channels::Select`] one, [`Channels::MixDown`] to mono (the mean, for mono models
//!   such as AST), [`Channels::All`] (the separator's multi-channel input).
//! - Resampling with rubato's `FftFixedIn` (synchronous FFT resampler: exact rational ratio, band-
//!   limited, well tested and maintained). A resampler is easy to get subtly wrong (aliasing, phase,
//!   edge delay); we do not write our own. The resampler's delay is removed and the output has
//!   ⌈n·out/in⌉ frames, so timestamps line up with the input.
//! - Errors name the file: missing, empty, truncated or non-WAV files, zero sample rates, absurd
//!   headers (more than 1024 channels, a rate above 1 MHz, unsupported widths).

use std::path::{Path, PathBuf};

use rubato::{FftFixedIn, Resampler};

/// Errors of the audio front end. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot read: {msg}")]
    Io { path: PathBuf, msg: String },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: the WAV holds no audio samples")]
    NoSamples { path: PathBuf },
    #[error("{path}: not a readable WAV file: {msg}")]
    NotWav { path: PathBuf, msg: String },
    #[error("{path}: unsupported WAV header: {msg}")]
    BadHeader { path: PathBuf, msg: String },
    #[error("{path}: truncated or corrupt WAV data: {msg}")]
    Truncated { path: PathBuf, msg: String },
    #[error("{path}: channel {channel} requested but the file has {channels} channel(s)")]
    NoSuchChannel { path: PathBuf, channel: usize, channels: usize },
    #[error("{path}: resampling {from} Hz → {to} Hz failed: {msg}")]
    Resample { path: PathBuf, from: u32, to: u32, msg: String },
}

pub type Result<T> = std::result::Result<T, AudioError>;

/// Which channels to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One channel (0-based).
    Select(usize),
    /// The mean of all channels (mono models).
    MixDown,
    /// Every channel.
    All,
}

/// Decoded audio: `channels[c][i]`, all of equal length, at `sample_rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    pub fn num_samples(&self) -> usize {
        self.channels.first().map_or(0, |c| c.len())
    }
    /// Interleaved → planar happened already; this is channel 0 (for mono results).
    pub fn mono(&self) -> &[f32] {
        self.channels.first().map_or(&[], |c| c.as_slice())
    }
}

const MAX_CHANNELS: u16 = 1024;
const MAX_RATE: u32 = 1_000_000;

/// Reads a WAV file at its own rate, all channels.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let p = || path.to_path_buf();
    not_empty(path)?;
    if let Some(a) = read_wav_f64(path)? {
        return Ok(a);
    }
    let reader = open_hound(path)?;
    let spec = reader.spec();
    let nch = spec.channels as usize;
    let trunc = |e: hound::Error| AudioError::Truncated { path: p(), msg: e.to_string() };
    let inter: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.into_samples::<f32>().collect::<std::result::Result<_, _>>().map_err(trunc)?,
        (hound::SampleFormat::Int, b @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (b - 1)) as f64;
            reader.into_samples::<i32>().map(|s| s.map(|v| (v as f64 * scale) as f32)).collect::<std::result::Result<_, _>>().map_err(trunc)?
        }
        (f, b) => return Err(AudioError::BadHeader { path: p(), msg: format!("{b}-bit {f:?} samples (supported: 8/16/24/32-bit PCM, 32-bit float)") }),
    };
    if inter.len() % nch != 0 {
        return Err(AudioError::Truncated { path: p(), msg: format!("{} samples is not a multiple of {nch} channels", inter.len()) });
    }
    let n = inter.len() / nch;
    let channels = (0..nch).map(|c| (0..n).map(|i| inter[i * nch + c]).collect()).collect();
    Ok(Audio { sample_rate: spec.sample_rate, channels })
}

/// An error naming the file when it cannot be read or is empty.
fn not_empty(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| AudioError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
    if meta.len() == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok(())
}

/// hound's reader with its header checked (rate, channel count); errors name the file.
fn open_hound(path: &Path) -> Result<hound::WavReader<std::io::BufReader<std::fs::File>>> {
    let p = || path.to_path_buf();
    let reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => AudioError::Truncated { path: p(), msg: "the header ends early".into() },
        hound::Error::IoError(io) => AudioError::Io { path: p(), msg: io.to_string() },
        other => AudioError::NotWav { path: p(), msg: other.to_string() },
    })?;
    let spec = reader.spec();
    if spec.sample_rate == 0 || spec.sample_rate > MAX_RATE {
        return Err(AudioError::BadHeader { path: p(), msg: format!("sample rate {} Hz", spec.sample_rate) });
    }
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(AudioError::BadHeader { path: p(), msg: format!("{} channels", spec.channels) });
    }
    Ok(reader)
}

/// A WAV's length in seconds from its header alone (64-bit float WAVs are read whole), for checking
/// data sets before any audio is decoded. An empty file or a WAV without samples is an error.
pub fn probe_seconds(path: impl AsRef<Path>) -> Result<f64> {
    let path = path.as_ref();
    let p = || path.to_path_buf();
    not_empty(path)?;
    let (rate, frames) = match read_wav_f64(path)? {
        Some(a) => (a.sample_rate, a.num_samples() as u64),
        None => {
            let r = open_hound(path)?;
            (r.spec().sample_rate, r.duration() as u64)
        }
    };
    if frames == 0 {
        return Err(AudioError::NoSamples { path: p() });
    }
    Ok(frames as f64 / rate as f64)
}

/// The chunks of a RIFF/WAVE file: (id, payload), in order. A chunk running past the end of the file
/// is returned cut at the end (the caller decides whether that is truncation).
fn riff_chunks(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let start = pos + 8;
        let end = start.saturating_add(size).min(bytes.len());
        out.push((id, &bytes[start..end]));
        pos = start.saturating_add(size).saturating_add(size & 1);
    }
    Some(out)
}

/// Reads a 64-bit IEEE-float WAV; `Ok(None)` when the file is not one (hound reads the rest). Only the
/// first 64 KiB are read to decide.
pub fn read_wav_f64(path: &Path) -> Result<Option<Audio>> {
    use std::io::Read;
    let p = || path.to_path_buf();
    let mut head = Vec::new();
    let f = std::fs::File::open(path).map_err(|e| AudioError::Io { path: p(), msg: e.to_string() })?;
    f.take(65536).read_to_end(&mut head).map_err(|e| AudioError::Io { path: p(), msg: e.to_string() })?;
    let is_f64 = |fmt: &[u8]| {
        if fmt.len() < 16 {
            return false;
        }
        let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
        let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
        // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the format tag.
        let tag = if tag == 0xFFFE && fmt.len() >= 26 { u16::from_le_bytes([fmt[24], fmt[25]]) } else { tag };
        tag == 3 && bits == 64
    };
    match riff_chunks(&head).and_then(|c| c.into_iter().find(|(id, _)| *id == b"fmt ")) {
        Some((_, fmt)) if is_f64(fmt) => {}
        _ => return Ok(None),
    }
    let bytes = std::fs::read(path).map_err(|e| AudioError::Io { path: p(), msg: e.to_string() })?;
    let chunks = riff_chunks(&bytes).unwrap_or_default();
    let fmt = chunks.iter().find(|(id, _)| *id == b"fmt ").map(|c| c.1).unwrap_or_default();
    let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
    let rate = u32::from_le_bytes(fmt[4..8].try_into().unwrap());
    if rate == 0 || rate > MAX_RATE {
        return Err(AudioError::BadHeader { path: p(), msg: format!("sample rate {rate} Hz") });
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::BadHeader { path: p(), msg: format!("{channels} channels") });
    }
    let Some(&(_, data)) = chunks.iter().find(|(id, _)| *id == b"data") else {
        return Err(AudioError::Truncated { path: p(), msg: "no data chunk".into() });
    };
    // The declared size, to tell a cut file from a complete one.
    let at = data.as_ptr() as usize - bytes.as_ptr() as usize;
    let declared = u32::from_le_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
    let nch = channels as usize;
    let frame = 8 * nch;
    if data.len() < declared && declared != u32::MAX as usize {
        return Err(AudioError::Truncated { path: p(), msg: format!("the data chunk declares {declared} bytes but {} are there", data.len()) });
    }
    if data.len() % frame != 0 {
        return Err(AudioError::Truncated { path: p(), msg: format!("{} data bytes is not a whole number of {nch}-channel 64-bit frames", data.len()) });
    }
    let n = data.len() / frame;
    let sample = |i: usize, c: usize| {
        let o = i * frame + 8 * c;
        f64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as f32
    };
    let channels = (0..nch).map(|c| (0..n).map(|i| sample(i, c)).collect()).collect();
    Ok(Some(Audio { sample_rate: rate, channels }))
}

/// Applies a channel policy.
pub fn select_channels(path: &Path, a: Audio, ch: Channels) -> Result<Audio> {
    let nch = a.channels.len();
    let channels = match ch {
        Channels::All => a.channels,
        Channels::Select(c) if c < nch => vec![a.channels.into_iter().nth(c).unwrap()],
        Channels::Select(c) => return Err(AudioError::NoSuchChannel { path: path.to_path_buf(), channel: c, channels: nch }),
        Channels::MixDown => {
            let n = a.num_samples();
            let inv = 1.0 / nch as f32;
            vec![(0..n).map(|i| a.channels.iter().map(|c| c[i]).sum::<f32>() * inv).collect()]
        }
    };
    Ok(Audio { sample_rate: a.sample_rate, channels })
}

/// Resamples every channel to `rate` (a no-op when equal). Output length ⌈n·rate/in⌉, delay removed.
pub fn resample(path: &Path, a: Audio, rate: u32) -> Result<Audio> {
    if a.sample_rate == rate || a.num_samples() == 0 {
        return Ok(Audio { sample_rate: rate, ..a });
    }
    let (from, to) = (a.sample_rate, rate);
    let rerr = |msg: String| AudioError::Resample { path: path.to_path_buf(), from, to, msg };
    let nch = a.channels.len();
    let n = a.num_samples();
    let want = (n as u64 * to as u64).div_ceil(from as u64) as usize;
    let chunk = 1024;
    let mut rs = FftFixedIn::<f64>::new(from as usize, to as usize, chunk, 2, nch).map_err(|e| rerr(e.to_string()))?;
    let delay = rs.output_delay();
    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(want + delay + chunk); nch];
    let mut pos = 0;
    while out[0].len() < want + delay {
        let take = chunk.min(n.saturating_sub(pos));
        let block: Vec<Vec<f64>> = a.channels.iter().map(|c| c[pos..pos + take].iter().map(|&v| v as f64).collect()).collect();
        let y = if take == chunk { rs.process(&block, None) } else { rs.process_partial(if take > 0 { Some(&block) } else { None }, None) }
            .map_err(|e| rerr(e.to_string()))?;
        pos += take;
        for (o, c) in out.iter_mut().zip(y) {
            o.extend(c);
        }
    }
    let channels = out.into_iter().map(|c| c[delay..delay + want].iter().map(|&v| v as f32).collect()).collect();
    Ok(Audio { sample_rate: to, channels })
}

/// torchaudio's `functional.resample(x, from, to)` with `resampling_method="sinc_interp_kaiser"` and
/// its defaults (lowpass_filter_width 6, rolloff 0.99, beta 14.769656459379492): the rates reduced by
/// their gcd to (o, n); cutoff c = min(o, n)·0.99; half width w = ⌈6·o/c⌉; output phase k (0 ≤ k < n)
/// of block j is Σ_i h_k(i)·x(j·o + i − w) over i in [0, 2w + o) (zeros outside x), with
/// h_k(i) = (c/o)·sinc(π·c·τ)·I0(β√(1 − (τ′/6)²))/I0(β), τ = (i − w)/o − k/n, τ′ = clamp(c·τ, ±6),
/// sinc at the clamped c·τ; the output is cut to ⌈n·len/o⌉ samples. (The CP-JKU SED model resamples
/// its 32 kHz input to 16 kHz this way; `resample` above is rubato's, for file input.) f64 math.
pub fn resample_kaiser(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    fn i0(x: f64) -> f64 {
        // Σ ((x/2)^k / k!)², to full f64 precision for the arguments used here (≤ 15).
        let (mut sum, mut term, q) = (1.0f64, 1.0f64, x * x / 4.0);
        for k in 1..200 {
            term *= q / (k * k) as f64;
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
        }
        sum
    }
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let g = gcd(from as u64, to as u64);
    let (o, n) = ((from as u64 / g) as usize, (to as u64 / g) as usize);
    const WIDTH: f64 = 6.0;
    const BETA: f64 = 14.769656459379492;
    let cut = o.min(n) as f64 * 0.99;
    let w = (WIDTH * o as f64 / cut).ceil() as usize;
    let taps = 2 * w + o;
    let i0b = i0(BETA);
    let kernels: Vec<Vec<f64>> = (0..n)
        .map(|k| {
            (0..taps)
                .map(|i| {
                    let t = ((i as f64 - w as f64) / o as f64 - k as f64 / n as f64) * cut;
                    let t = t.clamp(-WIDTH, WIDTH);
                    let win = i0(BETA * (1.0 - (t / WIDTH).powi(2)).max(0.0).sqrt()) / i0b;
                    let pt = t * std::f64::consts::PI;
                    let sinc = if pt == 0.0 { 1.0 } else { pt.sin() / pt };
                    sinc * win * cut / o as f64
                })
                .collect()
        })
        .collect();
    let len = x.len();
    let want = (n * len).div_ceil(o);
    let mut out = Vec::with_capacity(want);
    'blocks: for j in 0.. {
        for h in &kernels {
            if out.len() == want {
                break 'blocks;
            }
            let start = (j * o) as isize - w as isize;
            let mut acc = 0f64;
            for (i, &hi) in h.iter().enumerate() {
                let p = start + i as isize;
                if p >= 0 && (p as usize) < len {
                    acc += hi * x[p as usize] as f64;
                }
            }
            out.push(acc as f32);
        }
    }
    out
}

/// Reads a WAV, applies the channel policy, and resamples to `rate`: the one entry point of audio.
/// A WAV with a valid header but no samples is an error here (there is nothing to compute features
/// of); [`read_wav`] itself returns it as zero-length channels.
pub fn load(path: impl AsRef<Path>, rate: u32, ch: Channels) -> Result<Audio> {
    let path = path.as_ref();
    let a = read_wav(path)?;
    if a.num_samples() == 0 {
        return Err(AudioError::NoSamples { path: path.to_path_buf() });
    }
    let a = select_channels(path, a, ch)?;
    resample(path, a, rate)
}

/// Writes `channels` (equal lengths) as a 32-bit float WAV at `rate`, through a temporary file in the
/// same folder and a rename, so a failed run never leaves a half-written file.
pub fn write_wav(path: impl AsRef<Path>, rate: u32, channels: &[&[f32]]) -> Result<()> {
    let path = path.as_ref();
    let ioerr = |msg: String| AudioError::Io { path: path.to_path_buf(), msg };
    let n = channels.first().map_or(0, |c| c.len());
    if channels.is_empty() || channels.len() > MAX_CHANNELS as usize || channels.iter().any(|c| c.len() != n) {
        return Err(ioerr(format!("cannot write {} channel(s) of unequal or no length", channels.len())));
    }
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out.wav".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let spec = hound::WavSpec { channels: channels.len() as u16, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let write = || -> std::result::Result<(), hound::Error> {
        let mut w = hound::WavWriter::create(&tmp, spec)?;
        for i in 0..n {
            for c in channels {
                w.write_sample(c[i])?;
            }
        }
        w.finalize()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ioerr(format!("writing {}: {e}", tmp.display())));
    }
    std::fs::rename(&tmp, path).map_err(|e| ioerr(format!("renaming {} into place: {e}", tmp.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aural-audio-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    fn sine(n: usize, rate: u32, f: f32) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * f * i as f32 / rate as f32).sin()).collect()
    }

    fn write(path: &Path, bits: u16, float: bool, chans: &[Vec<f32>], rate: u32) {
        let spec = hound::WavSpec {
            channels: chans.len() as u16,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..chans[0].len() {
            for c in chans {
                if float {
                    w.write_sample(c[i]).unwrap();
                } else {
                    let v = (c[i] as f64 * (1u64 << (bits - 1)) as f64).round() as i64;
                    match bits {
                        8 => w.write_sample(v as i8).unwrap(),
                        16 => w.write_sample(v as i16).unwrap(),
                        _ => w.write_sample(v as i32).unwrap(),
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn every_format_round_trips() {
        let a = sine(1000, 16000, 440.0);
        let b = sine(1000, 16000, 1000.0);
        for (bits, float, tol) in [(8u16, false, 1.0 / 100.0), (16, false, 1e-4), (24, false, 1e-6), (32, false, 1e-7), (32, true, 0.0)] {
            let p = tmp(&format!("f{bits}{float}.wav"));
            write(&p, bits, float, &[a.clone(), b.clone()], 16000);
            let got = read_wav(&p).unwrap();
            assert_eq!(got.sample_rate, 16000);
            assert_eq!(got.channels.len(), 2);
            for (g, w) in got.channels.iter().zip([&a, &b]) {
                let e = g.iter().zip(w.iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                assert!(e <= tol, "{bits}-bit float={float}: error {e}");
            }
            let mono = load(&p, 16000, Channels::MixDown).unwrap();
            assert_eq!(mono.channels.len(), 1);
            assert!((mono.channels[0][10] - (got.channels[0][10] + got.channels[1][10]) / 2.0).abs() < 1e-6);
            let one = load(&p, 16000, Channels::Select(1)).unwrap();
            assert_eq!(one.channels[0], got.channels[1]);
            let e = load(&p, 16000, Channels::Select(2)).unwrap_err().to_string();
            assert!(e.contains("channel 2") && e.contains(p.to_str().unwrap()), "{e}");
        }
    }

    /// 64-bit float WAVs written by scipy.io.wavfile (plain IEEE float) and soundfile (EXTENSIBLE),
    /// tests/golden/wav_f64.py: x[i, c] = 0.5·sin(0.1·i + c), 50 frames × 2 channels. A cut copy is a
    /// truncation error naming the file.
    #[test]
    fn float64_wavs_from_scipy_and_soundfile() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/fixtures");
        for (f, rate) in [("f64_scipy.wav", 48000), ("f64_extensible.wav", 22050)] {
            let a = read_wav(dir.join(f)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((a.sample_rate, a.channels.len(), a.num_samples()), (rate, 2, 50), "{f}");
            for (c, ch) in a.channels.iter().enumerate() {
                for (i, &v) in ch.iter().enumerate() {
                    let want = (0.5 * (0.1 * i as f64 + c as f64).sin()) as f32;
                    assert_eq!(v, want, "{f} [{i}, {c}]");
                }
            }
            let bytes = std::fs::read(dir.join(f)).unwrap();
            let cut = tmp(&format!("cut_{f}"));
            std::fs::write(&cut, &bytes[..bytes.len() - 12]).unwrap();
            let e = read_wav(&cut).unwrap_err().to_string();
            assert!(e.contains(&format!("cut_{f}")) && e.contains("truncated"), "{e}");
        }
    }

    #[test]
    fn resampling_keeps_a_tone() {
        let p = tmp("44k.wav");
        write(&p, 32, true, &[sine(44100, 44100, 440.0)], 44100);
        let a = load(&p, 16000, Channels::All).unwrap();
        assert_eq!(a.sample_rate, 16000);
        assert_eq!(a.num_samples(), 16000);
        let want = sine(16000, 16000, 440.0);
        // away from the edges the resampled tone matches the analytic one (delay removed)
        let e = a.channels[0][500..15500].iter().zip(&want[500..15500]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(e < 2e-3, "resampled tone error {e}");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let empty = tmp("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        let e = read_wav(&empty).unwrap_err().to_string();
        assert!(e.contains("empty") && e.contains("empty.wav"), "{e}");

        let silent = tmp("nosamples.wav");
        write(&silent, 16, false, &[vec![]], 16000);
        assert_eq!(read_wav(&silent).unwrap().num_samples(), 0);
        let e = load(&silent, 16000, Channels::MixDown).unwrap_err().to_string();
        assert!(e.contains("nosamples.wav") && e.contains("no audio samples"), "{e}");

        let text = tmp("text.wav");
        std::fs::write(&text, b"this is not audio, just some text\n").unwrap();
        let e = read_wav(&text).unwrap_err().to_string();
        assert!(e.contains("text.wav") && e.contains("not a readable WAV"), "{e}");

        let good = tmp("good.wav");
        write(&good, 16, false, &[sine(4000, 16000, 300.0)], 16000);
        let bytes = std::fs::read(&good).unwrap();
        let cut = tmp("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1]).unwrap();
        let e = read_wav(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.wav") && e.contains("truncated"), "{e}");
        let head = tmp("head.wav");
        std::fs::write(&head, &bytes[..20]).unwrap();
        let e = read_wav(&head).unwrap_err().to_string();
        assert!(e.contains("head.wav"), "{e}");

        // zero sample rate: patch the header's rate field (bytes 24..28)
        let mut z = bytes.clone();
        z[24..28].copy_from_slice(&0u32.to_le_bytes());
        let zp = tmp("zero.wav");
        std::fs::write(&zp, &z).unwrap();
        let e = read_wav(&zp).unwrap_err().to_string();
        assert!(e.contains("zero.wav") && (e.contains("sample rate") || e.contains("WAV")), "{e}");

        let e = read_wav(tmp("missing.wav")).unwrap_err().to_string();
        assert!(e.contains("missing.wav"), "{e}");
    }
}
