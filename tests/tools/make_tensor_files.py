#!/usr/bin/python3
"""make_tensor_files.py - reference tensor files for tests/test_tensor_file.c.

  make_tensor_files.py OUTDIR            writes .npy (numpy.save) and .pb (onnx.numpy_helper) files
                                         plus OUTDIR/manifest.json: what each file must read as
                                         (dtype, dims, little-endian C-order bytes from numpy) or
                                         which error a hostile file must give.
  make_tensor_files.py --verify OUTDIR   checks the files kiln wrote back into OUTDIR/rt/ with
                                         numpy and onnx; exit status 0 when every one matches.
"""
import io
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# numpy dtype code -> kiln dtype name, for every dtype .npy and kiln share.
NPY_DTYPES = {
    "f2": "f16", "f4": "f32", "f8": "f64", "i1": "i8", "u1": "u8", "i2": "i16", "u2": "u16",
    "i4": "i32", "u4": "u32", "i8": "i64", "u8": "u64", "b1": "bool", "c8": "c64", "c16": "c128",
}
KILN_TO_NUMPY = {v: k for k, v in NPY_DTYPES.items()}

rng = np.random.default_rng(20240601)


def values(code, shape):
    """Deterministic values covering each dtype's range (and NaN, inf, -0.0 for floats)."""
    dt = np.dtype("<" + code if code != "b1" else "?")
    n = int(np.prod(shape, dtype=np.int64))
    if dt.kind == "b":
        flat = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        flat = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        flat[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    elif dt.kind == "f":
        flat = (rng.standard_normal(n) * 100).astype(dt)
        for i, special in enumerate([np.nan, np.inf, -np.inf, -0.0][: n // 3]):
            flat[i * 3] = special
    else:
        flat = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    return flat.reshape(shape)


def le_bytes(arr):
    """The reference: numpy's little-endian C-order bytes of arr."""
    le = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    return np.ascontiguousarray(arr.astype(le)).tobytes().hex()


def tensor_entry(arr, kiln_dtype=None, name=None):
    e = {"dims": list(arr.shape)}
    if arr.dtype == object:
        e.update(dtype="string", strings=[s.hex() for s in arr.reshape(-1)])
    else:
        e.update(dtype=kiln_dtype or NPY_DTYPES[arr.dtype.str[1:]], hex=le_bytes(arr))
    if name is not None:
        e["tensor_name"] = name
    return e


class Writer:
    def __init__(self, out):
        self.out = out
        self.cases = []
        for sub in ("npy", "pb", "bad", "rt"):
            os.makedirs(os.path.join(out, sub), exist_ok=True)

    def path(self, rel):
        return os.path.join(self.out, rel)

    def raw(self, rel, data, **entry):
        with open(self.path(rel), "wb") as f:
            f.write(data)
        self.cases.append(dict(name=os.path.splitext(os.path.basename(rel))[0], file=rel, **entry))

    def npy(self, name, arr, version=None, **extra):
        buf = io.BytesIO()
        if version is None:
            np.save(buf, arr)
        else:
            np.lib.format.write_array(buf, arr, version=version)
        self.raw("npy/%s.npy" % name, buf.getvalue(), kind="tensor", expect="ok",
                 **tensor_entry(arr), **extra)

    def pb(self, name, proto, entry):
        self.raw("pb/%s.pb" % name, proto.SerializeToString(), kind="tensor", expect="ok", **entry)

    def bad(self, name, data, expect, kind="tensor", **extra):
        self.raw("bad/%s" % name, data, kind=kind, expect=expect, **extra)


def write_npy_cases(w):
    for code in NPY_DTYPES:
        a = values(code, (2, 3, 4))
        w.npy("c_" + code, a)
        w.npy("fortran_" + code, np.asfortranarray(values(code, (3, 2, 5))))
        if a.dtype.itemsize > 1:
            w.npy("be_" + code, values(code, (3, 5)).astype(a.dtype.newbyteorder(">")))
    w.npy("be_fortran_f8", np.asfortranarray(values("f8", (4, 3, 2)).astype(">f8")))
    w.npy("fortran_2d_i2", np.asfortranarray(values("i2", (5, 7))))
    w.npy("scalar_f4", values("f4", ()))
    w.npy("scalar_i8", values("i8", ()))
    w.npy("scalar_b1", values("b1", ()))
    w.npy("empty_f4", values("f4", (0,)))
    w.npy("empty_2_0_3_i4", values("i4", (2, 0, 3)))
    w.npy("empty_fortran_f8", np.asfortranarray(values("f8", (0, 4))))
    w.npy("vector_u1", values("u1", (7,)))
    w.npy("rank20_f4", values("f4", (1,) * 19 + (3,)))
    w.npy("big_dim0_f4", values("f4", (1000, 2)))
    w.npy("v2_f4", values("f4", (2, 3)), version=(2, 0))
    w.npy("v3_i8", values("i8", (4,)), version=(3, 0))


def write_pb_cases(w):
    for code, kd in NPY_DTYPES.items():
        a = values(code, (2, 3, 2))
        name = "t_" + code
        w.pb("raw_" + code, numpy_helper.from_array(a, name), tensor_entry(a, name=name))
    sc = values("f4", ())
    w.pb("scalar_f4", numpy_helper.from_array(sc, "s"), tensor_entry(sc, name="s"))
    e = values("i8", (3, 0))
    w.pb("empty_i8", numpy_helper.from_array(e, "e"), tensor_entry(e, name="e"))
    s = np.array([b"hello", b"", b"with\x00nul", "\u00fcnicode".encode()], dtype=object)
    s = s.reshape(2, 2)
    w.pb("strings", numpy_helper.from_array(s, "str"), tensor_entry(s, name="str"))
    big = values("f4", (64, 33))  # large enough for the importer to take raw_data over
    w.pb("big_f4", numpy_helper.from_array(big, "big"), tensor_entry(big, name="big"))
    # Typed fields instead of raw_data: each has its own conversion path in the importer.
    for code, onnx_type in (("f4", TensorProto.FLOAT), ("f8", TensorProto.DOUBLE),
                            ("i4", TensorProto.INT32), ("i8", TensorProto.INT64),
                            ("u8", TensorProto.UINT64), ("i2", TensorProto.INT16),
                            ("u1", TensorProto.UINT8), ("b1", TensorProto.BOOL)):
        a = values(code, (3, 2))
        t = helper.make_tensor("typed", onnx_type, a.shape, a.reshape(-1).tolist())
        w.pb("typed_" + code, t, tensor_entry(a, name="typed"))
    h = values("f2", (5,))
    t = helper.make_tensor("h", TensorProto.FLOAT16, h.shape, h.view(np.uint16).tolist())
    t.ClearField("int32_data")
    t.int32_data.extend(h.view(np.uint16).astype(np.int32).tolist())
    w.pb("typed_f2", t, tensor_entry(h, name="h"))
    bf = helper.make_tensor("bf", TensorProto.BFLOAT16, (2, 2), [1.0, -2.5, 3.0e38, 0.0078125])
    bits = np.array(list(bf.int32_data), dtype="<u2")  # bf16 bits as onnx stores them
    w.pb("typed_bf16", bf,
         dict(dtype="bf16", dims=[2, 2], hex=bits.tobytes().hex(), tensor_name="bf"))


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def npy_with_header(header, data=b"", version=1):
    """A .npy file whose dict text is given verbatim (padded like numpy's)."""
    h = header.encode("latin1")
    pre = 10 if version == 1 else 12
    h += b" " * (63 - (pre + len(h)) % 64) + b"\n"
    size = len(h).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def write_npy_variants(w):
    """Hand-written headers that numpy accepts too; numpy's np.load gives the expected array."""
    variants = [
        ("double_quotes", '{"descr": "<i2", "fortran_order": False, "shape": (2, 3)}', 12),
        ("py2_long_dims", "{'shape': (3L, 2L), 'fortran_order': False, 'descr': '<u2'}", 12),
        ("no_spaces", "{'descr':'|u1','fortran_order':True,'shape':(2,2,),}", 4),
        ("native_order", "{'descr': '=f4', 'fortran_order': False, 'shape': (3,), }", 12),
        ("big_endian_byte", "{'descr': '>i1', 'fortran_order': False, 'shape': (5,), }", 5),
        ("tabs", "{\t'descr' : '>u4' ,\t'fortran_order' : True , 'shape' : ( 2 , 2 ) }", 16),
    ]
    for name, header, nbytes in variants:
        data = npy_with_header(header, bytes(range(7, 7 + nbytes)))
        arr = np.load(io.BytesIO(data))
        w.raw("npy/%s.npy" % name, data, kind="tensor", expect="ok", **tensor_entry(arr))


def write_bad_npy(w):
    good = npy_bytes(values("f4", (4, 5)))
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    w.bad("truncated_data.npy", good[:-3], "format")
    w.bad("truncated_header.npy", good[:40], "format")
    w.bad("only_magic.npy", b"\x93NUMPY", "format")
    w.bad("magic_version.npy", b"\x93NUMPY\x01\x00", "format")
    w.bad("lying_length.npy", good[:8] + (60000).to_bytes(2, "little") + good[10:], "format")
    w.bad("lying_length_v2.npy", npy_with_header(hdr % "(1,)", b"\0" * 4, 2)[:8] +
          (0xFFFFFFF0).to_bytes(4, "little") + b"{}", "format")
    w.bad("short_length.npy", good[:8] + (20).to_bytes(2, "little") + good[10:], "format")
    w.bad("trailing_garbage.npy", good + b"garbage!", "format")
    w.bad("overflow_product.npy",
          npy_with_header(hdr % "(4611686018427387904, 4611686018427387904)"), "limit")
    w.bad("overflow_dim.npy", npy_with_header(hdr % "(99999999999999999999999,)"), "limit")
    w.bad("huge_shape.npy", npy_with_header(hdr % "(2199023255553,)"), "limit")
    w.bad("over_limit.npy", npy_with_header(hdr % "(3, 4)", b"\0" * 48), "limit",
          limits={"max_tensor_elems": 11})
    w.bad("negative_dim.npy", npy_with_header(hdr % "(-1, 2)"), "format")
    w.bad("shape_not_tuple.npy", npy_with_header(hdr % "3", b"\0" * 12), "format")
    w.bad("shape_int_in_parens.npy", npy_with_header(hdr % "(3)", b"\0" * 12), "format")
    w.bad("too_many_dims.npy", npy_with_header(hdr % ("(" + "1, " * 65 + ")")), "limit")
    w.bad("unknown_key.npy", npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1, }", b"\0" * 4), "format")
    w.bad("missing_key.npy", npy_with_header("{'descr': '<f4', 'shape': (), }", b"\0" * 4),
          "format")
    w.bad("duplicate_key.npy", npy_with_header(
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (), }", b"\0" * 4),
        "format")
    w.bad("bad_fortran.npy", npy_with_header(
        "{'descr': '<f4', 'fortran_order': maybe, 'shape': (), }", b"\0" * 4), "format")
    w.bad("unterminated_string.npy", npy_with_header("{'descr': '<f4"), "format")
    w.bad("no_brace.npy", npy_with_header("'descr': '<f4'"), "format")
    w.bad("after_brace.npy", npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), } x", b"\0" * 4), "format")
    w.bad("dtype_f3.npy", npy_with_header(
        "{'descr': '<f3', 'fortran_order': False, 'shape': (), }", b"\0" * 3), "unsupported")
    w.bad("dtype_unicode.npy", npy_bytes(np.array(["ab", "c"])), "unsupported")
    w.bad("dtype_object.npy", npy_bytes(np.array([1, "x"], dtype=object)), "unsupported")
    w.bad("dtype_struct.npy", npy_bytes(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])),
          "unsupported")
    w.bad("version_4.npy", b"\x93NUMPY\x04\x00" + good[8:], "unsupported")


