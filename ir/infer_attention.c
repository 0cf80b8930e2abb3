/* infer_attention.c - shape inference for kiln.Attention and kiln.FusedMatMul (made by
 * passes/fuse_attention.c and passes/fold_transpose.c). */
#include "ir/infer_b_internal.h"

#define ATTN_MAX_RANK 8

/* Dims of input i seen through its permutation attribute (absent: identity); fails on a perm
 * that is not a permutation of the input's axes. Sets *rank (-1: unknown). */
static KnStatus permuted(const KnNode *node, int i, const char *attr, KnDim *dims, int *rank, KnError *err) {
  int r = ib_rank(node, i);
  int64_t n = 0;
  const int64_t *perm = ir_attr_ints(node, attr, &n);
  *rank = r;
  if (r > ATTN_MAX_RANK) return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d has rank %d, at most %d", i, r, ATTN_MAX_RANK);
  if (r >= 0 && r < 2) return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d has rank %d, expected 2 or more", i, r);
  if (perm && r >= 0 && n != r)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "%s has %lld entries for rank %d", attr, (long long)n, r);
  if (r < 0) return KN_OK;
  bool seen[ATTN_MAX_RANK] = {false};
  for (int d = 0; d < r; d++) {
    int64_t p = perm ? perm[d] : d;
    if (p < 0 || p >= r || seen[p]) return ir_infer_fail(err, node, KN_ERR_INVALID, "%s is not a permutation", attr);
    seen[p] = true;
    dims[d] = ib_dim(node, i, (int)p);
  }
  return KN_OK;
}

/* The mask must broadcast (numpy rules, rank at most r) to the scores [batch..., Sq, Sk]. */
static KnStatus check_mask(const KnNode *node, const KnDim *scores, int r, KnError *err) {
  int mr = ib_rank(node, 3);
  if (!ir_input(node, 3) || mr < 0) return KN_OK;
  KnStatus st = ib_check_same_dtype(node, 0, 3, err);
  if (st) return st;
  if (mr > r) return ir_infer_fail(err, node, KN_ERR_INVALID, "mask has rank %d, more than the scores' %d", mr, r);
  for (int d = 0; d < mr; d++) {
    KnDim m = ib_dim(node, 3, d), s = scores[r - mr + d];
    if (m.value != 1 && (st = ib_check_dim(node, m, s, "mask dim vs scores", err))) return st;
  }
  return KN_OK;
}

/* Output 0: the product o (rank r) through perm_out. */
static KnStatus permuted_output(KnNode *node, const KnDim *o, int r, KnError *err) {
  int64_t n = 0;
  const int64_t *perm = ir_attr_ints(node, "perm_out", &n);
  if (perm && n != r) return ir_infer_fail(err, node, KN_ERR_INVALID, "perm_out has %lld entries for rank %d", (long long)n, r);
  KnDim *dims = ib_dims(node, r);
  if (!dims) return ib_nomem(err);
  bool seen[ATTN_MAX_RANK] = {false};
  for (int d = 0; d < r; d++) {
    int64_t p = perm ? perm[d] : d;
    if (p < 0 || p >= r || seen[p]) return ir_infer_fail(err, node, KN_ERR_INVALID, "perm_out is not a permutation");
    seen[p] = true;
    dims[d] = o[p];
  }
  return ir_set_output(node, 0, KN_F32, r, dims, err);
}

/* kiln.Attention(Q, K, V, mask?) {scale, perm_q, perm_k, perm_v, perm_out}, all f32:
 * Qh = Transpose(Q, perm_q) [..., Sq, D], Kt = Transpose(K, perm_k) [..., D, Sk],
 * Vh = Transpose(V, perm_v) [..., Sk, Dv] (the same rank and batch dims),
 * Y = Transpose(Softmax(scale * Qh @ Kt + mask, axis -1) @ Vh, perm_out). */
