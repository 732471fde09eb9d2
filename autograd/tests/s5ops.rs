//! Backward rules of the CP-JKU separator extensions: bilinear resize (with the fused pre-activation),
//! group norm (with the residual), standardise-and-add and PReLU.
//!
//! (a) The backward kernels (`resize_bilinear_data_bwd_f32_v1`, `group_norm_data_bwd_f32_v1`,
//!     `standardize_add_data_bwd_f32_v1`) under the CUDA emulator — and on a real GPU when one is
//!     usable — against the CPU on odd shapes: up- and downsampling, scale-1 axes, size-1 inputs and
//!     outputs, with and without the pre-activation ((C) and (N, C) shifts); one and several groups,
//!     groups longer than a block, S = 1; planes of 2 values and constant planes. The resize data
//!     gradient is bit-identical (same taps, same rounding order); the rest within f64-sum-order noise.
//!     Also: the resize gradient is the adjoint of the forward (⟨resize(u), v⟩ = ⟨u, resize_bwd(v)⟩).
//! (b) Central finite differences (`aural_autograd::testing::gradcheck`) of every Var wrapper; inputs of
//!     LeakyReLU/PReLU kept ≥ 0.2 from the kink.
//! (c) PyTorch 2.9.1 goldens (`tests/golden/s5ops_grads.py` → `tests/golden/fixtures/s5ops_grads.safetensors`),
//!     e.g. for the pre-activated resize:
//!     ```python
//!     a = F.leaky_relu(x * scale[None, :, None, None] + shift[:, :, None, None], 0.01)
//!     y = F.interpolate(a, size=(11, 3), mode="bilinear", align_corners=False)
//!     (y * R).sum().backward()
//!     ```
//!     on the CPU and the emulator; every gradient within 1e-5 of its largest absolute value.

use std::collections::BTreeMap;

use aural_autograd::ops::s5ops::{group_norm, prelu, resize_bilinear, standardize_add};
use aural_autograd::testing::gradcheck;
use aural_autograd::{Tape, Var};
use aural_runtime::ops::conv2d::PreAct;
use aural_runtime::ops::groupnorm::group_norm_bwd;
use aural_runtime::ops::resize::{resize_bilinear as resize_fwd, resize_bilinear_bwd};
use aural_runtime::ops::standardize::standardize_add_bwd;
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{Device, Result, Tensor};

fn tmap(shape: &[usize], seed: u64, f: impl Fn(f32) -> f32) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed).into_iter().map(f).collect(), shape).unwrap()
}
fn v(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}
/// `assert_close`, printing the largest absolute difference relative to the largest |want|.
fn close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    let m = want.iter().fold(0f32, |m, &x| m.max(x.abs())).max(1e-30);
    let d = got.iter().zip(want).fold(0f32, |d, (&a, &b)| d.max((a - b).abs()));
    eprintln!("{what}: max |diff| {d:.2e} ({:.2e} of max |want|)", d / m);
    assert_close(what, got, want, atol, rtol);
}
fn on(t: &Tensor, dev: Device) -> Tensor {
    t.to_device(dev).unwrap()
}

// ---------------------------------------------------------------------------------------------------
// (a) kernels vs CPU

/// (input (N, C, H, W), output (Ho, Wo)).
fn resize_cases() -> Vec<([usize; 4], (usize, usize))> {
    vec![
        ([2, 3, 25, 1], (40, 1)),  // time only (W = 1, a scale-1 axis), N > 1
        ([1, 6, 7, 5], (9, 3)),    // H up, W down
        ([2, 2, 9, 8], (4, 3)),    // both down, non-integer ratios
        ([1, 3, 5, 4], (5, 4)),    // identity sizes
        ([2, 2, 1, 1], (3, 2)),    // a single source sample
        ([1, 2, 6, 7], (1, 1)),    // a single output
        ([1, 2, 1, 9], (4, 2)),    // a size-1 input axis, the other down
        ([1, 4, 30, 7], (67, 16)), // planes of more than one 256-thread block; the injection's 5 → 16
    ]
}

