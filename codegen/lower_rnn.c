/* lower_rnn.c - the recurrent ops LSTM, GRU and RNN: every (direction, batch row) runs its whole
 * sequence independently, so those pairs are the parallel loop. -O0 and non-f32 keep each step as
 * plain dots; f32 at -O1+ projects the inputs of all steps up front and streams R^T per step. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codegen/lower_seq.h"

typedef enum ActKind {
  ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_AFFINE, ACT_LEAKY_RELU, ACT_THRESHOLDED_RELU,
  ACT_SCALED_TANH, ACT_HARD_SIGMOID, ACT_ELU, ACT_SOFTSIGN, ACT_SOFTPLUS,
} ActKind;

typedef struct Act {
  ActKind kind;
  double alpha, beta;
} Act;

/* Everything about the node that is known at compile time. */
typedef struct Rnn {
  KnOp op;
  KnDtype t;               /* X's dtype */
  int64_t S, B, I, H, G, dirs;
  bool reverse_only;       /* direction = reverse */
  bool has_clip, input_forget, linear_before_reset;
  double clip;
  Act act[2][3];           /* per direction: f, g, h (as many as the op uses) */
  int64_t x_ts, x_bs;      /* X strides of a step and a batch row */
  int64_t y_ts, y_ds, y_bs; /* Y strides */
  int64_t s_ds, s_bs;      /* Y_h / Y_c / initial_h / initial_c strides */
  int in_seq, in_h0, in_c0, in_p; /* input positions (-1: the op has none) */
  int d;                   /* the direction the current body runs */
  bool split_rows;         /* one sequence only: split each step's gate rows across threads */
  bool fast;               /* the f32 fast path below (input projection up front) */
} Rnn;

typedef struct ActName {
  const char *name;
  ActKind kind;
  int n_params;            /* 0: none, 1: alpha, 2: alpha and beta */
  double alpha, beta;      /* defaults */
} ActName;

static const ActName act_names[] = {
  {"Sigmoid", ACT_SIGMOID, 0, 0, 0},        {"Tanh", ACT_TANH, 0, 0, 0},
  {"Relu", ACT_RELU, 0, 0, 0},              {"Affine", ACT_AFFINE, 2, 1.0, 0.0},
  {"LeakyRelu", ACT_LEAKY_RELU, 1, 0.01, 0}, {"ThresholdedRelu", ACT_THRESHOLDED_RELU, 1, 1.0, 0},
  {"ScaledTanh", ACT_SCALED_TANH, 2, 1.0, 1.0}, {"HardSigmoid", ACT_HARD_SIGMOID, 2, 0.2, 0.5},
  {"Elu", ACT_ELU, 1, 1.0, 0},              {"Softsign", ACT_SOFTSIGN, 0, 0, 0},
  {"Softplus", ACT_SOFTPLUS, 0, 0, 0},
};

static int n_acts(KnOp op) { return op == KN_OP_LSTM ? 3 : op == KN_OP_GRU ? 2 : 1; }

/* Reads activations, activation_alpha and activation_beta; alphas and betas are taken in order
 * by the activations that use them (ONNX Runtime's reading), defaults for the rest. */
static KnStatus parse_acts(CgKernel *k, Rnn *r) {
  const KnNode *n = k->node;
  int na = n_acts(r->op);
  const char *dflt[3] = {r->op == KN_OP_RNN ? "Tanh" : "Sigmoid", "Tanh", "Tanh"};
  const KnAttr *names = ir_attr(n, "activations");
  int64_t cnt = names && names->kind == KN_ATTR_STRINGS ? names->n : 0;
  if (cnt && cnt != na && cnt != na * r->dirs) return cg_unsupported(k, "activations has the wrong count");
  int64_t nal, nbe, ia = 0, ib = 0;
  const float *al = ir_attr_floats(n, "activation_alpha", &nal);
  const float *be = ir_attr_floats(n, "activation_beta", &nbe);
  for (int d = 0; d < r->dirs; d++) {
    for (int j = 0; j < na; j++) {
      const char *s = cnt ? names->strings[(cnt == na ? 0 : d * na) + j].data : dflt[j];
      const ActName *an = NULL;
      for (size_t q = 0; q < sizeof act_names / sizeof *act_names; q++)
        if (!strcasecmp(s, act_names[q].name)) an = &act_names[q];
      if (!an) return cg_unsupported(k, "unknown activation function");
      Act a = {an->kind, an->alpha, an->beta};
      bool fresh = cnt != na || d == 0; /* a shared list is read once */
      if (an->n_params >= 1 && fresh && ia < nal) a.alpha = al[ia++];
      if (an->n_params >= 2 && fresh && ib < nbe) a.beta = be[ib++];
      if (!fresh) a = r->act[0][j];
      r->act[d][j] = a;
    }
  }
  return KN_OK;
}

/* a(x), x first clipped to [-clip, clip] when the node has clip and this is a gate input. */
static LLVMValueRef act_clip(CgKernel *k, const Rnn *r, const Act *a, LLVMValueRef x, bool clip) {
  LLVMBuilderRef b = k->b;
  if (r->has_clip && clip) {
    LLVMValueRef lo[2] = {x, seq_fc(x, -r->clip)};
    x = cg_intrinsic(k, "llvm.maxnum", lo, 2);
    LLVMValueRef hi[2] = {x, seq_fc(x, r->clip)};
    x = cg_intrinsic(k, "llvm.minnum", hi, 2);
  }
  LLVMValueRef zero = seq_fc(x, 0), one = seq_fc(x, 1), al = seq_fc(x, a->alpha), be = seq_fc(x, a->beta);
  switch (a->kind) {
  case ACT_SIGMOID: {
    LLVMValueRef e = LLVMBuildFNeg(b, x, "");
    e = cg_intrinsic(k, "llvm.exp", &e, 1);
    return LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, e, ""), "");
  }
  case ACT_TANH: return cg_libm(k, "tanh", x);
  case ACT_RELU: return cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), zero, x);
  case ACT_AFFINE: return LLVMBuildFAdd(b, LLVMBuildFMul(b, al, x, ""), be, "");
  case ACT_LEAKY_RELU:
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), LLVMBuildFMul(b, al, x, ""), x);
  case ACT_THRESHOLDED_RELU: return cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, x, al, ""), x, zero);
  case ACT_SCALED_TANH: return LLVMBuildFMul(b, al, cg_libm(k, "tanh", LLVMBuildFMul(b, be, x, "")), "");
  case ACT_HARD_SIGMOID: {
    LLVMValueRef v = LLVMBuildFAdd(b, LLVMBuildFMul(b, al, x, ""), be, "");
    LLVMValueRef lo[2] = {v, zero};
    v = cg_intrinsic(k, "llvm.maxnum", lo, 2);
    LLVMValueRef hi[2] = {v, one};
    return cg_intrinsic(k, "llvm.minnum", hi, 2);
  }
  case ACT_ELU: {
    LLVMValueRef e = cg_intrinsic(k, "llvm.exp", &x, 1);
    LLVMValueRef neg = LLVMBuildFMul(b, al, LLVMBuildFSub(b, e, one, ""), "");
    return cg_select(k, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), neg, x);
  }
  case ACT_SOFTSIGN: {
    LLVMValueRef ax = cg_intrinsic(k, "llvm.fabs", &x, 1);
    return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, one, ax, ""), "");
  }
  case ACT_SOFTPLUS: {
    LLVMValueRef e = cg_intrinsic(k, "llvm.exp", &x, 1);
    e = LLVMBuildFAdd(b, e, one, "");
    return cg_intrinsic(k, "llvm.log", &e, 1);
  }
  }
  return x;
}

