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

/* ---- Dropout's mask: MT19937 as numpy's legacy np.random.seed(int) + random_sample() --------
 * A seeded Dropout draws the stream numpy would from that seed (so ONNX's reference masks are
 * reproduced, and the same seed gives the same mask on every run); without a seed the
 * generator starts from the clock and differs per run. */
typedef struct Mt {
  uint32_t s[624];
  int i;
} Mt;

static void mt_seed(Mt *m, uint32_t seed) {
  m->s[0] = seed;
  for (int i = 1; i < 624; i++) m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
  m->i = 624;
}

static uint32_t mt_next(Mt *m) {
  if (m->i >= 624) {
    for (int k = 0; k < 624; k++) {
      uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
      m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfu : 0);
    }
    m->i = 0;
  }
  uint32_t y = m->s[m->i++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

static double mt_double(Mt *m) { /* numpy's random_sample: 53 bits from two draws */
  uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

void kn_rt_dropout_keep(uint8_t *keep, int64_t n, double ratio, int64_t seed, int32_t has_seed) {
  Mt m;
  if (has_seed) {
    mt_seed(&m, (uint32_t)seed);
  } else {
    uint64_t state[4];
    kn_rt_random_seed(state, 0, 0);
    mt_seed(&m, (uint32_t)(state[0] ^ (state[1] >> 32)));
  }
  for (int64_t i = 0; i < n; i++) keep[i] = mt_double(&m) >= ratio;
}
