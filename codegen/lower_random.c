/* lower_random.c - RandomNormal/Uniform(Like), Bernoulli and Multinomial: a serial loop drawing
 * from the runtime's seeded generator (runtime/rt_random.c); a seed attribute makes every run
 * give the same values, no seed gives different values per run. */
#include <math.h>

#include "codegen/lower_seq.h"

/* A [4 x i64] generator state on the stack, seeded by kn_rt_random_seed. */
static LLVMValueRef rng_state(CgKernel *k) {
  CgModule *m = k->m;
  LLVMValueRef st = cg_var(k, LLVMArrayType2(m->t_i64, 4), NULL);
  const KnAttr *seed = ir_attr(k->node, "seed");
  LLVMTypeRef args[3] = {m->t_ptr, m->t_f32, m->t_i32};
  LLVMTypeRef fty = LLVMFunctionType(m->t_void, args, 3, 0);
  LLVMValueRef vals[3] = {st, LLVMConstReal(m->t_f32, ir_attr_float(k->node, "seed", 0.0f)),
                          cg_i32(k, seed != NULL)};
  LLVMBuildCall2(k->b, fty, cg_extern_fn(m, "kn_rt_random_seed", fty), vals, 3, "");
  return st;
}

/* The next draw (f64): "kn_rt_random_uniform" in [0, 1) or "kn_rt_random_normal". */
static LLVMValueRef draw(CgKernel *k, LLVMValueRef st, const char *fn) {
  LLVMTypeRef fty = LLVMFunctionType(k->m->t_f64, &k->m->t_ptr, 1, 0);
  return LLVMBuildCall2(k->b, fty, cg_extern_fn(k->m, fn, fty), &st, 1, "");
}

static LLVMValueRef dconst(CgKernel *k, double v) { return LLVMConstReal(k->m->t_f64, v); }

/* RandomNormal(Like): mean + scale * z; RandomUniform(Like): low + (high - low) * u. */
static KnStatus lower_generator(CgKernel *k, bool normal) {
  KnDtype ot = cg_out_dtype(k, 0);
  if (!ir_dtype_is_float(ot)) return cg_unsupported(k, "dtype must be a float type");
  const KnNode *n = k->node;
  double a = normal ? ir_attr_float(n, "mean", 0.0f) : ir_attr_float(n, "low", 0.0f);
  double b = normal ? ir_attr_float(n, "scale", 1.0f) : ir_attr_float(n, "high", 1.0f) - a;
  LLVMValueRef st = rng_state(k);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cg_numel(cg_out_shape(k, 0))));
  LLVMValueRef v = draw(k, st, normal ? "kn_rt_random_normal" : "kn_rt_random_uniform");
  v = LLVMBuildFAdd(k->b, dconst(k, a), LLVMBuildFMul(k->b, dconst(k, b), v, ""), "");
  cg_store(k, k->out[0], ot, l.i, cg_convert(k, v, KN_F64, ot));
  cg_loop_end(k, &l);
  return KN_OK;
}

/* Bernoulli: 1 with probability p (the input element), else 0. */
static KnStatus lower_bernoulli(CgKernel *k) {
  KnDtype it = cg_in_dtype(k, 0), ot = cg_out_dtype(k, 0);
  if (!ir_dtype_is_float(it)) return cg_unsupported(k, "input must be a float type");
  if (!ir_dtype_is_float(ot) && !ir_dtype_is_int(ot) && ot != KN_BOOL) return cg_unsupported(k, "dtype");
  LLVMValueRef st = rng_state(k);
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, cg_numel(cg_out_shape(k, 0))));
  LLVMValueRef p = cg_convert(k, cg_load(k, k->in[0], it, l.i), it, KN_F64);
  LLVMValueRef hit = LLVMBuildFCmp(k->b, LLVMRealOLT, draw(k, st, "kn_rt_random_uniform"), p, "");
  cg_store(k, k->out[0], ot, l.i, cg_convert(k, hit, KN_BOOL, ot));
  cg_loop_end(k, &l);
  return KN_OK;
}

