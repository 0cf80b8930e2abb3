/* lower_conv.c - Conv, kiln.FusedConv, ConvInteger, QLinearConv and ConvTranspose over 1-D..3-D
 * inputs. f32 Conv (-O1 and up, not depthwise) is the shared GEMM of cg_gemm.h over im2col panels
 * packed on the fly, f32 depthwise Conv the row-vectorized kernel of lower_conv_dw.c; other float
 * Conv runs blocks of output channels against tiles of gathered input rows (an i-k-j GEMM whose
 * inner loop walks a long unit-stride output tile), and the remaining depthwise Conv and
 * ConvTranspose walk one (batch, channel) plane per parallel iteration, tap by tap, each row's
 * valid range precomputed; integer and quantized convs use a per-output-element loop with an i32
 * accumulator. */
#include "codegen/cg_gemm.h"
#include "codegen/lower_conv.h"
#include "codegen/lower_conv_dw.h"
#include "codegen/lower_conv_nchwc.h"

typedef struct Cv {
  LwWindow w;
  int ix, iw, ib;                /* input index of x, weight and bias (-1: none) */
  KnDtype tx, tw, to, tacc;
  int64_t N, C, M, G, Cg, Mg;    /* Conv: M output channels, Cg inputs per group, Mg outputs per group */
  int64_t isz, osz, ksz;         /* elements per input plane, output plane, kernel */
  int xzp, wzp, xs, ws, ys, yzp; /* quantization inputs, -1 when absent */
  bool wzp_vec, ws_vec;
  bool transpose;
  int ir;                        /* kiln.FusedConv: residual input (-1: none) */
  CgGemmAct act;                 /* kiln.FusedConv: activation after bias and residual */
  float lo, hi;                  /* CG_ACT_CLIP bounds */
  int64_t *tlo[LW_MAX_SP], *thi[LW_MAX_SP]; /* integer convs: per output position, taps inside */
} Cv;

/* Collapses a 1x1, stride-1, unpadded window into one flat spatial dim (a plain GEMM row). */
static void flatten_pointwise(LwWindow *w) {
  for (int i = 0; i < LW_MAX_SP; i++)
    if (w->k[i] != 1 || w->s[i] != 1 || w->pb[i] != 0 || w->in[i] != w->out[i]) return;
  int64_t total = w->in[0] * w->in[1] * w->in[2];
  for (int i = 0; i < LW_MAX_SP; i++) w->in[i] = w->out[i] = 1;
  w->in[2] = w->out[2] = total;
}

static void plane_sizes(Cv *cv) {
  const LwWindow *w = &cv->w;
  cv->isz = w->in[0] * w->in[1] * w->in[2];
  cv->osz = w->out[0] * w->out[1] * w->out[2];
  cv->ksz = w->k[0] * w->k[1] * w->k[2];
}

/* Tables of the output (or, for ConvTranspose, input) range each kernel tap touches, per dim. */
typedef struct TapTabs {
  LLVMValueRef lo[LW_MAX_SP], hi[LW_MAX_SP];
} TapTabs;

static TapTabs tap_tables(CgKernel *k, const LwWindow *w) {
  TapTabs t;
  for (int i = 0; i < LW_MAX_SP; i++) {
    int64_t lo[w->k[i]], hi[w->k[i]];
    for (int64_t tap = 0; tap < w->k[i]; tap++) lw_outs(w, i, tap, &lo[tap], &hi[tap]);
    t.lo[i] = lw_table(k, lo, w->k[i]);
    t.hi[i] = lw_table(k, hi, w->k[i]);
  }
  return t;
}

/* out[obase .. + osz) = bias[ch] or 0. */
static void init_plane(CgKernel *k, const Cv *cv, LLVMValueRef obase, LLVMValueRef ch, int64_t osz) {
  LLVMValueRef v = cg_const(k, cv->to, 0);
  if (lw_has(k, cv->ib)) {
    KnDtype bt = cg_in_dtype(k, cv->ib);
    v = cg_convert(k, cg_load(k, k->in[cv->ib], bt, ch), bt, cv->to);
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, osz));
  cg_store(k, k->out[0], cv->to, lw_add(k, obase, l.i), v);
  lw_loop_end_nounroll(k, &l);
}

typedef struct TapCtx {
  LLVMValueRef obase, xbase, wv, t[LW_MAX_SP];
} TapCtx;

/* One kernel tap over the plane. Conv: out[o] += wv * x[o*s + t*d - pb]; ConvTranspose swaps the
 * roles: out[i*s + t*d - pb] += wv * x[i]. Loops run only over the valid range of each dim. */
static void emit_tap(CgKernel *k, const Cv *cv, const TapTabs *tt, const TapCtx *c) {
  const LwWindow *w = &cv->w;
  /* Conv walks output dims; ConvTranspose walks input dims (the window was built swapped). */
  const int64_t *od = w->out, *id = w->in;
  LLVMValueRef lo[LW_MAX_SP], hi[LW_MAX_SP], shift[LW_MAX_SP];
  for (int i = 0; i < LW_MAX_SP; i++) {
    lo[i] = lw_i64_at(k, tt->lo[i], c->t[i]);
    hi[i] = lw_i64_at(k, tt->hi[i], c->t[i]);
    shift[i] = lw_addc(k, lw_mulc(k, c->t[i], w->d[i]), -w->pb[i]);
  }
  CgLoop l0 = cg_loop_begin(k, lo[0], hi[0]);
  LLVMValueRef p0 = lw_add(k, lw_mulc(k, l0.i, w->s[0]), shift[0]);
  CgLoop l1 = cg_loop_begin(k, lo[1], hi[1]);
  LLVMValueRef p1 = lw_add(k, lw_mulc(k, l1.i, w->s[1]), shift[1]);
  LLVMValueRef wrow = lw_madc(k, lw_madc(k, l0.i, od[1], l1.i), od[2], cg_i64(k, 0)); /* walked index */
  LLVMValueRef prow = lw_madc(k, lw_madc(k, p0, id[1], p1), id[2], cg_i64(k, 0));     /* mapped index */
  CgLoop l2 = cg_loop_begin(k, lo[2], hi[2]);
  LLVMValueRef walked = lw_add(k, wrow, l2.i);
  LLVMValueRef mapped = lw_add(k, prow, lw_add(k, lw_mulc(k, l2.i, w->s[2]), shift[2]));
  LLVMValueRef oi = lw_add(k, c->obase, cv->transpose ? mapped : walked);
  LLVMValueRef xi = lw_add(k, c->xbase, cv->transpose ? walked : mapped);
  LLVMValueRef xv = cg_convert(k, cg_load(k, k->in[cv->ix], cv->tx, xi), cv->tx, cv->tacc);
  LLVMValueRef cur = cg_load(k, k->out[0], cv->to, oi);
  cg_store(k, k->out[0], cv->to, oi, lw_fma(k, cv->tacc, c->wv, xv, cur));
  lw_loop_end_nounroll(k, &l2);
  cg_loop_end(k, &l1);
  cg_loop_end(k, &l0);
}

/* One output plane of a float Conv / ConvTranspose: i = n * out_channels + oc. */
static void float_plane(CgKernel *k, LLVMValueRef i, void *user) {
  const Cv *cv = user;
  int64_t out_ch = cv->transpose ? cv->Mg * cv->G : cv->M;
  LLVMValueRef n = lw_divc(k, i, out_ch), oc = lw_remc(k, i, out_ch);
  LLVMValueRef g = lw_divc(k, oc, cv->Mg), m = lw_remc(k, oc, cv->Mg);
  TapCtx c;
  c.obase = lw_mulc(k, i, cv->osz);
  init_plane(k, cv, c.obase, oc, cv->osz);
  TapTabs tt = tap_tables(k, &cv->w);
  CgLoop lc = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->Cg));
  LLVMValueRef ic = lw_madc(k, g, cv->Cg, lc.i);
  c.xbase = lw_mulc(k, lw_madc(k, n, cv->C, ic), cv->isz);
  /* Conv weight [M, Cg, k...]; ConvTranspose weight [C, Mg, k...]. */
  LLVMValueRef wbase = cv->transpose ? lw_mulc(k, lw_madc(k, ic, cv->Mg, m), cv->ksz)
                                     : lw_mulc(k, lw_madc(k, oc, cv->Cg, lc.i), cv->ksz);
  CgLoop t0 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->w.k[0]));
  CgLoop t1 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->w.k[1]));
  CgLoop t2 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->w.k[2]));
  LLVMValueRef widx = lw_add(k, wbase, lw_madc(k, lw_madc(k, t0.i, cv->w.k[1], t1.i), cv->w.k[2], t2.i));
  c.wv = cg_convert(k, cg_load(k, k->in[cv->iw], cv->tw, widx), cv->tw, cv->tacc);
  c.t[0] = t0.i, c.t[1] = t1.i, c.t[2] = t2.i;
  emit_tap(k, cv, &tt, &c);
  cg_loop_end(k, &t2);
  cg_loop_end(k, &t1);
  cg_loop_end(k, &t0);
  cg_loop_end(k, &lc);
}

