/* lower_reduce.c - the reduction engine (lower_reduce.h) and the Reduce* and ArgMax/ArgMin
 * lowerings built on it. */
#include <math.h>
#include <string.h>

#include "codegen/lower_reduce.h"

/* ---- engine -------------------------------------------------------------------------------- */
bool rd_geometry(RdPlan *p, const KnShape *s, const bool *mask) {
  int r = 0;
  p->n_kept = p->n_red = 1;
  for (int d = 0; d < s->rank; d++) {
    int64_t n = s->dims[d].value;
    if (mask[d]) p->n_red *= n;
    else p->n_kept *= n;
    if (n == 1) continue; /* a size-1 dim neither moves nor reduces anything */
    if (r > 0 && p->red[r - 1] == mask[d]) {
      p->dims[r - 1] *= n;
      continue;
    }
    if (r == RD_MAX_RANK) return false;
    p->dims[r] = n;
    p->red[r++] = mask[d];
  }
  p->rank = r;
  int64_t st = 1;
  for (int d = r - 1; d >= 0; d--) {
    p->strides[d] = st;
    st *= p->dims[d];
  }
  p->inner_k = r > 0 && !p->red[r - 1] ? p->dims[r - 1] : 1;
  return true;
}

/* Where one kept element (or chunk of RD_CHUNK of them) is within the parallel body. */
typedef struct RdState {
  const RdPlan *p;
  LLVMTypeRef slot_t[RD_MAX_STATS];
  LLVMValueRef slot[RD_MAX_STATS]; /* [width x stat] accumulators */
  LLVMValueRef in_base, out_base, len;
} RdState;

typedef enum { RD_INIT, RD_STEP, RD_DONE, RD_MAP } RdKind;

static LLVMValueRef slot_ptr(CgKernel *k, const RdState *s, int i, LLVMValueRef j) {
  LLVMValueRef idx[2] = {cg_i64(k, 0), j};
  return LLVMBuildInBoundsGEP2(k->b, s->slot_t[i], s->slot[i], idx, 2, "");
}

/* One kept element j of the chunk: load its stats, run the callback, store them back. */
static void element(CgKernel *k, const RdState *s, RdKind kind, int pass, LLVMValueRef j,
                    LLVMValueRef roff, LLVMValueRef ridx) {
  const RdPlan *p = s->p;
  RdCtx c = {0};
  for (int i = 0; i < p->n_stats && kind != RD_INIT; i++)
    c.stats[i] = LLVMBuildLoad2(k->b, cg_compute_type(k->m, p->stat_dtype[i]), slot_ptr(k, s, i, j), "");
  c.out_off = LLVMBuildAdd(k->b, s->out_base, j, "");
  c.ridx = ridx;
  if (kind == RD_STEP || kind == RD_MAP || (kind == RD_INIT && p->n_red > 0)) {
    c.in_off = LLVMBuildAdd(k->b, LLVMBuildAdd(k->b, s->in_base, roff, ""), j, "");
    c.x = cg_load(k, k->in[p->src], p->src_dtype, c.in_off);
  }
  if (kind == RD_MAP) {
    cg_store(k, k->out[p->map_out], p->map_dtype, c.in_off, p->map(k, p, &c));
    return;
  }
  if (kind == RD_INIT) p->init(k, p, pass, &c);
  else if (kind == RD_STEP) p->step(k, p, pass, &c);
  else if (p->done) p->done(k, p, pass, &c);
  for (int i = 0; i < p->n_stats; i++)
    if (c.stats[i]) LLVMBuildStore(k->b, c.stats[i], slot_ptr(k, s, i, j));
}

/* The kept elements of the chunk, innermost so that both input and accumulators are unit-stride. */
static void over_chunk(CgKernel *k, const RdState *s, RdKind kind, int pass, LLVMValueRef roff,
                       LLVMValueRef ridx) {
  if (s->p->inner_k == 1) {
    element(k, s, kind, pass, cg_i64(k, 0), roff, ridx);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), s->len);
  element(k, s, kind, pass, l.i, roff, ridx);
  cg_loop_end(k, &l);
}

