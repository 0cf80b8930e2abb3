/* lower_linalg.c - Einsum (any equation: repeated labels/diagonals, ellipsis broadcasting,
 * implicit output, summed labels) as a generic nested-loop contraction, and Det by LU
 * decomposition with partial pivoting in double precision. */
#include <ctype.h>
#include <math.h>

#include "codegen/lower_conv.h"

#define ES_MAX_IN 8
#define ES_MAX_LABELS 64   /* 52 letters + up to 12 ellipsis dims */

typedef struct Einsum {
  int n_in;
  int in_index[ES_MAX_IN];
  KnDtype t, tacc;
  int n_labels;                          /* loop order: output labels, then summed ones */
  int n_out;                             /* the first n_out labels are the output's */
  int64_t size[ES_MAX_LABELS];
  int64_t stride[ES_MAX_IN][ES_MAX_LABELS]; /* per operand, summed over repeats; 0 if absent */
  int64_t out_stride[ES_MAX_LABELS];
} Einsum;

/* What the equation's input terms say: each operand's labels, and each label's size and uses. */
typedef struct EsTerms {
  int ids[ES_MAX_IN][ES_MAX_LABELS], nids[ES_MAX_IN], count[ES_MAX_LABELS], max_ell;
  int64_t lsize[ES_MAX_LABELS];
} EsTerms;

/* Label id of a letter: a-z 0..25, A-Z 26..51; ellipsis dim j is 52 + j. */
static int letter_id(char c) { return islower((unsigned char)c) ? c - 'a' : c - 'A' + 26; }

/* Parses one term into label ids (ellipsis expanded to `ell` ids, right-aligned in max_ell). */
static int parse_term(const char *s, size_t len, int ell, int max_ell, int *ids, int max_ids) {
  int n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '.') {
      if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.') return -1;
      for (int j = 0; j < ell && n < max_ids; j++) ids[n++] = 52 + (max_ell - ell) + j;
      i += 2;
    } else if (isalpha((unsigned char)s[i]) && n < max_ids) ids[n++] = letter_id(s[i]);
    else return -1;
  }
  return n;
}

static int count_letters(const char *s, size_t len, bool *has_ell) {
  int n = 0;
  *has_ell = false;
  for (size_t i = 0; i < len; i++) {
    if (isalpha((unsigned char)s[i])) n++;
    if (s[i] == '.') *has_ell = true;
  }
  return n;
}

/* Reads the input terms of eq (up to the arrow, lhs_len chars) against the operand shapes. */
static KnStatus einsum_terms(CgKernel *k, const char *eq, size_t lhs_len, const Einsum *es, EsTerms *tm) {
  const char *starts[ES_MAX_IN];
  size_t lens[ES_MAX_IN];
  int nt = 0, ells[ES_MAX_IN];
  for (size_t p = 0; p <= lhs_len && nt < ES_MAX_IN;) {
    size_t q = p;
    while (q < lhs_len && eq[q] != ',') q++;
    starts[nt] = eq + p, lens[nt++] = q - p;
    p = q + 1;
  }
  if (nt != es->n_in) return cg_unsupported(k, "equation terms do not match the inputs");
  tm->max_ell = 0;
  for (int i = 0; i < nt; i++) {
    bool he;
    int letters = count_letters(starts[i], lens[i], &he);
    ells[i] = cg_in_shape(k, es->in_index[i])->rank - letters;
    if (ells[i] < 0 || (!he && ells[i] != 0) || ells[i] > 12) return cg_unsupported(k, "equation term does not match its input's rank");
    if (ells[i] > tm->max_ell) tm->max_ell = ells[i];
  }
  for (int l = 0; l < ES_MAX_LABELS; l++) tm->lsize[l] = -1, tm->count[l] = 0;
  for (int i = 0; i < nt; i++) {
    tm->nids[i] = parse_term(starts[i], lens[i], ells[i], tm->max_ell, tm->ids[i], ES_MAX_LABELS);
    const KnShape *s = cg_in_shape(k, es->in_index[i]);
    if (tm->nids[i] != s->rank) return cg_unsupported(k, "malformed equation term");
    for (int d = 0; d < tm->nids[i]; d++) {
      int64_t v = s->dims[d].value;
      int l = tm->ids[i][d];
      tm->count[l]++;
      if (tm->lsize[l] < 0 || tm->lsize[l] == 1) tm->lsize[l] = v;
      else if (v != 1 && v != tm->lsize[l]) return cg_unsupported(k, "label sizes differ");
    }
  }
  return KN_OK;
}

