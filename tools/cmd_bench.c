/* cmd_bench.c - `kiln bench`: compile time, latency distribution, memory and a per-kernel profile
 * of one model, and with --ablate the same with each graph pass switched off in turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tools/bench.h"

static const char bench_usage[] =
    "usage: kiln bench MODEL [--inputs DIR] [--input NAME=FILE]... [--threads N] [--warmup W]\n"
    "                  [--iters K] [--json] [--profile TRACE.json] [--kernels] [--top N]\n"
    "                  [--time-passes] [--ablate] [-O0..-O3] [--passes=A,B] [--disable-pass=A,B]\n"
    "Compiles MODEL once and times K runs after W warm-up runs (same inputs every run).\n"
    "  --inputs DIR / --input NAME=FILE  inputs as for kiln run; missing ones are deterministic\n"
    "                          pseudo-random data of the declared shape (unknown dims: 1, or --shape)\n"
    "  --warmup W              untimed runs first (default 10)\n"
    "  --iters K               timed runs (default 100)\n"
    "  --json                  one JSON object on stdout instead of the text report\n"
    "  --kernels               per-kernel time profile (K more runs, with timers around each kernel)\n"
    "  --top N                 kernels listed in the text report (default 15)\n"
    "  --profile FILE          also write the profiled calls as a Chrome trace (implies --kernels)\n"
    "  --time-passes           wall time and top-level node counts before/after for each pass\n"
    "  --ablate                measure again with each pass that ran switched off, one at a time\n" CLI_EXEC_USAGE;

static int parse_int_option(const char *v, int lo, int *out) {
  char *end;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || end == v || *end || n < lo || n > 100000000) return -1;
  *out = (int)n;
  return 1;
}

/* Options of kiln bench itself: 1 taken, 0 not one of them, -1 bad value. */
static int take_bench_option(int argc, char **argv, int *i, BenchArgs *b) {
  const char *arg = argv[*i], *v = NULL;
  int took;
  if ((took = cli_take_value(argc, argv, i, "--warmup", &v)) != 0) return took < 0 ? -1 : parse_int_option(v, 0, &b->warmup);
  if ((took = cli_take_value(argc, argv, i, "--iters", &v)) != 0) return took < 0 ? -1 : parse_int_option(v, 1, &b->iters);
  if ((took = cli_take_value(argc, argv, i, "--top", &v)) != 0) return took < 0 ? -1 : parse_int_option(v, 1, &b->top);
  if ((took = cli_take_value(argc, argv, i, "--inputs", &v)) != 0) return took < 0 ? -1 : (b->inputs_dir = v, 1);
  if ((took = cli_take_value(argc, argv, i, "--profile", &v)) != 0) return took < 0 ? -1 : (b->profile_path = v, b->kernels = true, 1);
  if ((took = cli_take_value(argc, argv, i, "--input", &v)) != 0) {
    if (took < 0 || !strchr(v, '=') || b->n_input_specs >= 256) return -1;
    b->input_specs[b->n_input_specs++] = v;
    return 1;
  }
  if (strcmp(arg, "--json") == 0) return b->json = true, 1;
  if (strcmp(arg, "--kernels") == 0) return b->kernels = true, 1;
  if (strcmp(arg, "--time-passes") == 0) return b->time_passes = true, 1;
  if (strcmp(arg, "--ablate") == 0) return b->ablate = true, 1;
  return 0;
}

static int parse_args(int argc, char **argv, KnArena *a, BenchArgs *b, bool *done) {
  *b = (BenchArgs){.warmup = 10, .iters = 100, .top = 15};
  b->exec.run.opt_level = 3;
  b->exec.threads = 1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *bad = NULL;
    int took;
    if (cli_is_help(arg)) {
      fputs(bench_usage, stdout);
      *done = true;
      return CLI_OK;
    }
    if ((took = cli_take_exec_option(argc, argv, &i, a, &b->exec, &bad)) != 0) {
      if (took < 0) return cli_usage_error("bench", bench_usage, "%s", bad);
    } else if ((took = take_bench_option(argc, argv, &i, b)) != 0) {
      if (took < 0) return cli_usage_error("bench", bench_usage, "bad value for %s", arg);
    } else if (arg[0] == '-' && arg[1]) {
      return cli_usage_error("bench", bench_usage, "unknown option '%s'", arg);
    } else if (b->model) {
      return cli_usage_error("bench", bench_usage, "more than one model given ('%s')", arg);
    } else {
      b->model = arg;
    }
  }
  if (!b->model) return cli_usage_error("bench", bench_usage, "no model given");
  return CLI_OK;
}

