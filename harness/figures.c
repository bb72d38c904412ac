/*
 * figures.c - one measured quantity as a JSON figure (see figures.h).
 */
#include "harness/figures.h"

#include <string.h>

void quarry_figure_label_str(struct quarry_figure *f, const char *key, const char *text)
{
    if (f->n_labels < QUARRY_FIGURE_MAX_LABELS)
        f->labels[f->n_labels++] = (struct quarry_figure_label){key, text ? text : "", 0};
}

void quarry_figure_label_num(struct quarry_figure *f, const char *key, double number)
{
    if (f->n_labels < QUARRY_FIGURE_MAX_LABELS)
        f->labels[f->n_labels++] = (struct quarry_figure_label){key, NULL, number};
}

int quarry_unit_higher_is_better(const char *unit)
{
    const size_t n = strlen(unit);
    return n >= 2 && strcmp(unit + n - 2, "/s") == 0;
}

cJSON *quarry_figure_json(const struct quarry_figure *f)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = cJSON_AddStringToObject(o, "group", f->group) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "name", f->name);
    ok = ok && cJSON_AddStringToObject(o, "engine", f->engine ? f->engine : "quarry");
    ok = ok && cJSON_AddStringToObject(o, "unit", f->unit);
    ok = ok && cJSON_AddNumberToObject(o, "mean", f->stats.mean);
    ok = ok && cJSON_AddNumberToObject(o, "stddev", f->stats.stddev);
    ok = ok && cJSON_AddNumberToObject(o, "min", f->stats.min);
    ok = ok && cJSON_AddNumberToObject(o, "max", f->stats.max);
    ok = ok && cJSON_AddNumberToObject(o, "n", f->stats.n);
    if (ok && f->samples && f->n_samples > 0) {
        cJSON *s = cJSON_CreateDoubleArray(f->samples, f->n_samples);
        ok = s && cJSON_AddItemToObject(o, "samples", s);
        if (!ok)
            cJSON_Delete(s);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "samples") != NULL;
    }
    ok = ok && cJSON_AddBoolToObject(o, "higher_is_better", f->higher_is_better);
    ok = ok && (f->fraction_of_membw >= 0
                    ? cJSON_AddNumberToObject(o, "fraction_of_membw", f->fraction_of_membw)
                    : cJSON_AddNullToObject(o, "fraction_of_membw"));
    cJSON *labels = ok ? cJSON_AddObjectToObject(o, "labels") : NULL;
    ok = labels != NULL;
    for (int i = 0; ok && i < f->n_labels; i++) {
        const struct quarry_figure_label *l = &f->labels[i];
        ok = (l->text ? cJSON_AddStringToObject(labels, l->key, l->text)
                      : cJSON_AddNumberToObject(labels, l->key, l->number)) != NULL;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
