/* lower_conv_dw.c - f32 depthwise Conv and MaxPool / AveragePool (1-D and 2-D) at -O1 and up: one
 * (image, channel) plane per parallel iteration, each output row cut into vectors along its width,
 * every window tap one vector load (two and a de-interleave for stride 2, a gather for larger
 * strides) folded into the accumulator: an FMA with the tap's weight, which stays in a register for
 * the whole plane, a max or a sum. Conv's epilogue (bias as the start value, residual, Relu/Clip)
 * runs on the accumulator before its single store; AveragePool divides by the window's count. Taps
 * are folded in the plain loops' order, so results match -O0 bit for bit. */
#include "codegen/lower_conv_dw.h"

#include <math.h>

#define DW_MAX_TAPS 64 /* the taps are unrolled: larger kernels keep the generic loop */
#define DW_MAX_LANES 64

typedef enum DwKind { DW_CONV, DW_MAX, DW_AVG } DwKind;

/* The plane geometry, fixed at compile time. Rows [r0, r1) have every kernel row inside the input
 * (no tests); vectors [c0, c1) of a row read and write only inside the row (no masks). */
typedef struct Dw {
  DwKind kind;
  const CgDepthwise *d;  /* DW_CONV: the conv */
  int ix;                /* the input read */
  int64_t C;             /* channels (a plane's weights: plane % C) */
  int64_t *cnt_h;        /* DW_AVG: the divisor's factor per output row, and per output column */
  float *cnt_w;
  int L;
  int64_t IH, IW, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw;
  int64_t r0, r1, c0, c1, nch;
} Dw;

/* Values of the current plane, inside the parallel body. */
typedef struct DwPlane {
  LLVMValueRef x, y, r;          /* plane pointers: input, output, residual (NULL: none) */
  LLVMValueRef wt[DW_MAX_TAPS];  /* the weights, splatted */
  LLVMValueRef init;             /* the accumulator's start: bias (or 0), -inf, 0 */
  LLVMValueRef fill;             /* what a tap outside the input reads: 0 or -inf */
  LLVMValueRef cnt_h, cnt_w;     /* DW_AVG: the tables of Dw.cnt_h / cnt_w */
} DwPlane;

/* One output row: per kernel row its input row pointer and, in the edge rows, whether it is inside. */
typedef struct DwRow {
  LLVMValueRef xrow[DW_MAX_TAPS], ok[DW_MAX_TAPS];
  LLVMValueRef yrow, rrow;
  LLVMValueRef cnt;              /* DW_AVG: the row's factor of the divisor, splatted */
} DwRow;

static LLVMTypeRef vtype(CgKernel *k, const Dw *w) { return LLVMVectorType(k->m->t_f32, (unsigned)w->L); }

/* p + idx f32 elements; not inbounds: the row of a skipped kernel row may lie outside the plane. */
static LLVMValueRef fgep(CgKernel *k, LLVMValueRef p, LLVMValueRef idx) {
  return LLVMBuildGEP2(k->b, k->m->t_f32, p, &idx, 1, "");
}

static LLVMValueRef splat(CgKernel *k, const Dw *w, LLVMValueRef x) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)w->L);
  LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), x, cg_i32(k, 0), "");
  return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)w->L)), "");
}

/* <first, first + step, ...> as an i32 vector constant. */
static LLVMValueRef lane_ids(CgKernel *k, const Dw *w, int64_t first, int64_t step) {
  LLVMValueRef ids[DW_MAX_LANES];
  for (int j = 0; j < w->L; j++) ids[j] = cg_i32(k, (int32_t)(first + j * step));
  return LLVMConstVector(ids, (unsigned)w->L);
}

/* Lanes j with 0 <= base + off + j*step < limit (base an i64 that fits i32). */
static LLVMValueRef range_mask(CgKernel *k, const Dw *w, LLVMValueRef base, int64_t off, int64_t step, int64_t limit) {
  LLVMValueRef b32 = LLVMBuildTrunc(k->b, base, k->m->t_i32, "");
  LLVMValueRef c = LLVMBuildAdd(k->b, splat(k, w, b32), lane_ids(k, w, off, step), "");
  LLVMValueRef lo = LLVMBuildICmp(k->b, LLVMIntSGE, c, LLVMConstNull(LLVMTypeOf(c)), "");
  LLVMValueRef hi = LLVMBuildICmp(k->b, LLVMIntSLT, c, splat(k, w, cg_i32(k, (int32_t)limit)), "");
  return LLVMBuildAnd(k->b, lo, hi, "");
}

