#!/usr/bin/python3
"""check_dwpool.py - the specialised f32 depthwise Conv / kiln.FusedConv and the row-vectorized
MaxPool / AveragePool at -O3 --threads 2 against -O0 (the plain loops), and depthwise against a
float64 numpy reference, on random shapes.

Depthwise cases (group == C_in == C_out, multiplier 1): 1-D and 2-D, kernels 1..5 (and a few
7x7 and 1x9), strides 1..3, dilations 1..2, explicit and SAME pads, widths 1..40 plus mobilenet-
like 56/112, batch 1..2, with and without bias; FusedConv cases add a residual and Relu/Clip.
Pool cases: MaxPool and AveragePool 1-D/2-D, kernels 1..4, strides 1..3, pads, ceil_mode,
count_include_pad, dilations (MaxPool). Each case runs as in check_kernels.py:
  kiln run MODEL --inputs DIR --output-dir OUT -O0
  kiln run MODEL --inputs DIR --output-dir OUT -O3 --threads 2
and must agree within rtol 1e-4, atol 1e-4. Prints
  dwpool: P passed, S skipped (unsupported), F failed"""
import argparse
import os
import sys

import numpy as np
from onnx import helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_kernels as ck  # noqa: E402  (the Case model builder and the runner)


class KilnCase(ck.Case):
    """A Case whose node is in the kiln domain (kiln.FusedConv)."""

    def model(self):
        m = super().model()
        m.opset_import.append(helper.make_opsetid("kiln", 1))
        return m


