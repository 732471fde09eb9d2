"""Times `aural evaluate` against the reference packages on one synthetic DCASE set, side by side.

Usage:
  .venv/bin/python scripts/compare_metrics.py [--files 1000] [--classes 10] [--frames 156] [--rounds 3]
                                              [--aural target/release/aural] [--keep DIR]

The set: N ten-second files, K classes, 1–4 reference events per file (non-overlapping per class),
per-file score tables of F frames (smooth noise plus bumps around the reference events and some false
ones; 4 decimals), predictions = the score tables thresholded at 0.5. It is written as `aural evaluate`
and the packages read it (reference.tsv, durations.tsv, predictions.tsv, scores/<id>.tsv).

Timed, best of --rounds (after one warm-up), this machine, two ways:
  in memory   sed_scores_eval intersection_based.psds (PSDS1: dtc 0.7, gtc 0.7, alpha_st 1, max_efpr 100) on
              the score DataFrames already in memory, and sed_eval EventBasedMetrics (collar 0.2, 20 %) over
              every file on event lists already in memory; against the metric time `aural evaluate` reports
              itself on stderr ("metrics X s": after reading, before printing);
  from files  sed_scores_eval psds(scores=DIR, ground_truth=reference.tsv, audio_durations=durations.tsv)
              (its own readers) against `aural evaluate --scores DIR --only psds1` as a whole process
              (start, reading every TSV, the metric, printing); sed_eval from the TSVs read with pandas
              against `aural evaluate --predictions P.tsv --only event`.
The numbers are compared too (PSDS1 and the event-based F1 must agree within 1e-6), and the ratios printed.
"""
import argparse
import json
import pathlib
import re
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import sed_eval
import sed_scores_eval


def make_set(root, n_files, n_classes, frames, seed=0):
    rng = np.random.default_rng(seed)
    classes = [f"class_{k:02d}" for k in range(n_classes)]
    files = [f"file_{i:05d}" for i in range(n_files)]
    ref = []
    for f in files:
        for c in rng.choice(n_classes, size=rng.integers(1, 5), replace=False):
            on = float(np.round(rng.uniform(0, 8.5), 3))
            ref.append((f, on, float(np.round(min(on + rng.uniform(0.3, 4.0), 10.0), 3)), classes[c]))
    hop = 10.0 / frames
    t = np.round(np.arange(frames + 1) * hop, 6)
    centers = (t[:-1] + t[1:]) / 2
    (root / "scores").mkdir(parents=True, exist_ok=True)
    tables = {}
    by_file = {}
    for e in ref:
        by_file.setdefault(e[0], []).append(e)
    for f in files:
        s = ndi.uniform_filter1d(rng.random((frames, n_classes)) * 0.35, 5, axis=0)
        for _, on, off, c in by_file.get(f, []):
            s[:, classes.index(c)] += rng.uniform(0.3, 0.8) * ((centers >= on + rng.uniform(-0.3, 0.3)) & (centers <= off + rng.uniform(-0.3, 0.3)))
        for _ in range(rng.integers(0, 3)):
            a = rng.integers(frames)
            s[a : a + rng.integers(2, 25), rng.integers(n_classes)] += rng.uniform(0.2, 0.7)
        s = np.round(np.clip(s, 0, 1), 4)
        df = pd.DataFrame(np.concatenate([t[:-1, None], t[1:, None], s], axis=1), columns=["onset", "offset", *classes])
        df.to_csv(root / "scores" / f"{f}.tsv", sep="\t", index=False)
        tables[f] = df
    pred = []
    for f, df in tables.items():
        for c in classes:
            act = df[c].to_numpy() > 0.5
            on = None
            for i in range(frames + 1):
                a = i < frames and act[i]
                if a and on is None:
                    on = i
                elif not a and on is not None:
                    pred.append((f, float(t[on]), float(t[i]), c))
                    on = None
    pd.DataFrame([(f + ".wav", *r) for f, *r in ref], columns=["filename", "onset", "offset", "event_label"]).to_csv(root / "reference.tsv", sep="\t", index=False)
    pd.DataFrame([(f + ".wav", *r) for f, *r in pred], columns=["filename", "onset", "offset", "event_label"]).to_csv(root / "predictions.tsv", sep="\t", index=False)
    pd.DataFrame([(f + ".wav", 10.0) for f in files], columns=["filename", "duration"]).to_csv(root / "durations.tsv", sep="\t", index=False)
    return files, classes, ref, pred, tables


