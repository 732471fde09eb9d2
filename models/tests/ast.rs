//! AST backbone vs HF transformers' `ASTModel` (golden fixtures from `tests/golden/ast_backbone.py`), through
//! the user's path: a directory with config.json + model.safetensors, loaded by `AstModel::load`.
//!
//! The fixtures were produced by (transformers 5.24, torch 2.9.1, CPU, f32; see the script):
//! ```python
//! w = weights(cfg)                      # every parameter = scale · rand_vec(numel, 1000 + sorted index)
//! save_file(w, d + "/model.safetensors"); json.dump(cfg, open(d + "/config.json", "w"))
//! o = ASTModel.from_pretrained(d)(torch.from_numpy(x), output_hidden_states=True)
//! # ast_small: hidden 64, 2 layers, 4 heads, 32 mel × 128 frames, batch 2 (weights stored too)
//! # ast_base:  the AST-base config, x = rand_vec(1024·128, 7): last_hidden_state (1214 × 768), ...
//! ```

use std::collections::BTreeMap;

use aural_models::ast::{AstConfig, AstModel};
use aural_runtime::testing::{fixture, rand_vec};
use aural_runtime::{safetensors_io, Device, Tensor};
use tempfile::TempDir;

/// A fresh temporary directory, removed when the returned guard drops (also when the test fails).
fn tmpdir(tag: &str) -> TempDir {
    tempfile::Builder::new().prefix(&format!("aural_ast_test_{tag}_")).tempdir().unwrap()
}

fn write_checkpoint(dir: &TempDir, cfg: &AstConfig, tensors: &BTreeMap<String, Tensor>) {
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(cfg).unwrap()).unwrap();
    safetensors_io::save(dir.path().join("model.safetensors"), tensors.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
}

/// Checkpoint names and shapes of an `ASTModel` (what save_pretrained writes).
fn names_and_shapes(c: &AstConfig) -> BTreeMap<String, Vec<usize>> {
    let (d, ff) = (c.hidden_size, c.intermediate_size);
    let (ph, pw) = c.patch_dims();
    let mut m = BTreeMap::new();
    let mut put = |n: String, s: &[usize]| {
        m.insert(n, s.to_vec());
    };
    put("embeddings.cls_token".into(), &[1, 1, d]);
    put("embeddings.distillation_token".into(), &[1, 1, d]);
    put("embeddings.position_embeddings".into(), &[1, c.seq_len(), d]);
    put("embeddings.patch_embeddings.projection.weight".into(), &[d, 1, ph, pw]);
    put("embeddings.patch_embeddings.projection.bias".into(), &[d]);
    put("layernorm.weight".into(), &[d]);
    put("layernorm.bias".into(), &[d]);
    for i in 0..c.num_hidden_layers {
        let l = format!("encoder.layer.{i}.");
        for mo in ["attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense"] {
            put(format!("{l}{mo}.weight"), &[d, d]);
            put(format!("{l}{mo}.bias"), &[d]);
        }
        put(format!("{l}intermediate.dense.weight"), &[ff, d]);
        put(format!("{l}intermediate.dense.bias"), &[ff]);
        put(format!("{l}output.dense.weight"), &[d, ff]);
        put(format!("{l}output.dense.bias"), &[d]);
        for mo in ["layernorm_before", "layernorm_after"] {
            put(format!("{l}{mo}.weight"), &[d]);
            put(format!("{l}{mo}.bias"), &[d]);
        }
    }
    m
}

/// The deterministic weights of tests/golden/ast_backbone.py (`param`).
fn weights(c: &AstConfig) -> BTreeMap<String, Tensor> {
    names_and_shapes(c)
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let r = rand_vec(n, 1000 + i as u64);
            let v: Vec<f32> = if name.contains("layernorm") && name.ends_with("weight") {
                r.iter().map(|x| 1.0f32 + 0.1f32 * x).collect()
            } else {
                let s = if name.contains("layernorm") {
                    0.05f32
                } else if name.contains("token") || name.contains("position") {
                    0.5
                } else if name.ends_with("weight") {
                    (1.0 / (shape[1..].iter().product::<usize>() as f64).sqrt()) as f32
                } else {
                    0.02
                };
                r.iter().map(|x| s * x).collect()
            };
            (name, Tensor::from_vec(v, &shape).unwrap())
        })
        .collect()
}

