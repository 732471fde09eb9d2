"""Golden fixtures of the elementwise/normalisation/reduction op families (unary, softmax, layernorm,
reduce): writes tests/golden/fixtures/ops.safetensors, read by runtime/tests/{unary,softmax,layernorm,
reduce}.rs. Deterministic (fixed seed); CPU; torch 2.9.1.

Run: /work/main/.venv/bin/python tests/golden/ops.py
"""
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
t = {}

# ---- unary: x spans the negative tail (GELU's erfc region) to the positive; xpos for log/sqrt.
x = torch.linspace(-8.0, 8.0, 3 * 129, dtype=torch.float32).reshape(3, 129)
x = x + 0.01 * torch.randn(3, 129)
t["unary.x"] = x
t["unary.gelu"] = F.gelu(x)
t["unary.gelu_tanh"] = F.gelu(x, approximate="tanh")
t["unary.relu"] = F.relu(x)
t["unary.leaky_relu_0.01"] = F.leaky_relu(x, 0.01)
t["unary.sigmoid"] = torch.sigmoid(x)
t["unary.tanh"] = torch.tanh(x)
t["unary.exp"] = torch.exp(x)
t["unary.neg"] = -x
t["unary.abs"] = x.abs()
t["unary.affine_1.5_-0.25"] = x * 1.5 + (-0.25)
xpos = x.abs() + 1e-3
t["unary.xpos"] = xpos
t["unary.log"] = torch.log(xpos)
t["unary.sqrt"] = torch.sqrt(xpos)
# casts: ordinary values, ties, overflow, subnormals, specials.
special = torch.tensor([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 6.1e-5, 6.0e-8, 2.98e-8,
                        2.9802322e-08, 1e-9, 1.0009765625, 1.00048828125, 1.00146484375, 2049.0, 2051.0,
                        float("inf"), float("-inf"), float("nan"), math.pi, -math.e], dtype=torch.float32)
cast_x = torch.cat([special, torch.randn(200) * 1000.0, torch.randn(100) * 1e-5])
t["unary.cast_x"] = cast_x
t["unary.cast_f16"] = cast_x.half()

# ---- softmax over the last dim; row 2 all -inf (torch: NaN), row 3 partly masked.
sx = torch.randn(5, 17) * 3.0
sx[2, :] = float("-inf")
sx[3, ::3] = float("-inf")
t["softmax.x"] = sx
t["softmax.y"] = torch.softmax(sx, dim=-1)
sl = torch.randn(2, 1214) * 4.0
t["softmax.long_x"] = sl
t["softmax.long_y"] = torch.softmax(sl, dim=-1)

# ---- layernorm over the last dim (biased variance).
lx = torch.randn(4, 129) * 2.0 + 0.5
lw = torch.randn(129)
lb = torch.randn(129)
t["layernorm.x"] = lx
t["layernorm.weight"] = lw
t["layernorm.bias"] = lb
t["layernorm.y_affine_eps1e-5"] = F.layer_norm(lx, (129,), lw, lb, 1e-5)
t["layernorm.y_plain_eps1e-5"] = F.layer_norm(lx, (129,), None, None, 1e-5)
t["layernorm.y_weight_only_eps1e-5"] = F.layer_norm(lx, (129,), lw, None, 1e-5)
ax = torch.randn(3, 768) * 0.7 - 0.2
t["layernorm.ast_x"] = ax
t["layernorm.ast_y_plain_eps1e-12"] = F.layer_norm(ax, (768,), None, None, 1e-12)

# ---- reduce: sum / mean / amax over each axis of a (3, 17, 5) tensor; a long row.
rx = torch.randn(3, 17, 5)
t["reduce.x"] = rx
for ax_ in (0, 1, 2):
    t[f"reduce.sum_axis{ax_}"] = rx.sum(dim=ax_)
    t[f"reduce.mean_axis{ax_}"] = rx.mean(dim=ax_)
    t[f"reduce.max_axis{ax_}"] = rx.amax(dim=ax_)
rl = torch.randn(2, 1214) + 0.5
t["reduce.long_x"] = rl
t["reduce.long_sum"] = rl.sum(dim=-1, keepdim=True)
t["reduce.long_mean"] = rl.mean(dim=-1, keepdim=True)

out = Path(__file__).resolve().parent / "fixtures" / "ops.safetensors"
out.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in t.items()}, str(out))
print(f"wrote {out} ({len(t)} tensors)")
