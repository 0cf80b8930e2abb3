/* infer_shape_ops.c - shape inference for ops that move, select or describe data: Shape, Reshape,
 * Gather, Concat, Slice, Expand, Pad, Constant, ... with value propagation of shape tensors so
 * torch's Shape->Gather->Concat->Reshape chains resolve at compile time. */
#include <string.h>

#include "ir/infer_fns.h"

#define MAXR 64 /* highest rank these functions handle; above it is a clear limit error */

static KnStatus check_rank(const KnNode *n, int rank, KnError *err) {
  return rank > MAXR ? ir_infer_fail(err, n, KN_ERR_LIMIT, "rank %d is above %d", rank, MAXR) : KN_OK;
}

/* Input 0 as a tensor type, checked, with rank bounded. */
static const KnType *tensor_in(const KnNode *n, int i, KnStatus *st, KnError *err) {
  *st = ir_require_tensor(n, i, err);
  if (*st) return NULL;
  const KnType *t = ir_input_tensor(n, i);
  *st = check_rank(n, t->shape.rank, err);
  return *st ? NULL : t;
}

static void all_unknown(KnDim *dims, int rank) {
  for (int i = 0; i < rank; i++) dims[i] = IR_DIM_UNKNOWN;
}

KnStatus infer_shape(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, KN_I64, 1, &IR_DIM_UNKNOWN, err);
  int64_t start = ir_attr_int(node, "start", 0), end = ir_attr_int(node, "end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = start < 0 ? 0 : start > rank ? rank : start;
  end = end < start ? start : end > rank ? rank : end;
  KnDim len = IR_DIM(end - start), data[MAXR];
  for (int64_t i = start; i < end; i++) data[i - start] = ir_dim_to_sym(x->shape.dims[i]);
  st = ir_set_output(node, 0, KN_I64, 1, &len, err);
  return st ? st : ir_set_sym_data(node, 0, data, (int)(end - start), err);
}

KnStatus infer_size(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  if ((st = ir_set_output(node, 0, KN_I64, 0, NULL, err))) return st;
  int64_t numel;
  KnDim d = ir_shape_numel(&x->shape, &numel) ? IR_DIM(numel) : (KnDim){-1, IR_SYM_UNKNOWN};
  return ir_set_sym_data(node, 0, &d, 1, err);
}

/* The -1 entry of a Reshape target: input elements over the other target dims. Symbolic dims
 * present on both sides cancel, so [batch,3,4] -> [batch,-1] gives [batch,12]. */
static KnStatus infer_minus_one(const KnNode *node, const KnShape *in, KnDim *out, int n, int at,
                                KnError *err) {
  out[at] = IR_DIM_UNKNOWN;
  if (in->rank < 0) return KN_OK;
  bool used[MAXR] = {false};
  int64_t num = 1, den = 1;
  for (int i = 0; i < n; i++) {
    if (i == at) continue;
    KnDim d = out[i];
    if (d.value >= 0) {
      if (ir_mul_overflows(den, d.value, &den)) return KN_OK;
      continue;
    }
    int j = 0;
    while (j < in->rank && (used[j] || !ir_dim_equal(in->dims[j], d))) j++;
    if (j == in->rank) return KN_OK; /* an unknown or unmatched dim: -1 stays unknown */
    used[j] = true;
  }
  for (int j = 0; j < in->rank; j++) {
    if (used[j]) continue;
    if (in->dims[j].value < 0 || ir_mul_overflows(num, in->dims[j].value, &num)) return KN_OK;
  }
  if (den == 0) return KN_OK;
  if (num % den)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "cannot reshape %lld elements with -1 and %lld others",
                         (long long)num, (long long)den);
  out[at] = IR_DIM(num / den);
  return KN_OK;
}

