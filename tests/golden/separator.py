"""PyTorch reference of the ResUNet30 separator (DESIGN.md §6.5) and its golden fixtures.

Covers the DCASE 2025 task 4 baseline's ResUNet30 (4 microphone channels in, `out_conv` 4→1, label
conditioning), its ResUNetK variant (target_sources_num 3, three concatenated one-hots) and AudioSep's
1-channel ResUNet30 (no out_conv, a given 512-d query). Written from the architecture description;
module and state-dict names are the baseline's (nttcslab/dcase2025_task4_baseline,
src/models/resunet2/resunet_mod.py) so real checkpoints load into it after
scripts/convert_separator_ckpt.py. Widths (`channels`) and the condition size are configurable so the
fixtures stay small; the real models use channels [32, 32, 64, 128, 256, 384, 384] and 512.

Reference semantics (eval mode everywhere; BatchNorm eps 1e-5 with running statistics):
- STFT of every input channel: torch.stft(n_fft = window_size, hop, periodic Hann, center=True,
  pad_mode='reflect'), (B, C, T, F) with T = 1 + L // hop, F = n_fft/2 + 1;
  mag = sqrt(max(re² + im², 1e-10)), cos = re/mag, sin = im/mag (digital silence: mag 1e-5, cos = sin = 0).
  The baseline uses torchlibrosa's conv STFT/ISTFT (freeze_parameters=True); checked below to equal
  torch.stft/istft (max differences printed).
- bn0 = BatchNorm2d(F) over the frequency axis, then zero-padding of time up to a multiple of 32 frames
  (so padded frames are exact zeros), then the last (Nyquist) bin dropped → net input (B, C, T′, F − 1).
- pre_conv 1×1 (bias) C_in → c0; encoder_block{1..6}.conv_block1 = ConvBlockRes c_{k−1} → c_k followed by
  avg_pool2d (2,2)×5 then (1,2) over (time, freq); conv_block7a = ConvBlockRes c6 → c6 (pool (1,1)).
  ConvBlockRes(in, out): h = conv1(lrelu(bn1(x) + β1)); h = conv2(lrelu(bn2(h) + β2)); out = h + x, or
  h + shortcut(x) (1×1, bias) when in ≠ out; conv1/conv2 3×3 pad 1 no bias; lrelu slope 0.01.
- decoder_block k (upsample (1,2) for k = 1, else (2,2)): h = conv1(lrelu(bn1(x) + β1)) with conv1 =
  ConvTranspose2d(kernel = stride = upsample, no bias); h = conv_block2(cat(h, skip)) with
  conv_block2 = ConvBlockRes(2·out → out); skip = the unpooled output of encoder 7 − k. Outs c6, c5, …, c1.
  `bn2` of a decoder block and its FiLM `beta2` exist (in the state dict) but are never used.
- after_conv 1×1 (bias) c1 → C_in·3·S; padded with one zero bin at the top of frequency and cropped to T.
- mask, per target s and input channel c (after_conv channel (s·C_in + c)·3 + k): mm = sigmoid(x0),
  mr = tanh(x1), mi = tanh(x2), |m| = sqrt(mr² + mi²), mc = mr/max(|m|, 1e-10), ms = mi/max(|m|, 1e-10);
  out_mag = relu(mag·mm); re = out_mag·(cos·mc − sin·ms); im = out_mag·(sin·mc + cos·ms).
  The Nyquist bin's net output is the zero pad, so there re = im = 0 before out_conv.
- out_conv (config "out_conv": true): Conv2d 1×1 C_in → C_out with bias, applied separately to the real
  and imaginary (B·S, C_in, T, F) planes — its bias is added to every bin of both planes, Nyquist
  included. Without out_conv (AudioSep) C_out = C_in. (A constant real part is an impulse at sample 0 of
  each frame, which the periodic Hann synthesis window zeroes: the real bias vanishes from the waveform;
  the imaginary bias (DC/Nyquist parts ignored by the iSTFT) leaves a small hop-periodic signal, 7e-5
  peak for 0.05 at n_fft 1024 — so the bias shows in spec_real/spec_imag, hardly in the waveform.)
- torch.istft (same window, center=True, length = L) of each output channel → (B, S, C_out, L) times
  source_mask (B, S) = 1 where the label vector's slot s (label_len/S entries) has a nonzero entry
  ("query" conditioning: all ones). The baseline returns (B, C_out, L) when S = 1; here always 4-D.
- condition: "label": label_embedding = Linear(label_len, cs), LayerNorm(cs), ReLU, Linear(cs, cs),
  LayerNorm(cs), ReLU (cs = condition_size); "query": the given (B, cs) vector.
  FiLM: one Linear(cs, channels) per β of every block (38), named film.<path joined with '->'>, e.g.
  film.encoder_block1->conv_block1->beta1, film.decoder_block3->beta1, film.decoder_block3->beta2 (unused),
  film.decoder_block3->conv_block2->beta2; β (B, C) is broadcast over (T, F). ConvBlockRes β1/β2 have
  bn1/bn2's channels, decoder β1/β2 the decoder's in_channels.

State-dict names (= the baseline's, less torchlibrosa's fixed base.stft.* / base.istft.* tensors):
base.bn0.*, base.pre_conv.*, base.encoder_block{1..6}.conv_block1.{bn1,bn2,conv1,conv2[,shortcut]}.*,
base.conv_block7a.conv_block1.*, base.decoder_block{1..6}.{conv1.weight, bn1.*, bn2.*,
conv_block2.{bn1,bn2,conv1,conv2,shortcut}.*}, base.after_conv.*, base.out_conv.* (with out_conv),
film.*, label_embedding.{0,1,3,4}.* (label conditioning). Checked once (outside this repo) against the
baseline's ResUNet30(4, 1, 1, 18) and ResUNet30(4, 1, 3, 54) and AudioSep's ResUNet30(1, 1, 512)
(Audio-AGI/AudioSep models/resunet.py), instantiated from their code with default widths: identical key
sets and shapes apart from torchlibrosa's base.stft.conv_{real,imag}.weight, base.istft.conv_{real,imag}
.weight and base.istft.ola_window; with these weights loaded into them their waveforms match this
model's to 124 dB SNR in f32 and 152 dB in f64 (the f64 gap is torchlibrosa's f32-built DFT matrices).

Fixtures (tests/golden/fixtures/separator/), torch 2.9.1 CPU, 1 thread, all f32:
  <case>/config.json      {"architecture": "resunet30", "input_channels", "output_channels",
                           "target_sources_num", "label_len" (0 for query conditioning: no label input),
                           "condition_size", "window_size", "hop_size", "sample_rate": 32000,
                           "classes": the 18 DCASE 2025 classes, "out_conv", "channels", "conditioning"}
  <case>/model.safetensors  model.state_dict(), f32; BatchNorm num_batches_tracked (int64, scalar) only in
                           resunet_n1024 (a loader must ignore them).
  <case>_io.safetensors   mixture (B, C_in, L); label_vector (B, label_len) or query (B, cs);
                           condition (B, cs); waveform (B, S, C_out, L); then item 0's intermediates:
                           net_input (1, C_in, T′, F−1*) after bn0/pad/drop-Nyquist; pre_conv (1, c0, T′, *);
                           enc1 (1, c1, T′, *) unpooled encoder 1; enc1_pool (1, c1, T′/2, **);
                           enc6_pool (1, c6, T′/32, (F−1)/64); center (1, c6, T′/32, (F−1)/64) (conv_block7a);
                           dec1 (1, c6, T′/32, (F−1)/32); dec6 (1, c1, T′, *); after_conv (1, 3·C_in·S, T′, *)
                           before the pad/crop; spec_real / spec_imag (S·C_out, T, F): the spectra fed to
                           the iSTFT (after out_conv); beta_enc1_b1 (1, c0) = film layer
                           encoder_block1->conv_block1->beta1 of item 0's condition.
                           * / **: full-resolution maps would not fit the size budget, so those five are
                           cropped along frequency to their FIRST 32 bins (enc1_pool: first 16 bins);
                           every other tensor is complete. Compare got[..., :want.shape[-1]].
  Cases (seed = case index):
  resunet_n1024   baseline: C_in 4, C_out 1, S 1, label_len 18, n_fft 1024, hop 160, out_conv,
                  channels [4, 4, 8, 8, 12, 12, 16], cs 64, B 2, L 9650 (T 61 → T′ 64): item 0 one-hot
                  class 5 with channel 2 exact zeros for its first 2000 samples; item 1 an all-zero label
                  (source_mask 0 → zero waveform).
  resunet_n2048   the same with n_fft 2048, hop 160, channels [4, 4, 6, 8, 8, 12, 12], L 12345
                  (T 78 → T′ 96), B 1, class 11.
  resunetk_n1024  ResUNetK: S 3, label_len 54 (slot 0 class 3, slot 1 class 15, slot 2 silence), n_fft 1024,
                  hop 160, out_conv, channels [4, 4, 8, 8, 12, 12, 16], cs 64, B 1, L 9600.
  audiosep_1ch    AudioSep: C_in = C_out = 1, no out_conv, "query" conditioning with a unit-norm (1, 512)
                  query (cs 512), n_fft 2048, hop 320, channels [4, 4, 4, 4, 4, 8, 8], B 1, L 16000
                  (T 51 → T′ 64).
  The condition size of the label cases is 64, not 512, to keep the fixtures small (at 512 the
  label embedding and FiLM layers alone are ~2.7 MB per case); real checkpoints have 512 — a loader
  must take it from config.json (the converter infers it).
  Random weights: conv N(0, 1)·gain/√fan_in (fan_in of a kernel = stride transposed conv: its in_channels),
  conv biases U(−0.1, 0.1); BatchNorm weight U(0.5, 1.5), bias U(−0.3, 0.3), running_mean U(−0.5, 0.5),
  running_var U(0.5, 2); FiLM linears N(0, 0.5²/cs) (label; query: N(0, 0.4²)) with bias U(−0.2, 0.2) (β of O(0.1–0.5));
  label embedding N(0, 1/fan_in), LayerNorm weight U(0.5, 1.5), bias U(−0.3, 0.3); out_conv weight
  N(0, 1/C_in)·0.8, bias U(−0.05, 0.05).
  The f32 reference is also recomputed in f64 (same weights, inputs cast): the printed
  "SNR f32 vs f64" of the waveform is what an f32 implementation can reach: resunet_n1024 133.6 dB,
  resunet_n2048 135.0, resunetk_n1024 135.1, audiosep_1ch 138.5; the --full model 120.5 dB.
  Sizes: the four io files 0.69–1.46 MB, everything under fixtures/separator* 5.9 MB.

separator_ops.safetensors (tests/golden/fixtures/), f32, per-op references from torch (seed 100):
  (a) conv3_x (2,5,7,9), conv3_pre_scale (5) = bn.w/√(bn.var + 1e-5), conv3_pre_shift (5) = bn.b −
      bn.mean·scale, conv3_beta (2,5), conv3_w (6,5,3,3);
      conv3_out = F.conv2d(F.leaky_relu(x·scale[:,None,None] + shift[:,None,None] + beta[:,:,None,None], 0.01),
      w, padding=1)                                                          (2,6,7,9)
  (b) cat_x1 (2,3,7,9), cat_x2 (2,2,7,9): cat_out = the same as (a) (conv3_pre_scale/shift, conv3_beta,
      conv3_w) on x = torch.cat((cat_x1, cat_x2), 1)                         (2,6,7,9)
  (c) conv1_x (2,5,7,9), conv1_w (6,5,1,1), conv1_b (6): conv1_out = F.conv2d(x, w, b)   (2,6,7,9)
  (d) convt_x (2,4,5,3), convt_pre_scale (4), convt_pre_shift (4), convt_beta (2,4);
      a = F.leaky_relu(x·scale + shift + beta, 0.01);
      convt22_w (4,3,2,2): convt22_out = F.conv_transpose2d(a, convt22_w, stride=(2,2))   (2,3,10,6)
      convt12_w (4,3,1,2): convt12_out = F.conv_transpose2d(a, convt12_w, stride=(1,2))   (2,3,5,6)
  (e) pool22_x (2,3,7,9): pool22_out = F.avg_pool2d(x, (2,2))                             (2,3,3,4)
      pool12_x (2,3,6,9): pool12_out = F.avg_pool2d(x, (1,2))                             (2,3,6,4)

Also run here: torchlibrosa (pip install torchlibrosa; 0.1.0) STFT/ISTFT vs torch.stft/istft on
resunet_n1024's mixture item 0 (all 4 channels) and on a random spectrum with nonzero DC/Nyquist
imaginary parts (both ignore those), asserted within 1e-5 of the peak — measured: f32 STFT 3.1e-5 of a
23.4 peak, ISTFT 3.7e-8 of 0.125; f64 1.6e-7 and 3.5e-9 (torchlibrosa's DFT matrices are built in f32);
skipped with a message when torchlibrosa is missing; and
scripts/convert_separator_ckpt.py on Lightning-style wraps of resunet_n1024 and audiosep_1ch (output
must equal the committed directories, num_batches_tracked aside) plus its error paths.

Run:  .venv/bin/python tests/golden/separator.py            (writes the fixtures, runs the checks)
      .venv/bin/python tests/golden/separator.py --full DIR (a full-size random baseline ResUNet30,
            channels [32, 32, 64, 128, 256, 384, 384], cs 512, n_fft 1024, hop 160, C_in 4, C_out 1:
            DIR/resunet30_full/{config.json, model.safetensors} and DIR/resunet30_full_io.safetensors
            with mixture (1, 4, 320000) (10 s, 32 kHz), label_vector (1, 18), condition (1, 512),
            waveform (1, 1, 1, 320000); not committed, for speed comparisons)
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(HERE, "fixtures")
SEP = os.path.join(FIX, "separator")
CONVERTER = os.path.join(REPO, "scripts", "convert_separator_ckpt.py")

CLASSES = ["AlarmClock", "BicycleBell", "Blender", "Buzzer", "Clapping", "Cough", "CupboardOpenClose",
           "Dishes", "Doorbell", "FootSteps", "HairDryer", "MechanicalFans", "MusicalKeyboard", "Percussion",
           "Pour", "Speech", "Typing", "VacuumCleaner"]
DEFAULT_CHANNELS = [32, 32, 64, 128, 256, 384, 384]
ENC_POOLS = [(2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2)]
TIME_MULTIPLE = 32
CROP_FULL, CROP_HALF = 32, 16  # frequency bins kept of the full / half resolution intermediates


# ---------------------------------------------------------------------------------------------- model
def lrelu(x):
    return F.leaky_relu(x, 0.01)


def bn(c):
    return nn.BatchNorm2d(c, momentum=0.01)


class ConvBlockRes(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn1, self.bn2 = bn(cin), bn(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, beta, path):
        h = self.conv1(lrelu(self.bn1(x) + beta[path + "->beta1"]))
        h = self.conv2(lrelu(self.bn2(h) + beta[path + "->beta2"]))
        return h + (x if self.shortcut is None else self.shortcut(x))


class EncoderBlock(nn.Module):
    def __init__(self, cin, cout, pool):
        super().__init__()
        self.conv_block1 = ConvBlockRes(cin, cout)
        self.pool = pool

    def forward(self, x, beta, path):
        y = self.conv_block1(x, beta, path + "->conv_block1")
        return F.avg_pool2d(y, self.pool), y


class DecoderBlock(nn.Module):
    def __init__(self, cin, cout, up):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(cin, cout, up, stride=up, bias=False)
        self.bn1 = bn(cin)
        self.conv_block2 = ConvBlockRes(2 * cout, cout)
        self.bn2 = bn(cin)  # stored in checkpoints, never applied

    def forward(self, x, skip, beta, path):
        h = self.conv1(lrelu(self.bn1(x) + beta[path + "->beta1"]))
        return self.conv_block2(torch.cat((h, skip), 1), beta, path + "->conv_block2")


def film_layout(ch):
    """[(film path, channels)] for every β, in the baseline's pre-order (38 entries)."""
    out = []

    def block(path, cin, cout):
        out.extend([(path + "->beta1", cin), (path + "->beta2", cout)])

    for k in range(1, 7):
        block(f"encoder_block{k}->conv_block1", ch[k - 1], ch[k])
    block("conv_block7a->conv_block1", ch[6], ch[6])
    prev = ch[6]
    for k in range(1, 7):
        cout = ch[7 - k]
        out.extend([(f"decoder_block{k}->beta1", prev), (f"decoder_block{k}->beta2", prev)])
        block(f"decoder_block{k}->conv_block2", 2 * cout, cout)
        prev = cout
    return out


