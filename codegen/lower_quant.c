/* lower_quant.c - QuantizeLinear, DequantizeLinear (per tensor or per axis) and
 * DynamicQuantizeLinear (scale and zero point from the data's range). */
#include "codegen/lower_seq.h"

/* The data viewed as [outer, C, inner] with C the quantization axis (C = 1: per tensor). */
typedef struct QuantView {
  int64_t outer, C, inner;
  KnDtype xt, st, zt, yt;  /* data, scale, zero point (KN_UNDEF: none), output */
  bool has_zp;
  /* DynamicQuantizeLinear: scale and zero point come from outputs 1 and 2 */
  bool dynamic;
  int64_t total;           /* DynamicQuantizeLinear: element count */
} QuantView;

static KnStatus view_of(CgKernel *k, QuantView *q) {
  const KnShape *xs = cg_in_shape(k, 0), *ss = cg_in_shape(k, 1);
  int64_t sn = cg_numel(ss);
  q->outer = 1, q->C = 1, q->inner = cg_numel(xs);
  if (ss->rank == 0 || (ss->rank == 1 && sn == 1 && k->node->opset < 13)) return KN_OK;
  if (ss->rank != 1) return cg_unsupported(k, "scale must be a scalar or 1-D");
  int64_t axis = ir_attr_int(k->node, "axis", 1);
  if (axis < 0) axis += xs->rank;
  if (axis < 0 || axis >= xs->rank) return cg_unsupported(k, "axis out of range");
  if (xs->dims[axis].value != sn) {
    if (sn == 1) return KN_OK;
    return cg_unsupported(k, "scale length does not match the axis");
  }
  q->outer = 1, q->inner = 1, q->C = sn;
  for (int d = 0; d < axis; d++) q->outer *= xs->dims[d].value;
  for (int d = (int)axis + 1; d < xs->rank; d++) q->inner *= xs->dims[d].value;
  return KN_OK;
}

static LLVMValueRef f32_of(CgKernel *k, LLVMValueRef v, KnDtype t) { return cg_convert(k, v, t, KN_F32); }

/* round-half-even(x / scale) + zp, saturated to yt's range; x, scale, zp are f32. */
static LLVMValueRef quantize(CgKernel *k, KnDtype yt, LLVMValueRef x, LLVMValueRef scale, LLVMValueRef zp) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef v = LLVMBuildFDiv(b, x, scale, "");
  v = cg_intrinsic(k, "llvm.roundeven", &v, 1);
  v = LLVMBuildFAdd(b, v, zp, "");
  double lo = yt == KN_U8 ? 0 : yt == KN_I8 ? -128 : yt == KN_U16 ? 0 : -32768;
  double hi = yt == KN_U8 ? 255 : yt == KN_I8 ? 127 : yt == KN_U16 ? 65535 : 32767;
  LLVMValueRef a[2] = {v, seq_fc(v, lo)};
  v = cg_intrinsic(k, "llvm.maxnum", a, 2);
  LLVMValueRef c[2] = {v, seq_fc(v, hi)};
  v = cg_intrinsic(k, "llvm.minnum", c, 2);
  return cg_convert(k, v, KN_F32, yt);
}

/* Scale and zero point (as f32) of channel c. */
static void scale_zp(CgKernel *k, const QuantView *q, LLVMValueRef c, LLVMValueRef *scale, LLVMValueRef *zp) {
  if (q->dynamic) {
    *scale = cg_load(k, k->out[1], KN_F32, cg_i64(k, 0));
    *zp = f32_of(k, cg_load(k, k->out[2], KN_U8, cg_i64(k, 0)), KN_U8);
    return;
  }
  *scale = f32_of(k, cg_load(k, k->in[1], q->st, c), q->st);
  *zp = q->has_zp ? f32_of(k, cg_load(k, k->in[2], q->zt, c), q->zt) : LLVMConstReal(k->m->t_f32, 0.0);
}

/* One row (o, c) of [outer, C, inner]. */
static void quant_row(CgKernel *k, LLVMValueRef row, void *user) {
  const QuantView *q = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef c = LLVMBuildSRem(b, row, cg_i64(k, q->C), "");
  LLVMValueRef scale, zp;
  scale_zp(k, q, c, &scale, &zp);
  LLVMValueRef base = LLVMBuildMul(b, row, cg_i64(k, q->inner), "");
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, q->inner));
  LLVMValueRef idx = LLVMBuildAdd(b, base, l.i, "");
  LLVMValueRef x = f32_of(k, cg_load(k, k->in[0], q->xt, idx), q->xt);
  LLVMValueRef y;
  if (k->node->op == KN_OP_DequantizeLinear) {
    y = LLVMBuildFMul(b, LLVMBuildFSub(b, x, zp, ""), scale, "");
    y = cg_convert(k, y, KN_F32, q->yt);
  } else {
    y = quantize(k, q->yt, x, scale, zp);
  }
  cg_store(k, k->out[0], q->yt, idx, y);
  cg_loop_end(k, &l);
}

static void run_rows(CgKernel *k, QuantView *q) {
  int64_t rows = q->outer * q->C;
  int64_t grain = q->inner >= 4096 ? 1 : 4096 / (q->inner ? q->inner : 1);
  cg_parallel_for(k, rows, grain, quant_row, q);
}

static bool has_input(const CgKernel *k, int i) { return i < k->node->n_inputs && k->in[i]; }