/* Reshape: 0 copies the input dim (unless allowzero), one -1 takes what is left. */
KnStatus infer_reshape(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  KnDim t[MAXR];
  int n;
  if (node->opset < 5) {
    int64_t cnt, *s = (int64_t *)ir_attr_ints(node, "shape", &cnt);
    if (!s || cnt > MAXR) return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute 'shape' is missing");
    for (int64_t i = 0; i < cnt; i++) t[i] = (KnDim){s[i], NULL};
    n = (int)cnt;
  } else {
    n = ir_input_dims(node, 1, t, MAXR);
  }
  if (n < 0) { /* target known only at run time; its length may still be */
    const KnType *s = ir_input_tensor(node, 1);
    int r = s && s->shape.rank == 1 && s->shape.dims[0].value >= 0 && s->shape.dims[0].value <= MAXR
                ? (int)s->shape.dims[0].value : -1;
    KnDim u[MAXR];
    all_unknown(u, r);
    return ir_set_output(node, 0, x->dtype, r, u, err);
  }
  bool allowzero = ir_attr_int(node, "allowzero", 0) != 0;
  KnDim out[MAXR];
  int infer_at = -1;
  for (int i = 0; i < n; i++) {
    KnDim e = t[i];
    if (!e.sym && e.value == -1) {
      if (infer_at >= 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "target shape has two -1 entries");
      infer_at = i;
      continue;
    }
    if (!e.sym && e.value == 0 && !allowzero) {
      if (x->shape.rank >= 0 && i >= x->shape.rank)
        return ir_infer_fail(err, node, KN_ERR_INVALID, "target dim %d is 0 but the input has rank %d", i, x->shape.rank);
      e = x->shape.rank >= 0 ? x->shape.dims[i] : IR_DIM_UNKNOWN;
    } else if (!e.sym && e.value < -1) {
      return ir_infer_fail(err, node, KN_ERR_INVALID, "target dim %d is %lld", i, (long long)e.value);
    }
    out[i] = ir_sym_to_dim(e);
  }
  if (infer_at >= 0) {
    if ((st = infer_minus_one(node, &x->shape, out, n, infer_at, err))) return st;
  } else {
    int64_t numel, want;
    KnShape os = {n, out};
    if (ir_shape_numel(&x->shape, &numel) && ir_shape_numel(&os, &want) && numel != want)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "cannot reshape %lld elements into %lld",
                           (long long)numel, (long long)want);
  }
  st = ir_set_output(node, 0, x->dtype, n, out, err);
  KnValue *in = node->inputs[0];
  if (!st && in->sym_data && n <= 1) st = ir_set_sym_data(node, 0, in->sym_data, in->sym_len, err);
  return st;
}

KnStatus infer_flatten(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  KnDim d[2] = {IR_DIM_UNKNOWN, IR_DIM_UNKNOWN};
  if (x->shape.rank < 0) return ir_set_output(node, 0, x->dtype, 2, d, err);
  int64_t axis = ir_attr_int(node, "axis", 1);
  if (axis < 0) axis += x->shape.rank;
  if (axis < 0 || axis > x->shape.rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "axis %lld is out of range for rank %d",
                         (long long)ir_attr_int(node, "axis", 1), x->shape.rank);
  d[0] = d[1] = IR_DIM(1);
  for (int i = 0; i < x->shape.rank; i++)
    d[i >= axis] = ir_dim_mul(d[i >= axis], x->shape.dims[i]);
  return ir_set_output(node, 0, x->dtype, 2, d, err);
}

/* Axes come from an attribute before opset 13 and from input 1 after. -1: not known. */
static int axes_of(const KnNode *n, int64_t *axes) {
  int64_t cnt;
  const int64_t *a = ir_attr_ints(n, "axes", &cnt);
  if (a) {
    if (cnt > MAXR) return -1;
    memcpy(axes, a, (size_t)cnt * sizeof *axes);
    return (int)cnt;
  }
  if (n->n_inputs > 1 && n->inputs[1]) return ir_input_ints(n, 1, axes, MAXR);
  return 0;
}

/* Passes a 1-element shape value through Squeeze/Unsqueeze unchanged (scalar <-> [1]). */
static KnStatus pass_sym(KnNode *node, KnError *err) {
  KnValue *in = node->inputs[0];
  return in->sym_data && in->sym_len <= 1 ? ir_set_sym_data(node, 0, in->sym_data, in->sym_len, err) : KN_OK;
}

KnStatus infer_squeeze(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int64_t axes[MAXR];
  int n = axes_of(node, axes), rank = x->shape.rank;
  if (n < 0 || rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  bool drop[MAXR] = {false};
  for (int i = 0; i < n; i++) {
    int ax;
    if ((st = ir_norm_axis(node, axes[i], rank, &ax, err))) return st;
    if (x->shape.dims[ax].value >= 0 && x->shape.dims[ax].value != 1)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "cannot squeeze axis %d of size %lld", ax,
                           (long long)x->shape.dims[ax].value);
    drop[ax] = true;
  }
  KnDim out[MAXR];
  int r = 0;
  for (int i = 0; i < rank; i++) {
    if (n == 0 && x->shape.dims[i].value < 0) /* cannot tell whether it is 1 */
      return ir_set_output(node, 0, x->dtype, -1, NULL, err);
    if (!(drop[i] || (n == 0 && x->shape.dims[i].value == 1))) out[r++] = x->shape.dims[i];
  }
  st = ir_set_output(node, 0, x->dtype, r, out, err);
  return st ? st : pass_sym(node, err);
}

