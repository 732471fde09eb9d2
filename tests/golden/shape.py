"""Golden fixture of the `shape` op family: tests/golden/fixtures/shape.safetensors.

Run: /work/main/.venv/bin/python tests/golden/shape.py   (torch 2.9.1; deterministic, seed 0)
Read by runtime/tests/shape.rs (`golden_fixture`). Index tensors are stored as f32 (our loader reads
floating types only); the test converts them back to u32.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

g = torch.Generator().manual_seed(0)


def r(*s):
    return torch.randn(*s, generator=g)


t = {}
# concat (torch.cat) along a middle and the last axis.
a, b, c = r(2, 3, 5), r(2, 4, 5), r(2, 1, 5)
t["cat.a"], t["cat.b"], t["cat.c"] = a, b, c
t["cat.axis1"] = torch.cat([a, b, c], dim=1)
d, e = r(2, 3, 2), r(2, 3, 7)
t["cat2.a"], t["cat2.b"] = d, e
t["cat2.axis_neg1"] = torch.cat([d, e], dim=-1)
# slice (torch.narrow) and strided slicing.
x = r(3, 17, 4)
t["x"] = x
t["narrow.1.2.9"] = torch.narrow(x, 1, 2, 9)
t["step.1.1.16.3"] = x[:, 1:16:3].contiguous()
# permute / transpose.
p = r(3, 5, 7, 2)
t["p"] = p
t["permute.2031"] = p.permute(2, 0, 3, 1).contiguous()
t["transpose.1.2"] = p.transpose(1, 2).contiguous()
h = r(17, 3, 4)  # (T, H, D) head split
t["h"] = h
t["heads.102"] = h.permute(1, 0, 2).contiguous()
ph = p.half()
t["p_f16"] = ph
t["permute_f16.3120"] = ph.permute(3, 1, 2, 0).contiguous()
# repeat_interleave = nearest-neighbour upsampling by an integer factor.
u = r(1, 4, 5)
t["u"] = u
t["repeat.2.x3"] = torch.repeat_interleave(u, 3, dim=2)
t["interp_nearest.x3"] = F.interpolate(u, scale_factor=3, mode="nearest")
t["repeat.1.x2"] = torch.repeat_interleave(u, 2, dim=1)
# index_select with duplicates and reordering.
idx = torch.tensor([4, 0, 0, 2, 16])
t["index_select.idx"] = idx.float()
t["index_select.1"] = torch.index_select(x, 1, idx)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "shape.safetensors")
save_file({k: v.contiguous() for k, v in t.items()}, out)
print(out, sum(v.numel() for v in t.values()), "elements")
