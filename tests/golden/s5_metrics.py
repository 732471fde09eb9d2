"""Golden fixture of the S5 label selection and metrics: tests/golden/fixtures/s5_metrics.json.

Run: .venv/bin/python tests/golden/s5_metrics.py
(torch 2.9.1 CPU, numpy 2.3.5; deterministic seed). Checked by models/tests/s5_metrics.rs.

What the numbers mean: this script re-implements, in its own code, the rules of the DCASE 2025
task 4 baseline (nttcslab/dcase2025_task4_baseline) as they were read there:
  selection   M2dAt._get_top_prob (src/models/m2dat/m2dat.py) + S5.predict_label (src/models/s5/s5.py):
              the classes with p >= threshold (torch f32 comparison); fewer than lo of them -> the lo
              most probable overall (torch.argsort(descending=True)[:lo]); else the hi most probable of
              them; multi-hot -> names in class-index order; padded with 'silence' to hi slots.
              torch.argsort's tie order is undefined; a case is kept only when torch on CPU gives the
              same choice as a stable sort (ties by the lower index), which is what aural implements
              (the script asserts this for the cases it designs, and drops random cases where a tie
              straddles the cut of an argsort over more than 16 entries).
  metrics     ca_metric (src/utils.py) with torchmetrics.functional.signal_noise_ratio as evaluate.py
              calls it: SNR = 10*log10((sum(ref^2) + eps) / (sum((ref - x)^2) + eps)), eps =
              torch.finfo(float32).eps, no zero-mean, on float32 tensors; per mixture the labels are
              dicts {label: waveform} (a label given twice: the last slot's waveform), TP = est & ref,
              FP = est - TP, FN = ref - TP ('silence' removed); the TP improvements
              SNR(est, ref) - SNR(mixture ch 0, ref) and a 0 per FP and FN, averaged (.mean().item(): NaN
              for no label at all); the data set's CA-SDRi = np.mean over mixtures; label accuracy =
              np.sum(set(est) - {'silence'} == set(ref) - {'silence'}) * 100 / n.
  per_class   aural's definitions (models/src/s5/metrics.rs), in float64: tp/fp/fn counts over the
              mixtures, sdri_mean = mean TP SDRi (null without TP), ca_sdri = sum TP SDRi / (tp+fp+fn).

Signals are not stored: each is a recipe `[[seed, gain], ...]` = the float32 sum, in order, of
gain * noise(seed, n) (acc = acc + f32(gain) * noise, starting from zeros; [] is all zeros), where
noise(seed, n)[i] = (splitmix64 output i of `seed` >> 40) as f32 * 2^-23 - 1 (exact in f32, in [-1, 1)):
state_i = seed + (i + 1) * 0x9E3779B97F4A7C15; z = state_i; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;
z = (z ^ z >> 27) * 0x94D049BB133111EB; z ^= z >> 31 (all mod 2^64). The Rust test rebuilds them bit
for bit. An estimate equal to its reference (the same recipe) gives a large but finite SNR via eps;
an all-zero estimate gives 0 dB; an estimate equal to the mixture gives SDRi 0.
"""
import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).parent / "fixtures" / "s5_metrics.json"
rng = np.random.default_rng(20250604)
CLASSES = ["AlarmClock", "BicycleBell", "Blender", "Buzzer", "Clapping", "Cough", "CupboardOpenClose", "Dishes",
           "Doorbell", "FootSteps", "HairDryer", "MechanicalFans", "MusicalKeyboard", "Percussion", "Pour", "Speech",
           "Typing", "VacuumCleaner"]
SILENCE = "silence"
M64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------- signals
def noise(seed, n):
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1.0)


def build(terms, n):
    acc = np.zeros(n, dtype=np.float32)
    for seed, gain in terms:
        acc = acc + np.float32(gain) * noise(seed, n)
    return acc


def f32(x):
    """A float32 value as the double JSON stores (exactly representable in f32)."""
    return float(np.float32(x))


def new_seed():
    return int(rng.integers(0, 2 ** 53))


def term(gain):
    return [new_seed(), f32(gain)]


