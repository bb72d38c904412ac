/*
 * cli_bench_model.c - `quarry bench model`: the command-line side of
 * harness/bench_model.h (llama-bench's pp/tg tests). Parses llama-bench's
 * options, prints a markdown table like llama-bench's as tests finish, and
 * writes the JSON result file with --json. Reached through the subcommand
 * table of cli_bench.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "engine/threadpool.h"
#include "harness/bench_model.h"
#include "harness/machine.h"
#include "harness/results.h"
#include "kernels/kernels.h"

void quarry_help_bench_model(void)
{
    printf("usage: quarry bench model -m MODEL [-m MODEL ...] [-p N,...] [-n N,...] [-r N]\n"
           "                          [-t N,...] [-b N] [--kv-type T] [--json FILE]\n\n"
           "Measures whole-model speed as llama.cpp's llama-bench does: prompt processing\n"
           "(ppN: N tokens through the model at once) and text generation (tgN: N tokens one\n"
           "at a time) as separate tests, with random token ids (no tokenizer, no sampling),\n"
           "a warm-up run, then R runs each from an empty KV cache; t/s is the mean of the\n"
           "runs' tokens/s +- their sample standard deviation. The 1-minute load average\n"
           "before and after each test is shown: on a busy machine the figures are noisy.\n\n"
           "options:\n"
           "  -m, --model FILE     model to measure (repeat for several)\n"
           "  -p, --n-prompt N,... prompt sizes (default 512; 0 = no pp test)\n"
           "  -n, --n-gen N,...    generation lengths (default 128; 0 = no tg test)\n"
           "  -r, --repetitions N  measured runs per test (default 5)\n"
           "  -t, --threads N,...  thread counts (default: one per physical core)\n"
           "  -b, --batch-size N   prompt tokens per forward pass (default 512, llama-bench's\n"
           "                       n_ubatch)\n"
           "      --kv-type T      KV cache type: f16 (default), q8_0, f32\n"
           "      --json FILE      also write the results as JSON: llama-bench's fields\n"
           "                       (n_prompt, n_gen, avg_ts, stddev_ts, samples_ts, samples_ns,\n"
           "                       model_type, model_size, n_params, n_threads, ...) with\n"
           "                       quarry's machine and build description\n");
}

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "quarry bench model: %s%s%s (see quarry bench model --help)\n", msg,
            arg ? " " : "", arg ? arg : "");
    return 2;
}

/* Parses "a,b,c" into v (at most QUARRY_BENCH_MODEL_MAX_LIST values in [lo, hi]). */
static int parse_list(const char *s, long lo, long hi, int32_t *v, int *n)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < lo || x > hi || *n == QUARRY_BENCH_MODEL_MAX_LIST)
            return -1;
        v[(*n)++] = (int32_t)x;
        if (*end == 0)
            return 0;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

static void format_size(uint64_t bytes, char *out, size_t n)
{
    if (bytes >= (1ull << 30))
        snprintf(out, n, "%.2f GiB", (double)bytes / (1ull << 30));
    else
        snprintf(out, n, "%.2f MiB", (double)bytes / (1ull << 20));
}

static void format_params(uint64_t p, char *out, size_t n)
{
    if (p >= 1000000000ull)
        snprintf(out, n, "%.2f B", (double)p / 1e9);
    else if (p >= 1000000ull)
        snprintf(out, n, "%.2f M", (double)p / 1e6);
    else
        snprintf(out, n, "%.2f K", (double)p / 1e3);
}

static void print_header(void)
{
    printf("| %-30s | %10s | %10s | %-7s | %7s | %8s | %20s | %11s |\n", "model", "size", "params",
           "backend", "threads", "test", "t/s", "load avg");
    printf("| %-30s | %10s | %10s | %-7s | %7s | %8s | %20s | %11s |\n",
           "------------------------------", "---------:", "---------:", "-------", "------:",
           "-------:", "-------------------:", "----------:");
}

static void print_row(const struct quarry_bench_model_row *r, void *ud)
{
    (void)ud;
    char size[32], params[32], ts[48], load[32];
    format_size(r->model_size, size, sizeof size);
    format_params(r->n_params, params, sizeof params);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->ts.mean, r->ts.stddev);
    snprintf(load, sizeof load, "%.1f -> %.1f", r->load_before, r->load_after);
    /* "±" is 2 bytes in UTF-8 and one column: widen the field by one */
    printf("| %-30s | %10s | %10s | %-7s | %7d | %8s | %21s | %11s |\n", r->model_type, size,
           params, "CPU", r->n_threads, r->test, ts, load);
    fflush(stdout);
}

