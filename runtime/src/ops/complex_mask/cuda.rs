//! Launcher of `kernels/cuda/complex_mask.cu`: `mag_input_fwd_f32_v1` ([`super::magnitude_input`])
//! and `complex_mask_fwd_{f32,f16}_v1` ([`super::complex_mask`]; the f16 kernel when `spec` and `x`
//! are F16 tensors); the backward's `complex_mask_data_bwd_f32_v1`,
//! `complex_mask_weight_bwd_f32_v1` and `complex_mask_wsum_bwd_f32_v1` ([`super::complex_mask_bwd`]).

use super::{MaskGeom, OutConv};
use crate::gpu::{backend, Arg, Launch};
use crate::{DType, Error, Result, Tensor};

/// Mirrors `MagInputParams` in complex_mask.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MagInputParams {
    /// B·C.
    pub planes: i32,
    pub freq: i32,
    pub frames: i32,
    pub net_frames: i32,
    /// F − 1.
    pub fo: i32,
    pub _pad0: i32,
    pub _pad1: i32,
    pub _pad2: i32,
}
const _: () = assert!(std::mem::size_of::<MagInputParams>() == 32);

/// Mirrors `ComplexMaskParams` in complex_mask.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ComplexMaskParams {
    pub batch: i32,
    pub targets: i32,
    pub cin: i32,
    /// O (= C without out_conv).
    pub cout: i32,
    pub freq: i32,
    pub frames: i32,
    pub net_frames: i32,
    /// F − 1.
    pub fo: i32,
    pub has_out_conv: i32,
    pub has_gate: i32,
    /// ⌈O / OCHUNK⌉ (= O) with out_conv, else 1.
    pub o_chunks: i32,
    /// Backward weight kernel: partial sums per output (P); 0 in the forward.
    pub chunks: i32,
}
const _: () = assert!(std::mem::size_of::<ComplexMaskParams>() == 48);

/// Tile (frames × bins) of one block; threads per block = TILE × ROWS.
const TILE: usize = 32;
const ROWS: u32 = 8;
/// out_conv outputs accumulated per block (grid.z covers ⌈O / OCHUNK⌉ chunks). TILE and OCHUNK are
/// also in `bench::gpu_model`'s byte formulas.
const OCHUNK: usize = 1;
const GRID_YZ_MAX: usize = 65535;

pub(super) fn magnitude_input(
    spec: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    (planes, f, t, tp): (usize, usize, usize, usize),
    shape: &[usize],
    v: Option<u32>,
) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let kernel = format!("mag_input_fwd_f32_v{v}");
    let err = |msg: String| Error::Launch { op: "magnitude_input", kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} (f32 has v1)")));
    }
    let fo = f - 1;
    let n_out = planes * tp * fo;
    if spec.numel().max(n_out) > i32::MAX as usize {
        return Err(err(format!("spec {:?} or the output {shape:?} exceeds the kernel's i32 indexing", spec.shape())));
    }
    if planes > GRID_YZ_MAX || fo.div_ceil(TILE) > GRID_YZ_MAX {
        return Err(err(format!("spec {:?}: {planes} planes (B·C) or {} bin tiles exceed CUDA's 65535 grid.y/z limit", spec.shape(), fo.div_ceil(TILE))));
    }
    let be = backend(spec.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, shape, DType::F32, spec.device()));
    }
    let p = MagInputParams { planes: planes as i32, freq: f as i32, frames: t as i32, net_frames: tp as i32, fo: fo as i32, _pad0: 0, _pad1: 0, _pad2: 0 };
    Launch::new("magnitude_input", "complex_mask", kernel.clone())
        .grid(tp.div_ceil(TILE) as u32, fo.div_ceil(TILE) as u32, planes as u32)
        .block(TILE as u32, ROWS, 1)
        .buf(spec.gpu_buf()?)
        .buf(scale.gpu_buf()?)
        .buf(shift.gpu_buf()?)
        .buf(&out)
        .param(&p)
        .run(&be)?;
    Ok(Tensor::from_gpu(out, shape, DType::F32, spec.device()))
}

