//! Kaldi-compatible log-mel filterbank (`torchaudio.compliance.kaldi.fbank`), and AST's input
//! normalisation (HF `ASTFeatureExtractor`).
//!
//! The defaults ([`FbankOpts::default`]) are AST's call (DESIGN.md §6.1):
//! `kaldi.fbank(wav, htk_compat=True, sample_frequency=16000, use_energy=False,
//! window_type='hanning', num_mel_bins=128, dither=0.0, frame_shift=10)`. Per frame (25 ms = 400
//! samples, shift 10 ms = 160, `snip_edges=True` so frames = 1 + (N − 400) // 160): remove the DC
//! offset, pre-emphasis `x[i] −= 0.97·x[i−1]` (kaldi: `x[0] −= 0.97·x[0]`), window (kaldi
//! 'hanning' = `0.5 − 0.5·cos(2πn/(N−1))`), zero-pad to the next power of two (512), power
//! spectrum, 128 triangular kaldi-mel filters (`mel = 1127·ln(1 + f/700)`, 20 Hz … Nyquist), and
//! `ln(max(e, f32::EPSILON))`.
//!
//! CPU: `cpu.rs` (rustfft, rayon over frames, sparse mel matrix). CUDA: `cuda.rs` launching the
//! fused kernel `fbank_fwd_f32_v1` of `kernels/cuda/fbank.cu` (waveform → log-mel in one launch,
//! one block per frame, no spectrum in global memory), and `ast_input_fwd_f32_v1` for
//! [`ast_input`] on a GPU tensor. Dither is not implemented (AST uses `dither=0.0`); neither is
//! `snip_edges=False`, VTLN, or the energy column (`use_energy=False`).

mod cpu;
mod cuda;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

/// Kaldi window types (`window_type=` of torchaudio's kaldi fbank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `0.5 − 0.5·cos(2πn/(N−1))` (torch.hann_window(N, periodic=False)); AST's choice.
    Hanning,
    /// `0.54 − 0.46·cos(2πn/(N−1))`.
    Hamming,
    /// Kaldi's default: hanning^0.85.
    Povey,
    Rectangular,
    /// `0.42 − 0.5·cos(2πn/(N−1)) + 0.08·cos(4πn/(N−1))` (torchaudio's `blackman` with its default
    /// `blackman_coeff` 0.42).
    Blackman,
}

impl Window {
    /// The window's `n` values, computed in f64 and rounded to f32.
    pub fn values(self, n: usize) -> Vec<f32> {
        let d = (n.max(2) - 1) as f64;
        (0..n)
            .map(|i| {
                let c = (2.0 * std::f64::consts::PI * i as f64 / d).cos();
                (match self {
                    Window::Hanning => 0.5 - 0.5 * c,
                    Window::Hamming => 0.54 - 0.46 * c,
                    Window::Povey => (0.5 - 0.5 * c).powf(0.85),
                    Window::Rectangular => 1.0,
                    Window::Blackman => 0.42 - 0.5 * c + 0.08 * (4.0 * std::f64::consts::PI * i as f64 / d).cos(),
                }) as f32
            })
            .collect()
    }
}

/// AST's input normalisation: pad with zeros / truncate to `max_length` frames, then
/// `(x − mean) / (2·std)` (so padded rows hold `−mean / (2·std)`, 0.46703 for AudioSet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AstNorm {
    pub max_length: usize,
    pub mean: f32,
    pub std: f32,
}

impl AstNorm {
    /// HF `ASTFeatureExtractor` defaults (AudioSet): 1024 frames, mean −4.2677393, std 4.5689974.
    pub const AUDIOSET: AstNorm = AstNorm { max_length: 1024, mean: -4.267_739_3, std: 4.568_997_4 };

    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        (x - self.mean) / (self.std * 2.0)
    }
}

