/* block_layout.c - chains of f32 2-D convs onto the NCHW16c layout (channels in blocks of 16).
 * Rewrites each chosen Conv / kiln.FusedConv(X, W, B?, R?) with W a constant f32 [M, C, KH, KW]
 * (group 1, no dilation, C and M multiples of 16) into
 *   kiln.FusedConv(Xb, W', B?, Rb?) {packed = 16, kernel_shape} -> Yb
 * with Xb, Rb, Yb [N, C/16, H, W, 16] (channel c of pixel (h, w) at [n, c/16, h, w, c%16]) and
 * W' = [M/16, C/16, KH, KW, 16, 16], W'[ob][cb][kh][kw][i][o] = W[16ob + o][16cb + i][kh][kw]: the
 * order codegen/lower_conv_nchwc.c's tiles load. A value that enters the chain gets one
 * kiln.ToBlocked; a result read outside it one kiln.FromBlocked. A channel Concat of blocked
 * values (each a whole number of blocks) stays in the chain as the same Concat on axis 1 of the
 * blocked twins, and a 2-D MaxPool as a pool over (H, W, 16) with a window of 1 along the block.
 * Chosen: every such conv with a kernel wider than 1x1 (on small maps the im2col GEMM wastes the
 * lanes its pixels do not fill), and the 1x1 convs next to a chosen conv (making or reading their
 * X or residual), so a chain is not cut by conversions. A lone 1x1 conv (mobilenet's pointwise
 * convs between depthwise ones) stays. A conv on fewer than 16 channels (an image) reads X in
 * NCHW; it is chosen when its result only goes on into the chain (through a MaxPool at most). */
#include <string.h>

#include "passes/passes.h"

#define BLOCK 16

/* W's constant weights when node n is a conv the blocked kernel takes, else NULL. */
static const KnTensor *blockable_weight(const KnGraph *g, const KnNode *n) {
  bool conv = n->op == KN_OP_Conv && n->domain == KN_DOMAIN_ONNX;
  if (!conv && (n->op != KN_OP_FusedConv || n->domain != KN_DOMAIN_KILN)) return NULL;
  if (n->n_inputs < 2 || n->n_inputs > 3 + !conv || n->n_outputs != 1 || ir_attr(n, "packed")) return NULL;
  const KnTensor *t = pass_constant_of(n->inputs[1]);
  if (!t || pass_count_uses(g, n->inputs[1]) != 1 || t->dtype != KN_F32 || t->rank != 4) return NULL;
  if (!pass_is_f32_tensor(n->inputs[0]) || !pass_is_f32_tensor(n->outputs[0])) return NULL;
  if (n->n_inputs > 2 && n->inputs[2] && !pass_is_f32_tensor(n->inputs[2])) return NULL;
  if (n->n_inputs > 3 && n->inputs[3] && !pass_is_f32_tensor(n->inputs[3])) return NULL;
  const KnShape *xs = &n->inputs[0]->type.shape, *ys = &n->outputs[0]->type.shape;
  if (xs->rank != 4 || ys->rank != 4 || ir_attr_int(n, "group", 1) != 1) return NULL;
  for (int d = 0; d < 4; d++)
    if (xs->dims[d].value < 1 || ys->dims[d].value < 1) return NULL;
  int64_t cnt;
  const int64_t *dil = ir_attr_ints(n, "dilations", &cnt);
  for (int64_t i = 0; dil && i < cnt; i++)
    if (dil[i] != 1) return NULL;
  /* fewer than 16 input channels (an image): read in NCHW by the kernel */
  if (t->dims[0] % BLOCK || (t->dims[1] % BLOCK && t->dims[1] >= BLOCK) || t->dims[1] != xs->dims[1].value || t->dims[3] > 16)
    return NULL;
  return t;
}

