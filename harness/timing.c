/*
 * timing.c - clock, statistics and the measuring loop (see timing.h).
 */
#include "harness/timing.h"

#include <math.h>
#include <time.h>

double quarry_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void quarry_stats_compute(const double *v, int n, struct quarry_stats *out)
{
    out->n = n;
    out->mean = out->stddev = out->min = out->max = 0;
    if (n <= 0)
        return;
    double sum = 0;
    out->min = out->max = v[0];
    for (int i = 0; i < n; i++) {
        sum += v[i];
        if (v[i] < out->min)
            out->min = v[i];
        if (v[i] > out->max)
            out->max = v[i];
    }
    out->mean = sum / n;
    if (n > 1) {
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += (v[i] - out->mean) * (v[i] - out->mean);
        out->stddev = sqrt(ss / (n - 1));
    }
}

struct quarry_measure_opts quarry_measure_defaults(int quick)
{
    if (quick)
        return (struct quarry_measure_opts){.warmup = 1, .min_reps = 3, .max_reps = 10,
                                            .min_seconds = 0.05, .rep_seconds = 0.01};
    return (struct quarry_measure_opts){.warmup = 2, .min_reps = 7, .max_reps = 50,
                                        .min_seconds = 1.0, .rep_seconds = 0.05};
}

int quarry_measure(quarry_measured_fn fn, void *ctx, const struct quarry_measure_opts *opts,
                   double *samples, int *n_samples, int64_t *calls_per_rep)
{
    *n_samples = 0;
    int max_reps = opts->max_reps;
    if (max_reps > QUARRY_MEASURE_MAX_REPS)
        max_reps = QUARRY_MEASURE_MAX_REPS;
    if (max_reps < 1)
        max_reps = 1;

    /* calibration: one call (it also warms the caches) */
    double t0 = quarry_now_s();
    int rc = fn(ctx, 1);
    if (rc != 0)
        return rc;
    double one = quarry_now_s() - t0;
    int64_t calls = 1;
    if (one < opts->rep_seconds)
        calls = one > 0 ? (int64_t)(opts->rep_seconds / one) : 1000;
    if (calls < 1)
        calls = 1;
    *calls_per_rep = calls;

    /* a call that alone lasts ten runs' worth: the calibration call was its
     * warm-up, and three runs are enough (they already exceed min_seconds) */
    const int long_call = one >= 10 * opts->rep_seconds;
    const int warmup = long_call ? 0 : opts->warmup;
    const int min_reps = long_call && opts->min_reps > 3 ? 3 : opts->min_reps;
    for (int w = 0; w < warmup; w++)
        if ((rc = fn(ctx, calls)) != 0)
            return rc;

    double measured = 0;
    int n = 0;
    while (n < max_reps && (n < min_reps || measured < opts->min_seconds)) {
        t0 = quarry_now_s();
        if ((rc = fn(ctx, calls)) != 0)
            return rc;
        const double t = quarry_now_s() - t0;
        measured += t;
        samples[n++] = t / (double)calls;
    }
    *n_samples = n;
    return 0;
}
