/* safetensors.c - reading (mmapped, fully validated) and writing safetensors weight files:
 * 8-byte little-endian header size N, N bytes of JSON, then the tensor bytes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "frontend/kir_internal.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* as the reference implementation */
#define ST_MAX_JSON_DEPTH 4                 /* root { name { shape [ ] } } */
#define ST_MAX_RANK 1024
#define ST_MAX_EXACT 9007199254740992.0     /* 2^53: larger JSON numbers are not exact */

static const struct {
  KnDtype dtype;
  const char *name;
} st_names[] = {
    {KN_F32, "F32"},  {KN_F16, "F16"},  {KN_BF16, "BF16"}, {KN_F64, "F64"},
    {KN_I8, "I8"},    {KN_U8, "U8"},    {KN_I16, "I16"},   {KN_U16, "U16"},
    {KN_I32, "I32"},  {KN_U32, "U32"},  {KN_I64, "I64"},   {KN_U64, "U64"},
    {KN_BOOL, "BOOL"}, {KN_F8E4M3FN, "F8_E4M3"}, {KN_F8E5M2, "F8_E5M2"},
};
#define N_ST_NAMES (sizeof st_names / sizeof *st_names)

const char *st_dtype_name(KnDtype t) {
  for (size_t i = 0; i < N_ST_NAMES; i++)
    if (st_names[i].dtype == t) return st_names[i].name;
  return NULL;
}

static bool st_dtype_from_name(const char *s, KnDtype *out) {
  for (size_t i = 0; i < N_ST_NAMES; i++)
    if (strcmp(st_names[i].name, s) == 0) return (*out = st_names[i].dtype), true;
  return false;
}

/* ---- reading -------------------------------------------------------------------------- */

typedef struct StMap {
  void *p;
  size_t len;
} StMap;

static void st_unmap(void *ctx) {
  StMap *m = ctx;
  munmap(m->p, m->len);
}

/* Bounds JSON nesting before cJSON recurses into it. */
static bool depth_ok(const char *s, size_t n) {
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      if (++depth > ST_MAX_JSON_DEPTH) return false;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return true;
}

static bool exact_count(const cJSON *j, int64_t *out) {
  if (!cJSON_IsNumber(j)) return false;
  double d = j->valuedouble;
  if (!(d >= 0 && d <= ST_MAX_EXACT) || floor(d) != d) return false;
  *out = (int64_t)d;
  return true;
}

typedef struct StCtx {
  KnArena *a;
  const char *path;
  const unsigned char *data; /* start of the byte buffer after the header */
  uint64_t data_len, data_start;
  KnError *err;
} StCtx;

static KnStatus st_bad(const StCtx *c, const char *key, const char *what) {
  return kn_fail(c->err, KN_ERR_FORMAT, "%s: tensor '%s': %s", c->path, key, what);
}

static KnStatus read_shape(const StCtx *c, const char *key, const cJSON *shape, KnTensor *t) {
  int rank = cJSON_GetArraySize(shape);
  if (!cJSON_IsArray(shape) || rank > ST_MAX_RANK) return st_bad(c, key, "bad \"shape\"");
  t->rank = rank;
  t->dims = ir_arena_calloc(c->a, (size_t)(rank ? rank : 1), sizeof *t->dims);
  if (!t->dims) return kn_fail(c->err, KN_ERR_NOMEM, "%s: out of memory", c->path);
  int64_t numel = 1;
  int i = 0;
  for (const cJSON *d = shape->child; d; d = d->next, i++) {
    if (!exact_count(d, &t->dims[i])) return st_bad(c, key, "shape entries must be counts");
    if (ir_mul_overflows(numel, t->dims[i], &numel))
      return kn_fail(c->err, KN_ERR_LIMIT, "%s: tensor '%s': element count overflows", c->path, key);
  }
  t->numel = numel;
  if (!ir_dtype_nbytes(t->dtype, numel, &t->nbytes))
    return kn_fail(c->err, KN_ERR_LIMIT, "%s: tensor '%s': byte size overflows", c->path, key);
  return KN_OK;
}

