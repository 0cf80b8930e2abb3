/* lower_matmul.c - MatMul (numpy batching, 1-D operands), MatMulInteger, QLinearMatMul and Gemm:
 * blocks of 4 rows (x column blocks) run in parallel; each block is an i-k-j loop whose inner loop
 * walks unit-stride output rows sharing each load of B, or a dot-product loop per row when B is
 * read along K (transB) or the result needs a register accumulator (half types, quantized). */
#include <math.h>

#include "codegen/cg_gemm.h"
#include "codegen/lower_conv.h"

typedef enum { MM_FLOAT, MM_INT, MM_QLINEAR } MmKind;

typedef struct Mm {
  MmKind kind;
  int ia, ib;                   /* input index of A and B */
  KnDtype ta, tb, to, tacc;     /* A, B, output and accumulator dtypes */
  int64_t batch, M, N, K;
  int64_t a_rs, a_ks, b_ks, b_ns; /* element strides inside one A / B matrix */
  int64_t *a_offs, *b_offs;     /* per batch entry (element offsets), NULL when batch == 1 */
  int64_t nb, nblk;             /* column block size and count */
  int64_t rb;                   /* rows per parallel iteration */
  bool dot;                     /* dot-product form instead of i-k-j */
  /* Gemm */
  double alpha, beta;
  int ic;                       /* input index of C or -1 */
  int64_t c_rs, c_cs;
  /* zero points / scales: input index or -1, and whether they are per row / column */
  int azp, bzp, as, bs, ys, yzp;
  bool azp_row, bzp_col, as_row, bs_col;
} Mm;

/* A zero point or scale input: scalar (false) or one entry per row/column (true). */
static KnStatus per_axis(CgKernel *k, int i, int64_t len, bool *vec) {
  *vec = false;
  if (i < 0 || !cg_in_shape(k, i)) return KN_OK;
  int64_t n = cg_numel(cg_in_shape(k, i));
  if (n == 1) return KN_OK;
  if (n == len) {
    *vec = true;
    return KN_OK;
  }
  return cg_unsupported(k, "zero point / scale must be a scalar or have one entry per row or column");
}

/* Batch offsets of an operand with matrix size msize and rank r (matrix dims last mdims). */
static int64_t *batch_offsets(const KnShape *s, int mdims, const int64_t *bdims, int nb, int64_t batch,
                              int64_t msize) {
  int64_t *offs = calloc((size_t)batch, sizeof *offs);
  if (!offs) return NULL;
  int sb = s->rank - mdims; /* the operand's batch dims, right-aligned with bdims */
  int64_t strides[16] = {0}, st = msize;
  for (int d = sb - 1; d >= 0; d--) {
    strides[nb - sb + d] = s->dims[d].value == 1 ? 0 : st;
    st *= s->dims[d].value;
  }
  for (int64_t b = 0; b < batch; b++) {
    int64_t rem = b, off = 0;
    for (int d = nb - 1; d >= 0; d--) {
      off += (rem % bdims[d]) * strides[d];
      rem /= bdims[d];
    }
    offs[b] = off;
  }
  return offs;
}

static KnStatus setup_matmul(CgKernel *k, Mm *mm) {
  const KnShape *a = cg_in_shape(k, mm->ia), *b = cg_in_shape(k, mm->ib), *y = cg_out_shape(k, 0);
  if (a->rank < 1 || b->rank < 1 || a->rank > 16 || b->rank > 16) return cg_unsupported(k, "operand rank");
  mm->K = a->dims[a->rank - 1].value;
  mm->M = a->rank == 1 ? 1 : a->dims[a->rank - 2].value;
  mm->N = b->rank == 1 ? 1 : b->dims[b->rank - 1].value;
  mm->a_rs = mm->K, mm->a_ks = 1;
  mm->b_ks = mm->N, mm->b_ns = 1;
  int nb = y->rank - (a->rank > 1) - (b->rank > 1);
  int64_t bdims[16];
  mm->batch = 1;
  for (int d = 0; d < nb; d++) mm->batch *= (bdims[d] = y->dims[d].value);
  if (mm->batch > 1) {
    mm->a_offs = batch_offsets(a, a->rank > 1 ? 2 : 1, bdims, nb, mm->batch, mm->M * mm->K);
    mm->b_offs = batch_offsets(b, b->rank > 1 ? 2 : 1, bdims, nb, mm->batch, mm->K * mm->N);
    if (!mm->a_offs || !mm->b_offs) return kn_fail(k->err, KN_ERR_NOMEM, "out of memory");
  }
  return KN_OK;
}

