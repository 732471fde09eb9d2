"""Golden fixtures of the audio front end: tests/golden/fixtures/fbank.safetensors.

torchaudio 2.9.1 kaldi fbank with AST's arguments, HF ASTFeatureExtractor for one clip, and
torch.stft / torch.istft (periodic Hann, center=True, reflect). Signals are generated in numpy
(fixed seeds; torchaudio.load would need torchcodec) and stored as f32 next to the outputs.
Run: .venv/bin/python tests/golden/fbank.py
"""
import os

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
from safetensors.torch import save_file
from transformers import ASTFeatureExtractor

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "fbank.safetensors")
SR = 16000
rng = np.random.default_rng(1234)


def fb(wav):
    return kaldi.fbank(torch.from_numpy(wav).unsqueeze(0), htk_compat=True, sample_frequency=16000, use_energy=False,
                       window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)


t = {}
n = SR + 37  # not a multiple of the hop
clips = {
    "noise": (0.3 * rng.standard_normal(n)).astype(np.float32),
    "sweep": (0.5 * np.sin(2 * np.pi * (50 * np.arange(n) / SR + 0.5 * 7900 * (np.arange(n) / SR) ** 2 / (n / SR)))).astype(np.float32),
    "silence": np.zeros(4000, np.float32),
    "short": (0.1 * rng.standard_normal(400 + 159)).astype(np.float32),  # 1 frame, 159-sample tail dropped
}
clips["sweep_noisy"] = (clips["sweep"] + 0.01 * rng.standard_normal(n)).astype(np.float32)
for name, wav in clips.items():
    t[f"{name}/wave"] = torch.from_numpy(wav)
    t[f"{name}/fbank"] = fb(wav).contiguous()
# A pure tone spans ~1e10 of dynamic range across the mel bins: torchaudio's own f32 result is
# then 9e-3 (log) away from its float64 result in the quietest bins. Keep the float64 run as truth.
for name in ["sweep", "sweep_noisy"]:
    t[f"{name}/fbank_f64"] = fb(clips[name].astype(np.float64)).float().contiguous()

# HF's feature extractor on the noise clip (1024 × 128, padded and normalised).
fe = ASTFeatureExtractor()
t["noise/input_values"] = torch.from_numpy(fe(clips["noise"], sampling_rate=SR, return_tensors="np")["input_values"][0]).contiguous()

# STFT / iSTFT on a short 2-channel signal; references computed in float64 from the f32 input.
x = (0.5 * rng.standard_normal((2, 4000))).astype(np.float32)
t["stft/x"] = torch.from_numpy(x)
for n_fft, hop in [(512, 128), (2048, 160)]:
    xd = torch.from_numpy(x).double()
    w = torch.hann_window(n_fft, dtype=torch.float64)
    X = torch.stft(xd, n_fft, hop, window=w, center=True, pad_mode="reflect", return_complex=True)
    t[f"stft/{n_fft}_{hop}/spec"] = torch.stack([X.real, X.imag], dim=1).float().contiguous()  # (C, 2, F, T)
    y = torch.istft(X, n_fft, hop, window=w, center=True, length=x.shape[1])
    t[f"stft/{n_fft}_{hop}/istft"] = y.float().contiguous()

save_file(t, OUT)
print(OUT, os.path.getsize(OUT), "bytes")
