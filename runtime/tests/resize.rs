//! Bilinear resize (`F.interpolate(mode='bilinear', align_corners=False)`): CPU vs a naive loop
//! (time-only W = 1, up- and downsampling per axis, non-integer ratios, size-1 inputs and outputs,
//! identity sizes, N > 1, the fused pre-activation with (C) and (N, C) shifts), errors, the kernel
//! under the emulator (and a real GPU) vs the CPU — bit-identical, since both round every product and
//! sum separately in the same order — and the PyTorch golden from
//! tests/golden/fixtures/cpjku_ops.safetensors:
//!
//! ```python
//! resize_t_out = F.interpolate(resize_t_x, size=(40, 1), mode="bilinear", align_corners=False)   # (2, 3, 25, 1)
//! resize_2d_out = F.interpolate(resize_2d_x, size=(9, 3), mode="bilinear", align_corners=False)  # (1, 6, 7, 5)
//! bn = nn.BatchNorm2d(4).eval()  # random weight, bias, running_mean, running_var
//! pre = F.leaky_relu(bn(resize_pre_x) + resize_pre_beta[:, :, None, None], 0.01)               # (2, 4, 6, 5)
//! resize_pre_out = F.interpolate(pre, size=(11, 3), mode="bilinear", align_corners=False)
//! ```
//! (tests/golden/cpjku_ops.py, torch 2.9.1 CPU, seed 7.)

use aural_runtime::ops::conv2d::{fold_batchnorm, PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::ops::resize::{resize_bilinear, resize_bilinear_version};
use aural_runtime::testing::{assert_close, fixture, fixture_path, gpu_devices, rand_tensor};
use aural_runtime::{Device, Tensor};

/// (input (N, C, H, W), output (Ho, Wo)).
fn cases() -> Vec<([usize; 4], (usize, usize))> {
    vec![
        ([2, 3, 25, 1], (40, 1)),    // time only (the time-FiLM), N > 1
        ([1, 6, 7, 5], (9, 3)),      // H up, W down
        ([2, 2, 9, 8], (4, 3)),      // both down, non-integer ratios
        ([1, 3, 5, 4], (5, 4)),      // identity sizes
        ([2, 2, 1, 1], (3, 2)),      // a single source sample
        ([1, 2, 6, 7], (1, 1)),      // a single output
        ([1, 4, 30, 7], (67, 16)),   // more than one 256-thread block; the injection's 5 → 16 shape
        ([1, 3, 250, 1], (2016, 1)), // the real time-FiLM ratio
    ]
}

/// The taps of PyTorch's `area_pixel_compute_source_index` + `guard_index_and_lambda`: the source
/// coordinate in f32 as PyTorch computes it (this defines the op), then (i0, i1, λ).
fn taps(input: usize, output: usize, d: usize) -> (usize, usize, f64) {
    let scale = input as f32 / output as f32;
    let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0) as f64;
    let i0 = (src.floor() as usize).min(input - 1);
    let l = (src - i0 as f64).clamp(0.0, 1.0);
    (i0, (i0 + 1).min(input - 1), l)
}

/// The resize in f64 (coordinates as PyTorch's f32), with an optional pre-activation
/// (scale [C], shift [C] or [N, C], slope).
fn naive(x: &[f32], [n, c, h, w]: [usize; 4], (ho, wo): (usize, usize), pre: Option<(&[f32], &[f32], f32)>) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for b in 0..n {
        for ch in 0..c {
            let a = |i: usize, j: usize| -> f64 {
                let v = x[((b * c + ch) * h + i) * w + j] as f64;
                match pre {
                    None => v,
                    Some((sc, sh, slope)) => {
                        let shift = if sh.len() == c { sh[ch] } else { sh[b * c + ch] };
                        let t = v * sc[ch] as f64 + shift as f64;
                        if t < 0.0 {
                            t * slope as f64
                        } else {
                            t
                        }
                    }
                }
            };
            for oh in 0..ho {
                let (h0, h1, lh) = taps(h, ho, oh);
                for ow in 0..wo {
                    let (w0, w1, lw) = taps(w, wo, ow);
                    let top = (1.0 - lw) * a(h0, w0) + lw * a(h0, w1);
                    let bot = (1.0 - lw) * a(h1, w0) + lw * a(h1, w1);
                    out.push(((1.0 - lh) * top + lh * bot) as f32);
                }
            }
        }
    }
    out
}

fn out_shape(s: [usize; 4], (ho, wo): (usize, usize)) -> [usize; 4] {
    [s[0], s[1], ho, wo]
}

