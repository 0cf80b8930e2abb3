/* cg_dynamic.c - the runtime kernels of ops whose output size depends on data (used between
 * stages, see cg_stage.c): each counts, allocates the output and calls runtime/ to fill it. */
#include <string.h>

#include "codegen/cg_stage.h"

static KnStatus dyn_nonzero(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                          KnError *err) {
  const KnTensor *x = in[0];
  int bits = ir_dtype_bits(x->dtype);
  if (x->dtype == KN_STRING || bits < 8) return kn_fail(err, KN_ERR_UNSUPPORTED, "NonZero: dtype %s", ir_dtype_name(x->dtype));
  int is_float = ir_dtype_is_float(x->dtype);
  int64_t count = kn_rt_count_nonzero(x->data, x->numel, bits, is_float);
  int64_t dims[2] = {x->rank, count};
  if (!(out[0] = ir_tensor_new(a, KN_I64, 2, dims, err))) return err->status;
  kn_rt_nonzero(x->data, x->rank, x->dims, bits, is_float, count, out[0]->data);
  return KN_OK;
}

static KnStatus dyn_compress(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                          KnError *err) {
  const KnTensor *x = in[0], *cond = in[1];
  if (x->dtype == KN_STRING || ir_dtype_bits(x->dtype) < 8 || cond->dtype != KN_BOOL)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "Compress: dtype %s", ir_dtype_name(x->dtype));
  const KnAttr *axis_attr = ir_attr(n, "axis");
  int64_t outer = 1, axis_len = x->numel, inner = 1, dims[x->rank + 1];
  int rank = 1, axis = -1;
  if (axis_attr) {
    axis = (int)(axis_attr->i < 0 ? axis_attr->i + x->rank : axis_attr->i);
    if (axis < 0 || axis >= x->rank) return kn_fail(err, KN_ERR_INVALID, "Compress: axis %lld out of range", (long long)axis_attr->i);
    outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
    axis_len = x->dims[axis];
    rank = x->rank;
    memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
  }
  const unsigned char *c = cond->data;
  int64_t kept = 0, n_cond = cond->numel < axis_len ? cond->numel : axis_len;
  for (int64_t j = 0; j < n_cond; j++) kept += c[j] != 0;
  dims[axis < 0 ? 0 : axis] = kept;
  if (!(out[0] = ir_tensor_new(a, x->dtype, rank, dims, err))) return err->status;
  kn_rt_compress(x->data, outer, axis_len, inner, ir_dtype_bits(x->dtype) / 8, c, cond->numel, out[0]->data);
  return KN_OK;
}

static KnStatus dyn_unique(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                          KnError *err) {
  const KnTensor *x = in[0];
  if (x->dtype == KN_STRING || ir_dtype_bits(x->dtype) < 8)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "Unique: dtype %s", ir_dtype_name(x->dtype));
  const KnAttr *axis_attr = ir_attr(n, "axis");
  int64_t outer = 1, len = x->numel, inner = 1;
  int axis = -1;
  if (axis_attr) {
    axis = (int)(axis_attr->i < 0 ? axis_attr->i + x->rank : axis_attr->i);
    if (axis < 0 || axis >= x->rank) return kn_fail(err, KN_ERR_INVALID, "Unique: axis %lld out of range", (long long)axis_attr->i);
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
    len = x->dims[axis];
  }
  int64_t cap = len > 0 ? len : 1;
  KnTensor *first = ir_tensor_new(a, KN_I64, 1, &cap, err), *inverse = ir_tensor_new(a, KN_I64, 1, &len, err);
  KnTensor *counts = ir_tensor_new(a, KN_I64, 1, &cap, err);
  if (!first || !inverse || !counts) return err->status;
  int64_t groups = kn_rt_unique(x->data, (int32_t)x->dtype, outer, len, inner,
                                (int32_t)ir_attr_int(n, "sorted", 1), first->data, inverse->data, counts->data);
  if (groups < 0) return kn_fail(err, KN_ERR_NOMEM, "Unique: out of memory");
  first->dims[0] = counts->dims[0] = first->numel = counts->numel = groups;
  first->nbytes = counts->nbytes = (size_t)groups * 8;
  int64_t dims[x->rank + 1];
  int rank = axis < 0 ? 1 : x->rank;
  for (int d = 0; d < rank; d++) dims[d] = axis < 0 ? groups : d == axis ? groups : x->dims[d];
  if (!(out[0] = ir_tensor_new(a, x->dtype, rank, dims, err))) return err->status;
  size_t elem = (size_t)ir_dtype_bits(x->dtype) / 8, row = (size_t)inner * elem;
  const unsigned char *src = x->data;
  unsigned char *dst = out[0]->data;
  const int64_t *f = first->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t g = 0; g < groups; g++)
      memcpy(dst + (size_t)(o * groups + g) * row, src + (size_t)(o * len + f[g]) * row, row);
  if (n->n_outputs > 1) out[1] = first;
  if (n->n_outputs > 2) out[2] = inverse;
  if (n->n_outputs > 3) out[3] = counts;
  return KN_OK;
}

