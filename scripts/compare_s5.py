"""Side-by-side time and peak memory of the S5 system (`aural s5`) vs the PyTorch references, one run.

The case of issue #16: one 10 s 4-channel 32 kHz mixture, the DCASE 2025 task 4 baseline configuration —
the M2D tagger (ViT-B/16, 85.5 M parameters) on channel 0, label selection (p ≥ 0.5, 1–3 labels), one
ResUNet30 pass (n_fft 1024, hop 160, out_conv) per selected label — random weights, CPU, 2 threads.

- Checkpoints and the mixture: `tests/golden/m2d.py --full` and `tests/golden/separator.py --full`
  (written once under DIR, default .cache/s5_full; the mixture is the separator script's 10 s one).
- PyTorch: the two golden reference modules (torch.stft front ends), eval, no_grad, torch.set_num_threads(2),
  the baseline's selection rule; one warm-up mixture, then `--reps` timed ones; its own process.
- aural: `target/release/aural s5 --device cpu` on the same mixture written `--reps + 1` times under
  other names (the first is the warm-up), RAYON_NUM_THREADS=2; the seconds per mixture the CLI prints
  (WAV read and writes included; model loading excluded on both sides).
- Both sides must select the same labels (they do when the outputs agree, as the golden tests check).
- Memory: each process's peak resident set size (os.wait4), whole process.
- Whole job (also `--job-only`): one process per side on one mixture, wall clock from the process start
  (import/start, loading both models, WAV I/O for aural), as a user runs it.

Run: .venv/bin/python scripts/compare_s5.py [--reps 2] [--dir DIR]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH_CHILD = r"""
import json, sys, time
import torch
from safetensors.torch import load_file
sys.path.insert(0, {golden!r})
import m2d as M
import separator as S
torch.set_num_threads({threads})
def load(mod, cls, d):
    cfg = json.load(open(d + "/config.json"))
    m = cls(cfg)
    missing, unexpected = m.load_state_dict(load_file(d + "/model.safetensors"), strict=False)
    assert not [k for k in missing if "num_batches" not in k], missing
    return m.eval(), cfg
tagger, tcfg = load(M, M.M2dAt, {m2d!r})
sep, scfg = load(S, S.Separator, {sep!r})
mix = load_file({io!r})["mixture"]
classes = tcfg["classes"]
def run():
    t0 = time.perf_counter()
    p = tagger(mix)[0]
    sel = (p >= 0.5).nonzero()[:, 0]
    if len(sel) < 1:
        top = torch.argsort(p, descending=True)[:1]
    else:
        top = sel[torch.argsort(p[sel], descending=True)[:3]]
    labels = sorted(int(i) for i in top)
    for i in labels:
        lv = torch.zeros(1, len(classes)); lv[0, i] = 1.0
        sep(mix, label_vector=lv)
    return time.perf_counter() - t0, [classes[i] for i in labels]
with torch.no_grad():
    run()
    for _ in range({reps}):
        s, labels = run()
        print(json.dumps({{"seconds": s, "labels": labels}}), flush=True)
