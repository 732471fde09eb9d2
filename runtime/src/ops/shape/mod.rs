//! Data movement (f32 and f16): concat, slice (narrow) and strided slice, permute/transpose,
//! repeat_interleave (nearest-neighbour upsampling along an axis), index_select.
//!
//! CPU: `cpu.rs` (rayon, `copy_from_slice` of contiguous runs). CUDA: `cuda.rs` launching
//! `kernels/cuda/shape.cu`: `concat_fwd_<dt>_v1`, `slice_fwd_<dt>_v1`, `repeat_interleave_fwd_<dt>_v1`,
//! `index_select_fwd_<dt>_v1`, `permute_fwd_<dt>_v1` (general), `_v2` (32×32 shared-memory tiled
//! batched transpose, the last dim moves), `_v3` (row copy, the last dim stays). All results are
//! bitwise equal across backends. `reshape` lives on [`Tensor`] and shares storage; storage is always
//! contiguous, so there is no `contiguous`.
//!
//! Every rows op views its input as (O, R, I): O = product of the dims before `axis`, R = the axis,
//! I = product of the dims after it. A permutation is first reduced (size-1 dims dropped, adjacent
//! dims that stay adjacent merged; see [`PermPlan`]) and its kind picks the kernel.

mod cpu;
mod cuda;

use crate::tensor::same_device;
use crate::{numel, DType, Device, Error, Result, Tensor};

/// Runs a generic `cpu::$f(data, args…)` on the CPU data of `$x` (f32 or f16); result shape `$shape`.
macro_rules! on_cpu {
    ($x:expr, $shape:expr, |$d:ident| $body:expr) => {
        match $x.dtype() {
            DType::F32 => {
                let $d = $x.cpu_f32()?;
                Tensor::from_vec($body, $shape)
            }
            DType::F16 => {
                let $d = $x.cpu_f16()?;
                Tensor::from_vec_f16($body, $shape)
            }
        }
    };
}

/// (O, R, I) of `shape` around axis `ax`.
fn rows_view(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    (numel(&shape[..ax]), shape[ax], numel(&shape[ax + 1..]))
}

/// `torch.cat(tensors, dim=axis)`: all tensors have one rank, dtype and device, and equal dims
/// except along `axis`.
pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let name = "concat";
    let Some(first) = tensors.first() else {
        return Err(Error::shape(name, "needs at least one tensor"));
    };
    let dev = same_device(name, tensors)?;
    let ax = first.axis(axis, name)?;
    let mut out_shape = first.shape().to_vec();
    out_shape[ax] = 0;
    for (k, t) in tensors.iter().enumerate() {
        if t.dtype() != first.dtype() {
            return Err(Error::DType { op: name, got: t.dtype(), msg: format!("tensor {k} is {}, tensor 0 is {}", t.dtype(), first.dtype()) });
        }
        let ok = t.rank() == first.rank() && (0..t.rank()).all(|d| d == ax || t.shape()[d] == first.shape()[d]);
        if !ok {
            return Err(Error::shape(
                name,
                format!("tensor {k} has shape {:?}, tensor 0 has {:?}: all dims but axis {axis} must match", t.shape(), first.shape()),
            ));
        }
        out_shape[ax] += t.shape()[ax];
    }
    let (outer, _, inner) = rows_view(&out_shape, ax);
    let rows: Vec<usize> = tensors.iter().map(|t| t.shape()[ax]).collect();
    match dev {
        Device::Cpu => match first.dtype() {
            DType::F32 => {
                let srcs = tensors.iter().map(|t| t.cpu_f32()).collect::<Result<Vec<_>>>()?;
                Tensor::from_vec(cpu::concat(&srcs, &rows, outer, inner), &out_shape)
            }
            DType::F16 => {
                let srcs = tensors.iter().map(|t| t.cpu_f16()).collect::<Result<Vec<_>>>()?;
                Tensor::from_vec_f16(cpu::concat(&srcs, &rows, outer, inner), &out_shape)
            }
        },
        Device::Cuda(_) | Device::Emu => cuda::concat(tensors, &rows, outer, inner, &out_shape),
    }
}

