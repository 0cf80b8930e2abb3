/* lower_signal.c - the signal ops: DFT and STFT as direct O(n^2) sums in double over a twiddle
 * table built at compile time, the Hann/Hamming/Blackman windows and MelWeightMatrix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/lower_seq.h"

#define TWIDDLE_MAX (1 << 16) /* larger transforms compute their twiddles at run time */

/* A private constant global holding cos(2 pi m / L), sin(2 pi m / L) for m < L. */
static LLVMValueRef twiddle_table(CgKernel *k, int64_t L) {
  char name[48];
  snprintf(name, sizeof name, "kn_twiddle_%lld", (long long)L);
  LLVMValueRef g = LLVMGetNamedGlobal(k->m->mod, name);
  if (g) return g;
  LLVMTypeRef f64 = k->m->t_f64, arr = LLVMArrayType2(f64, (uint64_t)(2 * L));
  LLVMValueRef *vals = malloc(sizeof *vals * (size_t)(2 * L));
  if (!vals) return NULL;
  for (int64_t m = 0; m < L; m++) {
    double th = 2.0 * M_PI * (double)m / (double)L;
    vals[2 * m] = LLVMConstReal(f64, cos(th));
    vals[2 * m + 1] = LLVMConstReal(f64, sin(th));
  }
  g = LLVMAddGlobal(k->m->mod, arr, name);
  LLVMSetInitializer(g, LLVMConstArray2(f64, vals, (uint64_t)(2 * L)));
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  free(vals);
  return g;
}

/* One transform: which input, its layout, and the output point layout. */
typedef struct Dft {
  KnDtype t;              /* input and output dtype */
  int64_t L;              /* transform length */
  int64_t n_in;           /* input samples used per transform (<= L; the rest are zero) */
  int64_t cin;            /* 1 real, 2 complex */
  int64_t n_stride;       /* input elements between samples n and n+1 (complex pairs count 1) */
  int64_t inner, K;       /* DFT: dims between axis and the last; output points per transform */
  int64_t frames;         /* STFT: frames per batch row */
  bool inverse, stft, has_window;
  LLVMValueRef table;     /* twiddle global, or NULL */
} Dft;

/* (cos, sin) of 2 pi m / L. */
static void twiddle(CgKernel *k, const Dft *d, LLVMValueRef m, LLVMValueRef *c, LLVMValueRef *s) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  if (d->table) {
    LLVMValueRef i = LLVMBuildShl(b, m, cg_i64(k, 1), "");
    *c = LLVMBuildLoad2(b, f64, LLVMBuildInBoundsGEP2(b, f64, d->table, &i, 1, ""), "");
    i = LLVMBuildAdd(b, i, cg_i64(k, 1), "");
    *s = LLVMBuildLoad2(b, f64, LLVMBuildInBoundsGEP2(b, f64, d->table, &i, 1, ""), "");
    return;
  }
  LLVMValueRef th = LLVMBuildFMul(b, LLVMBuildSIToFP(b, m, f64, ""), LLVMConstReal(f64, 2.0 * M_PI / (double)d->L), "");
  *c = cg_intrinsic(k, "llvm.cos", &th, 1);
  *s = cg_intrinsic(k, "llvm.sin", &th, 1);
}

