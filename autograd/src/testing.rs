//! Helpers for tests and benches: a finite-difference gradient check, and the two small models the
//! golden tests compare with PyTorch (also timed by `benches/train_step.rs`).

use aural_runtime::testing::rand_vec;
use aural_runtime::{Device, Error, Result, Tensor};

use crate::ops::*;
use crate::{ParamStore, Tape, Var};

/// Result of [`gradcheck`]: the worst element, for reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradCheckReport {
    /// max over elements of |fd − analytic| / bound (the check passes when ≤ 1; see [`gradcheck`]).
    pub worst: f64,
    pub evals: usize,
}

/// Checks the tape's gradients of `f` against central differences.
///
/// The scalar is F = `Σ_k f(x)_k·R_k` with a fixed pseudo-random R (so every output element
/// matters), accumulated in f64 from the f32 forward. Per input element, D(h) = (F(x + h) − F(x − h))
/// / 2h (h as actually applied after rounding x ± h to f32) is taken at h = `step` and h/2 and combined
/// by Richardson extrapolation (4·D(h/2) − D(h)) / 3, whose truncation error is O(h⁴) (~1e-8·f⁽⁵⁾ at
/// h = 1e-2) instead of central differences' O(h²) (~1e-4).
///
/// What is left is the f32 rounding of the forward: each F carries an absolute error of a few
/// ε₃₂·S, S = Σ_k |f_k·R_k| (ε₃₂ = 6e-8, times the few roundings along the longest chain of ops),
/// and the Richardson combination divides it by ~h/1.5. That noise does not scale with the gradient
/// (a mean over N elements has gradients ~S/N), so it gets its own term. An element passes when
/// |fd − analytic| ≤ `tol`·(|analytic| + 0.05·max|analytic|) + 20·ε₃₂·S/h:
/// `tol` (1e-3 in the tests) bounds the relative error of the rule itself, the 0.05·max term keeps
/// near-zero gradients of one input from failing on the noise of its large ones, and 20·ε₃₂·S/h allows
/// ~13 roundings of size S (measured worst over the suite: 0.11 of the bound, for mse). Callers keep
/// inputs ≥ 2h away from kinks (relu, abs, clamp, max).
pub fn gradcheck(name: &str, inputs: &[Tensor], step: f64, tol: f64, f: impl Fn(&[Var]) -> Result<Var>) -> Result<GradCheckReport> {
    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|t| tape.var(t.clone())).collect();
    let out = f(&vars)?;
    let r = Tensor::from_vec(rand_vec(out.value().numel(), 0xfd), out.shape())?.to_device(out.value().device())?;
    let loss = sum_all(&mul(&out, &tape.constant(r.clone()))?)?;
    let grads = tape.backward(&loss)?;
    let rv: Vec<f64> = r.to_vec()?.iter().map(|&x| x as f64).collect();
    let eval = |xs: &[Tensor]| -> Result<(f64, f64)> {
        let vs: Vec<Var> = xs.iter().map(|t| Var::constant(t.clone())).collect();
        let y = f(&vs)?.value().to_vec()?;
        Ok((y.iter().zip(&rv).map(|(&a, &b)| a as f64 * b).sum(), y.iter().zip(&rv).map(|(&a, &b)| (a as f64 * b).abs()).sum()))
    };
    let s_mag = eval(inputs)?.1;
    let noise = 20.0 * f32::EPSILON as f64 / 2.0 * s_mag / step;
    let mut rep = GradCheckReport::default();
    for (i, v) in vars.iter().enumerate() {
        let an = match grads.get(v) {
            Some(g) => g.to_vec()?,
            None => vec![0.0; v.value().numel()],
        };
        let dev = inputs[i].device();
        let base = inputs[i].to_vec()?;
        let amax = an.iter().fold(0f64, |m, &a| m.max((a as f64).abs()));
        let scale = 0.05 * amax;
        for j in 0..base.len() {
            let mut d = |h: f64| -> Result<f64> {
                let mut xs = inputs.to_vec();
                let mut p = base.clone();
                p[j] = (base[j] as f64 + h) as f32;
                let hp = p[j] as f64 - base[j] as f64;
                xs[i] = Tensor::from_vec(p.clone(), inputs[i].shape())?.to_device(dev)?;
                let fp = eval(&xs)?.0;
                p[j] = (base[j] as f64 - h) as f32;
                let hm = base[j] as f64 - p[j] as f64;
                xs[i] = Tensor::from_vec(p, inputs[i].shape())?.to_device(dev)?;
                let fm = eval(&xs)?.0;
                rep.evals += 2;
                // The perturbation actually applied (x ± h rounded to f32).
                Ok((fp - fm) / (hp + hm))
            };
            let fd = (4.0 * d(step / 2.0)? - d(step)?) / 3.0;
            let a = an[j] as f64;
            let bound = tol * (a.abs() + scale) + noise;
            let err = (fd - a).abs() / bound;
            rep.worst = rep.worst.max(err);
            if err > 1.0 {
                return Err(Error::Msg(format!(
                    "gradcheck {name}: input {i} element {j}: analytic {a}, finite differences {fd}: |difference| {:.2e} > bound {bound:.2e} (tol {tol:.0e}, rounding allowance {noise:.1e})",
                    (fd - a).abs()
                )));
            }
        }
    }
    Ok(rep)
}

