"""Shared machinery of the checkpoint converters (scripts/convert_*_ckpt.py): reading a PyTorch
(Lightning) checkpoint, checking the tensors against the shapes the inferred config implies, and
writing an aural checkpoint directory (config.json + model.safetensors) atomically.
"""
import json
import os
import tempfile

import torch
from safetensors.torch import load_file, save_file


class ConvertError(Exception):
    pass


def load_state(path, wrappers=("state_dict",)):
    """The tensors of a .ckpt/.pth (the first of `wrappers` that holds a dict) or a .safetensors file."""
    if path.endswith(".safetensors"):
        return load_file(path)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    for key in wrappers:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(torch.is_tensor(v) for v in obj.values()):
        entries = "/".join(f"'{w}'" for w in wrappers)
        raise ConvertError(f"{path} holds no state dict (expected a dict of tensors, or a {entries} entry)")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def need(sd, name, ndim=None):
    """sd[name], or a ConvertError naming it (and its shape when it has not `ndim` dimensions)."""
    if name not in sd:
        raise ConvertError(f"missing tensor {name}")
    t = sd[name]
    if ndim is not None and t.dim() != ndim:
        raise ConvertError(f"{name} has shape {tuple(t.shape)}, expected {ndim} dimensions")
    return t


def atomic(out_dir, name, write):
    """Calls write(tmp) on a temporary file in out_dir, then renames it to out_dir/name."""
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", dir=out_dir)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, os.path.join(out_dir, name))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_checkpoint(sd, want, unknown, cfg, out_dir, ignore_unknown, log):
    """Checks every tensor of `want` ({name: shape}) in `sd`, refuses `unknown` names (or drops them
    with `ignore_unknown`), and writes the wanted tensors (f32) and `cfg` to out_dir. Returns the
    number of tensors written."""
    for name, shape in want.items():
        t = need(sd, name)
        if tuple(t.shape) != shape:
            raise ConvertError(f"{name} has shape {tuple(t.shape)}, expected {shape} for the inferred geometry")
    if unknown:
        msg = f"{len(unknown)} unknown tensor(s): " + ", ".join(sorted(unknown)[:20]) + (" …" if len(unknown) > 20 else "")
        if not ignore_unknown:
            raise ConvertError(msg + " (pass --ignore-unknown to drop them)")
        log("dropping " + msg)
    out = {k: sd[k].detach().to(torch.float32).contiguous() for k in sorted(want)}
    os.makedirs(out_dir, exist_ok=True)
    atomic(out_dir, "model.safetensors", lambda p: save_file(out, p))

    def write_cfg(p):
        with open(p, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")

    atomic(out_dir, "config.json", write_cfg)
    return len(out)
