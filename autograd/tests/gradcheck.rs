//! Every backward rule against central finite differences (`aural_autograd::testing::gradcheck`:
//! Richardson-extrapolated central differences in f64 over the f32 forward, step 1e-2; an element
//! passes when |fd − g| ≤ 1e-3·(|g| + 5% of the input's largest gradient) + an f32 rounding allowance
//! 20·ε₃₂·Σ|f·R|/h — the doc of `gradcheck` derives both terms), on odd shapes, broadcasting,
//! transposes, batched and shared operands. Inputs of non-smooth ops are kept ≥ 0.1 from the kinks.

use aural_autograd::ops::*;
use aural_autograd::ops::{GruDirParams, GruParams};
use aural_autograd::testing::gradcheck;
use aural_autograd::Var;
use aural_runtime::testing::rand_vec;
use aural_runtime::{Result, Tensor};

const H: f64 = 1e-2;
const TOL: f64 = 1e-3;

fn t(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed), shape).unwrap()
}
fn tmap(shape: &[usize], seed: u64, f: impl Fn(f32) -> f32) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed).into_iter().map(f).collect(), shape).unwrap()
}
/// Away from 0 by at least 0.1 (kinks of relu/abs).
fn off0(shape: &[usize], seed: u64) -> Tensor {
    tmap(shape, seed, |v| v.signum() * (0.1 + v.abs()))
}
fn check(name: &str, inputs: &[Tensor], f: impl Fn(&[Var]) -> Result<Var>) {
    let r = gradcheck(name, inputs, H, TOL, f).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{name}: worst error / bound {:.2e} ({} evaluations)", r.worst, r.evals);
}

#[test]
fn matmul_all_layouts() {
    // (M, K, N) = (3, 4, 5); every transpose combination, plain and with bias.
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { t(&[4, 3], 1) } else { t(&[3, 4], 1) };
        let b = if tb { t(&[5, 4], 2) } else { t(&[4, 5], 2) };
        check(&format!("matmul ta={ta} tb={tb}"), &[a.clone(), b.clone()], |v| matmul_opts(&v[0], &v[1], ta, tb, None));
        check(&format!("matmul+bias ta={ta} tb={tb}"), &[a, b, t(&[5], 3)], |v| matmul_opts(&v[0], &v[1], ta, tb, Some(&v[2])));
    }
}

#[test]
fn matmul_batched_and_shared() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { t(&[2, 3, 4, 3], 4) } else { t(&[2, 3, 3, 4], 4) };
        let bb = if tb { t(&[2, 3, 5, 4], 5) } else { t(&[2, 3, 4, 5], 5) };
        check(&format!("batched ta={ta} tb={tb}"), &[a.clone(), bb], |v| matmul_opts(&v[0], &v[1], ta, tb, None));
        let bs = if tb { t(&[5, 4], 6) } else { t(&[4, 5], 6) };
        check(&format!("shared b ta={ta} tb={tb}"), &[a, bs, t(&[5], 7)], |v| matmul_opts(&v[0], &v[1], ta, tb, Some(&v[2])));
    }
}

#[test]
fn linear_rank3_with_and_without_bias() {
    check("linear", &[t(&[2, 3, 7], 8), t(&[5, 7], 9), t(&[5], 10)], |v| linear(&v[0], &v[1], Some(&v[2])));
    check("linear nobias", &[t(&[7], 11), t(&[5, 7], 12)], |v| linear(&v[0], &v[1], None));
}

