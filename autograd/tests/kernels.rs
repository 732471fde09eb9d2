//! The backward kernels (`gelu_bwd_f32_v1`, `softmax_bwd_f32_v1`, `layernorm_bwd_f32_v1`) and the
//! fused AdamW kernel (`adamw_fwd_f32_v1`) under the CUDA emulator (three thread orders, bounds
//! checks) — and on a real GPU when one is usable — against the CPU implementations, on odd shapes,
//! size 1, rows that span several blocks, and with and without the layer-norm weight.

use aural_runtime::ops::adamw::{adamw_step, AdamWHyper};
use aural_runtime::ops::layernorm::layernorm_bwd;
use aural_runtime::ops::softmax::{softmax, softmax_bwd};
use aural_runtime::ops::unary::gelu_bwd;
use aural_runtime::testing::{assert_close, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{Device, Tensor};

fn scaled(shape: &[usize], seed: u64, s: f32) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed).iter().map(|v| v * s).collect(), shape).unwrap()
}

#[test]
fn gelu_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, shape) in [vec![1usize], vec![7], vec![3, 129], vec![2, 5, 77]].iter().enumerate() {
            let x = scaled(shape, 10 + ci as u64, 8.0);
            let dy = rand_tensor(shape, 20 + ci as u64);
            let want = gelu_bwd(&x, &dy).unwrap().to_vec().unwrap();
            let got = gelu_bwd(&x.to_device(dev).unwrap(), &dy.to_device(dev).unwrap()).unwrap();
            assert_eq!(got.shape(), shape.as_slice());
            assert_close(&format!("gelu_bwd {dev} {shape:?}"), &got.to_vec().unwrap(), &want, 1e-6, 1e-5);
        }
    }
}

#[test]
fn softmax_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(rows, len)) in [(1usize, 1usize), (3, 1), (3, 17), (17, 33), (5, 129), (2, 1214)].iter().enumerate() {
            let y = softmax(&scaled(&[rows, len], 30 + ci as u64, 4.0)).unwrap();
            let dy = rand_tensor(&[rows, len], 40 + ci as u64);
            let want = softmax_bwd(&y, &dy).unwrap().to_vec().unwrap();
            let got = softmax_bwd(&y.to_device(dev).unwrap(), &dy.to_device(dev).unwrap()).unwrap().to_vec().unwrap();
            assert_close(&format!("softmax_bwd {dev} {rows}x{len}"), &got, &want, 1e-7, 1e-5);
        }
    }
}

#[test]
fn layernorm_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(rows, len)) in [(1usize, 1usize), (3, 7), (33, 17), (70, 129), (2, 768)].iter().enumerate() {
            let x = scaled(&[rows, len], 50 + ci as u64, 3.0);
            let dy = rand_tensor(&[rows, len], 60 + ci as u64);
            let w = Tensor::from_vec(rand_vec(len, 70 + ci as u64).iter().map(|v| 1.0 + 0.5 * v).collect(), &[len]).unwrap();
            for weight in [None, Some(&w)] {
                let want = layernorm_bwd(&x, weight, &dy, 1e-5).unwrap();
                let wd = weight.map(|w| w.to_device(dev).unwrap());
                let got = layernorm_bwd(&x.to_device(dev).unwrap(), wd.as_ref(), &dy.to_device(dev).unwrap(), 1e-5).unwrap();
                let tag = format!("layernorm_bwd {dev} {rows}x{len} weight={}", weight.is_some());
                assert_close(&format!("{tag} dx"), &got.dx.to_vec().unwrap(), &want.dx.to_vec().unwrap(), 1e-5, 1e-4);
                assert_close(&format!("{tag} dweight"), &got.dweight.to_vec().unwrap(), &want.dweight.to_vec().unwrap(), 1e-5, 1e-5);
                assert_close(&format!("{tag} dbias"), &got.dbias.to_vec().unwrap(), &want.dbias.to_vec().unwrap(), 1e-5, 1e-5);
            }
        }
    }
}

#[test]
fn adamw_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, n) in [1usize, 7, 1000, 4099].into_iter().enumerate() {
            let s = ci as u64 * 10;
            let (p, g, m) = (rand_tensor(&[n], 80 + s), scaled(&[n], 81 + s, 0.3), scaled(&[n], 82 + s, 0.1));
            let v = Tensor::from_vec(rand_vec(n, 83 + s).iter().map(|x| 0.01 * x * x).collect(), &[n]).unwrap();
            for step in [1u64, 2, 1000] {
                let h = AdamWHyper { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.05, step };
                let want = adamw_step(&p, &g, &m, &v, &h).unwrap();
                let d = |t: &Tensor| t.to_device(dev).unwrap();
                let got = adamw_step(&d(&p), &d(&g), &d(&m), &d(&v), &h).unwrap();
                let tag = format!("adamw {dev} n={n} step {step}");
                assert_close(&format!("{tag} param"), &got.param.to_vec().unwrap(), &want.param.to_vec().unwrap(), 1e-7, 1e-6);
                assert_close(&format!("{tag} exp_avg"), &got.exp_avg.to_vec().unwrap(), &want.exp_avg.to_vec().unwrap(), 1e-8, 1e-6);
                assert_close(&format!("{tag} exp_avg_sq"), &got.exp_avg_sq.to_vec().unwrap(), &want.exp_avg_sq.to_vec().unwrap(), 1e-10, 1e-6);
            }
        }
    }
}

#[test]
fn cpu_only_when_asked() {
    // The CPU path never needs a GPU backend.
    let x = rand_tensor(&[3, 4], 1);
    assert_eq!(gelu_bwd(&x, &x).unwrap().device(), Device::Cpu);
}