/* X[kk] = sum_n x[base + n * n_stride] * w[n] * e^(-+ 2 pi i kk n / L), stored at out[obase]. */
static void dft_point(CgKernel *k, const Dft *d, LLVMValueRef base, LLVMValueRef kk, LLVMValueRef obase) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  LLVMValueRef re = cg_var(k, f64, LLVMConstReal(f64, 0)), im = cg_var(k, f64, LLVMConstReal(f64, 0));
  LLVMValueRef m = cg_var(k, k->m->t_i64, cg_i64(k, 0)); /* kk * n mod L, kept incrementally */
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, d->n_in));
  LLVMValueRef xi_idx = LLVMBuildMul(b, LLVMBuildAdd(b, base, LLVMBuildMul(b, l.i, cg_i64(k, d->n_stride), ""), ""),
                                     cg_i64(k, d->cin), "");
  LLVMValueRef xr = cg_convert(k, cg_load(k, k->in[0], d->t, xi_idx), d->t, KN_F64);
  LLVMValueRef xi = LLVMConstReal(f64, 0);
  if (d->cin == 2)
    xi = cg_convert(k, cg_load(k, k->in[0], d->t, LLVMBuildAdd(b, xi_idx, cg_i64(k, 1), "")), d->t, KN_F64);
  if (d->has_window) {
    LLVMValueRef w = cg_convert(k, cg_load(k, k->in[2], cg_in_dtype(k, 2), l.i), cg_in_dtype(k, 2), KN_F64);
    xr = LLVMBuildFMul(b, xr, w, "");
    xi = LLVMBuildFMul(b, xi, w, "");
  }
  LLVMValueRef mv = LLVMBuildLoad2(b, k->m->t_i64, m, ""), c, s;
  twiddle(k, d, mv, &c, &s);
  if (!d->inverse) s = LLVMBuildFNeg(b, s, ""); /* e^(-i th) = cos - i sin */
  LLVMValueRef pr = LLVMBuildFSub(b, LLVMBuildFMul(b, xr, c, ""), LLVMBuildFMul(b, xi, s, ""), "");
  LLVMValueRef pi = LLVMBuildFAdd(b, LLVMBuildFMul(b, xi, c, ""), LLVMBuildFMul(b, xr, s, ""), "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, f64, re, ""), pr, ""), re);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, f64, im, ""), pi, ""), im);
  LLVMValueRef nm = LLVMBuildAdd(b, mv, kk, "");
  LLVMValueRef wrap = LLVMBuildICmp(b, LLVMIntSGE, nm, cg_i64(k, d->L), "");
  LLVMBuildStore(b, cg_select(k, wrap, LLVMBuildSub(b, nm, cg_i64(k, d->L), ""), nm), m);
  cg_loop_end(k, &l);
  LLVMValueRef r = LLVMBuildLoad2(b, f64, re, ""), i = LLVMBuildLoad2(b, f64, im, "");
  if (d->inverse) {
    LLVMValueRef inv = LLVMConstReal(f64, 1.0 / (double)d->L);
    r = LLVMBuildFMul(b, r, inv, "");
    i = LLVMBuildFMul(b, i, inv, "");
  }
  cg_store(k, k->out[0], d->t, obase, cg_convert(k, r, KN_F64, d->t));
  cg_store(k, k->out[0], d->t, LLVMBuildAdd(b, obase, cg_i64(k, 1), ""), cg_convert(k, i, KN_F64, d->t));
}

/* DFT row = (outer o, point kk): every inner position j. */
static void dft_row(CgKernel *k, LLVMValueRef row, void *user) {
  const Dft *d = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef o = LLVMBuildSDiv(b, row, cg_i64(k, d->K), ""), kk = LLVMBuildSRem(b, row, cg_i64(k, d->K), "");
  kk = LLVMBuildSRem(b, kk, cg_i64(k, d->L), ""); /* onesided of an L < K cannot happen; keeps m < L */
  CgLoop j = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, d->inner));
  /* input sample (o, n, j) is element ((o * N + n) * inner + j); N * inner per o */
  LLVMValueRef base = LLVMBuildAdd(b, LLVMBuildMul(b, o, cg_i64(k, d->n_stride * d->frames), ""), j.i, "");
  LLVMValueRef obase = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_i64(k, d->inner), ""), j.i, ""),
                                    cg_i64(k, 2), "");
  dft_point(k, d, base, kk, obase);
  cg_loop_end(k, &j);
}

/* STFT row = (batch, frame, bin); frames start frame_step samples apart. */
typedef struct Stft {
  Dft d;
  int64_t S;               /* signal length */
} Stft;