#[test]
fn binary_with_broadcasting() {
    let pos = |s: &[usize], seed| tmap(s, seed, |v| 1.5 + 0.5 * v);
    for (sa, sb) in [(vec![3, 5], vec![3, 5]), (vec![2, 3, 5], vec![5]), (vec![3, 1, 5], vec![4, 5]), (vec![1, 4], vec![3, 1]), (vec![2, 3, 4], vec![2, 1, 4])]
    {
        let (a, b) = (t(&sa, 20), t(&sb, 21));
        check(&format!("add {sa:?} {sb:?}"), &[a.clone(), b.clone()], |v| add(&v[0], &v[1]));
        check(&format!("sub {sa:?} {sb:?}"), &[a.clone(), b.clone()], |v| sub(&v[0], &v[1]));
        check(&format!("mul {sa:?} {sb:?}"), &[a.clone(), b.clone()], |v| mul(&v[0], &v[1]));
        check(&format!("div {sa:?} {sb:?}"), &[a.clone(), pos(&sb, 22)], |v| div(&v[0], &v[1]));
        // max/min: operands ≥ 0.1 apart (a in ±[0.1, 1.1], b shifted by ±0.55 around it avoided: b = a-independent grid).
        let a2 = off0(&sa, 23);
        let b2 = tmap(&sb, 24, |v| if v.abs() < 0.5 { 0.0 } else { 1.3 * v.signum() });
        check(&format!("maximum {sa:?} {sb:?}"), &[a2.clone(), b2.clone()], |v| maximum(&v[0], &v[1]));
        check(&format!("minimum {sa:?} {sb:?}"), &[a2, b2], |v| minimum(&v[0], &v[1]));
    }
    check("scale", &[t(&[3, 5], 25)], |v| scale(&v[0], -1.7));
    check("add_scalar", &[t(&[3, 5], 26)], |v| add_scalar(&v[0], 0.3));
}

#[test]
fn unary_rules() {
    let s = [3usize, 7];
    check("gelu", &[tmap(&s, 30, |v| 4.0 * v)], |v| gelu(&v[0]));
    check("gelu_tanh", &[tmap(&s, 31, |v| 4.0 * v)], |v| gelu_tanh(&v[0]));
    check("relu", &[off0(&s, 32)], |v| relu(&v[0]));
    check("leaky_relu", &[off0(&s, 33)], |v| leaky_relu(&v[0], 0.1));
    check("sigmoid", &[tmap(&s, 34, |v| 3.0 * v)], |v| sigmoid(&v[0]));
    check("tanh", &[tmap(&s, 35, |v| 2.0 * v)], |v| tanh(&v[0]));
    check("exp", &[t(&s, 36)], |v| exp(&v[0]));
    check("log", &[tmap(&s, 37, |v| 1.2 + v)], |v| log(&v[0]));
    check("sqrt", &[tmap(&s, 38, |v| 1.2 + v)], |v| sqrt(&v[0]));
    check("neg", &[t(&s, 39)], |v| neg(&v[0]));
    check("abs", &[off0(&s, 40)], |v| abs(&v[0]));
    check("affine", &[t(&s, 41)], |v| affine(&v[0], 1.5, -0.25));
    // clamp to [-0.5, 0.5]: keep inputs ≥ 0.1 from ±0.5.
    check("clamp", &[tmap(&s, 42, |v| if (v.abs() - 0.5).abs() < 0.1 { v * 0.5 } else { v })], |v| clamp(&v[0], -0.5, 0.5));
}

#[test]
fn softmax_last_dim() {
    check("softmax 3x7", &[tmap(&[3, 7], 50, |v| 3.0 * v)], |v| softmax(&v[0]));
    check("softmax 2x3x5", &[tmap(&[2, 3, 5], 51, |v| 3.0 * v)], |v| softmax(&v[0]));
    check("softmax 4x1", &[t(&[4, 1], 52)], |v| softmax(&v[0]));
}

#[test]
fn layernorm_weight_bias_input() {
    check("layernorm w b", &[t(&[2, 3, 7], 60), tmap(&[7], 61, |v| 1.0 + 0.3 * v), t(&[7], 62)], |v| layernorm(&v[0], Some(&v[1]), Some(&v[2]), 1e-5));
    check("layernorm w", &[t(&[5, 9], 63), tmap(&[9], 64, |v| 1.0 + 0.3 * v)], |v| layernorm(&v[0], Some(&v[1]), None, 1e-5));
    check("layernorm plain", &[t(&[4, 33], 65)], |v| layernorm(&v[0], None, None, 1e-5));
}