# ---------------------------------------------------------------------------------------------- selection
def top_prob(probs, threshold, lo, hi, stable):
    """The baseline's choice of classes (a multi-hot vector -> the set indices, ascending)."""
    p = torch.tensor(probs, dtype=torch.float32)
    above = torch.nonzero(p >= threshold).flatten()
    if above.numel() < lo:
        order = torch.sort(p, descending=True, stable=True).indices if stable else torch.argsort(p, descending=True)
        chosen = order[:lo]
    else:
        sub = p[above]
        order = torch.sort(sub, descending=True, stable=True).indices if stable else torch.argsort(sub, descending=True)
        chosen = above[order[:hi]]
    hot = torch.zeros_like(p)
    hot[chosen] = 1.0
    return [i for i in range(len(probs)) if hot[i] > 0]


def labels_of(idx, classes, hi):
    out = [classes[i] for i in idx]
    return out + [SILENCE] * (hi - len(out))


def selection_cases():
    cases, dropped = [], 0

    def add(probs, threshold=0.5, rng_=(1, 3), classes=CLASSES, note="", must=True):
        nonlocal dropped
        probs = [f32(p) for p in probs]
        threshold = f32(threshold)
        lo, hi = rng_
        a = top_prob(probs, threshold, lo, hi, stable=False)
        b = top_prob(probs, threshold, lo, hi, stable=True)
        if a != b:
            assert not must, f"designed case '{note}': torch's tie order differs from a stable sort"
            dropped += 1
            return
        cases.append({"note": note, "classes": classes, "probs": probs, "threshold": threshold, "range": [lo, hi],
                      "labels": labels_of(a, classes, hi)})

    k = len(CLASSES)
    for _ in range(30):
        add(rng.random(k), note="uniform")
    for _ in range(8):
        add(rng.random(k) * 0.5, note="all below 0.5")
    add([0.4999999] * 3 + [0.2] * 15, note="all below, ties at the top among the first three", must=False)
    for _ in range(6):
        p = rng.random(k) * 0.45
        p[rng.choice(k, size=int(rng.integers(1, 4)), replace=False)] = 0.5
        add(p, note="exactly at the threshold")
    for _ in range(8):
        p = rng.random(k) * 0.4
        p[rng.choice(k, size=int(rng.integers(4, 10)), replace=False)] = 0.5 + 0.5 * rng.random()
        add(p, note="more than 3 above, one value (ties at the cut)")
    for _ in range(8):
        p = rng.random(k) * 0.4
        idx = rng.choice(k, size=int(rng.integers(4, 12)), replace=False)
        p[idx] = 0.5 + 0.5 * rng.random(len(idx))
        add(p, note="more than 3 above")
    for _ in range(10):
        add(np.round(rng.random(k) * 10) / 10, note="quantized to 0.1 (ties)", must=False)
    for thr in (0.3, 0.75, 0.1):
        for _ in range(3):
            add(rng.random(k), threshold=thr, note=f"threshold {thr}")
        p = rng.random(k) * thr * 0.9
        p[3] = thr
        add(p, threshold=thr, note=f"exactly at threshold {thr} (f32)")
    for r in ((0, 3), (2, 3), (1, 1), (3, 3), (2, 5), (3, 2)):
        for _ in range(3):
            add(rng.random(k) * rng.choice([0.6, 1.0]), rng_=r, note=f"range {r}")
    add([0.0] * k, note="all zero: class 0", must=False)
    add([1.0] * 12 + [0.0] * 6, note="12 tied at 1.0 (a 12-entry argsort, stable in torch): the first three")
    add([-0.0, 0.0, -0.0] + [0.0] * (k - 3), rng_=(0, 3), note="signed zeros, lo 0: nothing")
    small = ["a", "b", "c", "d", "e"]
    for _ in range(6):
        add(np.round(rng.random(5) * 4) / 4, classes=small, note="5 classes, ties (torch stable below 17)")
    add([0.9, 0.9, 0.9, 0.9, 0.2], classes=small, note="4 tied above: the first three")
    add([0.3, 0.4, 0.4, 0.1, 0.0], classes=small, rng_=(1, 3), note="tied maximum below: the lower index")
    return cases, dropped


