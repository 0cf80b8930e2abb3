/* fuzz_compile_run.c - libFuzzer target: the input bytes pick one common op, its input shapes,
 * dtypes, attributes and constant inputs; a model built from them with the IR builder that passes
 * shape inference and the verifier is compiled by the runner (-O0, one thread) and run on inputs
 * drawn from the bytes. Any kiln error status is fine; a crash, sanitizer report, hang or leak is
 * a bug in inference, lowering or the runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/runner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Bytes {
  const uint8_t *p;
  size_t n;
} Bytes;

/* The next byte, 0 once the input is used up (so every input describes some model). */
static uint8_t take(Bytes *b) {
  if (!b->n) return 0;
  b->n--;
  return *b->p++;
}
static int take_mod(Bytes *b, int m) { return take(b) % m; }

/* How an input slot is filled: a data tensor, a small integer list (shapes, axes, pads, indices),
 * or a scalar of the data's type. */
enum { SLOT_X, SLOT_INTS, SLOT_SCALAR };
enum { A_INT, A_INTS, A_FLOAT, A_STRING };

typedef struct AttrSpec {
  const char *name;
  int kind;
  int lo, hi;                /* value range for A_INT / A_INTS */
  const char *const *strs;   /* choices for A_STRING, NULL-terminated */
} AttrSpec;

typedef struct OpSpec {
  KnOp op;
  int min_in, max_in;
  int slots[5];
  int min_out, max_out;
  AttrSpec attrs[5];
} OpSpec;

static const char *const pad_modes[] = {"constant", "reflect", "edge", "wrap", NULL};
static const char *const equations[] = {"ij,jk->ik", "ii->i", "ij->ji", "...i,...i->...", "i,j->ij",
                                        "bij,bjk->bik", "ij", NULL};
static const char *const auto_pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};

