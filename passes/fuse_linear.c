/* fuse_linear.c - dense layers into one GEMM with its epilogue.
 * Rewrites (f32, W a constant matrix, each intermediate used once):
 *   MatMul(A, W) [-> Add(., bias)] [-> Add(., R)] [-> Relu | Clip(., lo, hi)]
 *   Gemm(A, W, bias?) (transA 0, alpha 1, beta 1; transB folded into W) [-> Add(., R)] [-> Relu | Clip]
 * into kiln.FusedGemm(A, W', bias?, R?) {activation}, where bias is a constant of N elements
 * (shape [N] or [1, ..., 1, N]) and R has exactly the result's shape. The GEMM then adds bias and
 * R and applies the activation in registers instead of three more passes over memory. */
#include <string.h>

#include "passes/passes.h"

/* What the chain being matched has collected. */
typedef struct Linear {
  KnNode *chain[6];
  int n_chain;
  KnValue *a, *w, *bias, *resid, *result;
  const char *act;
  float lo, hi;
  int64_t n_cols;
} Linear;

/* A new initializer: t's data viewed with other dims (same element count). */
static KnValue *reshaped_init(KnGraph *g, const KnTensor *t, int rank, const int64_t *dims, KnError *err) {
  KnTensor *view = ir_arena_alloc(g->arena, sizeof *view);
  int64_t *d = ir_arena_calloc(g->arena, (size_t)rank + 1, sizeof *d);
  if (!view || !d) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
  *view = *t;
  memcpy(d, dims, sizeof *d * (size_t)rank);
  view->rank = rank, view->dims = d, view->name = NULL, view->location = NULL;
  return ir_add_init(g, NULL, view);
}

/* W transposed ([N, K] -> [K, N]) as a new initializer. */
static KnValue *transposed_init(KnGraph *g, const KnTensor *w, KnError *err) {
  int64_t n = w->dims[0], k = w->dims[1], dims[2] = {k, n};
  KnTensor *t = ir_tensor_new(g->arena, KN_F32, 2, dims, err);
  if (!t) return NULL;
  const float *src = w->data;
  float *dst = t->data;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < k; j++) dst[j * n + i] = src[i * k + j];
  return ir_add_init(g, NULL, t);
}

/* A constant bias of n elements laid out as [n] or [1, ..., 1, n]. */
static bool bias_shaped(const KnTensor *t, int64_t n) {
  if (!t || t->dtype != KN_F32 || t->numel != n || t->rank < 1 || t->dims[t->rank - 1] != n) return false;
  return true;
}

/* The start of the chain: MatMul or Gemm with a constant 2-D W. */
static bool match_head(KnGraph *g, KnNode *n, Linear *L, KnError *err) {
  bool gemm = n->op == KN_OP_Gemm;
  if ((n->op != KN_OP_MatMul && !gemm) || n->domain != KN_DOMAIN_ONNX) return false;
  KnValue *a = n->inputs[0], *w = n->inputs[1];
  const KnTensor *wt = pass_constant_of(w);
  if (!pass_is_f32_tensor(a) || !wt || wt->dtype != KN_F32 || wt->rank != 2 || !pass_is_f32_tensor(n->outputs[0]))
    return false;
  if (a->type.shape.rank < 2 || a->type.shape.dims[a->type.shape.rank - 1].value <= 0) return false;
  bool tb = gemm && ir_attr_int(n, "transB", 0);
  if (gemm && (ir_attr_int(n, "transA", 0) || ir_attr_float(n, "alpha", 1) != 1.0f)) return false;
  *L = (Linear){.chain = {n}, .n_chain = 1, .a = a, .w = w, .result = n->outputs[0], .act = "",
                .n_cols = wt->dims[tb ? 0 : 1]};
  if (gemm && n->n_inputs > 2 && n->inputs[2]) {
    const KnTensor *c = pass_constant_of(n->inputs[2]);
    if (ir_attr_float(n, "beta", 1) != 1.0f || !bias_shaped(c, L->n_cols)) return false;
    int64_t dims[1] = {L->n_cols};
    if (!(L->bias = reshaped_init(g, c, 1, dims, err))) return false;
  }
  if (tb && !(L->w = transposed_init(g, wt, err))) return false;
  return true;
}

/* Extends the chain by one Add (bias or residual) or activation; false when nothing fits. */
static bool extend(KnGraph *g, Linear *L, KnError *err) {
  if (L->n_chain >= 6 || *L->act) return false;
  KnNode *c = (KnNode *)pass_only_consumer(g, L->result);
  if (!c || c->domain != KN_DOMAIN_ONNX || !pass_is_f32_tensor(c->outputs[0])) return false;
  if (c->op == KN_OP_Add && !L->resid) {
    KnValue *other = c->inputs[0] == L->result ? c->inputs[1] : c->inputs[0];
    if (other == L->result || !pass_is_f32_tensor(other)) return false;
    const KnTensor *t = pass_constant_of(other);
    if (t && !L->bias && bias_shaped(t, L->n_cols)) {
      int64_t dims[1] = {L->n_cols};
      if (!(L->bias = reshaped_init(g, t, 1, dims, err))) return false;
    } else if (!t && pass_same_concrete_shape(&other->type.shape, &L->result->type.shape)) {
      L->resid = other;
    } else {
      return false;
    }
  } else if (!pass_match_activation(c, &L->act, &L->lo, &L->hi)) {
    return false;
  }
  L->chain[L->n_chain++] = c;
  L->result = c->outputs[0];
  return true;
}

static bool rewrite(KnGraph *g, Linear *L, KnPassCtx *ctx) {
  KnValue *in[4] = {L->a, L->w, L->bias, L->resid};
  KnNode *n = pass_replace_chain(g, L->chain, L->n_chain, KN_OP_FusedGemm, in, L->resid ? 4 : L->bias ? 3 : 2, ctx->err);
  if (!n) return false;
  if (*L->act && !ir_set_attr_string(n, "activation", L->act)) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  if (strcmp(L->act, "Clip") == 0 && (!ir_set_attr_float(n, "min", L->lo) || !ir_set_attr_float(n, "max", L->hi)))
    return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  ctx->rewrites++;
  return true;
}

bool pass_fuse_linear(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    Linear L;
    if (!match_head(g, g->nodes[i], &L, ctx->err)) continue;
    while (extend(g, &L, ctx->err)) {
    }
    if (ctx->err->status == KN_OK && rewrite(g, &L, ctx)) changed = true;
    i = -1; /* node positions moved: start over (each rewrite removes a MatMul/Gemm) */
  }
  return changed;
}
