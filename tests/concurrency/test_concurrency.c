/* test_concurrency.c - one compiled model run from many threads at once: every run's outputs must
 * equal, byte for byte, those of a single-threaded reference run (run under ThreadSanitizer too).
 * usage: test_concurrency jit MODEL THREADS RUNS [--lazy|--cold|--own]  (one KnRunner shared
 *          by every thread, or one each with --own; see JitMode)
 *        test_concurrency aot MODEL THREADS RUNS   (the linked-in `kiln compile --name model`
 *                                                   object, one KnAotModel per thread; MODEL is
 *                                                   its source, whose JIT outputs it must equal) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/runner.h"
#include "frontend/frontend.h"
#include "kiln_aot.h"
#include "model.h"

#define MAX_THREADS 64
#define MAX_IO 64

/* How the shared runner gets its program: compiled up front for the declared shapes (--shape),
 * at the reference run (--lazy), or by the threads themselves, all at once (--cold); or each
 * thread loads the model and makes a runner of its own, all at once (--own). */
typedef enum JitMode { JIT_PRECOMPILE, JIT_LAZY, JIT_COLD, JIT_OWN } JitMode;

/* What every thread shares: the inputs, the reference outputs and the thing that runs. */
typedef struct Shared {
  const char *path;
  JitMode mode;
  KnRunner *runner;           /* jit */
  const KnAotInfo *info;      /* aot */
  int n_in, n_out, runs;
  const void *in_data[MAX_IO];
  KnTensor *in[MAX_IO];       /* jit inputs (in_data points into them) */
  void *ref[MAX_IO];          /* reference outputs */
  size_t ref_bytes[MAX_IO];
} Shared;

typedef struct Worker {
  pthread_t tid;
  const Shared *sh;
  int index;
  int errors, mismatches;     /* written by the worker only, read after join */
  char first[512];            /* its first failure, for the report */
} Worker;

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Deterministic pseudo-random data for input `which`: floats in [-1, 1) with every third one
 * zero (so NonZero and Compress have work), integers in [0, 10) (valid Gather indices and token
 * ids), bools 0/1; other types get small random bytes. */
static void fill_input(void *data, KnDtype dtype, int64_t numel, size_t nbytes, int which) {
  uint64_t s = 0x6b696c6eull + (uint64_t)which * 7919u;
  unsigned char *b = data;
  for (int64_t i = 0; i < numel; i++) {
    uint64_t r = splitmix64(&s);
    double f = i % 3 == 0 ? 0.0 : (double)(r >> 11) / (double)(1ull << 52) - 1.0;
    int64_t v = (int64_t)(r % 10);
    switch (dtype) {
    case KN_F32: ((float *)data)[i] = (float)f; break;
    case KN_F64: ((double *)data)[i] = f; break;
    case KN_I64: ((int64_t *)data)[i] = v; break;
    case KN_I32: ((int32_t *)data)[i] = (int32_t)v; break;
    case KN_BOOL: b[i] = (unsigned char)(r & 1); break;
    default: break;
    }
  }
  if (dtype != KN_F32 && dtype != KN_F64 && dtype != KN_I64 && dtype != KN_I32 && dtype != KN_BOOL)
    for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)(splitmix64(&s) & 0x3f);
}

/* Compares one run's outputs with the reference; counts and remembers the first difference. */
static void compare(Worker *w, int run, void *const *outs, const size_t *bytes) {
  const Shared *sh = w->sh;
  for (int i = 0; i < sh->n_out; i++) {
    if (bytes[i] == sh->ref_bytes[i] && (bytes[i] == 0 || memcmp(outs[i], sh->ref[i], bytes[i]) == 0)) continue;
    if (w->mismatches++ == 0 && w->errors == 0)
      snprintf(w->first, sizeof w->first, "thread %d run %d: output %d differs from the reference (%zu vs %zu bytes)",
               w->index, run, i, bytes[i], sh->ref_bytes[i]);
  }
}

