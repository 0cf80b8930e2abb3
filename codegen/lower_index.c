/* lower_index.c - lowerings driven by index tensors read at run time: Gather, GatherElements,
 * GatherND, Scatter/ScatterElements, ScatterND, OneHot, plus Trilu and CumSum (whose k and axis
 * are inputs too). Negative indices count from the end; out-of-range ones fail the run. */
#include <string.h>

#include "codegen/lower_data.h"

/* ---- Gather ------------------------------------------------------------------------------- */
/* data viewed as [outer, A, inner]; output [outer, I, inner] with I = the number of indices. */
typedef struct GatherArgs {
  int64_t A, inner, I;
  int esize;
} GatherArgs;

static void gather_row(CgKernel *k, LLVMValueRef i, void *user) {
  const GatherArgs *g = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef o = LLVMBuildUDiv(b, i, cg_i64(k, g->I), ""), j = LLVMBuildURem(b, i, cg_i64(k, g->I), "");
  LLVMValueRef idx = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), j);
  idx = dm_wrap_index(k, idx, cg_i64(k, g->A), "index out of range");
  LLVMValueRef src = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, o, cg_i64(k, g->A), ""), idx, ""), cg_i64(k, g->inner), "");
  LLVMValueRef dst = LLVMBuildMul(b, i, cg_i64(k, g->inner), "");
  if (g->inner == 1) dm_copy_elem(k, k->out[0], dst, k->in[0], src, g->esize);
  else cg_memcpy(k, dm_ptr(k, k->out[0], g->esize, dst), dm_ptr(k, k->in[0], g->esize, src), cg_i64(k, g->inner * g->esize));
}

static KnStatus require_index_dtype(CgKernel *k, int i) {
  KnDtype t = cg_in_dtype(k, i);
  return ir_dtype_is_int(t) && dm_elem_bytes(t) ? KN_OK : cg_unsupported(k, "index dtype");
}

KnStatus cg_lower_gather(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st == KN_OK) st = require_index_dtype(k, 1);
  if (st != KN_OK) return st;
  int64_t axis = ir_attr_int(k->node, "axis", 0);
  if (axis < 0) axis += s->rank;
  if (axis < 0 || axis >= s->rank) return cg_unsupported(k, "axis out of range");
  GatherArgs g = {s->dims[axis].value, 1, cg_numel(cg_in_shape(k, 1)), dm_elem_bytes(t)};
  int64_t outer = 1;
  for (int d = 0; d < axis; d++) outer *= s->dims[d].value;
  for (int d = (int)axis + 1; d < s->rank; d++) g.inner *= s->dims[d].value;
  if (g.inner == 0) return KN_OK;
  dm_loop(k, outer * g.I, g.inner, gather_row, &g);
  return KN_OK;
}

/* ---- GatherElements, Scatter, ScatterElements --------------------------------------------- */
enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

typedef struct ElemArgs {
  int rank, axis, esize, reduction;
  KnDtype t;
  int64_t idx_str[DM_MAX_RANK], data_str[DM_MAX_RANK], axis_dim;
} ElemArgs;

/* The data offset of the element an index at coordinate co points to. */
static LLVMValueRef elem_target(CgKernel *k, const ElemArgs *e, LLVMValueRef *co, LLVMValueRef *flat) {
  *flat = dm_offset(k, co, e->idx_str, e->rank);
  LLVMValueRef idx = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), *flat);
  idx = dm_wrap_index(k, idx, cg_i64(k, e->axis_dim), "index out of range");
  LLVMValueRef off = LLVMBuildMul(k->b, idx, cg_i64(k, e->data_str[e->axis]), "");
  for (int d = 0; d < e->rank; d++)
    if (d != e->axis) off = LLVMBuildAdd(k->b, off, LLVMBuildMul(k->b, co[d], cg_i64(k, e->data_str[d]), ""), "");
  return off;
}

static void gather_elem(CgKernel *k, LLVMValueRef *co, void *user) {
  LLVMValueRef flat, src = elem_target(k, user, co, &flat);
  dm_copy_elem(k, k->out[0], flat, k->in[0], src, ((const ElemArgs *)user)->esize);
}

