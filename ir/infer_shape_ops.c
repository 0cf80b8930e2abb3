/* infer_shape_ops.c - shape inference for ops that move, select or create data without arithmetic
 * on it (Shape, Reshape, Squeeze, Concat, Slice, Gather, Pad, Constant, Range, ...), with the
 * data propagation that keeps torch's exported shape computations known at compile time. */
#include <math.h>
#include <string.h>

#include "ir/infer_a_internal.h"
#include "ir/infer_params.h"

/* ---- helpers shared with the other infer_a files --------------------------------------------- */

KnStatus ia_nomem(KnError *err) {
  return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
}

KnDim *ia_dims(const KnNode *n, int count) {
  KnDim *d = ir_arena_calloc(n->graph->arena, (size_t)(count > 0 ? count : 1), sizeof *d);
  for (int i = 0; d && i < count; i++) d[i] = IR_DIM_UNKNOWN;
  return d;
}

KnDim ia_sym_unknown(void) { return (KnDim){-1, IR_SYM_UNKNOWN}; }

/* Models sometimes keep the older form past its opset; accept either, preferring the opset's. */
int ia_ints_attr_or_input(const KnNode *n, const char *attr, int i, int since, int64_t *out,
                          int max) {
  const KnAttr *a = ir_attr(n, attr);
  if (ir_input(n, i) && (n->opset >= since || !a)) {
    int cnt = ir_input_ints(n, i, out, max);
    return cnt < 0 ? IA_UNKNOWN : cnt;
  }
  if (!a) return IA_ABSENT;
  if (a->kind != KN_ATTR_INTS || a->n > max) return IA_UNKNOWN;
  if (a->n) memcpy(out, a->ints, (size_t)a->n * sizeof *out);
  return (int)a->n;
}

KnStatus ia_axes_mask(const KnNode *n, const int64_t *axes, int count, int rank, bool *mask,
                      KnError *err) {
  for (int i = 0; i < rank; i++) mask[i] = false;
  for (int k = 0; k < count; k++) {
    int ax;
    KnStatus st = ir_norm_axis(n, axes[k], rank, &ax, err);
    if (st) return st;
    if (mask[ax])
      return ir_infer_fail(err, n, KN_ERR_INVALID, "axis %lld is listed twice", (long long)axes[k]);
    mask[ax] = true;
  }
  return KN_OK;
}

const KnTensor *ia_const_tensor(const KnNode *n, int i) {
  KnValue *v = ir_input(n, i);
  if (!v) return NULL;
  if (v->init) return v->init;
  if (v->producer && v->producer->op == KN_OP_Constant) {
    const KnAttr *a = ir_attr(v->producer, "value");
    if (a && a->kind == KN_ATTR_TENSOR) return a->t;
  }
  return NULL;
}

bool ia_input_scalar(const KnNode *n, int i, double *out) {
  int64_t iv[1];
  if (ir_input_ints(n, i, iv, 1) == 1) return *out = (double)iv[0], true;
  const KnTensor *t = ia_const_tensor(n, i);
  if (t && t->numel == 1 && t->dtype != KN_STRING) return *out = ir_tensor_get_double(t, 0), true;
  KnValue *v = ir_input(n, i);
  const KnAttr *a = v && v->producer && v->producer->op == KN_OP_Constant
                        ? ir_attr(v->producer, "value_float") : NULL;
  if (a && a->kind == KN_ATTR_FLOAT) return *out = a->f, true;
  a = v && v->producer && v->producer->op == KN_OP_Constant ? ir_attr(v->producer, "value_floats")
                                                            : NULL;
  if (a && a->kind == KN_ATTR_FLOATS && a->n == 1) return *out = a->floats[0], true;
  return false;
}

KnStatus ia_like_input(KnNode *n, int o, KnDtype dtype, KnError *err) {
  const KnType *x = ir_input_tensor(n, 0);
  if (!x) return ir_require_tensor(n, 0, err);
  KnType t = *x;
  if (dtype != KN_UNDEF) t.dtype = dtype;
  return ir_set_output_type(n, o, &t, err);
}

/* ---- local helpers ----------------------------------------------------------------------------- */

static const KnShape *in_shape(const KnNode *n, int i) { return &ir_input_tensor(n, i)->shape; }
static KnDtype in_dtype(const KnNode *n, int i) { return ir_input_tensor(n, i)->dtype; }

static KnStatus set_unknown_rank(KnNode *n, int o, KnDtype dtype, KnError *err) {
  return ir_set_output(n, o, dtype, -1, NULL, err);
}

/* Output o: rank dims, every one unknown. */
static KnStatus set_unknown_dims(KnNode *n, int o, KnDtype dtype, int rank, KnError *err) {
  KnDim *d = ia_dims(n, rank);
  return d ? ir_set_output(n, o, dtype, rank, d, err) : ia_nomem(err);
}

/* The static length of 1-D input i (e.g. a shape tensor whose values are unknown), or -1. */
static int static_len(const KnNode *n, int i) {
  const KnType *t = ir_input_tensor(n, i);
  if (!t || t->shape.rank != 1 || t->shape.dims[0].value < 0 ||
      t->shape.dims[0].value > IA_MAX_LIST)
    return -1;
  return (int)t->shape.dims[0].value;
}

/* Ops that only regroup their input's elements keep its known contents. */
static KnStatus keep_sym_data(KnNode *n, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  KnValue *o = n->outputs[0];
  if (!o || o->type.kind != KN_TYPE_TENSOR || o->type.shape.rank < 0 || o->type.shape.rank > 1)
    return KN_OK;
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX);
  return len < 0 ? KN_OK : ir_set_sym_data(n, 0, e, len, err);
}

/* Of two dims that must agree: fails if both are concrete and differ, else the better known. */
static KnStatus merge_dim(const KnNode *n, KnDim a, KnDim b, KnDim *out, int axis, KnError *err) {
  if (a.value >= 0 && b.value >= 0 && a.value != b.value)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "dim %d differs between inputs (%lld vs %lld)",
                         axis, (long long)a.value, (long long)b.value);
  *out = a.value >= 0 ? a : b.value >= 0 ? b : a.sym ? a : b;
  return KN_OK;
}

/* ---- Shape, Size ------------------------------------------------------------------------------- */

