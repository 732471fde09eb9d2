//! Patch embedding: CPU vs a naive convolution loop (odd strides, partial tiles, prefix tokens,
//! position embedding), errors, and both kernel versions under the emulator (and a real GPU) vs CPU.
//! The HF/PyTorch golden for the AST geometry is the AST model test (models/tests/ast.rs).

use aural_runtime::ops::patch_embed::{grid_size, patch_embed, patch_embed_version, PatchEmbed};
use aural_runtime::testing::{assert_close, gpu_devices, rand_tensor};
use aural_runtime::{Device, Tensor};

struct Case {
    b: usize,
    frames: usize,
    mel: usize,
    ph: usize,
    pw: usize,
    fs: usize,
    ts: usize,
    n: usize,
    prefix: usize,
    pos: bool,
}

fn inputs(c: &Case, seed: u64) -> Vec<Tensor> {
    let (fo, to) = grid_size(c.mel, c.frames, c.ph, c.pw, c.fs, c.ts).unwrap();
    vec![
        rand_tensor(&[c.b, c.frames, c.mel], seed),
        rand_tensor(&[c.n, 1, c.ph, c.pw], seed + 1),
        rand_tensor(&[c.n], seed + 2),
        rand_tensor(&[c.prefix.max(1), c.n], seed + 3),
        rand_tensor(&[1, c.prefix + fo * to, c.n], seed + 4),
    ]
}

fn call(t: &[Tensor], c: &Case, v: Option<u32>) -> aural_runtime::Result<Tensor> {
    let pe = PatchEmbed { weight: &t[1], bias: &t[2], stride: (c.fs, c.ts), prefix: (c.prefix > 0).then_some(&t[3]), pos: c.pos.then_some(&t[4]) };
    patch_embed_version(&t[0], &pe, v)
}

/// Conv2d over img[b, m, t] = x[b, t, m] (f64), flattened frequency-major, prefix rows, + pos.
fn naive(t: &[Tensor], c: &Case) -> Vec<f32> {
    let v: Vec<Vec<f32>> = t.iter().map(|x| x.to_vec().unwrap()).collect();
    let (x, w, bias, pre, pos) = (&v[0], &v[1], &v[2], &v[3], &v[4]);
    let (fo, to) = grid_size(c.mel, c.frames, c.ph, c.pw, c.fs, c.ts).unwrap();
    let rows = c.prefix + fo * to;
    let mut out = vec![0f32; c.b * rows * c.n];
    for b in 0..c.b {
        for r in 0..rows {
            for o in 0..c.n {
                let mut acc = if r < c.prefix {
                    pre[r * c.n + o] as f64
                } else {
                    let p = r - c.prefix;
                    let (f, tt) = (p / to, p % to);
                    let mut s = bias[o] as f64;
                    for i in 0..c.ph {
                        for j in 0..c.pw {
                            s += w[(o * c.ph + i) * c.pw + j] as f64 * x[(b * c.frames + tt * c.ts + j) * c.mel + f * c.fs + i] as f64;
                        }
                    }
                    s
                };
                if c.pos {
                    acc += pos[r * c.n + o] as f64;
                }
                out[(b * rows + r) * c.n + o] = acc as f32;
            }
        }
    }
    out
}

fn cases() -> Vec<Case> {
    vec![
        // AST geometry, small: 16×16 patches, stride 10, cls + distillation, pos.
        Case { b: 2, frames: 48, mel: 32, ph: 16, pw: 16, fs: 10, ts: 10, n: 24, prefix: 2, pos: true },
        // Rectangular kernel, unequal strides, no prefix, no pos, N not a multiple of 16/64.
        Case { b: 1, frames: 23, mel: 11, ph: 3, pw: 5, fs: 2, ts: 3, n: 70, prefix: 0, pos: false },
        // One patch, stride larger than the kernel.
        Case { b: 1, frames: 4, mel: 4, ph: 4, pw: 4, fs: 7, ts: 9, n: 5, prefix: 1, pos: true },
        // > 64 rows (two row tiles), K = 16·16 with a prefix.
        Case { b: 1, frames: 96, mel: 40, ph: 16, pw: 16, fs: 12, ts: 4, n: 16, prefix: 2, pos: true },
    ]
}

#[test]
fn cpu_matches_naive_conv() {
    for (i, c) in cases().iter().enumerate() {
        let t = inputs(c, 100 + 10 * i as u64);
        let got = call(&t, c, None).unwrap();
        let (fo, to) = grid_size(c.mel, c.frames, c.ph, c.pw, c.fs, c.ts).unwrap();
        assert_eq!(got.shape(), &[c.b, c.prefix + fo * to, c.n]);
        assert_close(&format!("patch_embed cpu case {i}"), &got.to_vec().unwrap(), &naive(&t, c), 1e-5, 1e-5);
    }
}

#[test]
fn errors_name_the_shapes() {
    let c = &cases()[0];
    let t = inputs(c, 1);
    let bad_pos = rand_tensor(&[7, c.n], 3);
    let pe = PatchEmbed { weight: &t[1], bias: &t[2], stride: (10, 10), prefix: Some(&t[3]), pos: Some(&bad_pos) };
    let e = patch_embed(&t[0], &pe).unwrap_err().to_string();
    assert!(e.contains("patch_embed") && e.contains("[7, 24]"), "{e}");
    let small = rand_tensor(&[1, 8, 8], 2);
    let pe = PatchEmbed { weight: &t[1], bias: &t[2], stride: (10, 10), prefix: None, pos: None };
    let e = patch_embed(&small, &pe).unwrap_err().to_string();
    assert!(e.contains("[1, 8, 8]") && e.contains("16×16"), "{e}");
}

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for (i, c) in cases().iter().enumerate() {
            let t = inputs(c, 200 + 10 * i as u64);
            let want = call(&t, c, None).unwrap().to_vec().unwrap();
            let g: Vec<Tensor> = t.iter().map(|x| x.to_device(dev).unwrap()).collect();
            for v in [Some(1), Some(2), None] {
                let got = call(&g, c, v).unwrap_or_else(|e| panic!("{dev} {v:?}: {e}"));
                assert_eq!(got.device(), dev);
                assert_close(&format!("{dev} patch_embed {v:?} case {i}"), &got.to_vec().unwrap(), &want, 1e-5, 1e-5);
            }
        }
    }
    let _ = Device::Cpu;
}
