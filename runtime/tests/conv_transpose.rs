//! Transposed convolution with kernel = stride (ResUNet30's decoder upsampling): CPU vs a naive f64
//! scatter loop (strides (2, 2), (1, 2), (1, 1), (3, 1); odd sizes, size 1, B = 2; shift (C) and
//! (B, C); with and without the pre-activation; with time-FiLM, Add and Gate, t (B, C, H) per input
//! row, strides (2, 2), (1, 2), (1, 1), also over several CPU bands), errors (a mis-shaped time tensor
//! included), the kernel under the emulator (and a real GPU) vs the CPU, and the PyTorch golden from tests/golden/fixtures/separator_ops.safetensors:
//!
//! ```python
//! a = F.leaky_relu(convt_x * convt_pre_scale[:, None, None] + convt_pre_shift[:, None, None]
//!                  + convt_beta[:, :, None, None], 0.01)                      # convt_x (2, 4, 5, 3)
//! convt22_out = F.conv_transpose2d(a, convt22_w, stride=(2, 2))              # w (4, 3, 2, 2) → (2, 3, 10, 6)
//! convt12_out = F.conv_transpose2d(a, convt12_w, stride=(1, 2))              # w (4, 3, 1, 2) → (2, 3, 5, 6)
//! ```
//! (tests/golden/separator.py, torch 2.9.1 CPU, seed 100.)

use aural_runtime::ops::conv2d::{PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::ops::conv_transpose::{conv_transpose2d, conv_transpose2d_version};
use aural_runtime::testing::{assert_close, fixture_path, gpu_devices, rand_tensor};
use aural_runtime::{Device, Tensor};

#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    sh: usize,
    sw: usize,
    /// 0: no pre-activation; 1: shift (C); 2: shift (B, C).
    pre: u8,
    slope: f32,
    /// Time-FiLM (with a pre-activation): none, Add or Gate.
    time: Option<TimeFilmMode>,
}

fn cases() -> Vec<Case> {
    let c = |b, c, o, h, w, sh, sw, pre, slope| Case { b, c, o, h, w, sh, sw, pre, slope, time: None };
    let t = |mode, k: Case| Case { time: Some(mode), ..k };
    use TimeFilmMode::{Add, Gate};
    vec![
        c(2, 3, 5, 5, 7, 2, 2, 2, 0.01),   // decoder (2, 2), odd sizes, per-item shift
        c(1, 4, 3, 3, 5, 1, 2, 1, 0.01),   // decoder block 1's (1, 2), per-channel shift
        c(2, 2, 2, 4, 3, 1, 1, 0, 0.0),    // 1×1 (plain channel mixing), no pre-activation
        c(1, 3, 2, 2, 3, 3, 1, 2, 0.2),    // (3, 1), another slope
        c(1, 1, 1, 1, 1, 2, 2, 1, 0.01),   // size 1 everywhere
        c(2, 1, 4, 1, 6, 2, 2, 0, 0.0),    // C = 1, H = 1
        c(1, 16, 8, 9, 11, 2, 2, 2, 0.01), // deeper channel sum, several 256-thread blocks
        // Time-FiLM, t[b, c, h] per input row (before the upsampling).
        t(Add, c(2, 3, 5, 5, 7, 2, 2, 2, 0.01)),    // decoder (2, 2), per-item shift
        t(Gate, c(2, 3, 5, 5, 7, 2, 2, 1, 0.01)),   // (2, 2), per-channel shift
        t(Add, c(2, 4, 3, 3, 5, 1, 2, 1, 0.01)),    // decoder block 1's (1, 2), per-channel shift
        t(Gate, c(2, 4, 3, 3, 5, 1, 2, 2, 0.2)),    // (1, 2), per-item shift, another slope
        t(Add, c(2, 2, 3, 4, 3, 1, 1, 2, 0.0)),     // 1×1, ReLU
        t(Gate, c(2, 16, 8, 9, 11, 2, 2, 2, 0.01)), // deeper, several 256-thread blocks
        t(Add, c(2, 1, 1, 1, 1, 2, 2, 1, 0.01)),    // size 1
    ]
}

/// x, w, scale, shift (per the case), time-FiLM values (B, C, H) (read when the case has them: Add
/// β_t in [-0.5, 0.5), Gate values in [0.1, 1)).
fn inputs(k: &Case, seed: u64) -> Vec<Tensor> {
    let gate = k.time == Some(TimeFilmMode::Gate);
    let time: Vec<f32> = rand_tensor(&[k.b, k.c, k.h], seed + 4).to_vec().unwrap().iter().map(|v| if gate { 0.55 + 0.45 * v } else { 0.5 * v }).collect();
    let shift_shape = if k.pre == 2 { vec![k.b, k.c] } else { vec![k.c] };
    // Inputs around 0 (both branches of the LeakyReLU), scale around 1.
    let scale: Vec<f32> = rand_tensor(&[k.c], seed + 2).to_vec().unwrap().iter().map(|v| 1.0 + 0.5 * v).collect();
    vec![
        rand_tensor(&[k.b, k.c, k.h, k.w], seed),
        rand_tensor(&[k.c, k.o, k.sh, k.sw], seed + 1),
        Tensor::from_vec(scale, &[k.c]).unwrap(),
        rand_tensor(&shift_shape, seed + 3),
        Tensor::from_vec(time, &[k.b, k.c, k.h]).unwrap(),
    ]
}

