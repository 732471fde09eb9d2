//! Launcher of `kernels/cuda/conv2d.cu`: picks the kernel version (v3 on tensor cores for an f16
//! weight, else the tiled v2; or the forced one), checks on the host what the kernels assume (i32
//! indexing, grid limits, the weight's dtype for the version), and launches.

use super::{Conv2d, Geom, TimeFilmMode};
use crate::gpu::{backend, Arg, Launch};
use crate::{DType, Error, Result, Tensor};

const OP: &str = "conv2d";

/// Mirrors `Conv2dParams` in conv2d.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Conv2dParams {
    pub batch: i32,
    /// Channels of the first input, of the second (0: one input), and their sum C.
    pub c0: i32,
    pub c1: i32,
    pub ctot: i32,
    pub h: i32,
    pub w: i32,
    /// h·w.
    pub hw: i32,
    /// Output channels O.
    pub cout: i32,
    /// Kernel size (1 or 3), k / 2, and K = C·k·k.
    pub k: i32,
    pub pad: i32,
    pub kdim: i32,
    /// 1: the scale/shift pointers are valid (pre-activation).
    pub has_pre: i32,
    /// 1: the bias pointer is valid.
    pub has_bias: i32,
    /// 1: the residual pointer is valid.
    pub has_res: i32,
    /// Elements between the shift rows of consecutive batch items: 0 for a (C) shift, C for (B, C).
    pub shift_stride: i32,
    /// v2/v3: output channels per block tile (32 or 64; the tile holds 4096 outputs).
    pub tile_m: i32,
    /// LeakyReLU negative slope.
    pub slope: f32,
    /// Time-FiLM: 0 none (the time pointer is null), 1 Add (`leaky(z + t)`), 2 Gate (`leaky(z)·t`).
    pub time_mode: i32,
}
const _: () = assert!(std::mem::size_of::<Conv2dParams>() == 72);

/// Threads per block of v1, v2, v3.
const V1_THREADS: u32 = 256;
const V2_THREADS: u32 = 256;
const V3_THREADS: u32 = 128;
/// Outputs per block tile of v2 and v3: (O rows) × (pixels) = 64 × 64 or 32 × 128.
const TILE_AREA: usize = 4096;
/// Largest element count of any tensor the kernels index with i32 (headroom for the tile overrun
/// of the index arithmetic: m0 + 64, n0 + 128, k0 + 32).
const I32_LIMIT: usize = i32::MAX as usize - 256;
/// CUDA's limit on gridDim.y and gridDim.z.
const GRID_YZ: usize = 65535;

/// The block tile's output-channel height for v2/v3: the shape (64 × 64 or 32 × 128) that pads the
/// (O × H·W) output less; ties go to 64 × 64 (more reuse of the gathered input tile).
impl Conv2dParams {
    /// The launch parameters of one call (`tile_m`: the tiled kernels' output-channel tile, 0 else).
    pub(crate) fn new(c: &Conv2d, g: &Geom, tile_m: usize) -> Conv2dParams {
        let ct = g.cin_total();
        let hw = g.h * g.w;
        Conv2dParams {
            batch: g.batch as i32,
            c0: g.cin[0] as i32,
            c1: g.cin.get(1).copied().unwrap_or(0) as i32,
            ctot: ct as i32,
            h: g.h as i32,
            w: g.w as i32,
            hw: hw as i32,
            cout: g.cout as i32,
            k: g.k as i32,
            pad: (g.k / 2) as i32,
            kdim: (ct * g.k * g.k) as i32,
            has_pre: c.pre.is_some() as i32,
            has_bias: c.bias.is_some() as i32,
            has_res: c.residual.is_some() as i32,
            shift_stride: if c.pre.is_some() && g.shift_per_batch { ct as i32 } else { 0 },
            tile_m: tile_m as i32,
            slope: c.pre.map(|p| p.slope).unwrap_or(0.0),
            time_mode: match c.pre.and_then(|p| p.time).map(|t| t.mode) {
                None => 0,
                Some(TimeFilmMode::Add) => 1,
                Some(TimeFilmMode::Gate) => 2,
            },
        }
    }
}

/// Appends `t`'s buffer, or a null pointer when absent (never read: its flag is 0, time_mode 0, or c1 = 0).
pub(crate) fn opt_buf(l: Launch, t: Option<&Tensor>) -> Result<Launch> {
    Ok(match t {
        Some(t) => l.buf(t.gpu_buf()?),
        None => {
            let mut l = l;
            l.args.push(Arg::Ptr(0));
            l
        }
    })
}

fn tile_m(cout: usize, hw: usize) -> usize {
    let padded = |bm: usize| {
        let bn = TILE_AREA / bm;
        cout.div_ceil(bm) * bm * hw.div_ceil(bn) * bn
    };
    if padded(32) < padded(64) {
        32
    } else {
        64
    }
}

