/* alloc_fail.c - allocation-failure injection: imports, specializes, compiles (-O0) and runs each
 * model while kiln's own malloc/calloc/realloc/strdup/strndup/aligned_alloc calls (wrapped with
 * -Wl,--wrap) fail on purpose, once per call site ("sites") or at every k-th allocation ("every"),
 * and checks that each run ends with a clean error status, no crash and nothing leaked.
 *
 * Each run is a forked child of a parent that never touches LLVM, so a crash names its site and
 * the others still run, and leaks are counted per run: the wrappers keep a table of live
 * allocations (plain builds), and LeakSanitizer checks the child at exit (sanitizer builds; it
 * also sees LLVM objects kiln forgot to dispose, which the wrappers cannot).
 * --arena also fails kiln's arena allocations (ir_arena_alloc & co.), one site per caller.
 * Usage: alloc_fail [--every K | --only N] [--arena] [--list] MODEL.onnx|MODEL_DIR...   exit 0 when every run was clean. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "codegen/runner.h"
#include "frontend/frontend.h"

/* ---- the wrappers -------------------------------------------------------------------------- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);

#define SITES_MAX 8192        /* distinct call sites (a power of two) */
#define LIVE_MAX (1u << 20)   /* live allocations tracked at once (a power of two) */
#define TOMBSTONE ((void *)1)

typedef struct Site { void *addr; long count; } Site;
typedef struct Live { void *ptr; void *site; size_t size; } Live;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_on;            /* counting and injecting: only around the operation */
static long g_total;         /* allocations seen while on */
static long g_fail_nth;      /* fail the g_fail_nth-th allocation (1-based; 0: none) */
static void *g_fail_site;    /* fail the first allocation from this site (NULL: none) */
static void *g_failed_at;    /* where the injected failure happened (NULL: not yet) */
static Site g_sites[SITES_MAX];
static int g_n_sites;
static Live *g_live;         /* open addressing by pointer; NULL until tracking starts */
static size_t g_n_live;

