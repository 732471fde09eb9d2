//! Launcher of `kernels/cuda/shape.cu`.

use super::{PermKind, PermPlan};
use crate::gpu::{backend, GpuBuffer, Launch};
use crate::ops::{grid_1d, MAX_RANK};
use crate::{DType, Device, Error, Result, Tensor};

/// Mirrors `ShapeParams` in shape.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ShapeParams {
    pub n: i32,
    pub rank: i32,
    pub outer: i32,
    pub rows: i32,
    pub inner: i32,
    pub src_rows: i32,
    pub dst_rows: i32,
    pub start: i32,
    pub step: i32,
    pub times: i32,
    pub pad0: i32,
    pub pad1: i32,
    pub dims: [i32; MAX_RANK],
    pub strides: [i32; MAX_RANK],
}
const _: () = assert!(std::mem::size_of::<ShapeParams>() == 96);

const THREADS: u32 = 256;

/// Every size a kernel indexes must fit its i32 arithmetic.
fn fits(op: &'static str, sizes: &[usize]) -> Result<()> {
    if let Some(&s) = sizes.iter().find(|&&s| s > i32::MAX as usize) {
        return Err(Error::shape(op, format!("{s} elements exceed the CUDA kernel's i32 indexing")));
    }
    Ok(())
}

fn kernel(op: &str, dt: DType, v: u32) -> String {
    format!("{op}_fwd_{}_v{v}", dt.kernel_suffix())
}

/// Allocates the output; `None` when it is empty (nothing to launch).
fn output(x: &Tensor, shape: &[usize]) -> Result<(GpuBuffer, bool)> {
    let be = backend(x.device())?;
    let n: usize = shape.iter().product();
    Ok((be.alloc(n * x.dtype().size())?, n == 0))
}

fn done(buf: GpuBuffer, shape: &[usize], dt: DType, dev: Device) -> Result<Tensor> {
    Ok(Tensor::from_gpu(buf, shape, dt, dev))
}

/// One 1-D launch over `p.n` elements: `kernel(src, [idx,] dst, p)`.
fn launch_1d(op: &'static str, name: String, src: &GpuBuffer, idx: Option<&GpuBuffer>, dst: &GpuBuffer, p: &ShapeParams, dev: Device) -> Result<()> {
    let be = backend(dev)?;
    let mut l = Launch::new(op, "shape", name).grid(grid_1d(p.n as usize, THREADS), 1, 1).block(THREADS, 1, 1).buf(src);
    if let Some(i) = idx {
        l = l.buf(i);
    }
    l.buf(dst).param(p).run(&be)
}

pub(super) fn concat(ts: &[&Tensor], rows: &[usize], outer: usize, inner: usize, out_shape: &[usize]) -> Result<Tensor> {
    let (x, dt, dev) = (ts[0], ts[0].dtype(), ts[0].device());
    let total: usize = rows.iter().sum();
    fits("concat", &[outer * total * inner])?;
    let (out, empty) = output(x, out_shape)?;
    if !empty {
        let mut start = 0;
        for (t, &r) in ts.iter().zip(rows) {
            let n = outer * r * inner;
            if n > 0 {
                let p = ShapeParams {
                    n: n as i32,
                    outer: outer as i32,
                    rows: r as i32,
                    inner: inner as i32,
                    dst_rows: total as i32,
                    start: start as i32,
                    ..Default::default()
                };
                launch_1d("concat", kernel("concat", dt, 1), t.gpu_buf()?, None, &out, &p, dev)?;
            }
            start += r;
        }
    }
    done(out, out_shape, dt, dev)
}

pub(super) fn slice(
    op: &'static str,
    x: &Tensor,
    (outer, rows, inner): (usize, usize, usize),
    start: usize,
    step: usize,
    len: usize,
    out_shape: &[usize],
) -> Result<Tensor> {
    fits(op, &[x.numel(), outer * len * inner, step])?;
    let (out, empty) = output(x, out_shape)?;
    if !empty {
        let p = ShapeParams {
            n: (outer * len * inner) as i32,
            outer: outer as i32,
            rows: len as i32,
            inner: inner as i32,
            src_rows: rows as i32,
            start: start as i32,
            step: step as i32,
            ..Default::default()
        };
        launch_1d(op, kernel("slice", x.dtype(), 1), x.gpu_buf()?, None, &out, &p, x.device())?;
    }
    done(out, out_shape, x.dtype(), x.device())
}

