/* infer_nn.c - PLACEHOLDER: shape inference for this family is being written. */
#include "ir/infer_fns.h"

KnStatus infer_fn(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_pool(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_batch_norm(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_bernoulli(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_window(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_conv(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_conv_transpose(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_dft(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_dequantize(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_det(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_dynamic_quantize(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_einsum(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_rnn(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_gemm(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_global_pool(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_grid_sample(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_instance_norm(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_layer_norm(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_matmul(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_max_roi_pool(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_max_unpool(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_mel_weight_matrix(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_multinomial(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_nll_loss(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_nms(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_quantize(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_random(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_random_like(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_resize(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_roi_align(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_stft(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_softmax_ce_loss(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_string_normalizer(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}

KnStatus infer_tfidf(KnNode *node, KnError *err) {
  return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "shape inference not implemented yet");
}