static void record_error(Worker *w, int run, const char *msg) {
  if (w->errors++ == 0 && w->mismatches == 0)
    snprintf(w->first, sizeof w->first, "thread %d run %d: %.400s", w->index, run, msg);
}

/* ---- JIT: one runner, a context and an output arena per thread ----------------------------- */
/* The declared input shapes as --shape bindings, so the runner compiles before the first run. */
static KnStatus make_runner(KnModel *m, bool lazy, KnArena *a, KnRunner **out, KnError *err) {
  const KnGraph *g = m->graph;
  if (lazy) return kn_runner_new(m, &(KnRunOptions){.opt_level = 3}, out, err);
  KnShapeBinding *b = ir_arena_calloc(a, (size_t)g->n_inputs + 1, sizeof *b);
  if (!b) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; i < g->n_inputs; i++) {
    const KnShape *s = &g->inputs[i]->type.shape;
    if (s->rank < 0) return kn_fail(err, KN_ERR_INVALID, "input %s: its rank is not declared", g->inputs[i]->name);
    int64_t *dims = ir_arena_calloc(a, (size_t)s->rank + 1, sizeof *dims);
    if (!dims) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    for (int d = 0; d < s->rank; d++) dims[d] = s->dims[d].value >= 0 ? s->dims[d].value : 1;
    b[i] = (KnShapeBinding){g->inputs[i]->name, s->rank, dims};
  }
  KnRunOptions o = {.opt_level = 3, .shapes = b, .n_shapes = g->n_inputs};
  return kn_runner_new(m, &o, out, err);
}

/* Loads path and makes a runner for it (the runner owns the model). */
static KnStatus load_runner(const char *path, bool lazy, KnArena *a, KnRunner **out, KnError *err) {
  KnModel *m;
  KnStatus st = fe_load_model(path, NULL, &m, err);
  if (st != KN_OK) return st;
  if (m->graph->n_inputs > MAX_IO || m->graph->n_outputs > MAX_IO)
    st = kn_fail(err, KN_ERR_UNSUPPORTED, "more than %d inputs or outputs", MAX_IO);
  if (st == KN_OK) st = make_runner(m, lazy, a, out, err);
  if (st != KN_OK) ir_model_free(m); /* kn_runner_new leaves it to us on failure */
  return st;
}

/* The shared inputs: the declared shapes (an unknown dim taken as 1) and fill_input's data. */
static KnStatus make_inputs(const KnGraph *g, KnArena *a, Shared *sh, KnError *err) {
  sh->n_in = g->n_inputs;
  sh->n_out = g->n_outputs;
  for (int i = 0; i < g->n_inputs; i++) {
    const KnValue *v = g->inputs[i];
    int64_t dims[64];
    int rank = v->type.shape.rank;
    if (rank < 0 || rank > 64) return kn_fail(err, KN_ERR_UNSUPPORTED, "input %s: rank %d", v->name, rank);
    for (int d = 0; d < rank; d++) dims[d] = v->type.shape.dims[d].value >= 0 ? v->type.shape.dims[d].value : 1;
    if (!(sh->in[i] = ir_tensor_new(a, v->type.dtype, rank, dims, err))) return err->status;
    fill_input(sh->in[i]->data, v->type.dtype, sh->in[i]->numel, sh->in[i]->nbytes, i);
    sh->in_data[i] = sh->in[i]->data;
  }
  return KN_OK;
}

/* One single-threaded run of r; its outputs (in a) become the reference. */
static KnStatus reference(KnRunner *r, KnArena *a, Shared *sh, KnError *err) {
  KnRtCtx ctx = {.threads = 1};
  KnTensor *outs[MAX_IO] = {0};
  KnStatus st = kn_runner_run(r, &ctx, sh->in, a, outs, err);
  if (st != KN_OK) return st;
  for (int i = 0; i < sh->n_out; i++) {
    if (!outs[i] || outs[i]->list || outs[i]->dtype == KN_STRING)
      return kn_fail(err, KN_ERR_UNSUPPORTED, "output %d is not a plain tensor", i);
    sh->ref[i] = outs[i]->data;
    sh->ref_bytes[i] = outs[i]->nbytes;
  }
  return KN_OK;
}

