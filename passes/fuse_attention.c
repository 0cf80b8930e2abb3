/* fuse_attention.c - scaled dot-product attention into one kernel.
 * Rewrites (f32, concrete shapes, each intermediate used once):
 *   [Transpose ->] Q', [Transpose ->] K', [Transpose ->] V'
 *   MatMul(Q', K') [-> Div | Mul by a constant scalar] [-> Add(., mask)] -> Softmax(last axis)
 *   -> MatMul(., V') [-> Transpose]
 * into kiln.Attention(Q, K, V, mask?) {scale, perm_q, perm_k, perm_v, perm_out}, where Q', K', V'
 * have the same rank and batch dims (no broadcasting) and the mask broadcasts to the scores. The
 * transposes become strides of the kernel's loads and stores, and the [..., Sq, Sk] scores never
 * reach memory (codegen/lower_attention.c). */
#include <string.h>

#include "passes/passes.h"

#define ATTN_MAX_RANK 8
/* Longest key sequence fused: the kernel keeps a block of score rows on its stack. */
#define ATTN_MAX_SK 4096

typedef struct Attn {
  KnNode *chain[10];
  int n_chain;
  KnValue *q, *k, *v, *mask;
  int64_t perm[4][ATTN_MAX_RANK]; /* q, k, v, out */
  bool has_perm[4];
  float scale;
  int rank;
} Attn;

/* Whether v is f32 with a concrete shape of rank r (r < 0: any rank from 2). */
static bool concrete_f32(const KnValue *v, int r) {
  if (!pass_is_f32_tensor(v) || (r >= 0 && v->type.shape.rank != r)) return false;
  if (v->type.shape.rank < 2 || v->type.shape.rank > ATTN_MAX_RANK) return false;
  for (int d = 0; d < v->type.shape.rank; d++)
    if (v->type.shape.dims[d].value < 1) return false;
  return true;
}

static int64_t dim(const KnValue *v, int d) { return v->type.shape.dims[d].value; }

/* The value a node of the chain reads, through a Transpose used only by that node (recorded as
 * perm slot which, so the kernel reads the transpose's input with strides instead). */
static KnValue *through_transpose(const KnGraph *g, Attn *A, KnValue *x, const KnNode *user, int which) {
  KnNode *t = x->producer;
  if (!t || t->op != KN_OP_Transpose || t->domain != KN_DOMAIN_ONNX || pass_only_consumer(g, x) != user) return x;
  KnValue *in = t->inputs[0];
  if (!concrete_f32(in, A->rank)) return x;
  int64_t n = 0;
  const int64_t *perm = ir_attr_ints(t, "perm", &n);
  if (perm && n != A->rank) return x;
  for (int d = 0; d < A->rank; d++) A->perm[which][d] = perm ? perm[d] : A->rank - 1 - d;
  A->has_perm[which] = true;
  A->chain[A->n_chain++] = t;
  return in;
}

/* A constant scalar f32 (one element, rank at most r so it does not broadcast the scores). */
static bool scalar_const(const KnValue *v, int r, float *out) {
  const KnTensor *t = pass_constant_of(v);
  if (!t || t->dtype != KN_F32 || t->numel != 1 || t->rank > r) return false;
  *out = ((const float *)t->data)[0];
  return true;
}

/* mask broadcasts to scores (numpy rules) without changing its shape. */
static bool mask_fits(const KnValue *mask, const KnValue *scores) {
  if (!pass_is_f32_tensor(mask) || mask->type.shape.rank > scores->type.shape.rank) return false;
  int off = scores->type.shape.rank - mask->type.shape.rank;
  for (int d = 0; d < mask->type.shape.rank; d++) {
    int64_t m = mask->type.shape.dims[d].value;
    if (m != 1 && m != dim(scores, off + d)) return false;
  }
  return true;
}

/* Whether x comes from the scale or the first MatMul (which side of the mask's Add it is). */
static bool scores_like(const KnValue *x) {
  const KnNode *p = x->producer;
  return p && p->domain == KN_DOMAIN_ONNX && (p->op == KN_OP_MatMul || p->op == KN_OP_Div || p->op == KN_OP_Mul);
}

