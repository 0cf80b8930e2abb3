/* fuse_conv.c - convolutions with what follows them into one kernel.
 * Rewrites (f32 Conv, W and bias constants, each intermediate used once and not a graph output):
 *   Conv(X, W, B?) [-> BatchNormalization | Mul(., c) | Add(., c)]* [-> Add(., R)] [-> Relu | Clip]
 * where c is a constant per output channel ([M,1,..], [1,M,1,..] or one element) and R has exactly
 * the result's shape (either operand order), into
 *   kiln.FusedConv(X, W', B', R?) {Conv's attributes, activation, min, max}
 * or, when only BatchNormalization / Mul / Add folded, into Conv(X, W', B'). The affine steps fold
 * into W'[m] = W[m] * s[m] and B' (computed in double, stored as new initializers); the residual
 * and activation run in the convolution's epilogue instead of separate passes over memory. */
#include <math.h>
#include <string.h>

#include "passes/passes.h"

#define MAX_CHAIN 8

/* What the chain being matched has collected. Until an affine step folds, scale is NULL; then
 * result = scale[m] * Conv(X, W)[m] + shift[m] per output channel m. */
typedef struct ConvChain {
  KnNode *chain[MAX_CHAIN];
  int n_chain;
  KnValue *resid, *result;
  const KnTensor *w, *b; /* b NULL when the Conv has no bias */
  int64_t m;             /* output channels */
  int y_rank;
  double *scale, *shift;
  const char *act;
  float lo, hi;
} ConvChain;

/* The start of the chain: f32 Conv with a constant W (rank of X) and a constant bias of M. */
static bool match_head(KnNode *n, ConvChain *C) {
  if (n->op != KN_OP_Conv || n->domain != KN_DOMAIN_ONNX || n->n_inputs < 2 || n->n_outputs != 1) return false;
  KnValue *x = n->inputs[0], *y = n->outputs[0];
  const KnTensor *w = pass_constant_of(n->inputs[1]);
  if (!pass_is_f32_tensor(x) || !pass_is_f32_tensor(y) || !w || w->dtype != KN_F32) return false;
  int rank = y->type.shape.rank;
  if (rank < 3 || x->type.shape.rank != rank || w->rank != rank || w->dims[0] < 1) return false;
  const KnTensor *b = NULL;
  if (n->n_inputs > 2 && n->inputs[2]) {
    b = pass_constant_of(n->inputs[2]);
    if (!b || b->dtype != KN_F32 || b->rank != 1 || b->numel != w->dims[0]) return false;
  }
  *C = (ConvChain){.chain = {n}, .n_chain = 1, .result = y, .w = w, .b = b, .m = w->dims[0], .y_rank = rank,
                   .act = ""};
  return true;
}

/* Whether t broadcast against the result [N, M, ...] is one value per channel (or one value). */
static bool per_channel(const ConvChain *C, const KnTensor *t) {
  if (!t || t->dtype != KN_F32 || t->rank > C->y_rank || (t->numel != 1 && t->numel != C->m)) return false;
  for (int d = 0; d < t->rank; d++) {
    int at = d + C->y_rank - t->rank; /* the result's dim that t's dim d lines up with */
    if (t->dims[d] != 1 && (at != 1 || t->dims[d] != C->m)) return false;
  }
  return true;
}

static float channel_value(const KnTensor *t, int64_t m) { return ((const float *)t->data)[t->numel == 1 ? 0 : m]; }

/* Starts the affine bookkeeping at the first fold: scale 1, shift the Conv's bias. */
static bool start_affine(KnGraph *g, ConvChain *C, KnError *err) {
  if (C->scale) return true;
  C->scale = ir_arena_calloc(g->arena, (size_t)C->m, sizeof *C->scale);
  C->shift = ir_arena_calloc(g->arena, (size_t)C->m, sizeof *C->shift);
  if (!C->scale || !C->shift) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), false;
  for (int64_t i = 0; i < C->m; i++) C->scale[i] = 1, C->shift[i] = C->b ? channel_value(C->b, i) : 0;
  return true;
}

/* BatchNormalization in inference form: one used output, constant per-channel statistics. */
static bool fold_batchnorm(KnGraph *g, ConvChain *C, const KnNode *c, KnError *err) {
  if (c->n_inputs != 5 || c->inputs[0] != C->result || ir_attr_int(c, "training_mode", 0) != 0 ||
      ir_attr_int(c, "spatial", 1) != 1)
    return false;
  for (int i = 1; i < c->n_outputs; i++)
    if (c->outputs[i] && pass_count_uses(g, c->outputs[i]) != 0) return false;
  const KnTensor *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = pass_constant_of(c->inputs[i + 1]);
    if (!p[i] || p[i]->dtype != KN_F32 || p[i]->rank != 1 || p[i]->numel != C->m) return false;
  }
  double eps = ir_attr_float(c, "epsilon", 1e-5f);
  for (int64_t i = 0; i < C->m; i++)
    if (!(channel_value(p[3], i) + eps > 0)) return false; /* a NaN or negative variance stays unfolded */
  if (!start_affine(g, C, err)) return false;
  for (int64_t i = 0; i < C->m; i++) {
    double s = channel_value(p[0], i) / sqrt(channel_value(p[3], i) + eps);
    C->scale[i] *= s;
    C->shift[i] = (C->shift[i] - channel_value(p[2], i)) * s + channel_value(p[1], i);
  }
  return true;
}

