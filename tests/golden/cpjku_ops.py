"""Golden fixture of the CP-JKU separator's small ops: tests/golden/fixtures/cpjku_ops.safetensors.

Run: /work/main/.venv/bin/python tests/golden/cpjku_ops.py   (torch CPU, f32, deterministic, seed 7)
Read by runtime/tests/resize.rs, runtime/tests/groupnorm.rs and runtime/tests/standardize.rs
(`golden_pytorch_*`). Scalars (weights, eps) are stored as 1-D f32 tensors.

Cases:
  resize_t:    F.interpolate(x, size=(40, 1), mode="bilinear", align_corners=False), x (2, 3, 25, 1)
               (the time-FiLM upsampling: time only, W = 1 → 1).
  resize_2d:   the same to size (9, 3) from x (1, 6, 7, 5) (H up, W down).
  resize_pre:  F.interpolate(F.leaky_relu(bn(x) + beta[:, :, None, None], 0.01), size=(11, 3), ...)
               with bn = BatchNorm2d(4).eval() (random weight, bias, running stats), x (2, 4, 6, 5),
               beta (2, 4) (a per-item FiLM shift); the test folds bn to (scale, shift).
  gn1:         x_res + nn.GroupNorm(1, 8, eps=1e-8)(x) (random affine), x (2, 8, 7, 5) with an offset
               of 3 (mean ≫ std: the variance must be computed well), x_res (2, 8, 7, 5).
  gn2:         nn.GroupNorm(2, 6)(x) (eps 1e-5, random affine), x (3, 6, 9, 4), no residual.
  gn3:         nn.GroupNorm(3, 6)(x), x (2, 6, 5) (rank 3).
  std:         wx·(x − x.mean(dim=[2, 3], keepdim=True)) / (x.std(dim=[2, 3], keepdim=True) + 1e-6)
               + wf·(f − f.mean(...)) / (f.std(...) + 1e-6), x, f (2, 3, 7, 5), wx = 0.7, wf = 1.3.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(7)
t = {}

x = torch.randn(2, 3, 25, 1)
t["resize_t_x"] = x
t["resize_t_out"] = F.interpolate(x, size=(40, 1), mode="bilinear", align_corners=False)

x = torch.randn(1, 6, 7, 5)
t["resize_2d_x"] = x
t["resize_2d_out"] = F.interpolate(x, size=(9, 3), mode="bilinear", align_corners=False)

bn = nn.BatchNorm2d(4).eval()
with torch.no_grad():
    bn.weight.copy_(torch.rand(4) + 0.5)
    bn.bias.copy_(torch.randn(4) * 0.3)
    bn.running_mean.copy_(torch.randn(4) * 0.5)
    bn.running_var.copy_(torch.rand(4) + 0.3)
x = torch.randn(2, 4, 6, 5)
beta = torch.randn(2, 4) * 0.5
with torch.no_grad():
    pre = F.leaky_relu(bn(x) + beta[:, :, None, None], 0.01)
    t["resize_pre_out"] = F.interpolate(pre, size=(11, 3), mode="bilinear", align_corners=False)
t["resize_pre_x"] = x
t["resize_pre_beta"] = beta
t["resize_pre_bn_weight"] = bn.weight.detach().clone()
t["resize_pre_bn_bias"] = bn.bias.detach().clone()
t["resize_pre_bn_mean"] = bn.running_mean.clone()
t["resize_pre_bn_var"] = bn.running_var.clone()
t["resize_pre_bn_eps"] = torch.tensor([bn.eps], dtype=torch.float32)


def group_norm_case(name, groups, shape, eps, residual, offset=0.0):
    c = shape[1]
    gn = nn.GroupNorm(groups, c, eps=eps)
    with torch.no_grad():
        gn.weight.copy_(torch.rand(c) + 0.5)
        gn.bias.copy_(torch.randn(c) * 0.3)
    x = torch.randn(*shape) * 0.5 + offset
    t[f"{name}_x"] = x
    t[f"{name}_weight"] = gn.weight.detach().clone()
    t[f"{name}_bias"] = gn.bias.detach().clone()
    t[f"{name}_eps"] = torch.tensor([eps], dtype=torch.float32)
    with torch.no_grad():
        out = gn(x)
        if residual:
            r = torch.randn(*shape)
            t[f"{name}_res"] = r
            out = r + out
    t[f"{name}_out"] = out


group_norm_case("gn1", 1, (2, 8, 7, 5), 1e-8, True, offset=3.0)
group_norm_case("gn2", 2, (3, 6, 9, 4), 1e-5, False)
group_norm_case("gn3", 3, (2, 6, 5), 1e-5, False)

x = torch.randn(2, 3, 7, 5) * 2.0 + 1.0
f = torch.randn(2, 3, 7, 5) * 0.1 - 0.5
wx, wf = 0.7, 1.3
t["std_x"], t["std_f"] = x, f
t["std_w"] = torch.tensor([wx, wf], dtype=torch.float32)
t["std_out"] = wx * (x - x.mean(dim=[2, 3], keepdim=True)) / (x.std(dim=[2, 3], keepdim=True) + 1e-6) + wf * (
    f - f.mean(dim=[2, 3], keepdim=True)
) / (f.std(dim=[2, 3], keepdim=True) + 1e-6)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "cpjku_ops.safetensors")
save_file({k: v.contiguous() for k, v in t.items()}, out)
print(out, sum(v.numel() for v in t.values()), "elements", "torch", torch.__version__)
