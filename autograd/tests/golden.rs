//! Gradients and an optimizer step against PyTorch 2.9.1 (fixture `tests/golden/fixtures/autograd.safetensors`,
//! written by `tests/golden/autograd.py`, whose code is the reference — e.g. for the MLP:
//! ```python
//! h = F.layer_norm(F.gelu(F.linear(x, W1, b1)), (H,), ln_w, ln_b, 1e-5)
//! p = torch.softmax(F.linear(h, W2, b2), dim=-1)
//! a = torch.clamp(torch.softmax(F.linear(h, Wa, ba), dim=1), 1e-7, 1.0)
//! loss = F.binary_cross_entropy(p, strong) + F.binary_cross_entropy((p * a).sum(1) / a.sum(1), weak)
//! loss.backward()
//! ```
//! The error of a gradient is max_i |g_i − g_torch,i| / max(max_i |g_torch,i|, 1e-4·G) (relative to
//! the parameter's largest gradient — element-wise relative error is meaningless for entries near 0 —
//! with G the largest gradient of the whole model as a floor, because two parameters here have a
//! gradient that is exactly 0 in exact arithmetic: the key bias (softmax is invariant to q·b_k, constant
//! over keys) and the attention-pooling bias (constant over time inside a softmax over time); torch and
//! aural both return rounding noise (~1e-9) there). It must be ≤ 1e-3 for every parameter. AdamW: parameters after each of three steps (two groups,
//! weight decay, clip_grad_norm_) within 1e-6.

use std::collections::BTreeMap;

use aural_autograd::optim::{clip_grad_norm, AdamW, ParamGroup};
use aural_autograd::testing::{block_forward, mlp_loss, BLOCK_PARAMS};
use aural_autograd::{ops, Grads, ParamStore, Tape, Var};
use aural_runtime::testing::{assert_close, fixture};
use aural_runtime::{Device, Tensor};

fn store(f: &BTreeMap<String, Tensor>, prefix: &str, device: Device) -> ParamStore {
    let mut s = ParamStore::new();
    for (k, v) in f {
        if let Some(name) = k.strip_prefix(prefix) {
            s.insert(name, v.to_device(device).unwrap());
        }
    }
    s
}

fn max_abs(t: &Tensor) -> f64 {
    t.to_vec().unwrap().iter().fold(0f64, |m, &x| m.max((x as f64).abs()))
}

fn rel_err(got: &Tensor, want: &Tensor, floor: f64) -> f64 {
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
    g.iter().zip(&w).map(|(&a, &b)| (a as f64 - b as f64).abs()).fold(0.0, f64::max) / max_abs(want).max(floor).max(1e-30)
}

fn check_grads(what: &str, s: &ParamStore, grads: &Grads, f: &BTreeMap<String, Tensor>, prefix: &str, tol: f64) {
    let mut n = 0;
    let floor = 1e-4 * s.iter().map(|(name, _)| max_abs(&f[&format!("{prefix}{name}")])).fold(0.0, f64::max);
    for (name, v) in s.iter() {
        let want = &f[&format!("{prefix}{name}")];
        let got = grads.get(v).unwrap_or_else(|| panic!("{what}: no gradient for '{name}'"));
        let e = rel_err(got, want, floor);
        eprintln!("{what} {name:<36} max rel err {e:.2e}");
        assert!(e <= tol, "{what}: gradient of '{name}' differs from torch: {e:.3e} > {tol:.0e}");
        n += 1;
    }
    assert!(n > 0);
}

fn mlp_case(device: Device, tol: f64) {
    let f = fixture("autograd.safetensors");
    let s = store(&f, "mlp.param.", device);
    let tape = Tape::new();
    let c = |k: &str| tape.constant(f[k].to_device(device).unwrap());
    let loss = mlp_loss(&s, &c("mlp.x"), &c("mlp.strong"), &c("mlp.weak")).unwrap();
    assert_close("mlp loss", &loss.value().to_vec().unwrap(), &f["mlp.loss"].to_vec().unwrap(), 1e-6, 1e-5);
    let grads = tape.backward(&loss).unwrap();
    check_grads(&format!("mlp {device}"), &s, &grads, &f, "mlp.grad.", tol);
}