static KnStatus setup_gemm(CgKernel *k, Mm *mm) {
  const KnShape *a = cg_in_shape(k, 0), *b = cg_in_shape(k, 1), *y = cg_out_shape(k, 0);
  if (a->rank != 2 || b->rank != 2) return cg_unsupported(k, "Gemm operands must be 2-D");
  bool ta = ir_attr_int(k->node, "transA", 0) != 0, tb = ir_attr_int(k->node, "transB", 0) != 0;
  mm->M = y->dims[0].value, mm->N = y->dims[1].value;
  mm->K = a->dims[ta ? 0 : 1].value;
  mm->batch = 1;
  mm->a_rs = ta ? 1 : mm->K, mm->a_ks = ta ? mm->M : 1;
  mm->b_ks = tb ? 1 : mm->N, mm->b_ns = tb ? mm->K : 1;
  mm->alpha = ir_attr_float(k->node, "alpha", 1.0f);
  mm->beta = ir_attr_float(k->node, "beta", 1.0f);
  mm->ic = cg_in_shape(k, 2) ? 2 : -1;
  if (mm->ic >= 0) {
    const KnShape *c = cg_in_shape(k, 2);
    if (c->rank > 2) return cg_unsupported(k, "Gemm C of rank > 2");
    int64_t st[2];
    cg_broadcast_strides(c, y, st);
    mm->c_rs = st[0], mm->c_cs = st[1];
  }
  return KN_OK;
}

/* A[row, kk] in the accumulator type, zero point removed (and alpha applied for the i-k-j form). */
static LLVMValueRef load_a(CgKernel *k, const Mm *mm, LLVMValueRef aoff, LLVMValueRef row, LLVMValueRef kk) {
  LLVMValueRef v = cg_load(k, k->in[mm->ia], mm->ta, lw_madc(k, kk, mm->a_ks, aoff));
  v = cg_convert(k, v, mm->ta, mm->tacc);
  if (lw_has(k, mm->azp)) {
    KnDtype zt = cg_in_dtype(k, mm->azp);
    LLVMValueRef z = cg_load(k, k->in[mm->azp], zt, mm->azp_row ? row : cg_i64(k, 0));
    v = LLVMBuildSub(k->b, v, cg_convert(k, z, zt, mm->tacc), "");
  }
  return v;
}

static LLVMValueRef load_b(CgKernel *k, const Mm *mm, LLVMValueRef boff, LLVMValueRef kk, LLVMValueRef j) {
  LLVMValueRef idx = lw_add(k, boff, lw_add(k, lw_mulc(k, kk, mm->b_ks), lw_mulc(k, j, mm->b_ns)));
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[mm->ib], mm->tb, idx), mm->tb, mm->tacc);
  if (lw_has(k, mm->bzp)) {
    KnDtype zt = cg_in_dtype(k, mm->bzp);
    LLVMValueRef z = cg_load(k, k->in[mm->bzp], zt, mm->bzp_col ? j : cg_i64(k, 0));
    v = LLVMBuildSub(k->b, v, cg_convert(k, z, zt, mm->tacc), "");
  }
  return v;
}

/* Gemm's beta * C[row, j] (0 without C), in the accumulator type. */
static LLVMValueRef gemm_c(CgKernel *k, const Mm *mm, LLVMValueRef row, LLVMValueRef j) {
  if (mm->ic < 0 || mm->beta == 0.0) return cg_const(k, mm->tacc, 0);
  KnDtype ct = cg_in_dtype(k, mm->ic);
  LLVMValueRef idx = lw_add(k, lw_mulc(k, row, mm->c_rs), lw_mulc(k, j, mm->c_cs));
  LLVMValueRef c = cg_convert(k, cg_load(k, k->in[mm->ic], ct, idx), ct, mm->tacc);
  return mm->beta == 1.0 ? c : cg_mul(k, mm->tacc, c, cg_const(k, mm->tacc, mm->beta));
}

/* Element idx of float input i as an f32. */
static LLVMValueRef scale_at(CgKernel *k, int i, LLVMValueRef idx) {
  KnDtype t = cg_in_dtype(k, i);
  return cg_convert(k, cg_load(k, k->in[i], t, idx), t, KN_F32);
}