KnStatus infer_unsqueeze(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int64_t axes[MAXR];
  int n = axes_of(node, axes), rank = x->shape.rank;
  if (n < 0 || rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  int out_rank = rank + n;
  if ((st = check_rank(node, out_rank, err))) return st;
  bool ins[MAXR] = {false};
  for (int i = 0; i < n; i++) {
    int ax;
    if ((st = ir_norm_axis(node, axes[i], out_rank, &ax, err))) return st;
    if (ins[ax]) return ir_infer_fail(err, node, KN_ERR_INVALID, "axis %d is repeated", ax);
    ins[ax] = true;
  }
  KnDim out[MAXR];
  for (int i = 0, j = 0; i < out_rank; i++) out[i] = ins[i] ? IR_DIM(1) : x->shape.dims[j++];
  st = ir_set_output(node, 0, x->dtype, out_rank, out, err);
  return st ? st : pass_sym(node, err);
}

KnStatus infer_transpose(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  int64_t cnt;
  const int64_t *perm = ir_attr_ints(node, "perm", &cnt);
  if (perm && cnt != rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "perm has %lld entries for rank %d", (long long)cnt, rank);
  KnDim out[MAXR];
  bool seen[MAXR] = {false};
  for (int i = 0; i < rank; i++) {
    int64_t p = perm ? perm[i] : rank - 1 - i;
    if (p < 0 || p >= rank || seen[p])
      return ir_infer_fail(err, node, KN_ERR_INVALID, "perm is not a permutation of 0..%d", rank - 1);
    seen[p] = true;
    out[i] = x->shape.dims[p];
  }
  return ir_set_output(node, 0, x->dtype, rank, out, err);
}

/* Concatenates known 1-D shape values, as torch does to build Reshape targets. */
static KnStatus concat_sym(KnNode *node, KnError *err) {
  KnDim out[IR_SYM_DATA_MAX], part[IR_SYM_DATA_MAX];
  int len = 0;
  for (int i = 0; i < node->n_inputs; i++) {
    const KnType *t = ir_input_tensor(node, i);
    int n = t->shape.rank == 1 ? ir_input_dims(node, i, part, IR_SYM_DATA_MAX) : -1;
    if (n < 0 || len + n > IR_SYM_DATA_MAX) return KN_OK;
    memcpy(out + len, part, (size_t)n * sizeof *part);
    len += n;
  }
  return ir_set_sym_data(node, 0, out, len, err);
}

KnStatus infer_concat(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = -1;
  for (int i = 0; i < node->n_inputs && rank < 0; i++) {
    const KnType *t = tensor_in(node, i, &st, err);
    if (!t) return st;
    rank = t->shape.rank;
  }
  if (rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  int ax;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), rank, &ax, err))) return st;
  KnDim out[MAXR];
  all_unknown(out, rank);
  KnDim sum = IR_DIM(0);
  for (int i = 0; i < node->n_inputs; i++) {
    const KnType *t = tensor_in(node, i, &st, err);
    if (!t) return st;
    if (t->dtype != x->dtype)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d has dtype %s, expected %s like input 0",
                           i, ir_dtype_name(t->dtype), ir_dtype_name(x->dtype));
    if (t->shape.rank < 0) { sum = IR_DIM_UNKNOWN; continue; }
    if (t->shape.rank != rank)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d has rank %d, expected %d", i, t->shape.rank, rank);
    for (int d = 0; d < rank; d++) {
      KnDim v = t->shape.dims[d];
      if (d == ax) continue;
      if (out[d].value >= 0 && v.value >= 0 && out[d].value != v.value)
        return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d dim %d is %lld, expected %lld", i, d,
                             (long long)v.value, (long long)out[d].value);
      if (out[d].value < 0 && (v.value >= 0 || (!out[d].sym && v.sym))) out[d] = v;
    }
    sum = sum.value >= 0 || sum.sym ? ir_dim_add(sum, t->shape.dims[ax]) : sum;
  }
  out[ax] = sum;
  st = ir_set_output(node, 0, x->dtype, rank, out, err);
  return st ? st : concat_sym(node, err);
}