static LLVMValueRef act_apply(CgKernel *k, const Rnn *r, const Act *a, LLVMValueRef x) {
  return act_clip(k, r, a, x, true);
}

/* The per-iteration state of a body: work buffers and the current batch row. */
typedef struct Step {
  LLVMValueRef h, c, gates, rh; /* work buffers (work dtype) */
  LLVMValueRef b;               /* batch row (i64) */
  LLVMValueRef xo;              /* offset of X[t, b, 0] */
  LLVMValueRef xw, xwt, bias, rt; /* fast path: X W^T + biases for all steps, its row for this
                                     step, the folded biases, R^T panels */
  KnDtype wt;
  LLVMTypeRef ft;
} Step;

static LLVMValueRef ld(CgKernel *k, const Rnn *r, int input, LLVMValueRef idx, LLVMTypeRef ft) {
  LLVMValueRef v = cg_load(k, k->in[input], r->t, idx);
  return LLVMTypeOf(v) == ft ? v : LLVMBuildFPCast(k->b, v, ft, "");
}

/* x_t . W[d, row] + h . R[d, row] (+ Wb[row] + Rb[row]); hbuf NULL skips the recurrent part,
 * with_wb/with_rb pick the biases. */
static LLVMValueRef gate_pre(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef row,
                             LLVMValueRef hbuf, bool with_x, bool with_wb, bool with_rb) {
  LLVMBuilderRef b = k->b;
  int64_t gh = r->G * r->H;
  LLVMValueRef grow = LLVMBuildAdd(b, cg_i64(k, r->d * gh), row, "");
  LLVMValueRef acc = LLVMConstReal(s->ft, 0.0);
  if (with_x)
    acc = seq_dot(k, s->ft, k->in[0], r->t, s->xo, k->in[1], r->t,
                  LLVMBuildMul(b, grow, cg_i64(k, r->I), ""), r->I);
  if (hbuf)
    acc = LLVMBuildFAdd(b, acc, seq_dot(k, s->ft, hbuf, s->wt, cg_i64(k, 0), k->in[2], r->t,
                                        LLVMBuildMul(b, grow, cg_i64(k, r->H), ""), r->H), "");
  if (k->node->n_inputs > 3 && k->in[3]) {
    LLVMValueRef bo = LLVMBuildAdd(b, cg_i64(k, r->d * 2 * gh), row, "");
    if (with_wb) acc = LLVMBuildFAdd(b, acc, ld(k, r, 3, bo, s->ft), "");
    if (with_rb) acc = LLVMBuildFAdd(b, acc, ld(k, r, 3, LLVMBuildAdd(b, bo, cg_i64(k, gh), ""), s->ft), "");
  }
  return acc;
}

static LLVMValueRef wload(CgKernel *k, const Step *s, LLVMValueRef buf, LLVMValueRef i) {
  return cg_load(k, buf, s->wt, i);
}

static LLVMValueRef peephole(CgKernel *k, const Rnn *r, const Step *s, int which, LLVMValueRef j,
                             LLVMValueRef c, LLVMValueRef pre) {
  if (r->in_p < 0 || !k->in[r->in_p]) return pre;
  LLVMValueRef idx = LLVMBuildAdd(k->b, cg_i64(k, r->d * 3 * r->H + which * r->H), j, "");
  return LLVMBuildFAdd(k->b, pre, LLVMBuildFMul(k->b, ld(k, r, r->in_p, idx, s->ft), c, ""), "");
}

/* ---- gate rows, inline or split across threads ------------------------------------------- */
typedef void (*RowFn)(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef row);

typedef struct RowJob {
  const Rnn *r;
  RowFn fn;
  KnDtype wt;
  LLVMTypeRef ft;
} RowJob;

enum { EXTRA_H, EXTRA_C, EXTRA_GATES, EXTRA_RH, EXTRA_XO, N_EXTRA };

/* A parallel body sees the step's work buffers and X offset as extra pointers (it is another
 * function); this rebuilds the Step from them. */
typedef struct RowBody {
  const RowJob *job;
} RowBody;

static void row_body(CgKernel *k, LLVMValueRef i, void *user) {
  const RowJob *job = ((const RowBody *)user)->job;
  Step ss = {.h = k->extra[EXTRA_H], .c = k->extra[EXTRA_C], .gates = k->extra[EXTRA_GATES],
             .rh = k->extra[EXTRA_RH], .xo = LLVMBuildPtrToInt(k->b, k->extra[EXTRA_XO], k->m->t_i64, ""),
             .wt = job->wt, .ft = job->ft};
  job->fn(k, job->r, &ss, i);
}

static void par_rows(CgKernel *k, const Step *s, int64_t n, int64_t grain, const RowJob *job) {
  LLVMValueRef extra[N_EXTRA] = {s->h, s->c, s->gates, s->rh, LLVMBuildIntToPtr(k->b, s->xo, k->m->t_ptr, "")};
  RowBody rb = {job};
  cg_parallel_for_extra(k, n, grain, row_body, &rb, extra, N_EXTRA);
}

/* Runs fn for rows [0, n) of this step: split across threads when the kernel runs a single
 * sequence (r->split_rows), else inline (the (direction, batch) loop is the parallel one). */
