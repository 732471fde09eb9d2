//! Log-mel spectrogram as M2D and the DCASE 2025 task 4 baseline compute it (issue #16, DESIGN.md
//! §6.4): an nnAudio/torchaudio-style `MelSpectrogram` with librosa's Slaney filters, then
//! `log(x + offset)`.
//!
//! Per signal `x` (length L) and frame t (T = 1 + L / hop frames):
//! - `center=True`: x reflect-padded by n_fft/2 on both sides (torch 'reflect', no edge repeat; needs
//!   L > n_fft/2); frame t = x_pad[t·hop .. t·hop + n_fft);
//! - window: periodic Hann of `win_length` (`0.5 − 0.5·cos(2πn/win_length)`), zero-padded to n_fft,
//!   centred (left pad (n_fft − win_length)/2), as `torch.stft(…, win_length, window=hann_window(win_length))`;
//! - power spectrum `P[k] = |X[k]|²`, k = 0 … n_fft/2;
//! - `mel[m] = Σ_k W[m, k]·P[k]` with `W = librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax,
//!   htk=False, norm='slaney')` ([`slaney_mel_filters`], computed here from the published formulas);
//! - `out[b, m, t] = ln(mel[m] + log_offset)`.
//!
//! Layout: a waveform `(…, L)` (M2D: `(B, L)`) gives `(…, n_mels, T)`. M2D's settings are
//! [`MelOpts::M2D`]: 32 kHz, n_fft = win = 800, hop 320, 80 mels, 50 Hz … 16 kHz, offset f32::EPSILON;
//! 10 s → 1001 frames.
//!
//! CPU: `cpu.rs` (rustfft in f64, two real frames per complex FFT, rayon over frames, each filter's
//! non-zero bin range). CUDA: `cuda.rs` launching `kernels/cuda/melspec.cu`, one block per frame
//! (waveform → log-mel in one launch, no spectrum in global memory): `melspec_fwd_f32_v1` (a plain
//! O(n_fft²) DFT, one thread per frequency bin — the reference port, any even n_fft ≤ 2048) and
//! `melspec_fwd_f32_v2` (mixed-radix 2/3/4/5 Stockham FFT of the n_fft/2-point complex signal packed
//! from the real frame, then the real-input split; n_fft/2 must factor into 2, 3, 5 — 800 does).
//! The dispatcher picks v2 when it applies, else v1.

mod cpu;
mod cuda;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "melspec";

/// Options of [`log_mel`]: the arguments of the MelSpectrogram and the log offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelOpts {
    /// Hz.
    pub sample_rate: u32,
    /// FFT size (even); n_fft/2 + 1 frequency bins.
    pub n_fft: usize,
    /// Hann window length (≤ n_fft), centred in the n_fft frame.
    pub win_length: usize,
    /// Frame shift in samples.
    pub hop: usize,
    pub n_mels: usize,
    /// Lowest and highest filter edge in Hz: 0 ≤ f_min < f_max ≤ sample_rate/2.
    pub f_min: f32,
    pub f_max: f32,
    /// Added before the log (> 0).
    pub log_offset: f32,
}

impl MelOpts {
    /// M2D's front end (DESIGN.md §6.4), the DCASE 2025 task 4 baseline tagger's.
    pub const M2D: MelOpts =
        MelOpts { sample_rate: 32000, n_fft: 800, win_length: 800, hop: 320, n_mels: 80, f_min: 50.0, f_max: 16000.0, log_offset: f32::EPSILON };

    /// Frequency bins: n_fft/2 + 1.
    pub fn n_freq(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Frames of a signal of `len` samples (`center=True`): 1 + len / hop.
    pub fn n_frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// Checks the options; the error names the offending field.
    pub fn check(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::shape(OP, msg));
        if self.sample_rate == 0 {
            return bad("sample_rate must be positive, got 0".into());
        }
        if self.n_fft < 2 || !self.n_fft.is_multiple_of(2) {
            return bad(format!("n_fft must be even and ≥ 2, got {}", self.n_fft));
        }
        if self.win_length == 0 || self.win_length > self.n_fft {
            return bad(format!("win_length must be in 1..=n_fft ({}), got {}", self.n_fft, self.win_length));
        }
        if self.hop == 0 {
            return bad("hop must be ≥ 1, got 0".into());
        }
        if self.n_mels == 0 {
            return bad("n_mels must be ≥ 1, got 0".into());
        }
        let nyq = self.sample_rate as f64 / 2.0;
        let (lo, hi) = (self.f_min as f64, self.f_max as f64);
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi && hi <= nyq) {
            return bad(format!("need 0 ≤ f_min < f_max ≤ Nyquist ({nyq} Hz), got f_min {} and f_max {}", self.f_min, self.f_max));
        }
        if !(self.log_offset > 0.0 && self.log_offset.is_finite()) {
            return bad(format!("log_offset must be positive and finite, got {}", self.log_offset));
        }
        Ok(())
    }
}