/// ⌈O / OCHUNK⌉ blocks along grid.z per (b, s) with out_conv, else 1.
fn o_chunks(g: &MaskGeom) -> usize {
    if g.has_out_conv {
        g.cout.div_ceil(OCHUNK)
    } else {
        1
    }
}

pub(super) fn complex_mask(spec: &Tensor, x: &Tensor, oc: Option<&OutConv>, gate: Option<&Tensor>, g: &MaskGeom, v: Option<u32>) -> Result<Tensor> {
    let v = v.unwrap_or(1);
    let dtype = spec.dtype();
    let kernel = format!("complex_mask_fwd_{}_v{v}", dtype.kernel_suffix());
    let err = |msg: String| Error::Launch { op: "complex_mask", kernel: kernel.clone(), msg };
    if v != 1 {
        return Err(err(format!("no version {v} for {dtype} (f32 and f16 have v1)")));
    }
    let out_shape = g.out_shape();
    let n_out: usize = out_shape.iter().product();
    if [spec.numel(), x.numel(), n_out].into_iter().max().unwrap_or(0) > i32::MAX as usize {
        return Err(err(format!("spec {:?}, x {:?} or the output {out_shape:?} exceeds the kernel's i32 indexing", spec.shape(), x.shape())));
    }
    let k = o_chunks(g);
    let z = g.batch * g.targets * k;
    if z > GRID_YZ_MAX || g.freq.div_ceil(TILE) > GRID_YZ_MAX {
        return Err(err(format!(
            "B·S·⌈O/{OCHUNK}⌉ = {}·{}·{k} blocks along z or {} bin tiles exceed CUDA's 65535 grid.y/z limit (spec {:?})",
            g.batch,
            g.targets,
            g.freq.div_ceil(TILE),
            spec.shape()
        )));
    }
    let be = backend(spec.device())?;
    let out = be.alloc(n_out * 4)?;
    if n_out == 0 {
        return Ok(Tensor::from_gpu(out, &out_shape, DType::F32, spec.device()));
    }
    let p = ComplexMaskParams {
        batch: g.batch as i32,
        targets: g.targets as i32,
        cin: g.cin as i32,
        cout: g.cout as i32,
        freq: g.freq as i32,
        frames: g.frames as i32,
        net_frames: g.net_frames as i32,
        fo: (g.freq - 1) as i32,
        has_out_conv: g.has_out_conv as i32,
        has_gate: g.has_gate as i32,
        o_chunks: k as i32,
        chunks: 0,
    };
    let mut l = Launch::new("complex_mask", "complex_mask", kernel.clone())
        .grid(g.frames.div_ceil(TILE) as u32, g.freq.div_ceil(TILE) as u32, z as u32)
        .block(TILE as u32, ROWS, 1)
        .buf(spec.gpu_buf()?)
        .buf(x.gpu_buf()?);
    match oc {
        Some(oc) => l = l.buf(oc.weight.gpu_buf()?).buf(oc.bias.gpu_buf()?),
        None => l.args.extend([Arg::Ptr(0), Arg::Ptr(0)]), // never read (has_out_conv = 0)
    }
    match gate {
        Some(gt) => l = l.buf(gt.gpu_buf()?),
        None => l.args.push(Arg::Ptr(0)), // never read (has_gate = 0)
    }
    l.buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &out_shape, DType::F32, spec.device()))
}

/// Partial-sum blocks per output of `complex_mask_weight_bwd_f32_v1`: enough blocks to fill a GPU
/// at O·(C + 1) = 5 outputs, each thread still looping over ≥ ~8 bins on the baseline's size.
const WBWD_MAX_CHUNKS: usize = 128;
const WBWD_THREADS: usize = 256;

