/*
 * cli_bench_gate.c - the command-line side of the regression gate
 * (harness/gate.h), reached through the subcommand table of cli_bench.c:
 *
 *   quarry bench gate-workload NAME   runs one workload once (what
 *                                     tools/bench-gate.sh counts under
 *                                     callgrind); --list prints the names
 *   quarry bench gate-check ...       compares the counts the script
 *                                     collected with the baseline, or
 *                                     rewrites the baseline (--update)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "harness/gate.h"
#include "harness/json_file.h"
#include "harness/machine.h"
#include "harness/results.h"
#include "kernels/kernels.h"

#define MAX_GATE_ROWS 256

void quarry_help_bench_gate_workload(void)
{
    printf("usage: quarry bench gate-workload NAME | --list\n\n"
           "Runs one regression-gate workload once, deterministically (fixed seeds, one\n"
           "thread, kernels of the level QUARRY_ISA chooses), and prints its ISA level and\n"
           "a checksum of its output. Meant to run under valgrind --tool=callgrind\n"
           "--collect-atstart=no --toggle-collect=%s, which then counts only the\n"
           "workload (tools/bench-gate.sh does this for every workload).\n"
           "With %s=1, %s makes an extra pass over an eighth of its\n"
           "weights: a planted slowdown to prove the gate catches one.\n\n"
           "  --list   print the workload names, one per line\n",
           QUARRY_GATE_MEASURED_SYMBOL, QUARRY_GATE_PLANT_ENV, QUARRY_GATE_PLANTED_WORKLOAD);
}

int quarry_cmd_bench_gate_workload(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "quarry bench gate-workload: give one workload name or --list\n");
        return 2;
    }
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < quarry_gate_workload_count(); i++)
            printf("%s\n", quarry_gate_workload_name(i));
        return 0;
    }
    quarry_error err = {0};
    quarry_gate_workload *w = NULL;
    int rc = quarry_gate_workload_new(argv[1], &w, &err);
    if (rc == QUARRY_ENOTFOUND) {
        fprintf(stderr, "quarry bench gate-workload: %s (see --list)\n", err.msg);
        return 2;
    }
    /* a warm-up call first: scratch buffers grow to size and stay, so the
     * counted call does no first-time allocation (whose instruction count
     * depends on the heap's history, not on the workload) */
    if (rc == 0)
        rc = quarry_gate_warmup(w, &err);
    if (rc == 0)
        rc = quarry_gate_measured(w, &err);
    if (rc) {
        fprintf(stderr, "quarry bench gate-workload: %s\n", err.msg);
        quarry_gate_workload_free(w);
        return 1;
    }
    printf("workload: %s\nisa: %s\nchecksum: %.9g\nplanted: %s\n", argv[1],
           quarry_isa_name(quarry_isa_chosen()), quarry_gate_checksum(w),
           quarry_gate_planted(w) ? "yes" : "no");
    if (quarry_isa_warning())
        printf("warning: %s\n", quarry_isa_warning());
    quarry_gate_workload_free(w);
    return 0;
}

