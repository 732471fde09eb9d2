"""PyTorch reference of CP-JKU's stage-2 SED model (seed 003; DESIGN.md §6.5) and its golden fixtures.

The M2D encoder of tests/golden/m2d.py (imported: Backbone, weight randomiser, mixtures) in its 16 kHz
configuration with CP-JKU's strong attention head, written from that system's behaviour
(theMoro/dcase25task4 @ad7938f: src/models/wrapper.py `Wrapper`, src/models/pretrained_sed_models/m2d/
{M2D_wrapper.py, portable_m2d.py}; facts only). State-dict names are the wrapper's:
model.m2d.backbone.* (as M2dAt's backbone.*), strong_head.*, weak_head.*.

Semantics (eval mode):
- input (B, C, L) at 32 kHz → channel ref_channel = 0 → torchaudio.functional.resample(x, 32000, 16000,
  resampling_method="sinc_interp_kaiser") (defaults: lowpass_filter_width 6, rolloff 0.99, beta
  14.769656459379492).
- front end: PortableM2D built without a weight file: the name "m2d_clap_vit_base-80x1001p16x16-…" →
  sr '16k': nnAudio MelSpectrogram(sr=16000, n_fft=400, win_length=400, hop_length=160, n_mels=80,
  fmin=50, fmax=8000, center=True, power=2) (periodic Hann, reflect pad, Slaney mel with Slaney norm;
  computed here as torch.stft + librosa.filters.mel and checked against nnAudio below) → log(x + f32 eps)
  → (x − (−7.1)) / 4.2: cfg.mean/std are set to the defaults when the encoder is built without a weight
  file, and loading the wrapper's state dict later changes backbone.norm_stats but not cfg — so the
  checkpoint's norm_stats (set to (−6.9, 4.4) here) are NOT used.
- encode_lms: units of 1001 frames (padded to a multiple of 16), each → patch_embed (→ hidden state 0:
  before the positions, cls slot dropped) → + positions, cls → blocks (hidden states 1..depth: each
  block's output, cls dropped) → final norm → cls dropped → 'b (f t) d -> b t (f d)'; units joined along
  time (tokens of the hidden states along the token axis).
- down_up_sample: the (B, t′, 5·D) sequence → seq_len = 250 frames: adaptive_avg_pool1d when longer,
  F.interpolate(mode='linear', align_corners=False) when shorter.
- attention head (use_head_norm false, no sequence model): logits_strong = strong_head(x); strong =
  sigmoid; sof = clamp(softmax(weak_head(x), dim=-1), 1e-7, 1); weak = Σ_t strong·sof / Σ_t sof.
  Outputs: logits_strong (B, 18, 250) (transposed), weak (B, 18), hidden states.

Fixtures (tests/golden/fixtures/), torch 2.9.1 / torchaudio 2.9.1 CPU, 1 thread, f32:
  m2d_sed_small/{config.json, model.safetensors}  D 64, depth 2, heads 4, MLP 256, 18 classes; the
      state dict holds model.m2d.backbone.norm_stats = (−6.9, 4.4) (ignored, see above);
      config.json = {"architecture": "m2d_sed", …, "sample_rate": 16000, "n_fft": 400, "win_length": 400,
      "hop_length": 160, "f_max": 8000.0, "norm_mean": -7.1, "norm_std": 4.2, "input_sample_rate": 32000,
      "seq_len": 250, …}.
  m2d_sed_small_io.safetensors: the input is m2d_small_io.safetensors' wave_10s (channel 0 of a 10 s
      mixture, 320000 samples; not stored twice) and wave_4s (4 s): strong_logits_10s (1, 18, 250),
      weak_10s (1, 18), hidden_10s (1, 3, 310, 64), strong_logits_4s (1, 18, 250) (24 time patches,
      upsampled), resampled_10s_head (1, 4000) = the first 4000 samples of the 16 kHz input;
      and the resampler alone on a deterministic signal x (1, 8001) at 44100 Hz: rs_44100_16000
      (1, 2903), rs_32000_16000 (1, 4001), rs_16000_32000 (1, 16002), rs_22050_16000 (1, 5806); rs64_*
      the same computed in float64 (torchaudio then builds its kernel in f64 too), stored as f32.
  More lengths, from the same wave: 13 s = cat(wave_10s, wave_10s[:, :96000]) (two units, 62 + 19 time
  patches = 81 steps, interpolated to 250): strong_logits_13s (1, 18, 250) and hidden_13s_tail (1, 3, 10,
  64), the last 10 of its 405 tokens per layer; 50 s = cat(wave_10s × 5) (310 steps, adaptive-average
  pooled to 250): strong_logits_50s (1, 18, 250). Every input is given as 2 channels (channel 1 = half of
  channel 0), which the model must ignore.

Run:  .venv/bin/python tests/golden/m2d_sed.py
"""
import importlib.util
import json
import os

