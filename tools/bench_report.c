/* bench_report.c - `kiln bench`'s output: the text report, the JSON object (--json) and the Chrome
 * trace (--profile), plus the FLOP estimate behind the GFLOP/s column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "frontend/frontend.h"
#include "tools/bench.h"

/* ---- FLOPs: the ops whose work is not one operation per output element -------------------- */
static double numel_of(const KnValue *v) {
  if (!v || v->type.shape.rank < 0) return 0;
  double n = 1;
  for (int d = 0; d < v->type.shape.rank; d++) n *= (double)v->type.shape.dims[d].value;
  return n;
}

static int64_t dim_of(const KnValue *v, int d) {
  const KnShape *s = &v->type.shape;
  if (d < 0) d += s->rank;
  return d >= 0 && d < s->rank ? s->dims[d].value : 0;
}

/* Multiply-adds count 2; an estimate (bias, padding and activation are ignored). */
double bench_node_flops(const KnNode *n) {
  if (n->n_inputs < 2 || n->n_outputs < 1 || !n->inputs[0] || !n->inputs[1] || !n->outputs[0]) return 0;
  const KnValue *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  double per_out = 1; /* Conv: weights feeding one output element, C_in/group x kernel */
  switch (n->op) {
  case KN_OP_MatMul:
  case KN_OP_FusedGemm: /* kiln's: A [..., K] x W [K, N] */
    return 2 * numel_of(y) * (double)dim_of(x, -1);
  case KN_OP_Gemm: return 2 * numel_of(y) * (double)(ir_attr_int(n, "transA", 0) ? dim_of(x, 0) : dim_of(x, 1));
  case KN_OP_Conv:
  case KN_OP_FusedConv:
  case KN_OP_ConvTranspose:
    for (int d = 1; d < w->type.shape.rank; d++) per_out *= (double)dim_of(w, d);
    if (ir_attr_int(n, "packed", 0) > 0) /* W [M/16, C/16, KH, KW, 16, 16]; X [N, C, H, W] when C < 16 */
      per_out = (x->type.shape.rank == 4 ? (double)dim_of(x, 1) : (double)dim_of(w, 1) * 16) * (double)dim_of(w, 2) *
                (double)dim_of(w, 3);
    /* ConvTranspose: each input element scatters into C_out/group x kernel */
    return 2 * (n->op == KN_OP_ConvTranspose ? numel_of(x) : numel_of(y)) * per_out;
  default: return 0;
  }
}

/* ---- text --------------------------------------------------------------------------------- */
static int compare_kernels(const void *x, const void *y) {
  double a = ((const BenchKernel *)x)->ms_per_run, b = ((const BenchKernel *)y)->ms_per_run;
  return a > b ? -1 : a < b;
}

static void kernel_label(const BenchKernel *k, char *buf, size_t size) {
  snprintf(buf, size, "%s%s%s%s %s -> %s", k->op, *k->fused ? " (" : "", k->fused, *k->fused ? ")" : "",
           *k->name ? k->name : "(unnamed)", k->output);
}

static void print_kernels(const BenchReport *r) {
  const BenchResult *b = r->base;
  BenchKernel *k = malloc(sizeof *k * ((size_t)b->n_kernels + 1));
  if (!k) return;
  memcpy(k, b->kernels, sizeof *k * (size_t)b->n_kernels);
  qsort(k, (size_t)b->n_kernels, sizeof *k, compare_kernels);
  double total = 0;
  for (int i = 0; i < b->n_kernels; i++) total += k[i].ms_per_run;
  int shown = b->n_kernels < r->args->top ? b->n_kernels : r->args->top;
  printf("kernels     %d, %d shown, %d profiled runs (%.3f ms/run inside kernels)\n", b->n_kernels, shown,
         b->profiled_runs, total);
  printf("   time%%    ms/run  GFLOP/s  kernel\n");
  for (int i = 0; i < shown; i++) {
    char label[256], rate[16] = "-";
    kernel_label(&k[i], label, sizeof label);
    if (k[i].flops > 0 && k[i].ms_per_run > 0) snprintf(rate, sizeof rate, "%.1f", k[i].flops / k[i].ms_per_run / 1e6);
    printf("  %6.2f %9.4f %8s  %s\n", total > 0 ? 100 * k[i].ms_per_run / total : 0, k[i].ms_per_run, rate, label);
  }
  free(k);
}

