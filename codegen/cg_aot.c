/* cg_aot.c - ahead-of-time builds: the same optimized module the JIT would link, plus a constant
 * KnAotInfo descriptor (include/kiln_aot.h) and the exported NAME_create/run/destroy/info
 * wrappers, written as an object file for the host or another target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_build.h"
#include "include/kiln_aot.h"

typedef struct InfoTypes {
  LLVMTypeRef tensor; /* KnAotTensorInfo */
  LLVMTypeRef info;   /* KnAotInfo */
} InfoTypes;

/* The C structs of kiln_aot.h as LLVM types; the target's data layout aligns them as C does. */
static InfoTypes info_types(CgModule *m) {
  LLVMTypeRef tensor[6] = {m->t_ptr, m->t_ptr, m->t_i64, m->t_i64, m->t_i32, m->t_i32};
  LLVMTypeRef info[15] = {m->t_i64, m->t_ptr, m->t_ptr, m->t_ptr, m->t_ptr, m->t_ptr, m->t_i64, m->t_ptr,
                          m->t_ptr, m->t_ptr, m->t_ptr, m->t_i64, m->t_i64, m->t_i32, m->t_i32};
  return (InfoTypes){LLVMStructTypeInContext(m->ctx, tensor, 6, 0), LLVMStructTypeInContext(m->ctx, info, 15, 0)};
}

/* A private constant global holding init. */
static LLVMValueRef private_const(CgModule *m, LLVMValueRef init, const char *name, unsigned align) {
  LLVMValueRef g = LLVMAddGlobal(m->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  if (align) LLVMSetAlignment(g, align);
  return g;
}

static LLVMValueRef const_str(CgModule *m, const char *s) {
  return private_const(m, LLVMConstStringInContext2(m->ctx, s ? s : "", s ? strlen(s) : 0, 0), "kn_str", 1);
}

static LLVMValueRef const_i64_array(CgModule *m, const int64_t *v, int n, const char *name) {
  LLVMValueRef elems[n + 1];
  for (int i = 0; i < n; i++) elems[i] = LLVMConstInt(m->t_i64, (unsigned long long)v[i], 1);
  return private_const(m, LLVMConstArray2(m->t_i64, elems, (uint64_t)n), name, 8);
}

/* KnAotTensorInfo[] for the graph inputs or outputs vs. */
static LLVMValueRef tensor_infos(CgModule *m, const InfoTypes *t, KnValue *const *vs, int n, const char *name) {
  LLVMValueRef elems[n + 1];
  for (int i = 0; i < n; i++) {
    const KnShape *s = &vs[i]->type.shape;
    int64_t dims[s->rank + 1], numel = 0;
    for (int d = 0; d < s->rank; d++) dims[d] = s->dims[d].value;
    size_t nbytes = 0; /* the plan has checked that both are concrete and fit */
    ir_shape_numel(s, &numel);
    ir_dtype_nbytes(vs[i]->type.dtype, numel, &nbytes);
    LLVMValueRef f[6] = {const_str(m, vs[i]->name), const_i64_array(m, dims, s->rank, "kn_dims"),
                         LLVMConstInt(m->t_i64, (unsigned long long)numel, 0), LLVMConstInt(m->t_i64, nbytes, 0),
                         LLVMConstInt(m->t_i32, (unsigned long long)vs[i]->type.dtype, 0),
                         LLVMConstInt(m->t_i32, (unsigned long long)s->rank, 0)};
    elems[i] = LLVMConstNamedStruct(t->tensor, f, 6);
  }
  return private_const(m, LLVMConstArray2(t->tensor, elems, (uint64_t)n), name, 8);
}

/* Embedded weights: one 64-byte aligned constant per weight and the table of their addresses. */
static LLVMValueRef weights_table(CgModule *m, const CgPlan *plan) {
  LLVMValueRef elems[plan->n_weights + 1];
  for (int i = 0; i < plan->n_weights; i++) {
    const KnTensor *w = plan->weights[i];
    LLVMValueRef data = LLVMConstStringInContext2(m->ctx, w->nbytes ? w->data : "", w->nbytes, 1);
    elems[i] = private_const(m, data, "kn_weight", 64);
  }
  return private_const(m, LLVMConstArray2(m->t_ptr, elems, (uint64_t)plan->n_weights), "kn_weights", 8);
}

static LLVMValueRef weight_sizes(CgModule *m, const CgPlan *plan) {
  int64_t sizes[plan->n_weights + 1];
  for (int i = 0; i < plan->n_weights; i++) sizes[i] = (int64_t)plan->weights[i]->nbytes;
  return const_i64_array(m, sizes, plan->n_weights, "kn_weight_bytes");
}

static LLVMValueRef info_global(CgModule *m, const KnGraph *g, const CgPlan *plan, const CgAotOptions *o,
                                uint64_t digest, LLVMTargetMachineRef tm) {
  InfoTypes t = info_types(m);
  char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
  LLVMValueRef f[15] = {
      LLVMConstInt(m->t_i64, KN_AOT_ABI_VERSION, 0), const_str(m, o->name), const_str(m, o->source),
      const_str(m, triple), const_str(m, cpu), LLVMGetNamedFunction(m->mod, "kn_entry"),
      LLVMConstInt(m->t_i64, plan->arena_bytes, 0), tensor_infos(m, &t, g->inputs, g->n_inputs, "kn_inputs"),
      tensor_infos(m, &t, g->outputs, g->n_outputs, "kn_outputs"),
      o->embed_weights ? weights_table(m, plan) : LLVMConstNull(m->t_ptr), weight_sizes(m, plan),
      LLVMConstInt(m->t_i64, (unsigned long long)plan->n_weights, 0), LLVMConstInt(m->t_i64, digest, 0),
      LLVMConstInt(m->t_i32, (unsigned long long)g->n_inputs, 0),
      LLVMConstInt(m->t_i32, (unsigned long long)g->n_outputs, 0)};
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  return private_const(m, LLVMConstNamedStruct(t.info, f, 15), "kn_info", 8);
}

/* Starts exported function `ret NAME_suffix(ptr x n_params)` with the builder in its body. */
static LLVMValueRef begin_export(CgModule *m, const char *prefix, const char *suffix, LLVMTypeRef ret,
                                 int n_params) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  LLVMTypeRef params[3] = {m->t_ptr, m->t_ptr, m->t_ptr};
  LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(ret, params, (unsigned)n_params, 0));
  LLVMPositionBuilderAtEnd(m->b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
  return fn;
}

