"""Random and hand-made operating-point sets evaluated with psds_eval 0.5.3, for the ignored test
`matches_psds_eval_dump` of models/src/sed/metrics/psds_op.rs (a wide randomized comparison beyond the
committed golden sets; the dumps are large, so they are not committed).

Usage (venv with the metric packages, README):
  .venv/bin/python tests/golden/psds_op_random.py /tmp/psds_op.json 300 1    # 300 random sets, seed 1
  PSDS_OP_DUMP=/tmp/psds_op.json cargo test --release -p aural-models --lib psds_op -- --ignored --nocapture

Every float is written as its repr string (serde_json's default float parser is not correctly rounded).
"""
import sys, json, math, warnings, time
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from psds_eval import PSDSEval

COLS = ["filename", "onset", "offset", "event_label"]

def nan2none(v):
    v = float(v)
    return None if math.isnan(v) else v

def evaluate(s, dtc, gtc, cttc, calls):
    """s: set dict; calls: list of (alpha_ct, alpha_st, max_efpr). Returns list of case dicts."""
    files, classes = s["files"], s["classes"]
    gt_rows = [(files[i], on, off, classes[c]) for i, evs in enumerate(s["gt"]) for (on, off, c) in evs]
    gt = pd.DataFrame(gt_rows, columns=COLS)
    meta = pd.DataFrame({"filename": files, "duration": s["durations"]})
    p = PSDSEval(dtc, gtc, 0.3 if cttc is None else cttc, ground_truth=gt, metadata=meta)
    for op in s["ops"]:
        rows = [(files[i], on, off, classes[c]) for i, evs in enumerate(op) for (on, off, c) in evs]
        det = pd.DataFrame(rows, columns=COLS)
        det["index"] = range(1, len(det) + 1)
        det = det.set_index("index")
        p.add_operating_point(det)
    names_sorted = sorted(set(p.class_names) - {"injected_psds_world_label"})
    out = []
    for (a_ct, a_st, m) in calls:
        r = p.psds(alpha_ct=a_ct, alpha_st=a_st, max_efpr=m)
        _, _, te = p.psd_roc_curves(a_ct)
        class_rocs = {}
        for k, name in enumerate(names_sorted):
            class_rocs[str(classes.index(name))] = [nan2none(v) for v in te.yp[k]]
        out.append(dict(dtc=dtc, gtc=gtc, cttc=cttc, alpha_ct=a_ct, alpha_st=a_st, max_efpr=m,
                        psds=nan2none(r.value), roc_x=[nan2none(v) for v in r.plt.xp],
                        roc_y=[nan2none(v) for v in r.plt.yp], class_rocs=class_rocs,
                        n_ops=p.num_operating_points()))
    return out

def runs(active):
    """maximal runs of True: list of (start, end_exclusive)"""
    a = np.concatenate([[False], active, [False]]).astype(np.int8)
    d = np.diff(a)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))

