/* cg_build.h - private to codegen/: the optimized LLVM module of a planned graph, which the JIT
 * links (cg_jit.c) or the AOT path writes as an object file (cg_aot.c). Both take the same steps,
 * so an AOT build runs the same code as the JIT. */
#ifndef KILN_CG_BUILD_H
#define KILN_CG_BUILD_H

#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"

typedef struct CgBuild {
  LLVMOrcThreadSafeContextRef tsc; /* owns the module's LLVM context */
  CgModule m;                      /* the module (m.mod NULL once handed to the JIT) */
  LLVMTargetMachineRef tm;         /* the target it was optimized for */
} CgBuild;

/* Registers LLVM's targets once: x86-64 (hosts) and AArch64 (edge boards). */
void cg_init_llvm(void);

/* The target machine for o: o->triple (NULL: the host's), o->cpu and o->features (NULL: the host's
 * for the host triple, "generic" and none for another). for_jit picks the JIT's code model. */
KnStatus cg_target_machine(const CgOptions *o, bool for_jit, LLVMTargetMachineRef *out, KnError *err);

/* The target's f32 lanes per vector register and its number of vector registers (what the GEMM
 * microkernels are sized by): AVX-512 16 x 32, AVX/AVX2 8 x 16, SSE2 4 x 16, NEON 4 x 32. */
void cg_target_vectors(LLVMTargetMachineRef tm, int *lanes, int *regs);

/* Emits g's kernels and entry function ("kn_entry") over plan into a new module, verifies it
 * (always: bad IR must not reach LLVM's optimizer), and optimizes it for o's target at o->opt_level. Fills the emit and
 * optimize times and the kernel count of stats. On failure b is disposed already. */
KnStatus cg_build_module(KnGraph *g, const CgPlan *plan, const CgOptions *o, bool for_jit, CgBuild *b,
                         CgStats *stats, KnError *err);
void cg_build_dispose(CgBuild *b);

/* An LLVM error as a kiln failure (consumes e). */
KnStatus cg_llvm_error(KnError *err, LLVMErrorRef e, const char *what);
double cg_now_ms(void);

#endif