/* Split: sizes from the `split` attribute (< 13) or input 1, else equal parts. */
KnStatus infer_split(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank, ax, outs = node->n_outputs;
  if (rank < 0) {
    for (int i = 0; i < outs && !st; i++) st = ir_set_output(node, i, x->dtype, -1, NULL, err);
    return st;
  }
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), rank, &ax, err))) return st;
  int64_t sizes_buf[MAXR], cnt = 0;
  const int64_t *sizes = ir_attr_ints(node, "split", &cnt);
  if (!sizes && node->n_inputs > 1 && node->inputs[1]) {
    int n = ir_input_ints(node, 1, sizes_buf, MAXR);
    sizes = n >= 0 ? sizes_buf : NULL;
    cnt = n >= 0 ? n : -1;
  }
  if (sizes && cnt != outs)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "split has %lld sizes for %d outputs", (long long)cnt, outs);
  int64_t total = x->shape.dims[ax].value, sum = 0;
  for (int i = 0; i < outs && sizes; i++) sum += sizes[i] < 0 ? 0 : sizes[i];
  if (sizes && total >= 0 && sum != total)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "split sizes add up to %lld, axis has %lld",
                         (long long)sum, (long long)total);
  KnDim out[MAXR];
  memcpy(out, x->shape.dims, (size_t)rank * sizeof *out);
  for (int i = 0; i < outs && !st; i++) {
    if (sizes) out[ax] = IR_DIM(sizes[i]);
    else if (total >= 0 && cnt == 0) out[ax] = IR_DIM((total + outs - 1) / outs - (i == outs - 1 ? ((total + outs - 1) / outs) * outs - total : 0));
    else out[ax] = IR_DIM_UNKNOWN;
    st = ir_set_output(node, i, x->dtype, rank, out, err);
  }
  return st;
}

/* Clamps a Slice start or end into [0, dim] (or [-1, dim-1] for negative steps) per ONNX. */
static int64_t clamp_index(int64_t v, int64_t dim, bool is_end, int64_t step) {
  if (v < 0) v = v < -dim ? (step < 0 && is_end ? -1 : 0) : v + dim;
  if (step > 0) return v > dim ? dim : v;
  return v > dim - 1 ? dim - 1 : v;
}

static KnDim slice_len(int64_t dim, int64_t start, int64_t end, int64_t step) {
  int64_t s = clamp_index(start, dim, false, step), e = clamp_index(end, dim, true, step);
  if (step > 0) return IR_DIM(e > s ? (e - s + step - 1) / step : 0);
  return IR_DIM(s > e ? (s - e + (-step) - 1) / (-step) : 0);
}

/* Reads Slice's starts/ends/axes/steps from attributes (opset < 10) or inputs. */
static int slice_params(const KnNode *n, int64_t *st, int64_t *en, int64_t *ax, int64_t *sp) {
  int64_t c1, c2, c3;
  if (n->opset < 10) {
    const int64_t *a = ir_attr_ints(n, "starts", &c1), *b = ir_attr_ints(n, "ends", &c2);
    const int64_t *c = ir_attr_ints(n, "axes", &c3);
    if (!a || !b || c1 != c2 || c1 > MAXR || (c && c3 != c1)) return -1;
    for (int64_t i = 0; i < c1; i++) st[i] = a[i], en[i] = b[i], ax[i] = c ? c[i] : i, sp[i] = 1;
    return (int)c1;
  }
  int k = ir_input_ints(n, 1, st, MAXR);
  if (k < 0 || ir_input_ints(n, 2, en, MAXR) != k) return -1;
  if (n->n_inputs > 3 && n->inputs[3]) { if (ir_input_ints(n, 3, ax, MAXR) != k) return -1; }
  else for (int i = 0; i < k; i++) ax[i] = i;
  if (n->n_inputs > 4 && n->inputs[4]) { if (ir_input_ints(n, 4, sp, MAXR) != k) return -1; }
  else for (int i = 0; i < k; i++) sp[i] = 1;
  return k;
}

static KnStatus slice_sym(KnNode *node, int64_t s, int64_t e, int64_t step, KnError *err) {
  KnValue *in = node->inputs[0];
  if (!in->sym_data) return KN_OK;
  KnDim out[IR_SYM_DATA_MAX];
  int64_t dim = in->sym_len, len = slice_len(dim, s, e, step).value, i0 = clamp_index(s, dim, false, step);
  for (int64_t i = 0; i < len; i++) out[i] = in->sym_data[i0 + i * step];
  return ir_set_sym_data(node, 0, out, (int)len, err);
}

KnStatus infer_slice(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank;
  int64_t s[MAXR], e[MAXR], a[MAXR], p[MAXR];
  int k = rank < 0 ? -1 : slice_params(node, s, e, a, p);
  KnDim out[MAXR];
  if (k < 0) {
    all_unknown(out, rank);
    return ir_set_output(node, 0, x->dtype, rank, out, err);
  }
  memcpy(out, x->shape.dims, (size_t)rank * sizeof *out);
  bool seen[MAXR] = {false};
  for (int i = 0; i < k; i++) {
    int ax;
    if ((st = ir_norm_axis(node, a[i], rank, &ax, err))) return st;
    if (p[i] == 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "step %d is 0", i);
    if (seen[ax]) return ir_infer_fail(err, node, KN_ERR_INVALID, "axis %d is repeated", ax);
    seen[ax] = true;
    out[ax] = x->shape.dims[ax].value >= 0 ? slice_len(x->shape.dims[ax].value, s[i], e[i], p[i]) : IR_DIM_UNKNOWN;
  }
  st = ir_set_output(node, 0, x->dtype, rank, out, err);
  if (!st && rank == 1 && k == 1) st = slice_sym(node, s[0], e[0], p[0], err);
  return st;
}

