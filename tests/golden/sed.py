"""Golden fixture of the SED post-processing median filter: tests/golden/fixtures/sed.safetensors.

Run: /work/main/.venv/bin/python tests/golden/sed.py   (scipy 1.17, numpy 2.3, deterministic seed)

Per case, x is (frames, classes) f32 scores and `windows` one window per class (stored as f32); out is
scipy.ndimage.median_filter(x[:, c], size=w, mode='reflect') per class c — the DESED baseline's
`scipy.ndimage.filters.median_filter(x, (w, 1))`, which `desed` is checked against too (case b).
  a     — (23, 4), windows 1, 3, 7, 4 (an even window: scipy takes the upper middle value)
  b     — (101, 10), window 7 for all classes, through the 2-D call median_filter(x, (7, 1))
  short — (3, 2), windows 5, 8 (windows longer than the clip: repeated reflection)
"""
import pathlib

import numpy as np
import scipy
import scipy.ndimage as ndi
from safetensors.numpy import save_file

rng = np.random.default_rng(0)
t = {}


def per_class(x, windows):
    return np.stack([ndi.median_filter(x[:, c], size=int(w), mode="reflect") for c, w in enumerate(windows)], axis=1)


for name, (frames, classes, windows) in {"a": (23, 4, [1, 3, 7, 4]), "short": (3, 2, [5, 8])}.items():
    x = rng.random((frames, classes), dtype=np.float32)
    t[f"{name}.x"] = x
    t[f"{name}.windows"] = np.array(windows, dtype=np.float32)
    t[f"{name}.out"] = per_class(x, windows).astype(np.float32)

x = rng.random((101, 10), dtype=np.float32)
out2d = ndi.median_filter(x, (7, 1), mode="reflect")
assert np.array_equal(out2d, per_class(x, [7] * 10))
t.update({"b.x": x, "b.windows": np.full(10, 7, dtype=np.float32), "b.out": out2d.astype(np.float32)})

out = pathlib.Path(__file__).parent / "fixtures" / "sed.safetensors"
save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, str(out))
print(f"scipy {scipy.__version__}: wrote {out} ({out.stat().st_size} bytes, {len(t)} tensors)")
