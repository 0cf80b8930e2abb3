/* cg_math.c - scalar arithmetic on compute values, dispatched on dtype, and calls into libm and
 * LLVM intrinsics. Integer division never traps: x/0 gives 0, as kiln's documented choice. f32
 * exp/log/erf/tanh become inline IR (cg_vecmath.c) so the loops around them vectorize. */
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"
#include "codegen/cg_vecmath.h"

static bool is_double(LLVMValueRef x) { return LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMDoubleTypeKind; }

LLVMValueRef cg_libm(CgKernel *k, const char *name, LLVMValueRef x) {
  if (cg_vm_is_f32(x)) {
    if (strcmp(name, "exp") == 0) return cg_vm_exp(k, x);
    if (strcmp(name, "log") == 0) return cg_vm_log(k, x);
    if (strcmp(name, "erf") == 0) return cg_vm_erf(k, x);
    if (strcmp(name, "tanh") == 0) return cg_vm_tanh(k, x);
  }
  char full[32];
  snprintf(full, sizeof full, "%s%s", name, is_double(x) ? "" : "f");
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMTypeRef fty = LLVMFunctionType(t, &t, 1, 0);
  return LLVMBuildCall2(k->b, fty, cg_extern_fn(k->m, full, fty), &x, 1, "");
}

LLVMValueRef cg_libm2(CgKernel *k, const char *name, LLVMValueRef x, LLVMValueRef y) {
  char full[32];
  snprintf(full, sizeof full, "%s%s", name, is_double(x) ? "" : "f");
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMTypeRef args[2] = {t, t};
  LLVMTypeRef fty = LLVMFunctionType(t, args, 2, 0);
  LLVMValueRef a[2] = {x, y};
  return LLVMBuildCall2(k->b, fty, cg_extern_fn(k->m, full, fty), a, 2, "");
}

LLVMValueRef cg_intrinsic(CgKernel *k, const char *name, LLVMValueRef *args, int n) {
  if (n == 1 && cg_vm_is_f32(args[0])) { /* LLVM would lower these to expf/logf calls */
    if (strcmp(name, "llvm.exp") == 0) return cg_vm_exp(k, args[0]);
    if (strcmp(name, "llvm.log") == 0) return cg_vm_log(k, args[0]);
  }
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef t = LLVMTypeOf(args[0]);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, &t, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(k->m->ctx, id, &t, 1);
  return LLVMBuildCall2(k->b, fty, fn, args, (unsigned)n, "");
}

LLVMValueRef cg_add(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  return ir_dtype_is_float(t) ? LLVMBuildFAdd(k->b, a, b, "") : LLVMBuildAdd(k->b, a, b, "");
}

LLVMValueRef cg_sub(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  return ir_dtype_is_float(t) ? LLVMBuildFSub(k->b, a, b, "") : LLVMBuildSub(k->b, a, b, "");
}

LLVMValueRef cg_mul(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  return ir_dtype_is_float(t) ? LLVMBuildFMul(k->b, a, b, "") : LLVMBuildMul(k->b, a, b, "");
}

LLVMValueRef cg_div(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  if (ir_dtype_is_float(t)) return LLVMBuildFDiv(k->b, a, b, "");
  LLVMTypeRef ty = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstInt(ty, 0, 0), one = LLVMConstInt(ty, 1, 0);
  LLVMValueRef bad = LLVMBuildICmp(k->b, LLVMIntEQ, b, zero, "");
  if (ir_dtype_is_signed(t)) { /* INT_MIN / -1 traps on x86 too */
    LLVMValueRef minus1 = LLVMConstAllOnes(ty);
    bad = LLVMBuildOr(k->b, bad, LLVMBuildICmp(k->b, LLVMIntEQ, b, minus1, ""), "");
    LLVMValueRef safe = LLVMBuildSelect(k->b, bad, one, b, "");
    LLVMValueRef q = LLVMBuildSDiv(k->b, a, safe, "");
    LLVMValueRef neg = LLVMBuildSub(k->b, zero, a, ""); /* a / -1 = -a (wrapping) */
    LLVMValueRef is_m1 = LLVMBuildICmp(k->b, LLVMIntEQ, b, minus1, "");
    return LLVMBuildSelect(k->b, is_m1, neg, LLVMBuildSelect(k->b, bad, zero, q, ""), "");
  }
  LLVMValueRef safe = LLVMBuildSelect(k->b, bad, one, b, "");
  return LLVMBuildSelect(k->b, bad, zero, LLVMBuildUDiv(k->b, a, safe, ""), "");
}

LLVMValueRef cg_min(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  if (ir_dtype_is_float(t)) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, "llvm.minimum", args, 2);
  }
  return LLVMBuildSelect(k->b, cg_cmp(k, t, "lt", a, b), a, b, "");
}

LLVMValueRef cg_max(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  if (ir_dtype_is_float(t)) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, "llvm.maximum", args, 2);
  }
  return LLVMBuildSelect(k->b, cg_cmp(k, t, "gt", a, b), a, b, "");
}

LLVMValueRef cg_cmp(CgKernel *k, KnDtype t, const char *pred, LLVMValueRef a, LLVMValueRef b) {
  static const struct { const char *name; LLVMRealPredicate f; LLVMIntPredicate s, u; } preds[] = {
      {"eq", LLVMRealOEQ, LLVMIntEQ, LLVMIntEQ},   {"ne", LLVMRealUNE, LLVMIntNE, LLVMIntNE},
      {"lt", LLVMRealOLT, LLVMIntSLT, LLVMIntULT}, {"le", LLVMRealOLE, LLVMIntSLE, LLVMIntULE},
      {"gt", LLVMRealOGT, LLVMIntSGT, LLVMIntUGT}, {"ge", LLVMRealOGE, LLVMIntSGE, LLVMIntUGE},
  };
  for (size_t i = 0; i < sizeof preds / sizeof preds[0]; i++) {
    if (strcmp(pred, preds[i].name) != 0) continue;
    if (ir_dtype_is_float(t)) return LLVMBuildFCmp(k->b, preds[i].f, a, b, "");
    bool is_signed = t != KN_BOOL && ir_dtype_is_signed(t);
    return LLVMBuildICmp(k->b, is_signed ? preds[i].s : preds[i].u, a, b, "");
  }
  return NULL; /* a kiln bug: callers pass one of the names above */
}

LLVMValueRef cg_select(CgKernel *k, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(k->b, cond, a, b, "");
}