static KnTensor *packed_copy(KnGraph *g, const KnTensor *w, KnError *err) {
  int64_t M = w->dims[0], C = w->dims[1], taps = w->dims[2] * w->dims[3], CB = (C + BLOCK - 1) / BLOCK;
  int64_t dims[6] = {M / BLOCK, CB, w->dims[2], w->dims[3], BLOCK, BLOCK}; /* zero past C */
  KnTensor *t = ir_tensor_new(g->arena, KN_F32, 6, dims, err); /* checks the size */
  if (!t) return NULL;
  const float *src = w->data;
  float *dst = t->data;
  /* block by block (taps x 16 x 16 floats, in L1), each source row of taps read in order */
  for (int64_t ob = 0; ob < M / BLOCK; ob++)
    for (int64_t cb = 0; cb < CB; cb++) {
      float *blk = dst + (ob * CB + cb) * taps * BLOCK * BLOCK;
      for (int64_t o = 0; o < BLOCK; o++)
        for (int64_t i = 0; i < BLOCK && cb * BLOCK + i < C; i++) {
          const float *row = src + ((ob * BLOCK + o) * C + cb * BLOCK + i) * taps;
          for (int64_t tap = 0; tap < taps; tap++) blk[(tap * BLOCK + i) * BLOCK + o] = row[tap];
        }
    }
  return t;
}

/* ---- which convs ---------------------------------------------------------------------------- */
/* Whether every reader of v is a chosen conv (as X or residual) or a MaxPool (2-D) whose readers
 * all are. */
static bool feeds_chosen_only(const KnGraph *g, const bool *chosen, const KnValue *v, int depth) {
  int uses = pass_count_uses(g, v), seen = 0;
  for (int j = 0; j < g->n_nodes; j++) {
    const KnNode *n = g->nodes[j];
    for (int i = 0; i < n->n_inputs; i++) {
      if (n->inputs[i] != v) continue;
      seen++;
      bool conv = chosen[j] && (i == 0 || i == 3);
      bool pool = depth == 0 && n->op == KN_OP_MaxPool && n->n_outputs == 1 && feeds_chosen_only(g, chosen, n->outputs[0], 1);
      if (!conv && !pool) return false;
    }
  }
  return uses > 0 && seen == uses; /* no graph output or subgraph reads it */
}

static bool reads_as_x_or_residual(const KnNode *n, const KnValue *v) {
  return n->inputs[0] == v || (n->n_inputs > 3 && n->inputs[3] == v);
}

/* chosen[i]: node i goes blocked. Seeds are the wider-than-1x1 convs; a 1x1 conv joins when the
 * conv producing its X or residual is chosen, or a chosen conv reads its result as X or residual. */
static void choose(const KnGraph *g, const bool *able, bool *chosen) {
  for (int i = 0; i < g->n_nodes; i++) {
    const KnTensor *w = able[i] ? pass_constant_of(g->nodes[i]->inputs[1]) : NULL;
    chosen[i] = w && w->dims[2] * w->dims[3] > 1 && w->dims[1] >= BLOCK;
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (int i = 0; i < g->n_nodes; i++) {
      const KnNode *n = g->nodes[i];
      if (!chosen[i]) continue;
      const KnNode *p = n->inputs[0]->producer;
      if (p && p->graph == g && able[p->id] && !chosen[p->id]) chosen[p->id] = grew = true;
      for (int j = 0; j < g->n_nodes; j++)
        if (able[j] && !chosen[j] && reads_as_x_or_residual(g->nodes[j], n->outputs[0])) chosen[j] = grew = true;
      const KnNode *q = n->n_inputs > 3 && n->inputs[3] ? n->inputs[3]->producer : NULL; /* a residual's conv */
      if (q && q->graph == g && able[q->id] && !chosen[q->id]) chosen[q->id] = grew = true;
    }
  }
  /* a conv on an image's few channels (read in NCHW, so no conversion in) only when its result
   * goes on in the chain, possibly through a MaxPool */
  for (int i = 0; i < g->n_nodes; i++) {
    const KnTensor *w = able[i] && !chosen[i] ? pass_constant_of(g->nodes[i]->inputs[1]) : NULL;
    if (w && w->dims[1] < BLOCK) chosen[i] = feeds_chosen_only(g, chosen, g->nodes[i]->outputs[0], 0);
  }
}

/* ---- rewriting ------------------------------------------------------------------------------ */
typedef struct Rw {
  KnGraph *g;
  KnValue **blocked;   /* by value id: its NCHW16c twin, or NULL */
  KnNode **order;      /* the new node order */
  int n_order;
  KnError *err;
} Rw;

static bool give_back(Rw *r, KnNode *n, int64_t channels);

