"""Golden fixture of the SED training augmentations: tests/golden/fixtures/augment.safetensors, read by
trainer/tests/augment.rs (trainer/src/augment.rs's apply functions, given the same random draws).

Run: /work/main/.venv/bin/python tests/golden/augment.py   (torch 2.9.1, torchaudio 2.9.1; CPU; fixed seeds)

Features are AST-normalised log-mel, one sample (l frames, m mel bins): x = (ln P - MEAN)*S with P the mel
power and S = 1/(2*STD). Integers are stored as f32. Cases:
  mask.{i}   torchaudio.functional.mask_along_axis (time or freq) on x transposed to torchaudio's
             (1, freq, time) layout; `u` = its two torch.rand(1) draws (value, then start), recorded by
             re-seeding the global generator with the same seed before the call. Cases include
             mask_param > axis size (negative start) and a time mask through T.TimeMasking.
  roll.{i}   torch.roll of x along time by `shift` and of frame targets (f, k) by `tshift`
             = sign(s)*round_half_away(|s|*f/l).
  mixup.{i}  the DESED baseline's mixup on samples [lo, hi) of a batch: c*x + (1-c)*x[perm] with c = lam
             (an f32 value from np.random.beta(0.2, 0.2)), perm = torch.randperm; soft targets
             clamp(c*t + (1-c)*t[perm], 0, 1) or hard clamp(t + t[perm], 0, 1), for strong and weak targets.
  filt.{i}   DESED / FilterAugSED `filt_aug` (re-implemented below from its formula, torch ops, global
             generator) on the *magnitude* mel of x (sqrt(P), DESED's MelSpectrogram(power=1)) in f32,
             then back to normalised log power. `n_band`, `bounds`, `factors` (dB, as torch computed them)
             are its draws, replayed by re-seeding; `filt_db` = the per-bin dB filter (torch.linspace for
             the linear type) before 10**(dB/20).
  gain       P*10**(db/10) then back to normalised log power.
"""
import pathlib

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF
import torchaudio.transforms as AT
from safetensors.torch import save_file

MEAN, STD = -4.2677393, 4.5689974  # AST's AudioSet normalisation
S = 1.0 / (2.0 * STD)
t = {}


def feats(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 1.5 + 0.2).to(torch.float32)


def to_power(x):  # normalised log power (f32) -> power (f64)
    return torch.exp(x.double() / S + MEAN)


def from_power(p):  # power (f64) -> normalised log power (f32)
    return ((torch.log(p) - MEAN) * S).float()


def f32(v):
    return torch.tensor(np.asarray(v, dtype=np.float32))


# ---- masks: torchaudio's own mask_along_axis on (1, m, l); axis 2 = time, 1 = freq.
mask_cases = [  # (l, m, axis, param, value, seed, via transform)
    (40, 24, "time", 25, 0.0, 11, False),
    (40, 24, "freq", 12, 0.0, 12, False),
    (40, 24, "time", 100, -0.5, 13, False),  # param > l: start may be negative
    (40, 24, "freq", 40, 1.25, 14, False),  # param > m
    (40, 24, "time", 30, 0.0, 15, True),  # through T.TimeMasking
    (40, 24, "freq", 8, 0.0, 16, True),  # through T.FrequencyMasking
    (40, 24, "time", 1, 0.0, 17, False),  # width trunc(u*1) = 0: nothing masked
    (40, 24, "freq", 60, 0.0, None, False),  # width > m: negative start (seed searched below)
]
for i, (l, m, axis, param, value, seed, via_t) in enumerate(mask_cases):
    x = feats((l, m), 100 + i)
    spec = x.T.contiguous().unsqueeze(0)  # (1, m, l)
    size = l if axis == "time" else m
    if seed is None:  # first seed whose mask is wider than the axis and starts below 0
        seed = 2000
        while True:
            torch.manual_seed(seed)
            uv, us = torch.rand(1), torch.rand(1)
            if (us * (size - uv * param)).long() < 0:
                break
            seed += 1
    torch.manual_seed(seed)
    u = torch.cat([torch.rand(1), torch.rand(1)])
    torch.manual_seed(seed)
    if via_t:
        tr = AT.TimeMasking(param) if axis == "time" else AT.FrequencyMasking(param)
        out = tr(spec, value)
    else:
        out = AF.mask_along_axis(spec, param, value, 2 if axis == "time" else 1)
    out = out[0].T.contiguous()
    # The same with the formula in torch ops (f32), as a check of the recorded draws.
    v = u[0:1] * param
    v0 = u[1:2] * (size - v)
    start, end = int(v0.long()), int(v0.long() + v.long())
    ref = x.clone()
    lo, hi = max(start, 0), min(max(end, 0), size)
    if axis == "time":
        ref[lo:hi, :] = value
    else:
        ref[:, lo:hi] = value
    assert torch.equal(ref, out), (i, start, end)
    t[f"mask.{i}.x"] = x
    t[f"mask.{i}.u"] = u
    t[f"mask.{i}.cfg"] = f32([0 if axis == "time" else 1, param, value])
    t[f"mask.{i}.range"] = f32([lo, hi])
    t[f"mask.{i}.out"] = out


