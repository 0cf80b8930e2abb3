/* kir_print_file.c - writes a .kir file and its safetensors weights beside it, each through a
 * temporary file and rename, so a failure never leaves a partial file. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/kir_internal.h"

/* A weights path must stay inside the .kir folder: relative, and no ".." component. */
static bool weights_path_ok(const char *rel) {
  if (!rel[0] || rel[0] == '/') return false;
  for (const char *p = rel; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.') return false;
    p += n;
    while (*p == '/') p++;
  }
  return true;
}

static bool same_folder(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  if (!a || !realpath(a[0] ? a : ".", ra) || !realpath(b[0] ? b : ".", rb)) return false;
  return strcmp(ra, rb) == 0;
}

typedef struct OutPaths {
  char dir[PATH_MAX];
  char weights_rel[PATH_MAX]; /* as printed in references */
  char weights[PATH_MAX];     /* as opened */
} OutPaths;

static KnStatus out_paths(const char *path, const KnKirPrintOptions *o, OutPaths *op, KnError *err) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  if (strlen(path) >= PATH_MAX || !base[0])
    return kn_fail(err, KN_ERR_INVALID, "%s: not a usable .kir file path", path);
  if (slash == path) snprintf(op->dir, sizeof op->dir, "/");
  else snprintf(op->dir, sizeof op->dir, "%.*s", (int)dlen, path);
  if (o->weights_path) {
    if (!weights_path_ok(o->weights_path))
      return kn_fail(err, KN_ERR_INVALID, "%s: weights path '%s' must stay inside the .kir folder",
                     path, o->weights_path);
    snprintf(op->weights_rel, sizeof op->weights_rel, "%s", o->weights_path);
  } else {
    size_t blen = strlen(base);
    if (blen > 4 && strcmp(base + blen - 4, ".kir") == 0) blen -= 4;
    snprintf(op->weights_rel, sizeof op->weights_rel, "%.*s.safetensors", (int)blen, base);
  }
  const char *sep = op->dir[0] && strcmp(op->dir, "/") != 0 ? "/" : "";
  int n = snprintf(op->weights, sizeof op->weights, "%s%s%s", op->dir, sep, op->weights_rel);
  if (n < 0 || (size_t)n >= sizeof op->weights)
    return kn_fail(err, KN_ERR_LIMIT, "%s: weights path is too long", path);
  return KN_OK;
}

KnStatus kir_weights_file(const char *path, const KnKirPrintOptions *opt, char *out, size_t size, KnError *err) {
  KnKirPrintOptions o = opt ? *opt : (KnKirPrintOptions){0};
  OutPaths op;
  KnStatus st = out_paths(path, &o, &op, err);
  if (st) return st;
  if (strlen(op.weights) >= size) return kn_fail(err, KN_ERR_LIMIT, "%s: weights path is too long", path);
  memcpy(out, op.weights, strlen(op.weights) + 1);
  return KN_OK;
}

KnStatus kir_print_file(const KnModel *m, const char *path, const KnKirPrintOptions *opt,
                        KnError *err) {
  KnKirPrintOptions o = opt ? *opt : (KnKirPrintOptions){0};
  OutPaths op;
  KnStatus st = out_paths(path, &o, &op, err);
  if (st) return st;
  /* References stay valid only if the new .kir sits in the folder they are relative to. */
  KirWeightsOpts wo = {o.inline_max_bytes ? o.inline_max_bytes : 256, op.weights_rel,
                       same_folder(m->dir, op.dir), !o.no_weights};
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  KirWeights *w = NULL;
  st = kir_print_planned(f, m, &wo, &w, err);
  if (fclose(f) != 0 && !st) st = kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  KnTensor *const *ts;
  const char *const *keys;
  int n = st ? 0 : kir_weights_to_write(w, &ts, &keys);
  /* Weights first: the .kir must never refer to a file that is not there yet. */
  if (!st && n > 0 && !o.no_weights) st = st_write_named(op.weights, ts, keys, n, err);
  if (!st) st = fe_write_file_atomic(path, text, len, err);
  kir_weights_free(w);
  free(text);
  return st;
}