/* QLinearMatMul: saturate(round_half_even(acc * a_scale * b_scale / y_scale) + y_zero_point). */
static LLVMValueRef requantize(CgKernel *k, const Mm *mm, LLVMValueRef acc, LLVMValueRef row, LLVMValueRef j) {
  LLVMValueRef as = scale_at(k, mm->as, mm->as_row ? row : cg_i64(k, 0));
  LLVMValueRef bs = scale_at(k, mm->bs, mm->bs_col ? j : cg_i64(k, 0));
  LLVMValueRef ys = scale_at(k, mm->ys, cg_i64(k, 0));
  LLVMValueRef scale = LLVMBuildFDiv(k->b, LLVMBuildFMul(k->b, as, bs, ""), ys, "");
  LLVMValueRef v = LLVMBuildFMul(k->b, LLVMBuildSIToFP(k->b, acc, k->m->t_f64, ""),
                                 LLVMBuildFPExt(k->b, scale, k->m->t_f64, ""), "");
  v = cg_intrinsic(k, "llvm.roundeven", &v, 1);
  if (lw_has(k, mm->yzp)) {
    KnDtype zt = cg_in_dtype(k, mm->yzp);
    v = LLVMBuildFAdd(k->b, v, cg_convert(k, cg_load(k, k->in[mm->yzp], zt, cg_i64(k, 0)), zt, KN_F64), "");
  }
  bool sg = ir_dtype_is_signed(mm->to);
  double lo = sg ? -128.0 : 0.0, hi = sg ? 127.0 : 255.0;
  v = cg_max(k, KN_F64, v, LLVMConstReal(k->m->t_f64, lo));
  v = cg_min(k, KN_F64, v, LLVMConstReal(k->m->t_f64, hi));
  return cg_convert(k, v, KN_F64, mm->to);
}

/* Output row [j0, j1) as dot products over K. */
static void row_dot(CgKernel *k, const Mm *mm, LLVMValueRef aoff, LLVMValueRef boff, LLVMValueRef ooff,
                    LLVMValueRef row, LLVMValueRef j0, LLVMValueRef j1) {
  bool fl = ir_dtype_is_float(mm->tacc);
  LLVMTypeRef at = cg_compute_type(k->m, mm->tacc);
  LLVMValueRef acc = cg_var(k, at, NULL);
  CgLoop lj = cg_loop_begin(k, j0, j1);
  LLVMBuildStore(k->b, cg_const(k, mm->tacc, 0), acc);
  CgLoop lk = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, mm->K));
  LLVMValueRef av = load_a(k, mm, aoff, row, lk.i), bv = load_b(k, mm, boff, lk.i, lj.i);
  LLVMValueRef p = fl ? lw_reassoc(LLVMBuildFMul(k->b, av, bv, "")) : LLVMBuildMul(k->b, av, bv, "");
  LLVMValueRef cur = lw_loadv(k, at, acc);
  LLVMBuildStore(k->b, fl ? lw_reassoc(LLVMBuildFAdd(k->b, cur, p, "")) : LLVMBuildAdd(k->b, cur, p, ""), acc);
  cg_loop_end(k, &lk);
  LLVMValueRef r = lw_loadv(k, at, acc);
  if (mm->kind == MM_QLINEAR) r = requantize(k, mm, r, row, lj.i);
  else {
    if (fl && mm->alpha != 1.0) r = LLVMBuildFMul(k->b, r, cg_const(k, mm->tacc, mm->alpha), "");
    if (mm->ic >= 0) r = cg_add(k, mm->tacc, r, gemm_c(k, mm, row, lj.i));
    r = cg_convert(k, r, mm->tacc, mm->to);
  }
  cg_store(k, k->out[0], mm->to, lw_add(k, ooff, lj.i), r);
  cg_loop_end(k, &lj);
}

/* Output rows [row, row + nr) x columns [j0, j1) as i-k-j: out[i, j] += a[i, kk] * B[kk, j], the
 * inner loop unit-stride over j; the nr rows share each load of B. */
