/* cg_gemm.c - the shared f32 GEMM (cg_gemm.h). A tile of MR rows x NR columns (NR = two vector
 * registers) is accumulated in registers over the whole K loop: per k, NR/lanes vector loads of B,
 * MR broadcasts of A and MR*NR/lanes fused multiply-adds. Work items are (batch, column strip,
 * block of rows), strip-major, so the iterations one thread runs in a row reuse the strip of B
 * from cache. The last strip (N % NR columns) uses masked loads and stores; the last rows
 * (M % MR) get a microkernel of their own. */
#include "codegen/cg_gemm.h"

#include <string.h>

#define K_UNROLL 4

/* The microkernel's shape for this target. */
typedef struct Shape {
  int lanes, mr, nv; /* f32 lanes per vector, rows per tile, vectors per tile row */
  int64_t nr, mb;    /* columns per tile (nv * lanes), rows per work item */
} Shape;

static Shape tile_shape(const CgModule *m, int64_t M) {
  Shape s = {.lanes = m->vec_lanes > 0 ? m->vec_lanes : 4, .nv = 2};
  int regs = m->vec_regs > 0 ? m->vec_regs : 16;
  /* accumulators + the row of B + a broadcast, leaving a spare: 12x2 with 32 registers, 6x2 with 16 */
  s.mr = regs >= 32 ? 12 : 6;
  if (M < s.mr) s.mr = (int)M;
  s.nr = (int64_t)s.nv * s.lanes;
  s.mb = (int64_t)s.mr * 4;
  return s;
}

bool cg_gemm_supported(const CgGemm *g) {
  return g->batch > 0 && g->M > 0 && g->N > 0 && g->K > 0 && g->b.cs == 1 && g->c.cs == 1 &&
         (g->resid.src == CG_GEMM_NONE || g->resid.cs == 1);
}

/* ---- operands ----------------------------------------------------------------------------- */
static LLVMValueRef base_ptr(CgKernel *k, const CgGemmOperand *o) {
  switch (o->src) {
  case CG_GEMM_IN: return k->in[o->index];
  case CG_GEMM_OUT: return k->out[o->index];
  case CG_GEMM_EXTRA: return k->extra[o->index];
  default: return NULL;
  }
}

/* &operand[batch][row][col] as an f32 pointer; row and col are i64 values. */
static LLVMValueRef elem_ptr(CgKernel *k, const CgGemmOperand *o, LLVMValueRef batch, LLVMValueRef row,
                             LLVMValueRef col) {
  LLVMValueRef idx = cg_i64(k, o->offset);
  if (o->batch_stride) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, batch, cg_i64(k, o->batch_stride), ""), "");
  if (row) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, row, cg_i64(k, o->rs), ""), "");
  if (col) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, col, cg_i64(k, o->cs), ""), "");
  return LLVMBuildInBoundsGEP2(k->b, k->m->t_f32, base_ptr(k, o), &idx, 1, "");
}

static LLVMTypeRef vec_type(CgKernel *k, const Shape *s) { return LLVMVectorType(k->m->t_f32, (unsigned)s->lanes); }

/* The first `count` lanes on, as a constant <lanes x i1>. */
static LLVMValueRef lane_mask(CgKernel *k, const Shape *s, int count) {
  LLVMValueRef bits[64];
  for (int i = 0; i < s->lanes; i++) bits[i] = LLVMConstInt(k->m->t_i1, i < count, 0);
  return LLVMConstVector(bits, (unsigned)s->lanes);
}

/* A vector at p with `count` valid lanes (count == lanes: a plain load). */
static LLVMValueRef load_vec(CgKernel *k, const Shape *s, LLVMValueRef p, int count) {
  LLVMTypeRef vt = vec_type(k, s);
  if (count == s->lanes) {
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt, p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef args[4] = {p, cg_i32(k, 4), lane_mask(k, s, count), LLVMConstNull(vt)};
  LLVMTypeRef ov[2] = {vt, k->m->t_ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2);
  return LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), fn, args, 4, "");
}

static void store_vec(CgKernel *k, const Shape *s, LLVMValueRef v, LLVMValueRef p, int count) {
  if (count == s->lanes) {
    LLVMSetAlignment(LLVMBuildStore(k->b, v, p), 4);
    return;
  }
  LLVMValueRef args[4] = {v, p, cg_i32(k, 4), lane_mask(k, s, count)};
  LLVMTypeRef ov[2] = {vec_type(k, s), k->m->t_ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2);
  LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), fn, args, 4, "");
}

static LLVMValueRef splat(CgKernel *k, const Shape *s, LLVMValueRef x) {
  LLVMTypeRef vt = vec_type(k, s);
  LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), x, cg_i32(k, 0), "");
  return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)s->lanes)), "");
}

