/* codegen.h - compiling a specialized graph to native code and running it: what tools/ and the
 * tests use. Internals (the kernel-building API) are in codegen/cg.h. */
#ifndef KILN_CODEGEN_H
#define KILN_CODEGEN_H

#include "codegen/cg.h"

typedef struct KnProgram KnProgram;

/* The entry function's type (see the ABI in cg.h). */
typedef int32_t (*KnEntryFn)(KnRtCtx *ctx, void *const *inputs, void *const *outputs,
                             const void *const *weights, uint8_t *arena);

/* What compiling took, for reports. */
typedef struct CgStats {
  double plan_ms, emit_ms, optimize_ms, jit_ms; /* wall times of the stages */
  int kernels;                                  /* kernel functions emitted */
  size_t arena_bytes, naive_bytes;              /* planned arena, and without reuse */
} CgStats;

/* Compiles m's graph (every shape concrete) at o->opt_level and JIT-links it. The program
 * keeps m (its weights are read in place) and frees it in cg_program_free; on failure m is
 * left to the caller. */
KnStatus cg_compile(KnModel *m, const CgOptions *o, KnProgram **out, KnError *err);
void cg_program_free(KnProgram *p);

/* Runs the program once: inputs/outputs are buffers in the graph's order, sized as the graph's
 * types say. Allocates its arena per call unless ctx-independent reuse is added later; safe to
 * call from several threads at once with distinct contexts. */
KnStatus cg_program_run(const KnProgram *p, KnRtCtx *ctx, void *const *inputs,
                        void *const *outputs, KnError *err);

const KnGraph *cg_program_graph(const KnProgram *p);
const CgStats *cg_program_stats(const KnProgram *p);

#endif
