/* cg_vecmath.h - f32 transcendental functions emitted as straight-line LLVM IR (range reduction
 * plus polynomials, no calls, no tables), so elementwise loops that use them still vectorize. */
#ifndef KILN_CG_VECMATH_H
#define KILN_CG_VECMATH_H

#include "codegen/cg.h"

/* Whether x is an f32 value or a fixed vector of f32: the only type these functions take. Other
 * float types keep libm (f16/bf16 are computed in f32, so they get these too). */
bool cg_vm_is_f32(LLVMValueRef x);

/* Each is accurate to about 1-2 ulp over the whole f32 range, with IEEE special values
 * (NaN -> NaN, exp overflow -> inf and underflow -> 0 through denormals, log(0) = -inf,
 * log(x < 0) = NaN, erf/tanh(+-inf) = +-1, odd functions keep the sign of zero). */
LLVMValueRef cg_vm_exp(CgKernel *k, LLVMValueRef x);
LLVMValueRef cg_vm_expm1(CgKernel *k, LLVMValueRef x); /* exp(x) - 1 without cancellation near 0 */
LLVMValueRef cg_vm_log(CgKernel *k, LLVMValueRef x);
LLVMValueRef cg_vm_log1p(CgKernel *k, LLVMValueRef x); /* log(1 + x), for x >= 0 or x near 0 */
LLVMValueRef cg_vm_erf(CgKernel *k, LLVMValueRef x);
LLVMValueRef cg_vm_tanh(CgKernel *k, LLVMValueRef x);
LLVMValueRef cg_vm_sigmoid(CgKernel *k, LLVMValueRef x);  /* 1 / (1 + exp(-x)), exact tails */
LLVMValueRef cg_vm_softplus(CgKernel *k, LLVMValueRef x); /* log(1 + exp(x)) without overflow */

#endif
