/*
 * histogram.h - a log-linear (HDR-style) histogram of non-negative integer
 * values, used by quarry-load for every latency (in nanoseconds) and token
 * count it reports.
 *
 * Layout: values below 256 have a bucket each (exact). Above, every
 * power-of-two range [2^e, 2^(e+1)) is split into 128 equal buckets, so a
 * bucket is at most 1/128 of its lower bound wide and a percentile read back
 * as the bucket's midpoint is within 1/256 (0.4%) of the recorded value.
 * The top bucket ends at 2^42 ns (73 minutes): the range covers 1 ns to one
 * hour; larger values are clamped into the top bucket and counted in
 * `saturated`. Count, min, max, mean and standard deviation are kept exactly
 * (Welford's running mean and sum of squares, merged with Chan's formula),
 * not read back from buckets. Two histograms merge by adding buckets, so
 * per-connection or per-run histograms combine without losing accuracy.
 */
#ifndef QUARRY_LOADGEN_HISTOGRAM_H
#define QUARRY_LOADGEN_HISTOGRAM_H

#include <stdint.h>

#include "engine/error.h"

#define QLOAD_HIST_SUB_BITS 7                          /* 128 linear buckets per octave */
#define QLOAD_HIST_MAX_EXP 42                          /* values < 2^42 are tracked */
#define QLOAD_HIST_BUCKETS ((QLOAD_HIST_MAX_EXP - QLOAD_HIST_SUB_BITS + 1) << QLOAD_HIST_SUB_BITS)
#define QLOAD_HIST_MAX_VALUE ((UINT64_C(1) << QLOAD_HIST_MAX_EXP) - 1)

struct qload_hist {
    uint64_t count;
    uint64_t saturated;   /* values above QLOAD_HIST_MAX_VALUE (clamped into the top bucket) */
    uint64_t min, max;    /* exact; min is UINT64_MAX while empty */
    double mean, m2;      /* Welford: running mean, sum of squared deviations */
    uint64_t *buckets;    /* QLOAD_HIST_BUCKETS counts */
};

/* Allocates the buckets. Returns 0 or QUARRY_ENOMEM. */
int qload_hist_init(struct qload_hist *h, quarry_error *err);
void qload_hist_free(struct qload_hist *h);
void qload_hist_reset(struct qload_hist *h);

void qload_hist_record(struct qload_hist *h, uint64_t value);
/* Adds src's values to dst. */
void qload_hist_merge(struct qload_hist *dst, const struct qload_hist *src);

/* The value at percentile p (0..100): the nearest-rank value (the smallest
 * recorded value with at least ceil(p/100 * count) values at or below it),
 * read back as its bucket's midpoint and clamped to [min, max]. 0 when empty. */
double qload_hist_percentile(const struct qload_hist *h, double p);
double qload_hist_mean(const struct qload_hist *h);    /* 0 when empty */
double qload_hist_stddev(const struct qload_hist *h);  /* population; 0 when count < 2 */

/* Bucket geometry (for tests and the JSON export of raw buckets). */
int qload_hist_bucket_index(uint64_t value);
uint64_t qload_hist_bucket_lower(int index);
uint64_t qload_hist_bucket_width(int index);

#endif
