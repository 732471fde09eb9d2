//! Unary ops and casts: CPU vs naive scalar formulas on odd shapes, CPU vs PyTorch golden values, the
//! f16 casts bit-exact vs the `half` crate, and every kernel version under the emulator (and a real
//! GPU when present) vs the CPU.

use aural_runtime::ops::unary::{to_f16, to_f32, unary, unary_version, UnaryOp};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{f16, DType, Tensor};

/// Naive reference of each op in f64 (erf by its Taylor series / continued fraction).
fn naive(op: UnaryOp, x: f32) -> f32 {
    let xd = x as f64;
    let r = match op {
        UnaryOp::Gelu => 0.5 * xd * erfc64(-xd / std::f64::consts::SQRT_2),
        UnaryOp::GeluTanh => 0.5 * xd * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd.powi(3))).tanh()),
        UnaryOp::Relu => xd.max(0.0),
        UnaryOp::LeakyRelu(s) => {
            if xd >= 0.0 {
                xd
            } else {
                xd * s as f64
            }
        }
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-xd).exp()),
        UnaryOp::Tanh => xd.tanh(),
        UnaryOp::Exp => xd.exp(),
        UnaryOp::Log => xd.ln(),
        UnaryOp::Sqrt => xd.sqrt(),
        UnaryOp::Neg => -xd,
        UnaryOp::Abs => xd.abs(),
        UnaryOp::Affine { scale, shift } => return x * scale + shift,
    };
    r as f32
}

/// erfc in f64: Taylor series of erf for |x| < 3, the Laplace continued fraction beyond.
fn erfc64(x: f64) -> f64 {
    if x.abs() < 3.0 {
        let (mut term, mut sum, x2) = (x, x, x * x);
        for n in 1..200 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        1.0 - sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if x > 0.0 {
        let mut f = x;
        for k in (1..80).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    } else {
        2.0 - erfc64(-x)
    }
}

/// Inputs in [-6, 6) (log/sqrt: (0, 6]).
fn input(op: UnaryOp, shape: &[usize], seed: u64) -> Tensor {
    let v: Vec<f32> = rand_vec(aural_runtime::numel(shape), seed)
        .into_iter()
        .map(|x| if matches!(op, UnaryOp::Log | UnaryOp::Sqrt) { 3.0 * (x + 1.0) + 1e-3 } else { 6.0 * x })
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// (atol, rtol) of CPU vs the f64 naive formula, per op.
fn tol(op: UnaryOp) -> (f32, f32) {
    match op {
        UnaryOp::Gelu | UnaryOp::GeluTanh => (1e-7, 4e-6),
        UnaryOp::Relu | UnaryOp::LeakyRelu(_) | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Affine { .. } => (0.0, 0.0),
        _ => (1e-7, 1e-6),
    }
}

const SHAPES: &[&[usize]] = &[&[1], &[3], &[17], &[3, 129], &[1214], &[5, 7, 3]];

#[test]
fn cpu_matches_naive() {
    for (si, s) in SHAPES.iter().enumerate() {
        for op in UnaryOp::ALL {
            let x = input(op, s, 10 + si as u64);
            let got = unary(op, &x).unwrap();
            assert_eq!(got.shape(), *s);
            let want: Vec<f32> = x.to_vec().unwrap().iter().map(|&v| naive(op, v)).collect();
            let (atol, rtol) = tol(op);
            assert_close(&format!("{op:?} {s:?}"), &got.to_vec().unwrap(), &want, atol, rtol);
        }
    }
}

#[test]
fn gelu_negative_tail_is_relatively_accurate() {
    // erfc form: no cancellation of 1 + erf(x/√2) for x ≪ 0.
    let xs: Vec<f32> = (0..60).map(|i| -3.0 - i as f32 * 0.2).collect();
    let got = unary(UnaryOp::Gelu, &Tensor::from_vec(xs.clone(), &[60]).unwrap()).unwrap().to_vec().unwrap();
    let want: Vec<f32> = xs.iter().map(|&x| naive(UnaryOp::Gelu, x)).collect();
    assert_close("gelu tail", &got, &want, 1e-37, 2e-5);
}

#[test]
fn special_values_follow_torch() {
    let x = Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0], &[5]).unwrap();
    let r = unary(UnaryOp::Relu, &x).unwrap().to_vec().unwrap();
    assert!(r[0].is_nan() && r[1] == f32::INFINITY && r[2] == 0.0);
    let s = unary(UnaryOp::Sigmoid, &x).unwrap().to_vec().unwrap();
    assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == 0.0 && s[3] == 0.5);
    let g = unary(UnaryOp::Gelu, &x).unwrap().to_vec().unwrap();
    assert!(g[0].is_nan() && g[1] == f32::INFINITY && g[3] == 0.0);
    let l = unary(UnaryOp::Log, &x).unwrap().to_vec().unwrap();
    assert!(l[0].is_nan() && l[1] == f32::INFINITY && l[2].is_nan() && l[3] == f32::NEG_INFINITY);
}

