/*
 * http1.c - http:// URLs and the incremental HTTP/1.1 response parser (see
 * http1.h).
 *
 * The parser is a small state machine over the response's parts. Lines
 * (status, headers, chunk sizes, the CRLF after a chunk, trailers) are
 * parsed in place when a piece holds the whole line and copied into
 * r->line only when a piece ends in the middle of one.
 */
#include "loadgen/http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- URLs ---- */

int qload_url_parse(const char *url, struct qload_url *out, quarry_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = strstr(url, "://");
    if (!p)
        return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': expected http://host[:port]/path", url);
    if ((size_t)(p - url) != 4 || strncasecmp(url, "http", 4) != 0)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "URL '%.200s': quarry-load speaks plain http:// only", url);
    p += 3;
    const size_t auth_len = strcspn(p, "/?#");
    const char *auth = p;
    const char *rest = p + auth_len;
    if (memchr(auth, '@', auth_len))
        return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': user names in URLs are not supported", url);
    if (auth_len == 0 || auth_len >= sizeof out->authority)
        return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': missing or over-long host", url);
    memcpy(out->authority, auth, auth_len);
    out->authority[auth_len] = '\0';

    const char *host = auth, *host_end, *port = NULL;
    if (auth[0] == '[') { /* IPv6 literal */
        const char *close = memchr(auth, ']', auth_len);
        if (!close || close == auth + 1)
            return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': bad IPv6 address", url);
        host = auth + 1;
        host_end = close;
        if (close + 1 < rest) {
            if (close[1] != ':')
                return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': bad host", url);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        host_end = colon ? colon : rest;
        if (colon)
            port = colon + 1;
    }
    const size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof out->host)
        return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': missing or over-long host", url);
    memcpy(out->host, host, host_len);
    if (port) {
        const size_t port_len = (size_t)(rest - port);
        long v = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9' || v > 65535) {
                v = -1;
                break;
            }
            v = v * 10 + (port[i] - '0');
        }
        if (port_len == 0 || v < 1 || v > 65535)
            return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': bad port", url);
        snprintf(out->port, sizeof out->port, "%ld", v);
    } else {
        snprintf(out->port, sizeof out->port, "80");
    }

    const size_t target_len = strcspn(rest, "#");
    if (target_len >= sizeof out->target - 1)
        return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': path longer than %d bytes", url,
                             QLOAD_URL_TARGET_MAX - 2);
    size_t n = 0;
    if (target_len == 0 || rest[0] == '?')
        out->target[n++] = '/';
    memcpy(out->target + n, rest, target_len);
    out->target[n + target_len] = '\0';
    for (const char *c = out->target; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return quarry_errorf(err, QUARRY_EINVAL, "URL '%.200s': spaces or control bytes in the path", url);
    return 0;
}

/* ---- responses ---- */

enum {
    S_STATUS,
    S_HEADERS,
    S_BODY_LENGTH,
    S_BODY_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_END,
    S_TRAILERS,
    S_DONE,
};

static void clear_head(struct qload_http_resp *r)
{
    r->status = 0;
    r->version_minor = 0;
    r->head_done = 0;
    r->keep_alive = 0;
    r->chunked = 0;
    r->content_length = -1;
    r->close_delimited = 0;
    r->conn_close = r->conn_keep_alive = r->has_te = 0;
    r->state = S_STATUS;
    r->left = 0;
    r->head_bytes = 0;
    r->line_len = 0;
}

void qload_http_resp_init(struct qload_http_resp *r)
{
    memset(r, 0, sizeof *r);
    clear_head(r);
}

void qload_http_resp_free(struct qload_http_resp *r)
{
    free(r->line);
    r->line = NULL;
    r->line_cap = r->line_len = 0;
}

void qload_http_resp_reset(struct qload_http_resp *r)
{
    clear_head(r);
    r->bytes_seen = 0;
    r->error = NULL;
}

static int bad(struct qload_http_resp *r, const char *why)
{
    r->error = why;
    return QLOAD_HTTP_BAD;
}

static int keep_partial(struct qload_http_resp *r, const char *data, size_t n)
{
    if (r->line_len + n > r->line_cap) {
        size_t ncap = r->line_cap ? r->line_cap : 256;
        while (ncap < r->line_len + n)
            ncap *= 2;
        char *nl = realloc(r->line, ncap);
        if (!nl)
            return QUARRY_ENOMEM;
        r->line = nl;
        r->line_cap = ncap;
    }
    memcpy(r->line + r->line_len, data, n);
    r->line_len += n;
    return 0;
}