import librosa
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

_spec = importlib.util.spec_from_file_location("m2d_ref", os.path.join(HERE, "m2d.py"))
m2d = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m2d)

EPS = float(torch.finfo(torch.float32).eps)


def sed_config(d, depth, heads):
    c = m2d.make_config(d, depth, heads)
    c.update({"architecture": "m2d_sed", "sample_rate": 16000, "n_fft": 400, "win_length": 400, "hop_length": 160,
              "f_max": 8000.0, "norm_mean": -7.1, "norm_std": 4.2, "input_sample_rate": 32000, "seq_len": 250})
    return c


class Holder(nn.Module):
    pass


class SedWrapper(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Holder()
        self.model.m2d = Holder()
        self.model.m2d.backbone = m2d.Backbone(cfg)
        width = cfg["embed_dim"] * self.model.m2d.backbone.fbins
        self.strong_head = nn.Linear(width, len(cfg["classes"]))
        self.weak_head = nn.Linear(width, len(cfg["classes"]))
        self.eval()

    @property
    def bb(self):
        return self.model.m2d.backbone

    def log_mel(self, wave16):
        c = self.cfg
        win = torch.hann_window(c["win_length"], periodic=True)
        spec = torch.stft(wave16, c["n_fft"], c["hop_length"], c["win_length"], window=win, center=True,
                          pad_mode="reflect", return_complex=True)
        mel = librosa.filters.mel(sr=c["sample_rate"], n_fft=c["n_fft"], n_mels=c["n_mels"], fmin=c["f_min"],
                                  fmax=c["f_max"], htk=False, norm="slaney", dtype=np.float32)
        x = torch.log(torch.from_numpy(mel) @ (spec.real ** 2 + spec.imag ** 2) + EPS)
        return ((x - c["norm_mean"]) / c["norm_std"]).unsqueeze(1)

    def unit(self, x, states):
        bb = self.bb
        p = bb.patch_embed.proj(x)
        b, d, fb, tp = p.shape
        tok = p.flatten(2).transpose(1, 2)
        states.append(tok)
        pos = bb.pos_embed[:, 1:].reshape(1, bb.fbins, bb.tpatch, d)[:, :, :tp].reshape(1, fb * tp, d)
        h = torch.cat([(bb.cls_token + bb.pos_embed[:, :1]).expand(b, -1, -1), tok + pos], 1)
        for blk in bb.blocks:
            h = blk(h)
            states.append(h[:, 1:])
        return bb.norm(h)[:, 1:]

    def forward(self, mixture):
        c = self.cfg
        wave = torchaudio.functional.resample(mixture[:, c["ref_channel"]], 32000, 16000,
                                              resampling_method="sinc_interp_kaiser")
        lms = self.log_mel(wave)
        unit, pw = c["input_size"][1], c["patch_size"][1]
        n_chunk = -(-lms.shape[-1] // unit)
        x = F.pad(lms, (0, (-lms.shape[-1]) % pw))
        seqs, per_layer = [], None
        for i in range(n_chunk):
            st = []
            tok = self.unit(x[..., i * unit:(i + 1) * unit], st)
            b, n, d = tok.shape
            f = self.bb.fbins
            seqs.append(tok.reshape(b, f, n // f, d).permute(0, 2, 1, 3).reshape(b, n // f, f * d))
            per_layer = [[s] for s in st] if per_layer is None else [pl + [s] for pl, s in zip(per_layer, st)]
        seq = torch.cat(seqs, 1)
        hidden = torch.stack([torch.cat(pl, 1) for pl in per_layer], 1)
        L = c["seq_len"]
        if seq.shape[1] > L:
            seq = F.adaptive_avg_pool1d(seq.transpose(1, 2), L).transpose(1, 2)
        elif seq.shape[1] < L:
            seq = F.interpolate(seq.transpose(1, 2), size=L, mode="linear").transpose(1, 2)
        ls = self.strong_head(seq)
        strong = torch.sigmoid(ls)
        sof = torch.clamp(torch.softmax(self.weak_head(seq), dim=-1), min=1e-7, max=1)
        weak = (strong * sof).sum(1) / sof.sum(1)
        return ls.transpose(1, 2), weak, hidden, wave


def build(seed=7):
    cfg = sed_config(64, 2, 4)
    ref = m2d.M2dAt(m2d.make_config(64, 2, 4))
    m2d.randomize(ref, seed)  # the backbone (norm_stats (−6.9, 4.4)) and a head we drop
    model = SedWrapper(cfg)
    model.model.m2d.backbone.load_state_dict({k[len("backbone."):]: v for k, v in ref.state_dict().items() if k.startswith("backbone.")})
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for h in (model.strong_head, model.weak_head):
            h.weight.copy_(torch.randn(h.weight.shape, generator=g) * 2.0 / h.weight.shape[1] ** 0.5)
            h.bias.copy_(torch.rand(h.bias.shape, generator=g) - 0.5)
    return model.eval()


def check_nnaudio(wave16):
    try:
        import nnAudio.features
    except ImportError:
        print("nnAudio missing: front-end check skipped")
        return
    ms = nnAudio.features.MelSpectrogram(sr=16000, n_fft=400, win_length=400, hop_length=160, n_mels=80, fmin=50,
                                         fmax=8000, center=True, power=2, verbose=False)
    a = ms(wave16)
    win = torch.hann_window(400, periodic=True)
    spec = torch.stft(wave16, 400, 160, 400, window=win, center=True, pad_mode="reflect", return_complex=True)
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=50, fmax=8000, htk=False, norm="slaney", dtype=np.float32)
    b = torch.from_numpy(mel) @ (spec.real ** 2 + spec.imag ** 2)
    err = float((a - b).abs().max() / b.abs().max())
    print(f"nnAudio 16 kHz mel vs torch.stft + librosa: max |Δ| / peak {err:.2e}")
    assert err < 1e-4


def main():
    torch.set_num_threads(1)
    small = load_file(os.path.join(FIX, "m2d_small_io.safetensors"))
    w10, w4 = small["wave_10s"], small["wave_4s"]
    model = build()
    io = {}
    with torch.no_grad():
        for name, w in (("10s", w10), ("4s", w4), ("13s", torch.cat([w10, w10[:, :96000]], -1)),
                        ("50s", torch.cat([w10] * 5, -1))):
            mix = torch.stack([w, w * 0.5], 1)  # channel 1 must be ignored
            ls, weak, hidden, wave16 = model(mix)
            io[f"strong_logits_{name}"] = ls
            if name == "10s":
                io["weak_10s"], io["hidden_10s"] = weak, hidden
                io["resampled_10s_head"] = wave16[:, :4000]
                check_nnaudio(wave16)
                assert hidden.shape == (1, 3, 310, 64), hidden.shape
            if name == "13s":
                assert hidden.shape == (1, 3, 405, 64), hidden.shape
                io["hidden_13s_tail"] = hidden[:, :, -10:]
            print(f"{name}: logits {tuple(ls.shape)} range [{float(ls.min()):.2f}, {float(ls.max()):.2f}], weak max {float(weak.max()):.3f}")
    g = torch.Generator().manual_seed(5)
    t = torch.arange(8001, dtype=torch.float64) / 44100
    x = (0.3 * torch.sin(2 * np.pi * 440 * t) + 0.2 * torch.sin(2 * np.pi * 7000 * t)
         + 0.05 * torch.randn(8001, generator=g, dtype=torch.float64)).float()[None]
    for a, b in ((44100, 16000), (32000, 16000), (16000, 32000), (22050, 16000)):
        io[f"rs_{a}_{b}"] = torchaudio.functional.resample(x, a, b, resampling_method="sinc_interp_kaiser")
        io[f"rs64_{a}_{b}"] = torchaudio.functional.resample(x.double(), a, b, resampling_method="sinc_interp_kaiser")
    io["rs_input"] = x
    d = os.path.join(FIX, "m2d_sed_small")
    os.makedirs(d, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(model.cfg, f, indent=2)
        f.write("\n")
    save_file({k: v.float().contiguous() for k, v in io.items()}, os.path.join(FIX, "m2d_sed_small_io.safetensors"))
    print({k: tuple(v.shape) for k, v in io.items()})


if __name__ == "__main__":
    main()
