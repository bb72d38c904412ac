/*
 * rng.h - the seeded random numbers behind every random choice quarry-load
 * makes (arrival gaps, prompt lengths and words, which requests are
 * cancelled), so a run with the same --seed sends the same workload.
 *
 * Generator: xoshiro256** (Blackman and Vigna), state filled from the seed by
 * splitmix64. Distributions: uniform, exponential (inverse CDF), normal
 * (Marsaglia's polar method) and gamma (Marsaglia and Tsang, with the
 * U^(1/k) boost for shapes below 1).
 */
#ifndef QUARRY_LOADGEN_RNG_H
#define QUARRY_LOADGEN_RNG_H

#include <stdint.h>

struct qload_rng {
    uint64_t s[4];
};

/* Seeds the generator; every seed (0 included) gives a valid, distinct state. */
void qload_rng_seed(struct qload_rng *r, uint64_t seed);

uint64_t qload_rng_u64(struct qload_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double qload_rng_uniform(struct qload_rng *r);
/* Uniform integer in [lo, hi] (inclusive); lo when hi <= lo. */
int64_t qload_rng_range(struct qload_rng *r, int64_t lo, int64_t hi);
/* Exponential with the given mean (> 0). */
double qload_rng_exponential(struct qload_rng *r, double mean);
/* Standard normal N(0, 1). */
double qload_rng_normal(struct qload_rng *r);
/* Gamma with shape k > 0 and scale theta > 0 (mean k*theta, variance k*theta^2). */
double qload_rng_gamma(struct qload_rng *r, double shape, double scale);

#endif
