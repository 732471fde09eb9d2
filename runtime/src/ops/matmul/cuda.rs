//! Launcher of `kernels/cuda/matmul.cu`.

use super::{Activation, Geometry};
use crate::gpu::{backend, Arg, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `MatmulParams` in matmul.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulParams {
    pub m: i32,
    pub n: i32,
    pub k: i32,
    /// 1: a is stored (K, M).
    pub trans_a: i32,
    /// 1: b is stored (N, K).
    pub trans_b: i32,
    /// 1: the bias pointer is valid (length N).
    pub has_bias: i32,
    /// 0 none, 1 exact GELU.
    pub act: i32,
    pub _pad: i32,
    /// Elements between consecutive matrices of a, b (0: shared 2-D b) and the output.
    pub a_batch_stride: i32,
    pub b_batch_stride: i32,
    pub c_batch_stride: i32,
    pub _pad2: i32,
}
const _: () = assert!(std::mem::size_of::<MatmulParams>() == 48);

/// Output tile of v2 and v3 (rows × cols per block), threads per block of v1/v2/v3.
const TILE_V2: usize = 64;
const THREADS_V2: u32 = 256;
const TILE_V3: usize = 64;
const THREADS_V3: u32 = 128;
const TILE_V1: u32 = 16;

pub(super) fn matmul(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, act: Activation, g: &Geometry, version: Option<u32>) -> Result<Tensor> {
    let dtype = a.dtype();
    let v = version.unwrap_or(match dtype {
        DType::F32 => 2,
        DType::F16 => 3,
    });
    let kernel = format!("matmul_fwd_{}_v{v}", dtype.kernel_suffix());
    let supported = matches!((dtype, v), (DType::F32, 1) | (DType::F32, 2) | (DType::F16, 3));
    if !supported {
        return Err(Error::Launch { op: "matmul", kernel, msg: format!("no version {v} for {dtype} (f32 has v1, v2; f16 has v3)") });
    }
    let big = [g.m * g.k, g.k * g.n, g.m * g.n, g.m, g.n, g.k].into_iter().max().unwrap_or(0);
    if big > i32::MAX as usize || g.batch > 65535 {
        return Err(Error::shape("matmul", format!("M={} N={} K={} batch={} exceed the CUDA kernel's i32 indexing / 65535 batches", g.m, g.n, g.k, g.batch)));
    }
    let be = backend(a.device())?;
    let n_out = g.batch * g.m * g.n;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, &g.out_shape, DType::F32, a.device()));
    }
    let p = MatmulParams {
        m: g.m as i32,
        n: g.n as i32,
        k: g.k as i32,
        trans_a: g.trans_a as i32,
        trans_b: g.trans_b as i32,
        has_bias: bias.is_some() as i32,
        act: act.code(),
        _pad: 0,
        a_batch_stride: g.a_batch_stride as i32,
        b_batch_stride: g.b_batch_stride as i32,
        c_batch_stride: (g.m * g.n) as i32,
        _pad2: 0,
    };
    let (grid, block) = match v {
        1 => ((g.n.div_ceil(TILE_V1 as usize) as u32, g.m.div_ceil(TILE_V1 as usize) as u32), (TILE_V1, TILE_V1)),
        2 => ((g.n.div_ceil(TILE_V2) as u32, g.m.div_ceil(TILE_V2) as u32), (THREADS_V2, 1)),
        _ => ((g.n.div_ceil(TILE_V3) as u32, g.m.div_ceil(TILE_V3) as u32), (THREADS_V3, 1)),
    };
    if grid.1 > 65535 {
        return Err(Error::shape("matmul", format!("M={} needs {} row tiles, over CUDA's 65535 grid.y limit", g.m, grid.1)));
    }
    let mut l = Launch::new("matmul", "matmul", kernel).grid(grid.0, grid.1, g.batch as u32).block(block.0, block.1, 1).buf(a.gpu_buf()?).buf(b.gpu_buf()?);
    l = match bias {
        Some(t) => l.buf(t.gpu_buf()?),
        None => {
            l.args.push(Arg::Ptr(0)); // never read: has_bias = 0
            l
        }
    };
    l.buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &g.out_shape, DType::F32, a.device()))
}
