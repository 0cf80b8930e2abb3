/* infer_util.c - helpers shared by the per-op shape inference functions. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

KnStatus ir_infer_fail(KnError *err, const KnNode *n, KnStatus st, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n->name && n->name[0])
    return kn_fail(err, st, "node '%s' (%s): %s", n->name, ir_ops[n->op].name, msg);
  return kn_fail(err, st, "node #%d (%s): %s", n->id, ir_ops[n->op].name, msg);
}

KnValue *ir_input(const KnNode *n, int i) {
  return i >= 0 && i < n->n_inputs ? n->inputs[i] : NULL;
}

const KnType *ir_input_tensor(const KnNode *n, int i) {
  KnValue *v = ir_input(n, i);
  return v && v->type.kind == KN_TYPE_TENSOR ? &v->type : NULL;
}

KnStatus ir_require_tensor(const KnNode *n, int i, KnError *err) {
  KnValue *v = ir_input(n, i);
  if (!v) return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d is missing", i);
  if (v->type.kind != KN_TYPE_TENSOR) {
    char buf[128];
    ir_type_format(&v->type, buf, sizeof buf);
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') has type %s, expected a tensor", i,
                         v->name, buf);
  }
  return KN_OK;
}

KnStatus ir_set_output_type(KnNode *n, int i, const KnType *t, KnError *err) {
  if (i < 0 || i >= n->n_outputs || !n->outputs[i]) return KN_OK; /* omitted optional output */
  KnType copy = ir_type_copy(n->graph->arena, t);
  if ((t->shape.rank > 0 && !copy.shape.dims) || (t->elem && !copy.elem))
    return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
  n->outputs[i]->type = copy;
  return KN_OK;
}

KnStatus ir_set_output(KnNode *n, int i, KnDtype dtype, int rank, const KnDim *dims, KnError *err) {
  KnType t = {.kind = KN_TYPE_TENSOR, .dtype = dtype, .shape = {rank, (KnDim *)dims}};
  for (int d = 0; d < rank; d++)
    if (dims[d].value < -1 || (dims[d].value < 0 && dims[d].sym && !dims[d].sym[0]))
      return ir_infer_fail(err, n, KN_ERR_INVALID, "output %d dim %d is invalid (%lld)", i, d,
                           (long long)dims[d].value);
  return ir_set_output_type(n, i, &t, err);
}

/* One dim of a numpy broadcast: 1 stretches, equal dims agree, a concrete dim beats an unknown. */
static KnStatus broadcast_dim(const KnNode *n, KnDim a, KnDim b, KnDim *out, KnError *err) {
  if (a.value == 1) *out = b;
  else if (b.value == 1) *out = a;
  else if (ir_dim_equal(a, b)) *out = a;
  else if (a.value >= 0 && b.value >= 0)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "cannot broadcast dims %lld and %lld",
                         (long long)a.value, (long long)b.value);
  else if (a.value >= 0) *out = a;
  else if (b.value >= 0) *out = b;
  else *out = IR_DIM_UNKNOWN;
  return KN_OK;
}

KnStatus ir_broadcast(const KnNode *n, const KnShape *a, const KnShape *b, KnShape *out,
                      KnError *err) {
  if (a->rank < 0 || b->rank < 0) {
    *out = (KnShape){-1, NULL};
    return KN_OK;
  }
  int rank = a->rank > b->rank ? a->rank : b->rank;
  KnDim *dims = ir_arena_calloc(n->graph->arena, (size_t)(rank ? rank : 1), sizeof *dims);
  if (!dims) return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
  for (int i = 0; i < rank; i++) {
    int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
    KnDim da = ia >= 0 ? a->dims[ia] : IR_DIM(1), db = ib >= 0 ? b->dims[ib] : IR_DIM(1);
    KnStatus st = broadcast_dim(n, da, db, &dims[i], err);
    if (st) return st;
  }
  *out = (KnShape){rank, dims};
  return KN_OK;
}

const char IR_SYM_UNKNOWN[] = "?";

KnDim ir_dim_to_sym(KnDim d) {
  return d.value >= 0 || d.sym ? d : (KnDim){-1, IR_SYM_UNKNOWN};
}

KnDim ir_sym_to_dim(KnDim e) {
  if (e.sym == IR_SYM_UNKNOWN || (!e.sym && e.value < 0)) return IR_DIM_UNKNOWN;
  return e;
}

int ir_input_dims(const KnNode *n, int i, KnDim *out, int max) {
  KnValue *v = ir_input(n, i);
  if (!v) return -1;
  if (v->sym_data) {
    if (v->sym_len > max) return -1;
    memcpy(out, v->sym_data, (size_t)v->sym_len * sizeof *out);
    return v->sym_len;
  }
  const KnTensor *t = v->init;
  if (!t || t->rank > 1 || t->numel > max || !(ir_dtype_is_int(t->dtype) || t->dtype == KN_BOOL))
    return -1;
  for (int64_t k = 0; k < t->numel; k++) out[k] = (KnDim){ir_tensor_get_int(t, k), NULL};
  return (int)t->numel;
}

int ir_input_ints(const KnNode *n, int i, int64_t *out, int max) {
  KnValue *v = ir_input(n, i);
  if (!v) return -1;
  /* Initializers may be larger than IR_SYM_DATA_MAX (e.g. long pads lists): read directly. */
  if (!v->sym_data && v->init && v->init->rank <= 1 && ir_dtype_is_int(v->init->dtype)) {
    if (v->init->numel > max) return -1;
    for (int64_t k = 0; k < v->init->numel; k++) out[k] = ir_tensor_get_int(v->init, k);
    return (int)v->init->numel;
  }
  KnDim dims[IR_SYM_DATA_MAX];
  int cnt = ir_input_dims(n, i, dims, max < IR_SYM_DATA_MAX ? max : IR_SYM_DATA_MAX);
  for (int k = 0; k < cnt; k++) {
    if (dims[k].sym) return -1;
    out[k] = dims[k].value;
  }
  return cnt;
}

KnStatus ir_norm_axis(const KnNode *n, int64_t axis, int rank, int *out, KnError *err) {
  if (axis < -(int64_t)rank || axis >= rank)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "axis %lld is out of range for rank %d",
                         (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return KN_OK;
}

KnStatus ir_set_sym_data(KnNode *n, int i, const KnDim *data, int len, KnError *err) {
  if (i < 0 || i >= n->n_outputs || !n->outputs[i] || len > IR_SYM_DATA_MAX || len < 0)
    return KN_OK;
  KnDim *copy = ir_arena_calloc(n->graph->arena, (size_t)(len ? len : 1), sizeof *copy);
  if (!copy) return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
  if (len) memcpy(copy, data, (size_t)len * sizeof *copy);
  n->outputs[i]->sym_data = copy;
  n->outputs[i]->sym_len = len;
  return KN_OK;
}
