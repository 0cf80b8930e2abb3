/* infer_control.c - PLACEHOLDER: shape inference for this family is being written. */
#include "ir/infer_fns.h"

KnStatus infer_if(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_loop(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_scan(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_construct(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_empty(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_at(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_insert(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_erase(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_length(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_split_to_sequence(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_concat_from_sequence(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_sequence_map(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_optional(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_optional_get_element(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_optional_has_element(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_training_optimizer(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_gradient(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}
