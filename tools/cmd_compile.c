/* cmd_compile.c - `kiln compile`: an ahead-of-time build of a model as an object file, shared
 * library, static archive or standalone program, with its C header and optional weights file. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tools/aot_files.h"
#include "tools/cli_exec.h"

static const char compile_usage[] =
    "usage: kiln compile MODEL -o OUT(.o|.so|.a) [--exe] [--name NAME] [--header FILE]\n"
    "                    [--weights FILE] [--target TRIPLE] [--cpu CPU] [--features +f,-g]\n"
    "                    [--runtime DIR] [--cc CC] [-O0..-O3] [--shape NAME=DIMS]...\n"
    "Compiles MODEL (.onnx or .kir) ahead of time for fixed input shapes (declared, or --shape).\n"
    "  -o OUT                  .o object, .so shared library, .a archive; with --exe a program\n"
    "  --exe                   link a standalone program taking `kiln run`'s --inputs/--input/\n"
    "                          --output-dir flags (needs libkiln_rt for the target)\n"
    "  --name NAME             symbol prefix: NAME_create/run/destroy/info (default: OUT's stem)\n"
    "  --header FILE           where to write the C header (default: OUT's stem + .h; not for --exe)\n"
    "  --weights FILE          write the weights to FILE, loaded at NAME_create, instead of embedding\n"
    "  --target TRIPLE         cross-compile, e.g. aarch64-linux-gnu (default: this machine)\n"
    "  --cpu CPU, --features F LLVM CPU name and feature list (default: this machine's; 'generic'\n"
    "                          for another target); e.g. --cpu x86-64-v2 for older servers\n"
    "  --runtime DIR           folder with libkiln_rt.a/.so (and libkiln_rt_main.a) for the target\n"
    "                          (default: next to kiln or in ../lib; required for another target)\n"
    "  --cc CC                 linker driver (default: cc, or TRIPLE-gcc for another target)\n"
    "  -O0 .. -O3              optimization level (default -O3)\n"
    "  --shape NAME=D0,D1,...  compile for this input shape\n"
    "  --passes=A,B            run only these graph passes\n"
    "  --disable-pass=A,B      skip these graph passes\n"
    "  --max-arena-bytes N     refuse to compile when intermediate values need more (default 16G)\n"
    CLI_LIMITS_USAGE;

typedef enum OutKind { OUT_OBJECT, OUT_SHARED, OUT_ARCHIVE, OUT_EXE } OutKind;

typedef struct CompileArgs {
  const char *model, *out, *name, *header, *weights, *target, *runtime, *cc;
  bool exe;
  OutKind kind;
  CliExecOptions exec;
  char name_buf[128], header_buf[PATH_MAX];
} CompileArgs;

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_c_identifier(const char *s) {
  if (!*s || isdigit((unsigned char)*s) || strlen(s) > 100) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* OUT's file name without folder and extension, as a C identifier. */
static void default_name(const char *out, char *buf, size_t size) {
  const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
  size_t n = 0;
  if (isdigit((unsigned char)*base)) buf[n++] = '_';
  for (; *base && *base != '.' && n + 1 < size; base++) buf[n++] = isalnum((unsigned char)*base) ? *base : '_';
  buf[n] = 0;
  if (n == 0) snprintf(buf, size, "model");
}

static int take_string(int argc, char **argv, int *i, const char *opt, const char **dst, int *took) {
  const char *v = NULL;
  *took = cli_take_value(argc, argv, i, opt, &v);
  if (*took > 0) *dst = v;
  return *took;
}

static int parse_args(int argc, char **argv, KnArena *a, CompileArgs *c, bool *done) {
  c->exec.run.opt_level = 3;
  static const char *const opts[] = {"-o", "--name", "--header", "--weights", "--target", "--cpu", "--features",
                                     "--runtime", "--cc"};
  const char **dsts[] = {&c->out, &c->name, &c->header, &c->weights, &c->target, &c->exec.run.cpu,
                         &c->exec.run.features, &c->runtime, &c->cc};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *bad = NULL;
    int took = 0;
    if (cli_is_help(arg)) {
      fputs(compile_usage, stdout);
      *done = true;
      return CLI_OK;
    }
    for (size_t k = 0; k < sizeof opts / sizeof *opts && !took; k++)
      if (take_string(argc, argv, &i, opts[k], dsts[k], &took) < 0)
        return cli_usage_error("compile", compile_usage, "%s needs a value", opts[k]);
    if (took) continue;
    if ((took = cli_take_exec_option(argc, argv, &i, a, &c->exec, &bad)) != 0) {
      if (took < 0) return cli_usage_error("compile", compile_usage, "%s", bad);
    } else if (strcmp(arg, "--exe") == 0) {
      c->exe = true;
    } else if (arg[0] == '-' && arg[1]) {
      return cli_usage_error("compile", compile_usage, "unknown option '%s'", arg);
    } else if (c->model) {
      return cli_usage_error("compile", compile_usage, "more than one model given ('%s')", arg);
    } else {
      c->model = arg;
    }
  }
  if (!c->model) return cli_usage_error("compile", compile_usage, "no model given");
  if (!c->out) return cli_usage_error("compile", compile_usage, "no output given (-o OUT)");
  return CLI_OK;
}

