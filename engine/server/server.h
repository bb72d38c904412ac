/*
 * server.h - `quarry serve`'s HTTP server: an OpenAI-compatible API over the
 * engine, with tenants, rate limits, metrics and a chat page.
 *
 * Routes:
 *   POST /v1/chat/completions, POST /v1/completions   generation (JSON or SSE)
 *   GET  /v1/models, /v1/models/{id}                  the loaded model
 *   GET  /health    200 {"status":"ok"}; 503 with a JSON body while loading or stopping
 *   GET  /metrics   Prometheus text (metrics.h)
 *   GET  /          the chat page (ui.h)
 * Errors are OpenAI-shaped JSON: 400 bad JSON or parameters, 401 missing or
 * invalid key, 404 unknown route or model, 405 wrong method, 413 body too
 * large, 429 rate limited (Retry-After), 500 generation failed, 503 loading,
 * overloaded (queue full) or shutting down. The access log records a client
 * that went away before its answer was complete with status 499.
 *
 * Life cycle: srv_server_start() binds and serves at once (/health answers
 * 503 "loading"); srv_server_set_engine() attaches a loaded model and starts
 * the scheduler (scheduler.h), after which completions are served;
 * srv_server_shutdown() stops accepting, lets running generations finish for
 * up to grace seconds, ends the rest with a final SSE error event and
 * `data: [DONE]`, waits for the last bytes to go out and stops the daemon.
 *
 * Threads: libmicrohttpd's one internal poll thread handles every
 * connection (parsing, auth, tokenizing, formatting); the scheduler thread
 * runs the model and hands text to connections, which are suspended while
 * they have nothing to send and resumed when text arrives. A client that
 * disconnects is noticed within one engine step (its socket is polled while
 * its connection is suspended) and its sequence slot is freed.
 */
#ifndef QUARRY_SERVER_SERVER_H
#define QUARRY_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/chat.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/server/accesslog.h"
#include "engine/server/auth.h"
#include "engine/server/scheduler.h"
#include "engine/tokenizer.h"

struct srv_options {
    const char *host;              /* address to bind (default "127.0.0.1") */
    uint16_t port;                 /* 0: an ephemeral port (see srv_server_port) */
    const struct srv_keys *keys;   /* NULL: no authentication; borrowed */
    size_t max_body;               /* request body limit in bytes (0: 1 MiB) */
    unsigned timeout_s;            /* idle / header / body timeout per connection (0: 30) */
    unsigned max_connections;      /* (0: 256) */
    double keepalive_s;            /* SSE comment after this long without output (0: 5) */
    double shutdown_flush_s;       /* at shutdown, how long to wait for the last bytes (0: 3) */
    const char *model_id;          /* the model's name in the API */
    enum srv_log_format log_format;
    FILE *log;                     /* access log, or NULL */
};

/* A loaded model, borrowed until srv_server_free. */
struct srv_engine {
    const quarry_model *model;
    const quarry_tokenizer *tok;
    quarry_context *ctx;           /* n_seq >= sched.n_slots */
    enum quarry_chat_template chat_template;
    struct srv_sched_params sched;
};

typedef struct srv_server srv_server;

int srv_server_start(const struct srv_options *o, srv_server **out, quarry_error *err);
/* The port it listens on. */
uint16_t srv_server_port(const srv_server *s);
/* Attaches the engine: completions are served from now on. */
int srv_server_set_engine(srv_server *s, const struct srv_engine *e, quarry_error *err);
/* Graceful stop (see above). Safe to call once; srv_server_free calls it if needed. */
void srv_server_shutdown(srv_server *s, double grace_s);
void srv_server_free(srv_server *s);

#endif
