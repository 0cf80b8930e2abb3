/* infer_reduce.c - shape inference for reductions (Reduce*, ArgMax/ArgMin) and TopK, Unique. */
#include <string.h>

#include "ir/infer_fns.h"

#define MAX_AXES 64

/* Reads the axes to reduce (attribute before opset 13/18, input 1 after); -1 count if unknown. */
static int reduce_axes(const KnNode *n, int64_t *axes, bool *from_input) {
  int64_t cnt = 0;
  const int64_t *a = ir_attr_ints(n, "axes", &cnt);
  *from_input = false;
  if (a) {
    if (cnt > MAX_AXES) return -1;
    memcpy(axes, a, (size_t)cnt * sizeof *axes);
    return (int)cnt;
  }
  if (n->n_inputs > 1 && n->inputs[1]) {
    *from_input = true;
    return ir_input_ints(n, 1, axes, MAX_AXES);
  }
  return 0;
}

KnStatus infer_reduce(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  bool keep = ir_attr_int(node, "keepdims", 1) != 0, from_input;
  int64_t axes[MAX_AXES];
  int n_axes = reduce_axes(node, axes, &from_input);
  int rank = x->shape.rank;
  if (rank > 64) return ir_infer_fail(err, node, KN_ERR_LIMIT, "rank %d is above 64", rank);
  KnDim dims[64];
  if (n_axes < 0 || rank < 0) { /* axes known only at run time: with keepdims, the rank stays */
    for (int i = 0; i < rank; i++) dims[i] = IR_DIM_UNKNOWN;
    return ir_set_output(node, 0, x->dtype, keep && rank >= 0 ? rank : -1, dims, err);
  }
  bool reduced[64] = {false};
  if (n_axes == 0 && !(from_input && ir_attr_int(node, "noop_with_empty_axes", 0)))
    for (int i = 0; i < rank; i++) reduced[i] = true;
  for (int i = 0; i < n_axes; i++) {
    int ax;
    if ((st = ir_norm_axis(node, axes[i], rank, &ax, err))) return st;
    reduced[ax] = true;
  }
  int out_rank = 0;
  for (int i = 0; i < rank; i++) {
    if (!reduced[i]) dims[out_rank++] = x->shape.dims[i];
    else if (keep) dims[out_rank++] = IR_DIM(1);
  }
  return ir_set_output(node, 0, x->dtype, out_rank, dims, err);
}

/* ArgMax/ArgMin: one axis, int64 indices. */
KnStatus infer_arg_reduce(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  int rank = x->shape.rank, ax;
  if (rank < 0) return ir_set_output(node, 0, KN_I64, -1, NULL, err);
  if (rank > 64) return ir_infer_fail(err, node, KN_ERR_LIMIT, "rank %d is above 64", rank);
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), rank, &ax, err))) return st;
  bool keep = ir_attr_int(node, "keepdims", 1) != 0;
  KnDim dims[64];
  int out_rank = 0;
  for (int i = 0; i < rank; i++) {
    if (i != ax) dims[out_rank++] = x->shape.dims[i];
    else if (keep) dims[out_rank++] = IR_DIM(1);
  }
  return ir_set_output(node, 0, KN_I64, out_rank, dims, err);
}

/* TopK: values and int64 indices, the axis dim becoming K (attribute before opset 10). */
KnStatus infer_top_k(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  int rank = x->shape.rank, ax;
  if (rank < 0) {
    st = ir_set_output(node, 0, x->dtype, -1, NULL, err);
    return st ? st : ir_set_output(node, 1, KN_I64, -1, NULL, err);
  }
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", -1), rank, &ax, err))) return st;
  int64_t k = -1;
  if (node->opset < 10) k = ir_attr_int(node, "k", -1);
  else if (ir_input_ints(node, 1, &k, 1) != 1) k = -1;
  KnShape s = ir_shape_copy(node->graph->arena, &x->shape);
  if (rank > 0 && !s.dims) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  if (k >= 0 && x->shape.dims[ax].value >= 0 && k > x->shape.dims[ax].value)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "k=%lld exceeds axis %d of size %lld", (long long)k,
                         ax, (long long)x->shape.dims[ax].value);
  s.dims[ax] = k >= 0 ? IR_DIM(k) : IR_DIM_UNKNOWN;
  st = ir_set_output(node, 0, x->dtype, rank, s.dims, err);
  return st ? st : ir_set_output(node, 1, KN_I64, rank, s.dims, err);
}

/* Unique: data-dependent count. Y is 1-D (no axis) or the input with its axis dim unknown;
 * indices, inverse_indices and counts are 1-D int64. */
KnStatus infer_unique(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  const KnAttr *axis = ir_attr(node, "axis");
  KnDim unknown = IR_DIM_UNKNOWN;
  if (!axis || x->shape.rank < 0) {
    st = ir_set_output(node, 0, x->dtype, axis ? -1 : 1, &unknown, err);
  } else {
    int ax;
    if ((st = ir_norm_axis(node, axis->i, x->shape.rank, &ax, err))) return st;
    KnShape s = ir_shape_copy(node->graph->arena, &x->shape);
    if (!s.dims) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    s.dims[ax] = IR_DIM_UNKNOWN;
    st = ir_set_output(node, 0, x->dtype, s.rank, s.dims, err);
  }
  int64_t numel;
  KnDim inverse = IR_DIM_UNKNOWN;
  if (!axis && ir_shape_numel(&x->shape, &numel)) inverse = IR_DIM(numel);
  else if (axis && x->shape.rank > 0) {
    int ax;
    if (!ir_norm_axis(node, axis->i, x->shape.rank, &ax, NULL)) inverse = x->shape.dims[ax];
  }
  if (!st) st = ir_set_output(node, 1, KN_I64, 1, &unknown, err);
  if (!st) st = ir_set_output(node, 2, KN_I64, 1, &inverse, err);
  if (!st) st = ir_set_output(node, 3, KN_I64, 1, &unknown, err);
  return st;
}
