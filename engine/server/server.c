/*
 * server.c - the HTTP side of `quarry serve` (see server.h): the
 * libmicrohttpd daemon, routing, authentication and rate limits, turning a
 * parsed request into a scheduler job, and streaming the job's text back.
 *
 * Each completion request has a `struct gen` shared by three owners, counted
 * by refs: the connection (until libmicrohttpd reports the request done), the
 * scheduler (until on_done) and, for streams, the response reader (until
 * libmicrohttpd frees the response). Its mutex guards the pending output and
 * the `suspended` flag, and libmicrohttpd's suspend/resume pattern is kept
 * exactly: the consumer (reader or access handler) suspends the connection
 * under the mutex when it has nothing to send; the producer (scheduler
 * thread) appends under the mutex and, if it finds the connection suspended,
 * clears the flag and resumes it after unlocking. Only the side that clears
 * the flag resumes, so each suspension is resumed exactly once.
 */
#include "engine/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/server/metrics.h"
#include "engine/server/ratelimit.h"
#include "engine/server/request.h"
#include "engine/server/response.h"
#include "engine/server/strbuf.h"
#include "engine/server/ui.h"

enum server_state { STATE_LOADING = 0, STATE_READY, STATE_STOPPING };

enum route {
    ROUTE_NONE = 0,
    ROUTE_UI,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_MODELS,
    ROUTE_MODEL,        /* /v1/models/{id} */
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
};

/* Metric label of each route (a closed set: unknown paths are "other"). */
static const char *const route_label[] = {"other",   "/",          "/health",
                                          "/metrics", "/v1/models", "/v1/models/{id}",
                                          "/v1/chat/completions", "/v1/completions"};

#define TENANT_NONE "-"
#define TENANT_OPEN "anonymous"
#define STATUS_CLIENT_GONE 499

struct gen;

struct srv_server {
    struct srv_options o;
    char *host, *model_id;             /* owned copies */
    struct MHD_Daemon *d;
    uint16_t port;
    srv_metrics *metrics;
    srv_limiter *limiter;
    atomic_int state;
    srv_sched *sched;
    struct srv_engine e;
    int32_t n_ctx;
    long long created;
    uint64_t salt;
    atomic_uint_fast64_t counter;      /* ids and default seeds */
    atomic_int open_requests;          /* requests libmicrohttpd has not finished */
    pthread_mutex_t mu;                /* guards gens */
    struct gen *gens;                  /* every live gen, for the shutdown sweep */
    bool shut_down;
};

/* A completion request's state, shared with the scheduler (see the top). */
struct gen {
    pthread_mutex_t mu;
    int refs;
    struct gen *prev, *next;           /* in srv->gens */
    srv_server *srv;
    struct MHD_Connection *conn;       /* NULL once libmicrohttpd is done with it */
    int fd;                            /* the connection's socket, polled while suspended */
    bool suspended;
    bool cancel;                       /* the client went away */
    bool stream, include_usage;
    char id[40];
    struct srv_response_meta meta;
    struct srv_buf out;                /* SSE bytes not yet handed to libmicrohttpd */
    size_t out_sent;
    struct srv_buf text;               /* non-streamed: the whole text */
    bool done;                         /* on_done ran */
    enum srv_job_end end;
    enum quarry_finish finish;
    char error[256];
    int32_t n_prompt, n_gen;
    double t_start, t_first, t_last_token, t_last_write;
    size_t tenant;                     /* index, valid when has_tenant */
    bool has_tenant;
    const char *tenant_name;
};

