/*
 * test_arrivals.c - open-loop arrival schedules (loadgen/arrivals.h) over
 * many samples: the mean rate, the spread of the gaps (coefficient of
 * variation 1 for Poisson, 1/sqrt(k) for gamma with burstiness k, 0 for
 * constant), the exponential shape of Poisson gaps and the Poisson spread
 * of counts per window, each within a tolerance of 4-6 standard errors of
 * the estimate; plus the bounds (count, duration, both), seeding and
 * argument checks.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "loadgen/arrivals.h"

struct gap_stats {
    double mean, cv;
    size_t n;
};

static struct gap_stats gaps_of(const int64_t *t, size_t n)
{
    struct gap_stats g = {0};
    g.n = n - 1;
    double sum = 0;
    for (size_t i = 1; i < n; i++)
        sum += (double)(t[i] - t[i - 1]);
    g.mean = sum / (double)g.n;
    double ss = 0;
    for (size_t i = 1; i < n; i++) {
        const double d = (double)(t[i] - t[i - 1]) - g.mean;
        ss += d * d;
    }
    g.cv = sqrt(ss / (double)(g.n - 1)) / g.mean;
    return g;
}

static int64_t *build(double rate, enum qload_arrival_kind kind, double burstiness, uint64_t seed,
                      int64_t max_requests, double duration_s, size_t *n)
{
    const struct qload_schedule_opts o = {
        .rate = rate, .kind = kind, .burstiness = burstiness, .seed = seed,
        .max_requests = max_requests, .duration_s = duration_s};
    int64_t *t = NULL;
    quarry_error err;
    assert_int_equal(qload_schedule_build(&o, &t, n, &err), 0);
    assert_non_null(t);
    assert_int_equal(t[0], 0);
    for (size_t i = 1; i < *n; i++)
        assert_true(t[i] >= t[i - 1]);
    return t;
}

/* Poisson: mean gap 1/rate, CV 1, P(gap < mean) = 1 - 1/e, and counts in
 * windows with variance equal to their mean. */
static void test_poisson(void **state)
{
    (void)state;
    const double rate = 1000;
    const size_t want = 200000;
    size_t n;
    int64_t *t = build(rate, QLOAD_ARRIVAL_POISSON, 1, 42, (int64_t)want, 0, &n);
    assert_int_equal(n, want);
    const struct gap_stats g = gaps_of(t, n);
    /* standard error of the mean gap: 1/sqrt(n) = 0.22% */
    assert_true(fabs(g.mean / 1e6 - 1.0) < 0.01);
    /* standard error of the CV: about sqrt(2/n) = 0.32% */
    assert_true(fabs(g.cv - 1.0) < 0.02);
    size_t below = 0;
    for (size_t i = 1; i < n; i++)
        below += (double)(t[i] - t[i - 1]) < 1e6;
    const double frac = (double)below / (double)(n - 1);
    assert_true(fabs(frac - (1.0 - exp(-1.0))) < 0.005); /* standard error 0.11% */
    /* counts per 100 ms window: mean 100, index of dispersion 1 */
    const size_t windows = (size_t)(t[n - 1] / 100000000);
    size_t *count = calloc(windows, sizeof *count);
    assert_non_null(count);
    for (size_t i = 0; i < n; i++) {
        const size_t w = (size_t)(t[i] / 100000000);
        if (w < windows)
            count[w]++;
    }
    double m = 0, v = 0;
    for (size_t w = 0; w < windows; w++)
        m += (double)count[w];
    m /= (double)windows;
    for (size_t w = 0; w < windows; w++)
        v += ((double)count[w] - m) * ((double)count[w] - m);
    v /= (double)(windows - 1);
    assert_true(fabs(m - 100.0) < 2.0);
    assert_true(fabs(v / m - 1.0) < 0.15); /* ~2000 windows: standard error ~0.03 */
    free(count);
    free(t);
}

/* Gamma with burstiness k: same mean rate, CV 1/sqrt(k). */
static void check_gamma(double k, uint64_t seed)
{
    const double rate = 250;
    size_t n;
    int64_t *t = build(rate, QLOAD_ARRIVAL_GAMMA, k, seed, 200000, 0, &n);
    const struct gap_stats g = gaps_of(t, n);
    const double want_cv = 1.0 / sqrt(k);
    /* standard errors: mean CV/sqrt(n) (<= 0.45%), CV below 0.6% for these k */
    if (fabs(g.mean / 4e6 - 1.0) > 0.02)
        fail_msg("gamma k=%g: mean gap %.0f ns, want 4e6", k, g.mean);
    if (fabs(g.cv / want_cv - 1.0) > 0.03)
        fail_msg("gamma k=%g: CV %.4f, want %.4f", k, g.cv, want_cv);
    free(t);
}

static void test_gamma_bursty(void **state)
{
    (void)state;
    check_gamma(0.25, 7);
}

static void test_gamma_poisson_like(void **state)
{
    (void)state;
    check_gamma(1.0, 8);
}

static void test_gamma_smooth(void **state)
{
    (void)state;
    check_gamma(4.0, 9);
}