/// Options of [`fbank`]. `Default` is AST's call (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FbankOpts {
    /// Hz (`sample_frequency`).
    pub sample_rate: f32,
    pub num_mel_bins: usize,
    /// Frame length in ms (`frame_length`, 25).
    pub frame_length_ms: f32,
    /// Frame shift in ms (`frame_shift`, 10).
    pub frame_shift_ms: f32,
    /// Pre-emphasis coefficient (`preemphasis_coefficient`, 0.97; 0 disables).
    pub preemph: f32,
    /// Lowest mel filter edge in Hz (`low_freq`, 20).
    pub low_freq: f32,
    /// Highest edge in Hz; ≤ 0 means Nyquist + high_freq (`high_freq`, 0 → Nyquist).
    pub high_freq: f32,
    /// Subtract each frame's mean (`remove_dc_offset`, true).
    pub remove_dc_offset: bool,
    pub window: Window,
    /// Zero-pad frames to the next power of two (`round_to_power_of_two`, true).
    pub round_to_power_of_two: bool,
    /// When set, the result is AST's input (pad/truncate + normalise), fused into the kernel.
    pub ast_norm: Option<AstNorm>,
}

impl Default for FbankOpts {
    fn default() -> Self {
        FbankOpts {
            sample_rate: 16000.0,
            num_mel_bins: 128,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            preemph: 0.97,
            low_freq: 20.0,
            high_freq: 0.0,
            remove_dc_offset: true,
            window: Window::Hanning,
            round_to_power_of_two: true,
            ast_norm: None,
        }
    }
}

