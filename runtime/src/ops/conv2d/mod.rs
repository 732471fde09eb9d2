//! 2-D convolution of the separator (ResUNet30): kernel 3×3 (stride 1, padding 1) or 1×1, with the
//! block's pre-activation fused into the input read, an optional bias and an optional residual added
//! in the epilogue, over one input or the channel concatenation of two (the decoder's skip concat,
//! read without a copy).
//!
//! Math (layouts NCHW: `x` (B, C, H, W) with H = time, W = frequency, as the separator stores them):
//! `a[b, c, h, w] = leaky(x[b, c, h, w]·scale[c] + shift[b, c])` when a [`PreAct`] is given (BatchNorm
//! in eval mode folded to `scale`/`shift`, plus FiLM's β per batch item and channel, then LeakyReLU
//! with `slope`), else `a = x`; with a [`TimeFilm`] `t` (B, C, H) as well (CP-JKU's time-FiLM, one
//! value per item, channel and row, broadcast along W):
//! `a = leaky(x·scale[c] + shift[b, c] + t[b, c, h])` ([`TimeFilmMode::Add`]) or
//! `a = leaky(x·scale[c] + shift[b, c])·t[b, c, h]` ([`TimeFilmMode::Gate`]); every operation is
//! rounded on its own in the order written (x·scale, + shift, + t; no FMA), on the CPU and in the
//! kernels alike. The input channels are those of `inputs[0]` followed by those of `inputs[1]`
//! (the pre-activation's channel axis, `t`'s included, runs over the concatenation). With kernel
//! k ∈ {1, 3} and p = k / 2 (zero padding of `a`, i.e. after the activation, as
//! `conv(leaky(bn(x) + β))` pads):
//! `out[b, o, h, w] = bias[o] + residual[b, o, h, w] + Σ_{c, i, j} W[o, c, i, j] · a[b, c, h + i − p, w + j − p]`.
//!
//! Shapes: every input (B, C_s, H, W), same B, H, W; `weight` (O, ΣC_s, k, k) (PyTorch's Conv2d
//! layout), f32 — or f16 on a GPU device, which selects the tensor-core kernel (f32 math and
//! accumulation; the CPU converts it to f32); `bias` (O); `residual` (B, O, H, W); `scale` (ΣC_s);
//! `shift` (ΣC_s) or (B, ΣC_s); time-FiLM values (B, ΣC_s, H). Output (B, O, H, W) f32.
//!
//! CPU: `cpu.rs` (bands of output rows: the activated, zero-padded im2col band of each row block is
//! built in a per-thread buffer, the time-FiLM value fetched once per input row, then one `gemm` call
//! per band writes (O × band) straight into the output, residual/bias pre-filled; rayon over bands). CUDA: `cuda.rs` launching
//! `kernels/cuda/conv2d.cu` (`conv2d_fwd_f32_v1` naive, `conv2d_fwd_f32_v2` tiled implicit GEMM,
//! `conv2d_fwd_f16_v3` WMMA tensor cores with an f16 weight). Backward: `backward.rs` ([`conv2d_bwd`]).

mod backward;
pub(crate) mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "conv2d";

/// The pre-activation fused into the input read: `leaky(x·scale[c] + shift[b, c], slope)`, with an
/// optional time-varying FiLM term ([`TimeFilm`]).
#[derive(Debug, Clone, Copy)]
pub struct PreAct<'a> {
    /// (C): BatchNorm's `weight / sqrt(running_var + eps)`.
    pub scale: &'a Tensor,
    /// (C) or (B, C): BatchNorm's `bias − running_mean·scale`, plus FiLM's β of each batch item.
    pub shift: &'a Tensor,
    /// LeakyReLU's negative slope (0.01 in ResUNet30; 0 is ReLU, 1 is the identity).
    pub slope: f32,
    /// A per-(item, channel, row) term along H (time): the CP-JKU separator's time-FiLM.
    pub time: Option<TimeFilm<'a>>,
}

/// How [`TimeFilm`] values enter the pre-activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFilmMode {
    /// `leaky(x·scale[c] + shift[b, c] + t[b, c, h])` (the "additive" time-FiLM).
    Add,
    /// `leaky(x·scale[c] + shift[b, c]) · t[b, c, h]` (the "multiplicative" one: `t` is the gate
    /// σ(β_t), so `leaky(g·z) = g·leaky(z)` for the gate g > 0).
    Gate,
}

/// Time-FiLM values (B, C, H): one value per item, input channel and row (time step) of the input,
/// broadcast along W (frequency).
#[derive(Debug, Clone, Copy)]
pub struct TimeFilm<'a> {
    pub values: &'a Tensor,
    pub mode: TimeFilmMode,
}

