//! Attention: CPU vs a naive f64 loop (long and short paths, every layout, odd sizes), properties,
//! and every kernel version under the emulator (and a real GPU when present) vs the CPU. Backward: the
//! packed-QKV gradient vs a naive f64 backward (short path, and long path over several 128-row query
//! blocks), the heads layout vs the packed one, and `attention_bwd_f32_v1` / the composed GPU path
//! under the emulator (and a GPU) vs the CPU.

use aural_runtime::ops::attention::{
    attention, attention_heads, attention_heads_bwd, attention_heads_version, attention_qkv, attention_qkv_bwd, attention_qkv_bwd_version,
    attention_qkv_version, attention_version, bwd_default_version, default_version,
};
use aural_runtime::testing::{assert_close, gpu_devices, rand_vec};
use aural_runtime::Tensor;

fn t(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rand_vec(n, seed).iter().map(|v| v * scale).collect(), shape).unwrap()
}

/// Naive f64 attention over (N, S, Dh).
fn naive(q: &[f32], k: &[f32], v: &[f32], n: usize, s: usize, dh: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; n * s * dh];
    for u in 0..n {
        let at = |x: &[f32], i: usize, d: usize| x[(u * s + i) * dh + d] as f64;
        for i in 0..s {
            let sc: Vec<f64> = (0..s).map(|j| scale as f64 * (0..dh).map(|d| at(q, i, d) * at(k, j, d)).sum::<f64>()).collect();
            let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
            let l: f64 = e.iter().sum();
            for d in 0..dh {
                out[(u * s + i) * dh + d] = ((0..s).map(|j| e[j] * at(v, j, d)).sum::<f64>() / l) as f32;
            }
        }
    }
    out
}

/// (B, S, H·Dh) → (B·H, S, Dh).
fn split_heads(x: &[f32], b: usize, s: usize, h: usize, dh: usize) -> Vec<f32> {
    let mut o = vec![0f32; x.len()];
    for bi in 0..b {
        for si in 0..s {
            for hi in 0..h {
                for d in 0..dh {
                    o[((bi * h + hi) * s + si) * dh + d] = x[(bi * s + si) * h * dh + hi * dh + d];
                }
            }
        }
    }
    o
}

// (N, S, Dh): long path (> 32, partial 64-row blocks), short path, size 1.
const CASES: &[(usize, usize, usize)] = &[(1, 1, 1), (2, 3, 5), (3, 13, 24), (2, 32, 16), (2, 33, 8), (1, 70, 64), (2, 130, 17), (1, 200, 64)];

#[test]
fn cpu_matches_naive() {
    for (ci, &(n, s, dh)) in CASES.iter().enumerate() {
        let (q, k, v) = (t(&[n, s, dh], 10 + ci as u64, 2.0), t(&[n, s, dh], 30 + ci as u64, 2.0), t(&[n, s, dh], 50 + ci as u64, 1.0));
        let scale = 1.0 / (dh as f32).sqrt();
        let got = attention(&q, &k, &v, scale).unwrap();
        assert_eq!(got.shape(), &[n, s, dh]);
        let want = naive(&q.to_vec().unwrap(), &k.to_vec().unwrap(), &v.to_vec().unwrap(), n, s, dh, scale);
        assert_close(&format!("attention cpu {n}x{s}x{dh}"), &got.to_vec().unwrap(), &want, 2e-6, 1e-5);
    }
}

#[test]
fn heads_and_packed_layouts_match_split_heads() {
    for &(b, s, h, dh) in &[(2usize, 13usize, 4usize, 12usize), (1, 77, 3, 16), (2, 40, 2, 8)] {
        let w = h * dh;
        let qkv = t(&[b, s, 3 * w], 7 + s as u64, 2.0);
        let all = qkv.to_vec().unwrap();
        let part = |c: usize| -> Vec<f32> { all.chunks(3 * w).flat_map(|r| r[c * w..(c + 1) * w].to_vec()).collect() };
        let (q, k, v) = (part(0), part(1), part(2));
        let scale = 0.3;
        let want_nsd = naive(&split_heads(&q, b, s, h, dh), &split_heads(&k, b, s, h, dh), &split_heads(&v, b, s, h, dh), b * h, s, dh, scale);
        let packed = attention_qkv(&qkv, h, scale).unwrap();
        assert_eq!(packed.shape(), &[b, s, w]);
        let got = split_heads(&packed.to_vec().unwrap(), b, s, h, dh);
        assert_close("attention packed qkv", &got, &want_nsd, 2e-6, 1e-5);
        let tq = Tensor::from_vec(q, &[b, s, w]).unwrap();
        let tk = Tensor::from_vec(k, &[b, s, w]).unwrap();
        let tv = Tensor::from_vec(v, &[b, s, w]).unwrap();
        let sep = attention_heads(&tq, &tk, &tv, h, scale).unwrap();
        assert_eq!(sep.to_vec().unwrap(), packed.to_vec().unwrap(), "separate and packed layouts differ");
    }
}

