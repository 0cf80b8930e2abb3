/* cg_elementwise.c - the generic elementwise loop nest: every input broadcast to the output's
 * shape, dims that need no separate index collapsed, the outer dim split across threads and the
 * inner loop left unit-stride so LLVM vectorizes it. Lowerings supply only the scalar expression. */
#include <string.h>

#include "codegen/cg.h"

#define MAX_IN 64
#define MAX_RANK 16

typedef struct Nest {
  int rank;                        /* after collapsing */
  int64_t dims[MAX_RANK];
  int n_in;
  int in_index[MAX_IN];            /* node input each operand reads */
  KnDtype in_dtype[MAX_IN];
  int64_t strides[MAX_IN][MAX_RANK]; /* per operand; 0 on broadcast dims */
  int64_t out_strides[MAX_RANK];
  KnDtype out_dtype;
  CgElemFn fn;
  void *user;
} Nest;

/* Merges dim d into d+1 wherever every operand steps through both as one contiguous run (or
 * broadcasts both), so a [N,C,H,W] + [N,C,H,W] add becomes one flat loop. */
static void collapse(Nest *n) {
  int r = 0;
  for (int d = 0; d < n->rank; d++) {
    if (r > 0) {
      bool merge = true;
      for (int i = 0; i < n->n_in && merge; i++) {
        int64_t outer = n->strides[i][r - 1], inner = n->strides[i][d];
        merge = (outer == 0 && inner == 0) || (outer == inner * n->dims[d] && inner != 0);
      }
      if (merge) {
        n->dims[r - 1] *= n->dims[d];
        for (int i = 0; i < n->n_in; i++) n->strides[i][r - 1] = n->strides[i][d];
        continue;
      }
    }
    n->dims[r] = n->dims[d];
    for (int i = 0; i < n->n_in; i++) n->strides[i][r] = n->strides[i][d];
    r++;
  }
  n->rank = r;
  int64_t s = 1;
  for (int d = r - 1; d >= 0; d--) {
    n->out_strides[d] = s;
    s *= n->dims[d];
  }
}

/* Emits loops over dims [d, rank) given the offsets reached so far, then the expression. */
static void emit_dims(CgKernel *k, const Nest *n, int d, LLVMValueRef *offs, LLVMValueRef out_off) {
  if (d == n->rank) {
    LLVMValueRef vals[MAX_IN];
    for (int i = 0; i < n->n_in; i++) vals[i] = cg_load(k, k->in[n->in_index[i]], n->in_dtype[i], offs[i]);
    LLVMValueRef r = n->fn(k, vals, n->user);
    cg_store(k, k->out[0], n->out_dtype, out_off, r);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n->dims[d]));
  LLVMValueRef next[MAX_IN];
  for (int i = 0; i < n->n_in; i++)
    next[i] = LLVMBuildAdd(k->b, offs[i], LLVMBuildMul(k->b, l.i, cg_i64(k, n->strides[i][d]), ""), "");
  LLVMValueRef o = LLVMBuildAdd(k->b, out_off, LLVMBuildMul(k->b, l.i, cg_i64(k, n->out_strides[d]), ""), "");
  emit_dims(k, n, d + 1, next, o);
  cg_loop_end(k, &l);
}

static void outer_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Nest *n = user;
  LLVMValueRef offs[MAX_IN];
  for (int j = 0; j < n->n_in; j++) offs[j] = LLVMBuildMul(k->b, i, cg_i64(k, n->strides[j][0]), "");
  emit_dims(k, n, 1, offs, LLVMBuildMul(k->b, i, cg_i64(k, n->out_strides[0]), ""));
}

KnStatus cg_emit_elementwise(CgKernel *k, CgElemFn fn, void *user) {
  const KnNode *node = k->node;
  const KnShape *out = cg_out_shape(k, 0);
  Nest nest = {0}, *n = &nest;
  if (out->rank > MAX_RANK) return cg_unsupported(k, "more than 16 dims");
  n->rank = out->rank;
  for (int d = 0; d < out->rank; d++) n->dims[d] = out->dims[d].value;
  for (int i = 0; i < node->n_inputs && n->n_in < MAX_IN; i++) {
    if (!node->inputs[i]) continue;
    n->in_index[n->n_in] = i;
    n->in_dtype[n->n_in] = cg_in_dtype(k, i);
    cg_broadcast_strides(cg_in_shape(k, i), out, n->strides[n->n_in]);
    n->n_in++;
  }
  n->out_dtype = cg_out_dtype(k, 0);
  n->fn = fn;
  n->user = user;
  int64_t total = cg_numel(out);
  if (total == 0) return KN_OK;
  collapse(n);
  if (n->rank == 0) {
    LLVMValueRef offs[MAX_IN];
    for (int i = 0; i < n->n_in; i++) offs[i] = cg_i64(k, 0);
    emit_dims(k, n, 0, offs, cg_i64(k, 0));
    return KN_OK;
  }
  /* Split the outer dim across threads; a flat loop is first cut into rows worth a thread. */
  if (n->rank == 1 && n->dims[0] > 65536) {
    int64_t inner = 16384;
    while (n->dims[0] % inner) inner /= 2;
    if (inner > 1) {
      n->dims[0] /= inner;
      n->dims[1] = inner;
      for (int i = 0; i < n->n_in; i++) {
        n->strides[i][1] = n->strides[i][0];
        n->strides[i][0] *= inner;
      }
      n->out_strides[0] = inner;
      n->out_strides[1] = 1;
      n->rank = 2;
    }
  }
  int64_t per_outer = total / n->dims[0];
  int64_t grain = per_outer >= 16384 ? 1 : 16384 / (per_outer ? per_outer : 1);
  cg_parallel_for(k, n->dims[0], grain, outer_body, n);
  return KN_OK;
}
