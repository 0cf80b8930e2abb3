/* cg_stage.h - models cut into stages where a shape depends on computed data (cg_stage.c), and
 * the runtime kernels that compute such data-dependent ops (cg_dynamic.c). */
#ifndef KILN_CG_STAGE_H
#define KILN_CG_STAGE_H

#include "codegen/runner.h"

/* What a runtime kernel may use besides its inputs. */
typedef struct CgDynEnv {
  KnRtCtx *ctx;
  const KnRunOptions *opt;
  /* Values of the enclosing graph by name (what a subgraph captures); NULL if not computed. */
  KnTensor *(*find)(void *map, const char *name);
  void *map;
  /* Per compiled stage, what the op keeps between runs (If/Loop/Scan: their bodies' runners),
   * created under the stage's lock; freed with cg_dynamic_free_state. */
  void **state;
} CgDynEnv;

/* Computes node n on real tensors (in[i] NULL for omitted inputs), allocating outputs in a. */
typedef KnStatus (*CgDynFn)(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out,
                            CgDynEnv *env, KnError *err);
/* The runtime kernel for node n: ops whose output size depends on data (NonZero, ...), that run
 * subgraphs (If, Loop, Scan), or that take or make sequences and optionals; NULL if none. */
CgDynFn cg_dynamic_fn(const KnNode *n);
/* Whether a node takes or makes a sequence, an optional or a string tensor (those never reach
 * generated code). */
bool cg_node_has_lists(const KnNode *n);
void cg_dynamic_free_state(const KnNode *n, void *state);

/* Control flow (codegen/cg_control.c). */
KnStatus cg_run_if(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                   KnError *err);
KnStatus cg_run_loop(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                     KnError *err);
KnStatus cg_run_scan(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                     KnError *err);
KnStatus cg_run_sequence_map(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                             KnError *err);
void cg_control_free_state(void *state);
/* Sequence and optional ops (codegen/cg_sequence.c): NULL if op has none. */
CgDynFn cg_sequence_fn(const KnNode *n);
/* Strings (codegen/cg_string.c). */
KnStatus cg_run_string_cast(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                            KnError *err);
KnStatus cg_run_string_normalizer(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                                  KnError *err);
/* TfIdfVectorizer (codegen/cg_tfidf.c). */
KnStatus cg_run_tfidf(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                      KnError *err);

typedef struct CgStaged CgStaged;
/* Cuts specialized model spec before node `split` (the first with an unknown output shape) and
 * prepares the stages; takes ownership of spec on success. */
KnStatus cg_stage_build(KnModel *spec, int split, const KnRunOptions *o, CgStaged **out,
                        KnError *err);
/* Runs the stages; inputs in spec's graph-input order; outputs allocated in out_arena. */
KnStatus cg_stage_run(CgStaged *s, KnRtCtx *ctx, KnTensor *const *inputs, KnArena *out_arena,
                      KnTensor **outputs, KnError *err);
void cg_stage_free(CgStaged *s);

#endif