static void for_rows(CgKernel *k, const Rnn *r, const Step *s, int64_t n, RowFn fn) {
  if (r->split_rows) {
    RowJob job = {r, fn, s->wt, s->ft};
    int64_t grain = 16384 / (r->I + r->H + 1);
    par_rows(k, s, n, grain < 1 ? 1 : grain, &job);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  fn(k, r, s, l.i);
  cg_loop_end(k, &l);
}

static void lstm_gate_row(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef g) {
  cg_store(k, s->gates, s->wt, g, gate_pre(k, r, s, g, s->h, true, true, true));
}

static void f_gate_row(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef g) {
  cg_store(k, s->gates, s->wt, g, act_apply(k, r, &r->act[r->d][0], gate_pre(k, r, s, g, s->h, true, true, true)));
}

/* GRU candidate j: reset applied before (rh) or after (linear_before_reset) the product. */
static void gru_cand_row(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef j) {
  LLVMBuilderRef b = k->b;
  int64_t H = r->H;
  LLVMValueRef row = LLVMBuildAdd(b, j, cg_i64(k, 2 * H), ""), pre;
  if (r->linear_before_reset) {
    LLVMValueRef xh = gate_pre(k, r, s, row, NULL, true, true, false);
    LLVMValueRef hh = gate_pre(k, r, s, row, s->h, false, false, true);
    LLVMValueRef rt = wload(k, s, s->gates, LLVMBuildAdd(b, j, cg_i64(k, H), ""));
    pre = LLVMBuildFAdd(b, xh, LLVMBuildFMul(b, rt, hh, ""), "");
  } else {
    pre = gate_pre(k, r, s, row, s->rh, true, true, true);
  }
  cg_store(k, s->gates, s->wt, row, act_apply(k, r, &r->act[r->d][1], pre));
}

/* c and h per hidden unit from the gate pre-activations (order i, o, f, c). */
static void lstm_cell(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  const Act *a = r->act[r->d];
  int64_t H = r->H;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
  LLVMValueRef j = l.i, c = wload(k, s, s->c, j);
  LLVMValueRef gi = wload(k, s, s->gates, j);
  LLVMValueRef go = wload(k, s, s->gates, LLVMBuildAdd(b, j, cg_i64(k, H), ""));
  LLVMValueRef gf = wload(k, s, s->gates, LLVMBuildAdd(b, j, cg_i64(k, 2 * H), ""));
  LLVMValueRef gc = wload(k, s, s->gates, LLVMBuildAdd(b, j, cg_i64(k, 3 * H), ""));
  LLVMValueRef it = act_apply(k, r, &a[0], peephole(k, r, s, 0, j, c, gi));
  LLVMValueRef ft = r->input_forget ? LLVMBuildFSub(b, seq_fc(it, 1.0), it, "")
                                    : act_apply(k, r, &a[0], peephole(k, r, s, 2, j, c, gf));
  LLVMValueRef ct = act_apply(k, r, &a[1], gc);
  LLVMValueRef cn = LLVMBuildFAdd(b, LLVMBuildFMul(b, ft, c, ""), LLVMBuildFMul(b, it, ct, ""), "");
  LLVMValueRef ot = act_apply(k, r, &a[0], peephole(k, r, s, 1, j, cn, go));
  LLVMValueRef hn = LLVMBuildFMul(b, ot, act_clip(k, r, &a[2], cn, false), "");
  cg_store(k, s->c, s->wt, j, cn);
  cg_store(k, s->h, s->wt, j, hn);
  cg_loop_end(k, &l);
}

/* rh = r (.) h, the reset gate applied before the candidate's product. */
static void gru_rh(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  int64_t H = r->H;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
  LLVMValueRef rt = wload(k, s, s->gates, LLVMBuildAdd(b, l.i, cg_i64(k, H), ""));
  cg_store(k, s->rh, s->wt, l.i, LLVMBuildFMul(b, rt, wload(k, s, s->h, l.i), ""));
  cg_loop_end(k, &l);
}

/* h = (1 - z) (.) candidate + z (.) h. */
static void gru_blend(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  int64_t H = r->H;
  CgLoop u = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
  LLVMValueRef z = wload(k, s, s->gates, u.i);
  LLVMValueRef hc = wload(k, s, s->gates, LLVMBuildAdd(b, u.i, cg_i64(k, 2 * H), ""));
  LLVMValueRef hn = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildFSub(b, seq_fc(z, 1.0), z, ""), hc, ""),
                                  LLVMBuildFMul(b, z, wload(k, s, s->h, u.i), ""), "");
  cg_store(k, s->h, s->wt, u.i, hn);
  cg_loop_end(k, &u);
}

/* One LSTM step: gates (order i, o, f, c) from the old h, then c and h per hidden unit. */
static void lstm_step(CgKernel *k, const Rnn *r, const Step *s) {
  for_rows(k, r, s, 4 * r->H, lstm_gate_row);
  lstm_cell(k, r, s);
}

/* One GRU step: z and r (order z, r, h), then the candidate, then the blend. */
static void gru_step(CgKernel *k, const Rnn *r, const Step *s) {
  for_rows(k, r, s, 2 * r->H, f_gate_row);
  if (!r->linear_before_reset) gru_rh(k, r, s);
  for_rows(k, r, s, r->H, gru_cand_row);
  gru_blend(k, r, s);
}

static void rnn_step(CgKernel *k, const Rnn *r, const Step *s) {
  for_rows(k, r, s, r->H, f_gate_row);
  cg_memcpy(k, s->h, s->gates, cg_i64(k, r->H * (ir_dtype_bits(s->wt) / 8)));
}

/* ---- f32 fast path (-O1 and up) -----------------------------------------------------------
 * The per-step row dots of the plain path read W and R (and reduce horizontally) every step, so a
 * step ran far below vector speed. Here X W^T + biases for every step is computed up front (its
 * own parallel loop: tiles of steps x gate rows whose lane-wide dots are summed by one transpose
 * tree per tile), and a step only streams R^T, stored as panels (broadcast h[j] times contiguous
 * gate values: no horizontal sums), which runs at about the L2 cache's bandwidth. */

static LLVMTypeRef vec_t(CgKernel *k, int n) { return LLVMVectorType(k->m->t_f32, (unsigned)n); }

/* n (<= lanes) floats at p + off as a lanes-wide vector, zeros past n (masked: p + off + n may be
 * the end of the buffer). */
static LLVMValueRef vload(CgKernel *k, LLVMValueRef p, LLVMValueRef off, int lanes, int n) {
  LLVMTypeRef vt = vec_t(k, lanes);
  LLVMValueRef q = cg_elem_ptr(k, p, KN_F32, off);
  if (n == lanes) {
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt, q, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef bits[16];
  for (int i = 0; i < lanes; i++) bits[i] = LLVMConstInt(k->m->t_i1, i < n, 0);
  LLVMValueRef args[4] = {q, cg_i32(k, 4), LLVMConstVector(bits, (unsigned)lanes), LLVMConstNull(vt)};
  LLVMTypeRef ov[2] = {vt, k->m->t_ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, ov, 2);
  return LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, ov, 2), fn, args, 4, "");
}

static void vstore(CgKernel *k, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v) {
  LLVMSetAlignment(LLVMBuildStore(k->b, v, cg_elem_ptr(k, p, KN_F32, off)), 4);
}

static LLVMValueRef shuffle(CgKernel *k, LLVMValueRef a, LLVMValueRef b, const int *idx, int n) {
  LLVMValueRef m[16];
  for (int i = 0; i < n; i++) m[i] = LLVMConstInt(k->m->t_i32, (unsigned long long)idx[i], 0);
  return LLVMBuildShuffleVector(k->b, a, b, LLVMConstVector(m, (unsigned)n), "");
}

/* The two shuffles that pair up aligned half-blocks of width w of vectors a and b: lo takes the
 * first half of each 2w-lane block of a then of b, hi the second halves. */
static void half_masks(int L, int w, int *lo, int *hi) {
  for (int s0 = 0; s0 < L; s0 += 2 * w) {
    for (int q = 0; q < w; q++) {
      lo[s0 + q] = s0 + q, lo[s0 + w + q] = L + s0 + q;
      hi[s0 + q] = s0 + w + q, hi[s0 + w + q] = L + s0 + w + q;
    }
  }
}

