/* lower_seq.h - small kernel-building helpers shared by the recurrent, resize, quantization,
 * signal and random lowerings (private to those files). */
#ifndef KILN_LOWER_SEQ_H
#define KILN_LOWER_SEQ_H

#include "codegen/cg.h"

/* A float constant of the same type as `like`. */
static inline LLVMValueRef seq_fc(LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

/* Marks a floating-point instruction as reassociable so reductions vectorize. */
static inline LLVMValueRef seq_reassoc(LLVMValueRef inst) {
  if (LLVMIsAInstruction(inst)) LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return inst;
}

/* malloc(nbytes) that fails the kernel with KN_ERR_NOMEM when it returns NULL. */
static inline LLVMValueRef seq_malloc(CgKernel *k, int64_t nbytes) {
  CgModule *m = k->m;
  LLVMTypeRef fty = LLVMFunctionType(m->t_ptr, &m->t_i64, 1, 0);
  LLVMValueRef n = cg_i64(k, nbytes > 0 ? nbytes : 1);
  LLVMValueRef p = LLVMBuildCall2(k->b, fty, cg_extern_fn(m, "malloc", fty), &n, 1, "");
  cg_fail_if(k, LLVMBuildIsNull(k->b, p, ""), KN_ERR_NOMEM, "out of memory for a work buffer", n);
  return p;
}

static inline void seq_free(CgKernel *k, LLVMValueRef p) {
  CgModule *m = k->m;
  LLVMTypeRef fty = LLVMFunctionType(m->t_void, &m->t_ptr, 1, 0);
  LLVMBuildCall2(k->b, fty, cg_extern_fn(m, "free", fty), &p, 1, "");
}

/* sum_{i<n} a[ao + i] * b[bo + i], the elements loaded as dtypes ta / tb and accumulated in the
 * float type acc_t (reassociable so it vectorizes). */
static inline LLVMValueRef seq_dot(CgKernel *k, LLVMTypeRef acc_t, LLVMValueRef a, KnDtype ta,
                                   LLVMValueRef ao, LLVMValueRef bp, KnDtype tb, LLVMValueRef bo,
                                   int64_t n) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef acc = cg_var(k, acc_t, LLVMConstReal(acc_t, 0.0));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  LLVMValueRef x = cg_load(k, a, ta, LLVMBuildAdd(b, ao, l.i, ""));
  LLVMValueRef y = cg_load(k, bp, tb, LLVMBuildAdd(b, bo, l.i, ""));
  if (LLVMTypeOf(x) != acc_t) x = LLVMBuildFPCast(b, x, acc_t, "");
  if (LLVMTypeOf(y) != acc_t) y = LLVMBuildFPCast(b, y, acc_t, "");
  LLVMValueRef prod = seq_reassoc(LLVMBuildFMul(b, x, y, ""));
  LLVMValueRef s = seq_reassoc(LLVMBuildFAdd(b, LLVMBuildLoad2(b, acc_t, acc, ""), prod, ""));
  LLVMBuildStore(b, s, acc);
  cg_loop_end(k, &l);
  return LLVMBuildLoad2(b, acc_t, acc, "");
}

/* The float dtype a float compute type is stored as in work buffers. */
static inline KnDtype seq_work_dtype(KnDtype t) { return t == KN_F64 ? KN_F64 : KN_F32; }

#endif
