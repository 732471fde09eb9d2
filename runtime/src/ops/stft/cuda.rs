//! Launcher of `kernels/cuda/stft.cu`.

use super::StftOpts;
use crate::gpu::{backend, GpuBackend, GpuBuffer, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};
use std::sync::Arc;

/// Mirrors `StftParams` in stft.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StftParams {
    pub batch: i32,
    pub len: i32,
    pub n_fft: i32,
    pub log2n: i32,
    pub hop: i32,
    pub n_frames: i32,
    pub n_freq: i32,
    pub expected: i32,
}
const _: () = assert!(std::mem::size_of::<StftParams>() == 32);

impl StftParams {
    /// The parameters of every STFT kernel for `batch` signals of `len` samples in `nt` frames
    /// (`log2n` is read by the v2 FFT kernels, `expected` — the padded length n_fft + hop·(nt − 1) —
    /// by the overlap-add ones; the others ignore them).
    fn new(batch: usize, len: usize, nt: usize, o: &StftOpts) -> StftParams {
        StftParams {
            batch: batch as i32,
            len: len as i32,
            n_fft: o.n_fft as i32,
            log2n: o.n_fft.trailing_zeros() as i32,
            hop: o.hop as i32,
            n_frames: nt as i32,
            n_freq: o.n_freq() as i32,
            expected: (o.n_fft + o.hop * nt.saturating_sub(1)) as i32,
        }
    }
}

/// Mirrors STFT_MAXN / STFT_THREADS.
const MAXN: usize = 2048;
const THREADS: u32 = 256;

/// window [N] | cos(2πj/N) [N] | sin(2πj/N) [N], in f64 rounded to f32.
fn consts(be: &Arc<GpuBackend>, o: &StftOpts) -> Result<GpuBuffer> {
    let n = o.n_fft;
    let mut c = o.window();
    let ang = |j: usize| 2.0 * std::f64::consts::PI * j as f64 / n as f64;
    c.extend((0..n).map(|j| ang(j).cos() as f32));
    c.extend((0..n).map(|j| ang(j).sin() as f32));
    be.upload(bytemuck::cast_slice(&c))
}

fn pick(op: &'static str, kernel: &str, o: &StftOpts, v: Option<u32>) -> Result<u32> {
    let fast = o.n_fft.is_power_of_two() && o.n_fft <= MAXN;
    match v {
        None => Ok(if fast { 2 } else { 1 }),
        Some(1) => Ok(1),
        Some(2) if fast => Ok(2),
        Some(v) => Err(Error::Launch {
            op,
            kernel: format!("{kernel}_v{v}"),
            msg: format!("version {v} does not exist or needs a power-of-two n_fft ≤ {MAXN} (got {})", o.n_fft),
        }),
    }
}

fn check_i32(op: &'static str, n: usize) -> Result<()> {
    if n > i32::MAX as usize {
        return Err(Error::shape(op, format!("{n} elements exceed the CUDA kernels' i32 indexing")));
    }
    Ok(())
}

pub(super) fn stft(x: &Tensor, batch: usize, len: usize, o: &StftOpts, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let v = pick("stft", "stft_fwd_f32", o, v)?;
    let (nf, nt) = (o.n_freq(), o.n_frames(len));
    let total = batch * 2 * nf * nt;
    check_i32("stft", total.max(x.numel()))?;
    let be = backend(x.device())?;
    let out = be.alloc(total * 4)?;
    if batch == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()));
    }
    let c = consts(&be, o)?;
    let p = StftParams::new(batch, len, nt, o);
    let l = Launch::new("stft", "stft", format!("stft_fwd_f32_v{v}"));
    let l = if v == 1 { l.grid(grid_1d(batch * nf * nt, THREADS), 1, 1) } else { l.grid(nt as u32, batch as u32, 1) };
    l.block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(&c).buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()))
}

