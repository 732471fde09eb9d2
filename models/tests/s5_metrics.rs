//! The S5 label selection and metrics against tests/golden/s5_metrics.py (fixtures/s5_metrics.json):
//! the script re-implements the DCASE 2025 task 4 baseline's rules (`_get_top_prob` + label naming;
//! `ca_metric` with torchmetrics' SNR in float32; the label accuracy of evaluate.py) and stores the
//! signals as recipes that are rebuilt here bit for bit. Labels exactly; dB numbers within 1e-4 (the
//! baseline computes in float32, aural in f64); NaN where the script gives NaN (null).

use aural_models::s5::metrics::{report, score_mixture, Slot};
use aural_models::s5::select::select_labels;
use aural_runtime::testing::fixture_path;
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("s5_metrics.json")).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The script's noise: splitmix64 outputs → (z >> 40) · 2⁻²³ − 1, exact in f32.
fn noise(seed: u64, n: usize) -> Vec<f32> {
    (1..=n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 * (1.0 / (1u32 << 23) as f32) - 1.0
        })
        .collect()
}

/// A recipe `[[seed, gain], …]`: the f32 sum, in order, of gain · noise(seed).
fn build(terms: &Value, n: usize) -> Vec<f32> {
    let mut acc = vec![0.0f32; n];
    for t in terms.as_array().unwrap() {
        let (seed, gain) = (t[0].as_u64().unwrap(), t[1].as_f64().unwrap() as f32);
        assert_eq!(gain as f64, t[1].as_f64().unwrap(), "gains are f32 values");
        for (a, x) in acc.iter_mut().zip(noise(seed, n)) {
            *a += gain * x;
        }
    }
    acc
}

fn close(what: &str, got: f64, want: &Value, tol: f64) {
    match want.as_f64() {
        None => assert!(got.is_nan(), "{what}: got {got}, the reference gives NaN"),
        Some(w) => assert!((got - w).abs() <= tol, "{what}: got {got}, reference {w} (Δ {:e})", got - w),
    }
}

#[test]
fn noise_matches_the_script() {
    let f = fixture();
    let c = &f["noise_check"];
    let want: Vec<f32> = c["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(noise(c["seed"].as_u64().unwrap(), c["n"].as_u64().unwrap() as usize), want);
    let x = noise(12345, 1000);
    assert!(x.iter().all(|v| (-1.0..1.0).contains(v) && (v * (1u32 << 23) as f32).fract() == 0.0));
}

#[test]
fn selection_matches_the_baseline_rules() {
    let f = fixture();
    let cases = f["selection"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for (i, c) in cases.iter().enumerate() {
        let classes = strings(&c["classes"]);
        let probs: Vec<f32> = c["probs"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap() as f32).collect();
        let threshold = c["threshold"].as_f64().unwrap() as f32;
        let r = (c["range"][0].as_u64().unwrap() as usize, c["range"][1].as_u64().unwrap() as usize);
        let got = select_labels(&probs, &classes, threshold, r).unwrap();
        assert_eq!(got, strings(&c["labels"]), "case {i} ({}): probs {probs:?}, threshold {threshold}, range {r:?}", c["note"]);
    }
}

#[test]
fn metrics_match_the_baseline_rules() {
    let f = fixture();
    for d in f["datasets"].as_array().unwrap() {
        let set = d["name"].as_str().unwrap();
        let classes = strings(&d["classes"]);
        let mut scores = Vec::new();
        for m in d["mixtures"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let n = m["n"].as_u64().unwrap() as usize;
            let mixture = build(&m["mixture"], n);
            let waves = |key: &str| -> Vec<(String, Vec<f32>)> {
                m[key].as_array().unwrap().iter().map(|s| (s[0].as_str().unwrap().to_string(), build(&s[1], n))).collect()
            };
            let (refs, ests) = (waves("reference"), waves("estimate"));
            let rs: Vec<Slot> = refs.iter().map(|(l, w)| Slot { label: l, wave: w }).collect();
            let es: Vec<Slot> = ests.iter().map(|(l, w)| Slot { label: l, wave: w }).collect();
            let s = score_mixture(name, &mixture, &rs, &es).unwrap();
            let x = &m["expected"];
            let what = format!("{set}/{name}");
            assert_eq!(s.label_correct, x["label_correct"].as_bool().unwrap(), "{what}: label_correct");
            assert_eq!(s.fp, strings(&x["fp"]), "{what}: fp");
            assert_eq!(s.missed, strings(&x["fn"]), "{what}: fn");
            let tp = x["tp"].as_object().unwrap();
            assert_eq!(s.tp.iter().map(|t| t.label.clone()).collect::<Vec<_>>(), tp.keys().cloned().collect::<Vec<_>>(), "{what}: tp");
            for t in &s.tp {
                let w = &tp[&t.label];
                close(&format!("{what}/{}: snr_estimate", t.label), t.snr_estimate, &w["snr_estimate"], 1e-4);
                close(&format!("{what}/{}: snr_mixture", t.label), t.snr_mixture, &w["snr_mixture"], 1e-4);
                close(&format!("{what}/{}: sdri", t.label), t.sdri, &w["sdri"], 1e-4);
            }
            close(&format!("{what}: ca_sdri"), s.ca_sdri, &x["ca_sdri"], 1e-4);
            scores.push(s);
        }
        let rep = report(scores, &classes);
        let x = &d["expected"];
        close(&format!("{set}: label_accuracy"), rep.label_accuracy, &x["label_accuracy"], 1e-9);
        close(&format!("{set}: ca_sdri"), rep.ca_sdri, &x["ca_sdri"], 1e-4);
        let pc = x["per_class"].as_object().unwrap();
        let mut keys: Vec<&String> = rep.per_class.keys().collect();
        keys.sort();
        let mut want: Vec<&String> = pc.keys().collect();
        want.sort();
        assert_eq!(keys, want, "{set}: per-class rows");
        for (c, row) in &rep.per_class {
            let w = &pc[c];
            assert_eq!(
                (row.tp, row.fp, row.missed),
                (w["tp"].as_u64().unwrap() as usize, w["fp"].as_u64().unwrap() as usize, w["fn"].as_u64().unwrap() as usize),
                "{set}/{c}: counts"
            );
            close(&format!("{set}/{c}: sdri_mean"), row.sdri_mean, &w["sdri_mean"], 1e-4);
            close(&format!("{set}/{c}: ca_sdri"), row.ca_sdri, &w["ca_sdri"], 1e-4);
        }
    }
}