/// The sparse mel filterbank: filter `m` has weights `weights[offset[m]..offset[m]+len[m]]` on FFT
/// bins `start[m]..start[m]+len[m]` (the Nyquist bin always has weight 0, as in torchaudio).
#[derive(Debug, Clone)]
pub struct MelBank {
    pub start: Vec<u32>,
    pub len: Vec<u32>,
    pub offset: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Everything derived from the options once: sizes, window, filterbank.
#[derive(Debug, Clone)]
pub struct FbankPlan {
    /// Samples per frame (400).
    pub win: usize,
    /// Frame shift in samples (160).
    pub shift: usize,
    /// FFT size (512).
    pub n_fft: usize,
    pub window: Vec<f32>,
    pub mel: MelBank,
    pub opts: FbankOpts,
}

fn mel_scale(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

impl FbankPlan {
    pub fn new(opts: &FbankOpts) -> Result<FbankPlan> {
        let op = "fbank";
        if !(opts.sample_rate > 0.0) || !opts.sample_rate.is_finite() {
            return Err(Error::shape(op, format!("sample_rate must be positive, got {}", opts.sample_rate)));
        }
        // torchaudio: int(sample_frequency * ms * 0.001)
        let win = (opts.sample_rate as f64 * opts.frame_length_ms as f64 * 0.001) as usize;
        let shift = (opts.sample_rate as f64 * opts.frame_shift_ms as f64 * 0.001) as usize;
        if win < 2 || shift < 1 {
            return Err(Error::shape(op, format!("frame length {win} and shift {shift} samples must be ≥ 2 and ≥ 1")));
        }
        if opts.num_mel_bins <= 3 {
            return Err(Error::shape(op, format!("num_mel_bins must be > 3, got {}", opts.num_mel_bins)));
        }
        let n_fft = if opts.round_to_power_of_two { win.next_power_of_two() } else { win };
        if n_fft % 2 != 0 {
            return Err(Error::shape(op, format!("the padded frame length {n_fft} must be even")));
        }
        let sr = opts.sample_rate as f64;
        let nyq = 0.5 * sr;
        let low = opts.low_freq as f64;
        let high = if opts.high_freq <= 0.0 { opts.high_freq as f64 + nyq } else { opts.high_freq as f64 };
        if !(0.0 <= low && low < nyq && 0.0 < high && high <= nyq && low < high) {
            return Err(Error::shape(op, format!("bad low_freq {low} / high_freq {high} vs. Nyquist {nyq}")));
        }
        // The triangles as torchaudio's get_mel_banks computes them: the edges' mel values in f64
        // (Python floats), then everything in f32 (a Python float meeting a float32 tensor is rounded
        // to f32), in its order of operations. The same f32 rounding decides whether an FFT bin lying
        // exactly on a triangle's edge gets a tiny positive weight or none, which is what a filter
        // with no other bin (many mel bins, small FFT) then measures; computing in f64 instead gave
        // such filters log(ε) where torchaudio has a finite energy (2.9 apart, 8 kHz, n_fft 80).
        let nb = opts.num_mel_bins;
        let (ml, mh) = (mel_scale(low), mel_scale(high));
        let (ml, delta) = (ml as f32, ((mh - ml) / (nb + 1) as f64) as f32);
        let bin_w = (sr / n_fft as f64) as f32;
        let fft_mel: Vec<f32> = (0..n_fft / 2).map(|k| 1127.0f32 * (1.0f32 + k as f32 * bin_w / 700.0f32).ln()).collect();
        let mut mel = MelBank { start: vec![], len: vec![], offset: vec![], weights: vec![] };
        for m in 0..nb {
            let mf = m as f32;
            let (l, c, r) = (ml + mf * delta, ml + (mf + 1.0) * delta, ml + (mf + 2.0) * delta);
            let mut first = None;
            let mut ws = Vec::new();
            for (k, &x) in fft_mel.iter().enumerate() {
                let w = ((x - l) / (c - l)).min((r - x) / (r - c)).max(0.0);
                if w > 0.0 {
                    first.get_or_insert(k);
                    ws.push(w);
                } else if first.is_some() {
                    break;
                }
            }
            mel.start.push(first.unwrap_or(0) as u32);
            mel.len.push(ws.len() as u32);
            mel.offset.push(mel.weights.len() as u32);
            mel.weights.extend(ws);
        }
        Ok(FbankPlan { win, shift, n_fft, window: opts.window.values(win), mel, opts: *opts })
    }

    /// The plan of `opts`, built once per distinct options and then shared: building it (128 mel
    /// triangles over 256 bins, each bin through ln) costs about as much as the fbank of a 10 s clip.
    pub fn cached(opts: &FbankOpts) -> Result<std::sync::Arc<FbankPlan>> {
        use std::sync::{Arc, Mutex, OnceLock};
        static CACHE: OnceLock<Mutex<Vec<Arc<FbankPlan>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(p) = cache.lock().unwrap().iter().find(|p| p.opts == *opts) {
            return Ok(p.clone());
        }
        let plan = Arc::new(FbankPlan::new(opts)?);
        let mut c = cache.lock().unwrap();
        if c.len() >= 16 {
            c.remove(0);
        }
        c.push(plan.clone());
        Ok(plan)
    }

    /// Frames of a signal of `n` samples (`snip_edges=True`): 1 + (n − win) // shift, 0 if n < win.
    pub fn frames(&self, n: usize) -> usize {
        if n < self.win {
            0
        } else {
            1 + (n - self.win) / self.shift
        }
    }

    /// Rows of the result for `n` samples (max_length with AST normalisation).
    pub fn out_rows(&self, n: usize) -> usize {
        self.opts.ast_norm.map(|a| a.max_length).unwrap_or_else(|| self.frames(n))
    }
}

fn check_wave(wave: &Tensor) -> Result<()> {
    expect_dtype("fbank", wave, DType::F32)?;
    if wave.rank() != 1 {
        return Err(Error::shape("fbank", format!("expects a mono waveform of shape (samples,), got {:?}", wave.shape())));
    }
    Ok(())
}

/// Log-mel filterbank of a mono waveform `(samples,)` → `(frames, num_mel_bins)`, or with
/// `opts.ast_norm` AST's input `(max_length, num_mel_bins)`.
pub fn fbank(wave: &Tensor, opts: &FbankOpts) -> Result<Tensor> {
    check_wave(wave)?;
    let plan = FbankPlan::cached(opts)?;
    match wave.device() {
        Device::Cpu => cpu::fbank(wave.cpu_f32()?, &plan),
        Device::Cuda(_) | Device::Emu => cuda::fbank(wave, &plan),
    }
}

/// The raw fbank (no AST normalisation) of a signal that arrives in blocks, in memory that does not
/// grow with its length: frames are computed once all their samples are there, in blocks of an even
/// number of frames from the start (the CPU pairs consecutive frames in one FFT), so the frames
/// concatenated equal [`fbank`] of the whole signal bit for bit.
pub struct FbankStream {
    device: Device,
    /// The plan of the options without AST normalisation.
    plan: std::sync::Arc<FbankPlan>,
    samples: Vec<f32>,
    /// Samples of the next pushes that no frame uses (a shift longer than the frame).
    skip: usize,
    frames: usize,
}

impl FbankStream {
    /// Frames computed per block (even).
    pub const BLOCK: usize = 256;

    pub fn new(opts: &FbankOpts, device: Device) -> Result<FbankStream> {
        let plan = FbankPlan::cached(&FbankOpts { ast_norm: None, ..*opts })?;
        Ok(FbankStream { device, plan, samples: Vec::new(), skip: 0, frames: 0 })
    }

    /// Frames so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Frames are computed in multiples of this many (except at the end): even on the CPU, so that
    /// the FFT pairs frames as on the whole signal; whole blocks on a device (fewer launches).
    fn unit(&self) -> usize {
        if self.device == Device::Cpu {
            2
        } else {
            Self::BLOCK
        }
    }

    /// Appends the fbank of the first `frames` frames of `src` to `out` (on the CPU straight from the
    /// slice into `out`, elsewhere through a device tensor) and counts them.
    fn frames_into(&self, src: &[f32], frames: usize, out: &mut Vec<f32>) -> Result<()> {
        if frames == 0 {
            return Ok(());
        }
        let used = (frames - 1) * self.plan.shift + self.plan.win;
        match self.device {
            Device::Cpu => {
                let k = frames * self.plan.opts.num_mel_bins;
                out.reserve(k);
                cpu::fbank_into(&src[..used], &self.plan, &mut out.spare_capacity_mut()[..k]);
                // SAFETY: fbank_into wrote all k values after the old end.
                unsafe { out.set_len(out.len() + k) };
            }
            d => out.extend(fbank(&Tensor::from_vec(src[..used].to_vec(), &[used])?.to_device(d)?, &self.plan.opts)?.to_device(Device::Cpu)?.into_vec()?),
        }
        Ok(())
    }

    /// Appends samples; returns the frames completed by them (frames × mel, row-major; often none).
    pub fn push(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.push_into(x, &mut out)?;
        Ok(out)
    }

    /// Appends samples; appends the frames completed by them to `out` (frames × mel, row-major).
    ///
    /// Only the samples of frames that straddle two pushes are copied: the frames starting in the
    /// kept tail are completed from the head of `x`, the rest are computed from `x` itself.
    pub fn push_into(&mut self, mut x: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let (unit, win, shift) = (self.unit(), self.plan.win, self.plan.shift);
        // samples between frames (a shift longer than the frame) that an earlier push ran out of
        let k = self.skip.min(x.len());
        self.skip -= k;
        x = &x[k..];
        if !self.samples.is_empty() {
            let s = self.samples.len();
            // every frame that starts in the tail, rounded up to the unit, and the samples they need
            // (up to the start of the frame after them, when the shift is longer than a frame)
            let m = s.div_ceil(shift).div_ceil(unit) * unit;
            let need = (m - 1) * shift + win.max(shift);
            if s + x.len() < need {
                // too short to complete them: buffer it, computing what whole units there are
                self.samples.extend_from_slice(x);
                let n = self.plan.frames(self.samples.len()) / unit * unit;
                self.frames_into(&self.samples, n, out)?;
                self.frames += n;
                self.advance(n * shift);
                return Ok(());
            }
            self.samples.extend_from_slice(&x[..need - s]);
            self.frames_into(&self.samples, m, out)?;
            self.frames += m;
            self.samples.clear();
            // the next frame starts m·shift into the tail: at or after its end (every frame starting
            // in it was taken), and at most `need` into it
            x = &x[m * shift - s..];
        }
        let n = self.plan.frames(x.len()) / unit * unit;
        self.frames_into(x, n, out)?;
        self.frames += n;
        // the tail from the next frame's start (the buffer is empty here)
        match x.get(n * shift..) {
            Some(rest) => self.samples.extend_from_slice(rest),
            None => self.skip += n * shift - x.len(),
        }
        Ok(())
    }

    /// Drops `by` samples from the head of the kept ones, and those of later pushes past its end.
    fn advance(&mut self, by: usize) {
        if by <= self.samples.len() {
            self.samples.drain(..by);
        } else {
            self.skip += by - self.samples.len();
            self.samples.clear();
        }
    }

    /// The end of the signal: every remaining complete frame.
    pub fn finish(&mut self) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.finish_into(&mut out)?;
        Ok(out)
    }

    /// The end of the signal: every remaining complete frame, appended to `out`.
    pub fn finish_into(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let n = self.plan.frames(self.samples.len());
        self.frames_into(&self.samples, n, out)?;
        self.frames += n;
        self.samples.clear();
        Ok(())
    }
}

/// AST's input from a raw fbank `(frames, mel)`: pad with zeros / truncate to `max_length` frames,
/// then `(x − mean) / (2·std)` (HF `ASTFeatureExtractor`).
pub fn ast_input(fbank: &Tensor, max_length: usize, mean: f32, std: f32) -> Result<Tensor> {
    expect_dtype("ast_input", fbank, DType::F32)?;
    if fbank.rank() != 2 {
        return Err(Error::shape("ast_input", format!("expects a fbank of shape (frames, mel), got {:?}", fbank.shape())));
    }
    let norm = AstNorm { max_length, mean, std };
    match fbank.device() {
        Device::Cpu => cpu::ast_input(fbank.cpu_f32()?, fbank.shape()[0], fbank.shape()[1], &norm),
        Device::Cuda(_) | Device::Emu => cuda::ast_input(fbank, &norm),
    }
}

/// Bytes the fused kernel moves for a signal of `n` samples: (read, written), as counted by the
/// emulator (see the doc comment of `fbank_fwd_f32_v1` in `kernels/cuda/fbank.cu`).
pub fn fused_kernel_bytes(n: usize, opts: &FbankOpts) -> Result<(u64, u64)> {
    let plan = FbankPlan::cached(opts)?;
    Ok(cuda::bytes(&plan, n))
}

/// Benchmark cases: fbank of a 10 s 16 kHz clip (AST's call), CPU and the fused kernel.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let n = 160_000;
    let wave = crate::testing::rand_tensor(&[n], 7);
    let opts = FbankOpts::default();
    let (r, w) = fused_kernel_bytes(n, &opts)?;
    // The kernel is f32, the CPU reference f64: in the lowest mel bins (attenuated ~30 dB by
    // pre-emphasis) f32 FFT rounding reaches ~2e-3 in log energy on a real GPU (FMA contraction);
    // the golden tests hold the CPU path to 1e-3 against torchaudio.
    version_cases("fbank", "10s@16k_mel128", device, DType::F32, Work::Bytes((r + w) as f64), &[1], (5e-3, 0.0), vec![wave], move |t, _v| fbank(&t[0], &opts))
}
