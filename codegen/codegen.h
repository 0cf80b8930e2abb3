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
 * types say. Allocates its arena per call, or with ctx->keep_arena reuses (and grows) the one the
 * context keeps (kn_rt_ctx_release frees it); safe to call from several threads at once with
 * distinct contexts. */
KnStatus cg_program_run(const KnProgram *p, KnRtCtx *ctx, void *const *inputs,
                        void *const *outputs, KnError *err);

const KnGraph *cg_program_graph(const KnProgram *p);

/* ---- ahead of time (codegen/cg_aot.c) ---- */
typedef struct CgAotOptions {
  CgOptions cg;            /* level and target (triple, cpu, features) */
  const char *name;        /* NAME: prefix of the exported symbols, a C identifier */
  const char *source;      /* the model file, recorded in the descriptor */
  bool embed_weights;      /* false: the weights come from a file at NAME_create */
  bool exe_main;           /* also export kn_aot_main_info() for the --exe driver */
} CgAotOptions;

typedef struct CgObject {
  char *data;                /* the object file's bytes (ELF for the target) */
  size_t size;
  const KnTensor **weights;  /* the entry's weights in order (they point into the model) */
  int n_weights;
  uint64_t weights_digest;   /* 0 when embedded; else what the weights file must carry */
  CgStats stats;             /* jit_ms: writing the object */
} CgObject;

/* Compiles m's graph (every shape concrete) like cg_compile, but writes an object file exporting
 * NAME_create/run/destroy/info (include/kiln_aot.h) instead of linking it here. m stays the
 * caller's and must outlive out->weights. */
KnStatus cg_compile_object(KnModel *m, const CgAotOptions *o, CgObject *out, KnError *err);
void cg_object_free(CgObject *obj);
const CgStats *cg_program_stats(const KnProgram *p);

#endif
