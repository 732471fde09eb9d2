"""Golden fixtures of the sequence backward rules (issue #7): writes
tests/golden/fixtures/autograd_seq.safetensors, read by autograd/tests/golden.rs. Deterministic (fixed
seed); CPU; torch 2.9.1. Every loss is L = sum(out * R) with a fixed random R (so dL/dout = R).

- gru.*: torch.nn.GRU(6, 5, bidirectional=True, batch_first=True), x (2, 9, 6), h0 = 0: the output,
  R, and the gradients of x and of every parameter (torch names weight_ih_l0[_reverse] ...).
- gru2.*: a 2-layer BiGRU(4, 3) over x (3, 7, 4) (aural runs it as two one-layer calls).
- attn.*: packed QKV (2, 13, 36), 3 heads of 4, F.scaled_dot_product_attention(scale=0.4) on
  qkv.split -> view(B, S, H, Dh).transpose(1, 2); out back to (B, S, 12); grad of qkv.
- pe.*: AST patch embedding: x (2, 24, 20) frames x mel, Conv2d(1, 8, (4, 4), stride (3, 2)) on
  x.unsqueeze(1).transpose(2, 3), flatten(2).transpose(1, 2), [cls, dist] tokens prepended, position
  embedding added; grads of weight, bias, prefix tokens (2, 8) and position embedding.

Run: /work/main/.venv/bin/python tests/golden/autograd_seq.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
t = {}


def gru_case(name, B, T, I, H, layers):
    g = torch.nn.GRU(I, H, num_layers=layers, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I, requires_grad=True)
    y, _ = g(x)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.x"], t[f"{name}.y"], t[f"{name}.dy"] = x.detach(), y.detach(), r
    t[f"{name}.grad.x"] = x.grad
    for n, p in g.named_parameters():
        t[f"{name}.param.{n}"] = p.detach().clone()
        t[f"{name}.grad.{n}"] = p.grad.clone()


gru_case("gru", 2, 9, 6, 5, 1)
gru_case("gru2", 3, 7, 4, 3, 2)

# ---- attention on packed QKV
B, S, NH, DH = 2, 13, 3, 4
W = NH * DH
qkv = (1.5 * torch.randn(B, S, 3 * W)).requires_grad_(True)
q, k, v = qkv.split(W, dim=-1)
heads = lambda z: z.reshape(B, S, NH, DH).transpose(1, 2)
o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), scale=0.4).transpose(1, 2).reshape(B, S, W)
r = torch.randn_like(o)
(o * r).sum().backward()
t["attn.qkv"], t["attn.out"], t["attn.dout"], t["attn.grad.qkv"] = qkv.detach(), o.detach(), r, qkv.grad

# ---- AST patch embedding
B, T, M, N, P = 2, 24, 20, 8, 2
x = torch.randn(B, T, M)
conv = torch.nn.Conv2d(1, N, (4, 4), stride=(3, 2))
cls = torch.randn(1, 1, N, requires_grad=True)
dist = torch.randn(1, 1, N, requires_grad=True)
pe = conv(x.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
pos = (0.1 * torch.randn(1, P + pe.shape[1], N)).requires_grad_(True)
out = torch.cat([cls.expand(B, -1, -1), dist.expand(B, -1, -1), pe], dim=1) + pos
r = torch.randn_like(out)
(out * r).sum().backward()
t["pe.x"], t["pe.out"], t["pe.dout"] = x, out.detach(), r
t["pe.weight"], t["pe.bias"] = conv.weight.detach().clone(), conv.bias.detach().clone()
t["pe.prefix"] = torch.cat([cls, dist], dim=1).detach().reshape(P, N)
t["pe.pos"] = pos.detach()
t["pe.grad.weight"], t["pe.grad.bias"] = conv.weight.grad, conv.bias.grad
t["pe.grad.prefix"] = torch.cat([cls.grad, dist.grad], dim=1).reshape(P, N)
t["pe.grad.pos"] = pos.grad

t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "autograd_seq.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors)")
