//! conv2d (the separator's fused pre-activation convolution), table-driven:
//! (a) the CPU op vs an independent naive f64 loop written here, over k = 3 and 1, one and two
//!     sources, with/without the pre-activation, shift (C) and (B, C), bias, residual, sizes 1 and
//!     odd sizes, B = 2, several CPU bands (BAND_FLOATS = 2^18 floats per im2col band) and the CPU's
//!     direct 1×1 path (no pre-activation), also over several bands; and the time-FiLM term of the
//!     pre-activation (Add and Gate, t (B, C, H) per item, channel and row) over the same variety:
//!     k = 3 and 1, one and two sources, shift (C) and (B, C), several row bands, column bands;
//! (b) every kernel version under the emulator (and on a real GPU when one is usable) vs the CPU:
//!     v1/v2 (f32 weight) at 1e-5, v3 (f16 weight, tensor cores) within the f16 rounding bound
//!     derived at [`check_f16`];
//!     with time-FiLM too, every version; and t = 0 (Add) / t = 1 (Gate) give exactly the output
//!     without time-FiLM on every device;
//! (c) errors name the shapes (the time-FiLM values' too), the version and the dtype;
//! (d) PyTorch's numbers from tests/golden/fixtures/separator_ops.safetensors (written by
//!     tests/golden/separator.py), when that file exists.

use aural_runtime::ops::conv2d::{conv2d, conv2d_version, Conv2d, PreAct, TimeFilm, TimeFilmMode};
use aural_runtime::ops::unary::to_f16;
use aural_runtime::testing::{assert_close, fixture, fixture_path, gpu_devices, rand_vec};
use aural_runtime::{DType, Device, Tensor};

/// The pre-activation of a case: none, or with a (C) or a (B, C) shift.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pre {
    Off,
    ShiftC,
    ShiftBC,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    b: usize,
    /// Channels of each source (one or two).
    cin: &'static [usize],
    o: usize,
    h: usize,
    w: usize,
    k: usize,
    pre: Pre,
    slope: f32,
    bias: bool,
    res: bool,
    /// Time-FiLM (needs a pre-activation): none, Add or Gate.
    time: Option<TimeFilmMode>,
}

impl Case {
    fn ct(&self) -> usize {
        self.cin.iter().sum()
    }
    fn kdim(&self) -> usize {
        self.ct() * self.k * self.k
    }
    fn out_shape(&self) -> [usize; 4] {
        [self.b, self.o, self.h, self.w]
    }
}

#[allow(clippy::too_many_arguments)]
const fn case(name: &'static str, b: usize, cin: &'static [usize], o: usize, h: usize, w: usize, k: usize, pre: Pre, bias: bool, res: bool) -> Case {
    Case { name, b, cin, o, h, w, k, pre, slope: 0.01, bias, res, time: None }
}

/// A case with time-FiLM in `mode`.
const fn timed(mode: TimeFilmMode, c: Case) -> Case {
    Case { time: Some(mode), ..c }
}

use TimeFilmMode::{Add, Gate};

