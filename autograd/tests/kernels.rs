//! The backward kernels (`gelu_bwd_f32_v1`, `softmax_bwd_f32_v1`, `layernorm_bwd_f32_v1`) and the
//! fused AdamW kernel (`adamw_fwd_f32_v1`) under the CUDA emulator (three thread orders, bounds
//! checks) — and on a real GPU when one is usable — against the CPU implementations, on odd shapes,
//! size 1, rows that span several blocks, and with and without the layer-norm weight.

use aural_runtime::ops::adamw::{adamw_step, AdamWHyper};
use aural_runtime::ops::layernorm::layernorm_bwd;
use aural_runtime::ops::softmax::{softmax, softmax_bwd};
use aural_runtime::ops::unary::gelu_bwd;
use aural_runtime::testing::{assert_close, gpu_devices, rand_tensor, rand_vec};
use aural_runtime::{Device, Tensor};

fn scaled(shape: &[usize], seed: u64, s: f32) -> Tensor {
    Tensor::from_vec(rand_vec(shape.iter().product(), seed).iter().map(|v| v * s).collect(), shape).unwrap()
}

#[test]
fn gelu_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, shape) in [vec![1usize], vec![7], vec![3, 129], vec![2, 5, 77]].iter().enumerate() {
            let x = scaled(shape, 10 + ci as u64, 8.0);
            let dy = rand_tensor(shape, 20 + ci as u64);
            let want = gelu_bwd(&x, &dy).unwrap().to_vec().unwrap();
            let got = gelu_bwd(&x.to_device(dev).unwrap(), &dy.to_device(dev).unwrap()).unwrap();
            assert_eq!(got.shape(), shape.as_slice());
            assert_close(&format!("gelu_bwd {dev} {shape:?}"), &got.to_vec().unwrap(), &want, 1e-6, 1e-5);
        }
    }
}

#[test]
fn softmax_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(rows, len)) in [(1usize, 1usize), (3, 1), (3, 17), (17, 33), (5, 129), (2, 1214)].iter().enumerate() {
            let y = softmax(&scaled(&[rows, len], 30 + ci as u64, 4.0)).unwrap();
            let dy = rand_tensor(&[rows, len], 40 + ci as u64);
            let want = softmax_bwd(&y, &dy).unwrap().to_vec().unwrap();
            let got = softmax_bwd(&y.to_device(dev).unwrap(), &dy.to_device(dev).unwrap()).unwrap().to_vec().unwrap();
            assert_close(&format!("softmax_bwd {dev} {rows}x{len}"), &got, &want, 1e-7, 1e-5);
        }
    }
}

#[test]
fn layernorm_bwd_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, &(rows, len)) in [(1usize, 1usize), (3, 7), (33, 17), (70, 129), (2, 768)].iter().enumerate() {
            let x = scaled(&[rows, len], 50 + ci as u64, 3.0);
            let dy = rand_tensor(&[rows, len], 60 + ci as u64);
            let w = Tensor::from_vec(rand_vec(len, 70 + ci as u64).iter().map(|v| 1.0 + 0.5 * v).collect(), &[len]).unwrap();
            for weight in [None, Some(&w)] {
                let want = layernorm_bwd(&x, weight, &dy, 1e-5).unwrap();
                let wd = weight.map(|w| w.to_device(dev).unwrap());
                let got = layernorm_bwd(&x.to_device(dev).unwrap(), wd.as_ref(), &dy.to_device(dev).unwrap(), 1e-5).unwrap();
                let tag = format!("layernorm_bwd {dev} {rows}x{len} weight={}", weight.is_some());
                assert_close(&format!("{tag} dx"), &got.dx.to_vec().unwrap(), &want.dx.to_vec().unwrap(), 1e-5, 1e-4);
                assert_close(&format!("{tag} dweight"), &got.dweight.to_vec().unwrap(), &want.dweight.to_vec().unwrap(), 1e-5, 1e-5);
                assert_close(&format!("{tag} dbias"), &got.dbias.to_vec().unwrap(), &want.dbias.to_vec().unwrap(), 1e-5, 1e-5);
            }
        }
    }
}

