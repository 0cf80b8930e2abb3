"""make_staged_model.py - writes a tiny ONNX model that the JIT runs in stages: NonZero (its output
size is data) and a Loop (a runtime kernel with subgraph runners) between compiled parts, so the
concurrency test covers the staged path's locking. usage: make_staged_model.py OUT.onnx"""
import sys

import onnx
from onnx import TensorProto, helper


def loop_body():
    # acc = acc * 0.5 + x, three times: a body with a captured outer value.
    it = helper.make_tensor_value_info("it", TensorProto.INT64, [])
    cond_in = helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])
    acc_in = helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [3, 4])
    cond_out = helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])
    acc_out = helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [3, 4])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Mul", ["acc_in", "half"], ["scaled"]),
        helper.make_node("Add", ["scaled", "relu"], ["acc_out"]),
    ]
    return helper.make_graph(nodes, "body", [it, cond_in, acc_in], [cond_out, acc_out], [half])


def main():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    coords = helper.make_tensor_value_info("coords", TensorProto.FLOAT, [None])
    acc = helper.make_tensor_value_info("acc", TensorProto.FLOAT, [3, 4])
    inits = [
        helper.make_tensor("trips", TensorProto.INT64, [], [3]),
        helper.make_tensor("yes", TensorProto.BOOL, [], [True]),
        helper.make_tensor("zeros", TensorProto.FLOAT, [3, 4], [0.0] * 12),
        helper.make_tensor("axes", TensorProto.INT64, [1], [0]),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"]),
        helper.make_node("NonZero", ["relu"], ["nz"]),
        helper.make_node("Cast", ["nz"], ["nzf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["nzf", "axes"], ["colsum"], keepdims=0),
        helper.make_node("Mul", ["colsum", "colsum"], ["coords"]),
        helper.make_node("Loop", ["trips", "yes", "zeros"], ["acc"], body=loop_body()),
    ]
    graph = helper.make_graph(nodes, "staged", [x], [coords, acc], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
