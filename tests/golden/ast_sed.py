"""PyTorch reference of AST-SED (issue #6) and its golden fixtures.

AST-SED = PTE (the first `ast_layers` blocks of HF's ASTModel + its final LayerNorm, cls/distillation
dropped, patches → (B, F′, T′, C)) → FTE (per frame t, the sequence [fte.cls[t], PO[:, 0, t], …,
PO[:, F′−1, t]] through `fte_layers` post-LN blocks: X̂ = LN1(MHSA(X) + X), Y = LN2(MLP(X̂) + X̂), MHSA =
nn.MultiheadAttention(C, fte_heads, batch_first), MLP = fc1 → exact GELU → fc2, LN eps 1e-5, no
positional embedding; output the CLS token → (B, T′, C)) → LGD (nearest-neighbour ×`upsample` along time,
then a bidirectional batch-first nn.GRU(C, gru_hidden)) → heads: strong = sigmoid(head.strong(x)),
a = clamp(softmax_time(head.attn(x)), 1e-7, 1), weak = Σ_t strong·a / Σ_t a. `ast-gru` replaces the FTE
with the mean over frequency of PO.

Checkpoint = directory with config.json + model.safetensors (see `save_checkpoint` / `load_checkpoint`).
Tensor names: `ast.` + HF ASTModel names as save_pretrained writes them on disk (transformers 4.x layout:
embeddings.*, encoder.layer.{i}.attention.attention.{query,key,value}, attention.output.dense,
intermediate.dense, output.dense, layernorm_before/after, layernorm.*) — ALL num_hidden_layers blocks,
the ones past ast_layers are ignored on load; `fte.cls` (fte_max_frames × C, only the first T′ rows used),
`fte.blocks.{i}.{attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias,
norm1.*, norm2.*, mlp.fc1.*, mlp.fc2.*}`, `lgd.gru.{weight,bias}_{ih,hh}_l0[_reverse]`,
`head.strong.*`, `head.attn.*`. transformers 5.x names ASTModel's modules differently in memory
(layers.{i}.attention.q_proj, mlp.fc1, …); the map between the two is taken from save_pretrained itself
(`ast_name_map`: every tensor tagged with its index, saved, read back) and checked both ways below.

Fixtures (tests/golden/fixtures), all f32, torch 2.9.1 / torchaudio 2.9.1 / transformers 5.24, CPU,
HF attention "eager":
  ast_sed_small/   config.json + model.safetensors: AST hidden 64, 3 blocks of which ast_layers = 2 are
                   used, 4 heads, MLP 128, 48 mel × 128 frames, 16×16 patches at stride 10/10 → F′=4,
                   T′=12; FTE 2 blocks, 4 heads, MLP 96, fte_max_frames 16; upsample 3; GRU hidden 24;
                   5 classes; per-class median_filter and threshold. Seed 6.
  ast_gru_small/   the same shapes, architecture ast-gru (no fte.*), seed 7.
  ast_sed_small_io.safetensors
                   ast_sed/{input_values (2,128,48), po (2,4,12,64), fte (2,12,64), strong (2,36,5),
                   weak (2,5)}; ast_gru/{…, fte = mean over frequency of po}; clip/{input_values (128,48),
                   strong (36,5), weak (5)}: ast_sed_clip.wav through the fbank pipeline (`features`)
                   and ast_sed_small (batch 1, leading dim dropped).
  ast_sed_clip.wav 16 kHz mono PCM16, 1.0 s: a chirp (0.2–0.75 s, 150 Hz → 5 kHz) + noise; read back as
                   int16 / 32768.
  ast_sed_grads.safetensors / ast_gru_grads.safetensors
                   the small model in eval() (no dropout anywhere) with grads on: input_values (2,128,48),
                   targets/strong (2,36,5) and targets/weak (2,5) random 0/1, loss (1) = BCE(strong) +
                   0.5·BCE(weak) (mean reductions), grad/<checkpoint name> for every parameter the model
                   uses (the unused AST block 2 has no entry).

Run: .venv/bin/python tests/golden/ast_sed.py
"""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import ASTConfig, ASTModel
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()

AST_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "layer_norm_eps", "patch_size", "qkv_bias",
            "frequency_stride", "time_stride", "max_length", "num_mel_bins"]
DESED = ["Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush", "Frying",
         "Running_water", "Speech", "Vacuum_cleaner"]
# Missing config.json fields (as models/src/ast_sed/config.rs; fte_ln_eps is optional there too).
DEFAULTS = dict(ast_layers=10, fte_layers=2, fte_heads=4, fte_mlp=768, fte_max_frames=101, fte_ln_eps=1e-5,
                upsample=10, gru_hidden=384, classes=DESED, sample_rate=16000, median_filter=7, threshold=0.5)
