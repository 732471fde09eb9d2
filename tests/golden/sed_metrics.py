"""Golden fixtures of the DCASE SED metrics: tests/golden/fixtures/sed_metrics/.

Run: .venv/bin/python tests/golden/sed_metrics.py
(numpy 2.3.5, pandas 2.3.3, scipy, sed_eval 0.2.1 + dcase_util 0.2.20, psds_eval 0.5.3, sed_scores_eval 0.0.4;
deterministic seed). Checked by models/tests/sed_metrics.rs.

Each case directory holds a DCASE evaluation set as `aural evaluate` reads it:
  reference.tsv    filename onset offset event_label (files without events only in durations.tsv;
                   case b also lists one with empty fields, as DESED does)
  durations.tsv    filename duration
  predictions.tsv  thresholded events (jittered copies of the reference around the collar limits,
                   label swaps, insertions, deletions)
  scores/<id>.tsv  sed_scores_eval score tables (onset offset <class>…), written by
                   sed_scores_eval.io.write_sed_scores
and expected.json holds the 50 operating-point thresholds (numpy's floats) and, per case, what the reference packages compute on it:
  event_based      sed_eval.sound_event.EventBasedMetrics(classes, t_collar=0.2,
                   percentage_of_length=0.2, empty_system_output_handling='zero_score') evaluated file by
                   file over *every* file of durations.tsv (predictions.tsv's events)
  segment_based    sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=1.0) with
                   evaluated_length_seconds = the file's duration
  scores_event_based  the same event-based metrics on the events of the score tables thresholded at 0.5
                   (a frame is active when score > 0.5; runs of active frames → onset of the first frame,
                   offset of the last), after the case's median filter
  psds1, psds2     sed_scores_eval.intersection_based.psds on the score tables (scenario 1: dtc 0.7,
                   gtc 0.7, no cttc, alpha_ct 0, alpha_st 1, max_efpr 100; scenario 2: dtc 0.1, gtc 0.1,
                   cttc 0.3, alpha_ct 0.5, alpha_st 1, max_efpr 100), with overlapping or touching
                   reference events of one class merged first (sed_scores_eval refuses them)
  psds1_op, psds2_op  psds_eval.PSDSEval on the DESED baseline's 50 operating points (score > t for
                   t in np.arange(1/100, 1, 1/50), after the case's median filter), same parameters and
                   merged reference and classes (psds_eval takes cttc 0.3 for scenario 1: no effect with
                   alpha_ct 0)
Cases:
  a   14 files (3 without events), 5 classes, 10 s, 156-frame tables (DESED's frame rate), scores with 4 decimals; one class
      only predicted, one only in the reference; overlapping reference events of one class
  b   10 files of different durations (3.3–12 s), 4 classes, frames of 40 ms, median filter 5 frames on
      the scores; events exactly on the collar limits; a file listed in reference.tsv without events
  c   12 files, 3 classes, nothing predicted for one class, scores with many ties (2 decimals)
"""
import json
import math
import pathlib
import shutil
import warnings

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import sed_eval
import sed_scores_eval
from psds_eval import PSDSEval
from sed_scores_eval.base_modules.io import write_sed_scores

warnings.simplefilter("ignore", FutureWarning)  # psds_eval 0.5.3 calls fillna(method=...)
ROOT = pathlib.Path(__file__).parent / "fixtures" / "sed_metrics"
rng = np.random.default_rng(20261206)
THRESHOLDS = np.arange(1 / (50 * 2), 1, 1 / 50)


def num(x):
    """JSON has no NaN: null."""
    x = float(x)
    return None if math.isnan(x) else x


def random_reference(files, durations, classes, overlap=False):
    ref = []
    for f, d in zip(files, durations):
        n = rng.integers(1, 5)
        for _ in range(n):
            c = classes[rng.integers(len(classes))]
            length = float(rng.choice([0.15, 0.4, 1.0, 2.5, 5.0]) * rng.uniform(0.6, 1.4))
            on = float(np.round(rng.uniform(0, max(d - 0.2, 0.1)), 3))
            off = float(np.round(min(on + length, d), 3))
            ref.append((f, on, off, c))
        if overlap and rng.random() < 0.4:
            f0, on, off, c = ref[-1]
            ref.append((f0, float(np.round(on + 0.3 * (off - on), 3)), float(np.round(min(off + 0.7, d), 3)), c))
    return ref