#[test]
fn adamw_kernel_matches_cpu() {
    for dev in gpu_devices() {
        for (ci, n) in [1usize, 7, 1000, 4099].into_iter().enumerate() {
            let s = ci as u64 * 10;
            let (p, g, m) = (rand_tensor(&[n], 80 + s), scaled(&[n], 81 + s, 0.3), scaled(&[n], 82 + s, 0.1));
            let v = Tensor::from_vec(rand_vec(n, 83 + s).iter().map(|x| 0.01 * x * x).collect(), &[n]).unwrap();
            for step in [1u64, 2, 1000] {
                let h = AdamWHyper { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.05, step };
                let want = adamw_step(&p, &g, &m, &v, &h).unwrap();
                let d = |t: &Tensor| t.to_device(dev).unwrap();
                let got = adamw_step(&d(&p), &d(&g), &d(&m), &d(&v), &h).unwrap();
                let tag = format!("adamw {dev} n={n} step {step}");
                assert_close(&format!("{tag} param"), &got.param.to_vec().unwrap(), &want.param.to_vec().unwrap(), 1e-7, 1e-6);
                assert_close(&format!("{tag} exp_avg"), &got.exp_avg.to_vec().unwrap(), &want.exp_avg.to_vec().unwrap(), 1e-8, 1e-6);
                assert_close(&format!("{tag} exp_avg_sq"), &got.exp_avg_sq.to_vec().unwrap(), &want.exp_avg_sq.to_vec().unwrap(), 1e-10, 1e-6);
            }
        }
    }
}

#[test]
fn cpu_only_when_asked() {
    // The CPU path never needs a GPU backend.
    let x = rand_tensor(&[3, 4], 1);
    assert_eq!(gelu_bwd(&x, &x).unwrap().device(), Device::Cpu);
}

/// `avg_pool2d_bwd_f32_v1` against the CPU (bit-identical by construction; checked within 0): odd
/// shapes whose floor drops rows/columns, size 1, and planes spanning several blocks.
#[test]
fn avg_pool2d_bwd_kernel_matches_cpu() {
    use aural_runtime::ops::pool::avg_pool2d_bwd;
    for dev in gpu_devices() {
        for (ci, (shape, k)) in
            [([1usize, 1, 1, 1], (1usize, 1usize)), ([2, 3, 7, 5], (2, 2)), ([1, 2, 9, 301], (1, 2)), ([2, 1, 8, 9], (3, 2))].into_iter().enumerate()
        {
            let dy = rand_tensor(&[shape[0], shape[1], shape[2] / k.0, shape[3] / k.1], 200 + ci as u64);
            let want = avg_pool2d_bwd(&dy, &shape, k).unwrap().to_vec().unwrap();
            let got = avg_pool2d_bwd(&dy.to_device(dev).unwrap(), &shape, k).unwrap();
            assert_eq!(got.shape(), shape.as_slice());
            assert_close(&format!("avg_pool2d_bwd {dev} {shape:?} k{k:?}"), &got.to_vec().unwrap(), &want, 0.0, 0.0);
        }
    }
}