/* Points t at its bytes, copying them when the file leaves them misaligned for the dtype. */
static KnStatus place(const StCtx *c, KnTensor *t, int64_t begin) {
  const unsigned char *p = c->data + begin;
  size_t align = (size_t)(ir_dtype_bits(t->dtype) / 8);
  if (align > 1 && (uintptr_t)p % align) {
    void *copy = ir_arena_alloc(c->a, t->nbytes);
    if (!copy) return kn_fail(c->err, KN_ERR_NOMEM, "%s: out of memory", c->path);
    memcpy(copy, p, t->nbytes);
    p = copy;
  }
  t->data = (void *)p;
  t->offset = (int64_t)c->data_start + begin;
  return KN_OK;
}

static KnStatus read_entry(const StCtx *c, const cJSON *e, KnTensor *t, int64_t range[2]) {
  const char *key = e->string;
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !shape || !cJSON_IsArray(offs))
    return st_bad(c, key, "needs \"dtype\", \"shape\" and \"data_offsets\"");
  if (!st_dtype_from_name(dt->valuestring, &t->dtype))
    return kn_fail(c->err, KN_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", c->path,
                   key, dt->valuestring);
  KnStatus st = read_shape(c, key, shape, t);
  if (st) return st;
  if (cJSON_GetArraySize(offs) != 2 || !exact_count(offs->child, &range[0]) ||
      !exact_count(offs->child->next, &range[1]) || range[0] > range[1])
    return st_bad(c, key, "\"data_offsets\" must be [begin, end] with begin <= end");
  if ((uint64_t)range[1] > c->data_len) return st_bad(c, key, "data_offsets run past the end of the file");
  if ((uint64_t)(range[1] - range[0]) != t->nbytes) return st_bad(c, key, "data_offsets do not match dtype and shape");
  t->name = ir_arena_strdup(c->a, key);
  t->location = ir_arena_strdup(c->a, c->path);
  if (!t->name || !t->location) return kn_fail(c->err, KN_ERR_NOMEM, "%s: out of memory", c->path);
  return place(c, t, range[0]);
}

typedef struct StSpan {
  int64_t begin, end;
  const char *name;
} StSpan;

static int by_begin(const void *x, const void *y) {
  const StSpan *a = x, *b = y;
  return a->begin < b->begin ? -1 : a->begin > b->begin ? 1 : (a->end > b->end) - (a->end < b->end);
}

static int by_name(const void *x, const void *y) {
  return strcmp(((const StSpan *)x)->name, ((const StSpan *)y)->name);
}

/* Ranges may not overlap (empty tensors aside) and keys may not repeat. */
static KnStatus check_spans(const StCtx *c, StSpan *s, int n) {
  qsort(s, (size_t)n, sizeof *s, by_begin);
  int64_t end = 0;
  for (int i = 0; i < n; i++) {
    if (s[i].begin < end && s[i].begin < s[i].end) return st_bad(c, s[i].name, "data overlaps another tensor");
    if (s[i].end > end) end = s[i].end;
  }
  qsort(s, (size_t)n, sizeof *s, by_name);
  for (int i = 1; i < n; i++)
    if (strcmp(s[i].name, s[i - 1].name) == 0) return st_bad(c, s[i].name, "key appears twice");
  return KN_OK;
}

static KnStatus check_metadata(const StCtx *c, const cJSON *meta) {
  if (!cJSON_IsObject(meta)) return kn_fail(c->err, KN_ERR_FORMAT, "%s: __metadata__ is not an object", c->path);
  for (const cJSON *m = meta->child; m; m = m->next)
    if (!cJSON_IsString(m))
      return kn_fail(c->err, KN_ERR_FORMAT, "%s: __metadata__ values must be strings", c->path);
  return KN_OK;
}