#[test]
fn large_logits_are_stable_and_rows_average_v() {
    // Scores of ±1000 would overflow a naive exp; with constant V every output equals V.
    let (n, s, dh) = (1, 40, 8);
    let q = t(&[n, s, dh], 1, 100.0);
    let k = t(&[n, s, dh], 2, 100.0);
    let v = Tensor::from_vec(vec![0.25; n * s * dh], &[n, s, dh]).unwrap();
    let y = attention(&q, &k, &v, 1.0).unwrap().to_vec().unwrap();
    assert!(y.iter().all(|&x| (x - 0.25).abs() < 1e-6), "{:?}", &y[..8]);
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let a = t(&[2, 5, 8], 1, 1.0);
    let b = t(&[2, 6, 8], 1, 1.0);
    let e = attention(&a, &b, &a, 1.0).unwrap_err().to_string();
    assert!(e.contains("attention") && e.contains("[2, 6, 8]"), "{e}");
    let e = attention_heads(&a, &a, &a, 3, 1.0).unwrap_err().to_string();
    assert!(e.contains("3 heads"), "{e}");
    let e = attention_qkv(&t(&[1, 4, 10], 1, 1.0), 2, 1.0).unwrap_err().to_string();
    assert!(e.contains("3·H·Dh"), "{e}");
}

#[test]
fn dispatcher() {
    assert_eq!(default_version(13, 192), 3);
    assert_eq!(default_version(1214, 64), 2);
    assert_eq!(default_version(1214, 96), 1);
    assert_eq!(default_version(32, 200), 1); // v3 tiles would need > 48 KiB
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        // (N, S, Dh) layout: every version where it applies; partial 64-row / 32-key tiles, dh < 64.
        for &(n, s, dh) in &[(2usize, 1usize, 4usize), (2, 13, 24), (1, 32, 64), (2, 33, 8), (1, 70, 64), (1, 65, 40)] {
            let (q, k, v) = (t(&[n, s, dh], 3, 2.0), t(&[n, s, dh], 4, 2.0), t(&[n, s, dh], 5, 1.0));
            let scale = 1.0 / (dh as f32).sqrt();
            let want = attention(&q, &k, &v, scale).unwrap().to_vec().unwrap();
            let (gq, gk, gv) = (q.to_device(dev).unwrap(), k.to_device(dev).unwrap(), v.to_device(dev).unwrap());
            let mut versions = vec![1u32, 2];
            if s <= 32 {
                versions.push(3);
            }
            for ver in versions {
                let got = attention_version(&gq, &gk, &gv, scale, Some(ver)).unwrap_or_else(|e| panic!("{dev} v{ver}: {e}"));
                assert_close(&format!("{dev} attention v{ver} {n}x{s}x{dh}"), &got.to_vec().unwrap(), &want, 1e-6, 1e-5);
            }
        }
        // Packed QKV (B, S, 3·H·Dh): AST-SED-like short sequences (13 tokens, 4 heads, Dh 48) on v1/v3,
        // and a long one on v1/v2.
        for &(b, s, h, dh, ref vs) in &[(3usize, 13usize, 4usize, 48usize, vec![1u32, 3]), (1, 67, 2, 32, vec![1, 2])] {
            let qkv = t(&[b, s, 3 * h * dh], 9, 2.0);
            let scale = 1.0 / (dh as f32).sqrt();
            let want = attention_qkv(&qkv, h, scale).unwrap().to_vec().unwrap();
            let g = qkv.to_device(dev).unwrap();
            for &ver in vs {
                let got = attention_qkv_version(&g, h, scale, Some(ver)).unwrap();
                assert_close(&format!("{dev} attention qkv v{ver} {b}x{s}x{h}x{dh}"), &got.to_vec().unwrap(), &want, 1e-6, 1e-5);
            }
            let auto = attention_qkv(&g, h, scale).unwrap();
            assert_close(&format!("{dev} attention qkv auto"), &auto.to_vec().unwrap(), &want, 1e-6, 1e-5);
        }
        // Separate (B, S, H·Dh) tensors.
        let (q, k, v) = (t(&[2, 9, 32], 11, 1.0), t(&[2, 9, 32], 12, 1.0), t(&[2, 9, 32], 13, 1.0));
        let want = attention_heads(&q, &k, &v, 2, 0.25).unwrap().to_vec().unwrap();
        let got = attention_heads_version(&q.to_device(dev).unwrap(), &k.to_device(dev).unwrap(), &v.to_device(dev).unwrap(), 2, 0.25, Some(3)).unwrap();
        assert_close(&format!("{dev} attention heads v3"), &got.to_vec().unwrap(), &want, 1e-6, 1e-5);
        // A version that cannot run says why.
        let e = attention_version(
            &t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(),
            &t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(),
            &t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(),
            1.0,
            Some(2),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("attention_fwd_f32_v2") && e.contains("head dim 80"), "{e}");
    }
}