#[test]
fn reductions() {
    let x = t(&[2, 3, 5], 70);
    for axis in [0isize, 1, 2, -1] {
        for keep in [false, true] {
            check(&format!("sum {axis} {keep}"), &[x.clone()], |v| sum(&v[0], axis, keep));
            check(&format!("mean {axis} {keep}"), &[x.clone()], |v| mean(&v[0], axis, keep));
        }
    }
    check("sum_all", &[x.clone()], |v| sum_all(&v[0]));
    check("mean_all", &[x], |v| mean_all(&v[0]));
}

#[test]
fn shape_ops() {
    let x = t(&[2, 3, 5], 80);
    check("reshape", &[x.clone()], |v| reshape(&v[0], &[5, 6]));
    check("permute", &[x.clone()], |v| permute(&v[0], &[2, 0, 1]));
    check("transpose", &[x.clone()], |v| transpose(&v[0], -1, -2));
    check("concat axis 1", &[x.clone(), t(&[2, 4, 5], 81), t(&[2, 1, 5], 82)], |v| concat(&[&v[0], &v[1], &v[2]], 1));
    check("concat axis -1", &[x.clone(), t(&[2, 3, 2], 83)], |v| concat(&[&v[0], &v[1]], -1));
    check("slice middle", &[x.clone()], |v| slice(&v[0], 1, 1, 1));
    check("slice head", &[x.clone()], |v| slice(&v[0], 2, 0, 3));
    check("slice tail", &[x.clone()], |v| slice(&v[0], 0, 1, 1));
    check("repeat_interleave", &[x.clone()], |v| repeat_interleave(&v[0], 1, 3));
    check("repeat_interleave last", &[x], |v| repeat_interleave(&v[0], -1, 2));
}

#[test]
fn losses() {
    let p = tmap(&[3, 7], 90, |v| 0.5 + 0.4 * v);
    let tgt = tmap(&[3, 7], 91, |v| if v > 0.0 { 1.0 } else { 0.0 });
    check("bce", &[p.clone(), tgt], |v| bce(&v[0], &v[1]));
    check("bce soft targets", &[p, tmap(&[3, 7], 92, |v| 0.5 + 0.5 * v)], |v| bce(&v[0], &v[1]));
    check("mse", &[t(&[2, 3, 5], 93), t(&[2, 3, 5], 94)], |v| mse(&v[0], &v[1]));
}

#[test]
fn attention_pooling() {
    let strong = tmap(&[2, 7, 3], 100, |v| 0.5 + 0.4 * v);
    check("attention_pool", &[strong, tmap(&[2, 7, 3], 101, |v| 2.0 * v)], |v| attention_pool(&v[0], &v[1]));
}

#[test]
fn reused_vars_accumulate() {
    // x used three times: d/dx of x·x + x = 2x + 1.
    check("x*x + x", &[t(&[3, 4], 110)], |v| add(&mul(&v[0], &v[0])?, &v[0]));
}