/* out[dst] (op)= updates[src] for a scatter reduction. */
static void scatter_one(CgKernel *k, int reduction, KnDtype t, int esize, LLVMValueRef dst, LLVMValueRef src) {
  if (reduction == RED_NONE) {
    dm_copy_elem(k, k->out[0], dst, k->in[2], src, esize);
    return;
  }
  LLVMValueRef a = cg_load(k, k->out[0], t, dst), u = cg_load(k, k->in[2], t, src), r;
  switch (reduction) {
  case RED_ADD: r = cg_add(k, t, a, u); break;
  case RED_MUL: r = cg_mul(k, t, a, u); break;
  case RED_MAX: r = cg_max(k, t, a, u); break;
  default: r = cg_min(k, t, a, u); break;
  }
  cg_store(k, k->out[0], t, dst, r);
}

static void scatter_elem(CgKernel *k, LLVMValueRef *co, void *user) {
  const ElemArgs *e = user;
  LLVMValueRef flat, dst = elem_target(k, e, co, &flat);
  scatter_one(k, e->reduction, e->t, e->esize, dst, flat);
}

static KnStatus elem_args(CgKernel *k, ElemArgs *e) {
  const KnShape *s = cg_in_shape(k, 0), *is = cg_in_shape(k, 1);
  e->t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, e->t);
  if (st == KN_OK) st = require_index_dtype(k, 1);
  if (st != KN_OK) return st;
  int64_t axis = ir_attr_int(k->node, "axis", 0);
  if (axis < 0) axis += s->rank;
  if (axis < 0 || axis >= s->rank || is->rank != s->rank || s->rank > DM_MAX_RANK)
    return cg_unsupported(k, "axis out of range or indices of another rank");
  int64_t dims[DM_MAX_RANK];
  e->rank = s->rank, e->axis = (int)axis, e->esize = dm_elem_bytes(e->t);
  e->axis_dim = s->dims[axis].value;
  dm_dims(s, dims);
  dm_strides(dims, s->rank, e->data_str);
  dm_dims(is, dims);
  dm_strides(dims, s->rank, e->idx_str);
  for (int d = 0; d < s->rank; d++)
    if (d != axis && is->dims[d].value > s->dims[d].value) return cg_unsupported(k, "indices larger than data");
  return KN_OK;
}

KnStatus cg_lower_gather_elements(CgKernel *k) {
  ElemArgs e = {0};
  KnStatus st = elem_args(k, &e);
  if (st != KN_OK) return st;
  int64_t dims[DM_MAX_RANK];
  dm_dims(cg_in_shape(k, 1), dims);
  dm_for_each(k, dims, e.rank, true, gather_elem, &e);
  return KN_OK;
}

static int reduction_of(CgKernel *k, KnDtype t) {
  const char *r = ir_attr_string(k->node, "reduction", "none");
  int red = strcmp(r, "none") == 0 ? RED_NONE : strcmp(r, "add") == 0 ? RED_ADD : strcmp(r, "mul") == 0 ? RED_MUL
          : strcmp(r, "max") == 0 ? RED_MAX : strcmp(r, "min") == 0 ? RED_MIN : -1;
  if (red > RED_NONE && t == KN_BOOL) return -1;
  return red;
}

/* Scatter (opset 9-10) is ScatterElements without reduction. Updates apply in index order, so
 * the loop is serial (duplicates then behave as the reference). */
KnStatus cg_lower_scatter_elements(CgKernel *k) {
  ElemArgs e = {0};
  KnStatus st = elem_args(k, &e);
  if (st != KN_OK) return st;
  if ((e.reduction = reduction_of(k, e.t)) < 0) return cg_unsupported(k, "reduction");
  dm_copy_all(k, 0, 0, cg_numel(cg_in_shape(k, 0)) * e.esize);
  int64_t dims[DM_MAX_RANK];
  dm_dims(cg_in_shape(k, 1), dims);
  dm_for_each(k, dims, e.rank, false, scatter_elem, &e);
  return KN_OK;
}

/* ---- GatherND, ScatterND ------------------------------------------------------------------ */
/* Index tuple i (of m entries) addresses a slice of `inner` elements of data; with batch_dims b
 * the tuples of batch entry i / per_batch index that batch entry's data. */
typedef struct NdArgs {
  int m, b, esize, reduction;
  KnDtype t;
  int64_t per_batch, batch_size, inner;
  int64_t dims[DM_MAX_RANK], str[DM_MAX_RANK];
} NdArgs;