impl Default for MelOpts {
    fn default() -> Self {
        MelOpts::M2D
    }
}

/// Slaney's mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz at 200/3 Hz per mel,
/// logarithmic above (27 mels per factor 6.4).
pub fn hz_to_mel_slaney(f: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / (6.4f64.ln() / 27.0)
    } else {
        f / F_SP
    }
}

/// The inverse of [`hz_to_mel_slaney`] (librosa `mel_to_hz(htk=False)`).
pub fn mel_to_hz_slaney(m: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * ((6.4f64.ln() / 27.0) * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// `librosa.filters.mel(sr=sample_rate, n_fft, n_mels, fmin=f_min, fmax=f_max, htk=False,
/// norm='slaney')`, row-major `(n_mels, n_fft/2 + 1)`.
///
/// The n_mels + 2 edges are evenly spaced on the Slaney mel scale from f_min to f_max (as
/// `np.linspace`: the last one is f_max exactly); bin k sits at k·sr/n_fft Hz; filter m is the
/// triangle max(0, min((f − e_m)/(e_{m+1} − e_m), (e_{m+2} − f)/(e_{m+2} − e_{m+1}))), scaled by
/// 2/(e_{m+2} − e_m) (Slaney's equal area). All in f64; the triangle is rounded to f32 before the
/// area scaling and the product rounded again, as librosa stores its float32 weights, so the
/// result is librosa's to the last bit or one f32 ulp. No argument checks (see [`MelOpts::check`]).
pub fn slaney_mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize, f_min: f32, f_max: f32) -> Vec<f32> {
    let n_freq = n_fft / 2 + 1;
    let sr = sample_rate as f64;
    let (m_lo, m_hi) = (hz_to_mel_slaney(f_min as f64), hz_to_mel_slaney(f_max as f64));
    let n_edges = n_mels + 2;
    let step = (m_hi - m_lo) / (n_edges - 1) as f64;
    let edges: Vec<f64> = (0..n_edges).map(|i| mel_to_hz_slaney(if i == n_edges - 1 { m_hi } else { m_lo + i as f64 * step })).collect();
    let mut w = vec![0f32; n_mels * n_freq];
    for m in 0..n_mels {
        let (lo, c, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let area = 2.0 / (hi - lo);
        for (k, wk) in w[m * n_freq..(m + 1) * n_freq].iter_mut().enumerate() {
            let f = k as f64 * sr / n_fft as f64;
            let tri = ((f - lo) / (c - lo)).min((hi - f) / (hi - c)).max(0.0) as f32;
            *wk = (tri as f64 * area) as f32;
        }
    }
    w
}

/// Filter m's non-zero weights `weights[offset[m]..offset[m] + len[m]]` on the bins
/// `start[m]..start[m] + len[m]` (the first to the last non-zero bin; an empty filter has len 0).
#[derive(Debug, Clone)]
pub struct SparseFilters {
    pub start: Vec<u32>,
    pub len: Vec<u32>,
    pub offset: Vec<u32>,
    pub weights: Vec<f32>,
}

impl SparseFilters {
    /// From a dense `(n_mels, n_freq)` bank.
    pub fn from_dense(dense: &[f32], n_mels: usize, n_freq: usize) -> SparseFilters {
        let mut s = SparseFilters { start: vec![], len: vec![], offset: vec![], weights: vec![] };
        for row in dense.chunks(n_freq).take(n_mels) {
            let first = row.iter().position(|&v| v != 0.0);
            let last = row.iter().rposition(|&v| v != 0.0);
            let (a, b) = match (first, last) {
                (Some(a), Some(b)) => (a, b + 1),
                _ => (0, 0),
            };
            s.start.push(a as u32);
            s.len.push((b - a) as u32);
            s.offset.push(s.weights.len() as u32);
            s.weights.extend_from_slice(&row[a..b]);
        }
        s
    }
}

/// Everything derived from the options once: window, filters (dense and sparse).
#[derive(Debug, Clone)]
pub struct MelPlan {
    pub opts: MelOpts,
    /// The periodic Hann window's `win_length` values, in f64 (the CPU path) …
    pub window: Vec<f64>,
    /// … and rounded to f32 (uploaded for the kernels).
    pub window_f32: Vec<f32>,
    /// Where the window starts in the n_fft frame: (n_fft − win_length) / 2.
    pub left: usize,
    /// [`slaney_mel_filters`] of the options, `(n_mels, n_fft/2 + 1)`.
    pub filters: Vec<f32>,
    pub sparse: SparseFilters,
}

impl MelPlan {
    pub fn new(opts: &MelOpts) -> Result<MelPlan> {
        opts.check()?;
        let wl = opts.win_length;
        let window: Vec<f64> = (0..wl).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / wl as f64).cos()).collect();
        let filters = slaney_mel_filters(opts.sample_rate, opts.n_fft, opts.n_mels, opts.f_min, opts.f_max);
        let sparse = SparseFilters::from_dense(&filters, opts.n_mels, opts.n_freq());
        Ok(MelPlan { opts: *opts, window_f32: window.iter().map(|&v| v as f32).collect(), window, left: (opts.n_fft - wl) / 2, filters, sparse })
    }

    /// The plan of `opts`, built once per distinct options and then shared (a few recent ones kept).
    pub fn cached(opts: &MelOpts) -> Result<std::sync::Arc<MelPlan>> {
        use std::sync::{Arc, Mutex, OnceLock};
        static CACHE: OnceLock<Mutex<Vec<Arc<MelPlan>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(p) = cache.lock().unwrap().iter().find(|p| p.opts == *opts) {
            return Ok(p.clone());
        }
        let plan = Arc::new(MelPlan::new(opts)?);
        let mut c = cache.lock().unwrap();
        if c.len() >= 16 {
            c.remove(0);
        }
        c.push(plan.clone());
        Ok(plan)
    }
}

