//! Average pooling (kernel = stride): CPU vs a naive f64 loop (odd H/W floored, windows (1, 2),
//! (2, 2), (1, 1), (3, 2), size-1 outputs, B = 2), errors, the kernel under the emulator (and a real
//! GPU) vs the CPU — bit-identical, since the kernel sums in the CPU's order and divides the same
//! way — and the PyTorch golden from tests/golden/fixtures/separator_ops.safetensors:
//!
//! ```python
//! pool22_out = F.avg_pool2d(pool22_x, (2, 2))   # pool22_x (2, 3, 7, 9) → (2, 3, 3, 4)
//! pool12_out = F.avg_pool2d(pool12_x, (1, 2))   # pool12_x (2, 3, 6, 9) → (2, 3, 6, 4)
//! ```
//! (tests/golden/separator.py, torch 2.9.1 CPU, seed 100.)

use aural_runtime::ops::pool::{avg_pool2d, avg_pool2d_version};
use aural_runtime::testing::{assert_close, fixture_path, gpu_devices, rand_tensor};
use aural_runtime::Tensor;

/// (shape (B, C, H, W), window (kh, kw)).
fn cases() -> Vec<([usize; 4], (usize, usize))> {
    vec![
        ([2, 3, 7, 9], (2, 2)),   // odd H and W: last row and column dropped
        ([1, 2, 6, 9], (1, 2)),   // the encoder's (1, 2), odd W
        ([2, 2, 5, 3], (1, 1)),   // identity window
        ([1, 1, 2, 2], (2, 2)),   // a single output
        ([1, 3, 8, 5], (3, 2)),   // kh ≠ kw, both floored
        ([2, 4, 66, 70], (2, 2)), // more than one 256-thread block
    ]
}

/// F.avg_pool2d in f64.
fn naive(x: &[f32], [b, c, h, w]: [usize; 4], (kh, kw): (usize, usize)) -> Vec<f32> {
    let (ho, wo) = (h / kh, w / kw);
    let mut out = Vec::with_capacity(b * c * ho * wo);
    for p in 0..b * c {
        for oh in 0..ho {
            for ow in 0..wo {
                let mut s = 0f64;
                for i in 0..kh {
                    for j in 0..kw {
                        s += x[(p * h + oh * kh + i) * w + ow * kw + j] as f64;
                    }
                }
                out.push((s / (kh * kw) as f64) as f32);
            }
        }
    }
    out
}

#[test]
fn cpu_matches_naive_loop() {
    for (i, (s, k)) in cases().into_iter().enumerate() {
        let x = rand_tensor(&s, 300 + i as u64);
        let got = avg_pool2d(&x, k).unwrap();
        assert_eq!(got.shape(), &[s[0], s[1], s[2] / k.0, s[3] / k.1], "case {i}");
        // The f32 sum of ≤ 6 terms in [-1, 1) vs f64: a few ulps of the sum.
        assert_close(&format!("avg_pool2d cpu case {i} {s:?} {k:?}"), &got.to_vec().unwrap(), &naive(&x.to_vec().unwrap(), s, k), 1e-6, 1e-6);
    }
}

#[test]
fn errors_name_the_shapes() {
    let x = rand_tensor(&[1, 2, 3, 5], 1);
    let e = avg_pool2d(&x, (4, 2)).unwrap_err().to_string();
    assert!(e.contains("avg_pool2d") && e.contains("[1, 2, 3, 5]") && e.contains("(4, 2)"), "{e}");
    let e = avg_pool2d(&x, (0, 1)).unwrap_err().to_string();
    assert!(e.contains("[1, 2, 3, 5]"), "{e}");
    let e = avg_pool2d(&rand_tensor(&[2, 3, 5], 2), (1, 1)).unwrap_err().to_string();
    assert!(e.contains("(B, C, H, W)") && e.contains("[2, 3, 5]"), "{e}");
    for dev in gpu_devices() {
        let e = avg_pool2d_version(&x.to_device(dev).unwrap(), (1, 2), Some(2)).unwrap_err().to_string();
        assert!(e.contains("avg_pool2d_fwd_f32_v2") && e.contains("no version 2"), "{e}");
    }
}

#[test]
fn kernel_matches_cpu_exactly() {
    for dev in gpu_devices() {
        for (i, (s, k)) in cases().into_iter().enumerate() {
            let x = rand_tensor(&s, 400 + i as u64);
            let want = avg_pool2d(&x, k).unwrap().to_vec().unwrap();
            let xd = x.to_device(dev).unwrap();
            for v in [None, Some(1)] {
                let got = avg_pool2d_version(&xd, k, v).unwrap_or_else(|e| panic!("{dev} {v:?}: {e}"));
                assert_eq!(got.device(), dev);
                assert_eq!(got.shape(), &[s[0], s[1], s[2] / k.0, s[3] / k.1]);
                let got = got.to_vec().unwrap();
                // Same additions in the same order and the same division: bit-identical.
                let bad = got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
                assert!(
                    bad.is_none(),
                    "{dev} avg_pool2d {v:?} case {i}: first difference at {}: {} vs {}",
                    bad.unwrap(),
                    got[bad.unwrap()],
                    want[bad.unwrap()]
                );
            }
        }
    }
}

#[test]
fn golden_pytorch_avg_pool2d() {
    let path = fixture_path("separator_ops.safetensors");
    if !path.exists() {
        eprintln!("golden avg_pool2d: SKIPPED ({} not written yet: run tests/golden/separator.py)", path.display());
        return;
    }
    let fx = aural_runtime::testing::fixture("separator_ops.safetensors");
    let get = |k: &str| -> &Tensor { fx.get(k).unwrap_or_else(|| panic!("separator_ops.safetensors has no tensor {k}")) };
    for (name, k) in [("pool22", (2, 2)), ("pool12", (1, 2))] {
        let x = get(&format!("{name}_x"));
        let want = get(&format!("{name}_out"));
        let mut devs = vec![aural_runtime::Device::Cpu];
        devs.extend(gpu_devices());
        for dev in devs {
            let got = avg_pool2d(&x.to_device(dev).unwrap(), k).unwrap();
            assert_eq!(got.shape(), want.shape(), "{name} on {dev}");
            // torch sums in its own order: a few ulps.
            assert_close(&format!("{name} {dev} vs PyTorch"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-6, 1e-6);
        }
    }
}
