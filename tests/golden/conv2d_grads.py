"""Golden gradients of the separator's fused conv2d (issue #18): writes
tests/golden/fixtures/conv2d_grads.safetensors, read by autograd/tests/golden.rs. Deterministic (fixed
seed); CPU; float32. Every loss is L = sum(y * R) with a fixed random R (so dL/dy = R), where

    z = x * scale[None, :, None, None] + shift[..., None, None]   # shift (C) or (B, C)
    a = F.leaky_relu(z + t[..., None], slope)        # time Add (t: (B, C, H))
    a = F.leaky_relu(z, slope) * t[..., None]        # time Gate
    a = F.leaky_relu(z, slope)                       # no time-FiLM;  a = x without pre-activation
    y = F.conv2d(a, W, b, padding=k // 2) + residual  # x = torch.cat([x0, x1], 1) for two sources

Keys per case <n>: <n>.meta = [k, slope, time mode (0 none, 1 Add, 2 Gate), has_pre], the inputs
<n>.x0, <n>.x1, <n>.w, <n>.b, <n>.scale, <n>.shift, <n>.time, <n>.res (those the case has), <n>.y,
<n>.R and the gradients <n>.grad.<input>.

Run: /work/main/.venv/bin/python tests/golden/conv2d_grads.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
t = {}


def case(n, cin, O, k, B=2, H=7, W=5, bias=True, pre=True, shift_b=False, time=0, res=False, slope=0.01):
    ins = {f"x{s}": torch.randn(B, c, H, W) for s, c in enumerate(cin)}
    C = sum(cin)
    ins["w"] = 0.3 * torch.randn(O, C, k, k)
    if bias:
        ins["b"] = torch.randn(O)
    if pre:
        ins["scale"] = 1.0 + 0.5 * torch.rand(C)
        ins["shift"] = 0.5 * torch.randn(B, C) if shift_b else 0.5 * torch.randn(C)
        if time == 1:
            ins["time"] = 0.5 * torch.randn(B, C, H)
        elif time == 2:
            ins["time"] = torch.sigmoid(torch.randn(B, C, H))
    if res:
        ins["res"] = torch.randn(B, O, H, W)
    for v in ins.values():
        v.requires_grad_(True)
    x = torch.cat([ins[f"x{s}"] for s in range(len(cin))], 1)
    if pre:
        sh = ins["shift"][..., None, None] if shift_b else ins["shift"][None, :, None, None]
        z = x * ins["scale"][None, :, None, None] + sh
        if time == 1:
            a = F.leaky_relu(z + ins["time"][..., None], slope)
        elif time == 2:
            a = F.leaky_relu(z, slope) * ins["time"][..., None]
        else:
            a = F.leaky_relu(z, slope)
    else:
        a = x
    y = F.conv2d(a, ins["w"], ins.get("b"), padding=k // 2)
    if res:
        y = y + ins["res"]
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{n}.meta"] = torch.tensor([k, slope, time, 1.0 if pre else 0.0])
    for key, v in ins.items():
        t[f"{n}.{key}"] = v.detach().clone()
        t[f"{n}.grad.{key}"] = v.grad.clone()
    t[f"{n}.y"], t[f"{n}.R"] = y.detach(), r


case("k3_one", [4], 6, 3, res=True)
case("k3_concat_add", [3, 2], 5, 3, shift_b=True, time=1, slope=0.2)
case("k3_gate", [4], 3, 3, time=2, slope=0.1, bias=False)
case("k1_concat_gate", [2, 3], 4, 1, shift_b=True, time=2, res=True)
case("k3_plain", [3], 4, 3, pre=False)
case("k1_plain_concat", [2, 2], 3, 1, pre=False, bias=False)

out = Path(__file__).parent / "fixtures" / "conv2d_grads.safetensors"
save_file({k: v.contiguous() for k, v in t.items()}, str(out))
print(out, out.stat().st_size, "bytes")
