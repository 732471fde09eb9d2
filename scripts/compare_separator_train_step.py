"""One `trainer separator` training step against PyTorch, side by side in one run, on the same model.

The step (both sides): forward with BatchNorm in training mode (batch statistics, running statistics
updated), loss = mean over the batch of −SNR(estimate, target) (torchmetrics' plain SNR), backward,
gradient clipping to a global norm of 0.5, AdamW (lr 1e-4, no weight decay) over every parameter.
The model: the DCASE 2025 task 4 baseline's ResUNet30 (4 → 1 channels, out_conv, label conditioning,
n_fft 1024, hop 160, widths [32, 32, 64, 128, 256, 384, 384], condition size 512) of
tests/golden/separator.py, random weights written to a temporary checkpoint that both sides load;
a random 4-channel mixture of `--seconds` s (default 10) per item, one-hot labels, targets.
aural's side is `cargo bench -p aural-trainer --bench separator_train_step` (release).

Run: .venv/bin/python scripts/compare_separator_train_step.py --batch 2 --seconds 10 --steps 2 --threads 2 --rounds 2
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import separator as ref  # noqa: E402

EPS = torch.finfo(torch.float32).eps


def baseline_config():
    return ref.make_config(4, 1, 1, 18, 1024, 160, True, ref.DEFAULT_CHANNELS, 512, "label")


def torch_step_times(model, batch, seconds, steps, threads):
    torch.set_num_threads(threads)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    L = int(seconds * 32000)
    g = torch.Generator().manual_seed(0)
    mix = (torch.rand(batch, 4, L, generator=g) * 2 - 1) * 0.3
    target = 0.5 * mix[:, :1]
    labels = torch.zeros(batch, 18)
    for i in range(batch):
        labels[i, (3 + 5 * i) % 18] = 1

    def step():
        opt.zero_grad(set_to_none=True)
        _, wav = model(mix, label_vector=labels)
        est = wav.reshape(batch, 1, L)
        snr = 10 * torch.log10(((target * target).sum(-1) + EPS) / (((target - est) ** 2).sum(-1) + EPS))
        loss = -snr.mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times, sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "resunet30")
        cfg = baseline_config()
        model = ref.randomize(ref.Separator(cfg), 0)
        ref.save_checkpoint(model, cfg, d, keep_nbt=False)
        env = dict(os.environ, AURAL_BENCH_MODEL=os.path.abspath(d), AURAL_BENCH_BATCH=str(a.batch),
                   AURAL_BENCH_SECONDS=str(a.seconds), AURAL_BENCH_STEPS=str(a.steps),
                   RAYON_NUM_THREADS=str(a.threads))
        # Rounds alternate the two sides, so a slow patch of this shared machine hits both alike.
        ratios = []
        for r in range(a.rounds):
            p = subprocess.run(["cargo", "bench", "-q", "-p", "aural-trainer", "--bench", "separator_train_step"],
                               cwd=ROOT, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"aural bench failed:\n{p.stderr}")
            line = [l for l in p.stdout.splitlines() if l.startswith("aural:")][-1]
            ours = float(re.search(r"median ([0-9.]+) ms", line).group(1)) / 1e3
            m = ref.randomize(ref.Separator(cfg), 0)
            times, params = torch_step_times(m, a.batch, a.seconds, a.steps, a.threads)
            del m
            theirs = times[len(times) // 2]
            ratios.append(ours / theirs)
            print(f"round {r + 1}: {line}")
            print(f"round {r + 1}: torch {torch.__version__}, {a.threads} threads: ResUNet30 train step, batch {a.batch}, "
                  f"{a.seconds} s, {params} parameters: median {1e3 * theirs:.1f} ms, min {1e3 * times[0]:.1f} ms over {a.steps} steps")
            print(f"round {r + 1}: aural / torch time = {ours / theirs:.3f}", flush=True)
    ratios.sort()
    print(f"batch {a.batch}, {a.seconds} s, {a.rounds} rounds: aural / torch time, median {ratios[len(ratios) // 2]:.3f} "
          f"(range {ratios[0]:.3f}–{ratios[-1]:.3f}; below 1: aural faster)")


if __name__ == "__main__":
    main()
