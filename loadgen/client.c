/*
 * client.c - the load generator's event loop (see client.h).
 *
 * One thread, one epoll set. libcurl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when it next needs a timeout call
 * (CURLMOPT_TIMERFUNCTION); our own deadlines (the next arrival in open loop,
 * the end of the run, the end of the drain, the next memory sample) and
 * libcurl's timeout share one timerfd armed at the earliest of them, so the
 * loop wakes to the microsecond without spinning. Each request in flight
 * owns a slot: an easy handle (reused, so its connection stays alive), an
 * SSE parser, its record and a buffer of inter-token gaps.
 */
#include "loadgen/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/rng.h"
#include "loadgen/sse.h"

#ifdef CURL_WRITEFUNC_ERROR
#define WRITE_ABORT CURL_WRITEFUNC_ERROR
#else
#define WRITE_ABORT 0
#endif

struct run;

struct slot {
    struct run *run;
    CURL *easy;
    int in_flight;
    struct qload_record rec;      /* times relative to run->t0 */
    int64_t *gaps;                /* inter-token gaps of the current request */
    size_t gaps_cap;
    int64_t last_token_ns;
    int64_t piece_ns;             /* arrival time of the bytes being parsed */
    int64_t header_ns;            /* arrival of the first response header line, -1 none */
    char *body;
    struct qload_sse sse;
    int status_known;
    long status;
    int saw_done, stream_error, cancelled, aborted;
    char curl_msg[CURL_ERROR_SIZE];
    char error_text[256];
};

struct run {
    const struct qload_config *cfg;
    struct qload_stats *stats;
    struct qload_records *records;
    struct qload_rss *rss;
    quarry_error *err;
    int fatal;                     /* a negative code that ends the run */

    CURLM *multi;
    int epfd, timerfd;
    int64_t t0;                    /* CLOCK_MONOTONIC ns at the start */
    int64_t curl_timer_at;         /* absolute ns libcurl wants a timeout call, -1 none */
    int64_t armed_at;              /* what the timerfd is armed for, -1 disarmed */

    struct slot **slots;           /* every slot created */
    size_t n_slots, slots_cap;
    struct slot **idle;            /* slots not in flight */
    size_t n_idle;
    size_t busy;

    struct curl_slist **headers;   /* one header list per tenant */
    int n_headers;

    uint64_t next_id;              /* closed loop: requests issued */
    size_t next_sched;             /* open loop: schedule entries issued */
    int stopping;                  /* no more requests start */
    int64_t stop_at;               /* absolute ns the duration ends, -1 none */
    int64_t drain_until;           /* absolute ns in-flight requests are aborted, -1 none */
    int64_t next_rss;              /* absolute ns of the next memory sample, -1 none */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *qload_curl_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->version ? v->version : "?";
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
        run->fatal = quarry_errorf(run->err, code, "load: %s", what);
}

/* ---- per-request callbacks (called by libcurl) ---- */

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

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct slot *sl = userdata;
    struct run *run = sl->run;
    const size_t n = size * nmemb;
    sl->rec.bytes_received += (int64_t)n;
    if (!sl->status_known) {
        long code = 0;
        curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &code);
        sl->status = code;
        sl->status_known = 1;
    }
    if (sl->status < 200 || sl->status > 299) {
        if (sl->error_text[0] == '\0') {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "HTTP %ld: ", sl->status);
            snippet(sl->error_text, sizeof sl->error_text, prefix, ptr, n);
        }
        return n;
    }
    if (run->cfg->api == QLOAD_API_PLAIN_GET)
        return n;
    sl->piece_ns = mono_ns() - run->t0;
    const int rc = qload_sse_feed(&sl->sse, ptr, n, on_event, sl, NULL);
    if (rc == QLOAD_SSE_STOPPED)
        return WRITE_ABORT; /* a planned cancellation: close the connection mid-stream */
    if (rc < 0) {
        sl->stream_error = 1;
        snprintf(sl->error_text, sizeof sl->error_text, "SSE: %s",
                 rc == QUARRY_ERANGE ? "event larger than the limit" : "out of memory");
        return WRITE_ABORT;
    }
    return n;
}

