/* cg_kernel.c - building one kernel function: its signature, typed loads and stores, casts,
 * loops, branches, run-time failure exits and parallel loops. */
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"

/* ---- types and constants ------------------------------------------------------------------ */
LLVMTypeRef cg_storage_type(CgModule *m, KnDtype t) {
  switch (t) {
  case KN_BOOL: case KN_I8: case KN_U8: return m->t_i8;
  case KN_I16: case KN_U16: case KN_BF16: return m->t_i16; /* bf16: bits, see cg_load */
  case KN_I32: case KN_U32: return m->t_i32;
  case KN_I64: case KN_U64: return m->t_i64;
  case KN_F16: return m->t_f16;
  case KN_F32: return m->t_f32;
  case KN_F64: return m->t_f64;
  default: return NULL;
  }
}

LLVMTypeRef cg_compute_type(CgModule *m, KnDtype t) {
  switch (t) {
  case KN_BOOL: return m->t_i1;
  case KN_F16: case KN_BF16: return m->t_f32;
  default: return cg_storage_type(m, t);
  }
}

LLVMValueRef cg_i64(CgKernel *k, int64_t v) { return LLVMConstInt(k->m->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(CgKernel *k, int32_t v) { return LLVMConstInt(k->m->t_i32, (unsigned long long)(int64_t)v, 1); }

LLVMValueRef cg_const(CgKernel *k, KnDtype t, double v) {
  LLVMTypeRef ty = cg_compute_type(k->m, t);
  if (ir_dtype_is_float(t)) return LLVMConstReal(ty, v);
  if (t == KN_BOOL) return LLVMConstInt(ty, v != 0, 0);
  if (!ir_dtype_is_signed(t) && v >= 9223372036854775808.0)
    return LLVMConstInt(ty, (unsigned long long)v, 0);
  return LLVMConstInt(ty, (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef cg_const_int(CgKernel *k, KnDtype t, int64_t v) {
  if (ir_dtype_is_float(t)) return LLVMConstReal(cg_compute_type(k->m, t), (double)v);
  if (t == KN_BOOL) return LLVMConstInt(k->m->t_i1, v != 0, 0);
  return LLVMConstInt(cg_compute_type(k->m, t), (unsigned long long)v, 1);
}

/* ---- memory ------------------------------------------------------------------------------- */
LLVMValueRef cg_elem_ptr(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx) {
  LLVMTypeRef st = cg_storage_type(k->m, t);
  return LLVMBuildInBoundsGEP2(k->b, st, base, &idx, 1, "");
}

LLVMValueRef cg_load(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef v = LLVMBuildLoad2(b, cg_storage_type(k->m, t), cg_elem_ptr(k, base, t, idx), "");
  switch (t) {
  case KN_BOOL: return LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstInt(k->m->t_i8, 0, 0), "");
  case KN_F16: return LLVMBuildFPExt(b, v, k->m->t_f32, "");
  case KN_BF16: { /* bf16 is the high half of an f32 */
    LLVMValueRef w = LLVMBuildZExt(b, v, k->m->t_i32, "");
    w = LLVMBuildShl(b, w, LLVMConstInt(k->m->t_i32, 16, 0), "");
    return LLVMBuildBitCast(b, w, k->m->t_f32, "");
  }
  default: return v;
  }
}

/* f32 -> bf16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
static LLVMValueRef f32_to_bf16_bits(CgKernel *k, LLVMValueRef f) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef i32 = k->m->t_i32;
  LLVMValueRef bits = LLVMBuildBitCast(b, f, i32, "");
  LLVMValueRef lsb = LLVMBuildAnd(b, LLVMBuildLShr(b, bits, LLVMConstInt(i32, 16, 0), ""),
                                  LLVMConstInt(i32, 1, 0), "");
  LLVMValueRef bias = LLVMBuildAdd(b, lsb, LLVMConstInt(i32, 0x7fff, 0), "");
  LLVMValueRef rounded = LLVMBuildLShr(b, LLVMBuildAdd(b, bits, bias, ""), LLVMConstInt(i32, 16, 0), "");
  LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, f, f, "");
  LLVMValueRef qnan = LLVMBuildOr(b, LLVMBuildLShr(b, bits, LLVMConstInt(i32, 16, 0), ""),
                                  LLVMConstInt(i32, 0x40, 0), "");
  LLVMValueRef r = LLVMBuildSelect(b, nan, qnan, rounded, "");
  return LLVMBuildTrunc(b, r, k->m->t_i16, "");
}

void cg_store(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuilderRef b = k->b;
  switch (t) {
  case KN_BOOL: v = LLVMBuildZExt(b, v, k->m->t_i8, ""); break;
  case KN_F16: v = LLVMBuildFPTrunc(b, v, k->m->t_f16, ""); break;
  case KN_BF16: v = f32_to_bf16_bits(k, v); break;
  default: break;
  }
  LLVMBuildStore(b, v, cg_elem_ptr(k, base, t, idx));
}

static LLVMValueRef float_to_int(CgKernel *k, LLVMValueRef v, KnDtype to) {
  /* Saturating conversions: defined for NaN and out-of-range values (plain fptosi is poison). */
  const char *name = ir_dtype_is_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
  LLVMTypeRef ret = cg_compute_type(k->m, to);
  LLVMTypeRef tys[2] = {ret, LLVMTypeOf(v)};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, tys, 2);
  LLVMTypeRef fty = LLVMIntrinsicGetType(k->m->ctx, id, tys, 2);
  return LLVMBuildCall2(k->b, fty, fn, &v, 1, "");
}

LLVMValueRef cg_convert(CgKernel *k, LLVMValueRef v, KnDtype from, KnDtype to) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef dst = cg_compute_type(k->m, to);
  if (from == to || LLVMTypeOf(v) == dst) {
    if (from == to || (ir_dtype_is_float(from) && ir_dtype_is_float(to))) return v;
  }
  bool ff = ir_dtype_is_float(from), tf = ir_dtype_is_float(to);
  if (to == KN_BOOL) {
    if (ff) return LLVMBuildFCmp(b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0.0), "");
    return LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
  }
  if (ff && tf) {
    unsigned sw = LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMDoubleTypeKind ? 64 : 32;
    unsigned dw = LLVMGetTypeKind(dst) == LLVMDoubleTypeKind ? 64 : 32;
    if (sw == dw) return v;
    return sw < dw ? LLVMBuildFPExt(b, v, dst, "") : LLVMBuildFPTrunc(b, v, dst, "");
  }
  if (ff) return float_to_int(k, v, to);
  bool src_signed = from != KN_BOOL && ir_dtype_is_signed(from);
  if (tf) return src_signed ? LLVMBuildSIToFP(b, v, dst, "") : LLVMBuildUIToFP(b, v, dst, "");
  unsigned sw = LLVMGetIntTypeWidth(LLVMTypeOf(v)), dw = LLVMGetIntTypeWidth(dst);
  if (sw == dw) return v;
  if (sw > dw) return LLVMBuildTrunc(b, v, dst, "");
  return src_signed ? LLVMBuildSExt(b, v, dst, "") : LLVMBuildZExt(b, v, dst, "");
}

