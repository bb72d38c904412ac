/*
 * fuzz_http1.c - libFuzzer target for quarry-load's HTTP/1.1 response parser
 * and URL parser (loadgen/http1.c), which read bytes from the network.
 *
 * The input's first byte picks how the rest is cut into pieces (the parser
 * must give the same verdict however a response arrives); the remainder is
 * fed as a stream of responses on one connection, each DONE restarting the
 * parser on the bytes left, then EOF. The same bytes, up to the first NUL,
 * also go through the URL parser. Checks: no sanitizer report, body bytes
 * never exceed the input, and feeding the bytes whole or cut into pieces gives
 * the same number of complete responses and the same body bytes. Run: make fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/http1.h"

struct body_count {
    size_t bytes;
};

static int count_body(void *ctx, const char *data, size_t len)
{
    (void)data;
    ((struct body_count *)ctx)->bytes += len;
    return 0;
}

/* Feeds data in pieces of at most step bytes; returns the number of complete
 * responses, or -1 on a parser error. */
static int feed_all(const uint8_t *data, size_t size, size_t step, size_t *body_bytes)
{
    struct qload_http_resp r;
    struct body_count bc = {0};
    int done = 0, rc = 0;
    qload_http_resp_init(&r);
    size_t pos = 0;
    while (pos < size) {
        size_t len = size - pos < step ? size - pos : step;
        size_t used = 0;
        rc = qload_http_feed(&r, (const char *)data + pos, len, &used, count_body, &bc);
        if (rc < 0)
            break;
        if (used > len)
            abort(); /* the parser claimed bytes it was not given */
        if (rc == QLOAD_HTTP_DONE) {
            done++;
            qload_http_resp_reset(&r);
            pos += used;
            if (used == 0 && len > 0)
                break; /* no progress: stop rather than loop */
        } else {
            pos += len;
        }
    }
    if (rc >= 0 && pos >= size && qload_http_eof(&r) == QLOAD_HTTP_DONE)
        done++;
    qload_http_resp_free(&r);
    if (bc.bytes > size)
        abort(); /* more body than input */
    *body_bytes = bc.bytes;
    return rc < 0 ? -1 : done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const size_t step = 1 + data[0] % 16;
    data++;
    size--;
    size_t body_whole = 0, body_cut = 0;
    const int whole = feed_all(data, size, size ? size : 1, &body_whole);
    const int cut = feed_all(data, size, step, &body_cut);
    if (whole != cut || body_whole != body_cut)
        abort(); /* the verdict depended on how the bytes were split */

    char url[512];
    size_t n = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, data, n);
    url[n] = 0;
    struct qload_url u;
    quarry_error err;
    if (qload_url_parse(url, &u, &err) == 0 && (!u.host[0] || !u.port[0] || !u.target[0]))
        abort(); /* an accepted URL always has these parts */
    return 0;
}
