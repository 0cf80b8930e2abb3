/* lower_pool.c - pooling: MaxPool (with Indices), AveragePool, LpPool, the Global* pools,
 * MaxUnpool, MaxRoiPool and RoiAlign. Every (batch, channel) plane is one parallel iteration;
 * window taps that fall in the padding are skipped through per-position tap ranges computed at
 * compile time, so the loops carry no bounds checks. f32 1-D/2-D MaxPool and AveragePool at -O1
 * and up use the row-vectorized window walk of lower_conv_dw.c instead. */
#include <math.h>

#include "codegen/lower_conv.h"
#include "codegen/lower_conv_dw.h"
#include "codegen/lower_conv_nchwc.h"

typedef enum { POOL_MAX, POOL_AVG, POOL_LP } PoolKind;

typedef struct Pool {
  LwWindow w;
  PoolKind kind;
  KnDtype t, tacc;
  int64_t isz, osz;
  bool include_pad, col_major, indices;
  double p;
  int64_t *cnt[LW_MAX_SP];      /* per output position: taps inside the padded input */
  int64_t *lo[LW_MAX_SP], *hi[LW_MAX_SP]; /* per output position: taps inside the input */
} Pool;

/* acc's start value: -inf / the type's minimum for max, 0 for sums. */
static LLVMValueRef pool_init(CgKernel *k, const Pool *pl) {
  if (pl->kind != POOL_MAX) return cg_const(k, pl->tacc, 0);
  if (ir_dtype_is_float(pl->t)) return cg_const(k, pl->tacc, -INFINITY);
  int bits = ir_dtype_bits(pl->t);
  if (!ir_dtype_is_signed(pl->t)) return cg_const_int(k, pl->t, 0);
  return cg_const_int(k, pl->t, bits >= 64 ? INT64_MIN : -((int64_t)1 << (bits - 1)));
}

/* Folds value v (input element at flat spatial index sp) into acc / arg. */
static void pool_update(CgKernel *k, const Pool *pl, LLVMValueRef acc, LLVMValueRef arg, LLVMValueRef v,
                        LLVMValueRef sp) {
  LLVMTypeRef at = cg_compute_type(k->m, pl->tacc);
  LLVMValueRef cur = lw_loadv(k, at, acc);
  if (pl->kind == POOL_MAX) {
    LLVMValueRef gt = cg_cmp(k, pl->t, "gt", v, cur);
    LLVMBuildStore(k->b, cg_select(k, gt, v, cur), acc);
    if (arg) LLVMBuildStore(k->b, cg_select(k, gt, sp, lw_loadv(k, k->m->t_i64, arg)), arg);
    return;
  }
  if (pl->kind == POOL_LP) {
    v = cg_intrinsic(k, "llvm.fabs", &v, 1);
    if (pl->p == 2.0) v = LLVMBuildFMul(k->b, v, v, "");
    else if (pl->p != 1.0) {
      LLVMValueRef args[2] = {v, cg_const(k, pl->tacc, pl->p)};
      v = cg_intrinsic(k, "llvm.pow", args, 2);
    }
  }
  LLVMBuildStore(k->b, LLVMBuildFAdd(k->b, cur, v, ""), acc);
}

/* The pooled value from acc for a window of `count` taps (i64). */
static LLVMValueRef pool_final(CgKernel *k, const Pool *pl, LLVMValueRef acc, LLVMValueRef count) {
  LLVMValueRef v = lw_loadv(k, cg_compute_type(k->m, pl->tacc), acc);
  if (pl->kind == POOL_AVG) return LLVMBuildFDiv(k->b, v, cg_convert(k, count, KN_I64, pl->tacc), "");
  if (pl->kind == POOL_LP) {
    if (pl->p == 2.0) return cg_intrinsic(k, "llvm.sqrt", &v, 1);
    if (pl->p == 1.0) return v;
    LLVMValueRef args[2] = {v, cg_const(k, pl->tacc, 1.0 / pl->p)};
    return cg_intrinsic(k, "llvm.pow", args, 2);
  }
  return v;
}

/* Flat index of input coordinates (the Indices output; storage_order 1 is column-major). */
static LLVMValueRef flat_index(CgKernel *k, const Pool *pl, LLVMValueRef *c) {
  const LwWindow *w = &pl->w;
  LLVMValueRef r = cg_i64(k, 0);
  if (!pl->col_major) {
    for (int d = 0; d < LW_MAX_SP; d++) r = lw_madc(k, r, w->in[d], c[d]);
    return r;
  }
  for (int d = LW_MAX_SP - 1; d >= 0; d--) r = lw_madc(k, r, w->in[d], c[d]);
  return r;
}