/* Output kind, symbol name and header path from the arguments. */
static int settle_outputs(CompileArgs *c) {
  if (c->exe) c->kind = OUT_EXE;
  else if (ends_with(c->out, ".o")) c->kind = OUT_OBJECT;
  else if (ends_with(c->out, ".so")) c->kind = OUT_SHARED;
  else if (ends_with(c->out, ".a")) c->kind = OUT_ARCHIVE;
  else
    return cli_usage_error("compile", compile_usage, "cannot tell what to write from '%s': use .o, .so or .a, or --exe",
                           c->out);
  if (c->name && !is_c_identifier(c->name))
    return cli_usage_error("compile", compile_usage, "--name '%s' is not a C identifier", c->name);
  if (!c->name) {
    default_name(c->out, c->name_buf, sizeof c->name_buf);
    c->name = c->name_buf;
  }
  if (!c->header && c->kind != OUT_EXE) {
    const char *dot = strrchr(c->out, '.');
    snprintf(c->header_buf, sizeof c->header_buf, "%.*s.h", (int)(dot - c->out), c->out);
    c->header = c->header_buf;
  }
  return CLI_OK;
}

/* A cross target links with its own toolchain (TRIPLE-gcc, TRIPLE-ar); the host with cc/ar. */
static bool is_cross(const CompileArgs *c) {
  if (!c->target) return false;
  struct utsname u;
  size_t n = strcspn(c->target, "-");
  return uname(&u) != 0 || strlen(u.machine) != n || strncmp(u.machine, c->target, n) != 0;
}

static void tool_name(const CompileArgs *c, const char *tool, char *buf, size_t size) {
  if (is_cross(c)) snprintf(buf, size, "%s-%s", c->target, tool);
  else snprintf(buf, size, "%s", tool);
}

/* Where libkiln_rt for the target lives; NULL for a .so/.o/.a that does not need it. */
static KnStatus runtime_dir(const CompileArgs *c, char *buf, size_t size, bool *found, KnError *err) {
  *found = false;
  if (c->kind == OUT_OBJECT || c->kind == OUT_ARCHIVE) return KN_OK;
  if (c->runtime) snprintf(buf, size, "%s", c->runtime);
  else if (is_cross(c) && c->kind == OUT_EXE)
    return kn_fail(err, KN_ERR_INVALID, "--exe for %s needs libkiln_rt built for it: pass --runtime DIR", c->target);
  else if (is_cross(c)) return KN_OK; /* a cross .so leaves the runtime to the program that loads it */
  else {
    KnError probe = {0};
    KnStatus st = aot_find_runtime(buf, size, &probe);
    if (st != KN_OK && c->kind == OUT_EXE) return kn_fail(err, st, "%s", probe.msg);
    if (st != KN_OK) return KN_OK;
  }
  *found = true;
  return KN_OK;
}

/* Links (or archives) the object at obj into OUT through OUT.tmp.PID, renamed on success. */
static KnStatus link_output(const CompileArgs *c, const char *obj, const char *rt, bool have_rt, KnError *err) {
  char tmp[PATH_MAX], cc[256], ar[256], lib_main[PATH_MAX], lib_rt[PATH_MAX], libdir[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", c->out, (int)getpid());
  if (c->cc) snprintf(cc, sizeof cc, "%s", c->cc);
  else tool_name(c, is_cross(c) ? "gcc" : "cc", cc, sizeof cc); /* cc, or TRIPLE-gcc */
  tool_name(c, "ar", ar, sizeof ar);
  snprintf(lib_main, sizeof lib_main, "%s/libkiln_rt_main.a", rt);
  snprintf(lib_rt, sizeof lib_rt, "%s/libkiln_rt.a", rt);
  snprintf(libdir, sizeof libdir, "-L%s", rt);
  char *const archive[] = {ar, "rcs", tmp, (char *)obj, NULL};
  char *const shared[] = {cc, "-shared", "-o", tmp, (char *)obj, libdir, "-lkiln_rt", "-lm", NULL};
  char *const shared_bare[] = {cc, "-shared", "-o", tmp, (char *)obj, "-lm", NULL};
  char *const exe[] = {cc, "-o", tmp, (char *)obj, lib_main, lib_rt, "-fopenmp", "-lm", NULL};
  char *const *argv = c->kind == OUT_ARCHIVE ? archive : c->kind == OUT_EXE ? exe : have_rt ? shared : shared_bare;
  KnStatus st = aot_run_tool(argv, err);
  if (st == KN_OK && rename(tmp, c->out) != 0) st = kn_fail(err, KN_ERR_IO, "%s: cannot rename into place", c->out);
  if (st != KN_OK) unlink(tmp);
  return st;
}

/* Writes the object: straight to OUT for .o, else to a private temp folder and linked from there. */
static KnStatus write_output(const CompileArgs *c, const CgObject *obj, KnError *err) {
  if (c->kind == OUT_OBJECT) return fe_write_file_atomic(c->out, obj->data, obj->size, err);
  char rt[PATH_MAX] = "", dir[PATH_MAX], path[PATH_MAX + 160];
  bool have_rt;
  KnStatus st = runtime_dir(c, rt, sizeof rt, &have_rt, err);
  if (st != KN_OK) return st;
  const char *tmpdir = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/kiln-compile-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(dir)) return kn_fail(err, KN_ERR_IO, "%s: cannot create a temporary folder", dir);
  snprintf(path, sizeof path, "%s/%s.o", dir, c->name);
  st = fe_write_file_atomic(path, obj->data, obj->size, err);
  if (st == KN_OK) st = link_output(c, path, rt, have_rt, err);
  unlink(path);
  rmdir(dir);
  return st;
}

