/* infer.c - drives shape inference over a graph and merges inferred with declared types. */
#include <string.h>

#include "ir/ir.h"
#include "ir/infer_types.h"

static KnStatus merge_type(const KnNode *n, int out, const KnType *declared, KnType *inferred,
                           KnError *err);

/* A declared dim may be refined by an inferred one; two different concrete dims conflict. */
static KnStatus merge_dims(const KnNode *n, int out, const KnShape *declared, KnShape *inferred,
                           KnError *err) {
  if (declared->rank < 0) return KN_OK;
  if (inferred->rank < 0) {
    *inferred = ir_shape_copy(n->graph->arena, declared);
    return inferred->rank > 0 && !inferred->dims ? kn_fail(err, KN_ERR_NOMEM, "out of memory")
                                                 : KN_OK;
  }
  if (declared->rank != inferred->rank)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "output %d has rank %d, but the model declares %d",
                         out, inferred->rank, declared->rank);
  for (int d = 0; d < declared->rank; d++) {
    KnDim dd = declared->dims[d], *id = &inferred->dims[d];
    if (dd.value >= 0 && id->value >= 0 && dd.value != id->value)
      return ir_infer_fail(err, n, KN_ERR_INVALID,
                           "output %d dim %d is %lld, but the model declares %lld", out, d,
                           (long long)id->value, (long long)dd.value);
    if (id->value < 0 && (dd.value >= 0 || (!id->sym && dd.sym))) *id = dd;
  }
  return KN_OK;
}

static KnStatus merge_type(const KnNode *n, int out, const KnType *declared, KnType *inferred,
                           KnError *err) {
  if (declared->kind == KN_TYPE_NONE) return KN_OK;
  if (inferred->kind == KN_TYPE_NONE) {
    *inferred = ir_type_copy(n->graph->arena, declared);
    return KN_OK;
  }
  if (declared->kind != inferred->kind)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "output %d kind differs from the model's declaration", out);
  if (declared->dtype != KN_UNDEF && inferred->dtype != KN_UNDEF && declared->dtype != inferred->dtype)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "output %d has dtype %s, but the model declares %s",
                         out, ir_dtype_name(inferred->dtype), ir_dtype_name(declared->dtype));
  if (inferred->dtype == KN_UNDEF) inferred->dtype = declared->dtype;
  if (declared->elem && inferred->elem) return merge_type(n, out, declared->elem, inferred->elem, err);
  if (declared->elem && !inferred->elem) {
    inferred->elem = ir_arena_alloc(n->graph->arena, sizeof *inferred->elem);
    if (!inferred->elem) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    *inferred->elem = ir_type_copy(n->graph->arena, declared->elem);
    return KN_OK;
  }
  return merge_dims(n, out, &declared->shape, &inferred->shape, err);
}

static KnStatus check_arity(const KnNode *n, KnError *err) {
  const KnOpInfo *op = &ir_ops[n->op];
  if (n->n_inputs < op->min_inputs || n->n_inputs > op->max_inputs)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "has %d inputs, expected %d to %d", n->n_inputs,
                         op->min_inputs, op->max_inputs);
  if (n->n_outputs < op->min_outputs || n->n_outputs > op->max_outputs)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "has %d outputs, expected %d to %d", n->n_outputs,
                         op->min_outputs, op->max_outputs);
  return KN_OK;
}

static KnStatus infer_node(KnNode *n, KnError *err) {
  KnStatus st = check_arity(n, err);
  if (!st) st = ir_infer_check_types(n, err); /* ONNX's type constraints, before any op looks */
  if (st) return st;
  /* Not a VLA: a hostile node may claim a million outputs. */
  KnType *declared = ir_arena_calloc(n->graph->arena, (size_t)n->n_outputs + 1, sizeof *declared);
  if (!declared) return kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
  for (int i = 0; i < n->n_outputs; i++) {
    KnValue *v = n->outputs[i];
    declared[i] = v ? v->type : (KnType){.shape.rank = -1};
    if (v) {
      v->type = (KnType){.shape.rank = -1};
      v->sym_data = NULL;
      v->sym_len = 0;
    }
  }
  st = ir_ops[n->op].infer(n, err);
  for (int i = 0; i < n->n_outputs && !st; i++)
    if (n->outputs[i]) st = merge_type(n, i, &declared[i], &n->outputs[i]->type, err);
  /* An allocation that failed inside inference leaves a type without its dims: an error here,
   * never a NULL dereference in the next node's inference. */
  for (int i = 0; i < n->n_outputs && !st; i++)
    if (n->outputs[i] && !ir_type_whole(&n->outputs[i]->type))
      st = kn_fail(err, KN_ERR_NOMEM, "out of memory in shape inference");
  return st;
}

