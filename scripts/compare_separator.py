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

Run: .venv/bin/python scripts/compare_separator.py [--rounds 3] [--reps 2] [--dir DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH_CHILD = r"""
import json, resource, sys, time
import torch
from safetensors.torch import load_file
sys.path.insert(0, {golden!r})
import separator as ref
torch.set_num_threads({threads})
cfg = json.load(open({ckpt!r} + "/config.json"))
model = ref.Separator(cfg)
sd = load_file({ckpt!r} + "/model.safetensors")
model.load_state_dict(sd, strict=False)
model.eval()
io = load_file({io!r})
mix, lab = io["mixture"], io["label_vector"]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, ".cache", "separator_full"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ckpt = os.path.join(a.dir, "resunet30_full")
    io = os.path.join(a.dir, "resunet30_full_io.safetensors")
    if not os.path.exists(io):
        os.makedirs(a.dir, exist_ok=True)
        subprocess.check_call([sys.executable, os.path.join(ROOT, "tests", "golden", "separator.py"), "--full", a.dir])
    subprocess.check_call(["cargo", "build", "--quiet", "--release", "--example", "separator_speed"], cwd=ROOT)
    exe = os.path.join(ROOT, "target", "release", "examples", "separator_speed")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    torch_src = TORCH_CHILD.format(golden=os.path.join(ROOT, "tests", "golden"), threads=a.threads, ckpt=ckpt, io=io, reps=a.reps)
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
    mt, ma = statistics.median(times["torch"]), statistics.median(times["aural"])
    print(f"\nseconds per forward (median of {len(times['torch'])}): PyTorch {mt:.3f}, aural {ma:.3f}; aural/PyTorch = {ma / mt:.3f}")
    print(f"  PyTorch all: {' '.join(f'{t:.2f}' for t in times['torch'])}")
    print(f"  aural   all: {' '.join(f'{t:.2f}' for t in times['aural'])}")
    print(f"peak RSS (MB): PyTorch process {max(peak['torch']):.0f} (its forward adds {max(added['torch']):.0f}), aural process {max(peak['aural']):.0f} (its forward adds {max(added['aural']):.0f})")
    print(f"aural vs PyTorch waveform SNR: {min(snrs):.1f} dB")
    keys = list(stages[0].keys())
    print("aural, where the time goes (median s): " + ", ".join(f"{k} {statistics.median(s[k] for s in stages):.3f}" for k in keys))


if __name__ == "__main__":
    main()
