#!/usr/bin/python3
"""make_bad_models.py OUTDIR [MNIST_MODEL] - writes hostile model files, one folder per case,
and OUTDIR/cases.json describing what kiln must say about each.

Each case: {"name", "file" (relative to OUTDIR), "expect": [...], "ok": bool}. For a hostile
case (ok false) `kiln inspect FILE` must exit 1 with one stderr line "kiln: ..." naming the file
and containing every entry of expect; an entry "a|b" is satisfied by either substring (matched
without case, after the file's own path is removed from the message). Control cases (ok true)
are well-formed files built the same way, which kiln must accept: they show that each hostile
file fails for its defect and not for what it shares with its control."""
import json
import os
import random
import shutil
import struct
import sys

import numpy as np
from onnx import TensorProto, helper

OPSET = 13
CASES = []


def add_case(name, file, expect=(), ok=False, note=""):
    CASES.append({"name": name, "file": file, "expect": list(expect), "ok": ok, "note": note})


# ---- helpers ------------------------------------------------------------------------------------
def case_dir(out, name):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    return d


def write_bytes(out, name, filename, data):
    with open(os.path.join(case_dir(out, name), filename), "wb") as f:
        f.write(data)
    return f"{name}/{filename}"


def save_model(out, name, model, filename=None):
    return write_bytes(out, name, filename or f"{name}.onnx", model.SerializeToString())


