/* cg_gemm.c - the shared f32 GEMM (cg_gemm.h). A tile of MR rows x NR columns (NR = two vector
 * registers) is accumulated in registers over the whole K loop: per k, NR/lanes vector loads of B,
 * MR broadcasts of A and MR*NR/lanes fused multiply-adds. Work items are (batch, column strip,
 * block of rows), strip-major, so the iterations one thread runs in a row reuse the strip of B
 * from cache. The last strip (N % NR columns) uses masked loads and stores; the last rows
 * (M % MR) get a microkernel of their own. A B made by a packing callback (Conv's im2col) is
 * built panel by panel on the stack, K block by K block, and C accumulates across the blocks. */
#include "codegen/cg_gemm.h"

#include <string.h>

#define K_UNROLL 4

/* The microkernel's shape for this target. */
typedef struct Shape {
  int lanes, mr, nv; /* f32 lanes per vector, rows per tile, vectors per tile row */
  int64_t nr, mb;    /* columns per tile (nv * lanes), rows per work item */
} Shape;

int64_t cg_gemm_nr(const CgModule *m) { return 2 * (int64_t)(m->vec_lanes > 0 ? m->vec_lanes : 4); }

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

bool cg_gemm_supported(const CgModule *m, const CgGemm *g) {
  int64_t lanes = m->vec_lanes > 0 ? m->vec_lanes : 4;
  if (g->b.panel > 0 && (g->pack || g->b.panel % lanes || g->b.panel_stride < g->K * g->b.panel)) return false;
  return g->batch > 0 && g->M > 0 && g->N > 0 && g->K > 0 && (g->pack || g->b.cs == 1) && g->c.cs == 1 &&
         (g->resid.src == CG_GEMM_NONE || g->resid.cs == 1);
}

/* ---- operands ----------------------------------------------------------------------------- */
static LLVMValueRef base_ptr(CgKernel *k, const CgGemmOperand *o) {
  switch (o->src) {
  case CG_GEMM_IN: return k->in[o->index];
  case CG_GEMM_OUT: return k->out[o->index];
  case CG_GEMM_EXTRA: return k->extra[o->index];
  case CG_GEMM_PTR: return o->ptr;
  default: return NULL;
  }
}

/* &operand[batch][row][col] as an f32 pointer; row and col are i64 values. */
static LLVMValueRef elem_ptr(CgKernel *k, const CgGemmOperand *o, LLVMValueRef batch, LLVMValueRef row,
                             LLVMValueRef col) {
  LLVMValueRef idx = cg_i64(k, o->offset);
  if (o->batch_stride && o->batch_mod > 0) batch = LLVMBuildSRem(k->b, batch, cg_i64(k, o->batch_mod), "");
  if (o->batch_stride) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, batch, cg_i64(k, o->batch_stride), ""), "");
  if (row) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, row, cg_i64(k, o->rs), ""), "");
  if (col && o->panel > 0) { /* col is a vector's first column: the vector lies inside one panel */
    LLVMValueRef pan = LLVMBuildUDiv(k->b, col, cg_i64(k, o->panel), "");
    idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, pan, cg_i64(k, o->panel_stride), ""), "");
    idx = LLVMBuildAdd(k->b, idx, LLVMBuildURem(k->b, col, cg_i64(k, o->panel), ""), "");
  } else if (col) idx = LLVMBuildAdd(k->b, idx, LLVMBuildMul(k->b, col, cg_i64(k, o->cs), ""), "");
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

static LLVMValueRef masked_call(CgKernel *k, const Shape *s, const char *name, LLVMValueRef *args) {
  LLVMTypeRef ov[2] = {vec_type(k, s), k->m->t_ptr};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
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
  const CgGemmOperand *b; /* where B is read: g->b, or a packed panel */
  LLVMValueRef b_n0, a_k0; /* the tile's first column in b; A's k of b's row 0 (NULL: 0) */
  LLVMValueRef cmask[2];   /* packed, N % nr != 0: the columns of C per vector (run time) */
} Tile;

static int lanes_in(const Shape *s, const Tile *t, int v) {
  int c = t->cols - v * s->lanes;
  return c < 0 ? 0 : c > s->lanes ? s->lanes : c;
}

/* Vector v of a row of C, R or a column bias at p: the tile's lanes, masked at run time when the
 * tile has cmask. */
static LLVMValueRef load_c(CgKernel *k, const Shape *s, const Tile *t, int v, LLVMValueRef p) {
  if (!t->cmask[0]) return load_vec(k, s, p, lanes_in(s, t, v));
  LLVMValueRef args[4] = {p, cg_i32(k, 4), t->cmask[v], LLVMConstNull(vec_type(k, s))};
  return masked_call(k, s, "llvm.masked.load", args);
}

