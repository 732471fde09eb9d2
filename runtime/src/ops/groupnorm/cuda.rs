//! Launchers of `kernels/cuda/groupnorm.cu`: `groupnorm_fwd_f32_v1` (one block per group) and v2
//! (`groupnorm_stats_fwd_f32_v2` then `groupnorm_fwd_f32_v2`, each group split into chunks).

use super::Geom;
use crate::gpu::{backend, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `GroupNormParams` in groupnorm.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GroupNormParams {
    pub items: i32,
    pub channels: i32,
    pub groups: i32,
    pub spatial: i32,
    pub eps: f32,
    /// Bit 0: residual present.
    pub flags: i32,
}
const _: () = assert!(std::mem::size_of::<GroupNormParams>() == 24);

const THREADS: u32 = 256;
/// v2: values per chunk aimed at (a block's worth of work: 16 values per thread).
const V2_CHUNK: usize = 4096;
/// v2: at most this many chunks per group (grid.y).
const V2_MAX_CHUNKS: usize = 256;

/// The version the dispatcher picks: v2 when there are fewer groups than two per SM of a large GPU
/// and each is long enough to split, else v1 (an occupancy argument; see groupnorm.cu).
fn default_version(g: &Geom) -> u32 {
    if g.items * g.groups < 256 && g.group_len() >= 2 * V2_CHUNK {
        2
    } else {
        1
    }
}

/// v2's chunking of a group of `m` values: (chunk length L, chunks K), every chunk non-empty.
pub(crate) fn v2_chunks(m: usize) -> (usize, usize) {
    let k = m.div_ceil(V2_CHUNK).clamp(1, V2_MAX_CHUNKS);
    let len = m.div_ceil(k).max(1);
    (len, m.div_ceil(len).max(1))
}

pub(super) fn group_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32, residual: Option<&Tensor>, g: &Geom, v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or_else(|| default_version(g));
    let kernel = format!("groupnorm_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: super::OP, kernel: kernel.clone(), msg };
    if v != 1 && v != 2 {
        return Err(err(format!("no version {v} (f32 has v1 and v2)")));
    }
    let n = x.numel();
    if n > i32::MAX as usize {
        return Err(err(format!("input {:?} has {n} elements, over the kernel's i32 indexing", x.shape())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(n * 4)?;
    if n == 0 {
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    let p = GroupNormParams {
        items: g.items as i32,
        channels: g.channels as i32,
        groups: g.groups as i32,
        spatial: g.spatial as i32,
        eps,
        flags: residual.is_some() as i32,
    };
    let blocks = (g.items * g.groups) as u32; // ≤ N·C < 2^31
    let xb = x.gpu_buf()?;
    // Without a residual, r is passed as x's address and never read (flags say so).
    let rb = residual.map(|r| r.gpu_buf()).transpose()?.unwrap_or(xb);
    if v == 2 {
        let m = g.group_len();
        let (len, k) = v2_chunks(m);
        if m + len > i32::MAX as usize {
            return Err(err(format!("groups of {m} values (input {:?}) overflow the kernel's i32 chunk bounds", x.shape())));
        }
        let part = be.alloc(g.items * g.groups * k * 16)?;
        Launch::new(super::OP, "groupnorm", "groupnorm_stats_fwd_f32_v2")
            .grid(blocks, k as u32, 1)
            .block(THREADS, 1, 1)
            .buf(xb)
            .buf(&part)
            .param(&p)
            .i32(len as i32)
            .run(&be)?;
        Launch::new(super::OP, "groupnorm", kernel.clone())
            .grid(blocks, k as u32, 1)
            .block(THREADS, 1, 1)
            .buf(xb)
            .buf(&part)
            .buf(weight.gpu_buf()?)
            .buf(bias.gpu_buf()?)
            .buf(rb)
            .buf(&out)
            .param(&p)
            .i32(len as i32)
            .run(&be)?;
        return Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()));
    }
    Launch::new(super::OP, "groupnorm", kernel.clone())
        .grid(blocks, 1, 1)
        .block(THREADS, 1, 1)
        .buf(xb)
        .buf(weight.gpu_buf()?)
        .buf(bias.gpu_buf()?)
        .buf(rb)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, x.shape(), DType::F32, x.device()))
}
