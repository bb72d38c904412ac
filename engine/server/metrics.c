/*
 * metrics.c - counters, histograms and gauges in Prometheus text format (see
 * metrics.h).
 *
 * A labelled counter family keeps one series per distinct label set; the
 * series key is the rendered, escaped label text itself (`tenant="alice"`),
 * which is also what the exposition prints. The label values come from small
 * closed sets (routes, status codes, tenants of the keys file), so series are
 * found by a linear scan.
 */
#include "engine/server/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/server/strbuf.h"

#define MAX_LABELS 3
#define MAX_SERIES 4096 /* per family: a bound against label values nobody expected */
#define MAX_BUCKETS 16

struct series {
    char *labels;   /* rendered: name="value",name="value" */
    double value;
};

struct counter_family {
    const char *name, *help;
    int n_labels;
    const char *label_names[MAX_LABELS];
    struct series *s;
    size_t n, cap;
};

struct histogram {
    const char *name, *help;
    int n_bounds;
    double bounds[MAX_BUCKETS];      /* upper bounds, ascending; +Inf implied */
    uint64_t counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative; last = above all bounds */
    double sum;
    uint64_t count;
};

enum { FAM_REQUESTS, FAM_PROMPT, FAM_COMPLETION, FAM_RATE_LIMITED, FAM_CANCELLED, FAM_COUNT };

struct srv_metrics {
    pthread_mutex_t mu;
    struct counter_family fam[FAM_COUNT];
    struct histogram hist[SRV_HIST_COUNT];
};

/* Latencies from a few milliseconds (tiny models) to a minute. */
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60};
/* Per-token gaps are much shorter. */
static const double itl_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5};

static void set_hist(struct histogram *h, const char *name, const char *help,
                     const double *bounds, int n)
{
    h->name = name;
    h->help = help;
    h->n_bounds = n;
    memcpy(h->bounds, bounds, (size_t)n * sizeof *bounds);
}