static KnStatus gather_sym(KnNode *node, KnError *err) {
  KnValue *in = node->inputs[0];
  int64_t idx[IR_SYM_DATA_MAX];
  const KnType *it = ir_input_tensor(node, 1);
  int n = in->sym_data && it->shape.rank <= 1 ? ir_input_ints(node, 1, idx, IR_SYM_DATA_MAX) : -1;
  if (n < 0) return KN_OK;
  KnDim out[IR_SYM_DATA_MAX];
  for (int i = 0; i < n; i++) {
    int64_t j = idx[i] < 0 ? idx[i] + in->sym_len : idx[i];
    if (j < 0 || j >= in->sym_len) return ir_infer_fail(err, node, KN_ERR_INVALID, "index %lld is out of range", (long long)idx[i]);
    out[i] = in->sym_data[j];
  }
  return ir_set_sym_data(node, 0, out, n, err);
}

KnStatus infer_gather(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err), *idx = x ? tensor_in(node, 1, &st, err) : NULL;
  if (!idx) return st;
  if (idx->dtype != KN_I32 && idx->dtype != KN_I64)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "indices have dtype %s, expected i32 or i64", ir_dtype_name(idx->dtype));
  int r = x->shape.rank, q = idx->shape.rank, ax;
  if (r < 0 || q < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), r, &ax, err))) return st;
  if ((st = check_rank(node, r + q - 1, err))) return st;
  KnDim out[MAXR];
  int o = 0;
  for (int i = 0; i < ax; i++) out[o++] = x->shape.dims[i];
  for (int i = 0; i < q; i++) out[o++] = idx->shape.dims[i];
  for (int i = ax + 1; i < r; i++) out[o++] = x->shape.dims[i];
  st = ir_set_output(node, 0, x->dtype, o, out, err);
  return !st && r == 1 ? gather_sym(node, err) : st;
}

KnStatus infer_gather_elements(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err), *idx = x ? tensor_in(node, 1, &st, err) : NULL;
  if (!idx) return st;
  if (x->shape.rank >= 0 && idx->shape.rank >= 0 && x->shape.rank != idx->shape.rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "indices have rank %d, expected %d", idx->shape.rank, x->shape.rank);
  return ir_set_output(node, 0, x->dtype, idx->shape.rank, idx->shape.dims, err);
}

/* GatherND: batch dims, then indices' leading dims, then the data dims not indexed. */
KnStatus infer_gather_nd(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err), *idx = x ? tensor_in(node, 1, &st, err) : NULL;
  if (!idx) return st;
  int r = x->shape.rank, q = idx->shape.rank;
  int64_t b = ir_attr_int(node, "batch_dims", 0);
  if (r < 0 || q < 1 || idx->shape.dims[q - 1].value < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  int64_t last = idx->shape.dims[q - 1].value;
  if (b < 0 || b >= q || b >= r || last > r - b)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "indices' last dim %lld does not fit data rank %d with batch_dims %lld",
                         (long long)last, r, (long long)b);
  KnDim out[MAXR];
  int o = 0;
  for (int i = 0; i < q - 1; i++) out[o++] = idx->shape.dims[i];
  for (int64_t i = b + last; i < r && o < MAXR; i++) out[o++] = x->shape.dims[i];
  return ir_set_output(node, 0, x->dtype, o, out, err);
}

/* Expand: bidirectional broadcast of the input with the given shape. */
KnStatus infer_expand(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  KnDim t[MAXR];
  int n = ir_input_dims(node, 1, t, MAXR);
  if (n < 0) {
    const KnType *s = ir_input_tensor(node, 1);
    int64_t len = s && s->shape.rank == 1 ? s->shape.dims[0].value : -1;
    int r = len >= 0 && len <= MAXR && x->shape.rank >= 0 ? (int)(len > x->shape.rank ? len : x->shape.rank) : -1;
    KnDim u[MAXR];
    all_unknown(u, r);
    return ir_set_output(node, 0, x->dtype, r, u, err);
  }
  for (int i = 0; i < n; i++) t[i] = ir_sym_to_dim(t[i]);
  KnShape target = {n, t}, out;
  if ((st = ir_broadcast(node, &x->shape, &target, &out, err))) return st;
  return ir_set_output(node, 0, x->dtype, out.rank, out.dims, err);
}

