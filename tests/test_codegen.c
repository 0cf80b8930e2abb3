/* test_codegen.c - unit tests of the code generator's core: the arena plan reuses buffers,
 * compiled elementwise kernels give hand-computed answers at -O0 and -O3 with 1 and 2 threads,
 * run-time input checks, and the fold_constants pass (before/after) through codegen. */
#include <string.h>

#include "codegen/runner.h"
#include "test_util.h"

static KnModel *new_model(void) {
  KnError err = {0};
  KnModel *m = ir_model_new(&err);
  CHECK(m != NULL);
  ir_model_set_opset(m, "", 13);
  return m;
}

static KnTensor *f32_tensor(KnArena *a, int64_t n, const float *vals) {
  KnError err = {0};
  KnTensor *t = ir_tensor_new(a, KN_F32, 1, &n, &err);
  CHECK(t != NULL);
  memcpy(t->data, vals, (size_t)n * sizeof(float));
  return t;
}

/* y = relu(x * c + c) with c = a + b folded from two initializers. */
static KnModel *chain_model(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  int64_t n = 3;
  const float av[3] = {1, 2, 3}, bv[3] = {10, 20, -30};
  KnValue *a = ir_add_init(g, "a", f32_tensor(g->arena, 3, av));
  KnValue *b = ir_add_init(g, "b", f32_tensor(g->arena, 3, bv));
  KnValue *x = ir_add_input(g, "x", ir_type_tensor(g->arena, KN_F32, 1, &n));
  KnNode *add = ir_add_node(g, KN_OP_Add, "c", (KnValue *[]){a, b}, 2, 1, &err);
  KnNode *mul = ir_add_node(g, KN_OP_Mul, "xc", (KnValue *[]){x, add->outputs[0]}, 2, 1, &err);
  KnNode *add2 = ir_add_node(g, KN_OP_Add, "xcc", (KnValue *[]){mul->outputs[0], add->outputs[0]}, 2, 1, &err);
  KnNode *relu = ir_add_node(g, KN_OP_Relu, "y", (KnValue *[]){add2->outputs[0]}, 1, 1, &err);
  CHECK(relu != NULL);
  ir_add_output(g, relu->outputs[0]);
  CHECK_OK(ir_infer_graph(g, &err), &err);
  return m;
}

static void test_fold_constants(void) {
  kn_runner_install_hooks();
  KnModel *m = chain_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  KnPassCtx ctx = {.err = &err};
  CHECK_INT_EQ(g->n_nodes, 4);
  CHECK(pass_fold_constants(g, &ctx));
  CHECK_INT_EQ(err.status, KN_OK);
  CHECK_INT_EQ(g->n_nodes, 3); /* the Add of two initializers became one */
  CHECK_INT_EQ(ctx.rewrites, 1);
  KnValue *c = g->nodes[0]->inputs[1];
  CHECK(c->init != NULL && c->producer == NULL);
  if (c->init) {
    const float *d = c->init->data;
    CHECK(d[0] == 11 && d[1] == 22 && d[2] == -27);
  }
  CHECK(!pass_fold_constants(g, &ctx)); /* nothing left to fold */
  CHECK_OK(ir_verify(m, &err), &err);
  ir_model_free(m);
}

static void run_chain(int opt_level, int threads) {
  KnError err = {0};
  KnRunner *r;
  /* fuse_elementwise off: the chain keeps the intermediates whose planning this checks */
  KnRunOptions o = {.opt_level = opt_level, .disabled = "fuse_elementwise"};
  CHECK_OK(kn_runner_new(chain_model(), &o, &r, &err), &err);
  KnArena *a = ir_arena_new();
  const float xv[3] = {2, -1, 1};
  KnTensor *in[1] = {f32_tensor(a, 3, xv)}, *out[1] = {NULL};
  KnRtCtx ctx = {.threads = threads};
  CHECK_OK(kn_runner_run(r, &ctx, in, a, out, &err), &err);
  if (out[0]) {
    const float *y = out[0]->data; /* relu(x*c + c), c = (11, 22, -27) */
    CHECK(y[0] == 33 && y[1] == 0 && y[2] == 0);
  }
  const CgStats *s = cg_program_stats(kn_runner_last_program(r));
  CHECK(s->arena_bytes <= s->naive_bytes);
  /* A wrong dtype or shape is refused before running. */
  int64_t four = 4;
  KnTensor *bad = ir_tensor_new(a, KN_F32, 1, &four, &err);
  in[0] = bad;
  CHECK(kn_runner_run(r, &ctx, in, a, out, &err) == KN_ERR_INVALID);
  CHECK_CONTAINS(err.msg, "input x: dim 0 must be 3, got 4");
  kn_runner_free(r);
  ir_arena_free(a);
}