def random_set(rng, n_files=None, n_classes=None, n_thr=50):
    n_files = n_files or int(rng.integers(1, 25))
    n_classes = n_classes or int(rng.integers(1, 7))
    pool = ["Speech", "Dog", "alarm_bell", "Cat", "dishes", "Frying", "blender", "Running_water", "vacuum", "Electric_shaver", "zzz", "Aa"]
    classes = list(rng.permutation(pool)[:n_classes])
    files = [f"f{int(x):05d}" for x in rng.choice(100000, n_files, replace=False)]
    grid = [0.25, 0.125, 0.064, 0.02, 0.1][int(rng.integers(0, 5))]
    hop = grid if rng.random() < 0.6 else [0.25, 0.064, 0.032, 0.1][int(rng.integers(0, 4))]
    durations, gts, ops_scores = [], [], []
    for i in range(n_files):
        u = rng.random()
        dur = 10.0 if u < 0.5 else (round(float(rng.uniform(1, 12)), 3) if u < 0.93 else (0.0 if u < 0.96 else float(rng.integers(1, 12))))
        durations.append(dur)
        evs = []
        if rng.random() < 0.8:
            for c in range(n_classes):
                if c == 0 and n_classes > 2 and rng.random() < 0.7:  # class 0 often rare
                    continue
                if n_classes > 1 and c == n_classes - 1 and rng.random() < 0.9:
                    continue
                t = float(rng.uniform(0, 2))
                last_off = -1.0
                span = max(dur, 1.0)
                while True:
                    ln = float(rng.exponential(1.5)) + grid
                    on = round(t / grid) * grid if rng.random() < 0.7 else t
                    off = round((t + ln) / grid) * grid if rng.random() < 0.7 else t + ln
                    on = max(on, last_off)
                    if off < on:
                        off = on
                    if on > span * 1.1:
                        break
                    if rng.random() < 0.5:
                        evs.append((float(on), float(off), c))
                        if rng.random() < 0.03:
                            evs.append((float(on), float(off), c))  # identical duplicate
                    elif rng.random() < 0.03:
                        evs.append((float(on), float(on), c))  # zero-length
                    last_off = off
                    gap = 0.0 if rng.random() < 0.1 else float(rng.exponential(2.0))
                    t = off + gap
        order = rng.permutation(len(evs))
        gts.append([evs[j] for j in order])
        # smooth frame scores, correlated with gt
        n_frames = int(math.ceil(max(dur, 1.0) / hop)) + (int(rng.integers(0, 30)) if rng.random() < 0.2 else 0)
        t = (np.arange(n_frames) + 0.5) * hop
        sc = np.zeros((n_frames, n_classes))
        for (on, off, c) in evs:
            sc[(t >= on) & (t < off), c] += rng.uniform(0.3, 0.9)
        # cross-class leakage
        if n_classes > 1:
            sc = 0.85 * sc + 0.15 * np.roll(sc, 1, axis=1) * rng.random()
        noise = rng.normal(0, 0.25, (n_frames, n_classes))
        k = min(int(rng.integers(1, 9)), n_frames)
        ker = np.ones(k) / k
        for c in range(n_classes):
            noise[:, c] = np.convolve(noise[:, c], ker, mode="same")
        sc = 1 / (1 + np.exp(-(4 * (sc + noise - 0.35))))
        if n_classes > 1 and rng.random() < 0.3:
            sc[:, int(rng.integers(0, n_classes))] *= 0.05  # a class almost never predicted
        ops_scores.append(sc)
    thresholds = np.arange(1 / 100, 1, 1 / 50)
    if n_thr < 50:
        thresholds = np.sort(rng.choice(thresholds, n_thr, replace=False))
    ops = []
    for thr in thresholds:
        op = []
        for i in range(n_files):
            sc = ops_scores[i]
            evs = []
            for c in range(n_classes):
                for (a, b) in runs(sc[:, c] > thr):
                    evs.append((float(a * hop), float(b * hop), c))
            evs.sort(key=lambda e: (e[0], e[2]))
            op.append(evs)
        ops.append(op)
    if rng.random() < 0.3:
        ops.append([[] for _ in range(n_files)])  # empty op
    if rng.random() < 0.3:
        j = int(rng.integers(0, len(ops)))
        ops.insert(int(rng.integers(0, len(ops))), [list(reversed(x)) for x in ops[j]])  # duplicate (shuffled)
    return dict(files=files, durations=durations, classes=classes, gt=gts, ops=ops)

CONFIGS = [
    ((0.7, 0.7, None), [(0.0, 1.0, 100.0), (0.0, 0.0, 100.0), (0.0, 1.0, 37.5)]),
    ((0.1, 0.1, 0.3), [(0.5, 1.0, 100.0), (0.0, 1.0, 100.0), (1.0, 0.3, 250.0)]),
]
ODD = [
    ((0.5, 0.5, 0.5), [(0.5, 0.0, 100.0), (0.2, 2.0, 60.0)]),
    ((1.0, 1.0, 1.0), [(0.0, 0.5, 100.0), (1.0, 0.0, 1000.0)]),
    ((0.0, 0.0, 0.0), [(0.3, 1.0, 100.0), (0.0, 0.0, 5.0)]),
    ((0.25, 0.75, 0.125), [(0.7, 1.0, 100.0), (0.0, 1.0, 1e5)]),
]

