//! Layernorm over the last dim: CPU vs a naive f64 loop on odd shapes, properties (mean 0 / variance 1
//! without affine, affine = scale and shift of the plain result), shape errors, CPU vs PyTorch golden
//! values, and every kernel version under the emulator (and a real GPU when present) vs the CPU.

use aural_runtime::ops::layernorm::{layernorm, layernorm_version};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::Tensor;

fn naive(x: &[f32], w: Option<&[f32]>, b: Option<&[f32]>, eps: f32, len: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for row in x.chunks(len) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for (j, &v) in row.iter().enumerate() {
            let mut y = (v as f64 - mean) * rstd;
            if let Some(w) = w {
                y *= w[j] as f64;
            }
            if let Some(b) = b {
                y += b[j] as f64;
            }
            out.push(y as f32);
        }
    }
    out
}

fn input(rows: usize, len: usize, seed: u64) -> Tensor {
    Tensor::from_vec(rand_vec(rows * len, seed).iter().map(|v| 3.0 * v + 0.7).collect(), &[rows, len]).unwrap()
}

const CASES: &[(usize, usize)] = &[(1, 1), (3, 1), (1, 3), (3, 17), (17, 129), (129, 3), (2, 1214), (4, 768)];

#[test]
fn cpu_matches_naive() {
    for (ci, &(rows, len)) in CASES.iter().enumerate() {
        let x = input(rows, len, 30 + ci as u64);
        let w = rand_tensor(&[len], 1);
        let b = rand_tensor(&[len], 2);
        let xv = x.to_vec().unwrap();
        let (wv, bv) = (w.to_vec().unwrap(), b.to_vec().unwrap());
        for (wo, bo) in [(None, None), (Some(&w), None), (Some(&w), Some(&b)), (None, Some(&b))] {
            let got = layernorm(&x, wo, bo, 1e-5).unwrap();
            assert_eq!(got.shape(), &[rows, len]);
            let want = naive(&xv, wo.map(|_| &wv[..]), bo.map(|_| &bv[..]), 1e-5, len);
            assert_close(&format!("layernorm {rows}x{len} w{} b{}", wo.is_some(), bo.is_some()), &got.to_vec().unwrap(), &want, 1e-5, 1e-5);
        }
    }
}

#[test]
fn plain_output_has_mean_zero_and_unit_variance() {
    for &(rows, len) in &[(3usize, 17usize), (5, 768), (2, 1214)] {
        let y = layernorm(&input(rows, len, 9), None, None, 1e-12).unwrap().to_vec().unwrap();
        for r in y.chunks(len) {
            let m = r.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let v = r.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / len as f64;
            assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5, "{rows}x{len}: mean {m}, var {v}");
        }
    }
}

#[test]
fn constant_rows_give_bias() {
    // var = 0: (x − μ) = 0 exactly, so the output is the bias (eps keeps it finite).
    let x = Tensor::from_vec(vec![2.5; 6], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![1.0, -1.0, 0.5], &[3]).unwrap();
    let y = layernorm(&x, None, Some(&b), 1e-5).unwrap().to_vec().unwrap();
    assert_eq!(y, vec![1.0, -1.0, 0.5, 1.0, -1.0, 0.5]);
}

#[test]
fn shape_errors_name_the_shapes() {
    let x = rand_tensor(&[2, 3], 1);
    let w = rand_tensor(&[4], 2);
    let e = layernorm(&x, Some(&w), None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("[4]") && e.contains("[2, 3]") && e.contains("weight"), "{e}");
    let e = layernorm(&x, None, Some(&rand_tensor(&[3, 1], 3)), 1e-5).unwrap_err().to_string();
    assert!(e.contains("[3, 1]") && e.contains("bias"), "{e}");
}

/// Golden values from PyTorch 2.9.1 (tests/golden/ops.py, seed 0):
/// ```python
/// lx = torch.randn(4, 129) * 2.0 + 0.5; lw = torch.randn(129); lb = torch.randn(129)
/// F.layer_norm(lx, (129,), lw, lb, 1e-5); F.layer_norm(lx, (129,), None, None, 1e-5)
/// F.layer_norm(lx, (129,), lw, None, 1e-5)
/// ax = torch.randn(3, 768) * 0.7 - 0.2; F.layer_norm(ax, (768,), None, None, 1e-12)
/// ```
#[test]
fn cpu_matches_pytorch_golden() {
    let f = fixture("ops.safetensors");
    let (x, w, b) = (&f["layernorm.x"], &f["layernorm.weight"], &f["layernorm.bias"]);
    let cases = [
        ("layernorm.y_affine_eps1e-5", layernorm(x, Some(w), Some(b), 1e-5)),
        ("layernorm.y_plain_eps1e-5", layernorm(x, None, None, 1e-5)),
        ("layernorm.y_weight_only_eps1e-5", layernorm(x, Some(w), None, 1e-5)),
        ("layernorm.ast_y_plain_eps1e-12", layernorm(&f["layernorm.ast_x"], None, None, 1e-12)),
    ];
    for (name, got) in cases {
        assert_close(name, &got.unwrap().to_vec().unwrap(), &f[name].to_vec().unwrap(), 1e-5, 1e-5);
    }
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for (ci, &(rows, len)) in [(1usize, 1usize), (3, 1), (2, 13), (17, 3), (9, 33), (5, 129), (3, 300), (2, 1214)].iter().enumerate() {
            let x = input(rows, len, 90 + ci as u64);
            let w = rand_tensor(&[len], 3);
            let b = rand_tensor(&[len], 4);
            let (gx, gw, gb) = (x.to_device(dev).unwrap(), w.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            for (wo, bo) in [(false, false), (true, false), (true, true), (false, true)] {
                let want = layernorm(&x, wo.then_some(&w), bo.then_some(&b), 1e-5).unwrap().to_vec().unwrap();
                for v in [1u32, 2] {
                    let got = layernorm_version(&gx, wo.then_some(&gw), bo.then_some(&gb), 1e-5, v).unwrap_or_else(|e| panic!("{dev} v{v}: {e}"));
                    assert_close(&format!("{dev} layernorm v{v} {rows}x{len} w{wo} b{bo}"), &got.to_vec().unwrap(), &want, 1e-5, 1e-5);
                }
            }
        }
    }
}
