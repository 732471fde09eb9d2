//! The SED augmentations (trainer/src/augment.rs) against tests/golden/augment.py's fixture
//! (torchaudio mask_along_axis, torch.roll, the DESED baseline's mixup and filt_aug on the same draws),
//! plus properties of the drawing side `augment()` and of the config.

use std::collections::BTreeMap;

use aural_runtime::testing::{assert_close, fixture};
use aural_runtime::Tensor;
use aural_trainer::augment::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Fx = BTreeMap<String, Tensor>;

fn fx() -> Fx {
    fixture("augment.safetensors")
}

fn get(t: &Fx, k: &str) -> Vec<f32> {
    t.get(k).unwrap_or_else(|| panic!("fixture has no {k}")).to_vec().unwrap()
}

fn shape(t: &Fx, k: &str) -> Vec<usize> {
    t[k].shape().to_vec()
}

fn count(t: &Fx, prefix: &str) -> usize {
    (0..).take_while(|i| t.keys().any(|k| k.starts_with(&format!("{prefix}.{i}.")))).count()
}

#[test]
fn masks_match_torchaudio() {
    let t = fx();
    let n = count(&t, "mask");
    assert!(n >= 8, "{n} mask cases");
    for i in 0..n {
        let p = format!("mask.{i}");
        let (l, m) = (shape(&t, &format!("{p}.x"))[0], shape(&t, &format!("{p}.x"))[1]);
        let mut x = get(&t, &format!("{p}.x"));
        let u = get(&t, &format!("{p}.u"));
        let cfg = get(&t, &format!("{p}.cfg"));
        let axis = if cfg[0] == 0.0 { Axis::Time } else { Axis::Freq };
        let r = mask_along_axis(&mut x, l, m, axis, cfg[1] as usize, u[0], u[1], cfg[2]);
        let want_r = get(&t, &format!("{p}.range"));
        assert_eq!((r.start, r.end), (want_r[0] as usize, want_r[1] as usize), "{p}: masked range");
        assert_eq!(x, get(&t, &format!("{p}.out")), "{p}: masked sample");
    }
}

#[test]
fn rolls_match_torch() {
    let t = fx();
    let n = count(&t, "roll");
    assert!(n >= 6);
    for i in 0..n {
        let p = format!("roll.{i}");
        let (l, m) = (shape(&t, &format!("{p}.x"))[0], shape(&t, &format!("{p}.x"))[1]);
        let (f, k) = (shape(&t, &format!("{p}.t"))[0], shape(&t, &format!("{p}.t"))[1]);
        let s = get(&t, &format!("{p}.shift"));
        let shift = s[0] as isize;
        assert_eq!(label_shift(shift, l, f), s[1] as isize, "{p}: label_shift({shift}, {l}, {f})");
        let mut x = get(&t, &format!("{p}.x"));
        roll_time(&mut x, l, m, shift);
        assert_eq!(x, get(&t, &format!("{p}.x_out")), "{p}: features");
        let mut tg = get(&t, &format!("{p}.t"));
        roll_frames(&mut tg, f, k, s[1] as isize);
        assert_eq!(tg, get(&t, &format!("{p}.t_out")), "{p}: frame targets");
    }
}

#[test]
fn mixup_matches_desed() {
    let t = fx();
    let n = count(&t, "mixup");
    assert!(n >= 4);
    for i in 0..n {
        let p = format!("mixup.{i}");
        let xs = shape(&t, &format!("{p}.x"));
        let ss = shape(&t, &format!("{p}.strong"));
        let cfg = get(&t, &format!("{p}.cfg"));
        let (range, soft, lambda) = (cfg[0] as usize..cfg[1] as usize, cfg[2] == 1.0, cfg[3]);
        let perm: Vec<usize> = get(&t, &format!("{p}.perm")).iter().map(|&v| v as usize).collect();
        let (mut x, mut strong, mut weak) = (get(&t, &format!("{p}.x")), get(&t, &format!("{p}.strong")), get(&t, &format!("{p}.weak")));
        let mut batch = FeatBatch { x: &mut x, b: xs[0], l: xs[1], m: xs[2], strong: &mut strong, f: ss[1], k: ss[2], weak: &mut weak };
        mixup(&mut batch, range, lambda, &perm, soft);
        // torch's c·x + (1 − c)·x[perm] is two f32 products and a sum, with 1 − c rounded from f64: exact.
        assert_eq!(x, get(&t, &format!("{p}.x_out")), "{p}: features");
        assert_eq!(strong, get(&t, &format!("{p}.strong_out")), "{p}: strong");
        assert_eq!(weak, get(&t, &format!("{p}.weak_out")), "{p}: weak");
    }
}

