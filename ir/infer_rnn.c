/* infer_rnn.c - shape inference for the recurrent ops RNN, GRU and LSTM. */
#include <string.h>

#include "ir/infer_b_internal.h"
#include "ir/infer_params.h"

/* Constant sequence_lens past the sequence would make the lowering read past X. */
static KnStatus check_seq_lens(const KnNode *n, KnDim seq, KnError *err) {
  const KnTensor *t = ib_const_tensor(n, 4);
  if (!t || seq.value < 0 || !ir_dtype_is_int(t->dtype)) return KN_OK;
  for (int64_t k = 0; k < t->numel; k++) {
    int64_t len = ir_tensor_get_int(t, k);
    if (len < 0 || len > seq.value)
      return ir_infer_fail(err, n, KN_ERR_INVALID,
                           "input 4 (sequence_lens, '%s') entry %lld is %lld, expected 0 to %lld "
                           "(the sequence length)", ir_input(n, 4)->name, (long long)k,
                           (long long)len, (long long)seq.value);
  }
  return KN_OK;
}

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

/* The lowering indexes W, R, B, sequence_lens, initial_h/c and P by these ONNX shapes. */
static KnStatus check_params(const KnNode *n, int64_t dirs, KnDim h, bool batch_first, KnError *err) {
  int64_t gates = n->op == KN_OP_LSTM ? 4 : n->op == KN_OP_GRU ? 3 : 1;
  KnDim d = IR_DIM(dirs), gh = ir_dim_mul(IR_DIM(gates), h), batch = ib_dim(n, 0, batch_first ? 0 : 1);
  KnDim w[3] = {d, gh, ib_dim(n, 0, 2)}, r[3] = {d, gh, h}, b[2] = {d, ir_dim_mul(IR_DIM(2), gh)};
  KnDim state[3] = {d, batch, h}, state_bf[3] = {batch, d, h};
  KnDim p[2] = {d, ir_dim_mul(IR_DIM(3), h)};
  KnStatus st = ip_check_shape(n, 1, "W", 3, w, err);
  if (!st) st = ip_check_shape(n, 2, "R", 3, r, err);
  if (!st) st = ip_check_shape(n, 3, "B", 2, b, err);
  if (!st) st = ip_check_shape(n, 4, "sequence_lens", 1, &batch, err);
  if (!st) st = ip_check_shape(n, 5, "initial_h", 3, batch_first ? state_bf : state, err);
  if (!st && n->op == KN_OP_LSTM) st = ip_check_shape(n, 6, "initial_c", 3, batch_first ? state_bf : state, err);
  if (!st && n->op == KN_OP_LSTM) st = ip_check_shape(n, 7, "P", 2, p, err);
  if (!st) st = check_seq_lens(n, ib_dim(n, 0, batch_first ? 1 : 0), err);
  return st;
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
  bool batch_first = ir_attr_int(node, "layout", 0) != 0;
  if (!st) st = check_params(node, dirs, h, batch_first, err);
  if (st) return st;
  KnDim seq = ib_dim(node, 0, batch_first ? 1 : 0), batch = ib_dim(node, 0, batch_first ? 0 : 1);
  KnDim d = IR_DIM(dirs);
  KnDim y[4] = {seq, d, batch, h}, yb[4] = {batch, seq, d, h};
  KnDim yh[3] = {d, batch, h}, yhb[3] = {batch, d, h};
  st = ir_set_output(node, 0, x->dtype, 4, batch_first ? yb : y, err);
  for (int o = 1; o < node->n_outputs && !st; o++)
    st = ir_set_output(node, o, x->dtype, 3, batch_first ? yhb : yh, err);
  return st;
}
