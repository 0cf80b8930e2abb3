/* infer_nn.c - shape inference for matrix products, normalizations and quantization ops. */
#include <string.h>

#include "ir/infer_b_internal.h"
#include "ir/infer_params.h"

/* C must broadcast one way to [M, N]: each of its dims is 1 or the output's. */
static KnStatus gemm_check_bias(const KnNode *n, const KnDim *out, KnError *err) {
  int r = ib_rank(n, 2);
  if (r > 2)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input 2 (C) has rank %d, expected at most 2", r);
  for (int i = 0; i < r; i++) {
    KnDim c = ib_dim(n, 2, i), o = out[2 - r + i];
    if (c.value >= 0 && c.value != 1 && o.value >= 0 && c.value != o.value)
      return ir_infer_fail(err, n, KN_ERR_INVALID,
                           "input 2 (C) dim %d is %lld, expected 1 or %lld to broadcast to the output",
                           i, (long long)c.value, (long long)o.value);
  }
  return KN_OK;
}

/* Gemm: A [M,K] (or [K,M] with transA) times B [K,N] (or [N,K]) -> [M,N]. */
KnStatus infer_gemm(KnNode *node, KnError *err) {
  const KnType *a, *b;
  KnStatus st = ib_tensor(node, 0, &a, err);
  if (!st) st = ib_tensor(node, 1, &b, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  if (!st) st = ib_check_rank(node, 0, 2, err);
  if (!st) st = ib_check_rank(node, 1, 2, err);
  if (st) return st;
  bool ta = ir_attr_int(node, "transA", 0) != 0, tb = ir_attr_int(node, "transB", 0) != 0;
  KnDim m = ib_dim(node, 0, ta ? 1 : 0), ka = ib_dim(node, 0, ta ? 0 : 1);
  KnDim kb = ib_dim(node, 1, tb ? 1 : 0), nn = ib_dim(node, 1, tb ? 0 : 1);
  if (ka.value >= 0 && kb.value >= 0 && ka.value != kb.value)
    return ir_infer_fail(err, node, KN_ERR_INVALID,
                         "inner dims differ: A ('%s') has K = %lld, B ('%s') has K = %lld, "
                         "expected equal", ir_input(node, 0)->name, (long long)ka.value,
                         ir_input(node, 1)->name, (long long)kb.value);
  KnDim dims[2] = {m, nn};
  if ((st = gemm_check_bias(node, dims, err))) return st;
  return ir_set_output(node, 0, a->dtype, 2, dims, err);
}

/* numpy matmul of inputs ia and ib: 1-D operands gain and lose a dim; batch dims broadcast. */
static KnStatus matmul_shape(KnNode *node, int ia, int ib, KnDtype dt, KnError *err) {
  const KnType *a, *b;
  KnStatus st = ib_tensor(node, ia, &a, err);
  if (!st) st = ib_tensor(node, ib, &b, err);
  if (st) return st;
  int ra = a->shape.rank, rb = b->shape.rank;
  if (ra < 0 || rb < 0) return ir_set_output(node, 0, dt, -1, NULL, err);
  if (ra == 0 || rb == 0)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d is a scalar, expected rank 1 or more",
                         ra == 0 ? ia : ib);
  KnDim ka = a->shape.dims[ra - 1], kb = b->shape.dims[rb == 1 ? 0 : rb - 2];
  if (ka.value >= 0 && kb.value >= 0 && ka.value != kb.value)
    return ir_infer_fail(err, node, KN_ERR_INVALID,
                         "inner dims differ: input %d ('%s') has K = %lld, input %d ('%s') has "
                         "K = %lld, expected equal", ia, ir_input(node, ia)->name,
                         (long long)ka.value, ib, ir_input(node, ib)->name, (long long)kb.value);
  KnShape ba = {ra > 2 ? ra - 2 : 0, a->shape.dims}, bb = {rb > 2 ? rb - 2 : 0, b->shape.dims};
  KnShape batch;
  if ((st = ir_broadcast(node, &ba, &bb, &batch, err))) return st;
  KnDim *dims = ib_dims(node, batch.rank + 2);
  if (!dims) return ib_nomem(err);
  int r = batch.rank;
  if (r) memcpy(dims, batch.dims, (size_t)r * sizeof *dims);
  if (ra > 1) dims[r++] = a->shape.dims[ra - 2];
  if (rb > 1) dims[r++] = b->shape.dims[rb - 1];
  return ir_set_output(node, 0, dt, r, dims, err);
}

