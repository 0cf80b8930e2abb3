/* aot_files.c - the header, weights file and linker runs of `kiln compile`. */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "include/kiln_aot.h"
#include "tools/aot_files.h"

extern char **environ;

/* ---- header -------------------------------------------------------------------------------- */
static void upper(const char *s, char *out, size_t size) {
  size_t i = 0;
  for (; s[i] && i + 1 < size; i++) out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
  out[i] = 0;
}

/* A model's names may hold any bytes; in a C comment or string only a safe subset is printed. */
static void c_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 32 || c > 126) fprintf(f, "\\%03o", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void tensor_macros(FILE *f, const char *prefix, const char *kind, int i, const KnValue *v) {
  const KnShape *s = &v->type.shape;
  int64_t numel = 0;
  size_t nbytes = 0; /* the plan has checked that both are concrete and fit */
  ir_shape_numel(s, &numel);
  ir_dtype_nbytes(v->type.dtype, numel, &nbytes);
  fprintf(f, "#define %s_%s%d_NAME ", prefix, kind, i);
  c_string(f, v->name);
  fprintf(f, "\n#define %s_%s%d_DTYPE %d /* %s */\n", prefix, kind, i, (int)v->type.dtype, ir_dtype_name(v->type.dtype));
  fprintf(f, "#define %s_%s%d_RANK %d\n#define %s_%s%d_SHAPE {", prefix, kind, i, s->rank, prefix, kind, i);
  for (int d = 0; d < s->rank; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)s->dims[d].value);
  fprintf(f, "}\n#define %s_%s%d_NUMEL %lld\n#define %s_%s%d_BYTES %zu\n", prefix, kind, i, (long long)numel, prefix,
          kind, i, nbytes);
}

static void header_text(FILE *f, const char *name, const KnGraph *g, const CgObject *obj, const char *source) {
  char up[256];
  upper(name, up, sizeof up);
  fprintf(f, "/* %s.h - the model compiled by `kiln compile` from ", name);
  for (const char *s = source; *s; s++) fputc(*s == '*' && s[1] == '/' ? '_' : (*s < 32 ? '?' : *s), f);
  fprintf(f, ".\n * Link with libkiln_rt (pkg-config kiln_rt, or find_package(kiln) -> kiln::kiln_rt). */\n");
  fprintf(f, "#ifndef %s_KILN_H\n#define %s_KILN_H\n\n#include <kiln_aot.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", up, up);
  fprintf(f, "/* Loads the model. weights_path: %s.\n * 0 or a KN_AOT_ERR_* status; kn_aot_last_error() says why. */\n",
          obj->weights_digest ? "the weights file written with it (required)" : "ignored (weights are embedded); pass NULL");
  fprintf(f, "int %s_create(KnAotModel **model, const char *weights_path);\n", name);
  fprintf(f, "/* Runs once: inputs[i] / outputs[i] are dense buffers of %s_INPUT<i>_BYTES / %s_OUTPUT<i>_BYTES. */\n", up, up);
  fprintf(f, "int %s_run(KnAotModel *model, const void *const *inputs, void *const *outputs);\n", name);
  fprintf(f, "void %s_destroy(KnAotModel *model);\nconst KnAotInfo *%s_info(void);\n\n", name, name);
  fprintf(f, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n#define %s_ARENA_BYTES %zu\n", up, g->n_inputs, up,
          g->n_outputs, up, obj->stats.arena_bytes);
  fprintf(f, "#define %s_WEIGHTS_EMBEDDED %d\n\n", up, obj->weights_digest ? 0 : 1);
  for (int i = 0; i < g->n_inputs; i++) tensor_macros(f, up, "INPUT", i, g->inputs[i]);
  for (int i = 0; i < g->n_outputs; i++) tensor_macros(f, up, "OUTPUT", i, g->outputs[i]);
  fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
}

KnStatus aot_write_header(const char *path, const char *name, const KnGraph *g, const CgObject *obj,
                          const char *source, KnError *err) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  header_text(f, name, g, obj, source);
  KnStatus st = fclose(f) == 0 ? fe_write_file_atomic(path, text, len, err) : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  free(text);
  return st;
}

/* ---- weights file -------------------------------------------------------------------------- */
static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