/* Nested loops over the reduced dims from d on (the last one is unit-stride when reduced). */
static void over_reduced(CgKernel *k, const RdState *s, RdKind kind, int pass, int d,
                         LLVMValueRef roff, LLVMValueRef ridx) {
  const RdPlan *p = s->p;
  while (d < p->rank && !p->red[d]) d++;
  if (d == p->rank) {
    over_chunk(k, s, kind, pass, roff, ridx);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, p->dims[d]));
  LLVMValueRef o = LLVMBuildAdd(k->b, roff, LLVMBuildMul(k->b, l.i, cg_i64(k, p->strides[d]), ""), "");
  LLVMValueRef r = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, ridx, cg_i64(k, p->dims[d]), ""), l.i, "");
  over_reduced(k, s, kind, pass, d + 1, o, r);
  cg_loop_end(k, &l);
}

static int64_t n_chunks(const RdPlan *p) { return (p->inner_k + RD_CHUNK - 1) / RD_CHUNK; }

/* Work item i: kept element o (all kept dims but a trailing one) and chunk ch of that trailing dim. */
static void rd_body(CgKernel *k, LLVMValueRef i, void *user) {
  const RdPlan *p = user;
  RdState s = {.p = p};
  LLVMBuilderRef b = k->b;
  int64_t nc = n_chunks(p), width = p->inner_k < RD_CHUNK ? p->inner_k : RD_CHUNK;
  LLVMValueRef o = nc > 1 ? LLVMBuildUDiv(b, i, cg_i64(k, nc), "") : i;
  LLVMValueRef c0 = nc > 1 ? LLVMBuildMul(b, LLVMBuildURem(b, i, cg_i64(k, nc), ""), cg_i64(k, RD_CHUNK), "")
                           : cg_i64(k, 0);
  LLVMValueRef rem = o, in_base = c0;
  int last = p->inner_k > 1 ? p->rank - 2 : p->rank - 1;
  for (int d = last; d >= 0; d--) {
    if (p->red[d]) continue;
    LLVMValueRef coord = LLVMBuildURem(b, rem, cg_i64(k, p->dims[d]), "");
    rem = LLVMBuildUDiv(b, rem, cg_i64(k, p->dims[d]), "");
    in_base = LLVMBuildAdd(b, in_base, LLVMBuildMul(b, coord, cg_i64(k, p->strides[d]), ""), "");
  }
  s.in_base = in_base;
  s.out_base = LLVMBuildAdd(b, LLVMBuildMul(b, o, cg_i64(k, p->inner_k), ""), c0, "");
  s.len = cg_i64(k, width);
  if (nc > 1) {
    LLVMValueRef left = LLVMBuildSub(b, cg_i64(k, p->inner_k), c0, "");
    s.len = cg_select(k, LLVMBuildICmp(b, LLVMIntSLT, left, s.len, ""), left, s.len);
  }
  for (int j = 0; j < p->n_stats; j++) {
    s.slot_t[j] = LLVMArrayType2(cg_compute_type(k->m, p->stat_dtype[j]), (uint64_t)width);
    s.slot[j] = cg_var(k, s.slot_t[j], NULL);
  }
  LLVMValueRef zero = cg_i64(k, 0);
  for (int pass = 0; pass < p->n_pass; pass++) {
    over_chunk(k, &s, RD_INIT, pass, zero, zero);
    over_reduced(k, &s, RD_STEP, pass, 0, zero, zero);
    over_chunk(k, &s, RD_DONE, pass, zero, zero);
  }
  if (p->n_pass == 0) over_chunk(k, &s, RD_DONE, 0, zero, zero);
  if (p->map) over_reduced(k, &s, RD_MAP, 0, 0, zero, zero);
}

