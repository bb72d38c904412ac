/*
 * test_bench_counters.c - hardware counters (harness/counters.h): on a
 * machine without them (a VM without a PMU) opening never fails, says why,
 * refuses to start and reports null fields; on one with them, counting a
 * loop gives positive cycles and instructions. The per-token JSON (division,
 * IPC, nulls for missing events) is checked on hand-made values either way.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "harness/counters.h"

static void test_open_reports_what_it_has(void **state)
{
    (void)state;
    struct quarry_counters c;
    const int n = quarry_counters_open(&c);
    assert_int_equal(n, c.n_available);
    long long v[QUARRY_CTR_COUNT];
    if (n == 0) {
        /* no PMU: the note says why, nothing starts, every field is null */
        assert_true(strlen(c.note) > 0);
        assert_int_equal(quarry_counters_start(&c), -1);
        assert_int_equal(quarry_counters_stop(&c, v), -1);
        for (int e = 0; e < QUARRY_CTR_COUNT; e++)
            assert_true(v[e] == -1);
        cJSON *j = quarry_counters_json(&c, v, 10);
        assert_non_null(j);
        for (const cJSON *it = j->child; it; it = it->next)
            assert_true(cJSON_IsNull(it));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "ipc")));
        cJSON_Delete(j);
    } else {
        assert_int_equal(quarry_counters_start(&c), 0);
        volatile double x = 0;
        for (int i = 0; i < 1000000; i++)
            x += i * 0.5;
        assert_int_equal(quarry_counters_stop(&c, v), 0);
        assert_true(x > 0);
        for (int e = 0; e < QUARRY_CTR_COUNT; e++)
            assert_true(c.available[e] ? v[e] >= 0 : v[e] == -1);
        if (c.available[QUARRY_CTR_INSTRUCTIONS])
            assert_true(v[QUARRY_CTR_INSTRUCTIONS] > 1000000);
        if (c.available[QUARRY_CTR_CYCLES])
            assert_true(v[QUARRY_CTR_CYCLES] > 0);
    }
    quarry_counters_close(&c);
    quarry_counters_close(&c); /* twice is harmless */
}

/* The JSON from made-up counts: two events present, the rest missing. */
static void test_json_per_token(void **state)
{
    (void)state;
    struct quarry_counters c;
    memset(&c, 0, sizeof c);
    c.eventset = -1;
    c.available[QUARRY_CTR_CYCLES] = 1;
    c.available[QUARRY_CTR_INSTRUCTIONS] = 1;
    c.available[QUARRY_CTR_L2_MISSES] = 1;
    long long v[QUARRY_CTR_COUNT] = {0};
    v[QUARRY_CTR_CYCLES] = 4000;
    v[QUARRY_CTR_INSTRUCTIONS] = 10000;
    v[QUARRY_CTR_L1D_MISSES] = -1;
    v[QUARRY_CTR_L2_MISSES] = 300;
    v[QUARRY_CTR_L3_MISSES] = -1;
    cJSON *j = quarry_counters_json(&c, v, 100);
    assert_non_null(j);
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(j, "cycles")->valuedouble - 40) < 1e-12);
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(j, "instructions")->valuedouble - 100) <
                1e-12);
    /* IPC is a ratio of totals: not divided by tokens */
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(j, "ipc")->valuedouble - 2.5) < 1e-12);
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(j, "l2_misses")->valuedouble - 3) < 1e-12);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "l1d_misses")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "l3_misses")));
    cJSON_Delete(j);
    /* without cycles there is no IPC */
    c.available[QUARRY_CTR_CYCLES] = 0;
    j = quarry_counters_json(&c, v, 100);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "ipc")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "cycles")));
    cJSON_Delete(j);
    assert_string_equal(quarry_counter_name(QUARRY_CTR_L1D_MISSES), "l1d_misses");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_reports_what_it_has),
        cmocka_unit_test(test_json_per_token),
    };
    return TU_RUN_GROUP(tests);
}
