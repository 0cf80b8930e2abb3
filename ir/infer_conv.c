/* infer_conv.c - shape inference for convolutions and pooling: sliding windows over spatial dims. */
#include <string.h>

#include "ir/infer_b_internal.h"
#include "ir/infer_params.h"

typedef enum { PAD_NOTSET, PAD_SAME, PAD_VALID } PadMode;

/* The sliding window of a conv or pool over n spatial dims; kernel entries are -1 when unknown. */
typedef struct Window {
  int n;
  int64_t *k, *s, *d, *pb, *pe, *opad;
  PadMode mode;
  bool ceil;
} Window;

static KnStatus read_pad_mode(const KnNode *n, PadMode *out, KnError *err) {
  const char *p = ir_attr_string(n, "auto_pad", "NOTSET");
  if (!strcmp(p, "NOTSET") || !p[0]) *out = PAD_NOTSET;
  else if (!strcmp(p, "SAME_UPPER") || !strcmp(p, "SAME_LOWER")) *out = PAD_SAME;
  else if (!strcmp(p, "VALID")) *out = PAD_VALID;
  else
    return ir_infer_fail(err, n, KN_ERR_INVALID,
                         "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", p);
  return KN_OK;
}

/* Copies an ints attribute of count entries (default dflt each); min is the smallest legal value. */
static KnStatus read_ints(const KnNode *n, const char *name, int count, int64_t dflt, int64_t min,
                          int64_t *out, KnError *err) {
  int64_t got;
  const int64_t *v = ir_attr_ints(n, name, &got);
  if (v && got != count)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute %s has %lld entries, expected %d", name,
                         (long long)got, count);
  for (int i = 0; i < count; i++) {
    out[i] = v ? v[i] : dflt;
    if (out[i] < min || out[i] > ((int64_t)1 << 40))
      return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute %s[%d] = %lld, expected %lld to 2^40",
                           name, i, (long long)out[i], (long long)min);
  }
  return KN_OK;
}

/* Reads kernel_shape (or the weight's spatial dims: input w, -1 for none), strides, dilations,
 * pads, output_padding and auto_pad for n spatial dims. */
static KnStatus read_window(const KnNode *n, int nsp, int w, Window *win, KnError *err) {
  win->n = nsp;
  int64_t *buf = ir_arena_calloc(n->graph->arena, (size_t)(nsp ? nsp : 1), 7 * sizeof *buf);
  if (!buf) return ib_nomem(err);
  win->k = buf, win->s = buf + nsp, win->d = buf + 2 * nsp, win->pb = buf + 3 * nsp;
  win->pe = buf + 4 * nsp, win->opad = buf + 5 * nsp;
  win->ceil = ir_attr_int(n, "ceil_mode", 0) != 0;
  KnStatus st = read_pad_mode(n, &win->mode, err);
  if (st) return st;
  if (ir_attr(n, "kernel_shape")) st = read_ints(n, "kernel_shape", nsp, 1, 1, win->k, err);
  else if (w < 0) return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute kernel_shape is missing");
  else
    for (int i = 0; i < nsp; i++) win->k[i] = ib_dim(n, w, i + 2).value;
  for (int i = 0; w >= 0 && i < nsp && !st; i++)
    st = ib_check_dim(n, IR_DIM(win->k[i]), ib_dim(n, w, i + 2), "kernel_shape vs weight dim", err);
  if (!st) st = read_ints(n, "strides", nsp, 1, 1, win->s, err);
  if (!st) st = read_ints(n, "dilations", nsp, 1, 1, win->d, err);
  if (!st) st = read_ints(n, "output_padding", nsp, 0, 0, win->opad, err);
  if (!st) st = read_ints(n, "pads", 2 * nsp, 0, 0, win->pb, err); /* fills pb then pe */
  return st;
}

/* a*b + c for non-negative operands; false on overflow. */
static bool mul_add(int64_t a, int64_t b, int64_t c, int64_t *out) {
  int64_t p;
  return !ir_mul_overflows(a, b, &p) && !ir_add_overflows(p, c, out);
}

static int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0);
}

static KnStatus overflow(const KnNode *n, int i, KnError *err) {
  return ir_infer_fail(err, n, KN_ERR_LIMIT, "spatial dim %d: output size overflows", i);
}

