/*
 * fuzz_sse.c - libFuzzer target for the SSE parser (loadgen/sse.h) and the
 * OpenAI chunk reader (loadgen/openai.h). The first byte of the input picks
 * how the rest is cut into pieces; the rest is parsed twice, in one piece
 * and in those pieces, with a small event limit so the limit paths run too.
 * Both parses must give the same events (type and data, byte for byte), the
 * same error and the same end-of-stream verdict; any difference traps. Every
 * event's data also goes through the chunk reader, so bad pointers there
 * show up under the sanitizers. Seeded from tests/fuzz/corpus/fuzz_sse.
 * Run: make fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/openai.h"
#include "loadgen/sse.h"

struct log {
    unsigned char *buf;  /* type NUL data-length data ... for every event */
    size_t len, cap;
    int oom;
};

static void put(struct log *l, const void *p, size_t n)
{
    if (l->oom)
        return;
    if (l->len + n > l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4096;
        while (ncap < l->len + n)
            ncap *= 2;
        unsigned char *nb = realloc(l->buf, ncap);
        if (!nb) {
            l->oom = 1;
            return;
        }
        l->buf = nb;
        l->cap = ncap;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

static int on_event(void *ctx, const char *type, const char *data, size_t len)
{
    struct log *l = ctx;
    put(l, type, strlen(type) + 1);
    put(l, &len, sizeof len);
    put(l, data, len);
    if (data[len] != '\0')
        __builtin_trap();
    struct qload_chunk ch;
    if (qload_openai_parse_chunk(data, len, &ch) == 0 && ch.output_bytes > len)
        __builtin_trap();
    return 0;
}

/* Parses data in pieces whose sizes come from the seed; returns the first error. */
static int parse(const uint8_t *data, size_t size, uint8_t seed, struct log *l, int *unfinished)
{
    struct qload_sse p;
    qload_sse_init(&p, 512);
    int rc = 0;
    size_t at = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (at < size && rc == 0) {
        size_t piece = size - at;
        if (seed != 0) {
            x = x * 1103515245u + 12345u;
            piece = 1 + (x >> 16) % (seed % 16 + 1);
            if (piece > size - at)
                piece = size - at;
        }
        rc = qload_sse_feed(&p, (const char *)data + at, piece, on_event, l, NULL);
        at += piece;
    }
    *unfinished = qload_sse_finish(&p);
    qload_sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t seed = data[0];
    data++;
    size--;
    struct log whole = {0}, pieces = {0};
    int unfinished_whole = 0, unfinished_pieces = 0;
    const int rc_whole = parse(data, size, 0, &whole, &unfinished_whole);
    const int rc_pieces = parse(data, size, seed ? seed : 1, &pieces, &unfinished_pieces);
    if (!whole.oom && !pieces.oom) {
        /* an over-long line may be caught in one mode and only as over-long
         * data in the other, but both must fail, after the same events */
        if ((rc_whole != 0) != (rc_pieces != 0))
            __builtin_trap();
        if (rc_whole == 0) {
            if (whole.len != pieces.len || memcmp(whole.buf, pieces.buf, whole.len) != 0)
                __builtin_trap();
            if (unfinished_whole != unfinished_pieces)
                __builtin_trap();
        }
    }
    free(whole.buf);
    free(pieces.buf);
    return 0;
}
