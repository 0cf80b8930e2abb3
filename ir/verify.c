/* verify.c - checks the IR's invariants; run after import and, in test builds, after every pass. */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

typedef struct Verifier {
  KnError *err;
  int depth;
} Verifier;

static KnStatus fail_node(Verifier *vf, const KnNode *n, const char *what, const char *detail) {
  return ir_infer_fail(vf->err, n, KN_ERR_INVALID, "%s%s", what, detail);
}

/* True if v may be used inside g at this point: it is defined in g (before the current node,
 * tracked through `defined`) or in an enclosing graph. */
static bool visible(const KnGraph *g, const KnValue *v, const bool *defined) {
  if (v->graph == g) return defined[v->id];
  for (const KnGraph *p = g->parent; p; p = p->parent)
    if (v->graph == p) return true;
  return false;
}

static KnStatus check_shape(Verifier *vf, const KnValue *v, const KnShape *s) {
  if (s->rank < -1 || (s->rank > 0 && !s->dims))
    return kn_fail(vf->err, KN_ERR_INTERNAL, "value '%s' has a malformed shape", v->name);
  for (int d = 0; d < s->rank; d++)
    if (s->dims[d].value < -1 || (s->dims[d].value >= 0 && s->dims[d].sym) ||
        s->dims[d].sym == IR_SYM_UNKNOWN)
      return kn_fail(vf->err, KN_ERR_INTERNAL, "value '%s' dim %d is malformed", v->name, d);
  return KN_OK;
}

static KnStatus check_type(Verifier *vf, const KnValue *v, const KnType *t) {
  switch (t->kind) {
  case KN_TYPE_NONE:
    return kn_fail(vf->err, KN_ERR_INVALID, "value '%s' has no type", v->name);
  case KN_TYPE_TENSOR:
  case KN_TYPE_SPARSE:
    if (t->dtype != KN_UNDEF && !ir_dtype_is_known((int)t->dtype))
      return kn_fail(vf->err, KN_ERR_INVALID, "value '%s' has unknown dtype %d", v->name, (int)t->dtype);
    return check_shape(vf, v, &t->shape);
  case KN_TYPE_SEQUENCE:
  case KN_TYPE_OPTIONAL:
  case KN_TYPE_MAP:
    return t->elem ? check_type(vf, v, t->elem) : KN_OK;
  }
  return kn_fail(vf->err, KN_ERR_INTERNAL, "value '%s' has type kind %d", v->name, (int)t->kind);
}

static KnStatus check_init(Verifier *vf, const KnValue *v) {
  const KnTensor *t = v->init;
  const KnType *ty = &v->type;
  if (ty->kind != KN_TYPE_TENSOR || ty->dtype != t->dtype || ty->shape.rank != t->rank)
    return kn_fail(vf->err, KN_ERR_INVALID, "initializer '%s' does not match its declared type", v->name);
  int64_t numel = 1;
  for (int d = 0; d < t->rank; d++) {
    if (ty->shape.dims[d].value >= 0 && ty->shape.dims[d].value != t->dims[d])
      return kn_fail(vf->err, KN_ERR_INVALID, "initializer '%s' dim %d is %lld, declared %lld", v->name,
                     d, (long long)t->dims[d], (long long)ty->shape.dims[d].value);
    if (ir_mul_overflows(numel, t->dims[d], &numel))
      return kn_fail(vf->err, KN_ERR_INVALID, "initializer '%s' has a bad shape", v->name);
  }
  size_t nbytes = 0;
  if (numel != t->numel || (t->dtype != KN_STRING && (!ir_dtype_nbytes(t->dtype, numel, &nbytes) ||
                                                      nbytes != t->nbytes)) || (numel && !t->data))
    return kn_fail(vf->err, KN_ERR_INVALID, "initializer '%s' data does not match its shape", v->name);
  return KN_OK;
}

static KnStatus verify_graph(Verifier *vf, const KnGraph *g);

