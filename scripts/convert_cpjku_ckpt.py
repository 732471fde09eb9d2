"""Export CP-JKU's separator and stage-2 SED model (seed 003) from one Lightning checkpoint.

Usage:
  python scripts/convert_cpjku_ckpt.py CKPT SEPARATOR_DIR --sed-out SED_DIR [--hop 160] [--iterations 2]
        [--time-film additive|multiplicative] [--inject-grid 5 62] [--dprnn-before-inject] [--num-heads 12]
        [--ignore-unknown]

CKPT: a checkpoint of theMoro/dcase25task4's separation module (torch.load, its `state_dict`): the
separator under `model.` (as scripts/convert_separator_ckpt.py converts it, with its CP-JKU options;
the hop is not in the weights: CP-JKU uses 2048/160, the default here) and the stage-2 SED model
fine-tuned with it under `embedding_model.` (`model.m2d.backbone.*`, `strong_head.*`, `weak_head.*`;
the nnAudio front end's buffers are dropped). SED_DIR gets config.json with "architecture": "m2d_sed"
and CP-JKU's 16 kHz front end (models/src/m2d/config.rs `sed_default`): embed_dim and depth from the
weights, num_heads = --num-heads (default embed_dim / 64), patch size from the patch embedding, the
position table's 5 × 62 grid checked, normalisation (-7.1, 4.2) (the wrapper's front end never reads the
checkpoint's norm_stats). Each file is written to a temporary name and renamed.

Dependencies: torch, safetensors.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt_tools import ConvertError, load_state, need, write_checkpoint  # noqa: E402
import convert_separator_ckpt as sepconv  # noqa: E402

SED_PREFIX = "embedding_model."


def sed_config(sd, num_heads=None):
    pos = need(sd, "model.m2d.backbone.pos_embed", 3)
    d = pos.shape[2]
    depth = len({k.split(".")[4] for k in sd if k.startswith("model.m2d.backbone.blocks.")})
    pw = need(sd, "model.m2d.backbone.patch_embed.proj.weight", 4)
    ph, pwid = pw.shape[2], pw.shape[3]
    if pos.shape[1] != 1 + (80 // ph) * ((1001 - pwid) // pwid + 1):
        raise ConvertError(f"model.m2d.backbone.pos_embed has {pos.shape[1]} rows; an 80 × 1001 input with "
                           f"{ph}×{pwid} patches needs {1 + (80 // ph) * ((1001 - pwid) // pwid + 1)}")
    classes = need(sd, "strong_head.weight", 2).shape[0]
    if classes != len(sepconv.CLASSES):
        raise ConvertError(f"strong_head has {classes} classes; the DCASE 2025 task 4 set has {len(sepconv.CLASSES)}")
    heads = num_heads or d // 64
    if d % heads:
        raise ConvertError(f"embed_dim {d} is not a multiple of --num-heads {heads}")
    hidden = need(sd, "model.m2d.backbone.blocks.0.mlp.fc1.weight", 2).shape[0]
    return {"architecture": "m2d_sed", "classes": sepconv.CLASSES, "sample_rate": 16000, "n_fft": 400,
            "win_length": 400, "hop_length": 160, "n_mels": 80, "f_min": 50.0, "f_max": 8000.0, "norm_mean": -7.1,
            "norm_std": 4.2, "input_size": [80, 1001], "patch_size": [ph, pwid], "embed_dim": d, "depth": depth,
            "num_heads": heads, "mlp_ratio": hidden / d, "layer_norm_eps": 1e-6, "threshold": 0.5,
            "nevent_range": [1, 3], "ref_channel": 0, "input_sample_rate": 32000, "seq_len": 250}


def sed_shapes(cfg, sd):
    d, (ph, pw) = cfg["embed_dim"], cfg["patch_size"]
    hidden = round(cfg["mlp_ratio"] * d)
    b = "model.m2d.backbone."
    out = {b + "cls_token": (1, 1, d), b + "pos_embed": tuple(sd[b + "pos_embed"].shape),
           b + "patch_embed.proj.weight": (d, 1, ph, pw), b + "patch_embed.proj.bias": (d,),
           b + "norm.weight": (d,), b + "norm.bias": (d,)}
    for i in range(cfg["depth"]):
        p = f"{b}blocks.{i}."
        for n in ("norm1", "norm2"):
            out[p + n + ".weight"] = out[p + n + ".bias"] = (d,)
        out[p + "attn.qkv.weight"], out[p + "attn.qkv.bias"] = (3 * d, d), (3 * d,)
        out[p + "attn.proj.weight"], out[p + "attn.proj.bias"] = (d, d), (d,)
        out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = (hidden, d), (hidden,)
        out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = (d, hidden), (d,)
    width = d * (80 // ph)
    for h in ("strong_head", "weak_head"):
        out[h + ".weight"], out[h + ".bias"] = (len(cfg["classes"]), width), (len(cfg["classes"]),)
    if "head_norm.running_mean" in sd:
        out["head_norm.running_mean"] = out["head_norm.running_var"] = (width,)
    return out


def convert(ckpt, sep_out, sed_out, hop=160, num_heads=None, ignore_unknown=False, log=print, **cpjku):
    raw = load_state(ckpt, ("state_dict",))
    sep_raw = {k: v for k, v in raw.items() if not k.startswith(SED_PREFIX)}
    cfg = sepconv.convert(ckpt, sep_out, prefix="model.", hop=hop, ignore_unknown=ignore_unknown, log=log, raw=sep_raw, **cpjku)
    sd = {k[len(SED_PREFIX):]: v for k, v in raw.items() if k.startswith(SED_PREFIX)}
    if not sd:
        raise ConvertError(f"{ckpt}: no stage-2 SED model ({SED_PREFIX}*) in the checkpoint")
    sd = {k: v for k, v in sd.items() if not (k.endswith("num_batches_tracked") or "to_spec." in k
                                              or "mel_transform" in k or k == "model.m2d.backbone.norm_stats")}
    scfg = sed_config(sd, num_heads)
    want = sed_shapes(scfg, sd)
    unknown = [SED_PREFIX + k for k in sd if k not in want]
    n = write_checkpoint(sd, want, unknown, scfg, sed_out, ignore_unknown, log)
    log(f"{ckpt}: SED model, {n} tensors, D {scfg['embed_dim']}, depth {scfg['depth']} → {sed_out}")
    return cfg, scfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("separator_dir")
    ap.add_argument("--sed-out", required=True, metavar="SED_DIR")
    ap.add_argument("--hop", type=int, default=160)
    ap.add_argument("--num-heads", type=int, help="attention heads of the SED model (default embed_dim / 64)")
    ap.add_argument("--ignore-unknown", action="store_true", help="drop unrecognised tensors instead of refusing")
    sepconv.add_cpjku_args(ap)
    a = ap.parse_args(argv)
    try:
        convert(a.ckpt, a.separator_dir, a.sed_out, hop=a.hop, num_heads=a.num_heads, ignore_unknown=a.ignore_unknown,
                **sepconv.cpjku_kwargs(a))
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