static void rows_axpy(CgKernel *k, const Mm *mm, LLVMValueRef aoff, LLVMValueRef boff, LLVMValueRef ooff,
                      LLVMValueRef row, int nr, LLVMValueRef j0, LLVMValueRef j1) {
  LLVMValueRef ao[4], oo[4], rw[4], a[4];
  for (int i = 0; i < nr; i++) {
    rw[i] = lw_addc(k, row, i), ao[i] = lw_addc(k, aoff, i * mm->a_rs), oo[i] = lw_addc(k, ooff, i * mm->N);
    CgLoop li = cg_loop_begin(k, j0, j1);
    cg_store(k, k->out[0], mm->to, lw_add(k, oo[i], li.i), gemm_c(k, mm, rw[i], li.i));
    lw_loop_end_nounroll(k, &li);
  }
  /* Plain f32/f64: the rows and B are disjoint; say so, so the loop needs no overlap checks. */
  bool tag = mm->to == mm->tacc && mm->tb == mm->tacc && ir_dtype_is_float(mm->tacc) && mm->bzp < 0;
  LwScopes sc = lw_scopes(k, nr + 1);
  CgLoop lk = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, mm->K));
  for (int i = 0; i < nr; i++) {
    a[i] = load_a(k, mm, ao[i], rw[i], lk.i);
    if (ir_dtype_is_float(mm->tacc) && mm->alpha != 1.0) a[i] = LLVMBuildFMul(k->b, a[i], cg_const(k, mm->tacc, mm->alpha), "");
  }
  CgLoop lj = cg_loop_begin(k, j0, j1);
  LLVMValueRef bv = load_b(k, mm, boff, lk.i, lj.i);
  if (tag) lw_in_scope(k, &sc, nr, bv);
  LLVMValueRef o[4];
  for (int i = 0; i < nr; i++) o[i] = lw_add(k, oo[i], lj.i);
  lw_fma_rows(k, mm->to, mm->tacc, a, bv, o, nr, tag ? &sc : NULL);
  lw_loop_end_nounroll(k, &lj);
  cg_loop_end(k, &lk);
}

/* Rows [row0, row0 + rb) of batch entry bt (fewer at the end of a matrix whose M is not a multiple). */
static void row_block(CgKernel *k, const Mm *mm, LLVMValueRef bt, LLVMValueRef row0, LLVMValueRef j0, LLVMValueRef j1) {
  LLVMValueRef aoff = cg_i64(k, 0), boff = cg_i64(k, 0);
  if (mm->a_offs) {
    aoff = lw_i64_at(k, lw_table(k, mm->a_offs, mm->batch), bt);
    boff = lw_i64_at(k, lw_table(k, mm->b_offs, mm->batch), bt);
  }
  LLVMValueRef rbase = lw_mulc(k, bt, mm->M);
  if (mm->rb == 1 || mm->M % mm->rb == 0) {
    LLVMValueRef ao = lw_add(k, aoff, lw_mulc(k, row0, mm->a_rs)), oo = lw_mulc(k, lw_add(k, rbase, row0), mm->N);
    if (mm->dot) row_dot(k, mm, ao, boff, oo, row0, j0, j1);
    else rows_axpy(k, mm, ao, boff, oo, row0, (int)mm->rb, j0, j1);
    return;
  }
  CgIf full = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntSLE, lw_addc(k, row0, mm->rb), cg_i64(k, mm->M), ""));
  rows_axpy(k, mm, lw_add(k, aoff, lw_mulc(k, row0, mm->a_rs)), boff, lw_mulc(k, lw_add(k, rbase, row0), mm->N), row0,
            (int)mm->rb, j0, j1);
  cg_if_else(k, &full);
  CgLoop lr = cg_loop_begin(k, row0, cg_i64(k, mm->M));
  rows_axpy(k, mm, lw_add(k, aoff, lw_mulc(k, lr.i, mm->a_rs)), boff, lw_mulc(k, lw_add(k, rbase, lr.i), mm->N), lr.i, 1,
            j0, j1);
  cg_loop_end(k, &lr);
  cg_if_end(k, &full);
}

/* One parallel iteration: row block rbk of the stacked batch, column block blk. */
static void mm_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Mm *mm = user;
  int64_t nrb = (mm->M + mm->rb - 1) / mm->rb;
  LLVMValueRef blk = lw_remc(k, i, mm->nblk), rbk = lw_divc(k, i, mm->nblk);
  LLVMValueRef bt = lw_divc(k, rbk, nrb), row0 = lw_mulc(k, lw_remc(k, rbk, nrb), mm->rb);
  LLVMValueRef j0 = lw_mulc(k, blk, mm->nb);
  LLVMValueRef j1 = lw_addc(k, j0, mm->nb);
  LLVMValueRef n = cg_i64(k, mm->N);
  j1 = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, j1, n, ""), j1, n);
  row_block(k, mm, bt, row0, j0, j1);
}