KnStatus infer_tile(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank;
  int64_t reps[MAXR];
  int n = rank < 0 ? -1 : ir_input_ints(node, 1, reps, MAXR);
  KnDim out[MAXR];
  all_unknown(out, rank);
  if (n >= 0 && n != rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "repeats has %d entries for rank %d", n, rank);
  for (int i = 0; i < n; i++) {
    if (reps[i] < 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "repeat %d is negative", i);
    out[i] = ir_dim_mul(x->shape.dims[i], IR_DIM(reps[i]));
  }
  return ir_set_output(node, 0, x->dtype, rank, out, err);
}

/* Pad: pads from the attribute (< 11) or input 1, optionally only on `axes` (opset 18). */
KnStatus infer_pad(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int rank = x->shape.rank;
  int64_t pads[2 * MAXR], cnt = -1;
  const int64_t *pa = ir_attr_ints(node, node->opset < 2 ? "paddings" : "pads", &cnt);
  if (pa && cnt <= 2 * MAXR) memcpy(pads, pa, (size_t)cnt * sizeof *pads);
  else if (!pa && node->opset >= 11) cnt = ir_input_ints(node, 1, pads, 2 * MAXR);
  KnDim out[MAXR];
  all_unknown(out, rank);
  if (rank < 0 || cnt < 0) return ir_set_output(node, 0, x->dtype, rank, out, err);
  if (cnt != 2 * rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "pads has %lld entries for rank %d", (long long)cnt, rank);
  for (int i = 0; i < rank; i++) {
    KnDim d = x->shape.dims[i];
    int64_t v = d.value + pads[i] + pads[i + rank];
    out[i] = d.value < 0 ? (pads[i] == 0 && pads[i + rank] == 0 ? d : IR_DIM_UNKNOWN) : IR_DIM(v);
    if (d.value >= 0 && v < 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "pads make dim %d negative", i);
  }
  return ir_set_output(node, 0, x->dtype, rank, out, err);
}

KnStatus infer_constant_of_shape(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnAttr *v = ir_attr(node, "value");
  KnDtype dt = v && v->kind == KN_ATTR_TENSOR ? v->t->dtype : KN_F32;
  if (v && (v->kind != KN_ATTR_TENSOR || v->t->numel != 1))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute 'value' must be a one-element tensor");
  KnDim t[MAXR];
  int n = ir_input_dims(node, 0, t, MAXR);
  if (n < 0) {
    const KnType *s = ir_input_tensor(node, 0);
    int r = s->shape.rank == 1 && s->shape.dims[0].value >= 0 && s->shape.dims[0].value <= MAXR
                ? (int)s->shape.dims[0].value : -1;
    all_unknown(t, r);
    return ir_set_output(node, 0, dt, r, t, err);
  }
  for (int i = 0; i < n; i++) {
    if (!t[i].sym && t[i].value < 0)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "shape entry %d is negative", i);
    t[i] = ir_sym_to_dim(t[i]);
  }
  if ((st = ir_set_output(node, 0, dt, n, t, err))) return st;
  int64_t numel;
  KnShape s = {n, t};
  if (v && ir_dtype_is_int(dt) && ir_shape_numel(&s, &numel) && numel <= IR_SYM_DATA_MAX && n <= 1) {
    KnDim fill[IR_SYM_DATA_MAX];
    for (int64_t i = 0; i < numel; i++) fill[i] = (KnDim){ir_tensor_get_int(v->t, 0), NULL};
    st = ir_set_sym_data(node, 0, fill, (int)numel, err);
  }
  return st;
}

