/*
 * thresholds.h - pass/fail gates for CI (--fail-if): each is "METRIC OP
 * LIMIT" with OP one of > >= < <= and METRIC a name qload_stats_metric()
 * knows (p99_ttft, mean_e2e, error_rate, rps, ...; latencies in ms), e.g.
 * "p99_ttft>500,error_rate>0.01". A threshold is broken when its condition
 * holds; quarry-load then exits with status 2.
 */
#ifndef QUARRY_LOADGEN_THRESHOLDS_H
#define QUARRY_LOADGEN_THRESHOLDS_H

#include <stddef.h>

#include "engine/error.h"
#include "loadgen/stats.h"

enum qload_cmp { QLOAD_CMP_GT, QLOAD_CMP_GE, QLOAD_CMP_LT, QLOAD_CMP_LE };

struct qload_threshold {
    char metric[32];
    enum qload_cmp op;
    double limit;
    char text[96];      /* as written */
    double value;       /* filled by qload_thresholds_check */
    int broken;         /* filled by qload_thresholds_check */
};

struct qload_thresholds {
    struct qload_threshold *items;
    size_t n, cap;
};

/* Adds the comma-separated conditions in spec. Returns 0, QUARRY_EINVAL
 * (syntax or unknown metric) or QUARRY_ENOMEM. */
int qload_thresholds_add(struct qload_thresholds *t, const char *spec, quarry_error *err);
void qload_thresholds_free(struct qload_thresholds *t);
/* Evaluates every threshold against s; returns how many are broken. */
size_t qload_thresholds_check(struct qload_thresholds *t, const struct qload_stats *s);
const char *qload_cmp_text(enum qload_cmp op);

#endif
