//! Launcher of `kernels/cuda/patch_embed.cu`.

use super::{Geom, PatchEmbed};
use crate::gpu::{backend, Arg, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `PatchEmbedParams` in patch_embed.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PatchEmbedParams {
    pub batch: i32,
    pub frames: i32,
    pub mel: i32,
    pub ph: i32,
    pub pw: i32,
    pub fs: i32,
    pub ts: i32,
    pub fo: i32,
    pub to: i32,
    pub n: i32,
    pub prefix: i32,
    pub has_pos: i32,
    pub kdim: i32,
    pub rows: i32,
    pub _pad0: i32,
    pub _pad1: i32,
}
const _: () = assert!(std::mem::size_of::<PatchEmbedParams>() == 64);

const V1_TILE: u32 = 16;
const V2_TILE: usize = 64;
const V2_THREADS: u32 = 256;

pub(super) fn patch_embed(x: &Tensor, pe: &PatchEmbed, g: &Geom, version: Option<u32>) -> Result<Tensor> {
    let v = version.unwrap_or(2);
    let kernel = format!("patch_embed_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: "patch_embed", kernel: kernel.clone(), msg };
    let out_len = g.batch * g.rows() * g.n;
    if [x.numel(), out_len, pe.weight.numel()].into_iter().max().unwrap_or(0) > i32::MAX as usize || g.batch > 65535 {
        return Err(err(format!("input {:?} exceeds the kernel's i32 indexing or 65535 batches", x.shape())));
    }
    let be = backend(x.device())?;
    let out = be.alloc(out_len * 4)?;
    if out_len == 0 {
        return Ok(Tensor::from_gpu(out, &g.out_shape(), DType::F32, x.device()));
    }
    let (grid, block) = match v {
        1 => ((g.n.div_ceil(V1_TILE as usize) as u32, g.rows().div_ceil(V1_TILE as usize) as u32), (V1_TILE, V1_TILE)),
        2 => ((g.n.div_ceil(V2_TILE) as u32, g.rows().div_ceil(V2_TILE) as u32), (V2_THREADS, 1)),
        _ => return Err(err("no such version (1 or 2)".into())),
    };
    if grid.1 > 65535 {
        return Err(err(format!("{} rows need more than 65535 row tiles", g.rows())));
    }
    let p = PatchEmbedParams {
        batch: g.batch as i32,
        frames: g.frames as i32,
        mel: g.mel as i32,
        ph: g.ph as i32,
        pw: g.pw as i32,
        fs: g.fs as i32,
        ts: g.ts as i32,
        fo: g.fo as i32,
        to: g.to as i32,
        n: g.n as i32,
        prefix: g.prefix as i32,
        has_pos: pe.pos.is_some() as i32,
        kdim: g.kdim() as i32,
        rows: g.rows() as i32,
        _pad0: 0,
        _pad1: 0,
    };
    let opt = |l: Launch, t: Option<&Tensor>| -> Result<Launch> {
        Ok(match t {
            Some(t) => l.buf(t.gpu_buf()?),
            None => {
                let mut l = l;
                l.args.push(Arg::Ptr(0)); // never read (has_pos = 0 / prefix = 0)
                l
            }
        })
    };
    let l = Launch::new("patch_embed", "patch_embed", kernel.clone())
        .grid(grid.0, grid.1, g.batch as u32)
        .block(block.0, block.1, 1)
        .buf(x.gpu_buf()?)
        .buf(pe.weight.gpu_buf()?)
        .buf(pe.bias.gpu_buf()?);
    let l = opt(l, pe.pos)?;
    let l = opt(l, pe.prefix)?;
    l.buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &g.out_shape(), DType::F32, x.device()))
}
