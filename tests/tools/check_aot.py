#!/usr/bin/python3
"""check_aot.py - ahead-of-time builds (`kiln compile`) against the JIT (`kiln run`) and the
exporter's reference outputs.

For every MODEL/model.onnx with a test_data_set_0 under --models:
  - `kiln compile --exe` builds a standalone program; its outputs must equal the JIT's bit for bit
    (same passes, kernels and plan), and the reference within --rtol/--atol; `ldd` on it shows no
    LLVM or protobuf.
For each --variants model, the other artifacts, linked by hand with tests/aot_consumer/main.c:
  .o + libkiln_rt.a, .so + libkiln_rt.so, .a, a separate --weights file (and the errors when it is
  missing or belongs to another model), and --cpu x86-64-v2 (within tolerance: other instructions).
With --arm-runtime DIR (libkiln_rt built for aarch64): each --arm-models model is cross-compiled
with --target aarch64-linux-gnu --exe and run under qemu-aarch64-static; outputs within rtol 1e-4
of the host JIT's."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

from kilntest import save_model

HERE = os.path.dirname(os.path.abspath(__file__))
CONSUMER = os.path.join(HERE, "..", "aot_consumer", "main.c")
INCLUDE = os.path.join(HERE, "..", "..", "include")
ARM_SYSROOT = "/usr/aarch64-linux-gnu"
failures = []


def run(cmd, env=None, expect_ok=True, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if expect_ok and p.returncode != 0:
        raise RuntimeError("%s -> exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def outputs(folder, n):
    return [numpy_helper.to_array(onnx.load_tensor(os.path.join(folder, "output_%d.pb" % i))) for i in range(n)]


def n_outputs(model):
    return len(onnx.load(model, load_external_data=False).graph.output)


def compare(label, got, want, exact, rtol=0.0, atol=0.0):
    for i, (g, w) in enumerate(zip(got, want)):
        if g.dtype != w.dtype or g.shape != w.shape:
            failures.append("%s: output %d is %s%s, expected %s%s" % (label, i, g.dtype, g.shape, w.dtype, w.shape))
        elif exact and not np.array_equal(g, w, equal_nan=True):
            diff = np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))
            failures.append("%s: output %d differs from the JIT's (max abs %g); the same code must give the same bits" % (label, i, diff))
        elif not exact and not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
            diff = np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))
            failures.append("%s: output %d off by max abs %g (rtol %g, atol %g)" % (label, i, diff, rtol, atol))
    if len(got) != len(want):
        failures.append("%s: %d outputs, expected %d" % (label, len(got), len(want)))


def check_no_llvm(label, prog):
    libs = run(["ldd", prog]).stdout
    for bad in ("LLVM", "protobuf", "libkiln.so"):
        if bad in libs:
            failures.append("%s: %s links %s:\n%s" % (label, prog, bad, libs))


def jit_outputs(args, model, data, work):
    out = os.path.join(work, "jit")
    run([args.kiln, "run", model, "--inputs", data, "--output-dir", out])
    return outputs(out, n_outputs(model))


def check_exe(args, name, model, data, work, jit):
    prog, out = os.path.join(work, "prog"), os.path.join(work, "aot")
    run([args.kiln, "compile", model, "--exe", "-o", prog])
    run([prog, "--inputs", data, "--output-dir", out])
    n = n_outputs(model)
    compare(name + " --exe", outputs(out, n), jit, exact=True)
    compare(name + " --exe vs reference", outputs(out, n), outputs(data, n), exact=False, rtol=args.rtol, atol=args.atol)
    check_no_llvm(name, prog)


def consumer(args, work, tag, link):
    """Builds tests/aot_consumer/main.c against model.h in work with the given link arguments."""
    prog = os.path.join(work, "consumer_" + tag)
    run(["cc", "-std=c17", "-O1", "-I" + work, "-I" + INCLUDE, CONSUMER, "-o", prog] + link + ["-fopenmp", "-lm"])
    return prog


def run_consumer(prog, data, n_in, out, extra=(), env=None, expect_ok=True):
    os.makedirs(out, exist_ok=True)
    ins = [os.path.join(data, "input_%d.pb" % i) for i in range(n_in)]
    return run([prog] + list(extra) + ins + [out], env=env, expect_ok=expect_ok)


def check_variants(args, name, model, data, work, jit):
    rt, n = args.runtime, n_outputs(model)
    n_in = len([i for i in onnx.load(model, load_external_data=False).graph.input])
    kiln = [args.kiln, "compile", model, "--name", "model"]
    cases = {
        "object": (["-o", os.path.join(work, "model.o")], [os.path.join(work, "model.o"), os.path.join(rt, "libkiln_rt.a")]),
        "archive": (["-o", os.path.join(work, "model.a")], [os.path.join(work, "model.a"), os.path.join(rt, "libkiln_rt.a")]),
        "shared": (["-o", os.path.join(work, "libmodel.so"), "--header", os.path.join(work, "model.h")],
                   ["-L" + work, "-lmodel", "-L" + rt, "-lkiln_rt"]),
    }
    env = dict(os.environ, LD_LIBRARY_PATH=work + ":" + rt)
    for tag, (flags, link) in cases.items():
        run(kiln + flags)
        prog = consumer(args, work, tag, link)
        out = os.path.join(work, "out_" + tag)
        run_consumer(prog, data, n_in, out, env=env)
        compare("%s %s" % (name, tag), outputs(out, n), jit, exact=True)
    # Weights in a separate file: same bits; missing or foreign weights fail clearly.
    weights = os.path.join(work, "model.weights")
    run(kiln + ["-o", os.path.join(work, "model.o"), "--weights", weights])
    prog = consumer(args, work, "weights", [os.path.join(work, "model.o"), os.path.join(rt, "libkiln_rt.a")])
    run_consumer(prog, data, n_in, os.path.join(work, "out_weights"), extra=["--weights", weights])
    compare(name + " --weights", outputs(os.path.join(work, "out_weights"), n), jit, exact=True)
    p = run_consumer(prog, data, n_in, os.path.join(work, "out_none"), expect_ok=False)
    if p.returncode != 1 or "weights" not in p.stderr:
        failures.append("%s: create without its weights file: exit %d, %r" % (name, p.returncode, p.stderr))
    if args.foreign_weights:
        p = run_consumer(prog, data, n_in, os.path.join(work, "out_foreign"), extra=["--weights", args.foreign_weights],
                         expect_ok=False)
        if p.returncode != 1 or "weights" not in p.stderr:
            failures.append("%s: another model's weights file: exit %d, %r" % (name, p.returncode, p.stderr))
    args.foreign_weights = weights
    # An older CPU: other instructions (no AVX-512, no FMA), so close rather than equal.
    prog = os.path.join(work, "prog_v2")
    run([args.kiln, "compile", model, "--exe", "-o", prog, "--cpu", "x86-64-v2"])
    run([prog, "--inputs", data, "--output-dir", os.path.join(work, "out_v2")])
    compare(name + " --cpu x86-64-v2", outputs(os.path.join(work, "out_v2"), n), jit, exact=False, rtol=1e-4, atol=1e-5)


def check_arm(args, name, model, data, work, jit):
    prog = os.path.join(work, "prog_arm")
    run([args.kiln, "compile", model, "--exe", "-o", prog, "--target", "aarch64-linux-gnu", "--runtime", args.arm_runtime])
    out = os.path.join(work, "out_arm")
    run(["qemu-aarch64-static", "-L", ARM_SYSROOT, prog, "--inputs", data, "--output-dir", out], timeout=1200)
    compare(name + " aarch64 under qemu", outputs(out, n_outputs(model)), jit, exact=False, rtol=1e-4, atol=1e-5)


def check_errors(args, work):
    """`kiln compile` on what it must refuse: exit code, one clear line, no file left behind."""
    from onnx import TensorProto, helper
    d = os.path.join(work, "errors")
    os.makedirs(d)
    f32 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    relu = os.path.join(d, "relu.onnx")
    save_model(relu, [helper.make_node("Relu", ["x"], ["y"])], [f32("x", [2, 3])], [f32("y", [2, 3])])
    symbolic = os.path.join(d, "symbolic.onnx")
    save_model(symbolic, [helper.make_node("Relu", ["x"], ["y"])], [f32("x", ["n", 3])], [f32("y", ["n", 3])])
    nonzero = os.path.join(d, "nonzero.onnx")
    save_model(nonzero, [helper.make_node("NonZero", ["x"], ["y"])], [f32("x", [4])],
               [helper.make_tensor_value_info("y", TensorProto.INT64, [1, None])])
    reshape = os.path.join(d, "reshape.onnx")
    save_model(reshape, [helper.make_node("Reshape", ["x", "s"], ["y"])],
               [f32("x", [2, 3]), helper.make_tensor_value_info("s", TensorProto.INT64, [2])], [f32("y", [None, None])])
    out = os.path.join(d, "out")
    os.makedirs(out)
    cases = [  # (args, exit code, words the message must hold)
        ([relu, "-o", os.path.join(out, "m.txt")], 2, "use .o, .so or .a"),
        ([relu, "-o", os.path.join(out, "m.o"), "--name", "1x"], 2, "not a C identifier"),
        ([relu], 2, "no output"),
        ([os.path.join(d, "missing.onnx"), "-o", os.path.join(out, "m.o")], 1, "missing.onnx"),
        ([relu, "-o", os.path.join(out, "m.o"), "--target", "nosucharch-linux-gnu"], 1, "no LLVM target"),
        ([relu, "--exe", "-o", os.path.join(out, "p"), "--target", "aarch64-linux-gnu"], 1, "--runtime"),
        ([relu, "-o", os.path.join(d, "no", "such", "m.o")], 1, "m.o"),
        ([symbolic, "-o", os.path.join(out, "m.o")], 1, "give its shape"),
        ([nonzero, "-o", os.path.join(out, "m.o")], 1, "NonZero): its output shape depends on values known only at run time"),
        ([reshape, "-o", os.path.join(out, "m.o")], 1, "Reshape): its output shape depends on values known only at run time"),
        ([relu, "-o", os.path.join(out, "m.so"), "--cc", "no-such-linker"], 1, "no-such-linker"),
        # LLVM only warns about unknown names, then aborts while generating code (red team)
        ([relu, "-o", os.path.join(out, "m.o"), "--cpu", "no-such-cpu"], 1, "not a recognized processor"),
        ([relu, "-o", os.path.join(out, "m.o"), "--features", "+no-such-feature"], 1, "not a recognized feature"),
        # the linker's complaint is quoted in kiln's one line, not printed around it
        ([relu, "--exe", "-o", os.path.join(out, "p"), "--runtime", os.path.join(d, "no-runtime")], 1, "cannot find"),
    ]
    for argv, code, words in cases:
        p = run([args.kiln, "compile"] + argv, expect_ok=False)
        lines = p.stderr.strip().splitlines()
        label = "kiln compile " + " ".join(os.path.basename(a) for a in argv)
        if p.returncode != code or not lines or words not in p.stderr or (code == 1 and len(lines) != 1):
            failures.append("%s: exit %d (want %d), stderr %r (want one line with %r)" % (label, p.returncode, code, p.stderr[-500:], words))
        if os.listdir(out):
            failures.append("%s: left %s behind" % (label, os.listdir(out)))
            for name in os.listdir(out):
                os.remove(os.path.join(out, name))
    # A symbolic dim is fine with --shape.
    run([args.kiln, "compile", symbolic, "-o", os.path.join(d, "sym.o"), "--shape", "x=5,3"])
    print("%-20s %s" % ("errors", "FAIL" if any(f.startswith("kiln compile") for f in failures) else "ok"), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--runtime", required=True, help="folder with libkiln_rt.a/.so for the host")
    p.add_argument("--models", action="append", default=[])
    p.add_argument("--variants", action="append", default=[], help="models to build every artifact kind of")
    p.add_argument("--arm-runtime", help="folder with libkiln_rt.a and libkiln_rt_main.a for aarch64")
    p.add_argument("--arm-models", action="append", default=[])
    p.add_argument("--skip-models", action="append", default=[], help="model names to leave out")
    p.add_argument("--require-models", action="store_true")
    p.add_argument("--errors", action="store_true", help="also check what kiln compile must refuse")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    args = p.parse_args()
    args.foreign_weights = None
    models = []
    for folder in args.models:
        if os.path.isdir(folder):
            models += [(n, os.path.join(folder, n)) for n in sorted(os.listdir(folder))
                       if os.path.isfile(os.path.join(folder, n, "model.onnx")) and n not in args.skip_models]
    if not models:
        print("no models found")
        return 77 if args.require_models else 1
    work = tempfile.mkdtemp(prefix="kiln-aot-")
    try:
        if args.errors:
            check_errors(args, work)
        for name, d in models:
            model, data = os.path.join(d, "model.onnx"), os.path.join(d, "test_data_set_0")
            w = os.path.join(work, name)
            os.makedirs(w)
            try:
                jit = jit_outputs(args, model, data, w)
                check_exe(args, name, model, data, w, jit)
                if name in args.variants:
                    check_variants(args, name, model, data, w, jit)
                if args.arm_runtime and name in args.arm_models:
                    check_arm(args, name, model, data, w, jit)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                failures.append("%s: %s" % (name, e))
            print("%-20s %s" % (name, "FAIL" if any(f.startswith(name) for f in failures) else "ok"), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("%d models, %d failures" % (len(models), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