impl PreAct<'_> {
    /// Checks the shapes for `channels` input channels, `batch` items and `rows` input rows (H);
    /// true when the shift is per item, (B, C).
    pub(crate) fn check(&self, op: &'static str, channels: usize, batch: usize, rows: usize) -> Result<bool> {
        if self.scale.shape() != [channels] {
            return Err(Error::shape(op, format!("pre-activation scale {:?} must be [{channels}] (input channels)", self.scale.shape())));
        }
        if !self.slope.is_finite() {
            return Err(Error::shape(op, format!("LeakyReLU slope {} is not finite", self.slope)));
        }
        if let Some(t) = &self.time {
            if t.values.shape() != [batch, channels, rows] {
                return Err(Error::shape(
                    op,
                    format!("time-FiLM values {:?} must be [{batch}, {channels}, {rows}] (batch, input channels, input rows)", t.values.shape()),
                ));
            }
            if t.values.dtype() != DType::F32 {
                return Err(Error::DType { op, got: t.values.dtype(), msg: "time-FiLM values must be f32".into() });
            }
        }
        match self.shift.shape() {
            [n] if *n == channels => Ok(false),
            [b, n] if *b == batch && *n == channels => Ok(true),
            s => Err(Error::shape(op, format!("pre-activation shift {s:?} must be [{channels}] or [{batch}, {channels}]"))),
        }
    }

    /// The tensors the pre-activation reads (for device checks).
    pub(crate) fn tensors(&self) -> Vec<&Tensor> {
        let mut v = vec![self.scale, self.shift];
        v.extend(self.time.map(|t| t.values));
        v
    }
}

/// The parameters of [`conv2d`].
#[derive(Debug, Clone, Copy)]
pub struct Conv2d<'a> {
    /// (O, ΣC, k, k) with k = 1 or 3.
    pub weight: &'a Tensor,
    /// (O).
    pub bias: Option<&'a Tensor>,
    pub pre: Option<PreAct<'a>>,
    /// (B, O, H, W), added to the output.
    pub residual: Option<&'a Tensor>,
}

/// Resolved geometry of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Geom {
    pub batch: usize,
    /// Channels of each input (1 or 2 entries).
    pub cin: Vec<usize>,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    /// Kernel size (1 or 3).
    pub k: usize,
    /// `shift` is (B, C) rather than (C).
    pub shift_per_batch: bool,
}

impl Geom {
    pub fn cin_total(&self) -> usize {
        self.cin.iter().sum()
    }
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cout, self.h, self.w]
    }
    /// Multiply-adds ×2 of one call.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.cout * self.h * self.w * self.cin_total() * self.k * self.k) as f64
    }
}

/// Per-channel `(scale, shift)` of an eval-mode BatchNorm: `y = x·scale + shift`.
pub fn fold_batchnorm(weight: &[f32], bias: &[f32], mean: &[f32], var: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = weight.iter().zip(var).map(|(&g, &v)| (g as f64 / (v as f64 + eps as f64).sqrt()) as f32).collect();
    let shift = bias.iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| (b as f64 - m as f64 * s as f64) as f32).collect();
    (scale, shift)
}

fn geometry(inputs: &[&Tensor], c: &Conv2d) -> Result<Geom> {
    if inputs.is_empty() || inputs.len() > 2 {
        return Err(Error::shape(OP, format!("takes one input or two (read as their channel concatenation), got {}", inputs.len())));
    }
    let mut ts: Vec<&Tensor> = inputs.to_vec();
    ts.push(c.weight);
    ts.extend(c.bias);
    ts.extend(c.residual);
    if let Some(p) = &c.pre {
        ts.extend(p.tensors());
    }
    same_device(OP, &ts)?;
    for t in ts.iter().filter(|t| !std::ptr::eq(**t, c.weight)) {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "inputs, bias, residual and pre-activation must be f32".into() });
        }
    }
    let s0 = inputs[0].shape();
    if s0.len() != 4 {
        return Err(Error::shape(OP, format!("input must be (B, C, H, W), got {s0:?}")));
    }
    let (batch, h, w) = (s0[0], s0[2], s0[3]);
    let mut cin = Vec::new();
    for x in inputs {
        let s = x.shape();
        if s.len() != 4 || s[0] != batch || s[2] != h || s[3] != w {
            return Err(Error::shape(OP, format!("the two inputs {s0:?} and {s:?} must share B, H and W (channel concat)")));
        }
        cin.push(s[1]);
    }
    let ct: usize = cin.iter().sum();
    let ws = c.weight.shape();
    if ws.len() != 4 || ws[1] != ct || ws[2] != ws[3] || !(ws[2] == 1 || ws[2] == 3) {
        return Err(Error::shape(OP, format!("weight {ws:?} must be (O, {ct}, k, k) with k = 1 or 3 for inputs of {cin:?} channels")));
    }
    let (cout, k) = (ws[0], ws[2]);
    if let Some(b) = c.bias {
        if b.shape() != [cout] {
            return Err(Error::shape(OP, format!("bias {:?} must be [{cout}] for weight {ws:?}", b.shape())));
        }
    }
    if let Some(r) = c.residual {
        if r.shape() != [batch, cout, h, w] {
            return Err(Error::shape(OP, format!("residual {:?} must be the output's shape {:?}", r.shape(), [batch, cout, h, w])));
        }
    }
    let mut shift_per_batch = false;
    if let Some(p) = &c.pre {
        shift_per_batch = p.check(OP, ct, batch, h)?;
    }
    Ok(Geom { batch, cin, h, w, cout, k, shift_per_batch })
}