# ---- roll: features along time, frame targets along frames.
def label_shift(s, l, f):
    r = (2 * abs(s) * f + l) // (2 * l)
    return -r if s < 0 else r


roll_cases = [(48, 8, 37, 4, 7), (48, 8, 37, 4, -13), (48, 8, 37, 4, 70), (48, 8, 37, 4, -100), (48, 8, 37, 4, 0), (1024, 2, 1010, 3, -77)]
for i, (l, m, f, k, s) in enumerate(roll_cases):
    x = feats((l, m), 200 + i)
    tg = (torch.rand((f, k), generator=torch.Generator().manual_seed(300 + i)) > 0.6).float()
    ts = label_shift(s, l, f)
    t[f"roll.{i}.x"] = x
    t[f"roll.{i}.t"] = tg
    t[f"roll.{i}.shift"] = f32([s, ts])
    t[f"roll.{i}.x_out"] = torch.roll(x, s, dims=0)
    t[f"roll.{i}.t_out"] = torch.roll(tg, ts, dims=0)


# ---- mixup (DESED baseline formula), on samples [lo, hi) of a batch.
np.random.seed(0)
mix_cases = [(7, 1, 6, True), (7, 1, 6, False), (4, 0, 4, True), (6, 2, 4, True)]  # (b, lo, hi, soft)
l, m, f, k = 12, 8, 10, 5
for i, (b, lo, hi, soft) in enumerate(mix_cases):
    x = feats((b, l, m), 400 + i)
    g = torch.Generator().manual_seed(500 + i)
    strong = (torch.rand((b, f, k), generator=g) > 0.7).float()
    strong[0, :, 0] = 0.35  # a soft target value
    weak = (strong.amax(dim=1) > 0).float()
    lam = float(np.float32(np.random.beta(0.2, 0.2)))
    torch.manual_seed(600 + i)
    perm = torch.randperm(hi - lo)

    def mix(d, is_target):
        d = d.clone()
        part = d[lo:hi]
        if not is_target:
            d[lo:hi] = lam * part + (1 - lam) * part[perm]
        elif soft:
            d[lo:hi] = torch.clamp(lam * part + (1 - lam) * part[perm], min=0, max=1)
        else:
            d[lo:hi] = torch.clamp(part + part[perm], min=0, max=1)
        return d

    t[f"mixup.{i}.cfg"] = f32([lo, hi, 1 if soft else 0, lam])
    t[f"mixup.{i}.perm"] = perm.float()
    t[f"mixup.{i}.x"], t[f"mixup.{i}.strong"], t[f"mixup.{i}.weak"] = x, strong, weak
    t[f"mixup.{i}.x_out"], t[f"mixup.{i}.strong_out"], t[f"mixup.{i}.weak_out"] = mix(x, False), mix(strong, True), mix(weak, True)


# ---- FilterAugment: DESED's filt_aug, from its formula, on (batch, freq, time) magnitude features.
def filt_aug(features, db_range, n_band, min_bw, filter_type):
    """Returns (filtered features, per-bin dB filter (batch, freq) or None when n_band <= 1)."""
    batch, n_freq, _ = features.shape
    nb = torch.randint(low=n_band[0], high=n_band[1], size=(1,)).item()  # [low, high)
    if nb <= 1:
        return features, None
    while n_freq - nb * min_bw + 1 < 0:
        min_bw -= 1
    bounds = torch.sort(torch.randint(0, n_freq - nb * min_bw + 1, (nb - 1,)))[0] + torch.arange(1, nb) * min_bw
    bounds = torch.cat((torch.tensor([0]), bounds, torch.tensor([n_freq])))
    if filter_type == "step":
        factors = torch.rand((batch, nb)).to(features) * (db_range[1] - db_range[0]) + db_range[0]
        filt_db = torch.zeros((batch, n_freq)).to(features)
        for i in range(nb):
            filt_db[:, bounds[i] : bounds[i + 1]] = factors[:, i : i + 1]
        lin = torch.ones((batch, n_freq, 1)).to(features)
        lin_f = 10 ** (factors / 20)
        for i in range(nb):
            lin[:, bounds[i] : bounds[i + 1], :] = lin_f[:, i].unsqueeze(-1).unsqueeze(-1)
    else:
        factors = torch.rand((batch, nb + 1)).to(features) * (db_range[1] - db_range[0]) + db_range[0]
        filt = torch.ones((batch, n_freq, 1)).to(features)
        for i in range(nb):
            for j in range(batch):
                filt[j, bounds[i] : bounds[i + 1], :] = torch.linspace(factors[j, i], factors[j, i + 1], bounds[i + 1] - bounds[i]).unsqueeze(-1)
        filt_db = filt[:, :, 0].clone()
        lin = 10 ** (filt / 20)
    return features * lin, filt_db


