/* tensor_file.c - entry points for tensor files: maps a file, tells .npy from .pb by content, and
 * picks the writer by extension. The formats themselves live in tensor_npy.c and tensor_pb.c. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/tensor_file.h"

#define NPY_MAGIC "\x93NUMPY"

/* Maps path read-only (*data NULL for an empty file); the caller munmaps *size bytes. */
static KnStatus map_file(const char *path, const KnLimits *lim, void **data, size_t *size,
                         KnError *err) {
  *data = NULL;
  *size = 0;
  KnLimits l = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&l);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return kn_fail(err, KN_ERR_IO, "%s: cannot open: %s", path, strerror(e));
  }
  KnStatus st = KN_OK;
  if (!S_ISREG(sb.st_mode))
    st = kn_fail(err, KN_ERR_IO, "%s: not a regular file", path);
  else if ((uint64_t)sb.st_size > l.max_file_bytes)
    st = kn_fail(err, KN_ERR_LIMIT, "%s: %lld bytes exceed the file limit of %zu", path,
                 (long long)sb.st_size, l.max_file_bytes);
  else if (sb.st_size > 0) {
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
      st = kn_fail(err, KN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    else
      *data = p, *size = (size_t)sb.st_size;
  }
  close(fd);
  return st;
}

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
  KnStatus st = map_file(path, lim, &data, &size, err);
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
  KnStatus st = map_file(path, lim, &data, &size, err);
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