/* Shape: the input's dims as an i64 vector (opset 15 start/end select a range of them). */
KnStatus infer_shape(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  if (s->rank < 0) return set_unknown_dims(node, 0, KN_I64, 1, err);
  int64_t r = s->rank, start = 0, end = r;
  if (node->opset >= 15) start = ir_attr_int(node, "start", 0), end = ir_attr_int(node, "end", r);
  if (start < 0) start = start < -r ? 0 : start + r;
  if (end < 0) end = end < -r ? 0 : end + r;
  start = start > r ? r : start;
  end = end > r ? r : end;
  KnDim len = IR_DIM(end > start ? end - start : 0);
  if ((st = ir_set_output(node, 0, KN_I64, 1, &len, err))) return st;
  if (len.value > IR_SYM_DATA_MAX) return KN_OK;
  KnDim e[IR_SYM_DATA_MAX];
  for (int64_t k = 0; k < len.value; k++) e[k] = ir_dim_to_sym(s->dims[start + k]);
  return ir_set_sym_data(node, 0, e, (int)len.value, err);
}

/* Size: the element count as an i64 scalar. */
KnStatus infer_size(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_set_output(node, 0, KN_I64, 0, NULL, err);
  if (st || in_shape(node, 0)->rank < 0) return st;
  const KnShape *s = in_shape(node, 0);
  KnDim numel = IR_DIM(1);
  for (int i = 0; i < s->rank; i++) numel = ir_dim_mul(numel, s->dims[i]);
  KnDim e = ir_dim_to_sym(numel);
  return ir_set_sym_data(node, 0, &e, 1, err);
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Transpose ------------------------------------------- */

/* Elements of in not matched by the known dims of out (except out[skip]): symbolic dims present
 * on both sides cancel. False when what remains is not concrete or overflows. */
static bool reshape_rest(const KnShape *in, const KnDim *out, int cnt, int skip, int64_t *in_rest,
                         int64_t *out_rest) {
  bool used[IA_MAX_LIST] = {false};
  if (in->rank < 0 || in->rank > IA_MAX_LIST) return false;
  *in_rest = 1, *out_rest = 1;
  for (int k = 0; k < cnt; k++) {
    if (k == skip) continue;
    if (out[k].value >= 0) {
      if (ir_mul_overflows(*out_rest, out[k].value, out_rest)) return false;
      continue;
    }
    int j = 0;
    while (j < in->rank && (used[j] || !ir_dim_equal(in->dims[j], out[k]))) j++;
    if (j == in->rank) return false;
    used[j] = true;
  }
  for (int j = 0; j < in->rank; j++)
    if (!used[j] && (in->dims[j].value < 0 || ir_mul_overflows(*in_rest, in->dims[j].value, in_rest)))
      return false;
  return true;
}

/* Turns target entries into dims: 0 copies the input dim (unless allowzero), -1 is inferred
 * from the element count. */
static KnStatus reshape_dims(KnNode *n, const KnShape *in, const KnDim *tgt, int cnt, KnDim *out,
                             KnError *err) {
  bool allowzero = ir_attr_int(n, "allowzero", 0) != 0;
  int minus = -1;
  for (int k = 0; k < cnt; k++) {
    KnDim e = tgt[k];
    out[k] = ir_sym_to_dim(e);
    if (e.sym || e.value > 0 || (e.value == 0 && allowzero)) continue;
    if (e.value == 0) {
      if (in->rank >= 0 && k >= in->rank)
        return ir_infer_fail(err, n, KN_ERR_INVALID,
                             "shape entry %d is 0 (copy the input dim), but the input has rank %d",
                             k, in->rank);
      if (in->rank >= 0) out[k] = in->dims[k];
    } else if (e.value == -1 && minus < 0) {
      minus = k;
    } else {
      return ir_infer_fail(err, n, KN_ERR_INVALID, "shape entry %d is %lld, expected >= -1 with "
                           "at most one -1", k, (long long)e.value);
    }
  }
  int64_t in_rest, out_rest;
  if (!reshape_rest(in, out, cnt, minus, &in_rest, &out_rest)) return KN_OK;
  if (minus >= 0 && out_rest == 0) return KN_OK; /* any value fits: leave it unknown */
  if ((minus >= 0 && in_rest % out_rest != 0) || (minus < 0 && in_rest != out_rest))
    return ir_infer_fail(err, n, KN_ERR_INVALID,
                         "cannot reshape the input (%lld elements unaccounted for) into the "
                         "target shape (%lld)", (long long)in_rest, (long long)out_rest);
  if (minus >= 0) out[minus] = IR_DIM(in_rest / out_rest);
  return KN_OK;
}

/* The target shape entries: attribute `shape` before opset 5, input 1 after. -1 if unknown. */
static int reshape_target(const KnNode *n, KnDim *tgt) {
  if (n->opset < 5 && !ir_input(n, 1)) {
    int64_t cnt;
    const int64_t *s = ir_attr_ints(n, "shape", &cnt);
    if (!s || cnt > IA_MAX_LIST) return -1;
    for (int64_t k = 0; k < cnt; k++) tgt[k] = (KnDim){s[k], NULL};
    return (int)cnt;
  }
  return ir_input_dims(n, 1, tgt, IA_MAX_LIST);
}

/* Reshape: target from attribute or input, with 0 (copy) and -1 (infer) entries. */
KnStatus infer_reshape(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st && ir_input(node, 1)) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  KnDim tgt[IA_MAX_LIST];
  int cnt = reshape_target(node, tgt);
  KnDtype dt = in_dtype(node, 0);
  if (cnt < 0) {
    int len = static_len(node, 1);
    return len < 0 ? set_unknown_rank(node, 0, dt, err) : set_unknown_dims(node, 0, dt, len, err);
  }
  KnDim *out = ia_dims(node, cnt);
  if (!out) return ia_nomem(err);
  st = reshape_dims(node, in_shape(node, 0), tgt, cnt, out, err);
  if (!st) st = ir_set_output(node, 0, dt, cnt, out, err);
  if (!st) st = keep_sym_data(node, err);
  return st;
}

static KnDim dims_product(const KnDim *d, int from, int to) {
  KnDim p = IR_DIM(1);
  for (int i = from; i < to; i++) p = ir_dim_mul(p, d[i]);
  return p;
}

/* Flatten: [prod(dims before axis), prod(dims from axis)]. */
KnStatus infer_flatten(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  if (s->rank < 0) return set_unknown_dims(node, 0, in_dtype(node, 0), 2, err);
  int64_t axis = ir_attr_int(node, "axis", 1);
  if (axis < -(int64_t)s->rank || axis > s->rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "axis %lld is out of range for rank %d",
                         (long long)axis, s->rank);
  int a = (int)(axis < 0 ? axis + s->rank : axis);
  KnDim out[2] = {dims_product(s->dims, 0, a), dims_product(s->dims, a, s->rank)};
  return ir_set_output(node, 0, in_dtype(node, 0), 2, out, err);
}

/* Squeeze with no axes drops every dim of 1; false when a dim is not concrete (then even the
 * output rank is unknown). */
