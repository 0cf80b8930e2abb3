/* lower_conv_nchwc.c - the NCHW16c layout of passes/block_layout.c: f32 2-D kiln.FusedConv on
 * blocked values, and the kiln.ToBlocked / kiln.FromBlocked conversions at a chain's ends.
 * The im2col GEMM of lower_conv.c puts output pixels in the vector lanes, which wastes lanes on
 * small maps (a 7x7 map fills 49 of 64) and pays an im2col pack per panel. Here 16 channels of a
 * pixel sit side by side: a tile of T output pixels of one row x NV blocks of 16 output channels
 * accumulates in registers, per input channel of a tap NV weight vectors, T broadcasts and T*NV
 * multiply-adds. An input of fewer than 16 channels (an image's first conv) is read in NCHW
 * directly, its channels unrolled. Rows outside the image are skipped by the kh loop's bounds;
 * columns outside it only touch the tiles at a row's ends, which check each pixel's column and
 * read 0 outside, so the tiles in between run without checks. */
#include "codegen/lower_conv_nchwc.h"

#include <math.h>
#include <string.h>

#include "codegen/lower_conv.h"

#define BLK CG_CONV_BLOCK
#define CI_UNROLL 4

typedef struct Nc {
  int64_t N, CB, MB;         /* images; input and output channel blocks */
  int64_t plain;             /* > 0: X is plain NCHW with this many (< 16) channels, CB = 1 */
  int64_t H, W, OH, OW;      /* input and output map */
  int64_t KH, KW, SH, SW, PT, PL;
  int64_t R;                 /* weight rows per output block: CB * KH * KW */
  int T, NV;                 /* a tile: T pixels of a row x NV output blocks */
  int64_t groups;            /* output-block groups (the last may have fewer blocks) */
  int ir;                    /* residual input, -1: none */
  bool bias;
  CgGemmAct act;
  float lo, hi;
  LLVMTypeRef vf;            /* <16 x float> (legalized to the target's vectors) */
} Nc;

static LLVMValueRef splat_to(CgKernel *k, LLVMTypeRef vt, LLVMValueRef x) {
  LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), x, cg_i32(k, 0), "");
  return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(k->m->t_i32, BLK)), "");
}

static LLVMValueRef gep(CgKernel *k, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(k->b, k->m->t_f32, base, &idx, 1, "");
}

static LLVMValueRef load_vec(CgKernel *k, const Nc *c, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(k->b, c->vf, gep(k, base, idx), "");
  LLVMSetAlignment(v, 4);
  return v;
}

/* ---- one tile ------------------------------------------------------------------------------ */
typedef struct TileAt {
  LLVMValueRef n, ob0, oh, ow0; /* image, first output block, output row, first column */
  int T, NV;
  bool checked;                 /* an edge tile: some taps fall outside the row */
} TileAt;

/* acc += input channel ci (an i64 value; at element offset xci of each pixel's base) x its NV
 * weight vectors. */
static void channel_step(CgKernel *k, const Nc *c, const TileAt *t, LLVMValueRef *base, LLVMValueRef *ok, LLVMValueRef wtap,
                         LLVMValueRef ci, LLVMValueRef xci, LLVMValueRef *acc) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef wv[8];
  for (int v = 0; v < t->NV; v++) wv[v] = load_vec(k, c, wtap, lw_add(k, lw_mulc(k, ci, BLK), cg_i64(k, v * c->R * BLK * BLK)));
  for (int p = 0; p < t->T; p++) {
    LLVMValueRef x = LLVMBuildLoad2(b, k->m->t_f32, gep(k, base[p], xci), "");
    if (ok[p]) x = LLVMBuildSelect(b, ok[p], x, LLVMConstReal(k->m->t_f32, 0.0), "");
    LLVMValueRef xs = splat_to(k, c->vf, x);
    for (int v = 0; v < t->NV; v++) {
      LLVMValueRef args[3] = {xs, wv[v], acc[p * t->NV + v]};
      acc[p * t->NV + v] = cg_intrinsic(k, "llvm.fmuladd", args, 3);
    }
  }
}

/* One (channel block, kernel row, kernel column): per input channel, NV weight vectors x T
 * broadcasts; a block's 16 channels CI_UNROLL per trip of a loop (unrolling all 16 made ResNet-18
 * take a second more to compile for no measurable gain), a plain input's few channels unrolled.
 * xcol: the input column of pixel 0 (i64); checked tiles load 0 outside [0, W). */
