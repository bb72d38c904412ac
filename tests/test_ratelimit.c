/*
 * test_ratelimit.c - token buckets and per-tenant admission
 * (engine/server/ratelimit.h), driven by a fake clock: burst up to the
 * per-minute limit, continuous refill, Retry-After rounding, token debt,
 * concurrency slots, unlimited tenants, and admission under many threads
 * never exceeding the limit.
 */
#include "tests/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "engine/server/ratelimit.h"

static void test_bucket_refill(void **state)
{
    (void)state;
    struct srv_bucket b;
    srv_bucket_init(&b, 60, 100.0); /* 60 per minute = 1 per second */
    assert_true(b.level == 60);
    assert_true(srv_bucket_wait(&b, 1, 100.0) == 0);
    srv_bucket_take(&b, 60, 100.0);
    assert_true(fabs(b.level) < 1e-9);
    /* half a second later half a unit is back: 0.5 s to wait for one */
    assert_true(fabs(srv_bucket_wait(&b, 1, 100.5) - 0.5) < 1e-9);
    /* refill never exceeds the capacity */
    srv_bucket_refill(&b, 1000.0);
    assert_true(b.level == 60);
    /* a clock that goes backwards adds nothing */
    srv_bucket_take(&b, 10, 1000.0);
    srv_bucket_refill(&b, 999.0);
    assert_true(fabs(b.level - 50) < 1e-9);
    /* more than the capacity: wait until full */
    srv_bucket_take(&b, 50, 1000.0);
    assert_true(fabs(srv_bucket_wait(&b, 1000, 1000.0) - 60.0) < 1e-9);
    /* unlimited */
    struct srv_bucket u;
    srv_bucket_init(&u, 0, 0);
    srv_bucket_take(&u, 1e9, 0);
    assert_true(srv_bucket_wait(&u, 1e9, 0) == 0);
}

static void test_request_limit(void **state)
{
    (void)state;
    const struct srv_tenant_limits lim[2] = {{3, 0, 0}, {0, 0, 0}};
    srv_limiter *l;
    assert_int_equal(srv_limiter_new(lim, 2, 0.0, &l), 0);
    unsigned retry = 0;
    /* three requests in a burst, the fourth within the minute is refused */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(srv_limiter_admit(l, 0, 10, 1.0 + i * 0.1, &retry), SRV_LIMIT_NONE);
        srv_limiter_release(l, 0, 5, 1.0 + i * 0.1);
    }
    assert_int_equal(srv_limiter_admit(l, 0, 10, 1.3, &retry), SRV_LIMIT_REQUESTS);
    /* 3 per minute = 0.05 units/s. The bucket was full until the first
     * request at 1.0 s; by 1.3 s 0.3 * 0.05 = 0.015 units came back, so
     * 0.985 units = 19.7 s are missing -> Retry-After 20 */
    assert_int_equal(retry, 20);
    /* the other tenant is not affected */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(srv_limiter_admit(l, 1, 1000, 1.3, &retry), SRV_LIMIT_NONE);
        srv_limiter_release(l, 1, 1000, 1.3);
    }
    /* 20 s later one more fits, not two */
    assert_int_equal(srv_limiter_admit(l, 0, 1, 21.3, &retry), SRV_LIMIT_NONE);
    srv_limiter_release(l, 0, 0, 21.3);
    assert_int_equal(srv_limiter_admit(l, 0, 1, 21.4, &retry), SRV_LIMIT_REQUESTS);
    assert_true(retry >= 1);
    /* a tenant index out of range is not limited (the server never asks) */
    assert_int_equal(srv_limiter_admit(l, 7, 1, 0, &retry), SRV_LIMIT_NONE);
    srv_limiter_free(l);
}

