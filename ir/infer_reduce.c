/* infer_reduce.c - shape inference for reductions along axes: Reduce*, ArgMax/ArgMin, TopK and
 * Unique. */
#include <string.h>

#include "ir/infer_a_internal.h"

/* Output o: the input's dims with the masked ones kept as 1 or dropped. */
static KnStatus set_reduced(KnNode *n, int o, KnDtype dt, const bool *mask, bool keepdims,
                            KnError *err) {
  const KnShape *s = &ir_input_tensor(n, 0)->shape;
  KnDim *out = ia_dims(n, s->rank);
  if (!out) return ia_nomem(err);
  int r = 0;
  for (int i = 0; i < s->rank; i++) {
    if (!mask[i]) out[r++] = s->dims[i];
    else if (keepdims) out[r++] = IR_DIM(1);
  }
  return ir_set_output(n, o, dt, r, out, err);
}

/* Reduce* with axes that are not known: the rank survives only with keepdims, or when the
 * number of axes is known. */
static KnStatus reduce_unknown_axes(KnNode *n, bool keepdims, KnError *err) {
  const KnType *x = ir_input_tensor(n, 0);
  const KnType *axes = ir_input_tensor(n, 1);
  int rank = x->shape.rank;
  if (!keepdims) {
    bool counted = axes && axes->shape.rank == 1 && axes->shape.dims[0].value >= 0 &&
                   axes->shape.dims[0].value <= rank;
    rank = counted ? rank - (int)axes->shape.dims[0].value : -1;
  }
  KnDim *out = ia_dims(n, rank);
  if (!out) return ia_nomem(err);
  return ir_set_output(n, 0, x->dtype, rank, out, err);
}

/* ReduceSum/Mean/Max/...: axes (attribute; ReduceSum's input from opset 13), keepdims, and
 * noop_with_empty_axes (no axes: identity instead of reducing everything). */
KnStatus infer_reduce(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  bool keepdims = ir_attr_int(node, "keepdims", 1) != 0;
  int64_t axes[IA_MAX_LIST];
  int since = node->op == KN_OP_ReduceSum ? 13 : 18;
  int cnt = ia_ints_attr_or_input(node, "axes", 1, since, axes, IA_MAX_LIST);
  if (x->shape.rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (cnt == IA_UNKNOWN) return reduce_unknown_axes(node, keepdims, err);
  if (cnt <= 0 && ir_attr_int(node, "noop_with_empty_axes", 0))
    return ir_set_output_type(node, 0, x, err);
  bool *mask = ir_arena_calloc(node->graph->arena, (size_t)x->shape.rank + 1, sizeof *mask);
  if (!mask) return ia_nomem(err);
  if (cnt > 0 && (st = ia_axes_mask(node, axes, cnt, x->shape.rank, mask, err))) return st;
  for (int i = 0; i < x->shape.rank && cnt <= 0; i++) mask[i] = true;
  return set_reduced(node, 0, x->dtype, mask, keepdims, err);
}

/* ArgMax, ArgMin: one axis reduced (kept as 1 by default), i64 indices. */
KnStatus infer_arg_reduce(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = &ir_input_tensor(node, 0)->shape;
  if (s->rank < 0) return ir_set_output(node, 0, KN_I64, -1, NULL, err);
  int axis;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), s->rank, &axis, err))) return st;
  bool *mask = ir_arena_calloc(node->graph->arena, (size_t)s->rank, sizeof *mask);
  if (!mask) return ia_nomem(err);
  mask[axis] = true;
  return set_reduced(node, 0, KN_I64, mask, ir_attr_int(node, "keepdims", 1) != 0, err);
}

/* TopK's k: attribute before opset 10, a one-element input after. -1 when not known. */
static int64_t top_k_count(const KnNode *n) {
  if (n->opset < 10 && !ir_input(n, 1)) return ir_attr_int(n, "k", -1);
  int64_t k[1];
  return ir_input_ints(n, 1, k, 1) == 1 ? k[0] : -1;
}

/* TopK: values (input dtype) and i64 indices, with k elements along axis. */
KnStatus infer_top_k(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  if (x->shape.rank < 0) {
    st = ir_set_output(node, 0, x->dtype, -1, NULL, err);
    return st ? st : ir_set_output(node, 1, KN_I64, -1, NULL, err);
  }
  int axis;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", -1), x->shape.rank, &axis, err))) return st;
  KnDim *out = ia_dims(node, x->shape.rank);
  if (!out) return ia_nomem(err);
  memcpy(out, x->shape.dims, (size_t)x->shape.rank * sizeof *out);
  int64_t k = top_k_count(node);
  KnDim d = x->shape.dims[axis];
  if (k < -1 || (k >= 0 && d.value >= 0 && k > d.value))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "k is %lld, expected 0..%lld (the axis size)",
                         (long long)k, (long long)d.value);
  out[axis] = k >= 0 ? IR_DIM(k) : IR_DIM_UNKNOWN;
  st = ir_set_output(node, 0, x->dtype, x->shape.rank, out, err);
  return st ? st : ir_set_output(node, 1, KN_I64, x->shape.rank, out, err);
}

/* Unique: Y (flattened, or slices along axis), then i64 indices, inverse_indices and counts.
 * How many unique elements there are depends on the data. */
KnStatus infer_unique(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  const KnAttr *axis_attr = ir_attr(node, "axis");
  KnDim unknown = IR_DIM_UNKNOWN, inverse = IR_DIM(1);
  if (!axis_attr) {
    for (int i = 0; i < x->shape.rank; i++) inverse = ir_dim_mul(inverse, x->shape.dims[i]);
    if (x->shape.rank < 0) inverse = IR_DIM_UNKNOWN;
    st = ir_set_output(node, 0, x->dtype, 1, &unknown, err);
  } else if (x->shape.rank < 0) {
    inverse = IR_DIM_UNKNOWN;
    st = ir_set_output(node, 0, x->dtype, -1, NULL, err);
  } else {
    int axis;
    KnDim *out = ia_dims(node, x->shape.rank);
    if (!out) return ia_nomem(err);
    if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), x->shape.rank, &axis, err))) return st;
    memcpy(out, x->shape.dims, (size_t)x->shape.rank * sizeof *out);
    out[axis] = IR_DIM_UNKNOWN;
    inverse = x->shape.dims[axis];
    st = ir_set_output(node, 0, x->dtype, x->shape.rank, out, err);
  }
  if (!st) st = ir_set_output(node, 1, KN_I64, 1, &unknown, err);
  if (!st) st = ir_set_output(node, 2, KN_I64, 1, &inverse, err);
  if (!st) st = ir_set_output(node, 3, KN_I64, 1, &unknown, err);
  return st;
}