#[test]
fn dtype_errors_are_clear() {
    let h = to_f16(&rand_tensor(&[3], 1)).unwrap();
    let e = unary(UnaryOp::Relu, &h).unwrap_err().to_string();
    assert!(e.contains("unary") && e.contains("F16"), "{e}");
    let e = to_f32(&rand_tensor(&[3], 1)).unwrap_err().to_string();
    assert!(e.contains("to_f32"), "{e}");
}

/// Golden values from PyTorch 2.9.1 (tests/golden/ops.py):
/// ```python
/// x = torch.linspace(-8.0, 8.0, 3 * 129).reshape(3, 129) + 0.01 * torch.randn(3, 129)  # seed 0
/// F.gelu(x); F.gelu(x, approximate="tanh"); F.relu(x); F.leaky_relu(x, 0.01); torch.sigmoid(x)
/// torch.tanh(x); torch.exp(x); -x; x.abs(); x * 1.5 + (-0.25)
/// xpos = x.abs() + 1e-3; torch.log(xpos); torch.sqrt(xpos)
/// ```
#[test]
fn cpu_matches_pytorch_golden() {
    let f = fixture("ops.safetensors");
    let x = &f["unary.x"];
    let xpos = &f["unary.xpos"];
    let cases: &[(&str, UnaryOp, bool, f32, f32)] = &[
        // torch computes gelu as 0.5·x·(1 + erf(x/√2)) in f32: absolute error ~1e-7·|x| on the negative tail.
        ("unary.gelu", UnaryOp::Gelu, false, 2e-6, 1e-6),
        ("unary.gelu_tanh", UnaryOp::GeluTanh, false, 2e-6, 1e-6),
        ("unary.relu", UnaryOp::Relu, false, 0.0, 0.0),
        ("unary.leaky_relu_0.01", UnaryOp::LeakyRelu(0.01), false, 0.0, 0.0),
        ("unary.sigmoid", UnaryOp::Sigmoid, false, 1e-7, 1e-6),
        ("unary.tanh", UnaryOp::Tanh, false, 1e-7, 1e-6),
        ("unary.exp", UnaryOp::Exp, false, 0.0, 1e-6),
        ("unary.neg", UnaryOp::Neg, false, 0.0, 0.0),
        ("unary.abs", UnaryOp::Abs, false, 0.0, 0.0),
        ("unary.affine_1.5_-0.25", UnaryOp::Affine { scale: 1.5, shift: -0.25 }, false, 0.0, 0.0),
        ("unary.log", UnaryOp::Log, true, 1e-7, 1e-6),
        ("unary.sqrt", UnaryOp::Sqrt, true, 0.0, 1e-6),
    ];
    for &(name, op, pos, atol, rtol) in cases {
        let input = if pos { xpos } else { x };
        let got = unary(op, input).unwrap();
        assert_close(name, &got.to_vec().unwrap(), &f[name].to_vec().unwrap(), atol, rtol);
    }
}