KnStatus infer_attention(KnNode *node, KnError *err) {
  const KnType *t;
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ib_tensor(node, i, &t, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  if (!st) st = ib_check_same_dtype(node, 0, 2, err);
  if (st) return st;
  if (node->inputs[0]->type.dtype != KN_F32)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "Q is %s, expected f32", ir_dtype_name(node->inputs[0]->type.dtype));
  KnDim q[ATTN_MAX_RANK], k[ATTN_MAX_RANK], v[ATTN_MAX_RANK];
  int rq, rk, rv;
  if ((st = permuted(node, 0, "perm_q", q, &rq, err)) || (st = permuted(node, 1, "perm_k", k, &rk, err)) ||
      (st = permuted(node, 2, "perm_v", v, &rv, err)))
    return st;
  if (rq < 0 || rk < 0 || rv < 0) return ir_set_output(node, 0, KN_F32, -1, NULL, err);
  if (rq != rk || rq != rv) return ir_infer_fail(err, node, KN_ERR_INVALID, "Q, K and V have ranks %d, %d and %d", rq, rk, rv);
  int r = rq;
  for (int d = 0; d < r - 2 && !st; d++) {
    st = ib_check_dim(node, q[d], k[d], "batch dim of Q vs K", err);
    if (!st) st = ib_check_dim(node, q[d], v[d], "batch dim of Q vs V", err);
  }
  if (!st) st = ib_check_dim(node, q[r - 1], k[r - 2], "D of Q vs K", err);
  if (!st) st = ib_check_dim(node, k[r - 1], v[r - 2], "Sk of K vs V", err);
  if (st) return st;
  KnDim scores[ATTN_MAX_RANK], o[ATTN_MAX_RANK];
  for (int d = 0; d < r - 2; d++) scores[d] = o[d] = ib_better_dim(ib_better_dim(q[d], k[d]), v[d]);
  scores[r - 2] = o[r - 2] = q[r - 2];
  scores[r - 1] = k[r - 1], o[r - 1] = v[r - 1];
  if ((st = check_mask(node, scores, r, err))) return st;
  return permuted_output(node, o, r, err);
}

/* kiln.FusedMatMul(A, B) {perm_a, perm_b, perm_out}, f32 (from passes/fold_transpose.c):
 * Y = Transpose(Transpose(A, perm_a) @ Transpose(B, perm_b), perm_out); the permuted A
 * [..., M, K] and B [..., K, N] have the same rank and batch dims. */
KnStatus infer_fused_matmul(KnNode *node, KnError *err) {
  const KnType *t;
  KnStatus st = ib_tensor(node, 0, &t, err);
  if (!st) st = ib_tensor(node, 1, &t, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  if (st) return st;
  if (node->inputs[0]->type.dtype != KN_F32)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "A is %s, expected f32", ir_dtype_name(node->inputs[0]->type.dtype));
  KnDim a[ATTN_MAX_RANK], b[ATTN_MAX_RANK], o[ATTN_MAX_RANK];
  int ra, rb;
  if ((st = permuted(node, 0, "perm_a", a, &ra, err)) || (st = permuted(node, 1, "perm_b", b, &rb, err))) return st;
  if (ra < 0 || rb < 0) return ir_set_output(node, 0, KN_F32, -1, NULL, err);
  if (ra != rb) return ir_infer_fail(err, node, KN_ERR_INVALID, "A and B have ranks %d and %d", ra, rb);
  int r = ra;
  for (int d = 0; d < r - 2 && !st; d++) {
    st = ib_check_dim(node, a[d], b[d], "batch dim of A vs B", err);
    o[d] = ib_better_dim(a[d], b[d]);
  }
  if (!st) st = ib_check_dim(node, a[r - 1], b[r - 2], "K of A vs B", err);
  if (st) return st;
  o[r - 2] = a[r - 2], o[r - 1] = b[r - 1];
  return permuted_output(node, o, r, err);
}
