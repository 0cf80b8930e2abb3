#!/usr/bin/env python3
"""check_large_external.py - a model whose external data lies beyond 2 GiB imports correctly.

Writes a 2.5 GiB sparse data file (no disk blocks used) holding a tensor at offset 2^31 + 4096
with values chosen here, then checks that `kiln inspect --json` counts it and that `kiln export`
to .kir (which prints small tensors inline) shows exactly those values: the bytes were read from
past the 2 GiB mark, through the mapping, not from a truncated 32-bit offset.
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        values = np.array([1.5, -2.25, 3.0e-3, 42.0], dtype=np.float32)
        offset = 2**31 + 4096
        data_path = os.path.join(d, "weights.bin")
        with open(data_path, "wb") as f:
            f.truncate(2**31 + 2**29)          # sparse: allocates nothing
            f.seek(offset)
            f.write(values.tobytes())
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "weights.bin"), ("offset", str(offset)), ("length", "16")):
            e = w.external_data.add()
            e.key, e.value = k, v
        g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
        model_path = os.path.join(d, "model.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model_path)

        failed = 0
        out = subprocess.run([args.kiln, "inspect", "--json", model_path], capture_output=True, text=True)
        info = json.loads(out.stdout) if out.returncode == 0 else {}
        if info.get("param_count") != 4 or info.get("param_bytes") != 16:
            print(f"FAIL inspect: rc={out.returncode} {out.stderr.strip()} {info}")
            failed += 1
        kir = os.path.join(d, "model.kir")
        out = subprocess.run([args.kiln, "export", model_path, "-o", kir], capture_output=True, text=True)
        text = open(kir).read() if out.returncode == 0 else ""
        want = ", ".join(repr(float(v)) for v in values)  # 1.5, -2.25, 0.003, 42.0
        shown = [line for line in text.splitlines() if line.lstrip().startswith("%w")]
        nums = []
        if shown and "[" in shown[0]:
            body = shown[0][shown[0].rindex("[") + 1: shown[0].rindex("]")]
            nums = [float(x) for x in body.split(",") if x.strip()]
        if not np.array_equal(np.array(nums, dtype=np.float32), values):
            print(f"FAIL export: rc={out.returncode} {out.stderr.strip()} line={shown[:1]} want [{want}]")
            failed += 1
        print(f"{2 - failed} passed, {failed} failed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