KnStatus ir_infer_graph(KnGraph *g, KnError *err) {
  for (int i = 0; i < g->n_nodes; i++) {
    g->nodes[i]->id = i;
    KnStatus st = infer_node(g->nodes[i], err);
    if (st) return st;
  }
  return KN_OK;
}

/* Forgets what earlier inference and value_info said about intermediate values, so a new input
 * shape is not checked against dims that only held for the old one. Graph outputs keep their
 * declared dtype. Recurses into subgraphs. */
static void forget_types(KnGraph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_outputs; j++) {
      KnValue *v = n->outputs[j];
      if (!v) continue;
      KnDtype keep = v->type.kind == KN_TYPE_TENSOR ? v->type.dtype : KN_UNDEF;
      v->type = (KnType){.shape.rank = -1};
      for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v && keep != KN_UNDEF) v->type = (KnType){KN_TYPE_TENSOR, keep, {-1, NULL}, NULL, 0};
    }
    for (int a = 0; a < n->n_attrs; a++) {
      if (n->attrs[a].kind == KN_ATTR_GRAPH) forget_types(n->attrs[a].g);
      if (n->attrs[a].kind == KN_ATTR_GRAPHS)
        for (int64_t k = 0; k < n->attrs[a].n; k++) forget_types(n->attrs[a].graphs[k]);
    }
  }
}

static KnStatus bind_input(KnGraph *g, const KnShapeBinding *b, KnError *err) {
  for (int i = 0; i < g->n_inputs; i++) {
    KnValue *v = g->inputs[i];
    if (strcmp(v->name, b->name) != 0) continue;
    if (v->type.kind != KN_TYPE_TENSOR)
      return kn_fail(err, KN_ERR_INVALID, "input '%s' is not a tensor; cannot bind a shape", b->name);
    if (v->type.shape.rank >= 0 && v->type.shape.rank != b->rank)
      return kn_fail(err, KN_ERR_INVALID, "input '%s' has rank %d, but the given shape has %d dims",
                     b->name, v->type.shape.rank, b->rank);
    for (int d = 0; d < b->rank; d++) {
      if (b->dims[d] < 0)
        return kn_fail(err, KN_ERR_INVALID, "input '%s' dim %d: %lld is negative", b->name, d,
                       (long long)b->dims[d]);
      KnDim old = v->type.shape.rank >= 0 ? v->type.shape.dims[d] : IR_DIM_UNKNOWN;
      if (old.value >= 0 && old.value != b->dims[d])
        return kn_fail(err, KN_ERR_INVALID, "input '%s' dim %d is fixed at %lld, cannot bind %lld",
                       b->name, d, (long long)old.value, (long long)b->dims[d]);
    }
    KnDtype dt = v->type.dtype;
    v->type = ir_type_tensor(g->arena, dt, b->rank, b->dims);
    return b->rank > 0 && !v->type.shape.dims ? kn_fail(err, KN_ERR_NOMEM, "out of memory") : KN_OK;
  }
  return kn_fail(err, KN_ERR_INVALID, "the model has no input named '%s'", b->name);
}

/* A symbolic dim bound through one input (e.g. batch=4) applies to every input that names it. */
static void propagate_symbols(KnGraph *g, const char *sym, int64_t value) {
  for (int i = 0; i < g->n_inputs; i++) {
    KnShape *s = &g->inputs[i]->type.shape;
    if (g->inputs[i]->type.kind != KN_TYPE_TENSOR) continue;
    for (int d = 0; d < s->rank; d++)
      if (s->dims[d].sym && s->dims[d].sym != IR_SYM_UNKNOWN && strcmp(s->dims[d].sym, sym) == 0)
        s->dims[d] = IR_DIM(value);
  }
}

KnStatus ir_specialize(KnGraph *g, const KnShapeBinding *bind, int n_bind, KnError *err) {
  for (int b = 0; b < n_bind; b++) {
    KnValue *v = ir_find_value(g, bind[b].name);
    KnShape before = v && v->type.kind == KN_TYPE_TENSOR ? ir_shape_copy(g->arena, &v->type.shape)
                                                         : (KnShape){-1, NULL};
    KnStatus st = bind_input(g, &bind[b], err);
    if (st) return st;
    for (int d = 0; d < before.rank && d < bind[b].rank; d++)
      if (before.dims && before.dims[d].sym) propagate_symbols(g, before.dims[d].sym, bind[b].dims[d]);
  }
  forget_types(g);
  return ir_infer_graph(g, err);
}
