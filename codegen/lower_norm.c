/* lower_norm.c - LayerNormalization, InstanceNormalization, BatchNormalization,
 * MeanVarianceNormalization, LpNormalization (on the reduction engine) and LRN. */
#include <math.h>
#include <string.h>

#include "codegen/lower_reduce.h"

/* How a mean/variance normalization finishes: y = (x - mean) * a + b, with a and b per element
 * from the stats and optional per-channel or broadcast scale and bias. */
typedef enum { NM_LAYER, NM_INSTANCE, NM_MVN, NM_BATCH, NM_BATCH_TRAIN } NormKind;

typedef struct NormCfg {
  NormKind kind;
  double eps, momentum;
  int64_t channels;      /* INSTANCE, BATCH: C, the channel is out_off % C */
  KnShape norm_shape;    /* LAYER: the normalized dims X[axis:] that scale/bias broadcast to */
  KnDim norm_dims[RD_MAX_RANK * 2];
} NormCfg;

/* stats: 0 = sum then mean, 1 = sum of squared deviations then 1/stddev (BATCH: scale a). */
static void nm_init(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  c->stats[pass] = cg_const(k, p->stat_dtype[0], 0);
}

static void nm_step(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t);
  if (pass == 0) {
    c->stats[0] = rd_add(k, t, c->stats[0], x);
    return;
  }
  LLVMValueRef d = LLVMBuildFSub(k->b, x, c->stats[0], "");
  c->stats[1] = rd_add(k, t, c->stats[1], LLVMBuildFMul(k->b, d, d, ""));
}

/* Loads a per-channel or broadcast parameter (input i) for the current element, in type t. */
static LLVMValueRef param(CgKernel *k, const RdPlan *p, RdCtx *c, int i, LLVMValueRef chan) {
  const NormCfg *cfg = p->user;
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef idx = chan;
  if (cfg->kind == NM_LAYER) idx = rd_bcast_index(k, c->ridx, &cfg->norm_shape, cg_in_shape(k, i));
  return cg_convert(k, cg_load(k, k->in[i], cg_in_dtype(k, i), idx), cg_in_dtype(k, i), t);
}

static LLVMValueRef channel(CgKernel *k, const NormCfg *cfg, RdCtx *c) {
  return LLVMBuildURem(k->b, c->out_off, cg_i64(k, cfg->channels), "");
}

static void store_opt(CgKernel *k, int o, LLVMValueRef off, LLVMValueRef v, KnDtype t) {
  if (o >= k->node->n_outputs || !k->out[o]) return;
  cg_store(k, k->out[o], cg_out_dtype(k, o), off, cg_convert(k, v, t, cg_out_dtype(k, o)));
}

/* BatchNormalization in training mode: running stats out, then scale/shift from batch stats. */
static void batch_train_done(CgKernel *k, const RdPlan *p, RdCtx *c, LLVMValueRef var) {
  const NormCfg *cfg = p->user;
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef ch = channel(k, cfg, c), mom = cg_const(k, t, cfg->momentum);
  LLVMValueRef rest = cg_const(k, t, 1.0 - cfg->momentum);
  LLVMValueRef rm = LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, param(k, p, c, 3, ch), mom, ""),
                                  LLVMBuildFMul(k->b, c->stats[0], rest, ""), "");
  LLVMValueRef rv = LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, param(k, p, c, 4, ch), mom, ""),
                                  LLVMBuildFMul(k->b, var, rest, ""), "");
  store_opt(k, 1, ch, rm, t);
  store_opt(k, 2, ch, rv, t);
}

static void nm_done(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  const NormCfg *cfg = p->user;
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef n = cg_const(k, t, (double)p->n_red), eps = cg_const(k, t, cfg->eps);
  if (cfg->kind == NM_BATCH) { /* no reduction: the given stats */
    LLVMValueRef ch = channel(k, cfg, c);
    c->stats[0] = param(k, p, c, 3, ch);
    c->stats[1] = LLVMBuildFAdd(k->b, param(k, p, c, 4, ch), eps, "");
    c->stats[1] = LLVMBuildFDiv(k->b, cg_const(k, t, 1), rd_fn(k, "llvm.sqrt", c->stats[1]), "");
    return;
  }
  if (pass == 0) {
    c->stats[0] = LLVMBuildFDiv(k->b, c->stats[0], n, "");
    return;
  }
  LLVMValueRef var = LLVMBuildFDiv(k->b, c->stats[1], n, "");
  if (cfg->kind == NM_MVN) /* (x - mean) / (stddev + 1e-9), as the op's function body */
    c->stats[1] = LLVMBuildFAdd(k->b, rd_fn(k, "llvm.sqrt", var), eps, "");
  else
    c->stats[1] = rd_fn(k, "llvm.sqrt", LLVMBuildFAdd(k->b, var, eps, ""));
  c->stats[1] = LLVMBuildFDiv(k->b, cg_const(k, t, 1), c->stats[1], "");
  if (cfg->kind == NM_BATCH_TRAIN) batch_train_done(k, p, c, var);
  if (cfg->kind == NM_LAYER) {
    store_opt(k, 1, c->out_off, c->stats[0], t);
    store_opt(k, 2, c->out_off, c->stats[1], t);
  }
}