/// The convolution; see the module doc.
pub fn conv2d(inputs: &[&Tensor], c: &Conv2d) -> Result<Tensor> {
    conv2d_version(inputs, c, None)
}

/// [`conv2d`] forcing kernel version `v` on a GPU device (1, 2 for an f32 weight; 3 for f16);
/// benches and tests. Ignored on the CPU.
pub fn conv2d_version(inputs: &[&Tensor], c: &Conv2d, v: Option<u32>) -> Result<Tensor> {
    let g = geometry(inputs, c)?;
    match inputs[0].device() {
        Device::Cpu => cpu::conv2d(inputs, c, &g),
        Device::Cuda(_) | Device::Emu => cuda::conv2d(inputs, c, &g, v),
    }
}

/// Benchmark cases: ResUNet30's heaviest convolutions on a 10 s 4-channel mixture with n_fft 1024
/// (encoder block 1: 32 → 32 at 2016 × 512; decoder block 6's conv1 reading the 2 × 32-channel
/// concat) and a bottleneck one (384 → 384 at 63 × 8), each with the fused pre-activation; and
/// encoder block 1 again with CP-JKU's additive time-FiLM (its overhead against the first case).
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    // (name, sources' channels, out channels, H, W, time-FiLM Add).
    type Case = (&'static str, &'static [usize], usize, usize, usize, bool);
    let cases: [Case; 4] = [
        ("enc1_32x2016x512", &[32], 32, 2016, 512, false),
        ("dec6_concat_64x2016x512", &[32, 32], 32, 2016, 512, false),
        ("bottleneck_384x63x8", &[384], 384, 63, 8, false),
        ("enc1_32x2016x512_timefilm_add", &[32], 32, 2016, 512, true),
    ];
    for (i, (name, cin, cout, h, w, time)) in cases.into_iter().enumerate() {
        let seed = 700 + 10 * i as u64;
        let ct: usize = cin.iter().sum();
        let mut ts: Vec<Tensor> = cin.iter().enumerate().map(|(s, &c)| rand_tensor(&[1, c, h, w], seed + s as u64)).collect();
        let n_in = ts.len();
        let weight = rand_tensor(&[cout, ct, 3, 3], seed + 3);
        ts.push(crate::ops::unary::to_f16(&weight)?);
        ts.push(weight);
        ts.push(rand_tensor(&[ct], seed + 4));
        ts.push(rand_tensor(&[1, ct], seed + 5));
        if time {
            ts.push(rand_tensor(&[1, ct, h], seed + 6));
        }
        let g = Geom { batch: 1, cin: cin.to_vec(), h, w, cout, k: 3, shift_per_batch: true };
        let call = move |t: &[Tensor], v: Option<u32>| {
            let ins: Vec<&Tensor> = t[..n_in].iter().collect();
            let weight = if v == Some(3) { &t[n_in] } else { &t[n_in + 1] };
            let time = t.get(n_in + 4).map(|values| TimeFilm { values, mode: TimeFilmMode::Add });
            let pre = PreAct { scale: &t[n_in + 2], shift: &t[n_in + 3], slope: 0.01, time };
            conv2d_version(&ins, &Conv2d { weight, bias: None, pre: Some(pre), residual: None }, v)
        };
        // f32 kernels differ from the CPU by summation order only (≤ 3456 terms here). f16 v3: the
        // weight and the activated input rounded to f16 (2^-11 relative each), f32 accumulation.
        out.extend(version_cases(OP, name, device, DType::F32, Work::Flops(g.flops()), &[1, 2], (1e-3, 1e-3), ts.clone(), call)?);
        if !device.is_cpu() {
            out.extend(version_cases(OP, name, device, DType::F16, Work::Flops(g.flops()), &[3], (2e-2, 2e-2), ts, call)?);
        }
    }
    // Backward of encoder block 1 (32 → 32 at 2016 × 512, pre-activation with a (B, C) shift): the
    // data and weight gradients, 2× the forward's flops; validated on dx (sums of O·k² = 288 terms).
    let (h, w) = (2016, 512);
    let ts = vec![
        rand_tensor(&[1, 32, h, w], 760),
        rand_tensor(&[32, 32, 3, 3], 761),
        rand_tensor(&[32], 762),
        rand_tensor(&[1, 32], 763),
        rand_tensor(&[1, 32, h, w], 764),
    ];
    let g = Geom { batch: 1, cin: vec![32], h, w, cout: 32, k: 3, shift_per_batch: true };
    out.extend(version_cases(OP, "bwd_enc1_32x2016x512", device, DType::F32, Work::Flops(2.0 * g.flops()), &[1], (1e-3, 1e-3), ts, |t, _v| {
        let pre = PreAct { scale: &t[2], shift: &t[3], slope: 0.01, time: None };
        conv2d_bwd(&[&t[0]], &Conv2d { weight: &t[1], bias: None, pre: Some(pre), residual: None }, &t[4]).map(|g| g.dinputs[0].clone())
    })?);
    Ok(out)
}
