"""Convert an M2D tagger checkpoint (the DCASE 2025 task 4 baseline's M2dAt) into aural's checkpoint directory.

Usage:
  python scripts/convert_m2d_ckpt.py CKPT OUT_DIR [--num-heads 12] [--classes LIST|FILE]
                                     [--sample-rate 32000|16000] [--input-frames N] [--ignore-unknown]

CKPT is one of (detected from its keys):
  lightning  the baseline's Lightning tagger checkpoint (`state_dict` entry, keys `model.backbone.…`,
             `model.head_norm.…`, `model.head.…`, plus the nnAudio front end's `model.to_spec.…` buffers);
  m2dat      a bare M2dAt state dict (the same names without `model.`);
  m2d        an M2D weights file as the baseline's `weight_file` (e.g. m2d_as_vit_base-80x1001p16x16p32k-
             240413_AS-FT_enconly/weights_ep69it3124-0.47998.pth): the ViT under `module.ar.runtime.backbone.`
             (or with no prefix), optionally wrapped in a `model` entry, and — in an EVAR fine-tuned file —
             the task head `module.head.norm.running_{mean,var}` (BatchNorm1d, affine=False) and
             `module.head.mlp.mlp.0.{weight,bias}` (Linear), mapped to head_norm.* / head.* exactly as the
             baseline's portable_m2d.load_evar_head_parameters does. Such a head is AudioSet's (527 classes):
             pass --classes. A file without that head has no tagger to convert (an error names the tensor).
             `norm_stats` missing from an M2D file means the 2022 default (-7.1, 4.2), as in the baseline.
.pth/.ckpt files are read with torch.load(map_location='cpu', weights_only=False) (so a Lightning
checkpoint whose hyper-parameters pickle custom classes needs them importable); .safetensors files too.

OUT_DIR receives model.safetensors (f32, contiguous, names of tests/golden/m2d.py: backbone.cls_token,
backbone.pos_embed, backbone.norm_stats, backbone.patch_embed.proj.*, backbone.blocks.{i}.{norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.*, backbone.norm.*, head_norm.running_{mean,var},
head.*) and config.json, each written to a temporary file in OUT_DIR and then os.replace'd.
Always dropped: `to_spec.*` (the front end is rebuilt from config.json) and BatchNorm `num_batches_tracked`.
Any other key left over is listed and refused unless --ignore-unknown; a missing tensor, or one whose
shape contradicts the inferred geometry, is an error naming the tensor and both shapes.

Inferred from the tensors: embed_dim (pos_embed), depth (blocks.N), patch_size (patch_embed.proj),
mlp_ratio (mlp.fc1), the head width (embed_dim = mean of the patch tokens; (n_mels/patch)·embed_dim = the
per-time-step concatenation of the frequency tokens), the number of classes (head), norm_mean/norm_std
(backbone.norm_stats). Not stored in the weights: num_heads (--num-heads, default 12 = ViT-B),
the sample rate (default 32000: n_fft = win = 800, hop 320, 80 mel, 50–16000 Hz; 16000: 400/400/160,
80 mel, 50–8000 Hz — the baseline's get_to_melspec table), the unit length in frames (input_size[1]:
1001 when the position table's time patches equal (1001 − 16)/16 + 1 = 62, else patches·patch width).
For an M2D weights file whose folder is named like the M2D releases (`…-80x1001p16x16p32k-…`), the
unit length and the sample rate are read from that name; the flags override. Classes: --classes as a
comma-separated list or a file (a JSON list, an AudioSet class_labels_indices.csv — its display_name
column —, or one name per line); default the 18 DCASE 2025 task 4 classes when the head has 18 outputs.

Dependencies: torch, safetensors (numpy).
"""
import argparse
import csv
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt_tools import ConvertError, load_state, need, write_checkpoint  # noqa: E402