int quarry_cmd_bench_model(int argc, char **argv)
{
    struct quarry_bench_model_opts o;
    quarry_bench_model_opts_default(&o);
    o.n_models = 0;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage(a[0] == '-' ? "missing value after" : "unexpected argument", a);
        const char *v = argv[++i];
        int32_t list[QUARRY_BENCH_MODEL_MAX_LIST];
        int n;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (o.n_models == QUARRY_BENCH_MODEL_MAX_LIST)
                return usage("too many models", NULL);
            o.models[o.n_models++] = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (parse_list(v, 0, INT32_MAX, o.n_prompt, &o.n_n_prompt))
                return usage("-p needs token counts >= 0 (a,b,...), not", v);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (parse_list(v, 0, INT32_MAX, o.n_gen, &o.n_n_gen))
                return usage("-n needs token counts >= 0 (a,b,...), not", v);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (parse_list(v, 1, QUARRY_BENCH_MODEL_MAX_REPS, list, &n) || n != 1)
                return usage("-r needs a count from 1 to 100, not", v);
            o.reps = list[0];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (parse_list(v, 1, QUARRY_THREADPOOL_MAX, list, &n))
                return usage("-t needs thread counts >= 1 (a,b,...), not", v);
            for (int k = 0; k < n; k++)
                o.threads[k] = list[k];
            o.n_threads = n;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (parse_list(v, 1, INT32_MAX, list, &n) || n != 1)
                return usage("-b needs a token count >= 1, not", v);
            o.n_batch = list[0];
        } else if (!strcmp(a, "--kv-type")) {
            int t = quarry_type_from_name(v);
            if (t != QUARRY_TYPE_F16 && t != QUARRY_TYPE_Q8_0 && t != QUARRY_TYPE_F32)
                return usage("--kv-type must be f16, q8_0 or f32, not", v);
            o.kv_type = (enum quarry_type)t;
        } else if (!strcmp(a, "--json")) {
            json_path = v;
        } else {
            return usage("unknown option", a);
        }
    }
    if (o.n_models == 0)
        return usage("-m MODEL is required", NULL);

    cJSON *doc = NULL;
    if (json_path) {
        /* fail now rather than after a long run: try the name the writer uses */
        char tmp[4096];
        FILE *f = NULL;
        if (snprintf(tmp, sizeof tmp, "%s.tmp", json_path) < (int)sizeof tmp)
            f = fopen(tmp, "w");
        if (!f) {
            fprintf(stderr, "quarry bench model: cannot write %s\n", json_path);
            return 1;
        }
        fclose(f);
        remove(tmp);
        doc = quarry_results_new("model");
        cJSON *config = doc ? quarry_bench_model_config_json(&o) : NULL;
        if (!config || !cJSON_ReplaceItemInObjectCaseSensitive(doc, "config", config)) {
            cJSON_Delete(config);
            cJSON_Delete(doc);
            fprintf(stderr, "quarry bench model: out of memory\n");
            return 1;
        }
    }
    struct quarry_machine_info mi;
    quarry_machine_info_collect(&mi);
    printf("# cpu: %s, %d cores; build: %s; ISA %s\n", mi.cpu_model[0] ? mi.cpu_model : "unknown",
           mi.cores, quarry_compiler_name(), quarry_isa_name(quarry_isa_chosen()));
    printf("# %d run(s) per test after a warm-up; KV cache %s; %d prompt tokens per pass\n",
           o.reps, quarry_type_info(o.kv_type)->name, o.n_batch);
    print_header();
    quarry_error err = {0};
    int rc = quarry_bench_model(&o, doc ? quarry_results_rows(doc) : NULL, print_row, NULL, &err);
    if (rc)
        fprintf(stderr, "quarry bench model: %s\n", err.msg);
    int status = rc != 0;
    if (doc) {
        quarry_results_set_complete(doc, rc == 0);
        if (quarry_results_write(doc, json_path, &err) != 0) {
            fprintf(stderr, "quarry bench model: %s\n", err.msg);
            status = 1;
        } else {
            printf("# results written to %s%s\n", json_path, rc == 0 ? "" : " (incomplete)");
        }
        cJSON_Delete(doc);
    }
    return status;
}
