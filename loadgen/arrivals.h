/*
 * arrivals.h - the open-loop arrival schedule: when each request is meant to
 * be sent, computed in full before the run starts so that nothing the server
 * does (slow answers, refused connections) can shift it. Latencies in open
 * loop are measured from these intended times (no coordinated omission).
 *
 * Gaps between requests (mean 1/rate):
 *   constant - exactly 1/rate;
 *   poisson  - exponential, coefficient of variation 1;
 *   gamma    - shape k = burstiness, scale 1/(rate * k): the same mean rate,
 *              coefficient of variation 1/sqrt(k) (k < 1 burstier than
 *              Poisson, k > 1 smoother, k = 1 is Poisson), as in vLLM's
 *              benchmark_serving.
 * The first request is intended at time 0; request i at the sum of the first
 * i gaps. The schedule ends at max_requests entries or at the last time
 * below duration, whichever comes first.
 */
#ifndef QUARRY_LOADGEN_ARRIVALS_H
#define QUARRY_LOADGEN_ARRIVALS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

enum qload_arrival_kind {
    QLOAD_ARRIVAL_POISSON,
    QLOAD_ARRIVAL_GAMMA,
    QLOAD_ARRIVAL_CONSTANT,
};

/* Longest schedule built (a guard against --rate 1e9 --duration 1e9). */
#define QLOAD_SCHEDULE_MAX ((size_t)100 * 1000 * 1000)

struct qload_schedule_opts {
    double rate;                   /* requests per second, > 0 */
    enum qload_arrival_kind kind;
    double burstiness;             /* gamma shape, > 0 (gamma only) */
    uint64_t seed;
    int64_t max_requests;          /* <= 0: no count bound */
    double duration_s;             /* <= 0: no time bound */
};

/* Parses "poisson", "gamma" or "constant". Returns 0 or QUARRY_EINVAL. */
int qload_arrival_from_name(const char *name, enum qload_arrival_kind *kind);
const char *qload_arrival_name(enum qload_arrival_kind kind);

/* Builds the schedule: *times_ns (malloc'd, caller frees) holds *n intended
 * send times in nanoseconds from the start, non-decreasing. At least one
 * bound must be set. Returns 0, QUARRY_EINVAL, QUARRY_ERANGE (longer than
 * QLOAD_SCHEDULE_MAX) or QUARRY_ENOMEM. */
int qload_schedule_build(const struct qload_schedule_opts *opts, int64_t **times_ns, size_t *n,
                         quarry_error *err);

#endif
