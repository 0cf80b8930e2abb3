#!/usr/bin/python3
"""make_bench_models.py - writes the small synthetic benchmark models, one folder each
(OUTDIR/NAME/model.onnx and OUTDIR/NAME/test_data_set_0/input_0.pb), seeded so re-running gives
identical files:

  identity     f32[1] -> Identity: measures a runtime's per-run floor (Node's binding, for ORT)
  matmul_1024  A f32[1024,1024] x B const [1024,1024]: SGEMM, the FP32-peak target
  gemv_4096    x f32[1,4096] x W const [4096,4096]: GEMV (M=1), the memory-bandwidth target
  gemm_1x512x1000, gemm_128x256x1024, gemm_128x1024x256, gemm_49x512x512:
               GEMM shapes of the benchmark models (classifier head, transformer FFN, conv 1x1)

Usage: make_bench_models.py OUTDIR [NAME...]   (needs the onnx and numpy Python packages)"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def matmul_model(name, m, k, n, rng):
    """Y = X[m,k] x W[k,n] with W a constant initializer, as the frozen weights of a model are."""
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(w, "w")])
    x = rng.uniform(-1.0, 1.0, (m, k)).astype(np.float32)
    return graph, [x]


def identity_model(name, rng):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return graph, [np.array([0.5], dtype=np.float32)]


# name -> (m, k, n) for the MatMul models; "identity" is separate.
GEMMS = {
    "matmul_1024": (1024, 1024, 1024),
    "gemv_4096": (1, 4096, 4096),
    "gemm_1x512x1000": (1, 512, 1000),      # resnet18 / squeezenet classifier head
    "gemm_128x256x1024": (128, 256, 1024),  # text_transformer FFN up-projection
    "gemm_128x1024x256": (128, 1024, 256),  # text_transformer FFN down-projection
    "gemm_49x512x512": (49, 512, 512),      # resnet18 last stage as a GEMM (7x7 pixels)
}
ALL = ["identity"] + list(GEMMS)


def write(outdir, name, graph, inputs):
    folder = os.path.join(outdir, name)
    data = os.path.join(folder, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="kiln bench/make_bench_models.py")
    model.ir_version = 8  # what ONNX Runtime 1.30 and kiln both read; onnx's default may be newer
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    for k, x in enumerate(inputs):
        t = numpy_helper.from_array(x, graph.input[k].name)
        with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    # The expected output makes each folder an ONNX test case (`kiln check` works on it).
    y = inputs[0] if name == "identity" else inputs[0] @ numpy_helper.to_array(graph.initializer[0])
    out = numpy_helper.from_array(np.asarray(y, dtype=np.float32), graph.output[0].name)
    with open(os.path.join(data, "output_0.pb"), "wb") as f:
        f.write(out.SerializeToString())


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        asked = len(sys.argv) >= 2
        print(__doc__, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    outdir, names = sys.argv[1], sys.argv[2:] or ALL
    for name in names:
        if name not in ALL:
            print(f"make_bench_models.py: unknown model {name} (have: {' '.join(ALL)})", file=sys.stderr)
            return 2
        # One generator per model, seeded from its name: a model's weights do not depend on
        # which other models were asked for.
        rng = np.random.default_rng(sum(ord(c) * 31 ** i for i, c in enumerate(name)) % (2 ** 32))
        graph, inputs = identity_model(name, rng) if name == "identity" else matmul_model(name, *GEMMS[name], rng)
        write(outdir, name, graph, inputs)
        print(os.path.join(outdir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
