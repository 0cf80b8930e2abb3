/* cg_vecmath.c - f32 exp/log/erf/tanh and friends as straight-line IR: a libm call in an
 * elementwise loop keeps LLVM's vectorizer away (one call per element), these do not. The
 * reductions are the classic ones (exp: x = n ln2 + r, log: x = 2^e (1 + f) with
 * f/(2+f) series, erf: odd polynomial below 1 and exp(-x^2) times a fit of erfcx above, tanh: odd
 * polynomial below 0.625 and 1 - 2/(exp(2x)+1) above); the polynomial coefficients are Taylor
 * terms or our own least-squares fits, checked by tests/tools/check_vecmath.py. */
#include <math.h>

#include "codegen/cg_vecmath.h"

bool cg_vm_is_f32(LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
  return LLVMGetTypeKind(t) == LLVMFloatTypeKind;
}

/* A constant of scalar type elem shaped like `like` (splat when like is a vector). */
static LLVMValueRef splat(LLVMValueRef like, LLVMValueRef scalar) {
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return scalar;
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef lanes[64];
  if (n > 64) n = 64; /* wider vectors never reach here: kiln's are at most 16 lanes */
  for (unsigned i = 0; i < n; i++) lanes[i] = scalar;
  return LLVMConstVector(lanes, n);
}

static LLVMValueRef fc(CgKernel *k, LLVMValueRef like, double v) { return splat(like, LLVMConstReal(k->m->t_f32, v)); }
static LLVMValueRef ic(CgKernel *k, LLVMValueRef like, int64_t v) { return splat(like, LLVMConstInt(k->m->t_i32, (unsigned long long)v, 1)); }

/* The i32 type (or vector of i32) matching x's shape. */
static LLVMTypeRef int_type(CgKernel *k, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) return LLVMVectorType(k->m->t_i32, LLVMGetVectorSize(t));
  return k->m->t_i32;
}

static LLVMValueRef as_int(CgKernel *k, LLVMValueRef x) { return LLVMBuildBitCast(k->b, x, int_type(k, x), ""); }
static LLVMValueRef as_float(CgKernel *k, LLVMValueRef i) {
  LLVMTypeRef t = LLVMTypeOf(i);
  LLVMTypeRef f = LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMVectorType(k->m->t_f32, LLVMGetVectorSize(t)) : k->m->t_f32;
  return LLVMBuildBitCast(k->b, i, f, "");
}

static LLVMValueRef vm_add(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(k->b, a, b, ""); }
static LLVMValueRef vm_sub(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->b, a, b, ""); }
static LLVMValueRef vm_mul(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(k->b, a, b, ""); }
static LLVMValueRef vm_div(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(k->b, a, b, ""); }
static LLVMValueRef fcmp(CgKernel *k, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFCmp(k->b, p, a, b, ""); }
static LLVMValueRef sel(CgKernel *k, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSelect(k->b, c, a, b, ""); }

/* a*b + c, fused where the target has FMA (fmuladd leaves the choice to the backend). */
static LLVMValueRef madd(CgKernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(k, "llvm.fmuladd", args, 3);
}

static LLVMValueRef fabs_of(CgKernel *k, LLVMValueRef x) { return cg_intrinsic(k, "llvm.fabs", &x, 1); }

static LLVMValueRef copysign_of(CgKernel *k, LLVMValueRef mag, LLVMValueRef sign) {
  LLVMValueRef args[2] = {mag, sign};
  return cg_intrinsic(k, "llvm.copysign", args, 2);
}

/* c[0] + c[1] x + ... + c[n-1] x^(n-1), by Horner's rule. */
static LLVMValueRef poly(CgKernel *k, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef acc = fc(k, x, c[n - 1]);
  for (int i = n - 2; i >= 0; i--) acc = madd(k, acc, x, fc(k, x, c[i]));
  return acc;
}

/* 2^n for i32 n in [-126, 127], built from its exponent bits. */
static LLVMValueRef pow2i(CgKernel *k, LLVMValueRef n) {
  LLVMValueRef biased = LLVMBuildAdd(k->b, n, ic(k, n, 127), "");
  return as_float(k, LLVMBuildShl(k->b, biased, ic(k, n, 23), ""));
}

/* exp(x) = 2^n e^r with n = round(x / ln2), |r| <= ln2/2. x is clamped to [-104, 89] first,
 * where exp already rounds to 0 / overflows to inf; NaN passes the clamps (ordered compares).
 * The rounding uses the 1.5*2^23 trick instead of fptosi, which would be poison on NaN. */