/// Cases of the CPU check (a): cheap for the naive loop, so some are large enough for several bands.
fn cpu_cases() -> Vec<Case> {
    vec![
        case("k3_one_src_shiftC_bias", 1, &[5], 7, 5, 7, 3, Pre::ShiftC, true, false),
        case("k3_two_src_shiftBC_bias_res_B2", 2, &[3, 4], 6, 7, 5, 3, Pre::ShiftBC, true, true),
        case("k3_no_pre_res", 2, &[4], 3, 6, 2, 3, Pre::Off, false, true),
        case("k3_size1_B2", 2, &[3], 2, 1, 1, 3, Pre::ShiftBC, false, false),
        Case { slope: 0.0, ..case("k3_relu_h1_w33_two_src", 1, &[2, 2], 5, 1, 33, 3, Pre::ShiftC, false, false) },
        Case { slope: 0.2, ..case("k3_h2_w1_slope0.2", 2, &[3, 1], 4, 2, 1, 3, Pre::ShiftBC, true, true) },
        case("k1_one_src_pre_w33", 2, &[6], 9, 2, 33, 1, Pre::ShiftC, true, false),
        case("k1_two_src_direct_bias_res", 2, &[5, 3], 10, 7, 9, 1, Pre::Off, true, true),
        case("k1_direct_size1", 1, &[4], 3, 1, 1, 1, Pre::Off, false, false),
        // A second source with no channels (x1 unused), on the im2col and on the direct path.
        case("k3_second_src_empty", 2, &[3, 0], 4, 3, 5, 3, Pre::ShiftBC, true, false),
        case("k1_direct_second_src_empty", 1, &[4, 0], 3, 3, 5, 1, Pre::Off, false, false),
        case("k1_direct_second_src_empty_bands", 1, &[4, 0], 3, 500, 300, 1, Pre::Off, false, false),
        // No input channels at all: out = bias (+ residual), or zeros.
        case("k3_no_channels", 1, &[0], 3, 2, 3, 3, Pre::ShiftC, false, false),
        case("k1_no_channels_bias", 1, &[0], 3, 2, 3, 1, Pre::Off, true, true),
        // Empty image.
        case("k3_h0", 2, &[2], 3, 0, 5, 3, Pre::ShiftC, true, true),
        // 144·40 floats per row → 45 rows per band: 3 bands per item, 6 in all (rayon over bands).
        case("k3_bands_two_src_shiftBC_bias_res", 2, &[10, 6], 8, 100, 40, 3, Pre::ShiftBC, true, true),
        // Direct 1×1 path, 8·300 floats per row → 109 rows per band: 3 bands (sequential path).
        case("k1_direct_bands_two_src_bias_res", 1, &[5, 3], 4, 250, 300, 1, Pre::Off, true, true),
        // 9·40 = 360 im2col rows × 801 columns > 2^18 floats: each row is split into two column ranges
        // (401 and 400 wide), the halo columns at the split read from the neighbouring range.
        case("k3_column_bands_two_src_shiftBC_res", 2, &[24, 16], 3, 3, 801, 3, Pre::ShiftBC, true, true),
        // The direct 1×1 path over column bands: 500 channels × 600 columns > 2^18 floats per row, so
        // each row splits into two column ranges and gemm reads each source in place from the range.
        case("k1_direct_column_bands_two_src_bias_res", 1, &[300, 200], 3, 2, 600, 1, Pre::Off, true, true),
        // Time-FiLM (t (B, C, H) over the concatenated channels; a row's value is fetched per input
        // row of the band, halo rows included).
        timed(Add, case("k3_time_add_two_src_shiftBC_bias_res_B2", 2, &[3, 4], 6, 7, 5, 3, Pre::ShiftBC, true, true)),
        timed(Gate, case("k3_time_gate_one_src_shiftC_B2", 2, &[5], 4, 6, 9, 3, Pre::ShiftC, false, false)),
        timed(Add, case("k3_time_add_one_src_shiftC_bias", 2, &[4], 5, 5, 8, 3, Pre::ShiftC, true, false)),
        Case { slope: 0.0, ..timed(Gate, case("k3_time_gate_relu_two_src_shiftBC_res", 2, &[2, 3], 4, 4, 6, 3, Pre::ShiftBC, false, true)) },
        timed(Add, case("k1_time_add_two_src_shiftC_bias", 2, &[3, 2], 7, 5, 6, 1, Pre::ShiftC, true, false)),
        timed(Gate, case("k1_time_gate_one_src_shiftBC_res", 2, &[6], 5, 3, 11, 1, Pre::ShiftBC, false, true)),
        timed(Add, case("k3_time_add_size1_B2", 2, &[3], 2, 1, 1, 3, Pre::ShiftBC, false, false)),
        timed(Gate, case("k3_time_gate_second_src_empty", 2, &[3, 0], 4, 3, 5, 3, Pre::ShiftBC, true, false)),
        // Several row bands (6 in all, as above): the halo rows at a band edge take their own row's t.
        timed(Add, case("k3_time_add_bands_two_src_shiftBC_bias_res", 2, &[10, 6], 8, 100, 40, 3, Pre::ShiftBC, true, true)),
        timed(Gate, case("k3_time_gate_bands_two_src_shiftC", 2, &[10, 6], 8, 100, 40, 3, Pre::ShiftC, false, false)),
        // Column bands (each row split in two column ranges).
        timed(Add, case("k3_time_add_column_bands_two_src_shiftBC_res", 2, &[24, 16], 3, 3, 801, 3, Pre::ShiftBC, true, true)),
        timed(Gate, case("k3_time_gate_column_bands_two_src_shiftC", 2, &[24, 16], 3, 3, 801, 3, Pre::ShiftC, false, false)),
    ]
}

