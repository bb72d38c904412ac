/*
 * rng.c - seeded random numbers for the load generator (see rng.h).
 */
#include "loadgen/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qload_rng_seed(struct qload_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 never yields four zero words in a row, but be explicit */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t qload_rng_u64(struct qload_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double qload_rng_uniform(struct qload_rng *r)
{
    return (double)(qload_rng_u64(r) >> 11) * 0x1.0p-53;
}

int64_t qload_rng_range(struct qload_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    const uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    if (span == 0) /* the whole 64-bit range */
        return (int64_t)qload_rng_u64(r);
    /* rejection sampling: no modulo bias */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t v;
    do {
        v = qload_rng_u64(r);
    } while (v >= limit);
    return (int64_t)((uint64_t)lo + v % span);
}

double qload_rng_exponential(struct qload_rng *r, double mean)
{
    /* 1 - U is in (0, 1], so the log is finite */
    return -mean * log(1.0 - qload_rng_uniform(r));
}

double qload_rng_normal(struct qload_rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * qload_rng_uniform(r) - 1.0;
        v = 2.0 * qload_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

double qload_rng_gamma(struct qload_rng *r, double shape, double scale)
{
    if (shape < 1.0) {
        /* Gamma(k) = Gamma(k + 1) * U^(1/k) */
        double u;
        do {
            u = qload_rng_uniform(r);
        } while (u == 0.0);
        return qload_rng_gamma(r, shape + 1.0, scale) * pow(u, 1.0 / shape);
    }
    /* Marsaglia and Tsang (2000) */
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = qload_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = qload_rng_uniform(r);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x))
            return d * v * scale;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * scale;
    }
}
