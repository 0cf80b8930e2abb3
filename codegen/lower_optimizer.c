/* lower_optimizer.c - the training domain's optimizer steps (ai.onnx.preview.training Adagrad,
 * Momentum, Adam): for each parameter tensor X with gradient G and state tensors, one elementwise
 * update. Scalar factors (learning rate R, step T) are read at run time; per-element math runs in
 * f64 and rounds once, matching the reference to float precision. */
#include <string.h>

#include "codegen/cg.h"

typedef struct OptStep {
  KnOp op;
  int n;                 /* parameter tensors updated */
  double decay, eps, norm, norm_post, alpha, beta;
  bool nesterov;
  LLVMValueRef r, t;     /* learning rate and step as f64, loaded once */
} OptStep;

static LLVMValueRef f64c(CgKernel *k, double v) { return LLVMConstReal(k->m->t_f64, v); }

static LLVMValueRef load_f64(CgKernel *k, int input, LLVMValueRef idx) {
  return cg_convert(k, cg_load(k, k->in[input], cg_in_dtype(k, input), idx), cg_in_dtype(k, input), KN_F64);
}

static void store_f64(CgKernel *k, int output, LLVMValueRef idx, LLVMValueRef v) {
  KnDtype t = cg_out_dtype(k, output);
  cg_store(k, k->out[output], t, idx, cg_convert(k, v, KN_F64, t));
}

static LLVMValueRef sqrt64(CgKernel *k, LLVMValueRef x) { return cg_intrinsic(k, "llvm.sqrt", &x, 1); }

/* One element j of parameter tensor i. Inputs: R, T, X[n], G[n], state...; outputs X'[n], state'... */
static void update(CgKernel *k, const OptStep *s, int i, LLVMValueRef j) {
  LLVMBuilderRef b = k->b;
  int n = s->n;
  LLVMValueRef x = load_f64(k, 2 + i, j), g = load_f64(k, 2 + n + i, j);
  LLVMValueRef greg = LLVMBuildFAdd(b, LLVMBuildFMul(b, f64c(k, s->norm), x, ""), g, "");
  if (s->op == KN_OP_Adagrad) {
    LLVMValueRef r = LLVMBuildFDiv(b, s->r, LLVMBuildFAdd(b, f64c(k, 1), LLVMBuildFMul(b, s->t, f64c(k, s->decay), ""), ""), "");
    LLVMValueRef h = LLVMBuildFAdd(b, load_f64(k, 2 + 2 * n + i, j), LLVMBuildFMul(b, greg, greg, ""), "");
    LLVMValueRef denom = LLVMBuildFAdd(b, sqrt64(k, h), f64c(k, s->eps), "");
    store_f64(k, i, j, LLVMBuildFSub(b, x, LLVMBuildFDiv(b, LLVMBuildFMul(b, r, greg, ""), denom, ""), ""));
    store_f64(k, n + i, j, h);
  } else if (s->op == KN_OP_Momentum) {
    LLVMValueRef beta = cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, s->t, f64c(k, 0), ""), f64c(k, s->beta), f64c(k, 1));
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, f64c(k, s->alpha), load_f64(k, 2 + 2 * n + i, j), ""),
                                   LLVMBuildFMul(b, beta, greg, ""), "");
    LLVMValueRef step = s->nesterov ? LLVMBuildFAdd(b, greg, LLVMBuildFMul(b, f64c(k, s->alpha), v, ""), "") : v;
    store_f64(k, i, j, LLVMBuildFSub(b, x, LLVMBuildFMul(b, s->r, step, ""), ""));
    store_f64(k, n + i, j, v);
  } else { /* Adam */
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, f64c(k, s->alpha), load_f64(k, 2 + 2 * n + i, j), ""),
                                   LLVMBuildFMul(b, f64c(k, 1 - s->alpha), greg, ""), "");
    LLVMValueRef h = LLVMBuildFAdd(b, LLVMBuildFMul(b, f64c(k, s->beta), load_f64(k, 2 + 3 * n + i, j), ""),
                                   LLVMBuildFMul(b, f64c(k, 1 - s->beta), LLVMBuildFMul(b, greg, greg, ""), ""), "");
    LLVMValueRef denom = LLVMBuildFAdd(b, sqrt64(k, h), f64c(k, s->eps), "");
    LLVMValueRef pa[2] = {f64c(k, s->alpha), s->t}, pb[2] = {f64c(k, s->beta), s->t};
    LLVMValueRef corr = LLVMBuildFDiv(b, sqrt64(k, LLVMBuildFSub(b, f64c(k, 1), cg_intrinsic(k, "llvm.pow", pb, 2), "")),
                                      LLVMBuildFSub(b, f64c(k, 1), cg_intrinsic(k, "llvm.pow", pa, 2), ""), "");
    LLVMValueRef r = cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, s->t, f64c(k, 0), ""), LLVMBuildFMul(b, s->r, corr, ""), s->r);
    LLVMValueRef xn = LLVMBuildFSub(b, x, LLVMBuildFMul(b, r, LLVMBuildFDiv(b, v, denom, ""), ""), "");
    store_f64(k, i, j, LLVMBuildFMul(b, f64c(k, 1 - s->norm_post), xn, ""));
    store_f64(k, n + i, j, v);
    store_f64(k, 2 * n + i, j, h);
  }
}

KnStatus cg_lower_optimizer(CgKernel *k) {
  const KnNode *nd = k->node;
  int states = nd->op == KN_OP_Adam ? 2 : 1;
  OptStep s = {.op = nd->op, .n = (nd->n_inputs - 2) / (2 + states)};
  if (s.n < 1 || nd->n_inputs != 2 + s.n * (2 + states) || nd->n_outputs != s.n * (1 + states))
    return cg_unsupported(k, "inputs and outputs do not form whole parameter groups");
  for (int i = 2; i < nd->n_inputs; i++)
    if (!ir_dtype_is_float(cg_in_dtype(k, i)) || !cg_storage_type(k->m, cg_in_dtype(k, i))) return cg_unsupported(k, "dtype");
  s.decay = ir_attr_float(nd, "decay_factor", 0);
  s.eps = ir_attr_float(nd, "epsilon", 1e-6f);
  s.norm = ir_attr_float(nd, "norm_coefficient", 0);
  s.norm_post = ir_attr_float(nd, "norm_coefficient_post", 0);
  s.alpha = ir_attr_float(nd, "alpha", nd->op == KN_OP_Adam ? 0.9f : 0);
  s.beta = ir_attr_float(nd, "beta", nd->op == KN_OP_Adam ? 0.999f : 0);
  s.nesterov = strcmp(ir_attr_string(nd, "mode", "standard"), "nesterov") == 0;
  s.r = load_f64(k, 0, cg_i64(k, 0));
  s.t = load_f64(k, 1, cg_i64(k, 0));
  for (int i = 0; i < s.n; i++) {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cg_numel(cg_in_shape(k, 2 + i))));
    update(k, &s, i, l.i);
    cg_loop_end(k, &l);
  }
  return KN_OK;
}