int srv_metrics_new(srv_metrics **out)
{
    *out = NULL;
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->fam[FAM_REQUESTS] = (struct counter_family){
        "quarry_requests_total", "HTTP requests answered, by endpoint, tenant and status.", 3,
        {"endpoint", "tenant", "status"}, NULL, 0, 0};
    m->fam[FAM_PROMPT] = (struct counter_family){
        "quarry_prompt_tokens_total", "Prompt tokens processed, by tenant.", 1, {"tenant"},
        NULL, 0, 0};
    m->fam[FAM_COMPLETION] = (struct counter_family){
        "quarry_completion_tokens_total", "Tokens generated, by tenant.", 1, {"tenant"}, NULL,
        0, 0};
    m->fam[FAM_RATE_LIMITED] = (struct counter_family){
        "quarry_rate_limited_total",
        "Requests refused with 429, by tenant and the limit that refused them.", 2,
        {"tenant", "limit"}, NULL, 0, 0};
    m->fam[FAM_CANCELLED] = (struct counter_family){
        "quarry_cancelled_requests_total",
        "Generations ended early: the client went away (disconnect) or the server stopped "
        "(shutdown).",
        1, {"reason"}, NULL, 0, 0};
    const int nl = (int)(sizeof latency_bounds / sizeof latency_bounds[0]);
    set_hist(&m->hist[SRV_HIST_TTFT], "quarry_time_to_first_token_seconds",
             "Time from receiving a request to its first generated token.", latency_bounds, nl);
    set_hist(&m->hist[SRV_HIST_ITL], "quarry_inter_token_latency_seconds",
             "Time between consecutive generated tokens of one request.", itl_bounds,
             (int)(sizeof itl_bounds / sizeof itl_bounds[0]));
    set_hist(&m->hist[SRV_HIST_DURATION], "quarry_request_duration_seconds",
             "Time from receiving a completion request to the end of its generation.",
             latency_bounds, nl);
    set_hist(&m->hist[SRV_HIST_QUEUE_WAIT], "quarry_queue_wait_seconds",
             "Time a request waited in the queue for a sequence slot.", latency_bounds, nl);
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void srv_metrics_free(srv_metrics *m)
{
    if (!m)
        return;
    for (int f = 0; f < FAM_COUNT; f++) {
        for (size_t i = 0; i < m->fam[f].n; i++)
            free(m->fam[f].s[i].labels);
        free(m->fam[f].s);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void escape_label(struct srv_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            srv_buf_puts(b, "\\\\");
        else if (*v == '"')
            srv_buf_puts(b, "\\\"");
        else if (*v == '\n')
            srv_buf_puts(b, "\\n");
        else
            srv_buf_append(b, v, 1);
    }
}

/* Adds delta to the series of fam with the given label values. Caller holds mu. */
static void counter_add(struct counter_family *fam, const char *const *values, double delta)
{
    struct srv_buf key;
    srv_buf_init(&key);
    for (int i = 0; i < fam->n_labels; i++) {
        srv_buf_printf(&key, "%s%s=\"", i ? "," : "", fam->label_names[i]);
        escape_label(&key, values[i] ? values[i] : "");
        srv_buf_puts(&key, "\"");
    }
    char *k = srv_buf_take(&key, NULL);
    if (!k)
        return; /* out of memory: the sample is lost, nothing else */
    for (size_t i = 0; i < fam->n; i++) {
        if (strcmp(fam->s[i].labels, k) == 0) {
            fam->s[i].value += delta;
            free(k);
            return;
        }
    }
    if (fam->n == fam->cap) {
        const size_t cap = fam->cap ? fam->cap * 2 : 16;
        struct series *s = cap <= MAX_SERIES ? realloc(fam->s, cap * sizeof *s) : NULL;
        if (!s) {
            free(k);
            return;
        }
        fam->s = s;
        fam->cap = cap;
    }
    fam->s[fam->n++] = (struct series){k, delta};
}

void srv_metrics_count_request(srv_metrics *m, const char *endpoint, const char *tenant,
                               int status)
{
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    const char *v[3] = {endpoint, tenant, code};
    pthread_mutex_lock(&m->mu);
    counter_add(&m->fam[FAM_REQUESTS], v, 1);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_tokens(srv_metrics *m, const char *tenant, int64_t prompt,
                              int64_t completion)
{
    const char *v[1] = {tenant};
    pthread_mutex_lock(&m->mu);
    counter_add(&m->fam[FAM_PROMPT], v, (double)prompt);
    counter_add(&m->fam[FAM_COMPLETION], v, (double)completion);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_rate_limited(srv_metrics *m, const char *tenant, const char *limit)
{
    const char *v[2] = {tenant, limit};
    pthread_mutex_lock(&m->mu);
    counter_add(&m->fam[FAM_RATE_LIMITED], v, 1);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_cancelled(srv_metrics *m, const char *reason)
{
    const char *v[1] = {reason};
    pthread_mutex_lock(&m->mu);
    counter_add(&m->fam[FAM_CANCELLED], v, 1);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe(srv_metrics *m, enum srv_hist which, double seconds)
{
    if ((unsigned)which >= SRV_HIST_COUNT || !(seconds >= 0))
        return; /* NaN or a clock that went backwards */
    pthread_mutex_lock(&m->mu);
    struct histogram *h = &m->hist[which];
    int b = 0;
    while (b < h->n_bounds && seconds > h->bounds[b])
        b++;
    h->counts[b]++;
    h->sum += seconds;
    h->count++;
    pthread_mutex_unlock(&m->mu);
}

static void gauge(struct srv_buf *b, const char *name, const char *help, int64_t v)
{
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                   (long long)v);
}

char *srv_metrics_render(srv_metrics *m, const struct srv_gauges *g, size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    pthread_mutex_lock(&m->mu);
    for (int f = 0; f < FAM_COUNT; f++) {
        const struct counter_family *fam = &m->fam[f];
        srv_buf_printf(&b, "# HELP %s %s\n# TYPE %s counter\n", fam->name, fam->help, fam->name);
        for (size_t i = 0; i < fam->n; i++)
            srv_buf_printf(&b, "%s{%s} %.17g\n", fam->name, fam->s[i].labels, fam->s[i].value);
    }
    for (int k = 0; k < SRV_HIST_COUNT; k++) {
        const struct histogram *h = &m->hist[k];
        srv_buf_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
        uint64_t cum = 0;
        for (int i = 0; i < h->n_bounds; i++) {
            cum += h->counts[i];
            srv_buf_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->bounds[i],
                           (unsigned long long)cum);
        }
        cum += h->counts[h->n_bounds];
        srv_buf_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", h->name,
                       (unsigned long long)cum, h->name, h->sum, h->name,
                       (unsigned long long)h->count);
    }
    pthread_mutex_unlock(&m->mu);
    const struct srv_gauges zero = {0};
    if (!g)
        g = &zero;
    gauge(&b, "quarry_active_sequences", "Sequences being generated now.", g->active_sequences);
    gauge(&b, "quarry_queued_requests", "Requests waiting for a sequence slot.",
          g->queued_requests);
    gauge(&b, "quarry_sequence_slots", "Sequence slots (--parallel).", g->sequence_slots);
    gauge(&b, "quarry_kv_cache_cells_used", "KV cache positions in use, over all sequences.",
          g->kv_cells_used);
    gauge(&b, "quarry_kv_cache_cells_total", "KV cache positions available (slots x context).",
          g->kv_cells_total);
    gauge(&b, "quarry_model_loaded", "1 once the model is loaded and requests are served.",
          g->model_loaded);
    return srv_buf_take(&b, len);
}