/* Zero points and scales the lowering reads: A's (inputs as.. as+1) one or one per row of A,
 * B's one or one per column of B, the output's (ys, ys+1) exactly one. as/bs index the scale, or
 * the zero point alone for MatMulInteger (ys < 0). */
static KnStatus quant_params(const KnNode *n, int a, int as, int b, int bs, int ys, KnError *err) {
  int ra = ib_rank(n, a), rb = ib_rank(n, b);
  KnDim rows = ra >= 2 ? ib_dim(n, a, ra - 2) : ra == 1 ? IR_DIM(1) : IR_DIM_UNKNOWN;
  KnDim cols = rb >= 2 ? ib_dim(n, b, rb - 1) : rb == 1 ? IR_DIM(1) : IR_DIM_UNKNOWN;
  const char *an = ys < 0 ? "a_zero_point" : "a_scale", *bn = ys < 0 ? "b_zero_point" : "b_scale";
  KnStatus st = ip_check_scalar_or_len(n, as, an, rows, err);
  if (!st) st = ip_check_scalar_or_len(n, bs, bn, cols, err);
  if (ys < 0 || st) return st;
  st = ip_check_scalar_or_len(n, as + 1, "a_zero_point", rows, err);
  if (!st) st = ip_check_scalar_or_len(n, bs + 1, "b_zero_point", cols, err);
  if (!st) st = ip_check_numel(n, ys, "y_scale", 1, err);
  if (!st) st = ip_check_numel(n, ys + 1, "y_zero_point", 1, err);
  return st;
}

/* MatMul, MatMulInteger (-> i32), QLinearMatMul (-> y_zero_point's dtype). */
KnStatus infer_matmul(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *t;
  if (node->op == KN_OP_MatMulInteger) {
    if ((st = quant_params(node, 0, 2, 1, 3, -1, err))) return st;
    return matmul_shape(node, 0, 1, KN_I32, err);
  }
  if (node->op == KN_OP_QLinearMatMul) {
    if ((st = quant_params(node, 0, 1, 3, 4, 6, err))) return st;
    if ((st = ib_tensor(node, 7, &t, err))) return st;
    return matmul_shape(node, 0, 3, t->dtype, err);
  }
  if ((st = ib_tensor(node, 0, &t, err)) || (st = ib_check_same_dtype(node, 0, 1, err))) return st;
  return matmul_shape(node, 0, 1, t->dtype, err);
}

/* scale, B, mean and var are [C] (opset 9 on; before it spatial=0 makes them [C, D1, ...]). */
static KnStatus batch_norm_params(const KnNode *n, KnError *err) {
  static const char *const names[5] = {"X", "scale", "B", "input_mean", "input_var"};
  if (n->opset < 9 && ir_attr_int(n, "spatial", 1) == 0) return KN_OK;
  KnDim c = ib_dim(n, 0, 1);
  KnStatus st = KN_OK;
  for (int i = 1; i < 5 && !st; i++) st = ip_check_shape(n, i, names[i], 1, &c, err);
  return st;
}

/* Y like X; the statistics outputs are [C] (or shaped like the mean input), dtype of mean. */
KnStatus infer_batch_norm(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  for (int i = 1; i < 5 && !st; i++) st = ir_require_tensor(node, i, err);
  if (!st) st = batch_norm_params(node, err);
  if (!st) st = ir_set_output(node, 0, x->dtype, x->shape.rank, x->shape.dims, err);
  if (st) return st;
  const KnType *mean = ir_input_tensor(node, 3);
  KnDim c = ib_better_dim(ib_dim(node, 0, 1), ib_dim(node, 1, 0));
  bool spatial_stats = mean->shape.rank == 1 || mean->shape.rank < 0;
  for (int o = 1; o < node->n_outputs && !st; o++) {
    KnDtype dt = o <= 2 || node->opset >= 14 ? mean->dtype : x->dtype;
    if (spatial_stats) st = ir_set_output(node, o, dt, 1, &c, err);
    else st = ir_set_output(node, o, dt, mean->shape.rank, mean->shape.dims, err);
  }
  return st;
}

