/* tensor_file.c - entry points for tensor files: maps a file, tells .npy from .pb by content, and
 * picks the writer by extension. The formats themselves live in tensor_npy.c and tensor_pb.c. */
#include <string.h>
#include <sys/mman.h>

#include "frontend/tensor_file.h"

#define NPY_MAGIC "\x93NUMPY"

KnStatus fe_read_tensor_memory(KnArena *a, const void *data, size_t size, const char *path,
                               const KnLimits *lim, KnTensor **out, KnError *err) {
  if (size >= sizeof NPY_MAGIC - 1 && memcmp(data, NPY_MAGIC, sizeof NPY_MAGIC - 1) == 0)
    return fe_read_npy_memory(a, data, size, path, lim, out, err);
  return fe_read_pb_memory(a, size ? data : "", size, path, lim, out, err);
}

KnStatus fe_read_tensor_file(KnArena *a, const char *path, const KnLimits *lim, KnTensor **out,
                             KnError *err) {
  *out = NULL;
  void *data;
  size_t size;
  KnStatus st = fe_map_file(path, lim, &data, &size, err);
  if (st) return st;
  st = fe_read_tensor_memory(a, data ? data : "", size, path, lim, out, err);
  if (data) munmap(data, size);
  return st;
}

KnStatus fe_read_sequence_file(KnArena *a, const char *path, KnTypeKind kind, const KnLimits *lim,
                               KnTensorList **out, KnError *err) {
  *out = NULL;
  void *data;
  size_t size;
  KnStatus st = fe_map_file(path, lim, &data, &size, err);
  if (st) return st;
  st = fe_read_sequence_memory(a, data ? data : "", size, path, kind, lim, out, err);
  if (data) munmap(data, size);
  return st;
}

KnStatus fe_write_tensor_file(const char *path, const KnTensor *t, const char *name, KnError *err) {
  size_t n = strlen(path);
  if (n >= 4 && strcmp(path + n - 4, ".npy") == 0) return fe_write_tensor_npy(path, t, err);
  return fe_write_tensor_pb(path, t, name, err);
}