typedef struct PoolTabs {
  LLVMValueRef lo[LW_MAX_SP], hi[LW_MAX_SP], cnt[LW_MAX_SP];
} PoolTabs;

static PoolTabs pool_tables(CgKernel *k, const Pool *pl) {
  PoolTabs t;
  const LwWindow *w = &pl->w;
  for (int d = 0; d < LW_MAX_SP; d++) {
    int64_t n = w->out[d];
    t.lo[d] = lw_table(k, pl->lo[d], n), t.hi[d] = lw_table(k, pl->hi[d], n);
    t.cnt[d] = lw_table(k, pl->cnt[d], n);
  }
  return t;
}

/* One output element: position pos[], window tap ranges lo/hi. */
static void pool_point(CgKernel *k, const Pool *pl, LLVMValueRef plane, LLVMValueRef oi, LLVMValueRef *pos,
                       LLVMValueRef *lo, LLVMValueRef *hi, LLVMValueRef count) {
  const LwWindow *w = &pl->w;
  LLVMValueRef acc = cg_var(k, cg_compute_type(k->m, pl->tacc), NULL);
  LLVMValueRef arg = pl->indices ? cg_var(k, k->m->t_i64, NULL) : NULL;
  LLVMBuildStore(k->b, pool_init(k, pl), acc);
  if (arg) LLVMBuildStore(k->b, cg_i64(k, 0), arg);
  CgLoop l[LW_MAX_SP];
  LLVMValueRef c[LW_MAX_SP], xi = cg_i64(k, 0);
  for (int d = 0; d < LW_MAX_SP; d++) {
    l[d] = cg_loop_begin(k, lo[d], hi[d]);
    c[d] = lw_add(k, lw_addc(k, lw_mulc(k, pos[d], w->s[d]), -w->pb[d]), lw_mulc(k, l[d].i, w->d[d]));
    xi = lw_madc(k, xi, w->in[d], c[d]);
  }
  LLVMValueRef v = cg_load(k, k->in[0], pl->t, lw_add(k, lw_mulc(k, plane, pl->isz), xi));
  pool_update(k, pl, acc, arg, cg_convert(k, v, pl->t, pl->tacc), arg ? flat_index(k, pl, c) : NULL);
  for (int d = LW_MAX_SP - 1; d >= 0; d--) cg_loop_end(k, &l[d]);
  if (!pl->include_pad) { /* taps actually visited */
    count = cg_i64(k, 1);
    for (int d = 0; d < LW_MAX_SP; d++) count = lw_mul(k, count, lw_sub(k, hi[d], lo[d]));
  }
  LLVMValueRef o = lw_add(k, lw_mulc(k, plane, pl->osz), oi);
  cg_store(k, k->out[0], pl->t, o, cg_convert(k, pool_final(k, pl, acc, count), pl->tacc, pl->t));
  if (arg) cg_store(k, k->out[1], KN_I64, o, lw_add(k, lw_mulc(k, plane, pl->isz), lw_loadv(k, k->m->t_i64, arg)));
}

static void pool_plane(CgKernel *k, LLVMValueRef plane, void *user) {
  const Pool *pl = user;
  const LwWindow *w = &pl->w;
  PoolTabs t = pool_tables(k, pl);
  CgLoop l[LW_MAX_SP];
  LLVMValueRef pos[LW_MAX_SP], lo[LW_MAX_SP], hi[LW_MAX_SP], oi = cg_i64(k, 0), count = cg_i64(k, 1);
  for (int d = 0; d < LW_MAX_SP; d++) {
    l[d] = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->out[d]));
    pos[d] = l[d].i;
    lo[d] = lw_i64_at(k, t.lo[d], pos[d]), hi[d] = lw_i64_at(k, t.hi[d], pos[d]);
    count = lw_mul(k, count, lw_i64_at(k, t.cnt[d], pos[d]));
    oi = lw_madc(k, oi, w->out[d], pos[d]);
  }
  pool_point(k, pl, plane, oi, pos, lo, hi, count);
  for (int d = LW_MAX_SP - 1; d >= 0; d--) cg_loop_end(k, &l[d]);
}

/* Per output position: the taps inside the input, and (count_include_pad) those inside
 * [-pad_begin, in + pad_end). */