fn call(t: &[Tensor], k: &Case, v: Option<u32>) -> aural_runtime::Result<Tensor> {
    let time = k.time.map(|mode| TimeFilm { values: &t[4], mode });
    let pre = PreAct { scale: &t[2], shift: &t[3], slope: k.slope, time };
    conv_transpose2d_version(&t[0], &t[1], (k.pre > 0).then_some(&pre), v)
}

/// ConvTranspose2d(kernel = stride, no padding, no bias) as a scatter over input pixels and taps, f64.
fn naive(t: &[Tensor], k: &Case) -> Vec<f32> {
    let v: Vec<Vec<f32>> = t.iter().map(|x| x.to_vec().unwrap()).collect();
    let (x, w, sc, sh, tf) = (&v[0], &v[1], &v[2], &v[3], &v[4]);
    let (ho, wo) = (k.h * k.sh, k.w * k.sw);
    let mut out = vec![0f64; k.b * k.o * ho * wo];
    for b in 0..k.b {
        for c in 0..k.c {
            for h in 0..k.h {
                for ww in 0..k.w {
                    let mut a = x[((b * k.c + c) * k.h + h) * k.w + ww] as f64;
                    if k.pre > 0 {
                        let shift = if k.pre == 2 { sh[b * k.c + c] } else { sh[c] };
                        let tv = tf[(b * k.c + c) * k.h + h] as f64;
                        a = a * sc[c] as f64 + shift as f64;
                        if k.time == Some(TimeFilmMode::Add) {
                            a += tv;
                        }
                        if a < 0.0 {
                            a *= k.slope as f64;
                        }
                        if k.time == Some(TimeFilmMode::Gate) {
                            a *= tv;
                        }
                    }
                    for o in 0..k.o {
                        for i in 0..k.sh {
                            for j in 0..k.sw {
                                let wv = w[((c * k.o + o) * k.sh + i) * k.sw + j] as f64;
                                out[((b * k.o + o) * ho + h * k.sh + i) * wo + ww * k.sw + j] += wv * a;
                            }
                        }
                    }
                }
            }
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

#[test]
fn cpu_matches_naive_scatter() {
    for (i, k) in cases().iter().enumerate() {
        let t = inputs(k, 500 + 10 * i as u64);
        let got = call(&t, k, None).unwrap();
        assert_eq!(got.shape(), &[k.b, k.o, k.h * k.sh, k.w * k.sw], "case {i}");
        // f32 sums of ≤ 16 products of O(1) terms vs f64.
        assert_close(&format!("conv_transpose2d cpu case {i} {k:?}"), &got.to_vec().unwrap(), &naive(&t, k), 1e-5, 1e-5);
    }
}

/// Time-FiLM over several CPU bands of input rows (2^18 floats per band: (16 + 8·4)·64 floats per row
/// → 85 rows per band, 3 bands per item): each band takes its own rows' t. CPU only (large for the
/// emulator); the kernel has no bands.
#[test]
fn cpu_time_film_over_several_bands() {
    for (i, mode) in [TimeFilmMode::Add, TimeFilmMode::Gate].into_iter().enumerate() {
        let k = Case { b: 2, c: 16, o: 8, h: 200, w: 64, sh: 2, sw: 2, pre: 2, slope: 0.01, time: Some(mode) };
        let t = inputs(&k, 900 + 10 * i as u64);
        let got = call(&t, &k, None).unwrap();
        assert_close(&format!("conv_transpose2d cpu bands {k:?}"), &got.to_vec().unwrap(), &naive(&t, &k), 1e-5, 1e-5);
    }
}

#[test]
fn errors_name_the_shapes() {
    let k = cases()[0];
    let t = inputs(&k, 1);
    // Weight whose first axis is not C.
    let bad_w = rand_tensor(&[4, 5, 2, 2], 2);
    let e = conv_transpose2d(&t[0], &bad_w, None).unwrap_err().to_string();
    assert!(e.contains("conv_transpose2d") && e.contains("[4, 5, 2, 2]") && e.contains("[2, 3, 5, 7]"), "{e}");
    // A zero stride.
    let e = conv_transpose2d(&t[0], &rand_tensor(&[3, 5, 0, 2], 3), None).unwrap_err().to_string();
    assert!(e.contains("[3, 5, 0, 2]"), "{e}");
    // Shift neither (C) nor (B, C).
    let bad_shift = rand_tensor(&[3, 3], 4);
    let pre = PreAct { scale: &t[2], shift: &bad_shift, slope: 0.01, time: None };
    let e = conv_transpose2d(&t[0], &t[1], Some(&pre)).unwrap_err().to_string();
    assert!(e.contains("shift") && e.contains("[3, 3]") && e.contains("[2, 3]"), "{e}");
    // Scale of the wrong length.
    let bad_scale = rand_tensor(&[4], 5);
    let pre = PreAct { scale: &bad_scale, shift: &t[3], slope: 0.01, time: None };
    let e = conv_transpose2d(&t[0], &t[1], Some(&pre)).unwrap_err().to_string();
    assert!(e.contains("scale") && e.contains("[4]"), "{e}");
    // Time-FiLM values not (B, C, H) = [2, 3, 5] (the input's rows, not the output's 10).
    for bad in [vec![2, 3, 10], vec![2, 5, 5], vec![1, 3, 5], vec![2, 3], vec![2, 3, 5, 7]] {
        let tv = rand_tensor(&bad, 7);
        for mode in [TimeFilmMode::Add, TimeFilmMode::Gate] {
            let pre = PreAct { scale: &t[2], shift: &t[3], slope: 0.01, time: Some(TimeFilm { values: &tv, mode }) };
            let e = conv_transpose2d(&t[0], &t[1], Some(&pre)).unwrap_err().to_string();
            assert!(e.contains("conv_transpose2d") && e.contains("time-FiLM") && e.contains(&format!("{bad:?}")) && e.contains("[2, 3, 5]"), "{e}");
        }
    }
    // 3-D input.
    let e = conv_transpose2d(&rand_tensor(&[3, 5, 7], 6), &t[1], None).unwrap_err().to_string();
    assert!(e.contains("(B, C, H, W)") && e.contains("[3, 5, 7]"), "{e}");
    for dev in gpu_devices() {
        let g: Vec<Tensor> = t.iter().map(|x| x.to_device(dev).unwrap()).collect();
        let e = call(&g, &k, Some(2)).unwrap_err().to_string();
        assert!(e.contains("conv_transpose_fwd_f32_v2") && e.contains("no version 2"), "{e}");
    }
}

#[test]
fn kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (i, k) in cases().iter().enumerate() {
            let t = inputs(k, 600 + 10 * i as u64);
            let want = call(&t, k, None).unwrap().to_vec().unwrap();
            let g: Vec<Tensor> = t.iter().map(|x| x.to_device(dev).unwrap()).collect();
            for v in [None, Some(1)] {
                let got = call(&g, k, v).unwrap_or_else(|e| panic!("{dev} {v:?} case {i}: {e}"));
                assert_eq!(got.device(), dev);
                assert_eq!(got.shape(), &[k.b, k.o, k.h * k.sh, k.w * k.sw]);
                // The same activated values (rounded as the CPU rounds them); only the order of the
                // ≤ 16-term channel sum differs (fmaf in channel order vs the CPU's gemm): ≤ a few ulps
                // of Σ|w·a| ≲ 16.
                assert_close(&format!("{dev} conv_transpose2d {v:?} case {i} {k:?}"), &got.to_vec().unwrap(), &want, 1e-5, 1e-5);
            }
        }
    }
}

#[test]
fn golden_pytorch_conv_transpose2d() {
    let path = fixture_path("separator_ops.safetensors");
    if !path.exists() {
        eprintln!("golden conv_transpose2d: SKIPPED ({} not written yet: run tests/golden/separator.py)", path.display());
        return;
    }
    let fx = aural_runtime::testing::fixture("separator_ops.safetensors");
    let get = |k: &str| -> &Tensor { fx.get(k).unwrap_or_else(|| panic!("separator_ops.safetensors has no tensor {k}")) };
    let (x, scale, shift, beta) = (get("convt_x"), get("convt_pre_scale"), get("convt_pre_shift"), get("convt_beta"));
    // shift per item = BatchNorm's shift + FiLM's β (PyTorch adds them one after the other: ~1 ulp).
    let (sv, bv) = (shift.to_vec().unwrap(), beta.to_vec().unwrap());
    let c = sv.len();
    let per_item: Vec<f32> = bv.iter().enumerate().map(|(i, b)| sv[i % c] + b).collect();
    let shift_bc = Tensor::from_vec(per_item, beta.shape()).unwrap();
    for name in ["convt22", "convt12"] {
        let w = get(&format!("{name}_w"));
        let want = get(&format!("{name}_out"));
        let mut devs = vec![Device::Cpu];
        devs.extend(gpu_devices());
        for dev in devs {
            let on = |t: &Tensor| t.to_device(dev).unwrap();
            let (sc, sh) = (on(scale), on(&shift_bc));
            let pre = PreAct { scale: &sc, shift: &sh, slope: 0.01, time: None };
            let got = conv_transpose2d(&on(x), &on(w), Some(&pre)).unwrap();
            assert_eq!(got.shape(), want.shape(), "{name} on {dev}");
            assert_close(&format!("{name} {dev} vs PyTorch"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-5, 1e-5);
        }
    }
}
