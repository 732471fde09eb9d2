"""Random dense event sets: `aural evaluate --predictions` against sed_eval 0.2.1 on every number it reports
(a wide randomized comparison beyond the committed golden sets of sed_metrics.py; not run in CI).

Usage (venv with the metric packages, README; a built binary):
  .venv/bin/python tests/golden/sed_eval_random.py [--sets 200] [--seed 0] [--aural target/release/aural]

Each set: 1–6 files, 1–4 classes, up to 12 reference and 14 predicted events per file on a coarse time
grid (so onsets/offsets fall exactly on the collar and length limits and many events of one class
overlap), some files without events, labels only in the reference or only in the predictions. Event-based
(collar 0.2, 20 %, zero_score) and segment-based (1 s, evaluated over the file's duration) metrics,
overall and per class, must agree within 1e-9; the overall error rate depends on which events the
maximum matching leaves unmatched, so this exercises the matching order.
"""
import argparse
import json
import math
import pathlib
import subprocess
import tempfile

import numpy as np
import pandas as pd
import sed_eval


def results(m):
    r = m.results()
    out = {"overall": r["overall"]["f_measure"] | r["overall"]["error_rate"], "macro": r["class_wise_average"]["f_measure"] | r["class_wise_average"]["error_rate"]}
    out["class_wise"] = {c: v["f_measure"] | v["error_rate"] for c, v in r["class_wise"].items()}
    return out


def close(a, b):
    if a is None:
        return b is None or math.isnan(b)
    return b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aural", default="target/release/aural")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    root = pathlib.Path(tempfile.mkdtemp(prefix="aural-sed-eval-"))
    checked = 0
    for k in range(a.sets):
        n_files = int(rng.integers(1, 7))
        labels = ["a", "b", "c", "d"][: int(rng.integers(1, 5))]
        files = [f"f{i}" for i in range(n_files)]
        durs = [float(rng.choice([4.0, 5.5, 10.0])) for _ in files]
        grid = lambda d: float(np.round(rng.integers(0, int(d * 10) + 1) / 10, 1))  # noqa: E731
        ref, pred = [], []
        for f, d in zip(files, durs):
            if rng.random() < 0.2:
                continue
            for _ in range(int(rng.integers(0, 13))):
                on = grid(d - 0.1)
                ref.append((f, on, round(min(d, on + float(rng.choice([0.1, 0.2, 0.5, 1.0, 2.0, 3.0]))), 1), labels[rng.integers(len(labels))]))
            for _ in range(int(rng.integers(0, 15))):
                if ref and rng.random() < 0.7:
                    f0, on, off, c = ref[rng.integers(len(ref))]
                    if f0 != f:
                        continue
                    on = max(0.0, round(on + float(rng.choice([-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3])), 1))
                    off = max(on, round(off + float(rng.choice([-0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6])), 1))
                    if rng.random() < 0.2:
                        c = labels[rng.integers(len(labels))]
                    pred.append((f, on, off, c))
                else:
                    on = grid(d - 0.1)
                    pred.append((f, on, round(on + float(rng.choice([0.1, 0.5, 1.5])), 1), labels[rng.integers(len(labels))] + ("x" if rng.random() < 0.05 else "")))
        rng.shuffle(pred)
        classes = sorted({e[3] for e in ref} | {e[3] for e in pred})
        d = root / f"s{k}"
        d.mkdir()
        pd.DataFrame([(f + ".wav", *r) for f, *r in ref], columns=["filename", "onset", "offset", "event_label"]).to_csv(d / "ref.tsv", sep="\t", index=False)
        pd.DataFrame([(f + ".wav", *r) for f, *r in pred], columns=["filename", "onset", "offset", "event_label"]).to_csv(d / "pred.tsv", sep="\t", index=False)
        pd.DataFrame([(f + ".wav", x) for f, x in zip(files, durs)], columns=["filename", "duration"]).to_csv(d / "dur.tsv", sep="\t", index=False)
        if not classes:
            continue
        eb = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=0.2, percentage_of_length=0.2, empty_system_output_handling="zero_score")
        sb = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=classes, time_resolution=1.0)
        for f, du in zip(files, durs):
            r = [{"filename": f, "onset": on, "offset": off, "event_label": c} for f0, on, off, c in ref if f0 == f]
            p = [{"filename": f, "onset": on, "offset": off, "event_label": c} for f0, on, off, c in pred if f0 == f]
            eb.evaluate(r, p)
            sb.evaluate(r, p, evaluated_length_seconds=du)
        subprocess.run([a.aural, "evaluate", "--reference", str(d / "ref.tsv"), "--durations", str(d / "dur.tsv"), "--predictions", str(d / "pred.tsv"), "--json", str(d / "out.json")], check=True, capture_output=True)
        got = json.loads((d / "out.json").read_text())
        for name, want in [("event_based", results(eb)), ("segment_based", results(sb))]:
            g = got[name]
            pairs = [
                ("f1_micro", want["overall"]["f_measure"]),
                ("precision_micro", want["overall"]["precision"]),
                ("recall_micro", want["overall"]["recall"]),
                ("error_rate", want["overall"]["error_rate"]),
                ("substitution_rate", want["overall"]["substitution_rate"]),
                ("deletion_rate", want["overall"]["deletion_rate"]),
                ("insertion_rate", want["overall"]["insertion_rate"]),
                ("f1_macro", want["macro"]["f_measure"]),
                ("error_rate_macro", want["macro"]["error_rate"]),
            ]
            pairs += [(f"class_wise.{c}.{key}", v[src]) for c, v in want["class_wise"].items() for key, src in [("f1", "f_measure"), ("precision", "precision"), ("recall", "recall"), ("error_rate", "error_rate")]]
            for key, w in pairs:
                v = g
                for part in key.split("."):
                    v = v[part]
                if not close(v, w):
                    raise SystemExit(f"set {k} ({d}): {name}.{key}: aural {v}, sed_eval {w}")
                checked += 1
    print(f"{a.sets} sets, {checked} numbers: aural evaluate equals sed_eval 0.2.1 (within 1e-9)")


if __name__ == "__main__":
    main()