/// Pre-activation tensors for channels c and items n: scale (C), shift (C) or (N, C).
fn pre_tensors(n: usize, c: usize, per_item: bool, seed: u64) -> (Tensor, Tensor) {
    let scale = tmap(&[c], seed, |v| 1.0 + 0.5 * v);
    let shift = if per_item { tmap(&[n, c], seed + 1, |v| 0.3 * v) } else { tmap(&[c], seed + 1, |v| 0.3 * v) };
    (scale, shift)
}

#[test]
fn resize_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(s, out)) in resize_cases().iter().enumerate() {
            let seed = 100 + 10 * ci as u64;
            let x = rand_tensor(&s, seed);
            let dy = rand_tensor(&[s[0], s[1], out.0, out.1], seed + 1);
            for mode in 0..3 {
                let pt = (mode > 0).then(|| pre_tensors(s[0], s[1], mode == 2, seed + 2));
                let pre = pt.as_ref().map(|(a, b)| PreAct { scale: a, shift: b, slope: 0.1, time: None });
                let want = resize_bilinear_bwd(&x, out, pre.as_ref(), &dy).unwrap();
                let ptd = pt.as_ref().map(|(a, b)| (on(a, dev), on(b, dev)));
                let pred = ptd.as_ref().map(|(a, b)| PreAct { scale: a, shift: b, slope: 0.1, time: None });
                let got = resize_bilinear_bwd(&on(&x, dev), out, pred.as_ref(), &on(&dy, dev)).unwrap();
                let tag = format!("resize_bwd {dev} {s:?}→{out:?} pre mode {mode}");
                assert_eq!(got.dx.shape(), s.as_slice(), "{tag}");
                assert_eq!(v(&got.dx), v(&want.dx), "{tag}: dx not bit-identical to the CPU");
                assert_eq!(got.dscale.is_some(), mode > 0, "{tag}");
                if mode > 0 {
                    let (gs, ws) = (got.dscale.unwrap(), want.dscale.unwrap());
                    let (gh, wh) = (got.dshift.unwrap(), want.dshift.unwrap());
                    assert_eq!(gh.shape(), pt.as_ref().unwrap().1.shape(), "{tag}");
                    close(&format!("{tag} dscale"), &v(&gs), &v(&ws), 1e-6, 1e-6);
                    close(&format!("{tag} dshift"), &v(&gh), &v(&wh), 1e-6, 1e-6);
                }
            }
        }
    }
}

#[test]
fn resize_bwd_is_the_adjoint_of_the_forward() {
    // ⟨resize(u), w⟩ = ⟨u, resize_bwd(w)⟩ for the plain interpolation, in f64 from the f32 results.
    for (ci, &(s, out)) in resize_cases().iter().enumerate() {
        let u = rand_tensor(&s, 300 + ci as u64);
        let w = rand_tensor(&[s[0], s[1], out.0, out.1], 400 + ci as u64);
        let ru = v(&resize_fwd(&u, out, None).unwrap());
        let bw = v(&resize_bilinear_bwd(&u, out, None, &w).unwrap().dx);
        let lhs: f64 = ru.iter().zip(v(&w)).map(|(&a, b)| a as f64 * b as f64).sum();
        let rhs: f64 = v(&u).iter().zip(&bw).map(|(&a, &b)| a as f64 * b as f64).sum();
        let mag: f64 = ru.iter().zip(v(&w)).map(|(&a, b)| (a as f64 * b as f64).abs()).sum();
        assert!((lhs - rhs).abs() <= 1e-6 * mag, "adjoint {s:?}→{out:?}: {lhs} vs {rhs} (magnitude {mag})");
    }
}

