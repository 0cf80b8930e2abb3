/* lower_binary.c - two-or-more-input elementwise ops with numpy broadcasting: arithmetic, Pow,
 * Mod, BitShift, logic, comparisons, PRelu, variadic Max/Min/Mean/Sum, and Where. */
#include <math.h>
#include <string.h>

#include "codegen/cg.h"
#include "codegen/lower_fused_elementwise.h"

/* x^n for a small integer n != 0 by repeated squaring. f32 (and f16/bf16) bases multiply in
 * double, where every product is nearly exact, and round once at the end. */
static LLVMValueRef pow_int(CgKernel *k, LLVMValueRef x, int n) {
  LLVMBuilderRef b = k->b;
  bool widen = LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMFloatTypeKind;
  LLVMValueRef v = widen ? LLVMBuildFPExt(b, x, k->m->t_f64, "") : x;
  LLVMValueRef acc = NULL, sq = v;
  for (int m = n < 0 ? -n : n; m; m >>= 1) {
    if (m & 1) acc = acc ? LLVMBuildFMul(b, acc, sq, "") : sq;
    if (m > 1) sq = LLVMBuildFMul(b, sq, sq, "");
  }
  if (n < 0) acc = LLVMBuildFDiv(b, LLVMConstReal(LLVMTypeOf(v), 1.0), acc, "");
  return widen ? LLVMBuildFPTrunc(b, acc, LLVMTypeOf(x), "") : acc;
}

/* Pow with an exponent known at compile time (x^2 in LayerNorm): multiplications or sqrt instead
 * of a powf call per element, which keeps the loop scalar. NULL: no shortcut for this exponent. */
static LLVMValueRef pow_const(CgKernel *k, LLVMValueRef x, double y) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef t = LLVMTypeOf(x);
  if (y == 0) return LLVMConstReal(t, 1.0); /* also for NaN, as pow does */
  if (y == 1) return x;
  if (y == 2) return LLVMBuildFMul(b, x, x, "");
  if (y == -1) return LLVMBuildFDiv(b, LLVMConstReal(t, 1.0), x, "");
  if (y == 0.5) { /* pow(-0, .5) = +0 and pow(-inf, .5) = +inf, unlike sqrt */
    LLVMValueRef r = LLVMBuildFAdd(b, cg_intrinsic(k, "llvm.sqrt", &x, 1), LLVMConstReal(t, 0.0), "");
    LLVMValueRef minf = LLVMBuildFCmp(b, LLVMRealOEQ, x, LLVMConstReal(t, -INFINITY), "");
    return LLVMBuildSelect(b, minf, LLVMConstReal(t, INFINITY), r, "");
  }
  if (y == floor(y) && fabs(y) <= 8) return pow_int(k, x, (int)y);
  return NULL;
}

/* The exponent when it is a one-element constant (kernels are keyed on such constants). */
static bool pow_exponent(CgKernel *k, double *y) {
  const KnNode *n = k->node;
  /* an initializer that is also a graph input is only a default: a run may pass another value */
  const KnTensor *init = n->n_inputs > 1 && n->inputs[1] && !n->inputs[1]->is_input ? n->inputs[1]->init : NULL;
  if (!init || init->numel != 1 || init->list || init->dtype == KN_STRING) return false;
  *y = ir_tensor_get_double(init, 0);
  return true;
}

static LLVMValueRef pow_expr(CgKernel *k, LLVMValueRef x, LLVMValueRef y) {
  KnDtype tx = cg_in_dtype(k, 0), ty = cg_in_dtype(k, 1);
  double yc;
  if (ir_dtype_is_float(tx) && pow_exponent(k, &yc)) {
    LLVMValueRef r = pow_const(k, x, yc);
    if (r) return r;
  }
  /* Integer bases are computed in double and converted back, as numpy's power then astype. */
  KnDtype ct = tx == KN_F64 || ty == KN_F64 || !ir_dtype_is_float(tx) ? KN_F64 : KN_F32;
  LLVMValueRef xf = cg_convert(k, x, tx, ct), yf = cg_convert(k, y, ty, ct);
  LLVMValueRef args[2] = {xf, yf};
  return cg_convert(k, cg_intrinsic(k, "llvm.pow", args, 2), ct, tx);
}

static LLVMValueRef mod_expr(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef bl = k->b;
  bool fmod = ir_attr_int(k->node, "fmod", 0) != 0;
  if (ir_dtype_is_float(t)) return LLVMBuildFRem(bl, a, b, ""); /* fmod: sign of the dividend */
  LLVMValueRef zero = cg_const(k, t, 0);
  LLVMValueRef bad = LLVMBuildICmp(bl, LLVMIntEQ, b, zero, "");
  LLVMValueRef safe = cg_select(k, bad, cg_const(k, t, 1), b);
  if (!ir_dtype_is_signed(t)) return cg_select(k, bad, zero, LLVMBuildURem(bl, a, safe, ""));
  LLVMValueRef m1 = LLVMBuildICmp(bl, LLVMIntEQ, b, cg_const(k, t, -1), ""); /* INT_MIN % -1 traps */
  safe = cg_select(k, m1, cg_const(k, t, 1), safe);
  LLVMValueRef r = LLVMBuildSRem(bl, a, safe, "");
  if (!fmod) { /* Python's %: the result takes the divisor's sign */
    LLVMValueRef differ = LLVMBuildICmp(bl, LLVMIntSLT, LLVMBuildXor(bl, r, b, ""), zero, "");
    LLVMValueRef nonzero = LLVMBuildICmp(bl, LLVMIntNE, r, zero, "");
    r = cg_select(k, LLVMBuildAnd(bl, differ, nonzero, ""), LLVMBuildAdd(bl, r, b, ""), r);
  }
  return cg_select(k, bad, zero, r);
}

