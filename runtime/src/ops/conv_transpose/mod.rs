//! Transposed 2-D convolution with kernel = stride and no padding (ResUNet30's decoder upsampling),
//! with the block's pre-activation fused into the input read.
//!
//! Math (NCHW, H = time, W = frequency): `a = leaky(x·scale[c] + shift[b, c])` when a
//! [`PreAct`](crate::ops::conv2d::PreAct) is given, else `a = x`; with its time-FiLM `t` (B, C, H)
//! (H the *input's* rows, i.e. the time length before the upsampling):
//! `a[b, c, h, w] = leaky(x·scale[c] + shift[b, c] + t[b, c, h])`
//! ([`TimeFilmMode::Add`](crate::ops::conv2d::TimeFilmMode::Add)) or
//! `leaky(x·scale[c] + shift[b, c])·t[b, c, h]` ([`TimeFilmMode::Gate`](crate::ops::conv2d::TimeFilmMode::Gate)),
//! rounded one operation at a time as in conv2d. With stride (sh, sw) the output is
//! (B, O, H·sh, W·sw) and every output pixel has exactly one source pixel:
//! `out[b, o, h·sh + i, w·sw + j] = Σ_c W[c, o, i, j] · a[b, c, h, w]` (no bias).
//!
//! Shapes: `x` (B, C, H, W) f32; `weight` (C, O, sh, sw) (PyTorch's ConvTranspose2d layout) f32;
//! `scale` (C); `shift` (C) or (B, C); time-FiLM values (B, C, H). Output (B, O, H·sh, W·sw) f32.
//!
//! CPU: `cpu.rs` (per band of input rows: the activated band, one `gemm` (O·sh·sw × C)·(C × band)
//! into a per-thread buffer, then the scatter; rayon over bands). CUDA: `cuda.rs` launching
//! `kernels/cuda/conv_transpose.cu` (`conv_transpose_fwd_f32_v1`: one thread per output element,
//! the C-long dot product over its single source pixel). Backward: `backward.rs`
//! ([`conv_transpose2d_bwd`], kernels `conv_transpose_{data,weight}_bwd_f32_v1`).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::ops::conv2d::PreAct;
use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "conv_transpose2d";

/// Resolved geometry of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub sh: usize,
    pub sw: usize,
    pub shift_per_batch: bool,
}

impl Geom {
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cout, self.h * self.sh, self.w * self.sw]
    }
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.cin * self.cout * self.h * self.w * self.sh * self.sw) as f64
    }
}

fn geometry(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>) -> Result<Geom> {
    let mut ts = vec![x, weight];
    if let Some(p) = pre {
        ts.extend(p.tensors());
    }
    same_device(OP, &ts)?;
    for t in &ts {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "every operand must be f32".into() });
        }
    }
    let (xs, ws) = (x.shape(), weight.shape());
    if xs.len() != 4 {
        return Err(Error::shape(OP, format!("input must be (B, C, H, W), got {xs:?}")));
    }
    if ws.len() != 4 || ws[0] != xs[1] || ws[2] == 0 || ws[3] == 0 {
        return Err(Error::shape(OP, format!("weight {ws:?} must be ({}, O, sh, sw) (kernel = stride ≥ 1) for input {xs:?}", xs[1])));
    }
    let (batch, cin) = (xs[0], xs[1]);
    let mut shift_per_batch = false;
    if let Some(p) = pre {
        shift_per_batch = p.check(OP, cin, batch, xs[2])?;
    }
    Ok(Geom { batch, cin, h: xs[2], w: xs[3], cout: ws[1], sh: ws[2], sw: ws[3], shift_per_batch })
}

/// The transposed convolution; see the module doc.
pub fn conv_transpose2d(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>) -> Result<Tensor> {
    conv_transpose2d_version(x, weight, pre, None)
}

/// [`conv_transpose2d`] forcing kernel version `v` (1) on a GPU device; benches and tests.
pub fn conv_transpose2d_version(x: &Tensor, weight: &Tensor, pre: Option<&PreAct>, v: Option<u32>) -> Result<Tensor> {
    let g = geometry(x, weight, pre)?;
    match x.device() {
        Device::Cpu => cpu::conv_transpose2d(x, weight, pre, &g),
        Device::Cuda(_) | Device::Emu => cuda::conv_transpose2d(x, weight, pre, &g, v),
    }
}

/// Benchmark cases: ResUNet30's decoder block 6 upsampling on a 10 s mixture with n_fft 1024
/// (64 → 32 channels, 1008 × 256 → 2016 × 512) and decoder block 1's (1, 2) upsampling (384 → 384,
/// 63 × 4 → 63 × 8), with the fused pre-activation.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    for (i, (name, cin, cout, h, w, sh, sw)) in
        [("dec6_64x1008x256_s2x2", 64, 32, 1008, 256, 2, 2), ("dec1_384x63x4_s1x2", 384, 384, 63, 4, 1, 2)].into_iter().enumerate()
    {
        let seed = 800 + 10 * i as u64;
        let ts = vec![
            rand_tensor(&[1, cin, h, w], seed),
            rand_tensor(&[cin, cout, sh, sw], seed + 1),
            rand_tensor(&[cin], seed + 2),
            rand_tensor(&[1, cin], seed + 3),
        ];
        let g = Geom { batch: 1, cin, h, w, cout, sh, sw, shift_per_batch: true };
        let call =
            |t: &[Tensor], v: Option<u32>| conv_transpose2d_version(&t[0], &t[1], Some(&PreAct { scale: &t[2], shift: &t[3], slope: 0.01, time: None }), v);
        out.extend(version_cases(OP, name, device, DType::F32, Work::Flops(g.flops()), &[1], (1e-4, 1e-4), ts, call)?);
    }
    // Backward of decoder block 6 (with the pre-activation): da and dW are each a GEMM of the forward's
    // size (2·forward FLOPs); the bench output is dW (checked against the CPU), dx computed as well.
    let (cin, cout, h, w) = (64, 32, 1008, 256);
    let ts = vec![
        rand_tensor(&[1, cin, h, w], 850),
        rand_tensor(&[cin, cout, 2, 2], 851),
        rand_tensor(&[cin], 852),
        rand_tensor(&[1, cin], 853),
        rand_tensor(&[1, cout, 2 * h, 2 * w], 854),
    ];
    let g = Geom { batch: 1, cin, h, w, cout, sh: 2, sw: 2, shift_per_batch: true };
    let call = |t: &[Tensor], v: Option<u32>| {
        conv_transpose2d_bwd_version(&t[0], &t[1], Some(&PreAct { scale: &t[2], shift: &t[3], slope: 0.01, time: None }), &t[4], v).map(|gr| gr.dweight)
    };
    out.extend(version_cases(OP, "bwd_dec6_64x1008x256_s2x2", device, DType::F32, Work::Flops(2.0 * g.flops()), &[1], (1e-2, 1e-3), ts, call)?);
    Ok(out)
}
