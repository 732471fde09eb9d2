//! matmul: CPU vs a naive triple loop on odd shapes (transposes, batch, shared b, bias, GELU); CPU vs
//! the PyTorch golden fixture; every kernel version under the emulator (and a real GPU when present)
//! vs the CPU; NVRTC compiles the family for compute_80 and compute_90 (when NVRTC is present).
//!
//! The golden fixture `tests/golden/fixtures/matmul.safetensors` is written by
//! `tests/golden/matmul.py` (torch 2.9.1, `torch.manual_seed(0)`, f32):
//! ```python
//! a, b = randn(5, 7), randn(7, 3);          plain   = torch.matmul(a, b)
//! a, b = randn(2, 4, 6), randn(2, 6, 5);    batched = torch.matmul(a, b)
//! x, w, bias = randn(2, 3, 9), randn(11, 9), randn(11);   linear = F.linear(x, w, bias)
//! x, w, bias = randn(17, 16), randn(20, 16), randn(20);   gelu = F.gelu(F.linear(x, w, bias))
//! a, b = randn(6, 4), randn(6, 3);          ta      = a.transpose(-1, -2) @ b
//! ```

use aural_runtime::ops::matmul::{linear, linear_act, matmul, matmul_opts, matmul_version, Activation, MatmulOpts};
use aural_runtime::ops::unary::to_f16;
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor};
use aural_runtime::Tensor;

/// Exact GELU in f64 (erf by its Taylor/continued-fraction-free series; |x| small in tests).
fn gelu64(x: f64) -> f64 {
    0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2))
}

/// erf by its Maclaurin series (|x| ≤ 3) or 1 − erfc asymptotics (beyond); f64-accurate enough.
fn erf64(x: f64) -> f64 {
    if x.abs() > 3.0 {
        // erfc(x) ~ e^{-x²}/(x√π)·(1 − 1/(2x²) + 3/(4x⁴)); < 2e-5 in total for |x| > 3.
        let z = x.abs();
        let e = (-z * z).exp() / (z * std::f64::consts::PI.sqrt()) * (1.0 - 0.5 / (z * z) + 0.75 / z.powi(4));
        return x.signum() * (1.0 - e);
    }
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// Naive reference in f64: out[z, i, j] = act(Σ_k A'(z, i, k) B'(z, k, j) + bias[j]).
#[allow(clippy::too_many_arguments)]
fn naive(a: &[f32], b: &[f32], bias: Option<&[f32]>, gelu: bool, batch: usize, b_shared: bool, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f32> {
    let mut out = vec![0f32; batch * m * n];
    for z in 0..batch {
        let a = &a[z * m * k..];
        let b = if b_shared { b } else { &b[z * k * n..] };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    let x = if ta { a[p * m + i] } else { a[i * k + p] };
                    let y = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += x as f64 * y as f64;
                }
                if let Some(bias) = bias {
                    s += bias[j] as f64;
                }
                if gelu {
                    s = gelu64(s);
                }
                out[z * m * n + i * n + j] = s as f32;
            }
        }
    }
    out
}

/// One parity case: batch dims (empty for 2-D), M, K, N, transposes, b shared across the batch,
/// bias, GELU.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: &'static [usize],
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    shared_b: bool,
    bias: bool,
    gelu: bool,
}

const fn c(batch: &'static [usize], m: usize, k: usize, n: usize, ta: bool, tb: bool, shared_b: bool, bias: bool, gelu: bool) -> Case {
    Case { batch, m, k, n, ta, tb, shared_b, bias, gelu }
}

/// CPU cases: M, K, N ∈ {1, 3, 17, 129} mixes.
const CPU_CASES: &[Case] = &[
    c(&[], 1, 1, 1, false, false, false, false, false),
    c(&[], 3, 17, 129, false, false, false, false, false),
    c(&[], 129, 3, 17, false, false, false, true, false),
    c(&[], 17, 129, 3, true, false, false, false, false),
    c(&[], 129, 17, 129, false, true, false, true, true),
    c(&[], 17, 17, 17, true, true, false, false, true),
    c(&[], 1, 129, 17, false, true, false, true, false),
    c(&[], 129, 129, 1, true, true, false, true, true),
    c(&[2], 3, 17, 3, false, false, false, false, false),
    c(&[2, 3], 17, 3, 17, true, false, false, true, true),
    c(&[3], 17, 17, 129, false, true, true, true, false),
    c(&[4], 1, 3, 1, true, true, true, false, true),
    c(&[2], 129, 129, 129, false, false, false, true, true),
];