/* ---- float Conv as tiles of im2col rows times weight rows ---------------------------------- *
 * One parallel iteration handles a block of output channels of one (batch, group). The output
 * rows (od, oh) are cut into tiles of about TILE elements; for each tile and each (input channel,
 * tap) the matching input elements are gathered once into a small stack buffer (zeros where the
 * tap falls in the padding), then every output channel of the block adds weight * buffer to its
 * tile: a long unit-stride FMA loop, whatever the stride, padding or output width. */
#define CONV_TILE 256
#define CONV_MBLOCK 32

typedef struct Blk {
  const Cv *cv;
  int64_t rows, tr, ntiles, mb, nmb, q;  /* output rows (od,oh), rows per tile, tiles; channel block */
  int64_t nts, tps;                      /* tile ranges per block (for parallelism), tiles per range */
  bool pointwise;                        /* 1x1, stride 1, no padding: the input rows are the tile */
} Blk;

/* col[(r - r0) * OW + ow] = x[c, tap](r, ow) for rows [r0, r1), 0 in the padding. */
static void gather_rows(CgKernel *k, const Blk *bk, LLVMValueRef col, LLVMValueRef xbase, LLVMValueRef *t,
                        const TapTabs *tt, LLVMValueRef r0, LLVMValueRef r1) {
  const Cv *cv = bk->cv;
  const LwWindow *w = &cv->w;
  LLVMValueRef lo[LW_MAX_SP], hi[LW_MAX_SP];
  for (int i = 0; i < LW_MAX_SP; i++) lo[i] = lw_i64_at(k, tt->lo[i], t[i]), hi[i] = lw_i64_at(k, tt->hi[i], t[i]);
  CgLoop lr = cg_loop_begin(k, r0, r1);
  LLVMValueRef rb = lw_mulc(k, lw_sub(k, lr.i, r0), w->out[2]);
  CgLoop lz = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->out[2]));
  cg_store(k, col, cv->tx, lw_add(k, rb, lz.i), cg_const(k, cv->tx, 0));
  lw_loop_end_nounroll(k, &lz);
  LLVMValueRef od = lw_divc(k, lr.i, w->out[1]), oh = lw_remc(k, lr.i, w->out[1]);
  LLVMBuilderRef b = k->b;
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, od, lo[0], ""), LLVMBuildICmp(b, LLVMIntSLT, od, hi[0], ""), ""),
                                 LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, oh, lo[1], ""), LLVMBuildICmp(b, LLVMIntSLT, oh, hi[1], ""), ""), "");
  CgIf ci = cg_if_begin(k, ok);
  LLVMValueRef id = lw_add(k, lw_mulc(k, od, w->s[0]), lw_addc(k, lw_mulc(k, t[0], w->d[0]), -w->pb[0]));
  LLVMValueRef ih = lw_add(k, lw_mulc(k, oh, w->s[1]), lw_addc(k, lw_mulc(k, t[1], w->d[1]), -w->pb[1]));
  LLVMValueRef xrow = lw_add(k, xbase, lw_mulc(k, lw_madc(k, id, w->in[1], ih), w->in[2]));
  xrow = lw_add(k, xrow, lw_addc(k, lw_mulc(k, t[2], w->d[2]), -w->pb[2]));
  CgLoop lw = cg_loop_begin(k, lo[2], hi[2]);
  LLVMValueRef v = cg_load(k, k->in[cv->ix], cv->tx, lw_add(k, xrow, lw_mulc(k, lw.i, w->s[2])));
  cg_store(k, col, cv->tx, lw_add(k, rb, lw.i), v);
  lw_loop_end_nounroll(k, &lw);
  cg_if_end(k, &ci);
  lw_loop_end_nounroll(k, &lr);
}

/* out[m, tile] += W[m, q] * col for channels m in [m0, m0 + nm): nm rows share each col load. */
static void fma_rows(CgKernel *k, const Blk *bk, LLVMValueRef col, LLVMValueRef q, LLVMValueRef m0, int nm,
                     LLVMValueRef obase, LLVMValueRef len) {
  const Cv *cv = bk->cv;
  LLVMValueRef wv[4], ob[4];
  for (int j = 0; j < nm; j++) {
    LLVMValueRef m = lw_addc(k, m0, j);
    wv[j] = cg_convert(k, cg_load(k, k->in[cv->iw], cv->tw, lw_madc(k, m, bk->q, q)), cv->tw, cv->tacc);
    ob[j] = lw_add(k, obase, lw_mulc(k, m, cv->osz));
  }
  /* f32/f64: the rows and the source are disjoint; say so, so the loop needs no overlap checks. */
  bool tag = cv->tx == cv->to && cv->tx == cv->tacc;
  LwScopes sc = lw_scopes(k, nm + 1);
  CgLoop lp = cg_loop_begin(k, cg_i64(k, 0), len);
  LLVMValueRef xv = cg_load(k, col, cv->tx, lp.i);
  if (tag) lw_in_scope(k, &sc, nm, xv);
  xv = cg_convert(k, xv, cv->tx, cv->tacc);
  LLVMValueRef oi[4];
  for (int j = 0; j < nm; j++) oi[j] = lw_add(k, ob[j], lp.i);
  lw_fma_rows(k, cv->to, cv->tacc, wv, xv, oi, nm, tag ? &sc : NULL);
  lw_loop_end_nounroll(k, &lp);
}

/* out[m, tile] += W[m, q] * col for every channel m of the block, four channels at a time. */
static void block_fma(CgKernel *k, const Blk *bk, LLVMValueRef col, LLVMValueRef q, LLVMValueRef oc0,
                      LLVMValueRef m1, LLVMValueRef obase, LLVMValueRef len) {
  LLVMValueRef n4 = LLVMBuildAnd(k->b, lw_sub(k, m1, oc0), cg_i64(k, ~(int64_t)3), "");
  LLVMValueRef m4 = lw_add(k, oc0, n4);
  CgLoop l4 = cg_loop_begin(k, cg_i64(k, 0), lw_divc(k, n4, 4));
  fma_rows(k, bk, col, q, lw_add(k, oc0, lw_mulc(k, l4.i, 4)), 4, obase, len);
  cg_loop_end(k, &l4);
  CgLoop l1 = cg_loop_begin(k, m4, m1);
  fma_rows(k, bk, col, q, l1.i, 1, obase, len);
  cg_loop_end(k, &l1);
}

/* out[m, tile] = bias[m] (or 0) for every channel m of the block. */
static void init_tile(CgKernel *k, const Cv *cv, LLVMValueRef oc0, LLVMValueRef m1, LLVMValueRef obase, LLVMValueRef len) {
  CgLoop lm = cg_loop_begin(k, oc0, m1);
  LLVMValueRef v = cg_const(k, cv->to, 0);
  if (lw_has(k, cv->ib)) {
    KnDtype bt = cg_in_dtype(k, cv->ib);
    v = cg_convert(k, cg_load(k, k->in[cv->ib], bt, lm.i), bt, cv->to);
  }
  LLVMValueRef ob = lw_add(k, obase, lw_mulc(k, lm.i, cv->osz));
  CgLoop lp = cg_loop_begin(k, cg_i64(k, 0), len);
  cg_store(k, k->out[0], cv->to, lw_add(k, ob, lp.i), v);
  lw_loop_end_nounroll(k, &lp);
  cg_loop_end(k, &lm);
}

static LLVMValueRef imin(CgKernel *k, LLVMValueRef a, LLVMValueRef b) {
  return cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, a, b, ""), a, b);
}

