/* cg_control.c - If, Loop and Scan as runtime kernels between stages: each subgraph becomes a
 * model of its own (its formal inputs, then the outer values it captures) run by a runner that
 * compiles it once per distinct input shapes, so a loop whose carried shapes stay the same
 * compiles its body once. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_stage.h"

typedef struct CtlState {
  KnRunner *bodies[2]; /* If: then, else; Loop and Scan: the body */
} CtlState;

void cg_control_free_state(void *state) {
  CtlState *s = state;
  kn_runner_free(s->bodies[0]);
  kn_runner_free(s->bodies[1]);
  free(s);
}

static KnStatus body_runner(const KnNode *n, CgDynEnv *env, int which, const char *attr,
                            KnRunner **out, KnError *err) {
  CtlState *s = *env->state;
  if (!s && !(s = *env->state = calloc(1, sizeof *s))) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  if (!s->bodies[which]) {
    const KnAttr *g = ir_attr(n, attr);
    if (!g || g->kind != KN_ATTR_GRAPH) return kn_fail(err, KN_ERR_INVALID, "%s: no graph attribute '%s'", ir_ops[n->op].name, attr);
    KnModel *m = ir_model_from_subgraph(n->graph->model, g->g, err);
    if (!m) return err->status;
    KnStatus st = kn_runner_new(m, env->opt, &s->bodies[which], err);
    if (st != KN_OK) {
      ir_model_free(m);
      return st;
    }
  }
  *out = s->bodies[which];
  return KN_OK;
}

/* Runs body r on formals (its first inputs) and the captured outer values; outputs in a. */
static KnStatus run_body(KnRunner *r, KnTensor *const *formals, int n_formals, CgDynEnv *env, KnArena *a,
                         KnTensor **outs, KnError *err) {
  const KnGraph *g = kn_runner_model(r)->graph;
  KnTensor *in[g->n_inputs + 1];
  for (int i = 0; i < g->n_inputs; i++) {
    in[i] = i < n_formals ? formals[i] : env->find(env->map, g->inputs[i]->name);
    if (!in[i]) return kn_fail(err, KN_ERR_INTERNAL, "subgraph input %s is not available", g->inputs[i]->name);
  }
  return kn_runner_run(r, env->ctx, in, a, outs, err);
}

static KnTensor *scalar(KnArena *a, KnDtype t, int64_t v, KnError *err) {
  KnTensor *s = ir_tensor_new(a, t, 0, NULL, err);
  if (!s) return NULL;
  if (t == KN_BOOL) *(uint8_t *)s->data = v != 0;
  else *(int64_t *)s->data = v;
  return s;
}

/* Slice `index` of t along axis, with that axis removed. */
static KnTensor *take_slice(KnArena *a, const KnTensor *t, int axis, int64_t index, KnError *err) {
  int64_t dims[t->rank + 1], outer = 1, inner = 1;
  dims[0] = 0; /* rank 1 -> a scalar slice: no dims read */
  int r = 0;
  for (int d = 0; d < t->rank; d++) {
    if (d != axis) dims[r++] = t->dims[d];
    if (d < axis) outer *= t->dims[d];
    if (d > axis) inner *= t->dims[d];
  }
  KnTensor *s = ir_tensor_new(a, t->dtype, r, dims, err);
  if (!s) return NULL;
  size_t row = (size_t)inner * (size_t)ir_dtype_bits(t->dtype) / 8;
  for (int64_t o = 0; o < outer; o++)
    memcpy((char *)s->data + o * row, (const char *)t->data + (o * t->dims[axis] + index) * row, row);
  return s;
}

/* Stacks count equal-shaped tensors along a new axis; with none, like's type gives the shape. */
static KnTensor *stack(KnArena *a, KnTensor *const *parts, int64_t count, int axis, const KnValue *like,
                       bool reverse, KnError *err) {
  int rank = count ? parts[0]->rank : (like->type.shape.rank > 0 ? like->type.shape.rank - 1 : 0);
  int64_t dims[rank + 2], outer = 1, inner = 1;
  for (int d = 0, s = 0; d <= rank; d++) {
    if (d == axis) { dims[d] = count; continue; }
    dims[d] = count ? parts[0]->dims[s] : 0;
    if (d < axis) outer *= dims[d];
    else inner *= dims[d];
    s++;
  }
  KnDtype t = count ? parts[0]->dtype : like->type.dtype;
  KnTensor *out = ir_tensor_new(a, t, rank + 1, dims, err);
  if (!out) return NULL;
  size_t row = (size_t)inner * (size_t)ir_dtype_bits(t) / 8;
  for (int64_t i = 0; i < count; i++) {
    if (parts[i]->numel * (int64_t)ir_dtype_bits(t) / 8 != (int64_t)(row * (size_t)outer))
      return kn_fail(err, KN_ERR_INVALID, "scan output %s changes shape between iterations", like->name), NULL;
    int64_t at = reverse ? count - 1 - i : i;
    for (int64_t o = 0; o < outer; o++)
      memcpy((char *)out->data + (o * count + at) * row, (const char *)parts[i]->data + o * row, row);
  }
  return out;
}