/// Emulator-sized cases (≤ 64×80×48): partial tiles at every edge, size 1, K not a multiple of
/// 16/32, transposes, batch with shared and per-batch b.
const GPU_CASES: &[Case] = &[
    c(&[], 1, 1, 1, false, false, false, false, false),
    c(&[], 1, 17, 3, false, false, false, true, false),
    c(&[], 17, 3, 1, false, true, false, false, true),
    c(&[], 64, 80, 48, false, false, false, true, true),
    c(&[], 33, 19, 47, true, false, false, false, false),
    c(&[], 47, 35, 33, false, true, false, true, false),
    c(&[], 65, 16, 17, true, true, false, true, true),
    c(&[2], 17, 33, 9, false, false, false, true, false),
    c(&[3], 9, 20, 40, false, true, true, false, true),
];

fn inputs(cs: &Case, seed: u64) -> (Tensor, Tensor, Option<Tensor>) {
    let (m, k, n) = (cs.m, cs.k, cs.n);
    let mut sa: Vec<usize> = cs.batch.to_vec();
    sa.extend(if cs.ta { [k, m] } else { [m, k] });
    let mut sb: Vec<usize> = if cs.shared_b { vec![] } else { cs.batch.to_vec() };
    sb.extend(if cs.tb { [n, k] } else { [k, n] });
    let a = rand_tensor(&sa, seed);
    let b = rand_tensor(&sb, seed + 1);
    let bias = cs.bias.then(|| rand_tensor(&[n], seed + 2));
    (a, b, bias)
}

fn opts(cs: &Case, bias: Option<Tensor>) -> MatmulOpts {
    MatmulOpts { trans_a: cs.ta, trans_b: cs.tb, bias, act: if cs.gelu { Activation::Gelu } else { Activation::None } }
}

fn reference(cs: &Case, a: &Tensor, b: &Tensor, bias: Option<&Tensor>) -> Vec<f32> {
    let batch: usize = cs.batch.iter().product();
    let bias = bias.map(|t| t.to_vec().unwrap());
    naive(&a.to_vec().unwrap(), &b.to_vec().unwrap(), bias.as_deref(), cs.gelu, batch, cs.shared_b, cs.m, cs.k, cs.n, cs.ta, cs.tb)
}

fn f32_tol(k: usize) -> f32 {
    1e-5 * ((k as f32).sqrt() + 1.0)
}

#[test]
fn cpu_matches_naive_loop() {
    for (ci, cs) in CPU_CASES.iter().enumerate() {
        let (a, b, bias) = inputs(cs, 10 * ci as u64 + 1);
        let got = matmul_opts(&a, &b, &opts(cs, bias.clone())).unwrap();
        let mut shape = cs.batch.to_vec();
        shape.extend([cs.m, cs.n]);
        assert_eq!(got.shape(), &shape[..], "{cs:?}");
        let want = reference(cs, &a, &b, bias.as_ref());
        let tol = f32_tol(cs.k);
        assert_close(&format!("cpu {cs:?}"), &got.to_vec().unwrap(), &want, tol, tol);
    }
}

#[test]
fn cpu_f16_inputs_are_multiplied_in_f32() {
    let cs = c(&[], 17, 33, 9, false, true, false, true, true);
    let (a, b, bias) = inputs(&cs, 77);
    let (ha, hb) = (to_f16(&a).unwrap(), to_f16(&b).unwrap());
    let got = matmul_opts(&ha, &hb, &opts(&cs, bias.clone())).unwrap();
    assert_eq!(got.dtype(), aural_runtime::DType::F32);
    let want = reference(&cs, &ha, &hb, bias.as_ref());
    assert_close("cpu f16", &got.to_vec().unwrap(), &want, f32_tol(cs.k), f32_tol(cs.k));
}

