"""PyTorch reference of the DCASE 2025 task 4 baseline's tagger M2dAt (DESIGN.md §6.4) and its golden fixtures.

An independent compact implementation written from the baseline's behaviour (nttcslab/
dcase2025_task4_baseline, src/models/m2dat/{m2dat.py, portable_m2d.py}; read for facts, no code taken).
State-dict names are those of the baseline's M2dAt module (Lightning's `model.` prefix removed), less the
nnAudio front end's fixed `to_spec.*` buffers; scripts/convert_m2d_ckpt.py turns the real checkpoints into
this layout. Small widths keep the fixtures small; the front end and the patch geometry are the real ones.

Reference semantics (eval mode; where each is read in the baseline):
- input (B, C, L) 32 kHz → channel ref_channel = 0 (M2dAt.forward: batch_audio[:, self.ref_channel, :];
  `predict` takes channel 0 too); a (B, L) input is used as is.
- front end (portable_m2d.get_to_melspec, sr '32k'; nnAudio.features.MelSpectrogram(sr=32000, n_fft=800,
  win_length=800, hop_length=320, n_mels=80, fmin=50, fmax=16000, center=True, power=2); nnAudio defaults
  window 'hann' = scipy get_window(fftbins=True) = periodic, pad_mode 'reflect', htk=False, norm=1 =
  Slaney area normalisation): here torch.stft(n_fft 800, hop 320, periodic Hann, center=True, reflect) →
  re² + im² (401 bins × T, T = 1 + L // 320) → librosa.filters.mel(sr=32000, n_fft=800, n_mels=80,
  fmin=50, fmax=16000, htk=False, norm='slaney') (float32 in the f32 model, float64 in the f64 one) @ power
  → log(x + 1.1920929e-07) (to_log_mel_spec: torch.finfo().eps of the default dtype, float32, also in the
  f64 reference) → (x − mean) / std with (mean, std) = backbone.norm_stats (normalize_batch; the baseline
  reads them from the weights into cfg.mean / cfg.std) → (B, 1, 80, T).
  (nnAudio computes the STFT as conv1d with the windowed DFT matrices and squares sqrt(re² + im²); checked
  against this front end with --baseline.)
- encode_lms: n_chunk = ceil(T / 1001) from the unpadded T; the normalised map is zero-padded AFTER
  normalisation at the end of time to a multiple of 16 frames; chunk i = frames [1001·i, 1001·(i+1)) of the
  padded map (the last one shorter). Each chunk → forward_encoder (LocalViT.forward_encoder):
  patch_embed.proj = Conv2d(1, D, 16, stride 16) over (80 mel × frames) → (B, D, 5, t′), t′ = ⌊frames/16⌋
  (the frames past the last whole patch are ignored: 9 of a full 1001-frame unit) → flatten
  frequency-major (token f·t′ + t) → + pos_embed[:, 1:], which, when the chunk has fewer than 5·62
  tokens, is cut per frequency row: reshape (1, 5, 62, D)[:, :, :t′] → prepend cls_token + pos_embed[:, :1]
  → blocks (timm pre-LN: x + attn(norm1 x); x + mlp(norm2 x); LayerNorm eps 1e-6; qkv Linear(D, 3D) with
  bias, split (3, heads, D/heads), softmax(q·kᵀ/√(D/heads))·v, proj; mlp fc1 → exact GELU → fc2) →
  backbone.norm → drop the cls token (emb[..., 1:, :]).
  Flat features (the head's input = D; the baseline's case: PortableM2D sets flat_features when the
  weight file's module.head.mlp.mlp.0.weight is D wide, as the AS-FT file's is): the chunks' tokens are
  concatenated and averaged over all tokens ("x.mean(1)"; a short chunk has fewer tokens, so less weight).
  Non-flat (head input 5·D = 3840 at D = 768): per chunk 'b (f t) d -> b t (f d)', concatenated along time,
  averaged over time.
  A last chunk shorter than 16 frames (e.g. T = 1002…1008, i.e. 320320…322559 samples: padded to 1008,
  leaving it 7 frames) makes the baseline fail: torch's Conv2d refuses an input smaller than its kernel
  (so does this reference). Skipping such a chunk (it could hold no whole patch) is the natural extension.
- head (M2dAt.forward): head_norm = BatchNorm1d(width, affine=False) with running statistics, eps 1e-5 →
  head = Linear(width, 18) → sigmoid.

State-dict names (checked against the baseline's M2dAt built from its code, timm 1.0.31, see --baseline):
backbone.cls_token (1, 1, D), backbone.pos_embed (1, 1 + 5·62, D), backbone.norm_stats (2,) = (mean, std),
backbone.patch_embed.proj.{weight (D, 1, 16, 16), bias}, backbone.blocks.{i}.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}.{weight, bias}, backbone.norm.{weight, bias}, head_norm.{running_mean,
running_var, num_batches_tracked}, head.{weight, bias}. The baseline's M2dAt.state_dict() has these plus
to_spec.{mel_basis, stft.wsin, stft.wcos} (nnAudio's fixed buffers).

Fixtures (tests/golden/fixtures/), torch 2.9.1 CPU, 1 thread, all f32:
  m2d_small/{config.json, model.safetensors}  D 64, depth 2, heads 4, MLP 256, 18 classes, flat head (64);
      config.json = {"architecture": "m2d_at", "classes": [18 DCASE classes], "sample_rate": 32000,
      "n_fft": 800, "win_length": 800, "hop_length": 320, "n_mels": 80, "f_min": 50.0, "f_max": 16000.0,
      "norm_mean": -6.9, "norm_std": 4.4, "input_size": [80, 1001], "patch_size": [16, 16], "embed_dim": 64,
      "depth": 2, "num_heads": 4, "mlp_ratio": 4.0, "layer_norm_eps": 1e-6, "threshold": 0.5,
      "nevent_range": [1, 3], "ref_channel": 0}; model.safetensors holds head_norm.num_batches_tracked
      (int64 scalar) as the real state dict does — a loader must ignore it.
  m2d_small_3840/  the same backbone with a 5·D = 320-wide head (head_norm and head re-drawn); no
      num_batches_tracked. The head width tells the two apart (config.json is the same).
  m2d_small_io.safetensors  (metadata "waves": how they were made)
      wave_10s (1, 320000), wave_4s (1, 128000): channel 0 (= ref_channel; the model never reads the other
          three) of deterministic 4-channel mixtures (make_mixture: coloured noise, beeps, a chirp, clicks,
          a harmonic tone with vibrato, a noise burst, and 0.2 s of exact digital zeros); the probabilities
          below were computed from the 4-channel mixtures and checked equal to those of channel 0 alone.
          The 13 s case is NOT stored: wave_13s = cat(wave_10s, wave_10s[:, :96000]) along time (416000
          samples → 1301 frames → padded to 1312 → chunks of 1001 and 311 frames → 62 + 19 time patches).
      probs_10s, probs_4s, probs_13s (1, 18): m2d_small's sigmoid outputs;
      probs_10s_3840 (1, 18): m2d_small_3840's on wave_10s;
      log_mel (1, 80, 1001): the normalised log-mel of wave_10s (before padding);
      tokens (1, 311, 64): forward_encoder's output for wave_10s's single unit, after the final norm,
          cls token first;
      features (1, 64): the mean over the 310 patch tokens (head_norm's input).
  Random weights (seed 1; head of the 3840 model seed 2): cls_token N(0, 1), pos_embed N(0, 0.5²),
  norm_stats (-6.9, 4.4), patch conv N(0, 1/256) with bias U(−0.2, 0.2), LayerNorm weights U(0.5, 1.5)
  and biases U(−0.3, 0.3), qkv N(0, 1.5²/D) (peaked attention) with bias U(−0.2, 0.2), proj N(0, 0.7²/D),
  fc1 N(0, 1/D) with bias U(−0.3, 0.3), fc2 N(0, 0.7²/(4D)), other biases U(−0.1, 0.1); head_norm
  running_mean = the features' mean over the three clips + U(−0.3, 0.3) per dimension, running_var =
  U(0.5, 2)·(their spread + 0.01) so normalised features are O(1); head N(0, 2²/width), bias U(−0.5, 0.5).
  f32 vs an f64 recomputation (same weights, inputs cast, mel filters built in f64): max |Δp| printed per
  case — measured 10 s 7.1e-7, 4 s 5.4e-7, 13 s 5.4e-7, 3840 4.7e-7; log_mel 3.6e-6 (values in
  [−2.06, 2.32]; −2.06 = the digital-silence frames, (log(eps) + 6.9)/4.4), tokens 3.2e-6, features 4.3e-7.
  Full size (--full, D 768, depth 12): probabilities 1.1e-6.
  Sizes: m2d_small/model.safetensors 0.55 MB, m2d_small_3840's 0.57 MB, m2d_small_io 2.19 MB (the two f32 waves alone are
  1.79 MB; the log_mel 0.32 MB).
Also run here: scripts/convert_m2d_ckpt.py on Lightning-style wraps of m2d_small and m2d_small_3840
(`model.` prefix, fake `model.to_spec.*` buffers, num_batches_tracked) and on an M2D weights file
(`module.ar.runtime.backbone.*` + `module.head.norm.*` + `module.head.mlp.mlp.0.*`, in a folder named like
the M2D releases) — each must reproduce the committed directory (num_batches_tracked aside) — plus its
error paths (unknown key, missing tensor, a non-18 head without --classes) and its command line.

--baseline GITDIR (optional; needs timm, einops, nnAudio): extracts src/models/m2dat/{m2dat.py,
portable_m2d.py} from the mirrored baseline repository (a bare git dir) into a temporary package, builds
M2dAt(weight_file, num_classes=18, ref_channel=0) from full-size random M2D weights files written in the
EVAR layout (with a 768-wide 527-class AudioSet head → flat features; without a head → 3840-wide head)
and compares: its state_dict key set and shapes with this model's (to_spec.* aside), its probabilities
with this model's after loading this model's weights into it (10 s, 4 s, 13 s 4-channel mixtures; the 3840
head on 10 s), its nnAudio log-mel with this front end, and the converter on its real Lightning-style
state dict. Measured (timm 1.0.31, nnAudio 0.3.4, einops 0.8.2, torch 2.9.1 CPU): identical names and
shapes (156 tensors with head_norm.num_batches_tracked), plus on their side to_spec.mel_basis (80, 401),
to_spec.stft.wsin / wcos (401, 1, 800) and to_spec.stft.window_mask (1, 800, 1); nnAudio's normalised
log-mel vs this front end max |Δ| 6.1e-6; probabilities max |Δ| 8.3e-7 (10 s), 2.0e-6 (4 s), 1.1e-6
(13 s), 1.8e-6 (3840 head). (The baseline normalises with cfg.mean / cfg.std read from the M2D weight
file when it is built; the Lightning checkpoint's backbone.norm_stats is that same frozen tensor.)

Run:  .venv/bin/python tests/golden/m2d.py                  (writes the fixtures, runs the checks)
      .venv/bin/python tests/golden/m2d.py --full DIR       (full-size random M2dAt: D 768, depth 12,
            heads 12: DIR/m2d_full/{config.json, model.safetensors} and DIR/m2d_full_io.safetensors with
            wave_10s (1, 320000), log_mel, tokens (1, 311, 768), features (1, 768), probs_10s (1, 18) and
            seconds_per_forward (1,) (torch's time for one 10 s clip here); not committed, for timing)
      .venv/bin/python tests/golden/m2d.py --baseline /work/.mirror/nttcslab+dcase2025_task4_baseline/repo
"""
import argparse
import copy
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import librosa
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(HERE, "fixtures")
CONVERTER = os.path.join(REPO, "scripts", "convert_m2d_ckpt.py")

