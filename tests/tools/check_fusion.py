#!/usr/bin/python3
"""check_fusion.py --kiln KILN - the fusion passes (fuse_linear, fuse_conv, fuse_norm), pack_weights and block_layout, before and after, on
small models with odd sizes: for each pattern, `kiln bench --time-passes --json` says how many nodes
the pass left (the whole chain becomes one node, or, for patterns it must not touch, nothing
changes; pack_weights: how many weights it repacked), and `kiln run` with the pass and with
--disable-pass=PASS must both match numpy (float64, computed here)."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RTOL, ATOL = 1e-4, 1e-4
failures = []


def model(nodes, inputs, inits, out_shape, opset=13, extra_outputs=()):
    """extra_outputs: (name, shape) of outputs after "y"."""
    outs = [("y", out_shape)] + list(extra_outputs)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outs],
                          [numpy_helper.from_array(v, n) for n, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def relu(x):
    return np.maximum(x, 0)


def linear_cases(rng):
    """(name, model, feeds, expected y, nodes left by fuse_linear)."""
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = []
    for M, K, N in [(1, 5, 3), (7, 17, 33), (13, 64, 100), (128, 256, 31), (1, 300, 16), (3, 40, 17), (25, 7, 48)]:
        a, w, b = r(M, K), r(K, N), r(N)
        m = model([helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Add", ["t", "b"], ["u"]),
                   helper.make_node("Relu", ["u"], ["y"])], [("a", [M, K])], {"w": w, "b": b}, [M, N])
        out.append((f"matmul_bias_relu_{M}x{K}x{N}", m, {"a": a}, relu(a.astype(np.float64) @ w + b), 1))
    a, w, b, res = r(2, 9, 19), r(19, 37), r(1, 37), r(2, 9, 37)
    lo, hi = np.array(0, np.float32), np.array(0.5, np.float32)
    m = model([helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Add", ["b", "t"], ["u"]),
               helper.make_node("Add", ["u", "r"], ["v"]), helper.make_node("Clip", ["v", "lo", "hi"], ["y"])],
              [("a", [2, 9, 19]), ("r", [2, 9, 37])], {"w": w, "b": b, "lo": lo, "hi": hi}, [2, 9, 37])
    ref = np.clip(a.astype(np.float64) @ w + b + res, 0, 0.5)
    out.append(("matmul3d_bias_residual_clip", m, {"a": a, "r": res}, ref, 1))
    a, w, c = r(6, 23), r(35, 23), r(35)
    m = model([helper.make_node("Gemm", ["a", "w", "c"], ["t"], transB=1), helper.make_node("Relu", ["t"], ["y"])],
              [("a", [6, 23])], {"w": w, "c": c}, [6, 35])
    out.append(("gemm_transb_bias_relu", m, {"a": a}, relu(a.astype(np.float64) @ w.T + c), 1))
    a, w, c, res = r(5, 8), r(8, 40), r(1, 40), r(5, 40)
    m = model([helper.make_node("Gemm", ["a", "w", "c"], ["t"]), helper.make_node("Add", ["t", "r"], ["y"])],
              [("a", [5, 8]), ("r", [5, 40])], {"w": w, "c": c}, [5, 40])
    out.append(("gemm_bias_residual", m, {"a": a, "r": res}, a.astype(np.float64) @ w + c + res, 1))
    # must not fuse: the MatMul result is used twice (the Add and the graph's Mul)
    a, w = r(4, 6), r(6, 10)
    m = model([helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Relu", ["t"], ["u"]),
               helper.make_node("Mul", ["u", "t"], ["y"])], [("a", [4, 6])], {"w": w}, [4, 10])
    t = a.astype(np.float64) @ w
    out.append(("shared_result_not_fused", m, {"a": a}, relu(t) * t, 3))
    # must not fuse: W is not a constant
    a, w = r(3, 4), r(4, 5)
    m = model([helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
              [("a", [3, 4]), ("w", [4, 5])], {}, [3, 5])
    out.append(("variable_weight_not_fused", m, {"a": a, "w": w}, relu(a.astype(np.float64) @ w), 2))
    return out


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def conv(x, w, b=None, stride=1, pads=(0, 0), group=1):
    """ONNX Conv in float64 for 1-D and 2-D: x [N, C, H(, W)], w [M, C/group, kh(, kw)]."""
    one_d = x.ndim == 3
    if one_d:
        x, w = x[..., None], w[..., None]
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, _, h, wd = x.shape
    m, cg, kh, kw = w.shape
    ph, pw = pads
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // stride + 1, (wd + 2 * pw - kw) // stride + 1
    out = np.zeros((n, m, oh, ow))
    mg = m // group
    for g in range(group):
        xs, ws = xp[:, g * cg:(g + 1) * cg], w[g * mg:(g + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
                out[:, g * mg:(g + 1) * mg] += np.einsum("ncij,mc->nmij", patch, ws[:, :, i, j])
    if b is not None:
        out += b.astype(np.float64).reshape(1, m, 1, 1)
    return out[..., 0] if one_d else out


def batchnorm(y, scale, beta, mean, var, eps=1e-5):
    sh = (1, -1) + (1,) * (y.ndim - 2)
    c = lambda v: v.astype(np.float64).reshape(sh)  # noqa: E731
    return (y - c(mean)) / np.sqrt(c(var) + eps) * c(scale) + c(beta)


def bn_params(rng, m, prefix="bn"):
    """BatchNormalization's constants (positive variance) named prefix_scale, ... in input order."""
    v = [rng.standard_normal(m), rng.standard_normal(m), rng.standard_normal(m), rng.uniform(0.2, 2.0, m)]
    names = [f"{prefix}_{k}" for k in ("scale", "beta", "mean", "var")]
    return names, {n: a.astype(np.float32) for n, a in zip(names, v)}