/* Stride 1 with "same" padding maps a dim onto itself, so a symbolic dim can flow through. */
static bool keeps_size(const Window *w, int i) {
  int64_t effk;
  if (w->s[i] != 1 || w->k[i] < 1 || !mul_add(w->k[i] - 1, w->d[i], 1, &effk)) return false;
  if (w->mode == PAD_SAME) return true;
  int64_t pads = w->mode == PAD_VALID ? 0 : w->pb[i] + w->pe[i];
  return pads + 1 == effk;
}

/* Number of window positions along one dim (unknown when the input dim or kernel is). */
static KnStatus window_out(const KnNode *n, const Window *w, int i, KnDim in, KnDim *out,
                           KnError *err) {
  *out = IR_DIM_UNKNOWN;
  if (in.value < 0 && in.sym && keeps_size(w, i)) *out = in;
  if (in.value < 0 || w->k[i] < 1) return KN_OK;
  if (w->mode == PAD_SAME) {
    *out = IR_DIM(ceil_div(in.value, w->s[i]));
    return KN_OK;
  }
  int64_t pb = w->mode == PAD_VALID ? 0 : w->pb[i], pe = w->mode == PAD_VALID ? 0 : w->pe[i];
  int64_t effk, total;
  if (!mul_add(w->k[i] - 1, w->d[i], 1, &effk) || !mul_add(in.value, 1, pb + pe, &total))
    return overflow(n, i, err);
  if (total < effk)
    return ir_infer_fail(err, n, KN_ERR_INVALID,
                         "spatial dim %d: padded input %lld is smaller than the kernel extent %lld",
                         i, (long long)total, (long long)effk);
  int64_t pos = w->ceil ? ceil_div(total - effk, w->s[i]) : (total - effk) / w->s[i];
  /* The last window must start inside the input or its leading pad (ceil_mode). */
  if (w->ceil && pos > 0 && pos >= ceil_div(in.value + pb, w->s[i])) pos--;
  *out = IR_DIM(pos + 1);
  return KN_OK;
}

static KnStatus set_windowed(KnNode *n, int o, KnDtype dt, KnDim n_dim, KnDim c_dim, const Window *w,
                             KnError *err) {
  KnDim *dims = ib_dims(n, w->n + 2);
  if (!dims) return ib_nomem(err);
  dims[0] = n_dim, dims[1] = c_dim;
  for (int i = 0; i < w->n; i++) {
    KnStatus st = window_out(n, w, i, ib_dim(n, 0, i + 2), &dims[i + 2], err);
    if (st) return st;
  }
  return ir_set_output(n, o, dt, w->n + 2, dims, err);
}

/* Where Conv, ConvInteger and QLinearConv keep x, w, bias and the output dtype's source. */
static void conv_inputs(const KnNode *n, int *w, int *bias) {
  *w = n->op == KN_OP_QLinearConv ? 3 : 1;
  *bias = n->op == KN_OP_QLinearConv ? 8 : n->op == KN_OP_Conv || n->op == KN_OP_FusedConv ? 2 : -1;
}

static KnStatus conv_dtype(const KnNode *n, KnDtype *dt, KnError *err) {
  const KnType *t;
  KnStatus st;
  if (n->op == KN_OP_ConvInteger) *dt = KN_I32;
  else if (n->op == KN_OP_QLinearConv) {
    if ((st = ib_tensor(n, 7, &t, err))) return st;
    *dt = t->dtype;
  } else {
    if ((st = ib_check_same_dtype(n, 0, 1, err))) return st;
    *dt = ir_input_tensor(n, 0)->dtype;
  }
  return KN_OK;
}

/* Channels: x has C = group * w[1]; bias has w[0] entries; w[0] divides by group. */
static KnStatus conv_check_channels(const KnNode *n, int w, int bias, int64_t group, KnError *err) {
  KnDim c = ib_dim(n, 0, 1), wc = ib_dim(n, w, 1), m = ib_dim(n, w, 0);
  if (c.value >= 0 && wc.value >= 0 && c.value != wc.value * group)
    return ir_infer_fail(err, n, KN_ERR_INVALID,
                         "input 0 has %lld channels but weight (input %d) has %lld per group x "
                         "group %lld, expected equal",
                         (long long)c.value, w, (long long)wc.value, (long long)group);
  if (m.value >= 0 && m.value % group)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "weight has %lld output channels, expected a "
                         "multiple of group %lld", (long long)m.value, (long long)group);
  KnStatus st = bias >= 0 && ir_input(n, bias) ? ib_check_rank(n, bias, 1, err) : KN_OK;
  if (!st && bias >= 0 && ib_rank(n, bias) == 1)
    st = ib_check_dim(n, ib_dim(n, bias, 0), m, "bias length vs weight output channels", err);
  return st;
}

