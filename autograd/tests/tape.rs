//! Tape behaviour: no-grad mode records nothing, constants get no gradient, mixed tapes are refused,
//! NaN/inf losses and gradients are errors naming the parameter, the parameter store round-trips
//! through safetensors, and the layer-wise LR decay helper.

use aural_autograd::optim::{ast_layer_id, layerwise_lr_groups, AdamW, ParamGroup};
use aural_autograd::{ops, Grads, ParamStore, Tape, Var};
use aural_runtime::testing::rand_tensor;
use aural_runtime::{Device, Tensor};

#[test]
fn no_grad_records_nothing() {
    let tape = Tape::new();
    let w = tape.var(rand_tensor(&[4, 3], 1));
    let x = tape.constant(rand_tensor(&[2, 3], 2));
    {
        let _g = tape.no_grad();
        let y = ops::linear(&x, &w, None).unwrap();
        assert!(!y.requires_grad());
        assert_eq!(tape.len(), 0);
    }
    assert!(tape.is_recording());
    let y = ops::gelu(&ops::linear(&x, &w, None).unwrap()).unwrap();
    assert!(y.requires_grad());
    assert_eq!(tape.len(), 2);
    // Inference: Vars on no tape record nothing anywhere.
    let (a, b) = (Var::leaf(rand_tensor(&[4, 3], 3)), Var::constant(rand_tensor(&[2, 3], 4)));
    let z = ops::linear(&b, &a, None).unwrap();
    assert!(!z.requires_grad() && z.tape().is_none());
    // ... but such a value can never carry a gradient back to `a`: using it on a tape is an error
    // (directly or after watching it), not a silent zero gradient; detach() says it is a constant.
    let xt = tape.constant(rand_tensor(&[2, 4], 5));
    let e = ops::mul(&z, &xt).unwrap_err().to_string();
    assert!(e.contains("no tape") && e.contains("Tape::watch"), "{e}");
    assert!(ops::mul(&tape.watch(&z), &xt).is_err());
    let zz = ops::gelu(&z).unwrap();
    assert!(ops::mul(&zz, &xt).is_err(), "unrecorded-ness must propagate through tape-less ops");
    let c = ops::mul(&z.detach(), &xt).unwrap();
    assert!(!c.requires_grad());
    // A parameter watched before its first op gets its gradient.
    let aw = tape.watch(&a);
    let loss = ops::mean_all(&ops::mul(&ops::linear(&b, &aw, None).unwrap(), &xt).unwrap()).unwrap();
    assert!(tape.backward(&loss).unwrap().get(&a).is_some());
}

#[test]
fn constants_get_no_gradient_and_backward_consumes_the_tape() {
    let tape = Tape::new();
    let w = tape.var(rand_tensor(&[4, 3], 1));
    let x = tape.constant(rand_tensor(&[2, 3], 2));
    let loss = ops::mean_all(&ops::linear(&x, &w, None).unwrap()).unwrap();
    let g = tape.backward(&loss).unwrap();
    assert!(g.get(&w).is_some());
    assert!(g.get(&x).is_none());
    assert!(tape.is_empty());
}

#[test]
fn two_tapes_are_refused() {
    let (t1, t2) = (Tape::new(), Tape::new());
    let e = ops::add(&t1.var(rand_tensor(&[2], 1)), &t2.var(rand_tensor(&[2], 2))).unwrap_err().to_string();
    assert!(e.contains("two different tapes"), "{e}");
}

