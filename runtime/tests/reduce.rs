//! Reductions (sum, mean, max over one axis): CPU vs naive f64 loops over every axis of odd shapes,
//! keepdim and negative axes, long-sum accuracy, NaN propagation of max, shape errors, CPU vs PyTorch
//! golden values, and every kernel version under the emulator (and a real GPU when present) vs the CPU.

use aural_runtime::ops::reduce::{default_version, max, mean, reduce, reduce_shape, reduce_version, sum, ReduceOp};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor};
use aural_runtime::Tensor;

fn naive(op: ReduceOp, x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            let vals = (0..len).map(|l| x[(o * len + l) * inner + i] as f64);
            out.push(match op {
                ReduceOp::Sum => vals.sum::<f64>() as f32,
                ReduceOp::Mean => (vals.sum::<f64>() / len as f64) as f32,
                ReduceOp::Max => vals.fold(f64::NEG_INFINITY, f64::max) as f32,
            });
        }
    }
    out
}

const SHAPES: &[&[usize]] = &[&[1], &[17], &[3, 1], &[1, 3], &[3, 17, 5], &[129, 3], &[2, 1214], &[1214, 3], &[4, 1, 129]];

#[test]
fn cpu_matches_naive_on_every_axis() {
    for (si, s) in SHAPES.iter().enumerate() {
        let x = rand_tensor(s, 40 + si as u64);
        let xv = x.to_vec().unwrap();
        for axis in 0..s.len() {
            for op in ReduceOp::ALL {
                let want = naive(op, &xv, s, axis);
                for keepdim in [false, true] {
                    let got = reduce(op, &x, axis as isize, keepdim).unwrap();
                    let mut shape = s.to_vec();
                    if keepdim {
                        shape[axis] = 1;
                    } else {
                        shape.remove(axis);
                    }
                    assert_eq!(got.shape(), &shape[..], "{op:?} {s:?} axis {axis} keepdim {keepdim}");
                    let (atol, rtol) = if op == ReduceOp::Max { (0.0, 0.0) } else { (1e-5, 1e-5) };
                    assert_close(&format!("{op:?} {s:?} axis {axis}"), &got.to_vec().unwrap(), &want, atol, rtol);
                }
                let neg = reduce(op, &x, axis as isize - s.len() as isize, false).unwrap();
                assert_close("negative axis", &neg.to_vec().unwrap(), &reduce(op, &x, axis as isize, false).unwrap().to_vec().unwrap(), 0.0, 0.0);
            }
        }
    }
}

#[test]
fn long_sums_are_accurate() {
    // 1e6 values of 0.1 (f32): naive f32 accumulation drifts by ~1e-3 relative; pairwise / Kahan don't.
    let n = 1_000_000;
    let x = Tensor::from_vec(vec![0.1f32; n], &[n]).unwrap();
    let want = (0.1f32 as f64 * n as f64) as f32;
    let got = sum(&x, 0, false).unwrap().to_vec().unwrap()[0];
    assert!(((got - want) / want).abs() < 1e-6, "row sum {got} vs {want}");
    let col = Tensor::from_vec(vec![0.1f32; n], &[n, 1]).unwrap();
    let got = sum(&col.reshape(&[n / 4, 4]).unwrap(), 0, false).unwrap().to_vec().unwrap();
    let want = (0.1f32 as f64 * (n / 4) as f64) as f32;
    assert!(got.iter().all(|g| ((g - want) / want).abs() < 1e-6), "column sums {got:?} vs {want}");
}

#[test]
fn max_propagates_nan_and_mean_of_empty_is_nan() {
    let x = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 2.0, 5.0, 4.0], &[2, 3]).unwrap();
    let m = max(&x, 1, false).unwrap().to_vec().unwrap();
    assert!(m[0].is_nan() && m[1] == 5.0);
    let e = Tensor::from_vec(vec![], &[2, 0]).unwrap();
    assert!(mean(&e, 1, false).unwrap().to_vec().unwrap().iter().all(|v| v.is_nan()));
    assert_eq!(sum(&e, 1, false).unwrap().to_vec().unwrap(), vec![0.0, 0.0]);
    assert!(max(&e, 1, false).is_err());
}

