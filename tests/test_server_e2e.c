/*
 * test_server_e2e.c - `quarry serve` end to end: each test starts the real
 * binary (BUILD/quarry, found next to this suite's directory) on 127.0.0.1
 * with an ephemeral port and the bundled stories260K model, talks to it with
 * libcurl, and stops it with SIGTERM, expecting exit status 0 (under
 * `make asan` that also means no leaks).
 *
 * What is checked:
 *   - a greedy completion equals the golden ids of tests/data/stories260K.greedy.txt
 *     (their pieces, from the library's own tokenizer), streamed and not, and
 *     the SSE chunks reassemble to exactly the non-streamed text;
 *   - usage counts equal the tokenizer's counts (completions and chat);
 *   - every error status with OpenAI's JSON error shape: 400, 401 (missing,
 *     invalid, and a key without "Bearer "), 404 (route, model), 405, 413,
 *     429 with Retry-After, 503 when the queue is full;
 *   - 8 concurrent greedy requests give the texts they give one at a time;
 *   - a client that disconnects mid-stream frees its slot (seen in /metrics);
 *   - SIGTERM during a stream ends it cleanly with a final event and [DONE];
 *   - /metrics is valid Prometheus text (tests/prom_text.c) with the counts.
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/server/server.h"
#include "engine/tokenizer.h"
#include "tests/prom_text.h"

#define MODEL "tests/data/stories260K.gguf"
#define GOLDEN "tests/data/stories260K.greedy.txt"
#define SSE_KEEPALIVE ": keepalive\n\n"

static char quarry_bin[PATH_MAX];
static char quarry_load_bin[PATH_MAX];

/* ---- the server process --------------------------------------------------- */

struct server {
    pid_t pid;
    int port;
    char out_path[64], err_path[64];
};

/* A copy of the server a test is running, so that a failing test (cmocka
 * jumps out of it) does not leave the process behind: the teardown kills it.
 * (Tests that run client threads keep their jobs in static storage for the
 * same reason: a thread may outlive a failed test's stack frame.) */
static struct server live_server;
static bool live;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    const struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *read_text(const char *path)
{
    size_t n = 0;
    char *d = tu_read_file(path, &n);
    if (!d)
        return NULL;
    char *s = realloc(d, n + 1);
    if (!s) {
        free(d);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

/* Starts quarry serve with the model, an ephemeral port and extra args;
 * waits until /health says ok. */
static void server_start(struct server *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    snprintf(s->out_path, sizeof s->out_path, "/tmp/quarry-e2e-out-XXXXXX");
    snprintf(s->err_path, sizeof s->err_path, "/tmp/quarry-e2e-err-XXXXXX");
    const int out_fd = mkstemp(s->out_path), err_fd = mkstemp(s->err_path);
    assert_true(out_fd >= 0 && err_fd >= 0);
    const char *argv[40];
    int n = 0;
    argv[n++] = quarry_bin;
    argv[n++] = "serve";
    argv[n++] = "-m";
    argv[n++] = MODEL;
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "-t";
    argv[n++] = "1";
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fflush(NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        execv(quarry_bin, (char *const *)argv);
        _exit(127);
    }
    close(out_fd);
    close(err_fd);
    live_server = *s;
    live = true;
    /* the port is in the first line on stderr */
    const double deadline = now_s() + 20;
    while (s->port == 0) {
        char *err = read_text(s->err_path);
        const char *p = err ? strstr(err, "listening on http://127.0.0.1:") : NULL;
        if (p)
            s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
        free(err);
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            char *e = read_text(s->err_path);
            fail_msg("quarry serve exited at start: %s", e ? e : "");
        }
        if (now_s() > deadline)
            fail_msg("quarry serve did not start");
        if (s->port == 0)
            sleep_ms(10);
    }
    /* ready when "ready" is printed (the engine is attached) */
    for (;;) {
        char *err = read_text(s->err_path);
        const bool ready = err && strstr(err, "quarry serve: ready");
        free(err);
        if (ready)
            break;
        if (now_s() > deadline)
            fail_msg("quarry serve did not load the model");
        sleep_ms(10);
    }
}

/* SIGTERM, then expects exit status 0 within a few seconds. */
static void server_stop(struct server *s)
{
    live = false;
    kill(s->pid, SIGTERM);
    const double deadline = now_s() + 20;
    int status = 0;
    for (;;) {
        const pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (now_s() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            fail_msg("quarry serve did not stop after SIGTERM");
        }
        sleep_ms(10);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *e = read_text(s->err_path);
        fail_msg("quarry serve ended with status 0x%x; stderr:\n%s", status, e ? e : "");
    }
    unlink(s->out_path);
    unlink(s->err_path);
}

static int kill_leftover_server(void **state)
{
    (void)state;
    if (live) {
        live = false;
        kill(live_server.pid, SIGKILL);
        waitpid(live_server.pid, NULL, 0);
        unlink(live_server.out_path);
        unlink(live_server.err_path);
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------- */

struct reply {
    long status;
    char *body;
    size_t len;
    char retry_after[32];
    CURLcode rc;
    /* streaming: abort the transfer once this many content bytes arrived */
    size_t abort_after;
    volatile int got_bytes;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    const size_t len = size * n;
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    b[r->len] = '\0';
    __atomic_store_n(&r->got_bytes, 1, __ATOMIC_SEQ_CST);
    if (r->abort_after && r->len >= r->abort_after)
        return 0; /* hang up */
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    const size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        size_t k = 0;
        for (size_t i = 12; i < len && k + 1 < sizeof r->retry_after; i++)
            if (p[i] >= '0' && p[i] <= '9')
                r->retry_after[k++] = p[i];
        r->retry_after[k] = '\0';
    }
    return len;
}

/* method NULL: GET, or POST when body is given. auth: a whole header line or NULL. */
static void http(int port, const char *method, const char *path, const char *auth,
                 const char *body, struct reply *r)
{
    const size_t abort_after = r->abort_after;
    memset(r, 0, sizeof *r);
    r->abort_after = abort_after;
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth)
        h = curl_slist_append(h, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body)
        r->body = calloc(1, 1);
}

static cJSON *json_of(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("not JSON: %s", s);
    return j;
}

static const char *jstr(const cJSON *j, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(k))
                                 : cJSON_GetObjectItemCaseSensitive(cur, k);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static double jnum(const cJSON *j, const char *obj, const char *key)
{
    const cJSON *o = obj ? cJSON_GetObjectItemCaseSensitive(j, obj) : j;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("no number %s.%s", obj ? obj : "", key);
    return v->valuedouble;
}

/* Expects an OpenAI-shaped error with this status (and code, if given). */
static void expect_error(const struct reply *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("status %ld, wanted %ld: %s", r->status, status, r->body);
    cJSON *j = json_of(r->body);
    const char *msg = jstr(j, "error.message"), *type = jstr(j, "error.type");
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_non_null(type);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                                     "code"));
    if (code) {
        const char *got = jstr(j, "error.code");
        if (!got || strcmp(got, code) != 0)
            fail_msg("error code %s, wanted %s", got ? got : "null", code);
    }
    cJSON_Delete(j);
}

