/* fuse_elementwise.c - chains and DAGs of elementwise ops into one loop over memory.
 * Rewrites a group of two or more f32 ONNX nodes whose ops a kiln.FusedElementwise step may use
 * (ir_fe_arity: Add Sub Mul Div Pow Max Min PRelu, Relu Sigmoid Tanh Exp Log Sqrt Erf ...), in
 * which every value passed between group nodes has the group result's shape and no reader outside
 * the group, e.g.
 *   t = Sigmoid(x); y = Mul(x, t)                          (SiLU)
 *   a = Mul(x, s); b = Add(a, c); y = Relu(b)              (s, c per-channel)
 * into
 *   y = kiln.FusedElementwise(x, s, c) {program="t0 = Mul(x0, x1); t1 = Add(t0, x2); y = Relu(t1)"}
 * Operands from outside the group (which may broadcast) become the node's inputs, one-element f32
 * constants become numbers in the program. A value with a reader outside the group (or that is a
 * graph output) ends a group: its producer stays a node of its own, and so does a transcendental
 * op (Sigmoid, Tanh, Exp, ...) that would feed another one (see heavy_reader). Runs after the
 * passes that fold Add/Relu/Clip into convolutions and GEMMs, so it only takes what they left. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/fused_elementwise.h"
#include "passes/passes.h"

typedef struct Group {
  KnNode *nodes[IR_FE_MAX_STEPS]; /* the root (the result's producer) first until sorted */
  int n;
  KnValue *inputs[IR_FE_MAX_INPUTS];
  int n_inputs;
  const KnShape *shape;           /* the result's */
  char program[4096];
} Group;

static bool concrete_f32(const KnValue *v) {
  if (!pass_is_f32_tensor(v)) return false;
  for (int d = 0; d < v->type.shape.rank; d++)
    if (v->type.shape.dims[d].value < 0) return false;
  return true;
}

/* An ONNX node a step can compute: a step op with its plain form (no attributes: also no legacy
 * axis/broadcast), f32 in and out, shapes known. */
static bool fusable(const KnNode *n) {
  if (n->domain != KN_DOMAIN_ONNX || n->n_attrs || n->n_outputs != 1 || ir_fe_arity(n->op) != n->n_inputs)
    return false;
  for (int i = 0; i < n->n_inputs; i++)
    if (!concrete_f32(n->inputs[i])) return false;
  return concrete_f32(n->outputs[0]);
}

static int position(const Group *G, const KnNode *n) {
  for (int i = 0; i < G->n; i++)
    if (G->nodes[i] == n) return i;
  return -1;
}

static int uses_in_group(const Group *G, const KnValue *v) {
  int uses = 0;
  for (int i = 0; i < G->n; i++)
    for (int j = 0; j < G->nodes[i]->n_inputs; j++) uses += G->nodes[i]->inputs[j] == v;
  return uses;
}

/* Ops whose inline polynomials form a long dependency chain per element. */
static bool heavy(const KnNode *n) {
  switch (n->op) {
  case KN_OP_Sigmoid: case KN_OP_Tanh: case KN_OP_Exp: case KN_OP_Log: case KN_OP_Erf:
  case KN_OP_Softplus: case KN_OP_Sin: case KN_OP_Cos:
    return true;
  case KN_OP_Pow: return !pass_constant_of(n->inputs[1]);
  default: return false;
  }
}

/* Whether a heavy op of the group computes from v, directly or through other group nodes. Two
 * such ops in series in one loop measured ~1.5x slower than two loops (Softplus -> Tanh, Tanh ->
 * Exp, Sigmoid -> Sigmoid on 800K floats): the out-of-order window holds too few iterations of
 * the combined chain. Side by side (Sigmoid(x) * Tanh(x)) they fuse with profit. */
static bool heavy_reader(const Group *G, const KnValue *v) {
  bool from_v[IR_FE_MAX_STEPS] = {false};
  for (bool more = true; more;) {
    more = false;
    for (int i = 0; i < G->n; i++)
      for (int j = 0; j < G->nodes[i]->n_inputs && !from_v[i]; j++) {
        const KnValue *in = G->nodes[i]->inputs[j];
        int k = in->producer ? position(G, in->producer) : -1;
        if (in == v || (k >= 0 && from_v[k])) from_v[i] = more = true;
      }
  }
  for (int i = 0; i < G->n; i++)
    if (from_v[i] && heavy(G->nodes[i])) return true;
  return false;
}

/* Whether v's producer may join: all of v's readers are in the group, v is as large as the
 * result (a smaller intermediate would be recomputed for every output element), and a heavy
 * producer would not feed another heavy op. */
static bool can_absorb(const KnGraph *g, const Group *G, const KnValue *v) {
  const KnNode *p = v->producer;
  if (!p || p->graph != g || G->n == IR_FE_MAX_STEPS || position(G, p) >= 0 || !fusable(p)) return false;
  if (!pass_same_concrete_shape(&v->type.shape, G->shape)) return false;
  if (pass_count_uses(g, v) != uses_in_group(G, v)) return false;
  return !heavy(p) || !heavy_reader(G, v);
}