CLASSES = ["AlarmClock", "BicycleBell", "Blender", "Buzzer", "Clapping", "Cough", "CupboardOpenClose",
           "Dishes", "Doorbell", "FootSteps", "HairDryer", "MechanicalFans", "MusicalKeyboard", "Percussion",
           "Pour", "Speech", "Typing", "VacuumCleaner"]
FRONT_ENDS = {
    32000: {"n_fft": 800, "win_length": 800, "hop_length": 320, "n_mels": 80, "f_min": 50.0, "f_max": 16000.0},
    16000: {"n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": 80, "f_min": 50.0, "f_max": 8000.0},
}
DEFAULT_NORM_STATS = (-7.1, 4.2)
M2D_PREFIX = "module.ar.runtime.backbone."
EVAR_HEAD = {"module.head.norm.running_mean": "head_norm.running_mean",
             "module.head.norm.running_var": "head_norm.running_var",
             "module.head.mlp.mlp.0.weight": "head.weight",
             "module.head.mlp.mlp.0.bias": "head.bias"}
BACKBONE_ROOTS = ("cls_token", "pos_embed", "norm_stats", "patch_embed.", "blocks.", "norm.")
BLOCK_PARTS = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")


def f32_json(v):
    """The shortest decimal that reads back as the same float32 (so -7.1, not -7.099999904632568)."""
    v32 = np.float32(v)
    out = float(str(v32))
    assert np.float32(out) == v32
    return out




def _dropped(name):
    return name.endswith("num_batches_tracked") or name.startswith("to_spec.")


def normalise_names(raw):
    """(kind, {M2dAt name: tensor}, [unknown original keys])."""
    if any(k.startswith("model.backbone.") for k in raw):
        kind, prefix = "lightning", "model."
    elif any(k.startswith("backbone.") for k in raw):
        kind, prefix = "m2dat", ""
    elif any(k.startswith(M2D_PREFIX) or k.startswith(("blocks.0.attn.qkv.", "pos_embed")) for k in raw):
        kind, prefix = "m2d", None
    else:
        raise ConvertError("no M2D tagger found (looked for model.backbone.*, backbone.*, "
                           f"{M2D_PREFIX}* and a bare ViT with blocks.0.attn.qkv.*)")
    sd, unknown = {}, []
    for k, v in raw.items():
        if prefix is not None:
            if not k.startswith(prefix):
                unknown.append(k)
                continue
            name = k[len(prefix):]
        elif k in EVAR_HEAD:
            name = EVAR_HEAD[k]
        elif k == "module.head.norm.num_batches_tracked":
            continue
        else:
            rest = k[len(M2D_PREFIX):] if k.startswith(M2D_PREFIX) else k
            if not rest.startswith(BACKBONE_ROOTS):
                unknown.append(k)
                continue
            name = "backbone." + rest
        if _dropped(name):
            continue
        sd[name] = v
    return kind, sd, unknown




def parse_release_name(path):
    """(input frames, sample rate) from an M2D release folder name like m2d_vit_base-80x1001p16x16p32k-…"""
    m = re.search(r"-(\d+)x(\d+)p(\d+)x(\d+)(?:p(\d+)k)?(?:-|$)", os.path.basename(os.path.dirname(os.path.abspath(path))))
    if not m:
        return None, None
    sr = int(m.group(5)) * 1000 if m.group(5) else 16000
    return int(m.group(2)), sr


def read_classes(arg):
    if arg is None:
        return None
    if os.path.isfile(arg):
        with open(arg, newline="") as f:
            text = f.read()
        if arg.endswith(".json"):
            names = json.loads(text)
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise ConvertError(f"{arg}: expected a JSON list of class names")
            return names
        rows = list(csv.reader(text.splitlines()))
        if rows and [c.strip() for c in rows[0][:3]] == ["index", "mid", "display_name"]:
            return [r[2] for r in rows[1:] if len(r) >= 3]
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [c.strip() for c in arg.split(",") if c.strip()]