static void tap_step(CgKernel *k, const Nc *c, const TileAt *t, LLVMValueRef xrow, LLVMValueRef xcol, LLVMValueRef wtap,
                     LLVMValueRef *slots) {
  LLVMBuilderRef b = k->b;
  int na = t->T * t->NV;
  LLVMValueRef base[32], ok[32], acc[na];
  for (int p = 0; p < t->T; p++) {
    LLVMValueRef col = lw_addc(k, xcol, (int64_t)p * c->SW);
    ok[p] = t->checked ? LLVMBuildICmp(b, LLVMIntULT, col, cg_i64(k, c->W), "") : NULL;
    if (ok[p]) col = LLVMBuildSelect(b, ok[p], col, cg_i64(k, 0), "");
    base[p] = gep(k, xrow, c->plain ? col : lw_mulc(k, col, BLK));
  }
  if (c->plain) {
    for (int i = 0; i < na; i++) acc[i] = LLVMBuildLoad2(b, c->vf, slots[i], "");
    for (int64_t ci = 0; ci < c->plain; ci++) channel_step(k, c, t, base, ok, wtap, cg_i64(k, ci), cg_i64(k, ci * c->H * c->W), acc);
    for (int i = 0; i < na; i++) LLVMBuildStore(b, acc[i], slots[i]);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, BLK / CI_UNROLL));
  for (int i = 0; i < na; i++) acc[i] = LLVMBuildLoad2(b, c->vf, slots[i], "");
  for (int u = 0; u < CI_UNROLL; u++) {
    LLVMValueRef ci = lw_addc(k, lw_mulc(k, l.i, CI_UNROLL), u);
    channel_step(k, c, t, base, ok, wtap, ci, ci, acc);
  }
  for (int i = 0; i < na; i++) LLVMBuildStore(b, acc[i], slots[i]);
  cg_loop_end(k, &l);
}

/* Bias (or zero) into the accumulator slots. */
static void init_acc(CgKernel *k, const Nc *c, const TileAt *t, LLVMValueRef *slots) {
  for (int v = 0; v < t->NV; v++) {
    LLVMValueRef init = LLVMConstNull(c->vf);
    if (c->bias) init = load_vec(k, c, k->in[2], lw_addc(k, lw_mulc(k, t->ob0, BLK), v * BLK));
    for (int p = 0; p < t->T; p++) slots[p * t->NV + v] = cg_var(k, c->vf, init);
  }
}

/* Residual, activation, store of every block of the tile. */
static void store_tile(CgKernel *k, const Nc *c, const TileAt *t, LLVMValueRef *slots) {
  LLVMBuilderRef b = k->b;
  for (int v = 0; v < t->NV; v++) {
    LLVMValueRef blk = lw_addc(k, lw_add(k, lw_mulc(k, t->n, c->MB), t->ob0), v);
    LLVMValueRef at = lw_mulc(k, lw_add(k, lw_mulc(k, lw_add(k, lw_mulc(k, blk, c->OH), t->oh), c->OW), t->ow0), BLK);
    for (int p = 0; p < t->T; p++) {
      LLVMValueRef idx = lw_addc(k, at, (int64_t)p * BLK);
      LLVMValueRef x = LLVMBuildLoad2(b, c->vf, slots[p * t->NV + v], "");
      if (c->ir >= 0) x = LLVMBuildFAdd(b, x, load_vec(k, c, k->in[c->ir], idx), "");
      if (c->act != CG_ACT_NONE) { /* llvm.maximum/minimum: NaN stays NaN, as ONNX's Relu and Clip say */
        LLVMValueRef mx[2] = {x, splat_to(k, c->vf, LLVMConstReal(k->m->t_f32, c->act == CG_ACT_RELU ? 0.0 : c->lo))};
        x = cg_intrinsic(k, "llvm.maximum", mx, 2);
        if (c->act == CG_ACT_CLIP) {
          LLVMValueRef mn[2] = {x, splat_to(k, c->vf, LLVMConstReal(k->m->t_f32, c->hi))};
          x = cg_intrinsic(k, "llvm.minimum", mn, 2);
        }
      }
      LLVMSetAlignment(LLVMBuildStore(b, x, gep(k, k->out[0], idx)), 4);
    }
  }
}

