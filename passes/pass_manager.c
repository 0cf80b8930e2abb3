/* pass_manager.c - selects, runs, times and verifies graph passes. */
#include <string.h>
#include <time.h>

#include "passes/passes.h"

/* The IR dump printer lives in frontend/, which passes/ may not include: the caller that wants
 * --print-ir-after links it in through this hook (tools/ sets it). */
KnStatus (*pass_dump_hook)(FILE *f, const KnGraph *g, KnError *err);

const KnPassInfo pass_table[] = {
#define PASS(name, fn, level, summary) {#name, fn, level, summary},
#include "passes/passes.def"
#undef PASS
};
const int pass_count = sizeof pass_table / sizeof pass_table[0];

const KnPassInfo *pass_lookup(const char *name) {
  for (int i = 0; i < pass_count; i++)
    if (strcmp(pass_table[i].name, name) == 0) return &pass_table[i];
  return NULL;
}

/* True if name appears as a whole item in a comma-separated list. */
static bool list_has(const char *list, const char *name) {
  size_t len = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && strncmp(p, name, len) == 0) return true;
    p = end ? end + 1 : NULL;
  }
  return false;
}

KnStatus pass_check_names(const char *list, KnError *err) {
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char name[64];
    if (n == 0 || n >= sizeof name) return kn_fail(err, KN_ERR_INVALID, "bad pass list '%s'", list);
    memcpy(name, p, n);
    name[n] = 0;
    if (!pass_lookup(name) && strcmp(name, "all") != 0)
      return kn_fail(err, KN_ERR_INVALID, "unknown pass '%s'", name);
    p = end ? end + 1 : NULL;
  }
  return KN_OK;
}

static bool selected(const KnPipeline *p, const KnPassInfo *pass) {
  if (p->disabled && list_has(p->disabled, pass->name)) return false;
  if (p->only) return list_has(p->only, pass->name);
  return p->level >= pass->min_level;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static KnStatus run_one(KnModel *m, KnPipeline *p, const KnPassInfo *pass, KnError *err) {
  KnPassRecord *r = &p->records[p->n_records < 64 ? p->n_records++ : 63];
  KnPassCtx ctx = {err, 0};
  r->name = pass->name;
  r->nodes_before = m->graph->n_nodes;
  double t0 = now_ms();
  r->changed = pass->run(m->graph, &ctx);
  r->wall_ms = now_ms() - t0;
  r->nodes_after = m->graph->n_nodes;
  r->rewrites = ctx.rewrites;
  if (err && err->status) {
    kn_error_prefix(err, "pass %s: ", pass->name);
    return err->status;
  }
#ifdef KILN_VERIFY_PASSES
  KnStatus st = ir_verify(m, err);
  if (st) {
    kn_error_prefix(err, "IR invalid after pass %s: ", pass->name);
    return st;
  }
#endif
  if (p->print_after && (strcmp(p->print_after, "all") == 0 || strcmp(p->print_after, pass->name) == 0)
      && pass_dump_hook) {
    FILE *f = p->dump ? p->dump : stderr;
    fprintf(f, "# after %s\n", pass->name);
    return pass_dump_hook(f, m->graph, err);
  }
  return KN_OK;
}

KnStatus pass_run_pipeline(KnModel *m, KnPipeline *p, KnError *err) {
  KnStatus st = pass_check_names(p->only, err);
  if (!st) st = pass_check_names(p->disabled, err);
  p->n_records = 0;
  for (int i = 0; i < pass_count && !st; i++)
    if (selected(p, &pass_table[i])) st = run_one(m, p, &pass_table[i], err);
  return st;
}
