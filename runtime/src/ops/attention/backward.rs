//! Backward of scaled dot-product attention (autograd, issue #7), recompute-based as flash-attention:
//! nothing but the output O is kept from the forward. Per (sequence, head), with P = softmax(scale·Q·Kᵀ)
//! recomputed from Q and K:
//! ```text
//! dV = Pᵀ·dO      dP = dO·Vᵀ      D_i = Σ_d dO[i, d]·O[i, d]  (= Σ_j P_ij·dP_ij)
//! dS = P ⊙ (dP − D)               dQ = scale·dS·K              dK = scale·dSᵀ·Q
//! ```
//! Gradients come back in the inputs' layout: for the packed [`attention_qkv_bwd`] one (B, S, 3·H·Dh)
//! tensor [dQ | dK | dV].
//!
//! CPU: rayon over (sequence, head). Short sequences (S ≤ 32, AST-SED's 13-token frequency-wise
//! attention) directly (dot products and AXPYs, everything in a few KB); longer ones by blocks of 128
//! query rows with `gemm` on strided views (scores, dP, dQ per block; dK and dV accumulated over the
//! blocks), 2·128·S floats of scratch per task.
//!
//! GPU devices (`kernels/cuda/attention.cu`): `attention_bwd_f32_v1` for short sequences (one block
//! per (sequence, head), everything in shared memory); v2 for longer ones with Dh ≤ 64, flash style
//! in two deterministic kernels (`attention_dq_bwd_f32_v2`: each query row's log-sum-exp and D, then
//! dQ; `attention_dkv_bwd_f32_v2`: dK, dV per key row), no S² memory; larger head dims are composed
//! from the runtime's matmul and softmax-backward kernels on (B·H, S, Dh) copies, which materialises
//! P and dP (B·H·S² floats each). The kernels are verified under the emulator; not yet timed on a GPU.

use gemm::Parallelism;
use rayon::prelude::*;

use super::cuda::AttnParams;
use super::{check_f32, layout_heads, layout_qkv, Layout};
use crate::gpu::{backend, Launch};
use crate::ops::matmul::{matmul, matmul_opts, MatmulOpts};
use crate::ops::shape::{concat, permute, slice};
use crate::{DType, Device, Error, Result, Tensor};

const OP: &str = "attention_bwd";
const QBLOCK: usize = 128;
const SHORT: usize = 32;

/// Shared memory (bytes) of `attention_bwd_f32_v1`: Q, K, V, dO tiles (pitch Dh+1), P and dS
/// (pitch S+1), and D.
pub fn bwd_v1_smem_bytes(seq: usize, dh: usize) -> usize {
    4 * (4 * seq * (dh + 1) + 2 * seq * (seq + 1) + seq)
}

/// Whether the short-sequence kernel takes a call of this size.
pub fn bwd_v1_fits(seq: usize, dh: usize) -> bool {
    seq <= SHORT && bwd_v1_smem_bytes(seq, dh) <= 48 * 1024
}

/// Gradient of [`super::attention_qkv`]: `qkv` (B, S, 3·H·Dh) its input, `out` (B, S, H·Dh) its
/// output, `dout` = ∂L/∂out. Returns ∂L/∂qkv (B, S, 3·H·Dh) = [dQ | dK | dV].
pub fn attention_qkv_bwd(qkv: &Tensor, out: &Tensor, dout: &Tensor, heads: usize, scale: f32) -> Result<Tensor> {
    attention_qkv_bwd_version(qkv, out, dout, heads, scale, None)
}

