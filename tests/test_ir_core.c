/* test_ir_core.c - unit tests of the IR core: arena, half floats, builder, verifier, inference
 * driver, specialization, and the fold_shapes + dce passes (before/after). */
#include <math.h>
#include <string.h>

#include "passes/passes.h"
#include "test_util.h"

static void test_arena_limits(void) {
  KnArena *a = ir_arena_new();
  CHECK(a != NULL);
  CHECK(ir_arena_calloc(a, SIZE_MAX / 2, 4) == NULL); /* count*size overflows */
  CHECK(ir_arena_alloc(a, SIZE_MAX - 8) == NULL);
  ir_arena_set_limit(a, 1000);
  CHECK(ir_arena_alloc(a, 512) != NULL);
  CHECK(ir_arena_alloc(a, 512) == NULL); /* 64-byte rounding: 512 + 512 > 1000 */
  char *s = ir_arena_printf(a, "%s-%d", "x", 42);
  CHECK(s && strcmp(s, "x-42") == 0);
  int64_t r;
  CHECK(ir_mul_overflows(INT64_MAX / 2 + 1, 2, &r));
  CHECK(!ir_mul_overflows(1 << 20, 1 << 20, &r) && r == (int64_t)1 << 40);
  CHECK(ir_mul_overflows(-1, 2, &r)); /* negative sizes are refused too */
  ir_arena_free(a);
}

/* Reference bit patterns from IEEE 754 binary16 / bfloat16, not from kiln. */
static void test_half_floats(void) {
  CHECK(ir_f16_to_f32(0x3c00) == 1.0f);
  CHECK(ir_f16_to_f32(0xc000) == -2.0f);
  CHECK(ir_f16_to_f32(0x7bff) == 65504.0f);
  CHECK(ir_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
  CHECK(ir_f16_to_f32(0x0400) == ldexpf(1.0f, -14)); /* smallest normal */
  CHECK(isinf(ir_f16_to_f32(0x7c00)) && isnan(ir_f16_to_f32(0x7e00)));
  CHECK(ir_f32_to_f16(1.0f) == 0x3c00 && ir_f32_to_f16(65504.0f) == 0x7bff);
  CHECK(ir_f32_to_f16(65520.0f) == 0x7c00);             /* rounds to infinity */
  CHECK(ir_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);    /* ties to even: down to 0 */
  CHECK(ir_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002);    /* 1.5 ulp: ties to even, up */
  CHECK(ir_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00); /* halfway: even is down */
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = ir_f16_to_f32((uint16_t)h);
    if (!isnan(f) && ir_f32_to_f16(f) != h) bad++;
  }
  CHECK(bad == 0);
  CHECK(ir_bf16_to_f32(0x3f80) == 1.0f && ir_f32_to_bf16(1.0f) == 0x3f80);
  CHECK(ir_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80); /* halfway: ties to even */
  CHECK(ir_f32_to_bf16(1.0f + ldexpf(3.0f, -8)) == 0x3f82);
}

static KnModel *new_model(void) {
  KnError err = {0};
  KnModel *m = ir_model_new(&err);
  CHECK(m != NULL);
  ir_model_set_opset(m, "", 13);
  return m;
}

static KnValue *sym_input(KnGraph *g, const char *name, int rank, const char **syms,
                          const int64_t *dims) {
  KnType t = ir_type_tensor(g->arena, KN_F32, rank, dims);
  for (int i = 0; i < rank; i++)
    if (syms && syms[i]) t.shape.dims[i] = (KnDim){-1, syms[i]};
  return ir_add_input(g, name, t);
}

