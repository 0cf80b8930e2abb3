/* test_arena_limit.c - --max-arena-bytes through the runner: a limit below the planned arena fails
 * with KN_ERR_LIMIT naming both sizes, both when kn_runner_new compiles up front (--shape) and when
 * the first kn_runner_run compiles; the default and a large limit compile and run.
 * Usage: test_arena_limit MODEL.onnx (a model with one float input of declared shape). */
#include <stdio.h>
#include <string.h>

#include "codegen/runner.h"
#include "frontend/frontend.h"
#include "test_util.h"

#define EXPECT(cond, ...) tu_check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* Runs m once on zeros with limit; returns the status of the first failing step. */
static KnStatus run_with_limit(const char *path, size_t limit, bool up_front, KnError *err) {
  KnModel *m = NULL;
  KnStatus st = fe_load_model(path, NULL, &m, err);
  if (st != KN_OK) return st;
  const KnValue *in = m->graph->inputs[0];
  int64_t dims[IR_SYM_DATA_MAX];
  for (int d = 0; d < in->type.shape.rank; d++) dims[d] = in->type.shape.dims[d].value;
  KnShapeBinding b = {in->name, in->type.shape.rank, dims};
  KnRunOptions o = {.opt_level = 0, .max_arena_bytes = limit, .shapes = up_front ? &b : NULL,
                    .n_shapes = up_front ? 1 : 0};
  KnRunner *r = NULL;
  if ((st = kn_runner_new(m, &o, &r, err)) != KN_OK) {
    ir_model_free(m);
    return st;
  }
  KnArena *a = ir_arena_new();
  KnTensor *x = a ? ir_tensor_new(a, in->type.dtype, in->type.shape.rank, dims, err) : NULL;
  KnTensor *outs[16] = {0};
  KnRtCtx ctx = {.threads = 1};
  if (!x) st = err->status ? err->status : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  else if (m->graph->n_outputs > 16) st = kn_fail(err, KN_ERR_INTERNAL, "test: too many outputs");
  else st = kn_runner_run(r, &ctx, &x, a, outs, err);
  ir_arena_free(a);
  kn_runner_free(r);
  return st;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_arena_limit MODEL.onnx\n");
    return 2;
  }
  for (int up_front = 0; up_front < 2; up_front++) {
    KnError err = {0};
    KnStatus st = run_with_limit(argv[1], 100, up_front, &err);
    EXPECT(st == KN_ERR_LIMIT, "limit 100 (up front %d): status %d (%s)", up_front, st, err.msg);
    EXPECT(strstr(err.msg, "exceeds the limit of 100 (--max-arena-bytes)") != NULL, "message: %s", err.msg);
    EXPECT(strstr(err.msg, "arena of ") != NULL, "message: %s", err.msg);
    err = (KnError){0};
    st = run_with_limit(argv[1], 0, up_front, &err);
    EXPECT(st == KN_OK, "default limit (up front %d): %s", up_front, err.msg);
    err = (KnError){0};
    st = run_with_limit(argv[1], (size_t)1 << 30, up_front, &err);
    EXPECT(st == KN_OK, "1 GiB limit (up front %d): %s", up_front, err.msg);
  }
  return test_report();
}
