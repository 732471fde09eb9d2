//! The separator's spectral ends: `magnitude_input` (|X|, bn0, time padding, transposed) and the
//! fused `complex_mask` (+ out_conv + gate).
//!
//! (a) CPU vs independent naive f64 loops: S = 1 and 3 targets, C = 4 and 1 (and 2 with O = 5: five blocks
//!     per tile along z on the GPU), with and without out_conv, with a gate (0, ½, 1) and without,
//!     T′ > T, spectra with exact-zero bins (digital silence: cos = sin = 0, so y = 0), x with large
//!     positive/negative values (saturated sigmoid/tanh) and with x1 = x2 = 0 (a zero phase mask), and
//!     the Nyquist bin (gate·bias with out_conv, 0 without); the magnitude input with and without
//!     padding.
//! (b) every kernel under the emulator (and a real GPU) vs the CPU: mag_input bit-identical (the same
//!     IEEE operations in the same order); complex_mask f32 and f16 within 1e-5 (see
//!     `MASK_TOL`); the f16 kernel against the CPU fed the very same f16 values.
//! (c) errors name the shapes.
//! There is no PyTorch golden of the mask alone (the separator fixtures crop the network output to 32
//! bins): the whole-model golden (models/) covers it end to end.

use aural_runtime::ops::complex_mask::{complex_mask, complex_mask_version, magnitude_input, magnitude_input_version, OutConv};
use aural_runtime::ops::unary::to_f16;
use aural_runtime::testing::{assert_close, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{DType, Device, Tensor};

/// Kernel vs CPU tolerance of the mask (atol, rtol). Both sides do the same f32 operations in the
/// same order with products and sums rounded separately; under the emulator expf/tanhf are glibc's,
/// as on the CPU, so the results agree to the last bit or nearly; on a GPU, CUDA's expf/tanhf are
/// within 2 ulp, which moves |m|'s direction (mc, ms) and the magnitude mask by ~1e-7 relative:
/// |Δy_c| ≲ 4 ulp·|X| ≲ 1e-6 for |X| ≲ 1.5, and out_conv sums C ≤ 4 such terms with |W| < 1.
/// The f16 kernel reads the same f16 values as the CPU reference (converted exactly), so the
/// storage rounding is not part of the difference either.
const MASK_TOL: (f32, f32) = (1e-5, 1e-5);

#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    s: usize,
    c: usize,
    /// Some(O): out_conv C → O.
    o: Option<usize>,
    f: usize,
    t: usize,
    tp: usize,
    gate: bool,
}

fn cases() -> Vec<Case> {
    let k = |b, s, c, o, f, t, tp, gate| Case { b, s, c, o, f, t, tp, gate };
    vec![
        // DCASE baseline: 4 mics, out_conv 4 → 1, gate, T′ > T, two frame tiles and two bin tiles.
        k(2, 1, 4, Some(1), 37, 35, 40, true),
        // ResUNetK: 3 targets, one gated off.
        k(1, 3, 4, Some(1), 9, 13, 16, true),
        // AudioSep: 1 channel, no out_conv, no gate.
        k(1, 1, 1, None, 33, 34, 34, false),
        // 3 targets, 1 channel, no out_conv, gated.
        k(2, 3, 1, None, 5, 7, 8, true),
        // O = 5 (one block per output on the GPU); C = 2; F = 2 (one bin + Nyquist); no gate.
        k(1, 1, 2, Some(5), 2, 3, 5, false),
        // Size-1 frames, O = C = 4 without out_conv.
        k(1, 1, 4, None, 3, 1, 1, true),
    ]
}

/// spec (B, C, 2, F, T) with digital silence (channel 0 of item 0: frames t % 5 == 1 are exact zeros,
/// and bin 1 of every frame of the last channel) and some bins with only re or only im zero.
fn spec_for(k: &Case, seed: u64) -> Tensor {
    let (b, c, f, t) = (k.b, k.c, k.f, k.t);
    let mut v = rand_vec(b * c * 2 * f * t, seed);
    for bi in 0..b {
        for ci in 0..c {
            for fi in 0..f {
                for ti in 0..t {
                    let re = (((bi * c + ci) * 2) * f + fi) * t + ti;
                    let im = re + f * t;
                    let silent = (bi == 0 && ci == 0 && ti % 5 == 1) || (ci == c - 1 && fi == 1.min(f - 1));
                    if silent {
                        v[re] = 0.0;
                        v[im] = 0.0;
                    } else if (fi + ti) % 7 == 3 {
                        v[re] = 0.0;
                    } else if (fi + ti) % 7 == 5 {
                        v[im] = 0.0;
                    }
                }
            }
        }
    }
    Tensor::from_vec(v, &[b, c, 2, f, t]).unwrap()
}

