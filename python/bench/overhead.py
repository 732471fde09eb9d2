"""Side-by-side timings of the Python package, in one process:

1. SoundEventDetector.scores on a 10 s clip from Python vs the same Rust call timed inside Rust
   (`_rust_seconds`: no Python in the loop), alternating, median of each;
2. aural.fbank vs torchaudio.compliance.kaldi.fbank on the same 10 s clip (AST's options: 128 mel
   bins, hanning), alternating, median of each (skipped without torchaudio).

Run: python python/bench/overhead.py [--model DIR] [--reps 20] [--threads N]
"""

import argparse
import os
import statistics
import time

import numpy as np

import aural


def median_time(f, reps):
    t = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        t.append(time.perf_counter() - s)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="AST-SED checkpoint directory (default: the demo model)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(160000) * 0.1).astype(np.float32)
    det = aural.SoundEventDetector(a.model, device="cpu")
    det.scores(x)  # warm-up
    py, rs = [], []
    for _ in range(5):
        py.append(median_time(lambda: det.scores(x), a.reps))
        rs.append(det._rust_seconds(x, a.reps))
    p, r = statistics.median(py), statistics.median(rs)
    print(f"SoundEventDetector.scores, 10 s clip ({det.source}): python {p * 1e3:.3f} ms, rust {r * 1e3:.3f} ms, overhead {100 * (p / r - 1):+.2f} %")
    try:
        import torch
        import torchaudio.compliance.kaldi as kaldi
    except ImportError:
        print("torchaudio not installed: fbank comparison skipped")
        return
    xt = torch.from_numpy(x)[None]
    opts = dict(num_mel_bins=128, window_type="hanning", htk_compat=True, use_energy=False, dither=0.0)
    aural.fbank(x, 16000, **opts)
    kaldi.fbank(xt, sample_frequency=16000, **opts)
    au, ta = [], []
    for _ in range(5):
        au.append(median_time(lambda: aural.fbank(x, 16000, **opts), a.reps))
        ta.append(median_time(lambda: kaldi.fbank(xt, sample_frequency=16000, **opts), a.reps))
    u, t = statistics.median(au), statistics.median(ta)
    print(f"fbank, 10 s at 16 kHz, 128 mel: aural {u * 1e3:.3f} ms, torchaudio {t * 1e3:.3f} ms, ratio {u / t:.3f} (threads: torch {torch.get_num_threads()}, cpus {os.cpu_count()})")


if __name__ == "__main__":
    main()
