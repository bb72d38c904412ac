/*
 * figures.h - the flat list of figures a benchmark-suite result file holds
 * (its "results" array), which `quarry bench compare`, `quarry bench import`
 * and the notebooks read.
 *
 * Each benchmark module reports rows in its own shape (bench_kernels,
 * bench_attention, bench_model); the suite keeps those as they are under
 * "raw" and also turns every measured quantity into one figure:
 *   {"group": "model", "name": "llama 1B Q4_0 tg128 t2", "engine": "quarry",
 *    "unit": "tokens/s", "mean": .., "stddev": .., "min": .., "max": .., "n": ..,
 *    "samples": [..] or null, "higher_is_better": true,
 *    "fraction_of_membw": .. or null, "labels": {"test": "tg128", ...}}
 * (group, name) identifies a figure across runs; "labels" carries the parts
 * the name is made of, for plotting.
 */
#ifndef QUARRY_HARNESS_FIGURES_H
#define QUARRY_HARNESS_FIGURES_H

#include <cJSON.h>

#include "harness/timing.h"

#define QUARRY_FIGURE_MAX_LABELS 12

struct quarry_figure_label {
    const char *key;
    const char *text;    /* a string label, or NULL */
    double number;       /* used when text is NULL */
};

struct quarry_figure {
    const char *group;            /* "membw", "kernels", "attention", "model" */
    const char *name;             /* unique within the group */
    const char *engine;           /* "quarry", "llama.cpp" */
    const char *unit;
    struct quarry_stats stats;
    const double *samples;        /* [n_samples], or NULL when not kept */
    int n_samples;
    int higher_is_better;
    double fraction_of_membw;     /* < 0: not applicable */
    struct quarry_figure_label labels[QUARRY_FIGURE_MAX_LABELS];
    int n_labels;
};

/* Adds a label (ignored beyond QUARRY_FIGURE_MAX_LABELS). */
void quarry_figure_label_str(struct quarry_figure *f, const char *key, const char *text);
void quarry_figure_label_num(struct quarry_figure *f, const char *key, double number);

/* The figure as a JSON object; NULL when out of memory. */
cJSON *quarry_figure_json(const struct quarry_figure *f);

/* Whether a unit is a rate (higher is better: "GB/s", "tokens/s",
 * "GFLOP/s", "MB/s") rather than a cost ("s", "ms", "ns", "instructions"). */
int quarry_unit_higher_is_better(const char *unit);

#endif
