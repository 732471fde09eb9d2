//! GRU: CPU vs a naive f64 loop (odd sizes, 1–2 layers, 1–2 directions, with/without biases and h0),
//! CPU vs torch.nn.GRU golden values (2-layer BiGRU over 1010 steps, length 1, h0, bias=False, and the
//! AST-SED size 768 → 384), h_n, shape errors, and every kernel version under the emulator (and a real
//! GPU when present) vs the CPU. Backward (training): the saved pre-activations and the gradients of
//! one layer vs a naive f64 backpropagation through time, and `gru_bwd_f32_v1` under the emulator (and
//! a GPU) vs the CPU.

use std::collections::BTreeMap;

use aural_runtime::ops::gru::{
    bwd_default_version, bwd_v2_config, gru, gru_bwd, gru_bwd_version, gru_train_forward, gru_version, gru_with_state, random_weights, GruDirWeights,
    GruWeights,
};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_tensor};
use aural_runtime::Tensor;

fn sig(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The textbook loop in f64: per layer, per direction, per step, per unit.
fn naive(x: &Tensor, w: &GruWeights, h0: Option<&Tensor>) -> (Vec<f32>, Vec<f32>) {
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let (d, h) = (w.num_directions(), w.hidden_size());
    let mut cur: Vec<f64> = x.to_vec().unwrap().iter().map(|&v| v as f64).collect();
    let mut width = x.shape()[2];
    let h0v = h0.map(|t| t.to_vec().unwrap());
    let mut hn = Vec::new();
    for (l, dirs) in w.layers.iter().enumerate() {
        let mut out = vec![0f64; b * t * d * h];
        for (di, dw) in dirs.iter().enumerate() {
            let f = |t: &Tensor| -> Vec<f64> { t.to_vec().unwrap().iter().map(|&v| v as f64).collect() };
            let (wih, whh) = (f(&dw.w_ih), f(&dw.w_hh));
            let bih = dw.b_ih.as_ref().map(f).unwrap_or(vec![0.0; 3 * h]);
            let bhh = dw.b_hh.as_ref().map(f).unwrap_or(vec![0.0; 3 * h]);
            for bi in 0..b {
                let mut hs: Vec<f64> = match &h0v {
                    Some(v) => v[((l * d + di) * b + bi) * h..][..h].iter().map(|&v| v as f64).collect(),
                    None => vec![0.0; h],
                };
                for s in 0..t {
                    let tt = if di == 1 { t - 1 - s } else { s };
                    let xin = &cur[(bi * t + tt) * width..][..width];
                    let gi = |r: usize| bih[r] + (0..width).map(|k| wih[r * width + k] * xin[k]).sum::<f64>();
                    let gh = |r: usize| bhh[r] + (0..h).map(|k| whh[r * h + k] * hs[k]).sum::<f64>();
                    let new: Vec<f64> = (0..h)
                        .map(|j| {
                            let r = sig(gi(j) + gh(j));
                            let z = sig(gi(h + j) + gh(h + j));
                            let n = (gi(2 * h + j) + r * gh(2 * h + j)).tanh();
                            (1.0 - z) * n + z * hs[j]
                        })
                        .collect();
                    hs = new;
                    out[(bi * t + tt) * d * h + di * h..][..h].copy_from_slice(&hs);
                }
                hn.push(((l * d + di) * b + bi, hs));
            }
        }
        cur = out;
        width = d * h;
    }
    hn.sort_by_key(|(k, _)| *k);
    (cur.iter().map(|&v| v as f32).collect(), hn.into_iter().flat_map(|(_, v)| v.into_iter().map(|x| x as f32)).collect())
}

fn without_biases(w: &GruWeights) -> GruWeights {
    let layers = w.layers.iter().map(|ds| ds.iter().map(|d| GruDirWeights { b_ih: None, b_hh: None, ..d.clone() }).collect()).collect();
    GruWeights::new(layers).unwrap()
}

/// (B, T, I, H, layers, bidirectional)
const CASES: &[(usize, usize, usize, usize, usize, bool)] =
    &[(1, 1, 1, 1, 1, false), (1, 5, 3, 2, 1, true), (2, 9, 7, 5, 2, true), (3, 4, 16, 12, 1, false), (1, 13, 10, 37, 2, true), (2, 6, 20, 64, 1, true)];

#[test]
fn cpu_matches_naive() {
    for (ci, &(b, t, i, h, layers, bi)) in CASES.iter().enumerate() {
        let w = random_weights(i, h, layers, bi, 10 + ci as u64).unwrap();
        let d = if bi { 2 } else { 1 };
        let x = rand_tensor(&[b, t, i], 20 + ci as u64);
        let h0 = rand_tensor(&[layers * d, b, h], 30 + ci as u64);
        for (wname, w) in [("bias", w.clone()), ("nobias", without_biases(&w))] {
            for h0o in [None, Some(&h0)] {
                let what = format!("gru B{b} T{t} I{i} H{h} L{layers} bi{bi} {wname} h0 {}", h0o.is_some());
                let (y, hn) = gru_with_state(&x, &w, h0o, bi).unwrap();
                assert_eq!(y.shape(), &[b, t, d * h], "{what}");
                assert_eq!(hn.shape(), &[layers * d, b, h], "{what}");
                let (want, want_hn) = naive(&x, &w, h0o);
                assert_close(&what, &y.to_vec().unwrap(), &want, 1e-5, 1e-5);
                assert_close(&format!("{what} h_n"), &hn.to_vec().unwrap(), &want_hn, 1e-5, 1e-5);
                assert_eq!(gru(&x, &w, h0o, bi).unwrap().to_vec().unwrap(), y.to_vec().unwrap(), "{what}: gru vs gru_with_state");
            }
        }
    }
}

#[test]
fn empty_sequences() {
    let w = random_weights(3, 4, 2, true, 1).unwrap();
    let y = gru(&Tensor::zeros(&[2, 0, 3], aural_runtime::DType::F32, aural_runtime::Device::Cpu).unwrap(), &w, None, true).unwrap();
    assert_eq!(y.shape(), &[2, 0, 8]);
    let h0 = rand_tensor(&[4, 2, 4], 5);
    let (_, hn) = gru_with_state(&Tensor::zeros(&[2, 0, 3], aural_runtime::DType::F32, aural_runtime::Device::Cpu).unwrap(), &w, Some(&h0), true).unwrap();
    assert_eq!(hn.to_vec().unwrap(), h0.to_vec().unwrap(), "h_n of an empty sequence is h0");
}

#[test]
fn shape_errors_name_the_shapes() {
    let w = random_weights(6, 4, 1, true, 1).unwrap();
    let e = gru(&rand_tensor(&[2, 3, 5], 1), &w, None, true).unwrap_err().to_string();
    assert!(e.contains("[2, 3, 5]") && e.contains("6"), "{e}");
    let e = gru(&rand_tensor(&[2, 3, 6], 1), &w, None, false).unwrap_err().to_string();
    assert!(e.contains("bidirectional"), "{e}");
    let e = gru(&rand_tensor(&[2, 3, 6], 1), &w, Some(&rand_tensor(&[2, 1, 4], 2)), true).unwrap_err().to_string();
    assert!(e.contains("h0") && e.contains("[2, 1, 4]") && e.contains("[2, 2, 4]"), "{e}");
    let mut m = BTreeMap::new();
    m.insert("gru.weight_ih_l0".to_string(), rand_tensor(&[12, 6], 1));
    m.insert("gru.weight_hh_l0".to_string(), rand_tensor(&[12, 5], 1));
    let e = GruWeights::from_tensors(&m, "gru.", 1, false).unwrap_err().to_string();
    assert!(e.contains("weight_hh_l0") && e.contains("[12, 5]"), "{e}");
    let e = GruWeights::from_tensors(&m, "gru.", 1, true).unwrap_err().to_string();
    assert!(e.contains("gru.weight_ih_l0_reverse") && e.contains("missing"), "{e}");
}

/// The `big` case's weights: see tests/golden/gru.py (exact integer hash, same on both sides).
fn hashed(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n as u64)
        .map(|i| {
            let u = (i * 2654435761 + seed * 40503 + 12345) % (1u64 << 32);
            ((u as f64 / 2f64.powi(31) - 1.0) / 32.0) as f32
        })
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// Golden values from PyTorch 2.9.1 (tests/golden/gru.py, seed 0):
/// ```python
/// g = torch.nn.GRU(16, 12, num_layers=2, bidirectional=True, batch_first=True)
/// g(torch.randn(1, 1010, 16)); g(torch.randn(2, 1, 16), torch.randn(4, 2, 12)); g(torch.randn(2, 7, 16), h0)
/// u = torch.nn.GRU(5, 7, bias=False, batch_first=True); u(torch.randn(2, 9, 5))
/// b = torch.nn.GRU(768, 384, bidirectional=True, batch_first=True)  # hashed weights
/// b(torch.randn(1, 3, 768))
/// ```
#[test]
fn cpu_matches_pytorch_golden() {
    let f = fixture("gru.safetensors");
    assert_eq!(GruWeights::detect(&f, "small."), (2, true));
    let small = GruWeights::from_tensors(&f, "small.", 2, true).unwrap();
    for case in ["long", "t1", "h0"] {
        let h0 = f.get(&format!("{case}.h0"));
        let (y, hn) = gru_with_state(&f[&format!("{case}.x")], &small, h0, true).unwrap();
        assert_close(&format!("gru golden {case}"), &y.to_vec().unwrap(), &f[&format!("{case}.out")].to_vec().unwrap(), 1e-5, 1e-5);
        assert_close(&format!("gru golden {case} h_n"), &hn.to_vec().unwrap(), &f[&format!("{case}.hn")].to_vec().unwrap(), 1e-5, 1e-5);
    }
    assert_eq!(GruWeights::detect(&f, "uni."), (1, false));
    let uni = GruWeights::from_tensors(&f, "uni.", 1, false).unwrap();
    assert!(uni.layers[0][0].b_ih.is_none());
    let (y, hn) = gru_with_state(&f["uni.x"], &uni, None, false).unwrap();
    assert_close("gru golden uni", &y.to_vec().unwrap(), &f["uni.out"].to_vec().unwrap(), 1e-5, 1e-5);
    assert_close("gru golden uni h_n", &hn.to_vec().unwrap(), &f["uni.hn"].to_vec().unwrap(), 1e-5, 1e-5);

    let (i, h) = (768, 384);
    let names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];
    let shapes = [vec![3 * h, i], vec![3 * h, h], vec![3 * h], vec![3 * h]];
    let mut m = BTreeMap::new();
    for (di, suffix) in ["", "_reverse"].iter().enumerate() {
        for (k, (n, s)) in names.iter().zip(&shapes).enumerate() {
            m.insert(format!("{n}{suffix}"), hashed(s, (di * 4 + k) as u64));
        }
    }
    let big = GruWeights::from_tensors(&m, "", 1, true).unwrap();
    let (y, hn) = gru_with_state(&f["big.x"], &big, None, true).unwrap();
    assert_close("gru golden big", &y.to_vec().unwrap(), &f["big.out"].to_vec().unwrap(), 1e-5, 1e-5);
    assert_close("gru golden big h_n", &hn.to_vec().unwrap(), &f["big.hn"].to_vec().unwrap(), 1e-5, 1e-5);
}