static bool squeeze_all(const KnShape *s, bool *mask) {
  for (int i = 0; i < s->rank; i++) {
    if (s->dims[i].value < 0) return false;
    mask[i] = s->dims[i].value == 1;
  }
  return true;
}

/* Squeeze: removes the listed dims of size 1 (attribute before opset 13, input after). */
KnStatus infer_squeeze(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  int64_t axes[IA_MAX_LIST];
  int cnt = ia_ints_attr_or_input(node, "axes", 1, 13, axes, IA_MAX_LIST);
  if (s->rank < 0 || cnt == IA_UNKNOWN) return set_unknown_rank(node, 0, in_dtype(node, 0), err);
  bool *mask = ir_arena_calloc(node->graph->arena, (size_t)s->rank + 1, sizeof *mask);
  KnDim *out = ia_dims(node, s->rank);
  if (!mask || !out) return ia_nomem(err);
  if (cnt <= 0 && !squeeze_all(s, mask)) return set_unknown_rank(node, 0, in_dtype(node, 0), err);
  if (cnt > 0 && (st = ia_axes_mask(node, axes, cnt, s->rank, mask, err))) return st;
  int r = 0;
  for (int i = 0; i < s->rank; i++) {
    if (mask[i] && s->dims[i].value >= 0 && s->dims[i].value != 1)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "cannot squeeze axis %d of size %lld", i,
                           (long long)s->dims[i].value);
    if (!mask[i]) out[r++] = s->dims[i];
  }
  st = ir_set_output(node, 0, in_dtype(node, 0), r, out, err);
  return st ? st : keep_sym_data(node, err);
}

/* Unsqueeze: inserts dims of 1 at the listed positions of the output. */
KnStatus infer_unsqueeze(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 0);
  int64_t axes[IA_MAX_LIST];
  int cnt = ia_ints_attr_or_input(node, "axes", 1, 13, axes, IA_MAX_LIST);
  if (cnt == IA_ABSENT) return ir_infer_fail(err, node, KN_ERR_INVALID, "axes are missing");
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  if (cnt == IA_UNKNOWN) {
    int len = static_len(node, 1);
    return len < 0 ? set_unknown_rank(node, 0, dt, err) : set_unknown_dims(node, 0, dt, s->rank + len, err);
  }
  int rank = s->rank + cnt;
  bool *mask = ir_arena_calloc(node->graph->arena, (size_t)rank + 1, sizeof *mask);
  KnDim *out = ia_dims(node, rank);
  if (!mask || !out) return ia_nomem(err);
  if ((st = ia_axes_mask(node, axes, cnt, rank, mask, err))) return st;
  for (int i = 0, j = 0; i < rank; i++) out[i] = mask[i] ? IR_DIM(1) : s->dims[j++];
  st = ir_set_output(node, 0, dt, rank, out, err);
  return st ? st : keep_sym_data(node, err);
}

/* Transpose: output dim i is input dim perm[i] (default: reversed). */
KnStatus infer_transpose(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  int64_t cnt;
  const int64_t *perm = ir_attr_ints(node, "perm", &cnt);
  KnDtype dt = in_dtype(node, 0);
  if (s->rank < 0)
    return perm && cnt <= IA_MAX_LIST ? set_unknown_dims(node, 0, dt, (int)cnt, err)
                                      : set_unknown_rank(node, 0, dt, err);
  if (perm && cnt != s->rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "perm has %lld entries, expected %d (the rank)",
                         (long long)cnt, s->rank);
  bool *seen = ir_arena_calloc(node->graph->arena, (size_t)s->rank + 1, sizeof *seen);
  KnDim *out = ia_dims(node, s->rank);
  if (!seen || !out) return ia_nomem(err);
  for (int i = 0; i < s->rank; i++) {
    int64_t p = perm ? perm[i] : s->rank - 1 - i;
    if (p < 0 || p >= s->rank || seen[p])
      return ir_infer_fail(err, node, KN_ERR_INVALID, "perm is not a permutation of 0..%d",
                           s->rank - 1);
    seen[p] = true;
    out[i] = s->dims[p];
  }
  st = ir_set_output(node, 0, dt, s->rank, out, err);
  return st ? st : keep_sym_data(node, err);
}

/* ---- Concat, Split ----------------------------------------------------------------------------- */

/* Concat's known contents: every input's, one after another. */
static KnStatus concat_sym_data(KnNode *n, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  int len = 0;
  KnValue *o = n->outputs[0];
  if (!o || o->type.shape.rank != 1 || !(ir_dtype_is_int(o->type.dtype) || o->type.dtype == KN_BOOL))
    return KN_OK;
  for (int i = 0; i < n->n_inputs; i++) {
    int m = ir_input_dims(n, i, e + len, IR_SYM_DATA_MAX - len);
    if (m < 0) return KN_OK;
    len += m;
  }
  return ir_set_sym_data(n, 0, e, len, err);
}

/* The rank all of Concat's inputs share (-1 if none is known); fails on a mismatch. */
static KnStatus concat_rank(const KnNode *n, int *rank, KnError *err) {
  *rank = -1;
  for (int i = 0; i < n->n_inputs; i++) {
    KnStatus st = ir_require_tensor(n, i, err);
    if (!st && i > 0) st = ia_same_dtype(n, 0, i, err);
    if (st) return st;
    int r = in_shape(n, i)->rank;
    if (r >= 0 && *rank >= 0 && r != *rank)
      return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d has rank %d, expected %d like the "
                           "inputs before it", i, r, *rank);
    if (r >= 0) *rank = r;
  }
  return KN_OK;
}

/* Concat: dims agree except along axis, where they add up. */
KnStatus infer_concat(KnNode *node, KnError *err) {
  int rank, axis;
  KnStatus st = concat_rank(node, &rank, err);
  if (st) return st;
  KnDtype dt = in_dtype(node, 0);
  const KnAttr *a = ir_attr(node, "axis");
  if (!a && node->opset >= 4) return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute 'axis' is missing");
  if (rank < 0) return set_unknown_rank(node, 0, dt, err);
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 1), rank, &axis, err))) return st;
  KnDim *out = ia_dims(node, rank);
  if (!out) return ia_nomem(err);
  out[axis] = IR_DIM(0);
  for (int i = 0; i < node->n_inputs; i++) {
    const KnShape *s = in_shape(node, i);
    if (s->rank < 0) {
      out[axis] = IR_DIM_UNKNOWN;
      continue;
    }
    for (int d = 0; d < rank && !st; d++)
      if (d != axis) st = merge_dim(node, out[d], s->dims[d], &out[d], d, err);
    if (st) return st;
    out[axis] = ir_dim_add(out[axis], s->dims[axis]); /* unknown + 0 stays unknown */
  }
  st = ir_set_output(node, 0, dt, rank, out, err);
  return st ? st : concat_sym_data(node, err);
}

