/* rt_dynamic.c - runtime kernels for ops whose output size depends on the data: the caller counts
 * first, allocates, then fills. Elements are handled by size (bits), so one kernel serves every
 * dtype; float zero tests ignore the sign bit so -0.0 counts as zero. */
#include <string.h>

#include "runtime/kiln_rt.h"

static int is_nonzero(const unsigned char *p, int elem_bits, int is_float) {
  switch (elem_bits) {
  case 8: return p[0] != 0;
  case 16: { uint16_t v; memcpy(&v, p, 2); return (is_float ? v & 0x7fff : v) != 0; }
  case 32: { uint32_t v; memcpy(&v, p, 4); return (is_float ? v & 0x7fffffffu : v) != 0; }
  default: { uint64_t v; memcpy(&v, p, 8); return (is_float ? v & 0x7fffffffffffffffull : v) != 0; }
  }
}

int64_t kn_rt_count_nonzero(const void *x, int64_t numel, int elem_bits, int is_float) {
  const unsigned char *p = x;
  int64_t count = 0, size = elem_bits / 8;
  for (int64_t i = 0; i < numel; i++) count += is_nonzero(p + i * size, elem_bits, is_float);
  return count;
}

void kn_rt_nonzero(const void *x, int rank, const int64_t *dims, int elem_bits, int is_float,
                   int64_t count, int64_t *out) {
  const unsigned char *p = x;
  int64_t numel = 1, size = elem_bits / 8, k = 0;
  for (int d = 0; d < rank; d++) numel *= dims[d];
  for (int64_t i = 0; i < numel && k < count; i++) {
    if (!is_nonzero(p + i * size, elem_bits, is_float)) continue;
    int64_t rem = i; /* out is [rank, count]: row d holds the d-th coordinate */
    for (int d = rank - 1; d >= 0; d--) {
      out[d * count + k] = dims[d] ? rem % dims[d] : 0;
      rem = dims[d] ? rem / dims[d] : 0;
    }
    k++;
  }
}

void kn_rt_compress(const void *x, int64_t outer, int64_t axis_len, int64_t inner, int64_t elem_size,
                    const unsigned char *cond, int64_t n_cond, void *out) {
  const unsigned char *src = x;
  unsigned char *dst = out;
  int64_t row = inner * elem_size, n = n_cond < axis_len ? n_cond : axis_len;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < n; j++)
      if (cond[j]) {
        memcpy(dst, src + (o * axis_len + j) * row, (size_t)row);
        dst += row;
      }
}
