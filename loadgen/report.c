/*
 * report.c - the human table and the JSON result of a load run (see report.h).
 */
#include "loadgen/report.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness/results.h"
#include "loadgen/histogram.h"
#include "loadgen/scrape.h"

static double ms(double ns)
{
    return ns / 1e6;
}

static double per_s(const struct qload_stats *s, double count)
{
    return s->wall_ns > 0 ? count / ((double)s->wall_ns / 1e9) : 0.0;
}

/* ---- table ---- */

static void table_row(FILE *out, const char *name, const struct qload_hist *h, double scale)
{
    if (h->count == 0) {
        fprintf(out, "  %-7s %9s\n", name, "-");
        return;
    }
    fprintf(out, "  %-7s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %8llu\n", name,
            qload_hist_percentile(h, 50) / scale, qload_hist_percentile(h, 90) / scale,
            qload_hist_percentile(h, 95) / scale, qload_hist_percentile(h, 99) / scale,
            qload_hist_percentile(h, 99.9) / scale, qload_hist_mean(h) / scale,
            qload_hist_stddev(h) / scale, (double)h->max / scale, (unsigned long long)h->count);
}

void qload_report_table(FILE *out, const struct qload_report *r)
{
    const struct qload_stats *s = r->stats;
    const uint64_t ok = s->outcomes[QLOAD_OUT_OK];
    fprintf(out, "quarry-load: %s\n", r->description ? r->description : "");
    fprintf(out, "requests: %llu sent, %llu ok, %llu cancelled, %llu errors, %llu not sent; %.3f s\n",
            (unsigned long long)s->sent, (unsigned long long)ok,
            (unsigned long long)s->outcomes[QLOAD_OUT_CANCELLED],
            (unsigned long long)qload_stats_errors(s), (unsigned long long)s->not_sent,
            (double)s->wall_ns / 1e9);
    fprintf(out, "throughput: %.2f req/s ok, %.1f output tok/s, %llu connections opened\n",
            per_s(s, (double)ok), per_s(s, (double)s->total_completion_tokens),
            (unsigned long long)s->connections_opened);
    if (qload_slo_is_set(&s->slo))
        fprintf(out, "goodput: %.2f req/s (%llu of %llu ok requests within the SLO)\n",
                per_s(s, (double)s->slo_met), (unsigned long long)s->slo_met, (unsigned long long)ok);
    fprintf(out, "  %-7s %9s %9s %9s %9s %9s %9s %9s %9s %8s\n", "ms", "p50", "p90", "p95", "p99",
            "p99.9", "mean", "stddev", "max", "n");
    table_row(out, "ttft", &s->ttft, 1e6);
    table_row(out, "itl", &s->itl, 1e6);
    table_row(out, "tpot", &s->tpot, 1e6);
    table_row(out, "e2e", &s->e2e, 1e6);
    table_row(out, "queue", &s->queue, 1e6);
    fprintf(out, "  %-7s\n", "tokens");
    table_row(out, "prompt", &s->prompt_tokens, 1.0);
    table_row(out, "output", &s->completion_tokens, 1.0);
    for (int o = 0; o < QLOAD_OUT_COUNT; o++) {
        if (o == QLOAD_OUT_OK || s->outcomes[o] == 0)
            continue;
        fprintf(out, "%s: %llu%s%s\n", qload_outcome_name((enum qload_outcome)o),
                (unsigned long long)s->outcomes[o], s->error_example[o][0] ? "  e.g. " : "",
                s->error_example[o]);
    }
    if (s->n_tenants > 1) {
        fprintf(out, "tenants:");
        for (int t = 0; t < s->n_tenants && t < 16; t++)
            fprintf(out, " #%d %llu/%llu", t, (unsigned long long)s->tenant_ok[t],
                    (unsigned long long)s->tenant_sent[t]);
        fprintf(out, "%s (ok/sent)\n", s->n_tenants > 16 ? " ..." : "");
    }
    if (r->rss) {
        if (r->rss->samples > 0)
            fprintf(out, "server RSS (pid %d): start %.1f MiB, peak %.1f MiB, end %.1f MiB (%llu samples)\n",
                    r->rss->pid, (double)r->rss->start_bytes / 1048576.0,
                    (double)r->rss->peak_bytes / 1048576.0, (double)r->rss->end_bytes / 1048576.0,
                    (unsigned long long)r->rss->samples);
        else
            fprintf(out, "server RSS (pid %d): could not be read\n", r->rss->pid);
    }
    if (r->metrics_error)
        fprintf(out, "server metrics: %s\n", r->metrics_error);
    if (r->thresholds) {
        for (size_t i = 0; i < r->thresholds->n; i++) {
            const struct qload_threshold *th = &r->thresholds->items[i];
            fprintf(out, "fail-if %s: %g -> %s\n", th->text, th->value, th->broken ? "BROKEN" : "ok");
        }
    }
}