#[test]
fn mlp_gradients_match_torch() {
    mlp_case(Device::Cpu, 1e-3);
}

fn block_case(device: Device, tol: f64) {
    let f = fixture("autograd.safetensors");
    let s = store(&f, "block.param.", device);
    assert_eq!(s.len(), BLOCK_PARAMS.len());
    let tape = Tape::new();
    let x = tape.var(f["block.x"].to_device(device).unwrap());
    let target = tape.constant(f["block.target"].to_device(device).unwrap());
    let y = block_forward(&s, &x, 4).unwrap();
    let loss = ops::mse(&y, &target).unwrap();
    assert_close("block loss", &loss.value().to_vec().unwrap(), &f["block.loss"].to_vec().unwrap(), 1e-6, 1e-5);
    let grads = tape.backward(&loss).unwrap();
    check_grads(&format!("block {device}"), &s, &grads, &f, "block.grad.", tol);
    let e = rel_err(grads.get(&x).unwrap(), &f["block.grad_x"], 0.0);
    assert!(e <= tol, "block: input gradient differs from torch: {e:.3e}");
}

#[test]
fn transformer_block_gradients_match_torch() {
    block_case(Device::Cpu, 1e-3);
}

/// The same two models with every op (forward and backward kernels) run by the CUDA emulator.
#[test]
fn gradients_on_the_emulator_match_torch() {
    mlp_case(Device::Emu, 1e-3);
    block_case(Device::Emu, 1e-3);
}

fn adamw_case(device: Device) {
    let f = fixture("autograd.safetensors");
    let mut s = ParamStore::new();
    for n in ["p0", "p1", "p2"] {
        s.insert(n, f[&format!("adamw.{n}.init")].to_device(device).unwrap());
    }
    let mut opt = AdamW::new(vec![ParamGroup::new(vec!["p0".into(), "p2".into()], 3e-3, 0.1), ParamGroup::new(vec!["p1".into()], 1e-2, 0.01)]);
    for step in 1..=3 {
        let mut grads = Grads::default();
        for n in ["p0", "p1", "p2"] {
            grads.insert_id(s.get(n).unwrap().id(), f[&format!("adamw.{n}.grad{step}")].to_device(device).unwrap());
        }
        let norm = clip_grad_norm(&s, &mut grads, 0.5).unwrap();
        let want_norm = f[&format!("adamw.norm{step}")].to_vec().unwrap()[0] as f64;
        assert!((norm - want_norm).abs() <= 1e-6 * want_norm, "step {step}: total norm {norm} vs torch {want_norm}");
        opt.step(&mut s, &grads).unwrap();
        for n in ["p0", "p1", "p2"] {
            let got = s.get(n).unwrap().value().to_vec().unwrap();
            let want = f[&format!("adamw.{n}.step{step}")].to_vec().unwrap();
            assert_close(&format!("adamw {device} {n} step {step}"), &got, &want, 1e-6, 0.0);
        }
    }
}

#[test]
fn adamw_steps_match_torch() {
    adamw_case(Device::Cpu);
}

#[test]
fn fused_adamw_kernel_on_the_emulator_matches_torch() {
    adamw_case(Device::Emu);
}

// ---- Sequence ops (fixture `autograd_seq.safetensors`, written by `tests/golden/autograd_seq.py`:
// every loss is sum(out·R), so the output gradient is the stored R):
// ```python
// g = torch.nn.GRU(6, 5, bidirectional=True, batch_first=True); y, _ = g(x); (y * R).sum().backward()
// o = F.scaled_dot_product_attention(q, k, v, scale=0.4)  # q, k, v: qkv.split(12, -1), 3 heads of 4
// out = torch.cat([cls, dist, conv(x.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)], 1) + pos
// ```
// Gradients must match torch within 1e-4 relative to each tensor's largest gradient.

