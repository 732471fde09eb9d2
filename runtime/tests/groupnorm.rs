//! Group normalisation (`nn.GroupNorm`) with the fused residual: CPU vs a naive f64 loop (rank 2, 3
//! and 4, one group, one channel per group, a single value per group, groups longer than a block,
//! a mean far above the std with eps 1e-8, N > 1), errors, both kernel versions under the emulator
//! (and a real GPU) vs the CPU (v2 on groups split into 2 and 95 chunks), and the PyTorch golden
//! from tests/golden/fixtures/cpjku_ops.safetensors:
//!
//! ```python
//! gn = nn.GroupNorm(1, 8, eps=1e-8)              # random weight and bias
//! gn1_out = gn1_res + gn(gn1_x)                  # gn1_x (2, 8, 7, 5) = randn·0.5 + 3
//! gn2_out = nn.GroupNorm(2, 6)(gn2_x)            # (3, 6, 9, 4), eps 1e-5, random affine, no residual
//! gn3_out = nn.GroupNorm(3, 6)(gn3_x)            # (2, 6, 5), rank 3
//! ```
//! (tests/golden/cpjku_ops.py, torch 2.9.1 CPU, seed 7.)

use aural_runtime::ops::groupnorm::{group_norm, group_norm_version};
use aural_runtime::testing::{assert_close, fixture, fixture_path, gpu_devices, rand_tensor};
use aural_runtime::{Device, Tensor};

/// One case: shape, groups, eps, residual, offset added to x.
struct Case {
    shape: Vec<usize>,
    groups: usize,
    eps: f32,
    residual: bool,
    offset: f32,
}

fn case(shape: &[usize], groups: usize, eps: f32, residual: bool, offset: f32) -> Case {
    Case { shape: shape.to_vec(), groups, eps, residual, offset }
}

fn cases() -> Vec<Case> {
    vec![
        case(&[2, 6, 5, 4], 2, 1e-5, true, 0.0),
        case(&[1, 8, 7], 1, 1e-8, false, 0.0),         // rank 3, the DPRNN's single group
        case(&[3, 4], 2, 1e-5, true, 0.0),             // rank 2: S = 1
        case(&[2, 6, 3, 3], 6, 1e-5, false, 0.0),      // one channel per group (instance norm)
        case(&[1, 4, 1, 1], 4, 1e-5, true, 0.0),       // one value per group: σ² = 0, y = bias
        case(&[2, 16, 33, 17], 4, 1e-8, true, 100.0),  // groups of 2244 values; mean 100 ≫ std 0.58
        case(&[1, 3, 2, 5, 3], 3, 1e-6, false, -20.0), // rank 5
    ]
}

struct Inputs {
    x: Tensor,
    w: Tensor,
    b: Tensor,
    r: Option<Tensor>,
}

fn inputs(c: &Case, seed: u64) -> Inputs {
    let ch = c.shape[1];
    let x = rand_tensor(&c.shape, seed).to_vec().unwrap().into_iter().map(|v| v + c.offset).collect();
    let w = rand_tensor(&[ch], seed + 1).to_vec().unwrap().into_iter().map(|v| v + 1.0).collect();
    Inputs {
        x: Tensor::from_vec(x, &c.shape).unwrap(),
        w: Tensor::from_vec(w, &[ch]).unwrap(),
        b: rand_tensor(&[ch], seed + 2),
        r: c.residual.then(|| rand_tensor(&c.shape, seed + 3)),
    }
}

/// nn.GroupNorm (+ residual) in f64.
fn naive(x: &[f32], shape: &[usize], groups: usize, w: &[f32], b: &[f32], eps: f32, r: Option<&[f32]>) -> Vec<f32> {
    let (n, c) = (shape[0], shape[1]);
    let s: usize = shape[2..].iter().product();
    let m = c / groups * s;
    let mut out = vec![0f32; x.len()];
    for item in 0..n {
        for g in 0..groups {
            let base = (item * c) * s + g * m;
            let xs = &x[base..base + m];
            let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
            let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m as f64;
            for (j, &v) in xs.iter().enumerate() {
                let ch = g * (c / groups) + j / s;
                let mut y = (v as f64 - mean) / (var + eps as f64).sqrt() * w[ch] as f64 + b[ch] as f64;
                if let Some(r) = r {
                    y += r[base + j] as f64;
                }
                out[base + j] = y as f32;
            }
        }
    }
    out
}

#[test]
fn cpu_matches_naive_loop() {
    for (i, c) in cases().iter().enumerate() {
        let t = inputs(c, 900 + 10 * i as u64);
        let got = group_norm(&t.x, c.groups, &t.w, &t.b, c.eps, t.r.as_ref()).unwrap();
        assert_eq!(got.shape(), &c.shape[..]);
        let r = t.r.as_ref().map(|r| r.to_vec().unwrap());
        let want = naive(&t.x.to_vec().unwrap(), &c.shape, c.groups, &t.w.to_vec().unwrap(), &t.b.to_vec().unwrap(), c.eps, r.as_deref());
        // Outputs up to ~6 in magnitude: (x − μ) and rstd·w each rounded to f32, then a product and
        // one or two sums: ≤ ~4 ulp, i.e. 2e-6 absolute near 6 (the f64 statistics add nothing).
        assert_close(&format!("group_norm cpu case {i} {:?} G={}", c.shape, c.groups), &got.to_vec().unwrap(), &want, 2e-6, 1e-6);
    }
}

