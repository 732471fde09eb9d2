"""Times HF transformers' ASTModel (PyTorch, CPU, 2 threads) and aural on the same clip, in one run.

Usage: .venv/bin/python scripts/compare_torch.py [--model DIR] [--reps N] [--rounds R] [--aural PATH] [--torch-bf16]

Without --model, an AST-base ASTModel with random weights (HF's init) is saved to a temporary directory
and both sides load that. The clip is 10 s of deterministic noise + tones at 16 kHz (1024 frames). PyTorch's
input comes from ASTFeatureExtractor, aural's from its own fbank (`aural embed` does it all); only the
model forward is timed on both sides (median of N after a warm-up; R alternating rounds, because the
machine is shared). aural runs `aural embed --profile N --device cpu` with RAYON_NUM_THREADS=2 and prints
its per-op breakdown; the outputs are compared too (max abs difference of last_hidden_state).
With --torch-bf16, PyTorch's own bf16 (torch.autocast on the CPU) is timed in the same rounds, with the
relative (Frobenius) difference of its last_hidden_state to f32: what bf16 gives on this CPU.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import ASTConfig, ASTFeatureExtractor, ASTModel


def write_wav(path, x, sr=16000):
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def time_torch(model, x, reps, bf16=False):
    # bf16: PyTorch's own mixed precision on the CPU (autocast: matmuls in bf16, f32 accumulation)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with torch.no_grad(), ctx:
        model(x)
        ts = []
        c0 = time.process_time()
        for _ in range(reps):
            t = time.perf_counter()
            y = model(x).last_hidden_state
            ts.append(time.perf_counter() - t)
        cpu = (time.process_time() - c0) / reps
    return float(np.median(ts)), min(ts), cpu, y[0].float().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="HF AST checkpoint dir (default: random AST-base)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--torch-bf16", action="store_true", help="also time PyTorch under torch.autocast('cpu', dtype=torch.bfloat16) and report its accuracy against f32")
    ap.add_argument("--aural", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "aural"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    tmp = tempfile.mkdtemp(prefix="aural_cmp_")
    if a.model:
        model = ASTModel.from_pretrained(a.model)
        mdir = a.model
    else:
        torch.manual_seed(0)
        model = ASTModel(ASTConfig())
        mdir = os.path.join(tmp, "ast")
        model.save_pretrained(mdir)
    model.eval()
    rng = np.random.default_rng(0)
    t = np.arange(160000) / 16000
    sig = 0.1 * rng.standard_normal(160000) + 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
    wav = os.path.join(tmp, "clip.wav")
    pcm = write_wav(wav, sig)
    fe = ASTFeatureExtractor()
    x = fe(pcm, sampling_rate=16000, return_tensors="pt")["input_values"]
    out = os.path.join(tmp, "emb.safetensors")
    cmd = [a.aural, "embed", "--model", mdir, wav, "--out", out, "--device", "cpu", "--profile", str(a.reps)]
    env = dict(os.environ, RAYON_NUM_THREADS="2")
    tt, ta, ct, ca, tb = [], [], [], [], []
    for r in range(a.rounds):
        med, mn, cpu, y_torch = time_torch(model, x, a.reps)
        tt.append(med)
        ct.append(cpu)
        print(f"round {r}: pytorch {torch.__version__} (2 threads) forward: median {med:.3f} s, min {mn:.3f} s, {cpu:.3f} CPU-s")
        if a.torch_bf16:
            bmed, bmn, bcpu, y_bf16 = time_torch(model, x, a.reps, bf16=True)
            tb.append(bmed)
            rel = np.linalg.norm(y_bf16 - y_torch) / np.linalg.norm(y_torch)
            print(f"round {r}: pytorch bf16 autocast forward: median {bmed:.3f} s, min {bmn:.3f} s, {bcpu:.3f} CPU-s; "
                  f"last_hidden_state relative Frobenius difference to f32 {rel:.2e}; bf16/f32 = {bmed / med:.2f}")
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"aural failed:\n{p.stderr}")
        m = re.search(r"aural forward: median ([0-9.]+) s, min ([0-9.]+) s", p.stdout)
        ta.append(float(m.group(1)))
        c = re.search(r"([0-9.]+) CPU-seconds per run", p.stdout)
        ca.append(float(c.group(1)) if c else float("nan"))
        print(f"round {r}: aural (2 threads) forward: median {m.group(1)} s, min {m.group(2)} s, {ca[-1]:.3f} CPU-s")
    print("\n".join(l for l in p.stdout.splitlines() if not l.startswith("aural forward")))
    y = load_file(out)["last_hidden_state"]
    print(f"max |aural − torch| of last_hidden_state: {np.abs(y - y_torch).max():.2e} (inputs differ by fbank rounding)")
    t_med, a_med = float(np.median(tt)), float(np.median(ta))
    print(f"pytorch {t_med:.3f} s, aural {a_med:.3f} s, aural/pytorch = {a_med / t_med:.2f} (wall, median of rounds)")
    if tb:
        print(f"pytorch bf16 autocast {float(np.median(tb)):.3f} s, f32 {t_med:.3f} s: bf16/f32 = {float(np.median(tb)) / t_med:.2f}")
    c_t, c_a = float(np.median(ct)), float(np.median(ca))
    print(f"CPU time per forward: pytorch {c_t:.3f} s, aural {c_a:.3f} s, aural/pytorch = {c_a / c_t:.2f} (robust to other load)")


if __name__ == "__main__":
    main()
