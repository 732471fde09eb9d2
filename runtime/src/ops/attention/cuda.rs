//! Launcher of `kernels/cuda/attention.cu`.

use super::Layout;
use crate::gpu::{backend, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `AttnParams` in attention.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AttnParams {
    pub batch: i32,
    pub heads: i32,
    pub seq: i32,
    pub dh: i32,
    pub in_batch: i32,
    pub in_row: i32,
    pub in_head: i32,
    pub q_off: i32,
    pub k_off: i32,
    pub v_off: i32,
    pub out_batch: i32,
    pub out_row: i32,
    pub out_head: i32,
    pub scale: f32,
    pub _pad0: i32,
    pub _pad1: i32,
}

impl AttnParams {
    /// The kernel parameters of layout `l` with softmax scale `scale`.
    pub(crate) fn new(l: &Layout, scale: f32) -> AttnParams {
        AttnParams {
            batch: l.batch as i32,
            heads: l.heads as i32,
            seq: l.seq as i32,
            dh: l.dh as i32,
            in_batch: l.in_batch as i32,
            in_row: l.in_row as i32,
            in_head: l.in_head as i32,
            q_off: l.q_off as i32,
            k_off: l.k_off as i32,
            v_off: l.v_off as i32,
            out_batch: l.out_batch as i32,
            out_row: l.out_row as i32,
            out_head: l.out_head as i32,
            scale,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

const _: () = assert!(std::mem::size_of::<AttnParams>() == 64);

const V1_THREADS: u32 = 128;
const V2_ROWS: usize = 64;
const V3_THREADS: u32 = 128;

pub(super) fn attention(q: &Tensor, k: &Tensor, v: &Tensor, l: &Layout, scale: f32, shape: &[usize], version: Option<u32>) -> Result<Tensor> {
    let ver = version.unwrap_or_else(|| super::default_version(l.seq, l.dh));
    let kernel = format!("attention_fwd_f32_v{ver}");
    let err = |msg: String| Error::Launch { op: "attention", kernel: kernel.clone(), msg };
    let big = [q.numel(), k.numel(), v.numel(), l.out_len()].into_iter().max().unwrap_or(0);
    if big > i32::MAX as usize {
        return Err(err(format!("{big} elements exceed the kernel's i32 indexing")));
    }
    let be = backend(q.device())?;
    let out = be.alloc(l.out_len() * 4)?;
    if l.out_len() == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, q.device()));
    }
    let units = l.units();
    let (grid, block, smem) = match ver {
        1 => {
            if units > 65535 {
                return Err(err(format!("{units} sequence·heads exceed grid.y 65535")));
            }
            ((l.seq.div_ceil(V1_THREADS as usize) as u32, units as u32), V1_THREADS, 0)
        }
        2 => {
            if l.dh > super::V2_MAX_DH {
                return Err(err(format!("head dim {} > {} (v2 keeps a padded 64-float row per thread)", l.dh, super::V2_MAX_DH)));
            }
            if units > 65535 {
                return Err(err(format!("{units} sequence·heads exceed grid.y 65535")));
            }
            ((l.seq.div_ceil(V2_ROWS) as u32, units as u32), V2_ROWS as u32, 0)
        }
        3 => {
            let smem = super::v3_smem_bytes(l.seq, l.dh);
            if l.seq > super::V3_MAX_SEQ || smem > 48 * 1024 {
                return Err(err(format!("sequence {} × head dim {} needs S ≤ {} and {smem} ≤ 49152 bytes of shared memory", l.seq, l.dh, super::V3_MAX_SEQ)));
            }
            ((units as u32, 1), V3_THREADS, smem as u32)
        }
        _ => return Err(err("no such version (1, 2 or 3)".into())),
    };
    let p = AttnParams::new(l, scale);
    Launch::new("attention", "attention", kernel)
        .grid(grid.0, grid.1, 1)
        .block(block, 1, 1)
        .smem(smem)
        .buf(q.gpu_buf()?)
        .buf(k.gpu_buf()?)
        .buf(v.gpu_buf()?)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, q.device()))
}
