/*
 * test_bench_import.c - reading llama-bench output (harness/import.h): the
 * JSON array of `llama-bench -o json` and the lines of `-o jsonl`, test names
 * as llama-bench prints them, figures named like quarry's own model figures,
 * statistics from samples_ts, older files without samples, and errors that
 * name the entry or line at fault. The inputs follow the field list of
 * llama-bench's README (tools/llama-bench, JSON and JSONL output).
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "harness/import.h"

/* Two results as llama-bench -o json prints them (fields trimmed to those
 * that matter plus a few it always has). */
static const char json_output[] =
    "[\n"
    "  {\n"
    "    \"build_commit\": \"8cf427ff\", \"build_number\": 5163,\n"
    "    \"cpu_info\": \"AMD EPYC\", \"gpu_info\": \"\", \"backends\": \"CPU\",\n"
    "    \"model_filename\": \"tinyllama-1.1b-Q4_0.gguf\", \"model_type\": \"llama 1B Q4_0\",\n"
    "    \"model_size\": 636725856, \"model_n_params\": 1100048384,\n"
    "    \"n_batch\": 2048, \"n_ubatch\": 512, \"n_threads\": 2, \"type_k\": \"f16\",\n"
    "    \"type_v\": \"f16\", \"n_gpu_layers\": 0, \"flash_attn\": false,\n"
    "    \"n_prompt\": 512, \"n_gen\": 0, \"n_depth\": 0, \"test_time\": \"2025-04-24T11:58:50Z\",\n"
    "    \"avg_ns\": 2782608695, \"stddev_ns\": 30000000,\n"
    "    \"avg_ts\": 184.0, \"stddev_ts\": 2.0,\n"
    "    \"samples_ns\": [2760000000, 2790000000, 2800000000],\n"
    "    \"samples_ts\": [185.5, 183.5, 183.0]\n"
    "  },\n"
    "  {\n"
    "    \"model_type\": \"llama 1B Q4_0\", \"n_threads\": 2, \"n_prompt\": 0, \"n_gen\": 128,\n"
    "    \"n_depth\": 512, \"avg_ts\": 50.2, \"stddev_ts\": 0.3,\n"
    "    \"samples_ts\": [50.0, 50.1, 50.5]\n"
    "  }\n"
    "]\n";

static const cJSON *fig_field(const cJSON *fig, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(fig, key);
}

static void test_json_array(void **state)
{
    (void)state;
    cJSON *figs = cJSON_CreateArray(), *raw = cJSON_CreateArray();
    int n = 0;
    quarry_error err = {0};
    assert_int_equal(
        quarry_import_llama_bench(json_output, strlen(json_output), figs, raw, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cJSON_GetArraySize(figs), 2);
    assert_int_equal(cJSON_GetArraySize(raw), 2);
    const cJSON *pp = cJSON_GetArrayItem(figs, 0);
    assert_string_equal(fig_field(pp, "group")->valuestring, "model");
    assert_string_equal(fig_field(pp, "name")->valuestring, "llama 1B Q4_0 pp512 t2");
    assert_string_equal(fig_field(pp, "engine")->valuestring, "llama.cpp");
    assert_string_equal(fig_field(pp, "unit")->valuestring, "tokens/s");
    /* llama-bench's aggregates are kept as they are; n and the extremes
     * come from the samples */
    assert_true(fig_field(pp, "mean")->valuedouble == 184.0);
    assert_true(fig_field(pp, "stddev")->valuedouble == 2.0);
    assert_int_equal(fig_field(pp, "n")->valueint, 3);
    assert_true(fig_field(pp, "min")->valuedouble == 183.0);
    assert_true(fig_field(pp, "max")->valuedouble == 185.5);
    assert_int_equal(cJSON_GetArraySize(fig_field(pp, "samples")), 3);
    const cJSON *labels = fig_field(pp, "labels");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "build_commit")->valuestring,
                        "8cf427ff");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(labels, "n_ubatch")->valueint, 512);
    /* a test at a prefilled depth, as llama-bench labels it */
    const cJSON *tg = cJSON_GetArrayItem(figs, 1);
    assert_string_equal(fig_field(tg, "name")->valuestring, "llama 1B Q4_0 tg128 @ d512 t2");
    cJSON_Delete(figs);
    cJSON_Delete(raw);
}