/// [`super::complex_mask_bwd`] on a GPU device: `complex_mask_data_bwd_f32_v1` (dx) and, with
/// out_conv, `complex_mask_weight_bwd_f32_v1` + `complex_mask_wsum_bwd_f32_v1` (dW, dbias).
pub(super) fn complex_mask_bwd(
    spec: &Tensor,
    x: &Tensor,
    oc: Option<&OutConv>,
    gate: Option<&Tensor>,
    grad: &Tensor,
    g: &MaskGeom,
) -> Result<(Tensor, Option<[Tensor; 2]>)> {
    let dev = spec.device();
    let fo = g.freq - 1;
    let dx_shape = [g.batch, g.targets * g.cin * 3, g.net_frames, fo];
    let n_dx: usize = dx_shape.iter().product();
    let bins = g.batch * g.targets * g.freq * g.frames;
    if g.cout.max(1) * (g.cin + 1) > GRID_YZ_MAX {
        return Err(Error::Launch {
            op: "complex_mask_bwd",
            kernel: "complex_mask_weight_bwd_f32_v1".into(),
            msg: format!("O·(C + 1) = {} outputs exceed CUDA's 65535 grid.y limit", g.cout * (g.cin + 1)),
        });
    }
    let be = backend(dev)?;
    let dx = be.alloc(n_dx * 4)?;
    let chunks = bins.div_ceil(WBWD_THREADS).clamp(1, WBWD_MAX_CHUNKS);
    let p = ComplexMaskParams {
        batch: g.batch as i32,
        targets: g.targets as i32,
        cin: g.cin as i32,
        cout: g.cout as i32,
        freq: g.freq as i32,
        frames: g.frames as i32,
        net_frames: g.net_frames as i32,
        fo: fo as i32,
        has_out_conv: g.has_out_conv as i32,
        has_gate: g.has_gate as i32,
        o_chunks: 1,
        chunks: chunks as i32,
    };
    let gate_arg = |l: Launch| -> Result<Launch> {
        Ok(match gate {
            Some(gt) => l.buf(gt.gpu_buf()?),
            None => {
                let mut l = l;
                l.args.push(Arg::Ptr(0)); // never read (has_gate = 0)
                l
            }
        })
    };
    if n_dx > 0 {
        let mut l = Launch::new("complex_mask_bwd", "complex_mask", "complex_mask_data_bwd_f32_v1")
            .grid(crate::ops::grid_1d(n_dx, WBWD_THREADS as u32), 1, 1)
            .block(WBWD_THREADS as u32, 1, 1)
            .buf(spec.gpu_buf()?)
            .buf(x.gpu_buf()?);
        match oc {
            Some(oc) => l = l.buf(oc.weight.gpu_buf()?),
            None => l.args.push(Arg::Ptr(0)), // never read (has_out_conv = 0)
        }
        gate_arg(l)?.buf(grad.gpu_buf()?).buf(&dx).param(&p).run(&be)?;
    }
    let dx = Tensor::from_gpu(dx, &dx_shape, DType::F32, dev);
    let Some(oc) = oc else { return Ok((dx, None)) };
    let (o, c) = (g.cout, g.cin);
    let dw = be.alloc_zeros(o * c * 4)?;
    let db = be.alloc_zeros(o * 4)?;
    if bins > 0 {
        let part = be.alloc(o * (c + 1) * chunks * 4)?;
        let l = Launch::new("complex_mask_bwd", "complex_mask", "complex_mask_weight_bwd_f32_v1")
            .grid(chunks as u32, (o * (c + 1)) as u32, 1)
            .block(WBWD_THREADS as u32, 1, 1)
            .buf(spec.gpu_buf()?)
            .buf(x.gpu_buf()?);
        gate_arg(l)?.buf(grad.gpu_buf()?).buf(&part).param(&p).run(&be)?;
        Launch::new("complex_mask_bwd", "complex_mask", "complex_mask_wsum_bwd_f32_v1")
            .grid(crate::ops::grid_1d(o * (c + 1), WBWD_THREADS as u32), 1, 1)
            .block(WBWD_THREADS as u32, 1, 1)
            .buf(&part)
            .buf(&dw)
            .buf(&db)
            .param(&p)
            .run(&be)?;
    }
    let wshape = oc.weight.shape().to_vec();
    Ok((dx, Some([Tensor::from_gpu(dw, &wshape, DType::F32, dev), Tensor::from_gpu(db, &[o], DType::F32, dev)])))
}
