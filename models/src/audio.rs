//! Audio input, in one place: WAV decoding, channel policy, and resampling (rubato).
//!
//! - WAV through [`WavReader`], this module's RIFF reader: 8/16/24/32-bit integer PCM (scaled to
//!   [−1, 1) by 2^(bits−1), as torchaudio/soundfile do; 8-bit is unsigned with offset 128), 32- and
//!   64-bit IEEE float (64-bit is what `scipy.io.wavfile.write` makes of a float64 array), plain or
//!   WAVE_FORMAT_EXTENSIBLE, any channel count. The data chunk is converted in bulk (blocks of bytes
//!   → f32 with no per-sample iterator) and can be read whole ([`read_wav`]) or block by block
//!   ([`WavReader::read_frames`]: bounded memory for hour-long files and streams such as stdin,
//!   where a data chunk of declared size 0xFFFFFFFF runs to the end of the stream). hound, the
//!   crate we write WAVs with, reads through a per-sample iterator, a third of the time of a
//!   many-file features job; its output is this reader's reference in the tests.
//! - Channels: [`Channels::Select`] one, [`Channels::MixDown`] to mono (the mean, for mono models
//!   such as AST), [`Channels::All`] (the separator's multi-channel input).
//! - Non-finite samples (NaN, ±Inf, only possible in float WAVs) are an error naming the file, the
//!   frame and the channel of the first one; [`WavReader::zero_nonfinite`] zeroes them instead
//!   (counted, for a warning).
//! - Resampling with rubato's `FftFixedIn` (synchronous FFT resampler: exact rational ratio, band-
//!   limited, well tested and maintained). A resampler is easy to get subtly wrong (aliasing, phase,
//!   edge delay); we do not write our own. The resampler's delay is removed and the output has
//!   ⌈n·out/in⌉ frames, so timestamps line up with the input. Plans are cached per thread and rate
//!   pair.
//! - Errors name the file: missing, empty, truncated or non-WAV files, zero sample rates, absurd
//!   headers (more than 1024 channels, a rate above 1 MHz, unsupported widths or format tags). No
//!   allocation is sized by a header field before the bytes are there: a header claiming 4 GiB of
//!   data in a short file is a truncation error, not an allocation.

use std::io::Read;
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
    #[error("{path}: sample {value} at frame {frame} (t = {seconds:.6} s), channel {channel}, is not a finite number (NaN or infinite samples are refused; --allow-nonfinite zeroes them)")]
    NonFinite { path: PathBuf, frame: u64, seconds: f64, channel: usize, value: f32 },
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

/// How a WAV's samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Integer PCM of 8 (unsigned), 16, 24 or 32 bits.
    Int(u16),
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::Int(b) => b as usize / 8,
            SampleFormat::F32 => 4,
            SampleFormat::F64 => 8,
        }
    }
}

/// A WAV's header: what [`WavReader::new`] read before the first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: usize,
    pub format: SampleFormat,
    /// Frames the data chunk declares; `None` for a stream of unknown length (declared size
    /// 0xFFFFFFFF), read to its end.
    pub frames: Option<u64>,
}

/// Bytes converted per block by [`WavReader::read_to_end`] and the block readers.
const BLOCK_BYTES: usize = 1 << 20;

/// A WAV decoder over any byte source: the header is read by [`WavReader::new`], the samples by
/// [`WavReader::read_frames`] in blocks (planar f32), so a file or stream of any length is read in
/// bounded memory.
pub struct WavReader<R: Read> {
    src: R,
    path: PathBuf,
    info: WavInfo,
    /// Data bytes still to read (`None`: to the end of the stream).
    left: Option<u64>,
    /// Raw bytes of the block being converted.
    raw: Vec<u8>,
    /// Frames decoded so far (for error positions).
    pos: u64,
    zero_nonfinite: bool,
    zeroed: u64,
}

impl WavReader<std::io::BufReader<std::fs::File>> {
    /// Opens a WAV file. A data chunk declaring more bytes than the file holds is a truncation error
    /// here, before any sample is read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let len = not_empty(path)?;
        let f = std::fs::File::open(path).map_err(|e| AudioError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
        // A small buffer for the header's chunks: sample reads (blocks of many KB) then bypass it
        // once its rest is taken, instead of being copied through it.
        let r = WavReader::new(std::io::BufReader::with_capacity(1 << 12, f), path)?;
        r.fits(len)?;
        Ok(r)
    }
}

