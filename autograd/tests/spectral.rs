//! Backward rules of the separator's spectral back end: `istft` (adjoint `istft_bwd`),
//! `complex_mask` (`complex_mask_bwd`) and `stft` (adjoint `stft_bwd`: the adjoint identity, the
//! emulator and finite differences at the end of this file), and their autograd wrappers (`ops::spectral`).
//!
//! (a) The backward kernels (`istft_ola_bwd_f32_v1`, `istft_frames_bwd_f32_v1`,
//!     `complex_mask_data_bwd_f32_v1`, `complex_mask_weight_bwd_f32_v1`, `complex_mask_wsum_bwd_f32_v1`)
//!     under the emulator (and a real GPU when one is usable) against the CPU, on odd shapes.
//! (b) Both wrappers against central finite differences (`aural_autograd::testing::gradcheck`).
//! (c) Both wrappers, on the CPU and the emulator, against PyTorch autograd: fixture
//!     `spectral_grads.safetensors`, written by `tests/golden/spectral_grads.py` (every loss is
//!     sum(out·R), so the output gradient is the stored R):
//! ```python
//! y = torch.istft(torch.complex(spec[:, 0], spec[:, 1]), n_fft, hop, window=torch.hann_window(n_fft),
//!                 center=True, length=length)
//! mag = torch.sqrt(torch.clamp(re**2 + im**2, min=1e-10)); cos, sin = re / mag, im / mag
//! mm, mr, mi = torch.sigmoid(x0), torch.tanh(x1), torch.tanh(x2)      # x cropped to T, Nyquist row 0
//! mn = torch.sqrt(mr**2 + mi**2).clamp(min=1e-10); mc, ms = mr / mn, mi / mn
//! a = torch.relu(mag * mm); yr = a * (cos * mc - sin * ms); yi = a * (sin * mc + cos * ms)
//! yr = torch.einsum("oc,bscft->bsoft", w, yr) + bias[:, None, None]   # (likewise yi), then * gate
//! ```
//! Gradients must match torch within 1e-5 relative to each tensor's largest gradient.

use aural_autograd::ops::spectral::{complex_mask, istft, stft};
use aural_autograd::ops::{mul, sum_all};
use aural_autograd::testing::gradcheck;
use aural_autograd::{Tape, Var};
use aural_runtime::ops::complex_mask::{complex_mask_bwd, OutConv};
use aural_runtime::ops::stft::{istft_bwd, stft_bwd, StftOpts};
use aural_runtime::testing::{fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{Device, Tensor};

/// max |got − want| / max |want| (the "relative to the largest gradient" error).
fn rel_err(what: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    let m = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(m > 0.0, "{what}: reference is all zeros");
    let mut worst = (0usize, 0f32);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(a.is_finite(), "{what}: got {a} at {i}");
        let e = (a - b).abs() / m;
        if e > worst.1 {
            worst = (i, e);
        }
    }
    worst.1
}

fn check_rel(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let e = rel_err(what, got, want);
    eprintln!("{what}: worst error / max|ref| {e:.2e}");
    assert!(e <= tol, "{what}: worst error {e:e} relative to the largest reference value exceeds {tol:e}");
}

fn scaled(shape: &[usize], seed: u64, s: f32) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed).iter().map(|v| v * s).collect(), shape).unwrap()
}

// ---- (a) kernels vs CPU ----

/// `istft_ola_bwd_f32_v1` + `istft_frames_bwd_f32_v1` vs the CPU (rustfft) adjoint: even and odd
/// n_fft, a hop that does not divide it, one frame, lengths shorter than, equal to and longer than
/// hop·(T − 1), several leading axes.
#[test]
fn istft_bwd_kernels_match_cpu() {
    // (n_fft, hop, frames, length, leading axes)
    let cases: [(usize, usize, usize, usize, &[usize]); 6] =
        [(64, 16, 9, 128, &[2]), (63, 16, 9, 100, &[3]), (20, 7, 5, 50, &[1, 2]), (32, 8, 6, 60, &[2]), (16, 4, 1, 5, &[1]), (33, 11, 4, 33, &[])];
    for dev in gpu_devices() {
        for (ci, &(n, hop, frames, len, lead)) in cases.iter().enumerate() {
            let o = StftOpts::new(n, hop);
            let mut shape = lead.to_vec();
            shape.push(len);
            let g = rand_tensor(&shape, 100 + ci as u64);
            let want = istft_bwd(&g, &o, frames).unwrap();
            let mut sshape = lead.to_vec();
            sshape.extend([2, o.n_freq(), frames]);
            assert_eq!(want.shape(), sshape.as_slice());
            let got = istft_bwd(&g.to_device(dev).unwrap(), &o, frames).unwrap();
            check_rel(&format!("istft_bwd {dev} n_fft {n} hop {hop} T {frames} len {len} {lead:?}"), &got, &want, 2e-6);
        }
    }
}