def jitter_predictions(ref, files, durations, classes, never_predicted=()):
    dur = dict(zip(files, durations))
    pred = []
    for f, on, off, c in ref:
        r = rng.random()
        if r < 0.15:
            continue  # deletion
        if r < 0.25:
            c = classes[rng.integers(len(classes))]  # maybe a substitution
        length = off - on
        tol = max(0.2, 0.2 * length)
        # Jitter on and off the collar limits: exactly 0.2 s / 20 % of the length, or just beyond.
        don = float(rng.choice([0.0, 0.1, 0.2, -0.2, 0.201, -0.25, 0.05]))
        doff = float(rng.choice([0.0, tol, -tol, tol + 0.001, 0.3, -0.1]))
        o1 = max(0.0, on + don)
        o2 = max(o1 + 0.01, off + doff)
        if c not in never_predicted:
            pred.append((f, round(o1, 3), round(min(o2, dur[f] + 0.5), 3), c))
    for f in files:
        if rng.random() < 0.35:
            c = classes[rng.integers(len(classes))]
            on = float(np.round(rng.uniform(0, dur[f] - 0.5), 3))
            if c not in never_predicted:
                pred.append((f, on, round(on + float(rng.uniform(0.1, 2)), 3), c))
    order = rng.permutation(len(pred))
    return [pred[i] for i in order]


def scores_for(files, durations, classes, ref, hop, decimals=None):
    """Smooth noisy scores with bumps where the reference has events (and some false bumps)."""
    tables = {}
    for f, d in zip(files, durations):
        n = int(math.ceil(d / hop))
        t = np.round(np.arange(n + 1) * hop, 6)
        s = rng.random((n, len(classes))) * 0.3
        s = ndi.uniform_filter1d(s, 5, axis=0)
        centers = (t[:-1] + t[1:]) / 2
        for f0, on, off, c in ref:
            if f0 == f:
                k = classes.index(c)
                amp = rng.uniform(0.3, 0.9)
                s[:, k] += amp * ((centers >= on - rng.uniform(-0.2, 0.3)) & (centers <= off + rng.uniform(-0.3, 0.3)))
        for _ in range(rng.integers(0, 3)):
            k = rng.integers(len(classes))
            a = rng.integers(n)
            s[a : a + rng.integers(1, 20), k] += rng.uniform(0.2, 0.7)
        s = np.clip(s, 0, 1)
        if decimals is not None:
            s = np.round(s, decimals)
        tables[f] = (t, s)
    return tables


def merged(ref):
    out = []
    by = {}
    for f, on, off, c in ref:
        by.setdefault((f, c), []).append((on, off))
    for (f, c), evs in by.items():
        evs.sort()
        cur = list(evs[0])
        for on, off in evs[1:]:
            if on <= cur[1]:
                cur[1] = max(cur[1], off)
            else:
                out.append((f, cur[0], cur[1], c))
                cur = [on, off]
        out.append((f, cur[0], cur[1], c))
    return out


def sed_eval_metrics(cls, files, durations, ref, pred, segment):
    if segment:
        m = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(cls), time_resolution=1.0)
    else:
        m = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=list(cls), t_collar=0.2, percentage_of_length=0.2, empty_system_output_handling="zero_score"
        )
    for f, d in zip(files, durations):
        r = [{"filename": f + ".wav", "onset": on, "offset": off, "event_label": c} for f0, on, off, c in ref if f0 == f]
        p = [{"filename": f + ".wav", "onset": on, "offset": off, "event_label": c} for f0, on, off, c in pred if f0 == f]
        if segment:
            m.evaluate(reference_event_list=r, estimated_event_list=p, evaluated_length_seconds=d)
        else:
            m.evaluate(reference_event_list=r, estimated_event_list=p)
    res = m.results()
    ov, avg = res["overall"], res["class_wise_average"]
    out = {
        "f1_micro": num(ov["f_measure"]["f_measure"]),
        "precision_micro": num(ov["f_measure"]["precision"]),
        "recall_micro": num(ov["f_measure"]["recall"]),
        "error_rate": num(ov["error_rate"]["error_rate"]),
        "substitution_rate": num(ov["error_rate"]["substitution_rate"]),
        "deletion_rate": num(ov["error_rate"]["deletion_rate"]),
        "insertion_rate": num(ov["error_rate"]["insertion_rate"]),
        "f1_macro": num(avg["f_measure"]["f_measure"]),
        "precision_macro": num(avg["f_measure"]["precision"]),
        "recall_macro": num(avg["f_measure"]["recall"]),
        "error_rate_macro": num(avg["error_rate"]["error_rate"]),
        "class_wise": {
            c: {
                "f1": num(v["f_measure"]["f_measure"]),
                "precision": num(v["f_measure"]["precision"]),
                "recall": num(v["f_measure"]["recall"]),
                "error_rate": num(v["error_rate"]["error_rate"]),
                "nref": num(v["count"]["Nref"]),
                "nsys": num(v["count"]["Nsys"]),
            }
            for c, v in res["class_wise"].items()
        },
    }
    return out


