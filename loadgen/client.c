/*
 * client.c - the load generator's event loops (see client.h).
 *
 * Each thread owns one epoll set, one timerfd and its slots. A slot is one
 * client: at most one connection (kept alive across requests), the request
 * in flight on it, its HTTP response parser, SSE parser, record and buffer
 * of inter-token gaps. On a kept-alive connection a small request costs one
 * send() and, when the answer is in, one read(), with one clock read each;
 * the socket stays in the epoll set with EPOLLIN for the connection's life,
 * so there is no poll over all sockets.
 *
 * Pacing of the closed loop: when a response is complete its end time is
 * taken at once, and the client's next request on the same connection is
 * written when epoll next reports the socket writable (EPOLLOUT is asked
 * for, then dropped after the send: two epoll_ctl per request). That is one
 * loop turn between a response and the next request, in the order the loop
 * serves ready sockets, which is what wrk does. Writing it straight away
 * instead (at the end of the turn) measured the same per-request cost but,
 * with the server saturated, about 12% higher median latency than wrk at the
 * same rate: with less time in the client between requests, more of them
 * wait inside the server (latency = clients / rate - time in the client).
 * The definition of latency is the same either way (written -> last byte
 * read); the pacing is matched so that tools/loadgen-vs-wrk.sh compares
 * like with like. A client whose connection has to be (re)opened starts it
 * at the end of the turn.
 *
 * Deadlines: every request shares one timeout and every connect one connect
 * timeout, so the requests in flight (by send time) and the connects under
 * way (by start) are two FIFO lists whose heads are the next deadlines. The
 * timerfd is armed at the earliest of those, the next arrival (open loop),
 * the end of the run or the drain, and the next memory sample; it is only
 * re-armed when something earlier comes up (waking early is harmless), not
 * on every request.
 *
 * Failures found while a request is being started (a refused connect, a
 * send on a connection the server has just closed) are queued and recorded
 * from the loop, so starting a request never finishes one. A request that
 * went out on a reused keep-alive connection which turns out closed, before
 * any byte of response, is sent once more on a fresh connection (what
 * browsers and libcurl do): the server closing an idle connection is not an
 * error of the request.
 */
#include "loadgen/client.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/http1.h"
#include "loadgen/rng.h"
#include "loadgen/sse.h"

#define READ_BUFFER_BYTES (64 * 1024)
#define MAX_THREADS 1024
#define TIMER_TAG UINT64_MAX /* epoll data of the timerfd; slots use (generation << 32 | index) */

/* How a request's transfer went wrong (the HTTP status and the stream are
 * judged separately). */
enum xfer_error {
    XFER_OK,
    XFER_RESOLVE,         /* the host name did not resolve */
    XFER_CONNECT,         /* connect failed */
    XFER_CONNECT_TIMEOUT, /* no connection within a timeout */
    XFER_TIMEOUT,         /* the request timeout passed after the connection was up */
    XFER_CLOSED,          /* the server closed the connection (or reset it) mid-request */
    XFER_PROTOCOL,        /* the response was not valid HTTP/1.x */
    XFER_BODY,            /* the body could not be parsed as a stream (SSE) */
};

struct qlink { /* an entry of a deadline list */
    struct qlink *prev, *next;
    struct slot *owner;
    int64_t at;   /* absolute ns the list's clock started for it */
    int linked;
};

struct qlist {
    struct qlink *head, *tail;
};

struct run;

struct slot {
    struct run *run;
    uint32_t index;               /* in run->slots */
    uint32_t gen;                 /* bumped when the connection closes: tags epoll events */
    int fd;                       /* -1: no connection */
    int connecting;
    int conn_used;                /* the connection has carried a complete request */
    uint32_t events;              /* what the epoll set watches for fd */
    const struct addrinfo *addr;  /* the address being connected to */
    struct qlink req_link, conn_link;

    /* the request in flight */
    int in_flight;
    int reused, retried;          /* sent on a used connection; sent a second time */
    const char *out[2];           /* request head and body */
    size_t out_len[2], out_off;
    char *head;                   /* POST: the head with this body's length */
    size_t head_cap;
    char *body;
    struct qload_http_resp resp;
    struct qload_record rec;      /* times relative to the run's t0 */
    int64_t *gaps;                /* inter-token gaps of the current request */
    size_t gaps_cap;
    int64_t last_token_ns;
    int64_t piece_ns;             /* arrival time of the bytes being parsed */
    struct qload_sse sse;
    int saw_done, stream_error, cancelled, aborted;
    enum xfer_error xerr;
    int send_when_writable;       /* closed loop: the next request waits for EPOLLOUT */
    int failure_queued;           /* in run->failed */
    int64_t failed_at;            /* absolute ns of a queued failure */
    struct slot *failed_next;
    char error_text[256];
};

/* A request's bytes before its body: "GET ... \r\n\r\n" whole, or a POST's
 * head up to (not including) its Content-Length line. One per tenant. */
struct request_head {
    char *text;
    size_t len;
};

/* What the threads share: read-only during the run but for the atomics and
 * the prompts (behind their mutex). */
struct shared {
    const struct qload_config *cfg;
    int n_threads;
    struct qload_url url;
    struct addrinfo *addrs;       /* NULL when the host did not resolve */
    char resolve_error[200];
    struct request_head *heads;
    int n_heads;
    int64_t t0, stop_at;          /* absolute ns; stop_at -1 none */
    int64_t timeout_ns, connect_timeout_ns, drain_ns;
    atomic_ullong next_id;        /* closed loop: requests issued by all threads */
    atomic_int failed;            /* a thread hit a fatal error: all stop */
    pthread_mutex_t prompts_mu;   /* the prompts source is not thread-safe */
};

struct run {
    struct shared *sh;
    const struct qload_config *cfg;
    int index;                     /* thread number */
    struct qload_stats *stats;
    struct qload_records *records;
    struct qload_rss *rss;         /* thread 0 only */
    quarry_error err;
    int fatal;                     /* a negative code that ends the run */
    pthread_t thread;

    int epfd, timerfd;
    int64_t armed_at;              /* what the timerfd is armed for, -1 disarmed */
    char *rbuf;

    struct slot **slots;           /* every slot created */
    size_t n_slots, slots_cap;
    struct slot **idle;            /* slots not in flight */
    size_t n_idle;
    size_t busy;
    struct qlist requests;         /* in flight, by send time */
    struct qlist connects;         /* connecting, by start */
    struct slot *failed;           /* failures to record (LIFO) */
    struct slot **next_up;         /* closed loop: clients whose next request is due */
    size_t n_next_up;