static void stft_row(CgKernel *k, LLVMValueRef row, void *user) {
  const Stft *st = user;
  const Dft *d = &st->d;
  LLVMBuilderRef b = k->b;
  LLVMValueRef kk = LLVMBuildSRem(b, row, cg_i64(k, d->K), "");
  LLVMValueRef bf = LLVMBuildSDiv(b, row, cg_i64(k, d->K), "");
  LLVMValueRef f = LLVMBuildSRem(b, bf, cg_i64(k, d->frames), ""), bt = LLVMBuildSDiv(b, bf, cg_i64(k, d->frames), "");
  KnDtype stt = cg_in_dtype(k, 1);
  LLVMValueRef step = cg_convert(k, cg_load(k, k->in[1], stt, cg_i64(k, 0)), stt, KN_I64);
  LLVMValueRef base = LLVMBuildAdd(b, LLVMBuildMul(b, bt, cg_i64(k, st->S), ""), LLVMBuildMul(b, f, step, ""), "");
  dft_point(k, d, base, kk, LLVMBuildMul(b, row, cg_i64(k, 2), ""));
}

static bool has_in(const CgKernel *k, int i) { return i < k->node->n_inputs && k->in[i]; }

static KnStatus lower_stft(CgKernel *k, Dft *d) {
  const KnShape *xs = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  Stft st = {.d = *d, .S = xs->dims[1].value};
  int64_t fl = -1;
  st.d.has_window = has_in(k, 2);
  if (st.d.has_window) fl = cg_in_shape(k, 2)->dims[0].value;
  else if (!has_in(k, 3) || ir_input_ints((KnNode *)k->node, 3, &fl, 1) != 1)
    return cg_unsupported(k, "frame_length must be known at compile time");
  st.d.cin = xs->dims[2].value;
  st.d.L = st.d.n_in = fl;
  st.d.n_stride = 1;
  st.d.frames = os->dims[1].value;
  st.d.K = os->dims[2].value;
  st.d.inverse = false;
  if (fl <= 0) return cg_unsupported(k, "frame_length must be positive");
  st.d.table = fl <= TWIDDLE_MAX ? twiddle_table(k, fl) : NULL;
  /* the last frame must lie inside the signal for the frame_step given at run time */
  KnDtype stt = cg_in_dtype(k, 1);
  LLVMValueRef step = cg_convert(k, cg_load(k, k->in[1], stt, cg_i64(k, 0)), stt, KN_I64);
  LLVMValueRef end = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, step, cg_i64(k, st.d.frames - 1), ""), cg_i64(k, fl), "");
  LLVMValueRef bad = LLVMBuildOr(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, end, cg_i64(k, st.S), ""),
                                 LLVMBuildICmp(k->b, LLVMIntSLT, step, cg_i64(k, 0), ""), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "frame_step does not fit the signal", step);
  int64_t rows = cg_numel(os) / 2;
  cg_parallel_for(k, rows, 16, stft_row, &st);
  return KN_OK;
}

KnStatus cg_lower_dft(CgKernel *k) {
  Dft d = {.t = cg_in_dtype(k, 0)};
  if (!ir_dtype_is_float(d.t) || cg_out_dtype(k, 0) != d.t) return cg_unsupported(k, "only float signals");
  if (k->node->op == KN_OP_STFT) return lower_stft(k, &d);
  const KnShape *xs = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  int r = xs->rank;
  int64_t axis = ir_attr_int(k->node, "axis", 1);
  if (axis < 0) axis += r;
  if (axis <= 0 || axis >= r - 1) return cg_unsupported(k, "axis out of range");
  int64_t n = xs->dims[axis].value, L = n, outer = 1;
  if (has_in(k, 1) && ir_input_ints((KnNode *)k->node, 1, &L, 1) != 1)
    return cg_unsupported(k, "dft_length must be known at compile time");
  if (L <= 0) return cg_unsupported(k, "dft_length must be positive");
  d.L = L;
  d.n_in = n < L ? n : L;
  d.cin = xs->dims[r - 1].value;
  d.inverse = ir_attr_int(k->node, "inverse", 0) != 0;
  d.inner = 1;
  for (int i = (int)axis + 1; i < r - 1; i++) d.inner *= xs->dims[i].value;
  for (int i = 0; i < axis; i++) outer *= xs->dims[i].value;
  d.n_stride = d.inner;
  d.frames = n; /* samples per outer index, in inner-sized steps */
  d.K = os->dims[axis].value;
  d.table = L <= TWIDDLE_MAX ? twiddle_table(k, L) : NULL;
  if (L <= TWIDDLE_MAX && !d.table) return kn_fail(k->err, KN_ERR_NOMEM, "out of memory");
  cg_parallel_for(k, outer * d.K, 1, dft_row, &d);
  return KN_OK;
}