/* Per request (libmicrohttpd's con_cls). */
struct conn_req {
    srv_server *srv;
    enum route route;
    char method[16];
    char *path;
    struct srv_buf body;
    bool too_large;
    double t_start, t_wall;
    int status;
    const char *tenant_name;
    struct gen *g;
    bool waiting;                      /* non-streamed, suspended until the gen is done */
    char remote[64];
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static char *dup_cstr(const char *s)
{
    const size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ---- the shared generation state --------------------------------------------- */

static void gen_unref(struct gen *g)
{
    pthread_mutex_lock(&g->mu);
    const int left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left > 0)
        return;
    srv_server *srv = g->srv;
    pthread_mutex_lock(&srv->mu);
    if (g->prev)
        g->prev->next = g->next;
    else
        srv->gens = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pthread_mutex_unlock(&srv->mu);
    srv_buf_free(&g->out);
    srv_buf_free(&g->text);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static struct gen *gen_new(srv_server *srv, struct MHD_Connection *c)
{
    struct gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->refs = 1;
    g->srv = srv;
    g->conn = c;
    g->fd = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        g->fd = ci->connect_fd;
    srv_buf_init(&g->out);
    srv_buf_init(&g->text);
    pthread_mutex_lock(&srv->mu);
    g->next = srv->gens;
    if (srv->gens)
        srv->gens->prev = g;
    srv->gens = g;
    pthread_mutex_unlock(&srv->mu);
    return g;
}

/* Under g->mu: the caller must resume the connection after unlocking when
 * this returns true. */
static bool take_resume(struct gen *g)
{
    if (!g->suspended)
        return false;
    g->suspended = false;
    return g->conn != NULL;
}

/* Appends an SSE event (or comment) to the pending output. Under g->mu. */
static void push_sse(struct gen *g, char *event, size_t len)
{
    if (!event)
        return; /* out of memory: the event is lost; the stream still ends */
    srv_buf_append(&g->out, event, len);
    free(event);
}

static const char *finish_reason(enum quarry_finish f)
{
    return f == QUARRY_FINISH_LENGTH ? "length" : "stop";
}

/* ---- scheduler callbacks (scheduler thread) ---------------------------------- */

static void job_on_start(void *user, double queue_wait_s)
{
    struct gen *g = user;
    srv_metrics_observe(g->srv->metrics, SRV_HIST_QUEUE_WAIT, queue_wait_s);
}

static int job_on_piece(void *user, const struct quarry_gen_piece *piece)
{
    struct gen *g = user;
    const double now = mono_now();
    pthread_mutex_lock(&g->mu);
    if (g->cancel) {
        pthread_mutex_unlock(&g->mu);
        return 1;
    }
    if (piece->token != QUARRY_TOKEN_NULL) {
        if (g->n_gen == 0) {
            g->t_first = now;
            srv_metrics_observe(g->srv->metrics, SRV_HIST_TTFT, now - g->t_start);
        } else {
            srv_metrics_observe(g->srv->metrics, SRV_HIST_ITL, now - g->t_last_token);
        }
        g->t_last_token = now;
        g->n_gen++;
    }
    bool resume = false;
    if (piece->len > 0) {
        if (g->stream) {
            size_t n = 0;
            char *ev = srv_chunk_sse(&g->meta, piece->text, piece->len, NULL, false, &n);
            push_sse(g, ev, n);
            resume = take_resume(g);
        } else {
            srv_buf_append(&g->text, piece->text, piece->len);
        }
    }
    struct MHD_Connection *c = g->conn;
    pthread_mutex_unlock(&g->mu);
    if (resume)
        MHD_resume_connection(c);
    return 0;
}

static void job_on_done(void *user, const struct srv_job_result *r)
{
    struct gen *g = user;
    srv_server *srv = g->srv;
    const double now = mono_now();
    pthread_mutex_lock(&g->mu);
    g->done = true;
    g->end = r->end;
    g->finish = r->finish;
    g->n_prompt = r->n_prompt;
    g->n_gen = r->n_gen;
    if (r->error)
        snprintf(g->error, sizeof g->error, "%s", r->error);
    if (g->stream) {
        size_t n = 0;
        if (r->end == SRV_JOB_FINISHED) {
            char *ev = srv_chunk_sse(&g->meta, "", 0, finish_reason(r->finish), false, &n);
            push_sse(g, ev, n);
            if (g->include_usage) {
                const struct srv_usage u = {r->n_prompt, r->n_gen};
                ev = srv_usage_sse(&g->meta, &u, &n);
                push_sse(g, ev, n);
            }
            srv_buf_puts(&g->out, SRV_SSE_DONE);
        } else if (r->end == SRV_JOB_SHUTDOWN || r->end == SRV_JOB_FAILED) {
            const bool shutdown = r->end == SRV_JOB_SHUTDOWN;
            char *ev = srv_error_sse(shutdown ? "the server is shutting down" : g->error,
                                     "server_error",
                                     shutdown ? "shutting_down" : "generation_failed", &n);
            push_sse(g, ev, n);
            srv_buf_puts(&g->out, SRV_SSE_DONE);
        }
    }
    const bool resume = take_resume(g);
    struct MHD_Connection *c = g->conn;
    pthread_mutex_unlock(&g->mu);

    srv_metrics_observe(srv->metrics, SRV_HIST_DURATION, now - g->t_start);
    srv_metrics_count_tokens(srv->metrics, g->tenant_name, r->n_prompt, r->n_gen);
    if (r->end == SRV_JOB_CANCELLED)
        srv_metrics_count_cancelled(srv->metrics, "disconnect");
    else if (r->end == SRV_JOB_SHUTDOWN)
        srv_metrics_count_cancelled(srv->metrics, "shutdown");
    if (g->has_tenant)
        srv_limiter_release(srv->limiter, g->tenant, r->n_gen, now);
    if (resume)
        MHD_resume_connection(c);
    gen_unref(g); /* the scheduler's reference */
}

/* true once the client has closed its end of a suspended connection. */
static bool socket_hung_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static bool job_cancelled(void *user)
{
    struct gen *g = user;
    pthread_mutex_lock(&g->mu);
    /* while suspended libmicrohttpd does not look at the socket: we do */
    if (!g->cancel && g->suspended && g->fd >= 0 && socket_hung_up(g->fd))
        g->cancel = true;
    const bool c = g->cancel;
    pthread_mutex_unlock(&g->mu);
    return c;
}

static void job_tick(void *user, double now)
{
    struct gen *g = user;
    pthread_mutex_lock(&g->mu);
    bool resume = false;
    if (g->stream && !g->done && now - g->t_last_write >= g->srv->o.keepalive_s) {
        srv_buf_puts(&g->out, SRV_SSE_KEEPALIVE);
        g->t_last_write = now;
        resume = take_resume(g);
    }
    struct MHD_Connection *c = g->conn;
    pthread_mutex_unlock(&g->mu);
    if (resume)
        MHD_resume_connection(c);
}

static const struct srv_job_ops job_ops = {
    .on_start = job_on_start,
    .on_piece = job_on_piece,
    .on_done = job_on_done,
    .cancelled = job_cancelled,
    .tick = job_tick,
};

/* ---- SSE response (libmicrohttpd thread) ------------------------------------- */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct gen *g = cls;
    pthread_mutex_lock(&g->mu);
    if (g->out_sent < g->out.len) {
        size_t n = g->out.len - g->out_sent;
        if (n > max)
            n = max;
        memcpy(buf, g->out.data + g->out_sent, n);
        g->out_sent += n;
        if (g->out_sent == g->out.len) {
            srv_buf_reset(&g->out);
            g->out_sent = 0;
        }
        g->t_last_write = mono_now();
        pthread_mutex_unlock(&g->mu);
        return (ssize_t)n;
    }
    if (g->done || g->cancel || !g->conn) {
        pthread_mutex_unlock(&g->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    g->suspended = true;
    MHD_suspend_connection(g->conn);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void sse_free(void *cls)
{
    gen_unref(cls); /* the reader's reference */
}

/* ---- plain responses ---------------------------------------------------------- */

/* Queues body (malloc'd, taken over; NULL: a fixed out-of-memory body). */
static enum MHD_Result send_body(struct conn_req *r, struct MHD_Connection *c, int status,
                                 const char *content_type, char *body, size_t len,
                                 const char *extra_name, const char *extra_value)
{
    struct MHD_Response *resp;
    if (body) {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    } else {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}\n";
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        content_type = "application/json";
        resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    r->status = status;
    const enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct conn_req *r, struct MHD_Connection *c, int status,
                                  const char *type, const char *code, const char *param,
                                  const char *extra_name, const char *extra_value,
                                  const char *fmt, ...) __attribute__((format(printf, 9, 10)));

static enum MHD_Result send_error(struct conn_req *r, struct MHD_Connection *c, int status,
                                  const char *type, const char *code, const char *param,
                                  const char *extra_name, const char *extra_value,
                                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = 0;
    char *body = srv_error_json(msg, type, (param && param[0]) ? param : NULL, code, &n);
    return send_body(r, c, status, "application/json", body, n, extra_name, extra_value);
}

static enum MHD_Result send_unavailable(struct conn_req *r, struct MHD_Connection *c)
{
    const int st = atomic_load(&r->srv->state);
    if (st == STATE_LOADING)
        return send_error(r, c, 503, "server_error", "model_loading", NULL, "Retry-After", "1",
                          "the model is still loading");
    return send_error(r, c, 503, "server_error", "shutting_down", NULL, NULL, NULL,
                      "the server is shutting down");
}

/* ---- routes --------------------------------------------------------------------- */

static enum route find_route(const char *url, const char **model_id)
{
    if (strcmp(url, "/") == 0)
        return ROUTE_UI;
    if (strcmp(url, "/health") == 0)
        return ROUTE_HEALTH;
    if (strcmp(url, "/metrics") == 0)
        return ROUTE_METRICS;
    if (strcmp(url, "/v1/models") == 0)
        return ROUTE_MODELS;
    if (strncmp(url, "/v1/models/", 11) == 0 && url[11]) {
        *model_id = url + 11;
        return ROUTE_MODEL;
    }
    if (strcmp(url, "/v1/chat/completions") == 0)
        return ROUTE_CHAT;
    if (strcmp(url, "/v1/completions") == 0)
        return ROUTE_COMPLETIONS;
    return ROUTE_NONE;
}

static bool route_is_post(enum route rt)
{
    return rt == ROUTE_CHAT || rt == ROUTE_COMPLETIONS;
}

static bool route_needs_key(enum route rt)
{
    return rt == ROUTE_MODELS || rt == ROUTE_MODEL || route_is_post(rt);
}

static enum MHD_Result serve_health(struct conn_req *r, struct MHD_Connection *c)
{
    const int st = atomic_load(&r->srv->state);
    if (st == STATE_READY) {
        char *b = dup_cstr("{\"status\":\"ok\"}\n");
        return send_body(r, c, 200, "application/json", b, b ? strlen(b) : 0, NULL, NULL);
    }
    const bool loading = st == STATE_LOADING;
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b,
                   "{\"status\":\"%s\",\"error\":{\"message\":\"%s\",\"type\":\"server_error\","
                   "\"param\":null,\"code\":\"%s\"}}\n",
                   loading ? "loading" : "shutting_down",
                   loading ? "the model is still loading" : "the server is shutting down",
                   loading ? "model_loading" : "shutting_down");
    size_t n = 0;
    char *body = srv_buf_take(&b, &n);
    return send_body(r, c, 503, "application/json", body, n, loading ? "Retry-After" : NULL,
                     "1");
}

static enum MHD_Result serve_metrics(struct conn_req *r, struct MHD_Connection *c)
{
    srv_server *srv = r->srv;
    struct srv_gauges gauges = {0};
    if (atomic_load(&srv->state) != STATE_LOADING && srv->sched) {
        struct srv_sched_snapshot snap;
        srv_sched_snapshot(srv->sched, &snap);
        gauges.active_sequences = snap.active;
        gauges.queued_requests = snap.queued;
        gauges.sequence_slots = snap.n_slots;
        gauges.kv_cells_used = snap.kv_cells_used;
        gauges.kv_cells_total = snap.kv_cells_total;
        gauges.model_loaded = 1;
    }
    size_t n = 0;
    char *body = srv_metrics_render(srv->metrics, &gauges, &n);
    return send_body(r, c, 200, "text/plain; version=0.0.4; charset=utf-8", body, n, NULL, NULL);
}

static enum MHD_Result serve_models(struct conn_req *r, struct MHD_Connection *c,
                                    const char *want)
{
    srv_server *srv = r->srv;
    if (atomic_load(&srv->state) == STATE_LOADING)
        return send_unavailable(r, c);
    if (want && strcmp(want, srv->model_id) != 0)
        return send_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                          NULL, "the model '%.200s' does not exist", want);
    size_t n = 0;
    char *body = srv_models_json(srv->model_id, srv->created, srv->n_ctx, want != NULL, &n);
    return send_body(r, c, 200, "application/json", body, n, NULL, NULL);
}

/* ---- completions ------------------------------------------------------------------ */

/* Tokenizes text into a malloc'd array, BOS/EOS added as the model asks. */
static int tokenize_all(const quarry_tokenizer *tok, const char *text, size_t len,
                        bool parse_special, int32_t **out, size_t *n, quarry_error *err)
{
    size_t cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
    int rc = quarry_tokenize(tok, text, len, true, parse_special, ids, cap, n, err);
    if (rc == QUARRY_ERANGE) {
        cap = *n;
        int32_t *more = realloc(ids, cap * sizeof *ids);
        if (!more) {
            free(ids);
            return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
        }
        ids = more;
        rc = quarry_tokenize(tok, text, len, true, parse_special, ids, cap, n, err);
    }
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    return 0;
}

/* The prompt's token ids: chat messages through the template, or the text. */
static int build_prompt(srv_server *srv, const struct srv_request *req, int32_t **ids,
                        size_t *n, quarry_error *err)
{
    if (req->prompt_ids) {
        *ids = malloc(req->n_prompt_ids * sizeof **ids);
        if (!*ids)
            return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
        memcpy(*ids, req->prompt_ids, req->n_prompt_ids * sizeof **ids);
        *n = req->n_prompt_ids;
        return 0;
    }
    if (req->endpoint == SRV_EP_COMPLETIONS)
        return tokenize_all(srv->e.tok, req->prompt, req->prompt_len, false, ids, n, err);
    struct quarry_chat_message *msgs = malloc(req->n_messages * sizeof *msgs);
    if (!msgs)
        return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_messages; i++)
        msgs[i] = (struct quarry_chat_message){req->messages[i].role, req->messages[i].content};
    char *text = NULL;
    size_t len = 0;
    int rc = quarry_chat_render(srv->e.chat_template, msgs, req->n_messages, true, &text, &len,
                                err);
    free(msgs);
    if (rc)
        return rc;
    /* templates write control tokens ("<|im_start|>") as text */
    rc = tokenize_all(srv->e.tok, text, len, true, ids, n, err);
    free(text);
    return rc;
}

static void fill_gen_params(srv_server *srv, const struct srv_request *req,
                            struct quarry_gen_params *gp, struct quarry_logit_bias *bias)
{
    quarry_gen_params_default(gp);
    struct quarry_sampler_params *sp = &gp->sampling;
    sp->temperature = req->temperature;
    sp->top_k = req->top_k;
    sp->top_p = req->top_p;
    sp->min_p = req->min_p;
    sp->presence_penalty = req->presence_penalty;
    sp->frequency_penalty = req->frequency_penalty;
    sp->repeat_penalty = 1.0f;
    /* OpenAI's penalties look at everything so far */
    sp->penalty_last_n =
        (req->presence_penalty != 0 || req->frequency_penalty != 0) ? srv->n_ctx : 0;
    sp->seed = req->has_seed ? req->seed
                             : mix64(srv->salt ^ mix64(atomic_fetch_add(&srv->counter, 1)) ^
                                     (uint64_t)(mono_now() * 1e9));
    gp->max_tokens = req->max_tokens;
    gp->stops = (const char *const *)req->stops;
    gp->n_stops = req->n_stops;
    for (size_t i = 0; i < req->n_logit_bias; i++)
        bias[i] = (struct quarry_logit_bias){req->logit_bias[i].token, req->logit_bias[i].bias};
    gp->logit_bias = bias;
    gp->n_logit_bias = req->n_logit_bias;
}

static enum MHD_Result finish_completion(struct conn_req *r, struct MHD_Connection *c);

/* Starts a completion for a parsed, admitted request. Returns the response. */
static enum MHD_Result start_completion(struct conn_req *r, struct MHD_Connection *c,
                                        const struct srv_request *req, const int32_t *ids,
                                        size_t n_ids, bool has_tenant, size_t tenant)
{
    srv_server *srv = r->srv;
    struct gen *g = gen_new(srv, c);
    if (!g) {
        if (has_tenant)
            srv_limiter_release(srv->limiter, tenant, 0, mono_now());
        return send_body(r, c, 500, NULL, NULL, 0, NULL, NULL);
    }
    g->stream = req->stream;
    g->include_usage = req->stream && req->include_usage;
    g->t_start = r->t_start;
    g->t_last_write = mono_now();
    g->has_tenant = has_tenant;
    g->tenant = tenant;
    g->tenant_name = r->tenant_name;
    g->n_prompt = (int32_t)n_ids;
    snprintf(g->id, sizeof g->id, "%s%016llx%08llx",
             req->endpoint == SRV_EP_CHAT ? "chatcmpl-" : "cmpl-",
             (unsigned long long)mix64(srv->salt + atomic_fetch_add(&srv->counter, 1)),
             (unsigned long long)(srv->salt & 0xffffffffu));
    g->meta = (struct srv_response_meta){.endpoint = req->endpoint, .id = g->id,
                                         .created = (long long)time(NULL),
                                         .model = srv->model_id,
                                         .usage_field = g->include_usage};
    if (g->stream && req->endpoint == SRV_EP_CHAT) {
        /* a chat stream opens with the role; queued before the job exists, as
         * the job may run to its end before this thread goes on */
        size_t n = 0;
        char *ev = srv_chunk_sse(&g->meta, "", 0, NULL, true, &n);
        push_sse(g, ev, n);
    }
    struct quarry_logit_bias *bias = malloc((req->n_logit_bias ? req->n_logit_bias : 1) *
                                            sizeof *bias);
    enum srv_submit_result sr = SRV_SUBMIT_NOMEM;
    if (bias) {
        struct srv_job_spec spec = {.prompt = ids, .n_prompt = (int32_t)n_ids};
        fill_gen_params(srv, req, &spec.gen, bias);
        pthread_mutex_lock(&g->mu);
        g->refs++; /* the scheduler's, if it takes the job */
        pthread_mutex_unlock(&g->mu);
        sr = srv_sched_submit(srv->sched, &spec, &job_ops, g);
        if (sr != SRV_SUBMIT_OK) {
            pthread_mutex_lock(&g->mu);
            g->refs--;
            pthread_mutex_unlock(&g->mu);
        }
        free(bias);
    }
    if (sr != SRV_SUBMIT_OK) {
        gen_unref(g);
        if (has_tenant)
            srv_limiter_release(srv->limiter, tenant, 0, mono_now());
        if (sr == SRV_SUBMIT_QUEUE_FULL)
            return send_error(r, c, 503, "server_error", "overloaded", NULL, "Retry-After", "1",
                              "the server is busy: every sequence slot is taken and the queue "
                              "is full");
        if (sr == SRV_SUBMIT_STOPPING)
            return send_unavailable(r, c);
        return send_body(r, c, 500, NULL, NULL, 0, NULL, NULL);
    }
    r->g = g; /* the connection's reference from now on */
    if (!g->stream) {
        r->waiting = true;
        return finish_completion(r, c); /* suspends until the generation ends */
    }
    /* a stream: headers now, chunks as they come */
    pthread_mutex_lock(&g->mu);
    g->refs++; /* the reader's */
    pthread_mutex_unlock(&g->mu);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_reader, g, sse_free);
    if (!resp) {
        pthread_mutex_lock(&g->mu);
        g->cancel = true; /* the scheduler drops the job at its next step */
        pthread_mutex_unlock(&g->mu);
        gen_unref(g);     /* the reader's reference: there is no reader */
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->status = 200;
    const enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The answer of a non-streamed completion once its generation ended. */
static enum MHD_Result finish_completion(struct conn_req *r, struct MHD_Connection *c)
{
    struct gen *g = r->g;
    pthread_mutex_lock(&g->mu);
    if (!g->done) {
        g->suspended = true; /* not ours to answer yet */
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&g->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&g->mu);
    switch (g->end) {
    case SRV_JOB_FINISHED: {
        const struct srv_usage u = {g->n_prompt, g->n_gen};
        size_t n = 0;
        char *body = srv_completion_json(&g->meta, g->text.data ? g->text.data : "", g->text.len,
                                         finish_reason(g->finish), &u, &n);
        return send_body(r, c, 200, "application/json", body, n, NULL, NULL);
    }
    case SRV_JOB_SHUTDOWN:
        return send_unavailable(r, c);
    case SRV_JOB_CANCELLED:
        r->status = STATUS_CLIENT_GONE;
        return MHD_NO; /* nobody is listening: close */
    case SRV_JOB_FAILED:
        break;
    }
    return send_error(r, c, 500, "server_error", "generation_failed", NULL, NULL, NULL,
                      "generation failed: %s", g->error);
}

static enum MHD_Result serve_completion(struct conn_req *r, struct MHD_Connection *c,
                                        bool has_tenant, size_t tenant)
{
    srv_server *srv = r->srv;
    if (atomic_load(&srv->state) != STATE_READY)
        return send_unavailable(r, c);
    const enum srv_endpoint ep = r->route == ROUTE_CHAT ? SRV_EP_CHAT : SRV_EP_COMPLETIONS;
    const struct srv_request_limits lim = {.n_vocab = srv->e.model->hp.n_vocab};
    struct srv_request req;
    struct srv_request_error perr;
    const int prc = srv_request_parse(ep, r->body.data, r->body.len, &lim, &req, &perr);
    if (prc == -2)
        return send_body(r, c, 500, NULL, NULL, 0, NULL, NULL);
    if (prc)
        return send_error(r, c, 400, "invalid_request_error", perr.code, perr.param, NULL, NULL,
                          "%s", perr.message);
    enum MHD_Result ret;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    quarry_error err = {0};
    if (req.model && strcmp(req.model, srv->model_id) != 0) {
        ret = send_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                         NULL, "the model '%.200s' does not exist (this server has '%.200s')",
                         req.model, srv->model_id);
        goto done;
    }
    int rc = build_prompt(srv, &req, &ids, &n_ids, &err);
    if (rc == QUARRY_ENOMEM) {
        ret = send_body(r, c, 500, NULL, NULL, 0, NULL, NULL);
        goto done;
    }
    if (rc) {
        ret = send_error(r, c, 400, "invalid_request_error", "invalid_value",
                         ep == SRV_EP_CHAT ? "messages" : "prompt", NULL, NULL, "%s", err.msg);
        goto done;
    }
    if (n_ids == 0) {
        ret = send_error(r, c, 400, "invalid_request_error", "invalid_value",
                         ep == SRV_EP_CHAT ? "messages" : "prompt", NULL, NULL,
                         "the prompt is empty");
        goto done;
    }
    if (n_ids >= (size_t)srv->n_ctx) {
        ret = send_error(r, c, 400, "invalid_request_error", "context_length_exceeded",
                         ep == SRV_EP_CHAT ? "messages" : "prompt", NULL, NULL,
                         "the prompt has %zu tokens; the context holds %d, with room for at "
                         "least one generated token",
                         n_ids, srv->n_ctx);
        goto done;
    }
    unsigned retry = 0;
    const enum srv_limit lim_hit =
        has_tenant ? srv_limiter_admit(srv->limiter, tenant, (int32_t)n_ids, mono_now(), &retry)
                   : SRV_LIMIT_NONE;
    if (lim_hit != SRV_LIMIT_NONE) {
        srv_metrics_count_rate_limited(srv->metrics, r->tenant_name, srv_limit_name(lim_hit));
        char ra[16];
        snprintf(ra, sizeof ra, "%u", retry);
        ret = send_error(r, c, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                         "Retry-After", ra,
                         "rate limit reached for tenant '%s' (%s); retry after %u s",
                         r->tenant_name, srv_limit_name(lim_hit), retry);
        goto done;
    }
    ret = start_completion(r, c, &req, ids, n_ids, has_tenant, tenant);
done:
    free(ids);
    srv_request_free(&req);
    return ret;
}

/* ---- the access handler ------------------------------------------------------------ */

static enum MHD_Result dispatch(struct conn_req *r, struct MHD_Connection *c, const char *url)
{
    srv_server *srv = r->srv;
    const char *model_want = NULL;
    find_route(url, &model_want);
    const bool is_get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    const bool is_post = strcmp(r->method, "POST") == 0;
    if (r->route == ROUTE_NONE)
        return send_error(r, c, 404, "invalid_request_error", "not_found", NULL, NULL, NULL,
                          "no route %.16s %.200s", r->method, url);
    if (route_is_post(r->route) ? !is_post : !is_get)
        return send_error(r, c, 405, "invalid_request_error", "method_not_allowed", NULL,
                          MHD_HTTP_HEADER_ALLOW, route_is_post(r->route) ? "POST" : "GET, HEAD",
                          "%.16s is not allowed on %.200s", r->method, url);
    bool has_tenant = false;
    size_t tenant = 0;
    if (route_needs_key(r->route)) {
        if (srv->o.keys) {
            const char *auth =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
            const enum srv_auth_result ar = srv_auth_check(srv->o.keys, auth, &tenant);
            if (ar != SRV_AUTH_OK)
                return send_error(
                    r, c, 401, "invalid_request_error",
                    ar == SRV_AUTH_INVALID ? "invalid_api_key" : "missing_api_key", NULL,
                    "WWW-Authenticate", "Bearer",
                    ar == SRV_AUTH_MISSING
                        ? "no API key: send the header 'Authorization: Bearer YOUR_KEY'"
                    : ar == SRV_AUTH_MALFORMED
                        ? "malformed Authorization header: expected 'Bearer YOUR_KEY'"
                        : "invalid API key");
            has_tenant = true;
            r->tenant_name = srv->o.keys->tenants[tenant].name;
        } else {
            r->tenant_name = TENANT_OPEN;
        }
    }
    if (r->too_large)
        return send_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                          NULL, "the request body is larger than %zu bytes", srv->o.max_body);
    switch (r->route) {
    case ROUTE_UI: {
        size_t n = 0;
        const char *page = srv_ui_page(&n);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(n, (void *)page, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
        r->status = 200;
        const enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    case ROUTE_HEALTH:
        return serve_health(r, c);
    case ROUTE_METRICS:
        return serve_metrics(r, c);
    case ROUTE_MODELS:
        return serve_models(r, c, NULL);
    case ROUTE_MODEL:
        return serve_models(r, c, model_want);
    case ROUTE_CHAT:
    case ROUTE_COMPLETIONS:
        return serve_completion(r, c, has_tenant, tenant);
    case ROUTE_NONE:
        break;
    }
    return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    srv_server *srv = cls;
    struct conn_req *r = *con_cls;
    if (!r) {
        /* first call: headers are in */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = srv;
        r->t_start = mono_now();
        r->t_wall = wall_now();
        r->tenant_name = TENANT_NONE;
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = dup_cstr(url);
        srv_buf_init(&r->body);
        const char *unused;
        r->route = find_route(url, &unused);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                          r->remote, sizeof r->remote);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          r->remote, sizeof r->remote);
        }
        *con_cls = r;
        atomic_fetch_add(&srv->open_requests, 1);
        /* refuse a body announced too large without reading it */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            const unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl && v > srv->o.max_body)
                r->too_large = true;
        }
        if (r->too_large)
            return dispatch(r, c, url);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!r->too_large && r->status == 0) {
            if (r->body.len + *upload_data_size > srv->o.max_body) {
                r->too_large = true;
                srv_buf_free(&r->body);
            } else {
                srv_buf_append(&r->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->waiting)
        return finish_completion(r, c);
    if (r->status != 0)
        return MHD_YES; /* answered already (early 413) */
    if (r->body.failed)
        return send_body(r, c, 500, NULL, NULL, 0, NULL, NULL);
    return dispatch(r, c, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    srv_server *srv = cls;
    struct conn_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    const double now = mono_now();
    int status = r->status;
    const char *finish = NULL;
    double ttft = -1;
    long n_prompt = -1, n_gen = -1;
    if (r->g) {
        struct gen *g = r->g;
        pthread_mutex_lock(&g->mu);
        g->conn = NULL;
        g->suspended = false;
        if (!g->done)
            g->cancel = true; /* the client went away; the scheduler drops the job */
        const bool gone = g->cancel || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
        if (gone && status < 400)
            status = STATUS_CLIENT_GONE;
        if (g->done && g->end == SRV_JOB_FINISHED)
            finish = finish_reason(g->finish);
        else if (g->done && g->end == SRV_JOB_SHUTDOWN)
            finish = "shutdown";
        else if (g->done && g->end == SRV_JOB_FAILED)
            finish = "error";
        else if (g->cancel || (g->done && g->end == SRV_JOB_CANCELLED))
            finish = "cancelled";
        n_prompt = g->n_prompt;
        n_gen = g->n_gen;
        if (g->n_gen > 0 && g->t_first > 0)
            ttft = g->t_first - g->t_start;
        pthread_mutex_unlock(&g->mu);
    } else if (status == 0) {
        status = STATUS_CLIENT_GONE; /* closed before we answered */
    }
    srv_metrics_count_request(srv->metrics, route_label[r->route], r->tenant_name, status);
    if (srv->o.log) {
        const struct srv_access_entry e = {
            .time = r->t_wall, .remote = r->remote[0] ? r->remote : NULL, .method = r->method,
            .path = r->path, .status = status, .tenant = r->tenant_name,
            .prompt_tokens = n_prompt, .completion_tokens = n_gen, .ttft_s = ttft,
            .duration_s = now - r->t_start, .finish = finish};
        srv_accesslog_write(srv->o.log, &e, srv->o.log_format);
    }
    if (r->g)
        gen_unref(r->g);
    srv_buf_free(&r->body);
    free(r->path);
    free(r);
    atomic_fetch_sub(&srv->open_requests, 1);
}

/* ---- life cycle ------------------------------------------------------------------------- */

static uint64_t random_salt(void)
{
    uint64_t v = 0;
    const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
            v = 0;
        close(fd);
    }
    return mix64(v ^ (uint64_t)(wall_now() * 1e9) ^ ((uint64_t)getpid() << 32));
}

int srv_server_start(const struct srv_options *o, srv_server **out, quarry_error *err)
{
    *out = NULL;
    srv_server *s = calloc(1, sizeof *s);
    if (!s)
        return quarry_errorf(err, QUARRY_ENOMEM, "server: out of memory");
    s->o = *o;
    if (!s->o.max_body)
        s->o.max_body = 1u << 20;
    if (!s->o.timeout_s)
        s->o.timeout_s = 30;
    if (!s->o.max_connections)
        s->o.max_connections = 256;
    if (!(s->o.keepalive_s > 0))
        s->o.keepalive_s = 5;
    if (!(s->o.shutdown_flush_s > 0))
        s->o.shutdown_flush_s = 3;
    s->host = dup_cstr(o->host ? o->host : "127.0.0.1");
    s->model_id = dup_cstr(o->model_id ? o->model_id : "model");
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->state, STATE_LOADING);
    atomic_init(&s->counter, 0);
    atomic_init(&s->open_requests, 0);
    s->created = (long long)time(NULL);
    s->salt = random_salt();
    int rc = 0;
    if (!s->host || !s->model_id || srv_metrics_new(&s->metrics) != 0) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "server: out of memory");
        goto fail;
    }
    if (o->keys) {
        struct srv_tenant_limits *lim = calloc(o->keys->n ? o->keys->n : 1, sizeof *lim);
        if (!lim) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "server: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < o->keys->n; i++)
            lim[i] = (struct srv_tenant_limits){o->keys->tenants[i].requests_per_minute,
                                                o->keys->tenants[i].tokens_per_minute,
                                                o->keys->tenants[i].max_concurrent};
        const int lrc = srv_limiter_new(lim, o->keys->n, mono_now(), &s->limiter);
        free(lim);
        if (lrc) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "server: out of memory");
            goto fail;
        }
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    /* poll, not epoll: libmicrohttpd 0.9.75's epoll internal thread stalls when
     * 128 or more connections arrive at once (measured with wrk -c128: 42
     * requests/s instead of ~50k); poll mode has no such cliff. */
    unsigned int flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (strchr(s->host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(o->port);
        if (inet_pton(AF_INET6, s->host, &a6->sin6_addr) != 1) {
            rc = quarry_errorf(err, QUARRY_EINVAL, "server: '%s' is not an IP address", s->host);
            goto fail;
        }
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(o->port);
        if (inet_pton(AF_INET, s->host, &a4->sin_addr) != 1) {
            rc = quarry_errorf(err, QUARRY_EINVAL, "server: '%s' is not an IPv4 or IPv6 address",
                               s->host);
            goto fail;
        }
    }
    s->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned int)s->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned int)s->o.timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_END);
    if (!s->d) {
        rc = quarry_errorf(err, QUARRY_EIO, "server: cannot listen on %s:%u (in use?)", s->host,
                           (unsigned)o->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    *out = s;
    return 0;
fail:
    srv_server_free(s);
    return rc;
}

uint16_t srv_server_port(const srv_server *s)
{
    return s->port;
}

int srv_server_set_engine(srv_server *s, const struct srv_engine *e, quarry_error *err)
{
    if (atomic_load(&s->state) != STATE_LOADING)
        return quarry_errorf(err, QUARRY_EINVAL, "server: engine already set or stopping");
    s->e = *e;
    s->n_ctx = quarry_kvcache_params(quarry_context_kv(e->ctx))->n_ctx;
    struct srv_sched_params sp = e->sched;
    if (!(sp.tick_s > 0))
        sp.tick_s = s->o.keepalive_s;
    int rc = srv_sched_new(e->model, e->tok, e->ctx, &sp, &s->sched, err);
    if (rc)
        return rc;
    atomic_store(&s->state, STATE_READY);
    return 0;
}

/* Resumes every connection still suspended on one of our gens. Only called
 * when no scheduler thread runs any more. */
static void resume_all(srv_server *s)
{
    pthread_mutex_lock(&s->mu);
    for (struct gen *g = s->gens; g; g = g->next) {
        pthread_mutex_lock(&g->mu);
        if (!g->done) {
            g->done = true;
            g->end = SRV_JOB_SHUTDOWN;
        }
        const bool resume = take_resume(g);
        struct MHD_Connection *c = g->conn;
        pthread_mutex_unlock(&g->mu);
        if (resume)
            MHD_resume_connection(c);
    }
    pthread_mutex_unlock(&s->mu);
}

void srv_server_shutdown(srv_server *s, double grace_s)
{
    if (!s || s->shut_down)
        return;
    s->shut_down = true;
    atomic_store(&s->state, STATE_STOPPING);
    if (!s->d)
        return;
    const MHD_socket listen_fd = MHD_quiesce_daemon(s->d);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    if (s->sched) {
        srv_sched_drain(s->sched);
        srv_sched_wait_idle(s->sched, grace_s);
        srv_sched_stop(s->sched); /* ends what is left with a final event */
    }
    resume_all(s);
    /* let the last events reach the clients */
    const double deadline = mono_now() + s->o.shutdown_flush_s;
    while (atomic_load(&s->open_requests) > 0 && mono_now() < deadline) {
        const struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    s->d = NULL;
}

void srv_server_free(srv_server *s)
{
    if (!s)
        return;
    srv_server_shutdown(s, 0);
    srv_sched_free(s->sched);
    srv_limiter_free(s->limiter);
    srv_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->mu);
    free(s->host);
    free(s->model_id);
    free(s);
}
