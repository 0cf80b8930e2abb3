/* pack_weights.c - constant GEMM weights laid out the way the microkernels read them.
 * Rewrites kiln.FusedGemm(A, W, ...) with W a constant f32 [K, N] into
 *   kiln.FusedGemm(A, W', ...) {packed = 16, n = N}, W' = [ceil(N / 16), K, 16]
 * where panel p holds columns 16p .. 16p+15 of every row, zero beyond N. A microkernel tile then
 * streams its columns of B as one contiguous run per panel instead of a short piece of every row
 * N elements apart, which is what kept GEMV at a fraction of the memory bandwidth and SGEMM off
 * its FMA peak. 16 columns is a whole number of vectors on every target (16 f32 lanes on AVX-512,
 * 8 on AVX2, 4 on NEON), so the packed model does not depend on the machine it is compiled for. */
#include <string.h>

#include "passes/passes.h"

#define PANEL 16

/* W's constant [K, N] f32 matrix when node n is an unpacked FusedGemm that only it reads, else NULL
 * (a W another node also reads would be kept twice). */
static const KnTensor *packable_weight(const KnGraph *g, const KnNode *n) {
  if (n->op != KN_OP_FusedGemm || n->domain != KN_DOMAIN_KILN || n->n_inputs < 2 || ir_attr_int(n, "packed", 0))
    return NULL;
  const KnTensor *t = pass_constant_of(n->inputs[1]);
  if (!t || pass_count_uses(g, n->inputs[1]) != 1) return NULL;
  if (t->dtype != KN_F32 || t->rank != 2 || t->dims[0] < 1 || t->dims[1] < 1) return NULL;
  return t;
}

/* The panels of w as a new tensor in g's arena. */
static KnTensor *packed_copy(KnGraph *g, const KnTensor *w, KnError *err) {
  int64_t K = w->dims[0], N = w->dims[1], panels = (N + PANEL - 1) / PANEL;
  int64_t dims[3] = {panels, K, PANEL};
  KnTensor *t = ir_tensor_new(g->arena, KN_F32, 3, dims, err); /* checks the size */
  if (!t) return NULL;
  const float *src = w->data;
  float *dst = t->data;
  memset(dst, 0, t->nbytes); /* the columns past N */
  for (int64_t p = 0; p < panels; p++) {
    int64_t c0 = p * PANEL, cols = N - c0 < PANEL ? N - c0 : PANEL;
    for (int64_t r = 0; r < K; r++)
      memcpy(dst + (p * K + r) * PANEL, src + r * N + c0, (size_t)cols * sizeof *dst);
  }
  return t;
}

bool pass_pack_weights(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    KnNode *n = g->nodes[i];
    const KnTensor *w = packable_weight(g, n);
    if (!w) continue;
    KnTensor *t = packed_copy(g, w, ctx->err);
    KnValue *v = t ? ir_add_init(g, NULL, t) : NULL;
    if (!v) return changed;
    if (!ir_set_attr_int(n, "packed", PANEL) || !ir_set_attr_int(n, "n", w->dims[1])) {
      kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory");
      return changed;
    }
    n->inputs[1] = v;
    ctx->rewrites++;
    changed = true;
  }
  return changed;
}
