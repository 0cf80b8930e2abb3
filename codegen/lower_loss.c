/* lower_loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over scores [N, C, d..]
 * and class targets [N, d..], with optional class weights, ignore_index and a none/sum/mean
 * reduction (mean divides by the total weight of the targets that count). */
#include <math.h>
#include <string.h>

#include "codegen/cg.h"

typedef struct LossCfg {
  bool sce;             /* SoftmaxCrossEntropyLoss: log-softmax over C first */
  int64_t n, c, d;      /* scores viewed as [n, c, d] */
  bool has_ii, has_w;
  int64_t ii;           /* ignore_index */
  KnDtype t, tt, acc;   /* scores, target and compute dtypes */
} LossCfg;

/* log(sum(exp(x))) over the classes of the element at score offset base (class stride d), and
 * the log-probabilities into output 1 when it is wanted. */
static LLVMValueRef log_sum_exp(CgKernel *k, const LossCfg *g, LLVMValueRef base) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef at = cg_compute_type(k->m, g->acc);
  LLVMValueRef mx = cg_var(k, at, cg_const(k, g->acc, -INFINITY)), sum = cg_var(k, at, cg_const(k, g->acc, 0));
  for (int pass = 0; pass < 3; pass++) {
    if (pass == 2 && (k->node->n_outputs < 2 || !k->out[1])) break;
    LLVMValueRef m = LLVMBuildLoad2(b, at, mx, ""), lse = NULL;
    if (pass == 2) lse = LLVMBuildFAdd(b, m, cg_intrinsic(k, "llvm.log", (LLVMValueRef[]){LLVMBuildLoad2(b, at, sum, "")}, 1), "");
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, g->c));
    LLVMValueRef off = LLVMBuildAdd(b, base, LLVMBuildMul(b, l.i, cg_i64(k, g->d), ""), "");
    LLVMValueRef x = cg_convert(k, cg_load(k, k->in[0], g->t, off), g->t, g->acc);
    if (pass == 0) {
      LLVMBuildStore(b, cg_max(k, g->acc, LLVMBuildLoad2(b, at, mx, ""), x), mx);
    } else if (pass == 1) {
      LLVMValueRef e = cg_intrinsic(k, "llvm.exp", (LLVMValueRef[]){LLVMBuildFSub(b, x, m, "")}, 1);
      LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, at, sum, ""), e, ""), sum);
    } else {
      cg_store(k, k->out[1], cg_out_dtype(k, 1), off, cg_convert(k, LLVMBuildFSub(b, x, lse, ""), g->acc, cg_out_dtype(k, 1)));
    }
    cg_loop_end(k, &l);
  }
  LLVMValueRef s = LLVMBuildLoad2(b, at, sum, "");
  return LLVMBuildFAdd(b, LLVMBuildLoad2(b, at, mx, ""), cg_intrinsic(k, "llvm.log", &s, 1), "");
}

/* The loss and effective weight (0 when ignored) of target element (nn, dd). */
static void loss_at(CgKernel *k, const LossCfg *g, LLVMValueRef nn, LLVMValueRef dd,
                    LLVMValueRef *loss, LLVMValueRef *weight) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef toff = LLVMBuildAdd(b, LLVMBuildMul(b, nn, cg_i64(k, g->d), ""), dd, "");
  LLVMValueRef base = LLVMBuildAdd(b, LLVMBuildMul(b, nn, cg_i64(k, g->c * g->d), ""), dd, "");
  LLVMValueRef tgt = cg_convert(k, cg_load(k, k->in[1], g->tt, toff), g->tt, KN_I64);
  LLVMValueRef lse = g->sce ? log_sum_exp(k, g, base) : NULL;
  LLVMValueRef ignored = LLVMConstInt(k->m->t_i1, 0, 0);
  if (g->has_ii) ignored = LLVMBuildICmp(b, LLVMIntEQ, tgt, cg_i64(k, g->ii), "");
  LLVMValueRef out = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, tgt, cg_i64(k, 0), ""),
                                 LLVMBuildICmp(b, LLVMIntSGE, tgt, cg_i64(k, g->c), ""), "");
  cg_fail_if(k, LLVMBuildAnd(b, out, LLVMBuildNot(b, ignored, ""), ""), KN_ERR_INVALID,
             "target class out of range", tgt);
  LLVMValueRef safe = cg_select(k, ignored, cg_i64(k, 0), tgt);
  LLVMValueRef x = cg_load(k, k->in[0], g->t, LLVMBuildAdd(b, base, LLVMBuildMul(b, safe, cg_i64(k, g->d), ""), ""));
  x = cg_convert(k, x, g->t, g->acc);
  if (lse) x = LLVMBuildFSub(b, x, lse, "");
  LLVMValueRef w = cg_const(k, g->acc, 1);
  if (g->has_w) w = cg_convert(k, cg_load(k, k->in[2], cg_in_dtype(k, 2), safe), cg_in_dtype(k, 2), g->acc);
  LLVMValueRef zero = cg_const(k, g->acc, 0);
  *weight = cg_select(k, ignored, zero, w);
  *loss = cg_select(k, ignored, zero, LLVMBuildFNeg(b, LLVMBuildFMul(b, x, w, ""), ""));
}