void rd_emit(CgKernel *k, const RdPlan *p) {
  if (p->n_kept == 0) return; /* an empty output (inner_k may be 0 then) */
  int64_t items = (p->n_kept / p->inner_k) * n_chunks(p);
  int64_t width = p->inner_k < RD_CHUNK ? p->inner_k : RD_CHUNK;
  int64_t work = p->n_red * width * (p->n_pass + (p->map ? 1 : 0));
  int64_t grain = work >= 32768 ? 1 : 32768 / (work > 0 ? work : 1);
  cg_parallel_for(k, items, grain, rd_body, (void *)p);
}

LLVMValueRef rd_add(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef v = cg_add(k, t, a, b);
  if (ir_dtype_is_float(t) && LLVMIsAInstruction(v)) LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc);
  return v;
}

KnDtype rd_float_acc(KnDtype t) { return t == KN_F64 ? KN_F64 : KN_F32; }

LLVMValueRef rd_bcast_index(CgKernel *k, LLVMValueRef lin, const KnShape *out, const KnShape *in) {
  if (cg_numel(in) == cg_numel(out)) return lin;
  int64_t st[RD_MAX_RANK + 1];
  cg_broadcast_strides(in, out, st);
  LLVMValueRef idx = cg_i64(k, 0), rem = lin;
  for (int d = out->rank - 1; d >= 0; d--) {
    int64_t n = out->dims[d].value;
    LLVMValueRef coord = LLVMBuildURem(k->b, rem, cg_i64(k, n), "");
    rem = LLVMBuildUDiv(k->b, rem, cg_i64(k, n), "");
    if (st[d]) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, coord, cg_i64(k, st[d]), ""), "");
  }
  return idx;
}

LLVMValueRef rd_fn(CgKernel *k, const char *intrinsic, LLVMValueRef x) { return cg_intrinsic(k, intrinsic, &x, 1); }

/* ---- Reduce* ------------------------------------------------------------------------------- */
/* Reads the axes (attribute, or input 1 for ReduceSum from opset 13 and every Reduce from 18)
 * into mask; *noop when the axes are empty and noop_with_empty_axes asks for identity. */
static KnStatus reduce_axes(CgKernel *k, bool *mask, bool *noop) {
  const KnNode *n = k->node;
  int rank = cg_in_shape(k, 0)->rank;
  int64_t axes[RD_MAX_RANK * 2];
  int cnt = 0;
  int since = n->op == KN_OP_ReduceSum ? 13 : 18;
  const KnAttr *a = ir_attr(n, "axes");
  if (n->n_inputs > 1 && n->inputs[1] && (n->opset >= since || !a)) {
    cnt = ir_input_ints(n, 1, axes, RD_MAX_RANK * 2);
    if (cnt < 0) return cg_unsupported(k, "axes not known at compile time");
  } else if (a) {
    if (a->kind != KN_ATTR_INTS || a->n > RD_MAX_RANK * 2) return cg_unsupported(k, "bad axes attribute");
    cnt = (int)a->n;
    if (cnt) memcpy(axes, a->ints, (size_t)cnt * sizeof *axes);
  }
  *noop = cnt == 0 && ir_attr_int(n, "noop_with_empty_axes", 0);
  for (int d = 0; d < rank; d++) mask[d] = cnt == 0;
  for (int i = 0; i < cnt; i++) {
    int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (ax < 0 || ax >= rank) return cg_unsupported(k, "axis out of range");
    mask[ax] = true;
  }
  return KN_OK;
}

/* The extreme value of a dtype (lowest when lo), for Max/Min's starting point. */
static LLVMValueRef extreme(CgKernel *k, KnDtype t, bool lo) {
  if (ir_dtype_is_float(t)) return cg_const(k, t, lo ? -INFINITY : INFINITY);
  LLVMTypeRef ty = cg_compute_type(k->m, t);
  unsigned w = LLVMGetIntTypeWidth(ty);
  if (!ir_dtype_is_signed(t)) return lo ? LLVMConstInt(ty, 0, 0) : LLVMConstAllOnes(ty);
  unsigned long long min = 1ull << (w - 1);
  return LLVMConstInt(ty, lo ? min : min - 1, 0);
}