/* The shared runner, the inputs and the reference. Cold: the reference comes from a runner of its
 * own, so the threads find the shared one empty and race to compile (and fold constants) first. */
static KnStatus jit_setup(const char *path, JitMode mode, KnArena *a, Shared *sh, KnError *err) {
  KnStatus st = load_runner(path, mode != JIT_PRECOMPILE, a, &sh->runner, err);
  if (st == KN_OK) st = make_inputs(kn_runner_model(sh->runner)->graph, a, sh, err);
  if (st != KN_OK) return st;
  if (mode != JIT_COLD) return reference(sh->runner, a, sh, err);
  KnRunner *ref = NULL;
  st = load_runner(path, true, a, &ref, err);
  if (st == KN_OK) st = reference(ref, a, sh, err);
  kn_runner_free(ref);
  return st;
}

/* Runs r sh->runs times, comparing each run with the reference. One output arena for all of them
 * (a few hundred bytes a run): a fresh one per run costs a 256 KiB chunk, which dominates under
 * TSan. */
static void run_loop(Worker *w, KnRunner *r) {
  KnRtCtx ctx = {.threads = 1}; /* no OpenMP regions: libgomp is not instrumented for TSan */
  KnArena *a = ir_arena_new();
  if (!a) record_error(w, 0, "out of memory");
  for (int run = 0; a && run < w->sh->runs; run++) {
    KnError err = {0};
    KnTensor *outs[MAX_IO] = {0};
    if (kn_runner_run(r, &ctx, w->sh->in, a, outs, &err) != KN_OK) {
      record_error(w, run, err.msg);
      continue;
    }
    /* What a server's stats endpoint reads while other threads run (and --cold threads compile). */
    if (!kn_runner_last_program(r) && !kn_runner_last_staged(r)) record_error(w, run, "no program recorded after a run");
    void *data[MAX_IO];
    size_t bytes[MAX_IO];
    for (int i = 0; i < w->sh->n_out; i++) {
      data[i] = outs[i] ? outs[i]->data : NULL;
      bytes[i] = outs[i] ? outs[i]->nbytes : 0;
    }
    compare(w, run, data, bytes);
  }
  ir_arena_free(a);
}

static void *jit_worker(void *arg) {
  Worker *w = arg;
  if (w->sh->mode != JIT_OWN) {
    run_loop(w, w->sh->runner);
    return NULL;
  }
  /* Its own model and runner, made while the other threads make theirs (servers loading models
   * in parallel: concurrent loads, hook installs and LLVM compiles). */
  KnError err = {0};
  KnRunner *r = NULL;
  KnArena *a = ir_arena_new();
  if (!a) record_error(w, 0, "out of memory");
  else if (load_runner(w->sh->path, false, a, &r, &err) != KN_OK) record_error(w, 0, err.msg);
  else run_loop(w, r);
  kn_runner_free(r);
  ir_arena_free(a);
  return NULL;
}

/* ---- AOT: one KnAotModel per thread -------------------------------------------------------- */
static void *aot_worker(void *arg) {
  Worker *w = arg;
  const Shared *sh = w->sh;
  KnAotModel *m = NULL;
  void *outs[MAX_IO] = {0};
  size_t bytes[MAX_IO];
  if (model_create(&m, NULL) != KN_AOT_OK) {
    record_error(w, 0, kn_aot_last_error());
    return NULL;
  }
  for (int i = 0; i < sh->n_out; i++) {
    bytes[i] = (size_t)sh->info->outputs[i].nbytes;
    if (!(outs[i] = malloc(bytes[i] ? bytes[i] : 1))) record_error(w, 0, "out of memory");
  }
  for (int run = 0; run < sh->runs && w->errors == 0; run++) {
    if (model_run(m, sh->in_data, outs) != KN_AOT_OK) record_error(w, run, kn_aot_last_error());
    else compare(w, run, outs, bytes);
  }
  for (int i = 0; i < sh->n_out; i++) free(outs[i]);
  model_destroy(m);
  return NULL;
}

