/*
 * fake_openai_server.c - the test server behind test_loadgen_e2e and
 * tools/loadgen-vs-wrk.sh (see fake_openai_server.h).
 *
 * Streams follow libmicrohttpd's suspend/resume pattern: the content reader
 * hands out whatever bytes the stream has pending; with none pending it
 * suspends the connection (under the server mutex) and returns 0. The ticker
 * thread appends each chunk when it is due and resumes the connection
 * outside the mutex. A stream is shared by the response (freed by
 * libmicrohttpd) and the request's bookkeeping (freed when the request
 * completes), so it carries a reference count.
 */
#include "tests/fake_openai_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <microhttpd.h>

struct stream {
    struct fake_server *srv;
    struct MHD_Connection *conn;
    struct stream *prev, *next;   /* the ticker's list (while the response lives) */
    int in_list;
    int refs;                     /* response + request */
    int health;                   /* a delayed GET /health, not a completion */
    int chat, include_usage;
    int n_chunks, produced;       /* output chunks wanted / made */
    int64_t prompt_tokens;
    int truncate, cut;            /* faults for this stream */
    int64_t next_due;             /* CLOCK_MONOTONIC ns of the next output chunk */
    int ended;                    /* everything produced (eos or cut) */
    int suspended;
    char *buf;                    /* pending bytes buf[off..len) */
    size_t off, len, cap;
    int oom;
};

struct request {
    char *body;
    size_t len, cap;
    struct stream *stream;
    int too_big;
};

struct fake_server {
    struct fake_server_opts opts;
    struct MHD_Daemon *daemon;
    pthread_t ticker;
    int ticker_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stop;
    struct stream *streams;       /* list head */
    struct fake_server_counts counts;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- stream output (called with the mutex held) ---- */

static void append(struct stream *st, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        st->oom = 1;
        return;
    }
    if (st->off > 0 && st->off == st->len)
        st->off = st->len = 0;
    if (st->len + (size_t)n > st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 1024;
        while (ncap < st->len + (size_t)n)
            ncap *= 2;
        char *nb = realloc(st->buf, ncap);
        if (!nb) {
            st->oom = 1;
            return;
        }
        st->buf = nb;
        st->cap = ncap;
    }
    memcpy(st->buf + st->len, tmp, (size_t)n);
    st->len += (size_t)n;
}

static void append_chunk(struct stream *st, const char *text, const char *finish)
{
    char fin[32];
    snprintf(fin, sizeof fin, finish ? "\"%s\"" : "null", finish);
    if (st->chat) {
        if (text)
            append(st, "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"model\":\"fake\","
                       "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":%s}]}\n\n",
                   text, fin);
        else
            append(st, "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"model\":\"fake\","
                       "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                       "\"finish_reason\":%s}]}\n\n",
                   fin);
    } else {
        append(st, "data: {\"id\":\"cmpl-fake\",\"object\":\"text_completion\",\"model\":\"fake\","
                   "\"choices\":[{\"index\":0,\"text\":\"%s\",\"finish_reason\":%s}]}\n\n",
               text ? text : "", fin);
    }
}

/* Produces whatever is due at `now`; returns 1 when something was added. */
static int produce(struct stream *st, const struct fake_server_opts *o, int64_t now)
{
    int added = 0;
    if (st->health) {
        if (!st->ended && st->next_due <= now) {
            append(st, "ok\n");
            st->ended = 1;
            added = 1;
        }
        return added;
    }
    while (!st->ended && st->next_due <= now) {
        if (st->cut && st->produced >= st->n_chunks / 2) {
            st->ended = 1; /* the reader cuts the connection once the buffer drains */
            added = 1;
            break;
        }
        if (st->produced < st->n_chunks) {
            /* words of the output in separate chunks; the first one in its own SSE framing */
            append_chunk(st, st->produced == 0 ? "Once" : " upon", NULL);
            st->produced++;
            st->srv->counts.chunks_sent++;
            st->next_due += (int64_t)o->token_ms * 1000000;
            added = 1;
            continue;
        }
        append_chunk(st, st->chat ? NULL : "", "length");
        if (st->include_usage)
            append(st, "data: {\"id\":\"cmpl-fake\",\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,"
                       "\"completion_tokens\":%d,\"total_tokens\":%lld}}\n\n",
                   (long long)st->prompt_tokens, st->produced,
                   (long long)st->prompt_tokens + st->produced);
        if (!st->truncate)
            append(st, "data: [DONE]\n\n");
        st->ended = 1;
        added = 1;
    }
    return added;
}