/* ---- windows ------------------------------------------------------------------------------ */
KnStatus cg_lower_window(CgKernel *k) {
  KnDtype ot = cg_out_dtype(k, 0);
  int64_t n = cg_numel(cg_out_shape(k, 0));
  if (!ir_dtype_is_float(ot) && !ir_dtype_is_int(ot)) return cg_unsupported(k, "output_datatype");
  bool periodic = ir_attr_int(k->node, "periodic", 1) != 0;
  double N = (double)(periodic ? n : n - 1);
  double a0, a1, a2 = 0; /* w = a0 - a1 cos(2 pi x / N) + a2 cos(4 pi x / N) */
  switch (k->node->op) {
  case KN_OP_HannWindow: a0 = 0.5, a1 = 0.5; break;
  case KN_OP_HammingWindow: a0 = 25.0 / 46.0, a1 = 1.0 - a0; break;
  default: a0 = 0.42, a1 = 0.5, a2 = 0.08; break;
  }
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  LLVMValueRef x = LLVMBuildFMul(b, LLVMBuildSIToFP(b, l.i, f64, ""), LLVMConstReal(f64, 2.0 * M_PI / N), "");
  LLVMValueRef x2 = LLVMBuildFMul(b, x, LLVMConstReal(f64, 2.0), "");
  LLVMValueRef w = LLVMBuildFSub(b, LLVMConstReal(f64, a0), LLVMBuildFMul(b, LLVMConstReal(f64, a1), cg_intrinsic(k, "llvm.cos", &x, 1), ""), "");
  if (a2 != 0) w = LLVMBuildFAdd(b, w, LLVMBuildFMul(b, LLVMConstReal(f64, a2), cg_intrinsic(k, "llvm.cos", &x2, 1), ""), "");
  cg_store(k, k->out[0], ot, l.i, cg_convert(k, w, KN_F64, ot));
  cg_loop_end(k, &l);
  return KN_OK;
}

/* ---- MelWeightMatrix ------------------------------------------------------------------------ */
typedef struct Mel {
  LLVMValueRef lo_mel, step, dft1, rate; /* f64 values of the formula */
  int64_t bins, mels;
  KnDtype ot;
} Mel;

static LLVMValueRef scalar_f64(CgKernel *k, int i) {
  KnDtype t = cg_in_dtype(k, i);
  return cg_convert(k, cg_load(k, k->in[i], t, cg_i64(k, 0)), t, KN_F64);
}

/* mel(f) = 2595 log10(1 + f / 700), in f32 as the spec's reference computes it. */
static LLVMValueRef mel_of(CgKernel *k, int i) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f32 = k->m->t_f32;
  KnDtype t = cg_in_dtype(k, i);
  LLVMValueRef f = cg_convert(k, cg_load(k, k->in[i], t, cg_i64(k, 0)), t, KN_F32);
  LLVMValueRef v = LLVMBuildFAdd(b, LLVMConstReal(f32, 1.0), LLVMBuildFDiv(b, f, LLVMConstReal(f32, 700.0), ""), "");
  return LLVMBuildFMul(b, LLVMConstReal(f32, 2595.0), cg_intrinsic(k, "llvm.log10", &v, 1), "");
}

/* Spectrogram bin of mel point i: floor((dft_length + 1) * hz(i * step + lo) / sample_rate). */
static LLVMValueRef mel_bin(CgKernel *k, const Mel *m, LLVMValueRef i) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildSIToFP(b, i, f64, ""), m->step, ""), m->lo_mel, "");
  v = cg_libm2(k, "pow", LLVMConstReal(f64, 10.0), LLVMBuildFDiv(b, v, LLVMConstReal(f64, 2595.0), ""));
  v = LLVMBuildFMul(b, LLVMConstReal(f64, 700.0), LLVMBuildFSub(b, v, LLVMConstReal(f64, 1.0), ""), "");
  v = LLVMBuildFDiv(b, LLVMBuildFMul(b, m->dft1, v, ""), m->rate, "");
  v = cg_intrinsic(k, "llvm.floor", &v, 1);
  return cg_convert(k, v, KN_F64, KN_I64);
}