/* The size of each of Split's n outputs along a dim of size d (sizes[k], or equal parts). */
static KnStatus split_sizes(const KnNode *n, KnDim d, KnDim *sizes, KnError *err) {
  int64_t split[IA_MAX_LIST];
  int outs = n->n_outputs;
  int cnt = ia_ints_attr_or_input(n, "split", 1, 13, split, IA_MAX_LIST);
  if (cnt >= 0 && cnt != outs)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "split has %d entries, expected %d (one per output)",
                         cnt, outs);
  int64_t sum = 0;
  for (int k = 0; k < outs; k++) {
    if (cnt < 0) {
      if (d.value >= 0 && d.value % outs != 0)
        return ir_infer_fail(err, n, KN_ERR_INVALID, "dim of size %lld does not split evenly into "
                             "%d outputs", (long long)d.value, outs);
      sizes[k] = cnt == IA_UNKNOWN ? IR_DIM_UNKNOWN : d.value >= 0 ? IR_DIM(d.value / outs)
                                   : outs == 1 ? d : IR_DIM_UNKNOWN;
      continue;
    }
    if (split[k] < 0 || ir_add_overflows(sum, split[k], &sum))
      return ir_infer_fail(err, n, KN_ERR_INVALID, "split entry %d is %lld, expected >= 0", k,
                           (long long)split[k]);
    sizes[k] = IR_DIM(split[k]);
  }
  if (cnt >= 0 && d.value >= 0 && sum != d.value)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "split sizes add up to %lld, expected %lld",
                         (long long)sum, (long long)d.value);
  return KN_OK;
}

/* Each 1-D Split output keeps its part of the input's known contents. */
static KnStatus split_sym_data(KnNode *n, const KnDim *sizes, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX), at = 0;
  if (len < 0 || in_shape(n, 0)->rank != 1) return KN_OK;
  for (int k = 0; k < n->n_outputs; k++) {
    if (sizes[k].value < 0 || sizes[k].value > len - at) return KN_OK;
    KnStatus st = ir_set_sym_data(n, k, e + at, (int)sizes[k].value, err);
    if (st) return st;
    at += (int)sizes[k].value;
  }
  return KN_OK;
}

/* Split: input dims, with the split axis divided among the outputs. */
KnStatus infer_split(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 0);
  int axis;
  if (s->rank < 0) {
    for (int k = 0; k < node->n_outputs && !st; k++) st = set_unknown_rank(node, k, dt, err);
    return st;
  }
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), s->rank, &axis, err))) return st;
  KnDim *sizes = ia_dims(node, node->n_outputs);
  KnDim *out = ia_dims(node, s->rank);
  if (!sizes || !out) return ia_nomem(err);
  if ((st = split_sizes(node, s->dims[axis], sizes, err))) return st;
  memcpy(out, s->dims, (size_t)s->rank * sizeof *out);
  for (int k = 0; k < node->n_outputs && !st; k++) {
    out[axis] = sizes[k];
    st = ir_set_output(node, k, dt, s->rank, out, err);
  }
  return st ? st : split_sym_data(node, sizes, err);
}

/* ---- Slice ------------------------------------------------------------------------------------- */

typedef struct SliceArgs {
  int64_t starts[IA_MAX_LIST], ends[IA_MAX_LIST], axes[IA_MAX_LIST], steps[IA_MAX_LIST];
  int n_axes;  /* entries in axes; -1 when not known (then any dim may change) */
  bool known;  /* starts, ends and steps are known (n_axes entries each) */
} SliceArgs;

/* The axes Slice touches: given, or 0..len-1 for as many as starts has. */
static int slice_axes(const KnNode *n, SliceArgs *a, int na, int ns, int ne) {
  if (na != IA_ABSENT) return na;
  int len = ns >= 0 ? ns : ne >= 0 ? ne : static_len(n, 1);
  for (int k = 0; k < len; k++) a->axes[k] = k;
  return len;
}

/* Reads starts/ends/axes/steps: attributes in opset 1, inputs 1..4 from opset 10. */
static KnStatus slice_args(const KnNode *n, SliceArgs *a, KnError *err) {
  int ns = ia_ints_attr_or_input(n, "starts", 1, 10, a->starts, IA_MAX_LIST);
  int ne = ia_ints_attr_or_input(n, "ends", 2, 10, a->ends, IA_MAX_LIST);
  int na = ia_ints_attr_or_input(n, "axes", 3, 10, a->axes, IA_MAX_LIST);
  int nst = ir_input(n, 4) ? ir_input_ints(n, 4, a->steps, IA_MAX_LIST) : IA_ABSENT;
  if (ns == IA_ABSENT || ne == IA_ABSENT)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "starts and ends are required");
  a->known = ns >= 0 && ne >= 0 && nst != IA_UNKNOWN;
  a->n_axes = slice_axes(n, a, na, ns, ne);
  if (!a->known || a->n_axes < 0) return KN_OK;
  if (ne != ns || a->n_axes != ns || (nst >= 0 && nst != ns))
    return ir_infer_fail(err, n, KN_ERR_INVALID, "starts, ends, axes and steps differ in length");
  for (int k = 0; k < ns; k++) {
    if (nst < 0) a->steps[k] = 1;
    if (a->steps[k] == 0) return ir_infer_fail(err, n, KN_ERR_INVALID, "step %d is 0", k);
  }
  return KN_OK;
}

/* Clamps start and end into a dim of size d as ONNX does for the step's direction. */
static void slice_clamp(int64_t d, int64_t step, int64_t *start, int64_t *end) {
  int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? d : d - 1;
  if (*start < 0) *start += d;
  if (*end < 0) *end += d;
  *start = *start < 0 ? 0 : *start > hi ? hi : *start;
  *end = *end < lo ? lo : *end > hi ? hi : *end;
}

/* Elements selected along a dim of size d. */
static int64_t slice_count(int64_t d, int64_t start, int64_t end, int64_t step) {
  if (d == 0) return 0;
  slice_clamp(d, step, &start, &end);
  int64_t span = step > 0 ? end - start : start - end;
  uint64_t mag = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
  return span <= 0 ? 0 : (int64_t)((uint64_t)(span - 1) / mag + 1);
}

/* A dim that is not concrete survives a slice that takes all of it: step 1 from 0 to "the end"
 * (exporters write INT64_MAX or INT32_MAX), or step -1 from the last element past the first. */