def conv_cases(rng):
    """(name, model, feeds, expected outputs, nodes left by fuse_conv)."""
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = []
    # Conv -> BatchNormalization folds into a plain Conv (3 -> 17 channels, kernel 3, stride 2)
    x, w, b = r(2, 3, 13, 13), r(17, 3, 3, 3), r(17)
    bn, p = bn_params(rng, 17)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1], strides=[2, 2]),
               helper.make_node("BatchNormalization", ["t"] + bn, ["y"], epsilon=1e-3)],
              [("x", [2, 3, 13, 13])], {"w": w, "b": b, **p}, [2, 17, 7, 7])
    ref = batchnorm(conv(x, w, b, 2, (1, 1)), *(p[n] for n in bn), eps=1e-3)
    out.append(("conv_bn_3to17_s2", m, {"x": x}, [ref], 1))
    # depthwise (17 groups) without bias -> BatchNormalization -> Relu: one FusedConv
    x, w = r(1, 17, 5, 5), r(17, 1, 3, 3)
    bn, p = bn_params(rng, 17)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"], pads=[1, 1, 1, 1], group=17),
               helper.make_node("BatchNormalization", ["t"] + bn, ["u"]), helper.make_node("Relu", ["u"], ["y"])],
              [("x", [1, 17, 5, 5])], {"w": w, **p}, [1, 17, 5, 5])
    out.append(("depthwise17_bn_relu", m, {"x": x}, [relu(batchnorm(conv(x, w, None, 1, (1, 1), 17), *p.values()))], 1))
    # 1 -> 3 channels, kernel 1, spatial 1: Mul by [3,1,1], Add of [1,3,1,1] (operands swapped), Clip(0, 6)
    x, w, b, s, a = r(3, 1, 1, 1), r(3, 1, 1, 1), r(3), r(3, 1, 1), r(1, 3, 1, 1)
    lo, hi = np.array(0, np.float32), np.array(6, np.float32)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"]), helper.make_node("Mul", ["t", "s"], ["u"]),
               helper.make_node("Add", ["a", "u"], ["v"]), helper.make_node("Clip", ["v", "lo", "hi"], ["y"])],
              [("x", [3, 1, 1, 1])], {"w": w, "b": b, "s": s, "a": a, "lo": lo, "hi": hi}, [3, 3, 1, 1])
    ref = np.clip(conv(x, w, b) * s + a, 0, 6)
    out.append(("conv1to3_k1_mul_add_clip6", m, {"x": x}, [ref], 1))
    # residual Add (graph input first) -> Relu, 17 -> 17 channels, 13x13, kernel 3
    x, w, b, res = r(1, 17, 13, 13), r(17, 17, 3, 3), r(17), r(1, 17, 13, 13)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1]),
               helper.make_node("Add", ["r", "t"], ["u"]), helper.make_node("Relu", ["u"], ["y"])],
              [("x", [1, 17, 13, 13]), ("r", [1, 17, 13, 13])], {"w": w, "b": b}, [1, 17, 13, 13])
    out.append(("conv17_residual_relu", m, {"x": x, "r": res}, [relu(conv(x, w, b, 1, (1, 1)) + res)], 1))
    # 2 groups, stride 2, residual only (no activation)
    x, w, b, res = r(2, 4, 13, 13), r(6, 2, 3, 3), r(6), r(2, 6, 7, 7)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1], strides=[2, 2], group=2),
               helper.make_node("Add", ["t", "r"], ["y"])],
              [("x", [2, 4, 13, 13]), ("r", [2, 6, 7, 7])], {"w": w, "b": b}, [2, 6, 7, 7])
    out.append(("conv_g2_s2_residual", m, {"x": x, "r": res}, [conv(x, w, b, 2, (1, 1), 2) + res], 1))
    # opset 10: BatchNormalization, residual, Clip with attribute bounds
    x, w, res = r(1, 3, 5, 5), r(5, 3, 1, 1), r(1, 5, 5, 5)
    bn, p = bn_params(rng, 5)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("BatchNormalization", ["t"] + bn, ["u"]),
               helper.make_node("Add", ["u", "r"], ["v"]), helper.make_node("Clip", ["v"], ["y"], min=-0.5, max=0.75)],
              [("x", [1, 3, 5, 5]), ("r", [1, 5, 5, 5])], {"w": w, **p}, [1, 5, 5, 5], opset=10)
    ref = np.clip(batchnorm(conv(x, w), *p.values()) + res, -0.5, 0.75)
    out.append(("opset10_conv_bn_residual_clip", m, {"x": x, "r": res}, [ref], 1))
    # 1-D conv, scalar Mul, Relu
    x, w, b, s = r(1, 3, 13), r(17, 3, 3), r(17), np.array(-1.5, np.float32)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"], strides=[2]),
               helper.make_node("Mul", ["s", "t"], ["u"]), helper.make_node("Relu", ["u"], ["y"])],
              [("x", [1, 3, 13])], {"w": w, "b": b, "s": s}, [1, 17, 6])
    out.append(("conv1d_scalar_mul_relu", m, {"x": x}, [relu(conv(x, w, b, 2) * -1.5)], 1))
    # W shared by two Convs, one followed by BatchNormalization: the other must still see the old W
    x, w = r(1, 3, 5, 5), r(3, 3, 3, 3)
    bn, p = bn_params(rng, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["t1"]), helper.make_node("BatchNormalization", ["t1"] + bn, ["u"]),
               helper.make_node("Conv", ["x", "w"], ["t2"]), helper.make_node("Add", ["u", "t2"], ["y"])],
              [("x", [1, 3, 5, 5])], {"w": w, **p}, [1, 3, 3, 3])
    out.append(("shared_weight_bn_residual", m, {"x": x}, [batchnorm(conv(x, w), *p.values()) + conv(x, w)], 2))
    # depthwise 3 channels, stride 2, residual, Clip(0, 6); and 1 channel (also depthwise), residual, Relu
    x, w, b, res = r(1, 3, 13, 13), r(3, 1, 3, 3), r(3), r(1, 3, 7, 7)
    m = model([helper.make_node("Conv", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1], strides=[2, 2], group=3),
               helper.make_node("Add", ["t", "r"], ["u"]), helper.make_node("Clip", ["u", "lo", "hi"], ["y"])],
              [("x", [1, 3, 13, 13]), ("r", [1, 3, 7, 7])], {"w": w, "b": b, "lo": lo, "hi": hi}, [1, 3, 7, 7])
    ref = np.clip(conv(x, w, b, 2, (1, 1), 3) + res, 0, 6)
    out.append(("depthwise3_s2_residual_clip6", m, {"x": x, "r": res}, [ref], 1))
    x, w, res = r(2, 1, 13, 13), r(1, 1, 3, 3), r(2, 1, 11, 11)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "r"], ["u"]),
               helper.make_node("Relu", ["u"], ["y"])],
              [("x", [2, 1, 13, 13]), ("r", [2, 1, 11, 11])], {"w": w}, [2, 1, 11, 11])
    out.append(("conv1ch_residual_relu", m, {"x": x, "r": res}, [relu(conv(x, w) + res)], 1))
    # must not fold: a BatchNormalization statistic is not a constant (the mean is a graph input)
    x, w = r(1, 3, 5, 5), r(5, 3, 3, 3)
    bn, p = bn_params(rng, 5)
    mean = p.pop(bn[2])
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("BatchNormalization", ["t"] + bn, ["y"])],
              [("x", [1, 3, 5, 5]), (bn[2], [5])], {"w": w, **p}, [1, 5, 3, 3])
    ref = batchnorm(conv(x, w), p[bn[0]], p[bn[1]], mean, p[bn[3]])
    out.append(("bn_variable_mean_not_folded", m, {"x": x, bn[2]: mean}, [ref], 2))
    # must not fuse: the Add's other operand is broadcast ([1, 17, 1, 1], not a constant)
    x, w, c = r(1, 3, 5, 5), r(17, 3, 3, 3), r(1, 17, 1, 1)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "c"], ["u"]),
               helper.make_node("Relu", ["u"], ["y"])],
              [("x", [1, 3, 5, 5]), ("c", [1, 17, 1, 1])], {"w": w}, [1, 17, 3, 3])
    out.append(("broadcast_add_not_fused", m, {"x": x, "c": c}, [relu(conv(x, w) + c)], 3))
    # must not fuse: the Conv's result is used twice (the Relu and the Mul)
    x, w = r(1, 1, 5, 5), r(3, 1, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["u"]),
               helper.make_node("Mul", ["u", "t"], ["y"])], [("x", [1, 1, 5, 5])], {"w": w}, [1, 3, 3, 3])
    t = conv(x, w)
    out.append(("conv_result_used_twice_not_fused", m, {"x": x}, [relu(t) * t], 3))
    # only Conv + Add fuse: the Add's result is used twice, so the Relu stays
    x, w, res = r(1, 3, 5, 5), r(3, 3, 1, 1), r(1, 3, 5, 5)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "r"], ["u"]),
               helper.make_node("Relu", ["u"], ["v"]), helper.make_node("Mul", ["u", "v"], ["y"])],
              [("x", [1, 3, 5, 5]), ("r", [1, 3, 5, 5])], {"w": w}, [1, 3, 5, 5])
    u = conv(x, w) + res
    out.append(("residual_used_twice_relu_kept", m, {"x": x, "r": res}, [u * relu(u)], 3))
    # must not fuse: W is not a constant
    x, w = r(1, 3, 5, 5), r(3, 3, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
              [("x", [1, 3, 5, 5]), ("w", [3, 3, 3, 3])], {}, [1, 3, 3, 3])
    out.append(("variable_conv_weight_not_fused", m, {"x": x, "w": w}, [relu(conv(x, w))], 2))
    # must not fuse: the Conv's result is a graph output as well as the Relu's input
    x, w = r(1, 3, 5, 5), r(3, 3, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
              [("x", [1, 3, 5, 5])], {"w": w}, [1, 3, 3, 3], extra_outputs=[("z", [1, 3, 3, 3])])
    out.append(("conv_output_is_graph_output", m, {"x": x}, [conv(x, w), relu(conv(x, w))], 2))
    return out