KnStatus infer_instance_norm(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 1, err);
  if (!st) st = ir_require_tensor(node, 2, err);
  if (!st) st = ib_check_rank(node, 1, 1, err);
  if (!st) st = ib_check_dim(node, ib_dim(node, 0, 1), ib_dim(node, 1, 0),
                             "input channels vs scale length", err);
  KnDim c = ib_dim(node, 0, 1);
  if (!st) st = ip_check_shape(node, 1, "scale", 1, &c, err);
  if (!st) st = ip_check_shape(node, 2, "B", 1, &c, err);
  return st ? st : ib_like_input(node, 0, 0, KN_UNDEF, err);
}

/* Scale and B broadcast one way into the normalized shape X.shape[axis:]. */
static KnStatus layer_norm_params(const KnNode *n, const KnType *x, KnError *err) {
  int axis;
  if (x->shape.rank < 0) return KN_OK;
  KnStatus st = ir_norm_axis(n, ir_attr_int(n, "axis", -1), x->shape.rank, &axis, err);
  if (st) return st; /* axis is only meaningful once checked */
  const KnDim *norm = x->shape.rank ? x->shape.dims + axis : NULL;
  if (!st) st = ip_check_unibroadcast(n, 1, "Scale", x->shape.rank - axis, norm, err);
  if (!st) st = ip_check_unibroadcast(n, 2, "B", x->shape.rank - axis, norm, err);
  return st;
}

/* Y like X; Mean and InvStdDev keep X's dims before axis and have 1s after, dtype stash_type. */
KnStatus infer_layer_norm(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st) st = ir_set_output(node, 0, x->dtype, x->shape.rank, x->shape.dims, err);
  KnDtype stash;
  if (!st) st = layer_norm_params(node, x, err);
  if (!st) st = ib_attr_dtype(node, "stash_type", KN_F32, &stash, err);
  if (st || node->n_outputs < 2) return st;
  int rank = x->shape.rank, axis;
  if (rank < 0) {
    st = ir_set_output(node, 1, stash, -1, NULL, err);
    return st ? st : ir_set_output(node, 2, stash, -1, NULL, err);
  }
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", -1), rank, &axis, err))) return st;
  KnDim *dims = ib_dims(node, rank);
  if (!dims) return ib_nomem(err);
  for (int i = 0; i < rank; i++) dims[i] = i < axis ? x->shape.dims[i] : IR_DIM(1);
  st = ir_set_output(node, 1, stash, rank, dims, err);
  return st ? st : ir_set_output(node, 2, stash, rank, dims, err);
}

/* Output like x; dtype of y_zero_point, else the output_dtype attribute, else u8. */
KnStatus infer_quantize(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 1, err);
  if (st) return st;
  if ((st = ip_check_same_shape(node, 2, "y_zero_point", 1, "y_scale", err))) return st;
  KnDtype dt = KN_U8;
  if (ir_input(node, 2)) {
    if ((st = ir_require_tensor(node, 2, err))) return st;
    dt = ir_input_tensor(node, 2)->dtype;
  } else if ((st = ib_attr_dtype(node, "output_dtype", KN_U8, &dt, err))) {
    return st;
  }
  if (dt == KN_UNDEF) dt = KN_U8;
  return ib_like_input(node, 0, 0, dt, err);
}

/* Output like x in f32 (opset 19 and later: the scale's dtype). */
KnStatus infer_dequantize(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 1, err);
  if (st) return st;
  if ((st = ip_check_same_shape(node, 2, "x_zero_point", 1, "x_scale", err))) return st;
  KnDtype dt = KN_F32, sd = ir_input_tensor(node, 1)->dtype;
  if (node->opset >= 19 && ir_dtype_is_float(sd)) dt = sd;
  return ib_like_input(node, 0, 0, dt, err);
}

/* y: u8 like x; y_scale: f32 scalar; y_zero_point: u8 scalar. */
KnStatus infer_dynamic_quantize(KnNode *node, KnError *err) {
  KnStatus st = ib_like_input(node, 0, 0, KN_U8, err);
  if (!st) st = ir_set_output(node, 1, KN_F32, 0, NULL, err);
  return st ? st : ir_set_output(node, 2, KN_U8, 0, NULL, err);
}

