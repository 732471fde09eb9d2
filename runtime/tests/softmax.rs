//! Softmax over the last dim: CPU vs a naive f64 loop on odd shapes, properties (rows sum to 1,
//! shift invariance, masking, all -inf → NaN), CPU vs PyTorch golden values, and every kernel
//! version under the emulator (and a real GPU when present) vs the CPU.

use aural_runtime::ops::softmax::{default_version, softmax, softmax_version};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_vec};
use aural_runtime::Tensor;

fn naive(x: &[f32], len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(len) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        out.extend(row.iter().map(|&v| ((v as f64 - m).exp() / s) as f32));
    }
    out
}

fn input(rows: usize, len: usize, seed: u64, scale: f32) -> Tensor {
    Tensor::from_vec(rand_vec(rows * len, seed).iter().map(|v| v * scale).collect(), &[rows, len]).unwrap()
}

const CASES: &[(usize, usize)] = &[(1, 1), (3, 1), (1, 3), (3, 17), (17, 129), (129, 3), (2, 1214), (5, 1214), (1, 2048)];

#[test]
fn cpu_matches_naive_and_rows_sum_to_one() {
    for (ci, &(rows, len)) in CASES.iter().enumerate() {
        let x = input(rows, len, 20 + ci as u64, 8.0);
        let y = softmax(&x).unwrap();
        assert_eq!(y.shape(), &[rows, len]);
        let yv = y.to_vec().unwrap();
        assert_close(&format!("softmax {rows}x{len}"), &yv, &naive(&x.to_vec().unwrap(), len), 1e-8, 1e-5);
        for r in 0..rows {
            let s: f64 = yv[r * len..(r + 1) * len].iter().map(|&v| v as f64).sum();
            assert!((s - 1.0).abs() < 1e-5, "row {r} sums to {s}");
        }
    }
}

#[test]
fn shift_invariant_and_handles_large_values() {
    let x = input(3, 129, 5, 4.0);
    let shifted = Tensor::from_vec(x.to_vec().unwrap().iter().map(|v| v + 1000.0).collect(), &[3, 129]).unwrap();
    let a = softmax(&x).unwrap().to_vec().unwrap();
    let b = softmax(&shifted).unwrap().to_vec().unwrap();
    // x + 1000 rounds x to f32's grid near 1000 (ulp 6e-5): compare loosely.
    assert_close("shift", &b, &a, 1e-6, 1e-3);
    assert!(b.iter().all(|v| v.is_finite()));
}

#[test]
fn masking_and_all_neg_inf_rows_like_torch() {
    let ni = f32::NEG_INFINITY;
    let x = Tensor::from_vec(vec![ni, ni, ni, 0.0, ni, 0.0, 1.0, 2.0, ni], &[3, 3]).unwrap();
    let y = softmax(&x).unwrap().to_vec().unwrap();
    assert!(y[..3].iter().all(|v| v.is_nan()), "all -inf row must be NaN like torch: {y:?}");
    assert_eq!(&y[3..6], &[0.5, 0.0, 0.5]);
    assert_eq!(y[8], 0.0);
    let nan = Tensor::from_vec(vec![0.0, f32::NAN, 1.0], &[1, 3]).unwrap();
    assert!(softmax(&nan).unwrap().to_vec().unwrap().iter().all(|v| v.is_nan()));
}

#[test]
fn rank_zero_is_an_error() {
    let e = softmax(&Tensor::from_vec(vec![1.0], &[]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("softmax") && e.contains("[]"), "{e}");
}

/// Golden values from PyTorch 2.9.1 (tests/golden/ops.py, seed 0):
/// ```python
/// sx = torch.randn(5, 17) * 3.0; sx[2, :] = float("-inf"); sx[3, ::3] = float("-inf")
/// torch.softmax(sx, dim=-1)
/// sl = torch.randn(2, 1214) * 4.0; torch.softmax(sl, dim=-1)
/// ```
#[test]
fn cpu_matches_pytorch_golden() {
    let f = fixture("ops.safetensors");
    for (x, y) in [("softmax.x", "softmax.y"), ("softmax.long_x", "softmax.long_y")] {
        let got = softmax(&f[x]).unwrap();
        assert_close(y, &got.to_vec().unwrap(), &f[y].to_vec().unwrap(), 1e-8, 1e-5);
    }
}

#[test]
fn dispatcher_picks_block_per_row_for_long_rows() {
    assert_eq!(default_version(13), 2);
    assert_eq!(default_version(768), 2);
    assert_eq!(default_version(1214), 3);
}

#[test]
fn kernels_match_cpu() {
    let ni = f32::NEG_INFINITY;
    for dev in gpu_devices() {
        // Row lengths: 1, below/above a warp, not multiples of 32 or of v3's 256-thread block.
        let mut cases: Vec<Tensor> = [(1usize, 1usize), (3, 1), (2, 13), (17, 3), (9, 33), (5, 129), (3, 300), (2, 1214)]
            .iter()
            .enumerate()
            .map(|(i, &(r, l))| input(r, l, 70 + i as u64, 6.0))
            .collect();
        // Masked entries and an all -inf row.
        cases.push(Tensor::from_vec(vec![ni, ni, ni, ni, 0.5, ni, 1.0, 2.0, ni, 3.0, 0.0, 0.0], &[3, 4]).unwrap());
        for x in &cases {
            let want = softmax(x).unwrap().to_vec().unwrap();
            let gx = x.to_device(dev).unwrap();
            for v in [1u32, 2, 3] {
                let got = softmax_version(&gx, v).unwrap_or_else(|e| panic!("{dev} v{v}: {e}"));
                assert_close(&format!("{dev} softmax v{v} {:?}", x.shape()), &got.to_vec().unwrap(), &want, 1e-7, 1e-5);
            }
            assert_close(&format!("{dev} softmax auto {:?}", x.shape()), &softmax(&gx).unwrap().to_vec().unwrap(), &want, 1e-7, 1e-5);
        }
    }
}
