/*
 * test_bench_compare.c - the noise-aware verdicts of `quarry bench compare`
 * (harness/compare.h) on cases worked out by hand, the pairing of figures
 * between two result documents, and the figure JSON they are made of
 * (harness/figures.h).
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "harness/compare.h"
#include "harness/figures.h"

static enum quarry_cmp_verdict verdict(double mb, double sb, int nb, double mn, double sn, int nn,
                                       int higher_is_better, double *ratio, double *threshold)
{
    const struct quarry_cmp_stat b = {mb, sb, nb}, n = {mn, sn, nn};
    return quarry_cmp_classify(&b, &n, higher_is_better, 0.02, ratio, threshold);
}

/* noise = 2 * sqrt(2^2 + 2^2) = 5.657: a 3% move of a 100 tokens/s figure
 * with those spreads is not evidence of anything */
static void test_change_within_noise_is_same(void **state)
{
    (void)state;
    double r, t;
    assert_int_equal(verdict(100, 2, 5, 97, 2, 5, 1, &r, &t), QUARRY_CMP_SAME);
    assert_true(fabs(t - 2 * sqrt(8.0)) < 1e-9);
    assert_true(fabs(r - 0.97) < 1e-12);
    assert_int_equal(verdict(100, 2, 5, 105.6, 2, 5, 1, &r, &t), QUARRY_CMP_SAME);
}

static void test_change_beyond_noise_has_a_direction(void **state)
{
    (void)state;
    double r, t;
    /* 100 +- 1 -> 90 +- 1: threshold max(2.83, 2) = 2.83, a 10 drop */
    assert_int_equal(verdict(100, 1, 5, 90, 1, 5, 1, &r, &t), QUARRY_CMP_WORSE);
    assert_int_equal(verdict(100, 1, 5, 110, 1, 5, 1, &r, &t), QUARRY_CMP_BETTER);
    /* a cost (ms): lower is better */
    assert_int_equal(verdict(100, 1, 5, 90, 1, 5, 0, &r, &t), QUARRY_CMP_BETTER);
    assert_int_equal(verdict(100, 1, 5, 110, 1, 5, 0, &r, &t), QUARRY_CMP_WORSE);
    /* just past the noise: 2 * sqrt(0.5) = 1.414 > 2% floor of 50 (1.0) */
    assert_int_equal(verdict(50, 0.5, 3, 48.5, 0.5, 3, 1, &r, &t), QUARRY_CMP_WORSE);
    assert_int_equal(verdict(50, 0.5, 3, 48.7, 0.5, 3, 1, &r, &t), QUARRY_CMP_SAME);
}

/* a side measured once has no spread: only the min-change floor applies */
static void test_single_samples_use_the_floor(void **state)
{
    (void)state;
    double r, t;
    assert_int_equal(verdict(100, 50, 1, 101.5, 50, 1, 1, &r, &t), QUARRY_CMP_SAME);
    assert_true(fabs(t - 2.0) < 1e-9);
    assert_int_equal(verdict(100, 0, 1, 97, 0, 1, 1, &r, &t), QUARRY_CMP_WORSE);
    assert_int_equal(verdict(100, 0, 1, 103, 0, 1, 1, &r, &t), QUARRY_CMP_BETTER);
}

static void test_unit_direction(void **state)
{
    (void)state;
    assert_true(quarry_unit_higher_is_better("GB/s"));
    assert_true(quarry_unit_higher_is_better("tokens/s"));
    assert_true(quarry_unit_higher_is_better("GFLOP/s"));
    assert_false(quarry_unit_higher_is_better("ms"));
    assert_false(quarry_unit_higher_is_better("instructions"));
    assert_false(quarry_unit_higher_is_better("s"));
}

static cJSON *figure(const char *group, const char *name, const char *unit, double mean,
                     double sd, int n)
{
    struct quarry_figure f = {.group = group, .name = name, .unit = unit,
                              .stats = {.mean = mean, .stddev = sd, .min = mean, .max = mean,
                                        .n = n},
                              .higher_is_better = quarry_unit_higher_is_better(unit),
                              .fraction_of_membw = -1};
    quarry_figure_label_str(&f, "test", "tg128");
    quarry_figure_label_num(&f, "threads", 2);
    cJSON *j = quarry_figure_json(&f);
    assert_non_null(j);
    return j;
}

static cJSON *doc_with(cJSON **figs, int n)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, figs[i]);
    return doc;
}