pub(super) fn repeat_interleave(x: &Tensor, (outer, rows, inner): (usize, usize, usize), times: usize, out_shape: &[usize]) -> Result<Tensor> {
    let n: usize = out_shape.iter().product();
    fits("repeat_interleave", &[n, x.numel()])?;
    let (out, empty) = output(x, out_shape)?;
    if !empty {
        let p = ShapeParams {
            n: n as i32,
            outer: outer as i32,
            rows: (rows * times) as i32,
            inner: inner as i32,
            src_rows: rows as i32,
            times: times as i32,
            ..Default::default()
        };
        launch_1d("repeat_interleave", kernel("repeat_interleave", x.dtype(), 1), x.gpu_buf()?, None, &out, &p, x.device())?;
    }
    done(out, out_shape, x.dtype(), x.device())
}

pub(super) fn index_select(x: &Tensor, (outer, rows, inner): (usize, usize, usize), idx: &[u32], out_shape: &[usize]) -> Result<Tensor> {
    let n: usize = out_shape.iter().product();
    fits("index_select", &[n, x.numel()])?;
    let (out, empty) = output(x, out_shape)?;
    if !empty {
        let be = backend(x.device())?;
        let ib = be.upload(bytemuck::cast_slice(idx))?;
        let p = ShapeParams { n: n as i32, outer: outer as i32, rows: idx.len() as i32, inner: inner as i32, src_rows: rows as i32, ..Default::default() };
        launch_1d("index_select", kernel("index_select", x.dtype(), 1), x.gpu_buf()?, Some(&ib), &out, &p, x.device())?;
    }
    done(out, out_shape, x.dtype(), x.device())
}

pub(super) fn permute(x: &Tensor, plan: &PermPlan, v: u32) -> Result<Tensor> {
    let (dt, dev) = (x.dtype(), x.device());
    let name = kernel("permute", dt, v);
    let refuse = |msg: String| Error::Launch { op: "permute", kernel: name.clone(), msg };
    if !plan.versions().contains(&v) {
        return Err(refuse(format!("v{v} does not apply to a {:?} permutation (versions {:?})", plan.kind, plan.versions())));
    }
    let r = plan.out_dims.len();
    if r > MAX_RANK {
        return Err(Error::shape("permute", format!("reduced rank {r} exceeds the CUDA kernel's maximum {MAX_RANK} (output shape {:?})", plan.out_shape)));
    }
    let n = x.numel();
    fits("permute", &[n])?;
    let (out, empty) = output(x, &plan.out_shape)?;
    if empty {
        return done(out, &plan.out_shape, dt, dev);
    }
    let mut p = ShapeParams { n: n as i32, rank: r as i32, ..Default::default() };
    for d in 0..r {
        p.dims[d] = plan.out_dims[d] as i32;
        p.strides[d] = plan.in_strides[d] as i32;
    }
    let be = backend(dev)?;
    let l = Launch::new("permute", "shape", name.clone());
    let l = match (v, plan.kind) {
        (1, _) => l.grid(grid_1d(n, THREADS), 1, 1).block(THREADS, 1, 1),
        (2, PermKind::Transpose { b, r, c }) => {
            let (gx, gy) = (c.div_ceil(32), r.div_ceil(32));
            if gy > 65535 || gx > i32::MAX as usize {
                return Err(refuse(format!("a {r}×{c} transpose exceeds the grid limits")));
            }
            p.dims = [b as i32, r as i32, c as i32, 1, 1, 1];
            l.grid(gx as u32, gy as u32, b.min(65535) as u32).block(32, 8, 1)
        }
        (3, PermKind::Rows { inner }) => {
            p.inner = inner as i32;
            let bx = (inner.div_ceil(32) * 32).min(THREADS as usize) as u32;
            let by = THREADS / bx;
            l.grid(grid_1d(n / inner, by), 1, 1).block(bx, by, 1)
        }
        _ => unreachable!("versions() lists only applicable versions"),
    };
    l.buf(x.gpu_buf()?).buf(&out).param(&p).run(&be)?;
    done(out, &plan.out_shape, dt, dev)
}
