//! Launcher of `kernels/cuda/binary.cu`.

use super::BinaryOp;
use crate::gpu::{backend, Launch};
use crate::ops::{grid_1d, Broadcast, BroadcastKind, MAX_RANK};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `BinaryParams` in binary.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BinaryParams {
    pub n: i32,
    pub rank: i32,
    /// Elements of the repeated operand (v2) — numel(b) for SuffixB, numel(a) for SuffixA, n for Same.
    pub m: i32,
    /// 0: b is the repeated operand, 1: a is.
    pub small_is_a: i32,
    pub out_dims: [i32; MAX_RANK],
    pub a_strides: [i32; MAX_RANK],
    pub b_strides: [i32; MAX_RANK],
}
const _: () = assert!(std::mem::size_of::<BinaryParams>() == 88);

const THREADS: u32 = 256;

pub(super) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, bc: &Broadcast, version: Option<u32>) -> Result<Tensor> {
    let n: usize = bc.out.iter().product();
    if n > i32::MAX as usize {
        return Err(Error::shape("binary", format!("{n} elements exceed the CUDA kernel's i32 indexing")));
    }
    let be = backend(a.device())?;
    let out = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, &bc.out, DType::F32, a.device()));
    }
    let v = version.unwrap_or(if bc.kind == BroadcastKind::General { 1 } else { 2 });
    if v == 2 && bc.kind == BroadcastKind::General {
        return Err(Error::Launch {
            op: "binary",
            kernel: format!("{}_fwd_f32_v2", op.name()),
            msg: "v2 needs same shapes or a trailing-block broadcast".into(),
        });
    }
    if bc.out.len() > MAX_RANK && v == 1 {
        return Err(Error::shape("binary", format!("rank {} exceeds the CUDA kernel's maximum {MAX_RANK}", bc.out.len())));
    }
    let mut p = BinaryParams {
        n: n as i32,
        rank: bc.out.len() as i32,
        m: n as i32,
        small_is_a: 0,
        out_dims: [1; MAX_RANK],
        a_strides: [0; MAX_RANK],
        b_strides: [0; MAX_RANK],
    };
    if v == 1 {
        for i in 0..bc.out.len() {
            p.out_dims[i] = bc.out[i] as i32;
            p.a_strides[i] = bc.a_strides[i] as i32;
            p.b_strides[i] = bc.b_strides[i] as i32;
        }
    }
    match bc.kind {
        BroadcastKind::SuffixB => p.m = b.numel() as i32,
        BroadcastKind::SuffixA => {
            p.m = a.numel() as i32;
            p.small_is_a = 1;
        }
        _ => {}
    }
    let kernel = format!("{}_fwd_f32_v{v}", op.name());
    Launch::new("binary", "binary", kernel)
        .grid(grid_1d(n, THREADS), 1, 1)
        .block(THREADS, 1, 1)
        .buf(a.gpu_buf()?)
        .buf(b.gpu_buf()?)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, &bc.out, DType::F32, a.device()))
}
