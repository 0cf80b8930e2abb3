/* infer_control.c - shape inference for control flow: If, Loop, Scan and SequenceMap bodies. */
#include <stdio.h>
#include <string.h>

#include "ir/infer_b_internal.h"

/* Infers a subgraph whose input types are set; errors say which body of which node failed. */
static KnStatus infer_body(const KnNode *n, KnGraph *g, const char *attr, KnError *err) {
  KnStatus st = ir_infer_graph(g, err);
  if (st && n->name && n->name[0])
    kn_error_prefix(err, "in %s of node '%s' (%s): ", attr, n->name, ir_ops[n->op].name);
  else if (st)
    kn_error_prefix(err, "in %s of node #%d (%s): ", attr, n->id, ir_ops[n->op].name);
  return st;
}

static KnStatus check_body_arity(const KnNode *n, const KnGraph *g, const char *attr, int n_in,
                                 int n_out, KnError *err) {
  if (n_in >= 0 && g->n_inputs != n_in)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s has %d inputs, expected %d", attr, g->n_inputs,
                         n_in);
  if (g->n_outputs != n_out)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "%s has %d outputs, expected %d", attr,
                         g->n_outputs, n_out);
  return KN_OK;
}

/* Gives subgraph input i the type t (a type not yet known leaves the declared one). */
static KnStatus set_body_input(const KnNode *n, KnGraph *g, int i, const KnType *t, KnError *err) {
  if (t->kind == KN_TYPE_NONE) return KN_OK;
  KnType copy = ir_type_copy(n->graph->arena, t);
  if ((t->shape.rank > 0 && !copy.shape.dims) || (t->elem && !copy.elem)) return ib_nomem(err);
  g->inputs[i]->type = copy;
  return KN_OK;
}

/* The type of node input i, or "not known" for omitted inputs. */
static const KnType *input_type(const KnNode *n, int i) {
  static const KnType none = {.shape.rank = -1};
  KnValue *v = ir_input(n, i);
  return v ? &v->type : &none;
}

/* then_branch and else_branch produce the outputs; their types are merged. */
KnStatus infer_if(KnNode *node, KnError *err) {
  KnGraph *br[2];
  const char *names[2] = {"then_branch", "else_branch"};
  KnStatus st = ir_require_tensor(node, 0, err);
  for (int b = 0; b < 2 && !st; b++) {
    if ((st = ib_graph_attr(node, names[b], &br[b], err))) return st;
    if ((st = check_body_arity(node, br[b], names[b], -1, node->n_outputs, err))) return st;
    st = infer_body(node, br[b], names[b], err);
  }
  for (int i = 0; i < node->n_outputs && !st; i++) {
    KnType u;
    char what[64];
    snprintf(what, sizeof what, "output %d of then_branch and else_branch", i);
    st = ib_union_type(node, &br[0]->outputs[i]->type, &br[1]->outputs[i]->type, &u, what, err);
    if (!st) st = ir_set_output_type(node, i, &u, err);
  }
  return st;
}

/* Widens a type to "any shape" (rank unknown), keeping kinds and dtypes. */
static void loosen(KnType *t) {
  t->shape = (KnShape){-1, NULL};
  if (t->elem) loosen(t->elem);
}

/* Body inputs: iteration number i64[], condition bool[] (unless the body declares them), and
 * the carried values' current types. */
static KnStatus loop_set_inputs(const KnNode *n, KnGraph *body, const KnType *carried, int nc,
                                KnError *err) {
  static const KnType scalar_i64 = {.kind = KN_TYPE_TENSOR, .dtype = KN_I64};
  static const KnType scalar_bool = {.kind = KN_TYPE_TENSOR, .dtype = KN_BOOL};
  KnStatus st = KN_OK;
  if (body->inputs[0]->type.kind == KN_TYPE_NONE || body->inputs[0]->type.dtype == KN_UNDEF)
    st = set_body_input(n, body, 0, &scalar_i64, err);
  if (!st && (body->inputs[1]->type.kind == KN_TYPE_NONE || body->inputs[1]->type.dtype == KN_UNDEF))
    st = set_body_input(n, body, 1, &scalar_bool, err);
  for (int i = 0; i < nc && !st; i++) st = set_body_input(n, body, 2 + i, &carried[i], err);
  return st;
}