/// [`attention_qkv_bwd`] choosing the GPU path: `Some(1)` the kernel `attention_bwd_f32_v1` (short
/// sequences only), `Some(2)` the flash-style kernels (Dh ≤ 64), `Some(0)` the composed
/// matmul/softmax path, `None` the dispatcher ([`bwd_default_version`]). Tests, benches.
pub fn attention_qkv_bwd_version(qkv: &Tensor, out: &Tensor, dout: &Tensor, heads: usize, scale: f32, version: Option<u32>) -> Result<Tensor> {
    check_f32(&[qkv, out, dout])?;
    let l = layout_qkv(qkv, heads)?;
    check_out(&l, out, dout)?;
    match qkv.device() {
        Device::Cpu => {
            let mut g = vec![0f32; qkv.numel()];
            let p = OutPtr(g.as_mut_ptr());
            cpu(qkv.cpu_f32()?, qkv.cpu_f32()?, qkv.cpu_f32()?, out.cpu_f32()?, dout.cpu_f32()?, &l, scale, [p, p, p]);
            Tensor::from_vec(g, qkv.shape())
        }
        Device::Cuda(_) | Device::Emu => {
            let ver = choose(&l, version)?;
            if ver > 0 {
                let be = backend(qkv.device())?;
                let g = be.alloc(qkv.numel() * 4)?;
                launch(ver, qkv, qkv, qkv, out, dout, [&g, &g, &g], &l, scale)?;
                Ok(Tensor::from_gpu(g, qkv.shape(), DType::F32, qkv.device()))
            } else {
                let w = l.heads * l.dh;
                let (q, k, v) = (slice(qkv, 2, 0, w)?, slice(qkv, 2, w, w)?, slice(qkv, 2, 2 * w, w)?);
                let (dq, dk, dv) = composed(&q, &k, &v, dout, &l, scale)?;
                concat(&[&dq, &dk, &dv], 2)
            }
        }
    }
}

/// Gradient of [`super::attention_heads`]: q, k, v, out, dout (B, S, H·Dh). Returns (dQ, dK, dV).
pub fn attention_heads_bwd(q: &Tensor, k: &Tensor, v: &Tensor, out: &Tensor, dout: &Tensor, heads: usize, scale: f32) -> Result<(Tensor, Tensor, Tensor)> {
    check_f32(&[q, k, v, out, dout])?;
    let l = layout_heads(q, k, v, heads)?;
    check_out(&l, out, dout)?;
    match q.device() {
        Device::Cpu => {
            let (mut dq, mut dk, mut dv) = (vec![0f32; q.numel()], vec![0f32; q.numel()], vec![0f32; q.numel()]);
            let ptrs = [OutPtr(dq.as_mut_ptr()), OutPtr(dk.as_mut_ptr()), OutPtr(dv.as_mut_ptr())];
            cpu(q.cpu_f32()?, k.cpu_f32()?, v.cpu_f32()?, out.cpu_f32()?, dout.cpu_f32()?, &l, scale, ptrs);
            Ok((Tensor::from_vec(dq, q.shape())?, Tensor::from_vec(dk, q.shape())?, Tensor::from_vec(dv, q.shape())?))
        }
        Device::Cuda(_) | Device::Emu => {
            let ver = choose(&l, None)?;
            if ver > 0 {
                let be = backend(q.device())?;
                let (dq, dk, dv) = (be.alloc(q.numel() * 4)?, be.alloc(q.numel() * 4)?, be.alloc(q.numel() * 4)?);
                launch(ver, q, k, v, out, dout, [&dq, &dk, &dv], &l, scale)?;
                let t = |b| Tensor::from_gpu(b, q.shape(), DType::F32, q.device());
                Ok((t(dq), t(dk), t(dv)))
            } else {
                composed(q, k, v, dout, &l, scale)
            }
        }
    }
}

fn check_out(l: &Layout, out: &Tensor, dout: &Tensor) -> Result<()> {
    let want = [l.batch, l.seq, l.heads * l.dh];
    if out.shape() != want || dout.shape() != want {
        return Err(Error::shape(OP, format!("out {:?} and dout {:?} must be {want:?} (B, S, H·Dh)", out.shape(), dout.shape())));
    }
    Ok(())
}

/// Largest head dim of the flash-style backward kernels (v2).
pub const BWD_V2_MAX_DH: usize = 64;

/// Largest S×S score matrix (bytes, all sequences·heads together) for which the dispatcher prefers
/// the composed path on long sequences.
pub const BWD_COMPOSED_MAX_BYTES: usize = 256 << 20;

