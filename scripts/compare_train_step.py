"""One `trainer sed` training step against PyTorch, side by side in one run, on the same model.

The step (both sides): student forward + backward, teacher forward without gradients, AdamW (two
groups: AST lr 5e-6, new layers 1e-4, weight decay 0.01), EMA teacher update
(α = min(1 − 1/(n + 1), 0.999)); loss = BCE(frames of the first half of the batch) + 0.5·BCE(clip
scores of the next quarter) + 1·(MSE(student frames, teacher frames) + MSE(student clip, teacher clip))
over the whole batch; random input features, eval() (no dropout, as aural).

--size base: AST-SED on AST-base (DESIGN.md §6.3: 10 of 12 AST blocks, FTE 2 × 4 heads, ×10 upsampling,
BiGRU 384, 10 classes; 1024 frames = 10.24 s clips), random weights written to a temporary checkpoint
that both sides load. --size small: the golden fixture tests/golden/fixtures/ast_sed_small.
aural's side is `cargo bench -p aural-trainer --bench sed_train_step` (built in release).

Run: .venv/bin/python scripts/compare_train_step.py --size base --batch 4 --steps 3 --threads 2 --rounds 3
     [--device cuda] (both sides on the GPU; torch synchronised around each step)
"""
import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
from ast_sed import AstSed, base_config, load_checkpoint, randomize, save_checkpoint  # noqa: E402


def torch_step_times(model_dir, batch, steps, threads, device="cpu"):
    torch.set_num_threads(threads)
    student = load_checkpoint(model_dir, attn_implementation="sdpa").to(device)
    student.eval()
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    ast = [p for n, p in student.named_parameters() if n.startswith("ast.")]
    new = [p for n, p in student.named_parameters() if not n.startswith("ast.")]
    opt = torch.optim.AdamW([{"params": ast, "lr": 5e-6}, {"params": new, "lr": 1e-4}], weight_decay=0.01)
    cfg = student.cfg
    g = torch.Generator().manual_seed(0)
    x = ((torch.rand(batch, cfg["ast"]["max_length"], cfg["ast"]["num_mel_bins"], generator=g) * 2 - 1) * 1.5).to(device)
    with torch.no_grad():
        s0, w0 = student(x)[:2]
    ts = (torch.rand(s0.shape, generator=g) > 0.8).float().to(device)
    tw = (torch.rand(w0.shape, generator=g) > 0.75).float().to(device)
    sr, wr = slice(0, batch // 2), slice(batch // 2, batch // 2 + (batch + 3) // 4)
    n = [0]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            st, wt = teacher(x)[:2]
        s, w = student(x)[:2]
        loss = F.binary_cross_entropy(s[sr], ts[sr]) + 0.5 * F.binary_cross_entropy(w[wr], tw[wr])
        loss = loss + 1.0 * (F.mse_loss(s, st) + F.mse_loss(w, wt))
        loss.backward()
        opt.step()
        n[0] += 1
        a = min(1 - 1 / (n[0] + 1), 0.999)
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(a).add_(ps, alpha=1 - a)

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    step()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times, sum(p.numel() for p in student.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["small", "base"], default="base")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.size == "small":
            d = os.path.join(ROOT, "tests", "golden", "fixtures", "ast_sed_small")
        else:
            d = os.path.join(tmp, "ast_sed_base")
            cfg = base_config("ast-sed")
            torch.manual_seed(0)
            m = AstSed(cfg)
            randomize(m, 0)
            save_checkpoint(m, cfg, d)
            del m
        env = dict(os.environ, AURAL_BENCH_MODEL=os.path.abspath(d), AURAL_BENCH_BATCH=str(a.batch),
                   AURAL_BENCH_STEPS=str(a.steps), RAYON_NUM_THREADS=str(a.threads),
                   AURAL_BENCH_DEVICE=a.device)
        # Rounds alternate the two sides, so a slow patch of this shared machine hits both alike.
        ratios = []
        for r in range(a.rounds):
            p = subprocess.run(["cargo", "bench", "-q", "-p", "aural-trainer", "--bench", "sed_train_step"],
                               cwd=ROOT, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"aural bench failed:\n{p.stderr}")
            line = [l for l in p.stdout.splitlines() if l.startswith("aural:")][-1]
            ours = float(re.search(r"median ([0-9.]+) ms", line).group(1)) / 1e3
            times, params = torch_step_times(d, a.batch, a.steps, a.threads, a.device)
            theirs = times[len(times) // 2]
            ratios.append(ours / theirs)
            print(f"round {r + 1}: {line}")
            print(f"round {r + 1}: torch {torch.__version__}, {a.threads} threads: AST-SED mean-teacher train step, batch {a.batch}, "
                  f"{params} parameters: median {1e3 * theirs:.1f} ms, min {1e3 * times[0]:.1f} ms over {a.steps} steps")
            print(f"round {r + 1}: aural / torch time = {ours / theirs:.3f}", flush=True)
    ratios.sort()
    print(f"size {a.size}, batch {a.batch}, {a.rounds} rounds: aural / torch time, median {ratios[len(ratios) // 2]:.3f} "
          f"(range {ratios[0]:.3f}–{ratios[-1]:.3f}; below 1: aural faster)")

if __name__ == "__main__":
    main()