/// Cases of the kernel check (b): small (the emulator runs WMMA at ~1 s per 256³), covering both
/// block tile shapes of v2/v3 (the launcher picks 64×64 or 32×128, whichever pads less), k = 3 and 1,
/// O and the pixels not multiples of the tile, K = C·k² not a multiple of 16/32, both sources.
fn kernel_cases() -> Vec<Case> {
    vec![
        // O = 70 over 63 pixels: 64×64 tiles, two row tiles (the second 6 high); K = 63.
        case("k3_two_src_shiftBC_bias_res_O70", 2, &[3, 4], 70, 7, 9, 3, Pre::ShiftBC, true, true),
        // O = 5 over 165 pixels: 32×128 tiles, two pixel tiles; K = 45.
        case("k3_one_src_shiftC_bias_O5", 1, &[5], 5, 5, 33, 3, Pre::ShiftC, true, false),
        // O = 90 over 256 pixels: 32×128 tiles, 3 × 2 of them; K = 81, two sources.
        Case { slope: 0.2, ..case("k3_two_src_O90_16x16", 1, &[7, 2], 90, 16, 16, 3, Pre::ShiftBC, false, true) },
        // 1×1 without a pre-activation, 64×64 tile.
        case("k1_two_src_no_pre_bias_res", 2, &[5, 3], 10, 7, 9, 1, Pre::Off, true, true),
        // 1×1 with the pre-activation, 32×128 tiles (O = 20 over 200 pixels).
        case("k1_one_src_shiftC_O20", 1, &[6], 20, 2, 100, 1, Pre::ShiftC, true, false),
        // Size 1 (every tap but the centre in the padding).
        case("k3_size1_B2", 2, &[3], 2, 1, 1, 3, Pre::ShiftBC, false, false),
        // One row, K = 9 < 16.
        case("k3_h1_w7_no_pre", 1, &[1], 3, 1, 7, 3, Pre::Off, true, false),
        // Second source with no channels (x1 passed as null), no channels at all (K = 0), empty image.
        case("k3_second_src_empty", 2, &[3, 0], 4, 3, 5, 3, Pre::ShiftBC, true, false),
        case("k1_no_channels_bias_res", 1, &[0], 3, 2, 3, 1, Pre::Off, true, true),
        case("k3_h0", 2, &[2], 3, 0, 5, 3, Pre::ShiftC, true, true),
        // Time-FiLM on every version: both tile shapes, k = 3 and 1, one and two sources, both shifts.
        // O = 70 over 63 pixels (64×64 tiles), K = 63, two sources.
        timed(Add, case("k3_time_add_two_src_shiftBC_bias_res_O70", 2, &[3, 4], 70, 7, 9, 3, Pre::ShiftBC, true, true)),
        // O = 5 over 165 pixels (32×128 tiles), a pixel tile spanning several rows.
        timed(Gate, case("k3_time_gate_one_src_shiftC_bias_O5", 2, &[5], 5, 5, 33, 3, Pre::ShiftC, true, false)),
        Case { slope: 0.2, ..timed(Add, case("k3_time_add_one_src_shiftC_O90_16x16", 1, &[9], 90, 16, 16, 3, Pre::ShiftC, false, true)) },
        timed(Gate, case("k3_time_gate_two_src_shiftBC_O20", 2, &[4, 3], 20, 6, 7, 3, Pre::ShiftBC, false, false)),
        timed(Add, case("k1_time_add_two_src_shiftBC_O20", 2, &[4, 2], 20, 2, 100, 1, Pre::ShiftBC, true, false)),
        timed(Gate, case("k1_time_gate_one_src_shiftC_bias_res", 2, &[6], 10, 7, 9, 1, Pre::ShiftC, true, true)),
        timed(Add, case("k3_time_add_size1_B2", 2, &[3], 2, 1, 1, 3, Pre::ShiftBC, false, false)),
        timed(Gate, case("k3_time_gate_second_src_empty", 2, &[3, 0], 4, 3, 5, 3, Pre::ShiftBC, true, false)),
    ]
}

/// The tensors of one case (weights scaled by 1/√K so outputs are O(1)).
struct Data {
    xs: Vec<Tensor>,
    weight: Tensor,
    bias: Tensor,
    res: Tensor,
    scale: Tensor,
    shift: Tensor,
    /// Time-FiLM values (B, ΣC, H), read when the case has time-FiLM.
    time: Tensor,
}

impl Data {
    fn new(c: &Case, seed: u64) -> Data {
        let t = |shape: &[usize], seed: u64, f: &dyn Fn(f32) -> f32| {
            let n = shape.iter().product();
            Tensor::from_vec(rand_vec(n, seed).into_iter().map(f).collect(), shape).unwrap()
        };
        let id = |v: f32| v;
        let wscale = 1.0 / (c.kdim().max(1) as f32).sqrt();
        let ct = c.ct();
        let shift_shape: Vec<usize> = if c.pre == Pre::ShiftBC { vec![c.b, ct] } else { vec![ct] };
        Data {
            xs: c.cin.iter().enumerate().map(|(s, &ch)| t(&[c.b, ch, c.h, c.w], seed + s as u64, &id)).collect(),
            weight: t(&[c.o, ct, c.k, c.k], seed + 3, &|v| v * wscale),
            bias: t(&[c.o], seed + 4, &|v| 0.3 * v),
            res: t(&c.out_shape(), seed + 5, &id),
            // BatchNorm-like: scale in [0.5, 1.5), shift in [-0.5, 0.5).
            scale: t(&[ct], seed + 6, &|v| 1.0 + 0.5 * v),
            shift: t(&shift_shape, seed + 7, &|v| 0.5 * v),
            // Add: β_t in [-0.5, 0.5) (moves values across the LeakyReLU's kink); Gate: a σ(β_t)-like
            // gate in [0.1, 1).
            time: match c.time {
                Some(Gate) => t(&[c.b, ct, c.h], seed + 8, &|v| 0.55 + 0.45 * v),
                _ => t(&[c.b, ct, c.h], seed + 8, &|v| 0.5 * v),
            },
        }
    }