/* Since opset 16 an optional carried value may come back from the body as the value itself;
 * the body keeps its optional input type and the loop's output takes the body's type. */
static bool optional_unwrapped(const KnType *carried, const KnType *out) {
  return carried->kind != out->kind &&
         (carried->kind == KN_TYPE_OPTIONAL || out->kind == KN_TYPE_OPTIONAL) &&
         carried->kind != KN_TYPE_NONE && out->kind != KN_TYPE_NONE;
}

/* Infers the body until the carried types stop changing: a carried value's type is the union of
 * its initial type and what the body makes of it. */
static KnStatus loop_fixpoint(const KnNode *n, KnGraph *body, KnType *carried, int nc, KnError *err) {
  for (int pass = 0;; pass++) {
    if (pass) ib_forget_graph(body);
    KnStatus st = loop_set_inputs(n, body, carried, nc, err);
    if (!st) st = infer_body(n, body, "body", err);
    if (st) return st;
    bool changed = false;
    for (int i = 0; i < nc; i++) {
      KnType u;
      const KnType *out = &body->outputs[1 + i]->type;
      if (optional_unwrapped(&carried[i], out)) continue;
      if ((st = ib_union_type(n, &carried[i], out, &u, "loop-carried value and body output", err)))
        return st;
      if (ir_type_equal(&u, &carried[i])) continue;
      if (pass >= 3) loosen(&u);
      carried[i] = u;
      changed = true;
    }
    if (!changed || pass >= 4) return KN_OK;
  }
}

/* Scan outputs of Loop get a leading dim: the trip count when M is known and there is no
 * condition input, else unknown. */
static KnStatus loop_scan_output(KnNode *n, int o, const KnType *t, KnError *err) {
  if (t->kind != KN_TYPE_TENSOR)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scan output %d of the body is not a tensor", o);
  if (t->shape.rank < 0) return ir_set_output(n, o, t->dtype, -1, NULL, err);
  KnDim *dims = ib_dims(n, t->shape.rank + 1);
  if (!dims) return ib_nomem(err);
  int64_t m;
  if (!ir_input(n, 1) && ir_input(n, 0) && ir_input_ints(n, 0, &m, 1) == 1 && m >= 0) dims[0] = IR_DIM(m);
  for (int d = 0; d < t->shape.rank; d++) dims[d + 1] = t->shape.dims[d];
  return ir_set_output(n, o, t->dtype, t->shape.rank + 1, dims, err);
}

/* Loop(M, cond, v_initial...) -> (v_final..., scan_outputs...). */
KnStatus infer_loop(KnNode *node, KnError *err) {
  KnGraph *body;
  KnStatus st = ib_graph_attr(node, "body", &body, err);
  if (st) return st;
  int nc = node->n_inputs - 2, nk = node->n_outputs - nc;
  if (nk < 0)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "has %d outputs, expected at least %d (carried)",
                         node->n_outputs, nc);
  if ((st = check_body_arity(node, body, "body", nc + 2, 1 + nc + nk, err))) return st;
  KnType *carried = ir_arena_calloc(node->graph->arena, (size_t)nc + 1, sizeof *carried);
  if (!carried) return ib_nomem(err);
  for (int i = 0; i < nc; i++) {
    carried[i] = *input_type(node, 2 + i);
    if (carried[i].kind == KN_TYPE_NONE) carried[i] = body->inputs[2 + i]->type;
  }
  if ((st = loop_fixpoint(node, body, carried, nc, err))) return st;
  for (int i = 0; i < nc && !st; i++) {
    const KnType *out = &body->outputs[1 + i]->type;
    st = ir_set_output_type(node, i, optional_unwrapped(&carried[i], out) ? out : &carried[i], err);
  }
  for (int k = 0; k < nk && !st; k++)
    st = loop_scan_output(node, nc + k, &body->outputs[1 + nc + k]->type, err);
  return st;
}

