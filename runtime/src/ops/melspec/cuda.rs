//! Launcher of `kernels/cuda/melspec.cu`: `melspec_fwd_f32_v1` (DFT) and `melspec_fwd_f32_v2`
//! (mixed-radix FFT), one block per (frame, signal).

use super::MelPlan;
use crate::gpu::{backend, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `MelParams` in melspec.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MelParams {
    pub batch: i32,
    pub len: i32,
    pub n_fft: i32,
    pub win: i32,
    pub left: i32,
    pub hop: i32,
    pub n_frames: i32,
    pub n_freq: i32,
    pub n_mels: i32,
    pub n_stages: i32,
    pub radices: i32,
    pub nnz: i32,
    pub log_offset: f32,
    pub pad: [i32; 3],
}
const _: () = assert!(std::mem::size_of::<MelParams>() == 64);

/// Mirrors MELSPEC_MAXN / MELSPEC_V1_THREADS / MELSPEC_V2_THREADS in melspec.cu.
const MAXN: usize = 2048;
const V1_THREADS: u32 = 256;
const V2_THREADS: u32 = 128;
/// The most radix stages v2's `radices` field holds (3 bits each).
const MAX_STAGES: usize = 8;

/// v2's radix stages of the m-point FFT: 4s first, then 2, 3, 5; None when m has another prime
/// factor (or needs more than MAX_STAGES stages).
pub(super) fn radix_plan(mut m: usize) -> Option<Vec<usize>> {
    let mut rs = Vec::new();
    while m.is_multiple_of(4) {
        rs.push(4);
        m /= 4;
    }
    for r in [2, 3, 5] {
        while m.is_multiple_of(r) {
            rs.push(r);
            m /= r;
        }
    }
    (m == 1 && rs.len() <= MAX_STAGES).then_some(rs)
}

/// (read, written) global bytes of either version for `batch` signals of `len` samples (the .cu's
/// doc comments): per frame read 4·win (samples) + 4·win (window) + 8·N (twiddles) + 12·n_mels
/// (ranges) + 4·nnz (weights), written 4·n_mels.
pub(super) fn bytes(plan: &MelPlan, batch: usize, len: usize, _v: u32) -> (u64, u64) {
    let o = &plan.opts;
    let frames = (batch * o.n_frames(len)) as u64;
    let read = 8 * o.win_length as u64 + 8 * o.n_fft as u64 + 12 * o.n_mels as u64 + 4 * plan.sparse.weights.len() as u64;
    (frames * read, frames * 4 * o.n_mels as u64)
}

fn pick(plan: &MelPlan, v: Option<u32>) -> Result<u32> {
    let fast = radix_plan(plan.opts.n_fft / 2).is_some();
    match v {
        None => Ok(if fast { 2 } else { 1 }),
        Some(1) => Ok(1),
        Some(2) if fast => Ok(2),
        Some(v) => Err(Error::Launch {
            op: "melspec",
            kernel: format!("melspec_fwd_f32_v{v}"),
            msg: format!("version {v} does not exist, or needs n_fft/2 to factor into 2, 3 and 5 (n_fft {})", plan.opts.n_fft),
        }),
    }
}

pub(super) fn log_mel(x: &Tensor, batch: usize, len: usize, plan: &MelPlan, shape: &[usize], v: Option<u32>) -> Result<Tensor> {
    let o = &plan.opts;
    let v = pick(plan, v)?;
    let kernel = format!("melspec_fwd_f32_v{v}");
    if o.n_fft > MAXN {
        return Err(Error::Launch { op: "melspec", kernel, msg: format!("n_fft {} exceeds the kernels' {MAXN} (use the CPU)", o.n_fft) });
    }
    let nt = o.n_frames(len);
    let total = batch * o.n_mels * nt;
    if total.max(x.numel()) > i32::MAX as usize || nt > i32::MAX as usize {
        return Err(Error::shape("melspec", format!("{} elements exceed the CUDA kernels' i32 indexing", total.max(x.numel()))));
    }
    if batch > 65535 {
        return Err(Error::Launch { op: "melspec", kernel, msg: format!("{batch} signals exceed the grid's 65535 in y") });
    }
    let be = backend(x.device())?;
    let out = be.alloc(total * 4)?;
    if total == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()));
    }
    let n = o.n_fft;
    let ang = |j: usize| 2.0 * std::f64::consts::PI * j as f64 / n as f64;
    let mut consts = Vec::with_capacity(o.win_length + 2 * n + plan.sparse.weights.len());
    consts.extend_from_slice(&plan.window_f32);
    consts.extend((0..n).map(|j| ang(j).cos() as f32));
    consts.extend((0..n).map(|j| ang(j).sin() as f32));
    consts.extend_from_slice(&plan.sparse.weights);
    let s = &plan.sparse;
    let rng: Vec<i32> = (0..o.n_mels).flat_map(|m| [s.start[m] as i32, s.len[m] as i32, s.offset[m] as i32]).collect();
    let consts = be.upload(bytemuck::cast_slice(&consts))?;
    let rng = be.upload(bytemuck::cast_slice(&rng))?;
    let stages = if v == 2 { radix_plan(n / 2).unwrap_or_default() } else { Vec::new() };
    let p = MelParams {
        batch: batch as i32,
        len: len as i32,
        n_fft: n as i32,
        win: o.win_length as i32,
        left: plan.left as i32,
        hop: o.hop as i32,
        n_frames: nt as i32,
        n_freq: o.n_freq() as i32,
        n_mels: o.n_mels as i32,
        n_stages: stages.len() as i32,
        radices: stages.iter().enumerate().map(|(i, &r)| (r as i32) << (3 * i)).sum(),
        nnz: s.weights.len() as i32,
        log_offset: o.log_offset,
        pad: [0; 3],
    };
    let threads = if v == 2 { V2_THREADS } else { V1_THREADS };
    Launch::new("melspec", "melspec", kernel)
        .grid(nt as u32, batch as u32, 1)
        .block(threads, 1, 1)
        .buf(x.gpu_buf()?)
        .buf(&consts)
        .buf(&rng)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, x.device()))
}
