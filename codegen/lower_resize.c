/* lower_resize.c - Resize, Upsample and GridSample: each output element is a weighted sum over
 * per-axis "taps" (1 for nearest, 2 linear, 4 cubic) computed at run time, so scales and roi
 * that are only known at run time work too; axes that provably map x -> x take no taps. */
#include <string.h>

#include "codegen/lower_seq.h"

#define MAX_RANK 8

typedef enum Mode { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC } Mode;
typedef enum Ctm {
  CTM_HALF_PIXEL, CTM_PYTORCH_HALF_PIXEL, CTM_ALIGN_CORNERS, CTM_ASYMMETRIC, CTM_TF_HALF_PIXEL_NN,
  CTM_TF_CROP_AND_RESIZE,
} Ctm;
typedef enum Nearest { NR_PREFER_FLOOR, NR_PREFER_CEIL, NR_FLOOR, NR_CEIL, NR_SIMPLE } Nearest;
typedef enum Pad { PAD_ZEROS, PAD_BORDER, PAD_REFLECTION } Pad;

typedef struct Axis {
  int64_t in, out, in_stride;
  bool active;             /* takes taps (else output coordinate == input coordinate) */
  bool scale_const;
  double scale;
  LLVMValueRef idx, w;     /* [4 x i64], [4 x double] tap arrays in the current body */
} Axis;

typedef struct Interp {
  bool grid;               /* GridSample, else Resize/Upsample */
  Mode mode;
  Ctm ctm;
  Nearest nearest;
  Pad pad;
  bool align_corners, exclude_outside;
  double cubic_a, extrapolation;
  int scales_in, roi_in;   /* input positions, -1 when absent */
  int r;                   /* rank of X */
  int first_axis;          /* first axis that can take taps (GridSample: 2) */
  Axis ax[MAX_RANK];
  int64_t out_dims[MAX_RANK];
  KnDtype t, gt;           /* X / Y dtype, grid dtype */
  LLVMValueRef extrap;     /* i1 var: this element is extrapolated (tf_crop_and_resize) */
} Interp;

static int ntaps(Mode m) { return m == MODE_NEAREST ? 1 : m == MODE_LINEAR ? 2 : 4; }

static LLVMValueRef dconst(CgKernel *k, double v) { return LLVMConstReal(k->m->t_f64, v); }

static LLVMValueRef floor_of(CgKernel *k, LLVMValueRef x) { return cg_intrinsic(k, "llvm.floor", &x, 1); }

static LLVMValueRef to_i64(CgKernel *k, LLVMValueRef x) { return cg_convert(k, x, KN_F64, KN_I64); }

static LLVMValueRef clamp_i64(CgKernel *k, LLVMValueRef i, int64_t hi) {
  return cg_min(k, KN_I64, cg_max(k, KN_I64, i, cg_i64(k, 0)), cg_i64(k, hi));
}

static void set_tap(CgKernel *k, const Axis *a, int j, LLVMValueRef idx, LLVMValueRef w) {
  LLVMTypeRef ti = LLVMArrayType2(k->m->t_i64, 4), tw = LLVMArrayType2(k->m->t_f64, 4);
  LLVMValueRef gi[2] = {cg_i64(k, 0), cg_i64(k, j)};
  LLVMBuildStore(k->b, idx, LLVMBuildInBoundsGEP2(k->b, ti, a->idx, gi, 2, ""));
  LLVMBuildStore(k->b, w, LLVMBuildInBoundsGEP2(k->b, tw, a->w, gi, 2, ""));
}

