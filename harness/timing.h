/*
 * timing.h - clock, summary statistics and a repeat-until-stable measuring
 * loop shared by every benchmark in harness/ (kernels now; model and
 * attention benchmarks later).
 *
 * quarry_measure() calibrates how many calls of the measured function make
 * one run of about rep_seconds (so the clock's resolution does not matter),
 * does the warm-up runs, then repeats runs until both min_reps and
 * min_seconds are reached (at most max_reps). Each run yields one sample:
 * seconds per call. A call that alone takes ten target runs (a big matrix
 * product on scalar kernels) is its own warm-up and gets at most 3 runs.
 */
#ifndef QUARRY_HARNESS_TIMING_H
#define QUARRY_HARNESS_TIMING_H

#include <stdint.h>

/* CLOCK_MONOTONIC in seconds. */
double quarry_now_s(void);

struct quarry_stats {
    double mean, stddev;  /* stddev: sample standard deviation (n-1); 0 when n < 2 */
    double min, max;
    int n;
};

/* Statistics of v[0..n). */
void quarry_stats_compute(const double *v, int n, struct quarry_stats *out);

struct quarry_measure_opts {
    int warmup;          /* runs discarded before measuring */
    int min_reps, max_reps;
    double min_seconds;  /* keep measuring until this much measured time */
    double rep_seconds;  /* target length of one run */
};

/* Standard settings: thorough, or quick (a smoke run). */
struct quarry_measure_opts quarry_measure_defaults(int quick);

/* The measured work: `calls` calls of the operation. Returns 0, or a negative
 * QUARRY_E* code that stops the measurement. */
typedef int (*quarry_measured_fn)(void *ctx, int64_t calls);

#define QUARRY_MEASURE_MAX_REPS 256

/* Fills samples[0..*n_samples) with seconds per call (samples holds at least
 * opts->max_reps, at most QUARRY_MEASURE_MAX_REPS entries are used) and
 * *calls_per_rep. Returns 0 or the function's error code. */
int quarry_measure(quarry_measured_fn fn, void *ctx, const struct quarry_measure_opts *opts,
                   double *samples, int *n_samples, int64_t *calls_per_rep);

#endif
