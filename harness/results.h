/*
 * results.h - the JSON result documents every `quarry bench` command writes.
 *
 * Layout (schema "quarry-results/1"):
 *   { "schema": "quarry-results/1", "benchmark": "kernels", "created_utc": "...",
 *     "complete": true, "machine": {...}, "build": {...}, "config": {...},
 *     "results": [ {row}, ... ] }
 * Each row is free-form per benchmark but carries its own units; statistics
 * use quarry_stats_json's shape {"unit", "mean", "stddev", "min", "max", "n"}.
 * machine/build come from harness/machine.h.
 */
#ifndef QUARRY_HARNESS_RESULTS_H
#define QUARRY_HARNESS_RESULTS_H

#include <cJSON.h>

#include "engine/error.h"
#include "harness/timing.h"

/* A new document with schema, benchmark name, creation time, machine and
 * build info, an empty "config" object and "results" array; NULL when out of
 * memory. Free with cJSON_Delete. */
cJSON *quarry_results_new(const char *benchmark);

cJSON *quarry_results_config(cJSON *doc);   /* the "config" object */
cJSON *quarry_results_rows(cJSON *doc);     /* the "results" array */

/* Marks whether the run finished (a partial file is still worth keeping). */
void quarry_results_set_complete(cJSON *doc, int complete);

/* {"unit", "mean", "stddev", "min", "max", "n"}; NULL when out of memory. */
cJSON *quarry_stats_json(const struct quarry_stats *st, const char *unit);

/* Writes the document, indented, to path (through a temporary file renamed
 * into place, so a reader never sees half a file). Returns 0, QUARRY_ENOMEM
 * or QUARRY_EIO. */
int quarry_results_write(const cJSON *doc, const char *path, quarry_error *err);

#endif
