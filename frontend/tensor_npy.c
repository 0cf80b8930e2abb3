/* tensor_npy.c - NumPy .npy files: reading versions 1.0-3.0 (the header dict parsed by hand, any
 * byte order, Fortran order transposed) and writing version 1.0 exactly as numpy.save does. */
#include <stdlib.h>
#include <string.h>

#include "frontend/tensor_file.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_RANK 64      /* numpy 2 allows 64 dims; more is a lying header */
#define NPY_ALIGN 64         /* numpy pads the header so data starts on this boundary */
#define NPY_GROWTH_DIGITS 21 /* numpy leaves room to grow the first dim in place */

static const bool host_big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;

/* One numeric .npy dtype: kind letter and item size, as in descr "<f4". */
typedef struct NpyType {
  char kind;
  int size;
  KnDtype dtype;
} NpyType;

static const NpyType npy_types[] = {
    {'f', 2, KN_F16}, {'f', 4, KN_F32},  {'f', 8, KN_F64}, {'i', 1, KN_I8},    {'i', 2, KN_I16},
    {'i', 4, KN_I32}, {'i', 8, KN_I64},  {'u', 1, KN_U8},  {'u', 2, KN_U16},   {'u', 4, KN_U32},
    {'u', 8, KN_U64}, {'b', 1, KN_BOOL}, {'c', 8, KN_C64}, {'c', 16, KN_C128},
};

/* What the header dict says. */
typedef struct NpyHeader {
  const NpyType *type;
  bool swap;    /* stored in the other byte order than the host's */
  bool fortran; /* column-major data */
  bool seen_descr, seen_fortran, seen_shape;
  int rank;
  int64_t dims[NPY_MAX_RANK];
} NpyHeader;

/* ---- the header dict: a tiny fixed Python-literal grammar --------------------------------------
 */

typedef struct Lex {
  const char *start, *p, *end;
  const char *path;
  KnError *err;
} Lex;

static void skip_space(Lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
    l->p++;
}

static bool eat(Lex *l, char c) {
  skip_space(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return true;
  }
  return false;
}

static KnStatus bad_header(Lex *l, const char *expected) {
  return kn_fail(l->err, KN_ERR_FORMAT, "%s: .npy header: expected %s at header byte %zu", l->path,
                 expected, (size_t)(l->p - l->start));
}

/* A quoted string without escapes; *s points into the header, not NUL-terminated. */
static bool lex_string(Lex *l, const char **s, size_t *n) {
  skip_space(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
  char q = *l->p++;
  const char *start = l->p;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\' || *l->p == '\n') return false;
    l->p++;
  }
  if (l->p >= l->end) return false;
  *s = start;
  *n = (size_t)(l->p - start);
  l->p++;
  return true;
}

