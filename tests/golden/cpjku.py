"""PyTorch reference of the CP-JKU separator extensions (seed 003; DESIGN.md §6.5) and their goldens.

Extends the ResUNet30 reference of tests/golden/separator.py (imported from it: the mixture maker,
weight randomiser, STFT/iSTFT, FiLM layout, checkpoint writer) with what the CP-JKU system adds,
written from the architecture facts (theMoro/dcase25task4 @ad7938f, src/models/audiosep_resunet_iter/
resunet.py and FaSNet.py, read for facts; module and state-dict names are that code's):

- Time-FiLM: the strong logits (B, classes, T_sed) → per slot the row of its queried class (argmax of
  the slot's one-hot; a silent slot gives zeros; `binarize_sed_preds`: (logits > 0) first) → (B·T_sed, S)
  → time_embedding = Linear(S, 512)-LayerNorm-ReLU-Linear(512, cs)-LayerNorm-ReLU → the *label* FiLM
  layers (film.*) → β_t (B, C, T_sed, 1) per FiLM point. At every FiLM point with input x of R rows:
  t = F.interpolate(β_t, size=(R, 1), mode='bilinear', align_corners=False); "additive":
  a = bn(x) + β + t; "multiplicative": a = sigmoid(t)·(bn(x) + β); then LeakyReLU(0.01). R is the
  *padded* time length of the block's input (decoder bn1: before upsampling; its conv_block2: after).
  The checkpoint also holds time_film.* (a second FiLM the code never uses): written here, ignored by
  the loader.
- Injection (soundbeam): hidden states (B, layers, tokens, dim) → Σ_l softmax(soundbeam_weights)_l·h_l →
  permute to (B, dim, grid_t, grid_f) (tokens frequency-major: token f·grid_t + t) → downsample_bn
  (BatchNorm2d(dim)) → LeakyReLU(0.01) → bilinear resize (align_corners=False) to the bottleneck's
  (T, F) → downsample_conv 1×1 (dim → C, bias). "add": x̂ = (x − mean)/(std + 1e-6) per (item,
  channel) over (T, F) with the unbiased std, the same for the injected map f; merged = weight_x_center·x̂
  + weight_soundbeam_features·f̂ (0-d parameters). "concat": merge_conv(LeakyReLU(merge_bn(cat(x, f)))),
  merge_bn BatchNorm2d(2C), merge_conv 1×1 2C → C (bias).
- DPRNN (`DPRNN.0.*`, after the injection ("post_sb") or before it): per block i: rows: x (B, C, T, F) →
  (B·F, T, C) → 2-layer bidirectional GRU(C → H) (row_rnn.i.rnn) → Linear(2H → C) (row_rnn.i.proj) →
  back to (B, C, T, F) → GroupNorm(1, C, eps 1e-8) (row_norm.i) → x + that; then columns the same along
  frequency, (B·T, F, C) (col_rnn.i, col_norm.i). Then PReLU (one slope, output.0) and a 1×1 conv C → C
  with bias (output.1). No residual around the whole DPRNN.
- Iterative model (`iterations` N ≥ 1): the network tensors live under base.ss_model.; a 5th input
  channel carries the previous pass's waveform estimate (zeros on pass 1): its STFT magnitude
  (sqrt(max(re² + im², 1e-10)), so 1e-5 on pass 1) → its own bn0_fb → concatenated after the 4 mixture
  channels (pre_conv 5 → c0); the mask and phase use the 4 mixture channels only; the label and time
  conditions and the injected map are computed once; N passes, the output is the last pass's.

Fixtures (tests/golden/fixtures/cpjku/), torch 2.9.1 CPU, 1 thread, f32, the layout of separator.py's:
  <case>/config.json, <case>/model.safetensors (the state_dict, time_film.* included) and
  <case>_io.safetensors: mixture (B, 4, L), label_vector (B, 18), strong_logits (B, 18, T_sed),
  embeddings (B, layers, tokens, dim) (injection cases), waveform (B, 1, 1, L) and item 0's center
  (the bottleneck before the extras), merged (after the injection), dprnn (after the DPRNN), pass1 (the
  iterative model's first-pass waveform (B, 1, 1, L), all items).
  Cases (seed 40 + case index; channels [4, 4, 8, 8, 12, 12, 16], condition size 64, L 9650 → 61 frames
  → 64 padded, T_sed 25 (a 250-frame-per-10 s SED head on ~1 s); injection: 4 layers of 2 × 6 tokens,
  dim 16; DPRNN: 2 blocks, 2 GRU layers, hidden 8):
  tfilm            n_fft 1024, additive time-FiLM; B 2: item 0 class 5, item 1 silence (zeros out).
  tfilm_inject     n_fft 1024, additive time-FiLM + injection "add"; B 2, classes 3 and 15.
  iter_dprnn       n_fft 2048, hop 160: the CP-JKU model — iterative (2 passes), additive time-FiLM,
                   injection "add", DPRNN after it; B 1, class 11.
  mult_concat      n_fft 1024, multiplicative time-FiLM with binarize_sed_preds, injection "concat",
                   DPRNN before it, not iterative; B 1, class 0.
  The waveform is also recomputed in f64; the printed "SNR f32 vs f64" is what f32 can reach.
  e2e_sed          the whole CP-JKU conditioning path on a 10 s clip: the stage-2 SED model of
                   tests/golden/m2d_sed.py (fixtures/m2d_sed_small) on the 4-channel mixture
                   c·(1 − 0.1c)-scaled copies of m2d_small_io's wave_10s → its strong logits and 3 hidden
                   states (3 × 310 × 64) → the iter_dprnn architecture with inject {layers 3, tokens 310,
                   dim 64, grid [5, 62]}, seed 60, class 11 (MechanicalFans); e2e_sed_io.safetensors:
                   waveform_head (1, 1, 1, 64000) = the first 2 s of the output, strong_logits (1, 18, 250).
  Also checked here: scripts/convert_cpjku_ckpt.py on a Lightning-style checkpoint of e2e_sed's
  separator (model.*) and the SED model (embedding_model.*) gives the committed directories back
  (less the dead time_film.* layers), and names a missing tensor or a missing SED model.

Run:  .venv/bin/python tests/golden/cpjku.py            (writes the fixtures, runs the checks)
      .venv/bin/python tests/golden/cpjku.py --full DIR (the full-size CP-JKU model — iterative, 2 passes,
            additive time-FiLM, injection "add" of 13 × 310 × 768 hidden states, DPRNN after it, n_fft
            2048, hop 160, default widths, cs 512, random weights, seed 99 — as DIR/cpjku_full/ and
            DIR/cpjku_full_io.safetensors with a 10 s mixture, label_vector (class 9), strong_logits
            (1, 18, 250), embeddings (1, 13, 310, 768) and PyTorch's waveform; for
            scripts/compare_separator.py --model cpjku; not committed)
"""
import copy
import importlib.util
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "cpjku")

