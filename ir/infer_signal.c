/* infer_signal.c - shape inference for the signal ops: windows, DFT, STFT, mel filter banks. */
#include "ir/infer_b_internal.h"

/* A known scalar length input as a dim (unknown if not a compile-time value). */
static KnStatus length_input(const KnNode *n, int i, KnDim *out, KnError *err) {
  int64_t v;
  *out = IR_DIM_UNKNOWN;
  if (!ib_input_scalar(n, i, &v)) return KN_OK;
  if (v < 0)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') = %lld, expected a length >= 0", i,
                         ir_input(n, i)->name, (long long)v);
  *out = IR_DIM(v);
  return KN_OK;
}

static KnDim onesided_bins(KnDim len) {
  return len.value >= 0 ? IR_DIM(len.value / 2 + 1) : IR_DIM_UNKNOWN;
}

/* BlackmanWindow, HammingWindow, HannWindow: [size] of output_datatype (default f32). */
KnStatus infer_window(KnNode *node, KnError *err) {
  KnDtype dt;
  KnDim size;
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ib_attr_dtype(node, "output_datatype", KN_F32, &dt, err);
  if (!st) st = length_input(node, 0, &size, err);
  return st ? st : ir_set_output(node, 0, dt, 1, &size, err);
}

/* input [batch, n1.., 1|2] -> same with last dim 2; dim axis becomes dft_length and, when
 * onesided, floor(len/2)+1. */
KnStatus infer_dft(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  int r = x->shape.rank, axis;
  if (r < 0) return ir_set_output(node, 0, x->dtype, -1, NULL, err);
  if (r < 3)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has rank %d, expected at least 3", r);
  if ((st = ib_check_dim(node, x->shape.dims[r - 1], IR_DIM(x->shape.dims[r - 1].value == 1 ? 1 : 2),
                         "last dim (real/complex) vs 1 or 2", err)))
    return st;
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 1), r, &axis, err))) return st;
  if (axis == 0 || axis == r - 1)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "axis %d is the batch or the complex dim", axis);
  KnDim *dims = ib_dims(node, r), len = x->shape.dims[axis];
  if (!dims) return ib_nomem(err);
  for (int i = 0; i < r; i++) dims[i] = x->shape.dims[i];
  if (ir_input(node, 1) && (st = length_input(node, 1, &len, err))) return st;
  dims[axis] = ir_attr_int(node, "onesided", 0) ? onesided_bins(len) : len;
  dims[r - 1] = IR_DIM(2);
  return ir_set_output(node, 0, x->dtype, r, dims, err);
}

/* signal [batch, length, 1|2] -> [batch, frames, bins, 2]. */
KnStatus infer_stft(KnNode *node, KnError *err) {
  const KnType *x;
  KnDim step, fl = IR_DIM_UNKNOWN;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (!st) st = ib_check_rank(node, 0, 3, err);
  if (!st) st = length_input(node, 1, &step, err);
  if (!st && ir_input(node, 3)) st = length_input(node, 3, &fl, err);
  if (!st && ir_input(node, 2)) st = ib_check_rank(node, 2, 1, err);
  if (st) return st;
  if (fl.value < 0 && ir_input(node, 2)) fl = ib_dim(node, 2, 0);
  if (ir_input(node, 2) && (st = ib_check_dim(node, fl, ib_dim(node, 2, 0),
                                              "frame_length vs window length", err)))
    return st;
  if (step.value == 0) return ir_infer_fail(err, node, KN_ERR_INVALID, "frame_step is 0");
  KnDim len = ib_dim(node, 0, 1), frames = IR_DIM_UNKNOWN;
  if (len.value >= 0 && fl.value >= 0 && step.value > 0) {
    if (len.value < fl.value)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "signal length %lld is shorter than frame %lld",
                           (long long)len.value, (long long)fl.value);
    frames = IR_DIM((len.value - fl.value) / step.value + 1);
  }
  KnDim bins = ir_attr_int(node, "onesided", 1) ? onesided_bins(fl) : fl;
  KnDim dims[4] = {ib_dim(node, 0, 0), frames, bins, IR_DIM(2)};
  return ir_set_output(node, 0, x->dtype, 4, dims, err);
}

/* [floor(dft_length/2)+1, num_mel_bins] of output_datatype (default f32). */
KnStatus infer_mel_weight_matrix(KnNode *node, KnError *err) {
  KnDtype dt;
  KnDim mel, dft;
  KnStatus st = ib_attr_dtype(node, "output_datatype", KN_F32, &dt, err);
  for (int i = 0; i < 5 && !st; i++) st = ir_require_tensor(node, i, err);
  if (!st) st = length_input(node, 0, &mel, err);
  if (!st) st = length_input(node, 1, &dft, err);
  if (st) return st;
  KnDim dims[2] = {onesided_bins(dft), mel};
  return ir_set_output(node, 0, dt, 2, dims, err);
}