#[test]
fn axis_errors_name_the_shape() {
    let e = sum(&rand_tensor(&[2, 3], 1), 2, false).unwrap_err().to_string();
    assert!(e.contains("axis 2") && e.contains("[2, 3]"), "{e}");
    let e = mean(&rand_tensor(&[2, 3], 1), -3, false).unwrap_err().to_string();
    assert!(e.contains("axis -3") && e.contains("[2, 3]"), "{e}");
}

/// Golden values from PyTorch 2.9.1 (tests/golden/ops.py, seed 0):
/// ```python
/// rx = torch.randn(3, 17, 5)
/// rx.sum(dim=a); rx.mean(dim=a); rx.amax(dim=a)          # a = 0, 1, 2
/// rl = torch.randn(2, 1214) + 0.5
/// rl.sum(dim=-1, keepdim=True); rl.mean(dim=-1, keepdim=True)
/// ```
#[test]
fn cpu_matches_pytorch_golden() {
    let f = fixture("ops.safetensors");
    let x = &f["reduce.x"];
    for a in 0..3isize {
        for (name, got) in [("sum", sum(x, a, false)), ("mean", mean(x, a, false)), ("max", max(x, a, false))] {
            let key = format!("reduce.{name}_axis{a}");
            let got = got.unwrap();
            assert_eq!(got.shape(), f[&key].shape());
            assert_close(&key, &got.to_vec().unwrap(), &f[&key].to_vec().unwrap(), 1e-6, 1e-5);
        }
    }
    let l = &f["reduce.long_x"];
    for (key, got) in [("reduce.long_sum", sum(l, -1, true)), ("reduce.long_mean", mean(l, -1, true))] {
        let got = got.unwrap();
        assert_eq!(got.shape(), &[2, 1]);
        assert_close(key, &got.to_vec().unwrap(), &f[key].to_vec().unwrap(), 1e-5, 1e-5);
    }
}

#[test]
fn dispatcher_choices() {
    assert_eq!(default_version(&reduce_shape("t", &[12, 101, 768], 0, false).unwrap()), 1);
    assert_eq!(default_version(&reduce_shape("t", &[1214, 768], -1, false).unwrap()), 2);
    assert_eq!(default_version(&reduce_shape("t", &[4, 17], -1, false).unwrap()), 1);
}

#[test]
fn kernels_match_cpu() {
    let emu_shapes: &[&[usize]] = &[&[1], &[3, 1], &[1, 3], &[3, 17, 5], &[2, 300], &[3, 129, 2], &[1214, 1], &[2, 1214]];
    for dev in gpu_devices() {
        for (si, s) in emu_shapes.iter().enumerate() {
            let x = rand_tensor(s, 60 + si as u64);
            let gx = x.to_device(dev).unwrap();
            for axis in 0..s.len() as isize {
                for op in ReduceOp::ALL {
                    for keepdim in [false, true] {
                        let want = reduce(op, &x, axis, keepdim).unwrap();
                        for v in [1u32, 2] {
                            let got = reduce_version(op, &gx, axis, keepdim, v).unwrap_or_else(|e| panic!("{dev} {op:?} v{v}: {e}"));
                            assert_eq!(got.shape(), want.shape());
                            let (atol, rtol) = if op == ReduceOp::Max { (0.0, 0.0) } else { (1e-5, 1e-5) };
                            assert_close(&format!("{dev} {op:?} v{v} {s:?} axis {axis}"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), atol, rtol);
                        }
                    }
                }
            }
        }
        // NaN propagation on the device.
        let x = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 2.0, 5.0, 4.0], &[2, 3]).unwrap().to_device(dev).unwrap();
        for v in [1u32, 2] {
            let m = reduce_version(ReduceOp::Max, &x, 1, false, v).unwrap().to_vec().unwrap();
            assert!(m[0].is_nan() && m[1] == 5.0, "{dev} max v{v}: {m:?}");
        }
    }
}