static int t_gap_below(const int64_t *t, size_t i, int64_t limit)
{
    return t[i] - t[i - 1] < limit;
}

/* Bursty schedules bunch up: with k = 0.25 far more gaps are tiny than with Poisson. */
static void test_burstiness_orders_schedules(void **state)
{
    (void)state;
    size_t n1, n2;
    int64_t *p = build(100, QLOAD_ARRIVAL_GAMMA, 1.0, 3, 50000, 0, &n1);
    int64_t *b = build(100, QLOAD_ARRIVAL_GAMMA, 0.25, 3, 50000, 0, &n2);
    size_t tiny_p = 0, tiny_b = 0;
    for (size_t i = 1; i < n1; i++) {
        tiny_p += t_gap_below(p, i, 1000000);
        tiny_b += t_gap_below(b, i, 1000000);
    }
    /* P(gap < 1 ms) at 100/s: 1 - e^-0.1 = 9.5% for Poisson; about 44% for k = 0.25 */
    assert_true(fabs((double)tiny_p / (double)(n1 - 1) - (1.0 - exp(-0.1))) < 0.01);
    assert_true((double)tiny_b / (double)(n2 - 1) > 0.3);
    free(p);
    free(b);
}

static void test_constant(void **state)
{
    (void)state;
    size_t n;
    int64_t *t = build(300, QLOAD_ARRIVAL_CONSTANT, 1, 1, 3000, 0, &n);
    assert_int_equal(n, 3000);
    for (size_t i = 0; i < n; i++) /* i / 300 s, to the nanosecond */
        assert_true(llabs(t[i] - llround((double)i * 1e9 / 300.0)) <= 1);
    free(t);
}

static void test_bounds(void **state)
{
    (void)state;
    size_t n;
    /* duration only: all times inside, count about rate * duration */
    int64_t *t = build(500, QLOAD_ARRIVAL_POISSON, 1, 5, 0, 10.0, &n);
    assert_true(t[n - 1] < 10000000000LL);
    assert_true(n > 5000 - 5 * 71 && n < 5000 + 5 * 71); /* Poisson sd sqrt(5000) = 71 */
    free(t);
    /* both: whichever comes first */
    t = build(500, QLOAD_ARRIVAL_POISSON, 1, 5, 100, 10.0, &n);
    assert_int_equal(n, 100);
    free(t);
    t = build(100, QLOAD_ARRIVAL_CONSTANT, 1, 5, 1000000, 1.0, &n);
    assert_int_equal(n, 100); /* 0, 10 ms, ..., 990 ms */
    free(t);
}

static void test_seeding(void **state)
{
    (void)state;
    size_t n1, n2, n3;
    int64_t *a = build(50, QLOAD_ARRIVAL_GAMMA, 0.5, 11, 1000, 0, &n1);
    int64_t *b = build(50, QLOAD_ARRIVAL_GAMMA, 0.5, 11, 1000, 0, &n2);
    int64_t *c = build(50, QLOAD_ARRIVAL_GAMMA, 0.5, 12, 1000, 0, &n3);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof *a);
    size_t same = 0;
    for (size_t i = 1; i < n1; i++)
        same += a[i] == c[i];
    assert_true(same < 5);
    free(a);
    free(b);
    free(c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    quarry_error err;
    int64_t *t = NULL;
    size_t n = 0;
    struct qload_schedule_opts o = {.rate = 10, .kind = QLOAD_ARRIVAL_POISSON, .burstiness = 1, .max_requests = 5};
    o.rate = 0;
    assert_int_equal(qload_schedule_build(&o, &t, &n, &err), QUARRY_EINVAL);
    o.rate = NAN;
    assert_int_equal(qload_schedule_build(&o, &t, &n, &err), QUARRY_EINVAL);
    o.rate = 10;
    o.kind = QLOAD_ARRIVAL_GAMMA;
    o.burstiness = 0;
    assert_int_equal(qload_schedule_build(&o, &t, &n, &err), QUARRY_EINVAL);
    o.burstiness = 1;
    o.max_requests = 0;
    assert_int_equal(qload_schedule_build(&o, &t, &n, &err), QUARRY_EINVAL);
    o.rate = 1e7;
    o.duration_s = 1e6;
    assert_int_equal(qload_schedule_build(&o, &t, &n, &err), QUARRY_ERANGE);
    assert_null(t);
    enum qload_arrival_kind k;
    assert_int_equal(qload_arrival_from_name("gamma", &k), 0);
    assert_int_equal(k, QLOAD_ARRIVAL_GAMMA);
    assert_int_equal(qload_arrival_from_name("uniform", &k), QUARRY_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poisson),
        cmocka_unit_test(test_gamma_bursty),
        cmocka_unit_test(test_gamma_poisson_like),
        cmocka_unit_test(test_gamma_smooth),
        cmocka_unit_test(test_burstiness_orders_schedules),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_seeding),
        cmocka_unit_test(test_bad_arguments),
    };
    return TU_RUN_GROUP(tests);
}
