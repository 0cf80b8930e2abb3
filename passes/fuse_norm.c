/* fuse_norm.c - LayerNorm and GELU as torch exports them, spelled out op by op, into one node each.
 * Rewrites (f32, each intermediate used once and not a graph output, constants initializers):
 *   m = ReduceMean(x, axes=[-1] or [rank-1], keepdims=1); d = Sub(x, m);
 *   ReduceMean(Pow(d, 2) | Mul(d, d), same axis) -> Add(., eps) -> Sqrt -> Div(d, .)
 *   [-> Mul(., gamma)] [-> Add(., beta)]         (gamma, beta: one value or [.., C] over the last dim)
 *     -> LayerNormalization(x, gamma', beta'?) {axis=-1, epsilon=eps} (opset 17; gamma' ones if absent)
 *   Erf(Div(x, sqrt 2) | Mul(x, 1/sqrt 2)) -> Add(., 1), times x and 0.5 in any order/association
 *     -> kiln.Gelu(x) {approximate="none"}
 *   Tanh(Mul(sqrt(2/pi), Add(x, Mul(0.044715, x^3)))) -> Add(., 1), times x and 0.5 likewise,
 *   x^3 as Mul(x, Mul(x, x)) or Pow(x, 3)
 *     -> kiln.Gelu(x) {approximate="tanh"}
 * Each chain (up to nine LayerNorm kernels, five to nine GELU ones, each a pass over memory)
 * becomes one kernel; a GELU of a kiln.FusedGemm's result (nothing else reading it, no activation
 * yet) becomes that GEMM's activation="Gelu" {approximate}, computed in its registers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

#define MAX_CHAIN 12
/* Constants met before x is known may have any rank; the result's rank is checked at the end. */
#define ANY_RANK 4096

typedef struct Chain {
  KnNode *nodes[MAX_CHAIN];
  int n;
} Chain;

static bool push(Chain *c, KnNode *n) {
  if (c->n >= MAX_CHAIN) return false;
  c->nodes[c->n++] = n;
  return true;
}

/* An ONNX node of op with one f32 output (and, for the binary ops, two present inputs). */
static bool is_op(const KnNode *n, KnOp op) {
  if (!n || n->op != op || n->domain != KN_DOMAIN_ONNX || n->n_outputs != 1 || !pass_is_f32_tensor(n->outputs[0]))
    return false;
  bool binary = op == KN_OP_Add || op == KN_OP_Sub || op == KN_OP_Mul || op == KN_OP_Div || op == KN_OP_Pow;
  return !binary || (n->n_inputs == 2 && n->inputs[0] && n->inputs[1]);
}

static KnNode *only_consumer(const KnGraph *g, const KnNode *n) { return (KnNode *)pass_only_consumer(g, n->outputs[0]); }

/* The operand of binary n that is not v; NULL unless v is one of them. */
static KnValue *other_operand(const KnNode *n, const KnValue *v) {
  if (n->inputs[0] == v) return n->inputs[1];
  return n->inputs[1] == v ? n->inputs[0] : NULL;
}

/* The one f32 value of a constant v that does not broadcast a tensor of rank `rank` any higher. */
static bool scalar_const(const KnValue *v, int rank, double *out) {
  const KnTensor *t = pass_constant_of(v);
  if (!t || t->dtype != KN_F32 || t->numel != 1 || t->rank > rank) return false;
  *out = ((const float *)t->data)[0];
  return isfinite(*out);
}

static bool scalar_is(const KnValue *v, int rank, double want, double rel_tol) {
  double c;
  return scalar_const(v, rank, &c) && fabs(c - want) <= rel_tol * fabs(want);
}

/* ---- LayerNorm -------------------------------------------------------------------------------- */

typedef struct NormMatch {
  Chain c;
  KnValue *x, *result;
  int rank;
  int64_t ch; /* the last dim of x */
  double eps;
  const KnTensor *gamma, *beta; /* NULL when absent */
  KnValue *gamma_v, *beta_v;
} NormMatch;

