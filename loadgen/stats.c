/*
 * stats.c - per-request records into run aggregates (see stats.h).
 */
#include "loadgen/stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *qload_outcome_name(enum qload_outcome o)
{
    switch (o) {
    case QLOAD_OUT_OK: return "ok";
    case QLOAD_OUT_CANCELLED: return "cancelled";
    case QLOAD_OUT_CONNECT: return "connect";
    case QLOAD_OUT_HTTP: return "http_status";
    case QLOAD_OUT_TIMEOUT: return "timeout";
    case QLOAD_OUT_TRUNCATED: return "truncated";
    case QLOAD_OUT_STREAM_ERROR: return "stream_error";
    case QLOAD_OUT_ABORTED: return "aborted";
    case QLOAD_OUT_OTHER: return "other";
    case QLOAD_OUT_COUNT: break;
    }
    return "?";
}

int qload_slo_parse(const char *text, struct qload_slo *slo, quarry_error *err)
{
    memset(slo, 0, sizeof *slo);
    const char *p = text;
    while (*p) {
        const char *eq = strchr(p, '=');
        if (!eq)
            goto bad;
        const size_t klen = (size_t)(eq - p);
        char *end = NULL;
        errno = 0;
        const double v = strtod(eq + 1, &end);
        if (end == eq + 1 || errno != 0 || !isfinite(v) || v <= 0 || (*end != ',' && *end != '\0'))
            goto bad;
        if (klen == 4 && memcmp(p, "ttft", 4) == 0)
            slo->ttft_ms = v;
        else if (klen == 3 && memcmp(p, "itl", 3) == 0)
            slo->itl_ms = v;
        else if (klen == 4 && memcmp(p, "tpot", 4) == 0)
            slo->tpot_ms = v;
        else if (klen == 3 && memcmp(p, "e2e", 3) == 0)
            slo->e2e_ms = v;
        else
            goto bad;
        p = *end == ',' ? end + 1 : end;
    }
    if (!qload_slo_is_set(slo))
        goto bad;
    return 0;
bad:
    memset(slo, 0, sizeof *slo);
    return quarry_errorf(err, QUARRY_EINVAL,
                         "--slo '%s': expected ttft=MS,itl=MS,tpot=MS,e2e=MS (any of them, > 0)", text);
}

int qload_slo_is_set(const struct qload_slo *slo)
{
    return slo->ttft_ms > 0 || slo->itl_ms > 0 || slo->tpot_ms > 0 || slo->e2e_ms > 0;
}

static double tpot_ns(const struct qload_record *r)
{
    const int64_t tokens = r->completion_tokens >= 0 ? r->completion_tokens : r->output_chunks;
    if (tokens < 2 || r->first_token_ns < 0)
        return -1;
    return (double)(r->end_ns - r->first_token_ns) / (double)(tokens - 1);
}

int qload_slo_met(const struct qload_slo *slo, const struct qload_record *r)
{
    if (r->outcome != QLOAD_OUT_OK)
        return 0;
    if (slo->ttft_ms > 0) {
        if (r->first_token_ns < 0 || (double)(r->first_token_ns - r->intended_ns) > slo->ttft_ms * 1e6)
            return 0;
    }
    if (slo->itl_ms > 0 && r->max_itl_ns >= 0 && (double)r->max_itl_ns > slo->itl_ms * 1e6)
        return 0;
    if (slo->tpot_ms > 0) {
        const double t = tpot_ns(r);
        if (t >= 0 && t > slo->tpot_ms * 1e6)
            return 0;
    }
    if (slo->e2e_ms > 0 && (double)(r->end_ns - r->intended_ns) > slo->e2e_ms * 1e6)
        return 0;
    return 1;
}

int qload_stats_init(struct qload_stats *s, int n_tenants, const struct qload_slo *slo,
                     quarry_error *err)
{
    memset(s, 0, sizeof *s);
    struct qload_hist *h[] = {&s->ttft, &s->itl, &s->tpot, &s->e2e, &s->queue, &s->prompt_tokens,
                              &s->completion_tokens};
    if (n_tenants < 1)
        n_tenants = 1;
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (qload_hist_init(h[i], err) != 0) {
            qload_stats_free(s);
            return QUARRY_ENOMEM;
        }
    }
    s->n_tenants = n_tenants;
    s->tenant_sent = calloc((size_t)n_tenants, sizeof *s->tenant_sent);
    s->tenant_ok = calloc((size_t)n_tenants, sizeof *s->tenant_ok);
    s->tenant_errors = calloc((size_t)n_tenants, sizeof *s->tenant_errors);
    if (!s->tenant_sent || !s->tenant_ok || !s->tenant_errors) {
        qload_stats_free(s);
        return quarry_errorf(err, QUARRY_ENOMEM, "stats: out of memory");
    }
    if (slo)
        s->slo = *slo;
    return 0;
}

