//! Binary ops: CPU vs a naive broadcasting loop on odd shapes; every kernel version under the
//! emulator (and a real GPU when present) vs the CPU.

use aural_runtime::ops::binary::{binary, binary_version, BinaryOp};
use aural_runtime::testing::{assert_close, gpu_devices, rand_tensor};
use aural_runtime::{numel, Tensor};

/// Naive reference: explicit NumPy broadcasting with index arithmetic.
fn naive(op: BinaryOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let r = sa.len().max(sb.len());
    let pad = |s: &[usize]| -> Vec<usize> { vec![1; r - s.len()].into_iter().chain(s.iter().copied()).collect() };
    let (pa, pb) = (pad(sa), pad(sb));
    let out: Vec<usize> = (0..r).map(|i| pa[i].max(pb[i])).collect();
    let n = numel(&out);
    let mut v = Vec::with_capacity(n);
    for lin in 0..n {
        let mut rem = lin;
        let mut idx = vec![0; r];
        for d in (0..r).rev() {
            idx[d] = rem % out[d];
            rem /= out[d];
        }
        let off = |p: &[usize]| -> usize {
            let mut o = 0;
            for d in 0..r {
                o = o * p[d] + if p[d] == 1 { 0 } else { idx[d] };
            }
            o
        };
        v.push(op.apply(a[off(&pa)], b[off(&pb)]));
    }
    (v, out)
}

const CASES: &[(&[usize], &[usize])] = &[
    (&[1], &[1]),
    (&[17], &[17]),
    (&[3, 129], &[129]),
    (&[129], &[3, 129]),
    (&[2, 3, 17], &[3, 1]),
    (&[5, 1, 7], &[1, 3, 1]),
    (&[4, 1], &[1]),
    (&[2, 3, 4, 5], &[2, 1, 4, 1]),
    (&[1000, 3], &[1000, 3]),
];

#[test]
fn cpu_matches_naive_broadcasting() {
    for (ci, (sa, sb)) in CASES.iter().enumerate() {
        let a = rand_tensor(sa, 10 + ci as u64);
        let b = rand_tensor(sb, 100 + ci as u64).to_vec().unwrap().iter().map(|x| x + 1.5).collect::<Vec<_>>();
        let b = Tensor::from_vec(b, sb).unwrap();
        for op in BinaryOp::ALL {
            let got = binary(op, &a, &b).unwrap();
            let (want, shape) = naive(op, &a.to_vec().unwrap(), sa, &b.to_vec().unwrap(), sb);
            assert_eq!(got.shape(), &shape[..]);
            assert_close(&format!("{op:?} {sa:?}∘{sb:?}"), &got.to_vec().unwrap(), &want, 0.0, 0.0);
        }
    }
}

#[test]
fn maximum_propagates_nan_like_torch() {
    let a = Tensor::from_vec(vec![f32::NAN, 1.0], &[2]).unwrap();
    let b = Tensor::from_vec(vec![0.0, f32::NAN], &[2]).unwrap();
    let m = binary(BinaryOp::Max, &a, &b).unwrap().to_vec().unwrap();
    assert!(m[0].is_nan() && m[1].is_nan());
}

#[test]
fn shape_errors_are_clear() {
    let a = rand_tensor(&[2, 3], 1);
    let b = rand_tensor(&[4], 2);
    let e = binary(BinaryOp::Add, &a, &b).unwrap_err().to_string();
    assert!(e.contains("[2, 3]") && e.contains("[4]"), "{e}");
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for (ci, (sa, sb)) in CASES.iter().enumerate() {
            let a = rand_tensor(sa, 10 + ci as u64);
            let b = rand_tensor(sb, 100 + ci as u64);
            let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            let general = aural_runtime::ops::broadcast("t", sa, sb).unwrap().kind == aural_runtime::ops::BroadcastKind::General;
            for op in BinaryOp::ALL {
                let want = binary(op, &a, &b).unwrap().to_vec().unwrap();
                for v in [1u32, 2] {
                    if v == 2 && general {
                        continue;
                    }
                    let got = binary_version(op, &ga, &gb, v).unwrap_or_else(|e| panic!("{dev} {op:?} v{v}: {e}"));
                    assert_close(&format!("{dev} {op:?} v{v} {sa:?}∘{sb:?}"), &got.to_vec().unwrap(), &want, 0.0, 0.0);
                }
            }
        }
    }
}
