/* infer_rnn.c - shape inference for the recurrent ops RNN, GRU and LSTM. */
#include <string.h>

#include "ir/infer_b_internal.h"

static KnStatus num_directions(const KnNode *n, int64_t *out, KnError *err) {
  const char *d = ir_attr_string(n, "direction", "forward");
  if (!strcmp(d, "forward") || !strcmp(d, "reverse")) *out = 1;
  else if (!strcmp(d, "bidirectional")) *out = 2;
  else
    return ir_infer_fail(err, n, KN_ERR_INVALID,
                         "direction '%s' is not forward, reverse or bidirectional", d);
  return ib_check_dim(n, ib_dim(n, 1, 0), IR_DIM(*out), "W dim 0 vs num_directions", err);
}

/* hidden_size from the attribute, else from R [num_directions, gates*hidden, hidden]. */
static KnStatus hidden_size(const KnNode *n, KnDim *out, KnError *err) {
  int64_t h = ir_attr_int(n, "hidden_size", -1);
  if (ir_attr(n, "hidden_size") && h < 1)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "hidden_size = %lld, expected 1 or more", (long long)h);
  *out = h > 0 ? IR_DIM(h) : ib_dim(n, 2, 2);
  return h > 0 ? ib_check_dim(n, ib_dim(n, 2, 2), *out, "R dim 2 vs hidden_size", err) : KN_OK;
}

/* X is [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1, opset 14+).
 * Y: [seq, dirs, batch, hidden] or [batch, seq, dirs, hidden]; Y_h, Y_c: [dirs, batch, hidden]
 * or [batch, dirs, hidden]. */
KnStatus infer_rnn(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st) st = ir_require_tensor(node, 2, err);
  if (!st) st = ib_check_rank(node, 0, 3, err);
  if (!st) st = ib_check_rank(node, 1, 3, err);
  if (!st) st = ib_check_rank(node, 2, 3, err);
  int64_t dirs = 1;
  KnDim h;
  if (!st) st = num_directions(node, &dirs, err);
  if (!st) st = hidden_size(node, &h, err);
  if (st) return st;
  bool batch_first = ir_attr_int(node, "layout", 0) != 0;
  KnDim seq = ib_dim(node, 0, batch_first ? 1 : 0), batch = ib_dim(node, 0, batch_first ? 0 : 1);
  KnDim d = IR_DIM(dirs);
  KnDim y[4] = {seq, d, batch, h}, yb[4] = {batch, seq, d, h};
  KnDim yh[3] = {d, batch, h}, yhb[3] = {batch, d, h};
  st = ir_set_output(node, 0, x->dtype, 4, batch_first ? yb : y, err);
  for (int o = 1; o < node->n_outputs && !st; o++)
    st = ir_set_output(node, o, x->dtype, 3, batch_first ? yhb : yh, err);
  return st;
}