#[test]
fn nan_loss_and_nan_gradient_are_errors() {
    let tape = Tape::new();
    let x = tape.var(Tensor::from_vec(vec![-1.0, 2.0], &[2]).unwrap());
    let loss = ops::sum_all(&ops::log(&x).unwrap()).unwrap();
    let e = tape.backward(&loss).unwrap_err().to_string();
    assert!(e.contains("loss is NaN"), "{e}");

    let mut s = ParamStore::new();
    s.insert("enc.w", Tensor::from_vec(vec![0.0, 1.0], &[2]).unwrap());
    let tape = Tape::new();
    let w = tape.watch(&s.get("enc.w").unwrap());
    // d sqrt(w)/dw at 0 is inf; the loss itself is finite.
    let loss = ops::sum_all(&ops::sqrt(&w).unwrap()).unwrap();
    let g = tape.backward(&loss).unwrap();
    let mut opt = AdamW::new(vec![ParamGroup::new(s.names(), 1e-3, 0.0)]);
    let e = opt.step(&mut s, &g).unwrap_err().to_string();
    assert!(e.contains("'enc.w'") && e.contains("inf"), "{e}");
    let mut g2 = g.clone();
    let e = aural_autograd::optim::clip_grad_norm(&s, &mut g2, 1.0).unwrap_err().to_string();
    assert!(e.contains("'enc.w'"), "{e}");
    // Nothing was updated.
    assert_eq!(s.get("enc.w").unwrap().value().to_vec().unwrap(), vec![0.0, 1.0]);
}

#[test]
fn param_store_round_trips_through_safetensors() {
    let mut s = ParamStore::new();
    s.insert("encoder.layer.0.output.dense.weight", rand_tensor(&[3, 5], 1));
    s.insert("classifier.dense.bias", rand_tensor(&[7], 2));
    let dir = tempfile::Builder::new().prefix("aural-autograd-").tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    s.save(&path).unwrap();
    let l = ParamStore::load(&path, Device::Cpu).unwrap();
    assert_eq!(l.names(), s.names());
    for (k, v) in s.iter() {
        assert_eq!(l.get(k).unwrap().value().to_vec().unwrap(), v.value().to_vec().unwrap());
    }
    // load_into keeps ids, is strict about shapes and names.
    let mut s2 = s.clone();
    let id = s2.get("classifier.dense.bias").unwrap().id();
    s2.set("classifier.dense.bias", rand_tensor(&[7], 9)).unwrap();
    let extra = s2.load_into(&path).unwrap();
    assert!(extra.is_empty());
    assert_eq!(s2.get("classifier.dense.bias").unwrap().id(), id);
    assert_eq!(s2.get("classifier.dense.bias").unwrap().value().to_vec().unwrap(), s.get("classifier.dense.bias").unwrap().value().to_vec().unwrap());
    let mut s3 = ParamStore::new();
    s3.insert("classifier.dense.bias", rand_tensor(&[8], 1));
    let e = s3.load_into(&path).unwrap_err().to_string();
    assert!(e.contains("classifier.dense.bias") && e.contains("[7]") && e.contains("[8]"), "{e}");
    assert!(s.get("nope").unwrap_err().to_string().contains("'nope'"));
    dir.close().unwrap();
}

#[test]
fn layerwise_lr_decay_groups() {
    let mut s = ParamStore::new();
    for n in [
        "embeddings.cls_token",
        "encoder.layer.0.output.dense.weight",
        "encoder.layer.0.output.dense.bias",
        "encoder.layer.1.output.dense.weight",
        "layernorm.weight",
        "head.weight",
    ] {
        s.insert(n, rand_tensor(&[2], 1));
    }
    assert_eq!(ast_layer_id("audio_spectrogram_transformer.encoder.layer.11.x", 12), 12);
    let groups = layerwise_lr_groups(&s, 1e-3, 0.5, 2, 0.05, |n| ast_layer_id(n, 2), |n| n.ends_with("bias") || n.starts_with("layernorm"));
    let lr_of = |name: &str| groups.iter().find(|g| g.names.iter().any(|n| n == name)).map(|g| (g.lr, g.weight_decay)).unwrap();
    assert_eq!(lr_of("embeddings.cls_token"), (1e-3 * 0.125, 0.05));
    assert_eq!(lr_of("encoder.layer.0.output.dense.weight"), (1e-3 * 0.25, 0.05));
    assert_eq!(lr_of("encoder.layer.0.output.dense.bias"), (1e-3 * 0.25, 0.0));
    assert_eq!(lr_of("encoder.layer.1.output.dense.weight"), (1e-3 * 0.5, 0.05));
    assert_eq!(lr_of("head.weight"), (1e-3, 0.05));
    assert_eq!(lr_of("layernorm.weight"), (1e-3, 0.0));
    // Every parameter in exactly one group.
    assert_eq!(groups.iter().map(|g| g.names.len()).sum::<usize>(), s.len());
    let _ = Grads::default();
}
