//! Gated recurrent units (f32), exactly `torch.nn.GRU(input_size, hidden_size, num_layers,
//! bias, batch_first=True, bidirectional)` in inference:
//!
//! r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h′ = (1 − z) ⊙ n + z ⊙ h.
//!
//! Weights use torch's names and layouts ([`GruWeights::from_tensors`]): `weight_ih_l{k}` (3H, I_k)
//! with rows r | z | n, `weight_hh_l{k}` (3H, H), `bias_ih_l{k}`, `bias_hh_l{k}` (3H), and the same
//! with `_reverse` for the backward direction, which reads the sequence from the end. Layer k > 0 takes
//! the previous layer's (B, T, D·H) output. x is (B, T, I); the output (B, T, D·H) holds the forward
//! direction in columns 0..H and the reverse one in H..2H; `h0`/`h_n` are (L·D, B, H), index l·D + d.
//!
//! CPU: `cpu.rs` (input projections as one GEMM per direction, then the recurrence with a hand-
//! vectorised matrix-vector product per step, both directions concurrently). CUDA: `cuda.rs`, input
//! projections with the matmul family and the recurrence in `kernels/cuda/gru.cu` (`gru_fwd_f32_v1`
//! one launch per step, `gru_fwd_f32_v2` persistent: one launch per layer, `gru_fwd_f32_v3` persistent
//! with float4 weights and split k). The dispatcher picks v3 (v2 when H % 4 ≠ 0, v1 when H > 1024).
//!
//! Measured (`aural bench --op gru`, case bi_T1010_I768_H384_B1 = the AST-SED local GRU decoder:
//! 101 patch frames ×10, BiGRU(768 → 384), one clip; `scripts/bench_torch_gru.py` times
//! torch.nn.GRU in the same session):
//!
//! | where | aural | torch.nn.GRU |
//! |---|---|---|
//! | 2-core AMD EPYC dev box, 2 threads | CPU 68–81 ms | 139–162 ms (torch 2.9.1) |
//! | H100 host CPU (16 cores) | CPU 85 ms | 126 ms (2 threads), 91 ms (16 threads) |
//! | H100 GPU | v1 91.8 ms, v2 36.3 ms, v3 11.9 ms | 28.6 ms (cuDNN, torch 2.11) |
//!
//! Training ([`gru_train_forward`] + [`gru_bwd`], case bwd_bi_T1010_I768_H384_B1;
//! `scripts/bench_torch_gru.py --backward`), the 2-core dev box shared with another build (load ≈ 3,
//! so both columns are ~2× their idle times):
//!
//! | where | aural forward / backward | torch.nn.GRU training forward / backward |
//! |---|---|---|
//! | 2-core AMD EPYC, 2 threads | 155 ms / 231 ms (bench medians) | 252 ms / 808 ms (torch 2.9.1) |
//!
//! The backward kernels (`gru_bwd_f32_v1`, `_v2`) are verified under the emulator only so far.

mod backward;
mod cpu;
mod cuda;

pub use backward::*;

use std::collections::BTreeMap;

use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "gru";

/// The weights of one direction of one layer (torch layouts).
#[derive(Debug, Clone)]
pub struct GruDirWeights {
    /// (3H, I_layer), rows r | z | n.
    pub w_ih: Tensor,
    /// (3H, H).
    pub w_hh: Tensor,
    /// (3H), or none (`bias=False`).
    pub b_ih: Option<Tensor>,
    /// (3H), or none.
    pub b_hh: Option<Tensor>,
}

/// The weights of a (stacked, optionally bidirectional) GRU: `layers[l][d]`, d = 0 forward, 1 reverse.
#[derive(Debug, Clone)]
pub struct GruWeights {
    pub layers: Vec<Vec<GruDirWeights>>,
}

