/* infer_reduce.c - PLACEHOLDER: shape inference for this family is being written. */
#include "ir/infer_fns.h"

KnStatus infer_reduce(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_arg_reduce(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_top_k(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_unique(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}