    fn to_device(&self, dev: Device) -> Data {
        let m = |t: &Tensor| t.to_device(dev).unwrap();
        Data {
            xs: self.xs.iter().map(m).collect(),
            weight: m(&self.weight),
            bias: m(&self.bias),
            res: m(&self.res),
            scale: m(&self.scale),
            shift: m(&self.shift),
            time: m(&self.time),
        }
    }

    /// The same data with the weight stored as f16 (on the CPU: the CPU op then computes with the
    /// f16 values widened to f32 — exactly the weight v3 multiplies by).
    fn with_f16_weight(&self) -> Data {
        Data {
            xs: self.xs.clone(),
            weight: to_f16(&self.weight).unwrap(),
            bias: self.bias.clone(),
            res: self.res.clone(),
            scale: self.scale.clone(),
            shift: self.shift.clone(),
            time: self.time.clone(),
        }
    }

    fn call(&self, c: &Case, v: Option<u32>) -> aural_runtime::Result<Tensor> {
        let ins: Vec<&Tensor> = self.xs.iter().collect();
        let time = c.time.map(|mode| TimeFilm { values: &self.time, mode });
        let pre = (c.pre != Pre::Off).then_some(PreAct { scale: &self.scale, shift: &self.shift, slope: c.slope, time });
        let p = Conv2d { weight: &self.weight, bias: c.bias.then_some(&self.bias), pre, residual: c.res.then_some(&self.res) };
        conv2d_version(&ins, &p, v)
    }
}

/// The naive reference in f64, straight from the module doc's formula, and per output element the
/// sums S = Σ|W·a| and Q = (Σ (W·a)²)^½ over its C·k² terms (for the f16 error bound).
struct Naive {
    out: Vec<f32>,
    abs_sum: Vec<f64>,
    l2: Vec<f64>,
}

fn naive(c: &Case, d: &Data) -> Naive {
    let xs: Vec<Vec<f32>> = d.xs.iter().map(|t| t.to_vec().unwrap()).collect();
    let (w, bias, res, scale, shift) =
        (d.weight.to_vec().unwrap(), d.bias.to_vec().unwrap(), d.res.to_vec().unwrap(), d.scale.to_vec().unwrap(), d.shift.to_vec().unwrap());
    let time = d.time.to_vec().unwrap();
    let (ct, k, p) = (c.ct(), c.k as isize, (c.k / 2) as isize);
    // Activated input a[b][c][h][w] (f64), channels of the two sources concatenated.
    let mut a = vec![0f64; c.b * ct * c.h * c.w];
    for b in 0..c.b {
        let mut cg = 0;
        for (s, x) in xs.iter().enumerate() {
            let cs = c.cin[s];
            for ch in 0..cs {
                for i in 0..c.h * c.w {
                    let v = x[(b * cs + ch) * c.h * c.w + i] as f64;
                    let av = match c.pre {
                        Pre::Off => v,
                        _ => {
                            let sh = if c.pre == Pre::ShiftBC { shift[b * ct + cg] } else { shift[cg] };
                            // t[b, c, h] of this element's row h = i / W.
                            let tv = time[(b * ct + cg) * c.h + i / c.w] as f64;
                            let mut y = v * scale[cg] as f64 + sh as f64;
                            if c.time == Some(Add) {
                                y += tv;
                            }
                            if y < 0.0 {
                                y *= c.slope as f64;
                            }
                            if c.time == Some(Gate) {
                                y *= tv;
                            }
                            y
                        }
                    };
                    a[(b * ct + cg) * c.h * c.w + i] = av;
                }
                cg += 1;
            }
        }
    }
    let n = c.b * c.o * c.h * c.w;
    let (mut out, mut abs_sum, mut l2) = (vec![0f32; n], vec![0f64; n], vec![0f64; n]);
    for b in 0..c.b {
        for o in 0..c.o {
            for h in 0..c.h as isize {
                for x in 0..c.w as isize {
                    let (mut acc, mut sa, mut sq) = (0f64, 0f64, 0f64);
                    for ch in 0..ct {
                        for i in 0..k {
                            for j in 0..k {
                                let (hh, ww) = (h + i - p, x + j - p);
                                if hh < 0 || ww < 0 || hh >= c.h as isize || ww >= c.w as isize {
                                    continue;
                                }
                                let t = w[((o * ct + ch) * c.k + i as usize) * c.k + j as usize] as f64
                                    * a[((b * ct + ch) * c.h + hh as usize) * c.w + ww as usize];
                                acc += t;
                                sa += t.abs();
                                sq += t * t;
                            }
                        }
                    }
                    let idx = ((b * c.o + o) * c.h + h as usize) * c.w + x as usize;
                    if c.bias {
                        acc += bias[o] as f64;
                    }
                    if c.res {
                        acc += res[idx] as f64;
                    }
                    out[idx] = acc as f32;
                    abs_sum[idx] = sa;
                    l2[idx] = sq.sqrt();
                }
            }
        }
    }
    Naive { out, abs_sum, l2 }
}

