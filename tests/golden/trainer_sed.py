"""Golden fixture of the `trainer sed` formulas: tests/golden/fixtures/trainer_sed.json.

Run: /work/main/.venv/bin/python tests/golden/trainer_sed.py   (torch 2.9.1, numpy 2.3, seed 0)

- ramp: the DESED baseline's ExponentialWarmup._get_scaling_factor (desed_task/utils/schedulers.py:
  np.clip(step_num, 0, rampup_len), phase = 1 − current/rampup_len, float(np.exp(−5·phase²)), 1.0 for
  length 0) — the consistency weight's ramp and the "exp" warm-up.
- ema: the DESED baseline's update_ema (alpha = min(1 − 1/(global_step + 1), alpha);
  ema.mul_(alpha).add_(param, alpha=1 − alpha)) on f32 tensors, global steps 1…6, max 0.999 and 0.6,
  the student changing between updates as a trained one does.
- encoder: the DESED baseline's ManyHotEncoder.encode_strong_df at the model's frame rate
  (_time_to_frame = clip(time / hop, 0, n_frames); onset frame int(·), offset frame int(ceil(·));
  y[onset:offset, class] = 1), with hop = frame_hop·net_pooling / fs written as one number (AST-SED:
  10.24 s / 1010 frames; the small fixture model: 1.28 s / 36 frames), events inside, overlapping,
  touching the start and running past the end.
- cosine: torch.optim.lr_scheduler.CosineAnnealingLR(T_max = steps − 1, eta_min = min_factor) on base
  lr 1, stepped once per step (the learning-rate factor of schedule kind "cosine").
"""
import json
import math
import os

import numpy as np
import torch

rng = np.random.default_rng(0)
out = {}


def desed_ramp(step_num, rampup_len):
    if rampup_len == 0:
        return 1.0
    current = np.clip(step_num, 0.0, rampup_len)
    phase = 1.0 - current / rampup_len
    return float(np.exp(-5.0 * phase * phase))


out["ramp"] = [[c, n, desed_ramp(c, n)] for n in [0, 1, 5, 50, 1000] for c in sorted({0, 1, 2, n // 2, n - 1, n, n + 3, 3 * n} - {-1})]

ema = []
for max_alpha in [0.999, 0.6]:
    teacher = torch.tensor(rng.standard_normal(64), dtype=torch.float32)
    t0 = teacher.clone()
    students, alphas = [], []
    for step in range(1, 7):
        student = torch.tensor(rng.standard_normal(64), dtype=torch.float32)
        alpha = min(1 - 1 / (step + 1), max_alpha)
        teacher.mul_(alpha).add_(student, alpha=1 - alpha)
        students.append(student.tolist())
        alphas.append(alpha)
    ema.append({"max": max_alpha, "teacher0": t0.tolist(), "students": students, "alphas": alphas, "teacher": teacher.tolist()})
out["ema"] = ema


def encode(events, n_frames, hop, k):
    y = np.zeros((n_frames, k), dtype=np.float32)
    for on, off, c in events:
        a = int(np.clip(on / hop, 0, n_frames))
        b = int(np.ceil(np.clip(off / hop, 0, n_frames)))
        y[a:b, c] = 1
    return y


enc = []
for n_frames, seconds, k in [(1010, 10.24, 10), (36, 1.28, 5)]:
    hop = seconds / n_frames
    events = [(0.0, 0.5, 0), (round(seconds * 0.3, 3), round(seconds * 0.45, 3), 1), (round(seconds * 0.4, 3), seconds + 1.0, 1), (seconds * 0.999, seconds, k - 1)]
    for _ in range(12):
        on = round(float(rng.uniform(0, seconds)), 3)
        off = round(on + float(rng.uniform(0, seconds / 2)), 3)
        events.append((on, off, int(rng.integers(0, k))))
    enc.append({"frames": n_frames, "hop": hop, "classes": k, "events": events, "y": encode(events, n_frames, hop, k).ravel().tolist()})
out["encoder"] = enc

cos = []
for steps, min_factor in [(10, 0.0), (37, 0.1)]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - 1, eta_min=min_factor)
    f = []
    for _ in range(steps):
        f.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    cos.append({"steps": steps, "min_factor": min_factor, "factors": f})
out["cosine"] = cos

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "trainer_sed.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path)