static void stream_unref(struct stream *st)
{
    /* mutex held */
    if (--st->refs > 0)
        return;
    free(st->buf);
    free(st);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *st = cls;
    struct fake_server *srv = st->srv;
    pthread_mutex_lock(&srv->mu);
    if (st->oom) {
        pthread_mutex_unlock(&srv->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (st->len > st->off) {
        size_t n = st->len - st->off;
        if (n > max)
            n = max;
        memcpy(buf, st->buf + st->off, n);
        st->off += n;
        pthread_mutex_unlock(&srv->mu);
        return (ssize_t)n;
    }
    if (st->ended) {
        const int cut = st->cut;
        pthread_mutex_unlock(&srv->mu);
        return cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    }
    st->suspended = 1;
    MHD_suspend_connection(st->conn);
    pthread_mutex_unlock(&srv->mu);
    return 0;
}

static void stream_response_free(void *cls)
{
    struct stream *st = cls;
    struct fake_server *srv = st->srv;
    pthread_mutex_lock(&srv->mu);
    if (st->in_list) {
        if (st->prev)
            st->prev->next = st->next;
        else
            srv->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->in_list = 0;
    }
    stream_unref(st);
    pthread_mutex_unlock(&srv->mu);
}

static void *ticker_main(void *arg)
{
    struct fake_server *srv = arg;
    struct MHD_Connection *resume[256];
    pthread_mutex_lock(&srv->mu);
    while (!srv->stop) {
        const int64_t now = now_ns();
        int n_resume = 0;
        int64_t earliest = now + 1000000000;
        for (struct stream *st = srv->streams; st; st = st->next) {
            produce(st, &srv->opts, now);
            if (st->suspended && (st->len > st->off || st->ended || st->oom) &&
                n_resume < (int)(sizeof resume / sizeof resume[0])) {
                st->suspended = 0;
                resume[n_resume++] = st->conn;
            }
            if (!st->ended && st->next_due < earliest)
                earliest = st->next_due;
        }
        if (n_resume > 0) {
            /* suspended connections cannot close, so these stay valid */
            pthread_mutex_unlock(&srv->mu);
            for (int i = 0; i < n_resume; i++)
                MHD_resume_connection(resume[i]);
            pthread_mutex_lock(&srv->mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        const int64_t wait = earliest - now;
        if (wait > 0) {
            int64_t t = (int64_t)until.tv_sec * 1000000000 + until.tv_nsec + wait;
            until.tv_sec = t / 1000000000;
            until.tv_nsec = t % 1000000000;
            pthread_cond_timedwait(&srv->wake, &srv->mu, &until);
        }
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* ---- request handling ---- */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int64_t count_words(const char *s)
{
    int64_t n = 0;
    int in_word = 0;
    for (; *s; s++) {
        const int space = *s == ' ' || *s == '\n' || *s == '\t';
        if (!space && !in_word)
            n++;
        in_word = !space;
    }
    return n;
}

static int64_t prompt_words(const cJSON *root, int chat)
{
    if (!chat) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        return cJSON_IsString(p) ? count_words(p->valuestring) : 0;
    }
    int64_t n = 0;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *m = cJSON_IsArray(msgs) ? msgs->child : NULL;
    for (; m; m = m->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(c))
            n += count_words(c->valuestring);
    }
    return n;
}

static void note_key(struct fake_server *srv, const char *auth)
{
    /* mutex held */
    struct fake_server_counts *c = &srv->counts;
    if (!auth)
        auth = "";
    for (int i = 0; i < c->n_keys; i++) {
        if (strcmp(c->keys[i], auth) == 0) {
            c->key_posts[i]++;
            return;
        }
    }
    if (c->n_keys < FAKE_SERVER_MAX_KEYS) {
        snprintf(c->keys[c->n_keys], sizeof c->keys[0], "%s", auth);
        c->key_posts[c->n_keys++] = 1;
    }
}

static enum MHD_Result queue_stream(struct fake_server *srv, struct MHD_Connection *conn,
                                    struct request *req, struct stream *st, const char *type,
                                    uint64_t size);

static enum MHD_Result handle_completion(struct fake_server *srv, struct MHD_Connection *conn,
                                         struct request *req, int chat)
{
    /* req->body is NUL-terminated: the length with the NUL lets cJSON reject trailing bytes */
    const char *end = NULL;
    cJSON *root = req->body ? cJSON_ParseWithLengthOpts(req->body, req->len + 1, &end, 1) : NULL;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return reply_text(conn, 400, "application/json", "{\"error\":{\"message\":\"bad JSON\"}}");
    }
    const cJSON *max_tokens = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    const cJSON *stream_opt = cJSON_GetObjectItemCaseSensitive(root, "stream");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
    const int n_chunks = srv->opts.n_chunks > 0 ? srv->opts.n_chunks
                         : cJSON_IsNumber(max_tokens) && max_tokens->valuedouble >= 1
                             ? (int)max_tokens->valuedouble
                             : 16;
    const int want_stream = cJSON_IsTrue(stream_opt);
    const int include_usage = cJSON_IsTrue(usage);
    const int64_t words = prompt_words(root, chat);
    cJSON_Delete(root);

    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&srv->mu);
    const uint64_t index = ++srv->counts.posts;
    note_key(srv, auth);
    const struct fake_server_opts *o = &srv->opts;
    const int fail = o->fail_every > 0 && index % (uint64_t)o->fail_every == 0;
    if (fail)
        srv->counts.http_errors++;
    pthread_mutex_unlock(&srv->mu);
    if (fail)
        return reply_text(conn, 500, "application/json",
                          "{\"error\":{\"message\":\"injected failure\",\"type\":\"server_error\"}}");
    if (!want_stream)
        return reply_text(conn, 400, "application/json",
                          "{\"error\":{\"message\":\"the fake server only streams\"}}");

    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return MHD_NO;
    st->chat = chat;
    st->include_usage = include_usage;
    st->n_chunks = n_chunks;
    st->prompt_tokens = words;
    st->truncate = o->truncate_every > 0 && index % (uint64_t)o->truncate_every == 0;
    st->cut = !st->truncate && o->cut_every > 0 && index % (uint64_t)o->cut_every == 0;
    st->next_due = now_ns() + (int64_t)o->first_token_ms * 1000000;
    append_chunk(st, NULL, NULL); /* the no-output first chunk, at once */
    return queue_stream(srv, conn, req, st, "text/event-stream", MHD_SIZE_UNKNOWN);
}

/* Hands st (filled in, not yet shared) to libmicrohttpd as a response fed by
 * the ticker: chunked when size is MHD_SIZE_UNKNOWN. */
static enum MHD_Result queue_stream(struct fake_server *srv, struct MHD_Connection *conn,
                                    struct request *req, struct stream *st, const char *type,
                                    uint64_t size)
{
    st->srv = srv;
    st->conn = conn;
    st->refs = 2;
    struct MHD_Response *r =
        MHD_create_response_from_callback(size, 1024, stream_reader, st, stream_response_free);
    if (!r) {
        free(st->buf);
        free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    pthread_mutex_lock(&srv->mu);
    st->next = srv->streams;
    if (srv->streams)
        srv->streams->prev = st;
    srv->streams = st;
    st->in_list = 1;
    req->stream = st;
    pthread_cond_signal(&srv->wake);
    pthread_mutex_unlock(&srv->mu);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct fake_server *srv = cls;
    struct request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        const size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->len + n > (64u << 20)) {
            req->too_big = 1;
            return MHD_YES;
        }
        if (req->len + n + 1 > req->cap) {
            size_t ncap = req->cap ? req->cap * 2 : 4096;
            while (ncap < req->len + n + 1)
                ncap *= 2;
            char *nb = realloc(req->body, ncap);
            if (!nb)
                return MHD_NO;
            req->body = nb;
            req->cap = ncap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        req->body[req->len] = '\0';
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0) {
        pthread_mutex_lock(&srv->mu);
        srv->counts.health++;
        pthread_mutex_unlock(&srv->mu);
        if (srv->opts.health_delay_us == 0)
            return reply_text(conn, 200, "text/plain", "ok\n");
        struct stream *st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        st->health = 1;
        st->next_due = now_ns() + (int64_t)srv->opts.health_delay_us * 1000;
        return queue_stream(srv, conn, req, st, "text/plain", 3); /* "ok\n" */
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0) {
        char text[1024];
        pthread_mutex_lock(&srv->mu);
        srv->counts.metrics++;
        const struct fake_server_counts c = srv->counts;
        pthread_mutex_unlock(&srv->mu);
        snprintf(text, sizeof text,
                 "# HELP fake_requests_total Completion requests received.\n"
                 "# TYPE fake_requests_total counter\n"
                 "fake_requests_total %llu\n"
                 "fake_http_errors_total %llu\n"
                 "fake_streams_total{state=\"completed\"} %llu\n"
                 "fake_streams_total{state=\"dropped\"} %llu\n"
                 "fake_chunks_total %llu\n"
                 "fake_health_requests_total %llu\n",
                 (unsigned long long)c.posts, (unsigned long long)c.http_errors,
                 (unsigned long long)c.streams_completed, (unsigned long long)c.streams_dropped,
                 (unsigned long long)c.chunks_sent, (unsigned long long)c.health);
        return reply_text(conn, 200, "text/plain; version=0.0.4", text);
    }
    if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/completions") == 0)
        return req->too_big ? reply_text(conn, 413, "text/plain", "too big\n")
                            : handle_completion(srv, conn, req, 0);
    if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/chat/completions") == 0)
        return req->too_big ? reply_text(conn, 413, "text/plain", "too big\n")
                            : handle_completion(srv, conn, req, 1);
    return reply_text(conn, 404, "text/plain", "not found\n");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct fake_server *srv = cls;
    struct request *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&srv->mu);
    if (req->stream && req->stream->health) {
        stream_unref(req->stream);
    } else if (req->stream) {
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            srv->counts.streams_completed++;
        else if (!req->stream->cut)
            srv->counts.streams_dropped++;
        stream_unref(req->stream);
    }
    pthread_mutex_unlock(&srv->mu);
    free(req->body);
    free(req);
}

int fake_server_start(const struct fake_server_opts *opts, struct fake_server **out, uint16_t *port)
{
    *out = NULL;
    signal(SIGPIPE, SIG_IGN);
    struct fake_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -1;
    srv->opts = *opts;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&srv->ticker, NULL, ticker_main, srv) != 0) {
        fake_server_stop(srv);
        return -1;
    }
    srv->ticker_started = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* ephemeral */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* poll, not epoll: libmicrohttpd 0.9.75's epoll mode stalls (requests
     * accepted but never read) when a hundred or more connections arrive at
     * once, with wrk as well as with quarry-load; poll and select do not */
    srv->daemon = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
                                   NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                                   (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                   srv, MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
    if (!srv->daemon) {
        fake_server_stop(srv);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        fake_server_stop(srv);
        return -1;
    }
    *port = info->port;
    *out = srv;
    return 0;
}

