/*
 * scrape.h - reading the server's own view of a run: a plain HTTP GET
 * (used for /metrics before and after the load) and a parser for the
 * Prometheus text exposition format, so the result file can hold every
 * sample before, after, and the difference.
 */
#ifndef QUARRY_LOADGEN_SCRAPE_H
#define QUARRY_LOADGEN_SCRAPE_H

#include <stddef.h>

#include <cJSON.h>

#include "engine/error.h"

/* GETs url; *body (malloc'd, NUL-terminated) and *status are filled when a
 * response arrived, whatever its status. Returns 0, QUARRY_EIO (no response:
 * the message says why) or QUARRY_ENOMEM. */
int qload_http_get(const char *url, double timeout_s, char **body, size_t *len, long *status,
                   quarry_error *err);

/* Prometheus text format -> {"name{labels}": value, ...} (labels kept as
 * written; "# " lines and malformed lines skipped; NaN and Inf become null
 * in printed JSON). NULL when out of memory. */
cJSON *qload_prometheus_parse(const char *text, size_t len);

/* {"key": after - before} for every numeric key present in both. NULL when
 * out of memory. */
cJSON *qload_prometheus_delta(const cJSON *before, const cJSON *after);

/* libcurl's version string ("7.88.1"): the scrape's HTTP client. */
const char *qload_curl_version(void);

#endif