/// `conv_transpose_data_bwd_f32_v1` + `conv_transpose_weight_bwd_f32_v1` (and the reductions for
/// dscale/dshift/dtime) against the CPU: no pre-activation, shift (C) and (B, C), Add and Gate time-FiLM,
/// strides (2, 2), (1, 2) and (1, 1), size 1, and inputs spanning several blocks.
#[test]
fn conv_transpose2d_bwd_kernels_match_cpu() {
    use aural_runtime::ops::conv2d::{PreAct, TimeFilm, TimeFilmMode};
    use aural_runtime::ops::conv_transpose::conv_transpose2d_bwd;
    for dev in gpu_devices() {
        let d = |t: &Tensor| t.to_device(dev).unwrap();
        for (ci, &(b, c, o, h, w, sh, sw)) in
            [(1usize, 1usize, 1usize, 1usize, 1usize, 1usize, 1usize), (2, 3, 4, 5, 7, 2, 2), (2, 5, 3, 20, 33, 1, 2)].iter().enumerate()
        {
            let s = 300 + 10 * ci as u64;
            let (x, wt, scale) = (scaled(&[b, c, h, w], s, 2.0), rand_tensor(&[c, o, sh, sw], s + 1), rand_tensor(&[c], s + 2));
            let dy = rand_tensor(&[b, o, h * sh, w * sw], s + 3);
            let (shift_c, shift_bc, tv) = (rand_tensor(&[c], s + 4), rand_tensor(&[b, c], s + 5), rand_tensor(&[b, c, h], s + 6));
            let (dx_, dw_, dsc_, dshc_, dshbc_, dtv_) = (d(&x), d(&wt), d(&scale), d(&shift_c), d(&shift_bc), d(&tv));
            type Cfg<'a> = (&'a str, Option<(bool, Option<TimeFilmMode>)>);
            let cfgs: [Cfg; 6] = [
                ("plain", None),
                ("shift C", Some((false, None))),
                ("shift BC", Some((true, None))),
                ("shift C Add", Some((false, Some(TimeFilmMode::Add)))),
                ("shift BC Gate", Some((true, Some(TimeFilmMode::Gate)))),
                ("shift C Gate", Some((false, Some(TimeFilmMode::Gate)))),
            ];
            for (name, cfg) in cfgs {
                let mk = |on_dev: bool| {
                    cfg.map(|(bc, mode)| {
                        let (sc, sf, tt) =
                            if on_dev { (&dsc_, if bc { &dshbc_ } else { &dshc_ }, &dtv_) } else { (&scale, if bc { &shift_bc } else { &shift_c }, &tv) };
                        PreAct { scale: sc, shift: sf, slope: 0.01, time: mode.map(|mode| TimeFilm { values: tt, mode }) }
                    })
                };
                let want = conv_transpose2d_bwd(&x, &wt, mk(false).as_ref(), &dy).unwrap();
                let got = conv_transpose2d_bwd(&dx_, &dw_, mk(true).as_ref(), &d(&dy)).unwrap();
                let tag = format!("conv_transpose2d_bwd {dev} ({b},{c},{o},{h},{w}) s{sh}x{sw} {name}");
                let cmp = |what: &str, g: &Tensor, w: &Tensor| {
                    assert_eq!(g.shape(), w.shape(), "{tag} {what}");
                    assert_close(&format!("{tag} {what}"), &g.to_vec().unwrap(), &w.to_vec().unwrap(), 1e-5, 1e-4)
                };
                cmp("dx", &got.dx, &want.dx);
                cmp("dweight", &got.dweight, &want.dweight);
                for (what, g, w) in [("dscale", &got.dscale, &want.dscale), ("dshift", &got.dshift, &want.dshift), ("dtime", &got.dtime, &want.dtime)] {
                    assert_eq!(g.is_some(), w.is_some(), "{tag} {what}");
                    if let (Some(g), Some(w)) = (g, w) {
                        cmp(what, g, w);
                    }
                }
            }
        }
    }
}

