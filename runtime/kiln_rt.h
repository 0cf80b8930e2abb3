/* kiln_rt.h - the LLVM-free runtime that compiled models call into: the run context, parallel-for
 * over OpenMP, failure reporting from kernels, and runtime kernels for ops whose work does not
 * profit from generated code. This is the ABI between generated code and libkiln_rt. */
#ifndef KILN_RT_H
#define KILN_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What one run of a compiled model uses besides its buffers. One per thread that runs the model;
 * the compiled model itself is immutable and shared. */
typedef struct KnRtCtx {
  int threads;      /* OpenMP threads for parallel loops (<= 0: OpenMP's default) */
  int status;       /* 0, or the KnStatus of the first kernel failure of this run */
  char msg[512];    /* that failure's message */
} KnRtCtx;

/* The body of a parallel loop: runs iterations [begin, end) with the kernel's closure. */
typedef void (*KnRtBody)(void *closure, int64_t begin, int64_t end);

/* Runs body over [0, n) split into chunks of at least grain iterations across ctx->threads
 * threads; runs inline when one thread or one chunk suffices. */
void kn_rt_parallel_for(KnRtCtx *ctx, int64_t n, int64_t grain, KnRtBody body, void *closure);

/* Records a kernel failure (an index out of range, say) as "msg (got value)" in ctx unless one is recorded already;
 * returns status so generated code can `return kn_rt_fail(...)`. */
int32_t kn_rt_fail(KnRtCtx *ctx, int32_t status, const char *msg, int64_t value);

#ifdef __cplusplus
}
#endif
#endif