static size_t hash_ptr(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

static void count_site(void *addr) {
  size_t h = hash_ptr(addr) & (SITES_MAX - 1);
  while (g_sites[h].addr && g_sites[h].addr != addr) h = (h + 1) & (SITES_MAX - 1);
  if (!g_sites[h].addr) {
    if (g_n_sites >= SITES_MAX / 2) return; /* table full: stop counting new sites */
    g_sites[h].addr = addr;
    g_n_sites++;
  }
  g_sites[h].count++;
}

/* Whether this allocation (from site) is the one to fail; counts it. */
static bool should_fail(void *site) {
  pthread_mutex_lock(&g_lock);
  bool fail = false;
  if (g_on) {
    g_total++;
    count_site(site);
    fail = !g_failed_at && (g_total == g_fail_nth || site == g_fail_site);
    if (fail) g_failed_at = site;
  }
  pthread_mutex_unlock(&g_lock);
  return fail;
}

static void live_add(void *p, void *site, size_t size) {
  if (!p || !g_live) return;
  pthread_mutex_lock(&g_lock);
  size_t h = hash_ptr(p) & (LIVE_MAX - 1);
  while (g_live[h].ptr && g_live[h].ptr != TOMBSTONE) h = (h + 1) & (LIVE_MAX - 1);
  g_live[h] = (Live){p, site, size};
  g_n_live++;
  pthread_mutex_unlock(&g_lock);
}

static void live_remove(void *p) {
  if (!p || !g_live) return;
  pthread_mutex_lock(&g_lock);
  size_t h = hash_ptr(p) & (LIVE_MAX - 1);
  while (g_live[h].ptr && g_live[h].ptr != p) h = (h + 1) & (LIVE_MAX - 1);
  if (g_live[h].ptr == p) {
    g_live[h].ptr = TOMBSTONE; /* frees of memory allocated elsewhere are not found: ignored */
    g_n_live--;
  }
  pthread_mutex_unlock(&g_lock);
}

#define SITE() __builtin_return_address(0)

void *__wrap_malloc(size_t n) {
  void *site = SITE();
  if (should_fail(site)) return NULL;
  void *p = __real_malloc(n);
  live_add(p, site, n);
  return p;
}

void *__wrap_calloc(size_t n, size_t size) {
  void *site = SITE();
  if (should_fail(site)) return NULL;
  void *p = __real_calloc(n, size);
  live_add(p, site, n * size);
  return p;
}

void *__wrap_realloc(void *old, size_t n) {
  void *site = SITE();
  if (should_fail(site)) return NULL; /* old stays valid, as a real failure leaves it */
  void *p = __real_realloc(old, n);
  if (p || n == 0) live_remove(old);
  live_add(p, site, n);
  return p;
}

void *__wrap_aligned_alloc(size_t align, size_t n) {
  void *site = SITE();
  if (should_fail(site)) return NULL;
  void *p = __real_aligned_alloc(align, n);
  live_add(p, site, n);
  return p;
}

char *__wrap_strdup(const char *s) {
  void *site = SITE();
  if (should_fail(site)) return NULL;
  char *p = __real_strdup(s);
  live_add(p, site, p ? strlen(p) + 1 : 0);
  return p;
}

char *__wrap_strndup(const char *s, size_t n) {
  void *site = SITE();
  if (should_fail(site)) return NULL;
  char *p = __real_strndup(s, n);
  live_add(p, site, p ? strlen(p) + 1 : 0);
  return p;
}

void __wrap_free(void *p) {
  live_remove(p);
  __real_free(p);
}

/* With --arena, allocations from kiln's arenas fail too, named by the code calling the arena
 * (calls inside ir/arena.c itself are not wrapped; their malloc is). */
static bool g_arena;
void *__real_ir_arena_alloc(KnArena *a, size_t size);
void *__real_ir_arena_calloc(KnArena *a, size_t count, size_t size);
char *__real_ir_arena_strdup(KnArena *a, const char *s);
char *__real_ir_arena_strndup(KnArena *a, const char *s, size_t n);
bool __real_ir_grow(KnArena *a, void **items, int *cap, int need, size_t item_size);

void *__wrap_ir_arena_alloc(KnArena *a, size_t size) {
  return g_arena && should_fail(SITE()) ? NULL : __real_ir_arena_alloc(a, size);
}
void *__wrap_ir_arena_calloc(KnArena *a, size_t count, size_t size) {
  return g_arena && should_fail(SITE()) ? NULL : __real_ir_arena_calloc(a, count, size);
}
char *__wrap_ir_arena_strdup(KnArena *a, const char *s) {
  return g_arena && should_fail(SITE()) ? NULL : __real_ir_arena_strdup(a, s);
}
char *__wrap_ir_arena_strndup(KnArena *a, const char *s, size_t n) {
  return g_arena && should_fail(SITE()) ? NULL : __real_ir_arena_strndup(a, s, n);
}
bool __wrap_ir_grow(KnArena *a, void **items, int *cap, int need, size_t item_size) {
  return g_arena && should_fail(SITE()) ? false : __real_ir_grow(a, items, cap, need, item_size);
}

/* ---- naming sites -------------------------------------------------------------------------- */
/* "function+0xoff (file+0xoff)": the file offset is what addr2line takes. */
static void site_name(void *addr, char *buf, size_t size) {
  Dl_info info;
  if (!dladdr(addr, &info) || !info.dli_fname) {
    snprintf(buf, size, "%p", addr);
    return;
  }
  const char *file = strrchr(info.dli_fname, '/');
  file = file ? file + 1 : info.dli_fname;
  uintptr_t off = (uintptr_t)addr - (uintptr_t)info.dli_fbase;
  if (info.dli_sname)
    snprintf(buf, size, "%s+0x%lx (%s+0x%lx)", info.dli_sname, (unsigned long)((uintptr_t)addr - (uintptr_t)info.dli_saddr),
             file, (unsigned long)off);
  else
    snprintf(buf, size, "%s+0x%lx", file, (unsigned long)off);
}

/* ---- the operation ------------------------------------------------------------------------- */
#define MAX_BOUND 64

/* Shapes for inputs whose declared dims are not all known: unknown dims become 1. */
static int bind_unknown_dims(const KnGraph *g, KnShapeBinding *b, int64_t (*dims)[IR_SYM_DATA_MAX]) {
  int n = 0;
  for (int i = 0; i < g->n_inputs && n < MAX_BOUND; i++) {
    const KnValue *v = g->inputs[i];
    const KnShape *s = &v->type.shape;
    if (v->init || v->type.kind != KN_TYPE_TENSOR || s->rank < 0 || s->rank > IR_SYM_DATA_MAX) continue;
    bool unknown = false;
    for (int d = 0; d < s->rank; d++) {
      unknown |= !ir_dim_is_const(s->dims[d]);
      dims[n][d] = ir_dim_is_const(s->dims[d]) ? s->dims[d].value : 1;
    }
    if (unknown) b[n] = (KnShapeBinding){v->name, s->rank, dims[n]}, n++;
  }
  return n;
}

/* Zero-filled buffers for the graph's inputs and outputs (test allocations: not counted). */
static void **make_buffers(KnValue *const *vals, int n) {
  void **bufs = __real_calloc((size_t)n + 1, sizeof *bufs);
  for (int i = 0; bufs && i < n; i++) {
    int64_t numel = 0;
    size_t nbytes = 0;
    if (vals[i]->type.kind == KN_TYPE_TENSOR && ir_shape_numel(&vals[i]->type.shape, &numel))
      ir_dtype_nbytes(vals[i]->type.dtype, numel, &nbytes);
    bufs[i] = __real_calloc(1, nbytes + 64);
  }
  return bufs;
}

static void free_buffers(void **bufs, int n) {
  for (int i = 0; bufs && i < n; i++) __real_free(bufs[i]);
  __real_free(bufs);
}

/* Import + specialize + pass pipeline + compile at -O0 + one run on zeros; frees everything. */
static KnStatus operation(const char *path, KnError *err) {
  KnModel *m = NULL, *s = NULL;
  KnProgram *p = NULL;
  KnStatus st = fe_load_model(path, NULL, &m, err);
  if (st != KN_OK) return st;
  KnShapeBinding binds[MAX_BOUND];
  int64_t dims[MAX_BOUND][IR_SYM_DATA_MAX];
  KnRunOptions o = {.opt_level = 0, .shapes = binds, .n_shapes = bind_unknown_dims(m->graph, binds, dims)};
  KnPipeline pipeline;
  st = kn_prepare_static(m, &o, &s, &pipeline, err);
  CgOptions co = {.opt_level = 0};
  if (st == KN_OK && (st = cg_compile(s, &co, &p, err)) != KN_OK) ir_model_free(s);
  if (st == KN_OK) {
    const KnGraph *g = cg_program_graph(p);
    void **in = make_buffers(g->inputs, g->n_inputs), **out = make_buffers(g->outputs, g->n_outputs);
    KnRtCtx ctx = {.threads = 1};
    st = in && out ? cg_program_run(p, &ctx, in, out, err) : kn_fail(err, KN_ERR_INTERNAL, "test buffers");
    free_buffers(in, g->n_inputs);
    free_buffers(out, g->n_outputs);
    cg_program_free(p);
  }
  ir_model_free(m);
  return st;
}

/* ---- one run in a child -------------------------------------------------------------------- */
enum { CHILD_OK = 0, CHILD_LEAK = 10, CHILD_NOT_FAILED = 11, CHILD_NO_MESSAGE = 12, CHILD_CLEAN_FAIL = 13 };

/* Reports what is still allocated after the operation; returns how many blocks. */
static size_t report_leaks(const char *what) {
  size_t shown = 0;
  for (size_t h = 0; h < LIVE_MAX && shown < 10; h++) {
    if (!g_live[h].ptr || g_live[h].ptr == TOMBSTONE) continue;
    char name[512];
    site_name(g_live[h].site, name, sizeof name);
    fprintf(stderr, "  %s: leaked %zu bytes allocated at %s\n", what, g_live[h].size, name);
    shown++;
  }
  return g_n_live;
}

/* The child: runs the operation once with the injection configured; exit status says how it went.
 * A counting run (nothing to fail) writes its sites to fd. */
static int child(const char *path, const char *what, int fd) {
  alarm(120); /* a hang after a failure is a bug too: SIGALRM ends the child */
  g_live = __real_calloc(LIVE_MAX, sizeof *g_live);
  if (!g_live) return 2;
  KnError err = {0};
  g_on = true;
  KnStatus st = operation(path, &err);
  g_on = false;
  bool injecting = g_fail_nth || g_fail_site;
  int rc = CHILD_OK;
  if (g_n_live) {
    fprintf(stderr, "%s: %zu blocks leaked (status %d: %s)\n", what, report_leaks(what), st, err.msg);
    rc = CHILD_LEAK;
  } else if (!injecting && st != KN_OK) {
    fprintf(stderr, "%s: fails without injection: %s\n", what, err.msg);
    rc = CHILD_CLEAN_FAIL;
  } else if (injecting && g_failed_at && st != KN_OK && !err.msg[0]) {
    fprintf(stderr, "%s: status %d without a message\n", what, st);
    rc = CHILD_NO_MESSAGE;
  } else if (injecting && g_failed_at && st == KN_OK) {
    if (getenv("ALLOC_FAIL_VERBOSE")) fprintf(stderr, "%s: tolerated\n", what);
    rc = CHILD_NOT_FAILED; /* tolerated (an optional allocation): allowed, counted */
  } else if (injecting && st != KN_OK && st != KN_ERR_NOMEM && getenv("ALLOC_FAIL_VERBOSE")) {
    fprintf(stderr, "%s: status %d (not NOMEM): %s\n", what, st, err.msg);
  }
  if (fd >= 0) {
    for (int h = 0; h < SITES_MAX; h++)
      if (g_sites[h].addr && write(fd, &g_sites[h], sizeof g_sites[h]) != (ssize_t)sizeof g_sites[h]) rc = 2;
    if (write(fd, &g_total, sizeof g_total) != (ssize_t)sizeof g_total) rc = 2;
  }
  fflush(NULL);
  return rc; /* returned through exit(): LeakSanitizer runs its check there in sanitizer builds */
}

typedef struct Tally { int runs, crashes, leaks, no_message, tolerated, unreached; } Tally;

/* Forks a child for one configuration and classifies how it ended; false on a bad ending. */
static bool run_child(const char *path, long nth, void *site, const char *what, Tally *t) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    g_fail_nth = nth;
    g_fail_site = site;
    exit(child(path, what, -1));
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  t->runs++;
  if (WIFSIGNALED(ws)) {
    fprintf(stderr, "%s: CRASH (signal %d)\n", what, WTERMSIG(ws));
    t->crashes++;
    return false;
  }
  int rc = WEXITSTATUS(ws);
  if (rc == CHILD_OK) return true;
  if (rc == CHILD_NOT_FAILED) return t->tolerated++, true;
  if (rc == CHILD_LEAK || rc == 23) { /* 23: LeakSanitizer's exit code */
    if (rc == 23) fprintf(stderr, "%s: LeakSanitizer found a leak (report above)\n", what);
    return t->leaks++, false;
  }
  if (rc == CHILD_NO_MESSAGE) return t->no_message++, false;
  fprintf(stderr, "%s: child exited with %d\n", what, rc);
  t->crashes++;
  return false;
}

