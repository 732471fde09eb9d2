"""Golden fixture of the gru family: tests/golden/fixtures/gru.safetensors.

Run: /work/main/.venv/bin/python tests/golden/gru.py   (torch 2.9.1, CPU, deterministic seed)

Cases (f32; torch.nn.GRU(..., batch_first=True) in eval/no_grad):
  small — GRU(16, 12, num_layers=2, bidirectional=True), torch's default init (seed 0);
          weights `small.<torch parameter name>`.
          long: x (1, 1010, 16) → long.out (1, 1010, 24), long.hn (4, 1, 12); no h0.
          t1:   x (2, 1, 16), h0 (4, 2, 12) → t1.out, t1.hn (length-1 sequences).
          h0:   x (2, 7, 16), h0 (4, 2, 12) → h0.out, h0.hn.
  uni   — GRU(5, 7, num_layers=1, bias=False) (one direction, no biases); weights `uni.<name>`;
          x (2, 9, 5) → uni.out (2, 9, 7), uni.hn (1, 2, 7).
  big   — GRU(768, 384, num_layers=1, bidirectional=True): the AST-SED decoder's size, length 3.
          Its 2.7 M weights are not stored: every parameter p (in state_dict order, flattened) is
          hashed(n, seed) with n = 0 … numel − 1 and seed = position of p in the state_dict:
              u = (n·2654435761 + seed·40503 + 12345) mod 2³², value = f32((u / 2³¹ − 1) / 32)
          (exact integer arithmetic, the same in runtime/tests/gru.rs). x (1, 3, 768) → big.out, big.hn.
"""
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
t = {}


def hashed(n, seed):
    i = np.arange(n, dtype=np.uint64)
    u = (i * np.uint64(2654435761) + np.uint64(seed * 40503 + 12345)) % np.uint64(2**32)
    return ((u.astype(np.float64) / 2.0**31 - 1.0) / 32.0).astype(np.float32)


with torch.no_grad():
    g = torch.nn.GRU(16, 12, num_layers=2, bidirectional=True, batch_first=True).eval()
    for k, v in g.state_dict().items():
        t[f"small.{k}"] = v.clone()
    x = torch.randn(1, 1010, 16)
    out, hn = g(x)
    t.update({"long.x": x, "long.out": out, "long.hn": hn})
    x, h0 = torch.randn(2, 1, 16), torch.randn(4, 2, 12)
    out, hn = g(x, h0)
    t.update({"t1.x": x, "t1.h0": h0, "t1.out": out, "t1.hn": hn})
    x, h0 = torch.randn(2, 7, 16), torch.randn(4, 2, 12)
    out, hn = g(x, h0)
    t.update({"h0.x": x, "h0.h0": h0, "h0.out": out, "h0.hn": hn})

    u = torch.nn.GRU(5, 7, num_layers=1, bias=False, batch_first=True).eval()
    for k, v in u.state_dict().items():
        t[f"uni.{k}"] = v.clone()
    x = torch.randn(2, 9, 5)
    out, hn = u(x)
    t.update({"uni.x": x, "uni.out": out, "uni.hn": hn})

    b = torch.nn.GRU(768, 384, num_layers=1, bidirectional=True, batch_first=True).eval()
    for seed, (k, p) in enumerate(b.named_parameters()):
        p.copy_(torch.from_numpy(hashed(p.numel(), seed)).reshape(p.shape))
    print("big parameter order:", [k for k, _ in b.named_parameters()])
    x = torch.randn(1, 3, 768)
    out, hn = b(x)
    t.update({"big.x": x, "big.out": out, "big.hn": hn})

out = pathlib.Path(__file__).parent / "fixtures" / "gru.safetensors"
save_file({k: v.contiguous() for k, v in t.items()}, str(out))
print(f"wrote {out} ({out.stat().st_size} bytes, {len(t)} tensors)")