#[test]
fn linear_accepts_any_rank() {
    let w = rand_tensor(&[5, 7], 1);
    let bias = rand_tensor(&[5], 2);
    for shape in [vec![7], vec![3, 7], vec![2, 3, 7], vec![2, 1, 3, 7]] {
        let x = rand_tensor(&shape, 3);
        let y = linear(&x, &w, Some(&bias)).unwrap();
        let mut want_shape = shape[..shape.len() - 1].to_vec();
        want_shape.push(5);
        assert_eq!(y.shape(), &want_shape[..]);
        let rows = x.numel() / 7;
        let want = naive(&x.to_vec().unwrap(), &w.to_vec().unwrap(), Some(&bias.to_vec().unwrap()), false, 1, true, rows, 7, 5, false, true);
        assert_close(&format!("linear {shape:?}"), &y.to_vec().unwrap(), &want, 1e-5, 1e-5);
    }
    let y = linear_act(&rand_tensor(&[4, 7], 5), &w, None, Activation::Gelu).unwrap();
    assert_eq!(y.shape(), &[4, 5]);
}

#[test]
fn matches_pytorch_golden() {
    let fx = fixture("matmul.safetensors");
    let get = |k: &str| fx.get(k).unwrap_or_else(|| panic!("fixture key {k}")).clone();
    let check = |name: &str, got: Tensor| {
        let want = get(&format!("{name}.out"));
        assert_eq!(got.shape(), want.shape(), "{name}");
        assert_close(&format!("golden {name}"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-5, 1e-5);
    };
    check("plain", matmul(&get("plain.a"), &get("plain.b")).unwrap());
    check("batched", matmul(&get("batched.a"), &get("batched.b")).unwrap());
    check("linear", linear(&get("linear.a"), &get("linear.b"), Some(&get("linear.bias"))).unwrap());
    check("gelu", linear_act(&get("gelu.a"), &get("gelu.b"), Some(&get("gelu.bias")), Activation::Gelu).unwrap());
    check("ta", matmul_opts(&get("ta.a"), &get("ta.b"), &MatmulOpts { trans_a: true, ..Default::default() }).unwrap());
}

#[test]
fn shape_errors_are_clear() {
    let a = rand_tensor(&[2, 3], 1);
    let b = rand_tensor(&[4, 5], 2);
    let e = matmul(&a, &b).unwrap_err().to_string();
    assert!(e.contains("[2, 3]") && e.contains("[4, 5]"), "{e}");
    let e = matmul(&rand_tensor(&[2, 2, 3], 1), &rand_tensor(&[3, 3, 4], 2)).unwrap_err().to_string();
    assert!(e.contains("[2, 2, 3]") && e.contains("[3, 3, 4]"), "{e}");
    let e = matmul_opts(&a, &rand_tensor(&[3, 4], 2), &MatmulOpts { bias: Some(rand_tensor(&[3], 3)), ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("bias") && e.contains("[3]"), "{e}");
    let e = linear(&rand_tensor(&[2, 6], 1), &rand_tensor(&[4, 5], 2), None).unwrap_err().to_string();
    assert!(e.contains("[2, 6]") && e.contains("[4, 5]"), "{e}");
    assert!(matmul(&rand_tensor(&[3], 1), &b).is_err());
    assert!(matmul(&to_f16(&a).unwrap(), &rand_tensor(&[3, 4], 2)).is_err());
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for (ci, cs) in GPU_CASES.iter().enumerate() {
            let (a, b, bias) = inputs(cs, 100 + 10 * ci as u64);
            let want = matmul_opts(&a, &b, &opts(cs, bias.clone())).unwrap().to_vec().unwrap();
            let gbias = bias.as_ref().map(|t| t.to_device(dev).unwrap());
            let o = opts(cs, gbias);
            // f32 kernels.
            let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            let tol = f32_tol(cs.k) * 10.0;
            for v in [1u32, 2] {
                let got = matmul_version(&ga, &gb, &o, v).unwrap_or_else(|e| panic!("{dev} v{v} f32 {cs:?}: {e}"));
                assert_close(&format!("{dev} v{v} f32 {cs:?}"), &got.to_vec().unwrap(), &want, tol, tol);
            }
            // f16 tensor-core kernel vs the CPU on the same f16-rounded inputs.
            let (ha, hb) = (to_f16(&a).unwrap(), to_f16(&b).unwrap());
            let want16 = matmul_opts(&ha, &hb, &opts(cs, bias.clone())).unwrap().to_vec().unwrap();
            let got = matmul_version(&ha.to_device(dev).unwrap(), &hb.to_device(dev).unwrap(), &o, 3).unwrap_or_else(|e| panic!("{dev} v3 f16 {cs:?}: {e}"));
            assert_close(&format!("{dev} v3 f16 {cs:?}"), &got.to_vec().unwrap(), &want16, tol, tol);
            // The dispatcher (v2 for f32) agrees too.
            let got = matmul_opts(&ga, &gb, &o).unwrap();
            assert_close(&format!("{dev} default f32 {cs:?}"), &got.to_vec().unwrap(), &want, tol, tol);
        }
    }
}

#[test]
fn unsupported_versions_are_refused() {
    for dev in gpu_devices() {
        let a = rand_tensor(&[2, 2], 1).to_device(dev).unwrap();
        let e = matmul_version(&a, &a, &MatmulOpts::default(), 3).unwrap_err().to_string();
        assert!(e.contains("matmul_fwd_f32_v3"), "{e}");
    }
}

/// Every kernel of the family compiles with NVRTC for compute_80 and compute_90 (skips without NVRTC).
#[test]
fn kernels_compile_with_nvrtc() {
    use aural_runtime::gpu::{libs, nvrtc};
    if let Err(why) = libs::nvrtc() {
        eprintln!("skipping NVRTC compile check: {why}");
        return;
    }
    let src = aural_kernels::source("matmul").expect("matmul in kernels' SOURCES");
    for arch in ["compute_80", "compute_90"] {
        let c = nvrtc::compile_raw("matmul", src.src, &nvrtc::options(arch), false).unwrap_or_else(|e| panic!("{e}"));
        let ptx = String::from_utf8_lossy(&c.image);
        for k in aural_kernels::kernel_names(src.src) {
            assert!(ptx.contains(&k), "{arch}: {k} missing from the PTX");
        }
    }
}

/// `Linear` (weight pre-laid-out for its device) = `linear_act` with torch's (N, K) weight, on the CPU
/// and every GPU device: odd sizes, 3-D input, with and without bias, GELU.
#[test]
fn prepared_linear_matches_linear_act() {
    use aural_runtime::ops::matmul::{linear_act, Activation, Linear};
    let mut devs = vec![aural_runtime::Device::Cpu];
    devs.extend(aural_runtime::testing::gpu_devices());
    for (i, &(b, s, k, n)) in [(2usize, 7usize, 13usize, 5usize), (1, 33, 64, 96), (3, 1, 1, 1)].iter().enumerate() {
        let x = aural_runtime::testing::rand_tensor(&[b, s, k], 10 + i as u64);
        let w = aural_runtime::testing::rand_tensor(&[n, k], 20 + i as u64);
        let bias = aural_runtime::testing::rand_tensor(&[n], 30 + i as u64);
        for dev in &devs {
            for (with_bias, act) in [(true, Activation::Gelu), (false, Activation::None)] {
                let bd = with_bias.then(|| bias.to_device(*dev).unwrap());
                let l = Linear::new(w.to_device(*dev).unwrap(), bd.clone()).unwrap();
                let xd = x.to_device(*dev).unwrap();
                let want = linear_act(&xd, &w.to_device(*dev).unwrap(), bd.as_ref(), act).unwrap();
                let got = l.forward(&xd, act).unwrap();
                assert_eq!(got.shape(), &[b, s, n]);
                assert_eq!(l.out_features(), n);
                aural_runtime::testing::assert_close(
                    &format!("{dev} Linear {b}x{s}x{k}→{n} bias {with_bias}"),
                    &got.to_vec().unwrap(),
                    &want.to_vec().unwrap(),
                    1e-5,
                    1e-5,
                );
            }
        }
    }
    assert!(Linear::new(aural_runtime::testing::rand_tensor(&[4, 3], 1), Some(aural_runtime::testing::rand_tensor(&[3], 2))).is_err());
}
