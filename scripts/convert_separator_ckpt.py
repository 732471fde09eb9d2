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

CP-JKU's separator (theMoro/dcase25task4; tests/golden/cpjku.py): the network under base.ss_model.
(the iterative model; "iterations" = --iterations, default 2 — the pass count is not in the weights;
input_channels = pre_conv inputs − 1), time_embedding.* → "time_film" ("additive", or
--time-film multiplicative: the mode is not in the weights; the dead time_film.* layers are dropped),
soundbeam_weights → "inject" (layers from its length; "add" with weight_x_center, "concat" with
merge_conv; dim from downsample_conv; tokens/grid = --inject-grid F T, default 5 62), DPRNN.0.* →
"dprnn" (blocks and GRU layers counted, hidden from weight_hh; --dprnn-before-inject for the "pre_sb"
placement). scripts/convert_cpjku_ckpt.py also exports the Lightning checkpoint's stage-2 SED model.

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
        if any(k.startswith(p + "base.pre_conv.") or k.startswith(p + "base.ss_model.pre_conv.") for k in keys):
            return p
    raise ConvertError("no separator found (looked for model.base.*, ss_model.base.*, base.*); pass --prefix")


def _base(sd):
    """The network's prefix: base.ss_model. in CP-JKU's iterative model, else base."""
    return "base.ss_model." if "base.ss_model.pre_conv.weight" in sd else "base."


