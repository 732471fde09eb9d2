//! Patch embedding of a spectrogram (AST / ViT): a stride-(fs, ts) Conv2d with one input channel over
//! the (mel × frames) image, flattened frequency-major, with optional prepended tokens (AST's cls and
//! distillation tokens) and an optional position embedding added — one op, one fused kernel.
//!
//! Shapes: `x` (B, T, M) = AST's `input_values` (frames × mel; the conv sees its transpose, as HF's
//! `ASTPatchEmbeddings` does with `unsqueeze(1).transpose(2, 3)`); `weight` (N, 1, ph, pw) — kernel ph
//! over mel, pw over frames (or (N, ph, pw)); `bias` (N); `prefix` (P, N) tokens placed first;
//! `pos` (P + F′·T′, N) or (1, P + F′·T′, N). Output (B, P + F′·T′, N), with F′ = (M − ph)/fs + 1,
//! T′ = (T − pw)/ts + 1 and patch p = f·T′ + t at row P + p:
//! `out[b, P + p, n] = bias[n] + pos[P + p, n] + Σ_{i,j} W[n, i, j] · x[b, t·ts + j, f·fs + i]`,
//! `out[b, r < P, n] = prefix[r, n] + pos[r, n]`.
//!
//! CPU: `cpu.rs` (im2col with rayon, then the `gemm`-backed [`crate::ops::matmul::linear`], then the
//! epilogue). CUDA: `cuda.rs` launching `kernels/cuda/patch_embed.cu` (`patch_embed_fwd_f32_v1`
//! naive fused, `_v2` tiled fused GEMM — the default).

mod backward;
mod cpu;
mod cuda;

pub use backward::*;

use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "patch_embed";

/// The parameters of [`patch_embed`].
#[derive(Debug, Clone, Copy)]
pub struct PatchEmbed<'a> {
    /// Conv2d weight (N, 1, ph, pw) or (N, ph, pw): kernel ph over mel, pw over frames.
    pub weight: &'a Tensor,
    /// (N).
    pub bias: &'a Tensor,
    /// (stride over mel, stride over frames) — HF's (frequency_stride, time_stride).
    pub stride: (usize, usize),
    /// Tokens placed before the patches, (P, N).
    pub prefix: Option<&'a Tensor>,
    /// Position embedding added to every row, (P + F′T′, N) or (1, P + F′T′, N).
    pub pos: Option<&'a Tensor>,
}

/// Resolved geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub batch: usize,
    pub frames: usize,
    pub mel: usize,
    pub ph: usize,
    pub pw: usize,
    pub fs: usize,
    pub ts: usize,
    pub fo: usize,
    pub to: usize,
    pub n: usize,
    pub prefix: usize,
}

impl Geom {
    pub fn kdim(&self) -> usize {
        self.ph * self.pw
    }
    pub fn patches(&self) -> usize {
        self.fo * self.to
    }
    pub fn rows(&self) -> usize {
        self.prefix + self.patches()
    }
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.rows(), self.n]
    }
}

/// (F′, T′) for an input of `mel` bins × `frames`, kernel (ph, pw), strides (fs, ts).
pub fn grid_size(mel: usize, frames: usize, ph: usize, pw: usize, fs: usize, ts: usize) -> Option<(usize, usize)> {
    if mel < ph || frames < pw || fs == 0 || ts == 0 {
        return None;
    }
    Some(((mel - ph) / fs + 1, (frames - pw) / ts + 1))
}