LLVMValueRef cg_vm_exp(CgKernel *k, LLVMValueRef x) {
  static const double taylor[] = {1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
  LLVMValueRef xc = sel(k, fcmp(k, LLVMRealOGT, x, fc(k, x, 89.0)), fc(k, x, 89.0), x);
  xc = sel(k, fcmp(k, LLVMRealOLT, xc, fc(k, x, -104.0)), fc(k, x, -104.0), xc);
  LLVMValueRef magic = fc(k, x, 12582912.0);
  LLVMValueRef t = madd(k, xc, fc(k, x, 1.44269504088896341), magic);
  LLVMValueRef nf = vm_sub(k, t, magic);
  LLVMValueRef n = LLVMBuildSub(k->b, as_int(k, t), as_int(k, magic), "");
  /* ln2 in two parts; the high one has few bits so nf * hi is exact without FMA */
  LLVMValueRef r = madd(k, nf, fc(k, x, -0.693359375), xc);
  r = madd(k, nf, fc(k, x, 2.12194440054690583e-4), r);
  LLVMValueRef q = poly(k, r, taylor, 6);
  LLVMValueRef p = vm_add(k, fc(k, x, 1.0), madd(k, vm_mul(k, r, r), q, r));
  /* n is in [-150, 129]: scale in two halves so denormal results round once, at the end */
  LLVMValueRef n1 = LLVMBuildAShr(k->b, n, ic(k, n, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(k->b, n, n1, "");
  return vm_mul(k, vm_mul(k, p, pow2i(k, n1)), pow2i(k, n2));
}

/* exp(x) - 1: a Taylor polynomial times x for |x| < 0.5 (exact sign of zero, no cancellation),
 * exp(x) - 1 beyond, where the subtraction loses at most a bit. */
LLVMValueRef cg_vm_expm1(CgKernel *k, LLVMValueRef x) {
  static const double taylor[] = {1.0,        1.0 / 2,     1.0 / 6,      1.0 / 24,     1.0 / 120,
                                  1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880};
  LLVMValueRef small = vm_mul(k, x, poly(k, x, taylor, 9));
  LLVMValueRef big = vm_sub(k, cg_vm_exp(k, x), fc(k, x, 1.0));
  return sel(k, fcmp(k, LLVMRealOLT, fabs_of(k, x), fc(k, x, 0.5)), small, big);
}

/* log of x > 0 finite: x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f),
 * log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) where R is the atanh series past its first term. */
static LLVMValueRef log_finite(CgKernel *k, LLVMValueRef x) {
  static const double atanh_tail[] = {2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11};
  LLVMBuilderRef b = k->b;
  LLVMValueRef tiny = fcmp(k, LLVMRealOLT, x, fc(k, x, 0x1p-126)); /* denormal: scale up first */
  LLVMValueRef xs = sel(k, tiny, vm_mul(k, x, fc(k, x, 0x1p23)), x);
  LLVMValueRef ix = LLVMBuildAdd(b, as_int(k, xs), ic(k, x, 0x3f800000 - 0x3f3504f3), "");
  LLVMValueRef e = LLVMBuildSub(b, LLVMBuildLShr(b, ix, ic(k, x, 23), ""), ic(k, x, 127), "");
  e = LLVMBuildSub(b, e, sel(k, tiny, ic(k, x, 23), ic(k, x, 0)), "");
  LLVMValueRef mbits = LLVMBuildAdd(b, LLVMBuildAnd(b, ix, ic(k, x, 0x007fffff), ""), ic(k, x, 0x3f3504f3), "");
  LLVMValueRef f = vm_sub(k, as_float(k, mbits), fc(k, x, 1.0));
  LLVMValueRef s = vm_div(k, f, vm_add(k, fc(k, x, 2.0), f));
  LLVMValueRef z = vm_mul(k, s, s);
  LLVMValueRef hfsq = vm_mul(k, fc(k, x, 0.5), vm_mul(k, f, f));
  LLVMValueRef rz = vm_mul(k, z, poly(k, z, atanh_tail, 5));
  LLVMValueRef logm = vm_sub(k, f, vm_sub(k, hfsq, vm_mul(k, s, vm_add(k, hfsq, rz))));
  LLVMValueRef ef = LLVMBuildSIToFP(b, e, LLVMTypeOf(x), "");
  LLVMValueRef lo = madd(k, ef, fc(k, x, -2.12194440054690583e-4), logm);
  return madd(k, ef, fc(k, x, 0.693359375), lo); /* e * hi is exact: hi has 9 bits */
}

LLVMValueRef cg_vm_log(CgKernel *k, LLVMValueRef x) {
  LLVMValueRef r = log_finite(k, x);
  r = sel(k, fcmp(k, LLVMRealOEQ, x, fc(k, x, INFINITY)), x, r);
  r = sel(k, fcmp(k, LLVMRealOEQ, x, fc(k, x, 0.0)), fc(k, x, -INFINITY), r);
  r = sel(k, fcmp(k, LLVMRealOLT, x, fc(k, x, 0.0)), fc(k, x, NAN), r);
  return sel(k, fcmp(k, LLVMRealUNO, x, x), x, r);
}

/* log(1 + x) = log(u) + (x - (u - 1)) / u with u = 1 + x rounded: the correction restores what
 * rounding u lost (and gives x when u == 1). */
LLVMValueRef cg_vm_log1p(CgKernel *k, LLVMValueRef x) {
  LLVMValueRef u = vm_add(k, fc(k, x, 1.0), x);
  LLVMValueRef lost = vm_sub(k, x, vm_sub(k, u, fc(k, x, 1.0)));
  LLVMValueRef r = vm_add(k, cg_vm_log(k, u), vm_div(k, lost, u));
  /* u = inf makes lost NaN; log1p(inf) is inf */
  return sel(k, fcmp(k, LLVMRealOEQ, u, fc(k, x, INFINITY)), u, r);
}

/* erf: x P(x^2) for |x| < 1; 1 - exp(-x^2) erfcx(x) above, erfcx fitted in 1/x on [1, 4]
 * (erf is 1 in f32 from 3.92 on). Both are fits of ours, about 1e-8 relative. */
LLVMValueRef cg_vm_erf(CgKernel *k, LLVMValueRef x) {
  static const double small_c[] = {1.1283791515196,       -0.3761258831597195,    0.11283295791326015,
                                   -0.026844151718504905, 0.00517255633817762,    -0.0007886106801135301,
                                   7.477301841750383e-05};
  static const double erfcx_c[] = {0.3059529924065333,   0.38228377172331635,  -0.1723948556309591,
                                   0.04376695994167981,  0.023335746875900225, -0.046944115471881334,
                                   0.043115103335515576, -0.02690452852944837, 0.005508037086161371,
                                   0.02594407061830803,  -0.0359378220370543};
  LLVMValueRef ax = fabs_of(k, x);
  LLVMValueRef small = vm_mul(k, x, poly(k, vm_mul(k, x, x), small_c, 7));
  LLVMValueRef a = sel(k, fcmp(k, LLVMRealOGT, ax, fc(k, x, 4.0)), fc(k, x, 4.0), ax);
  LLVMValueRef t = vm_sub(k, vm_div(k, fc(k, x, 1.0), a), fc(k, x, 0.625));
  LLVMValueRef e = cg_vm_exp(k, LLVMBuildFNeg(k->b, vm_mul(k, a, a), ""));
  LLVMValueRef big = vm_sub(k, fc(k, x, 1.0), vm_mul(k, e, poly(k, t, erfcx_c, 11)));
  LLVMValueRef r = sel(k, fcmp(k, LLVMRealOLT, ax, fc(k, x, 1.0)), small, big);
  return copysign_of(k, r, x); /* NaN reaches `big` and stays NaN */
}

/* tanh: x + x^3 P(x^2) for |x| < 0.625 (our fit); 1 - 2 / (exp(2|x|) + 1) above, which is 1
 * once exp overflows. */
LLVMValueRef cg_vm_tanh(CgKernel *k, LLVMValueRef x) {
  static const double small_c[] = {-0.33333333165151735, 0.1333330290828339,   -0.053959276141541716,
                                   0.02176956605551957,  -0.008346578257901246, 0.0022958292141627085};
  LLVMValueRef ax = fabs_of(k, x);
  LLVMValueRef x2 = vm_mul(k, x, x);
  LLVMValueRef small = madd(k, vm_mul(k, x, x2), poly(k, x2, small_c, 6), x);
  LLVMValueRef e = cg_vm_exp(k, vm_mul(k, ax, fc(k, x, 2.0)));
  LLVMValueRef big = vm_sub(k, fc(k, x, 1.0), vm_div(k, fc(k, x, 2.0), vm_add(k, e, fc(k, x, 1.0))));
  LLVMValueRef r = sel(k, fcmp(k, LLVMRealOLT, ax, fc(k, x, 0.625)), small, big);
  return copysign_of(k, r, x);
}

/* sigmoid with z = exp(-|x|) <= 1: 1/(1+z) for x >= 0 and z/(1+z) for x < 0, so tiny results
 * (down to denormals) keep their relative accuracy. */
LLVMValueRef cg_vm_sigmoid(CgKernel *k, LLVMValueRef x) {
  LLVMValueRef z = cg_vm_exp(k, LLVMBuildFNeg(k->b, fabs_of(k, x), ""));
  LLVMValueRef d = vm_add(k, fc(k, x, 1.0), z);
  LLVMValueRef neg = fcmp(k, LLVMRealOLT, x, fc(k, x, 0.0));
  return vm_div(k, sel(k, neg, z, fc(k, x, 1.0)), d);
}

/* softplus = max(x, 0) + log1p(exp(-|x|)): no overflow for large x, exact tails for small. */
LLVMValueRef cg_vm_softplus(CgKernel *k, LLVMValueRef x) {
  LLVMValueRef z = cg_vm_exp(k, LLVMBuildFNeg(k->b, fabs_of(k, x), ""));
  LLVMValueRef pos = sel(k, fcmp(k, LLVMRealOGT, x, fc(k, x, 0.0)), x, fc(k, x, 0.0));
  return vm_add(k, pos, cg_vm_log1p(k, z));
}