/* One (batch, group, channel block, tile range) of the blocked conv. */
static void block_body(CgKernel *k, LLVMValueRef it, void *user) {
  const Blk *bk = user;
  const Cv *cv = bk->cv;
  const LwWindow *w = &cv->w;
  LLVMValueRef ts = lw_remc(k, it, bk->nts), rest = lw_divc(k, it, bk->nts);
  LLVMValueRef mbi = lw_remc(k, rest, bk->nmb), ng = lw_divc(k, rest, bk->nmb);
  LLVMValueRef n = lw_divc(k, ng, cv->G), g = lw_remc(k, ng, cv->G);
  LLVMValueRef oc0 = lw_madc(k, g, cv->Mg, lw_mulc(k, mbi, bk->mb));   /* first output channel */
  LLVMValueRef m1 = imin(k, lw_addc(k, oc0, bk->mb), lw_madc(k, g, cv->Mg, cg_i64(k, cv->Mg)));
  LLVMValueRef nbase = lw_mulc(k, n, cv->M * cv->osz);
  TapTabs tt = tap_tables(k, w);
  LLVMValueRef col = bk->pointwise ? NULL : cg_var(k, LLVMArrayType2(cg_storage_type(k->m, cv->tx), (uint64_t)(bk->tr * w->out[2])), NULL);
  LLVMValueRef t_lo = lw_mulc(k, ts, bk->tps);
  CgLoop lt = cg_loop_begin(k, t_lo, imin(k, lw_addc(k, t_lo, bk->tps), cg_i64(k, bk->ntiles)));
  LLVMValueRef r0 = lw_mulc(k, lt.i, bk->tr), r1 = imin(k, lw_addc(k, r0, bk->tr), cg_i64(k, bk->rows));
  LLVMValueRef len = lw_mulc(k, lw_sub(k, r1, r0), w->out[2]), obase = lw_add(k, nbase, lw_mulc(k, r0, w->out[2]));
  init_tile(k, cv, oc0, m1, obase, len);
  CgLoop lc = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->Cg));
  LLVMValueRef xbase = lw_mulc(k, lw_madc(k, n, cv->C, lw_madc(k, g, cv->Cg, lc.i)), cv->isz);
  CgLoop t0 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->k[0]));
  CgLoop t1 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->k[1]));
  CgLoop t2 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->k[2]));
  LLVMValueRef t[LW_MAX_SP] = {t0.i, t1.i, t2.i};
  LLVMValueRef src = col;
  if (bk->pointwise) src = cg_elem_ptr(k, k->in[cv->ix], cv->tx, lw_add(k, xbase, lw_mulc(k, r0, w->out[2])));
  else gather_rows(k, bk, col, xbase, t, &tt, r0, r1);
  LLVMValueRef q = lw_madc(k, lc.i, cv->ksz, lw_madc(k, lw_madc(k, t0.i, w->k[1], t1.i), w->k[2], t2.i));
  block_fma(k, bk, src, q, oc0, m1, obase, len);
  cg_loop_end(k, &t2);
  cg_loop_end(k, &t1);
  cg_loop_end(k, &t0);
  cg_loop_end(k, &lc);
  cg_loop_end(k, &lt);
}

static void emit_blocked(CgKernel *k, const Cv *cv) {
  const LwWindow *w = &cv->w;
  Blk bk = {.cv = cv, .rows = w->out[0] * w->out[1], .q = cv->Cg * cv->ksz};
  bk.tr = w->out[2] >= CONV_TILE ? 1 : CONV_TILE / w->out[2];
  if (bk.tr > bk.rows) bk.tr = bk.rows;
  bk.ntiles = (bk.rows + bk.tr - 1) / bk.tr;
  bk.mb = cv->Mg < CONV_MBLOCK ? cv->Mg : CONV_MBLOCK;
  bk.nmb = (cv->Mg + bk.mb - 1) / bk.mb;
  bk.pointwise = true;
  for (int i = 0; i < LW_MAX_SP; i++)
    bk.pointwise &= w->k[i] == 1 && w->s[i] == 1 && w->pb[i] == 0 && w->in[i] == w->out[i];
  /* Few channel blocks (a project conv with 24 outputs): also split the tiles across threads. */
  int64_t blocks = cv->N * cv->G * bk.nmb;
  bk.nts = blocks >= 8 ? 1 : (8 + blocks - 1) / blocks;
  if (bk.nts > bk.ntiles) bk.nts = bk.ntiles;
  bk.tps = (bk.ntiles + bk.nts - 1) / bk.nts;
  bk.nts = (bk.ntiles + bk.tps - 1) / bk.tps;
  cg_parallel_for(k, blocks * bk.nts, 1, block_body, &bk);
}

/* ---- float Conv as the shared GEMM (cg_gemm.h) -------------------------------------------- *
 * Per (image, group): Y[Mg][pixels] = W[Mg][Cg * taps] x im2col(X)[Cg * taps][pixels] + bias. A
 * 1x1, stride-1, unpadded conv reads X as B as it is; any other conv packs B panel by panel. With
 * up to TAPS_UNROLLED_MAX taps, panels hold whole channels and the packer unrolls the taps (below);
 * beyond that, the input coordinates of a strip's pixels are computed once per panel, then each row
 * k = (channel, tap) is one offset added to them, read with a plain vector load where the pixels
 * are consecutive inputs inside the image and with a masked gather elsewhere (padding, row ends,
 * strides). Indices within one channel plane are i32 (conv_gemm_fits checks they fit). */

/* Dim i's input coordinate o*s - pb + t*d is inside [0, in) for every output o and tap t. */
static bool dim_always_inside(const LwWindow *w, int i) {
  return w->pb[i] == 0 && (w->out[i] - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] < w->in[i];
}

typedef struct PackCtx {
  const Cv *cv;
  LLVMTypeRef vi, vf; /* <lanes x i32>, <lanes x float> */
  int lanes;
  int nseg;           /* stride-1 rows: output rows one vector of pixels may span (0: gathers) */
} PackCtx;

/* What conv_pack knows about one vector of a strip's pixels before it walks K. */
typedef struct PixVec {
  LLVMValueRef coord[LW_MAX_SP]; /* input coordinate of tap 0 per dim (<lanes x i32>) */
  LLVMValueRef base;             /* their element index within a channel plane (<lanes x i32>) */
  LLVMValueRef seg_mask[8];      /* nseg > 0: the lanes of each output row */
  LLVMValueRef seg_off[8];       /* nseg > 0: per row, the index of lane 0 if the row went on (i64) */
  LLVMValueRef one_row;          /* i1: every lane in one output row */
} PixVec;

static LLVMValueRef splat_i32(CgKernel *k, const PackCtx *pc, LLVMValueRef x) {
  LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(pc->vi), x, cg_i32(k, 0), "");
  return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(pc->vi), LLVMConstNull(pc->vi), "");
}

static LLVMValueRef const_i32v(const PackCtx *pc, int64_t c) {
  LLVMValueRef e[64];
  for (int i = 0; i < pc->lanes; i++) e[i] = LLVMConstInt(LLVMGetElementType(pc->vi), (unsigned long long)c, 1);
  return LLVMConstVector(e, (unsigned)pc->lanes);
}

static LLVMValueRef lane_ids(const PackCtx *pc, int first) {
  LLVMValueRef e[64];
  for (int i = 0; i < pc->lanes; i++) e[i] = LLVMConstInt(LLVMGetElementType(pc->vi), (unsigned long long)(first + i), 0);
  return LLVMConstVector(e, (unsigned)pc->lanes);
}

/* The element index within a channel plane of tap 0 of output pixel p (an i64 value). */
static LLVMValueRef pixel_base(CgKernel *k, const LwWindow *w, LLVMValueRef p) {
  LLVMValueRef o2 = lw_remc(k, p, w->out[2]), r = lw_divc(k, p, w->out[2]);
  LLVMValueRef o1 = lw_remc(k, r, w->out[1]), o0 = lw_divc(k, r, w->out[1]);
  LLVMValueRef c0 = lw_addc(k, lw_mulc(k, o0, w->s[0]), -w->pb[0]), c1 = lw_addc(k, lw_mulc(k, o1, w->s[1]), -w->pb[1]);
  LLVMValueRef c2 = lw_addc(k, lw_mulc(k, o2, w->s[2]), -w->pb[2]);
  return lw_add(k, lw_mulc(k, lw_add(k, lw_mulc(k, c0, w->in[1]), c1), w->in[2]), c2);
}