/* Returns callee(args...) (or nothing, for a void ret) from the function being built. */
static void return_call(CgModule *m, const char *callee, LLVMTypeRef ret, LLVMValueRef *args, int n) {
  LLVMTypeRef params[3] = {m->t_ptr, m->t_ptr, m->t_ptr};
  LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)n, 0);
  LLVMValueRef r = LLVMBuildCall2(m->b, fty, cg_extern_fn(m, callee, fty), args, (unsigned)n, "");
  if (ret == m->t_void) LLVMBuildRetVoid(m->b);
  else LLVMBuildRet(m->b, r);
}

/* The descriptor and the exported API (kiln_aot.h): NAME_info, NAME_create(out, weights_path),
 * NAME_run(model, inputs, outputs), NAME_destroy(model). kn_entry becomes private to the object so
 * that several models link into one program. */
static void emit_api(CgModule *m, const KnGraph *g, const CgPlan *plan, const CgAotOptions *o, uint64_t digest,
                     LLVMTargetMachineRef tm) {
  LLVMValueRef info = info_global(m, g, plan, o, digest, tm);
  LLVMSetLinkage(LLVMGetNamedFunction(m->mod, "kn_entry"), LLVMInternalLinkage);
  begin_export(m, o->name, "_info", m->t_ptr, 0);
  LLVMBuildRet(m->b, info);
  if (o->exe_main) { /* what the --exe driver (runtime/main) looks up */
    begin_export(m, "kn_aot_main", "_info", m->t_ptr, 0);
    LLVMBuildRet(m->b, info);
  }
  LLVMValueRef fn = begin_export(m, o->name, "_create", m->t_i32, 2);
  return_call(m, "kn_aot_create", m->t_i32, (LLVMValueRef[]){info, LLVMGetParam(fn, 1), LLVMGetParam(fn, 0)}, 3);
  fn = begin_export(m, o->name, "_run", m->t_i32, 3);
  return_call(m, "kn_aot_run", m->t_i32, (LLVMValueRef[]){LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)}, 3);
  fn = begin_export(m, o->name, "_destroy", m->t_void, 1);
  return_call(m, "kn_aot_destroy", m->t_void, (LLVMValueRef[]){LLVMGetParam(fn, 0)}, 1);
}