void qload_stats_free(struct qload_stats *s)
{
    qload_hist_free(&s->ttft);
    qload_hist_free(&s->itl);
    qload_hist_free(&s->tpot);
    qload_hist_free(&s->e2e);
    qload_hist_free(&s->queue);
    qload_hist_free(&s->prompt_tokens);
    qload_hist_free(&s->completion_tokens);
    free(s->tenant_sent);
    free(s->tenant_ok);
    free(s->tenant_errors);
    s->tenant_sent = s->tenant_ok = s->tenant_errors = NULL;
}

static uint64_t nonneg(int64_t v)
{
    return v > 0 ? (uint64_t)v : 0;
}

void qload_stats_add(struct qload_stats *s, const struct qload_record *r)
{
    const int ok = r->outcome == QLOAD_OUT_OK;
    const int err = r->outcome != QLOAD_OUT_OK && r->outcome != QLOAD_OUT_CANCELLED;
    s->outcomes[r->outcome < QLOAD_OUT_COUNT ? r->outcome : QLOAD_OUT_OTHER]++;
    s->http_status[r->http_status > 0 && r->http_status < QLOAD_HTTP_STATUS_MAX ? r->http_status : 0]++;
    if (r->error_text && r->outcome < QLOAD_OUT_COUNT && s->error_example[r->outcome][0] == '\0')
        snprintf(s->error_example[r->outcome], sizeof s->error_example[r->outcome], "%s", r->error_text);
    const int t = r->tenant >= 0 && r->tenant < s->n_tenants ? r->tenant : 0;
    s->tenant_sent[t]++;
    s->tenant_ok[t] += (uint64_t)ok;
    s->tenant_errors[t] += (uint64_t)err;
    s->bytes_received += nonneg(r->bytes_received);
    if (r->prompt_tokens > 0)
        s->total_prompt_tokens += (uint64_t)r->prompt_tokens;
    if (r->completion_tokens > 0)
        s->total_completion_tokens += (uint64_t)r->completion_tokens;
    s->total_output_chunks += nonneg(r->output_chunks);
    if (r->end_ns > s->wall_ns)
        s->wall_ns = r->end_ns;
    if (!ok)
        return;
    qload_hist_record(&s->queue, nonneg(r->sent_ns - r->intended_ns));
    qload_hist_record(&s->e2e, nonneg(r->end_ns - r->intended_ns));
    if (r->first_token_ns >= 0)
        qload_hist_record(&s->ttft, nonneg(r->first_token_ns - r->intended_ns));
    for (size_t i = 0; i < r->n_itl; i++)
        qload_hist_record(&s->itl, nonneg(r->itl_ns[i]));
    const double tpot = tpot_ns(r);
    if (tpot >= 0)
        qload_hist_record(&s->tpot, (uint64_t)llround(tpot));
    if (r->prompt_tokens >= 0)
        qload_hist_record(&s->prompt_tokens, (uint64_t)r->prompt_tokens);
    if (r->completion_tokens >= 0)
        qload_hist_record(&s->completion_tokens, (uint64_t)r->completion_tokens);
    if (qload_slo_met(&s->slo, r))
        s->slo_met++;
}

uint64_t qload_stats_errors(const struct qload_stats *s)
{
    uint64_t n = 0;
    for (int o = 0; o < QLOAD_OUT_COUNT; o++)
        if (o != QLOAD_OUT_OK && o != QLOAD_OUT_CANCELLED)
            n += s->outcomes[o];
    return n;
}