/// x (B, S·C·3, T′, F − 1): values in (−3, 3), some saturated (±40, ±100), some phase masks exactly 0.
fn x_for(k: &Case, seed: u64) -> Tensor {
    let (ch, tp, fo) = (k.s * k.c * 3, k.tp, k.f - 1);
    let mut v: Vec<f32> = rand_vec(k.b * ch * tp * fo, seed).iter().map(|x| 3.0 * x).collect();
    for (i, x) in v.iter_mut().enumerate() {
        match i % 11 {
            2 => *x = 40.0,
            4 => *x = -100.0,
            7 => *x = -40.0,
            9 => *x = 100.0,
            _ => {}
        }
    }
    // x1 = x2 = 0 (|m| = 0: the phase mask is clamped, mc = ms = 0) at bin 0 of every frame ≡ 2 mod 3.
    for bi in 0..k.b {
        for sc in 0..k.s * k.c {
            for ti in (2..tp).step_by(3) {
                for kk in [1, 2] {
                    v[((bi * ch + sc * 3 + kk) * tp + ti) * fo] = 0.0;
                }
            }
        }
    }
    Tensor::from_vec(v, &[k.b, ch, tp, fo]).unwrap()
}

/// spec, x, out_conv weight (O, C, 1, 1) (or a dummy), bias (O), gate (B, S) with 0, ½ and 1.
fn inputs(k: &Case, seed: u64) -> Vec<Tensor> {
    let o = k.o.unwrap_or(1);
    let gate: Vec<f32> = (0..k.b * k.s).map(|i| [1.0, 0.0, 0.5][i % 3]).collect();
    vec![
        spec_for(k, seed),
        x_for(k, seed + 1),
        rand_tensor(&[o, k.c, 1, 1], seed + 2),
        rand_tensor(&[o], seed + 3),
        Tensor::from_vec(gate, &[k.b, k.s]).unwrap(),
    ]
}

fn call(t: &[Tensor], k: &Case, v: Option<u32>) -> aural_runtime::Result<Tensor> {
    let oc = OutConv { weight: &t[2], bias: &t[3] };
    complex_mask_version(&t[0], &t[1], k.s, k.o.map(|_| &oc), k.gate.then_some(&t[4]), v)
}

/// The mask in f64, written from the math of DESIGN.md §6.5 (indices spelled out independently).
fn naive(t: &[Tensor], k: &Case) -> Vec<f32> {
    let v: Vec<Vec<f32>> = t.iter().map(|x| x.to_vec().unwrap()).collect();
    let (spec, x, w, bias, gate) = (&v[0], &v[1], &v[2], &v[3], &v[4]);
    let (c, f, tn, tp, fo) = (k.c, k.f, k.t, k.tp, k.f - 1);
    let o_n = k.o.unwrap_or(c);
    let mut out = vec![0f32; k.b * k.s * o_n * 2 * f * tn];
    let spec_at = |b: usize, ch: usize, ri: usize, fi: usize, ti: usize| spec[(((b * c + ch) * 2 + ri) * f + fi) * tn + ti] as f64;
    let x_at = |b: usize, ch: usize, fi: usize, ti: usize| if fi == fo { 0.0 } else { x[((b * k.s * c * 3 + ch) * tp + ti) * fo + fi] as f64 };
    for b in 0..k.b {
        for s in 0..k.s {
            let g = if k.gate { gate[b * k.s + s] as f64 } else { 1.0 };
            for fi in 0..f {
                for ti in 0..tn {
                    let mut ys = Vec::with_capacity(c);
                    for ci in 0..c {
                        let (re, im) = (spec_at(b, ci, 0, fi, ti), spec_at(b, ci, 1, fi, ti));
                        let mag = (re * re + im * im).max(1e-10).sqrt();
                        let (cos, sin) = (re / mag, im / mag);
                        let ch = (s * c + ci) * 3;
                        let mm = 1.0 / (1.0 + (-x_at(b, ch, fi, ti)).exp());
                        let (mr, mi) = (x_at(b, ch + 1, fi, ti).tanh(), x_at(b, ch + 2, fi, ti).tanh());
                        let n = (mr * mr + mi * mi).sqrt().max(1e-10);
                        let (mc, ms) = (mr / n, mi / n);
                        let a = (mag * mm).max(0.0);
                        ys.push((a * (cos * mc - sin * ms), a * (sin * mc + cos * ms)));
                    }
                    for o in 0..o_n {
                        let (r, i) = match k.o {
                            Some(_) => {
                                let bo = bias[o] as f64;
                                ys.iter().enumerate().fold((bo, bo), |(r, i), (ci, &(yr, yi))| (r + w[o * c + ci] as f64 * yr, i + w[o * c + ci] as f64 * yi))
                            }
                            None => ys[o],
                        };
                        let base = (((b * k.s + s) * o_n + o) * 2) * f * tn + fi * tn + ti;
                        out[base] = (g * r) as f32;
                        out[base + f * tn] = (g * i) as f32;
                    }
                }
            }
        }
    }
    out
}