/* FNV-1a over the weights' sizes and bytes: ties a weights file to the object built with it. */
static uint64_t weights_digest(const CgPlan *plan) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < plan->n_weights; i++) {
    const KnTensor *w = plan->weights[i];
    uint64_t n = w->nbytes;
    for (int b = 0; b < 8; b++) h = (h ^ ((n >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    const unsigned char *p = w->data;
    for (size_t j = 0; j < w->nbytes; j++) h = (h ^ p[j]) * 0x100000001b3ull;
  }
  return h;
}

static KnStatus check_io(const KnGraph *g, KnError *err) {
  for (int i = 0; i < g->n_inputs + g->n_outputs; i++) {
    const KnValue *v = i < g->n_inputs ? g->inputs[i] : g->outputs[i - g->n_inputs];
    if (cg_runtime_only(v))
      return kn_fail(err, KN_ERR_UNSUPPORTED, "%s %s: sequences, optionals and strings cannot cross the boundary of an ahead-of-time build",
                     i < g->n_inputs ? "input" : "output", v->name);
  }
  return KN_OK;
}

static KnStatus emit_object(CgBuild *b, CgObject *out, KnError *err) {
  char *msg = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(b->tm, b->m.mod, LLVMObjectFile, &msg, &buf)) {
    kn_fail(err, KN_ERR_INTERNAL, "cannot write the object file: %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return KN_ERR_INTERNAL;
  }
  out->size = LLVMGetBufferSize(buf);
  out->data = malloc(out->size ? out->size : 1);
  if (out->data) memcpy(out->data, LLVMGetBufferStart(buf), out->size);
  LLVMDisposeMemoryBuffer(buf);
  return out->data ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
}

KnStatus cg_compile_object(KnModel *model, const CgAotOptions *o, CgObject *out, KnError *err) {
  *out = (CgObject){0};
  KnGraph *g = model->graph;
  CgPlan plan = {0};
  KnStatus st = check_io(g, err);
  double t0 = cg_now_ms();
  if (st == KN_OK) st = cg_plan_graph(g, o->cg.max_arena_bytes, &plan, err);
  out->stats.plan_ms = cg_now_ms() - t0;
  out->stats.arena_bytes = plan.arena_bytes;
  out->stats.naive_bytes = plan.naive_bytes;
  CgBuild b = {0};
  if (st == KN_OK) st = cg_build_module(g, &plan, &o->cg, false, &b, &out->stats, err);
  if (st == KN_OK) {
    out->weights_digest = o->embed_weights ? 0 : weights_digest(&plan);
    t0 = cg_now_ms();
    emit_api(&b.m, g, &plan, o, out->weights_digest, b.tm);
    st = emit_object(&b, out, err);
    out->stats.jit_ms = cg_now_ms() - t0;
  }
  if (st == KN_OK && !(out->weights = malloc(((size_t)plan.n_weights + 1) * sizeof *out->weights)))
    st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; st == KN_OK && i < plan.n_weights; i++) out->weights[i] = plan.weights[i];
  out->n_weights = plan.n_weights;
  cg_build_dispose(&b);
  cg_plan_free(&plan);
  if (st != KN_OK) cg_object_free(out);
  return st;
}

void cg_object_free(CgObject *obj) {
  free(obj->data);
  free(obj->weights);
  *obj = (CgObject){0};
}
