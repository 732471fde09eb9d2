"""Golden fixtures of the separator's spectral back-end backward rules: writes
tests/golden/fixtures/spectral_grads.safetensors, read by autograd/tests/spectral.rs. Deterministic
(fixed seed); CPU; torch (the .venv's). Every loss is L = sum(out * R) with a fixed random R (so
dL/dout = R, stored as `<case>.dy`).

istft cases (`<case>.spec` (2, 2, F, T) planes re/im, `.y` the forward, `.dy`, `.grad.spec` the
gradient of both planes, `.meta` = [n_fft, hop, length, T]):
  y = torch.istft(torch.complex(spec[:, 0], spec[:, 1]), n_fft, hop, window=torch.hann_window(n_fft),
                  center=True, length=length)
- istft_full:   n_fft 64, hop 16, T 9, length = hop·(T − 1) = 128.
- istft_short:  n_fft 64, hop 16, T 9, length 100 (shorter: the tail's gradient is cropped away).
- istft_long:   n_fft 64, hop 16, T 9, length 170 (longer than the frames reach, N/2 + 170 > 64 +
                16·8: torch pads zeros, which get no gradient).
- istft_odd:    n_fft 63, hop 16, T 9, length 128 (odd N: no Nyquist bin, F = 32).

complex_mask cases (B 2, S 2, C 2, F 7, T 7, T′ 8; `<case>.spec` (B, C, 2, F, T), `.x` (B, S·C·3,
T′, F − 1), `.y` (B, S, O, 2, F, T), `.dy`, `.grad.x`; with out_conv also `.weight` (O, C), `.bias`
(O), `.grad.weight`, `.grad.bias`; with a gate `.gate` (B, S)):
  re, im = spec[:, :, 0], spec[:, :, 1];  mag = sqrt(clamp(re² + im², min=1e-10)); cos = re/mag, sin = im/mag
  x6 = x.view(B, S, C, 3, T′, F − 1)[..., :T, :].transpose(-1, -2), padded with a zero Nyquist row
  mm = sigmoid(x0), mr = tanh(x1), mi = tanh(x2), mn = sqrt(mr² + mi²).clamp(min=1e-10)
  A = relu(mag·mm); yr = A·(cos·mr/mn − sin·mi/mn); yi = A·(sin·mr/mn + cos·mi/mn)
  out_conv: Y = einsum('oc,bscft->bsoft', W, y) + bias (re and im);  gate: Y·gate[b, s]
- mask_oc_gate: out_conv 2 → 3 and gate [[1, 0.7], [0, 1.3]] (slot (1, 0) gated 0).
- mask_plain:   no out_conv, no gate (O = C).

stft cases (`<case>.x` (2, L), `.y` (2, 2, F, T) planes re/im, `.dy`, `.grad.x`, `.meta` = [n_fft, hop, L]):
  s = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, pad_mode='reflect',
                 return_complex=True);  y = stack(s.real, s.imag)
- stft_even: n_fft 64, hop 16, L 150.   - stft_odd: n_fft 63, hop 13, L 100 (odd N, partial last hop).

Run: /work/main/.venv/bin/python tests/golden/spectral_grads.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
t = {}


def istft_case(name, n_fft, hop, frames, length):
    nf = n_fft // 2 + 1
    spec = torch.randn(2, 2, nf, frames, requires_grad=True)
    y = torch.istft(torch.complex(spec[:, 0], spec[:, 1]), n_fft, hop, window=torch.hann_window(n_fft), center=True, length=length)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.spec"], t[f"{name}.y"], t[f"{name}.dy"], t[f"{name}.grad.spec"] = spec.detach(), y.detach(), r, spec.grad
    t[f"{name}.meta"] = torch.tensor([n_fft, hop, length, frames], dtype=torch.float32)


def mask_case(name, out_conv, gate):
    B, S, C, Fq, T, Tp, O = 2, 2, 2, 7, 7, 8, 3
    spec = torch.randn(B, C, 2, Fq, T)
    x = (1.5 * torch.randn(B, S * C * 3, Tp, Fq - 1)).requires_grad_(True)
    params = {"x": x}
    re, im = spec[:, :, 0], spec[:, :, 1]
    mag = torch.sqrt(torch.clamp(re**2 + im**2, min=1e-10))
    cos, sin = re / mag, im / mag
    x6 = x.view(B, S, C, 3, Tp, Fq - 1)[..., :T, :].transpose(-1, -2)  # (B, S, C, 3, F - 1, T)
    x6 = F.pad(x6, (0, 0, 0, 1))  # zero Nyquist row
    mm, mr, mi = torch.sigmoid(x6[:, :, :, 0]), torch.tanh(x6[:, :, :, 1]), torch.tanh(x6[:, :, :, 2])
    mn = torch.sqrt(mr**2 + mi**2).clamp(min=1e-10)
    mc, ms = mr / mn, mi / mn
    a = torch.relu(mag[:, None] * mm)
    yr = a * (cos[:, None] * mc - sin[:, None] * ms)
    yi = a * (sin[:, None] * mc + cos[:, None] * ms)
    if out_conv:
        w = (0.7 * torch.randn(O, C)).requires_grad_(True)
        bias = (0.3 * torch.randn(O)).requires_grad_(True)
        params.update(weight=w, bias=bias)
        yr = torch.einsum("oc,bscft->bsoft", w, yr) + bias[:, None, None]
        yi = torch.einsum("oc,bscft->bsoft", w, yi) + bias[:, None, None]
    y = torch.stack([yr, yi], dim=3)  # (B, S, O, 2, F, T)
    if gate is not None:
        g = torch.tensor(gate, dtype=torch.float32)
        t[f"{name}.gate"] = g
        y = y * g[:, :, None, None, None, None]
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.spec"], t[f"{name}.y"], t[f"{name}.dy"] = spec, y.detach(), r
    for n, p in params.items():
        t[f"{name}.{n}"] = p.detach().clone()
        t[f"{name}.grad.{n}"] = p.grad.clone()


istft_case("istft_full", 64, 16, 9, 128)
istft_case("istft_short", 64, 16, 9, 100)
istft_case("istft_long", 64, 16, 9, 170)
istft_case("istft_odd", 63, 16, 9, 128)
mask_case("mask_oc_gate", True, [[1.0, 0.7], [0.0, 1.3]])
mask_case("mask_plain", False, None)


def stft_case(name, n_fft, hop, length):
    x = torch.randn(2, length, requires_grad=True)
    sp = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, pad_mode="reflect", return_complex=True)
    y = torch.stack([sp.real, sp.imag], 1)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    t[f"{name}.x"], t[f"{name}.y"], t[f"{name}.dy"], t[f"{name}.grad.x"] = x.detach(), y.detach(), r, x.grad
    t[f"{name}.meta"] = torch.tensor([n_fft, hop, length], dtype=torch.float32)


stft_case("stft_even", 64, 16, 150)
stft_case("stft_odd", 63, 13, 100)

for k, v in t.items():
    assert torch.isfinite(v).all(), k
t = {k: v.contiguous().float() for k, v in t.items()}
out = Path(__file__).parent / "fixtures" / "spectral_grads.safetensors"
save_file(t, str(out))
print(f"wrote {out} ({len(t)} tensors, {out.stat().st_size} bytes)")
