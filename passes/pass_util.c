/* pass_util.c - use marking, chain replacement and operand tests shared by the passes. */
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

static void mark_graph(KnGraph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j]) n->inputs[j]->scratch = 1;
    for (int a = 0; a < n->n_attrs; a++) {
      KnAttr *at = &n->attrs[a];
      if (at->kind == KN_ATTR_GRAPH) mark_graph(at->g);
      for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n; k++) mark_graph(at->graphs[k]);
    }
  }
  for (int i = 0; i < g->n_outputs; i++) g->outputs[i]->scratch = 1;
}

static void clear_graph(KnGraph *g) {
  for (int i = 0; i < g->n_values; i++) g->values[i]->scratch = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int a = 0; a < g->nodes[i]->n_attrs; a++) {
      KnAttr *at = &g->nodes[i]->attrs[a];
      if (at->kind == KN_ATTR_GRAPH) clear_graph(at->g);
      for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n; k++) clear_graph(at->graphs[k]);
    }
}

void pass_mark_uses(KnGraph *g) {
  clear_graph(g);
  mark_graph(g);
}

static int uses_in_graph(const KnGraph *g, const KnValue *v) {
  int uses = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) uses += n->inputs[j] == v;
    for (int a = 0; a < n->n_attrs; a++) {
      const KnAttr *at = &n->attrs[a];
      if (at->kind == KN_ATTR_GRAPH) uses += uses_in_graph(at->g, v);
      for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n; k++) uses += uses_in_graph(at->graphs[k], v);
    }
  }
  for (int i = 0; i < g->n_outputs; i++) uses += g->outputs[i] == v;
  return uses;
}

int pass_count_uses(const KnGraph *g, const KnValue *v) { return uses_in_graph(g, v); }

const KnNode *pass_only_consumer(const KnGraph *g, const KnValue *v) {
  if (pass_count_uses(g, v) != 1) return NULL;
  for (int i = 0; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i]->n_inputs; j++)
      if (g->nodes[i]->inputs[j] == v) return g->nodes[i];
  return NULL; /* the one use is a graph output or inside a subgraph */
}

KnNode *pass_replace_chain(KnGraph *g, KnNode *const *chain, int n_chain, KnOp op, KnValue *const *inputs,
                           int n_inputs, KnError *err) {
  KnNode *last = chain[n_chain - 1];
  KnNode *n = ir_add_node(g, op, chain[0]->name, inputs, n_inputs, 1, err); /* profiles name the head */
  if (!n) return NULL;
  /* The new node takes over the chain's result (its name, type and uses); the last old node gets
   * the new node's fresh value, which goes away with it. */
  char fused[256] = "";
  for (int i = 0; i < n_chain; i++)
    snprintf(fused + strlen(fused), sizeof fused - strlen(fused), "%s%s", i ? "+" : "", ir_ops[chain[i]->op].name);
  if (!ir_set_attr_string(n, "fused", fused)) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
  KnValue *result = last->outputs[0], *fresh = n->outputs[0];
  n->outputs[0] = result, result->producer = n, result->out_index = 0;
  last->outputs[0] = fresh, fresh->producer = last, fresh->out_index = 0;
  ir_graph_renumber(g);
  /* Move the new node (appended at the end) to where the last node of the chain was. */
  int at = last->id;
  for (int i = g->n_nodes - 1; i > at; i--) g->nodes[i] = g->nodes[i - 1];
  g->nodes[at] = n;
  ir_graph_renumber(g);
  bool *keep = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *keep);
  if (!keep) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
  for (int i = 0; i < g->n_nodes; i++) keep[i] = true;
  for (int i = 0; i < n_chain; i++) keep[chain[i]->id] = false;
  ir_graph_remove_nodes(g, keep);
  return n;
}

const KnTensor *pass_constant_of(const KnValue *v) { return v && v->init && !v->is_input ? v->init : NULL; }

bool pass_is_f32_tensor(const KnValue *v) {
  return v && v->type.kind == KN_TYPE_TENSOR && v->type.dtype == KN_F32 && v->type.shape.rank >= 0;
}

bool pass_same_concrete_shape(const KnShape *a, const KnShape *b) {
  if (a->rank != b->rank || a->rank < 0) return false;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d].value < 0 || a->dims[d].value != b->dims[d].value) return false;
  return true;
}

/* A scalar f32 bound of Clip: absent (dflt), or a constant of one element. */
static bool clip_bound(const KnNode *c, int i, float dflt, float *out) {
  *out = dflt;
  if (c->n_inputs <= i || !c->inputs[i]) return true;
  const KnTensor *t = pass_constant_of(c->inputs[i]);
  if (!t || t->numel != 1 || t->dtype != KN_F32) return false;
  *out = ((const float *)t->data)[0];
  return true;
}

bool pass_match_activation(const KnNode *c, const char **act, float *lo, float *hi) {
  if (c->domain != KN_DOMAIN_ONNX) return false;
  if (c->op == KN_OP_Relu) {
    *act = "Relu";
    return true;
  }
  if (c->op != KN_OP_Clip) return false;
  float l, h;
  if (c->opset >= 11) { /* bounds became inputs at opset 11 */
    if (!clip_bound(c, 1, -3.402823466e38f, &l) || !clip_bound(c, 2, 3.402823466e38f, &h)) return false;
  } else {
    l = ir_attr_float(c, "min", -3.402823466e38f), h = ir_attr_float(c, "max", 3.402823466e38f);
  }
  *act = "Clip", *lo = l, *hi = h;
  return true;
}