/* ---- one tile ----------------------------------------------------------------------------- */
/* Where a tile is: its batch entry, first row and first column, and its size. */
typedef struct Tile {
  LLVMValueRef batch, m0, n0;
  int rows, cols; /* cols <= nr; the last vectors of a narrow tile are masked or absent */
} Tile;

static int lanes_in(const Shape *s, const Tile *t, int v) {
  int c = t->cols - v * s->lanes;
  return c < 0 ? 0 : c > s->lanes ? s->lanes : c;
}

/* acc[r][v] += A[m0+r][kk] * B[kk][n0 + v*lanes ...] for one kk. */
static void tile_step(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, LLVMValueRef kk,
                      LLVMValueRef *acc) {
  LLVMValueRef bv[8];
  for (int v = 0; v < s->nv; v++) {
    int n = lanes_in(s, t, v);
    if (n == 0) continue;
    LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
    bv[v] = load_vec(k, s, elem_ptr(k, &g->b, t->batch, kk, col), n);
  }
  for (int r = 0; r < t->rows; r++) {
    LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
    LLVMValueRef a = LLVMBuildLoad2(k->b, k->m->t_f32, elem_ptr(k, &g->a, t->batch, row, kk), "");
    LLVMValueRef av = splat(k, s, a);
    for (int v = 0; v < s->nv; v++) {
      if (lanes_in(s, t, v) == 0) continue;
      LLVMValueRef args[3] = {av, bv[v], acc[r * s->nv + v]};
      acc[r * s->nv + v] = cg_intrinsic(k, "llvm.fmuladd", args, 3);
    }
  }
}

/* for kk in [begin, end) step `step`: step consecutive tile_steps on accumulators kept in allocas
 * (promoted to registers by mem2reg). */
static void k_loop(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, LLVMValueRef *slots,
                   int64_t begin, int64_t end, int step) {
  if (end <= begin) return;
  int n = t->rows * s->nv;
  LLVMValueRef acc[n + 1];
  LLVMTypeRef vt = vec_type(k, s);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, (end - begin) / step));
  for (int i = 0; i < n; i++) acc[i] = LLVMBuildLoad2(k->b, vt, slots[i], "");
  LLVMValueRef kk = LLVMBuildAdd(k->b, cg_i64(k, begin), LLVMBuildMul(k->b, l.i, cg_i64(k, step), ""), "");
  for (int u = 0; u < step; u++) tile_step(k, g, s, t, LLVMBuildAdd(k->b, kk, cg_i64(k, u), ""), acc);
  for (int i = 0; i < n; i++) LLVMBuildStore(k->b, acc[i], slots[i]);
  cg_loop_end(k, &l);
}

/* alpha, bias, beta * residual, activation; then the store. */
static LLVMValueRef epilogue(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, int r, int v,
                             LLVMValueRef x) {
  LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
  LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
  int n = lanes_in(s, t, v);
  if (g->alpha != 1.0f) x = LLVMBuildFMul(k->b, x, splat(k, s, LLVMConstReal(k->m->t_f32, g->alpha)), "");
  if (g->bias_kind == CG_BIAS_ROW) {
    LLVMValueRef p = elem_ptr(k, &g->bias, t->batch, row, NULL);
    x = LLVMBuildFAdd(k->b, x, splat(k, s, LLVMBuildLoad2(k->b, k->m->t_f32, p, "")), "");
  } else if (g->bias_kind == CG_BIAS_COL) {
    x = LLVMBuildFAdd(k->b, x, load_vec(k, s, elem_ptr(k, &g->bias, t->batch, col, NULL), n), "");
  }
  if (g->resid.src != CG_GEMM_NONE && g->beta != 0.0f) {
    LLVMValueRef rv = load_vec(k, s, elem_ptr(k, &g->resid, t->batch, row, col), n);
    if (g->beta != 1.0f) rv = LLVMBuildFMul(k->b, rv, splat(k, s, LLVMConstReal(k->m->t_f32, g->beta)), "");
    x = LLVMBuildFAdd(k->b, x, rv, "");
  }
  if (g->act != CG_ACT_NONE) { /* llvm.maximum/minimum: NaN stays NaN, as ONNX's Relu and Clip say */
    LLVMValueRef lo = splat(k, s, LLVMConstReal(k->m->t_f32, g->act == CG_ACT_RELU ? 0.0 : g->lo));
    LLVMValueRef args[2] = {x, lo};
    x = cg_intrinsic(k, "llvm.maximum", args, 2);
    if (g->act == CG_ACT_CLIP) {
      LLVMValueRef hi[2] = {x, splat(k, s, LLVMConstReal(k->m->t_f32, g->hi))};
      x = cg_intrinsic(k, "llvm.minimum", hi, 2);
    }
  }
  return x;
}