/* The tile t over kernel rows [kh_lo, kh_hi) (i64 values). */
static void conv_tile(CgKernel *k, const Nc *c, const TileAt *t, LLVMValueRef kh_lo, LLVMValueRef kh_hi) {
  LLVMValueRef slots[t->T * t->NV];
  init_acc(k, c, t, slots);
  LLVMValueRef ih0 = lw_addc(k, lw_mulc(k, t->oh, c->SH), -c->PT);
  LLVMValueRef col0 = lw_addc(k, lw_mulc(k, t->ow0, c->SW), -c->PL);
  CgLoop lc = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, c->CB));
  CgLoop lh = cg_loop_begin(k, kh_lo, kh_hi);
  /* blocked: row ih of block (n, cb), 16 floats a pixel; plain: row ih of channel 0 of image n */
  LLVMValueRef plane = c->plain ? lw_mulc(k, t->n, c->plain) : lw_add(k, lw_mulc(k, t->n, c->CB), lc.i);
  LLVMValueRef row = lw_add(k, lw_mulc(k, plane, c->H), lw_add(k, ih0, lh.i));
  LLVMValueRef xrow = gep(k, k->in[0], lw_mulc(k, row, c->plain ? c->W : c->W * BLK));
  LLVMValueRef wrow = lw_mulc(k, lw_add(k, lw_mulc(k, lw_add(k, lw_mulc(k, t->ob0, c->CB), lc.i), c->KH), lh.i), c->KW * BLK * BLK);
  CgLoop lw = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, c->KW));
  LLVMValueRef wtap = gep(k, k->in[1], lw_add(k, wrow, lw_mulc(k, lw.i, BLK * BLK)));
  tap_step(k, c, t, xrow, lw_add(k, col0, lw.i), wtap, slots);
  cg_loop_end(k, &lw);
  cg_loop_end(k, &lh);
  cg_loop_end(k, &lc);
  store_tile(k, c, t, slots);
}

/* Whether tile j of a row (T pixels from column j*T) is whole and reads only columns inside the
 * image, so it runs without checks. */
static bool tile_inside(const Nc *c, int64_t j) {
  int64_t first = j * c->T, last = first + c->T - 1;
  return last < c->OW && first * c->SW - c->PL >= 0 && last * c->SW + c->KW - 1 - c->PL < c->W;
}

/* Every tile of output row oh: the run of inside tiles unchecked, the edge tiles checked, the
 * short last tile (if any) on its own. */
static void conv_row(CgKernel *k, const Nc *c, TileAt t) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef top = lw_addc(k, lw_mulc(k, t.oh, -c->SH), c->PT); /* kh >= PT - oh*SH: row inside */
  LLVMValueRef kh_lo = cg_max(k, KN_I64, top, cg_i64(k, 0));
  LLVMValueRef kh_hi = cg_min(k, KN_I64, lw_addc(k, top, c->H), cg_i64(k, c->KH));
  int64_t full = c->OW / c->T, ja = 0, jb;
  while (ja < full && !tile_inside(c, ja)) ja++;
  for (jb = ja; jb < full && tile_inside(c, jb);) jb++;
  if (full > 0) {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, full));
    t.ow0 = lw_mulc(k, l.i, c->T);
    LLVMValueRef in = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, l.i, cg_i64(k, ja), ""),
                                   LLVMBuildICmp(b, LLVMIntSLT, l.i, cg_i64(k, jb), ""), "");
    CgIf f = cg_if_begin(k, in);
    t.checked = false;
    if (jb > ja) conv_tile(k, c, &t, kh_lo, kh_hi);
    cg_if_else(k, &f);
    t.checked = true;
    if (ja > 0 || jb < full) conv_tile(k, c, &t, kh_lo, kh_hi);
    cg_if_end(k, &f);
    cg_loop_end(k, &l);
  }
  if (c->OW % c->T) {
    t.ow0 = cg_i64(k, full * c->T), t.T = (int)(c->OW % c->T), t.checked = true;
    conv_tile(k, c, &t, kh_lo, kh_hi);
  }
}

/* Item i = (n * groups + grp) * OH + oh: one thread's run of items shares a group's weights. */
static void conv_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Nc *c = user;
  LLVMValueRef oh = lw_remc(k, i, c->OH), rest = lw_divc(k, i, c->OH);
  LLVMValueRef grp = lw_remc(k, rest, c->groups), n = lw_divc(k, rest, c->groups);
  TileAt t = {n, lw_mulc(k, grp, c->NV), oh, NULL, c->T, c->NV, false};
  int last_nv = (int)(c->MB - (c->groups - 1) * c->NV);
  if (last_nv == c->NV) {
    conv_row(k, c, t);
    return;
  }
  CgIf f = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntSLT, grp, cg_i64(k, c->groups - 1), ""));
  conv_row(k, c, t);
  cg_if_else(k, &f);
  t.NV = last_nv;
  conv_row(k, c, t);
  cg_if_end(k, &f);
}

