"""Golden fixtures of the separator's whole-model gradients (issue #18, `trainer grad` / `trainer
separator`): the PyTorch ResUNet30 of tests/golden/separator.py (the baseline's module and state-dict
names), a small random model, loss = mean over the batch of −SNR(estimate, target) in dB with
torchmetrics' signal_noise_ratio formula (zero_mean=False, eps = torch.finfo(float32).eps in numerator
and denominator):

    snr = 10·log10((Σ t² + eps) / (Σ (t − e)² + eps)),  loss = −mean(snr)

and its gradient with respect to every parameter by torch.autograd, in two modes:
- eval:  model.eval() (BatchNorm with running statistics) — what `trainer grad` computes;
- train: model.train() (BatchNorm with batch statistics, biased variance to normalise; the running
  statistics updated with momentum 0.01 and the unbiased variance) — one `trainer separator` step's
  gradients, and the running statistics after that forward pass.

Writes (torch 2.9.1, CPU, f32):
  tests/golden/fixtures/separator_train_small/{config.json, model.safetensors}: the model
      (resunet30: 4 → 1 channels, label conditioning, n_fft 256, hop 64, channels [4, 4, 6, 8, 8, 12, 12],
      condition size 32; BatchNorm num_batches_tracked left out).
  tests/golden/fixtures/separator_grads_eval.safetensors: mixture (2, 4, 4000), label_vector (2, 18)
      (classes 5 and 11), waveform (2, 1, 4000) (the targets), loss (1), grad/<name> of every parameter.
  tests/golden/fixtures/separator_grads_train.safetensors: loss (1), grad/<name>, and
      running/<bn>.running_mean, running/<bn>.running_var after the training-mode forward.

Run: /work/main/.venv/bin/python tests/golden/separator_train.py
"""
import copy
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import separator as ref  # noqa: E402

torch.set_num_threads(1)
EPS = torch.finfo(torch.float32).eps


def neg_snr(est, target):
    num = (target * target).sum(-1) + EPS
    den = ((target - est) ** 2).sum(-1) + EPS
    return -(10 * torch.log10(num / den)).mean()


def main():
    cfg = ref.make_config(4, 1, 1, 18, 256, 64, True, [4, 4, 6, 8, 8, 12, 12], 32, "label")
    model = ref.randomize(ref.Separator(cfg), 7)
    B, L = 2, 4000
    mixture = ref.make_mixture(7, B, 4, L)
    labels = torch.stack([ref.one_hot(5), ref.one_hot(11)])
    g = torch.Generator().manual_seed(77)
    # A target correlated with the mixture (so the SNR is moderate, not −∞ or huge).
    target = (0.6 * mixture[:, :1] + 0.02 * torch.randn(B, 1, L, generator=g)).float()

    d = os.path.join(ref.FIX, "separator_train_small")
    ref.save_checkpoint(model, cfg, d, keep_nbt=False)

    out = {}
    for mode in ("eval", "train"):
        m = copy.deepcopy(model)
        m.train(mode == "train")
        _, wav = m(mixture, label_vector=labels)
        loss = neg_snr(wav.reshape(B, 1, L), target)
        loss.backward()
        t = {"loss": loss.detach().reshape(1)}
        for name, p in m.named_parameters():
            if p.grad is not None:
                t[f"grad/{name}"] = p.grad.detach().clone()
        if mode == "train":
            for name, buf in m.named_buffers():
                if name.endswith("running_mean") or name.endswith("running_var"):
                    t[f"running/{name}"] = buf.detach().clone()
        else:
            t.update(mixture=mixture, label_vector=labels, waveform=target)
        out[mode] = {k: v.float().contiguous() for k, v in t.items()}
        print(f"{mode}: loss {float(loss.detach()):.6f}, {sum(k.startswith('grad/') for k in t)} gradients")
    save_file(out["eval"], os.path.join(ref.FIX, "separator_grads_eval.safetensors"))
    save_file(out["train"], os.path.join(ref.FIX, "separator_grads_train.safetensors"))


if __name__ == "__main__":
    main()