/* ---- inputs ------------------------------------------------------------------------------- */
static uint64_t next_random(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Floats uniform in [-1, 1), integers in [0, 10) (valid token ids and indices for most models),
 * bools 0/1; other types stay zero. */
static void fill_random(KnTensor *t, int which) {
  uint64_t s = 0x6b696c6e00ull + (uint64_t)which;
  for (int64_t i = 0; i < t->numel; i++) {
    uint64_t r = next_random(&s);
    double f = (double)(r >> 11) / (double)(1ull << 52) - 1.0;
    switch (t->dtype) {
    case KN_F32: ((float *)t->data)[i] = (float)f; break;
    case KN_F64: ((double *)t->data)[i] = f; break;
    case KN_I64: ((int64_t *)t->data)[i] = (int64_t)(r % 10); break;
    case KN_I32: ((int32_t *)t->data)[i] = (int32_t)(r % 10); break;
    case KN_U8: case KN_I8: ((uint8_t *)t->data)[i] = (uint8_t)(r % 10); break;
    case KN_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)(r & 1); break;
    default: break;
    }
  }
}

static const KnShapeBinding *find_binding(const CliExecOptions *o, const char *name) {
  for (int i = 0; i < o->n_shapes; i++)
    if (strcmp(o->shapes[i].name, name) == 0) return &o->shapes[i];
  return NULL;
}

/* Inputs nobody gave: the --shape binding, else the declared shape with unknown dims as 1. */
static KnStatus make_missing_inputs(const BenchArgs *b, const KnGraph *g, KnArena *a, KnTensor **in, KnError *err) {
  int feed[g->n_inputs + 1];
  int n = cli_feed_inputs(g, feed);
  for (int k = 0; k < n; k++) {
    const KnValue *v = g->inputs[feed[k]];
    if (in[feed[k]]) continue;
    if (v->type.kind != KN_TYPE_TENSOR || v->type.shape.rank < 0)
      return kn_fail(err, KN_ERR_INVALID, "input %s: give it with --input or --inputs (no tensor shape declared)", v->name);
    const KnShapeBinding *bind = find_binding(&b->exec, v->name);
    int rank = bind ? bind->rank : v->type.shape.rank;
    int64_t dims[rank + 1];
    for (int d = 0; d < rank; d++) {
      KnDim dim = v->type.shape.dims[d];
      dims[d] = bind ? bind->dims[d] : ir_dim_is_const(dim) ? dim.value : 1;
    }
    if (!(in[feed[k]] = ir_tensor_new(a, v->type.dtype, rank, dims, err))) return err->status;
    fill_random(in[feed[k]], k);
  }
  return KN_OK;
}

static KnStatus read_inputs(const BenchArgs *b, const KnGraph *g, KnArena *a, KnTensor **in, KnError *err) {
  KnStatus st = b->inputs_dir ? cli_read_input_dir(g, b->inputs_dir, a, in, err) : KN_OK;
  if (st == KN_OK) st = cli_read_named_inputs(g, b->input_specs, b->n_input_specs, a, in, err);
  return st == KN_OK ? make_missing_inputs(b, g, a, in, err) : st;
}