/* A call to the masked memory intrinsic name, overloaded on the vector and the pointer type. */
static LLVMValueRef masked_op(CgKernel *k, const Dw *w, const char *name, LLVMTypeRef pt, LLVMValueRef *args) {
  LLVMTypeRef ov[2] = {vtype(k, w), pt};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2);
  return LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), fn, args, 4, "");
}

/* L floats at p; lanes off in mask (NULL: all on) read as fill (NULL: 0) and touch no memory. */
static LLVMValueRef load_vec(CgKernel *k, const Dw *w, LLVMValueRef p, LLVMValueRef mask, LLVMValueRef fill) {
  if (!mask) {
    LLVMValueRef v = LLVMBuildLoad2(k->b, vtype(k, w), p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef args[4] = {p, cg_i32(k, 4), mask, fill ? fill : LLVMConstNull(vtype(k, w))};
  return masked_op(k, w, "llvm.masked.load", k->m->t_ptr, args);
}

static void store_vec(CgKernel *k, const Dw *w, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
  if (!mask) {
    LLVMSetAlignment(LLVMBuildStore(k->b, v, p), 4);
    return;
  }
  LLVMValueRef args[4] = {v, p, cg_i32(k, 4), mask};
  masked_op(k, w, "llvm.masked.store", k->m->t_ptr, args);
}

/* The inputs of one tap for L consecutive outputs: xrow[col0 + j*sw], fill outside the row when masked. */
static LLVMValueRef tap_vec(CgKernel *k, const Dw *w, LLVMValueRef xrow, LLVMValueRef col0, LLVMValueRef fill, bool masked) {
  LLVMValueRef p = fgep(k, xrow, col0);
  if (w->sw == 1) return load_vec(k, w, p, masked ? range_mask(k, w, col0, 0, 1, w->IW) : NULL, fill);
  if (w->sw == 2) { /* two vectors of consecutive columns, then their even lanes */
    LLVMValueRef a = load_vec(k, w, p, masked ? range_mask(k, w, col0, 0, 1, w->IW) : NULL, fill);
    LLVMValueRef b = load_vec(k, w, fgep(k, p, cg_i64(k, w->L)), masked ? range_mask(k, w, col0, w->L, 1, w->IW) : NULL, fill);
    return LLVMBuildShuffleVector(k->b, a, b, lane_ids(k, w, 0, 2), "");
  }
  LLVMValueRef ptrs = LLVMBuildGEP2(k->b, k->m->t_f32, p, (LLVMValueRef[]){lane_ids(k, w, 0, w->sw)}, 1, "");
  LLVMValueRef ones[DW_MAX_LANES];
  for (int j = 0; j < w->L; j++) ones[j] = LLVMConstInt(k->m->t_i1, 1, 0);
  LLVMValueRef mask = masked ? range_mask(k, w, col0, 0, w->sw, w->IW) : LLVMConstVector(ones, (unsigned)w->L);
  LLVMValueRef args[4] = {ptrs, cg_i32(k, 4), mask, fill};
  return masked_op(k, w, "llvm.masked.gather", LLVMTypeOf(ptrs), args);
}

/* Folds tap x (weight wt) into a the way the plain loops do: FMA, greater-than select, sum. */
static LLVMValueRef fold(CgKernel *k, const Dw *w, LLVMValueRef wt, LLVMValueRef x, LLVMValueRef a) {
  if (w->kind == DW_MAX) return LLVMBuildSelect(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, x, a, ""), x, a, "");
  if (w->kind == DW_AVG) return LLVMBuildFAdd(k->b, a, x, "");
  LLVMValueRef args[3] = {wt, x, a};
  return cg_intrinsic(k, "llvm.fmuladd", args, 3);
}

/* Conv: residual, then Relu/Clip (llvm.maximum/minimum: NaN stays NaN, as ONNX says); AveragePool:
 * the division by the window's count. */
static LLVMValueRef epilogue(CgKernel *k, const Dw *w, const DwPlane *pl, const DwRow *row, LLVMValueRef ow0,
                             LLVMValueRef omask, LLVMValueRef v) {
  if (w->kind == DW_AVG) {
    LLVMValueRef one = splat(k, w, LLVMConstReal(k->m->t_f32, 1.0));
    LLVMValueRef cw = load_vec(k, w, fgep(k, pl->cnt_w, ow0), omask, one);
    return LLVMBuildFDiv(k->b, v, LLVMBuildFMul(k->b, row->cnt, cw, ""), "");
  }
  if (w->kind != DW_CONV) return v;
  const CgDepthwise *d = w->d;
  if (row->rrow) v = LLVMBuildFAdd(k->b, v, load_vec(k, w, fgep(k, row->rrow, ow0), omask, NULL), "");
  if (d->act == CG_ACT_NONE) return v;
  LLVMValueRef args[2] = {v, splat(k, w, LLVMConstReal(k->m->t_f32, d->act == CG_ACT_RELU ? 0.0 : d->lo))};
  v = cg_intrinsic(k, "llvm.maximum", args, 2);
  if (d->act != CG_ACT_CLIP) return v;
  LLVMValueRef hi[2] = {v, splat(k, w, LLVMConstReal(k->m->t_f32, d->hi))};
  return cg_intrinsic(k, "llvm.minimum", hi, 2);
}

/* Outputs [ow0, ow0 + L) of one row; masked: the vector crosses the padding or the row's end. */
static void emit_chunk(CgKernel *k, const Dw *w, const DwPlane *pl, const DwRow *row, LLVMValueRef ow0, bool masked) {
  LLVMTypeRef vt = vtype(k, w);
  LLVMValueRef acc = cg_var(k, vt, pl->init);
  LLVMValueRef colb = lw_addc(k, lw_mulc(k, ow0, w->sw), -w->pw);
  for (int64_t kh = 0; kh < w->KH; kh++) {
    CgIf ci;
    if (row->ok[kh]) ci = cg_if_begin(k, row->ok[kh]);
    LLVMValueRef a = LLVMBuildLoad2(k->b, vt, acc, "");
    for (int64_t kw = 0; kw < w->KW; kw++) {
      LLVMValueRef x = tap_vec(k, w, row->xrow[kh], lw_addc(k, colb, kw * w->dw), pl->fill, masked);
      a = fold(k, w, pl->wt[kh * w->KW + kw], x, a);
    }
    LLVMBuildStore(k->b, a, acc);
    if (row->ok[kh]) cg_if_end(k, &ci);
  }
  LLVMValueRef omask = masked ? range_mask(k, w, ow0, 0, 1, w->OW) : NULL;
  LLVMValueRef v = epilogue(k, w, pl, row, ow0, omask, LLVMBuildLoad2(k->b, vt, acc, ""));
  store_vec(k, w, v, fgep(k, row->yrow, ow0), omask);
}

static void emit_chunks(CgKernel *k, const Dw *w, const DwPlane *pl, const DwRow *row, int64_t a, int64_t b, bool masked) {
  if (a >= b) return;
  CgLoop l = cg_loop_begin(k, cg_i64(k, a), cg_i64(k, b));
  emit_chunk(k, w, pl, row, lw_mulc(k, l.i, w->L), masked);
  cg_loop_end(k, &l);
}

/* Output rows [a, b); checked: some kernel rows may fall outside the input and are tested. */
static void emit_rows(CgKernel *k, const Dw *w, const DwPlane *pl, int64_t a, int64_t b, bool checked) {
  if (a >= b) return;
  CgLoop l = cg_loop_begin(k, cg_i64(k, a), cg_i64(k, b));
  DwRow row = {.yrow = fgep(k, pl->y, lw_mulc(k, l.i, w->OW))};
  row.rrow = pl->r ? fgep(k, pl->r, lw_mulc(k, l.i, w->OW)) : NULL;
  if (w->kind == DW_AVG) row.cnt = splat(k, w, cg_convert(k, lw_i64_at(k, pl->cnt_h, l.i), KN_I64, KN_F32));
  LLVMValueRef ih0 = lw_addc(k, lw_mulc(k, l.i, w->sh), -w->ph);
  for (int64_t kh = 0; kh < w->KH; kh++) {
    LLVMValueRef ih = lw_addc(k, ih0, kh * w->dh);
    row.xrow[kh] = fgep(k, pl->x, lw_mulc(k, ih, w->IW));
    row.ok[kh] = NULL;
    if (checked)
      row.ok[kh] = LLVMBuildAnd(k->b, LLVMBuildICmp(k->b, LLVMIntSGE, ih, cg_i64(k, 0), ""),
                                LLVMBuildICmp(k->b, LLVMIntSLT, ih, cg_i64(k, w->IH), ""), "");
  }
  emit_chunks(k, w, pl, &row, 0, w->c0, true);
  emit_chunks(k, w, pl, &row, w->c0, w->c1, false);
  emit_chunks(k, w, pl, &row, w->c1, w->nch, true);
  lw_loop_end_nounroll(k, &l);
}

/* A private constant f32 array. */
static LLVMValueRef f32_table(CgKernel *k, const float *vals, int64_t n) {
  return lw_bytes_table(k, vals, (size_t)n * sizeof *vals, 4, "ftab");
}

/* Plane i = image * C + channel. */
static void dw_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Dw *w = user;
  const CgDepthwise *d = w->d;
  DwPlane pl = {.x = fgep(k, k->in[w->ix], lw_mulc(k, i, w->IH * w->IW))};
  pl.y = fgep(k, k->out[0], lw_mulc(k, i, w->OH * w->OW));
  LLVMTypeRef vt = vtype(k, w);
  pl.init = pl.fill = LLVMConstNull(vt);
  if (w->kind == DW_MAX) pl.init = pl.fill = splat(k, w, LLVMConstReal(k->m->t_f32, -INFINITY));
  if (w->kind == DW_AVG) pl.cnt_h = lw_table(k, w->cnt_h, w->OH), pl.cnt_w = f32_table(k, w->cnt_w, w->OW);
  if (w->kind == DW_CONV) {
    pl.r = d->ir >= 0 ? fgep(k, k->in[d->ir], lw_mulc(k, i, w->OH * w->OW)) : NULL;
    LLVMValueRef c = lw_remc(k, i, w->C);
    int64_t taps = w->KH * w->KW;
    for (int64_t t = 0; t < taps; t++)
      pl.wt[t] = splat(k, w, cg_load(k, k->in[d->iw], KN_F32, lw_madc(k, c, taps, cg_i64(k, t))));
    if (d->ib >= 0) pl.init = splat(k, w, cg_load(k, k->in[d->ib], KN_F32, c));
  }
  emit_rows(k, w, &pl, 0, w->r0, true);
  emit_rows(k, w, &pl, w->r0, w->r1, false);
  emit_rows(k, w, &pl, w->r1, w->OH, true);
}