def best(fn, rounds):
    fn()  # warm-up
    times = []
    out = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--frames", type=int, default=156)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--aural", default="target/release/aural")
    ap.add_argument("--keep", help="write the set here instead of a temporary folder")
    a = ap.parse_args()
    root = pathlib.Path(a.keep) if a.keep else pathlib.Path(tempfile.mkdtemp(prefix="aural-metrics-"))
    files, classes, ref, pred, tables = make_set(root, a.files, a.classes, a.frames)
    print(f"set: {len(files)} files × {len(classes)} classes × {a.frames} frames, {len(ref)} reference events, {len(pred)} predicted; {root}")

    gt = {f: [] for f in files}
    for f, on, off, c in ref:
        gt[f].append((on, off, c))
    dur = {f: 10.0 for f in files}
    t_sse, (psds1, *_) = best(
        lambda: sed_scores_eval.intersection_based.psds(scores=tables, ground_truth=gt, audio_durations=dur, dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0),
        a.rounds,
    )

    ref_l = {f: [] for f in files}
    pred_l = {f: [] for f in files}
    for f, on, off, c in ref:
        ref_l[f].append({"filename": f + ".wav", "onset": on, "offset": off, "event_label": c})
    for f, on, off, c in pred:
        pred_l[f].append({"filename": f + ".wav", "onset": on, "offset": off, "event_label": c})

    def sed_eval_run():
        m = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=0.2, percentage_of_length=0.2, empty_system_output_handling="zero_score")
        for f in files:
            m.evaluate(reference_event_list=ref_l[f], estimated_event_list=pred_l[f])
        return m.results()

    t_se, res = best(sed_eval_run, a.rounds)
    eb_f1 = res["class_wise_average"]["f_measure"]["f_measure"]

    base = ["--reference", str(root / "reference.tsv"), "--durations", str(root / "durations.tsv")]
    out = root / "aural.json"

    def aural(args):
        def run():
            p = subprocess.run([a.aural, "evaluate", *base, *args, "--json", str(out)], check=True, capture_output=True, text=True)
            m = re.search(r"metrics ([0-9.]+) s", p.stderr)
            return float(m.group(1))

        return run

    def best_aural(args):
        walls, metric = [], []
        aural(args)()
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            metric.append(aural(args)())
            walls.append(time.perf_counter() - t0)
        return min(walls), min(metric)

    t_ap, m_ap = best_aural(["--scores", str(root / "scores"), "--only", "psds1"])
    got_psds1 = json.loads(out.read_text())["psds1"]
    t_ae, m_ae = best_aural(["--predictions", str(root / "predictions.tsv"), "--only", "event"])
    got_f1 = json.loads(out.read_text())["event_based"]["f1_macro"]
    t_all, _ = best_aural(["--scores", str(root / "scores")])

    t_sse_f, (psds1_f, *_) = best(
        lambda: sed_scores_eval.intersection_based.psds(scores=str(root / "scores"), ground_truth=str(root / "reference.tsv"), audio_durations=str(root / "durations.tsv"), dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0),
        a.rounds,
    )

    def sed_eval_files():
        r = pd.read_csv(root / "reference.tsv", sep="\t")
        p = pd.read_csv(root / "predictions.tsv", sep="\t")
        m = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=0.2, percentage_of_length=0.2, empty_system_output_handling="zero_score")
        rg = {k: g.to_dict("records") for k, g in r.groupby("filename")}
        pg = {k: g.to_dict("records") for k, g in p.groupby("filename")}
        for f in files:
            m.evaluate(reference_event_list=rg.get(f + ".wav", []), estimated_event_list=pg.get(f + ".wav", []))
        return m.results()

    t_se_f, _ = best(sed_eval_files, a.rounds)

    def row(name, ref_name, t_ref, t_aural, what):
        print(f"{name:<16} {ref_name:<16} {t_ref:8.3f} s   aural {t_aural:7.4f} s ({what})   ratio {t_aural / t_ref:.4f} (1/{t_ref / t_aural:.0f})")

    print("in memory:")
    row("PSDS1", "sed_scores_eval", t_sse, m_ap, "metric")
    row("event-based F1", "sed_eval", t_se, m_ae, "metric")
    print("from files:")
    row("PSDS1", "sed_scores_eval", t_sse_f, t_ap, "whole process")
    row("event-based F1", "sed_eval", t_se_f, t_ae, "whole process")
    print(f"values: PSDS1 {psds1:.9f} (from files {psds1_f:.9f}) / aural {got_psds1:.9f}; EB-F1 {eb_f1:.9f} / aural {got_f1:.9f}")
    print(f"aural evaluate --scores, every metric (event, segment, PSDS1, PSDS2, 2 × 50 operating points): {t_all:.3f} s")
    assert abs(psds1 - got_psds1) < 1e-6 and abs(psds1_f - got_psds1) < 1e-6 and abs(eb_f1 - got_f1) < 1e-6, "the numbers differ"


if __name__ == "__main__":
    main()