/* [*, M, M] -> [*]. */
KnStatus infer_det(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int r = x->shape.rank;
  if (r < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (r < 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 2", r);
  if ((st = ib_check_dim(node, x->shape.dims[r - 2], x->shape.dims[r - 1],
                         "matrix rows vs columns", err)))
    return st;
  return ir_set_output(node, 0, x->dtype, r - 2, x->shape.dims, err);
}

/* Selected boxes: [?, 3] of (batch, class, box) indices. */
KnStatus infer_nms(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st) st = ib_check_rank(node, 0, 3, err);
  if (!st) st = ib_check_rank(node, 1, 3, err);
  if (st) return st;
  KnDim dims[2] = {IR_DIM_UNKNOWN, IR_DIM(3)};
  return ir_set_output(node, 0, KN_I64, 2, dims, err);
}

/* X [N, C, D1..Dk], grid [N, O1..Ok, k] -> [N, C, O1..Ok]. */
KnStatus infer_grid_sample(KnNode *node, KnError *err) {
  const KnType *x, *g;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_tensor(node, 1, &g, err);
  if (st) return st;
  int r = x->shape.rank >= 0 ? x->shape.rank : g->shape.rank;
  if (r < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (r < 3)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 3", r);
  if ((st = ib_check_rank(node, 0, r, err)) || (st = ib_check_rank(node, 1, r, err))) return st;
  if ((st = ib_check_dim(node, ib_dim(node, 1, r - 1), IR_DIM(r - 2),
                         "grid's last dim vs spatial rank", err)) ||
      (st = ib_check_dim(node, ib_dim(node, 0, 0), ib_dim(node, 1, 0), "batch of X vs grid", err)))
    return st;
  KnDim *dims = ib_dims(node, r);
  if (!dims) return ib_nomem(err);
  dims[0] = ib_better_dim(ib_dim(node, 0, 0), ib_dim(node, 1, 0));
  dims[1] = ib_dim(node, 0, 1);
  for (int i = 2; i < r; i++) dims[i] = ib_dim(node, 1, i - 1);
  return ir_set_output(node, 0, x->dtype, r, dims, err);
}

/* [C] -> [V] or [N, C] -> [N, V], f32, where V = max(ngram_indexes) + 1. */
KnStatus infer_tfidf(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int64_t cnt, v = 0;
  const int64_t *idx = ir_attr_ints(node, "ngram_indexes", &cnt);
  for (int64_t i = 0; idx && i < cnt; i++) {
    if (idx[i] < 0 || idx[i] >= ((int64_t)1 << 40))
      return ir_infer_fail(err, node, KN_ERR_INVALID, "ngram_indexes[%lld] = %lld is out of range",
                           (long long)i, (long long)idx[i]);
    if (idx[i] + 1 > v) v = idx[i] + 1;
  }
  int r = x->shape.rank;
  if (r < 0) return ir_set_output(node, 0, KN_F32, -1, NULL, err);
  if (r != 1 && r != 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected 1 or 2", r);
  KnDim dims[2] = {r == 2 ? x->shape.dims[0] : IR_DIM(v), IR_DIM(v)};
  return ir_set_output(node, 0, KN_F32, r, dims, err);
}

/* Strings [C] or [1, C]; stopwords may drop entries, so the last dim is then unknown. */
KnStatus infer_string_normalizer(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int r = x->shape.rank;
  if (r < 0) return ir_set_output(node, 0, KN_STRING, -1, NULL, err);
  if (r != 1 && r != 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected 1 or 2", r);
  KnDim dims[2] = {x->shape.dims[0], r == 2 ? x->shape.dims[1] : IR_DIM_UNKNOWN};
  int64_t n_stop = 0;
  const KnAttr *sw = ir_attr(node, "stopwords");
  if (sw && sw->kind == KN_ATTR_STRINGS) n_stop = sw->n;
  if (n_stop) dims[r - 1] = IR_DIM_UNKNOWN;
  return ir_set_output(node, 0, KN_STRING, r, dims, err);
}
