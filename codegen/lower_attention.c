/* lower_attention.c - kiln.Attention (passes/fuse_attention.c) and kiln.FusedMatMul
 * (passes/fold_transpose.c), which is its first product alone. Attention, per work item (batch
 * entry, block of query rows): S = scale * Q K^T + mask into a stack block, a row softmax on it in
 * place, then Y = P V / rowsum, so the [..., Sq, Sk] scores never reach memory. Products run on register
 * tiles of mr rows x 2 vectors (like codegen/cg_gemm.c, which cannot run inside a parallel body);
 * Q, K, V and Y are read and written through the strides their transposes gave them, a K^T that is
 * not unit-stride along Sk being packed strip by strip into a small panel first. */
#include <math.h>

#include "codegen/cg_vecmath.h"
#include "codegen/lower_conv.h"

#define ATTN_MAX_RANK 8
#define SCORE_FLOATS 16384 /* the score block a work item keeps on its stack (64 KiB) */
#define PANEL_FLOATS 16384 /* most K^T packed at once: D x nr */
/* Row blocks are cut so that there are at least this many work items; each packs its own K^T,
 * so more would cost more packing than 2-4 threads gain. */
#define MIN_ITEMS 4
#define PLAIN_ROWS 64 /* rows per work item of kiln.FusedMatMul (each packs B^T strips once) */

/* An operand as a batch of matrices: element (b, r, c) at boff[b] + r * rs + c * cs. */
typedef struct View {
  int input; /* kernel input, or -1 for output 0 */
  int64_t rs, cs;
  int64_t *boff;
} View;

typedef struct At {
  int64_t batch, Sq, Sk, D, Dv;
  View q, kt, v, y, mask;
  bool has_mask, pack_k;
  bool plain; /* kiln.FusedMatMul: Q K^T alone, written to Y (A, B, M, N, K as q, kt, Sq, Sk, D) */
  float scale;
  int lanes, mr;
  int64_t nr, rb, nblk;
} At;

/* Batch offsets and matrix strides of a view whose axis d is axis perm[d] of a dense tensor of
 * dims `dims` (perm NULL: identity, a lower rank aligned right as numpy broadcasts); bdims: the
 * view's r - 2 batch dims. Bcast: size-1 axes (the mask's) get stride 0. */
static bool make_view(View *v, int input, const int64_t *dims, int rank, const int64_t *perm, int r,
                      const int64_t *bdims, int64_t batch, bool bcast) {
  int64_t st[ATTN_MAX_RANK], ls[ATTN_MAX_RANK], s = 1;
  for (int d = rank - 1; d >= 0; d--) st[d] = dims[d] == 1 && bcast ? 0 : s, s *= dims[d];
  for (int d = 0; d < r; d++) {
    int src = perm ? (int)perm[d] : d - (r - rank);
    ls[d] = src < 0 ? 0 : st[src];
  }
  v->input = input, v->rs = ls[r - 2], v->cs = ls[r - 1];
  v->boff = calloc((size_t)batch, sizeof *v->boff);
  if (!v->boff) return false;
  for (int64_t b = 0; b < batch; b++) {
    int64_t rem = b, off = 0;
    for (int d = r - 3; d >= 0; d--) {
      off += (rem % bdims[d]) * ls[d];
      rem /= bdims[d];
    }
    v->boff[b] = off;
  }
  return true;
}

/* ---- vectors of w lanes (w <= lanes, any w: the narrow tails of rows) -------------------- */
static LLVMTypeRef vt(CgKernel *k, int w) { return LLVMVectorType(k->m->t_f32, (unsigned)w); }

static LLVMValueRef splat(CgKernel *k, LLVMValueRef x, int w) {
  LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt(k, w)), x, cg_i32(k, 0), "");
  return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt(k, w)), LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)w)), "");
}

static LLVMValueRef ptr_at(CgKernel *k, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(k->b, k->m->t_f32, base, &idx, 1, "");
}

