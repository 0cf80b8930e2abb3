#!/usr/bin/python3
"""check_roundtrip.py - the .kir text format and ONNX export, judged by onnx.checker.

For each model M, in a scratch folder of its own:
  kiln export M -o r1/m.kir; kiln export r1/m.kir -o r2/m.kir: the two .kir files (and their
  .safetensors weights, when written) must be byte-identical;
  kiln export r1/m.kir -o c.onnx: onnx.checker.check_model(full_check=True) must accept it, with
  the node count and op histogram of M;
  kiln export M -o d.onnx: the checker must accept it too."""
import filecmp
import os
import shutil
import sys
import tempfile

import onnx

import kilntest as kt


def export(kiln, src, dst, fails):
    rc, _, err = kt.run_kiln(kiln, ["export", src, "-o", dst])
    if rc != 0:
        fails.append(f"kiln export {os.path.basename(src)} -o {os.path.basename(dst)} exited {rc}: "
                     f"{err.strip()[:400]}")
        return False
    if not os.path.isfile(dst):
        fails.append(f"kiln export exited 0 but wrote no {os.path.basename(dst)}")
        return False
    return True


def same_files(dir_a, dir_b, fails):
    """Every file in dir_a exists in dir_b with the same bytes, and no others."""
    names_a, names_b = sorted(os.listdir(dir_a)), sorted(os.listdir(dir_b))
    if names_a != names_b:
        fails.append(f".kir round trip wrote {names_a}, then {names_b}")
        return
    for name in names_a:
        if not filecmp.cmp(os.path.join(dir_a, name), os.path.join(dir_b, name), shallow=False):
            fails.append(f"{name} differs after a second .kir round trip")


def checked(path, what, fails):
    """Loads path and runs the full ONNX checker; the model, or None after a failure."""
    try:
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        return m
    except Exception as e:  # the checker raises several exception types
        fails.append(f"{what}: onnx.checker rejects it: {str(e).strip()[:400]}")
        return None


def check(item):
    label, path, kiln, work = item
    fails = []
    tmp = tempfile.mkdtemp(dir=work)
    try:
        r1, r2 = os.path.join(tmp, "r1"), os.path.join(tmp, "r2")
        os.mkdir(r1)
        os.mkdir(r2)
        a, b = os.path.join(r1, "m.kir"), os.path.join(r2, "m.kir")
        c, d = os.path.join(tmp, "c.onnx"), os.path.join(tmp, "d.onnx")
        original = onnx.load(path, load_external_data=False).graph
        if export(kiln, path, a, fails) and export(kiln, a, b, fails):
            same_files(r1, r2, fails)
        if os.path.isfile(a) and export(kiln, a, c, fails):
            m = checked(c, ".kir -> onnx", fails)
            if m is not None:
                if len(m.graph.node) != len(original.node):
                    fails.append(f".kir -> onnx has {len(m.graph.node)} nodes, the original "
                                 f"{len(original.node)}")
                elif kt.op_histogram(m.graph) != kt.op_histogram(original):
                    fails.append(f".kir -> onnx ops {kt.op_histogram(m.graph)}, the original "
                                 f"{kt.op_histogram(original)}")
        if export(kiln, path, d, fails):
            checked(d, "onnx -> onnx", fails)
    finally:
        shutil.rmtree(tmp)
    return label, fails


def main():
    args = kt.arg_parser(__doc__).parse_args()
    work = kt.work_dir(args)
    items = [(label, path, args.kiln, work) for label, path in kt.targets(args)]
    return kt.report(kt.parallel_map(check, items, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