static KnDim slice_dim(KnDim d, int64_t start, int64_t end, int64_t step) {
  if (d.value >= 0) return IR_DIM(slice_count(d.value, start, end, step));
  if (step == 1 && start == 0 && end >= INT32_MAX) return d;
  if (step == -1 && (start == -1 || start >= INT32_MAX) && end <= -(int64_t)INT32_MAX) return d;
  return IR_DIM_UNKNOWN;
}

/* Slicing a 1-D tensor with known contents selects those entries. */
static KnStatus slice_sym_data(KnNode *n, const SliceArgs *a, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX], out[IR_SYM_DATA_MAX];
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX), cnt = 0;
  if (len < 0 || !a->known || a->n_axes != 1 || in_shape(n, 0)->rank != 1) return KN_OK;
  int64_t start = a->starts[0], end = a->ends[0], step = a->steps[0];
  slice_clamp(len, step, &start, &end);
  for (int64_t i = start; (step > 0 ? i < end : i > end) && cnt < IR_SYM_DATA_MAX; i += step) {
    out[cnt++] = e[i];
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return ir_set_sym_data(n, 0, out, cnt, err);
}

/* Slice: each listed axis keeps the elements start, start+step, ... before end. */
KnStatus infer_slice(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  SliceArgs *a = ir_arena_alloc(node->graph->arena, sizeof *a);
  if (!a) return ia_nomem(err);
  if ((st = slice_args(node, a, err))) return st;
  KnDtype dt = in_dtype(node, 0);
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  if (a->n_axes < 0) return set_unknown_dims(node, 0, dt, s->rank, err);
  bool *mask = ir_arena_calloc(node->graph->arena, (size_t)s->rank + 1, sizeof *mask);
  KnDim *out = ia_dims(node, s->rank);
  if (!mask || !out) return ia_nomem(err);
  if ((st = ia_axes_mask(node, a->axes, a->n_axes, s->rank, mask, err))) return st;
  if (s->rank > 0) memcpy(out, s->dims, (size_t)s->rank * sizeof *out); /* dims NULL at rank 0 */
  for (int k = 0; k < a->n_axes; k++) {
    int ax = (int)(a->axes[k] < 0 ? a->axes[k] + s->rank : a->axes[k]);
    out[ax] = a->known ? slice_dim(s->dims[ax], a->starts[k], a->ends[k], a->steps[k])
                       : IR_DIM_UNKNOWN;
  }
  st = ir_set_output(node, 0, dt, s->rank, out, err);
  return st ? st : slice_sym_data(node, a, err);
}

/* ---- Gather family ----------------------------------------------------------------------------- */

/* Gather on a vector with known contents and known indices picks those entries. */
static KnStatus gather_sym_data(KnNode *n, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX], out[IR_SYM_DATA_MAX];
  int64_t idx[IR_SYM_DATA_MAX];
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX);
  int cnt = len < 0 ? -1 : ir_input_ints(n, 1, idx, IR_SYM_DATA_MAX);
  if (cnt < 0 || in_shape(n, 0)->rank != 1 || in_shape(n, 1)->rank > 1) return KN_OK;
  for (int k = 0; k < cnt; k++) {
    if (idx[k] < -(int64_t)len || idx[k] >= len)
      return ir_infer_fail(err, n, KN_ERR_INVALID, "index %lld is out of range for %d entries",
                           (long long)idx[k], len);
    out[k] = e[idx[k] < 0 ? idx[k] + len : idx[k]];
  }
  return ir_set_sym_data(n, 0, out, cnt, err);
}

/* Gather: data dims before axis, then the indices' dims, then data dims after axis. */
KnStatus infer_gather(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  const KnShape *d = in_shape(node, 0), *q = in_shape(node, 1);
  KnDtype dt = in_dtype(node, 0);
  if (d->rank < 0 || q->rank < 0) return set_unknown_rank(node, 0, dt, err);
  int axis;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), d->rank, &axis, err))) return st;
  int rank = d->rank - 1 + q->rank;
  KnDim *out = ia_dims(node, rank);
  if (!out) return ia_nomem(err);
  memcpy(out, d->dims, (size_t)axis * sizeof *out);
  if (q->rank) memcpy(out + axis, q->dims, (size_t)q->rank * sizeof *out);
  memcpy(out + axis + q->rank, d->dims + axis + 1, (size_t)(d->rank - axis - 1) * sizeof *out);
  st = ir_set_output(node, 0, dt, rank, out, err);
  return st ? st : gather_sym_data(node, err);
}

/* GatherElements: the indices' shape, the data's dtype. */
KnStatus infer_gather_elements(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  const KnShape *d = in_shape(node, 0), *q = in_shape(node, 1);
  if (d->rank >= 0 && q->rank >= 0 && d->rank != q->rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "indices have rank %d, expected %d (the data's)",
                         q->rank, d->rank);
  int axis;
  if (d->rank > 0 && (st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), d->rank, &axis, err)))
    return st;
  return ir_set_output(node, 0, in_dtype(node, 0), q->rank, q->dims, err);
}

/* GatherND: indices' dims but the last, then the data dims its tuples do not address. */
KnStatus infer_gather_nd(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  const KnShape *d = in_shape(node, 0), *q = in_shape(node, 1);
  KnDtype dt = in_dtype(node, 0);
  int64_t b = ir_attr_int(node, "batch_dims", 0);
  if (d->rank < 0 || q->rank < 0 || (q->rank > 0 && q->dims[q->rank - 1].value < 0))
    return set_unknown_rank(node, 0, dt, err);
  int64_t last = q->rank ? q->dims[q->rank - 1].value : -1;
  if (q->rank < 1 || b < 0 || b >= q->rank || b >= d->rank || last > d->rank - b)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "indices of rank %d with last dim %lld and "
                         "batch_dims %lld do not fit data of rank %d", q->rank, (long long)last,
                         (long long)b, d->rank);
  int tail = (int)(d->rank - b - last), rank = q->rank - 1 + tail;
  KnDim *out = ia_dims(node, rank);
  if (!out) return ia_nomem(err);
  if (q->rank > 1) memcpy(out, q->dims, (size_t)(q->rank - 1) * sizeof *out);
  if (tail) memcpy(out + q->rank - 1, d->dims + b + last, (size_t)tail * sizeof *out);
  return ir_set_output(node, 0, dt, rank, out, err);
}

/* ---- Expand, Tile, Pad ------------------------------------------------------------------------- */

/* Expanding a scalar or one-entry vector with known contents (torch builds ones this way)
 * repeats the entry. */
static KnStatus expand_sym_data(KnNode *n, const KnShape *out, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX);
  int64_t want = out->rank == 0 ? 1 : out->rank == 1 ? out->dims[0].value : -1;
  if (len < 0 || want < 0 || want > IR_SYM_DATA_MAX || (len != 1 && len != want)) return KN_OK;
  for (int64_t k = len; k < want; k++) e[k] = e[0];
  return ir_set_sym_data(n, 0, e, (int)want, err);
}