/* Keys' cubic convolution weights of the 4 taps around a point at fraction t. */
static void cubic_coeffs(CgKernel *k, double A, LLVMValueRef t, LLVMValueRef c[4]) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef one = dconst(k, 1), two = dconst(k, 2), a = dconst(k, A);
  LLVMValueRef ap2 = dconst(k, A + 2), ap3 = dconst(k, A + 3);
  LLVMValueRef xs[4] = {LLVMBuildFAdd(b, t, one, ""), t, LLVMBuildFSub(b, one, t, ""), LLVMBuildFSub(b, two, t, "")};
  for (int i = 0; i < 4; i++) {
    LLVMValueRef x = xs[i];
    if (i == 0 || i == 3) { /* ((A x - 5A) x + 8A) x - 4A for 1 <= x < 2 */
      LLVMValueRef v = LLVMBuildFSub(b, LLVMBuildFMul(b, a, x, ""), dconst(k, 5 * A), "");
      v = LLVMBuildFAdd(b, LLVMBuildFMul(b, v, x, ""), dconst(k, 8 * A), "");
      c[i] = LLVMBuildFSub(b, LLVMBuildFMul(b, v, x, ""), dconst(k, 4 * A), "");
    } else { /* ((A+2) x - (A+3)) x^2 + 1 for x < 1 */
      LLVMValueRef v = LLVMBuildFSub(b, LLVMBuildFMul(b, ap2, x, ""), ap3, "");
      c[i] = LLVMBuildFAdd(b, LLVMBuildFMul(b, v, LLVMBuildFMul(b, x, x, ""), ""), one, "");
    }
  }
}

/* x reflected by the nearer border until it lies in [lo, hi] (ONNX's GridSample reference). */
static LLVMValueRef reflect(CgKernel *k, LLVMValueRef x, double lo, double hi) {
  LLVMBuilderRef b = k->b;
  double rng = hi - lo;
  if (rng <= 0) return dconst(k, lo);
  LLVMValueRef below = LLVMBuildFCmp(b, LLVMRealOLT, x, dconst(k, lo), "");
  LLVMValueRef above = LLVMBuildFCmp(b, LLVMRealOGT, x, dconst(k, hi), "");
  LLVMValueRef dx = cg_select(k, below, LLVMBuildFSub(b, dconst(k, lo), x, ""), LLVMBuildFSub(b, x, dconst(k, hi), ""));
  LLVMValueRef n = to_i64(k, LLVMBuildFDiv(b, dx, dconst(k, rng), ""));
  LLVMValueRef r = LLVMBuildFSub(b, dx, LLVMBuildFMul(b, LLVMBuildSIToFP(b, n, k->m->t_f64, ""), dconst(k, rng), ""), "");
  LLVMValueRef even = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, n, cg_i64(k, 1), ""), cg_i64(k, 0), "");
  LLVMValueRef from_lo = LLVMBuildFAdd(b, dconst(k, lo), r, ""), from_hi = LLVMBuildFSub(b, dconst(k, hi), r, "");
  LLVMValueRef vb = cg_select(k, even, from_lo, from_hi), va = cg_select(k, even, from_hi, from_lo);
  return cg_select(k, below, vb, cg_select(k, above, va, x));
}

/* ---- Resize coordinates ------------------------------------------------------------------- */
static LLVMValueRef load_f64(CgKernel *k, int input, LLVMValueRef idx) {
  KnDtype t = cg_in_dtype(k, input);
  return cg_convert(k, cg_load(k, k->in[input], t, idx), t, KN_F64);
}