/* w elements from base[idx], stride apart (1: one vector load, 0: a broadcast, else gathered). */
static LLVMValueRef vload(CgKernel *k, LLVMValueRef base, LLVMValueRef idx, int64_t stride, int w) {
  if (stride == 0) return splat(k, LLVMBuildLoad2(k->b, k->m->t_f32, ptr_at(k, base, idx), ""), w);
  if (stride == 1) {
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt(k, w), ptr_at(k, base, idx), "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef v = LLVMGetUndef(vt(k, w));
  for (int l = 0; l < w; l++) {
    LLVMValueRef x = LLVMBuildLoad2(k->b, k->m->t_f32, ptr_at(k, base, lw_addc(k, idx, l * stride)), "");
    v = LLVMBuildInsertElement(k->b, v, x, cg_i32(k, l), "");
  }
  return v;
}

static void vstore(CgKernel *k, LLVMValueRef base, LLVMValueRef idx, int64_t stride, int w, LLVMValueRef x) {
  if (stride == 1) {
    LLVMSetAlignment(LLVMBuildStore(k->b, x, ptr_at(k, base, idx)), 4);
    return;
  }
  for (int l = 0; l < w; l++)
    LLVMBuildStore(k->b, LLVMBuildExtractElement(k->b, x, cg_i32(k, l), ""), ptr_at(k, base, lw_addc(k, idx, l * stride)));
}

/* A horizontal reduction of x ("fadd": sum, reassociated; "fmax": max). */
static LLVMValueRef reduce(CgKernel *k, const char *op, LLVMValueRef x, int w) {
  char name[48];
  snprintf(name, sizeof name, "llvm.vector.reduce.%s", op);
  LLVMTypeRef ov = vt(k, w);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, &ov, 1);
  bool add = op[1] == 'a';
  LLVMValueRef args[2] = {LLVMConstReal(k->m->t_f32, add ? -0.0 : 0.0), x};
  LLVMValueRef r = LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, &ov, 1), fn, add ? args : args + 1, add ? 2 : 1, "");
  return add ? lw_reassoc(r) : r;
}

/* ---- register tiles ---------------------------------------------------------------------- */
/* One product's operands: A[i][kk] = a[a_off + i * a_rs + kk * a_ks] (one row per query row i),
 * B[kk][c] = b[b_off + kk * b_rs + c * b_cs]. */
typedef struct Prod {
  LLVMValueRef a, a_off, b, b_off;
  int64_t a_rs, a_ks, b_rs, b_cs, K;
  bool qk; /* the epilogue: scale + mask into the score block (Y for a plain product), else / rowsum into Y */
} Prod;

/* What a tile's epilogue needs besides its accumulators. */
typedef struct Ctx {
  const At *a;
  LLVMValueRef bt, r0, scores, inv, mask_off, y_off;
} Ctx;

static void epilogue(CgKernel *k, const Ctx *c, const Prod *p, LLVMValueRef row, LLVMValueRef col, int w, LLVMValueRef x) {
  const At *a = c->a;
  LLVMValueRef rel = lw_sub(k, row, c->r0);
  if (p->qk && a->scale != 1.0f) x = LLVMBuildFMul(k->b, x, splat(k, LLVMConstReal(k->m->t_f32, a->scale), w), "");
  if (p->qk && a->has_mask) {
    LLVMValueRef mi = lw_add(k, c->mask_off, lw_add(k, lw_mulc(k, row, a->mask.rs), lw_mulc(k, col, a->mask.cs)));
    x = LLVMBuildFAdd(k->b, x, vload(k, k->in[3], mi, a->mask.cs, w), "");
  }
  if (p->qk && !a->plain) {
    vstore(k, c->scores, lw_add(k, lw_mulc(k, rel, a->Sk), col), 1, w, x);
    return;
  }
  if (!p->qk) x = LLVMBuildFMul(k->b, x, splat(k, LLVMBuildLoad2(k->b, k->m->t_f32, ptr_at(k, c->inv, rel), ""), w), "");
  LLVMValueRef yi = lw_add(k, c->y_off, lw_add(k, lw_mulc(k, row, a->y.rs), lw_mulc(k, col, a->y.cs)));
  vstore(k, k->out[0], yi, a->y.cs, w, x);
}

