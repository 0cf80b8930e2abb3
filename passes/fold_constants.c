/* fold_constants.c - constant folding through the code generator.
 * Rewrites: every top-level node whose inputs are all constants (initializers, or outputs of
 * nodes folded in the same run) and whose outputs have concrete shapes into initializers holding
 * its results. The folded nodes are compiled together into one small program and run once
 * through pass_eval_hook (codegen's JIT), so folding uses the same kernels as the model. Random
 * ops, ops with subgraphs and results larger than FOLD_MAX_BYTES are left alone. */
#include <string.h>

#include "passes/passes.h"

#define FOLD_MAX_BYTES ((size_t)16 << 20)

KnStatus (*pass_eval_hook)(KnModel *sub, KnArena *a, KnTensor **outs, KnError *err);
bool (*pass_can_eval_hook)(const KnNode *n);

static bool is_random(KnOp op) {
  return op == KN_OP_RandomNormal || op == KN_OP_RandomUniform || op == KN_OP_RandomNormalLike ||
         op == KN_OP_RandomUniformLike || op == KN_OP_Bernoulli || op == KN_OP_Multinomial;
}

static bool has_subgraph(const KnNode *n) {
  for (int a = 0; a < n->n_attrs; a++)
    if (n->attrs[a].kind == KN_ATTR_GRAPH || n->attrs[a].kind == KN_ATTR_GRAPHS) return true;
  return false;
}

static bool small_concrete_tensor(const KnValue *v) {
  int64_t numel;
  size_t bytes;
  return v->type.kind == KN_TYPE_TENSOR && v->type.dtype != KN_STRING &&
         ir_shape_numel(&v->type.shape, &numel) && ir_dtype_nbytes(v->type.dtype, numel, &bytes) &&
         bytes <= FOLD_MAX_BYTES;
}

/* Marks (scratch = 1) every value that is constant, and returns how many nodes can be folded;
 * fold[i] says whether node i is one of them. */
static int mark_foldable(KnGraph *g, bool *fold) {
  for (int i = 0; i < g->n_values; i++) g->values[i]->scratch = g->values[i]->init && !g->values[i]->is_input;
  int count = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    bool ok = !is_random(n->op) && !has_subgraph(n) && !(n->op == KN_OP_Dropout && n->n_inputs > 2) &&
              (!pass_can_eval_hook || pass_can_eval_hook(n));
    for (int j = 0; ok && j < n->n_inputs; j++) ok = !n->inputs[j] || n->inputs[j]->scratch == 1;
    for (int j = 0; ok && j < n->n_outputs; j++) ok = !n->outputs[j] || small_concrete_tensor(n->outputs[j]);
    fold[i] = ok;
    count += ok;
    for (int j = 0; ok && j < n->n_outputs; j++)
      if (n->outputs[j]) n->outputs[j]->scratch = 1;
  }
  return count;
}

/* A value folded here that something not folded (a node, subgraph or graph output) reads. */
static bool needed_outside(const KnGraph *g, const KnValue *v, const bool *fold) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return true;
  for (int i = 0; i < g->n_nodes; i++) {
    if (fold[i]) continue;
    const KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] == v) return true;
  }
  return false;
}

/* The sub-model: a copy of the model keeping only the folded nodes, with the needed values as
 * outputs and no inputs. */
static KnModel *make_sub_model(KnGraph *g, const bool *fold, KnValue **needed, int n_needed, KnError *err) {
  KnModel *sub = ir_model_clone(g->model, err);
  if (!sub) return NULL;
  KnGraph *sg = sub->graph;
  ir_graph_renumber(sg);
  ir_graph_remove_nodes(sg, fold);
  sg->n_inputs = 0;
  sg->n_outputs = 0;
  for (int i = 0; i < n_needed; i++)
    if (!ir_add_output(sg, ir_find_value(sg, needed[i]->name))) {
      ir_model_free(sub);
      return kn_fail(err, KN_ERR_NOMEM, "out of memory folding constants"), NULL;
    }
  return sub;
}

bool pass_fold_constants(KnGraph *g, KnPassCtx *ctx) {
  if (!pass_eval_hook || g->parent) return false;
  ir_graph_renumber(g);
  bool *fold = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *fold);
  KnValue **needed = ir_arena_calloc(g->arena, (size_t)g->n_values + 1, sizeof *needed);
  if (!fold || !needed) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  if (mark_foldable(g, fold) == 0) return false;
  int n_needed = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int j = 0; fold[i] && j < g->nodes[i]->n_outputs; j++) {
      KnValue *v = g->nodes[i]->outputs[j];
      if (v && needed_outside(g, v, fold)) needed[n_needed++] = v;
    }
  if (n_needed == 0) return false;
  KnModel *sub = make_sub_model(g, fold, needed, n_needed, ctx->err);
  KnTensor **outs = ir_arena_calloc(g->arena, (size_t)n_needed + 1, sizeof *outs);
  if (!sub || !outs) return false;
  /* sub is consumed. A kernel that rejects a dtype only means these nodes stay unfolded. */
  KnError eval_err = {0};
  if (pass_eval_hook(sub, g->arena, outs, &eval_err) != KN_OK) {
    if (eval_err.status == KN_ERR_UNSUPPORTED) return false;
    kn_fail(ctx->err, eval_err.status, "%s", eval_err.msg);
    return false;
  }
  for (int i = 0; i < n_needed; i++) {
    const char *name = ir_arena_printf(g->arena, "%s_const", needed[i]->name);
    KnValue *c = name ? ir_add_init(g, name, outs[i]) : NULL;
    if (!c) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory folding constants"), false;
    c->sym_data = needed[i]->sym_data;
    c->sym_len = needed[i]->sym_len;
    ir_replace_uses(g, needed[i], c);
    ctx->rewrites++;
  }
  ir_graph_renumber(g);
  bool *keep = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *keep);
  if (!keep) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  for (int i = 0; i < g->n_nodes; i++) keep[i] = !fold[i];
  ir_graph_remove_nodes(g, keep);
  return true;
}
