//! AdamW with amsgrad (`torch.optim.AdamW(amsgrad=True)`):
//! - the fused kernel `adamw_amsgrad_fwd_f32_v1` under the CUDA emulator (and on a real GPU when one is
//!   usable) against the CPU reference, on odd sizes, size 1 and sizes spanning several blocks;
//! - five optimizer steps against PyTorch 2.9.1 (fixture `tests/golden/fixtures/amsgrad.safetensors`,
//!   written by `tests/golden/amsgrad.py`):
//! ```python
//! opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05,
//!                         amsgrad=True, foreach=False)
//! for step, sc in enumerate([1.0, 2.0, 0.1, 0.05, 1.5], 1):   # gradients shrink at steps 3 and 4
//!     for p in params: p.grad = torch.randn(p.shape) * sc
//!     opt.step()   # params and state[p]["exp_avg" | "exp_avg_sq" | "max_exp_avg_sq"] stored per step
//! ```
//! Parameters and all three states must match within 1e-6 relative (plus a tiny absolute floor).
//! The same run is checked on the CPU and under the emulator, and the optimizer state is checked to
//! round-trip through `state()` / `set_state()` mid-run.

use aural_autograd::optim::{AdamW, ParamGroup};
use aural_autograd::{Grads, ParamStore};
use aural_runtime::ops::adamw::{adamw_step, adamw_step_amsgrad, AdamWHyper};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{Device, Tensor};

const NAMES: [&str; 3] = ["p0", "p1", "p2"];

fn scaled(n: usize, seed: u64, s: f32) -> Tensor {
    Tensor::from_vec(rand_vec(n, seed).iter().map(|v| v * s).collect(), &[n]).unwrap()
}

fn squares(n: usize, seed: u64, s: f32) -> Tensor {
    Tensor::from_vec(rand_vec(n, seed).iter().map(|x| s * x * x).collect(), &[n]).unwrap()
}

/// Largest |got − want| / max(|want|, floor) over the elements.
fn max_rel(got: &Tensor, want: &Tensor, floor: f32) -> f64 {
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    assert_eq!(g.len(), w.len());
    g.iter().zip(&w).map(|(a, b)| ((a - b).abs() / b.abs().max(floor)) as f64).fold(0.0, f64::max)
}

#[test]
fn adamw_amsgrad_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, n) in [1usize, 7, 255, 1000, 4099].into_iter().enumerate() {
            let s = ci as u64 * 10;
            let (p, g, m) = (rand_tensor(&[n], 180 + s), scaled(n, 181 + s, 0.3), scaled(n, 182 + s, 0.1));
            let v = squares(n, 183 + s, 0.01);
            // vmax: zeros (first step), and a previous max that is above the new v for about half of
            // the elements, below for the rest.
            for (vi, vmax) in [Tensor::zeros(&[n], aural_runtime::DType::F32, Device::Cpu).unwrap(), squares(n, 184 + s, 0.02)].iter().enumerate() {
                for step in [1u64, 2, 1000] {
                    let h = AdamWHyper { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.05, step };
                    let want = adamw_step_amsgrad(&p, &g, &m, &v, vmax, &h).unwrap();
                    let d = |t: &Tensor| t.to_device(dev).unwrap();
                    let got = adamw_step_amsgrad(&d(&p), &d(&g), &d(&m), &d(&v), &d(vmax), &h).unwrap();
                    let tag = format!("adamw_amsgrad {dev} n={n} vmax#{vi} step {step}");
                    let (gx, wx) = (got.max_exp_avg_sq.as_ref().unwrap(), want.max_exp_avg_sq.as_ref().unwrap());
                    assert_eq!(gx.shape(), &[n]);
                    assert_close(&format!("{tag} param"), &got.param.to_vec().unwrap(), &want.param.to_vec().unwrap(), 1e-7, 1e-6);
                    assert_close(&format!("{tag} exp_avg"), &got.exp_avg.to_vec().unwrap(), &want.exp_avg.to_vec().unwrap(), 1e-8, 1e-6);
                    assert_close(&format!("{tag} exp_avg_sq"), &got.exp_avg_sq.to_vec().unwrap(), &want.exp_avg_sq.to_vec().unwrap(), 1e-10, 1e-6);
                    assert_close(&format!("{tag} max_exp_avg_sq"), &gx.to_vec().unwrap(), &wx.to_vec().unwrap(), 1e-10, 1e-6);
                    eprintln!("{tag}: max rel err param {:.1e}, max {:.1e}", max_rel(&got.param, &want.param, 1e-6), max_rel(gx, wx, 1e-12));
                }
            }
        }
    }
}

