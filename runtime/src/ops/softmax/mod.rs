//! Softmax over the last dimension (f32), numerically stable (the row max is subtracted), with
//! PyTorch semantics: masked entries of -inf give 0, a row of all -inf gives NaN.
//!
//! CPU: `cpu.rs` (rayon over rows). CUDA: `cuda.rs` launching `kernels/cuda/softmax.cu`
//! (`softmax_fwd_f32_v1` thread per row, `_v2` warp per row, `_v3` block per row for L ≥ 1024).

mod cpu;
mod cuda;

use crate::tensor::expect_dtype;
use crate::{DType, Device, Error, Result, Tensor};

fn rows_len(x: &Tensor) -> Result<(usize, usize)> {
    expect_dtype("softmax", x, DType::F32)?;
    if x.rank() == 0 {
        return Err(Error::shape("softmax", format!("needs at least one dimension, got shape {:?}", x.shape())));
    }
    let len = *x.shape().last().unwrap();
    Ok((if len == 0 { 0 } else { x.numel() / len }, len))
}

/// `softmax(x, dim=-1)`: y[r, j] = exp(x[r, j] − max_r) / Σ_k exp(x[r, k] − max_r).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let (rows, len) = rows_len(x)?;
    match x.device() {
        Device::Cpu => cpu::softmax(x.cpu_f32()?, rows, len, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda::softmax(x, rows, len, None),
    }
}

/// Like [`softmax`] on a GPU device, forcing kernel version `v` (1, 2 or 3); benches and tests.
pub fn softmax_version(x: &Tensor, v: u32) -> Result<Tensor> {
    let (rows, len) = rows_len(x)?;
    match x.device() {
        Device::Cpu => cpu::softmax(x.cpu_f32()?, rows, len, x.shape()),
        _ => cuda::softmax(x, rows, len, Some(v)),
    }
}

/// The version the dispatcher picks for rows of length `len`: a block per row for long rows
/// (attention over 1214 tokens), a warp per row otherwise.
pub fn default_version(len: usize) -> u32 {
    if len >= 1024 {
        3
    } else {
        2
    }
}

/// Benchmark cases: AST attention probabilities (12 heads × 1214 × 1214) and AST-SED's
/// frequency-wise attention (101 frames · 12 heads rows of 13), per backend and kernel version.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{BenchCase, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    if device == Device::Emu {
        return Ok(out);
    }
    for (case, shape) in [("attn_12x1214x1214", vec![12usize, 1214, 1214]), ("freq_attn_1212x13", vec![101 * 12, 13])] {
        let x = rand_tensor(&shape, 3).to_device(device)?;
        let bytes = 8.0 * x.numel() as f64;
        let versions: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { vec![Some(1), Some(2), Some(3)] };
        for v in versions {
            let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
            let xr = x.clone();
            let check: Option<Box<dyn FnMut() -> Result<()>>> = v.map(|v| {
                let xc = x.clone();
                Box::new(move || {
                    let want = softmax(&xc.to_device(Device::Cpu)?)?.to_vec()?;
                    let got = softmax_version(&xc, v)?.to_vec()?;
                    crate::ops::unary::check_close("softmax", v, &got, &want, 1e-7, 1e-5)
                }) as Box<dyn FnMut() -> Result<()>>
            });
            out.push(BenchCase {
                op: "softmax",
                case: case.to_string(),
                device,
                version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
                dtype: DType::F32,
                work: Work::Bytes(bytes),
                run: Box::new(move || {
                    let _y = match v {
                        None => softmax(&xr)?,
                        Some(v) => softmax_version(&xr, v)?,
                    };
                    if let Some(be) = &be {
                        be.synchronize()?;
                    }
                    Ok(())
                }),
                check,
            });
        }
    }
    Ok(out)
}