def layer_norm(x, gamma=None, beta=None, eps=1e-5):
    x = x.astype(np.float64)
    m = x.mean(-1, keepdims=True)
    y = (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + eps)
    return y * (1 if gamma is None else gamma.astype(np.float64)) + (0 if beta is None else beta.astype(np.float64))


def ln_nodes(x="x", y="y", square="pow", axis=-1, gamma="g", beta="b", eps="eps", mean_out="m"):
    """LayerNorm as torch exports it, x -> y; gamma/beta None to leave that step out."""
    n = [helper.make_node("ReduceMean", [x], [mean_out], axes=[axis]), helper.make_node("Sub", [x, mean_out], ["d"])]
    n.append(helper.make_node("Pow", ["d", "two"], ["sq"]) if square == "pow" else helper.make_node("Mul", ["d", "d"], ["sq"]))
    n += [helper.make_node("ReduceMean", ["sq"], ["v"], axes=[axis]), helper.make_node("Add", ["v", eps], ["ve"]),
          helper.make_node("Sqrt", ["ve"], ["s"])]
    steps = [("Mul", gamma), ("Add", beta)]
    steps = [(op, c) for op, c in steps if c is not None]
    cur = "nd"
    n.append(helper.make_node("Div", ["d", "s"], [y if not steps else cur]))
    for k, (op, c) in enumerate(steps):
        out = y if k == len(steps) - 1 else f"{cur}{k}"
        n.append(helper.make_node(op, [cur, c] if k == 0 else [c, cur], [out]))  # operand order varies
        cur = out
    return n


def norm_cases(rng):
    """(name, model, feeds, expected outputs, nodes left by fuse_norm, rewrites)."""
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    two, eps = np.array(2, np.float32), np.array(1e-5, np.float32)
    out = []
    for shape, square, params in [((2, 1), "pow", "gb"), ((4, 3), "mul", "gb"), ((2, 5, 17), "pow", "gb"),
                                  ((1, 7, 256), "mul", "gb"), ((3, 17), "pow", "g"), ((2, 3, 256), "pow", ""),
                                  ((5, 1, 3), "mul", "b"), ((1, 9, 17), "pow", "gb_rank3")]:
        c = shape[-1]
        x, g, b = r(*shape), r(c), r(c)
        if params == "gb_rank3":
            g, b = g.reshape(1, 1, c), b.reshape(1, 1, c)
        inits = {"two": two, "eps": eps}
        if "g" in params:
            inits["g"] = g
        if "b" in params:
            inits["b"] = b
        m = model(ln_nodes(square=square, gamma="g" if "g" in params else None, beta="b" if "b" in params else None,
                           axis=-1 if c != 17 else len(shape) - 1),
                  [("x", list(shape))], inits, list(shape))
        ref = layer_norm(x, g if "g" in params else None, b if "b" in params else None)
        out.append((f"layernorm_{'x'.join(map(str, shape))}_{square}_{params or 'plain'}", m, {"x": x}, [ref], 1, 1))
    # a larger epsilon, read from the graph
    x, g, b = r(2, 4, 33), r(33), r(33)
    m = model(ln_nodes(), [("x", [2, 4, 33])], {"two": two, "eps": np.array(0.1, np.float32), "g": g, "b": b}, [2, 4, 33])
    out.append(("layernorm_eps0.1", m, {"x": x}, [layer_norm(x, g, b, 0.1)], 1, 1))
    # must not fuse: the mean is over axis 1, not the last one
    x, g, b = r(2, 5, 5), r(5), r(5)
    m = model(ln_nodes(axis=1), [("x", [2, 5, 5])], {"two": two, "eps": eps, "g": g, "b": b}, [2, 5, 5])
    xd = x.astype(np.float64)
    mu = xd.mean(1, keepdims=True)
    ref = (xd - mu) / np.sqrt(((xd - mu) ** 2).mean(1, keepdims=True) + 1e-5) * g + b
    out.append(("layernorm_axis1_not_fused", m, {"x": x}, [ref], 9, 0))
    # must not fuse: the mean is a graph output too
    x = r(3, 8)
    m = model(ln_nodes(mean_out="z", gamma=None, beta=None), [("x", [3, 8])], {"two": two, "eps": eps}, [3, 8],
              extra_outputs=[("z", [3, 1])])
    out.append(("layernorm_mean_used_twice_not_fused", m, {"x": x}, [layer_norm(x), x.astype(np.float64).mean(-1, keepdims=True)], 7, 0))
    # must not fuse: epsilon is a graph input
    x, g = r(3, 8), r(8)
    m = model(ln_nodes(beta=None), [("x", [3, 8]), ("eps", [])], {"two": two, "g": g}, [3, 8])
    out.append(("layernorm_variable_eps_not_fused", m, {"x": x, "eps": eps}, [layer_norm(x, g)], 8, 0))
    return out + gelu_cases(rng)


