/*
 * compare.c - figure-by-figure comparison of two result files (see compare.h).
 */
#include "harness/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/figures.h"

const char *quarry_cmp_verdict_name(enum quarry_cmp_verdict v)
{
    switch (v) {
    case QUARRY_CMP_SAME: return "same";
    case QUARRY_CMP_BETTER: return "better";
    case QUARRY_CMP_WORSE: return "WORSE";
    case QUARRY_CMP_ONLY_BASE: return "only in baseline";
    case QUARRY_CMP_ONLY_NEW: return "new";
    }
    return "?";
}

enum quarry_cmp_verdict quarry_cmp_classify(const struct quarry_cmp_stat *base,
                                            const struct quarry_cmp_stat *now,
                                            int higher_is_better, double min_change,
                                            double *ratio, double *threshold)
{
    const double sb = base->n >= 2 ? base->stddev : 0.0;
    const double sn = now->n >= 2 ? now->stddev : 0.0;
    const double noise = 2.0 * sqrt(sb * sb + sn * sn);
    const double floor = min_change * fabs(base->mean);
    *threshold = noise > floor ? noise : floor;
    *ratio = base->mean != 0 ? now->mean / base->mean : 0.0;
    const double diff = now->mean - base->mean;
    if (fabs(diff) <= *threshold)
        return QUARRY_CMP_SAME;
    const int up = diff > 0;
    return up == (higher_is_better != 0) ? QUARRY_CMP_BETTER : QUARRY_CMP_WORSE;
}

int quarry_cmp_read_figure(const cJSON *fig, const char **group, const char **name,
                           const char **unit, struct quarry_cmp_stat *st, int *higher_is_better)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(fig, "group");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fig, "name");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(fig, "unit");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(fig, "mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(fig, "stddev");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(fig, "n");
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(fig, "higher_is_better");
    if (!cJSON_IsString(g) || !cJSON_IsString(nm) || !cJSON_IsString(u) || !cJSON_IsNumber(mean))
        return -1;
    *group = g->valuestring;
    *name = nm->valuestring;
    *unit = u->valuestring;
    st->mean = mean->valuedouble;
    st->stddev = cJSON_IsNumber(sd) && sd->valuedouble > 0 ? sd->valuedouble : 0.0;
    st->n = cJSON_IsNumber(n) && n->valuedouble >= 0 ? (int)n->valuedouble : 1;
    *higher_is_better = cJSON_IsBool(hb) ? cJSON_IsTrue(hb) : quarry_unit_higher_is_better(u->valuestring);
    return 0;
}

static const cJSON *figures_of(const cJSON *doc, const char *which, quarry_error *err)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "results");
    if (!cJSON_IsArray(r)) {
        quarry_errorf(err, QUARRY_EFORMAT, "compare: the %s file has no \"results\" array", which);
        return NULL;
    }
    return r;
}

static const cJSON *find_figure(const cJSON *list, const char *group, const char *name)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, list)
    {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(f, "group");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(g) && cJSON_IsString(n) && strcmp(g->valuestring, group) == 0 &&
            strcmp(n->valuestring, name) == 0)
            return f;
    }
    return NULL;
}

static void fill_names(struct quarry_cmp_row *r, const char *group, const char *name,
                       const char *unit)
{
    snprintf(r->group, sizeof r->group, "%s", group);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
}

int quarry_compare_results(const cJSON *base, const cJSON *now, double min_change,
                           struct quarry_cmp_row **rows_out, size_t *n_rows, quarry_error *err)
{
    *rows_out = NULL;
    *n_rows = 0;
    const cJSON *lb = figures_of(base, "baseline", err);
    const cJSON *ln = lb ? figures_of(now, "new", err) : NULL;
    if (!lb || !ln)
        return QUARRY_EFORMAT;
    const size_t cap = (size_t)cJSON_GetArraySize(lb) + (size_t)cJSON_GetArraySize(ln);
    struct quarry_cmp_row *rows = calloc(cap ? cap : 1, sizeof *rows);
    if (!rows)
        return quarry_errorf(err, QUARRY_ENOMEM, "compare: out of memory");
    size_t n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, lb)
    {
        const char *group, *name, *unit;
        struct quarry_cmp_row *r = &rows[n];
        if (quarry_cmp_read_figure(f, &group, &name, &unit, &r->base, &r->higher_is_better) != 0)
            continue; /* not a figure: skip */
        if (find_figure(lb, group, name) != f)
            continue; /* a duplicate: the first one counts */
        fill_names(r, group, name, unit);
        const cJSON *g = find_figure(ln, group, name);
        const char *g_group, *g_name, *g_unit;
        int g_hb;
        if (g && quarry_cmp_read_figure(g, &g_group, &g_name, &g_unit, &r->now, &g_hb) == 0 &&
            strcmp(g_unit, unit) == 0) {
            r->verdict = quarry_cmp_classify(&r->base, &r->now, r->higher_is_better, min_change,
                                             &r->ratio, &r->threshold);
        } else {
            memset(&r->now, 0, sizeof r->now);
            r->verdict = QUARRY_CMP_ONLY_BASE;
        }
        n++;
    }
    cJSON_ArrayForEach(f, ln)
    {
        const char *group, *name, *unit;
        struct quarry_cmp_row *r = &rows[n];
        if (quarry_cmp_read_figure(f, &group, &name, &unit, &r->now, &r->higher_is_better) != 0)
            continue;
        if (find_figure(ln, group, name) != f)
            continue;
        const cJSON *b = find_figure(lb, group, name);
        const cJSON *bu = b ? cJSON_GetObjectItemCaseSensitive(b, "unit") : NULL;
        if (b && cJSON_IsString(bu) && strcmp(bu->valuestring, unit) == 0 &&
            cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(b, "mean")))
            continue; /* already paired above */
        fill_names(r, group, name, unit);
        memset(&r->base, 0, sizeof r->base);
        r->verdict = QUARRY_CMP_ONLY_NEW;
        n++;
    }
    *rows_out = rows;
    *n_rows = n;
    return 0;
}