#[test]
fn errors_name_the_shapes() {
    let x = rand_tensor(&[2, 6, 5], 1);
    let (w, b) = (rand_tensor(&[6], 2), rand_tensor(&[6], 3));
    let e = group_norm(&rand_tensor(&[6], 4), 1, &w, &b, 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("group_norm") && e.contains("rank ≥ 2") && e.contains("[6]"), "{e}");
    let e = group_norm(&x, 4, &w, &b, 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("4 groups") && e.contains("6 channels") && e.contains("[2, 6, 5]"), "{e}");
    let e = group_norm(&x, 0, &w, &b, 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("0 groups"), "{e}");
    let e = group_norm(&x, 2, &rand_tensor(&[5], 5), &b, 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("weight [5]") && e.contains("[6]") && e.contains("[2, 6, 5]"), "{e}");
    let e = group_norm(&x, 2, &w, &rand_tensor(&[2, 3], 5), 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("bias [2, 3]"), "{e}");
    let e = group_norm(&x, 2, &w, &b, 1e-5, Some(&rand_tensor(&[2, 6, 4], 6))).unwrap_err().to_string();
    assert!(e.contains("residual [2, 6, 4]") && e.contains("[2, 6, 5]"), "{e}");
    let e = group_norm(&x, 2, &w, &b, f32::NAN, None).unwrap_err().to_string();
    assert!(e.contains("eps"), "{e}");
    let e = group_norm(&aural_runtime::ops::unary::to_f16(&x).unwrap(), 2, &w, &b, 1e-5, None).unwrap_err().to_string();
    assert!(e.contains("group_norm") && e.contains("f32"), "{e}");
    for dev in gpu_devices() {
        let (xd, wd, bd) = (x.to_device(dev).unwrap(), w.to_device(dev).unwrap(), b.to_device(dev).unwrap());
        let e = group_norm_version(&xd, 2, &wd, &bd, 1e-5, None, Some(3)).unwrap_err().to_string();
        assert!(e.contains("groupnorm_fwd_f32_v3") && e.contains("no version 3"), "{e}");
        let e = group_norm(&xd, 2, &w, &bd, 1e-5, None).unwrap_err().to_string();
        assert!(e.contains("different devices"), "{e}");
    }
}

#[test]
fn kernel_matches_cpu() {
    let mut all = cases();
    all.push(case(&[2, 6, 37, 41], 2, 1e-5, true, 0.0)); // v2: two chunks per group, the last one shorter
    all.push(case(&[1, 384, 63, 16], 1, 1e-8, true, 0.5)); // the DPRNN's map (v2: 95 chunks)
    for dev in gpu_devices() {
        for (i, c) in all.iter().enumerate() {
            let t = inputs(c, 1000 + 10 * i as u64);
            let want = group_norm(&t.x, c.groups, &t.w, &t.b, c.eps, t.r.as_ref()).unwrap().to_vec().unwrap();
            let d = |t: &Tensor| t.to_device(dev).unwrap();
            let (xd, wd, bd, rd) = (d(&t.x), d(&t.w), d(&t.b), t.r.as_ref().map(d));
            for v in [None, Some(1), Some(2)] {
                let got = group_norm_version(&xd, c.groups, &wd, &bd, c.eps, rd.as_ref(), v).unwrap_or_else(|e| panic!("{dev} {v:?}: {e}"));
                assert_eq!(got.device(), dev);
                assert_eq!(got.shape(), &c.shape[..]);
                // The same operations as the CPU except the order of the f64 sums (v2 also combines
                // per-chunk moments): μ and σ² agree to ~1e-15 relative, so (f32)(x − μ) and (f32)(rstd·w) agree but for a rare 1-ulp
                // rounding flip: ≤ 1 ulp of outputs below ~8 (9.5e-7).
                assert_close(&format!("{dev} group_norm {v:?} case {i} {:?}", c.shape), &got.to_vec().unwrap(), &want, 1e-6, 1e-6);
            }
        }
    }
}

#[test]
fn golden_pytorch_group_norm() {
    let path = fixture_path("cpjku_ops.safetensors");
    if !path.exists() {
        eprintln!("golden group_norm: SKIPPED ({} not written yet: run tests/golden/cpjku_ops.py)", path.display());
        return;
    }
    let fx = fixture("cpjku_ops.safetensors");
    let get = |k: &str| -> &Tensor { fx.get(k).unwrap_or_else(|| panic!("cpjku_ops.safetensors has no tensor {k}")) };
    let mut devs = vec![Device::Cpu];
    devs.extend(gpu_devices());
    for dev in devs {
        for (name, groups, residual) in [("gn1", 1, true), ("gn2", 2, false), ("gn3", 3, false)] {
            let d = |k: &str| get(&format!("{name}_{k}")).to_device(dev).unwrap();
            let eps = get(&format!("{name}_eps")).to_vec().unwrap()[0];
            let r = residual.then(|| d("res"));
            let got = group_norm(&d("x"), groups, &d("weight"), &d("bias"), eps, r.as_ref()).unwrap();
            let want = get(&format!("{name}_out"));
            assert_eq!(got.shape(), want.shape(), "{name} on {dev}");
            // PyTorch accumulates the moments in f32 and normalises in f32: a few ulps of outputs
            // up to ~5 (its f32 variance of values around 3 is good to ~1e-6 relative).
            assert_close(&format!("{name} {dev} vs PyTorch"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 3e-6, 2e-6);
        }
    }
}
