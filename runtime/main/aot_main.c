/* aot_main.c - main() of `kiln compile --exe` programs: reads inputs, runs the linked model and
 * writes output_K.pb as `kiln run` does (libkiln_rt_main, linked with the model's object). */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, strndup, clock_gettime without -D_GNU_SOURCE */
#endif
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kiln_aot.h"

/* Emitted by `kiln compile --exe` into the model's object. */
extern const KnAotInfo *kn_aot_main_info(void);

enum { EXIT_USAGE = 2, MAX_SPECS = 256 };

static const char usage[] =
    "usage: %s [--input NAME=FILE]... [--inputs DIR] [--output-dir DIR] [--npy]\n"
    "          [--threads N] [--weights FILE] [--iters N]\n"
    "Runs the model %s compiled into this program.\n"
    "  --input NAME=FILE       input NAME from a TensorProto .pb or NumPy .npy file\n"
    "  --inputs DIR            inputs from DIR/input_K.pb (or .npy), K over the model's inputs\n"
    "  --output-dir DIR        write output_K.pb there, K in the model's output order\n"
    "  --npy                   also write output_K.npy\n"
    "  --threads N             threads for parallel loops (default 1)\n"
    "  --weights FILE          the weights file, when the weights are not embedded\n"
    "  --iters N               run N times and report the min and median time\n";

typedef struct MainArgs {
  const char *prog, *inputs_dir, *output_dir, *weights;
  const char *specs[MAX_SPECS];
  int n_specs, threads, iters;
  bool npy, help;
} MainArgs;

static int fail(const MainArgs *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const MainArgs *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", a->prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return EXIT_FAILURE;
}

static int usage_error(const MainArgs *a, const char *what, const char *arg) {
  fprintf(stderr, "%s: error: %s%s%s\n", a->prog, what, arg ? " " : "", arg ? arg : "");
  fprintf(stderr, usage, a->prog, kn_aot_main_info()->name);
  return EXIT_USAGE;
}

/* "--name V" or "--name=V": 0 not this option, 1 taken, -1 value missing. */
static int take(int argc, char **argv, int *i, const char *name, const char **v) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return 0;
  if (argv[*i][n] == '=') return *v = argv[*i] + n + 1, 1;
  if (argv[*i][n]) return 0;
  if (*i + 1 >= argc) return -1;
  return *v = argv[++*i], 1;
}

static bool count_arg(const char *v, int max, int *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (!*v || *end || errno || n < 1 || n > max) return false;
  return *out = (int)n, true;
}

static int parse_args(int argc, char **argv, MainArgs *a) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL;
    int t;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return a->help = true, EXIT_SUCCESS;
    if ((t = take(argc, argv, &i, "--input", &v)) != 0) {
      if (t < 0 || !strchr(v, '=') || a->n_specs >= MAX_SPECS) return usage_error(a, "--input needs NAME=FILE", NULL);
      a->specs[a->n_specs++] = v;
    } else if ((t = take(argc, argv, &i, "--inputs", &v)) != 0) {
      if (t < 0) return usage_error(a, "--inputs needs a folder", NULL);
      a->inputs_dir = v;
    } else if ((t = take(argc, argv, &i, "--output-dir", &v)) != 0) {
      if (t < 0) return usage_error(a, "--output-dir needs a folder", NULL);
      a->output_dir = v;
    } else if ((t = take(argc, argv, &i, "--weights", &v)) != 0) {
      if (t < 0) return usage_error(a, "--weights needs a file", NULL);
      a->weights = v;
    } else if ((t = take(argc, argv, &i, "--threads", &v)) != 0) {
      if (t < 0 || !count_arg(v, 1024, &a->threads)) return usage_error(a, "--threads needs a count from 1 to 1024", NULL);
    } else if ((t = take(argc, argv, &i, "--iters", &v)) != 0) {
      if (t < 0 || !count_arg(v, 1000000, &a->iters)) return usage_error(a, "--iters needs a count from 1 to 1000000", NULL);
    } else if (!strcmp(arg, "--npy")) {
      a->npy = true;
    } else {
      return usage_error(a, arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
    }
  }
  return EXIT_SUCCESS;
}