static bool pad_counts(Pool *pl) {
  const LwWindow *w = &pl->w;
  for (int d = 0; d < LW_MAX_SP; d++) {
    size_t len = (size_t)(w->out[d] ? w->out[d] : 1);
    pl->cnt[d] = calloc(len, sizeof(int64_t));
    pl->lo[d] = calloc(len, sizeof(int64_t));
    pl->hi[d] = calloc(len, sizeof(int64_t));
    if (!pl->cnt[d] || !pl->lo[d] || !pl->hi[d]) return false;
    for (int64_t o = 0; o < w->out[d]; o++) lw_taps(w, d, o, &pl->lo[d][o], &pl->hi[d][o]);
    for (int64_t o = 0; o < w->out[d]; o++) {
      int64_t n = 0;
      for (int64_t t = 0; t < w->k[d]; t++) {
        int64_t c = o * w->s[d] - w->pb[d] + t * w->d[d];
        n += c >= -w->pb[d] && c < w->in[d] + w->pe[d];
      }
      pl->cnt[d][o] = n;
    }
  }
  return true;
}

KnStatus cg_lower_pool(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0);
  Pool pl = {.t = cg_in_dtype(k, 0), .p = 2.0};
  pl.kind = n->op == KN_OP_MaxPool ? POOL_MAX : n->op == KN_OP_AveragePool ? POOL_AVG : POOL_LP;
  bool fl = ir_dtype_is_float(pl.t);
  if (!fl && !(pl.kind == POOL_MAX && (pl.t == KN_U8 || pl.t == KN_I8)))
    return cg_unsupported(k, "dtype");
  pl.tacc = pl.t == KN_F16 || pl.t == KN_BF16 ? KN_F32 : pl.t;
  KnStatus st = lw_window(k, x, y, NULL, &pl.w);
  if (st) return st;
  pl.include_pad = pl.kind == POOL_AVG && ir_attr_int(n, "count_include_pad", 0) != 0;
  pl.col_major = ir_attr_int(n, "storage_order", 0) != 0;
  pl.indices = pl.kind == POOL_MAX && n->n_outputs > 1 && k->out[1];
  if (pl.kind == POOL_LP) pl.p = (double)ir_attr_int(n, "p", 2);
  pl.isz = pl.w.in[0] * pl.w.in[1] * pl.w.in[2];
  pl.osz = pl.w.out[0] * pl.w.out[1] * pl.w.out[2];
  int64_t planes = x->dims[0].value * x->dims[1].value;
  /* -O1 and up: f32 max / average rows as vectors (lower_conv_dw.c); Indices keep these loops */
  if (k->m->opt_level >= 1 && pl.t == KN_F32 && pl.kind == POOL_MAX && !pl.indices && planes * pl.osz > 0 &&
      cg_try_pool_blocked(k, &pl.w, planes))
    return KN_OK;
  if (k->m->opt_level >= 1 && pl.t == KN_F32 && pl.kind != POOL_LP && !pl.indices && planes * pl.osz > 0 &&
      cg_try_pool_rows(k, &pl.w, planes, pl.kind == POOL_MAX, pl.include_pad))
    return KN_OK;
  bool ok = pad_counts(&pl);
  if (ok && planes * pl.osz > 0) {
    int64_t work = pl.osz * pl.w.k[0] * pl.w.k[1] * pl.w.k[2];
    cg_parallel_for(k, planes, work >= 16384 ? 1 : 16384 / (work ? work : 1), pool_plane, &pl);
  }
  for (int d = 0; d < LW_MAX_SP; d++) free(pl.cnt[d]), free(pl.lo[d]), free(pl.hi[d]);
  return ok ? KN_OK : kn_fail(k->err, KN_ERR_NOMEM, "out of memory");
}

/* ---- global pools ------------------------------------------------------------------------- */
static void global_plane(CgKernel *k, LLVMValueRef plane, void *user) {
  const Pool *pl = user;
  LLVMValueRef acc = cg_var(k, cg_compute_type(k->m, pl->tacc), NULL);
  LLVMBuildStore(k->b, pool_init(k, pl), acc);
  LLVMValueRef base = lw_mulc(k, plane, pl->isz);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, pl->isz));
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[0], pl->t, lw_add(k, base, l.i)), pl->t, pl->tacc);
  pool_update(k, pl, acc, NULL, v, NULL);
  cg_loop_end(k, &l);
  LLVMValueRef r = pool_final(k, pl, acc, cg_i64(k, pl->isz));
  cg_store(k, k->out[0], pl->t, plane, cg_convert(k, r, pl->tacc, pl->t));
}

