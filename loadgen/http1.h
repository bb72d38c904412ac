/*
 * http1.h - the little HTTP/1.1 that quarry-load's request engine speaks:
 * splitting an http:// URL, and an incremental response parser that is fed
 * whatever pieces the socket hands over.
 *
 * Why not libcurl: on a loaded 2-core machine a closed loop of tiny requests
 * is bounded by the client's own CPU, and libcurl spends about twice what
 * wrk spends per request (its own bookkeeping plus two poll() calls per
 * transfer). A load generator has to be cheaper than the server it drives,
 * so the request path is this parser plus plain send()/read() on an epoll
 * loop (loadgen/client.c): one write and one read per small request.
 *
 * The parser follows RFC 9112 for what a client must do with a response:
 *   - status line "HTTP/1.x NNN reason"; 1xx interim responses (except 101)
 *     are skipped; 101 is refused (no protocol switch);
 *   - header lines end in CRLF (a bare LF is accepted); only Content-Length,
 *     Transfer-Encoding and Connection are interpreted, the rest skipped;
 *   - the body: none for 1xx/204/304; chunked when the last transfer coding
 *     is "chunked" (extensions and trailers skipped); a Content-Length when
 *     given (conflicting or malformed lengths are an error); otherwise it
 *     runs until the server closes the connection;
 *   - keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
 *     "Connection: keep-alive"; never for a body delimited by close.
 * Memory is bounded: the head (status line, headers) and a chunk's trailer
 * section may not exceed QLOAD_HTTP_MAX_HEAD bytes. Only lines split across
 * pieces are copied; body bytes go to the caller's callback straight from
 * the piece.
 */
#ifndef QUARRY_LOADGEN_HTTP1_H
#define QUARRY_LOADGEN_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

#define QLOAD_URL_HOST_MAX 256
#define QLOAD_URL_TARGET_MAX 4096

/* An http:// URL split into what a request needs. */
struct qload_url {
    char host[QLOAD_URL_HOST_MAX];        /* name or address, IPv6 without brackets */
    char port[8];                         /* decimal, "80" when the URL gives none */
    char authority[QLOAD_URL_HOST_MAX + 16]; /* the Host header: host[:port] as in the URL */
    char target[QLOAD_URL_TARGET_MAX];    /* path and query, "/" when empty */
};

/* Splits "http://host[:port][/path][?query][#fragment]". Only plain http is
 * spoken (QUARRY_EUNSUPPORTED for https and others); user info, an empty
 * host, a bad port or an over-long part are QUARRY_EINVAL. */
int qload_url_parse(const char *url, struct qload_url *out, quarry_error *err);

#define QLOAD_HTTP_MAX_HEAD (64 * 1024)

/* qload_http_feed results (the errors are negative) */
#define QLOAD_HTTP_MORE 0     /* every byte taken, the response goes on */
#define QLOAD_HTTP_DONE 1     /* the response is complete */
#define QLOAD_HTTP_STOPPED 2  /* the body callback asked to stop */
#define QLOAD_HTTP_BAD (-100) /* malformed response (error says why) */

/* Receives body bytes (de-chunked). Return 0 to go on, non-zero to stop. */
typedef int (*qload_http_body_fn)(void *ctx, const char *data, size_t len);

struct qload_http_resp {
    /* what the head said (valid once head_done) */
    int status;              /* 0 until the status line was read */
    int version_minor;       /* HTTP/1.x */
    int head_done;           /* the final (non-1xx) head is complete */
    int keep_alive;          /* the connection may carry another request afterwards */
    int chunked;
    int64_t content_length;  /* -1 when absent */
    int close_delimited;     /* the body ends when the connection closes */
    /* progress */
    int state;
    uint64_t left;           /* bytes still to come of the body or the current chunk */
    uint64_t bytes_seen;     /* every byte fed so far */
    size_t head_bytes;       /* head (or trailer) bytes so far, against the limit */
    char *line;              /* a line split across pieces */
    size_t line_len, line_cap;
    int conn_close, conn_keep_alive, has_te;
    const char *error;       /* why QLOAD_HTTP_BAD (a static string) */
};

void qload_http_resp_init(struct qload_http_resp *r);
void qload_http_resp_free(struct qload_http_resp *r);
/* Ready for the next response (buffers kept). */
void qload_http_resp_reset(struct qload_http_resp *r);

/* Parses the next piece of the connection's input. Returns QLOAD_HTTP_MORE,
 * QLOAD_HTTP_DONE (*used = how many of the len bytes belonged to this
 * response; any more are not part of it), QLOAD_HTTP_STOPPED (the callback
 * returned non-zero; *used counts up to the end of that body piece),
 * QLOAD_HTTP_BAD, QUARRY_ERANGE (the head is over the limit) or
 * QUARRY_ENOMEM. After an error the parser must be reset. */
int qload_http_feed(struct qload_http_resp *r, const char *buf, size_t len, size_t *used,
                    qload_http_body_fn body, void *ctx);

/* The server closed the connection: returns QLOAD_HTTP_DONE when that ends
 * the response (a body delimited by close), else 0 (cut short). */
int qload_http_eof(struct qload_http_resp *r);

#endif
