/*
 * thresholds.c - --fail-if conditions (see thresholds.h).
 */
#include "loadgen/thresholds.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *qload_cmp_text(enum qload_cmp op)
{
    switch (op) {
    case QLOAD_CMP_GT: return ">";
    case QLOAD_CMP_GE: return ">=";
    case QLOAD_CMP_LT: return "<";
    case QLOAD_CMP_LE: return "<=";
    }
    return "?";
}

static int parse_one(const char *s, size_t len, struct qload_threshold *th, quarry_error *err)
{
    memset(th, 0, sizeof *th);
    if (len == 0 || len >= sizeof th->text)
        return quarry_errorf(err, QUARRY_EINVAL, "--fail-if: empty or too long condition");
    memcpy(th->text, s, len);
    th->text[len] = '\0';
    size_t i = 0;
    while (i < len && s[i] != '<' && s[i] != '>')
        i++;
    if (i == 0 || i == len || i >= sizeof th->metric)
        return quarry_errorf(err, QUARRY_EINVAL, "--fail-if '%s': expected METRIC>LIMIT (or >=, <, <=)",
                             th->text);
    memcpy(th->metric, s, i);
    th->metric[i] = '\0';
    const int gt = s[i] == '>';
    i++;
    const int eq = i < len && s[i] == '=';
    if (eq)
        i++;
    th->op = gt ? (eq ? QLOAD_CMP_GE : QLOAD_CMP_GT) : (eq ? QLOAD_CMP_LE : QLOAD_CMP_LT);
    char num[64];
    if (len - i == 0 || len - i >= sizeof num)
        return quarry_errorf(err, QUARRY_EINVAL, "--fail-if '%s': missing limit", th->text);
    memcpy(num, s + i, len - i);
    num[len - i] = '\0';
    char *end = NULL;
    errno = 0;
    th->limit = strtod(num, &end);
    if (end == num || *end != '\0' || errno != 0 || !isfinite(th->limit))
        return quarry_errorf(err, QUARRY_EINVAL, "--fail-if '%s': bad limit '%s'", th->text, num);
    /* the metric name must be one the stats know (an all-zero stats answers) */
    struct qload_stats empty;
    memset(&empty, 0, sizeof empty);
    double v;
    if (qload_stats_metric(&empty, th->metric, &v) != 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "--fail-if '%s': unknown metric '%s' (e.g. p99_ttft, p50_itl, mean_e2e, "
                             "max_tpot, error_rate, rps, goodput)",
                             th->text, th->metric);
    return 0;
}

int qload_thresholds_add(struct qload_thresholds *t, const char *spec, quarry_error *err)
{
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (t->n == t->cap) {
            const size_t ncap = t->cap ? t->cap * 2 : 8;
            struct qload_threshold *ni = realloc(t->items, ncap * sizeof *ni);
            if (!ni)
                return quarry_errorf(err, QUARRY_ENOMEM, "--fail-if: out of memory");
            t->items = ni;
            t->cap = ncap;
        }
        int rc = parse_one(p, len, &t->items[t->n], err);
        if (rc != 0)
            return rc;
        t->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

void qload_thresholds_free(struct qload_thresholds *t)
{
    free(t->items);
    memset(t, 0, sizeof *t);
}

size_t qload_thresholds_check(struct qload_thresholds *t, const struct qload_stats *s)
{
    size_t broken = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct qload_threshold *th = &t->items[i];
        double v = 0;
        if (qload_stats_metric(s, th->metric, &v) != 0)
            v = NAN;
        th->value = v;
        switch (th->op) {
        case QLOAD_CMP_GT: th->broken = v > th->limit; break;
        case QLOAD_CMP_GE: th->broken = v >= th->limit; break;
        case QLOAD_CMP_LT: th->broken = v < th->limit; break;
        case QLOAD_CMP_LE: th->broken = v <= th->limit; break;
        }
        if (isnan(v))
            th->broken = 1;
        broken += (size_t)th->broken;
    }
    return broken;
}
