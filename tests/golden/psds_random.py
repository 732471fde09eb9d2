"""Random PSDS sets evaluated with sed_scores_eval 0.0.4, for the ignored test
`matches_sed_scores_eval_dump` of models/src/sed/metrics/psds.rs (a wide randomized comparison beyond the
committed golden sets; the dumps are large, so they are not committed).

Usage (venv with the metric packages, README):
  .venv/bin/python tests/golden/psds_random.py random /tmp/psds.json 200 7     # 200 random sets, seed 7
  .venv/bin/python tests/golden/psds_random.py stress /tmp/psds.json 50 1      # denser, more ties
  .venv/bin/python tests/golden/psds_random.py big /tmp/psds_big.json          # 1000 × 10 × 156, timed
  PSDS_REF_JSON=/tmp/psds.json cargo test --release -p aural-models --lib psds::tests::matches -- --ignored --nocapture

Floats are stored as u64 bit patterns. The reference's assertion that every class has a reference
event is lifted (ml2sl below) so that such classes are compared too (psds.rs documents the behaviour).
"""
import json, struct, sys, time
import numpy as np
import sed_scores_eval.base_modules.statistics as st
from sed_scores_eval.intersection_based import psds as ref_psds
from sed_scores_eval.base_modules.scores import create_score_dataframe

def ml2sl(ground_truth, event_classes):
    # multi_label_to_single_label_ground_truths without its "every class has an event" assertion
    out = {c: {} for c in event_classes}
    for clip in ground_truth:
        for c in event_classes:
            out[c][clip] = []
        for on, off, lab in ground_truth[clip]:
            out[lab][clip].append((on, off))
    return out

st.multi_label_to_single_label_ground_truths = ml2sl

def b(x):
    return struct.unpack('<Q', struct.pack('<d', float(x)))[0]

def bl(a):
    return [b(x) for x in np.asarray(a, dtype=np.float64).ravel()]

UNITS = {1.0: 'second', 60.0: 'minute', 3600.0: 'hour'}
PARAMS = [
    # dtc, gtc, cttc, alpha_ct, alpha_st, max_efpr, unit_s
    (0.7, 0.7, None, 0.0, 1.0, 100.0, 3600.0),
    (0.1, 0.1, 0.3, 0.5, 1.0, 100.0, 3600.0),
    (0.7, 0.7, None, 0.0, 1.0, 100.0, 1.0),
    (0.1, 0.1, 0.3, 0.5, 1.0, 100.0, 1.0),
    (0.5, 0.5, None, 0.0, 0.0, 50.0, 60.0),
    (0.3, 0.6, 0.2, 1.0, 0.5, 20.0, 60.0),
    (0.0, 0.5, None, 0.0, 1.0, 0.5, 1.0),
    (0.5, 0.0, None, 0.0, 1.0, 2.0, 1.0),
    (1.0, 1.0, 0.5, 0.2, 2.0, 3.0, 1.0),
    (0.5, 0.5, 0.0, 1.0, 1.0, 5.0, 1.0),
    (0.0, 0.3, 0.2, 0.5, 1.0, 10.0, 1.0),
    (0.2, 0.0, 0.4, 0.3, 0.7, 10.0, 1.0),
]