/* v[0..L) (L lanes each) -> one vector whose lane p is the sum of v[p]'s lanes. Invariant: at
 * half-width w, lanes of an aligned block of 2w share one owner, so adding a block's halves of
 * two vectors side by side halves the vector count and keeps owners apart. */
static LLVMValueRef reduce_tree(CgKernel *k, LLVMValueRef *v, int L) {
  int owner[16][16], n = L;
  for (int p = 0; p < L; p++)
    for (int l = 0; l < L; l++) owner[p][l] = p;
  for (int w = L / 2; w >= 1; w /= 2, n /= 2) {
    for (int p = 0; p < n / 2; p++) {
      int lo[16], hi[16], own[16];
      half_masks(L, w, lo, hi);
      for (int s0 = 0; s0 < L; s0 += 2 * w) {
        for (int q = 0; q < w; q++)
          own[s0 + q] = owner[2 * p][s0 + q], own[s0 + w + q] = owner[2 * p + 1][s0 + q];
      }
      LLVMValueRef a = v[2 * p], b = v[2 * p + 1];
      v[p] = LLVMBuildFAdd(k->b, shuffle(k, a, b, lo, L), shuffle(k, a, b, hi, L), "");
      memcpy(owner[p], own, sizeof own);
    }
  }
  int perm[16];
  for (int l = 0; l < L; l++) perm[owner[0][l]] = l;
  return shuffle(k, v[0], LLVMGetUndef(LLVMTypeOf(v[0])), perm, L);
}

/* Lane j * nrow + i of the result = sum_{c < len} rows[i][c] * vecs[j][c] (nrow * nvec = lanes):
 * every row chunk loaded once serves all vecs and the other way round. */
static LLVMValueRef dot_tile(CgKernel *k, LLVMValueRef *rows, int nrow, LLVMValueRef *vecs, int nvec,
                             int64_t len) {
  int L = k->m->vec_lanes;
  LLVMTypeRef vt = vec_t(k, L);
  LLVMValueRef acc[16], ra[16], va[16];
  for (int p = 0; p < L; p++) acc[p] = cg_var(k, vt, LLVMConstNull(vt));
  for (int part = 0; part < 2; part++) { /* the full chunks, then the masked tail */
    int64_t full = len / L, n = part ? len % L : L;
    if (part ? n == 0 : full == 0) continue;
    CgLoop l = cg_loop_begin(k, cg_i64(k, part ? full : 0), cg_i64(k, part ? full + 1 : full));
    LLVMValueRef off = LLVMBuildMul(k->b, l.i, cg_i64(k, L), "");
    for (int i = 0; i < nrow; i++) ra[i] = vload(k, rows[i], off, L, (int)n);
    for (int j = 0; j < nvec; j++) va[j] = vload(k, vecs[j], off, L, (int)n);
    for (int j = 0; j < nvec; j++) {
      for (int i = 0; i < nrow; i++) {
        LLVMValueRef a[3] = {ra[i], va[j], LLVMBuildLoad2(k->b, vt, acc[j * nrow + i], "")};
        LLVMBuildStore(k->b, cg_intrinsic(k, "llvm.fmuladd", a, 3), acc[j * nrow + i]);
      }
    }
    cg_loop_end(k, &l);
  }
  for (int p = 0; p < L; p++) acc[p] = LLVMBuildLoad2(k->b, vt, acc[p], "");
  return reduce_tree(k, acc, L);
}

/* out[i] = &base[(first + min(i, valid - 1)) * stride]: rows past the valid ones repeat the last,
 * so a partial tile reads only real rows. */
static void row_ptrs(CgKernel *k, LLVMValueRef base, LLVMValueRef first, int64_t stride, int valid, int n,
                     LLVMValueRef *out) {
  for (int i = 0; i < n; i++) {
    LLVMValueRef row = LLVMBuildAdd(k->b, first, cg_i64(k, i < valid ? i : valid - 1), "");
    out[i] = cg_elem_ptr(k, base, KN_F32, LLVMBuildMul(k->b, row, cg_i64(k, stride), ""));
  }
}

/* Time steps per input-projection tile: with nt steps x (lanes / nt) rows a tile loads
 * lanes / nt + nt vectors per lanes FMAs. */
static int proj_steps(int L) { return L >= 16 ? 4 : 2; }

/* xw rows: G*H values plus a vector of padding, where the last partial tiles of a row land. */
static int64_t xw_stride(const CgKernel *k, const Rnn *r) { return r->G * r->H + k->m->vec_lanes; }

/* Elements of R^T for one direction (an upper bound of what the ranges use). */
static int64_t rt_dir(const CgKernel *k, const Rnn *r) { return r->H * (r->G * r->H + 2 * k->m->vec_lanes); }

/* One tile of the input projection: xw[t][g] = X[t, b] . W[d, g] + bias[g] for tv steps from t0
 * and gv rows from g0 (both compile-time counts; rows past gv go to the padding). */
static void proj_tile(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef t0, int tv, LLVMValueRef g0,
                      int gv) {
  int L = k->m->vec_lanes, nt = proj_steps(L), nrow = L / nt;
  LLVMValueRef rows[16], vecs[16];
  row_ptrs(k, k->in[1], LLVMBuildAdd(k->b, g0, cg_i64(k, r->d * r->G * r->H), ""), r->I, gv, nrow, rows);
  LLVMValueRef xb = cg_elem_ptr(k, k->in[0], KN_F32, LLVMBuildMul(k->b, s->b, cg_i64(k, r->x_bs), ""));
  row_ptrs(k, xb, t0, r->x_ts, tv, nt, vecs);
  LLVMValueRef v = dot_tile(k, rows, nrow, vecs, nt, r->I);
  LLVMValueRef bias = vload(k, s->bias, g0, nrow, nrow);
  for (int j = 0; j < tv; j++) {
    int idx[16];
    for (int i = 0; i < nrow; i++) idx[i] = j * nrow + i;
    LLVMValueRef part = LLVMBuildFAdd(k->b, shuffle(k, v, v, idx, nrow), bias, "");
    LLVMValueRef t = LLVMBuildAdd(k->b, t0, cg_i64(k, j), "");
    vstore(k, s->xw, LLVMBuildAdd(k->b, LLVMBuildMul(k->b, t, cg_i64(k, xw_stride(k, r)), ""), g0, ""), part);
  }
}

/* Tiles over [0, n) in blocks of bs: a loop over the full blocks, then the partial one. */
typedef void (*TileFn)(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef start, int valid, void *user);

static void for_blocks(CgKernel *k, const Rnn *r, const Step *s, int64_t n, int bs, TileFn fn, void *user) {
  if (n / bs > 0) {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n / bs));
    fn(k, r, s, LLVMBuildMul(k->b, l.i, cg_i64(k, bs), ""), bs, user);
    cg_loop_end(k, &l);
  }
  if (n % bs) fn(k, r, s, cg_i64(k, n / bs * bs), (int)(n % bs), user);
}

typedef struct ProjRow {
  LLVMValueRef t0;
  int tv;
} ProjRow;