/* Constant: the value comes from whichever value* attribute is set; small ints are recorded. */
KnStatus infer_constant(KnNode *node, KnError *err) {
  if (node->n_attrs != 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "needs exactly one value attribute, has %d", node->n_attrs);
  const KnAttr *a = &node->attrs[0];
  const char *nm = a->name;
  KnDim len = IR_DIM(a->n);
  KnStatus st;
  if (strcmp(nm, "value") == 0 && a->kind == KN_ATTR_TENSOR) {
    const KnTensor *t = a->t;
    KnType ty = ir_type_tensor(node->graph->arena, t->dtype, t->rank, t->dims);
    if ((st = ir_set_output_type(node, 0, &ty, err))) return st;
    if (!ir_dtype_is_int(t->dtype) || t->rank > 1 || t->numel > IR_SYM_DATA_MAX) return KN_OK;
    KnDim d[IR_SYM_DATA_MAX];
    for (int64_t i = 0; i < t->numel; i++) d[i] = (KnDim){ir_tensor_get_int(t, i), NULL};
    return ir_set_sym_data(node, 0, d, (int)t->numel, err);
  }
  if (strcmp(nm, "sparse_value") == 0 && a->kind == KN_ATTR_SPARSE_TENSOR) {
    KnType ty = ir_type_tensor(node->graph->arena, a->sp->values->dtype, a->sp->rank, a->sp->dims);
    return ir_set_output_type(node, 0, &ty, err);
  }
  if (strcmp(nm, "value_float") == 0 && a->kind == KN_ATTR_FLOAT) return ir_set_output(node, 0, KN_F32, 0, NULL, err);
  if (strcmp(nm, "value_floats") == 0 && a->kind == KN_ATTR_FLOATS) return ir_set_output(node, 0, KN_F32, 1, &len, err);
  if (strcmp(nm, "value_string") == 0 && a->kind == KN_ATTR_STRING) return ir_set_output(node, 0, KN_STRING, 0, NULL, err);
  if (strcmp(nm, "value_strings") == 0 && a->kind == KN_ATTR_STRINGS) return ir_set_output(node, 0, KN_STRING, 1, &len, err);
  if (strcmp(nm, "value_int") == 0 && a->kind == KN_ATTR_INT) {
    KnDim d = {a->i, NULL};
    st = ir_set_output(node, 0, KN_I64, 0, NULL, err);
    return st ? st : ir_set_sym_data(node, 0, &d, 1, err);
  }
  if (strcmp(nm, "value_ints") == 0 && a->kind == KN_ATTR_INTS) {
    if ((st = ir_set_output(node, 0, KN_I64, 1, &len, err)) || a->n > IR_SYM_DATA_MAX) return st;
    KnDim d[IR_SYM_DATA_MAX];
    for (int64_t i = 0; i < a->n; i++) d[i] = (KnDim){a->ints[i], NULL};
    return ir_set_sym_data(node, 0, d, (int)a->n, err);
  }
  return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute '%s' of kind %s is not a Constant value", nm,
                       ir_attr_kind_name(a->kind));
}

/* Range: length max(ceil((limit - start) / delta), 0) when all three are known. */
KnStatus infer_range(KnNode *node, KnError *err) {
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ir_require_tensor(node, i, err);
  if (st) return st;
  KnDtype dt = ir_input_tensor(node, 0)->dtype;
  KnDim len = IR_DIM_UNKNOWN;
  double v[3];
  bool known = true;
  for (int i = 0; i < 3; i++) {
    KnValue *x = node->inputs[i];
    int64_t iv;
    if (x->init && x->init->numel == 1) v[i] = ir_tensor_get_double(x->init, 0);
    else if (ir_input_ints(node, i, &iv, 1) == 1) v[i] = (double)iv;
    else known = false;
  }
  if (known) {
    if (v[2] == 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "delta is 0");
    double n = __builtin_ceil((v[1] - v[0]) / v[2]);
    if (n > 9.0e15) return ir_infer_fail(err, node, KN_ERR_LIMIT, "range has too many elements");
    len = IR_DIM(n > 0 ? (int64_t)n : 0);
  }
  if ((st = ir_set_output(node, 0, dt, 1, &len, err))) return st;
  if (known && ir_dtype_is_int(dt) && len.value <= IR_SYM_DATA_MAX) {
    KnDim d[IR_SYM_DATA_MAX];
    for (int64_t i = 0; i < len.value; i++) d[i] = (KnDim){(int64_t)v[0] + i * (int64_t)v[2], NULL};
    st = ir_set_sym_data(node, 0, d, (int)len.value, err);
  }
  return st;
}

KnStatus infer_eye_like(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  if (x->shape.rank >= 0 && x->shape.rank != 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input has rank %d, expected 2", x->shape.rank);
  const KnAttr *dt = ir_attr(node, "dtype");
  KnDtype out = dt && dt->kind == KN_ATTR_INT && ir_dtype_is_known((int)dt->i) ? (KnDtype)dt->i : x->dtype;
  return ir_set_output(node, 0, out, 2, x->shape.rank == 2 ? x->shape.dims : (KnDim[]){IR_DIM_UNKNOWN, IR_DIM_UNKNOWN}, err);
}

/* OneHot: a new axis of size depth, in the dtype of `values`. */
KnStatus infer_one_hot(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *idx = tensor_in(node, 0, &st, err);
  if (!idx || (st = ir_require_tensor(node, 1, err)) || (st = ir_require_tensor(node, 2, err))) return st;
  KnDtype dt = ir_input_tensor(node, 2)->dtype;
  int rank = idx->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, dt, -1, NULL, err);
  if ((st = check_rank(node, rank + 1, err))) return st;
  int ax;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", -1), rank + 1, &ax, err))) return st;
  KnValue *dv = node->inputs[1];
  KnDim depth = dv->init && dv->init->numel == 1 ? IR_DIM((int64_t)ir_tensor_get_double(dv->init, 0)) : IR_DIM_UNKNOWN;
  KnDim out[MAXR];
  for (int i = 0, j = 0; i <= rank; i++) out[i] = i == ax ? depth : idx->shape.dims[j++];
  return ir_set_output(node, 0, dt, rank + 1, out, err);
}

