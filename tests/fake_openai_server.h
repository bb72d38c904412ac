/*
 * fake_openai_server.h - a tiny OpenAI-compatible server for testing
 * quarry-load before (and independently of) the real `quarry serve`.
 *
 * libmicrohttpd on 127.0.0.1 at an ephemeral port, one poll thread plus a
 * ticker thread that releases stream chunks on time (suspend/resume, so an
 * idle stream costs nothing). Endpoints:
 *   GET  /health                 200 "ok" (after health_delay_us)
 *   GET  /metrics                Prometheus text with the server's counters
 *   POST /v1/completions         streamed completions ("stream": true)
 *   POST /v1/chat/completions    streamed chat completions
 * A stream is OpenAI-shaped: an initial chunk with no output (role / empty
 * text) sent at once, then n output chunks, the first first_token_ms after
 * the request and then one every token_ms, a chunk with finish_reason, a
 * usage chunk (prompt_tokens = words in the prompt, completion_tokens = n)
 * when stream_options.include_usage is set, and `data: [DONE]`.
 * Faults for testing error accounting, by POST arrival order (1-based):
 * every fail_every-th request gets HTTP 500, every truncate_every-th stream
 * ends cleanly without [DONE], every cut_every-th stream has its connection
 * cut after half its chunks.
 */
#ifndef QUARRY_TESTS_FAKE_OPENAI_SERVER_H
#define QUARRY_TESTS_FAKE_OPENAI_SERVER_H

#include <stdint.h>

struct fake_server_opts {
    unsigned first_token_ms;  /* delay before the first output chunk */
    unsigned token_ms;        /* delay between output chunks */
    int n_chunks;             /* output chunks per stream; 0: the request's max_tokens */
    int fail_every, truncate_every, cut_every; /* 0: never */
    unsigned health_delay_us; /* GET /health answers after this long (0: at once) */
};

#define FAKE_SERVER_MAX_KEYS 8

struct fake_server_counts {
    uint64_t posts;             /* POSTs to a completions endpoint */
    uint64_t health, metrics;   /* GETs */
    uint64_t http_errors;       /* 500s sent on purpose */
    uint64_t streams_completed; /* streams whose every byte was sent */
    uint64_t streams_dropped;   /* streams the client went away from */
    uint64_t chunks_sent;       /* output chunks produced */
    int n_keys;                 /* distinct Authorization headers seen (first 8) */
    char keys[FAKE_SERVER_MAX_KEYS][64];
    uint64_t key_posts[FAKE_SERVER_MAX_KEYS];
};

struct fake_server;

/* Starts the server; *port is the port it listens on (127.0.0.1).
 * Returns 0 or -1. */
int fake_server_start(const struct fake_server_opts *opts, struct fake_server **out, uint16_t *port);
void fake_server_stop(struct fake_server *s);
void fake_server_counts(struct fake_server *s, struct fake_server_counts *out);

#endif