impl GruWeights {
    /// Validates shapes (every layer has the same number of directions, H agrees everywhere, layer
    /// l > 0 takes D·H inputs), dtypes (f32) and devices.
    pub fn new(layers: Vec<Vec<GruDirWeights>>) -> Result<GruWeights> {
        if layers.is_empty() {
            return Err(Error::shape(OP, "needs at least one layer"));
        }
        let d = layers[0].len();
        if d != 1 && d != 2 {
            return Err(Error::shape(OP, format!("layer 0 has {d} directions (1 or 2)")));
        }
        let h = layers[0][0].w_hh.shape().get(1).copied().unwrap_or(0);
        let input = layers[0][0].w_ih.shape().get(1).copied().unwrap_or(0);
        let dev = layers[0][0].w_hh.device();
        for (l, dirs) in layers.iter().enumerate() {
            if dirs.len() != d {
                return Err(Error::shape(OP, format!("layer {l} has {} directions, layer 0 has {d}", dirs.len())));
            }
            let i_l = if l == 0 { input } else { d * h };
            for (di, w) in dirs.iter().enumerate() {
                let name = |what: &str| format!("{what}_l{l}{}", if di == 1 { "_reverse" } else { "" });
                let mut want: Vec<(String, &Tensor, Vec<usize>)> =
                    vec![(name("weight_hh"), &w.w_hh, vec![3 * h, h]), (name("weight_ih"), &w.w_ih, vec![3 * h, i_l])];
                if let Some(b) = &w.b_ih {
                    want.push((name("bias_ih"), b, vec![3 * h]));
                }
                if let Some(b) = &w.b_hh {
                    want.push((name("bias_hh"), b, vec![3 * h]));
                }
                for (n, t, shape) in want {
                    if t.shape() != shape.as_slice() {
                        return Err(Error::shape(OP, format!("{n} has shape {:?}, expected {shape:?} (H = {h})", t.shape())));
                    }
                    expect_dtype(OP, t, DType::F32)?;
                    if t.device() != dev {
                        return Err(Error::DeviceMismatch { op: OP, a: format!("{n} on {}", t.device()), b: format!("weight_hh_l0 on {dev}") });
                    }
                }
            }
        }
        if h == 0 {
            return Err(Error::shape(OP, "hidden size is 0"));
        }
        Ok(GruWeights { layers })
    }

    /// Loads torch.nn.GRU parameters named `{prefix}weight_ih_l{k}[_reverse]` … from `map` (e.g. a
    /// safetensors file of a state_dict; `prefix` like `"gru."` or `""`). Biases may be absent (both
    /// of a direction, as `bias=False`). A missing or mis-shaped tensor is an error naming it.
    pub fn from_tensors(map: &BTreeMap<String, Tensor>, prefix: &str, num_layers: usize, bidirectional: bool) -> Result<GruWeights> {
        let get =
            |n: &str| -> Result<Tensor> { map.get(&format!("{prefix}{n}")).cloned().ok_or_else(|| Error::shape(OP, format!("weight {prefix}{n} is missing"))) };
        let mut layers = Vec::new();
        for l in 0..num_layers {
            let mut dirs = Vec::new();
            for suffix in if bidirectional { &["", "_reverse"][..] } else { &[""][..] } {
                dirs.push(GruDirWeights {
                    w_ih: get(&format!("weight_ih_l{l}{suffix}"))?,
                    w_hh: get(&format!("weight_hh_l{l}{suffix}"))?,
                    b_ih: get(&format!("bias_ih_l{l}{suffix}")).ok(),
                    b_hh: get(&format!("bias_hh_l{l}{suffix}")).ok(),
                });
            }
            layers.push(dirs);
        }
        GruWeights::new(layers)
    }