/// `torch.narrow(x, axis, start, len)`: elements `start..start + len` along `axis` (a copy).
pub fn slice(x: &Tensor, axis: isize, start: usize, len: usize) -> Result<Tensor> {
    let ax = x.axis(axis, "slice")?;
    let dim = x.shape()[ax];
    if start.checked_add(len).is_none_or(|e| e > dim) {
        return Err(Error::shape("slice", format!("start {start} + length {len} exceeds axis {axis} of size {dim} (shape {:?})", x.shape())));
    }
    slice_impl("slice", x, ax, start, len, 1)
}

/// `x[..., start:end:step, ...]` along `axis` (Python slicing with `start ≤ end ≤ dim`, `step ≥ 1`).
pub fn slice_step(x: &Tensor, axis: isize, start: usize, end: usize, step: usize) -> Result<Tensor> {
    let ax = x.axis(axis, "slice_step")?;
    let dim = x.shape()[ax];
    if step == 0 {
        return Err(Error::shape("slice_step", "step must be at least 1"));
    }
    if start > end || end > dim {
        return Err(Error::shape("slice_step", format!("range {start}..{end} is not within axis {axis} of size {dim} (shape {:?})", x.shape())));
    }
    slice_impl("slice_step", x, ax, start, (end - start).div_ceil(step), step)
}

fn slice_impl(name: &'static str, x: &Tensor, ax: usize, start: usize, len: usize, step: usize) -> Result<Tensor> {
    let (outer, rows, inner) = rows_view(x.shape(), ax);
    let mut out_shape = x.shape().to_vec();
    out_shape[ax] = len;
    match x.device() {
        Device::Cpu => {
            if step == 1 {
                // One contiguous run of len·I per outer index.
                on_cpu!(x, &out_shape, |d| cpu::gather(d, outer, len * inner, |o| (o * rows + start) * inner))
            } else {
                on_cpu!(x, &out_shape, |d| cpu::gather(d, outer * len, inner, |row| ((row / len) * rows + start + (row % len) * step) * inner))
            }
        }
        Device::Cuda(_) | Device::Emu => cuda::slice(name, x, (outer, rows, inner), start, step, len, &out_shape),
    }
}

/// `torch.repeat_interleave(x, times, dim=axis)`: each element repeated `times` times consecutively
/// along `axis` — nearest-neighbour upsampling by an integer factor (`F.interpolate(mode='nearest')`).
pub fn repeat_interleave(x: &Tensor, axis: isize, times: usize) -> Result<Tensor> {
    let ax = x.axis(axis, "repeat_interleave")?;
    let (outer, rows, inner) = rows_view(x.shape(), ax);
    let mut out_shape = x.shape().to_vec();
    out_shape[ax] = rows.checked_mul(times).ok_or_else(|| Error::shape("repeat_interleave", format!("{rows} × {times} overflows")))?;
    let rout = out_shape[ax];
    match x.device() {
        Device::Cpu => on_cpu!(x, &out_shape, |d| cpu::gather(d, outer * rout, inner, |row| ((row / rout) * rows + (row % rout) / times) * inner)),
        Device::Cuda(_) | Device::Emu => cuda::repeat_interleave(x, (outer, rows, inner), times, &out_shape),
    }
}

/// `torch.index_select(x, axis, indices)`: the slices of `x` at `indices` along `axis`, in order
/// (duplicates allowed). An out-of-range index is an error naming it.
pub fn index_select(x: &Tensor, axis: isize, indices: &[u32]) -> Result<Tensor> {
    let ax = x.axis(axis, "index_select")?;
    let (outer, rows, inner) = rows_view(x.shape(), ax);
    if let Some((pos, &bad)) = indices.iter().enumerate().find(|&(_, &i)| i as usize >= rows) {
        return Err(Error::shape(
            "index_select",
            format!("index {bad} (position {pos}) is out of range for axis {axis} of size {rows} (shape {:?})", x.shape()),
        ));
    }
    let mut out_shape = x.shape().to_vec();
    out_shape[ax] = indices.len();
    let k = indices.len();
    match x.device() {
        Device::Cpu => on_cpu!(x, &out_shape, |d| cpu::gather(d, outer * k, inner, |row| ((row / k) * rows + indices[row % k] as usize) * inner)),
        Device::Cuda(_) | Device::Emu => cuda::index_select(x, (outer, rows, inner), indices, &out_shape),
    }
}

