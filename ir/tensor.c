/* tensor.c - constant tensors: allocation with checked sizes, element access, half-float bits. */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

KnTensor *ir_tensor_new(KnArena *a, KnDtype dtype, int rank, const int64_t *dims, KnError *err) {
  if (!ir_dtype_is_known((int)dtype))
    return kn_fail(err, KN_ERR_UNSUPPORTED, "tensor dtype %d is not supported", (int)dtype), NULL;
  if (rank < 0) return kn_fail(err, KN_ERR_INVALID, "tensor rank %d is negative", rank), NULL;
  KnTensor *t = ir_arena_alloc(a, sizeof *t);
  int64_t *d = ir_arena_calloc(a, (size_t)(rank ? rank : 1), sizeof *d);
  if ((!t || !d) && ir_arena_room(a) < sizeof *t + sizeof *d * (size_t)(rank ? rank : 1) + 128)
    return kn_fail(err, KN_ERR_LIMIT, "this run's memory limit is used up (--max-arena-bytes)"), NULL;
  if (!t || !d) return kn_fail(err, KN_ERR_NOMEM, "out of memory allocating a tensor"), NULL;
  int64_t numel = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0)
      return kn_fail(err, KN_ERR_INVALID, "tensor dim %d is negative (%lld)", i, (long long)dims[i]), NULL;
    if (ir_mul_overflows(numel, dims[i], &numel))
      return kn_fail(err, KN_ERR_LIMIT, "tensor element count overflows"), NULL;
    d[i] = dims[i];
  }
  size_t nbytes = 0;
  size_t elem = dtype == KN_STRING ? sizeof(KnBytes) : 0;
  if (dtype == KN_STRING ? (size_t)numel > SIZE_MAX / elem : !ir_dtype_nbytes(dtype, numel, &nbytes))
    return kn_fail(err, KN_ERR_LIMIT, "tensor byte size overflows"), NULL;
  size_t want = dtype == KN_STRING ? (size_t)numel * elem : nbytes;
  if (want > ir_arena_room(a)) /* before asking malloc for it: a hostile shape must not reach it */
    return kn_fail(err, KN_ERR_LIMIT, "a tensor of %zu bytes exceeds the memory limit (%zu bytes left; --max-arena-bytes)",
                   want, ir_arena_room(a)), NULL;
  t->data = ir_arena_alloc(a, want);
  if (!t->data) return kn_fail(err, KN_ERR_NOMEM, "out of memory allocating %zu tensor bytes", nbytes), NULL;
  if (dtype == KN_STRING) {
    KnBytes *s = t->data;
    for (int64_t i = 0; i < numel; i++) s[i] = (KnBytes){"", 0};
  }
  t->dtype = dtype;
  t->rank = rank;
  t->dims = d;
  t->numel = numel;
  t->nbytes = nbytes;
  return t;
}

float ir_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant) { /* subnormal: renormalize */
    int e = -1;
    do { mant <<= 1; e++; } while (!(mant & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
  } else {
    bits = sign;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t ir_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
  if (exp >= 0x1f) return (uint16_t)(sign | 0x7c00);
  if (exp <= 0) { /* subnormal or zero, round to nearest even */
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* carry into exponent is correct */
  return (uint16_t)h;
}

float ir_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t ir_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

double ir_tensor_get_double(const KnTensor *t, int64_t i) {
  const unsigned char *p = t->data;
  switch (t->dtype) {
  case KN_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
  case KN_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
  case KN_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ir_f16_to_f32(v); }
  case KN_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ir_bf16_to_f32(v); }
  case KN_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
  default: return (double)ir_tensor_get_int(t, i);
  }
}

int64_t ir_tensor_get_int(const KnTensor *t, int64_t i) {
  const unsigned char *p = t->data;
  switch (t->dtype) {
  case KN_I8: return (int8_t)p[i];
  case KN_U8: case KN_BOOL: return p[i];
  case KN_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
  case KN_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
  case KN_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
  case KN_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
  case KN_I64: case KN_U64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
  case KN_F32: case KN_F64: case KN_F16: case KN_BF16: {
    double d = ir_tensor_get_double(t, i);
    if (isnan(d)) return 0;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
  }
  default: return 0;
  }
}

KnTensor *ir_tensor_box(KnArena *a, KnTensorList *l, KnError *err) {
  KnTensor *t = ir_arena_alloc(a, sizeof *t);
  if (!t) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
  t->dtype = l->dtype;
  t->list = l;
  return t;
}
