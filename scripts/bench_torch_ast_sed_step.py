"""PyTorch reference for trainer/benches/ast_sed_step.rs: one CPU training step (forward + backward +
AdamW) of the small AST-SED of the golden fixtures (tests/golden/fixtures/ast_sed_small: AST 64 wide,
2 of 3 blocks, 48 mel × 128 frames, FTE 2 × 4 heads, ×3 upsampling, BiGRU 24, 5 classes), batch 2
(the fixture's input_values and targets), loss = BCE(strong) + 0.5·BCE(weak), AdamW(lr 1e-4, wd 0.01)
over every parameter, 2 threads, eval() (no dropout, as aural).

Run: .venv/bin/python scripts/bench_torch_ast_sed_step.py [--model DIR] [--steps N]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
from ast_sed import load_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "..", "tests", "golden", "fixtures", "ast_sed_small"))
    ap.add_argument("--grads", default=os.path.join(HERE, "..", "tests", "golden", "fixtures", "ast_sed_grads.safetensors"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = load_checkpoint(a.model, attn_implementation="eager")
    m.eval()
    f = load_file(a.grads)
    x, ts, tw = f["input_values"], f["targets/strong"], f["targets/weak"]
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        strong, weak = m(x)[:2]
        loss = F.binary_cross_entropy(strong, ts) + 0.5 * F.binary_cross_entropy(weak, tw)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"torch {torch.__version__}, {a.threads} threads: AST-SED small train step median {1e3 * times[len(times) // 2]:.2f} ms, min {1e3 * times[0]:.2f} ms over {a.steps} steps ({sum(p.numel() for p in params)} parameters)")


if __name__ == "__main__":
    main()
