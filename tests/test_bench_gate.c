/*
 * test_bench_gate.c - the regression gate's parts that run without valgrind
 * (harness/gate.h): the verdicts against a baseline at the 3% threshold, the
 * counts file the gate script writes, a baseline document read back, and the
 * workloads themselves - each one runs, gives the same output twice, and the
 * planted slowdown switches on only for its workload without changing the
 * result. tools/bench-gate-selftest.sh covers the same under callgrind.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "harness/gate.h"

static cJSON *baseline_of(const char *json)
{
    cJSON *b = cJSON_Parse(json);
    assert_non_null(b);
    return b;
}

static const struct quarry_gate_row *find_row(const struct quarry_gate_row *rows, size_t n,
                                              const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    fail_msg("no row %s", name);
    return NULL;
}

static void test_verdicts_at_the_threshold(void **state)
{
    (void)state;
    cJSON *base = baseline_of("{\"isa\": \"avx2\", \"workloads\": {"
                              "\"a\": {\"instructions\": 1000000},"
                              "\"b\": {\"instructions\": 1000000},"
                              "\"c\": {\"instructions\": 1000000},"
                              "\"d\": {\"instructions\": 1000000},"
                              "\"gone\": {\"instructions\": 5}}}");
    const struct quarry_gate_count now[] = {
        {"a", 1030000},  /* +3.0%: not more than 3% */
        {"b", 1030001},  /* just above: fails */
        {"c", 960000},   /* -4%: an improvement */
        {"d", 1000000},
        {"fresh", 42},
    };
    struct quarry_gate_row rows[8];
    size_t n = 0;
    quarry_error err = {0};
    assert_int_equal(quarry_gate_compare(base, now, 5, 0.03, rows, 8, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_int_equal(find_row(rows, n, "a")->verdict, QUARRY_GATE_SAME);
    assert_int_equal(find_row(rows, n, "b")->verdict, QUARRY_GATE_REGRESSED);
    assert_int_equal(find_row(rows, n, "c")->verdict, QUARRY_GATE_IMPROVED);
    assert_int_equal(find_row(rows, n, "d")->verdict, QUARRY_GATE_SAME);
    assert_int_equal(find_row(rows, n, "gone")->verdict, QUARRY_GATE_MISSING);
    assert_int_equal(find_row(rows, n, "fresh")->verdict, QUARRY_GATE_NEW);
    assert_true(find_row(rows, n, "c")->change < -0.0399 && find_row(rows, n, "c")->change > -0.0401);
    /* too small a row buffer is an error, not a truncated verdict */
    assert_int_equal(quarry_gate_compare(base, now, 5, 0.03, rows, 3, &n, &err), QUARRY_ERANGE);
    cJSON_Delete(base);
}

static void test_malformed_baselines(void **state)
{
    (void)state;
    struct quarry_gate_row rows[4];
    size_t n;
    quarry_error err = {0};
    const struct quarry_gate_count now[] = {{"a", 10}};
    cJSON *b = baseline_of("{\"isa\": \"avx2\"}");
    assert_int_equal(quarry_gate_compare(b, now, 1, 0.03, rows, 4, &n, &err), QUARRY_EFORMAT);
    cJSON_Delete(b);
    b = baseline_of("{\"workloads\": {\"a\": {\"instructions\": \"many\"}}}");
    assert_int_equal(quarry_gate_compare(b, now, 1, 0.03, rows, 4, &n, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "a"));
    cJSON_Delete(b);
    b = baseline_of("{\"workloads\": {\"a\": {\"instructions\": 0}}}");
    assert_int_equal(quarry_gate_compare(b, now, 1, 0.03, rows, 4, &n, &err), QUARRY_EFORMAT);
    cJSON_Delete(b);
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/quarry-test-gate-XXXXXX");
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_counts_file(void **state)
{
    (void)state;
    struct quarry_gate_count c[4];
    size_t n;
    char isa[16];
    quarry_error err = {0};
    const char *p = temp_file("matvec_q4_0\tavx2\t608663\nflash_attn\tavx2\t7491262\n");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), 0);
    remove(p);
    assert_int_equal(n, 2);
    assert_string_equal(isa, "avx2");
    assert_string_equal(c[1].name, "flash_attn");
    assert_true(c[1].instructions == 7491262u);

    p = temp_file("a\tavx2\t10\nb\tscalar\t10\n");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "different ISA"));
    remove(p);
    p = temp_file("a\tavx2\t10\na\tavx2\t11\n");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "twice"));
    remove(p);
    p = temp_file("a avx2 10\n");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), QUARRY_EFORMAT);
    remove(p);
    p = temp_file("a\tavx2\t10 extra\n");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), QUARRY_EFORMAT);
    remove(p);
    p = temp_file("");
    assert_int_equal(quarry_gate_read_counts(p, c, 4, &n, isa, &err), QUARRY_EFORMAT);
    remove(p);
    assert_int_equal(quarry_gate_read_counts("/nonexistent/counts.tsv", c, 4, &n, isa, &err),
                     QUARRY_EIO);
}