void quarry_help_bench_gate_check(void)
{
    printf("usage: quarry bench gate-check --counts FILE --baseline FILE [--update]\n"
           "                               [--threshold X] [--git-sha SHA]\n\n"
           "Compares instruction counts (FILE: NAME<TAB>ISA<TAB>COUNT lines, written by\n"
           "tools/bench-gate.sh) with the baseline: a workload whose count grew by more\n"
           "than X (default %.2f = %.0f%%) fails the gate; one that shrank by more is an\n"
           "improvement to record with `make bench-gate-update`. When the baseline was\n"
           "measured at another ISA level or with another compiler, the counts are not\n"
           "comparable: the check says so and passes (skipped).\n\n"
           "  --update       write the counts as the new baseline instead of comparing\n"
           "                 (refused while %s is set)\n"
           "  --git-sha SHA  recorded in the baseline with --update\n"
           "exit status: 0 pass or skipped, 1 a regression or an error, 2 usage\n",
           QUARRY_GATE_THRESHOLD, QUARRY_GATE_THRESHOLD * 100, QUARRY_GATE_PLANT_ENV);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_gate_table(const struct quarry_gate_row *rows, size_t n)
{
    printf("%-22s %15s %15s %9s  %s\n", "workload", "baseline Ir", "now Ir", "change",
           "verdict");
    for (size_t i = 0; i < n; i++) {
        const struct quarry_gate_row *r = &rows[i];
        char base[32] = "-", now[32] = "-", change[32] = "-";
        if (r->base)
            snprintf(base, sizeof base, "%llu", (unsigned long long)r->base);
        if (r->now)
            snprintf(now, sizeof now, "%llu", (unsigned long long)r->now);
        if (r->base && r->now)
            snprintf(change, sizeof change, "%+.2f%%", 100.0 * r->change);
        printf("%-22s %15s %15s %9s  %s\n", r->name, base, now, change,
               quarry_gate_verdict_name(r->verdict));
    }
}

static int gate_update(const struct quarry_gate_count *counts, size_t n, const char *isa,
                       const char *baseline_path, const char *git_sha)
{
    const char *plant = getenv(QUARRY_GATE_PLANT_ENV);
    if (plant && *plant && strcmp(plant, "0") != 0) {
        fprintf(stderr, "quarry bench gate-check: refusing to record a baseline while %s is set\n",
                QUARRY_GATE_PLANT_ENV);
        return 1;
    }
    cJSON *doc = quarry_gate_baseline_new(counts, n, isa, "valgrind --tool=callgrind", git_sha);
    quarry_error err = {0};
    int rc = doc ? quarry_results_write(doc, baseline_path, &err)
                 : quarry_errorf(&err, QUARRY_ENOMEM, "out of memory");
    cJSON_Delete(doc);
    if (rc) {
        fprintf(stderr, "quarry bench gate-check: %s\n", err.msg);
        return 1;
    }
    printf("%-22s %15s\n", "workload", "Ir");
    for (size_t i = 0; i < n; i++)
        printf("%-22s %15llu\n", counts[i].name, (unsigned long long)counts[i].instructions);
    printf("gate: baseline written to %s (%zu workloads, ISA %s, %s); commit it with the "
           "change that earned it\n",
           baseline_path, n, isa, quarry_compiler_name());
    return 0;
}

static int gate_check(struct quarry_gate_count *counts, struct quarry_gate_row *rows,
                      const char *counts_path, const char *baseline_path, const char *git_sha,
                      double threshold, int update);

int quarry_cmd_bench_gate_check(int argc, char **argv)
{
    const char *counts_path = NULL, *baseline_path = NULL, *git_sha = NULL;
    double threshold = QUARRY_GATE_THRESHOLD;
    int update = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--update") == 0) {
            update = 1;
        } else if (strcmp(a, "--counts") == 0 && v) {
            counts_path = v, i++;
        } else if (strcmp(a, "--baseline") == 0 && v) {
            baseline_path = v, i++;
        } else if (strcmp(a, "--git-sha") == 0 && v) {
            git_sha = v, i++;
        } else if (strcmp(a, "--threshold") == 0 && v) {
            char *end;
            threshold = strtod(v, &end);
            if (*end || !(threshold > 0 && threshold < 1)) {
                fprintf(stderr, "quarry bench gate-check: --threshold takes a fraction in (0, 1)\n");
                return 2;
            }
            i++;
        } else {
            fprintf(stderr, "quarry bench gate-check: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!counts_path || !baseline_path) {
        fprintf(stderr, "quarry bench gate-check: --counts and --baseline are required\n");
        return 2;
    }
    struct quarry_gate_count *counts = calloc(MAX_GATE_ROWS, sizeof *counts);
    struct quarry_gate_row *rows = calloc(2 * MAX_GATE_ROWS, sizeof *rows);
    if (!counts || !rows) {
        free(counts);
        free(rows);
        fprintf(stderr, "quarry bench gate-check: out of memory\n");
        return 1;
    }
    const int status = gate_check(counts, rows, counts_path, baseline_path, git_sha, threshold,
                                  update);
    free(counts);
    free(rows);
    return status;
}

/* The check itself (counts holds MAX_GATE_ROWS entries, rows twice that). */
static int gate_check(struct quarry_gate_count *counts, struct quarry_gate_row *rows,
                      const char *counts_path, const char *baseline_path, const char *git_sha,
                      double threshold, int update)
{
    size_t n = 0;
    char isa[16];
    quarry_error err = {0};
    if (quarry_gate_read_counts(counts_path, counts, MAX_GATE_ROWS, &n, isa, &err) != 0) {
        fprintf(stderr, "quarry bench gate-check: %s\n", err.msg);
        return 1;
    }
    if (update)
        return gate_update(counts, n, isa, baseline_path, git_sha);

    cJSON *base = quarry_json_read_file(baseline_path, &err);
    if (!base) {
        fprintf(stderr, "quarry bench gate-check: %s (record one with `make bench-gate-update`)\n",
                err.msg);
        return 1;
    }
    const char *base_isa = json_str(base, "isa");
    const char *base_cc = json_str(base, "compiler");
    int status = 0;
    if (!base_isa || strcmp(base_isa, isa) != 0) {
        printf("gate: SKIPPED: the baseline was counted at ISA level %s, the workloads here ran "
               "at %s; instruction counts of different code paths are not comparable\n",
               base_isa ? base_isa : "(none)", isa);
    } else if (!base_cc || strcmp(base_cc, quarry_compiler_name()) != 0) {
        printf("gate: SKIPPED: the baseline was counted with %s, this build is %s; instruction "
               "counts of different compilers are not comparable\n",
               base_cc ? base_cc : "(unknown compiler)", quarry_compiler_name());
    } else {
        size_t n_rows = 0;
        if (quarry_gate_compare(base, counts, n, threshold, rows, 2 * MAX_GATE_ROWS, &n_rows,
                                &err) != 0) {
            fprintf(stderr, "quarry bench gate-check: %s: %s\n", baseline_path, err.msg);
            cJSON_Delete(base);
            return 1;
        }
        int regressed = 0, improved = 0, same = 0, fresh = 0, missing = 0;
        for (size_t i = 0; i < n_rows; i++) {
            regressed += rows[i].verdict == QUARRY_GATE_REGRESSED;
            improved += rows[i].verdict == QUARRY_GATE_IMPROVED;
            same += rows[i].verdict == QUARRY_GATE_SAME;
            fresh += rows[i].verdict == QUARRY_GATE_NEW;
            missing += rows[i].verdict == QUARRY_GATE_MISSING;
        }
        print_gate_table(rows, n_rows);
        printf("gate: %zu workloads at ISA %s: %d regressed (> +%.1f%%), %d improved (< -%.1f%%), "
               "%d same, %d new, %d not measured\n",
               n, isa, regressed, 100 * threshold, improved, 100 * threshold, same, fresh,
               missing);
        if (regressed) {
            printf("gate: FAILED: these workloads now execute more instructions:\n");
            for (size_t i = 0; i < n_rows; i++)
                if (rows[i].verdict == QUARRY_GATE_REGRESSED)
                    printf("  %-22s %+.2f%% (%llu -> %llu)\n", rows[i].name,
                           100.0 * rows[i].change, (unsigned long long)rows[i].base,
                           (unsigned long long)rows[i].now);
            status = 1;
        } else {
            printf("gate: PASSED\n");
        }
        if (improved || fresh)
            printf("gate: %d improvement(s) and %d new workload(s) to record: run `make "
                   "bench-gate-update` and commit %s with the change\n",
                   improved, fresh, baseline_path);
    }
    cJSON_Delete(base);
    return status;
}
