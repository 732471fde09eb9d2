//! Bilinear resizing of (N, C, H, W) maps, exactly `F.interpolate(x, size=(Ho, Wo), mode='bilinear',
//! align_corners=False)` (antialias off), with an optional fused pre-activation. The CP-JKU separator
//! (DCASE 2025 task 4) uses it for its time-FiLM (250 SED frames → each block's time resolution, W = 1)
//! and its embedding injection (the SED transformer's (62 × 5)-token grid → the bottleneck's (T′, F′),
//! after BatchNorm and LeakyReLU).
//!
//! Math, per axis with `in` source and `out` target samples (f32, as PyTorch computes it):
//! `scale = in / out`, `src = max(scale·(d + 0.5) − 0.5, 0)`, `i0 = min(⌊src⌋, in − 1)`,
//! `λ = clamp(src − i0, 0, 1)`, `i1 = min(i0 + 1, in − 1)`. Then
//! `out[n, c, h, w] = (1−λh)·((1−λw)·a[i0h, i0w] + λw·a[i0h, i1w]) + λh·((1−λw)·a[i1h, i0w] + λw·a[i1h, i1w])`
//! over the plane (n, c), where `a = x`, or with a [`PreAct`] `a = leaky(x·scale[c] + shift[c or n, c], slope)`
//! (BatchNorm in eval mode folded to scale/shift, plus a FiLM β per item) applied to every source sample
//! before interpolating. Upsampling and downsampling (no antialias: a downsample reads only the taps), and
//! any axis may keep its size (scale 1: that axis is copied exactly). The pre-activation's `time` term is
//! not supported here (an error).
//!
//! Shapes: `x` (N, C, H, W) f32 with H, W ≥ 1; output (N, C, Ho, Wo), Ho, Wo ≥ 1.
//!
//! CPU: `cpu.rs` (per-axis tap tables, rayon over planes; with a pre-activation the plane is activated
//! once into a buffer). CUDA: `cuda.rs` launching `kernels/cuda/resize.cu` (`resize_bilinear_fwd_f32_v1`:
//! one thread per output element). Both round every product and sum separately in the same order, so
//! they agree bit for bit.
//!
//! Backward: `backward.rs` ([`resize_bilinear_bwd`]): the adjoint of the interpolation as a gather over
//! per-axis inverse tap tables (deterministic, no atomics; `resize_bilinear_data_bwd_f32_v1` on GPU
//! devices), then through the pre-activation (dx, dscale, dshift).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::ops::conv2d::PreAct;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "resize_bilinear";

/// Resolved geometry of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
    /// The pre-activation's shift is (N, C) rather than (C).
    pub shift_per_batch: bool,
}

impl Geom {
    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.ho, self.wo]
    }
    /// The axis scale `in / out` as PyTorch computes it (f32 division).
    pub fn scales(&self) -> (f32, f32) {
        (self.h as f32 / self.ho as f32, self.w as f32 / self.wo as f32)
    }
}

fn geometry(x: &Tensor, (ho, wo): (usize, usize), pre: Option<&PreAct>) -> Result<Geom> {
    let mut ts = vec![x];
    if let Some(p) = pre {
        ts.extend(p.tensors());
    }
    same_device(OP, &ts)?;
    for t in &ts {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "the input and the pre-activation's scale and shift must be f32".into() });
        }
    }
    let s = x.shape();
    if s.len() != 4 {
        return Err(Error::shape(OP, format!("input must be (N, C, H, W), got {s:?}")));
    }
    if s[2] == 0 || s[3] == 0 || ho == 0 || wo == 0 {
        return Err(Error::shape(OP, format!("input {s:?} to output size ({ho}, {wo}): both the input's (H, W) and the output size must be ≥ 1")));
    }
    let mut shift_per_batch = false;
    if let Some(p) = pre {
        if p.time.is_some() {
            return Err(Error::shape(OP, format!("input {s:?}: the pre-activation's time-FiLM term is not supported by resize_bilinear (time must be None)")));
        }
        shift_per_batch = p.check(OP, s[1], s[0], s[2])?;
    }
    Ok(Geom { n: s[0], c: s[1], h: s[2], w: s[3], ho, wo, shift_per_batch })
}

/// Bilinear resize of `x` (N, C, H, W) to (N, C, Ho, Wo); see the module doc.
pub fn resize_bilinear(x: &Tensor, out_hw: (usize, usize), pre: Option<&PreAct>) -> Result<Tensor> {
    resize_bilinear_version(x, out_hw, pre, None)
}

/// [`resize_bilinear`] forcing kernel version `v` (1) on a GPU device; benches and tests. Ignored on the CPU.
pub fn resize_bilinear_version(x: &Tensor, out_hw: (usize, usize), pre: Option<&PreAct>, v: Option<u32>) -> Result<Tensor> {
    let g = geometry(x, out_hw, pre)?;
    match x.device() {
        Device::Cpu => cpu::resize_bilinear(x, pre, &g),
        Device::Cuda(_) | Device::Emu => cuda::resize_bilinear(x, pre, &g, v),
    }
}

/// Benchmark cases of the CP-JKU separator: the time-FiLM upsampling of 250 SED frames to block 1's
/// 2016 frames (32 channels, W = 1), and the embedding injection (768, 62 × 5) → (63 × 16) with the
/// BatchNorm + LeakyReLU pre-activation (per-item shift); and the injection's backward.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    // Kernel and CPU round identically; 1e-6 only guards against a compiler contracting an FMA.
    let tol = (1e-6, 1e-6);
    let x = rand_tensor(&[1, 32, 250, 1], 1101);
    let bytes = 4.0 * (32 * 250 + 32 * 2016) as f64;
    out.extend(version_cases(OP, "timefilm_32x250x1_to_2016x1", device, DType::F32, Work::Bytes(bytes), &[1], tol, vec![x], |t, v| {
        resize_bilinear_version(&t[0], (2016, 1), None, v)
    })?);
    let ins = vec![rand_tensor(&[1, 768, 62, 5], 1102), rand_tensor(&[768], 1103), rand_tensor(&[1, 768], 1104)];
    let bytes = 4.0 * (768 * 62 * 5 + 768 * 63 * 16 + 2 * 768) as f64;
    out.extend(version_cases(OP, "inject_768x62x5_to_63x16_preact", device, DType::F32, Work::Bytes(bytes), &[1], tol, ins, |t, v| {
        let pre = PreAct { scale: &t[1], shift: &t[2], slope: 0.01, time: None };
        resize_bilinear_version(&t[0], (63, 16), Some(&pre), v)
    })?);
    out.extend(backward::bench_case(device)?);
    Ok(out)
}