static LLVMValueRef nd_offset(CgKernel *k, const NdArgs *a, LLVMValueRef i) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef batch = LLVMBuildUDiv(b, i, cg_i64(k, a->per_batch), "");
  LLVMValueRef off = LLVMBuildMul(b, batch, cg_i64(k, a->batch_size), "");
  LLVMValueRef first = LLVMBuildMul(b, i, cg_i64(k, a->m), "");
  for (int j = 0; j < a->m; j++) {
    LLVMValueRef idx = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), LLVMBuildAdd(b, first, cg_i64(k, j), ""));
    idx = dm_wrap_index(k, idx, cg_i64(k, a->dims[a->b + j]), "index out of range");
    off = LLVMBuildAdd(b, off, LLVMBuildMul(b, idx, cg_i64(k, a->str[a->b + j]), ""), "");
  }
  return off;
}

static void gather_nd_row(CgKernel *k, LLVMValueRef i, void *user) {
  const NdArgs *a = user;
  LLVMValueRef src = nd_offset(k, a, i), dst = LLVMBuildMul(k->b, i, cg_i64(k, a->inner), "");
  cg_memcpy(k, dm_ptr(k, k->out[0], a->esize, dst), dm_ptr(k, k->in[0], a->esize, src), cg_i64(k, a->inner * a->esize));
}

static void scatter_nd_row(CgKernel *k, LLVMValueRef i, void *user) {
  const NdArgs *a = user;
  LLVMValueRef dst = nd_offset(k, a, i), src = LLVMBuildMul(k->b, i, cg_i64(k, a->inner), "");
  if (a->reduction == RED_NONE) {
    cg_memcpy(k, dm_ptr(k, k->out[0], a->esize, dst), dm_ptr(k, k->in[2], a->esize, src), cg_i64(k, a->inner * a->esize));
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, a->inner));
  scatter_one(k, a->reduction, a->t, a->esize, LLVMBuildAdd(k->b, dst, l.i, ""), LLVMBuildAdd(k->b, src, l.i, ""));
  cg_loop_end(k, &l);
}

/* Fills a from data (input 0) and indices (input 1); *tuples is the number of index tuples. */
static KnStatus nd_args(CgKernel *k, NdArgs *a, int64_t *tuples) {
  const KnShape *s = cg_in_shape(k, 0), *is = cg_in_shape(k, 1);
  a->t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, a->t);
  if (st == KN_OK) st = require_index_dtype(k, 1);
  if (st != KN_OK) return st;
  int64_t b = k->node->op == KN_OP_GatherND ? ir_attr_int(k->node, "batch_dims", 0) : 0;
  if (is->rank < 1 || s->rank > DM_MAX_RANK || b < 0 || b >= is->rank || b > s->rank)
    return cg_unsupported(k, "indices rank or batch_dims");
  a->m = (int)is->dims[is->rank - 1].value, a->b = (int)b, a->esize = dm_elem_bytes(a->t);
  if (a->m + b > s->rank) return cg_unsupported(k, "index tuples longer than the data rank");
  dm_dims(s, a->dims);
  dm_strides(a->dims, s->rank, a->str);
  a->inner = 1, a->batch_size = 1, a->per_batch = 1;
  for (int d = a->b + a->m; d < s->rank; d++) a->inner *= a->dims[d];
  for (int d = a->b; d < s->rank; d++) a->batch_size *= a->dims[d];
  for (int d = a->b; d < is->rank - 1; d++) a->per_batch *= is->dims[d].value;
  *tuples = a->per_batch;
  for (int d = 0; d < a->b; d++) {
    if (is->dims[d].value != a->dims[d]) return cg_unsupported(k, "batch dims of data and indices differ");
    *tuples *= a->dims[d];
  }
  return KN_OK;
}

KnStatus cg_lower_gather_nd(CgKernel *k) {
  NdArgs a = {0};
  int64_t n;
  KnStatus st = nd_args(k, &a, &n);
  if (st != KN_OK) return st;
  if (a.inner == 0 || a.per_batch == 0) return KN_OK;
  dm_loop(k, n, a.inner + a.m, gather_nd_row, &a);
  return KN_OK;
}

KnStatus cg_lower_scatter_nd(CgKernel *k) {
  NdArgs a = {0};
  int64_t n;
  KnStatus st = nd_args(k, &a, &n);
  if (st != KN_OK) return st;
  if ((a.reduction = reduction_of(k, a.t)) < 0) return cg_unsupported(k, "reduction");
  dm_copy_all(k, 0, 0, cg_numel(cg_in_shape(k, 0)) * a.esize);
  if (a.inner == 0 || n == 0) return KN_OK;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n)); /* serial: later updates win */
  scatter_nd_row(k, l.i, &a);
  cg_loop_end(k, &l);
  return KN_OK;
}