KnStatus cg_lower_global_pool(CgKernel *k) {
  const KnShape *x = cg_in_shape(k, 0);
  KnOp op = k->node->op;
  Pool pl = {.t = cg_in_dtype(k, 0), .p = 2.0};
  pl.kind = op == KN_OP_GlobalMaxPool ? POOL_MAX : op == KN_OP_GlobalAveragePool ? POOL_AVG : POOL_LP;
  if (!ir_dtype_is_float(pl.t)) return cg_unsupported(k, "dtype");
  pl.tacc = pl.t == KN_F16 || pl.t == KN_BF16 ? KN_F32 : pl.t;
  if (pl.kind == POOL_LP) pl.p = (double)ir_attr_int(k->node, "p", 2);
  if (x->rank < 2) return cg_unsupported(k, "rank < 2");
  pl.isz = 1;
  for (int d = 2; d < x->rank; d++) pl.isz *= x->dims[d].value;
  int64_t planes = x->dims[0].value * x->dims[1].value;
  if (planes == 0) return KN_OK;
  cg_parallel_for(k, planes, pl.isz >= 16384 ? 1 : 16384 / (pl.isz ? pl.isz : 1), global_plane, &pl);
  return KN_OK;
}

/* ---- MaxUnpool ---------------------------------------------------------------------------- */
typedef struct Unpool {
  int rank;
  int64_t numel, dflt[8], out[8]; /* default (indices') shape and output shape */
} Unpool;

/* Indices address the default unpooled shape; each lands at the same coordinates of the output,
 * which output_shape may make larger (zero padded at the end). */
static KnStatus max_unpool_shapes(CgKernel *k, Unpool *u) {
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0);
  if (x->rank != y->rank || x->rank < 3 || x->rank > 8) return cg_unsupported(k, "rank");
  int nsp = x->rank - 2;
  int64_t cnt, cs, cp;
  const int64_t *ks = ir_attr_ints(k->node, "kernel_shape", &cnt), *st = ir_attr_ints(k->node, "strides", &cs);
  const int64_t *pads = ir_attr_ints(k->node, "pads", &cp);
  if (!ks || cnt != nsp || (st && cs != nsp) || (pads && cp != 2 * nsp)) return cg_unsupported(k, "window attributes");
  u->rank = x->rank;
  for (int d = 0; d < x->rank; d++) {
    u->out[d] = y->dims[d].value;
    u->dflt[d] = x->dims[d].value;
    if (d < 2) continue;
    int j = d - 2;
    u->dflt[d] = (x->dims[d].value - 1) * (st ? st[j] : 1) + ks[j] - (pads ? pads[j] + pads[j + nsp] : 0);
  }
  u->numel = 1;
  for (int d = 0; d < u->rank; d++) u->numel *= u->dflt[d];
  return KN_OK;
}

KnStatus cg_lower_max_unpool(CgKernel *k) {
  Unpool u = {0};
  KnStatus st = max_unpool_shapes(k, &u);
  if (st) return st;
  KnDtype t = cg_in_dtype(k, 0), ti = cg_in_dtype(k, 1);
  size_t nbytes;
  if (!cg_storage_type(k->m, t) || !ir_dtype_is_int(ti) || !ir_dtype_nbytes(t, cg_numel(cg_out_shape(k, 0)), &nbytes))
    return cg_unsupported(k, "dtype");
  cg_memset(k, k->out[0], 0, cg_i64(k, (int64_t)nbytes));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cg_numel(cg_in_shape(k, 0))));
  LLVMValueRef idx = cg_convert(k, cg_load(k, k->in[1], ti, l.i), ti, KN_I64);
  LLVMValueRef bad = LLVMBuildOr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, idx, cg_i64(k, 0), ""),
                                 LLVMBuildICmp(k->b, LLVMIntSGE, idx, cg_i64(k, u.numel), ""), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "index out of range", idx);
  LLVMValueRef rem = idx, o = cg_i64(k, 0), inside = LLVMConstInt(k->m->t_i1, 1, 0);
  int64_t ostride = 1;
  for (int d = u.rank - 1; d >= 0; d--) { /* coordinates in the default shape, placed in the output */
    LLVMValueRef c = lw_remc(k, rem, u.dflt[d]);
    rem = lw_divc(k, rem, u.dflt[d]);
    inside = LLVMBuildAnd(k->b, inside, LLVMBuildICmp(k->b, LLVMIntSLT, c, cg_i64(k, u.out[d]), ""), "");
    o = lw_add(k, o, lw_mulc(k, c, ostride));
    ostride *= u.out[d];
  }
  CgIf ci = cg_if_begin(k, inside);
  cg_store(k, k->out[0], t, o, cg_load(k, k->in[0], t, l.i));
  cg_if_end(k, &ci);
  cg_loop_end(k, &l);
  return KN_OK;
}

