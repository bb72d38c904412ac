/*
 * sse.h - an incremental parser for server-sent events (the text/event-stream
 * format of the HTML standard), fed with whatever pieces the network hands
 * over: a line or an event may be split across any number of pieces, and one
 * piece may hold many events.
 *
 * Follows the standard's parsing rules: lines end in CRLF, LF or CR (a CR at
 * the end of one piece followed by LF at the start of the next is one line
 * end); a leading UTF-8 byte order mark is skipped; lines starting with ':'
 * are comments; "field: value" (one space after the colon dropped), a line
 * with no colon is a field with an empty value; "data" lines are joined with
 * '\n'; "event" sets the type; "id", "retry" and unknown fields are ignored;
 * a blank line dispatches the event if any data line was seen. At the end of
 * the stream an unfinished event is not dispatched (the standard discards
 * it); qload_sse_finish() says whether there was one, so a caller can tell a
 * cut-off stream from a clean one.
 *
 * Memory is bounded: a line or an event's data longer than max_event_bytes
 * is an error (QUARRY_ERANGE), however the stream is cut into pieces, and
 * the parser stops accepting input.
 */
#ifndef QUARRY_LOADGEN_SSE_H
#define QUARRY_LOADGEN_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

/* Called for each dispatched event. event_type is "message" unless an
 * "event:" field set it; data is NUL-terminated (data[data_len] == 0) and
 * may contain '\n' between data lines. Return 0 to go on, non-zero to stop
 * parsing (qload_sse_feed then returns QLOAD_SSE_STOPPED). */
typedef int (*qload_sse_event_fn)(void *ctx, const char *event_type, const char *data,
                                  size_t data_len);

#define QLOAD_SSE_STOPPED 1
#define QLOAD_SSE_DEFAULT_MAX_EVENT ((size_t)1 << 20)

struct qload_sse {
    size_t max_event_bytes;
    char *line;                /* the current line's bytes seen so far */
    size_t line_len, line_cap;
    char *data;                /* the current event's data buffer (each line + '\n') */
    size_t data_len, data_cap;
    char event_type[64];       /* longer types are cut (and never match "message") */
    int have_event_type;
    int have_data;             /* a data field was seen since the last dispatch */
    int pending_fields;        /* some field line was seen since the last dispatch */
    int after_cr;              /* the last byte consumed was a CR ending a line */
    int bom_matched;           /* bytes of the BOM matched so far; 3 = done */
    int failed;                /* sticky QUARRY_ERANGE */
    uint64_t events, comments; /* counters: dispatched events, comment lines */
};

void qload_sse_init(struct qload_sse *p, size_t max_event_bytes);
void qload_sse_free(struct qload_sse *p);
/* Back to the start-of-stream state (buffers kept for reuse). */
void qload_sse_reset(struct qload_sse *p);

/* Parses the next piece. Returns 0, QLOAD_SSE_STOPPED when the callback asked
 * to stop (the rest of the piece is not parsed), QUARRY_ERANGE when a line or
 * event is too long, QUARRY_ENOMEM. After an error every call fails again. */
int qload_sse_feed(struct qload_sse *p, const char *buf, size_t len, qload_sse_event_fn fn,
                   void *ctx, quarry_error *err);

/* End of stream: 1 when an incomplete line or an undispatched event was left
 * (the stream was cut off mid-event), else 0. */
int qload_sse_finish(const struct qload_sse *p);

#endif