/* ---- If ---- */
KnStatus cg_run_if(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                   KnError *err) {
  if (!in[0] || in[0]->numel != 1) return kn_fail(err, KN_ERR_INVALID, "If: cond must hold one element");
  bool cond = ir_tensor_get_int(in[0], 0) != 0;
  KnRunner *r;
  KnStatus st = body_runner(n, env, cond ? 0 : 1, cond ? "then_branch" : "else_branch", &r, err);
  if (st != KN_OK) return st;
  if (kn_runner_model(r)->graph->n_outputs != n->n_outputs)
    return kn_fail(err, KN_ERR_INVALID, "If: the branch has %d outputs, the node %d", kn_runner_model(r)->graph->n_outputs,
                   n->n_outputs);
  KnTensor *outs[n->n_outputs + 1];
  if ((st = run_body(r, NULL, 0, env, a, outs, err)) != KN_OK) return st;
  for (int i = 0; i < n->n_outputs; i++) out[i] = outs[i];
  return KN_OK;
}

/* ---- Loop ---- */
typedef struct ScanParts {
  KnTensor **items;
  int64_t n, cap;
} ScanParts;

static bool parts_push(KnArena *a, ScanParts *p, KnTensor *t) {
  if (p->n == p->cap) {
    int64_t cap = p->cap ? p->cap * 2 : 16;
    KnTensor **items = ir_arena_calloc(a, (size_t)cap, sizeof *items);
    if (!items) return false;
    if (p->n) memcpy(items, p->items, (size_t)p->n * sizeof *items);
    p->items = items, p->cap = cap;
  }
  p->items[p->n++] = t;
  return true;
}

