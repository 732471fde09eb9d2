"""Golden fixtures for the AST backbone (models/tests/ast.rs), from HF transformers' ASTModel.

Weights are deterministic on both sides: every parameter = f(rand_vec(numel, seed)), where rand_vec is
aural's SplitMix64 generator (runtime/src/testing.rs, reimplemented exactly below), the seed is
1000 + the parameter's index in the sorted list of checkpoint names (save_pretrained's names), and f
is a per-kind scale (see `param`). The Rust test rebuilds the same tensors, writes them with a
config.json into a temporary directory and loads them through AstModel::load — the user's path.
The HF side does the same: write model.safetensors + config.json, then ASTModel.from_pretrained.

Fixtures (tests/golden/fixtures):
  ast_small.safetensors — hidden 64, 2 layers, 4 heads, MLP 128, 32 mel × 128 frames (2 × 12
      patches), batch 2: the weights too (`weights/<name>`), input_values, last_hidden_state,
      pooler_output, hidden_states.{0,1,2}.
  ast_cls_small.safetensors — ASTForAudioClassification (7 labels) on the small config: weights/<name>
      under the checkpoint names, input_values (2 × 128 × 32, rand_vec seed 9), logits (2 × 7).
  ast_base.safetensors  — the AST-base config (768 wide, 12 layers, 1024 × 128): input_values is
      regenerated (rand_vec(1024·128, 7)); last_hidden_state (1214 × 768), pooler_output,
      hidden_states.10 rows 0..64, and splitmix_check = rand_vec(8, 12345).

Run: .venv/bin/python tests/golden/ast_backbone.py [--small | --cls]   (transformers 5.24, torch 2.9.1, CPU, f32)
"""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import ASTConfig, ASTForAudioClassification, ASTModel

G = np.uint64(0x9E3779B97F4A7C15)


def rand_vec(n, seed):
    """aural_runtime::testing::rand_vec: SplitMix64 → f32 in [-1, 1)."""
    with np.errstate(over="ignore"):
        s = np.uint64(seed) + G * np.arange(2, n + 2, dtype=np.uint64)
        z = s
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    x = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
    return x * np.float32(2.0) - np.float32(1.0)


def names_and_shapes(c):
    d, ff = c["hidden_size"], c["intermediate_size"]
    p = c["patch_size"]
    fo = (c["num_mel_bins"] - p) // c["frequency_stride"] + 1
    to = (c["max_length"] - p) // c["time_stride"] + 1
    out = {
        "embeddings.cls_token": (1, 1, d),
        "embeddings.distillation_token": (1, 1, d),
        "embeddings.position_embeddings": (1, 2 + fo * to, d),
        "embeddings.patch_embeddings.projection.weight": (d, 1, p, p),
        "embeddings.patch_embeddings.projection.bias": (d,),
        "layernorm.weight": (d,),
        "layernorm.bias": (d,),
    }
    for i in range(c["num_hidden_layers"]):
        L = f"encoder.layer.{i}."
        for m in ["attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense"]:
            out[L + m + ".weight"] = (d, d)
            out[L + m + ".bias"] = (d,)
        out[L + "intermediate.dense.weight"] = (ff, d)
        out[L + "intermediate.dense.bias"] = (ff,)
        out[L + "output.dense.weight"] = (d, ff)
        out[L + "output.dense.bias"] = (d,)
        for m in ["layernorm_before", "layernorm_after"]:
            out[L + m + ".weight"] = (d,)
            out[L + m + ".bias"] = (d,)
    return out


def param(name, shape, seed):
    r = rand_vec(int(np.prod(shape)), seed)
    if "layernorm" in name and name.endswith("weight"):
        v = np.float32(1.0) + np.float32(0.1) * r
    elif "layernorm" in name:
        v = np.float32(0.05) * r
    elif "token" in name or "position" in name:
        v = np.float32(0.5) * r
    elif name.endswith("weight"):
        fan_in = int(np.prod(shape[1:]))
        v = np.float32(1.0 / math.sqrt(fan_in)) * r
    else:
        v = np.float32(0.02) * r
    return v.reshape(shape).astype(np.float32)


def weights(c):
    ns = names_and_shapes(c)
    return {n: param(n, ns[n], 1000 + i) for i, n in enumerate(sorted(ns))}


