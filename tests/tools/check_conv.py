#!/usr/bin/python3
"""check_conv.py - float Conv at -O3 --threads 2 (the shared GEMM: 1x1 direct, im2col panels
otherwise) against -O0 (the plain loops) on random shapes.

Shapes cover what the GEMM path distinguishes: channel counts 1, 3, 17 and others (row tiles and
their tail), spatial sizes 1..40 (column strips, their masked tail, output rows inside and across
strips), kernels 1..5, strides 1..3, dilations 1..2, explicit and SAME pads (padding edges in
the packed panels), batch 1..3, groups, with and without bias, 1-D, 2-D and a few 3-D; and 2-D
convs with channels in 16s that the block_layout pass puts on NCHW16c (ToBlocked, the blocked
kernel's edge and short tiles, FromBlocked). Each case
runs as in check_kernels.py:
  kiln run MODEL --inputs DIR --output-dir OUT -O0
  kiln run MODEL --inputs DIR --output-dir OUT -O3 --threads 2
and must agree within rtol 1e-4, atol 1e-4. Prints
  conv: P passed, S skipped (unsupported), F failed"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_kernels as ck  # noqa: E402  (the Case model builder and the runner)

CHANNELS = [1, 3, 17, 2, 8, 13, 24, 40]


def conv_case(rng, nd, idx):
    g = int(rng.choice([1, 1, 1, 1, 2, 3]))
    cin = g * int(rng.choice(CHANNELS[:6] if g > 1 else CHANNELS))
    cout = g * int(rng.choice(CHANNELS[:6] if g > 1 else CHANNELS))
    k = [int(rng.integers(1, 6)) for _ in range(nd)]
    st = [int(rng.integers(1, 4)) for _ in range(nd)]
    dl = [int(rng.choice([1, 1, 2])) for _ in range(nd)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * nd)]
    top = 40 if nd < 3 else 9
    sp = [int(rng.integers(1, top + 1)) for _ in range(nd)]
    if rng.random() < 0.25:  # the 1x1 stride-1 unpadded GEMM without packing
        k, st, pads = [1] * nd, [1] * nd, [0] * (2 * nd)
    for i in range(nd):  # the padded input must hold one dilated kernel
        need = dl[i] * (k[i] - 1) + 1 - pads[i] - pads[i + nd]
        sp[i] = max(sp[i], need)
    n = int(rng.integers(1, 4))
    x = ck.rand(rng, [n, cin] + sp, np.float32, -1, 1)
    attrs = {"group": g, "strides": st, "dilations": dl, "kernel_shape": k}
    if rng.random() < 0.15:
        attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER"]))
    else:
        attrs["pads"] = pads
    w = ck.rand(rng, [cout, cin // g] + k, np.float32, -1, 1)
    name = f"Conv{nd}d_{idx}_g{g}_ci{cin}co{cout}_k{k}_s{st}_d{dl}_p{pads}_x{list(x.shape)}"
    c = ck.Case(name.replace(" ", ""), "Conv", attrs)
    c.feed(x).const(w) if rng.random() < 0.7 else c.feed(x).feed(w)
    if rng.random() < 0.6:
        c.const(ck.rand(rng, [cout], np.float32, -1, 1))
    return c


def blocked_case(rng, idx):
    """A conv passes/block_layout.c puts on NCHW16c (2-D, group 1, channels in 16s, constant W):
    edge tiles, short last tiles, strides and pads, rows clipped at the top and bottom."""
    cin, cout = (int(rng.choice([16, 32, 48, 64])) for _ in range(2))
    k = [int(rng.integers(1, 6)) for _ in range(2)]
    if k == [1, 1]:
        k = [3, 3]
    st = [int(rng.integers(1, 4)) for _ in range(2)]
    pads = [int(rng.integers(0, min(k[i % 2], 3))) for i in range(4)]
    sp = [max(int(rng.integers(1, 21)), k[i] - pads[i] - pads[i + 2]) for i in range(2)]
    x = ck.rand(rng, [int(rng.integers(1, 3)), cin] + sp, np.float32, -1, 1)
    attrs = {"strides": st, "kernel_shape": k}
    if rng.random() < 0.2:
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = pads
    name = f"Conv2d_blocked_{idx}_ci{cin}co{cout}_k{k}_s{st}_p{pads}_x{list(x.shape)}"
    c = ck.Case(name.replace(" ", ""), "Conv", attrs)
    c.feed(x).const(ck.rand(rng, [cout, cin] + k, np.float32, -1, 1))
    if rng.random() < 0.6:
        c.const(ck.rand(rng, [cout], np.float32, -1, 1))
    return c


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--cases", type=int, default=60)
    p.add_argument("--blocked", type=int, default=24, help="cases for the NCHW16c conv")
    p.add_argument("--timeout", type=float, default=120, help="seconds per kiln run")
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch files of passing cases")
    args = p.parse_args()
    ck.RTOL, ck.ATOL = 1e-4, 1e-4
    rng = np.random.default_rng(args.seed)
    nds = [2] * 6 + [1] * 3 + [3]
    cases = [conv_case(rng, nds[i % len(nds)], i) for i in range(args.cases)]
    cases += [blocked_case(rng, i) for i in range(args.blocked)]
    return ck.run_cases(cases, args, "conv")


if __name__ == "__main__":
    sys.exit(main())