/* ReduceMean of an f32 tensor of the given rank over its last dim only, keeping the dim. */
static bool mean_last_axis(const KnNode *n, int rank) {
  if (!is_op(n, KN_OP_ReduceMean) || n->n_inputs < 1 || !pass_is_f32_tensor(n->inputs[0])) return false;
  if (n->inputs[0]->type.shape.rank != rank || ir_attr_int(n, "keepdims", 1) != 1) return false;
  int64_t axes[2], cnt = 0;
  if (n->n_inputs > 1 && n->inputs[1]) { /* axes became an input at opset 18 */
    cnt = ir_input_ints(n, 1, axes, 2);
  } else {
    const int64_t *a = ir_attr_ints(n, "axes", &cnt);
    if (a && cnt == 1) axes[0] = a[0];
  }
  return cnt == 1 && (axes[0] == -1 || axes[0] == rank - 1);
}

/* The nodes using d, which must be exactly a square of it (Pow(d, 2) or Mul(d, d)) and Div(d, .). */
static bool square_and_div(const KnGraph *g, const NormMatch *M, const KnValue *d, KnNode **sq, KnNode **div) {
  int seen = 0;
  *sq = *div = NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    int uses = 0;
    for (int j = 0; j < n->n_inputs; j++) uses += n->inputs[j] == d;
    if (!uses) continue;
    seen += uses;
    if (is_op(n, KN_OP_Mul) && uses == 2 && !*sq) *sq = n;
    else if (is_op(n, KN_OP_Pow) && n->inputs[0] == d && uses == 1 && !*sq && scalar_is(n->inputs[1], M->rank, 2, 0))
      *sq = n;
    else if (is_op(n, KN_OP_Div) && n->inputs[0] == d && uses == 1 && !*div) *div = n;
    else return false;
  }
  return *sq && *div && seen == pass_count_uses(g, d); /* no graph output or subgraph use */
}

/* gamma or beta: one value, or C values along the last dim ([C], [1, .., C]) of rank <= x's. */
static bool param_const(const NormMatch *M, KnValue *v, const KnTensor **out, KnValue **out_v) {
  const KnTensor *t = pass_constant_of(v);
  if (!t || t->dtype != KN_F32 || t->rank > M->rank) return false;
  if (t->numel != 1 && (t->numel != M->ch || t->rank < 1 || t->dims[t->rank - 1] != M->ch)) return false;
  *out = t, *out_v = v;
  return true;
}

/* Div's result [-> Mul(., gamma)] [-> Add(., beta)], either operand order. */
static bool match_affine(const KnGraph *g, NormMatch *M) {
  KnNode *c = only_consumer(g, M->c.nodes[M->c.n - 1]);
  if (is_op(c, KN_OP_Mul) && param_const(M, other_operand(c, M->result), &M->gamma, &M->gamma_v)) {
    if (!push(&M->c, c)) return false;
    M->result = c->outputs[0];
    c = only_consumer(g, c);
  }
  if (is_op(c, KN_OP_Add) && param_const(M, other_operand(c, M->result), &M->beta, &M->beta_v)) {
    if (!push(&M->c, c)) return false;
    M->result = c->outputs[0];
  }
  return true;
}

/* The statistics part, from the first ReduceMean up to the Div by the standard deviation. */
static bool match_norm(const KnGraph *g, KnNode *rm, NormMatch *M) {
  if (rm->op != KN_OP_ReduceMean || !rm->n_inputs || !pass_is_f32_tensor(rm->inputs[0])) return false;
  const KnShape *s = &rm->inputs[0]->type.shape;
  *M = (NormMatch){.x = rm->inputs[0], .rank = s->rank};
  if (M->rank < 1 || (M->ch = s->dims[M->rank - 1].value) < 1 || !mean_last_axis(rm, M->rank)) return false;
  KnNode *sub = only_consumer(g, rm), *sq, *div;
  if (!is_op(sub, KN_OP_Sub) || sub->inputs[0] != M->x || sub->inputs[1] != rm->outputs[0]) return false;
  if (!square_and_div(g, M, sub->outputs[0], &sq, &div)) return false;
  KnNode *rm2 = only_consumer(g, sq), *add = NULL, *sqrt_n = NULL;
  if (mean_last_axis(rm2, M->rank) && rm2->inputs[0] == sq->outputs[0]) add = only_consumer(g, rm2);
  if (!is_op(add, KN_OP_Add) || !scalar_const(other_operand(add, rm2->outputs[0]), M->rank, &M->eps)) return false;
  sqrt_n = only_consumer(g, add);
  if (!is_op(sqrt_n, KN_OP_Sqrt) || only_consumer(g, sqrt_n) != div || div->inputs[1] != sqrt_n->outputs[0])
    return false;
  KnNode *seq[7] = {rm, sub, sq, rm2, add, sqrt_n, div};
  for (int i = 0; i < 7; i++) push(&M->c, seq[i]);
  M->result = div->outputs[0];
  return match_affine(g, M);
}