static KnStatus read_entries(const StCtx *c, const cJSON *root, KnTensor ***out, int *n_out) {
  int n = 0;
  for (const cJSON *e = root->child; e; e = e->next) n++;
  KnTensor **ts = ir_arena_calloc(c->a, (size_t)n + 1, sizeof *ts);
  StSpan *spans = calloc((size_t)n + 1, sizeof *spans);
  KnStatus st = ts && spans ? KN_OK : kn_fail(c->err, KN_ERR_NOMEM, "%s: out of memory", c->path);
  int k = 0;
  for (const cJSON *e = root->child; e && !st; e = e->next) {
    if (strcmp(e->string, "__metadata__") == 0) {
      st = check_metadata(c, e);
      continue;
    }
    int64_t range[2] = {0, 0};
    ts[k] = ir_arena_alloc(c->a, sizeof **ts);
    st = ts[k] ? read_entry(c, e, ts[k], range) : kn_fail(c->err, KN_ERR_NOMEM, "%s: out of memory", c->path);
    if (!st) spans[k] = (StSpan){range[0], range[1], e->string}, k++;
  }
  if (!st) st = check_spans(c, spans, k);
  free(spans);
  if (!st) *out = ts, *n_out = k;
  return st;
}

static KnStatus parse_header(StCtx *c, const unsigned char *bytes, uint64_t size, KnTensor ***out,
                             int *n_out) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
  if (n > size - 8) return kn_fail(c->err, KN_ERR_FORMAT, "%s: header size %llu exceeds the file size %llu", c->path, (unsigned long long)n, (unsigned long long)size);
  if (n > ST_MAX_HEADER) return kn_fail(c->err, KN_ERR_LIMIT, "%s: header of %llu bytes is too large", c->path, (unsigned long long)n);
  const char *json = (const char *)bytes + 8;
  if (n < 2 || json[0] != '{' || !depth_ok(json, n))
    return kn_fail(c->err, KN_ERR_FORMAT, "%s: header is not a JSON object of bounded depth", c->path);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, n, &end, 0);
  if (!root) return kn_fail(c->err, KN_ERR_FORMAT, "%s: header is not valid JSON", c->path);
  KnStatus st = KN_OK;
  for (const char *p = end; p < json + n && !st; p++)
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
      st = kn_fail(c->err, KN_ERR_FORMAT, "%s: bytes after the JSON header", c->path);
  c->data = bytes + 8 + n;
  c->data_len = size - 8 - n;
  c->data_start = 8 + n;
  if (!st) st = cJSON_IsObject(root) ? read_entries(c, root, out, n_out)
                                     : kn_fail(c->err, KN_ERR_FORMAT, "%s: header is not an object", c->path);
  cJSON_Delete(root);
  return st;
}

KnStatus st_read(KnArena *a, const char *path, KnTensor ***out, int *n_out, KnError *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
  if (fd < 0) return kn_fail(err, KN_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 8) {
    close(fd);
    return kn_fail(err, KN_ERR_FORMAT, "%s: not a safetensors file (too short or not a file)", path);
  }
  size_t size = (size_t)sb.st_size;
  /* Private and writable: a pass that edits weights in place gets its own copy of the page. */
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return kn_fail(err, KN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
  StMap *m = ir_arena_alloc(a, sizeof *m);
  if (!m || !ir_arena_on_free(a, st_unmap, m)) {
    munmap(p, size);
    return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  }
  *m = (StMap){p, size};
  StCtx c = {.a = a, .path = path, .err = err};
  return parse_header(&c, p, size, out, n_out);
}

/* ---- writing -------------------------------------------------------------------------- */

typedef struct StOrder {
  int index, align;
} StOrder;

/* Widest elements first, so every tensor starts aligned for its dtype. */
static int by_align(const void *x, const void *y) {
  const StOrder *a = x, *b = y;
  if (a->align != b->align) return b->align - a->align;
  return a->index - b->index;
}

static KnStatus check_writable(const char *path, KnTensor *const *ts, const char *const *names,
                               int n, KnError *err) {
  for (int i = 0; i < n; i++) {
    if (!names[i] || !st_dtype_name(ts[i]->dtype))
      return kn_fail(err, KN_ERR_UNSUPPORTED, "%s: tensor '%s' (%s) cannot be stored in safetensors",
                     path, names[i] ? names[i] : "", ir_dtype_name(ts[i]->dtype));
    if (ts[i]->nbytes && !ts[i]->data)
      return kn_fail(err, KN_ERR_INVALID, "%s: tensor '%s' has no data", path, names[i]);
    if (strcmp(names[i], "__metadata__") == 0)
      return kn_fail(err, KN_ERR_INVALID, "%s: '__metadata__' is not a tensor name", path);
  }
  return KN_OK;
}

/* Adds one tensor's entry; every item is owned by root as soon as it exists, so a failed
 * allocation leaks nothing. */
static bool add_entry(cJSON *root, const char *name, const KnTensor *t, uint64_t off) {
  cJSON *e = cJSON_AddObjectToObject(root, name);
  cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
  cJSON *offs = e ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
  bool ok = shape && offs && cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dtype));
  for (int d = 0; d < t->rank && ok; d++)
    ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->dims[d]));
  return ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
         cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->nbytes)));
}