def random_set(rng, k_min=1, stress=False):
    K = int(rng.integers(k_min, 13 if stress else 6))
    classes = [f'c{i}' for i in range(K)]
    absent = set()
    if K > 1 and rng.random() < 0.3:
        absent.add(int(rng.integers(K)))
    nf = int(rng.integers(1, 20))
    files, durs, events, tables = [], [], [], []
    for fi in range(nf):
        n = int(rng.integers(1, 200 if stress else 50))
        mode = rng.integers(4)
        if mode == 0:
            h = rng.choice([0.1, 0.064, 0.25, 1 / 3])
            ts = np.arange(n + 1) * h
        elif mode == 1:
            h = rng.choice([0.1, 0.064, 0.2])
            ts = np.round(np.arange(n + 1) * h, 6)
        elif mode == 2:
            ts = np.concatenate(([0.0], np.cumsum(np.round(rng.uniform(0.01, 0.5, n), 3))))
        else:
            ts = rng.uniform(0.0, 0.3) + np.concatenate(([0.0], np.cumsum(rng.uniform(0.01, 0.5, n))))
        dur = float(ts[-1]) if rng.random() < 0.5 else float(ts[-1] + rng.uniform(0, 1))
        sc = np.zeros((n, K))
        for c in range(K):
            m = rng.integers(7)
            if m == 0:
                sc[:, c] = rng.random(n)
            elif m == 1:
                sc[:, c] = rng.integers(0, 5, n) / 4
                if stress and rng.random() < 0.5:
                    sc[:, c] = (np.arange(n) % 2) * rng.random(n)  # many local maxima
            elif m == 2:
                sc[:, c] = rng.choice([0.0, 0.3, 1.0])
            elif m == 3:
                w = np.cumsum(rng.normal(0, 1, n))
                sc[:, c] = 1 / (1 + np.exp(-w))
            elif m == 4:
                sc[:, c] = rng.random(n).astype(np.float32)
            elif m == 5:
                sc[:, c] = rng.integers(0, 3, n) / 2
            elif stress and rng.random() < 0.3:
                sc[:, c] = rng.choice([0.0, -0.0, 0.5, -0.25], size=n)
            else:
                sc[:, c] = np.round(rng.random(n), 2)
        evs = []
        if rng.random() < 0.8:
            for c in range(K):
                if c in absent:
                    continue
                ne = int(rng.integers(0, 12 if stress else 4))
                grid = rng.random() < 0.5
                if grid:
                    pts = np.sort(rng.choice(len(ts), size=min(2 * ne, len(ts)), replace=False))
                    cand = [(float(ts[pts[2 * i]]), float(ts[pts[2 * i + 1]])) for i in range(len(pts) // 2)]
                else:
                    pts = rng.uniform(-0.2, ts[-1] + 0.3, 2 * ne)
                    if not stress or rng.random() < 0.5:
                        pts = np.round(pts, 3)
                    pts = np.sort(pts)
                    cand = [(float(pts[2 * i]), float(pts[2 * i + 1])) for i in range(ne)]
                last = -1e9
                for on, off in cand:
                    if off > on and on > last:
                        evs.append((on, off, c))
                        last = off
            rng.shuffle(evs)
        files.append(f'f{fi:03d}')
        durs.append(dur)
        events.append(evs)
        tables.append((ts, sc))
    return classes, files, durs, events, tables

def run_ref(classes, files, durs, events, tables, prm):
    dtc, gtc, cttc, act, ast, mx, unit = prm
    scores = {f: create_score_dataframe(sc, ts, classes) for f, (ts, sc) in zip(files, tables)}
    gt = {f: [(on, off, classes[c]) for on, off, c in evs] for f, evs in zip(files, events)}
    ad = dict(zip(files, durs))
    v, _, (etpr, efpr), scr = ref_psds(scores, gt, ad, dtc_threshold=dtc, gtc_threshold=gtc, cttc_threshold=cttc,
                                       alpha_ct=act, alpha_st=ast, unit_of_time=UNITS[unit], max_efpr=mx, time_decimals=6)
    return v, (etpr, efpr), [scr[c] for c in classes]

def dump_set(classes, files, durs, events, tables, cases):
    return {
        'classes': classes, 'files': files, 'durations': bl(durs),
        'events': [[[b(on), b(off), c] for on, off, c in evs] for evs in events],
        'tables': [{'timestamps': bl(ts), 'scores': bl(sc)} for ts, sc in tables],
        'cases': cases,
    }

def case_json(prm, res):
    dtc, gtc, cttc, act, ast, mx, unit = prm
    v, (etpr, efpr), scr = res
    return {
        'params': [b(dtc), b(gtc), None if cttc is None else b(cttc), b(act), b(ast), b(mx), b(unit)],
        'psds': b(v), 'roc_x': bl(efpr), 'roc_y': bl(etpr),
        'class_x': [bl(x[1]) for x in scr], 'class_y': [bl(x[0]) for x in scr],
    }

def main():
    mode = sys.argv[1]
    out = sys.argv[2]
    if mode in ('random', 'stress'):
        nsets = int(sys.argv[3])
        rng = np.random.default_rng(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
        sets = []
        for s in range(nsets):
            classes, files, durs, events, tables = random_set(rng, stress=(mode == 'stress'))
            cases = []
            for prm in PARAMS:
                if prm[2] is not None and len(classes) < 2:
                    continue
                try:
                    res = run_ref(classes, files, durs, events, tables, prm)
                except (AssertionError, IndexError) as e:
                    print('reference failed', s, prm, type(e).__name__, str(e)[:80])
                    continue
                cases.append(case_json(prm, res))
            sets.append(dump_set(classes, files, durs, events, tables, cases))
        json.dump({'sets': sets}, open(out, 'w'))
    elif mode == 'big':
        # 1000 files x 10 classes x 156 frames, DESED-like
        rng = np.random.default_rng(123)
        K, nf, n = 10, 1000, 156
        classes = [f'c{i}' for i in range(K)]
        files, durs, events, tables = [], [], [], []
        ts = np.arange(n + 1) * (10.0 / n)
        for fi in range(nf):
            evs = []
            present = rng.random(K) < 0.25
            sc = np.zeros((n, K))
            for c in range(K):
                w = np.convolve(rng.normal(0, 1, n + 20), np.ones(9) / 3, mode='same')[10:10 + n]
                base = w - 2.0
                if present[c]:
                    on = float(np.round(rng.uniform(0, 8), 3)); off = float(min(on + np.round(rng.uniform(0.3, 2), 3), 10.0))
                    evs.append((on, off, c))
                    i0, i1 = int(on / 10 * n), int(off / 10 * n)
                    base[i0:i1 + 1] += 3.0
                sc[:, c] = (1 / (1 + np.exp(-base))).astype(np.float32)
            files.append(f'f{fi:04d}'); durs.append(10.0); events.append(evs); tables.append((ts, sc))
        cases = []
        for prm in PARAMS[:2]:
            t0 = time.perf_counter()
            res = run_ref(classes, files, durs, events, tables, prm)
            dt = time.perf_counter() - t0
            print(f'reference {prm}: {dt:.3f} s, psds {res[0]}')
            c = case_json(prm, res); c['ref_seconds'] = dt
            cases.append(c)
        json.dump({'sets': [dump_set(classes, files, durs, events, tables, cases)]}, open(out, 'w'))

main()
