/* lower_reduce.h - the private reduction engine that kiln's reduce, softmax, normalization and
 * loss lowerings share: statistics accumulated over some axes of an input per kept element, then
 * optionally an elementwise pass over the same elements that uses them. */
#ifndef KILN_LOWER_REDUCE_H
#define KILN_LOWER_REDUCE_H

#include "codegen/cg.h"

#define RD_MAX_RANK 16
#define RD_MAX_STATS 4
#define RD_CHUNK 256 /* kept inner elements accumulated side by side (stack arrays) */

/* What a callback sees for one kept element (and, in step/map, one input element). */
typedef struct RdCtx {
  LLVMValueRef stats[RD_MAX_STATS]; /* current values, compute type of stat_dtype; callbacks update */
  LLVMValueRef x;       /* step/map: the input element; init: the first reduced element, or NULL */
  LLVMValueRef in_off;  /* step/map: its offset in the source input */
  LLVMValueRef out_off; /* linear index of the kept element (a reduced output's offset) */
  LLVMValueRef ridx;    /* step/map: row-major index among the reduced coordinates */
} RdCtx;

typedef struct RdPlan RdPlan;
typedef void (*RdStepFn)(CgKernel *k, const RdPlan *p, int pass, RdCtx *c);
typedef LLVMValueRef (*RdMapFn)(CgKernel *k, const RdPlan *p, RdCtx *c);

struct RdPlan {
  /* geometry (rd_geometry): dims with the same reduced/kept status merged, size-1 dims dropped */
  int rank;
  int64_t dims[RD_MAX_RANK];
  bool red[RD_MAX_RANK];
  int64_t strides[RD_MAX_RANK];
  int64_t n_kept, n_red, inner_k; /* inner_k: size of a trailing kept dim (1 if none) */
  /* the computation */
  int src;                /* input holding x */
  KnDtype src_dtype;
  int n_stats;
  KnDtype stat_dtype[RD_MAX_STATS];
  int n_pass;             /* reduction passes over the reduced elements */
  RdStepFn init;          /* before pass `pass`: set its stats */
  RdStepFn step;          /* per reduced element in pass `pass` */
  RdStepFn done;          /* after pass `pass` (after "pass 0" when n_pass is 0): finish, store */
  RdMapFn map;            /* optional: output map_out at in_off = map(x, stats) */
  int map_out;
  KnDtype map_dtype;
  const void *user;
};

/* Fills p's geometry from input shape s and mask[rank] (true = reduced). false: too many dims. */
bool rd_geometry(RdPlan *p, const KnShape *s, const bool *mask);
/* Emits the loops (parallel over kept elements) for a plan whose geometry and callbacks are set. */
void rd_emit(CgKernel *k, const RdPlan *p);

/* Float add that LLVM may reassociate (so reductions vectorize); plain add for integers. */
LLVMValueRef rd_add(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b);
/* The accumulation dtype for a float input: f64 for f64, else f32. */
KnDtype rd_float_acc(KnDtype t);
/* Index into an input of shape in broadcast (numpy, right-aligned) to shape out, from a linear
 * index into out. */
LLVMValueRef rd_bcast_index(CgKernel *k, LLVMValueRef lin, const KnShape *out, const KnShape *in);
/* exp, log, sqrt, fabs on a float value. */
LLVMValueRef rd_fn(CgKernel *k, const char *intrinsic, LLVMValueRef x);

#endif