/* kiln.FusedConv {packed = 16} (passes/block_layout.c): NCHW16c in and out. X [N, C/16, H, W, 16]
 * (or NCHW [N, C, H, W] with C < 16), W [M/16, ceil(C/16), KH, KW, 16, 16], bias [M], residual and
 * Y [N, M/16, OH, OW, 16]; the window from kernel_shape; 2-D and group 1 only. */
static KnStatus infer_packed_conv(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  bool plain = ib_rank(node, 0) == 4; /* an image's few channels, read in NCHW */
  if (!st) st = ib_check_rank(node, 0, plain ? 4 : 5, err);
  if (!st) st = ib_check_rank(node, 1, 6, err);
  if (st) return st;
  int64_t blk = ir_attr_int(node, "packed", 0), m;
  if (blk != 16 || ir_attr_int(node, "group", 1) != 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "packed = %lld and group = %lld, expected 16 and 1",
                         (long long)blk, (long long)ir_attr_int(node, "group", 1));
  KnDim mb = ib_dim(node, 1, 0), md = IR_DIM_UNKNOWN;
  if (mb.value >= 0 && ir_mul_overflows(mb.value, blk, &m)) return ir_infer_fail(err, node, KN_ERR_LIMIT, "output channels overflow");
  if (mb.value >= 0) md = IR_DIM(m);
  KnDim c = ib_dim(node, 0, 1);
  if (plain && c.value >= blk)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "NCHW input has %lld channels, expected under 16", (long long)c.value);
  st = ib_check_dim(node, plain ? IR_DIM(1) : c, ib_dim(node, 1, 1), "channel blocks of X and W", err);
  if (!st && !plain) st = ib_check_dim(node, ib_dim(node, 0, 4), IR_DIM(blk), "X's block", err);
  for (int d = 4; d < 6 && !st; d++) st = ib_check_dim(node, ib_dim(node, 1, d), IR_DIM(blk), "W's block", err);
  Window win = {0};
  if (!st) st = read_window(node, 2, -1, &win, err);
  for (int i = 0; i < 2 && !st; i++)
    st = ib_check_dim(node, IR_DIM(win.k[i]), ib_dim(node, 1, i + 2), "kernel_shape vs packed weight dim", err);
  if (!st && ir_input(node, 2)) st = ib_check_rank(node, 2, 1, err);
  if (!st && ir_input(node, 2)) st = ib_check_dim(node, ib_dim(node, 2, 0), md, "bias length vs output channels", err);
  KnDim *dims = st ? NULL : ib_dims(node, 5);
  if (st || !dims) return st ? st : ib_nomem(err);
  win.ceil = false;
  dims[0] = ib_dim(node, 0, 0), dims[1] = mb, dims[4] = IR_DIM(blk);
  for (int i = 0; i < 2 && !st; i++) st = window_out(node, &win, i, ib_dim(node, 0, i + 2), &dims[i + 2], err);
  return st ? st : ir_set_output(node, 0, x->dtype, 5, dims, err);
}

KnStatus infer_conv(KnNode *node, KnError *err) {
  if (node->op == KN_OP_FusedConv && ir_attr(node, "packed")) return infer_packed_conv(node, err);
  int w, bias;
  const KnType *x, *wt;
  KnDtype dt;
  conv_inputs(node, &w, &bias);
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_tensor(node, w, &wt, err);
  if (!st) st = conv_dtype(node, &dt, err);
  if (st) return st;
  int rank = x->shape.rank >= 0 ? x->shape.rank : wt->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, dt, -1, NULL, err);
  if (rank < 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 2", rank);
  if ((st = ib_check_rank(node, w, rank, err)) || (st = ib_check_rank(node, 0, rank, err))) return st;
  int64_t group = ir_attr_int(node, "group", 1);
  if (group < 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "group = %lld, expected 1 or more", (long long)group);
  if ((st = conv_check_channels(node, w, bias, group, err))) return st;
  Window win;
  if ((st = read_window(node, rank - 2, w, &win, err))) return st;
  win.ceil = false;
  return set_windowed(node, 0, dt, ib_dim(node, 0, 0), ib_dim(node, w, 0), &win, err);
}