/// One (bi)GRU layer (B = 2, I = 5, H = 3): T = 1 and T = 7, one and two directions, with and without
/// biases; every weight, bias and x. Inputs: x, then per direction w_ih, w_hh[, b_ih, b_hh].
#[test]
fn gru_backprop_through_time() {
    let (b, i, h) = (2usize, 5usize, 3usize);
    for steps in [1usize, 7] {
        for bi in [false, true] {
            for bias in [true, false] {
                let d = if bi { 2 } else { 1 };
                let mut inputs = vec![t(&[b, steps, i], 120)];
                for di in 0..d as u64 {
                    inputs.push(tmap(&[3 * h, i], 121 + 10 * di, |v| 0.8 * v));
                    inputs.push(tmap(&[3 * h, h], 122 + 10 * di, |v| 0.8 * v));
                    if bias {
                        inputs.push(tmap(&[3 * h], 123 + 10 * di, |v| 0.5 * v));
                        inputs.push(tmap(&[3 * h], 124 + 10 * di, |v| 0.5 * v));
                    }
                }
                let per = if bias { 4 } else { 2 };
                check(&format!("gru T={steps} bidirectional={bi} bias={bias}"), &inputs, |v| {
                    let dirs = (0..d)
                        .map(|di| {
                            let w = &v[1 + di * per..1 + (di + 1) * per];
                            GruDirParams {
                                weight_ih: w[0].clone(),
                                weight_hh: w[1].clone(),
                                bias_ih: bias.then(|| w[2].clone()),
                                bias_hh: bias.then(|| w[3].clone()),
                            }
                        })
                        .collect();
                    gru(&v[0], &GruParams { dirs }, bi)
                });
            }
        }
    }
}

/// Packed-QKV attention at AST-SED's frequency-wise shape scaled down (S = 13 tokens, 3 heads of 4),
/// B = 2; a single token; and the separate-heads layout.
#[test]
fn attention_recompute_backward() {
    check("attention_qkv S=13 heads=3 dh=4", &[tmap(&[2, 13, 36], 130, |v| 1.5 * v)], |v| attention_qkv(&v[0], 3, 0.5));
    check("attention_qkv S=1", &[t(&[2, 1, 6], 131)], |v| attention_qkv(&v[0], 2, 0.7));
    check("attention_qkv S=40 (long path)", &[tmap(&[1, 40, 12], 132, |v| 1.5 * v)], |v| attention_qkv(&v[0], 2, 0.5));
    check("attention_heads", &[t(&[2, 5, 6], 133), t(&[2, 5, 6], 134), t(&[2, 5, 6], 135)], |v| attention_heads(&v[0], &v[1], &v[2], 3, 0.6));
}

/// Patch embedding: weight (4, 1, 3, 2) over an 11-frame × 9-mel input with strides (2, 3) (4 × 4
/// overlapping patches), prefix tokens and position embedding; and without them, with a 3-D weight.
/// x is a constant (the frozen fbank: no gradient flows to it).
#[test]
fn patch_embed_parameters() {
    let x = t(&[2, 11, 9], 140);
    let xc = x.clone();
    check("patch_embed prefix pos", &[t(&[4, 1, 3, 2], 141), t(&[4], 142), t(&[2, 4], 143), t(&[18, 4], 144)], move |v| {
        patch_embed(&Var::constant(xc.clone()), &v[0], &v[1], (2, 3), Some(&v[2]), Some(&v[3]))
    });
    check("patch_embed plain", &[t(&[3, 2, 2], 145), t(&[3], 146), t(&[1, 16, 3], 147)], move |v| {
        patch_embed(&Var::constant(x.clone()), &v[0], &v[1], (2, 3), None, Some(&v[2]))
    });
}

/// Average pooling (kernel = stride) on odd shapes, so the floor drops trailing rows/columns.
#[test]
fn avg_pool2d_windows() {
    check("avg_pool2d 2x3x7x5 k2x2", &[t(&[2, 3, 7, 5], 150)], |v| avg_pool2d(&v[0], (2, 2)));
    check("avg_pool2d 2x3x7x5 k1x2", &[t(&[2, 3, 7, 5], 151)], |v| avg_pool2d(&v[0], (1, 2)));
    check("avg_pool2d 1x2x4x8 k3x3", &[t(&[1, 2, 4, 8], 152)], |v| avg_pool2d(&v[0], (3, 3)));
}