/// f32 tolerance: the CPU (gemm), v1 and v2 sum the same f32 terms in different orders; with the
/// outputs O(1) (weights scaled by 1/√K) the difference is a few ulps.
const F32_TOL: (f32, f32) = (1e-5, 1e-5);

/// v3 against a reference that used the same f16 weight values (the CPU op with the f16 weight).
///
/// Why this tolerance: v3 rounds each activated input a to f16 (round to nearest: relative error
/// |δ| ≤ 2^-11 = u₁₆, or an absolute 2^-25 in f16's subnormal range), multiplies by the f16 weight
/// exactly and accumulates in f32; the CPU sums the same products of unrounded a in f32. So for an
/// output with terms t_q = W_q·a_q (q < K = C·k²):
///   |v3 − cpu| ≤ u₁₆·Σ|t_q|  (rounding of a)  +  2·γ_K·Σ|t_q|  (two f32 sums, γ_K ≈ K·2^-24)
///               + 2^-25·Σ|W_q|  (subnormals)  +  2^-23·|out|  (the final residual/bias add)
/// — a worst-case bound, checked per element (it cannot fail by bad luck, and a real bug, e.g. a
/// dropped or misplaced tap, costs ~|t_q| ≫ 2^-11·Σ|t|). Typical error: the roundings are
/// independent and unbiased; for mantissas m uniform in [1, 2) the relative error of
/// round-to-nearest has RMS 2^-11·(E[1/m²]/3)^½ = 2^-11/√6 ≈ 0.41·2^-11, so the error of a K-term dot
/// product grows like √K·2^-11·|t|, precisely ≈ 0.41·2^-11·‖t‖₂. The second criterion (over ≥ 50
/// outputs) bounds the RMS of err / (2^-11·‖t‖₂) by 0.6 (measured 0.35–0.43 on these cases; 0.27–0.30
/// for the two-rounding comparison, whose denominator is 2·2^-11·‖t‖₂): a systematic error —
/// truncation instead of rounding (~0.8), an f16 accumulator, a weight rounded twice — exceeds it.
/// `extra_rel`: relative error already present in the reference's weight (2^-11 when the reference
/// used the f32 weight that was rounded to f16 for v3, as the bench compares).
fn check_f16(what: &str, c: &Case, got: &[f32], want: &[f32], nv: &Naive, extra_rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let u16 = 2f64.powi(-11);
    let gamma = c.kdim() as f64 * 2f64.powi(-24);
    let (mut sum_r2, mut count) = (0f64, 0usize);
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i] as f64).abs();
        let bound = (u16 + extra_rel + 2.0 * gamma) * nv.abs_sum[i] * (1.0 + extra_rel) + 2f64.powi(-23) * (want[i].abs() as f64) + 1e-6;
        if err.is_nan() || err > bound {
            let hw = c.h * c.w;
            let (bo, px) = (i / hw, i % hw);
            panic!(
                "{what}: mismatch at index {i} (b {}, o {}, h {}, w {}): got {} want {} (|err| {err:.3e} > bound {bound:.3e}, Σ|W·a| {:.3e})",
                bo / c.o,
                bo % c.o,
                px / c.w,
                px % c.w,
                got[i],
                want[i],
                nv.abs_sum[i]
            );
        }
        if nv.l2[i] > 1e-3 {
            sum_r2 += (err / ((u16 + extra_rel) * nv.l2[i])).powi(2);
            count += 1;
        }
    }
    if count >= 50 {
        let rms = (sum_r2 / count as f64).sqrt();
        assert!(rms <= 0.6, "{what}: RMS of err / (2^-11·‖W·a‖₂) over {count} outputs is {rms:.3} > 0.6: more than f16 rounding of the input");
    }
}

#[test]
fn cpu_matches_naive_loop() {
    for (i, c) in cpu_cases().iter().enumerate() {
        let d = Data::new(c, 1000 + 10 * i as u64);
        let got = d.call(c, None).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(got.shape(), c.out_shape(), "{}", c.name);
        assert_eq!(got.dtype(), DType::F32);
        let want = naive(c, &d);
        assert_close(&format!("conv2d cpu {}", c.name), &got.to_vec().unwrap(), &want.out, F32_TOL.0, F32_TOL.1);
    }
}