/* ---- SSE ----------------------------------------------------------------------- */

struct stream_result {
    char text[8192];
    size_t len;
    char finish[32];
    bool done;            /* data: [DONE] seen last */
    bool error_event;     /* an {"error":...} event */
    int usage_prompt, usage_completion;
    int n_chunks;
};

static void parse_sse(const char *body, struct stream_result *s)
{
    memset(s, 0, sizeof *s);
    s->usage_prompt = s->usage_completion = -1;
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            fail_msg("SSE ends inside an event: '%s'", p);
        if (s->done)
            fail_msg("data after [DONE]: '%.300s' in a body of %zu bytes", p, strlen(body));
        if (*p == ':') { /* a comment (keep-alive) */
            p = end + 2;
            continue;
        }
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("SSE line without data: '%.40s'", p);
        const size_t n = (size_t)(end - p) - 6;
        char *data = malloc(n + 1);
        assert_non_null(data);
        memcpy(data, p + 6, n);
        data[n] = '\0';
        if (strcmp(data, "[DONE]") == 0) {
            s->done = true;
        } else {
            cJSON *j = json_of(data);
            if (cJSON_GetObjectItemCaseSensitive(j, "error")) {
                s->error_event = true;
            } else {
                s->n_chunks++;
                const cJSON *choice =
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
                const char *t = jstr(j, "choices.0.text");
                if (!t)
                    t = jstr(j, "choices.0.delta.content");
                if (t) {
                    const size_t tl = strlen(t);
                    assert_true(s->len + tl < sizeof s->text);
                    memcpy(s->text + s->len, t, tl);
                    s->len += tl;
                    s->text[s->len] = '\0';
                }
                const char *f = jstr(j, "choices.0.finish_reason");
                if (f)
                    snprintf(s->finish, sizeof s->finish, "%s", f);
                else if (choice)
                    assert_true(cJSON_IsNull(
                        cJSON_GetObjectItemCaseSensitive(choice, "finish_reason")));
                const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
                if (cJSON_IsObject(u)) {
                    s->usage_prompt = (int)jnum(u, NULL, "prompt_tokens");
                    s->usage_completion = (int)jnum(u, NULL, "completion_tokens");
                }
            }
            cJSON_Delete(j);
        }
        free(data);
        p = end + 2;
    }
}

/* ---- expectations from the library itself ------------------------------------- */

struct golden {
    int32_t prompt[16], gen[128];
    int n_prompt, n_gen;
    char text[4096]; /* the generated ids' pieces, concatenated */
};

static void read_ids(const char *txt, const char *tag, int32_t *ids, int cap, int *n)
{
    const char *p = strstr(txt, tag);
    assert_non_null(p);
    p = strchr(p, ':');
    assert_non_null(p);
    p++;
    *n = 0;
    char *end;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == '\n' || !*p)
            break;
        const long v = strtol(p, &end, 10);
        assert_true(end != p && *n < cap);
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
}

static quarry_tokenizer *load_tokenizer(gguf_file **f)
{
    quarry_tokenizer *tok = NULL;
    quarry_error err = {0};
    assert_int_equal(gguf_open(MODEL, f, &err), 0);
    assert_int_equal(quarry_tokenizer_load(*f, &tok, &err), 0);
    return tok;
}