def decode(tables, classes, threshold, median):
    """Events of the score tables: frames with (median-filtered) score > threshold, run by run, class by
    class in column order (the order aural's decoder writes)."""
    ev = []
    for f, (t, s) in tables.items():
        if median > 1:
            s = ndi.median_filter(s, (median, 1), mode="reflect")
        for k, c in enumerate(classes):
            on = None
            act = s[:, k] > threshold
            for i in range(len(act) + 1):
                a = i < len(act) and act[i]
                if a and on is None:
                    on = i
                elif not a and on is not None:
                    ev.append((f, float(t[on]), float(t[i]), c))
                    on = None
    return ev


def psds_scores(tables, classes, ref_m, files, durations, scenario):
    tables, classes = with_reference(tables, classes, ref_m)
    scores = {f: pd.DataFrame(np.concatenate([t[:-1, None], t[1:, None], s], axis=1), columns=["onset", "offset", *classes]) for f, (t, s) in tables.items()}
    gt = {f: [(on, off, c) for f0, on, off, c in ref_m if f0 == f] for f in files}
    dur = dict(zip(files, durations))
    kw = dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0) if scenario == 1 else dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5)
    value, per_class, (tpr, efpr), _ = sed_scores_eval.intersection_based.psds(scores=scores, ground_truth=gt, audio_durations=dur, alpha_st=1.0, unit_of_time="hour", max_efpr=100.0, **kw)
    return {"value": float(value), "per_class": {c: float(v) for c, v in per_class.items()}, "roc_efpr": [float(x) for x in efpr], "roc_etpr": [float(x) for x in tpr]}


def with_reference(tables, classes, ref_m):
    """Only the classes with reference events (sed_scores_eval refuses the others)."""
    keep = [k for k, c in enumerate(classes) if any(c == e[3] for e in ref_m)]
    return {f: (t, s[:, keep]) for f, (t, s) in tables.items()}, [classes[k] for k in keep]


def psds_operating_points(tables, classes, ref_m, files, durations, median, scenario):
    tables, classes = with_reference(tables, classes, ref_m)
    gt = pd.DataFrame([(f + ".wav", on, off, c) for f, on, off, c in ref_m], columns=["filename", "onset", "offset", "event_label"])
    meta = pd.DataFrame([(f + ".wav", d) for f, d in zip(files, durations)], columns=["filename", "duration"])
    dtc, gtc, act = (0.7, 0.7, 0.0) if scenario == 1 else (0.1, 0.1, 0.5)
    ev = PSDSEval(dtc_threshold=dtc, gtc_threshold=gtc, cttc_threshold=0.3, ground_truth=gt, metadata=meta)
    for i, th in enumerate(THRESHOLDS):
        det = pd.DataFrame([(f + ".wav", on, off, c) for f, on, off, c in decode(tables, classes, th, median)], columns=["filename", "onset", "offset", "event_label"])
        det["index"] = range(1, len(det) + 1)
        det = det.set_index("index")
        ev.add_operating_point(det, info={"name": f"Op {i + 1:02d}", "threshold": th})
    return float(ev.psds(alpha_ct=act, alpha_st=1.0, max_efpr=100.0).value)