/* ---- set-up -------------------------------------------------------------------------------- */
/* Estimated half-cycles of one input channel of a tap over a row of OW pixels for nv blocks in
 * tiles of T: per tile, T*nv multiply-adds or T+nv loads (two of either per cycle), whichever
 * bounds it, plus a little for the tile's set-up. */
static int64_t row_cost(int64_t OW, int T, int nv) {
  int64_t cost = 0;
  for (int64_t first = 0; first < OW; first += T) {
    int64_t n = OW - first < T ? OW - first : T;
    cost += (n * nv > n + nv ? n * nv : n + nv) + 2;
  }
  return cost;
}

/* The tile shape with the least estimated time for the whole output row over every block group. */
static void choose_tile(const CgKernel *k, Nc *c) {
  int lanes = k->m->vec_lanes > 0 ? k->m->vec_lanes : 4, regs = k->m->vec_regs > 0 ? k->m->vec_regs : 16;
  int vb = lanes < BLK ? BLK / lanes : 1; /* the target's vectors per block of 16 */
  int64_t best = -1;
  /* accumulators, the weight vectors and the broadcasts of one step all in registers, one spare */
  for (int nv = 1; nv <= 4 && nv <= c->MB; nv++)
    for (int T = 1; vb * (T * nv + nv) + T <= regs - 1 && T <= 28; T++) {
      int64_t groups = c->MB / nv, rest = c->MB % nv;
      int64_t cost = groups * row_cost(c->OW, T, nv) + (rest ? row_cost(c->OW, T, (int)rest) : 0);
      if (best < 0 || cost < best) best = cost, c->NV = nv, c->T = T;
    }
  if (c->T > c->OW) c->T = (int)c->OW;
  c->groups = (c->MB + c->NV - 1) / c->NV;
}

static KnStatus read_shape(CgKernel *k, Nc *c) {
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0), *ws = cg_in_shape(k, 1);
  if ((x->rank != 5 && x->rank != 4) || y->rank != 5 || ws->rank != 6 || ws->dims[4].value != BLK || ws->dims[5].value != BLK)
    return cg_unsupported(k, "packed FusedConv needs NCHW16c X (or NCHW with under 16 channels), NCHW16c Y and "
                             "[M/16, C/16, KH, KW, 16, 16] weights");
  KnShape x4 = *x, y4 = *y; /* the window over (H, W) as lw_window reads it */
  x4.rank = y4.rank = 4;
  LwWindow w;
  KnStatus st = lw_window(k, &x4, &y4, NULL, &w);
  if (st) return st;
  if (w.d[1] != 1 || w.d[2] != 1 || ir_attr_int(k->node, "group", 1) != 1)
    return cg_unsupported(k, "packed FusedConv with dilation or groups");
  c->N = x->dims[0].value, c->CB = x->rank == 5 ? x->dims[1].value : 1, c->MB = y->dims[1].value;
  c->plain = x->rank == 4 ? x->dims[1].value : 0;
  if (c->plain >= BLK) return cg_unsupported(k, "packed FusedConv on NCHW input with 16 or more channels");
  c->H = w.in[1], c->W = w.in[2], c->OH = w.out[1], c->OW = w.out[2];
  c->KH = w.k[1], c->KW = w.k[2], c->SH = w.s[1], c->SW = w.s[2], c->PT = w.pb[1], c->PL = w.pb[2];
  if (ws->dims[0].value != c->MB || ws->dims[1].value != c->CB || ws->dims[2].value != c->KH || ws->dims[3].value != c->KW)
    return cg_unsupported(k, "packed FusedConv weights do not match X and Y");
  if (c->KW > 16) return cg_unsupported(k, "packed FusedConv wider than 16 taps");
  c->R = c->CB * c->KH * c->KW;
  return KN_OK;
}

