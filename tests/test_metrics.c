/*
 * test_metrics.c - the server's metrics (engine/server/metrics.h): counters
 * per label set, label escaping, histogram buckets (cumulative, boundaries
 * inclusive, sum and count), gauges, and the whole exposition checked as
 * Prometheus text by an independent parser (tests/prom_text.c).
 */
#include "tests/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/server/metrics.h"
#include "tests/prom_text.h"

static char *render(srv_metrics *m, const struct srv_gauges *g)
{
    size_t n = 0;
    char *t = srv_metrics_render(m, g, &n);
    assert_non_null(t);
    assert_int_equal(strlen(t), n);
    char err[256] = "";
    if (prom_check(t, err, sizeof err) != 0)
        fail_msg("not valid Prometheus text: %s\n%s", err, t);
    return t;
}

static double value(const char *text, const char *name, const char *labels)
{
    double v = -1;
    if (!prom_value(text, name, labels, &v))
        fail_msg("no sample %s{%s}", name, labels);
    return v;
}

static void test_empty_is_valid(void **state)
{
    (void)state;
    srv_metrics *m;
    assert_int_equal(srv_metrics_new(&m), 0);
    char *t = render(m, NULL);
    assert_true(value(t, "quarry_model_loaded", "") == 0);
    assert_true(value(t, "quarry_time_to_first_token_seconds_count", "") == 0);
    assert_true(value(t, "quarry_queue_wait_seconds_bucket", "le=\"+Inf\"") == 0);
    assert_non_null(strstr(t, "# TYPE quarry_requests_total counter\n"));
    assert_non_null(strstr(t, "# TYPE quarry_inter_token_latency_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE quarry_kv_cache_cells_used gauge\n"));
    free(t);
    srv_metrics_free(m);
}

static void test_counters(void **state)
{
    (void)state;
    srv_metrics *m;
    assert_int_equal(srv_metrics_new(&m), 0);
    srv_metrics_count_request(m, "/v1/completions", "alice", 200);
    srv_metrics_count_request(m, "/v1/completions", "alice", 200);
    srv_metrics_count_request(m, "/v1/completions", "alice", 429);
    srv_metrics_count_request(m, "/v1/completions", "bob", 200);
    srv_metrics_count_tokens(m, "alice", 5, 64);
    srv_metrics_count_tokens(m, "alice", 7, 1);
    srv_metrics_count_rate_limited(m, "alice", "requests");
    srv_metrics_count_cancelled(m, "disconnect");
    srv_metrics_count_request(m, "/x", "we\"ird\\na\nme", 404);
    char *t = render(m, NULL);
    assert_true(value(t, "quarry_requests_total",
                      "endpoint=\"/v1/completions\",tenant=\"alice\",status=\"200\"") == 2);
    assert_true(value(t, "quarry_requests_total",
                      "endpoint=\"/v1/completions\",tenant=\"alice\",status=\"429\"") == 1);
    assert_true(value(t, "quarry_requests_total",
                      "endpoint=\"/v1/completions\",tenant=\"bob\",status=\"200\"") == 1);
    assert_true(value(t, "quarry_prompt_tokens_total", "tenant=\"alice\"") == 12);
    assert_true(value(t, "quarry_completion_tokens_total", "tenant=\"alice\"") == 65);
    assert_true(value(t, "quarry_rate_limited_total", "tenant=\"alice\",limit=\"requests\"") == 1);
    assert_true(value(t, "quarry_cancelled_requests_total", "reason=\"disconnect\"") == 1);
    /* quote, backslash and newline escaped as the format says */
    assert_true(value(t, "quarry_requests_total",
                      "endpoint=\"/x\",tenant=\"we\\\"ird\\\\na\\nme\",status=\"404\"") == 1);
    free(t);
    srv_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    srv_metrics *m;
    assert_int_equal(srv_metrics_new(&m), 0);
    srv_metrics_observe(m, SRV_HIST_TTFT, 0.003);
    srv_metrics_observe(m, SRV_HIST_TTFT, 0.01);  /* on a boundary: le is inclusive */
    srv_metrics_observe(m, SRV_HIST_TTFT, 0.2);
    srv_metrics_observe(m, SRV_HIST_TTFT, 1000);  /* above every bound */
    srv_metrics_observe(m, SRV_HIST_TTFT, NAN);   /* ignored */
    srv_metrics_observe(m, SRV_HIST_TTFT, -1);    /* ignored */
    char *t = render(m, NULL);
    const char *h = "quarry_time_to_first_token_seconds_bucket";
    assert_true(value(t, h, "le=\"0.005\"") == 1);
    assert_true(value(t, h, "le=\"0.01\"") == 2);
    assert_true(value(t, h, "le=\"0.1\"") == 2);
    assert_true(value(t, h, "le=\"0.25\"") == 3);
    assert_true(value(t, h, "le=\"60\"") == 3);
    assert_true(value(t, h, "le=\"+Inf\"") == 4);
    assert_true(value(t, "quarry_time_to_first_token_seconds_count", "") == 4);
    assert_true(fabs(value(t, "quarry_time_to_first_token_seconds_sum", "") - 1000.213) < 1e-9);
    /* the others are untouched */
    assert_true(value(t, "quarry_inter_token_latency_seconds_count", "") == 0);
    free(t);
    srv_metrics_free(m);
}