/* Output labels: explicit after the arrow, or the ellipsis then the letters used once, in
 * alphabetical (ASCII) order. Returns how many, or -1 on a malformed term. */
static int einsum_outputs(const char *arrow, const EsTerms *tm, int *out_ids) {
  int n_out = 0;
  if (arrow) return parse_term(arrow + 2, strlen(arrow + 2), tm->max_ell, tm->max_ell, out_ids, ES_MAX_LABELS);
  for (int j = 0; j < tm->max_ell; j++) out_ids[n_out++] = 52 + j;
  for (int c = 'A'; c <= 'z'; c++)
    if (isalpha(c) && tm->count[letter_id((char)c)] == 1) out_ids[n_out++] = letter_id((char)c);
  return n_out;
}

/* Fills the loop table from the equation (spaces removed) and the operand shapes. */
static KnStatus einsum_parse(CgKernel *k, const char *eq, Einsum *es) {
  const char *arrow = strstr(eq, "->");
  EsTerms tm;
  KnStatus st = einsum_terms(k, eq, arrow ? (size_t)(arrow - eq) : strlen(eq), es, &tm);
  if (st) return st;
  int out_ids[ES_MAX_LABELS], order[ES_MAX_LABELS], n = 0;
  int n_out = einsum_outputs(arrow, &tm, out_ids);
  const KnShape *ys = cg_out_shape(k, 0);
  if (n_out < 0 || ys->rank != n_out) return cg_unsupported(k, "output term does not match the output");
  bool used[ES_MAX_LABELS] = {0};
  for (int j = 0; j < n_out; j++) {
    if (tm.lsize[out_ids[j]] < 0 || used[out_ids[j]]) return cg_unsupported(k, "output label not in the inputs or repeated");
    order[n++] = out_ids[j], used[out_ids[j]] = true;
  }
  for (int l = 0; l < ES_MAX_LABELS; l++)
    if (tm.lsize[l] >= 0 && !used[l]) order[n++] = l;
  es->n_labels = n, es->n_out = n_out;
  int64_t ost = 1;
  for (int j = n_out - 1; j >= 0; j--) es->out_stride[j] = ost, ost *= ys->dims[j].value;
  for (int j = 0; j < n; j++) es->size[j] = tm.lsize[order[j]];
  for (int i = 0; i < es->n_in; i++) { /* a label repeated in one operand walks its diagonal */
    const KnShape *s = cg_in_shape(k, es->in_index[i]);
    int64_t sst[ES_MAX_LABELS];
    cg_strides(s, sst);
    for (int j = 0; j < n; j++) {
      es->stride[i][j] = 0;
      for (int d = 0; d < tm.nids[i]; d++)
        if (tm.ids[i][d] == order[j] && s->dims[d].value != 1) es->stride[i][j] += sst[d];
    }
  }
  return KN_OK;
}

/* Loops over labels [j, n_labels): output labels position the store, the rest accumulate. */
static void einsum_loops(CgKernel *k, const Einsum *es, int j, LLVMValueRef *offs, LLVMValueRef oo, LLVMValueRef acc) {
  LLVMTypeRef at = cg_compute_type(k->m, es->tacc);
  if (j == es->n_out) LLVMBuildStore(k->b, cg_const(k, es->tacc, 0), acc);
  if (j == es->n_labels) {
    LLVMValueRef p = NULL;
    for (int i = 0; i < es->n_in; i++) {
      KnDtype ti = cg_in_dtype(k, es->in_index[i]);
      LLVMValueRef v = cg_convert(k, cg_load(k, k->in[es->in_index[i]], ti, offs[i]), ti, es->tacc);
      p = p ? cg_mul(k, es->tacc, p, v) : v;
    }
    LLVMValueRef s = cg_add(k, es->tacc, lw_loadv(k, at, acc), p);
    LLVMBuildStore(k->b, ir_dtype_is_float(es->tacc) ? lw_reassoc(s) : s, acc);
  } else {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, es->size[j]));
    LLVMValueRef next[ES_MAX_IN];
    for (int i = 0; i < es->n_in; i++) next[i] = lw_add(k, offs[i], lw_mulc(k, l.i, es->stride[i][j]));
    LLVMValueRef o2 = j < es->n_out ? lw_add(k, oo, lw_mulc(k, l.i, es->out_stride[j])) : oo;
    einsum_loops(k, es, j + 1, next, o2, acc);
    cg_loop_end(k, &l);
  }
  if (j == es->n_out) cg_store(k, k->out[0], es->t, oo, cg_convert(k, lw_loadv(k, at, acc), es->tacc, es->t));
}

