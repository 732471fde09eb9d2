"""Convert a PyTorch ResUNet30 separator checkpoint into aural's checkpoint directory.

Usage:
  python scripts/convert_separator_ckpt.py CKPT OUT_DIR [--hop N] [--prefix P] [--sample-rate 32000]
                                           [--ignore-unknown]

CKPT is a (Lightning) `.ckpt` or a plain state-dict `.pth`, loaded with torch.load(map_location='cpu',
weights_only=False) — so a Lightning checkpoint whose hyper-parameters pickle custom classes needs
those importable; its `state_dict` entry is used when present. OUT_DIR receives config.json and
model.safetensors (f32, contiguous; each written to a temporary file in OUT_DIR, then os.replace'd).
The tensor names and config keys are those of tests/golden/separator.py (DESIGN.md §6.5).

Prefix (auto-detected, `--prefix` overrides; '' for a bare model): `model.` (the DCASE 2025 task 4
baseline's Lightning module, keys model.base.…), `ss_model.` (AudioSep; its `query_encoder.*` is dropped).
Always dropped: BatchNorm `num_batches_tracked`, torchlibrosa's fixed STFT/ISTFT tensors (base.stft.*,
base.istft.*). Any other key left over is listed and refused unless --ignore-unknown; a missing tensor
or a shape that contradicts the inferred geometry is an error naming the tensor.

Inferred: input_channels (base.pre_conv.weight), channels c0..c6 (pre_conv and the encoder blocks'
conv1 widths), window_size = 2·(bn0 features − 1), out_conv (present or not; output_channels from it,
else = input_channels), target_sources_num = after_conv outputs / (3·input_channels), conditioning
"label" (label_embedding.* present; label_len from label_embedding.0.weight) or "query" (label_len
0), condition_size (the FiLM layers' input width). The hop is not stored in the weights: window 1024
means the baseline (hop 160); for any other window pass --hop (AudioSep 2048/320, CP-JKU 2048/160).
sample_rate defaults to 32000; classes are the 18 DCASE 2025 task 4 classes.

Dependencies: torch, safetensors.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt_tools import ConvertError, load_state, need, write_checkpoint  # noqa: E402

CLASSES = ["AlarmClock", "BicycleBell", "Blender", "Buzzer", "Clapping", "Cough", "CupboardOpenClose",
           "Dishes", "Doorbell", "FootSteps", "HairDryer", "MechanicalFans", "MusicalKeyboard", "Percussion",
           "Pour", "Speech", "Typing", "VacuumCleaner"]
BN = ("weight", "bias", "running_mean", "running_var")




def _detect_prefix(keys):
    for p in ("model.", "ss_model.", ""):
        if any(k.startswith(p + "base.pre_conv.") for k in keys):
            return p
    raise ConvertError("no separator found (looked for model.base.*, ss_model.base.*, base.*); pass --prefix")


def _expected_shapes(cfg, bn0_features):
    """{name: shape} of every tensor the model needs, given the inferred geometry."""
    ch, cin, cs = cfg["channels"], cfg["input_channels"], cfg["condition_size"]
    out = {}

    def bn(name, c):
        for s in BN:
            out[f"{name}.{s}"] = (c,)

    def block(path, a, b):
        bn(path + ".bn1", a)
        bn(path + ".bn2", b)
        out[path + ".conv1.weight"] = (b, a, 3, 3)
        out[path + ".conv2.weight"] = (b, b, 3, 3)
        if a != b:
            out[path + ".shortcut.weight"] = (b, a, 1, 1)
            out[path + ".shortcut.bias"] = (b,)

    def film(path, c):
        out[f"film.{path}.weight"] = (c, cs)
        out[f"film.{path}.bias"] = (c,)

    bn("base.bn0", bn0_features)
    out["base.pre_conv.weight"] = (ch[0], cin, 1, 1)
    out["base.pre_conv.bias"] = (ch[0],)
    for k in range(1, 7):
        block(f"base.encoder_block{k}.conv_block1", ch[k - 1], ch[k])
        film(f"encoder_block{k}->conv_block1->beta1", ch[k - 1])
        film(f"encoder_block{k}->conv_block1->beta2", ch[k])
    block("base.conv_block7a.conv_block1", ch[6], ch[6])
    film("conv_block7a->conv_block1->beta1", ch[6])
    film("conv_block7a->conv_block1->beta2", ch[6])
    prev = ch[6]
    for k in range(1, 7):
        c = ch[7 - k]
        up = (1, 2) if k == 1 else (2, 2)
        out[f"base.decoder_block{k}.conv1.weight"] = (prev, c) + up
        bn(f"base.decoder_block{k}.bn1", prev)
        bn(f"base.decoder_block{k}.bn2", prev)
        block(f"base.decoder_block{k}.conv_block2", 2 * c, c)
        for name, width in (("beta1", prev), ("beta2", prev)):
            film(f"decoder_block{k}->{name}", width)
        film(f"decoder_block{k}->conv_block2->beta1", 2 * c)
        film(f"decoder_block{k}->conv_block2->beta2", c)
        prev = c
    out["base.after_conv.weight"] = (cin * 3 * cfg["target_sources_num"], ch[1], 1, 1)
    out["base.after_conv.bias"] = (cin * 3 * cfg["target_sources_num"],)
    if cfg["out_conv"]:
        out["base.out_conv.weight"] = (cfg["output_channels"], cin, 1, 1)
        out["base.out_conv.bias"] = (cfg["output_channels"],)
    if cfg["conditioning"] == "label":
        out["label_embedding.0.weight"] = (cs, cfg["label_len"])
        out["label_embedding.0.bias"] = (cs,)
        for i in (1, 4):
            out[f"label_embedding.{i}.weight"] = (cs,)
            out[f"label_embedding.{i}.bias"] = (cs,)
        out["label_embedding.3.weight"] = (cs, cs)
        out["label_embedding.3.bias"] = (cs,)
    return out




def infer_config(sd, hop=None, sample_rate=32000):
    pre = need(sd, "base.pre_conv.weight")
    cin = pre.shape[1]
    channels = [pre.shape[0]] + [need(sd, f"base.encoder_block{k}.conv_block1.conv1.weight").shape[0]
                                 for k in range(1, 7)]
    bn0 = need(sd, "base.bn0.weight").shape[0]
    window = 2 * (bn0 - 1)
    out_conv = "base.out_conv.weight" in sd
    cout = sd["base.out_conv.weight"].shape[0] if out_conv else cin
    n_after = need(sd, "base.after_conv.weight").shape[0]
    if n_after % (3 * cin):
        raise ConvertError(f"base.after_conv has {n_after} outputs, not a multiple of 3·input_channels = {3 * cin}")
    sources = n_after // (3 * cin)
    cs = need(sd, "film.encoder_block1->conv_block1->beta1.weight").shape[1]
    if "label_embedding.0.weight" in sd:
        conditioning, label_len = "label", sd["label_embedding.0.weight"].shape[1]
        if label_len % sources:
            raise ConvertError(f"label_len {label_len} is not a multiple of target_sources_num {sources}")
    else:
        conditioning, label_len = "query", 0
    if hop is None:
        if window != 1024:
            raise ConvertError(f"the hop size cannot be inferred for window_size {window} (AudioSep uses 320, "
                               "CP-JKU 160): pass --hop")
        hop = 160
    return {"architecture": "resunet30", "input_channels": cin, "output_channels": cout,
            "target_sources_num": sources, "label_len": label_len, "condition_size": cs, "window_size": window,
            "hop_size": hop, "sample_rate": sample_rate, "classes": CLASSES, "out_conv": out_conv,
            "channels": channels, "conditioning": conditioning}




def convert(ckpt, out_dir, prefix=None, hop=None, sample_rate=32000, ignore_unknown=False, log=print):
    raw = load_state(ckpt, ("state_dict",))
    if prefix is None:
        prefix = _detect_prefix(raw)
    sd, unknown = {}, []
    for k, v in raw.items():
        if not k.startswith(prefix):
            if prefix == "ss_model." and k.startswith("query_encoder."):
                continue
            unknown.append(k)
            continue
        name = k[len(prefix):]
        if name.endswith("num_batches_tracked") or name.startswith(("base.stft.", "base.istft.")):
            continue
        sd[name] = v
    cfg = infer_config(sd, hop, sample_rate)
    want = _expected_shapes(cfg, sd["base.bn0.weight"].shape[0])
    unknown += [prefix + k for k in sd if k not in want]
    n_out = write_checkpoint(sd, want, unknown, cfg, out_dir, ignore_unknown, log)
    log(f"{ckpt}: prefix '{prefix}', {n_out} tensors, input_channels {cfg['input_channels']}, "
        f"output_channels {cfg['output_channels']}, target_sources_num {cfg['target_sources_num']}, "
        f"window {cfg['window_size']}/hop {cfg['hop_size']}, conditioning {cfg['conditioning']}, "
        f"channels {cfg['channels']} → {out_dir}")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out_dir")
    ap.add_argument("--hop", type=int, help="STFT hop (required unless window_size is 1024 → 160)")
    ap.add_argument("--prefix", help="key prefix of the separator (default: auto-detect)")
    ap.add_argument("--sample-rate", type=int, default=32000)
    ap.add_argument("--ignore-unknown", action="store_true", help="drop unrecognised tensors instead of refusing")
    a = ap.parse_args(argv)
    try:
        convert(a.ckpt, a.out_dir, prefix=a.prefix, hop=a.hop, sample_rate=a.sample_rate,
                ignore_unknown=a.ignore_unknown)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