/* ---- OneHot ------------------------------------------------------------------------------- */
/* Output viewed as [outer, depth, inner]; index p = o*inner + i sets element (o, idx, i). */
KnStatus cg_lower_one_hot(CgKernel *k) {
  const KnShape *os = cg_out_shape(k, 0);
  KnDtype vt = cg_in_dtype(k, 2), it = cg_in_dtype(k, 0), dt = cg_in_dtype(k, 1);
  KnStatus st = dm_require_dtype(k, vt);
  if (st != KN_OK) return st;
  if (!dm_elem_bytes(it) || it == KN_BOOL || !dm_elem_bytes(dt) || dt == KN_BOOL) return cg_unsupported(k, "index or depth dtype");
  int r = os->rank;
  int64_t axis = ir_attr_int(k->node, "axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return cg_unsupported(k, "axis out of range");
  int64_t depth = os->dims[axis].value, outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= os->dims[d].value;
  for (int d = (int)axis + 1; d < r; d++) inner *= os->dims[d].value;
  LLVMBuilderRef b = k->b;
  LLVMValueRef got = dm_load_i64(k, k->in[1], dt, cg_i64(k, 0));
  cg_fail_if(k, LLVMBuildICmp(b, LLVMIntNE, got, cg_i64(k, depth), ""), KN_ERR_INVALID,
             "depth differs from the one the model was compiled for", got);
  LLVMValueRef off = cg_load(k, k->in[2], vt, cg_i64(k, 0)), on = cg_load(k, k->in[2], vt, cg_i64(k, 1));
  dm_fill(k, k->out[0], vt, off, outer * depth * inner, false);
  if (outer * inner == 0) return KN_OK;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, outer * inner));
  LLVMValueRef o = LLVMBuildUDiv(b, l.i, cg_i64(k, inner), ""), i = LLVMBuildURem(b, l.i, cg_i64(k, inner), "");
  LLVMValueRef idx = dm_load_i64(k, k->in[0], it, l.i);
  idx = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, idx, cg_i64(k, 0), ""), LLVMBuildAdd(b, idx, cg_i64(k, depth), ""), idx, "");
  /* indices outside [-depth, depth) leave their row all off, as the spec says */
  CgIf c = cg_if_begin(k, LLVMBuildICmp(b, LLVMIntULT, idx, cg_i64(k, depth), ""));
  LLVMValueRef at = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, o, cg_i64(k, depth), ""), idx, ""), cg_i64(k, inner), ""), i, "");
  cg_store(k, k->out[0], vt, at, on);
  cg_if_end(k, &c);
  cg_loop_end(k, &l);
  return KN_OK;
}

/* ---- Trilu -------------------------------------------------------------------------------- */
typedef struct TriluArgs {
  int64_t N, M;
  int esize;
  bool upper, has_k;
} TriluArgs;

/* Row r of the [batch*N, M] view keeps column j when j - i >= k (upper) or j - i <= k (lower). */
static void trilu_row(CgKernel *k, LLVMValueRef r, void *user) {
  const TriluArgs *a = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef kk = a->has_k ? dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), cg_i64(k, 0)) : cg_i64(k, 0);
  LLVMValueRef i = LLVMBuildURem(b, r, cg_i64(k, a->N), ""), base = LLVMBuildMul(b, r, cg_i64(k, a->M), "");
  LLVMTypeRef rt = dm_raw_type(k, a->esize);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, a->M));
  LLVMValueRef diff = LLVMBuildSub(b, l.i, i, "");
  LLVMValueRef keep = LLVMBuildICmp(b, a->upper ? LLVMIntSGE : LLVMIntSLE, diff, kk, "");
  LLVMValueRef at = LLVMBuildAdd(b, base, l.i, "");
  LLVMValueRef v = LLVMBuildLoad2(b, rt, dm_ptr(k, k->in[0], a->esize, at), "");
  LLVMBuildStore(b, LLVMBuildSelect(b, keep, v, LLVMConstNull(rt), ""), dm_ptr(k, k->out[0], a->esize, at));
  cg_loop_end(k, &l);
}

KnStatus cg_lower_trilu(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  if (s->rank < 2) return cg_unsupported(k, "input of rank below 2");
  TriluArgs a = {s->dims[s->rank - 2].value, s->dims[s->rank - 1].value, dm_elem_bytes(t),
                 ir_attr_int(k->node, "upper", 1) != 0, k->node->n_inputs > 1 && k->node->inputs[1]};
  if (a.has_k && (st = require_index_dtype(k, 1)) != KN_OK) return st;
  if (a.N == 0 || a.M == 0) return KN_OK;
  dm_loop(k, cg_numel(s) / a.M, a.M, trilu_row, &a);
  return KN_OK;
}