/* ---- MaxRoiPool --------------------------------------------------------------------------- */
typedef struct RoiPool {
  KnDtype t, tr;
  int64_t N, C, H, W, PH, PW;
  double scale;
} RoiPool;

static LLVMValueRef clampi(CgKernel *k, LLVMValueRef v, int64_t lo, int64_t hi) {
  v = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, v, cg_i64(k, lo), ""), cg_i64(k, lo), v);
  return cg_select(k, LLVMBuildICmp(k->b, LLVMIntSGT, v, cg_i64(k, hi), ""), cg_i64(k, hi), v);
}

/* rois[r, j] * spatial_scale rounded half away from zero, as an i64. */
static LLVMValueRef roi_coord(CgKernel *k, const RoiPool *rp, LLVMValueRef r, int j) {
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[1], rp->tr, lw_addc(k, lw_mulc(k, r, 5), j)), rp->tr, KN_F64);
  v = LLVMBuildFMul(k->b, v, LLVMConstReal(k->m->t_f64, rp->scale), "");
  return cg_convert(k, cg_intrinsic(k, "llvm.round", &v, 1), KN_F64, KN_I64);
}

/* One bin's [start, end) along a dim: floor(p*bin) .. ceil((p+1)*bin), shifted and clamped. */
static void roi_bin(CgKernel *k, LLVMValueRef p, LLVMValueRef bin, LLVMValueRef start, int64_t size,
                    LLVMValueRef *lo, LLVMValueRef *hi) {
  LLVMValueRef pf = cg_convert(k, p, KN_I64, KN_F64);
  LLVMValueRef a = LLVMBuildFMul(k->b, pf, bin, "");
  LLVMValueRef b = LLVMBuildFMul(k->b, LLVMBuildFAdd(k->b, pf, LLVMConstReal(k->m->t_f64, 1.0), ""), bin, "");
  a = cg_convert(k, cg_intrinsic(k, "llvm.floor", &a, 1), KN_F64, KN_I64);
  b = cg_convert(k, cg_intrinsic(k, "llvm.ceil", &b, 1), KN_F64, KN_I64);
  *lo = clampi(k, lw_add(k, a, start), 0, size);
  *hi = clampi(k, lw_add(k, b, start), 0, size);
}

static void roi_pool_body(CgKernel *k, LLVMValueRef i, void *user) {
  const RoiPool *rp = user;
  LLVMValueRef r = lw_divc(k, i, rp->C), c = lw_remc(k, i, rp->C);
  LLVMValueRef b = cg_convert(k, cg_load(k, k->in[1], rp->tr, lw_mulc(k, r, 5)), rp->tr, KN_I64);
  LLVMValueRef bad = LLVMBuildOr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, b, cg_i64(k, 0), ""),
                                 LLVMBuildICmp(k->b, LLVMIntSGE, b, cg_i64(k, rp->N), ""), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "roi batch index out of range", b);
  LLVMValueRef x0 = roi_coord(k, rp, r, 1), y0 = roi_coord(k, rp, r, 2);
  LLVMValueRef x1 = roi_coord(k, rp, r, 3), y1 = roi_coord(k, rp, r, 4);
  LLVMValueRef rh = clampi(k, lw_addc(k, lw_sub(k, y1, y0), 1), 1, INT64_MAX);
  LLVMValueRef rw = clampi(k, lw_addc(k, lw_sub(k, x1, x0), 1), 1, INT64_MAX);
  LLVMValueRef bh = LLVMBuildFDiv(k->b, cg_convert(k, rh, KN_I64, KN_F64), LLVMConstReal(k->m->t_f64, (double)rp->PH), "");
  LLVMValueRef bw = LLVMBuildFDiv(k->b, cg_convert(k, rw, KN_I64, KN_F64), LLVMConstReal(k->m->t_f64, (double)rp->PW), "");
  LLVMValueRef xbase = lw_mulc(k, lw_madc(k, b, rp->C, c), rp->H * rp->W);
  KnDtype ct = cg_in_dtype(k, 0) == KN_F64 ? KN_F64 : KN_F32;
  LLVMValueRef acc = cg_var(k, cg_compute_type(k->m, ct), NULL);
  CgLoop lph = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, rp->PH));
  CgLoop lpw = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, rp->PW));
  LLVMValueRef hs, he, ws, we;
  roi_bin(k, lph.i, bh, y0, rp->H, &hs, &he);
  roi_bin(k, lpw.i, bw, x0, rp->W, &ws, &we);
  LLVMValueRef empty = LLVMBuildOr(k->b, LLVMBuildICmp(k->b, LLVMIntSLE, he, hs, ""), LLVMBuildICmp(k->b, LLVMIntSLE, we, ws, ""), "");
  LLVMBuildStore(k->b, cg_select(k, empty, cg_const(k, ct, 0), cg_const(k, ct, -INFINITY)), acc);
  CgLoop lh = cg_loop_begin(k, hs, he);
  CgLoop lw = cg_loop_begin(k, ws, we);
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[0], rp->t, lw_add(k, xbase, lw_madc(k, lh.i, rp->W, lw.i))), rp->t, ct);
  LLVMValueRef cur = lw_loadv(k, cg_compute_type(k->m, ct), acc);
  LLVMBuildStore(k->b, cg_select(k, cg_cmp(k, ct, "gt", v, cur), v, cur), acc);
  cg_loop_end(k, &lw);
  cg_loop_end(k, &lh);
  LLVMValueRef o = lw_madc(k, i, rp->PH * rp->PW, lw_madc(k, lph.i, rp->PW, lpw.i));
  cg_store(k, k->out[0], rp->t, o, cg_convert(k, lw_loadv(k, cg_compute_type(k->m, ct), acc), ct, rp->t));
  cg_loop_end(k, &lpw);
  cg_loop_end(k, &lph);
}