#define X SLOT_X
#define I SLOT_INTS
#define S SLOT_SCALAR
static const OpSpec specs[] = {
  {KN_OP_Add, 2, 2, {X, X}, 1, 1, {{0}}},
  {KN_OP_Mul, 2, 2, {X, X}, 1, 1, {{0}}},
  {KN_OP_Div, 2, 2, {X, X}, 1, 1, {{0}}},
  {KN_OP_Relu, 1, 1, {X}, 1, 1, {{0}}},
  {KN_OP_Sqrt, 1, 1, {X}, 1, 1, {{0}}},
  {KN_OP_MatMul, 2, 2, {X, X}, 1, 1, {{0}}},
  {KN_OP_Gemm, 2, 3, {X, X, X}, 1, 1,
   {{"transA", A_INT, 0, 1, NULL}, {"transB", A_INT, 0, 1, NULL}, {"alpha", A_FLOAT, 0, 0, NULL}}},
  {KN_OP_Conv, 2, 3, {X, X, X}, 1, 1,
   {{"group", A_INT, 0, 4, NULL}, {"strides", A_INTS, 0, 3, NULL}, {"pads", A_INTS, -1, 3, NULL},
    {"dilations", A_INTS, 0, 3, NULL}, {"auto_pad", A_STRING, 0, 0, auto_pads}}},
  {KN_OP_MaxPool, 1, 1, {X}, 1, 2,
   {{"kernel_shape", A_INTS, 0, 4, NULL}, {"strides", A_INTS, 0, 3, NULL},
    {"pads", A_INTS, -1, 3, NULL}, {"ceil_mode", A_INT, 0, 1, NULL},
    {"auto_pad", A_STRING, 0, 0, auto_pads}}},
  {KN_OP_AveragePool, 1, 1, {X}, 1, 1,
   {{"kernel_shape", A_INTS, 0, 4, NULL}, {"strides", A_INTS, 0, 3, NULL},
    {"pads", A_INTS, -1, 3, NULL}, {"count_include_pad", A_INT, 0, 1, NULL},
    {"ceil_mode", A_INT, 0, 1, NULL}}},
  {KN_OP_Reshape, 2, 2, {X, I}, 1, 1, {{"allowzero", A_INT, 0, 1, NULL}}},
  {KN_OP_Transpose, 1, 1, {X}, 1, 1, {{"perm", A_INTS, -1, 4, NULL}}},
  {KN_OP_Concat, 1, 3, {X, X, X}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_Gather, 2, 2, {X, I}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_GatherElements, 2, 2, {X, I}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_Softmax, 1, 1, {X}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_ReduceSum, 1, 2, {X, I}, 1, 1,
   {{"keepdims", A_INT, 0, 1, NULL}, {"noop_with_empty_axes", A_INT, 0, 1, NULL}}},
  {KN_OP_ReduceMax, 1, 2, {X, I}, 1, 1,
   {{"keepdims", A_INT, 0, 1, NULL}, {"axes", A_INTS, -4, 4, NULL}}},
  {KN_OP_Slice, 3, 5, {X, I, I, I, I}, 1, 1, {{0}}},
  {KN_OP_Pad, 2, 3, {X, I, S}, 1, 1, {{"mode", A_STRING, 0, 0, pad_modes}}},
  {KN_OP_Flatten, 1, 1, {X}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_Unsqueeze, 2, 2, {X, I}, 1, 1, {{0}}},
  {KN_OP_Squeeze, 1, 2, {X, I}, 1, 1, {{0}}},
  {KN_OP_Expand, 2, 2, {X, I}, 1, 1, {{0}}},
  {KN_OP_Tile, 2, 2, {X, I}, 1, 1, {{0}}},
  {KN_OP_Split, 1, 2, {X, I}, 1, 3, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_TopK, 2, 2, {X, I}, 2, 2,
   {{"axis", A_INT, -4, 4, NULL}, {"largest", A_INT, 0, 1, NULL}, {"sorted", A_INT, 0, 1, NULL}}},
  {KN_OP_ArgMax, 1, 1, {X}, 1, 1,
   {{"axis", A_INT, -4, 4, NULL}, {"keepdims", A_INT, 0, 1, NULL},
    {"select_last_index", A_INT, 0, 1, NULL}}},
  {KN_OP_Cast, 1, 1, {X}, 1, 1, {{"to", A_INT, 1, 16, NULL}}},
  {KN_OP_Clip, 1, 3, {X, S, S}, 1, 1, {{0}}},
  {KN_OP_Where, 3, 3, {X, X, X}, 1, 1, {{0}}},
  {KN_OP_LayerNormalization, 2, 3, {X, X, X}, 1, 1,
   {{"axis", A_INT, -4, 4, NULL}, {"epsilon", A_FLOAT, 0, 0, NULL}}},
  {KN_OP_BatchNormalization, 5, 5, {X, X, X, X, X}, 1, 1, {{"epsilon", A_FLOAT, 0, 0, NULL}}},
  {KN_OP_CumSum, 2, 2, {X, S}, 1, 1,
   {{"exclusive", A_INT, 0, 1, NULL}, {"reverse", A_INT, 0, 1, NULL}}},
  {KN_OP_Range, 3, 3, {S, S, S}, 1, 1, {{0}}},
  {KN_OP_OneHot, 3, 3, {X, S, X}, 1, 1, {{"axis", A_INT, -4, 4, NULL}}},
  {KN_OP_ScatterND, 3, 3, {X, I, X}, 1, 1, {{0}}},
  {KN_OP_DepthToSpace, 1, 1, {X}, 1, 1, {{"blocksize", A_INT, 0, 3, NULL}}},
  {KN_OP_Einsum, 1, 2, {X, X}, 1, 1, {{"equation", A_STRING, 0, 0, equations}}},
};
#undef X
#undef I
#undef S

static const KnDtype data_dtypes[] = {KN_F32, KN_F32, KN_F32, KN_F32, KN_I64, KN_I32,
                                      KN_BOOL, KN_F16, KN_F64, KN_U8};
static const int opsets[] = {13, 15, 17, 18, 19, 21};