/* ---- timing ------------------------------------------------------------------------------- */
static int compare_doubles(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static void summarize(double *ms, int n, BenchResult *res) {
  qsort(ms, (size_t)n, sizeof *ms, compare_doubles);
  double sum = 0;
  for (int i = 0; i < n; i++) sum += ms[i];
  res->iters = n;
  res->min_ms = ms[0];
  res->max_ms = ms[n - 1];
  res->median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  int p90 = (int)((n - 1) * 0.9 + 0.5);
  res->p90_ms = ms[p90];
  res->mean_ms = sum / n;
}

/* Runs `runs` times; with times, records each run's wall time. Each run's outputs go into an
 * arena freed after it, as a serving loop consumes and frees them: keeping every run's outputs
 * would hand each run fresh pages, and their page faults (costly in a VM) would be timed. */
static KnStatus run_many(KnRunner *r, KnRtCtx *ctx, KnTensor **in, int runs, double *times, KnError *err) {
  KnTensor **out = calloc((size_t)kn_runner_model(r)->graph->n_outputs + 1, sizeof *out);
  KnStatus st = out ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; st == KN_OK && i < runs; i++) {
    KnArena *a = ir_arena_new();
    if (!a) {
      st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
      break;
    }
    double t0 = cli_now_ms();
    st = kn_runner_run(r, ctx, in, a, out, err);
    if (times) times[i] = cli_now_ms() - t0;
    ir_arena_free(a);
  }
  free(out);
  return st;
}