static LLVMValueRef nm_map(CgKernel *k, const RdPlan *p, RdCtx *c) {
  const NormCfg *cfg = p->user;
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t);
  LLVMValueRef y = LLVMBuildFMul(k->b, LLVMBuildFSub(k->b, x, c->stats[0], ""), c->stats[1], "");
  if (cfg->kind != NM_MVN) {
    LLVMValueRef ch = cfg->kind == NM_LAYER ? NULL : channel(k, cfg, c);
    y = LLVMBuildFMul(k->b, y, param(k, p, c, 1, ch), "");
    if (k->node->n_inputs > 2 && k->in[2]) y = LLVMBuildFAdd(k->b, y, param(k, p, c, 2, ch), "");
  }
  return cg_convert(k, y, t, p->map_dtype);
}

/* Runs a mean/variance normalization of input 0 over the masked dims. */
static KnStatus emit_norm(CgKernel *k, const NormCfg *cfg, const bool *mask, KnDtype acc) {
  const KnShape *s = cg_in_shape(k, 0);
  RdPlan plan = {0}, *p = &plan;
  if (!rd_geometry(p, s, mask)) return cg_unsupported(k, "too many dims");
  if (cg_numel(s) == 0) return KN_OK;
  p->src_dtype = cg_in_dtype(k, 0);
  p->n_stats = 2;
  p->stat_dtype[0] = p->stat_dtype[1] = acc;
  p->n_pass = cfg->kind == NM_BATCH ? 0 : 2;
  p->init = nm_init;
  p->step = nm_step;
  p->done = nm_done;
  p->map = nm_map;
  p->map_dtype = cg_out_dtype(k, 0);
  p->user = cfg;
  rd_emit(k, p);
  return KN_OK;
}

static KnStatus check_float(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  if (!ir_dtype_is_float(cg_in_dtype(k, 0))) return cg_unsupported(k, "non-float input");
  if (s->rank > RD_MAX_RANK * 2) return cg_unsupported(k, "too many dims");
  return KN_OK;
}

KnStatus cg_lower_layer_norm(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnShape *s = cg_in_shape(k, 0);
  NormCfg cfg = {.kind = NM_LAYER, .eps = ir_attr_float(k->node, "epsilon", 1e-5f)};
  int64_t axis = ir_attr_int(k->node, "axis", -1);
  if (axis < 0) axis += s->rank;
  if (axis < 0 || axis >= s->rank) return cg_unsupported(k, "axis out of range");
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  for (int d = (int)axis; d < s->rank; d++) mask[d] = true;
  cfg.norm_shape.rank = s->rank - (int)axis;
  cfg.norm_shape.dims = cfg.norm_dims;
  memcpy(cfg.norm_dims, s->dims + axis, (size_t)cfg.norm_shape.rank * sizeof *cfg.norm_dims);
  for (int i = 1; i < 3 && i < k->node->n_inputs; i++)
    if (k->in[i] && cg_in_shape(k, i)->rank > cfg.norm_shape.rank)
      return cg_unsupported(k, "scale or bias of higher rank than the normalized dims");
  int64_t stash = ir_attr_int(k->node, "stash_type", 1);
  KnDtype acc = cg_in_dtype(k, 0) == KN_F64 || stash == KN_F64 ? KN_F64 : KN_F32;
  return emit_norm(k, &cfg, mask, acc);
}

KnStatus cg_lower_instance_norm(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnShape *s = cg_in_shape(k, 0);
  if (s->rank < 2) return cg_unsupported(k, "input of rank < 2");
  NormCfg cfg = {.kind = NM_INSTANCE, .eps = ir_attr_float(k->node, "epsilon", 1e-5f),
                 .channels = s->dims[1].value};
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  for (int d = 2; d < s->rank; d++) mask[d] = true;
  return emit_norm(k, &cfg, mask, rd_float_acc(cg_in_dtype(k, 0)));
}