/* Walks back from the Softmax's input to the first MatMul: [Add mask] <- [Div | Mul] <- MatMul. */
static KnNode *match_scores(const KnGraph *g, Attn *A, KnNode *sm) {
  KnValue *x = sm->inputs[0];
  const KnNode *user = sm;
  KnNode *p = x->producer;
  if (p && p->op == KN_OP_Add && p->domain == KN_DOMAIN_ONNX && pass_only_consumer(g, x) == user) {
    int s = scores_like(p->inputs[0]) ? 0 : 1;
    KnValue *scores = p->inputs[s], *mask = p->inputs[1 - s];
    if (scores == mask || !pass_same_concrete_shape(&scores->type.shape, &x->type.shape) || !mask_fits(mask, x)) return NULL;
    A->mask = mask, A->chain[A->n_chain++] = p;
    x = scores, user = p, p = x->producer;
  }
  if (p && (p->op == KN_OP_Div || p->op == KN_OP_Mul) && p->domain == KN_DOMAIN_ONNX && pass_only_consumer(g, x) == user) {
    float c;
    int s = p->op == KN_OP_Mul && scalar_const(p->inputs[0], A->rank, &c) ? 1 : 0;
    if (!scalar_const(p->inputs[1 - s], A->rank, &c) || (p->op == KN_OP_Div && c == 0.0f)) return NULL;
    A->scale = p->op == KN_OP_Div ? 1.0f / c : c;
    A->chain[A->n_chain++] = p;
    x = p->inputs[s], user = p, p = x->producer;
  }
  if (!p || p->op != KN_OP_MatMul || p->domain != KN_DOMAIN_ONNX || pass_only_consumer(g, x) != user) return NULL;
  if (!pass_same_concrete_shape(&x->type.shape, &sm->inputs[0]->type.shape)) return NULL;
  return p;
}

/* The whole pattern around Softmax sm; false (A unusable) when it does not fit. */
static bool match(const KnGraph *g, KnNode *sm, Attn *A) {
  if (sm->op != KN_OP_Softmax || sm->domain != KN_DOMAIN_ONNX || !concrete_f32(sm->inputs[0], -1)) return false;
  int r = sm->inputs[0]->type.shape.rank;
  int64_t axis = ir_attr_int(sm, "axis", sm->opset < 13 ? 1 : -1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return false;
  *A = (Attn){.scale = 1.0f, .rank = r};
  KnNode *mm1 = match_scores(g, A, sm);
  KnNode *mm2 = (KnNode *)pass_only_consumer(g, sm->outputs[0]);
  if (!mm1 || !mm2 || mm2->op != KN_OP_MatMul || mm2->domain != KN_DOMAIN_ONNX || mm2->inputs[0] != sm->outputs[0] ||
      mm2->inputs[1] == sm->outputs[0])
    return false;
  KnValue *qh = mm1->inputs[0], *kt = mm1->inputs[1], *vh = mm2->inputs[1];
  if (!concrete_f32(qh, r) || !concrete_f32(kt, r) || !concrete_f32(vh, r) || !concrete_f32(mm2->outputs[0], r)) return false;
  for (int d = 0; d < r - 2; d++)
    if (dim(qh, d) != dim(kt, d) || dim(qh, d) != dim(vh, d)) return false;
  if (dim(kt, r - 1) > ATTN_MAX_SK || dim(vh, r - 2) != dim(kt, r - 1)) return false;
  A->chain[A->n_chain++] = sm, A->chain[A->n_chain++] = mm1, A->chain[A->n_chain++] = mm2;
  A->q = through_transpose(g, A, qh, mm1, 0);
  A->k = through_transpose(g, A, kt, mm1, 1);
  A->v = through_transpose(g, A, vh, mm2, 2);
  KnNode *t = (KnNode *)pass_only_consumer(g, mm2->outputs[0]);
  if (t && t->op == KN_OP_Transpose && t->domain == KN_DOMAIN_ONNX && concrete_f32(t->outputs[0], r)) {
    int64_t n = 0;
    const int64_t *perm = ir_attr_ints(t, "perm", &n);
    if (!perm || n == r) {
      for (int d = 0; d < r; d++) A->perm[3][d] = perm ? perm[d] : r - 1 - d;
      A->has_perm[3] = true, A->chain[A->n_chain++] = t;
    }
  }
  return true;
}

/* Chain nodes in graph order, as pass_replace_chain wants them. */
static void sort_chain(Attn *A) {
  for (int i = 1; i < A->n_chain; i++)
    for (int j = i; j > 0 && A->chain[j - 1]->id > A->chain[j]->id; j--) {
      KnNode *t = A->chain[j];
      A->chain[j] = A->chain[j - 1], A->chain[j - 1] = t;
    }
}

static bool rewrite(KnGraph *g, Attn *A, KnPassCtx *ctx) {
  static const char *const names[4] = {"perm_q", "perm_k", "perm_v", "perm_out"};
  ir_graph_renumber(g);
  sort_chain(A);
  KnValue *in[4] = {A->q, A->k, A->v, A->mask};
  KnNode *n = pass_replace_chain(g, A->chain, A->n_chain, KN_OP_Attention, in, A->mask ? 4 : 3, ctx->err);
  if (!n) return false;
  bool ok = ir_set_attr_float(n, "scale", A->scale);
  for (int i = 0; i < 4 && ok; i++)
    if (A->has_perm[i]) ok = ir_set_attr_ints(n, names[i], A->perm[i], A->rank);
  if (!ok) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  ctx->rewrites++;
  return true;
}

bool pass_fuse_attention(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    Attn A;
    if (!match(g, g->nodes[i], &A)) continue;
    if (!rewrite(g, &A, ctx)) break;
    changed = true;
    i = -1; /* node positions moved: start over (each rewrite removes a Softmax) */
  }
  return changed;
}
