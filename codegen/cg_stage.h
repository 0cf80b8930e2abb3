/* cg_stage.h - models cut into stages where a shape depends on computed data (cg_stage.c), and
 * the runtime kernels that compute such data-dependent ops (cg_dynamic.c). */
#ifndef KILN_CG_STAGE_H
#define KILN_CG_STAGE_H

#include "codegen/runner.h"

/* Computes node n on real tensors (in[i] NULL for omitted inputs), allocating outputs in a. */
typedef KnStatus (*CgDynFn)(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out,
                            KnError *err);
/* The runtime kernel for an op whose output size depends on data (NonZero, ...), or NULL. */
CgDynFn cg_dynamic_op(KnOp op);

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