def gelu_ref(x, tanh=False):
    x = x.astype(np.float64)
    if tanh:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))


def gelu_cases(rng):
    r = lambda *s: (2 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    f = lambda v: np.array(v, np.float32)  # noqa: E731
    consts = {"sqrt2": f(1.4142135), "rsqrt2": f(0.70710678), "one": f(1), "half": f(0.5),
              "beta": f(0.7978845608), "kappa": f(0.044715), "three": f(3)}
    mk = helper.make_node
    out = []
    # torch's erf export: Div -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
    x = r(2, 7, 33)
    nodes = [mk("Div", ["x", "sqrt2"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["e1"]),
             mk("Mul", ["x", "e1"], ["p"]), mk("Mul", ["p", "half"], ["y"])]
    m = model(nodes, [("x", [2, 7, 33])], consts, [2, 7, 33])
    out.append(("gelu_erf_torch", m, {"x": x}, [gelu_ref(x)], 1, 1))
    # Mul by 1/sqrt 2, (0.5 * x) * e1 with operands swapped, rank 1 of odd length
    x = r(17)
    nodes = [mk("Mul", ["rsqrt2", "x"], ["a"]), mk("Mul", ["half", "x"], ["h"]), mk("Erf", ["a"], ["e"]),
             mk("Add", ["one", "e"], ["e1"]), mk("Mul", ["e1", "h"], ["y"])]
    out.append(("gelu_erf_half_x_first", model(nodes, [("x", [17])], consts, [17]), {"x": x}, [gelu_ref(x)], 1, 1))
    # (e1 * 0.5) * x
    x = r(3, 1)
    nodes = [mk("Div", ["x", "sqrt2"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["e1"]),
             mk("Mul", ["half", "e1"], ["p"]), mk("Mul", ["x", "p"], ["y"])]
    out.append(("gelu_erf_half_e1_first", model(nodes, [("x", [3, 1])], consts, [3, 1]), {"x": x}, [gelu_ref(x)], 1, 1))
    # torch's tanh export: 0.5 * (x * (1 + tanh(beta * (x + kappa * (x * (x * x))))))
    x = r(4, 129)
    nodes = [mk("Mul", ["x", "x"], ["x2"]), mk("Mul", ["x", "x2"], ["x3"]), mk("Mul", ["kappa", "x3"], ["k3"]),
             mk("Add", ["x", "k3"], ["u"]), mk("Mul", ["beta", "u"], ["t"]), mk("Tanh", ["t"], ["th"]),
             mk("Add", ["one", "th"], ["e1"]), mk("Mul", ["x", "e1"], ["p"]), mk("Mul", ["half", "p"], ["y"])]
    m = model(nodes, [("x", [4, 129])], consts, [4, 129])
    out.append(("gelu_tanh_torch", m, {"x": x}, [gelu_ref(x, True)], 1, 1))
    # tanh with Pow(x, 3) and (0.5 * x) * e1, operands swapped
    x = r(1, 3, 31)
    nodes = [mk("Pow", ["x", "three"], ["x3"]), mk("Mul", ["x3", "kappa"], ["k3"]), mk("Add", ["k3", "x"], ["u"]),
             mk("Mul", ["u", "beta"], ["t"]), mk("Tanh", ["t"], ["th"]), mk("Add", ["th", "one"], ["e1"]),
             mk("Mul", ["x", "half"], ["h"]), mk("Mul", ["h", "e1"], ["y"])]
    m = model(nodes, [("x", [1, 3, 31])], consts, [1, 3, 31])
    out.append(("gelu_tanh_pow_half_x", m, {"x": x}, [gelu_ref(x, True)], 1, 1))
    # must not fuse: divided by 2 instead of sqrt 2
    x = r(2, 9)
    nodes = [mk("Div", ["x", "two"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["e1"]),
             mk("Mul", ["x", "e1"], ["p"]), mk("Mul", ["p", "half"], ["y"])]
    m = model(nodes, [("x", [2, 9])], {**consts, "two": f(2)}, [2, 9])
    ref = 0.5 * x.astype(np.float64) * (1 + np.vectorize(math.erf)(x.astype(np.float64) / 2))
    out.append(("gelu_wrong_constant_not_fused", m, {"x": x}, [ref], 5, 0))
    # must not fuse: 1 + erf is a graph output too
    x = r(2, 9)
    nodes = [mk("Div", ["x", "sqrt2"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["z"]),
             mk("Mul", ["x", "z"], ["p"]), mk("Mul", ["p", "half"], ["y"])]
    m = model(nodes, [("x", [2, 9])], consts, [2, 9], extra_outputs=[("z", [2, 9])])
    e1 = 1 + np.vectorize(math.erf)(x.astype(np.float64) / np.sqrt(2))
    out.append(("gelu_shared_erf_not_fused", m, {"x": x}, [gelu_ref(x), e1], 5, 0))
    # after a dense layer the GELU goes into the FusedGemm's epilogue: one node left
    x, w, b = r(3, 5, 40), r(40, 33) / 8, r(33)
    lin = [mk("MatMul", ["x", "w"], ["mm"]), mk("Add", ["mm", "b"], ["h"])]
    nodes = lin + [mk("Div", ["h", "sqrt2"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["e1"]),
                   mk("Mul", ["h", "e1"], ["p"]), mk("Mul", ["p", "half"], ["y"])]
    h = x.astype(np.float64) @ w + b
    m = model(nodes, [("x", [3, 5, 40])], {**consts, "w": w, "b": b}, [3, 5, 33])
    out.append(("gelu_erf_into_gemm", m, {"x": x}, [gelu_ref(h)], 1, 1))
    nodes = lin + [mk("Pow", ["h", "three"], ["x3"]), mk("Mul", ["x3", "kappa"], ["k3"]), mk("Add", ["k3", "h"], ["u"]),
                   mk("Mul", ["u", "beta"], ["t"]), mk("Tanh", ["t"], ["th"]), mk("Add", ["th", "one"], ["e1"]),
                   mk("Mul", ["h", "half"], ["hh"]), mk("Mul", ["hh", "e1"], ["y"])]
    m = model(nodes, [("x", [3, 5, 40])], {**consts, "w": w, "b": b}, [3, 5, 33])
    out.append(("gelu_tanh_into_gemm", m, {"x": x}, [gelu_ref(h, True)], 1, 1))
    # the dense layer's result is also a graph output: the GELU stays its own node
    nodes = lin + [mk("Div", ["h", "sqrt2"], ["a"]), mk("Erf", ["a"], ["e"]), mk("Add", ["e", "one"], ["e1"]),
                   mk("Mul", ["h", "e1"], ["p"]), mk("Mul", ["p", "half"], ["y"])]
    m = model(nodes, [("x", [3, 5, 40])], {**consts, "w": w, "b": b}, [3, 5, 33], extra_outputs=[("h", [3, 5, 33])])
    out.append(("gelu_gemm_output_shared", m, {"x": x}, [gelu_ref(h), h], 2, 1))
    return out


def softmax_ref(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention_model(rng, B, H, Sq, Sk, D, Dv, layout="torch", scale=None, mask=None, mask_first=False, axis=-1):
    """MatMul(Q, K^T) [scale] [mask] Softmax MatMul(., V), as torch exports it (layout "torch":
    Q/K/V [B, S, H, D] through Transposes, the result transposed back), or on [B, H, S, D] Q/V and
    a [B, H, D, Sk] K^T with no Transposes ("plain"), or rank 3 [B, S, D] ("rank3", K^T by a
    Transpose). scale: (op, c) with op "div", "mul" or "mul_left"; mask: its shape (random additive
    values, a third of them -1e4). Returns (model, feeds, reference y, node count)."""
    mk = helper.make_node
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    nodes, inputs, inits, feeds = [], [], {}, {}
    if layout == "torch":
        shapes = {"q": [B, Sq, H, D], "k": [B, Sk, H, D], "v": [B, Sk, H, Dv]}
        nodes += [mk("Transpose", ["q"], ["qh"], perm=[0, 2, 1, 3]), mk("Transpose", ["k"], ["kt"], perm=[0, 2, 3, 1]),
                  mk("Transpose", ["v"], ["vh"], perm=[0, 2, 1, 3])]
    elif layout == "rank3":
        shapes = {"q": [B, Sq, D], "k": [B, Sk, D], "v": [B, Sk, Dv]}
        nodes += [mk("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), mk("Identity", ["q"], ["qh"]),
                  mk("Identity", ["v"], ["vh"])]
    else:
        shapes = {"q": [B, H, Sq, D], "kt": [B, H, D, Sk], "v": [B, H, Sk, Dv]}
    for n, s in shapes.items():
        inputs.append((n, s))
        feeds[n] = r(*s)
    q, k, v = feeds["q"].astype(np.float64), feeds.get("k"), feeds["v"].astype(np.float64)
    if layout == "torch":
        qh, kt, vh = q.transpose(0, 2, 1, 3), k.astype(np.float64).transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)
    elif layout == "rank3":
        qh, kt, vh = q, k.astype(np.float64).transpose(0, 2, 1), v
    else:
        qh, kt, vh = q, feeds["kt"].astype(np.float64), v
    qn, kn, vn = ("qh", "kt", "vh") if layout != "plain" else ("q", "kt", "v")
    nodes.append(mk("MatMul", [qn, kn], ["s"]))
    s, cur = qh @ kt, "s"
    if scale:
        op, c = scale
        inits["c"] = np.array(c, np.float32)
        ins = ["c", cur] if op == "mul_left" else [cur, "c"]
        nodes.append(mk("Div" if op == "div" else "Mul", ins, ["ss"]))
        s, cur = (s / np.float64(np.float32(c))) if op == "div" else s * np.float64(np.float32(c)), "ss"
    if mask is not None:
        m = r(*mask)
        m[rng.random(mask) < 0.3] = -1e4
        inputs.append(("mask", list(mask)))
        feeds["mask"] = m
        nodes.append(mk("Add", ["mask", cur] if mask_first else [cur, "mask"], ["sm"]))
        s, cur = s + m, "sm"
    nodes += [mk("Softmax", [cur], ["p"], axis=axis), mk("MatMul", ["p", vn], ["o" if layout == "torch" else "y"])]
    y = softmax_ref(s, axis) @ vh
    if layout == "torch":
        nodes.append(mk("Transpose", ["o"], ["y"], perm=[0, 2, 1, 3]))
        y = y.transpose(0, 2, 1, 3)
    return model(nodes, inputs, inits, list(y.shape)), feeds, y, len(nodes)


def attention_cases(rng):
    """fuse_attention, then fold_transpose (fold_transpose_cases): (pass, (name, model, feeds, [y],
    nodes left, rewrites))."""
    out = []
    fused = [  # name, B, H, Sq, Sk, D, Dv, keyword arguments of attention_model
        ("torch_b1_s130_d64_div", 1, 2, 130, 130, 64, 64, dict(scale=("div", 8.0))),
        ("torch_b3_s7_d8_mask_ss", 3, 2, 7, 7, 8, 8, dict(scale=("div", 2.828427), mask=(7, 7))),
        ("torch_b3_s33_d80_mul_mask_b11s", 3, 3, 33, 33, 80, 80, dict(scale=("mul", 0.1118), mask=(3, 1, 1, 33), mask_first=True)),
        ("torch_b1_s1_d64_no_scale", 1, 4, 1, 1, 64, 64, {}),
        ("plain_b3_sq33_sk130_d8_dv80_mask", 3, 2, 33, 130, 8, 80, dict(scale=("mul_left", 0.35), mask=(33, 130))),
        ("rank3_b3_s7_d64_mask_row", 3, 1, 7, 7, 64, 64, dict(layout="rank3", scale=("div", 8.0), mask=(7,))),
        ("torch_b1_s5_d520_wide_head", 1, 1, 5, 5, 520, 520, dict(scale=("div", 22.8))),
    ]
    for name, B, H, Sq, Sk, D, Dv, kw in fused:
        m, feeds, y, _ = attention_model(rng, B, H, Sq, Sk, D, Dv, **kw)
        out.append((name, m, feeds, [y], 3 if kw.get("layout") == "rank3" else 1, 1))
    # must not fuse: Softmax over another axis; the scale a graph input instead of a constant
    m, feeds, y, n = attention_model(rng, 1, 2, 7, 7, 8, 8, scale=("div", 2.0), axis=-2)
    out.append(("softmax_axis_not_last_not_fused", m, feeds, [y], n, 0))
    m, feeds, y, n = attention_model(rng, 3, 2, 7, 7, 8, 8, scale=("div", 2.0))
    m.graph.initializer.pop()
    m.graph.input.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, []))
    out.append(("variable_scale_not_fused", m, {**feeds, "c": np.array(2.0, np.float32)}, [y], n, 0))
    # fused, but K's Transpose stays: its result is a graph output too
    m, feeds, y, _ = attention_model(rng, 1, 2, 33, 33, 8, 8, scale=("div", 2.0))
    m.graph.output.append(helper.make_tensor_value_info("kt", TensorProto.FLOAT, [1, 2, 8, 33]))
    kt = feeds["k"].astype(np.float64).transpose(0, 2, 3, 1)
    out.append(("shared_k_transpose_kept", m, feeds, [y, kt], 2, 1))
    return [("fuse_attention", c) for c in out] + [("fold_transpose", c) for c in fold_transpose_cases(rng)]


def maxpool(x, k, stride, pad):
    """ONNX MaxPool 2-D, square window, symmetric pads, floor mode."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
    out = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride])
    return out


def block_cases(rng):
    """(name, model, feeds, expected outputs, nodes after block_layout, convs/concats/pools moved)."""
    r = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    out = []
    # a residual block: 3x3+Relu, 3x3 + (1x1 of x) + Relu: ToBlocked(x), three convs, FromBlocked(y)
    x, w1, b1, w2, wd = r(1, 16, 9, 11), r(32, 16, 3, 3), r(32), r(32, 32, 3, 3), r(32, 16, 1, 1)
    m = model([helper.make_node("Conv", ["x", "w1", "b1"], ["t1"], pads=[1, 1, 1, 1]),
               helper.make_node("Relu", ["t1"], ["a1"]),
               helper.make_node("Conv", ["x", "wd"], ["skip"]),
               helper.make_node("Conv", ["a1", "w2"], ["t2"], pads=[1, 1, 1, 1]),
               helper.make_node("Add", ["t2", "skip"], ["t3"]),
               helper.make_node("Relu", ["t3"], ["y"])],
              [("x", [1, 16, 9, 11])], {"w1": w1, "b1": b1, "w2": w2, "wd": wd}, [1, 32, 9, 11])
    ref = relu(conv(relu(conv(x, w1, b1, 1, (1, 1))), w2, None, 1, (1, 1)) + conv(x, wd))
    out.append(("resblock_16to32", m, {"x": x}, [ref], 5, 3))
    # two 3x3 branches -> Concat -> MaxPool -> strided 3x3, all blocked: one ToBlocked, one FromBlocked
    x, wa, wb, wc = r(2, 32, 10, 10), r(16, 32, 3, 3), r(32, 32, 3, 3), r(16, 48, 3, 3)
    m = model([helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
               helper.make_node("Conv", ["x", "wb"], ["b"], pads=[1, 1, 1, 1]),
               helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
               helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
               helper.make_node("Conv", ["p", "wc"], ["y"], pads=[0, 1, 0, 1], strides=[2, 2])],
              [("x", [2, 32, 10, 10])], {"wa": wa, "wb": wb, "wc": wc}, [2, 16, 2, 3])
    p_ref = maxpool(np.concatenate([conv(x, wa, None, 1, (1, 1)), conv(x, wb, None, 1, (1, 1))], axis=1), 3, 2, 1)
    ref = conv(np.pad(p_ref, ((0, 0), (0, 0), (0, 0), (1, 1))), wc, None, 2)
    out.append(("concat_pool_chain", m, {"x": x}, [ref], 7, 5))
    # an intermediate that is also a graph output gets its FromBlocked; 5x5 stride 2 on 7x7
    x, w1, w2 = r(1, 16, 7, 7), r(16, 16, 5, 5), r(32, 16, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w1"], ["mid"], pads=[2, 2, 2, 2], strides=[2, 2]),
               helper.make_node("Conv", ["mid", "w2"], ["y"], pads=[1, 1, 1, 1])],
              [("x", [1, 16, 7, 7])], {"w1": w1, "w2": w2}, [1, 32, 4, 4], extra_outputs=[("mid", [1, 16, 4, 4])])
    mid = conv(x, w1, None, 2, (2, 2))
    out.append(("output_in_chain", m, {"x": x}, [conv(mid, w2, None, 1, (1, 1)), mid], 5, 2))
    # an image's first conv (1, 3 or 15 channels, read in NCHW) -> MaxPool -> conv: the image conv
    # joins the chain through the pool; no ToBlocked at all
    for c, k, st, pad, hw in ((3, 7, 2, 3, (23, 17)), (1, 3, 2, 0, (15, 16)), (15, 5, 1, 2, (9, 11))):
        x, w1, b1, w2 = r(2, c, *hw), r(16, c, k, k), r(16), r(32, 16, 3, 3)
        m = model([helper.make_node("Conv", ["x", "w1", "b1"], ["t"], pads=[pad] * 4, strides=[st, st]),
                   helper.make_node("Relu", ["t"], ["a"]),
                   helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                   helper.make_node("Conv", ["p", "w2"], ["y"], pads=[1, 1, 1, 1])],
                  [("x", [2, c] + list(hw))], {"w1": w1, "b1": b1, "w2": w2}, None)
        ref = conv(maxpool(relu(conv(x, w1, b1, st, (pad, pad))), 3, 2, 1), w2, None, 1, (1, 1))
        m.graph.output[0].type.tensor_type.shape.Clear()
        for d in ref.shape:
            m.graph.output[0].type.tensor_type.shape.dim.add().dim_value = d
        out.append((f"image_conv_c{c}_k{k}_s{st}", m, {"x": x}, [ref], 4, 3))
    # an image conv whose result leaves the chain (a graph output) stays in NCHW
    x, w = r(1, 3, 12, 10), r(32, 3, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", [1, 3, 12, 10])], {"w": w}, [1, 32, 12, 10])
    out.append(("image_conv_alone_stays", m, {"x": x}, [conv(x, w, None, 1, (1, 1))], 1, 0))
    # left alone: 24 output channels (not a whole block), a lone 1x1, a grouped conv
    x, w = r(1, 16, 6, 6), r(24, 16, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", [1, 16, 6, 6])], {"w": w}, [1, 24, 6, 6])
    out.append(("channels_24_stay", m, {"x": x}, [conv(x, w, None, 1, (1, 1))], 1, 0))
    x, w = r(1, 32, 5, 5), r(16, 32, 1, 1)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"])], [("x", [1, 32, 5, 5])], {"w": w}, [1, 16, 5, 5])
    out.append(("lone_pointwise_stays", m, {"x": x}, [conv(x, w)], 1, 0))
    x, w = r(1, 32, 6, 6), r(32, 16, 3, 3)
    m = model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=2)], [("x", [1, 32, 6, 6])], {"w": w},
              [1, 32, 6, 6])
    out.append(("grouped_stays", m, {"x": x}, [conv(x, w, None, 1, (1, 1), 2)], 1, 0))
    return out


def fold_transpose_cases(rng):
    """fold_transpose: (name, model, feeds, [y], nodes left, rewrites)."""
    mk = helper.make_node
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = []
    # name, A's shape, perm_a, B's shape, perm_b, perm_out (None: no Transpose there)
    for name, sa, pa, sb, pb, po in [
            ("rank2_a_t_7x33x130", (33, 7), (1, 0), (33, 130), None, None),
            ("rank4_b_batch_t", (5, 3, 17, 9), None, (3, 5, 9, 17), (1, 0, 2, 3), None),
            ("rank4_out_t", (2, 3, 7, 8), None, (2, 3, 8, 5), None, (0, 2, 1, 3)),
            ("rank4_batch_swap_all", (3, 2, 4, 6), (1, 0, 2, 3), (3, 2, 6, 5), (1, 0, 2, 3), (3, 1, 0, 2))]:
        a, b = r(*sa), r(*sb)
        nodes, an, bn = [], "a", "b"
        at, bt = a.astype(np.float64), b.astype(np.float64)
        if pa:
            nodes.append(mk("Transpose", ["a"], ["at"], perm=list(pa)))
            an, at = "at", at.transpose(pa)
        if pb:
            nodes.append(mk("Transpose", ["b"], ["bt"], perm=list(pb)))
            bn, bt = "bt", bt.transpose(pb)
        y = at @ bt
        nodes.append(mk("MatMul", [an, bn], ["p" if po else "y"]))
        if po:
            nodes.append(mk("Transpose", ["p"], ["y"], perm=list(po)))
            y = y.transpose(po)
        m = model(nodes, [("a", list(sa)), ("b", list(sb))], {}, list(y.shape))
        out.append((name, m, {"a": a, "b": b}, [y], 1, 1))
    # must not fold: no Transpose; batch dims that broadcast (A [1, 4, 5] against B [3, 5, 2])
    a, b = r(4, 6), r(6, 3)
    m = model([mk("MatMul", ["a", "b"], ["y"])], [("a", [4, 6]), ("b", [6, 3])], {}, [4, 3])
    out.append(("plain_matmul_not_folded", m, {"a": a, "b": b}, [a.astype(np.float64) @ b], 1, 0))
    a, b = r(1, 4, 5), r(3, 2, 5)
    m = model([mk("Transpose", ["b"], ["bt"], perm=[0, 2, 1]), mk("MatMul", ["a", "bt"], ["y"])],
              [("a", [1, 4, 5]), ("b", [3, 2, 5])], {}, [3, 4, 2])
    out.append(("broadcast_batch_not_folded", m, {"a": a, "b": b}, [a.astype(np.float64) @ b.transpose(0, 2, 1)], 2, 0))
    # B^T (its columns not unit-stride) stays a Transpose feeding the shared GEMM
    a, b = r(3, 5, 17), r(3, 9, 17)
    m = model([mk("Transpose", ["b"], ["bt"], perm=[0, 2, 1]), mk("MatMul", ["a", "bt"], ["y"])],
              [("a", [3, 5, 17]), ("b", [3, 9, 17])], {}, [3, 5, 9])
    out.append(("b_transposed_not_folded", m, {"a": a, "b": b}, [a.astype(np.float64) @ b.transpose(0, 2, 1)], 2, 0))
    # the attention pattern fuse_attention leaves alone (scale not constant): both MatMuls fold
    m, feeds, y, n = attention_model(rng, 3, 2, 7, 7, 8, 8, scale=("div", 2.0))
    m.graph.initializer.pop()
    m.graph.input.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, []))
    out.append(("attention_variable_scale_folded", m, {**feeds, "c": np.array(2.0, np.float32)}, [y], n - 3, 2))
    return out


def elementwise_cases(rng):
    """fuse_elementwise: (name, model, feeds, refs, nodes left, rewrites)."""
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    f = lambda v: np.array(v, np.float32)  # noqa: E731
    d = lambda a: a.astype(np.float64)  # noqa: E731
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    mk = helper.make_node
    out = []
    # SiLU x * sigmoid(x), a DAG over x, odd sizes; 2 x 40000 is split across threads
    for shape in [(1,), (7,), (17, 3), (3, 1031), (2, 40000)]:
        x = r(*shape)
        m = model([mk("Sigmoid", ["x"], ["s"]), mk("Mul", ["x", "s"], ["y"])], [("x", list(shape))], {}, list(shape))
        out.append((f"silu_{'x'.join(map(str, shape))}", m, {"x": x}, [d(x) * sig(d(x))], 1, 1))
    # mish x * tanh(softplus(x)), rank 4: Softplus feeding Tanh stays apart (two transcendental ops
    # in series run slower in one loop); sigmoid(x) * tanh(x) side by side fuses
    x = r(2, 3, 7, 5)
    m = model([mk("Softplus", ["x"], ["p"]), mk("Tanh", ["p"], ["t"]), mk("Mul", ["t", "x"], ["y"])],
              [("x", [2, 3, 7, 5])], {}, [2, 3, 7, 5])
    out.append(("mish", m, {"x": x}, [d(x) * np.tanh(np.log1p(np.exp(d(x))))], 2, 1))
    m = model([mk("Sigmoid", ["x"], ["p"]), mk("Tanh", ["x"], ["t"]), mk("Mul", ["t", "p"], ["y"])],
              [("x", [2, 3, 7, 5])], {}, [2, 3, 7, 5])
    out.append(("sigmoid_times_tanh", m, {"x": x}, [sig(d(x)) * np.tanh(d(x))], 1, 1))
    # broadcasting: per-row and per-column inputs, a scalar graph input, a scalar and a [1] constant
    x, row, col, s = r(17, 33), r(17, 1), r(33), r()
    nodes = [mk("Mul", ["x", "row"], ["a"]), mk("Add", ["col", "a"], ["b"]), mk("Sub", ["b", "s"], ["c"]),
             mk("Mul", ["c", "half"], ["e"]), mk("Div", ["e", "three"], ["g"]), mk("Tanh", ["g"], ["h"]),
             mk("Max", ["h", "lo"], ["k"]), mk("Min", ["k", "hi"], ["y"])]
    m = model(nodes, [("x", [17, 33]), ("row", [17, 1]), ("col", [33]), ("s", [])],
              {"half": f(0.5), "three": f([3]), "lo": f(-0.25), "hi": f(0.5)}, [17, 33])
    ref = np.clip(np.tanh(((d(x) * row + col - s) * 0.5) / 3), -0.25, 0.5)
    out.append(("broadcast_chain", m, {"x": x, "row": row, "col": col, "s": s}, [ref], 1, 1))
    # the result widened only by a [1, 1] constant: kept as an input so the output stays [1, 9]
    x = r(9)
    m = model([mk("Add", ["x", "c"], ["a"]), mk("Relu", ["a"], ["y"])], [("x", [9])], {"c": f([[0.25]])}, [1, 9])
    out.append(("constant_widens", m, {"x": x}, [np.maximum(d(x) + 0.25, 0).reshape(1, 9)], 1, 1))
    # an intermediate read twice inside the group; Pow by a constant; a DAG with two roots' worth
    x, z = r(5, 1, 7), r(3, 7)
    nodes = [mk("Add", ["x", "z"], ["t"]), mk("Relu", ["t"], ["u"]), mk("Sigmoid", ["t"], ["v"]),
             mk("Mul", ["u", "v"], ["w"]), mk("Pow", ["w", "two"], ["y"])]
    m = model(nodes, [("x", [5, 1, 7]), ("z", [3, 7])], {"two": f(2)}, [5, 3, 7])
    t = d(x) + z
    out.append(("shared_inside_dag", m, {"x": x, "z": z}, [(np.maximum(t, 0) * sig(t)) ** 2], 1, 1))
    # an intermediate that is also a graph output stays: Mul alone, Exp + Add fused
    x = r(4, 6)
    nodes = [mk("Mul", ["x", "x"], ["t"]), mk("Exp", ["t"], ["u"]), mk("Add", ["u", "one"], ["y"])]
    m = model(nodes, [("x", [4, 6])], {"one": f(1)}, [4, 6], extra_outputs=[("t", [4, 6])])
    out.append(("output_intermediate_kept", m, {"x": x}, [np.exp(d(x) ** 2) + 1, d(x) ** 2], 2, 1))
    # a smaller intermediate (two [7] vectors) is not recomputed per element: Mul stays
    x, p, q = r(6, 7), r(7), r(7)
    m = model([mk("Mul", ["p", "q"], ["a"]), mk("Add", ["x", "a"], ["y"])], [("x", [6, 7]), ("p", [7]), ("q", [7])],
              {}, [6, 7])
    out.append(("small_intermediate_kept", m, {"x": x, "p": p, "q": q}, [d(x) + d(p) * q], 2, 0))
    # left alone: LeakyRelu (an attribute) splits the chain; a MatMul between; variadic Max of 3
    x, w = r(3, 8), r(8, 8)
    nodes = [mk("Mul", ["x", "x"], ["a"]), mk("LeakyRelu", ["a"], ["b"], alpha=0.1), mk("MatMul", ["b", "w"], ["c"]),
             mk("Max", ["c", "x", "b"], ["y"])]
    m = model(nodes, [("x", [3, 8]), ("w", [8, 8])], {}, [3, 8])
    a = d(x) ** 2
    b = np.where(a < 0, 0.1 * a, a)
    out.append(("not_elementwise_left", m, {"x": x, "w": w}, [np.maximum(np.maximum(b @ w, x), b)], 4, 0))
    # left alone: int32 tensors
    ai, bi = rng.integers(-50, 50, (5, 3)).astype(np.int32), rng.integers(-50, 50, (5, 3)).astype(np.int32)
    g = helper.make_graph([mk("Add", ["a", "b"], ["t"]), mk("Mul", ["t", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info(n, TensorProto.INT32, [5, 3]) for n in "ab"],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [5, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    out.append(("int32_left", m, {"a": ai, "b": bi}, [((ai + bi) * bi).astype(np.int32)], 2, 0))
    return out


def check_case(kiln, work, pass_name, name, m, feeds, refs, nodes_after, rewrites=None):
    d = os.path.join(work, f"{pass_name}_{name}")
    os.makedirs(os.path.join(d, "in"))
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    names = [i.name for i in m.graph.input]
    for k, n in enumerate(names):
        with open(os.path.join(d, "in", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(feeds[n], n).SerializeToString())
    r = run([kiln, "bench", path, "--inputs", os.path.join(d, "in"), "--iters", "1", "--warmup", "0",
             "--time-passes", "--json"])
    if r.returncode != 0:
        failures.append(f"{name}: kiln bench failed: {r.stderr.strip()}")
        return
    rec = [p for p in json.loads(r.stdout)["passes"] if p["name"] == pass_name]
    if not rec or rec[0]["nodes_after"] != nodes_after:
        left = rec[0]["nodes_after"] if rec else "?"
        failures.append(f"{name}: {pass_name} left {left} nodes, expected {nodes_after}")
    if rec and rewrites is not None and rec[0]["rewrites"] != rewrites:
        failures.append(f"{name}: {pass_name} made {rec[0]['rewrites']} rewrites, expected {rewrites}")
    for label, extra in (("fused", []), ("unfused", [f"--disable-pass={pass_name}"])):
        out = os.path.join(d, label)
        r = run([kiln, "run", path, "--inputs", os.path.join(d, "in"), "--output-dir", out, "--threads", "2"] + extra)
        if r.returncode != 0:
            failures.append(f"{name} {label}: kiln run failed: {r.stderr.strip()}")
            continue
        for k, ref in enumerate(refs):
            got = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, f"output_{k}.pb")))
            if got.shape != ref.shape or not np.allclose(got, ref, rtol=RTOL, atol=ATOL):
                err = np.max(np.abs(got - ref)) if got.shape == ref.shape else f"shape {got.shape}"
                failures.append(f"{name} {label}: output {k} differs from numpy (max abs err {err})")
    print(f"{'ok  ' if not any(f.startswith(name) for f in failures) else 'FAIL'} {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--jobs", type=int, default=2, help="cases checked at once")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    jobs = []  # (pass, check_case's arguments after kiln and work)
    for name, m, feeds, ref, nodes in linear_cases(rng):
        jobs.append(("fuse_linear", (name, m, feeds, [ref], nodes)))
        # pack_weights repacks the constant W of every kiln.FusedGemm: one per case here
        packed = 0 if name.startswith("variable_weight") else 1
        jobs.append(("pack_weights", (name, m, feeds, [ref], nodes, packed)))
    jobs += [("fuse_conv", c) for c in conv_cases(rng)]
    jobs += [("fuse_norm", c) for c in norm_cases(rng)]
    jobs += attention_cases(rng)
    jobs += [("block_layout", c) for c in block_cases(rng)]
    jobs += [("fuse_elementwise", c) for c in elementwise_cases(rng)]
    with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(lambda j: check_case(args.kiln, work, j[0], *j[1]), jobs))
    for f in failures:
        print("FAIL", f)
    print(f"fusion: {len(failures)} failures")
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
