//! Backward of one GRU layer (autograd, issue #7): backpropagation through time for both directions.
//!
//! The forward of training ([`super::gru_train_forward`]) keeps, besides the output y (B, T, D·H),
//! the pre-activations of every step, both (B, T, D·3H) with direction d at columns d·3H.. and gate
//! rows r | z | n: xp = W_ih·x_t + b_ih and gh = W_hh·h_{t−1} + b_hh ([`GruSaved`]). From them the
//! gates are recomputed elementwise (r = σ(xp_r + gh_r), z = σ(xp_z + gh_z), n = tanh(xp_n + r·gh_n))
//! and h_{t−1} is read from y (zero at a direction's first step; h0 is zero in training).
//!
//! With dh = ∂L/∂h_t (the output gradient of step t plus what flows back from step t+1):
//! ```text
//! dn = dh·(1 − z)            da_n = dn·(1 − n²)         (pre-activation of n)
//! dz = dh·(h_{t−1} − n)      da_z = dz·z·(1 − z)
//! dr = da_n·gh_n             da_r = dr·r·(1 − r)
//! dxp = [da_r, da_z, da_n]   dgh = [da_r, da_z, da_n·r]
//! ∂L/∂h_{t−1} = dh·z + W_hhᵀ·dgh
//! ```
//! 1. The recurrence (sequential over steps; [`gru_bwd_recurrence`]) produces dxp and dgh for every
//!    step. CPU: both directions concurrently (`rayon::join`), W_hhᵀ·dgh as a matrix-vector product
//!    with the transposed W_hh (H × 3H, transposed once per call) by blocks of 4 rows (the forward's
//!    `dot4`), serpentine row order for L2 reuse as in the forward. CUDA (`kernels/cuda/gru.cu`,
//!    persistent, one block per direction and pair of batch elements): `gru_bwd_f32_v1` one thread
//!    per hidden unit, `gru_bwd_f32_v2` float4 weights and the 3H rows split over up to 8 thread
//!    groups (the dispatcher's choice when H % 4 == 0).
//! 2. Everything else is one GEMM over all steps (runtime matmul ops, any device):
//!    dx = dxp·W_ih (both directions stacked: (B·T × D·3H)·(D·3H × I)), dW_ih = dxpᵀ·x,
//!    dW_hh[d] = dgh[d]ᵀ·H_prev[d] (H_prev = y shifted by one step), db_ih / db_hh = column sums.

use super::{GruDirWeights, GruWeights};
use crate::gpu::{backend, Launch};
use crate::ops::matmul::{matmul, matmul_opts, MatmulOpts};
use crate::ops::reduce::sum;
use crate::ops::shape::{concat, slice};
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "gru_bwd";

/// What the backward of one layer needs from its forward: the pre-activations of every step,
/// (B, T, D·3H) each, direction d at columns d·3H.. (gate rows r | z | n).
#[derive(Debug, Clone)]
pub struct GruSaved {
    /// x·W_ihᵀ + b_ih.
    pub xp: Tensor,
    /// W_hh·h_{t−1} + b_hh (the step's own h_{t−1}).
    pub gh: Tensor,
}

/// Gradients of one direction's weights (torch layouts).
#[derive(Debug, Clone)]
pub struct GruDirGrads {
    /// (3H, I).
    pub dw_ih: Tensor,
    /// (3H, H).
    pub dw_hh: Tensor,
    /// (3H) (computed whether or not the layer has biases).
    pub db_ih: Tensor,
    /// (3H).
    pub db_hh: Tensor,
}

/// Gradients of one GRU layer.
#[derive(Debug, Clone)]
pub struct GruGrads {
    /// (B, T, I).
    pub dx: Tensor,
    /// Per direction (0 forward, 1 reverse).
    pub dirs: Vec<GruDirGrads>,
}

