//! Helpers for tests and benches: tolerance checks that print the first mismatch (ggml's
//! test-backend-ops style), the devices a test should cover, golden fixtures, and seeded data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{Device, Tensor};

/// Devices a parity test runs on: the emulator always; a real GPU when one is usable. When
/// `AURAL_REQUIRE_GPU=1` and none is usable, panics (a skip becomes a failure on GPU machines).
pub fn gpu_devices() -> Vec<Device> {
    let mut v = vec![Device::Emu];
    match crate::gpu::probe(0) {
        Ok(_) => v.push(Device::Cuda(0)),
        Err(why) => {
            if std::env::var("AURAL_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("AURAL_REQUIRE_GPU=1 but no GPU is usable: {why}");
            }
        }
    }
    v
}

/// Path of a committed golden fixture (`tests/golden/fixtures/<name>`). `AURAL_FIXTURES` overrides
/// the folder (prebuilt test binaries run on another machine, e.g. a GPU host).
pub fn fixture_path(name: &str) -> PathBuf {
    match std::env::var("AURAL_FIXTURES") {
        Ok(dir) => PathBuf::from(dir).join(name),
        Err(_) => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/fixtures")).join(name),
    }
}

/// Loads a golden fixture file.
pub fn fixture(name: &str) -> BTreeMap<String, Tensor> {
    let p = fixture_path(name);
    crate::safetensors_io::load(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// Asserts |got − want| ≤ atol + rtol·|want| everywhere (NaN must match NaN), and that the
/// normalised error ‖got − want‖ / (‖want‖ + ε) is ≤ `rtol.max(atol)`·10. Panics with the first
/// mismatching index, the values and the worst error.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs expected {}", got.len(), want.len());
    let mut worst = (0usize, 0f32);
    let mut first_bad: Option<usize> = None;
    let (mut num, mut den) = (0f64, 0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() || g.is_nan() {
            if !(w.is_nan() && g.is_nan()) && first_bad.is_none() {
                first_bad = Some(i);
            }
            continue;
        }
        if w.is_infinite() || g.is_infinite() {
            if g != w && first_bad.is_none() {
                first_bad = Some(i);
            }
            continue;
        }
        let e = (g - w).abs();
        num += (e as f64).powi(2);
        den += (w as f64).powi(2);
        if e > worst.1 {
            worst = (i, e);
        }
        if e > atol + rtol * w.abs() && first_bad.is_none() {
            first_bad = Some(i);
        }
    }
    if let Some(i) = first_bad {
        panic!("{what}: mismatch at index {i}: got {} want {} (atol {atol}, rtol {rtol}); worst abs error {} at {}", got[i], want[i], worst.1, worst.0);
    }
    let nerr = (num.sqrt() / (den.sqrt() + 1e-12)) as f32;
    assert!(nerr <= rtol.max(atol) * 10.0 + 1e-7, "{what}: normalised error {nerr} too large");
}

/// Tensor version of [`assert_close`].
pub fn assert_tensor_close(what: &str, got: &Tensor, want: &Tensor, atol: f32, rtol: f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_close(what, &got.to_vec().unwrap(), &want.to_vec().unwrap(), atol, rtol);
}

/// Deterministic pseudo-random values in [-1, 1) (SplitMix64), for tests and benches.
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A seeded random CPU tensor.
pub fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(rand_vec(crate::numel(shape), seed), shape).unwrap()
}