static void proj_g(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef g0, int gv, void *user) {
  const ProjRow *pr = user;
  proj_tile(k, r, s, pr->t0, pr->tv, g0, gv);
}

static void proj_t(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef t0, int tv, void *user) {
  (void)user;
  ProjRow pr = {t0, tv};
  int nrow = k->m->vec_lanes / proj_steps(k->m->vec_lanes);
  for_blocks(k, r, s, r->G * r->H, nrow, proj_g, &pr);
}

/* bias[g] = Wb[g] + Rb[g] of direction r->d (Rb left out of GRU's candidate rows under
 * linear_before_reset, where it goes inside the reset product), zeros in the padding. */
static void fold_bias(CgKernel *k, const Rnn *r, const Step *s) {
  int64_t gh = r->G * r->H;
  cg_memset(k, s->bias, 0, cg_i64(k, 4 * xw_stride(k, r)));
  if (k->node->n_inputs > 3 && k->in[3]) {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, gh));
    LLVMValueRef bo = LLVMBuildAdd(k->b, cg_i64(k, r->d * 2 * gh), l.i, "");
    LLVMValueRef v = cg_load(k, k->in[3], KN_F32, bo);
    LLVMValueRef rb = cg_load(k, k->in[3], KN_F32, LLVMBuildAdd(k->b, bo, cg_i64(k, gh), ""));
    if (r->op == KN_OP_GRU && r->linear_before_reset)
      rb = cg_select(k, LLVMBuildICmp(k->b, LLVMIntSLT, l.i, cg_i64(k, 2 * r->H), ""), rb, seq_fc(rb, 0));
    cg_store(k, s->bias, KN_F32, l.i, LLVMBuildFAdd(k->b, v, rb, ""));
    cg_loop_end(k, &l);
  }
}

enum { EXTRA_RT, EXTRA_BIAS, EXTRA_XW, N_FAST_EXTRA }; /* the fast path's shared buffers */

/* Where sequence (r->d, bi) keeps xw, its biases and R^T: the shared buffers of fast_run. */
static void fast_bufs(CgKernel *k, const Rnn *r, LLVMValueRef bi, Step *s) {
  int64_t xs = xw_stride(k, r);
  LLVMValueRef seq = LLVMBuildAdd(k->b, cg_i64(k, r->d * r->B), bi, "");
  s->rt = cg_elem_ptr(k, k->extra[EXTRA_RT], KN_F32, cg_i64(k, r->d * rt_dir(k, r)));
  s->bias = cg_elem_ptr(k, k->extra[EXTRA_BIAS], KN_F32, cg_i64(k, r->d * xs));
  s->xw = cg_elem_ptr(k, k->extra[EXTRA_XW], KN_F32, LLVMBuildMul(k->b, seq, cg_i64(k, r->S * xs), ""));
}

/* Vectors of gates per group: accumulators in registers, with room for the loads. */
static int rec_vecs(const CgKernel *k) { return k->m->vec_regs >= 32 ? 8 : 4; }

/* The gate ranges one h R^T product covers: GRU's candidate rows take r (.) h, so they are their
 * own range. Returns the count. */
static int gate_ranges(const Rnn *r, int64_t *g0, int64_t *n) {
  g0[0] = 0, n[0] = r->op == KN_OP_GRU ? 2 * r->H : r->G * r->H;
  g0[1] = 2 * r->H, n[1] = r->H;
  return r->op == KN_OP_GRU ? 2 : 1;
}

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* R^T is stored as panels: each group of gates (rec_vecs vectors, fewer for a range's last) holds
 * its H rows of gate values side by side, so a group streams one contiguous block. This is where
 * range q's panels start. */
static int64_t range_base(const CgKernel *k, const Rnn *r, int q) {
  int64_t g0[2], n[2];
  gate_ranges(r, g0, n);
  return q == 0 ? 0 : r->H * round_up(n[0], k->m->vec_lanes);
}

/* Transposes v[0..L) in place (lane j of v[i] <-> lane i of v[j]): log2(L) rounds of swapping
 * off-diagonal blocks of halving size. */
static void transpose_tile(CgKernel *k, LLVMValueRef *v, int L) {
  for (int w = L / 2; w >= 1; w /= 2) {
    LLVMValueRef nv[16];
    int lo[16], hi[16];
    half_masks(L, w, lo, hi);
    for (int i = 0; i < L; i++) {
      if (i & w) continue;
      nv[i] = shuffle(k, v[i], v[i + w], lo, L);
      nv[i + w] = shuffle(k, v[i], v[i + w], hi, L);
    }
    memcpy(v, nv, sizeof(LLVMValueRef) * (size_t)L);
  }
}

typedef struct RtJob {
  LLVMValueRef panel;  /* this group's panel */
  LLVMValueRef g;      /* its first gate row */
  int64_t width;       /* floats per panel row */
  int p;               /* which vector of the group */
} RtJob;

/* panel[j][p * L + i] = R[d, min(g + p * L + i, GH - 1)][j] for the jv hidden units from j0. */
static void rt_tile(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef j0, int jv, void *user) {
  (void)s;
  const RtJob *job = user;
  int L = k->m->vec_lanes;
  int64_t gh = r->G * r->H;
  LLVMValueRef v[16];
  for (int i = 0; i < L; i++) {
    LLVMValueRef g = cg_min(k, KN_I64, LLVMBuildAdd(k->b, job->g, cg_i64(k, job->p * L + i), ""), cg_i64(k, gh - 1));
    LLVMValueRef row = LLVMBuildMul(k->b, LLVMBuildAdd(k->b, g, cg_i64(k, r->d * gh), ""), cg_i64(k, r->H), "");
    v[i] = vload(k, cg_elem_ptr(k, k->in[2], KN_F32, row), j0, L, jv);
  }
  transpose_tile(k, v, L);
  for (int j = 0; j < jv; j++) {
    LLVMValueRef jj = LLVMBuildAdd(k->b, j0, cg_i64(k, j), "");
    LLVMValueRef off = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, jj, cg_i64(k, job->width), ""), cg_i64(k, job->p * L), "");
    vstore(k, job->panel, off, v[j]);
  }
}

typedef struct RtRange {
  LLVMValueRef dst;    /* this range's panels */
  int64_t g0;
} RtRange;

static void rt_group(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef q0, int valid, void *user) {
  const RtRange *rg = user;
  int L = k->m->vec_lanes, nv = (valid + L - 1) / L;
  RtJob job = {cg_elem_ptr(k, rg->dst, KN_F32, LLVMBuildMul(k->b, q0, cg_i64(k, r->H), "")),
               LLVMBuildAdd(k->b, q0, cg_i64(k, rg->g0), ""), (int64_t)nv * L, 0};
  for (job.p = 0; job.p < nv; job.p++) for_blocks(k, r, s, r->H, L, rt_tile, &job);
}