/// Naive f64 backward of packed-QKV attention: qkv (B, S, 3W), dout (B, S, W) → dqkv (B, S, 3W).
fn naive_bwd(qkv: &[f32], dout: &[f32], b: usize, s: usize, h: usize, dh: usize, scale: f32) -> Vec<f32> {
    let w = h * dh;
    let mut g = vec![0f64; qkv.len()];
    let sc = scale as f64;
    for bi in 0..b {
        for hi in 0..h {
            let at = |part: usize, i: usize, d: usize| qkv[(bi * s + i) * 3 * w + part * w + hi * dh + d] as f64;
            let dat = |i: usize, d: usize| dout[(bi * s + i) * w + hi * dh + d] as f64;
            let gi = |part: usize, i: usize, d: usize| (bi * s + i) * 3 * w + part * w + hi * dh + d;
            for i in 0..s {
                let sv: Vec<f64> = (0..s).map(|j| sc * (0..dh).map(|d| at(0, i, d) * at(1, j, d)).sum::<f64>()).collect();
                let m = sv.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sv.iter().map(|x| (x - m).exp()).collect();
                let l: f64 = e.iter().sum();
                let p: Vec<f64> = e.iter().map(|x| x / l).collect();
                let dp: Vec<f64> = (0..s).map(|j| (0..dh).map(|d| dat(i, d) * at(2, j, d)).sum::<f64>()).collect();
                let dsum: f64 = (0..s).map(|j| p[j] * dp[j]).sum();
                for j in 0..s {
                    let ds = p[j] * (dp[j] - dsum);
                    for d in 0..dh {
                        g[gi(0, i, d)] += sc * ds * at(1, j, d);
                        g[gi(1, j, d)] += sc * ds * at(0, i, d);
                        g[gi(2, j, d)] += p[j] * dat(i, d);
                    }
                }
            }
        }
    }
    g.iter().map(|&x| x as f32).collect()
}

/// (B, S, heads, Dh): the AST-SED frequency-wise shape (scaled down), size 1, odd sizes, and long
/// sequences over two and three query blocks of the CPU's long path.
const BWD_CASES: &[(usize, usize, usize, usize)] = &[(2, 13, 3, 4), (1, 1, 1, 3), (3, 7, 2, 5), (2, 32, 2, 8), (1, 33, 2, 3), (1, 150, 2, 5), (1, 300, 1, 7)];

#[test]
fn backward_cpu_matches_naive() {
    for (ci, &(b, s, h, dh)) in BWD_CASES.iter().enumerate() {
        let w = h * dh;
        let qkv = t(&[b, s, 3 * w], 300 + ci as u64, 1.5);
        let dout = t(&[b, s, w], 310 + ci as u64, 1.0);
        let scale = 1.0 / (dh as f32).sqrt();
        let o = attention_qkv(&qkv, h, scale).unwrap();
        let g = attention_qkv_bwd(&qkv, &o, &dout, h, scale).unwrap();
        assert_eq!(g.shape(), qkv.shape());
        let want = naive_bwd(&qkv.to_vec().unwrap(), &dout.to_vec().unwrap(), b, s, h, dh, scale);
        assert_close(&format!("attention bwd B{b} S{s} H{h} Dh{dh}"), &g.to_vec().unwrap(), &want, 1e-5, 1e-4);
        // The heads layout gives the same gradients, split.
        let (q, k, v) = (slice(&qkv, 0, w), slice(&qkv, w, w), slice(&qkv, 2 * w, w));
        let (dq, dk, dv) = attention_heads_bwd(&q, &k, &v, &o, &dout, h, scale).unwrap();
        let (wq, wk, wv) = (slice(&g, 0, w), slice(&g, w, w), slice(&g, 2 * w, w));
        assert_eq!(dq.to_vec().unwrap(), wq.to_vec().unwrap(), "heads dq");
        assert_eq!(dk.to_vec().unwrap(), wk.to_vec().unwrap(), "heads dk");
        assert_eq!(dv.to_vec().unwrap(), wv.to_vec().unwrap(), "heads dv");
    }
}

fn slice(x: &Tensor, start: usize, len: usize) -> Tensor {
    aural_runtime::ops::shape::slice(x, 2, start, len).unwrap()
}