pub(super) fn conv2d(inputs: &[&Tensor], c: &Conv2d, g: &Geom, version: Option<u32>) -> Result<Tensor> {
    let wdt = c.weight.dtype();
    let v = version.unwrap_or(match wdt {
        DType::F16 => 3,
        DType::F32 => 2,
    });
    let kernel = match v {
        1 | 2 => format!("conv2d_fwd_f32_v{v}"),
        3 => "conv2d_fwd_f16_v3".to_string(),
        _ => format!("conv2d_fwd_v{v}"),
    };
    let err = |msg: String| Error::Launch { op: OP, kernel: kernel.clone(), msg };
    match (v, wdt) {
        (1 | 2, DType::F32) | (3, DType::F16) => {}
        (1..=3, _) => {
            return Err(err(format!(
                "version {v} takes an {} weight, got {wdt} (an f32 weight runs v1 or v2, an f16 weight v3)",
                if v == 3 { "f16" } else { "f32" }
            )))
        }
        _ => return Err(err(format!("no version {v} (f32 weight: v1, v2; f16 weight: v3)"))),
    }
    if g.cin.is_empty() || g.cin.len() > 2 || g.cin.len() != inputs.len() {
        return Err(err(format!("takes one or two inputs, got {} (channels {:?})", inputs.len(), g.cin)));
    }

    let hw = g.h * g.w;
    let ct = g.cin_total();
    let kdim = ct * g.k * g.k;
    let out_shape = g.out_shape();
    let out_len = g.batch * g.cout * hw;
    // i32 indexing: every tensor the kernels index, and the sizes the index arithmetic reaches.
    let mut sizes: Vec<(&str, usize)> = inputs.iter().map(|t| ("input", t.numel())).collect();
    sizes.extend([("weight", c.weight.numel()), ("output", out_len), ("K = C·k·k", kdim), ("H·W", hw)]);
    let time = c.pre.and_then(|p| p.time);
    sizes.extend(time.map(|t| ("time-FiLM values", t.values.numel())));
    if let Some(&(what, n)) = sizes.iter().find(|(_, n)| *n > I32_LIMIT) {
        return Err(err(format!(
            "{what} has {n} elements, over the kernel's i32 indexing limit {I32_LIMIT} (inputs {:?}, weight {:?})",
            inputs.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>(),
            c.weight.shape()
        )));
    }

    let be = backend(inputs[0].device())?;
    let out = be.alloc(out_len * 4)?;
    if out_len == 0 {
        return Ok(Tensor::from_gpu(out, &out_shape, DType::F32, inputs[0].device()));
    }

    let tm = tile_m(g.cout, hw);
    let (grid, threads) = match v {
        1 => ((hw.div_ceil(V1_THREADS as usize), g.cout, g.batch), V1_THREADS),
        2 => ((hw.div_ceil(TILE_AREA / tm), g.cout.div_ceil(tm), g.batch), V2_THREADS),
        _ => ((hw.div_ceil(TILE_AREA / tm), g.cout.div_ceil(tm), g.batch), V3_THREADS),
    };
    if grid.1 > GRID_YZ || grid.2 > GRID_YZ {
        return Err(err(format!(
            "grid ({}, {}, {}) for output {out_shape:?} exceeds CUDA's 65535 limit on grid.y (output-channel tiles) or grid.z (batch)",
            grid.0, grid.1, grid.2
        )));
    }

    let c1 = g.cin.get(1).copied().unwrap_or(0);
    let p = Conv2dParams::new(c, g, tm);
    let x1 = inputs.get(1).copied().filter(|_| c1 > 0);
    let l = Launch::new(OP, "conv2d", kernel.clone()).grid(grid.0 as u32, grid.1 as u32, grid.2 as u32).block(threads, 1, 1).buf(inputs[0].gpu_buf()?);
    let l = opt_buf(l, x1)?.buf(c.weight.gpu_buf()?);
    let l = opt_buf(l, c.bias)?;
    let l = opt_buf(l, c.residual)?;
    let l = opt_buf(l, c.pre.map(|p| p.scale))?;
    let l = opt_buf(l, c.pre.map(|p| p.shift))?;
    let l = opt_buf(l, time.map(|t| t.values))?;
    l.buf(&out).param(&p).run(&be)?;
    Ok(Tensor::from_gpu(out, &out_shape, DType::F32, inputs[0].device()))
}

#[cfg(test)]
mod tests {
    use super::tile_m;

    #[test]
    fn tile_shape_pads_less() {
        // ResUNet30: 32 channels → 32 × 128; 64·k channels → 64 × 64; 96 → 32 × 128.
        assert_eq!(tile_m(32, 2016 * 512), 32);
        assert_eq!(tile_m(64, 1008 * 256), 64);
        assert_eq!(tile_m(384, 63 * 8), 64);
        assert_eq!(tile_m(96, 4096), 32);
        // Few pixels: 128-pixel tiles would pad more.
        assert_eq!(tile_m(5, 40), 64);
        assert_eq!(tile_m(5, 200), 32);
    }
}
