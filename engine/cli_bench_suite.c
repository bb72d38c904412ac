/*
 * cli_bench_suite.c - the command-line side of the whole-suite tools, reached
 * through the subcommand table of cli_bench.c:
 *
 *   quarry bench all      every benchmark in one run, one table, one result
 *                         file (harness/bench_suite.h; `make bench` runs it)
 *   quarry bench compare  two result files figure by figure, with a verdict
 *                         that accounts for the spread (harness/compare.h)
 *   quarry bench import   llama.cpp's llama-bench JSON/JSONL as quarry
 *                         figures, side by side with quarry's (harness/import.h)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "engine/threadpool.h"
#include "harness/bench_suite.h"
#include "harness/compare.h"
#include "harness/import.h"
#include "harness/json_file.h"
#include "harness/machine.h"
#include "harness/results.h"
#include "kernels/kernels.h"

/* ---- quarry bench all ------------------------------------------------------ */

void quarry_help_bench_all(void)
{
    printf("usage: quarry bench all [-m MODEL ...] [-t N] [-p N] [-n N] [-r N] [--quick] [--json FILE]\n"
           "                        [--no-kernels] [--no-attention] [--no-model]\n"
           "                        [--git-sha SHA] [--git-dirty 0|1] [--cflags FLAGS]\n\n"
           "The whole suite in one run, printed as one table (group, figure, mean +- stddev,\n"
           "unit, samples, %% of read bandwidth) and written as one JSON file:\n"
           "  membw      read bandwidth at 1 and N threads (measured first: decode figures\n"
           "             are reported as a fraction of it)\n"
           "  kernels    quantize/dequantize/vec_dot/matvec at every ISA level, matmul at\n"
           "             the chosen level (see quarry bench kernels --help)\n"
           "  attention  flash vs reference at depths 512, 2048, 8192\n"
           "  model      pp512 and tg128 per model, 5 repetitions (llama-bench's method),\n"
           "             tg as a fraction of bandwidth, hardware counters per token where\n"
           "             the machine has them (null otherwise)\n"
           "`make bench` generates the models (synthetic TinyLlama-1.1B files) and fills in\n"
           "the build facts; see README.md, Benchmarks.\n\n"
           "options:\n"
           "  -m FILE          a model to measure (repeat for several)\n"
           "  -t N             threads for membw, matvec, matmul and the models (default:\n"
           "                   one per physical core)\n"
           "  -p N, -n N, -r N the model tests ppN and tgN and their repetitions\n"
           "                   (default 512, 128, 5)\n"
           "  --quick          short runs everywhere (pp64/tg16, 2 repetitions): checks the\n"
           "                   machinery, figures are not to be quoted\n"
           "  --json FILE      write the results document\n"
           "  --no-kernels, --no-attention, --no-model   leave a part out\n"
           "  --git-sha SHA, --git-dirty 0|1, --cflags FLAGS   recorded in build\n");
}

struct table_state {
    int rows;
};

static void print_suite_header(void)
{
    printf("%-9s %-52s %12s    %-10s %-9s %3s %6s\n", "group", "figure", "mean", "stddev",
           "unit", "n", "%bw");
}

static void print_figure(const struct quarry_figure *f, void *ud)
{
    struct table_state *t = ud;
    if (t->rows++ % 40 == 0)
        print_suite_header();
    char frac[16] = "";
    if (f->fraction_of_membw >= 0)
        snprintf(frac, sizeof frac, "%5.1f%%", 100.0 * f->fraction_of_membw);
    printf("%-9s %-52s %12.3f +- %-10.3f %-9s %3d %6s\n", f->group, f->name, f->stats.mean,
           f->stats.stddev, f->unit, f->stats.n, frac);
    fflush(stdout);
}

static void print_suite_note(const char *text, void *ud)
{
    (void)ud;
    printf("# %s\n", text);
    fflush(stdout);
}