/* [first, last] of the indices in [0, n) where ok holds (an interval), as [*a, *b); none: n, n. */
static void interval(const Dw *w, int64_t n, bool (*ok)(const Dw *, int64_t), int64_t *a, int64_t *b) {
  *a = *b = n;
  for (int64_t i = 0; i < n; i++)
    if (ok(w, i)) {
      if (*a == n) *a = i;
      *b = i + 1;
    }
}

static bool row_inside(const Dw *w, int64_t oh) {
  int64_t ih = oh * w->sh - w->ph;
  return ih >= 0 && ih + (w->KH - 1) * w->dh <= w->IH - 1;
}

static bool chunk_inside(const Dw *w, int64_t j) {
  int64_t ow0 = j * w->L, col = ow0 * w->sw - w->pw;
  int64_t span = w->sw == 2 ? 2 * (int64_t)w->L - 1 : (w->L - 1) * w->sw; /* stride 2 reads two whole vectors */
  return ow0 + w->L <= w->OW && col >= 0 && col + (w->KW - 1) * w->dw + span <= w->IW - 1;
}

/* Fills the geometry of w from window lw; false when the kernel does not handle it. */
static bool dw_setup(CgKernel *k, const LwWindow *lw, Dw *w) {
  if (lw->nsp > 2 || lw->k[0] != 1 || lw->in[0] != 1 || lw->out[0] != 1) return false;
  w->IH = lw->in[1], w->IW = lw->in[2], w->OH = lw->out[1], w->OW = lw->out[2], w->KH = lw->k[1], w->KW = lw->k[2];
  w->sh = lw->s[1], w->sw = lw->s[2], w->dh = lw->d[1], w->dw = lw->d[2], w->ph = lw->pb[1], w->pw = lw->pb[2];
  if (w->KH > DW_MAX_TAPS || w->KW > DW_MAX_TAPS || w->KH * w->KW > DW_MAX_TAPS) return false;
  if (w->OH < 1 || w->OW < 1 || w->IH < 1 || w->IW < 1) return false;
  w->L = k->m->vec_lanes > 0 ? k->m->vec_lanes : 4;
  if (w->L > DW_MAX_LANES) w->L = DW_MAX_LANES;
  while (w->L > 4 && w->OW <= w->L / 2) w->L /= 2; /* narrow rows (7 wide): half-width vectors */
  /* the masks' column arithmetic is in i32 */
  const int64_t lim = (int64_t)1 << 30;
  if (w->IW >= lim || w->sw >= lim / 4 || w->OW >= lim / 4 / w->sw || w->KW * w->dw >= lim / 4 || w->pw >= lim / 4)
    return false;
  interval(w, w->OH, row_inside, &w->r0, &w->r1);
  w->nch = (w->OW + w->L - 1) / w->L;
  interval(w, w->nch, chunk_inside, &w->c0, &w->c1);
  return true;
}

