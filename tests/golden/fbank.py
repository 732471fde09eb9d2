"""Golden fixtures of the audio front end: tests/golden/fixtures/fbank.safetensors.

torchaudio 2.9.1 kaldi fbank with AST's arguments, HF ASTFeatureExtractor for one clip, and
torch.stft / torch.istft (periodic Hann, center=True, reflect). Signals are generated in numpy
(fixed seeds; torchaudio.load would need torchcodec) and stored as f32 next to the outputs.
Also fbank_opts.safetensors: kaldi fbank with other options (sample rates 8–44.1 kHz, every window,
frame sizes that are not a power of two, low/high frequency edges, no pre-emphasis, no DC removal,
and an FFT bin lying exactly on a triangle's edge), each on a short noise + tone clip; the reference is
torchaudio run on the float64 waveform (its f32 mel bank, f64 FFT), `<case>/opts` holds the options.
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

# Other options. opts = [sample_rate, num_mel_bins, frame_length ms, frame_shift ms, preemphasis,
# low_freq, high_freq, window (0 hanning, 1 hamming, 2 povey, 3 rectangular, 4 blackman), remove_dc_offset,
# round_to_power_of_two].
WINDOWS = ["hanning", "hamming", "povey", "rectangular", "blackman"]
CASES = {
    "edge_8k": [8000, 40, 10.0, 5.0, 0.5, 100.0, 3000.0, 2, 1, 0],  # n_fft 80: bin 1 = 100 Hz = filter 0's left edge
    "rect_22k": [22050, 64, 50.0, 20.0, 0.97, 20.0, 10025.0, 3, 0, 0],  # n_fft 1102
    "hamming_44k": [44100, 80, 20.0, 5.0, 0.97, 20.0, -400.0, 1, 1, 1],  # 882 → 1024
    "hanning_16k_23": [16000, 23, 32.0, 12.5, 0.0, 0.0, 7000.0, 0, 1, 1],
    "povey_11k": [11025, 40, 10.0, 10.0, 0.5, 20.0, 0.0, 2, 0, 0],  # n_fft 110
    "hamming_16k_nodc": [16000, 64, 25.0, 10.0, 0.97, 20.0, 0.0, 1, 0, 1],
    "blackman_16k": [16000, 80, 25.0, 10.0, 0.97, 50.0, -200.0, 4, 1, 1],
    "blackman_48k": [48000, 128, 25.0, 10.0, 0.97, 20.0, 0.0, 4, 1, 0],  # n_fft 1200
}
OUT2 = os.path.join(os.path.dirname(__file__), "fixtures", "fbank_opts.safetensors")
t2 = {}
for name, o in CASES.items():
    sr = o[0]
    n = int(0.3 * sr) + 11
    tt = np.arange(n) / sr
    wav = (0.2 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 0.11 * sr * tt)).astype(np.float32)
    ref = kaldi.fbank(torch.from_numpy(wav.astype(np.float64)).unsqueeze(0), sample_frequency=float(sr), num_mel_bins=o[1],
                      frame_length=o[2], frame_shift=o[3], preemphasis_coefficient=o[4], low_freq=o[5], high_freq=o[6],
                      window_type=WINDOWS[o[7]], remove_dc_offset=bool(o[8]), round_to_power_of_two=bool(o[9]),
                      dither=0.0, use_energy=False, htk_compat=True)
    t2[f"{name}/opts"] = torch.tensor(o, dtype=torch.float32)
    t2[f"{name}/wave"] = torch.from_numpy(wav)
    t2[f"{name}/fbank"] = ref.float().contiguous()
save_file(t2, OUT2)
print(OUT2, os.path.getsize(OUT2), "bytes")