KnStatus cg_lower_mvn(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnShape *s = cg_in_shape(k, 0);
  NormCfg cfg = {.kind = NM_MVN, .eps = 1e-9};
  int64_t cnt;
  const int64_t *axes = ir_attr_ints(k->node, "axes", &cnt);
  static const int64_t dflt[3] = {0, 2, 3};
  if (!axes) {
    axes = dflt;
    cnt = 3;
  }
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  for (int64_t i = 0; i < cnt; i++) {
    int64_t ax = axes[i] < 0 ? axes[i] + s->rank : axes[i];
    if (ax < 0 || ax >= s->rank) return cg_unsupported(k, "axis out of range");
    mask[ax] = true;
  }
  return emit_norm(k, &cfg, mask, rd_float_acc(cg_in_dtype(k, 0)));
}

KnStatus cg_lower_batch_norm(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnNode *n = k->node;
  const KnShape *s = cg_in_shape(k, 0);
  if (s->rank < 2) return cg_unsupported(k, "input of rank < 2");
  if (n->opset < 9 && ir_attr_int(n, "spatial", 1) == 0) return cg_unsupported(k, "spatial=0");
  for (int i = 1; i < 5; i++)
    if (cg_numel(cg_in_shape(k, i)) != s->dims[1].value)
      return cg_unsupported(k, "scale, bias, mean or var not of shape [C]");
  bool train = n->opset >= 14 && ir_attr_int(n, "training_mode", 0) != 0;
  bool extra = false;
  for (int o = 1; o < n->n_outputs; o++) extra |= k->out[o] != NULL;
  if (extra && !train) return cg_unsupported(k, "training-mode outputs (mean, var, saved stats)");
  NormCfg cfg = {.kind = train ? NM_BATCH_TRAIN : NM_BATCH, .eps = ir_attr_float(n, "epsilon", 1e-5f),
                 .momentum = ir_attr_float(n, "momentum", 0.9f), .channels = s->dims[1].value};
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  for (int d = 2; d < s->rank; d++) mask[d] = true;
  if (train) mask[0] = true;
  return emit_norm(k, &cfg, mask, rd_float_acc(cg_in_dtype(k, 0)));
}

/* ---- LpNormalization: x / ||x||_p along axis (p = 1 or 2) --------------------------------- */
static void lp_init(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  (void)pass;
  c->stats[0] = cg_const(k, p->stat_dtype[0], 0);
}

static void lp_step(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t);
  LLVMValueRef v = p->user ? LLVMBuildFMul(k->b, x, x, "") : rd_fn(k, "llvm.fabs", x);
  (void)pass;
  c->stats[0] = rd_add(k, t, c->stats[0], v);
}

static void lp_done(CgKernel *k, const RdPlan *p, int pass, RdCtx *c) {
  (void)pass;
  if (p->user) c->stats[0] = rd_fn(k, "llvm.sqrt", c->stats[0]);
}

static LLVMValueRef lp_map(CgKernel *k, const RdPlan *p, RdCtx *c) {
  KnDtype t = p->stat_dtype[0];
  LLVMValueRef x = cg_convert(k, c->x, p->src_dtype, t);
  return cg_convert(k, LLVMBuildFDiv(k->b, x, c->stats[0], ""), t, p->map_dtype);
}

KnStatus cg_lower_lp_norm(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnShape *s = cg_in_shape(k, 0);
  int64_t axis = ir_attr_int(k->node, "axis", -1), pw = ir_attr_int(k->node, "p", 2);
  if (pw != 1 && pw != 2) return cg_unsupported(k, "p other than 1 or 2");
  if (axis < 0) axis += s->rank;
  if (axis < 0 || axis >= s->rank) return cg_unsupported(k, "axis out of range");
  if (cg_numel(s) == 0) return KN_OK;
  bool mask[RD_MAX_RANK * 2 + 1] = {0};
  mask[axis] = true;
  RdPlan plan = {0}, *p = &plan;
  if (!rd_geometry(p, s, mask)) return cg_unsupported(k, "too many dims");
  p->src_dtype = cg_in_dtype(k, 0);
  p->n_stats = 1;
  p->stat_dtype[0] = rd_float_acc(p->src_dtype);
  p->n_pass = 1;
  p->init = lp_init;
  p->step = lp_step;
  p->done = lp_done;
  p->map = lp_map;
  p->map_dtype = cg_out_dtype(k, 0);
  p->user = pw == 2 ? (const void *)p : NULL; /* non-NULL marks p = 2 */
  rd_emit(k, p);
  return KN_OK;
}