static LLVMValueRef shift_expr(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef bl = k->b;
  unsigned width = LLVMGetIntTypeWidth(LLVMTypeOf(a));
  LLVMValueRef too_far = LLVMBuildICmp(bl, LLVMIntUGE, b, LLVMConstInt(LLVMTypeOf(b), width, 0), "");
  bool left = strcmp(ir_attr_string(k->node, "direction", "LEFT"), "LEFT") == 0;
  LLVMValueRef safe = cg_select(k, too_far, LLVMConstInt(LLVMTypeOf(b), 0, 0), b);
  LLVMValueRef r = left ? LLVMBuildShl(bl, a, safe, "") : LLVMBuildLShr(bl, a, safe, "");
  return cg_select(k, too_far, cg_const(k, t, 0), r);
}

static LLVMValueRef binary_expr(CgKernel *k, LLVMValueRef *v, void *user) {
  KnDtype t = cg_in_dtype(k, 0);
  LLVMBuilderRef b = k->b;
  (void)user;
  switch (k->node->op) {
  case KN_OP_Add: return cg_add(k, t, v[0], v[1]);
  case KN_OP_Sub: return cg_sub(k, t, v[0], v[1]);
  case KN_OP_Mul: return cg_mul(k, t, v[0], v[1]);
  case KN_OP_Div: return cg_div(k, t, v[0], v[1]);
  case KN_OP_Pow: return pow_expr(k, v[0], v[1]);
  case KN_OP_Mod: return mod_expr(k, t, v[0], v[1]);
  case KN_OP_BitShift: return shift_expr(k, t, v[0], v[1]);
  case KN_OP_And: return LLVMBuildAnd(b, v[0], v[1], "");
  case KN_OP_Or: return LLVMBuildOr(b, v[0], v[1], "");
  case KN_OP_Xor: return LLVMBuildXor(b, v[0], v[1], "");
  case KN_OP_Equal: return cg_cmp(k, t, "eq", v[0], v[1]);
  case KN_OP_Greater: return cg_cmp(k, t, "gt", v[0], v[1]);
  case KN_OP_GreaterOrEqual: return cg_cmp(k, t, "ge", v[0], v[1]);
  case KN_OP_Less: return cg_cmp(k, t, "lt", v[0], v[1]);
  case KN_OP_LessOrEqual: return cg_cmp(k, t, "le", v[0], v[1]);
  case KN_OP_PRelu:
    return cg_select(k, cg_cmp(k, t, "lt", v[0], cg_const(k, t, 0)), cg_mul(k, t, v[0], v[1]), v[0]);
  default: return NULL;
  }
}

/* kiln.FusedElementwise's binary steps: the same expression, k->node standing for the step. */
LLVMValueRef cg_binary_value(CgKernel *k, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef v[2] = {a, b};
  return binary_expr(k, v, NULL);
}

KnStatus cg_lower_binary(CgKernel *k) {
  KnDtype t = cg_in_dtype(k, 0);
  KnOp op = k->node->op;
  if (t == KN_STRING || !cg_storage_type(k->m, t)) return cg_unsupported(k, "dtype");
  bool logic = op == KN_OP_And || op == KN_OP_Or || op == KN_OP_Xor;
  if (logic != (t == KN_BOOL) && !(t == KN_BOOL && op == KN_OP_Equal))
    return cg_unsupported(k, "dtype");
  if (op == KN_OP_BitShift && (ir_dtype_is_float(t) || ir_dtype_is_signed(t)))
    return cg_unsupported(k, "BitShift is defined on unsigned integers");
  if (op == KN_OP_Pow && !cg_storage_type(k->m, cg_in_dtype(k, 1))) return cg_unsupported(k, "exponent dtype");
  return cg_emit_elementwise(k, binary_expr, NULL);
}

static LLVMValueRef variadic_expr(CgKernel *k, LLVMValueRef *v, void *user) {
  int n = *(const int *)user;
  KnDtype t = cg_in_dtype(k, 0);
  LLVMValueRef acc = v[0];
  for (int i = 1; i < n; i++) {
    switch (k->node->op) {
    case KN_OP_Max: acc = cg_max(k, t, acc, v[i]); break;
    case KN_OP_Min: acc = cg_min(k, t, acc, v[i]); break;
    default: acc = cg_add(k, t, acc, v[i]); break; /* Sum, Mean */
    }
  }
  if (k->node->op == KN_OP_Mean) acc = cg_div(k, t, acc, cg_const(k, t, n));
  return acc;
}

KnStatus cg_lower_variadic(CgKernel *k) {
  KnDtype t = cg_in_dtype(k, 0);
  if (t == KN_STRING || t == KN_BOOL || !cg_storage_type(k->m, t)) return cg_unsupported(k, "dtype");
  int n = 0;
  for (int i = 0; i < k->node->n_inputs; i++) n += k->node->inputs[i] != NULL;
  return cg_emit_elementwise(k, variadic_expr, &n);
}

static LLVMValueRef where_expr(CgKernel *k, LLVMValueRef *v, void *user) {
  (void)user;
  return cg_select(k, v[0], v[1], v[2]);
}

KnStatus cg_lower_where(CgKernel *k) {
  KnDtype t = cg_in_dtype(k, 1);
  if (t == KN_STRING || !cg_storage_type(k->m, t)) return cg_unsupported(k, "dtype");
  return cg_emit_elementwise(k, where_expr, NULL);
}
