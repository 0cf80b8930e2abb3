/* cg_string.c - string tensors, which generated code does not handle: Cast between strings and
 * numbers and StringNormalizer run as runtime kernels between stages. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_stage.h"

static bool set_string(KnArena *a, KnBytes *dst, const char *s, size_t len) {
  char *copy = ir_arena_strndup(a, s, len);
  if (!copy) return false;
  *dst = (KnBytes){copy, len};
  return true;
}

/* The shortest decimal that reads back as the same value (numpy's repr of a float32/float64). */
static int format_shortest(char *buf, size_t size, double v, bool single) {
  if (isnan(v)) return snprintf(buf, size, "nan");
  if (isinf(v)) return snprintf(buf, size, v < 0 ? "-inf" : "inf");
  for (int p = 1; p <= 17; p++) {
    int n = snprintf(buf, size, "%.*g", p, v);
    if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) return n;
  }
  return snprintf(buf, size, "%.17g", v);
}

static KnStatus cast_to_string(const KnTensor *x, KnArena *a, KnTensor **out, KnError *err) {
  KnTensor *y = ir_tensor_new(a, KN_STRING, x->rank, x->dims, err);
  if (!y) return err->status;
  KnBytes *s = y->data;
  for (int64_t i = 0; i < x->numel; i++) {
    char buf[64];
    int n = ir_dtype_is_float(x->dtype) ? format_shortest(buf, sizeof buf, ir_tensor_get_double(x, i), x->dtype != KN_F64)
            : x->dtype == KN_BOOL ? snprintf(buf, sizeof buf, "%s", ir_tensor_get_int(x, i) ? "True" : "False")
                                  : snprintf(buf, sizeof buf, "%lld", (long long)ir_tensor_get_int(x, i));
    if (!set_string(a, &s[i], buf, (size_t)n)) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  *out = y;
  return KN_OK;
}

static void store_number(KnTensor *y, int64_t i, double v) {
  unsigned char *p = y->data;
  switch (y->dtype) {
  case KN_F32: { float f = (float)v; memcpy(p + 4 * i, &f, 4); break; }
  case KN_F64: memcpy(p + 8 * i, &v, 8); break;
  case KN_F16: { uint16_t h = ir_f32_to_f16((float)v); memcpy(p + 2 * i, &h, 2); break; }
  case KN_BF16: { uint16_t h = ir_f32_to_bf16((float)v); memcpy(p + 2 * i, &h, 2); break; }
  default: { /* integers: stored by width, truncating like a C cast */
    int64_t n = (int64_t)v;
    memcpy(p + (size_t)(ir_dtype_bits(y->dtype) / 8) * (size_t)i, &n, (size_t)ir_dtype_bits(y->dtype) / 8);
  }
  }
}

static KnStatus cast_from_string(const KnTensor *x, KnDtype to, KnArena *a, KnTensor **out, KnError *err) {
  if (ir_dtype_bits(to) < 8 || to == KN_STRING) return kn_fail(err, KN_ERR_UNSUPPORTED, "Cast from string to %s", ir_dtype_name(to));
  KnTensor *y = ir_tensor_new(a, to, x->rank, x->dims, err);
  if (!y) return err->status;
  const KnBytes *s = x->data;
  for (int64_t i = 0; i < x->numel; i++) {
    char *end;
    double v = strtod(s[i].data, &end); /* accepts "inf", "-INF", "nan" too */
    if (end == s[i].data) return kn_fail(err, KN_ERR_INVALID, "Cast: '%.40s' is not a number", s[i].data);
    store_number(y, i, v);
  }
  *out = y;
  return KN_OK;
}

KnStatus cg_run_string_cast(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                            KnError *err) {
  KnDtype to = n->outputs[0]->type.dtype;
  if (in[0]->dtype == to) {
    out[0] = in[0];
    return KN_OK;
  }
  if (to == KN_STRING) return cast_to_string(in[0], a, out, err);
  return cast_from_string(in[0], to, a, out, err);
}

/* ---- StringNormalizer ---- */
static bool is_stopword(const KnBytes *w, const KnBytes *stop, int64_t n_stop, bool case_sensitive) {
  for (int64_t j = 0; j < n_stop; j++) {
    if (stop[j].len != w->len) continue;
    if (case_sensitive ? memcmp(stop[j].data, w->data, w->len) == 0 : strncasecmp(stop[j].data, w->data, w->len) == 0)
      return true;
  }
  return false;
}

KnStatus cg_run_string_normalizer(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                                  KnError *err) {
  const KnTensor *x = in[0];
  if (x->dtype != KN_STRING || (x->rank != 1 && !(x->rank == 2 && x->dims[0] == 1)))
    return kn_fail(err, KN_ERR_INVALID, "StringNormalizer: input must be strings of shape [C] or [1, C]");
  const KnAttr *sw = ir_attr(n, "stopwords");
  const char *action = ir_attr_string(n, "case_change_action", "NONE");
  bool sensitive = ir_attr_int(n, "is_case_sensitive", 0) != 0;
  const KnBytes *s = x->data;
  KnBytes kept[x->numel + 1];
  int64_t n_kept = 0;
  for (int64_t i = 0; i < x->numel; i++)
    if (!sw || !is_stopword(&s[i], sw->strings, sw->n, sensitive)) kept[n_kept++] = s[i];
  bool empty = n_kept == 0; /* the spec keeps one empty string rather than a zero-sized output */
  int64_t dims[2] = {1, empty ? 1 : n_kept};
  KnTensor *y = ir_tensor_new(a, KN_STRING, x->rank, x->rank == 2 ? dims : dims + 1, err);
  if (!y) return err->status;
  KnBytes *ys = y->data;
  for (int64_t i = 0; i < n_kept; i++) {
    char *c = ir_arena_strndup(a, kept[i].data, kept[i].len);
    if (!c) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < kept[i].len; j++) /* ASCII only: the C locale */
      c[j] = strcmp(action, "UPPER") == 0 ? (char)toupper((unsigned char)c[j])
             : strcmp(action, "LOWER") == 0 ? (char)tolower((unsigned char)c[j]) : c[j];
    ys[i] = (KnBytes){c, kept[i].len};
  }
  out[0] = y;
  return KN_OK;
}