CLASSES = ["AlarmClock", "BicycleBell", "Blender", "Buzzer", "Clapping", "Cough", "CupboardOpenClose",
           "Dishes", "Doorbell", "FootSteps", "HairDryer", "MechanicalFans", "MusicalKeyboard", "Percussion",
           "Pour", "Speech", "Typing", "VacuumCleaner"]
SR = 32000
EPS = float(torch.finfo(torch.float32).eps)
NORM_STATS = (-6.9, 4.4)
WAVES_NOTE = ("channel 0 (ref_channel) of deterministic 4-channel 32 kHz mixtures (tests/golden/m2d.py "
              "make_mixture seeds 10 and 4); the 13 s case is wave_13s = cat(wave_10s, wave_10s[:, :96000])")


def f32_json(v):
    v32 = np.float32(v)
    out = float(str(v32))
    assert np.float32(out) == v32
    return out


def make_config(d, depth, heads, norm_stats=NORM_STATS):
    return {"architecture": "m2d_at", "classes": CLASSES, "sample_rate": SR, "n_fft": 800, "win_length": 800,
            "hop_length": 320, "n_mels": 80, "f_min": 50.0, "f_max": 16000.0,
            "norm_mean": f32_json(norm_stats[0]), "norm_std": f32_json(norm_stats[1]),
            "input_size": [80, 1001], "patch_size": [16, 16], "embed_dim": d, "depth": depth,
            "num_heads": heads, "mlp_ratio": 4.0, "layer_norm_eps": 1e-6, "threshold": 0.5,
            "nevent_range": [1, 3], "ref_channel": 0}