#[test]
fn filter_augment_matches_desed() {
    let t = fx();
    let n = count(&t, "filt");
    assert!(n >= 5);
    for i in 0..n {
        let p = format!("filt.{i}");
        let xs = shape(&t, &format!("{p}.x"));
        let (b, l, m) = (xs[0], xs[1], xs[2]);
        let cfg = get(&t, &format!("{p}.cfg"));
        let (n_band, step, log_scale, min_bw) = (cfg[0] as usize, cfg[1] == 1.0, cfg[2], cfg[3] as usize);
        let raw: Vec<usize> = get(&t, &format!("{p}.raw")).iter().map(|&v| v as usize).collect();
        let bounds = filter_boundaries(m, n_band, min_bw, &raw);
        let want_bounds: Vec<usize> = get(&t, &format!("{p}.bounds")).iter().map(|&v| v as usize).collect();
        assert_eq!(bounds, want_bounds, "{p}: boundaries");
        let factors = get(&t, &format!("{p}.factors"));
        let nf = factors.len() / b;
        let want_filt = get(&t, &format!("{p}.filt_db"));
        let mut x = get(&t, &format!("{p}.x"));
        for j in 0..b {
            let filt = filter_augment_db(m, n_band, &bounds, &factors[j * nf..(j + 1) * nf], step);
            // torch.linspace reproduced bit for bit (fma), step filters trivially.
            assert_eq!(filt, want_filt[j * m..(j + 1) * m], "{p}: dB filter of sample {j}");
            apply_filter(&mut x[j * l * m..(j + 1) * l * m], l, m, &filt, log_scale);
        }
        assert_close(&format!("{p}: filtered features"), &x, &get(&t, &format!("{p}.out")), 1e-6, 1e-6);
    }
}

#[test]
fn effective_min_bw_reduces_like_desed() {
    assert_eq!(effective_min_bw(12, 5, 6), 2);
    assert_eq!(effective_min_bw(128, 5, 6), 6);
    assert_eq!(effective_min_bw(3, 5, 6), 0);
    assert_eq!(effective_min_bw(4, 5, 6), 1);
}

#[test]
fn torch_linspace_edges() {
    assert_eq!(torch_linspace(1.5, -2.0, 1), vec![1.5]);
    assert!(torch_linspace(1.0, 2.0, 0).is_empty());
    assert_eq!(torch_linspace(-6.0, 6.0, 2), vec![-6.0, 6.0]);
    let v = torch_linspace(0.25, 3.0, 9);
    assert_eq!((v[0], v[8]), (0.25, 3.0));
}

#[test]
fn gain_matches_power_scaling() {
    let t = fx();
    let xs = shape(&t, "gain.x");
    let n = xs[1] * xs[2];
    let g = get(&t, "gain.db");
    let mut x = get(&t, "gain.x");
    for j in 0..xs[0] {
        gain(&mut x[j * n..(j + 1) * n], g[j], g[2]);
    }
    assert_close("gain", &x, &get(&t, "gain.out"), 1e-6, 1e-6);
}

#[test]
fn label_shift_rounds_half_away_and_is_odd() {
    assert_eq!(label_shift(1, 2, 1), 1); // 0.5 → 1
    assert_eq!(label_shift(-1, 2, 1), -1);
    assert_eq!(label_shift(3, 2, 1), 2); // 1.5 → 2
    assert_eq!(label_shift(1024, 1024, 1010), 1010);
    assert_eq!(label_shift(0, 1024, 1010), 0);
    for s in -3000isize..3000 {
        assert_eq!(label_shift(-s, 1024, 1010), -label_shift(s, 1024, 1010), "s = {s}");
        let exact = s as f64 * 1010.0 / 1024.0;
        assert!((label_shift(s, 1024, 1010) as f64 - exact).abs() <= 0.5, "s = {s}");
    }
}

// ---- augment(): properties ----------------------------------------------------------------------

const B: usize = 6;
const L: usize = 64;
const M: usize = 16;
const F: usize = 50;
const K: usize = 3;
const LOG_SCALE: f32 = 0.11;

