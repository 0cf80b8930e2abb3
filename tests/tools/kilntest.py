# kilntest.py - shared by the test scripts: finding models and conformance cases, running kiln,
# describing ONNX types the way `kiln inspect --json` does, and counting results.
import argparse
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import sys
from concurrent.futures import ProcessPoolExecutor

# ONNX TensorProto.DataType code -> the dtype name kiln prints (ir/dtypes.def).
DTYPE_NAMES = {
    1: "f32", 2: "u8", 3: "i8", 4: "u16", 5: "i16", 6: "i32", 7: "i64", 8: "string", 9: "bool",
    10: "f16", 11: "f64", 12: "u32", 13: "u64", 14: "c64", 15: "c128", 16: "bf16",
    17: "f8e4m3fn", 18: "f8e4m3fnuz", 19: "f8e5m2", 20: "f8e5m2fnuz", 21: "u4", 22: "i4",
}
# Bits per element, for the bytes of a tensor; strings have no fixed size.
DTYPE_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32,
              13: 64, 14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4}

SKIP = 77  # ctest SKIP_RETURN_CODE


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--kiln", required=True, help="the kiln executable")
    p.add_argument("--models", action="append", default=[],
                   help="a folder of MODEL/model.onnx (+ test_data_set_0); repeatable")
    p.add_argument("--cases", help="generated conformance cases (holds node/ and simple/)")
    p.add_argument("--skip-models", action="append", default=[],
                   help="model names to leave out (already covered elsewhere)")
    p.add_argument("--require-models", action="store_true",
                   help="exit 77 (skipped) when no --models folder exists")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", help="scratch folder (default: a temporary one)")
    p.add_argument("--every", type=int, default=1,
                   help="take every Nth conformance case only (sanitizer builds, where each run is slow)")
    return p