/// How a reduced permutation is moved (and which kernel does it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermKind {
    /// Nothing moves: the result shares the input's storage (a reshape).
    Identity,
    /// The last dim stays: runs of `inner` contiguous elements are copied (kernel v3).
    Rows { inner: usize },
    /// Batched 2-D transpose (B, R, C) → (B, C, R), the last dim moves (kernel v2).
    Transpose { b: usize, r: usize, c: usize },
    /// Anything else (kernel v1).
    General,
}

/// A permutation reduced to its essentials: size-1 dims dropped and adjacent input dims that stay
/// adjacent (in order) in the output merged.
#[derive(Debug, Clone, PartialEq)]
pub struct PermPlan {
    /// The output shape of the full (unreduced) permutation.
    pub out_shape: Vec<usize>,
    /// Reduced output dims.
    pub out_dims: Vec<usize>,
    /// Input element stride of each reduced output dim.
    pub in_strides: Vec<usize>,
    pub kind: PermKind,
}

impl PermPlan {
    /// Checks that `dims` is a permutation of `0..shape.len()` and reduces it.
    pub fn new(shape: &[usize], dims: &[usize]) -> Result<PermPlan> {
        let r = shape.len();
        let mut seen = vec![false; r];
        if dims.len() != r || dims.iter().any(|&d| d >= r || std::mem::replace(&mut seen[d], true)) {
            return Err(Error::shape("permute", format!("dims {dims:?} are not a permutation of 0..{r} (shape {shape:?})")));
        }
        let out_shape: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
        // Output order of the kept input dims.
        let q: Vec<usize> = dims.iter().copied().filter(|&d| shape[d] != 1).collect();
        // Groups of consecutive input dims, in output order.
        let mut groups: Vec<(usize, usize)> = Vec::new(); // (first input dim, last input dim)
        for &d in &q {
            match groups.last_mut() {
                // Adjacent in the input once size-1 dims are ignored.
                Some(g) if (g.1 + 1..d).all(|k| shape[k] == 1) && d > g.1 => g.1 = d,
                _ => groups.push((d, d)),
            }
        }
        let size = |g: &(usize, usize)| -> usize { shape[g.0..=g.1].iter().product() };
        // Input strides of each group (row-major over the input).
        let in_strides: Vec<usize> = groups.iter().map(|g| shape[g.1 + 1..].iter().product()).collect();
        let out_dims: Vec<usize> = groups.iter().map(size).collect();
        let identity = groups.windows(2).all(|w| w[0].0 < w[1].0);
        let m = groups.len();
        // The reduced input shape, in input order.
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by_key(|&i| groups[i].0);
        let rank_in_input: Vec<usize> = {
            let mut v = vec![0; m];
            for (pos, &i) in order.iter().enumerate() {
                v[i] = pos;
            }
            v
        };
        let kind = if identity || numel(shape) == 0 {
            PermKind::Identity
        } else if rank_in_input[m - 1] == m - 1 {
            PermKind::Rows { inner: out_dims[m - 1] }
        } else if m == 2 {
            PermKind::Transpose { b: 1, r: out_dims[1], c: out_dims[0] }
        } else if m == 3 && rank_in_input == [0, 2, 1] {
            PermKind::Transpose { b: out_dims[0], r: out_dims[2], c: out_dims[1] }
        } else {
            PermKind::General
        };
        Ok(PermPlan { out_shape, out_dims, in_strides, kind })
    }

    /// Kernel versions that can run this plan (`[]` for an identity: no kernel runs).
    pub fn versions(&self) -> Vec<u32> {
        match self.kind {
            PermKind::Identity => vec![],
            PermKind::Rows { .. } => vec![1, 3],
            PermKind::Transpose { .. } => vec![1, 2],
            PermKind::General => vec![1],
        }
    }

    /// The version the dispatcher picks.
    pub fn best_version(&self) -> u32 {
        match self.kind {
            PermKind::Rows { .. } => 3,
            PermKind::Transpose { r, .. } if r.div_ceil(32) <= 65535 => 2,
            _ => 1,
        }
    }
}