/* dst = R[r->d]^T as the panels of every gate range. */
static void transpose_r(CgKernel *k, const Rnn *r, LLVMValueRef dst) {
  int64_t g0[2], n[2];
  int nr = gate_ranges(r, g0, n);
  for (int q = 0; q < nr; q++) {
    RtRange rg = {cg_elem_ptr(k, dst, KN_F32, cg_i64(k, range_base(k, r, q))), g0[q]};
    for_blocks(k, r, NULL, n[q], k->m->vec_lanes * rec_vecs(k), rt_group, &rg);
  }
}

typedef struct RecRows {
  LLVMValueRef vec;  /* h or r (.) h */
  int64_t g0;        /* first gate row */
  int64_t base;      /* where the range's panels start */
  bool add_xw;
} RecRows;

/* Rows of R^T ahead of the one being read that a group prefetches. */
enum { RT_PREFETCH = 8 };

static void prefetch(CgKernel *k, LLVMValueRef p) {
  LLVMTypeRef pt = k->m->t_ptr;
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, &pt, 1);
  LLVMValueRef args[4] = {p, cg_i32(k, 0), cg_i32(k, 3), cg_i32(k, 1)};
  LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->m->ctx, id, &pt, 1), fn, args, 4, "");
}

/* gates[g .. g + nv * L) = sum_j vec[j] * panel[j][..] (+ xw): broadcast times contiguous R^T,
 * so each product lands in its own lane and nothing needs a horizontal sum. */
static void rec_tile(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef q0, int valid, void *user) {
  const RecRows *rr = user;
  int L = k->m->vec_lanes, nv = (valid + L - 1) / L;
  LLVMTypeRef vt = vec_t(k, L);
  LLVMValueRef g = LLVMBuildAdd(k->b, q0, cg_i64(k, rr->g0), ""), acc[16];
  LLVMValueRef panel = cg_elem_ptr(k, s->rt, KN_F32,
                                   LLVMBuildAdd(k->b, cg_i64(k, rr->base), LLVMBuildMul(k->b, q0, cg_i64(k, r->H), ""), ""));
  for (int p = 0; p < nv; p++) acc[p] = cg_var(k, vt, LLVMConstNull(vt));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, r->H));
  LLVMValueRef x = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), cg_load(k, rr->vec, KN_F32, l.i), cg_i32(k, 0), "");
  x = LLVMBuildShuffleVector(k->b, x, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)L)), "");
  LLVMValueRef row = LLVMBuildMul(k->b, l.i, cg_i64(k, (int64_t)nv * L), "");
  for (int p = 0; p < nv; p++) {
    LLVMValueRef off = LLVMBuildAdd(k->b, row, cg_i64(k, p * L), "");
    prefetch(k, cg_elem_ptr(k, panel, KN_F32, LLVMBuildAdd(k->b, off, cg_i64(k, RT_PREFETCH * nv * L), "")));
    LLVMValueRef a[3] = {x, vload(k, panel, off, L, L), LLVMBuildLoad2(k->b, vt, acc[p], "")};
    LLVMBuildStore(k->b, cg_intrinsic(k, "llvm.fmuladd", a, 3), acc[p]);
  }
  cg_loop_end(k, &l);
  for (int p = 0; p < nv; p++) {
    LLVMValueRef gp = LLVMBuildAdd(k->b, g, cg_i64(k, p * L), "");
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt, acc[p], "");
    if (rr->add_xw) v = LLVMBuildFAdd(k->b, v, vload(k, s->xwt, gp, L, L), "");
    vstore(k, s->gates, gp, v);
  }
}

/* gates[g] = vec . R[d, g] (+ xw[t][g]) for g in gate range q; a partial last vector writes past
 * the range, into rows computed later or the padding. */
static void rec_rows(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef vec, int q, bool add_xw) {
  int64_t g0[2], n[2];
  gate_ranges(r, g0, n);
  RecRows rr = {vec, g0[q], range_base(k, r, q), add_xw};
  for_blocks(k, r, s, n[q], k->m->vec_lanes * rec_vecs(k), rec_tile, &rr);
}

/* gates[g] = act(gates[g]) for g in [g0, g0 + n). */
static void act_rows(CgKernel *k, const Rnn *r, const Step *s, const Act *a, int64_t g0, int64_t n) {
  CgLoop l = cg_loop_begin(k, cg_i64(k, g0), cg_i64(k, g0 + n));
  cg_store(k, s->gates, KN_F32, l.i, act_apply(k, r, a, wload(k, s, s->gates, l.i)));
  cg_loop_end(k, &l);
}

/* GRU's candidate under linear_before_reset: act(xw + r (.) (h R^T + Rb)), h R^T in the gates. */
static void gru_cand_lbr(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  int64_t H = r->H, gh = r->G * H;
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
  LLVMValueRef row = LLVMBuildAdd(b, l.i, cg_i64(k, 2 * H), "");
  LLVMValueRef hh = wload(k, s, s->gates, row);
  if (k->node->n_inputs > 3 && k->in[3])
    hh = LLVMBuildFAdd(b, hh, ld(k, r, 3, LLVMBuildAdd(b, row, cg_i64(k, r->d * 2 * gh + gh), ""), s->ft), "");
  LLVMValueRef rt = wload(k, s, s->gates, LLVMBuildAdd(b, l.i, cg_i64(k, H), ""));
  LLVMValueRef pre = LLVMBuildFAdd(b, wload(k, s, s->xwt, row), LLVMBuildFMul(b, rt, hh, ""), "");
  cg_store(k, s->gates, s->wt, row, act_apply(k, r, &r->act[r->d][1], pre));
  cg_loop_end(k, &l);
}

/* One step of any of the three ops on the fast path (same order of work as the steps above). */
static void fast_step(CgKernel *k, const Rnn *r, const Step *s) {
  int64_t H = r->H;
  const Act *a = r->act[r->d];
  if (r->op == KN_OP_LSTM) {
    rec_rows(k, r, s, s->h, 0, true);
    lstm_cell(k, r, s);
  } else if (r->op == KN_OP_GRU) {
    rec_rows(k, r, s, s->h, 0, true);
    act_rows(k, r, s, &a[0], 0, 2 * H);
    if (r->linear_before_reset) {
      rec_rows(k, r, s, s->h, 1, false);
      gru_cand_lbr(k, r, s);
    } else {
      gru_rh(k, r, s);
      rec_rows(k, r, s, s->rh, 1, true);
      act_rows(k, r, s, &a[1], 2 * H, H);
    }
    gru_blend(k, r, s);
  } else {
    rec_rows(k, r, s, s->h, 0, true);
    act_rows(k, r, s, &a[0], 0, H);
    cg_memcpy(k, s->h, s->gates, cg_i64(k, H * 4));
  }
}

/* The shared buffer (R^T and biases per direction, every sequence's projected inputs) is capped:
 * past this many floats (256 MB) the node takes the per-row path instead. */
#define FAST_MAX_ELEMS ((int64_t)1 << 26)

/* Elements of a sequence's work buffer on the fast path (h, c, rh, gates with padding) and of the
 * shared buffers (R^T and biases per direction, then xw rows for every sequence and step: offsets
 * in *off); false when anything overflows. */
