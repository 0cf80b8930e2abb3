/* rt_parallel.c - parallel-for over OpenMP and failure reporting for generated kernels. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "runtime/kiln_rt.h"

void kn_rt_parallel_for(KnRtCtx *ctx, int64_t n, int64_t grain, KnRtBody body, void *closure) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int threads = ctx && ctx->threads > 0 ? ctx->threads : omp_get_max_threads();
  int64_t chunks = (n + grain - 1) / grain;
  if (threads == 1 || chunks == 1) {
    body(closure, 0, n);
    return;
  }
  if (chunks > threads) chunks = threads;
  /* Static, equal chunks: each thread gets one contiguous range, so results do not depend on
   * scheduling (every iteration writes its own outputs). */
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int64_t c = 0; c < chunks; c++) {
    int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    if (begin < end) body(closure, begin, end);
  }
}

int32_t kn_rt_fail(KnRtCtx *ctx, int32_t status, const char *msg, int64_t value) {
  if (!ctx) return status;
  /* Kernels inside a parallel loop may fail at once; the first recorded message wins. */
#pragma omp critical(kn_rt_fail)
  {
    if (ctx->status == 0) {
      ctx->status = status;
      snprintf(ctx->msg, sizeof ctx->msg, "%s (got %lld)", msg, (long long)value);
    }
  }
  return status;
}