fn small_config() -> AstConfig {
    AstConfig {
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 128,
        max_length: 128,
        num_mel_bins: 32,
        ..AstConfig::default()
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.numel(), b.numel(), "sizes {:?} vs {:?}", a.shape(), b.shape());
    a.to_vec().unwrap().iter().zip(b.to_vec().unwrap()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn assert_max_abs(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let e = max_abs_diff(got, want);
    eprintln!("{what}: max abs error {e:.3e}");
    assert!(e <= tol, "{what}: max abs error {e} > {tol}");
}

#[test]
fn splitmix_matches_numpy() {
    let f = fixture("ast_base.safetensors");
    assert_eq!(f["splitmix_check"].to_vec().unwrap(), rand_vec(8, 12345));
}

#[test]
fn regenerated_small_weights_equal_the_stored_ones() {
    let f = fixture("ast_small.safetensors");
    for (name, t) in weights(&small_config()) {
        assert_eq!(t.to_vec().unwrap(), f[&format!("weights/{name}")].to_vec().unwrap(), "{name}");
    }
}

fn small_checkpoint() -> (AstConfig, BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) {
    let f = fixture("ast_small.safetensors");
    let w: BTreeMap<String, Tensor> = f.iter().filter_map(|(k, v)| k.strip_prefix("weights/").map(|n| (n.to_string(), v.clone()))).collect();
    (small_config(), w, f)
}

#[test]
fn small_matches_hf() {
    let (cfg, w, f) = small_checkpoint();
    let dir = tmpdir("small");
    write_checkpoint(&dir, &cfg, &w);
    let m = AstModel::load(dir.path(), Device::Cpu, None).unwrap();
    assert!(m.unexpected.is_empty(), "{:?}", m.unexpected);
    let x = &f["input_values"];
    let y = m.forward(x).unwrap();
    assert_eq!(y.shape(), &[2, 26, 64]);
    assert_max_abs("small last_hidden_state", &y, &f["last_hidden_state"], 1e-4);
    let hs = m.forward_hidden_states(x).unwrap();
    assert_eq!(hs.len(), 3);
    for (k, h) in hs.iter().enumerate() {
        assert_max_abs(&format!("small hidden_states.{k}"), h, &f[&format!("hidden_states.{k}")], 1e-4);
    }
    assert_max_abs("small pooler_output", &m.pooled(&y).unwrap(), &f["pooler_output"], 1e-4);
    let g = m.patch_grid(&y).unwrap();
    assert_eq!(g.shape(), &[2, 2, 12, 64]);
    assert_eq!(g.to_vec().unwrap()[..64], y.to_vec().unwrap()[2 * 64..3 * 64]);
    // The first N blocks only (AST-SED uses 10 of 12).
    let m1 = AstModel::load(dir.path(), Device::Cpu, Some(1)).unwrap();
    assert_eq!(m1.layers.len(), 1);
    assert_max_abs("small hidden_state(1) with 1 block", &m1.hidden_state(x, 1).unwrap(), &f["hidden_states.1"], 1e-4);
    assert!(m1.unexpected.is_empty(), "the skipped block is known, not unexpected: {:?}", m1.unexpected);
    assert!(AstModel::load(dir.path(), Device::Cpu, Some(3)).is_err());
}

/// transformers 5.x in-memory names, under ASTForAudioClassification's prefix with its classifier
/// head, plus one stray tensor: same numbers, and the stray one is reported.
#[test]
fn loads_v5_names_and_classification_checkpoints() {
    let (cfg, w, f) = small_checkpoint();
    let rename = |n: &str| -> String {
        let n = n
            .replace("encoder.layer.", "layers.")
            .replace("attention.attention.query", "attention.q_proj")
            .replace("attention.attention.key", "attention.k_proj")
            .replace("attention.attention.value", "attention.v_proj")
            .replace("attention.output.dense", "attention.o_proj")
            .replace("intermediate.dense", "mlp.fc1")
            .replace("output.dense", "mlp.fc2");
        format!("audio_spectrogram_transformer.{n}")
    };
    let mut w5: BTreeMap<String, Tensor> = w.iter().map(|(k, v)| (rename(k), v.clone())).collect();
    assert!(w5.contains_key("audio_spectrogram_transformer.layers.1.mlp.fc2.weight"));
    w5.insert("classifier.layernorm.weight".into(), Tensor::full(&[64], 1.0, Device::Cpu).unwrap());
    w5.insert("classifier.dense.weight".into(), Tensor::full(&[5, 64], 0.1, Device::Cpu).unwrap());
    w5.insert("classifier.layernorm.bias".into(), Tensor::full(&[64], 0.0, Device::Cpu).unwrap());
    w5.insert("classifier.dense.bias".into(), Tensor::full(&[5], 0.0, Device::Cpu).unwrap());
    w5.insert("stray.tensor".into(), Tensor::full(&[3], 0.0, Device::Cpu).unwrap());
    let dir = tmpdir("v5");
    write_checkpoint(&dir, &cfg, &w5);
    let m = AstModel::load(dir.path(), Device::Cpu, None).unwrap();
    assert_eq!(m.unexpected, vec!["stray.tensor".to_string()]);
    assert_max_abs("v5-named last_hidden_state", &m.forward(&f["input_values"]).unwrap(), &f["last_hidden_state"], 1e-4);
}

#[test]
fn missing_or_misshaped_tensors_are_named() {
    let (cfg, mut w, _) = small_checkpoint();
    let dir = tmpdir("bad");
    w.insert("encoder.layer.1.intermediate.dense.weight".into(), Tensor::full(&[128, 32], 0.0, Device::Cpu).unwrap());
    write_checkpoint(&dir, &cfg, &w);
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("encoder.layer.1.intermediate.dense.weight") && e.contains("[128, 32]") && e.contains("[128, 64]"), "{e}");
    w.remove("encoder.layer.1.intermediate.dense.weight");
    write_checkpoint(&dir, &cfg, &w);
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("missing tensor 'encoder.layer.1.intermediate.dense.weight'") && e.contains("[128, 64]"), "{e}");
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 60, \"num_attention_heads\": 7}").unwrap();
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("not divisible"), "{e}");
    let e = AstModel::load(dir.path().join("nope"), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}