/* Coordinates, indices and output-row segments of the pixels n0 + first + lane. */
static void pixel_vector(CgKernel *k, const PackCtx *pc, LLVMValueRef n0, int first, PixVec *pv) {
  const LwWindow *w = &pc->cv->w;
  LLVMBuilderRef b = k->b;
  LLVMValueRef p = LLVMBuildAdd(b, splat_i32(k, pc, LLVMBuildTrunc(b, n0, k->m->t_i32, "")), lane_ids(pc, first), "");
  LLVMValueRef o[LW_MAX_SP];
  o[2] = LLVMBuildURem(b, p, const_i32v(pc, w->out[2]), "");
  p = LLVMBuildUDiv(b, p, const_i32v(pc, w->out[2]), "");
  o[1] = LLVMBuildURem(b, p, const_i32v(pc, w->out[1]), "");
  o[0] = LLVMBuildUDiv(b, p, const_i32v(pc, w->out[1]), "");
  for (int i = 0; i < LW_MAX_SP; i++)
    pv->coord[i] = LLVMBuildSub(b, LLVMBuildMul(b, o[i], const_i32v(pc, w->s[i]), ""), const_i32v(pc, w->pb[i]), "");
  pv->base = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, pv->coord[0], const_i32v(pc, w->in[1]), ""), pv->coord[1], ""),
                                          const_i32v(pc, w->in[2]), ""), pv->coord[2], "");
  LLVMValueRef p0 = lw_addc(k, n0, first), col0 = lw_remc(k, p0, w->out[2]);
  pv->one_row = LLVMBuildICmp(b, LLVMIntSLT, lw_addc(k, col0, pc->lanes - 1), cg_i64(k, w->out[2]), "");
  /* segment s starts at lane a_s (row s of the vector); its lanes read x[seg_off + lane] */
  LLVMValueRef ids = lane_ids(pc, 0), start = cg_i64(k, 0);
  for (int sg = 0; sg < pc->nseg; sg++) {
    LLVMValueRef next = lw_add(k, lw_sub(k, cg_i64(k, w->out[2]), col0), cg_i64(k, (int64_t)sg * w->out[2]));
    LLVMValueRef lo = LLVMBuildICmp(b, LLVMIntSGE, ids, splat_i32(k, pc, LLVMBuildTrunc(b, start, k->m->t_i32, "")), "");
    LLVMValueRef hi = LLVMBuildICmp(b, LLVMIntSLT, ids, splat_i32(k, pc, LLVMBuildTrunc(b, next, k->m->t_i32, "")), "");
    pv->seg_mask[sg] = sg == pc->nseg - 1 ? lo : LLVMBuildAnd(b, lo, hi, "");
    pv->seg_off[sg] = lw_sub(k, pixel_base(k, w, lw_add(k, p0, start)), start);
    start = next;
  }
}

/* Per tap: {d0, d1, d2, offset}, the tap's coordinate shift per dim and its element offset. */
static LLVMValueRef tap_shift_table(CgKernel *k, const LwWindow *w, int64_t ksz) {
  int64_t tab[ksz * 4];
  for (int64_t t = 0; t < ksz; t++) {
    int64_t t2 = t % w->k[2], t1 = t / w->k[2] % w->k[1], t0 = t / (w->k[2] * w->k[1]);
    int64_t *e = &tab[t * 4];
    e[0] = t0 * w->d[0], e[1] = t1 * w->d[1], e[2] = t2 * w->d[2];
    e[3] = (e[0] * w->in[1] + e[1]) * w->in[2] + e[2];
  }
  return lw_table(k, tab, ksz * 4);
}

static LLVMValueRef masked_op(CgKernel *k, const char *name, LLVMTypeRef *ov, LLVMValueRef *args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  return LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2), args, 4, "");
}

/* Stride-1 rows: one masked load per output row the vector spans (lanes outside the image: 0). */
static LLVMValueRef pack_rows(CgKernel *k, const PackCtx *pc, const PixVec *pv, LLVMValueRef xb, LLVMValueRef shift,
                              LLVMValueRef ok) {
  LLVMValueRef res = LLVMConstNull(pc->vf);
  LLVMTypeRef ov[2] = {pc->vf, k->m->t_ptr};
  for (int sg = 0; sg < pc->nseg; sg++) {
    LLVMValueRef at = lw_add(k, pv->seg_off[sg], shift);
    LLVMValueRef args[4] = {LLVMBuildGEP2(k->b, k->m->t_f32, xb, &at, 1, ""), cg_i32(k, 4),
                            LLVMBuildAnd(k->b, ok, pv->seg_mask[sg], ""), res};
    res = masked_op(k, "llvm.masked.load", ov, args);
  }
  return res;
}

/* Lanes reading x[idx] (<lanes x i64>) where ok: a masked gather, or when pair (i1; stride 2, every
 * lane inside and in one output row) two loads from first = idx[0] and a de-interleave. */
static LLVMValueRef strided_load(CgKernel *k, const PackCtx *pc, LLVMValueRef xb, LLVMValueRef pair, LLVMValueRef first,
                                 LLVMValueRef idx, LLVMValueRef ok) {
  LLVMBuilderRef b = k->b;
  int n = pc->lanes;
  LLVMValueRef res = cg_var(k, pc->vf, NULL);
  CgIf c = cg_if_begin(k, pair);
  if (pc->cv->w.s[2] == 2) { /* lanes read x[i0 + 2j]: vectors at i0 and i0 + n - 1 cover them */
    LLVMValueRef i1 = lw_addc(k, first, n - 1);
    LLVMValueRef v0 = LLVMBuildLoad2(b, pc->vf, LLVMBuildGEP2(b, k->m->t_f32, xb, &first, 1, ""), "");
    LLVMValueRef v1 = LLVMBuildLoad2(b, pc->vf, LLVMBuildGEP2(b, k->m->t_f32, xb, &i1, 1, ""), "");
    LLVMSetAlignment(v0, 4), LLVMSetAlignment(v1, 4);
    LLVMValueRef e[64];
    for (int j = 0; j < n; j++) e[j] = cg_i32(k, 2 * j < n ? 2 * j : n + 2 * j - (n - 1));
    LLVMBuildStore(b, LLVMBuildShuffleVector(b, v0, v1, LLVMConstVector(e, (unsigned)n), ""), res);
  }
  cg_if_else(k, &c);
  LLVMTypeRef ov[2] = {pc->vf, LLVMVectorType(k->m->t_ptr, (unsigned)n)};
  LLVMValueRef args[4] = {LLVMBuildGEP2(b, k->m->t_f32, xb, &idx, 1, ""), cg_i32(k, 4), ok, LLVMConstNull(pc->vf)};
  LLVMBuildStore(b, masked_op(k, "llvm.masked.gather", ov, args), res);
  cg_if_end(k, &c);
  return LLVMBuildLoad2(b, pc->vf, res, "");
}

/* Whether stride 2 can take strided_load's two loads: every lane ok and in one output row. */
static LLVMValueRef pair_ok(CgKernel *k, const PackCtx *pc, const PixVec *pv, LLVMValueRef ok) {
  if (pc->cv->w.s[2] != 2) return LLVMConstInt(k->m->t_i1, 0, 0);
  LLVMTypeRef mt = LLVMIntTypeInContext(k->m->ctx, (unsigned)pc->lanes);
  LLVMValueRef all = LLVMBuildICmp(k->b, LLVMIntEQ, LLVMBuildBitCast(k->b, ok, mt, ""), LLVMConstAllOnes(mt), "");
  return LLVMBuildAnd(k->b, all, pv->one_row, "");
}

/* Other strides, one panel row: strided_load from the strip's pixels shifted by one tap. */
static LLVMValueRef pack_strided(CgKernel *k, const PackCtx *pc, const PixVec *pv, LLVMValueRef xb,
                                 LLVMValueRef shift, LLVMValueRef ok) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef idx = LLVMBuildAdd(b, pv->base, splat_i32(k, pc, LLVMBuildTrunc(b, shift, k->m->t_i32, "")), "");
  LLVMValueRef first = LLVMBuildSExt(b, LLVMBuildExtractElement(b, idx, cg_i32(k, 0), ""), k->m->t_i64, "");
  LLVMValueRef wide = LLVMBuildSExt(b, idx, LLVMVectorType(k->m->t_i64, (unsigned)pc->lanes), "");
  return strided_load(k, pc, xb, pair_ok(k, pc, pv, ok), first, wide, ok);
}

/* Lanes [first, first + lanes) that are < cols (an i64 value), as <lanes x i1>. */
static LLVMValueRef col_mask(CgKernel *k, const PackCtx *pc, int first, LLVMValueRef cols) {
  LLVMValueRef lim = splat_i32(k, pc, LLVMBuildTrunc(k->b, cols, k->m->t_i32, ""));
  return LLVMBuildICmp(k->b, LLVMIntSLT, lane_ids(pc, first), lim, "");
}