/* ---- LRN: x / (bias + alpha/size * sum of squares over a window of channels)^beta ---------- */
typedef struct LrnCfg {
  int64_t c, spatial, lo, hi; /* window [ch - lo, ch + hi] */
  double alpha, beta, bias;
  KnDtype t, acc;
} LrnCfg;

/* Item i = one (n, c) plane: for every spatial position, sum over the window (clipped). */
static void lrn_body(CgKernel *k, LLVMValueRef i, void *user) {
  const LrnCfg *g = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef ch = LLVMBuildURem(b, i, cg_i64(k, g->c), "");
  LLVMValueRef plane0 = LLVMBuildMul(b, LLVMBuildSub(b, i, ch, ""), cg_i64(k, g->spatial), "");
  LLVMValueRef lo = LLVMBuildSub(b, ch, cg_i64(k, g->lo), ""), hi = LLVMBuildAdd(b, ch, cg_i64(k, g->hi + 1), "");
  lo = cg_select(k, LLVMBuildICmp(b, LLVMIntSLT, lo, cg_i64(k, 0), ""), cg_i64(k, 0), lo);
  hi = cg_select(k, LLVMBuildICmp(b, LLVMIntSGT, hi, cg_i64(k, g->c), ""), cg_i64(k, g->c), hi);
  LLVMValueRef sum = cg_var(k, cg_compute_type(k->m, g->acc), NULL);
  CgLoop ls = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, g->spatial));
  LLVMBuildStore(b, cg_const(k, g->acc, 0), sum);
  CgLoop lc = cg_loop_begin(k, lo, hi);
  LLVMValueRef off = LLVMBuildAdd(b, LLVMBuildAdd(b, plane0, LLVMBuildMul(b, lc.i, cg_i64(k, g->spatial), ""), ""), ls.i, "");
  LLVMValueRef xw = cg_convert(k, cg_load(k, k->in[0], g->t, off), g->t, g->acc);
  LLVMValueRef acc = LLVMBuildLoad2(b, cg_compute_type(k->m, g->acc), sum, "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, acc, LLVMBuildFMul(b, xw, xw, ""), ""), sum);
  cg_loop_end(k, &lc);
  LLVMValueRef own = LLVMBuildAdd(b, LLVMBuildMul(b, i, cg_i64(k, g->spatial), ""), ls.i, "");
  LLVMValueRef sq = LLVMBuildLoad2(b, cg_compute_type(k->m, g->acc), sum, "");
  LLVMValueRef base = LLVMBuildFAdd(b, cg_const(k, g->acc, g->bias),
                                    LLVMBuildFMul(b, cg_const(k, g->acc, g->alpha), sq, ""), "");
  LLVMValueRef x = cg_convert(k, cg_load(k, k->in[0], g->t, own), g->t, g->acc);
  LLVMValueRef y = LLVMBuildFDiv(b, x, cg_libm2(k, "pow", base, cg_const(k, g->acc, g->beta)), "");
  cg_store(k, k->out[0], g->t, own, cg_convert(k, y, g->acc, g->t));
  cg_loop_end(k, &ls);
}

KnStatus cg_lower_lrn(CgKernel *k) {
  KnStatus st = check_float(k);
  if (st) return st;
  const KnShape *s = cg_in_shape(k, 0);
  int64_t size = ir_attr_int(k->node, "size", 0);
  if (s->rank < 2) return cg_unsupported(k, "input of rank < 2");
  if (size < 1) return cg_unsupported(k, "size missing or < 1");
  LrnCfg g = {.c = s->dims[1].value, .lo = (size - 1) / 2, .hi = size / 2,
              .bias = ir_attr_float(k->node, "bias", 1.0f), .beta = ir_attr_float(k->node, "beta", 0.75f),
              .t = cg_in_dtype(k, 0), .acc = rd_float_acc(cg_in_dtype(k, 0))};
  g.alpha = ir_attr_float(k->node, "alpha", 1e-4f) / (double)size;
  g.spatial = cg_numel(s) / (s->dims[0].value * g.c > 0 ? s->dims[0].value * g.c : 1);
  int64_t planes = s->dims[0].value * g.c;
  if (cg_numel(s) == 0) return KN_OK;
  cg_parallel_for(k, planes, g.spatial * size >= 16384 ? 1 : 16384 / (g.spatial * size), lrn_body, &g);
  return KN_OK;
}
