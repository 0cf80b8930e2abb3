#!/usr/bin/python3
"""check_bench.py --kiln KILN --models DIR - `kiln bench`: its JSON report (keys, orderings that
must hold, FLOP counts recomputed here from the ONNX file), the Chrome trace, --time-passes,
--ablate, a model that runs in stages, and its errors."""
import json
import os
import subprocess
import sys
import tempfile

import onnx
from onnx import TensorProto, helper

KEYS = ["compile_ms", "min_ms", "median_ms", "p90_ms", "max_ms", "mean_ms", "peak_rss_bytes",
        "arena_bytes", "threads", "iters", "warmup"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL {what}")


def bench(kiln, args, expect_rc=0):
    r = subprocess.run([kiln, "bench", *args], capture_output=True, text=True, timeout=600)
    check(r.returncode == expect_rc, f"kiln bench {' '.join(args)}: exit {r.returncode}, want {expect_rc}: "
                                     f"{r.stderr.strip()[:300]}")
    return r


def gemm_flops(model_path):
    """2*M*N*K for each Gemm node, from the ONNX file's own shapes (onnx's shape inference)."""
    m = onnx.shape_inference.infer_shapes(onnx.load(model_path))
    shapes = {}
    for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    out = {}
    for n in m.graph.node:
        if n.op_type == "Gemm":
            trans_a = next((a.i for a in n.attribute if a.name == "transA"), 0)
            a, y = shapes[n.input[0]], shapes[n.output[0]]
            out[n.name] = 2 * y[0] * y[1] * (a[0] if trans_a else a[1])
    return out


def check_json_report(kiln, models, work):
    mlp = os.path.join(models, "mlp")
    trace = os.path.join(work, "trace.json")
    r = bench(kiln, [os.path.join(mlp, "model.onnx"), "--inputs", os.path.join(mlp, "test_data_set_0"),
                     "--json", "--warmup", "3", "--iters", "25", "--threads", "2", "--profile", trace,
                     "--time-passes", "--ablate"])
    rep = json.loads(r.stdout)
    for k in KEYS:
        check(k in rep, f"json: key {k} missing")
    check(rep["iters"] == 25 and rep["warmup"] == 3 and rep["threads"] == 2, "json: iters/warmup/threads as given")
    check(0 < rep["min_ms"] <= rep["median_ms"] <= rep["p90_ms"] <= rep["max_ms"], "json: min <= median <= p90 <= max")
    check(rep["min_ms"] <= rep["mean_ms"] <= rep["max_ms"], "json: mean inside [min, max]")
    check(rep["compile_ms"] > 0 and rep["first_run_ms"] >= rep["compile_ms"], "json: compile_ms > 0, first run after it")
    check(rep["rss_bytes"] > 0 and rep["peak_rss_bytes"] > rep["weight_bytes"] > 0,
          "json: RSS measured, the peak above the model's weights (they are resident)")
    check(rep["arena_bytes"] > 0 and not rep["staged"], "json: arena bytes of a compiled model")
    ks = rep["kernels"]
    check(len(ks) == rep["nodes"] and len(ks) > 0, "json: one kernel record per compiled node")
    check(any(k["fused"] == "Gemm+Relu" for k in ks), "json: fused kernels list their ops")
    check(all(k["ms_per_run"] >= 0 and k["min_ms"] >= 0 for k in ks), "json: kernel times not negative")
    want = gemm_flops(os.path.join(mlp, "model.onnx"))
    got = {k["name"]: k["flops"] for k in ks if k["op"] in ("Gemm", "FusedGemm")}  # fuse_linear keeps the name
    check(want and got == want, f"json: Gemm FLOPs {got} != 2*M*N*K from the ONNX file {want}")
    passes = rep["passes"]
    check(len(passes) > 0 and all(p["nodes_before"] >= 0 and p["nodes_after"] >= 0 for p in passes),
          "json: --time-passes records")
    abl = rep["ablation"]
    check([a["disabled"] for a in abl] == [p["name"] for p in passes], "json: --ablate: one row per pass that ran")
    check(all(a["median_ms"] > 0 for a in abl), "json: ablation medians")
    with open(trace) as f:
        tr = json.load(f)
    ev = tr["traceEvents"]
    check(len(ev) == min(25 * len(ks), 20 * len(ks)), f"trace: {len(ev)} events for 25 runs of {len(ks)} kernels")
    check(all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in ev), "trace: complete events, times >= 0")
    check(all(ev[i]["ts"] <= ev[i + 1]["ts"] for i in range(len(ev) - 1)), "trace: events in time order")
    print(f"ok   json report: median {rep['median_ms']:.4f} ms, {len(ks)} kernels, {len(abl)} ablation rows")


def check_text_and_staged(kiln, models, work):
    r = bench(kiln, [os.path.join(models, "mnist_cnn", "model.onnx"), "--iters", "5", "--warmup", "1", "--kernels"])
    check("median" in r.stdout and "Conv" in r.stdout, "text report shows latency and kernels")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)
    staged = helper.make_model(helper.make_graph([helper.make_node("NonZero", ["x"], ["y"])], "g", [x], [y]),
                               opset_imports=[helper.make_opsetid("", 13)])
    path = os.path.join(work, "nonzero.onnx")
    onnx.save(staged, path)
    r = bench(kiln, [path, "--iters", "5", "--json", "--kernels"])
    rep = json.loads(r.stdout) if r.returncode == 0 else {}
    check(rep.get("staged") is True and rep.get("kernels") == [] and rep.get("median_ms", 0) > 0,
          "staged model: timed, no kernel table")
    print("ok   text report and staged model")


def check_errors(kiln, work):
    for args, rc in [(["/nonexistent/model.onnx"], 1), ([os.path.join(work, "nonzero.onnx"), "--iters", "0"], 2),
                     ([os.path.join(work, "nonzero.onnx"), "--bogus"], 2), ([], 2)]:
        r = bench(kiln, args, rc)
        lines = r.stderr.strip().splitlines()
        check(lines and lines[0].startswith("kiln"), f"{args}: message on stderr")
        check(r.stdout == "", f"{args}: nothing on stdout")
    print("ok   errors")


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", required=True, help="the bundled models (mlp, mnist_cnn)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        check_json_report(a.kiln, a.models, work)
        check_text_and_staged(a.kiln, a.models, work)
        check_errors(a.kiln, work)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