def run(c, w, x, layers_out):
    with tempfile.TemporaryDirectory() as d:
        save_file(w, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"model_type": "audio-spectrogram-transformer", "architectures": ["ASTModel"], **c}, f)
        model, info = ASTModel.from_pretrained(d, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    model.eval()
    with torch.no_grad():
        o = model(torch.from_numpy(x), output_hidden_states=True)
    out = {
        "last_hidden_state": o.last_hidden_state.numpy(),
        "pooler_output": o.pooler_output.numpy(),
    }
    for k, rows in layers_out:
        h = o.hidden_states[k].numpy()
        out[f"hidden_states.{k}"] = h if rows is None else h[:, :rows]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def classifier(here, small):
    """ast_cls_small.safetensors: ASTForAudioClassification (7 labels) on the small config; weights under
    the checkpoint's own names (`audio_spectrogram_transformer.` + backbone, `classifier.{layernorm,dense}`)."""
    w = {"audio_spectrogram_transformer." + n: t for n, t in weights(small).items()}
    d, labels = small["hidden_size"], 7
    w["classifier.layernorm.weight"] = (np.float32(1.0) + np.float32(0.1) * rand_vec(d, 2001)).astype(np.float32)
    w["classifier.layernorm.bias"] = (np.float32(0.05) * rand_vec(d, 2002)).astype(np.float32)
    w["classifier.dense.weight"] = (np.float32(1.0 / math.sqrt(d)) * rand_vec(labels * d, 2003)).reshape(labels, d).astype(np.float32)
    w["classifier.dense.bias"] = (np.float32(0.1) * rand_vec(labels, 2004)).astype(np.float32)
    x = rand_vec(2 * 128 * 32, 9).reshape(2, 128, 32)
    with tempfile.TemporaryDirectory() as dd:
        save_file(w, os.path.join(dd, "model.safetensors"), metadata={"format": "pt"})
        cfg = {"model_type": "audio-spectrogram-transformer", "architectures": ["ASTForAudioClassification"],
               "id2label": {str(i): f"label_{i}" for i in range(labels)}, "label2id": {f"label_{i}": i for i in range(labels)}, **small}
        with open(os.path.join(dd, "config.json"), "w") as f:
            json.dump(cfg, f)
        model, info = ASTForAudioClassification.from_pretrained(dd, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).logits.numpy()
    out = {"input_values": x, "logits": np.ascontiguousarray(logits, dtype=np.float32)}
    for n, t in w.items():
        out["weights/" + n] = t
    save_file(out, os.path.join(here, "ast_cls_small.safetensors"))
    print("ast_cls_small: logits", logits.shape, float(np.abs(logits).max()))


def main():
    torch.set_num_threads(2)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    print("rand_vec(4, 1) =", rand_vec(4, 1))

    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, hidden_act="gelu",
                 layer_norm_eps=1e-12, patch_size=16, qkv_bias=True, frequency_stride=10, time_stride=10,
                 max_length=128, num_mel_bins=32)
    classifier(here, small)
    if "--cls" in sys.argv:
        return
    w = weights(small)
    x = rand_vec(2 * 128 * 32, 5).reshape(2, 128, 32)
    out = run(small, w, x, [(0, None), (1, None), (2, None)])
    out["input_values"] = x
    for n, t in w.items():
        out["weights/" + n] = t
    save_file(out, os.path.join(here, "ast_small.safetensors"))
    print("ast_small:", out["last_hidden_state"].shape, float(np.abs(out["last_hidden_state"]).max()))

    if "--small" in sys.argv:
        return
    base = dict(ASTConfig().to_dict())
    base = {k: base[k] for k in small}
    w = weights(base)
    x = rand_vec(1024 * 128, 7).reshape(1, 1024, 128)
    out = run(base, w, x, [(10, 64)])
    out["last_hidden_state"] = out["last_hidden_state"][0]
    out["splitmix_check"] = rand_vec(8, 12345)
    save_file(out, os.path.join(here, "ast_base.safetensors"))
    print("ast_base:", out["last_hidden_state"].shape, float(np.abs(out["last_hidden_state"]).max()),
          "hidden_states.10 max", float(np.abs(out["hidden_states.10"]).max()))


if __name__ == "__main__":
    main()