static void emit_tile(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t) {
  int n = t->rows * s->nv;
  LLVMTypeRef vt = vec_type(k, s);
  LLVMValueRef slots[n + 1];
  for (int i = 0; i < n; i++) slots[i] = cg_var(k, vt, LLVMConstNull(vt));
  int64_t main_end = g->K - g->K % K_UNROLL;
  k_loop(k, g, s, t, slots, 0, main_end, K_UNROLL);
  k_loop(k, g, s, t, slots, main_end, g->K, 1);
  for (int r = 0; r < t->rows; r++)
    for (int v = 0; v < s->nv; v++) {
      int lanes = lanes_in(s, t, v);
      if (lanes == 0) continue;
      LLVMValueRef x = epilogue(k, g, s, t, r, v, LLVMBuildLoad2(k->b, vt, slots[r * s->nv + v], ""));
      LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
      LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
      store_vec(k, s, x, elem_ptr(k, &g->c, t->batch, row, col), lanes);
    }
}

/* ---- work items --------------------------------------------------------------------------- */
typedef struct Work {
  const CgGemm *g;
  Shape s;
  int64_t strips, full_strips, blocks; /* column strips (the last may be narrow), row blocks */
} Work;

/* The full tiles of rows [m_begin, m_end) (a multiple of mr apart, but for the last block),
 * then the last block's leftover rows. */
static void emit_rows(CgKernel *k, const Work *w, LLVMValueRef batch, LLVMValueRef block, LLVMValueRef n0, int cols) {
  const Shape *s = &w->s;
  const CgGemm *g = w->g;
  int64_t full_tiles = g->M / s->mr, per_block = s->mb / s->mr;
  LLVMValueRef first = LLVMBuildMul(k->b, block, cg_i64(k, per_block), "");
  LLVMValueRef last = LLVMBuildAdd(k->b, first, cg_i64(k, per_block), "");
  LLVMValueRef over = LLVMBuildICmp(k->b, LLVMIntSGT, last, cg_i64(k, full_tiles), "");
  last = LLVMBuildSelect(k->b, over, cg_i64(k, full_tiles), last, "");
  CgLoop l = cg_loop_begin(k, first, last);
  Tile t = {batch, LLVMBuildMul(k->b, l.i, cg_i64(k, s->mr), ""), n0, s->mr, cols};
  emit_tile(k, g, s, &t);
  cg_loop_end(k, &l);
  int rest = (int)(g->M % s->mr);
  if (rest == 0) return;
  CgIf c = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntEQ, block, cg_i64(k, w->blocks - 1), ""));
  Tile tail = {batch, cg_i64(k, g->M - rest), n0, rest, cols};
  emit_tile(k, g, s, &tail);
  cg_if_end(k, &c);
}

/* Work item i = ((batch * strips) + strip) * blocks + block. */
static void gemm_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Work *w = user;
  LLVMValueRef block = LLVMBuildSRem(k->b, i, cg_i64(k, w->blocks), "");
  LLVMValueRef rest = LLVMBuildSDiv(k->b, i, cg_i64(k, w->blocks), "");
  LLVMValueRef strip = LLVMBuildSRem(k->b, rest, cg_i64(k, w->strips), "");
  LLVMValueRef batch = LLVMBuildSDiv(k->b, rest, cg_i64(k, w->strips), "");
  LLVMValueRef n0 = LLVMBuildMul(k->b, strip, cg_i64(k, w->s.nr), "");
  int narrow = (int)(w->g->N % w->s.nr);
  if (narrow == 0) {
    emit_rows(k, w, batch, block, n0, (int)w->s.nr);
    return;
  }
  CgIf c = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntSLT, strip, cg_i64(k, w->full_strips), ""));
  emit_rows(k, w, batch, block, n0, (int)w->s.nr);
  cg_if_else(k, &c);
  emit_rows(k, w, batch, block, n0, narrow);
  cg_if_end(k, &c);
}

void cg_emit_gemm(CgKernel *k, const CgGemm *g) {
  Work w = {.g = g, .s = tile_shape(k->m, g->M)};
  w.full_strips = g->N / w.s.nr;
  w.strips = (g->N + w.s.nr - 1) / w.s.nr;
  w.blocks = (g->M + w.s.mb - 1) / w.s.mb;
  /* one work item is at least a few microseconds of FMAs: no chunking below that */
  cg_parallel_for(k, g->batch * w.strips * w.blocks, 1, gemm_body, &w);
}