/* Expand: the input broadcast against the shape input (whose entries may be symbolic). */
KnStatus infer_expand(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  KnDim tgt[IA_MAX_LIST];
  int cnt = ir_input_dims(node, 1, tgt, IA_MAX_LIST);
  KnDtype dt = in_dtype(node, 0);
  if (cnt >= 0) {
    for (int k = 0; k < cnt; k++) tgt[k] = ir_sym_to_dim(tgt[k]);
  } else {
    if ((cnt = static_len(node, 1)) < 0) return set_unknown_rank(node, 0, dt, err);
    for (int k = 0; k < cnt; k++) tgt[k] = IR_DIM_UNKNOWN;
  }
  KnShape want = {cnt, tgt}, out;
  if ((st = ir_broadcast(node, in_shape(node, 0), &want, &out, err))) return st;
  st = ir_set_output(node, 0, dt, out.rank, out.dims, err);
  return st ? st : expand_sym_data(node, &out, err);
}

/* Tile-1 repeats one axis (inputs tiles and axis); later opsets take a repeat per dim. */
static int tile_repeats(const KnNode *n, int rank, KnDim *rep) {
  if (n->opset >= 6) return ir_input_dims(n, 1, rep, IA_MAX_LIST);
  int64_t tiles, axis;
  if (ir_input_ints(n, 1, &tiles, 1) != 1 || ir_input_ints(n, 2, &axis, 1) != 1 || rank < 0 ||
      axis < -(int64_t)rank || axis >= rank)
    return -1;
  for (int k = 0; k < rank && k < IA_MAX_LIST; k++) rep[k] = (KnDim){1, NULL};
  rep[axis < 0 ? axis + rank : axis] = (KnDim){tiles, NULL};
  return rank;
}

/* Tile: each dim times its repeat count. */
KnStatus infer_tile(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 0);
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  KnDim rep[IA_MAX_LIST];
  int cnt = s->rank <= IA_MAX_LIST ? tile_repeats(node, s->rank, rep) : -1;
  if (cnt < 0) return set_unknown_dims(node, 0, dt, s->rank, err);
  if (cnt != s->rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "repeats has %d entries, expected %d (the rank)",
                         cnt, s->rank);
  KnDim *out = ia_dims(node, s->rank);
  if (!out) return ia_nomem(err);
  for (int k = 0; k < cnt; k++) {
    if (!rep[k].sym && rep[k].value < 0)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "repeat %d is %lld, expected >= 0", k,
                           (long long)rep[k].value);
    out[k] = ir_dim_mul(s->dims[k], ir_sym_to_dim(rep[k]));
  }
  return ir_set_output(node, 0, dt, s->rank, out, err);
}

/* The pads list: attribute paddings (opset 1), pads (2..10), input 1 (11+). */
static int pad_list(const KnNode *n, KnDim *pads) {
  if (n->opset >= 11 || ir_input(n, 1)) return ir_input_dims(n, 1, pads, IA_MAX_LIST);
  int64_t cnt;
  const int64_t *p = ir_attr_ints(n, n->opset < 2 ? "paddings" : "pads", &cnt);
  if (!p) p = ir_attr_ints(n, "pads", &cnt);
  if (!p || cnt > IA_MAX_LIST) return -1;
  for (int64_t k = 0; k < cnt; k++) pads[k] = (KnDim){p[k], NULL};
  return (int)cnt;
}

/* A dim grown by known pads before and after (pads may be negative: cropping). */
static KnStatus pad_dim(const KnNode *n, int k, KnDim d, KnDim before, KnDim after, KnDim *out,
                        KnError *err) {
  int64_t sum;
  *out = IR_DIM_UNKNOWN;
  if (before.sym || after.sym || __builtin_add_overflow(before.value, after.value, &sum)) return KN_OK;
  if (sum == 0) return *out = d, KN_OK;
  if (d.value < 0) return KN_OK;
  if (__builtin_add_overflow(d.value, sum, &sum) || sum < 0)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "pads make dim %d negative", k);
  return *out = IR_DIM(sum), KN_OK;
}

/* Pad: dim i grows by pads[i] before and pads[i + rank] after. */
KnStatus infer_pad(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ip_check_numel(node, 2, "constant_value", 1, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 0);
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  KnDim pads[IA_MAX_LIST];
  int cnt = s->rank <= IA_MAX_LIST / 2 ? pad_list(node, pads) : -1;
  if (cnt < 0) return set_unknown_dims(node, 0, dt, s->rank, err);
  if (cnt != 2 * s->rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "pads has %d entries, expected %d (twice the "
                         "rank)", cnt, 2 * s->rank);
  KnDim *out = ia_dims(node, s->rank);
  if (!out) return ia_nomem(err);
  for (int k = 0; k < s->rank && !st; k++)
    st = pad_dim(node, k, s->dims[k], pads[k], pads[k + s->rank], &out[k], err);
  return st ? st : ir_set_output(node, 0, dt, s->rank, out, err);
}

/* ---- creating tensors: ConstantOfShape, Constant, Range, EyeLike, OneHot --------------------- */

/* A small integer ConstantOfShape is a shape computation too (torch makes ones this way). */
static KnStatus fill_sym_data(KnNode *n, const KnTensor *value, const KnDim *dims, int rank,
                              KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  int64_t len = rank ? dims[0].value : 1;
  if (rank > 1 || len < 0 || len > IR_SYM_DATA_MAX ||
      !(ir_dtype_is_int(value->dtype) || value->dtype == KN_BOOL) || value->numel != 1)
    return KN_OK;
  for (int64_t k = 0; k < len; k++) e[k] = (KnDim){ir_tensor_get_int(value, 0), NULL};
  return ir_set_sym_data(n, 0, e, (int)len, err);
}

/* ConstantOfShape: shape from input 0, dtype of the value attribute (default f32 zero). */
KnStatus infer_constant_of_shape(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnAttr *v = ir_attr(node, "value");
  const KnTensor *value = v && v->kind == KN_ATTR_TENSOR ? v->t : NULL;
  KnDtype dt = value ? value->dtype : KN_F32;
  KnDim shape[IA_MAX_LIST];
  int cnt = ir_input_dims(node, 0, shape, IA_MAX_LIST);
  if (cnt < 0) {
    cnt = static_len(node, 0);
    return cnt < 0 ? set_unknown_rank(node, 0, dt, err) : set_unknown_dims(node, 0, dt, cnt, err);
  }
  for (int k = 0; k < cnt; k++) {
    if (!shape[k].sym && shape[k].value < 0)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "shape entry %d is %lld, expected >= 0", k,
                           (long long)shape[k].value);
    shape[k] = ir_sym_to_dim(shape[k]);
  }
  st = ir_set_output(node, 0, dt, cnt, shape, err);
  return st || !value ? st : fill_sym_data(node, value, shape, cnt, err);
}