/* The input coordinate of output coordinate od on axis d. */
static LLVMValueRef resize_coord(CgKernel *k, const Interp *p, int d, LLVMValueRef od) {
  LLVMBuilderRef b = k->b;
  const Axis *a = &p->ax[d];
  LLVMValueRef xr = LLVMBuildSIToFP(b, od, k->m->t_f64, ""), half = dconst(k, 0.5);
  LLVMValueRef s = a->scale_const ? dconst(k, a->scale) : load_f64(k, p->scales_in, cg_i64(k, d));
  /* the reference divides by the unrounded resized length in * scale, not the output dim */
  double in1 = (double)(a->in - 1);
  LLVMValueRef lr = LLVMBuildFMul(b, dconst(k, (double)a->in), s, "");
  LLVMValueRef lr1 = LLVMBuildFSub(b, lr, dconst(k, 1), "");
  LLVMValueRef hp = LLVMBuildFSub(b, LLVMBuildFDiv(b, LLVMBuildFAdd(b, xr, half, ""), s, ""), half, "");
  switch (p->ctm) {
  case CTM_HALF_PIXEL: return hp;
  case CTM_PYTORCH_HALF_PIXEL: return cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, lr, dconst(k, 1), ""), hp, dconst(k, 0));
  case CTM_ALIGN_CORNERS: {
    LLVMValueRef v = LLVMBuildFDiv(b, LLVMBuildFMul(b, xr, dconst(k, in1), ""), lr1, "");
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOEQ, lr, dconst(k, 1), ""), dconst(k, 0), v);
  }
  case CTM_ASYMMETRIC: return LLVMBuildFDiv(b, xr, s, "");
  case CTM_TF_HALF_PIXEL_NN: return LLVMBuildFDiv(b, LLVMBuildFAdd(b, xr, half, ""), s, "");
  case CTM_TF_CROP_AND_RESIZE: {
    LLVMValueRef st = load_f64(k, p->roi_in, cg_i64(k, d)), en = load_f64(k, p->roi_in, cg_i64(k, p->r + d));
    LLVMValueRef mid = LLVMBuildFMul(b, LLVMBuildFMul(b, half, LLVMBuildFAdd(b, st, en, ""), ""), dconst(k, in1), "");
    LLVMValueRef span = LLVMBuildFDiv(b, LLVMBuildFMul(b, LLVMBuildFSub(b, en, st, ""), dconst(k, in1), ""), lr1, "");
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, st, dconst(k, in1), ""), LLVMBuildFMul(b, xr, span, ""), "");
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, lr, dconst(k, 1), ""), v, mid);
  }
  }
  return xr;
}

/* The nearest input index of x by the node's nearest_mode. */
static LLVMValueRef nearest_index(CgKernel *k, const Interp *p, int d, LLVMValueRef x) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef f = floor_of(k, x), frac = LLVMBuildFSub(b, x, f, "");
  LLVMValueRef up = LLVMBuildFAdd(b, f, dconst(k, 1), ""), r;
  switch (p->nearest) {
  case NR_PREFER_FLOOR: r = cg_select(k, LLVMBuildFCmp(b, LLVMRealOLE, frac, dconst(k, 0.5), ""), f, up); break;
  case NR_PREFER_CEIL: r = cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, frac, dconst(k, 0.5), ""), f, up); break;
  case NR_FLOOR: r = f; break;
  case NR_CEIL: r = cg_intrinsic(k, "llvm.ceil", &x, 1); break;
  default: { /* Resize-10 / Upsample: downsampling rounds up, upsampling truncates */
    const Axis *a = &p->ax[d];
    LLVMValueRef s = a->scale_const ? dconst(k, a->scale) : load_f64(k, p->scales_in, cg_i64(k, d));
    LLVMValueRef down = LLVMBuildFCmp(b, LLVMRealOLT, s, dconst(k, 1), "");
    r = cg_select(k, down, cg_intrinsic(k, "llvm.ceil", &x, 1), cg_intrinsic(k, "llvm.trunc", &x, 1));
  }
  }
  return to_i64(k, r);
}

