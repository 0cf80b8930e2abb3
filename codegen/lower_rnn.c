/* lower_rnn.c - the recurrent ops LSTM, GRU and RNN: every (direction, batch row) runs its whole
 * sequence independently, so those pairs are the parallel loop and each step is plain dots. */
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

/* One LSTM step: gates (order i, o, f, c) from the old h, then c and h per hidden unit. */
static void lstm_step(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  const Act *a = r->act[r->d];
  int64_t H = r->H;
  for_rows(k, r, s, 4 * H, lstm_gate_row);
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

/* One GRU step: z and r (order z, r, h), then the candidate, then the blend. */
static void gru_step(CgKernel *k, const Rnn *r, const Step *s) {
  LLVMBuilderRef b = k->b;
  int64_t H = r->H;
  for_rows(k, r, s, 2 * H, f_gate_row);
  if (!r->linear_before_reset) { /* rh = r (.) h */
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
    LLVMValueRef rt = wload(k, s, s->gates, LLVMBuildAdd(b, l.i, cg_i64(k, H), ""));
    cg_store(k, s->rh, s->wt, l.i, LLVMBuildFMul(b, rt, wload(k, s, s->h, l.i), ""));
    cg_loop_end(k, &l);
  }
  for_rows(k, r, s, H, gru_cand_row);
  CgLoop u = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, H));
  LLVMValueRef z = wload(k, s, s->gates, u.i);
  LLVMValueRef hc = wload(k, s, s->gates, LLVMBuildAdd(b, u.i, cg_i64(k, 2 * H), ""));
  LLVMValueRef hn = LLVMBuildFAdd(b, LLVMBuildFMul(b, LLVMBuildFSub(b, seq_fc(z, 1.0), z, ""), hc, ""),
                                  LLVMBuildFMul(b, z, wload(k, s, s->h, u.i), ""), "");
  cg_store(k, s->h, s->wt, u.i, hn);
  cg_loop_end(k, &u);
}

static void rnn_step(CgKernel *k, const Rnn *r, const Step *s) {
  for_rows(k, r, s, r->H, f_gate_row);
  cg_memcpy(k, s->h, s->gates, cg_i64(k, r->H * (ir_dtype_bits(s->wt) / 8)));
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
  int64_t es = ir_dtype_bits(s.wt) / 8, H = r->H;
  LLVMValueRef ws = seq_malloc(k, es * (3 * H + r->G * H));
  LLVMTypeRef i8 = k->m->t_i8;
  LLVMValueRef off[3] = {cg_i64(k, es * H), cg_i64(k, es * 2 * H), cg_i64(k, es * 3 * H)};
  s.h = ws;
  s.c = LLVMBuildGEP2(b, i8, ws, &off[0], 1, "");
  s.rh = LLVMBuildGEP2(b, i8, ws, &off[1], 1, "");
  s.gates = LLVMBuildGEP2(b, i8, ws, &off[2], 1, "");
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
  if (r->op == KN_OP_LSTM) lstm_step(k, r, &s);
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
  Rnn per_dir[2];
  for (int d = 0; d < 2; d++) {
    per_dir[d] = r;
    per_dir[d].d = d < r.dirs ? d : 0;
  }
  /* A single sequence would run on one thread: split its gate rows instead when a step is big
   * enough to pay for a fork/join per step (small ones lose badly on a busy machine). */
  if (r.dirs * r.B == 1 && r.G * r.H * (r.I + r.H) >= (1 << 18)) {
    per_dir[0].split_rows = true;
    run_seq(k, cg_i64(k, 0), &per_dir[0]);
  } else {
    cg_parallel_for(k, r.dirs * r.B, 1, body, per_dir);
  }
  return KN_OK;
}