def hand_sets():
    sets = []
    # boundaries on a 0.25 grid: precision / coverage exactly 0.5, 0.75, 1
    files = ["b", "a", "c"]
    gt = [[(0.0, 1.0, 0), (2.0, 3.0, 0), (4.0, 4.5, 1)], [(1.0, 2.0, 1), (2.0, 4.0, 1), (5.0, 6.0, 0)], []]
    ops = [
        [[(0.0, 2.0, 0), (2.0, 2.75, 0), (4.0, 4.5, 0)], [(1.0, 2.0, 1), (3.0, 5.0, 1), (5.5, 6.0, 0)], [(0.0, 1.0, 1)]],
        [[(0.25, 1.0, 0), (2.5, 3.5, 0)], [(1.0, 1.5, 1), (1.75, 4.0, 1)], [(12.0, 13.0, 0)]],
        [[], [], []],
        [[(0.5, 1.0, 0), (1.0, 1.5, 0), (2.0, 2.5, 0), (2.5, 3.0, 0)], [(0.0, 8.0, 1)], [(0.0, 10.0, 0), (0.0, 10.0, 1)]],
        [[(0.0, 1.0, 0), (0.0, 1.0, 0), (4.0, 4.0, 1)], [(1.0, 2.0, 1)], []],
        [[(0.0, 2.0, 0), (2.0, 2.75, 0), (4.0, 4.5, 0)], [(1.0, 2.0, 1), (3.0, 5.0, 1), (5.5, 6.0, 0), (6.0, 6.0, 2)], [(0.0, 1.0, 1)]],
    ]
    sets.append(dict(name="grid", files=files, durations=[10.0, 8.0, 0.0], classes=["x", "w", "never"], gt=gt, ops=ops))
    # single class (psds_eval: eFPR NaN everywhere)
    sets.append(dict(name="one_class", files=["a"], durations=[3600.0], classes=["x"], gt=[[(0.0, 2.0, 0)]],
                     ops=[[[(0.0, 2.0, 0), (5.0, 6.0, 0)]], [[(0.0, 2.0, 0)]]]))
    # identical duplicate gt events, touching gt events, zero-length gt event
    sets.append(dict(name="dup_gt", files=["a", "b"], durations=[60.0, 30.0], classes=["x", "y"],
                     gt=[[(0.0, 2.0, 0), (0.0, 2.0, 0), (2.0, 3.0, 0), (5.0, 5.0, 1)], [(1.0, 4.0, 1)]],
                     ops=[[[(0.0, 2.0, 0)], [(1.0, 4.0, 1)]], [[(0.0, 3.0, 0), (0.0, 1.0, 1)], [(0.0, 4.0, 1), (1.0, 3.0, 0)]], [[], []]]))
    return sets

def as_strings(v):
    """Every float as its repr (read back exactly by the Rust test)."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return [as_strings(x) for x in v]
    if isinstance(v, dict):
        return {k: as_strings(x) for k, x in v.items()}
    return v


def main():
    out_path, n_random, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    sets = hand_sets()
    for k in range(n_random):
        s = random_set(rng, n_thr=50 if k % 4 == 0 else int(rng.integers(3, 15)))
        s["name"] = f"random{seed}_{k}"
        sets.append(s)
    t0 = time.time()
    for k, s in enumerate(sets):
        cfgs = CONFIGS + [ODD[k % len(ODD)]]
        s["cases"] = []
        for (dtc, gtc, cttc), calls in cfgs:
            try:
                s["cases"] += evaluate(s, dtc, gtc, cttc, calls)
            except Exception as e:
                s["cases"].append(dict(dtc=dtc, gtc=gtc, cttc=cttc, alpha_ct=calls[0][0], alpha_st=calls[0][1], max_efpr=calls[0][2], error=repr(e)))
        print(k, s["name"], len(s["files"]), len(s["classes"]), len(s["ops"]), f"{time.time() - t0:.1f}s", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump(as_strings({"sets": sets}), f)

if __name__ == "__main__":
    main()