/// Inputs of a transposed convolution whose pre-activation z = x·scale + shift (+ t for Add) is ≥ 0.15
/// from the LeakyReLU kink: z is drawn first and x solved from it. Returns (x, scale, shift, t).
fn ct_inputs(b: usize, c: usize, h: usize, w: usize, shift_bc: bool, add: bool, seed: u64) -> (Tensor, Tensor, Tensor, Tensor) {
    let scale = tmap(&[c], seed, |v| v.signum() * (0.5 + 0.5 * v.abs()));
    let shift = if shift_bc { t(&[b, c], seed + 1) } else { t(&[c], seed + 1) };
    let tv = if add { t(&[b, c, h], seed + 2) } else { tmap(&[b, c, h], seed + 2, |v| 0.6 + 0.4 * v) };
    let z = tmap(&[b, c, h, w], seed + 3, |v| v.signum() * (0.15 + v.abs()));
    let (sc, sh, tt, zv) = (scale.to_vec().unwrap(), shift.to_vec().unwrap(), tv.to_vec().unwrap(), z.to_vec().unwrap());
    let mut x = vec![0f32; zv.len()];
    for (i, xv) in x.iter_mut().enumerate() {
        let (bi, ci, hi) = (i / (c * h * w), (i / (h * w)) % c, (i / w) % h);
        let s = if shift_bc { sh[bi * c + ci] } else { sh[ci] };
        let tadd = if add { tt[(bi * c + ci) * h + hi] } else { 0.0 };
        *xv = (zv[i] - s - tadd) / sc[ci];
    }
    (Tensor::from_vec(x, &[b, c, h, w]).unwrap(), scale, shift, tv)
}

/// ConvTranspose2d (kernel = stride) with B = 2 on odd shapes, strides (2, 2) and (1, 2): without a
/// pre-activation; with shift (C) and (B, C); with an Add and a Gate time-FiLM. Every input's gradient.
#[test]
fn conv_transpose2d_with_pre_activation() {
    use aural_runtime::ops::conv2d::TimeFilmMode;
    let (b, c, o, h, w) = (2usize, 3usize, 2usize, 5usize, 3usize);
    for (sh, sw) in [(2usize, 2usize), (1, 2)] {
        let wt = t(&[c, o, sh, sw], 160);
        check(&format!("conv_transpose2d plain s{sh}x{sw}"), &[t(&[b, c, h, w], 161), wt.clone()], |v| conv_transpose2d(&v[0], &v[1], None));
        for shift_bc in [false, true] {
            let (x, scale, shift, _) = ct_inputs(b, c, h, w, shift_bc, false, 170);
            check(&format!("conv_transpose2d pre s{sh}x{sw} shift_bc={shift_bc}"), &[x, wt.clone(), scale, shift], |v| {
                conv_transpose2d(&v[0], &v[1], Some((&v[2], &v[3], 0.1, None)))
            });
            for (mode, add) in [(TimeFilmMode::Add, true), (TimeFilmMode::Gate, false)] {
                let (x, scale, shift, tv) = ct_inputs(b, c, h, w, shift_bc, add, 180);
                check(&format!("conv_transpose2d pre s{sh}x{sw} shift_bc={shift_bc} {mode:?}"), &[x, wt.clone(), scale, shift, tv], |v| {
                    conv_transpose2d(&v[0], &v[1], Some((&v[2], &v[3], 0.1, Some((&v[4], mode)))))
                });
            }
        }
    }
}