static void test_builder_and_infer(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  const char *syms[] = {"batch", NULL};
  KnValue *x = sym_input(g, "x", 2, syms, (int64_t[]){-1, 4});
  int64_t d4[] = {4};
  KnTensor *t = ir_tensor_new(g->arena, KN_F32, 1, d4, &err);
  KnValue *b = ir_add_init(g, "bias", t);
  KnNode *add = ir_add_node(g, KN_OP_Add, "add", (KnValue *[]){x, b}, 2, 1, &err);
  CHECK(add && add->opset == 13);
  ir_add_output(g, add->outputs[0]);
  CHECK(ir_infer_graph(g, &err) == KN_OK);
  char buf[64];
  ir_type_format(&add->outputs[0]->type, buf, sizeof buf);
  CHECK_STR_EQ(buf, "f32[batch,4]");
  CHECK(ir_verify(m, &err) == KN_OK);
  CHECK(ir_find_value(g, "bias") == b && ir_find_value(g, "nope") == NULL);

  /* Specializing binds batch, and a wrong rank is a clear error. */
  KnShapeBinding bind = {"x", 2, (int64_t[]){3, 4}};
  CHECK(ir_specialize(g, &bind, 1, &err) == KN_OK);
  ir_type_format(&add->outputs[0]->type, buf, sizeof buf);
  CHECK_STR_EQ(buf, "f32[3,4]");
  KnShapeBinding bad = {"x", 3, (int64_t[]){3, 4, 5}};
  KnError err2 = {0};
  CHECK(ir_specialize(g, &bad, 1, &err2) == KN_ERR_INVALID && strstr(err2.msg, "rank"));
  ir_model_free(m);
}

static void test_infer_reports_mismatch(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  KnValue *a = sym_input(g, "a", 1, NULL, (int64_t[]){3});
  KnValue *b = sym_input(g, "b", 1, NULL, (int64_t[]){4});
  KnNode *add = ir_add_node(g, KN_OP_Add, "bad_add", (KnValue *[]){a, b}, 2, 1, &err);
  ir_add_output(g, add->outputs[0]);
  CHECK(ir_infer_graph(g, &err) == KN_ERR_INVALID);
  CHECK(strstr(err.msg, "bad_add") && strstr(err.msg, "Add"));
  ir_model_free(m);
}

static void test_verifier_catches(void) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  KnValue *x = sym_input(g, "x", 1, NULL, (int64_t[]){2});
  KnNode *n1 = ir_add_node(g, KN_OP_Relu, "r1", (KnValue *[]){x}, 1, 1, &err);
  KnNode *n2 = ir_add_node(g, KN_OP_Relu, "r2", (KnValue *[]){n1->outputs[0]}, 1, 1, &err);
  ir_add_output(g, n2->outputs[0]);
  CHECK(ir_infer_graph(g, &err) == KN_OK && ir_verify(m, &err) == KN_OK);

  g->nodes[0] = n2, g->nodes[1] = n1; /* use before definition */
  KnError e1 = {0};
  CHECK(ir_verify(m, &e1) == KN_ERR_INVALID && strstr(e1.msg, "before it is defined"));
  g->nodes[0] = n1, g->nodes[1] = n2;

  n2->outputs[0]->producer = n1; /* a value claimed by the wrong producer */
  KnError e2 = {0};
  CHECK(ir_verify(m, &e2) == KN_ERR_INVALID && strstr(e2.msg, "another producer"));
  n2->outputs[0]->producer = n2;

  n2->n_inputs = 2; /* Relu takes one input */
  KnError e3 = {0};
  CHECK(ir_verify(m, &e3) == KN_ERR_INVALID && strstr(e3.msg, "number of operands"));
  n2->n_inputs = 1;
  CHECK(ir_verify(m, &err) == KN_OK);
  ir_model_free(m);
}

