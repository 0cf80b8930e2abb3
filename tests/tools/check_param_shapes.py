#!/usr/bin/env python3
"""check_param_shapes.py - shape/type inference refuses malformed parameter tensors and inputs of
the wrong dtype: for each case a malformed model (a short Clip bound, OneHot values, LSTM bias,
Not on floats, ...) must make `kiln run` and `kiln inspect` exit 1 with exactly one stderr line
`kiln: ...` naming the op and the input; the well-formed twin must run (and match numpy where
the op is simple)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kilntest import arg_parser, report, run_kiln, work_dir  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(7)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


class Case:
    """One op; build(bad) gives its model parts with the parameter well-formed or malformed, and
    the error message must name op and word."""

    def __init__(self, name, op, word, build, expect=None, opset=13):
        self.name, self.op, self.word, self.build, self.expect, self.opset = name, op, word, build, expect, opset


def save(path, nodes, inputs, outputs, inits, opset):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)


X4 = RNG.standard_normal((1, 3, 2, 2)).astype(np.float32)


def unary(op, x, out_elem, out_shape, params, **attrs):
    """op(x, *params) -> y; params: list of (name, array or None for an omitted input)."""
    names = ["x"] + [n if a is not None else "" for n, a in params]
    inits = [init(n, a) for n, a in params if a is not None]
    node = helper.make_node(op, names, ["y"], **attrs)
    elem = onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[x.dtype]
    return [node], [vi("x", elem, list(x.shape))], [vi("y", out_elem, out_shape)], inits, x


def clip(bad):
    return unary("Clip", X4, F, [1, 3, 2, 2], [("mn", np.zeros(0 if bad else (), np.float32)),
                                                ("mx", np.float32(0.5))])


def onehot(bad):
    idx = np.array([0, 2, 1], np.int64)
    vals = np.float32(1) if bad else np.array([0, 1], np.float32)
    return unary("OneHot", idx, F, [3, 3], [("depth", np.int64(3)), ("v", vals)])


def pad(bad):
    return unary("Pad", X4, F, [1, 3, 4, 4], [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
                                               ("cval", np.zeros(0 if bad else (), np.float32))])


def dequant(bad):
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    zp = np.array([1] if bad else [1, 2, 3], np.uint8)
    return unary("DequantizeLinear", x, F, [2, 3],
                 [("s", np.array([0.5, 1, 2], np.float32)), ("zp", zp)], axis=1)


def quant(bad):
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    zp = np.array([1, 2] if bad else 1, np.uint8)
    return unary("QuantizeLinear", x, TensorProto.UINT8, [2, 3], [("s", np.float32(0.1)), ("zp", zp)])


def batchnorm(bad):
    c = 1 if bad else 3
    ones = np.ones(3, np.float32)
    return unary("BatchNormalization", X4, F, [1, 3, 2, 2],
                 [("s", ones), ("b", ones * 0.5), ("mean", np.full(c, 0.25, np.float32)), ("var", ones)])


def instnorm(bad):
    return unary("InstanceNormalization", X4, F, [1, 3, 2, 2],
                 [("s", np.ones(3, np.float32)), ("b", np.zeros(1 if bad else 3, np.float32))])


def layernorm(bad):
    return unary("LayerNormalization", X4, F, [1, 3, 2, 2],
                 [("s", np.ones(3 if bad else 2, np.float32)), ("b", np.zeros(1, np.float32))])


def conv(bad):
    w = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
    return unary("Conv", X4, F, [1, 4, 2, 2], [("w", w), ("bias", np.ones(1 if bad else 4, np.float32))])


def prelu(bad):
    return unary("PRelu", X4, F, [1, 3, 2, 2], [("slope", np.full((5 if bad else 3, 1, 1), 0.1, np.float32))])


def gemm(bad):
    a = RNG.standard_normal((2, 3)).astype(np.float32)
    b = RNG.standard_normal((3, 4)).astype(np.float32)
    return unary("Gemm", a, F, [2, 4], [("b", b), ("c", np.ones(3 if bad else 4, np.float32))])


def resize(bad):
    scales = np.array([1, 1, 2] if bad else [1, 1, 2, 2], np.float32)
    return unary("Resize", X4, F, [1, 3, 4, 4], [("roi", None), ("scales", scales)], mode="nearest")


def slice_(bad):
    ends = np.array([2, 2] if bad else [2], np.int64)
    return unary("Slice", X4, F, [1, 3, 1, 2], [("starts", np.array([1], np.int64)), ("ends", ends),
                                                 ("axes", np.array([2], np.int64))])


def qlinear_matmul(bad):
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    bs = np.full(5 if bad else 2, 0.5, np.float32)
    return unary("QLinearMatMul", a, TensorProto.UINT8, [2, 2],
                 [("as", np.float32(0.1)), ("az", np.uint8(0)), ("b", np.ones((3, 2), np.uint8)),
                  ("bs", bs), ("bz", np.uint8(0)), ("ys", np.float32(0.1)), ("yz", np.uint8(0))])


def rnn(op, gates, bad_input):
    def build(bad):
        h, i = 2, 3
        x = RNG.standard_normal((1, 1, i)).astype(np.float32)
        shapes = {"W": (1, gates * h, i), "R": (1, gates * h, h), "B": (1, 2 * gates * h),
                  "sequence_lens": (1,), "initial_h": (1, 1, h)}
        if op == "LSTM":
            shapes.update(initial_c=(1, 1, h), P=(1, 3 * h))
        params = []
        for k, s in shapes.items():
            if bad and k == bad_input:
                s = s[:-1] + (1,)
            if k == "sequence_lens":
                params.append((k, np.ones(s, np.int32)))
            else:
                params.append((k, (RNG.standard_normal(s) * 0.3).astype(np.float32)))
        return unary(op, x, F, [1, 1, 1, h], params, hidden_size=h)
    return build


def not_op(bad):
    return unary("Not", np.array([1.5, 0], np.float32) if bad else np.array([True, False]),
                 TensorProto.BOOL, [2], [])


def bitshift(bad):
    t = np.float32 if bad else np.uint32
    return unary("BitShift", np.array([1, 4], t), TensorProto.FLOAT if bad else TensorProto.UINT32,
                 [2], [("s", np.array([1, 1], t))], direction="LEFT")


def gather(bad):
    return unary("Gather", X4.reshape(12), F, [2], [("idx", np.array([1, 3], np.float32 if bad else np.int64))])


def reshape(bad):
    return unary("Reshape", X4, F, [3, 4], [("shape", np.array([3, 4], np.float32 if bad else np.int64))])


def mixed_add(bad):
    return unary("Add", X4.reshape(12), F, [12], [("b", np.ones(12, np.int64 if bad else np.float32))])


def and_op(bad):
    x = np.array([1, 0], np.int32) if bad else np.array([True, False])
    return unary("And", x, TensorProto.BOOL, [2], [("b", np.ones(2, x.dtype))])


def leaky(bad):
    node_args = {"alpha": [1, 2]} if bad else {"alpha": 0.2}
    return unary("LeakyRelu", X4, F, [1, 3, 2, 2], [], **node_args)


def numpy_ref(name, x, inits):
    """The expected output of the well-formed model, for the simple ops; None if not checked."""
    p = {t.name: numpy_helper.to_array(t) for t in inits}
    if name == "clip":
        return np.clip(x, 0, 0.5)
    if name == "onehot":
        return np.eye(3, dtype=np.float32)[x]
    if name == "pad":
        return np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    if name == "dequantize":
        return ((x.astype(np.int32) - p["zp"]) * p["s"]).astype(np.float32)
    if name == "batchnorm":
        return ((x - 0.25) / np.sqrt(1 + 1e-5) + 0.5).astype(np.float32)
    if name == "conv":
        return (np.einsum("oc,nchw->nohw", p["w"][:, :, 0, 0], x) + 1).astype(np.float32)
    if name == "prelu":
        return np.where(x < 0, x * 0.1, x).astype(np.float32)
    if name == "gemm":
        return (x @ p["b"] + 1).astype(np.float32)
    if name == "slice":
        return x[:, :, 1:2, :]
    if name == "resize":
        return x.repeat(2, axis=2).repeat(2, axis=3)
    if name == "not":
        return ~x
    if name == "gather":
        return x[[1, 3]]
    if name == "reshape":
        return x.reshape(3, 4)
    if name == "add":
        return x + 1
    if name == "and":
        return x & True
    if name == "leakyrelu":
        return np.where(x < 0, x * np.float32(0.2), x).astype(np.float32)
    return None


CASES = [
    Case("clip", "Clip", "min", clip), Case("onehot", "OneHot", "values", onehot),
    Case("pad", "Pad", "constant_value", pad, opset=13), Case("dequantize", "DequantizeLinear", "x_zero_point", dequant),
    Case("quantize", "QuantizeLinear", "y_zero_point", quant),
    Case("batchnorm", "BatchNormalization", "input_mean", batchnorm),
    Case("instnorm", "InstanceNormalization", "'b'", instnorm),
    Case("layernorm", "LayerNormalization", "Scale", layernorm, opset=17),
    Case("conv", "Conv", "bias", conv), Case("prelu", "PRelu", "slope", prelu),
    Case("gemm", "Gemm", "C", gemm), Case("resize", "Resize", "scales", resize),
    Case("slice", "Slice", "ends", slice_), Case("qlinearmatmul", "QLinearMatMul", "b_scale", qlinear_matmul),
    Case("lstm_b", "LSTM", "B", rnn("LSTM", 4, "B")), Case("lstm_p", "LSTM", "P", rnn("LSTM", 4, "P")),
    Case("lstm_c", "LSTM", "initial_c", rnn("LSTM", 4, "initial_c")),
    Case("gru_h", "GRU", "initial_h", rnn("GRU", 3, "initial_h")),
    Case("gru_w", "GRU", "W", rnn("GRU", 3, "W")), Case("rnn_r", "RNN", "R", rnn("RNN", 1, "R")),
    Case("not", "Not", "input 0", not_op), Case("bitshift", "BitShift", "input 0", bitshift, opset=13),
    Case("gather", "Gather", "input 1", gather), Case("reshape", "Reshape", "input 1", reshape),
    Case("add", "Add", "input 1", mixed_add), Case("and", "And", "input 0", and_op),
    Case("leakyrelu", "LeakyRelu", "alpha", leaky),
]


def check_bad(kiln, d, case):
    msgs = []
    nodes, inputs, outputs, inits, x = case.build(True)
    path = os.path.join(d, case.name + "_bad.onnx")
    save(path, nodes, inputs, outputs, inits, case.opset)
    xin = os.path.join(d, case.name + "_x.pb")
    with open(xin, "wb") as f:
        f.write(numpy_helper.from_array(x).SerializeToString())
    for argv in (["run", path, "--input", "x=" + xin], ["inspect", path]):
        rc, out, err = run_kiln(kiln, argv, timeout=120)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if rc != 1:
            msgs.append(f"`kiln {argv[0]}` exited {rc}, expected 1: {err.strip()[:300]}")
        elif len(lines) != 1 or not lines[0].startswith("kiln: "):
            msgs.append(f"`kiln {argv[0]}` stderr is not one 'kiln: ' line: {err.strip()[:300]!r}")
        elif case.op not in lines[0] or case.word not in lines[0]:
            msgs.append(f"`kiln {argv[0]}` message names neither op {case.op} nor {case.word!r}: {lines[0]}")
    return msgs


def check_good(kiln, d, case):
    nodes, inputs, outputs, inits, x = case.build(False)
    path = os.path.join(d, case.name + "_good.onnx")
    save(path, nodes, inputs, outputs, inits, case.opset)
    xin = os.path.join(d, case.name + "_gx.pb")
    with open(xin, "wb") as f:
        f.write(numpy_helper.from_array(x).SerializeToString())
    outdir = os.path.join(d, case.name + "_out")
    os.makedirs(outdir, exist_ok=True)
    rc, out, err = run_kiln(kiln, ["run", path, "--input", "x=" + xin, "--output-dir", outdir], timeout=120)
    if rc != 0:
        return [f"well-formed model: `kiln run` exited {rc}: {err.strip()[:300]}"]
    got = numpy_helper.to_array(onnx.load_tensor(os.path.join(outdir, "output_0.pb")))
    want_shape = tuple(dd.dim_value for dd in outputs[0].type.tensor_type.shape.dim)
    if got.shape != want_shape:
        return [f"well-formed model: output shape {got.shape}, expected {want_shape}"]
    want = numpy_ref(case.name, x, inits)
    if want is not None and not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        return [f"well-formed model: output {got.ravel()[:8]} differs from numpy {np.asarray(want).ravel()[:8]}"]
    return []


def main():
    ap = arg_parser(__doc__)
    args = ap.parse_args()
    d = work_dir(args)
    results = []
    for case in CASES:
        results.append((case.name + " (malformed)", check_bad(args.kiln, d, case)))
        results.append((case.name + " (well-formed)", check_good(args.kiln, d, case)))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