/* Output rows one vector of pixels may span when the masked-load form pays (0: it does not). */
static int row_segments(const LwWindow *w, int lanes) {
  if (w->s[2] != 1) return 0;
  int64_t n = (lanes - 1 + w->out[2] - 1) / w->out[2] + 1;
  return n <= 4 ? (int)n : 0;
}

/* The CgGemmPackFn of a conv: panel[kk][j] = im2col(x)[k0 + kk][n0 + j]. */
static void conv_pack(CgKernel *k, void *user, LLVMValueRef panel, int64_t nr, LLVMValueRef batch, LLVMValueRef n0,
                      LLVMValueRef cols, LLVMValueRef k0, LLVMValueRef kc) {
  const Cv *cv = user;
  const LwWindow *w = &cv->w;
  LLVMBuilderRef b = k->b;
  int lanes = k->m->vec_lanes > 0 ? k->m->vec_lanes : 4, nv = (int)(nr / lanes);
  PackCtx pc = {cv, LLVMVectorType(k->m->t_i32, (unsigned)lanes), LLVMVectorType(k->m->t_f32, (unsigned)lanes), lanes,
                row_segments(w, lanes)};
  PixVec pv[2];
  LLVMValueRef tabs = tap_shift_table(k, w, cv->ksz);
  for (int v = 0; v < nv && v < 2; v++) pixel_vector(k, &pc, n0, v * lanes, &pv[v]);
  LLVMValueRef xbat = cg_elem_ptr(k, k->in[cv->ix], KN_F32, lw_mulc(k, batch, cv->Cg * cv->isz));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), kc);
  LLVMValueRef kq = lw_add(k, k0, l.i);
  LLVMValueRef ch = lw_divc(k, kq, cv->ksz), tap = lw_sub(k, kq, lw_mulc(k, ch, cv->ksz));
  LLVMValueRef xb = cg_elem_ptr(k, xbat, KN_F32, lw_mulc(k, ch, cv->isz));
  LLVMValueRef sh[4];
  for (int i = 0; i < 4; i++) sh[i] = lw_i64_at(k, tabs, lw_addc(k, lw_mulc(k, tap, 4), i));
  for (int v = 0; v < nv; v++) {
    LLVMValueRef dst = cg_elem_ptr(k, panel, KN_F32, lw_addc(k, lw_mulc(k, l.i, nr), (int64_t)v * lanes)), x;
    if (v >= 2) {
      x = LLVMConstNull(pc.vf);
    } else {
      LLVMValueRef ok = col_mask(k, &pc, v * lanes, cols);
      for (int i = 0; i < LW_MAX_SP; i++) {
        if (dim_always_inside(w, i)) continue;
        LLVMValueRef ci = LLVMBuildAdd(b, pv[v].coord[i], splat_i32(k, &pc, LLVMBuildTrunc(b, sh[i], k->m->t_i32, "")), "");
        ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntULT, ci, const_i32v(&pc, w->in[i]), ""), "");
      }
      x = pc.nseg ? pack_rows(k, &pc, &pv[v], xb, sh[3], ok) : pack_strided(k, &pc, &pv[v], xb, sh[3], ok);
    }
    LLVMSetAlignment(LLVMBuildStore(b, x, dst), 4);
  }
  lw_loop_end_nounroll(k, &l);
}

/* ---- whole channels per panel --------------------------------------------------------------- *
 * With kc_multiple = taps, a panel holds whole channels, so the K loop can run over channels with
 * the taps unrolled inside: which lanes of a tap are inside the image and where they read depend
 * on the strip and the tap but not on the channel. They are computed once per strip, and each
 * panel row is then only its loads and a store: a masked load per output-row segment at stride 1;
 * at other strides a masked gather, or for stride 2 with the vector in one output row and inside
 * the image, two loads and a de-interleave (a branch that goes the same way for every channel). */
#define TAPS_UNROLLED_MAX 27

typedef struct TapRead {
  LLVMValueRef mask[4]; /* stride 1, per output-row segment: the lanes this tap reads */
  LLVMValueRef off[4];  /* stride 1, per segment: the element index of lane 0 in the channel plane */
  LLVMValueRef ok, idx; /* strided: the lanes inside, and their element indices (<lanes x i64>) */
  LLVMValueRef pair;    /* stride 2: i1, every lane inside and in one output row */
  LLVMValueRef first;   /* stride 2: the element index of lane 0 (i64) */
} TapRead;

static void tap_reads(CgKernel *k, const PackCtx *pc, const PixVec *pv, LLVMValueRef ok_cols, int64_t tap, TapRead *tr) {
  const LwWindow *w = &pc->cv->w;
  LLVMBuilderRef b = k->b;
  int64_t t2 = tap % w->k[2], t1 = tap / w->k[2] % w->k[1], t0 = tap / (w->k[2] * w->k[1]);
  int64_t sh[3] = {t0 * w->d[0], t1 * w->d[1], t2 * w->d[2]}, off = (sh[0] * w->in[1] + sh[1]) * w->in[2] + sh[2];
  LLVMValueRef ok = ok_cols;
  for (int i = 0; i < LW_MAX_SP; i++) {
    if (dim_always_inside(w, i)) continue;
    LLVMValueRef ci = LLVMBuildAdd(b, pv->coord[i], const_i32v(pc, sh[i]), "");
    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntULT, ci, const_i32v(pc, w->in[i]), ""), "");
  }
  for (int sg = 0; sg < pc->nseg; sg++) {
    tr->mask[sg] = LLVMBuildAnd(b, ok, pv->seg_mask[sg], "");
    tr->off[sg] = lw_addc(k, pv->seg_off[sg], off);
  }
  if (pc->nseg) return;
  LLVMValueRef idx = LLVMBuildAdd(b, pv->base, const_i32v(pc, off), "");
  tr->ok = ok;
  tr->idx = LLVMBuildSExt(b, idx, LLVMVectorType(k->m->t_i64, (unsigned)pc->lanes), "");
  tr->first = LLVMBuildSExt(b, LLVMBuildExtractElement(b, idx, cg_i32(k, 0), ""), k->m->t_i64, "");
  tr->pair = pair_ok(k, pc, pv, ok);
}

/* One panel row's vector through tap tr from channel plane xb. */
static LLVMValueRef tap_load(CgKernel *k, const PackCtx *pc, const TapRead *tr, LLVMValueRef xb) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef x = LLVMConstNull(pc->vf);
  LLVMTypeRef ov[2] = {pc->vf, k->m->t_ptr};
  for (int sg = 0; sg < pc->nseg; sg++) {
    LLVMValueRef args[4] = {LLVMBuildGEP2(b, k->m->t_f32, xb, (LLVMValueRef *)&tr->off[sg], 1, ""), cg_i32(k, 4), tr->mask[sg], x};
    x = masked_op(k, "llvm.masked.load", ov, args);
  }
  if (pc->nseg) return x;
  return strided_load(k, pc, xb, tr->pair, tr->first, tr->idx, tr->ok);
}

/* The CgGemmPackFn of a conv whose panels hold whole channels (k0, kc multiples of the taps):
 * panel[c * taps + t][j] = x[channel k0 / taps + c] read through tap t. */
static void conv_pack_taps(CgKernel *k, void *user, LLVMValueRef panel, int64_t nr, LLVMValueRef batch, LLVMValueRef n0,
                           LLVMValueRef cols, LLVMValueRef k0, LLVMValueRef kc) {
  const Cv *cv = user;
  int lanes = k->m->vec_lanes > 0 ? k->m->vec_lanes : 4, nv = (int)(nr / lanes);
  PackCtx pc = {cv, LLVMVectorType(k->m->t_i32, (unsigned)lanes), LLVMVectorType(k->m->t_f32, (unsigned)lanes), lanes,
                row_segments(&cv->w, lanes)};
  PixVec pv[2];
  TapRead tr[TAPS_UNROLLED_MAX][2];
  for (int v = 0; v < nv && v < 2; v++) {
    pixel_vector(k, &pc, n0, v * lanes, &pv[v]);
    LLVMValueRef ok_cols = col_mask(k, &pc, v * lanes, cols);
    for (int64_t t = 0; t < cv->ksz; t++) tap_reads(k, &pc, &pv[v], ok_cols, t, &tr[t][v]);
  }
  LLVMValueRef ch0 = lw_divc(k, k0, cv->ksz);
  LLVMValueRef xbat = cg_elem_ptr(k, k->in[cv->ix], KN_F32, lw_add(k, lw_mulc(k, batch, cv->Cg * cv->isz), lw_mulc(k, ch0, cv->isz)));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), lw_divc(k, kc, cv->ksz));
  LLVMValueRef xb = cg_elem_ptr(k, xbat, KN_F32, lw_mulc(k, l.i, cv->isz));
  LLVMValueRef row0 = lw_mulc(k, l.i, cv->ksz);
  for (int64_t t = 0; t < cv->ksz; t++)
    for (int v = 0; v < nv; v++) {
      LLVMValueRef x = v < 2 ? tap_load(k, &pc, &tr[t][v], xb) : LLVMConstNull(pc.vf);
      LLVMValueRef at = lw_addc(k, lw_mulc(k, lw_addc(k, row0, t), nr), (int64_t)v * lanes);
      LLVMSetAlignment(LLVMBuildStore(k->b, x, cg_elem_ptr(k, panel, KN_F32, at)), 4);
    }
  lw_loop_end_nounroll(k, &l);
}