static void load_golden(struct golden *g)
{
    char *txt = read_text(GOLDEN);
    assert_non_null(txt);
    read_ids(txt, "prompt_token_ids", g->prompt, 16, &g->n_prompt);
    read_ids(txt, "generated_token_ids", g->gen, 128, &g->n_gen);
    free(txt);
    gguf_file *f;
    quarry_tokenizer *tok = load_tokenizer(&f);
    /* the text the server streams: each generated id's piece, in order */
    struct quarry_detok_stream ds;
    quarry_detok_stream_init(&ds, tok, false, false);
    size_t len = 0;
    for (int i = 0; i < g->n_gen; i++) {
        size_t n = 0;
        assert_int_equal(quarry_detok_stream_push(&ds, g->gen[i], g->text + len,
                                                  sizeof g->text - len, &n, NULL),
                         0);
        len += n;
    }
    char tail[4];
    const size_t nt = quarry_detok_stream_flush(&ds, tail);
    memcpy(g->text + len, tail, nt);
    g->text[len + nt] = '\0';
    quarry_tokenizer_free(tok);
    gguf_close(f);
}

static size_t count_tokens(const char *text, bool parse_special)
{
    gguf_file *f;
    quarry_tokenizer *tok = load_tokenizer(&f);
    size_t n = 0;
    const int rc = quarry_tokenize(tok, text, strlen(text), true, parse_special, NULL, 0, &n, NULL);
    assert_true(rc == 0 || rc == QUARRY_ERANGE);
    quarry_tokenizer_free(tok);
    gguf_close(f);
    return n;
}

static char *metrics_text(int port)
{
    struct reply r = {0};
    http(port, NULL, "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    char err[256] = "";
    if (prom_check(r.body, err, sizeof err) != 0)
        fail_msg("/metrics is not Prometheus text: %s", err);
    return r.body;
}

static double metric(int port, const char *name, const char *labels)
{
    char *t = metrics_text(port);
    double v = 0;
    if (!prom_value(t, name, labels, &v))
        v = 0; /* a counter that never moved has no sample */
    free(t);
    return v;
}

/* ---- tests ------------------------------------------------------------------------- */

static const char *const default_args[] = {"--parallel", "4", "--ctx", "1024",
                                           "--shutdown-grace", "0", NULL};

static void test_greedy_golden(void **state)
{
    (void)state;
    struct golden g;
    load_golden(&g);
    struct server s;
    server_start(&s, default_args);

    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":%d,"
             "\"temperature\":0}",
             g.n_gen);
    struct reply r = {0};
    http(s.port, NULL, "/v1/completions", NULL, body, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(r.body);
    assert_string_equal(jstr(j, "object"), "text_completion");
    assert_string_equal(jstr(j, "model"), "stories260K");
    assert_true(strncmp(jstr(j, "id"), "cmpl-", 5) == 0);
    assert_true(jnum(j, NULL, "created") > 1.6e9);
    const char *text = jstr(j, "choices.0.text");
    assert_non_null(text);
    assert_string_equal(text, g.text);
    assert_string_equal(jstr(j, "choices.0.finish_reason"), "length");
    /* usage: the real tokenizer's count, and the golden's */
    assert_int_equal((int)jnum(j, "usage", "prompt_tokens"), g.n_prompt);
    assert_int_equal((size_t)jnum(j, "usage", "prompt_tokens"),
                     count_tokens("Once upon a time", false));
    assert_int_equal((int)jnum(j, "usage", "completion_tokens"), g.n_gen);
    assert_int_equal((int)jnum(j, "usage", "total_tokens"), g.n_prompt + g.n_gen);
    cJSON_Delete(j);
    free(r.body);

    /* the same streamed: chunks reassemble to exactly that text */
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":%d,\"temperature\":0,"
             "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             g.n_gen);
    http(s.port, NULL, "/v1/completions", NULL, body, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.rc, CURLE_OK);
    struct stream_result sr;
    parse_sse(r.body, &sr);
    assert_true(sr.done);
    assert_false(sr.error_event);
    assert_string_equal(sr.text, g.text);
    assert_string_equal(sr.finish, "length");
    assert_true(sr.n_chunks > 10); /* really streamed, not one lump */
    assert_int_equal(sr.usage_prompt, g.n_prompt);
    assert_int_equal(sr.usage_completion, g.n_gen);
    free(r.body);

    /* the prompt as token ids gives the same */
    snprintf(body, sizeof body, "{\"prompt\":[%d,%d,%d,%d,%d],\"max_tokens\":%d,\"temperature\":0}",
             g.prompt[0], g.prompt[1], g.prompt[2], g.prompt[3], g.prompt[4], g.n_gen);
    assert_int_equal(g.n_prompt, 5);
    http(s.port, NULL, "/v1/completions", NULL, body, &r);
    assert_int_equal(r.status, 200);
    j = json_of(r.body);
    assert_string_equal(jstr(j, "choices.0.text"), g.text);
    cJSON_Delete(j);
    free(r.body);

    /* chat, streamed and not: same text, usage counted on the rendered template */
    const char *chat = "{\"messages\":[{\"role\":\"system\",\"content\":\"Tell a story.\"},"
                       "{\"role\":\"user\",\"content\":\"A cat\"}],\"max_tokens\":20,"
                       "\"temperature\":0%s}";
    snprintf(body, sizeof body, chat, "");
    http(s.port, NULL, "/v1/chat/completions", NULL, body, &r);
    assert_int_equal(r.status, 200);
    j = json_of(r.body);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    assert_string_equal(jstr(j, "choices.0.message.role"), "assistant");
    char chat_text[4096];
    snprintf(chat_text, sizeof chat_text, "%s", jstr(j, "choices.0.message.content"));
    const struct quarry_chat_message msgs[2] = {{"system", "Tell a story."}, {"user", "A cat"}};
    char *rendered = NULL;
    size_t rlen;
    /* stories260K has no chat template: the server uses the plain format */
    assert_int_equal(quarry_chat_render(QUARRY_CHAT_PLAIN, msgs, 2, true, &rendered, &rlen, NULL),
                     0);
    assert_int_equal((size_t)jnum(j, "usage", "prompt_tokens"), count_tokens(rendered, true));
    free(rendered);
    cJSON_Delete(j);
    free(r.body);
    snprintf(body, sizeof body, chat, ",\"stream\":true");
    http(s.port, NULL, "/v1/chat/completions", NULL, body, &r);
    parse_sse(r.body, &sr);
    assert_true(sr.done);
    assert_string_equal(sr.text, chat_text);
    assert_int_equal(sr.usage_prompt, -1); /* no include_usage: no usage chunk */
    free(r.body);

    server_stop(&s);
}

/* Before a model is attached (quarry serve binds first, then loads), /health
 * answers 503 {"status":"loading"} with Retry-After: 1, /v1/models and the
 * completion routes 503 model_loading, so a client or a load balancer can
 * wait for the server instead of failing. The server runs in this process. */
static void test_loading_is_503(void **state)
{
    (void)state;
    const struct srv_options o = {.host = "127.0.0.1", .port = 0, .model_id = "m"};
    srv_server *srv = NULL;
    quarry_error err = {0};
    assert_int_equal(srv_server_start(&o, &srv, &err), 0);
    const int port = srv_server_port(srv);
    struct reply r = {0};
    http(port, NULL, "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "\"loading\""));
    assert_string_equal(r.retry_after, "1");
    free(r.body);
    r = (struct reply){0};
    http(port, "POST", "/v1/chat/completions", NULL,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "model_loading"));
    assert_string_equal(r.retry_after, "1");
    free(r.body);
    r = (struct reply){0};
    http(port, "POST", "/v1/completions", NULL, "{\"prompt\":\"hi\"}", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "model_loading"));
    free(r.body);
    srv_server_free(srv);
}