def infer_config(sd, num_heads=12, sample_rate=32000, input_frames=None, classes=None):
    pos = need(sd, "backbone.pos_embed", 3)
    d = pos.shape[2]
    proj = need(sd, "backbone.patch_embed.proj.weight", 4)
    if proj.shape[0] != d or proj.shape[1] != 1:
        raise ConvertError(f"backbone.patch_embed.proj.weight has shape {tuple(proj.shape)}, expected ({d}, 1, ph, pw)")
    ph, pw = proj.shape[2], proj.shape[3]
    depth = 0
    while f"backbone.blocks.{depth}.attn.qkv.weight" in sd:
        depth += 1
    if depth == 0:
        raise ConvertError("missing tensor backbone.blocks.0.attn.qkv.weight")
    hidden = need(sd, "backbone.blocks.0.mlp.fc1.weight", 2).shape[0]
    if num_heads <= 0 or d % num_heads:
        raise ConvertError(f"embed_dim {d} is not a multiple of --num-heads {num_heads}")
    if sample_rate not in FRONT_ENDS:
        raise ConvertError(f"sample rate {sample_rate} has no M2D front end (16000 or 32000)")
    fe = FRONT_ENDS[sample_rate]
    fbins = fe["n_mels"] // ph
    if fe["n_mels"] % ph:
        raise ConvertError(f"patch height {ph} does not divide {fe['n_mels']} mel bins")
    n_patch = pos.shape[1] - 1
    if n_patch <= 0 or n_patch % fbins:
        raise ConvertError(f"backbone.pos_embed has {n_patch} patch positions, not a multiple of {fbins} frequency patches")
    tpatch = n_patch // fbins
    if input_frames is None:
        input_frames = 1001 if (1001 - pw) // pw + 1 == tpatch else tpatch * pw
    elif (input_frames - pw) // pw + 1 != tpatch:
        raise ConvertError(f"input frames {input_frames} give {(input_frames - pw) // pw + 1} time patches, "
                           f"but backbone.pos_embed holds {tpatch}")
    head = need(sd, "head.weight", 2)
    n_cls, width = head.shape
    if width not in (d, fbins * d):
        raise ConvertError(f"head.weight has shape {tuple(head.shape)}: its input must be embed_dim {d} "
                           f"or {fbins}·embed_dim = {fbins * d}")
    if classes is None:
        if n_cls != len(CLASSES):
            raise ConvertError(f"the head has {n_cls} outputs, not the 18 DCASE 2025 task 4 classes: pass --classes")
        classes = CLASSES
    elif len(classes) != n_cls:
        raise ConvertError(f"--classes lists {len(classes)} names, the head has {n_cls} outputs")
    stats = need(sd, "backbone.norm_stats", 1)
    if stats.shape != (2,):
        raise ConvertError(f"backbone.norm_stats has shape {tuple(stats.shape)}, expected (2,)")
    mean, std = (float(x) for x in stats.to(torch.float32))
    if not (np.isfinite(mean) and np.isfinite(std) and std != 0):
        raise ConvertError(f"backbone.norm_stats ({mean}, {std}) is not usable")
    cfg = {"architecture": "m2d_at", "classes": list(classes), "sample_rate": sample_rate, **fe,
           "norm_mean": f32_json(mean), "norm_std": f32_json(std), "input_size": [fe["n_mels"], input_frames],
           "patch_size": [ph, pw], "embed_dim": d, "depth": depth, "num_heads": num_heads,
           "mlp_ratio": hidden / d, "layer_norm_eps": 1e-6, "threshold": 0.5, "nevent_range": [1, 3],
           "ref_channel": 0}
    return cfg, width


