/*
 * stats.h - what quarry-load measures: one record per request, and the
 * run's aggregates (histograms, counts by outcome and HTTP status, goodput
 * against an SLO, per-tenant counts) built from those records.
 *
 * Times are nanoseconds from the start of the run. In open loop a request's
 * intended time is its slot in the precomputed schedule; in closed loop it is
 * the moment the client issued it. Latencies are measured from the intended
 * time, so time spent waiting in the client's queue (--max-concurrency) or
 * behind a late event loop counts against the server as it would for a real
 * user (no coordinated omission); the queue time is reported on its own too.
 *   ttft  = first output chunk - intended     (chunks without output ignored)
 *   itl   = every gap between consecutive output chunks
 *   tpot  = (end - first output) / (completion_tokens - 1), completion
 *           tokens from the server's usage (output chunks when absent)
 *   e2e   = end - intended
 *   queue = sent - intended
 * Latency histograms hold successful requests only; counts cover all.
 */
#ifndef QUARRY_LOADGEN_STATS_H
#define QUARRY_LOADGEN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "loadgen/histogram.h"

enum qload_outcome {
    QLOAD_OUT_OK,
    QLOAD_OUT_CANCELLED,    /* cancelled mid-stream on purpose (--cancel-ratio) */
    QLOAD_OUT_CONNECT,      /* no connection (refused, or timed out connecting), or it failed before any response */
    QLOAD_OUT_HTTP,         /* a response with a non-2xx status */
    QLOAD_OUT_TIMEOUT,      /* --timeout passed after the request was sent */
    QLOAD_OUT_TRUNCATED,    /* the stream ended or broke before data: [DONE] */
    QLOAD_OUT_STREAM_ERROR, /* an error object or an unreadable chunk inside the stream */
    QLOAD_OUT_ABORTED,      /* still running when the run's drain time ran out */
    QLOAD_OUT_OTHER,        /* any other transfer failure */
    QLOAD_OUT_COUNT
};

/* "ok", "cancelled", "connect", "http_status", "timeout", "truncated",
 * "stream_error", "aborted", "other". */
const char *qload_outcome_name(enum qload_outcome o);

struct qload_record {
    uint64_t id;               /* index in the run (schedule order) */
    int tenant;                /* index of the API key used, 0 when none */
    enum qload_outcome outcome;
    int http_status;           /* 0 when no response */
    int64_t intended_ns, sent_ns, first_token_ns, end_ns;  /* first_token_ns -1 when none */
    int64_t prompt_tokens, completion_tokens;               /* from usage; -1 when absent */
    int64_t output_chunks;
    int64_t max_itl_ns;        /* largest inter-token gap, -1 when under 2 chunks */
    int prompt_words, max_tokens; /* what was asked for (prompt_words -1 for file prompts) */
    int cancel_after;          /* planned cancel after this many chunks, 0 none */
    int64_t bytes_received;
    const char *error_text;    /* what went wrong (transport error, HTTP status line); NULL when ok */
    int64_t *itl_ns;           /* every gap; kept past the request only with --save-detailed */
    size_t n_itl;
};

/* Service-level objectives for goodput; a limit of 0 is "not set". */
struct qload_slo {
    double ttft_ms, itl_ms, tpot_ms, e2e_ms;
};

/* Parses "ttft=MS,itl=MS,tpot=MS,e2e=MS" (any subset, positive values).
 * itl is checked against the request's largest gap. Returns 0 or QUARRY_EINVAL. */
int qload_slo_parse(const char *text, struct qload_slo *slo, quarry_error *err);
int qload_slo_is_set(const struct qload_slo *slo);
/* Whether a successful record meets every set objective. */
int qload_slo_met(const struct qload_slo *slo, const struct qload_record *r);

#define QLOAD_HTTP_STATUS_MAX 600

struct qload_stats {
    struct qload_hist ttft, itl, tpot, e2e, queue;  /* ns */
    struct qload_hist prompt_tokens, completion_tokens;
    uint64_t sent;                       /* requests handed to the network */
    uint64_t not_sent;                   /* scheduled but still queued when the run ended */
    uint64_t outcomes[QLOAD_OUT_COUNT];
    uint64_t http_status[QLOAD_HTTP_STATUS_MAX]; /* responses by status; index 0: none or out of range */
    uint64_t slo_met;                    /* successful requests meeting the SLO */
    uint64_t total_prompt_tokens, total_completion_tokens, total_output_chunks;
    uint64_t bytes_received;
    uint64_t connections_opened;         /* TCP connections established */
    int64_t wall_ns;                     /* run start to last request finished */
    int64_t schedule_ns;                 /* open loop: intended time of the last request */
    struct qload_slo slo;
    char error_example[QLOAD_OUT_COUNT][160]; /* the first error text seen of each kind */
    int n_tenants;
    uint64_t *tenant_sent, *tenant_ok, *tenant_errors;
};

int qload_stats_init(struct qload_stats *s, int n_tenants, const struct qload_slo *slo,
                     quarry_error *err);
void qload_stats_free(struct qload_stats *s);
/* Adds one finished request (its gaps r->itl_ns[0..n_itl) go into the itl
 * histogram when it succeeded). */
void qload_stats_add(struct qload_stats *s, const struct qload_record *r);
uint64_t qload_stats_errors(const struct qload_stats *s); /* all outcomes but ok and cancelled */
/* Adds src (another thread's share of the same run: same tenants and SLO)
 * to dst: histograms merged, counts added, wall time the later one; dst's
 * schedule_ns is kept. */
void qload_stats_merge(struct qload_stats *dst, const struct qload_stats *src);

/* A named figure for thresholds and reports:
 *   pNN_X / mean_X / stddev_X / max_X with X in ttft, itl, tpot, e2e, queue
 *     (NN one of 50, 90, 95, 99, 99.9 - also written 999), in milliseconds;
 *   rps (successful requests per second), goodput (requests per second
 *   meeting the SLO), output_tps (completion tokens per second),
 *   error_rate (errors / sent, 0..1), errors, ok, sent, cancelled.
 * Returns 0 or QUARRY_ENOTFOUND for an unknown name. */
int qload_stats_metric(const struct qload_stats *s, const char *name, double *value);

#endif