static void einsum_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Einsum *es = user;
  LLVMValueRef acc = cg_var(k, cg_compute_type(k->m, es->tacc), NULL);
  LLVMValueRef offs[ES_MAX_IN];
  if (es->n_out == 0) {
    for (int j = 0; j < es->n_in; j++) offs[j] = cg_i64(k, 0);
    einsum_loops(k, es, 0, offs, cg_i64(k, 0), acc);
    return;
  }
  for (int j = 0; j < es->n_in; j++) offs[j] = lw_mulc(k, i, es->stride[j][0]);
  einsum_loops(k, es, 1, offs, lw_mulc(k, i, es->out_stride[0]), acc);
}

KnStatus cg_lower_einsum(CgKernel *k) {
  const KnNode *n = k->node;
  Einsum es = {0};
  for (int i = 0; i < n->n_inputs; i++) {
    if (!n->inputs[i]) continue;
    if (es.n_in == ES_MAX_IN) return cg_unsupported(k, "more than 8 inputs");
    es.in_index[es.n_in++] = i;
  }
  es.t = cg_out_dtype(k, 0);
  if (!cg_storage_type(k->m, es.t) || es.t == KN_BOOL) return cg_unsupported(k, "dtype");
  es.tacc = es.t == KN_F16 || es.t == KN_BF16 ? KN_F32 : es.t;
  const char *raw = ir_attr_string(n, "equation", NULL);
  if (!raw) return cg_unsupported(k, "missing equation");
  char eq[512];
  size_t m = 0;
  for (const char *p = raw; *p && m + 1 < sizeof eq; p++)
    if (!isspace((unsigned char)*p)) eq[m++] = *p;
  eq[m] = 0;
  KnStatus st = einsum_parse(k, eq, &es);
  if (st) return st;
  if (cg_numel(cg_out_shape(k, 0)) == 0) return KN_OK;
  int64_t outer = es.n_out ? es.size[0] : 1;
  int64_t work = 1;
  for (int j = 1; j < es.n_labels; j++) work *= es.size[j];
  cg_parallel_for(k, outer, work >= 16384 ? 1 : 16384 / (work ? work : 1), einsum_body, &es);
  return KN_OK;
}

/* ---- Det ---------------------------------------------------------------------------------- */
typedef struct Det {
  KnDtype t;
  int64_t n;
} Det;

static LLVMValueRef at2(CgKernel *k, LLVMValueRef a, int64_t n, LLVMValueRef r, LLVMValueRef c) {
  LLVMValueRef idx = lw_madc(k, r, n, c);
  return LLVMBuildInBoundsGEP2(k->b, k->m->t_f64, a, &idx, 1, "");
}

/* Swaps rows p and col when they differ (negating the determinant). */
static void det_pivot(CgKernel *k, LLVMValueRef a, int64_t n, LLVMValueRef col, LLVMValueRef det) {
  LLVMTypeRef f = k->m->t_f64;
  LLVMValueRef piv = cg_var(k, k->m->t_i64, NULL), best = cg_var(k, f, NULL);
  LLVMBuildStore(k->b, col, piv);
  LLVMValueRef d0 = lw_loadv(k, f, at2(k, a, n, col, col));
  LLVMBuildStore(k->b, cg_intrinsic(k, "llvm.fabs", &d0, 1), best);
  CgLoop lr = cg_loop_begin(k, lw_addc(k, col, 1), cg_i64(k, n));
  LLVMValueRef v = lw_loadv(k, f, at2(k, a, n, lr.i, col));
  v = cg_intrinsic(k, "llvm.fabs", &v, 1);
  LLVMValueRef gt = LLVMBuildFCmp(k->b, LLVMRealOGT, v, lw_loadv(k, f, best), "");
  LLVMBuildStore(k->b, cg_select(k, gt, v, lw_loadv(k, f, best)), best);
  LLVMBuildStore(k->b, cg_select(k, gt, lr.i, lw_loadv(k, k->m->t_i64, piv)), piv);
  cg_loop_end(k, &lr);
  LLVMValueRef p = lw_loadv(k, k->m->t_i64, piv);
  CgIf sw = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntNE, p, col, ""));
  CgLoop lj = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  LLVMValueRef pa = at2(k, a, n, p, lj.i), pb = at2(k, a, n, col, lj.i);
  LLVMValueRef va = lw_loadv(k, f, pa), vb = lw_loadv(k, f, pb);
  LLVMBuildStore(k->b, vb, pa);
  LLVMBuildStore(k->b, va, pb);
  cg_loop_end(k, &lj);
  LLVMBuildStore(k->b, LLVMBuildFNeg(k->b, lw_loadv(k, f, det), ""), det);
  cg_if_end(k, &sw);
}