/// Random complex_mask operands: spec (B, C, 2, F, T), x (B, S·C·3, T′, F − 1) (scaled so the masks
/// are not saturated), out_conv weight (O, C) or (O, C, 1, 1) and bias, gate (B, S) with a 0 slot.
struct MaskCase {
    targets: usize,
    spec: Tensor,
    x: Tensor,
    oc: Option<(Tensor, Tensor)>,
    gate: Option<Tensor>,
    grad: Tensor,
}

#[allow(clippy::too_many_arguments)]
fn mask_case(b: usize, s: usize, c: usize, f: usize, t: usize, tp: usize, o: Option<usize>, conv4d: bool, gate: bool, seed: u64) -> MaskCase {
    let spec = scaled(&[b, c, 2, f, t], seed, 2.0);
    let x = scaled(&[b, s * c * 3, tp, f - 1], seed + 1, 2.0);
    let oc = o.map(|o| {
        let w = scaled(&[o, c], seed + 2, 0.8);
        let w = if conv4d { w.reshape(&[o, c, 1, 1]).unwrap() } else { w };
        (w, scaled(&[o], seed + 3, 0.3))
    });
    let gate = gate.then(|| {
        let mut v: Vec<f32> = rand_vec(b * s, seed + 4).iter().map(|v| 1.0 + 0.5 * v).collect();
        v[b * s - 1] = 0.0;
        Tensor::from_vec(v, &[b, s]).unwrap()
    });
    let grad = rand_tensor(&[b, s, o.unwrap_or(c), 2, f, t], seed + 5);
    MaskCase { targets: s, spec, x, oc, gate, grad }
}

/// `complex_mask_data_bwd_f32_v1` + `complex_mask_weight_bwd_f32_v1` + `complex_mask_wsum_bwd_f32_v1`
/// vs the CPU: with and without out_conv and gate, (O, C, 1, 1) weights, T′ > T, size-1 axes, more
/// bins than one partial-sum block (several chunks).
#[test]
fn complex_mask_bwd_kernels_match_cpu() {
    let cases = [
        mask_case(2, 2, 2, 7, 7, 8, Some(3), false, true, 10),
        mask_case(1, 1, 3, 5, 33, 40, None, false, false, 20),
        mask_case(1, 3, 1, 2, 1, 1, Some(1), true, true, 30),
        mask_case(2, 1, 4, 35, 37, 40, Some(1), true, false, 40),
        mask_case(1, 2, 2, 9, 5, 5, None, false, true, 50),
    ];
    for dev in gpu_devices() {
        for (ci, k) in cases.iter().enumerate() {
            let run = |d: Device| {
                let m = |t: &Tensor| t.to_device(d).unwrap();
                let oc = k.oc.as_ref().map(|(w, b)| (m(w), m(b)));
                let occ = oc.as_ref().map(|(w, b)| OutConv { weight: w, bias: b });
                let gate = k.gate.as_ref().map(m);
                complex_mask_bwd(&m(&k.spec), &m(&k.x), k.targets, occ.as_ref(), gate.as_ref(), &m(&k.grad)).unwrap()
            };
            let (want, got) = (run(Device::Cpu), run(dev));
            let tag = format!("complex_mask_bwd {dev} case {ci} x {:?}", k.x.shape());
            assert_eq!(want.dx.shape(), k.x.shape());
            // dx at the padded frames is exactly 0.
            let (tp, fo, t) = (k.x.shape()[2], k.x.shape()[3], k.spec.shape()[4]);
            let dxv = got.dx.to_vec().unwrap();
            for (i, v) in dxv.iter().enumerate() {
                if (i / fo) % tp >= t {
                    assert_eq!(*v, 0.0, "{tag}: dx at padded frame, index {i}");
                }
            }
            check_rel(&format!("{tag} dx"), &got.dx, &want.dx, 2e-6);
            assert_eq!(got.dweight.is_some(), k.oc.is_some());
            if let Some((w, _)) = &k.oc {
                let (gw, ww) = (got.dweight.as_ref().unwrap(), want.dweight.as_ref().unwrap());
                assert_eq!(ww.shape(), w.shape());
                check_rel(&format!("{tag} dweight"), gw, ww, 5e-6);
                check_rel(&format!("{tag} dbias"), got.dbias.as_ref().unwrap(), want.dbias.as_ref().unwrap(), 5e-6);
            } else {
                assert!(got.dbias.is_none() && want.dbias.is_none());
            }
        }
    }
}

// ---- (b) finite differences ----

const H: f64 = 1e-2;
const TOL: f64 = 1e-3;

