"""Golden fixtures of the separator's backward rules (issue #18): writes
tests/golden/fixtures/separator_grads.safetensors, read by autograd/tests/golden.rs. Deterministic (fixed
seed); CPU; torch (the .venv's). Every loss is L = sum(out * R) with a fixed random R (so dL/dout = R).

- pool_k2x2.*, pool_k1x2.*: F.avg_pool2d(x, (kh, kw)) on x (2, 3, 7, 5) (odd: the floor drops a row /
  column); grad of x.
- ct_plain.*: F.conv_transpose2d(x, W, stride=(2, 2)), x (2, 3, 5, 6), W (3, 4, 2, 2); grads of x, W.
- ct_add.*: a = F.leaky_relu(x * scale[:, None, None] + shift[:, :, None, None] + t[..., None], 0.01),
  shift (B, C), stride (1, 2); grads of x, W, scale, shift, t.
- ct_gate.*: a = F.leaky_relu(x * scale[:, None, None] + shift[:, None, None], 0.01) * t[..., None],
  shift (C), t = sigmoid(randn), stride (2, 2); grads of x, W, scale, shift, t.
  y = F.conv_transpose2d(a, W, stride=(sh, sw)) (kernel = stride, no bias).

Run: /work/main/.venv/bin/python tests/golden/separator_grads.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
t = {}


def pool_case(name, shape, k):
    x = torch.randn(*shape, requires_grad=True)
    y = F.avg_pool2d(x, k)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.x"], t[f"{name}.y"], t[f"{name}.dy"], t[f"{name}.grad.x"] = x.detach(), y.detach(), r, x.grad


def ct_case(name, B, C, O, H, W, stride, pre):
    x = torch.randn(B, C, H, W, requires_grad=True)
    w = (0.5 * torch.randn(C, O, *stride)).requires_grad_(True)
    params = {"x": x, "weight": w}
    a = x
    if pre is not None:
        shift_bc, mode = pre
        scale = (1.0 + 0.3 * torch.randn(C)).requires_grad_(True)
        shift = (0.5 * torch.randn(B, C) if shift_bc else 0.5 * torch.randn(C)).requires_grad_(True)
        tv = (torch.randn(B, C, H) if mode == "add" else torch.sigmoid(torch.randn(B, C, H))).requires_grad_(True)
        sh = shift[:, :, None, None] if shift_bc else shift[None, :, None, None]
        z = x * scale[None, :, None, None] + sh
        if mode == "add":
            a = F.leaky_relu(z + tv[..., None], 0.01)
        else:
            a = F.leaky_relu(z, 0.01) * tv[..., None]
        params.update(scale=scale, shift=shift, time=tv)
    y = F.conv_transpose2d(a, w, stride=stride)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.y"], t[f"{name}.dy"] = y.detach(), r
    for n, p in params.items():
        t[f"{name}.{n}"] = p.detach().clone()
        t[f"{name}.grad.{n}"] = p.grad.clone()


pool_case("pool_k2x2", (2, 3, 7, 5), (2, 2))
pool_case("pool_k1x2", (2, 3, 7, 5), (1, 2))
ct_case("ct_plain", 2, 3, 4, 5, 6, (2, 2), None)
ct_case("ct_add", 2, 3, 4, 5, 6, (1, 2), (True, "add"))
ct_case("ct_gate", 2, 3, 4, 5, 6, (2, 2), (False, "gate"))

t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "separator_grads.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors, {out.stat().st_size} bytes)")
