/* lower_gelu.c - kiln.Gelu: x * Phi(x) elementwise (erf, or the tanh approximation), through the
 * straight-line erf/tanh of cg_vecmath so the loop vectorizes; also the GEMM epilogue's GELU. */
#include <string.h>

#include "codegen/cg.h"

LLVMValueRef cg_gelu(CgKernel *k, LLVMValueRef x, bool tanh_form) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef phi; /* 2 * Phi(x) - 1 */
  if (tanh_form) {
    LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
    LLVMValueRef u = LLVMBuildFAdd(b, x, LLVMBuildFMul(b, x3, LLVMConstReal(t, 0.044715), ""), "");
    phi = cg_libm(k, "tanh", LLVMBuildFMul(b, u, LLVMConstReal(t, 0.7978845608028654), "")); /* sqrt(2/pi) */
  } else {
    phi = cg_libm(k, "erf", LLVMBuildFMul(b, x, LLVMConstReal(t, 0.7071067811865476), "")); /* 1/sqrt(2) */
  }
  /* (0.5 x)(1 + phi) as the exported graphs compute it: x = -0 stays -0 (0.5x + 0.5x phi would give +0) */
  LLVMValueRef half_x = LLVMBuildFMul(b, x, LLVMConstReal(t, 0.5), "");
  return LLVMBuildFMul(b, half_x, LLVMBuildFAdd(b, LLVMConstReal(t, 1.0), phi, ""), "");
}

static LLVMValueRef gelu_expr(CgKernel *k, LLVMValueRef *vals, void *user) {
  return cg_gelu(k, vals[0], *(const bool *)user);
}

KnStatus cg_lower_gelu(CgKernel *k) {
  if (!ir_dtype_is_float(cg_in_dtype(k, 0))) return cg_unsupported(k, "non-float input");
  const char *approx = ir_attr_string(k->node, "approximate", "none");
  bool tanh_form = strcmp(approx, "tanh") == 0;
  if (!tanh_form && strcmp(approx, "none") != 0) return cg_unsupported(k, "approximate is not \"none\" or \"tanh\"");
  return cg_emit_elementwise(k, gelu_expr, &tanh_form);
}
