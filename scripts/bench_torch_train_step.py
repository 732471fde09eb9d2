"""PyTorch reference for autograd/benches/train_step.rs: one CPU training step (forward + backward +
AdamW) of a pre-LN transformer block (the HF AST layer's math: LN eps 1e-12, exact GELU), B = 4,
T = 128, D = 256, 4 heads, MLP 1024, MSE loss, AdamW(lr 1e-4, wd 0.01), 2 threads.

Run: .venv/bin/python -P scripts/bench_torch_train_step.py
"""
import math
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
B, T, D, NH, M = 4, 128, 256, 4, 1024
dh = D // NH


def lin(fout, fin):
    return [(torch.randn(fout, fin) / math.sqrt(fin)).requires_grad_(), (0.1 * torch.randn(fout)).requires_grad_()]


P = {
    "ln1": [(1 + 0.2 * torch.randn(D)).requires_grad_(), (0.1 * torch.randn(D)).requires_grad_()],
    "q": lin(D, D), "k": lin(D, D), "v": lin(D, D), "o": lin(D, D),
    "ln2": [(1 + 0.2 * torch.randn(D)).requires_grad_(), (0.1 * torch.randn(D)).requires_grad_()],
    "fc1": lin(M, D), "fc2": lin(D, M),
}
params = [p for v in P.values() for p in v]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
x = torch.rand(B, T, D) * 2 - 1
target = torch.rand(B, T, D) * 2 - 1


def step():
    h = F.layer_norm(x, (D,), *P["ln1"], 1e-12)
    q, k, v = (F.linear(h, *P[n]).reshape(B, T, NH, dh).permute(0, 2, 1, 3) for n in "qkv")
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
    ctx = (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3).reshape(B, T, D)
    x1 = x + F.linear(ctx, *P["o"])
    y = x1 + F.linear(F.gelu(F.linear(F.layer_norm(x1, (D,), *P["ln2"], 1e-12), *P["fc1"])), *P["fc2"])
    loss = F.mse_loss(y, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


for _ in range(5):
    step()
times = []
for _ in range(30):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
print(f"torch {torch.__version__} train step (B={B}, T={T}, D={D}, 2 threads): median {1e3 * times[len(times) // 2]:.2f} ms, min {1e3 * times[0]:.2f} ms")