/// A sharded save (`save_pretrained(max_shard_size=...)`): `model.safetensors.index.json` names the
/// shard of every tensor (`model-0000i-of-00003.safetensors`, HF's file names and index format).
/// Same numbers as the single file; a missing shard, a tensor absent from the shard the index names,
/// and a directory of PyTorch pickles are errors naming the file and tensor.
#[test]
fn sharded_checkpoints_load_and_broken_ones_are_named() {
    let (cfg, w, f) = small_checkpoint();
    let dir = tmpdir("sharded");
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let names: Vec<&String> = w.keys().collect();
    let shard_of = |i: usize| format!("model-{:05}-of-00003.safetensors", i * 3 / names.len() + 1);
    let mut map = serde_json::Map::new();
    for s in 1..=3 {
        let file = format!("model-{s:05}-of-00003.safetensors");
        let part: Vec<(&str, &Tensor)> = names.iter().enumerate().filter(|(i, _)| shard_of(*i) == file).map(|(_, n)| (n.as_str(), &w[*n])).collect();
        assert!(!part.is_empty());
        for (n, _) in &part {
            map.insert(n.to_string(), serde_json::Value::String(file.clone()));
        }
        safetensors_io::save(dir.path().join(&file), part).unwrap();
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let m = AstModel::load(dir.path(), Device::Cpu, None).unwrap();
    assert!(m.unexpected.is_empty(), "{:?}", m.unexpected);
    assert_max_abs("sharded last_hidden_state", &m.forward(&f["input_values"]).unwrap(), &f["last_hidden_state"], 1e-4);

    // The index puts a tensor in shard 3 that shard 3 does not hold.
    let moved = names[0].clone();
    let mut bad = map.clone();
    bad.insert(moved.clone(), serde_json::Value::String("model-00003-of-00003.safetensors".into()));
    std::fs::write(dir.path().join("model.safetensors.index.json"), serde_json::json!({"weight_map": bad}).to_string()).unwrap();
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains(&moved) && e.contains("model-00001-of-00003.safetensors") && e.contains("model-00003-of-00003.safetensors"), "{e}");
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::remove_file(dir.path().join("model-00002-of-00003.safetensors")).unwrap();
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("model-00002-of-00003.safetensors") && e.contains("no such file"), "{e}");
    std::fs::write(dir.path().join("model.safetensors.index.json"), "{\"weight_map\": 3}").unwrap();
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("model.safetensors.index.json") && e.contains("not a safetensors index"), "{e}");
    std::fs::remove_file(dir.path().join("model.safetensors.index.json")).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"pickle").unwrap();
    let e = AstModel::load(dir.path(), Device::Cpu, None).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("pytorch_model.bin"), "{e}");
}

