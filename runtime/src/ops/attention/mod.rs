//! Scaled dot-product self-attention (no mask, f32): `O = softmax(scale · Q·Kᵀ) · V` per
//! (sequence, head), with a numerically stable softmax (the row max is subtracted), as PyTorch's
//! eager attention / `F.scaled_dot_product_attention` without mask or dropout.
//!
//! Layouts (every entry point returns a contiguous tensor):
//! - [`attention`]`(q, k, v, scale)`: q, k, v are (N, S, Dh) — N = batch·heads sequences of S tokens
//!   of head dim Dh. Output (N, S, Dh).
//! - [`attention_heads`]`(q, k, v, heads, scale)`: q, k, v are (B, S, H·Dh) — the output of a linear
//!   projection, head h in columns h·Dh..(h+1)·Dh (PyTorch's `view(B, S, H, Dh)`). Output (B, S, H·Dh),
//!   ready for the output projection: no permutes on either side.
//! - [`attention_qkv`]`(qkv, heads, scale)`: one packed tensor (B, S, 3·H·Dh) = [Q | K | V] along the
//!   last dim (one fused QKV linear). Output (B, S, H·Dh).
//!
//! All three resolve to one strided description ([`Layout`]) that the CPU code and the kernels share:
//! element (b, s, h, d) of Q is at `q_off + b·in_batch + s·in_row + h·in_head + d`.
//!
//! CPU (`cpu.rs`): rayon over (sequence·head, query block); per block S = Q_blk·Kᵀ and O = P·V are
//! AVX-512 register-tiled kernels on Kᵀ / V laid out once per head (Dh a multiple of 16), or `gemm`
//! calls on strided views elsewhere; the softmax in between is a vectorised row pass (polynomial exp).
//! Sequences of ≤ 32 tokens (AST-SED's frequency-wise attention) use a direct path instead (gemm's
//! packing costs more than such tiny products).
//!
//! CUDA (`cuda.rs`, `kernels/cuda/attention.cu`): `attention_fwd_f32_v1` naive (thread per query
//! row), `_v2` flash-attention style (key tiles in shared memory, online softmax, Dh ≤ 64),
//! `_v3` short sequences (S ≤ 32: one block per (sequence, head), everything in shared memory).
//! The dispatcher ([`default_version`]) picks v3 for S ≤ 32 when it fits, v2 for Dh ≤ 64, else v1.

mod backward;
mod cpu;
mod cuda;

pub use backward::*;

#[cfg(target_arch = "x86_64")]
pub(crate) use cpu::exp_avx512;
pub(crate) use cpu::exp_poly;

use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "attention";

/// The strided geometry of one call (elements, not bytes). See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub batch: usize,
    pub heads: usize,
    pub seq: usize,
    pub dh: usize,
    pub in_batch: usize,
    pub in_row: usize,
    pub in_head: usize,
    pub q_off: usize,
    pub k_off: usize,
    pub v_off: usize,
    pub out_batch: usize,
    pub out_row: usize,
    pub out_head: usize,
}

impl Layout {
    /// Sequences × heads.
    pub fn units(&self) -> usize {
        self.batch * self.heads
    }
    /// Offset of (sequence, head) unit `u` = b·heads + h in the inputs (before q_off/k_off/v_off)
    /// and in the output: element (s, d) of the unit is at base + s·row stride + d.
    pub fn unit_bases(&self, u: usize) -> (usize, usize) {
        let (b, h) = (u / self.heads, u % self.heads);
        (b * self.in_batch + h * self.in_head, b * self.out_batch + h * self.out_head)
    }
    /// Output elements.
    pub fn out_len(&self) -> usize {
        self.batch * self.seq * self.heads * self.dh
    }
    /// FLOPs of one call: 4·S²·Dh per (sequence, head) (QKᵀ and PV).
    pub fn flops(&self) -> f64 {
        4.0 * (self.units() * self.seq * self.seq * self.dh) as f64
    }
}

fn check_f32(ts: &[&Tensor]) -> Result<Device> {
    for t in ts {
        expect_dtype(OP, t, DType::F32)?;
    }
    same_device(OP, ts)
}