KnStatus cg_lower_conv_packed(CgKernel *k, int ir, CgGemmAct act, float lo, float hi) {
  Nc c = {.ir = ir, .act = act, .lo = lo, .hi = hi, .bias = lw_has(k, 2), .vf = LLVMVectorType(k->m->t_f32, BLK)};
  if (cg_in_dtype(k, 0) != KN_F32 || cg_in_dtype(k, 1) != KN_F32 || (c.bias && cg_in_dtype(k, 2) != KN_F32))
    return cg_unsupported(k, "packed FusedConv needs f32");
  KnStatus st = read_shape(k, &c);
  if (st || c.N * c.MB * c.OH * c.OW == 0) return st;
  choose_tile(k, &c);
  cg_parallel_for(k, c.N * c.groups * c.OH, 1, conv_body, &c);
  return KN_OK;
}

/* ---- conversions --------------------------------------------------------------------------- */
/* <0, s, 2s, ...> as i64. */
static LLVMValueRef lane_strides(CgKernel *k, int64_t s) {
  LLVMValueRef e[BLK];
  for (int i = 0; i < BLK; i++) e[i] = cg_i64(k, i * s);
  return LLVMConstVector(e, BLK);
}

/* The lanes of block cb that are real channels (< channels). */
static LLVMValueRef channel_mask(CgKernel *k, LLVMValueRef cb, int64_t channels) {
  LLVMTypeRef v64 = LLVMVectorType(k->m->t_i64, BLK);
  LLVMValueRef left = splat_to(k, v64, lw_sub(k, cg_i64(k, channels), lw_mulc(k, cb, BLK)));
  return LLVMBuildICmp(k->b, LLVMIntSLT, lane_strides(k, 1), left, "");
}

static LLVMValueRef vector_memop(CgKernel *k, const char *name, LLVMTypeRef vt, LLVMValueRef *args) {
  LLVMTypeRef ov[2] = {vt, LLVMVectorType(k->m->t_ptr, BLK)};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  return LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2),
                        args, 4, "");
}

typedef struct Conv4 {
  int64_t C, CB, HW; /* channels, blocks, pixels per plane */
  bool to;           /* ToBlocked (else FromBlocked) */
} Conv4;

/* Row (n, cb) of the blocked tensor: per pixel, the block's channels gathered from (or scattered
 * to) their NCHW planes. */
static void convert_block(CgKernel *k, LLVMValueRef i, void *user) {
  const Conv4 *cv = user;
  LLVMBuilderRef b = k->b;
  LLVMTypeRef vf = LLVMVectorType(k->m->t_f32, BLK), v64 = LLVMVectorType(k->m->t_i64, BLK);
  LLVMValueRef cb = lw_remc(k, i, cv->CB), n = lw_divc(k, i, cv->CB);
  LLVMValueRef mask = channel_mask(k, cb, cv->C), lanes = lane_strides(k, cv->HW);
  LLVMValueRef plane0 = lw_mulc(k, lw_add(k, lw_mulc(k, n, cv->C), lw_mulc(k, cb, BLK)), cv->HW);
  LLVMValueRef blocked = gep(k, cv->to ? k->out[0] : k->in[0], lw_mulc(k, i, cv->HW * BLK));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cv->HW));
  LLVMValueRef idx = LLVMBuildAdd(b, splat_to(k, v64, lw_add(k, plane0, l.i)), lanes, "");
  LLVMValueRef at = gep(k, blocked, lw_mulc(k, l.i, BLK));
  if (cv->to) {
    LLVMValueRef args[4] = {gep(k, k->in[0], idx), cg_i32(k, 4), mask, LLVMConstNull(vf)};
    LLVMSetAlignment(LLVMBuildStore(b, vector_memop(k, "llvm.masked.gather", vf, args), at), 4);
  } else {
    LLVMValueRef v = LLVMBuildLoad2(b, vf, at, "");
    LLVMSetAlignment(v, 4);
    LLVMValueRef args[4] = {v, gep(k, k->out[0], idx), cg_i32(k, 4), mask};
    LLVMTypeRef ov[2] = {vf, LLVMVectorType(k->m->t_ptr, BLK)};
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.scatter", 19);
    LLVMBuildCall2(b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2), args, 4, "");
  }
  cg_loop_end(k, &l);
}

static KnStatus lower_convert(CgKernel *k, bool to) {
  const KnShape *nchw = to ? cg_in_shape(k, 0) : cg_out_shape(k, 0);
  const KnShape *blk = to ? cg_out_shape(k, 0) : cg_in_shape(k, 0);
  if (cg_in_dtype(k, 0) != KN_F32 || nchw->rank != 4 || blk->rank != 5 || blk->dims[4].value != BLK)
    return cg_unsupported(k, "layout conversion needs f32 [N, C, H, W] and [N, C/16, H, W, 16]");
  Conv4 cv = {.C = nchw->dims[1].value, .CB = blk->dims[1].value, .HW = nchw->dims[2].value * nchw->dims[3].value, .to = to};
  int64_t items = nchw->dims[0].value * cv.CB;
  if (items * cv.HW == 0) return KN_OK;
  cg_parallel_for(k, items, cv.HW * BLK >= 4096 ? 1 : 4096 / (cv.HW * BLK) + 1, convert_block, &cv);
  return KN_OK;
}