/* Fills axis d's taps for output coordinate od (Resize). */
static void resize_taps(CgKernel *k, const Interp *p, int d, LLVMValueRef od) {
  LLVMBuilderRef b = k->b;
  const Axis *a = &p->ax[d];
  LLVMValueRef x = resize_coord(k, p, d, od);
  if (p->ctm == CTM_TF_CROP_AND_RESIZE) {
    LLVMValueRef out = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealULT, x, dconst(k, 0), ""),
                                   LLVMBuildFCmp(b, LLVMRealUGT, x, dconst(k, (double)(a->in - 1)), ""), "");
    LLVMBuildStore(b, LLVMBuildOr(b, LLVMBuildLoad2(b, k->m->t_i1, p->extrap, ""), out, ""), p->extrap);
  }
  if (p->mode == MODE_NEAREST) {
    set_tap(k, a, 0, clamp_i64(k, nearest_index(k, p, d, x), a->in - 1), dconst(k, 1));
    return;
  }
  LLVMValueRef f = floor_of(k, x), t = LLVMBuildFSub(b, x, f, ""), i0 = to_i64(k, f);
  if (p->mode == MODE_LINEAR) {
    set_tap(k, a, 0, clamp_i64(k, i0, a->in - 1), LLVMBuildFSub(b, dconst(k, 1), t, ""));
    set_tap(k, a, 1, clamp_i64(k, LLVMBuildAdd(b, i0, cg_i64(k, 1), ""), a->in - 1), t);
    return;
  }
  LLVMValueRef c[4], sum = dconst(k, 0), idx[4];
  cubic_coeffs(k, p->cubic_a, t, c);
  for (int j = 0; j < 4; j++) {
    idx[j] = LLVMBuildAdd(b, i0, cg_i64(k, j - 1), "");
    if (p->exclude_outside) { /* outside taps weigh 0; the rest are renormalized below */
      LLVMValueRef in = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, idx[j], cg_i64(k, 0), ""),
                                     LLVMBuildICmp(b, LLVMIntSLT, idx[j], cg_i64(k, a->in), ""), "");
      c[j] = cg_select(k, in, c[j], dconst(k, 0));
    }
    sum = LLVMBuildFAdd(b, sum, c[j], "");
  }
  for (int j = 0; j < 4; j++) {
    LLVMValueRef w = p->exclude_outside ? LLVMBuildFDiv(b, c[j], sum, "") : c[j];
    set_tap(k, a, j, clamp_i64(k, idx[j], a->in - 1), w);
  }
}

/* ---- GridSample coordinates --------------------------------------------------------------- */
/* The input index of tap i under the padding mode; zeros padding zeroes the weight instead. */
static void grid_tap(CgKernel *k, const Interp *p, const Axis *a, int j, LLVMValueRef i, LLVMValueRef w) {
  LLVMBuilderRef b = k->b;
  int64_t n = a->in;
  if (p->pad == PAD_ZEROS) {
    LLVMValueRef in = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, i, cg_i64(k, 0), ""),
                                   LLVMBuildICmp(b, LLVMIntSLT, i, cg_i64(k, n), ""), "");
    w = cg_select(k, in, w, dconst(k, 0));
  } else if (p->pad == PAD_REFLECTION) {
    double lo = p->align_corners ? 0 : -0.5, hi = p->align_corners ? (double)(n - 1) : (double)n - 0.5;
    i = to_i64(k, reflect(k, LLVMBuildSIToFP(b, i, k->m->t_f64, ""), lo, hi));
  }
  set_tap(k, a, j, clamp_i64(k, i, n - 1), w);
}

/* Fills spatial axis d's taps from the normalized grid coordinate g. */
static void grid_taps(CgKernel *k, const Interp *p, int d, LLVMValueRef g) {
  LLVMBuilderRef b = k->b;
  const Axis *a = &p->ax[d];
  double n = (double)a->in;
  LLVMValueRef g1 = LLVMBuildFAdd(b, g, dconst(k, 1), ""), x;
  if (p->align_corners) x = LLVMBuildFMul(b, g1, dconst(k, (n - 1) / 2), "");
  else x = LLVMBuildFDiv(b, LLVMBuildFSub(b, LLVMBuildFMul(b, g1, dconst(k, n), ""), dconst(k, 1), ""), dconst(k, 2), "");
  /* nearest rounds half to even, except 3-D which rounds half away from zero (as PyTorch) */
  if (p->mode == MODE_NEAREST) x = cg_intrinsic(k, p->r == 5 ? "llvm.round" : "llvm.rint", &x, 1);
  double lo = p->align_corners ? 0 : -0.5, hi = p->align_corners ? n - 1 : n - 0.5;
  if (p->pad == PAD_BORDER) {
    LLVMValueRef out = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOLT, x, dconst(k, lo), ""),
                                   LLVMBuildFCmp(b, LLVMRealOGT, x, dconst(k, hi), ""), "");
    LLVMValueRef mx[2] = {x, dconst(k, 0)}, mn[2] = {NULL, dconst(k, n - 1)};
    mn[0] = cg_intrinsic(k, "llvm.maxnum", mx, 2);
    x = cg_select(k, out, cg_intrinsic(k, "llvm.minnum", mn, 2), x);
  } else if (p->pad == PAD_REFLECTION) {
    x = reflect(k, x, lo, hi);
  }
  if (p->mode == MODE_NEAREST) {
    grid_tap(k, p, a, 0, to_i64(k, x), dconst(k, 1));
    return;
  }
  LLVMValueRef f = floor_of(k, x), t = LLVMBuildFSub(b, x, f, ""), i0 = to_i64(k, f);
  if (p->mode == MODE_LINEAR) {
    grid_tap(k, p, a, 0, i0, LLVMBuildFSub(b, dconst(k, 1), t, ""));
    grid_tap(k, p, a, 1, LLVMBuildAdd(b, i0, cg_i64(k, 1), ""), t);
    return;
  }
  LLVMValueRef c[4];
  cubic_coeffs(k, -0.75, t, c);
  for (int j = 0; j < 4; j++) grid_tap(k, p, a, j, LLVMBuildAdd(b, i0, cg_i64(k, j - 1), ""), c[j]);
}

