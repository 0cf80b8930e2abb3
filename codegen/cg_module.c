/* cg_module.c - the LLVM context, module and builder one compilation emits into. */
#include <string.h>

#include "codegen/cg.h"

KnStatus cg_module_init(CgModule *m, LLVMContextRef ctx, const char *name, KnError *err) {
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  if (!m->ctx) return kn_fail(err, KN_ERR_NOMEM, "cannot create an LLVM context");
  m->mod = LLVMModuleCreateWithNameInContext(name, m->ctx);
  m->b = LLVMCreateBuilderInContext(m->ctx);
  m->t_void = LLVMVoidTypeInContext(m->ctx);
  m->t_i1 = LLVMInt1TypeInContext(m->ctx);
  m->t_i8 = LLVMInt8TypeInContext(m->ctx);
  m->t_i16 = LLVMInt16TypeInContext(m->ctx);
  m->t_i32 = LLVMInt32TypeInContext(m->ctx);
  m->t_i64 = LLVMInt64TypeInContext(m->ctx);
  m->t_f16 = LLVMHalfTypeInContext(m->ctx);
  m->t_bf16 = LLVMBFloatTypeInContext(m->ctx);
  m->t_f32 = LLVMFloatTypeInContext(m->ctx);
  m->t_f64 = LLVMDoubleTypeInContext(m->ctx);
  m->t_ptr = LLVMPointerTypeInContext(m->ctx, 0);
  LLVMTypeRef body_args[3] = {m->t_ptr, m->t_i64, m->t_i64};
  m->t_kernel_body = LLVMFunctionType(m->t_void, body_args, 3, 0);
  return KN_OK;
}

void cg_module_dispose(CgModule *m) {
  if (m->b) LLVMDisposeBuilder(m->b);
  if (m->mod) LLVMDisposeModule(m->mod);
  memset(m, 0, sizeof *m);
}

void cg_set_noinline(CgModule *m, LLVMValueRef fn) {
  unsigned kind = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(m->ctx, kind, 0));
}

LLVMValueRef cg_extern_fn(CgModule *m, const char *name, LLVMTypeRef fn_type) {
  LLVMValueRef f = LLVMGetNamedFunction(m->mod, name);
  if (f) return f;
  f = LLVMAddFunction(m->mod, name, fn_type);
  LLVMSetLinkage(f, LLVMExternalLinkage);
  return f;
}