/* The first header line's arrival anchors libcurl's own timings to our clock
 * (see finish_request). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    struct slot *sl = userdata;
    if (sl->header_ns < 0)
        sl->header_ns = mono_ns() - sl->run->t0;
    return size * nmemb;
}

/* ---- libcurl's socket and timer hooks ---- */

/* libcurl forgets a socket's assigned pointer when it removes the socket, so
 * a non-NULL socketp means "already in the epoll set". */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct run *run = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(run->epfd, EPOLL_CTL_DEL, s, NULL); /* may already be closed: ignore */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = s;
    int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(run->epfd, op, s, &ev);
    if (rc != 0 && (errno == ENOENT || errno == EEXIST)) { /* out of step: the other way round */
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        rc = epoll_ctl(run->epfd, op, s, &ev);
    }
    if (rc != 0)
        set_fatal(run, QUARRY_EIO, "epoll_ctl failed on a socket");
    else if (!socketp)
        curl_multi_assign(run->multi, s, run);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct run *run = userp;
    run->curl_timer_at = timeout_ms < 0 ? -1 : mono_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

/* ---- slots ---- */

static int slot_new(struct run *run, struct slot **out)
{
    const struct qload_config *cfg = run->cfg;
    struct slot *sl = calloc(1, sizeof *sl);
    if (!sl)
        return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory");
    sl->run = run;
    qload_sse_init(&sl->sse, QLOAD_SSE_DEFAULT_MAX_EVENT);
    sl->easy = curl_easy_init();
    if (!sl->easy) {
        free(sl);
        return quarry_errorf(run->err, QUARRY_ENOMEM, "load: curl_easy_init failed");
    }
    CURL *e = sl->easy;
    int ok = 1;
    ok &= curl_easy_setopt(e, CURLOPT_URL, cfg->url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)llround(cfg->timeout_s * 1000.0)) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                           (long)llround(cfg->connect_timeout_s * 1000.0)) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, sl) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, sl) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, sl) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, sl->curl_msg) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK; /* never through an environment proxy */
    ok &= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK;
    if (cfg->api == QLOAD_API_PLAIN_GET)
        ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (!ok) {
        curl_easy_cleanup(e);
        free(sl);
        return quarry_errorf(run->err, QUARRY_EINVAL, "load: libcurl rejected an option");
    }
    if (run->n_slots == run->slots_cap) {
        const size_t ncap = run->slots_cap ? run->slots_cap * 2 : 64;
        struct slot **ns = realloc(run->slots, ncap * sizeof *ns);
        struct slot **ni = ns ? realloc(run->idle, ncap * sizeof *ni) : NULL;
        if (ns)
            run->slots = ns;
        if (!ns || !ni) {
            curl_easy_cleanup(e);
            free(sl);
            return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory");
        }
        run->idle = ni;
        run->slots_cap = ncap;
    }
    run->slots[run->n_slots++] = sl;
    *out = sl;
    return 0;
}

static void slot_free(struct slot *sl)
{
    if (!sl)
        return;
    curl_easy_cleanup(sl->easy);
    qload_sse_free(&sl->sse);
    free(sl->gaps);
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

static int start_request(struct run *run, struct slot *sl, uint64_t id, int64_t intended_abs)
{
    const struct qload_config *cfg = run->cfg;
    struct qload_record *rec = &sl->rec;
    memset(rec, 0, sizeof *rec);
    rec->id = id;
    rec->tenant = cfg->n_keys > 0 ? (int)(id % (uint64_t)cfg->n_keys) : 0;
    rec->intended_ns = intended_abs - run->t0;
    rec->first_token_ns = -1;
    rec->prompt_tokens = rec->completion_tokens = -1;
    rec->max_itl_ns = -1;
    rec->prompt_words = -1;
    sl->status_known = 0;
    sl->status = 0;
    sl->header_ns = -1;
    sl->saw_done = sl->stream_error = sl->cancelled = sl->aborted = 0;
    sl->curl_msg[0] = '\0';
    sl->error_text[0] = '\0';
    qload_sse_reset(&sl->sse);

    if (cfg->api != QLOAD_API_PLAIN_GET) {
        struct qload_prompt pr;
        int rc = qload_prompts_get(cfg->prompts, id, &pr, run->err);
        if (rc != 0)
            return rc;
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
        char *body = NULL;
        size_t len = 0;
        rc = qload_openai_body(&bo, &body, &len, run->err);
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
        curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDS, sl->body);
    }
    if (run->n_headers > 0 && run->headers[rec->tenant % run->n_headers])
        curl_easy_setopt(sl->easy, CURLOPT_HTTPHEADER, run->headers[rec->tenant % run->n_headers]);

    rec->sent_ns = mono_ns() - run->t0;
    if (curl_multi_add_handle(run->multi, sl->easy) != CURLM_OK)
        return quarry_errorf(run->err, QUARRY_EIO, "load: curl_multi_add_handle failed");
    sl->in_flight = 1;
    run->busy++;
    run->stats->sent++;
    return 0;
}

