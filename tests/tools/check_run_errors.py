#!/usr/bin/env python3
"""check_run_errors.py - `kiln run` and `kiln check` on bad inputs: each case must exit with the
expected code (1 for bad data, 2 for bad usage), print one line on stderr that says what is wrong,
never die from a signal, and never leave a partial output file."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kilntest import save_model


def save_tensor(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def make_fixtures(d):
    """Models and tensor files the cases use."""
    f = {}
    f["relu"] = os.path.join(d, "relu.onnx")
    save_model(f["relu"], [helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    f["gather"] = os.path.join(d, "gather.onnx")
    save_model(f["gather"], [helper.make_node("Gather", ["data", "idx"], ["y"])],
               [helper.make_tensor_value_info("data", TensorProto.FLOAT, [4]),
                helper.make_tensor_value_info("idx", TensorProto.INT64, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    f["unsupported"] = os.path.join(d, "unsupported.onnx")  # Gradient: kiln has no kernel for it
    add = helper.make_node("Add", ["a", "b"], ["c"])
    grad = helper.make_node("Gradient", ["a", "b"], ["da", "db"], domain="ai.onnx.preview.training",
                            xs=["a", "b"], y="c")
    graph = helper.make_graph([add, grad], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "ab"],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in ("c", "da", "db")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("ai.onnx.preview.training", 1)])
    model.ir_version = 8
    onnx.save(model, f["unsupported"])
    f["weighted"] = os.path.join(d, "weighted.onnx")  # x + W, W a 6-element initializer (24 bytes)
    save_model(f["weighted"], [helper.make_node("Add", ["x", "W"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
               [numpy_helper.from_array(np.ones((2, 3), dtype=np.float32), "W")])
    f["x_ok"] = os.path.join(d, "x_ok.pb")
    save_tensor(f["x_ok"], np.arange(6, dtype=np.float32).reshape(2, 3) - 2)
    f["x_int"] = os.path.join(d, "x_int.pb")
    save_tensor(f["x_int"], np.arange(6, dtype=np.int64).reshape(2, 3))
    f["x_shape"] = os.path.join(d, "x_shape.pb")
    save_tensor(f["x_shape"], np.zeros((3, 2), dtype=np.float32))
    f["x_junk"] = os.path.join(d, "x_junk.pb")
    with open(f["x_junk"], "wb") as fh:
        fh.write(bytes(range(7, 250, 3)) * 5)
    f["data"] = os.path.join(d, "data.pb")
    save_tensor(f["data"], np.array([1, 2, 3, 4], dtype=np.float32))
    f["idx_bad"] = os.path.join(d, "idx_bad.pb")
    save_tensor(f["idx_bad"], np.array([1, 7], dtype=np.int64))
    f["data3"] = os.path.join(d, "data3.pb")
    save_tensor(f["data3"], np.array([1, 2, 3], dtype=np.float32))
    f["a_file"] = os.path.join(d, "not_a_dir")
    with open(f["a_file"], "w") as fh:
        fh.write("x")
    f["empty_dir"] = os.path.join(d, "empty_case")
    os.makedirs(f["empty_dir"], exist_ok=True)
    save_model(os.path.join(f["empty_dir"], "model.onnx"), [helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    f["two_relus"] = os.path.join(d, "two_relus.onnx")
    save_model(f["two_relus"], [helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    # an output whose shape comes from input data (red team: 3 GB allocated despite the limits)
    f["cos"] = os.path.join(d, "cos.onnx")
    save_model(f["cos"], [helper.make_node("ConstantOfShape", ["s"], ["y"])],
               [helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    f["cos_shape"] = os.path.join(d, "cos_shape.pb")
    save_tensor(f["cos_shape"], np.array([1 << 20, 1 << 20], dtype=np.int64))
    # a case folder whose data set is a symlink out of it (red team: kiln check read it)
    f["escape_case"] = os.path.join(d, "escape_case")
    os.makedirs(f["escape_case"])
    save_model(os.path.join(f["escape_case"], "model.onnx"), [helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    outside = os.path.join(d, "elsewhere_set")  # (names starting "out" are output folders here)
    os.makedirs(outside)
    save_tensor(os.path.join(outside, "input_0.pb"), np.zeros((2, 3), np.float32))
    save_tensor(os.path.join(outside, "output_0.pb"), np.zeros((2, 3), np.float32))
    os.symlink(outside, os.path.join(f["escape_case"], "test_data_set_0"))
    # models named like the files export/compile write beside their output (red team: these got
    # overwritten by kiln's own output)
    for name in ("side.safetensors", "side.onnx.data", "side.o", "hdr.onnx"):
        f[name] = os.path.join(d, name)
        with open(f["relu"], "rb") as src, open(f[name], "wb") as dst:
            dst.write(src.read())
    return f


# (name, argv after `kiln`, expected exit code, text the message must contain)
def cases(f, d):
    out = os.path.join(d, "out")
    return [
        ("missing input file", ["run", f["relu"], "--input", "x=" + os.path.join(d, "nope.pb")], 1, "nope.pb"),
        ("no input given", ["run", f["relu"]], 1, "input x"),
        ("wrong dtype", ["run", f["relu"], "--input", "x=" + f["x_int"]], 1, "expected dtype f32, got i64"),
        ("wrong shape", ["run", f["relu"], "--input", "x=" + f["x_shape"]], 1, "dim 0 must be 2, got 3"),
        ("corrupt tensor file", ["run", f["relu"], "--input", "x=" + f["x_junk"]], 1, "x_junk.pb"),
        ("unknown input name", ["run", f["relu"], "--input", "z=" + f["x_ok"]], 1, "no input of that name"),
        ("output dir is a file", ["run", f["relu"], "--input", "x=" + f["x_ok"], "--output-dir", f["a_file"]], 1,
         "not_a_dir"),
        ("index out of range at run time", ["run", f["gather"], "--input", "data=" + f["data"], "--input",
                                             "idx=" + f["idx_bad"], "--output-dir", out + "_gather"], 1, "Gather"),
        ("unsupported op", ["run", f["unsupported"], "--input", "a=" + f["data3"], "--input", "b=" + f["data3"]], 1,
         "Gradient (opset 1) with inputs (f32,f32) is not supported"),
        ("bad thread count", ["run", f["relu"], "--threads", "0"], 2, "--threads"),
        ("bad opt level", ["run", f["relu"], "-O7"], 2, "-O7"),
        ("check without data sets", ["check", f["empty_dir"]], 1, "test_data_set"),
        ("check: data set symlinked out of the case", ["check", f["escape_case"]], 1, "outside"),
        ("check bad tolerance", ["check", f["empty_dir"], "--rtol", "abc"], 2, "--rtol"),
        # Resource limits (--max-*), each command: a clear error, no output.
        ("file over --max-file-bytes", ["run", f["gather"], "--max-file-bytes", "16"], 1, "exceed the file limit of 16"),
        ("weights over --max-weight-bytes", ["inspect", f["weighted"], "--max-weight-bytes", "16"], 1,
         "exceed the weight limit of 16 bytes"),
        ("tensor over --max-tensor-elems", ["run", f["relu"], "--input", "x=" + f["x_ok"], "--max-tensor-elems", "5",
                                           "--output-dir", out + "_limit"], 1, "more than 5 elements"),
        ("export over --max-file-bytes", ["export", f["relu"], "-o", os.path.join(out + "_export", "m.kir"),
                                          "--max-file-bytes", "10"], 1, "exceed the file limit of 10"),
        ("compile over --max-file-bytes", ["compile", f["relu"], "-o", os.path.join(out + "_compile", "m.o"),
                                           "--max-file-bytes", "10"], 1, "exceed the file limit of 10"),
        ("nodes over --max-nodes", ["inspect", f["two_relus"], "--max-nodes", "1"], 1, "more than 1 nodes"),
        ("bad limit value", ["inspect", f["relu"], "--max-graph-depth", "-3"], 2, "--max-"),
        # An output that is an input: refused before anything is written (the inputs are compared
        # byte for byte after all cases).
        ("export .kir over its own input", ["export", f["side.safetensors"], "-o", os.path.join(d, "side.kir")], 1,
         "would overwrite the input"),
        ("export .onnx.data over its own input", ["export", f["side.onnx.data"], "-o", os.path.join(d, "side.onnx"),
                                                 "--external-data"], 1, "would overwrite the input"),
        ("compile -o over its own input", ["compile", f["side.o"], "-o", f["side.o"]], 1, "would overwrite the input"),
        ("compile --header over its input", ["compile", f["hdr.onnx"], "-o", os.path.join(out + "_compile", "h.o"),
                                             "--header", f["hdr.onnx"]], 1, "would overwrite the input"),
        ("compile --weights over its input", ["compile", f["hdr.onnx"], "-o", os.path.join(out + "_compile", "w.o"),
                                              "--weights", f["hdr.onnx"]], 1, "would overwrite the input"),
        ("compile header == object", ["compile", f["relu"], "-o", os.path.join(out + "_compile", "same.o"),
                                      "--header", os.path.join(out + "_compile", "same.o")], 1, "written twice"),
        ("data-shaped output over --max-arena-bytes", ["run", f["cos"], "--input", "s=" + f["cos_shape"],
                                                       "--max-arena-bytes", "1M", "--output-dir", out + "_cos"], 1,
         "memory limit"),
        ("data-shaped output of 2^42 bytes, default limit", ["run", f["cos"], "--input", "s=" + f["cos_shape"]], 1,
         "memory limit"),
        ("arena over --max-arena-bytes", ["run", f["relu"], "--input", "x=" + f["x_ok"], "--max-arena-bytes", "1",
                                          "--output-dir", out + "_arena"], 1, "(--max-arena-bytes)"),
    ]


def main():
    ap = argparse.ArgumentParser()
    # (out_export and out_compile exist so that a failed command leaving files there is caught)
    ap.add_argument("--kiln", required=True)
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        f = make_fixtures(d)
        for sub in ("out_export", "out_compile"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        before = {n: open(f[n], "rb").read() for n in ("side.safetensors", "side.onnx.data", "side.o", "hdr.onnx")}
        for name, argv, want_rc, want_text in cases(f, d):
            p = subprocess.run([args.kiln] + argv, capture_output=True, text=True, timeout=300)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            problems = []
            if p.returncode < 0:
                problems.append(f"killed by signal {-p.returncode}")
            elif p.returncode != want_rc:
                problems.append(f"exit {p.returncode}, expected {want_rc}")
            if want_text not in p.stderr:
                problems.append(f"stderr lacks {want_text!r}")
            if want_rc == 1 and len(lines) != 1:
                problems.append(f"{len(lines)} lines on stderr, expected 1")
            for sub in (n for n in os.listdir(d) if n.startswith("out")):
                left = os.listdir(os.path.join(d, sub))
                if left:
                    problems.append(f"a failed run left {left} in {sub}")
            status = "ok" if not problems else "FAIL: " + "; ".join(problems)
            print(f"{name}: {status}" + ("" if not problems else f"\n    stderr: {p.stderr.strip()[:400]}"))
            failed += bool(problems)
        for n, data in before.items():
            if open(f[n], "rb").read() != data:
                print(f"input {n} was modified by a failed command: FAIL")
                failed += 1
    print(f"run_errors: {len(cases(f, '/x')) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
