//! Elementwise unary ops (f32): GELU (exact erf form and tanh approximation), ReLU, leaky ReLU,
//! sigmoid, tanh, exp, log, sqrt, neg, abs, affine (x·scale + shift); and the dtype casts
//! [`to_f16`] / [`to_f32`] (round-to-nearest-even, as torch `.half()` / `.float()`).
//!
//! CPU: `cpu.rs` (rayon over chunks). CUDA: `cuda.rs` launching `kernels/cuda/unary.cu`
//! (`<op>_fwd_f32_v1` grid-stride scalar, `<op>_fwd_f32_v2` float4 when n % 4 == 0;
//! `to_f16_fwd_f32_v1`, `to_f32_fwd_f16_v1`).

mod backward;
mod cpu;
mod cuda;
pub use backward::*;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Result, Tensor};

/// The unary operations. Parameters travel in the variant (kernel params `a`, `b`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// x·Φ(x) = 0.5·x·(1 + erf(x/√2)) — `torch.nn.functional.gelu(x)`.
    Gelu,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — `gelu(x, approximate='tanh')`.
    GeluTanh,
    Relu,
    /// x if x ≥ 0 else slope·x.
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    /// x·scale + shift.
    Affine {
        scale: f32,
        shift: f32,
    },
}

impl UnaryOp {
    /// One of each (with sample parameters), for tests.
    pub const ALL: [UnaryOp; 12] = [
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.01),
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Affine { scale: 1.5, shift: -0.25 },
    ];

    /// Name as used in kernel names (`gelu_fwd_f32_v1`, …).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Gelu => "gelu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Affine { .. } => "affine",
        }
    }

    /// The scalar parameters (a, b) passed to the kernel.
    pub(crate) fn params(self) -> (f32, f32) {
        match self {
            UnaryOp::LeakyRelu(s) => (s, 0.0),
            UnaryOp::Affine { scale, shift } => (scale, shift),
            _ => (0.0, 0.0),
        }
    }

    /// The op on one value (the CPU reference; the kernels compute the same formulas).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            // Φ(x) through erfc, accurate also where 1 + erf(x/√2) would cancel (x ≪ 0).
            UnaryOp::Gelu => 0.5 * x * cpu::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2),
            UnaryOp::GeluTanh => {
                const K: f32 = 0.797_884_6; // √(2/π)
                0.5 * x * (1.0 + (K * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::Relu => {
                if x > 0.0 {
                    x
                } else if x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::LeakyRelu(s) => {
                if x >= 0.0 {
                    x
                } else {
                    x * s
                }
            }
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Affine { scale, shift } => x * scale + shift,
        }
    }
}

/// `op(x)` elementwise (f32 in, f32 out).
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    expect_dtype("unary", x, DType::F32)?;
    match x.device() {
        Device::Cpu => cpu::unary(op, x.cpu_f32()?, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda::unary(op, x, None),
    }
}

/// Like [`unary`] on a GPU device, but forcing kernel version `v` (1, or 2 when n % 4 == 0);
/// benches and tests. On the CPU it is [`unary`].
pub fn unary_version(op: UnaryOp, x: &Tensor, v: u32) -> Result<Tensor> {
    expect_dtype("unary", x, DType::F32)?;
    match x.device() {
        Device::Cpu => cpu::unary(op, x.cpu_f32()?, x.shape()),
        _ => cuda::unary(op, x, Some(v)),
    }
}

pub fn gelu(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Gelu, x)
}
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::GeluTanh, x)
}
pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Relu, x)
}
pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    unary(UnaryOp::LeakyRelu(slope), x)
}
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Sigmoid, x)
}
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Tanh, x)
}
pub fn exp(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Exp, x)
}
pub fn log(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Log, x)
}
pub fn sqrt(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Sqrt, x)
}
pub fn neg(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Neg, x)
}
pub fn abs(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Abs, x)
}
/// x·scale + shift (scalars).
pub fn affine(x: &Tensor, scale: f32, shift: f32) -> Result<Tensor> {
    unary(UnaryOp::Affine { scale, shift }, x)
}

/// f32 → f16, round-to-nearest-even (overflow → ±inf, NaN stays NaN), like torch `.half()`.
pub fn to_f16(x: &Tensor) -> Result<Tensor> {
    expect_dtype("to_f16", x, DType::F32)?;
    match x.device() {
        Device::Cpu => cpu::to_f16(x.cpu_f32()?, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda::cast(x, DType::F16),
    }
}

/// f16 → f32 (exact), like torch `.float()`.
pub fn to_f32(x: &Tensor) -> Result<Tensor> {
    expect_dtype("to_f32", x, DType::F16)?;
    match x.device() {
        Device::Cpu => cpu::to_f32(x.cpu_f16()?, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda::cast(x, DType::F32),
    }
}

/// Benchmark cases: the AST MLP's GELU on 1214 tokens × 3072, per backend and kernel version.
fn forward_bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    let x = crate::testing::rand_tensor(&[1214, 3072], 7);
    let work = Work::Bytes(8.0 * x.numel() as f64);
    version_cases("unary", "gelu_1214x3072", device, DType::F32, work, &[1, 2], (1e-6, 2e-6), vec![x], |t, v| match v {
        None => gelu(&t[0]),
        Some(v) => unary_version(UnaryOp::Gelu, &t[0], v),
    })
}

/// Benchmark cases: GELU forward on the AST MLP activation (1214 × 3072) and its backward.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = forward_bench_cases(device)?;
    let (x, dy) = (rand_tensor(&[1214, 3072], 7), rand_tensor(&[1214, 3072], 8));
    let work = Work::Bytes(12.0 * x.numel() as f64);
    out.extend(version_cases("unary", "gelu_bwd_1214x3072", device, DType::F32, work, &[1], (1e-6, 1e-5), vec![x, dy], |t, _v| gelu_bwd(&t[0], &t[1]))?);
    Ok(out)
}