static void format_shape(int32_t dtype, int rank, const int64_t *dims, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "%s[", kn_aot_dtype_name(dtype));
  for (int d = 0; d < rank && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "", (long long)dims[d]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* Reads path into in (freeing what was there) and checks it against the model's input ti. */
static int read_input(const MainArgs *a, const KnAotTensorInfo *ti, const char *path, KnAotTensor *in) {
  kn_aot_tensor_free(in);
  if (kn_aot_read_tensor(path, in) != KN_AOT_OK) return fail(a, "%s", kn_aot_last_error());
  if (ti->dtype == KN_AOT_BFLOAT16 && in->dtype == KN_AOT_UINT16) in->dtype = KN_AOT_BFLOAT16;
  bool same = in->dtype == ti->dtype && in->rank == ti->rank;
  for (int d = 0; same && d < ti->rank; d++) same = in->dims[d] == ti->dims[d];
  if (same) return EXIT_SUCCESS;
  char want[512], got[512];
  format_shape(ti->dtype, ti->rank, ti->dims, want, sizeof want);
  format_shape(in->dtype, in->rank, in->dims, got, sizeof got);
  return fail(a, "%s: input %s expects %s, the file holds %s", path, ti->name, want, got);
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int read_inputs(const MainArgs *a, const KnAotInfo *info, KnAotTensor *in) {
  char path[4096];
  for (int k = 0; a->inputs_dir && k < info->n_inputs; k++) {
    const char *name = info->inputs[k].name;
    snprintf(path, sizeof path, "%s/input_%d.pb", a->inputs_dir, k);
    if (!file_exists(path)) snprintf(path, sizeof path, "%s/input_%d.npy", a->inputs_dir, k);
    if (!file_exists(path)) snprintf(path, sizeof path, "%s/%s.npy", a->inputs_dir, name);
    if (!file_exists(path))
      return fail(a, "%s: no input_%d.pb, input_%d.npy or %s.npy for input %s", a->inputs_dir, k, k, name, name);
    if (read_input(a, &info->inputs[k], path, &in[k])) return EXIT_FAILURE;
  }
  for (int s = 0; s < a->n_specs; s++) {
    const char *spec = a->specs[s], *eq = strchr(spec, '=');
    int found = -1;
    for (int i = 0; i < info->n_inputs; i++)
      if (strlen(info->inputs[i].name) == (size_t)(eq - spec) && !strncmp(info->inputs[i].name, spec, (size_t)(eq - spec)))
        found = i;
    if (found < 0) return fail(a, "--input %.*s: the model has no input of that name", (int)(eq - spec), spec);
    if (read_input(a, &info->inputs[found], eq + 1, &in[found])) return EXIT_FAILURE;
  }
  for (int i = 0; i < info->n_inputs; i++)
    if (!in[i].data)
      return fail(a, "no value for input %s (give --inputs DIR or --input %s=FILE)", info->inputs[i].name,
                  info->inputs[i].name);
  return EXIT_SUCCESS;
}

static int write_outputs(const MainArgs *a, const KnAotInfo *info, void **out) {
  if (mkdir(a->output_dir, 0777) != 0 && errno != EEXIST)
    return fail(a, "%s: cannot create folder: %s", a->output_dir, strerror(errno));
  for (int i = 0; i < info->n_outputs; i++) {
    const KnAotTensorInfo *o = &info->outputs[i];
    char path[4096];
    for (int npy = 0; npy <= (a->npy ? 1 : 0); npy++) {
      snprintf(path, sizeof path, "%s/output_%d.%s", a->output_dir, i, npy ? "npy" : "pb");
      if (kn_aot_write_tensor(path, o->name, o->dtype, o->rank, o->dims, out[i]) != KN_AOT_OK)
        return fail(a, "%s", kn_aot_last_error());
    }
  }
  return EXIT_SUCCESS;
}

static double half_to_double(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? m / 16777216.0 : e == 31 ? (m ? NAN : INFINITY) : (1024 + m) * ldexp(1.0, e - 25);
  return h & 0x8000 ? -v : v;
}

static double element(const void *data, int32_t dtype, int64_t i) {
  switch (dtype) {
  case KN_AOT_FLOAT: return ((const float *)data)[i];
  case KN_AOT_DOUBLE: return ((const double *)data)[i];
  case KN_AOT_UINT8: case KN_AOT_BOOL: return ((const uint8_t *)data)[i];
  case KN_AOT_INT8: return ((const int8_t *)data)[i];
  case KN_AOT_UINT16: return ((const uint16_t *)data)[i];
  case KN_AOT_INT16: return ((const int16_t *)data)[i];
  case KN_AOT_INT32: return ((const int32_t *)data)[i];
  case KN_AOT_UINT32: return ((const uint32_t *)data)[i];
  case KN_AOT_INT64: return (double)((const int64_t *)data)[i];
  case KN_AOT_UINT64: return (double)((const uint64_t *)data)[i];
  case KN_AOT_FLOAT16: case KN_AOT_BFLOAT16:
    return half_to_double(((const uint16_t *)data)[i], dtype == KN_AOT_BFLOAT16);
  default: return 0;
  }
}

static void print_output(const KnAotTensorInfo *o, const void *data) {
  char shape[512];
  format_shape(o->dtype, o->rank, o->dims, shape, sizeof shape);
  printf("output %s: %s =", o->name, shape);
  int64_t show = o->numel < 6 ? o->numel : 6;
  for (int64_t i = 0; i < show; i++) printf(" %.6g", element(data, o->dtype, i));
  printf("%s\n", show < o->numel ? " ..." : "");
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Runs a->iters times; *min and *median in ms. */
static int run_timed(const MainArgs *a, KnAotModel *m, const void **in, void **out, double *min,
                     double *median) {
  double *ms = malloc(sizeof *ms * (size_t)a->iters);
  if (!ms) return fail(a, "out of memory");
  int rc = EXIT_SUCCESS;
  for (int it = 0; it < a->iters && rc == EXIT_SUCCESS; it++) {
    double t0 = now_ms();
    if (kn_aot_run(m, in, out) != KN_AOT_OK) rc = fail(a, "%s", kn_aot_last_error());
    ms[it] = now_ms() - t0;
  }
  if (rc == EXIT_SUCCESS) {
    qsort(ms, (size_t)a->iters, sizeof *ms, cmp_double);
    *min = ms[0], *median = ms[a->iters / 2];
  }
  free(ms);
  return rc;
}

static int run_model(const MainArgs *a, const KnAotInfo *info) {
  int n_in = info->n_inputs, n_out = info->n_outputs, rc = EXIT_SUCCESS;
  KnAotTensor *in = calloc((size_t)n_in + 1, sizeof *in);
  const void **in_ptrs = calloc((size_t)n_in + 1, sizeof *in_ptrs);
  void **out = calloc((size_t)n_out + 1, sizeof *out);
  KnAotModel *m = NULL;
  if (!in || !in_ptrs || !out) rc = fail(a, "out of memory");
  if (rc == EXIT_SUCCESS && !info->weights && info->n_weights && !a->weights)
    rc = fail(a, "model %s was compiled with a separate weights file: pass --weights FILE", info->name);
  double t0 = now_ms();
  if (rc == EXIT_SUCCESS) rc = read_inputs(a, info, in);
  if (rc == EXIT_SUCCESS && kn_aot_create(info, a->weights, &m) != KN_AOT_OK) rc = fail(a, "%s", kn_aot_last_error());
  for (int i = 0; rc == EXIT_SUCCESS && i < n_out; i++)
    if (!(out[i] = calloc(1, info->outputs[i].nbytes ? (size_t)info->outputs[i].nbytes : 1))) rc = fail(a, "out of memory");
  for (int i = 0; rc == EXIT_SUCCESS && i < n_in; i++) in_ptrs[i] = in[i].data;
  double t1 = now_ms(), min = 0, median = 0;
  if (rc == EXIT_SUCCESS) {
    kn_aot_set_threads(m, a->threads);
    rc = run_timed(a, m, in_ptrs, out, &min, &median);
  }
  if (rc == EXIT_SUCCESS && a->output_dir) rc = write_outputs(a, info, out);
  if (rc == EXIT_SUCCESS) {
    for (int i = 0; i < n_out; i++) print_output(&info->outputs[i], out[i]);
    printf("load %.1f ms (inputs and weights), ", t1 - t0);
    if (a->iters == 1) printf("run %.3f ms\n", min);
    else printf("run min %.3f ms, median %.3f ms over %d runs\n", min, median, a->iters);
  }
  kn_aot_destroy(m);
  for (int i = 0; in && i < n_in; i++) kn_aot_tensor_free(&in[i]);
  for (int i = 0; out && i < n_out; i++) free(out[i]);
  free(in);
  free(in_ptrs);
  free(out);
  return rc;
}

int main(int argc, char **argv) {
  const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
  MainArgs a = {.prog = argc > 0 ? (slash ? slash + 1 : argv[0]) : "model", .threads = 1, .iters = 1};
  const KnAotInfo *info = kn_aot_main_info();
  int rc = parse_args(argc, argv, &a);
  if (rc != EXIT_SUCCESS) return rc;
  if (a.help) {
    printf(usage, a.prog, info->name);
    return EXIT_SUCCESS;
  }
  return run_model(&a, info);
}
