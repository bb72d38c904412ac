/*
 * test_histogram.c - the load generator's log-linear histogram
 * (loadgen/histogram.h): bucket geometry (every value lands in a bucket that
 * contains it, buckets tile the range with no gaps, width at most 1/128 of
 * the lower bound), percentiles against exact nearest-rank percentiles of
 * sorted samples from several distributions over 1 us .. 1 h (relative error
 * within the documented 1/256), exact count/min/max/mean/stddev, merging
 * (identical to recording everything in one histogram), the ends of the
 * range and saturation above it.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/histogram.h"

#define NS_PER_US 1000.0
#define NS_PER_HOUR 3.6e12

static const double check_pcts[] = {0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99};

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted v[0..n): the ceil(p/100 * n)-th value. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void test_bucket_geometry(void **state)
{
    (void)state;
    /* buckets tile [0, 2^42) without gaps or overlaps */
    for (int i = 0; i + 1 < QLOAD_HIST_BUCKETS; i++) {
        assert_int_equal(qload_hist_bucket_lower(i) + qload_hist_bucket_width(i),
                         qload_hist_bucket_lower(i + 1));
        if (i >= 256) /* the log part: width <= lower / 128 */
            assert_true(qload_hist_bucket_width(i) * 128 <= qload_hist_bucket_lower(i));
    }
    assert_int_equal(qload_hist_bucket_lower(QLOAD_HIST_BUCKETS - 1) +
                         qload_hist_bucket_width(QLOAD_HIST_BUCKETS - 1) - 1,
                     QLOAD_HIST_MAX_VALUE);
    /* every value lands in the bucket that holds it: all values below 2^20,
     * then random values up to the top, and the edges of every octave */
    uint64_t rng = 12345;
    for (uint64_t v = 0; v < (1u << 20); v++) {
        const int i = qload_hist_bucket_index(v);
        assert_true(v >= qload_hist_bucket_lower(i) && v < qload_hist_bucket_lower(i) + qload_hist_bucket_width(i));
    }
    for (int k = 0; k < 200000; k++) {
        const uint64_t v = tu_rand_u64(&rng) >> (64 - QLOAD_HIST_MAX_EXP);
        const int i = qload_hist_bucket_index(v);
        assert_true(i >= 0 && i < QLOAD_HIST_BUCKETS);
        assert_true(v >= qload_hist_bucket_lower(i) && v < qload_hist_bucket_lower(i) + qload_hist_bucket_width(i));
    }
    for (int e = 1; e < QLOAD_HIST_MAX_EXP; e++) {
        const uint64_t edge = UINT64_C(1) << e;
        assert_true(qload_hist_bucket_index(edge - 1) < qload_hist_bucket_index(edge));
        assert_int_equal(qload_hist_bucket_lower(qload_hist_bucket_index(edge)), edge);
    }
    assert_int_equal(qload_hist_bucket_index(QLOAD_HIST_MAX_VALUE), QLOAD_HIST_BUCKETS - 1);
    assert_int_equal(qload_hist_bucket_index(UINT64_MAX), QLOAD_HIST_BUCKETS - 1);
}

enum dist { LOG_UNIFORM, EXPONENTIAL, LOGNORMAL, BIMODAL, NARROW };

static uint64_t draw(enum dist d, uint64_t *rng)
{
    double v = 0;
    switch (d) {
    case LOG_UNIFORM: /* 1 us .. 1 h, every scale equally */
        v = NS_PER_US * exp(tu_rand_uniform(rng) * log(NS_PER_HOUR / NS_PER_US));
        break;
    case EXPONENTIAL: /* mean 50 ms */
        v = -50e6 * log(1.0 - tu_rand_uniform(rng));
        break;
    case LOGNORMAL: /* median 200 ms, heavy tail */
        v = 200e6 * exp(1.2 * tu_rand_normal(rng));
        break;
    case BIMODAL: /* fast hits around 2 ms, slow misses around 900 ms */
        v = tu_rand_uniform(rng) < 0.9 ? 2e6 + 2e5 * tu_rand_normal(rng) : 9e8 + 5e7 * tu_rand_normal(rng);
        break;
    case NARROW: /* 10 ms +- 3 us: many values share buckets */
        v = 10e6 + 3e3 * tu_rand_normal(rng);
        break;
    }
    if (v < NS_PER_US)
        v = NS_PER_US;
    if (v > NS_PER_HOUR)
        v = NS_PER_HOUR;
    return (uint64_t)llround(v);
}