/// Index into the reflect-padded signal (torch 'reflect': no edge repeat). Needs |pad| < len.
#[inline(always)]
pub(crate) fn reflect(j: isize, len: usize) -> usize {
    let l = len as isize;
    let j = if j < 0 { -j } else { j };
    (if j >= l { 2 * (l - 1) - j } else { j }) as usize
}

/// Log-mel spectrogram: waveform `(…, L)` f32 → `(…, n_mels, T)`, T = 1 + L / hop (see the module
/// doc). M2D: `log_mel(&wave, &MelOpts::M2D)` with wave `(B, L)` at 32 kHz.
pub fn log_mel(wave: &Tensor, o: &MelOpts) -> Result<Tensor> {
    log_mel_version(wave, o, None)
}

/// [`log_mel`] forcing a kernel version (1 or 2) on a GPU device; `None` picks the fastest that
/// applies (v2, else v1). Ignored on the CPU.
pub fn log_mel_version(wave: &Tensor, o: &MelOpts, v: Option<u32>) -> Result<Tensor> {
    expect_dtype(OP, wave, DType::F32)?;
    if wave.rank() == 0 {
        return Err(Error::shape(OP, "expects a waveform of shape (batch, samples) or (…, samples), got a scalar"));
    }
    let plan = MelPlan::cached(o)?;
    let len = *wave.shape().last().unwrap();
    if len <= o.n_fft / 2 {
        return Err(Error::shape(
            OP,
            format!("the input is too short: center=True reflect padding needs more than n_fft/2 = {} samples, got {len}", o.n_fft / 2),
        ));
    }
    let batch = wave.numel() / len;
    let mut shape = wave.shape()[..wave.rank() - 1].to_vec();
    shape.extend([o.n_mels, o.n_frames(len)]);
    match wave.device() {
        Device::Cpu => cpu::log_mel(wave.cpu_f32()?, batch, len, &plan, &shape),
        Device::Cuda(_) | Device::Emu => cuda::log_mel(wave, batch, len, &plan, &shape, v),
    }
}

/// Bytes kernel version `v` moves for `batch` signals of `len` samples: (read, written), as counted
/// by the emulator (the formulas in the kernels' doc comments in `kernels/cuda/melspec.cu`).
pub fn kernel_bytes(batch: usize, len: usize, o: &MelOpts, v: u32) -> Result<(u64, u64)> {
    let plan = MelPlan::cached(o)?;
    Ok(cuda::bytes(&plan, batch, len, v))
}

/// Benchmark cases: M2D's log-mel of one 10 s clip at 32 kHz (1001 frames), CPU and kernels v1, v2.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let n = 320_000;
    let wave = crate::testing::rand_tensor(&[1, n], 16);
    let o = MelOpts::M2D;
    // The minimum traffic: the waveform once, the log-mel once.
    let work = Work::Bytes(4.0 * (n + o.n_mels * o.n_frames(n)) as f64);
    // f32 kernels vs the f64 CPU on white noise: log-mel errors ~1e-5 (v1's 800-term DFT sums) and
    // ~1e-6 (v2); 1e-3 leaves room for FMA contraction on a real GPU.
    version_cases(OP, "1x10s@32k_nfft800_mel80", device, DType::F32, work, &[1, 2], (1e-3, 0.0), vec![wave], move |t, v| log_mel_version(&t[0], &o, v))
}