    int clients;                   /* closed loop: this thread's share of the concurrency */
    int max_in_flight;             /* open loop: this thread's share of the cap, 0 none */
    size_t next_sched;             /* open loop: next schedule index (this thread's stride) */
    int exhausted;                 /* closed loop: max_requests reached */
    int stopping;                  /* no more requests start */
    int64_t drain_until;           /* absolute ns in-flight requests are aborted, -1 none */
    int64_t next_rss;              /* absolute ns of the next memory sample, -1 none */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void qload_records_free(struct qload_records *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i].itl_ns);
    free(r->items);
    memset(r, 0, sizeof *r);
}

static void set_fatal(struct run *run, int code, const char *what)
{
    if (run->fatal == 0)
        run->fatal = quarry_errorf(&run->err, code, "load: %s", what);
}

/* ---- deadline lists ---- */

static void q_push(struct qlist *q, struct qlink *l, int64_t at)
{
    l->at = at;
    l->next = NULL;
    l->prev = q->tail;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    l->linked = 1;
}

static void q_remove(struct qlist *q, struct qlink *l)
{
    if (!l->linked)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        q->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->linked = 0;
}

/* ---- per-request callbacks (SSE events, body bytes) ---- */

static void push_gap(struct slot *sl, int64_t gap)
{
    if (sl->rec.n_itl == sl->gaps_cap) {
        const size_t ncap = sl->gaps_cap ? sl->gaps_cap * 2 : 256;
        int64_t *ng = realloc(sl->gaps, ncap * sizeof *ng);
        if (!ng) {
            set_fatal(sl->run, QUARRY_ENOMEM, "out of memory recording gaps");
            return;
        }
        sl->gaps = ng;
        sl->gaps_cap = ncap;
    }
    sl->gaps[sl->rec.n_itl++] = gap;
}

static void snippet(char *dst, size_t size, const char *prefix, const char *data, size_t len)
{
    size_t n = len < 80 ? len : 80;
    snprintf(dst, size, "%s%.*s%s", prefix, (int)n, data, len > n ? "..." : "");
}

static int on_event(void *ctx, const char *type, const char *data, size_t len)
{
    struct slot *sl = ctx;
    if (strcmp(type, "error") == 0) {
        sl->stream_error = 1;
        snippet(sl->error_text, sizeof sl->error_text, "error event: ", data, len);
        return 0;
    }
    if (strcmp(type, "message") != 0)
        return 0;
    struct qload_chunk c;
    if (qload_openai_parse_chunk(data, len, &c) != 0) {
        if (!sl->stream_error)
            snippet(sl->error_text, sizeof sl->error_text, "unreadable chunk: ", data, len);
        sl->stream_error = 1;
        return 0;
    }
    if (c.done) {
        sl->saw_done = 1;
        return 0;
    }
    if (c.has_error) {
        if (!sl->stream_error)
            snippet(sl->error_text, sizeof sl->error_text, "error in stream: ", data, len);
        sl->stream_error = 1;
    }
    if (c.prompt_tokens >= 0)
        sl->rec.prompt_tokens = c.prompt_tokens;
    if (c.completion_tokens >= 0)
        sl->rec.completion_tokens = c.completion_tokens;
    if (c.output_bytes == 0)
        return 0;
    const int64_t now = sl->piece_ns;
    if (sl->rec.output_chunks == 0) {
        sl->rec.first_token_ns = now;
    } else {
        const int64_t gap = now - sl->last_token_ns;
        push_gap(sl, gap);
        if (gap > sl->rec.max_itl_ns)
            sl->rec.max_itl_ns = gap;
    }
    sl->last_token_ns = now;
    sl->rec.output_chunks++;
    if (sl->rec.cancel_after > 0 && sl->rec.output_chunks >= sl->rec.cancel_after) {
        sl->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Body bytes (de-chunked) of the response being read; non-zero stops the
 * transfer (a planned cancellation or a stream that cannot be parsed). */
static int on_body(void *ctx, const char *data, size_t n)
{
    struct slot *sl = ctx;
    const struct qload_config *cfg = sl->run->cfg;
    sl->rec.bytes_received += (int64_t)n;
    const int status = sl->resp.status;
    if (status < 200 || status > 299) {
        if (sl->error_text[0] == '\0') {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "HTTP %d: ", status);
            snippet(sl->error_text, sizeof sl->error_text, prefix, data, n);
        }
        return 0;
    }
    if (cfg->api == QLOAD_API_PLAIN_GET)
        return 0;
    const int rc = qload_sse_feed(&sl->sse, data, n, on_event, sl, NULL);
    if (rc == QLOAD_SSE_STOPPED)
        return 1; /* a planned cancellation: the caller closes the connection mid-stream */
    if (rc < 0) {
        sl->stream_error = 1;
        sl->xerr = XFER_BODY;
        snprintf(sl->error_text, sizeof sl->error_text, "SSE: %s",
                 rc == QUARRY_ERANGE ? "event larger than the limit" : "out of memory");
        return 1;
    }
    return 0;
}

/* ---- connections ---- */

static void watch(struct run *run, struct slot *sl, uint32_t events)
{
    if (events == sl->events)
        return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)sl->gen << 32 | sl->index;
    if (epoll_ctl(run->epfd, sl->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, sl->fd, &ev) != 0)
        set_fatal(run, QUARRY_EIO, "epoll_ctl failed on a socket");
    sl->events = events;
}

static void conn_close(struct run *run, struct slot *sl)
{
    if (sl->fd >= 0)
        close(sl->fd); /* leaves the epoll set with it */
    sl->fd = -1;
    sl->gen++;
    sl->events = 0;
    sl->connecting = 0;
    sl->conn_used = 0;
    q_remove(&run->connects, &sl->conn_link);
}

/* Queues the request's failure for the loop to record (see the top). */
static void queue_failure(struct run *run, struct slot *sl, enum xfer_error why)
{
    if (sl->failure_queued)
        return;
    sl->failure_queued = 1;
    if (sl->xerr == XFER_OK)
        sl->xerr = why;
    sl->failed_at = mono_ns();
    q_remove(&run->requests, &sl->req_link);
    q_remove(&run->connects, &sl->conn_link);
    sl->failed_next = run->failed;
    run->failed = sl;
}

/* Starts connecting to the addresses from `from` on. 0 when a connect is
 * under way (or done); otherwise the errno of the last address tried. */
static int connect_from(struct run *run, struct slot *sl, const struct addrinfo *from)
{
    int last = ECONNREFUSED;
    for (const struct addrinfo *ai = from; ai; ai = ai->ai_next) {
        const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            continue;
        }
        sl->fd = fd;
        sl->addr = ai;
        sl->connecting = 1;
        sl->conn_used = 0;
        sl->events = 0;
        watch(run, sl, EPOLLOUT); /* writable: the connect finished, one way or the other */
        return 0;
    }
    return last;
}