/* Adds producers until none fits; then puts the nodes in graph order. */
static void grow(const KnGraph *g, Group *G) {
  for (bool more = true; more;) {
    more = false;
    for (int i = 0; i < G->n; i++)
      for (int j = 0; j < G->nodes[i]->n_inputs; j++)
        if (can_absorb(g, G, G->nodes[i]->inputs[j])) G->nodes[G->n++] = G->nodes[i]->inputs[j]->producer, more = true;
  }
  for (int i = 1; i < G->n; i++)
    for (int j = i; j > 0 && G->nodes[j - 1]->id > G->nodes[j]->id; j--) {
      KnNode *t = G->nodes[j];
      G->nodes[j] = G->nodes[j - 1], G->nodes[j - 1] = t;
    }
}

/* The one f32 value of a finite one-element constant, written into the program when inline. */
static bool literal_of(const KnValue *v, float *out) {
  const KnTensor *t = pass_constant_of(v);
  if (!t || t->dtype != KN_F32 || t->numel != 1 || !isfinite(((const float *)t->data)[0])) return false;
  *out = ((const float *)t->data)[0];
  return true;
}

/* Appends printf text to the program; false when it does not fit. */
static bool put(Group *G, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool put(Group *G, size_t *len, const char *fmt, ...) {
  size_t room = sizeof G->program - *len;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(G->program + *len, room, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= room) return false;
  *len += (size_t)w;
  return true;
}

/* Appends operand v of a group node: a step, a number, or an input (added on first use). */
static bool put_operand(Group *G, const KnValue *v, bool inline_consts, size_t *len) {
  int k = v->producer ? position(G, v->producer) : -1;
  float c;
  if (k >= 0) return put(G, len, "t%d", k);
  if (inline_consts && literal_of(v, &c)) return put(G, len, "%.9g", (double)c); /* 9 digits: the same float back */
  int j = 0;
  while (j < G->n_inputs && G->inputs[j] != v) j++;
  if (j == IR_FE_MAX_INPUTS) return false;
  if (j == G->n_inputs) G->inputs[G->n_inputs++] = (KnValue *)v;
  return put(G, len, "x%d", j);
}

/* Whether the inputs broadcast together give exactly the result's shape (they may not when a
 * constant written into the program was the one that widened it). */
static bool inputs_give_shape(const Group *G) {
  int rank = 0;
  for (int i = 0; i < G->n_inputs; i++)
    if (G->inputs[i]->type.shape.rank > rank) rank = G->inputs[i]->type.shape.rank;
  if (rank != G->shape->rank) return false;
  for (int d = 0; d < rank; d++) {
    int64_t dim = 1;
    for (int i = 0; i < G->n_inputs; i++) {
      const KnShape *s = &G->inputs[i]->type.shape;
      int di = d - (rank - s->rank);
      if (di >= 0 && s->dims[di].value != 1) dim = s->dims[di].value;
    }
    if (dim != G->shape->dims[d].value) return false;
  }
  return true;
}

static bool write_program(Group *G, bool inline_consts) {
  size_t len = 0;
  G->n_inputs = 0;
  for (int i = 0; i < G->n; i++) {
    const KnNode *n = G->nodes[i];
    bool ok = i + 1 < G->n ? put(G, &len, "%st%d = %s(", i ? "; " : "", i, ir_ops[n->op].name)
                           : put(G, &len, "; y = %s(", ir_ops[n->op].name);
    for (int j = 0; ok && j < n->n_inputs; j++)
      ok = (!j || put(G, &len, ", ")) && put_operand(G, n->inputs[j], inline_consts, &len);
    if (!ok || !put(G, &len, ")")) return false;
  }
  return G->n_inputs > 0 && inputs_give_shape(G);
}

static KnNode *rewrite(KnGraph *g, Group *G, KnPassCtx *ctx) {
  if (!write_program(G, true) && !write_program(G, false)) return NULL;
  KnNode *n = pass_replace_chain(g, G->nodes, G->n, KN_OP_FusedElementwise, G->inputs, G->n_inputs, ctx->err);
  if (!n) return NULL;
  if (!ir_set_attr_string(n, "program", G->program)) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), NULL;
  ctx->rewrites++;
  return n;
}

/* Roots are tried from the graph's end, so each group starts at the last node of its DAG and
 * takes every producer it can before an earlier node gets the chance to start its own group. */
bool pass_fuse_elementwise(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = g->n_nodes - 1; i >= 0 && ctx->err->status == KN_OK; i--) {
    KnNode *root = g->nodes[i];
    if (!fusable(root)) continue;
    Group G = {.nodes = {root}, .n = 1, .shape = &root->outputs[0]->type.shape};
    grow(g, &G);
    if (G.n < 2) continue;
    KnNode *n = rewrite(g, &G, ctx);
    if (n) changed = true, i = n->id; /* the nodes before it are untouched: go on from there */
  }
  return changed && ctx->err->status == KN_OK;
}