/* Builds the JSON header padded with spaces to a multiple of 8 bytes; data offsets follow
 * the order in ord. */
static char *build_header(KnTensor *const *ts, const char *const *names, const StOrder *ord,
                          int n, size_t *len) {
  cJSON *root = cJSON_CreateObject();
  cJSON *meta = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
  bool ok = meta && cJSON_AddStringToObject(meta, "format", "pt");
  uint64_t off = 0;
  for (int k = 0; k < n && ok; k++) {
    ok = add_entry(root, names[ord[k].index], ts[ord[k].index], off);
    off += ts[ord[k].index]->nbytes;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!json) return NULL;
  size_t n_json = strlen(json), padded = (n_json + 7) & ~(size_t)7;
  char *h = realloc(json, padded + 1);
  if (!h) return free(json), NULL;
  memset(h + n_json, ' ', padded - n_json);
  h[padded] = 0;
  *len = padded;
  return h;
}

typedef struct StBody {
  const char *header;
  size_t hlen;
  KnTensor *const *ts;
  const StOrder *ord;
  int n;
} StBody;

/* The file after its temporary is made: header size, header, then the tensors in ord's order. */
static bool write_body(int fd, void *ctx) {
  const StBody *b = ctx;
  unsigned char size8[8];
  for (int i = 0; i < 8; i++) size8[i] = (unsigned char)((uint64_t)b->hlen >> (8 * i));
  bool ok = fe_write_all(fd, size8, 8) && fe_write_all(fd, b->header, b->hlen);
  for (int k = 0; k < b->n && ok; k++)
    ok = fe_write_all(fd, b->ts[b->ord[k].index]->data, b->ts[b->ord[k].index]->nbytes);
  return ok;
}

KnStatus st_write_named(const char *path, KnTensor *const *tensors, const char *const *names,
                        int n, KnError *err) {
  KnStatus st = check_writable(path, tensors, names, n, err);
  if (st) return st;
  StOrder *ord = calloc((size_t)n + 1, sizeof *ord);
  StSpan *dup = calloc((size_t)n + 1, sizeof *dup);
  if (!ord || !dup) {
    free(ord), free(dup);
    return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  }
  for (int i = 0; i < n; i++) {
    int bits = ir_dtype_bits(tensors[i]->dtype);
    ord[i] = (StOrder){i, bits >= 8 ? bits / 8 : 1};
    dup[i].name = names[i];
  }
  qsort(ord, (size_t)n, sizeof *ord, by_align);
  qsort(dup, (size_t)n, sizeof *dup, by_name);
  for (int i = 1; i < n && !st; i++)
    if (strcmp(dup[i].name, dup[i - 1].name) == 0)
      st = kn_fail(err, KN_ERR_INVALID, "%s: tensor name '%s' appears twice", path, dup[i].name);
  size_t hlen = 0;
  char *header = st ? NULL : build_header(tensors, names, ord, n, &hlen);
  if (!st && !header) st = kn_fail(err, KN_ERR_NOMEM, "%s: out of memory building the header", path);
  StBody body = {header, hlen, tensors, ord, n};
  if (!st) st = fe_write_file_atomic_with(path, write_body, &body, err); /* never a partial file */
  free(header);
  free(ord);
  free(dup);
  return st;
}

KnStatus st_write(const char *path, KnTensor *const *tensors, int n, KnError *err) {
  const char **names = calloc((size_t)n + 1, sizeof *names);
  if (!names) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  for (int i = 0; i < n; i++) names[i] = tensors[i]->name;
  KnStatus st = st_write_named(path, tensors, names, n, err);
  free(names);
  return st;
}