static void test_errors(void **state)
{
    (void)state;
    const char *const args[] = {"--max-body", "4096", "--shutdown-grace", "0", NULL};
    struct server s;
    server_start(&s, args);
    struct reply r = {0};
    const char *ok = "{\"prompt\":\"x\",\"max_tokens\":1}";

    http(s.port, NULL, "/v1/completions", NULL, "{\"prompt\":", &r);
    expect_error(&r, 400, "invalid_json");
    free(r.body);
    http(s.port, NULL, "/v1/completions", NULL, "{\"prompt\":\"x\",\"temperature\":\"hot\"}",
         &r);
    expect_error(&r, 400, "invalid_type");
    free(r.body);
    http(s.port, NULL, "/v1/chat/completions", NULL,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":2}", &r);
    expect_error(&r, 400, "invalid_value");
    free(r.body);
    http(s.port, NULL, "/v1/completions", NULL, "{\"prompt\":\"x\",\"n\":3}", &r);
    expect_error(&r, 400, "invalid_value");
    free(r.body);
    http(s.port, NULL, "/v1/completions", NULL, "{\"prompt\":[1,99999]}", &r);
    expect_error(&r, 400, "invalid_value");
    free(r.body);
    /* a prompt longer than the context */
    char *longp = malloc(20000);
    assert_non_null(longp);
    strcpy(longp, "{\"prompt\":\"");
    for (int i = 0; i < 600; i++)
        strcat(longp, "cat ");
    strcat(longp, "\"}");
    http(s.port, NULL, "/v1/completions", NULL, longp, &r);
    expect_error(&r, 400, "context_length_exceeded");
    free(r.body);
    free(longp);

    http(s.port, NULL, "/v1/nothing", NULL, NULL, &r);
    expect_error(&r, 404, "not_found");
    free(r.body);
    http(s.port, NULL, "/v1/completions", NULL, "{\"model\":\"gpt-4\",\"prompt\":\"x\"}", &r);
    expect_error(&r, 404, "model_not_found");
    free(r.body);
    http(s.port, NULL, "/v1/models/gpt-4", NULL, NULL, &r);
    expect_error(&r, 404, "model_not_found");
    free(r.body);

    http(s.port, NULL, "/v1/completions", NULL, NULL, &r); /* GET */
    expect_error(&r, 405, "method_not_allowed");
    free(r.body);
    http(s.port, "POST", "/health", NULL, ok, &r);
    expect_error(&r, 405, "method_not_allowed");
    free(r.body);
    http(s.port, "DELETE", "/v1/chat/completions", NULL, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    free(r.body);

    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, ' ', 9999);
    memcpy(big, ok, strlen(ok));
    big[9999] = '\0';
    http(s.port, NULL, "/v1/completions", NULL, big, &r);
    expect_error(&r, 413, "request_too_large");
    free(r.body);
    free(big);

    /* the server still answers after all that */
    http(s.port, NULL, "/v1/completions", NULL, ok, &r);
    assert_int_equal(r.status, 200);
    free(r.body);

    /* the other GET routes */
    http(s.port, NULL, "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"status\":\"ok\""));
    free(r.body);
    http(s.port, NULL, "/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(r.body);
    assert_string_equal(jstr(j, "data.0.id"), "stories260K");
    assert_int_equal((int)jnum(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 0),
                               NULL, "context_length"),
                     128); /* stories260K's own context */
    cJSON_Delete(j);
    free(r.body);
    http(s.port, NULL, "/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<html"));
    assert_non_null(strstr(r.body, "/v1/chat/completions"));
    free(r.body);

    /* metrics: valid, and counting what happened */
    char *m = metrics_text(s.port);
    double v = 0;
    assert_true(prom_value(m, "quarry_requests_total",
                           "endpoint=\"/v1/completions\",tenant=\"anonymous\",status=\"400\"", &v));
    assert_true(v == 5);
    assert_true(prom_value(m, "quarry_requests_total",
                           "endpoint=\"/v1/completions\",tenant=\"anonymous\",status=\"413\"", &v));
    assert_true(v == 1);
    assert_true(prom_value(m, "quarry_model_loaded", "", &v) && v == 1);
    assert_true(prom_value(m, "quarry_kv_cache_cells_total", "", &v) && v == 4 * 128);
    free(m);
    server_stop(&s);
}

