"""Side-by-side speed and peak memory of the separator: aural vs the PyTorch reference, one run.

The case of issue #15: a 10 s 4-channel 32 kHz mixture, one label, the DCASE 2025 baseline's
ResUNet30 (n_fft 1024, hop 160, out_conv, default widths, random weights), CPU, 2 threads.

- The checkpoint and the mixture come from `tests/golden/separator.py --full DIR` (written once into
  DIR, default .cache/separator_full; it also holds PyTorch's waveform, so aural's output is checked
  too: the SNR vs PyTorch is printed).
- PyTorch: the golden script's reference model (torch.stft/istft, which it checks against the
  baseline's torchlibrosa STFT), eval mode, torch.no_grad(), torch.set_num_threads(2), in its own
  process. aural: `cargo run --release --example separator_speed` in its own process,
  RAYON_NUM_THREADS=2. Rounds alternate between the two (the machine's noise hits both).
- Time: seconds per forward pass (mixture in, waveform out; the label embedding, STFT, network,
  mask and iSTFT), after one warm-up pass; the median over rounds × reps.
- Memory: each process's peak resident set size (VmHWM), and the peak minus the resident size
  just before the first forward pass (what the forward itself adds: PyTorch's
  process carries ~0.3 GB of libraries that aural does not).
- Whole job (`--job-rounds`, default 3): what a user runs, one process per run, wall clock from the
  process start: `aural separate --model DIR mix.wav --label FootSteps --out …` against a PyTorch script
  doing the same (import, load the checkpoint, read the WAV with soundfile, separate, write the WAV),
  with each process's peak RSS and the SNR between the two output files. `--skip-forward` runs only this.

`--model cpjku` compares CP-JKU's separator instead (issue #17): the iterative model with 2 passes,
time-FiLM, the injection of 13 × 310 × 768 hidden states and the DPRNN, n_fft 2048 / hop 160, from
`tests/golden/cpjku.py --full DIR` (default .cache/cpjku_full), its conditions (strong logits,
embeddings) given to both sides (the whole job: `aural separate --conditions FILE`).

Run: .venv/bin/python scripts/compare_separator.py [--model baseline|cpjku] [--rounds 3] [--reps 2] [--dir DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH_CHILD = r"""
import json, resource, sys, time
import torch
from safetensors.torch import load_file
sys.path.insert(0, {golden!r})
import {module} as ref
torch.set_num_threads({threads})
cfg = json.load(open({ckpt!r} + "/config.json"))
model = ref.Separator(cfg)
sd = load_file({ckpt!r} + "/model.safetensors")
model.load_state_dict(sd, strict=False)
model.eval()
io = load_file({io!r})
mix, lab = io["mixture"], io["label_vector"]
if "strong_logits" in io:
    cp = ref.Separator.forward
    ref.Separator.forward = lambda self, m, label_vector: (None, cp(self, m, label_vector, io["strong_logits"], io["embeddings"], {{}}))
def rss_mb():
    with open("/proc/self/status") as f:
        for l in f:
            if l.startswith("VmRSS"):
                return int(l.split()[1]) / 1024
base = rss_mb()
with torch.no_grad():
    _, w = model(mix, label_vector=lab)
    for _ in range({reps}):
        t = time.perf_counter()
        _, w = model(mix, label_vector=lab)
        print(json.dumps({{"forward_s": time.perf_counter() - t}}), flush=True)
def hwm_mb():
    with open("/proc/self/status") as f:
        for l in f:
            if l.startswith("VmHWM"):
                return int(l.split()[1]) / 1024
print(json.dumps({{"base_rss_mb": base, "peak_rss_mb": hwm_mb()}}))
"""


def run_child(cmd, env):
    """Runs a child to the end; returns its stdout's JSON lines."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with status {p.returncode}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


