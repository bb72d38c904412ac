/*
 * cli_bench.c - `quarry bench SUBCOMMAND`: benchmark drivers from harness/,
 * printed as a table on stdout and optionally saved as a JSON result file
 * (harness/results.h).
 *
 * Subcommands are rows of bench_subcommands[] below: a name, a summary, a
 * run function (argv[0] = the subcommand's name) and a help printer. Adding
 * `quarry bench model` means one row plus its two functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "engine/threadpool.h"
#include "harness/bench_attention.h"
#include "harness/bench_kernels.h"
#include "harness/machine.h"
#include "harness/results.h"
#include "kernels/kernels.h"

struct bench_subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(void);
};

static int bench_kernels_main(int argc, char **argv);
static void bench_kernels_help(void);
static int bench_attention_main(int argc, char **argv);
static void bench_attention_help(void);

static const struct bench_subcommand bench_subcommands[] = {
    {"kernels", "per-type kernel speed: quantize, dequantize, vec_dot, matvec, matmul",
     bench_kernels_main, bench_kernels_help},
    {"model", "whole-model speed like llama-bench: prompt processing (pp) and generation (tg)", quarry_cmd_bench_model, quarry_help_bench_model},
    {"attention", "flash attention vs the reference at context depths 512, 2048, 8192",
     bench_attention_main, bench_attention_help},
    {"all", "the whole suite: membw, kernels, attention, models; one table, one JSON file",
     quarry_cmd_bench_all, quarry_help_bench_all},
    {"compare", "two result files figure by figure: ratios and noise-aware verdicts",
     quarry_cmd_bench_compare, quarry_help_bench_compare},
    {"import", "llama.cpp's llama-bench JSON/JSONL beside quarry's figures",
     quarry_cmd_bench_import, quarry_help_bench_import},
    {"gate-workload", "run one regression-gate workload (counted under callgrind)",
     quarry_cmd_bench_gate_workload, quarry_help_bench_gate_workload},
    {"gate-check", "compare gate instruction counts with results/gate-baseline.json",
     quarry_cmd_bench_gate_check, quarry_help_bench_gate_check},
};
static const size_t n_bench_subcommands = sizeof bench_subcommands / sizeof bench_subcommands[0];

/* ---- shared helpers ------------------------------------------------------ */

/* Calls fn(item) for each comma-separated item of list; stops at the first
 * non-zero return and gives it back. */
