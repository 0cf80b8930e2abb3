/* rt_aot.c - loading and running models compiled ahead of time (include/kiln_aot.h): weights
 * files, the per-instance arena and run context, and the thread's last error message. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, strndup, clock_gettime without -D_GNU_SOURCE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_aot.h"
#include "runtime/kiln_rt.h"

#define WEIGHTS_HEADER 24 /* magic, digest, n_weights */
#define WEIGHT_ALIGN 64

struct KnAotModel {
  const KnAotInfo *info;
  const void *const *weights; /* info->weights, or table (pointers into map) */
  const void **table;
  void *map;
  size_t map_size;
  uint8_t *arena;
  KnRtCtx ctx;
};

/* Per thread, so parallel instances on different threads keep their own reasons. */
static _Thread_local char last_error[640];

/* Sets this thread's message and returns status; shared with rt_tensor_io.c, not exported. */
__attribute__((visibility("hidden"), format(printf, 2, 3))) int kn_aot_set_error(int status,
                                                                               const char *fmt, ...);
int kn_aot_set_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

const char *kn_aot_last_error(void) { return last_error; }

const char *kn_aot_status_name(int status) {
  static const char *names[] = {"ok",          "io",    "format", "invalid",
                                "unsupported", "limit", "nomem",  "internal"};
  return status >= 0 && (size_t)status < sizeof names / sizeof *names ? names[status] : "?";
}

size_t kn_aot_dtype_size(int32_t dtype) {
  switch (dtype) {
  case KN_AOT_UINT8: case KN_AOT_INT8: case KN_AOT_BOOL: return 1;
  case KN_AOT_UINT16: case KN_AOT_INT16: case KN_AOT_FLOAT16: case KN_AOT_BFLOAT16: return 2;
  case KN_AOT_FLOAT: case KN_AOT_INT32: case KN_AOT_UINT32: return 4;
  case KN_AOT_INT64: case KN_AOT_DOUBLE: case KN_AOT_UINT64: return 8;
  default: return 0;
  }
}

const char *kn_aot_dtype_name(int32_t dtype) {
  switch (dtype) {
  case KN_AOT_FLOAT: return "float32";
  case KN_AOT_UINT8: return "uint8";
  case KN_AOT_INT8: return "int8";
  case KN_AOT_UINT16: return "uint16";
  case KN_AOT_INT16: return "int16";
  case KN_AOT_INT32: return "int32";
  case KN_AOT_INT64: return "int64";
  case KN_AOT_BOOL: return "bool";
  case KN_AOT_FLOAT16: return "float16";
  case KN_AOT_DOUBLE: return "float64";
  case KN_AOT_UINT32: return "uint32";
  case KN_AOT_UINT64: return "uint64";
  case KN_AOT_BFLOAT16: return "bfloat16";
  default: return "?";
  }
}

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Checks the mapped file's header and table against info and fills m->table. */
static int check_weights(KnAotModel *m, const char *path) {
  const KnAotInfo *info = m->info;
  const uint8_t *d = m->map;
  size_t size = m->map_size;
  if (memcmp(d, KN_AOT_WEIGHTS_MAGIC, 8) != 0)
    return kn_aot_set_error(KN_AOT_ERR_FORMAT, "%s: not a kiln weights file (no %s magic)", path,
                            KN_AOT_WEIGHTS_MAGIC);
  uint64_t digest = le64(d + 8), n = le64(d + 16);
  if (digest != info->weights_digest)
    return kn_aot_set_error(KN_AOT_ERR_INVALID,
                            "%s: weights file of another model (digest 0x%016llx, this model "
                            "expects 0x%016llx)", path, (unsigned long long)digest,
                            (unsigned long long)info->weights_digest);
  if (n != info->n_weights)
    return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: holds %llu weights, this model expects %llu",
                            path, (unsigned long long)n, (unsigned long long)info->n_weights);
  if (n > (size - WEIGHTS_HEADER) / 16)
    return kn_aot_set_error(KN_AOT_ERR_FORMAT, "%s: truncated: %zu bytes cannot hold the table of "
                            "%llu weights", path, size, (unsigned long long)n);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t off = le64(d + WEIGHTS_HEADER + 16 * i), nb = le64(d + WEIGHTS_HEADER + 16 * i + 8), end;
    if (off % WEIGHT_ALIGN)
      return kn_aot_set_error(KN_AOT_ERR_FORMAT, "%s: weight %llu at offset %llu, expected a "
                              "multiple of %d", path, (unsigned long long)i, (unsigned long long)off,
                              WEIGHT_ALIGN);
    if (__builtin_add_overflow(off, nb, &end) || end > size)
      return kn_aot_set_error(KN_AOT_ERR_FORMAT, "%s: weight %llu (%llu bytes at offset %llu) "
                              "ends beyond the file's %zu bytes", path, (unsigned long long)i,
                              (unsigned long long)nb, (unsigned long long)off, size);
    if (nb != info->weight_bytes[i])
      return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: weight %llu has %llu bytes, this model "
                              "expects %llu", path, (unsigned long long)i, (unsigned long long)nb,
                              (unsigned long long)info->weight_bytes[i]);
    m->table[i] = d + off;
  }
  return KN_AOT_OK;
}