def make_model(nodes, inputs, outputs, inits=(), opset=OPSET, ir_version=8, opsets=None):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, producer_name="kiln-tests",
                          opset_imports=opsets or [helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def tensor_info(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def add_model(w=None, x_shape=(4,), w_shape=(4,), w_dtype=TensorProto.FLOAT, **kw):
    """y = Add(x, w) with w an initializer (given, or a small f32 tensor)."""
    if w is None:
        w = helper.make_tensor("w", w_dtype, list(w_shape), np.arange(int(np.prod(w_shape))).tolist())
    return make_model([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                      [tensor_info("x", TensorProto.FLOAT, list(x_shape))],
                      [tensor_info("y", TensorProto.FLOAT, None)], [w], **kw)


def external_tensor(location, nbytes=16, dims=(4,)):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        e = t.external_data.add()
        e.key, e.value = key, value
    return t


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    """One protobuf field: wire 0 takes an int, wire 2 bytes."""
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def safetensors_bytes(tensors):
    """tensors: {key: float32 numpy array} -> a safetensors file."""
    header, data = {}, b""
    for key, arr in tensors.items():
        raw = arr.astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(arr.shape),
                       "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


KIR_TEMPLATE = """kir 1
ir_version 8
producer "kiln-tests" "1"
opset "" 13

graph "g" (%x: f32[4]) {
  %w = const f32[4] @"WEIGHTS"["w"]
  %y = Add(%x, %w) : f32[4]
  return %y
}
"""


def kir_text(weights):
    return KIR_TEMPLATE.replace("WEIGHTS", weights).encode()


# ---- the cases ----------------------------------------------------------------------------------
def protobuf_cases(out, mnist):
    add_case("empty", write_bytes(out, "empty", "empty.onnx", b""), ["empty"])
    rnd = random.Random(1234)
    junk = bytes(rnd.randrange(256) for _ in range(4096))
    add_case("random_bytes", write_bytes(out, "random_bytes", "random_bytes.onnx", junk),
             ["protobuf|corrupt|truncated|parse|format"])
    with open(mnist, "rb") as f:
        whole = f.read()
    add_case("truncated", write_bytes(out, "truncated", "truncated.onnx", whole[: len(whole) // 2]),
             ["truncated|corrupt"], note="mnist_cnn cut in half")
    add_case("nested_if", write_bytes(out, "nested_if", "nested_if.onnx", nested_if_model(100_000)),
             ["deep|nest"], note="100000 If subgraphs inside each other")
    add_case("lying_length", write_bytes(out, "lying_length", "lying_length.onnx", lying_length()),
             ["truncated|corrupt|length|bytes"])


def nested_if_model(depth):
    """A ModelProto whose graph holds If -> then_branch -> If -> ... depth levels, written as raw
    protobuf (the python protobuf library refuses to build it). Lengths are computed inside-out
    and the prefixes written outside-in, so this takes linear time."""
    leaf = field(4, 2, b"Identity") + field(1, 2, b"c") + field(2, 2, b"o")  # NodeProto
    op = field(4, 2, b"If") + field(1, 2, b"c") + field(2, 2, b"o")
    attr_head = field(1, 2, b"then_branch") + field(20, 0, 5)  # AttributeProto, type GRAPH
    prefixes, size = [], len(leaf)
    for _ in range(depth):
        graph = varint(1 << 3 | 2) + varint(size)                  # GraphProto.node = <node>
        size += len(graph)
        attr = attr_head + varint(6 << 3 | 2) + varint(size)       # AttributeProto.g = <graph>
        size += len(attr)
        node = op + varint(5 << 3 | 2) + varint(size)              # NodeProto.attribute
        size += len(node)
        prefixes.append(node + attr + graph)
    body = b"".join(reversed(prefixes)) + leaf
    graph = field(1, 2, body) + field(2, 2, b"g")
    opset = field(8, 2, field(1, 2, b"") + field(2, 0, OPSET))
    return field(1, 0, 8) + opset + field(7, 2, graph)


def lying_length():
    """A valid model whose graph field claims a million more bytes than the file holds."""
    good = add_model().SerializeToString()
    pos = 0
    while True:  # walk the top-level fields to the graph (field 7)
        key = good[pos]
        pos += 1
        if key == (7 << 3 | 2):
            break
        if key & 7 == 0:
            while good[pos] & 0x80:
                pos += 1
            pos += 1
        else:
            length, n = decode_varint(good, pos)
            pos += n + length
    length, n = decode_varint(good, pos)
    return good[:pos] + varint(length + 1_000_000) + good[pos + n:]


def decode_varint(data, pos):
    value, shift, n = 0, 0, 0
    while True:
        b = data[pos + n]
        value |= (b & 0x7F) << shift
        n += 1
        shift += 7
        if not b & 0x80:
            return value, n


def tensor_cases(out):
    w = TensorProto()
    w.name, w.data_type = "w", TensorProto.FLOAT
    w.dims.extend([-4])
    add_case("negative_dim", save_model(out, "negative_dim", add_model(w=w)), ["negative|-4"])
    w = TensorProto()
    w.name, w.data_type = "w", TensorProto.FLOAT
    w.dims.extend([1 << 40, 1 << 40, 1 << 40])
    w.raw_data = b"\0" * 16
    add_case("dims_overflow", save_model(out, "dims_overflow", add_model(w=w)),
             ["overflow|exceed|too large|limit"], note="2^120 elements")
    w = TensorProto()
    w.name, w.data_type, w.raw_data = "w", TensorProto.FLOAT, b"\0" * 10
    w.dims.extend([4])
    add_case("short_raw_data", save_model(out, "short_raw_data", add_model(w=w)),
             ["10|16|need|short|size"], note="4 floats need 16 bytes, raw_data holds 10")


def external_cases(out):
    data = np.arange(4, dtype="<f4").tobytes()
    d = case_dir(out, "external_ok")
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(data)
    add_case("external_ok", save_model(out, "external_ok", add_model(w=external_tensor("weights.bin"))),
             ok=True)
    add_case("external_missing", save_model(out, "external_missing",
                                            add_model(w=external_tensor("missing.bin"))),
             ["missing.bin"])
    secret = os.path.join(out, "secret.bin")  # outside every case folder
    with open(secret, "wb") as f:
        f.write(data)
    add_case("external_absolute", save_model(out, "external_absolute",
                                             add_model(w=external_tensor(secret))), ["absolute"])
    add_case("external_dotdot", save_model(out, "external_dotdot",
                                           add_model(w=external_tensor("../secret.bin"))),
             ["outside|leaves|escape|inside"])
    d = case_dir(out, "external_symlink")
    link = os.path.join(d, "link.bin")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("../secret.bin", link)
    add_case("external_symlink", save_model(out, "external_symlink",
                                            add_model(w=external_tensor("link.bin"))),
             ["outside|leaves|escape|inside"])


def graph_cases(out):
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    add_case("good_add", save_model(out, "good_add", add_model()), ok=True)
    unknown_op = make_model([helper.make_node("NoSuchOp", ["x"], ["y"], name="n")],
                            [tensor_info("x", f32, [4])], [tensor_info("y", f32, None)])
    add_case("unknown_op", save_model(out, "unknown_op", unknown_op), ["NoSuchOp"])
    unknown_domain = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="n", domain="com.example.nosuch")],
        [tensor_info("x", f32, [4])], [tensor_info("y", f32, None)],
        opsets=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.example.nosuch", 1)])
    add_case("unknown_domain", save_model(out, "unknown_domain", unknown_domain),
             ["com.example.nosuch"])
    add_case("opset_newer", save_model(out, "opset_newer", add_model(opset=99)), ["opset", "99"])
    add_case("ir_version_newer", save_model(out, "ir_version_newer", add_model(ir_version=99)),
             ["ir_version|ir version", "99"])
    relu = lambda i, o, n: helper.make_node("Relu", [i], [o], name=n)  # noqa: E731
    cycle = make_model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"), relu("a", "b", "n2")],
                       [tensor_info("x", f32, [4])], [tensor_info("b", f32, None)])
    add_case("cycle", save_model(out, "cycle", cycle), ["cycle|not defined|undefined"],
             note="n1 reads b, which n2 computes from n1's output")
    undefined = make_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="n")],
                           [tensor_info("x", f32, [4])], [tensor_info("y", f32, None)])
    add_case("undefined_input", save_model(out, "undefined_input", undefined),
             ["ghost", "undefined|not defined|unknown|no value"])
    two = make_model([relu("x", "y", "n1"), relu("x", "y", "n2")],
                     [tensor_info("x", f32, [4])], [tensor_info("y", f32, None)])
    add_case("two_producers", save_model(out, "two_producers", two),
             ["already|twice|more than one|two|redefin|duplicate"])
    add_case("shape_mismatch", save_model(out, "shape_mismatch", add_model(x_shape=(3,), w_shape=(4,))),
             ["Add", "broadcast|mismatch|incompatib|differ"])
    add_case("dtype_mismatch", save_model(out, "dtype_mismatch", add_model(w_dtype=i64)),
             ["Add", "i64|int64|dtype|element type|mismatch"])
    conv_w = helper.make_tensor("w", f32, [1, 1, 3], np.zeros(3).tolist())
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                      [tensor_info("x", f32, [1, 1, 5, 5])], [tensor_info("y", f32, None)], [conv_w])
    add_case("conv_weight_rank", save_model(out, "conv_weight_rank", conv), ["Conv", "rank|dims"])


