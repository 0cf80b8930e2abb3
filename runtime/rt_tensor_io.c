/* rt_tensor_io.c - ONNX TensorProto (.pb) and NumPy (.npy) tensor files for AOT programs, parsed
 * and written by hand so libkiln_rt needs no protobuf library. Little-endian hosts only. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, strndup, clock_gettime without -D_GNU_SOURCE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_aot.h"

#define MAX_RANK 32
#define NPY_MAGIC "\x93NUMPY"

__attribute__((visibility("hidden"), format(printf, 2, 3))) int kn_aot_set_error(int status,
                                                                               const char *fmt, ...);
#define fail kn_aot_set_error

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor files are read in place");

void kn_aot_tensor_free(KnAotTensor *t) {
  if (!t) return;
  free(t->name);
  free(t->dims);
  free(t->data);
  memset(t, 0, sizeof *t);
}

/* numel and nbytes of a shape; fails on negative dims or overflow. */
static int shape_bytes(const char *path, int32_t dtype, int rank, const int64_t *dims,
                       size_t *nbytes) {
  size_t esize = kn_aot_dtype_size(dtype);
  if (!esize) return fail(KN_AOT_ERR_UNSUPPORTED, "%s: data type %d is not supported", path, dtype);
  if (rank < 0 || rank > MAX_RANK)
    return fail(KN_AOT_ERR_LIMIT, "%s: rank %d (at most %d)", path, rank, MAX_RANK);
  uint64_t n = esize;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) return fail(KN_AOT_ERR_FORMAT, "%s: negative dimension %lld", path,
                                 (long long)dims[i]);
    if (__builtin_mul_overflow(n, (uint64_t)dims[i], &n) || n > (uint64_t)INT64_MAX)
      return fail(KN_AOT_ERR_LIMIT, "%s: the shape's size overflows", path);
  }
  *nbytes = (size_t)n;
  return KN_AOT_OK;
}

/* Fills t's dims and a zeroed data buffer of nbytes (checked against the file first). */
static int alloc_tensor(const char *path, KnAotTensor *t, const int64_t *dims, size_t nbytes) {
  t->dims = malloc(sizeof *t->dims * (size_t)(t->rank ? t->rank : 1));
  t->data = calloc(1, nbytes ? nbytes : 1);
  if (!t->dims || !t->data) return fail(KN_AOT_ERR_NOMEM, "%s: out of memory for %zu bytes", path, nbytes);
  if (t->rank) memcpy(t->dims, dims, sizeof *dims * (size_t)t->rank);
  t->nbytes = nbytes;
  return KN_AOT_OK;
}

static int read_file(const char *path, uint8_t **out, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
  if (fd < 0) return fail(KN_AOT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  int rc = KN_AOT_OK;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = fail(KN_AOT_ERR_IO, "%s: not a regular file", path);
  else if ((uint64_t)st.st_size >= SIZE_MAX / 2)
    rc = fail(KN_AOT_ERR_LIMIT, "%s: file too large", path);
  else if (!(buf = malloc((size_t)st.st_size + 1)))
    rc = fail(KN_AOT_ERR_NOMEM, "%s: out of memory for %lld bytes", path, (long long)st.st_size);
  size_t got = 0;
  while (rc == KN_AOT_OK && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) rc = fail(KN_AOT_ERR_IO, "%s: read failed after %zu bytes", path, got);
    else got += (size_t)r;
  }
  close(fd);
  if (rc) free(buf);
  else *out = buf, *size = got;
  return rc;
}

/* ---- TensorProto --------------------------------------------------------------------------- */

typedef struct PbField {
  uint32_t num, wire;
  uint64_t v;         /* wire 0, 1, 5: the value */
  const uint8_t *p;   /* wire 2: the payload */
  size_t len;
} PbField;

