"""Golden fixtures of the autograd (issue #7): writes tests/golden/fixtures/autograd.safetensors, read by
autograd/tests/golden.rs. Deterministic (fixed seed); CPU; torch 2.9.1.

- mlp.*: a 2-layer MLP with GELU + LayerNorm + softmax + attention pooling + BCE; inputs, parameters,
  loss and every parameter's gradient (torch autograd).
- block.*: one pre-LN transformer block (the HF AST layer: LN eps 1e-12, 4 heads, exact GELU) with an
  MSE loss; inputs, parameters, loss, gradients (parameters and input).
- adamw.*: three steps of torch.optim.AdamW with two parameter groups (different lr and weight decay)
  and clip_grad_norm_(max_norm=0.5) before each step; the gradients fed in and the parameters after
  each step.

Run: /work/main/.venv/bin/python tests/golden/autograd.py
"""
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
t = {}

# ---- MLP: x (B, T, D) -> LN(gelu(fc1 x)) -> p = softmax(fc2 h) over classes; weak = attention pool.
B, T, D, H, C = 2, 5, 7, 11, 6
mlp = {
    "fc1.weight": torch.randn(H, D) * 0.5, "fc1.bias": torch.randn(H) * 0.1,
    "ln.weight": 1.0 + 0.2 * torch.randn(H), "ln.bias": 0.1 * torch.randn(H),
    "fc2.weight": torch.randn(C, H) * 0.5, "fc2.bias": torch.randn(C) * 0.1,
    "fc_att.weight": torch.randn(C, H) * 0.5, "fc_att.bias": torch.randn(C) * 0.1,
}
x = torch.randn(B, T, D)
strong = (torch.rand(B, T, C) > 0.5).float()
weak_t = (torch.rand(B, C) > 0.5).float()
for k, v in mlp.items():
    v.requires_grad_(True)
h = F.layer_norm(F.gelu(F.linear(x, mlp["fc1.weight"], mlp["fc1.bias"])), (H,), mlp["ln.weight"], mlp["ln.bias"], 1e-5)
p = torch.softmax(F.linear(h, mlp["fc2.weight"], mlp["fc2.bias"]), dim=-1)
att = F.linear(h, mlp["fc_att.weight"], mlp["fc_att.bias"])
a = torch.clamp(torch.softmax(att, dim=1), 1e-7, 1.0)
weak = (p * a).sum(1) / a.sum(1)
loss = F.binary_cross_entropy(p, strong) + F.binary_cross_entropy(weak, weak_t)
loss.backward()
t["mlp.x"], t["mlp.strong"], t["mlp.weak"], t["mlp.loss"] = x, strong, weak_t, loss.detach().reshape(1)
for k, v in mlp.items():
    t[f"mlp.param.{k}"] = v.detach().clone()
    t[f"mlp.grad.{k}"] = v.grad.clone()

# ---- Pre-LN transformer block (HF AST layer), MSE loss.
B, T, Dm, NH, M = 2, 7, 16, 4, 32
dh = Dm // NH
names = ["layernorm_before", "attention.attention.query", "attention.attention.key", "attention.attention.value",
         "attention.output.dense", "layernorm_after", "intermediate.dense", "output.dense"]
blk = {}
for n in names:
    if n.startswith("layernorm"):
        blk[f"{n}.weight"] = 1.0 + 0.2 * torch.randn(Dm)
        blk[f"{n}.bias"] = 0.1 * torch.randn(Dm)
    else:
        fin, fout = {"intermediate.dense": (Dm, M), "output.dense": (M, Dm)}.get(n, (Dm, Dm))
        blk[f"{n}.weight"] = torch.randn(fout, fin) / math.sqrt(fin)
        blk[f"{n}.bias"] = 0.1 * torch.randn(fout)
xb = torch.randn(B, T, Dm, requires_grad=True)
target = torch.randn(B, T, Dm)
for v in blk.values():
    v.requires_grad_(True)
P = blk
hh = F.layer_norm(xb, (Dm,), P["layernorm_before.weight"], P["layernorm_before.bias"], 1e-12)
def heads(n):
    return F.linear(hh, P[f"{n}.weight"], P[f"{n}.bias"]).reshape(B, T, NH, dh).permute(0, 2, 1, 3)
q, k, v = heads("attention.attention.query"), heads("attention.attention.key"), heads("attention.attention.value")
s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
ctx = (torch.softmax(s, dim=-1) @ v).permute(0, 2, 1, 3).reshape(B, T, Dm)
x1 = xb + F.linear(ctx, P["attention.output.dense.weight"], P["attention.output.dense.bias"])
h2 = F.layer_norm(x1, (Dm,), P["layernorm_after.weight"], P["layernorm_after.bias"], 1e-12)
y = x1 + F.linear(F.gelu(F.linear(h2, P["intermediate.dense.weight"], P["intermediate.dense.bias"])),
                  P["output.dense.weight"], P["output.dense.bias"])
loss = F.mse_loss(y, target)
loss.backward()
t["block.x"], t["block.target"], t["block.loss"] = xb.detach().clone(), target, loss.detach().reshape(1)
t["block.grad_x"] = xb.grad.clone()
for kk, vv in blk.items():
    t[f"block.param.{kk}"] = vv.detach().clone()
    t[f"block.grad.{kk}"] = vv.grad.clone()

# ---- AdamW: two groups, weight decay, clipping, three steps.
shapes = {"p0": (4, 3), "p1": (5,), "p2": (2, 2)}
ps = {n: torch.randn(*s).requires_grad_(True) for n, s in shapes.items()}
for n, pp in ps.items():
    t[f"adamw.{n}.init"] = pp.detach().clone()
opt = torch.optim.AdamW([
    {"params": [ps["p0"], ps["p2"]], "lr": 3e-3, "weight_decay": 0.1},
    {"params": [ps["p1"]], "lr": 1e-2, "weight_decay": 0.01},
], betas=(0.9, 0.999), eps=1e-8)
for step in range(1, 4):
    opt.zero_grad()
    for n, pp in ps.items():
        g = torch.randn(*shapes[n]) * (0.3 * step)
        t[f"adamw.{n}.grad{step}"] = g.clone()
        pp.grad = g
    norm = torch.nn.utils.clip_grad_norm_(list(ps.values()), max_norm=0.5)
    t[f"adamw.norm{step}"] = norm.detach().reshape(1)
    opt.step()
    for n, pp in ps.items():
        t[f"adamw.{n}.step{step}"] = pp.detach().clone()

t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "autograd.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors)")