/* Profiles `runs` runs of the program the runner compiled: per call site of its entry. */
static KnStatus profile_kernels(const BenchArgs *b, KnRunner *r, KnRtCtx *ctx, KnTensor **in, KnArena *a,
                                BenchResult *res, KnError *err) {
  const KnProgram *p = kn_runner_last_program(r);
  if (!p) return KN_OK; /* staged: no single entry to profile */
  const KnGraph *g = cg_program_graph(p);
  int64_t max_events = b->profile_path ? (int64_t)g->n_nodes * 20 : 0;
  KnRtProfile *prof = kn_rt_profile_new(g->n_nodes, max_events);
  res->kernels = ir_arena_calloc(a, (size_t)g->n_nodes + 1, sizeof *res->kernels);
  if (!prof || !res->kernels) {
    kn_rt_profile_free(prof);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  ctx->profile = prof;
  KnStatus st = run_many(r, ctx, in, b->iters, NULL, err);
  ctx->profile = NULL;
  for (int i = 0; st == KN_OK && i < g->n_nodes; i++) {
    const KnRtProfileSite *s = &prof->sites[i];
    const KnNode *n = g->nodes[i];
    char type[128] = "?";
    if (n->n_outputs > 0 && n->outputs[0]) ir_type_format(&n->outputs[0]->type, type, sizeof type);
    res->kernels[i] = (BenchKernel){ir_ops[n->op].name, ir_arena_strdup(a, n->name ? n->name : ""),
                                    ir_arena_strdup(a, type), ir_arena_strdup(a, ir_attr_string(n, "fused", "")),
                                    s->calls ? s->total_ms / b->iters : 0, s->min_ms, bench_node_flops(n)};
    const BenchKernel *bk = &res->kernels[i];
    if (!bk->name || !bk->output || !bk->fused) st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  res->n_kernels = g->n_nodes;
  res->profiled_runs = b->iters;
  if (st == KN_OK && prof->n_events) {
    res->events = ir_arena_calloc(a, (size_t)prof->n_events, sizeof *res->events);
    if (res->events) memcpy(res->events, prof->events, sizeof *res->events * (size_t)prof->n_events);
    res->n_events = res->events ? prof->n_events : 0;
  }
  kn_rt_profile_free(prof);
  return st;
}

static double program_compile_ms(const KnRunner *r) {
  const KnProgram *p = kn_runner_last_program(r);
  const KnPipeline *pl = kn_runner_last_pipeline(r);
  if (!p || !pl) return -1;
  const CgStats *s = cg_program_stats(p);
  double ms = s->plan_ms + s->emit_ms + s->optimize_ms + s->jit_ms;
  for (int i = 0; i < pl->n_records; i++) ms += pl->records[i].wall_ms;
  return ms;
}

/* Loads, compiles (options o), warms up and times the model; fills res. */
static KnStatus measure(const BenchArgs *b, const KnRunOptions *o, KnArena *a, bool profile, BenchResult *res,
                        KnError *err) {
  KnModel *m;
  KnStatus st = fe_load_model(b->model, &b->exec.limits, &m, err);
  if (st != KN_OK) return st;
  KnTensor **in = ir_arena_calloc(a, (size_t)m->graph->n_inputs + 1, sizeof *in);
  double *times = ir_arena_calloc(a, (size_t)b->iters, sizeof *times);
  st = in && times ? read_inputs(b, m->graph, a, in, err) : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; i < m->graph->n_inits; i++) res->weight_bytes += m->graph->inits[i]->init->nbytes;
  KnRunner *r = NULL;
  double t0 = cli_now_ms();
  if (st == KN_OK) st = kn_runner_new(m, o, &r, err);
  if (!r) ir_model_free(m); /* the runner owns it once made */
  KnRtCtx ctx = {.threads = b->exec.threads, .keep_arena = 1};
  if (st == KN_OK) st = run_many(r, &ctx, in, 1, NULL, err);
  res->first_run_ms = cli_now_ms() - t0;
  if (st == KN_OK) st = run_many(r, &ctx, in, b->warmup, NULL, err);
  if (st == KN_OK) st = run_many(r, &ctx, in, b->iters, times, err);
  if (st == KN_OK) {
    summarize(times, b->iters, res);
    const KnProgram *p = kn_runner_last_program(r);
    const KnPipeline *pl = kn_runner_last_pipeline(r);
    res->staged = kn_runner_last_staged(r);
    res->arena_bytes = p ? cg_program_stats(p)->arena_bytes : 0;
    res->nodes = p ? cg_program_graph(p)->n_nodes : 0;
    if (pl) res->pipeline = *pl;
    res->compile_ms = program_compile_ms(r);
    if (res->compile_ms < 0) res->compile_ms = res->first_run_ms - res->median_ms; /* staged */
  }
  if (st == KN_OK && profile) st = profile_kernels(b, r, &ctx, in, a, res, err);
  kn_rt_ctx_release(&ctx);
  kn_runner_free(r);
  return st;
}

/* --ablate: each pass that ran in the baseline, switched off (on top of --disable-pass). */
static KnStatus ablate(const BenchArgs *b, KnArena *a, const BenchResult *base, BenchResult **out, int *n,
                       KnError *err) {
  const KnPipeline *pl = &base->pipeline;
  *out = ir_arena_calloc(a, (size_t)pl->n_records + 1, sizeof **out);
  if (!*out) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  *n = 0;
  for (int i = 0; i < pl->n_records; i++) {
    const char *name = pl->records[i].name;
    KnRunOptions o = b->exec.run;
    const char *prev = o.disabled;
    o.disabled = prev && *prev ? ir_arena_printf(a, "%s,%s", prev, name) : name;
    if (!o.disabled) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    BenchResult *r = &(*out)[(*n)++];
    r->label = name;
    KnStatus st = measure(b, &o, a, false, r, err);
    if (st != KN_OK) return kn_error_prefix(err, "with %s off: ", name), st;
  }
  return KN_OK;
}

static size_t current_rss(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static int bench_model(BenchArgs *b, KnArena *a) {
  KnError err = {0};
  BenchResult base = {0};
  BenchReport rep = {.args = b, .base = &base};
  KnStatus st = measure(b, &b->exec.run, a, b->kernels, &base, &err);
  rep.rss_bytes = current_rss(); /* first: the peak read after it then covers it */
  struct rusage ru;
  if (st == KN_OK && getrusage(RUSAGE_SELF, &ru) == 0) rep.peak_rss_bytes = (size_t)ru.ru_maxrss * 1024;
  if (rep.peak_rss_bytes < rep.rss_bytes) rep.peak_rss_bytes = rep.rss_bytes; /* statm counts pages maxrss may not */
  BenchResult *abl = NULL;
  if (st == KN_OK && b->ablate) st = ablate(b, a, &base, &abl, &rep.n_ablation, &err);
  rep.ablation = abl;
  if (st == KN_OK && b->profile_path) st = bench_write_trace(b->profile_path, &base, &err);
  if (st != KN_OK) {
    kn_error_prefix(&err, "%s: ", b->model);
    return cli_fail_error(&err);
  }
  if (b->json) return bench_print_json(&rep);
  bench_print_text(&rep);
  return CLI_OK;
}

int cmd_bench(int argc, char **argv) {
  KnArena *a = ir_arena_new();
  if (!a) return cli_fail("out of memory");
  BenchArgs b;
  bool done = false;
  int rc = parse_args(argc, argv, a, &b, &done);
  if (rc == CLI_OK && !done) rc = bench_model(&b, a);
  ir_arena_free(a);
  return rc;
}