    /// Number of layers and whether `_reverse` weights exist, from the names in `map` under `prefix`.
    pub fn detect(map: &BTreeMap<String, Tensor>, prefix: &str) -> (usize, bool) {
        let layers = (0..).take_while(|l| map.contains_key(&format!("{prefix}weight_ih_l{l}"))).count();
        (layers, map.contains_key(&format!("{prefix}weight_ih_l0_reverse")))
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// 1 or 2.
    pub fn num_directions(&self) -> usize {
        self.layers[0].len()
    }
    pub fn hidden_size(&self) -> usize {
        self.layers[0][0].w_hh.shape()[1]
    }
    pub fn input_size(&self) -> usize {
        self.layers[0][0].w_ih.shape()[1]
    }
    pub fn device(&self) -> Device {
        self.layers[0][0].w_hh.device()
    }
    /// A copy on `device`.
    pub fn to_device(&self, device: Device) -> Result<GruWeights> {
        let mv = |t: &Tensor| t.to_device(device);
        let layers = self
            .layers
            .iter()
            .map(|dirs| {
                dirs.iter()
                    .map(|w| {
                        Ok(GruDirWeights {
                            w_ih: mv(&w.w_ih)?,
                            w_hh: mv(&w.w_hh)?,
                            b_ih: w.b_ih.as_ref().map(mv).transpose()?,
                            b_hh: w.b_hh.as_ref().map(mv).transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GruWeights { layers })
    }
}

/// Checks x (B, T, I), h0 (L·D, B, H) and the direction count; returns (B, T).
fn check(x: &Tensor, w: &GruWeights, h0: Option<&Tensor>, bidirectional: bool) -> Result<(usize, usize)> {
    expect_dtype(OP, x, DType::F32)?;
    let d = w.num_directions();
    if bidirectional != (d == 2) {
        return Err(Error::shape(OP, format!("bidirectional = {bidirectional} but the weights have {d} direction(s)")));
    }
    if x.rank() != 3 || x.shape()[2] != w.input_size() {
        return Err(Error::shape(OP, format!("x has shape {:?}, expected (B, T, {}) (batch_first)", x.shape(), w.input_size())));
    }
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let mut ts = vec![x, &w.layers[0][0].w_hh];
    if let Some(h0) = h0 {
        expect_dtype(OP, h0, DType::F32)?;
        let want = [w.num_layers() * d, b, w.hidden_size()];
        if h0.shape() != want {
            return Err(Error::shape(OP, format!("h0 has shape {:?}, expected {want:?} (layers·directions, B, H)", h0.shape())));
        }
        ts.push(h0);
    }
    same_device(OP, &ts)?;
    Ok((b, t))
}

/// `torch.nn.GRU(…, batch_first=True)(x, h0)[0]`: x (B, T, I) → (B, T, D·H). `h0`: (L·D, B, H) or
/// zeros when `None`. `bidirectional` must match the weights (it is checked, as a guard against
/// loading the wrong checkpoint).
pub fn gru(x: &Tensor, weights: &GruWeights, h0: Option<&Tensor>, bidirectional: bool) -> Result<Tensor> {
    Ok(run(x, weights, h0, bidirectional, None, false, 1)?.0)
}

/// `gru(repeat_interleave(x, 1, repeat), …)`: nearest-neighbour upsampling of x along time by
/// `repeat`, then the GRU — without materialising the upsampled input: the first layer's input
/// projection runs on the T distinct frames and its rows are repeated (the same numbers, `repeat`×
/// fewer GEMM flops). Output (B, T·repeat, D·H). The AST-SED local GRU decoder.
pub fn gru_repeat(x: &Tensor, weights: &GruWeights, h0: Option<&Tensor>, bidirectional: bool, repeat: usize) -> Result<Tensor> {
    if repeat == 0 {
        return Err(Error::shape(OP, "repeat must be at least 1"));
    }
    Ok(run(x, weights, h0, bidirectional, None, false, repeat)?.0)
}

/// Like [`gru`], also returning torch's `h_n` (L·D, B, H): the last state of every layer and
/// direction (the forward one at t = T−1, the reverse one at t = 0).
pub fn gru_with_state(x: &Tensor, weights: &GruWeights, h0: Option<&Tensor>, bidirectional: bool) -> Result<(Tensor, Tensor)> {
    let (y, hn) = run(x, weights, h0, bidirectional, None, true, 1)?;
    Ok((y, hn.expect("h_n requested")))
}

/// The forward of training for one layer (h0 = 0): `y` as [`gru`] (B, T, D·H), and what
/// [`gru_bwd`] needs ([`GruSaved`]: every step's pre-activations xp and gh, (B, T, D·3H) each).
/// CPU: the recurrence writes gh as it goes and xp is one GEMM with the stacked W_ih. GPU devices:
/// the default recurrence kernel, then gh = H_prev·W_hhᵀ + b_hh as one GEMM per direction over every
/// step (H_prev = y shifted by one step), which runs at GEMM speed instead of inside the recurrence.
pub fn gru_train_forward(x: &Tensor, weights: &GruWeights, bidirectional: bool) -> Result<(Tensor, GruSaved)> {
    check(x, weights, None, bidirectional)?;
    if weights.num_layers() != 1 {
        return Err(Error::shape(OP, format!("gru_train_forward runs one layer; the weights have {} (call it per layer)", weights.num_layers())));
    }
    let dirs = &weights.layers[0];
    match x.device() {
        Device::Cpu => {
            let (y, xp, gh) = cpu::layer_train(x, dirs)?;
            Ok((y, GruSaved { xp, gh }))
        }
        Device::Cuda(_) | Device::Emu => {
            let h = weights.hidden_size();
            let (y, xp) = cuda::layer_xp(x, dirs, None, cuda::default_version(h), 1)?;
            let ghs = dirs
                .iter()
                .enumerate()
                .map(|(di, w)| crate::ops::matmul::linear(&backward::hprev(&y, di, h)?, &w.w_hh, w.b_hh.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            let gh = if ghs.len() == 1 { ghs[0].clone() } else { crate::ops::shape::concat(&ghs.iter().collect::<Vec<_>>(), 2)? };
            Ok((y, GruSaved { xp, gh }))
        }
    }
}

/// Like [`gru`] on a GPU device, forcing recurrence kernel version `v` (1, 2 or 3); benches and tests.
/// On the CPU `v` is ignored.
pub fn gru_version(x: &Tensor, weights: &GruWeights, h0: Option<&Tensor>, bidirectional: bool, v: u32) -> Result<Tensor> {
    Ok(run(x, weights, h0, bidirectional, Some(v), false, 1)?.0)
}

/// `repeat`: the first layer sees every input frame `repeat` times ([`gru_repeat`]).
#[allow(clippy::too_many_arguments)]
fn run(x: &Tensor, w: &GruWeights, h0: Option<&Tensor>, bidirectional: bool, v: Option<u32>, want_hn: bool, repeat: usize) -> Result<(Tensor, Option<Tensor>)> {
    use crate::ops::shape::{concat, slice};
    let (b, t) = check(x, w, h0, bidirectional)?;
    let t = t * repeat;
    let (d, h) = (w.num_directions(), w.hidden_size());
    let dev = x.device();
    let version = v.unwrap_or_else(|| cuda::default_version(h));
    let mut cur = x.clone();
    let mut hn_parts: Vec<Tensor> = Vec::new();
    for (l, dirs) in w.layers.iter().enumerate() {
        let rep = if l == 0 { repeat } else { 1 };
        let h0l = h0.map(|h0| slice(h0, 0, l * d, d)).transpose()?;
        cur = match dev {
            Device::Cpu => cpu::layer(&cur, dirs, h0l.as_ref().map(|t| t.cpu_f32()).transpose()?, rep)?,
            Device::Cuda(_) | Device::Emu => cuda::layer(&cur, dirs, h0l.as_ref(), version, rep)?,
        };
        if want_hn {
            for di in 0..d {
                let part = if t == 0 {
                    match &h0l {
                        Some(h0l) => slice(h0l, 0, di, 1)?,
                        None => Tensor::zeros(&[1, b, h], DType::F32, dev)?,
                    }
                } else {
                    let last = if di == 0 { t - 1 } else { 0 };
                    slice(&slice(&cur, 1, last, 1)?, 2, di * h, h)?.reshape(&[1, b, h])?
                };
                hn_parts.push(part);
            }
        }
    }
    let hn = if want_hn { Some(concat(&hn_parts.iter().collect::<Vec<_>>(), 0)?) } else { None };
    Ok((cur, hn))
}

/// Deterministic random weights (uniform in ±1/√H, as torch's init) on the CPU; tests and benches.
pub fn random_weights(input: usize, hidden: usize, num_layers: usize, bidirectional: bool, seed: u64) -> Result<GruWeights> {
    use crate::testing::rand_vec;
    let d = if bidirectional { 2 } else { 1 };
    let k = 1.0 / (hidden as f32).sqrt();
    let mut s = seed;
    let mut r = |shape: &[usize]| -> Result<Tensor> {
        s += 1;
        Tensor::from_vec(rand_vec(crate::numel(shape), s).iter().map(|v| v * k).collect(), shape)
    };
    let mut layers = Vec::new();
    for l in 0..num_layers {
        let i_l = if l == 0 { input } else { d * hidden };
        let mut dirs = Vec::new();
        for _ in 0..d {
            dirs.push(GruDirWeights {
                w_ih: r(&[3 * hidden, i_l])?,
                w_hh: r(&[3 * hidden, hidden])?,
                b_ih: Some(r(&[3 * hidden])?),
                b_hh: Some(r(&[3 * hidden])?),
            });
        }
        layers.push(dirs);
    }
    GruWeights::new(layers)
}

/// Benchmark cases: the AST-SED local GRU decoder, BiGRU(768 → 384) over 1010 steps (101 patch frames
/// upsampled ×10), batch 1 — CPU, and each recurrence kernel version on CUDA (input projections with
/// the matmul family's default kernel in both). Work = 2 flops per multiply-add of the input
/// projections and the recurrence: D·2·T·B·3H·(I + H).
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{BenchCase, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    if device == Device::Emu {
        return Ok(out); // the emulator is for correctness, not timing
    }
    let (t, i, h, b) = (1010usize, 768usize, 384usize, 1usize);
    let w_cpu = random_weights(i, h, 1, true, 100)?;
    let x_cpu = rand_tensor(&[b, t, i], 7);
    let w = w_cpu.to_device(device)?;
    let x = x_cpu.to_device(device)?;
    let flops = 2.0 * 2.0 * (t * b * 3 * h * (i + h)) as f64;
    let versions: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { vec![Some(1), Some(2), Some(3)] };
    for v in versions {
        let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
        if let Some(be) = &be {
            be.prepare("gru", &format!("gru_fwd_f32_v{}", v.unwrap_or(2)))?;
            be.prepare("matmul", "matmul_fwd_f32_v2")?;
        }
        let check: Option<Box<dyn FnMut() -> Result<()>>> = v.map(|v| {
            let (xc, wc, xg, wg) = (x_cpu.clone(), w_cpu.clone(), x.clone(), w.clone());
            Box::new(move || {
                let want = gru(&xc, &wc, None, true)?.to_vec()?;
                let got = gru_version(&xg, &wg, None, true, v)?.to_vec()?;
                match got.iter().zip(&want).position(|(g, w)| !((g - w).abs() <= 1e-4 + 1e-4 * w.abs())) {
                    Some(i) => Err(Error::Msg(format!("gru {device} v{v}: differs from the CPU at {i}: got {}, want {}", got[i], want[i]))),
                    None => Ok(()),
                }
            }) as Box<dyn FnMut() -> Result<()>>
        });
        let (xr, wr) = (x.clone(), w.clone());
        out.push(BenchCase {
            op: OP,
            case: format!("bi_T{t}_I{i}_H{h}_B{b}"),
            device,
            version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
            dtype: DType::F32,
            work: Work::Flops(flops),
            run: Box::new(move || {
                let _y = match v {
                    None => gru(&xr, &wr, None, true)?,
                    Some(v) => gru_version(&xr, &wr, None, true, v)?,
                };
                if let Some(be) = &be {
                    be.synchronize()?;
                }
                Ok(())
            }),
            check,
        });
    }
    // The backward of the same layer (training: gru_bwd from the saved pre-activations, recurrence
    // kernel + GEMMs). Work: twice the forward's (dx and dW_ih; W_hhᵀ·dgh and dW_hh).
    let (y_cpu, saved_cpu) = gru_train_forward(&x_cpu, &w_cpu, true)?;
    let dy_cpu = rand_tensor(&[b, t, 2 * h], 8);
    let (y, dy) = (y_cpu.to_device(device)?, dy_cpu.to_device(device)?);
    let saved = GruSaved { xp: saved_cpu.xp.to_device(device)?, gh: saved_cpu.gh.to_device(device)? };
    let bwd_versions: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { vec![Some(1), Some(2)] };
    for v in bwd_versions {
        let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
        if let (Some(be), Some(v)) = (&be, v) {
            be.prepare("gru", &format!("gru_bwd_f32_v{v}"))?;
        }
        let check: Option<Box<dyn FnMut() -> Result<()>>> = v.map(|v| {
            let (xc, wc, yc, sc, dyc) = (x_cpu.clone(), w_cpu.clone(), y_cpu.clone(), saved_cpu.clone(), dy_cpu.clone());
            let (xg, wg, yg, sg, dyg) = (x.clone(), w.clone(), y.clone(), saved.clone(), dy.clone());
            Box::new(move || {
                let want = gru_bwd(&xc, &wc, &yc, &sc, &dyc)?;
                let got = gru_bwd_version(&xg, &wg, &yg, &sg, &dyg, Some(v))?;
                crate::bench::check_close(&format!("gru_bwd v{v} dx"), &got.dx.to_vec()?, &want.dx.to_vec()?, 1e-4, 1e-3)?;
                crate::bench::check_close(&format!("gru_bwd v{v} dw_hh"), &got.dirs[1].dw_hh.to_vec()?, &want.dirs[1].dw_hh.to_vec()?, 1e-4, 1e-3)
            }) as Box<dyn FnMut() -> Result<()>>
        });
        let (xr, wr, yr, sr, dyr) = (x.clone(), w.clone(), y.clone(), saved.clone(), dy.clone());
        out.push(BenchCase {
            op: OP,
            case: format!("bwd_bi_T{t}_I{i}_H{h}_B{b}"),
            device,
            version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
            dtype: DType::F32,
            work: Work::Flops(2.0 * flops),
            run: Box::new(move || {
                let _g = gru_bwd_version(&xr, &wr, &yr, &sr, &dyr, v)?;
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