typedef struct Build {
  Bytes *b;
  KnModel *m;
  KnArena *run_arena;      /* the run's input tensors */
  KnTensor *inputs[8];     /* data for graph inputs, in order */
  int n_inputs;
  KnShape first;           /* shape of the first data input, which later ones may reuse */
  KnDtype first_dtype;
} Build;

/* A rank 0..4 shape of dims 0..8, or the first input's shape with some dims turned to 1 (so
 * elementwise and broadcasting ops see compatible shapes often). */
static int pick_dims(Build *B, int64_t *dims, bool first) {
  int how = take_mod(B->b, 4);
  if (!first && how < 2 && B->first.rank >= 0) {
    for (int i = 0; i < B->first.rank; i++)
      dims[i] = (how == 1 && take_mod(B->b, 3) == 0) ? 1 : B->first.dims[i].value;
    return B->first.rank;
  }
  int rank = take_mod(B->b, 5);
  for (int i = 0; i < rank; i++) dims[i] = take_mod(B->b, 9);
  return rank;
}

/* Fills t's elements from the bytes (small values, so integer inputs make valid indices often). */
static void fill(Bytes *b, KnTensor *t) {
  for (int64_t i = 0; i < t->numel; i++) {
    int v = (int)(int8_t)take(b);
    switch (t->dtype) {
    case KN_F32: ((float *)t->data)[i] = (float)v / 8.0f; break;
    case KN_F64: ((double *)t->data)[i] = (double)v / 8.0; break;
    case KN_F16: ((uint16_t *)t->data)[i] = ir_f32_to_f16((float)v / 8.0f); break;
    case KN_I64: ((int64_t *)t->data)[i] = v % 10; break;
    case KN_I32: ((int32_t *)t->data)[i] = v % 10; break;
    case KN_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)(v & 1); break;
    default: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    }
  }
}

/* A graph input (data supplied at run time) or an initializer, per a byte. */
static KnValue *add_tensor_value(Build *B, KnDtype dtype, int rank, const int64_t *dims,
                                 bool constant, KnError *err) {
  KnGraph *g = B->m->graph;
  if (constant) {
    KnTensor *t = ir_tensor_new(g->arena, dtype, rank, dims, err);
    if (!t) return NULL;
    fill(B->b, t);
    return ir_add_init(g, NULL, t);
  }
  if (B->n_inputs == (int)(sizeof B->inputs / sizeof B->inputs[0])) return NULL;
  KnTensor *t = ir_tensor_new(B->run_arena, dtype, rank, dims, err);
  if (!t) return NULL;
  fill(B->b, t);
  B->inputs[B->n_inputs++] = t;
  return ir_add_input(g, NULL, ir_type_tensor(g->arena, dtype, rank, dims));
}

static KnValue *add_slot(Build *B, int slot, int index, KnError *err) {
  int64_t dims[4];
  bool constant = take_mod(B->b, 3) == 0;
  if (slot == SLOT_INTS) {
    /* Mostly constant: shapes, axes and pads known at compile time are the common case. */
    int rank = take_mod(B->b, 8) == 0 ? 2 : 1;
    for (int i = 0; i < rank; i++) dims[i] = take_mod(B->b, 5);
    return add_tensor_value(B, take_mod(B->b, 8) ? KN_I64 : KN_I32, rank, dims,
                            take_mod(B->b, 4) != 0, err);
  }
  if (slot == SLOT_SCALAR) {
    KnDtype dt = take_mod(B->b, 2) && index ? B->first_dtype : KN_I64;
    return add_tensor_value(B, dt, 0, dims, constant, err);
  }
  KnDtype dt = data_dtypes[take_mod(B->b, (int)(sizeof data_dtypes / sizeof data_dtypes[0]))];
  if (index > 0 && take_mod(B->b, 4)) dt = B->first_dtype;
  int rank = pick_dims(B, dims, index == 0);
  KnValue *v = add_tensor_value(B, dt, rank, dims, constant, err);
  if (v && index == 0) {
    B->first = ir_shape_copy(B->m->arena, &v->type.shape);
    if (rank > 0 && !B->first.dims) return NULL;
    B->first_dtype = dt;
  }
  return v;
}