void cg_memcpy(CgKernel *k, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef nbytes) {
  LLVMBuildMemCpy(k->b, dst, 1, src, 1, nbytes);
}

void cg_memset(CgKernel *k, LLVMValueRef dst, int byte, LLVMValueRef nbytes) {
  LLVMBuildMemSet(k->b, dst, LLVMConstInt(k->m->t_i8, (unsigned)byte & 0xff, 0), nbytes, 1);
}

/* ---- control flow ------------------------------------------------------------------------- */
CgLoop cg_loop_begin(CgKernel *k, LLVMValueRef begin, LLVMValueRef end) {
  CgLoop l;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(k->b);
  l.header = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "loop");
  l.body = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "body");
  l.latch = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "next");
  l.exit = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "done");
  LLVMBuildBr(k->b, l.header);
  LLVMPositionBuilderAtEnd(k->b, l.header);
  l.i = LLVMBuildPhi(k->b, k->m->t_i64, "i");
  LLVMAddIncoming(l.i, &begin, &pre, 1);
  LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, l.i, end, ""), l.body, l.exit);
  LLVMPositionBuilderAtEnd(k->b, l.body);
  return l;
}

void cg_loop_end(CgKernel *k, CgLoop *l) {
  LLVMBuildBr(k->b, l->latch);
  LLVMPositionBuilderAtEnd(k->b, l->latch);
  LLVMValueRef next = LLVMBuildAdd(k->b, l->i, cg_i64(k, 1), "");
  LLVMAddIncoming(l->i, &next, &l->latch, 1);
  LLVMBuildBr(k->b, l->header);
  LLVMPositionBuilderAtEnd(k->b, l->exit);
}