/* DepthToSpace (sign +1) and SpaceToDepth (sign -1) on NCHW with blocksize b. */
static KnStatus depth_space(KnNode *node, bool to_space, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  int64_t b = ir_attr_int(node, "blocksize", 0);
  if (b <= 0 || b > (1 << 20)) return ir_infer_fail(err, node, KN_ERR_INVALID, "blocksize %lld is invalid", (long long)b);
  if (x->shape.rank < 0) return ir_set_output(node, 0, x->dtype, 4, (KnDim[]){IR_DIM_UNKNOWN, IR_DIM_UNKNOWN, IR_DIM_UNKNOWN, IR_DIM_UNKNOWN}, err);
  if (x->shape.rank != 4) return ir_infer_fail(err, node, KN_ERR_INVALID, "input has rank %d, expected 4", x->shape.rank);
  KnDim out[4];
  memcpy(out, x->shape.dims, sizeof out);
  KnDim c = x->shape.dims[1];
  if (to_space) {
    if (c.value >= 0 && c.value % (b * b))
      return ir_infer_fail(err, node, KN_ERR_INVALID, "channels %lld are not divisible by blocksize^2", (long long)c.value);
    out[1] = c.value >= 0 ? IR_DIM(c.value / (b * b)) : IR_DIM_UNKNOWN;
    out[2] = ir_dim_mul(out[2], IR_DIM(b));
    out[3] = ir_dim_mul(out[3], IR_DIM(b));
  } else {
    for (int i = 2; i < 4; i++) {
      KnDim d = x->shape.dims[i];
      if (d.value >= 0 && d.value % b)
        return ir_infer_fail(err, node, KN_ERR_INVALID, "dim %d (%lld) is not divisible by blocksize", i, (long long)d.value);
      out[i] = d.value >= 0 ? IR_DIM(d.value / b) : IR_DIM_UNKNOWN;
    }
    out[1] = ir_dim_mul(c, IR_DIM(b * b));
  }
  return ir_set_output(node, 0, x->dtype, 4, out, err);
}

KnStatus infer_depth_to_space(KnNode *node, KnError *err) { return depth_space(node, true, err); }
KnStatus infer_space_to_depth(KnNode *node, KnError *err) { return depth_space(node, false, err); }

/* Compress: data-dependent length along axis, or 1-D when no axis. */
KnStatus infer_compress(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x || (st = ir_require_tensor(node, 1, err))) return st;
  const KnAttr *axis = ir_attr(node, "axis");
  if (!axis) return ir_set_output(node, 0, x->dtype, 1, &IR_DIM_UNKNOWN, err);
  if (x->shape.rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  int ax;
  if ((st = ir_norm_axis(node, axis->i, x->shape.rank, &ax, err))) return st;
  KnDim out[MAXR];
  memcpy(out, x->shape.dims, (size_t)x->shape.rank * sizeof *out);
  out[ax] = IR_DIM_UNKNOWN;
  return ir_set_output(node, 0, x->dtype, x->shape.rank, out, err);
}

/* NonZero: [rank, number of non-zeros], the count known only at run time. */
KnStatus infer_non_zero(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *x = tensor_in(node, 0, &st, err);
  if (!x) return st;
  KnDim out[2] = {x->shape.rank >= 0 ? IR_DIM(x->shape.rank) : IR_DIM_UNKNOWN, IR_DIM_UNKNOWN};
  return ir_set_output(node, 0, KN_I64, 2, out, err);
}

/* ReverseSequence, Scatter, ScatterElements, ScatterND: the output is shaped like input 0. */
KnStatus infer_same_as_input(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  for (int i = 1; i < node->n_inputs && !st; i++) st = ir_require_tensor(node, i, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  if (node->n_inputs > 2) {
    const KnType *u = ir_input_tensor(node, 2);
    if (u->dtype != x->dtype)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "updates have dtype %s, expected %s", ir_dtype_name(u->dtype), ir_dtype_name(x->dtype));
  }
  return ir_set_output_type(node, 0, x, err);
}