/* ---- JSON ---- */

static int add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, isfinite(v) ? v : 0.0) != NULL;
}

static int add_num_or_null(cJSON *o, const char *key, int known, double v)
{
    if (!known || !isfinite(v))
        return cJSON_AddNullToObject(o, key) != NULL;
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* {"unit", "count", "p50", ..., "buckets": [[lower, count], ...]} */
static cJSON *hist_json(const struct qload_hist *h, const char *unit, double scale)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const int known = h->count > 0;
    int ok = cJSON_AddStringToObject(o, "unit", unit) != NULL;
    ok = ok && add_num(o, "count", (double)h->count);
    static const struct {
        const char *name;
        double p;
    } pcts[] = {{"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}, {"p99.9", 99.9}};
    for (size_t i = 0; ok && i < sizeof pcts / sizeof pcts[0]; i++)
        ok = add_num_or_null(o, pcts[i].name, known, qload_hist_percentile(h, pcts[i].p) / scale);
    ok = ok && add_num_or_null(o, "mean", known, qload_hist_mean(h) / scale);
    ok = ok && add_num_or_null(o, "stddev", known, qload_hist_stddev(h) / scale);
    ok = ok && add_num_or_null(o, "min", known, (double)h->min / scale);
    ok = ok && add_num_or_null(o, "max", known, (double)h->max / scale);
    ok = ok && add_num(o, "saturated", (double)h->saturated);
    cJSON *buckets = ok ? cJSON_AddArrayToObject(o, "buckets") : NULL;
    ok = buckets != NULL;
    for (int i = 0; ok && i < QLOAD_HIST_BUCKETS; i++) {
        if (h->buckets[i] == 0)
            continue;
        const double pair[2] = {(double)qload_hist_bucket_lower(i), (double)h->buckets[i]};
        cJSON *p = cJSON_CreateDoubleArray(pair, 2);
        ok = p && cJSON_AddItemToArray(buckets, p);
        if (!ok)
            cJSON_Delete(p);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int add_item(cJSON *o, const char *key, cJSON *item)
{
    if (!item)
        return 0;
    if (!cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

static cJSON *summary_json(const struct qload_report *r)
{
    const struct qload_stats *s = r->stats;
    const uint64_t ok_n = s->outcomes[QLOAD_OUT_OK];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = 1;
    cJSON *req = cJSON_AddObjectToObject(o, "requests");
    ok = req != NULL;
    ok = ok && add_num(req, "sent", (double)s->sent);
    ok = ok && add_num(req, "ok", (double)ok_n);
    ok = ok && add_num(req, "cancelled", (double)s->outcomes[QLOAD_OUT_CANCELLED]);
    ok = ok && add_num(req, "errors", (double)qload_stats_errors(s));
    ok = ok && add_num(req, "not_sent", (double)s->not_sent);
    cJSON *by = ok ? cJSON_AddObjectToObject(req, "by_outcome") : NULL;
    ok = by != NULL;
    for (int k = 0; ok && k < QLOAD_OUT_COUNT; k++)
        ok = add_num(by, qload_outcome_name((enum qload_outcome)k), (double)s->outcomes[k]);
    cJSON *st = ok ? cJSON_AddObjectToObject(req, "http_status") : NULL;
    ok = st != NULL;
    for (int c = 0; ok && c < QLOAD_HTTP_STATUS_MAX; c++) {
        if (s->http_status[c] == 0)
            continue;
        char key[16];
        snprintf(key, sizeof key, "%d", c);
        ok = add_num(st, c == 0 ? "none" : key, (double)s->http_status[c]);
    }
    cJSON *ex = ok ? cJSON_AddObjectToObject(req, "error_examples") : NULL;
    ok = ex != NULL;
    for (int k = 0; ok && k < QLOAD_OUT_COUNT; k++)
        if (s->error_example[k][0])
            ok = cJSON_AddStringToObject(ex, qload_outcome_name((enum qload_outcome)k),
                                         s->error_example[k]) != NULL;

    ok = ok && add_num(o, "duration_s", (double)s->wall_ns / 1e9);
    ok = ok && add_num(o, "requests_per_s", per_s(s, (double)ok_n));
    ok = ok && add_num(o, "output_tokens_per_s", per_s(s, (double)s->total_completion_tokens));
    ok = ok && add_num(o, "connections_opened", (double)s->connections_opened);
    ok = ok && add_num(o, "bytes_received", (double)s->bytes_received);
    if (ok && s->schedule_ns > 0)
        ok = add_num(o, "schedule_span_s", (double)s->schedule_ns / 1e9);

    cJSON *gp = ok ? cJSON_AddObjectToObject(o, "goodput") : NULL;
    ok = gp != NULL;
    if (ok && qload_slo_is_set(&s->slo)) {
        cJSON *slo = cJSON_AddObjectToObject(gp, "slo_ms");
        ok = slo != NULL;
        ok = ok && add_num_or_null(slo, "ttft", s->slo.ttft_ms > 0, s->slo.ttft_ms);
        ok = ok && add_num_or_null(slo, "itl", s->slo.itl_ms > 0, s->slo.itl_ms);
        ok = ok && add_num_or_null(slo, "tpot", s->slo.tpot_ms > 0, s->slo.tpot_ms);
        ok = ok && add_num_or_null(slo, "e2e", s->slo.e2e_ms > 0, s->slo.e2e_ms);
        ok = ok && add_num(gp, "requests", (double)s->slo_met);
        ok = ok && add_num(gp, "requests_per_s", per_s(s, (double)s->slo_met));
    } else if (ok) {
        ok = cJSON_AddNullToObject(gp, "slo_ms") != NULL;
    }

    cJSON *lat = ok ? cJSON_AddObjectToObject(o, "latency_ms") : NULL;
    ok = lat != NULL;
    ok = ok && add_item(lat, "ttft", hist_json(&s->ttft, "ms", 1e6));
    ok = ok && add_item(lat, "itl", hist_json(&s->itl, "ms", 1e6));
    ok = ok && add_item(lat, "tpot", hist_json(&s->tpot, "ms", 1e6));
    ok = ok && add_item(lat, "e2e", hist_json(&s->e2e, "ms", 1e6));
    ok = ok && add_item(lat, "queue", hist_json(&s->queue, "ms", 1e6));
    cJSON *tok = ok ? cJSON_AddObjectToObject(o, "tokens") : NULL;
    ok = tok != NULL;
    ok = ok && add_item(tok, "prompt", hist_json(&s->prompt_tokens, "tokens", 1.0));
    ok = ok && add_item(tok, "completion", hist_json(&s->completion_tokens, "tokens", 1.0));
    ok = ok && add_num(tok, "total_prompt", (double)s->total_prompt_tokens);
    ok = ok && add_num(tok, "total_completion", (double)s->total_completion_tokens);
    ok = ok && add_num(tok, "output_chunks", (double)s->total_output_chunks);

    cJSON *ten = ok ? cJSON_AddArrayToObject(o, "tenants") : NULL;
    ok = ten != NULL;
    for (int t = 0; ok && t < s->n_tenants; t++) {
        cJSON *e = cJSON_CreateObject();
        ok = e != NULL && cJSON_AddItemToArray(ten, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        ok = add_num(e, "index", t) && add_num(e, "sent", (double)s->tenant_sent[t]) &&
             add_num(e, "ok", (double)s->tenant_ok[t]) &&
             add_num(e, "errors", (double)s->tenant_errors[t]);
    }
    cJSON *th = ok ? cJSON_AddArrayToObject(o, "thresholds") : NULL;
    ok = th != NULL;
    for (size_t i = 0; ok && r->thresholds && i < r->thresholds->n; i++) {
        const struct qload_threshold *t = &r->thresholds->items[i];
        cJSON *e = cJSON_CreateObject();
        ok = e != NULL && cJSON_AddItemToArray(th, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        ok = cJSON_AddStringToObject(e, "condition", t->text) != NULL &&
             add_num_or_null(e, "value", 1, t->value) && cJSON_AddBoolToObject(e, "broken", t->broken);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *record_json(const struct qload_record *rec)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const int has_first = rec->first_token_ns >= 0;
    const int64_t tokens = rec->completion_tokens >= 0 ? rec->completion_tokens : rec->output_chunks;
    int ok = add_num(o, "id", (double)rec->id);
    ok = ok && add_num(o, "tenant", rec->tenant);
    ok = ok && cJSON_AddStringToObject(o, "outcome", qload_outcome_name(rec->outcome)) != NULL;
    ok = ok && add_num_or_null(o, "http_status", rec->http_status > 0, rec->http_status);
    ok = ok && add_num(o, "intended_ms", ms((double)rec->intended_ns));
    ok = ok && add_num(o, "queue_ms", ms((double)(rec->sent_ns - rec->intended_ns)));
    ok = ok && add_num_or_null(o, "ttft_ms", has_first, ms((double)(rec->first_token_ns - rec->intended_ns)));
    ok = ok && add_num(o, "e2e_ms", ms((double)(rec->end_ns - rec->intended_ns)));
    ok = ok && add_num_or_null(o, "tpot_ms", has_first && tokens > 1,
                               ms((double)(rec->end_ns - rec->first_token_ns) / (double)(tokens - 1)));
    ok = ok && add_num_or_null(o, "max_itl_ms", rec->max_itl_ns >= 0, ms((double)rec->max_itl_ns));
    ok = ok && add_num_or_null(o, "prompt_tokens", rec->prompt_tokens >= 0, (double)rec->prompt_tokens);
    ok = ok && add_num_or_null(o, "completion_tokens", rec->completion_tokens >= 0,
                               (double)rec->completion_tokens);
    ok = ok && add_num(o, "output_chunks", (double)rec->output_chunks);
    ok = ok && add_num_or_null(o, "prompt_words", rec->prompt_words >= 0, rec->prompt_words);
    ok = ok && add_num(o, "max_tokens", rec->max_tokens);
    ok = ok && add_num_or_null(o, "cancel_after", rec->cancel_after > 0, rec->cancel_after);
    ok = ok && add_num(o, "bytes", (double)rec->bytes_received);
    cJSON *itl = ok ? cJSON_AddArrayToObject(o, "itl_ms") : NULL;
    ok = itl != NULL;
    for (size_t i = 0; ok && i < rec->n_itl; i++) {
        cJSON *v = cJSON_CreateNumber(ms((double)rec->itl_ns[i]));
        ok = v && cJSON_AddItemToArray(itl, v);
        if (!ok)
            cJSON_Delete(v);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int qload_report_json(cJSON *doc, const struct qload_report *r, quarry_error *err)
{
    cJSON *rows = quarry_results_rows(doc);
    cJSON *summary = summary_json(r);
    int ok = rows && summary && cJSON_AddItemToArray(rows, summary);
    if (!ok)
        cJSON_Delete(summary);
    ok = ok && cJSON_AddStringToObject(doc, "description", r->description ? r->description : "");

    cJSON *sm = ok ? cJSON_AddObjectToObject(doc, "server_metrics") : NULL;
    ok = sm != NULL;
    if (ok) {
        ok = add_item(sm, "before", r->metrics_before ? cJSON_Duplicate(r->metrics_before, 1)
                                                      : cJSON_CreateNull());
        ok = ok && add_item(sm, "after", r->metrics_after ? cJSON_Duplicate(r->metrics_after, 1)
                                                          : cJSON_CreateNull());
        ok = ok && add_item(sm, "delta", r->metrics_before && r->metrics_after
                                             ? qload_prometheus_delta(r->metrics_before, r->metrics_after)
                                             : cJSON_CreateNull());
        ok = ok && add_item(sm, "error", r->metrics_error ? cJSON_CreateString(r->metrics_error)
                                                          : cJSON_CreateNull());
    }
    if (ok && r->rss) {
        cJSON *rs = cJSON_AddObjectToObject(doc, "server_rss");
        const int have = r->rss->samples > 0;
        ok = rs != NULL && add_num(rs, "pid", r->rss->pid);
        ok = ok && add_num_or_null(rs, "start_bytes", have, (double)r->rss->start_bytes);
        ok = ok && add_num_or_null(rs, "peak_bytes", have, (double)r->rss->peak_bytes);
        ok = ok && add_num_or_null(rs, "end_bytes", have, (double)r->rss->end_bytes);
        ok = ok && add_num(rs, "samples", (double)r->rss->samples);
        ok = ok && add_num(rs, "failed_samples", (double)r->rss->failures);
    } else if (ok) {
        ok = cJSON_AddNullToObject(doc, "server_rss") != NULL;
    }
    if (ok && r->records) {
        cJSON *arr = cJSON_AddArrayToObject(doc, "requests");
        ok = arr != NULL;
        for (size_t i = 0; ok && i < r->records->n; i++) {
            cJSON *e = record_json(&r->records->items[i]);
            ok = e && cJSON_AddItemToArray(arr, e);
            if (!ok)
                cJSON_Delete(e);
        }
    }
    if (!ok)
        return quarry_errorf(err, QUARRY_ENOMEM, "report: out of memory building JSON");
    return 0;
}
