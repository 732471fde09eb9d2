//! Launcher of `kernels/cuda/fbank.cu`: the fused `fbank_fwd_f32_v1` and `ast_input_fwd_f32_v1`.

use super::{AstNorm, FbankPlan};
use crate::gpu::{backend, Launch};
use crate::ops::grid_1d;
use crate::{DType, Error, Result, Tensor};

/// Mirrors `FbankParams` in fbank.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct FbankParams {
    pub n_samples: i32,
    pub win: i32,
    pub shift: i32,
    pub n_fft: i32,
    pub log2n: i32,
    pub n_frames: i32,
    pub n_mel: i32,
    pub out_rows: i32,
    pub remove_dc: i32,
    pub ast: i32,
    pub preemph: f32,
    pub ast_mean: f32,
    pub ast_std2: f32,
    pub nnz: i32,
    pub pad: [i32; 2],
}
const _: () = assert!(std::mem::size_of::<FbankParams>() == 64);

/// Mirrors FBANK_MAXN / FBANK_THREADS in fbank.cu.
const MAXN: usize = 2048;
const THREADS: u32 = 256;

/// (read, written) global bytes of `fbank_fwd_f32_v1` for `n` samples (the .cu's doc comment).
pub(super) fn bytes(plan: &FbankPlan, n: usize) -> (u64, u64) {
    let rows = plan.out_rows(n) as u64;
    let frames = plan.frames(n).min(plan.out_rows(n)) as u64;
    let nm = plan.opts.num_mel_bins as u64;
    let per_frame = 8 * plan.win as u64 + 4 * plan.n_fft as u64 + 12 * nm + 4 * plan.mel.weights.len() as u64;
    (frames * per_frame, rows * 4 * nm)
}

pub(super) fn fbank(wave: &Tensor, plan: &FbankPlan) -> Result<Tensor> {
    let kernel = "fbank_fwd_f32_v1";
    let n = wave.numel();
    let nm = plan.opts.num_mel_bins;
    if !plan.n_fft.is_power_of_two() || plan.n_fft > MAXN {
        return Err(Error::Launch {
            op: "fbank",
            kernel: kernel.into(),
            msg: format!("n_fft {} must be a power of two ≤ {MAXN} (use round_to_power_of_two, or the CPU)", plan.n_fft),
        });
    }
    if n > i32::MAX as usize {
        return Err(Error::shape("fbank", format!("{n} samples exceed the CUDA kernel's i32 indexing")));
    }
    let rows = plan.out_rows(n);
    let frames = plan.frames(n).min(rows);
    let be = backend(wave.device())?;
    let out = be.alloc(rows * nm * 4)?;
    if rows == 0 {
        return Ok(Tensor::from_gpu(out, &[0, nm], DType::F32, wave.device()));
    }
    let half = plan.n_fft / 2;
    let mut consts = Vec::with_capacity(plan.win + plan.n_fft + plan.mel.weights.len());
    consts.extend_from_slice(&plan.window);
    let ang = |j: usize| 2.0 * std::f64::consts::PI * j as f64 / plan.n_fft as f64;
    consts.extend((0..half).map(|j| ang(j).cos() as f32));
    consts.extend((0..half).map(|j| ang(j).sin() as f32));
    consts.extend_from_slice(&plan.mel.weights);
    let mut rng = Vec::with_capacity(3 * nm);
    for m in 0..nm {
        rng.extend([plan.mel.start[m] as i32, plan.mel.len[m] as i32, plan.mel.offset[m] as i32]);
    }
    let consts = be.upload(bytemuck::cast_slice(&consts))?;
    let rng = be.upload(bytemuck::cast_slice(&rng))?;
    let a = plan.opts.ast_norm.unwrap_or(AstNorm { max_length: 0, mean: 0.0, std: 0.5 });
    let p = FbankParams {
        n_samples: n as i32,
        win: plan.win as i32,
        shift: plan.shift as i32,
        n_fft: plan.n_fft as i32,
        log2n: plan.n_fft.trailing_zeros() as i32,
        n_frames: frames as i32,
        n_mel: nm as i32,
        out_rows: rows as i32,
        remove_dc: plan.opts.remove_dc_offset as i32,
        ast: plan.opts.ast_norm.is_some() as i32,
        preemph: plan.opts.preemph,
        ast_mean: a.mean,
        ast_std2: a.std * 2.0,
        nnz: plan.mel.weights.len() as i32,
        pad: [0; 2],
    };
    Launch::new("fbank", "fbank", kernel)
        .grid(rows as u32, 1, 1)
        .block(THREADS, 1, 1)
        .buf(wave.gpu_buf()?)
        .buf(&consts)
        .buf(&rng)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, &[rows, nm], DType::F32, wave.device()))
}

pub(super) fn ast_input(fb: &Tensor, a: &AstNorm) -> Result<Tensor> {
    let (frames, nm) = (fb.shape()[0], fb.shape()[1]);
    let rows = a.max_length;
    if rows * nm > i32::MAX as usize {
        return Err(Error::shape("ast_input", "output exceeds the CUDA kernel's i32 indexing"));
    }
    let be = backend(fb.device())?;
    let out = be.alloc(rows * nm * 4)?;
    if rows * nm == 0 {
        return Ok(Tensor::from_gpu(out, &[rows, nm], DType::F32, fb.device()));
    }
    Launch::new("ast_input", "fbank", "ast_input_fwd_f32_v1")
        .grid(grid_1d(rows * nm, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(fb.gpu_buf()?)
        .buf(&out)
        .i32(frames.min(rows) as i32)
        .i32(rows as i32)
        .i32(nm as i32)
        .f32(a.mean)
        .f32(a.std * 2.0)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, &[rows, nm], DType::F32, fb.device()))
}