KnStatus cg_run_loop(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                     KnError *err) {
  int64_t max_trips = in[0] ? ir_tensor_get_int(in[0], 0) : INT64_MAX;
  bool cond = in[1] ? ir_tensor_get_int(in[1], 0) != 0 : true;
  int n_carried = n->n_inputs - 2, n_scan = n->n_outputs - n_carried;
  KnRunner *r;
  KnStatus st = body_runner(n, env, 0, "body", &r, err);
  if (st != KN_OK) return st;
  if (kn_runner_model(r)->graph->n_outputs != 1 + n_carried + n_scan)
    return kn_fail(err, KN_ERR_INVALID, "Loop: the body has %d outputs, expected %d", kn_runner_model(r)->graph->n_outputs,
                   1 + n_carried + n_scan);
  KnTensor *formals[n_carried + 3], *outs[1 + n_carried + n_scan + 1];
  ScanParts parts[n_scan + 1];
  memset(parts, 0, sizeof parts);
  for (int j = 0; j < n_carried; j++) formals[2 + j] = in[2 + j];
  for (int64_t i = 0; i < max_trips && cond; i++) {
    if (!(formals[0] = scalar(a, KN_I64, i, err)) || !(formals[1] = scalar(a, KN_BOOL, cond, err))) return err->status;
    if ((st = run_body(r, formals, 2 + n_carried, env, a, outs, err)) != KN_OK) return st;
    cond = ir_tensor_get_int(outs[0], 0) != 0;
    for (int j = 0; j < n_carried; j++) formals[2 + j] = outs[1 + j];
    for (int k = 0; k < n_scan; k++)
      if (!parts_push(a, &parts[k], outs[1 + n_carried + k])) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  for (int j = 0; j < n_carried; j++) out[j] = formals[2 + j];
  for (int k = 0; k < n_scan; k++)
    if (n->outputs[n_carried + k] &&
        !(out[n_carried + k] = stack(a, parts[k].items, parts[k].n, 0, n->outputs[n_carried + k], false, err)))
      return err->status;
  return KN_OK;
}

/* ---- Scan (opset 9+: no batch axis; opset 8: axis 0 of everything is a batch) ---- */
typedef struct ScanSpec {
  int n_state, n_scan_in, n_scan_out;
  int64_t in_axes[64], in_rev[64], out_axes[64], out_rev[64];
} ScanSpec;

static KnStatus scan_spec(const KnNode *n, int first_input, ScanSpec *s, KnError *err) {
  s->n_scan_in = (int)ir_attr_int(n, "num_scan_inputs", 0);
  s->n_state = n->n_inputs - first_input - s->n_scan_in;
  s->n_scan_out = n->n_outputs - s->n_state;
  if (s->n_scan_in < 1 || s->n_state < 0 || s->n_scan_out < 0 || s->n_scan_in > 64 || s->n_scan_out > 64)
    return kn_fail(err, KN_ERR_INVALID, "Scan: bad num_scan_inputs");
  int64_t c;
  const int64_t *v;
  for (int i = 0; i < 64; i++) s->in_axes[i] = s->in_rev[i] = s->out_axes[i] = s->out_rev[i] = 0;
  if ((v = ir_attr_ints(n, "scan_input_axes", &c))) memcpy(s->in_axes, v, (size_t)(c < 64 ? c : 64) * 8);
  if ((v = ir_attr_ints(n, "scan_input_directions", &c)) || (v = ir_attr_ints(n, "directions", &c)))
    memcpy(s->in_rev, v, (size_t)(c < 64 ? c : 64) * 8);
  if ((v = ir_attr_ints(n, "scan_output_axes", &c))) memcpy(s->out_axes, v, (size_t)(c < 64 ? c : 64) * 8);
  if ((v = ir_attr_ints(n, "scan_output_directions", &c))) memcpy(s->out_rev, v, (size_t)(c < 64 ? c : 64) * 8);
  return KN_OK;
}

/* One scan over states and scan inputs (no batch axis); fills states (in place) and outputs. */
static KnStatus scan_once(const KnNode *n, const ScanSpec *s, KnRunner *r, KnTensor **states, KnTensor *const *scans,
                          KnArena *a, CgDynEnv *env, KnTensor **scan_out, KnError *err) {
  int64_t len = scans[0]->rank > s->in_axes[0] ? scans[0]->dims[s->in_axes[0] < 0 ? s->in_axes[0] + scans[0]->rank : s->in_axes[0]] : 0;
  KnTensor *formals[s->n_state + s->n_scan_in + 1], *outs[s->n_state + s->n_scan_out + 1];
  ScanParts parts[s->n_scan_out + 1];
  memset(parts, 0, sizeof parts);
  for (int64_t t = 0; t < len; t++) {
    for (int j = 0; j < s->n_state; j++) formals[j] = states[j];
    for (int k = 0; k < s->n_scan_in; k++) {
      int axis = (int)(s->in_axes[k] < 0 ? s->in_axes[k] + scans[k]->rank : s->in_axes[k]);
      if (axis < 0 || axis >= scans[k]->rank || scans[k]->dims[axis] != len)
        return kn_fail(err, KN_ERR_INVALID, "Scan: scan inputs differ in length");
      int64_t at = s->in_rev[k] ? len - 1 - t : t;
      if (!(formals[s->n_state + k] = take_slice(a, scans[k], axis, at, err))) return err->status;
    }
    KnStatus st = run_body(r, formals, s->n_state + s->n_scan_in, env, a, outs, err);
    if (st != KN_OK) return st;
    for (int j = 0; j < s->n_state; j++) states[j] = outs[j];
    for (int k = 0; k < s->n_scan_out; k++)
      if (!parts_push(a, &parts[k], outs[s->n_state + k])) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  for (int k = 0; k < s->n_scan_out; k++) {
    const KnValue *like = n->outputs[s->n_state + k];
    int rank = parts[k].n ? parts[k].items[0]->rank + 1 : (like->type.shape.rank > 0 ? like->type.shape.rank : 1);
    int axis = (int)(s->out_axes[k] < 0 ? s->out_axes[k] + rank : s->out_axes[k]);
    if (!(scan_out[k] = stack(a, parts[k].items, parts[k].n, axis, like, s->out_rev[k] != 0, err))) return err->status;
  }
  return KN_OK;
}

KnStatus cg_run_scan(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                     KnError *err) {
  bool batched = n->opset < 9; /* opset 8: input 0 is sequence_lens, axis 0 a batch */
  ScanSpec s;
  KnStatus st = scan_spec(n, batched ? 1 : 0, &s, err);
  KnRunner *r;
  if (st == KN_OK) st = body_runner(n, env, 0, "body", &r, err);
  if (st != KN_OK) return st;
  int first = batched ? 1 : 0;
  KnTensor *states[s.n_state + 1], *scans[s.n_scan_in + 1], *scan_out[s.n_scan_out + 1];
  if (!batched) {
    for (int j = 0; j < s.n_state; j++) states[j] = in[j];
    for (int k = 0; k < s.n_scan_in; k++) scans[k] = in[s.n_state + k];
    if ((st = scan_once(n, &s, r, states, scans, a, env, scan_out, err)) != KN_OK) return st;
    for (int j = 0; j < s.n_state; j++) out[j] = states[j];
    for (int k = 0; k < s.n_scan_out; k++) out[s.n_state + k] = scan_out[k];
    return KN_OK;
  }
  if (in[0]) return kn_fail(err, KN_ERR_UNSUPPORTED, "Scan (opset 8): sequence_lens is not supported");
  int64_t batch = in[first]->rank ? in[first]->dims[0] : 0;
  KnTensor **per[s.n_state + s.n_scan_out + 1];
  for (int i = 0; i < s.n_state + s.n_scan_out; i++)
    if (!(per[i] = ir_arena_calloc(a, (size_t)batch + 1, sizeof **per))) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int64_t b = 0; b < batch; b++) {
    for (int j = 0; j < s.n_state; j++)
      if (!(states[j] = take_slice(a, in[first + j], 0, b, err))) return err->status;
    for (int k = 0; k < s.n_scan_in; k++)
      if (!(scans[k] = take_slice(a, in[first + s.n_state + k], 0, b, err))) return err->status;
    if ((st = scan_once(n, &s, r, states, scans, a, env, scan_out, err)) != KN_OK) return st;
    for (int j = 0; j < s.n_state; j++) per[j][b] = states[j];
    for (int k = 0; k < s.n_scan_out; k++) per[s.n_state + k][b] = scan_out[k];
  }
  for (int i = 0; i < s.n_state + s.n_scan_out; i++)
    if (!(out[i] = stack(a, per[i], batch, 0, n->outputs[i], false, err))) return err->status;
  return KN_OK;
}

/* ---- SequenceMap: the body once per element; sequence inputs give element i, tensors whole ---- */
KnStatus cg_run_sequence_map(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                             KnError *err) {
  if (!in[0] || !in[0]->list) return kn_fail(err, KN_ERR_INVALID, "SequenceMap: input 0 must be a sequence");
  int len = in[0]->list->n_tensors;
  for (int j = 1; j < n->n_inputs; j++)
    if (in[j] && in[j]->list && in[j]->list->n_tensors != len)
      return kn_fail(err, KN_ERR_INVALID, "SequenceMap: sequence inputs differ in length");
  KnRunner *r;
  KnStatus st = body_runner(n, env, 0, "body", &r, err);
  if (st != KN_OK) return st;
  int n_out = n->n_outputs;
  ScanParts parts[n_out + 1];
  memset(parts, 0, sizeof parts);
  KnTensor *formals[n->n_inputs + 1], *outs[n_out + 1];
  for (int i = 0; i < len; i++) {
    for (int j = 0; j < n->n_inputs; j++) formals[j] = in[j] && in[j]->list ? in[j]->list->tensors[i] : in[j];
    if ((st = run_body(r, formals, n->n_inputs, env, a, outs, err)) != KN_OK) return st;
    for (int k = 0; k < n_out; k++)
      if (!parts_push(a, &parts[k], outs[k])) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  for (int k = 0; k < n_out; k++) {
    KnTensorList *l = ir_arena_alloc(a, sizeof *l);
    if (!l) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
    const KnType *t = &n->outputs[k]->type;
    *l = (KnTensorList){.kind = KN_TYPE_SEQUENCE, .elem = KN_TYPE_TENSOR, .dtype = t->elem ? t->elem->dtype : KN_UNDEF,
                        .tensors = parts[k].items, .n_tensors = (int)parts[k].n};
    if (!(out[k] = ir_tensor_box(a, l, err))) return err->status;
  }
  return KN_OK;
}