/* rows x cols of the product (rows <= mr, cols <= 2 * lanes, both known here) at query row m0 and
 * column n0 (absolute; B's columns start at b_off). */
static void tile(CgKernel *k, const Ctx *c, const Prod *p, LLVMValueRef m0, LLVMValueRef n0, int rows, int cols) {
  int lanes = c->a->lanes, nv = (cols + lanes - 1) / lanes, w[2] = {cols < lanes ? cols : lanes, cols - lanes};
  LLVMValueRef slot[2 * 16], arow[16];
  for (int r = 0; r < rows; r++) {
    arow[r] = lw_add(k, p->a_off, lw_mulc(k, lw_addc(k, m0, r), p->a_rs));
    for (int v = 0; v < nv; v++) slot[r * 2 + v] = cg_var(k, vt(k, w[v]), LLVMConstNull(vt(k, w[v])));
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, p->K));
  LLVMValueRef bv[2];
  for (int v = 0; v < nv; v++)
    bv[v] = vload(k, p->b, lw_add(k, p->b_off, lw_add(k, lw_mulc(k, l.i, p->b_rs), lw_mulc(k, lw_addc(k, n0, (int64_t)v * lanes), p->b_cs))),
                  p->b_cs, w[v]);
  for (int r = 0; r < rows; r++) {
    LLVMValueRef x = LLVMBuildLoad2(k->b, k->m->t_f32, ptr_at(k, p->a, lw_add(k, arow[r], lw_mulc(k, l.i, p->a_ks))), "");
    for (int v = 0; v < nv; v++) {
      LLVMValueRef args[3] = {splat(k, x, w[v]), bv[v], LLVMBuildLoad2(k->b, vt(k, w[v]), slot[r * 2 + v], "")};
      LLVMBuildStore(k->b, cg_intrinsic(k, "llvm.fmuladd", args, 3), slot[r * 2 + v]);
    }
  }
  cg_loop_end(k, &l);
  for (int r = 0; r < rows; r++)
    for (int v = 0; v < nv; v++)
      epilogue(k, c, p, lw_addc(k, m0, r), lw_addc(k, n0, (int64_t)v * lanes), w[v],
               LLVMBuildLoad2(k->b, vt(k, w[v]), slot[r * 2 + v], ""));
}

/* Every row tile of the block for one column strip: full tiles of mr rows, then the Sq % mr rows
 * left at the end of the last block. */
static void strip_rows(CgKernel *k, const Ctx *c, const Prod *p, LLVMValueRef blk, LLVMValueRef n0, int cols) {
  const At *a = c->a;
  LLVMValueRef rows = lw_sub(k, cg_i64(k, a->Sq), c->r0);
  rows = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, rows, cg_i64(k, a->rb), ""), rows, cg_i64(k, a->rb));
  CgLoop lt = cg_loop_begin(k, cg_i64(k, 0), lw_divc(k, rows, a->mr));
  tile(k, c, p, lw_add(k, c->r0, lw_mulc(k, lt.i, a->mr)), n0, a->mr, cols);
  cg_loop_end(k, &lt);
  int rest = (int)(a->Sq % a->mr);
  if (!rest) return;
  CgIf last = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntEQ, blk, cg_i64(k, a->nblk - 1), ""));
  tile(k, c, p, cg_i64(k, a->Sq - rest), n0, rest, cols);
  cg_if_end(k, &last);
}

/* panel[d][c] = K^T[d][n0 + c] for c < cols: a strip of K^T made unit-stride along Sk (rows of
 * the panel gathered, so the stores are whole vectors). */
