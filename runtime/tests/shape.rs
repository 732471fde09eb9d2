//! Shape ops (data movement): CPU vs naive index loops on odd shapes, CPU vs the PyTorch golden
//! fixture, every kernel version × dtype under the emulator (and a real GPU when present) vs the CPU —
//! bitwise, since nothing is computed — and clear shape errors.
//!
//! Golden fixture: `tests/golden/shape.py` (torch 2.9.1, seed 0) writes
//! `tests/golden/fixtures/shape.safetensors`; the snippet:
//! ```python
//! g = torch.Generator().manual_seed(0); r = lambda *s: torch.randn(*s, generator=g)
//! a, b, c = r(2, 3, 5), r(2, 4, 5), r(2, 1, 5);  t["cat.axis1"] = torch.cat([a, b, c], dim=1)
//! d, e = r(2, 3, 2), r(2, 3, 7);                  t["cat2.axis_neg1"] = torch.cat([d, e], dim=-1)
//! x = r(3, 17, 4);  t["narrow.1.2.9"] = torch.narrow(x, 1, 2, 9);  t["step.1.1.16.3"] = x[:, 1:16:3]
//! p = r(3, 5, 7, 2);  t["permute.2031"] = p.permute(2, 0, 3, 1);  t["transpose.1.2"] = p.transpose(1, 2)
//! h = r(17, 3, 4);  t["heads.102"] = h.permute(1, 0, 2)
//! ph = p.half();  t["permute_f16.3120"] = ph.permute(3, 1, 2, 0)
//! u = r(1, 4, 5);  t["repeat.2.x3"] = torch.repeat_interleave(u, 3, dim=2)
//! t["interp_nearest.x3"] = F.interpolate(u, scale_factor=3, mode="nearest")
//! t["repeat.1.x2"] = torch.repeat_interleave(u, 2, dim=1)
//! idx = torch.tensor([4, 0, 0, 2, 16]);  t["index_select.1"] = torch.index_select(x, 1, idx)
//! ```

use aural_runtime::ops::shape::{concat, index_select, permute, permute_version, repeat_interleave, slice, slice_step, transpose, PermKind, PermPlan};
use aural_runtime::testing::{fixture, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{f16, numel, DType, Tensor};

// ------------------------------------------------------------------ naive references

/// Row-major multi-index of linear index `i`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &s)| acc * s + i)
}

/// out[idx] = x[idx with idx[axis] replaced by src_row(idx[axis])].
fn naive_rows(x: &[f32], shape: &[usize], axis: usize, out_len: usize, src_row: impl Fn(usize) -> usize) -> (Vec<f32>, Vec<usize>) {
    let mut os = shape.to_vec();
    os[axis] = out_len;
    let v = (0..numel(&os))
        .map(|i| {
            let mut idx = unravel(i, &os);
            idx[axis] = src_row(idx[axis]);
            x[ravel(&idx, shape)]
        })
        .collect();
    (v, os)
}

fn naive_permute(x: &[f32], shape: &[usize], dims: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let os: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let v = (0..numel(&os))
        .map(|i| {
            let oi = unravel(i, &os);
            let mut ii = vec![0; shape.len()];
            for (k, &d) in dims.iter().enumerate() {
                ii[d] = oi[k];
            }
            x[ravel(&ii, shape)]
        })
        .collect();
    (v, os)
}

fn naive_concat(xs: &[(Vec<f32>, Vec<usize>)], axis: usize) -> (Vec<f32>, Vec<usize>) {
    let mut os = xs[0].1.clone();
    os[axis] = xs.iter().map(|x| x.1[axis]).sum();
    let v = (0..numel(&os))
        .map(|i| {
            let mut idx = unravel(i, &os);
            let mut k = 0;
            while idx[axis] >= xs[k].1[axis] {
                idx[axis] -= xs[k].1[axis];
                k += 1;
            }
            xs[k].0[ravel(&idx, &xs[k].1)]
        })
        .collect();
    (v, os)
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|x| x.to_bits()).collect()
}