# ---------------------------------------------------------------------------------------------- metrics
def snr(preds, target):
    eps = torch.finfo(preds.dtype).eps
    num = torch.sum(target ** 2, dim=-1) + eps
    den = torch.sum((target - preds) ** 2, dim=-1) + eps
    return 10 * torch.log10(num / den)


def score(mix, n):
    """One mixture's expected numbers, from its recipes."""
    mixture = torch.from_numpy(build(mix["mixture"], n))
    ref = {}
    for lb, t in mix["reference"]:
        ref[lb] = torch.from_numpy(build(t, n))
    est = {}
    for lb, t in mix["estimate"]:
        est[lb] = torch.from_numpy(build(t, n))
    ref_set = set(ref) - {SILENCE}
    est_set = set(est) - {SILENCE}
    tp = est_set & ref_set
    fp = est_set - tp
    fn = ref_set - tp
    vals = torch.tensor([])
    tps = {}
    if tp:
        order = sorted(tp)
        e = torch.stack([est[lb] for lb in order])
        r = torch.stack([ref[lb] for lb in order])
        se = snr(e, r)
        sm = snr(mixture.unsqueeze(0).repeat(len(order), 1), r)
        imp = se - sm
        vals = torch.cat((vals, imp))
        for j, lb in enumerate(order):
            tps[lb] = {"snr_estimate": float(se[j]), "snr_mixture": float(sm[j]), "sdri": float(imp[j])}
    vals = torch.cat((vals, torch.zeros(len(fp) + len(fn))))
    ca = vals.mean().item()
    return {"ca_sdri": None if np.isnan(ca) else ca, "label_correct": est_set == ref_set, "tp": tps,
            "fp": sorted(fp), "fn": sorted(fn)}, ca


def dataset(name, classes, mixtures):
    cas, checks = [], []
    for m in mixtures:
        exp, ca = score(m, m["n"])
        m["expected"] = exp
        cas.append(ca)
        checks.append(exp["label_correct"])
    label_accuracy = float(np.sum(checks) * 100 / len(checks))
    ca_sdri = float(np.mean(cas))
    per = {c: [0, 0, 0, 0.0] for c in classes}
    for m in mixtures:
        e = m["expected"]
        for lb, t in e["tp"].items():
            per.setdefault(lb, [0, 0, 0, 0.0])
            per[lb][0] += 1
            per[lb][3] += t["sdri"]
        for lb in e["fp"]:
            per.setdefault(lb, [0, 0, 0, 0.0])[1] += 1
        for lb in e["fn"]:
            per.setdefault(lb, [0, 0, 0, 0.0])[2] += 1
    per_class = {c: {"tp": tp, "fp": fp, "fn": fn, "sdri_mean": s / tp if tp else None,
                     "ca_sdri": s / (tp + fp + fn) if tp + fp + fn else None}
                 for c, (tp, fp, fn, s) in per.items()}
    return {"name": name, "classes": classes, "mixtures": mixtures,
            "expected": {"label_accuracy": label_accuracy, "ca_sdri": None if np.isnan(ca_sdri) else ca_sdri,
                         "per_class": per_class}}