static bool fast_elems(const CgKernel *k, const Rnn *r, int64_t *out, int64_t *shared, int64_t off[N_FAST_EXTRA]) {
  int64_t xs = xw_stride(k, r), seqs = r->dirs * r->B, rows, xw, rt, bias;
  if (r->G * r->H > FAST_MAX_ELEMS || __builtin_mul_overflow(seqs, r->S, &rows) || /* rt_dir fits */
      __builtin_mul_overflow(rows, xs, &xw) || __builtin_mul_overflow(r->dirs, rt_dir(k, r), &rt) ||
      __builtin_mul_overflow(r->dirs, xs, &bias) || __builtin_add_overflow(rt, bias, &off[EXTRA_XW]) ||
      __builtin_add_overflow(off[EXTRA_XW], xw, shared) || *shared > FAST_MAX_ELEMS)
    return false;
  off[EXTRA_RT] = 0, off[EXTRA_BIAS] = rt;
  *out = 3 * r->H + xs;
  return true;
}

/* Copies H work values to (or from, when to_buf is false) a strided output/input row. */
static void copy_row(CgKernel *k, const Rnn *r, const Step *s, LLVMValueRef work, LLVMValueRef ptr,
                     LLVMValueRef off, bool to_buf) {
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, r->H));
  LLVMValueRef idx = LLVMBuildAdd(k->b, off, l.i, "");
  if (to_buf) {
    cg_store(k, ptr, r->t, idx, cg_convert(k, cg_load(k, work, s->wt, l.i), s->wt, r->t));
  } else {
    cg_store(k, work, s->wt, l.i, cg_convert(k, cg_load(k, ptr, r->t, idx), r->t, s->wt));
  }
  cg_loop_end(k, &l);
}

static LLVMValueRef out_ptr(CgKernel *k, int i) { return i < k->node->n_outputs ? k->out[i] : NULL; }

/* Initial state row (d, b) from an optional input, else zeros. */
static void init_state(CgKernel *k, const Rnn *r, const Step *s, int input, LLVMValueRef work,
                       LLVMValueRef soff) {
  if (input >= 0 && input < k->node->n_inputs && k->in[input]) copy_row(k, r, s, work, k->in[input], soff, false);
  else cg_memset(k, work, 0, cg_i64(k, r->H * (ir_dtype_bits(s->wt) / 8)));
}

/* The sequence length of batch row b, clamped to [0, S]. */
static LLVMValueRef seq_len(CgKernel *k, const Rnn *r, LLVMValueRef bi) {
  if (r->in_seq >= k->node->n_inputs || !k->in[r->in_seq]) return cg_i64(k, r->S);
  KnDtype st = cg_in_dtype(k, r->in_seq);
  LLVMValueRef v = cg_convert(k, cg_load(k, k->in[r->in_seq], st, bi), st, KN_I64);
  v = cg_max(k, KN_I64, v, cg_i64(k, 0));
  return cg_min(k, KN_I64, v, cg_i64(k, r->S));
}

/* The whole sequence of batch row bi in direction r->d. */
static void run_seq(CgKernel *k, LLVMValueRef bi, const Rnn *r) {
  LLVMBuilderRef b = k->b;
  Step s = {.wt = seq_work_dtype(r->t), .b = bi};
  s.ft = cg_compute_type(k->m, s.wt);
  int64_t es = ir_dtype_bits(s.wt) / 8, H = r->H, fe = 0, sh, offs[N_FAST_EXTRA];
  if (r->fast && !fast_elems(k, r, &fe, &sh, offs)) fe = 0; /* checked by cg_lower_rnn */
  LLVMValueRef ws = seq_malloc(k, r->fast ? 4 * fe : es * (3 * H + r->G * H));
  LLVMTypeRef i8 = k->m->t_i8;
  LLVMValueRef off[3] = {cg_i64(k, es * H), cg_i64(k, es * 2 * H), cg_i64(k, es * 3 * H)};
  s.h = ws;
  s.c = LLVMBuildGEP2(b, i8, ws, &off[0], 1, "");
  s.rh = LLVMBuildGEP2(b, i8, ws, &off[1], 1, "");
  s.gates = LLVMBuildGEP2(b, i8, ws, &off[2], 1, "");
  if (r->fast) { /* the projection first, while the sequence's thread has nothing else to do */
    fast_bufs(k, r, bi, &s);
    for_blocks(k, r, &s, r->S, proj_steps(k->m->vec_lanes), proj_t, NULL);
  }
  LLVMValueRef soff = LLVMBuildAdd(b, cg_i64(k, r->d * r->s_ds), LLVMBuildMul(b, bi, cg_i64(k, r->s_bs), ""), "");
  init_state(k, r, &s, r->in_h0, s.h, soff);
  init_state(k, r, &s, r->in_c0, s.c, soff);
  LLVMValueRef len = seq_len(k, r, bi), y = out_ptr(k, 0);
  bool rev = r->reverse_only || r->d == 1;
  LLVMValueRef yb = LLVMBuildAdd(b, cg_i64(k, r->d * r->y_ds), LLVMBuildMul(b, bi, cg_i64(k, r->y_bs), ""), "");
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, r->S));
  CgIf in = cg_if_begin(k, LLVMBuildICmp(b, LLVMIntSLT, l.i, len, ""));
  LLVMValueRef t = rev ? LLVMBuildSub(b, LLVMBuildSub(b, len, cg_i64(k, 1), ""), l.i, "") : l.i;
  s.xo = LLVMBuildAdd(b, LLVMBuildMul(b, t, cg_i64(k, r->x_ts), ""), LLVMBuildMul(b, bi, cg_i64(k, r->x_bs), ""), "");
  if (r->fast) s.xwt = cg_elem_ptr(k, s.xw, KN_F32, LLVMBuildMul(b, t, cg_i64(k, xw_stride(k, r)), ""));
  if (r->fast) fast_step(k, r, &s);
  else if (r->op == KN_OP_LSTM) lstm_step(k, r, &s);
  else if (r->op == KN_OP_GRU) gru_step(k, r, &s);
  else rnn_step(k, r, &s);
  if (y) copy_row(k, r, &s, s.h, y, LLVMBuildAdd(b, yb, LLVMBuildMul(b, t, cg_i64(k, r->y_ts), ""), ""), true);
  cg_if_else(k, &in);
  if (y) { /* steps past this row's length are zeros */
    LLVMValueRef yo = LLVMBuildAdd(b, yb, LLVMBuildMul(b, l.i, cg_i64(k, r->y_ts), ""), "");
    CgLoop z = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
    cg_store(k, y, r->t, LLVMBuildAdd(b, yo, z.i, ""), cg_const(k, r->t, 0.0));
    cg_loop_end(k, &z);
  }
  cg_if_end(k, &in);
  cg_loop_end(k, &l);
  if (out_ptr(k, 1)) copy_row(k, r, &s, s.h, out_ptr(k, 1), soff, true);
  if (r->op == KN_OP_LSTM && out_ptr(k, 2)) copy_row(k, r, &s, s.c, out_ptr(k, 2), soff, true);
  seq_free(k, ws);
}