static void mel_store(CgKernel *k, const Mel *m, LLVMValueRef j, LLVMValueRef i, LLVMValueRef v) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef bad = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, j, cg_i64(k, 0), ""),
                                 LLVMBuildICmp(b, LLVMIntSGE, j, cg_i64(k, m->bins), ""), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "a mel band edge falls outside the spectrogram bins", j);
  LLVMValueRef idx = LLVMBuildAdd(b, LLVMBuildMul(b, j, cg_i64(k, m->mels), ""), i, "");
  cg_store(k, k->out[0], m->ot, idx, cg_convert(k, v, KN_F64, m->ot));
}

/* The triangle of band i: rising from bin l to c, falling from c to h. */
static void mel_band(CgKernel *k, const Mel *m, LLVMValueRef i) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  LLVMValueRef l = mel_bin(k, m, i), c = mel_bin(k, m, LLVMBuildAdd(b, i, cg_i64(k, 1), ""));
  LLVMValueRef h = mel_bin(k, m, LLVMBuildAdd(b, i, cg_i64(k, 2), ""));
  LLVMValueRef lc = LLVMBuildSub(b, c, l, ""), ch = LLVMBuildSub(b, h, c, "");
  CgIf flat = cg_if_begin(k, LLVMBuildICmp(b, LLVMIntEQ, lc, cg_i64(k, 0), ""));
  mel_store(k, m, c, i, LLVMConstReal(f64, 1.0));
  cg_if_else(k, &flat);
  CgLoop up = cg_loop_begin(k, l, LLVMBuildAdd(b, c, cg_i64(k, 1), ""));
  LLVMValueRef num = LLVMBuildSIToFP(b, LLVMBuildSub(b, up.i, l, ""), f64, "");
  mel_store(k, m, up.i, i, LLVMBuildFDiv(b, num, LLVMBuildSIToFP(b, lc, f64, ""), ""));
  cg_loop_end(k, &up);
  cg_if_end(k, &flat);
  CgIf fall = cg_if_begin(k, LLVMBuildICmp(b, LLVMIntSGT, ch, cg_i64(k, 0), ""));
  CgLoop dn = cg_loop_begin(k, c, h);
  LLVMValueRef num2 = LLVMBuildSIToFP(b, LLVMBuildSub(b, h, dn.i, ""), f64, "");
  mel_store(k, m, dn.i, i, LLVMBuildFDiv(b, num2, LLVMBuildSIToFP(b, ch, f64, ""), ""));
  cg_loop_end(k, &dn);
  cg_if_end(k, &fall);
}

KnStatus cg_lower_mel_weight_matrix(CgKernel *k) {
  const KnShape *os = cg_out_shape(k, 0);
  Mel m = {.bins = os->dims[0].value, .mels = os->dims[1].value, .ot = cg_out_dtype(k, 0)};
  if (!ir_dtype_is_float(m.ot) && !ir_dtype_is_int(m.ot)) return cg_unsupported(k, "output_datatype");
  for (int i = 3; i < 5; i++)
    if (!ir_dtype_is_float(cg_in_dtype(k, i))) return cg_unsupported(k, "edge frequencies must be float");
  size_t nb = 0;
  if (ir_dtype_nbytes(m.ot, m.bins * m.mels, &nb) && nb) cg_memset(k, k->out[0], 0, cg_i64(k, (int64_t)nb));
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f32 = k->m->t_f32, f64 = k->m->t_f64;
  LLVMValueRef lo = mel_of(k, 3), hi = mel_of(k, 4);
  LLVMValueRef step = LLVMBuildFDiv(b, LLVMBuildFSub(b, hi, lo, ""), LLVMConstReal(f32, (double)(m.mels + 2)), "");
  m.lo_mel = LLVMBuildFPExt(b, lo, f64, "");
  m.step = LLVMBuildFPExt(b, step, f64, "");
  m.dft1 = LLVMBuildFAdd(b, scalar_f64(k, 1), LLVMConstReal(f64, 1.0), "");
  m.rate = scalar_f64(k, 2);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, m.mels));
  mel_band(k, &m, l.i);
  cg_loop_end(k, &l);
  return KN_OK;
}