const SEQ_TOL: f64 = 1e-4;

fn seq_check(what: &str, got: &Tensor, want: &Tensor) {
    let e = rel_err(got, want, 0.0);
    eprintln!("{what:<40} max rel err {e:.2e}");
    assert!(e <= SEQ_TOL, "{what}: gradient differs from torch: {e:.3e} > {SEQ_TOL:.0e}");
}

/// Runs an L-layer BiGRU from the fixture's torch parameters as L one-layer calls; checks y and
/// every gradient.
fn gru_golden(name: &str, layers: usize, device: Device) {
    let f = fixture("autograd_seq.safetensors");
    let s = store(&f, &format!("{name}.param."), device);
    let tape = Tape::new();
    let x = tape.var(f[&format!("{name}.x")].to_device(device).unwrap());
    let mut h = x.clone();
    for l in 0..layers {
        let p = ops::GruParams::from_store(&s, "", l, true).unwrap();
        h = ops::gru(&h, &p, true).unwrap();
    }
    assert_close(&format!("{name} y"), &h.value().to_vec().unwrap(), &f[&format!("{name}.y")].to_vec().unwrap(), 1e-5, 1e-4);
    let r = tape.constant(f[&format!("{name}.dy")].to_device(device).unwrap());
    let loss = ops::sum_all(&ops::mul(&h, &r).unwrap()).unwrap();
    let grads = tape.backward(&loss).unwrap();
    seq_check(&format!("{name} {device} x"), grads.get(&x).unwrap(), &f[&format!("{name}.grad.x")]);
    for (n, v) in s.iter() {
        seq_check(&format!("{name} {device} {n}"), grads.get(v).unwrap_or_else(|| panic!("no gradient for {n}")), &f[&format!("{name}.grad.{n}")]);
    }
}

#[test]
fn gru_gradients_match_torch() {
    gru_golden("gru", 1, Device::Cpu);
    gru_golden("gru2", 2, Device::Cpu);
    // The training forward (GEMM for gh) and gru_bwd_f32_v1 under the emulator.
    gru_golden("gru", 1, Device::Emu);
}

#[test]
fn attention_qkv_gradients_match_torch() {
    // CPU, and the emulator (attention_fwd_f32_v3 + attention_bwd_f32_v1).
    let f = fixture("autograd_seq.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        let tape = Tape::new();
        let qkv = tape.var(f["attn.qkv"].to_device(device).unwrap());
        let o = ops::attention_qkv(&qkv, 3, 0.4).unwrap();
        assert_close("attention out", &o.value().to_vec().unwrap(), &f["attn.out"].to_vec().unwrap(), 1e-5, 1e-4);
        let loss = ops::sum_all(&ops::mul(&o, &tape.constant(f["attn.dout"].to_device(device).unwrap())).unwrap()).unwrap();
        let grads = tape.backward(&loss).unwrap();
        seq_check(&format!("attention {device} qkv"), grads.get(&qkv).unwrap(), &f["attn.grad.qkv"]);
    }
}