/// Layout of [`attention`]: q, k, v of one shape (N, S, Dh).
fn layout_nsd(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Layout> {
    if q.rank() != 3 || k.shape() != q.shape() || v.shape() != q.shape() {
        return Err(Error::shape(OP, format!("q, k, v must share one (N, S, Dh) shape, got q {:?}, k {:?}, v {:?}", q.shape(), k.shape(), v.shape())));
    }
    let (n, s, dh) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    Ok(Layout {
        batch: n,
        heads: 1,
        seq: s,
        dh,
        in_batch: s * dh,
        in_row: dh,
        in_head: 0,
        q_off: 0,
        k_off: 0,
        v_off: 0,
        out_batch: s * dh,
        out_row: dh,
        out_head: 0,
    })
}

/// Layout of [`attention_heads`]: q, k, v of one shape (B, S, H·Dh).
fn layout_heads(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Result<Layout> {
    if q.rank() != 3 || k.shape() != q.shape() || v.shape() != q.shape() {
        return Err(Error::shape(OP, format!("q, k, v must share one (B, S, H·Dh) shape, got q {:?}, k {:?}, v {:?}", q.shape(), k.shape(), v.shape())));
    }
    let (b, s, w) = (q.shape()[0], q.shape()[1], q.shape()[2]);
    if heads == 0 || w % heads != 0 {
        return Err(Error::shape(OP, format!("width {w} of {:?} is not divisible by {heads} heads", q.shape())));
    }
    let dh = w / heads;
    Ok(Layout {
        batch: b,
        heads,
        seq: s,
        dh,
        in_batch: s * w,
        in_row: w,
        in_head: dh,
        q_off: 0,
        k_off: 0,
        v_off: 0,
        out_batch: s * w,
        out_row: w,
        out_head: dh,
    })
}

/// Layout of [`attention_qkv`]: one packed (B, S, 3·H·Dh).
fn layout_qkv(qkv: &Tensor, heads: usize) -> Result<Layout> {
    if qkv.rank() != 3 || qkv.shape()[2] % 3 != 0 {
        return Err(Error::shape(OP, format!("packed qkv must be (B, S, 3·H·Dh), got {:?}", qkv.shape())));
    }
    let (b, s, w3) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2]);
    let w = w3 / 3;
    if heads == 0 || w % heads != 0 {
        return Err(Error::shape(OP, format!("width {w} (a third of {:?}) is not divisible by {heads} heads", qkv.shape())));
    }
    let dh = w / heads;
    Ok(Layout {
        batch: b,
        heads,
        seq: s,
        dh,
        in_batch: s * w3,
        in_row: w3,
        in_head: dh,
        q_off: 0,
        k_off: w,
        v_off: 2 * w,
        out_batch: s * w,
        out_row: w,
        out_head: dh,
    })
}

fn out_shape(l: &Layout, nsd: bool) -> Vec<usize> {
    if nsd {
        vec![l.batch, l.seq, l.dh]
    } else {
        vec![l.batch, l.seq, l.heads * l.dh]
    }
}

fn run(q: &Tensor, k: &Tensor, v: &Tensor, l: &Layout, scale: f32, shape: Vec<usize>, version: Option<u32>) -> Result<Tensor> {
    match q.device() {
        Device::Cpu => {
            let out = cpu::attention(q.cpu_f32()?, k.cpu_f32()?, v.cpu_f32()?, l, scale);
            Tensor::from_vec(out, &shape)
        }
        Device::Cuda(_) | Device::Emu => cuda::attention(q, k, v, l, scale, &shape, version),
    }
}

/// `softmax(scale·Q·Kᵀ)·V` over (N, S, Dh) tensors (N = batch·heads).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32) -> Result<Tensor> {
    attention_version(q, k, v, scale, None)
}

/// [`attention`] forcing kernel version `v` on a GPU device (`None`: the dispatcher); benches, tests.
pub fn attention_version(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32, version: Option<u32>) -> Result<Tensor> {
    check_f32(&[q, k, v])?;
    let l = layout_nsd(q, k, v)?;
    run(q, k, v, &l, scale, out_shape(&l, true), version)
}

/// Multi-head attention on projection outputs: q, k, v are (B, S, H·Dh); returns (B, S, H·Dh).
pub fn attention_heads(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    attention_heads_version(q, k, v, heads, scale, None)
}

