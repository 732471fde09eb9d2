"""Golden fixture of AdamW with amsgrad: writes tests/golden/fixtures/amsgrad.safetensors, read by
autograd/tests/amsgrad.rs. Deterministic (fixed seed); CPU; torch 2.9.1; single-tensor path
(foreach=False, torch's CPU default).

Three parameters of odd shapes, five steps of
    torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, amsgrad=True,
                      foreach=False)
with fixed random gradients per step; the gradient scale per step is 1.0, 2.0, 0.1, 0.05, 1.5, so at
steps 3 and 4 exp_avg_sq falls below its running max and the max (not v) sets the denominator.

Keys: `{n}.init`, `{n}.grad{s}`, and after step s: `{n}.param{s}`, `{n}.exp_avg{s}`, `{n}.exp_avg_sq{s}`,
`{n}.max_exp_avg_sq{s}` for n in p0 (3, 5), p1 (7,), p2 (2, 3, 3), s in 1..=5.

Run: /work/main/.venv/bin/python tests/golden/amsgrad.py
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
shapes = {"p0": (3, 5), "p1": (7,), "p2": (2, 3, 3)}
scales = [1.0, 2.0, 0.1, 0.05, 1.5]
ps = {n: torch.randn(*s).requires_grad_(True) for n, s in shapes.items()}
t = {f"{n}.init": p.detach().clone() for n, p in ps.items()}
opt = torch.optim.AdamW(list(ps.values()), lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, amsgrad=True, foreach=False)
for step, sc in enumerate(scales, start=1):
    for n, p in ps.items():
        g = torch.randn(*shapes[n]) * sc
        t[f"{n}.grad{step}"] = g.clone()
        p.grad = g
    opt.step()
    for n, p in ps.items():
        st = opt.state[p]
        t[f"{n}.param{step}"] = p.detach().clone()
        for k in ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]:
            t[f"{n}.{k}{step}"] = st[k].clone()
    # The max must differ from v somewhere once the gradient shrinks.
    if step > 1 and sc < scales[step - 2]:
        assert any((opt.state[p]["max_exp_avg_sq"] > opt.state[p]["exp_avg_sq"]).any() for p in ps.values())

t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "amsgrad.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors)")
