# check_vecmath.py - accuracy of kiln's inline f32 math (codegen/cg_vecmath.c) and Pow's constant
# exponent shortcuts: single-op ONNX models run with `kiln run -O3` over a sweep of the whole
# float range plus special values, compared with numpy in float64.
#   python3 check_vecmath.py --kiln build/kiln [--work DIR] [--opt -O3] [--verbose]
import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_REL = 4e-7    # relative error bound on results (normal floats)
MAX_ULP = 2.0     # or this many float32 ulps of the reference (denormal results)
ERF_ABS = 1e-7    # erf/tanh may instead be this close in absolute terms

# Results for these must match the reference exactly (NaN as NaN, the sign of zero included).
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=np.float32)
EDGES = np.array([1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38, -1.1754944e-38, 1e-30, -1e-30, 1e-7,
                  -1e-7, 1.0, -1.0, 3.4028235e38, -3.4028235e38, 1e30, -1e30, 88.72283, 88.72284,
                  -87.33654, -103.97208, -103.98, 3.92, 9.02, 0.625, -0.625, 0.5, -0.5], dtype=np.float32)


def sweep():
    """Dense in [-100, 100] and [-5, 5], every binade of the float range, tiny values, specials."""
    rng = np.random.default_rng(7)
    parts = [np.linspace(-100, 100, 200001, dtype=np.float32),
             np.linspace(-5, 5, 100001, dtype=np.float32),
             rng.integers(0, 0x7f800000, 100000, dtype=np.uint32).view(np.float32),  # all finite > 0
             -rng.integers(0, 0x7f800000, 100000, dtype=np.uint32).view(np.float32),
             np.float32(10) ** rng.uniform(-45, -3, 20000).astype(np.float32),
             EDGES, SPECIALS]
    return np.concatenate(parts).astype(np.float32)


def erf64(x):
    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


def gelu64(x):
    return x * 0.5 * (1 + erf64(x / math.sqrt(2)))


SELU_A, SELU_G = 1.67326319217681884765625, 1.05070102214813232421875

# name -> (node builder, float64 reference, bound kind)
#   kind "rel": MAX_REL / MAX_ULP; "abs": also ERF_ABS; "gelu": the graph's own f32 rounding
#   (1 + erf cancels for x << 0) allows 4e-7 |ref| + 6e-8 |x|.
def cases():
    one = lambda op, **a: [helper.make_node(op, ["X"], ["Y"], **a)]
    c = {
        "Exp": (one("Exp"), np.exp, "rel"),
        "Log": (one("Log"), np.log, "rel"),
        "Erf": (one("Erf"), erf64, "abs"),
        "Tanh": (one("Tanh"), np.tanh, "abs"),
        "Sigmoid": (one("Sigmoid"), lambda x: 1 / (1 + np.exp(-x)), "rel"),
        "Softplus": (one("Softplus"), lambda x: np.logaddexp(0, x), "rel"),
        "Elu": (one("Elu", alpha=0.7), lambda x: np.where(x < 0, 0.7 * np.expm1(x), x), "rel"),
        "Selu": (one("Selu"), lambda x: SELU_G * np.where(x <= 0, SELU_A * np.expm1(x), x), "rel"),
        "Gelu_pattern": ([helper.make_node("Div", ["X", "sqrt2"], ["a"]), helper.make_node("Erf", ["a"], ["b"]),
                          helper.make_node("Add", ["b", "one"], ["c"]), helper.make_node("Mul", ["X", "c"], ["d"]),
                          helper.make_node("Mul", ["d", "half"], ["Y"])], gelu64, "gelu"),
    }
    for e in (2.0, 3.0, 0.5, -1.0, -2.0, 7.0, 2.5):
        c[f"Pow_{e:g}"] = ([helper.make_node("Pow", ["X", "E"], ["Y"])], lambda x, e=e: np.power(x, e), ("pow", e))
    c["Pow_tensor"] = ([helper.make_node("Pow", ["X", "T"], ["Y"])], None, "tensor")
    return c