static void print_passes(const KnPipeline *p) {
  printf("passes      %-16s %9s %8s %8s %9s\n", "name", "ms", "before", "after", "rewrites");
  for (int i = 0; i < p->n_records; i++) {
    const KnPassRecord *rec = &p->records[i];
    printf("            %-16s %9.3f %8d %8d %9lld\n", rec->name, rec->wall_ms, rec->nodes_before, rec->nodes_after,
           (long long)rec->rewrites);
  }
}

static void print_ablation(const BenchReport *r) {
  printf("ablation    %-16s %11s %9s %11s\n", "pass off", "median ms", "delta", "compile ms");
  printf("            %-16s %11.4f %9s %11.1f\n", "(none)", r->base->median_ms, "", r->base->compile_ms);
  for (int i = 0; i < r->n_ablation; i++) {
    const BenchResult *a = &r->ablation[i];
    printf("            %-16s %11.4f %+8.1f%% %11.1f\n", a->label, a->median_ms,
           100 * (a->median_ms / r->base->median_ms - 1), a->compile_ms);
  }
}

void bench_print_text(const BenchReport *r) {
  const BenchArgs *a = r->args;
  const BenchResult *b = r->base;
  printf("model       %s (-O%d, %d thread%s, %d warm-up + %d timed runs%s)\n", a->model, a->exec.run.opt_level,
         a->exec.threads, a->exec.threads == 1 ? "" : "s", a->warmup, b->iters, b->staged ? ", runs in stages" : "");
  printf("compile     %.1f ms (first result after %.1f ms)\n", b->compile_ms, b->first_run_ms);
  printf("latency     min %.4f  median %.4f  p90 %.4f  max %.4f  mean %.4f ms\n", b->min_ms, b->median_ms, b->p90_ms,
         b->max_ms, b->mean_ms);
  printf("memory      peak RSS %.1f MB, RSS now %.1f MB, arena %.3f MB, weights %.3f MB\n", r->peak_rss_bytes / 1e6,
         r->rss_bytes / 1e6, b->arena_bytes / 1e6, b->weight_bytes / 1e6);
  if (b->n_kernels) print_kernels(r);
  else if (a->kernels) printf("kernels     not profiled: the model runs in stages\n");
  if (a->time_passes) print_passes(&b->pipeline);
  if (a->ablate) print_ablation(r);
}