#[test]
fn cpu_with_f16_weight_uses_its_f32_values() {
    let c = &cpu_cases()[1];
    let d = Data::new(c, 77).with_f16_weight();
    let got = d.call(c, None).unwrap();
    assert_close("conv2d cpu f16 weight", &got.to_vec().unwrap(), &naive(c, &d).out, F32_TOL.0, F32_TOL.1);
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for (i, c) in kernel_cases().iter().enumerate() {
            let d = Data::new(c, 2000 + 10 * i as u64);
            let g = d.to_device(dev);
            let want = d.call(c, None).unwrap().to_vec().unwrap();
            for v in [Some(1), Some(2), None] {
                let got = g.call(c, v).unwrap_or_else(|e| panic!("{dev} {} v{v:?}: {e}", c.name));
                assert_eq!((got.device(), got.shape(), got.dtype()), (dev, &c.out_shape()[..], DType::F32));
                assert_close(&format!("{dev} conv2d {:?} {}", v, c.name), &got.to_vec().unwrap(), &want, F32_TOL.0, F32_TOL.1);
            }
            // v3: f16 weight; reference = the CPU with the same f16 weight, and (as the bench) with the
            // f32 weight it was rounded from.
            let d16 = d.with_f16_weight();
            let g16 = d16.to_device(dev);
            let want16 = d16.call(c, None).unwrap().to_vec().unwrap();
            let nv16 = naive(c, &d16);
            for v in [Some(3), None] {
                let got = g16.call(c, v).unwrap_or_else(|e| panic!("{dev} {} v{v:?} f16: {e}", c.name));
                assert_eq!((got.device(), got.shape(), got.dtype()), (dev, &c.out_shape()[..], DType::F32));
                let got = got.to_vec().unwrap();
                check_f16(&format!("{dev} conv2d {v:?} f16 {} vs cpu f16 weight", c.name), c, &got, &want16, &nv16, 0.0);
                if v.is_none() {
                    check_f16(&format!("{dev} conv2d f16 {} vs cpu f32 weight", c.name), c, &got, &want, &naive(c, &d), 2f64.powi(-11));
                }
            }
        }
    }
}

/// t = 0 with Add and t = 1 with Gate leave the activation unchanged in every rounding step
/// ((z + 0) = z, leaky(z)·1 = leaky(z)), so the output must equal the one without time-FiLM exactly,
/// on the CPU and on every kernel version: the time path must not disturb anything else.
#[test]
fn neutral_time_film_changes_nothing() {
    let base = case("k3_two_src_shiftBC_bias_res_O70", 2, &[3, 4], 70, 7, 9, 3, Pre::ShiftBC, true, true);
    let k1 = case("k1_one_src_shiftC_O20", 2, &[6], 20, 2, 100, 1, Pre::ShiftC, true, false);
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu_devices());
    for c in [base, k1] {
        let d = Data::new(&c, 4242);
        for (mode, value) in [(Add, 0.0f32), (Gate, 1.0)] {
            let tc = timed(mode, c);
            let dt = Data { time: Tensor::full(&[c.b, c.ct(), c.h], value, Device::Cpu).unwrap(), ..d.to_device(Device::Cpu) };
            for &dev in &devices {
                let runs: Vec<(Option<u32>, Data, Data)> = if dev.is_cpu() {
                    vec![(None, d.to_device(dev), dt.to_device(dev))]
                } else {
                    vec![
                        (Some(1), d.to_device(dev), dt.to_device(dev)),
                        (Some(2), d.to_device(dev), dt.to_device(dev)),
                        (Some(3), d.with_f16_weight().to_device(dev), dt.with_f16_weight().to_device(dev)),
                    ]
                };
                for (v, plain, neutral) in runs {
                    let want = plain.call(&c, v).unwrap().to_vec().unwrap();
                    let got = neutral.call(&tc, v).unwrap_or_else(|e| panic!("{dev} {} {mode:?} v{v:?}: {e}", c.name)).to_vec().unwrap();
                    assert_close(&format!("{dev} conv2d {v:?} {} neutral {mode:?}", c.name), &got, &want, 0.0, 0.0);
                }
            }
        }
    }
}

#[test]
fn version_and_dtype_errors() {
    let c = &kernel_cases()[5];
    let d = Data::new(c, 5);
    for dev in gpu_devices() {
        let g = d.to_device(dev);
        let g16 = d.with_f16_weight().to_device(dev);
        let e = g.call(c, Some(3)).unwrap_err().to_string();
        assert!(e.contains("conv2d") && e.contains("version 3") && e.contains("f32"), "{e}");
        for v in [1, 2] {
            let e = g16.call(c, Some(v)).unwrap_err().to_string();
            assert!(e.contains(&format!("conv2d_fwd_f32_v{v}")) && e.contains(&format!("version {v}")) && e.contains("f16"), "{e}");
        }
        let e = g.call(c, Some(7)).unwrap_err().to_string();
        assert!(e.contains("no version 7"), "{e}");
        // Grid limits are checked on the host: 65536 batch items (grid.z), 65536 channels for v1 (grid.y).
        let one = |shape: &[usize]| Tensor::full(shape, 1.0, dev).unwrap();
        let (x, w) = (one(&[65536, 1, 1, 1]), one(&[1, 1, 1, 1]));
        let e = conv2d(&[&x], &Conv2d { weight: &w, bias: None, pre: None, residual: None }).unwrap_err().to_string();
        assert!(e.contains("conv2d_fwd_f32_v2") && e.contains("65535") && e.contains("[65536, 1, 1, 1]"), "{e}");
        let (x, w) = (one(&[1, 1, 1, 1]), one(&[65536, 1, 1, 1]));
        let e = conv2d_version(&[&x], &Conv2d { weight: &w, bias: None, pre: None, residual: None }, Some(1)).unwrap_err().to_string();
        assert!(e.contains("conv2d_fwd_f32_v1") && e.contains("65535") && e.contains("[1, 65536, 1, 1]"), "{e}");
    }
    // On the CPU the version is ignored.
    assert!(d.call(c, Some(3)).is_ok());
}