static void test_auth_and_rate_limits(void **state)
{
    (void)state;
    char keys[] = "/tmp/quarry-e2e-keys-XXXXXX";
    const int fd = mkstemp(keys);
    assert_true(fd >= 0);
    const char *content = "# test tenants\n"
                          "sk-limited-1111 limited 3 0 0\n"
                          "sk-free-2222 free 0 0 0\n"
                          "sk-tok-3333 tok 0 30 0\n";
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    const char *const args[] = {"--api-keys", keys, "--log-format", "json", "--shutdown-grace",
                                "0", NULL};
    struct server s;
    server_start(&s, args);
    struct reply r = {0};
    const char *ok = "{\"prompt\":\"x\",\"max_tokens\":2}";

    http(s.port, NULL, "/v1/completions", NULL, ok, &r);
    expect_error(&r, 401, "missing_api_key");
    free(r.body);
    /* the key without "Bearer " must not pass */
    http(s.port, NULL, "/v1/completions", "Authorization: sk-free-2222", ok, &r);
    expect_error(&r, 401, NULL);
    free(r.body);
    http(s.port, NULL, "/v1/completions", "Authorization: Basic sk-free-2222", ok, &r);
    expect_error(&r, 401, NULL);
    free(r.body);
    http(s.port, NULL, "/v1/completions", "Authorization: Bearer sk-free-2223", ok, &r);
    expect_error(&r, 401, "invalid_api_key");
    free(r.body);
    http(s.port, NULL, "/v1/models", "Authorization: Bearer nope", NULL, &r);
    expect_error(&r, 401, "invalid_api_key");
    free(r.body);
    /* open routes stay open */
    http(s.port, NULL, "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    free(r.body);

    /* 3 requests per minute: the 4th is 429 with Retry-After */
    for (int i = 0; i < 3; i++) {
        http(s.port, NULL, "/v1/completions", "Authorization: Bearer sk-limited-1111", ok, &r);
        assert_int_equal(r.status, 200);
        free(r.body);
    }
    http(s.port, NULL, "/v1/completions", "Authorization: Bearer sk-limited-1111", ok, &r);
    expect_error(&r, 429, "rate_limit_exceeded");
    const int retry = atoi(r.retry_after);
    assert_true(retry >= 1 && retry <= 20); /* one request comes back every 20 s */
    free(r.body);
    /* other tenants are not affected */
    for (int i = 0; i < 5; i++) {
        http(s.port, NULL, "/v1/completions", "Authorization: bearer sk-free-2222", ok, &r);
        assert_int_equal(r.status, 200);
        free(r.body);
    }
    /* 30 tokens per minute: a 5-token prompt + 30 generated overdraws, the next waits */
    http(s.port, NULL, "/v1/completions", "Authorization: Bearer sk-tok-3333",
         "{\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0}", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    http(s.port, NULL, "/v1/completions", "Authorization: Bearer sk-tok-3333", ok, &r);
    expect_error(&r, 429, "rate_limit_exceeded");
    assert_true(atoi(r.retry_after) >= 1);
    free(r.body);

    char *m = metrics_text(s.port);
    double v = 0;
    assert_true(prom_value(m, "quarry_rate_limited_total",
                           "tenant=\"limited\",limit=\"requests\"", &v) && v == 1);
    assert_true(prom_value(m, "quarry_rate_limited_total", "tenant=\"tok\",limit=\"tokens\"",
                           &v) && v == 1);
    assert_true(prom_value(m, "quarry_requests_total",
                           "endpoint=\"/v1/completions\",tenant=\"limited\",status=\"200\"", &v) &&
                v == 3);
    assert_true(prom_value(m, "quarry_prompt_tokens_total", "tenant=\"tok\"", &v) && v == 5);
    assert_true(prom_value(m, "quarry_completion_tokens_total", "tenant=\"tok\"", &v) && v == 30);
    free(m);
    /* the access log: one JSON object per request, with the tenant, never a
     * key. 18 requests were made; a line is written when libmicrohttpd
     * reports the request done, which may come just after the client has
     * its answer. */
    char *log = NULL;
    for (const double deadline = now_s() + 5;; sleep_ms(10)) {
        free(log);
        log = read_text(s.out_path);
        assert_non_null(log);
        int nl = 0;
        for (const char *q = log; *q; q++)
            nl += *q == '\n';
        if (nl >= 18 || now_s() > deadline)
            break;
    }
    char *err = read_text(s.err_path);
    assert_non_null(log);
    assert_non_null(err);
    int lines = 0, limited_429 = 0;
    for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        assert_null(strstr(line, "sk-"));
        cJSON *j = json_of(line);
        const char *tenant = jstr(j, "tenant");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        assert_true(cJSON_IsNumber(st));
        assert_non_null(jstr(j, "path"));
        if (tenant && !strcmp(tenant, "limited") && st->valueint == 429)
            limited_429++;
        cJSON_Delete(j);
        lines++;
    }
    assert_int_equal(lines, 18); /* every request above, /metrics included */
    assert_int_equal(limited_429, 1);
    assert_null(strstr(err, "sk-"));
    free(log);
    free(err);
    server_stop(&s);
    unlink(keys);
}

/* ---- concurrency ----------------------------------------------------------------- */

struct job {
    int port;
    char body[512];
    struct reply r;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    http(j->port, NULL, "/v1/completions", NULL, j->body, &j->r);
    return NULL;
}

static void test_concurrent_equals_sequential(void **state)
{
    (void)state;
    static const char *const prompts[8] = {
        "Once upon a time", "The cat", "Lily and Ben", "One day, a little",
        "The sun was", "Tom had a red", "In the park", "She was happy"};
    const char *const args[] = {"--parallel", "8", "--ctx", "256", "--shutdown-grace", "0", NULL};
    struct server s;
    server_start(&s, args);
    static struct job jobs[8];
    static char seq_text[8][4096];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 8; i++) {
        jobs[i].port = s.port;
        jobs[i].r.abort_after = 0;
        snprintf(jobs[i].body, sizeof jobs[i].body,
                 "{\"prompt\":\"%s\",\"max_tokens\":40,\"temperature\":0}", prompts[i]);
        run_job(&jobs[i]);
        assert_int_equal(jobs[i].r.status, 200);
        cJSON *j = json_of(jobs[i].r.body);
        snprintf(seq_text[i], sizeof seq_text[i], "%s", jstr(j, "choices.0.text"));
        cJSON_Delete(j);
        free(jobs[i].r.body);
    }
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(jobs[i].r.status, 200);
        cJSON *j = json_of(jobs[i].r.body);
        const char *text = jstr(j, "choices.0.text");
        if (strcmp(text, seq_text[i]) != 0)
            fail_msg("prompt %d: concurrent '%s' != sequential '%s'", i, text, seq_text[i]);
        cJSON_Delete(j);
        free(jobs[i].r.body);
    }
    /* every request went through the scheduler's queue */
    assert_true(metric(s.port, "quarry_queue_wait_seconds_count", "") == 16);
    server_stop(&s);
}