KnStatus cg_lower_quantize(CgKernel *k) {
  QuantView q = {.xt = cg_in_dtype(k, 0), .st = cg_in_dtype(k, 1)};
  q.has_zp = has_input(k, 2);
  q.zt = q.has_zp ? cg_in_dtype(k, 2) : KN_UNDEF;
  q.yt = cg_out_dtype(k, 0);
  if (!(ir_dtype_is_float(q.xt) || q.xt == KN_I32) || !ir_dtype_is_float(q.st))
    return cg_unsupported(k, "x must be float or int32 and y_scale float");
  if (q.yt != KN_U8 && q.yt != KN_I8 && q.yt != KN_U16 && q.yt != KN_I16)
    return cg_unsupported(k, "only uint8/int8/uint16/int16 outputs");
  if (!ir_attr_int(k->node, "saturate", 1)) return cg_unsupported(k, "saturate = 0");
  KnStatus st = view_of(k, &q);
  if (st != KN_OK) return st;
  run_rows(k, &q);
  return KN_OK;
}

KnStatus cg_lower_dequantize(CgKernel *k) {
  QuantView q = {.xt = cg_in_dtype(k, 0), .st = cg_in_dtype(k, 1)};
  q.has_zp = has_input(k, 2);
  q.zt = q.has_zp ? cg_in_dtype(k, 2) : KN_UNDEF;
  q.yt = cg_out_dtype(k, 0);
  if (!ir_dtype_is_int(q.xt) || !ir_dtype_is_float(q.st) || !ir_dtype_is_float(q.yt))
    return cg_unsupported(k, "x must be an integer type and x_scale float");
  if (q.xt == KN_I64 || q.xt == KN_U64) return cg_unsupported(k, "64-bit quantized data");
  KnStatus st = view_of(k, &q);
  if (st != KN_OK) return st;
  run_rows(k, &q);
  return KN_OK;
}

/* Scale = (max(0, max x) - min(0, min x)) / 255 and zero point = saturate(round(-min / scale)),
 * in f32 as the spec's reference; an all-zero input gets scale 0 and zero point 0. */
static void dynamic_params(CgKernel *k, int64_t n) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f = k->m->t_f32;
  LLVMValueRef lo = cg_var(k, f, LLVMConstReal(f, 0.0)), hi = cg_var(k, f, LLVMConstReal(f, 0.0));
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  LLVMValueRef x = cg_load(k, k->in[0], KN_F32, l.i);
  LLVMBuildStore(b, cg_min(k, KN_F32, LLVMBuildLoad2(b, f, lo, ""), x), lo);
  LLVMBuildStore(b, cg_max(k, KN_F32, LLVMBuildLoad2(b, f, hi, ""), x), hi);
  cg_loop_end(k, &l);
  LLVMValueRef mn = LLVMBuildLoad2(b, f, lo, ""), mx = LLVMBuildLoad2(b, f, hi, "");
  LLVMValueRef scale = LLVMBuildFDiv(b, LLVMBuildFSub(b, mx, mn, ""), LLVMConstReal(f, 255.0), "");
  LLVMValueRef zero = LLVMBuildFCmp(b, LLVMRealOEQ, scale, LLVMConstReal(f, 0.0), "");
  LLVMValueRef safe = cg_select(k, zero, LLVMConstReal(f, 1.0), scale);
  LLVMValueRef zp = LLVMBuildFSub(b, LLVMConstReal(f, 0.0), LLVMBuildFDiv(b, mn, safe, ""), "");
  zp = quantize(k, KN_U8, zp, LLVMConstReal(f, 1.0), LLVMConstReal(f, 0.0));
  cg_store(k, k->out[1], KN_F32, cg_i64(k, 0), scale);
  cg_store(k, k->out[2], KN_U8, cg_i64(k, 0), zp);
}

/* Elements [row * inner, min((row + 1) * inner, total)) of DynamicQuantizeLinear's y. */
static void dynamic_row(CgKernel *k, LLVMValueRef row, void *user) {
  const QuantView *q = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef scale, zp;
  scale_zp(k, q, NULL, &scale, &zp);
  LLVMValueRef zero = LLVMBuildFCmp(b, LLVMRealOEQ, scale, LLVMConstReal(k->m->t_f32, 0.0), "");
  scale = cg_select(k, zero, LLVMConstReal(k->m->t_f32, 1.0), scale); /* all-zero data: y = 0 */
  LLVMValueRef begin = LLVMBuildMul(b, row, cg_i64(k, q->inner), "");
  LLVMValueRef end = cg_min(k, KN_I64, LLVMBuildAdd(b, begin, cg_i64(k, q->inner), ""), cg_i64(k, q->total));
  CgLoop l = cg_loop_begin(k, begin, end);
  LLVMValueRef x = cg_load(k, k->in[0], KN_F32, l.i);
  cg_store(k, k->out[0], KN_U8, l.i, quantize(k, KN_U8, x, scale, zp));
  cg_loop_end(k, &l);
}

KnStatus cg_lower_dynamic_quantize(CgKernel *k) {
  if (cg_in_dtype(k, 0) != KN_F32) return cg_unsupported(k, "only float32 input");
  for (int o = 0; o < 3; o++)
    if (o >= k->node->n_outputs || !k->out[o]) return cg_unsupported(k, "all three outputs are needed");
  int64_t n = cg_numel(cg_in_shape(k, 0));
  dynamic_params(k, n);
  QuantView q = {.dynamic = true, .inner = 4096, .total = n, .yt = KN_U8};
  cg_parallel_for(k, (n + q.inner - 1) / q.inner, 1, dynamic_row, &q);
  return KN_OK;
}
