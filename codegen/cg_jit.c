/* cg_jit.c - compiling a graph end to end: plan, emit, optimize with LLVM's new pass manager for
 * the host CPU, and JIT-link with ORC LLJIT; and running the result. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/codegen.h"

struct KnProgram {
  KnModel *model;          /* the specialized model; owns the weights the entry reads */
  CgPlan plan;
  LLVMOrcLLJITRef jit;
  KnEntryFn entry;
  const void **weights;    /* the weights' data, in the plan's order: the entry's weights table */
  CgStats stats;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static void init_llvm(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

static KnStatus llvm_error(KnError *err, LLVMErrorRef e, const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  kn_fail(err, KN_ERR_INTERNAL, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return KN_ERR_INTERNAL;
}

static KnStatus host_target_machine(const CgOptions *o, LLVMTargetMachineRef *out, KnError *err) {
  char *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    kn_fail(err, KN_ERR_UNSUPPORTED, "no LLVM target for %s: %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return KN_ERR_UNSUPPORTED;
  }
  char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  LLVMCodeGenOptLevel level = o->opt_level <= 0 ? LLVMCodeGenLevelNone
                              : o->opt_level == 1 ? LLVMCodeGenLevelLess
                              : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                  : LLVMCodeGenLevelAggressive;
  *out = LLVMCreateTargetMachine(target, triple, o->cpu ? o->cpu : cpu, o->features ? o->features : features,
                                 level, LLVMRelocPIC, LLVMCodeModelJITDefault);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(triple);
  return *out ? KN_OK : kn_fail(err, KN_ERR_INTERNAL, "cannot create an LLVM target machine");
}

static KnStatus optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, KnError *err) {
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", level < 0 ? 0 : level > 3 ? 3 : level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  /* Kernels have constant trip counts everywhere, so LLVM's unroller fully unrolls nests of them:
   * resnet18's convolutions grew to 6.7 MB of IR and 30-80 s of compile time at -O3, against
   * 0.5 MB and about 1 s without. Kernels that profit from unrolling unroll explicitly. */
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  return e ? llvm_error(err, e, "LLVM optimization failed") : KN_OK;
}

/* Builds the module for g: kernels and entry; verifies it in builds that verify passes. */
static KnStatus emit_module(CgModule *m, KnGraph *g, const CgPlan *plan, KnError *err) {
  KnStatus st = cg_emit_entry(m, g, plan, "kn_entry", err);
  if (st != KN_OK) return st;
#ifdef KILN_VERIFY_PASSES
  char *msg = NULL;
  if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
    kn_fail(err, KN_ERR_INTERNAL, "generated code does not verify: %.600s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return KN_ERR_INTERNAL;
  }
  LLVMDisposeMessage(msg);
#endif
  return KN_OK;
}

static KnStatus make_jit(LLVMTargetMachineRef tm, LLVMOrcLLJITRef *out, KnError *err) {
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(out, builder);
  if (e) return llvm_error(err, e, "cannot create the JIT");
  /* Kernels call libm and the runtime (kn_rt_*): both are resolved in this process. */
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(*out), NULL, NULL);
  if (e) return llvm_error(err, e, "cannot search this process's symbols");
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(*out), gen);
  return KN_OK;
}

static KnStatus compile_module(KnProgram *p, const CgOptions *o, KnError *err) {
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  CgModule m;
  KnStatus st = cg_module_init(&m, LLVMOrcThreadSafeContextGetContext(tsc), "kiln", err);
  double t0 = now_ms();
  if (st == KN_OK) st = emit_module(&m, p->model->graph, &p->plan, err);
  p->stats.kernels = m.n_kernels;
  double t1 = now_ms();
  LLVMTargetMachineRef tm = NULL, jit_tm = NULL;
  if (st == KN_OK) st = host_target_machine(o, &tm, err);
  if (st == KN_OK) st = host_target_machine(o, &jit_tm, err);
  if (st == KN_OK) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(m.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m.mod, layout);
    LLVMDisposeTargetData(layout);
    st = optimize(m.mod, tm, o->opt_level, err);
  }
  const char *dump = getenv("KILN_DUMP_LLVM"); /* debugging aid: the optimized module as text */
  if (st == KN_OK && dump && *dump) {
    char *msg = NULL;
    if (LLVMPrintModuleToFile(m.mod, dump, &msg)) fprintf(stderr, "kiln: KILN_DUMP_LLVM: %s\n", msg ? msg : "");
    LLVMDisposeMessage(msg);
  }
  double t2 = now_ms();
  if (tm) LLVMDisposeTargetMachine(tm);
  if (st == KN_OK) {
    st = make_jit(jit_tm, &p->jit, err); /* the JIT owns jit_tm now */
    jit_tm = NULL;
  }
  if (st == KN_OK) {
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m.mod, tsc);
    m.mod = NULL; /* owned by tsm, then by the JIT */
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(p->jit, LLVMOrcLLJITGetMainJITDylib(p->jit), tsm);
    if (e) {
      LLVMOrcDisposeThreadSafeModule(tsm);
      st = llvm_error(err, e, "cannot add the module to the JIT");
    }
  }
  if (st == KN_OK) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(p->jit, &addr, "kn_entry");
    if (e) st = llvm_error(err, e, "cannot link the compiled model");
    p->entry = (KnEntryFn)(uintptr_t)addr;
  }
  if (jit_tm) LLVMDisposeTargetMachine(jit_tm);
  cg_module_dispose(&m);
  LLVMOrcDisposeThreadSafeContext(tsc);
  p->stats.emit_ms = t1 - t0;
  p->stats.optimize_ms = t2 - t1;
  p->stats.jit_ms = now_ms() - t2;
  return st;
}

KnStatus cg_compile(KnModel *model, const CgOptions *o, KnProgram **out, KnError *err) {
  pthread_once(&llvm_once, init_llvm);
  *out = NULL;
  KnProgram *p = calloc(1, sizeof *p);
  if (!p) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  p->model = model;
  double t0 = now_ms();
  KnStatus st = cg_plan_graph(model->graph, &p->plan, err);
  p->stats.plan_ms = now_ms() - t0;
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

KnStatus cg_program_run(const KnProgram *p, KnRtCtx *ctx, void *const *inputs,
                        void *const *outputs, KnError *err) {
  uint8_t *arena = aligned_alloc(64, p->plan.arena_bytes);
  if (!arena) return kn_fail(err, KN_ERR_NOMEM, "cannot allocate the %zu-byte arena", p->plan.arena_bytes);
  ctx->status = 0;
  ctx->msg[0] = 0;
  int32_t rc = p->entry(ctx, inputs, outputs, p->weights, arena);
  free(arena);
  if (rc != 0)
    return kn_fail(err, ctx->status ? (KnStatus)ctx->status : KN_ERR_INTERNAL, "%s",
                   ctx->msg[0] ? ctx->msg : "a kernel failed without a message");
  return KN_OK;
}

const KnGraph *cg_program_graph(const KnProgram *p) { return p->model->graph; }
const CgStats *cg_program_stats(const KnProgram *p) { return &p->stats; }