static void test_queue_full_is_503(void **state)
{
    (void)state;
    const char *const args[] = {"--parallel", "1", "--queue", "1", "--ctx", "4096",
                                "--keepalive", "0.05", "--shutdown-grace", "0", NULL};
    struct server s;
    server_start(&s, args);
    /* a long stream holds the only slot */
    static struct job hold, queued;
    memset(&hold, 0, sizeof hold);
    memset(&queued, 0, sizeof queued);
    hold.port = s.port;
    snprintf(hold.body, sizeof hold.body,
             "{\"prompt\":\"Once\",\"max_tokens\":4000,\"stream\":true,\"temperature\":0}");
    pthread_t t_hold, t_wait;
    assert_int_equal(pthread_create(&t_hold, NULL, run_job, &hold), 0);
    while (!__atomic_load_n(&hold.r.got_bytes, __ATOMIC_SEQ_CST))
        sleep_ms(5);
    /* a second stream waits in the queue, kept alive by SSE comments */
    queued.port = s.port;
    snprintf(queued.body, sizeof queued.body,
             "{\"prompt\":\"The cat\",\"max_tokens\":5,\"stream\":true}");
    assert_int_equal(pthread_create(&t_wait, NULL, run_job, &queued), 0);
    while (!__atomic_load_n(&queued.r.got_bytes, __ATOMIC_SEQ_CST))
        sleep_ms(5);
    assert_true(metric(s.port, "quarry_queued_requests", "") == 1);
    /* the queue is full: the next one is refused at once */
    struct reply r = {0};
    const double t0 = now_s();
    http(s.port, NULL, "/v1/completions", NULL, "{\"prompt\":\"x\",\"max_tokens\":1}", &r);
    expect_error(&r, 503, "overloaded");
    assert_true(now_s() - t0 < 2.0);
    free(r.body);
    server_stop(&s); /* ends both streams with a final event */
    pthread_join(t_hold, NULL);
    pthread_join(t_wait, NULL);
    struct stream_result sr;
    parse_sse(hold.r.body, &sr);
    assert_true(sr.done && sr.error_event);
    /* the queued one only ever saw keep-alive comments, then the end */
    assert_true(strncmp(queued.r.body, SSE_KEEPALIVE, strlen(SSE_KEEPALIVE)) == 0);
    parse_sse(queued.r.body, &sr);
    assert_true(sr.done && sr.error_event);
    assert_int_equal(sr.len, 0);
    free(hold.r.body);
    free(queued.r.body);
}