/// Golden: `cast_x.half()` (ties, overflow to inf, subnormals, ±0, ±inf, NaN; tests/golden/ops.py).
#[test]
fn casts_match_pytorch_half_bit_exactly() {
    let f = fixture("ops.safetensors");
    let h = to_f16(&f["unary.cast_x"]).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    let want = f["unary.cast_f16"].cpu_f16().unwrap();
    for (i, (g, w)) in h.cpu_f16().unwrap().iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "to_f16 at {i}: {g:?} vs torch {w:?}");
    }
    let back = to_f32(&h).unwrap();
    assert_eq!(back.dtype(), DType::F32);
    let exp: Vec<f32> = want.iter().map(|w| w.to_f32()).collect();
    assert_close("to_f32", &back.to_vec().unwrap(), &exp, 0.0, 0.0);
}

/// Cast inputs: every f16 bit pattern's neighbourhood (exact values, midpoints and near-midpoints).
fn cast_inputs() -> Vec<f32> {
    let mut v = Vec::new();
    for bits in (0u16..=0xffff).step_by(7) {
        let h = f16::from_bits(bits);
        let x = h.to_f32();
        v.push(x);
        if x.is_finite() {
            let next = f16::from_bits(bits.wrapping_add(1)).to_f32();
            if next.is_finite() {
                let mid = 0.5 * (x + next);
                v.extend([mid, f32::from_bits(mid.to_bits() + 1), f32::from_bits(mid.to_bits().saturating_sub(1))]);
            }
        }
    }
    v.extend([65520.0, -65520.0, 65519.99, 1e10, 2.0f32.powi(-25), 2.0f32.powi(-25) * 1.0001, f32::NAN]);
    v
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        // Emulator shapes stay small; n = 1, odd, and multiples of 4 (v2) included.
        for (si, s) in [&[1usize][..], &[3], &[4], &[17], &[3, 129], &[8, 129]].iter().enumerate() {
            for op in UnaryOp::ALL {
                let x = input(op, s, 50 + si as u64);
                let want = unary(op, &x).unwrap().to_vec().unwrap();
                let gx = x.to_device(dev).unwrap();
                let n = x.numel();
                for v in [1u32, 2] {
                    if v == 2 && n % 4 != 0 {
                        assert!(unary_version(op, &gx, 2).is_err(), "v2 must refuse n = {n}");
                        continue;
                    }
                    let got = unary_version(op, &gx, v).unwrap_or_else(|e| panic!("{dev} {op:?} v{v}: {e}"));
                    assert_eq!(got.shape(), *s);
                    // GPU erfcf/expf/tanhf/logf differ from the CPU's by a few ulp.
                    let (atol, rtol) = match op {
                        UnaryOp::Relu | UnaryOp::LeakyRelu(_) | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Affine { .. } | UnaryOp::Sqrt => (0.0, 0.0),
                        _ => (1e-7, 2e-6),
                    };
                    assert_close(&format!("{dev} {op:?} v{v} {s:?}"), &got.to_vec().unwrap(), &want, atol, rtol);
                }
                let auto = unary(op, &gx).unwrap().to_vec().unwrap();
                assert_eq!(auto.len(), want.len());
            }
        }
        let xs = cast_inputs();
        let n = xs.len();
        let x = Tensor::from_vec(xs, &[n]).unwrap();
        let want = to_f16(&x).unwrap();
        let got = to_f16(&x.to_device(dev).unwrap()).unwrap_or_else(|e| panic!("{dev} to_f16: {e}"));
        assert_eq!(got.dtype(), DType::F16);
        let got_h = got.to_device(aural_runtime::Device::Cpu).unwrap();
        for (i, (g, w)) in got_h.cpu_f16().unwrap().iter().zip(want.cpu_f16().unwrap()).enumerate() {
            assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{dev} to_f16 at {i} (x = {}): {g:?} vs {w:?}", x.to_vec().unwrap()[i]);
        }
        let back = to_f32(&got).unwrap_or_else(|e| panic!("{dev} to_f32: {e}"));
        assert_close(&format!("{dev} to_f32"), &back.to_vec().unwrap(), &to_f32(&want).unwrap().to_vec().unwrap(), 0.0, 0.0);
    }
}