#[test]
fn backward_kernels_match_cpu() {
    // Short cases take the kernel (and the composed path); long ones the composed path. The
    // AST-SED shape itself (13 tokens, 4 heads × 192) fits v1's shared memory.
    // v2 (flash): sequences over one 64-row block and several key tiles (S = 150: 3 blocks, 5 key
    // tiles, 10 query tiles with a tail), Dh = 64 exactly and odd.
    let cases: &[(usize, usize, usize, usize)] =
        &[(2, 13, 3, 4), (1, 1, 1, 3), (3, 7, 2, 5), (2, 32, 2, 8), (1, 13, 1, 192), (1, 40, 2, 5), (1, 150, 2, 7), (2, 70, 1, 64), (1, 33, 2, 65)];
    for dev in gpu_devices() {
        for (ci, &(b, s, h, dh)) in cases.iter().enumerate() {
            let w = h * dh;
            let qkv = t(&[b, s, 3 * w], 400 + ci as u64, 1.5);
            let dout = t(&[b, s, w], 410 + ci as u64, 1.0);
            let scale = 1.0 / (dh as f32).sqrt();
            let o = attention_qkv(&qkv, h, scale).unwrap();
            let want = attention_qkv_bwd(&qkv, &o, &dout, h, scale).unwrap().to_vec().unwrap();
            let (gq, go, gd) = (qkv.to_device(dev).unwrap(), o.to_device(dev).unwrap(), dout.to_device(dev).unwrap());
            let versions: Vec<u32> = [0u32, 1, 2].into_iter().filter(|&v| (v != 1 || s <= 32) && (v != 2 || dh <= 64)).collect();
            for v in versions {
                let what = format!("{dev} attention bwd v{v} B{b} S{s} H{h} Dh{dh}");
                let got = attention_qkv_bwd_version(&gq, &go, &gd, h, scale, Some(v)).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_close(&what, &got.to_vec().unwrap(), &want, 1e-5, 1e-4);
            }
            let what = format!("{dev} attention bwd default B{b} S{s} H{h} Dh{dh}");
            assert_close(&what, &attention_qkv_bwd(&gq, &go, &gd, h, scale).unwrap().to_vec().unwrap(), &want, 1e-5, 1e-4);
            // The heads layout on the device.
            let (q, k, v) = (slice(&gq, 0, w), slice(&gq, w, w), slice(&gq, 2 * w, w));
            let (dq, _dk, dv) = attention_heads_bwd(&q, &k, &v, &go, &gd, h, scale).unwrap();
            let wq: Vec<f32> = (0..b * s).flat_map(|r| want[r * 3 * w..r * 3 * w + w].to_vec()).collect();
            let wv: Vec<f32> = (0..b * s).flat_map(|r| want[r * 3 * w + 2 * w..r * 3 * w + 3 * w].to_vec()).collect();
            assert_close(&format!("{what} heads dq"), &dq.to_vec().unwrap(), &wq, 1e-5, 1e-4);
            assert_close(&format!("{what} heads dv"), &dv.to_vec().unwrap(), &wv, 1e-5, 1e-4);
        }
        if dev == aural_runtime::Device::Emu {
            let qkv = t(&[1, 40, 6], 1, 1.0).to_device(dev).unwrap();
            let o = attention_qkv(&qkv, 1, 0.5).unwrap();
            let e = attention_qkv_bwd_version(&qkv, &o, &o, 1, 0.5, Some(1)).unwrap_err().to_string();
            assert!(e.contains("attention_bwd_f32_v1") && e.contains("40"), "{e}");
            let qkv = t(&[1, 40, 3 * 65], 1, 1.0).to_device(dev).unwrap();
            let o = attention_qkv(&qkv, 1, 0.5).unwrap();
            let e = attention_qkv_bwd_version(&qkv, &o, &o, 1, 0.5, Some(2)).unwrap_err().to_string();
            assert!(e.contains("attention_bwd_f32_v2") && e.contains("65"), "{e}");
        }
    }
}

#[test]
fn backward_dispatcher() {
    assert_eq!(bwd_default_version(13, 192, 404), 1, "AST-SED frequency-wise attention: the short kernel");
    assert_eq!(bwd_default_version(1214, 64, 12), 0, "AST, one clip: composed (faster on an H100, 71 MB of scores)");
    assert_eq!(bwd_default_version(1214, 64, 12 * 8), 2, "AST, 8 clips: flash style (no 566 MB of scores)");
    assert_eq!(bwd_default_version(40, 65, 1 << 20), 0, "composed: Dh > 64");
    assert_eq!(bwd_default_version(32, 192, 1), 0, "32 × 192 tiles exceed v1's 48 KiB, Dh > 64");
}