impl<R: Read + Send + 'static> WavReader<R> {
    /// The same reader over a boxed source (to hold files and stdin in one type).
    pub fn boxed(self) -> WavReader<Box<dyn Read + Send>> {
        WavReader {
            src: Box::new(self.src),
            path: self.path,
            info: self.info,
            left: self.left,
            raw: self.raw,
            pos: self.pos,
            zero_nonfinite: self.zero_nonfinite,
            zeroed: self.zeroed,
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<R: Read> WavReader<R> {
    /// Reads the RIFF header up to the start of the `data` chunk. `path` names the source in errors
    /// (use `-` or a description for streams).
    pub fn new(mut src: R, path: &Path) -> Result<Self> {
        let p = || path.to_path_buf();
        let eof_in = |what: &'static str| {
            move |e: std::io::Error| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    AudioError::Truncated { path: p(), msg: format!("the header ends early ({what})") }
                } else {
                    AudioError::Io { path: p(), msg: e.to_string() }
                }
            }
        };
        let mut head = [0u8; 12];
        let mut got = 0;
        while got < 12 {
            match src.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(AudioError::Io { path: p(), msg: e.to_string() }),
            }
        }
        if got == 0 {
            return Err(AudioError::Empty { path: p() });
        }
        if got < 12 && head[..got.min(4)] == b"RIFF"[..got.min(4)] {
            return Err(AudioError::Truncated { path: p(), msg: "the header ends early (RIFF header)".into() });
        }
        if got < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
            let msg =
                if &head[0..4] == b"RF64" || &head[0..4] == b"BW64" { "RF64/BW64 files (WAVs over 4 GiB) are not supported" } else { "no RIFF/WAVE header" };
            return Err(AudioError::NotWav { path: p(), msg: msg.into() });
        }
        let mut fmt: Option<(SampleFormat, usize, u32)> = None;
        loop {
            let mut ch = [0u8; 8];
            src.read_exact(&mut ch).map_err(eof_in("no data chunk"))?;
            let size = le32(&ch, 4);
            match &ch[0..4] {
                b"fmt " => {
                    if !(16..=1024).contains(&size) {
                        return Err(AudioError::BadHeader { path: p(), msg: format!("a fmt chunk of {size} bytes (16 to 1024 expected)") });
                    }
                    let mut b = vec![0u8; size as usize + (size as usize & 1)];
                    src.read_exact(&mut b).map_err(eof_in("fmt chunk"))?;
                    fmt = Some(parse_fmt(&b, path)?);
                }
                b"data" => {
                    let Some((format, channels, sample_rate)) = fmt else {
                        return Err(AudioError::NotWav { path: p(), msg: "the data chunk comes before any fmt chunk".into() });
                    };
                    let frame = (format.bytes() * channels) as u64;
                    let (left, frames) = if size == u32::MAX {
                        (None, None)
                    } else {
                        if size as u64 % frame != 0 {
                            return Err(AudioError::Truncated {
                                path: p(),
                                msg: format!("a data chunk of {size} bytes is not a whole number of {channels}-channel frames of {} bytes", frame),
                            });
                        }
                        (Some(size as u64), Some(size as u64 / frame))
                    };
                    return Ok(WavReader {
                        src,
                        path: p(),
                        info: WavInfo { sample_rate, channels, format, frames },
                        left,
                        raw: Vec::new(),
                        pos: 0,
                        zero_nonfinite: false,
                        zeroed: 0,
                    });
                }
                _ => {
                    // skip the chunk (and its pad byte) without holding it
                    let skip = size as u64 + (size as u64 & 1);
                    let n = std::io::copy(&mut (&mut src).take(skip), &mut std::io::sink()).map_err(|e| AudioError::Io { path: p(), msg: e.to_string() })?;
                    if n < skip {
                        let id = String::from_utf8_lossy(&ch[0..4]).into_owned();
                        return Err(AudioError::Truncated { path: p(), msg: format!("the file ends inside its '{id}' chunk, before any data chunk") });
                    }
                }
            }
        }
    }

    /// Headerless PCM (`--raw-format`): samples of `format`, `channels` interleaved, at
    /// `sample_rate`, to the end of the source. The same limits as a WAV header's.
    pub fn raw(src: R, path: &Path, sample_rate: u32, channels: usize, format: SampleFormat) -> Result<Self> {
        let bad = |msg: String| AudioError::BadHeader { path: path.to_path_buf(), msg };
        if sample_rate == 0 || sample_rate > MAX_RATE {
            return Err(bad(format!("sample rate {sample_rate} Hz")));
        }
        if channels == 0 || channels > MAX_CHANNELS as usize {
            return Err(bad(format!("{channels} channels")));
        }
        if !matches!(format, SampleFormat::Int(8 | 16 | 24 | 32) | SampleFormat::F32 | SampleFormat::F64) {
            return Err(bad(format!("{format:?} samples")));
        }
        Ok(WavReader {
            src,
            path: path.to_path_buf(),
            info: WavInfo { sample_rate, channels, format, frames: None },
            left: None,
            raw: Vec::new(),
            pos: 0,
            zero_nonfinite: false,
            zeroed: 0,
        })
    }

    /// The header.
    pub fn info(&self) -> &WavInfo {
        &self.info
    }

    /// Zero non-finite samples instead of failing on the first (see [`WavReader::zeroed`]).
    pub fn zero_nonfinite(&mut self, yes: bool) {
        self.zero_nonfinite = yes;
    }

    /// Samples zeroed so far by [`WavReader::zero_nonfinite`].
    pub fn zeroed(&self) -> u64 {
        self.zeroed
    }

    /// A declared data chunk longer than the whole source (`len` bytes, header included) is a
    /// truncation error, before any sample is read or allocated.
    fn fits(&self, len: u64) -> Result<()> {
        match self.left {
            Some(left) if left > len => Err(self.truncated(format!("the data chunk declares {left} bytes but the file has only {len}"))),
            _ => Ok(()),
        }
    }

    fn truncated(&self, msg: String) -> AudioError {
        AudioError::Truncated { path: self.path.clone(), msg }
    }

    /// Appends up to `max_frames` frames to `out` (one Vec per channel, planar); returns how many
    /// were appended, 0 at the end of the data. A data chunk that ends early or inside a frame is a
    /// truncation error.
    pub fn read_frames(&mut self, max_frames: usize, out: &mut [Vec<f32>]) -> Result<usize> {
        let nch = self.info.channels;
        assert_eq!(out.len(), nch, "read_frames: one output Vec per channel");
        let frame = self.info.format.bytes() * nch;
        let mut want = max_frames.saturating_mul(frame);
        if let Some(left) = self.left {
            want = want.min(left.min(usize::MAX as u64) as usize);
        }
        if want == 0 {
            return Ok(0);
        }
        self.raw.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.src.read(&mut self.raw[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(AudioError::Io { path: self.path.clone(), msg: e.to_string() }),
            }
        }
        if let Some(left) = self.left.as_mut() {
            if got < want {
                let at = self.pos * frame as u64 + got as u64;
                let declared = at + *left - got as u64;
                return Err(self.truncated(format!("the data chunk declares {declared} bytes but the data ends after {at}")));
            }
            *left -= got as u64;
        }
        if got % frame != 0 {
            // only a stream of unknown length gets here (declared sizes are whole frames).
            let at = self.pos * frame as u64 + got as u64;
            return Err(self.truncated(format!("the data ends after {at} bytes, inside a {nch}-channel frame of {frame} bytes")));
        }
        let n = got / frame;
        let start = out[0].len();
        for o in out.iter_mut() {
            o.resize(start + n, 0.0);
        }
        decode(self.info.format, nch, &self.raw[..got], start, out);
        self.check_finite(out, start)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// The first non-finite sample of frames `start..` is an error, or every one is zeroed.
    fn check_finite(&mut self, out: &mut [Vec<f32>], start: usize) -> Result<()> {
        if matches!(self.info.format, SampleFormat::Int(_)) {
            return Ok(());
        }
        for (c, ch) in out.iter_mut().enumerate() {
            let part = &mut ch[start..];
            // the sum is non-finite iff some sample is (or it overflows; then look closer).
            if part.iter().fold(0f32, |a, &x| a + x * 0.0).is_finite() {
                continue;
            }
            for (i, v) in part.iter_mut().enumerate() {
                if !v.is_finite() {
                    if self.zero_nonfinite {
                        *v = 0.0;
                        self.zeroed += 1;
                    } else {
                        let frame = self.pos + i as u64;
                        return Err(AudioError::NonFinite {
                            path: self.path.clone(),
                            frame,
                            seconds: frame as f64 / self.info.sample_rate as f64,
                            channel: c,
                            value: *v,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads every remaining frame.
    pub fn read_to_end(mut self) -> Result<Audio> {
        let nch = self.info.channels;
        let frame = self.info.format.bytes() * nch;
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); nch];
        if let Some(left) = self.left {
            // sized by the declared data, which the caller checked against the file (open) or
            // which a stream must deliver; at most one block ahead of what was read otherwise.
            let cap = (left / frame as u64).min((BLOCK_BYTES / frame.max(1)) as u64 * 64) as usize;
            out.iter_mut().for_each(|c| c.reserve(cap));
        }
        let per = (BLOCK_BYTES / frame).max(1);
        while self.read_frames(per, &mut out)? > 0 {}
        Ok(Audio { sample_rate: self.info.sample_rate, channels: out })
    }
}

/// The `fmt ` chunk → (format, channels, rate), checked.
fn parse_fmt(b: &[u8], path: &Path) -> Result<(SampleFormat, usize, u32)> {
    let bad = |msg: String| AudioError::BadHeader { path: path.to_path_buf(), msg };
    let mut tag = le16(b, 0);
    let channels = le16(b, 2);
    let rate = le32(b, 4);
    let align = le16(b, 12) as usize;
    let bits = le16(b, 14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: cbSize (≥ 22), valid bits, channel mask, then the sub-format GUID,
        // whose first two bytes are the format tag. Samples are left-justified in their container,
        // so scaling by the container's width is right whatever the valid bits.
        if b.len() < 40 || le16(b, 16) < 22 {
            return Err(bad("a WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes".into()));
        }
        tag = le16(b, 24);
    }
    if rate == 0 || rate > MAX_RATE {
        return Err(bad(format!("sample rate {rate} Hz")));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(bad(format!("{channels} channels")));
    }
    let format = match (tag, bits) {
        (1, 8 | 16 | 24 | 32) => SampleFormat::Int(bits),
        (3, 32) => SampleFormat::F32,
        (3, 64) => SampleFormat::F64,
        (1 | 3, _) => {
            return Err(bad(format!("{bits}-bit {} samples (supported: 8/16/24/32-bit PCM, 32/64-bit float)", if tag == 1 { "integer" } else { "float" })))
        }
        _ => return Err(bad(format!("format tag {tag:#06x} (supported: PCM 0x0001, IEEE float 0x0003, or EXTENSIBLE with either)"))),
    };
    if align != format.bytes() * channels as usize {
        return Err(bad(format!("block align {align} for {channels} channel(s) of {bits}-bit samples (expected {})", format.bytes() * channels as usize)));
    }
    Ok((format, channels as usize, rate))
}

/// Bulk conversion of whole interleaved frames `raw` into `out[c][start..]`.
fn decode(format: SampleFormat, nch: usize, raw: &[u8], start: usize, out: &mut [Vec<f32>]) {
    fn planar<const W: usize>(raw: &[u8], nch: usize, start: usize, out: &mut [Vec<f32>], conv: impl Fn([u8; W]) -> f32 + Copy) {
        if nch == 1 {
            for (o, b) in out[0][start..].iter_mut().zip(raw.chunks_exact(W)) {
                *o = conv(b.try_into().unwrap());
            }
            return;
        }
        for (c, o) in out.iter_mut().enumerate() {
            for (o, f) in o[start..].iter_mut().zip(raw.chunks_exact(W * nch)) {
                *o = conv(f[c * W..c * W + W].try_into().unwrap());
            }
        }
    }
    match format {
        SampleFormat::Int(8) => planar::<1>(raw, nch, start, out, |b| (b[0] as i32 - 128) as f32 * (1.0 / 128.0)),
        SampleFormat::Int(16) => planar::<2>(raw, nch, start, out, |b| i16::from_le_bytes(b) as f32 * (1.0 / 32768.0)),
        // 24-bit: sign-extend through the top of an i32; the scale is exact in f64, rounded once.
        SampleFormat::Int(24) => planar::<3>(raw, nch, start, out, |b| (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * (1.0 / 8_388_608.0)),
        SampleFormat::Int(_) => planar::<4>(raw, nch, start, out, |b| (i32::from_le_bytes(b) as f64 * (1.0 / 2_147_483_648.0)) as f32),
        SampleFormat::F32 => planar::<4>(raw, nch, start, out, f32::from_le_bytes),
        SampleFormat::F64 => planar::<8>(raw, nch, start, out, |b| f64::from_le_bytes(b) as f32),
    }
}

/// Reads a WAV file at its own rate, all channels.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    WavReader::open(path)?.read_to_end()
}

/// Decodes a WAV held in memory; `path` names it in errors.
pub fn read_wav_bytes(path: &Path, bytes: &[u8]) -> Result<Audio> {
    let r = WavReader::new(bytes, path)?;
    r.fits(bytes.len() as u64)?;
    r.read_to_end()
}

/// The file's length; an error naming the file when it cannot be read or is empty.
fn not_empty(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| AudioError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
    if meta.len() == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok(meta.len())
}

/// A WAV's length in seconds from its header alone, for checking data sets before any audio is
/// decoded. An empty file or a WAV without samples is an error.
pub fn probe_seconds(path: impl AsRef<Path>) -> Result<f64> {
    let path = path.as_ref();
    let r = WavReader::open(path)?;
    let info = *r.info();
    let frames = match info.frames {
        Some(f) => f,
        None => r.read_to_end()?.num_samples() as u64,
    };
    if frames == 0 {
        return Err(AudioError::NoSamples { path: path.to_path_buf() });
    }
    Ok(frames as f64 / info.sample_rate as f64)
}

/// Applies a channel policy.
pub fn select_channels(path: &Path, a: Audio, ch: Channels) -> Result<Audio> {
    let nch = a.channels.len();
    let channels = match ch {
        Channels::All => a.channels,
        Channels::Select(c) if c < nch => vec![a.channels.into_iter().nth(c).unwrap()],
        Channels::Select(c) => return Err(AudioError::NoSuchChannel { path: path.to_path_buf(), channel: c, channels: nch }),
        Channels::MixDown if nch == 1 => a.channels,
        Channels::MixDown => {
            // channel by channel, in channel order (the same sums as a per-sample loop), vectorised
            let mut it = a.channels.into_iter();
            let mut acc = it.next().unwrap_or_default();
            for c in it {
                acc.iter_mut().zip(&c).for_each(|(s, &x)| *s += x);
            }
            let inv = 1.0 / nch as f32;
            acc.iter_mut().for_each(|s| *s *= inv);
            vec![acc]
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
    let mut rs = StreamResampler::new(from, to, a.channels.len()).map_err(rerr)?;
    let mut out = vec![Vec::new(); a.channels.len()];
    rs.push(&a.channels, &mut out).map_err(rerr)?;
    rs.finish(&mut out).map_err(rerr)?;
    Ok(Audio { sample_rate: to, channels: out })
}

/// Input frames per resampler call.
const RESAMPLE_CHUNK: usize = 1024;

thread_local! {
    /// One resampler plan per (rates, channels) and thread, reset before each use: a plan costs FFT
    /// set-up and the filter design, about as much as resampling a 10 s clip.
    static PLANS: std::cell::RefCell<Vec<((u32, u32, usize), FftFixedIn<f64>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// rubato's `FftFixedIn` fed block by block: the output is that of [`resample`] on the whole
/// signal (the same chunks of 1024 input frames from the start; the resampler is causal, so output
/// produced early is final), its delay dropped, and no more than ⌊n_in·to/from⌋ frames handed out
/// before [`StreamResampler::finish`] pads the end to ⌈n·to/from⌉.
pub struct StreamResampler {
    key: (u32, u32, usize),
    rs: Option<FftFixedIn<f64>>,
    pending: Vec<Vec<f64>>,
    produced: Vec<Vec<f64>>,
    skip: usize,
    n_in: u64,
    n_out: u64,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32, nch: usize) -> std::result::Result<StreamResampler, String> {
        let key = (from, to, nch);
        let cached = PLANS.with(|c| {
            let mut c = c.borrow_mut();
            c.iter().position(|(k, _)| *k == key).map(|i| c.swap_remove(i).1)
        });
        let rs = match cached {
            Some(mut rs) => {
                rs.reset();
                rs
            }
            None => FftFixedIn::<f64>::new(from as usize, to as usize, RESAMPLE_CHUNK, 2, nch).map_err(|e| e.to_string())?,
        };
        let skip = rs.output_delay();
        Ok(StreamResampler { key, rs: Some(rs), pending: vec![Vec::new(); nch], produced: vec![Vec::new(); nch], skip, n_in: 0, n_out: 0 })
    }

    fn take(&mut self, y: Vec<Vec<f64>>) {
        let drop = self.skip.min(y[0].len());
        self.skip -= drop;
        for (p, c) in self.produced.iter_mut().zip(y) {
            p.extend_from_slice(&c[drop..]);
        }
    }

    fn emit(&mut self, upto: u64, out: &mut [Vec<f32>]) {
        let n = (upto.saturating_sub(self.n_out) as usize).min(self.produced[0].len());
        for (o, p) in out.iter_mut().zip(self.produced.iter_mut()) {
            o.extend(p.drain(..n).map(|v| v as f32));
        }
        self.n_out += n as u64;
    }

    /// Feeds planar input; appends the output that is final to `out`.
    pub fn push(&mut self, input: &[Vec<f32>], out: &mut [Vec<f32>]) -> std::result::Result<(), String> {
        let (from, to, _) = self.key;
        for (p, c) in self.pending.iter_mut().zip(input) {
            p.extend(c.iter().map(|&v| v as f64));
        }
        self.n_in += input.first().map_or(0, |c| c.len()) as u64;
        let mut at = 0;
        while self.pending[0].len() - at >= RESAMPLE_CHUNK {
            let block: Vec<&[f64]> = self.pending.iter().map(|c| &c[at..at + RESAMPLE_CHUNK]).collect();
            let y = self.rs.as_mut().expect("live until finish").process(&block, None).map_err(|e| e.to_string())?;
            self.take(y);
            at += RESAMPLE_CHUNK;
        }
        self.pending.iter_mut().for_each(|c| drop(c.drain(..at)));
        self.emit(self.n_in * to as u64 / from as u64, out);
        Ok(())
    }

    /// Ends the input: the last partial chunk and zeros until ⌈n_in·to/from⌉ frames are out.
    pub fn finish(mut self, out: &mut [Vec<f32>]) -> std::result::Result<(), String> {
        let (from, to, _) = self.key;
        let want = (self.n_in * to as u64).div_ceil(from as u64);
        let mut rs = self.rs.take().expect("live until finish");
        if self.n_out + (self.produced[0].len() as u64) < want && !self.pending[0].is_empty() {
            let y = rs.process_partial(Some(&self.pending), None).map_err(|e| e.to_string())?;
            self.take(y);
        }
        while self.n_out + (self.produced[0].len() as u64) < want {
            let y = rs.process_partial(None::<&[Vec<f64>]>, None).map_err(|e| e.to_string())?;
            self.take(y);
        }
        self.emit(want, out);
        let key = self.key;
        PLANS.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= 8 {
                c.remove(0);
            }
            c.push((key, rs));
        });
        Ok(())
    }
}

/// A WAV read block by block, its channels selected (or mixed down) and resampled to `rate`: the
/// input of many-file and streaming jobs, in memory that does not grow with the file's length.
/// The blocks concatenated equal [`load`]'s result.
pub struct Blocks<R: Read> {
    reader: WavReader<R>,
    path: PathBuf,
    ch: Channels,
    rate: u32,
    rs: Option<StreamResampler>,
    in_frames: u64,
    done: bool,
}

impl<R: Read> Blocks<R> {
    pub fn new(reader: WavReader<R>, rate: u32, ch: Channels) -> Result<Blocks<R>> {
        let info = *reader.info();
        let path = reader.path.clone();
        if let Channels::Select(c) = ch {
            if c >= info.channels {
                return Err(AudioError::NoSuchChannel { path, channel: c, channels: info.channels });
            }
        }
        let nch = match ch {
            Channels::All => info.channels,
            _ => 1,
        };
        let rs = if info.sample_rate == rate {
            None
        } else {
            Some(StreamResampler::new(info.sample_rate, rate, nch).map_err(|msg| AudioError::Resample {
                path: path.clone(),
                from: info.sample_rate,
                to: rate,
                msg,
            })?)
        };
        Ok(Blocks { reader, path, ch, rate, rs, in_frames: 0, done: false })
    }

    /// Frames the blocks will hold in all, from the header (`None` for a stream of unknown length):
    /// ⌈frames·rate/in⌉ when resampled.
    pub fn total_frames(&self) -> Option<u64> {
        let info = self.reader.info();
        info.frames.map(|f| if self.rs.is_some() { (f * self.rate as u64).div_ceil(info.sample_rate as u64) } else { f })
    }

    /// The underlying reader (its header, zeroed-sample count).
    pub fn reader(&mut self) -> &mut WavReader<R> {
        &mut self.reader
    }

    /// The next block (planar, at `rate`), from up to `frames` input frames; `None` after the last.
    /// A file without samples is an error.
    pub fn next_block(&mut self, frames: usize) -> Result<Option<Vec<Vec<f32>>>> {
        if self.done {
            return Ok(None);
        }
        let nch = self.reader.info().channels;
        let mut raw = vec![Vec::new(); nch];
        let n = self.reader.read_frames(frames.max(1), &mut raw)?;
        self.in_frames += n as u64;
        let sel = select_channels(&self.path, Audio { sample_rate: self.reader.info().sample_rate, channels: raw }, self.ch)?.channels;
        let (from, to) = (self.reader.info().sample_rate, self.rate);
        let rerr = |msg: String| AudioError::Resample { path: self.path.clone(), from, to, msg };
        if n == 0 {
            self.done = true;
            if self.in_frames == 0 {
                return Err(AudioError::NoSamples { path: self.path.clone() });
            }
            return match self.rs.take() {
                Some(rs) => {
                    let mut out = vec![Vec::new(); sel.len()];
                    rs.finish(&mut out).map_err(rerr)?;
                    Ok(if out[0].is_empty() { None } else { Some(out) })
                }
                None => Ok(None),
            };
        }
        match self.rs.as_mut() {
            Some(rs) => {
                let mut out = vec![Vec::new(); sel.len()];
                rs.push(&sel, &mut out).map_err(rerr)?;
                Ok(Some(out))
            }
            None => Ok(Some(sel)),
        }
    }
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

    /// The path `name` in a fresh temporary directory, which is removed when this drops (also when
    /// the test fails). Derefs to the path.
    struct TmpPath {
        path: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TmpPath {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.path
        }
    }

    impl AsRef<Path> for TmpPath {
        fn as_ref(&self) -> &Path {
            &self.path
        }
    }

    fn tmp(name: &str) -> TmpPath {
        let dir = tempfile::Builder::new().prefix("aural-audio-test-").tempdir().unwrap();
        TmpPath { path: dir.path().join(name), _dir: dir }
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

    /// hound (the crate we write with) reads back what it wrote through its per-sample iterator:
    /// the reference for this module's bulk decoder, every width, 1–6 channels (hound writes
    /// WAVE_FORMAT_EXTENSIBLE for more than two channels or more than 16 bits), whole and in blocks
    /// of odd sizes, from a file and from memory.
    #[test]
    fn bulk_decoder_equals_hound() {
        for (bits, float) in [(8u16, false), (16, false), (24, false), (32, false), (32, true)] {
            for nch in [1usize, 2, 3, 6] {
                let chans: Vec<Vec<f32>> = (0..nch).map(|c| sine(3001, 16000, 200.0 + 130.0 * c as f32)).collect();
                let p = tmp(&format!("h{bits}{float}{nch}.wav"));
                write(&p, bits, float, &chans, 16000);
                let want: Vec<f32> = {
                    let r = hound::WavReader::open(&p).unwrap();
                    if float {
                        r.into_samples::<f32>().map(|s| s.unwrap()).collect()
                    } else {
                        let sc = 1.0 / (1u64 << (bits - 1)) as f64;
                        r.into_samples::<i32>().map(|s| (s.unwrap() as f64 * sc) as f32).collect()
                    }
                };
                let got = read_wav(&p).unwrap();
                assert_eq!((got.channels.len(), got.num_samples()), (nch, 3001));
                for (c, ch) in got.channels.iter().enumerate() {
                    for (i, &v) in ch.iter().enumerate() {
                        assert_eq!(v.to_bits(), want[i * nch + c].to_bits(), "{bits}-bit float={float} {nch} ch: [{i}, {c}]");
                    }
                }
                let bytes = std::fs::read(&p).unwrap();
                assert_eq!(read_wav_bytes(&p, &bytes).unwrap(), got);
                let mut r = WavReader::open(&p).unwrap();
                assert_eq!(r.info().frames, Some(3001));
                let mut blocks: Vec<Vec<f32>> = vec![Vec::new(); nch];
                let mut sizes = Vec::new();
                loop {
                    let n = r.read_frames(977, &mut blocks).unwrap();
                    if n == 0 {
                        break;
                    }
                    sizes.push(n);
                }
                assert_eq!(sizes, [977, 977, 977, 70]);
                assert_eq!(blocks, got.channels);
            }
        }
    }

    /// A RIFF file by hand: `fmt` fields, extra chunks before `data` (one of odd size, padded), a
    /// data chunk of `declared` bytes holding `data`.
    fn riff(tag: u16, nch: u16, rate: u32, bits: u16, extra: &[(&[u8; 4], &[u8])], declared: u32, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend(tag.to_le_bytes());
        fmt.extend(nch.to_le_bytes());
        fmt.extend(rate.to_le_bytes());
        fmt.extend((rate as u64 * nch as u64 * bits as u64 / 8).to_le_bytes()[..4].iter());
        fmt.extend(((nch as u32 * bits as u32 / 8) as u16).to_le_bytes());
        fmt.extend(bits.to_le_bytes());
        let mut body = b"WAVE".to_vec();
        let mut chunk = |id: &[u8; 4], size: u32, b: &[u8]| {
            body.extend(id);
            body.extend(size.to_le_bytes());
            body.extend(b);
            if b.len() % 2 == 1 && id != b"data" {
                body.push(0);
            }
        };
        chunk(b"fmt ", 16, &fmt);
        for (id, b) in extra {
            chunk(id, b.len() as u32, b);
        }
        chunk(b"data", declared, data);
        let mut out = b"RIFF".to_vec();
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn streams_extra_chunks_and_hostile_headers() {
        let pcm: Vec<u8> = [100i16, -200, 300, -32768, 32767, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let want = [100.0 / 32768.0, -200.0 / 32768.0, 300.0 / 32768.0, -1.0, 32767.0 / 32768.0, 0.0f32];
        let name = Path::new("mem.wav");
        // a LIST chunk of odd size (padded) and a fact chunk before the data
        let w = riff(1, 2, 8000, 16, &[(b"LIST", b"INFOabc"), (b"fact", &[3, 0, 0, 0])], 12, &pcm);
        let a = read_wav_bytes(name, &w).unwrap();
        assert_eq!(a.channels, vec![vec![want[0], want[2], want[4]], vec![want[1], want[3], want[5]]]);
        // a stream of unknown length (0xFFFFFFFF), read to its end from a reader
        let w = riff(1, 1, 8000, 16, &[], u32::MAX, &pcm);
        let r = WavReader::new(std::io::Cursor::new(w.clone()), Path::new("-")).unwrap();
        assert_eq!(r.info().frames, None);
        assert_eq!(r.read_to_end().unwrap().channels, vec![want.to_vec()]);
        // ... cut inside a frame
        let e = read_wav_bytes(Path::new("-"), &w[..w.len() - 1]).unwrap_err().to_string();
        assert!(e.starts_with("-: truncated") && e.contains("inside a 1-channel frame"), "{e}");
        // data declared as 4 GiB − 2 in a file of a few bytes: an error before any allocation
        let w = riff(1, 1, 8000, 16, &[], u32::MAX - 1, &pcm);
        let p = tmp("claims4g.wav");
        std::fs::write(&p, &w).unwrap();
        for e in [read_wav(&p).unwrap_err().to_string(), read_wav_bytes(&p, &w).unwrap_err().to_string()] {
            assert!(e.contains("claims4g.wav") && e.contains("declares 4294967294 bytes"), "{e}");
        }
        let cases: [(Vec<u8>, &str); 8] = [
            (riff(1, 65535, 16000, 16, &[], 0, &[]), "65535 channels"),
            (riff(1, 0, 16000, 16, &[], 0, &[]), "0 channels"),
            (riff(1, 1, 0, 16, &[], 0, &[]), "sample rate 0 Hz"),
            (riff(1, 1, 10_000_000, 16, &[], 0, &[]), "sample rate 10000000 Hz"),
            (riff(1, 1, 16000, 12, &[], 0, &[]), "12-bit integer"),
            (riff(3, 1, 16000, 16, &[], 0, &[]), "16-bit float"),
            (riff(6, 1, 8000, 8, &[], 0, &[]), "format tag 0x0006"),
            (riff(1, 2, 8000, 16, &[], 7, &pcm[..7]), "not a whole number of 2-channel frames"),
        ];
        for (w, msg) in cases {
            let e = read_wav_bytes(name, &w).unwrap_err().to_string();
            assert!(e.starts_with("mem.wav: ") && e.contains(msg), "{msg}: {e}");
        }
        // a chunk claiming 4 GiB before the data: skipped by reading, so the end of the file ends it
        let mut w = riff(1, 1, 8000, 16, &[(b"junk", b"x")], 12, &pcm);
        let at = w.windows(4).position(|x| x == b"junk").unwrap();
        w[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_wav_bytes(name, &w).unwrap_err().to_string();
        assert!(e.contains("ends inside its 'junk' chunk"), "{e}");
        // a fmt chunk claiming 4 GiB
        let mut w = riff(1, 1, 8000, 16, &[], 12, &pcm);
        w[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_wav_bytes(name, &w).unwrap_err().to_string();
        assert!(e.contains("fmt chunk of 4294967295 bytes"), "{e}");
        // RF64 is named
        let mut w = riff(1, 1, 8000, 16, &[], 12, &pcm);
        w[0..4].copy_from_slice(b"RF64");
        assert!(read_wav_bytes(name, &w).unwrap_err().to_string().contains("RF64"));
        // every prefix of a valid file is an error or (at frame boundaries of an unknown-length
        // stream) a shorter read; never a panic
        let w = riff(1, 2, 8000, 16, &[(b"LIST", b"INFOabc")], 12, &pcm);
        for n in 0..w.len() {
            assert!(read_wav_bytes(name, &w[..n]).is_err(), "prefix {n}");
        }
    }

    /// NaN and infinite samples: an error naming the frame and channel, or zeroed on request.
    #[test]
    fn nonfinite_samples() {
        let mut a = sine(5000, 16000, 300.0);
        let b = sine(5000, 16000, 500.0);
        a[4321] = f32::NAN;
        let p = tmp("nan.wav");
        write(&p, 32, true, &[b.clone(), a.clone()], 16000);
        let e = read_wav(&p).unwrap_err().to_string();
        assert!(e.contains("nan.wav") && e.contains("frame 4321") && e.contains("channel 1") && e.contains("NaN"), "{e}");
        let e = load(&p, 16000, Channels::MixDown).unwrap_err().to_string();
        assert!(e.contains("frame 4321"), "{e}");
        let mut r = WavReader::open(&p).unwrap();
        r.zero_nonfinite(true);
        let mut out = vec![Vec::new(), Vec::new()];
        while r.read_frames(1000, &mut out).unwrap() > 0 {}
        assert_eq!(r.zeroed(), 1);
        assert_eq!(out[1][4321], 0.0);
        assert_eq!(out[1][4320], a[4320]);
        assert_eq!(out[0], b);
        let mut c = sine(100, 16000, 300.0);
        c[7] = f32::NEG_INFINITY;
        write(&p, 32, true, &[c], 16000);
        let e = read_wav(&p).unwrap_err().to_string();
        assert!(e.contains("frame 7") && e.contains("channel 0") && e.contains("-inf"), "{e}");
    }

    /// Blocks of any size, resampled or not, one channel, mixed down or all: concatenated they
    /// equal `load` bit for bit.
    #[test]
    fn blocks_equal_load() {
        let p = tmp("blocks.wav");
        write(&p, 16, false, &[sine(44100 + 77, 44100, 440.0), sine(44100 + 77, 44100, 660.0)], 44100);
        for (rate, ch) in [(16000, Channels::MixDown), (44100, Channels::Select(1)), (22050, Channels::All), (48000, Channels::MixDown)] {
            let want = load(&p, rate, ch).unwrap();
            for block in [100usize, 1024, 5000, 1 << 20] {
                let mut b = Blocks::new(WavReader::open(&p).unwrap(), rate, ch).unwrap();
                let mut got = vec![Vec::new(); want.channels.len()];
                while let Some(x) = b.next_block(block).unwrap() {
                    for (g, x) in got.iter_mut().zip(x) {
                        g.extend(x);
                    }
                }
                assert_eq!(got, want.channels, "rate {rate} {ch:?} blocks of {block}");
            }
        }
        let e = Blocks::new(WavReader::open(&p).unwrap(), 16000, Channels::Select(2)).err().unwrap().to_string();
        assert!(e.contains("channel 2"), "{e}");
        // raw PCM: the data chunk's bytes alone read as the WAV
        let bytes = std::fs::read(&p).unwrap();
        let r = WavReader::raw(&bytes[44..], Path::new("-"), 44100, 2, SampleFormat::Int(16)).unwrap();
        assert_eq!(r.read_to_end().unwrap(), read_wav(&p).unwrap());
        assert!(WavReader::raw(&bytes[44..], Path::new("-"), 0, 2, SampleFormat::Int(16)).is_err());
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
