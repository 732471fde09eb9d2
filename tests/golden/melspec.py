"""Golden fixtures of the M2D log-mel front end: tests/golden/fixtures/melspec.safetensors.

Run: .venv/bin/python tests/golden/melspec.py   (torch 2.9.1, librosa 0.11; `pip install librosa`)

1. librosa's Slaney mel filter bank, `filters/<case>` (n_mels, n_fft/2 + 1) float32, with
   `filters/<case>/opts` = [sr, n_fft, n_mels, fmin, fmax]:

       librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")

   for M2D's call (32000, 800, 80, 50, 16000), one with n_fft 1024 (16000, 1024, 48, 20, 8000), and
   (22050, 512, 40, 0, 11025), (44100, 400, 40, 300, 8000), (8000, 256, 40, 20, 3800).
2. The log-mel as M2D / the DCASE 2025 task 4 baseline compute it (nnAudio MelSpectrogram: periodic
   Hann, center=True, reflect padding, power 2, the librosa filters, then log(x + eps)), here with
   torch.stft run in float64 on the float32 waveform (the f32 run is printed beside it):

       w = torch.hann_window(win, periodic=True, dtype=torch.float64)
       X = torch.stft(x.double(), n_fft, hop, win_length=win, window=w, center=True, pad_mode="reflect",
                      return_complex=True)
       fb = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                                                 htk=False, norm="slaney")).double()
       out = torch.log(fb @ X.abs() ** 2 + offset)          # (B, n_mels, T), T = 1 + L // hop

   `<case>/wave` (B, L) float32, `<case>/logmel` (B, n_mels, T) float32, `<case>/opts` = [sr, n_fft,
   win, hop, n_mels, fmin, fmax, offset]. M2D settings (32000, 800, 800, 320, 80, 50, 16000,
   1.1920929e-07) for: `batch` (noise and a noisy sweep, 0.25 s + 37 samples), `tone` (a 1 kHz sine),
   `short` (401 samples = n_fft/2 + 1, the shortest reflect padding allows: 2 frames), `silence`
   (log(offset) everywhere); and `win800_nfft1024` (16 kHz, n_fft 1024, win 800 centred, hop 256,
   64 mels, 0–8000 Hz, offset 1e-6).
Signals are generated with numpy (fixed seed).
"""
import os

import librosa
import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "melspec.safetensors")
rng = np.random.default_rng(16)
t = {}

FILTERS = {
    "m2d": (32000, 800, 80, 50.0, 16000.0),
    "sr22k_nfft512": (22050, 512, 40, 0.0, 11025.0),
    "nfft1024": (16000, 1024, 48, 20.0, 8000.0),
    "sr44k_band": (44100, 400, 40, 300.0, 8000.0),
    "sr8k_small": (8000, 256, 40, 20.0, 3800.0),
}
for name, (sr, n_fft, n_mels, fmin, fmax) in FILTERS.items():
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")
    assert fb.dtype == np.float32
    t[f"filters/{name}"] = torch.from_numpy(fb).contiguous()
    t[f"filters/{name}/opts"] = torch.tensor([sr, n_fft, n_mels, fmin, fmax], dtype=torch.float32)


def logmel(wav, sr, n_fft, win, hop, n_mels, fmin, fmax, offset, dtype):
    x = torch.from_numpy(wav).to(dtype)
    w = torch.hann_window(win, periodic=True, dtype=dtype)
    X = torch.stft(x, n_fft, hop, win_length=win, window=w, center=True, pad_mode="reflect", return_complex=True)
    fb = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                                              norm="slaney")).to(dtype)
    return torch.log(fb @ X.abs() ** 2 + offset)


M2D = (32000, 800, 800, 320, 80, 50.0, 16000.0, float(np.finfo(np.float32).eps))
n = 8000 + 37
tt = np.arange(n) / 32000
sweep = 0.4 * np.sin(2 * np.pi * (60 * tt + 0.5 * 15000 * tt**2 / tt[-1]))
CASES = {
    "batch": (np.stack([0.3 * rng.standard_normal(n), sweep + 0.01 * rng.standard_normal(n)]), M2D),
    "tone": (0.5 * np.sin(2 * np.pi * 1000 * np.arange(4800) / 32000)[None], M2D),
    "short": (0.2 * rng.standard_normal((1, 401)), M2D),
    "silence": (np.zeros((1, 3200)), M2D),
    "win800_nfft1024": ((0.2 * rng.standard_normal(6000) + 0.3 * np.sin(2 * np.pi * 440 * np.arange(6000) / 16000))[None],
                        (16000, 1024, 800, 256, 64, 0.0, 8000.0, 1e-6)),
}
for name, (wav, o) in CASES.items():
    wav = wav.astype(np.float32)
    ref = logmel(wav, *o, torch.float64)
    f32 = logmel(wav, *o, torch.float32)
    print(f"{name}: {tuple(ref.shape)}, torch f32 vs f64 max |Δ log| = {(f32.double() - ref).abs().max().item():.2e}")
    t[f"{name}/wave"] = torch.from_numpy(wav).contiguous()
    t[f"{name}/logmel"] = ref.float().contiguous()
    t[f"{name}/opts"] = torch.tensor(o, dtype=torch.float32)

save_file(t, OUT)
print(OUT, os.path.getsize(OUT), "bytes")
