/* cmd_check.c - `kiln check`: run an ONNX test case folder (model.onnx + test_data_set_*) and
 * compare every output with the expected one, as ONNX's backend test runner does. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/tensor_file.h"
#include "tools/cli_exec.h"

static const char check_usage[] =
    "usage: kiln check CASE_DIR [--rtol R] [--atol A] [-O0..-O3] [--threads N]\n"
    "Runs CASE_DIR/model.onnx on every CASE_DIR/test_data_set_*/input_K.pb and compares each\n"
    "output with output_K.pb: |got - want| <= atol + rtol * |want| (NaN equals NaN).\n"
    "Exits 0 only if every output of every set matches. An input whose data contradicts the\n"
    "model's declared shape runs with its own shape, with a note (ONNX's backend runner does not\n"
    "enforce declared shapes; kiln run refuses such inputs).\n"
    "  --rtol R                relative tolerance (default 1e-3)\n"
    "  --atol A                absolute tolerance (default 1e-7)\n" CLI_EXEC_USAGE;

typedef struct CheckArgs {
  const char *dir;
  double rtol, atol;
  CliExecOptions exec;
} CheckArgs;

static int parse_tolerance(const char *v, double *out) {
  char *end;
  double d = v ? strtod(v, &end) : -1;
  if (!v || *end || !(d >= 0)) return -1;
  *out = d;
  return 0;
}

static int parse_args(int argc, char **argv, KnArena *a, CheckArgs *c, bool *done) {
  c->rtol = 1e-3;
  c->atol = 1e-7;
  c->exec.run.opt_level = 3;
  c->exec.threads = 1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL, *bad = NULL;
    int took;
    if (cli_is_help(arg)) {
      fputs(check_usage, stdout);
      *done = true;
      return CLI_OK;
    }
    if ((took = cli_take_exec_option(argc, argv, &i, a, &c->exec, &bad)) != 0) {
      if (took < 0) return cli_usage_error("check", check_usage, "%s", bad);
    } else if ((took = cli_take_value(argc, argv, &i, "--rtol", &v)) != 0) {
      if (took < 0 || parse_tolerance(v, &c->rtol)) return cli_usage_error("check", check_usage, "--rtol needs a number >= 0");
    } else if ((took = cli_take_value(argc, argv, &i, "--atol", &v)) != 0) {
      if (took < 0 || parse_tolerance(v, &c->atol)) return cli_usage_error("check", check_usage, "--atol needs a number >= 0");
    } else if (arg[0] == '-' && arg[1]) {
      return cli_usage_error("check", check_usage, "unknown option '%s'", arg);
    } else if (c->dir) {
      return cli_usage_error("check", check_usage, "more than one case folder given ('%s')", arg);
    } else {
      c->dir = arg;
    }
  }
  if (!c->dir) return cli_usage_error("check", check_usage, "no case folder given");
  return CLI_OK;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The test_data_set_* folders of dir, sorted; NULL-terminated, in arena a. */
static char **list_sets(KnArena *a, const char *dir, int *n) {
  DIR *d = opendir(dir);
  *n = 0;
  if (!d) return NULL;
  char **names = ir_arena_calloc(a, 1025, sizeof *names);
  struct dirent *e;
  while (names && (e = readdir(d)) && *n < 1024)
    if (strncmp(e->d_name, "test_data_set_", 14) == 0) names[(*n)++] = ir_arena_printf(a, "%s/%s", dir, e->d_name);
  closedir(d);
  if (names) qsort(names, (size_t)*n, sizeof *names, compare_names);
  return names;
}

