"""Golden fixtures of the CP-JKU separator's whole-model gradients (issue #18): the PyTorch reference of
tests/golden/cpjku.py with the committed weights of tests/golden/fixtures/cpjku/<case>/, its inputs
(<case>_io.safetensors: mixture, label_vector, strong_logits, embeddings), a target waveform, loss =
mean over the batch of −SNR(estimate, target) in dB (torchmetrics' formula, eps = float32 eps), and
torch.autograd's gradient of every parameter. The iterative model runs its passes as CP-JKU trains it:
the earlier passes under no_grad (BatchNorm still in the module's mode), the feedback detached, the
gradient through the last pass only.

- cpjku_grads_train.safetensors: case iter_dprnn (iterative, 2 passes; additive time-FiLM; injection
  "add"; DPRNN after it) in train() — BatchNorm on batch statistics; also running/<bn>.running_mean and
  .running_var after the forward (both passes update them, momentum 0.01).
- cpjku_grads_eval.safetensors: case mult_concat (multiplicative time-FiLM on binarised logits;
  injection "concat"; DPRNN before it) in eval().
Each holds waveform (the target, (B, 1, L)), loss (1) and grad/<name>. The reference is computed in
float64 (the model and inputs cast up; the target is the float32 one): the iterative model in train()
amplifies rounding (pass 2 reads pass 1's output; batch statistics over the small bottleneck), so
torch's own float32 gradients differ from its float64 ones by up to 4.1e-3 of a gradient's largest
value on iter_dprnn (printed as "torch f32 vs f64"). The test's tolerance is stated against this.

Run: /work/main/.venv/bin/python tests/golden/cpjku_train.py
"""
import copy
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpjku as cj  # noqa: E402
import separator as sep  # noqa: E402

torch.set_num_threads(1)
EPS = torch.finfo(torch.float32).eps
FIX = os.path.join(HERE, "fixtures")


def iterative_forward(self, mixture, beta, tb, avg, source_mask, taps):
    B, _, L = mixture.shape
    fb = torch.zeros(B, 1, L, dtype=mixture.dtype)
    for i in range(self.n):
        with torch.set_grad_enabled(i == self.n - 1):
            wav = self.ss_model(mixture, fb, beta, tb, avg, source_mask, taps)
        fb = wav.detach().reshape(B, 1, L)
    return wav


cj.Iterative.forward = iterative_forward


def case(name, train, out):
    t64 = run(name, train, torch.float64)
    t32 = run(name, train, torch.float32)
    worst = max(float((t32[k].double() - t64[k]).abs().max() / t64[k].abs().max())
                for k in t64 if k.startswith("grad/") and float(t64[k].abs().max()) > 1e-6)
    save_file({k: v.float().contiguous() for k, v in t64.items()}, os.path.join(FIX, out))
    print(f"{name} ({'train' if train else 'eval'}): loss {float(t64['loss']):.6f}, "
          f"{sum(k.startswith('grad/') for k in t64)} gradients → {out}; torch f32 vs f64: worst {worst:.2e}")


def run(name, train, dtype):
    cfg = dict(next(c for n, c, _ in cj.CASES if n == name))
    model = cj.Separator(cfg)
    sd = load_file(os.path.join(FIX, "cpjku", name, "model.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    io = load_file(os.path.join(FIX, "cpjku", f"{name}_io.safetensors"))
    mixture, labels, logits = io["mixture"], io["label_vector"], io["strong_logits"]
    emb = io.get("embeddings")
    B, _, L = mixture.shape
    g = torch.Generator().manual_seed(91)
    target = (0.6 * mixture[:, :1] + 0.02 * torch.randn(B, 1, L, generator=g)).float()
    save_target = target
    model = model.to(dtype)
    mixture, labels, logits, target = mixture.to(dtype), labels.to(dtype), logits.to(dtype), target.to(dtype)
    emb = None if emb is None else emb.to(dtype)
    model.train(train)
    wav = model(mixture, labels, logits, emb, {})
    est = wav.reshape(B, 1, L)
    snr = 10 * torch.log10(((target * target).sum(-1) + EPS) / (((target - est) ** 2).sum(-1) + EPS))
    loss = -snr.mean()
    loss.backward()
    t = {"waveform": save_target.double(), "loss": loss.detach().reshape(1)}
    for n, p in model.named_parameters():
        if p.grad is not None:
            t[f"grad/{n}"] = p.grad.detach().clone()
    if train:
        for n, b in model.named_buffers():
            if n.endswith("running_mean") or n.endswith("running_var"):
                t[f"running/{n}"] = b.detach().clone()
    return {k: v.double() for k, v in t.items()}

if __name__ == "__main__":
    case("iter_dprnn", True, "cpjku_grads_train.safetensors")
    case("mult_concat", False, "cpjku_grads_eval.safetensors")