/// CPU semantics: the new max is max(previous max, new v); with a previous max of zeros the step
/// equals the plain AdamW step; the denominator uses the max, so a large max shrinks the update.
#[test]
fn amsgrad_cpu_reference_semantics() {
    let n = 33;
    let (p, g, m) = (rand_tensor(&[n], 1), scaled(n, 2, 0.3), scaled(n, 3, 0.1));
    let v = squares(n, 4, 0.01);
    let h = AdamWHyper { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.05, step: 3 };
    let plain = adamw_step(&p, &g, &m, &v, &h).unwrap();
    assert!(plain.max_exp_avg_sq.is_none());
    let zeros = Tensor::zeros(&[n], aural_runtime::DType::F32, Device::Cpu).unwrap();
    let a = adamw_step_amsgrad(&p, &g, &m, &v, &zeros, &h).unwrap();
    assert_eq!(a.param.to_vec().unwrap(), plain.param.to_vec().unwrap());
    assert_eq!(a.max_exp_avg_sq.unwrap().to_vec().unwrap(), plain.exp_avg_sq.to_vec().unwrap());
    let big = squares(n, 5, 1.0);
    let b = adamw_step_amsgrad(&p, &g, &m, &v, &big, &h).unwrap();
    let (bx, bv, bg) = (b.max_exp_avg_sq.unwrap().to_vec().unwrap(), b.exp_avg_sq.to_vec().unwrap(), big.to_vec().unwrap());
    for i in 0..n {
        assert_eq!(bx[i], bv[i].max(bg[i]), "element {i}");
    }
    assert_eq!(bv, plain.exp_avg_sq.to_vec().unwrap(), "v itself is unchanged by amsgrad");
    // Shape mismatch of the max is an error naming it.
    let e = adamw_step_amsgrad(&p, &g, &m, &v, &rand_tensor(&[n + 1], 6), &h).unwrap_err().to_string();
    assert!(e.contains("max_exp_avg_sq"), "{e}");
}

/// NaN in the previous max or in v propagates into the new max (as `torch.maximum`), on the CPU and
/// in the kernel alike.
#[test]
fn amsgrad_max_propagates_nan() {
    let n = 5;
    let (p, g, m) = (rand_tensor(&[n], 11), scaled(n, 12, 0.3), scaled(n, 13, 0.1));
    let mut v = squares(n, 14, 0.01).to_vec().unwrap();
    v[1] = f32::NAN;
    let mut x = squares(n, 15, 0.02).to_vec().unwrap();
    x[3] = f32::NAN;
    let (v, x) = (Tensor::from_vec(v, &[n]).unwrap(), Tensor::from_vec(x, &[n]).unwrap());
    let h = AdamWHyper { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.05, step: 2 };
    let want = adamw_step_amsgrad(&p, &g, &m, &v, &x, &h).unwrap();
    let wx = want.max_exp_avg_sq.unwrap().to_vec().unwrap();
    assert!(wx[1].is_nan() && wx[3].is_nan() && wx.iter().filter(|a| a.is_nan()).count() == 2, "{wx:?}");
    for dev in gpu_devices() {
        let d = |t: &Tensor| t.to_device(dev).unwrap();
        let got = adamw_step_amsgrad(&d(&p), &d(&g), &d(&m), &d(&v), &d(&x), &h).unwrap();
        assert_close(&format!("nan max {dev}"), &got.max_exp_avg_sq.unwrap().to_vec().unwrap(), &wx, 0.0, 0.0);
        assert_close(&format!("nan param {dev}"), &got.param.to_vec().unwrap(), &want.param.to_vec().unwrap(), 1e-7, 1e-6);
    }
}

