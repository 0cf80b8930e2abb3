/* pass_util.c - use marking shared by the passes. */
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
