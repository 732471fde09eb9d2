"""PyTorch reference throughput for aural's CPU matmul bench case `768x768x1210`.

Times torch.matmul of a (1210, 768) f32 by a (768, 768) f32 with 2 threads (the machine's cores, as
`aural bench --op matmul --device cpu` uses), median over repeats, and prints GFLOP/s (2·M·N·K / s).

Run: /work/main/.venv/bin/python scripts/bench_torch_matmul.py [--reps 50] [--n 768]
Compare in the same session with: cargo run --release -- bench --op matmul --device cpu
"""
import argparse
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=1210)
    ap.add_argument("--k", type=int, default=768)
    ap.add_argument("--n", type=int, default=768)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    a = torch.randn(args.m, args.k, dtype=torch.float32)
    b = torch.randn(args.k, args.n, dtype=torch.float32)
    out = torch.empty(args.m, args.n, dtype=torch.float32)
    for _ in range(5):  # warm-up
        torch.matmul(a, b, out=out)
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        torch.matmul(a, b, out=out)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    flops = 2.0 * args.m * args.n * args.k
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} matmul ({args.m}x{args.k})@({args.k}x{args.n}) f32: "
          f"median {med * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms, {flops / med / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
