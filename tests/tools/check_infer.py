#!/usr/bin/python3
"""check_infer.py - kiln's shape inference against the outputs ONNX's reference computed.

Each model is copied with its output shapes and value_info removed (element types kept), so
kiln must infer every shape itself; then the types `kiln inspect --json` reports for the graph
outputs must equal those of test_data_set_0/output_K.pb (TensorProto, or SequenceProto /
OptionalProto). An unknown or symbolic dim passes only for cases listed in the allow-list
(--allow-unknown FILE: "case_name  reason" lines), which names the ops whose output shapes
depend on input values. A reason starting "declared:" marks a case whose model declares types
its own reference data contradicts; there only kinds and dtypes are compared. Models (--models)
get no allowance.

onnx 1.12 stores bfloat16 reference outputs as uint16 bit patterns (numpy has no bfloat16), so a
u16 reference for an output the model declares bf16 stands for bf16."""
import os
import shutil
import sys
import tempfile

import onnx

import kilntest as kt

UINT16, BFLOAT16 = onnx.TensorProto.UINT16, onnx.TensorProto.BFLOAT16


def load_allow_list(path):
    allowed = {}
    if not path:
        return allowed
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, reason = line.partition(" ")
                if not reason.strip():
                    sys.exit(f"{path}: case {name} has no reason")
                allowed[name] = reason.strip()
    return allowed


def strip_shapes(tp):
    """Drops every shape inside TypeProto tp, keeping kinds and element types."""
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        getattr(tp, which).ClearField("shape")
    elif which == "sequence_type":
        strip_shapes(tp.sequence_type.elem_type)
    elif which == "optional_type":
        strip_shapes(tp.optional_type.elem_type)
    elif which == "map_type":
        strip_shapes(tp.map_type.value_type)


def write_stripped(src, dst):
    m = onnx.load(src, load_external_data=False)
    for out in m.graph.output:
        strip_shapes(out.type)
    del m.graph.value_info[:]
    onnx.save(m, dst)
    return m


def read_reference(path, tp):
    """The reference value's type as a tree: ("tensor", dtype code, dims), ("seq", [elems]),
    ("opt", elem or None)."""
    which = tp.WhichOneof("value")
    with open(path, "rb") as f:
        data = f.read()
    if which == "sequence_type":
        seq = onnx.SequenceProto()
        seq.ParseFromString(data)
        return sequence_tree(seq)
    if which == "optional_type":
        opt = onnx.OptionalProto()
        opt.ParseFromString(data)
        return optional_tree(opt)
    t = onnx.TensorProto()
    t.ParseFromString(data)
    return ("tensor", t.data_type, list(t.dims))


def sequence_tree(seq):
    elems = [("tensor", t.data_type, list(t.dims)) for t in seq.tensor_values]
    elems += [sequence_tree(s) for s in seq.sequence_values]
    elems += [optional_tree(o) for o in seq.optional_values]
    return ("seq", elems)


def optional_tree(opt):
    if opt.HasField("tensor_value"):
        return ("opt", ("tensor", opt.tensor_value.data_type, list(opt.tensor_value.dims)))
    if opt.HasField("sequence_value"):
        return ("opt", sequence_tree(opt.sequence_value))
    if opt.HasField("optional_value"):
        return ("opt", optional_tree(opt.optional_value))
    return ("opt", None)


def compare(got, ref, where, mode, fails):
    """got: kilntest.KirType; ref: read_reference's tree; mode: "strict", "unknown" (unknown
    dims allowed) or "declared" (dims not compared)."""
    kind, allow_unknown = ref[0], mode != "strict"
    if kind == "tensor":
        _, code, dims = ref
        want = kt.DTYPE_NAMES.get(code, "?")
        if got.kind != "tensor" or got.dtype != want:
            fails.append(f"{where}: kiln says {got.desc()}, reference is {want}{dims}")
        elif mode == "declared":
            pass
        elif got.dims is None:
            if not allow_unknown:
                fails.append(f"{where}: kiln left the rank unknown, reference shape is {dims}")
        elif len(got.dims) != len(dims):
            fails.append(f"{where}: kiln shape {got.dims}, reference shape {dims}")
        else:
            for i, (g, w) in enumerate(zip(got.dims, dims)):
                if isinstance(g, int) and g != w:
                    fails.append(f"{where}: kiln shape {got.dims}, reference shape {dims}")
                    break
                if isinstance(g, str) and not allow_unknown:
                    fails.append(f"{where}: kiln dim {i} is '{g}', reference shape {dims}")
                    break
        return
    if got.kind != kind:
        fails.append(f"{where}: kiln says {got.desc()}, reference is a {kind}")
        return
    inner = ref[1] if kind == "seq" else ([ref[1]] if ref[1] is not None else [])
    for i, elem in enumerate(inner):
        if got.elem is None:
            fails.append(f"{where}: kiln gives no element type")
            return
        compare(got.elem, elem, f"{where}[{i}]", mode, fails)


def check(item):
    label, path, kiln, work, allowed = item
    name = os.path.basename(os.path.dirname(path))
    tmp = tempfile.mkdtemp(dir=work)
    try:
        stripped = os.path.join(tmp, "model.onnx")
        m = write_stripped(path, stripped)
        got, err = kt.inspect_json(kiln, stripped)
        if err:
            return label, [err]
    finally:
        shutil.rmtree(tmp)
    outs = got.get("outputs", [])
    if len(outs) != len(m.graph.output):
        return label, [f"kiln lists {len(outs)} outputs, the model has {len(m.graph.output)}"]
    data_dir = os.path.join(os.path.dirname(path), "test_data_set_0")
    fails = []
    mode = "strict"
    if not label.startswith("model/") and name in allowed:
        mode = "declared" if allowed[name].startswith("declared:") else "unknown"
    for k, (o, decl) in enumerate(zip(outs, m.graph.output)):
        ref_path = os.path.join(data_dir, f"output_{k}.pb")
        if not os.path.isfile(ref_path):
            fails.append(f"no reference {ref_path}")
            continue
        try:
            t = kt.parse_kir_type(o["type"])
        except (KeyError, ValueError) as e:
            fails.append(f"output '{decl.name}': unreadable type {o.get('type')!r} ({e})")
            continue
        ref = read_reference(ref_path, decl.type)
        if ref[:2] == ("tensor", UINT16) and decl.type.tensor_type.elem_type == BFLOAT16:
            ref = ("tensor", BFLOAT16, ref[2])
        compare(t, ref, f"output '{decl.name}'", mode, fails)
    return label, fails


def main():
    p = kt.arg_parser(__doc__)
    p.add_argument("--allow-unknown", help="cases allowed unknown dims, with reasons")
    args = p.parse_args()
    allowed = load_allow_list(args.allow_unknown)
    work = kt.work_dir(args)
    found = kt.targets(args)
    names = {os.path.basename(os.path.dirname(path)) for _, path in found}
    stale = sorted(set(allowed) - names) if args.cases and args.every <= 1 else []  # a sample misses some
    items = [(label, path, args.kiln, work, allowed) for label, path in found]
    results = kt.parallel_map(check, items, args.jobs)
    results += [(f"allow-list/{n}", ["listed in the allow-list but no such case"]) for n in stale]
    return kt.report(results)


if __name__ == "__main__":
    sys.exit(main())
