/*
 * arrivals.c - open-loop arrival schedules (see arrivals.h).
 */
#include "loadgen/arrivals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/rng.h"

int qload_arrival_from_name(const char *name, enum qload_arrival_kind *kind)
{
    if (strcmp(name, "poisson") == 0)
        *kind = QLOAD_ARRIVAL_POISSON;
    else if (strcmp(name, "gamma") == 0)
        *kind = QLOAD_ARRIVAL_GAMMA;
    else if (strcmp(name, "constant") == 0)
        *kind = QLOAD_ARRIVAL_CONSTANT;
    else
        return QUARRY_EINVAL;
    return 0;
}

const char *qload_arrival_name(enum qload_arrival_kind kind)
{
    switch (kind) {
    case QLOAD_ARRIVAL_POISSON: return "poisson";
    case QLOAD_ARRIVAL_GAMMA: return "gamma";
    case QLOAD_ARRIVAL_CONSTANT: return "constant";
    }
    return "?";
}

/* One gap in seconds. */
static double next_gap(const struct qload_schedule_opts *o, struct qload_rng *rng)
{
    switch (o->kind) {
    case QLOAD_ARRIVAL_CONSTANT:
        return 1.0 / o->rate;
    case QLOAD_ARRIVAL_GAMMA:
        return qload_rng_gamma(rng, o->burstiness, 1.0 / (o->rate * o->burstiness));
    case QLOAD_ARRIVAL_POISSON:
        break;
    }
    return qload_rng_exponential(rng, 1.0 / o->rate);
}

int qload_schedule_build(const struct qload_schedule_opts *o, int64_t **times_ns, size_t *n,
                         quarry_error *err)
{
    *times_ns = NULL;
    *n = 0;
    if (!(o->rate > 0.0) || !isfinite(o->rate))
        return quarry_errorf(err, QUARRY_EINVAL, "arrivals: rate must be positive (got %g)", o->rate);
    if (o->kind == QLOAD_ARRIVAL_GAMMA && (!(o->burstiness > 0.0) || !isfinite(o->burstiness)))
        return quarry_errorf(err, QUARRY_EINVAL, "arrivals: burstiness must be positive (got %g)",
                             o->burstiness);
    const int by_count = o->max_requests > 0;
    const int by_time = o->duration_s > 0.0;
    if (!by_count && !by_time)
        return quarry_errorf(err, QUARRY_EINVAL, "arrivals: need a request count or a duration");

    /* size: the count bound, or the expected count in the duration plus slack */
    double expect = by_count ? (double)o->max_requests : INFINITY;
    if (by_time) {
        const double in_time = o->rate * o->duration_s;
        const double guess = in_time + 10.0 * sqrt(in_time) + 16.0;
        if (guess < expect)
            expect = guess;
    }
    if (by_count && (double)o->max_requests > (double)QLOAD_SCHEDULE_MAX)
        return quarry_errorf(err, QUARRY_ERANGE, "arrivals: %lld requests is more than the %zu allowed",
                             (long long)o->max_requests, QLOAD_SCHEDULE_MAX);
    if (!by_count && o->rate * o->duration_s > (double)QLOAD_SCHEDULE_MAX)
        return quarry_errorf(err, QUARRY_ERANGE,
                             "arrivals: rate x duration (%g requests) is more than the %zu allowed",
                             o->rate * o->duration_s, QLOAD_SCHEDULE_MAX);
    size_t cap = (size_t)expect;
    if (cap < 16)
        cap = 16;
    int64_t *t = malloc(cap * sizeof *t);
    if (!t)
        return quarry_errorf(err, QUARRY_ENOMEM, "arrivals: out of memory");

    struct qload_rng rng;
    qload_rng_seed(&rng, o->seed);
    const double limit_ns = by_time ? o->duration_s * 1e9 : INFINITY;
    double now_s = 0.0; /* accumulated in seconds (double) so rounding does not drift */
    size_t count = 0;
    for (;;) {
        if (by_count && count >= (size_t)o->max_requests)
            break;
        const double at_ns = now_s * 1e9;
        if (at_ns >= limit_ns)
            break;
        if (count >= QLOAD_SCHEDULE_MAX) {
            free(t);
            return quarry_errorf(err, QUARRY_ERANGE, "arrivals: schedule longer than %zu requests",
                                 QLOAD_SCHEDULE_MAX);
        }
        if (count == cap) {
            const size_t ncap = cap * 2;
            int64_t *nt = realloc(t, ncap * sizeof *nt);
            if (!nt) {
                free(t);
                return quarry_errorf(err, QUARRY_ENOMEM, "arrivals: out of memory");
            }
            t = nt;
            cap = ncap;
        }
        t[count++] = (int64_t)llround(at_ns);
        now_s += next_gap(o, &rng);
    }
    *times_ns = t;
    *n = count;
    return 0;
}