/* Compares a sequence or optional output with the expected one, tensor by tensor. */
static void compare_lists(const KnTensorList *got, const KnTensorList *want, double rtol, double atol, CliCompare *c) {
  memset(c, 0, sizeof *c);
  if (got->kind != want->kind || got->elem != want->elem || got->n_tensors != want->n_tensors) {
    c->shape_mismatch = true;
    return;
  }
  c->ok = true;
  for (int i = 0; i < got->n_tensors; i++) {
    CliCompare one;
    cli_compare(got->tensors[i], want->tensors[i], rtol, atol, &one);
    if (one.shape_mismatch) c->shape_mismatch = true;
    if (one.max_abs > c->max_abs) c->max_abs = one.max_abs;
    if (one.max_rel > c->max_rel) c->max_rel = one.max_rel;
    if (!one.ok) c->ok = false, c->bad += one.bad ? one.bad : 1;
  }
  if (c->shape_mismatch) c->ok = false;
}

/* Compares each output with set/output_K.pb; prints a line per output. Returns mismatches. */
static int compare_set(const CheckArgs *c, const char *set, const KnGraph *g, KnTensor **out,
                       KnArena *a, KnError *err) {
  int bad = 0;
  for (int k = 0; k < g->n_outputs; k++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/output_%d.pb", set, k);
    KnTensor *want;
    const KnType *type = &g->outputs[k]->type;
    KnStatus rs = type->kind == KN_TYPE_TENSOR ? fe_read_tensor_file(a, path, NULL, &want, err)
                                               : cli_read_value(a, path, type, &want, err);
    if (rs != KN_OK) return -1;
    if (out[k]->list || want->list) {
      CliCompare cmp;
      char got_desc[256], want_desc[256];
      cli_format_shape(out[k], got_desc, sizeof got_desc);
      cli_format_shape(want, want_desc, sizeof want_desc);
      if (out[k]->list && want->list) compare_lists(out[k]->list, want->list, c->rtol, c->atol, &cmp);
      else memset(&cmp, 0, sizeof cmp), cmp.shape_mismatch = true;
      printf("  output %d (%s) %s: max abs err %.3g, max rel err %.3g: %s\n", k, g->outputs[k]->name, got_desc,
             cmp.max_abs, cmp.max_rel, cmp.ok ? "ok" : "FAIL");
      if (cmp.shape_mismatch) printf("    expected %s\n", want_desc);
      bad += !cmp.ok;
      continue;
    }
    /* A bf16 output expected as uint16 bits (ONNX's test data) is compared as those bits, as
     * ONNX's backend runner compares it: kiln rounds to nearest even where onnx 1.12 truncated. */
    KnTensor got = *out[k];
    if (got.dtype == KN_BF16 && want->dtype == KN_U16) got.dtype = KN_U16;
    CliCompare cmp;
    cli_compare(&got, want, c->rtol, c->atol, &cmp);
    char got_shape[256], want_shape[256];
    cli_format_shape(out[k], got_shape, sizeof got_shape);
    cli_format_shape(want, want_shape, sizeof want_shape);
    if (cmp.shape_mismatch)
      printf("  output %d (%s): FAIL: got %s, expected %s\n", k, g->outputs[k]->name, got_shape, want_shape);
    else
      printf("  output %d (%s) %s: max abs err %.3g, max rel err %.3g: %s", k, g->outputs[k]->name, got_shape,
             cmp.max_abs, cmp.max_rel, cmp.ok ? "ok\n" : "FAIL");
    if (!cmp.ok && !cmp.shape_mismatch)
      printf(" (%lld elements off; first at %lld: got %.9g, expected %.9g)\n", (long long)cmp.bad,
             (long long)cmp.first_bad, ir_tensor_get_double(out[k], cmp.first_bad),
             ir_tensor_get_double(want, cmp.first_bad));
    bad += !cmp.ok;
  }
  return bad;
}

/* Says which inputs contradict their declared shape (they run with their own, see KnRunOptions). */
static void note_shape_mismatches(const KnGraph *g, KnTensor *const *in) {
  for (int i = 0; i < g->n_inputs; i++) {
    const KnShape *s = &g->inputs[i]->type.shape;
    const KnTensor *t = in[i];
    if (!t || t->list || g->inputs[i]->type.kind != KN_TYPE_TENSOR || s->rank < 0) continue;
    bool differ = s->rank != t->rank;
    for (int d = 0; !differ && d < s->rank; d++) differ = ir_dim_is_const(s->dims[d]) && s->dims[d].value != t->dims[d];
    char buf[128], decl[128];
    cli_format_shape(t, buf, sizeof buf);
    ir_type_format(&g->inputs[i]->type, decl, sizeof decl);
    if (differ) printf("  note: input %s is %s but the model declares %s; it runs with its own shape\n", g->inputs[i]->name, buf, decl);
  }
}