static enum qload_outcome classify(struct slot *sl, CURLcode res)
{
    const struct qload_config *cfg = sl->run->cfg;
    const long st = sl->status;
    if (sl->aborted) {
        snprintf(sl->error_text, sizeof sl->error_text, "still running when the drain time ran out");
        return QLOAD_OUT_ABORTED;
    }
    if (sl->cancelled)
        return QLOAD_OUT_CANCELLED;
    if (st > 0 && (st < 200 || st > 299)) {
        if (sl->error_text[0] == '\0')
            snprintf(sl->error_text, sizeof sl->error_text, "HTTP %ld", st);
        return QLOAD_OUT_HTTP;
    }
    if (res == CURLE_OK) {
        if (cfg->api == QLOAD_API_PLAIN_GET)
            return QLOAD_OUT_OK;
        if (sl->stream_error)
            return QLOAD_OUT_STREAM_ERROR;
        if (!sl->saw_done) {
            snprintf(sl->error_text, sizeof sl->error_text, "stream ended without data: [DONE]");
            return QLOAD_OUT_TRUNCATED;
        }
        return QLOAD_OUT_OK;
    }
    if (sl->error_text[0] == '\0')
        snprintf(sl->error_text, sizeof sl->error_text, "%.80s%s%.160s", curl_easy_strerror(res),
                 sl->curl_msg[0] ? ": " : "", sl->curl_msg);
    switch (res) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return QLOAD_OUT_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: {
        /* timed out before the request could be sent: the connection never came up */
        curl_off_t pretransfer_us = 0;
        if (curl_easy_getinfo(sl->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us) == CURLE_OK &&
            pretransfer_us == 0)
            return QLOAD_OUT_CONNECT;
        return QLOAD_OUT_TIMEOUT;
    }
    case CURLE_WRITE_ERROR:
        return sl->stream_error ? QLOAD_OUT_STREAM_ERROR : QLOAD_OUT_OTHER;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        /* broken after the response began: a cut stream; before: a failed connection */
        return st > 0 ? QLOAD_OUT_TRUNCATED : QLOAD_OUT_CONNECT;
    default:
        return QLOAD_OUT_OTHER;
    }
}

static int keep_record(struct run *run, const struct qload_record *rec)
{
    struct qload_records *rs = run->records;
    if (rs->n == rs->cap) {
        const size_t ncap = rs->cap ? rs->cap * 2 : 1024;
        struct qload_record *ni = realloc(rs->items, ncap * sizeof *ni);
        if (!ni)
            return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory keeping records");
        rs->items = ni;
        rs->cap = ncap;
    }
    struct qload_record copy = *rec;
    copy.error_text = NULL;
    copy.itl_ns = NULL;
    if (rec->n_itl > 0) {
        copy.itl_ns = malloc(rec->n_itl * sizeof *copy.itl_ns);
        if (!copy.itl_ns)
            return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory keeping records");
        memcpy(copy.itl_ns, rec->itl_ns, rec->n_itl * sizeof *copy.itl_ns);
    }
    rs->items[rs->n++] = copy;
    return 0;
}

/* Records a request that libcurl has finished (or that we aborted); the slot
 * becomes idle. */