struct Data {
    x: Vec<f32>,
    strong: Vec<f32>,
    weak: Vec<f32>,
}

fn data() -> Data {
    let x = aural_runtime::testing::rand_vec(B * L * M, 7);
    let strong: Vec<f32> = aural_runtime::testing::rand_vec(B * F * K, 8).iter().map(|&v| if v > 0.3 { 1.0 } else { 0.0 }).collect();
    let mut weak = vec![0f32; B * K];
    for b in 0..B {
        for f in 0..F {
            for k in 0..K {
                weak[b * K + k] = weak[b * K + k].max(strong[(b * F + f) * K + k]);
            }
        }
    }
    Data { x, strong, weak }
}

fn run(cfg: &AugmentConfig, seed: u64, sets: &[std::ops::Range<usize>]) -> Data {
    let mut d = data();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut batch = FeatBatch { x: &mut d.x, b: B, l: L, m: M, strong: &mut d.strong, f: F, k: K, weak: &mut d.weak };
    augment(cfg, &mut rng, &mut batch, sets, LOG_SCALE);
    d
}

fn all_on(p: f64) -> AugmentConfig {
    AugmentConfig {
        gain: Some(GainCfg { p, ..Default::default() }),
        time_shift: Some(TimeShiftCfg { p, ..Default::default() }),
        filter_augment: Some(FilterAugCfg { p, ..Default::default() }),
        mixup: Some(MixupCfg { p, ..Default::default() }),
        time_mask: Some(MaskCfg { p, max_width: 20, ..MaskCfg::time_default() }),
        freq_mask: Some(MaskCfg { p, max_width: 6, ..MaskCfg::freq_default() }),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn same_seed_same_bytes() {
    let sets = [0..3, 3..6];
    for cfg in [all_on(1.0), all_on(0.5)] {
        let (a, b, c) = (run(&cfg, 5, &sets), run(&cfg, 5, &sets), run(&cfg, 6, &sets));
        assert_eq!(bits(&a.x), bits(&b.x));
        assert_eq!(bits(&a.strong), bits(&b.strong));
        assert_eq!(bits(&a.weak), bits(&b.weak));
        assert_ne!(bits(&a.x), bits(&c.x), "another seed changes the features");
    }
    assert_ne!(bits(&run(&all_on(1.0), 5, &sets).x), bits(&data().x), "p = 1 changes the features");
}

#[test]
fn p_zero_and_none_change_nothing() {
    let d = data();
    for cfg in [all_on(0.0), AugmentConfig::default()] {
        let a = run(&cfg, 9, &[0..3, 3..6]);
        assert_eq!(bits(&a.x), bits(&d.x));
        assert_eq!(bits(&a.strong), bits(&d.strong));
        assert_eq!(bits(&a.weak), bits(&d.weak));
    }
}

#[test]
fn stages_draw_from_their_own_streams() {
    // Turning gain on or off leaves the masks' draws alone: with only masks on, the masked cells are
    // the same as with gain + masks (where the gain shifted every other cell).
    let masks = AugmentConfig {
        time_mask: Some(MaskCfg { value: 123.0, ..MaskCfg::time_default() }),
        freq_mask: Some(MaskCfg { value: 123.0, ..MaskCfg::freq_default() }),
        ..Default::default()
    };
    let with_gain = AugmentConfig { gain: Some(GainCfg::default()), ..masks.clone() };
    let (a, b) = (run(&masks, 3, &[]), run(&with_gain, 3, &[]));
    let ma: Vec<bool> = a.x.iter().map(|&v| v == 123.0).collect();
    let mb: Vec<bool> = b.x.iter().map(|&v| v == 123.0).collect();
    assert!(ma.iter().any(|&v| v));
    assert_eq!(ma, mb);
}

#[test]
fn mixup_with_lambda_one_is_identity() {
    let d = data();
    let mut e = data();
    let mut batch = FeatBatch { x: &mut e.x, b: B, l: L, m: M, strong: &mut e.strong, f: F, k: K, weak: &mut e.weak };
    mixup(&mut batch, 1..5, 1.0, &[2, 0, 3, 1], true);
    assert_eq!(bits(&e.x), bits(&d.x));
    assert_eq!(bits(&e.strong), bits(&d.strong));
    assert_eq!(bits(&e.weak), bits(&d.weak));
    // The identity permutation is identity for any λ on targets in {0, 1} (hard) and on features.
    let mut batch = FeatBatch { x: &mut e.x, b: B, l: L, m: M, strong: &mut e.strong, f: F, k: K, weak: &mut e.weak };
    mixup(&mut batch, 0..6, 0.3, &[0, 1, 2, 3, 4, 5], false);
    assert_close("identity perm", &e.x, &d.x, 1e-6, 1e-6);
    assert_eq!(bits(&e.strong), bits(&d.strong));
}

#[test]
fn mixup_only_touches_its_sets() {
    let cfg = AugmentConfig { mixup: Some(MixupCfg { p: 1.0, ..Default::default() }), ..Default::default() };
    let d = data();
    let a = run(&cfg, 4, &[1..4, 5..6]);
    let n = L * M;
    for s in [0, 4, 5] {
        assert_eq!(bits(&a.x[s * n..(s + 1) * n]), bits(&d.x[s * n..(s + 1) * n]), "sample {s}");
        assert_eq!(bits(&a.weak[s * K..(s + 1) * K]), bits(&d.weak[s * K..(s + 1) * K]), "sample {s}");
    }
    assert_ne!(bits(&a.x[n..4 * n]), bits(&d.x[n..4 * n]));
    assert!(a.strong.iter().chain(&a.weak).all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn masks_never_touch_labels() {
    let cfg = AugmentConfig {
        time_mask: Some(MaskCfg { count: 3, ..MaskCfg::time_default() }),
        freq_mask: Some(MaskCfg { count: 2, ..MaskCfg::freq_default() }),
        ..Default::default()
    };
    let d = data();
    let a = run(&cfg, 11, std::slice::from_ref(&(0..6)));
    assert_ne!(bits(&a.x), bits(&d.x));
    assert_eq!(bits(&a.strong), bits(&d.strong));
    assert_eq!(bits(&a.weak), bits(&d.weak));
}

#[test]
fn gain_and_filter_never_touch_labels() {
    let cfg = AugmentConfig {
        gain: Some(GainCfg::default()),
        filter_augment: Some(FilterAugCfg { step_prob: Some(0.5), ..Default::default() }),
        ..Default::default()
    };
    let d = data();
    for seed in 0..8 {
        let a = run(&cfg, seed, &[]);
        assert_ne!(bits(&a.x), bits(&d.x));
        assert_eq!(bits(&a.strong), bits(&d.strong));
        assert_eq!(bits(&a.weak), bits(&d.weak));
    }
}

#[test]
fn time_shift_by_l_is_identity() {
    let d = data();
    let mut x = d.x[..L * M].to_vec();
    roll_time(&mut x, L, M, L as isize);
    assert_eq!(bits(&x), bits(&d.x[..L * M]));
    roll_time(&mut x, L, M, -3 * L as isize);
    assert_eq!(bits(&x), bits(&d.x[..L * M]));
    roll_time(&mut x, L, M, 5);
    roll_time(&mut x, L, M, -5);
    assert_eq!(bits(&x), bits(&d.x[..L * M]));
    let mut t = d.strong[..F * K].to_vec();
    roll_frames(&mut t, F, K, label_shift(L as isize, L, F));
    assert_eq!(bits(&t), bits(&d.strong[..F * K]), "a shift of l input frames is one of f output frames");
}

#[test]
fn time_shift_moves_features_and_labels_together() {
    // Weak targets and the multiset of frames are unchanged; each sample is a rotation of itself.
    let cfg = AugmentConfig { time_shift: Some(TimeShiftCfg { std: 0.2, p: 1.0 }), ..Default::default() };
    let d = data();
    let a = run(&cfg, 2, &[]);
    assert_eq!(bits(&a.weak), bits(&d.weak));
    let n = L * M;
    let mut moved = 0;
    for s in 0..B {
        let orig = &d.x[s * n..(s + 1) * n];
        let got = &a.x[s * n..(s + 1) * n];
        let r = (0..L).find(|&r| {
            let mut v = orig.to_vec();
            roll_time(&mut v, L, M, r as isize);
            v == got
        });
        let r = r.unwrap_or_else(|| panic!("sample {s} is not a rotation"));
        moved += (r != 0) as usize;
        let mut t = d.strong[s * F * K..(s + 1) * F * K].to_vec();
        let signed = if r > L / 2 { r as isize - L as isize } else { r as isize };
        roll_frames(&mut t, F, K, label_shift(signed, L, F));
        let mut t2 = d.strong[s * F * K..(s + 1) * F * K].to_vec();
        roll_frames(&mut t2, F, K, label_shift(signed - L as isize * signed.signum(), L, F));
        let got_t = &a.strong[s * F * K..(s + 1) * F * K];
        assert!(t == got_t || t2 == got_t, "sample {s}: frame targets not shifted with the features");
    }
    assert!(moved > 0);
}

// ---- config --------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Top {
    #[serde(default)]
    augment: AugmentConfig,
}

fn parse(s: &str) -> Result<AugmentConfig, String> {
    toml::from_str::<Top>(s).map(|t| t.augment).map_err(|e| e.to_string())
}

#[test]
fn config_defaults_and_tables() {
    assert_eq!(parse("").unwrap(), AugmentConfig::default());
    let c = parse("[augment.mixup]\n[augment.time_mask]\n[augment.freq_mask]\ncount = 2\n[augment.filter_augment]\n[augment.gain]\n[augment.time_shift]\n")
        .unwrap();
    assert_eq!(c.mixup, Some(MixupCfg { p: 0.5, alpha: 0.2, soft: true }));
    assert_eq!(c.time_mask, Some(MaskCfg { max_width: 100, count: 1, p: 1.0, value: 0.0 }));
    assert_eq!(c.freq_mask, Some(MaskCfg { max_width: 24, count: 2, p: 1.0, value: 0.0 }));
    assert_eq!(c.gain, Some(GainCfg { db: [-6.0, 6.0], p: 1.0 }));
    assert_eq!(c.time_shift, Some(TimeShiftCfg { std: 0.125, p: 1.0 }));
    let fa = c.filter_augment.clone().unwrap();
    assert_eq!((fa.db_range, fa.n_band, fa.min_bw, fa.filter_type, fa.step_prob, fa.p), ([-6.0, 6.0], [3, 6], 6, FilterType::Linear, None, 1.0));
    c.validate().unwrap();
    let c = parse("[augment.filter_augment]\nfilter_type = \"step\"\nn_band = [2, 5]\nmin_bw = 4\n").unwrap();
    assert_eq!(c.filter_augment.unwrap().filter_type, FilterType::Step);
    assert!(parse("[augment.mixup]\nbeta = 1.0\n").is_err(), "unknown keys are rejected");
    assert!(parse("[augment.time_mask]\nwidth = 3\n").is_err(), "unknown keys are rejected");
    assert!(parse("[augment]\nspecaug = true\n").is_err(), "unknown keys are rejected");
}

#[test]
fn validate_names_the_key() {
    let bad = [
        ("[augment.mixup]\nalpha = -1.0\n", "augment.mixup.alpha must be > 0, got -1"),
        ("[augment.mixup]\np = 1.5\n", "augment.mixup.p"),
        ("[augment.gain]\ndb = [6.0, -6.0]\n", "augment.gain.db"),
        ("[augment.gain]\np = -0.1\n", "augment.gain.p"),
        ("[augment.time_shift]\nstd = -0.1\n", "augment.time_shift.std"),
        ("[augment.filter_augment]\nn_band = [3, 3]\n", "augment.filter_augment.n_band"),
        ("[augment.filter_augment]\nn_band = [0, 3]\n", "augment.filter_augment.n_band"),
        ("[augment.filter_augment]\nmin_bw = 0\n", "augment.filter_augment.min_bw"),
        ("[augment.filter_augment]\ndb_range = [1.0, -1.0]\n", "augment.filter_augment.db_range"),
        ("[augment.filter_augment]\nstep_prob = 2.0\n", "augment.filter_augment.step_prob"),
        ("[augment.filter_augment]\nstep_prob = 0.5\nfilter_type = \"step\"\n", "augment.filter_augment.step_prob"),
        ("[augment.filter_augment]\np = 3.0\n", "augment.filter_augment.p"),
        ("[augment.time_mask]\nmax_width = 0\n", "augment.time_mask.max_width"),
        ("[augment.freq_mask]\ncount = 0\n", "augment.freq_mask.count"),
        ("[augment.freq_mask]\np = 2.0\n", "augment.freq_mask.p"),
    ];
    for (toml, key) in bad {
        let e = parse(toml).unwrap().validate().expect_err(toml);
        assert!(e.contains(key), "{toml:?}: {e:?} does not name {key}");
    }
    all_on(0.3).validate().unwrap();
}
