/* test_tensor_file.c - tensor files (.npy; TensorProto, SequenceProto and OptionalProto .pb)
 * against references that numpy and onnx write (tests/tools/make_tensor_files.py), hostile files,
 * and the files kiln writes back, which numpy and onnx must read as the same arrays. */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/tensor_file.h"
#include "test_util.h"

static char
    work[PATH_MAX / 2];     /* generated files; removed at the end unless KILN_KEEP_TEST_FILES */
static char tool[PATH_MAX]; /* tests/tools/make_tensor_files.py */
static cJSON *manifest;

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *python(void) {
  const char *p = getenv("KILN_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

/* Runs the generator script with args; true when it exits 0. */
static bool run_tool(const char *args) {
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "PYTHONDONTWRITEBYTECODE=1 '%s' '%s' %s '%s'", python(), tool, args,
           work);
  int rc = system(cmd);
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

/* The tool lives beside this file; CMake compiles it by absolute path, so __FILE__ finds it. */
static bool find_tool(void) {
  const char *env = getenv("KILN_TENSOR_TOOL");
  if (env && *env) return snprintf(tool, sizeof tool, "%s", env) < (int)sizeof tool;
  const char *slash = strrchr(__FILE__, '/');
  if (__FILE__[0] != '/' || !slash) return false;
  int n = snprintf(tool, sizeof tool, "%.*s/tools/make_tensor_files.py", (int)(slash - __FILE__),
                   __FILE__);
  return n > 0 && n < (int)sizeof tool && access(tool, R_OK) == 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

/* work/rel; a path too long for out becomes "" (and then fails to open). */
static void path_in(char *out, size_t n, const char *rel) {
  if (snprintf(out, n, "%s/%s", work, rel) >= (int)n) out[0] = '\0';
}

static const char *jstr(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Decodes hex into a malloc'd buffer; *n its length. */
static unsigned char *unhex(const char *h, size_t *n) {
  size_t len = h ? strlen(h) / 2 : 0;
  unsigned char *b = malloc(len ? len : 1);
  for (size_t i = 0; b && i < len; i++) {
    unsigned v;
    sscanf(h + 2 * i, "%2x", &v);
    b[i] = (unsigned char)v;
  }
  *n = len;
  return b;
}

static KnStatus status_named(const char *s) {
  static const struct {
    const char *name;
    KnStatus st;
  } map[] = {{"ok", KN_OK},
             {"format", KN_ERR_FORMAT},
             {"limit", KN_ERR_LIMIT},
             {"invalid", KN_ERR_INVALID},
             {"unsupported", KN_ERR_UNSUPPORTED}};
  for (size_t i = 0; s && i < sizeof map / sizeof *map; i++)
    if (!strcmp(map[i].name, s)) return map[i].st;
  return KN_ERR_INTERNAL;
}

/* ---- comparing with numpy's reference ------------------------------------------------------- */

static void check_data(const KnTensor *t, const cJSON *e, const char *label) {
  if (t->dtype == KN_STRING) {
    const cJSON *strs = cJSON_GetObjectItemCaseSensitive(e, "strings");
    if (!tu_check(cJSON_GetArraySize(strs) == t->numel, __FILE__, __LINE__,
                  "%s: %lld strings, expected %d", label, (long long)t->numel,
                  cJSON_GetArraySize(strs)))
      return;
    const KnBytes *s = t->data;
    int i = 0;
    for (const cJSON *x = strs ? strs->child : NULL; x; x = x->next, i++) {
      size_t n;
      unsigned char *want = unhex(x->valuestring, &n);
      tu_check(want && s[i].len == n && !memcmp(s[i].data, want, n), __FILE__, __LINE__,
               "%s: string %d differs", label, i);
      free(want);
    }
    return;
  }
  size_t n;
  unsigned char *want = unhex(jstr(e, "hex"), &n);
  bool same = want && n == t->nbytes && (n == 0 || !memcmp(t->data, want, n));
  size_t at = 0;
  while (want && !same && at < n && at < t->nbytes && ((unsigned char *)t->data)[at] == want[at])
    at++;
  tu_check(same, __FILE__, __LINE__,
           "%s: %zu data bytes, expected %zu; first difference at byte %zu", label, t->nbytes, n,
           at);
  free(want);
}

/* dtype, dims, name and every element against a manifest entry. */
static void check_tensor(const KnTensor *t, const cJSON *e, const char *label) {
  if (!tu_check(t != NULL, __FILE__, __LINE__, "%s: no tensor", label)) return;
  tu_check(!strcmp(ir_dtype_name(t->dtype), jstr(e, "dtype")), __FILE__, __LINE__,
           "%s: dtype %s, expected %s", label, ir_dtype_name(t->dtype), jstr(e, "dtype"));
  const cJSON *dims = cJSON_GetObjectItemCaseSensitive(e, "dims");
  bool dims_ok = cJSON_GetArraySize(dims) == t->rank;
  int k = 0;
  for (const cJSON *d = dims ? dims->child : NULL; dims_ok && d; d = d->next, k++)
    dims_ok = (double)t->dims[k] == d->valuedouble;
  tu_check(dims_ok, __FILE__, __LINE__, "%s: rank %d dims differ from numpy's", label, t->rank);
  int64_t numel = 1;
  for (int i = 0; i < t->rank; i++)
    numel *= t->dims[i];
  tu_check(numel == t->numel, __FILE__, __LINE__, "%s: numel %lld", label, (long long)t->numel);
  const char *name = jstr(e, "tensor_name");
  if (name)
    tu_check(t->name && !strcmp(t->name, name), __FILE__, __LINE__, "%s: name %s, expected %s",
             label, t->name ? t->name : "(null)", name);
  if (dims_ok) check_data(t, e, label);
}

/* ---- one manifest case ------------------------------------------------------------------------
 */

static bool npy_writable(KnDtype d) {
  return d == KN_F16 || d == KN_F32 || d == KN_F64 || d == KN_I8 || d == KN_U8 || d == KN_I16 ||
         d == KN_U16 || d == KN_I32 || d == KN_U32 || d == KN_I64 || d == KN_U64 || d == KN_BOOL ||
         d == KN_C64 || d == KN_C128;
}

/* rt/<name>_<folder>.<ext>: where kiln writes a case back for the python verifier. */
static void rt_path(char *out, size_t n, const cJSON *c, const char *ext) {
  const char *file = jstr(c, "file");
  if (snprintf(out, n, "%s/rt/%s_%.*s.%s", work, jstr(c, "name"), (int)(strchr(file, '/') - file),
               file, ext) >= (int)n)
    out[0] = '\0';
}

static void write_back_tensor(const KnTensor *t, const cJSON *c, const char *label) {
  char out[PATH_MAX];
  KnError err = {0};
  rt_path(out, sizeof out, c, "pb");
  tu_status(fe_write_tensor_pb(out, t, NULL, &err), KN_OK, &err, __FILE__, __LINE__, label);
  rt_path(out, sizeof out, c, "npy");
  err = (KnError){0};
  KnStatus want = npy_writable(t->dtype) ? KN_OK : KN_ERR_UNSUPPORTED;
  tu_status(fe_write_tensor_file(out, t, NULL, &err), want, &err, __FILE__, __LINE__, label);
  if (want != KN_OK)
    tu_check(access(out, F_OK) != 0, __FILE__, __LINE__, "%s: a failed write left %s", label, out);
}

static void check_list(const KnTensorList *l, const cJSON *c, const char *label) {
  const char *elem = jstr(c, "elem");
  KnTypeKind want = !strcmp(elem, "tensor")     ? KN_TYPE_TENSOR
                    : !strcmp(elem, "sequence") ? KN_TYPE_SEQUENCE
                                                : KN_TYPE_NONE;
  tu_check(l->elem == want, __FILE__, __LINE__, "%s: elem %d, expected %s", label, (int)l->elem,
           elem);
  tu_check(l->name && !strcmp(l->name, jstr(c, "seq_name")), __FILE__, __LINE__,
           "%s: name %s, expected %s", label, l->name ? l->name : "(null)", jstr(c, "seq_name"));
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(c, "tensors");
  if (!tu_check(cJSON_GetArraySize(ts) == l->n_tensors, __FILE__, __LINE__,
                "%s: %d tensors, expected %d", label, l->n_tensors, cJSON_GetArraySize(ts)))
    return;
  int i = 0;
  for (const cJSON *e = ts->child; e; e = e->next, i++) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s[%d]", label, i);
    check_tensor(l->tensors[i], e, sub);
  }
  if (l->n_tensors)
    tu_check(l->dtype == l->tensors[0]->dtype, __FILE__, __LINE__, "%s: list dtype", label);
}

static void run_case(const cJSON *c) {
  char path[PATH_MAX], label[512];
  path_in(path, sizeof path, jstr(c, "file"));
  snprintf(label, sizeof label, "%s", jstr(c, "file"));
  const char *kind = jstr(c, "kind");
  KnStatus want = status_named(jstr(c, "expect"));
  KnLimits lim = {0};
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "limits");
  if (l)
    lim.max_tensor_elems =
        (int64_t)cJSON_GetObjectItemCaseSensitive(l, "max_tensor_elems")->valuedouble;
  KnArena *a = ir_arena_new();
  KnError err = {0};
  KnStatus st;
  KnTensor *t = NULL;
  KnTensorList *list = NULL;
  if (!strcmp(kind, "tensor"))
    st = fe_read_tensor_file(a, path, &lim, &t, &err);
  else
    st = fe_read_sequence_file(a, path,
                               !strcmp(kind, "sequence") ? KN_TYPE_SEQUENCE : KN_TYPE_OPTIONAL,
                               &lim, &list, &err);
  if (tu_status(st, want, &err, __FILE__, __LINE__, label) && want != KN_OK) {
    /* A failure names the file and hands back nothing. */
    tu_check(strstr(err.msg, path) != NULL, __FILE__, __LINE__, "%s: message '%s' lacks the path",
             label, err.msg);
    tu_check(!t && !list, __FILE__, __LINE__, "%s: output set on failure", label);
  } else if (st == KN_OK && t) {
    check_tensor(t, c, label);
    write_back_tensor(t, c, label);
  } else if (st == KN_OK && list) {
    check_list(list, c, label);
    char out[PATH_MAX];
    rt_path(out, sizeof out, c, "pb");
    tu_status(fe_write_sequence_pb(out, list, &err), KN_OK, &err, __FILE__, __LINE__, label);
  }
  ir_arena_free(a);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_manifest_cases(void) {
  const cJSON *cases = cJSON_GetObjectItemCaseSensitive(manifest, "cases");
  CHECK(cJSON_GetArraySize(cases) > 100);
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next)
    run_case(c);
}

/* Every file kiln wrote back must read, in numpy and onnx, as numpy's original array. */
static void test_written_files_verified_by_python(void) { CHECK(run_tool("--verify")); }

/* Proper prefixes of a valid file and single-byte corruptions fail cleanly (or, for a .pb cut
 * between fields or a harmless flip, read as some consistent tensor); a .npy prefix always fails,
 * as does a .pb prefix when must_fail says its last field is required. */
static void hostile_variants(const char *rel, bool must_fail) {
  char path[PATH_MAX];
  path_in(path, sizeof path, rel);
  FILE *f = fopen(path, "rb");
  unsigned char buf[4096];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  if (!CHECK(n > 0 && n < sizeof buf)) return;
  int prefix_fail = 0, consistent = 0;
  for (size_t len = 0; len < n; len++) {
    KnArena *a = ir_arena_new();
    KnTensor *t = NULL;
    KnError err = {0};
    KnStatus st = fe_read_tensor_memory(a, buf, len, rel, NULL, &t, &err);
    prefix_fail += st != KN_OK && !t && err.msg[0];
    consistent += st == KN_OK ? t != NULL : !t && err.msg[0];
    ir_arena_free(a);
  }
  tu_check(consistent == (int)n && (!must_fail || prefix_fail == (int)n), __FILE__, __LINE__,
           "%s: %d of %zu prefixes failed cleanly, %d consistent", rel, prefix_fail, n, consistent);
  for (size_t i = 0; i < n; i++)
    for (int flip = 1; flip < 256; flip <<= 3) {
      unsigned char copy[4096];
      memcpy(copy, buf, n);
      copy[i] ^= (unsigned char)flip;
      KnArena *a = ir_arena_new();
      KnTensor *t = NULL;
      KnError err = {0};
      KnStatus st = fe_read_tensor_memory(a, copy, n, rel, NULL, &t, &err);
      tu_check(st == KN_OK ? t != NULL : t == NULL && err.msg[0], __FILE__, __LINE__,
               "%s: byte %zu ^ %d gave %s without a consistent result", rel, i, flip,
               kn_status_name(st));
      ir_arena_free(a);
    }
}

static void test_truncations_and_corruptions(void) {
  hostile_variants("npy/fortran_f2.npy", true);
  hostile_variants("npy/scalar_f4.npy", true);
  hostile_variants("pb/raw_f4.pb", true);   /* raw_data is the last field */
  hostile_variants("pb/strings.pb", false); /* a cut before the name is a valid tensor */
}

static void test_sequence_truncations(void) {
  char path[PATH_MAX];
  path_in(path, sizeof path, "pb/opt_seq.pb");
  FILE *f = fopen(path, "rb");
  unsigned char buf[1024];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  if (!CHECK(n > 0)) return;
  for (size_t len = 0; len < n; len++) {
    KnArena *a = ir_arena_new();
    KnTensorList *l = NULL;
    KnError err = {0};
    KnStatus st = fe_read_sequence_memory(a, buf, len, "opt_seq", KN_TYPE_OPTIONAL, NULL, &l, &err);
    /* The empty prefix is an empty optional; cuts between fields may parse as fewer values. */
    tu_check(st == KN_OK ? l != NULL : l == NULL && err.msg[0], __FILE__, __LINE__,
             "prefix %zu gave %s inconsistently", len, kn_status_name(st));
    ir_arena_free(a);
  }
}

static void test_io_errors_and_limits(void) {
  KnArena *a = ir_arena_new();
  KnTensor *t = NULL;
  KnError err = {0};
  char path[PATH_MAX];
  path_in(path, sizeof path, "no/such/file.npy");
  CHECK_STATUS(fe_read_tensor_file(a, path, NULL, &t, &err), KN_ERR_IO);
  CHECK_CONTAINS(err.msg, path);
  path_in(path, sizeof path, "npy/big_dim0_f4.npy");
  KnLimits small = {.max_file_bytes = 1000};
  err = (KnError){0};
  CHECK_STATUS(fe_read_tensor_file(a, path, &small, &t, &err), KN_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "big_dim0_f4.npy");
  /* Reading the same file again gives the same result (no state left behind). */
  CHECK_OK(fe_read_tensor_file(a, path, NULL, &t, &err), &err);
  KnTensor *again = NULL;
  CHECK_OK(fe_read_tensor_file(a, path, NULL, &again, &err), &err);
  CHECK(t && again && t->nbytes == again->nbytes && !memcmp(t->data, again->data, t->nbytes));
  /* A write into a missing folder fails without leaving anything behind. */
  path_in(path, sizeof path, "missing_dir/out.npy");
  err = (KnError){0};
  CHECK_STATUS(fe_write_tensor_npy(path, t, &err), KN_ERR_IO);
  CHECK(access(path, F_OK) != 0);
  ir_arena_free(a);
}

static void test_npy_refuses_strings(void) {
  KnArena *a = ir_arena_new();
  KnTensor *t = NULL;
  KnError err = {0};
  char path[PATH_MAX], out[PATH_MAX];
  path_in(path, sizeof path, "pb/strings.pb");
  path_in(out, sizeof out, "rt/strings_direct.npy");
  if (CHECK_OK(fe_read_tensor_file(a, path, NULL, &t, &err), &err)) {
    CHECK_STATUS(fe_write_tensor_npy(out, t, &err), KN_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "string");
    CHECK(access(out, F_OK) != 0);
  }
  ir_arena_free(a);
}

static bool setup(void) {
  if (!find_tool()) {
    fprintf(stderr, "cannot find tests/tools/make_tensor_files.py (set KILN_TENSOR_TOOL)\n");
    return false;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(work, sizeof work, "%s/kiln_tensor_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(work)) return perror("mkdtemp"), false;
  if (!run_tool("")) {
    fprintf(stderr, "%s %s failed\n", python(), tool);
    return false;
  }
  char path[PATH_MAX];
  path_in(path, sizeof path, "manifest.json");
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  long size = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (text = malloc((size_t)size + 1)) && fread(text, 1, (size_t)size, f) == (size_t)size) {
    text[size] = '\0';
    manifest = cJSON_Parse(text);
  }
  if (f) fclose(f);
  free(text);
  return manifest != NULL;
}

int main(void) {
  if (!CHECK(setup())) return test_report();
  RUN_TEST(test_manifest_cases);
  RUN_TEST(test_written_files_verified_by_python);
  RUN_TEST(test_truncations_and_corruptions);
  RUN_TEST(test_sequence_truncations);
  RUN_TEST(test_io_errors_and_limits);
  RUN_TEST(test_npy_refuses_strings);
  cJSON_Delete(manifest);
  const char *keep = getenv("KILN_KEEP_TEST_FILES");
  if (keep && *keep)
    printf("test files kept in %s\n", work);
  else
    nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return test_report();
}