KnStatus cg_lower_max_roi_pool(CgKernel *k) {
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0);
  RoiPool rp = {.t = cg_in_dtype(k, 0), .tr = cg_in_dtype(k, 1)};
  if (!ir_dtype_is_float(rp.t) || !ir_dtype_is_float(rp.tr)) return cg_unsupported(k, "dtype");
  rp.N = x->dims[0].value, rp.C = x->dims[1].value, rp.H = x->dims[2].value, rp.W = x->dims[3].value;
  rp.PH = y->dims[2].value, rp.PW = y->dims[3].value;
  rp.scale = ir_attr_float(k->node, "spatial_scale", 1.0f);
  int64_t n = y->dims[0].value * rp.C;
  if (n * rp.PH * rp.PW == 0) return KN_OK;
  cg_parallel_for(k, n, 1, roi_pool_body, &rp);
  return KN_OK;
}

/* ---- RoiAlign ----------------------------------------------------------------------------- */
typedef struct RoiAlign {
  KnDtype t, tr, tb;
  int64_t N, C, H, W, OH, OW, sampling;
  double scale;
  bool half_pixel, max_mode;
} RoiAlign;

static LLVMValueRef f64c(CgKernel *k, double v) { return LLVMConstReal(k->m->t_f64, v); }
static LLVMValueRef fmax64(CgKernel *k, LLVMValueRef a, LLVMValueRef b) {
  return cg_select(k, LLVMBuildFCmp(k->b, LLVMRealOGT, a, b, ""), a, b);
}

/* Bilinear sample of plane xbase at (y, x), as RoiAlign defines it: zero outside [-1, size],
 * clamped to the last row/column. Returns the weighted sum (avg) or the largest weighted corner (max). */