/* v's blocked twin, made by a new kiln.ToBlocked placed next in the order when it has none. */
static KnValue *blocked_of(Rw *r, KnValue *v) {
  if (r->blocked[v->id]) return r->blocked[v->id];
  KnNode *to = ir_add_node(r->g, KN_OP_ToBlocked, v->name, &v, 1, 1, r->err);
  if (!to || !ir_set_attr_int(to, "block", BLOCK)) return NULL;
  to->domain = KN_DOMAIN_KILN, to->opset = 1;
  r->order[r->n_order++] = to;
  return r->blocked[v->id] = to->outputs[0];
}

/* Node n onto blocked values: packed weights, Xb and Rb in, Yb out, and a kiln.FromBlocked that
 * gives Y (its name, type and other readers) back in NCHW. */
static bool rewrite(Rw *r, KnNode *n, const KnTensor *w) {
  KnValue *xb = n->inputs[0]->type.shape.dims[1].value < BLOCK ? n->inputs[0] : blocked_of(r, n->inputs[0]);
  KnValue *rb = n->n_inputs > 3 && n->inputs[3] ? blocked_of(r, n->inputs[3]) : NULL;
  KnTensor *t = xb && (rb || n->n_inputs <= 3 || !n->inputs[3]) ? packed_copy(r->g, w, r->err) : NULL;
  KnValue *wv = t ? ir_add_init(r->g, NULL, t) : NULL;
  if (!wv) return false;
  n->inputs[0] = xb, n->inputs[1] = wv;
  if (rb) n->inputs[3] = rb;
  if (!ir_set_attr_int(n, "packed", BLOCK) || !ir_set_attr_ints(n, "kernel_shape", w->dims + 2, 2)) return false;
  n->op = KN_OP_FusedConv, n->domain = KN_DOMAIN_KILN, n->opset = 1; /* a lone Conv: no epilogue */
  r->order[r->n_order++] = n;
  return give_back(r, n, w->dims[0]);
}

/* Y's NCHW value back from a node that now makes its blocked twin yb: a kiln.FromBlocked of
 * `channels` placed next in the order takes over Y (its name, type and other readers). */
static bool give_back(Rw *r, KnNode *n, int64_t channels) {
  KnValue *y = n->outputs[0];
  KnNode *from = ir_add_node(r->g, KN_OP_FromBlocked, y->name, &y, 1, 1, r->err);
  if (!from || !ir_set_attr_int(from, "block", BLOCK) || !ir_set_attr_int(from, "channels", channels)) return false;
  from->domain = KN_DOMAIN_KILN, from->opset = 1;
  KnValue *yb = from->outputs[0];
  n->outputs[0] = yb, yb->producer = n, yb->out_index = 0;
  from->outputs[0] = y, y->producer = from, y->out_index = 0;
  from->inputs[0] = yb;
  r->order[r->n_order++] = from;
  r->blocked[y->id] = yb;
  return true;
}

/* A channel Concat of values that all have blocked twins, each a whole number of blocks: the
 * same Concat on the twins (axis 1 of [N, C/16, H, W, 16]). */
static bool concat_of_blocked(const Rw *r, const KnNode *n) {
  if (n->op != KN_OP_Concat || n->domain != KN_DOMAIN_ONNX || n->n_outputs != 1 || n->n_inputs < 1) return false;
  const KnShape *ys = &n->outputs[0]->type.shape;
  int64_t axis = ir_attr_int(n, "axis", 0);
  if (ys->rank != 4 || (axis != 1 && axis != -3)) return false;
  for (int j = 0; j < n->n_inputs; j++) {
    const KnValue *x = n->inputs[j];
    if (!x || x->graph != r->g || !r->blocked[x->id] || x->type.shape.rank != 4 || x->type.shape.dims[1].value % BLOCK) return false;
  }
  return true;
}

static bool rewrite_concat(Rw *r, KnNode *n) {
  for (int j = 0; j < n->n_inputs; j++) n->inputs[j] = r->blocked[n->inputs[j]->id];
  if (!ir_set_attr_int(n, "axis", 1)) return false;
  r->order[r->n_order++] = n;
  return give_back(r, n, n->outputs[0]->type.shape.dims[1].value);
}

/* A 2-D MaxPool (explicit pads, no dilation, no Indices) of a value with a blocked twin: the same
 * pool over (H, W, 16) of the twin with a window of 1 along the block. */
