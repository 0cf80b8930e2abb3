/* lower_unary.c - one-input elementwise ops (math, activations, IsNaN/IsInf, Not), Cast and Clip:
 * each is a scalar expression handed to the generic elementwise loop. */
#include <math.h>

#include "codegen/cg.h"
#include "codegen/cg_vecmath.h"
#include "codegen/lower_fused_elementwise.h"

static LLVMValueRef fconst(CgKernel *k, LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

static LLVMValueRef float_intrinsic1(CgKernel *k, const char *name, LLVMValueRef x) {
  return cg_intrinsic(k, name, &x, 1);
}

static LLVMValueRef exp_of(CgKernel *k, LLVMValueRef x) { return float_intrinsic1(k, "llvm.exp", x); }

/* exp(x) - 1: f32 without the cancellation near 0; f64 keeps exp - 1 as before. */
static LLVMValueRef expm1_of(CgKernel *k, LLVMValueRef x) {
  if (cg_vm_is_f32(x)) return cg_vm_expm1(k, x);
  return LLVMBuildFSub(k->b, exp_of(k, x), LLVMConstReal(LLVMTypeOf(x), 1.0), "");
}

/* Activations with attributes; x is a float compute value. */
static LLVMValueRef activation(CgKernel *k, KnOp op, LLVMValueRef x) {
  LLVMBuilderRef b = k->b;
  const KnNode *n = k->node;
  LLVMValueRef zero = fconst(k, x, 0.0), one = fconst(k, x, 1.0);
  switch (op) {
  case KN_OP_Sigmoid:
    if (cg_vm_is_f32(x)) return cg_vm_sigmoid(k, x);
    return LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, exp_of(k, LLVMBuildFNeg(b, x, "")), ""), "");
  case KN_OP_Softplus:
    if (cg_vm_is_f32(x)) return cg_vm_softplus(k, x);
    return float_intrinsic1(k, "llvm.log", LLVMBuildFAdd(b, exp_of(k, x), one, ""));
  case KN_OP_Softsign:
    return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, one, float_intrinsic1(k, "llvm.fabs", x), ""), "");
  case KN_OP_Elu: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 1.0f));
    LLVMValueRef neg = LLVMBuildFMul(b, alpha, expm1_of(k, x), "");
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), neg, x);
  }
  case KN_OP_Selu: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 1.67326319217681884765625f));
    LLVMValueRef gamma = fconst(k, x, ir_attr_float(n, "gamma", 1.05070102214813232421875f));
    LLVMValueRef neg = LLVMBuildFMul(b, alpha, expm1_of(k, x), ""); /* alpha e^x - alpha */
    LLVMValueRef v = cg_select(k, LLVMBuildFCmp(b, LLVMRealOLE, x, zero, ""), neg, x);
    return LLVMBuildFMul(b, gamma, v, "");
  }
  case KN_OP_Celu: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 1.0f));
    LLVMValueRef e = expm1_of(k, LLVMBuildFDiv(b, x, alpha, ""));
    LLVMValueRef pos = cg_max(k, KN_F32, zero, x);
    return LLVMBuildFAdd(b, pos, cg_min(k, KN_F32, zero, LLVMBuildFMul(b, alpha, e, "")), "");
  }
  case KN_OP_LeakyRelu: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 0.01f));
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), LLVMBuildFMul(b, alpha, x, ""), x);
  }
  case KN_OP_HardSigmoid: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 0.2f));
    LLVMValueRef beta = fconst(k, x, ir_attr_float(n, "beta", 0.5f));
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, alpha, x, ""), beta, "");
    return cg_max(k, KN_F32, zero, cg_min(k, KN_F32, one, v));
  }
  case KN_OP_HardSwish: {
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFDiv(b, x, fconst(k, x, 6.0), ""), fconst(k, x, 0.5), "");
    return LLVMBuildFMul(b, x, cg_max(k, KN_F32, zero, cg_min(k, KN_F32, one, v)), "");
  }
  case KN_OP_ThresholdedRelu: {
    LLVMValueRef alpha = fconst(k, x, ir_attr_float(n, "alpha", 1.0f));
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, x, alpha, ""), x, zero);
  }
  default: return NULL;
  }
}