# HF ASTFeatureExtractor's AudioSet normalisation.
AST_MEAN, AST_STD = -4.2677393, 4.5689974


# ---------------------------------------------------------------------------------------------- model
class Mlp(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class FteBlock(nn.Module):
    """Post-LN transformer block: X̂ = LN1(MHSA(X) + X), Y = LN2(MLP(X̂) + X̂)."""

    def __init__(self, c, heads, hidden, eps=1e-5):
        super().__init__()
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(c, eps=eps)
        self.norm2 = nn.LayerNorm(c, eps=eps)
        self.mlp = Mlp(c, hidden)

    def forward(self, x):
        x = self.norm1(self.attn(x, x, x, need_weights=False)[0] + x)
        return self.norm2(self.mlp(x) + x)


class Fte(nn.Module):
    def __init__(self, c, layers, heads, hidden, max_frames, eps=1e-5):
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(max_frames, c))
        self.blocks = nn.ModuleList([FteBlock(c, heads, hidden, eps) for _ in range(layers)])

    def forward(self, po):  # (B, F′, T′, C) → (B, T′, C)
        b, f, t, c = po.shape
        assert t <= self.cls.shape[0], f"T′ = {t} > fte_max_frames = {self.cls.shape[0]}"
        x = po.permute(0, 2, 1, 3)  # (B, T′, F′, C)
        cls = self.cls[:t].unsqueeze(0).unsqueeze(2).expand(b, t, 1, c)
        x = torch.cat([cls, x], dim=2).reshape(b * t, f + 1, c)
        for blk in self.blocks:
            x = blk(x)
        return x[:, 0].reshape(b, t, c)


class Lgd(nn.Module):
    def __init__(self, c, hidden, upsample):
        super().__init__()
        self.upsample = upsample
        self.gru = nn.GRU(c, hidden, bidirectional=True, batch_first=True)

    def forward(self, x):  # (B, T′, C) → (B, T′·u, 2H)
        x = torch.repeat_interleave(x, self.upsample, dim=1)
        return self.gru(x)[0]


