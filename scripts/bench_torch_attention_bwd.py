"""PyTorch reference time for aural's CPU attention backward bench cases (`attention/cpu/cpu/f32/bwd_*`).

Times the backward of F.scaled_dot_product_attention on a packed QKV tensor (B, S, 3·H·Dh) split into
heads, as `aural_runtime::ops::attention::attention_qkv_bwd` computes it: AST-SED's frequency-wise
attention (101 frames × 4 heads × 13 tokens × 192) and AST's (12 heads × 1214 tokens × 64), with 2
threads (the dev box's cores), median over repeats; the forward is run (untimed) before each backward.

Run: /work/main/.venv/bin/python scripts/bench_torch_attention_bwd.py [--reps 8]
Compare in the same session with: aural bench --op attention --device cpu
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, B, S, H, Dh in [("bwd_freq_101x4x13x192", 101, 13, 4, 192), ("bwd_ast_12x1214x64", 1, 1214, 12, 64)]:
        W = H * Dh
        qkv = torch.randn(B, S, 3 * W, requires_grad=True)
        dy = torch.randn(B, S, W)

        def fwd():
            q, k, v = qkv.split(W, -1)
            heads = lambda z: z.reshape(B, S, H, Dh).transpose(1, 2)
            return F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, S, W)

        times = []
        for r in range(args.reps + 2):
            o = fwd()
            t0 = time.perf_counter()
            o.backward(dy)
            if r >= 2:  # warm-up
                times.append(time.perf_counter() - t0)
            qkv.grad = None
        print(f"torch {torch.__version__} threads={torch.get_num_threads()} {name}: backward median "
              f"{statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
