//! Launcher of `kernels/cuda/conv_transpose.cu` (`conv_transpose_fwd_f32_v1`).

use super::Geom;
use crate::gpu::{backend, Arg, Launch};
use crate::ops::conv2d::{PreAct, TimeFilmMode};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `ConvTransposeParams` in conv_transpose.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvTransposeParams {
    pub batch: i32,
    pub cin: i32,
    pub h: i32,
    pub w: i32,
    pub cout: i32,
    pub sh: i32,
    pub sw: i32,
    /// H·sh, W·sw.
    pub ho: i32,
    pub wo: i32,
    /// 1: scale/shift/slope are used.
    pub has_pre: i32,
    /// 0: shift is (C); C: shift is (B, C).
    pub shift_bstride: i32,
    pub slope: f32,
    /// Time-FiLM: 0 none (the time pointer is null), 1 Add (`leaky(z + t)`), 2 Gate (`leaky(z)·t`).
    pub time_mode: i32,
}

impl ConvTransposeParams {
    /// The launch parameters of one call (forward or backward).
    pub(crate) fn new(g: &Geom, pre: Option<&PreAct>) -> ConvTransposeParams {
        ConvTransposeParams {
            batch: g.batch as i32,
            cin: g.cin as i32,
            h: g.h as i32,
            w: g.w as i32,
            cout: g.cout as i32,
            sh: g.sh as i32,
            sw: g.sw as i32,
            ho: (g.h * g.sh) as i32,
            wo: (g.w * g.sw) as i32,
            has_pre: pre.is_some() as i32,
            shift_bstride: if g.shift_per_batch { g.cin as i32 } else { 0 },
            slope: pre.map_or(1.0, |p| p.slope),
            time_mode: match pre.and_then(|p| p.time).map(|t| t.mode) {
                None => 0,
                Some(TimeFilmMode::Add) => 1,
                Some(TimeFilmMode::Gate) => 2,
            },
        }
    }
}

/// Appends the pre-activation's scale, shift and time buffers; null pointers when absent (never
/// read: has_pre = 0 / time_mode = 0).
pub(crate) fn pre_bufs(mut l: Launch, pre: Option<&PreAct>) -> Result<Launch> {
    match pre {
        Some(pa) => l = l.buf(pa.scale.gpu_buf()?).buf(pa.shift.gpu_buf()?),
        None => l.args.extend([Arg::Ptr(0), Arg::Ptr(0)]),
    }
    match pre.and_then(|p| p.time) {
        Some(t) => l = l.buf(t.values.gpu_buf()?),
        None => l.args.push(Arg::Ptr(0)),
    }
    Ok(l)
}
const _: () = assert!(std::mem::size_of::<ConvTransposeParams>() == 52);

const THREADS: u32 = 256;

pub(super) fn conv_transpose2d(x: &Tensor, w: &Tensor, pre: Option<&PreAct>, g: &Geom, v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("conv_transpose_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: "conv_transpose2d", kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    let out_shape = g.out_shape();
    let n_out: usize = out_shape.iter().product();
    let big = [x.numel(), w.numel(), n_out, g.h * g.sh, g.w * g.sw].into_iter().max().unwrap_or(0);
    if big > i32::MAX as usize {
        return Err(err(format!(
            "input {:?} with weight {:?} gives an output {out_shape:?} of {n_out} elements, over the kernel's i32 indexing",
            x.shape(),
            w.shape()
        )));
    }
    let be = backend(x.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, &out_shape, DType::F32, x.device()));
    }
    let p = ConvTransposeParams::new(g, pre);
    let blocks = n_out.div_ceil(THREADS as usize) as u32; // ≤ 2^23: within grid.x's 2^31 − 1
    let mut l = Launch::new("conv_transpose2d", "conv_transpose", kernel.clone()).grid(blocks, 1, 1).block(THREADS, 1, 1).buf(x.gpu_buf()?).buf(w.gpu_buf()?);
    l = pre_bufs(l, pre)?;
    l.buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &out_shape, DType::F32, x.device()))
}