/* t with dims [from, from+count) removed (count 1 or 2); unknown rank stays unknown. */
static KnStatus drop_dims(const KnNode *n, const KnType *t, int from, int count, KnType *out,
                          KnError *err) {
  *out = *t;
  if (t->shape.rank < 0) return KN_OK;
  if (from < 0 || t->shape.rank < from + count)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "a scanned input has rank %d, too small",
                         t->shape.rank);
  KnDim *dims = ib_dims(n, t->shape.rank - count);
  if (!dims) return ib_nomem(err);
  for (int d = 0, r = 0; d < t->shape.rank; d++)
    if (d < from || d >= from + count) dims[r++] = t->shape.dims[d];
  out->shape = (KnShape){t->shape.rank - count, dims};
  return KN_OK;
}

/* t with the dims ins[0..count) inserted before position at. */
static KnStatus insert_dims(KnNode *n, int o, const KnType *t, int at, const KnDim *ins, int count,
                            KnError *err) {
  if (t->kind != KN_TYPE_TENSOR)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scan output %d of the body is not a tensor", o);
  if (t->shape.rank < 0) return ir_set_output(n, o, t->dtype, -1, NULL, err);
  int r = t->shape.rank + count;
  if (at < 0 || at > t->shape.rank)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scan_output_axes entry %d is out of range", at);
  KnDim *dims = ib_dims(n, r);
  if (!dims) return ib_nomem(err);
  for (int d = 0, s = 0; d < r; d++)
    dims[d] = d >= at && d < at + count ? ins[d - at] : t->shape.dims[s++];
  return ir_set_output(n, o, t->dtype, r, dims, err);
}

/* The layout of one Scan version: where states and scanned inputs start, and the batch dim. */
typedef struct ScanLayout {
  int first_state, n_state, n_scan, n_out; /* n_out: scan outputs */
  bool batched;                            /* opset 8: every tensor has a leading batch dim */
  KnDim seq, batch;
} ScanLayout;

static KnStatus scan_layout(const KnNode *n, const KnGraph *body, ScanLayout *l, KnError *err) {
  int64_t m = ir_attr_int(n, "num_scan_inputs", -1);
  l->batched = n->opset < 9;
  l->first_state = l->batched ? 1 : 0;
  if (m < 1 || m > n->n_inputs - l->first_state)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "num_scan_inputs = %lld, expected 1 to %d",
                         (long long)m, n->n_inputs - l->first_state);
  l->n_scan = (int)m;
  l->n_state = n->n_inputs - l->first_state - l->n_scan;
  l->n_out = n->n_outputs - l->n_state;
  if (l->n_out < 0)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "has %d outputs, expected at least %d (states)",
                         n->n_outputs, l->n_state);
  l->seq = l->batch = IR_DIM_UNKNOWN;
  return check_body_arity(n, body, "body", l->n_state + l->n_scan, l->n_state + l->n_out, err);
}

/* Keeps the best known value of a dim that several inputs share. */
static void note_dim(KnDim *slot, KnDim d) {
  *slot = ib_better_dim(*slot, d);
}

/* Sets the body's state and scan-element input types. */
static KnStatus scan_set_inputs(const KnNode *n, KnGraph *body, ScanLayout *l, KnError *err) {
  int64_t cnt;
  const int64_t *axes = ir_attr_ints(n, "scan_input_axes", &cnt);
  if (axes && cnt != l->n_scan)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scan_input_axes has %lld entries, expected %d",
                         (long long)cnt, l->n_scan);
  KnStatus st = KN_OK;
  for (int i = 0; i < l->n_state + l->n_scan && !st; i++) {
    const KnType *t = input_type(n, l->first_state + i);
    KnType slice;
    bool scanned = i >= l->n_state;
    int axis = 0, r = t->shape.rank;
    if (scanned && t->kind != KN_TYPE_TENSOR)
      return ir_infer_fail(err, n, KN_ERR_INVALID, "scanned input %d is not a tensor", i);
    if (scanned && !l->batched && r >= 0 &&
        (st = ir_norm_axis(n, axes ? axes[i - l->n_state] : 0, r, &axis, err)))
      return st;
    if (l->batched && t->kind == KN_TYPE_TENSOR && r > 0) note_dim(&l->batch, t->shape.dims[0]);
    if (scanned && r > axis + (l->batched ? 1 : 0)) note_dim(&l->seq, t->shape.dims[axis + l->batched]);
    if (t->kind == KN_TYPE_NONE) continue;
    if (l->batched && (scanned || t->kind == KN_TYPE_TENSOR))
      st = drop_dims(n, t, 0, scanned ? 2 : 1, &slice, err);
    else if (scanned) st = drop_dims(n, t, axis, 1, &slice, err);
    else slice = *t;
    if (!st) st = set_body_input(n, body, i, &slice, err);
  }
  return st;
}