filt_cases = [  # (b, l, m, db_range, n_band, min_bw, type, seed)
    (3, 20, 64, (-6, 6), (3, 6), 6, "linear", 21),
    (3, 20, 64, (-6, 6), (2, 5), 4, "step", 22),
    (2, 10, 12, (-6, 6), (5, 6), 6, "linear", 23),  # min_bw reduced to 2
    (2, 10, 8, (-9, 3), (4, 5), 1, "linear", None),  # width-1 bands (seed searched below)
    (2, 10, 128, (-6, 6), (3, 6), 6, "linear", 25),  # m = 128, AST's mel count
]
for i, (b, l, m, dbr, n_band, min_bw, ftype, seed) in enumerate(filt_cases):
    x = feats((b, l, m), 700 + i)
    mag = torch.sqrt(to_power(x)).float().transpose(1, 2).contiguous()  # (b, m, l) f32, DESED layout
    if seed is None:  # first seed whose boundaries have a band of width 1
        seed = 1000
        while True:
            torch.manual_seed(seed)
            nb = torch.randint(n_band[0], n_band[1], (1,)).item()
            raw = torch.sort(torch.randint(0, m - nb * min_bw + 1, (nb - 1,)))[0] + torch.arange(1, nb) * min_bw
            bnd = [0] + raw.tolist() + [m]
            if 1 in np.diff(bnd):
                break
            seed += 1
    torch.manual_seed(seed)
    out, filt_db = filt_aug(mag, dbr, n_band, min_bw, ftype)
    # Replay the draws.
    torch.manual_seed(seed)
    nb = torch.randint(low=n_band[0], high=n_band[1], size=(1,)).item()
    bw = min_bw
    while m - nb * bw + 1 < 0:
        bw -= 1
    raw = torch.randint(0, m - nb * bw + 1, (nb - 1,))
    bounds = torch.cat((torch.tensor([0]), torch.sort(raw)[0] + torch.arange(1, nb) * bw, torch.tensor([m])))
    nf = nb if ftype == "step" else nb + 1
    factors = torch.rand((b, nf)) * (dbr[1] - dbr[0]) + dbr[0]
    assert filt_db is not None
    if ftype == "step":
        assert all(torch.equal(filt_db[:, bounds[j] : bounds[j + 1]], factors[:, j : j + 1].expand(-1, int(bounds[j + 1] - bounds[j]))) for j in range(nb))
    t[f"filt.{i}.x"] = x
    t[f"filt.{i}.cfg"] = f32([nb, 1 if ftype == "step" else 0, S, bw])
    t[f"filt.{i}.raw"] = raw.float()
    t[f"filt.{i}.bounds"] = bounds.float()
    t[f"filt.{i}.factors"] = factors
    t[f"filt.{i}.filt_db"] = filt_db
    t[f"filt.{i}.out"] = from_power(out.double().transpose(1, 2) ** 2)
    print(f"filt.{i}: {ftype} n_band {nb} min_bw {bw} bounds {bounds.tolist()}")

# ---- gain: power * 10**(db/10).
x = feats((2, 30, 16), 800)
dbs = [4.75, -5.5]
t["gain.x"] = x
t["gain.db"] = f32(dbs + [S])
t["gain.out"] = torch.stack([from_power(to_power(x[j]) * 10 ** (dbs[j] / 10)) for j in range(2)])

out = pathlib.Path(__file__).parent / "fixtures" / "augment.safetensors"
save_file({k: v.contiguous() for k, v in t.items()}, str(out))
print(f"torch {torch.__version__} torchaudio {torchaudio.__version__}: wrote {out} ({out.stat().st_size} bytes, {len(t)} tensors)")