void fake_server_stop(struct fake_server *srv)
{
    if (!srv)
        return;
    if (srv->ticker_started) {
        pthread_mutex_lock(&srv->mu);
        srv->stop = 1;
        pthread_cond_signal(&srv->wake);
        pthread_mutex_unlock(&srv->mu);
        pthread_join(srv->ticker, NULL);
    }
    if (srv->daemon) {
        /* every suspended connection must be resumed before the daemon stops */
        for (;;) {
            struct MHD_Connection *resume[256];
            int n = 0;
            pthread_mutex_lock(&srv->mu);
            for (struct stream *st = srv->streams; st && n < 256; st = st->next) {
                if (st->suspended) {
                    st->suspended = 0;
                    st->ended = 1;
                    st->cut = 1;
                    resume[n++] = st->conn;
                }
            }
            pthread_mutex_unlock(&srv->mu);
            if (n == 0)
                break;
            for (int i = 0; i < n; i++)
                MHD_resume_connection(resume[i]);
        }
        MHD_stop_daemon(srv->daemon);
    }
    pthread_cond_destroy(&srv->wake);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

void fake_server_counts(struct fake_server *srv, struct fake_server_counts *out)
{
    pthread_mutex_lock(&srv->mu);
    *out = srv->counts;
    pthread_mutex_unlock(&srv->mu);
}