TORCH_JOB = r"""
import json, sys
import numpy as np, soundfile as sf, torch
from safetensors.torch import load_file
sys.path.insert(0, {golden!r})
import {module} as ref
torch.set_num_threads({threads})
cfg = json.load(open({ckpt!r} + "/config.json"))
model = ref.Separator(cfg)
model.load_state_dict(load_file({ckpt!r} + "/model.safetensors"), strict=False)
model.eval()
wav, sr = sf.read({wav!r}, dtype="float32", always_2d=True)
label = torch.zeros(1, len(cfg["classes"]))
label[0, cfg["classes"].index({label!r})] = 1.0
mix = torch.from_numpy(np.ascontiguousarray(wav.T))[None]
with torch.no_grad():
    if {cond!r}:
        c = load_file({cond!r})
        y = model(mix, label, c["strong_logits"][None], c["embeddings"][None], {{}})
    else:
        _, y = model(mix, label_vector=label)
sf.write({out!r}, y[0, 0, 0].numpy(), sr, subtype="FLOAT")
"""


def whole_jobs(a, ckpt, io, env):
    """The job as a user runs it, one process per run: start, load the model, read the WAV, separate
    one label, write the WAV. aural: `aural separate`; PyTorch: a script doing the same with the
    reference module (soundfile I/O). Returns lines to print."""
    import soundfile as sf
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file
    tmp = tempfile.mkdtemp(prefix="aural-separate-compare-")
    wav = os.path.join(tmp, "mix.wav")
    data = load_file(io)
    sf.write(wav, data["mixture"][0].T, 32000, subtype="FLOAT")
    label = "FootSteps"
    cond, extra = "", []
    if "strong_logits" in data:
        cond = os.path.join(tmp, "cond.safetensors")
        save_file({"strong_logits": data["strong_logits"][0], "embeddings": data["embeddings"][0]}, cond)
        extra = ["--conditions", cond]
    subprocess.check_call(["cargo", "build", "--quiet", "--release", "--bin", "aural"], cwd=ROOT)
    cmds = {
        "torch": [sys.executable, "-c", TORCH_JOB.format(golden=os.path.join(ROOT, "tests", "golden"), module=a.module, threads=a.threads, ckpt=ckpt, wav=wav, label=label, out=os.path.join(tmp, "torch.wav"), cond=cond)],
        "aural": [os.path.join(ROOT, "target", "release", "aural"), "separate", "--model", ckpt, wav, "--label", label, "--out", os.path.join(tmp, "aural"), "--device", "cpu"] + extra,
    }
    wall = {"torch": [], "aural": []}
    peak = {"torch": [], "aural": []}
    for _ in range(a.job_rounds):
        for who, cmd in cmds.items():
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall[who].append(time.perf_counter() - t0)
            if status != 0:
                sys.exit(f"{who} job failed (status {status}): {' '.join(cmd[:3])} …")
            peak[who].append(ru.ru_maxrss / 1024)
    y_t, _ = sf.read(os.path.join(tmp, "torch.wav"), dtype="float32")
    y_a, _ = sf.read(os.path.join(tmp, "aural", f"mix_{label}.wav"), dtype="float32")
    snr = 10 * np.log10(np.sum(y_t.astype(np.float64) ** 2) / max(np.sum((y_t.astype(np.float64) - y_a) ** 2), 1e-300))
    mt, ma = statistics.median(wall["torch"]), statistics.median(wall["aural"])
    return [
        f"\nwhole job, one process per run (start, load, read WAV, separate 1 label, write WAV), median of {a.job_rounds}:",
        f"  PyTorch {mt:.2f} s, aural separate {ma:.2f} s; aural/PyTorch = {ma / mt:.3f}",
        f"  PyTorch all: {' '.join(f'{t:.2f}' for t in wall['torch'])}; aural all: {' '.join(f'{t:.2f}' for t in wall['aural'])}",
        f"  peak RSS (MB): PyTorch {max(peak['torch']):.0f}, aural {max(peak['aural']):.0f}; output SNR aural vs PyTorch {snr:.1f} dB",
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["baseline", "cpjku"], default="baseline")
    ap.add_argument("--dir", help="default .cache/separator_full (baseline) or .cache/cpjku_full (cpjku)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--job-rounds", type=int, default=3, help="whole-process runs of each side (0: skip)")
    ap.add_argument("--skip-forward", action="store_true", help="only the whole-process comparison")
    a = ap.parse_args()
    name, a.module = ("resunet30_full", "separator") if a.model == "baseline" else ("cpjku_full", "cpjku")
    a.dir = a.dir or os.path.join(ROOT, ".cache", "separator_full" if a.model == "baseline" else "cpjku_full")
    ckpt = os.path.join(a.dir, name)
    io = os.path.join(a.dir, name + "_io.safetensors")
    if not os.path.exists(io):
        os.makedirs(a.dir, exist_ok=True)
        subprocess.check_call([sys.executable, os.path.join(ROOT, "tests", "golden", a.module + ".py"), "--full", a.dir])
    subprocess.check_call(["cargo", "build", "--quiet", "--release", "--example", "separator_speed"], cwd=ROOT)
    exe = os.path.join(ROOT, "target", "release", "examples", "separator_speed")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    torch_src = TORCH_CHILD.format(golden=os.path.join(ROOT, "tests", "golden"), module=a.module, threads=a.threads, ckpt=ckpt, io=io, reps=a.reps)
    if a.skip_forward:
        a.rounds = 0
    times = {"torch": [], "aural": []}
    peak = {"torch": [], "aural": []}
    added = {"torch": [], "aural": []}
    stages = []
    snrs = []
    for r in range(a.rounds):
        for who in ("torch", "aural"):
            if who == "torch":
                lines = run_child([sys.executable, "-c", torch_src], env)
                times[who] += [l["forward_s"] for l in lines if "forward_s" in l]
            else:
                # One warm-up pass, then reps timed (the first line is the warm-up).
                lines = run_child([exe, ckpt, io, str(a.reps + 1)], env)
                passes = [l for l in lines if "forward_s" in l]
                times[who] += [l["forward_s"] for l in passes[1:]]
                stages += [l["stages"] for l in passes[1:]]
                snrs += [l["snr_db"] for l in passes]
            m = [l for l in lines if "peak_rss_mb" in l][0]
            peak[who].append(m["peak_rss_mb"])
            added[who].append(m["peak_rss_mb"] - m["base_rss_mb"])
        print(f"round {r + 1}: torch {statistics.median(times['torch'][-a.reps:]):.2f} s, aural {statistics.median(times['aural'][-a.reps:]):.2f} s", flush=True)
    job = whole_jobs(a, ckpt, io, env) if a.job_rounds > 0 else []
    if a.rounds == 0:
        print("\n".join(job))
        return
    mt, ma = statistics.median(times["torch"]), statistics.median(times["aural"])
    print(f"\nseconds per forward (median of {len(times['torch'])}): PyTorch {mt:.3f}, aural {ma:.3f}; aural/PyTorch = {ma / mt:.3f}")
    print(f"  PyTorch all: {' '.join(f'{t:.2f}' for t in times['torch'])}")
    print(f"  aural   all: {' '.join(f'{t:.2f}' for t in times['aural'])}")
    print(f"peak RSS (MB): PyTorch process {max(peak['torch']):.0f} (its forward adds {max(added['torch']):.0f}), aural process {max(peak['aural']):.0f} (its forward adds {max(added['aural']):.0f})")
    print(f"aural vs PyTorch waveform SNR: {min(snrs):.1f} dB")
    keys = list(stages[0].keys())
    print("aural, where the time goes (median s): " + ", ".join(f"{k} {statistics.median(s[k] for s in stages):.3f}" for k in keys))
    print("\n".join(job))


if __name__ == "__main__":
    main()