static void store_c(CgKernel *k, const Shape *s, const Tile *t, int v, LLVMValueRef x, LLVMValueRef p) {
  if (!t->cmask[0]) {
    store_vec(k, s, x, p, lanes_in(s, t, v));
    return;
  }
  LLVMValueRef args[4] = {x, p, cg_i32(k, 4), t->cmask[v]};
  masked_call(k, s, "llvm.masked.store", args);
}

/* acc[r][v] += A[m0+r][kk] * B[kk][n0 + v*lanes ...] for one kk. */
static void tile_step(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, LLVMValueRef kk,
                      LLVMValueRef *acc) {
  LLVMValueRef bv[8];
  for (int v = 0; v < s->nv; v++) {
    int n = lanes_in(s, t, v);
    if (n == 0) continue;
    LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
    if (t->b_n0 != t->n0) col = LLVMBuildAdd(k->b, t->b_n0, cg_i64(k, (int64_t)v * s->lanes), "");
    bv[v] = load_vec(k, s, elem_ptr(k, t->b, t->batch, kk, col), n);
  }
  LLVMValueRef ka = t->a_k0 ? LLVMBuildAdd(k->b, t->a_k0, kk, "") : kk;
  for (int r = 0; r < t->rows; r++) {
    LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
    LLVMValueRef a = LLVMBuildLoad2(k->b, k->m->t_f32, elem_ptr(k, &g->a, t->batch, row, ka), "");
    LLVMValueRef av = splat(k, s, a);
    for (int v = 0; v < s->nv; v++) {
      if (lanes_in(s, t, v) == 0) continue;
      LLVMValueRef args[3] = {av, bv[v], acc[r * s->nv + v]};
      acc[r * s->nv + v] = cg_intrinsic(k, "llvm.fmuladd", args, 3);
    }
  }
}

/* `count` times, from kk = begin: step consecutive tile_steps on accumulators kept in allocas
 * (promoted to registers by mem2reg). */
static void k_loop(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, LLVMValueRef *slots,
                   LLVMValueRef begin, LLVMValueRef count, int step) {
  int n = t->rows * s->nv;
  LLVMValueRef acc[n + 1];
  LLVMTypeRef vt = vec_type(k, s);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), count);
  for (int i = 0; i < n; i++) acc[i] = LLVMBuildLoad2(k->b, vt, slots[i], "");
  LLVMValueRef kk = LLVMBuildAdd(k->b, begin, LLVMBuildMul(k->b, l.i, cg_i64(k, step), ""), "");
  for (int u = 0; u < step; u++) tile_step(k, g, s, t, LLVMBuildAdd(k->b, kk, cg_i64(k, u), ""), acc);
  for (int i = 0; i < n; i++) LLVMBuildStore(k->b, acc[i], slots[i]);
  cg_loop_end(k, &l);
}

/* alpha, bias, beta * residual, activation; then the store. */
static LLVMValueRef epilogue(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, int r, int v,
                             LLVMValueRef x) {
  LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
  LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
  if (g->alpha != 1.0f) x = LLVMBuildFMul(k->b, x, splat(k, s, LLVMConstReal(k->m->t_f32, g->alpha)), "");
  if (g->bias_kind == CG_BIAS_ROW) {
    LLVMValueRef p = elem_ptr(k, &g->bias, t->batch, row, NULL);
    x = LLVMBuildFAdd(k->b, x, splat(k, s, LLVMBuildLoad2(k->b, k->m->t_f32, p, "")), "");
  } else if (g->bias_kind == CG_BIAS_COL) {
    x = LLVMBuildFAdd(k->b, x, load_c(k, s, t, v, elem_ptr(k, &g->bias, t->batch, col, NULL)), "");
  }
  if (g->resid.src != CG_GEMM_NONE && g->beta != 0.0f) {
    LLVMValueRef rv = load_c(k, s, t, v, elem_ptr(k, &g->resid, t->batch, row, col));
    if (g->beta != 1.0f) rv = LLVMBuildFMul(k->b, rv, splat(k, s, LLVMConstReal(k->m->t_f32, g->beta)), "");
    x = LLVMBuildFAdd(k->b, x, rv, "");
  }
  if (g->act == CG_ACT_GELU || g->act == CG_ACT_GELU_TANH) return cg_gelu(k, x, g->act == CG_ACT_GELU_TANH);
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
  if (main_end > 0) k_loop(k, g, s, t, slots, cg_i64(k, 0), cg_i64(k, main_end / K_UNROLL), K_UNROLL);
  if (g->K > main_end) k_loop(k, g, s, t, slots, cg_i64(k, main_end), cg_i64(k, g->K - main_end), 1);
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
  LLVMValueRef m0 = LLVMBuildMul(k->b, l.i, cg_i64(k, s->mr), "");
  Tile t = {batch, m0, n0, s->mr, cols, &g->b, n0, NULL, {NULL, NULL}};
  emit_tile(k, g, s, &t);
  cg_loop_end(k, &l);
  int rest = (int)(g->M % s->mr);
  if (rest == 0) return;
  CgIf c = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntEQ, block, cg_i64(k, w->blocks - 1), ""));
  Tile tail = {batch, cg_i64(k, g->M - rest), n0, rest, cols, &g->b, n0, NULL, {NULL, NULL}};
  emit_tile(k, g, s, &tail);
  cg_if_end(k, &c);
}