/* ---- CumSum ------------------------------------------------------------------------------- */
/* x viewed as [outer, n, inner]; each outer slab runs its n steps with the inner dim as the
 * vectorizable loop. */
typedef struct CumArgs {
  int64_t n, inner;
  KnDtype t;
  bool exclusive, reverse;
} CumArgs;

static void cum_slab(CgKernel *k, LLVMValueRef o, void *user) {
  const CumArgs *a = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef base = LLVMBuildMul(b, o, cg_i64(k, a->n * a->inner), "");
  int64_t t0 = a->reverse ? a->n - 1 : 0;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, a->inner));
  LLVMValueRef at = LLVMBuildAdd(b, base, LLVMBuildAdd(b, cg_i64(k, t0 * a->inner), l.i, ""), "");
  cg_store(k, k->out[0], a->t, at, a->exclusive ? cg_const(k, a->t, 0) : cg_load(k, k->in[0], a->t, at));
  cg_loop_end(k, &l);
  CgLoop s = cg_loop_begin(k, cg_i64(k, 1), cg_i64(k, a->n));
  LLVMValueRef t = a->reverse ? LLVMBuildSub(b, cg_i64(k, a->n - 1), s.i, "") : s.i;
  LLVMValueRef prev = LLVMBuildAdd(b, t, cg_i64(k, a->reverse ? 1 : -1), "");
  LLVMValueRef row = LLVMBuildAdd(b, base, LLVMBuildMul(b, t, cg_i64(k, a->inner), ""), "");
  LLVMValueRef prow = LLVMBuildAdd(b, base, LLVMBuildMul(b, prev, cg_i64(k, a->inner), ""), "");
  CgLoop in = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, a->inner));
  LLVMValueRef cur = LLVMBuildAdd(b, row, in.i, ""), p = LLVMBuildAdd(b, prow, in.i, "");
  LLVMValueRef x = cg_load(k, k->in[0], a->t, a->exclusive ? p : cur);
  cg_store(k, k->out[0], a->t, cur, cg_add(k, a->t, cg_load(k, k->out[0], a->t, p), x));
  cg_loop_end(k, &in);
  cg_loop_end(k, &s);
}

static void cum_axis(CgKernel *k, const int64_t *dims, int rank, int axis, CumArgs *a) {
  int64_t outer = 1;
  a->n = dims[axis], a->inner = 1;
  for (int d = 0; d < axis; d++) outer *= dims[d];
  for (int d = axis + 1; d < rank; d++) a->inner *= dims[d];
  if (a->n * a->inner == 0) return;
  dm_loop(k, outer, a->n * a->inner, cum_slab, a);
}

/* The axis is an input: when compile time does not know it, the kernel holds a version per axis
 * and picks one at run time. */
KnStatus cg_lower_cumsum(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st == KN_OK && t == KN_BOOL) st = cg_unsupported(k, "bool input");
  if (st == KN_OK) st = require_index_dtype(k, 1);
  if (st != KN_OK) return st;
  int r = s->rank;
  if (r < 1 || r > DM_MAX_RANK) return cg_unsupported(k, "rank 0 or above 32");
  int64_t dims[DM_MAX_RANK], axis;
  dm_dims(s, dims);
  CumArgs args[DM_MAX_RANK];
  for (int d = 0; d < r; d++)
    args[d] = (CumArgs){0, 0, t, ir_attr_int(k->node, "exclusive", 0) != 0, ir_attr_int(k->node, "reverse", 0) != 0};
  if (ir_input_ints(k->node, 1, &axis, 1) == 1) {
    if (axis < -r || axis >= r) return cg_unsupported(k, "axis out of range");
    cum_axis(k, dims, r, (int)(axis < 0 ? axis + r : axis), &args[0]);
    return KN_OK;
  }
  LLVMValueRef ax = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), cg_i64(k, 0));
  ax = dm_wrap_index(k, ax, cg_i64(k, r), "axis out of range");
  for (int d = 0; d < r; d++) {
    CgIf c = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntEQ, ax, cg_i64(k, d), ""));
    cum_axis(k, dims, r, d, &args[d]);
    cg_if_end(k, &c);
  }
  return KN_OK;
}