static int for_each_item(const char *list, int (*fn)(const char *item, void *ud), void *ud)
{
    char buf[512];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int rc = fn(tok, ud);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Fails early (before a long run) when the result file cannot be created:
 * tries the temporary name quarry_results_write will use. */
static int check_writable(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fclose(f);
    remove(tmp);
    return 0;
}

static void print_machine_header(void)
{
    struct quarry_machine_info mi;
    quarry_machine_info_collect(&mi);
    printf("# cpu: %s, %d cores, %d logical CPUs, L2 %lld KiB, %.1f GiB RAM\n",
           mi.cpu_model[0] ? mi.cpu_model : "unknown", mi.cores, mi.logical_cpus,
           (long long)(mi.l2_bytes > 0 ? mi.l2_bytes / 1024 : -1),
           mi.mem_total_bytes > 0 ? (double)mi.mem_total_bytes / (1 << 30) : -1.0);
    printf("# build: %s; ISA detected %s, chosen %s\n", quarry_compiler_name(),
           quarry_isa_name(quarry_isa_detected()), quarry_isa_name(quarry_isa_chosen()));
    if (quarry_isa_warning())
        printf("# warning: %s\n", quarry_isa_warning());
}

/* ---- bench kernels ------------------------------------------------------- */

static void bench_kernels_help(void)
{
    printf("usage: quarry bench kernels [--type T[,T...]] [--isa L[,L...]] [-t N[,N...]]\n"
           "                            [--op OP[,OP...]] [--json FILE] [--quick]\n\n"
           "Measures every kernel of the traits table, for each type and ISA level:\n"
           "  quantize    from_float over 64Ki floats (in cache)      MB/s of float input\n"
           "  dequantize  to_float over the same                     GB/s of float output\n"
           "  vec_dot     one thread, weight rows in L2              GB/s of weight bytes\n"
           "              (and vec_dot_prepared, where a type has it: the same against\n"
           "              activations prepared once, as the matvec path runs it)\n"
           "  matvec      matmul with one activation row at the 1.1B llama shapes\n"
           "              (n x k = 2048x2048, 2048x5632, 5632x2048, 32000x2048), weights\n"
           "              cold in memory                             GB/s of weight bytes\n"
           "              and %% of the read bandwidth (membw_read) measured in this run\n"
           "  matmul      512 activation rows (2048x2048, 2048x5632, 5632x2048)  GFLOP/s\n"
           "  membw_read  streaming read of a buffer far larger than the caches  GB/s\n"
           "Each figure: warm-up, repeated runs, mean +- sample stddev.\n\n"
           "options:\n"
           "  --type T,...   types to measure (default all): f32 f16 bf16 q4_0 q4_1 q5_0 q5_1\n"
           "                 q8_0 q8_1 q2_K q3_K q4_K q5_K q6_K q8_K\n"
           "  --isa L,...    ISA levels (default every level this CPU runs): scalar avx2 avx512\n"
           "  -t N,...       thread counts for membw/matvec/matmul (default 1 and the number\n"
           "                 of physical cores); the other ops use one thread\n"
           "  --op OP,...    quantize dequantize vec_dot matvec matmul membw_read (default all)\n"
           "  --json FILE    also write the results as JSON (machine and build info included)\n"
           "  --quick        short runs and a smaller matmul (512x2048): a smoke test,\n"
           "                 not figures to quote\n");
}

static int parse_type(const char *item, void *ud)
{
    struct quarry_bench_kernels_opts *o = ud;
    int t = quarry_type_from_name(item);
    if (t < 0) {
        fprintf(stderr, "quarry bench kernels: unknown type '%s'\n", item);
        return 1;
    }
    o->types[t] = 1;
    return 0;
}

static int parse_isa(const char *item, void *ud)
{
    struct quarry_bench_kernels_opts *o = ud;
    int l = quarry_isa_from_name(item);
    if (l < 0) {
        fprintf(stderr, "quarry bench kernels: unknown ISA level '%s'\n", item);
        return 1;
    }
    if (l > (int)quarry_isa_detected()) {
        fprintf(stderr, "quarry bench kernels: this CPU cannot run %s (detected: %s)\n", item,
                quarry_isa_name(quarry_isa_detected()));
        return 1;
    }
    o->isa_mask |= 1u << l;
    return 0;
}

static int parse_threads(const char *item, void *ud)
{
    struct quarry_bench_kernels_opts *o = ud;
    char *end;
    long v = strtol(item, &end, 10);
    if (*end || v < 1 || v > QUARRY_THREADPOOL_MAX) {
        fprintf(stderr, "quarry bench kernels: bad thread count '%s'\n", item);
        return 1;
    }
    if (o->n_threads >= QUARRY_BENCH_MAX_THREAD_COUNTS) {
        fprintf(stderr, "quarry bench kernels: at most %d thread counts\n",
                QUARRY_BENCH_MAX_THREAD_COUNTS);
        return 1;
    }
    o->threads[o->n_threads++] = (int)v;
    return 0;
}

static int parse_op(const char *item, void *ud)
{
    struct quarry_bench_kernels_opts *o = ud;
    int op = quarry_bench_op_from_name(item);
    if (op < 0) {
        fprintf(stderr, "quarry bench kernels: unknown op '%s'\n", item);
        return 1;
    }
    o->ops |= (unsigned)op;
    return 0;
}

static void print_row(const struct quarry_bench_row *r, void *ud)
{
    (void)ud;
    char shape[48];
    if (strcmp(r->op, "membw_read") == 0)
        snprintf(shape, sizeof shape, "%lld MiB", (long long)(r->elements >> 20));
    else if (r->n > 0)
        snprintf(shape, sizeof shape, "%lldx%lld m=%lld", (long long)r->n, (long long)r->k,
                 (long long)r->m);
    else
        snprintf(shape, sizeof shape, "%lld", (long long)r->elements);
    char frac[16] = "";
    if (r->fraction_of_membw >= 0)
        snprintf(frac, sizeof frac, "%5.1f%%", 100.0 * r->fraction_of_membw);
    printf("%-10s %-5s %-6s %-20s %3d %10.2f +- %-8.2f %-7s %6s  %s\n", r->op, r->type, r->isa,
           shape, r->threads, r->value.mean, r->value.stddev, r->unit, frac,
           r->path ? r->path : "");
}

static void print_note(const char *text, void *ud)
{
    (void)ud;
    printf("# %s\n", text);
}

static int bench_kernels_main(int argc, char **argv)
{
    struct quarry_bench_kernels_opts opts;
    memset(&opts, 0, sizeof opts);
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        int bad = 0;
        if (strcmp(a, "--quick") == 0) {
            opts.quick = 1;
        } else if (strcmp(a, "--type") == 0 && has_value) {
            bad = for_each_item(argv[++i], parse_type, &opts);
        } else if (strcmp(a, "--isa") == 0 && has_value) {
            bad = for_each_item(argv[++i], parse_isa, &opts);
        } else if ((strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) && has_value) {
            bad = for_each_item(argv[++i], parse_threads, &opts);
        } else if (strcmp(a, "--op") == 0 && has_value) {
            bad = for_each_item(argv[++i], parse_op, &opts);
        } else if (strcmp(a, "--json") == 0 && has_value) {
            json_path = argv[++i];
        } else {
            fprintf(stderr, "quarry bench kernels: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }

    cJSON *doc = NULL;
    if (json_path && check_writable(json_path) != 0) {
        fprintf(stderr, "quarry bench kernels: cannot write %s\n", json_path);
        return 1;
    }
    if (json_path) {
        doc = quarry_results_new("kernels");
        cJSON *config = doc ? quarry_bench_kernels_config_json(&opts) : NULL;
        if (!config || !cJSON_ReplaceItemInObjectCaseSensitive(doc, "config", config)) {
            cJSON_Delete(config);
            cJSON_Delete(doc);
            fprintf(stderr, "quarry bench kernels: out of memory\n");
            return 1;
        }
    }
    print_machine_header();
    if (opts.quick)
        printf("# --quick: short runs, figures are indicative only\n");
    printf("%-10s %-5s %-6s %-20s %3s %10s    %-8s %-7s %6s  %s\n", "op", "type", "isa", "shape",
           "thr", "mean", "stddev", "unit", "%bw", "path");
    struct quarry_bench_callbacks cb = {print_row, print_note, NULL};
    quarry_error err = {0};
    int rc = quarry_bench_kernels(&opts, doc ? quarry_results_rows(doc) : NULL, &cb, &err);
    if (rc != 0)
        fprintf(stderr, "quarry bench kernels: %s\n", err.msg);
    int status = rc != 0;
    if (doc) {
        quarry_results_set_complete(doc, rc == 0);
        if (quarry_results_write(doc, json_path, &err) != 0) {
            fprintf(stderr, "quarry bench kernels: %s\n", err.msg);
            status = 1;
        } else {
            printf("# results written to %s%s\n", json_path, rc == 0 ? "" : " (incomplete)");
        }
        cJSON_Delete(doc);
    }
    return status;
}

/* ---- bench attention ----------------------------------------------------- */

static void bench_attention_help(void)
{
    printf("usage: quarry bench attention [--depth D[,D...]] [--nq N] [--kv-type T]\n"
           "                              [--heads H] [--kv-heads H] [--head-dim D]\n"
           "                              [--isa L[,L...]] [--no-reference] [--json FILE] [--quick]\n\n"
           "CPU flash attention (every ISA level) against the plain reference, one thread,\n"
           "TinyLlama-1.1B's heads by default (32 query heads, 4 KV heads, 64 wide):\n"
           "  GFLOP/s   4 * heads * head_dim * keys seen, per call (q.k and p.v)\n"
           "  KV GB/s   K and V cache bytes read per call\n"
           "  NMSE      flash output against the reference (ggml's bound: 5e-4)\n\n"
           "options:\n"
           "  --depth D,...   KV cache lengths (default 512,2048,8192)\n"
           "  --nq N          query tokens per call (default 1: a decode step; more: a\n"
           "                  causal prompt chunk ending at the depth)\n"
           "  --kv-type T     f16 (default), q8_0 or f32\n"
           "  --heads H, --kv-heads H, --head-dim D   the attention shape\n"
           "  --isa L,...     flash levels to measure (default every level this CPU runs)\n"
           "  --no-reference  flash only (no reference timing, no NMSE)\n"
           "  --json FILE     also write the results as JSON\n"
           "  --quick         short runs: a smoke test, not figures to quote\n");
}

static int parse_attention_depth(const char *item, void *ud)
{
    struct quarry_bench_attention_opts *o = ud;
    char *end;
    long v = strtol(item, &end, 10);
    if (*end || v < 1 || v > (1 << 20) || o->n_depths >= QUARRY_BENCH_ATTN_MAX_DEPTHS) {
        fprintf(stderr, "quarry bench attention: bad depth '%s' (1..%d, at most %d depths)\n",
                item, 1 << 20, QUARRY_BENCH_ATTN_MAX_DEPTHS);
        return 1;
    }
    o->depths[o->n_depths++] = (int)v;
    return 0;
}

static int parse_attention_isa(const char *item, void *ud)
{
    struct quarry_bench_attention_opts *o = ud;
    int l = quarry_isa_from_name(item);
    if (l < 0 || l > (int)quarry_isa_detected()) {
        fprintf(stderr, "quarry bench attention: ISA level '%s' unknown or not runnable here\n",
                item);
        return 1;
    }
    o->isa_mask |= 1u << l;
    return 0;
}

/* A positive int option value, or -1 (after a message). */
static int positive_arg(const char *cmd, const char *opt, const char *v, long max)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || !*v || x < 1 || x > max) {
        fprintf(stderr, "quarry bench %s: %s needs a number from 1 to %ld, not '%s'\n", cmd, opt,
                max, v);
        return -1;
    }
    return (int)x;
}

static void print_attention_row(const struct quarry_bench_attention_row *r, void *ud)
{
    (void)ud;
    char nmse[24] = "-";
    if (r->nmse >= 0)
        snprintf(nmse, sizeof nmse, "%.2e", r->nmse);
    printf("%-9s %-6s %-5s %6d %4d %10.2f +- %-8.2f %9.2f %10.3f  %s\n", r->impl, r->isa,
           r->kv_type, r->depth, r->n_q, r->gflops.mean, r->gflops.stddev, r->kv_gbytes_per_s,
           r->seconds_per_call * 1e3, nmse);
    fflush(stdout);
}

static int bench_attention_main(int argc, char **argv)
{
    struct quarry_bench_attention_opts o;
    memset(&o, 0, sizeof o);
    o.kv_type = QUARRY_TYPE_F16;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--no-reference") == 0) {
            o.skip_reference = 1;
        } else if (strcmp(a, "--depth") == 0 && v) {
            bad = for_each_item(argv[++i], parse_attention_depth, &o);
        } else if (strcmp(a, "--isa") == 0 && v) {
            bad = for_each_item(argv[++i], parse_attention_isa, &o);
        } else if (strcmp(a, "--kv-type") == 0 && v) {
            const int t = quarry_type_from_name(argv[++i]);
            if (t != QUARRY_TYPE_F16 && t != QUARRY_TYPE_Q8_0 && t != QUARRY_TYPE_F32) {
                fprintf(stderr, "quarry bench attention: --kv-type must be f16, q8_0 or f32\n");
                return 2;
            }
            o.kv_type = (enum quarry_type)t;
        } else if (strcmp(a, "--nq") == 0 && v) {
            bad = (o.n_q = positive_arg("attention", a, argv[++i], 1 << 16)) < 0;
        } else if (strcmp(a, "--heads") == 0 && v) {
            bad = (o.n_head = positive_arg("attention", a, argv[++i], 1024)) < 0;
        } else if (strcmp(a, "--kv-heads") == 0 && v) {
            bad = (o.n_head_kv = positive_arg("attention", a, argv[++i], 1024)) < 0;
        } else if (strcmp(a, "--head-dim") == 0 && v) {
            bad = (o.head_dim = positive_arg("attention", a, argv[++i], 1024)) < 0;
        } else if (strcmp(a, "--json") == 0 && v) {
            json_path = argv[++i];
        } else {
            fprintf(stderr, "quarry bench attention: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
    cJSON *doc = NULL;
    if (json_path && check_writable(json_path) != 0) {
        fprintf(stderr, "quarry bench attention: cannot write %s\n", json_path);
        return 1;
    }
    if (json_path) {
        doc = quarry_results_new("attention");
        cJSON *config = doc ? quarry_bench_attention_config_json(&o) : NULL;
        if (!config || !cJSON_ReplaceItemInObjectCaseSensitive(doc, "config", config)) {
            cJSON_Delete(config);
            cJSON_Delete(doc);
            fprintf(stderr, "quarry bench attention: out of memory\n");
            return 1;
        }
    }
    print_machine_header();
    if (o.quick)
        printf("# --quick: short runs, figures are indicative only\n");
    printf("%-9s %-6s %-5s %6s %4s %10s    %-8s %9s %10s  %s\n", "impl", "isa", "kv", "depth",
           "n_q", "GFLOP/s", "stddev", "KV GB/s", "ms/call", "NMSE vs ref");
    quarry_error err = {0};
    int rc = quarry_bench_attention(&o, doc ? quarry_results_rows(doc) : NULL,
                                    print_attention_row, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "quarry bench attention: %s\n", err.msg);
    int status = rc != 0;
    if (doc) {
        quarry_results_set_complete(doc, rc == 0);
        if (quarry_results_write(doc, json_path, &err) != 0) {
            fprintf(stderr, "quarry bench attention: %s\n", err.msg);
            status = 1;
        } else {
            printf("# results written to %s%s\n", json_path, rc == 0 ? "" : " (incomplete)");
        }
        cJSON_Delete(doc);
    }
    return status;
}

/* ---- the `bench` command ------------------------------------------------- */

void quarry_help_bench(void)
{
    printf("usage: quarry bench SUBCOMMAND [options]\n\nsubcommands:\n");
    for (size_t i = 0; i < n_bench_subcommands; i++)
        printf("  %-13s %s\n", bench_subcommands[i].name, bench_subcommands[i].summary);
    for (size_t i = 0; i < n_bench_subcommands; i++) {
        printf("\n");
        bench_subcommands[i].help();
    }
}

int quarry_cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "quarry bench: which benchmark? (see quarry bench --help)\n");
        return 2;
    }
    for (size_t i = 0; i < n_bench_subcommands; i++)
        if (strcmp(argv[1], bench_subcommands[i].name) == 0)
            return bench_subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "quarry bench: unknown benchmark '%s' (see quarry bench --help)\n", argv[1]);
    return 2;
}