/// `x.permute(dims)`: output dim `i` is input dim `dims[i]` (a copy; an identity shares storage).
pub fn permute(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let plan = PermPlan::new(x.shape(), dims)?;
    permute_plan(x, &plan, None)
}

/// Like [`permute`] on a GPU device, but forcing kernel version `v` (see [`PermPlan::versions`]);
/// benches and tests. On the CPU `v` is ignored.
pub fn permute_version(x: &Tensor, dims: &[usize], v: u32) -> Result<Tensor> {
    let plan = PermPlan::new(x.shape(), dims)?;
    permute_plan(x, &plan, Some(v))
}

fn permute_plan(x: &Tensor, plan: &PermPlan, v: Option<u32>) -> Result<Tensor> {
    if plan.kind == PermKind::Identity {
        return x.reshape(&plan.out_shape);
    }
    match x.device() {
        Device::Cpu => on_cpu!(x, &plan.out_shape, |d| cpu::permute(d, plan)),
        Device::Cuda(_) | Device::Emu => cuda::permute(x, plan, v.unwrap_or_else(|| plan.best_version())),
    }
}

/// `x.transpose(a, b)`: swaps two axes (negative axes count from the end).
pub fn transpose(x: &Tensor, a: isize, b: isize) -> Result<Tensor> {
    let (a, b) = (x.axis(a, "transpose")?, x.axis(b, "transpose")?);
    let mut dims: Vec<usize> = (0..x.rank()).collect();
    dims.swap(a, b);
    permute(x, &dims)
}

/// Benchmark cases (f32): the AST frequency-major grid to frames (12, 101, 768) → (101, 12, 768), the
/// attention head split (1214, 12, 64) → (12, 1214, 64), the key transpose (12, 1214, 64) →
/// (12, 64, 1214) (tiled v2), concat of two (1214, 768) on axis 0, and the LGD ×10 nearest-neighbour
/// upsampling (101, 768) on axis 0 — CPU, and every applicable kernel version on CUDA.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    type OpFn = std::sync::Arc<dyn Fn(&[Tensor], Option<u32>) -> Result<Tensor> + Send + Sync>;
    let perm = |dims: Vec<usize>| -> OpFn {
        std::sync::Arc::new(move |xs: &[Tensor], v: Option<u32>| match v {
            None => permute(&xs[0], &dims),
            Some(v) => permute_version(&xs[0], &dims, v),
        })
    };
    let cases: Vec<(&str, Vec<Vec<usize>>, OpFn, Vec<u32>)> = vec![
        ("grid12x101x768_to_101x12x768", vec![vec![12, 101, 768]], perm(vec![1, 0, 2]), vec![1, 3]),
        ("heads1214x12x64_to_12x1214x64", vec![vec![1214, 12, 64]], perm(vec![1, 0, 2]), vec![1, 3]),
        ("kT12x1214x64_to_12x64x1214", vec![vec![12, 1214, 64]], perm(vec![0, 2, 1]), vec![1, 2]),
        (
            "cat2x1214x768_axis0",
            vec![vec![1214, 768], vec![1214, 768]],
            std::sync::Arc::new(|xs: &[Tensor], _v: Option<u32>| concat(&[&xs[0], &xs[1]], 0)),
            vec![1],
        ),
        ("repeat101x768_x10_axis0", vec![vec![101, 768]], std::sync::Arc::new(|xs: &[Tensor], _v: Option<u32>| repeat_interleave(&xs[0], 0, 10)), vec![1]),
    ];
    let mut out = Vec::new();
    for (case, shapes, f, versions) in cases {
        let host: Vec<Tensor> = shapes.iter().enumerate().map(|(i, s)| rand_tensor(s, 1 + i as u64)).collect();
        let out_numel = f(&host, None)?.numel();
        let work = Work::Bytes(4.0 * (host.iter().map(|t| t.numel()).sum::<usize>() + out_numel) as f64);
        // Pure data movement: the GPU result must equal the CPU's exactly.
        out.extend(version_cases("shape", case, device, DType::F32, work, &versions, (0.0, 0.0), host, move |t, v| f(t, v))?);
    }
    Ok(out)
}
