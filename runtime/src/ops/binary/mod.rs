//! Elementwise binary ops with NumPy broadcasting: add, sub, mul, div, maximum, minimum (f32).
//!
//! CPU: `cpu.rs` (rayon). CUDA: `cuda.rs` launching `kernels/cuda/binary.cu`
//! (`<op>_fwd_f32_v1` general strided, `<op>_fwd_f32_v2` same-shape / trailing-block broadcast).

mod cpu;
mod cuda;

use super::broadcast;
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Result, Tensor};

/// The binary operations. The discriminant is the kernel's op code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 6] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min];

    /// Name as used in kernel names (`add_fwd_f32_v1`, …).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f32, y: f32) -> f32 {
        match self {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            // PyTorch propagates NaN in maximum/minimum.
            BinaryOp::Max => {
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.max(y)
                }
            }
            BinaryOp::Min => {
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.min(y)
                }
            }
        }
    }
}

/// `a ∘ b` elementwise with broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = "binary";
    let dev = same_device(name, &[a, b])?;
    expect_dtype(name, a, DType::F32)?;
    expect_dtype(name, b, DType::F32)?;
    let bc = broadcast(name, a.shape(), b.shape())?;
    match dev {
        Device::Cpu => cpu::binary(op, a.cpu_f32()?, b.cpu_f32()?, &bc),
        Device::Cuda(_) | Device::Emu => cuda::binary(op, a, b, &bc, None),
    }
}

/// Like [`binary`] on a GPU device, but forcing kernel version `v` (1 or 2); benches and tests.
pub fn binary_version(op: BinaryOp, a: &Tensor, b: &Tensor, v: u32) -> Result<Tensor> {
    let dev = same_device("binary", &[a, b])?;
    let bc = broadcast("binary", a.shape(), b.shape())?;
    match dev {
        Device::Cpu => cpu::binary(op, a.cpu_f32()?, b.cpu_f32()?, &bc),
        _ => cuda::binary(op, a, b, &bc, Some(v)),
    }
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Add, a, b)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Sub, a, b)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Mul, a, b)
}
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Div, a, b)
}
pub fn maximum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Max, a, b)
}
pub fn minimum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Min, a, b)
}

/// Benchmark cases: the AST residual add (1214 tokens × 768) and a bias add, per backend and version.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    for (case, sa, sb) in [("1214x768+1214x768", vec![1214, 768], vec![1214, 768]), ("1214x768+768", vec![1214, 768], vec![768])] {
        let (a, b) = (rand_tensor(&sa, 1), rand_tensor(&sb, 2));
        let work = Work::Bytes(4.0 * (2 * a.numel() + b.numel()) as f64);
        out.extend(version_cases("binary", case, device, DType::F32, work, &[1, 2], (0.0, 0.0), vec![a, b], |t, v| match v {
            None => add(&t[0], &t[1]),
            Some(v) => binary_version(BinaryOp::Add, &t[0], &t[1], v),
        })?);
    }
    Ok(out)
}