/// The GPU path the dispatcher picks for `units` sequences·heads: 1 (`attention_bwd_f32_v1`) for
/// short sequences that fit its shared memory; else 0 (composed from matmul and softmax_bwd) while
/// the S×S scores of all units fit in [`BWD_COMPOSED_MAX_BYTES`]; else 2 (the flash-style
/// `attention_{dq,dkv}_bwd_f32_v2`, no S² memory) for head dims ≤ 64; else 0.
///
/// Measured on an H100 (`aural bench --op attention`, AST's 12 heads × 1214 tokens × 64, one clip):
/// composed 1.215 ms, flash-style v2 2.294 ms — the composed path's GEMMs win while its 71 MB of
/// scores are affordable; v2 takes over for large batches, where the S² buffers would not be.
pub fn bwd_default_version(seq: usize, dh: usize, units: usize) -> u32 {
    if bwd_v1_fits(seq, dh) {
        1
    } else if units.saturating_mul(seq).saturating_mul(seq).saturating_mul(4) <= BWD_COMPOSED_MAX_BYTES || dh > BWD_V2_MAX_DH {
        0
    } else {
        2
    }
}

fn choose(l: &Layout, version: Option<u32>) -> Result<u32> {
    let err = |v: u32, msg: String| Err(Error::Launch { op: OP, kernel: format!("attention_bwd_f32_v{v}"), msg });
    match version {
        None => Ok(bwd_default_version(l.seq, l.dh, l.units())),
        Some(0) => Ok(0),
        Some(1) if bwd_v1_fits(l.seq, l.dh) => Ok(1),
        Some(1) => {
            err(1, format!("sequence {} × head dim {} needs S ≤ {SHORT} and {} ≤ 49152 bytes of shared memory", l.seq, l.dh, bwd_v1_smem_bytes(l.seq, l.dh)))
        }
        Some(2) if l.dh <= BWD_V2_MAX_DH => Ok(2),
        Some(2) => err(2, format!("head dim {} > {BWD_V2_MAX_DH}", l.dh)),
        Some(v) => err(v, "no such version (0 = composed, 1, 2)".into()),
    }
}

// ------------------------------------------------------------------------------------------------
// CPU

/// An output buffer shared by tasks that write disjoint (sequence, head) ranges of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes only the elements of its own (sequence, head) unit.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// q, k, v and the gradients [dq, dk, dv] in the input layout of `l` (dq at q_off, dk at k_off, dv
/// at v_off — for the packed layout all three point at one buffer); o, dout in the output layout.
#[allow(clippy::too_many_arguments)]
fn cpu(q: &[f32], k: &[f32], v: &[f32], o: &[f32], dout: &[f32], l: &Layout, scale: f32, g: [OutPtr; 3]) {
    if l.out_len() == 0 || l.dh == 0 {
        return;
    }
    let last_in = (l.batch - 1) * l.in_batch + (l.seq - 1) * l.in_row + (l.heads - 1) * l.in_head + l.dh;
    assert!(q.len() >= l.q_off + last_in && k.len() >= l.k_off + last_in && v.len() >= l.v_off + last_in, "attention_bwd: layout exceeds the inputs");
    let last_out = (l.batch - 1) * l.out_batch + (l.seq - 1) * l.out_row + (l.heads - 1) * l.out_head + l.dh;
    assert!(o.len() >= last_out && dout.len() >= last_out, "attention_bwd: layout exceeds the output");
    if l.seq <= SHORT {
        (0..l.units()).into_par_iter().for_each(|u| {
            #[allow(clippy::redundant_locals)]
            let g = g;
            short_unit(q, k, v, o, dout, l, scale, g, u)
        });
    } else {
        (0..l.units()).into_par_iter().for_each_init(
            || (vec![0f32; QBLOCK * l.seq], vec![0f32; QBLOCK * l.seq]),
            |(sc, dp), u| {
                #[allow(clippy::redundant_locals)]
                let g = g;
                long_unit(q, k, v, o, dout, l, scale, g, u, sc, dp)
            },
        );
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let s: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    s + acc.iter().sum::<f32>()
}

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(a, &b)| *a += alpha * b);
}