/* Whether the i32 indices of conv_pack cannot overflow. */
static bool conv_gemm_fits(const Cv *cv) {
  const LwWindow *w = &cv->w;
  int64_t ext = 1;
  for (int i = 0; i < LW_MAX_SP; i++) {
    int64_t reach = (w->out[i] - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1, e = (reach > w->in[i] ? reach : w->in[i]) + w->pb[i];
    if (e > (1 << 20)) return false;
    ext *= e;
    if (ext > (1 << 29)) return false;
  }
  return cv->osz < (1 << 29);
}

/* Float Conv (not depthwise) through cg_emit_gemm; false when it does not fit (the caller falls
 * back to the loops). */
static bool try_conv_gemm(CgKernel *k, Cv *cv) {
  const LwWindow *w = &cv->w;
  if (k->m->opt_level < 1 || cv->tx != KN_F32 || cv->tw != KN_F32 || cv->to != KN_F32) return false;
  if (lw_has(k, cv->ib) && cg_in_dtype(k, cv->ib) != KN_F32) return false;
  if (!conv_gemm_fits(cv) || cv->ksz > 1024 || cg_gemm_nr(k->m) / (k->m->vec_lanes > 0 ? k->m->vec_lanes : 4) != 2) return false;
  bool pointwise = true;
  for (int i = 0; i < LW_MAX_SP; i++)
    pointwise &= w->k[i] == 1 && w->s[i] == 1 && w->pb[i] == 0 && w->in[i] == w->out[i];
  int64_t K = cv->Cg * cv->ksz, G = cv->G;
  /* batch entry b = image * G + group: A and the bias repeat every G entries */
  CgGemm g = {.batch = cv->N * G, .M = cv->Mg, .N = cv->osz, .K = K, .alpha = 1, .beta = 0,
              .a = {.src = CG_GEMM_IN, .index = cv->iw, .rs = K, .cs = 1, .batch_stride = G > 1 ? cv->Mg * K : 0, .batch_mod = G},
              .b = {.src = CG_GEMM_IN, .index = cv->ix, .rs = cv->isz, .cs = 1, .batch_stride = cv->Cg * cv->isz},
              .c = {.src = CG_GEMM_OUT, .index = 0, .rs = cv->osz, .cs = 1, .batch_stride = cv->Mg * cv->osz}};
  if (lw_has(k, cv->ib))
    g.bias_kind = CG_BIAS_ROW,
    g.bias = (CgGemmOperand){.src = CG_GEMM_IN, .index = cv->ib, .rs = 1, .cs = 1, .batch_stride = G > 1 ? cv->Mg : 0, .batch_mod = G};
  if (!pointwise && cv->ksz <= TAPS_UNROLLED_MAX) /* panels of whole channels, taps unrolled */
    g.pack = conv_pack_taps, g.pack_user = cv, g.kc_multiple = cv->ksz;
  else if (!pointwise)
    g.pack = conv_pack, g.pack_user = cv;
  g.act = cv->act, g.lo = cv->lo, g.hi = cv->hi;
  if (cv->ir >= 0) g.beta = 1, g.resid = (CgGemmOperand){.src = CG_GEMM_IN, .index = cv->ir, .rs = cv->osz, .cs = 1, .batch_stride = cv->Mg * cv->osz};
  if (!cg_gemm_supported(k->m, &g)) return false;
  cg_emit_gemm(k, &g);
  return true;
}

static int64_t grain_for(int64_t work) { return work >= 16384 ? 1 : 16384 / (work ? work : 1); }

/* The kernel's spatial dims from the weight shape (dims 2..). */
static void weight_kdims(CgKernel *k, int iw, int64_t *kd) {
  const KnShape *ws = cg_in_shape(k, iw);
  for (int i = 2; i < ws->rank && i - 2 < LW_MAX_SP; i++) kd[i - 2] = ws->dims[i].value;
}

static KnStatus conv_setup(CgKernel *k, Cv *cv) {
  const KnShape *x = cg_in_shape(k, cv->ix), *y = cg_out_shape(k, 0), *ws = cg_in_shape(k, cv->iw);
  if (x->rank != ws->rank) return cg_unsupported(k, "weight rank differs from input rank");
  int64_t kd[LW_MAX_SP] = {1, 1, 1};
  weight_kdims(k, cv->iw, kd);
  KnStatus st = lw_window(k, x, y, kd, &cv->w);
  if (st) return st;
  cv->N = x->dims[0].value, cv->C = x->dims[1].value;
  cv->M = y->dims[1].value;
  cv->G = ir_attr_int(k->node, "group", 1);
  if (cv->G < 1 || cv->C % cv->G || cv->M % cv->G) return cg_unsupported(k, "group does not divide the channels");
  cv->Cg = cv->C / cv->G, cv->Mg = cv->M / cv->G;
  cv->tx = cg_in_dtype(k, cv->ix), cv->tw = cg_in_dtype(k, cv->iw), cv->to = cg_out_dtype(k, 0);
  return KN_OK;
}

/* ---- integer and quantized convs ---------------------------------------------------------- */
static LLVMValueRef zp_value(CgKernel *k, int i, bool vec, LLVMValueRef ch) {
  if (!lw_has(k, i)) return cg_i32(k, 0);
  KnDtype t = cg_in_dtype(k, i);
  return cg_convert(k, cg_load(k, k->in[i], t, vec ? ch : cg_i64(k, 0)), t, KN_I32);
}

/* QLinearConv output: saturate(round_half_even(acc * x_scale * w_scale / y_scale) + y_zp). */
static LLVMValueRef qconv_requant(CgKernel *k, const Cv *cv, LLVMValueRef acc, LLVMValueRef m) {
  KnDtype tx = cg_in_dtype(k, cv->xs), tw = cg_in_dtype(k, cv->ws), ty = cg_in_dtype(k, cv->ys);
  LLVMValueRef xs = cg_convert(k, cg_load(k, k->in[cv->xs], tx, cg_i64(k, 0)), tx, KN_F32);
  LLVMValueRef ws = cg_convert(k, cg_load(k, k->in[cv->ws], tw, cv->ws_vec ? m : cg_i64(k, 0)), tw, KN_F32);
  LLVMValueRef ys = cg_convert(k, cg_load(k, k->in[cv->ys], ty, cg_i64(k, 0)), ty, KN_F32);
  LLVMValueRef scale = LLVMBuildFDiv(k->b, LLVMBuildFMul(k->b, xs, ws, ""), ys, "");
  LLVMValueRef v = LLVMBuildFMul(k->b, LLVMBuildSIToFP(k->b, acc, k->m->t_f64, ""),
                                 LLVMBuildFPExt(k->b, scale, k->m->t_f64, ""), "");
  v = cg_intrinsic(k, "llvm.roundeven", &v, 1);
  v = LLVMBuildFAdd(k->b, v, LLVMBuildSIToFP(k->b, zp_value(k, cv->yzp, false, m), k->m->t_f64, ""), "");
  bool sg = ir_dtype_is_signed(cv->to);
  v = cg_max(k, KN_F64, v, LLVMConstReal(k->m->t_f64, sg ? -128.0 : 0.0));
  v = cg_min(k, KN_F64, v, LLVMConstReal(k->m->t_f64, sg ? 127.0 : 255.0));
  return cg_convert(k, v, KN_F64, cv->to);
}

/* Sum over input channels and the valid taps of one output element (position p0,p1,p2). */
static LLVMValueRef int_sum(CgKernel *k, const Cv *cv, LLVMValueRef n, LLVMValueRef m, LLVMValueRef g,
                            LLVMValueRef *pos, LLVMValueRef *tlo, LLVMValueRef *thi) {
  const LwWindow *w = &cv->w;
  LLVMValueRef acc = cg_var(k, k->m->t_i32, cg_i32(k, 0));
  LLVMValueRef xzp = zp_value(k, cv->xzp, false, m), wzp = zp_value(k, cv->wzp, cv->wzp_vec, m);
  CgLoop lc = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->Cg));
  LLVMValueRef xbase = lw_mulc(k, lw_madc(k, n, cv->C, lw_madc(k, g, cv->Cg, lc.i)), cv->isz);
  LLVMValueRef wbase = lw_mulc(k, lw_madc(k, m, cv->Cg, lc.i), cv->ksz);
  CgLoop l[LW_MAX_SP];
  LLVMValueRef xi = cg_i64(k, 0), wi = cg_i64(k, 0);
  for (int d = 0; d < LW_MAX_SP; d++) {
    l[d] = cg_loop_begin(k, tlo[d], thi[d]);
    LLVMValueRef in = lw_add(k, lw_addc(k, lw_mulc(k, pos[d], w->s[d]), -w->pb[d]), lw_mulc(k, l[d].i, w->d[d]));
    xi = lw_add(k, lw_mulc(k, xi, w->in[d]), in);
    wi = lw_madc(k, wi, w->k[d], l[d].i);
  }
  LLVMValueRef xv = LLVMBuildSub(k->b, cg_convert(k, cg_load(k, k->in[cv->ix], cv->tx, lw_add(k, xbase, xi)), cv->tx, KN_I32), xzp, "");
  LLVMValueRef wv = LLVMBuildSub(k->b, cg_convert(k, cg_load(k, k->in[cv->iw], cv->tw, lw_add(k, wbase, wi)), cv->tw, KN_I32), wzp, "");
  LLVMValueRef cur = lw_loadv(k, k->m->t_i32, acc);
  LLVMBuildStore(k->b, LLVMBuildAdd(k->b, cur, LLVMBuildMul(k->b, xv, wv, ""), ""), acc);
  for (int d = LW_MAX_SP - 1; d >= 0; d--) cg_loop_end(k, &l[d]);
  cg_loop_end(k, &lc);
  return lw_loadv(k, k->m->t_i32, acc);
}