def random_mixture(idx, kind):
    n = int(rng.integers(200, 2001))
    k = 3 if kind == "copy" else int(rng.integers(1, 4))
    ref_labels = [CLASSES[i] for i in sorted(rng.choice(len(CLASSES), size=k, replace=False))]
    refs = {lb: [term(rng.uniform(0.05, 0.5))] for lb in ref_labels}
    mix_terms = [t for lb in ref_labels for t in refs[lb]] + [term(rng.uniform(0.02, 0.3))]
    estimate = []

    def good(lb):
        return refs[lb] + [term(rng.uniform(0.001, 0.2))]

    if kind == "random":
        kept = [lb for lb in ref_labels if rng.random() < 0.75]
        others = [c for c in CLASSES if c not in ref_labels]
        fps = [others[i] for i in rng.choice(len(others), size=int(rng.integers(0, 2)), replace=False)]
        for lb in sorted(kept + fps):
            estimate.append([lb, good(lb) if lb in refs else [term(rng.uniform(0.05, 0.5))]])
    elif kind == "correct":
        for lb in ref_labels:
            estimate.append([lb, good(lb)])
    elif kind == "copy":  # an estimate equal to its reference, one equal to zeros, one equal to the mixture
        choices = [refs[ref_labels[0]], [], mix_terms]
        for j, lb in enumerate(ref_labels):
            estimate.append([lb, choices[j]])
    elif kind == "all_silence":
        estimate = [[SILENCE, []]] * 3
    elif kind == "fn_only":
        estimate = []
    elif kind == "fp_only":
        others = [c for c in CLASSES if c not in ref_labels]
        estimate = [[others[0], [term(0.3)]], [others[-1], [term(0.2)]]]
    elif kind == "twice":  # a label predicted in two slots: the last one counts
        lb = ref_labels[0]
        estimate = [[lb, []], [lb, good(lb)]]
    elif kind == "silent_reference":
        refs[ref_labels[0]] = []
        estimate = [[lb, good(lb)] for lb in ref_labels]
    elif kind == "duplicate_reference":  # the in-memory API's dict rule for references too
        lb = ref_labels[0]
        reference = [[lb, [term(0.3)]]] + [[l, refs[l]] for l in ref_labels]
        estimate = [[lb, good(lb)]]
        return {"name": f"m{idx:02d}_{kind}", "n": n, "mixture": mix_terms, "reference": reference,
                "estimate": pad(estimate)}
    return {"name": f"m{idx:02d}_{kind}", "n": n, "mixture": mix_terms,
            "reference": pad([[lb, refs[lb]] for lb in ref_labels]), "estimate": pad(estimate)}


def pad(slots):
    """Pads to 3 slots with silence (the baseline's layout); silence slots hold zeros."""
    return slots + [[SILENCE, []]] * max(0, 3 - len(slots))


def metric_sets():
    kinds = ["random"] * 14 + ["correct"] * 3 + ["copy", "copy", "all_silence", "fn_only", "fp_only", "twice",
                                                   "silent_reference", "duplicate_reference"]
    main = [random_mixture(i, k) for i, k in enumerate(kinds)]
    # Empty sets: no reference at all (FP only), nothing on either side (NaN, and so the set's mean).
    n = 300
    fp_empty_ref = {"name": "e0_empty_reference", "n": n, "mixture": [term(0.2)], "reference": pad([]),
                    "estimate": pad([["Speech", [term(0.1)]]])}
    nothing = {"name": "e1_nothing", "n": n, "mixture": [term(0.2)], "reference": pad([]), "estimate": pad([])}
    small = ["x", "y"]
    extra = {"name": "s0_outside_classes", "n": 250, "mixture": [term(0.2), term(0.1)],
             "reference": [["x", [term(0.3)]], ["z", [term(0.2)]]],
             "estimate": [["x", [term(0.1)]], ["w", [term(0.1)]]]}
    return [dataset("main", CLASSES, main),
            dataset("empty_sets", CLASSES, [fp_empty_ref, random_mixture(90, "random")]),
            dataset("nan", CLASSES, [nothing, random_mixture(91, "correct")]),
            dataset("outside_classes", small, [extra])]


def main():
    sel, dropped = selection_cases()
    sets = metric_sets()
    check = {"seed": 0x0123456789ABCDEF, "n": 16}  # the generator itself, value for value
    check["values"] = [float(v) for v in noise(check["seed"], check["n"])]
    out = {"noise_check": check, "selection": sel, "datasets": sets}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
    n_mix = sum(len(d["mixtures"]) for d in sets)
    print(f"{OUT}: {len(sel)} selection cases ({dropped} random tie cases dropped), {len(sets)} sets, "
          f"{n_mix} mixtures, {OUT.stat().st_size} bytes")
    for d in sets:
        print(f"  {d['name']}: label accuracy {d['expected']['label_accuracy']:.2f} %, "
              f"CA-SDRi {d['expected']['ca_sdri']}")


if __name__ == "__main__":
    main()
