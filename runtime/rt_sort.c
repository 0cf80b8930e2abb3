/* rt_sort.c - runtime kernels that sort: TopK (called from generated code) and the orderings
 * Unique needs. Elements are compared as int64, uint64 or double by dtype (ONNX codes); equal
 * elements keep their original order (lower index first), as ONNX requires. */
#include <stdlib.h>
#include <string.h>

#include "runtime/kiln_rt.h"

typedef struct SortKey {
  union { double f; int64_t i; uint64_t u; };
  int64_t index;
} SortKey;

enum { KIND_FLOAT, KIND_INT, KIND_UINT };

/* ONNX dtype codes: 1 f32, 2 u8, 3 i8, 4 u16, 5 i16, 6 i32, 7 i64, 9 bool, 10 f16, 11 f64, 12 u32, 13 u64, 16 bf16. */
static int kind_of(int dtype) {
  switch (dtype) {
  case 1: case 10: case 11: case 16: return KIND_FLOAT;
  case 2: case 4: case 9: case 12: case 13: return KIND_UINT;
  default: return KIND_INT;
  }
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
  else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (!man) bits = sign;
  else {
    float f = (float)man / 16777216.0f; /* subnormal: man * 2^-24 */
    return sign ? -f : f;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Element i of a tensor of dtype as a sort key. */
void kn_rt_load_key(const void *x, int dtype, int64_t i, void *key_out) {
  SortKey *k = key_out;
  const unsigned char *p = x;
  switch (dtype) {
  case 1: { float v; memcpy(&v, p + 4 * i, 4); k->f = v; break; }
  case 11: memcpy(&k->f, p + 8 * i, 8); break;
  case 10: { uint16_t h; memcpy(&h, p + 2 * i, 2); k->f = half_to_float(h); break; }
  case 16: { uint16_t h; uint32_t b; float v; memcpy(&h, p + 2 * i, 2); b = (uint32_t)h << 16; memcpy(&v, &b, 4); k->f = v; break; }
  case 2: case 9: k->u = p[i]; break;
  case 3: k->i = (int8_t)p[i]; break;
  case 4: { uint16_t v; memcpy(&v, p + 2 * i, 2); k->u = v; break; }
  case 5: { int16_t v; memcpy(&v, p + 2 * i, 2); k->i = v; break; }
  case 6: { int32_t v; memcpy(&v, p + 4 * i, 4); k->i = v; break; }
  case 12: { uint32_t v; memcpy(&v, p + 4 * i, 4); k->u = v; break; }
  case 13: memcpy(&k->u, p + 8 * i, 8); break;
  default: memcpy(&k->i, p + 8 * i, 8); break;
  }
}

typedef struct Order { int kind, descending; } Order;

/* -1, 0, 1 comparing values (NaN sorts above everything, as numpy's sort puts it last). */
static int compare_values(const SortKey *a, const SortKey *b, int kind) {
  switch (kind) {
  case KIND_FLOAT: {
    int an = a->f != a->f, bn = b->f != b->f;
    if (an || bn) return an - bn;
    return (a->f > b->f) - (a->f < b->f);
  }
  case KIND_UINT: return (a->u > b->u) - (a->u < b->u);
  default: return (a->i > b->i) - (a->i < b->i);
  }
}

static int compare_keys(const void *pa, const void *pb, void *ctx) {
  const Order *o = ctx;
  const SortKey *a = pa, *b = pb;
  int c = compare_values(a, b, o->kind);
  if (o->descending) c = -c;
  if (c) return c;
  return (a->index > b->index) - (a->index < b->index);
}

int32_t kn_rt_top_k(KnRtCtx *ctx, const void *x, int32_t dtype, int64_t outer, int64_t n, int64_t inner,
                    int64_t k, int32_t largest, void *values, int64_t *indices, int32_t elem_size) {
  SortKey *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
  if (!keys) return kn_rt_fail(ctx, 6 /* KN_ERR_NOMEM */, "TopK: out of memory for a row of", n);
  Order o = {kind_of(dtype), largest != 0};
  const unsigned char *src = x;
  unsigned char *dst = values;
  for (int64_t a = 0; a < outer; a++)
    for (int64_t c = 0; c < inner; c++) {
      for (int64_t j = 0; j < n; j++) {
        kn_rt_load_key(x, dtype, (a * n + j) * inner + c, &keys[j]);
        keys[j].index = j;
      }
      qsort_r(keys, (size_t)n, sizeof *keys, compare_keys, &o);
      for (int64_t j = 0; j < k; j++) {
        int64_t out = (a * k + j) * inner + c, in = (a * n + keys[j].index) * inner + c;
        memcpy(dst + out * elem_size, src + in * elem_size, (size_t)elem_size);
        indices[out] = keys[j].index;
      }
    }
  free(keys);
  return 0;
}

/* ---- Unique ---- */
typedef struct SliceSet {
  const void *x;
  int dtype, kind;
  int64_t outer, n, inner;
} SliceSet;

/* Lexicographic comparison of slices i and j of x viewed as [outer, n, inner] along n. */
static int compare_slices(const SliceSet *s, int64_t i, int64_t j) {
  for (int64_t a = 0; a < s->outer; a++)
    for (int64_t c = 0; c < s->inner; c++) {
      SortKey ki, kj;
      kn_rt_load_key(s->x, s->dtype, (a * s->n + i) * s->inner + c, &ki);
      kn_rt_load_key(s->x, s->dtype, (a * s->n + j) * s->inner + c, &kj);
      int r = compare_values(&ki, &kj, s->kind);
      if (r) return r;
    }
  return 0;
}

static int compare_slice_index(const void *pa, const void *pb, void *ctx) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  int r = compare_slices(ctx, a, b);
  return r ? r : (a > b) - (a < b);
}

static int compare_by_first(const void *pa, const void *pb, void *ctx) {
  const int64_t *first = ctx, a = first[*(const int64_t *)pa], b = first[*(const int64_t *)pb];
  return (a > b) - (a < b);
}

int64_t kn_rt_unique(const void *x, int32_t dtype, int64_t outer, int64_t n, int64_t inner, int32_t sorted,
                     int64_t *first, int64_t *inverse, int64_t *counts) {
  SliceSet s = {x, dtype, kind_of(dtype), outer, n, inner};
  int64_t *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
  if (!perm) return -1;
  for (int64_t j = 0; j < n; j++) perm[j] = j;
  qsort_r(perm, (size_t)n, sizeof *perm, compare_slice_index, &s);
  /* Groups of equal slices in sorted order; the first of each group is its first occurrence. */
  int64_t groups = 0;
  for (int64_t j = 0; j < n; j++) {
    if (j == 0 || compare_slices(&s, perm[j - 1], perm[j]) != 0) first[groups++] = perm[j];
    inverse[perm[j]] = groups - 1;
  }
  if (!sorted) { /* renumber groups by first occurrence */
    int64_t *rank = perm; /* reuse: rank of group g in first-occurrence order */
    int64_t *order = malloc((size_t)(groups > 0 ? groups : 1) * sizeof *order);
    if (!order) {
      free(perm);
      return -1;
    }
    for (int64_t g = 0; g < groups; g++) order[g] = g;
    qsort_r(order, (size_t)groups, sizeof *order, compare_by_first, first);
    for (int64_t g = 0; g < groups; g++) rank[order[g]] = g;
    int64_t *new_first = order; /* first occurrences in their own order are increasing */
    for (int64_t g = 0; g < groups; g++) new_first[rank[g]] = first[g];
    memcpy(first, new_first, (size_t)groups * sizeof *first);
    for (int64_t j = 0; j < n; j++) inverse[j] = rank[inverse[j]];
    free(order);
  }
  for (int64_t g = 0; g < groups; g++) counts[g] = 0;
  for (int64_t j = 0; j < n; j++) counts[inverse[j]]++;
  free(perm);
  return groups;
}