def write_case(name, files, durations, classes, ref, pred, tables, median, empty_ref_line=None):
    d = ROOT / name
    if d.exists():
        shutil.rmtree(d)
    (d / "scores").mkdir(parents=True)
    rows = [(f + ".wav", on, off, c) for f, on, off, c in ref]
    if empty_ref_line:
        rows.append((empty_ref_line + ".wav", None, None, None))
    pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"]).to_csv(d / "reference.tsv", sep="\t", index=False)
    pd.DataFrame([(f + ".wav", dd) for f, dd in zip(files, durations)], columns=["filename", "duration"]).to_csv(d / "durations.tsv", sep="\t", index=False)
    pd.DataFrame([(f + ".wav", on, off, c) for f, on, off, c in pred], columns=["filename", "onset", "offset", "event_label"]).to_csv(d / "predictions.tsv", sep="\t", index=False)
    write_sed_scores({f: pd.DataFrame(np.concatenate([t[:-1, None], t[1:, None], s], axis=1), columns=["onset", "offset", *classes]) for f, (t, s) in tables.items()}, d / "scores")
    # Everything below is computed from what was written (the floats as read back).
    ref_r = [(pathlib.Path(r.filename).stem, r.onset, r.offset, r.event_label) for r in pd.read_csv(d / "reference.tsv", sep="\t").itertuples() if isinstance(r.event_label, str)]
    pred_r = [(pathlib.Path(r.filename).stem, r.onset, r.offset, r.event_label) for r in pd.read_csv(d / "predictions.tsv", sep="\t").itertuples()]
    tables_r = {}
    for f in files:
        df = pd.read_csv(d / "scores" / f"{f}.tsv", sep="\t")
        t = np.concatenate([df["onset"].to_numpy(), df["offset"].to_numpy()[-1:]])
        tables_r[f] = (t, df[classes].to_numpy())
    labels = sorted({c for *_, c in ref_r} | {c for *_, c in pred_r})
    ref_m = merged(ref_r)
    exp = {
        "classes": labels,
        "score_classes": classes,
        "median": median,
        "merged_reference_events": len(ref_r) - len(ref_m),
        "event_based": sed_eval_metrics(labels, files, durations, ref_r, pred_r, segment=False),
        "segment_based": sed_eval_metrics(labels, files, durations, ref_r, pred_r, segment=True),
        "scores_event_based": sed_eval_metrics(classes, files, durations, ref_r, decode(tables_r, classes, 0.5, median), segment=False),
        "psds1": psds_scores(tables_r, classes, ref_m, files, durations, 1),
        "psds2": psds_scores(tables_r, classes, ref_m, files, durations, 2),
        "psds1_op": psds_operating_points(tables_r, classes, ref_m, files, durations, median, 1),
        "psds2_op": psds_operating_points(tables_r, classes, ref_m, files, durations, median, 2),
    }
    return exp


expected = {}

# Case a: DESED-like.
files = [f"Y{i:03d}_a" for i in range(14)]
durs = [10.0] * 14
cls = ["Alarm_bell_ringing", "Blender", "Dog", "Speech", "Frying"]
ref = random_reference(files[:11], durs[:11], cls[:4], overlap=True)
pred = jitter_predictions(ref, files, durs, cls[:4] + ["Vacuum_cleaner"])
tables = scores_for(files, durs, cls, ref, 10.0 / 156, decimals=4)
expected["a"] = write_case("a", files, durs, cls, ref, pred, tables, median=1)

# Case b: other durations, 40 ms frames, median filter on the scores, exact collar limits.
files = [f"clip-{i:02d}" for i in range(10)]
durs = [float(x) for x in np.round(rng.uniform(3.3, 12.0, 10), 2)]
cls = ["Cat", "Dishes", "Speech", "Running_water"]
ref = random_reference(files[:8], durs[:8], cls)
ref.append((files[0], 1.0, 2.0, "Cat"))
pred = jitter_predictions(ref, files, durs, cls)
pred += [(files[0], 1.2, 2.2, "Cat"), (files[0], 0.8, 1.8, "Cat")]  # onset exactly +0.2 / −0.2, offset exactly ±0.2
tables = scores_for(files, durs, cls, ref, 0.04, decimals=4)
expected["b"] = write_case("b", files, durs, cls, ref, pred, tables, median=5, empty_ref_line=files[9])

# Case c: a class never predicted, tied scores.
files = [f"f{i}" for i in range(12)]
durs = [10.0] * 12
cls = ["Dog", "Speech", "Blender"]
ref = random_reference(files[:10], durs[:10], cls)
pred = jitter_predictions(ref, files, durs, cls, never_predicted=("Blender",))
tables = scores_for(files, durs, cls, ref, 0.1, decimals=2)
expected["c"] = write_case("c", files, durs, cls, ref, pred, tables, median=1)

expected["thresholds"] = [float(t) for t in THRESHOLDS]
(ROOT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
size = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
print(f"sed_eval {sed_eval.__version__}, sed_scores_eval, psds_eval: wrote {ROOT} ({size} bytes)")
for k, v in expected.items():
    if k == "thresholds":
        continue
    print(k, "EB-F1 macro", v["event_based"]["f1_macro"], "PSDS1", v["psds1"]["value"], "PSDS2", v["psds2"]["value"], "PSDS1 op", v["psds1_op"], "PSDS2 op", v["psds2_op"])