/* The JIT's outputs for the same inputs become the reference: one single-threaded AOT run must
 * equal them before the threads start (`kiln compile` promises bit-equal results). */
static KnStatus aot_setup(const char *path, KnArena *a, Shared *sh, KnError *err) {
  KnStatus st = jit_setup(path, JIT_PRECOMPILE, a, sh, err);
  if (st != KN_OK) return st;
  sh->info = model_info();
  if (sh->info->n_inputs != sh->n_in || sh->info->n_outputs != sh->n_out)
    return kn_fail(err, KN_ERR_INVALID, "the linked-in model is not %s", path);
  for (int i = 0; i < sh->n_in; i++)
    if ((size_t)sh->info->inputs[i].nbytes != sh->in[i]->nbytes)
      return kn_fail(err, KN_ERR_INVALID, "input %d: the linked-in model wants %lld bytes", i,
                     (long long)sh->info->inputs[i].nbytes);
  Worker w = {.sh = sh, .index = -1};
  aot_worker(&w);
  if (w.errors || w.mismatches) return kn_fail(err, KN_ERR_INTERNAL, "AOT against the JIT: %s", w.first);
  return KN_OK;
}

/* ---- main ---------------------------------------------------------------------------------- */
static int run_threads(Shared *sh, int threads, bool aot) {
  Worker w[MAX_THREADS];
  int started = 0, errors = 0, mismatches = 0;
  for (int t = 0; t < threads; t++) {
    w[t] = (Worker){.sh = sh, .index = t};
    if (pthread_create(&w[t].tid, NULL, aot ? aot_worker : jit_worker, &w[t]) != 0) {
      fprintf(stderr, "test_concurrency: cannot start thread %d\n", t);
      errors++;
      break;
    }
    started++;
  }
  for (int t = 0; t < started; t++) {
    pthread_join(w[t].tid, NULL);
    errors += w[t].errors;
    mismatches += w[t].mismatches;
    if (w[t].first[0]) fprintf(stderr, "test_concurrency: %s\n", w[t].first);
  }
  printf("%d threads x %d runs: %d errors, %d mismatching runs\n", started, sh->runs, errors, mismatches);
  return errors || mismatches ? 1 : 0;
}

int main(int argc, char **argv) {
  JitMode mode = JIT_PRECOMPILE;
  if (argc == 6 && strcmp(argv[5], "--lazy") == 0) mode = JIT_LAZY;
  if (argc == 6 && strcmp(argv[5], "--cold") == 0) mode = JIT_COLD;
  if (argc == 6 && strcmp(argv[5], "--own") == 0) mode = JIT_OWN;
  bool args_ok = argc == 5 || (argc == 6 && mode != JIT_PRECOMPILE);
  if (!args_ok || (strcmp(argv[1], "jit") != 0 && strcmp(argv[1], "aot") != 0)) {
    fprintf(stderr, "usage: test_concurrency jit|aot MODEL THREADS RUNS [--lazy|--cold|--own]\n");
    return 2;
  }
  bool aot = strcmp(argv[1], "aot") == 0;
  int threads = atoi(argv[3]), runs = atoi(argv[4]);
  if (threads < 1 || threads > MAX_THREADS || runs < 1) {
    fprintf(stderr, "test_concurrency: THREADS must be 1..%d and RUNS positive\n", MAX_THREADS);
    return 2;
  }
  KnArena *a = ir_arena_new();
  Shared sh = {.path = argv[2], .mode = mode, .runs = runs};
  KnError err = {0};
  KnStatus st = a ? KN_OK : kn_fail(&err, KN_ERR_NOMEM, "out of memory");
  if (st == KN_OK) st = aot ? aot_setup(argv[2], a, &sh, &err) : jit_setup(argv[2], mode, a, &sh, &err);
  int rc = 1;
  if (st == KN_OK) rc = run_threads(&sh, threads, aot);
  else fprintf(stderr, "test_concurrency: %s: %s\n", argv[2], err.msg);
  kn_runner_free(sh.runner);
  ir_arena_free(a);
  return rc;
}