/* torch's dynamic reshape: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])). */
static KnModel *torch_flatten_model(KnNode **reshape_out) {
  KnModel *m = new_model();
  KnGraph *g = m->graph;
  KnError err = {0};
  const char *syms[] = {"batch", NULL, NULL};
  KnValue *x = sym_input(g, "x", 3, syms, (int64_t[]){-1, 3, 4});
  KnTensor *idx = ir_tensor_new(g->arena, KN_I64, 0, NULL, &err);
  KnTensor *minus1 = ir_tensor_new(g->arena, KN_I64, 1, (int64_t[]){1}, &err);
  KnTensor *axes = ir_tensor_new(g->arena, KN_I64, 1, (int64_t[]){1}, &err);
  ((int64_t *)minus1->data)[0] = -1;
  KnValue *vi = ir_add_init(g, "idx", idx), *vm = ir_add_init(g, "minus1", minus1);
  KnValue *va = ir_add_init(g, "axes", axes);
  KnNode *shape = ir_add_node(g, KN_OP_Shape, "shape", &x, 1, 1, &err);
  KnNode *gather = ir_add_node(g, KN_OP_Gather, "gather", (KnValue *[]){shape->outputs[0], vi}, 2, 1, &err);
  KnNode *unsq = ir_add_node(g, KN_OP_Unsqueeze, "unsq", (KnValue *[]){gather->outputs[0], va}, 2, 1, &err);
  KnNode *cat = ir_add_node(g, KN_OP_Concat, "cat", (KnValue *[]){unsq->outputs[0], vm}, 2, 1, &err);
  ir_set_attr_int(cat, "axis", 0);
  KnNode *reshape = ir_add_node(g, KN_OP_Reshape, "reshape", (KnValue *[]){x, cat->outputs[0]}, 2, 1, &err);
  ir_add_output(g, reshape->outputs[0]);
  *reshape_out = reshape;
  return m;
}

static void test_fold_shapes_before_after(void) {
  KnNode *reshape;
  KnModel *m = torch_flatten_model(&reshape);
  KnGraph *g = m->graph;
  KnError err = {0};
  char buf[64];
  CHECK(ir_infer_graph(g, &err) == KN_OK);
  ir_type_format(&reshape->outputs[0]->type, buf, sizeof buf);
  CHECK_STR_EQ(buf, "f32[batch,12]"); /* the symbolic dim flows through the shape arithmetic */

  /* Before specialization nothing is foldable: batch is unknown. */
  KnPipeline p = {.only = "fold_shapes,dce"};
  CHECK(pass_run_pipeline(m, &p, &err) == KN_OK);
  CHECK(g->n_nodes == 5);

  KnShapeBinding bind = {"x", 3, (int64_t[]){2, 3, 4}};
  CHECK(ir_specialize(g, &bind, 1, &err) == KN_OK);
  CHECK(pass_run_pipeline(m, &p, &err) == KN_OK);
  CHECK(g->n_nodes == 1 && g->nodes[0]->op == KN_OP_Reshape); /* after: only the Reshape */
  CHECK(p.n_records == 2 && strcmp(p.records[0].name, "fold_shapes") == 0);
  CHECK(p.records[0].rewrites >= 1 && p.records[1].nodes_before == 5 && p.records[1].nodes_after == 1);
  const KnTensor *target = g->nodes[0]->inputs[1]->init;
  CHECK(target && target->numel == 2);
  if (target) CHECK(ir_tensor_get_int(target, 0) == 2 && ir_tensor_get_int(target, 1) == -1);
  ir_type_format(&g->outputs[0]->type, buf, sizeof buf);
  CHECK_STR_EQ(buf, "f32[2,12]");
  CHECK(ir_verify(m, &err) == KN_OK);

  KnPipeline none = {.level = 3, .disabled = "fold_shapes,fold_constants,fuse_linear,pack_weights,fuse_conv,block_layout,fuse_norm,fuse_attention,fold_transpose,fuse_elementwise,dce"};
  CHECK(pass_run_pipeline(m, &none, &err) == KN_OK && none.n_records == 0);
  KnPipeline unknown = {.only = "fold_shapes,nosuchpass"};
  KnError e2 = {0};
  CHECK(pass_run_pipeline(m, &unknown, &e2) == KN_ERR_INVALID && strstr(e2.msg, "nosuchpass"));
  ir_model_free(m);
}

int main(void) {
  RUN_TEST(test_arena_limits);
  RUN_TEST(test_half_floats);
  RUN_TEST(test_builder_and_infer);
  RUN_TEST(test_infer_reports_mismatch);
  RUN_TEST(test_verifier_catches);
  RUN_TEST(test_fold_shapes_before_after);
  return test_report();
}
