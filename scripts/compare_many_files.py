"""Many-file jobs measured as a user meets them, from files on disk, side by side in one run.

features: N ten-second 16 kHz 16-bit WAVs (noise, tones and chirps, made here). torchaudio side: one
Python process reads every file (soundfile, int16 → float32 / 32768, as torchaudio.load does) and runs
torchaudio.compliance.kaldi.fbank with AST's arguments; the time of that loop (interpreter start and
imports excluded). aural side: `aural features FILES --out TMP --device cpu`, the wall time of the
whole command (process start and the safetensors write included), writing a new file each run (the
previous one is removed before the timer starts); with --over-existing, over the previous run's output,
as a user re-running a job does: on ext4, renaming a new file over an existing one starts its writeback
in the rename (auto_da_alloc, ~15 ms for 20 MB here), which a new file does not pay. Runs alternate; medians and the
ratio are printed. With --aural-base, an older binary is timed the same way (before/after).

detect: `aural detect --model DIR FILES --device cpu --tsv TMP` on N ten-second files; wall time, files
per second and CPU utilisation of the process (user + system CPU time / wall / cores), overall and
sampled every second from the end of the model load (its `model:` line on stderr) to the end, for
each binary given (--aural, --aural-base) and for --batch 1.

Usage:
  .venv/bin/python scripts/compare_many_files.py features --aural target/release/aural [--aural-base B] [--files 40] [--runs 7]
  .venv/bin/python scripts/compare_many_files.py detect --aural target/release/aural --model DIR [--aural-base B] [--files 100]
(`scripts/compare_detect.py --make-base DIR` writes an AST-base-sized AST-SED with random weights.)
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
import wave

import numpy as np


def make_wavs(d, n, seconds=10.0, rate=16000):
    rng = np.random.default_rng(0)
    paths = []
    t = np.arange(int(seconds * rate)) / rate
    for i in range(n):
        x = 0.05 * rng.standard_normal(t.size)
        for _ in range(3):
            f0, f1 = rng.uniform(200, 4000, 2)
            on = rng.uniform(0, seconds - 1)
            env = ((t > on) & (t < on + rng.uniform(0.3, 3))).astype(float)
            x += 0.3 * env * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))
        pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
        p = os.path.join(d, f"clip_{i:03d}.wav")
        with wave.open(p, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
        paths.append(p)
    return paths


def torch_features(paths):
    import soundfile as sf
    import torch
    import torchaudio

    s = time.perf_counter()
    for p in paths:
        x, r = sf.read(p, dtype="float32")
        w = torch.from_numpy(x).unsqueeze(0)
        torchaudio.compliance.kaldi.fbank(w, htk_compat=True, sample_frequency=r, use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    return time.perf_counter() - s


def aural_features(exe, paths, out, over_existing=False):
    if not over_existing and os.path.exists(out):
        os.remove(out)  # untimed: the run writes a new file
    s = time.perf_counter()
    subprocess.run([exe, "features", *paths, "--out", out, "--device", "cpu"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - s


def features(a):
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        paths = make_wavs(d, a.files)
        out = os.path.join(d, "f.safetensors")
        ow = a.over_existing
        sides = {"torchaudio": lambda: torch_features(paths), "aural": lambda: aural_features(a.aural, paths, out, ow)}
        if a.aural_base:
            sides["aural (base)"] = lambda: aural_features(a.aural_base, paths, out, ow)
        for f in sides.values():
            f()  # warm-up (page cache, lazy init)
        times = {k: [] for k in sides}
        for _ in range(a.runs):
            for k, f in sides.items():
                times[k].append(f())
        how = "replacing the previous run's output" if ow else "each into a new output file"
        print(f"features: {a.files} ten-second 16 kHz 16-bit WAVs, {a.runs} alternating runs, {a.threads} threads, aural {how}")
        tm = statistics.median(times["torchaudio"])
        for k, v in times.items():
            m = statistics.median(v)
            print(f"  {k:14s} median {m * 1000:8.1f} ms  (min {min(v) * 1000:.1f}, max {max(v) * 1000:.1f})  ratio to torchaudio {m / tm:.3f}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def run_detect(exe, model, paths, tsv, extra, cores):
    cmd = [exe, "detect", "--model", model, *paths, "--device", "cpu", "--tsv", tsv, *extra]
    s = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = []

    def watch():
        for line in p.stderr:
            if not first and line.startswith("model:"):
                first.append((time.perf_counter(), cpu_seconds(p.pid)))

    th = threading.Thread(target=watch)
    th.start()
    samples = []
    last = None
    while p.poll() is None:
        time.sleep(1.0)
        try:
            now = (time.perf_counter(), cpu_seconds(p.pid))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            break
        if first and last is not None and last[0] >= first[0][0]:
            samples.append((now[1] - last[1]) / (now[0] - last[0]) / cores)
        last = now
    end_cpu = last[1] if last else 0.0
    p.wait()
    th.join()
    wall = time.perf_counter() - s
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} detect failed ({p.returncode})")
    t0, c0 = first[0] if first else (s, 0.0)
    run_wall = last[0] - t0 if last else wall
    util = (end_cpu - c0) / max(run_wall, 1e-9) / cores
    return wall, util, samples


def detect(a):
    cores = a.threads
    env_note = f"RAYON_NUM_THREADS unset, {os.cpu_count()} CPUs"
    with tempfile.TemporaryDirectory() as d:
        paths = make_wavs(d, a.files)
        tsv = os.path.join(d, "e.tsv")
        runs = [("aural", a.aural, [])]
        runs.append(("aural --batch 1", a.aural, ["--batch", "1"]))
        if a.aural_base:
            runs.append(("aural (base)", a.aural_base, []))
        print(f"detect: {a.files} ten-second files, model {a.model}, {env_note}")
        for name, exe, extra in runs:
            wall, util, samples = run_detect(exe, a.model, paths, tsv, extra, cores)
            s = sorted(samples)
            pct = (lambda q: s[min(len(s) - 1, int(q * len(s)))] if s else float("nan"))
            print(
                f"  {name:16s} wall {wall:7.1f} s  {a.files / wall:6.3f} files/s  CPU busy (first file → end) {util * 100:5.1f} %"
                f"  per-second samples: min {pct(0) * 100:5.1f} %, p10 {pct(0.1) * 100:5.1f} %, median {pct(0.5) * 100:5.1f} % ({len(s)} samples)"
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["features", "detect"])
    ap.add_argument("--aural", required=True)
    ap.add_argument("--aural-base")
    ap.add_argument("--model")
    ap.add_argument("--files", type=int)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--over-existing", action="store_true", help="features: aural writes over the previous run's output")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if a.what == "features":
        a.files = a.files or 40
        features(a)
    else:
        if not a.model:
            raise SystemExit("detect needs --model DIR")
        a.files = a.files or 100
        detect(a)


if __name__ == "__main__":
    main()