static KnStatus emit_mm(CgKernel *k, Mm *mm) {
  int64_t rows = mm->batch * mm->M;
  if (rows == 0 || mm->N == 0) return KN_OK;
  /* Few rows (a batch-1 Linear layer): split the columns so every thread gets work. */
  mm->nb = mm->N;
  if (rows < 8 && mm->N >= 128) mm->nb = ((mm->N + 7) / 8 + 15) / 16 * 16;
  if (mm->nb < 64 && mm->N >= 64) mm->nb = 64;
  mm->nblk = (mm->N + mm->nb - 1) / mm->nb;
  mm->rb = mm->dot || mm->M < 4 ? 1 : 4; /* rows per iteration, sharing the loads of B */
  int64_t nrb = (mm->M + mm->rb - 1) / mm->rb;
  int64_t work = mm->K * mm->nb * mm->rb;
  int64_t grain = work >= 16384 ? 1 : 16384 / (work ? work : 1);
  cg_parallel_for(k, mm->batch * nrb * mm->nblk, grain, mm_body, mm);
  return KN_OK;
}

/* The stride between consecutive batch entries of offs, or -1 when they are not evenly spaced. */
static int64_t even_stride(const int64_t *offs, int64_t batch) {
  if (!offs || batch < 2) return 0;
  int64_t st = offs[1] - offs[0];
  for (int64_t b = 0; b < batch; b++)
    if (offs[b] != offs[0] + b * st) return -1;
  return offs[0] == 0 ? st : -1;
}

/* Input/output `index` of the kernel as a GEMM operand (first element 0). */
static CgGemmOperand operand(CgGemmSrc src, int index, int64_t rs, int64_t cs, int64_t batch_stride) {
  return (CgGemmOperand){.src = src, .index = index, .rs = rs, .cs = cs, .batch_stride = batch_stride};
}

/* Plain f32 MatMul/Gemm through the shared microkernels (cg_gemm.c) when its layout allows: B
 * unit-stride along N, batches evenly spaced, Gemm's C a full matrix or a row of N. */
static bool try_shared_gemm(CgKernel *k, const Mm *mm) {
  int64_t sa = even_stride(mm->a_offs, mm->batch), sb = even_stride(mm->b_offs, mm->batch);
  if (k->m->opt_level < 1 || mm->ta != KN_F32 || cg_out_dtype(k, 0) != KN_F32 || mm->b_ns != 1 || sa < 0 || sb < 0) return false;
  CgGemm g = {.batch = mm->batch, .M = mm->M, .N = mm->N, .K = mm->K, .alpha = (float)mm->alpha, .beta = (float)mm->beta,
              .a = operand(CG_GEMM_IN, mm->ia, mm->a_rs, mm->a_ks, sa),
              .b = operand(CG_GEMM_IN, mm->ib, mm->b_ks, 1, sb),
              .c = operand(CG_GEMM_OUT, 0, mm->N, 1, mm->M * mm->N)};
  if (mm->ic >= 0 && mm->beta != 0.0) {
    if (mm->c_cs != 1 || cg_in_dtype(k, mm->ic) != KN_F32) return false;
    g.resid = operand(CG_GEMM_IN, mm->ic, mm->c_rs, 1, 0);
  }
  if (!cg_gemm_supported(k->m, &g)) return false;
  cg_emit_gemm(k, &g);
  return true;
}

static KnStatus lower_float(CgKernel *k, Mm *mm) {
  mm->kind = MM_FLOAT;
  mm->ta = mm->tb = mm->to = cg_in_dtype(k, 0);
  if (!ir_dtype_is_float(mm->ta) && mm->ta != KN_I32 && mm->ta != KN_I64 && mm->ta != KN_U32 && mm->ta != KN_U64)
    return cg_unsupported(k, "dtype");
  mm->tacc = mm->ta;
  if (mm->batch * mm->M > 0 && mm->N > 0 && mm->K > 0 && try_shared_gemm(k, mm)) return KN_OK;
  if (!ir_dtype_is_float(mm->ta) && (mm->alpha != 1.0 || mm->beta != (double)(int64_t)mm->beta))
    return cg_unsupported(k, "integer Gemm with alpha != 1 or a fractional beta");
  /* Half types accumulate in a register (f32), not through the half-precision output. */
  mm->dot = mm->ta == KN_F16 || mm->ta == KN_BF16 || (mm->b_ns != 1 && mm->N > 1);
  if (mm->ta == KN_F16 || mm->ta == KN_BF16) mm->tacc = KN_F32;
  return emit_mm(k, mm);
}

KnStatus cg_lower_gemm(CgKernel *k) {
  Mm mm = {.ia = 0, .ib = 1, .ic = -1, .alpha = 1, .beta = 1, .azp = -1, .bzp = -1, .as = -1, .bs = -1, .ys = -1, .yzp = -1};
  KnStatus st = setup_gemm(k, &mm);
  return st ? st : lower_float(k, &mm);
}