static void test_jsonl_lines(void **state)
{
    (void)state;
    const char *text =
        "{\"model_type\": \"llama 1B F16\", \"n_threads\": 1, \"n_prompt\": 512, \"n_gen\": 0, "
        "\"avg_ts\": 130.0, \"stddev_ts\": 1.5, \"samples_ts\": [128.5, 131.5]}\n"
        "\n"
        "{\"model_type\": \"llama 1B F16\", \"n_threads\": 1, \"n_prompt\": 512, \"n_gen\": 128, "
        "\"avg_ts\": 17.0, \"stddev_ts\": 0.2, \"samples_ts\": [16.8, 17.2]}\n";
    cJSON *figs = cJSON_CreateArray();
    int n = 0;
    quarry_error err = {0};
    assert_int_equal(quarry_import_llama_bench(text, strlen(text), figs, NULL, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(fig_field(cJSON_GetArrayItem(figs, 0), "name")->valuestring,
                        "llama 1B F16 pp512 t1");
    assert_string_equal(fig_field(cJSON_GetArrayItem(figs, 1), "name")->valuestring,
                        "llama 1B F16 pp512+tg128 t1");
    cJSON_Delete(figs);
}

/* llama-bench before the samples arrays: one aggregate, counted as n = 1 */
static void test_without_samples(void **state)
{
    (void)state;
    const char *text = "[{\"model_type\": \"llama 1B Q8_0\", \"n_threads\": 2, \"n_prompt\": 0,"
                       " \"n_gen\": 128, \"avg_ts\": 24.8, \"stddev_ts\": 0.4}]";
    cJSON *figs = cJSON_CreateArray();
    int n = 0;
    quarry_error err = {0};
    assert_int_equal(quarry_import_llama_bench(text, strlen(text), figs, NULL, &n, &err), 0);
    const cJSON *f = cJSON_GetArrayItem(figs, 0);
    assert_int_equal(fig_field(f, "n")->valueint, 1);
    assert_true(fabs(fig_field(f, "mean")->valuedouble - 24.8) < 1e-12);
    assert_true(cJSON_IsNull(fig_field(f, "samples")));
    cJSON_Delete(figs);
}

static void test_errors_name_the_place(void **state)
{
    (void)state;
    quarry_error err = {0};
    int n = 0;
    cJSON *figs = cJSON_CreateArray();
    /* second line lacks avg_ts */
    const char *jsonl = "{\"model_type\": \"m\", \"n_threads\": 1, \"n_prompt\": 1, \"n_gen\": 0,"
                        " \"avg_ts\": 1}\n"
                        "{\"model_type\": \"m\", \"n_threads\": 1, \"n_prompt\": 1, \"n_gen\": 0}\n";
    assert_int_equal(quarry_import_llama_bench(jsonl, strlen(jsonl), figs, NULL, &n, &err),
                     QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_non_null(strstr(err.msg, "avg_ts"));
    /* not JSON at all */
    const char *junk = "| model | size |\n| --- | --- |\n";
    assert_int_equal(quarry_import_llama_bench(junk, strlen(junk), figs, NULL, &n, &err),
                     QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "line 1"));
    /* an array with trailing garbage, and an empty array */
    const char *trailing = "[] x";
    assert_int_equal(quarry_import_llama_bench(trailing, strlen(trailing), figs, NULL, &n, &err),
                     QUARRY_EFORMAT);
    const char *empty = "[]";
    assert_int_equal(quarry_import_llama_bench(empty, strlen(empty), figs, NULL, &n, &err),
                     QUARRY_EFORMAT);
    /* an array whose entry is no object */
    const char *bad_entry = "[{\"model_type\": \"m\", \"n_threads\": 1, \"n_prompt\": 1, "
                            "\"n_gen\": 0, \"avg_ts\": 1}, 5]";
    assert_int_equal(quarry_import_llama_bench(bad_entry, strlen(bad_entry), figs, NULL, &n, &err),
                     QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "entry 1"));
    cJSON_Delete(figs);
}

static void test_test_names(void **state)
{
    (void)state;
    char buf[64];
    quarry_llama_bench_test_name(buf, sizeof buf, 512, 0, 0);
    assert_string_equal(buf, "pp512");
    quarry_llama_bench_test_name(buf, sizeof buf, 0, 128, 0);
    assert_string_equal(buf, "tg128");
    quarry_llama_bench_test_name(buf, sizeof buf, 0, 128, 4096);
    assert_string_equal(buf, "tg128 @ d4096");
    quarry_model_figure_name(buf, sizeof buf, "llama 1B Q4_K - Medium", "pp512", 2);
    assert_string_equal(buf, "llama 1B Q4_K - Medium pp512 t2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_array),
        cmocka_unit_test(test_jsonl_lines),
        cmocka_unit_test(test_without_samples),
        cmocka_unit_test(test_errors_name_the_place),
        cmocka_unit_test(test_test_names),
    };
    return TU_RUN_GROUP(tests);
}
