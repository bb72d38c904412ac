/*
 * client.h - the load-generating HTTP/1.1 client: event loops driving many
 * requests at once over keep-alive connections, SSE streams parsed as bytes
 * arrive.
 *
 * The request path is quarry-load's own (loadgen/http1.h: plain http://,
 * one send() and one read() per small request on an epoll loop), not
 * libcurl: a load generator must cost less per request than the server it
 * measures, and libcurl costs about twice what wrk does. Each loop runs on
 * its own thread (--threads, default 1) with its own connections and
 * statistics; the statistics (HDR histograms, counts) are merged at the end.
 *
 * Workloads:
 *   closed loop (concurrency > 0): that many clients, each sending its next
 *     request as soon as its last one ends; bounded by max_requests and/or
 *     duration. The clients are spread over the threads (like wrk's
 *     connections), so concurrency must be at least threads.
 *   open loop (concurrency == 0): requests sent at the precomputed schedule
 *     times (loadgen/arrivals.h); with max_concurrency > 0 at most that many
 *     are in flight and the rest wait in a client-side queue, whose wait is
 *     recorded as queue time and counted in their latencies. Schedule times
 *     are kept to the microsecond with a timerfd. With several threads,
 *     thread k sends the schedule's entries k, k + threads, ... and the cap
 *     is split between the threads (so it must be at least threads).
 * A request's latency in closed loop starts when it is written to its
 * connection (or when its connection starts opening, for the first request
 * on a connection) and ends when the last byte of its response has been
 * read: the definition wrk uses.
 * A run always ends by itself: no request starts after `duration`; requests
 * still running `drain_s` seconds after that are aborted (outcome
 * "aborted"), and every request has a timeout. Requests still queued when the
 * duration ends are counted as not sent.
 *
 * Chosen requests (a seeded cancel_ratio share) are cancelled on purpose
 * after a random number of output chunks (1 .. max_tokens/2) by closing the
 * connection mid-stream, to exercise the server's cancellation.
 */
#ifndef QUARRY_LOADGEN_CLIENT_H
#define QUARRY_LOADGEN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "loadgen/openai.h"
#include "loadgen/prompts.h"
#include "loadgen/rss.h"
#include "loadgen/stats.h"

struct qload_config {
    const char *url;                 /* the endpoint's full URL (http://) */
    enum qload_api api;
    const char *model;
    const char *const *api_keys;     /* n_keys bearer tokens; request i uses key i % n_keys */
    int n_keys;                      /* 0: no Authorization header */
    int concurrency;                 /* > 0: closed loop with this many clients */
    const int64_t *schedule_ns;      /* open loop: intended send times from the start */
    size_t schedule_len;
    int max_concurrency;             /* open loop: cap on requests in flight, 0 none */
    int64_t max_requests;            /* closed loop: <= 0 none */
    double duration_s;               /* <= 0 none */
    double timeout_s;                /* per request, > 0 */
    double connect_timeout_s;        /* > 0 */
    double drain_s;                  /* >= 0 */
    double cancel_ratio;             /* 0..1 */
    uint64_t seed;
    int ignore_eos;
    struct qload_prompts *prompts;   /* required for the POST APIs */
    int save_detailed;               /* keep every record (with its gaps) */
    int server_pid;                  /* > 0: sample its resident memory */
    double rss_interval_s;
    int threads;                     /* event loops on their own threads; 0 is taken as 1 */
};

struct qload_records {
    struct qload_record *items;
    size_t n, cap;
};

void qload_records_free(struct qload_records *r);

/* Runs the workload. stats must be initialised (qload_stats_init with
 * max(1, n_keys) tenants); records (with save_detailed) and rss (with
 * server_pid) may be NULL otherwise. Returns 0 when the run happened (the
 * requests may all have failed: that is in the stats), or a negative code
 * when it could not run (bad config or URL, out of memory, epoll or thread
 * failure). A host name that does not resolve is not such a failure: every
 * request then fails as a connect error. */
int qload_run(const struct qload_config *cfg, struct qload_stats *stats,
              struct qload_records *records, struct qload_rss *rss, quarry_error *err);

#endif