/* Final states (with the batch dim again in opset 8) and scan outputs with the sequence dim. */
static KnStatus scan_set_outputs(KnNode *n, const KnGraph *body, const ScanLayout *l, KnError *err) {
  int64_t cnt;
  const int64_t *axes = ir_attr_ints(n, "scan_output_axes", &cnt);
  if (axes && cnt != l->n_out)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "scan_output_axes has %lld entries, expected %d",
                         (long long)cnt, l->n_out);
  KnStatus st = KN_OK;
  KnDim bs[2] = {l->batch, l->seq};
  for (int i = 0; i < l->n_state && !st; i++) {
    const KnType *t = &body->outputs[i]->type;
    if (l->batched && t->kind == KN_TYPE_TENSOR) st = insert_dims(n, i, t, 0, bs, 1, err);
    else st = ir_set_output_type(n, i, t, err);
  }
  for (int k = 0; k < l->n_out && !st; k++) {
    const KnType *t = &body->outputs[l->n_state + k]->type;
    int at = 0;
    if (axes && t->shape.rank >= 0 &&
        (st = ir_norm_axis(n, axes[k], t->shape.rank + 1, &at, err)))
      return st;
    if (l->batched) st = insert_dims(n, l->n_state + k, t, 0, bs, 2, err);
    else st = insert_dims(n, l->n_state + k, t, at, &l->seq, 1, err);
  }
  return st;
}

/* Scan: opset 8 (sequence_lens input, batch dim) and opset 9+ (axes and directions attrs). */
KnStatus infer_scan(KnNode *node, KnError *err) {
  KnGraph *body;
  ScanLayout l;
  KnStatus st = ib_graph_attr(node, "body", &body, err);
  if (!st) st = scan_layout(node, body, &l, err);
  if (!st) st = scan_set_inputs(node, body, &l, err);
  if (!st) st = infer_body(node, body, "body", err);
  return st ? st : scan_set_outputs(node, body, &l, err);
}

/* Applies the body to each element: sequence inputs pass their element type, tensors pass
 * through; every output is a sequence of the body's output type. */
KnStatus infer_sequence_map(KnNode *node, KnError *err) {
  KnGraph *body;
  KnStatus st = ib_graph_attr(node, "body", &body, err);
  if (!st) st = check_body_arity(node, body, "body", node->n_inputs, node->n_outputs, err);
  if (!st && input_type(node, 0)->kind != KN_TYPE_SEQUENCE)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 is not a sequence");
  for (int i = 0; i < node->n_inputs && !st; i++) {
    const KnType *t = input_type(node, i);
    if (t->kind == KN_TYPE_SEQUENCE && t->elem) st = set_body_input(node, body, i, t->elem, err);
    else if (t->kind != KN_TYPE_SEQUENCE) st = set_body_input(node, body, i, t, err);
  }
  if (!st) st = infer_body(node, body, "body", err);
  for (int o = 0; o < node->n_outputs && !st; o++) {
    KnType seq = {.kind = KN_TYPE_SEQUENCE, .shape.rank = -1, .elem = &body->outputs[o]->type};
    st = ir_set_output_type(node, o, &seq, err);
  }
  return st;
}