/* gamma or beta as a [C] initializer: t itself when it already is one, else t spread over C
 * (fill when t is NULL). */
static KnValue *param_value(KnGraph *g, const NormMatch *M, const KnValue *given, const KnTensor *t, float fill,
                            KnError *err) {
  if (t && t->rank == 1 && t->numel == M->ch) return (KnValue *)given;
  KnTensor *p = ir_tensor_new(g->arena, KN_F32, 1, &M->ch, err);
  if (!p) return NULL;
  float *dst = p->data;
  for (int64_t i = 0; i < M->ch; i++) dst[i] = t ? ((const float *)t->data)[t->numel == 1 ? 0 : i] : fill;
  KnValue *v = ir_add_init(g, NULL, p);
  return v ? v : (kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL);
}

/* Removes kiln's report attribute: the result is a standard ONNX node. */
static void drop_fused_attr(KnNode *n) {
  int kept = 0;
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, "fused") != 0) n->attrs[kept++] = n->attrs[i];
  n->n_attrs = kept;
}

static bool rewrite_norm(KnGraph *g, NormMatch *M, KnPassCtx *ctx) {
  KnValue *in[3] = {M->x, param_value(g, M, M->gamma_v, M->gamma, 1.0f, ctx->err), NULL};
  if (!in[1] || (M->beta && !(in[2] = param_value(g, M, M->beta_v, M->beta, 0.0f, ctx->err)))) return false;
  KnNode *n = pass_replace_chain(g, M->c.nodes, M->c.n, KN_OP_LayerNormalization, in, M->beta ? 3 : 2, ctx->err);
  if (!n) return false;
  /* LayerNormalization is an opset-17 op; the node says so whatever the model imports (each node
   * carries its own opset, and the verifier and codegen go by it). */
  if (n->opset < 17) n->opset = 17;
  drop_fused_attr(n);
  if (!ir_set_attr_int(n, "axis", -1) || !ir_set_attr_float(n, "epsilon", (float)M->eps))
    return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  ctx->rewrites++;
  return true;
}

/* ---- GELU ----------------------------------------------------------------------------------- */

typedef struct GeluMatch {
  Chain c;
  KnValue *x;
  int rank;
  bool tanh_form;
} GeluMatch;

/* Whether v is the output of a Mul(x, x) used only once; adds the Mul to the chain. */
static bool square_of_x(const KnGraph *g, GeluMatch *M, const KnValue *v) {
  KnNode *n = v ? v->producer : NULL;
  return is_op(n, KN_OP_Mul) && n->inputs[0] == M->x && n->inputs[1] == M->x && pass_only_consumer(g, v) &&
         push(&M->c, n);
}

/* x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x). */
static bool cube_of_x(const KnGraph *g, GeluMatch *M, const KnValue *v) {
  KnNode *n = v ? v->producer : NULL;
  if (!n || !pass_only_consumer(g, v)) return false;
  if (is_op(n, KN_OP_Pow) && n->inputs[0] == M->x && scalar_is(n->inputs[1], M->rank, 3, 0)) return push(&M->c, n);
  if (!is_op(n, KN_OP_Mul) || !push(&M->c, n)) return false;
  KnValue *sq = other_operand(n, M->x);
  return sq && sq != M->x && square_of_x(g, M, sq);
}

/* Add(x, Mul(0.044715, x^3)) with x its operand k; the chain is left as found when it fails. */
static bool tanh_sum(const KnGraph *g, GeluMatch *M, KnNode *sum, int k) {
  int n0 = M->c.n;
  M->x = sum->inputs[k];
  KnValue *poly = sum->inputs[1 - k];
  KnNode *kappa = poly->producer;
  if (!pass_is_f32_tensor(M->x) || poly == M->x || !is_op(kappa, KN_OP_Mul) || !pass_only_consumer(g, poly))
    return false;
  M->rank = M->x->type.shape.rank;
  int j = scalar_is(kappa->inputs[0], M->rank, 0.044715, 1e-6) ? 1 : 0;
  if (scalar_is(kappa->inputs[1 - j], M->rank, 0.044715, 1e-6) && push(&M->c, sum) && push(&M->c, kappa) &&
      cube_of_x(g, M, kappa->inputs[j]))
    return true;
  M->c.n = n0;
  return false;
}