static bool pool_of_blocked(const Rw *r, const KnNode *n) {
  if (n->op != KN_OP_MaxPool || n->domain != KN_DOMAIN_ONNX || n->n_inputs != 1 || n->n_outputs != 1) return false;
  const KnValue *x = n->inputs[0];
  int64_t cnt;
  const int64_t *d = ir_attr_ints(n, "dilations", &cnt);
  for (int64_t i = 0; d && i < cnt; i++)
    if (d[i] != 1) return false;
  const char *pad = ir_attr_string(n, "auto_pad", "NOTSET");
  return x && x->graph == r->g && r->blocked[x->id] && x->type.shape.rank == 4 && x->type.shape.dims[1].value % BLOCK == 0 &&
         (!strcmp(pad, "NOTSET") || !*pad) && ir_attr_int(n, "storage_order", 0) == 0 && ir_attr_ints(n, "kernel_shape", &cnt) &&
         cnt == 2;
}

/* attr (2 entries per spatial dim when pads, else 1) widened by the block dim's: 1, or 0 for pads */
static bool widen_attr(KnNode *n, const char *name, int per_dim, int64_t dflt, int64_t extra) {
  int64_t cnt, v[6];
  const int64_t *a = ir_attr_ints(n, name, &cnt);
  if (a && cnt != 2 * per_dim) return false;
  for (int s = 0; s < per_dim; s++)
    for (int i = 0; i < 3; i++) v[s * 3 + i] = i < 2 ? (a ? a[s * 2 + i] : dflt) : extra;
  return ir_set_attr_ints(n, name, v, 3 * per_dim);
}

static bool rewrite_pool(Rw *r, KnNode *n) {
  n->inputs[0] = r->blocked[n->inputs[0]->id];
  if (!widen_attr(n, "kernel_shape", 1, 1, 1) || !widen_attr(n, "strides", 1, 1, 1) || !widen_attr(n, "pads", 2, 0, 0))
    return false;
  r->order[r->n_order++] = n;
  return give_back(r, n, n->outputs[0]->type.shape.dims[1].value);
}

bool pass_block_layout(KnGraph *g, KnPassCtx *ctx) {
  ir_graph_renumber(g);
  int nn = g->n_nodes;
  bool *able = ir_arena_calloc(g->arena, (size_t)nn + 1, 2 * sizeof(bool));
  if (!able) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  bool *chosen = able + nn + 1;
  for (int i = 0; i < nn; i++) able[i] = blockable_weight(g, g->nodes[i]) != NULL;
  choose(g, able, chosen);
  int count = 0;
  for (int i = 0; i < nn; i++) count += chosen[i];
  if (!count) return false;
  /* a chosen conv adds at most three nodes (ToBlocked for X and R, FromBlocked for Y), a Concat
   * of blocked values one (FromBlocked) */
  Rw r = {g, ir_arena_calloc(g->arena, (size_t)g->n_values + 1, sizeof(KnValue *)),
          ir_arena_calloc(g->arena, 4 * (size_t)nn + 1, sizeof(KnNode *)), 0, ctx->err};
  if (!r.blocked || !r.order) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  for (int i = 0; i < nn; i++) {
    KnNode *n = g->nodes[i];
    const KnTensor *w = chosen[i] ? blockable_weight(g, n) : NULL;
    bool concat = !w && concat_of_blocked(&r, n), pool = !w && !concat && pool_of_blocked(&r, n);
    if (!w && !concat && !pool) {
      r.order[r.n_order++] = n;
      continue;
    }
    if (!(concat ? rewrite_concat(&r, n) : pool ? rewrite_pool(&r, n) : rewrite(&r, n, w))) {
      if (ctx->err->status == KN_OK) kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory");
      return false;
    }
    ctx->rewrites++;
  }
  /* ir_add_node appended the new nodes: put every node where the rewrite placed it, and drop the
   * FromBlocked nodes whose NCHW result only blocked nodes read */
  memcpy(g->nodes, r.order, sizeof *r.order * (size_t)r.n_order);
  ir_graph_renumber(g);
  bool *keep = ir_arena_calloc(g->arena, (size_t)g->n_nodes + 1, sizeof *keep);
  if (!keep) return kn_fail(ctx->err, KN_ERR_NOMEM, "out of memory"), false;
  for (int i = 0; i < g->n_nodes; i++)
    keep[i] = g->nodes[i]->op != KN_OP_FromBlocked || pass_count_uses(g, g->nodes[i]->outputs[0]) > 0;
  ir_graph_remove_nodes(g, keep);
  ir_graph_renumber(g);
  return ir_infer_graph(g, ctx->err) == KN_OK;
}