static bool is_8bit(KnDtype t) { return t == KN_U8 || t == KN_I8; }

KnStatus cg_lower_matmul(CgKernel *k) {
  Mm mm = {.ia = 0, .ib = 1, .ic = -1, .alpha = 1, .beta = 1, .azp = -1, .bzp = -1, .as = -1, .bs = -1, .ys = -1, .yzp = -1};
  KnOp op = k->node->op;
  if (op == KN_OP_QLinearMatMul) mm.ib = 3;
  KnStatus st = setup_matmul(k, &mm);
  if (st == KN_OK && op == KN_OP_MatMul) st = lower_float(k, &mm);
  else if (st == KN_OK) {
    mm.ta = cg_in_dtype(k, mm.ia), mm.tb = cg_in_dtype(k, mm.ib), mm.to = cg_out_dtype(k, 0);
    mm.tacc = KN_I32;
    if (!is_8bit(mm.ta) || !is_8bit(mm.tb)) st = cg_unsupported(k, "A and B must be uint8 or int8");
    if (op == KN_OP_MatMulInteger) {
      mm.kind = MM_INT, mm.azp = 2, mm.bzp = 3;
    } else {
      mm.kind = MM_QLINEAR, mm.as = 1, mm.azp = 2, mm.bs = 4, mm.bzp = 5, mm.ys = 6, mm.yzp = 7;
      mm.dot = true;
      bool fs = ir_dtype_is_float(cg_in_dtype(k, 1)) && ir_dtype_is_float(cg_in_dtype(k, 4)) && ir_dtype_is_float(cg_in_dtype(k, 6));
      if (st == KN_OK && (!is_8bit(mm.to) || !fs))
        st = cg_unsupported(k, "output must be uint8 or int8 with float scales");
      if (st == KN_OK) st = per_axis(k, mm.as, mm.M, &mm.as_row);
      if (st == KN_OK) st = per_axis(k, mm.bs, mm.N, &mm.bs_col);
    }
    if (st == KN_OK) st = per_axis(k, mm.azp, mm.M, &mm.azp_row);
    if (st == KN_OK) st = per_axis(k, mm.bzp, mm.N, &mm.bzp_col);
    if (st == KN_OK) st = emit_mm(k, &mm);
  }
  free(mm.a_offs);
  free(mm.b_offs);
  return st;
}

/* kiln.FusedGemm (passes/fuse_linear.c): A [..., K] x W [K, N] (+ bias [N]) (+ R) then the
 * activation, all in the shared GEMM's epilogue. */
KnStatus cg_lower_fused_gemm(CgKernel *k) {
  const KnShape *a = cg_in_shape(k, 0), *w = cg_in_shape(k, 1), *y = cg_out_shape(k, 0);
  int64_t panel = ir_attr_int(k->node, "packed", 0);
  int64_t K = w->dims[panel ? 1 : 0].value, N = panel ? ir_attr_int(k->node, "n", 0) : w->dims[1].value;
  int64_t M = cg_numel(a) / (K ? K : 1);
  if (cg_numel(y) == 0) return KN_OK;
  CgGemm g = {.batch = 1, .M = M, .N = N, .K = K, .alpha = 1, .beta = 1,
              .a = operand(CG_GEMM_IN, 0, K, 1, 0), .b = operand(CG_GEMM_IN, 1, N, 1, 0), .c = operand(CG_GEMM_OUT, 0, N, 1, 0)};
  if (panel) g.b.rs = panel, g.b.panel = panel, g.b.panel_stride = K * panel;
  if (lw_has(k, 2)) g.bias_kind = CG_BIAS_COL, g.bias = operand(CG_GEMM_IN, 2, 1, 1, 0);
  if (lw_has(k, 3)) {
    if (cg_numel(cg_in_shape(k, 3)) != cg_numel(y)) return cg_unsupported(k, "residual of another shape");
    g.resid = operand(CG_GEMM_IN, 3, N, 1, 0);
  }
  if (!cg_gemm_read_activation(k->node, &g.act, &g.lo, &g.hi)) return cg_unsupported(k, "activation");
  if (K == 0) return cg_unsupported(k, "K = 0");
  if (!cg_gemm_supported(k->m, &g)) return cg_unsupported(k, "weights packed in panels narrower than a vector");
  cg_emit_gemm(k, &g);
  return KN_OK;
}
