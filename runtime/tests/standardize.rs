//! Standardise-and-add (`wx·(x − μx)/(σx + eps) + wf·(f − μf)/(σf + eps)` per (b, c) map, σ the
//! unbiased std): CPU vs a naive f64 loop (H·W = 2, odd sizes, planes longer than a block, offsets
//! far above the std, a constant map, B > 1), errors, the kernel under the emulator (and a real GPU)
//! vs the CPU, and the PyTorch golden from tests/golden/fixtures/cpjku_ops.safetensors:
//!
//! ```python
//! std_out = wx * (x - x.mean(dim=[2, 3], keepdim=True)) / (x.std(dim=[2, 3], keepdim=True) + 1e-6) \
//!         + wf * (f - f.mean(dim=[2, 3], keepdim=True)) / (f.std(dim=[2, 3], keepdim=True) + 1e-6)
//! # x = randn(2, 3, 7, 5)·2 + 1, f = randn(2, 3, 7, 5)·0.1 − 0.5, (wx, wf) = std_w = (0.7, 1.3)
//! ```
//! (tests/golden/cpjku_ops.py, torch 2.9.1 CPU, seed 7.)

use aural_runtime::ops::standardize::{standardize_add, standardize_add_version};
use aural_runtime::testing::{assert_close, fixture, fixture_path, gpu_devices, rand_tensor};
use aural_runtime::{Device, Tensor};

/// (shape, x offset, f offset).
fn cases() -> Vec<([usize; 4], f32, f32)> {
    vec![
        ([2, 3, 7, 5], 0.0, 0.0),
        ([1, 1, 1, 2], 0.0, 0.0),     // H·W = 2, the smallest
        ([1, 2, 2, 1], 0.5, -0.5),    // W = 1
        ([2, 4, 17, 19], 50.0, -3.0), // planes of 323 values (more than a block's 256 threads); mean ≫ std
        ([1, 3, 63, 16], 0.0, 0.0),   // the bottleneck's plane
    ]
}

fn offset_tensor(shape: &[usize], seed: u64, off: f32) -> Tensor {
    Tensor::from_vec(rand_tensor(shape, seed).to_vec().unwrap().into_iter().map(|v| v + off).collect(), shape).unwrap()
}

/// The formula in f64.
fn naive(x: &[f32], f: &[f32], [b, c, h, w]: [usize; 4], wx: f32, wf: f32, eps: f32) -> Vec<f32> {
    let n = h * w;
    let stats = |z: &[f32]| -> (f64, f64) {
        let mu = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = z.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mu, var.sqrt())
    };
    let mut out = Vec::with_capacity(x.len());
    for p in 0..b * c {
        let (xs, fs) = (&x[p * n..][..n], &f[p * n..][..n]);
        let ((mx, sx), (mf, sf)) = (stats(xs), stats(fs));
        for (&a, &g) in xs.iter().zip(fs) {
            let y = wx as f64 * (a as f64 - mx) / (sx + eps as f64) + wf as f64 * (g as f64 - mf) / (sf + eps as f64);
            out.push(y as f32);
        }
    }
    out
}

#[test]
fn cpu_matches_naive_loop() {
    for (i, (s, ox, of)) in cases().into_iter().enumerate() {
        let (x, f) = (offset_tensor(&s, 1400 + i as u64, ox), offset_tensor(&s, 1450 + i as u64, of));
        let got = standardize_add(&x, &f, 0.7, 1.3, 1e-6).unwrap();
        assert_eq!(got.shape(), &s);
        let want = naive(&x.to_vec().unwrap(), &f.to_vec().unwrap(), s, 0.7, 1.3, 1e-6);
        // Outputs up to ~8: (x − μ) and w/(σ + eps) rounded to f32, two products and a sum: ≤ ~4 ulp.
        assert_close(&format!("standardize_add cpu case {i} {s:?}"), &got.to_vec().unwrap(), &want, 3e-6, 1e-6);
    }
}

#[test]
fn a_constant_map_contributes_nothing() {
    // σ = 0: (x − μ) is exactly 0, so only wf·standardise(f) remains.
    let s = [2, 2, 3, 4];
    let x = Tensor::full(&s, 2.5, Device::Cpu).unwrap();
    let f = rand_tensor(&s, 5);
    let got = standardize_add(&x, &f, 0.7, 1.3, 1e-6).unwrap().to_vec().unwrap();
    let only_f = standardize_add(&Tensor::full(&s, 0.0, Device::Cpu).unwrap(), &f, 0.0, 1.3, 1e-6).unwrap().to_vec().unwrap();
    assert_eq!(got, only_f);
    assert!(got.iter().all(|v| v.is_finite()));
}