#[test]
fn cpu_matches_naive_loop() {
    for (i, (s, o)) in cases().into_iter().enumerate() {
        let x = rand_tensor(&s, 500 + i as u64);
        let got = resize_bilinear(&x, o, None).unwrap();
        assert_eq!(got.shape(), &out_shape(s, o), "case {i}");
        // Same taps; the f32 blend of values in [-1, 1) rounds each of its 6 operations: ≤ ~4 ulp of 1.
        assert_close(&format!("resize cpu case {i} {s:?} → {o:?}"), &got.to_vec().unwrap(), &naive(&x.to_vec().unwrap(), s, o, None), 1e-6, 1e-6);
    }
}

#[test]
fn cpu_with_pre_activation_matches_naive_loop() {
    for (i, (s, o)) in cases().into_iter().enumerate() {
        let x = rand_tensor(&s, 600 + i as u64);
        let scale = Tensor::from_vec(rand_tensor(&[s[1]], 610 + i as u64).to_vec().unwrap().iter().map(|v| v + 1.5).collect(), &[s[1]]).unwrap();
        for (k, shift) in [rand_tensor(&[s[1]], 620 + i as u64), rand_tensor(&[s[0], s[1]], 630 + i as u64)].into_iter().enumerate() {
            let pre = PreAct { scale: &scale, shift: &shift, slope: 0.01, time: None };
            let got = resize_bilinear(&x, o, Some(&pre)).unwrap();
            let want = naive(&x.to_vec().unwrap(), s, o, Some((scale.cpu_f32().unwrap(), shift.cpu_f32().unwrap(), 0.01)));
            // Activated values up to |x·scale + shift| < 3.5: the activation's two roundings plus the blend's.
            assert_close(&format!("resize pre cpu case {i} shift {k} {s:?} → {o:?}"), &got.to_vec().unwrap(), &want, 2e-6, 1e-6);
        }
    }
}

#[test]
fn identity_size_copies_exactly() {
    let x = rand_tensor(&[2, 3, 7, 5], 700);
    let got = resize_bilinear(&x, (7, 5), None).unwrap();
    assert_eq!(got.to_vec().unwrap(), x.to_vec().unwrap());
}

#[test]
fn errors_name_the_shapes() {
    let x = rand_tensor(&[1, 2, 3, 5], 1);
    let e = resize_bilinear(&rand_tensor(&[2, 3, 5], 2), (4, 4), None).unwrap_err().to_string();
    assert!(e.contains("resize_bilinear") && e.contains("(N, C, H, W)") && e.contains("[2, 3, 5]"), "{e}");
    let e = resize_bilinear(&x, (0, 4), None).unwrap_err().to_string();
    assert!(e.contains("[1, 2, 3, 5]") && e.contains("(0, 4)"), "{e}");
    let e = resize_bilinear(&rand_tensor(&[1, 2, 0, 5], 3), (2, 2), None).unwrap_err().to_string();
    assert!(e.contains("[1, 2, 0, 5]"), "{e}");
    let (sc, sh) = (rand_tensor(&[3], 4), rand_tensor(&[2], 5));
    let e = resize_bilinear(&x, (4, 4), Some(&PreAct { scale: &sc, shift: &sh, slope: 0.01, time: None })).unwrap_err().to_string();
    assert!(e.contains("scale [3]") && e.contains("[2]"), "{e}");
    let (sc, sh) = (rand_tensor(&[2], 4), rand_tensor(&[3, 2], 5));
    let e = resize_bilinear(&x, (4, 4), Some(&PreAct { scale: &sc, shift: &sh, slope: 0.01, time: None })).unwrap_err().to_string();
    assert!(e.contains("shift [3, 2]"), "{e}");
    let t = rand_tensor(&[1, 2, 3], 6);
    let sh = rand_tensor(&[2], 7);
    let pre = PreAct { scale: &sc, shift: &sh, slope: 0.01, time: Some(TimeFilm { values: &t, mode: TimeFilmMode::Add }) };
    let e = resize_bilinear(&x, (4, 4), Some(&pre)).unwrap_err().to_string();
    assert!(e.contains("time") && e.contains("not supported"), "{e}");
    let e = resize_bilinear(&aural_runtime::ops::unary::to_f16(&x).unwrap(), (4, 4), None).unwrap_err().to_string();
    assert!(e.contains("resize_bilinear") && e.contains("f32"), "{e}");
    for dev in gpu_devices() {
        let xd = x.to_device(dev).unwrap();
        let e = resize_bilinear_version(&xd, (4, 4), None, Some(2)).unwrap_err().to_string();
        assert!(e.contains("resize_bilinear_fwd_f32_v2") && e.contains("no version 2"), "{e}");
        let e = resize_bilinear(&xd, (4, 4), Some(&PreAct { scale: &sc, shift: &sh, slope: 0.01, time: None })).unwrap_err().to_string();
        assert!(e.contains("different devices"), "{e}");
    }
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad = got.iter().zip(want).position(|(g, w)| g.to_bits() != w.to_bits());
    if let Some(i) = bad {
        panic!("{what}: first difference at {i}: {} vs {}", got[i], want[i]);
    }
}

