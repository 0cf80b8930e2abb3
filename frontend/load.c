/* load.c - fe_load_model: opens a model file of either kind (.onnx protobuf or .kir text), then
 * runs shape inference and the verifier so callers always get a checked, typed graph. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"

#define SNIFF_BYTES 4096

/* A .kir file is text whose first token is "kir" (after blank lines and '#' comments). A
 * protobuf ModelProto cannot start that way: ' ', '\t', '\r' and '#' are not valid field tags
 * for it, so the test never mistakes one for the other. */
static bool looks_like_kir(const char *buf, size_t n) {
  size_t i = 0;
  if (n >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) i = 3; /* UTF-8 byte order mark */
  while (i < n) {
    char c = buf[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      i++;
    } else if (c == '#') {
      while (i < n && buf[i] != '\n') i++;
    } else {
      break;
    }
  }
  return n - i >= 4 && memcmp(buf + i, "kir", 3) == 0 &&
         (buf[i + 3] == ' ' || buf[i + 3] == '\t' || buf[i + 3] == '\n' || buf[i + 3] == '\r');
}

/* Opens path and reads its first bytes to tell the format; fails cleanly on directories,
 * missing or unreadable files and empty files. */
static KnStatus sniff_format(const char *path, bool *is_kir, KnError *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
  if (fd < 0) return kn_fail(err, KN_ERR_IO, "cannot open: %s", strerror(errno));
  struct stat st;
  KnStatus status = KN_OK;
  char buf[SNIFF_BYTES];
  ssize_t n = 0;
  if (fstat(fd, &st) != 0) {
    status = kn_fail(err, KN_ERR_IO, "cannot stat: %s", strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    status = kn_fail(err, KN_ERR_IO, "is a directory, expected a model file (.onnx or .kir)");
  } else if (!S_ISREG(st.st_mode)) {
    status = kn_fail(err, KN_ERR_IO, "not a regular file");
  } else {
    do n = read(fd, buf, sizeof buf); while (n < 0 && errno == EINTR);
    if (n < 0) status = kn_fail(err, KN_ERR_IO, "cannot read: %s", strerror(errno));
    else if (n == 0)
      status = kn_fail(err, KN_ERR_FORMAT, "file is empty, expected an ONNX or .kir model");
  }
  close(fd);
  if (status == KN_OK) *is_kir = looks_like_kir(buf, (size_t)n);
  return status;
}

KnStatus fe_load_model(const char *path, const KnLimits *lim, KnModel **out, KnError *err) {
  if (!out) return kn_fail(err, KN_ERR_INVALID, "fe_load_model: no output pointer");
  *out = NULL;
  if (!path || !*path) return kn_fail(err, KN_ERR_INVALID, "fe_load_model: no path given");
  bool is_kir = false;
  KnModel *m = NULL;
  KnStatus st = sniff_format(path, &is_kir, err);
  if (st == KN_OK)
    st = is_kir ? kir_parse_file(path, lim, &m, err) : onnx_import_file(path, lim, &m, err);
  if (st == KN_OK && !m) st = kn_fail(err, KN_ERR_INTERNAL, "importer returned no model");
  if (st == KN_OK) st = ir_infer_graph(m->graph, err);
  if (st == KN_OK) st = ir_verify(m, err);
  if (st != KN_OK) {
    ir_model_free(m);
    kn_error_prefix(err, "%s: ", path);
    return st;
  }
  *out = m;
  return KN_OK;
}