/// One (sequence, head) with S ≤ 32.
#[allow(clippy::too_many_arguments)]
fn short_unit(q: &[f32], k: &[f32], v: &[f32], o: &[f32], dout: &[f32], l: &Layout, scale: f32, g: [OutPtr; 3], u: usize) {
    let (s, dh) = (l.seq, l.dh);
    let (ib, ob) = l.unit_bases(u);
    fn at(t: &[f32], off: usize, i: usize, stride: usize, dh: usize) -> &[f32] {
        &t[off + i * stride..][..dh]
    }
    let (qo, ko, vo) = (l.q_off + ib, l.k_off + ib, l.v_off + ib);
    let mut p = [0f32; SHORT * SHORT];
    let mut ds = [0f32; SHORT * SHORT];
    for i in 0..s {
        let qi = at(q, qo, i, l.in_row, dh);
        let pr = &mut p[i * s..(i + 1) * s];
        for (j, pj) in pr.iter_mut().enumerate() {
            *pj = scale * dot(qi, at(k, ko, j, l.in_row, dh));
        }
        let inv = 1.0 / super::cpu::softmax_unnormalised(pr);
        pr.iter_mut().for_each(|x| *x *= inv);
        let doi = at(dout, ob, i, l.out_row, dh);
        let di = dot(doi, at(o, ob, i, l.out_row, dh));
        for j in 0..s {
            ds[i * s + j] = pr[j] * (dot(doi, at(v, vo, j, l.in_row, dh)) - di);
        }
    }
    // SAFETY: rows (b, ·, h) of dq/dk/dv belong to this unit only; `cpu` checked the bounds.
    let grow = |which: usize, off: usize, i: usize| -> &mut [f32] { unsafe { std::slice::from_raw_parts_mut(g[which].0.add(off + ib + i * l.in_row), dh) } };
    for i in 0..s {
        let dq = grow(0, l.q_off, i);
        dq.iter_mut().for_each(|x| *x = 0.0);
        for j in 0..s {
            axpy(scale * ds[i * s + j], at(k, ko, j, l.in_row, dh), dq);
        }
    }
    for j in 0..s {
        let dk = grow(1, l.k_off, j);
        dk.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..s {
            axpy(scale * ds[i * s + j], at(q, qo, i, l.in_row, dh), dk);
        }
        let dv = grow(2, l.v_off, j);
        dv.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..s {
            axpy(p[i * s + j], at(dout, ob, i, l.out_row, dh), dv);
        }
    }
}

