#!/usr/bin/env python3
"""check_random.py - kiln's random ops cannot reproduce numpy's generator, so instead of values this
checks what must hold: shape and dtype (against ONNX's conformance cases for Bernoulli), the value
range, and the distribution's moments on large samples (bounds at about 7 standard errors, so a
correct generator fails with negligible probability), plus seed determinism."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(path, node, inputs, out_type, out_shape):
    g = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", out_type, out_shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    m.ir_version = 8
    onnx.save(m, path)


def run(kiln, model_path, inputs, d):
    """Runs kiln; returns output 0 as a numpy array."""
    out = tempfile.mkdtemp(dir=d)
    args = [kiln, "run", model_path, "--output-dir", out]
    for name, arr in inputs.items():
        p = os.path.join(out, name + ".npy")
        np.save(p, arr)
        args += ["--input", f"{name}={p}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"kiln failed ({r.returncode}): {r.stderr.strip()}")
    t = onnx.TensorProto()
    with open(os.path.join(out, "output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def within(name, value, lo, hi, problems):
    if not (lo <= value <= hi):
        problems.append(f"{name} = {value:.5f}, expected in [{lo}, {hi}]")


def check_generators(kiln, d, problems):
    n = 200000
    p = os.path.join(d, "uniform.onnx")
    model(p, helper.make_node("RandomUniform", [], ["y"], low=-1.0, high=5.0, shape=[n], seed=7.0), [],
          TensorProto.FLOAT, [n])
    u = run(kiln, p, {}, d)
    if u.dtype != np.float32 or u.shape != (n,):
        problems.append(f"RandomUniform gave {u.dtype} {u.shape}")
    within("uniform min", float(u.min()), -1.0, 5.0, problems)
    if u.max() >= 5.0:
        problems.append("uniform reached its upper bound")
    within("uniform mean", float(u.mean()), 2.0 - 0.03, 2.0 + 0.03, problems)
    within("uniform std", float(u.std()), 1.7321 - 0.02, 1.7321 + 0.02, problems)
    if not np.array_equal(u, run(kiln, p, {}, d)):
        problems.append("RandomUniform with a seed differs between runs")

    p = os.path.join(d, "normal.onnx")
    model(p, helper.make_node("RandomNormal", [], ["y"], mean=2.0, scale=3.0, shape=[n]), [],
          TensorProto.FLOAT, [n])
    z = run(kiln, p, {}, d)
    within("normal mean", float(z.mean()), 2.0 - 0.05, 2.0 + 0.05, problems)
    within("normal std", float(z.std()), 3.0 - 0.05, 3.0 + 0.05, problems)
    if np.array_equal(z, run(kiln, p, {}, d)):
        problems.append("RandomNormal without a seed gave the same values twice")

    p = os.path.join(d, "bernoulli.onnx")
    model(p, helper.make_node("Bernoulli", ["x"], ["y"]),
          [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [n])], TensorProto.DOUBLE, [n])
    probs = np.where(np.arange(n) % 2 == 0, 0.1, 0.7)
    b = run(kiln, p, {"x": probs}, d)
    if not np.all((b == 0) | (b == 1)):
        problems.append("Bernoulli gave values other than 0 and 1")
    within("bernoulli mean at p=0.1", float(b[0::2].mean()), 0.1 - 0.006, 0.1 + 0.006, problems)
    within("bernoulli mean at p=0.7", float(b[1::2].mean()), 0.7 - 0.008, 0.7 + 0.008, problems)


def check_conformance(kiln, cases, d, problems):
    """The Bernoulli conformance cases: same shape and dtype as expected, values 0 or 1."""
    count = 0
    for name in sorted(os.listdir(cases)):
        if not name.startswith("test_bernoulli"):
            continue
        case = os.path.join(cases, name)
        out = tempfile.mkdtemp(dir=d)
        r = subprocess.run([kiln, "run", os.path.join(case, "model.onnx"), "--inputs",
                            os.path.join(case, "test_data_set_0"), "--output-dir", out],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            problems.append(f"{name}: kiln failed: {r.stderr.strip()}")
            continue
        got, want = onnx.TensorProto(), onnx.TensorProto()
        with open(os.path.join(out, "output_0.pb"), "rb") as f:
            got.ParseFromString(f.read())
        with open(os.path.join(case, "test_data_set_0", "output_0.pb"), "rb") as f:
            want.ParseFromString(f.read())
        g, w = numpy_helper.to_array(got), numpy_helper.to_array(want)
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"{name}: got {g.dtype}{list(g.shape)}, expected {w.dtype}{list(w.shape)}")
        elif not np.all((g == 0) | (g == 1)):
            problems.append(f"{name}: values other than 0 and 1")
        count += 1
    if count != 6:
        problems.append(f"found {count} Bernoulli conformance cases, expected 6")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--cases", required=True, help="the conformance suite's node/ folder")
    args = ap.parse_args()
    problems = []
    with tempfile.TemporaryDirectory() as d:
        check_generators(args.kiln, d, problems)
        check_conformance(args.kiln, args.cases, d, problems)
    for p in problems:
        print("FAIL:", p)
    print("random: " + ("ok" if not problems else f"{len(problems)} problems"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