static void connect_failed(struct run *run, struct slot *sl, int error)
{
    snprintf(sl->error_text, sizeof sl->error_text, "connect to %.100s: %.100s", run->sh->url.authority,
             strerror(error));
    queue_failure(run, sl, XFER_CONNECT);
}

/* Opens the slot's connection for the request in flight. */
static void conn_open(struct run *run, struct slot *sl)
{
    if (!run->sh->addrs) {
        snprintf(sl->error_text, sizeof sl->error_text, "%s", run->sh->resolve_error);
        queue_failure(run, sl, XFER_RESOLVE);
        return;
    }
    const int error = connect_from(run, sl, run->sh->addrs);
    if (error != 0) {
        connect_failed(run, sl, error);
        return;
    }
    q_push(&run->connects, &sl->conn_link, mono_ns());
}

static void try_send(struct run *run, struct slot *sl);

/* The connection broke (closed, reset, a failed send) while the request was
 * in flight. */
static void conn_broke(struct run *run, struct slot *sl, int error)
{
    const uint64_t seen = sl->resp.bytes_seen;
    conn_close(run, sl);
    if (!sl->in_flight)
        return;
    if (seen == 0 && sl->reused && !sl->retried) {
        /* the server had closed the kept-alive connection: once more on a new one */
        sl->retried = 1;
        sl->reused = 0;
        sl->out_off = 0;
        conn_open(run, sl);
        return;
    }
    if (error)
        snprintf(sl->error_text, sizeof sl->error_text, "connection failed %s the response: %s",
                 seen ? "during" : "before", strerror(error));
    else if (seen)
        snprintf(sl->error_text, sizeof sl->error_text,
                 "connection closed after %llu bytes of the response", (unsigned long long)seen);
    else
        snprintf(sl->error_text, sizeof sl->error_text, "connection closed before any response");
    queue_failure(run, sl, XFER_CLOSED);
}

/* The connect under way ended (the socket turned writable or failed). */
static void connect_done(struct run *run, struct slot *sl)
{
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    if (error == EINPROGRESS || error == EALREADY)
        return; /* not yet */
    if (error != 0) {
        const struct addrinfo *next = sl->addr ? sl->addr->ai_next : NULL;
        conn_close(run, sl);
        const int again = next ? connect_from(run, sl, next) : error;
        if (again == 0) {
            q_push(&run->connects, &sl->conn_link, mono_ns());
            return;
        }
        connect_failed(run, sl, next ? again : error);
        return;
    }
    sl->connecting = 0;
    q_remove(&run->connects, &sl->conn_link);
    run->stats->connections_opened++;
    watch(run, sl, EPOLLIN);
    if (sl->in_flight)
        try_send(run, sl);
}