def expected_shapes(cfg, head_width):
    d, (ph, pw) = cfg["embed_dim"], cfg["patch_size"]
    hidden = round(cfg["mlp_ratio"] * d)
    fbins = cfg["input_size"][0] // ph
    tpatch = (cfg["input_size"][1] - pw) // pw + 1
    out = {"backbone.cls_token": (1, 1, d), "backbone.pos_embed": (1, 1 + fbins * tpatch, d),
           "backbone.norm_stats": (2,), "backbone.patch_embed.proj.weight": (d, 1, ph, pw),
           "backbone.patch_embed.proj.bias": (d,), "backbone.norm.weight": (d,), "backbone.norm.bias": (d,),
           "head_norm.running_mean": (head_width,), "head_norm.running_var": (head_width,),
           "head.weight": (len(cfg["classes"]), head_width), "head.bias": (len(cfg["classes"]),)}
    shapes = {"norm1": ((d,), (d,)), "attn.qkv": ((3 * d, d), (3 * d,)), "attn.proj": ((d, d), (d,)),
              "norm2": ((d,), (d,)), "mlp.fc1": ((hidden, d), (hidden,)), "mlp.fc2": ((d, hidden), (d,))}
    for i in range(cfg["depth"]):
        for part in BLOCK_PARTS:
            w, b = shapes[part]
            out[f"backbone.blocks.{i}.{part}.weight"] = w
            out[f"backbone.blocks.{i}.{part}.bias"] = b
    return out




def convert(ckpt, out_dir, num_heads=12, classes=None, sample_rate=None, input_frames=None,
            ignore_unknown=False, log=print):
    raw = load_state(ckpt, ("state_dict", "model"))
    kind, sd, unknown = normalise_names(raw)
    if kind == "m2d":
        name_frames, name_sr = parse_release_name(ckpt)
        if name_frames is not None:
            log(f"{os.path.basename(os.path.dirname(os.path.abspath(ckpt)))}: {name_frames} frames, {name_sr} Hz")
            input_frames = name_frames if input_frames is None else input_frames
            sample_rate = name_sr if sample_rate is None else sample_rate
        if "backbone.norm_stats" not in sd:
            log(f"no norm_stats in {ckpt}: using the default {DEFAULT_NORM_STATS}")
            sd["backbone.norm_stats"] = torch.tensor(DEFAULT_NORM_STATS, dtype=torch.float32)
    if isinstance(classes, str):
        classes = read_classes(classes)
    cfg, head_width = infer_config(sd, num_heads, 32000 if sample_rate is None else sample_rate, input_frames, classes)
    want = expected_shapes(cfg, head_width)
    unknown += [k for k in sd if k not in want]
    n_out = write_checkpoint(sd, want, unknown, cfg, out_dir, ignore_unknown, log)
    log(f"{ckpt}: {kind}, {n_out} tensors, embed_dim {cfg['embed_dim']}, depth {cfg['depth']}, "
        f"heads {cfg['num_heads']}, head {head_width} → {len(cfg['classes'])} classes, norm_stats "
        f"({cfg['norm_mean']}, {cfg['norm_std']}), {cfg['sample_rate']} Hz, unit {cfg['input_size']} → {out_dir}")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out_dir")
    ap.add_argument("--num-heads", type=int, default=12, help="attention heads (not stored in the weights; ViT-B: 12)")
    ap.add_argument("--classes", help="class names: comma-separated, or a file (JSON list, AudioSet CSV, one per line)")
    ap.add_argument("--sample-rate", type=int, choices=sorted(FRONT_ENDS), help="front end (default 32000)")
    ap.add_argument("--input-frames", type=int, help="frames of one encoder unit (default: 1001 when it fits)")
    ap.add_argument("--ignore-unknown", action="store_true", help="drop unrecognised tensors instead of refusing")
    a = ap.parse_args(argv)
    try:
        convert(a.ckpt, a.out_dir, num_heads=a.num_heads, classes=a.classes, sample_rate=a.sample_rate,
                input_frames=a.input_frames, ignore_unknown=a.ignore_unknown)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