/* Work item i = ((batch * strips) + strip) * inner + j, strip-major so that consecutive items (one
 * thread's chunk) share a strip of B. */
static void split_item(CgKernel *k, LLVMValueRef i, int64_t strips, int64_t inner, LLVMValueRef *batch,
                       LLVMValueRef *strip, LLVMValueRef *j) {
  *j = LLVMBuildSRem(k->b, i, cg_i64(k, inner), "");
  LLVMValueRef rest = LLVMBuildSDiv(k->b, i, cg_i64(k, inner), "");
  *strip = LLVMBuildSRem(k->b, rest, cg_i64(k, strips), "");
  *batch = LLVMBuildSDiv(k->b, rest, cg_i64(k, strips), "");
}

/* Work item i = ((batch * strips) + strip) * blocks + block. */
static void gemm_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Work *w = user;
  LLVMValueRef batch, strip, block;
  split_item(k, i, w->strips, w->blocks, &batch, &strip, &block);
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

/* ---- packed B ------------------------------------------------------------------------------ *
 * Work items are (batch, column strip, group of row tiles). Each walks K in blocks: it packs the
 * block's panel of B (kc x nr, in a stack buffer that stays in L1/L2), then runs every row tile
 * of its group over the panel, starting from 0 on the first block and from C after, and applying
 * the epilogue on the last. */
typedef struct Pk {
  const CgGemm *g;
  Shape s;
  int64_t kc, nkb;                 /* rows of K per panel, panels */
  int64_t strips;
  int64_t groups, per_group;       /* row groups per strip, full tiles per group */
} Pk;

static LLVMValueRef c_ptr(CgKernel *k, const CgGemm *g, const Shape *s, const Tile *t, int r, int v) {
  LLVMValueRef row = LLVMBuildAdd(k->b, t->m0, cg_i64(k, r), "");
  LLVMValueRef col = LLVMBuildAdd(k->b, t->n0, cg_i64(k, (int64_t)v * s->lanes), "");
  return elem_ptr(k, &g->c, t->batch, row, col);
}

/* One tile over a panel of kc rows; first / last: i1 values (with a single panel, C is neither
 * read nor selected). */
static void packed_tile(CgKernel *k, const Pk *p, const Tile *t, LLVMValueRef kc, LLVMValueRef first,
                        LLVMValueRef last) {
  const CgGemm *g = p->g;
  const Shape *s = &p->s;
  int n = t->rows * s->nv;
  LLVMTypeRef vt = vec_type(k, s);
  LLVMValueRef slots[n + 1];
  for (int r = 0; r < t->rows; r++)
    for (int v = 0; v < s->nv; v++) {
      int lanes = lanes_in(s, t, v);
      LLVMValueRef init = LLVMConstNull(vt);
      /* C holds garbage before the first block: the select drops it */
      if (lanes > 0 && p->nkb > 1)
        init = LLVMBuildSelect(k->b, first, init, load_c(k, s, t, v, c_ptr(k, g, s, t, r, v)), "");
      slots[r * s->nv + v] = cg_var(k, vt, init);
    }
  LLVMValueRef main_n = LLVMBuildUDiv(k->b, kc, cg_i64(k, K_UNROLL), "");
  LLVMValueRef main_k = LLVMBuildMul(k->b, main_n, cg_i64(k, K_UNROLL), "");
  k_loop(k, g, s, t, slots, cg_i64(k, 0), main_n, K_UNROLL);
  if (g->K % K_UNROLL) k_loop(k, g, s, t, slots, main_k, LLVMBuildSub(k->b, kc, main_k, ""), 1);
  for (int r = 0; r < t->rows; r++)
    for (int v = 0; v < s->nv; v++) {
      int lanes = lanes_in(s, t, v);
      if (lanes == 0) continue;
      LLVMValueRef x = LLVMBuildLoad2(k->b, vt, slots[r * s->nv + v], "");
      LLVMValueRef done = epilogue(k, g, s, t, r, v, x);
      x = p->nkb > 1 ? LLVMBuildSelect(k->b, last, done, x, "") : done;
      store_c(k, s, t, v, x, c_ptr(k, g, s, t, r, v));
    }
}