/* One output plane (n, m) of ConvInteger / QLinearConv. */
static void int_plane(CgKernel *k, LLVMValueRef i, void *user) {
  const Cv *cv = user;
  const LwWindow *w = &cv->w;
  LLVMValueRef n = lw_divc(k, i, cv->M), m = lw_remc(k, i, cv->M), g = lw_divc(k, m, cv->Mg);
  LLVMValueRef tabs_lo[LW_MAX_SP], tabs_hi[LW_MAX_SP];
  for (int d = 0; d < LW_MAX_SP; d++) {
    tabs_lo[d] = lw_table(k, cv->tlo[d], w->out[d]), tabs_hi[d] = lw_table(k, cv->thi[d], w->out[d]);
  }
  CgLoop l[LW_MAX_SP];
  LLVMValueRef pos[LW_MAX_SP], tlo[LW_MAX_SP], thi[LW_MAX_SP], oi = cg_i64(k, 0);
  for (int d = 0; d < LW_MAX_SP; d++) {
    l[d] = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->out[d]));
    pos[d] = l[d].i;
    tlo[d] = lw_i64_at(k, tabs_lo[d], pos[d]), thi[d] = lw_i64_at(k, tabs_hi[d], pos[d]);
    oi = lw_madc(k, oi, w->out[d], pos[d]);
  }
  LLVMValueRef acc = int_sum(k, cv, n, m, g, pos, tlo, thi);
  if (lw_has(k, cv->ib))
    acc = LLVMBuildAdd(k->b, acc, cg_convert(k, cg_load(k, k->in[cv->ib], cg_in_dtype(k, cv->ib), m), cg_in_dtype(k, cv->ib), KN_I32), "");
  LLVMValueRef r = k->node->op == KN_OP_QLinearConv ? qconv_requant(k, cv, acc, m) : cg_convert(k, acc, KN_I32, cv->to);
  cg_store(k, k->out[0], cv->to, lw_add(k, lw_mulc(k, i, cv->osz), oi), r);
  for (int d = LW_MAX_SP - 1; d >= 0; d--) cg_loop_end(k, &l[d]);
}

static KnStatus lower_int_conv(CgKernel *k, Cv *cv) {
  bool q = k->node->op == KN_OP_QLinearConv;
  if ((cv->tx != KN_U8 && cv->tx != KN_I8) || (cv->tw != KN_U8 && cv->tw != KN_I8))
    return cg_unsupported(k, "x and w must be uint8 or int8");
  if (q && cv->to != KN_U8 && cv->to != KN_I8) return cg_unsupported(k, "output must be uint8 or int8");
  if (q) cv->xs = 1, cv->xzp = 2, cv->ws = 4, cv->wzp = 5, cv->ys = 6, cv->yzp = 7;
  else cv->xzp = 2, cv->wzp = 3;
  for (int i = 0; i < 2; i++) {
    int idx = i ? cv->ws : cv->wzp;
    bool *vec = i ? &cv->ws_vec : &cv->wzp_vec;
    if (idx < 0 || !cg_in_shape(k, idx)) continue;
    int64_t cnt = cg_numel(cg_in_shape(k, idx));
    if (cnt != 1 && cnt != cv->M) return cg_unsupported(k, "weight zero point / scale must be per tensor or per output channel");
    *vec = cnt == cv->M && cnt != 1;
  }
  if (q && (!ir_dtype_is_float(cg_in_dtype(k, 1)) || !ir_dtype_is_float(cg_in_dtype(k, 4)) || !ir_dtype_is_float(cg_in_dtype(k, 6))))
    return cg_unsupported(k, "scales must be float");
  bool ok = true;
  for (int d = 0; d < LW_MAX_SP; d++) {
    size_t n = (size_t)(cv->w.out[d] ? cv->w.out[d] : 1);
    cv->tlo[d] = calloc(n, sizeof(int64_t)), cv->thi[d] = calloc(n, sizeof(int64_t));
    ok = ok && cv->tlo[d] && cv->thi[d];
    for (int64_t o = 0; ok && o < cv->w.out[d]; o++) lw_taps(&cv->w, d, o, &cv->tlo[d][o], &cv->thi[d][o]);
  }
  if (ok) cg_parallel_for(k, cv->N * cv->M, grain_for(cv->osz * cv->Cg * cv->ksz), int_plane, cv);
  for (int d = 0; d < LW_MAX_SP; d++) free(cv->tlo[d]), free(cv->thi[d]);
  return ok ? KN_OK : kn_fail(k->err, KN_ERR_NOMEM, "out of memory");
}

/* Out plane i (image * M + channel) = act(plane + residual plane): the fused epilogue after the
 * loops that have none of their own. */
static void epilogue_plane(CgKernel *k, LLVMValueRef i, void *user) {
  const Cv *cv = user;
  LLVMValueRef base = lw_mulc(k, i, cv->osz);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->osz));
  LLVMValueRef at = lw_add(k, base, l.i), x = cg_load(k, k->out[0], KN_F32, at);
  if (cv->ir >= 0) x = LLVMBuildFAdd(k->b, x, cg_load(k, k->in[cv->ir], KN_F32, at), "");
  if (cv->act != CG_ACT_NONE) {
    LLVMValueRef args[2] = {x, LLVMConstReal(k->m->t_f32, cv->act == CG_ACT_RELU ? 0.0 : cv->lo)};
    x = cg_intrinsic(k, "llvm.maximum", args, 2);
    if (cv->act == CG_ACT_CLIP) {
      LLVMValueRef hi[2] = {x, LLVMConstReal(k->m->t_f32, cv->hi)};
      x = cg_intrinsic(k, "llvm.minimum", hi, 2);
    }
  }
  cg_store(k, k->out[0], KN_F32, at, x);
  cg_loop_end(k, &l);
}