static LLVMValueRef roi_sample(CgKernel *k, const RoiAlign *ra, LLVMValueRef xbase, LLVMValueRef y, LLVMValueRef x) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef out = LLVMBuildOr(b, LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOLT, y, f64c(k, -1.0), ""),
                                                LLVMBuildFCmp(b, LLVMRealOGT, y, f64c(k, (double)ra->H), ""), ""),
                                 LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOLT, x, f64c(k, -1.0), ""),
                                             LLVMBuildFCmp(b, LLVMRealOGT, x, f64c(k, (double)ra->W), ""), ""), "");
  LLVMValueRef c[2] = {y, x}, lo[2], hi[2], frac[2];
  int64_t size[2] = {ra->H, ra->W};
  for (int d = 0; d < 2; d++) {
    LLVMValueRef v = fmax64(k, c[d], f64c(k, 0.0));
    LLVMValueRef l = cg_convert(k, v, KN_F64, KN_I64);
    LLVMValueRef edge = LLVMBuildICmp(b, LLVMIntSGE, l, cg_i64(k, size[d] - 1), "");
    l = cg_select(k, edge, cg_i64(k, size[d] - 1), l);
    v = cg_select(k, edge, cg_convert(k, l, KN_I64, KN_F64), v);
    lo[d] = l, hi[d] = cg_select(k, edge, l, lw_addc(k, l, 1));
    frac[d] = LLVMBuildFSub(b, v, cg_convert(k, l, KN_I64, KN_F64), "");
  }
  LLVMValueRef ly = frac[0], lx = frac[1];
  LLVMValueRef hy = LLVMBuildFSub(b, f64c(k, 1.0), ly, ""), hx = LLVMBuildFSub(b, f64c(k, 1.0), lx, "");
  LLVMValueRef wts[4] = {LLVMBuildFMul(b, hy, hx, ""), LLVMBuildFMul(b, hy, lx, ""), LLVMBuildFMul(b, ly, hx, ""),
                         LLVMBuildFMul(b, ly, lx, "")};
  LLVMValueRef ys[4] = {lo[0], lo[0], hi[0], hi[0]}, xs[4] = {lo[1], hi[1], lo[1], hi[1]};
  LLVMValueRef r = NULL;
  for (int q = 0; q < 4; q++) {
    LLVMValueRef idx = lw_add(k, xbase, lw_madc(k, ys[q], ra->W, xs[q]));
    LLVMValueRef v = LLVMBuildFMul(b, wts[q], cg_convert(k, cg_load(k, k->in[0], ra->t, idx), ra->t, KN_F64), "");
    r = !r ? v : ra->max_mode ? fmax64(k, r, v) : LLVMBuildFAdd(b, r, v, "");
  }
  return cg_select(k, out, f64c(k, 0.0), r);
}

typedef struct RoiGeom {
  LLVMValueRef start[2], bin[2], grid[2], count;
} RoiGeom;

/* Start, bin size and sampling grid of roi r along y (0) and x (1). */
static RoiGeom roi_geom(CgKernel *k, const RoiAlign *ra, LLVMValueRef r) {
  RoiGeom g;
  int64_t outs[2] = {ra->OH, ra->OW};
  double off = ra->half_pixel ? 0.5 : 0.0;
  for (int d = 0; d < 2; d++) { /* rois rows are [x1, y1, x2, y2] */
    LLVMValueRef a = cg_convert(k, cg_load(k, k->in[1], ra->tr, lw_addc(k, lw_mulc(k, r, 4), 1 - d)), ra->tr, KN_F64);
    LLVMValueRef e = cg_convert(k, cg_load(k, k->in[1], ra->tr, lw_addc(k, lw_mulc(k, r, 4), 3 - d)), ra->tr, KN_F64);
    a = LLVMBuildFSub(k->b, LLVMBuildFMul(k->b, a, f64c(k, ra->scale), ""), f64c(k, off), "");
    e = LLVMBuildFSub(k->b, LLVMBuildFMul(k->b, e, f64c(k, ra->scale), ""), f64c(k, off), "");
    LLVMValueRef len = LLVMBuildFSub(k->b, e, a, "");
    if (!ra->half_pixel) len = fmax64(k, len, f64c(k, 1.0));
    g.start[d] = a;
    g.bin[d] = LLVMBuildFDiv(k->b, len, f64c(k, (double)outs[d]), "");
    if (ra->sampling > 0) g.grid[d] = cg_i64(k, ra->sampling);
    else {
      LLVMValueRef v = cg_intrinsic(k, "llvm.ceil", &g.bin[d], 1);
      g.grid[d] = cg_convert(k, v, KN_F64, KN_I64);
    }
  }
  LLVMValueRef n = lw_mul(k, g.grid[0], g.grid[1]);
  n = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, n, cg_i64(k, 1), ""), cg_i64(k, 1), n);
  g.count = cg_convert(k, n, KN_I64, KN_F64);
  return g;
}

/* Coordinate of sample s of bin p: start + p*bin + (s + 0.5) * bin / grid. */
static LLVMValueRef roi_pos(CgKernel *k, const RoiGeom *g, int d, LLVMValueRef p, LLVMValueRef s) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef base = LLVMBuildFAdd(b, g->start[d], LLVMBuildFMul(b, cg_convert(k, p, KN_I64, KN_F64), g->bin[d], ""), "");
  LLVMValueRef frac = LLVMBuildFAdd(b, cg_convert(k, s, KN_I64, KN_F64), f64c(k, 0.5), "");
  LLVMValueRef step = LLVMBuildFDiv(b, g->bin[d], cg_convert(k, g->grid[d], KN_I64, KN_F64), "");
  return LLVMBuildFAdd(b, base, LLVMBuildFMul(b, frac, step, ""), "");
}