/* ---- JSON --------------------------------------------------------------------------------- */
static cJSON *kernels_json(const BenchResult *b) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < b->n_kernels; i++) {
    const BenchKernel *k = &b->kernels[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "site", i);
    cJSON_AddStringToObject(o, "op", k->op);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "output", k->output);
    cJSON_AddStringToObject(o, "fused", k->fused);
    cJSON_AddNumberToObject(o, "ms_per_run", k->ms_per_run);
    cJSON_AddNumberToObject(o, "min_ms", k->min_ms);
    cJSON_AddNumberToObject(o, "flops", k->flops);
    if (k->flops > 0 && k->ms_per_run > 0) cJSON_AddNumberToObject(o, "gflops", k->flops / k->ms_per_run / 1e6);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static cJSON *passes_json(const KnPipeline *p) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < p->n_records; i++) {
    const KnPassRecord *rec = &p->records[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", rec->name);
    cJSON_AddNumberToObject(o, "wall_ms", rec->wall_ms);
    cJSON_AddNumberToObject(o, "nodes_before", rec->nodes_before);
    cJSON_AddNumberToObject(o, "nodes_after", rec->nodes_after);
    cJSON_AddNumberToObject(o, "rewrites", (double)rec->rewrites);
    cJSON_AddBoolToObject(o, "changed", rec->changed);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

/* The latency and size keys of one measured configuration. */
static void add_result(cJSON *o, const BenchResult *b) {
  cJSON_AddNumberToObject(o, "compile_ms", b->compile_ms);
  cJSON_AddNumberToObject(o, "first_run_ms", b->first_run_ms);
  cJSON_AddNumberToObject(o, "min_ms", b->min_ms);
  cJSON_AddNumberToObject(o, "median_ms", b->median_ms);
  cJSON_AddNumberToObject(o, "p90_ms", b->p90_ms);
  cJSON_AddNumberToObject(o, "max_ms", b->max_ms);
  cJSON_AddNumberToObject(o, "mean_ms", b->mean_ms);
  cJSON_AddNumberToObject(o, "arena_bytes", (double)b->arena_bytes);
  cJSON_AddNumberToObject(o, "nodes", b->nodes);
  cJSON_AddBoolToObject(o, "staged", b->staged);
}

static cJSON *ablation_json(const BenchReport *r) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < r->n_ablation; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "disabled", r->ablation[i].label);
    add_result(o, &r->ablation[i]);
    cJSON_AddNumberToObject(o, "delta_pct", 100 * (r->ablation[i].median_ms / r->base->median_ms - 1));
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

int bench_print_json(const BenchReport *r) {
  const BenchArgs *a = r->args;
  cJSON *o = cJSON_CreateObject();
  if (!o) return cli_fail("out of memory");
  cJSON_AddStringToObject(o, "runtime", "kiln");
  cJSON_AddStringToObject(o, "model", a->model);
  cJSON_AddNumberToObject(o, "opt_level", a->exec.run.opt_level);
  cJSON_AddNumberToObject(o, "threads", a->exec.threads);
  cJSON_AddNumberToObject(o, "warmup", a->warmup);
  cJSON_AddNumberToObject(o, "iters", r->base->iters);
  add_result(o, r->base);
  cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)r->peak_rss_bytes);
  cJSON_AddNumberToObject(o, "rss_bytes", (double)r->rss_bytes);
  cJSON_AddNumberToObject(o, "weight_bytes", (double)r->base->weight_bytes);
  if (a->kernels) cJSON_AddItemToObject(o, "kernels", kernels_json(r->base));
  if (a->time_passes) cJSON_AddItemToObject(o, "passes", passes_json(&r->base->pipeline));
  if (a->ablate) cJSON_AddItemToObject(o, "ablation", ablation_json(r));
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) return cli_fail("out of memory");
  puts(text);
  free(text);
  return CLI_OK;
}

/* ---- Chrome trace ------------------------------------------------------------------------- */
KnStatus bench_write_trace(const char *path, const BenchResult *res, KnError *err) {
  cJSON *root = cJSON_CreateObject(), *events = cJSON_AddArrayToObject(root, "traceEvents");
  if (!root || !events) {
    cJSON_Delete(root);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  for (int64_t i = 0; i < res->n_events; i++) {
    const KnRtTraceEvent *e = &res->events[i];
    if (e->site < 0 || e->site >= res->n_kernels) continue;
    const BenchKernel *k = &res->kernels[e->site];
    char label[256];
    kernel_label(k, label, sizeof label);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", label);
    cJSON_AddStringToObject(o, "cat", k->op);
    cJSON_AddStringToObject(o, "ph", "X");
    cJSON_AddNumberToObject(o, "ts", e->start_us);
    cJSON_AddNumberToObject(o, "dur", e->dur_us);
    cJSON_AddNumberToObject(o, "pid", 1);
    cJSON_AddNumberToObject(o, "tid", 1);
    cJSON_AddItemToArray(events, o);
  }
  cJSON_AddStringToObject(root, "displayTimeUnit", "ms");
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!text) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  KnStatus st = fe_write_file_atomic(path, text, strlen(text), err);
  free(text);
  return st;
}