/// Shapes of one call: (B, T, I, H, D).
fn dims(x: &Tensor, w: &GruWeights, y: &Tensor, saved: &GruSaved, dy: &Tensor) -> Result<(usize, usize, usize, usize, usize)> {
    if w.num_layers() != 1 {
        return Err(Error::shape(OP, format!("the backward runs one layer at a time; the weights have {} layers", w.num_layers())));
    }
    for t in [x, y, dy, &saved.xp, &saved.gh] {
        expect_dtype(OP, t, DType::F32)?;
    }
    let (d, h) = (w.num_directions(), w.hidden_size());
    if x.rank() != 3 || x.shape()[2] != w.input_size() {
        return Err(Error::shape(OP, format!("x has shape {:?}, expected (B, T, {})", x.shape(), w.input_size())));
    }
    let (b, t, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let want = |name: &str, tt: &Tensor, s: [usize; 3]| -> Result<()> {
        if tt.shape() != s {
            return Err(Error::shape(OP, format!("{name} has shape {:?}, expected {s:?} (B, T, H = {b}, {t}, {h}, {d} direction(s))", tt.shape())));
        }
        Ok(())
    };
    want("y", y, [b, t, d * h])?;
    want("dy", dy, [b, t, d * h])?;
    want("saved xp", &saved.xp, [b, t, d * 3 * h])?;
    want("saved gh", &saved.gh, [b, t, d * 3 * h])?;
    same_device(OP, &[x, y, dy, &saved.xp, &saved.gh, &w.layers[0][0].w_hh])?;
    Ok((b, t, i, h, d))
}

/// Gradients of one (bi)GRU layer with zero h0: `x` (B, T, I) its input, `y` (B, T, D·H) and
/// `saved` from [`super::gru_train_forward`], `dy` = ∂L/∂y.
pub fn gru_bwd(x: &Tensor, weights: &GruWeights, y: &Tensor, saved: &GruSaved, dy: &Tensor) -> Result<GruGrads> {
    gru_bwd_version(x, weights, y, saved, dy, None)
}

/// [`gru_bwd`] forcing recurrence kernel version `v` (1 or 2) on a GPU device (`None`: the
/// dispatcher, [`bwd_default_version`]); ignored on the CPU. Tests and benches.
pub fn gru_bwd_version(x: &Tensor, weights: &GruWeights, y: &Tensor, saved: &GruSaved, dy: &Tensor, version: Option<u32>) -> Result<GruGrads> {
    let (b, t, i, h, d) = dims(x, weights, y, saved, dy)?;
    let dirs = &weights.layers[0];
    let g3 = 3 * h;
    let dev = x.device();
    if b * t == 0 {
        let z = |s: &[usize]| Tensor::zeros(s, DType::F32, dev);
        let grads =
            (0..d).map(|_| Ok(GruDirGrads { dw_ih: z(&[g3, i])?, dw_hh: z(&[g3, h])?, db_ih: z(&[g3])?, db_hh: z(&[g3])? })).collect::<Result<Vec<_>>>()?;
        return Ok(GruGrads { dx: z(&[b, t, i])?, dirs: grads });
    }
    let (dxp, dgh) = gru_bwd_recurrence_version(weights, y, saved, dy, version)?;
    let dxp2 = dxp.reshape(&[b * t, d * g3])?;
    let dgh2 = dgh.reshape(&[b * t, d * g3])?;
    let x2 = x.reshape(&[b * t, i])?;
    let w_ih = if d == 1 { dirs[0].w_ih.clone() } else { concat(&dirs.iter().map(|w| &w.w_ih).collect::<Vec<_>>(), 0)? };
    let dx = matmul(&dxp2, &w_ih)?.reshape(&[b, t, i])?;
    let ta = MatmulOpts { trans_a: true, ..Default::default() };
    let dw_ih = matmul_opts(&dxp2, &x2, &ta)?;
    let db_ih = sum(&dxp2, 0, false)?;
    let db_hh = sum(&dgh2, 0, false)?;
    let mut grads = Vec::with_capacity(d);
    for di in 0..d {
        let hp = hprev(y, di, h)?.reshape(&[b * t, h])?;
        let dghd = if d == 1 { dgh2.clone() } else { slice(&dgh2, 1, di * g3, g3)? };
        let pick = |tt: &Tensor| if d == 1 { Ok(tt.clone()) } else { slice(tt, 0, di * g3, g3) };
        grads.push(GruDirGrads { dw_ih: pick(&dw_ih)?, dw_hh: matmul_opts(&dghd, &hp, &ta)?, db_ih: pick(&db_ih)?, db_hh: pick(&db_hh)? });
    }
    Ok(GruGrads { dx, dirs: grads })
}

/// h_{t−1} of direction `di` for every step, (B, T, H): y's columns di·H.. shifted by one step
/// (towards later t for the forward direction, earlier t for the reverse one), zero at the first step.
pub(super) fn hprev(y: &Tensor, di: usize, h: usize) -> Result<Tensor> {
    let (b, t, dh) = (y.shape()[0], y.shape()[1], y.shape()[2]);
    let yd = if dh == h { y.clone() } else { slice(y, 2, di * h, h)? };
    let zero = Tensor::zeros(&[b, 1, h], DType::F32, y.device())?;
    if t <= 1 {
        return Tensor::zeros(&[b, t, h], DType::F32, y.device());
    }
    if di == 0 {
        concat(&[&zero, &slice(&yd, 1, 0, t - 1)?], 1)
    } else {
        concat(&[&slice(&yd, 1, 1, t - 1)?, &zero], 1)
    }
}

/// The sequential part of [`gru_bwd`]: (dxp, dgh), both (B, T, D·3H) — the gradients of the
/// pre-activations xp and gh of every step (see the module doc).
pub fn gru_bwd_recurrence(weights: &GruWeights, y: &Tensor, saved: &GruSaved, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    gru_bwd_recurrence_version(weights, y, saved, dy, None)
}

/// [`gru_bwd_recurrence`] forcing kernel version `v` on a GPU device (ignored on the CPU).
pub fn gru_bwd_recurrence_version(weights: &GruWeights, y: &Tensor, saved: &GruSaved, dy: &Tensor, version: Option<u32>) -> Result<(Tensor, Tensor)> {
    let (d, h) = (weights.num_directions(), weights.hidden_size());
    if y.rank() != 3 || y.shape()[2] != d * h {
        return Err(Error::shape(OP, format!("y has shape {:?}, expected (B, T, {})", y.shape(), d * h)));
    }
    let (b, t) = (y.shape()[0], y.shape()[1]);
    for (n, tt, w) in [("dy", dy, d * h), ("saved xp", &saved.xp, d * 3 * h), ("saved gh", &saved.gh, d * 3 * h)] {
        expect_dtype(OP, tt, DType::F32)?;
        if tt.shape() != [b, t, w] {
            return Err(Error::shape(OP, format!("{n} has shape {:?}, expected {:?}", tt.shape(), [b, t, w])));
        }
    }
    let dirs = &weights.layers[0];
    match same_device(OP, &[y, dy, &saved.xp, &saved.gh, &dirs[0].w_hh])? {
        Device::Cpu => {
            let whh_t = dirs.iter().map(|w| crate::ops::shape::transpose(&w.w_hh, 0, 1)).collect::<Result<Vec<_>>>()?;
            let whh_t = whh_t.iter().map(|w| w.cpu_f32()).collect::<Result<Vec<_>>>()?;
            let (dxp, dgh) = cpu_recurrence(saved.xp.cpu_f32()?, saved.gh.cpu_f32()?, y.cpu_f32()?, dy.cpu_f32()?, &whh_t, b, t, h);
            let s = [b, t, d * 3 * h];
            Ok((Tensor::from_vec(dxp, &s)?, Tensor::from_vec(dgh, &s)?))
        }
        Device::Cuda(_) | Device::Emu => cuda_recurrence(dirs, y, saved, dy, b, t, h, version.unwrap_or_else(|| bwd_default_version(b, h))),
    }
}

#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only for the disjoint column ranges of the two directions (see `cpu_recurrence`).
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

/// CPU recurrence: direction di owns columns di·3H.. of dxp and dgh.
#[allow(clippy::too_many_arguments)]
fn cpu_recurrence(xp: &[f32], gh: &[f32], y: &[f32], dy: &[f32], whh_t: &[&[f32]], b: usize, t: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let d = whh_t.len();
    let g3 = 3 * h;
    let mut dxp = vec![0f32; b * t * d * g3];
    let mut dgh = vec![0f32; b * t * d * g3];
    let (px, pg) = (SyncPtr(dxp.as_mut_ptr()), SyncPtr(dgh.as_mut_ptr()));
    let run = |di: usize| {
        let (px, pg) = (px, pg);
        let reverse = di == 1;
        let (yrow, grow) = (d * h, d * g3);
        let mut dh = vec![0f32; b * h];
        let mut dgv = vec![0f32; b * g3];
        let mut acc = vec![0f32; b * h];
        for s in 0..t {
            // Steps in reverse processing order.
            let tt = if reverse { s } else { t - 1 - s };
            let prev = if reverse { (tt + 1 < t).then_some(tt + 1) } else { tt.checked_sub(1) };
            for bi in 0..b {
                let row = bi * t + tt;
                let xr = &xp[row * grow + di * g3..][..g3];
                let gr = &gh[row * grow + di * g3..][..g3];
                let dyr = &dy[row * yrow + di * h..][..h];
                let hp = prev.map(|p| &y[(bi * t + p) * yrow + di * h..][..h]);
                let dhb = &mut dh[bi * h..(bi + 1) * h];
                let dg = &mut dgv[bi * g3..(bi + 1) * g3];
                // SAFETY: row `row` < B·T, columns di·3H .. (di+1)·3H < D·3H: this direction's own
                // range of dxp (see `run`'s caller), written by no other thread.
                let dxr = unsafe { std::slice::from_raw_parts_mut(px.0.add(row * grow + di * g3), g3) };
                for j in 0..h {
                    let dhj = dhb[j] + dyr[j];
                    let r = super::cpu::sigmoid(xr[j] + gr[j]);
                    let z = super::cpu::sigmoid(xr[h + j] + gr[h + j]);
                    let n = (xr[2 * h + j] + r * gr[2 * h + j]).tanh();
                    let hpj = hp.map_or(0.0, |v| v[j]);
                    let da_n = dhj * (1.0 - z) * (1.0 - n * n);
                    let da_z = dhj * (hpj - n) * z * (1.0 - z);
                    let da_r = da_n * gr[2 * h + j] * r * (1.0 - r);
                    dxr[j] = da_r;
                    dxr[h + j] = da_z;
                    dxr[2 * h + j] = da_n;
                    dg[j] = da_r;
                    dg[h + j] = da_z;
                    dg[2 * h + j] = da_n * r;
                    dhb[j] = dhj * z;
                }
                // SAFETY: as above, for dgh.
                unsafe { std::ptr::copy_nonoverlapping(dg.as_ptr(), pg.0.add(row * grow + di * g3), g3) };
            }
            if s + 1 < t {
                // dh ← dh·z + W_hhᵀ·dgh (the gradient of h_{t−1}).
                matvec_rows(whh_t[di], &dgv, &mut acc, b, h, g3, s % 2 == 1);
                dh.iter_mut().zip(&acc).for_each(|(a, &v)| *a += v);
            }
        }
    };
    if d == 2 {
        rayon::join(|| run(0), || run(1));
    } else {
        run(0);
    }
    (dxp, dgh)
}

/// out[b, r] = Σ_k w[r, k]·xs[b, k] for the `rows` rows of w (rows × k, row-major), by blocks of
/// 4 rows (each block loaded once for all b), in reverse block order when `backwards`.
fn matvec_rows(w: &[f32], xs: &[f32], out: &mut [f32], b: usize, rows: usize, k: usize, backwards: bool) {
    let blocks = rows.div_ceil(4);
    let mut one = |blk: usize| {
        let r0 = blk * 4;
        let nr = (rows - r0).min(4);
        for bi in 0..b {
            let x = &xs[bi * k..(bi + 1) * k];
            let s = if nr == 4 { super::cpu::dot4(&w[r0 * k..(r0 + 4) * k], x, k) } else { super::cpu::dot_tail(&w[r0 * k..(r0 + nr) * k], x, k, nr) };
            out[bi * rows + r0..bi * rows + r0 + nr].copy_from_slice(&s[..nr]);
        }
    };
    if backwards {
        (0..blocks).rev().for_each(&mut one);
    } else {
        (0..blocks).for_each(&mut one);
    }
}

/// Batch elements per block of the backward kernels (`GRU_BPB` in gru.cu).
const BWD_BPB: usize = 2;

/// `gru_bwd_f32_v2`'s split count S and dynamic shared memory bytes for H and nb = min(B, 2): the
/// largest S ≤ 8 with S·HQ ≤ 1024 threads (HQ = round_up(H/4, 32)), S·HQ ≥ H (threads tid < H run the
/// gates) and (nb·3H + S·nb·H)·4 ≤ 48 KiB. None when H % 4 ≠ 0 or nothing fits.
pub fn bwd_v2_config(h: usize, nb: usize) -> Option<(usize, usize)> {
    if h % 4 != 0 || h == 0 {
        return None;
    }
    let hq = (h / 4).div_ceil(32) * 32;
    let smem = |s: usize| (nb * 3 * h + s * nb * h) * 4;
    (1..=8usize).rev().find(|&s| s * hq <= 1024 && s * hq >= h && smem(s) <= 48 * 1024).map(|s| (s, smem(s)))
}

/// The backward recurrence kernel the dispatcher picks: v2 (split rows, float4 weights) when it has
/// a configuration for H, else v1. v2's choice is by analogy with the forward (v3 over v2: 3× on an
/// H100); the backward kernels have not been timed on a GPU yet.
pub fn bwd_default_version(b: usize, h: usize) -> u32 {
    if bwd_v2_config(h, b.clamp(1, BWD_BPB)).is_some() {
        2
    } else {
        1
    }
}

#[allow(clippy::too_many_arguments)]
fn cuda_recurrence(dirs: &[GruDirWeights], y: &Tensor, saved: &GruSaved, dy: &Tensor, b: usize, t: usize, h: usize, version: u32) -> Result<(Tensor, Tensor)> {
    let kernel = format!("gru_bwd_f32_v{version}");
    let d = dirs.len();
    let dev = y.device();
    let n = b * t * d * 3 * h;
    let err = |msg: String| Error::Launch { op: OP, kernel: kernel.clone(), msg };
    if n > i32::MAX as usize || d * 3 * h * h > i32::MAX as usize {
        return Err(err(format!("sizes B={b} T={t} H={h} exceed the kernel's i32 indexing")));
    }
    let nb = b.clamp(1, BWD_BPB);
    let (threads, splits, smem) = match version {
        1 => {
            if h > super::cuda::V2_MAX_HIDDEN {
                return Err(err(format!("one thread per hidden unit: H = {h} > {}", super::cuda::V2_MAX_HIDDEN)));
            }
            (h.div_ceil(32) * 32, 1, BWD_BPB * 3 * h * 4)
        }
        2 => {
            let (s, smem) = bwd_v2_config(h, nb)
                .ok_or_else(|| err(format!("no configuration for H = {h} (needs H % 4 == 0, ≤ 1024 threads and ≤ 48 KiB of shared memory)")))?;
            (s * (h / 4).div_ceil(32) * 32, s, smem)
        }
        _ => return Err(err("no such version (1 or 2)".into())),
    };
    let be = backend(dev)?;
    let dxp = be.alloc(n * 4)?;
    let dgh = be.alloc(n * 4)?;
    let shape = [b, t, d * 3 * h];
    if n > 0 {
        let whh = if d == 1 { dirs[0].w_hh.clone() } else { concat(&dirs.iter().map(|w| &w.w_hh).collect::<Vec<_>>(), 0)? };
        let p =
            super::cuda::GruParams { batch: b as i32, steps: t as i32, hidden: h as i32, dirs: d as i32, has_h0: 0, step: 0, splits: splits as i32, pad1: 0 };
        Launch::new(OP, "gru", kernel)
            .grid(d as u32, b.div_ceil(BWD_BPB) as u32, 1)
            .block(threads as u32, 1, 1)
            .smem(smem as u32)
            .buf(saved.xp.gpu_buf()?)
            .buf(saved.gh.gpu_buf()?)
            .buf(whh.gpu_buf()?)
            .buf(y.gpu_buf()?)
            .buf(dy.gpu_buf()?)
            .buf(&dxp)
            .buf(&dgh)
            .param(&p)
            .run(&be)?;
    }
    Ok((Tensor::from_gpu(dxp, &shape, DType::F32, dev), Tensor::from_gpu(dgh, &shape, DType::F32, dev)))
}