CgIf cg_if_begin(CgKernel *k, LLVMValueRef cond) {
  CgIf c = {0};
  c.then_block = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "then");
  c.else_block = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "else");
  c.merge = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "endif");
  LLVMBuildCondBr(k->b, cond, c.then_block, c.else_block);
  LLVMPositionBuilderAtEnd(k->b, c.then_block);
  return c;
}

void cg_if_else(CgKernel *k, CgIf *c) {
  LLVMBuildBr(k->b, c->merge);
  LLVMPositionBuilderAtEnd(k->b, c->else_block);
  c->has_else = true;
}

void cg_if_end(CgKernel *k, CgIf *c) {
  LLVMBuildBr(k->b, c->merge);
  if (!c->has_else) {
    LLVMPositionBuilderAtEnd(k->b, c->else_block);
    LLVMBuildBr(k->b, c->merge);
  }
  LLVMPositionBuilderAtEnd(k->b, c->merge);
}

LLVMValueRef cg_var(CgKernel *k, LLVMTypeRef t, LLVMValueRef init) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(k->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(k->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(k->b, first);
  else LLVMPositionBuilderAtEnd(k->b, entry);
  LLVMValueRef slot = LLVMBuildAlloca(k->b, t, "");
  LLVMPositionBuilderAtEnd(k->b, cur);
  if (init) LLVMBuildStore(k->b, init, slot);
  return slot;
}

/* The block every failure jumps to: returns the recorded status (kernels) or nothing (parallel
 * bodies, whose caller reads the status from the context). */
static LLVMBasicBlockRef fail_block(CgKernel *k) {
  if (k->fail_block) return k->fail_block;
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(k->b);
  bool is_void = LLVMGetReturnType(LLVMGlobalGetValueType(k->fn)) == k->m->t_void;
  k->fail_status = is_void ? NULL : cg_var(k, k->m->t_i32, NULL);
  k->fail_block = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "fail");
  LLVMPositionBuilderAtEnd(k->b, k->fail_block);
  if (is_void) LLVMBuildRetVoid(k->b);
  else LLVMBuildRet(k->b, LLVMBuildLoad2(k->b, k->m->t_i32, k->fail_status, ""));
  LLVMPositionBuilderAtEnd(k->b, cur);
  return k->fail_block;
}