static void pack_strip(CgKernel *k, const At *a, LLVMValueRef panel, LLVMValueRef k_off, LLVMValueRef n0, int cols) {
  LLVMValueRef src = lw_add(k, k_off, lw_mulc(k, n0, a->kt.cs));
  CgLoop ld = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, a->D));
  LLVMValueRef from = lw_add(k, src, lw_mulc(k, ld.i, a->kt.rs)), to = lw_mulc(k, ld.i, a->nr);
  for (int c0 = 0; c0 < cols; c0 += a->lanes) {
    int w = cols - c0 < a->lanes ? cols - c0 : a->lanes;
    LLVMValueRef x = vload(k, k->in[1], lw_addc(k, from, c0 * a->kt.cs), a->kt.cs, w);
    vstore(k, panel, lw_addc(k, to, c0), 1, w, x);
  }
  cg_loop_end(k, &ld);
}

/* Strips of nr columns (the last one narrower) of one product over columns [0, n). */
static void strips(CgKernel *k, const Ctx *c, Prod *p, LLVMValueRef blk, LLVMValueRef panel, LLVMValueRef k_off, int64_t n) {
  const At *a = c->a;
  LLVMValueRef b_off = p->b_off;
  for (int part = 0; part < 2; part++) {
    int64_t full = n / a->nr, cols = part ? n % a->nr : a->nr;
    if (cols == 0 || (!part && full == 0)) continue;
    CgLoop ls = cg_loop_begin(k, cg_i64(k, part ? full : 0), cg_i64(k, part ? full + 1 : full));
    LLVMValueRef n0 = lw_mulc(k, ls.i, a->nr);
    if (panel) {
      pack_strip(k, a, panel, k_off, n0, (int)cols);
      p->b = panel, p->b_off = lw_sub(k, cg_i64(k, 0), n0), p->b_rs = a->nr, p->b_cs = 1;
    } else {
      p->b_off = b_off;
    }
    strip_rows(k, c, p, blk, n0, (int)cols);
    cg_loop_end(k, &ls);
  }
}

/* max(a, b) as one compare and select (vmaxps): a NaN score may be skipped, but it makes its own
 * exp and so the row's sum NaN anyway, as Softmax gives. */
static LLVMValueRef vmax2(CgKernel *k, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, a, b, ""), a, b, "");
}

/* Each row of the score block: s = exp(s - max) in place, inv[r] = 1 / sum (applied to Y). */
static void softmax_rows(CgKernel *k, const Ctx *c, LLVMValueRef rows) {
  const At *a = c->a;
  int L = a->lanes, tail = (int)(a->Sk % L);
  int64_t full = a->Sk / L;
  CgLoop lr = cg_loop_begin(k, cg_i64(k, 0), rows);
  LLVMValueRef row = lw_mulc(k, lr.i, a->Sk), ninf = LLVMConstReal(k->m->t_f32, -INFINITY);
  LLVMValueRef vmax = cg_var(k, vt(k, L), splat(k, ninf, L)), vsum = cg_var(k, vt(k, L), LLVMConstNull(vt(k, L)));
  LLVMValueRef mx = ninf, sum = LLVMConstReal(k->m->t_f32, 0);
  for (int pass = 0; pass < 2; pass++) {
    LLVMValueRef m = pass ? splat(k, mx, L) : NULL;
    CgLoop lj = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, full));
    LLVMValueRef at = lw_add(k, row, lw_mulc(k, lj.i, L)), x = vload(k, c->scores, at, 1, L);
    LLVMValueRef slot = pass ? vsum : vmax, cur = LLVMBuildLoad2(k->b, vt(k, L), slot, "");
    if (pass) x = cg_vm_exp(k, LLVMBuildFSub(k->b, x, m, "")), vstore(k, c->scores, at, 1, L, x);
    LLVMBuildStore(k->b, pass ? LLVMBuildFAdd(k->b, cur, x, "") : vmax2(k, cur, x), slot);
    cg_loop_end(k, &lj);
    LLVMValueRef acc = pass ? reduce(k, "fadd", LLVMBuildLoad2(k->b, vt(k, L), vsum, ""), L)
                            : reduce(k, "fmax", LLVMBuildLoad2(k->b, vt(k, L), vmax, ""), L);
    if (tail) { /* the last Sk % lanes scores: one narrower vector */
      LLVMValueRef at2 = lw_addc(k, row, full * L), xt = vload(k, c->scores, at2, 1, tail);
      if (pass) xt = cg_vm_exp(k, LLVMBuildFSub(k->b, xt, splat(k, mx, tail), "")), vstore(k, c->scores, at2, 1, tail, xt);
      LLVMValueRef t = pass ? reduce(k, "fadd", xt, tail) : reduce(k, "fmax", xt, tail);
      acc = pass ? LLVMBuildFAdd(k->b, acc, t, "") : vmax2(k, acc, t);
    }
    if (pass) sum = acc;
    else mx = acc;
  }
  LLVMBuildStore(k->b, LLVMBuildFDiv(k->b, LLVMConstReal(k->m->t_f32, 1), sum, ""), ptr_at(k, c->inv, lr.i));
  cg_loop_end(k, &lr);
}