fn geometry(x: &Tensor, pe: &PatchEmbed) -> Result<Geom> {
    let mut ts = vec![x, pe.weight, pe.bias];
    ts.extend(pe.prefix);
    ts.extend(pe.pos);
    for t in &ts {
        expect_dtype(OP, t, DType::F32)?;
    }
    same_device(OP, &ts)?;
    if x.rank() != 3 {
        return Err(Error::shape(OP, format!("x must be (B, frames, mel), got {:?}", x.shape())));
    }
    let ws = pe.weight.shape();
    let (n, ph, pw) = match ws.len() {
        4 if ws[1] == 1 => (ws[0], ws[2], ws[3]),
        3 => (ws[0], ws[1], ws[2]),
        _ => return Err(Error::shape(OP, format!("weight must be (N, 1, ph, pw) or (N, ph, pw), got {ws:?}"))),
    };
    if pe.bias.shape() != [n] {
        return Err(Error::shape(OP, format!("bias {:?} must be [{n}] for weight {ws:?}", pe.bias.shape())));
    }
    let (batch, frames, mel) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (fs, tstr) = pe.stride;
    let (fo, to) = grid_size(mel, frames, ph, pw, fs, tstr).ok_or_else(|| {
        Error::shape(OP, format!("input {:?} (frames × mel) is smaller than the {ph}×{pw} kernel (mel × frames) or a stride is 0 ({:?})", x.shape(), pe.stride))
    })?;
    let prefix = match pe.prefix {
        None => 0,
        Some(t) => {
            if t.rank() != 2 || t.shape()[1] != n {
                return Err(Error::shape(OP, format!("prefix tokens {:?} must be (P, {n})", t.shape())));
            }
            t.shape()[0]
        }
    };
    let g = Geom { batch, frames, mel, ph, pw, fs, ts: tstr, fo, to, n, prefix };
    if let Some(pos) = pe.pos {
        let s = pos.shape();
        let ok = s == [g.rows(), n] || s == [1, g.rows(), n];
        if !ok {
            return Err(Error::shape(
                OP,
                format!("position embedding {s:?} must be ({}, {n}) = (prefix {prefix} + {fo}×{to} patches, N) for input {:?}", g.rows(), x.shape()),
            ));
        }
    }
    Ok(g)
}

/// The patch embedding; see the module doc.
pub fn patch_embed(x: &Tensor, pe: &PatchEmbed) -> Result<Tensor> {
    patch_embed_version(x, pe, None)
}

/// [`patch_embed`] forcing kernel version `v` (1 or 2) on a GPU device; benches and tests.
pub fn patch_embed_version(x: &Tensor, pe: &PatchEmbed, version: Option<u32>) -> Result<Tensor> {
    let g = geometry(x, pe)?;
    match x.device() {
        Device::Cpu => cpu::patch_embed(x, pe, &g),
        Device::Cuda(_) | Device::Emu => cuda::patch_embed(x, pe, &g, version),
    }
}

/// Benchmark cases: AST-base on one 10 s clip (1024 frames × 128 mel → 12 × 101 = 1212 patches of
/// 16×16, N = 768, with cls/distillation tokens and position embedding). CPU, and v1/v2 on a GPU.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{check_close, BenchCase, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    if device == Device::Emu {
        return Ok(out);
    }
    let cpu = [
        rand_tensor(&[1, 1024, 128], 51),
        rand_tensor(&[768, 1, 16, 16], 52),
        rand_tensor(&[768], 53),
        rand_tensor(&[2, 768], 54),
        rand_tensor(&[1214, 768], 55),
    ];
    let flops = 2.0 * (1212 * 768 * 256) as f64;
    let runs: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { vec![Some(1), Some(2)] };
    for v in runs {
        let dev: Vec<Tensor> = cpu.iter().map(|t| t.to_device(device)).collect::<Result<_>>()?;
        let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
        if let (Some(be), Some(v)) = (&be, v) {
            be.prepare(OP, &format!("patch_embed_fwd_f32_v{v}"))?;
        }
        let call = |t: &[Tensor], v: Option<u32>| {
            let pe = PatchEmbed { weight: &t[1], bias: &t[2], stride: (10, 10), prefix: Some(&t[3]), pos: Some(&t[4]) };
            patch_embed_version(&t[0], &pe, v)
        };
        let check = v.map(|v| {
            let (c, d) = (cpu.to_vec(), dev.clone());
            Box::new(move || {
                let want = call(&c, None)?.to_vec()?;
                let got = call(&d, Some(v))?.to_vec()?;
                check_close(&format!("patch_embed v{v}"), &got, &want, 1e-4, 1e-4)
            }) as Box<dyn FnMut() -> Result<()>>
        });
        out.push(BenchCase {
            op: OP,
            case: "1024x128_p16_s10".into(),
            device,
            version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
            dtype: DType::F32,
            work: Work::Flops(flops),
            run: Box::new(move || {
                let _y = call(&dev, v)?;
                if let Some(be) = &be {
                    be.synchronize()?;
                }
                Ok(())
            }),
            check,
        });
    }
    Ok(out)
}