def write_bad_pb(w):
    good = numpy_helper.from_array(values("f4", (4, 5)), "x").SerializeToString()
    w.bad("empty.pb", b"", "format")
    w.bad("garbage.pb", b"\xff" * 64, "format")
    w.bad("text.pb", b"this is not a tensor, just some text\n", "format")
    w.bad("truncated.pb", good[: len(good) // 2], "format")
    t = numpy_helper.from_array(values("f4", (4, 5)), "x")
    t.raw_data = t.raw_data[:-4]
    w.bad("raw_too_short.pb", t.SerializeToString(), "invalid")
    t = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
    w.bad("dims_overflow.pb", t.SerializeToString(), "limit")
    t = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[2],
                    data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "8")):
        t.external_data.add(key=key, value=value)
    w.bad("external.pb", t.SerializeToString(), "unsupported")
    t = TensorProto(name="x", data_type=999, dims=[2], raw_data=b"\0" * 8)
    w.bad("unknown_dtype.pb", t.SerializeToString(), "unsupported")


def write_sequences(w):
    a, b = values("f4", (2, 3)), values("f4", (4,))
    seq = numpy_helper.from_list([a, b], "seq")
    entries = [tensor_entry(a), tensor_entry(b)]
    w.raw("pb/seq_f4.pb", seq.SerializeToString(), kind="sequence", expect="ok", elem="tensor",
          tensors=entries, seq_name="seq")
    empty = onnx.SequenceProto(name="none", elem_type=onnx.SequenceProto.TENSOR)
    w.raw("pb/seq_empty.pb", empty.SerializeToString(), kind="sequence", expect="ok",
          elem="tensor", tensors=[], seq_name="none")
    c = values("i8", (3,))
    opt = numpy_helper.from_optional(c, "opt")
    w.raw("pb/opt_tensor.pb", opt.SerializeToString(), kind="optional", expect="ok",
          elem="tensor", tensors=[tensor_entry(c)], seq_name="opt")
    d, e = values("i4", (2,)), values("i4", (1, 2))
    opt = numpy_helper.from_optional([d, e], "optseq")
    w.raw("pb/opt_seq.pb", opt.SerializeToString(), kind="optional", expect="ok",
          elem="sequence", tensors=[tensor_entry(d), tensor_entry(e)], seq_name="optseq")
    opt = numpy_helper.from_optional(None, "void")
    w.raw("pb/opt_empty.pb", opt.SerializeToString(), kind="optional", expect="ok", elem="none",
          tensors=[], seq_name="void")
    # Hostile ones.
    nested = b""
    for _ in range(5000):  # SequenceProto.sequence_values, 5000 deep
        nested = b"\x2a" + varint(len(nested)) + nested
    w.bad("deep_sequence.pb", nested, "limit", kind="sequence")
    mixed = numpy_helper.from_list([a, c], "mixed")
    mixed.elem_type = onnx.SequenceProto.TENSOR
    w.bad("mixed_dtypes.pb", mixed.SerializeToString(), "invalid", kind="sequence")
    w.bad("seq_of_seq.pb", numpy_helper.from_list([[a]], "ss").SerializeToString(), "unsupported",
          kind="sequence")
    w.bad("seq_truncated.pb", seq.SerializeToString()[:30], "format", kind="sequence")


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def generate(out):
    w = Writer(out)
    write_npy_cases(w)
    write_pb_cases(w)
    write_npy_variants(w)
    write_bad_npy(w)
    write_bad_pb(w)
    write_sequences(w)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"cases": w.cases}, f, indent=1)
    return 0