static void check_distribution(enum dist d, uint64_t seed)
{
    const size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    struct qload_hist h;
    assert_int_equal(qload_hist_init(&h, NULL), 0);
    uint64_t rng = seed;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = draw(d, &rng);
        qload_hist_record(&h, v[i]);
        sum += (double)v[i];
    }
    const double mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += ((double)v[i] - mean) * ((double)v[i] - mean);
    const double sd = sqrt(ss / (double)n);
    qsort(v, n, sizeof *v, cmp_u64);

    assert_int_equal(h.count, n);
    assert_int_equal(h.min, v[0]);
    assert_int_equal(h.max, v[n - 1]);
    assert_int_equal(h.saturated, 0);
    assert_true(fabs(qload_hist_mean(&h) - mean) <= 1e-9 * mean);
    assert_true(fabs(qload_hist_stddev(&h) - sd) <= 1e-6 * sd);
    for (size_t k = 0; k < sizeof check_pcts / sizeof check_pcts[0]; k++) {
        const double exact = (double)exact_percentile(v, n, check_pcts[k]);
        const double got = qload_hist_percentile(&h, check_pcts[k]);
        const double rel = fabs(got - exact) / exact;
        if (rel > 1.0 / 256.0)
            fail_msg("dist %d p%g: histogram %.0f, exact %.0f, relative error %.5f > 1/256", (int)d,
                     check_pcts[k], got, exact, rel);
    }
    /* and at many random percentiles */
    for (int k = 0; k < 2000; k++) {
        const double p = 100.0 * tu_rand_uniform(&rng);
        const double exact = (double)exact_percentile(v, n, p);
        const double got = qload_hist_percentile(&h, p);
        if (fabs(got - exact) / exact > 1.0 / 256.0)
            fail_msg("dist %d p%.6f: histogram %.0f, exact %.0f", (int)d, p, got, exact);
    }
    assert_true(qload_hist_percentile(&h, 0) == (double)v[0]);
    assert_true(qload_hist_percentile(&h, 100) == (double)v[n - 1]);
    qload_hist_free(&h);
    free(v);
}

static void test_percentiles_log_uniform(void **state)
{
    (void)state;
    check_distribution(LOG_UNIFORM, 1);
}

static void test_percentiles_exponential(void **state)
{
    (void)state;
    check_distribution(EXPONENTIAL, 2);
}

static void test_percentiles_lognormal(void **state)
{
    (void)state;
    check_distribution(LOGNORMAL, 3);
}

static void test_percentiles_bimodal(void **state)
{
    (void)state;
    check_distribution(BIMODAL, 4);
}

static void test_percentiles_narrow(void **state)
{
    (void)state;
    check_distribution(NARROW, 5);
}

/* Values below 256 have their own buckets: percentiles are exact. */
static void test_small_values_exact(void **state)
{
    (void)state;
    struct qload_hist h;
    assert_int_equal(qload_hist_init(&h, NULL), 0);
    for (uint64_t v = 1; v <= 200; v++)
        for (uint64_t r = 0; r < v % 7 + 1; r++)
            qload_hist_record(&h, v);
    /* rebuild the sorted list to compare against */
    uint64_t sorted[2000];
    size_t n = 0;
    for (uint64_t v = 1; v <= 200; v++)
        for (uint64_t r = 0; r < v % 7 + 1; r++)
            sorted[n++] = v;
    assert_int_equal(h.count, n);
    for (int p = 1; p <= 100; p++)
        assert_true(qload_hist_percentile(&h, p) == (double)exact_percentile(sorted, n, p));
    qload_hist_free(&h);
}