def _expected_shapes(cfg, bn0_features):
    """{name: shape} of every tensor the model needs, given the inferred geometry."""
    ch, cin, cs = cfg["channels"], cfg["input_channels"], cfg["condition_size"]
    out = {}
    bp = "base.ss_model." if cfg.get("iterations", 0) > 0 else "base."

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

    bn(bp + "bn0", bn0_features)
    out[bp + "pre_conv.weight"] = (ch[0], cin + int(cfg.get("iterations", 0) > 0), 1, 1)
    out[bp + "pre_conv.bias"] = (ch[0],)
    for k in range(1, 7):
        block(f"{bp}encoder_block{k}.conv_block1", ch[k - 1], ch[k])
        film(f"encoder_block{k}->conv_block1->beta1", ch[k - 1])
        film(f"encoder_block{k}->conv_block1->beta2", ch[k])
    block(bp + "conv_block7a.conv_block1", ch[6], ch[6])
    film("conv_block7a->conv_block1->beta1", ch[6])
    film("conv_block7a->conv_block1->beta2", ch[6])
    prev = ch[6]
    for k in range(1, 7):
        c = ch[7 - k]
        up = (1, 2) if k == 1 else (2, 2)
        out[f"{bp}decoder_block{k}.conv1.weight"] = (prev, c) + up
        bn(f"{bp}decoder_block{k}.bn1", prev)
        bn(f"{bp}decoder_block{k}.bn2", prev)
        block(f"{bp}decoder_block{k}.conv_block2", 2 * c, c)
        for name, width in (("beta1", prev), ("beta2", prev)):
            film(f"decoder_block{k}->{name}", width)
        film(f"decoder_block{k}->conv_block2->beta1", 2 * c)
        film(f"decoder_block{k}->conv_block2->beta2", c)
        prev = c
    out[bp + "after_conv.weight"] = (cin * 3 * cfg["target_sources_num"], ch[1], 1, 1)
    out[bp + "after_conv.bias"] = (cin * 3 * cfg["target_sources_num"],)
    if cfg["out_conv"]:
        out[bp + "out_conv.weight"] = (cfg["output_channels"], cin, 1, 1)
        out[bp + "out_conv.bias"] = (cfg["output_channels"],)
    if cfg["conditioning"] == "label":
        out["label_embedding.0.weight"] = (cs, cfg["label_len"])
        out["label_embedding.0.bias"] = (cs,)
        for i in (1, 4):
            out[f"label_embedding.{i}.weight"] = (cs,)
            out[f"label_embedding.{i}.bias"] = (cs,)
        out["label_embedding.3.weight"] = (cs, cs)
        out["label_embedding.3.bias"] = (cs,)
    if cfg.get("iterations", 0) > 0:
        bn(bp + "bn0_fb", bn0_features)
    if cfg.get("time_film"):
        out["time_embedding.0.weight"] = (512, cfg["target_sources_num"])
        out["time_embedding.0.bias"] = (512,)
        out["time_embedding.1.weight"] = out["time_embedding.1.bias"] = (512,)
        out["time_embedding.3.weight"] = (cs, 512)
        out["time_embedding.3.bias"] = out["time_embedding.4.weight"] = out["time_embedding.4.bias"] = (cs,)
    inj = cfg.get("inject")
    if inj:
        out["soundbeam_weights"] = (inj["layers"],)
        bn(bp + "downsample_bn", inj["dim"])
        out[bp + "downsample_conv.weight"] = (ch[6], inj["dim"], 1, 1)
        out[bp + "downsample_conv.bias"] = (ch[6],)
        if inj["method"] == "add":
            out[bp + "weight_x_center"] = out[bp + "weight_soundbeam_features"] = ()
        else:
            bn(bp + "merge_bn", 2 * ch[6])
            out[bp + "merge_conv.weight"] = (ch[6], 2 * ch[6], 1, 1)
            out[bp + "merge_conv.bias"] = (ch[6],)
    d = cfg.get("dprnn")
    if d:
        c, h = d["channels"], d["hidden"]
        for i in range(d["blocks"]):
            for path in ("row", "col"):
                r = f"{bp}DPRNN.0.{path}_rnn.{i}"
                for layer in range(d["rnn_layers"]):
                    for sfx in ("", "_reverse"):
                        out[f"{r}.rnn.weight_ih_l{layer}{sfx}"] = (3 * h, c if layer == 0 else 2 * h)
                        out[f"{r}.rnn.weight_hh_l{layer}{sfx}"] = (3 * h, h)
                        out[f"{r}.rnn.bias_ih_l{layer}{sfx}"] = out[f"{r}.rnn.bias_hh_l{layer}{sfx}"] = (3 * h,)
                out[f"{r}.proj.weight"] = (c, 2 * h)
                out[f"{r}.proj.bias"] = (c,)
                out[f"{bp}DPRNN.0.{path}_norm.{i}.weight"] = out[f"{bp}DPRNN.0.{path}_norm.{i}.bias"] = (c,)
        out[f"{bp}DPRNN.0.output.0.weight"] = (1,)
        out[f"{bp}DPRNN.0.output.1.weight"] = (c, c, 1, 1)
        out[f"{bp}DPRNN.0.output.1.bias"] = (c,)
    return out




def infer_config(sd, hop=None, sample_rate=32000, iterations=2, time_film="additive", grid=(5, 62),
                 dprnn_before_inject=False):
    bp = _base(sd)
    it = iterations if bp == "base.ss_model." else 0
    if bp == "base.ss_model." and it < 1:
        raise ConvertError("an iterative model needs --iterations ≥ 1")
    pre = need(sd, bp + "pre_conv.weight")
    cin = pre.shape[1] - int(it > 0)
    channels = [pre.shape[0]] + [need(sd, f"{bp}encoder_block{k}.conv_block1.conv1.weight").shape[0]
                                 for k in range(1, 7)]
    bn0 = need(sd, bp + "bn0.weight").shape[0]
    window = 2 * (bn0 - 1)
    out_conv = bp + "out_conv.weight" in sd
    cout = sd[bp + "out_conv.weight"].shape[0] if out_conv else cin
    n_after = need(sd, bp + "after_conv.weight").shape[0]
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
    cfg = {"architecture": "resunet30", "input_channels": cin, "output_channels": cout,
           "target_sources_num": sources, "label_len": label_len, "condition_size": cs, "window_size": window,
           "hop_size": hop, "sample_rate": sample_rate, "classes": CLASSES, "out_conv": out_conv,
           "channels": channels, "conditioning": conditioning}
    ext = {}
    if "time_embedding.0.weight" in sd:
        ext["time_film"] = time_film
        ext["binarize_sed_preds"] = False
    if "soundbeam_weights" in sd:
        method = "add" if bp + "weight_x_center" in sd else "concat"
        dim = need(sd, bp + "downsample_conv.weight").shape[1]
        ext["inject"] = {"method": method, "layers": sd["soundbeam_weights"].shape[0], "tokens": grid[0] * grid[1],
                         "dim": dim, "grid": list(grid)}
    if bp + "DPRNN.0.output.1.weight" in sd:
        rows = bp + "DPRNN.0.row_rnn."
        blocks = len({k[len(rows):].split(".")[0] for k in sd if k.startswith(rows)})
        r0 = bp + "DPRNN.0.row_rnn.0.rnn."
        layers = len([k for k in sd if k.startswith(r0 + "weight_ih_l") and not k.endswith("_reverse")])
        ext["dprnn"] = {"blocks": blocks, "rnn_layers": layers, "hidden": need(sd, r0 + "weight_hh_l0").shape[1],
                        "channels": channels[6], "position": "before_inject" if dprnn_before_inject else "after_inject"}
    if ext or it:
        cfg.update({"time_film": None, "binarize_sed_preds": False, "inject": None, "dprnn": None, "iterations": it})
        cfg.update(ext)
    return cfg