# ---- verifying what kiln wrote back --------------------------------------------------------------

def expected_array(e):
    if e["dtype"] == "string":
        return np.array([bytes.fromhex(s) for s in e["strings"]], dtype=object).reshape(e["dims"])
    code = KILN_TO_NUMPY[e["dtype"]]
    dt = np.dtype("?" if code == "b1" else "<" + code)
    return np.frombuffer(bytes.fromhex(e["hex"]), dtype=dt).reshape(e["dims"])


def same(got, want):
    if got.dtype != want.dtype or got.shape != want.shape:
        return "dtype/shape %s%s, expected %s%s" % (got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype == object:
        as_bytes = [x.encode() if isinstance(x, str) else bytes(x) for x in got.reshape(-1)]
        ok = as_bytes == list(want.reshape(-1))
    else:
        ok = np.ascontiguousarray(got).tobytes() == want.tobytes()
    return None if ok else "values differ"


def verify_tensor_pb(path, e):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    if t.name != e.get("tensor_name", ""):
        return "name %r, expected %r" % (t.name, e.get("tensor_name", ""))
    if e["dtype"] == "bf16":  # onnx 1.12's to_array widens bf16; compare the stored bits
        ok = (t.data_type == TensorProto.BFLOAT16 and list(t.dims) == e["dims"]
              and t.raw_data.hex() == e["hex"])
        return None if ok else "bf16 tensor differs"
    return same(numpy_helper.to_array(t), expected_array(e))


def verify_npy(path, e):
    want = expected_array(e)
    err = same(np.load(path), want)
    if err:
        return err
    with open(path, "rb") as f:
        if f.read() != npy_bytes(want):
            return "not byte-identical to numpy.save's file"
    return None


def verify_list(path, case):
    cls = onnx.SequenceProto if case["kind"] == "sequence" else onnx.OptionalProto
    p = cls()
    with open(path, "rb") as f:
        p.ParseFromString(f.read())
    if p.name != case["seq_name"]:
        return "name %r, expected %r" % (p.name, case["seq_name"])
    if case["kind"] == "sequence":
        got = numpy_helper.to_list(p)
    else:
        got = numpy_helper.to_optional(p)
        got = [] if got is None else [got] if case["elem"] == "tensor" else got
        if case["elem"] == "none" and p.elem_type != onnx.OptionalProto.UNDEFINED:
            return "empty optional has elem_type %d" % p.elem_type
    if len(got) != len(case["tensors"]):
        return "%d tensors, expected %d" % (len(got), len(case["tensors"]))
    for g, e in zip(got, case["tensors"]):
        err = same(g, expected_array(e))
        if err:
            return err
    return None


def verify(out):
    with open(os.path.join(out, "manifest.json")) as f:
        cases = json.load(f)["cases"]
    failures = checked = 0
    for c in cases:
        if c["expect"] != "ok":
            continue
        base = os.path.join(out, "rt", c["name"] + "_" + os.path.dirname(c["file"]))
        checks = []
        if c["kind"] == "tensor":
            checks.append((base + ".pb", lambda p: verify_tensor_pb(p, c)))
            npy_ok = c["dtype"] in KILN_TO_NUMPY
            if npy_ok:
                checks.append((base + ".npy", lambda p: verify_npy(p, c)))
            elif os.path.exists(base + ".npy"):
                checks.append((base + ".npy", lambda p: "written, but .npy has no " + c["dtype"]))
        else:
            checks.append((base + ".pb", lambda p: verify_list(p, c)))
        for path, fn in checks:
            checked += 1
            try:
                err = fn(path) if os.path.exists(path) else "missing"
            except Exception as ex:  # a file numpy/onnx cannot read is a failure, not a crash
                err = "%s: %s" % (type(ex).__name__, ex)
            if err:
                failures += 1
                print("FAIL %s: %s" % (path, err))
    print("verified %d files written by kiln, %d failures" % (checked, failures))
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        sys.exit(verify(sys.argv[2]))
    if len(sys.argv) == 2:
        sys.exit(generate(sys.argv[1]))
    sys.exit(__doc__)