/* ---- the weighted sum over every active axis's taps --------------------------------------- */
static void tap_sum(CgKernel *k, const Interp *p, int d, LLVMValueRef off, LLVMValueRef w, LLVMValueRef acc) {
  LLVMBuilderRef b = k->b;
  while (d < p->r && !p->ax[d].active) d++;
  if (d == p->r) {
    LLVMValueRef v = cg_convert(k, cg_load(k, k->in[0], p->t, off), p->t, KN_F64);
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, k->m->t_f64, acc, ""), LLVMBuildFMul(b, w, v, ""), ""), acc);
    return;
  }
  const Axis *a = &p->ax[d];
  LLVMTypeRef ti = LLVMArrayType2(k->m->t_i64, 4), tw = LLVMArrayType2(k->m->t_f64, 4);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, ntaps(p->mode)));
  LLVMValueRef gi[2] = {cg_i64(k, 0), l.i};
  LLVMValueRef ix = LLVMBuildLoad2(b, k->m->t_i64, LLVMBuildInBoundsGEP2(b, ti, a->idx, gi, 2, ""), "");
  LLVMValueRef wt = LLVMBuildLoad2(b, k->m->t_f64, LLVMBuildInBoundsGEP2(b, tw, a->w, gi, 2, ""), "");
  tap_sum(k, p, d + 1, LLVMBuildAdd(b, off, LLVMBuildMul(b, ix, cg_i64(k, a->in_stride), ""), ""),
          LLVMBuildFMul(b, w, wt, ""), acc);
  cg_loop_end(k, &l);
}

/* For nearest Resize: the one source element, copied exactly (integers stay exact). */
static LLVMValueRef nearest_offset(CgKernel *k, const Interp *p, LLVMValueRef off) {
  LLVMTypeRef ti = LLVMArrayType2(k->m->t_i64, 4);
  for (int d = 0; d < p->r; d++) {
    if (!p->ax[d].active) continue;
    LLVMValueRef gi[2] = {cg_i64(k, 0), cg_i64(k, 0)};
    LLVMValueRef ix = LLVMBuildLoad2(k->b, k->m->t_i64, LLVMBuildInBoundsGEP2(k->b, ti, p->ax[d].idx, gi, 2, ""), "");
    off = LLVMBuildAdd(k->b, off, LLVMBuildMul(k->b, ix, cg_i64(k, p->ax[d].in_stride), ""), "");
  }
  return off;
}

static void alloc_taps(CgKernel *k, Interp *p) {
  for (int d = 0; d < p->r; d++) {
    if (!p->ax[d].active) continue;
    p->ax[d].idx = cg_var(k, LLVMArrayType2(k->m->t_i64, 4), NULL);
    p->ax[d].w = cg_var(k, LLVMArrayType2(k->m->t_f64, 4), NULL);
  }
  p->extrap = cg_var(k, k->m->t_i1, NULL);
}

