/* cg_dynamic.c - the runtime kernels of ops whose output size depends on data (used between
 * stages, see cg_stage.c): each counts, allocates the output and calls runtime/ to fill it. */
#include <string.h>

#include "codegen/cg_stage.h"

static KnStatus dyn_nonzero(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, KnError *err) {
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

static KnStatus dyn_compress(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, KnError *err) {
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

CgDynFn cg_dynamic_op(KnOp op) {
  switch (op) {
  case KN_OP_NonZero: return dyn_nonzero;
  case KN_OP_Compress: return dyn_compress;
  default: return NULL;
  }
}
