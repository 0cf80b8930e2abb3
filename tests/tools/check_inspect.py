#!/usr/bin/python3
"""check_inspect.py - `kiln inspect --json` against python-onnx's reading of the same file: node
counts, op histogram, inputs and outputs, opsets, IR version, producer, parameter counts."""
import sys

import onnx

import kilntest as kt


def declared_shape(tp):
    """The shape kiln should report for a graph input as declared: ints, dim_param names, "?"
    for dims with neither, None for no shape."""
    if tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in tp.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        else:
            dims.append(d.dim_param if d.dim_param else "?")
    return dims


def check_values(kind, got, want, fails, with_shape):
    if [v.get("name") for v in got] != [v.name for v in want]:
        fails.append(f"{kind} names {[v.get('name') for v in got]} != onnx {[v.name for v in want]}")
        return
    for g, w in zip(got, want):
        try:
            t = kt.parse_kir_type(g["type"])
        except (KeyError, ValueError) as e:
            fails.append(f"{kind} '{w.name}': unreadable type {g.get('type')!r} ({e})")
            continue
        want_desc = kt.onnx_type_desc(w.type)
        if t.desc() != want_desc or (t.kind == "tensor" and g.get("dtype") != t.dtype):
            fails.append(f"{kind} '{w.name}': type {g.get('type')} (dtype {g.get('dtype')}), "
                         f"onnx declares {want_desc}")
        elif with_shape and t.kind == "tensor":
            want_shape = declared_shape(w.type)
            got_shape = g.get("shape")
            # an unnamed dim may be reported as "?" or given a fresh symbolic name
            same = (got_shape == want_shape or (
                want_shape is not None and got_shape is not None and len(got_shape) == len(want_shape)
                and all(a == b or (b == "?" and isinstance(a, str)) for a, b in zip(got_shape, want_shape))))
            if not same:
                fails.append(f"{kind} '{w.name}': shape {got_shape}, onnx declares {want_shape}")


def param_totals(graph):
    """(elements, bytes) of the top-level initializers; bytes None when a dtype has no fixed size."""
    count, nbytes = 0, 0
    for t in graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        count += n
        bits = kt.DTYPE_BITS.get(t.data_type)
        if bits is None or nbytes is None:
            nbytes = None
        else:
            nbytes += (n * bits + 7) // 8
    return count, nbytes


def subgraph_nodes(graph):
    """Nodes inside the graph attributes of graph's nodes, at any depth."""
    total = 0
    for n in graph.node:
        for a in n.attribute:
            subs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
            for sub in subs:
                total += len(sub.node) + subgraph_nodes(sub)
    return total


def check(item):
    label, path, kiln = item
    got, err = kt.inspect_json(kiln, path)
    if err:
        return label, [err]
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    fails = []
    if got.get("node_count") != len(g.node):
        fails.append(f"node_count {got.get('node_count')} != onnx {len(g.node)}")
    if got.get("subgraph_node_count") != subgraph_nodes(g):
        fails.append(f"subgraph_node_count {got.get('subgraph_node_count')} != onnx {subgraph_nodes(g)}")
    want_hist = kt.op_histogram(g)
    if got.get("op_histogram") != want_hist:
        fails.append(f"op_histogram {got.get('op_histogram')} != onnx {want_hist}")
    inits = {t.name for t in g.initializer}
    check_values("input", got.get("inputs", []), [v for v in g.input if v.name not in inits],
                 fails, with_shape=True)
    check_values("output", got.get("outputs", []), list(g.output), fails, with_shape=False)
    want_opsets = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    if got.get("opsets") != want_opsets:
        fails.append(f"opsets {got.get('opsets')} != onnx {want_opsets}")
    for key in ("ir_version", "producer_name", "producer_version"):
        if got.get(key) != getattr(m, key):
            fails.append(f"{key} {got.get(key)!r} != onnx {getattr(m, key)!r}")
    count, nbytes = param_totals(g)
    if not g.sparse_initializer:
        if got.get("param_count") != count:
            fails.append(f"param_count {got.get('param_count')} != onnx {count}")
        if nbytes is not None and got.get("param_bytes") != nbytes:
            fails.append(f"param_bytes {got.get('param_bytes')} != onnx {nbytes}")
    return label, fails


def main():
    args = kt.arg_parser(__doc__).parse_args()
    items = [(label, path, args.kiln) for label, path in kt.targets(args)]
    return kt.report(kt.parallel_map(check, items, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
