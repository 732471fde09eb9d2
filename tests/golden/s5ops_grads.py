"""Golden fixtures of the CP-JKU separator extensions' backward rules: writes
tests/golden/fixtures/s5ops_grads.safetensors, read by autograd/tests/s5ops.rs. Deterministic (fixed
seed); CPU; torch (the .venv's). Every loss is L = sum(out * R) with a fixed random R (so dL/dout = R,
stored as <case>.dy); <case>.y is the output, <case>.grad.<name> the gradient of each input.

- rs_up.*: F.interpolate(x, size=(9, 7), mode='bilinear', align_corners=False), x (2, 3, 5, 4); grad of x.
- rs_down.*: the same, x (1, 2, 9, 8) to (4, 3) (non-integer ratios); grad of x.
- rs_time.*: x (2, 3, 7, 1) to (16, 1) (the time-FiLM's W = 1); grad of x.
- rs_mixed_pre.*: a = F.leaky_relu(x * scale[None, :, None, None] + shift[:, :, None, None], 0.01),
  shift (N, C); F.interpolate(a, size=(11, 3), ...), x (2, 3, 6, 5) (H up, W down); grads of x,
  scale, shift.
- rs_down_pre.*: the same with a (C) shift (shift[None, :, None, None]), x (2, 2, 8, 6) to (3, 4);
  grads of x, scale, shift.
- gn_g1.*: nn.GroupNorm(1, 4, eps=1e-8) (random affine weight and bias) on x (2, 4, 5, 3), plus a
  residual r: y = r + gn(x); grads of x, weight, bias, residual.
- gn_g4.*: nn.GroupNorm(4, 8, eps=1e-5) on x (2, 8, 3, 5), no residual; grads of x, weight, bias.
- sa.*: the standardize-add merge as runtime/src/ops/standardize/mod.rs states it:
  y = wx * (x - x.mean(dim=[2, 3], keepdim=True)) / (x.std(dim=[2, 3], keepdim=True) + 1e-6)
    + wf * (f - f.mean(...)) / (f.std(...) + 1e-6)
  (unbiased std), x, f (2, 3, 5, 4), wx, wf 0-d learned scalars; grads of x, f, wx, wf.
- prelu1.*: nn.PReLU() (one parameter, set to 0.2) on x (2, 3, 4, 5); grads of x, weight.
- preluc.*: nn.PReLU(3) (weights 0.1, -0.3, 0.7) on x (2, 3, 4, 5); grads of x, weight.
Inputs of LeakyReLU/PReLU are kept >= 0.05 away from 0 (the kink).

Run: /work/main/.venv/bin/python tests/golden/s5ops_grads.py
"""
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
t = {}


def away0(shape, gap=0.05):
    v = torch.randn(*shape)
    return v.sign() * (v.abs() + gap)


def finish(name, y, params):
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.y"], t[f"{name}.dy"] = y.detach(), r
    for n, p in params.items():
        t[f"{name}.{n}"] = p.detach().clone()
        t[f"{name}.grad.{n}"] = p.grad.clone()


def resize_case(name, shape, size, pre):
    x = torch.randn(*shape).requires_grad_(True)
    params = {"x": x}
    a = x
    if pre is not None:
        n, c = shape[0], shape[1]
        scale = (1.0 + 0.3 * torch.randn(c)).requires_grad_(True)
        shift = (0.3 * torch.randn(n, c) if pre == "nc" else 0.3 * torch.randn(c)).requires_grad_(True)
        sh = shift[:, :, None, None] if pre == "nc" else shift[None, :, None, None]
        # Keep z = x*scale + shift away from the kink: choose x so that |z| >= 0.05.
        with torch.no_grad():
            z = away0(shape)
            x.copy_((z - sh) / scale[None, :, None, None])
        a = F.leaky_relu(x * scale[None, :, None, None] + sh, 0.01)
        params.update(scale=scale, shift=shift)
    y = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    finish(name, y, params)


def gn_case(name, shape, groups, eps, residual):
    gn = nn.GroupNorm(groups, shape[1], eps=eps)
    with torch.no_grad():
        gn.weight.copy_(1.0 + 0.3 * torch.randn(shape[1]))
        gn.bias.copy_(0.2 * torch.randn(shape[1]))
    x = (0.7 * torch.randn(*shape) + 0.3).requires_grad_(True)
    params = {"x": x, "weight": gn.weight, "bias": gn.bias}
    y = gn(x)
    if residual:
        r = torch.randn(*shape).requires_grad_(True)
        y = r + y
        params["residual"] = r
    finish(name, y, params)


def sa_case(name, shape):
    x = (torch.randn(*shape) * 2.0 + 0.5).requires_grad_(True)
    f = (torch.randn(*shape) * 0.5 - 0.2).requires_grad_(True)
    wx = torch.tensor(0.8).requires_grad_(True)
    wf = torch.tensor(1.3).requires_grad_(True)

    def st(z):
        return (z - z.mean(dim=[2, 3], keepdim=True)) / (z.std(dim=[2, 3], keepdim=True) + 1e-6)

    y = wx * st(x) + wf * st(f)
    finish(name, y, {"x": x, "f": f, "wx": wx, "wf": wf})


def prelu_case(name, shape, weights):
    m = nn.PReLU(len(weights))
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights))
    x = away0(shape).requires_grad_(True)
    finish(name, m(x), {"x": x, "weight": m.weight})


resize_case("rs_up", (2, 3, 5, 4), (9, 7), None)
resize_case("rs_down", (1, 2, 9, 8), (4, 3), None)
resize_case("rs_time", (2, 3, 7, 1), (16, 1), None)
resize_case("rs_mixed_pre", (2, 3, 6, 5), (11, 3), "nc")
resize_case("rs_down_pre", (2, 2, 8, 6), (3, 4), "c")
gn_case("gn_g1", (2, 4, 5, 3), 1, 1e-8, True)
gn_case("gn_g4", (2, 8, 3, 5), 4, 1e-5, False)
sa_case("sa", (2, 3, 5, 4))
prelu_case("prelu1", (2, 3, 4, 5), [0.2])
prelu_case("preluc", (2, 3, 4, 5), [0.1, -0.3, 0.7])

t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "s5ops_grads.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors, {out.stat().st_size} bytes)")
