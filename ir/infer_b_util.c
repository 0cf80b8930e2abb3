/* infer_b_util.c - small helpers for the NN, signal, sequence and control-flow inference files. */
#include <string.h>

#include "ir/infer_b_internal.h"

KnDim *ib_dims(const KnNode *n, int rank) {
  KnDim *d = ir_arena_calloc(n->graph->arena, (size_t)(rank > 0 ? rank : 1), sizeof *d);
  for (int i = 0; d && i < rank; i++) d[i] = IR_DIM_UNKNOWN;
  return d;
}

KnStatus ib_nomem(KnError *err) {
  return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
}

const KnTensor *ib_const_tensor(const KnNode *n, int i) {
  KnValue *v = ir_input(n, i);
  if (!v) return NULL;
  if (v->init) return v->init;
  if (v->producer && v->producer->op == KN_OP_Constant) {
    const KnAttr *a = ir_attr(v->producer, "value");
    if (a && a->kind == KN_ATTR_TENSOR) return a->t;
  }
  return NULL;
}

/* Constant's scalar/list attribute forms (value_float, value_ints, ...). */
static int constant_attr_doubles(const KnNode *p, double *out, int max) {
  const KnAttr *a;
  if ((a = ir_attr(p, "value_float")) && a->kind == KN_ATTR_FLOAT && max >= 1) {
    out[0] = a->f;
    return 1;
  }
  if ((a = ir_attr(p, "value_int")) && a->kind == KN_ATTR_INT && max >= 1) {
    out[0] = (double)a->i;
    return 1;
  }
  if ((a = ir_attr(p, "value_floats")) && a->kind == KN_ATTR_FLOATS && a->n <= max) {
    for (int64_t k = 0; k < a->n; k++) out[k] = a->floats[k];
    return (int)a->n;
  }
  if ((a = ir_attr(p, "value_ints")) && a->kind == KN_ATTR_INTS && a->n <= max) {
    for (int64_t k = 0; k < a->n; k++) out[k] = (double)a->ints[k];
    return (int)a->n;
  }
  return -1;
}

int ib_input_doubles(const KnNode *n, int i, double *out, int max) {
  const KnTensor *t = ib_const_tensor(n, i);
  if (t) {
    if (t->rank > 1 || t->numel > max || t->dtype == KN_STRING) return -1;
    for (int64_t k = 0; k < t->numel; k++) out[k] = ir_tensor_get_double(t, k);
    return (int)t->numel;
  }
  KnValue *v = ir_input(n, i);
  if (v && v->producer && v->producer->op == KN_OP_Constant)
    return constant_attr_doubles(v->producer, out, max);
  int64_t ints[IR_SYM_DATA_MAX];
  int cnt = ir_input_ints(n, i, ints, max < IR_SYM_DATA_MAX ? max : IR_SYM_DATA_MAX);
  for (int k = 0; k < cnt; k++) out[k] = (double)ints[k];
  return cnt;
}

bool ib_input_scalar(const KnNode *n, int i, int64_t *out) {
  int64_t v[1];
  if (ir_input_ints(n, i, v, 1) == 1) {
    *out = v[0];
    return true;
  }
  double d[1];
  if (ib_input_doubles(n, i, d, 1) != 1 || d[0] != d[0] || d[0] > 9.0e18 || d[0] < -9.0e18)
    return false;
  *out = (int64_t)d[0];
  return true;
}

int ib_rank(const KnNode *n, int i) {
  const KnType *t = ir_input_tensor(n, i);
  return t ? t->shape.rank : -1;
}

KnDim ib_dim(const KnNode *n, int i, int d) {
  const KnType *t = ir_input_tensor(n, i);
  if (!t || d < 0 || d >= t->shape.rank) return IR_DIM_UNKNOWN;
  return t->shape.dims[d];
}

KnDim ib_better_dim(KnDim a, KnDim b) {
  if (a.value >= 0) return a;
  if (b.value >= 0) return b;
  return a.sym && a.sym != IR_SYM_UNKNOWN ? a : b;
}

KnStatus ib_tensor(const KnNode *n, int i, const KnType **t, KnError *err) {
  KnStatus st = ir_require_tensor(n, i, err);
  if (st) return st;
  *t = ir_input_tensor(n, i);
  return KN_OK;
}

KnStatus ib_check_dim(const KnNode *n, KnDim a, KnDim b, const char *what, KnError *err) {
  if (a.value >= 0 && b.value >= 0 && a.value != b.value)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s: %lld vs %lld, expected equal", what,
                         (long long)a.value, (long long)b.value);
  return KN_OK;
}

KnStatus ib_check_rank(const KnNode *n, int i, int rank, KnError *err) {
  int r = ib_rank(n, i);
  if (r >= 0 && r != rank)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') has rank %d, expected %d", i,
                         ir_input(n, i)->name, r, rank);
  return KN_OK;
}