/// The whole model on the CUDA emulator (every kernel it uses, batch 1) vs the CPU.
#[test]
fn small_on_emulator_matches_cpu() {
    let (cfg, w, f) = small_checkpoint();
    let cpu = AstModel::from_tensors(cfg.clone(), w.clone(), std::path::Path::new("fixture"), Device::Cpu, None).unwrap();
    let emu = AstModel::from_tensors(cfg, w, std::path::Path::new("fixture"), Device::Emu, None).unwrap();
    let x = aural_runtime::ops::shape::slice(&f["input_values"], 0, 0, 1).unwrap();
    let want = cpu.forward(&x).unwrap();
    let got = emu.forward(&x.to_device(Device::Emu).unwrap()).unwrap();
    assert_eq!(got.device(), Device::Emu);
    assert_max_abs("emulator vs cpu", &got, &want, 1e-4);
}

/// The AudioSet AST-base configuration (768 wide, 12 layers, 1214 tokens) with regenerated weights.
#[test]
fn base_matches_hf() {
    let f = fixture("ast_base.safetensors");
    let cfg = AstConfig::default();
    let dir = tmpdir("base");
    write_checkpoint(&dir, &cfg, &weights(&cfg));
    let m = AstModel::load(dir.path(), Device::Cpu, None).unwrap();
    drop(dir);
    let x = Tensor::from_vec(rand_vec(1024 * 128, 7), &[1, 1024, 128]).unwrap();
    let t = std::time::Instant::now();
    let y = m.forward(&x).unwrap();
    eprintln!("AST-base forward (CPU): {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(y.shape(), &[1, 1214, 768]);
    assert_max_abs("base last_hidden_state", &y.reshape(&[1214, 768]).unwrap(), &f["last_hidden_state"], 1e-4);
    assert_max_abs("base pooler_output", &m.pooled(&y).unwrap(), &f["pooler_output"], 1e-4);
    let h10 = aural_runtime::ops::shape::slice(&m.hidden_state(&x, 10).unwrap(), 1, 0, 64).unwrap();
    assert_max_abs("base hidden_states.10[:64]", &h10, &f["hidden_states.10"], 1e-4);
}

/// ASTForAudioClassification logits vs HF (tests/golden/ast_backbone.py `classifier`: 7 labels,
/// weights under the checkpoint's own names), CPU and every GPU device; a checkpoint without the head
/// says so.
#[test]
fn classifier_logits_match_hf() {
    let f = fixture("ast_cls_small.safetensors");
    let w: BTreeMap<String, Tensor> = f.iter().filter_map(|(k, v)| k.strip_prefix("weights/").map(|n| (n.to_string(), v.clone()))).collect();
    let cfg = small_config();
    let dir = tmpdir("cls");
    write_checkpoint(&dir, &cfg, &w);
    let mut devs = vec![Device::Cpu];
    devs.extend(aural_runtime::testing::gpu_devices());
    for dev in devs {
        let m = AstModel::load(dir.path(), dev, None).unwrap();
        assert!(m.unexpected.is_empty(), "{:?}", m.unexpected);
        let x = f["input_values"].to_device(dev).unwrap();
        let logits = m.logits(&m.forward(&x).unwrap()).unwrap();
        assert_eq!(logits.shape(), &[2, 7]);
        assert_max_abs(&format!("{dev} classifier logits"), &logits.to_device(Device::Cpu).unwrap(), &f["logits"], 1e-4);
    }
    let (cfg, w, f) = small_checkpoint();
    let dir = tmpdir("nocls");
    write_checkpoint(&dir, &cfg, &w);
    let m = AstModel::load(dir.path(), Device::Cpu, None).unwrap();
    let e = m.logits(&m.forward(&f["input_values"]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("no classifier head"), "{e}");
}