def make_model(nodes, kind, n, path):
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n])]
    inits = [numpy_helper.from_array(np.array(math.sqrt(2), np.float32), "sqrt2"),
             numpy_helper.from_array(np.array(1, np.float32), "one"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    if isinstance(kind, tuple):
        inits.append(numpy_helper.from_array(np.array(kind[1], np.float32), "E"))
    if kind == "tensor":
        inputs.append(helper.make_tensor_value_info("T", TensorProto.FLOAT, [n]))
    used = {i for nd in nodes for i in nd.input}
    inits = [t for t in inits if t.name in used]
    g = helper.make_graph(nodes, "vecmath", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def run_kiln(kiln, opt, model, feeds, folder):
    args = [kiln, "run", model, opt, "--output-dir", folder]
    for name, arr in feeds.items():
        p = os.path.join(folder, f"{name}.pb")
        onnx.save_tensor(numpy_helper.from_array(arr, name), p)
        args += ["--input", f"{name}={p}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"kiln run failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, "output_0.pb")))


def measure(x, got, ref, kind, specials_mask):
    """(max ulp, max rel over normal results, #bad, #special mismatches, worst input)."""
    ref32 = ref.astype(np.float32)
    got64 = got.astype(np.float64)
    same = (got == ref32) & (np.signbit(got) == np.signbit(ref32)) | (np.isnan(got) & np.isnan(ref32))
    spec_bad = int(np.count_nonzero(specials_mask & ~same))
    spec_bad += int(np.count_nonzero(np.isnan(ref32) != np.isnan(got)))
    spec_bad += int(np.count_nonzero(np.isinf(ref32) & (got != ref32)))
    fin = np.isfinite(ref32) & ~specials_mask
    err = np.abs(got64[fin] - ref[fin])
    ulp = err / np.spacing(np.abs(ref32[fin])).astype(np.float64)
    normal = np.abs(ref[fin]) >= 1.1754944e-38
    rel = np.where(normal, err / np.maximum(np.abs(ref[fin]), 1e-300), 0.0)
    ok = ((rel <= MAX_REL) | (ulp <= MAX_ULP)) & np.isfinite(got64[fin])
    if kind == "abs":
        ok |= err <= ERF_ABS
    if kind == "gelu":  # x * (1 + erf) may overflow in f32 where the f64 reference does not
        xf = np.abs(x[fin].astype(np.float64))
        ok |= (err <= 4e-7 * np.abs(ref[fin]) + 6e-8 * xf) | ((xf > 1.7e38) & np.isinf(got64[fin]))
    bad = int(np.count_nonzero(~ok))
    worst = x[fin][np.argmax(np.where(ok, ulp, np.inf))] if len(ulp) else 0
    fg = np.isfinite(got64[fin])  # overflowed Gelu-pattern results are judged above, not measured
    return (float(np.max(ulp[fg], initial=0)), float(np.max(rel[fg], initial=0)), bad, spec_bad, worst)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kiln", required=True)
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--opt", default="-O3", choices=["-O0", "-O1", "-O2", "-O3"])
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="kiln_vecmath_")
    os.makedirs(work, exist_ok=True)
    x = sweep()
    specials_mask = np.zeros(len(x), bool)
    specials_mask[-len(SPECIALS):] = True
    failed = 0
    print(f"{'op':14} {'n':>8} {'max ulp':>10} {'max rel':>10} {'bad':>5} {'special':>7}  worst input")
    for name, (nodes, ref_fn, kind) in cases().items():
        folder = os.path.join(work, name)
        os.makedirs(folder, exist_ok=True)
        model = os.path.join(folder, "model.onnx")
        make_model(nodes, kind, len(x), model)
        feeds = {"X": x}
        xs = x
        if kind == "tensor":  # positive bases with any exponent, negative bases with integer ones
            rng = np.random.default_rng(3)
            t = rng.uniform(-6, 6, len(x)).astype(np.float32)
            t = np.where(x < 0, np.round(t), t).astype(np.float32)
            feeds["T"] = t
            ref_fn = lambda v, t=t: np.power(v, t.astype(np.float64))
        with np.errstate(all="ignore"):
            got = run_kiln(args.kiln, args.opt, model, feeds, folder)
            ref = ref_fn(xs.astype(np.float64))
            mu, mr, bad, sbad, worst = measure(xs, got, ref, kind, specials_mask)
        status = "ok" if bad == 0 and sbad == 0 else "FAIL"
        failed += status != "ok"
        print(f"{name:14} {len(x):8d} {mu:10.3g} {mr:10.3g} {bad:5d} {sbad:7d}  {worst!r:>14}  {status}")
        if args.verbose and status != "ok":
            ref32 = ref.astype(np.float32)
            diff = np.nonzero(~((got == ref32) | (np.isnan(got) & np.isnan(ref32))) & specials_mask)[0]
            for i in diff[:10]:
                print(f"    special x={x[i]!r}: got {got[i]!r} want {ref32[i]!r}")
    print(f"{failed} op(s) failed" if failed else "all ops within bounds")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