static void test_run_levels(void) {
  run_chain(0, 1);
  run_chain(3, 1);
  run_chain(3, 2);
}

/* A long chain of elementwise ops needs only two live buffers at a time. */
static void test_arena_reuse(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  int64_t n = 1000;
  KnValue *v = ir_add_input(g, "x", ir_type_tensor(g->arena, KN_F32, 1, &n));
  for (int i = 0; i < 10; i++) v = ir_add_node(g, KN_OP_Neg, NULL, &v, 1, 1, &err)->outputs[0];
  ir_add_output(g, v);
  CHECK_OK(ir_infer_graph(g, &err), &err);
  CgPlan plan;
  CHECK_OK(cg_plan_graph(g, 0, &plan, &err), &err);
  CHECK_INT_EQ((long long)plan.naive_bytes, 9 * 4032); /* 9 intermediates, 4000 B rounded to 64 */
  CHECK_INT_EQ((long long)plan.arena_bytes, 2 * 4032);
  cg_plan_free(&plan);
  ir_model_free(m);
}

/* y = -float(NonZero(x)): the NonZero count is data, so the model runs in stages and the part
 * after NonZero compiles again for each new count. */
static void test_data_dependent_stages(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  int64_t n = 6;
  KnValue *x = ir_add_input(g, "x", ir_type_tensor(g->arena, KN_F32, 1, &n));
  KnNode *nz = ir_add_node(g, KN_OP_NonZero, "nz", &x, 1, 1, &err);
  KnNode *cast = ir_add_node(g, KN_OP_Cast, "idx", nz->outputs, 1, 1, &err);
  ir_set_attr_int(cast, "to", KN_F32);
  KnNode *neg = ir_add_node(g, KN_OP_Neg, "y", cast->outputs, 1, 1, &err);
  ir_add_output(g, neg->outputs[0]);
  CHECK_OK(ir_infer_graph(g, &err), &err);
  KnRunner *r;
  KnRunOptions o = {.opt_level = 3};
  CHECK_OK(kn_runner_new(m, &o, &r, &err), &err);
  KnArena *a = ir_arena_new();
  const float x1[6] = {0, 3, 0, 5, 1, -0.0f}, x2[6] = {1, 1, 0, 0, 0, 0};
  const float *xs[2] = {x1, x2};
  const int64_t counts[2] = {3, 2};
  const float want[2][3] = {{-1, -3, -4}, {-0.0f, -1}};
  for (int t = 0; t < 2; t++) {
    KnTensor *in[1] = {f32_tensor(a, 6, xs[t])}, *out[1] = {NULL};
    KnRtCtx ctx = {.threads = 1};
    CHECK_OK(kn_runner_run(r, &ctx, in, a, out, &err), &err);
    CHECK(kn_runner_last_staged(r));
    if (!out[0]) continue;
    CHECK_INT_EQ(out[0]->rank, 2);
    CHECK_INT_EQ(out[0]->dims[1], counts[t]);
    for (int64_t i = 0; i < counts[t] && out[0]->numel == counts[t]; i++)
      CHECK(((const float *)out[0]->data)[i] == want[t][i]);
  }
  kn_runner_free(r);
  ir_arena_free(a);
}

int main(void) {
  RUN_TEST(test_data_dependent_stages);
  RUN_TEST(test_fold_constants);
  RUN_TEST(test_run_levels);
  RUN_TEST(test_arena_reuse);
  return test_report();
}