static int take_in(Bytes *b, int lo, int hi) { return lo + take_mod(b, hi - lo + 1); }

/* Each attribute of the spec is set with probability 1/2, from its range or choices. */
static bool set_attrs(Bytes *b, KnNode *n, const OpSpec *s) {
  bool ok = true;
  for (int i = 0; i < 5 && s->attrs[i].name && ok; i++) {
    const AttrSpec *a = &s->attrs[i];
    if (take_mod(b, 2)) continue;
    if (a->kind == A_INT) {
      ok = ir_set_attr_int(n, a->name, take_in(b, a->lo, a->hi));
    } else if (a->kind == A_FLOAT) {
      ok = ir_set_attr_float(n, a->name, (float)(int8_t)take(b) / 16.0f);
    } else if (a->kind == A_STRING) {
      int count = 0;
      while (a->strs[count]) count++;
      ok = ir_set_attr_string(n, a->name, a->strs[take_mod(b, count)]);
    } else {
      int64_t v[8];
      int count = take_mod(b, 9);
      for (int k = 0; k < count; k++) v[k] = take_in(b, a->lo, a->hi);
      ok = ir_set_attr_ints(n, a->name, v, count);
    }
  }
  return ok;
}

/* The one-op model the bytes describe, shape-inferred and verified; NULL when it is not valid. */
static KnModel *build_model(Build *B, const OpSpec **spec_out) {
  KnError err = {0};
  Bytes *b = B->b;
  const OpSpec *s = &specs[take_mod(b, (int)(sizeof specs / sizeof specs[0]))];
  *spec_out = s;
  B->m = ir_model_new(&err);
  if (!B->m) return NULL;
  ir_model_set_opset(B->m, "", opsets[take_mod(b, (int)(sizeof opsets / sizeof opsets[0]))]);
  int n_in = take_in(b, s->min_in, s->max_in);
  int n_out = take_in(b, s->min_out, s->max_out);
  KnValue *ins[5] = {NULL};
  for (int i = 0; i < n_in; i++) {
    ins[i] = add_slot(B, s->slots[i], i, &err);
    if (!ins[i]) return NULL;
  }
  KnNode *n = ir_add_node(B->m->graph, s->op, "op", ins, n_in, n_out, &err);
  if (!n || !set_attrs(b, n, s)) return NULL;
  for (int i = 0; i < n_out; i++)
    if (!ir_add_output(B->m->graph, n->outputs[i])) return NULL;
  if (ir_infer_graph(B->m->graph, &err) != KN_OK || ir_verify(B->m, &err) != KN_OK) return NULL;
  return B->m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Bytes b = {data, size};
  Build B = {.b = &b, .run_arena = ir_arena_new()};
  if (!B.run_arena) abort();
  const OpSpec *spec = NULL;
  if (!build_model(&B, &spec)) {
    ir_model_free(B.m);
    ir_arena_free(B.run_arena);
    return 0;
  }
  bool verbose = getenv("FUZZ_COMPILE_RUN_VERBOSE") != NULL; /* which op, and how far it got */
  if (verbose) fprintf(stderr, "op %s, %d graph inputs\n", ir_ops[spec->op].name, B.n_inputs);
  KnRunOptions o = {.opt_level = 0};
  KnRunner *r = NULL;
  KnError err = {0};
  if (kn_runner_new(B.m, &o, &r, &err) == KN_OK) { /* the runner owns the model from here */
    KnTensor *outs[4] = {NULL};
    KnRtCtx ctx = {.threads = 1};
    (void)kn_runner_run(r, &ctx, B.inputs, B.run_arena, outs, &err);
  }
  if (verbose) fprintf(stderr, "  -> %s %s\n", kn_status_name(err.status), err.msg);
  if (!r) {
    ir_model_free(B.m); /* the caller keeps the model when kn_runner_new fails */
  }
  kn_runner_free(r);
  ir_arena_free(B.run_arena);
  return 0;
}