/* Math functions of one float. */
static LLVMValueRef float_math(CgKernel *k, KnOp op, LLVMValueRef x) {
  LLVMBuilderRef b = k->b;
  switch (op) {
  case KN_OP_Acos: return cg_libm(k, "acos", x);
  case KN_OP_Acosh: return cg_libm(k, "acosh", x);
  case KN_OP_Asin: return cg_libm(k, "asin", x);
  case KN_OP_Asinh: return cg_libm(k, "asinh", x);
  case KN_OP_Atan: return cg_libm(k, "atan", x);
  case KN_OP_Atanh: return cg_libm(k, "atanh", x);
  case KN_OP_Cos: return float_intrinsic1(k, "llvm.cos", x);
  case KN_OP_Cosh: return cg_libm(k, "cosh", x);
  case KN_OP_Sin: return float_intrinsic1(k, "llvm.sin", x);
  case KN_OP_Sinh: return cg_libm(k, "sinh", x);
  case KN_OP_Tan: return cg_libm(k, "tan", x);
  case KN_OP_Tanh: return cg_libm(k, "tanh", x);
  case KN_OP_Erf: return cg_libm(k, "erf", x);
  case KN_OP_Exp: return exp_of(k, x);
  case KN_OP_Log: return float_intrinsic1(k, "llvm.log", x);
  case KN_OP_Sqrt: return float_intrinsic1(k, "llvm.sqrt", x);
  case KN_OP_Ceil: return float_intrinsic1(k, "llvm.ceil", x);
  case KN_OP_Floor: return float_intrinsic1(k, "llvm.floor", x);
  case KN_OP_Round: return float_intrinsic1(k, "llvm.roundeven", x);
  case KN_OP_Reciprocal: return LLVMBuildFDiv(b, fconst(k, x, 1.0), x, "");
  default: return activation(k, op, x);
  }
}

/* Ops defined on every numeric type. */
static LLVMValueRef numeric(CgKernel *k, KnOp op, KnDtype t, LLVMValueRef x) {
  LLVMBuilderRef b = k->b;
  bool fl = ir_dtype_is_float(t);
  LLVMValueRef zero = cg_const(k, t, 0);
  switch (op) {
  case KN_OP_Abs:
    if (fl) return float_intrinsic1(k, "llvm.fabs", x);
    if (!ir_dtype_is_signed(t)) return x;
    return cg_select(k, cg_cmp(k, t, "lt", x, zero), LLVMBuildNeg(b, x, ""), x);
  case KN_OP_Neg: return fl ? LLVMBuildFNeg(b, x, "") : LLVMBuildNeg(b, x, "");
  case KN_OP_Relu: return cg_select(k, cg_cmp(k, t, "lt", x, zero), zero, x);
  case KN_OP_Sign: {
    LLVMValueRef pos = cg_select(k, cg_cmp(k, t, "gt", x, zero), cg_const(k, t, 1), zero);
    LLVMValueRef v = ir_dtype_is_signed(t) || fl ? cg_select(k, cg_cmp(k, t, "lt", x, zero), cg_const(k, t, -1), pos) : pos;
    return fl ? cg_select(k, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, v) : v;
  }
  case KN_OP_Shrink: {
    double lambd = ir_attr_float(k->node, "lambd", 0.5f), bias = ir_attr_float(k->node, "bias", 0.0f);
    LLVMValueRef lo = cg_cmp(k, t, "lt", x, cg_const(k, t, -lambd));
    LLVMValueRef hi = cg_cmp(k, t, "gt", x, cg_const(k, t, lambd));
    LLVMValueRef r = cg_select(k, hi, cg_sub(k, t, x, cg_const(k, t, bias)), zero);
    return cg_select(k, lo, cg_add(k, t, x, cg_const(k, t, bias)), r);
  }
  default: return NULL;
  }
}

static LLVMValueRef unary_expr(CgKernel *k, LLVMValueRef *vals, void *user) {
  const KnNode *n = k->node;
  KnDtype t = cg_in_dtype(k, 0);
  LLVMValueRef x = vals[0];
  LLVMBuilderRef b = k->b;
  (void)user;
  switch (n->op) {
  case KN_OP_Not: return LLVMBuildNot(b, x, "");
  case KN_OP_IsNaN: return LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
  case KN_OP_IsInf: {
    LLVMValueRef inf = fconst(k, x, INFINITY);
    LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOEQ, x, inf, "");
    LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOEQ, x, LLVMBuildFNeg(b, inf, ""), "");
    LLVMValueRef no = LLVMConstInt(k->m->t_i1, 0, 0);
    if (!ir_attr_int(n, "detect_positive", 1)) pos = no;
    if (!ir_attr_int(n, "detect_negative", 1)) neg = no;
    return LLVMBuildOr(b, pos, neg, "");
  }
  default: break;
  }
  LLVMValueRef r = numeric(k, n->op, t, x);
  if (!r && ir_dtype_is_float(t)) r = float_math(k, n->op, x);
  return r;
}