/* Takes the next line of buf[*pos..len): 1 with *line and *n (line end
 * stripped) when it is complete, 0 when the piece ended first (the bytes
 * kept for later), or an error. Every byte counts against the head limit. */
static int next_line(struct qload_http_resp *r, const char *buf, size_t len, size_t *pos,
                     const char **line, size_t *n)
{
    const char *start = buf + *pos;
    const size_t avail = len - *pos;
    const char *nl = memchr(start, '\n', avail);
    const size_t take = nl ? (size_t)(nl - start) + 1 : avail;
    if (r->head_bytes + take > QLOAD_HTTP_MAX_HEAD) {
        r->error = "response head over the size limit";
        return QUARRY_ERANGE;
    }
    r->head_bytes += take;
    *pos += take;
    if (!nl)
        return keep_partial(r, start, take);
    if (r->line_len == 0) {
        *line = start;
        *n = take - 1;
    } else {
        const int rc = keep_partial(r, start, take - 1);
        if (rc != 0)
            return rc;
        *line = r->line;
        *n = r->line_len;
        r->line_len = 0; /* the bytes stay valid until the next partial line */
    }
    if (*n > 0 && (*line)[*n - 1] == '\r')
        (*n)--;
    return 1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_status(struct qload_http_resp *r, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' || !is_digit(s[9]) ||
        !is_digit(s[10]) || !is_digit(s[11]) || (n > 12 && s[12] != ' '))
        return bad(r, "malformed status line");
    r->version_minor = s[7] - '0';
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100)
        return bad(r, "malformed status line");
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Calls fn for each comma-separated token of a header value (trimmed). */
static void for_each_token(const char *v, size_t n, void (*fn)(struct qload_http_resp *, const char *, size_t, int),
                           struct qload_http_resp *r)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_space(v[a]))
            a++;
        while (b > a && is_space(v[b - 1]))
            b--;
        fn(r, v + a, b - a, j >= n);
        i = j + 1;
    }
}

static int token_is(const char *t, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(t, word, n) == 0;
}

static void connection_token(struct qload_http_resp *r, const char *t, size_t n, int last)
{
    (void)last;
    if (token_is(t, n, "close"))
        r->conn_close = 1;
    else if (token_is(t, n, "keep-alive"))
        r->conn_keep_alive = 1;
}

static void te_token(struct qload_http_resp *r, const char *t, size_t n, int last)
{
    if (last && n > 0)
        r->chunked = token_is(t, n, "chunked");
}

static int parse_header(struct qload_http_resp *r, const char *s, size_t n)
{
    if (is_space(s[0]))
        return 0; /* obsolete line folding: continues a header we do not read */
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return bad(r, "malformed header line");
    const size_t name_len = (size_t)(colon - s);
    for (size_t i = 0; i < name_len; i++)
        if (is_space(s[i]))
            return bad(r, "malformed header line");
    const char *v = colon + 1;
    size_t vn = n - name_len - 1;
    while (vn > 0 && is_space(*v)) {
        v++;
        vn--;
    }
    while (vn > 0 && is_space(v[vn - 1]))
        vn--;
    if (token_is(s, name_len, "content-length")) {
        /* digits, or a list of the same number repeated */
        int64_t value = -1;
        size_t i = 0;
        while (i < vn) {
            int64_t x = 0;
            size_t digits = 0;
            while (i < vn && is_digit(v[i])) {
                if (x > (INT64_MAX - 9) / 10)
                    return bad(r, "Content-Length too large");
                x = x * 10 + (v[i] - '0');
                i++;
                digits++;
            }
            while (i < vn && is_space(v[i]))
                i++;
            if (digits == 0 || (i < vn && v[i] != ',') || (value >= 0 && x != value))
                return bad(r, "malformed Content-Length");
            value = x;
            if (i < vn) {
                i++;
                while (i < vn && is_space(v[i]))
                    i++;
            }
        }
        if (value < 0 || (r->content_length >= 0 && r->content_length != value))
            return bad(r, "malformed or conflicting Content-Length");
        r->content_length = value;
    } else if (token_is(s, name_len, "transfer-encoding")) {
        r->has_te = 1;
        for_each_token(v, vn, te_token, r);
    } else if (token_is(s, name_len, "connection")) {
        for_each_token(v, vn, connection_token, r);
    }
    return 0;
}