KnStatus cg_lower_to_blocked(CgKernel *k) { return lower_convert(k, true); }
KnStatus cg_lower_from_blocked(CgKernel *k) { return lower_convert(k, false); }

/* ---- MaxPool on blocked values ------------------------------------------------------------- */
typedef struct PoolB {
  LwWindow w;      /* over (H, W, 16): window 1 along the block */
  int64_t planes;  /* N * C/16 */
} PoolB;

/* Output row (plane, oh): per pixel, the max of the window's 16-channel vectors, the window's
 * columns unrolled. */
static void pool_row(CgKernel *k, LLVMValueRef i, void *user) {
  const PoolB *p = user;
  const LwWindow *w = &p->w;
  LLVMBuilderRef b = k->b;
  LLVMTypeRef vf = LLVMVectorType(k->m->t_f32, BLK);
  LLVMValueRef oh = lw_remc(k, i, w->out[0]), plane = lw_divc(k, i, w->out[0]);
  LLVMValueRef top = lw_addc(k, lw_mulc(k, oh, -w->s[0]), w->pb[0]);
  LLVMValueRef kh_lo = cg_max(k, KN_I64, top, cg_i64(k, 0)), kh_hi = cg_min(k, KN_I64, lw_addc(k, top, w->in[0]), cg_i64(k, w->k[0]));
  LLVMValueRef xplane = gep(k, k->in[0], lw_mulc(k, plane, w->in[0] * w->in[1] * BLK));
  LLVMValueRef yrow = gep(k, k->out[0], lw_mulc(k, i, w->out[1] * BLK));
  LLVMValueRef lowest = splat_to(k, vf, LLVMConstReal(k->m->t_f32, -(double)INFINITY));
  CgLoop lo = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, w->out[1]));
  LLVMValueRef left = lw_addc(k, lw_mulc(k, lo.i, w->s[1]), -w->pb[1]); /* input column of tap 0 */
  LLVMValueRef acc = cg_var(k, vf, lowest);
  CgLoop lh = cg_loop_begin(k, kh_lo, kh_hi);
  LLVMValueRef xrow = gep(k, xplane, lw_mulc(k, lw_sub(k, lh.i, top), w->in[1] * BLK));
  LLVMValueRef m = LLVMBuildLoad2(b, vf, acc, "");
  for (int64_t kw = 0; kw < w->k[1]; kw++) { /* taps outside the row read column 0 and count as -inf */
    LLVMValueRef col = lw_addc(k, left, kw);
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntULT, col, cg_i64(k, w->in[1]), "");
    LLVMValueRef x = LLVMBuildLoad2(b, vf, gep(k, xrow, lw_mulc(k, LLVMBuildSelect(b, ok, col, cg_i64(k, 0), ""), BLK)), "");
    LLVMSetAlignment(x, 4);
    x = LLVMBuildSelect(b, ok, x, lowest, "");
    m = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, m, ""), x, m, ""); /* as the plain loops fold */
  }
  LLVMBuildStore(b, m, acc);
  cg_loop_end(k, &lh);
  LLVMSetAlignment(LLVMBuildStore(b, LLVMBuildLoad2(b, vf, acc, ""), gep(k, yrow, lw_mulc(k, lo.i, BLK))), 4);
  cg_loop_end(k, &lo);
}

bool cg_try_pool_blocked(CgKernel *k, const LwWindow *w, int64_t planes) {
  if (w->nsp != 3 || w->in[2] != BLK || w->out[2] != BLK || w->k[2] != 1 || w->s[2] != 1 || w->pb[2] != 0 ||
      w->d[0] != 1 || w->d[1] != 1 || w->k[1] > 16)
    return false;
  PoolB p = {*w, planes};
  int64_t rows = planes * w->out[0];
  cg_parallel_for(k, rows, w->out[1] * w->k[0] * w->k[1] >= 256 ? 1 : 256 / (w->out[1] * w->k[0] * w->k[1] + 1) + 1, pool_row, &p);
  return true;
}
