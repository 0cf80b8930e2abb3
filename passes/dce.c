/* dce.c - dead code elimination.
 * Rewrites: a node none of whose outputs is used (by a node, a subgraph or a graph output) into
 * nothing, repeating until no such node is left; then drops initializers nothing uses (unless
 * they are also graph inputs). Recurses into subgraphs. */
#include "passes/passes.h"

static bool dce_graph(KnGraph *g, KnPassCtx *ctx);

static bool dce_subgraphs(KnNode *n, KnPassCtx *ctx) {
  bool changed = false;
  for (int a = 0; a < n->n_attrs; a++) {
    KnAttr *at = &n->attrs[a];
    if (at->kind == KN_ATTR_GRAPH) changed |= dce_graph(at->g, ctx);
    for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n; k++)
      changed |= dce_graph(at->graphs[k], ctx);
  }
  return changed;
}

static bool dce_graph(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes; i++) changed |= dce_subgraphs(g->nodes[i], ctx);
  bool *keep = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *keep);
  if (!keep) {
    kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory");
    return changed;
  }
  for (bool again = true; again;) {
    again = false;
    pass_mark_uses(g);
    ir_graph_renumber(g);
    int removed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
      KnNode *n = g->nodes[i];
      keep[i] = false;
      for (int j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] && n->outputs[j]->scratch) keep[i] = true;
      removed += !keep[i];
    }
    if (removed) {
      ir_graph_remove_nodes(g, keep);
      ctx->rewrites += removed;
      changed = again = true;
    }
  }
  return changed;
}

/* Uses are marked (scratch) by the last round of dce_graph. */
static bool drop_unused_inits(KnGraph *g, KnPassCtx *ctx) {
  int kept = 0;
  for (int i = 0; i < g->n_inits; i++) {
    KnValue *v = g->inits[i];
    if (v->scratch || v->is_input) g->inits[kept++] = v;
    else v->graph = NULL;
  }
  if (kept == g->n_inits) return false;
  ctx->rewrites += g->n_inits - kept;
  g->n_inits = kept;
  int nv = 0;
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i]->graph) g->values[nv++] = g->values[i];
  g->n_values = nv;
  ir_graph_renumber(g);
  return true;
}

bool pass_dce(KnGraph *g, KnPassCtx *ctx) {
  bool changed = dce_graph(g, ctx);
  return drop_unused_inits(g, ctx) || changed;
}