/* The stack panel a K^T that is not unit-stride along Sk is packed into, one strip at a time
 * (NULL when K^T is read in place). */
static LLVMValueRef k_panel(CgKernel *k, const At *a) {
  if (!a->pack_k) return NULL;
  LLVMValueRef panel = cg_var(k, LLVMArrayType2(k->m->t_f32, (uint64_t)(a->D * a->nr)), NULL);
  LLVMSetAlignment(panel, 64);
  return panel;
}

/* Work item i: batch entry i / nblk, query rows from (i % nblk) * rb. */
static void attn_body(CgKernel *k, LLVMValueRef i, void *user) {
  const At *a = user;
  LLVMValueRef bt = lw_divc(k, i, a->nblk), blk = lw_remc(k, i, a->nblk);
  Ctx c = {.a = a, .bt = bt, .r0 = lw_mulc(k, blk, a->rb)};
  c.scores = cg_var(k, LLVMArrayType2(k->m->t_f32, (uint64_t)(a->rb * a->Sk)), NULL);
  c.inv = cg_var(k, LLVMArrayType2(k->m->t_f32, (uint64_t)a->rb), NULL);
  LLVMSetAlignment(c.scores, 64);
  LLVMValueRef panel = k_panel(k, a);
  LLVMValueRef q_off = lw_i64_at(k, lw_table(k, a->q.boff, a->batch), bt);
  LLVMValueRef k_off = lw_i64_at(k, lw_table(k, a->kt.boff, a->batch), bt);
  LLVMValueRef v_off = lw_i64_at(k, lw_table(k, a->v.boff, a->batch), bt);
  c.y_off = lw_i64_at(k, lw_table(k, a->y.boff, a->batch), bt);
  if (a->has_mask) c.mask_off = lw_i64_at(k, lw_table(k, a->mask.boff, a->batch), bt);
  Prod qk = {.a = k->in[0], .a_off = q_off, .a_rs = a->q.rs, .a_ks = a->q.cs, .b = k->in[1], .b_off = k_off,
             .b_rs = a->kt.rs, .b_cs = a->kt.cs, .K = a->D, .qk = true};
  strips(k, &c, &qk, blk, panel, k_off, a->Sk);
  LLVMValueRef rows = lw_sub(k, cg_i64(k, a->Sq), c.r0);
  rows = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, rows, cg_i64(k, a->rb), ""), rows, cg_i64(k, a->rb));
  softmax_rows(k, &c, rows);
  Prod pv = {.a = c.scores, .a_off = lw_mulc(k, c.r0, -a->Sk), .a_rs = a->Sk, .a_ks = 1, .b = k->in[2], .b_off = v_off,
             .b_rs = a->v.rs, .b_cs = a->v.cs, .K = a->Sk};
  strips(k, &c, &pv, blk, NULL, NULL, a->Dv);
}

