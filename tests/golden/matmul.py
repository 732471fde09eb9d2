"""Golden fixture of the matmul family: tests/golden/fixtures/matmul.safetensors.

Run: /work/main/.venv/bin/python tests/golden/matmul.py   (torch 2.9.1, CPU, deterministic seed)

Cases (all f32, small on purpose):
  plain   — torch.matmul(a, b), a (5, 7), b (7, 3)
  batched — torch.matmul(a, b), a (2, 4, 6), b (2, 6, 5)
  linear  — F.linear(x, w, bias), x (2, 3, 9), w (11, 9), bias (11)
  gelu    — F.gelu(F.linear(x, w, bias)) (exact erf GELU), x (17, 16), w (20, 16), bias (20)
  ta      — a.transpose(-1, -2) @ b, a stored (6, 4), b (6, 3)
Keys: <case>.a, <case>.b, [<case>.bias], <case>.out.
"""
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
t = {}


def r(*shape):
    return torch.randn(*shape, dtype=torch.float32)


a, b = r(5, 7), r(7, 3)
t.update({"plain.a": a, "plain.b": b, "plain.out": torch.matmul(a, b)})

a, b = r(2, 4, 6), r(2, 6, 5)
t.update({"batched.a": a, "batched.b": b, "batched.out": torch.matmul(a, b)})

x, w, bias = r(2, 3, 9), r(11, 9), r(11)
t.update({"linear.a": x, "linear.b": w, "linear.bias": bias, "linear.out": F.linear(x, w, bias)})

x, w, bias = r(17, 16), r(20, 16), r(20)
t.update({"gelu.a": x, "gelu.b": w, "gelu.bias": bias, "gelu.out": F.gelu(F.linear(x, w, bias))})

a, b = r(6, 4), r(6, 3)
t.update({"ta.a": a, "ta.b": b, "ta.out": a.transpose(-1, -2) @ b})

out = pathlib.Path(__file__).parent / "fixtures" / "matmul.safetensors"
save_file({k: v.contiguous() for k, v in t.items()}, str(out))
print(f"wrote {out} ({out.stat().st_size} bytes, {len(t)} tensors)")