/* cmask[v]: the lanes of vector v of a tile row that are among the first cols (i64) columns. */
static void col_masks(CgKernel *k, const Shape *s, LLVMValueRef cols, LLVMValueRef *cmask) {
  LLVMTypeRef v64 = LLVMVectorType(k->m->t_i64, (unsigned)s->lanes);
  LLVMValueRef lim = LLVMBuildInsertElement(k->b, LLVMGetUndef(v64), cols, cg_i32(k, 0), "");
  lim = LLVMBuildShuffleVector(k->b, lim, LLVMGetUndef(v64), LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)s->lanes)), "");
  for (int v = 0; v < s->nv && v < 2; v++) {
    LLVMValueRef ids[64];
    for (int j = 0; j < s->lanes; j++) ids[j] = cg_i64(k, (int64_t)v * s->lanes + j);
    cmask[v] = LLVMBuildICmp(k->b, LLVMIntSLT, LLVMConstVector(ids, (unsigned)s->lanes), lim, "");
  }
}

/* Every K block of one strip for the row tiles of group grp. The panel is zero beyond the strip's
 * columns, so the K loop reads it whole; only C is masked (cmask) when N % nr != 0. */
static void packed_strip(CgKernel *k, const Pk *p, LLVMValueRef panel, LLVMValueRef batch, LLVMValueRef grp,
                         LLVMValueRef n0) {
  const CgGemm *g = p->g;
  const Shape *s = &p->s;
  LLVMBuilderRef b = k->b;
  CgLoop lb = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, p->nkb));
  LLVMValueRef k0 = LLVMBuildMul(b, lb.i, cg_i64(k, p->kc), "");
  LLVMValueRef left = LLVMBuildSub(b, cg_i64(k, g->K), k0, "");
  LLVMValueRef kc = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, cg_i64(k, p->kc), ""), left, cg_i64(k, p->kc), "");
  LLVMValueRef cols = LLVMBuildSub(b, cg_i64(k, g->N), n0, "");
  cols = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, cols, cg_i64(k, s->nr), ""), cols, cg_i64(k, s->nr), "");
  g->pack(k, g->pack_user, panel, s->nr, batch, n0, cols, k0, kc);
  LLVMValueRef cmask[2] = {NULL, NULL};
  if (g->N % s->nr) col_masks(k, s, cols, cmask);
  LLVMValueRef first = LLVMBuildICmp(b, LLVMIntEQ, lb.i, cg_i64(k, 0), "");
  LLVMValueRef last = LLVMBuildICmp(b, LLVMIntEQ, lb.i, cg_i64(k, p->nkb - 1), "");
  CgGemmOperand pb = {.src = CG_GEMM_PTR, .rs = s->nr, .cs = 1, .ptr = panel};
  int64_t full_tiles = g->M / s->mr;
  LLVMValueRef t0 = LLVMBuildMul(b, grp, cg_i64(k, p->per_group), "");
  LLVMValueRef t1 = LLVMBuildAdd(b, t0, cg_i64(k, p->per_group), "");
  t1 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, t1, cg_i64(k, full_tiles), ""), cg_i64(k, full_tiles), t1, "");
  CgLoop lt = cg_loop_begin(k, t0, t1);
  Tile t = {batch, LLVMBuildMul(b, lt.i, cg_i64(k, s->mr), ""), n0, s->mr, (int)s->nr, &pb, cg_i64(k, 0), k0, {cmask[0], cmask[1]}};
  packed_tile(k, p, &t, kc, first, last);
  cg_loop_end(k, &lt);
  int rest = (int)(g->M % s->mr);
  if (rest) {
    CgIf c = cg_if_begin(k, LLVMBuildICmp(b, LLVMIntEQ, grp, cg_i64(k, p->groups - 1), ""));
    Tile tail = {batch, cg_i64(k, g->M - rest), n0, rest, (int)s->nr, &pb, cg_i64(k, 0), k0, {cmask[0], cmask[1]}};
    packed_tile(k, p, &tail, kc, first, last);
    cg_if_end(k, &c);
  }
  cg_loop_end(k, &lb);
}