/* Parallel iteration i = (direction, batch row); the direction picks compile-time code. */
static void body(CgKernel *k, LLVMValueRef i, void *user) {
  const Rnn *per_dir = user;
  int64_t B = per_dir[0].B;
  if (per_dir[0].dirs == 1) {
    run_seq(k, i, &per_dir[0]);
    return;
  }
  LLVMValueRef bi = LLVMBuildSRem(k->b, i, cg_i64(k, B), "");
  CgIf fwd = cg_if_begin(k, LLVMBuildICmp(k->b, LLVMIntSLT, i, cg_i64(k, B), ""));
  run_seq(k, bi, &per_dir[0]);
  cg_if_else(k, &fwd);
  run_seq(k, bi, &per_dir[1]);
  cg_if_end(k, &fwd);
}

/* The fast path: R^T and the folded biases of every direction once, then the sequences, parallel
 * over (direction, batch row), each projecting its inputs first. The projection is not a parallel
 * loop of its own: with one sequence that would wake the other threads for ~20 us of work, and on
 * a busy machine waiting for them cost milliseconds. The buffers start 64-byte aligned: R^T's
 * panel rows are read as whole vectors. */
static void fast_run(CgKernel *k, Rnn *per_dir) {
  LLVMBuilderRef b = k->b;
  const Rnn *r = &per_dir[0];
  int64_t fe, sh, off[N_FAST_EXTRA];
  if (!fast_elems(k, r, &fe, &sh, off)) return; /* checked by cg_lower_rnn */
  LLVMValueRef raw = seq_malloc(k, 4 * sh + 64), ex[N_FAST_EXTRA];
  LLVMValueRef a = LLVMBuildAdd(b, LLVMBuildPtrToInt(b, raw, k->m->t_i64, ""), cg_i64(k, 63), "");
  a = LLVMBuildIntToPtr(b, LLVMBuildAnd(b, a, cg_i64(k, -64), ""), k->m->t_ptr, "");
  for (int e = 0; e < N_FAST_EXTRA; e++) ex[e] = cg_elem_ptr(k, a, KN_F32, cg_i64(k, off[e]));
  for (int d = 0; d < r->dirs; d++) {
    transpose_r(k, &per_dir[d], cg_elem_ptr(k, ex[EXTRA_RT], KN_F32, cg_i64(k, d * rt_dir(k, r))));
    Step s = {.bias = cg_elem_ptr(k, ex[EXTRA_BIAS], KN_F32, cg_i64(k, d * xw_stride(k, r)))};
    fold_bias(k, &per_dir[d], &s);
  }
  cg_parallel_for_extra(k, r->dirs * r->B, 1, body, per_dir, ex, N_FAST_EXTRA);
  seq_free(k, raw);
}

/* Shapes, strides and attributes into r. */
static KnStatus setup(CgKernel *k, Rnn *r) {
  const KnNode *n = k->node;
  const KnShape *xs = cg_in_shape(k, 0), *ws = cg_in_shape(k, 1), *rs = cg_in_shape(k, 2);
  r->op = n->op;
  r->t = cg_in_dtype(k, 0);
  if (!ir_dtype_is_float(r->t) || cg_in_dtype(k, 1) != r->t || cg_in_dtype(k, 2) != r->t)
    return cg_unsupported(k, "X, W and R must share one float dtype");
  bool bf = ir_attr_int(n, "layout", 0) != 0;
  r->S = xs->dims[bf ? 1 : 0].value;
  r->B = xs->dims[bf ? 0 : 1].value;
  r->I = xs->dims[2].value;
  r->H = rs->dims[2].value;
  r->G = n_acts(r->op) == 3 ? 4 : n_acts(r->op) == 2 ? 3 : 1;
  r->dirs = ws->dims[0].value;
  if (ws->dims[1].value != r->G * r->H || ws->dims[2].value != r->I || rs->dims[1].value != r->G * r->H)
    return cg_unsupported(k, "W or R shape does not match hidden_size");
  const char *dir = ir_attr_string(n, "direction", "forward");
  r->reverse_only = !strcmp(dir, "reverse");
  const KnAttr *clip = ir_attr(n, "clip");
  r->has_clip = clip != NULL;
  r->clip = ir_attr_float(n, "clip", 0.0f);
  r->input_forget = ir_attr_int(n, "input_forget", 0) != 0;
  r->linear_before_reset = ir_attr_int(n, "linear_before_reset", 0) != 0;
  r->x_ts = bf ? r->I : r->B * r->I;
  r->x_bs = bf ? r->S * r->I : r->I;
  r->y_ts = bf ? r->dirs * r->H : r->dirs * r->B * r->H;
  r->y_ds = bf ? r->H : r->B * r->H;
  r->y_bs = bf ? r->S * r->dirs * r->H : r->H;
  r->s_ds = bf ? r->H : r->B * r->H;
  r->s_bs = bf ? r->dirs * r->H : r->H;
  r->in_seq = 4;
  r->in_h0 = 5;
  r->in_c0 = r->op == KN_OP_LSTM ? 6 : -1;
  r->in_p = r->op == KN_OP_LSTM ? 7 : -1;
  if (r->in_p >= n->n_inputs) r->in_p = -1;
  return parse_acts(k, r);
}

KnStatus cg_lower_rnn(CgKernel *k) {
  Rnn r = {0};
  KnStatus st = setup(k, &r);
  if (st != KN_OK) return st;
  if (r.S == 0 || r.B == 0) { /* nothing runs; Y_h / Y_c (if any) are empty too */
    for (int o = 0; o < k->node->n_outputs; o++) {
      const KnValue *v = k->node->outputs[o];
      size_t nb = 0;
      if (v && k->out[o] && ir_dtype_nbytes(v->type.dtype, cg_numel(&v->type.shape), &nb) && nb)
        cg_memset(k, k->out[o], 0, cg_i64(k, (int64_t)nb));
    }
    return KN_OK;
  }
  int vl = k->m->vec_lanes;
  int64_t fe, sh, offs[N_FAST_EXTRA];
  r.fast = k->m->opt_level > 0 && r.t == KN_F32 && (vl == 4 || vl == 8 || vl == 16) && fast_elems(k, &r, &fe, &sh, offs);
  Rnn per_dir[2];
  for (int d = 0; d < 2; d++) {
    per_dir[d] = r;
    per_dir[d].d = d < r.dirs ? d : 0;
  }
  /* A single sequence would run on one thread: split its gate rows instead when a step is big
   * enough to pay for a fork/join per step (small ones lose badly on a busy machine). */
  if (r.dirs * r.B == 1 && r.G * r.H * (r.I + r.H) >= (1 << 18)) {
    per_dir[0].split_rows = true;
    per_dir[0].fast = false;
    run_seq(k, cg_i64(k, 0), &per_dir[0]);
  } else if (r.fast) {
    fast_run(k, per_dir);
  } else {
    cg_parallel_for(k, r.dirs * r.B, 1, body, per_dir);
  }
  return KN_OK;
}