/* Multinomial: per batch row, sample_size class indices drawn from softmax(input row). */
static KnStatus lower_multinomial(CgKernel *k) {
  KnDtype it = cg_in_dtype(k, 0), ot = cg_out_dtype(k, 0);
  if (!ir_dtype_is_float(it)) return cg_unsupported(k, "input must be a float type");
  if (ot != KN_I32 && ot != KN_I64) return cg_unsupported(k, "dtype must be int32 or int64");
  const KnShape *xs = cg_in_shape(k, 0);
  int64_t B = xs->dims[0].value, C = xs->dims[1].value, S = cg_out_shape(k, 0)->dims[1].value;
  if (C < 1) return cg_unsupported(k, "no classes");
  LLVMBuilderRef b = k->b;
  LLVMTypeRef f64 = k->m->t_f64;
  LLVMValueRef st = rng_state(k), mx = cg_var(k, f64, NULL), sum = cg_var(k, f64, NULL);
  LLVMValueRef cum = cg_var(k, f64, NULL), pick = cg_var(k, k->m->t_i64, NULL);
  CgLoop bl = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, B));
  LLVMValueRef row = LLVMBuildMul(b, bl.i, cg_i64(k, C), "");
  #define X(c) cg_convert(k, cg_load(k, k->in[0], it, LLVMBuildAdd(b, row, (c), "")), it, KN_F64)
  LLVMBuildStore(b, dconst(k, -INFINITY), mx);
  LLVMBuildStore(b, dconst(k, 0), sum);
  CgLoop c1 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, C));
  LLVMBuildStore(b, cg_max(k, KN_F64, LLVMBuildLoad2(b, f64, mx, ""), X(c1.i)), mx);
  cg_loop_end(k, &c1);
  LLVMValueRef m = LLVMBuildLoad2(b, f64, mx, "");
  CgLoop c2 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, C));
  LLVMValueRef e = LLVMBuildFSub(b, X(c2.i), m, "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, f64, sum, ""), cg_intrinsic(k, "llvm.exp", &e, 1), ""), sum);
  cg_loop_end(k, &c2);
  LLVMValueRef total = LLVMBuildLoad2(b, f64, sum, "");
  CgLoop sl = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, S));
  LLVMValueRef u = LLVMBuildFMul(b, draw(k, st, "kn_rt_random_uniform"), total, "");
  LLVMBuildStore(b, dconst(k, 0), cum);
  LLVMBuildStore(b, cg_i64(k, C - 1), pick); /* rounding can leave u above the last sum */
  CgLoop c3 = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, C));
  LLVMValueRef e3 = LLVMBuildFSub(b, X(c3.i), m, "");
  LLVMValueRef old = LLVMBuildLoad2(b, f64, cum, "");
  LLVMValueRef now = LLVMBuildFAdd(b, old, cg_intrinsic(k, "llvm.exp", &e3, 1), "");
  LLVMBuildStore(b, now, cum);
  /* the first class whose cumulative weight passes u */
  LLVMValueRef first = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOLE, old, u, ""), LLVMBuildFCmp(b, LLVMRealOLT, u, now, ""), "");
  LLVMBuildStore(b, cg_select(k, first, c3.i, LLVMBuildLoad2(b, k->m->t_i64, pick, "")), pick);
  cg_loop_end(k, &c3);
  #undef X
  LLVMValueRef oi = LLVMBuildAdd(b, LLVMBuildMul(b, bl.i, cg_i64(k, S), ""), sl.i, "");
  cg_store(k, k->out[0], ot, oi, cg_convert(k, LLVMBuildLoad2(b, k->m->t_i64, pick, ""), KN_I64, ot));
  cg_loop_end(k, &sl);
  cg_loop_end(k, &bl);
  return KN_OK;
}

KnStatus cg_lower_random(CgKernel *k) {
  switch (k->node->op) {
  case KN_OP_RandomNormal: case KN_OP_RandomNormalLike: return lower_generator(k, true);
  case KN_OP_RandomUniform: case KN_OP_RandomUniformLike: return lower_generator(k, false);
  case KN_OP_Bernoulli: return lower_bernoulli(k);
  case KN_OP_Multinomial: return lower_multinomial(k);
  default: return cg_unsupported(k, "not a random op");
  }
}
