/* infer_loss.c - shape inference for the loss ops: per-element losses or a reduced scalar. */
#include <string.h>

#include "ir/infer_b_internal.h"

/* reduction "none" keeps the target's shape [N, d1..]; "mean" and "sum" give a scalar. */
static KnStatus reduction_none(const KnNode *n, bool *none, KnError *err) {
  const char *r = ir_attr_string(n, "reduction", "mean");
  *none = !strcmp(r, "none");
  if (!*none && strcmp(r, "mean") && strcmp(r, "sum"))
    return ir_infer_fail(err, n, KN_ERR_INVALID, "reduction '%s' is not none, mean or sum", r);
  return KN_OK;
}

/* scores [N, C, d1..] and target [N, d1..]: ranks differ by one, N and d's agree. */
static KnStatus check_target(const KnNode *n, const KnType *s, const KnType *t, KnError *err) {
  if (s->shape.rank >= 0 && s->shape.rank < 2)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input 0 has rank %d, expected [N, C, ...]",
                         s->shape.rank);
  if (s->shape.rank < 0 || t->shape.rank < 0) return KN_OK;
  if (t->shape.rank != s->shape.rank - 1)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input 1 has rank %d, expected %d (input 0's - 1)",
                         t->shape.rank, s->shape.rank - 1);
  for (int i = 0; i < t->shape.rank; i++) {
    KnStatus st = ib_check_dim(n, t->shape.dims[i], s->shape.dims[i ? i + 1 : 0],
                               "target dim vs input dim", err);
    if (st) return st;
  }
  return KN_OK;
}

/* The per-element loss shape [N, d1..]: from the target and the scores (class dim dropped). */
static KnStatus set_loss(KnNode *n, const KnType *s, const KnType *t, bool none, KnError *err) {
  if (!none) return ir_set_output(n, 0, s->dtype, 0, NULL, err);
  int r = t->shape.rank >= 0 ? t->shape.rank : s->shape.rank - 1;
  if (s->shape.rank < 0 && t->shape.rank < 0) return ir_set_output(n, 0, s->dtype, -1, NULL, err);
  KnDim *dims = ib_dims(n, r);
  if (!dims) return ib_nomem(err);
  for (int i = 0; i < r; i++)
    dims[i] = ib_better_dim(ib_dim(n, 1, i), ib_dim(n, 0, i ? i + 1 : 0));
  return ir_set_output(n, 0, s->dtype, r, dims, err);
}

static KnStatus loss_common(KnNode *n, KnError *err) {
  const KnType *s, *t;
  bool none;
  KnStatus st = ib_tensor(n, 0, &s, err);
  if (!st) st = ib_tensor(n, 1, &t, err);
  if (!st) st = check_target(n, s, t, err);
  if (!st && ir_input(n, 2)) st = ib_check_rank(n, 2, 1, err);
  if (!st && ir_input(n, 2))
    st = ib_check_dim(n, ib_dim(n, 2, 0), ib_dim(n, 0, 1), "weight length vs classes", err);
  if (!st) st = reduction_none(n, &none, err);
  return st ? st : set_loss(n, s, t, none, err);
}

KnStatus infer_nll_loss(KnNode *node, KnError *err) {
  return loss_common(node, err);
}

/* loss as above; the optional log_prob output is shaped like the scores. */
KnStatus infer_softmax_ce_loss(KnNode *node, KnError *err) {
  KnStatus st = loss_common(node, err);
  return st ? st : ib_like_input(node, 1, 0, KN_UNDEF, err);
}