#[test]
fn group_norm_bwd_kernel_matches_cpu() {
    // (x shape, groups)
    let cases: Vec<(Vec<usize>, usize)> = vec![
        (vec![1, 1], 1),
        (vec![2, 4, 5, 3], 1),
        (vec![2, 8, 3, 5], 4),
        (vec![3, 6, 1], 3),
        (vec![2, 4, 300], 2),
        (vec![1, 5, 1, 1], 5),
        (vec![1, 12, 7, 9], 1),
    ];
    for dev in gpu_devices() {
        for (ci, (s, groups)) in cases.iter().enumerate() {
            let seed = 500 + 10 * ci as u64;
            let c = s[1];
            let x = tmap(s, seed, |v| 2.0 * v + 0.5);
            let dy = rand_tensor(s, seed + 1);
            let w = tmap(&[c], seed + 2, |v| 1.0 + 0.5 * v);
            let b = rand_tensor(&[c], seed + 3);
            for (affine, res) in [(true, true), (true, false), (false, false)] {
                let (wo, bo) = if affine { (Some(&w), Some(&b)) } else { (None, None) };
                let want = group_norm_bwd(&x, *groups, wo, bo, 1e-5, res.then_some(&x), &dy).unwrap();
                let (xd, dyd, wd, bd) = (on(&x, dev), on(&dy, dev), on(&w, dev), on(&b, dev));
                let (wdo, bdo) = if affine { (Some(&wd), Some(&bd)) } else { (None, None) };
                let got = group_norm_bwd(&xd, *groups, wdo, bdo, 1e-5, res.then_some(&xd), &dyd).unwrap();
                let tag = format!("group_norm_bwd {dev} {s:?} G={groups} affine={affine} residual={res}");
                close(&format!("{tag} dx"), &v(&got.dx), &v(&want.dx), 1e-6, 1e-5);
                assert_eq!(got.dweight.is_some(), affine, "{tag}");
                assert_eq!(got.dresidual.is_some(), res, "{tag}");
                if affine {
                    close(&format!("{tag} dweight"), &v(&got.dweight.unwrap()), &v(&want.dweight.unwrap()), 1e-6, 1e-5);
                    close(&format!("{tag} dbias"), &v(&got.dbias.unwrap()), &v(&want.dbias.unwrap()), 1e-6, 1e-5);
                }
                if res {
                    assert_eq!(v(&got.dresidual.unwrap()), v(&dy), "{tag} dresidual");
                }
            }
        }
    }
}