static void test_token_limit(void **state)
{
    (void)state;
    const struct srv_tenant_limits lim = {0, 600, 0}; /* 10 tokens per second */
    srv_limiter *l;
    assert_int_equal(srv_limiter_new(&lim, 1, 0.0, &l), 0);
    unsigned retry = 0;
    /* prompt 100 + completion 450: 50 left */
    assert_int_equal(srv_limiter_admit(l, 0, 100, 0.0, &retry), SRV_LIMIT_NONE);
    srv_limiter_release(l, 0, 450, 0.0);
    /* still positive: admitted, and this one overdraws by 250 */
    assert_int_equal(srv_limiter_admit(l, 0, 100, 0.0, &retry), SRV_LIMIT_NONE);
    srv_limiter_release(l, 0, 200, 0.0);
    /* in debt: refused until the debt is refilled (25 s at 10/s) */
    assert_int_equal(srv_limiter_admit(l, 0, 1, 0.0, &retry), SRV_LIMIT_TOKENS);
    assert_int_equal(retry, 26); /* 25 s and a little more, rounded up */
    assert_int_equal(srv_limiter_admit(l, 0, 1, 24.0, &retry), SRV_LIMIT_TOKENS);
    assert_int_equal(retry, 2);
    assert_int_equal(srv_limiter_admit(l, 0, 1, 25.1, &retry), SRV_LIMIT_NONE);
    srv_limiter_release(l, 0, 0, 25.1);
    srv_limiter_free(l);
}

static void test_concurrency_limit(void **state)
{
    (void)state;
    const struct srv_tenant_limits lim = {0, 0, 2};
    srv_limiter *l;
    assert_int_equal(srv_limiter_new(&lim, 1, 0.0, &l), 0);
    unsigned retry = 0;
    assert_int_equal(srv_limiter_admit(l, 0, 1, 0, &retry), SRV_LIMIT_NONE);
    assert_int_equal(srv_limiter_admit(l, 0, 1, 0, &retry), SRV_LIMIT_NONE);
    assert_int_equal(srv_limiter_admit(l, 0, 1, 0, &retry), SRV_LIMIT_CONCURRENCY);
    assert_int_equal(retry, 1);
    srv_limiter_release(l, 0, 0, 0);
    assert_int_equal(srv_limiter_admit(l, 0, 1, 0, &retry), SRV_LIMIT_NONE);
    srv_limiter_free(l);
}

static void test_refusal_charges_nothing(void **state)
{
    (void)state;
    /* a request refused by one limit takes nothing from the others */
    const struct srv_tenant_limits lim = {2, 600, 1};
    srv_limiter *l;
    assert_int_equal(srv_limiter_new(&lim, 1, 0.0, &l), 0);
    unsigned retry;
    assert_int_equal(srv_limiter_admit(l, 0, 10, 0, &retry), SRV_LIMIT_NONE);
    for (int i = 0; i < 5; i++)
        assert_int_equal(srv_limiter_admit(l, 0, 10, 0, &retry), SRV_LIMIT_CONCURRENCY);
    srv_limiter_release(l, 0, 0, 0);
    /* the request bucket lost only the one admitted request: one more fits */
    assert_int_equal(srv_limiter_admit(l, 0, 10, 0, &retry), SRV_LIMIT_NONE);
    srv_limiter_release(l, 0, 0, 0);
    assert_int_equal(srv_limiter_admit(l, 0, 10, 0, &retry), SRV_LIMIT_REQUESTS);
    assert_string_equal(srv_limit_name(SRV_LIMIT_REQUESTS), "requests");
    assert_string_equal(srv_limit_name(SRV_LIMIT_TOKENS), "tokens");
    assert_string_equal(srv_limit_name(SRV_LIMIT_CONCURRENCY), "concurrency");
    srv_limiter_free(l);
}

struct race {
    srv_limiter *l;
    atomic_int admitted;
};

static void *hammer(void *arg)
{
    struct race *r = arg;
    unsigned retry;
    for (int i = 0; i < 1000; i++)
        if (srv_limiter_admit(r->l, 0, 1, 0.0, &retry) == SRV_LIMIT_NONE)
            atomic_fetch_add(&r->admitted, 1);
    return NULL;
}

static void test_limits_hold_across_threads(void **state)
{
    (void)state;
    const struct srv_tenant_limits lim = {50, 0, 0};
    struct race r;
    assert_int_equal(srv_limiter_new(&lim, 1, 0.0, &r.l), 0);
    atomic_init(&r.admitted, 0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &r), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    /* the clock stands still: exactly the burst, no more */
    assert_int_equal(atomic_load(&r.admitted), 50);
    srv_limiter_free(r.l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_refill),
        cmocka_unit_test(test_request_limit),
        cmocka_unit_test(test_token_limit),
        cmocka_unit_test(test_concurrency_limit),
        cmocka_unit_test(test_refusal_charges_nothing),
        cmocka_unit_test(test_limits_hold_across_threads),
    };
    return TU_RUN_GROUP(tests);
}
