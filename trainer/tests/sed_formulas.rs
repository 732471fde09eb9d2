//! The `trainer sed` formulas against the DESED baseline's and PyTorch's (tests/golden/trainer_sed.py →
//! fixtures/trainer_sed.json): the consistency ramp, the EMA teacher update, the strong-label encoder,
//! the cosine schedule; and the learning-rate groups, warm-up and decay, by their definitions.

use aural_runtime::testing::fixture_path;
use aural_runtime::Tensor;
use aural_trainer::config::ScheduleCfg;
use aural_trainer::data::encode_strong;
use aural_trainer::run::{ema_alpha, exp_rampup, lr_factor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("trainer_sed.json")).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn ramp_equals_the_desed_baseline() {
    let g = golden();
    let cases = g["ramp"].as_array().unwrap();
    assert!(cases.len() > 20);
    for c in cases {
        let c = f64s(c);
        let got = exp_rampup(c[0] as u64, c[1] as u64);
        assert!((got - c[2]).abs() <= 1e-15 * c[2].abs().max(1e-300), "ramp({}, {}) = {got}, DESED {}", c[0], c[1], c[2]);
    }
}

#[test]
fn ema_update_equals_the_desed_baseline() {
    let g = golden();
    for case in g["ema"].as_array().unwrap() {
        let max = case["max"].as_f64().unwrap();
        let mut teacher = Tensor::from_vec(f64s(&case["teacher0"]).iter().map(|&v| v as f32).collect(), &[64]).unwrap();
        for (i, (s, a)) in case["students"].as_array().unwrap().iter().zip(f64s(&case["alphas"])).enumerate() {
            let step = i as u64 + 1;
            assert_eq!(ema_alpha(step, max), a, "alpha at global step {step}, max {max}");
            let s = Tensor::from_vec(f64s(s).iter().map(|&v| v as f32).collect(), &[64]).unwrap();
            // What SedTrainer::update computes.
            let a = a as f32;
            teacher = aural_runtime::ops::binary::add(
                &aural_runtime::ops::unary::affine(&teacher, a, 0.0).unwrap(),
                &aural_runtime::ops::unary::affine(&s, 1.0 - a, 0.0).unwrap(),
            )
            .unwrap();
        }
        let want: Vec<f32> = f64s(&case["teacher"]).iter().map(|&v| v as f32).collect();
        aural_runtime::testing::assert_close("ema teacher", &teacher.to_vec().unwrap(), &want, 1e-6, 1e-6);
    }
}

#[test]
fn label_encoder_equals_the_desed_baseline() {
    let g = golden();
    for case in g["encoder"].as_array().unwrap() {
        let (frames, k) = (case["frames"].as_u64().unwrap() as usize, case["classes"].as_u64().unwrap() as usize);
        let hop = case["hop"].as_f64().unwrap();
        let events: Vec<(f64, f64, usize)> = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = e.as_array().unwrap();
                (e[0].as_f64().unwrap(), e[1].as_f64().unwrap(), e[2].as_u64().unwrap() as usize)
            })
            .collect();
        let want: Vec<f32> = f64s(&case["y"]).iter().map(|&v| v as f32).collect();
        let got = encode_strong(&events, frames, k, hop, 0.0);
        assert_eq!(got, want, "frames {frames}");
        // A crop starting at `shift` seconds moves every event by −shift.
        let shifted: Vec<(f64, f64, usize)> = events.iter().map(|&(a, b, c)| (a + 0.5, b + 0.5, c)).collect();
        let moved = encode_strong(&shifted, frames, k, hop, 0.5);
        let diff = moved.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert!(diff <= 2 * events.len(), "shifted events: {diff} frames differ");
    }
}

#[test]
fn cosine_schedule_equals_torch() {
    let g = golden();
    for case in g["cosine"].as_array().unwrap() {
        let steps = case["steps"].as_u64().unwrap();
        let s = ScheduleCfg { kind: "cosine".into(), min_factor: case["min_factor"].as_f64().unwrap(), ..Default::default() };
        for (i, want) in f64s(&case["factors"]).into_iter().enumerate() {
            let got = lr_factor(&s, i as u64, steps, 10);
            assert!((got - want).abs() < 1e-12, "cosine step {i}: {got} vs torch {want}");
        }
    }
}

#[test]
fn warmup_constant_and_exponential_decay() {
    let s = ScheduleCfg { kind: "exp".into(), warmup_steps: 4, constant_steps: Some(6), gamma: 0.5, ..Default::default() };
    let f: Vec<f64> = (0..20).map(|i| lr_factor(&s, i, 20, 5)).collect();
    assert_eq!(&f[..4], &[0.25, 0.5, 0.75, 1.0]);
    assert!(f[4..10].iter().all(|&x| x == 1.0));
    // ×0.5 per epoch of 5 steps after the constant part, continuously.
    for (i, &x) in f.iter().enumerate().skip(10) {
        assert!((x - 0.5f64.powf((i - 10) as f64 / 5.0)).abs() < 1e-15, "step {i}: {x}");
    }
    let e = ScheduleCfg { warmup: "exp".into(), warmup_steps: 10, kind: "constant".into(), ..Default::default() };
    for i in 0..10 {
        assert_eq!(lr_factor(&e, i, 100, 5), exp_rampup(i, 10));
    }
    assert_eq!(lr_factor(&e, 50, 100, 5), 1.0);
}