/* kiln.FusedMatMul's work item i: rows from (i % nblk) * rb of batch entry i / nblk, every column. */
static void plain_body(CgKernel *k, LLVMValueRef i, void *user) {
  const At *a = user;
  LLVMValueRef bt = lw_divc(k, i, a->nblk), blk = lw_remc(k, i, a->nblk);
  Ctx c = {.a = a, .bt = bt, .r0 = lw_mulc(k, blk, a->rb)};
  LLVMValueRef panel = k_panel(k, a);
  LLVMValueRef a_off = lw_i64_at(k, lw_table(k, a->q.boff, a->batch), bt);
  LLVMValueRef b_off = lw_i64_at(k, lw_table(k, a->kt.boff, a->batch), bt);
  c.y_off = lw_i64_at(k, lw_table(k, a->y.boff, a->batch), bt);
  Prod ab = {.a = k->in[0], .a_off = a_off, .a_rs = a->q.rs, .a_ks = a->q.cs, .b = k->in[1], .b_off = b_off,
             .b_rs = a->kt.rs, .b_cs = a->kt.cs, .K = a->D, .qk = true};
  strips(k, &c, &ab, blk, panel, b_off, a->Sk);
}

/* Views of Q, K^T, V, Y and the mask from the node's shapes and perms. */
static KnStatus setup(CgKernel *k, At *a) {
  static const char *const attn_perms[3] = {"perm_q", "perm_k", "perm_v"}, *const mm_perms[3] = {"perm_a", "perm_b", ""};
  const char *const *perms = a->plain ? mm_perms : attn_perms;
  int n_in = a->plain ? 2 : 3;
  const KnShape *ys = cg_out_shape(k, 0);
  int r = ys->rank;
  if (r < 2 || r > ATTN_MAX_RANK) return cg_unsupported(k, "rank");
  int64_t d[4][ATTN_MAX_RANK], vd[3][ATTN_MAX_RANK];
  const int64_t *pm[4];
  for (int i = 0; i < 4; i++) {
    if (i >= n_in && i < 3) { /* a plain product has no V */
      pm[i] = NULL, memcpy(d[i], d[0], sizeof d[i]), memcpy(vd[i], vd[0], sizeof vd[i]);
      continue;
    }
    const KnShape *s = i < 3 ? cg_in_shape(k, i) : ys;
    int64_t n = 0;
    pm[i] = ir_attr_ints(k->node, i < 3 ? perms[i] : "perm_out", &n);
    if (s->rank != r || (pm[i] && n != r)) return cg_unsupported(k, "operand ranks");
    for (int j = 0; j < r; j++) d[i][j] = s->dims[j].value;
    for (int j = 0; j < r && i < 3; j++) vd[i][j] = d[i][pm[i] ? pm[i][j] : j];
  }
  a->batch = 1;
  for (int j = 0; j < r - 2; j++) a->batch *= vd[0][j];
  a->Sq = vd[0][r - 2], a->D = vd[0][r - 1], a->Sk = vd[1][r - 1], a->Dv = vd[2][r - 1];
  bool ok = true;
  for (int i = 0; i < n_in && ok; i++) ok = make_view(i ? (i == 1 ? &a->kt : &a->v) : &a->q, i, d[i], r, pm[i], r, vd[0], a->batch, false);
  /* Y = Transpose(O, perm_out): O's axis perm_out[j] is Y's axis j */
  int64_t inv[ATTN_MAX_RANK];
  for (int j = 0; j < r; j++) inv[pm[3] ? pm[3][j] : j] = j;
  if (ok) ok = make_view(&a->y, -1, d[3], r, inv, r, vd[0], a->batch, false);
  if (ok && a->has_mask) {
    const KnShape *ms = cg_in_shape(k, 3);
    int64_t md[ATTN_MAX_RANK];
    for (int j = 0; j < ms->rank; j++) md[j] = ms->dims[j].value;
    if (ms->rank > r) return cg_unsupported(k, "a mask of higher rank than the scores");
    ok = make_view(&a->mask, 3, md, ms->rank, NULL, r, vd[0], a->batch, true);
  }
  return ok ? KN_OK : kn_fail(k->err, KN_ERR_NOMEM, "out of memory");
}

