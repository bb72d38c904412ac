/*
 * sse.c - incremental server-sent-events parser (see sse.h for the rules).
 *
 * Bytes are scanned for CR and LF. A line that lies wholly inside the piece
 * being fed is processed in place; only the part of a line that straddles a
 * piece boundary is copied into p->line.
 */
#include "loadgen/sse.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

void qload_sse_init(struct qload_sse *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_event_bytes = max_event_bytes ? max_event_bytes : QLOAD_SSE_DEFAULT_MAX_EVENT;
}

void qload_sse_free(struct qload_sse *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_cap = p->data_cap = 0;
}

void qload_sse_reset(struct qload_sse *p)
{
    char *line = p->line, *data = p->data;
    const size_t line_cap = p->line_cap, data_cap = p->data_cap, max = p->max_event_bytes;
    memset(p, 0, sizeof *p);
    p->line = line;
    p->data = data;
    p->line_cap = line_cap;
    p->data_cap = data_cap;
    p->max_event_bytes = max;
}

/* Makes room for `need` bytes plus a NUL in *buf. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need + 1 <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need + 1)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return QUARRY_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int fail(struct qload_sse *p, int code, quarry_error *err, const char *what)
{
    p->failed = code;
    return quarry_errorf(err, code, "sse: %s", what);
}

static int dispatch(struct qload_sse *p, qload_sse_event_fn fn, void *ctx)
{
    const int had = p->have_data;
    p->pending_fields = 0;
    p->have_data = 0;
    if (!had) {
        p->have_event_type = 0;
        p->data_len = 0;
        return 0;
    }
    /* drop the '\n' after the last data line */
    size_t len = p->data_len;
    if (len > 0 && p->data[len - 1] == '\n')
        len--;
    p->data[len] = '\0';
    const char *type = p->have_event_type ? p->event_type : "message";
    p->events++;
    p->data_len = 0;
    p->have_event_type = 0;
    int stop = fn ? fn(ctx, type, p->data, len) : 0;
    return stop ? QLOAD_SSE_STOPPED : 0;
}

static int process_line(struct qload_sse *p, const char *line, size_t len, qload_sse_event_fn fn,
                        void *ctx, quarry_error *err)
{
    if (len == 0)
        return dispatch(p, fn, ctx);
    if (line[0] == ':') {
        p->comments++;
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t)(line + len - value);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    p->pending_fields = 1;
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (p->data_len + value_len + 1 > p->max_event_bytes)
            return fail(p, QUARRY_ERANGE, err, "event data longer than the limit");
        if (reserve(&p->data, &p->data_cap, p->data_len + value_len + 1) != 0)
            return fail(p, QUARRY_ENOMEM, err, "out of memory");
        memcpy(p->data + p->data_len, value, value_len);
        p->data_len += value_len;
        p->data[p->data_len++] = '\n';
        p->data[p->data_len] = '\0';
        p->have_data = 1;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < sizeof p->event_type - 1 ? value_len : sizeof p->event_type - 1;
        memcpy(p->event_type, value, n);
        p->event_type[n] = '\0';
        p->have_event_type = 1;
    }
    /* id, retry and unknown fields carry nothing quarry-load needs */
    return 0;
}

/* Appends to the partial line kept across pieces. */
static int append_line(struct qload_sse *p, const char *b, size_t n, quarry_error *err)
{
    if (n == 0)
        return 0;
    if (p->line_len + n > p->max_event_bytes)
        return fail(p, QUARRY_ERANGE, err, "line longer than the limit");
    if (reserve(&p->line, &p->line_cap, p->line_len + n) != 0)
        return fail(p, QUARRY_ENOMEM, err, "out of memory");
    memcpy(p->line + p->line_len, b, n);
    p->line_len += n;
    return 0;
}

/* Parses bytes known not to start with a BOM. */
static int feed_lines(struct qload_sse *p, const char *buf, size_t len, qload_sse_event_fn fn,
                      void *ctx, quarry_error *err)
{
    size_t i = 0;
    if (p->after_cr && len > 0) {
        if (buf[0] == '\n')
            i = 1; /* the LF of a CRLF split across pieces */
        p->after_cr = 0;
    }
    while (i < len) {
        /* find the next CR or LF */
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (j == len) {
            int rc = append_line(p, buf + i, len - i, err);
            return rc;
        }
        int rc;
        if (p->line_len > 0) {
            rc = append_line(p, buf + i, j - i, err);
            if (rc == 0) {
                const size_t n = p->line_len;
                p->line_len = 0;
                rc = process_line(p, p->line, n, fn, ctx, err);
            }
        } else if (j - i > p->max_event_bytes) {
            /* the same limit as for a line gathered across pieces, so the
             * verdict does not depend on how the stream was cut */
            rc = fail(p, QUARRY_ERANGE, err, "line longer than the limit");
        } else {
            rc = process_line(p, buf + i, j - i, fn, ctx, err);
        }
        /* consume the line end: CRLF, CR or LF */
        if (buf[j] == '\r') {
            if (j + 1 < len) {
                if (buf[j + 1] == '\n')
                    j++;
            } else {
                p->after_cr = 1;
            }
        }
        i = j + 1;
        if (rc != 0)
            return rc;
    }
    return 0;
}

int qload_sse_feed(struct qload_sse *p, const char *buf, size_t len, qload_sse_event_fn fn,
                   void *ctx, quarry_error *err)
{
    if (p->failed)
        return quarry_errorf(err, p->failed, "sse: parser stopped after an earlier error");
    size_t i = 0;
    while (p->bom_matched < 3 && i < len) {
        if ((unsigned char)buf[i] == utf8_bom[p->bom_matched]) {
            p->bom_matched++;
            i++;
            continue;
        }
        /* not a BOM after all: the bytes matched so far are ordinary input */
        const int matched = p->bom_matched;
        p->bom_matched = 3;
        if (matched > 0) {
            int rc = feed_lines(p, (const char *)utf8_bom, (size_t)matched, fn, ctx, err);
            if (rc != 0)
                return rc;
        }
    }
    if (i == len)
        return 0;
    return feed_lines(p, buf + i, len - i, fn, ctx, err);
}

int qload_sse_finish(const struct qload_sse *p)
{
    return p->line_len > 0 || p->pending_fields || (p->bom_matched > 0 && p->bom_matched < 3);
}