#[test]
fn patch_embed_gradients_match_torch() {
    // CPU, and the emulator (patch_embed_fwd kernel; im2col by index_select and the GEMMs as kernels).
    let f = fixture("autograd_seq.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        let tape = Tape::new();
        let dv = |k: &str| f[k].to_device(device).unwrap();
        let x = tape.constant(dv("pe.x"));
        let (w, b, pre, pos) = (Var::leaf(dv("pe.weight")), Var::leaf(dv("pe.bias")), Var::leaf(dv("pe.prefix")), Var::leaf(dv("pe.pos")));
        let out = ops::patch_embed(&x, &w, &b, (3, 2), Some(&pre), Some(&pos)).unwrap();
        assert_close("patch_embed out", &out.value().to_vec().unwrap(), &f["pe.out"].to_vec().unwrap(), 1e-5, 1e-4);
        let loss = ops::sum_all(&ops::mul(&out, &tape.constant(dv("pe.dout"))).unwrap()).unwrap();
        let grads = tape.backward(&loss).unwrap();
        for (n, v) in [("weight", &w), ("bias", &b), ("prefix", &pre), ("pos", &pos)] {
            seq_check(&format!("patch_embed {device} {n}"), grads.get(v).unwrap(), &f[&format!("pe.grad.{n}")]);
        }
    }
}

// ---- Separator ops (fixture `separator_grads.safetensors`, written by `tests/golden/separator_grads.py`;
// every loss is sum(out·R), so the output gradient is the stored R):
// ```python
// y = F.avg_pool2d(x, (kh, kw))
// a = F.leaky_relu(x * scale[None, :, None, None] + shift[:, :, None, None] + t[..., None], 0.01)   # Add
// a = F.leaky_relu(x * scale[None, :, None, None] + shift[None, :, None, None], 0.01) * t[..., None]  # Gate
// y = F.conv_transpose2d(a, W, stride=(sh, sw))
// ```
// Gradients must match torch within 1e-4 relative to each tensor's largest gradient (SEQ_TOL).

#[test]
fn avg_pool2d_gradients_match_torch() {
    // CPU, and the emulator (avg_pool2d_fwd/bwd_f32_v1).
    let f = fixture("separator_grads.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        for (name, k) in [("pool_k2x2", (2usize, 2usize)), ("pool_k1x2", (1, 2))] {
            let tape = Tape::new();
            let dv = |s: &str| f[&format!("{name}.{s}")].to_device(device).unwrap();
            let x = tape.var(dv("x"));
            let y = ops::avg_pool2d(&x, k).unwrap();
            assert_close(&format!("{name} y"), &y.value().to_vec().unwrap(), &dv("y").to_vec().unwrap(), 1e-6, 1e-5);
            let loss = ops::sum_all(&ops::mul(&y, &tape.constant(dv("dy"))).unwrap()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            seq_check(&format!("{name} {device} x"), grads.get(&x).unwrap(), &f[&format!("{name}.grad.x")]);
        }
    }
}

