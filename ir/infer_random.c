/* infer_random.c - shape inference for the random generators: shape from attrs or an input. */
#include "ir/infer_b_internal.h"

/* RandomNormal, RandomUniform: shape and dtype (default f32) attributes. */
KnStatus infer_random(KnNode *node, KnError *err) {
  KnDtype dt;
  KnStatus st = ib_attr_dtype(node, "dtype", KN_F32, &dt, err);
  if (st) return st;
  int64_t cnt;
  const int64_t *shape = ir_attr_ints(node, "shape", &cnt);
  if (!shape) return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute shape is missing");
  if (cnt > 1 << 20)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute shape has %lld dims", (long long)cnt);
  KnDim *dims = ib_dims(node, (int)cnt);
  if (!dims) return ib_nomem(err);
  for (int64_t i = 0; i < cnt; i++) {
    if (shape[i] < 0)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "shape[%lld] = %lld is negative", (long long)i,
                           (long long)shape[i]);
    dims[i] = IR_DIM(shape[i]);
  }
  return ir_set_output(node, 0, dt, (int)cnt, dims, err);
}

/* RandomNormalLike, RandomUniformLike, Bernoulli: the input's shape; dtype attr or the input's. */
KnStatus infer_random_like(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  KnDtype dt = KN_UNDEF;
  if (!st && ir_attr(node, "dtype")) st = ib_attr_dtype(node, "dtype", KN_F32, &dt, err);
  return st ? st : ib_like_input(node, 0, 0, dt, err);
}

KnStatus infer_bernoulli(KnNode *node, KnError *err) {
  return infer_random_like(node, err);
}

/* [batch, classes] -> [batch, sample_size] of dtype (default i32). */
KnStatus infer_multinomial(KnNode *node, KnError *err) {
  KnDtype dt;
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ib_check_rank(node, 0, 2, err);
  if (!st) st = ib_attr_dtype(node, "dtype", KN_I32, &dt, err);
  if (st) return st;
  int64_t n = ir_attr_int(node, "sample_size", 1);
  if (n < 1) return ir_infer_fail(err, node, KN_ERR_INVALID, "sample_size = %lld, expected 1 or more", (long long)n);
  KnDim dims[2] = {ib_dim(node, 0, 0), IR_DIM(n)};
  return ir_set_output(node, 0, dt, 2, dims, err);
}