/// conv2d inputs for gradcheck: `[sources…, weight, (bias), (scale, shift, (time)), (residual)]`, the
/// sources built from targets z ≥ 0.1 from 0 so the pre-activation z = x·scale + shift (+ t) stays
/// away from LeakyReLU's kink (scale in [0.5, 1.5]; Gate values in [0.2, 1]).
#[allow(clippy::too_many_arguments)]
fn conv2d_inputs(
    cin: &[usize],
    o: usize,
    k: usize,
    bias: bool,
    pre: Option<(bool, Option<aural_runtime::ops::conv2d::TimeFilmMode>)>,
    res: bool,
    seed: u64,
) -> Vec<Tensor> {
    use aural_runtime::ops::conv2d::TimeFilmMode;
    let (b, h, w) = (2usize, 5usize, 3usize);
    let ct: usize = cin.iter().sum();
    let mut xs: Vec<Vec<f32>> = cin.iter().enumerate().map(|(s, &c)| rand_vec(b * c * h * w, seed + s as u64)).collect();
    let mut extra = vec![];
    if let Some((shift_b, time)) = pre {
        let scale = tmap(&[ct], seed + 10, |v| 1.0 + 0.5 * v);
        let shift = if shift_b { tmap(&[b, ct], seed + 11, |v| 0.5 * v) } else { tmap(&[ct], seed + 11, |v| 0.5 * v) };
        let tv = time.map(|m| match m {
            TimeFilmMode::Add => tmap(&[b, ct, h], seed + 12, |v| 0.5 * v),
            TimeFilmMode::Gate => tmap(&[b, ct, h], seed + 12, |v| 0.6 + 0.4 * v),
        });
        let zt = off0(&[b, ct, h, w], seed + 13).to_vec().unwrap();
        let (sc, sh) = (scale.to_vec().unwrap(), shift.to_vec().unwrap());
        let tvv = tv.as_ref().map(|t| t.to_vec().unwrap());
        let mut c0 = 0;
        for (s, &cs) in cin.iter().enumerate() {
            for bi in 0..b {
                for cl in 0..cs {
                    let cg = c0 + cl;
                    let shv = if shift_b { sh[bi * ct + cg] } else { sh[cg] };
                    for r in 0..h {
                        let ta = match (time, &tvv) {
                            (Some(TimeFilmMode::Add), Some(t)) => t[(bi * ct + cg) * h + r],
                            _ => 0.0,
                        };
                        for col in 0..w {
                            let z = zt[((bi * ct + cg) * h + r) * w + col];
                            xs[s][((bi * cs + cl) * h + r) * w + col] = (z - shv - ta) / sc[cg];
                        }
                    }
                }
            }
            c0 += cs;
        }
        extra.push(scale);
        extra.push(shift);
        extra.extend(tv);
    }
    let mut v: Vec<Tensor> = xs.into_iter().zip(cin).map(|(x, &c)| Tensor::from_vec(x, &[b, c, h, w]).unwrap()).collect();
    v.push(tmap(&[o, ct, k, k], seed + 20, |x| 0.5 * x));
    if bias {
        v.push(t(&[o], seed + 21));
    }
    v.extend(extra);
    if res {
        v.push(t(&[b, o, h, w], seed + 22));
    }
    v
}

