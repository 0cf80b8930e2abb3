#!/usr/bin/python3
"""check_kernels.py - kiln's kernels at -O0 against -O3 --threads 2 (and against numpy) on small
single-op models with random shapes.

For each op configuration below, shapes are drawn with a fixed seed, including odd and
degenerate sizes (0 where the op allows it, 1, primes such as 7, 13, 31, 97); a model is built
with onnx.helper, random inputs are written as input_K.pb, and
  kiln run MODEL --inputs DIR --output-dir OUT -O0
  kiln run MODEL --inputs DIR --output-dir OUT -O3 --threads 2
must give the same outputs (rtol 1e-4, atol 1e-5; NaN equals NaN; integers and bools exactly).
Where numpy computes the op trivially (elementwise ops, MatMul, Gemm, Transpose, reductions,
Softmax, Concat, Slice, Gather, Pad, ...), the -O0 output is also compared with numpy's result,
computed here in float64 (a reference nobody computed with kiln).

A configuration kiln rejects with "not supported" (exit 1) is a SKIP, printed with kiln's
message. Any mismatch, crash, time-out or other error fails the test. Prints
  kernels: P passed, S skipped (unsupported), F failed"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
RTOL, ATOL = 1e-4, 1e-5            # -O0 against -O3
REF_RTOL, REF_ATOL = 1e-4, 1e-4    # -O0 against numpy (float32 sums of up to ~100 terms)
F32, F16, F64, I32, I64, U8, BOOL = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE,
                                     TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
                                     TensorProto.BOOL)
NP_OF = {F32: np.float32, F16: np.float16, F64: np.float64, I32: np.int32, I64: np.int64,
         U8: np.uint8, BOOL: np.bool_}
ELEM_OF = {np.dtype(v): k for k, v in NP_OF.items()}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# ---- random shapes and data ---------------------------------------------------------------------
DIMS = [1, 1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 97]


def dim(rng, zero=False, big=True):
    """A random dim: often small, sometimes prime, 0 only when zero is set."""
    pool = DIMS if big else [d for d in DIMS if d <= 13]
    if zero and rng.random() < 0.12:
        return 0
    return int(rng.choice(pool))


def shape(rng, rank, zero=False, max_numel=60000):
    while True:
        s = [dim(rng, zero) for _ in range(rank)]
        if int(np.prod(s, dtype=np.int64)) <= max_numel:
            return s


def rand(rng, s, dtype=np.float32, low=-3.0, high=3.0):
    if dtype == np.bool_:
        return rng.random(s) < 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.integers(int(low), int(high) + 1, size=s).astype(dtype)
    return rng.uniform(low, high, size=s).astype(dtype)


def broadcast_shapes(rng, n, zero=True):
    """n input shapes that broadcast together (dropped leading dims, dims of 1)."""
    out = shape(rng, int(rng.integers(0, 5)), zero)
    shapes = []
    for _ in range(n):
        s = out[int(rng.integers(0, len(out) + 1)) if rng.random() < 0.4 else 0:]
        shapes.append([1 if rng.random() < 0.25 else d for d in s])
    return shapes


# ---- a test case --------------------------------------------------------------------------------
class Case:
    """One single-node model: inputs fed from .pb files, constant inputs as initializers."""

    def __init__(self, name, op, attrs=None, domain=""):
        self.name, self.op, self.attrs, self.domain = name, op, attrs or {}, domain
        self.inputs = []    # (name, array or None for an absent optional input, is_initializer)
        self.n_outputs = 1
        self.ref = None     # numpy reference: list of arrays, or None

    def feed(self, arr):
        self.inputs.append((f"x{len(self.inputs)}", arr, False))
        return self

    def const(self, arr):
        self.inputs.append((f"c{len(self.inputs)}", arr, True))
        return self

    def absent(self):
        self.inputs.append(("", None, False))
        return self

    def model(self):
        ins = [n for n, _, _ in self.inputs]
        outs = [f"y{i}" for i in range(self.n_outputs)]
        node = helper.make_node(self.op, ins, outs, domain=self.domain, **self.attrs)
        g_in = [helper.make_tensor_value_info(n, ELEM_OF[a.dtype], a.shape)
                for n, a, init in self.inputs if a is not None and not init]
        inits = [numpy_helper.from_array(a, n) for n, a, init in self.inputs if init]
        g_out = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs]
        g = helper.make_graph([node], self.name, g_in, g_out, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m

    def fed(self):
        return [a for _, a, init in self.inputs if a is not None and not init]


# ---- op configurations: each function(rng) returns a list of Cases ------------------------------
def np_f(fn):
    """A float64 numpy reference for a float32 elementwise op."""
    return lambda *xs: fn(*[x.astype(np.float64) for x in xs])


def erf(x):
    from math import erf as e
    return np.vectorize(e, otypes=[np.float64])(x) if x.size else x


UNARY = {  # op: (numpy fn, input low, input high, attrs)
    "Abs": (np.abs, -3, 3, {}), "Neg": (np.negative, -3, 3, {}), "Exp": (np.exp, -5, 5, {}),
    "Log": (np.log, 0.01, 9, {}), "Sqrt": (np.sqrt, 0, 9, {}),
    "Relu": (lambda x: np.maximum(x, 0), -3, 3, {}),
    "Sigmoid": (lambda x: 1 / (1 + np.exp(-x)), -8, 8, {}), "Tanh": (np.tanh, -4, 4, {}),
    "Sin": (np.sin, -6, 6, {}), "Cos": (np.cos, -6, 6, {}), "Floor": (np.floor, -5, 5, {}),
    "Ceil": (np.ceil, -5, 5, {}), "Reciprocal": (lambda x: 1 / x, 0.1, 5, {}),
    "Erf": (erf, -3, 3, {}), "Round": (np.round, -5, 5, {}), "Sign": (np.sign, -3, 3, {}),
    "Softplus": (lambda x: np.log1p(np.exp(x)), -5, 5, {}),
    "LeakyRelu": (lambda x: np.where(x < 0, 0.07 * x, x), -3, 3, {"alpha": 0.07}),
    "Elu": (lambda x: np.where(x < 0, 0.6 * (np.exp(x) - 1), x), -3, 3, {"alpha": 0.6}),
    "HardSigmoid": (lambda x: np.clip(0.3 * x + 0.4, 0, 1), -4, 4, {"alpha": 0.3, "beta": 0.4}),
    "Atan": (np.arctan, -4, 4, {}), "Asin": (np.arcsin, -0.99, 0.99, {}),
}


def cfg_unary(rng):
    cases = []
    for op, (fn, lo, hi, attrs) in UNARY.items():
        x = rand(rng, shape(rng, int(rng.integers(0, 5)), zero=True), np.float32, lo, hi)
        c = Case(f"{op}_{'x'.join(map(str, x.shape))}", op, attrs).feed(x)
        c.ref = [np_f(fn)(x)]
        cases.append(c)
    for op, fn in (("Abs", np.abs), ("Neg", np.negative)):
        for dt in (np.int32, np.int64):
            x = rand(rng, shape(rng, 3), dt, -100, 100)
            c = Case(f"{op}_{dt.__name__}", op).feed(x)
            c.ref = [fn(x)]
            cases.append(c)
    x = rand(rng, shape(rng, 2), np.bool_)
    c = Case("Not_bool", "Not").feed(x)
    c.ref = [~x]
    return cases + [c]


BINARY = {  # op: (numpy fn, dtype, low, high)
    "Add": (np.add, np.float32, -3, 3), "Sub": (np.subtract, np.float32, -3, 3),
    "Mul": (np.multiply, np.float32, -3, 3), "Div": (np.divide, np.float32, 0.5, 3),
    "Pow": (np.power, np.float32, 0.1, 2), "Max": (np.maximum, np.float32, -3, 3),
    "Min": (np.minimum, np.float32, -3, 3),
    "Equal": (np.equal, np.int32, -2, 2), "Less": (np.less, np.float32, -3, 3),
    "Greater": (np.greater, np.float32, -3, 3), "LessOrEqual": (np.less_equal, np.int64, -2, 2),
    "And": (np.logical_and, np.bool_, 0, 1), "Or": (np.logical_or, np.bool_, 0, 1),
    "Xor": (np.logical_xor, np.bool_, 0, 1),
}


def cfg_binary(rng):
    cases = []
    for op, (fn, dt, lo, hi) in BINARY.items():
        for _ in range(2):
            sa, sb = broadcast_shapes(rng, 2)
            a, b = rand(rng, sa, dt, lo, hi), rand(rng, sb, dt, lo, hi)
            c = Case(f"{op}_{dt.__name__}_{sa}_{sb}", op).feed(a).feed(b)
            c.ref = [np_f(fn)(a, b) if dt == np.float32 else fn(a, b)]
            cases.append(c)
    for dt, op, fn in ((np.float16, "Add", np.add), (np.float16, "Mul", np.multiply),
                       (np.float64, "Div", np.divide), (np.float64, "Sub", np.subtract)):
        sa, sb = broadcast_shapes(rng, 2)
        a, b = rand(rng, sa, dt, 0.5, 4), rand(rng, sb, dt, 0.5, 4)
        c = Case(f"{op}_{np.dtype(dt).name}_{sa}_{sb}", op).feed(a).feed(b)
        c.ref = [fn(a.astype(np.float64), b).astype(dt)]  # one rounding, as from f32 math
        cases.append(c)
    for dt in (np.int32, np.int64):
        sa, sb = broadcast_shapes(rng, 2)
        a, b = rand(rng, sa, dt, -1000, 1000), rand(rng, sb, dt, -1000, 1000)
        for op, fn in (("Add", np.add), ("Mul", np.multiply), ("Sub", np.subtract)):
            c = Case(f"{op}_{dt.__name__}_{sa}_{sb}", op).feed(a).feed(b)
            c.ref = [fn(a, b)]
            cases.append(c)
        bnz = np.where(b == 0, 7, b).astype(dt)
        c = Case(f"Mod_{dt.__name__}", "Mod").feed(a).feed(bnz)
        c.ref = [np.mod(a, bnz)]      # fmod=0: the result takes the divisor's sign, like numpy
        cases.append(c)
        c = Case(f"Div_{dt.__name__}", "Div").feed(a).feed(bnz)
        c.ref = [(np.sign(a) * np.sign(bnz) * (np.abs(a) // np.abs(bnz))).astype(dt)]  # truncates
        cases.append(c)
    sa, sb = broadcast_shapes(rng, 2)
    a, b = rand(rng, sa, np.float32, -5, 5), rand(rng, sb, np.float32, 0.5, 3)
    c = Case("Mod_fmod_f32", "Mod", {"fmod": 1}).feed(a).feed(b)
    c.ref = [np.fmod(a.astype(np.float64), b)]
    cases.append(c)
    for op, fn in (("Max", np.maximum), ("Min", np.minimum), ("Sum", np.add)):
        sh = broadcast_shapes(rng, 3)
        xs = [rand(rng, s) for s in sh]
        c = Case(f"{op}_variadic3", op)
        for x in xs:
            c.feed(x)
        c.ref = [fn(fn(xs[0].astype(np.float64), xs[1]), xs[2])]
        cases.append(c)
    s = shape(rng, 4, max_numel=20000)
    x, slope = rand(rng, s), rand(rng, [s[1], 1, 1] if s[1] else [1], np.float32, 0, 1)
    c = Case("PRelu_channel", "PRelu").feed(x).feed(slope)
    c.ref = [np.where(x < 0, x.astype(np.float64) * slope, x)]
    return cases + [c]


def cfg_cast(rng):
    cases = []
    pairs = [(np.float32, I32, -100, 100), (np.float32, F16, -100, 100),
             (np.float32, I64, -1e6, 1e6), (np.int64, F32, -1000, 1000),
             (np.float32, BOOL, -1, 1), (np.bool_, F32, 0, 1), (np.float64, F32, -1e3, 1e3),
             (np.uint8, F32, 0, 255), (np.int32, I64, -1000, 1000), (np.float16, F32, -10, 10),
             (np.int64, U8, 0, 255)]
    for src, to, lo, hi in pairs:
        x = rand(rng, shape(rng, int(rng.integers(0, 4)), zero=True), src, lo, hi)
        c = Case(f"Cast_{np.dtype(src).name}_to_{TensorProto.DataType.Name(to)}", "Cast",
                 {"to": to}).feed(x)
        c.ref = [x.astype(NP_OF[to])]
        cases.append(c)
    return cases


def cfg_clip_where(rng):
    cases = []
    for lo, hi in ((-1.0, 1.5), (0.0, None), (None, 0.5)):
        x = rand(rng, shape(rng, 3, zero=True))
        c = Case(f"Clip_{lo}_{hi}", "Clip").feed(x)
        if lo is None:
            c.absent()
        else:
            c.const(np.array(lo, np.float32))
        if hi is not None:
            c.const(np.array(hi, np.float32))
        c.ref = [np.clip(x, lo, hi)]
        cases.append(c)
    for dt in (np.float32, np.int64):
        sc, sa, sb = broadcast_shapes(rng, 3)
        cond, a, b = rand(rng, sc, np.bool_), rand(rng, sa, dt), rand(rng, sb, dt)
        c = Case(f"Where_{np.dtype(dt).name}_{sc}_{sa}_{sb}", "Where").feed(cond).feed(a).feed(b)
        c.ref = [np.where(cond, a, b)]
        cases.append(c)
    return cases


def cfg_matmul(rng):
    cases = []
    for _ in range(6):
        m, k, n = dim(rng, True), dim(rng, True), dim(rng)
        batch = broadcast_shapes(rng, 2, zero=False) if rng.random() < 0.6 else [[], []]
        batch = [s[:2] for s in batch]
        sa, sb = batch[0] + [m, k], batch[1] + [k, n]
        if rng.random() < 0.2:
            sa = [k]
        elif rng.random() < 0.2:
            sb = [k]
        if np.prod(sa) * max(n, 1) > 2e5 or np.prod(sb) * max(m, 1) > 2e5:
            continue
        a, b = rand(rng, sa, np.float32, -1, 1), rand(rng, sb, np.float32, -1, 1)
        c = Case(f"MatMul_{sa}_{sb}", "MatMul").feed(a).feed(b)
        c.ref = [np.matmul(a.astype(np.float64), b)]
        cases.append(c)
    for _ in range(5):
        m, k, n = dim(rng, True), dim(rng), dim(rng)
        ta, tb = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        alpha, beta = float(rng.choice([1.0, 0.5])), float(rng.choice([1.0, 2.0]))
        a = rand(rng, [k, m] if ta else [m, k], np.float32, -1, 1)
        b = rand(rng, [n, k] if tb else [k, n], np.float32, -1, 1)
        cshape = [[n], [1, n], [m, n], [], [m, 1]][int(rng.integers(0, 5))]
        cc = rand(rng, cshape, np.float32, -1, 1)
        c = Case(f"Gemm_m{m}k{k}n{n}_t{ta}{tb}_C{cshape}", "Gemm",
                 {"transA": ta, "transB": tb, "alpha": alpha, "beta": beta}).feed(a).feed(b)
        c.const(cc) if rng.random() < 0.5 else c.feed(cc)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        c.ref = [alpha * ((a64.T if ta else a64) @ (b64.T if tb else b64)) + beta * cc]
        cases.append(c)
    return cases


def conv_case(rng, nd, transpose=False):
    g = int(rng.choice([1, 1, 2, 3]))
    cin, cout = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
    k = [int(rng.choice([1, 2, 3, 5])) for _ in range(nd)]
    st = [int(rng.choice([1, 1, 2, 3])) for _ in range(nd)]
    dl = [int(rng.choice([1, 1, 2])) for _ in range(nd)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * nd)]
    sp = [int(rng.choice([1, 5, 7, 13, 16])) for _ in range(nd)]
    for i in range(nd):  # the padded input must hold one dilated kernel
        need = dl[i] * (k[i] - 1) + 1 - pads[i] - pads[i + nd]
        sp[i] = max(sp[i], need)
    n = int(rng.choice([0, 1, 1, 2]))
    x = rand(rng, [n, cin] + sp, np.float32, -1, 1)
    attrs = {"group": g, "strides": st, "dilations": dl, "kernel_shape": k}
    if rng.random() < 0.2 and not transpose:
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = pads
    w = rand(rng, ([cin, cout // g] if transpose else [cout, cin // g]) + k, np.float32, -1, 1)
    op = "ConvTranspose" if transpose else "Conv"
    c = Case(f"{op}{nd}d_g{g}_ci{cin}co{cout}_k{k}_s{st}_d{dl}_x{x.shape}", op, attrs)
    c.feed(x).const(w) if rng.random() < 0.7 else c.feed(x).feed(w)
    if rng.random() < 0.6:
        c.const(rand(rng, [cout], np.float32, -1, 1))
    return c


def cfg_conv(rng):
    cases = [conv_case(rng, 2) for _ in range(8)] + [conv_case(rng, 1) for _ in range(3)]
    cases += [conv_case(rng, 3) for _ in range(1)]
    return cases + [conv_case(rng, 2, transpose=True) for _ in range(3)]


def cfg_pool(rng):
    cases = []
    for i in range(8):
        op = "MaxPool" if i % 2 == 0 else "AveragePool"
        nd = 1 if i == 6 else 2
        k = [int(rng.choice([1, 2, 3, 4])) for _ in range(nd)]
        st = [int(rng.choice([1, 2, 3])) for _ in range(nd)]
        pads = [int(rng.integers(0, kk)) for kk in k + k]
        sp = [max(int(rng.choice([4, 7, 13, 31])), kk) for kk in k]
        x = rand(rng, [int(rng.choice([1, 2])), int(rng.choice([1, 3, 5]))] + sp)
        attrs = {"kernel_shape": k, "strides": st, "pads": pads,
                 "ceil_mode": int(rng.integers(0, 2))}
        if op == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
        elif rng.random() < 0.5:
            attrs["dilations"] = [int(rng.choice([1, 2])) for _ in range(nd)]
        cases.append(Case(f"{op}_k{k}_s{st}_p{pads}_x{list(x.shape)}", op, attrs).feed(x))
    for op, fn in (("GlobalAveragePool", np.mean), ("GlobalMaxPool", np.max)):
        x = rand(rng, [2, 5, 7, 13])
        c = Case(op, op).feed(x)
        c.ref = [fn(x.astype(np.float64), axis=(2, 3), keepdims=True)]
        cases.append(c)
    return cases


REDUCE = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max,
          "ReduceMin": np.min, "ReduceProd": np.prod,
          "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
          "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
          "ReduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
          "ReduceLogSumExp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis,
                                                                      keepdims=keepdims))}


def cfg_reduce(rng):
    cases = []
    for op, fn in REDUCE.items():
        for _ in range(2):
            rank = int(rng.integers(1, 5))
            s = shape(rng, rank, max_numel=30000)
            axes = sorted(int(a) for a in rng.choice(rank, int(rng.integers(1, rank + 1)),
                                                    replace=False))
            if rng.random() < 0.3:
                axes = [a - rank for a in axes]  # negative axes
            keep = int(rng.integers(0, 2))
            lo, hi = (0.5, 1.5) if op == "ReduceProd" else (-2, 2)
            x = rand(rng, s, np.float32, lo, hi)
            c = Case(f"{op}_{s}_axes{axes}_keep{keep}", op, {"keepdims": keep}).feed(x)
            if op == "ReduceSum":
                c.const(np.array(axes, np.int64))
            else:
                c.attrs["axes"] = axes
            c.ref = [fn(x.astype(np.float64), axis=tuple(axes), keepdims=bool(keep))]
            cases.append(c)
    for op, fn in (("ArgMax", np.argmax), ("ArgMin", np.argmin)):
        for _ in range(2):
            s = shape(rng, int(rng.integers(1, 4)))
            axis = int(rng.integers(-len(s), len(s)))
            x = rand(rng, s, np.int32, -1000, 1000).astype(np.float32)
            keep = int(rng.integers(0, 2))
            c = Case(f"{op}_{s}_axis{axis}", op, {"axis": axis, "keepdims": keep}).feed(x)
            r = fn(x, axis=axis)  # first occurrence on ties, as select_last_index=0
            c.ref = [np.expand_dims(r, axis) if keep else r]
            cases.append(c)
    return cases


def softmax(x, axis, log=False):
    x = x.astype(np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    s = e / np.sum(e, axis=axis, keepdims=True)
    return np.log(s) if log else s


def cfg_softmax(rng):
    cases = []
    for op in ("Softmax", "LogSoftmax", "Softmax", "Hardmax"):
        rank = int(rng.integers(1, 5))
        s = shape(rng, rank, max_numel=30000)
        axis = int(rng.integers(-rank, rank))
        x = rand(rng, s, np.float32, -5, 5)
        c = Case(f"{op}_{s}_axis{axis}", op, {"axis": axis}).feed(x)
        if op != "Hardmax":
            c.ref = [softmax(x, axis, op == "LogSoftmax")]
        cases.append(c)
    return cases


def cfg_shape_ops(rng):
    cases = []
    for _ in range(4):
        rank = int(rng.integers(0, 6))
        x = rand(rng, shape(rng, rank, zero=True, max_numel=30000))
        perm = [int(p) for p in rng.permutation(rank)]
        c = Case(f"Transpose_{list(x.shape)}_{perm}", "Transpose", {"perm": perm}).feed(x)
        c.ref = [np.transpose(x, perm)]
        cases.append(c)
    for _ in range(3):
        rank = int(rng.integers(1, 4))
        base = shape(rng, rank, max_numel=5000)
        axis = int(rng.integers(-rank, rank))
        xs = []
        for _ in range(int(rng.integers(1, 4))):
            s = list(base)
            s[axis] = dim(rng, zero=True, big=False)
            xs.append(rand(rng, s, np.int64 if rank == 2 else np.float32))
        c = Case(f"Concat_{[list(x.shape) for x in xs]}_axis{axis}", "Concat", {"axis": axis})
        for x in xs:
            c.feed(x)
        c.ref = [np.concatenate(xs, axis)]
        cases.append(c)
    for _ in range(4):
        rank = int(rng.integers(1, 4))
        x = rand(rng, shape(rng, rank, max_numel=20000))
        axes = [int(a) for a in rng.permutation(rank)[:int(rng.integers(1, rank + 1))]]
        starts, ends, steps, sl = [], [], [], [slice(None)] * rank
        for a in axes:
            d = x.shape[a]
            step = int(rng.choice([1, 1, 2, 3, -1, -2]))
            st = int(rng.integers(-d - 2, d + 2))
            en = int(rng.choice([int(rng.integers(-d - 2, d + 2)), 2**62, -2**62]))
            starts.append(st), ends.append(en), steps.append(step)
            sl[a] = slice(st, en, step)
        c = Case(f"Slice_{list(x.shape)}_{axes}_{starts}_{ends}_{steps}", "Slice").feed(x)
        for v in (starts, ends, axes, steps):
            c.const(np.array(v, np.int64))
        c.ref = [x[tuple(sl)]]
        cases.append(c)
    for _ in range(4):
        rank = int(rng.integers(1, 4))
        x = rand(rng, shape(rng, rank, max_numel=20000))
        axis = int(rng.integers(-rank, rank))
        d = x.shape[axis]
        idx = rng.integers(-d, d, size=shape(rng, int(rng.integers(0, 3)), zero=True,
                                             max_numel=50)).astype(np.int64)
        c = Case(f"Gather_{list(x.shape)}_axis{axis}_idx{list(idx.shape)}", "Gather",
                 {"axis": axis}).feed(x)
        c.const(idx) if rng.random() < 0.5 else c.feed(idx)
        c.ref = [np.take(x, idx, axis=axis)]
        cases.append(c)
    for mode in ("constant", "reflect", "edge", "constant"):
        rank = int(rng.integers(1, 5))
        x = rand(rng, [max(d, 4) for d in shape(rng, rank, max_numel=20000)])
        lo = [int(rng.integers(0, 4)) for _ in range(rank)]
        hi = [int(rng.integers(-1 if mode == "constant" else 0, 4)) for _ in range(rank)]
        c = Case(f"Pad_{mode}_{list(x.shape)}_{lo}_{hi}", "Pad", {"mode": mode}).feed(x)
        c.const(np.array(lo + hi, np.int64)).const(np.array(1.5, np.float32))
        crop = tuple(slice(0, x.shape[i] + lo[i] + hi[i]) for i in range(rank))  # hi < 0 crops
        padded = np.pad(x, [(l, max(h, 0)) for l, h in zip(lo, hi)], mode=mode,
                        **({"constant_values": 1.5} if mode == "constant" else {}))
        c.ref = [padded[crop]]
        cases.append(c)
    x = rand(rng, shape(rng, 4, zero=True, max_numel=20000))
    c = Case(f"Reshape_{list(x.shape)}", "Reshape").feed(x)
    c.const(np.array([0, -1, x.shape[3]], np.int64))
    c.ref = [x.reshape(x.shape[0], -1, x.shape[3]) if x.size else
             np.zeros([x.shape[0], x.shape[1] * x.shape[2], x.shape[3]], np.float32)]
    cases.append(c)
    axis = int(rng.integers(-4, 5))
    c = Case(f"Flatten_{list(x.shape)}_axis{axis}", "Flatten", {"axis": axis}).feed(x)
    a = axis + 4 if axis < 0 else axis
    c.ref = [x.reshape(int(np.prod(x.shape[:a])), int(np.prod(x.shape[a:])))]
    cases.append(c)
    x = rand(rng, [3, 13, 2])
    c = Case("Split_3way", "Split", {"axis": 1}).feed(x).const(np.array([4, 0, 9], np.int64))
    c.n_outputs = 3
    c.ref = [x[:, :4], x[:, 4:4], x[:, 4:]]
    cases.append(c)
    x = rand(rng, [3, 1, 7])
    target = np.array([2, 1, 5, 1], np.int64)
    c = Case("Expand", "Expand").feed(x).const(target)
    c.ref = [x * np.ones(target)]
    cases.append(c)
    x = rand(rng, [5, 1, 13])
    reps = np.array([2, 3, 1], np.int64)
    c = Case("Tile", "Tile").feed(x).const(reps)
    c.ref = [np.tile(x, reps)]
    cases.append(c)
    x = rand(rng, [4, 31])
    c = Case("CumSum", "CumSum").feed(x).const(np.array(1, np.int64))
    c.ref = [np.cumsum(x.astype(np.float64), axis=1)]
    return cases + [c]


def cfg_norm(rng):
    cases = []
    for _ in range(4):
        rank = int(rng.integers(2, 5))
        s = shape(rng, rank, max_numel=20000)
        axis = int(rng.integers(-rank + 1, rank))
        ns = s[axis:]
        x = rand(rng, s)
        c = Case(f"LayerNormalization_{s}_axis{axis}", "LayerNormalization",
                 {"axis": axis, "epsilon": 1e-5}).feed(x).const(rand(rng, ns))
        if rng.random() < 0.6:
            c.const(rand(rng, ns))
        cases.append(c)
    for _ in range(3):
        n, ch = dim(rng, zero=True, big=False), int(rng.choice([1, 3, 7]))
        s = [n, ch] + shape(rng, int(rng.integers(0, 3)), max_numel=500)
        x = rand(rng, s)
        sc, b, mean = rand(rng, [ch]), rand(rng, [ch]), rand(rng, [ch])
        var = rand(rng, [ch], np.float32, 0.1, 2)
        c = Case(f"BatchNormalization_{s}", "BatchNormalization", {"epsilon": 1e-3}).feed(x)
        for p in (sc, b, mean, var):
            c.const(p)
        bshape = [ch] + [1] * (len(s) - 2)
        c.ref = [(x.astype(np.float64) - mean.reshape(bshape)) / np.sqrt(
            var.reshape(bshape).astype(np.float64) + 1e-3) * sc.reshape(bshape)
            + b.reshape(bshape)]
        cases.append(c)
    x = rand(rng, [2, 3, 13, 7])
    c = Case("InstanceNormalization", "InstanceNormalization").feed(x)
    cases.append(c.const(rand(rng, [3])).const(rand(rng, [3])))
    return cases


def cfg_resize(rng):
    cases = []
    for mode, ctm, nearest in (("nearest", "asymmetric", "floor"),
                               ("nearest", "half_pixel", "round_prefer_floor"),
                               ("linear", "half_pixel", None), ("linear", "align_corners", None),
                               ("linear", "asymmetric", None), ("cubic", "half_pixel", None),
                               ("linear", "pytorch_half_pixel", None)):
        x = rand(rng, [1, 2, int(rng.choice([1, 4, 7])), int(rng.choice([3, 5, 13]))])
        attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
        if nearest:
            attrs["nearest_mode"] = nearest
        c = Case(f"Resize_{mode}_{ctm}", "Resize", attrs).feed(x)
        c.const(np.array([], np.float32))  # roi
        if rng.random() < 0.5:
            c.const(np.array([1, 1, float(rng.choice([0.5, 2, 3])),
                              float(rng.choice([0.6, 1.5, 2])), ], np.float32))
        else:
            c.const(np.array([], np.float32))
            c.const(np.array([1, 2, int(rng.integers(1, 20)), int(rng.integers(1, 20))],
                             np.int64))
        cases.append(c)
    return cases


def cfg_rnn(rng):
    cases = []
    for op, gates in (("LSTM", 4), ("LSTM", 4), ("GRU", 3), ("RNN", 1)):
        seq, batch = int(rng.choice([1, 3, 7])), int(rng.choice([1, 2, 5]))
        inp, hid = int(rng.choice([1, 4, 13])), int(rng.choice([1, 3, 8]))
        direction = str(rng.choice(["forward", "reverse", "bidirectional"]))
        nd = 2 if direction == "bidirectional" else 1
        attrs = {"hidden_size": hid, "direction": direction}
        c = Case(f"{op}_{direction}_s{seq}b{batch}i{inp}h{hid}", op, attrs)
        c.feed(rand(rng, [seq, batch, inp], np.float32, -1, 1))
        c.const(rand(rng, [nd, gates * hid, inp], np.float32, -0.5, 0.5))
        c.const(rand(rng, [nd, gates * hid, hid], np.float32, -0.5, 0.5))
        c.const(rand(rng, [nd, 2 * gates * hid], np.float32, -0.5, 0.5))
        c.absent()  # sequence_lens
        c.feed(rand(rng, [nd, batch, hid], np.float32, -1, 1))
        if op == "LSTM":
            c.feed(rand(rng, [nd, batch, hid], np.float32, -1, 1))
        c.n_outputs = 3 if op == "LSTM" else 2
        cases.append(c)
    return cases


CONFIGS = [cfg_unary, cfg_binary, cfg_cast, cfg_clip_where, cfg_matmul, cfg_conv, cfg_pool,
           cfg_reduce, cfg_softmax, cfg_shape_ops, cfg_norm, cfg_resize, cfg_rnn]


# ---- running and comparing ----------------------------------------------------------------------
def run_kiln(kiln, argv, timeout):
    """(kind, message): kind is ok, unsupported, crash or error."""
    proc = subprocess.Popen([kiln, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "error", f"timed out after {timeout} s"
    first = (err.strip().splitlines() or ["(no message)"])[0]
    first = first.replace(f"kiln: {argv[1]}: ", "")  # the scratch path says nothing
    if proc.returncode < 0:
        return "crash", f"kiln {argv[-1]} died from signal {-proc.returncode}: {first}"
    for mark in SANITIZER_MARKS:
        if mark in err:
            return "crash", next(l for l in err.splitlines() if mark in l)
    if proc.returncode == 1 and "not supported" in err:
        return "unsupported", first
    if proc.returncode != 0:
        return "error", f"kiln exited {proc.returncode}: {first}"
    return "ok", ""


def read_outputs(folder, n):
    return [numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, f"output_{i}.pb")))
            for i in range(n)]


def mismatch(got, want, rtol, atol):
    """None when got matches want, else a description."""
    want = np.asarray(want)
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    if got.size == 0:
        return None
    if got.dtype.kind in "biu" and want.dtype.kind in "biu":
        bad = got.astype(np.int64) != want.astype(np.int64)
    else:
        g, w = got.astype(np.float64), want.astype(np.float64)
        both_nan = np.isnan(g) & np.isnan(w)
        with np.errstate(invalid="ignore"):
            bad = ~(both_nan | (g == w) | (np.abs(g - w) <= atol + rtol * np.abs(w)))
    if not bad.any():
        return None
    i = int(np.flatnonzero(bad)[0])
    return (f"{int(bad.sum())} of {bad.size} elements differ; first at {i}: "
            f"got {got.reshape(-1)[i]!r}, expected {want.reshape(-1)[i]!r}")


def check_case(case, args):
    """(status, message): status is pass, skip or fail."""
    folder = os.path.join(args.work, case.name.replace("/", "_")[:120] + f"_{id(case)}")
    os.makedirs(os.path.join(folder, "in"), exist_ok=True)
    model = os.path.join(folder, "model.onnx")
    onnx.save(case.model(), model)
    for k, arr in enumerate(case.fed()):
        onnx.save_tensor(numpy_helper.from_array(arr), os.path.join(folder, "in", f"input_{k}.pb"))
    outs = {}
    for tag, flags in (("O0", ["-O0"]), ("O3", ["-O3", "--threads", "2"])):
        out_dir = os.path.join(folder, tag)
        kind, msg = run_kiln(args.kiln, ["run", model, "--inputs", os.path.join(folder, "in"),
                                         "--output-dir", out_dir, *flags], args.timeout)
        if kind == "unsupported" and tag == "O0":
            return "skip", msg
        if kind == "unsupported":  # -O0 compiled it: the same op must compile at -O3
            kind = "error"
        if kind != "ok":
            return "fail", f"{tag}: {msg}"
        try:
            outs[tag] = read_outputs(out_dir, case.n_outputs)
        except Exception as e:  # a missing or unreadable output file
            return "fail", f"{tag}: cannot read outputs: {e}"
    for i, (a, b) in enumerate(zip(outs["O0"], outs["O3"])):
        if a.dtype != b.dtype:
            return "fail", f"output {i}: -O0 gives {a.dtype}, -O3 gives {b.dtype}"
        why = mismatch(b, a, RTOL, ATOL)
        if why:
            return "fail", f"output {i}: -O3 --threads 2 against -O0: {why}"
    for i, want in enumerate(case.ref or []):
        got = outs["O0"][i]
        want = np.asarray(want)
        expect_dtype = want.dtype if want.dtype != np.float64 else None
        if expect_dtype is not None and got.dtype != expect_dtype:
            return "fail", f"output {i}: dtype {got.dtype}, numpy gives {expect_dtype}"
        why = mismatch(got, want, REF_RTOL, REF_ATOL)
        if why:
            return "fail", f"output {i}: -O0 against numpy: {why}"
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return "pass", ""


def run_cases(cases, args, label):
    """Runs check_case over cases with args.jobs workers in args.work (a temporary folder when
    unset), prints each skip and failure and the summary line "LABEL: P passed, S skipped
    (unsupported), F failed"; returns the exit status (1 when any failed). For the scripts that
    build their own cases with this module (check_conv.py, check_dwpool.py, check_rnn.py)."""
    tmp = None
    if not args.work:
        tmp = tempfile.TemporaryDirectory(prefix=f"kiln_{label}_")
        args.work = tmp.name
    os.makedirs(args.work, exist_ok=True)
    counts = {"pass": 0, "skip": 0, "fail": 0}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for case, (status, msg) in zip(cases, pool.map(lambda c: check_case(c, args), cases)):
            counts[status if status in counts else "fail"] += 1
            if status != "pass":
                print(f"{'SKIP' if status == 'skip' else 'FAIL'} {case.name}: {msg}")
    print(f"{label}: {counts['pass']} passed, {counts['skip']} skipped (unsupported), {counts['fail']} failed")
    if tmp:
        tmp.cleanup()
    return 1 if counts["fail"] else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--timeout", type=float, default=120, help="seconds per kiln run")
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep passing cases' files in --work")
    p.add_argument("--filter", help="only cases whose name contains this text")
    p.add_argument("--verbose", action="store_true", help="print passing cases too")
    args = p.parse_args()
    tmp = None
    if args.work:
        os.makedirs(args.work, exist_ok=True)
    else:
        args.work = tmp = tempfile.mkdtemp(prefix="kiln-kernels-")
    # One stream per configuration: adding cases to one leaves the others' shapes alone.
    cases = [c for cfg in CONFIGS
             for c in cfg(np.random.default_rng([args.seed, zlib.crc32(cfg.__name__.encode())]))]
    if args.filter:
        cases = [c for c in cases if args.filter in c.name]
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda c: check_case(c, args), cases))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    counts = {"pass": 0, "skip": 0, "fail": 0}
    for case, (status, msg) in zip(cases, results):
        counts[status] += 1
        if status != "pass" or args.verbose:
            print(f"{status.upper()} {case.name}{': ' + msg if msg else ''}")
    print(f"kernels: {counts['pass']} passed, {counts['skip']} skipped (unsupported), "
          f"{counts['fail']} failed")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