static bool varint(const uint8_t *d, size_t *pos, size_t end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < end; shift += 7) {
    uint8_t b = d[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

static uint64_t le_bytes(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The next field at *pos; false on a truncated or corrupt one. */
static bool next_field(const uint8_t *d, size_t *pos, size_t end, PbField *f) {
  uint64_t key;
  if (!varint(d, pos, end, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff) return false;
  f->num = (uint32_t)(key >> 3), f->wire = key & 7;
  size_t n = f->wire == 1 ? 8 : f->wire == 5 ? 4 : 0;
  if (f->wire == 0) return varint(d, pos, end, &f->v);
  if (n) {
    if (end - *pos < n) return false;
    f->v = le_bytes(d + *pos, (int)n);
    *pos += n;
    return true;
  }
  if (f->wire != 2 || !varint(d, pos, end, &f->v) || f->v > end - *pos) return false;
  f->p = d + *pos, f->len = (size_t)f->v;
  *pos += f->len;
  return true;
}

/* The repeated field that holds dtype's values when raw_data is absent (ONNX's rules). */
static uint32_t typed_field(int32_t dtype) {
  switch (dtype) {
  case KN_AOT_FLOAT: return 4;
  case KN_AOT_INT64: return 7;
  case KN_AOT_DOUBLE: return 10;
  case KN_AOT_UINT32: case KN_AOT_UINT64: return 11;
  default: return 5; /* int32 and every narrower type, float16 and bfloat16 as bit patterns */
  }
}

static bool is_typed(uint32_t num) { return num == 4 || num == 5 || num == 7 || num == 10 || num == 11; }

/* Element width of a packed payload of field num: 4 or 8 fixed bytes, 0 for varints. */
static int packed_width(uint32_t num) { return num == 4 ? 4 : num == 10 ? 8 : 0; }

/* Counts (out == NULL) or stores the values of one typed field occurrence; false if corrupt. */
static bool typed_values(const PbField *f, int32_t dtype, uint8_t *out, size_t *count, size_t cap) {
  int width = packed_width(f->num);
  size_t esize = kn_aot_dtype_size(dtype), pos = 0;
  bool single = f->wire != 2;
  if (single && f->wire != (width == 4 ? 5u : width == 8 ? 1u : 0u)) return false;
  while (single || pos < f->len) {
    uint64_t v = f->v;
    if (!single && width) {
      if (f->len - pos < (size_t)width) return false;
      v = le_bytes(f->p + pos, width), pos += (size_t)width;
    } else if (!single && !varint(f->p, &pos, f->len, &v)) {
      return false;
    }
    if (out && *count < cap) {
      if (dtype == KN_AOT_BOOL) v = v != 0;
      memcpy(out + *count * esize, &v, esize); /* the low bytes: little-endian */
    }
    ++*count;
    if (single) break;
  }
  return true;
}

typedef struct PbTensor {
  int64_t dims[MAX_RANK];
  int rank;
  bool has_dtype, has_raw, external, nested;
  int32_t dtype;
  const uint8_t *raw, *name;
  size_t raw_len, name_len;
  size_t typed[16]; /* values seen per typed field number */
} PbTensor;

static int pb_dims(const char *path, const PbField *f, PbTensor *t) {
  size_t pos = 0;
  do {
    uint64_t v = f->v;
    if (f->wire == 2 && !varint(f->p, &pos, f->len, &v))
      return fail(KN_AOT_ERR_FORMAT, "%s: corrupt packed dims", path);
    if (f->wire != 2 && f->wire != 0) return fail(KN_AOT_ERR_FORMAT, "%s: dims of wire type %u", path, f->wire);
    if (t->rank == MAX_RANK) return fail(KN_AOT_ERR_LIMIT, "%s: more than %d dims", path, MAX_RANK);
    if ((int64_t)v < 0) return fail(KN_AOT_ERR_FORMAT, "%s: negative dimension %lld", path, (long long)v);
    t->dims[t->rank++] = (int64_t)v;
  } while (f->wire == 2 && pos < f->len);
  return KN_AOT_OK;
}

/* First pass: shape, dtype, name, raw_data and how many typed values each field holds. */
static int pb_scan(const char *path, const uint8_t *d, size_t size, PbTensor *t) {
  size_t pos = 0;
  PbField f;
  while (pos < size) {
    size_t at = pos;
    if (!next_field(d, &pos, size, &f))
      return fail(KN_AOT_ERR_FORMAT, "%s: not a TensorProto: truncated or corrupt protobuf at byte %zu",
                  path, at);
    int rc = KN_AOT_OK;
    if (f.num == 1) rc = pb_dims(path, &f, t);
    else if (f.num == 2 && f.wire == 0) t->has_dtype = true, t->dtype = (int32_t)f.v;
    else if (f.num == 8 && f.wire == 2) t->name = f.p, t->name_len = f.len;
    else if (f.num == 9 && f.wire == 2) t->has_raw = true, t->raw = f.p, t->raw_len = f.len;
    else if (f.num == 13 || (f.num == 14 && f.wire == 0 && f.v == 1)) t->external = true;
    else if (f.num == 3) t->nested = true; /* segment; also a SequenceProto's tensors */
    else if (f.num == 6) /* string_data */ t->typed[6]++;
    else if (is_typed(f.num) && !typed_values(&f, KN_AOT_FLOAT, NULL, &t->typed[f.num], 0))
      rc = fail(KN_AOT_ERR_FORMAT, "%s: corrupt values in field %u", path, f.num);
    if (rc) return rc;
  }
  return KN_AOT_OK;
}

/* Checks the scan against the dtype and shape; *field: the typed field to decode, or 0. */
static int pb_check(const char *path, const PbTensor *p, size_t nbytes, uint32_t *field) {
  size_t esize = kn_aot_dtype_size(p->dtype), numel = nbytes / esize, want = typed_field(p->dtype);
  *field = 0;
  for (uint32_t n = 4; n <= 11; n++)
    if (is_typed(n) && p->typed[n] && (n != want || p->has_raw))
      return fail(KN_AOT_ERR_FORMAT, "%s: %s values in field %u, which does not hold them%s", path,
                  kn_aot_dtype_name(p->dtype), n, p->has_raw ? " (raw_data is present)" : "");
  if (p->has_raw) {
    if (p->raw_len != nbytes)
      return fail(KN_AOT_ERR_FORMAT, "%s: raw_data holds %zu bytes, the shape needs %zu", path,
                  p->raw_len, nbytes);
    return KN_AOT_OK;
  }
  if (p->typed[want] != numel)
    return fail(KN_AOT_ERR_FORMAT, "%s: holds %zu values, the shape needs %zu%s", path, p->typed[want],
                numel, p->typed[want] ? "" : " (a sequence or optional file? only tensors are supported)");
  *field = want;
  return KN_AOT_OK;
}

static int pb_decode(const char *path, const uint8_t *d, size_t size, KnAotTensor *t) {
  PbTensor p = {0};
  int rc = pb_scan(path, d, size, &p);
  if (rc) return rc;
  if (p.external) return fail(KN_AOT_ERR_UNSUPPORTED, "%s: external data not supported", path);
  if (p.nested)
    return fail(KN_AOT_ERR_UNSUPPORTED, "%s: not a plain TensorProto (a segment, or a sequence or "
                "optional file); only dense tensors are supported", path);
  if (!p.has_dtype || p.dtype == 0)
    return fail(KN_AOT_ERR_FORMAT, "%s: not a TensorProto (no data_type)", path);
  if (p.dtype == 8 || p.typed[6])
    return fail(KN_AOT_ERR_UNSUPPORTED, "%s: string tensors are not supported", path);
  t->dtype = p.dtype;
  t->rank = p.rank;
  size_t nbytes;
  uint32_t field;
  if ((rc = shape_bytes(path, p.dtype, p.rank, p.dims, &nbytes))) return rc;
  if ((rc = pb_check(path, &p, nbytes, &field)) || (rc = alloc_tensor(path, t, p.dims, nbytes)))
    return rc;
  if (p.name && !(t->name = strndup((const char *)p.name, p.name_len)))
    return fail(KN_AOT_ERR_NOMEM, "%s: out of memory", path);
  if (!field) {
    if (p.raw_len) memcpy(t->data, p.raw, p.raw_len);
    return KN_AOT_OK;
  }
  size_t pos = 0, count = 0, cap = t->nbytes / kn_aot_dtype_size(t->dtype);
  PbField f;
  while (pos < size && next_field(d, &pos, size, &f))
    if (f.num == field) typed_values(&f, t->dtype, t->data, &count, cap);
  return KN_AOT_OK;
}

/* ---- .npy ---------------------------------------------------------------------------------- */

typedef struct NpyLex {
  const char *p, *end, *path;
} NpyLex;

static void npy_space(NpyLex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\n' || *l->p == '\t')) l->p++;
}

static bool npy_eat(NpyLex *l, char c) {
  npy_space(l);
  if (l->p >= l->end || *l->p != c) return false;
  l->p++;
  return true;
}

/* A quoted string (no escapes) of at most cap - 1 bytes into buf. */
static bool npy_string(NpyLex *l, char *buf, size_t cap) {
  if (!npy_eat(l, '\'') && !npy_eat(l, '"')) return false;
  char q = l->p[-1];
  size_t n = 0;
  while (l->p < l->end && *l->p != q && n + 1 < cap) buf[n++] = *l->p++;
  buf[n] = '\0';
  return npy_eat(l, q);
}

static int npy_dtype(const char *path, const char *descr, int32_t *dtype) {
  static const struct { const char *d; int32_t t; } types[] = {
      {"f4", KN_AOT_FLOAT}, {"f8", KN_AOT_DOUBLE}, {"f2", KN_AOT_FLOAT16}, {"i1", KN_AOT_INT8},
      {"u1", KN_AOT_UINT8}, {"i2", KN_AOT_INT16},  {"u2", KN_AOT_UINT16},  {"i4", KN_AOT_INT32},
      {"u4", KN_AOT_UINT32}, {"i8", KN_AOT_INT64}, {"u8", KN_AOT_UINT64},  {"b1", KN_AOT_BOOL}};
  char order = descr[0];
  bool one_byte = strlen(descr) == 3 && descr[2] == '1';
  if (order == '<' || order == '=' || order == '|' || (order == '>' && one_byte))
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
      if (strcmp(descr + 1, types[i].d) == 0) return *dtype = types[i].t, KN_AOT_OK;
  return fail(KN_AOT_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported (expected one of "
              "<f4 <f8 <f2 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1)", path, descr);
}

static int npy_shape(NpyLex *l, int *rank, int64_t *dims) {
  if (!npy_eat(l, '(')) return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected a shape tuple", l->path);
  *rank = 0;
  while (!npy_eat(l, ')')) {
    if (*rank == MAX_RANK) return fail(KN_AOT_ERR_LIMIT, "%s: .npy rank above %d", l->path, MAX_RANK);
    npy_space(l);
    uint64_t v = 0;
    const char *start = l->p;
    for (; l->p < l->end && *l->p >= '0' && *l->p <= '9'; l->p++)
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*l->p - '0'), &v) ||
          v > (uint64_t)INT64_MAX)
        return fail(KN_AOT_ERR_LIMIT, "%s: .npy dimension overflows", l->path);
    if (l->p == start) return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected a dimension", l->path);
    dims[(*rank)++] = (int64_t)v;
    if (!npy_eat(l, ',') && !(l->p < l->end && *l->p == ')'))
      return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected ',' or ')' in the shape", l->path);
  }
  return KN_AOT_OK;
}

/* The header dict: 'descr', 'fortran_order' and 'shape', each exactly once. */
static int npy_header(NpyLex *l, KnAotTensor *t, int64_t *dims) {
  int seen = 0, rc = KN_AOT_OK;
  char key[16], descr[16];
  if (!npy_eat(l, '{')) return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected '{'", l->path);
  while (!rc && !npy_eat(l, '}')) {
    if (!npy_string(l, key, sizeof key) || !npy_eat(l, ':'))
      return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected 'key':", l->path);
    int bit = !strcmp(key, "descr") ? 1 : !strcmp(key, "fortran_order") ? 2 : !strcmp(key, "shape") ? 4 : 0;
    if (!bit || (seen & bit))
      return fail(KN_AOT_ERR_FORMAT, "%s: .npy header: unexpected or repeated key '%s'", l->path, key);
    seen |= bit;
    if (bit == 1)
      rc = npy_string(l, descr, sizeof descr) ? npy_dtype(l->path, descr, &t->dtype)
                                              : fail(KN_AOT_ERR_UNSUPPORTED, "%s: .npy descr: only "
                                                     "plain numeric dtypes are supported", l->path);
    else if (bit == 4) rc = npy_shape(l, &t->rank, dims);
    else if (npy_eat(l, 'T')) rc = fail(KN_AOT_ERR_UNSUPPORTED, "%s: Fortran-order .npy is not "
                                        "supported; save with numpy.ascontiguousarray", l->path);
    else if (!npy_eat(l, 'F') || l->end - l->p < 4 || memcmp(l->p, "alse", 4) != 0)
      rc = fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected True or False", l->path);
    else l->p += 4;
    if (!rc && !npy_eat(l, ',') && !(l->p < l->end && *l->p == '}'))
      rc = fail(KN_AOT_ERR_FORMAT, "%s: .npy header: expected ',' or '}'", l->path);
  }
  if (!rc && seen != 7) rc = fail(KN_AOT_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", l->path);
  return rc;
}

static int npy_decode(const char *path, const uint8_t *d, size_t size, KnAotTensor *t) {
  if (size < 10 || memcmp(d, NPY_MAGIC, 6) != 0)
    return fail(KN_AOT_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
  if (d[6] < 1 || d[6] > 3)
    return fail(KN_AOT_ERR_UNSUPPORTED, "%s: .npy version %d.%d (expected 1.0 to 3.0)", path, d[6], d[7]);
  size_t pre = d[6] == 1 ? 10 : 12;
  uint64_t hlen = size >= pre ? le_bytes(d + 8, (int)pre - 8) : 0;
  if (size < pre || hlen > size - pre)
    return fail(KN_AOT_ERR_FORMAT, "%s: .npy header of %llu bytes runs past the file's %zu", path,
                (unsigned long long)hlen, size);
  NpyLex l = {(const char *)d + pre, (const char *)d + pre + hlen, path};
  int64_t dims[MAX_RANK];
  size_t data = size - pre - (size_t)hlen, nbytes = 0;
  int rc = npy_header(&l, t, dims);
  if (!rc) rc = shape_bytes(path, t->dtype, t->rank, dims, &nbytes);
  if (!rc && data != nbytes)
    rc = fail(KN_AOT_ERR_FORMAT, "%s: .npy holds %zu data bytes, its shape needs %zu", path, data, nbytes);
  if (!rc) rc = alloc_tensor(path, t, dims, nbytes);
  if (!rc && t->nbytes) memcpy(t->data, d + pre + hlen, t->nbytes);
  if (!rc && t->dtype == KN_AOT_BOOL)
    for (size_t i = 0; i < t->nbytes; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
  return rc;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int kn_aot_read_tensor(const char *path, KnAotTensor *out) {
  if (!out) return fail(KN_AOT_ERR_INVALID, "kn_aot_read_tensor: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return fail(KN_AOT_ERR_INVALID, "kn_aot_read_tensor: path is NULL");
  uint8_t *d = NULL;
  size_t size = 0;
  int rc = read_file(path, &d, &size);
  if (rc) return rc;
  bool npy = ends_with(path, ".npy") || (size >= 6 && memcmp(d, NPY_MAGIC, 6) == 0);
  if (!npy && size == 0) rc = fail(KN_AOT_ERR_FORMAT, "%s: empty file", path);
  else rc = npy ? npy_decode(path, d, size, out) : pb_decode(path, d, size, out);
  free(d);
  if (rc) kn_aot_tensor_free(out);
  return rc;
}

/* ---- writing --------------------------------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  for (; v >= 0x80; v >>= 7) p[n++] = (uint8_t)(v | 0x80);
  p[n++] = (uint8_t)v;
  return n;
}

/* The bytes before the data: TensorProto fields up to raw_data's length, or the .npy header. */
static int encode_head(const char *path, const char *name, int32_t dtype, int32_t rank,
                       const int64_t *dims, size_t nbytes, bool npy, uint8_t *h, size_t cap, size_t *len) {
  size_t n = 0;
  if (npy) {
    static const char *descr[] = {[KN_AOT_FLOAT] = "<f4", [KN_AOT_UINT8] = "|u1", [KN_AOT_INT8] = "|i1",
        [KN_AOT_UINT16] = "<u2", [KN_AOT_INT16] = "<i2", [KN_AOT_INT32] = "<i4", [KN_AOT_INT64] = "<i8",
        [KN_AOT_BOOL] = "|b1", [KN_AOT_FLOAT16] = "<f2", [KN_AOT_DOUBLE] = "<f8", [KN_AOT_UINT32] = "<u4",
        [KN_AOT_UINT64] = "<u8"};
    if (dtype >= (int32_t)(sizeof descr / sizeof *descr) || !descr[dtype])
      return fail(KN_AOT_ERR_UNSUPPORTED, "%s: .npy has no %s dtype; write a .pb instead", path,
                  kn_aot_dtype_name(dtype));
    n = (size_t)snprintf((char *)h + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[dtype]);
    for (int i = 0; i < rank; i++)
      n += (size_t)snprintf((char *)h + 10 + n, cap - 10 - n, i ? ", %lld" : "%lld", (long long)dims[i]);
    n += (size_t)snprintf((char *)h + 10 + n, cap - 10 - n, "%s), }", rank == 1 ? "," : "");
    while ((10 + n + 1) % 64) h[10 + n++] = ' ';
    h[10 + n++] = '\n';
    memcpy(h, NPY_MAGIC "\x01\x00", 8);
    h[8] = (uint8_t)(n & 0xff), h[9] = (uint8_t)(n >> 8);
    *len = n + 10;
    return KN_AOT_OK;
  }
  for (int i = 0; i < rank; i++) h[n++] = 0x08, n += put_varint(h + n, (uint64_t)dims[i]);
  h[n++] = 0x10, n += put_varint(h + n, (uint64_t)dtype);
  if (name && name[0]) {
    size_t sl = strlen(name);
    h[n++] = 0x42, n += put_varint(h + n, sl);
    memcpy(h + n, name, sl), n += sl;
  }
  h[n++] = 0x4a, n += put_varint(h + n, nbytes);
  *len = n;
  return KN_AOT_OK;
}

static bool write_all(int fd, const void *p, size_t n) {
  for (const uint8_t *b = p; n;) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w, n -= (size_t)w;
  }
  return true;
}

int kn_aot_write_tensor(const char *path, const char *name, int32_t dtype, int32_t rank,
                        const int64_t *dims, const void *data) {
  if (!path) return fail(KN_AOT_ERR_INVALID, "kn_aot_write_tensor: path is NULL");
  size_t nbytes, name_len = name ? strlen(name) : 0;
  int rc = (rank > 0 && !dims) ? fail(KN_AOT_ERR_INVALID, "%s: dims is NULL", path)
                               : shape_bytes(path, dtype, rank, dims, &nbytes);
  if (rc) return rc;
  if (nbytes && !data) return fail(KN_AOT_ERR_INVALID, "%s: data is NULL", path);
  if (name_len > 65536) return fail(KN_AOT_ERR_LIMIT, "%s: tensor name too long", path);
  bool npy = ends_with(path, ".npy");
  size_t cap = 256 + (size_t)rank * 24 + name_len, len = 0;
  uint8_t *head = malloc(cap);
  char *tmp = malloc(strlen(path) + 32);
  if (!head || !tmp) rc = fail(KN_AOT_ERR_NOMEM, "%s: out of memory", path);
  if (!rc) rc = encode_head(path, name, dtype, rank, dims, nbytes, npy, head, cap, &len);
  if (!rc) {
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
      rc = fail(KN_AOT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
      bool ok = write_all(fd, head, len) && write_all(fd, data, nbytes);
      ok = close(fd) == 0 && ok;
      if (!ok || rename(tmp, path) != 0) {
        rc = fail(KN_AOT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
      }
    }
  }
  free(head);
  free(tmp);
  return rc;
}