/* Output element oidx (input offset so far: off) from the taps already filled. */
static void emit_value(CgKernel *k, const Interp *p, LLVMValueRef off, LLVMValueRef oidx) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef v;
  if (!p->grid && p->mode == MODE_NEAREST) {
    v = cg_load(k, k->in[0], p->t, nearest_offset(k, p, off));
  } else {
    LLVMValueRef acc = cg_var(k, k->m->t_f64, NULL);
    LLVMBuildStore(b, dconst(k, 0), acc);
    tap_sum(k, p, 0, off, dconst(k, 1), acc);
    v = cg_convert(k, LLVMBuildLoad2(b, k->m->t_f64, acc, ""), KN_F64, p->t);
  }
  if (!p->grid && p->ctm == CTM_TF_CROP_AND_RESIZE) {
    LLVMValueRef e = cg_convert(k, dconst(k, p->extrapolation), KN_F64, p->t);
    v = cg_select(k, LLVMBuildLoad2(b, k->m->t_i1, p->extrap, ""), e, v);
  }
  cg_store(k, k->out[0], p->t, oidx, v);
}

/* Resize row: every output dim but the last fixed by `row`. */
static void resize_row(CgKernel *k, LLVMValueRef row, void *user) {
  Interp p = *(const Interp *)user;
  LLVMBuilderRef b = k->b;
  alloc_taps(k, &p);
  LLVMBuildStore(b, LLVMConstInt(k->m->t_i1, 0, 0), p.extrap);
  int last = p.r - 1;
  LLVMValueRef off = cg_i64(k, 0), rest = row;
  for (int d = last - 1; d >= 0; d--) {
    LLVMValueRef c = LLVMBuildSRem(b, rest, cg_i64(k, p.out_dims[d]), "");
    rest = LLVMBuildSDiv(b, rest, cg_i64(k, p.out_dims[d]), "");
    if (p.ax[d].active) resize_taps(k, &p, d, c);
    else off = LLVMBuildAdd(b, off, LLVMBuildMul(b, c, cg_i64(k, p.ax[d].in_stride), ""), "");
  }
  LLVMValueRef row_extrap = LLVMBuildLoad2(b, k->m->t_i1, p.extrap, "");
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, p.out_dims[last]));
  LLVMValueRef o = off;
  if (p.ax[last].active) {
    LLVMBuildStore(b, row_extrap, p.extrap);
    resize_taps(k, &p, last, l.i);
  } else {
    o = LLVMBuildAdd(b, off, l.i, "");
  }
  emit_value(k, &p, o, LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_i64(k, p.out_dims[last]), ""), l.i, ""));
  cg_loop_end(k, &l);
}

/* GridSample row: (n, c, spatial out dims but the last). */
static void grid_row(CgKernel *k, LLVMValueRef row, void *user) {
  Interp p = *(const Interp *)user;
  LLVMBuilderRef b = k->b;
  alloc_taps(k, &p);
  int last = p.r - 1, ns = p.r - 2;
  int64_t plane = 1; /* output points per (n, c) */
  for (int d = 2; d < p.r; d++) plane *= p.out_dims[d];
  LLVMValueRef rest = row, o_flat = cg_i64(k, 0), mul = cg_i64(k, 1);
  for (int d = last - 1; d >= 2; d--) {
    LLVMValueRef c = LLVMBuildSRem(b, rest, cg_i64(k, p.out_dims[d]), "");
    rest = LLVMBuildSDiv(b, rest, cg_i64(k, p.out_dims[d]), "");
    o_flat = LLVMBuildAdd(b, o_flat, LLVMBuildMul(b, c, mul, ""), "");
    mul = LLVMBuildMul(b, mul, cg_i64(k, p.out_dims[d]), "");
  }
  LLVMValueRef nc = rest; /* n * C + c */
  LLVMValueRef n = LLVMBuildSDiv(b, nc, cg_i64(k, p.out_dims[1]), "");
  LLVMValueRef off = LLVMBuildMul(b, nc, cg_i64(k, p.ax[1].in_stride), "");
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, p.out_dims[last]));
  LLVMValueRef pt = LLVMBuildAdd(b, LLVMBuildMul(b, o_flat, cg_i64(k, p.out_dims[last]), ""), l.i, "");
  LLVMValueRef gbase = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, n, cg_i64(k, plane), ""), pt, ""), cg_i64(k, ns), "");
  for (int d = 2; d < p.r; d++) { /* the grid lists coordinates innermost axis first */
    LLVMValueRef gi = LLVMBuildAdd(b, gbase, cg_i64(k, ns - 1 - (d - 2)), "");
    grid_taps(k, &p, d, cg_convert(k, cg_load(k, k->in[1], p.gt, gi), p.gt, KN_F64));
  }
  emit_value(k, &p, off, LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_i64(k, p.out_dims[last]), ""), l.i, ""));
  cg_loop_end(k, &l);
}