/* Work item i = ((batch * strips) + strip) * groups + group. */
static void packed_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Pk *p = user;
  LLVMValueRef batch, strip, grp;
  split_item(k, i, p->strips, p->groups, &batch, &strip, &grp);
  LLVMValueRef n0 = LLVMBuildMul(k->b, strip, cg_i64(k, p->s.nr), "");
  LLVMValueRef panel = cg_var(k, LLVMArrayType2(k->m->t_f32, (uint64_t)(p->kc * p->s.nr)), NULL);
  LLVMSetAlignment(panel, 64);
  packed_strip(k, p, panel, batch, grp, n0);
}

/* A GEMM below this many multiply-adds runs on one thread: waking another costs microseconds,
 * more than the whole product (a batch-1 dense layer). */
#define PARALLEL_MIN_FMAS (1 << 17)

/* The parallel grain for `items` work items: all of them in one chunk when the GEMM is small. */
static int64_t gemm_grain(const CgGemm *g, int64_t items) {
  double fmas = (double)g->batch * (double)g->M * (double)g->N * (double)g->K;
  return fmas < PARALLEL_MIN_FMAS ? items : 1;
}

static int64_t lcm(int64_t a, int64_t b) {
  int64_t x = a, y = b;
  while (y) {
    int64_t r = x % y;
    x = y, y = r;
  }
  return a / x * b;
}

static void emit_packed(CgKernel *k, const CgGemm *g) {
  Pk p = {.g = g, .s = tile_shape(k->m, g->M)};
  p.kc = g->kc > 0 ? g->kc : g->K <= 384 ? g->K : 256;
  if (p.kc > g->K) p.kc = g->K;
  p.nkb = (g->K + p.kc - 1) / p.kc;
  p.kc = (g->K + p.nkb - 1) / p.nkb; /* even blocks: no short last panel */
  /* every block a multiple of the unroll (no remainder loop) and of kc_multiple */
  int64_t unit = lcm(g->K % K_UNROLL == 0 ? K_UNROLL : 1, g->kc_multiple > 0 ? g->kc_multiple : 1);
  p.kc += (unit - p.kc % unit) % unit;
  if (p.kc > g->K) p.kc = g->K;
  p.nkb = (g->K + p.kc - 1) / p.kc;
  p.strips = (g->N + p.s.nr - 1) / p.s.nr;
  /* Few strips (a 7x7 map): split the rows too, each group packing its own copy of the panel,
   * into about 8 work items in all (a few per thread) and at least 4 tiles per group, so packing
   * stays small next to the FMAs. */
  int64_t items = g->batch * p.strips, full_tiles = g->M / p.s.mr;
  int64_t groups = items >= 8 ? 1 : (8 + items - 1) / items;
  if (groups > full_tiles / 4) groups = full_tiles / 4;
  if (groups < 1) groups = 1;
  p.per_group = (full_tiles + groups - 1) / groups;
  p.groups = p.per_group ? (full_tiles + p.per_group - 1) / p.per_group : 1;
  cg_parallel_for(k, items * p.groups, gemm_grain(g, items * p.groups), packed_body, &p);
}

bool cg_gemm_read_activation(const KnNode *n, CgGemmAct *act, float *lo, float *hi) {
  const char *name = ir_attr_string(n, "activation", "");
  *act = !strcmp(name, "Relu") ? CG_ACT_RELU : !strcmp(name, "Clip") ? CG_ACT_CLIP : CG_ACT_NONE;
  if (!strcmp(name, "Gelu")) {
    const char *approx = ir_attr_string(n, "approximate", "none");
    *act = !strcmp(approx, "tanh") ? CG_ACT_GELU_TANH : CG_ACT_GELU;
    if (strcmp(approx, "tanh") != 0 && strcmp(approx, "none") != 0) return false;
  }
  *lo = ir_attr_float(n, "min", -3.402823466e38f);
  *hi = ir_attr_float(n, "max", 3.402823466e38f);
  return !*name || *act != CG_ACT_NONE;
}

void cg_emit_gemm(CgKernel *k, const CgGemm *g) {
  if (g->pack) {
    emit_packed(k, g);
    return;
  }
  Work w = {.g = g, .s = tile_shape(k->m, g->M)};
  w.full_strips = g->N / w.s.nr;
  w.strips = (g->N + w.s.nr - 1) / w.s.nr;
  w.blocks = (g->M + w.s.mb - 1) / w.s.mb;
  /* one work item is at least a few microseconds of FMAs: no chunking below that */
  int64_t items = g->batch * w.strips * w.blocks;
  cg_parallel_for(k, items, gemm_grain(g, items), gemm_body, &w);
}