/* Mul or Add by a per-channel constant (either operand order). */
static bool fold_mul_add(KnGraph *g, ConvChain *C, const KnNode *c, KnError *err) {
  if (c->n_inputs != 2 || (c->op != KN_OP_Mul && c->op != KN_OP_Add)) return false;
  const KnValue *other = c->inputs[0] == C->result ? c->inputs[1] : c->inputs[0];
  const KnTensor *t = other == C->result ? NULL : pass_constant_of(other);
  if (!per_channel(C, t) || !start_affine(g, C, err)) return false;
  for (int64_t i = 0; i < C->m; i++) {
    double v = channel_value(t, i);
    if (c->op == KN_OP_Mul) C->scale[i] *= v, C->shift[i] *= v;
    else C->shift[i] += v;
  }
  return true;
}

/* Add of a non-constant of exactly the result's shape: the residual. */
static bool take_residual(ConvChain *C, const KnNode *c) {
  if (c->op != KN_OP_Add || c->n_inputs != 2 || C->resid) return false;
  KnValue *other = c->inputs[0] == C->result ? c->inputs[1] : c->inputs[0];
  if (other == C->result || !pass_is_f32_tensor(other) || pass_constant_of(other)) return false;
  if (!pass_same_concrete_shape(&other->type.shape, &C->result->type.shape)) return false;
  C->resid = other;
  return true;
}

/* Extends the chain by one step; false when nothing fits (err set on failure). Affine steps come
 * before the residual, the activation last. */
static bool extend(KnGraph *g, ConvChain *C, KnError *err) {
  if (C->n_chain >= MAX_CHAIN || *C->act) return false;
  KnNode *c = (KnNode *)pass_only_consumer(g, C->result);
  if (!c || c->domain != KN_DOMAIN_ONNX || c->n_outputs < 1 || !pass_is_f32_tensor(c->outputs[0])) return false;
  bool ok = false;
  if (c->op == KN_OP_BatchNormalization) ok = !C->resid && fold_batchnorm(g, C, c, err);
  else if (c->op == KN_OP_Mul || c->op == KN_OP_Add) {
    ok = !C->resid && fold_mul_add(g, C, c, err);
    if (!ok && err->status == KN_OK) ok = take_residual(C, c);
  } else ok = pass_match_activation(c, &C->act, &C->lo, &C->hi);
  if (!ok) return false;
  C->chain[C->n_chain++] = c;
  C->result = c->outputs[0];
  return true;
}

/* W'[m] = W[m] * scale[m] and B' = shift as new initializers (W may be shared with other nodes). */
static bool folded_params(KnGraph *g, const ConvChain *C, KnValue **w, KnValue **b, KnError *err) {
  KnTensor *tw = ir_tensor_new(g->arena, KN_F32, C->w->rank, C->w->dims, err);
  KnTensor *tb = tw ? ir_tensor_new(g->arena, KN_F32, 1, &C->m, err) : NULL;
  if (!tb) return false;
  int64_t per = C->w->numel / C->m;
  const float *src = C->w->data;
  float *dw = tw->data, *db = tb->data;
  for (int64_t i = 0; i < C->m; i++) {
    for (int64_t j = 0; j < per; j++) dw[i * per + j] = (float)(src[i * per + j] * C->scale[i]);
    db[i] = (float)C->shift[i];
  }
  *w = ir_add_init(g, NULL, tw);
  *b = *w ? ir_add_init(g, NULL, tb) : NULL;
  return *b ? true : (kn_fail(err, KN_ERR_NOMEM, "out of memory"), false);
}

/* Gives n the Conv's attributes (shared arena data: the model owns both). */
static bool copy_attrs(KnNode *n, const KnAttr *attrs, int n_attrs) {
  for (int i = 0; i < n_attrs; i++) {
    KnAttr *a = ir_set_attr(n, attrs[i].name, attrs[i].kind);
    if (!a) return false;
    const char *name = a->name;
    *a = attrs[i];
    a->name = name;
  }
  return true;
}

/* A folded plain Conv stays a standard ONNX Conv: without kiln's report attribute. */
static void drop_attr(KnNode *n, const char *name) {
  int kept = 0;
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) != 0) n->attrs[kept++] = n->attrs[i];
  n->n_attrs = kept;
}

static bool rewrite(KnGraph *g, ConvChain *C, KnPassCtx *ctx) {
  KnNode *conv = C->chain[0];
  KnValue *w = conv->inputs[1], *b = conv->n_inputs > 2 ? conv->inputs[2] : NULL;
  if (C->scale && !folded_params(g, C, &w, &b, ctx->err)) return false;
  bool fused = C->resid || *C->act;
  KnValue *in[4] = {conv->inputs[0], w, b, C->resid};
  const KnAttr *attrs = conv->attrs; /* the arena keeps them after the Conv is removed */
  int n_attrs = conv->n_attrs;
  KnNode *n = pass_replace_chain(g, C->chain, C->n_chain, fused ? KN_OP_FusedConv : KN_OP_Conv, in,
                                 C->resid ? 4 : b ? 3 : 2, ctx->err);
  if (!n) return false;
  bool ok = copy_attrs(n, attrs, n_attrs);
  if (ok && *C->act) ok = ir_set_attr_string(n, "activation", C->act);
  if (ok && !strcmp(C->act, "Clip")) ok = ir_set_attr_float(n, "min", C->lo) && ir_set_attr_float(n, "max", C->hi);
  if (!ok) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  if (!fused) drop_attr(n, "fused");
  ctx->rewrites++;
  return true;
}

bool pass_fuse_conv(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    ConvChain C;
    if (!match_head(g->nodes[i], &C)) continue;
    while (extend(g, &C, ctx->err)) {
    }
    if (C.n_chain == 1 || ctx->err->status != KN_OK || !rewrite(g, &C, ctx)) continue;
    changed = true;
    i--; /* the chain's nodes are gone: position i now holds the node after the Conv */
  }
  return changed;
}