#[track_caller]
fn assert_same(what: &str, got: &Tensor, want: &[f32], shape: &[usize]) {
    assert_eq!(got.shape(), shape, "{what}: shape");
    let g = got.to_vec().unwrap();
    if let Some(i) = (0..want.len()).find(|&i| g[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: mismatch at index {i} ({:?}): got {} want {}", unravel(i, shape), g[i], want[i]);
    }
}

// ------------------------------------------------------------------ cases

const SHAPES: &[&[usize]] = &[&[1], &[17], &[3, 129], &[1, 3, 17], &[3, 17, 1, 5], &[2, 3, 4, 5]];

/// Every permutation of 0..r.
fn perms(r: usize) -> Vec<Vec<usize>> {
    if r == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in perms(r - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, r - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn cpu_matches_naive_loops() {
    for (si, &s) in SHAPES.iter().enumerate() {
        let x = rand_tensor(s, 10 + si as u64);
        let xv = x.to_vec().unwrap();
        for dims in perms(s.len()) {
            let (want, os) = naive_permute(&xv, s, &dims);
            assert_same(&format!("permute {s:?} {dims:?}"), &permute(&x, &dims).unwrap(), &want, &os);
        }
        for ax in 0..s.len() {
            let d = s[ax];
            for (start, len) in [(0, d), (d / 2, d - d / 2), (d - 1, 1), (0, 0)] {
                let (want, os) = naive_rows(&xv, s, ax, len, |r| start + r);
                assert_same(&format!("slice {s:?} ax {ax} {start}+{len}"), &slice(&x, ax as isize, start, len).unwrap(), &want, &os);
            }
            for (start, end, step) in [(0, d, 2), (1.min(d), d, 3), (0, d, 1), (d / 3, d, 129)] {
                let len = (end - start).div_ceil(step);
                let (want, os) = naive_rows(&xv, s, ax, len, |r| start + r * step);
                let got = slice_step(&x, ax as isize, start, end, step).unwrap();
                assert_same(&format!("slice_step {s:?} ax {ax} {start}..{end}:{step}"), &got, &want, &os);
            }
            for times in [1, 3, 10] {
                let (want, os) = naive_rows(&xv, s, ax, d * times, |r| r / times);
                assert_same(&format!("repeat {s:?} ax {ax} ×{times}"), &repeat_interleave(&x, ax as isize, times).unwrap(), &want, &os);
            }
            let idx: Vec<u32> = (0..7).map(|k| ((k * 5 + 3) % d) as u32).chain([0, (d - 1) as u32]).collect();
            let (want, os) = naive_rows(&xv, s, ax, idx.len(), |r| idx[r] as usize);
            assert_same(&format!("index_select {s:?} ax {ax}"), &index_select(&x, ax as isize, &idx).unwrap(), &want, &os);
            // concat of three pieces of sizes 1, d and 3 along ax.
            let parts: Vec<(Vec<f32>, Vec<usize>)> = [1, d, 3]
                .iter()
                .enumerate()
                .map(|(k, &m)| {
                    let mut ps = s.to_vec();
                    ps[ax] = m;
                    (rand_vec(numel(&ps), 1000 + k as u64), ps)
                })
                .collect();
            let ts: Vec<Tensor> = parts.iter().map(|(v, ps)| Tensor::from_vec(v.clone(), ps).unwrap()).collect();
            let (want, os) = naive_concat(&parts, ax);
            let neg = ax as isize - s.len() as isize;
            assert_same(&format!("concat {s:?} ax {neg}"), &concat(&ts.iter().collect::<Vec<_>>(), neg).unwrap(), &want, &os);
        }
    }
}

#[test]
fn cpu_large_paths_match_naive() {
    // Shapes big enough for the parallel, blocked and multi-chunk paths.
    let s = [3, 129, 67];
    let x = rand_tensor(&s, 7);
    let xv = x.to_vec().unwrap();
    for dims in perms(3) {
        let (want, os) = naive_permute(&xv, &s, &dims);
        assert_same(&format!("permute {dims:?}"), &permute(&x, &dims).unwrap(), &want, &os);
    }
    let s = [40000, 3];
    let x = rand_tensor(&s, 8);
    let (want, os) = naive_permute(&x.to_vec().unwrap(), &s, &[1, 0]);
    assert_same("permute 40000x3", &transpose(&x, 0, -1).unwrap(), &want, &os);
    let (want, os) = naive_rows(&x.to_vec().unwrap(), &s, 0, 39990, |r| 5 + r);
    assert_same("slice long run", &slice(&x, 0, 5, 39990).unwrap(), &want, &os);
}

#[test]
fn permute_plans_reduce_to_the_expected_kind() {
    let k = |s: &[usize], d: &[usize]| PermPlan::new(s, d).unwrap().kind;
    assert_eq!(k(&[1214, 12, 64], &[1, 0, 2]), PermKind::Rows { inner: 64 });
    assert_eq!(k(&[12, 101, 768], &[1, 0, 2]), PermKind::Rows { inner: 768 });
    assert_eq!(k(&[12, 1214, 64], &[0, 2, 1]), PermKind::Transpose { b: 12, r: 1214, c: 64 });
    assert_eq!(k(&[5, 7], &[1, 0]), PermKind::Transpose { b: 1, r: 5, c: 7 });
    assert_eq!(k(&[2, 3, 4, 5], &[0, 1, 3, 2]), PermKind::Transpose { b: 6, r: 4, c: 5 });
    assert_eq!(k(&[2, 3, 4, 5], &[2, 3, 0, 1]), PermKind::Transpose { b: 1, r: 6, c: 20 });
    assert_eq!(k(&[2, 1, 4], &[1, 0, 2]), PermKind::Identity);
    assert_eq!(k(&[2, 3, 4], &[2, 0, 1]), PermKind::Transpose { b: 1, r: 6, c: 4 });
    assert_eq!(k(&[2, 3, 4], &[1, 2, 0]), PermKind::Transpose { b: 1, r: 2, c: 12 });
    assert_eq!(k(&[2, 3, 4], &[2, 1, 0]), PermKind::General);
}

#[test]
fn f16_moves_bit_patterns() {
    let s = [3, 17, 5];
    let v: Vec<f16> = rand_vec(numel(&s), 3).iter().map(|&x| f16::from_f32(x)).collect();
    let x16 = Tensor::from_vec_f16(v.clone(), &s).unwrap();
    let x32 = Tensor::from_vec(v.iter().map(|h| h.to_f32()).collect(), &s).unwrap();
    type Op = fn(&Tensor) -> Tensor;
    let ops: &[(&str, Op)] = &[
        ("permute", |x| permute(x, &[2, 0, 1]).unwrap()),
        ("slice_step", |x| slice_step(x, 1, 1, 17, 4).unwrap()),
        ("repeat", |x| repeat_interleave(x, -1, 3).unwrap()),
        ("index_select", |x| index_select(x, 1, &[16, 0, 3]).unwrap()),
        ("concat", |x| concat(&[x, x], 0).unwrap()),
    ];
    for (name, f) in ops {
        let (a, b) = (f(&x16), f(&x32));
        assert_eq!(a.dtype(), DType::F16, "{name}");
        assert_eq!(bits(&a), bits(&b), "{name}");
    }
}

#[test]
fn golden_fixture() {
    let g = fixture("shape.safetensors");
    let t = |k: &str| g.get(k).unwrap_or_else(|| panic!("fixture lacks {k}")).clone();
    let eq = |what: &str, got: Tensor, want: Tensor| {
        assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
        assert_same(what, &got, &want.to_vec().unwrap(), want.shape());
    };
    eq("cat axis 1", concat(&[&t("cat.a"), &t("cat.b"), &t("cat.c")], 1).unwrap(), t("cat.axis1"));
    eq("cat axis -1", concat(&[&t("cat2.a"), &t("cat2.b")], -1).unwrap(), t("cat2.axis_neg1"));
    let x = t("x");
    eq("narrow", slice(&x, 1, 2, 9).unwrap(), t("narrow.1.2.9"));
    eq("x[:, 1:16:3]", slice_step(&x, 1, 1, 16, 3).unwrap(), t("step.1.1.16.3"));
    let p = t("p");
    eq("permute 2031", permute(&p, &[2, 0, 3, 1]).unwrap(), t("permute.2031"));
    eq("transpose 1 2", transpose(&p, 1, 2).unwrap(), t("transpose.1.2"));
    eq("head split", permute(&t("h"), &[1, 0, 2]).unwrap(), t("heads.102"));
    eq("permute f16", permute(&t("p_f16"), &[3, 1, 2, 0]).unwrap(), t("permute_f16.3120"));
    let u = t("u");
    eq("repeat_interleave dim 2", repeat_interleave(&u, 2, 3).unwrap(), t("repeat.2.x3"));
    eq("= F.interpolate nearest ×3", repeat_interleave(&u, -1, 3).unwrap(), t("interp_nearest.x3"));
    eq("repeat_interleave dim 1", repeat_interleave(&u, 1, 2).unwrap(), t("repeat.1.x2"));
    let idx: Vec<u32> = t("index_select.idx").to_vec().unwrap().iter().map(|&v| v as u32).collect();
    eq("index_select", index_select(&x, 1, &idx).unwrap(), t("index_select.1"));
}

#[test]
fn shape_errors_are_clear() {
    let a = rand_tensor(&[2, 3], 1);
    let b = rand_tensor(&[4, 3], 2);
    let e = concat(&[&a, &b], 1).unwrap_err().to_string();
    assert!(e.contains("concat") && e.contains("[4, 3]") && e.contains("[2, 3]"), "{e}");
    let e = index_select(&a, 1, &[0, 3]).unwrap_err().to_string();
    assert!(e.contains("index 3") && e.contains("size 3"), "{e}");
    let e = permute(&a, &[0, 0]).unwrap_err().to_string();
    assert!(e.contains("permute") && e.contains("[0, 0]"), "{e}");
    let e = slice(&a, 1, 2, 2).unwrap_err().to_string();
    assert!(e.contains("slice") && e.contains("size 3"), "{e}");
    let e = transpose(&a, 0, 2).unwrap_err().to_string();
    assert!(e.contains("axis 2"), "{e}");
    assert!(slice_step(&a, 0, 0, 2, 0).is_err());
    assert!(concat(&[], 0).is_err());
    let h = Tensor::from_vec_f16(vec![f16::ZERO; 6], &[2, 3]).unwrap();
    assert!(concat(&[&a, &h], 0).unwrap_err().to_string().contains("f16"));
}

#[test]
fn identity_permute_shares_storage() {
    let x = rand_tensor(&[2, 1, 3], 1);
    let y = permute(&x, &[1, 0, 2]).unwrap();
    assert_eq!(y.shape(), &[1, 2, 3]);
    assert_eq!(y.to_vec().unwrap(), x.to_vec().unwrap());
}

// ------------------------------------------------------------------ kernels vs CPU

/// Emulator-sized permutation cases: (shape, dims), covering every plan kind, partial 32×32 tiles
/// (33, 47, 45×37), size-1 dims and rank 6.
const PERM_CASES: &[(&[usize], &[usize])] = &[
    (&[45, 37], &[1, 0]),                       // v2, 2×2 tiles, both partial
    (&[2, 33, 47], &[0, 2, 1]),                 // v2 batched, partial tiles
    (&[3, 1, 17, 32], &[0, 1, 3, 2]),           // v2, exact tile width
    (&[17, 3, 4], &[1, 0, 2]),                  // v3 head split, I = 4
    (&[3, 5, 129], &[1, 0, 2]),                 // v3, I > 128 (threads stride along a row)
    (&[2, 3, 4, 5], &[2, 0, 3, 1]),             // v1 general
    (&[2, 3, 4, 5], &[3, 2, 1, 0]),             // v1, full reversal
    (&[2, 3, 2, 3, 2, 2], &[5, 3, 1, 4, 2, 0]), // v1, rank 6 after reduction
    (&[1], &[0]),                               // identity
];

#[test]
fn kernels_match_cpu() {
    for dev in gpu_devices() {
        for dt in [DType::F32, DType::F16] {
            let mk = |s: &[usize], seed: u64| -> Tensor {
                let t = rand_tensor(s, seed);
                match dt {
                    DType::F32 => t,
                    DType::F16 => Tensor::from_vec_f16(t.to_vec().unwrap().iter().map(|&x| f16::from_f32(x)).collect(), s).unwrap(),
                }
            };
            let check = |what: String, got: Tensor, want: Tensor| {
                assert_eq!(got.shape(), want.shape(), "{what}: shape");
                assert_eq!(got.dtype(), dt, "{what}: dtype");
                let (g, w) = (bits(&got), bits(&want));
                if let Some(i) = (0..w.len()).find(|&i| g[i] != w[i]) {
                    panic!("{what}: first mismatch at {i} ({:?}): got {:e} want {:e}", unravel(i, want.shape()), f32::from_bits(g[i]), f32::from_bits(w[i]));
                }
            };
            for (ci, &(s, dims)) in PERM_CASES.iter().enumerate() {
                let x = mk(s, 10 + ci as u64);
                let gx = x.to_device(dev).unwrap();
                let want = permute(&x, dims).unwrap();
                let plan = PermPlan::new(s, dims).unwrap();
                for v in plan.versions() {
                    let got = permute_version(&gx, dims, v).unwrap_or_else(|e| panic!("{dev} permute v{v} {dt} {s:?} {dims:?}: {e}"));
                    check(format!("{dev} permute v{v} {dt} {s:?} {dims:?}"), got, want.clone());
                }
                let got = permute(&gx, dims).unwrap_or_else(|e| panic!("{dev} permute {dt} {s:?}: {e}"));
                check(format!("{dev} permute (dispatch) {dt} {s:?} {dims:?}"), got, want);
            }
            for (si, &s) in [&[3usize, 17, 5][..], &[129, 3], &[1, 33]].iter().enumerate() {
                let x = mk(s, 50 + si as u64);
                let gx = x.to_device(dev).unwrap();
                for ax in 0..s.len() as isize {
                    let d = s[ax as usize];
                    let tag = |op: &str| format!("{dev} {op} v1 {dt} {s:?} axis {ax}");
                    check(tag("slice"), slice(&gx, ax, d / 3, d - d / 3).unwrap(), slice(&x, ax, d / 3, d - d / 3).unwrap());
                    check(tag("slice_step"), slice_step(&gx, ax, d / 4, d, 3).unwrap(), slice_step(&x, ax, d / 4, d, 3).unwrap());
                    check(tag("repeat_interleave"), repeat_interleave(&gx, ax, 3).unwrap(), repeat_interleave(&x, ax, 3).unwrap());
                    let idx: Vec<u32> = (0..5).map(|k| ((k * 7 + 1) % d) as u32).collect();
                    check(tag("index_select"), index_select(&gx, ax, &idx).unwrap(), index_select(&x, ax, &idx).unwrap());
                    let mut s2 = s.to_vec();
                    s2[ax as usize] = 2;
                    let y = mk(&s2, 99);
                    let gy = y.to_device(dev).unwrap();
                    check(tag("concat"), concat(&[&gx, &gy, &gx], ax).unwrap(), concat(&[&x, &y, &x], ax).unwrap());
                }
            }
        }
    }
}

#[test]
fn into_vec_moves_the_only_handle_and_copies_a_shared_one() {
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    let t = aural_runtime::Tensor::from_vec(data.clone(), &[3, 4]).unwrap();
    let ptr = t.cpu_f32().unwrap().as_ptr();
    let v = t.into_vec().unwrap();
    assert_eq!(v, data);
    assert_eq!(v.as_ptr(), ptr, "the only handle's buffer is moved, not copied");
    let t = aural_runtime::Tensor::from_vec(data.clone(), &[12]).unwrap();
    let keep = t.reshape(&[3, 4]).unwrap();
    assert_eq!(t.into_vec().unwrap(), data);
    assert_eq!(keep.to_vec().unwrap(), data, "a shared buffer stays intact");
}