static int map_weights(KnAotModel *m, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
  if (fd < 0)
    return kn_aot_set_error(KN_AOT_ERR_IO, "%s: cannot open the weights file: %s", path,
                            strerror(errno));
  struct stat st;
  int rc = KN_AOT_OK;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = kn_aot_set_error(KN_AOT_ERR_IO, "%s: not a regular file", path);
  else if ((uint64_t)st.st_size < WEIGHTS_HEADER || (uint64_t)st.st_size > SIZE_MAX)
    rc = kn_aot_set_error(KN_AOT_ERR_FORMAT, "%s: truncated weights file (%lld bytes, expected at "
                          "least %d)", path, (long long)st.st_size, WEIGHTS_HEADER);
  if (rc == KN_AOT_OK) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
      rc = kn_aot_set_error(KN_AOT_ERR_IO, "%s: cannot map the weights file: %s", path,
                            strerror(errno));
    else
      m->map = p, m->map_size = (size_t)st.st_size;
  }
  close(fd);
  return rc;
}

static int load_weights(KnAotModel *m, const char *path) {
  const KnAotInfo *info = m->info;
  if (info->weights) {
    m->weights = info->weights;
    return KN_AOT_OK;
  }
  if (!path && info->n_weights == 0) return KN_AOT_OK; /* nothing to load */
  if (!path)
    return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: the weights are not embedded; a weights file "
                            "(kiln compile --weights) is required", info->name ? info->name : "model");
  if (info->n_weights > SIZE_MAX / sizeof *m->table || (info->n_weights && !info->weight_bytes))
    return kn_aot_set_error(KN_AOT_ERR_LIMIT, "%s: too many weights", path);
  m->table = calloc(info->n_weights ? info->n_weights : 1, sizeof *m->table);
  if (!m->table) return kn_aot_set_error(KN_AOT_ERR_NOMEM, "%s: out of memory", path);
  int rc = map_weights(m, path);
  if (rc == KN_AOT_OK) rc = check_weights(m, path);
  m->weights = m->table;
  return rc;
}

int kn_aot_create(const KnAotInfo *info, const char *weights_path, KnAotModel **out) {
  if (!out) return kn_aot_set_error(KN_AOT_ERR_INVALID, "kn_aot_create: out is NULL");
  *out = NULL;
  if (!info || !info->entry)
    return kn_aot_set_error(KN_AOT_ERR_INVALID, "kn_aot_create: no model info (or no entry)");
  if (info->abi_version != KN_AOT_ABI_VERSION)
    return kn_aot_set_error(KN_AOT_ERR_UNSUPPORTED, "%s: compiled for AOT ABI version %llu, this "
                            "runtime runs version %d", info->name ? info->name : "model",
                            (unsigned long long)info->abi_version, KN_AOT_ABI_VERSION);
  if (info->arena_bytes > SIZE_MAX - 2 * WEIGHT_ALIGN)
    return kn_aot_set_error(KN_AOT_ERR_LIMIT, "%s: arena of %llu bytes is too large",
                            info->name ? info->name : "model", (unsigned long long)info->arena_bytes);
  KnAotModel *m = calloc(1, sizeof *m);
  if (!m) return kn_aot_set_error(KN_AOT_ERR_NOMEM, "kn_aot_create: out of memory");
  m->info = info;
  m->ctx.threads = 1;
  int rc = load_weights(m, weights_path);
  size_t arena = ((size_t)info->arena_bytes + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
  if (rc == KN_AOT_OK && !(m->arena = aligned_alloc(WEIGHT_ALIGN, arena ? arena : WEIGHT_ALIGN)))
    rc = kn_aot_set_error(KN_AOT_ERR_NOMEM, "%s: out of memory for an arena of %zu bytes",
                          info->name ? info->name : "model", arena);
  if (rc != KN_AOT_OK) {
    kn_aot_destroy(m);
    return rc;
  }
  *out = m;
  return KN_AOT_OK;
}

int kn_aot_run(KnAotModel *m, const void *const *inputs, void *const *outputs) {
  if (!m) return kn_aot_set_error(KN_AOT_ERR_INVALID, "kn_aot_run: model is NULL");
  const KnAotInfo *info = m->info;
  const char *name = info->name ? info->name : "model";
  if ((info->n_inputs > 0 && !inputs) || (info->n_outputs > 0 && !outputs))
    return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: inputs or outputs array is NULL", name);
  for (int i = 0; i < info->n_inputs; i++)
    if (!inputs[i] && info->inputs[i].nbytes > 0)
      return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: input %d (%s) is NULL", name, i,
                              info->inputs[i].name);
  for (int i = 0; i < info->n_outputs; i++)
    if (!outputs[i] && info->outputs[i].nbytes > 0)
      return kn_aot_set_error(KN_AOT_ERR_INVALID, "%s: output %d (%s) is NULL", name, i,
                              info->outputs[i].name);
  m->ctx.status = 0;
  m->ctx.msg[0] = '\0';
  int32_t rc = info->entry(&m->ctx, (void *const *)inputs, outputs, m->weights, m->arena);
  if (rc == 0) return KN_AOT_OK;
  int st = m->ctx.status > 0 && m->ctx.status <= KN_AOT_ERR_INTERNAL ? m->ctx.status
           : rc > 0 && rc <= KN_AOT_ERR_INTERNAL                       ? rc
                                                                       : KN_AOT_ERR_INTERNAL;
  return kn_aot_set_error(st, "%s: %s", name, m->ctx.msg[0] ? m->ctx.msg : "the model failed");
}

void kn_aot_destroy(KnAotModel *m) {
  if (!m) return;
  if (m->map) munmap(m->map, m->map_size);
  free(m->table);
  free(m->arena);
  free(m);
}

void kn_aot_set_threads(KnAotModel *m, int threads) {
  if (m) m->ctx.threads = threads; /* <= 0: kn_rt_parallel_for takes OpenMP's default */
}

const KnAotInfo *kn_aot_info(const KnAotModel *m) { return m ? m->info : NULL; }
