/* cli_exec.c - what `kiln run` and `kiln check` share: compile options from the command line,
 * reading a model's inputs from tensor files, and comparing outputs as ONNX's backend runner. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/tensor_file.h"
#include "tools/cli_exec.h"

int cli_take_exec_option(int argc, char **argv, int *i, KnArena *a, CliExecOptions *o,
                         const char **bad) {
  const char *arg = argv[*i], *v = NULL;
  int took;
  *bad = NULL;
  if (strlen(arg) == 3 && arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3') {
    o->run.opt_level = arg[2] - '0';
    return 1;
  }
  if ((took = cli_take_value(argc, argv, i, "--threads", &v)) != 0) {
    char *end;
    long n = took > 0 ? strtol(v, &end, 10) : 0;
    if (took < 0 || *end || n < 1 || n > 1024) return *bad = "--threads needs a count from 1 to 1024", -1;
    o->threads = (int)n;
    return 1;
  }
  if ((took = cli_take_value(argc, argv, i, "--shape", &v)) != 0) {
    if (took < 0 || o->n_shapes >= CLI_MAX_SHAPES || !cli_parse_binding(a, v, &o->shapes[o->n_shapes]))
      return *bad = "--shape needs NAME=D0,D1,... with dims >= 0", -1;
    o->n_shapes++;
    o->run.shapes = o->shapes;
    o->run.n_shapes = o->n_shapes;
    return 1;
  }
  if ((took = cli_take_limit_option(argc, argv, i, &o->limits, bad)) != 0) return took;
  if ((took = cli_take_value(argc, argv, i, "--max-arena-bytes", &v)) != 0) {
    uint64_t n;
    if (took < 0 || !cli_parse_count(v, &n)) return *bad = "--max-arena-bytes needs a positive byte count (K/M/G/T)", -1;
    o->run.max_arena_bytes = (size_t)n;
    return 1;
  }
  if ((took = cli_take_value(argc, argv, i, "--passes", &v)) != 0) {
    if (took < 0) return *bad = "--passes needs a comma-separated list", -1;
    o->run.passes = v;
    return 1;
  }
  if ((took = cli_take_value(argc, argv, i, "--disable-pass", &v)) != 0) {
    if (took < 0) return *bad = "--disable-pass needs a pass name", -1;
    o->run.disabled = v;
    return 1;
  }
  return 0;
}

/* ---- inputs ------------------------------------------------------------------------------- */
/* Graph inputs that are not initializers, in order: the ones a test folder's input_K.pb feed. */
int cli_feed_inputs(const KnGraph *g, int *index) {
  int n = 0;
  for (int i = 0; i < g->n_inputs; i++)
    if (!g->inputs[i]->init) index[n++] = i;
  return n;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

KnStatus cli_read_named_inputs(const KnGraph *g, const char *const *specs, int n_specs, KnArena *a,
                               KnTensor **inputs, KnError *err) {
  for (int s = 0; s < n_specs; s++) {
    const char *eq = strchr(specs[s], '=');
    size_t len = (size_t)(eq - specs[s]);
    int found = -1;
    for (int i = 0; i < g->n_inputs; i++)
      if (strlen(g->inputs[i]->name) == len && strncmp(g->inputs[i]->name, specs[s], len) == 0) found = i;
    if (found < 0)
      return kn_fail(err, KN_ERR_INVALID, "--input %.*s: the model has no input of that name", (int)len, specs[s]);
    KnStatus st = cli_read_value(a, eq + 1, &g->inputs[found]->type, &inputs[found], err);
    if (st != KN_OK) return st;
  }
  return KN_OK;
}

KnStatus cli_read_input_dir(const KnGraph *g, const char *dir, KnArena *a, KnTensor **inputs,
                            KnError *err) {
  int feed[g->n_inputs + 1];
  int n = cli_feed_inputs(g, feed);
  for (int k = 0; k < n; k++) {
    const KnValue *v = g->inputs[feed[k]];
    char path[4096];
    snprintf(path, sizeof path, "%s/input_%d.pb", dir, k);
    if (!file_exists(path)) snprintf(path, sizeof path, "%s/input_%d.npy", dir, k);
    if (!file_exists(path)) snprintf(path, sizeof path, "%s/%s.npy", dir, v->name);
    if (!file_exists(path))
      return kn_fail(err, KN_ERR_IO, "%s: no input_%d.pb, input_%d.npy or %s.npy for input %s", dir, k, k,
                     v->name, v->name);
    KnStatus st = cli_read_value(a, path, &v->type, &inputs[feed[k]], err);
    if (st != KN_OK) return st;
  }
  return KN_OK;
}

KnStatus cli_read_value(KnArena *a, const char *path, const KnType *type, KnTensor **out, KnError *err) {
  if (type->kind == KN_TYPE_SEQUENCE || type->kind == KN_TYPE_OPTIONAL) {
    KnTensorList *l;
    KnStatus st = fe_read_sequence_file(a, path, type->kind, NULL, &l, err);
    if (st != KN_OK) return st;
    return (*out = ir_tensor_box(a, l, err)) ? KN_OK : err->status;
  }
  KnStatus st = fe_read_tensor_file(a, path, NULL, out, err);
  if (st == KN_OK) cli_fix_bf16(*out, type->dtype);
  return st;
}

KnStatus cli_write_value(const char *path, const KnTensor *t, bool npy, KnError *err) {
  if (t->list) {
    if (npy) return KN_OK; /* .npy has no sequences; the .pb beside it holds them */
    return fe_write_sequence_pb(path, t->list, err);
  }
  return npy ? fe_write_tensor_npy(path, t, err) : fe_write_tensor_pb(path, t, NULL, err);
}

void cli_fix_bf16(KnTensor *t, KnDtype want) {
  if (t && want == KN_BF16 && t->dtype == KN_U16) t->dtype = KN_BF16;
}

/* ---- comparing ---------------------------------------------------------------------------- */
void cli_compare(const KnTensor *got, const KnTensor *want, double rtol, double atol, CliCompare *c) {
  memset(c, 0, sizeof *c);
  c->ok = got->dtype == want->dtype && got->rank == want->rank;
  for (int d = 0; c->ok && d < got->rank; d++) c->ok = got->dims[d] == want->dims[d];
  if (!c->ok) {
    c->shape_mismatch = true;
    return;
  }
  if (got->dtype == KN_STRING) {
    const KnBytes *g = got->data, *w = want->data;
    for (int64_t i = 0; i < got->numel; i++)
      if (g[i].len != w[i].len || memcmp(g[i].data, w[i].data, g[i].len) != 0) c->bad++;
    c->ok = c->bad == 0;
    return;
  }
  for (int64_t i = 0; i < got->numel; i++) {
    double g = ir_tensor_get_double(got, i), w = ir_tensor_get_double(want, i);
    if (isnan(g) && isnan(w)) continue;
    if (g == w) continue; /* equal infinities */
    double abs_err = fabs(g - w), rel_err = w != 0 ? abs_err / fabs(w) : (abs_err ? INFINITY : 0);
    if (isnan(abs_err)) abs_err = INFINITY, rel_err = INFINITY;
    if (abs_err > c->max_abs) c->max_abs = abs_err;
    if (rel_err > c->max_rel) c->max_rel = rel_err;
    if (!(abs_err <= atol + rtol * fabs(w))) {
      if (c->bad == 0) c->first_bad = i;
      c->bad++;
    }
  }
  c->ok = c->bad == 0;
}

void cli_format_shape(const KnTensor *t, char *buf, size_t size) {
  if (t->list) {
    snprintf(buf, size, "%s of %d %s tensors", t->list->kind == KN_TYPE_SEQUENCE ? "sequence" : "optional",
             t->list->n_tensors, ir_dtype_name(t->list->dtype));
    return;
  }
  size_t used = (size_t)snprintf(buf, size, "%s[", ir_dtype_name(t->dtype));
  for (int d = 0; d < t->rank && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "", (long long)t->dims[d]);
  if (used < size) snprintf(buf + used, size - used, "]");
}