/* Constant's output for a tensor attribute: its type, and its contents when small and integer. */
static KnStatus constant_tensor(KnNode *n, const KnTensor *t, KnError *err) {
  KnDim *dims = ia_dims(n, t->rank);
  if (!dims) return ia_nomem(err);
  for (int k = 0; k < t->rank; k++) dims[k] = IR_DIM(t->dims[k]);
  KnStatus st = ir_set_output(n, 0, t->dtype, t->rank, dims, err);
  if (st || t->rank > 1 || t->numel > IR_SYM_DATA_MAX ||
      !(ir_dtype_is_int(t->dtype) || t->dtype == KN_BOOL))
    return st;
  KnDim e[IR_SYM_DATA_MAX];
  for (int64_t k = 0; k < t->numel; k++) e[k] = (KnDim){ir_tensor_get_int(t, k), NULL};
  return ir_set_sym_data(n, 0, e, (int)t->numel, err);
}

/* Constant's list attributes: value_ints keeps its contents for shape computations. */
static KnStatus constant_list(KnNode *n, const KnAttr *a, KnDtype dt, bool scalar, KnError *err) {
  KnDim len = IR_DIM(a->n);
  KnStatus st = ir_set_output(n, 0, dt, scalar ? 0 : 1, &len, err);
  if (st || dt != KN_I64 || (!scalar && a->n > IR_SYM_DATA_MAX)) return st;
  if (scalar) return ir_set_sym_data(n, 0, &(KnDim){a->i, NULL}, 1, err);
  KnDim e[IR_SYM_DATA_MAX];
  for (int64_t k = 0; k < a->n; k++) e[k] = (KnDim){a->ints[k], NULL};
  return ir_set_sym_data(n, 0, e, (int)a->n, err);
}

/* Constant: the type of whichever value attribute it has. */
KnStatus infer_constant(KnNode *node, KnError *err) {
  for (int i = 0; i < node->n_attrs; i++) {
    const KnAttr *a = &node->attrs[i];
    const char *name = a->name;
    if (strcmp(name, "value") == 0 && a->kind == KN_ATTR_TENSOR) return constant_tensor(node, a->t, err);
    if (strcmp(name, "sparse_value") == 0 && a->kind == KN_ATTR_SPARSE_TENSOR) {
      if (!a->sp || !a->sp->values || a->sp->rank < 0)
        return ir_infer_fail(err, node, KN_ERR_INVALID, "sparse_value has no values");
      KnDim *dims = ia_dims(node, a->sp->rank);
      if (!dims) return ia_nomem(err);
      for (int k = 0; k < a->sp->rank; k++) dims[k] = IR_DIM(a->sp->dims[k]);
      return ir_set_output(node, 0, a->sp->values->dtype, a->sp->rank, dims, err);
    }
    if (strcmp(name, "value_float") == 0 && a->kind == KN_ATTR_FLOAT) return constant_list(node, a, KN_F32, true, err);
    if (strcmp(name, "value_floats") == 0 && a->kind == KN_ATTR_FLOATS) return constant_list(node, a, KN_F32, false, err);
    if (strcmp(name, "value_int") == 0 && a->kind == KN_ATTR_INT) return constant_list(node, a, KN_I64, true, err);
    if (strcmp(name, "value_ints") == 0 && a->kind == KN_ATTR_INTS) return constant_list(node, a, KN_I64, false, err);
    if (strcmp(name, "value_string") == 0 && a->kind == KN_ATTR_STRING) return constant_list(node, a, KN_STRING, true, err);
    if (strcmp(name, "value_strings") == 0 && a->kind == KN_ATTR_STRINGS) return constant_list(node, a, KN_STRING, false, err);
  }
  return ir_infer_fail(err, node, KN_ERR_INVALID, "has no value attribute (value, value_float(s), "
                       "value_int(s), value_string(s) or sparse_value)");
}

/* Range's length when start, limit and delta are known: max(ceil((limit - start) / delta), 0). */
static KnStatus range_count(const KnNode *n, KnDim *len, int64_t *start, int64_t *delta,
                            KnError *err) {
  double s, l, d;
  KnDim lim;
  *len = IR_DIM_UNKNOWN;
  bool ints = ir_input_ints(n, 0, start, 1) == 1 && ir_input_ints(n, 2, delta, 1) == 1;
  /* arange(n) over a symbolic n: start 0, delta 1, limit n. */
  if (ints && *start == 0 && *delta == 1 && ir_input_dims(n, 1, &lim, 1) == 1 && lim.sym)
    return *len = ir_sym_to_dim(lim), KN_OK;
  if (!ia_input_scalar(n, 0, &s) || !ia_input_scalar(n, 1, &l) || !ia_input_scalar(n, 2, &d))
    return KN_OK;
  if (d == 0 || d != d) return ir_infer_fail(err, n, KN_ERR_INVALID, "delta is %g, expected nonzero", d);
  double c = ceil((l - s) / d);
  if (!(c < 9.0e18)) return KN_OK; /* NaN or too large to be a dim */
  *len = IR_DIM(c > 0 ? (int64_t)c : 0);
  return KN_OK;
}

/* Range: a 1-D tensor of start's dtype; length known when the inputs are. */
KnStatus infer_range(KnNode *node, KnError *err) {
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ir_require_tensor(node, i, err);
  if (!st) st = ia_same_dtype(node, 0, 1, err);
  if (!st) st = ia_same_dtype(node, 0, 2, err);
  KnDim len;
  int64_t start = 0, delta = 0;
  if (!st) st = range_count(node, &len, &start, &delta, err);
  if (!st) st = ir_set_output(node, 0, in_dtype(node, 0), 1, &len, err);
  if (st || len.value < 0 || len.value > IR_SYM_DATA_MAX || !ir_dtype_is_int(in_dtype(node, 0)) ||
      ir_input_ints(node, 0, &start, 1) != 1 || ir_input_ints(node, 2, &delta, 1) != 1)
    return st;
  KnDim e[IR_SYM_DATA_MAX];
  for (int64_t k = 0; k < len.value; k++) e[k] = (KnDim){start + k * delta, NULL};
  return ir_set_sym_data(node, 0, e, (int)len.value, err);
}