static bool put_u64(int fd, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  return fe_write_all(fd, b, 8);
}

static bool fill_weights(int fd, void *ctx) {
  const CgObject *obj = ctx;
  static const unsigned char zeros[64];
  uint64_t n = (uint64_t)obj->n_weights, pos = 24 + 16 * n;
  bool ok = fe_write_all(fd, KN_AOT_WEIGHTS_MAGIC, 8) && put_u64(fd, obj->weights_digest) && put_u64(fd, n);
  uint64_t off = align64(pos);
  for (int i = 0; ok && i < obj->n_weights; i++) {
    ok = put_u64(fd, off) && put_u64(fd, obj->weights[i]->nbytes);
    off = align64(off + obj->weights[i]->nbytes);
  }
  for (int i = 0; ok && i < obj->n_weights; i++) {
    ok = fe_write_all(fd, zeros, align64(pos) - pos);
    pos = align64(pos);
    ok = ok && fe_write_all(fd, obj->weights[i]->data, obj->weights[i]->nbytes);
    pos += obj->weights[i]->nbytes;
  }
  return ok;
}

KnStatus aot_write_weights(const char *path, const CgObject *obj, KnError *err) {
  return fe_write_file_atomic_with(path, fill_weights, (void *)obj, err);
}

/* ---- external tools ------------------------------------------------------------------------ */
/* The tool's first line of output that is not the compiler driver's summary ("collect2: error:
 * ld returned 1"), for the one-line message: the linker's own reason comes first. */
static void tool_error_line(FILE *out, char *line, size_t size) {
  char buf[1024];
  line[0] = 0;
  rewind(out);
  while (fgets(buf, sizeof buf, out)) {
    size_t n = strcspn(buf, "\n");
    if (n == 0 || (strstr(buf, "collect2") && line[0])) continue;
    if (n >= size) n = size - 1;
    memcpy(line, buf, n);
    line[n] = 0;
    if (!strstr(buf, "collect2")) return;
  }
}

KnStatus aot_run_tool(char *const *argv, KnError *err) {
  char cmd[1024] = "";
  for (int i = 0; argv[i]; i++) {
    size_t len = strlen(cmd);
    snprintf(cmd + len, sizeof cmd - len, "%s%s", i ? " " : "", argv[i]);
  }
  /* The tool's own output goes to a scratch file: kiln reports one line, quoting the tool's error. */
  FILE *out = tmpfile();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 2);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  KnStatus st = KN_OK;
  int status = 0;
  if (rc != 0) st = kn_fail(err, KN_ERR_IO, "cannot run %s: %s (is it installed?)", argv[0], strerror(rc));
  while (st == KN_OK && waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) st = kn_fail(err, KN_ERR_IO, "waiting for %s: %s", argv[0], strerror(errno));
  if (st == KN_OK && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
    char line[512] = "";
    if (out) tool_error_line(out, line, sizeof line);
    st = kn_fail(err, KN_ERR_IO, "'%.600s' failed (%s %d)%s%.400s", cmd, WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), line[0] ? ": " : "", line);
  }
  if (out) fclose(out);
  return st;
}

KnStatus aot_find_runtime(char *out, size_t size, KnError *err) {
  const char *env = getenv("KILN_RUNTIME_DIR");
  if (env && *env) {
    snprintf(out, size, "%s", env);
    return KN_OK;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return kn_fail(err, KN_ERR_IO, "cannot find the kiln binary's folder; pass --runtime DIR");
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
#ifndef KILN_RT_LIBDIR_FROM_BINDIR
#define KILN_RT_LIBDIR_FROM_BINDIR "../lib"
#endif
  /* The build tree keeps the libraries beside kiln; an install puts them in its libdir. */
  static const char *const places[] = {"", "/" KILN_RT_LIBDIR_FROM_BINDIR};
  for (size_t i = 0; i < sizeof places / sizeof *places; i++) {
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s%s/libkiln_rt.a", self, places[i]);
    if (access(probe, R_OK) == 0) {
      snprintf(out, size, "%s%s", self, places[i]);
      return KN_OK;
    }
  }
  return kn_fail(err, KN_ERR_IO, "no libkiln_rt.a next to %s or in %s/" KILN_RT_LIBDIR_FROM_BINDIR "; pass --runtime DIR", self, self);
}