static int connect_local(int port)
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Seconds until the server closes fd (reading and discarding), or -1 after limit_s. */
static double time_to_close(int fd, double limit_s)
{
    const double t0 = now_s();
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        const int left_ms = (int)((t0 + limit_s - now_s()) * 1000);
        if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0)
            return -1;
        char buf[512];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return now_s() - t0;
    }
}

static void test_connection_limits(void **state)
{
    (void)state;
    const char *const args[] = {"--timeout", "1", "--max-connections", "2", "--shutdown-grace",
                                "0", NULL};
    struct server s;
    server_start(&s, args);
    /* a client that never finishes its headers is dropped after the timeout */
    const double t0 = now_s();
    const int slow = connect_local(s.port);
    const char *partial = "GET /health HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(slow, partial, strlen(partial), 0), (ssize_t)strlen(partial));
    const int second = connect_local(s.port);
    /* a third connection is over --max-connections: it waits, unserved, until
     * the idle ones are timed out */
    sleep_ms(50);
    const int third = connect_local(s.port);
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(third, req, strlen(req), 0), (ssize_t)strlen(req));
    struct pollfd p = {.fd = third, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 400), 0); /* nothing for 0.4 s */
    char buf[1024];
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 5000), 1);
    const ssize_t n = recv(third, buf, sizeof buf - 1, 0);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    const double served = now_s() - t0;
    assert_true(served >= 0.5 && served < 5); /* after the 1 s timeout freed a place */
    const double t1 = time_to_close(slow, 5);
    assert_true(t1 >= 0); /* the slow one was closed by then */
    close(slow);
    close(second);
    close(third);
    sleep_ms(50);
    struct reply r = {0};
    http(s.port, NULL, "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    server_stop(&s);
}

