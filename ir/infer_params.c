/* infer_params.c - checks that a parameter input has the size its op's lowering reads, so a short
 * Clip bound or LSTM bias is refused at compile time rather than read past at run time. */
#include <stdio.h>

#include "ir/infer_params.h"

/* "f32[2,?]" for input i, or "?" when it has no tensor type. */
static const char *shape_str(const KnNode *n, int i, char *buf, size_t size) {
  const KnValue *v = ir_input(n, i);
  if (!v) return "absent";
  ir_type_format(&v->type, buf, size);
  return buf;
}

static void dims_str(int rank, const KnDim *dims, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int d = 0; d < rank && len + 24 < size; d++) {
    int w = dims[d].value >= 0 ? snprintf(buf + len, size - len, "%s%lld", d ? "," : "",
                                          (long long)dims[d].value)
                               : snprintf(buf + len, size - len, "%s?", d ? "," : "");
    if (w < 0) return;
    len += (size_t)w;
  }
}

static KnStatus fail(const KnNode *n, int i, const char *what, const char *expected, KnError *err) {
  char buf[160];
  return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d (%s, '%s') is %s, expected %s", i, what,
                       ir_input(n, i)->name, shape_str(n, i, buf, sizeof buf), expected);
}

KnStatus ip_check_numel(const KnNode *n, int i, const char *what, int64_t count, KnError *err) {
  const KnType *t = ir_input_tensor(n, i);
  int64_t numel;
  if (!t || !ir_shape_numel(&t->shape, &numel) || numel == count) return KN_OK;
  char exp[64];
  snprintf(exp, sizeof exp, count == 1 ? "one element (a scalar)" : "%lld elements",
           (long long)count);
  return fail(n, i, what, exp, err);
}

KnStatus ip_check_scalar_or_len(const KnNode *n, int i, const char *what, KnDim len, KnError *err) {
  const KnType *t = ir_input_tensor(n, i);
  int64_t numel;
  if (!t || !ir_shape_numel(&t->shape, &numel) || numel == 1) return KN_OK;
  if (t->shape.rank == 1 && (len.value < 0 ? numel > 0 : numel == len.value)) return KN_OK;
  char exp[64];
  if (len.value >= 0) snprintf(exp, sizeof exp, "a scalar or [%lld]", (long long)len.value);
  else snprintf(exp, sizeof exp, "a scalar or a non-empty 1-D tensor");
  return fail(n, i, what, exp, err);
}

KnStatus ip_check_shape(const KnNode *n, int i, const char *what, int rank, const KnDim *dims,
                        KnError *err) {
  const KnType *t = ir_input_tensor(n, i);
  if (!t || t->shape.rank < 0) return KN_OK;
  bool ok = t->shape.rank == rank;
  for (int d = 0; ok && d < rank; d++)
    ok = dims[d].value < 0 || t->shape.dims[d].value < 0 || dims[d].value == t->shape.dims[d].value;
  if (ok) return KN_OK;
  char d[128], exp[160];
  dims_str(rank, dims, d, sizeof d);
  snprintf(exp, sizeof exp, "shape [%s]", d);
  return fail(n, i, what, exp, err);
}

KnStatus ip_check_unibroadcast(const KnNode *n, int i, const char *what, int rank,
                               const KnDim *to, KnError *err) {
  const KnType *t = ir_input_tensor(n, i);
  if (!t || t->shape.rank < 0 || rank < 0) return KN_OK;
  bool ok = t->shape.rank <= rank;
  for (int d = 0; ok && d < t->shape.rank; d++) {
    KnDim a = t->shape.dims[d], b = to[rank - t->shape.rank + d];
    ok = a.value < 0 || a.value == 1 || b.value < 0 || a.value == b.value;
  }
  if (ok) return KN_OK;
  char d[128], exp[192];
  dims_str(rank, to, d, sizeof d);
  snprintf(exp, sizeof exp, "a shape that broadcasts to [%s]", d);
  return fail(n, i, what, exp, err);
}

KnStatus ip_check_same_shape(const KnNode *n, int i, const char *what, int j, const char *jwhat,
                             KnError *err) {
  const KnType *a = ir_input_tensor(n, i), *b = ir_input_tensor(n, j);
  if (!a || !b || a->shape.rank < 0 || b->shape.rank < 0) return KN_OK;
  bool ok = a->shape.rank == b->shape.rank;
  for (int d = 0; ok && d < a->shape.rank; d++) {
    KnDim x = a->shape.dims[d], y = b->shape.dims[d];
    ok = x.value < 0 || y.value < 0 || x.value == y.value;
  }
  if (ok) return KN_OK;
  char buf[160], exp[224];
  snprintf(exp, sizeof exp, "the shape of input %d (%s), %s", j, jwhat, shape_str(n, j, buf, sizeof buf));
  return fail(n, i, what, exp, err);
}