static void reduce_init(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  switch (k->node->op) {
  case KN_OP_ReduceMax: c->stats[0] = extreme(k, t, true); break;
  case KN_OP_ReduceMin: c->stats[0] = extreme(k, t, false); break;
  case KN_OP_ReduceProd: c->stats[0] = cg_const(k, t, 1); break;
  case KN_OP_ReduceLogSumExp: c->stats[pass] = pass ? cg_const(k, t, 0) : extreme(k, t, true); break;
  default: c->stats[0] = cg_const(k, t, 0); break;
  }
}

/* The shift for LogSumExp: the max, or 0 when it is infinite (all -inf, or +inf present). */
static LLVMValueRef lse_shift(CgKernel *k, KnDtype t, LLVMValueRef m) {
  LLVMValueRef finite = LLVMBuildFCmp(k->b, LLVMRealOLT, rd_fn(k, "llvm.fabs", m), cg_const(k, t, INFINITY), "");
  return cg_select(k, finite, m, cg_const(k, t, 0));
}

static void reduce_step(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t), acc = c->stats[pass];
  LLVMValueRef r;
  switch (k->node->op) {
  case KN_OP_ReduceMax: r = cg_max(k, t, acc, x); break;
  case KN_OP_ReduceMin: r = cg_min(k, t, acc, x); break;
  case KN_OP_ReduceProd: r = cg_mul(k, t, acc, x); break;
  case KN_OP_ReduceSumSquare: case KN_OP_ReduceL2: r = rd_add(k, t, acc, cg_mul(k, t, x, x)); break;
  case KN_OP_ReduceL1: {
    LLVMValueRef ax = x;
    if (ir_dtype_is_float(t)) ax = rd_fn(k, "llvm.fabs", x);
    else if (ir_dtype_is_signed(t))
      ax = cg_select(k, cg_cmp(k, t, "lt", x, cg_const(k, t, 0)), LLVMBuildNeg(k->b, x, ""), x);
    r = rd_add(k, t, acc, ax);
    break;
  }
  case KN_OP_ReduceLogSumExp:
    if (pass == 0) r = cg_max(k, t, acc, x);
    else r = rd_add(k, t, acc, rd_fn(k, "llvm.exp", LLVMBuildFSub(k->b, x, lse_shift(k, t, c->stats[0]), "")));
    break;
  default: r = rd_add(k, t, acc, x); break;
  }
  c->stats[pass] = r;
}

static void reduce_done(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  if (pass != p->n_pass - 1) return;
  LLVMValueRef v = c->stats[pass];
  switch (k->node->op) {
  case KN_OP_ReduceMean: v = LLVMBuildFDiv(k->b, v, cg_const(k, t, (double)p->n_red), ""); break;
  case KN_OP_ReduceL2: v = rd_fn(k, "llvm.sqrt", v); break;
  case KN_OP_ReduceLogSum: v = rd_fn(k, "llvm.log", v); break;
  case KN_OP_ReduceLogSumExp:
    v = LLVMBuildFAdd(k->b, rd_fn(k, "llvm.log", v), lse_shift(k, t, c->stats[0]), "");
    break;
  default: break;
  }
  cg_store(k, k->out[0], cg_out_dtype(k, 0), c->out_off, cg_convert(k, v, t, cg_out_dtype(k, 0)));
}

/* Integers keep their own type where the result is exact (wrapping like the reference's cast
 * back); means, norms and logs of integers go through f64. */
static KnDtype reduce_acc(KnOp op, KnDtype t) {
  if (ir_dtype_is_float(t)) return rd_float_acc(t);
  bool exact = op == KN_OP_ReduceSum || op == KN_OP_ReduceProd || op == KN_OP_ReduceSumSquare ||
               op == KN_OP_ReduceL1 || op == KN_OP_ReduceMax || op == KN_OP_ReduceMin;
  return exact ? t : KN_F64;
}

