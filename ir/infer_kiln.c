/* infer_kiln.c - shape inference for the ops kiln's passes create (the "kiln" domain). */
#include <string.h>

#include "ir/infer_b_internal.h"

/* The epilogue attributes both fused ops share; FusedGemm also takes "Gelu" {approximate}. */
static KnStatus check_activation(const KnNode *node, KnError *err) {
  const char *act = ir_attr_string(node, "activation", "");
  bool gelu = node->op == KN_OP_FusedGemm && !strcmp(act, "Gelu");
  if (*act && strcmp(act, "Relu") != 0 && strcmp(act, "Clip") != 0 && !gelu)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "unknown activation '%s'", act);
  const char *approx = ir_attr_string(node, "approximate", "none");
  if (gelu && strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "approximate is '%s', expected \"none\" or \"tanh\"", approx);
  return KN_OK;
}

/* kiln.FusedGemm(A, B, bias?, residual?): Y = act(A @ B + bias + residual), f32.
 * A: [..., K]; B: [K, N], or with packed=P the panels [ceil(N/P), K, P] (n = N); bias: [N];
 * residual: Y's shape; activation: "" | "Relu" | "Clip" (bounds min, max). */
KnStatus infer_fused_gemm(KnNode *node, KnError *err) {
  const KnType *a, *b;
  KnStatus st = ib_tensor(node, 0, &a, err);
  if (!st) st = ib_tensor(node, 1, &b, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  if (st) return st;
  int64_t panel = ir_attr_int(node, "packed", 0);
  if (!st) st = ib_check_rank(node, 1, panel ? 3 : 2, err);
  if (st) return st;
  if (a->dtype != KN_F32)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "A is %s, expected f32", ir_dtype_name(a->dtype));
  if ((st = check_activation(node, err))) return st;
  int ra = a->shape.rank;
  if (ra >= 0 && ra < 2) return ir_infer_fail(err, node, KN_ERR_INVALID, "A has rank %d, expected 2 or more", ra);
  KnDim n = panel ? (KnDim){.value = ir_attr_int(node, "n", -1)} : ib_dim(node, 1, 1);
  KnDim kb = ib_dim(node, 1, panel ? 1 : 0);
  if (panel && (panel < 1 || n.value < 1 || ib_dim(node, 1, 2).value != panel))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "packed B needs n >= 1 and panels of %lld", (long long)panel);
  if (ra < 0) return ir_set_output(node, 0, KN_F32, -1, NULL, err);
  if ((st = ib_check_dim(node, ib_dim(node, 0, ra - 1), kb, "K of A and B", err))) return st;
  KnDim *dims = ib_dims(node, ra);
  if (!dims) return ib_nomem(err);
  for (int d = 0; d < ra - 1; d++) dims[d] = ib_dim(node, 0, d);
  dims[ra - 1] = n;
  if (ib_rank(node, 2) >= 0 && (ib_rank(node, 2) != 1 || (st = ib_check_dim(node, ib_dim(node, 2, 0), n, "bias length", err))))
    return st ? st : ir_infer_fail(err, node, KN_ERR_INVALID, "bias must be 1-D");
  return ir_set_output(node, 0, KN_F32, ra, dims, err);
}

/* kiln.FusedConv(X, W, bias?, residual?) {Conv's attributes, activation, min, max}:
 * Y = act(Conv(X, W, bias) + residual), f32; the residual has Y's shape. */
KnStatus infer_fused_conv(KnNode *node, KnError *err) {
  KnStatus st = check_activation(node, err);
  if (!st) st = infer_conv(node, err);
  if (st) return st;
  const KnType *y = &node->outputs[0]->type;
  if (y->dtype != KN_F32)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "X is %s, expected f32", ir_dtype_name(y->dtype));
  if (!ir_input(node, 3) || y->shape.rank < 0) return KN_OK;
  if ((st = ib_check_rank(node, 3, y->shape.rank, err))) return st;
  for (int d = 0; d < y->shape.rank; d++)
    if ((st = ib_check_dim(node, ib_dim(node, 3, d), y->shape.dims[d], "residual dim vs output", err))) return st;
  return ib_check_same_dtype(node, 0, 3, err);
}

/* kiln.Gelu(X) {approximate}: Y = X * Phi(X) elementwise, like X; approximate "none" (erf) or
 * "tanh". */
KnStatus infer_gelu(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  if (x->dtype != KN_UNDEF && !ir_dtype_is_float(x->dtype))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "X is %s, expected a float type", ir_dtype_name(x->dtype));
  const char *approx = ir_attr_string(node, "approximate", "none");
  if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "approximate is '%s', expected \"none\" or \"tanh\"", approx);
  return ir_set_output_type(node, 0, x, err);
}

/* kiln.ToBlocked(X) {block}: [N, C, H, W] -> [N, ceil(C / block), H, W, block], channels past C
 * zero (NCHW16c for block 16). */
KnStatus infer_to_blocked(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_check_rank(node, 0, 4, err);
  if (st) return st;
  int64_t blk = ir_attr_int(node, "block", 0);
  if (blk != 16) return ir_infer_fail(err, node, KN_ERR_INVALID, "block = %lld, expected 16", (long long)blk);
  if (x->dtype != KN_F32) return ir_infer_fail(err, node, KN_ERR_INVALID, "X is %s, expected f32", ir_dtype_name(x->dtype));
  KnDim *dims = ib_dims(node, 5), c = ib_dim(node, 0, 1);
  if (!dims) return ib_nomem(err);
  dims[0] = ib_dim(node, 0, 0), dims[2] = ib_dim(node, 0, 2), dims[3] = ib_dim(node, 0, 3), dims[4] = IR_DIM(blk);
  dims[1] = c.value >= 0 ? IR_DIM((c.value + blk - 1) / blk) : IR_DIM_UNKNOWN;
  return ir_set_output(node, 0, KN_F32, 5, dims, err);
}

/* kiln.FromBlocked(X) {block, channels}: [N, CB, H, W, block] -> [N, channels, H, W], channels at
 * most CB * block. */
KnStatus infer_from_blocked(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_check_rank(node, 0, 5, err);
  if (st) return st;
  int64_t blk = ir_attr_int(node, "block", 0), c = ir_attr_int(node, "channels", -1);
  KnDim cb = ib_dim(node, 0, 1);
  if (blk != 16 || c < 1 || (cb.value >= 0 && (c > cb.value * blk || c <= (cb.value - 1) * blk)))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "block = %lld, channels = %lld: expected 16 and 1 .. 16 x dim 1",
                         (long long)blk, (long long)c);
  if ((st = ib_check_dim(node, ib_dim(node, 0, 4), IR_DIM(blk), "block dim", err))) return st;
  if (x->dtype != KN_F32) return ir_infer_fail(err, node, KN_ERR_INVALID, "X is %s, expected f32", ir_dtype_name(x->dtype));
  KnDim *dims = ib_dims(node, 4);
  if (!dims) return ib_nomem(err);
  dims[0] = ib_dim(node, 0, 0), dims[1] = IR_DIM(c), dims[2] = ib_dim(node, 0, 2), dims[3] = ib_dim(node, 0, 3);
  return ir_set_output(node, 0, KN_F32, 4, dims, err);
}