/* Writes what is left of the request. */
static void try_send(struct run *run, struct slot *sl)
{
    const size_t total = sl->out_len[0] + sl->out_len[1];
    while (sl->out_off < total) {
        struct iovec iov[2];
        int n_iov = 0;
        size_t off = sl->out_off;
        for (int i = 0; i < 2; i++) {
            if (off >= sl->out_len[i]) {
                off -= sl->out_len[i];
                continue;
            }
            iov[n_iov].iov_base = (void *)(sl->out[i] + off);
            iov[n_iov].iov_len = sl->out_len[i] - off;
            n_iov++;
            off = 0;
        }
        ssize_t n;
        if (n_iov == 1) {
            n = send(sl->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr msg;
            memset(&msg, 0, sizeof msg);
            msg.msg_iov = iov;
            msg.msg_iovlen = (size_t)n_iov;
            n = sendmsg(sl->fd, &msg, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(run, sl, EPOLLIN | EPOLLOUT);
                return;
            }
            conn_broke(run, sl, errno);
            return;
        }
        sl->out_off += (size_t)n;
    }
    if (sl->events & EPOLLOUT)
        watch(run, sl, EPOLLIN);
}

/* ---- slots ---- */

static int slot_new(struct run *run, struct slot **out)
{
    if (run->n_slots >= UINT32_MAX)
        return quarry_errorf(&run->err, QUARRY_ERANGE, "load: too many connections");
    struct slot *sl = calloc(1, sizeof *sl);
    if (!sl)
        return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory");
    sl->run = run;
    sl->fd = -1;
    sl->req_link.owner = sl->conn_link.owner = sl;
    qload_sse_init(&sl->sse, QLOAD_SSE_DEFAULT_MAX_EVENT);
    qload_http_resp_init(&sl->resp);
    if (run->n_slots == run->slots_cap) {
        const size_t ncap = run->slots_cap ? run->slots_cap * 2 : 64;
        struct slot **ns = realloc(run->slots, ncap * sizeof *ns);
        if (ns)
            run->slots = ns;
        struct slot **ni = ns ? realloc(run->idle, ncap * sizeof *ni) : NULL;
        if (ni)
            run->idle = ni;
        struct slot **nn = ni ? realloc(run->next_up, ncap * sizeof *nn) : NULL;
        if (!nn) {
            free(sl);
            return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory");
        }
        run->next_up = nn;
        run->slots_cap = ncap;
    }
    sl->index = (uint32_t)run->n_slots;
    run->slots[run->n_slots++] = sl;
    *out = sl;
    return 0;
}

static void slot_free(struct slot *sl)
{
    if (sl->fd >= 0)
        close(sl->fd);
    qload_sse_free(&sl->sse);
    qload_http_resp_free(&sl->resp);
    free(sl->gaps);
    free(sl->head);
    free(sl->body);
    free(sl);
}

/* An idle slot, made if none is left. */
static int slot_get(struct run *run, struct slot **out)
{
    if (run->n_idle > 0) {
        *out = run->idle[--run->n_idle];
        return 0;
    }
    return slot_new(run, out);
}

/* ---- starting and finishing requests ---- */

static int closed_loop(const struct run *run)
{
    return run->cfg->concurrency > 0;
}

/* POST: this request's body, and its head with the body's length. */
static int build_post(struct run *run, struct slot *sl, uint64_t id, const struct request_head *h)
{
    const struct qload_config *cfg = run->cfg;
    struct qload_record *rec = &sl->rec;
    const int locked = run->sh->n_threads > 1;
    if (locked)
        pthread_mutex_lock(&run->sh->prompts_mu);
    struct qload_prompt pr;
    int rc = qload_prompts_get(cfg->prompts, id, &pr, &run->err);
    char *body = NULL;
    size_t len = 0;
    if (rc == 0) {
        rec->prompt_words = pr.prompt_words;
        rec->max_tokens = pr.max_tokens;
        struct qload_body_opts bo = {
            .api = cfg->api,
            .model = cfg->model,
            .prompt = pr.text,
            .messages_json = pr.messages_json,
            .max_tokens = pr.max_tokens,
            .ignore_eos = cfg->ignore_eos,
        };
        if (cfg->api == QLOAD_API_COMPLETIONS && pr.messages_json && !pr.text) {
            /* a chat entry sent to the completions API: its JSON as the prompt */
            bo.prompt = pr.messages_json;
            bo.messages_json = NULL;
        }
        rc = qload_openai_body(&bo, &body, &len, &run->err);
    }
    if (locked)
        pthread_mutex_unlock(&run->sh->prompts_mu);
    if (rc != 0)
        return rc;
    free(sl->body);
    sl->body = body;
    if (cfg->cancel_ratio > 0) {
        struct qload_rng rng;
        qload_rng_seed(&rng, (cfg->seed ^ 0xca9ce11ULL) * 0x9e3779b97f4a7c15ULL + id);
        if (qload_rng_uniform(&rng) < cfg->cancel_ratio) {
            const int most = pr.max_tokens / 2 > 1 ? pr.max_tokens / 2 : 1;
            rec->cancel_after = (int)qload_rng_range(&rng, 1, most);
        }
    }
    const size_t need = h->len + 48;
    if (need > sl->head_cap) {
        char *nh = realloc(sl->head, need);
        if (!nh)
            return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory");
        sl->head = nh;
        sl->head_cap = need;
    }
    memcpy(sl->head, h->text, h->len);
    const int tail = snprintf(sl->head + h->len, need - h->len, "Content-Length: %zu\r\n\r\n", len);
    sl->out[0] = sl->head;
    sl->out_len[0] = h->len + (size_t)tail;
    sl->out[1] = sl->body;
    sl->out_len[1] = len;
    return 0;
}

/* Hands request `id` to the network on slot sl. Returns 0, or a fatal code
 * (out of memory building the request); failures of the request itself are
 * recorded from the loop. */
static int start_request(struct run *run, struct slot *sl, uint64_t id, int64_t intended_abs)
{
    const struct qload_config *cfg = run->cfg;
    struct qload_record *rec = &sl->rec;
    memset(rec, 0, sizeof *rec);
    rec->id = id;
    rec->tenant = cfg->n_keys > 0 ? (int)(id % (uint64_t)cfg->n_keys) : 0;
    rec->first_token_ns = -1;
    rec->prompt_tokens = rec->completion_tokens = -1;
    rec->max_itl_ns = -1;
    rec->prompt_words = -1;
    sl->saw_done = sl->stream_error = sl->cancelled = sl->aborted = 0;
    sl->retried = 0;
    sl->xerr = XFER_OK;
    sl->error_text[0] = '\0';
    sl->out_off = 0;
    qload_sse_reset(&sl->sse);
    qload_http_resp_reset(&sl->resp);

    const struct request_head *h = &run->sh->heads[rec->tenant % run->sh->n_heads];
    if (cfg->api != QLOAD_API_PLAIN_GET) {
        const int rc = build_post(run, sl, id, h);
        if (rc != 0)
            return rc;
    } else {
        sl->out[0] = h->text;
        sl->out_len[0] = h->len;
        sl->out[1] = NULL;
        sl->out_len[1] = 0;
    }

    const int64_t now = mono_ns();
    rec->sent_ns = now - run->sh->t0;
    /* closed loop: a request is intended when the client sends it */
    rec->intended_ns = closed_loop(run) ? rec->sent_ns : intended_abs - run->sh->t0;
    sl->in_flight = 1;
    run->busy++;
    run->stats->sent++;
    q_push(&run->requests, &sl->req_link, now);
    if (sl->fd >= 0 && !sl->connecting) {
        sl->reused = sl->conn_used;
        try_send(run, sl);
    } else {
        sl->reused = 0;
        if (sl->fd < 0)
            conn_open(run, sl);
    }
    return 0;
}

static enum qload_outcome classify(struct slot *sl)
{
    const struct qload_config *cfg = sl->run->cfg;
    const int st = sl->resp.status;
    if (sl->aborted) {
        snprintf(sl->error_text, sizeof sl->error_text, "still running when the drain time ran out");
        return QLOAD_OUT_ABORTED;
    }
    if (sl->cancelled)
        return QLOAD_OUT_CANCELLED;
    if (st > 0 && (st < 200 || st > 299)) {
        if (sl->error_text[0] == '\0')
            snprintf(sl->error_text, sizeof sl->error_text, "HTTP %d", st);
        return QLOAD_OUT_HTTP;
    }
    switch (sl->xerr) {
    case XFER_OK:
        if (cfg->api == QLOAD_API_PLAIN_GET)
            return QLOAD_OUT_OK;
        if (sl->stream_error)
            return QLOAD_OUT_STREAM_ERROR;
        if (!sl->saw_done) {
            snprintf(sl->error_text, sizeof sl->error_text, "stream ended without data: [DONE]");
            return QLOAD_OUT_TRUNCATED;
        }
        return QLOAD_OUT_OK;
    case XFER_BODY:
        return QLOAD_OUT_STREAM_ERROR;
    case XFER_RESOLVE:
    case XFER_CONNECT:
    case XFER_CONNECT_TIMEOUT:
        return QLOAD_OUT_CONNECT;
    case XFER_TIMEOUT:
        return QLOAD_OUT_TIMEOUT;
    case XFER_CLOSED:
        /* broken after the response began: a cut stream; before: a failed connection */
        return st > 0 ? QLOAD_OUT_TRUNCATED : QLOAD_OUT_CONNECT;
    case XFER_PROTOCOL:
        return QLOAD_OUT_OTHER;
    }
    return QLOAD_OUT_OTHER;
}

static int keep_record(struct run *run, const struct qload_record *rec)
{
    struct qload_records *rs = run->records;
    if (rs->n == rs->cap) {
        const size_t ncap = rs->cap ? rs->cap * 2 : 1024;
        struct qload_record *ni = realloc(rs->items, ncap * sizeof *ni);
        if (!ni)
            return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory keeping records");
        rs->items = ni;
        rs->cap = ncap;
    }
    struct qload_record copy = *rec;
    copy.error_text = NULL;
    copy.itl_ns = NULL;
    if (rec->n_itl > 0) {
        copy.itl_ns = malloc(rec->n_itl * sizeof *copy.itl_ns);
        if (!copy.itl_ns)
            return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory keeping records");
        memcpy(copy.itl_ns, rec->itl_ns, rec->n_itl * sizeof *copy.itl_ns);
    }
    rs->items[rs->n++] = copy;
    return 0;
}

/* Records the request that ended at end_abs; the slot becomes idle (its
 * connection, if still open, stays for the next request). */
static void finish_request(struct run *run, struct slot *sl, int64_t end_abs)
{
    struct qload_record *rec = &sl->rec;
    q_remove(&run->requests, &sl->req_link);
    rec->end_ns = end_abs - run->sh->t0;
    rec->http_status = sl->resp.status;
    rec->outcome = classify(sl);
    rec->error_text = rec->outcome == QLOAD_OUT_OK ? NULL : sl->error_text;
    rec->itl_ns = sl->gaps;
    qload_stats_add(run->stats, rec);
    if (run->records) {
        int rc = keep_record(run, rec);
        if (rc != 0 && run->fatal == 0)
            run->fatal = rc;
    }
    rec->itl_ns = NULL;
    sl->in_flight = 0;
    run->busy--;
    run->idle[run->n_idle++] = sl;
}

/* Whether requests remain to be started (ignoring the in-flight cap). */
static int more_to_start(const struct run *run)
{
    if (run->stopping)
        return 0;
    if (closed_loop(run))
        return !run->exhausted;
    return run->next_sched < run->cfg->schedule_len;
}

/* Closed loop: the next request on sl (an idle slot, taken out of the idle
 * list by the caller), unless the requests have run out. */
static int start_closed(struct run *run, struct slot *sl)
{
    const struct qload_config *cfg = run->cfg;
    const uint64_t id = atomic_fetch_add_explicit(&run->sh->next_id, 1, memory_order_relaxed);
    if (cfg->max_requests > 0 && id >= (uint64_t)cfg->max_requests) {
        run->exhausted = 1;
        run->idle[run->n_idle++] = sl;
        return 0;
    }
    const int rc = start_request(run, sl, id, 0);
    if (rc != 0)
        run->idle[run->n_idle++] = sl;
    return rc;
}

/* A request ended: record it and, in closed loop, line up the client's
 * next one (see the top: on a kept-alive connection it is written when the
 * socket is next reported writable; a client that needs a new connection
 * starts it at the end of this loop turn). */
static void complete(struct run *run, struct slot *sl, int64_t end_abs)
{
    finish_request(run, sl, end_abs);
    if (closed_loop(run) && more_to_start(run) && run->fatal == 0) {
        run->n_idle--; /* take back the slot just released */
        if (sl->fd >= 0) {
            sl->send_when_writable = 1;
            watch(run, sl, EPOLLIN | EPOLLOUT);
        } else {
            run->next_up[run->n_next_up++] = sl;
        }
    }
}

/* Closed loop: the socket of a client waiting to send turned writable (or
 * its idle connection closed). */
static void send_when_writable(struct run *run, struct slot *sl)
{
    sl->send_when_writable = 0;
    if (more_to_start(run) && run->fatal == 0) {
        const int rc = start_closed(run, sl); /* the send drops EPOLLOUT again */
        if (rc != 0 && run->fatal == 0)
            run->fatal = rc;
        if (sl->in_flight)
            return;
    } else {
        run->idle[run->n_idle++] = sl;
    }
    if (sl->fd >= 0) /* not sending after all: stop watching for writability */
        watch(run, sl, EPOLLIN);
}

static void begin_stop(struct run *run, int64_t now);

static void send_next_up(struct run *run)
{
    if (run->n_next_up == 0)
        return;
    const int64_t now = mono_ns();
    if (run->sh->stop_at >= 0 && now >= run->sh->stop_at)
        begin_stop(run, now); /* no request starts after the duration */
    size_t i = 0;
    for (; i < run->n_next_up && more_to_start(run) && run->fatal == 0; i++) {
        const int rc = start_closed(run, run->next_up[i]);
        if (rc != 0 && run->fatal == 0)
            run->fatal = rc;
    }
    for (; i < run->n_next_up; i++) /* no longer wanted */
        run->idle[run->n_idle++] = run->next_up[i];
    run->n_next_up = 0;
}

/* Records the failures queued while starting requests. Those restarted
 * from here may queue new ones: they wait for the next pass. */
static void record_failures(struct run *run)
{
    struct slot *sl = run->failed;
    run->failed = NULL;
    while (sl) {
        struct slot *next = sl->failed_next;
        sl->failed_next = NULL;
        sl->failure_queued = 0;
        complete(run, sl, sl->failed_at);
        sl = next;
    }
}

/* Bytes (or the end) arrived on sl's connection. */
static void on_readable(struct run *run, struct slot *sl)
{
    for (;;) {
        const ssize_t n = read(sl->fd, run->rbuf, READ_BUFFER_BYTES);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_broke(run, sl, errno);
            return;
        }
        const int64_t now = mono_ns(); /* one clock read per piece */
        if (n == 0) {
            if (sl->in_flight && qload_http_eof(&sl->resp) == QLOAD_HTTP_DONE) {
                conn_close(run, sl); /* a body delimited by the close */
                complete(run, sl, now);
            } else {
                conn_broke(run, sl, 0);
            }
            return;
        }
        if (!sl->in_flight) { /* bytes nobody asked for: the connection is out of step */
            conn_close(run, sl);
            return;
        }
        sl->piece_ns = now - run->sh->t0;
        size_t used = 0;
        const int rc = qload_http_feed(&sl->resp, run->rbuf, (size_t)n, &used, on_body, sl);
        if (rc == QLOAD_HTTP_MORE) {
            if ((size_t)n < READ_BUFFER_BYTES)
                return; /* drained: epoll says when more comes */
            continue;
        }
        if (rc == QLOAD_HTTP_DONE) {
            /* reusable only when the exchange ended cleanly on both sides (a
             * server may answer before it has read the whole request) */
            if (used < (size_t)n || !sl->resp.keep_alive || sl->out_off < sl->out_len[0] + sl->out_len[1])
                conn_close(run, sl);
            else
                sl->conn_used = 1;
            complete(run, sl, now);
            return;
        }
        conn_close(run, sl);
        if (rc == QLOAD_HTTP_STOPPED) { /* cancelled on purpose, or an unreadable stream */
            complete(run, sl, now);
            return;
        }
        if (rc == QUARRY_ENOMEM) {
            set_fatal(run, QUARRY_ENOMEM, "out of memory reading a response");
            return;
        }
        snprintf(sl->error_text, sizeof sl->error_text, "malformed response: %s",
                 sl->resp.error ? sl->resp.error : "?");
        sl->xerr = XFER_PROTOCOL;
        complete(run, sl, now);
        return;
    }
}