/* kiln.FusedElementwise's unary steps: the same expression, k->node standing for the step. */
LLVMValueRef cg_unary_value(CgKernel *k, LLVMValueRef x) { return unary_expr(k, &x, NULL); }

KnStatus cg_lower_unary(CgKernel *k) {
  KnDtype t = cg_in_dtype(k, 0);
  KnOp op = k->node->op;
  bool ok = ir_dtype_is_float(t) || op == KN_OP_Abs || op == KN_OP_Neg || op == KN_OP_Relu ||
            op == KN_OP_Sign || op == KN_OP_Shrink || (op == KN_OP_Not && t == KN_BOOL);
  if (!ok || t == KN_STRING || !cg_storage_type(k->m, t)) return cg_unsupported(k, "dtype");
  return cg_emit_elementwise(k, unary_expr, NULL);
}

/* ---- Cast, CastLike ---- */
static LLVMValueRef cast_expr(CgKernel *k, LLVMValueRef *vals, void *user) {
  (void)user;
  return cg_convert(k, vals[0], cg_in_dtype(k, 0), cg_out_dtype(k, 0));
}

KnStatus cg_lower_cast(CgKernel *k) {
  KnDtype from = cg_in_dtype(k, 0), to = cg_out_dtype(k, 0);
  if (!cg_storage_type(k->m, from) || !cg_storage_type(k->m, to))
    return cg_unsupported(k, "cast between these dtypes (strings, float8 and 4-bit types are not compiled)");
  if (k->node->op == KN_OP_CastLike) { /* the second input gives only the dtype */
    const KnNode *n = k->node;
    KnValue *keep = n->inputs[1];
    n->inputs[1] = NULL;
    KnStatus st = cg_emit_elementwise(k, cast_expr, NULL);
    n->inputs[1] = keep;
    return st;
  }
  return cg_emit_elementwise(k, cast_expr, NULL);
}

/* ---- Clip: bounds from inputs 1 and 2 (opset 11+) or attributes min/max (older) ---- */
typedef struct ClipBounds {
  int lo_operand, hi_operand; /* operand index of the bound, or -1 */
  double lo, hi;              /* attribute bounds when no operand */
  bool has_lo, has_hi;
} ClipBounds;

static LLVMValueRef clip_expr(CgKernel *k, LLVMValueRef *vals, void *user) {
  const ClipBounds *c = user;
  KnDtype t = cg_in_dtype(k, 0);
  LLVMValueRef x = vals[0];
  if (c->has_lo) {
    LLVMValueRef lo = c->lo_operand >= 0 ? vals[c->lo_operand] : cg_const(k, t, c->lo);
    x = cg_select(k, cg_cmp(k, t, "lt", x, lo), lo, x);
  }
  if (c->has_hi) {
    LLVMValueRef hi = c->hi_operand >= 0 ? vals[c->hi_operand] : cg_const(k, t, c->hi);
    x = cg_select(k, cg_cmp(k, t, "gt", x, hi), hi, x);
  }
  return x;
}

KnStatus cg_lower_clip(CgKernel *k) {
  const KnNode *n = k->node;
  KnDtype t = cg_in_dtype(k, 0);
  if (!cg_storage_type(k->m, t) || t == KN_BOOL) return cg_unsupported(k, "dtype");
  ClipBounds c = {-1, -1, 0, 0, false, false};
  if (n->opset < 11) {
    c.has_lo = ir_attr(n, "min") != NULL;
    c.has_hi = ir_attr(n, "max") != NULL;
    c.lo = ir_attr_float(n, "min", 0);
    c.hi = ir_attr_float(n, "max", 0);
  } else {
    int operand = 1;
    if (n->n_inputs > 1 && n->inputs[1]) c.has_lo = true, c.lo_operand = operand++;
    if (n->n_inputs > 2 && n->inputs[2]) c.has_hi = true, c.hi_operand = operand;
  }
  return cg_emit_elementwise(k, clip_expr, &c);
}