/* The tanh form's argument: Mul(sqrt(2/pi), Add(x, Mul(0.044715, x^3))), operands in any order. */
static bool tanh_argument(const KnGraph *g, GeluMatch *M, const KnValue *v) {
  const double beta = 0.7978845608028654; /* sqrt(2 / pi) */
  KnNode *scale = v ? v->producer : NULL;
  if (!is_op(scale, KN_OP_Mul) || !pass_only_consumer(g, v)) return false;
  int k = scalar_is(scale->inputs[0], ANY_RANK, beta, 1e-6) ? 1 : 0;
  if (!scalar_is(scale->inputs[1 - k], ANY_RANK, beta, 1e-6)) return false;
  KnNode *sum = scale->inputs[k]->producer;
  if (!is_op(sum, KN_OP_Add) || !pass_only_consumer(g, scale->inputs[k]) || !push(&M->c, scale)) return false;
  return tanh_sum(g, M, sum, 0) || tanh_sum(g, M, sum, 1);
}

/* The erf form's argument: Div(x, sqrt 2) or Mul(x, 1/sqrt 2) (either order). */
static bool erf_argument(const KnGraph *g, GeluMatch *M, const KnValue *v) {
  KnNode *n = v ? v->producer : NULL;
  if (!n || !pass_only_consumer(g, v) || !(is_op(n, KN_OP_Div) || is_op(n, KN_OP_Mul))) return false;
  int k = n->op == KN_OP_Mul && pass_constant_of(n->inputs[0]) ? 1 : 0;
  M->x = n->inputs[k];
  if (!pass_is_f32_tensor(M->x) || pass_constant_of(M->x)) return false;
  M->rank = M->x->type.shape.rank;
  double want = n->op == KN_OP_Div ? M_SQRT2 : M_SQRT1_2;
  return scalar_is(n->inputs[1 - k], M->rank, want, 1e-6) && push(&M->c, n);
}

/* Whether n is Mul(a, b) in either order. */
static bool mul_of(const KnNode *n, const KnValue *a, const KnValue *b) {
  return is_op(n, KN_OP_Mul) && ((n->inputs[0] == a && n->inputs[1] == b) || (n->inputs[0] == b && n->inputs[1] == a));
}

/* Whether v is a Mul of x by 0.5 (either order) used once. */
static KnNode *half_x(const KnGraph *g, const GeluMatch *M, const KnValue *v) {
  KnNode *n = v ? v->producer : NULL;
  if (!is_op(n, KN_OP_Mul) || !pass_only_consumer(g, v)) return NULL;
  const KnValue *c = other_operand(n, M->x);
  return c && c != M->x && scalar_is(c, M->rank, 0.5, 0) ? n : NULL;
}

/* From e1 = 1 + erf/tanh(..): x * e1 * 0.5 as (x*e1)*0.5, (0.5*x)*e1 or (e1*0.5)*x. */
static bool match_product(const KnGraph *g, GeluMatch *M, const KnNode *add) {
  KnValue *e1 = add->outputs[0];
  KnNode *p = (KnNode *)pass_only_consumer(g, e1), *last = NULL;
  if (!is_op(p, KN_OP_Mul)) return false;
  KnValue *other = other_operand(p, e1);
  KnNode *h, *q = only_consumer(g, p);
  if (other == M->x) { /* (x * e1) * 0.5 */
    if (is_op(q, KN_OP_Mul) && scalar_is(other_operand(q, p->outputs[0]), M->rank, 0.5, 0)) last = q;
  } else if ((h = half_x(g, M, other))) { /* (0.5 * x) * e1 */
    if (!push(&M->c, h)) return false;
    last = p;
  } else if (other && scalar_is(other, M->rank, 0.5, 0) && mul_of(q, p->outputs[0], M->x)) { /* (e1 * 0.5) * x */
    last = q;
  }
  if (!last || !push(&M->c, p) || (last != p && !push(&M->c, last))) return false;
  return last->outputs[0]->type.shape.rank == M->rank;
}