"""


def run_child(cmd, env, out_path, err_path):
    """Runs a child to the end; returns (stdout text, stderr text, peak RSS in MB)."""
    with open(out_path, "w") as o, open(err_path, "w") as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
    out, err = open(out_path).read(), open(err_path).read()
    if status != 0:
        sys.exit(f"{cmd[0]} failed:\n{err[-2000:]}")
    return out, err, ru.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, ".cache", "s5_full"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--job-only", action="store_true", help="only the whole-process comparison")
    a = ap.parse_args()
    py = sys.executable
    m2d_dir, sep_root = os.path.join(a.dir, "m2d_full"), os.path.join(ROOT, ".cache", "separator_full")
    if not os.path.exists(os.path.join(m2d_dir, "model.safetensors")):
        os.makedirs(a.dir, exist_ok=True)
        subprocess.check_call([py, os.path.join(ROOT, "tests", "golden", "m2d.py"), "--full", a.dir])
    io = os.path.join(sep_root, "resunet30_full_io.safetensors")
    if not os.path.exists(io):
        os.makedirs(sep_root, exist_ok=True)
        subprocess.check_call([py, os.path.join(ROOT, "tests", "golden", "separator.py"), "--full", sep_root])
    sep_dir = os.path.join(sep_root, "resunet30_full")
    subprocess.check_call(["cargo", "build", "--quiet", "--release", "--bin", "aural"], cwd=ROOT)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp(prefix="aural-s5-compare-")
    # The mixture as WAVs for the CLI (float32, 32 kHz, 4 channels).
    from safetensors.numpy import load_file
    import soundfile as sf
    mix = load_file(io)["mixture"][0]
    wavs = []
    for i in range(a.reps + 1):
        w = os.path.join(tmp, f"mix{i}.wav")
        sf.write(w, mix.T, 32000, subtype="FLOAT")
        wavs.append(w)
    src = TORCH_CHILD.format(golden=os.path.join(ROOT, "tests", "golden"), threads=a.threads, m2d=m2d_dir, sep=sep_dir, io=io, reps=a.reps)
    exe = os.path.join(ROOT, "target", "release", "aural")
    # The whole job as a user runs it, one process each, wall clock from the process start: the
    # PyTorch script with no timed repetitions (import, load both models, one mixture) against
    # `aural s5` on one WAV (start, load both models, read, tag, separate, write).
    job_src = TORCH_CHILD.format(golden=os.path.join(ROOT, "tests", "golden"), threads=a.threads, m2d=m2d_dir, sep=sep_dir, io=io, reps=0)
    t0 = time.perf_counter()
    _, _, job_torch_rss = run_child([py, "-c", job_src], env, os.path.join(tmp, "jt.out"), os.path.join(tmp, "jt.err"))
    job_torch = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, _, job_aural_rss = run_child([exe, "s5", "--tagger", m2d_dir, "--separator", sep_dir, wavs[0], "--out", os.path.join(tmp, "job"), "--device", "cpu"], env, os.path.join(tmp, "ja.out"), os.path.join(tmp, "ja.err"))
    job_aural = time.perf_counter() - t0
    job = (f"whole job, one process each (start, load both models, one 10 s mixture): PyTorch {job_torch:.2f} s, "
           f"aural s5 {job_aural:.2f} s; aural/PyTorch = {job_aural / job_torch:.3f}; peak RSS (MB) PyTorch "
           f"{job_torch_rss:.0f}, aural {job_aural_rss:.0f}")
    if a.job_only:
        print(job)
        return
    out, _, torch_rss = run_child([py, "-c", src], env, os.path.join(tmp, "t.out"), os.path.join(tmp, "t.err"))
    torch_runs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    cmd = [exe, "s5", "--tagger", m2d_dir, "--separator", sep_dir, *wavs, "--out", os.path.join(tmp, "est"), "--device", "cpu"]
    _, err, aural_rss = run_child(cmd, env, os.path.join(tmp, "a.out"), os.path.join(tmp, "a.err"))
    times = [float(m.group(1)) for m in re.finditer(r"mix\d+\.wav: .* \(([\d.]+) s\)", err)][1:]
    labels = open(os.path.join(tmp, "est", "labels.tsv")).read().splitlines()[1].split("\t")[1]
    tt, ta = statistics.median(r["seconds"] for r in torch_runs), statistics.median(times)
    print(f"labels: PyTorch {','.join(torch_runs[0]['labels'])} | aural {labels}")
    print(f"seconds per 10 s mixture (median of {a.reps}): PyTorch {tt:.2f}, aural {ta:.2f}; aural/PyTorch = {ta / tt:.3f}")
    t_all = " ".join(f"{r['seconds']:.2f}" for r in torch_runs)
    a_all = " ".join(f"{t:.2f}" for t in times)
    print(f"  PyTorch all: {t_all}; aural all: {a_all}")
    print(f"peak RSS (MB, whole process incl. both models): PyTorch {torch_rss:.0f}, aural {aural_rss:.0f}")
    print(job)


if __name__ == "__main__":
    main()
