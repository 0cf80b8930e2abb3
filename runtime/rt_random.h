/* rt_random.h - the seeded pseudo-random generator that kernels of the random ops call
 * (RandomNormal/Uniform(Like), Bernoulli, Multinomial): xoshiro256** over a state the kernel
 * keeps on its stack. */
#ifndef KILN_RT_RANDOM_H
#define KILN_RT_RANDOM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Seeds state[4]: from the seed attribute's value when has_seed is nonzero (the same seed always
 * gives the same stream), otherwise from the clock and a process-wide counter (differs per run). */
void kn_rt_random_seed(uint64_t *state, float seed, int32_t has_seed);

/* The next uniform double in [0, 1). */
double kn_rt_random_uniform(uint64_t *state);

/* The next standard normal double (Box-Muller; mean 0, variance 1). */
double kn_rt_random_normal(uint64_t *state);

/* Dropout's keep mask: keep[i] = 1 where a uniform draw is >= ratio. Seeded: numpy's MT19937
 * stream for that seed (as ONNX's reference); otherwise a fresh stream per call. */
void kn_rt_dropout_keep(uint8_t *keep, int64_t n, double ratio, int64_t seed, int32_t has_seed);

#ifdef __cplusplus
}
#endif
#endif
