"""Times the PyTorch AST-SED reference (tests/golden/ast_sed.py) on the same audio as `aural detect`.

Usage:
  .venv/bin/python scripts/compare_detect.py --model DIR WAV [--runs N] [--threads N] [--aural target/release/aural]
  .venv/bin/python scripts/compare_detect.py --make-base DIR [WAV ...]   # write a random AST-base-sized AST-SED

PyTorch side: load_checkpoint(DIR) (HF attention "sdpa" unless --attn eager), then per run the whole
per-file pipeline on the decoded waveform: torchaudio kaldi fbank → pad/truncate to max_length → AudioSet
normalisation → model (inference_mode, batch 1); median and min over N runs after one warm-up.
aural side (with --aural PATH): `aural detect --model DIR WAV --scores TMP.safetensors [--device cpu]`
run N times (after one warm-up) with RAYON_NUM_THREADS = --threads; its wall time includes process start
and model loading, so the torch load time is printed too. Its `strong` (frames × classes) and `weak`
(classes) are compared with torch's (max abs difference; if aural trims strong to the clip's frames, the
common leading frames are compared and the shapes printed).

--make-base DIR writes config.json + model.safetensors of an AST-SED with random weights (the fixtures'
init) and AST-base's shape: hidden 768, 12 blocks (ast_layers 10), 12 heads, MLP 3072, 128 mel × 1024
frames, FTE 2 × (4 heads, MLP 768, 101 frames), upsample 10, GRU 384, the 10 DESED classes. With a WAV it
then goes on to time that checkpoint (as if --model DIR had been given).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from ast_sed import AstSed, base_config, features, load_checkpoint, randomize, save_checkpoint  # noqa: E402


def read_audio(path, sr):
    import soundfile as sf
    x, r = sf.read(path, dtype="float32", always_2d=True)  # PCM16 → int16 / 32768
    x = torch.from_numpy(x.mean(axis=1) if x.shape[1] > 1 else x[:, 0].copy())
    if r != sr:
        import torchaudio.functional as AF
        print(f"warning: {path} is {r} Hz; resampled to {sr} Hz with torchaudio (aural's resampler may differ)")
        x = AF.resample(x, r, sr)
    return x


def make_base(d, seed=0):
    cfg = base_config("ast-sed")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    m = AstSed(cfg)
    randomize(m, seed)
    save_checkpoint(m, cfg, d)
    n = sum(p.numel() for _, p in m.full_named_parameters())
    print(f"wrote {d}: random AST-SED, AST-base backbone, {n / 1e6:.1f} M parameters ({time.perf_counter() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="AST-SED checkpoint directory")
    ap.add_argument("wav", nargs="?", help="16 kHz WAV file")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--aural", help="path to the aural binary, e.g. target/release/aural")
    ap.add_argument("--aural-device", default="cpu", help="passed as --device to aural detect ('' to omit)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="HF attention implementation")
    ap.add_argument("--make-base", metavar="DIR", help="write a random AST-base-sized AST-SED checkpoint to DIR")
    a = ap.parse_args()

    if a.make_base:
        make_base(a.make_base)
        if a.model is None:
            a.model = a.make_base
        if a.wav is None:
            return
    if a.model is None or a.wav is None:
        ap.error("--model DIR and WAV are required (unless --make-base DIR alone)")

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = load_checkpoint(a.model, attn_implementation=a.attn)
    t_load = time.perf_counter() - t0
    cfg = model.cfg
    wav = read_audio(a.wav, cfg.get("sample_rate", 16000))

    def pipeline():
        with torch.inference_mode():
            x = features(wav, cfg)
            s, w = model(x.unsqueeze(0))
        return s[0], w[0]

    strong, weak = pipeline()  # warm-up
    ts = []
    for _ in range(a.runs):
        t = time.perf_counter()
        strong, weak = pipeline()
        ts.append(time.perf_counter() - t)
    med_t = float(np.median(ts))
    print(f"model: {cfg['architecture']}, AST {cfg['ast']['hidden_size']} wide, {cfg['ast_layers']} of "
          f"{cfg['ast']['num_hidden_layers']} blocks, {len(cfg['classes'])} classes; clip {wav.numel() / cfg.get('sample_rate', 16000):.2f} s")
    print(f"torch  ({a.threads} threads, attn {a.attn}): load {t_load:.3f} s; fbank + model median {med_t:.4f} s, "
          f"min {min(ts):.4f} s over {a.runs} runs; strong {tuple(strong.shape)}, weak {tuple(weak.shape)}")
    if not a.aural:
        return

    from safetensors.numpy import load_file
    with tempfile.TemporaryDirectory(prefix="aural_detect_") as tmp:
        scores = os.path.join(tmp, "scores.safetensors")
        cmd = [a.aural, "detect", "--model", a.model, a.wav, "--scores", scores]
        if a.aural_device:
            cmd += ["--device", a.aural_device]
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
        wall = []
        for i in range(a.runs + 1):
            t = time.perf_counter()
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t
            if r.returncode != 0:
                sys.exit(f"aural failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
            if i > 0:
                wall.append(dt)
        print(f"aural  ({a.threads} threads): wall median {np.median(wall):.4f} s, min {min(wall):.4f} s over {a.runs} runs "
              f"(process start + load + fbank + model + writing)")
        tail = (r.stderr.strip().splitlines() or [""])[-3:]
        for line in tail:
            print("  aural:", line)
        print(f"ratio torch(fbank + model) / aural(wall): {med_t / np.median(wall):.2f}; "
              f"torch(load + fbank + model) / aural(wall): {(t_load + med_t) / np.median(wall):.2f}")
        out = load_file(scores)
    sa, wa = out["strong"], out["weak"]
    st, wt = strong.numpy(), weak.numpy()
    n = min(sa.shape[0], st.shape[0])
    note = "" if sa.shape == st.shape else f" (shapes: aural {sa.shape}, torch {st.shape}; first {n} frames compared)"
    print(f"max |aural − torch|: strong {np.abs(sa[:n] - st[:n]).max():.3g}{note}, weak {np.abs(wa - wt).max():.3g}")


if __name__ == "__main__":
    main()