/* A baseline written from counts, printed and parsed back, compares equal. */
static void test_baseline_round_trip(void **state)
{
    (void)state;
    const struct quarry_gate_count counts[] = {{"x", 123456789}, {"y", 1}};
    cJSON *doc = quarry_gate_baseline_new(counts, 2, "avx2", "valgrind --tool=callgrind", "abc");
    assert_non_null(doc);
    char *text = cJSON_Print(doc);
    cJSON *back = cJSON_Parse(text);
    free(text);
    cJSON_Delete(doc);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "isa")->valuestring, "avx2");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "schema")->valuestring,
                        "quarry-gate/1");
    struct quarry_gate_row rows[4];
    size_t n;
    quarry_error err = {0};
    assert_int_equal(quarry_gate_compare(back, counts, 2, 0.03, rows, 4, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].verdict, QUARRY_GATE_SAME);
    assert_true(rows[0].base == 123456789u);
    cJSON_Delete(back);
}

static double run_once(const char *name, int *planted)
{
    quarry_gate_workload *w = NULL;
    quarry_error err = {0};
    const int rc = quarry_gate_workload_new(name, &w, &err);
    if (rc)
        fail_msg("%s: %s", name, err.msg);
    assert_int_equal(quarry_gate_warmup(w, &err), 0);
    assert_int_equal(quarry_gate_measured(w, &err), 0);
    const double sum = quarry_gate_checksum(w);
    *planted = quarry_gate_planted(w);
    quarry_gate_workload_free(w);
    return sum;
}

static void test_every_workload_runs_the_same_twice(void **state)
{
    (void)state;
    unsetenv(QUARRY_GATE_PLANT_ENV);
    assert_true(quarry_gate_workload_count() >= 20);
    for (size_t i = 0; i < quarry_gate_workload_count(); i++) {
        const char *name = quarry_gate_workload_name(i);
        int planted;
        const double a = run_once(name, &planted);
        assert_false(planted);
        const double b = run_once(name, &planted);
        if (a != b)
            fail_msg("%s: checksum %.17g then %.17g", name, a, b);
        if (a == 0)
            fail_msg("%s: checksum 0: the workload computed nothing", name);
    }
    quarry_gate_workload *w = NULL;
    quarry_error err = {0};
    assert_int_equal(quarry_gate_workload_new("no_such_workload", &w, &err), QUARRY_ENOTFOUND);
    assert_null(w);
}

/* The planted slowdown redoes part of the work: the output must not change,
 * and only its own workload may be affected. */
static void test_planted_slowdown_is_confined(void **state)
{
    (void)state;
    int planted;
    unsetenv(QUARRY_GATE_PLANT_ENV);
    const double clean = run_once(QUARRY_GATE_PLANTED_WORKLOAD, &planted);
    assert_false(planted);
    setenv(QUARRY_GATE_PLANT_ENV, "1", 1);
    const double slowed = run_once(QUARRY_GATE_PLANTED_WORKLOAD, &planted);
    assert_true(planted);
    assert_true(clean == slowed);
    run_once("matvec_q4_0", &planted);
    assert_false(planted);
    setenv(QUARRY_GATE_PLANT_ENV, "0", 1);
    run_once(QUARRY_GATE_PLANTED_WORKLOAD, &planted);
    assert_false(planted);
    unsetenv(QUARRY_GATE_PLANT_ENV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_at_the_threshold),
        cmocka_unit_test(test_malformed_baselines),
        cmocka_unit_test(test_counts_file),
        cmocka_unit_test(test_baseline_round_trip),
        cmocka_unit_test(test_every_workload_runs_the_same_twice),
        cmocka_unit_test(test_planted_slowdown_is_confined),
    };
    return TU_RUN_GROUP(tests);
}