void cg_fail_if(CgKernel *k, LLVMValueRef cond, KnStatus status, const char *msg,
                LLVMValueRef value) {
  CgModule *m = k->m;
  LLVMBasicBlockRef fail = fail_block(k);
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(m->ctx, k->fn, "bad");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(m->ctx, k->fn, "ok");
  LLVMBuildCondBr(k->b, cond, bad, ok);
  LLVMPositionBuilderAtEnd(k->b, bad);
  char full[600], label[256];
  snprintf(full, sizeof full, "%s: %s", cg_node_label(k->node, label, sizeof label), msg);
  LLVMTypeRef args[4] = {m->t_ptr, m->t_i32, m->t_ptr, m->t_i64};
  LLVMTypeRef fty = LLVMFunctionType(m->t_i32, args, 4, 0);
  LLVMValueRef fn = cg_extern_fn(m, "kn_rt_fail", fty);
  if (LLVMTypeOf(value) != m->t_i64) value = LLVMBuildSExt(k->b, value, m->t_i64, "");
  LLVMValueRef call_args[4] = {k->ctx, cg_i32(k, (int32_t)status),
                               LLVMBuildGlobalStringPtr(k->b, full, "msg"), value};
  LLVMValueRef st = LLVMBuildCall2(k->b, fty, fn, call_args, 4, "");
  if (k->fail_status) LLVMBuildStore(k->b, st, k->fail_status);
  LLVMBuildBr(k->b, fail);
  LLVMPositionBuilderAtEnd(k->b, ok);
}

void cg_check_status(CgKernel *k, LLVMValueRef status) {
  LLVMBasicBlockRef fail = fail_block(k);
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(k->m->ctx, k->fn, "ok");
  if (k->fail_status) LLVMBuildStore(k->b, status, k->fail_status);
  LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntNE, status, cg_i32(k, 0), ""), fail, ok);
  LLVMPositionBuilderAtEnd(k->b, ok);
}

/* ---- kernels ------------------------------------------------------------------------------ */
const char *cg_node_label(const KnNode *n, char *buf, size_t size) {
  if (n->name && *n->name) snprintf(buf, size, "node %s (%s)", n->name, ir_ops[n->op].name);
  else if (n->n_outputs && n->outputs[0]) snprintf(buf, size, "node %s producing %s", ir_ops[n->op].name, n->outputs[0]->name);
  else snprintf(buf, size, "node %s", ir_ops[n->op].name);
  return buf;
}

static int kernel_arg_count(const KnNode *n) { return 1 + n->n_inputs + n->n_outputs; }