/* One ConvTranspose output dim: stride*(in-1) + output_padding + kernel extent - pads. */
static KnStatus conv_transpose_dim(const KnNode *n, const Window *w, int i, KnDim in, KnDim *out,
                                   KnError *err) {
  *out = IR_DIM_UNKNOWN;
  if (in.value < 0 || w->k[i] < 1) return KN_OK;
  int64_t v, effk;
  if (in.value == 0) {
    *out = IR_DIM(0);
    return KN_OK;
  }
  if (w->mode == PAD_SAME) {
    if (ir_mul_overflows(in.value, w->s[i], &v)) return overflow(n, i, err);
    *out = IR_DIM(v);
    return KN_OK;
  }
  int64_t pads = w->mode == PAD_VALID ? 0 : w->pb[i] + w->pe[i];
  if (!mul_add(w->k[i] - 1, w->d[i], 1, &effk) ||
      !mul_add(w->s[i], in.value - 1, w->opad[i], &v) || ir_add_overflows(v, effk, &v))
    return overflow(n, i, err);
  if (v < pads)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "spatial dim %d: pads exceed the output size", i);
  *out = IR_DIM(v - pads);
  return KN_OK;
}

KnStatus infer_conv_transpose(KnNode *node, KnError *err) {
  const KnType *x, *wt;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_tensor(node, 1, &wt, err);
  if (!st) st = ib_check_same_dtype(node, 0, 1, err);
  if (st) return st;
  int rank = x->shape.rank >= 0 ? x->shape.rank : wt->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (rank < 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 2", rank);
  if ((st = ib_check_rank(node, 1, rank, err)) || (st = ib_check_rank(node, 0, rank, err))) return st;
  int64_t group = ir_attr_int(node, "group", 1);
  if (group < 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "group = %lld, expected 1 or more", (long long)group);
  if ((st = ib_check_dim(node, ib_dim(node, 0, 1), ib_dim(node, 1, 0),
                         "input channels vs weight dim 0", err)))
    return st;
  Window win;
  if ((st = read_window(node, rank - 2, 1, &win, err))) return st;
  KnDim *dims = ib_dims(node, rank);
  if (!dims) return ib_nomem(err);
  dims[0] = ib_dim(node, 0, 0);
  dims[1] = ir_dim_mul(ib_dim(node, 1, 1), IR_DIM(group));
  int64_t cnt;
  const int64_t *os = ir_attr_ints(node, "output_shape", &cnt);
  if (os && cnt != rank - 2 && cnt != rank)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "output_shape has %lld entries, expected %d",
                         (long long)cnt, rank - 2);
  for (int i = 0; i < rank - 2; i++) {
    int64_t v = os ? os[cnt - (rank - 2) + i] : 0;
    if (os && v < 0)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "output_shape[%d] = %lld is negative", i,
                           (long long)v);
    if (os) dims[i + 2] = IR_DIM(v);
    else if ((st = conv_transpose_dim(node, &win, i, ib_dim(node, 0, i + 2), &dims[i + 2], err)))
      return st;
  }
  return ir_set_output(node, 0, x->dtype, rank, dims, err);
}

/* AveragePool, MaxPool (optional i64 Indices output), LpPool. */
KnStatus infer_pool(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int64_t nk;
  if (!ir_attr_ints(node, "kernel_shape", &nk))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute kernel_shape is missing");
  if (nk > 1 << 20)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "kernel_shape has %lld entries", (long long)nk);
  if (x->shape.rank < 0) {
    st = ir_set_output(node, 0, x->dtype, -1, NULL, err);
    return st ? st : ir_set_output(node, 1, KN_I64, -1, NULL, err);
  }
  if (x->shape.rank != nk + 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID,
                         "input 0 has rank %d, expected %lld (kernel_shape has %lld dims) + 2",
                         x->shape.rank, (long long)nk, (long long)nk);
  Window win;
  if ((st = read_window(node, (int)nk, -1, &win, err))) return st;
  KnDim nd = ib_dim(node, 0, 0), cd = ib_dim(node, 0, 1);
  st = set_windowed(node, 0, x->dtype, nd, cd, &win, err);
  return st ? st : set_windowed(node, 1, KN_I64, nd, cd, &win, err);
}