# Syntax errors; each entry: (name, text, words its message must contain).
KIR = KIR_TEMPLATE.replace("WEIGHTS", "w.safetensors")
BAD_KIR = [
    ("kir_unclosed_paren", KIR.replace("Add(%x, %w)", "Add(%x, %w"), [":8:"]),
    ("kir_unknown_dtype", KIR.replace("%x: f32[4]", "%x: f33[4]"), ["f33"]),
    ("kir_unterminated_string", KIR.replace('"kiln-tests" "1"', '"kiln-tests" "1'), [":3:"]),
    ("kir_junk_token", KIR.replace("return %y", "return %y $$$"), [":9:"]),
    ("kir_no_closing_brace", KIR[: KIR.rindex("}")], ["end|eof|expected"]),
    ("kir_bad_number", KIR.replace("f32[4] @", "f32[4x] @"), [":7:"]),
]


def kir_cases(out):
    weights = safetensors_bytes({"w": np.arange(4, dtype=np.float32)})
    write_bytes(out, "kir_ok", "w.safetensors", weights)
    add_case("kir_ok", write_bytes(out, "kir_ok", "kir_ok.kir", kir_text("w.safetensors")), ok=True)
    for name, text, words in BAD_KIR:
        write_bytes(out, name, "w.safetensors", weights)
        add_case(name, write_bytes(out, name, f"{name}.kir", text.encode()), words)
    with open(os.path.join(out, "outside.safetensors"), "wb") as f:
        f.write(weights)
    add_case("kir_weights_outside",
             write_bytes(out, "kir_weights_outside", "kir_weights_outside.kir",
                         kir_text("../outside.safetensors")),
             ["outside|leaves|escape|inside"])
    bad_header = struct.pack("<Q", 24) + b'{"w": {"dtype": "F32", ['
    write_bytes(out, "kir_corrupt_safetensors", "bad.safetensors", bad_header + b"\0" * 16)
    add_case("kir_corrupt_safetensors",
             write_bytes(out, "kir_corrupt_safetensors", "kir_corrupt_safetensors.kir",
                         kir_text("bad.safetensors")),
             ["bad.safetensors", "header|json"])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    mnist = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "models", "mnist_cnn", "model.onnx")
    if os.path.isfile(os.path.join(out, "cases.json")):  # a previous run's: start afresh
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    protobuf_cases(out, mnist)
    tensor_cases(out)
    external_cases(out)
    graph_cases(out)
    kir_cases(out)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1)
    print(f"wrote {len(CASES)} cases to {out}")


if __name__ == "__main__":
    main()
