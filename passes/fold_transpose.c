/* fold_transpose.c - transposes into the operands and result of a batched MatMul.
 * Rewrites (f32, concrete shapes, A' and B' of the same rank and batch dims, each Transpose used
 * only by the MatMul, the MatMul used only by the output Transpose):
 *   MatMul([Transpose(A, perm_a) | A], [Transpose(B, perm_b) | B]) [-> Transpose(., perm_out)]
 * (perm_b keeping the last axis last) with at least one Transpose into
 * kiln.FusedMatMul(A, B) {perm_a, perm_b, perm_out}, whose kernel
 * (codegen/lower_attention.c) reads A and B and writes Y through the strides the perms give, so
 * the transposed copies are never made. Runs after fuse_attention, which takes the transposes
 * of whole attention blocks itself. */
#include "passes/passes.h"

#define FT_MAX_RANK 8

typedef struct Fold {
  KnNode *chain[4];
  int n_chain;
  KnValue *in[2];
  int64_t perm[3][FT_MAX_RANK]; /* a, b, out */
  bool has_perm[3];
  int rank;
} Fold;

static bool concrete_f32(const KnValue *v, int r) {
  if (!pass_is_f32_tensor(v) || v->type.shape.rank != r) return false;
  for (int d = 0; d < r; d++)
    if (v->type.shape.dims[d].value < 1) return false;
  return true;
}

/* The perm of Transpose t as rank entries (absent: reversed axes); false if it has another length. */
static bool read_perm(const KnNode *t, int rank, int64_t *out) {
  int64_t n = 0;
  const int64_t *perm = ir_attr_ints(t, "perm", &n);
  if (perm && n != rank) return false;
  for (int d = 0; d < rank; d++) out[d] = perm ? perm[d] : rank - 1 - d;
  return true;
}

/* Operand `which` of mm, through a Transpose that only mm uses. */
static void operand(const KnGraph *g, Fold *F, KnNode *mm, int which) {
  KnValue *x = mm->inputs[which];
  KnNode *t = x->producer;
  F->in[which] = x;
  if (!t || t->op != KN_OP_Transpose || t->domain != KN_DOMAIN_ONNX || pass_only_consumer(g, x) != mm) return;
  if (!concrete_f32(t->inputs[0], F->rank) || !read_perm(t, F->rank, F->perm[which])) return;
  /* a B whose columns would not be unit-stride is packed strip by strip per row block, slower
   * than the Transpose and the shared GEMM: keep those */
  if (which == 1 && F->perm[1][F->rank - 1] != F->rank - 1) return;
  F->in[which] = t->inputs[0], F->has_perm[which] = true;
  F->chain[F->n_chain++] = t;
}

static bool match(const KnGraph *g, KnNode *mm, Fold *F) {
  if (mm->op != KN_OP_MatMul || mm->domain != KN_DOMAIN_ONNX) return false;
  const KnValue *a = mm->inputs[0], *b = mm->inputs[1], *y = mm->outputs[0];
  int r = a->type.shape.rank;
  if (r < 2 || r > FT_MAX_RANK || !concrete_f32(a, r) || !concrete_f32(b, r) || !concrete_f32(y, r)) return false;
  for (int d = 0; d < r - 2; d++)
    if (a->type.shape.dims[d].value != b->type.shape.dims[d].value) return false;
  *F = (Fold){.rank = r};
  operand(g, F, mm, 0);
  operand(g, F, mm, 1);
  F->chain[F->n_chain++] = mm;
  KnNode *t = (KnNode *)pass_only_consumer(g, y);
  if (t && t->op == KN_OP_Transpose && t->domain == KN_DOMAIN_ONNX && concrete_f32(t->outputs[0], r) &&
      read_perm(t, r, F->perm[2])) {
    F->has_perm[2] = true;
    F->chain[F->n_chain++] = t;
  }
  return F->n_chain > 1;
}

static bool rewrite(KnGraph *g, Fold *F, KnPassCtx *ctx) {
  static const char *const names[3] = {"perm_a", "perm_b", "perm_out"};
  ir_graph_renumber(g);
  for (int i = 1; i < F->n_chain; i++) /* graph order, as pass_replace_chain wants */
    for (int j = i; j > 0 && F->chain[j - 1]->id > F->chain[j]->id; j--) {
      KnNode *t = F->chain[j];
      F->chain[j] = F->chain[j - 1], F->chain[j - 1] = t;
    }
  KnNode *n = pass_replace_chain(g, F->chain, F->n_chain, KN_OP_FusedMatMul, F->in, 2, ctx->err);
  if (!n) return false;
  for (int i = 0; i < 3; i++)
    if (F->has_perm[i] && !ir_set_attr_ints(n, names[i], F->perm[i], F->rank))
      return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  ctx->rewrites++;
  return true;
}

bool pass_fold_transpose(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    Fold F;
    if (!match(g, g->nodes[i], &F)) continue;
    if (!rewrite(g, &F, ctx)) break;
    changed = true;
    i = -1; /* node positions moved: start over (each rewrite removes a MatMul) */
  }
  return changed;
}
