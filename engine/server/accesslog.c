/*
 * accesslog.c - access log lines in text or JSON (see accesslog.h).
 */
#include "engine/server/accesslog.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/server/strbuf.h"

static void iso_time(char out[48], double t)
{
    const time_t sec = (time_t)t;
    struct tm tm;
    gmtime_r(&sec, &tm);
    int ms = (int)((t - (double)sec) * 1000.0);
    if (ms < 0 || ms > 999)
        ms = 0;
    const size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 48 - n, ".%03dZ", ms);
}

/* A client-supplied token for the text format: printable ASCII without
 * spaces or quotes kept, anything else as \xNN. */
static void text_token(struct srv_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p > 0x20 && *p < 0x7F && *p != '"' && *p != '\\')
            srv_buf_append(b, p, 1);
        else
            srv_buf_printf(b, "\\x%02x", *p);
    }
}

char *srv_accesslog_format(const struct srv_access_entry *e, enum srv_log_format fmt,
                           size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    char when[48];
    iso_time(when, e->time);
    const char *method = e->method ? e->method : "-";
    const char *path = e->path ? e->path : "-";
    if (fmt == SRV_LOG_JSON) {
        srv_buf_printf(&b, "{\"time\":\"%s\",\"remote\":", when);
        if (e->remote)
            srv_buf_json_string(&b, e->remote, strlen(e->remote));
        else
            srv_buf_puts(&b, "null");
        srv_buf_puts(&b, ",\"method\":");
        srv_buf_json_string(&b, method, strlen(method));
        srv_buf_puts(&b, ",\"path\":");
        srv_buf_json_string(&b, path, strlen(path));
        srv_buf_printf(&b, ",\"status\":%d,\"tenant\":", e->status);
        if (e->tenant)
            srv_buf_json_string(&b, e->tenant, strlen(e->tenant));
        else
            srv_buf_puts(&b, "null");
        if (e->prompt_tokens >= 0)
            srv_buf_printf(&b, ",\"prompt_tokens\":%ld,\"completion_tokens\":%ld",
                           e->prompt_tokens, e->completion_tokens < 0 ? 0 : e->completion_tokens);
        else
            srv_buf_puts(&b, ",\"prompt_tokens\":null,\"completion_tokens\":null");
        if (e->ttft_s >= 0)
            srv_buf_printf(&b, ",\"ttft_ms\":%.3f", e->ttft_s * 1e3);
        else
            srv_buf_puts(&b, ",\"ttft_ms\":null");
        srv_buf_printf(&b, ",\"duration_ms\":%.3f,\"finish\":", e->duration_s * 1e3);
        if (e->finish)
            srv_buf_json_string(&b, e->finish, strlen(e->finish));
        else
            srv_buf_puts(&b, "null");
        srv_buf_puts(&b, "}\n");
    } else {
        srv_buf_printf(&b, "%s ", when);
        text_token(&b, e->remote ? e->remote : "-");
        srv_buf_puts(&b, " \"");
        text_token(&b, method);
        srv_buf_puts(&b, " ");
        text_token(&b, path);
        srv_buf_printf(&b, "\" %d tenant=", e->status);
        text_token(&b, e->tenant ? e->tenant : "-");
        if (e->prompt_tokens >= 0)
            srv_buf_printf(&b, " prompt_tokens=%ld completion_tokens=%ld", e->prompt_tokens,
                           e->completion_tokens < 0 ? 0 : e->completion_tokens);
        else
            srv_buf_puts(&b, " prompt_tokens=- completion_tokens=-");
        if (e->ttft_s >= 0)
            srv_buf_printf(&b, " ttft_ms=%.3f", e->ttft_s * 1e3);
        else
            srv_buf_puts(&b, " ttft_ms=-");
        srv_buf_printf(&b, " duration_ms=%.3f finish=%s\n", e->duration_s * 1e3,
                       e->finish ? e->finish : "-");
    }
    return srv_buf_take(&b, len);
}

void srv_accesslog_write(FILE *out, const struct srv_access_entry *e, enum srv_log_format fmt)
{
    if (!out)
        return;
    size_t n = 0;
    char *line = srv_accesslog_format(e, fmt, &n);
    if (!line)
        return;
    fwrite(line, 1, n, out);
    fflush(out);
    free(line);
}
