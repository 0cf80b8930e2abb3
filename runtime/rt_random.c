/* rt_random.c - xoshiro256** seeded through splitmix64, for the random ops' kernels. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "runtime/rt_random.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void kn_rt_random_seed(uint64_t *state, float seed, int32_t has_seed) {
  static atomic_uint_fast64_t counter;
  uint64_t x;
  if (has_seed) {
    uint32_t bits;
    memcpy(&bits, &seed, sizeof bits);
    x = 0x6b696c6eull ^ bits; /* "kiln" */
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)atomic_fetch_add(&counter, 1) * 0xd1b54a32d192ed03ull;
    x ^= (uint64_t)(uintptr_t)state; /* distinct per thread's stack */
  }
  for (int i = 0; i < 4; i++) state[i] = splitmix64(&x);
}

double kn_rt_random_uniform(uint64_t *state) { return (double)(next_u64(state) >> 11) * 0x1.0p-53; }

double kn_rt_random_normal(uint64_t *state) {
  double u1 = 1.0 - kn_rt_random_uniform(state); /* (0, 1]: log stays finite */
  double u2 = kn_rt_random_uniform(state);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}