/* A case folder comes from elsewhere like a model does: its model, data sets and their files
 * must not be symlinks that lead out of it (external data is held to the same rule). */
static KnStatus check_inside(const char *case_dir, char **sets, int n_sets, KnError *err) {
  char real[4096];
  KnStatus st = fe_resolve_inside(case_dir, "model.onnx", real, sizeof real, err);
  for (int s = 0; st == KN_OK && s < n_sets; s++) {
    const char *name = strrchr(sets[s], '/') + 1;
    if ((st = fe_resolve_inside(case_dir, name, real, sizeof real, err)) != KN_OK) break;
    DIR *d = opendir(sets[s]);
    struct dirent *e;
    while (d && st == KN_OK && (e = readdir(d))) {
      char rel[1024];
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(rel, sizeof rel, "%s/%s", name, e->d_name);
      st = fe_resolve_inside(case_dir, rel, real, sizeof real, err);
    }
    if (d) closedir(d);
  }
  return st;
}

static int check_case(CheckArgs *c, KnArena *a) {
  KnError err = {0};
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", c->dir);
  int n_sets;
  char **sets = list_sets(a, c->dir, &n_sets);
  if (check_inside(c->dir, sets, n_sets, &err) != KN_OK) {
    kn_error_prefix(&err, "%s: ", c->dir);
    return cli_fail_error(&err);
  }
  KnModel *m;
  if (fe_load_model(path, &c->exec.limits, &m, &err) != KN_OK) return cli_fail_error(&err);
  KnRunner *r;
  c->exec.run.relax_declared_shapes = true; /* as ONNX's backend runner; noted per case below */
  if (kn_runner_new(m, &c->exec.run, &r, &err) != KN_OK) {
    ir_model_free(m);
    return cli_fail_error(&err);
  }
  const KnGraph *g = kn_runner_model(r)->graph;
  int failures = 0;
  if (n_sets == 0) kn_fail(&err, KN_ERR_IO, "%s: no test_data_set_* folders", c->dir);
  for (int s = 0; s < n_sets && err.status == KN_OK; s++) {
    KnTensor **in = ir_arena_calloc(a, (size_t)g->n_inputs + 1, sizeof *in);
    KnTensor **out = ir_arena_calloc(a, (size_t)g->n_outputs + 1, sizeof *out);
    KnRtCtx ctx = {.threads = c->exec.threads};
    if (!in || !out) kn_fail(&err, KN_ERR_NOMEM, "out of memory");
    else if (cli_read_input_dir(g, sets[s], a, in, &err) == KN_OK) {
      printf("%s:\n", sets[s]);
      note_shape_mismatches(g, in);
      if (kn_runner_run(r, &ctx, in, a, out, &err) != KN_OK) break;
      int bad = compare_set(c, sets[s], g, out, a, &err);
      failures += bad > 0;
    }
  }
  kn_runner_free(r);
  if (err.status != KN_OK) {
    kn_error_prefix(&err, "%s: ", c->dir);
    return cli_fail_error(&err);
  }
  printf("%s: %s (%d of %d data sets match)\n", c->dir, failures ? "FAIL" : "PASS", n_sets - failures, n_sets);
  return failures ? CLI_FAIL : CLI_OK;
}

int cmd_check(int argc, char **argv) {
  KnArena *a = ir_arena_new();
  if (!a) return cli_fail("out of memory");
  CheckArgs c = {0};
  bool done = false;
  int rc = parse_args(argc, argv, a, &c, &done);
  if (rc == CLI_OK && !done) rc = check_case(&c, a);
  ir_arena_free(a);
  return rc;
}