/* GlobalAveragePool, GlobalMaxPool, GlobalLpPool: spatial dims become 1. */
KnStatus infer_global_pool(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int rank = x->shape.rank;
  if (rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (rank < 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 2", rank);
  KnDim *dims = ib_dims(node, rank);
  if (!dims) return ib_nomem(err);
  dims[0] = x->shape.dims[0], dims[1] = x->shape.dims[1];
  for (int i = 2; i < rank; i++) dims[i] = IR_DIM(1);
  return ir_set_output(node, 0, x->dtype, rank, dims, err);
}

/* X [N,C,H,W], rois [R,5] -> [R, C, pooled_h, pooled_w]. */
KnStatus infer_max_roi_pool(KnNode *node, KnError *err) {
  const KnType *x, *rois;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_tensor(node, 1, &rois, err);
  if (!st) st = ib_check_rank(node, 0, 4, err);
  if (!st) st = ib_check_rank(node, 1, 2, err);
  if (!st) st = ib_check_dim(node, ib_dim(node, 1, 1), IR_DIM(5), "rois dim 1 vs 5", err);
  if (st) return st;
  int64_t cnt;
  const int64_t *ps = ir_attr_ints(node, "pooled_shape", &cnt);
  if (!ps || cnt != 2 || ps[0] < 0 || ps[1] < 0)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute pooled_shape must hold 2 dims");
  KnDim dims[4] = {ib_dim(node, 1, 0), ib_dim(node, 0, 1), IR_DIM(ps[0]), IR_DIM(ps[1])};
  return ir_set_output(node, 0, x->dtype, 4, dims, err);
}

/* X [N,C,H,W], rois [R,4], batch_indices [R] -> [R, C, output_height, output_width]. */
KnStatus infer_roi_align(KnNode *node, KnError *err) {
  const KnType *x, *rois, *bi;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_tensor(node, 1, &rois, err);
  if (!st) st = ib_tensor(node, 2, &bi, err);
  if (!st) st = ib_check_rank(node, 0, 4, err);
  if (!st) st = ib_check_rank(node, 1, 2, err);
  if (!st) st = ib_check_rank(node, 2, 1, err);
  if (!st) st = ib_check_dim(node, ib_dim(node, 1, 1), IR_DIM(4), "rois dim 1 vs 4", err);
  KnDim r = ib_dim(node, 1, 0);
  if (!st) st = ib_check_dim(node, r, ib_dim(node, 2, 0), "rois count vs batch_indices length", err);
  if (st) return st;
  r = ib_better_dim(r, ib_dim(node, 2, 0));
  int64_t oh = ir_attr_int(node, "output_height", 1), ow = ir_attr_int(node, "output_width", 1);
  if (oh < 1 || ow < 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "output_height/output_width must be positive");
  KnDim dims[4] = {r, ib_dim(node, 0, 1), IR_DIM(oh), IR_DIM(ow)};
  return ir_set_output(node, 0, x->dtype, 4, dims, err);
}

/* Without output_shape, each dim is (in-1)*stride + kernel - pads. */
static KnStatus max_unpool_default(KnNode *node, const KnType *x, KnError *err) {
  int64_t nk;
  if (!ir_attr_ints(node, "kernel_shape", &nk))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute kernel_shape is missing");
  if (x->shape.rank < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (x->shape.rank != nk + 2)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected %lld",
                         x->shape.rank, (long long)nk + 2);
  Window win = {0}; /* zeroed: gcc -O3 cannot see read_window fill it on success */
  KnStatus st = read_window(node, (int)nk, -1, &win, err);
  if (st) return st;
  KnDim *dims = ib_dims(node, x->shape.rank);
  if (!dims) return ib_nomem(err);
  dims[0] = x->shape.dims[0], dims[1] = x->shape.dims[1];
  for (int i = 0; i < win.n; i++) {
    KnDim in = x->shape.dims[i + 2];
    int64_t v, pads = win.pb[i] + win.pe[i];
    if (in.value <= 0) {
      dims[i + 2] = in;
      continue;
    }
    if (!mul_add(in.value - 1, win.s[i], win.k[i], &v)) return overflow(node, i, err);
    if (v < pads)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "spatial dim %d: pads exceed the output size", i);
    dims[i + 2] = IR_DIM(v - pads);
  }
  return ir_set_output(node, 0, x->dtype, x->shape.rank, dims, err);
}

KnStatus infer_max_unpool(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  if (!ir_input(node, 2)) return max_unpool_default(node, x, err);
  KnDim dims[IR_SYM_DATA_MAX];
  int cnt = ir_input_dims(node, 2, dims, IR_SYM_DATA_MAX);
  if (cnt >= 0) {
    for (int i = 0; i < cnt; i++) dims[i] = ir_sym_to_dim(dims[i]);
    return ir_set_output(node, 0, x->dtype, cnt, dims, err);
  }
  KnDim *unk = ib_dims(node, x->shape.rank);
  if (!unk) return ib_nomem(err);
  return ir_set_output(node, 0, x->dtype, x->shape.rank, unk, err);
}
