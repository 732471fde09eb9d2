"""PyTorch reference time for aural's CPU gru bench case `bi_T1010_I768_H384_B1`.

Times torch.nn.GRU(768, 384, bidirectional=True, batch_first=True) on a (1, 1010, 768) f32 input
(the AST-SED local GRU decoder: 101 patch frames upsampled ×10) with 2 threads (the machine's cores, as
`aural bench --op gru --device cpu` uses), under torch.inference_mode(), median over repeats.

Run: /work/main/.venv/bin/python scripts/bench_torch_gru.py [--reps 20] [--layers 1] [--device cuda]

Compare in the same session with: cargo run --release -- bench --op gru --device cpu

--backward times training instead (aural's case `bwd_bi_T1010_I768_H384_B1`): the forward with autograd
recording and `y.backward(dy)` separately, median over repeats (the backward alone is what gru_bwd does).
"""
import argparse
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t", type=int, default=1010)
    ap.add_argument("--input", type=int, default=768)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (cuDNN's GRU, for the GPU comparison)")
    ap.add_argument("--backward", action="store_true", help="time the training forward and the backward")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    gru = torch.nn.GRU(args.input, args.hidden, num_layers=args.layers, bidirectional=True, batch_first=True).eval().to(dev)
    x = torch.randn(args.batch, args.t, args.input, dtype=torch.float32, device=dev)
    if args.backward:
        gru.train()
        x.requires_grad_(True)
        dy = torch.randn(args.batch, args.t, 2 * args.hidden, device=dev)
        fwd, bwd = [], []
        for r in range(args.reps + 3):
            t0 = time.perf_counter()
            y, _ = gru(x)
            sync()
            t1 = time.perf_counter()
            y.backward(dy)
            sync()
            t2 = time.perf_counter()
            if r >= 3:  # warm-up
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
        print(f"torch {torch.__version__} device={args.device} threads={torch.get_num_threads()} BiGRU layers={args.layers} "
              f"T={args.t} I={args.input} H={args.hidden} B={args.batch} f32 training: forward median "
              f"{statistics.median(fwd) * 1e3:.2f} ms, backward median {statistics.median(bwd) * 1e3:.2f} ms "
              f"(min {min(bwd) * 1e3:.2f} ms)")
        return
    with torch.inference_mode():
        for _ in range(3):  # warm-up
            gru(x)
        sync()
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            gru(x)
            sync()
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"torch {torch.__version__} device={args.device} threads={torch.get_num_threads()} BiGRU layers={args.layers} "
          f"T={args.t} I={args.input} H={args.hidden} B={args.batch} f32: "
          f"median {med * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