#[test]
fn errors_name_the_shapes() {
    let r = |shape: &[usize]| Tensor::from_vec(rand_vec(shape.iter().product(), 9), shape).unwrap();
    let (x0, x1) = (r(&[2, 3, 7, 9]), r(&[2, 4, 7, 9]));
    let w7 = r(&[6, 7, 3, 3]);
    let conv = |w| Conv2d { weight: w, bias: None, pre: None, residual: None };
    // Weight with the wrong input channels / kernel size.
    let bad_w = r(&[6, 8, 3, 3]);
    let e = conv2d(&[&x0, &x1], &conv(&bad_w)).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("[6, 8, 3, 3]") && e.contains("(O, 7, k, k)") && e.contains("[3, 4]"), "{e}");
    let w5 = r(&[6, 7, 5, 5]);
    let e = conv2d(&[&x0, &x1], &conv(&w5)).unwrap_err().to_string();
    assert!(e.contains("[6, 7, 5, 5]") && e.contains("k = 1 or 3"), "{e}");
    // Sources that do not share B, H, W.
    let x1h = r(&[2, 4, 6, 9]);
    let e = conv2d(&[&x0, &x1h], &conv(&w7)).unwrap_err().to_string();
    assert!(e.contains("[2, 3, 7, 9]") && e.contains("[2, 4, 6, 9]"), "{e}");
    let x1b = r(&[1, 4, 7, 9]);
    let e = conv2d(&[&x0, &x1b], &conv(&w7)).unwrap_err().to_string();
    assert!(e.contains("[2, 3, 7, 9]") && e.contains("[1, 4, 7, 9]"), "{e}");
    // Three sources, none.
    let e = conv2d(&[&x0, &x1, &x1], &conv(&w7)).unwrap_err().to_string();
    assert!(e.contains("got 3"), "{e}");
    assert!(conv2d(&[], &conv(&w7)).is_err());
    // Pre-activation shift / scale shapes.
    let scale = r(&[7]);
    for bad in [vec![3, 7], vec![2, 6], vec![6]] {
        let shift = r(&bad);
        let p = Conv2d { pre: Some(PreAct { scale: &scale, shift: &shift, slope: 0.01, time: None }), ..conv(&w7) };
        let e = conv2d(&[&x0, &x1], &p).unwrap_err().to_string();
        assert!(e.contains(&format!("{bad:?}")) && e.contains("[7] or [2, 7]"), "{e}");
    }
    let (scale6, shift7) = (r(&[6]), r(&[7]));
    let p = Conv2d { pre: Some(PreAct { scale: &scale6, shift: &shift7, slope: 0.01, time: None }), ..conv(&w7) };
    let e = conv2d(&[&x0, &x1], &p).unwrap_err().to_string();
    assert!(e.contains("[6]") && e.contains("[7]"), "{e}");
    // Time-FiLM values must be (B, ΣC, H) = [2, 7, 7], f32.
    let shift27 = r(&[2, 7]);
    for bad in [vec![2, 7, 9], vec![2, 3, 7], vec![1, 7, 7], vec![2, 7], vec![2, 7, 7, 9]] {
        let t = r(&bad);
        for mode in [Add, Gate] {
            let pre = PreAct { scale: &scale, shift: &shift27, slope: 0.01, time: Some(TimeFilm { values: &t, mode }) };
            let e = conv2d(&[&x0, &x1], &Conv2d { pre: Some(pre), ..conv(&w7) }).unwrap_err().to_string();
            assert!(e.contains("conv2d") && e.contains("time-FiLM") && e.contains(&format!("{bad:?}")) && e.contains("[2, 7, 7]"), "{e}");
        }
    }
    let t16 = to_f16(&r(&[2, 7, 7])).unwrap();
    let pre = PreAct { scale: &scale, shift: &shift27, slope: 0.01, time: Some(TimeFilm { values: &t16, mode: Add }) };
    let e = conv2d(&[&x0, &x1], &Conv2d { pre: Some(pre), ..conv(&w7) }).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.to_lowercase().contains("f16"), "{e}");
    // Bias and residual.
    let bias = r(&[5]);
    let e = conv2d(&[&x0, &x1], &Conv2d { bias: Some(&bias), ..conv(&w7) }).unwrap_err().to_string();
    assert!(e.contains("bias [5]") && e.contains("[6]"), "{e}");
    let res = r(&[2, 6, 7, 8]);
    let e = conv2d(&[&x0, &x1], &Conv2d { residual: Some(&res), ..conv(&w7) }).unwrap_err().to_string();
    assert!(e.contains("[2, 6, 7, 8]") && e.contains("[2, 6, 7, 9]"), "{e}");
}