/* ---- attributes and entry points ---------------------------------------------------------- */
static bool parse_mode(const char *s, Mode *m) {
  if (!strcmp(s, "nearest")) *m = MODE_NEAREST;
  else if (!strcmp(s, "linear") || !strcmp(s, "bilinear")) *m = MODE_LINEAR;
  else if (!strcmp(s, "cubic") || !strcmp(s, "bicubic")) *m = MODE_CUBIC;
  else return false;
  return true;
}

static bool parse_ctm(const char *s, Ctm *c) {
  static const char *names[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  for (int i = 0; i < 6; i++)
    if (!strcmp(s, names[i])) return *c = (Ctm)i, true;
  return false;
}

static bool parse_nearest(const char *s, Nearest *n) {
  static const char *names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, names[i])) return *n = (Nearest)i, true;
  return false;
}

static bool input_present(const CgKernel *k, int i) {
  if (i < 0 || i >= k->node->n_inputs || !k->in[i]) return false;
  return cg_numel(cg_in_shape(k, i)) > 0;
}

static void common_shapes(CgKernel *k, Interp *p) {
  const KnShape *xs = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  int64_t st[MAX_RANK];
  cg_strides(xs, st);
  p->r = xs->rank;
  p->t = cg_in_dtype(k, 0);
  for (int d = 0; d < p->r; d++) {
    p->ax[d].in = xs->dims[d].value;
    p->ax[d].out = p->out_dims[d] = os->dims[d].value;
    p->ax[d].in_stride = st[d];
  }
}

/* Scales known at compile time: attribute (Upsample-7), initializer, or sizes / input dims. */
static KnStatus resize_scales(CgKernel *k, Interp *p, int sizes_in) {
  const KnNode *n = k->node;
  int64_t cnt = 0;
  const float *attr = n->op == KN_OP_Upsample && n->opset < 9 ? ir_attr_floats(n, "scales", &cnt) : NULL;
  const KnTensor *init = p->scales_in >= 0 ? n->inputs[p->scales_in]->init : NULL;
  for (int d = 0; d < p->r; d++) {
    Axis *a = &p->ax[d];
    a->scale_const = true;
    if (input_present(k, sizes_in)) a->scale = (double)a->out / (double)a->in;
    else if (attr && cnt == p->r) a->scale = attr[d];
    else if (init && init->numel == p->r) a->scale = ir_tensor_get_double(init, d);
    else if (p->scales_in >= 0) a->scale_const = false;
    else return cg_unsupported(k, "scales are missing");
  }
  return KN_OK;
}

/* Whether axis d maps output x to input x (no taps needed). */
static bool identity_axis(const Interp *p, int d) {
  const Axis *a = &p->ax[d];
  if (a->in != a->out || !a->scale_const || a->scale != 1.0) return false;
  return p->ctm == CTM_HALF_PIXEL || p->ctm == CTM_PYTORCH_HALF_PIXEL || p->ctm == CTM_ALIGN_CORNERS ||
         p->ctm == CTM_ASYMMETRIC;
}