/* Eliminates below the pivot of column col (skipped for a zero pivot: det is 0 already). */
static void det_eliminate(CgKernel *k, LLVMValueRef a, int64_t n, LLVMValueRef col, LLVMValueRef pv) {
  LLVMTypeRef f = k->m->t_f64;
  CgIf nz = cg_if_begin(k, LLVMBuildFCmp(k->b, LLVMRealUNE, pv, LLVMConstReal(f, 0.0), ""));
  CgLoop lr = cg_loop_begin(k, lw_addc(k, col, 1), cg_i64(k, n));
  LLVMValueRef fac = LLVMBuildFDiv(k->b, lw_loadv(k, f, at2(k, a, n, lr.i, col)), pv, "");
  CgLoop lj = cg_loop_begin(k, lw_addc(k, col, 1), cg_i64(k, n));
  LLVMValueRef dst = at2(k, a, n, lr.i, lj.i);
  LLVMValueRef v = LLVMBuildFSub(k->b, lw_loadv(k, f, dst), LLVMBuildFMul(k->b, fac, lw_loadv(k, f, at2(k, a, n, col, lj.i)), ""), "");
  LLVMBuildStore(k->b, v, dst);
  cg_loop_end(k, &lj);
  cg_loop_end(k, &lr);
  cg_if_end(k, &nz);
}

static void det_body(CgKernel *k, LLVMValueRef i, void *user) {
  const Det *dt = user;
  int64_t n = dt->n;
  LLVMTypeRef f = k->m->t_f64;
  LLVMValueRef a = cg_var(k, LLVMArrayType2(f, (uint64_t)(n * n > 0 ? n * n : 1)), NULL);
  LLVMValueRef det = cg_var(k, f, NULL);
  LLVMBuildStore(k->b, LLVMConstReal(f, 1.0), det);
  LLVMValueRef base = lw_mulc(k, i, n * n);
  CgLoop lc = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n * n));
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[0], dt->t, lw_add(k, base, lc.i)), dt->t, KN_F64);
  LLVMBuildStore(k->b, v, LLVMBuildInBoundsGEP2(k->b, f, a, &lc.i, 1, ""));
  cg_loop_end(k, &lc);
  CgLoop col = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  det_pivot(k, a, n, col.i, det);
  LLVMValueRef pv = lw_loadv(k, f, at2(k, a, n, col.i, col.i));
  LLVMBuildStore(k->b, LLVMBuildFMul(k->b, lw_loadv(k, f, det), pv, ""), det);
  det_eliminate(k, a, n, col.i, pv);
  cg_loop_end(k, &col);
  cg_store(k, k->out[0], dt->t, i, cg_convert(k, lw_loadv(k, f, det), KN_F64, dt->t));
}

KnStatus cg_lower_det(CgKernel *k) {
  const KnShape *x = cg_in_shape(k, 0);
  Det dt = {.t = cg_in_dtype(k, 0)};
  if (!ir_dtype_is_float(dt.t)) return cg_unsupported(k, "dtype");
  if (x->rank < 2 || x->dims[x->rank - 1].value != x->dims[x->rank - 2].value)
    return cg_unsupported(k, "input must be [..., n, n]");
  dt.n = x->dims[x->rank - 1].value;
  if (dt.n > 256) return cg_unsupported(k, "matrices larger than 256x256");
  int64_t batch = cg_numel(x) / (dt.n ? dt.n * dt.n : 1);
  if (dt.n == 0) batch = cg_numel(cg_out_shape(k, 0));
  if (batch == 0) return KN_OK;
  cg_parallel_for(k, batch, 1, det_body, &dt);
  return KN_OK;
}