static void test_gauges(void **state)
{
    (void)state;
    srv_metrics *m;
    assert_int_equal(srv_metrics_new(&m), 0);
    const struct srv_gauges g = {.active_sequences = 3, .queued_requests = 7,
                                 .sequence_slots = 4, .kv_cells_used = 1234,
                                 .kv_cells_total = 8192, .model_loaded = 1};
    char *t = render(m, &g);
    assert_true(value(t, "quarry_active_sequences", "") == 3);
    assert_true(value(t, "quarry_queued_requests", "") == 7);
    assert_true(value(t, "quarry_sequence_slots", "") == 4);
    assert_true(value(t, "quarry_kv_cache_cells_used", "") == 1234);
    assert_true(value(t, "quarry_kv_cache_cells_total", "") == 8192);
    assert_true(value(t, "quarry_model_loaded", "") == 1);
    free(t);
    srv_metrics_free(m);
}

static void test_checker_catches_errors(void **state)
{
    (void)state;
    /* the checker used above must itself refuse broken text */
    char err[256];
    assert_int_equal(prom_check("# TYPE a counter\na 1\n", err, sizeof err), 0);
    assert_int_equal(prom_check("a 1\n", err, sizeof err), -1);                     /* no TYPE */
    assert_int_equal(prom_check("# TYPE a counter\na 1", err, sizeof err), -1);     /* no \n */
    assert_int_equal(prom_check("# TYPE a counter\na{x=\"1} 1\n", err, sizeof err), -1);
    assert_int_equal(prom_check("# TYPE a counter\na{x=\"1\"} one\n", err, sizeof err), -1);
    assert_int_equal(prom_check("# TYPE a counter\na 1\na 2\n", err, sizeof err), -1);
    assert_int_equal(prom_check("# TYPE a counter\na -1\n", err, sizeof err), -1);
    assert_int_equal(prom_check("# TYPE 1a counter\n", err, sizeof err), -1);
    assert_int_equal(prom_check("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                                err, sizeof err),
                     -1); /* not cumulative */
    assert_int_equal(prom_check("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"
                                "h_count 3\n",
                                err, sizeof err),
                     -1); /* count differs */
}

struct hammer_arg {
    srv_metrics *m;
};

static void *hammer(void *arg)
{
    struct hammer_arg *a = arg;
    for (int i = 0; i < 2000; i++) {
        srv_metrics_count_request(a->m, "/v1/completions", (i & 1) ? "a" : "b", 200);
        srv_metrics_observe(a->m, SRV_HIST_ITL, 0.001 * (i % 7));
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    srv_metrics *m;
    assert_int_equal(srv_metrics_new(&m), 0);
    struct hammer_arg a = {m};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *txt = render(m, NULL);
    assert_true(value(txt, "quarry_requests_total",
                      "endpoint=\"/v1/completions\",tenant=\"a\",status=\"200\"") == 4000);
    assert_true(value(txt, "quarry_inter_token_latency_seconds_count", "") == 8000);
    free(txt);
    srv_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_valid),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_checker_catches_errors),
        cmocka_unit_test(test_threads),
    };
    return TU_RUN_GROUP(tests);
}
