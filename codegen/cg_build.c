/* cg_build.c - from a planned graph to an optimized LLVM module for a target: the steps the JIT
 * and the AOT object writer share. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/cg_build.h"

double cg_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

KnStatus cg_llvm_error(KnError *err, LLVMErrorRef e, const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  kn_fail(err, KN_ERR_INTERNAL, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return KN_ERR_INTERNAL;
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
  return e ? cg_llvm_error(err, e, "LLVM optimization failed") : KN_OK;
}

/* Always on: a lowering that emits bad IR for an input nobody foresaw must end in a clear error,
 * not in LLVM's optimizer (release LLVM does not check its input). Costs a few % of emission. */
static KnStatus verify_module(LLVMModuleRef mod, KnError *err) {
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    kn_fail(err, KN_ERR_INTERNAL, "generated code does not verify: %.600s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return KN_ERR_INTERNAL;
  }
  LLVMDisposeMessage(msg);
  return KN_OK;
}

static void set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);
  LLVMDisposeTargetData(layout);
}

static void dump_module(LLVMModuleRef mod) {
  const char *dump = getenv("KILN_DUMP_LLVM"); /* debugging aid: the optimized module as text */
  if (!dump || !*dump) return;
  char *msg = NULL;
  if (LLVMPrintModuleToFile(mod, dump, &msg)) fprintf(stderr, "kiln: KILN_DUMP_LLVM: %s\n", msg ? msg : "");
  LLVMDisposeMessage(msg);
}

KnStatus cg_build_module(KnGraph *g, const CgPlan *plan, const CgOptions *o, bool for_jit, CgBuild *b,
                         CgStats *stats, KnError *err) {
  *b = (CgBuild){.tsc = LLVMOrcCreateNewThreadSafeContext()};
  KnStatus st = cg_module_init(&b->m, LLVMOrcThreadSafeContextGetContext(b->tsc), "kiln", err);
  double t0 = cg_now_ms();
  if (st == KN_OK) st = cg_target_machine(o, for_jit, &b->tm, err); /* kernels are sized for it */
  if (st == KN_OK) cg_target_vectors(b->tm, &b->m.vec_lanes, &b->m.vec_regs);
  b->m.opt_level = o->opt_level;
  if (st == KN_OK) st = cg_emit_entry(&b->m, g, plan, "kn_entry", err);
  if (st == KN_OK) st = verify_module(b->m.mod, err);
  stats->kernels = b->m.n_kernels;
  double t1 = cg_now_ms();
  if (st == KN_OK) {
    set_target(b->m.mod, b->tm);
    st = optimize(b->m.mod, b->tm, o->opt_level, err);
  }
  if (st == KN_OK) dump_module(b->m.mod);
  stats->emit_ms = t1 - t0;
  stats->optimize_ms = cg_now_ms() - t1;
  if (st != KN_OK) cg_build_dispose(b);
  return st;
}

void cg_build_dispose(CgBuild *b) {
  if (b->tm) LLVMDisposeTargetMachine(b->tm);
  cg_module_dispose(&b->m);
  if (b->tsc) LLVMOrcDisposeThreadSafeContext(b->tsc);
  *b = (CgBuild){0};
}
