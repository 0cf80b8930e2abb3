/* infer_training.c - shape inference for ai.onnx.preview.training: optimizers and Gradient. */
#include "ir/infer_b_internal.h"

/* Inputs are R, T, then groups of n tensors: Adagrad X,G,H; Momentum X,G,V; Adam X,G,V,H.
 * Outputs are the new X's then the new states, each shaped like the input it replaces. */
KnStatus infer_training_optimizer(KnNode *node, KnError *err) {
  int groups = node->op == KN_OP_Adam ? 4 : 3;
  int rest = node->n_inputs - 2, n = rest / groups;
  if (rest <= 0 || rest % groups)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "has %d inputs, expected 2 + %d*n", node->n_inputs,
                         groups);
  if (node->n_outputs > (groups - 1) * n)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "has %d outputs, expected at most %d",
                         node->n_outputs, (groups - 1) * n);
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  for (int g = 0; g < groups * n && !st; g++) st = ir_require_tensor(node, 2 + g, err);
  for (int j = 0; j < n && !st; j++)
    st = ib_check_same_dtype(node, 2 + j, 2 + n + j, err); /* X and its gradient */
  for (int o = 0; o < node->n_outputs && !st; o++) {
    int group = o / n; /* 0: X; 1..: the states, which follow G in the inputs */
    int in = 2 + (group == 0 ? 0 : group + 1) * n + o % n;
    st = ib_like_input(node, o, in, KN_UNDEF, err);
  }
  return st;
}

/* One output per name in xs: the gradient of y with respect to that value, shaped like it. */
KnStatus infer_gradient(KnNode *node, KnError *err) {
  const KnAttr *xs = ir_attr(node, "xs");
  if (!xs || xs->kind != KN_ATTR_STRINGS)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute xs (strings) is missing");
  if (xs->n != node->n_outputs)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "has %d outputs but xs names %lld values",
                         node->n_outputs, (long long)xs->n);
  for (int i = 0; i < node->n_outputs; i++) {
    KnValue *v = ir_find_value(node->graph, xs->strings[i].data);
    if (!v)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "xs[%d] names '%s', which is not a value here",
                           i, xs->strings[i].data);
    if (v->type.kind != KN_TYPE_TENSOR)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "xs[%d] ('%s') is not a tensor", i,
                           xs->strings[i].data);
    KnStatus st = ir_set_output_type(node, i, &v->type, err);
    if (st) return st;
  }
  return KN_OK;
}
