/* infer_elementwise.c - PLACEHOLDER: shape inference for this family is being written. */
#include "ir/infer_fns.h"

KnStatus infer_unary(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_binary(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_compare(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_is_special(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_variadic(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_where(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_clip(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_cast(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_dropout(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}
