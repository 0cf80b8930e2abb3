/* file_util.c - file helpers: atomic writes through rename(2), and resolving a relative path
 * so that it can never leave its folder (external data of untrusted models). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"

bool fe_write_all(int fd, const void *data, size_t size) {
  const char *p = data;
  while (size > 0) {
    size_t chunk = size > ((size_t)1 << 30) ? ((size_t)1 << 30) : size;
    ssize_t w = write(fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    size -= (size_t)w;
  }
  return true;
}

KnStatus fe_write_file_atomic_with(const char *path, bool (*fill)(int fd, void *ctx), void *ctx,
                                   KnError *err) {
  size_t len = strlen(path);
  char *tmp = malloc(len + sizeof ".tmpXXXXXX");
  if (!tmp) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmpXXXXXX", sizeof ".tmpXXXXXX");
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return kn_fail(err, KN_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(e));
  }
  /* mkstemp makes the file 0600; a written file should be as readable as any other file. */
  bool ok = fchmod(fd, 0644) == 0 && fill(fd, ctx) && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) ok = false, e = errno;
  if (ok && rename(tmp, path) != 0) ok = false, e = errno;
  if (!ok) unlink(tmp);
  free(tmp);
  return ok ? KN_OK : kn_fail(err, KN_ERR_IO, "%s: cannot write: %s", path, strerror(e));
}

typedef struct Bytes {
  const void *data;
  size_t size;
} Bytes;

static bool fill_bytes(int fd, void *ctx) {
  const Bytes *b = ctx;
  return fe_write_all(fd, b->data, b->size);
}

KnStatus fe_write_file_atomic(const char *path, const void *data, size_t size, KnError *err) {
  Bytes b = {data, size};
  return fe_write_file_atomic_with(path, fill_bytes, &b, err);
}

/* Rejects rel if it is absolute or if a ".." would climb above its starting folder. */
static KnStatus check_lexically_inside(const char *rel, KnError *err) {
  if (rel[0] == '\0') return kn_fail(err, KN_ERR_INVALID, "empty path");
  if (rel[0] == '/') return kn_fail(err, KN_ERR_INVALID, "absolute path '%s' refused", rel);
  int depth = 0;
  for (const char *p = rel; *p;) {
    const char *q = strchr(p, '/');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.')
      depth--;
    else if (n > 0 && !(n == 1 && p[0] == '.'))
      depth++;
    if (depth < 0) return kn_fail(err, KN_ERR_INVALID, "path '%s' leaves its folder", rel);
    p += n;
    while (*p == '/') p++;
  }
  return KN_OK;
}

KnStatus fe_resolve_inside(const char *dir, const char *rel, char *out, size_t out_size,
                           KnError *err) {
  KnStatus st = check_lexically_inside(rel, err);
  if (st) return st;
  char real_dir[PATH_MAX], joined[PATH_MAX], real[PATH_MAX];
  if (!realpath(dir && dir[0] ? dir : ".", real_dir))
    return kn_fail(err, KN_ERR_IO, "%s: %s", dir, strerror(errno));
  int n = snprintf(joined, sizeof joined, "%s/%s", real_dir, rel);
  if (n < 0 || (size_t)n >= sizeof joined)
    return kn_fail(err, KN_ERR_LIMIT, "path '%s' is too long", rel);
  /* realpath follows every symlink, so the prefix check below sees where the file really is. */
  if (!realpath(joined, real)) return kn_fail(err, KN_ERR_IO, "%s: %s", joined, strerror(errno));
  size_t dlen = strlen(real_dir);
  bool root = dlen == 1 && real_dir[0] == '/';
  if (!root && (strncmp(real, real_dir, dlen) != 0 || real[dlen] != '/'))
    return kn_fail(err, KN_ERR_INVALID, "path '%s' resolves to '%s', outside '%s'", rel, real,
                   real_dir);
  if (strlen(real) >= out_size) return kn_fail(err, KN_ERR_LIMIT, "path '%s' is too long", real);
  memcpy(out, real, strlen(real) + 1);
  return KN_OK;
}

KnStatus fe_map_file(const char *path, const KnLimits *lim, void **data, size_t *size, KnError *err) {
  *data = NULL;
  *size = 0;
  KnLimits l = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&l);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
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