/* EyeLike: the input's 2-D shape; dtype attribute or the input's. */
KnStatus infer_eye_like(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  if (s->rank >= 0 && s->rank != 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input has rank %d, expected 2", s->rank);
  int64_t dt = ir_attr_int(node, "dtype", in_dtype(node, 0));
  if (dt <= 0 || dt >= INT32_MAX || !ir_dtype_is_known((int)dt))
    return ir_infer_fail(err, node, KN_ERR_UNSUPPORTED, "dtype %lld is not one kiln knows", (long long)dt);
  return ia_like_input(node, 0, (KnDtype)dt, err);
}

/* OneHot: the indices' dims with a new dim of size depth at axis; values' dtype. */
KnStatus infer_one_hot(KnNode *node, KnError *err) {
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ir_require_tensor(node, i, err);
  /* The lowering reads values[0] (off) and values[1] (on). */
  KnDim two = IR_DIM(2);
  if (!st) st = ip_check_numel(node, 1, "depth", 1, err);
  if (!st) st = ip_check_shape(node, 2, "values", 1, &two, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 2);
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  int rank = s->rank + 1, axis;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", -1), rank, &axis, err))) return st;
  KnDim *out = ia_dims(node, rank);
  double depth;
  if (!out) return ia_nomem(err);
  if (ia_input_scalar(node, 1, &depth)) {
    if (!(depth >= 1 && depth < 9.0e18))
      return ir_infer_fail(err, node, KN_ERR_INVALID, "depth is %g, expected >= 1", depth);
    out[axis] = IR_DIM((int64_t)depth);
  }
  for (int i = 0, j = 0; i < rank; i++)
    if (i != axis) out[i] = s->dims[j++];
  return ir_set_output(node, 0, dt, rank, out, err);
}

/* ---- DepthToSpace, SpaceToDepth ---------------------------------------------------------------- */

/* d divided by q: unknown if d is not concrete, an error if it does not divide. */
static KnStatus div_dim(const KnNode *n, KnDim d, int64_t q, const char *what, KnDim *out,
                        KnError *err) {
  *out = IR_DIM_UNKNOWN;
  if (d.value < 0) return KN_OK;
  if (d.value % q != 0)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s is %lld, expected a multiple of %lld", what,
                         (long long)d.value, (long long)q);
  return *out = IR_DIM(d.value / q), KN_OK;
}

/* Shared by both: NCHW input and a positive blocksize. */
static KnStatus block_args(const KnNode *n, const KnShape **s, int64_t *b, KnError *err) {
  KnStatus st = ir_require_tensor(n, 0, err);
  if (st) return st;
  *s = in_shape(n, 0);
  *b = ir_attr_int(n, "blocksize", 0);
  if (*b <= 0 || *b > INT32_MAX)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "blocksize is %lld, expected 1 to %d",
                         (long long)*b, INT32_MAX);
  if ((*s)->rank >= 0 && (*s)->rank != 4)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input has rank %d, expected 4 (NCHW)", (*s)->rank);
  return KN_OK;
}

/* DepthToSpace: [N, C / b^2, H * b, W * b]. */
KnStatus infer_depth_to_space(KnNode *node, KnError *err) {
  const KnShape *s;
  int64_t b;
  KnStatus st = block_args(node, &s, &b, err);
  if (st) return st;
  if (s->rank < 0) return set_unknown_dims(node, 0, in_dtype(node, 0), 4, err);
  KnDim out[4] = {s->dims[0], IR_DIM_UNKNOWN, ir_dim_mul(s->dims[2], IR_DIM(b)),
                  ir_dim_mul(s->dims[3], IR_DIM(b))};
  if ((st = div_dim(node, s->dims[1], b * b, "the channel count", &out[1], err))) return st;
  return ir_set_output(node, 0, in_dtype(node, 0), 4, out, err);
}

/* SpaceToDepth: [N, C * b^2, H / b, W / b]. */
KnStatus infer_space_to_depth(KnNode *node, KnError *err) {
  const KnShape *s;
  int64_t b;
  KnStatus st = block_args(node, &s, &b, err);
  if (st) return st;
  if (s->rank < 0) return set_unknown_dims(node, 0, in_dtype(node, 0), 4, err);
  KnDim out[4] = {s->dims[0], ir_dim_mul(s->dims[1], IR_DIM(b * b)), IR_DIM_UNKNOWN, IR_DIM_UNKNOWN};
  if ((st = div_dim(node, s->dims[2], b, "the height", &out[2], err))) return st;
  if ((st = div_dim(node, s->dims[3], b, "the width", &out[3], err))) return st;
  return ir_set_output(node, 0, in_dtype(node, 0), 4, out, err);
}

/* ---- data-dependent outputs: Compress, NonZero ------------------------------------------------- */

/* Nonzero elements of constant input i (the first limit of them), or unknown. */
static KnDim count_nonzero(const KnNode *n, int i, int64_t limit) {
  const KnTensor *t = ia_const_tensor(n, i);
  if (!t || t->dtype == KN_STRING) return IR_DIM_UNKNOWN;
  int64_t cnt = 0;
  for (int64_t k = 0; k < t->numel && k < limit; k++) cnt += ir_tensor_get_double(t, k) != 0.0;
  return IR_DIM(cnt);
}

/* Compress: the elements (or slices along axis) whose condition is true. */
KnStatus infer_compress(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDtype dt = in_dtype(node, 0);
  if (!ir_attr(node, "axis")) {
    KnDim len = count_nonzero(node, 1, INT64_MAX);
    return ir_set_output(node, 0, dt, 1, &len, err);
  }
  if (s->rank < 0) return set_unknown_rank(node, 0, dt, err);
  int axis;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), s->rank, &axis, err))) return st;
  KnDim *out = ia_dims(node, s->rank);
  if (!out) return ia_nomem(err);
  memcpy(out, s->dims, (size_t)s->rank * sizeof *out);
  out[axis] = count_nonzero(node, 1, s->dims[axis].value >= 0 ? s->dims[axis].value : INT64_MAX);
  return ir_set_output(node, 0, dt, s->rank, out, err);
}

/* NonZero: [rank, number of nonzero elements] as i64. */
KnStatus infer_non_zero(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnShape *s = in_shape(node, 0);
  KnDim out[2] = {s->rank >= 0 ? IR_DIM(s->rank) : IR_DIM_UNKNOWN, count_nonzero(node, 0, INT64_MAX)};
  return ir_set_output(node, 0, KN_I64, 2, out, err);
}

/* ReverseSequence, Scatter, ScatterElements, ScatterND: output like input 0; updates (input 2)
 * share its dtype. */
KnStatus infer_same_as_input(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st && node->n_inputs > 2) st = ir_require_tensor(node, 2, err);
  if (!st && node->n_inputs > 2) st = ia_same_dtype(node, 0, 2, err);
  return st ? st : ia_like_input(node, 0, KN_UNDEF, err);
}