KnStatus cg_emit_kernel(CgModule *m, const KnNode *node, LLVMValueRef *out_fn, KnError *err) {
  CgLowerFn lower = cg_lowering(node->op);
  if (!lower)
    return cg_no_kernel_error(node, "kiln's code generator", err);
  int nargs = kernel_arg_count(node);
  LLVMTypeRef args[nargs];
  for (int i = 0; i < nargs; i++) args[i] = m->t_ptr;
  char name[64];
  snprintf(name, sizeof name, "kn_k%d_%s", node->id, ir_ops[node->op].name);
  LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(m->t_i32, args, (unsigned)nargs, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  /* A kernel shared by thousands of nodes would otherwise be inlined into the entry thousands of
   * times, and LLVM's optimizer is superlinear in that function's size (a 2000-node chain of Relu
   * took 12 s to compile); a call per kernel costs nanoseconds. */
  cg_set_noinline(m, fn);
  LLVMValueRef in[node->n_inputs + 1], out[node->n_outputs + 1];
  in[node->n_inputs] = out[node->n_outputs] = NULL; /* one past the end reads as "omitted" */
  for (int i = 0; i < node->n_inputs; i++) in[i] = node->inputs[i] ? LLVMGetParam(fn, 1 + (unsigned)i) : NULL;
  for (int i = 0; i < node->n_outputs; i++)
    out[i] = node->outputs[i] ? LLVMGetParam(fn, 1 + (unsigned)(node->n_inputs + i)) : NULL;
  CgKernel k = {.m = m, .b = m->b, .node = node, .fn = fn, .ctx = LLVMGetParam(fn, 0),
                .in = in, .out = out, .err = err};
  LLVMPositionBuilderAtEnd(m->b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
  KnStatus st = lower(&k);
  if (st != KN_OK) {
    LLVMDeleteFunction(fn);
    return st;
  }
  LLVMBuildRet(m->b, cg_i32(&k, 0));
  m->n_kernels++;
  *out_fn = fn;
  return KN_OK;
}

/* ---- parallel loops ----------------------------------------------------------------------- */
/* The closure is an array of pointers: ctx, then every input, then every output (NULL for
 * omitted ones); the outlined body reloads them so the lowering sees the same kernel. */
void cg_parallel_for(CgKernel *k, int64_t n, int64_t grain, CgBodyFn body, void *user) {
  cg_parallel_for_extra(k, n, grain, body, user, NULL, 0);
}

void cg_parallel_for_extra(CgKernel *k, int64_t n, int64_t grain, CgBodyFn body, void *user,
                           LLVMValueRef *extra, int n_extra) {
  CgModule *m = k->m;
  const KnNode *node = k->node;
  int nargs = kernel_arg_count(node) + n_extra;
  if (n <= 0) return;
  LLVMTypeRef arr_t = LLVMArrayType2(m->t_ptr, (uint64_t)nargs);
  LLVMValueRef closure = cg_var(k, arr_t, NULL);
  LLVMValueRef null = LLVMConstNull(m->t_ptr);
  for (int i = 0; i < nargs; i++) {
    int base = kernel_arg_count(node);
    LLVMValueRef v = i == 0 ? k->ctx : i <= node->n_inputs ? k->in[i - 1]
                     : i < base ? k->out[i - 1 - node->n_inputs] : extra[i - base];
    LLVMValueRef idx[2] = {cg_i64(k, 0), cg_i64(k, i)};
    LLVMBuildStore(k->b, v ? v : null, LLVMBuildInBoundsGEP2(k->b, arr_t, closure, idx, 2, ""));
  }
  char name[80];
  snprintf(name, sizeof name, "kn_k%d_body%d", node->id, m->n_helpers++);
  LLVMValueRef fn = LLVMAddFunction(m->mod, name, m->t_kernel_body);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMBasicBlockRef resume = LLVMGetInsertBlock(k->b);

  /* The outlined body: for (i = begin; i < end; i++) body(i). */
  LLVMValueRef in[node->n_inputs + 1], out[node->n_outputs + 1], ext[n_extra + 1];
  in[node->n_inputs] = out[node->n_outputs] = ext[n_extra] = NULL;
  CgKernel sub = {.m = m, .b = m->b, .node = node, .fn = fn, .in = in, .out = out, .err = k->err,
                  .extra = ext, .n_extra = n_extra};
  LLVMPositionBuilderAtEnd(m->b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
  LLVMValueRef cl = LLVMGetParam(fn, 0);
  for (int i = 0; i < nargs; i++) {
    LLVMValueRef idx = cg_i64(&sub, i);
    LLVMValueRef p = LLVMBuildLoad2(m->b, m->t_ptr, LLVMBuildInBoundsGEP2(m->b, m->t_ptr, cl, &idx, 1, ""), "");
    int base = kernel_arg_count(node);
    if (i == 0) sub.ctx = p;
    else if (i <= node->n_inputs) in[i - 1] = k->in[i - 1] ? p : NULL;
    else if (i < base) out[i - 1 - node->n_inputs] = k->out[i - 1 - node->n_inputs] ? p : NULL;
    else ext[i - base] = p;
  }
  CgLoop l = cg_loop_begin(&sub, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2));
  body(&sub, l.i, user);
  cg_loop_end(&sub, &l);
  LLVMBuildRetVoid(m->b);

  /* Back in the kernel: call the runtime, then stop if a chunk failed. */
  LLVMPositionBuilderAtEnd(m->b, resume);
  LLVMTypeRef pf_args[5] = {m->t_ptr, m->t_i64, m->t_i64, m->t_ptr, m->t_ptr};
  LLVMTypeRef pf_ty = LLVMFunctionType(m->t_void, pf_args, 5, 0);
  LLVMValueRef pf = cg_extern_fn(m, "kn_rt_parallel_for", pf_ty);
  LLVMValueRef call_args[5] = {k->ctx, cg_i64(k, n), cg_i64(k, grain < 1 ? 1 : grain), fn, closure};
  LLVMBuildCall2(m->b, pf_ty, pf, call_args, 5, "");
  if (sub.fail_block) { /* the body can fail: KnRtCtx.status is the second i32 */
    LLVMValueRef one = cg_i64(k, 1);
    LLVMValueRef sp = LLVMBuildInBoundsGEP2(m->b, m->t_i32, k->ctx, &one, 1, "");
    LLVMValueRef st = LLVMBuildLoad2(m->b, m->t_i32, sp, "");
    LLVMBasicBlockRef fail = fail_block(k);
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(m->ctx, k->fn, "ok");
    if (k->fail_status) LLVMBuildStore(m->b, st, k->fail_status);
    LLVMBuildCondBr(m->b, LLVMBuildICmp(m->b, LLVMIntNE, st, cg_i32(k, 0), ""), fail, ok);
    LLVMPositionBuilderAtEnd(m->b, ok);
  }
}

/* ---- shapes ------------------------------------------------------------------------------- */
const KnShape *cg_in_shape(const CgKernel *k, int i) {
  const KnValue *v = i < k->node->n_inputs ? k->node->inputs[i] : NULL;
  return v ? &v->type.shape : NULL;
}
const KnShape *cg_out_shape(const CgKernel *k, int i) { return &k->node->outputs[i]->type.shape; }
KnDtype cg_in_dtype(const CgKernel *k, int i) {
  const KnValue *v = i < k->node->n_inputs ? k->node->inputs[i] : NULL;
  return v ? v->type.dtype : KN_UNDEF;
}
KnDtype cg_out_dtype(const CgKernel *k, int i) { return k->node->outputs[i]->type.dtype; }

int64_t cg_numel(const KnShape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dims[i].value;
  return n;
}

void cg_strides(const KnShape *s, int64_t *out) {
  int64_t st = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    out[i] = st;
    st *= s->dims[i].value;
  }
}

void cg_broadcast_strides(const KnShape *in, const KnShape *out, int64_t *strides) {
  int64_t own[in->rank > 0 ? in->rank : 1];
  cg_strides(in, own);
  int off = out->rank - in->rank;
  for (int d = 0; d < out->rank; d++) {
    int j = d - off;
    strides[d] = (j < 0 || in->dims[j].value == 1) ? 0 : own[j];
  }
}

KnStatus cg_no_kernel_error(const KnNode *n, const char *by, KnError *err) {
  char label[256], types[256];
  cg_describe_inputs(n, types, sizeof types);
  return kn_fail(err, KN_ERR_UNSUPPORTED, "%s: op %s%s%s (opset %d) with inputs (%s) is not supported by %s",
                 cg_node_label(n, label, sizeof label), ir_domain_name(n->domain),
                 n->domain == KN_DOMAIN_ONNX ? "" : ".", ir_ops[n->op].name, n->opset, types, by);
}

void cg_describe_inputs(const KnNode *n, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < n->n_inputs && used + 16 < size; i++) {
    const KnValue *v = n->inputs[i];
    const char *name = !v ? "-" : v->type.kind == KN_TYPE_TENSOR ? ir_dtype_name(v->type.dtype)
                       : v->type.kind == KN_TYPE_SEQUENCE ? "seq" : "opt";
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", name);
  }
}

KnStatus cg_unsupported(CgKernel *k, const char *what) {
  const KnNode *n = k->node;
  char types[256], label[256];
  cg_describe_inputs(n, types, sizeof types);
  return kn_fail(k->err, KN_ERR_UNSUPPORTED,
                 "%s: op %s (domain '%s', opset %d) with inputs (%s) is not supported: %s",
                 cg_node_label(n, label, sizeof label), ir_ops[n->op].name, ir_domain_name(n->domain),
                 n->opset, types, what);
}