#[test]
fn errors_name_the_shapes() {
    let x = rand_tensor(&[1, 2, 3, 5], 1);
    let e = standardize_add(&x, &rand_tensor(&[1, 2, 5, 3], 2), 1.0, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("standardize_add") && e.contains("[1, 2, 3, 5]") && e.contains("[1, 2, 5, 3]"), "{e}");
    let e = standardize_add(&rand_tensor(&[2, 15], 3), &rand_tensor(&[2, 15], 4), 1.0, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("(B, C, H, W)") && e.contains("[2, 15]"), "{e}");
    let one = rand_tensor(&[2, 3, 1, 1], 5);
    let e = standardize_add(&one, &one, 1.0, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("H·W ≥ 2") && e.contains("[2, 3, 1, 1]"), "{e}");
    let e = standardize_add(&x, &x, f32::INFINITY, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("finite"), "{e}");
    let h = aural_runtime::ops::unary::to_f16(&x).unwrap();
    let e = standardize_add(&h, &h, 1.0, 1.0, 1e-6).unwrap_err().to_string();
    assert!(e.contains("standardize_add") && e.contains("f32"), "{e}");
    for dev in gpu_devices() {
        let xd = x.to_device(dev).unwrap();
        let e = standardize_add_version(&xd, &xd, 1.0, 1.0, 1e-6, Some(2)).unwrap_err().to_string();
        assert!(e.contains("standardize_add_fwd_f32_v2") && e.contains("no version 2"), "{e}");
        let e = standardize_add(&xd, &x, 1.0, 1.0, 1e-6).unwrap_err().to_string();
        assert!(e.contains("different devices"), "{e}");
    }
}

#[test]
fn kernel_matches_cpu() {
    let mut all = cases();
    all.push(([1, 384, 63, 16], 0.0, 0.0)); // the bench case
    for dev in gpu_devices() {
        for (i, (s, ox, of)) in all.iter().copied().enumerate() {
            let (x, f) = (offset_tensor(&s, 1500 + i as u64, ox), offset_tensor(&s, 1550 + i as u64, of));
            let want = standardize_add(&x, &f, 0.7, -1.3, 1e-6).unwrap().to_vec().unwrap();
            let (xd, fd) = (x.to_device(dev).unwrap(), f.to_device(dev).unwrap());
            for v in [None, Some(1)] {
                let got = standardize_add_version(&xd, &fd, 0.7, -1.3, 1e-6, v).unwrap_or_else(|e| panic!("{dev} {v:?}: {e}"));
                assert_eq!(got.device(), dev);
                assert_eq!(got.shape(), &s);
                // The CPU's operations but for the order of the f64 sums: (f32)(z − μ) and k agree
                // but for a rare 1-ulp rounding flip, ≤ 2 ulp of outputs below ~8.
                assert_close(&format!("{dev} standardize_add {v:?} case {i} {s:?}"), &got.to_vec().unwrap(), &want, 2e-6, 1e-6);
            }
        }
    }
}

#[test]
fn golden_pytorch_standardize_add() {
    let path = fixture_path("cpjku_ops.safetensors");
    if !path.exists() {
        eprintln!("golden standardize_add: SKIPPED ({} not written yet: run tests/golden/cpjku_ops.py)", path.display());
        return;
    }
    let fx = fixture("cpjku_ops.safetensors");
    let get = |k: &str| -> &Tensor { fx.get(k).unwrap_or_else(|| panic!("cpjku_ops.safetensors has no tensor {k}")) };
    let w = get("std_w").to_vec().unwrap();
    let want = get("std_out");
    let mut devs = vec![Device::Cpu];
    devs.extend(gpu_devices());
    for dev in devs {
        let got = standardize_add(&get("std_x").to_device(dev).unwrap(), &get("std_f").to_device(dev).unwrap(), w[0], w[1], 1e-6).unwrap();
        assert_eq!(got.shape(), want.shape(), "on {dev}");
        // PyTorch's f32 mean/std (x has mean 1 and std 2, f mean −0.5 and std 0.1) and its f32
        // divisions: a few ulps of outputs up to ~5.
        assert_close(&format!("standardize_add {dev} vs PyTorch"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 3e-6, 2e-6);
    }
}
