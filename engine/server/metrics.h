/*
 * metrics.h - the server's counters, histograms and gauges, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 *
 * Counters (labelled):
 *   quarry_requests_total{endpoint,tenant,status}       HTTP requests answered
 *   quarry_prompt_tokens_total{tenant}                   prompt tokens processed
 *   quarry_completion_tokens_total{tenant}               tokens generated
 *   quarry_rate_limited_total{tenant,limit}              429s (limit: requests|tokens|concurrency)
 *   quarry_cancelled_requests_total{reason}              generations ended early
 *                                                        (reason: disconnect|shutdown)
 * Histograms (seconds):
 *   quarry_time_to_first_token_seconds   request received -> first token generated
 *   quarry_inter_token_latency_seconds   between consecutive tokens of one request
 *   quarry_request_duration_seconds      request received -> generation ended
 *   quarry_queue_wait_seconds            submitted -> given a sequence slot
 * Gauges (read when rendering, from a snapshot the caller passes):
 *   quarry_active_sequences, quarry_queued_requests, quarry_sequence_slots,
 *   quarry_kv_cache_cells_used, quarry_kv_cache_cells_total, quarry_model_loaded
 *
 * All functions are thread-safe (one mutex); label values are escaped as the
 * format requires.
 */
#ifndef QUARRY_SERVER_METRICS_H
#define QUARRY_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum srv_hist {
    SRV_HIST_TTFT = 0,
    SRV_HIST_ITL,
    SRV_HIST_DURATION,
    SRV_HIST_QUEUE_WAIT,
    SRV_HIST_COUNT
};

struct srv_gauges {
    int64_t active_sequences, queued_requests, sequence_slots;
    int64_t kv_cells_used, kv_cells_total;
    int model_loaded;
};

typedef struct srv_metrics srv_metrics;

int srv_metrics_new(srv_metrics **out);
void srv_metrics_free(srv_metrics *m);

void srv_metrics_count_request(srv_metrics *m, const char *endpoint, const char *tenant,
                               int status);
void srv_metrics_count_tokens(srv_metrics *m, const char *tenant, int64_t prompt,
                              int64_t completion);
void srv_metrics_count_rate_limited(srv_metrics *m, const char *tenant, const char *limit);
void srv_metrics_count_cancelled(srv_metrics *m, const char *reason);
void srv_metrics_observe(srv_metrics *m, enum srv_hist h, double seconds);

/* The exposition text (malloc'd, NUL-terminated), or NULL when out of memory. */
char *srv_metrics_render(srv_metrics *m, const struct srv_gauges *g, size_t *len);

#endif