static KnStatus resize_attrs(CgKernel *k, Interp *p) {
  const KnNode *n = k->node;
  bool legacy = n->op == KN_OP_Upsample || n->opset < 11;
  if (!parse_mode(ir_attr_string(n, "mode", "nearest"), &p->mode)) return cg_unsupported(k, "unknown mode");
  if (legacy && p->mode == MODE_CUBIC) return cg_unsupported(k, "cubic mode before opset 11");
  p->ctm = CTM_ASYMMETRIC;
  p->nearest = NR_SIMPLE;
  p->cubic_a = ir_attr_float(n, "cubic_coeff_a", -0.75f);
  p->exclude_outside = ir_attr_int(n, "exclude_outside", 0) != 0;
  p->extrapolation = ir_attr_float(n, "extrapolation_value", 0.0f);
  if (ir_attr(n, "antialias") && ir_attr_int(n, "antialias", 0)) return cg_unsupported(k, "antialias");
  if (ir_attr(n, "axes")) return cg_unsupported(k, "the axes attribute");
  if (!legacy) {
    if (!parse_ctm(ir_attr_string(n, "coordinate_transformation_mode", "half_pixel"), &p->ctm))
      return cg_unsupported(k, "unknown coordinate_transformation_mode");
    if (!parse_nearest(ir_attr_string(n, "nearest_mode", "round_prefer_floor"), &p->nearest))
      return cg_unsupported(k, "unknown nearest_mode");
  }
  p->scales_in = legacy ? (n->op == KN_OP_Upsample && n->opset < 9 ? -1 : 1) : 2;
  p->roi_in = legacy ? -1 : 1;
  if (p->scales_in >= 0 && !input_present(k, p->scales_in)) p->scales_in = -1;
  if (p->ctm == CTM_TF_CROP_AND_RESIZE && !input_present(k, p->roi_in))
    return cg_unsupported(k, "tf_crop_and_resize without roi");
  return KN_OK;
}

KnStatus cg_lower_resize(CgKernel *k) {
  Interp p = {0};
  KnStatus st = resize_attrs(k, &p);
  if (st != KN_OK) return st;
  common_shapes(k, &p);
  if (p.r < 1 || p.r > MAX_RANK) return cg_unsupported(k, "rank must be 1..8");
  if (cg_out_dtype(k, 0) != p.t || (!ir_dtype_is_float(p.t) && !ir_dtype_is_int(p.t)))
    return cg_unsupported(k, "X dtype");
  if ((st = resize_scales(k, &p, k->node->op == KN_OP_Resize && k->node->opset >= 11 ? 3 : -1)) != KN_OK) return st;
  if (p.ctm == CTM_TF_CROP_AND_RESIZE && cg_numel(cg_in_shape(k, p.roi_in)) != 2 * p.r)
    return cg_unsupported(k, "roi must have 2 * rank entries");
  for (int d = 0; d < p.r; d++) p.ax[d].active = !identity_axis(&p, d);
  int64_t numel = cg_numel(cg_out_shape(k, 0)), last = p.out_dims[p.r - 1];
  if (numel == 0) return KN_OK;
  cg_parallel_for(k, numel / last, last >= 256 ? 1 : 256 / last, resize_row, &p);
  return KN_OK;
}

KnStatus cg_lower_grid_sample(CgKernel *k) {
  const KnNode *n = k->node;
  Interp p = {.grid = true};
  if (!parse_mode(ir_attr_string(n, "mode", "bilinear"), &p.mode)) return cg_unsupported(k, "unknown mode");
  const char *pad = ir_attr_string(n, "padding_mode", "zeros");
  if (!strcmp(pad, "zeros")) p.pad = PAD_ZEROS;
  else if (!strcmp(pad, "border")) p.pad = PAD_BORDER;
  else if (!strcmp(pad, "reflection")) p.pad = PAD_REFLECTION;
  else return cg_unsupported(k, "unknown padding_mode");
  p.align_corners = ir_attr_int(n, "align_corners", 0) != 0;
  common_shapes(k, &p);
  p.gt = cg_in_dtype(k, 1);
  if (p.r < 3 || p.r > MAX_RANK) return cg_unsupported(k, "X must have rank 3..8");
  if (!ir_dtype_is_float(p.t) || !ir_dtype_is_float(p.gt)) return cg_unsupported(k, "only float X and grid");
  for (int d = 0; d < p.r; d++) p.ax[d].active = d >= 2;
  int64_t numel = cg_numel(cg_out_shape(k, 0)), last = p.out_dims[p.r - 1];
  if (numel == 0) return KN_OK;
  cg_parallel_for(k, numel / last, last >= 256 ? 1 : 256 / last, grid_row, &p);
  return KN_OK;
}