static const struct quarry_cmp_row *row_named(const struct quarry_cmp_row *rows, size_t n,
                                              const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

static void test_documents_pair_by_group_and_name(void **state)
{
    (void)state;
    cJSON *b[] = {figure("model", "llama 1B Q4_0 tg128 t2", "tokens/s", 50, 0.5, 5),
                  figure("model", "llama 1B Q8_0 tg128 t2", "tokens/s", 25, 0.2, 5),
                  figure("kernels", "matvec q4_0 avx2 t1", "GB/s", 20, 0.1, 7),
                  figure("attention", "flash avx2 f16 d512 q1", "GFLOP/s", 10, 0.1, 7)};
    cJSON *n[] = {figure("model", "llama 1B Q4_0 tg128 t2", "tokens/s", 40, 0.5, 5),
                  figure("model", "llama 1B Q8_0 tg128 t2", "tokens/s", 25.1, 0.2, 5),
                  figure("kernels", "matvec q4_0 avx2 t1", "GB/s", 25, 0.1, 7),
                  /* same name, another unit: not the same figure */
                  figure("attention", "flash avx2 f16 d512 q1", "ms", 10, 0.1, 7),
                  figure("model", "llama 1B Q6_K tg128 t2", "tokens/s", 30, 0.1, 5)};
    cJSON *base = doc_with(b, 4), *now = doc_with(n, 5);
    struct quarry_cmp_row *rows = NULL;
    size_t count = 0;
    quarry_error err = {0};
    assert_int_equal(quarry_compare_results(base, now, 0.02, &rows, &count, &err), 0);
    assert_int_equal(count, 6);
    const struct quarry_cmp_row *r = row_named(rows, count, "llama 1B Q4_0 tg128 t2");
    assert_non_null(r);
    assert_int_equal(r->verdict, QUARRY_CMP_WORSE);
    assert_true(fabs(r->ratio - 0.8) < 1e-12);
    assert_int_equal(row_named(rows, count, "llama 1B Q8_0 tg128 t2")->verdict, QUARRY_CMP_SAME);
    assert_int_equal(row_named(rows, count, "matvec q4_0 avx2 t1")->verdict, QUARRY_CMP_BETTER);
    assert_int_equal(row_named(rows, count, "llama 1B Q6_K tg128 t2")->verdict,
                     QUARRY_CMP_ONLY_NEW);
    /* the unit mismatch: the baseline's figure is unmatched, the new one is new */
    int only_base = 0, only_new = 0;
    for (size_t i = 0; i < count; i++)
        if (strcmp(rows[i].name, "flash avx2 f16 d512 q1") == 0) {
            only_base += rows[i].verdict == QUARRY_CMP_ONLY_BASE;
            only_new += rows[i].verdict == QUARRY_CMP_ONLY_NEW;
        }
    assert_int_equal(only_base, 1);
    assert_int_equal(only_new, 1);
    free(rows);
    cJSON_Delete(base);
    cJSON_Delete(now);
}

static void test_document_without_figures_is_refused(void **state)
{
    (void)state;
    cJSON *base = cJSON_Parse("{\"schema\": \"quarry-results/1\"}");
    cJSON *now = cJSON_Parse("{\"results\": []}");
    struct quarry_cmp_row *rows = NULL;
    size_t count = 0;
    quarry_error err = {0};
    assert_int_equal(quarry_compare_results(base, now, 0.02, &rows, &count, &err),
                     QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "baseline"));
    assert_null(rows);
    cJSON_Delete(base);
    cJSON_Delete(now);
}

static void test_figure_json_fields(void **state)
{
    (void)state;
    const double samples[] = {49.0, 50.0, 51.0};
    struct quarry_figure f = {.group = "model", .name = "x tg128 t2", .unit = "tokens/s",
                              .stats = {.mean = 50, .stddev = 1, .min = 49, .max = 51, .n = 3},
                              .samples = samples, .n_samples = 3, .higher_is_better = 1,
                              .fraction_of_membw = 0.25};
    quarry_figure_label_str(&f, "test", "tg128");
    cJSON *j = quarry_figure_json(&f);
    assert_non_null(j);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "samples");
    assert_int_equal(cJSON_GetArraySize(s), 3);
    assert_true(cJSON_GetArrayItem(s, 2)->valuedouble == 51.0);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "fraction_of_membw")->valuedouble == 0.25);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "engine")->valuestring, "quarry");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "test")->valuestring, "tg128");
    const char *group, *name, *unit;
    struct quarry_cmp_stat st;
    int hb;
    assert_int_equal(quarry_cmp_read_figure(j, &group, &name, &unit, &st, &hb), 0);
    assert_int_equal(st.n, 3);
    assert_true(hb);
    cJSON_Delete(j);
    /* no samples, no fraction: nulls */
    f.samples = NULL;
    f.fraction_of_membw = -1;
    j = quarry_figure_json(&f);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "samples")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "fraction_of_membw")));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_within_noise_is_same),
        cmocka_unit_test(test_change_beyond_noise_has_a_direction),
        cmocka_unit_test(test_single_samples_use_the_floor),
        cmocka_unit_test(test_unit_direction),
        cmocka_unit_test(test_documents_pair_by_group_and_name),
        cmocka_unit_test(test_document_without_figures_is_refused),
        cmocka_unit_test(test_figure_json_fields),
    };
    return TU_RUN_GROUP(tests);
}