#[test]
fn conv2d_rule() {
    use aural_runtime::ops::conv2d::TimeFilmMode::{Add, Gate};
    // (sources' channels, O, k, bias, pre (shift per item, time mode), residual, slope)
    type Case = (&'static [usize], usize, usize, bool, Option<(bool, Option<aural_runtime::ops::conv2d::TimeFilmMode>)>, bool, f32);
    let cases: [Case; 9] = [
        (&[3], 2, 3, true, Some((false, None)), false, 0.1),
        (&[2, 2], 3, 3, true, Some((true, Some(Add))), true, 0.2),
        (&[3], 2, 3, false, Some((false, Some(Gate))), false, 0.1),
        (&[2, 1], 2, 3, true, Some((true, Some(Gate))), true, 0.01),
        (&[3], 4, 1, true, Some((true, None)), false, 0.1),
        (&[1, 2], 2, 1, false, Some((false, Some(Add))), true, 0.3),
        (&[3], 2, 3, true, None, true, 0.0),
        (&[2, 3], 3, 3, false, None, false, 0.0),
        (&[2], 3, 1, true, None, false, 0.0),
    ];
    for (ci, (cin, o, k, bias, pre, res, slope)) in cases.into_iter().enumerate() {
        let ins = conv2d_inputs(cin, o, k, bias, pre, res, 300 + 30 * ci as u64);
        let ns = cin.len();
        check(&format!("conv2d case {ci}: {cin:?}→{o} k{k} bias={bias} pre={pre:?} res={res}"), &ins, |v| {
            let srcs: Vec<&Var> = v[..ns].iter().collect();
            let mut i = ns + 1;
            let b = if bias {
                i += 1;
                Some(&v[i - 1])
            } else {
                None
            };
            let p = match pre {
                Some((_, tm)) => {
                    let (s, sh) = (&v[i], &v[i + 1]);
                    i += 2;
                    let tv = tm.map(|m| {
                        i += 1;
                        (&v[i - 1], m)
                    });
                    Some((s, sh, slope, tv))
                }
                None => None,
            };
            let r = if res { Some(&v[i]) } else { None };
            conv2d(&srcs, &v[ns], b, p, r)
        });
    }
}

/// Training-mode BatchNorm folded into a convolution's pre-activation, over two sources read as their
/// concatenation (the decoder): the gradient reaches the sources through the batch statistics and
/// through the convolution, and γ, β; plus FiLM's β (B, C) added to the shift.
#[test]
fn batch_norm_fold_train_into_conv2d() {
    let (b, c1, c2, h, w, o) = (2, 2, 3, 4, 5, 2);
    let inputs = [
        tmap(&[b, c1, h, w], 601, |v| 1.5 * v + 0.3),
        tmap(&[b, c2, h, w], 602, |v| 0.7 * v - 0.2),
        tmap(&[c1 + c2], 603, |v| 1.0 + 0.3 * v),
        t(&[c1 + c2], 604),
        t(&[b, c1 + c2], 605),
        t(&[o, c1 + c2, 3, 3], 606),
    ];
    // LeakyReLU's kink: with these seeds no pre-activation lies within 2h of 0 (checked by the
    // gradcheck's own tolerance; a kink would show as a large error).
    check("batch_norm_fold train → conv2d", &inputs, |v| {
        let f = batch_norm_fold(&[&v[0], &v[1]], &v[2], &v[3], 1e-5, BnStats::Batch)?;
        let shift = add(&f.shift, &v[4])?;
        conv2d(&[&v[0], &v[1]], &v[5], None, Some((&f.scale, &shift, 0.01, None)), None)
    });
    // The folded values alone (every path of the statistics, no convolution).
    check("batch_norm_fold train (scale, shift)", &inputs[..4], |v| {
        let f = batch_norm_fold(&[&v[0], &v[1]], &v[2], &v[3], 1e-5, BnStats::Batch)?;
        concat(&[&f.scale, &f.shift], 0)
    });
}

#[test]
fn batch_norm_fold_eval() {
    let c = 5;
    let (m, var) = (t(&[c], 611), tmap(&[c], 612, |v| 0.5 + v.abs()));
    check("batch_norm_fold eval", &[tmap(&[c], 613, |v| 1.0 + 0.3 * v), t(&[c], 614)], |v| {
        let f = batch_norm_fold(&[], &v[0], &v[1], 1e-5, BnStats::Running { mean: &m, var: &var })?;
        concat(&[&f.scale, &f.shift], 0)
    });
}

#[test]
fn neg_snr_grad() {
    let target = t(&[2, 1, 37], 621);
    let est = tmap(&[2, 1, 37], 622, |v| 0.5 * v);
    check("neg_snr", &[est], |v| neg_snr(&v[0], &target));
}

#[test]
fn magnitude_input_grad() {
    use aural_runtime::ops::stft::{stft, StftOpts};
    let o = StftOpts::new(16, 4);
    let spec = stft(&t(&[2, 2, 30], 631), &o).unwrap();
    let f = o.n_freq();
    check("magnitude_input", &[tmap(&[f], 632, |v| 1.0 + 0.3 * v), t(&[f], 633)], |v| aural_autograd::ops::spectral::magnitude_input(&spec, &v[0], &v[1], 12));
}