#[test]
fn conv_transpose2d_gradients_match_torch() {
    use aural_runtime::ops::conv2d::TimeFilmMode;
    // CPU, and the emulator (conv_transpose_fwd_f32_v1, conv_transpose_{data,weight}_bwd_f32_v1).
    let f = fixture("separator_grads.safetensors");
    for device in [Device::Cpu, Device::Emu] {
        for (name, stride, mode) in
            [("ct_plain", (2usize, 2usize), None), ("ct_add", (1, 2), Some(TimeFilmMode::Add)), ("ct_gate", (2, 2), Some(TimeFilmMode::Gate))]
        {
            let tape = Tape::new();
            let dv = |s: &str| f[&format!("{name}.{s}")].to_device(device).unwrap();
            let (x, w) = (tape.var(dv("x")), tape.var(dv("weight")));
            assert_eq!(&w.shape()[2..], &[stride.0, stride.1]);
            let mut vars = vec![("x", x.clone()), ("weight", w.clone())];
            let y = match mode {
                None => ops::conv_transpose2d(&x, &w, None).unwrap(),
                Some(mode) => {
                    let (s, b, tv) = (tape.var(dv("scale")), tape.var(dv("shift")), tape.var(dv("time")));
                    let y = ops::conv_transpose2d(&x, &w, Some((&s, &b, 0.01, Some((&tv, mode))))).unwrap();
                    vars.extend([("scale", s), ("shift", b), ("time", tv)]);
                    y
                }
            };
            assert_close(&format!("{name} y"), &y.value().to_vec().unwrap(), &dv("y").to_vec().unwrap(), 1e-5, 1e-4);
            let loss = ops::sum_all(&ops::mul(&y, &tape.constant(dv("dy"))).unwrap()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            for (n, v) in &vars {
                seq_check(
                    &format!("{name} {device} {n}"),
                    grads.get(v).unwrap_or_else(|| panic!("{name}: no gradient for {n}")),
                    &f[&format!("{name}.grad.{n}")],
                );
            }
        }
    }
}

// ---- The separator's fused conv2d (fixture `conv2d_grads.safetensors`, written by
// `tests/golden/conv2d_grads.py`; loss sum(y·R)):
// ```python
// z = x * scale[None, :, None, None] + shift[..., None, None]      # x = torch.cat([x0, x1], 1)
// a = F.leaky_relu(z + t[..., None], slope)   # Add;  Gate: F.leaky_relu(z, slope) * t[..., None]
// y = F.conv2d(a, W, b, padding=k // 2) + residual; (y * R).sum().backward()
// ```
// Gradients must match torch within 1e-4 relative to each tensor's largest gradient (SEQ_TOL), on the
// CPU and under the emulator (conv2d_data_bwd_f32_v1 / conv2d_weight_bwd_f32_v1).

#[test]
fn conv2d_gradients_match_torch() {
    use aural_runtime::ops::conv2d::TimeFilmMode;
    let f = fixture("conv2d_grads.safetensors");
    let names = ["k3_one", "k3_concat_add", "k3_gate", "k1_concat_gate", "k3_plain", "k1_plain_concat"];
    for device in [Device::Cpu, Device::Emu] {
        for n in names {
            let meta = f[&format!("{n}.meta")].to_vec().unwrap();
            let (slope, mode, has_pre) = (meta[1], meta[2] as i32, meta[3] != 0.0);
            let tape = Tape::new();
            let get = |k: &str| f.get(&format!("{n}.{k}")).map(|t| tape.var(t.to_device(device).unwrap()));
            let xs: Vec<Var> = ["x0", "x1"].iter().filter_map(|k| get(k)).collect();
            let (w, b, res) = (get("w").unwrap(), get("b"), get("res"));
            let (scale, shift, time) = (get("scale"), get("shift"), get("time"));
            let tm = match mode {
                1 => Some(TimeFilmMode::Add),
                2 => Some(TimeFilmMode::Gate),
                _ => None,
            };
            let pre = if has_pre { Some((scale.as_ref().unwrap(), shift.as_ref().unwrap(), slope, time.as_ref().map(|t| (t, tm.unwrap())))) } else { None };
            let srcs: Vec<&Var> = xs.iter().collect();
            let y = ops::conv2d(&srcs, &w, b.as_ref(), pre, res.as_ref()).unwrap();
            assert_close(&format!("conv2d {n} y"), &y.value().to_vec().unwrap(), &f[&format!("{n}.y")].to_vec().unwrap(), 1e-5, 1e-4);
            let loss = ops::sum_all(&ops::mul(&y, &tape.constant(f[&format!("{n}.R")].to_device(device).unwrap())).unwrap()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            let mut all: Vec<(&str, &Var)> = vec![("w", &w)];
            for (k, v) in [
                ("x0", xs.first()),
                ("x1", xs.get(1)),
                ("b", b.as_ref()),
                ("scale", scale.as_ref()),
                ("shift", shift.as_ref()),
                ("time", time.as_ref()),
                ("res", res.as_ref()),
            ] {
                if let Some(v) = v {
                    all.push((k, v));
                }
            }
            for (k, v) in all {
                seq_check(
                    &format!("conv2d {n} {device} {k}"),
                    grads.get(v).unwrap_or_else(|| panic!("{n}: no gradient for {k}")),
                    &f[&format!("{n}.grad.{k}")],
                );
            }
        }
    }
}