#[test]
fn kernels_match_cpu() {
    // (B, T, I, H, layers, bidirectional): sizes 1, odd, H not a multiple of 32, v2/v3 batch groups
    // of 2 plus a tail of 1 (B = 5), 2 layers.
    // v3 splits k over S = 8 groups for H ≤ 128 (H = 12: k-quads 3 over 8 groups, some empty).
    let cases: &[(usize, usize, usize, usize, usize, bool)] =
        &[(1, 1, 3, 1, 1, false), (1, 7, 5, 12, 1, true), (2, 20, 16, 48, 2, true), (5, 6, 4, 9, 1, true), (2, 11, 8, 33, 1, false), (5, 5, 6, 8, 1, true)];
    for dev in gpu_devices() {
        for (ci, &(b, t, i, h, layers, bi)) in cases.iter().enumerate() {
            let w = random_weights(i, h, layers, bi, 40 + ci as u64).unwrap();
            let d = if bi { 2 } else { 1 };
            let x = rand_tensor(&[b, t, i], 50 + ci as u64);
            let h0 = rand_tensor(&[layers * d, b, h], 60 + ci as u64);
            let (gw, gx, gh0) = (w.to_device(dev).unwrap(), x.to_device(dev).unwrap(), h0.to_device(dev).unwrap());
            let nb = without_biases(&w);
            let gnb = nb.to_device(dev).unwrap();
            for (wname, cw, dw) in [("bias", &w, &gw), ("nobias", &nb, &gnb)] {
                for with_h0 in [false, true] {
                    let want = gru(&x, cw, with_h0.then_some(&h0), bi).unwrap().to_vec().unwrap();
                    for v in [1u32, 2, 3].into_iter().filter(|&v| v != 3 || h % 4 == 0) {
                        let what = format!("{dev} gru v{v} B{b} T{t} I{i} H{h} L{layers} bi{bi} {wname} h0 {with_h0}");
                        let got = gru_version(&gx, dw, with_h0.then_some(&gh0), bi, v).unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(got.shape(), &[b, t, d * h], "{what}");
                        assert_close(&what, &got.to_vec().unwrap(), &want, 1e-5, 1e-5);
                    }
                }
            }
            if h % 4 != 0 {
                let e = gru_version(&gx, &gw, None, bi, 3).unwrap_err().to_string();
                assert!(e.contains("multiple of 4"), "{e}");
            }
            // The dispatcher's choice and h_n on the device.
            let (y, hn) = gru_with_state(&gx, &gw, Some(&gh0), bi).unwrap();
            let (wy, whn) = gru_with_state(&x, &w, Some(&h0), bi).unwrap();
            assert_close(&format!("{dev} gru default B{b} T{t}"), &y.to_vec().unwrap(), &wy.to_vec().unwrap(), 1e-5, 1e-5);
            assert_close(&format!("{dev} gru h_n B{b} T{t}"), &hn.to_vec().unwrap(), &whn.to_vec().unwrap(), 1e-5, 1e-5);
        }
    }
}

