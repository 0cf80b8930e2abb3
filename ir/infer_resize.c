/* infer_resize.c - shape inference for Resize and Upsample: output dims from scales or sizes. */
#include <math.h>

#include "ir/infer_b_internal.h"

/* An input that is absent, or a tensor known to hold no elements (ONNX's "not given"). */
static bool input_empty(const KnNode *n, int i) {
  if (!ir_input(n, i)) return true;
  const KnType *t = ir_input_tensor(n, i);
  if (!t) return false;
  for (int d = 0; d < t->shape.rank; d++)
    if (t->shape.dims[d].value == 0) return true;
  return false;
}

/* floor(in * scale) computed in float, as ONNX does. */
static KnDim scaled_dim(KnDim in, double scale) {
  if (in.value < 0 || !(scale >= 0) || scale > 1e12) return scale == 1.0 ? in : IR_DIM_UNKNOWN;
  double v = floor((double)((float)in.value * (float)scale));
  return v < 9.0e15 ? IR_DIM((int64_t)v) : IR_DIM_UNKNOWN;
}

/* Applies per-axis scales (na entries on axes ax, or on every axis when ax is NULL). */
static KnStatus apply_scales(KnNode *n, const KnType *x, const double *sc, int cnt,
                             const int64_t *ax, int64_t nax, KnDim *dims, KnError *err) {
  int r = x->shape.rank;
  if (cnt != (ax ? nax : r))
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scales has %d entries, expected %lld", cnt,
                         (long long)(ax ? nax : r));
  for (int i = 0; i < cnt; i++) {
    int d = i;
    KnStatus st = ax ? ir_norm_axis(n, ax[i], r, &d, err) : KN_OK;
    if (st) return st;
    dims[d] = scaled_dim(x->shape.dims[d], sc[i]);
  }
  return KN_OK;
}

static KnStatus apply_sizes(KnNode *n, const KnType *x, const KnDim *sz, int cnt, const int64_t *ax,
                            int64_t nax, KnDim *dims, KnError *err) {
  int r = x->shape.rank;
  if (cnt != (ax ? nax : r))
    return ir_infer_fail(err, n, KN_ERR_INVALID, "sizes has %d entries, expected %lld", cnt,
                         (long long)(ax ? nax : r));
  for (int i = 0; i < cnt; i++) {
    int d = i;
    KnStatus st = ax ? ir_norm_axis(n, ax[i], r, &d, err) : KN_OK;
    if (st) return st;
    dims[d] = ir_sym_to_dim(sz[i]);
  }
  return KN_OK;
}

/* Upsample before opset 9 keeps its scales in attributes. */
static int upsample_attr_scales(const KnNode *n, int rank, double *sc) {
  int64_t cnt;
  const float *f = ir_attr_floats(n, "scales", &cnt);
  if (f) {
    for (int64_t i = 0; i < cnt && i < IR_SYM_DATA_MAX; i++) sc[i] = f[i];
    return cnt <= IR_SYM_DATA_MAX ? (int)cnt : -1;
  }
  if (rank != 4) return -1;
  sc[0] = sc[1] = 1.0;
  sc[2] = ir_attr_float(n, "height_scale", 1.0f);
  sc[3] = ir_attr_float(n, "width_scale", 1.0f);
  return 4;
}

/* Which inputs hold scales and sizes in this op version (-1: none). */
static void resize_inputs(const KnNode *n, int *scales, int *sizes) {
  *sizes = -1;
  if (n->op == KN_OP_Upsample) *scales = n->opset >= 9 ? 1 : -1;
  else if (n->opset < 11) *scales = 1;
  else *scales = 2, *sizes = 3;
}

KnStatus infer_resize(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int r = x->shape.rank, si, zi;
  if (r < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  KnDim *dims = ib_dims(node, r);
  if (!dims) return ib_nomem(err);
  for (int i = 0; i < r; i++) dims[i] = x->shape.dims[i];
  resize_inputs(node, &si, &zi);
  int64_t nax;
  const int64_t *ax = ir_attr_ints(node, "axes", &nax);
  double sc[IR_SYM_DATA_MAX];
  KnDim sz[IR_SYM_DATA_MAX];
  bool known = true;
  if (zi >= 0 && !input_empty(node, zi)) {
    int cnt = ir_input_dims(node, zi, sz, IR_SYM_DATA_MAX);
    if (cnt >= 0) st = apply_sizes(node, x, sz, cnt, ax, nax, dims, err);
    known = cnt >= 0;
  } else if (si < 0 || !input_empty(node, si)) {
    int cnt = si < 0 ? upsample_attr_scales(node, r, sc) : ib_input_doubles(node, si, sc, IR_SYM_DATA_MAX);
    if (cnt >= 0) st = apply_scales(node, x, sc, cnt, ax, nax, dims, err);
    known = cnt >= 0;
  } else {
    return ir_infer_fail(err, node, KN_ERR_INVALID, "neither scales nor sizes is given");
  }
  if (st) return st;
  for (int i = 0; i < r && !known; i++) dims[i] = IR_DIM_UNKNOWN;
  return ir_set_output(node, 0, x->dtype, r, dims, err);
}
