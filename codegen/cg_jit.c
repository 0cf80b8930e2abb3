/* cg_jit.c - compiling a graph to run in this process: plan, build the optimized module
 * (cg_build.c), JIT-link it with ORC LLJIT; and running the result. */
#include <stdlib.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>

#include "codegen/cg_build.h"

struct KnProgram {
  KnModel *model;          /* the specialized model; owns the weights the entry reads */
  CgPlan plan;
  LLVMOrcLLJITRef jit;
  KnEntryFn entry;
  const void **weights;    /* the weights' data, in the plan's order: the entry's weights table */
  CgStats stats;
};

static KnStatus make_jit(LLVMTargetMachineRef tm, LLVMOrcLLJITRef *out, KnError *err) {
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(out, builder);
  if (e) return cg_llvm_error(err, e, "cannot create the JIT");
  /* Kernels call libm and the runtime (kn_rt_*): both are resolved in this process. */
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(*out), NULL, NULL);
  if (e) return cg_llvm_error(err, e, "cannot search this process's symbols");
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(*out), gen);
  return KN_OK;
}

/* Hands the built module to a new LLJIT and looks up the entry. */
static KnStatus link_module(KnProgram *p, const CgOptions *o, CgBuild *b, KnError *err) {
  LLVMTargetMachineRef jit_tm;
  KnStatus st = cg_target_machine(o, true, &jit_tm, err);
  if (st == KN_OK) st = make_jit(jit_tm, &p->jit, err); /* the JIT owns jit_tm now */
  if (st == KN_OK) {
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(b->m.mod, b->tsc);
    b->m.mod = NULL; /* owned by tsm, then by the JIT */
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(p->jit, LLVMOrcLLJITGetMainJITDylib(p->jit), tsm);
    if (e) {
      LLVMOrcDisposeThreadSafeModule(tsm);
      st = cg_llvm_error(err, e, "cannot add the module to the JIT");
    }
  }
  if (st == KN_OK) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(p->jit, &addr, "kn_entry");
    if (e) st = cg_llvm_error(err, e, "cannot link the compiled model");
    p->entry = (KnEntryFn)(uintptr_t)addr;
  }
  return st;
}

static KnStatus compile_module(KnProgram *p, const CgOptions *o, KnError *err) {
  if (o->triple) return kn_fail(err, KN_ERR_INVALID, "the JIT runs on the host only (target %s asked)", o->triple);
  CgBuild b;
  KnStatus st = cg_build_module(p->model->graph, &p->plan, o, true, &b, &p->stats, err);
  if (st != KN_OK) return st;
  double t0 = cg_now_ms();
  st = link_module(p, o, &b, err);
  cg_build_dispose(&b);
  p->stats.jit_ms = cg_now_ms() - t0;
  return st;
}

KnStatus cg_compile(KnModel *model, const CgOptions *o, KnProgram **out, KnError *err) {
  *out = NULL;
  KnProgram *p = calloc(1, sizeof *p);
  if (!p) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  p->model = model;
  double t0 = cg_now_ms();
  KnStatus st = cg_plan_graph(model->graph, o->max_arena_bytes, &p->plan, err);
  p->stats.plan_ms = cg_now_ms() - t0;
  p->stats.arena_bytes = p->plan.arena_bytes;
  p->stats.naive_bytes = p->plan.naive_bytes;
  if (st == KN_OK && !(p->weights = calloc((size_t)p->plan.n_weights + 1, sizeof *p->weights)))
    st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; st == KN_OK && i < p->plan.n_weights; i++) p->weights[i] = p->plan.weights[i]->data;
  if (st == KN_OK) st = compile_module(p, o, err);
  if (st != KN_OK) {
    p->model = NULL; /* the caller keeps it */
    cg_program_free(p);
    return st;
  }
  *out = p;
  return KN_OK;
}

void cg_program_free(KnProgram *p) {
  if (!p) return;
  if (p->jit) LLVMOrcDisposeLLJIT(p->jit);
  cg_plan_free(&p->plan);
  free(p->weights);
  if (p->model) ir_model_free(p->model);
  free(p);
}

/* The run's scratch arena: the context's kept one when it asks to keep it (a fresh allocation of
 * many MB per run costs page faults that can exceed a small model's whole run), else a new one. */
static uint8_t *run_arena(const KnProgram *p, KnRtCtx *ctx) {
  size_t want = (p->plan.arena_bytes + 63) & ~(size_t)63;
  if (want == 0) want = 64;
  if (!ctx->keep_arena) return aligned_alloc(64, want);
  if (ctx->arena_bytes < want) {
    kn_rt_ctx_release(ctx);
    if (!(ctx->arena = aligned_alloc(64, want))) return NULL;
    ctx->arena_bytes = want;
  }
  return ctx->arena;
}

KnStatus cg_program_run(const KnProgram *p, KnRtCtx *ctx, void *const *inputs,
                        void *const *outputs, KnError *err) {
  uint8_t *arena = run_arena(p, ctx);
  if (!arena) return kn_fail(err, KN_ERR_NOMEM, "cannot allocate the %zu-byte arena", p->plan.arena_bytes);
  ctx->status = 0;
  ctx->msg[0] = 0;
  int32_t rc = p->entry(ctx, inputs, outputs, p->weights, arena);
  if (!ctx->keep_arena) free(arena);
  if (rc != 0)
    return kn_fail(err, ctx->status ? (KnStatus)ctx->status : KN_ERR_INTERNAL, "%s",
                   ctx->msg[0] ? ctx->msg : "a kernel failed without a message");
  return KN_OK;
}

const KnGraph *cg_program_graph(const KnProgram *p) { return p->model->graph; }
const CgStats *cg_program_stats(const KnProgram *p) { return &p->stats; }