/// `conv2d_data_bwd_f32_v1` + `conv2d_weight_bwd_f32_v1` (and the device reductions of dbias, dscale,
/// dshift) against the CPU backward: k 3 and 1, one and two sources, odd H/W, shift (C) and (B, C),
/// time-FiLM Add and Gate, with and without the pre-activation, bias and residual.
#[test]
fn conv2d_bwd_kernels_match_cpu() {
    use aural_runtime::ops::conv2d::{conv2d_bwd, Conv2d, PreAct, TimeFilm, TimeFilmMode};
    // (sources' channels, O, k, H, W, shift per item, time mode (0, 1 Add, 2 Gate), pre, bias, residual)
    type Case = (&'static [usize], usize, usize, usize, usize, bool, u8, bool, bool, bool);
    let cases: [Case; 8] = [
        (&[3], 4, 3, 7, 5, false, 0, true, true, false),
        (&[2], 3, 3, 4, 0, true, 1, true, true, true),
        (&[2, 3], 5, 3, 9, 33, true, 1, true, false, true),
        (&[4], 3, 3, 6, 130, false, 2, true, true, true),
        (&[1, 2], 2, 1, 5, 3, true, 2, true, true, false),
        (&[3], 2, 1, 4, 7, false, 1, true, false, false),
        (&[2, 2], 3, 3, 5, 6, false, 0, false, true, true),
        (&[1], 1, 3, 1, 1, false, 0, true, false, false),
    ];
    for dev in gpu_devices() {
        for (ci, &(cin, o, k, h, w, shift_b, tm, pre, bias, res)) in cases.iter().enumerate() {
            let s = 500 + 20 * ci as u64;
            let b = 2;
            let ct: usize = cin.iter().sum();
            let xs: Vec<Tensor> = cin.iter().enumerate().map(|(i, &c)| scaled(&[b, c, h, w], s + i as u64, 2.0)).collect();
            let wt = scaled(&[o, ct, k, k], s + 5, 0.5);
            let bt = rand_tensor(&[o], s + 6);
            let rt = rand_tensor(&[b, o, h, w], s + 7);
            let sc = Tensor::from_vec(rand_vec(ct, s + 8).iter().map(|v| 1.0 + 0.5 * v).collect(), &[ct]).unwrap();
            let sh = if shift_b { rand_tensor(&[b, ct], s + 9) } else { rand_tensor(&[ct], s + 9) };
            let tt = Tensor::from_vec(rand_vec(b * ct * h, s + 10).iter().map(|v| 0.6 + 0.4 * v).collect(), &[b, ct, h]).unwrap();
            let dy = rand_tensor(&[b, o, h, w], s + 11);
            let run = |d: Device| {
                let m = |t: &Tensor| t.to_device(d).unwrap();
                let xd: Vec<Tensor> = xs.iter().map(m).collect();
                let (wd, bd, rd, scd, shd, td, dyd) = (m(&wt), m(&bt), m(&rt), m(&sc), m(&sh), m(&tt), m(&dy));
                let time = match tm {
                    1 => Some(TimeFilm { values: &td, mode: TimeFilmMode::Add }),
                    2 => Some(TimeFilm { values: &td, mode: TimeFilmMode::Gate }),
                    _ => None,
                };
                let p = pre.then_some(PreAct { scale: &scd, shift: &shd, slope: 0.1, time });
                let c = Conv2d { weight: &wd, bias: bias.then_some(&bd), pre: p, residual: res.then_some(&rd) };
                let ins: Vec<&Tensor> = xd.iter().collect();
                conv2d_bwd(&ins, &c, &dyd).unwrap()
            };
            let (want, got) = (run(Device::Cpu), run(dev));
            let tag = format!("conv2d_bwd {dev} case {ci} {cin:?}→{o} k{k} {h}x{w} time {tm} pre {pre}");
            let cmp = |what: &str, g: Option<&Tensor>, e: Option<&Tensor>, atol: f32| {
                assert_eq!(g.is_some(), e.is_some(), "{tag} {what} presence");
                if let (Some(g), Some(e)) = (g, e) {
                    assert_eq!(g.shape(), e.shape(), "{tag} {what} shape");
                    assert_close(&format!("{tag} {what}"), &g.to_vec().unwrap(), &e.to_vec().unwrap(), atol, 1e-4);
                }
            };
            assert_eq!(got.dinputs.len(), want.dinputs.len());
            for (i, (g, e)) in got.dinputs.iter().zip(&want.dinputs).enumerate() {
                cmp(&format!("dx{i}"), Some(g), Some(e), 1e-5);
            }
            cmp("dweight", Some(&got.dweight), Some(&want.dweight), 1e-4);
            cmp("dbias", got.dbias.as_ref(), want.dbias.as_ref(), 1e-4);
            cmp("dresidual", got.dresidual.as_ref(), want.dresidual.as_ref(), 0.0);
            cmp("dscale", got.dscale.as_ref(), want.dscale.as_ref(), 1e-4);
            cmp("dshift", got.dshift.as_ref(), want.dshift.as_ref(), 1e-4);
            cmp("dtime", got.dtime.as_ref(), want.dtime.as_ref(), 1e-5);
        }
    }
}