fn check_step(device: Device, opt: &AdamW, s: &ParamStore, f: &std::collections::BTreeMap<String, Tensor>, step: usize, worst: &mut [f64; 4]) {
    let st = opt.state();
    for n in NAMES {
        let ps = st.iter().find(|x| x.name == n).unwrap();
        assert_eq!(ps.step, step as u64);
        let x = ps.max_exp_avg_sq.expect("amsgrad keeps max_exp_avg_sq");
        let var = s.get(n).unwrap();
        let pairs = [("param", var.value(), 1e-6), ("exp_avg", ps.exp_avg, 1e-7), ("exp_avg_sq", ps.exp_avg_sq, 1e-10), ("max_exp_avg_sq", x, 1e-10)];
        for (k, (what, got, atol)) in pairs.into_iter().enumerate() {
            let want = &f[&format!("{n}.{what}{step}")];
            let tag = format!("amsgrad {device} {n} step {step} {what}");
            assert_close(&tag, &got.to_vec().unwrap(), &want.to_vec().unwrap(), atol * 1e-2, 1e-6);
            worst[k] = worst[k].max(max_rel(got, want, atol));
        }
    }
}

fn golden_case(device: Device) {
    let f = fixture("amsgrad.safetensors");
    let mut s = ParamStore::new();
    for n in NAMES {
        s.insert(n, f[&format!("{n}.init")].to_device(device).unwrap());
    }
    let group = || vec![ParamGroup::new(NAMES.iter().map(|n| n.to_string()).collect(), 1e-2, 0.05)];
    let mut opt = AdamW::new(group()).with_betas(0.9, 0.99).with_eps(1e-8).with_amsgrad(true);
    let mut worst = [0f64; 4];
    for step in 1..=5 {
        let mut grads = Grads::default();
        for n in NAMES {
            grads.insert_id(s.get(n).unwrap().id(), f[&format!("{n}.grad{step}")].to_device(device).unwrap());
        }
        opt.step(&mut s, &grads).unwrap();
        check_step(device, &opt, &s, &f, step, &mut worst);
        if step == 2 {
            // A resumed run: a fresh optimizer from state() / set_state() continues identically.
            let mut fresh = AdamW::new(group()).with_betas(0.9, 0.99).with_eps(1e-8).with_amsgrad(true);
            for ps in opt.state() {
                fresh.set_state(ps.name, ps.step, ps.exp_avg.clone(), ps.exp_avg_sq.clone(), ps.max_exp_avg_sq.cloned()).unwrap();
            }
            opt = fresh;
        }
    }
    eprintln!(
        "amsgrad golden {device}: max rel err over 5 steps: param {:.2e}, exp_avg {:.2e}, exp_avg_sq {:.2e}, max_exp_avg_sq {:.2e}",
        worst[0], worst[1], worst[2], worst[3]
    );
    for (k, w) in worst.iter().enumerate() {
        assert!(*w <= 1e-6, "state {k}: max rel err {w:.2e} > 1e-6");
    }
}

#[test]
fn amsgrad_steps_match_torch() {
    golden_case(Device::Cpu);
}

#[test]
fn amsgrad_kernel_on_the_emulator_matches_torch() {
    golden_case(Device::Emu);
}

/// Turning amsgrad off keeps the plain path: no max in the state, and the update differs from the
/// amsgrad run once the gradient shrinks (step 3 of the fixture).
#[test]
fn amsgrad_off_keeps_no_max() {
    let f = fixture("amsgrad.safetensors");
    let mut s = ParamStore::new();
    for n in NAMES {
        s.insert(n, f[&format!("{n}.init")].clone());
    }
    let mut opt = AdamW::new(vec![ParamGroup::new(NAMES.iter().map(|n| n.to_string()).collect(), 1e-2, 0.05)]).with_betas(0.9, 0.99);
    for step in 1..=3 {
        let mut grads = Grads::default();
        for n in NAMES {
            grads.insert_id(s.get(n).unwrap().id(), f[&format!("{n}.grad{step}")].clone());
        }
        opt.step(&mut s, &grads).unwrap();
    }
    assert!(opt.state().iter().all(|p| p.max_exp_avg_sq.is_none()));
    let d = max_rel(s.get("p0").unwrap().value(), &f["p0.param3"], 1e-6);
    assert!(d > 1e-4, "without amsgrad step 3 should differ from torch's amsgrad run (rel diff {d:.1e})");
}
