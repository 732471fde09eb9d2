//! One fused AdamW step (`torch.optim.AdamW` semantics): decoupled weight decay
//! `p ← p·(1 − lr·wd)` before the Adam update, bias corrections, eps added to √v̂. Used by
//! `aural_autograd::optim::AdamW`, one call per parameter.
//!
//! Two variants: [`adamw_step`] (amsgrad = False) and [`adamw_step_amsgrad`] (amsgrad = True: a
//! third state `max_exp_avg_sq ← max(max_exp_avg_sq, v)` replaces v in the denominator; v itself is
//! still the stored exp_avg_sq).
//!
//! CPU: `cpu.rs` (rayon, the reference; same f32 operation order as torch's single-tensor AdamW).
//! CUDA: `cuda.rs` launching `kernels/cuda/adamw.cu` (`adamw_fwd_f32_v1`, `adamw_amsgrad_fwd_f32_v1`).
//! Both take the same host-precomputed f32 scalars ([`AdamWScalars`]), so they agree to rounding.

mod cpu;
mod cuda;

use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

/// Hyper-parameters of one step of one parameter. `step` counts from 1 (after the increment, as torch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: u64,
}

/// The per-element constants of a step, computed on the host in f64 (as torch's Python floats) and
/// rounded to f32 once. `repr(C)`: the CUDA launcher passes them as the tail of the kernel's
/// `AdamWParams`, in this field order.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamWScalars {
    pub decay: f32,
    pub one_m_beta1: f32,
    pub beta2: f32,
    pub one_m_beta2: f32,
    pub neg_step_size: f32,
    pub bc2_sqrt: f32,
    pub eps: f32,
}

impl AdamWHyper {
    pub fn scalars(&self) -> AdamWScalars {
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        AdamWScalars {
            decay: (1.0 - self.lr * self.weight_decay) as f32,
            one_m_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_m_beta2: (1.0 - self.beta2) as f32,
            neg_step_size: (-(self.lr / bc1)) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: self.eps as f32,
        }
    }
}

/// The updated parameter and moments of one step. `max_exp_avg_sq` is `Some` exactly when the step
/// was an amsgrad step ([`adamw_step_amsgrad`]).
#[derive(Debug, Clone)]
pub struct AdamWState {
    pub param: Tensor,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    pub max_exp_avg_sq: Option<Tensor>,
}

/// One AdamW step of parameter `p` with gradient `g` and moments `m` (exp_avg), `v` (exp_avg_sq);
/// returns new tensors (inputs are unchanged). All f32, one shape, one device.
pub fn adamw_step(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: &AdamWHyper) -> Result<AdamWState> {
    let op = "adamw";
    check(op, &[p, g, m, v], h)?;
    let s = h.scalars();
    match same_device(op, &[p, g, m, v])? {
        Device::Cpu => cpu::adamw(p.cpu_f32()?, g.cpu_f32()?, m.cpu_f32()?, v.cpu_f32()?, &s, p.shape()),
        Device::Cuda(_) | Device::Emu => cuda::adamw(p, g, m, v, &s),
    }
}

/// One AdamW step with amsgrad (`torch.optim.AdamW(amsgrad=True)`): as [`adamw_step`], then
/// `vmax ← max(vmax, v)` (elementwise, NaN propagating as `torch.maximum`) with the new v, and the
/// denominator `√vmax / √(1 − β2^t) + eps`. `vmax` is the previous max_exp_avg_sq (zeros before the
/// first step); the result's `max_exp_avg_sq` is `Some(new max)`. All f32, one shape, one device.
pub fn adamw_step_amsgrad(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, vmax: &Tensor, h: &AdamWHyper) -> Result<AdamWState> {
    let op = "adamw_amsgrad";
    check(op, &[p, g, m, v, vmax], h)?;
    let s = h.scalars();
    match same_device(op, &[p, g, m, v, vmax])? {
        Device::Cpu => cpu::adamw_amsgrad(p.cpu_f32()?, g.cpu_f32()?, m.cpu_f32()?, v.cpu_f32()?, vmax.cpu_f32()?, &s, p.shape()),
        Device::Cuda(_) | Device::Emu => cuda::adamw_amsgrad(p, g, m, v, vmax, &s),
    }
}

/// dtype (f32), shape (all as the parameter's) and step (≥ 1) checks; `ts` is [p, g, m, v, (vmax)].
fn check(op: &'static str, ts: &[&Tensor], h: &AdamWHyper) -> Result<()> {
    const NAMES: [&str; 5] = ["param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    let p = ts[0];
    for t in ts {
        expect_dtype(op, t, DType::F32)?;
        if t.shape() != p.shape() {
            let all = ts.iter().zip(NAMES).map(|(t, n)| format!("{n} {:?}", t.shape())).collect::<Vec<_>>().join(", ");
            return Err(Error::shape(op, format!("{all} must share one shape")));
        }
    }
    if h.step == 0 {
        return Err(Error::Msg(format!("{op}: step counts from 1")));
    }
    Ok(())
}

/// Benchmark cases: one step of an AST MLP weight (3072 × 768 = 2.36 M parameters); memory-bound,
/// 4 tensors read and 3 written per element.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let shape = [3072usize, 768];
    let v = rand_tensor(&shape, 4).to_vec()?.iter().map(|x| x * x).collect::<Vec<_>>();
    let inputs = vec![rand_tensor(&shape, 1), rand_tensor(&shape, 2), rand_tensor(&shape, 3), Tensor::from_vec(v, &shape)?];
    let h = AdamWHyper { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 10 };
    let work = Work::Bytes(28.0 * (shape[0] * shape[1]) as f64);
    version_cases("adamw", "3072x768", device, DType::F32, work, &[1], (1e-6, 1e-6), inputs, move |t, _v| {
        adamw_step(&t[0], &t[1], &t[2], &t[3], &h).map(|s| s.param)
    })
}