/* f32 depthwise through the specialised kernel of lower_conv_dw.c, when it takes the shape. */
static bool try_depthwise(CgKernel *k, const Cv *cv) {
  if (k->m->opt_level < 1 || cv->tx != KN_F32 || cv->tw != KN_F32 || cv->to != KN_F32) return false;
  if (lw_has(k, cv->ib) && cg_in_dtype(k, cv->ib) != KN_F32) return false;
  CgDepthwise d = {.w = cv->w, .N = cv->N, .C = cv->C, .ix = cv->ix, .iw = cv->iw, .ib = lw_has(k, cv->ib) ? cv->ib : -1,
                   .ir = cv->ir, .act = cv->act, .lo = cv->lo, .hi = cv->hi};
  return cg_try_depthwise(k, &d);
}

/* Conv and kiln.FusedConv: ir, act, lo, hi are the fused epilogue (-1, CG_ACT_NONE: none). */
static KnStatus lower_conv_node(CgKernel *k, int ir, CgGemmAct act, float lo, float hi) {
  KnOp op = k->node->op;
  Cv cv = {.ix = 0, .iw = op == KN_OP_QLinearConv ? 3 : 1, .ib = op == KN_OP_QLinearConv ? 8 : op == KN_OP_ConvInteger ? -1 : 2,
           .xzp = -1, .wzp = -1, .xs = -1, .ws = -1, .ys = -1, .yzp = -1, .ir = ir, .act = act, .lo = lo, .hi = hi};
  KnStatus st = conv_setup(k, &cv);
  if (st) return st;
  plane_sizes(&cv);
  if (cv.N * cv.M * cv.osz == 0) return KN_OK;
  if (op == KN_OP_ConvInteger || op == KN_OP_QLinearConv) return lower_int_conv(k, &cv);
  if (!ir_dtype_is_float(cv.tx) || cv.tx != cv.tw) return cg_unsupported(k, "Conv needs float x and w of one dtype");
  cv.tacc = cv.tx;
  bool depthwise = cv.Cg == 1 && cv.Mg == 1;
  if (!depthwise && try_conv_gemm(k, &cv)) return KN_OK;
  if (depthwise && try_depthwise(k, &cv)) return KN_OK;
  if (depthwise) { /* the direct per-plane loop */
    flatten_pointwise(&cv.w);
    plane_sizes(&cv);
    cg_parallel_for(k, cv.N * cv.M, grain_for(cv.osz * cv.Cg * cv.ksz), float_plane, &cv);
  } else if (cv.w.out[2] > 16384) /* the gather buffer would not fit the stack */
    cg_parallel_for(k, cv.N * cv.M, grain_for(cv.osz * cv.Cg * cv.ksz), float_plane, &cv);
  else emit_blocked(k, &cv);
  if (cv.ir >= 0 || cv.act != CG_ACT_NONE) cg_parallel_for(k, cv.N * cv.M, grain_for(cv.osz), epilogue_plane, &cv);
  return KN_OK;
}

KnStatus cg_lower_conv(CgKernel *k) { return lower_conv_node(k, -1, CG_ACT_NONE, 0, 0); }

/* kiln.FusedConv (passes/fuse_conv.c): Conv, then + residual (input 3) and the activation, in the
 * GEMM's or the depthwise kernel's epilogue, or as a last pass over each plane otherwise. */
KnStatus cg_lower_fused_conv(CgKernel *k) {
  CgGemmAct act;
  float lo, hi;
  if (!cg_gemm_read_activation(k->node, &act, &lo, &hi) || act == CG_ACT_GELU || act == CG_ACT_GELU_TANH)
    return cg_unsupported(k, "activation");
  if (cg_out_dtype(k, 0) != KN_F32) return cg_unsupported(k, "FusedConv needs f32");
  if (ir_attr_int(k->node, "packed", 0)) return cg_lower_conv_packed(k, lw_has(k, 3) ? 3 : -1, act, lo, hi);
  return lower_conv_node(k, lw_has(k, 3) ? 3 : -1, act, lo, hi);
}

/* ---- ConvTranspose ------------------------------------------------------------------------ */
/* Leading pad per dim: explicit pads, or for SAME_* the split of the total padding that makes
 * the requested output size (floor division, the odd element at the end for SAME_UPPER). */
static KnStatus transpose_pads(CgKernel *k, const KnShape *x, const KnShape *y, const int64_t *kd, int64_t *pb) {
  const KnNode *n = k->node;
  int nsp = x->rank - 2;
  const char *ap = ir_attr_string(n, "auto_pad", "NOTSET");
  bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
  int64_t cp, cs, cd, co;
  const int64_t *pads = ir_attr_ints(n, "pads", &cp), *st = ir_attr_ints(n, "strides", &cs);
  const int64_t *dl = ir_attr_ints(n, "dilations", &cd), *op = ir_attr_ints(n, "output_padding", &co);
  if ((pads && cp != 2 * nsp) || (st && cs != nsp) || (dl && cd != nsp) || (op && co != nsp))
    return cg_unsupported(k, "window attributes do not match the spatial rank");
  for (int i = 0; i < nsp; i++) {
    pb[i] = pads && !same && strcmp(ap, "VALID") ? pads[i] : 0;
    if (!same) continue;
    int64_t s = st ? st[i] : 1, d = dl ? dl[i] : 1, opad = op ? op[i] : 0;
    int64_t total = s * (x->dims[i + 2].value - 1) + opad + (kd[i] - 1) * d + 1 - y->dims[i + 2].value;
    int64_t half = lw_floor_div(total, 2);
    pb[i] = !strcmp(ap, "SAME_UPPER") ? half : total - half;
  }
  return KN_OK;
}

KnStatus cg_lower_conv_transpose(CgKernel *k) {
  const KnShape *x = cg_in_shape(k, 0), *ws = cg_in_shape(k, 1), *y = cg_out_shape(k, 0);
  Cv cv = {.ix = 0, .iw = 1, .ib = 2, .ir = -1, .transpose = true};
  if (x->rank < 3 || x->rank > 2 + LW_MAX_SP || ws->rank != x->rank) return cg_unsupported(k, "only 1-D..3-D ConvTranspose");
  int nsp = x->rank - 2, off = LW_MAX_SP - nsp;
  int64_t kd[LW_MAX_SP] = {1, 1, 1}, pb[LW_MAX_SP] = {0}, cnt;
  const int64_t *ks = ir_attr_ints(k->node, "kernel_shape", &cnt);
  for (int i = 0; i < nsp; i++) kd[i] = ks && cnt == nsp ? ks[i] : ws->dims[i + 2].value;
  KnStatus st = transpose_pads(k, x, y, kd, pb);
  if (st) return st;
  /* The walked dims are the input's, the mapped ones the output's: a Conv window with in/out swapped. */
  const int64_t *sa = ir_attr_ints(k->node, "strides", &cnt), *da = ir_attr_ints(k->node, "dilations", &cnt);
  LwWindow *w = &cv.w;
  for (int i = 0; i < LW_MAX_SP; i++) {
    int j = i - off;
    w->out[i] = j >= 0 ? x->dims[j + 2].value : 1;
    w->in[i] = j >= 0 ? y->dims[j + 2].value : 1;
    w->k[i] = j >= 0 ? kd[j] : 1;
    w->s[i] = j >= 0 && sa ? sa[j] : 1;
    w->d[i] = j >= 0 && da ? da[j] : 1;
    w->pb[i] = j >= 0 ? pb[j] : 0;
  }
  cv.N = x->dims[0].value, cv.C = x->dims[1].value;
  cv.G = ir_attr_int(k->node, "group", 1);
  cv.Mg = ws->dims[1].value;
  if (cv.G < 1 || cv.C % cv.G) return cg_unsupported(k, "group does not divide the channels");
  cv.Cg = cv.C / cv.G, cv.M = cv.Mg * cv.G;
  cv.tx = cg_in_dtype(k, 0), cv.tw = cg_in_dtype(k, 1), cv.to = cg_out_dtype(k, 0), cv.tacc = cv.tx;
  if (!ir_dtype_is_float(cv.tx) || cv.tx != cv.tw) return cg_unsupported(k, "ConvTranspose needs float x and w of one dtype");
  /* Planes are sized by the output (w->in here) and read the input (w->out). */
  cv.isz = w->out[0] * w->out[1] * w->out[2];
  cv.osz = w->in[0] * w->in[1] * w->in[2];
  cv.ksz = w->k[0] * w->k[1] * w->k[2];
  if (cv.N * cv.M * cv.osz == 0) return KN_OK;
  cg_parallel_for(k, cv.N * cv.M, grain_for(cv.isz * cv.Cg * cv.ksz), float_plane, &cv);
  return KN_OK;
}
