/* fold_shapes.c - folds shape computations whose results are known.
 * Rewrites: a node output whose contents shape inference fully knows (sym_data with only
 * concrete entries, e.g. Shape(x) once x's dims are concrete, and the Gather/Concat/... chains on
 * it that torch exports) into an initializer holding those integers. The nodes that computed it
 * become dead and `dce` removes them. Constant nodes are left alone. */
#include <string.h>

#include "passes/passes.h"

static bool fully_known(const KnValue *v) {
  if (!v->sym_data || v->type.kind != KN_TYPE_TENSOR || !ir_dtype_is_int(v->type.dtype)) return false;
  int64_t numel;
  if (!ir_shape_numel(&v->type.shape, &numel) || numel != v->sym_len || v->type.shape.rank > 1)
    return false;
  for (int i = 0; i < v->sym_len; i++)
    if (v->sym_data[i].sym) return false;
  return true;
}

static void store_int(KnTensor *t, int64_t i, int64_t x) {
  unsigned char *p = t->data;
  switch (ir_dtype_bits(t->dtype)) {
  case 8: p[i] = (unsigned char)x; break;
  case 16: { int16_t v = (int16_t)x; memcpy(p + 2 * i, &v, 2); break; }
  case 32: { int32_t v = (int32_t)x; memcpy(p + 4 * i, &v, 4); break; }
  default: memcpy(p + 8 * i, &x, 8); break;
  }
}

/* Replaces v's uses by a new initializer with v's known contents; false on OOM (err set). */
static bool fold_value(KnGraph *g, KnValue *v, KnPassCtx *ctx) {
  const KnShape *s = &v->type.shape;
  int64_t dims[1] = {s->rank == 1 ? s->dims[0].value : 0};
  KnTensor *t = ir_tensor_new(g->arena, v->type.dtype, s->rank, dims, ctx->err);
  if (!t) return false;
  for (int i = 0; i < v->sym_len; i++) store_int(t, i, v->sym_data[i].value);
  const char *name = ir_arena_printf(g->arena, "%s_folded", v->name);
  KnValue *c = name ? ir_add_init(g, name, t) : NULL;
  if (!c) {
    kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory folding '%s'", v->name);
    return false;
  }
  c->sym_data = v->sym_data;
  c->sym_len = v->sym_len;
  ir_replace_uses(g, v, c);
  return true;
}

static bool is_graph_output(const KnGraph *g, const KnValue *v) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return true;
  return false;
}

bool pass_fold_shapes(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    if (n->op == KN_OP_Constant) continue;
    for (int j = 0; j < n->n_outputs; j++) {
      KnValue *v = n->outputs[j];
      /* A graph output keeps its name: folding it would rename what the user asks for. */
      if (!v || !fully_known(v) || is_graph_output(g, v)) continue;
      if (!fold_value(g, v, ctx)) return changed;
      ctx->rewrites++;
      changed = true;
    }
  }
  return changed;
}