static void dw_emit(CgKernel *k, Dw *w, int64_t planes) {
  int64_t work = w->OH * w->OW * w->KH * w->KW;
  cg_parallel_for(k, planes, work >= 16384 ? 1 : 16384 / work, dw_body, w);
}

bool cg_try_depthwise(CgKernel *k, const CgDepthwise *d) {
  Dw w = {.kind = DW_CONV, .d = d, .ix = d->ix, .C = d->C};
  if (d->N < 1 || d->C < 1 || !dw_setup(k, &d->w, &w)) return false;
  dw_emit(k, &w, d->N * d->C);
  return true;
}

/* Taps of dim i (1: H, 2: W) at output o that count for AveragePool: inside the input, or with
 * include_pad inside the padded input [-pb, in + pe). */
static int64_t avg_count(const LwWindow *lw, int i, int64_t o, bool include_pad) {
  int64_t lo, hi, n = 0;
  if (!include_pad) {
    lw_taps(lw, i, o, &lo, &hi);
    return hi - lo;
  }
  for (int64_t t = 0; t < lw->k[i]; t++) {
    int64_t c = o * lw->s[i] - lw->pb[i] + t * lw->d[i];
    n += c >= -lw->pb[i] && c < lw->in[i] + lw->pe[i];
  }
  return n;
}

bool cg_try_pool_rows(CgKernel *k, const LwWindow *lw, int64_t planes, bool is_max, bool include_pad) {
  Dw w = {.kind = is_max ? DW_MAX : DW_AVG, .ix = 0};
  if (planes < 1 || !dw_setup(k, lw, &w)) return false;
  if (!is_max) {
    w.cnt_h = calloc((size_t)w.OH, sizeof *w.cnt_h);
    w.cnt_w = calloc((size_t)w.OW, sizeof *w.cnt_w);
    if (!w.cnt_h || !w.cnt_w) {
      free(w.cnt_h), free(w.cnt_w);
      return false;
    }
    for (int64_t o = 0; o < w.OH; o++) w.cnt_h[o] = avg_count(lw, 1, o, include_pad);
    for (int64_t o = 0; o < w.OW; o++) w.cnt_w[o] = (float)avg_count(lw, 2, o, include_pad);
  }
  dw_emit(k, &w, planes);
  free(w.cnt_h), free(w.cnt_w);
  return true;
}