static KnStatus check_node(Verifier *vf, const KnGraph *g, const KnNode *n, const bool *defined) {
  const KnOpInfo *op = &ir_ops[n->op];
  char buf[160];
  if (n->op <= KN_OP_NONE || n->op >= KN_OP_COUNT || n->graph != g)
    return kn_fail(vf->err, KN_ERR_INTERNAL, "node '%s' is malformed", n->name);
  if (n->n_inputs < op->min_inputs || n->n_inputs > op->max_inputs ||
      n->n_outputs < op->min_outputs || n->n_outputs > op->max_outputs) {
    snprintf(buf, sizeof buf, "%d inputs and %d outputs", n->n_inputs, n->n_outputs);
    return fail_node(vf, n, "has a wrong number of operands: ", buf);
  }
  for (int i = 0; i < n->n_inputs; i++) {
    const KnValue *v = n->inputs[i];
    if (v && !visible(g, v, defined)) {
      snprintf(buf, sizeof buf, "'%s' (input %d)", v->name, i);
      return fail_node(vf, n, "uses a value before it is defined: ", buf);
    }
  }
  for (int i = 0; i < n->n_outputs; i++) {
    const KnValue *v = n->outputs[i];
    if (v && (v->producer != n || v->out_index != i || v->graph != g || defined[v->id])) {
      snprintf(buf, sizeof buf, "'%s' (output %d)", v->name, i);
      return fail_node(vf, n, "output has another producer or is defined twice: ", buf);
    }
  }
  for (int a = 0; a < n->n_attrs; a++) {
    const KnAttr *at = &n->attrs[a];
    KnStatus st = KN_OK;
    if (at->kind == KN_ATTR_GRAPH) st = verify_graph(vf, at->g);
    for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n && !st; k++)
      st = verify_graph(vf, at->graphs[k]);
    if (st) return st;
  }
  return KN_OK;
}

static KnStatus verify_graph(Verifier *vf, const KnGraph *g) {
  if (++vf->depth > 256) return kn_fail(vf->err, KN_ERR_LIMIT, "subgraphs nest deeper than 256");
  bool *defined = ir_arena_calloc(g->arena, (size_t)g->n_values + 1, sizeof *defined);
  if (!defined) return kn_fail(vf->err, KN_ERR_NOMEM, "out of memory in the verifier");
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i]->id != i || g->values[i]->graph != g)
      return kn_fail(vf->err, KN_ERR_INTERNAL, "value '%s' is misnumbered", g->values[i]->name);
  KnStatus st = KN_OK;
  for (int i = 0; i < g->n_inputs && !st; i++) {
    defined[g->inputs[i]->id] = true;
    st = check_type(vf, g->inputs[i], &g->inputs[i]->type);
  }
  for (int i = 0; i < g->n_inits && !st; i++) {
    const KnValue *v = g->inits[i];
    if (v->producer) return kn_fail(vf->err, KN_ERR_INVALID, "initializer '%s' also has a producer", v->name);
    defined[v->id] = true;
    st = check_init(vf, v);
  }
  for (int i = 0; i < g->n_nodes && !st; i++) {
    const KnNode *n = g->nodes[i];
    st = check_node(vf, g, n, defined);
    for (int j = 0; j < n->n_outputs && !st; j++) {
      if (!n->outputs[j]) continue;
      defined[n->outputs[j]->id] = true;
      st = check_type(vf, n->outputs[j], &n->outputs[j]->type);
    }
  }
  for (int i = 0; i < g->n_outputs && !st; i++)
    if (!visible(g, g->outputs[i], defined))
      st = kn_fail(vf->err, KN_ERR_INVALID, "graph '%s' output '%s' is never defined", g->name,
                   g->outputs[i]->name);
  vf->depth--;
  return st;
}

KnStatus ir_verify(const KnModel *m, KnError *err) {
  Verifier vf = {err, 0};
  return verify_graph(&vf, m->graph);
}