/* Tile and block sizes for this target and shape; false when the score block would not fit. */
static bool plan(CgKernel *k, At *a) {
  a->lanes = k->m->vec_lanes > 0 ? k->m->vec_lanes : 4;
  a->mr = k->m->vec_regs >= 32 ? 8 : 4;
  a->nr = 2 * (int64_t)a->lanes;
  int64_t mr = a->mr, by_room = a->plain ? PLAIN_ROWS : SCORE_FLOATS / a->Sk / mr * mr;
  int64_t blocks = (MIN_ITEMS + a->batch - 1) / a->batch;
  int64_t by_items = ((a->Sq + blocks - 1) / blocks + mr - 1) / mr * mr;
  a->rb = by_room < by_items ? by_room : by_items;
  if (a->rb < mr) a->rb = mr;
  if (!a->plain && a->rb * a->Sk > 2 * SCORE_FLOATS) return false; /* at most 128 KiB of stack */
  a->nblk = (a->Sq + a->rb - 1) / a->rb;
  a->pack_k = a->kt.cs != 1 && a->D * a->nr <= PANEL_FLOATS;
  return true;
}

static void free_views(At *a) {
  View *v[5] = {&a->q, &a->kt, &a->v, &a->y, &a->mask};
  for (int i = 0; i < 5; i++) free(v[i]->boff);
}

/* A product below this many multiply-adds runs on one thread (waking another costs more). */
#define PARALLEL_MIN_FMAS (1 << 17)

/* Both ops: attention, or (plain) kiln.FusedMatMul. */
static KnStatus lower(CgKernel *k, bool plain) {
  At a = {.has_mask = !plain && lw_has(k, 3), .scale = plain ? 1.0f : ir_attr_float(k->node, "scale", 1.0f), .plain = plain};
  for (int i = 0; i < k->node->n_inputs; i++)
    if (lw_has(k, i) && cg_in_dtype(k, i) != KN_F32) return cg_unsupported(k, "dtype (f32 only)");
  if (cg_numel(cg_out_shape(k, 0)) == 0) return KN_OK;
  KnStatus st = setup(k, &a);
  if (!st && a.Sk < 1) st = cg_unsupported(k, plain ? "N = 0" : "an empty key sequence");
  if (!st && !plan(k, &a)) st = cg_unsupported(k, "a key sequence too long for the score block");
  if (!st) {
    int64_t items = a.batch * a.nblk;
    double fmas = (double)a.batch * (double)a.Sq * (double)a.Sk * (double)(a.D + a.Dv);
    if (plain) fmas = (double)a.batch * (double)a.Sq * (double)a.Sk * (double)a.D;
    cg_parallel_for(k, items, fmas < PARALLEL_MIN_FMAS ? items : 1, plain ? plain_body : attn_body, &a);
  }
  free_views(&a);
  return st;
}

KnStatus cg_lower_attention(CgKernel *k) { return lower(k, false); }

/* kiln.FusedMatMul (passes/fold_transpose.c): Transpose(Transpose(A, perm_a) @ Transpose(B, perm_b),
 * perm_out) on the same register tiles, B^T strips packed when B is not unit-stride along N. */
KnStatus cg_lower_fused_matmul(CgKernel *k) { return lower(k, true); }