/// Golden check against PyTorch (tests/golden/separator.py, `ops_fixture`, seed 100, torch 2.9.1 CPU):
/// ```python
/// pre = lambda x, scale, shift, beta: F.leaky_relu(
///     x * scale[:, None, None] + shift[:, None, None] + beta[:, :, None, None], 0.01)
/// conv3_out = F.conv2d(pre(conv3_x, conv3_pre_scale, conv3_pre_shift, conv3_beta), conv3_w, padding=1)
/// cat_out = F.conv2d(pre(torch.cat((cat_x1, cat_x2), 1), conv3_pre_scale, conv3_pre_shift, conv3_beta),
///                    conv3_w, padding=1)
/// conv1_out = F.conv2d(conv1_x, conv1_w, conv1_b)
/// ```
/// Our shift is (B, C) = pre_shift[c] + beta[b, c] (FiLM's β folded in, as the separator passes it).
/// On the CPU and every GPU device: v1, v2 (f32 weight) at 1e-5, and v3 (f16 weight) at 2e-3 + 2e-3·|ref|:
/// the weight and the activated input each rounded to f16 (2^-11 relative) over K ≤ 45 terms with
/// |out| ≤ 2.7. The same rounding done in PyTorch (f64 conv of the f16-rounded operands) reaches at
/// most 0.41 of that tolerance (max |err| 1.7e-3 on conv1, 7.8e-4 on the 3×3 cases).
#[test]
fn golden_pytorch() {
    let path = fixture_path("separator_ops.safetensors");
    if !path.exists() {
        eprintln!("golden_pytorch: SKIPPED ({} not written yet: run tests/golden/separator.py)", path.display());
        return;
    }
    let f = fixture("separator_ops.safetensors");
    let get = |n: &str| f.get(n).unwrap_or_else(|| panic!("separator_ops.safetensors has no tensor {n}")).clone();
    let beta = get("conv3_beta").to_vec().unwrap();
    let sh = get("conv3_pre_shift").to_vec().unwrap();
    let (b, ch) = (get("conv3_beta").shape()[0], sh.len());
    let shift_bc = Tensor::from_vec((0..b * ch).map(|i| sh[i % ch] + beta[i]).collect(), &[b, ch]).unwrap();
    let scale = get("conv3_pre_scale");
    // (name, inputs, weight, bias, pre-activation?, expected)
    type Golden = (&'static str, Vec<Tensor>, Tensor, Option<Tensor>, bool, Tensor);
    let cases: Vec<Golden> = vec![
        ("conv3", vec![get("conv3_x")], get("conv3_w"), None, true, get("conv3_out")),
        ("cat", vec![get("cat_x1"), get("cat_x2")], get("conv3_w"), None, true, get("cat_out")),
        ("conv1", vec![get("conv1_x")], get("conv1_w"), Some(get("conv1_b")), false, get("conv1_out")),
    ];
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu_devices());
    for (name, xs, w, bias, pre, want) in &cases {
        let want = want.to_vec().unwrap();
        for &dev in &devices {
            let m = |t: &Tensor| t.to_device(dev).unwrap();
            let xs_d: Vec<Tensor> = xs.iter().map(m).collect();
            let ins: Vec<&Tensor> = xs_d.iter().collect();
            let (scale_d, shift_d, bias_d) = (m(&scale), m(&shift_bc), bias.as_ref().map(m));
            let pa = pre.then_some(PreAct { scale: &scale_d, shift: &shift_d, slope: 0.01, time: None });
            let runs: Vec<(Option<u32>, Tensor, f32)> = if dev.is_cpu() {
                vec![(None, m(w), 1e-5)]
            } else {
                vec![(Some(1), m(w), 1e-5), (Some(2), m(w), 1e-5), (Some(3), m(&to_f16(w).unwrap()), 2e-3)]
            };
            for (v, wt, tol) in runs {
                let p = Conv2d { weight: &wt, bias: bias_d.as_ref(), pre: pa, residual: None };
                let got = conv2d_version(&ins, &p, v).unwrap_or_else(|e| panic!("{dev} {name} {v:?}: {e}"));
                assert_close(&format!("golden {name} {dev} {v:?}"), &got.to_vec().unwrap(), &want, tol, tol);
            }
        }
    }
}
