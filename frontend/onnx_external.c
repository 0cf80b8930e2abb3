/* onnx_external.c - tensors whose bytes live in a separate file beside the model (ONNX external
 * data): the path is confined to the model's folder, each file is mapped once, read-only, and
 * unmapped when the model's arena is freed; nothing reads a whole weight file into memory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/onnx_internal.h"

typedef struct ExtRef {
  const char *location;
  int64_t offset, length; /* length -1: not given */
} ExtRef;

typedef struct Mapping {
  void *base;
  size_t size;
} Mapping;

static void unmap(void *ctx) {
  Mapping *mp = ctx;
  munmap(mp->base, mp->size);
}

/* A non-negative decimal integer, nothing else. */
static bool parse_count(const char *s, int64_t *out) {
  int64_t v = 0;
  if (!s || !*s) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || ir_mul_overflows(v, 10, &v) || ir_add_overflows(v, *s - '0', &v))
      return false;
  }
  *out = v;
  return true;
}

static KnStatus parse_ref(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                          ExtRef *r) {
  *r = (ExtRef){NULL, 0, -1};
  for (size_t i = 0; i < tp->n_external_data; i++) {
    const char *k = onnx_str(tp->external_data[i]->key), *v = onnx_str(tp->external_data[i]->value);
    bool ok = true;
    if (strcmp(k, "location") == 0)
      r->location = v;
    else if (strcmp(k, "offset") == 0)
      ok = parse_count(v, &r->offset);
    else if (strcmp(k, "length") == 0)
      ok = parse_count(v, &r->length);
    if (!ok)
      return kn_fail(im->err, KN_ERR_INVALID, "%s: external data %s '%s' is not a byte count", what,
                     k, v);
  }
  if (!r->location || !r->location[0])
    return kn_fail(im->err, KN_ERR_INVALID, "%s: external data without a location", what);
  return KN_OK;
}

/* Opens and maps path (already resolved inside the model's folder) unless it is cached. */
static KnStatus map_file(OnnxImport *im, const char *path, const char *what, OnnxExtFile **out) {
  for (int i = 0; i < im->n_ext; i++)
    if (strcmp(im->ext[i].path, path) == 0) return *out = &im->ext[i], KN_OK;
  if (im->n_ext == im->cap_ext) {
    int cap = im->cap_ext ? im->cap_ext * 2 : 4;
    OnnxExtFile *e = realloc(im->ext, (size_t)cap * sizeof *e);
    if (!e) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
    im->ext = e;
    im->cap_ext = cap;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); /* a FIFO must not block */
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int e = fd < 0 ? errno : EINVAL;
    if (fd >= 0) close(fd);
    return kn_fail(im->err, KN_ERR_IO, "%s: cannot open external data file '%s': %s", what, path,
                   e == EINVAL ? "not a regular file" : strerror(e));
  }
  OnnxExtFile f = {strdup(path), NULL, (size_t)sb.st_size};
  Mapping *mp = ir_arena_alloc(im->m->arena, sizeof *mp);
  KnStatus st = f.path && mp ? KN_OK : kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  if (!st && f.size > 0) {
    void *base = mmap(NULL, f.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      st = kn_fail(im->err, KN_ERR_IO, "%s: cannot map '%s': %s", what, path, strerror(errno));
    } else {
      *mp = (Mapping){base, f.size};
      f.bytes = base;
      if (!ir_arena_on_free(im->m->arena, unmap, mp)) {
        munmap(base, f.size);
        st = kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
      }
    }
  }
  close(fd);
  if (st) {
    free(f.path);
    return st;
  }
  im->ext[im->n_ext] = f;
  *out = &im->ext[im->n_ext++];
  return KN_OK;
}

/* Copies the bytes when the host needs them converted or they are misaligned for the dtype. */
static KnStatus place_data(OnnxImport *im, KnTensor *t, const char *src, const char *what) {
  int unit = t->dtype == KN_C64 ? 4 : t->dtype == KN_C128 ? 8 : ir_dtype_bits(t->dtype) / 8;
  const bool big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
  if (t->nbytes > 0 && (unit <= 1 || (uintptr_t)src % (uintptr_t)unit == 0) &&
      !(big_endian && unit > 1)) {
    t->data = (void *)src; /* read-only mapping: the IR never writes initializer data */
    return KN_OK;
  }
  t->data = ir_arena_alloc(im->m->arena, t->nbytes);
  if (!t->data)
    return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory for %zu bytes", what, t->nbytes);
  if (t->nbytes) memcpy(t->data, src, t->nbytes);
  if (unit > 1) onnx_le_to_host(t->data, t->nbytes / (size_t)unit, unit);
  return KN_OK;
}

KnStatus onnx_external_load(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t,
                            const char *what) {
  if (!im->dir)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                   "%s: external data needs a model folder (not available for in-memory models)",
                   what);
  ExtRef r;
  KnStatus st = parse_ref(im, tp, what, &r);
  if (st) return st;
  if (r.length >= 0 && (uint64_t)r.length != (uint64_t)t->nbytes)
    return kn_fail(im->err, KN_ERR_INVALID,
                   "%s: external data length %lld, but %lld %s elements need %zu bytes", what,
                   (long long)r.length, (long long)t->numel, ir_dtype_name(t->dtype), t->nbytes);
  char path[PATH_MAX];
  KnError local = {0};
  if (fe_resolve_inside(im->dir, r.location, path, sizeof path, &local))
    return kn_fail(im->err, local.status, "%s: external data '%s': %s", what, r.location,
                   local.msg);
  OnnxExtFile *f = NULL;
  st = map_file(im, path, what, &f);
  if (st) return st;
  if ((uint64_t)r.offset > f->size || t->nbytes > f->size - (size_t)r.offset)
    return kn_fail(im->err, KN_ERR_INVALID,
                   "%s: external data '%s' range [%lld, +%zu) is beyond its size %zu", what,
                   r.location, (long long)r.offset, t->nbytes, f->size);
  t->location = ir_arena_strdup(im->m->arena, r.location);
  t->offset = r.offset;
  if (!t->location) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  return place_data(im, t, f->bytes ? f->bytes + r.offset : "", what);
}

void onnx_external_release(OnnxImport *im) {
  for (int i = 0; i < im->n_ext; i++) free(im->ext[i].path);
  free(im->ext);
  im->ext = NULL;
  im->n_ext = im->cap_ext = 0;
}
