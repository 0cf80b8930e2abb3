/* bench.h - private to tools/: what `kiln bench` measures (tools/cmd_bench.c) and how it reports
 * it (tools/bench_report.c). */
#ifndef KILN_TOOLS_BENCH_H
#define KILN_TOOLS_BENCH_H

#include "tools/cli_exec.h"

/* One kernel call site of the compiled entry, as profiled (graph node order). */
typedef struct BenchKernel {
  const char *op, *name, *output; /* its node's op, name and output type ("f32[1,64]"); copies,
                                   * since the compiled graph goes with the runner */
  const char *fused;               /* the ops a fusion pass merged into it ("MatMul+Add+Relu"), or "" */
  double ms_per_run;   /* mean wall time per profiled run */
  double min_ms;       /* fastest single call */
  double flops;        /* floating-point operations per call, 0 when not estimated */
} BenchKernel;

/* One configuration measured: compile once, warm up, time iters runs. */
typedef struct BenchResult {
  const char *label;        /* ablation: the pass switched off; NULL for the baseline */
  double compile_ms;        /* passes + plan + emit + LLVM optimize + JIT link */
  double first_run_ms;      /* kn_runner_new up to the first result (compile and one run) */
  double min_ms, median_ms, p90_ms, max_ms, mean_ms;
  int iters;
  size_t arena_bytes;       /* intermediate values of one run (0 when the model runs in stages) */
  bool staged;
  int nodes;                /* nodes of the compiled graph */
  size_t weight_bytes;      /* the loaded model's initializers */
  KnPipeline pipeline;      /* the passes' records (--time-passes) */
  BenchKernel *kernels;     /* --profile / the kernel table: n_kernels entries, else NULL */
  int n_kernels;
  int profiled_runs;
  KnRtTraceEvent *events;   /* the first profiled calls, for --profile trace.json */
  int64_t n_events;
} BenchResult;

typedef struct BenchArgs {
  const char *model, *inputs_dir, *profile_path;
  const char *input_specs[256];
  int n_input_specs;
  int warmup, iters, top;
  bool json, time_passes, ablate, kernels;
  CliExecOptions exec;
} BenchArgs;

/* Everything the report needs besides the results. */
typedef struct BenchReport {
  const BenchArgs *args;
  const BenchResult *base;
  const BenchResult *ablation; /* one per pass of base's pipeline that ran, n_ablation of them */
  int n_ablation;
  size_t peak_rss_bytes, rss_bytes; /* getrusage's maximum; current RSS at the end */
} BenchReport;

double bench_node_flops(const KnNode *n);
void bench_print_text(const BenchReport *r);
int bench_print_json(const BenchReport *r);
/* Writes the profiled calls as a Chrome trace (chrome://tracing, Perfetto) to path, atomically. */
KnStatus bench_write_trace(const char *path, const BenchResult *res, KnError *err);

#endif