/// Parameters of the test MLP: fc1 (H, D), ln (H), fc2 (C, H), fc_att (C, H).
pub fn mlp_params(d: usize, h: usize, c: usize, seed: u64) -> ParamStore {
    let mut s = ParamStore::new();
    let mut k = seed;
    let mut r = |shape: &[usize], scale: f32, shift: f32| {
        k += 1;
        Tensor::from_vec(rand_vec(shape.iter().product(), k).iter().map(|v| v * scale + shift).collect(), shape).unwrap()
    };
    s.insert("fc1.weight", r(&[h, d], 0.5, 0.0));
    s.insert("fc1.bias", r(&[h], 0.1, 0.0));
    s.insert("ln.weight", r(&[h], 0.2, 1.0));
    s.insert("ln.bias", r(&[h], 0.1, 0.0));
    s.insert("fc2.weight", r(&[c, h], 0.5, 0.0));
    s.insert("fc2.bias", r(&[c], 0.1, 0.0));
    s.insert("fc_att.weight", r(&[c, h], 0.5, 0.0));
    s.insert("fc_att.bias", r(&[c], 0.1, 0.0));
    s
}

/// The test MLP's loss: x (B, T, D) → h = LN(gelu(fc1 x)) → p = softmax(fc2 h) over classes;
/// weak = attention_pool(p, fc_att h) over T; loss = bce(p, strong) + bce(weak, weak_t).
pub fn mlp_loss(s: &ParamStore, x: &Var, strong: &Var, weak_t: &Var) -> Result<Var> {
    let h = gelu(&linear(x, &s.get("fc1.weight")?, Some(&s.get("fc1.bias")?))?)?;
    let h = layernorm(&h, Some(&s.get("ln.weight")?), Some(&s.get("ln.bias")?), 1e-5)?;
    let p = softmax(&linear(&h, &s.get("fc2.weight")?, Some(&s.get("fc2.bias")?))?)?;
    let att = linear(&h, &s.get("fc_att.weight")?, Some(&s.get("fc_att.bias")?))?;
    let weak = attention_pool(&p, &att)?;
    add(&bce(&p, strong)?, &bce(&weak, weak_t)?)
}

/// The HF AST layer's parameter names (one pre-LN transformer block).
pub const BLOCK_PARAMS: [&str; 16] = [
    "layernorm_before.weight",
    "layernorm_before.bias",
    "attention.attention.query.weight",
    "attention.attention.query.bias",
    "attention.attention.key.weight",
    "attention.attention.key.bias",
    "attention.attention.value.weight",
    "attention.attention.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "layernorm_after.weight",
    "layernorm_after.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
];

/// Random parameters of a block of width `d` and MLP width `m` (names as [`BLOCK_PARAMS`]).
pub fn block_params(d: usize, m: usize, seed: u64, device: Device) -> Result<ParamStore> {
    let mut s = ParamStore::new();
    for (i, name) in BLOCK_PARAMS.iter().enumerate() {
        let shape: Vec<usize> = match *name {
            n if n.starts_with("layernorm") || n.ends_with("bias") && !n.starts_with("intermediate") => vec![d],
            "intermediate.dense.bias" => vec![m],
            "intermediate.dense.weight" => vec![m, d],
            "output.dense.weight" => vec![d, m],
            _ => vec![d, d],
        };
        let fan_in = if *name == "output.dense.weight" { m } else { d };
        let (scale, shift) = if name.starts_with("layernorm") && name.ends_with("weight") {
            (0.2, 1.0)
        } else if name.ends_with("bias") {
            (0.1, 0.0)
        } else {
            (1.0 / (fan_in as f32).sqrt(), 0.0)
        };
        let v: Vec<f32> = rand_vec(shape.iter().product(), seed + i as u64).iter().map(|x| x * scale + shift).collect();
        s.insert(*name, Tensor::from_vec(v, &shape)?.to_device(device)?);
    }
    Ok(s)
}

/// One pre-LN transformer block (HF AST layer, eps 1e-12): x (B, T, D) →
/// x1 = x + Wo·MHSA(LN1(x)), y = x1 + W2·gelu(W1·LN2(x1)).
pub fn block_forward(s: &ParamStore, x: &Var, heads: usize) -> Result<Var> {
    let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let dh = d / heads;
    let p = |n: &str| s.get(n);
    let eps = 1e-12;
    let h = layernorm(x, Some(&p("layernorm_before.weight")?), Some(&p("layernorm_before.bias")?), eps)?;
    let proj = |w: &str, bias: &str| -> Result<Var> {
        let y = linear(&h, &p(w)?, Some(&p(bias)?))?;
        permute(&reshape(&y, &[b, t, heads, dh])?, &[0, 2, 1, 3])
    };
    let q = proj("attention.attention.query.weight", "attention.attention.query.bias")?;
    let k = proj("attention.attention.key.weight", "attention.attention.key.bias")?;
    let v = proj("attention.attention.value.weight", "attention.attention.value.bias")?;
    let scores = scale(&matmul_opts(&q, &k, false, true, None)?, 1.0 / (dh as f32).sqrt())?;
    let ctx = matmul(&softmax(&scores)?, &v)?;
    let ctx = reshape(&permute(&ctx, &[0, 2, 1, 3])?, &[b, t, d])?;
    let x1 = add(x, &linear(&ctx, &p("attention.output.dense.weight")?, Some(&p("attention.output.dense.bias")?))?)?;
    let h2 = layernorm(&x1, Some(&p("layernorm_after.weight")?), Some(&p("layernorm_after.bias")?), eps)?;
    let m = gelu(&linear(&h2, &p("intermediate.dense.weight")?, Some(&p("intermediate.dense.bias")?))?)?;
    add(&x1, &linear(&m, &p("output.dense.weight")?, Some(&p("output.dense.bias")?))?)
}