def same_pads(sp, k, st, dl, upper):
    pads = [0] * (2 * len(sp))
    for i in range(len(sp)):
        out = -(-sp[i] // st[i])
        total = max(0, (out - 1) * st[i] + (k[i] - 1) * dl[i] + 1 - sp[i])
        pads[i] = total // 2 if upper else total - total // 2
        pads[i + len(sp)] = total - pads[i]
    return pads


def dw_ref(x, w, b, st, dl, pads):
    """Depthwise conv in float64: x [N, C, sp...], w [C, 1, k...]."""
    nd = x.ndim - 2
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    k = w.shape[2:]
    out = [(xp.shape[2 + i] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for tap in np.ndindex(*k):
        sl = tuple(slice(tap[i] * dl[i], tap[i] * dl[i] + (out[i] - 1) * st[i] + 1, st[i]) for i in range(nd))
        y += w[:, 0][(slice(None),) + tap].reshape((1, -1) + (1,) * nd) * xp[(slice(None), slice(None)) + sl]
    if b is not None:
        y += b.astype(np.float64).reshape((1, -1) + (1,) * nd)
    return y


def dw_case(rng, idx):
    nd = 1 if idx % 4 == 3 else 2
    c = int(rng.choice([1, 3, 8, 17, 32]))
    k = [int(rng.integers(1, 6)) for _ in range(nd)]
    if idx % 10 == 7:
        k = [7] * nd if nd == 2 else [9]
    if idx % 10 in (0, 1, 2) and nd == 2:  # the mobilenet shape: 3x3, stride 1 or 2, pad 1
        k = [3, 3]
    st = [int(rng.choice([1, 1, 2, 2, 3])) for _ in range(nd)]
    if nd == 2 and rng.random() < 0.5:
        st = [st[0], st[0]]
    dl = [int(rng.choice([1, 1, 1, 2])) for _ in range(nd)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * nd)]
    sp = [int(rng.integers(1, 41)) for _ in range(nd)]
    if idx % 10 in (0, 1):
        sp = [int(rng.choice([7, 14, 28, 56, 112]))] * nd
        dl, pads = [1] * nd, [1] * (2 * nd)
    for i in range(nd):  # the padded input must hold one dilated kernel
        sp[i] = max(sp[i], dl[i] * (k[i] - 1) + 1 - pads[i] - pads[i + nd])
    n = int(rng.choice([1, 1, 2]))
    x = ck.rand(rng, [n, c] + sp, np.float32, -1, 1)
    w = ck.rand(rng, [c, 1] + k, np.float32, -1, 1)
    b = ck.rand(rng, [c], np.float32, -1, 1) if rng.random() < 0.7 else None
    attrs = {"group": c, "strides": st, "dilations": dl, "kernel_shape": k}
    if rng.random() < 0.15:
        upper = rng.random() < 0.5
        attrs["auto_pad"] = "SAME_UPPER" if upper else "SAME_LOWER"
        pads = same_pads(sp, k, st, dl, upper)
    else:
        attrs["pads"] = pads
    y = dw_ref(x, w, b, st, dl, pads)
    fused = idx % 3 == 2
    name = f"{'FusedConv' if fused else 'Conv'}dw{nd}d_{idx}_c{c}_k{k}_s{st}_d{dl}_p{pads}_x{list(x.shape)}"
    if fused:
        act = str(rng.choice(["", "Relu", "Clip"]))
        r = ck.rand(rng, list(y.shape), np.float32, -1, 1) if rng.random() < 0.6 else None
        if act:
            attrs["activation"] = act
        lo, hi = -0.5, 0.75
        if act == "Clip":
            attrs["min"], attrs["max"] = lo, hi
        case = KilnCase(name.replace(" ", ""), "FusedConv", attrs, domain="kiln")
        y = y + (r.astype(np.float64) if r is not None else 0)
        y = np.maximum(y, 0) if act == "Relu" else np.clip(y, lo, hi) if act == "Clip" else y
    else:
        case = ck.Case(name.replace(" ", ""), "Conv", attrs)
    case.feed(x).const(w) if rng.random() < 0.7 else case.feed(x).feed(w)
    if b is not None:
        case.const(b)
    elif fused and r is not None:
        case.absent()
    if fused and r is not None:
        case.feed(r)
    case.ref = [y]
    return case


def pool_case(rng, idx):
    op = "MaxPool" if idx % 2 == 0 else "AveragePool"
    nd = 1 if idx % 5 == 4 else 2
    k = [int(rng.choice([1, 2, 3, 3, 4])) for _ in range(nd)]
    st = [int(rng.choice([1, 2, 2, 3])) for _ in range(nd)]
    pads = [int(rng.integers(0, kk)) for kk in k + k]
    sp = [max(int(rng.integers(1, 41)), kk) for kk in k]
    if idx % 6 == 0:  # the squeezenet / resnet shape
        k, st, pads, sp = [3] * nd, [2] * nd, [int(rng.integers(0, 2))] * (2 * nd), [int(rng.choice([111, 112, 55, 27]))] * nd
    x = ck.rand(rng, [int(rng.choice([1, 2])), int(rng.choice([1, 3, 8]))] + sp)
    attrs = {"kernel_shape": k, "strides": st, "pads": pads, "ceil_mode": int(rng.integers(0, 2))}
    if op == "AveragePool":
        attrs["count_include_pad"] = int(rng.integers(0, 2))
    elif rng.random() < 0.3:
        attrs["dilations"] = [int(rng.choice([1, 2])) for _ in range(nd)]
    if rng.random() < 0.1:
        attrs.pop("pads")
        attrs["auto_pad"] = "SAME_UPPER"
    return ck.Case(f"{op}{nd}d_{idx}_k{k}_s{st}_p{pads}_x{list(x.shape)}_{attrs.get('ceil_mode')}".replace(" ", ""),
                   op, attrs).feed(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--cases", type=int, default=60, help="depthwise cases (and as many pools)")
    p.add_argument("--timeout", type=float, default=120, help="seconds per kiln run")
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch files of passing cases")
    p.add_argument("--filter", help="only cases whose name contains this text")
    args = p.parse_args()
    ck.RTOL, ck.ATOL = 1e-4, 1e-4
    ck.REF_RTOL, ck.REF_ATOL = 1e-4, 1e-4
    rng = np.random.default_rng(args.seed)
    cases = [dw_case(rng, i) for i in range(args.cases)] + [pool_case(rng, i) for i in range(args.cases)]
    if args.filter:
        cases = [c for c in cases if args.filter in c.name]
    return ck.run_cases(cases, args, "dwpool")


if __name__ == "__main__":
    sys.exit(main())