/* Merging per-part histograms gives exactly the whole-run histogram. */
static void test_merge(void **state)
{
    (void)state;
    struct qload_hist whole, part[4], merged;
    assert_int_equal(qload_hist_init(&whole, NULL), 0);
    assert_int_equal(qload_hist_init(&merged, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qload_hist_init(&part[i], NULL), 0);
    uint64_t rng = 99;
    for (int i = 0; i < 100000; i++) {
        /* parts with different ranges, so the merge of mean/variance matters */
        const int k = (int)(tu_rand_u64(&rng) % 4);
        const uint64_t v = draw(k == 0 ? NARROW : k == 1 ? EXPONENTIAL : k == 2 ? LOGNORMAL : LOG_UNIFORM, &rng);
        qload_hist_record(&whole, v);
        qload_hist_record(&part[k], v);
    }
    for (int i = 0; i < 4; i++)
        qload_hist_merge(&merged, &part[i]);
    assert_int_equal(merged.count, whole.count);
    assert_int_equal(merged.min, whole.min);
    assert_int_equal(merged.max, whole.max);
    assert_memory_equal(merged.buckets, whole.buckets, QLOAD_HIST_BUCKETS * sizeof *whole.buckets);
    assert_true(fabs(qload_hist_mean(&merged) - qload_hist_mean(&whole)) <= 1e-9 * qload_hist_mean(&whole));
    assert_true(fabs(qload_hist_stddev(&merged) - qload_hist_stddev(&whole)) <=
                1e-9 * qload_hist_stddev(&whole));
    for (size_t k = 0; k < sizeof check_pcts / sizeof check_pcts[0]; k++)
        assert_true(qload_hist_percentile(&merged, check_pcts[k]) ==
                    qload_hist_percentile(&whole, check_pcts[k]));
    /* merging an empty histogram changes nothing; into an empty one copies */
    struct qload_hist empty;
    assert_int_equal(qload_hist_init(&empty, NULL), 0);
    qload_hist_merge(&merged, &empty);
    assert_int_equal(merged.count, whole.count);
    qload_hist_merge(&empty, &whole);
    assert_int_equal(empty.count, whole.count);
    assert_true(qload_hist_percentile(&empty, 50) == qload_hist_percentile(&whole, 50));
    qload_hist_free(&empty);
    for (int i = 0; i < 4; i++)
        qload_hist_free(&part[i]);
    qload_hist_free(&merged);
    qload_hist_free(&whole);
}

static void test_range_ends_and_saturation(void **state)
{
    (void)state;
    struct qload_hist h;
    assert_int_equal(qload_hist_init(&h, NULL), 0);
    assert_true(qload_hist_percentile(&h, 50) == 0.0);
    assert_true(qload_hist_mean(&h) == 0.0 && qload_hist_stddev(&h) == 0.0);
    const uint64_t one_us = 1000, one_hour = 3600ull * 1000000000ull;
    qload_hist_record(&h, one_us);
    qload_hist_record(&h, one_hour);
    assert_int_equal(h.saturated, 0);
    /* 1 us is not in an exact bucket (width 4 ns there): read back within 1/256 */
    assert_true(fabs(qload_hist_percentile(&h, 50) - (double)one_us) <= (double)one_us / 256.0);
    assert_true(qload_hist_percentile(&h, 100) == (double)one_hour);
    assert_true(fabs(qload_hist_percentile(&h, 99) - (double)one_hour) <= (double)one_hour / 256.0);
    /* above the range: counted, clamped into the top bucket, max still exact */
    const uint64_t huge = UINT64_C(1) << 50;
    qload_hist_record(&h, huge);
    assert_int_equal(h.saturated, 1);
    assert_int_equal(h.max, huge);
    assert_int_equal(h.buckets[QLOAD_HIST_BUCKETS - 1], 1);
    assert_true(qload_hist_percentile(&h, 100) == (double)huge);
    qload_hist_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(h.saturated, 0);
    qload_hist_record(&h, 0);
    assert_true(qload_hist_percentile(&h, 50) == 0.0);
    assert_int_equal(h.min, 0);
    qload_hist_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_geometry),
        cmocka_unit_test(test_percentiles_log_uniform),
        cmocka_unit_test(test_percentiles_exponential),
        cmocka_unit_test(test_percentiles_lognormal),
        cmocka_unit_test(test_percentiles_bimodal),
        cmocka_unit_test(test_percentiles_narrow),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_range_ends_and_saturation),
    };
    return TU_RUN_GROUP(tests);
}