/* ---- the driver ---------------------------------------------------------------------------- */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The counting run: every site the operation allocates from, and the total. */
static int count_sites(const char *path, Site *sites, long *total) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int rc = child(path, "counting run", fds[1]);
    close(fds[1]);
    exit(rc);
  }
  close(fds[1]);
  Site buf[SITES_MAX];
  size_t got = 0;
  ssize_t r;
  while ((r = read(fds[0], (char *)buf + got, sizeof buf - got)) > 0) got += (size_t)r;
  close(fds[0]);
  int ws = 0;
  waitpid(pid, &ws, 0);
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || got < sizeof *total) return -1;
  int n = (int)((got - sizeof *total) / sizeof *sites);
  memcpy(sites, buf, (size_t)n * sizeof *sites);
  memcpy(total, (char *)buf + (size_t)n * sizeof *sites, sizeof *total);
  return n;
}

static const char *model_path(const char *arg, char *buf, size_t size) {
  struct stat sb;
  if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    snprintf(buf, size, "%s/model.onnx", arg);
    return buf;
  }
  return arg;
}

/* Runs one model in the chosen mode; false when any run went wrong. */
static long g_only; /* --only N: fail only allocation N (to reproduce one run) */

static bool check_model(const char *arg, long every, bool list) {
  char pbuf[4096];
  const char *path = model_path(arg, pbuf, sizeof pbuf);
  static Site sites[SITES_MAX];
  long total = 0;
  double t0 = now_s();
  int n = count_sites(path, sites, &total);
  if (n < 0) {
    fprintf(stderr, "%s: the run without injection failed (see above)\n", path);
    return false;
  }
  Tally t = {0};
  bool ok = true;
  char what[5120], name[512];
  for (int i = 0; every == 0 && i < n; i++) {
    site_name(sites[i].addr, name, sizeof name);
    if (list) printf("  site %s: %ld allocations\n", name, sites[i].count);
    snprintf(what, sizeof what, "%s: first allocation at %s failing", path, name);
    ok &= run_child(path, 0, sites[i].addr, what, &t);
  }
  for (long k = g_only ? g_only : 1; every > 0 && k <= total; k += g_only ? total : every) {
    snprintf(what, sizeof what, "%s: allocation %ld of %ld failing", path, k, total);
    ok &= run_child(path, k, NULL, what, &t);
  }
  printf("%s: %d sites, %ld allocations; %d runs (%s), %d crashes, %d leaks, %d without message, "
         "%d tolerated the failure; %.1f s\n",
         path, n, total, t.runs, every ? "every k-th" : "one per site", t.crashes, t.leaks, t.no_message,
         t.tolerated, now_s() - t0);
  return ok;
}

int main(int argc, char **argv) {
  long every = 0;
  bool list = false;
  int first = 1;
  for (; first < argc && argv[first][0] == '-'; first++) {
    if (strcmp(argv[first], "--every") == 0 && first + 1 < argc) every = atol(argv[++first]);
    else if (strcmp(argv[first], "--list") == 0) list = true;
    else if (strcmp(argv[first], "--arena") == 0) g_arena = true;
    else if (strcmp(argv[first], "--only") == 0 && first + 1 < argc) g_only = atol(argv[++first]), every = 1;
    else {
      fprintf(stderr, "usage: alloc_fail [--every K | --only N] [--arena] [--list] MODEL.onnx|MODEL_DIR...\n");
      return 2;
    }
  }
  if (first >= argc) {
    fprintf(stderr, "alloc_fail: no models given\n");
    return 2;
  }
  bool ok = true;
  for (int i = first; i < argc; i++) ok &= check_model(argv[i], every, list);
  printf("alloc_fail: %s\n", ok ? "every run ended cleanly" : "FAILURES (see above)");
  return ok ? 0 : 1;
}