static void finish_request(struct run *run, struct slot *sl, CURLcode res)
{
    struct qload_record *rec = &sl->rec;
    rec->end_ns = mono_ns() - run->t0;
    rec->curl_code = (int)res;
    /* When did the request really start? libcurl measures the first response
     * byte from the moment it began the transfer (before any connection
     * setup); the first header line arrived at header_ns on our clock, so
     * the transfer began at header_ns - starttransfer. That moment, not the
     * earlier hand-over to libcurl, is when the request was sent: in closed
     * loop latencies start there (the client's own lag before sending is not
     * the server's), in open loop it ends the queue time (latencies still
     * start at the intended time). */
    curl_off_t first_byte_us = 0;
    if (sl->header_ns >= 0 &&
        curl_easy_getinfo(sl->easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte_us) == CURLE_OK &&
        first_byte_us > 0) {
        const int64_t began = sl->header_ns - (int64_t)first_byte_us * 1000;
        if (began > rec->sent_ns && began <= sl->header_ns) {
            rec->sent_ns = began;
            if (closed_loop(run))
                rec->intended_ns = began;
        }
    }
    if (!sl->status_known) {
        long code = 0;
        curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &code);
        sl->status = code;
    }
    rec->http_status = (int)sl->status;
    long connects = 0;
    if (curl_easy_getinfo(sl->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
        run->stats->connections_opened += (uint64_t)connects;
    rec->outcome = classify(sl, res);
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

/* ---- the loop ---- */

/* Whether requests remain to be started (ignoring the in-flight cap). */
static int more_to_start(const struct run *run)
{
    if (run->stopping)
        return 0;
    if (closed_loop(run))
        return run->cfg->max_requests <= 0 || run->next_id < (uint64_t)run->cfg->max_requests;
    return run->next_sched < run->cfg->schedule_len;
}

static int start_closed(struct run *run, struct slot *sl)
{
    const uint64_t id = run->next_id++;
    return start_request(run, sl, id, mono_ns());
}

/* Open loop: starts every request whose time has come, as far as the cap allows. */
static int start_due(struct run *run, int64_t now)
{
    const struct qload_config *cfg = run->cfg;
    while (more_to_start(run) && run->t0 + cfg->schedule_ns[run->next_sched] <= now) {
        if (cfg->max_concurrency > 0 && run->busy >= (size_t)cfg->max_concurrency)
            break;
        struct slot *sl;
        int rc = slot_get(run, &sl);
        if (rc == 0) {
            const size_t i = run->next_sched++;
            rc = start_request(run, sl, i, run->t0 + cfg->schedule_ns[i]);
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
    run->stopping = 1;
    run->drain_until = now + (int64_t)llround(run->cfg->drain_s * 1e9);
    if (!closed_loop(run)) /* queued behind the cap, or simply never reached */
        run->stats->not_sent += run->cfg->schedule_len - run->next_sched;
}

static void abort_in_flight(struct run *run)
{
    for (size_t i = 0; i < run->n_slots; i++) {
        struct slot *sl = run->slots[i];
        if (!sl->in_flight)
            continue;
        curl_multi_remove_handle(run->multi, sl->easy);
        sl->aborted = 1;
        finish_request(run, sl, CURLE_ABORTED_BY_CALLBACK);
    }
}

static void read_done(struct run *run)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(run->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        const CURLcode res = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct slot *sl = (struct slot *)priv;
        curl_multi_remove_handle(run->multi, easy); /* msg is invalid from here */
        if (!sl || !sl->in_flight)
            continue;
        finish_request(run, sl, res);
        if (closed_loop(run) && more_to_start(run) && run->fatal == 0) {
            run->n_idle--; /* take back the slot just released */
            int rc = start_closed(run, sl);
            if (rc != 0) {
                run->idle[run->n_idle++] = sl;
                run->fatal = rc;
            }
        }
    }
}

static void arm_timer(struct run *run, int64_t at)
{
    if (at == run->armed_at)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (at >= 0) { /* absolute monotonic times are never 0, which would disarm */
        its.it_value.tv_sec = at / 1000000000;
        its.it_value.tv_nsec = at % 1000000000;
    }
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

static void curl_action(struct run *run, curl_socket_t fd, int flags)
{
    int running = 0;
    if (curl_multi_socket_action(run->multi, fd, flags, &running) != CURLM_OK)
        set_fatal(run, QUARRY_EIO, "curl_multi_socket_action failed");
}

static void event_loop(struct run *run)
{
    const struct qload_config *cfg = run->cfg;
    struct epoll_event events[256];
    for (;;) {
        int64_t now = mono_ns();
        if (run->fatal)
            return;
        if (run->stop_at >= 0 && now >= run->stop_at)
            begin_stop(run, now);
        if (run->stopping && now >= run->drain_until) {
            abort_in_flight(run);
            return;
        }
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
        int64_t wake = run->curl_timer_at;
        if (!closed_loop(run) && more_to_start(run) &&
            (cfg->max_concurrency <= 0 || run->busy < (size_t)cfg->max_concurrency))
            wake = earliest(wake, run->t0 + cfg->schedule_ns[run->next_sched]);
        if (!run->stopping)
            wake = earliest(wake, run->stop_at);
        else
            wake = earliest(wake, run->drain_until);
        if (run->rss)
            wake = earliest(wake, run->next_rss);
        int timeout_ms = 1000; /* a backstop: the timerfd wakes us on time */
        if (wake >= 0 && wake <= now)
            timeout_ms = 0;
        else
            arm_timer(run, wake);
        const int n = epoll_wait(run->epfd, events, (int)(sizeof events / sizeof events[0]), timeout_ms);
        if (n < 0 && errno != EINTR) {
            set_fatal(run, QUARRY_EIO, "epoll_wait failed");
            return;
        }
        for (int i = 0; i < n; i++) {
            const int fd = events[i].data.fd;
            if (fd == run->timerfd) {
                uint64_t expirations;
                if (read(run->timerfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    set_fatal(run, QUARRY_EIO, "timerfd read failed");
                run->armed_at = -1;
                continue;
            }
            const uint32_t ev = events[i].events;
            int flags = 0;
            if (ev & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (ev & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (ev & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            curl_action(run, fd, flags);
            read_done(run); /* at once, so a finished request's end time is not held up by the rest */
        }
        if (run->curl_timer_at >= 0 && mono_ns() >= run->curl_timer_at) {
            run->curl_timer_at = -1;
            curl_action(run, CURL_SOCKET_TIMEOUT, 0);
        }
        read_done(run);
    }
}

static int check_config(const struct qload_config *cfg, quarry_error *err)
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
    return 0;
}

static int build_headers(struct run *run)
{
    const struct qload_config *cfg = run->cfg;
    const int n = cfg->n_keys > 0 ? cfg->n_keys : 1;
    run->headers = calloc((size_t)n, sizeof *run->headers);
    if (!run->headers)
        return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory");
    run->n_headers = n;
    for (int t = 0; t < n; t++) {
        struct curl_slist *h = NULL, *next;
        int ok = 1;
#define ADD_HEADER(text)                       \
    do {                                       \
        next = ok ? curl_slist_append(h, text) : NULL; \
        if (next)                              \
            h = next;                          \
        else                                   \
            ok = 0;                            \
    } while (0)
        if (cfg->api != QLOAD_API_PLAIN_GET) {
            ADD_HEADER("Content-Type: application/json");
            ADD_HEADER("Accept: text/event-stream");
        }
        if (cfg->api != QLOAD_API_PLAIN_GET)
            ADD_HEADER("Expect:"); /* no 100-continue round trip for large bodies */
        if (cfg->n_keys > 0) {
            const size_t len = strlen(cfg->api_keys[t]) + 32;
            char *line = malloc(len);
            if (line) {
                snprintf(line, len, "Authorization: Bearer %s", cfg->api_keys[t]);
                ADD_HEADER(line);
                free(line);
            } else {
                ok = 0;
            }
        }
#undef ADD_HEADER
        run->headers[t] = h;
        if (!ok)
            return quarry_errorf(run->err, QUARRY_ENOMEM, "load: out of memory");
    }
    return 0;
}

static void run_cleanup(struct run *run)
{
    for (size_t i = 0; i < run->n_slots; i++) {
        struct slot *sl = run->slots[i];
        if (sl->in_flight && run->multi)
            curl_multi_remove_handle(run->multi, sl->easy);
        slot_free(sl);
    }
    free(run->slots);
    free(run->idle);
    if (run->multi)
        curl_multi_cleanup(run->multi);
    for (int t = 0; t < run->n_headers; t++)
        curl_slist_free_all(run->headers[t]);
    free(run->headers);
    if (run->timerfd >= 0)
        close(run->timerfd);
    if (run->epfd >= 0)
        close(run->epfd);
}

int qload_run(const struct qload_config *cfg, struct qload_stats *stats,
              struct qload_records *records, struct qload_rss *rss, quarry_error *err)
{
    int rc = check_config(cfg, err);
    if (rc != 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return quarry_errorf(err, QUARRY_EIO, "load: curl_global_init failed");
    struct run run;
    memset(&run, 0, sizeof run);
    run.cfg = cfg;
    run.stats = stats;
    run.records = cfg->save_detailed ? records : NULL;
    run.rss = cfg->server_pid > 0 ? rss : NULL;
    run.err = err;
    run.epfd = run.timerfd = -1;
    run.curl_timer_at = run.armed_at = -1;
    run.stop_at = run.drain_until = run.next_rss = -1;

    run.epfd = epoll_create1(EPOLL_CLOEXEC);
    run.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    run.multi = curl_multi_init();
    if (run.epfd < 0 || run.timerfd < 0 || !run.multi) {
        rc = quarry_errorf(err, QUARRY_EIO, "load: cannot set up epoll, timerfd or libcurl: %s",
                           strerror(errno));
        goto out;
    }
    struct epoll_event tev;
    memset(&tev, 0, sizeof tev);
    tev.events = EPOLLIN;
    tev.data.fd = run.timerfd;
    if (epoll_ctl(run.epfd, EPOLL_CTL_ADD, run.timerfd, &tev) != 0) {
        rc = quarry_errorf(err, QUARRY_EIO, "load: epoll_ctl: %s", strerror(errno));
        goto out;
    }
    long max_conns = 10000;
    if (cfg->concurrency > 0)
        max_conns = cfg->concurrency;
    else if (cfg->max_concurrency > 0)
        max_conns = cfg->max_concurrency;
    curl_multi_setopt(run.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(run.multi, CURLMOPT_SOCKETDATA, &run);
    curl_multi_setopt(run.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(run.multi, CURLMOPT_TIMERDATA, &run);
    curl_multi_setopt(run.multi, CURLMOPT_MAXCONNECTS, max_conns);
    curl_multi_setopt(run.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    rc = build_headers(&run);
    if (rc != 0)
        goto out;
    /* closed loop: every client's slot up front */
    for (int i = 0; i < cfg->concurrency; i++) {
        struct slot *sl;
        rc = slot_new(&run, &sl);
        if (rc != 0)
            goto out;
        run.idle[run.n_idle++] = sl;
    }
    if (run.rss)
        qload_rss_sample(run.rss);

    run.t0 = mono_ns();
    if (cfg->duration_s > 0)
        run.stop_at = run.t0 + (int64_t)llround(cfg->duration_s * 1e9);
    if (run.rss)
        run.next_rss = run.t0 + (int64_t)llround(cfg->rss_interval_s * 1e9);
    if (!closed_loop(&run))
        stats->schedule_ns = cfg->schedule_ns[cfg->schedule_len - 1];
    for (int i = 0; i < cfg->concurrency && more_to_start(&run); i++) {
        struct slot *sl = run.idle[--run.n_idle];
        rc = start_closed(&run, sl);
        if (rc != 0) {
            run.idle[run.n_idle++] = sl;
            goto out;
        }
    }
    event_loop(&run);
    rc = run.fatal;
    if (run.busy > 0) /* ended by a failure: the rest count as aborted */
        abort_in_flight(&run);
    if (run.rss)
        qload_rss_sample(run.rss);
out:
    run_cleanup(&run);
    curl_global_cleanup();
    return rc;
}