/* The head is complete: decides how the body is delimited. */
static int end_of_head(struct qload_http_resp *r)
{
    if (r->status < 200) {
        if (r->status == 101)
            return bad(r, "the server switched protocols (101)");
        const uint64_t seen = r->bytes_seen;
        clear_head(r); /* an interim response: the real one follows */
        r->bytes_seen = seen;
        return 0;
    }
    r->head_done = 1;
    r->keep_alive = r->version_minor >= 1 ? !r->conn_close : r->conn_keep_alive && !r->conn_close;
    if (r->status == 204 || r->status == 304) {
        r->state = S_DONE;
    } else if (r->has_te) {
        if (r->content_length >= 0)
            r->keep_alive = 0; /* both framings: the connection cannot be trusted afterwards */
        if (r->chunked) {
            r->state = S_CHUNK_SIZE;
            r->head_bytes = 0;
        } else {
            r->close_delimited = 1;
            r->keep_alive = 0;
            r->state = S_BODY_CLOSE;
        }
    } else if (r->content_length >= 0) {
        r->left = (uint64_t)r->content_length;
        r->state = r->left > 0 ? S_BODY_LENGTH : S_DONE;
    } else {
        r->close_delimited = 1;
        r->keep_alive = 0;
        r->state = S_BODY_CLOSE;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_chunk_size(struct qload_http_resp *r, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && hex_value(s[i]) >= 0; i++) {
        if (i >= 15)
            return bad(r, "chunk size too large");
        size = size * 16 + (uint64_t)hex_value(s[i]);
    }
    if (i == 0)
        return bad(r, "malformed chunk size");
    while (i < n && is_space(s[i]))
        i++;
    if (i < n && s[i] != ';')
        return bad(r, "malformed chunk size");
    r->left = size;
    r->head_bytes = 0;
    r->state = size > 0 ? S_CHUNK_DATA : S_TRAILERS;
    return 0;
}

int qload_http_feed(struct qload_http_resp *r, const char *buf, size_t len, size_t *used,
                    qload_http_body_fn body, void *ctx)
{
    size_t pos = 0;
    int rc = 0;
    while (r->state != S_DONE && pos < len) {
        const char *line = NULL;
        size_t n = 0;
        switch (r->state) {
        case S_STATUS:
        case S_HEADERS:
        case S_CHUNK_SIZE:
        case S_CHUNK_END:
        case S_TRAILERS:
            rc = next_line(r, buf, len, &pos, &line, &n);
            if (rc <= 0)
                break;
            rc = 0;
            if (r->state == S_STATUS) {
                if (n == 0)
                    break; /* blank lines before a status line are ignored (RFC 9112 2.2) */
                rc = parse_status(r, line, n);
                if (rc == 0)
                    r->state = S_HEADERS;
            } else if (r->state == S_HEADERS) {
                rc = n == 0 ? end_of_head(r) : parse_header(r, line, n);
            } else if (r->state == S_CHUNK_SIZE) {
                rc = parse_chunk_size(r, line, n);
            } else if (r->state == S_CHUNK_END) {
                if (n != 0)
                    rc = bad(r, "chunk data not followed by CRLF");
                r->state = S_CHUNK_SIZE;
                r->head_bytes = 0;
            } else if (n == 0) { /* S_TRAILERS: a blank line ends them */
                r->state = S_DONE;
            }
            break;
        case S_BODY_LENGTH:
        case S_CHUNK_DATA:
        case S_BODY_CLOSE: {
            size_t take = len - pos;
            if (r->state != S_BODY_CLOSE && (uint64_t)take > r->left)
                take = (size_t)r->left;
            const char *data = buf + pos;
            pos += take;
            if (r->state != S_BODY_CLOSE) {
                r->left -= take;
                if (r->left == 0)
                    r->state = r->state == S_CHUNK_DATA ? S_CHUNK_END : S_DONE;
                if (r->state == S_CHUNK_END)
                    r->head_bytes = 0;
            }
            if (body && body(ctx, data, take) != 0)
                rc = QLOAD_HTTP_STOPPED;
            break;
        }
        default:
            rc = bad(r, "parser in a bad state");
            break;
        }
        if (rc != 0)
            break;
    }
    r->bytes_seen += pos;
    *used = pos;
    if (rc != 0)
        return rc;
    return r->state == S_DONE ? QLOAD_HTTP_DONE : QLOAD_HTTP_MORE;
}

int qload_http_eof(struct qload_http_resp *r)
{
    if (r->state == S_BODY_CLOSE)
        r->state = S_DONE;
    return r->state == S_DONE ? QLOAD_HTTP_DONE : 0;
}