static KnStatus dyn_nms(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                          KnError *err) {
  const KnTensor *boxes = in[0], *scores = in[1];
  if (boxes->dtype != KN_F32 || scores->dtype != KN_F32 || boxes->rank != 3 || scores->rank != 3 ||
      boxes->dims[2] != 4 || boxes->dims[0] != scores->dims[0] || boxes->dims[1] != scores->dims[2])
    return kn_fail(err, KN_ERR_INVALID, "NonMaxSuppression: expected f32 boxes [B,N,4] and scores [B,C,N]");
  int64_t max_out = n->n_inputs > 2 && in[2] && in[2]->numel ? ir_tensor_get_int(in[2], 0) : 0;
  double iou = n->n_inputs > 3 && in[3] && in[3]->numel ? ir_tensor_get_double(in[3], 0) : 0;
  bool has_thr = n->n_inputs > 4 && in[4] && in[4]->numel;
  double thr = has_thr ? ir_tensor_get_double(in[4], 0) : 0;
  int64_t B = boxes->dims[0], N = boxes->dims[1], C = scores->dims[1];
  if (max_out < 0) max_out = 0;
  int64_t per = max_out < N ? max_out : N, rows;
  if (ir_mul_overflows(B * C, per, &rows)) return kn_fail(err, KN_ERR_LIMIT, "NonMaxSuppression: output too large");
  int64_t dims[2] = {rows, 3};
  KnTensor *t = ir_tensor_new(a, KN_I64, 2, dims, err);
  if (!t) return err->status;
  int64_t count = kn_rt_nms(boxes->data, scores->data, B, C, N, max_out, (float)iou, (float)thr, has_thr,
                            (int32_t)ir_attr_int(n, "center_point_box", 0), t->data);
  if (count < 0) return kn_fail(err, KN_ERR_NOMEM, "NonMaxSuppression: out of memory");
  t->dims[0] = count, t->numel = count * 3, t->nbytes = (size_t)count * 3 * 8;
  out[0] = t;
  return KN_OK;
}

bool cg_node_has_lists(const KnNode *n) {
  for (int i = 0; i < n->n_inputs; i++)
    if (cg_runtime_only(n->inputs[i])) return true;
  for (int i = 0; i < n->n_outputs; i++)
    if (cg_runtime_only(n->outputs[i])) return true;
  return false;
}

CgDynFn cg_dynamic_fn(const KnNode *n) {
  CgDynFn seq = cg_sequence_fn(n);
  if (seq) return seq;
  switch (n->op) {
  case KN_OP_NonZero: return dyn_nonzero;
  case KN_OP_Compress: return dyn_compress;
  case KN_OP_Unique: return dyn_unique;
  case KN_OP_NonMaxSuppression: return dyn_nms;
  case KN_OP_If: return cg_run_if;
  case KN_OP_Loop: return cg_run_loop;
  case KN_OP_Scan: return cg_run_scan;
  case KN_OP_TfIdfVectorizer: return cg_run_tfidf;
  case KN_OP_StringNormalizer: return cg_run_string_normalizer;
  case KN_OP_Cast: case KN_OP_CastLike: return cg_node_has_lists(n) ? cg_run_string_cast : NULL;
  default: return NULL;
  }
}

void cg_dynamic_free_state(const KnNode *n, void *state) {
  bool control = n->op == KN_OP_If || n->op == KN_OP_Loop || n->op == KN_OP_Scan || n->op == KN_OP_SequenceMap;
  if (state && control) cg_control_free_state(state);
}
