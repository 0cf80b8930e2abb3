/* lower_softmax.c - Softmax, LogSoftmax and Hardmax along an axis (or, before opset 13, over the
 * input coerced to 2-D at that axis), on the reduction engine: max, sum of exp(x - max), map. */
#include <math.h>

#include "codegen/lower_reduce.h"

/* Softmax/LogSoftmax stats: 0 = max, 1 = sum of exp(x - max) (then 1/sum or log(sum)).
 * Hardmax stats: 0 = best value, 1 = its index (first one). */
static void sm_init(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  if (k->node->op == KN_OP_Hardmax) {
    c->stats[0] = cg_convert(k, c->x, p->src_dtype, t);
    c->stats[1] = cg_i64(k, 0);
    return;
  }
  if (pass == 0) c->stats[0] = cg_const(k, t, -INFINITY);
  else c->stats[1] = cg_const(k, t, 0);
}

static void sm_step(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t);
  if (k->node->op == KN_OP_Hardmax) {
    /* the first maximum wins; a NaN counts as the maximum, as in numpy's argmax */
    LLVMValueRef best = c->stats[0];
    LLVMValueRef better = cg_cmp(k, t, "gt", x, best);
    LLVMValueRef x_nan = LLVMBuildFCmp(k->b, LLVMRealUNO, x, x, "");
    LLVMValueRef best_ok = LLVMBuildFCmp(k->b, LLVMRealORD, best, best, "");
    better = LLVMBuildOr(k->b, better, LLVMBuildAnd(k->b, x_nan, best_ok, ""), "");
    c->stats[0] = cg_select(k, better, x, best);
    c->stats[1] = cg_select(k, better, c->ridx, c->stats[1]);
    return;
  }
  if (pass == 0) c->stats[0] = cg_max(k, t, c->stats[0], x);
  else c->stats[1] = rd_add(k, t, c->stats[1], rd_fn(k, "llvm.exp", LLVMBuildFSub(k->b, x, c->stats[0], "")));
}

static void sm_done(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  if (k->node->op == KN_OP_Hardmax || pass != 1) return;
  if (k->node->op == KN_OP_LogSoftmax) c->stats[1] = rd_fn(k, "llvm.log", c->stats[1]);
  else c->stats[1] = LLVMBuildFDiv(k->b, cg_const(k, t, 1), c->stats[1], "");
}

static LLVMValueRef sm_map(CgKernel *k, const RdPlan *p, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t), r;
  if (k->node->op == KN_OP_Hardmax) {
    LLVMValueRef hit = LLVMBuildICmp(k->b, LLVMIntEQ, c->ridx, c->stats[1], "");
    r = cg_select(k, hit, cg_const(k, t, 1), cg_const(k, t, 0));
  } else {
    LLVMValueRef d = LLVMBuildFSub(k->b, x, c->stats[0], "");
    if (k->node->op == KN_OP_LogSoftmax) r = LLVMBuildFSub(k->b, d, c->stats[1], "");
    else r = LLVMBuildFMul(k->b, rd_fn(k, "llvm.exp", d), c->stats[1], "");
  }
  return cg_convert(k, r, t, p->map_dtype);
}

KnStatus cg_lower_softmax(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  if (!ir_dtype_is_float(t)) return cg_unsupported(k, "non-float input");
  if (s->rank > RD_MAX_RANK * 2) return cg_unsupported(k, "too many dims");
  if (cg_numel(s) == 0) return KN_OK;
  bool coerce = k->node->opset < 13;
  int64_t axis = ir_attr_int(k->node, "axis", coerce ? 1 : -1);
  if (axis < 0) axis += s->rank;
  /* a scalar has one element: axis 0 of a [1] view */
  if (s->rank > 0 && (axis < 0 || axis >= s->rank + (coerce ? 1 : 0)))
    return cg_unsupported(k, "axis out of range");
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  for (int d = 0; d < s->rank; d++) mask[d] = coerce ? d >= axis : d == axis;
  RdPlan plan = {0}, *p = &plan;
  if (!rd_geometry(p, s, mask)) return cg_unsupported(k, "too many dims");
  p->src_dtype = t;
  p->n_stats = 2;
  p->stat_dtype[0] = rd_float_acc(t);
  p->stat_dtype[1] = k->node->op == KN_OP_Hardmax ? KN_I64 : rd_float_acc(t);
  p->n_pass = k->node->op == KN_OP_Hardmax ? 1 : 2;
  p->init = sm_init;
  p->step = sm_step;
  p->done = sm_done;
  p->map = sm_map;
  p->map_dtype = cg_out_dtype(k, 0);
  rd_emit(k, p);
  return KN_OK;
}