/* ---- the loop ---- */

/* Open loop: starts every request of this thread whose time has come, as
 * far as the cap allows. */
static int start_due(struct run *run, int64_t now)
{
    const struct qload_config *cfg = run->cfg;
    const size_t stride = (size_t)run->sh->n_threads;
    while (more_to_start(run) && run->sh->t0 + cfg->schedule_ns[run->next_sched] <= now) {
        if (run->max_in_flight > 0 && run->busy >= (size_t)run->max_in_flight)
            break;
        struct slot *sl;
        int rc = slot_get(run, &sl);
        if (rc == 0) {
            const size_t i = run->next_sched;
            run->next_sched += stride;
            rc = start_request(run, sl, i, run->sh->t0 + cfg->schedule_ns[i]);
            if (rc != 0)
                run->idle[run->n_idle++] = sl;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void begin_stop(struct run *run, int64_t now)
{
    if (run->stopping)
        return;
    const size_t len = run->cfg->schedule_len;
    const size_t stride = (size_t)run->sh->n_threads;
    if (!closed_loop(run) && run->next_sched < len) /* queued behind the cap, or simply never reached */
        run->stats->not_sent += (len - run->next_sched + stride - 1) / stride;
    run->stopping = 1;
    run->drain_until = now + run->sh->drain_ns;
}

static void abort_in_flight(struct run *run, int64_t now)
{
    for (size_t i = 0; i < run->n_slots; i++) {
        struct slot *sl = run->slots[i];
        if (!sl->in_flight || sl->failure_queued)
            continue;
        conn_close(run, sl);
        sl->aborted = 1;
        finish_request(run, sl, now);
    }
}

/* Requests and connects whose time is up. */
static void expire(struct run *run, int64_t now)
{
    const struct shared *sh = run->sh;
    while (run->connects.head && run->connects.head->at + sh->connect_timeout_ns <= now) {
        struct slot *sl = run->connects.head->owner;
        conn_close(run, sl);
        snprintf(sl->error_text, sizeof sl->error_text, "no connection to %.100s after %g s",
                 sh->url.authority, run->cfg->connect_timeout_s);
        sl->xerr = XFER_CONNECT_TIMEOUT;
        complete(run, sl, now);
    }
    while (run->requests.head && run->requests.head->at + sh->timeout_ns <= now) {
        struct slot *sl = run->requests.head->owner;
        /* timed out before the request could be sent: the connection never came up */
        const int connected = sl->fd >= 0 && !sl->connecting;
        conn_close(run, sl);
        snprintf(sl->error_text, sizeof sl->error_text, "%s after %g s",
                 connected ? "no complete response" : "no connection", run->cfg->timeout_s);
        sl->xerr = connected ? XFER_TIMEOUT : XFER_CONNECT_TIMEOUT;
        complete(run, sl, now);
    }
}

/* Arms the timerfd for `at` unless it is already armed for a moment not
 * later (a wake-up too early only costs a loop turn). */
static void arm_timer(struct run *run, int64_t at, int64_t now)
{
    if (at < 0 || (run->armed_at >= 0 && run->armed_at <= at && run->armed_at > now))
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = at / 1000000000; /* absolute monotonic times are never 0 */
    its.it_value.tv_nsec = at % 1000000000;
    if (timerfd_settime(run->timerfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        set_fatal(run, QUARRY_EIO, "timerfd_settime failed");
    run->armed_at = at;
}

static int64_t earliest(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static void dispatch(struct run *run, const struct epoll_event *e)
{
    if (e->data.u64 == TIMER_TAG) {
        uint64_t expirations;
        if (read(run->timerfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
            set_fatal(run, QUARRY_EIO, "timerfd read failed");
        run->armed_at = -1;
        return;
    }
    const uint32_t index = (uint32_t)e->data.u64;
    const uint32_t gen = (uint32_t)(e->data.u64 >> 32);
    if (index >= run->n_slots)
        return;
    struct slot *sl = run->slots[index];
    if (sl->gen != gen || sl->fd < 0)
        return; /* about a connection closed since */
    if (sl->connecting) {
        connect_done(run, sl);
        return;
    }
    if (e->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(run, sl); /* may close an idle connection */
    if (sl->send_when_writable) {
        if ((e->events & EPOLLOUT) || sl->fd < 0)
            send_when_writable(run, sl);
        return;
    }
    if ((e->events & EPOLLOUT) && sl->gen == gen && sl->fd >= 0 && sl->in_flight &&
        sl->out_off < sl->out_len[0] + sl->out_len[1])
        try_send(run, sl);
}

static void event_loop(struct run *run)
{
    const struct qload_config *cfg = run->cfg;
    struct shared *sh = run->sh;
    struct epoll_event events[256];
    const int backstop_ms = sh->n_threads > 1 ? 100 : 1000; /* the timerfd wakes us on time */
    for (;;) {
        int64_t now = mono_ns();
        if (run->fatal || atomic_load_explicit(&sh->failed, memory_order_relaxed))
            return;
        if (sh->stop_at >= 0 && now >= sh->stop_at)
            begin_stop(run, now);
        if (run->stopping && now >= run->drain_until) {
            record_failures(run);
            abort_in_flight(run, now);
            return;
        }
        expire(run, now);
        record_failures(run);
        send_next_up(run);
        if (!closed_loop(run)) {
            int rc = start_due(run, now);
            if (rc != 0) {
                run->fatal = rc;
                return;
            }
        }
        if (run->busy == 0 && !more_to_start(run))
            return;
        if (run->rss && run->next_rss >= 0 && now >= run->next_rss) {
            qload_rss_sample(run->rss);
            run->next_rss += (int64_t)llround(cfg->rss_interval_s * 1e9);
            if (run->next_rss <= now)
                run->next_rss = now + (int64_t)llround(cfg->rss_interval_s * 1e9);
        }

        /* sleep until the earliest thing that needs doing */
        int64_t wake = -1;
        if (run->requests.head)
            wake = run->requests.head->at + sh->timeout_ns;
        if (run->connects.head)
            wake = earliest(wake, run->connects.head->at + sh->connect_timeout_ns);
        if (!closed_loop(run) && more_to_start(run) &&
            (run->max_in_flight <= 0 || run->busy < (size_t)run->max_in_flight))
            wake = earliest(wake, sh->t0 + cfg->schedule_ns[run->next_sched]);
        wake = earliest(wake, run->stopping ? run->drain_until : sh->stop_at);
        if (run->rss)
            wake = earliest(wake, run->next_rss);
        int timeout_ms = backstop_ms;
        if (run->failed || (wake >= 0 && wake <= now))
            timeout_ms = 0;
        else
            arm_timer(run, wake, now);
        const int n = epoll_wait(run->epfd, events, (int)(sizeof events / sizeof events[0]), timeout_ms);
        if (n < 0 && errno != EINTR) {
            set_fatal(run, QUARRY_EIO, "epoll_wait failed");
            return;
        }
        for (int i = 0; i < n; i++)
            dispatch(run, &events[i]);
        send_next_up(run);
    }
}

static void *thread_main(void *arg)
{
    struct run *run = arg;
    /* closed loop: every client's first request */
    while (closed_loop(run) && run->n_idle > 0 && more_to_start(run) && run->fatal == 0) {
        struct slot *sl = run->idle[--run->n_idle];
        const int rc = start_closed(run, sl);
        if (rc != 0)
            run->fatal = rc;
    }
    event_loop(run);
    if (run->busy > 0) { /* ended by a failure: the rest count as aborted */
        record_failures(run);
        abort_in_flight(run, mono_ns());
    }
    for (size_t i = 0; i < run->n_next_up; i++) /* ended by a failure: no more requests */
        run->idle[run->n_idle++] = run->next_up[i];
    run->n_next_up = 0;
    if (run->fatal)
        atomic_store(&run->sh->failed, 1);
    return NULL;
}

/* ---- setting up ---- */

static int check_config(const struct qload_config *cfg, int threads, quarry_error *err)
{
    if (!cfg->url || !cfg->url[0])
        return quarry_errorf(err, QUARRY_EINVAL, "load: no URL");
    if (cfg->concurrency < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "load: concurrency must be positive");
    if (cfg->concurrency == 0 && (!cfg->schedule_ns || cfg->schedule_len == 0))
        return quarry_errorf(err, QUARRY_EINVAL, "load: need a concurrency or an arrival schedule");
    if (cfg->concurrency > 0 && cfg->max_requests <= 0 && !(cfg->duration_s > 0))
        return quarry_errorf(err, QUARRY_EINVAL, "load: a closed loop needs --requests or --duration");
    if (!(cfg->timeout_s > 0) || !(cfg->connect_timeout_s > 0) || !(cfg->drain_s >= 0))
        return quarry_errorf(err, QUARRY_EINVAL, "load: timeouts must be positive");
    if (!(cfg->cancel_ratio >= 0 && cfg->cancel_ratio <= 1))
        return quarry_errorf(err, QUARRY_EINVAL, "load: cancel ratio must be in 0..1");
    if (cfg->api != QLOAD_API_PLAIN_GET && !cfg->prompts)
        return quarry_errorf(err, QUARRY_EINVAL, "load: no prompts");
    if (cfg->server_pid > 0 && !(cfg->rss_interval_s > 0))
        return quarry_errorf(err, QUARRY_EINVAL, "load: memory sampling interval must be positive");
    if (threads < 1 || threads > MAX_THREADS)
        return quarry_errorf(err, QUARRY_EINVAL, "load: threads must be in 1..%d", MAX_THREADS);
    if (cfg->concurrency > 0 && cfg->concurrency < threads)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "load: %d threads need at least as many clients (--concurrency)", threads);
    if (cfg->concurrency == 0 && cfg->max_concurrency > 0 && cfg->max_concurrency < threads)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "load: %d threads need a --max-concurrency of at least as many", threads);
    return 0;
}

/* Every request's head, per tenant: GET whole, POST up to its length. */
static int build_heads(struct shared *sh, quarry_error *err)
{
    const struct qload_config *cfg = sh->cfg;
    const int n = cfg->n_keys > 0 ? cfg->n_keys : 1;
    sh->heads = calloc((size_t)n, sizeof *sh->heads);
    if (!sh->heads)
        return quarry_errorf(err, QUARRY_ENOMEM, "load: out of memory");
    sh->n_heads = n;
    for (int t = 0; t < n; t++) {
        const char *key = cfg->n_keys > 0 ? cfg->api_keys[t] : NULL;
        if (key && strpbrk(key, "\r\n"))
            return quarry_errorf(err, QUARRY_EINVAL, "load: an API key holds a line break");
        const int get = cfg->api == QLOAD_API_PLAIN_GET;
        const char *fmt = get ? "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n"
                              : "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: quarry-load\r\n"
                                "Accept: text/event-stream\r\nContent-Type: application/json\r\n%s%s%s";
        const char *k1 = key ? "Authorization: Bearer " : "", *k2 = key ? key : "", *k3 = key ? "\r\n" : "";
        const int len = snprintf(NULL, 0, fmt, sh->url.target, sh->url.authority, k1, k2, k3);
        char *text = len > 0 ? malloc((size_t)len + 1) : NULL;
        if (!text)
            return quarry_errorf(err, QUARRY_ENOMEM, "load: out of memory");
        snprintf(text, (size_t)len + 1, fmt, sh->url.target, sh->url.authority, k1, k2, k3);
        sh->heads[t].text = text;
        sh->heads[t].len = (size_t)len;
    }
    return 0;
}

static int run_setup(struct run *run)
{
    run->epfd = epoll_create1(EPOLL_CLOEXEC);
    run->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    run->rbuf = malloc(READ_BUFFER_BYTES);
    if (!run->rbuf)
        return quarry_errorf(&run->err, QUARRY_ENOMEM, "load: out of memory");
    if (run->epfd < 0 || run->timerfd < 0)
        return quarry_errorf(&run->err, QUARRY_EIO, "load: cannot set up epoll or a timerfd: %s",
                             strerror(errno));
    struct epoll_event tev;
    memset(&tev, 0, sizeof tev);
    tev.events = EPOLLIN;
    tev.data.u64 = TIMER_TAG;
    if (epoll_ctl(run->epfd, EPOLL_CTL_ADD, run->timerfd, &tev) != 0)
        return quarry_errorf(&run->err, QUARRY_EIO, "load: epoll_ctl: %s", strerror(errno));
    for (int i = 0; i < run->clients; i++) {
        struct slot *sl;
        const int rc = slot_new(run, &sl);
        if (rc != 0)
            return rc;
        run->idle[run->n_idle++] = sl;
    }
    return 0;
}

static void run_cleanup(struct run *run)
{
    for (size_t i = 0; i < run->n_slots; i++)
        slot_free(run->slots[i]);
    free(run->slots);
    free(run->idle);
    free(run->next_up);
    free(run->rbuf);
    if (run->timerfd >= 0)
        close(run->timerfd);
    if (run->epfd >= 0)
        close(run->epfd);
}

static int by_end_then_id(const void *a, const void *b)
{
    const struct qload_record *x = a, *y = b;
    if (x->end_ns != y->end_ns)
        return x->end_ns < y->end_ns ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Appends src's records to dst (src emptied). */
static int move_records(struct qload_records *dst, struct qload_records *src, quarry_error *err)
{
    if (src->n == 0)
        return 0;
    if (dst->n + src->n > dst->cap) {
        const size_t ncap = dst->n + src->n;
        struct qload_record *ni = realloc(dst->items, ncap * sizeof *ni);
        if (!ni)
            return quarry_errorf(err, QUARRY_ENOMEM, "load: out of memory keeping records");
        dst->items = ni;
        dst->cap = ncap;
    }
    memcpy(dst->items + dst->n, src->items, src->n * sizeof *src->items);
    dst->n += src->n;
    free(src->items);
    memset(src, 0, sizeof *src);
    return 0;
}

int qload_run(const struct qload_config *cfg, struct qload_stats *stats,
              struct qload_records *records, struct qload_rss *rss, quarry_error *err)
{
    const int n_threads = cfg->threads > 0 ? cfg->threads : 1;
    int rc = check_config(cfg, n_threads, err);
    if (rc != 0)
        return rc;
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    sh.cfg = cfg;
    sh.n_threads = n_threads;
    sh.stop_at = -1;
    atomic_init(&sh.next_id, 0);
    atomic_init(&sh.failed, 0);
    sh.timeout_ns = (int64_t)llround(cfg->timeout_s * 1e9);
    sh.connect_timeout_ns = (int64_t)llround(cfg->connect_timeout_s * 1e9);
    sh.drain_ns = (int64_t)llround(cfg->drain_s * 1e9);
    rc = qload_url_parse(cfg->url, &sh.url, err);
    if (rc != 0)
        return rc;
    if (pthread_mutex_init(&sh.prompts_mu, NULL) != 0)
        return quarry_errorf(err, QUARRY_EIO, "load: cannot make a mutex");
    struct run *runs = calloc((size_t)n_threads, sizeof *runs);
    struct qload_stats *own_stats = calloc((size_t)n_threads, sizeof *own_stats);
    struct qload_records *own_records = calloc((size_t)n_threads, sizeof *own_records);
    int n_stats = 0;
    if (!runs || !own_stats || !own_records) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "load: out of memory");
        goto out;
    }
    for (int k = 0; k < n_threads; k++)
        runs[k].epfd = runs[k].timerfd = -1;
    rc = build_heads(&sh, err);
    if (rc != 0)
        goto out;

    /* the host is resolved once, not per connection */
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    const int gai = getaddrinfo(sh.url.host, sh.url.port, &hints, &sh.addrs);
    if (gai != 0) {
        sh.addrs = NULL;
        snprintf(sh.resolve_error, sizeof sh.resolve_error, "cannot resolve %.100s: %s", sh.url.host,
                 gai_strerror(gai));
    }

    /* the threads: thread 0 records into the caller's stats and records */
    for (int k = 0; k < n_threads; k++) {
        struct run *run = &runs[k];
        run->sh = &sh;
        run->cfg = cfg;
        run->index = k;
        run->armed_at = run->drain_until = run->next_rss = -1;
        if (k == 0) {
            run->stats = stats;
            run->records = cfg->save_detailed ? records : NULL;
            run->rss = cfg->server_pid > 0 ? rss : NULL;
        } else {
            rc = qload_stats_init(&own_stats[k], stats->n_tenants, &stats->slo, err);
            if (rc != 0)
                goto out;
            n_stats = k + 1;
            run->stats = &own_stats[k];
            run->records = cfg->save_detailed ? &own_records[k] : NULL;
        }
        if (cfg->concurrency > 0)
            run->clients = cfg->concurrency / n_threads + (k < cfg->concurrency % n_threads);
        else if (cfg->max_concurrency > 0)
            run->max_in_flight = cfg->max_concurrency / n_threads + (k < cfg->max_concurrency % n_threads);
        run->next_sched = (size_t)k;
        rc = run_setup(run);
        if (rc != 0) {
            *err = run->err;
            goto out;
        }
    }
    if (rss && cfg->server_pid > 0)
        qload_rss_sample(rss);

    sh.t0 = mono_ns();
    if (cfg->duration_s > 0)
        sh.stop_at = sh.t0 + (int64_t)llround(cfg->duration_s * 1e9);
    if (runs[0].rss)
        runs[0].next_rss = sh.t0 + (int64_t)llround(cfg->rss_interval_s * 1e9);
    if (cfg->concurrency == 0)
        stats->schedule_ns = cfg->schedule_ns[cfg->schedule_len - 1];
    if (n_threads == 1) {
        thread_main(&runs[0]);
    } else {
        int started = 0;
        for (; started < n_threads; started++) {
            if (pthread_create(&runs[started].thread, NULL, thread_main, &runs[started]) != 0)
                break;
        }
        if (started < n_threads) {
            atomic_store(&sh.failed, 1);
            runs[started].fatal = quarry_errorf(&runs[started].err, QUARRY_EIO, "load: cannot start a thread");
            for (int k = started + 1; k < n_threads; k++) /* never ran: nothing to record */
                runs[k].fatal = runs[started].fatal;
        }
        for (int k = 0; k < started; k++)
            pthread_join(runs[k].thread, NULL);
    }
    rc = 0;
    for (int k = 0; k < n_threads && rc == 0; k++) {
        if (runs[k].fatal) {
            rc = runs[k].fatal;
            *err = runs[k].err;
        }
    }
    for (int k = 1; k < n_stats; k++)
        qload_stats_merge(stats, &own_stats[k]);
    if (cfg->save_detailed && records && n_threads > 1) {
        for (int k = 1; k < n_threads; k++) {
            const int mr = move_records(records, &own_records[k], err);
            if (mr != 0 && rc == 0)
                rc = mr;
        }
        qsort(records->items, records->n, sizeof *records->items, by_end_then_id);
    }
    if (rss && cfg->server_pid > 0)
        qload_rss_sample(rss);
out:
    if (runs) {
        for (int k = 0; k < n_threads; k++)
            run_cleanup(&runs[k]);
    }
    for (int k = 1; k < n_stats; k++)
        qload_stats_free(&own_stats[k]);
    if (own_records) {
        for (int k = 0; k < n_threads; k++)
            qload_records_free(&own_records[k]);
    }
    free(own_records);
    free(own_stats);
    free(runs);
    for (int t = 0; t < sh.n_heads; t++)
        free(sh.heads[t].text);
    free(sh.heads);
    if (sh.addrs)
        freeaddrinfo(sh.addrs);
    pthread_mutex_destroy(&sh.prompts_mu);
    return rc;
}