# ---------------------------------------------------------------------------------------------- model
class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        w = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), dim=-1)
        return self.proj((w @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d, heads, hidden, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, d, patch):
        super().__init__()
        self.proj = nn.Conv2d(1, d, patch, stride=patch)


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["embed_dim"]
        (mels, frames), (ph, pw) = cfg["input_size"], cfg["patch_size"]
        self.fbins, self.tpatch = mels // ph, (frames - pw) // pw + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.fbins * self.tpatch, d))
        self.norm_stats = nn.Parameter(torch.tensor(NORM_STATS), requires_grad=False)
        self.patch_embed = PatchEmbed(d, (ph, pw))
        hidden = round(cfg["mlp_ratio"] * d)
        self.blocks = nn.ModuleList(Block(d, cfg["num_heads"], hidden, cfg["layer_norm_eps"]) for _ in range(cfg["depth"]))
        self.norm = nn.LayerNorm(d, eps=cfg["layer_norm_eps"])

    def forward_unit(self, x):
        """(B, 1, mels, frames ≤ unit) → (B, 1 + fbins·t′, D), cls token first."""
        p = self.patch_embed.proj(x)
        b, d, fb, tp = p.shape
        tok = p.flatten(2).transpose(1, 2)
        pos = self.pos_embed[:, 1:].reshape(1, self.fbins, self.tpatch, d)[:, :, :tp].reshape(1, fb * tp, d)
        tok = tok + pos
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, tok], 1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class M2dAt(nn.Module):
    def __init__(self, cfg, stacked=False):
        super().__init__()
        self.cfg, self.stacked = cfg, stacked
        self.backbone = Backbone(cfg)
        width = cfg["embed_dim"] * (self.backbone.fbins if stacked else 1)
        self.head_norm = nn.BatchNorm1d(width, affine=False)
        self.head = nn.Linear(width, len(cfg["classes"]))
        self.eval()

    def log_mel(self, wave):
        """(B, C, L) or (B, L) → normalised log-mel (B, 1, mels, 1 + L // hop)."""
        c = self.cfg
        if wave.dim() == 3:
            wave = wave[:, c["ref_channel"]]
        dt = self.backbone.pos_embed.dtype
        wave = wave.to(dt)
        win = torch.hann_window(c["win_length"], periodic=True, dtype=dt)
        spec = torch.stft(wave, c["n_fft"], c["hop_length"], c["win_length"], window=win, center=True,
                          pad_mode="reflect", return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2
        mel = librosa.filters.mel(sr=c["sample_rate"], n_fft=c["n_fft"], n_mels=c["n_mels"], fmin=c["f_min"],
                                  fmax=c["f_max"], htk=False, norm="slaney",
                                  dtype=np.float64 if dt == torch.float64 else np.float32)
        x = torch.log(torch.from_numpy(mel) @ power + EPS)
        mean, std = self.backbone.norm_stats
        return ((x - mean) / std).unsqueeze(1)

    def encode(self, lms, units=None):
        """Normalised (B, 1, mels, T) → tokens (B, N, D) (flat) or (B, t, fbins·D) (stacked)."""
        unit, pw = self.cfg["input_size"][1], self.cfg["patch_size"][1]
        n_chunk = -(-lms.shape[-1] // unit)
        x = F.pad(lms, (0, (-lms.shape[-1]) % pw))
        out = []
        for i in range(n_chunk):
            tok = self.backbone.forward_unit(x[..., i * unit:(i + 1) * unit])
            if units is not None:
                units.append(tok)
            tok = tok[:, 1:]
            if self.stacked:
                b, n, d = tok.shape
                f = self.backbone.fbins
                tok = tok.reshape(b, f, n // f, d).permute(0, 2, 1, 3).reshape(b, n // f, f * d)
            out.append(tok)
        return torch.cat(out, 1)

    def forward(self, wave, trace=None):
        lms = self.log_mel(wave)
        units = [] if trace is not None else None
        feats = self.encode(lms, units).mean(1)
        probs = torch.sigmoid(self.head(self.head_norm(feats)))
        if trace is not None:
            trace.update(log_mel=lms[:, 0], tokens=units[0], features=feats)
        return probs


# ---------------------------------------------------------------------------------------------- data
def randomize(model, seed, norm_stats=NORM_STATS, only_head=False):
    g = torch.Generator().manual_seed(seed)
    d = model.cfg["embed_dim"]

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    def n(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        s = t.shape
        if only_head and name.startswith("backbone."):
            continue
        if name.startswith("head_norm."):
            continue
        if name == "backbone.cls_token":
            v = n(s, 1.0)
        elif name == "backbone.pos_embed":
            v = n(s, 0.5)
        elif name == "backbone.norm_stats":
            v = torch.tensor(norm_stats, dtype=torch.float64)
        elif name == "backbone.patch_embed.proj.weight":
            v = n(s, 1.0 / math.sqrt(s[2] * s[3]))
        elif name == "backbone.patch_embed.proj.bias":
            v = u(s, -0.2, 0.2)
        elif ".norm" in name or name.startswith("backbone.norm."):
            v = u(s, 0.5, 1.5) if name.endswith("weight") else u(s, -0.3, 0.3)
        elif name.endswith("attn.qkv.weight"):
            v = n(s, 1.5 / math.sqrt(d))
        elif name.endswith("attn.qkv.bias"):
            v = u(s, -0.2, 0.2)
        elif name.endswith("attn.proj.weight"):
            v = n(s, 0.7 / math.sqrt(d))
        elif name.endswith("mlp.fc1.weight"):
            v = n(s, 1.0 / math.sqrt(d))
        elif name.endswith("mlp.fc1.bias"):
            v = u(s, -0.3, 0.3)
        elif name.endswith("mlp.fc2.weight"):
            v = n(s, 0.7 / math.sqrt(s[1]))
        elif name == "head.weight":
            v = n(s, 2.0 / math.sqrt(s[1]))
        elif name == "head.bias":
            v = u(s, -0.5, 0.5)
        elif name.endswith(".bias"):
            v = u(s, -0.1, 0.1)
        else:
            raise AssertionError(f"no rule for {name}")
        new[name] = v.to(t.dtype)
    model.load_state_dict(new, strict=False)
    return g


def calibrate_head_norm(model, g, waves):
    """running stats near the features' own statistics (randomly off), so head inputs are O(1)."""
    with torch.no_grad():
        feats = torch.cat([model.encode(model.log_mel(w)).mean(1) for w in waves]).double()
    width = feats.shape[1]
    mean = feats.mean(0) + (torch.rand(width, generator=g, dtype=torch.float64) * 0.6 - 0.3)
    spread = feats.var(0, unbiased=False) + 0.01
    var = spread * (torch.rand(width, generator=g, dtype=torch.float64) * 1.5 + 0.5)
    model.head_norm.running_mean.copy_(mean.float())
    model.head_norm.running_var.copy_(var.float())
    model.head_norm.num_batches_tracked.fill_(1234)


def make_mixture(seed, seconds):
    """Deterministic 4-channel 32 kHz test mixture (1, 4, L), float32."""
    g = torch.Generator().manual_seed(seed)
    L = int(round(seconds * SR))
    t = torch.arange(L, dtype=torch.float64) / SR
    rnd = lambda *s: torch.rand(s, generator=g, dtype=torch.float64)

    def coloured(level, slope):
        spec = torch.randn(L // 2 + 1, 2, generator=g, dtype=torch.float64)
        f = torch.fft.rfftfreq(L, 1 / SR, dtype=torch.float64).clamp(min=30.0)
        x = torch.fft.irfft(torch.complex(spec[:, 0], spec[:, 1]) * (f / 30.0) ** (-slope / 2), n=L)
        return x / x.std() * level

    def env(t0, t1, rise=0.01):
        a = ((t - t0) / rise).clamp(0, 1) * ((t1 - t) / rise).clamp(0, 1)
        return a

    x = coloured(0.012, 1.0) + coloured(0.003, 0.0)                        # pink + white floor
    f_beep = 700 + 600 * float(rnd(1))
    for k in range(int(seconds * 2)):                                        # beeps (alarm-like)
        t0 = 0.1 * seconds + 0.25 * k
        if t0 > 0.45 * seconds:
            break
        x += 0.15 * env(t0, t0 + 0.12, 0.005) * (torch.sin(2 * math.pi * f_beep * t)
                                                 + 0.4 * torch.sin(2 * math.pi * 3 * f_beep * t))
    t0, t1 = 0.3 * seconds, 0.55 * seconds                                    # chirp 150 Hz → 9 kHz
    ph = 2 * math.pi * (150 * (t - t0) + 0.5 * (9000 - 150) / (t1 - t0) * (t - t0) ** 2)
    x += 0.1 * env(t0, t1) * torch.sin(ph)
    for _ in range(int(6 * seconds)):                                         # clicks (typing-like)
        c = 0.5 * seconds + 0.45 * seconds * float(rnd(1))
        x += 0.3 * (t >= c) * torch.exp(-(t - c).clamp(min=0) / 0.003) * torch.randn(L, generator=g, dtype=torch.float64) * env(c, c + 0.03, 0.0005)
    f0 = 140 + 60 * torch.sin(2 * math.pi * 3.0 * t)                         # harmonic tone with vibrato
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    tone = sum(torch.sin(h * phase) / h for h in range(1, 12))
    x += 0.08 * env(0.62 * seconds, 0.9 * seconds, 0.05) * tone
    burst = coloured(0.2, 0.5) * env(0.05 * seconds, 0.2 * seconds, 0.1)       # noise burst (hair-dryer-like)
    x += burst
    z0 = int(0.7 * L)                                                         # 0.2 s of digital silence
    x[z0:z0 + int(0.2 * SR)] = 0.0
    chans = [x]
    for c in range(1, 4):                                                     # other microphones: delayed, scaled
        chans.append(torch.roll(x, 3 * c) * (0.9 - 0.1 * c) + coloured(0.005, 1.0))
    return torch.stack(chans)[None].to(torch.float32)


def join_13s(m10):
    return torch.cat([m10, m10[..., :3 * SR]], -1)


def save_checkpoint(model, d, keep_nbt):
    os.makedirs(d, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()
          if keep_nbt or not k.endswith("num_batches_tracked")}
    save_file(sd, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(model.cfg, f, indent=2)
        f.write("\n")
    return sd


def small_models():
    cfg = make_config(64, 2, 4)
    m10, m4 = make_mixture(10, 10.0), make_mixture(4, 4.0)
    m13 = join_13s(m10)
    model = M2dAt(cfg)
    g = randomize(model, 1)
    calibrate_head_norm(model, g, [m10, m4, m13])
    wide = M2dAt(cfg, stacked=True)
    wide.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}, strict=False)
    g = randomize(wide, 2, only_head=True)
    calibrate_head_norm(wide, g, [m10, m4, m13])
    return model, wide, m10, m4, m13


def run_small():
    model, wide, m10, m4, m13 = small_models()
    model64, wide64 = copy.deepcopy(model).double(), copy.deepcopy(wide).double()
    io, io64 = {}, {}
    with torch.no_grad():
        for name, m in (("10s", m10), ("4s", m4), ("13s", m13)):
            tr, tr64 = ({}, {}) if name == "10s" else (None, None)
            p = model(m, trace=tr)
            p0 = model(m[:, 0])
            assert torch.equal(p, p0), "the model must read channel 0 only"
            io["probs_" + name] = p
            io64["probs_" + name] = model64(m.double(), trace=tr64)
            if tr is not None:
                io.update(tr)
                io64.update(tr64)
        io["probs_10s_3840"] = wide(m10)
        io64["probs_10s_3840"] = wide64(m10.double())
        # batch consistency (B = 2) and the 13 s join as the Rust test builds it
        pb = model(torch.cat([m10, m10.flip(-1)]))
        assert torch.allclose(pb[:1], io["probs_10s"], atol=1e-6)
        assert torch.equal(join_13s(m10)[:, 0], torch.cat([m10[:, 0], m10[:, 0, :96000]], -1))
    io["wave_10s"], io["wave_4s"] = m10[:, 0].clone(), m4[:, 0].clone()
    assert io["log_mel"].shape == (1, 80, 1001) and io["tokens"].shape == (1, 311, 64)
    return model, wide, io, io64


# ---------------------------------------------------------------------------------------------- converter
def load_converter():
    spec = importlib.util.spec_from_file_location("convert_m2d_ckpt", CONVERTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_to_spec(prefix):
    return {prefix + "to_spec.mel_basis": torch.zeros(80, 401), prefix + "to_spec.stft.wsin": torch.zeros(401, 1, 8),
            prefix + "to_spec.stft.wcos": torch.zeros(401, 1, 8)}


def m2d_weights_layout(sd):
    """A bare M2dAt state dict → the M2D weights-file (EVAR) layout."""
    out = {}
    for k, v in sd.items():
        if k.startswith("backbone."):
            out["module.ar.runtime.backbone." + k[len("backbone."):]] = v
        elif k.startswith("head_norm."):
            out["module.head.norm." + k[len("head_norm."):]] = v
        elif k.startswith("head."):
            out["module.head.mlp.mlp.0." + k[len("head."):]] = v
    return out


def compare_dir(want_dir, got_dir):
    want = {k: v for k, v in load_file(os.path.join(want_dir, "model.safetensors")).items()
            if not k.endswith("num_batches_tracked")}
    got = load_file(os.path.join(got_dir, "model.safetensors"))
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:10]
    for k in want:
        assert got[k].dtype == torch.float32 and torch.equal(got[k], want[k]), k
    with open(os.path.join(want_dir, "config.json")) as f:
        wc = json.load(f)
    with open(os.path.join(got_dir, "config.json")) as f:
        gc = json.load(f)
    assert gc == wc, (gc, wc)


def expect_error(conv, what, fn):
    try:
        fn()
    except conv.ConvertError as e:
        print(f"converter, expected error ({what}):", e)
        return
    raise AssertionError(f"converter accepted {what}")


def check_converter():
    conv = load_converter()
    small, wide = os.path.join(FIX, "m2d_small"), os.path.join(FIX, "m2d_small_3840")
    quiet = lambda *a: None
    with tempfile.TemporaryDirectory() as tmp:
        p = lambda *a: os.path.join(tmp, *a)
        sd = load_file(os.path.join(small, "model.safetensors"))
        # (a) Lightning: model.<name> + to_spec buffers + num_batches_tracked
        ck = {"epoch": 7, "state_dict": {**{"model." + k: v for k, v in sd.items()}, **fake_to_spec("model.")}}
        torch.save(ck, p("a.ckpt"))
        conv.convert(p("a.ckpt"), p("a"), num_heads=4)
        compare_dir(small, p("a"))
        sdw = load_file(os.path.join(wide, "model.safetensors"))
        torch.save({"state_dict": {"model." + k: v for k, v in sdw.items()}}, p("w.ckpt"))
        conv.convert(p("w.ckpt"), p("w"), num_heads=4)
        compare_dir(wide, p("w"))
        # (b) M2D weights file in a release-named folder, wrapped in 'model'
        rel = p("m2d_as_vit_small-80x1001p16x16p32k-test")
        os.makedirs(rel)
        torch.save({"model": m2d_weights_layout(sd)}, os.path.join(rel, "weights.pth"))
        conv.convert(os.path.join(rel, "weights.pth"), p("b"), num_heads=4)
        compare_dir(small, p("b"))
        # bare M2dAt state dict as safetensors
        conv.convert(os.path.join(small, "model.safetensors"), p("s"), num_heads=4, log=quiet)
        compare_dir(small, p("s"))
        # unknown key: refused, then dropped
        torch.save({**sd, "backbone.extra.weight": torch.zeros(1)}, p("c.pth"))
        expect_error(conv, "an unknown key", lambda: conv.convert(p("c.pth"), p("c"), num_heads=4))
        conv.convert(p("c.pth"), p("c"), num_heads=4, ignore_unknown=True, log=quiet)
        compare_dir(small, p("c"))
        # missing tensor
        sd2 = dict(sd)
        del sd2["backbone.blocks.1.mlp.fc2.bias"]
        torch.save(sd2, p("d.pth"))
        expect_error(conv, "a missing tensor", lambda: conv.convert(p("d.pth"), p("d"), num_heads=4))
        # heads that do not divide D, a 5-class head without --classes, then with them
        expect_error(conv, "num_heads 12 with D 64", lambda: conv.convert(p("a.ckpt"), p("e"), num_heads=12))
        sd5 = {**sd, "head.weight": sd["head.weight"][:5], "head.bias": sd["head.bias"][:5]}
        torch.save(sd5, p("f.pth"))
        expect_error(conv, "a 5-class head without --classes", lambda: conv.convert(p("f.pth"), p("f"), num_heads=4))
        cfg = conv.convert(p("f.pth"), p("f"), num_heads=4, classes="a,b,c,d,e", log=quiet)
        assert cfg["classes"] == ["a", "b", "c", "d", "e"]
        # command line
        r = subprocess.run([sys.executable, CONVERTER, p("a.ckpt"), p("g"), "--num-heads", "4"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        compare_dir(small, p("g"))
        r = subprocess.run([sys.executable, CONVERTER, p("d.pth"), p("h"), "--num-heads", "4"], capture_output=True, text=True)
        assert r.returncode == 1 and "backbone.blocks.1.mlp.fc2.bias" in r.stderr, r.stderr
    print("converter: Lightning / M2D-weights / bare checkpoints reproduce the committed directories")


# ---------------------------------------------------------------------------------------------- full / baseline
def full_model(stacked=False, seed=99):
    cfg = make_config(768, 12, 12)
    m10 = make_mixture(10, 10.0)
    model = M2dAt(cfg, stacked=stacked)
    g = randomize(model, seed)
    calibrate_head_norm(model, g, [m10, make_mixture(4, 4.0)])
    return model, m10


def write_full(out_dir):
    torch.manual_seed(0)
    model, m10 = full_model()
    with torch.no_grad():
        tr = {}
        p = model(m10, trace=tr)
        t0 = time.perf_counter()
        model(m10)
        secs = time.perf_counter() - t0
        p64 = copy.deepcopy(model).double()(m10.double())
    save_checkpoint(model, os.path.join(out_dir, "m2d_full"), keep_nbt=False)
    io = {"wave_10s": m10[:, 0].contiguous(), "probs_10s": p, "seconds_per_forward": torch.tensor([secs]),
          **{k: v.contiguous() for k, v in tr.items()}}
    save_file(io, os.path.join(out_dir, "m2d_full_io.safetensors"), metadata={"waves": WAVES_NOTE})
    n = sum(v.numel() for v in model.state_dict().values())
    print(f"full: {n} parameters, probs {[round(x, 3) for x in p[0].tolist()]}, f32 vs f64 max |Δp| "
          f"{float((p.double() - p64).abs().max()):.2g}, {secs:.2f} s per 10 s clip ({torch.get_num_threads()} "
          f"threads) → {out_dir}")


def check_baseline(gitdir):
    try:
        import einops  # noqa: F401
        import nnAudio  # noqa: F401
        import timm
    except ImportError as e:
        print(f"--baseline skipped: {e} (pip install timm einops nnAudio)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        pkg = os.path.join(tmp, "baseline_m2dat")
        os.makedirs(pkg)
        open(os.path.join(pkg, "__init__.py"), "w").close()
        for f in ("m2dat.py", "portable_m2d.py"):
            src = subprocess.run(["git", "--git-dir", gitdir, "show", f"HEAD:src/models/m2dat/{f}"],
                                 capture_output=True, text=True, check=True).stdout
            with open(os.path.join(pkg, f), "w") as fh:
                fh.write(src)
        sys.path.insert(0, tmp)
        try:
            base = importlib.import_module("baseline_m2dat.m2dat")
        finally:
            sys.path.remove(tmp)
        rel = os.path.join(tmp, "m2d_as_vit_base-80x1001p16x16p32k-test")
        os.makedirs(rel)
        m10, m4 = make_mixture(10, 10.0), make_mixture(4, 4.0)
        m13 = join_13s(m10)
        conv = load_converter()
        for stacked in (False, True):
            mine, _ = full_model(stacked=stacked, seed=7 + stacked)
            sd = mine.state_dict()
            evar = {k: v for k, v in m2d_weights_layout(sd).items() if not k.startswith("module.head.")}
            if not stacked:  # an AudioSet (527-class) EVAR head, D wide → flat features
                evar.update({"module.head.norm.running_mean": sd["head_norm.running_mean"],
                             "module.head.norm.running_var": sd["head_norm.running_var"],
                             "module.head.mlp.mlp.0.weight": torch.randn(527, 768) * 0.02,
                             "module.head.mlp.mlp.0.bias": torch.zeros(527)})
            wf = os.path.join(rel, f"weights_{int(stacked)}.pth")
            torch.save(evar, wf)
            real = base.M2dAt(wf, num_classes=18, ref_channel=0)
            rsd = real.state_dict()
            extra = sorted(k for k in rsd if k not in sd)
            assert all(k.startswith("to_spec.") for k in extra), extra
            assert set(sd) <= set(rsd), sorted(set(sd) - set(rsd))
            for k in sd:
                assert tuple(rsd[k].shape) == tuple(sd[k].shape), (k, rsd[k].shape, sd[k].shape)
            print(f"baseline M2dAt ({'3840' if stacked else 'flat'} head, timm {timm.__version__}): same "
                  f"{len(sd)} names and shapes; its extra: {[(k, tuple(rsd[k].shape)) for k in extra]}")
            real.load_state_dict({**rsd, **sd})
            real.eval()
            with torch.no_grad():
                cases = (("10s", m10),) if stacked else (("10s", m10), ("4s", m4), ("13s", m13))
                for name, m in cases:
                    want = real({"waveform": m.clone()})["probabilities"]
                    got = mine(m)
                    print(f"  {name}: probabilities max |Δ| {float((want - got).abs().max()):.2g}")
                    assert torch.allclose(want, got, atol=2e-5)
                if not stacked:
                    lm = real.to_normalized_feature(m10[:, 0])
                    d = float((lm - mine.log_mel(m10)).abs().max())
                    print(f"  nnAudio log-mel vs torch.stft + librosa: max |Δ| {d:.2g}")
                    assert d < 1e-3
            # the converter on the real Lightning-style state dict and on the EVAR weights file
            torch.save({"state_dict": {"model." + k: v for k, v in rsd.items()}}, os.path.join(tmp, "l.ckpt"))
            conv.convert(os.path.join(tmp, "l.ckpt"), os.path.join(tmp, "l"))
            got = load_file(os.path.join(tmp, "l", "model.safetensors"))
            assert set(got) == {k for k in sd if not k.endswith("num_batches_tracked")}
            assert all(torch.equal(got[k], sd[k]) for k in got)
            if not stacked:
                conv.convert(wf, os.path.join(tmp, "e"), classes=",".join(f"c{i}" for i in range(527)))
                got = load_file(os.path.join(tmp, "e", "model.safetensors"))
                assert torch.equal(got["head.weight"], evar["module.head.mlp.mlp.0.weight"])
                assert torch.equal(got["head_norm.running_var"], sd["head_norm.running_var"])
                assert torch.equal(got["backbone.blocks.11.mlp.fc2.weight"], sd["backbone.blocks.11.mlp.fc2.weight"])


# ---------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="write a full-size random checkpoint + 10 s io file to DIR")
    ap.add_argument("--baseline", metavar="GITDIR", help="cross-check against the baseline's code (bare git dir)")
    args = ap.parse_args()
    if args.full:
        write_full(args.full)
        return
    if args.baseline:
        check_baseline(args.baseline)
        return
    torch.set_num_threads(1)
    model, wide, io, io64 = run_small()
    save_checkpoint(model, os.path.join(FIX, "m2d_small"), keep_nbt=True)
    save_checkpoint(wide, os.path.join(FIX, "m2d_small_3840"), keep_nbt=False)
    io = {k: v.detach().to(torch.float32).contiguous() for k, v in io.items()}
    path = os.path.join(FIX, "m2d_small_io.safetensors")
    save_file(io, path, metadata={"waves": WAVES_NOTE})
    for k in sorted(io64):
        d = float((io[k].double() - io64[k]).abs().max())
        print(f"{k:16s} {tuple(io[k].shape)}: f32 vs f64 max |Δ| {d:.2g}"
              + (f"; probs {[round(x, 3) for x in io[k][0].tolist()]}" if k.startswith("probs") else ""))
    lm = io["log_mel"]
    print(f"log_mel range [{float(lm.min()):.2f}, {float(lm.max()):.2f}], mean {float(lm.mean()):.2f}; "
          f"tokens std {float(io['tokens'].std()):.3f}; features std {float(io['features'].std()):.3f}; "
          f"io file {os.path.getsize(path) / 1e6:.2f} MB")
    check_converter()


if __name__ == "__main__":
    main()