static size_t weights_bytes(const CgObject *obj) {
  size_t n = 0;
  for (int i = 0; i < obj->n_weights; i++) n += obj->weights[i]->nbytes;
  return n;
}

static KnStatus build(CompileArgs *c, KnModel *m, KnError *err) {
  double t0 = cli_now_ms();
  KnModel *spec = NULL;
  KnPipeline pipeline;
  KnStatus st = kn_prepare_static(m, &c->exec.run, &spec, &pipeline, err);
  double t1 = cli_now_ms();
  CgAotOptions ao = {.cg = {.opt_level = c->exec.run.opt_level, .triple = c->target, .cpu = c->exec.run.cpu,
                            .features = c->exec.run.features, .max_arena_bytes = c->exec.run.max_arena_bytes},
                     .name = c->name, .source = c->model, .embed_weights = !c->weights, .exe_main = c->exe};
  CgObject obj = {0};
  if (st == KN_OK) st = cg_compile_object(spec, &ao, &obj, err);
  double t2 = cli_now_ms();
  if (st == KN_OK) st = write_output(c, &obj, err);
  double t3 = cli_now_ms();
  /* Each file is written whole or not at all; a later failure removes the earlier ones, so a
   * failed build leaves no object without its weights or header. */
  bool wrote_out = st == KN_OK, wrote_weights = false;
  if (st == KN_OK && c->weights) wrote_weights = (st = aot_write_weights(c->weights, &obj, err)) == KN_OK;
  if (st == KN_OK && c->header) st = aot_write_header(c->header, c->name, spec->graph, &obj, c->model, err);
  if (st != KN_OK && wrote_out) unlink(c->out);
  if (st != KN_OK && wrote_weights) unlink(c->weights);
  if (st == KN_OK) {
    const CgStats *s = &obj.stats;
    printf("wrote %s (%s, target %s): %d kernels, arena %zu bytes, weights %zu bytes %s%s\n", c->out,
           (const char *[]){"object", "shared library", "static archive", "program"}[c->kind],
           c->target ? c->target : "host", s->kernels, s->arena_bytes, weights_bytes(&obj),
           c->weights ? "in " : "embedded", c->weights ? c->weights : "");
    if (c->header) printf("header %s: %s_create, %s_run, %s_destroy, %s_info\n", c->header, c->name, c->name, c->name, c->name);
    printf("compile %.1f ms (prepare %.1f, emit %.1f, optimize %.1f, object %.1f, write and link %.1f)\n", t3 - t0,
           t1 - t0, s->emit_ms, s->optimize_ms, s->jit_ms, t3 - t2);
  }
  cg_object_free(&obj);
  if (spec) ir_model_free(spec);
  return st;
}

int cmd_compile(int argc, char **argv) {
  KnArena *a = ir_arena_new();
  if (!a) return cli_fail("out of memory");
  CompileArgs c = {0};
  bool done = false;
  int rc = parse_args(argc, argv, a, &c, &done);
  if (rc == CLI_OK && !done) rc = settle_outputs(&c);
  if (rc == CLI_OK && !done) {
    KnError err = {0};
    KnModel *m = NULL;
    KnStatus st = fe_load_model(c.model, &c.exec.limits, &m, &err);
    const char *outs[3] = {c.out, c.header, c.weights};
    if (st == KN_OK) rc = cli_guard_outputs(m, c.model, outs, 3);
    if (st == KN_OK && rc == CLI_OK) st = build(&c, m, &err);
    if (m) ir_model_free(m);
    if (rc == CLI_OK && st != KN_OK) {
      kn_error_prefix(&err, "%s: ", c.model);
      rc = cli_fail_error(&err);
    }
  }
  ir_arena_free(a);
  return rc;
}
