/*
 * strbuf.h - a growable byte buffer for building HTTP bodies, SSE events,
 * metrics text and log lines, with a JSON string writer.
 *
 * Allocation failure is sticky: after one failed append every later append
 * is a no-op and srv_buf_take() returns NULL, so a caller builds a whole body
 * and checks once at the end.
 *
 * srv_buf_json_string() writes a JSON string literal from arbitrary bytes:
 * quotes, backslashes and control characters are escaped (NUL as \u0000),
 * and bytes that are not valid UTF-8 (truncated or overlong sequences,
 * surrogates, values above U+10FFFF) become U+FFFD, so the output is always
 * valid JSON in valid UTF-8 whatever the model produced.
 */
#ifndef QUARRY_SERVER_STRBUF_H
#define QUARRY_SERVER_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct srv_buf {
    char *data;     /* NUL-terminated when not failed */
    size_t len, cap;
    bool failed;
};

void srv_buf_init(struct srv_buf *b);
void srv_buf_free(struct srv_buf *b);
void srv_buf_reset(struct srv_buf *b);   /* empty again (memory kept, failure cleared) */
void srv_buf_append(struct srv_buf *b, const void *s, size_t n);
void srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_json_string(struct srv_buf *b, const char *s, size_t n);
/* Hands the bytes over (caller frees; *len may be NULL); the buffer is empty
 * afterwards. NULL if an append failed (the buffer is then freed). */
char *srv_buf_take(struct srv_buf *b, size_t *len);

/* Length (1-4) of the valid UTF-8 sequence starting at s[0] (n bytes
 * available), or 0 when s[0] does not start one. */
size_t srv_utf8_seq_len(const unsigned char *s, size_t n);

#endif
