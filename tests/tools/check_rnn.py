#!/usr/bin/python3
"""check_rnn.py - LSTM, GRU and RNN at -O3 --threads 2 (the f32 fast path: input projection for
every step up front, h R^T from transposed panels) against -O0 (the plain per-row dots) on random
shapes.

Cases cover what the fast path distinguishes: hidden sizes 1, 3, 17, 33 (partial vectors and
partial groups of gate rows) and a few whole-vector ones, input sizes with and without a tail,
batch 1..3, seq 1..9 (partial blocks of steps in the input projection), forward, reverse and
bidirectional, with and without bias, initial states and sequence_lens, batch-first layout,
GRU's linear_before_reset, LSTM's peepholes and input_forget, clip and non-default activations,
weights as initializers or as graph inputs, and one sequence big enough to split its gate rows
across threads. Each case runs as in check_kernels.py:
  kiln run MODEL --inputs DIR --output-dir OUT -O0
  kiln run MODEL --inputs DIR --output-dir OUT -O3 --threads 2
and must agree within rtol 1e-4, atol 1e-4. Prints
  rnn: P passed, S skipped (unsupported), F failed"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_kernels as ck  # noqa: E402  (the Case model builder and the runner)

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
HIDDEN = [1, 3, 17, 33, 1, 3, 17, 33, 16, 32]
INPUT = [1, 5, 16, 20, 33]
# Bounded ones only: an unbounded activation (Relu) lets h grow over the steps until the -O0 and
# -O3 summation orders differ by more than the tolerance.
OTHER_ACTS = ["HardSigmoid", "Tanh", "Sigmoid", "Softsign"]


def rnn_case(rng, op, idx, hid=None, inp=None, seq=None, batch=None, direction=None, simple=False):
    g = GATES[op]
    hid = hid or int(rng.choice(HIDDEN))
    inp = inp or int(rng.choice(INPUT))
    seq = seq or int(rng.integers(1, 10))
    batch = batch or int(rng.integers(1, 4))
    direction = direction or str(rng.choice(["forward", "reverse", "bidirectional"]))
    nd = 2 if direction == "bidirectional" else 1
    attrs = {"hidden_size": hid, "direction": direction}
    layout = 0 if simple or rng.random() < 0.8 else 1
    if layout:
        attrs["layout"] = 1
    tags = []
    if not simple and op == "GRU" and rng.random() < 0.5:
        attrs["linear_before_reset"] = 1
        tags.append("lbr")
    if not simple and op == "LSTM" and rng.random() < 0.15:
        attrs["input_forget"] = 1
        tags.append("if")
    if not simple and rng.random() < 0.15:
        attrs["clip"] = float(rng.uniform(0.5, 2.0))
        tags.append("clip")
    if not simple and rng.random() < 0.15:
        na = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
        attrs["activations"] = [str(rng.choice(OTHER_ACTS)) for _ in range(na * nd)]
        tags.append("acts")
    xs = [batch, seq, inp] if layout else [seq, batch, inp]
    ss = [batch, nd, hid] if layout else [nd, batch, hid]
    c = ck.Case(f"{op}{idx}_{direction}_s{seq}b{batch}i{inp}h{hid}_L{layout}_{'_'.join(tags)}", op, attrs)
    c.feed(ck.rand(rng, xs, np.float32, -1, 1))
    w = ck.rand(rng, [nd, g * hid, inp], np.float32, -0.5, 0.5)
    r = ck.rand(rng, [nd, g * hid, hid], np.float32, -0.5, 0.5)
    if simple or rng.random() < 0.8:
        c.const(w).const(r)
    else:
        c.feed(w).feed(r)
    rest = []  # B, sequence_lens, initial_h, initial_c, P: None for absent
    rest.append(ck.rand(rng, [nd, 2 * g * hid], np.float32, -0.5, 0.5) if simple or rng.random() < 0.7 else None)
    lens = None
    if not simple and rng.random() < 0.35:
        lens = rng.integers(0 if rng.random() < 0.3 else 1, seq + 1, size=[batch]).astype(np.int32)
    rest.append(lens)
    rest.append(ck.rand(rng, ss, np.float32, -1, 1) if rng.random() < 0.6 else None)
    if op == "LSTM":
        rest.append(ck.rand(rng, ss, np.float32, -1, 1) if rng.random() < 0.6 else None)
        rest.append(ck.rand(rng, [nd, 3 * hid], np.float32, -0.5, 0.5)
                    if not simple and rng.random() < 0.25 else None)
    while rest and rest[-1] is None:
        rest.pop()
    for k, a in enumerate(rest):
        if a is None:
            c.absent()
        elif k in (0, 4):
            c.const(a)  # B and P are weights
        else:
            c.feed(a)
    c.n_outputs = 3 if op == "LSTM" else 2
    return c


def all_cases(rng, n):
    ops = ["LSTM", "GRU", "RNN", "LSTM"]
    cases = [rnn_case(rng, ops[i % len(ops)], i) for i in range(n)]
    # The shapes of lstm_classifier (whole vectors and groups), one bidirectional GRU of that size,
    # and one sequence that splits each step's rows across threads (the non-fast path at -O3).
    cases.append(rnn_case(rng, "LSTM", n, hid=128, inp=128, seq=9, batch=1, direction="forward", simple=True))
    cases.append(rnn_case(rng, "GRU", n + 1, hid=64, inp=40, seq=5, batch=2, direction="bidirectional"))
    cases.append(rnn_case(rng, "LSTM", n + 2, hid=200, inp=200, seq=3, batch=1, direction="forward", simple=True))
    return cases


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--cases", type=int, default=80)
    p.add_argument("--timeout", type=float, default=120, help="seconds per kiln run")
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch files of passing cases")
    args = p.parse_args()
    ck.RTOL, ck.ATOL = 1e-4, 1e-4
    rng = np.random.default_rng(args.seed)
    cases = all_cases(rng, args.cases)
    return ck.run_cases(cases, args, "rnn")


if __name__ == "__main__":
    sys.exit(main())
