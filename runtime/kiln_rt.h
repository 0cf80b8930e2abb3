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
typedef struct KnRtProfile KnRtProfile;

/* Fields after msg are appended only (generated code reads status and profile by offset). */
typedef struct KnRtCtx {
  int threads;      /* OpenMP threads for parallel loops (<= 0: OpenMP's default) */
  int status;       /* 0, or the KnStatus of the first kernel failure of this run */
  char msg[512];    /* that failure's message */
  KnRtProfile *profile; /* NULL, or where the entry records each kernel's time (kn_rt_profile_new) */
  int keep_arena;   /* nonzero: the JIT runner keeps a run's scratch arena here for the next run */
  void *arena;      /* that arena (free it with kn_rt_ctx_release) */
  size_t arena_bytes;
} KnRtCtx;

/* Frees what a context kept between runs (its arena); the context can be used again. */
void kn_rt_ctx_release(KnRtCtx *ctx);

/* ---- profiling (runtime/rt_profile.c): per-kernel wall time, and a trace of calls ---------- */
/* One record per call site of the entry (the i-th kernel call, in graph node order). */
typedef struct KnRtProfileSite {
  int64_t calls;
  double total_ms, min_ms;
} KnRtProfileSite;

typedef struct KnRtTraceEvent {
  int32_t site;
  double start_us, dur_us; /* microseconds since the profile was made */
} KnRtTraceEvent;

struct KnRtProfile {
  int n_sites;
  KnRtProfileSite *sites;
  KnRtTraceEvent *events; /* the first max_events calls, for a Chrome trace; NULL: none kept */
  int64_t n_events, max_events;
  double origin_ms, started_ms; /* the clock at creation; at the current call's start */
};

/* A profile for n_sites call sites keeping up to max_events trace events; NULL on no memory. */
KnRtProfile *kn_rt_profile_new(int n_sites, int64_t max_events);
void kn_rt_profile_free(KnRtProfile *p);
void kn_rt_profile_reset(KnRtProfile *p); /* zero the counts and drop the events */
/* Called by generated entries around kernel call `site` when ctx->profile is set. */
void kn_rt_profile_begin(KnRtCtx *ctx, int32_t site);
void kn_rt_profile_end(KnRtCtx *ctx, int32_t site);

/* The body of a parallel loop: runs iterations [begin, end) with the kernel's closure. */
typedef void (*KnRtBody)(void *closure, int64_t begin, int64_t end);

/* Runs body over [0, n) split into chunks of at least grain iterations across ctx->threads
 * threads; runs inline when one thread or one chunk suffices. */
void kn_rt_parallel_for(KnRtCtx *ctx, int64_t n, int64_t grain, KnRtBody body, void *closure);

/* Records a kernel failure (an index out of range, say) as "msg (got value)" in ctx unless one is recorded already;
 * returns status so generated code can `return kn_rt_fail(...)`. */
int32_t kn_rt_fail(KnRtCtx *ctx, int32_t status, const char *msg, int64_t value);

/* ---- data-dependent ops (runtime/rt_dynamic.c): count, allocate, then fill ---- */
/* Elements of x (elem_bits wide; is_float: -0.0 is zero) that are not zero. */
int64_t kn_rt_count_nonzero(const void *x, int64_t numel, int elem_bits, int is_float);
/* NonZero: out is int64 [rank, count], the coordinates of each non-zero element in row-major order. */
void kn_rt_nonzero(const void *x, int rank, const int64_t *dims, int elem_bits, int is_float,
                   int64_t count, int64_t *out);
/* Compress: x viewed as [outer, axis_len, inner]; keeps the rows j < n_cond with cond[j] != 0. */
void kn_rt_compress(const void *x, int64_t outer, int64_t axis_len, int64_t inner, int64_t elem_size,
                    const unsigned char *cond, int64_t n_cond, void *out);

/* ---- sorting (runtime/rt_sort.c); dtype is the ONNX dtype code ---- */
/* TopK over x viewed as [outer, n, inner] along n: the k largest (or smallest) elements in order,
 * ties by lower index; values has x's dtype (elem_size bytes), indices int64. */
int32_t kn_rt_top_k(KnRtCtx *ctx, const void *x, int32_t dtype, int64_t outer, int64_t n, int64_t inner,
                    int64_t k, int32_t largest, void *values, int64_t *indices, int32_t elem_size);

/* Unique slices of x viewed as [outer, n, inner] along n (outer = inner = 1: unique elements).
 * Returns how many (-1 on out of memory); first[g] is the first index of unique slice g (in
 * ascending order when sorted, else in order of first occurrence), inverse[j] the unique slice of
 * slice j, counts[g] its occurrences. first and counts need room for n entries. */
int64_t kn_rt_unique(const void *x, int32_t dtype, int64_t outer, int64_t n, int64_t inner, int32_t sorted,
                     int64_t *first, int64_t *inverse, int64_t *counts);

/* NonMaxSuppression (runtime/rt_nms.c) on f32 boxes [batches, n, 4] and scores [batches,
 * classes, n]; writes [count, 3] rows (batch, class, box) to out, which needs room for
 * batches * classes * min(n, max_per_class) rows. Returns count, -1 on out of memory. */
int64_t kn_rt_nms(const float *boxes, const float *scores, int64_t batches, int64_t classes, int64_t n,
                  int64_t max_per_class, float iou_threshold, float score_threshold, int32_t has_score_threshold,
                  int32_t center_point_box, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
