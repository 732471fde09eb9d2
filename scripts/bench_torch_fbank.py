"""Times torchaudio's kaldi fbank (AST's call) on a 10 s 16 kHz clip with 2 threads: the baseline
for `cargo run --release -- bench --op fbank --device cpu`.
Run: .venv/bin/python scripts/bench_torch_fbank.py
"""
import time

import torch
import torchaudio.compliance.kaldi as kaldi

torch.set_num_threads(2)
wav = (0.3 * torch.randn(1, 160000, generator=torch.Generator().manual_seed(0))).float()


def run():
    return kaldi.fbank(wav, htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
                       num_mel_bins=128, dither=0.0, frame_shift=10)


for _ in range(5):
    run()
times = []
t_end = time.perf_counter() + 3.0
while time.perf_counter() < t_end or len(times) < 10:
    t = time.perf_counter()
    run()
    times.append(time.perf_counter() - t)
times.sort()
print(f"torchaudio kaldi fbank, 10 s @ 16 kHz, 2 threads: median {times[len(times) // 2] * 1e3:.3f} ms, "
      f"min {times[0] * 1e3:.3f} ms over {len(times)} reps")