#[test]
fn istft_gradcheck() {
    // n_fft 16, hop 4, 5 frames: length = hop·(T − 1), shorter, longer than the frames reach; odd N.
    for (n, len, seed) in [(16usize, 16usize, 1u64), (16, 11, 2), (16, 22, 3), (15, 16, 4)] {
        let o = StftOpts::new(n, 4);
        let spec = rand_tensor(&[2, 2, o.n_freq(), 5], seed);
        let r = gradcheck(&format!("istft n_fft {n} len {len}"), &[spec], H, TOL, |v| istft(&v[0], &o, len)).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("istft n_fft {n} len {len}: worst error / bound {:.2e} ({} evaluations)", r.worst, r.evals);
    }
}

#[test]
fn complex_mask_gradcheck() {
    // x scaled to ±1.5: sigmoid/tanh well inside their smooth range; |m| ≫ 1e-10 and |X|·mm > 0, so
    // no kink is within reach of the steps.
    for (ci, (o, gate)) in [(Some(3usize), true), (None, false), (Some(1), false)].into_iter().enumerate() {
        let k = mask_case(2, 2, 2, 5, 4, 6, o, false, gate, 200 + 10 * ci as u64);
        let x = scaled(k.x.shape(), 300 + ci as u64, 1.5);
        let mut inputs = vec![x];
        if let Some((w, b)) = &k.oc {
            inputs.extend([w.clone(), b.clone()]);
        }
        let (spec, gate, s) = (k.spec.clone(), k.gate.clone(), k.targets);
        let name = format!("complex_mask out_conv {o:?} gate {}", gate.is_some());
        let r = gradcheck(&name, &inputs, H, TOL, |v| {
            let oc = if v.len() == 3 { Some((&v[1], &v[2])) } else { None };
            complex_mask(&spec, &v[0], s, oc, gate.as_ref())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{name}: worst error / bound {:.2e} ({} evaluations)", r.worst, r.evals);
    }
}

// ---- (c) torch goldens ----

const GOLD_TOL: f32 = 1e-5;

#[test]
fn istft_gradients_match_torch() {
    let f = fixture("spectral_grads.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        for name in ["istft_full", "istft_short", "istft_long", "istft_odd"] {
            let dv = |s: &str| f[&format!("{name}.{s}")].to_device(device).unwrap();
            let meta = f[&format!("{name}.meta")].to_vec().unwrap();
            let (n, hop, len, frames) = (meta[0] as usize, meta[1] as usize, meta[2] as usize, meta[3] as usize);
            let o = StftOpts::new(n, hop);
            let tape = Tape::new();
            let spec = tape.var(dv("spec"));
            assert_eq!(spec.shape()[3], frames);
            let y = istft(&spec, &o, len).unwrap();
            // The forward (a sanity check of the fixture; `runtime/tests/stft.rs` owns it): past
            // hop·(T − 1) the envelope falls to w[N − 1]² ≈ 2.4e-3, which magnifies f32 rounding.
            check_rel(&format!("{name} {device} y"), y.value(), &f[&format!("{name}.y")], 5e-5);
            let loss = sum_all(&mul(&y, &tape.constant(dv("dy"))).unwrap()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            // istft_long keeps samples past hop·(T − 1), where only the last frames' window tails cover
            // them (envelope down to w[N − 1]² ≈ 2.4e-3) and the gradient is ~1/envelope: there
            // torch.hann_window (f32 cos: w[63] = 0.00240761) and the f64-rounded window here
            // (0.00240764) differ by 1.1e-5 relative, which the gradient inherits.
            let tol = if name == "istft_long" { 3e-5 } else { GOLD_TOL };
            check_rel(&format!("{name} {device} grad spec"), grads.get(&spec).unwrap(), &f[&format!("{name}.grad.spec")], tol);
        }
    }
}

#[test]
fn complex_mask_gradients_match_torch() {
    let f = fixture("spectral_grads.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        for name in ["mask_oc_gate", "mask_plain"] {
            let key = |s: &str| format!("{name}.{s}");
            let dv = |s: &str| f[&key(s)].to_device(device).unwrap();
            let tape = Tape::new();
            let x = tape.var(dv("x"));
            let oc: Option<(Var, Var)> = f.contains_key(&key("weight")).then(|| (tape.var(dv("weight")), tape.var(dv("bias"))));
            let gate = f.contains_key(&key("gate")).then(|| dv("gate"));
            let spec = dv("spec");
            let s = f[&key("y")].shape()[1];
            let y = complex_mask(&spec, &x, s, oc.as_ref().map(|(w, b)| (w, b)), gate.as_ref()).unwrap();
            check_rel(&format!("{name} {device} y"), y.value(), &f[&key("y")], GOLD_TOL);
            let loss = sum_all(&mul(&y, &tape.constant(dv("dy"))).unwrap()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            check_rel(&format!("{name} {device} grad x"), grads.get(&x).unwrap(), &f[&key("grad.x")], GOLD_TOL);
            if let Some((w, b)) = &oc {
                check_rel(&format!("{name} {device} grad weight"), grads.get(w).unwrap(), &f[&key("grad.weight")], GOLD_TOL);
                check_rel(&format!("{name} {device} grad bias"), grads.get(b).unwrap(), &f[&key("grad.bias")], GOLD_TOL);
            }
        }
    }
}

// ---- the STFT's backward (its adjoint) ----

/// `stft_bwd` is the adjoint of `stft`: ⟨stft(x), G⟩ = ⟨x, stft_bwd(G)⟩ for random x and G (every bin,
/// the imaginary DC/Nyquist parts included), on even and odd n_fft, hops that do and do not divide it,
/// lengths with and without a partial last hop, a signal barely longer than n_fft/2 (the reflect
/// padding folds over most of it); and the kernels (`stft_frames_bwd_f32_v1`, `stft_ola_bwd_f32_v1`)
/// under the emulator match the CPU.
#[test]
fn stft_bwd_is_the_adjoint_and_the_kernels_match_cpu() {
    use aural_runtime::ops::stft::stft as rstft;
    for (ci, (n, hop, len, lead)) in
        [(16usize, 4usize, 40usize, vec![2usize]), (15, 4, 33, vec![1, 2]), (16, 5, 9, vec![1]), (64, 16, 200, vec![3])].into_iter().enumerate()
    {
        let o = StftOpts::new(n, hop);
        let mut xs = lead.clone();
        xs.push(len);
        let x = rand_tensor(&xs, 100 + ci as u64);
        let y = rstft(&x, &o).unwrap();
        let g = rand_tensor(y.shape(), 200 + ci as u64);
        let dx = stft_bwd(&g, &o, len).unwrap();
        assert_eq!(dx.shape(), x.shape());
        let lhs: f64 = y.to_vec().unwrap().iter().zip(g.to_vec().unwrap()).map(|(a, b)| *a as f64 * b as f64).sum();
        let rhs: f64 = x.to_vec().unwrap().iter().zip(dx.to_vec().unwrap()).map(|(a, b)| *a as f64 * b as f64).sum();
        let scale: f64 = y.to_vec().unwrap().iter().zip(g.to_vec().unwrap()).map(|(a, b)| (*a as f64 * b as f64).abs()).sum();
        assert!((lhs - rhs).abs() <= 1e-5 * scale, "case {ci}: <stft(x), G> = {lhs}, <x, stft_bwd(G)> = {rhs}");
        for dev in gpu_devices() {
            let got = stft_bwd(&g.to_device(dev).unwrap(), &o, len).unwrap().to_device(Device::Cpu).unwrap();
            check_rel(&format!("stft_bwd {dev} case {ci}"), &got, &dx, 1e-5);
        }
    }
}

#[test]
fn stft_gradcheck() {
    for (n, len, seed) in [(16usize, 30usize, 5u64), (15, 21, 6)] {
        let o = StftOpts::new(n, 4);
        let x = rand_tensor(&[2, len], seed);
        let r = gradcheck(&format!("stft n_fft {n} len {len}"), &[x], H, TOL, |v| stft(&v[0], &o)).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("stft n_fft {n} len {len}: worst error / bound {:.2e} ({} evaluations)", r.worst, r.evals);
    }
}

/// `stft`'s gradient against torch.stft's autograd (fixture cases stft_even, stft_odd), CPU and emulator.
#[test]
fn stft_gradients_match_torch() {
    let f = fixture("spectral_grads.safetensors");
    for dev in std::iter::once(Device::Cpu).chain(gpu_devices()) {
        for case in ["stft_even", "stft_odd"] {
            let m = f[&format!("{case}.meta")].to_vec().unwrap();
            let o = StftOpts::new(m[0] as usize, m[1] as usize);
            let tape = Tape::new();
            let x = tape.var(f[&format!("{case}.x")].to_device(dev).unwrap());
            let y = stft(&x, &o).unwrap();
            check_rel(&format!("{case} {dev} y"), &y.value().to_device(Device::Cpu).unwrap(), &f[&format!("{case}.y")], 1e-5);
            let loss = sum_all(&mul(&y, &tape.constant(f[&format!("{case}.dy")].to_device(dev).unwrap())).unwrap()).unwrap();
            let g = tape.backward(&loss).unwrap();
            check_rel(&format!("{case} {dev} grad x"), &g.get(&x).unwrap().to_device(Device::Cpu).unwrap(), &f[&format!("{case}.grad.x")], 1e-5);
        }
    }
}