class Heads(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.strong = nn.Linear(d, k)
        self.attn = nn.Linear(d, k)

    def forward(self, x):  # (B, T, D) → strong (B, T, K), weak (B, K)
        strong = torch.sigmoid(self.strong(x))
        a = torch.clamp(torch.softmax(self.attn(x), dim=1), 1e-7, 1.0)
        weak = (strong * a).sum(1) / a.sum(1)
        return strong, weak


def ast_config(cfg, attn_implementation="eager"):
    c = ASTConfig(**cfg["ast"])
    c._attn_implementation = attn_implementation
    return c


def grid(ast):
    p = ast["patch_size"]
    fo = (ast["num_mel_bins"] - p) // ast["frequency_stride"] + 1
    to = (ast["max_length"] - p) // ast["time_stride"] + 1
    return fo, to


class AstSed(nn.Module):
    """AST-SED / AST-GRU. Built with all num_hidden_layers AST blocks; `truncate_ast()` (done by
    load_checkpoint) keeps the first ast_layers, remembering the rest so save_checkpoint can still write
    them."""

    def __init__(self, cfg, attn_implementation="eager"):
        super().__init__()
        cfg = {**DEFAULTS, **cfg}
        assert cfg["architecture"] in ("ast-sed", "ast-gru"), cfg["architecture"]
        self.cfg = cfg
        self.ast = ASTModel(ast_config(cfg, attn_implementation))
        c, k = cfg["ast"]["hidden_size"], len(cfg["classes"])
        if cfg["architecture"] == "ast-sed":
            self.fte = Fte(c, cfg["fte_layers"], cfg["fte_heads"], cfg["fte_mlp"], cfg["fte_max_frames"],
                           cfg["fte_ln_eps"])
        self.lgd = Lgd(c, cfg["gru_hidden"], cfg["upsample"])
        self.head = Heads(2 * cfg["gru_hidden"], k)
        self._dropped = []

    def truncate_ast(self):
        k = self.cfg["ast_layers"]
        layers = list(self.ast.layers)
        assert k <= len(layers), (k, len(layers))
        if len(layers) > k:
            self._dropped = layers[k:] + self._dropped
            self.ast.layers = nn.ModuleList(layers[:k])
        return self

    def full_state_dict(self):
        """state_dict with the dropped AST blocks too (in-memory names)."""
        sd = dict(self.state_dict())
        k = len(self.ast.layers)
        for j, layer in enumerate(self._dropped):
            for n, t in layer.state_dict().items():
                sd[f"ast.layers.{k + j}.{n}"] = t
        return sd

    def pte(self, x):  # (B, max_length, mel) → (B, F′, T′, C)
        assert len(self.ast.layers) == self.cfg["ast_layers"], "call truncate_ast() first"
        h = self.ast(input_values=x).last_hidden_state[:, 2:]
        fo, to = grid(self.cfg["ast"])
        return h.reshape(h.shape[0], fo, to, h.shape[-1])  # HF flattens frequency-major: f·T′ + t

    def forward(self, x, intermediates=False):
        po = self.pte(x)
        fte = self.fte(po) if self.cfg["architecture"] == "ast-sed" else po.mean(dim=1)
        strong, weak = self.head(self.lgd(fte))
        if intermediates:
            return strong, weak, po, fte
        return strong, weak


# ------------------------------------------------------------------------------------ checkpoints
_MAPS = {}


def ast_name_map(ast_cfg):
    """{in-memory ASTModel state_dict name: on-disk save_pretrained name}. Derived from save_pretrained on a
    tiny model with the same number of blocks and qkv_bias: every tensor is filled with its own index."""
    key = (ast_cfg["num_hidden_layers"], ast_cfg.get("qkv_bias", True))
    if key in _MAPS:
        return _MAPS[key]
    tiny = ASTConfig(hidden_size=8, num_hidden_layers=key[0], num_attention_heads=1, intermediate_size=8,
                     patch_size=4, frequency_stride=4, time_stride=4, max_length=8, num_mel_bins=8, qkv_bias=key[1])
    m = ASTModel(tiny)
    names = list(m.state_dict())
    with torch.no_grad():
        for i, n in enumerate(names):
            m.get_parameter(n).fill_(float(i))
    with tempfile.TemporaryDirectory() as d:
        m.save_pretrained(d)
        disk = load_file(os.path.join(d, "model.safetensors"))
    mp = {}
    for dn, t in disk.items():
        i = int(t.flatten()[0].item())
        assert torch.all(t == i) and t.shape == m.state_dict()[names[i]].shape, dn
        mp[names[i]] = dn
    assert len(mp) == len(names) == len(disk) and len(set(mp.values())) == len(mp)
    _MAPS[key] = mp
    return mp


def checkpoint_tensors(model):
    """{checkpoint name: tensor} (ast.* under on-disk HF names, all AST blocks)."""
    mp = ast_name_map(model.cfg["ast"])
    out = {}
    for n, t in model.full_state_dict().items():
        if n.startswith("ast."):
            n = "ast." + mp[n[4:]]
        out[n] = t.detach().float().contiguous()
    return out


def checkpoint_name(model, n):
    """Checkpoint name of an in-memory parameter name."""
    return "ast." + ast_name_map(model.cfg["ast"])[n[4:]] if n.startswith("ast.") else n


def save_checkpoint(model, cfg, d):
    os.makedirs(d, exist_ok=True)
    t = checkpoint_tensors(model)
    save_file(dict(sorted(t.items())), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def load_checkpoint(d, attn_implementation="eager"):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    model = AstSed(cfg, attn_implementation)
    inv = {v: k for k, v in ast_name_map(model.cfg["ast"]).items()}
    sd = {}
    for n, t in load_file(os.path.join(d, "model.safetensors")).items():
        sd["ast." + inv[n[4:]] if n.startswith("ast.") else n] = t
    model.load_state_dict(sd, strict=True)
    return model.truncate_ast().eval()


# --------------------------------------------------------------------------------------- features
def features(wav, cfg):
    """1-D float waveform (16 kHz) → (max_length, mel) input_values: torchaudio kaldi fbank with AST's
    arguments, zero-pad / truncate to max_length frames, AudioSet normalisation (HF ASTFeatureExtractor)."""
    import torchaudio.compliance.kaldi as kaldi
    a = cfg["ast"]
    fb = kaldi.fbank(wav.reshape(1, -1), htk_compat=True, sample_frequency=cfg.get("sample_rate", 16000),
                     use_energy=False, window_type="hanning", num_mel_bins=a["num_mel_bins"], dither=0.0,
                     frame_shift=10)
    n, L = fb.shape[0], a["max_length"]
    fb = F.pad(fb, (0, 0, 0, L - n)) if n < L else fb[:L]
    return (fb - AST_MEAN) / (AST_STD * 2)


def read_wav(path):
    """PCM16 mono WAV → float32 tensor (int16 / 32768)."""
    import soundfile as sf
    x, sr = sf.read(path, dtype="int16", always_2d=True)
    assert x.shape[1] == 1, "mono expected"
    return torch.from_numpy(x[:, 0].astype(np.float32) / np.float32(32768.0)), sr


def write_wav(path, x, sr=16000):
    import soundfile as sf
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)
    sf.write(path, pcm, sr, subtype="PCM_16")


# ----------------------------------------------------------------------------------- fixture init
def randomize(model, seed):
    """Deterministic non-trivial init: U(-1, 1)·scale per parameter kind (biases, tokens and fte.cls
    non-zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.full_named_parameters():
            r = torch.rand(p.shape, generator=g) * 2 - 1
            leaf = n.split(".")[-1]
            if "norm" in n and p.dim() == 1:
                v = 1 + 0.1 * r if leaf == "weight" else 0.05 * r
            elif "token" in n or "position" in n or n == "fte.cls":
                v = 0.5 * r
            elif n.startswith("lgd.gru."):
                v = r / math.sqrt(model.cfg["gru_hidden"])
            elif p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                v = r * math.sqrt(3.0 / fan_in)  # unit-variance outputs for unit-variance inputs
                if n.startswith("head."):
                    v = 2.0 * v
            else:  # biases
                v = (0.5 if n.startswith("head.") else 0.1) * r
            p.copy_(v)


def _full_named_parameters(self):
    ps = list(self.named_parameters())
    k = len(self.ast.layers)
    for j, layer in enumerate(self._dropped):
        ps += [(f"ast.layers.{k + j}.{n}", p) for n, p in layer.named_parameters()]
    return ps


AstSed.full_named_parameters = _full_named_parameters


def small_config(arch):
    ast = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, hidden_act="gelu",
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, patch_size=16,
               qkv_bias=True, frequency_stride=10, time_stride=10, max_length=128, num_mel_bins=48)
    classes = ["Alarm_bell_ringing", "Cat", "Dog", "Speech", "Vacuum_cleaner"]
    cfg = {"architecture": arch, "ast": ast, "ast_layers": 2}
    if arch == "ast-sed":
        cfg.update(fte_layers=2, fte_heads=4, fte_mlp=96, fte_max_frames=16)
    cfg.update(upsample=3, gru_hidden=24, classes=classes, sample_rate=16000,
               median_filter=dict(zip(classes, [3, 5, 7, 1, 9])),
               threshold=dict(zip(classes, [0.5, 0.4, 0.6, 0.45, 0.55])))
    return cfg


def base_config(arch="ast-sed"):
    full = ASTConfig().to_dict()
    cfg = {"architecture": arch, "ast": {k: full[k] for k in AST_KEYS}, "ast_layers": 10}
    if arch == "ast-sed":
        cfg.update(fte_layers=2, fte_heads=4, fte_mlp=768, fte_max_frames=101)
    cfg.update(upsample=10, gru_hidden=384, classes=list(DESED), sample_rate=16000, median_filter=7, threshold=0.5)
    return cfg


# --------------------------------------------------------------------------------------- checks
def check_hf_names(model, d):
    """The ast.* tensors of the checkpoint in `d` are exactly what HF save_pretrained writes for the full
    ASTModel, and HF's own from_pretrained of them gives back the same in-memory weights."""
    ck = load_file(os.path.join(d, "model.safetensors"))
    ours = {n[4:]: t for n, t in ck.items() if n.startswith("ast.")}
    full = ASTModel(ast_config(model.cfg))
    mem = {n[4:]: t for n, t in model.full_state_dict().items() if n.startswith("ast.")}
    full.load_state_dict(mem, strict=True)
    with tempfile.TemporaryDirectory() as t:
        full.save_pretrained(t)
        hf = load_file(os.path.join(t, "model.safetensors"))
        assert set(hf) == set(ours), (set(hf) ^ set(ours))
        assert all(torch.equal(hf[n], ours[n]) for n in hf)
        save_file(ours, os.path.join(t, "model.safetensors"), metadata={"format": "pt"})
        back, info = ASTModel.from_pretrained(t, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    bsd = back.state_dict()
    assert set(bsd) == set(mem) and all(torch.equal(bsd[n], mem[n]) for n in mem)


def main():
    torch.set_num_threads(2)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    io, written = {}, []
    models = {}
    for tag, arch, seed in [("ast_sed", "ast-sed", 6), ("ast_gru", "ast-gru", 7)]:
        cfg = small_config(arch)
        torch.manual_seed(seed)
        m0 = AstSed(cfg)
        randomize(m0, seed)
        d = os.path.join(here, f"{tag}_small")
        save_checkpoint(m0, cfg, d)
        written += [os.path.join(d, "config.json"), os.path.join(d, "model.safetensors")]
        check_hf_names(m0, d)
        m = load_checkpoint(d)
        m0.truncate_ast().eval()
        # The checkpoint round-trips: same tensors under the same names, all blocks included.
        a, b = checkpoint_tensors(m0), checkpoint_tensors(m)
        assert set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a)
        assert any(n.startswith("ast.encoder.layer.2.") for n in a) and len(m.ast.layers) == 2
        if arch == "ast-gru":
            assert not any(n.startswith("fte.") for n in a)

        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randn(2, 128, 48, generator=g) * 0.5
        with torch.no_grad():
            strong, weak, po, fte = m(x, intermediates=True)
            s0, w0, _, _ = m0(x, intermediates=True)
        assert torch.equal(strong, s0) and torch.equal(weak, w0), "loaded checkpoint differs"
        assert strong.shape == (2, 36, 5) and weak.shape == (2, 5) and po.shape == (2, 4, 12, 64) and fte.shape == (2, 12, 64)
        for n, t in [("input_values", x), ("po", po), ("fte", fte), ("strong", strong), ("weak", weak)]:
            io[f"{tag}/{n}"] = t.contiguous()
        print(f"{tag}: po max {po.abs().max():.3f}, fte max {fte.abs().max():.3f}, strong min/max "
              f"{strong.min():.4f}/{strong.max():.4f} (std {strong.std():.4f}), weak min/max {weak.min():.4f}/{weak.max():.4f}")
        models[tag] = (m, cfg, seed)

    # WAV end to end: chirp in 0.2–0.75 s over noise, 1.0 s at 16 kHz.
    sr = 16000
    rng = np.random.default_rng(2024)
    t = np.arange(sr) / sr
    env = ((t >= 0.2) & (t < 0.75)).astype(np.float64) * np.sin(np.pi * np.clip((t - 0.2) / 0.55, 0, 1)) ** 0.5
    tc = np.clip(t - 0.2, 0, None)
    chirp = np.sin(2 * np.pi * (150 * tc + 0.5 * (5000 - 150) / 0.55 * tc ** 2))
    sig = 0.4 * env * chirp + 0.03 * rng.standard_normal(sr)
    wav_path = os.path.join(here, "ast_sed_clip.wav")
    write_wav(wav_path, sig, sr)
    written.append(wav_path)
    wav, sr2 = read_wav(wav_path)
    assert sr2 == sr and wav.shape == (sr,)
    m, cfg, _ = models["ast_sed"]
    xin = features(wav, cfg)
    with torch.no_grad():
        strong, weak = m(xin.unsqueeze(0))
    io["clip/input_values"], io["clip/strong"], io["clip/weak"] = xin.contiguous(), strong[0].contiguous(), weak[0].contiguous()
    print(f"clip: strong min/max {strong.min():.4f}/{strong.max():.4f}, weak {weak[0].numpy().round(4)}")
    p = os.path.join(here, "ast_sed_small_io.safetensors")
    save_file(io, p)
    written.append(p)

    # Gradients: eval() (no dropout), grads on.
    for tag, (m, cfg, seed) in models.items():
        g = torch.Generator().manual_seed(200 + seed)
        x = torch.randn(2, 128, 48, generator=g) * 0.5
        ts = torch.randint(0, 2, (2, 36, 5), generator=g).float()
        tw = torch.randint(0, 2, (2, 5), generator=g).float()
        m.eval()
        m.zero_grad(set_to_none=True)
        strong, weak = m(x)
        loss = F.binary_cross_entropy(strong, ts) + 0.5 * F.binary_cross_entropy(weak, tw)
        loss.backward()
        out = {"input_values": x, "targets/strong": ts, "targets/weak": tw, "loss": loss.detach().reshape(1)}
        for n, prm in m.named_parameters():
            assert prm.grad is not None, n
            out["grad/" + checkpoint_name(m, n)] = prm.grad.detach().contiguous()
        gmax = max(float(v.abs().max()) for k, v in out.items() if k.startswith("grad/"))
        p = os.path.join(here, f"{tag}_grads.safetensors")
        save_file(out, p)
        written.append(p)
        print(f"{tag} grads: loss {loss.item():.6f}, {sum(k.startswith('grad/') for k in out)} grads, max |grad| {gmax:.4f}")

    for p in written:
        print(f"  {os.path.relpath(p, os.path.dirname(here))}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