def convert(ckpt, out_dir, prefix=None, hop=None, sample_rate=32000, ignore_unknown=False, log=print,
            raw=None, **cpjku):
    raw = load_state(ckpt, ("state_dict",)) if raw is None else raw
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
        if name.endswith("num_batches_tracked") or name.startswith(
                ("base.stft.", "base.istft.", "base.ss_model.stft.", "base.ss_model.istft.", "time_film.")):
            continue
        sd[name] = v
    cfg = infer_config(sd, hop, sample_rate, **cpjku)
    want = _expected_shapes(cfg, sd[_base(sd) + "bn0.weight"].shape[0])
    unknown += [prefix + k for k in sd if k not in want]
    n_out = write_checkpoint(sd, want, unknown, cfg, out_dir, ignore_unknown, log)
    log(f"{ckpt}: prefix '{prefix}', {n_out} tensors, input_channels {cfg['input_channels']}, "
        f"output_channels {cfg['output_channels']}, target_sources_num {cfg['target_sources_num']}, "
        f"window {cfg['window_size']}/hop {cfg['hop_size']}, conditioning {cfg['conditioning']}, "
        f"channels {cfg['channels']} → {out_dir}")
    return cfg


def add_cpjku_args(ap):
    ap.add_argument("--iterations", type=int, default=2, help="passes of CP-JKU's iterative model (default 2)")
    ap.add_argument("--time-film", choices=["additive", "multiplicative"], default="additive",
                    help="CP-JKU time-FiLM mode (not stored in the weights)")
    ap.add_argument("--inject-grid", type=int, nargs=2, default=[5, 62], metavar=("F", "T"),
                    help="frequency × time patches of the injected hidden states (default 5 62)")
    ap.add_argument("--dprnn-before-inject", action="store_true", help="the DPRNN sits before the injection")


def cpjku_kwargs(a):
    return {"iterations": a.iterations, "time_film": a.time_film, "grid": tuple(a.inject_grid),
            "dprnn_before_inject": a.dprnn_before_inject}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out_dir")
    ap.add_argument("--hop", type=int, help="STFT hop (required unless window_size is 1024 → 160)")
    ap.add_argument("--prefix", help="key prefix of the separator (default: auto-detect)")
    ap.add_argument("--sample-rate", type=int, default=32000)
    ap.add_argument("--ignore-unknown", action="store_true", help="drop unrecognised tensors instead of refusing")
    add_cpjku_args(ap)
    a = ap.parse_args(argv)
    try:
        convert(a.ckpt, a.out_dir, prefix=a.prefix, hop=a.hop, sample_rate=a.sample_rate,
                ignore_unknown=a.ignore_unknown, **cpjku_kwargs(a))
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