static bool lex_word(Lex *l, const char *word) {
  skip_space(l);
  size_t n = strlen(word);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, word, n) != 0) return false;
  const char *after = l->p + n;
  if (after < l->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                         (*after >= '0' && *after <= '9') || *after == '_'))
    return false;
  l->p = after;
  return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A non-negative decimal integer (Python 2's "3L" too) into a dim. */
static KnStatus lex_dim(Lex *l, int64_t *v) {
  skip_space(l);
  if (l->p >= l->end || !is_digit(*l->p)) {
    if (l->p < l->end && *l->p == '-')
      return kn_fail(l->err, KN_ERR_FORMAT, "%s: .npy header: negative dimension", l->path);
    return bad_header(l, "a dimension");
  }
  int64_t x = 0;
  while (l->p < l->end && is_digit(*l->p)) {
    if (ir_mul_overflows(x, 10, &x) || ir_add_overflows(x, *l->p - '0', &x))
      return kn_fail(l->err, KN_ERR_LIMIT, "%s: .npy header: a dimension overflows int64", l->path);
    l->p++;
  }
  if (l->p < l->end && (*l->p == 'L' || *l->p == 'l')) l->p++;
  *v = x;
  return KN_OK;
}

/* "(2, 3)", "(5,)", "()": a one-element tuple needs its comma, as in Python. */
static KnStatus parse_shape(Lex *l, NpyHeader *h) {
  if (!eat(l, '(')) return bad_header(l, "a shape tuple");
  h->rank = 0;
  bool comma = false;
  while (!eat(l, ')')) {
    if (h->rank == NPY_MAX_RANK)
      return kn_fail(l->err, KN_ERR_LIMIT, "%s: .npy header: more than %d dimensions", l->path,
                     NPY_MAX_RANK);
    KnStatus st = lex_dim(l, &h->dims[h->rank++]);
    if (st) return st;
    comma = eat(l, ',');
    if (!comma) {
      if (!eat(l, ')')) return bad_header(l, "',' or ')' in the shape");
      break;
    }
  }
  if (h->rank == 1 && !comma) return bad_header(l, "a tuple for the shape, not an integer");
  return KN_OK;
}

/* descr "<f4": byte order ('<', '>', '|' or '=' native), kind letter, item size. */
static KnStatus parse_descr(Lex *l, NpyHeader *h) {
  const char *s;
  size_t n;
  skip_space(l);
  if (l->p < l->end && *l->p == '[')
    return kn_fail(l->err, KN_ERR_UNSUPPORTED, "%s: structured .npy dtypes are not supported",
                   l->path);
  if (!lex_string(l, &s, &n)) return bad_header(l, "a dtype string for 'descr'");
  char order = n ? s[0] : 0;
  bool has_order = order == '<' || order == '>' || order == '|' || order == '=';
  const char *k = has_order ? s + 1 : s;
  size_t kn = has_order ? n - 1 : n;
  if (kn >= 1 && (k[0] == 'U' || k[0] == 'S' || k[0] == 'O' || k[0] == 'a'))
    return kn_fail(l->err, KN_ERR_UNSUPPORTED,
                   "%s: .npy string and object arrays are not supported; use a .pb TensorProto",
                   l->path);
  int size = 0;
  bool digits = kn >= 2 && kn <= 3;
  for (size_t i = 1; digits && i < kn; i++)
    digits = is_digit(k[i]), size = size * 10 + (k[i] - '0');
  for (size_t i = 0; digits && i < sizeof npy_types / sizeof *npy_types; i++)
    if (npy_types[i].kind == k[0] && npy_types[i].size == size) h->type = &npy_types[i];
  if (!h->type)
    return kn_fail(l->err, KN_ERR_UNSUPPORTED, "%s: .npy dtype '%.*s' is not supported", l->path,
                   (int)(n > 32 ? 32 : n), s);
  bool big = order == '>' || ((order == '=' || order == '|') && host_big_endian);
  h->swap = size > 1 && big != host_big_endian;
  return KN_OK;
}

static KnStatus parse_entry(Lex *l, NpyHeader *h) {
  const char *key;
  size_t n;
  if (!lex_string(l, &key, &n)) return bad_header(l, "a quoted key");
  if (!eat(l, ':')) return bad_header(l, "':' after a key");
  bool *seen = n == 5 && !memcmp(key, "descr", 5)             ? &h->seen_descr
               : n == 13 && !memcmp(key, "fortran_order", 13) ? &h->seen_fortran
               : n == 5 && !memcmp(key, "shape", 5)           ? &h->seen_shape
                                                              : NULL;
  if (!seen)
    return kn_fail(l->err, KN_ERR_FORMAT, "%s: .npy header: unexpected key '%.*s'", l->path,
                   (int)(n > 32 ? 32 : n), key);
  if (*seen)
    return kn_fail(l->err, KN_ERR_FORMAT, "%s: .npy header: key '%.*s' appears twice", l->path,
                   (int)n, key);
  *seen = true;
  if (seen == &h->seen_descr) return parse_descr(l, h);
  if (seen == &h->seen_shape) return parse_shape(l, h);
  if (lex_word(l, "True"))
    h->fortran = true;
  else if (!lex_word(l, "False"))
    return bad_header(l, "True or False for 'fortran_order'");
  return KN_OK;
}

static KnStatus parse_header(const char *text, size_t len, const char *path, NpyHeader *h,
                             KnError *err) {
  Lex l = {text, text, text + len, path, err};
  memset(h, 0, sizeof *h);
  if (!eat(&l, '{')) return bad_header(&l, "'{'");
  while (!eat(&l, '}')) {
    KnStatus st = parse_entry(&l, h);
    if (st) return st;
    if (!eat(&l, ',')) {
      if (!eat(&l, '}')) return bad_header(&l, "',' or '}'");
      break;
    }
  }
  skip_space(&l);
  if (l.p != l.end) return bad_header(&l, "the end of the header after '}'");
  if (!h->seen_descr || !h->seen_fortran || !h->seen_shape)
    return kn_fail(err, KN_ERR_FORMAT, "%s: .npy header lacks '%s'", path,
                   !h->seen_descr     ? "descr"
                   : !h->seen_fortran ? "fortran_order"
                                      : "shape");
  return KN_OK;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* The magic, version and header length; sets *hdr and *hdr_len to the dict's bytes. */
static KnStatus parse_preamble(const unsigned char *d, size_t size, const char *path,
                               const char **hdr, size_t *hdr_len, KnError *err) {
  if (size < NPY_MAGIC_LEN + 4 || memcmp(d, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
    return kn_fail(err, KN_ERR_FORMAT, "%s: not a .npy file (bad magic or truncated preamble)",
                   path);
  int major = d[6], minor = d[7];
  if (major < 1 || major > 3 || minor != 0)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "%s: .npy version %d.%d is not supported", path, major,
                   minor);
  size_t start = major == 1 ? 10 : 12;
  if (size < start) return kn_fail(err, KN_ERR_FORMAT, "%s: .npy preamble is truncated", path);
  size_t len = major == 1
                   ? (size_t)d[8] | (size_t)d[9] << 8
                   : (size_t)d[8] | (size_t)d[9] << 8 | (size_t)d[10] << 16 | (size_t)d[11] << 24;
  if (len > size - start)
    return kn_fail(err, KN_ERR_FORMAT,
                   "%s: .npy header length %zu runs past the end of the %zu-byte file", path, len,
                   size);
  *hdr = (const char *)d + start;
  *hdr_len = len;
  return KN_OK;
}

/* Copies Fortran-ordered src into C-ordered dst, walking dst in order with an odometer over the
 * index whose Fortran offset is kept up to date incrementally. */
static void fortran_to_c(unsigned char *dst, const unsigned char *src, const NpyHeader *h,
                         int64_t numel, size_t esize) {
  int64_t idx[NPY_MAX_RANK] = {0}, stride[NPY_MAX_RANK];
  for (int k = 0; k < h->rank; k++)
    stride[k] = k ? stride[k - 1] * h->dims[k - 1] : 1;
  int64_t off = 0;
  for (int64_t i = 0; i < numel; i++) {
    memcpy(dst + (size_t)i * esize, src + (size_t)off * esize, esize);
    for (int k = h->rank - 1; k >= 0; k--) {
      off += stride[k];
      if (++idx[k] < h->dims[k]) break;
      off -= stride[k] * h->dims[k];
      idx[k] = 0;
    }
  }
}

static void swap_bytes(unsigned char *p, size_t count, int unit) {
  for (size_t i = 0; i < count; i++, p += unit)
    for (int a = 0, b = unit - 1; a < b; a++, b--) {
      unsigned char c = p[a];
      p[a] = p[b];
      p[b] = c;
    }
}

/* Copies the data into t in C order and host byte order; bools become 0/1. */
static void load_data(KnTensor *t, const unsigned char *src, const NpyHeader *h) {
  size_t esize = (size_t)h->type->size;
  if (h->fortran && h->rank > 1)
    fortran_to_c(t->data, src, h, t->numel, esize);
  else if (t->nbytes)
    memcpy(t->data, src, t->nbytes);
  if (h->swap) {
    /* A complex number is two floats, each swapped on its own. */
    int unit = h->type->kind == 'c' ? h->type->size / 2 : h->type->size;
    swap_bytes(t->data, t->nbytes / (size_t)unit, unit);
  }
  if (t->dtype == KN_BOOL) {
    unsigned char *b = t->data;
    for (int64_t i = 0; i < t->numel; i++)
      b[i] = b[i] != 0;
  }
}

/* Element count and byte size within lim; the data must fill the rest of the file exactly. */
static KnStatus check_sizes(const NpyHeader *h, size_t avail, const char *path, const KnLimits *lim,
                            KnError *err) {
  int64_t numel = 1;
  for (int k = 0; k < h->rank; k++)
    if (ir_mul_overflows(numel, h->dims[k], &numel))
      return kn_fail(err, KN_ERR_LIMIT, "%s: .npy shape's element count overflows", path);
  if (numel > lim->max_tensor_elems)
    return kn_fail(err, KN_ERR_LIMIT, "%s: %lld elements exceed the limit of %lld", path,
                   (long long)numel, (long long)lim->max_tensor_elems);
  int64_t nbytes;
  if (ir_mul_overflows(numel, h->type->size, &nbytes) || (uint64_t)nbytes > SIZE_MAX)
    return kn_fail(err, KN_ERR_LIMIT, "%s: .npy data size overflows", path);
  if ((uint64_t)nbytes > avail)
    return kn_fail(err, KN_ERR_FORMAT,
                   "%s: .npy data is truncated: %zu bytes present, the shape needs %lld", path,
                   avail, (long long)nbytes);
  if ((uint64_t)nbytes < avail)
    return kn_fail(err, KN_ERR_FORMAT, "%s: %zu bytes of trailing garbage after the .npy data",
                   path, avail - (size_t)nbytes);
  return KN_OK;
}

KnStatus fe_read_npy_memory(KnArena *a, const void *data, size_t size, const char *path,
                            const KnLimits *lim, KnTensor **out, KnError *err) {
  *out = NULL;
  KnLimits l = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&l);
  const char *hdr = NULL;
  size_t hdr_len = 0;
  NpyHeader h;
  KnStatus st = parse_preamble(data, size, path, &hdr, &hdr_len, err);
  if (!st) st = parse_header(hdr, hdr_len, path, &h, err);
  if (st) return st;
  size_t start = (size_t)(hdr - (const char *)data) + hdr_len;
  st = check_sizes(&h, size - start, path, &l, err);
  if (st) return st;
  KnError local = {0};
  KnTensor *t = ir_tensor_new(a, h.type->dtype, h.rank, h.dims, &local);
  if (!t) return kn_fail(err, local.status, "%s: %s", path, local.msg);
  load_data(t, (const unsigned char *)data + start, &h);
  *out = t;
  return KN_OK;
}

/* ---- writing -------------------------------------------------------------------------------- */

static const NpyType *npy_type_of(KnDtype d) {
  for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
    if (npy_types[i].dtype == d) return &npy_types[i];
  return NULL;
}

/* The dict as numpy writes it: sorted keys, repr() of the shape, room to grow the first dim. */
static char *header_text(const KnTensor *t, const NpyType *nt, size_t *len) {
  size_t cap = 128 + (size_t)t->rank * 24;
  char *s = malloc(cap);
  if (!s) return NULL;
  int n = snprintf(s, cap, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': (",
                   nt->size == 1 ? '|' : '<', nt->kind, nt->size);
  for (int k = 0; k < t->rank; k++)
    n += snprintf(s + n, cap - (size_t)n, k ? ", %lld" : "%lld", (long long)t->dims[k]);
  n += snprintf(s + n, cap - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
  if (t->rank > 0) {
    int first = snprintf(NULL, 0, "%lld", (long long)t->dims[0]);
    for (int i = first; i < NPY_GROWTH_DIGITS; i++)
      s[n++] = ' ';
  }
  *len = (size_t)n;
  return s;
}

/* Preamble, header padded with spaces and a newline to NPY_ALIGN, then the data little-endian.
 * Version 2.0 only when the header outgrows 1.0's 16-bit length, as numpy does. */
static unsigned char *encode_npy(const KnTensor *t, const NpyType *nt, size_t *size) {
  size_t dict_len;
  char *dict = header_text(t, nt, &dict_len);
  if (!dict) return NULL;
  size_t pre = 10, hlen = dict_len + 1;
  size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
  if (hlen + pad > 0xffff) {
    pre = 12;
    pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
  }
  size_t head = pre + hlen + pad;
  unsigned char *buf = t->nbytes <= SIZE_MAX - head ? malloc(head + t->nbytes) : NULL;
  if (buf) {
    size_t total = hlen + pad;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
      buf[8 + i] = (unsigned char)(total >> (8 * i));
    memcpy(buf + pre, dict, dict_len);
    memset(buf + pre + dict_len, ' ', pad);
    buf[head - 1] = '\n';
    if (t->nbytes) memcpy(buf + head, t->data, t->nbytes);
    int unit = nt->kind == 'c' ? nt->size / 2 : nt->size;
    if (host_big_endian && unit > 1) swap_bytes(buf + head, t->nbytes / (size_t)unit, unit);
    *size = head + t->nbytes;
  }
  free(dict);
  return buf;
}

KnStatus fe_write_tensor_npy(const char *path, const KnTensor *t, KnError *err) {
  const NpyType *nt = npy_type_of(t->dtype);
  if (!nt)
    return kn_fail(err, KN_ERR_UNSUPPORTED,
                   "%s: .npy has no %s dtype; write a .pb TensorProto instead", path,
                   ir_dtype_name(t->dtype));
  size_t size = 0;
  unsigned char *buf = encode_npy(t, nt, &size);
  if (!buf) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory encoding the .npy file", path);
  KnStatus st = fe_write_file_atomic(path, buf, size, err);
  free(buf);
  return st;
}