int quarry_cmd_bench_all(int argc, char **argv)
{
    struct quarry_bench_suite_opts o;
    quarry_bench_suite_opts_default(&o);
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--no-kernels") == 0) {
            o.run_kernels = 0;
        } else if (strcmp(a, "--no-attention") == 0) {
            o.run_attention = 0;
        } else if (strcmp(a, "--no-model") == 0) {
            o.run_model = 0;
        } else if ((strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) && v) {
            if (o.n_models == QUARRY_BENCH_MODEL_MAX_LIST) {
                fprintf(stderr, "quarry bench all: at most %d models\n",
                        QUARRY_BENCH_MODEL_MAX_LIST);
                return 2;
            }
            o.models[o.n_models++] = v, i++;
        } else if ((strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) && v) {
            char *end;
            const long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > QUARRY_THREADPOOL_MAX) {
                fprintf(stderr, "quarry bench all: bad thread count '%s'\n", v);
                return 2;
            }
            o.threads = (int)t, i++;
        } else if ((strcmp(a, "-p") == 0 || strcmp(a, "-n") == 0 || strcmp(a, "-r") == 0) && v) {
            char *end;
            const long x = strtol(v, &end, 10);
            const long max = a[1] == 'r' ? QUARRY_BENCH_MODEL_MAX_REPS : 1 << 20;
            if (*end || x < 1 || x > max) {
                fprintf(stderr, "quarry bench all: %s needs a number from 1 to %ld\n", a, max);
                return 2;
            }
            *(a[1] == 'p' ? &o.n_prompt : a[1] == 'n' ? &o.n_gen : &o.reps) = (int)x;
            i++;
        } else if (strcmp(a, "--json") == 0 && v) {
            json_path = v, i++;
        } else if (strcmp(a, "--git-sha") == 0 && v) {
            o.git_sha = v, i++;
        } else if (strcmp(a, "--git-dirty") == 0 && v) {
            if (strcmp(v, "0") && strcmp(v, "1")) {
                fprintf(stderr, "quarry bench all: --git-dirty takes 0 or 1\n");
                return 2;
            }
            o.git_dirty = v[0] == '1', i++;
        } else if (strcmp(a, "--cflags") == 0 && v) {
            o.cflags = v, i++;
        } else {
            fprintf(stderr, "quarry bench all: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    cJSON *doc = quarry_results_new("suite");
    if (!doc) {
        fprintf(stderr, "quarry bench all: out of memory\n");
        return 1;
    }
    struct quarry_machine_info mi;
    quarry_machine_info_collect(&mi);
    printf("# quarry bench all: %s, %d cores, %.1f GiB RAM; %s; ISA %s (detected %s)%s\n",
           mi.cpu_model[0] ? mi.cpu_model : "unknown CPU", mi.cores,
           mi.mem_total_bytes > 0 ? (double)mi.mem_total_bytes / (1 << 30) : -1.0,
           quarry_compiler_name(), quarry_isa_name(quarry_isa_chosen()),
           quarry_isa_name(quarry_isa_detected()), o.quick ? "; --quick: indicative only" : "");
    if (o.git_sha)
        printf("# build %s%s\n", o.git_sha, o.git_dirty == 1 ? " (dirty)" : "");
    struct table_state table = {0};
    const struct quarry_bench_suite_callbacks cb = {print_figure, print_suite_note, &table};
    quarry_error err = {0};
    const int rc = quarry_bench_suite(&o, doc, &cb, &err);
    if (rc)
        fprintf(stderr, "quarry bench all: %s\n", err.msg);
    int status = rc != 0;
    quarry_results_set_complete(doc, rc == 0);
    if (json_path) {
        if (quarry_results_write(doc, json_path, &err) != 0) {
            fprintf(stderr, "quarry bench all: %s\n", err.msg);
            status = 1;
        } else {
            printf("# %d figures written to %s%s\n", table.rows, json_path,
                   rc == 0 ? "" : " (incomplete)");
        }
    }
    cJSON_Delete(doc);
    return status;
}

/* ---- quarry bench compare ------------------------------------------------------ */

void quarry_help_bench_compare(void)
{
    printf("usage: quarry bench compare BASELINE.json NEW.json [--min-change X] [--changed]\n"
           "                            [--fail-on-worse]\n\n"
           "Compares two result files (quarry bench all, or an import) figure by figure:\n"
           "ratio = new / baseline, and a verdict that accounts for the measured spread:\n"
           "a change within 2 * sqrt(sd_base^2 + sd_new^2) - two standard deviations of\n"
           "the difference of two runs - or within X of the baseline (default %.2f) is\n"
           "\"same\", not a regression; beyond it \"better\" or \"WORSE\" by the unit's\n"
           "direction (rates: higher is better).\n\n"
           "  --min-change X    the smallest relative change that counts (default %.2f)\n"
           "  --changed         print only figures that are not \"same\"\n"
           "  --fail-on-worse   exit status 1 when any figure is WORSE\n",
           QUARRY_COMPARE_MIN_CHANGE, QUARRY_COMPARE_MIN_CHANGE);
}

static const char *doc_label(const cJSON *doc, char *buf, size_t size)
{
    const cJSON *build = cJSON_GetObjectItemCaseSensitive(doc, "build");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(build, "git_sha");
    const cJSON *dirty = cJSON_GetObjectItemCaseSensitive(build, "git_dirty");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(doc, "created_utc");
    const cJSON *bench = cJSON_GetObjectItemCaseSensitive(doc, "benchmark");
    snprintf(buf, size, "%s %s%s, %s", cJSON_IsString(bench) ? bench->valuestring : "?",
             cJSON_IsString(sha) ? sha->valuestring : "(no sha)",
             cJSON_IsTrue(dirty) ? " dirty" : "",
             cJSON_IsString(when) ? when->valuestring : "(no date)");
    return buf;
}

int quarry_cmd_bench_compare(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    int n_paths = 0, changed_only = 0, fail_on_worse = 0;
    double min_change = QUARRY_COMPARE_MIN_CHANGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--changed") == 0) {
            changed_only = 1;
        } else if (strcmp(a, "--fail-on-worse") == 0) {
            fail_on_worse = 1;
        } else if (strcmp(a, "--min-change") == 0 && i + 1 < argc) {
            char *end;
            min_change = strtod(argv[++i], &end);
            if (*end || !(min_change >= 0 && min_change < 1)) {
                fprintf(stderr, "quarry bench compare: --min-change takes a fraction in [0, 1)\n");
                return 2;
            }
        } else if (a[0] != '-' && n_paths < 2) {
            paths[n_paths++] = a;
        } else {
            fprintf(stderr, "quarry bench compare: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (n_paths != 2) {
        fprintf(stderr, "quarry bench compare: give BASELINE.json and NEW.json\n");
        return 2;
    }
    quarry_error err = {0};
    cJSON *base = quarry_json_read_file(paths[0], &err);
    cJSON *now = base ? quarry_json_read_file(paths[1], &err) : NULL;
    struct quarry_cmp_row *rows = NULL;
    size_t n = 0;
    if (!base || !now || quarry_compare_results(base, now, min_change, &rows, &n, &err) != 0) {
        fprintf(stderr, "quarry bench compare: %s\n", err.msg);
        cJSON_Delete(base);
        cJSON_Delete(now);
        return 1;
    }
    char lb[160], ln[160];
    printf("# baseline: %s (%s)\n# new:      %s (%s)\n", paths[0], doc_label(base, lb, sizeof lb),
           paths[1], doc_label(now, ln, sizeof ln));
    printf("# verdict: beyond max(2*sqrt(sd_base^2+sd_new^2), %.1f%% of baseline) = "
           "better/WORSE, else same\n",
           100 * min_change);
    printf("%-9s %-52s %-9s %12s %12s %8s %8s  %s\n", "group", "figure", "unit", "baseline",
           "new", "ratio", "noise%", "verdict");
    int counts[5] = {0};
    int membw_moved = 0;
    for (size_t i = 0; i < n; i++) {
        const struct quarry_cmp_row *r = &rows[i];
        counts[r->verdict]++;
        if (strcmp(r->group, "membw") == 0 &&
            (r->verdict == QUARRY_CMP_BETTER || r->verdict == QUARRY_CMP_WORSE))
            membw_moved = 1;
        if (changed_only && r->verdict == QUARRY_CMP_SAME)
            continue;
        char b[32] = "-", v[32] = "-", ratio[16] = "-", noise[16] = "-";
        if (r->verdict != QUARRY_CMP_ONLY_NEW)
            snprintf(b, sizeof b, "%.3f", r->base.mean);
        if (r->verdict != QUARRY_CMP_ONLY_BASE)
            snprintf(v, sizeof v, "%.3f", r->now.mean);
        if (r->verdict <= QUARRY_CMP_WORSE) {
            snprintf(ratio, sizeof ratio, "%.3f", r->ratio);
            if (r->base.mean != 0)
                snprintf(noise, sizeof noise, "%.1f", 100.0 * r->threshold / r->base.mean);
        }
        printf("%-9s %-52s %-9s %12s %12s %8s %8s  %s\n", r->group, r->name, r->unit, b, v,
               ratio, noise, quarry_cmp_verdict_name(r->verdict));
    }
    printf("# %zu figures: %d better, %d WORSE, %d same, %d only in the baseline, %d new\n", n,
           counts[QUARRY_CMP_BETTER], counts[QUARRY_CMP_WORSE], counts[QUARRY_CMP_SAME],
           counts[QUARRY_CMP_ONLY_BASE], counts[QUARRY_CMP_ONLY_NEW]);
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(base, "machine");
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(now, "machine");
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(mb, "cpu_model");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(mn, "cpu_model");
    if (cJSON_IsString(cb) && cJSON_IsString(cn) && strcmp(cb->valuestring, cn->valuestring))
        printf("# note: different CPUs (%s vs %s): ratios compare machines, not code\n",
               cb->valuestring, cn->valuestring);
    if (membw_moved)
        printf("# note: the memory bandwidth itself moved between the runs: the machine's load"
               " changed, so other verdicts may reflect the machine rather than the code\n");
    const int worse = counts[QUARRY_CMP_WORSE];
    free(rows);
    cJSON_Delete(base);
    cJSON_Delete(now);
    return fail_on_worse && worse > 0;
}

/* ---- quarry bench import ---------------------------------------------------------- */

void quarry_help_bench_import(void)
{
    printf("usage: quarry bench import FILE [--with RESULT.json] [-o OUT.json]\n\n"
           "Reads llama.cpp's llama-bench results (llama-bench -o json or -o jsonl) as\n"
           "quarry figures: one per test, named \"MODEL TEST tTHREADS\" like quarry's own\n"
           "model figures (the model description is llama.cpp's: \"llama 1B Q4_0\"), with\n"
           "avg_ts, stddev_ts and samples_ts in tokens/s. Prints them; with --with, side\n"
           "by side with the same tests from a quarry result file (quarry bench all, or\n"
           "make bench), with the ratio quarry / llama.cpp and a verdict that accounts\n"
           "for both spreads (see quarry bench compare --help).\n\n"
           "  --with FILE   a quarry result file to put beside the imported figures\n"
           "  -o FILE       write the imported figures as a quarry result file (the\n"
           "                notebooks read results/llama-bench-*.json)\n"
           "example:\n"
           "  llama-bench -m model.gguf -t 2 -o json > lb.json\n"
           "  quarry bench import lb.json --with results/bench-X.json -o results/llama-bench-X.json\n");
}

int quarry_cmd_bench_import(int argc, char **argv)
{
    const char *in = NULL, *with = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--with") == 0 && i + 1 < argc)
            with = argv[++i];
        else if (strcmp(a, "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (a[0] != '-' && !in)
            in = a;
        else {
            fprintf(stderr, "quarry bench import: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!in) {
        fprintf(stderr, "quarry bench import: give the llama-bench output file\n");
        return 2;
    }
    quarry_error err = {0};
    size_t len;
    char *text = quarry_read_text_file(in, &len, &err);
    if (!text) {
        fprintf(stderr, "quarry bench import: %s\n", err.msg);
        return 1;
    }
    /* machine and build describe the importing machine; the llama-bench
     * objects under "raw" keep their own cpu_info and build_commit */
    cJSON *doc = quarry_results_new("llama-bench");
    cJSON *raw = doc ? cJSON_AddArrayToObject(doc, "raw") : NULL;
    cJSON *config = doc ? quarry_results_config(doc) : NULL;
    int n_imported = 0;
    int rc;
    if (!raw || !config || !cJSON_AddStringToObject(config, "source", in))
        rc = quarry_errorf(&err, QUARRY_ENOMEM, "out of memory");
    else
        rc = quarry_import_llama_bench(text, len, quarry_results_rows(doc), raw, &n_imported,
                                       &err);
    free(text);
    if (rc) {
        fprintf(stderr, "quarry bench import: %s: %s\n", in, err.msg);
        cJSON_Delete(doc);
        return 1;
    }
    quarry_results_set_complete(doc, 1);
    cJSON *with_doc = NULL;
    if (with && !(with_doc = quarry_json_read_file(with, &err))) {
        fprintf(stderr, "quarry bench import: %s\n", err.msg);
        cJSON_Delete(doc);
        return 1;
    }
    printf("# %d llama-bench result(s) from %s%s%s\n", n_imported, in,
           with ? ", beside quarry's from " : "", with ? with : "");
    printf("%-52s %18s %18s %8s  %s\n", "figure", "llama.cpp tokens/s",
           with ? "quarry tokens/s" : "", with ? "q/l" : "", with ? "verdict" : "");
    const cJSON *fig;
    const cJSON *quarry_figs = with_doc ? quarry_results_rows(with_doc) : NULL;
    int matched = 0;
    cJSON_ArrayForEach(fig, quarry_results_rows(doc))
    {
        const char *group, *name, *unit;
        struct quarry_cmp_stat ls, qs;
        int hb;
        if (quarry_cmp_read_figure(fig, &group, &name, &unit, &ls, &hb) != 0)
            continue;
        char lcol[40], qcol[40] = "-", ratio[16] = "-";
        const char *verdict = with ? "no quarry figure" : "";
        snprintf(lcol, sizeof lcol, "%.2f +- %.2f", ls.mean, ls.stddev);
        const cJSON *q;
        cJSON_ArrayForEach(q, quarry_figs)
        {
            const char *qg, *qn, *qu;
            int qhb;
            if (quarry_cmp_read_figure(q, &qg, &qn, &qu, &qs, &qhb) != 0 ||
                strcmp(qg, group) || strcmp(qn, name) || strcmp(qu, unit))
                continue;
            double r, threshold;
            const enum quarry_cmp_verdict v =
                quarry_cmp_classify(&ls, &qs, 1, QUARRY_COMPARE_MIN_CHANGE, &r, &threshold);
            snprintf(qcol, sizeof qcol, "%.2f +- %.2f", qs.mean, qs.stddev);
            snprintf(ratio, sizeof ratio, "%.3f", r);
            verdict = v == QUARRY_CMP_SAME     ? "same"
                      : v == QUARRY_CMP_BETTER ? "quarry faster"
                                               : "llama.cpp faster";
            matched++;
            break;
        }
        printf("%-52s %18s %18s %8s  %s\n", name, lcol, with ? qcol : "", with ? ratio : "",
               verdict);
    }
    if (with && matched == 0)
        printf("# no figure matched: quarry's model figures are named \"MODEL TEST tTHREADS\";"
               " run both engines on the same file with the same thread count\n");
    int status = 0;
    if (out) {
        if (quarry_results_write(doc, out, &err) != 0) {
            fprintf(stderr, "quarry bench import: %s\n", err.msg);
            status = 1;
        } else {
            printf("# written to %s\n", out);
        }
    }
    cJSON_Delete(with_doc);
    cJSON_Delete(doc);
    return status;
}