KnStatus cg_lower_reduce(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  if (!ir_dtype_is_float(t) && !ir_dtype_is_int(t)) return cg_unsupported(k, "non-numeric input");
  if (s->rank > RD_MAX_RANK * 2) return cg_unsupported(k, "too many dims");
  bool mask[RD_MAX_RANK * 2 + 1], noop = false;
  KnStatus st = reduce_axes(k, mask, &noop);
  if (st) return st;
  if (noop) {
    size_t nb = 0;
    if (!ir_dtype_nbytes(t, cg_numel(s), &nb)) return cg_unsupported(k, "size overflow");
    if (nb) cg_memcpy(k, k->out[0], k->in[0], cg_i64(k, (int64_t)nb));
    return KN_OK;
  }
  RdPlan plan = {0}, *p = &plan;
  if (!rd_geometry(p, s, mask)) return cg_unsupported(k, "too many dims");
  p->src = 0;
  p->src_dtype = t;
  p->n_stats = k->node->op == KN_OP_ReduceLogSumExp ? 2 : 1;
  p->n_pass = p->n_stats;
  p->stat_dtype[0] = p->stat_dtype[1] = reduce_acc(k->node->op, t);
  p->init = reduce_init;
  p->step = reduce_step;
  p->done = reduce_done;
  rd_emit(k, p);
  return KN_OK;
}

/* ---- ArgMax / ArgMin ----------------------------------------------------------------------- */
static void arg_init(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  (void)pass;
  c->stats[0] = cg_convert(k, c->x, p->src_dtype, p->stat_dtype[0]);
  c->stats[1] = cg_i64(k, 0);
}

/* Whether x replaces best: strictly better (or not worse with select_last_index); a NaN wins
 * like numpy's argmax/argmin (the first one, or the last with select_last_index). */
static void arg_step(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  bool last = ir_attr_int(k->node, "select_last_index", 0) != 0;
  bool is_max = k->node->op == KN_OP_ArgMax;
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t), best = c->stats[0];
  const char *pred = is_max ? (last ? "ge" : "gt") : (last ? "le" : "lt");
  LLVMValueRef better = cg_cmp(k, t, pred, x, best);
  (void)pass;
  if (ir_dtype_is_float(t)) {
    LLVMValueRef x_nan = LLVMBuildFCmp(k->b, LLVMRealUNO, x, x, "");
    LLVMValueRef best_ok = LLVMBuildFCmp(k->b, LLVMRealORD, best, best, "");
    better = LLVMBuildOr(k->b, better, last ? x_nan : LLVMBuildAnd(k->b, x_nan, best_ok, ""), "");
  }
  c->stats[0] = cg_select(k, better, x, best);
  c->stats[1] = cg_select(k, better, c->ridx, c->stats[1]);
}

static void arg_done(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  (void)p;
  (void)pass;
  cg_store(k, k->out[0], KN_I64, c->out_off, c->stats[1]);
}

KnStatus cg_lower_arg_reduce(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  if (!ir_dtype_is_float(t) && !ir_dtype_is_int(t)) return cg_unsupported(k, "non-numeric input");
  if (s->rank > RD_MAX_RANK * 2) return cg_unsupported(k, "too many dims");
  int64_t axis = ir_attr_int(k->node, "axis", 0);
  if (axis < 0) axis += s->rank;
  if (axis < 0 || axis >= s->rank) return cg_unsupported(k, "axis out of range");
  if (s->dims[axis].value == 0) return cg_unsupported(k, "arg reduction over an empty axis");
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  mask[axis] = true;
  RdPlan plan = {0}, *p = &plan;
  if (!rd_geometry(p, s, mask)) return cg_unsupported(k, "too many dims");
  p->src_dtype = t;
  p->n_stats = 2;
  p->n_pass = 1;
  p->stat_dtype[0] = ir_dtype_is_float(t) ? rd_float_acc(t) : t;
  p->stat_dtype[1] = KN_I64;
  p->init = arg_init;
  p->step = arg_step;
  p->done = arg_done;
  rd_emit(k, p);
  return KN_OK;
}
