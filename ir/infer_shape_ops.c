/* infer_shape_ops.c - PLACEHOLDER: shape inference for this family is being written. */
#include "ir/infer_fns.h"

KnStatus infer_shape(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_size(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_reshape(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_flatten(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_squeeze(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_unsqueeze(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_transpose(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_concat(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_split(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_slice(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_gather(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_gather_elements(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_gather_nd(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_expand(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_tile(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_pad(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_constant_of_shape(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_constant(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_range(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_eye_like(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_one_hot(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_depth_to_space(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_space_to_depth(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_compress(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_non_zero(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_same_as_input(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}