/// [`attention_heads`] forcing kernel version `v` on a GPU device.
pub fn attention_heads_version(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f32, version: Option<u32>) -> Result<Tensor> {
    check_f32(&[q, k, v])?;
    let l = layout_heads(q, k, v, heads)?;
    run(q, k, v, &l, scale, out_shape(&l, false), version)
}

/// Multi-head attention on one packed (B, S, 3·H·Dh) = [Q | K | V] tensor; returns (B, S, H·Dh).
pub fn attention_qkv(qkv: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    attention_qkv_version(qkv, heads, scale, None)
}

/// [`attention_qkv`] forcing kernel version `v` on a GPU device.
pub fn attention_qkv_version(qkv: &Tensor, heads: usize, scale: f32, version: Option<u32>) -> Result<Tensor> {
    check_f32(&[qkv])?;
    let l = layout_qkv(qkv, heads)?;
    run(qkv, qkv, qkv, &l, scale, out_shape(&l, false), version)
}

/// Longest sequence of the short-sequence kernel v3.
pub const V3_MAX_SEQ: usize = 32;
/// Largest head dim of the flash kernel v2.
pub const V2_MAX_DH: usize = 64;

/// Shared memory (bytes) v3 needs: Q, K, V tiles with a padded pitch, plus the S×S probabilities.
pub fn v3_smem_bytes(seq: usize, dh: usize) -> usize {
    4 * (3 * seq * (dh + 1) + seq * (seq + 1))
}

/// The kernel version the dispatcher picks: v3 for short sequences whose tiles fit in 48 KiB of
/// shared memory, v2 (flash) for head dims ≤ 64, else v1.
pub fn default_version(seq: usize, dh: usize) -> u32 {
    if seq <= V3_MAX_SEQ && v3_smem_bytes(seq, dh) <= 48 * 1024 {
        3
    } else if dh <= V2_MAX_DH {
        2
    } else {
        1
    }
}

/// Benchmark cases: AST's attention (1 clip: 12 heads × 1214 tokens × 64) and AST-SED's
/// frequency-wise attention (101 frames, 4 heads, 13 tokens × 192), CPU and each kernel version on a
/// real GPU; `Work::Flops(4·S²·Dh·units)`.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{check_close, BenchCase, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    if device == Device::Emu {
        return Ok(out);
    }
    // (case, B, S, H, Dh, kernel versions)
    type Case = (&'static str, usize, usize, usize, usize, &'static [u32]);
    let cases: [Case; 2] = [("ast_12x1214x64", 1, 1214, 12, 64, &[1, 2]), ("freq_101x4x13x192", 101, 13, 4, 192, &[1, 3])];
    for (case, b, s, h, dh, versions) in cases {
        let w = h * dh;
        let qkv_cpu = rand_tensor(&[b, s, 3 * w], 41);
        let l = layout_qkv(&qkv_cpu, h)?;
        let flops = l.flops();
        let scale = 1.0 / (dh as f32).sqrt();
        let runs: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { versions.iter().map(|&v| Some(v)).collect() };
        for v in runs {
            let qkv = qkv_cpu.to_device(device)?;
            let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
            if let (Some(be), Some(v)) = (&be, v) {
                be.prepare("attention", &format!("attention_fwd_f32_v{v}"))?;
            }
            let check = v.map(|v| {
                let (qc, qd) = (qkv_cpu.clone(), qkv.clone());
                Box::new(move || {
                    let want = attention_qkv(&qc, h, scale)?.to_vec()?;
                    let got = attention_qkv_version(&qd, h, scale, Some(v))?.to_vec()?;
                    check_close(&format!("attention v{v}"), &got, &want, 1e-5, 1e-4)
                }) as Box<dyn FnMut() -> Result<()>>
            });
            out.push(BenchCase {
                op: OP,
                case: case.to_string(),
                device,
                version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
                dtype: DType::F32,
                work: Work::Flops(flops),
                run: Box::new(move || {
                    let _y = attention_qkv_version(&qkv, h, scale, v)?;
                    if let Some(be) = &be {
                        be.synchronize()?;
                    }
                    Ok(())
                }),
                check,
            });
        }
    }
    out.extend(bwd_bench_cases(device)?);
    Ok(out)
}
