#!/usr/bin/python3
"""check_fusion.py --kiln KILN - the fusion passes, before and after, on small models with odd
sizes: for each pattern, `kiln bench --time-passes --json` says how many nodes the pass left (the
whole chain becomes one node, or, for patterns it must not touch, nothing changes), and `kiln run`
with the pass and with --disable-pass=PASS must both match numpy (float64, computed here)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RTOL, ATOL = 1e-4, 1e-4
failures = []


def model(nodes, inputs, inits, out_shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(v, n) for n, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def relu(x):
    return np.maximum(x, 0)


def cases(rng):
    """(name, model, feeds, expected y, nodes left by fuse_linear)."""
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    out = []
    for M, K, N in [(1, 5, 3), (7, 17, 33), (13, 64, 100), (128, 256, 31)]:
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


def check_case(kiln, work, name, m, feeds, ref, nodes_after):
    d = os.path.join(work, name)
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
    rec = [p for p in json.loads(r.stdout)["passes"] if p["name"] == "fuse_linear"]
    if not rec or rec[0]["nodes_after"] != nodes_after:
        failures.append(f"{name}: fuse_linear left {rec[0]['nodes_after'] if rec else '?'} nodes, expected {nodes_after}")
    for label, extra in (("fused", []), ("unfused", ["--disable-pass=fuse_linear"])):
        out = os.path.join(d, label)
        r = run([kiln, "run", path, "--inputs", os.path.join(d, "in"), "--output-dir", out, "--threads", "2"] + extra)
        if r.returncode != 0:
            failures.append(f"{name} {label}: kiln run failed: {r.stderr.strip()}")
            continue
        got = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=RTOL, atol=ATOL):
            err = np.max(np.abs(got - ref)) if got.shape == ref.shape else f"shape {got.shape}"
            failures.append(f"{name} {label}: differs from numpy (max abs err {err})")
    print(f"{'ok  ' if not any(f.startswith(name) for f in failures) else 'FAIL'} {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as work:
        for c in cases(rng):
            check_case(args.kiln, work, *c)
    for f in failures:
        print("FAIL", f)
    print(f"fusion: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
