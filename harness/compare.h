/*
 * compare.h - comparing two benchmark result files figure by figure
 * (`quarry bench compare`, `make bench-compare`), with a verdict per figure
 * that takes the measured spread into account.
 *
 * Figures are matched by (group, name) (figures.h). For each pair:
 *   ratio     = new mean / baseline mean
 *   noise     = 2 * sqrt(sd_base^2 + sd_new^2): two standard deviations of
 *               the difference of two single runs, from each side's own
 *               sample standard deviation (a side measured once counts 0)
 *   threshold = max(noise, min_change * |baseline mean|)
 *   verdict   "same" when |new - baseline| <= threshold; otherwise "better"
 *             or "worse" by the figure's direction (a rate: higher is
 *             better; a time or a count: lower is better).
 * The spread of single runs is used, not the standard error of the means:
 * on a shared machine the run-to-run drift is larger than what many samples
 * of one run suggest, and a change smaller than the noise is not evidence of
 * a regression. min_change (default 2%) keeps figures measured without
 * spread (one sample) from turning every wobble into a verdict.
 */
#ifndef QUARRY_HARNESS_COMPARE_H
#define QUARRY_HARNESS_COMPARE_H

#include <stddef.h>

#include <cJSON.h>

#include "engine/error.h"

#define QUARRY_COMPARE_MIN_CHANGE 0.02

struct quarry_cmp_stat {
    double mean, stddev;
    int n;
};

enum quarry_cmp_verdict {
    QUARRY_CMP_SAME,
    QUARRY_CMP_BETTER,
    QUARRY_CMP_WORSE,
    QUARRY_CMP_ONLY_BASE,  /* the new file lacks the figure */
    QUARRY_CMP_ONLY_NEW,   /* the baseline lacks it */
};

/* "same", "better", "WORSE", "only in baseline", "new". */
const char *quarry_cmp_verdict_name(enum quarry_cmp_verdict v);

/* The verdict for one pair (see the rule above); *ratio = new / base (0 when
 * base mean is 0), *threshold = the absolute change that counts. */
enum quarry_cmp_verdict quarry_cmp_classify(const struct quarry_cmp_stat *base,
                                            const struct quarry_cmp_stat *now,
                                            int higher_is_better, double min_change,
                                            double *ratio, double *threshold);

struct quarry_cmp_row {
    char group[24];
    char name[192];
    char unit[24];
    struct quarry_cmp_stat base, now;   /* n 0 on a missing side */
    int higher_is_better;
    double ratio, threshold;
    enum quarry_cmp_verdict verdict;
};

/* Compares two result documents' "results" arrays of figures: one row per
 * figure of either (baseline order, then figures only in the new one).
 * *rows is allocated (free()); QUARRY_EFORMAT when a document has no figure
 * list, QUARRY_ENOMEM. */
int quarry_compare_results(const cJSON *base, const cJSON *now, double min_change,
                           struct quarry_cmp_row **rows, size_t *n_rows, quarry_error *err);

/* Reads one figure object's statistics; 0 or -1 when fields are missing. */
int quarry_cmp_read_figure(const cJSON *fig, const char **group, const char **name,
                           const char **unit, struct quarry_cmp_stat *st, int *higher_is_better);

#endif