static void test_disconnect_frees_slot(void **state)
{
    (void)state;
    const char *const args[] = {"--parallel", "2", "--ctx", "4096", "--shutdown-grace", "0",
                                NULL};
    struct server s;
    server_start(&s, args);
    struct reply r = {0};
    r.abort_after = 2000; /* hang up after a few chunks */
    http(s.port, NULL, "/v1/completions", NULL,
         "{\"prompt\":\"Once upon a time\",\"max_tokens\":4000,\"stream\":true,"
         "\"temperature\":0}",
         &r);
    assert_int_equal(r.rc, CURLE_WRITE_ERROR);
    free(r.body);
    /* the slot and its cache are freed promptly */
    const double deadline = now_s() + 5;
    for (;;) {
        const double active = metric(s.port, "quarry_active_sequences", "");
        const double used = metric(s.port, "quarry_kv_cache_cells_used", "");
        const double cancelled =
            metric(s.port, "quarry_cancelled_requests_total", "reason=\"disconnect\"");
        if (active == 0 && used == 0 && cancelled == 1)
            break;
        if (now_s() > deadline)
            fail_msg("slot not freed: active %g, kv used %g, cancelled %g", active, used,
                     cancelled);
        sleep_ms(20);
    }
    /* it did not run to the end: far fewer than 4000 tokens were generated */
    assert_true(metric(s.port, "quarry_completion_tokens_total", "tenant=\"anonymous\"") < 2000);
    /* a non-streamed request whose client gives up is dropped too */
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", s.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                     "{\"prompt\":\"Once\",\"max_tokens\":4000,\"temperature\":0}");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    struct reply sink = {0};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    assert_int_equal(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(c);
    free(sink.body);
    const double deadline2 = now_s() + 5;
    while (metric(s.port, "quarry_cancelled_requests_total", "reason=\"disconnect\"") < 2 ||
           metric(s.port, "quarry_active_sequences", "") != 0) {
        if (now_s() > deadline2)
            fail_msg("non-streamed request not cancelled");
        sleep_ms(20);
    }
    server_stop(&s);
}

static void test_sigterm_during_stream(void **state)
{
    (void)state;
    const char *const args[] = {"--ctx", "4096", "--shutdown-grace", "0", NULL};
    struct server s;
    server_start(&s, args);
    static struct job j;
    memset(&j, 0, sizeof j);
    j.port = s.port;
    snprintf(j.body, sizeof j.body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":4000,\"stream\":true,"
             "\"temperature\":0}");
    pthread_t t;
    memset(&j.r, 0, sizeof j.r);
    assert_int_equal(pthread_create(&t, NULL, run_job, &j), 0);
    while (!__atomic_load_n(&j.r.got_bytes, __ATOMIC_SEQ_CST))
        sleep_ms(5);
    server_stop(&s); /* SIGTERM; exit status 0 */
    pthread_join(t, NULL);
    assert_int_equal(j.r.status, 200);
    assert_int_equal(j.r.rc, CURLE_OK); /* the chunked body ended properly */
    struct stream_result sr;
    parse_sse(j.r.body, &sr);
    assert_true(sr.done);        /* ends with data: [DONE] */
    assert_true(sr.error_event); /* after an event saying why */
    assert_true(sr.len > 0);
    free(j.r.body);
}

/* A short run of the load generator against the real server on the bundled
 * model: the result JSON has its fields, every request is accounted for
 * (sent = ok + cancelled + errors), and the server's own counters (scraped by
 * quarry-load before and after) agree with what the client saw. */
static void test_load_generator_agrees_with_server(void **state)
{
    (void)state;
    if (access(quarry_load_bin, X_OK) != 0)
        fail_msg("quarry-load not found at %s (build it: make all)", quarry_load_bin);
    struct server s;
    server_start(&s, default_args);
    char url[64], out[64] = "/tmp/quarry-e2e-load-XXXXXX";
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    const int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    const char *argv[] = {quarry_load_bin, "--url", url, "--model", "stories260K",
                          "--concurrency", "4", "--requests", "24", "--max-tokens", "8",
                          "--prompt-tokens", "8", "--quiet", "--output", out, NULL};
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(quarry_load_bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *text = read_text(out);
    unlink(out);
    assert_non_null(text);
    cJSON *doc = json_of(text);
    free(text);
    const cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "results"), 0);
    assert_non_null(run);
    const double sent = jnum(run, "requests", "sent"), ok = jnum(run, "requests", "ok"),
                 cancelled = jnum(run, "requests", "cancelled"),
                 errors = jnum(run, "requests", "errors");
    assert_true(sent == 24 && ok == 24 && cancelled == 0 && errors == 0);
    assert_true(sent == ok + cancelled + errors);
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(run, "latency_ms");
    for (const char *const *k = (const char *const[]){"ttft", "itl", "tpot", "e2e", NULL}; *k; k++) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(lat, *k);
        assert_non_null(h);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(h, "p50")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(h, "p99")));
    }
    assert_true(jnum(lat, "e2e", "p50") >= jnum(lat, "ttft", "p50"));
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(run, "tokens");
    const double prompt = cJSON_GetObjectItemCaseSensitive(tokens, "total_prompt")->valuedouble;
    const double completion =
        cJSON_GetObjectItemCaseSensitive(tokens, "total_completion")->valuedouble;
    assert_true(completion == 24 * 8);
    /* the server counted the same requests and tokens during the run */
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "server_metrics"), "delta");
    assert_non_null(delta);
    const char *req_key =
        "quarry_requests_total{endpoint=\"/v1/completions\",tenant=\"anonymous\",status=\"200\"}";
    const cJSON *served = cJSON_GetObjectItemCaseSensitive(delta, req_key);
    if (!cJSON_IsNumber(served))
        fail_msg("no %s in the server's /metrics delta", req_key);
    assert_true(served->valuedouble == ok);
    assert_true(
        cJSON_GetObjectItemCaseSensitive(delta, "quarry_prompt_tokens_total{tenant=\"anonymous\"}")
            ->valuedouble == prompt);
    assert_true(cJSON_GetObjectItemCaseSensitive(
                    delta, "quarry_completion_tokens_total{tenant=\"anonymous\"}")
                    ->valuedouble == completion);
    assert_true(cJSON_GetObjectItemCaseSensitive(delta, "quarry_time_to_first_token_seconds_count")
                    ->valuedouble == ok);
    cJSON_Delete(doc);
    server_stop(&s);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* BUILD/tests/test_server_e2e -> BUILD/quarry */
    char self[PATH_MAX - 16];
    snprintf(self, sizeof self, "%s", argv[0]);
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(self, sizeof self, ".");
    snprintf(quarry_bin, sizeof quarry_bin, "%s/../quarry", self);
    snprintf(quarry_load_bin, sizeof quarry_load_bin, "%s/../quarry-load", self);
    if (access(quarry_bin, X_OK) != 0) {
        fprintf(stderr, "quarry not found at %s (build it: make all)\n", quarry_bin);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_greedy_golden, kill_leftover_server),
        cmocka_unit_test_teardown(test_load_generator_agrees_with_server, kill_leftover_server),
        cmocka_unit_test(test_loading_is_503),
        cmocka_unit_test_teardown(test_errors, kill_leftover_server),
        cmocka_unit_test_teardown(test_auth_and_rate_limits, kill_leftover_server),
        cmocka_unit_test_teardown(test_concurrent_equals_sequential, kill_leftover_server),
        cmocka_unit_test_teardown(test_queue_full_is_503, kill_leftover_server),
        cmocka_unit_test_teardown(test_connection_limits, kill_leftover_server),
        cmocka_unit_test_teardown(test_disconnect_frees_slot, kill_leftover_server),
        cmocka_unit_test_teardown(test_sigterm_during_stream, kill_leftover_server),
    };
    const int failed = TU_RUN_GROUP(tests);
    curl_global_cleanup();
    return failed;
}