#[test]
fn kernel_matches_cpu_exactly() {
    for dev in gpu_devices() {
        for (i, (s, o)) in cases().into_iter().enumerate() {
            let x = rand_tensor(&s, 800 + i as u64);
            let scale = rand_tensor(&[s[1]], 810 + i as u64);
            let shifts = [rand_tensor(&[s[1]], 820 + i as u64), rand_tensor(&[s[0], s[1]], 830 + i as u64)];
            let xd = x.to_device(dev).unwrap();
            let scd = scale.to_device(dev).unwrap();
            for k in 0..3 {
                let pre = (k > 0).then(|| PreAct { scale: &scale, shift: &shifts[k - 1], slope: 0.2, time: None });
                let want = resize_bilinear(&x, o, pre.as_ref()).unwrap().to_vec().unwrap();
                let shd = shifts[k.max(1) - 1].to_device(dev).unwrap();
                let pre_d = (k > 0).then_some(PreAct { scale: &scd, shift: &shd, slope: 0.2, time: None });
                for v in [None, Some(1)] {
                    let got = resize_bilinear_version(&xd, o, pre_d.as_ref(), v).unwrap_or_else(|e| panic!("{dev} {v:?}: {e}"));
                    assert_eq!(got.device(), dev);
                    assert_eq!(got.shape(), &out_shape(s, o));
                    // Same taps, same separately rounded operations in the same order: bit-identical.
                    assert_bits(&format!("{dev} resize {v:?} case {i} pre {k}"), &got.to_vec().unwrap(), &want);
                }
            }
        }
    }
}

#[test]
fn golden_pytorch_interpolate_bilinear() {
    let path = fixture_path("cpjku_ops.safetensors");
    if !path.exists() {
        eprintln!("golden resize: SKIPPED ({} not written yet: run tests/golden/cpjku_ops.py)", path.display());
        return;
    }
    let fx = fixture("cpjku_ops.safetensors");
    let get = |k: &str| -> &Tensor { fx.get(k).unwrap_or_else(|| panic!("cpjku_ops.safetensors has no tensor {k}")) };
    let v = |k: &str| get(k).to_vec().unwrap();
    let (scale, bn_shift) =
        fold_batchnorm(&v("resize_pre_bn_weight"), &v("resize_pre_bn_bias"), &v("resize_pre_bn_mean"), &v("resize_pre_bn_var"), v("resize_pre_bn_eps")[0]);
    let beta = get("resize_pre_beta");
    let c = scale.len();
    let shift: Vec<f32> = (0..beta.numel()).map(|i| bn_shift[i % c] + v("resize_pre_beta")[i]).collect();
    let scale = Tensor::from_vec(scale, &[c]).unwrap();
    let shift = Tensor::from_vec(shift, beta.shape()).unwrap();
    let mut devs = vec![Device::Cpu];
    devs.extend(gpu_devices());
    for dev in devs {
        let (scd, shd) = (scale.to_device(dev).unwrap(), shift.to_device(dev).unwrap());
        for (name, size, with_pre) in [("resize_t", (40, 1), false), ("resize_2d", (9, 3), false), ("resize_pre", (11, 3), true)] {
            let x = get(&format!("{name}_x")).to_device(dev).unwrap();
            let want = get(&format!("{name}_out"));
            let pre = with_pre.then_some(PreAct { scale: &scd, shift: &shd, slope: 0.01, time: None });
            let got = resize_bilinear(&x, size, pre.as_ref()).unwrap();
            assert_eq!(got.shape(), want.shape(), "{name} on {dev}");
            // PyTorch blends with its own operation order (and BatchNorm as (x − mean)·rstd·w + b,
            // here folded to x·scale + shift): a few ulps of values of magnitude ≤ ~4.
            assert_close(&format!("{name} {dev} vs PyTorch"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 2e-6, 2e-6);
        }
    }
}