_spec = importlib.util.spec_from_file_location("separator_ref", os.path.join(HERE, "separator.py"))
sep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sep)

ENC_POOLS = sep.ENC_POOLS


def timed(a, tb, key, rows, mode):
    """The time-FiLM term of one FiLM point."""
    if tb is None:
        return a
    t = F.interpolate(tb[key], size=(rows, 1), mode="bilinear", align_corners=False)
    return a + t if mode == "additive" else torch.sigmoid(t) * a


class ConvBlockRes(sep.ConvBlockRes):
    def forward(self, x, beta, path, tb=None, mode="additive"):
        r = x.shape[2]
        h = self.conv1(sep.lrelu(timed(self.bn1(x) + beta[path + "->beta1"], tb, path + "->beta1", r, mode)))
        h = self.conv2(sep.lrelu(timed(self.bn2(h) + beta[path + "->beta2"], tb, path + "->beta2", r, mode)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class EncoderBlock(nn.Module):
    def __init__(self, cin, cout, pool):
        super().__init__()
        self.conv_block1 = ConvBlockRes(cin, cout)
        self.pool = pool

    def forward(self, x, beta, path, tb, mode):
        y = self.conv_block1(x, beta, path + "->conv_block1", tb, mode)
        return F.avg_pool2d(y, self.pool), y


class DecoderBlock(nn.Module):
    def __init__(self, cin, cout, up):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(cin, cout, up, stride=up, bias=False)
        self.bn1 = sep.bn(cin)
        self.conv_block2 = ConvBlockRes(2 * cout, cout)
        self.bn2 = sep.bn(cin)  # stored, never applied

    def forward(self, x, skip, beta, path, tb, mode):
        a = timed(self.bn1(x) + beta[path + "->beta1"], tb, path + "->beta1", x.shape[2], mode)
        h = self.conv1(sep.lrelu(a))
        return self.conv_block2(torch.cat((h, skip), 1), beta, path + "->conv_block2", tb, mode)


class SingleRNN(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.rnn = nn.GRU(c, h, 2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * h, c)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.proj(y)


class DPRNN(nn.Module):
    def __init__(self, c, h, blocks):
        super().__init__()
        self.row_rnn = nn.ModuleList([SingleRNN(c, h) for _ in range(blocks)])
        self.col_rnn = nn.ModuleList([SingleRNN(c, h) for _ in range(blocks)])
        self.row_norm = nn.ModuleList([nn.GroupNorm(1, c, eps=1e-8) for _ in range(blocks)])
        self.col_norm = nn.ModuleList([nn.GroupNorm(1, c, eps=1e-8) for _ in range(blocks)])
        self.output = nn.Sequential(nn.PReLU(), nn.Conv2d(c, c, 1))

    def forward(self, x):
        B, C, T, Fq = x.shape
        for i in range(len(self.row_rnn)):
            r = self.row_rnn[i](x.permute(0, 3, 2, 1).reshape(B * Fq, T, C))
            x = x + self.row_norm[i](r.reshape(B, Fq, T, C).permute(0, 3, 2, 1))
            c = self.col_rnn[i](x.permute(0, 2, 3, 1).reshape(B * T, Fq, C))
            x = x + self.col_norm[i](c.reshape(B, T, Fq, C).permute(0, 3, 1, 2))
        return self.output(x)


def standardise(x):
    return (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-6)


class Base(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, cin = cfg["channels"], cfg["input_channels"]
        self.cfg = cfg
        nf = cfg["window_size"] // 2 + 1
        self.bn0 = sep.bn(nf)
        it = cfg["iterations"] > 0
        if it:
            self.bn0_fb = sep.bn(nf)
        self.pre_conv = nn.Conv2d(cin + int(it), ch[0], 1)
        for k in range(1, 7):
            self.add_module(f"encoder_block{k}", EncoderBlock(ch[k - 1], ch[k], ENC_POOLS[k - 1]))
        self.conv_block7a = EncoderBlock(ch[6], ch[6], (1, 1))
        prev = ch[6]
        for k in range(1, 7):
            self.add_module(f"decoder_block{k}", DecoderBlock(prev, ch[7 - k], (1, 2) if k == 1 else (2, 2)))
            prev = ch[7 - k]
        self.after_conv = nn.Conv2d(ch[1], cin * 3, 1)
        self.out_conv = nn.Conv2d(cin, 1, 1)
        inj = cfg["inject"]
        if inj:
            c = ch[6]
            if inj["method"] == "add":
                self.weight_x_center = nn.Parameter(torch.tensor(1.0))
                self.weight_soundbeam_features = nn.Parameter(torch.tensor(1.0))
            else:
                self.merge_conv = nn.Conv2d(2 * c, c, 1)
                self.merge_bn = sep.bn(2 * c)
            self.downsample_conv = nn.Conv2d(inj["dim"], c, 1)
            self.downsample_bn = sep.bn(inj["dim"])
        if cfg["dprnn"]:
            d = cfg["dprnn"]
            self.DPRNN = nn.Sequential(DPRNN(ch[6], d["hidden"], d["blocks"]))

    def mag_phase(self, wav):
        n_fft, hop = self.cfg["window_size"], self.cfg["hop_size"]
        B, C, L = wav.shape
        re, im = sep.stft(wav.reshape(B * C, L), n_fft, hop)
        T, nF = re.shape[1], re.shape[2]
        re, im = re.reshape(B, C, T, nF), im.reshape(B, C, T, nF)
        mag = torch.sqrt(torch.clamp(re * re + im * im, min=1e-10))
        return mag, re / mag, im / mag

    def inject(self, x, avg):
        inj = self.cfg["inject"]
        B = avg.shape[0]
        gf, gt = inj["grid"]
        f = avg.permute(0, 2, 1).unflatten(2, (gf, gt)).permute(0, 1, 3, 2)  # (B, dim, gt, gf)
        f = F.leaky_relu(self.downsample_bn(f), 0.01)
        f = F.interpolate(f, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        f = self.downsample_conv(f)
        if inj["method"] == "add":
            return self.weight_x_center * standardise(x) + self.weight_soundbeam_features * standardise(f)
        return self.merge_conv(F.leaky_relu(self.merge_bn(torch.cat([x, f], 1)), 0.01))

    def forward(self, mixture, fb, beta, tb, avg, source_mask, taps):
        cfg = self.cfg
        n_fft, hop, mode = cfg["window_size"], cfg["hop_size"], cfg["time_film"]
        B, cin, L = mixture.shape
        mag, cos, sin = self.mag_phase(mixture)
        T, nF = mag.shape[2], mag.shape[3]
        x = self.bn0(mag.transpose(1, 3)).transpose(1, 3)
        if fb is not None:
            fmag, _, _ = self.mag_phase(fb)
            x = torch.cat([x, self.bn0_fb(fmag.transpose(1, 3)).transpose(1, 3)], 1)
        tpad = -(-T // sep.TIME_MULTIPLE) * sep.TIME_MULTIPLE
        x = F.pad(x, (0, 0, 0, tpad - T))[..., : nF - 1]
        x = self.pre_conv(x)
        skips = []
        for k in range(1, 7):
            x, unpooled = self._modules[f"encoder_block{k}"](x, beta, f"encoder_block{k}", tb, mode)
            skips.append(unpooled)
        x, _ = self.conv_block7a(x, beta, "conv_block7a", tb, mode)
        taps.setdefault("center", x[:1])
        d = cfg["dprnn"]
        if d and d["position"] == "before_inject":
            x = self.DPRNN(x)
            taps.setdefault("dprnn", x[:1])
        if cfg["inject"]:
            x = self.inject(x, avg)
            taps.setdefault("merged", x[:1])
        if d and d["position"] == "after_inject":
            x = self.DPRNN(x)
            taps.setdefault("dprnn", x[:1])
        for k in range(1, 7):
            x = self._modules[f"decoder_block{k}"](x, skips[6 - k], beta, f"decoder_block{k}", tb, mode)
        x = self.after_conv(x)
        x = F.pad(x, (0, 1))[:, :, :T]
        x = x.reshape(B, 1, cin, 3, T, nF)
        mm = torch.sigmoid(x[:, :, :, 0])
        mr, mi = torch.tanh(x[:, :, :, 1]), torch.tanh(x[:, :, :, 2])
        mabs = torch.clamp(torch.sqrt(mr * mr + mi * mi), min=1e-10)
        mc, ms = mr / mabs, mi / mabs
        cos, sin, mag = cos[:, None], sin[:, None], mag[:, None]
        out_mag = F.relu(mag * mm)
        yr = (out_mag * (cos * mc - sin * ms)).reshape(B, cin, T, nF)
        yi = (out_mag * (sin * mc + cos * ms)).reshape(B, cin, T, nF)
        yr, yi = self.out_conv(yr), self.out_conv(yi)
        wav = sep.istft(yr.reshape(B, T, nF), yi.reshape(B, T, nF), n_fft, hop, L)
        return wav.reshape(B, 1, 1, L) * source_mask[:, :, None, None]


class Iterative(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ss_model = Base(cfg)
        self.n = cfg["iterations"]

    def forward(self, mixture, beta, tb, avg, source_mask, taps):
        B, _, L = mixture.shape
        fb = torch.zeros(B, 1, L, dtype=mixture.dtype)
        for i in range(self.n):
            wav = self.ss_model(mixture, fb, beta, tb, avg, source_mask, taps)
            taps.setdefault(f"pass{i + 1}", wav)
            fb = wav.reshape(B, 1, L)
        return wav


class Separator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        cs = cfg["condition_size"]
        layout = sep.film_layout(cfg["channels"])
        self.base = Iterative(cfg) if cfg["iterations"] > 0 else Base(cfg)
        self.film = sep.Film(cs, layout)
        self.label_embedding = nn.Sequential(nn.Linear(18, cs), nn.LayerNorm(cs), nn.ReLU(),
                                             nn.Linear(cs, cs), nn.LayerNorm(cs), nn.ReLU())
        if cfg["time_film"]:
            self.time_embedding = nn.Sequential(nn.Linear(1, 512), nn.LayerNorm(512), nn.ReLU(),
                                                nn.Linear(512, cs), nn.LayerNorm(cs), nn.ReLU())
            self.time_film = sep.Film(cs, layout)  # dead in the published code
        if cfg["inject"]:
            self.soundbeam_weights = nn.Parameter(torch.ones(cfg["inject"]["layers"]) / cfg["inject"]["layers"])

    def forward(self, mixture, label_vector, logits, embeddings, taps):
        B = label_vector.shape[0]
        source_mask = (label_vector.reshape(B, 1, -1).sum(2) != 0).to(mixture.dtype)
        beta = self.film(self.label_embedding(label_vector))
        tb = None
        if self.cfg["time_film"]:
            lg = (logits > 0).to(logits.dtype) if self.cfg["binarize_sed_preds"] else logits
            idx = label_vector.argmax(dim=-1)
            sel = torch.stack([lg[b, idx[b]] for b in range(B)])[:, None, :]  # (B, 1, T)
            sel = sel * (label_vector.sum(-1) != 0).to(sel.dtype)[:, None, None]
            T = sel.shape[2]
            e = self.time_embedding(sel.transpose(1, 2).reshape(B * T, 1)).reshape(B, T, -1)
            tb = {p: l(e.reshape(B * T, -1)).reshape(B, T, -1).permute(0, 2, 1)[..., None]
                  for p, l in self.film._modules.items()}
        avg = None
        if self.cfg["inject"]:
            w = F.softmax(self.soundbeam_weights, 0)
            avg = (embeddings * w[None, :, None, None]).sum(1)
        if isinstance(self.base, Iterative):
            return self.base(mixture, beta, tb, avg, source_mask, taps)
        return self.base(mixture, None, beta, tb, avg, source_mask, taps)


def randomize(model, seed):
    sep.randomize(model, seed)
    g = torch.Generator().manual_seed(500 + seed)

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.GRU):
                for pn, p in m.named_parameters():
                    k = 1 / math.sqrt(m.hidden_size)
                    p.copy_(u(p.shape, -k, k))
            elif isinstance(m, nn.GroupNorm):
                m.weight.copy_(u(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(u(m.bias.shape, -0.3, 0.3))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(u(m.weight.shape, 0.1, 0.4))
        for pn, p in model.named_parameters():
            if pn.endswith("weight_x_center") or pn.endswith("weight_soundbeam_features"):
                p.copy_(u(p.shape, 0.5, 1.5))
            elif pn == "soundbeam_weights":
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model.eval()


CH = [4, 4, 8, 8, 12, 12, 16]
INJ = {"layers": 4, "tokens": 12, "dim": 16, "grid": [2, 6]}


def config(n_fft, time_film, inject, dprnn, iterations, binarize=False):
    c = sep.make_config(4, 1, 1, 18, n_fft, 160, True, CH, 64, "label")
    c.update({"time_film": time_film, "binarize_sed_preds": binarize,
              "inject": dict(INJ, method=inject) if inject else None,
              "dprnn": {"blocks": 2, "rnn_layers": 2, "hidden": 8, "channels": CH[6], "position": dprnn} if dprnn else None,
              "iterations": iterations})
    return c


CASES = [
    ("tfilm", config(1024, "additive", None, None, 0), [5, None]),
    ("tfilm_inject", config(1024, "additive", "add", None, 0), [3, 15]),
    ("iter_dprnn", config(2048, "additive", "add", "after_inject", 2), [11]),
    ("mult_concat", config(1024, "multiplicative", "concat", "before_inject", 0, binarize=True), [0]),
]
L, T_SED = 9650, 25


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for i, (name, cfg, classes) in enumerate(CASES):
        seed = 40 + i
        model = randomize(Separator(cfg), seed)
        B = len(classes)
        g = torch.Generator().manual_seed(3000 + seed)
        mixture = sep.make_mixture(seed, B, 4, L)
        labels = torch.stack([sep.one_hot(c) for c in classes])
        logits = torch.randn(B, 18, T_SED, generator=g) * 2
        io = {"mixture": mixture, "label_vector": labels, "strong_logits": logits}
        emb = None
        if cfg["inject"]:
            emb = torch.randn(B, INJ["layers"], INJ["tokens"], INJ["dim"], generator=g)
            io["embeddings"] = emb
        taps = {}
        with torch.no_grad():
            wav = model(mixture, labels, logits, emb, taps)
            m64 = copy.deepcopy(model).double()
            wav64 = m64(mixture.double(), labels.double(), logits.double(), None if emb is None else emb.double(), {})
        io["waveform"] = wav
        io.update(taps)
        d = os.path.join(OUT, name)
        sd = sep.save_checkpoint(model, cfg, d, keep_nbt=False)
        save_file({k: v.float().contiguous().clone() for k, v in io.items()}, os.path.join(OUT, f"{name}_io.safetensors"))
        print(f"{name}: {len(sd)} tensors, waveform rms {float(wav.pow(2).mean().sqrt()):.4g}, "
              f"SNR f32 vs f64 {sep.snr_db(wav64, wav):.1f} dB, taps {sorted(taps)}")


def e2e():
    """The stage-2 SED model of tests/golden/m2d_sed.py feeding a CP-JKU separator on a 10 s clip."""
    spec = importlib.util.spec_from_file_location("m2d_sed_ref", os.path.join(HERE, "m2d_sed.py"))
    msed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msed)
    sed = msed.build()
    w = load_file(os.path.join(HERE, "fixtures", "m2d_small_io.safetensors"))["wave_10s"]  # (1, 320000)
    mixture = torch.stack([w[0] * (1 - 0.1 * c) for c in range(4)])[None]
    cfg = config(1024, "additive", "add", "after_inject", 2)
    cfg["inject"] = {"method": "add", "layers": 3, "tokens": 310, "dim": 64, "grid": [5, 62]}
    model = randomize(Separator(cfg), 60)
    labels = sep.one_hot(11)[None]
    taps = {}
    with torch.no_grad():
        logits, _, hidden, _ = sed(mixture)
        wav = model(mixture, labels, logits, hidden, taps)
    sep.save_checkpoint(model, cfg, os.path.join(OUT, "e2e_sed"), keep_nbt=False)
    io = {"waveform_head": wav[..., :64000], "strong_logits": logits}
    save_file({k: v.float().contiguous().clone() for k, v in io.items()}, os.path.join(OUT, "e2e_sed_io.safetensors"))
    print(f"e2e_sed: waveform rms {float(wav.pow(2).mean().sqrt()):.4g}")
    check_converter(model, sed)


def check_converter(model, sed):
    """scripts/convert_cpjku_ckpt.py on a Lightning-style checkpoint of the e2e models must give the
    committed directories back (less the dead time_film.* layers), and refuse broken inputs."""
    import subprocess
    import sys
    import tempfile
    repo = os.path.dirname(os.path.dirname(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        sd = {"model." + k: v for k, v in model.state_dict().items()}
        sd["model.base.ss_model.stft.conv_real.weight"] = torch.zeros(3)  # torchlibrosa's buffers: dropped
        sd.update({"embedding_model." + k: v for k, v in sed.state_dict().items()})
        sd["embedding_model.model.m2d.to_spec.mel_basis"] = torch.zeros(2)
        ckpt = os.path.join(tmp, "last.ckpt")
        torch.save({"state_dict": sd, "epoch": 3}, ckpt)
        run = lambda *a: subprocess.run([sys.executable, os.path.join(repo, "scripts", "convert_cpjku_ckpt.py"), *a],
                                        capture_output=True, text=True)
        r = run(ckpt, os.path.join(tmp, "sep"), "--sed-out", os.path.join(tmp, "sed"), "--num-heads", "4")
        assert r.returncode == 0, r.stderr
        for got, want in (("sep", os.path.join(OUT, "e2e_sed")), ("sed", os.path.join(HERE, "fixtures", "m2d_sed_small"))):
            with open(os.path.join(tmp, got, "config.json")) as f, open(os.path.join(want, "config.json")) as g:
                assert json.load(f) == json.load(g), got
            a, b = load_file(os.path.join(tmp, got, "model.safetensors")), load_file(os.path.join(want, "model.safetensors"))
            extra = sorted(k for k in b if k not in a)
            assert all(k.startswith("time_film.") or k == "model.m2d.backbone.norm_stats" for k in extra), extra
            assert set(a) <= set(b) and all(torch.equal(a[k], b[k]) for k in a), got
        bad = dict(sd)
        del bad["model.base.ss_model.DPRNN.0.col_rnn.1.proj.bias"]
        torch.save({"state_dict": bad}, ckpt)
        r = run(ckpt, os.path.join(tmp, "x"), "--sed-out", os.path.join(tmp, "y"), "--num-heads", "4")
        assert r.returncode == 1 and "DPRNN.0.col_rnn.1.proj.bias" in r.stderr, r.stderr
        torch.save({"state_dict": {k: v for k, v in sd.items() if not k.startswith("embedding_model.")}}, ckpt)
        r = run(ckpt, os.path.join(tmp, "x"), "--sed-out", os.path.join(tmp, "y"))
        assert r.returncode == 1 and "embedding_model" in r.stderr, r.stderr
    print("convert_cpjku_ckpt.py: round trip of e2e_sed + m2d_sed_small and its error paths OK")


def full(out_dir):
    """The CP-JKU separator at full size (random weights) for speed comparisons: not committed."""
    cfg = sep.make_config(4, 1, 1, 18, 2048, 160, True, sep.DEFAULT_CHANNELS, 512, "label")
    cfg.update({"time_film": "additive", "binarize_sed_preds": False,
                "inject": {"method": "add", "layers": 13, "tokens": 310, "dim": 768, "grid": [5, 62]},
                "dprnn": {"blocks": 2, "rnn_layers": 2, "hidden": 256, "channels": 384, "position": "after_inject"},
                "iterations": 2})
    model = randomize(Separator(cfg), 99)
    g = torch.Generator().manual_seed(99)
    mixture = sep.make_mixture(99, 1, 4, 320000)
    labels = sep.one_hot(9)[None]
    logits = torch.randn(1, 18, 250, generator=g) * 2
    emb = torch.randn(1, 13, 310, 768, generator=g)
    with torch.no_grad():
        wav = model(mixture, labels, logits, emb, {})
    sep.save_checkpoint(model, cfg, os.path.join(out_dir, "cpjku_full"), keep_nbt=False)
    save_file({"mixture": mixture, "label_vector": labels, "strong_logits": logits, "embeddings": emb, "waveform": wav.contiguous()},
              os.path.join(out_dir, "cpjku_full_io.safetensors"))
    print(f"wrote {out_dir}/cpjku_full and cpjku_full_io.safetensors")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--full":
        full(sys.argv[2])
    else:
        main()
        e2e()
