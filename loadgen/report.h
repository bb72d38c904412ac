/*
 * report.h - quarry-load's output: a table for people and a JSON result
 * document for machines (schema quarry-results/1, benchmark "load", with the
 * machine and build sections every quarry result carries).
 *
 * JSON layout:
 *   config          the options the run used (filled by the caller)
 *   results[0]      the summary: request counts by outcome and HTTP status,
 *                   one error example per kind, duration, requests/s,
 *                   output tokens/s, goodput against the SLO, latency
 *                   histograms (ttft, itl, tpot, e2e, queue: p50, p90, p95,
 *                   p99, p99.9, mean, stddev, min, max in ms, count, and the
 *                   raw non-empty buckets [lower_ns, count] so histograms of
 *                   several runs can be merged), token counts, connections
 *                   opened, per-tenant counts, thresholds and their verdicts
 *   server_metrics  /metrics scraped before and after, and after - before
 *   server_rss      the server's resident memory (start, peak, end)
 *   requests        every request's record (--save-detailed only)
 */
#ifndef QUARRY_LOADGEN_REPORT_H
#define QUARRY_LOADGEN_REPORT_H

#include <stdio.h>

#include <cJSON.h>

#include "loadgen/client.h"
#include "loadgen/rss.h"
#include "loadgen/stats.h"
#include "loadgen/thresholds.h"

struct qload_report {
    const char *description;               /* one line: workload and target */
    const struct qload_stats *stats;
    const struct qload_rss *rss;           /* NULL: not sampled */
    const struct qload_records *records;   /* NULL: not kept */
    const struct qload_thresholds *thresholds; /* NULL or empty: none */
    const cJSON *metrics_before, *metrics_after; /* parsed /metrics, NULL when not scraped */
    const char *metrics_error;             /* why a scrape failed, or NULL */
};

/* The table (to any stream: stdout, stderr). */
void qload_report_table(FILE *out, const struct qload_report *r);

/* Fills a document from quarry_results_new("load") (config already filled
 * by the caller). Returns 0 or QUARRY_ENOMEM. */
int qload_report_json(cJSON *doc, const struct qload_report *r, quarry_error *err);

#endif