def glue_option_values(argv, names):
    """Rewrites '--opt -O0' into '--opt=-O0' for each option in names: argparse takes a value that
    starts with '-' for another option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in names and i + 1 < len(argv):
            out.append(argv[i] + "=" + argv[i + 1])
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def find_models(folders, skip=()):
    """(label, model.onnx path) for every MODEL/model.onnx in folders."""
    found = []
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name, "model.onnx")
            if name not in skip and os.path.isfile(path):
                found.append(("model/" + name, path))
    return found


def find_cases(root):
    """(label, model.onnx path) for every conformance case under root/node and root/simple."""
    found = []
    for kind in ("node", "simple"):
        folder = os.path.join(root, kind)
        if not os.path.isdir(folder):
            sys.exit(f"no conformance cases in {folder}: run tests/onnx/generate.sh")
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name, "model.onnx")
            if os.path.isfile(path):
                found.append((f"{kind}/{name}", path))
    return found


def targets(args):
    """Models and cases the command line asks for; exits 77 when --require-models finds none."""
    if args.require_models and not any(os.path.isdir(f) for f in args.models):
        print(f"SKIP: model folder {', '.join(args.models) or '(none)'} is absent "
              "(set -DKILN_MODELS_DIR=... to run these tests)")
        sys.exit(SKIP)
    found = find_models(args.models, set(args.skip_models))
    if args.cases:
        found += find_cases(args.cases)[::max(1, args.every)]
    if not found:
        sys.exit("no models or cases found")
    return found


def work_dir(args):
    """The scratch folder: --work (created), or a temporary one removed at exit."""
    if args.work:
        os.makedirs(args.work, exist_ok=True)
        return args.work
    path = tempfile.mkdtemp(prefix="kiln-test-")
    atexit.register(shutil.rmtree, path, True)
    return path


def run_kiln(kiln, argv, timeout=300, cwd=None):
    """Runs kiln with argv; returns (returncode, stdout, stderr)."""
    try:
        r = subprocess.run([kiln, *argv], capture_output=True, text=True, errors="replace",
                           timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -999, "", f"timed out after {timeout} s"
    return r.returncode, r.stdout, r.stderr


def inspect_json(kiln, path, extra=()):
    """`kiln inspect --json path`: (summary dict, None) or (None, error text)."""
    rc, out, err = run_kiln(kiln, ["inspect", "--json", *extra, path])
    if rc != 0:
        return None, f"kiln inspect exited {rc}: {err.strip()[:500]}"
    try:
        return json.loads(out), None
    except json.JSONDecodeError as e:
        return None, f"kiln inspect printed invalid JSON ({e}): {out[:200]!r}"


def onnx_type_desc(tp):
    """An ONNX TypeProto as kiln's kind/dtype nesting, shapes left out: "f32", "seq<f32>",
    "opt<seq<i64>>", "map<i64,f32>"."""
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return DTYPE_NAMES.get(tp.tensor_type.elem_type, "?")
    if which == "sparse_tensor_type":
        return "sparse " + DTYPE_NAMES.get(tp.sparse_tensor_type.elem_type, "?")
    if which == "sequence_type":
        return f"seq<{onnx_type_desc(tp.sequence_type.elem_type)}>"
    if which == "optional_type":
        return f"opt<{onnx_type_desc(tp.optional_type.elem_type)}>"
    if which == "map_type":
        key = DTYPE_NAMES.get(tp.map_type.key_type, "?")
        return f"map<{key},{onnx_type_desc(tp.map_type.value_type)}>"
    return "?"


class KirType:
    """A parsed kiln type string ("f32[1,?,n]", "seq<f32[*]>", "opt<...>", "map<i64,f32[]>").
    kind: tensor/sparse/seq/opt/map/none; dims: list of int or str (unknown/symbolic), or None
    for an unknown rank."""

    def __init__(self, kind, dtype=None, dims=None, elem=None, key=None):
        self.kind, self.dtype, self.dims, self.elem, self.key = kind, dtype, dims, elem, key

    def desc(self):
        """The same nesting as onnx_type_desc, without shapes."""
        if self.kind in ("tensor", "sparse"):
            return ("sparse " if self.kind == "sparse" else "") + self.dtype
        if self.kind == "map":
            return f"map<{self.key},{self.elem.desc() if self.elem else '?'}>"
        if self.kind in ("seq", "opt"):
            return f"{self.kind}<{self.elem.desc() if self.elem else '?'}>"
        return "?"


def parse_kir_type(text):
    t, rest = _parse_type(text.strip())
    if rest:
        raise ValueError(f"trailing text in type {text!r}")
    return t


def _parse_type(s):
    for kind in ("seq", "opt"):
        if s.startswith(kind + "<"):
            elem, rest = _parse_type(s[len(kind) + 1:])
            return KirType(kind, elem=elem), _expect(rest, ">")
    if s.startswith("map<"):
        key, rest = s[4:].split(",", 1)
        elem, rest = _parse_type(rest)
        return KirType("map", key=key, elem=elem), _expect(rest, ">")
    if s.startswith("?"):
        return KirType("none"), s[1:]
    kind = "tensor"
    if s.startswith("sparse "):
        kind, s = "sparse", s[7:]
    open_at = s.index("[")
    close_at = s.index("]", open_at)
    dtype, body, rest = s[:open_at], s[open_at + 1:close_at], s[close_at + 1:]
    if body == "*":
        dims = None
    else:
        dims = [int(d) if d.lstrip("-").isdigit() else d for d in body.split(",")] if body else []
    return KirType(kind, dtype=dtype, dims=dims), rest


def _expect(s, token):
    if not s.startswith(token):
        raise ValueError(f"expected {token!r} at {s!r}")
    return s[len(token):]


def op_histogram(graph):
    """Counter of op types as kiln names them: op_type, or "domain.op_type" outside ai.onnx."""
    hist = {}
    for n in graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        hist[key] = hist.get(key, 0) + 1
    return hist


def save_model(path, nodes, inputs, outputs, inits=()):
    """A one-graph ONNX model (opset 13, IR 8) from helper-made nodes and value infos, for tests that
    build their own small cases."""
    import onnx
    from onnx import helper
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def parallel_map(fn, items, jobs):
    """fn over items in a pool of jobs processes, results in order."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items, chunksize=4))


def report(results, max_shown=60):
    """results: (label, [failure messages]). Prints failures and 'N passed, N failed'; returns
    the exit code."""
    failed = [(label, msgs) for label, msgs in results if msgs]
    for label, msgs in failed[:max_shown]:
        for m in msgs:
            print(f"FAIL {label}: {m}")
    if len(failed) > max_shown:
        print(f"... and {len(failed) - max_shown} more failing cases")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