/* From an Erf or Tanh node: the whole GELU around it. */
static bool match_gelu(const KnGraph *g, KnNode *act, GeluMatch *M) {
  *M = (GeluMatch){.tanh_form = act->op == KN_OP_Tanh};
  if (!(is_op(act, KN_OP_Erf) || is_op(act, KN_OP_Tanh)) || act->n_inputs != 1) return false;
  if (M->tanh_form ? !tanh_argument(g, M, act->inputs[0]) : !erf_argument(g, M, act->inputs[0])) return false;
  KnNode *add = only_consumer(g, act);
  if (!is_op(add, KN_OP_Add) || !scalar_is(other_operand(add, act->outputs[0]), M->rank, 1, 0)) return false;
  return push(&M->c, act) && push(&M->c, add) && match_product(g, M, add);
}

static int by_position(const void *a, const void *b) {
  int ia = (*(KnNode *const *)a)->id, ib = (*(KnNode *const *)b)->id;
  return (ia > ib) - (ia < ib);
}

/* A kiln.Gelu whose X is a FusedGemm's result that nothing else reads, the GEMM without an
 * activation: the GELU moves into the GEMM's epilogue (its registers) and the node goes. */
static bool gelu_into_gemm(KnGraph *g, KnNode *gelu, KnPassCtx *ctx) {
  KnValue *x = gelu->inputs[0];
  KnNode *gemm = x->producer;
  if (!gemm || gemm->graph != g || gemm->op != KN_OP_FusedGemm || *ir_attr_string(gemm, "activation", "") ||
      pass_only_consumer(g, x) != gelu)
    return true;
  char fused[256];
  snprintf(fused, sizeof fused, "%s+%s", ir_attr_string(gemm, "fused", "Gemm"), ir_attr_string(gelu, "fused", "Gelu"));
  if (!ir_set_attr_string(gemm, "activation", "Gelu") ||
      !ir_set_attr_string(gemm, "approximate", ir_attr_string(gelu, "approximate", "none")) ||
      !ir_set_attr_string(gemm, "fused", fused))
    return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  /* the GEMM makes the GELU's result; the Gelu node takes the old value with it */
  KnValue *y = gelu->outputs[0];
  gemm->outputs[0] = y, y->producer = gemm, y->out_index = 0;
  gelu->outputs[0] = x, x->producer = gelu, x->out_index = 0;
  gelu->inputs[0] = NULL;
  ir_graph_renumber(g);
  bool *keep = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *keep);
  if (!keep) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  for (int i = 0; i < g->n_nodes; i++) keep[i] = g->nodes[i] != gelu;
  ir_graph_remove_nodes(g, keep);
  return true;
}

static bool rewrite_gelu(KnGraph *g, GeluMatch *M, KnPassCtx *ctx) {
  ir_graph_renumber(g);
  qsort(M->c.nodes, (size_t)M->c.n, sizeof *M->c.nodes, by_position); /* the final Mul comes last */
  KnNode *n = pass_replace_chain(g, M->c.nodes, M->c.n, KN_OP_Gelu, &M->x, 1, ctx->err);
  if (!n) return false;
  if (!ir_set_attr_string(n, "approximate", M->tanh_form ? "tanh" : "none"))
    return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  ctx->rewrites++;
  return gelu_into_gemm(g, n, ctx);
}

/* ---- the pass --------------------------------------------------------------------------------- */

/* Tries both patterns at node n; true when it rewrote (false with ctx->err set on failure). */
static bool fuse_at(KnGraph *g, KnNode *n, KnPassCtx *ctx) {
  if (n->op == KN_OP_ReduceMean) {
    NormMatch M;
    return match_norm(g, n, &M) && rewrite_norm(g, &M, ctx);
  }
  if (n->op == KN_OP_Erf || n->op == KN_OP_Tanh) {
    GeluMatch M;
    return match_gelu(g, n, &M) && rewrite_gelu(g, &M, ctx);
  }
  return false;
}

bool pass_fuse_norm(KnGraph *g, KnPassCtx *ctx) {
  bool changed = false;
  for (int i = 0; i < g->n_nodes && ctx->err->status == KN_OK; i++) {
    if (!fuse_at(g, g->nodes[i], ctx)) continue;
    changed = true;
    i = -1; /* nodes before the match may have gone too (GELU's Div): start over */
  }
  return changed;
}
