//! Attention: CPU vs a naive f64 loop (long and short paths, every layout, odd sizes), properties,
//! and every kernel version under the emulator (and a real GPU when present) vs the CPU.

use aural_runtime::ops::attention::{
    attention, attention_heads, attention_heads_version, attention_qkv, attention_qkv_version, attention_version, default_version,
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
        let e = attention_version(&t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(), &t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(), &t(&[1, 40, 80], 1, 1.0).to_device(dev).unwrap(), 1.0, Some(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("attention_fwd_f32_v2") && e.contains("head dim 80"), "{e}");
    }
}