/// gru_repeat(x, u) = gru(repeat_interleave(x, 1, u)) on every device, 1–2 layers, u = 1, 3, 10.
#[test]
fn repeat_equals_upsampled_input() {
    use aural_runtime::ops::gru::gru_repeat;
    use aural_runtime::ops::shape::repeat_interleave;
    let mut devs = vec![aural_runtime::Device::Cpu];
    devs.extend(gpu_devices());
    for (ci, &(b, t, i, h, layers, u)) in [(2usize, 5usize, 7usize, 8usize, 1usize, 3usize), (1, 3, 4, 12, 2, 10), (3, 4, 6, 5, 1, 1)].iter().enumerate() {
        let w = random_weights(i, h, layers, true, 70 + ci as u64).unwrap();
        let x = rand_tensor(&[b, t, i], 80 + ci as u64);
        let want = gru(&repeat_interleave(&x, 1, u).unwrap(), &w, None, true).unwrap();
        for &dev in &devs {
            let got = gru_repeat(&x.to_device(dev).unwrap(), &w.to_device(dev).unwrap(), None, true, u).unwrap();
            assert_eq!(got.shape(), &[b, t * u, 2 * h]);
            assert_close(&format!("{dev} gru_repeat B{b} T{t} u{u} L{layers}"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-6, 1e-6);
        }
    }
    assert!(gru_repeat(&rand_tensor(&[1, 2, 3], 1), &random_weights(3, 4, 1, true, 1).unwrap(), None, true, 0).is_err());
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_vec().unwrap().iter().map(|&v| v as f64).collect()
}

/// Naive f64 backpropagation through time of one layer (h0 = 0): returns (dx, per direction
/// [dW_ih, dW_hh, db_ih, db_hh]) for the output gradient `dy`, and the forward's xp, gh, y.
#[allow(clippy::type_complexity)]
fn naive_bwd(x: &Tensor, w: &GruWeights, dy: &Tensor) -> (Vec<f64>, Vec<[Vec<f64>; 4]>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (b, t, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (d, h) = (w.num_directions(), w.hidden_size());
    let (xv, dyv) = (f64s(x), f64s(dy));
    let g3 = 3 * h;
    let mut dx = vec![0f64; b * t * i];
    let mut grads = Vec::new();
    let (mut xps, mut ghs, mut ys) = (vec![0f64; b * t * d * g3], vec![0f64; b * t * d * g3], vec![0f64; b * t * d * h]);
    for (di, dw) in w.layers[0].iter().enumerate() {
        let (wih, whh) = (f64s(&dw.w_ih), f64s(&dw.w_hh));
        let bih = dw.b_ih.as_ref().map(f64s).unwrap_or(vec![0.0; g3]);
        let bhh = dw.b_hh.as_ref().map(f64s).unwrap_or(vec![0.0; g3]);
        let (mut gwih, mut gwhh, mut gbih, mut gbhh) = (vec![0f64; g3 * i], vec![0f64; g3 * h], vec![0f64; g3], vec![0f64; g3]);
        for bi in 0..b {
            let order: Vec<usize> = if di == 1 { (0..t).rev().collect() } else { (0..t).collect() };
            // Forward, keeping every step's h_prev, xp, gh.
            let mut hs = vec![0f64; h];
            let mut tape = Vec::new();
            for &tt in &order {
                let xin = &xv[(bi * t + tt) * i..][..i];
                let xp: Vec<f64> = (0..g3).map(|r| bih[r] + (0..i).map(|k| wih[r * i + k] * xin[k]).sum::<f64>()).collect();
                let gh: Vec<f64> = (0..g3).map(|r| bhh[r] + (0..h).map(|k| whh[r * h + k] * hs[k]).sum::<f64>()).collect();
                let new: Vec<f64> = (0..h)
                    .map(|j| {
                        let r = sig(xp[j] + gh[j]);
                        let z = sig(xp[h + j] + gh[h + j]);
                        let n = (xp[2 * h + j] + r * gh[2 * h + j]).tanh();
                        (1.0 - z) * n + z * hs[j]
                    })
                    .collect();
                xps[(bi * t + tt) * d * g3 + di * g3..][..g3].copy_from_slice(&xp);
                ghs[(bi * t + tt) * d * g3 + di * g3..][..g3].copy_from_slice(&gh);
                ys[(bi * t + tt) * d * h + di * h..][..h].copy_from_slice(&new);
                tape.push((tt, hs.clone(), xp, gh));
                hs = new;
            }
            // Backward.
            let mut dh = vec![0f64; h];
            for (tt, hp, xp, gh) in tape.into_iter().rev() {
                for j in 0..h {
                    dh[j] += dyv[(bi * t + tt) * d * h + di * h + j];
                }
                let mut dxp = vec![0f64; g3];
                let mut dgh = vec![0f64; g3];
                let mut dhp = vec![0f64; h];
                for j in 0..h {
                    let r = sig(xp[j] + gh[j]);
                    let z = sig(xp[h + j] + gh[h + j]);
                    let n = (xp[2 * h + j] + r * gh[2 * h + j]).tanh();
                    let dn = dh[j] * (1.0 - z);
                    let dz = dh[j] * (hp[j] - n);
                    dhp[j] = dh[j] * z;
                    let da_n = dn * (1.0 - n * n);
                    let da_r = da_n * gh[2 * h + j] * r * (1.0 - r);
                    let da_z = dz * z * (1.0 - z);
                    dxp[j] = da_r;
                    dxp[h + j] = da_z;
                    dxp[2 * h + j] = da_n;
                    dgh[j] = da_r;
                    dgh[h + j] = da_z;
                    dgh[2 * h + j] = da_n * r;
                }
                let xin = &xv[(bi * t + tt) * i..][..i];
                for r in 0..g3 {
                    gbih[r] += dxp[r];
                    gbhh[r] += dgh[r];
                    for k in 0..i {
                        gwih[r * i + k] += dxp[r] * xin[k];
                        dx[(bi * t + tt) * i + k] += dxp[r] * wih[r * i + k];
                    }
                    for k in 0..h {
                        gwhh[r * h + k] += dgh[r] * hp[k];
                        dhp[k] += dgh[r] * whh[r * h + k];
                    }
                }
                dh = dhp;
            }
        }
        grads.push([gwih, gwhh, gbih, gbhh]);
    }
    (dx, grads, xps, ghs, ys)
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// (B, T, I, H, bidirectional): T = 1, odd sizes, B = 5 (v1's batch pairs plus a tail).
/// H = 12, 8 and 64 take v2 too (8 thread groups; H = 64: 2 · 32 threads per group).
const BWD_CASES: &[(usize, usize, usize, usize, bool)] =
    &[(1, 1, 3, 2, false), (2, 7, 5, 3, true), (1, 13, 4, 9, false), (5, 6, 7, 12, true), (3, 4, 2, 33, true), (1, 5, 3, 8, true), (2, 9, 6, 64, true)];

#[test]
fn backward_dispatcher() {
    assert_eq!(bwd_default_version(1, 384), 2);
    assert_eq!(bwd_default_version(1, 33), 1);
    assert_eq!(bwd_v2_config(384, 1), Some((8, (3 * 384 + 8 * 384) * 4)));
    assert_eq!(bwd_v2_config(384, 2).map(|c| c.0), Some(8));
    // H = 1024 needs 4 groups of 256 threads (so that 1024 threads run the gates), whose partial
    // sums overflow 48 KiB for a batch pair: v1.
    assert_eq!(bwd_v2_config(1024, 2), None);
    assert_eq!(bwd_default_version(2, 1024), 1);
}

#[test]
fn backward_cpu_matches_naive_bptt() {
    for (ci, &(b, t, i, h, bi)) in BWD_CASES.iter().enumerate() {
        let w = random_weights(i, h, 1, bi, 70 + ci as u64).unwrap();
        let d = if bi { 2 } else { 1 };
        let x = rand_tensor(&[b, t, i], 80 + ci as u64);
        let dy = rand_tensor(&[b, t, d * h], 90 + ci as u64);
        for (wname, w) in [("bias", w.clone()), ("nobias", without_biases(&w))] {
            let what = format!("gru bwd B{b} T{t} I{i} H{h} bi{bi} {wname}");
            let (y, saved) = gru_train_forward(&x, &w, bi).unwrap();
            let (dx, grads, xp, gh, yn) = naive_bwd(&x, &w, &dy);
            assert_close(&format!("{what} y"), &y.to_vec().unwrap(), &to32(&yn), 1e-5, 1e-5);
            assert_eq!(y.to_vec().unwrap(), gru(&x, &w, None, bi).unwrap().to_vec().unwrap(), "{what}: train forward vs gru");
            assert_close(&format!("{what} xp"), &saved.xp.to_vec().unwrap(), &to32(&xp), 1e-5, 1e-5);
            assert_close(&format!("{what} gh"), &saved.gh.to_vec().unwrap(), &to32(&gh), 1e-5, 1e-5);
            let g = gru_bwd(&x, &w, &y, &saved, &dy).unwrap();
            assert_close(&format!("{what} dx"), &g.dx.to_vec().unwrap(), &to32(&dx), 1e-5, 1e-4);
            for (di, (got, want)) in g.dirs.iter().zip(&grads).enumerate() {
                for (n, gt, wt) in
                    [("dw_ih", &got.dw_ih, &want[0]), ("dw_hh", &got.dw_hh, &want[1]), ("db_ih", &got.db_ih, &want[2]), ("db_hh", &got.db_hh, &want[3])]
                {
                    assert_close(&format!("{what} dir {di} {n}"), &gt.to_vec().unwrap(), &to32(wt), 1e-5, 1e-4);
                }
            }
        }
    }
}

#[test]
fn backward_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(b, t, i, h, bi)) in BWD_CASES.iter().enumerate() {
            let w = random_weights(i, h, 1, bi, 170 + ci as u64).unwrap();
            let d = if bi { 2 } else { 1 };
            let x = rand_tensor(&[b, t, i], 180 + ci as u64);
            let dy = rand_tensor(&[b, t, d * h], 190 + ci as u64);
            let what = format!("{dev} gru bwd B{b} T{t} I{i} H{h} bi{bi}");
            let (y, saved) = gru_train_forward(&x, &w, bi).unwrap();
            let want = gru_bwd(&x, &w, &y, &saved, &dy).unwrap();
            let (gw, gx, gdy) = (w.to_device(dev).unwrap(), x.to_device(dev).unwrap(), dy.to_device(dev).unwrap());
            let (gy, gsaved) = gru_train_forward(&gx, &gw, bi).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_close(&format!("{what} y"), &gy.to_vec().unwrap(), &y.to_vec().unwrap(), 1e-5, 1e-5);
            assert_close(&format!("{what} xp"), &gsaved.xp.to_vec().unwrap(), &saved.xp.to_vec().unwrap(), 1e-5, 1e-5);
            assert_close(&format!("{what} gh"), &gsaved.gh.to_vec().unwrap(), &saved.gh.to_vec().unwrap(), 1e-5, 1e-5);
            let versions: Vec<Option<u32>> = [None, Some(1), Some(2)].into_iter().filter(|v| *v != Some(2) || bwd_v2_config(h, b.min(2)).is_some()).collect();
            for v in versions {
                let what = format!("{what} v{v:?}");
                let got = gru_bwd_version(&gx, &gw, &gy, &gsaved, &gdy, v).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_close(&format!("{what} dx"), &got.dx.to_vec().unwrap(), &want.dx.to_vec().unwrap(), 1e-5, 1e-4);
                for (di, (g, c)) in got.dirs.iter().zip(&want.dirs).enumerate() {
                    for (n, gt, wt) in
                        [("dw_ih", &g.dw_ih, &c.dw_ih), ("dw_hh", &g.dw_hh, &c.dw_hh), ("db_ih", &g.db_ih, &c.db_ih), ("db_hh", &g.db_hh, &c.db_hh)]
                    {
                        assert_close(&format!("{what} dir {di} {n}"), &gt.to_vec().unwrap(), &wt.to_vec().unwrap(), 1e-5, 1e-4);
                    }
                }
            }
            if h % 4 != 0 {
                let e = gru_bwd_version(&gx, &gw, &gy, &gsaved, &gdy, Some(2)).unwrap_err().to_string();
                assert!(e.contains("gru_bwd_f32_v2") && e.contains("H % 4"), "{e}");
            }
        }
    }
}

#[test]
fn backward_shape_errors() {
    let w = random_weights(4, 3, 1, true, 1).unwrap();
    let x = rand_tensor(&[2, 5, 4], 1);
    let (y, saved) = gru_train_forward(&x, &w, true).unwrap();
    let e = gru_bwd(&x, &w, &y, &saved, &rand_tensor(&[2, 5, 3], 2)).unwrap_err().to_string();
    assert!(e.contains("dy") && e.contains("[2, 5, 3]"), "{e}");
    let w2 = random_weights(4, 3, 2, true, 1).unwrap();
    let e = gru_train_forward(&x, &w2, true).unwrap_err().to_string();
    assert!(e.contains("one layer"), "{e}");
}