pub(super) fn istft(spec: &Tensor, batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let v = pick("istft", "istft_frames_fwd_f32", o, v)?;
    let n = o.n_fft;
    check_i32("istft", (batch * nt * n).max(batch * len).max(spec.numel()))?;
    let be = backend(spec.device())?;
    let out = be.alloc(batch * len * 4)?;
    if batch == 0 || len == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, spec.device()));
    }
    let c = consts(&be, o)?;
    let frames = be.alloc(batch * nt * n * 4)?;
    let p = StftParams::new(batch, len, nt, o);
    let l = Launch::new("istft", "stft", format!("istft_frames_fwd_f32_v{v}"));
    let l = if v == 1 { l.grid(grid_1d(batch * nt * n, THREADS), 1, 1) } else { l.grid(nt as u32, batch as u32, 1) };
    l.block(THREADS, 1, 1).buf(spec.gpu_buf()?).buf(&c).buf(&frames).param(&p).run(&be)?;
    Launch::new("istft", "stft", "istft_ola_fwd_f32_v1")
        .grid(grid_1d(batch * len, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(&frames)
        .buf(&c)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, spec.device()))
}

/// [`super::istft_bwd`] on a GPU device: `istft_ola_bwd_f32_v1` (crop + envelope division into a
/// (batch, expected) buffer), then `istft_frames_bwd_f32_v1` (naive DFT per windowed frame).
pub(super) fn istft_bwd(grad: &Tensor, batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    if v != 1 {
        return Err(Error::Launch { op: "istft_bwd", kernel: format!("istft_frames_bwd_f32_v{v}"), msg: format!("no version {v} (v1 only)") });
    }
    let (n, nf) = (o.n_fft, o.n_freq());
    let expected = n + o.hop * (nt - 1);
    let total = batch * 2 * nf * nt;
    check_i32("istft_bwd", total.max(batch * expected).max(grad.numel()))?;
    let be = backend(grad.device())?;
    let out = be.alloc(total * 4)?;
    if batch == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, grad.device()));
    }
    let c = consts(&be, o)?;
    let gp = be.alloc(batch * expected * 4)?;
    let p = StftParams::new(batch, len, nt, o);
    Launch::new("istft_bwd", "stft", "istft_ola_bwd_f32_v1")
        .grid(grid_1d(batch * expected, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(grad.gpu_buf()?)
        .buf(&c)
        .buf(&gp)
        .param(&p)
        .run(&be)?;
    Launch::new("istft_bwd", "stft", "istft_frames_bwd_f32_v1")
        .grid(grid_1d(total / 2, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(&gp)
        .buf(&c)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, grad.device()))
}

/// [`super::stft_bwd`] on a GPU device: `stft_frames_bwd_f32_v1` (each frame's windowed inverse
/// DFT) then `stft_ola_bwd_f32_v1` (overlap-add with the reflect padding folded back).
pub(super) fn stft_bwd(grad: &Tensor, batch: usize, nt: usize, len: usize, o: &StftOpts, shape: &[usize]) -> Result<Tensor> {
    let n = o.n_fft;
    check_i32("stft_bwd", (batch * nt * n).max(batch * len).max(grad.numel()))?;
    let be = backend(grad.device())?;
    let out = be.alloc(batch * len * 4)?;
    if batch == 0 || len == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, grad.device()));
    }
    let c = consts(&be, o)?;
    let frames = be.alloc(batch * nt * n * 4)?;
    let p = StftParams::new(batch, len, nt, o);
    Launch::new("stft_bwd", "stft", "stft_frames_bwd_f32_v1")
        .grid(grid_1d(batch * nt * n, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(grad.gpu_buf()?)
        .buf(&c)
        .buf(&frames)
        .param(&p)
        .run(&be)?;
    Launch::new("stft_bwd", "stft", "stft_ola_bwd_f32_v1")
        .grid(grid_1d(batch * len, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(&frames)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, grad.device()))
}
