/* cmd_run.c - `kiln run`: compile a model for its inputs and run it, writing output_K.pb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/tensor_file.h"
#include "tools/cli_exec.h"

static const char run_usage[] =
    "usage: kiln run MODEL [--input NAME=FILE]... [--inputs DIR] [--output-dir DIR] [--npy]\n"
    "                [-O0..-O3] [--threads N] [--shape NAME=DIMS]...\n"
    "Compiles MODEL (.onnx or .kir) for the given inputs and runs it once.\n"
    "  --input NAME=FILE       input NAME from a TensorProto .pb or NumPy .npy file\n"
    "  --inputs DIR            inputs from DIR/input_K.pb (or .npy), K over the model's inputs\n"
    "  --output-dir DIR        write output_K.pb there, K in the model's output order\n"
    "  --npy                   also write output_K.npy\n" CLI_EXEC_USAGE;

typedef struct RunArgs {
  const char *model, *inputs_dir, *output_dir;
  const char *input_specs[256];
  int n_input_specs;
  bool npy;
  CliExecOptions exec;
} RunArgs;

static int parse_args(int argc, char **argv, KnArena *a, RunArgs *r, bool *done) {
  r->exec.run.opt_level = 3;
  r->exec.threads = 1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = NULL, *bad = NULL;
    int took;
    if (cli_is_help(arg)) {
      fputs(run_usage, stdout);
      *done = true;
      return CLI_OK;
    }
    if ((took = cli_take_exec_option(argc, argv, &i, a, &r->exec, &bad)) != 0) {
      if (took < 0) return cli_usage_error("run", run_usage, "%s", bad);
    } else if ((took = cli_take_value(argc, argv, &i, "--input", &v)) != 0) {
      if (took < 0 || !strchr(v, '=') || r->n_input_specs >= 256)
        return cli_usage_error("run", run_usage, "--input needs NAME=FILE");
      r->input_specs[r->n_input_specs++] = v;
    } else if ((took = cli_take_value(argc, argv, &i, "--inputs", &v)) != 0) {
      if (took < 0) return cli_usage_error("run", run_usage, "--inputs needs a folder");
      r->inputs_dir = v;
    } else if ((took = cli_take_value(argc, argv, &i, "--output-dir", &v)) != 0) {
      if (took < 0) return cli_usage_error("run", run_usage, "--output-dir needs a folder");
      r->output_dir = v;
    } else if (strcmp(arg, "--npy") == 0) {
      r->npy = true;
    } else if (arg[0] == '-' && arg[1]) {
      return cli_usage_error("run", run_usage, "unknown option '%s'", arg);
    } else if (r->model) {
      return cli_usage_error("run", run_usage, "more than one model given ('%s')", arg);
    } else {
      r->model = arg;
    }
  }
  if (!r->model) return cli_usage_error("run", run_usage, "no model given");
  return CLI_OK;
}

/* Each file is written whole (temporary file, then rename); when one fails, the ones this run
 * wrote before it are removed, so a failed run leaves no partial set of outputs. */
static KnStatus write_outputs(const RunArgs *r, KnTensor **outs, int n, KnError *err) {
  if (mkdir(r->output_dir, 0777) != 0 && errno != EEXIST)
    return kn_fail(err, KN_ERR_IO, "%s: cannot create folder", r->output_dir);
  KnStatus st = KN_OK;
  int written = 0; /* files 0 .. written-1 of the order pb_0, npy_0, pb_1, ... are in place */
  for (int i = 0; i < n && st == KN_OK; i++)
    for (int npy = 0; npy <= (r->npy ? 1 : 0) && st == KN_OK; npy++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/output_%d.%s", r->output_dir, i, npy ? "npy" : "pb");
      if ((st = cli_write_value(path, outs[i], npy, err)) == KN_OK) written++;
    }
  for (int k = 0; st != KN_OK && k < written; k++) {
    char path[4096];
    int per = r->npy ? 2 : 1;
    snprintf(path, sizeof path, "%s/output_%d.%s", r->output_dir, k / per, k % per ? "npy" : "pb");
    unlink(path);
  }
  return st;
}

static void print_output(const KnTensor *t) {
  char shape[256];
  cli_format_shape(t, shape, sizeof shape);
  printf("output %s: %s", t->name, shape);
  int64_t show = t->numel < 6 ? t->numel : 6;
  if (!t->list && t->dtype != KN_STRING) {
    printf(" =");
    for (int64_t i = 0; i < show; i++) printf(" %.6g", ir_tensor_get_double(t, i));
    if (show < t->numel) printf(" ...");
  }
  printf("\n");
}

static int run_model(RunArgs *r, KnArena *a) {
  KnError err = {0};
  KnModel *m;
  if (fe_load_model(r->model, &r->exec.limits, &m, &err) != KN_OK) return cli_fail_error(&err);
  const KnGraph *g = m->graph;
  KnTensor **in = ir_arena_calloc(a, (size_t)g->n_inputs + 1, sizeof *in);
  KnTensor **out = ir_arena_calloc(a, (size_t)g->n_outputs + 1, sizeof *out);
  KnRunner *runner = NULL;
  KnStatus st = in && out ? KN_OK : kn_fail(&err, KN_ERR_NOMEM, "out of memory");
  if (st == KN_OK && r->inputs_dir) st = cli_read_input_dir(g, r->inputs_dir, a, in, &err);
  if (st == KN_OK) st = cli_read_named_inputs(g, r->input_specs, r->n_input_specs, a, in, &err);
  double t0 = cli_now_ms(), t1 = t0;
  if (st == KN_OK) st = kn_runner_new(m, &r->exec.run, &runner, &err);
  if (!runner) ir_model_free(m); /* the runner owns it once made */
  KnRtCtx ctx = {.threads = r->exec.threads};
  if (st == KN_OK) {
    st = kn_runner_run(runner, &ctx, in, a, out, &err);
    t1 = cli_now_ms();
  }
  if (st == KN_OK && r->output_dir) st = write_outputs(r, out, kn_runner_model(runner)->graph->n_outputs, &err);
  if (st == KN_OK) {
    for (int i = 0; i < kn_runner_model(runner)->graph->n_outputs; i++) print_output(out[i]);
    const KnProgram *p = kn_runner_last_program(runner);
    const CgStats *cs = p ? cg_program_stats(p) : NULL;
    if (cs)
      printf("compile+run %.1f ms (emit %.1f, optimize %.1f, jit %.1f), %d kernels, arena %zu bytes\n", t1 - t0,
             cs->emit_ms, cs->optimize_ms, cs->jit_ms, cs->kernels, cs->arena_bytes);
    else
      printf("compile+run %.1f ms, in stages (a shape depends on data computed in the model)\n", t1 - t0);
  }
  kn_runner_free(runner);
  if (st != KN_OK) {
    kn_error_prefix(&err, "%s: ", r->model);
    return cli_fail_error(&err);
  }
  return CLI_OK;
}

int cmd_run(int argc, char **argv) {
  KnArena *a = ir_arena_new();
  if (!a) return cli_fail("out of memory");
  RunArgs r = {0};
  bool done = false;
  int rc = parse_args(argc, argv, a, &r, &done);
  if (rc == CLI_OK && !done) rc = run_model(&r, a);
  ir_arena_free(a);
  return rc;
}