static void roi_align_body(CgKernel *k, LLVMValueRef i, void *user) {
  const RoiAlign *ra = user;
  LLVMValueRef r = lw_divc(k, i, ra->C), c = lw_remc(k, i, ra->C);
  LLVMValueRef bi = cg_convert(k, cg_load(k, k->in[2], ra->tb, r), ra->tb, KN_I64);
  LLVMValueRef bad = LLVMBuildOr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, bi, cg_i64(k, 0), ""),
                                 LLVMBuildICmp(k->b, LLVMIntSGE, bi, cg_i64(k, ra->N), ""), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "batch index out of range", bi);
  RoiGeom g = roi_geom(k, ra, r);
  LLVMValueRef xbase = lw_mulc(k, lw_madc(k, bi, ra->C, c), ra->H * ra->W);
  LLVMValueRef acc = cg_var(k, k->m->t_f64, NULL), first = cg_var(k, k->m->t_i1, NULL);
  CgLoop lph = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, ra->OH));
  CgLoop lpw = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, ra->OW));
  LLVMBuildStore(k->b, f64c(k, 0.0), acc);
  LLVMBuildStore(k->b, LLVMConstInt(k->m->t_i1, 1, 0), first);
  CgLoop ly = cg_loop_begin(k, cg_i64(k, 0), g.grid[0]);
  LLVMValueRef yy = roi_pos(k, &g, 0, lph.i, ly.i);
  CgLoop lx = cg_loop_begin(k, cg_i64(k, 0), g.grid[1]);
  LLVMValueRef v = roi_sample(k, ra, xbase, yy, roi_pos(k, &g, 1, lpw.i, lx.i));
  LLVMValueRef cur = lw_loadv(k, k->m->t_f64, acc);
  if (ra->max_mode) {
    LLVMValueRef f = lw_loadv(k, k->m->t_i1, first);
    v = cg_select(k, f, v, fmax64(k, cur, v));
  } else v = LLVMBuildFAdd(k->b, cur, v, "");
  LLVMBuildStore(k->b, v, acc);
  LLVMBuildStore(k->b, LLVMConstInt(k->m->t_i1, 0, 0), first);
  cg_loop_end(k, &lx);
  cg_loop_end(k, &ly);
  LLVMValueRef res = lw_loadv(k, k->m->t_f64, acc);
  if (!ra->max_mode) res = LLVMBuildFDiv(k->b, res, g.count, "");
  LLVMValueRef o = lw_madc(k, i, ra->OH * ra->OW, lw_madc(k, lph.i, ra->OW, lpw.i));
  cg_store(k, k->out[0], ra->t, o, cg_convert(k, res, KN_F64, ra->t));
  cg_loop_end(k, &lpw);
  cg_loop_end(k, &lph);
}

KnStatus cg_lower_roi_align(CgKernel *k) {
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0);
  const KnNode *n = k->node;
  RoiAlign ra = {.t = cg_in_dtype(k, 0), .tr = cg_in_dtype(k, 1), .tb = cg_in_dtype(k, 2)};
  if (!ir_dtype_is_float(ra.t) || !ir_dtype_is_float(ra.tr) || !ir_dtype_is_int(ra.tb)) return cg_unsupported(k, "dtype");
  ra.N = x->dims[0].value, ra.C = x->dims[1].value, ra.H = x->dims[2].value, ra.W = x->dims[3].value;
  ra.OH = y->dims[2].value, ra.OW = y->dims[3].value;
  ra.sampling = ir_attr_int(n, "sampling_ratio", 0);
  ra.scale = ir_attr_float(n, "spatial_scale", 1.0f);
  const char *mode = ir_attr_string(n, "mode", "avg");
  if (strcmp(mode, "avg") && strcmp(mode, "max")) return cg_unsupported(k, "mode must be avg or max");
  ra.max_mode = !strcmp(mode, "max");
  /* Opset 16 added coordinate_transformation_mode (default half_pixel); before, the output_half_pixel behaviour. */
  const char *ctm = ir_attr_string(n, "coordinate_transformation_mode", n->opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel")) return cg_unsupported(k, "coordinate_transformation_mode");
  ra.half_pixel = !strcmp(ctm, "half_pixel");
  int64_t cnt = y->dims[0].value * ra.C;
  if (cnt * ra.OH * ra.OW == 0) return KN_OK;
  if (ra.H == 0 || ra.W == 0) return cg_unsupported(k, "empty input planes");
  cg_parallel_for(k, cnt, 1, roi_align_body, &ra);
  return KN_OK;
}