#[test]
fn standardize_add_bwd_kernel_matches_cpu() {
    let shapes: [[usize; 4]; 5] = [[2, 3, 5, 4], [1, 1, 2, 1], [1, 2, 1, 7], [2, 2, 17, 19], [1, 3, 63, 16]];
    for dev in gpu_devices() {
        for (ci, s) in shapes.iter().enumerate() {
            let seed = 700 + 10 * ci as u64;
            let x = tmap(s, seed, |v| 3.0 * v + 1.0);
            let mut fv = rand_vec(s.iter().product(), seed + 1);
            // A constant plane of f (σ = 0: the std term vanishes).
            let n = s[2] * s[3];
            fv[..n].iter_mut().for_each(|v| *v = 0.25);
            let f = Tensor::from_vec(fv, s).unwrap();
            let dy = rand_tensor(s, seed + 2);
            let want = standardize_add_bwd(&x, &f, 0.7, -1.3, 1e-6, &dy).unwrap();
            let got = standardize_add_bwd(&on(&x, dev), &on(&f, dev), 0.7, -1.3, 1e-6, &on(&dy, dev)).unwrap();
            let tag = format!("standardize_add_bwd {dev} {s:?}");
            assert!(v(&want.df).iter().all(|x| x.is_finite()), "{tag}: non-finite df on the CPU");
            close(&format!("{tag} dx"), &v(&got.dx), &v(&want.dx), 1e-6, 1e-5);
            close(&format!("{tag} df"), &v(&got.df), &v(&want.df), 1e-3, 1e-5); // the constant plane's df is 1e6-scaled
            assert_eq!(got.dwx.shape(), [1], "{tag}");
            close(&format!("{tag} dwx"), &v(&got.dwx), &v(&want.dwx), 1e-5, 1e-5);
            close(&format!("{tag} dwf"), &v(&got.dwf), &v(&want.dwf), 1e-5, 1e-5);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// (b) finite differences

const H: f64 = 1e-2;
const TOL: f64 = 1e-3;

fn check(name: &str, inputs: &[Tensor], f: impl Fn(&[Var]) -> Result<Var>) {
    let r = gradcheck(name, inputs, H, TOL, f).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{name}: worst error / bound {:.2e} ({} evaluations)", r.worst, r.evals);
}

/// x with z = x·scale + shift at least 0.2 from 0 (LeakyReLU's kink), for a (C) or (N, C) shift.
fn x_off_kink(s: [usize; 4], scale: &Tensor, shift: &Tensor, seed: u64) -> Tensor {
    let (sc, sh) = (v(scale), v(shift));
    let z = tmap(&s, seed, |v| v.signum() * (0.2 + v.abs()));
    let hw = s[2] * s[3];
    let xs: Vec<f32> = v(&z)
        .iter()
        .enumerate()
        .map(|(i, &z)| {
            let pl = i / hw;
            let c = pl % s[1];
            let b = if sh.len() == s[1] { sh[c] } else { sh[pl] };
            (z - b) / sc[c]
        })
        .collect();
    Tensor::from_vec(xs, &s).unwrap()
}

#[test]
fn resize_gradcheck() {
    for (ci, &(s, out)) in
        [([2usize, 2, 5, 4], (9, 7)), ([1, 2, 9, 8], (4, 3)), ([2, 3, 7, 1], (16, 1)), ([1, 2, 6, 5], (11, 3)), ([1, 1, 1, 3], (2, 2))].iter().enumerate()
    {
        let seed = 900 + 10 * ci as u64;
        check(&format!("resize {s:?}→{out:?}"), &[rand_tensor(&s, seed)], |vs| resize_bilinear(&vs[0], out, None));
        for per_item in [false, true] {
            let (scale, shift) = pre_tensors(s[0], s[1], per_item, seed + 1);
            let x = x_off_kink(s, &scale, &shift, seed + 3);
            check(&format!("resize pre {s:?}→{out:?} per_item={per_item}"), &[x, scale, shift], |vs| {
                resize_bilinear(&vs[0], out, Some((&vs[1], &vs[2], 0.05)))
            });
        }
    }
}

#[test]
fn group_norm_gradcheck() {
    for (ci, (s, groups)) in [(vec![2usize, 4, 5, 3], 1usize), (vec![2, 6, 3, 2], 3), (vec![3, 4, 5], 2)].into_iter().enumerate() {
        let seed = 1000 + 10 * ci as u64;
        let c = s[1];
        let x = tmap(&s, seed, |v| 2.0 * v + 0.3);
        let w = tmap(&[c], seed + 1, |v| 1.0 + 0.5 * v);
        let b = rand_tensor(&[c], seed + 2);
        let r = rand_tensor(&s, seed + 3);
        check(&format!("group_norm {s:?} G={groups} affine+residual"), &[x.clone(), w, b, r], |vs| {
            group_norm(&vs[0], groups, Some(&vs[1]), Some(&vs[2]), 1e-5, Some(&vs[3]))
        });
        check(&format!("group_norm {s:?} G={groups} plain"), &[x], |vs| group_norm(&vs[0], groups, None, None, 1e-5, None));
    }
}

#[test]
fn standardize_add_gradcheck() {
    for (ci, s) in [[2usize, 3, 5, 4], [1, 2, 3, 1], [1, 1, 2, 2]].into_iter().enumerate() {
        let seed = 1100 + 10 * ci as u64;
        let x = tmap(&s, seed, |v| 2.0 * v + 0.5);
        let f = tmap(&s, seed + 1, |v| 0.5 * v - 0.2);
        let wx = Tensor::from_vec(vec![0.8], &[1]).unwrap();
        let wf = Tensor::from_vec(vec![-1.3], &[1]).unwrap();
        check(&format!("standardize_add {s:?}"), &[x, f, wx, wf], |vs| standardize_add(&vs[0], &vs[1], &vs[2], &vs[3], 1e-6));
    }
}

#[test]
fn prelu_gradcheck() {
    let off = |s: &[usize], seed| tmap(s, seed, |v| v.signum() * (0.2 + v.abs()));
    check("prelu one", &[off(&[2, 3, 4, 5], 1200), Tensor::from_vec(vec![0.2], &[1]).unwrap()], |vs| prelu(&vs[0], &vs[1]));
    check("prelu per channel", &[off(&[2, 3, 4, 5], 1201), Tensor::from_vec(vec![0.1, -0.3, 0.7], &[3]).unwrap()], |vs| prelu(&vs[0], &vs[1]));
    check("prelu rank 2", &[off(&[5, 4], 1202), tmap(&[4], 1203, |v| 0.5 * v)], |vs| prelu(&vs[0], &vs[1]));
}

// ---------------------------------------------------------------------------------------------------
// (c) PyTorch goldens

/// max |got − want| / max |want|.
fn rel_err(what: &str, got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.numel(), want.numel(), "{what}: {:?} vs {:?}", got.shape(), want.shape());
    let (g, w) = (v(got), v(want));
    let m = w.iter().fold(0f64, |m, &x| m.max((x as f64).abs())).max(1e-30);
    g.iter().zip(&w).map(|(&a, &b)| (a as f64 - b as f64).abs()).fold(0.0, f64::max) / m
}

/// Runs `forward` on the case's inputs (`names`, in order, as Vars on `dev`), checks the output and
/// every input's gradient against torch; returns the worst relative error.
fn golden_case(f: &BTreeMap<String, Tensor>, case: &str, names: &[&str], dev: Device, forward: impl Fn(&[Var]) -> Result<Var>) -> f64 {
    let tape = Tape::new();
    let vars: Vec<Var> = names.iter().map(|n| tape.var(on(&f[&format!("{case}.{n}")], dev))).collect();
    let y = forward(&vars).unwrap();
    let mut worst = rel_err(&format!("{case} y"), y.value(), &f[&format!("{case}.y")]);
    assert!(worst <= 1e-5, "{case} {dev}: output differs from torch by {worst:.3e} (relative to its max) > 1e-5");
    let loss = aural_autograd::ops::sum_all(&aural_autograd::ops::mul(&y, &tape.constant(on(&f[&format!("{case}.dy")], dev))).unwrap()).unwrap();
    let grads = tape.backward(&loss).unwrap();
    for (n, var) in names.iter().zip(&vars) {
        let g = grads.get(var).unwrap_or_else(|| panic!("{case}: no gradient for {n}"));
        assert_eq!(g.shape(), var.shape(), "{case}: gradient of {n}");
        let e = rel_err(&format!("{case} grad {n}"), g, &f[&format!("{case}.grad.{n}")]);
        eprintln!("{case} {dev} grad {n:<9} max rel err {e:.2e}");
        assert!(e <= 1e-5, "{case} {dev}: gradient of {n} differs from torch by {e:.3e} (relative to its max) > 1e-5");
        worst = worst.max(e);
    }
    worst
}

#[test]
fn gradients_match_torch() {
    let f = fixture("s5ops_grads.safetensors");
    let mut devs = vec![Device::Cpu];
    devs.extend(gpu_devices());
    for dev in devs {
        let mut worst = 0f64;
        for (case, size) in [("rs_up", (9, 7)), ("rs_down", (4, 3)), ("rs_time", (16, 1))] {
            worst = worst.max(golden_case(&f, case, &["x"], dev, |vs| resize_bilinear(&vs[0], size, None)));
        }
        for (case, size) in [("rs_mixed_pre", (11, 3)), ("rs_down_pre", (3, 4))] {
            worst = worst.max(golden_case(&f, case, &["x", "scale", "shift"], dev, |vs| resize_bilinear(&vs[0], size, Some((&vs[1], &vs[2], 0.01)))));
        }
        worst = worst.max(golden_case(&f, "gn_g1", &["x", "weight", "bias", "residual"], dev, |vs| {
            group_norm(&vs[0], 1, Some(&vs[1]), Some(&vs[2]), 1e-8, Some(&vs[3]))
        }));
        worst = worst.max(golden_case(&f, "gn_g4", &["x", "weight", "bias"], dev, |vs| group_norm(&vs[0], 4, Some(&vs[1]), Some(&vs[2]), 1e-5, None)));
        worst = worst.max(golden_case(&f, "sa", &["x", "f", "wx", "wf"], dev, |vs| standardize_add(&vs[0], &vs[1], &vs[2], &vs[3], 1e-6)));
        for case in ["prelu1", "preluc"] {
            worst = worst.max(golden_case(&f, case, &["x", "weight"], dev, |vs| prelu(&vs[0], &vs[1])));
        }
        eprintln!("torch goldens on {dev}: worst relative error {worst:.2e}");
    }
}