fn out_shape(k: &Case) -> Vec<usize> {
    vec![k.b, k.s, k.o.unwrap_or(k.c), 2, k.f, k.t]
}

#[test]
fn mask_cpu_matches_naive() {
    for (i, k) in cases().iter().enumerate() {
        let t = inputs(k, 700 + 10 * i as u64);
        let got = call(&t, k, None).unwrap();
        assert_eq!(got.shape(), &out_shape(k)[..], "case {i}");
        let got = got.to_vec().unwrap();
        // f32 vs f64 of the same formulas: |X| ≲ 1.5, the out_conv sum of ≤ 4 terms.
        assert_close(&format!("complex_mask cpu case {i} {k:?}"), &got, &naive(&t, k), 1e-5, 1e-5);
        check_special_bins(&got, &t, k, &format!("cpu case {i}"));
    }
}

/// The Nyquist bin is gate·bias with out_conv and 0 without; a gate of 0 silences the target; a
/// silent channel without out_conv gives 0.
fn check_special_bins(got: &[f32], t: &[Tensor], k: &Case, what: &str) {
    let bias = t[3].to_vec().unwrap();
    let gate = t[4].to_vec().unwrap();
    let (f, tn) = (k.f, k.t);
    let o_n = k.o.unwrap_or(k.c);
    for b in 0..k.b {
        for s in 0..k.s {
            let g = if k.gate { gate[b * k.s + s] } else { 1.0 };
            for o in 0..o_n {
                let want = if k.o.is_some() { g * bias.get(o).copied().unwrap() } else { 0.0 };
                for ri in 0..2 {
                    let row = ((((b * k.s + s) * o_n + o) * 2 + ri) * f + f - 1) * tn;
                    for ti in 0..tn {
                        assert_eq!(got[row + ti], want, "{what}: Nyquist bin of (b {b}, s {s}, o {o}, re/im {ri}, t {ti})");
                    }
                    if g == 0.0 {
                        let plane = &got[row - (f - 1) * tn..][..f * tn];
                        assert!(plane.iter().all(|&v| v == 0.0), "{what}: gate 0 must silence (b {b}, s {s})");
                    }
                }
                // Without out_conv, channel 0 of item 0 is digitally silent at frames t % 5 == 1.
                if k.o.is_none() && b == 0 && o == 0 {
                    for ri in 0..2 {
                        for fi in 0..f {
                            for ti in (1..tn).step_by(5) {
                                let v = got[((((b * k.s + s) * o_n) * 2 + ri) * f + fi) * tn + ti];
                                assert_eq!(v, 0.0, "{what}: digital silence at (s {s}, f {fi}, t {ti})");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn mask_kernels_match_cpu() {
    for dev in gpu_devices() {
        for (i, k) in cases().iter().enumerate() {
            let t = inputs(k, 800 + 10 * i as u64);
            // f32 storage, then f16 storage (the CPU reference reads the same f16 values).
            let t16: Vec<Tensor> = t.iter().enumerate().map(|(j, x)| if j < 2 { to_f16(x).unwrap() } else { x.clone() }).collect();
            for (dt, inp) in [(DType::F32, &t), (DType::F16, &t16)] {
                let want = call(inp, k, None).unwrap().to_vec().unwrap();
                let g: Vec<Tensor> = inp.iter().map(|x| x.to_device(dev).unwrap()).collect();
                assert_eq!(g[0].dtype(), dt);
                for v in [None, Some(1)] {
                    let got = call(&g, k, v).unwrap_or_else(|e| panic!("{dev} {dt} {v:?} case {i}: {e}"));
                    assert_eq!(got.device(), dev);
                    assert_eq!(got.dtype(), DType::F32);
                    assert_eq!(got.shape(), &out_shape(k)[..]);
                    let got = got.to_vec().unwrap();
                    let what = format!("{dev} complex_mask {dt} {v:?} case {i} {k:?}");
                    assert_close(&what, &got, &want, MASK_TOL.0, MASK_TOL.1);
                    check_special_bins(&got, inp, k, &what);
                    if dev == Device::Emu && v.is_none() {
                        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                        eprintln!("{what}: max |emu − cpu| = {worst:e}");
                    }
                }
            }
        }
    }
}

/// (B, C, F, T, T′) of the magnitude-input cases: padding over a tile boundary, none, T = 1, B·C = 6.
fn mag_cases() -> Vec<(usize, usize, usize, usize, usize)> {
    vec![(1, 4, 37, 35, 64), (2, 1, 33, 32, 32), (1, 2, 2, 1, 3), (2, 3, 9, 40, 41)]
}

fn mag_inputs(&(b, c, f, t, _): &(usize, usize, usize, usize, usize), seed: u64) -> Vec<Tensor> {
    let k = Case { b, s: 1, c, o: None, f, t, tp: t, gate: false };
    let scale: Vec<f32> = rand_vec(f, seed + 1).iter().map(|v| 1.0 + 0.5 * v).collect();
    vec![spec_for(&k, seed), Tensor::from_vec(scale, &[f]).unwrap(), rand_tensor(&[f], seed + 2)]
}

#[test]
fn magnitude_input_cpu_matches_naive() {
    for (i, m) in mag_cases().iter().enumerate() {
        let (b, c, f, t, tp) = *m;
        let ins = mag_inputs(m, 900 + 10 * i as u64);
        let got = magnitude_input(&ins[0], &ins[1], &ins[2], tp).unwrap();
        assert_eq!(got.shape(), &[b, c, tp, f - 1]);
        let (spec, sc, sh) = (ins[0].to_vec().unwrap(), ins[1].to_vec().unwrap(), ins[2].to_vec().unwrap());
        let mut want = vec![0f32; b * c * tp * (f - 1)];
        for p in 0..b * c {
            for ti in 0..t {
                for fi in 0..f - 1 {
                    let (re, im) = (spec[((p * 2) * f + fi) * t + ti] as f64, spec[((p * 2 + 1) * f + fi) * t + ti] as f64);
                    want[(p * tp + ti) * (f - 1) + fi] = ((re * re + im * im).max(1e-10).sqrt() * sc[fi] as f64 + sh[fi] as f64) as f32;
                }
            }
        }
        let got = got.to_vec().unwrap();
        assert_close(&format!("magnitude_input cpu case {i}"), &got, &want, 1e-6, 1e-6);
        // Padded frames are exact zeros (bn0 comes before the padding).
        for p in 0..b * c {
            assert!(got[(p * tp + t) * (f - 1)..(p + 1) * tp * (f - 1)].iter().all(|&v| v == 0.0), "case {i}: padding of plane {p}");
        }
    }
}

#[test]
fn magnitude_input_kernel_matches_cpu_exactly() {
    for dev in gpu_devices() {
        for (i, m) in mag_cases().iter().enumerate() {
            let tp = m.4;
            let ins = mag_inputs(m, 950 + 10 * i as u64);
            let want = magnitude_input(&ins[0], &ins[1], &ins[2], tp).unwrap().to_vec().unwrap();
            let g: Vec<Tensor> = ins.iter().map(|x| x.to_device(dev).unwrap()).collect();
            for v in [None, Some(1)] {
                let got = magnitude_input_version(&g[0], &g[1], &g[2], tp, v).unwrap_or_else(|e| panic!("{dev} {v:?} case {i}: {e}"));
                assert_eq!(got.device(), dev);
                assert_eq!(got.shape(), &[m.0, m.1, tp, m.2 - 1]);
                let got = got.to_vec().unwrap();
                // The same IEEE operations (products and sums rounded separately, sqrt correctly
                // rounded) in the same order: bit-identical.
                let bad = got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits());
                assert!(
                    bad.is_none(),
                    "{dev} magnitude_input {v:?} case {i}: first difference at {}: {} vs {}",
                    bad.unwrap(),
                    got[bad.unwrap()],
                    want[bad.unwrap()]
                );
            }
        }
    }
}

#[test]
fn errors_name_the_shapes() {
    let k = cases()[0];
    let t = inputs(&k, 1);
    let oc = OutConv { weight: &t[2], bias: &t[3] };
    // Network output with the wrong channel count.
    let bad_x = rand_tensor(&[2, 11, 40, 36], 2);
    let e = complex_mask(&t[0], &bad_x, 1, Some(&oc), None).unwrap_err().to_string();
    assert!(e.contains("complex_mask") && e.contains("[2, 11, 40, 36]") && e.contains("[2, 4, 2, 37, 35]"), "{e}");
    // Network output shorter than T.
    let short = rand_tensor(&[2, 12, 34, 36], 3);
    let e = complex_mask(&t[0], &short, 1, Some(&oc), None).unwrap_err().to_string();
    assert!(e.contains("[2, 12, 34, 36]") && e.contains("≥ 35"), "{e}");
    // spec that is not STFT planes.
    let e = complex_mask(&rand_tensor(&[2, 4, 3, 37, 35], 4), &t[1], 1, None, None).unwrap_err().to_string();
    assert!(e.contains("[2, 4, 3, 37, 35]") && e.contains("(B, C, 2, F ≥ 2, T)"), "{e}");
    // out_conv weight over the wrong number of channels.
    let bad_w = rand_tensor(&[1, 3], 5);
    let e = complex_mask(&t[0], &t[1], 1, Some(&OutConv { weight: &bad_w, bias: &t[3] }), None).unwrap_err().to_string();
    assert!(e.contains("[1, 3]") && e.contains("(O, 4)"), "{e}");
    // Gate of the wrong shape.
    let bad_gate = rand_tensor(&[2], 6);
    let e = complex_mask(&t[0], &t[1], 1, Some(&oc), Some(&bad_gate)).unwrap_err().to_string();
    assert!(e.contains("gate") && e.contains("[2]") && e.contains("[2, 1]"), "{e}");
    // spec f32 with x f16.
    let e = complex_mask(&t[0], &to_f16(&t[1]).unwrap(), 1, Some(&oc), None).unwrap_err().to_string();
    assert!(e.contains("complex_mask") && e.contains("f16"), "{e}");
    // Zero targets.
    let e = complex_mask(&t[0], &t[1], 0, Some(&oc), None).unwrap_err().to_string();
    assert!(e.contains("target"), "{e}");
    // magnitude_input: bn0 of the wrong length, net_frames < T.
    let e = magnitude_input(&t[0], &rand_tensor(&[36], 7), &rand_tensor(&[37], 8), 40).unwrap_err().to_string();
    assert!(e.contains("magnitude_input") && e.contains("[36]") && e.contains("[37]"), "{e}");
    let e = magnitude_input(&t[0], &rand_tensor(&[37], 7), &rand_tensor(&[37], 8), 30).unwrap_err().to_string();
    assert!(e.contains("30") && e.contains("35"), "{e}");
    // Kernel versions that do not exist name the kernel.
    for dev in gpu_devices() {
        let g: Vec<Tensor> = t.iter().map(|x| x.to_device(dev).unwrap()).collect();
        let e = call(&g, &k, Some(2)).unwrap_err().to_string();
        assert!(e.contains("complex_mask_fwd_f32_v2") && e.contains("no version 2"), "{e}");
        let sc = rand_tensor(&[37], 9).to_device(dev).unwrap();
        let e = magnitude_input_version(&g[0], &sc, &sc, 40, Some(3)).unwrap_err().to_string();
        assert!(e.contains("mag_input_fwd_f32_v3") && e.contains("no version 3"), "{e}");
    }
}