/* reduction none: item i is target element (i / d, i % d). */
static void none_body(CgKernel *k, LLVMValueRef i, void *user) {
  const LossCfg *g = user;
  LLVMValueRef nn = LLVMBuildUDiv(k->b, i, cg_i64(k, g->d), ""), dd = LLVMBuildURem(k->b, i, cg_i64(k, g->d), "");
  LLVMValueRef loss, w;
  loss_at(k, g, nn, dd, &loss, &w);
  cg_store(k, k->out[0], cg_out_dtype(k, 0), i, cg_convert(k, loss, g->acc, cg_out_dtype(k, 0)));
}

/* reduction sum or mean: one pass summing losses and weights in f64. */
static void emit_total(CgKernel *k, const LossCfg *g, bool mean) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  LLVMValueRef ls = cg_var(k, f64, LLVMConstReal(f64, 0)), ws = cg_var(k, f64, LLVMConstReal(f64, 0));
  CgLoop ln = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, g->n));
  CgLoop ld = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, g->d));
  LLVMValueRef loss, w;
  loss_at(k, g, ln.i, ld.i, &loss, &w);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, f64, ls, ""), cg_convert(k, loss, g->acc, KN_F64), ""), ls);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, f64, ws, ""), cg_convert(k, w, g->acc, KN_F64), ""), ws);
  cg_loop_end(k, &ld);
  cg_loop_end(k, &ln);
  LLVMValueRef r = LLVMBuildLoad2(b, f64, ls, "");
  if (mean) r = LLVMBuildFDiv(b, r, LLVMBuildLoad2(b, f64, ws, ""), "");
  cg_store(k, k->out[0], cg_out_dtype(k, 0), cg_i64(k, 0), cg_convert(k, r, KN_F64, cg_out_dtype(k, 0)));
}

static KnStatus emit_loss(CgKernel *k, bool sce) {
  const KnNode *node = k->node;
  const KnShape *s = cg_in_shape(k, 0);
  LossCfg g = {.sce = sce, .t = cg_in_dtype(k, 0), .tt = cg_in_dtype(k, 1)};
  if (!ir_dtype_is_float(g.t)) return cg_unsupported(k, "non-float scores");
  if (!ir_dtype_is_int(g.tt)) return cg_unsupported(k, "non-integer target");
  if (s->rank < 2) return cg_unsupported(k, "scores of rank < 2");
  g.acc = g.t == KN_F64 ? KN_F64 : KN_F32;
  g.n = s->dims[0].value;
  g.c = s->dims[1].value;
  g.d = 1;
  for (int i = 2; i < s->rank; i++) g.d *= s->dims[i].value;
  g.has_w = node->n_inputs > 2 && k->in[2];
  g.has_ii = ir_attr(node, "ignore_index") != NULL;
  g.ii = ir_attr_int(node, "ignore_index", 0);
  const char *red = ir_attr_string(node, "reduction", "mean");
  if (!strcmp(red, "none")) {
    int64_t per = g.sce ? 3 * g.c : 1; /* work per target element */
    cg_parallel_for(k, g.n * g.d, per >= 4096 ? 1 : 4096 / per, none_body, &g);
    return KN_OK;
  }
  if (strcmp(red, "sum") && strcmp(red, "mean")) return cg_unsupported(k, "unknown reduction");
  emit_total(k, &g, red[0] == 'm');
  return KN_OK;
}

KnStatus cg_lower_nll_loss(CgKernel *k) { return emit_loss(k, false); }

KnStatus cg_lower_softmax_ce_loss(CgKernel *k) { return emit_loss(k, true); }