KnStatus ib_check_same_dtype(const KnNode *n, int i, int j, KnError *err) {
  const KnType *a = ir_input_tensor(n, i), *b = ir_input_tensor(n, j);
  if (!a || !b || a->dtype == KN_UNDEF || b->dtype == KN_UNDEF || a->dtype == b->dtype) return KN_OK;
  return ir_infer_fail(err, n, KN_ERR_INVALID,
                       "input %d ('%s') is %s but input %d ('%s') is %s, expected the same dtype",
                       i, ir_input(n, i)->name, ir_dtype_name(a->dtype), j, ir_input(n, j)->name,
                       ir_dtype_name(b->dtype));
}

KnStatus ib_like_input(KnNode *n, int o, int i, KnDtype dtype, KnError *err) {
  const KnType *t;
  KnStatus st = ib_tensor(n, i, &t, err);
  if (st) return st;
  return ir_set_output(n, o, dtype != KN_UNDEF ? dtype : t->dtype, t->shape.rank, t->shape.dims, err);
}

KnStatus ib_attr_dtype(const KnNode *n, const char *name, KnDtype dflt, KnDtype *out, KnError *err) {
  int64_t code = ir_attr_int(n, name, (int64_t)dflt);
  if (code < 0 || code > 0x7fffffff || !ir_dtype_is_known((int)code))
    return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute %s = %lld is not a known dtype", name,
                         (long long)code);
  *out = (KnDtype)code;
  return KN_OK;
}

static const char *kind_name(KnTypeKind k) {
  switch (k) {
  case KN_TYPE_TENSOR: return "tensor";
  case KN_TYPE_SEQUENCE: return "sequence";
  case KN_TYPE_OPTIONAL: return "optional";
  case KN_TYPE_MAP: return "map";
  case KN_TYPE_SPARSE: return "sparse tensor";
  default: return "value of unknown type";
  }
}

static KnStatus union_shape(const KnNode *n, const KnShape *a, const KnShape *b, KnShape *out,
                            KnError *err) {
  if (a->rank < 0 || b->rank < 0 || a->rank != b->rank) {
    *out = (KnShape){-1, NULL};
    return KN_OK;
  }
  KnDim *d = ib_dims(n, a->rank);
  if (!d) return ib_nomem(err);
  for (int i = 0; i < a->rank; i++)
    if (ir_dim_equal(a->dims[i], b->dims[i])) d[i] = a->dims[i];
  *out = (KnShape){a->rank, d};
  return KN_OK;
}

KnStatus ib_union_type(const KnNode *n, const KnType *a, const KnType *b, KnType *out,
                       const char *what, KnError *err) {
  if (a->kind == KN_TYPE_NONE || b->kind == KN_TYPE_NONE) {
    *out = ir_type_copy(n->graph->arena, a->kind == KN_TYPE_NONE ? b : a);
    return KN_OK;
  }
  if (a->kind != b->kind)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s: one is a %s, the other a %s, expected the same",
                         what, kind_name(a->kind), kind_name(b->kind));
  if (a->dtype != KN_UNDEF && b->dtype != KN_UNDEF && a->dtype != b->dtype)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s: dtypes %s and %s differ, expected the same",
                         what, ir_dtype_name(a->dtype), ir_dtype_name(b->dtype));
  *out = *a;
  if (out->dtype == KN_UNDEF) out->dtype = b->dtype;
  if (a->kind == KN_TYPE_TENSOR || a->kind == KN_TYPE_SPARSE)
    return union_shape(n, &a->shape, &b->shape, &out->shape, err);
  out->shape = (KnShape){-1, NULL};
  if (!a->elem || !b->elem) {
    out->elem = NULL;
    return KN_OK;
  }
  out->elem = ir_arena_alloc(n->graph->arena, sizeof *out->elem);
  if (!out->elem) return ib_nomem(err);
  return ib_union_type(n, a->elem, b->elem, out->elem, what, err);
}

static bool is_graph_output(const KnGraph *g, const KnValue *v) {
  for (int k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == v) return true;
  return false;
}

void ib_forget_graph(KnGraph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *nd = g->nodes[i];
    for (int j = 0; j < nd->n_outputs; j++) {
      KnValue *v = nd->outputs[j];
      if (!v) continue;
      KnDtype keep = v->type.kind == KN_TYPE_TENSOR && is_graph_output(g, v) ? v->type.dtype : KN_UNDEF;
      v->type = (KnType){.shape.rank = -1};
      if (keep != KN_UNDEF) v->type = (KnType){.kind = KN_TYPE_TENSOR, .dtype = keep, .shape.rank = -1};
      v->sym_data = NULL;
      v->sym_len = 0;
    }
    for (int a = 0; a < nd->n_attrs; a++) {
      if (nd->attrs[a].kind == KN_ATTR_GRAPH && nd->attrs[a].g) ib_forget_graph(nd->attrs[a].g);
      if (nd->attrs[a].kind == KN_ATTR_GRAPHS)
        for (int64_t k = 0; k < nd->attrs[a].n; k++)
          if (nd->attrs[a].graphs[k]) ib_forget_graph(nd->attrs[a].graphs[k]);
    }
  }
}

KnStatus ib_graph_attr(const KnNode *n, const char *name, KnGraph **out, KnError *err) {
  const KnAttr *a = ir_attr(n, name);
  if (!a || a->kind != KN_ATTR_GRAPH || !a->g)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "graph attribute '%s' is missing", name);
  *out = a->g;
  return KN_OK;
}