class Film(nn.Module):
    """Linear layers registered under their '->' paths (no attribute access; state dict film.<path>.*)."""

    def __init__(self, cs, layout):
        super().__init__()
        for path, c in layout:
            self.add_module(path, nn.Linear(cs, c))

    def forward(self, cond):
        return {path: layer(cond)[:, :, None, None] for path, layer in self._modules.items()}


def hann(n, dtype):
    return torch.hann_window(n, periodic=True, dtype=dtype)


def stft(x, n_fft, hop):
    """(N, L) → real, imag (N, T, F)."""
    s = torch.stft(x, n_fft, hop, window=hann(n_fft, x.dtype), center=True, pad_mode="reflect",
                   return_complex=True)
    return s.real.transpose(1, 2), s.imag.transpose(1, 2)


def istft(re, im, n_fft, hop, length):
    """(N, T, F) real, imag → (N, length)."""
    spec = torch.complex(re, im).transpose(1, 2)
    return torch.istft(spec, n_fft, hop, window=hann(n_fft, re.dtype), center=True, length=length)


class Base(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, cin = cfg["channels"], cfg["input_channels"]
        self.cfg = cfg
        self.bn0 = bn(cfg["window_size"] // 2 + 1)
        self.pre_conv = nn.Conv2d(cin, ch[0], 1)
        for k in range(1, 7):
            self.add_module(f"encoder_block{k}", EncoderBlock(ch[k - 1], ch[k], ENC_POOLS[k - 1]))
        self.conv_block7a = EncoderBlock(ch[6], ch[6], (1, 1))
        prev = ch[6]
        for k in range(1, 7):
            self.add_module(f"decoder_block{k}", DecoderBlock(prev, ch[7 - k], (1, 2) if k == 1 else (2, 2)))
            prev = ch[7 - k]
        self.after_conv = nn.Conv2d(ch[1], cin * 3 * cfg["target_sources_num"], 1)
        if cfg["out_conv"]:
            self.out_conv = nn.Conv2d(cin, cfg["output_channels"], 1)

    def forward(self, mixture, beta, source_mask, taps=None):
        cfg = self.cfg
        n_fft, hop = cfg["window_size"], cfg["hop_size"]
        S, cin, cout = cfg["target_sources_num"], cfg["input_channels"], cfg["output_channels"]
        B, _, L = mixture.shape
        re, im = stft(mixture.reshape(B * cin, L), n_fft, hop)
        T, nF = re.shape[1], re.shape[2]
        re, im = re.reshape(B, cin, T, nF), im.reshape(B, cin, T, nF)
        mag = torch.sqrt(torch.clamp(re * re + im * im, min=1e-10))
        cos, sin = re / mag, im / mag

        x = self.bn0(mag.transpose(1, 3)).transpose(1, 3)
        tpad = -(-T // TIME_MULTIPLE) * TIME_MULTIPLE
        x = F.pad(x, (0, 0, 0, tpad - T))[..., : nF - 1]
        tap = (lambda k, v: taps.__setitem__(k, v[:1])) if taps is not None else (lambda k, v: None)
        tap("net_input", x)
        x = self.pre_conv(x)
        tap("pre_conv", x)
        skips = []
        for k in range(1, 7):
            x, unpooled = self._modules[f"encoder_block{k}"](x, beta, f"encoder_block{k}")
            skips.append(unpooled)
            if k == 1:
                tap("enc1", unpooled)
                tap("enc1_pool", x)
        tap("enc6_pool", x)
        x, _ = self.conv_block7a(x, beta, "conv_block7a")
        tap("center", x)
        for k in range(1, 7):
            x = self._modules[f"decoder_block{k}"](x, skips[6 - k], beta, f"decoder_block{k}")
            if k == 1:
                tap("dec1", x)
        tap("dec6", x)
        x = self.after_conv(x)
        tap("after_conv", x)
        x = F.pad(x, (0, 1))[:, :, :T]

        x = x.reshape(B, S, cin, 3, T, nF)
        mm = torch.sigmoid(x[:, :, :, 0])
        mr, mi = torch.tanh(x[:, :, :, 1]), torch.tanh(x[:, :, :, 2])
        mabs = torch.clamp(torch.sqrt(mr * mr + mi * mi), min=1e-10)
        mc, ms = mr / mabs, mi / mabs
        cos, sin, mag = cos[:, None], sin[:, None], mag[:, None]
        out_cos = cos * mc - sin * ms
        out_sin = sin * mc + cos * ms
        out_mag = F.relu(mag * mm)
        yr = (out_mag * out_cos).reshape(B * S, cin, T, nF)
        yi = (out_mag * out_sin).reshape(B * S, cin, T, nF)
        if cfg["out_conv"]:
            yr, yi = self.out_conv(yr), self.out_conv(yi)
        if taps is not None:
            taps["spec_real"] = yr[:S].reshape(S * cout, T, nF)
            taps["spec_imag"] = yi[:S].reshape(S * cout, T, nF)
        wav = istft(yr.reshape(B * S * cout, T, nF), yi.reshape(B * S * cout, T, nF), n_fft, hop, L)
        return wav.reshape(B, S, cout, L) * source_mask[:, :, None, None]


class Separator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        cs = cfg["condition_size"]
        self.base = Base(cfg)
        self.film = Film(cs, film_layout(cfg["channels"]))
        if cfg["conditioning"] == "label":
            self.label_embedding = nn.Sequential(nn.Linear(cfg["label_len"], cs), nn.LayerNorm(cs), nn.ReLU(),
                                                 nn.Linear(cs, cs), nn.LayerNorm(cs), nn.ReLU())

    def forward(self, mixture, label_vector=None, query=None, taps=None):
        S = self.cfg["target_sources_num"]
        if self.cfg["conditioning"] == "label":
            B = label_vector.shape[0]
            source_mask = (label_vector.reshape(B, S, -1).sum(2) != 0).to(mixture.dtype)
            cond = self.label_embedding(label_vector)
        else:
            cond = query
            source_mask = torch.ones(cond.shape[0], S, dtype=mixture.dtype)
        beta = self.film(cond)
        if taps is not None:
            taps["beta_enc1_b1"] = beta["encoder_block1->conv_block1->beta1"][:1, :, 0, 0]
        return cond, self.base(mixture, beta, source_mask, taps)


# ------------------------------------------------------------------------------------------ weights
def randomize(model, seed, gain=1.0):
    g = torch.Generator().manual_seed(seed)

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    def n(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    cs = model.cfg["condition_size"]
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(u(c, 0.5, 1.5))
                m.bias.copy_(u(c, -0.3, 0.3))
                m.running_mean.copy_(u(c, -0.5, 0.5))
                m.running_var.copy_(u(c, 0.5, 2.0))
                m.num_batches_tracked.fill_(int(torch.randint(1000, 100000, (1,), generator=g)))
            elif isinstance(m, nn.ConvTranspose2d):
                m.weight.copy_(n(m.weight.shape, gain / math.sqrt(m.in_channels)))
            elif isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                std = gain / math.sqrt(fan_in)
                if name.endswith("out_conv"):
                    std = 0.8 / math.sqrt(fan_in)
                m.weight.copy_(n(m.weight.shape, std))
                if m.bias is not None:
                    b = 0.05 if name.endswith("out_conv") else 0.1
                    m.bias.copy_(u(m.bias.shape, -b, b))
            elif isinstance(m, nn.Linear):
                if name.startswith("film."):
                    # label: the condition is LayerNorm → ReLU output (rms ≈ 0.7); query: unit norm
                    std = 0.5 / math.sqrt(cs) if model.cfg["conditioning"] == "label" else 0.4
                    m.weight.copy_(n(m.weight.shape, std))
                    m.bias.copy_(u(m.bias.shape, -0.2, 0.2))
                else:
                    m.weight.copy_(n(m.weight.shape, 1 / math.sqrt(m.in_features)))
                    m.bias.copy_(u(m.bias.shape, -0.1, 0.1))
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(u(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(u(m.bias.shape, -0.3, 0.3))
    return model.eval()


def make_mixture(seed, B, C, L, sr=32000):
    """Tones + chirp + noise bursts, the channels delayed/scaled copies plus a little own noise."""
    g = torch.Generator().manual_seed(1000 + seed)
    out = torch.zeros(B, C, L, dtype=torch.float64)
    for b in range(B):
        src = torch.zeros(L + 16, dtype=torch.float64)
        tt = torch.arange(L + 16, dtype=torch.float64) / sr
        for _ in range(3):
            f0 = float(torch.rand(1, generator=g)) * 3000 + 100
            a = float(torch.rand(1, generator=g)) * 0.08 + 0.02
            ph = float(torch.rand(1, generator=g)) * 6.28
            src += a * torch.sin(2 * math.pi * f0 * tt + ph)
        src += 0.04 * torch.sin(2 * math.pi * (200 * tt + 20000 * tt * tt))
        burst = torch.randn(L + 16, generator=g, dtype=torch.float64) * 0.05
        on = int(torch.randint(0, L // 2, (1,), generator=g))
        burst[: on] = 0
        burst[on + L // 4:] = 0
        src += burst
        for c in range(C):
            d = int(torch.randint(0, 16, (1,), generator=g))
            gain = float(torch.rand(1, generator=g)) * 0.6 + 0.7
            out[b, c] = gain * src[d: d + L] + 0.005 * torch.randn(L, generator=g, dtype=torch.float64)
    return out.float()


def crop(name, v):
    if name in ("net_input", "pre_conv", "enc1", "dec6", "after_conv"):
        return v[..., :CROP_FULL]
    if name == "enc1_pool":
        return v[..., :CROP_HALF]
    return v


def snr_db(ref, est):
    ref, est = ref.double(), est.double()
    return 10 * math.log10(float((ref * ref).sum()) / max(float(((ref - est) ** 2).sum()), 1e-300))


def save_checkpoint(model, cfg, d, keep_nbt):
    os.makedirs(d, exist_ok=True)
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if keep_nbt:
                sd[k] = v.clone().contiguous()
            continue
        sd[k] = v.detach().float().contiguous()
    save_file(sd, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return sd


def make_config(cin, cout, S, label_len, n_fft, hop, out_conv, channels, cs, conditioning):
    return {"architecture": "resunet30", "input_channels": cin, "output_channels": cout,
            "target_sources_num": S, "label_len": label_len, "condition_size": cs, "window_size": n_fft,
            "hop_size": hop, "sample_rate": 32000, "classes": CLASSES, "out_conv": out_conv,
            "channels": channels, "conditioning": conditioning}


def one_hot(*classes):
    v = torch.zeros(len(classes) * 18)
    for slot, c in enumerate(classes):
        if c is not None:
            v[slot * 18 + c] = 1
    return v


CASES = [
    ("resunet_n1024", dict(cfg=make_config(4, 1, 1, 18, 1024, 160, True, [4, 4, 8, 8, 12, 12, 16], 64, "label"),
                           B=2, L=9650, labels=[one_hot(5), one_hot(None)], zero_ch2=2000, nbt=True)),
    ("resunet_n2048", dict(cfg=make_config(4, 1, 1, 18, 2048, 160, True, [4, 4, 6, 8, 8, 12, 12], 64, "label"),
                           B=1, L=12345, labels=[one_hot(11)])),
    ("resunetk_n1024", dict(cfg=make_config(4, 1, 3, 54, 1024, 160, True, [4, 4, 8, 8, 12, 12, 16], 64, "label"),
                            B=1, L=9600, labels=[one_hot(3, 15, None)])),
    ("audiosep_1ch", dict(cfg=make_config(1, 1, 1, 0, 2048, 320, False, [4, 4, 4, 4, 4, 8, 8], 512, "query"),
                          B=1, L=16000)),
]


def run_case(seed, spec):
    cfg = spec["cfg"]
    model = randomize(Separator(cfg), seed)
    mixture = make_mixture(seed, spec["B"], cfg["input_channels"], spec["L"])
    if spec.get("zero_ch2"):
        mixture[0, 2, : spec["zero_ch2"]] = 0
    io = {"mixture": mixture}
    if cfg["conditioning"] == "label":
        io["label_vector"] = torch.stack(spec["labels"])
        kw = {"label_vector": io["label_vector"]}
    else:
        q = torch.randn(spec["B"], cfg["condition_size"], generator=torch.Generator().manual_seed(2000 + seed))
        io["query"] = q / q.norm(dim=1, keepdim=True)
        kw = {"query": io["query"]}
    taps = {}
    with torch.no_grad():
        cond, wav = model(mixture, taps=taps, **kw)
        m64 = copy.deepcopy(model).double()
        _, wav64 = m64(mixture.double(), **{k: v.double() for k, v in kw.items()})
    io["condition"] = cond
    io["waveform"] = wav
    for k, v in taps.items():
        io[k] = crop(k, v)
    io = {k: v.float().contiguous().clone() for k, v in io.items()}
    return model, io, wav64


# ---------------------------------------------------------------------------------------------- ops
def ops_fixture():
    g = torch.Generator().manual_seed(100)

    def r(*s, scale=1.0):
        return torch.randn(*s, generator=g) * scale

    def u(n, lo, hi):
        return torch.rand(n, generator=g) * (hi - lo) + lo

    def folded(c):
        w, b, mean, var = u(c, 0.5, 1.5), u(c, -0.3, 0.3), u(c, -0.5, 0.5), u(c, 0.5, 2.0)
        scale = w / torch.sqrt(var + 1e-5)
        return scale, b - mean * scale

    def pre(x, scale, shift, beta):
        return F.leaky_relu(x * scale[:, None, None] + shift[:, None, None] + beta[:, :, None, None], 0.01)

    o = {}
    o["conv3_x"] = r(2, 5, 7, 9)
    o["conv3_pre_scale"], o["conv3_pre_shift"] = folded(5)
    o["conv3_beta"] = r(2, 5, scale=0.3)
    o["conv3_w"] = r(6, 5, 3, 3, scale=1 / math.sqrt(45))
    args = (o["conv3_pre_scale"], o["conv3_pre_shift"], o["conv3_beta"])
    o["conv3_out"] = F.conv2d(pre(o["conv3_x"], *args), o["conv3_w"], padding=1)
    o["cat_x1"], o["cat_x2"] = r(2, 3, 7, 9), r(2, 2, 7, 9)
    o["cat_out"] = F.conv2d(pre(torch.cat((o["cat_x1"], o["cat_x2"]), 1), *args), o["conv3_w"], padding=1)
    o["conv1_x"] = r(2, 5, 7, 9)
    o["conv1_w"], o["conv1_b"] = r(6, 5, 1, 1, scale=1 / math.sqrt(5)), r(6, scale=0.1)
    o["conv1_out"] = F.conv2d(o["conv1_x"], o["conv1_w"], o["conv1_b"])
    o["convt_x"] = r(2, 4, 5, 3)
    o["convt_pre_scale"], o["convt_pre_shift"] = folded(4)
    o["convt_beta"] = r(2, 4, scale=0.3)
    a = pre(o["convt_x"], o["convt_pre_scale"], o["convt_pre_shift"], o["convt_beta"])
    o["convt22_w"], o["convt12_w"] = r(4, 3, 2, 2, scale=0.5), r(4, 3, 1, 2, scale=0.5)
    o["convt22_out"] = F.conv_transpose2d(a, o["convt22_w"], stride=(2, 2))
    o["convt12_out"] = F.conv_transpose2d(a, o["convt12_w"], stride=(1, 2))
    o["pool22_x"], o["pool12_x"] = r(2, 3, 7, 9), r(2, 3, 6, 9)
    o["pool22_out"] = F.avg_pool2d(o["pool22_x"], (2, 2))
    o["pool12_out"] = F.avg_pool2d(o["pool12_x"], (1, 2))
    assert o["convt22_out"].shape == (2, 3, 10, 6) and o["convt12_out"].shape == (2, 3, 5, 6)
    assert o["pool22_out"].shape == (2, 3, 3, 4) and o["pool12_out"].shape == (2, 3, 6, 4)
    return {k: v.float().contiguous() for k, v in o.items()}


# ---------------------------------------------------------------------------------------- checks
def check_torchlibrosa(mixture, cfg):
    try:
        from torchlibrosa.stft import ISTFT, STFT
    except ImportError:
        print("torchlibrosa not installed: STFT/ISTFT cross-check skipped")
        return
    n_fft, hop = cfg["window_size"], cfg["hop_size"]
    L = mixture.shape[-1]
    for dtype in (torch.float32, torch.float64):
        kw = dict(n_fft=n_fft, hop_length=hop, win_length=n_fft, window="hann", center=True,
                  pad_mode="reflect", freeze_parameters=True)
        st, ist = STFT(**kw).to(dtype), ISTFT(**kw).to(dtype)
        x = mixture[0].to(dtype)  # (C, L): every channel, incl. the digital-zero start
        with torch.no_grad():
            lr, li = st(x)  # (C, 1, T, F)
            tr, ti = stft(x, n_fft, hop)
            ds = max(float((lr[:, 0] - tr).abs().max()), float((li[:, 0] - ti).abs().max()))
            peak = float(torch.sqrt(tr * tr + ti * ti).max())
            # an arbitrary complex spectrum (DC/Nyquist imaginary parts nonzero, as out_conv's bias makes)
            g = torch.Generator().manual_seed(7)
            yr = torch.randn(tr.shape, generator=g, dtype=torch.float64).to(dtype)
            yi = torch.randn(tr.shape, generator=g, dtype=torch.float64).to(dtype)
            lw = ist(yr[:, None], yi[:, None], L)
            tw = istft(yr, yi, n_fft, hop, L)
            di = float((lw - tw).abs().max())
            wpeak = float(tw.abs().max())
            rt = float((ist(tr[:, None], ti[:, None], L) - x).abs().max())
        print(f"torchlibrosa vs torch ({dtype}): STFT max |diff| {ds:.3g} (peak |X| {peak:.3g}), "
              f"ISTFT max |diff| {di:.3g} (peak |y| {wpeak:.3g}); torchlibrosa round trip {rt:.3g}")
        # torchlibrosa builds its DFT matrices and windows in f32 (torch.Tensor(numpy)), so even in f64 it
        # matches torch only to ~1e-8 relative
        assert ds <= 1e-5 * peak and di <= 1e-5 * wpeak, "torchlibrosa disagrees with torch.stft/istft"


def load_converter():
    spec = importlib.util.spec_from_file_location("convert_separator_ckpt", CONVERTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_converter():
    conv = load_converter()
    fake_stft = {"base.stft.conv_real.weight": torch.zeros(3, 1, 4), "base.stft.conv_imag.weight": torch.zeros(3, 1, 4),
                 "base.istft.conv_real.weight": torch.zeros(4, 4, 1), "base.istft.ola_window": torch.zeros(4)}

    def compare(case, out_dir):
        want = load_file(os.path.join(SEP, case, "model.safetensors"))
        want = {k: v for k, v in want.items() if not k.endswith("num_batches_tracked")}
        got = load_file(os.path.join(out_dir, "model.safetensors"))
        assert set(got) == set(want), (sorted(set(got) ^ set(want)))[:10]
        for k in want:
            assert got[k].dtype == torch.float32 and torch.equal(got[k], want[k]), k
        with open(os.path.join(SEP, case, "config.json")) as f:
            wc = json.load(f)
        with open(os.path.join(out_dir, "config.json")) as f:
            gc = json.load(f)
        assert gc == wc, (gc, wc)

    with tempfile.TemporaryDirectory() as tmp:
        # baseline Lightning checkpoint: model.<name>, torchlibrosa tensors, num_batches_tracked kept in
        sd = load_file(os.path.join(SEP, "resunet_n1024", "model.safetensors"))
        ck = {"epoch": 3, "state_dict": {"model." + k: v for k, v in {**sd, **fake_stft}.items()}}
        torch.save(ck, os.path.join(tmp, "a.ckpt"))
        conv.convert(os.path.join(tmp, "a.ckpt"), os.path.join(tmp, "a"))
        compare("resunet_n1024", os.path.join(tmp, "a"))
        # AudioSep: ss_model.<name> + query_encoder.* (dropped); the hop cannot be inferred for 2048
        sd = load_file(os.path.join(SEP, "audiosep_1ch", "model.safetensors"))
        ck = {"state_dict": {**{"ss_model." + k: v for k, v in {**sd, **fake_stft}.items()},
                             "query_encoder.model.x": torch.zeros(2)}}
        torch.save(ck, os.path.join(tmp, "b.ckpt"))
        try:
            conv.convert(os.path.join(tmp, "b.ckpt"), os.path.join(tmp, "b"))
            raise AssertionError("no --hop accepted for n_fft 2048")
        except conv.ConvertError as e:
            print("converter, expected error:", e)
        conv.convert(os.path.join(tmp, "b.ckpt"), os.path.join(tmp, "b"), hop=320)
        compare("audiosep_1ch", os.path.join(tmp, "b"))
        # plain state dict (.pth), an unknown key, a missing tensor
        sd = load_file(os.path.join(SEP, "resunet_n1024", "model.safetensors"))
        torch.save({**sd, "base.extra.weight": torch.zeros(1)}, os.path.join(tmp, "c.pth"))
        try:
            conv.convert(os.path.join(tmp, "c.pth"), os.path.join(tmp, "c"))
            raise AssertionError("unknown key accepted")
        except conv.ConvertError as e:
            print("converter, expected error:", e)
        conv.convert(os.path.join(tmp, "c.pth"), os.path.join(tmp, "c"), ignore_unknown=True)
        compare("resunet_n1024", os.path.join(tmp, "c"))
        del sd["base.decoder_block3.conv_block2.conv2.weight"]
        torch.save(sd, os.path.join(tmp, "d.pth"))
        try:
            conv.convert(os.path.join(tmp, "d.pth"), os.path.join(tmp, "d"))
            raise AssertionError("missing tensor accepted")
        except conv.ConvertError as e:
            print("converter, expected error:", e)
        # command line
        r = subprocess.run([sys.executable, CONVERTER, os.path.join(tmp, "a.ckpt"), os.path.join(tmp, "e")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        compare("resunet_n1024", os.path.join(tmp, "e"))
    print("converter: Lightning/AudioSep/plain checkpoints reproduce the committed directories")


# ------------------------------------------------------------------------------------------- main
def write_full(out_dir):
    cfg = make_config(4, 1, 1, 18, 1024, 160, True, DEFAULT_CHANNELS, 512, "label")
    model = randomize(Separator(cfg), 99)
    mixture = make_mixture(99, 1, 4, 320000)
    label = one_hot(9)[None]
    with torch.no_grad():
        cond, wav = model(mixture, label_vector=label)
        _, wav64 = copy.deepcopy(model).double()(mixture.double(), label_vector=label.double())
    save_checkpoint(model, cfg, os.path.join(out_dir, "resunet30_full"), keep_nbt=False)
    save_file({"mixture": mixture.contiguous(), "label_vector": label.contiguous(),
               "condition": cond.contiguous(), "waveform": wav.contiguous()},
              os.path.join(out_dir, "resunet30_full_io.safetensors"))
    n = sum(p.numel() for p in model.parameters())
    print(f"full: {n} parameters, waveform rms {float(wav.pow(2).mean().sqrt()):.4g}, "
          f"SNR f32 vs f64 {snr_db(wav64, wav):.1f} dB → {out_dir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="write a full-size random checkpoint + 10 s io file to DIR")
    args = ap.parse_args()
    if args.full:
        write_full(args.full)
        return
    torch.set_num_threads(1)
    os.makedirs(SEP, exist_ok=True)
    for seed, (name, spec) in enumerate(CASES, start=1):
        model, io, wav64 = run_case(seed, spec)
        sd = save_checkpoint(model, spec["cfg"], os.path.join(SEP, name), keep_nbt=spec.get("nbt", False))
        save_file(io, os.path.join(SEP, name + "_io.safetensors"))
        n_film = sum(1 for k in sd if k.startswith("film.") and k.endswith(".weight"))
        assert n_film == 38, n_film
        w = io["waveform"]
        live = w.reshape(w.shape[0] * w.shape[1], -1).abs().amax(1) > 0
        print(f"{name}: SNR f32 vs f64 {snr_db(wav64, w):.1f} dB; waveform rms "
              f"{float(w.pow(2).mean().sqrt()):.4g}, live (item, slot) rows {live.tolist()}; "
              f"|β enc1| mean {float(io['beta_enc1_b1'].abs().mean()):.3f}; after_conv std "
              f"{float(io['after_conv'].std()):.3f}; center std {float(io['center'].std()):.3f}")
        if name == "resunet_n1024":
            assert float(w[1].abs().max()) == 0.0
            check_torchlibrosa(io["mixture"], spec["cfg"])
    save_file(ops_fixture(), os.path.join(FIX, "separator_ops.safetensors"))
    check_converter()


if __name__ == "__main__":
    main()
