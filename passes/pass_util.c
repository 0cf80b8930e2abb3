/* pass_util.c - use marking shared by the passes. */
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