/// One (sequence, head) of a long sequence, by blocks of QBLOCK query rows.
#[allow(clippy::too_many_arguments)]
fn long_unit(q: &[f32], k: &[f32], v: &[f32], o: &[f32], dout: &[f32], l: &Layout, scale: f32, g: [OutPtr; 3], u: usize, sc: &mut [f32], dp: &mut [f32]) {
    let (s, dh) = (l.seq, l.dh);
    let (ib, ob) = l.unit_bases(u);
    let (in_row, out_row, ss) = (l.in_row as isize, l.out_row as isize, s as isize);
    let kp = k[l.k_off + ib..].as_ptr();
    let vp = v[l.v_off + ib..].as_ptr();
    // SAFETY (all gemm calls): `cpu` checked that every (unit, row, d) index of the layout is inside
    // q, k, v, o, dout and the gradients; sc and dp hold QBLOCK·S floats; this task alone writes
    // unit u's rows of dq, dk, dv (zero-initialised by the caller: dK, dV accumulate).
    let (dqp, dkp, dvp) = unsafe { (g[0].0.add(l.q_off + ib), g[1].0.add(l.k_off + ib), g[2].0.add(l.v_off + ib)) };
    for i0 in (0..s).step_by(QBLOCK) {
        let rows = QBLOCK.min(s - i0);
        let qp = q[l.q_off + ib + i0 * l.in_row..].as_ptr();
        let dop = dout[ob + i0 * l.out_row..].as_ptr();
        unsafe {
            // sc = scale·Q_blk·Kᵀ, dp = dO_blk·Vᵀ (rows × S).
            gemm::gemm(rows, s, dh, sc.as_mut_ptr(), 1, ss, false, qp, 1, in_row, kp, in_row, 1, 0.0f32, scale, false, false, false, Parallelism::None);
            gemm::gemm(rows, s, dh, dp.as_mut_ptr(), 1, ss, false, dop, 1, out_row, vp, in_row, 1, 0.0f32, 1.0f32, false, false, false, Parallelism::None);
        }
        for r in 0..rows {
            let pr = &mut sc[r * s..(r + 1) * s];
            let inv = 1.0 / super::cpu::softmax_unnormalised(pr);
            pr.iter_mut().for_each(|x| *x *= inv);
            let i = i0 + r;
            let di = dot(&dout[ob + i * l.out_row..][..dh], &o[ob + i * l.out_row..][..dh]);
            dp[r * s..(r + 1) * s].iter_mut().zip(pr.iter()).for_each(|(d, &p)| *d = p * (*d - di));
        }
        unsafe {
            // dQ_blk = scale·dS·K; dK += scale·dSᵀ·Q_blk; dV += Pᵀ·dO_blk.
            gemm::gemm(
                rows,
                dh,
                s,
                dqp.add(i0 * l.in_row),
                1,
                in_row,
                false,
                dp.as_ptr(),
                1,
                ss,
                kp,
                1,
                in_row,
                0.0f32,
                scale,
                false,
                false,
                false,
                Parallelism::None,
            );
            gemm::gemm(s, dh, rows, dkp, 1, in_row, true, dp.as_ptr(), ss, 1, qp, 1, in_row, 1.0f32, scale, false, false, false, Parallelism::None);
            gemm::gemm(s, dh, rows, dvp, 1, in_row, true, sc.as_ptr(), ss, 1, dop, 1, out_row, 1.0f32, 1.0f32, false, false, false, Parallelism::None);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// GPU devices

/// Runs backward kernel version `ver` (1 or 2); the gradients [dq, dk, dv] are written in the
/// inputs' layout (for the packed layout, one buffer passed three times).
#[allow(clippy::too_many_arguments)]
fn launch(ver: u32, q: &Tensor, k: &Tensor, v: &Tensor, o: &Tensor, dout: &Tensor, g: [&crate::gpu::GpuBuffer; 3], l: &Layout, scale: f32) -> Result<()> {
    let kernel = format!("attention_bwd_f32_v{ver}");
    let big = [q.numel(), k.numel(), v.numel(), l.out_len(), 2 * l.units() * l.seq].into_iter().max().unwrap_or(0);
    if big > i32::MAX as usize || l.units() > i32::MAX as usize {
        return Err(Error::Launch { op: OP, kernel, msg: format!("{big} elements exceed the kernel's i32 indexing") });
    }
    if ver == 2 && l.units() > 65535 {
        return Err(Error::Launch { op: OP, kernel, msg: format!("{} sequence·heads exceed grid.y 65535", l.units()) });
    }
    if l.out_len() == 0 {
        return Ok(());
    }
    let be = backend(q.device())?;
    let p = AttnParams::new(l, scale);
    if ver == 1 {
        return Launch::new(OP, "attention", kernel)
            .grid(l.units() as u32, 1, 1)
            .block(128, 1, 1)
            .smem(bwd_v1_smem_bytes(l.seq, l.dh) as u32)
            .buf(q.gpu_buf()?)
            .buf(k.gpu_buf()?)
            .buf(v.gpu_buf()?)
            .buf(o.gpu_buf()?)
            .buf(dout.gpu_buf()?)
            .buf(g[0])
            .buf(g[1])
            .buf(g[2])
            .param(&p)
            .run(&be);
    }
    // v2: the dQ kernel (which also leaves each query row's lse and D in `stats`), then dK, dV.
    let stats = be.alloc(2 * l.units() * l.seq * 4)?;
    let grid = (l.seq.div_ceil(64) as u32, l.units() as u32);
    Launch::new(OP, "attention", "attention_dq_bwd_f32_v2")
        .grid(grid.0, grid.1, 1)
        .block(64, 1, 1)
        .buf(q.gpu_buf()?)
        .buf(k.gpu_buf()?)
        .buf(v.gpu_buf()?)
        .buf(o.gpu_buf()?)
        .buf(dout.gpu_buf()?)
        .buf(g[0])
        .buf(&stats)
        .param(&p)
        .run(&be)?;
    Launch::new(OP, "attention", "attention_dkv_bwd_f32_v2")
        .grid(grid.0, grid.1, 1)
        .block(64, 1, 1)
        .buf(q.gpu_buf()?)
        .buf(k.gpu_buf()?)
        .buf(v.gpu_buf()?)
        .buf(dout.gpu_buf()?)
        .buf(&stats)
        .buf(g[1])
        .buf(g[2])
        .param(&p)
        .run(&be)
}

/// The backward composed from runtime ops on (B·H, S, Dh) copies (any device, any length):
/// q, k, v, dout (B, S, H·Dh) → (dQ, dK, dV) (B, S, H·Dh).
fn composed(q: &Tensor, k: &Tensor, v: &Tensor, dout: &Tensor, l: &Layout, scale: f32) -> Result<(Tensor, Tensor, Tensor)> {
    use crate::ops::softmax::{softmax, softmax_bwd};
    use crate::ops::unary::affine;
    let (b, s, nh, dh) = (l.batch, l.seq, l.heads, l.dh);
    let split = |t: &Tensor| -> Result<Tensor> { permute(&t.reshape(&[b, s, nh, dh])?, &[0, 2, 1, 3])?.reshape(&[b * nh, s, dh]) };
    let merge = |t: &Tensor| -> Result<Tensor> { permute(&t.reshape(&[b, nh, s, dh])?, &[0, 2, 1, 3])?.reshape(&[b, s, nh * dh]) };
    let (q, k, v, d_o) = (split(q)?, split(k)?, split(v)?, split(dout)?);
    let tb = MatmulOpts { trans_b: true, ..Default::default() };
    let ta = MatmulOpts { trans_a: true, ..Default::default() };
    let p = softmax(&affine(&matmul_opts(&q, &k, &tb)?, scale, 0.0)?)?;
    let dv = matmul_opts(&p, &d_o, &ta)?;
    let ds = softmax_bwd(&p, &matmul_opts(&d_o, &v, &tb)?)?;
    let dq = affine(&matmul(&ds, &k)?, scale, 0.0)?;
    let dk = affine(&matmul_opts(&ds, &q, &ta)?, scale, 0.0)?;
    Ok((merge(&dq)?, merge(&dk)?, merge(&dv)?))
}

/// Benchmark cases of the backward: AST-SED's frequency-wise attention (101 frames × 4 heads × 13
/// tokens × 192) and AST's (12 heads × 1214 × 64), packed QKV; CPU, and on a GPU the composed path
/// (v0) beside the kernel (v1 short, v2 long). Work: 2.5× the forward's 4·S²·Dh per unit (QKᵀ again, dP, dQ, dK, dV).
pub fn bwd_bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    for (case, b, s, h, dh, v) in [("bwd_freq_101x4x13x192", 101usize, 13usize, 4usize, 192usize, 1u32), ("bwd_ast_12x1214x64", 1, 1214, 12, 64, 2)] {
        let w = h * dh;
        let qkv = rand_tensor(&[b, s, 3 * w], 43);
        let scale = 1.0 / (dh as f32).sqrt();
        let o = super::attention_qkv(&qkv, h, scale)?;
        let dout = rand_tensor(&[b, s, w], 44);
        let flops = 2.5 * 4.0 * (b * h * s * s * dh) as f64;
        out.extend(version_cases("attention", case, device, DType::F32, Work::Flops(flops), &[0, v], (1e-4, 1e-3), vec![qkv, o, dout], move |t, ver| {
            attention_qkv_bwd_version(&t[0], &t[1], &t[2], h, scale, ver)
        })?);
    }
    Ok(out)
}