void qload_stats_merge(struct qload_stats *dst, const struct qload_stats *src)
{
    qload_hist_merge(&dst->ttft, &src->ttft);
    qload_hist_merge(&dst->itl, &src->itl);
    qload_hist_merge(&dst->tpot, &src->tpot);
    qload_hist_merge(&dst->e2e, &src->e2e);
    qload_hist_merge(&dst->queue, &src->queue);
    qload_hist_merge(&dst->prompt_tokens, &src->prompt_tokens);
    qload_hist_merge(&dst->completion_tokens, &src->completion_tokens);
    dst->sent += src->sent;
    dst->not_sent += src->not_sent;
    for (int o = 0; o < QLOAD_OUT_COUNT; o++) {
        dst->outcomes[o] += src->outcomes[o];
        if (dst->error_example[o][0] == '\0')
            memcpy(dst->error_example[o], src->error_example[o], sizeof dst->error_example[o]);
    }
    for (int i = 0; i < QLOAD_HTTP_STATUS_MAX; i++)
        dst->http_status[i] += src->http_status[i];
    dst->slo_met += src->slo_met;
    dst->total_prompt_tokens += src->total_prompt_tokens;
    dst->total_completion_tokens += src->total_completion_tokens;
    dst->total_output_chunks += src->total_output_chunks;
    dst->bytes_received += src->bytes_received;
    dst->connections_opened += src->connections_opened;
    if (src->wall_ns > dst->wall_ns)
        dst->wall_ns = src->wall_ns;
    const int n = dst->n_tenants < src->n_tenants ? dst->n_tenants : src->n_tenants;
    for (int t = 0; t < n; t++) {
        dst->tenant_sent[t] += src->tenant_sent[t];
        dst->tenant_ok[t] += src->tenant_ok[t];
        dst->tenant_errors[t] += src->tenant_errors[t];
    }
}

static const struct qload_hist *latency_hist(const struct qload_stats *s, const char *name)
{
    if (strcmp(name, "ttft") == 0)
        return &s->ttft;
    if (strcmp(name, "itl") == 0)
        return &s->itl;
    if (strcmp(name, "tpot") == 0)
        return &s->tpot;
    if (strcmp(name, "e2e") == 0)
        return &s->e2e;
    if (strcmp(name, "queue") == 0)
        return &s->queue;
    return NULL;
}

int qload_stats_metric(const struct qload_stats *s, const char *name, double *value)
{
    const double secs = s->wall_ns > 0 ? (double)s->wall_ns / 1e9 : 0.0;
    if (strcmp(name, "rps") == 0) {
        *value = secs > 0 ? (double)s->outcomes[QLOAD_OUT_OK] / secs : 0.0;
        return 0;
    }
    if (strcmp(name, "goodput") == 0) {
        *value = secs > 0 ? (double)s->slo_met / secs : 0.0;
        return 0;
    }
    if (strcmp(name, "output_tps") == 0) {
        *value = secs > 0 ? (double)s->total_completion_tokens / secs : 0.0;
        return 0;
    }
    if (strcmp(name, "error_rate") == 0) {
        *value = s->sent ? (double)qload_stats_errors(s) / (double)s->sent : 0.0;
        return 0;
    }
    if (strcmp(name, "errors") == 0) {
        *value = (double)qload_stats_errors(s);
        return 0;
    }
    if (strcmp(name, "ok") == 0) {
        *value = (double)s->outcomes[QLOAD_OUT_OK];
        return 0;
    }
    if (strcmp(name, "cancelled") == 0) {
        *value = (double)s->outcomes[QLOAD_OUT_CANCELLED];
        return 0;
    }
    if (strcmp(name, "sent") == 0) {
        *value = (double)s->sent;
        return 0;
    }
    /* STAT_HIST */
    const char *us = strchr(name, '_');
    if (!us || us == name)
        return QUARRY_ENOTFOUND;
    const struct qload_hist *h = latency_hist(s, us + 1);
    if (!h)
        return QUARRY_ENOTFOUND;
    const size_t slen = (size_t)(us - name);
    char stat[16];
    if (slen >= sizeof stat)
        return QUARRY_ENOTFOUND;
    memcpy(stat, name, slen);
    stat[slen] = '\0';
    double ns;
    if (strcmp(stat, "mean") == 0) {
        ns = qload_hist_mean(h);
    } else if (strcmp(stat, "stddev") == 0) {
        ns = qload_hist_stddev(h);
    } else if (strcmp(stat, "max") == 0) {
        ns = h->count ? (double)h->max : 0.0;
    } else if (stat[0] == 'p') {
        double p;
        if (strcmp(stat, "p50") == 0)
            p = 50;
        else if (strcmp(stat, "p90") == 0)
            p = 90;
        else if (strcmp(stat, "p95") == 0)
            p = 95;
        else if (strcmp(stat, "p99") == 0)
            p = 99;
        else if (strcmp(stat, "p99.9") == 0 || strcmp(stat, "p999") == 0)
            p = 99.9;
        else
            return QUARRY_ENOTFOUND;
        ns = qload_hist_percentile(h, p);
    } else {
        return QUARRY_ENOTFOUND;
    }
    *value = ns / 1e6;
    return 0;
}
