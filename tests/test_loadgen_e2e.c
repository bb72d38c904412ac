/*
 * test_loadgen_e2e.c - quarry-load end to end: the real binary (built next
 * to this suite, ../quarry-load) against the fake OpenAI server
 * (tests/fake_openai_server.h) on an ephemeral 127.0.0.1 port. Each test
 * starts a server with known delays and faults, runs quarry-load with
 * --output, and checks the JSON result against what the server did: counts
 * (sent = ok + cancelled + errors, errors by kind), TTFT and inter-token
 * gaps consistent with the server's delays, usage tokens, keep-alive
 * connection reuse, open-loop queueing counted in latency, cancellations
 * seen by the server, tenants, timeouts, the drain limit, /metrics
 * before/after, resident-memory sampling and the --fail-if exit status.
 * Also unit checks of the pieces the run depends on (length specs, shared
 * prefixes, SLO and threshold parsing, the HTTP/1.1 response parser and
 * URLs). Several event-loop threads (--threads) must add up to the same
 * counts as one, and a scripted raw-socket server checks the HTTP framings
 * the fake server does not produce (close-delimited bodies, chunk
 * extensions and trailers, a server that drops kept-alive connections).
 *
 * Timing bounds are one-sided where the physics is (a TTFT can never be
 * shorter than the server's delay) and generous on the other side, because
 * the suites share a small machine with other work.
 *
 * `test_loadgen_e2e --serve [FIRST_MS TOKEN_MS N_CHUNKS [HEALTH_DELAY_US]]`
 * instead runs the fake server until SIGINT/SIGTERM, printing its port on
 * stdout (used by tools/loadgen-vs-wrk.sh).
 */
#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "loadgen/http1.h"
#include "loadgen/prompts.h"
#include "loadgen/stats.h"
#include "loadgen/thresholds.h"
#include "tests/fake_openai_server.h"

static char tmpdir[256];
static char loadgen_bin[PATH_MAX];
static int run_counter;

/* ---- helpers ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup_all(void **state)
{
    (void)state;
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(loadgen_bin, sizeof loadgen_bin, "%s/../quarry-load", self);
    if (access(loadgen_bin, X_OK) != 0) {
        fprintf(stderr, "quarry-load not found at %s (build it: make all)\n", loadgen_bin);
        return -1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/quarry-loadgen-e2e-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

struct fixture {
    struct fake_server *srv;
    uint16_t port;
    char url[64];
};

static void start_server(struct fixture *f, const struct fake_server_opts *o)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(fake_server_start(o, &f->srv, &f->port), 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", (unsigned)f->port);
}

/* Runs quarry-load with args (NULL-terminated) plus --output; returns its
 * exit status and the parsed JSON (NULL when it wrote none). The log holds
 * its table and messages. */
static int run_load(const char *const *args, cJSON **doc)
{
    char out[PATH_MAX], log[PATH_MAX];
    const int k = run_counter++;
    snprintf(out, sizeof out, "%s/run%d.json", tmpdir, k);
    snprintf(log, sizeof log, "%s/run%d.log", tmpdir, k);
    const char *argv[64];
    int n = 0;
    argv[n++] = loadgen_bin;
    for (int i = 0; args[i] && n < 60; i++)
        argv[n++] = args[i];
    argv[n++] = "--output";
    argv[n++] = out;
    argv[n] = NULL;
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(loadgen_bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    /* a watchdog: no run here should take a minute */
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (waited > 60000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("quarry-load did not finish in 60 s");
        }
        sleep_ms(10);
    }
    size_t len = 0;
    char *text = tu_read_file(log, &len);
    if (text && len > 0)
        printf("---- quarry-load log (%s) ----\n%s", log, text);
    free(text);
    *doc = NULL;
    text = tu_read_file(out, &len);
    if (text) {
        const char *end = NULL;
        *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        free(text);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* doc.path (dot-separated, array indices as numbers) -> item, fails the test when missing. */
static const cJSON *at(const cJSON *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = doc;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(cur)) {
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        } else {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        }
        if (!cur)
            fail_msg("JSON path %s: '%s' missing", path, tok);
    }
    return cur;
}

static double num(const cJSON *doc, const char *path)
{
    const cJSON *v = at(doc, path);
    if (!cJSON_IsNumber(v))
        fail_msg("JSON path %s is not a number", path);
    return v->valuedouble;
}

static const cJSON *summary(const cJSON *doc)
{
    return at(doc, "results.0");
}

static void check_counts_add_up(const cJSON *doc)
{
    const cJSON *s = summary(doc);
    const double sent = num(s, "requests.sent");
    const double ok = num(s, "requests.ok");
    const double cancelled = num(s, "requests.cancelled");
    const double errors = num(s, "requests.errors");
    assert_true(sent == ok + cancelled + errors);
    /* the error kinds add up to the errors */
    double kinds = 0;
    const cJSON *by = at(s, "requests.by_outcome");
    for (const cJSON *k = by->child; k; k = k->next)
        if (strcmp(k->string, "ok") != 0 && strcmp(k->string, "cancelled") != 0)
            kinds += k->valuedouble;
    assert_true(kinds == errors);
}

/* Waits (up to 3 s) for the server's counters to satisfy pred. */
static void settle_counts(struct fake_server *srv, struct fake_server_counts *c,
                          int (*pred)(const struct fake_server_counts *, uint64_t), uint64_t arg)
{
    for (int i = 0; i < 300; i++) {
        fake_server_counts(srv, c);
        if (pred(c, arg))
            return;
        sleep_ms(10);
    }
}

static int completed_at_least(const struct fake_server_counts *c, uint64_t n)
{
    return c->streams_completed >= n;
}

static int dropped_at_least(const struct fake_server_counts *c, uint64_t n)
{
    return c->streams_dropped >= n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* ---- end-to-end runs ---- */

/* Closed loop against known delays: counts, TTFT >= server delay, gaps
 * around the server's token interval, usage tokens, keep-alive reuse,
 * /metrics before and after, and the result's metadata. */
static void test_closed_loop_completions(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 30, .token_ms = 5, .n_chunks = 8};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--concurrency", "4", "--requests", "40",
                          "--prompt-tokens", "16", "--max-tokens", "8", NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    struct fake_server_counts c;
    settle_counts(f.srv, &c, completed_at_least, 40);
    fake_server_stop(f.srv);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.sent") == 40);
    assert_true(num(s, "requests.ok") == 40);
    assert_true(num(s, "requests.errors") == 0);
    assert_true(num(s, "requests.http_status.200") == 40);
    assert_int_equal(c.posts, 40);
    assert_int_equal(c.streams_completed, 40);

    /* TTFT: never below the server's 30 ms; the initial empty chunk (sent at
     * once) must not count as the first token */
    assert_true(num(s, "latency_ms.ttft.count") == 40);
    assert_true(num(s, "latency_ms.ttft.min") >= 30.0);
    assert_true(num(s, "latency_ms.ttft.p50") < 30.0 + 60.0);
    /* 7 gaps per request; the server releases chunk k at 30 + 5k ms, so the
     * gaps average 5 ms whatever the jitter of single chunks */
    assert_true(num(s, "latency_ms.itl.count") == 40 * 7);
    const double itl_mean = num(s, "latency_ms.itl.mean");
    assert_true(itl_mean >= 4.5 && itl_mean < 5.0 + 10.0);
    const double tpot = num(s, "latency_ms.tpot.mean");
    assert_true(tpot >= 4.5 && tpot < 5.0 + 10.0);
    /* e2e covers the first token and the 7 gaps */
    assert_true(num(s, "latency_ms.e2e.min") >= 30.0 + 7 * 5.0);
    assert_true(num(s, "latency_ms.e2e.p50") >= num(s, "latency_ms.ttft.p50"));
    /* usage: 16 prompt words, 8 completion tokens per request */
    assert_true(num(s, "tokens.prompt.mean") == 16);
    assert_true(num(s, "tokens.completion.mean") == 8);
    assert_true(num(s, "tokens.total_completion") == 320);
    /* keep-alive: 4 clients need 4 connections for 40 requests */
    const double conns = num(s, "connections_opened");
    assert_true(conns >= 1 && conns <= 4);
    assert_true(num(s, "requests_per_s") > 0);
    /* /metrics scraped before and after: the difference is this run */
    assert_true(num(doc, "server_metrics.delta.fake_requests_total") == 40);
    assert_true(cJSON_IsNull(at(doc, "server_metrics.error")));
    /* metadata */
    assert_string_equal(at(doc, "config.mode")->valuestring, "closed");
    assert_true(num(doc, "config.concurrency") == 4);
    assert_true(cJSON_IsString(at(doc, "build.libcurl")));
    assert_true(cJSON_IsObject(at(doc, "machine")));
    assert_true(cJSON_IsTrue(at(doc, "complete")));
    /* the raw buckets add up to the count */
    double in_buckets = 0;
    for (const cJSON *b = at(s, "latency_ms.ttft.buckets")->child; b; b = b->next)
        in_buckets += cJSON_GetArrayItem(b, 1)->valuedouble;
    assert_true(in_buckets == 40);
    cJSON_Delete(doc);
}

/* Open loop, constant arrivals: the schedule's span, no queueing. */
static void test_open_loop_constant(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 5, .token_ms = 1, .n_chunks = 2};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--rate", "100", "--arrival", "constant", "--requests", "30",
                          "--max-tokens", "2", NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    fake_server_stop(f.srv);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.ok") == 30);
    /* 30 requests 10 ms apart: the last is due at 290 ms */
    assert_true(fabs(num(s, "schedule_span_s") - 0.29) < 1e-6);
    const double dur = num(s, "duration_s");
    assert_true(dur >= 0.29 + 0.005 && dur < 2.0);
    assert_string_equal(at(doc, "config.mode")->valuestring, "open");
    assert_string_equal(at(doc, "config.arrival")->valuestring, "constant");
    cJSON_Delete(doc);
}

/* Open loop with a cap of 1 in flight and a server slower than the arrivals:
 * requests queue in the client, and their TTFT counts from the intended time
 * (queue time included), not from when they were finally sent. */
static void test_open_loop_queue_counts_in_latency(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 30, .token_ms = 1, .n_chunks = 1};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--rate", "100", "--arrival", "constant", "--requests", "20",
                          "--max-concurrency", "1", "--max-tokens", "1", "--save-detailed", NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    fake_server_stop(f.srv);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    assert_true(num(s, "requests.ok") == 20);
    /* each request takes >= 30 ms, arrivals every 10 ms: request k waits at
     * least k * 20 ms */
    assert_true(num(s, "latency_ms.queue.max") >= 19 * 20.0);
    const cJSON *recs = at(doc, "requests");
    assert_int_equal(cJSON_GetArraySize(recs), 20);
    for (const cJSON *r = recs->child; r; r = r->next) {
        const double id = num(r, "id");
        const double q = num(r, "queue_ms");
        const double ttft = num(r, "ttft_ms");
        assert_true(q >= id * 20.0 - 1.0);          /* k * (30 - 10) ms of backlog */
        assert_true(ttft >= q + 30.0);              /* queue + the server's delay */
        assert_true(num(r, "e2e_ms") >= ttft);
        assert_true(fabs(num(r, "intended_ms") - id * 10.0) < 1e-3);
    }
    cJSON_Delete(doc);
}

/* Injected faults are counted by kind and sent = ok + errors. */
static void test_errors_by_kind(void **state)
{
    (void)state;
    const struct fake_server_opts so = {
        .first_token_ms = 2, .token_ms = 1, .n_chunks = 8, .fail_every = 5, .truncate_every = 7, .cut_every = 11};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--concurrency", "2", "--requests", "40", "--max-tokens", "8", NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    fake_server_stop(f.srv);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    /* by arrival order 1..40: 500 for multiples of 5 (8); no [DONE] for
     * multiples of 7 that are not of 5 (7, 14, 21, 28); cut connections for
     * multiples of 11 not already taken (11, 22, 33) */
    assert_true(num(s, "requests.by_outcome.http_status") == 8);
    assert_true(num(s, "requests.by_outcome.truncated") == 4 + 3);
    assert_true(num(s, "requests.ok") == 40 - 15);
    assert_true(num(s, "requests.errors") == 15);
    assert_true(num(s, "requests.http_status.500") == 8);
    assert_true(num(s, "requests.http_status.200") == 32);
    assert_non_null(strstr(at(s, "requests.error_examples.http_status")->valuestring, "HTTP 500"));
    /* latencies only from the successful requests */
    assert_true(num(s, "latency_ms.ttft.count") == 25);
    cJSON_Delete(doc);
}

/* A share of requests cancelled mid-stream: counted as cancelled, and the
 * server sees each of those connections go away. */
static void test_cancel_ratio(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 2, .token_ms = 4, .n_chunks = 16};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--concurrency", "4", "--requests", "40", "--max-tokens", "16",
                          "--cancel-ratio", "0.5", "--save-detailed", NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    const double cancelled = num(s, "requests.cancelled");
    assert_true(cancelled >= 10 && cancelled <= 30); /* 40 draws of p = 0.5 */
    assert_true(num(s, "requests.ok") + cancelled == 40);
    /* every cancelled record stopped at its planned chunk */
    for (const cJSON *r = at(doc, "requests")->child; r; r = r->next) {
        if (strcmp(at(r, "outcome")->valuestring, "cancelled") == 0) {
            const double after = num(r, "cancel_after");
            assert_true(after >= 1 && after <= 8);
            assert_true(num(r, "output_chunks") == after);
        }
    }
    struct fake_server_counts c;
    settle_counts(f.srv, &c, dropped_at_least, (uint64_t)cancelled);
    fake_server_stop(f.srv);
    assert_int_equal(c.streams_dropped, (uint64_t)cancelled);
    assert_int_equal(c.streams_completed + c.streams_dropped, 40);
    cJSON_Delete(doc);
}

/* --fail-if: exit 2 when broken, 0 when not, 1 for a bad condition. */
static void test_fail_if_exit_status(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 20, .token_ms = 1, .n_chunks = 2};
    struct fixture f;
    start_server(&f, &so);
    cJSON *doc;
    const char *broken[] = {"--url", f.url, "--requests", "3", "--max-tokens", "2", "--fail-if",
                            "p50_ttft>1", NULL};
    assert_int_equal(run_load(broken, &doc), 2);
    assert_non_null(doc);
    const cJSON *th = at(summary(doc), "thresholds.0");
    assert_true(cJSON_IsTrue(at(th, "broken")));
    assert_true(num(th, "value") >= 20.0);
    cJSON_Delete(doc);
    const char *fine[] = {"--url", f.url, "--requests", "3", "--max-tokens", "2", "--fail-if",
                          "p99_ttft>100000,error_rate>0.5", "--fail-if", "rps<0.001", NULL};
    assert_int_equal(run_load(fine, &doc), 0);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(at(summary(doc), "thresholds")), 3);
    cJSON_Delete(doc);
    const char *bad[] = {"--url", f.url, "--requests", "3", "--fail-if", "p42_ttft>1", NULL};
    assert_int_equal(run_load(bad, &doc), 1);
    assert_null(doc);
    cJSON_Delete(doc);
    fake_server_stop(f.srv);
}

/* Chat endpoint, a keys file (tenants) and a JSONL prompts file whose
 * max_tokens the server honours. */
static void test_chat_tenants_and_prompts_file(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 2, .token_ms = 1, .n_chunks = 0};
    struct fixture f;
    start_server(&f, &so);
    char keys[PATH_MAX], prompts[PATH_MAX];
    snprintf(keys, sizeof keys, "%s/keys.txt", tmpdir);
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", tmpdir);
    write_file(keys, "# tenants\nk1\n\nk2\n  k3  \n");
    write_file(prompts, "{\"prompt\": \"one two three\", \"max_tokens\": 3}\n"
                        "\n"
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"a b c d e\"}], \"max_tokens\": 5}\n"
                        "{\"prompt\": \"x\", \"max_tokens\": 7}\n");
    const char *args[] = {"--url", f.url, "--endpoint", "/v1/chat/completions", "--concurrency", "3",
                          "--requests", "30", "--api-keys-file", keys, "--prompts-file", prompts, NULL};
    cJSON *doc;
    const int rc = run_load(args, &doc);
    struct fake_server_counts c;
    fake_server_counts(f.srv, &c);
    fake_server_stop(f.srv);
    assert_int_equal(rc, 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    assert_true(num(s, "requests.ok") == 30);
    /* prompts used in turn: 10 x (3 + 5 + 7) output tokens, 10 x (3 + 5 + 1) prompt words */
    assert_true(num(s, "tokens.total_completion") == 150);
    assert_true(num(s, "tokens.total_prompt") == 90);
    /* three tenants, ten requests each, as the server saw them */
    assert_int_equal(c.n_keys, 3);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "Bearer k%d", i + 1);
        int found = 0;
        for (int j = 0; j < c.n_keys; j++)
            if (strcmp(c.keys[j], want) == 0) {
                found = 1;
                assert_int_equal(c.key_posts[j], 10);
            }
        assert_true(found);
    }
    assert_int_equal(cJSON_GetArraySize(at(s, "tenants")), 3);
    for (int t = 0; t < 3; t++) {
        char path[32];
        snprintf(path, sizeof path, "tenants.%d.sent", t);
        assert_true(num(s, path) == 10);
    }
    assert_string_equal(at(doc, "config.api")->valuestring, "chat");
    cJSON_Delete(doc);
}

/* Nothing listening: every request is a connect error, and the run still ends. */
static void test_connect_errors(void **state)
{
    (void)state;
    /* a port that was free a moment ago */
    const struct fake_server_opts so = {0};
    struct fixture f;
    start_server(&f, &so);
    fake_server_stop(f.srv);
    const char *args[] = {"--url", f.url, "--concurrency", "2", "--requests", "6", "--metrics-path", "none",
                          NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.sent") == 6);
    assert_true(num(s, "requests.by_outcome.connect") == 6);
    assert_true(num(s, "requests.http_status.none") == 6);
    cJSON_Delete(doc);
}

/* A server slower than --timeout: timeouts. */
static void test_timeouts(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 2000, .token_ms = 1, .n_chunks = 2};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--concurrency", "2", "--requests", "4", "--timeout", "0.1", NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    fake_server_stop(f.srv);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.by_outcome.timeout") == 4);
    assert_true(num(s, "duration_s") < 1.5);
    cJSON_Delete(doc);
}

/* --duration ends the sending; --drain bounds the wait for the rest. */
static void test_duration_and_drain(void **state)
{
    (void)state;
    struct fixture f;
    const struct fake_server_opts quick = {.first_token_ms = 10, .token_ms = 1, .n_chunks = 2};
    start_server(&f, &quick);
    const char *args[] = {"--url", f.url, "--concurrency", "2", "--duration", "0.5", "--max-tokens", "2", NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    fake_server_stop(f.srv);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.sent") >= 10);
    assert_true(num(s, "requests.ok") == num(s, "requests.sent"));
    const double dur = num(s, "duration_s");
    assert_true(dur >= 0.5 && dur < 2.0);
    cJSON_Delete(doc);

    const struct fake_server_opts slow = {.first_token_ms = 5000, .token_ms = 1, .n_chunks = 2};
    start_server(&f, &slow);
    const char *args2[] = {"--url", f.url, "--concurrency", "2", "--duration", "0.2", "--drain", "0.1", NULL};
    assert_int_equal(run_load(args2, &doc), 0);
    fake_server_stop(f.srv);
    assert_non_null(doc);
    s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.by_outcome.aborted") == 2);
    assert_true(num(s, "duration_s") >= 0.3 && num(s, "duration_s") < 1.5);
    cJSON_Delete(doc);
}

/* --server-pid: this process hosts the server, so its memory is sampled. */
static void test_server_rss(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 5, .token_ms = 5, .n_chunks = 4};
    struct fixture f;
    start_server(&f, &so);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *args[] = {"--url", f.url, "--concurrency", "2", "--requests", "10", "--max-tokens", "4",
                          "--server-pid", pid, "--rss-interval-ms", "10", NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    fake_server_stop(f.srv);
    assert_non_null(doc);
    const double start = num(doc, "server_rss.start_bytes");
    const double peak = num(doc, "server_rss.peak_bytes");
    const double end = num(doc, "server_rss.end_bytes");
    assert_true(start > 0 && peak >= start && peak >= end && end > 0);
    assert_true(num(doc, "server_rss.samples") >= 3);
    assert_true(num(doc, "server_rss.pid") == getpid());
    cJSON_Delete(doc);
}

/* A plain GET endpoint (what the wrk comparison uses), answering after 1 ms. */
static void test_plain_get(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.health_delay_us = 1000};
    struct fixture f;
    start_server(&f, &so);
    const char *args[] = {"--url", f.url, "--endpoint", "/health", "--concurrency", "4", "--requests", "200",
                          NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    struct fake_server_counts c;
    fake_server_counts(f.srv, &c);
    fake_server_stop(f.srv);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    assert_true(num(s, "requests.ok") == 200);
    assert_int_equal(c.health, 200);
    assert_true(num(s, "latency_ms.e2e.count") == 200);
    assert_true(num(s, "latency_ms.e2e.min") >= 1.0);
    assert_true(num(s, "latency_ms.e2e.p50") < 1.0 + 20.0);
    assert_true(num(s, "connections_opened") <= 4);
    assert_string_equal(at(doc, "config.api")->valuestring, "get");
    cJSON_Delete(doc);
}

/* Several event loops (--threads): the clients are spread over them and the
 * merged counts are what one loop would report. */
static void test_threads(void **state)
{
    (void)state;
    const struct fake_server_opts so = {.first_token_ms = 2, .token_ms = 1, .n_chunks = 4,
                                        .health_delay_us = 200};
    struct fixture f;
    start_server(&f, &so);
    cJSON *doc;
    /* closed loop, plain GET: 5 clients over 2 threads */
    const char *get[] = {"--url", f.url, "--endpoint", "/health", "--concurrency", "5", "--threads", "2",
                         "--requests", "400", "--metrics-path", "none", NULL};
    assert_int_equal(run_load(get, &doc), 0);
    assert_non_null(doc);
    const cJSON *s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.sent") == 400);
    assert_true(num(s, "requests.ok") == 400);
    assert_true(num(s, "latency_ms.e2e.count") == 400);
    assert_true(num(s, "latency_ms.e2e.min") >= 0.2);
    const double conns = num(s, "connections_opened");
    assert_true(conns >= 2 && conns <= 5);
    assert_true(num(doc, "config.threads") == 2);
    cJSON_Delete(doc);
    /* closed loop, streamed completions (the prompts are shared between threads) */
    const char *post[] = {"--url", f.url, "--concurrency", "4", "--threads", "3", "--requests", "30",
                          "--max-tokens", "4", "--prompt-tokens", "9", "--save-detailed", NULL};
    assert_int_equal(run_load(post, &doc), 0);
    assert_non_null(doc);
    s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.ok") == 30);
    assert_true(num(s, "tokens.total_completion") == 30 * 4);
    assert_true(num(s, "tokens.total_prompt") == 30 * 9);
    assert_true(num(s, "latency_ms.itl.count") == 30 * 3);
    assert_true(num(s, "latency_ms.ttft.min") >= 2.0);
    /* every request id once, in the merged records */
    const cJSON *recs = at(doc, "requests");
    assert_int_equal(cJSON_GetArraySize(recs), 30);
    int seen[30] = {0};
    for (const cJSON *r = recs->child; r; r = r->next) {
        const int id = (int)num(r, "id");
        assert_true(id >= 0 && id < 30);
        seen[id]++;
    }
    for (int i = 0; i < 30; i++)
        assert_int_equal(seen[i], 1);
    cJSON_Delete(doc);
    /* open loop: the schedule is split between the threads, the cap too */
    const char *open[] = {"--url", f.url, "--endpoint", "/health", "--rate", "400", "--arrival", "constant",
                          "--requests", "40", "--threads", "3", "--max-concurrency", "3", "--metrics-path",
                          "none", NULL};
    assert_int_equal(run_load(open, &doc), 0);
    assert_non_null(doc);
    s = summary(doc);
    check_counts_add_up(doc);
    assert_true(num(s, "requests.ok") == 40);
    assert_true(fabs(num(s, "schedule_span_s") - 39 * 0.0025) < 1e-6);
    assert_true(num(s, "duration_s") >= 39 * 0.0025);
    cJSON_Delete(doc);
    /* fewer clients than threads: refused */
    const char *bad[] = {"--url", f.url, "--endpoint", "/health", "--concurrency", "2", "--threads", "3",
                         "--requests", "5", "--metrics-path", "none", NULL};
    assert_int_equal(run_load(bad, &doc), 1);
    cJSON_Delete(doc);
    struct fake_server_counts c;
    fake_server_counts(f.srv, &c);
    fake_server_stop(f.srv);
    assert_int_equal(c.health, 440);
    assert_int_equal(c.posts, 30);
}

/* ---- a scripted raw-socket server: fixed responses, chosen framing ---- */

struct raw_server {
    int listen_fd;
    uint16_t port;
    const char *response;     /* sent for every request */
    int requests_per_conn;    /* close after this many responses (0: never) */
    pthread_t thread;
    volatile int stop;
    int connections, requests; /* what it saw */
};

/* Reads one request head (up to the blank line); 0 when the client went away. */
static int raw_read_request(const struct raw_server *rs, int fd)
{
    char buf[4096];
    size_t have = 0;
    while (!rs->stop) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 0)
            continue;
        const ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            return 0;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 1;
        if (have == sizeof buf - 1)
            return 0;
    }
    return 0;
}

static void *raw_server_main(void *arg)
{
    struct raw_server *rs = arg;
    while (!rs->stop) {
        struct pollfd p = {rs->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        const int fd = accept(rs->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        rs->connections++;
        for (int served = 0; !rs->stop && (rs->requests_per_conn == 0 || served < rs->requests_per_conn);
             served++) {
            if (!raw_read_request(rs, fd))
                break;
            rs->requests++;
            const size_t len = strlen(rs->response);
            if (write(fd, rs->response, len) != (ssize_t)len)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void raw_server_start(struct raw_server *rs, const char *response, int requests_per_conn)
{
    memset(rs, 0, sizeof *rs);
    rs->response = response;
    rs->requests_per_conn = requests_per_conn;
    rs->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(rs->listen_fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rs->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(rs->listen_fd, 16), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(rs->listen_fd, (struct sockaddr *)&a, &alen), 0);
    rs->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&rs->thread, NULL, raw_server_main, rs), 0);
}

static void raw_server_stop(struct raw_server *rs)
{
    rs->stop = 1;
    pthread_join(rs->thread, NULL);
    close(rs->listen_fd);
}

/* Runs 20 sequential GETs against a raw server; returns the parsed result. */
static cJSON *raw_run(const struct raw_server *rs)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)rs->port);
    const char *args[] = {"--url", url, "--endpoint", "/x", "--concurrency", "1", "--requests", "20",
                          "--metrics-path", "none", "--timeout", "5", NULL};
    cJSON *doc;
    assert_int_equal(run_load(args, &doc), 0);
    assert_non_null(doc);
    check_counts_add_up(doc);
    return doc;
}

/* A server that closes each kept-alive connection after one response,
 * without saying so: the next request on it finds it closed, and is sent
 * again on a new connection instead of counting as an error. */
static void test_server_drops_keepalive(void **state)
{
    (void)state;
    struct raw_server rs;
    raw_server_start(&rs, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1);
    cJSON *doc = raw_run(&rs);
    raw_server_stop(&rs);
    const cJSON *s = summary(doc);
    assert_true(num(s, "requests.ok") == 20);
    assert_true(num(s, "bytes_received") == 20 * 5);
    assert_true(num(s, "connections_opened") == 20);
    assert_int_equal(rs.requests, 20);
    cJSON_Delete(doc);
}

/* HTTP/1.0 with a body delimited by the connection's close; a chunked body
 * with extensions and a trailer on one kept-alive connection; a 503 with
 * Connection: close. */
static void test_http_framings(void **state)
{
    (void)state;
    struct raw_server rs;
    raw_server_start(&rs, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", 1);
    cJSON *doc = raw_run(&rs);
    raw_server_stop(&rs);
    const cJSON *s = summary(doc);
    assert_true(num(s, "requests.ok") == 20);
    assert_true(num(s, "bytes_received") == 20 * 11);
    assert_true(num(s, "connections_opened") == 20);
    cJSON_Delete(doc);

    raw_server_start(&rs,
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3;name=value\r\nabc\r\n0A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
                     0);
    doc = raw_run(&rs);
    raw_server_stop(&rs);
    s = summary(doc);
    assert_true(num(s, "requests.ok") == 20);
    assert_true(num(s, "bytes_received") == 20 * 13);
    assert_true(num(s, "connections_opened") == 1);
    assert_int_equal(rs.connections, 1);
    cJSON_Delete(doc);

    raw_server_start(&rs, "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy", 0);
    doc = raw_run(&rs);
    raw_server_stop(&rs);
    s = summary(doc);
    assert_true(num(s, "requests.by_outcome.http_status") == 20);
    assert_true(num(s, "requests.http_status.503") == 20);
    assert_true(num(s, "connections_opened") == 20);
    assert_non_null(strstr(at(s, "requests.error_examples.http_status")->valuestring, "busy"));
    cJSON_Delete(doc);

    /* not HTTP at all: an error of its own kind, never an ok */
    raw_server_start(&rs, "SSH-2.0-OpenSSH\r\n\r\n", 1);
    doc = raw_run(&rs);
    raw_server_stop(&rs);
    s = summary(doc);
    assert_true(num(s, "requests.by_outcome.other") == 20);
    assert_non_null(strstr(at(s, "requests.error_examples.other")->valuestring, "malformed"));
    cJSON_Delete(doc);
}

/* ---- unit checks of the request-side pieces ---- */

struct body_sink {
    char data[256];
    size_t len;
    int stop_after; /* stop once this many bytes arrived (0: never) */
};

static int sink_body(void *ctx, const char *data, size_t len)
{
    struct body_sink *b = ctx;
    assert_true(b->len + len < sizeof b->data);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return b->stop_after > 0 && b->len >= (size_t)b->stop_after;
}

/* Feeds text in pieces of `step` bytes (0: all at once); returns the last
 * result and how many bytes of text the response took. */
static int feed_pieces(struct qload_http_resp *r, const char *text, size_t len, size_t step,
                       struct body_sink *b, size_t *taken)
{
    size_t pos = 0;
    int rc = QLOAD_HTTP_MORE;
    while (pos < len) {
        const size_t n = step == 0 || len - pos < step ? len - pos : step;
        size_t used = 0;
        rc = qload_http_feed(r, text + pos, n, &used, sink_body, b);
        assert_true(used <= n);
        pos += used;
        if (rc != QLOAD_HTTP_MORE)
            break;
        assert_true(used == n);
    }
    *taken = pos;
    return rc;
}

static void test_http1_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *body;
        int status, keep_alive, done; /* done: complete without the connection closing */
    } good[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "hello", 200, 1, 1},
        {"HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length:  2 \r\n\r\nhi", "hi", 200, 0, 1},
        {"HTTP/1.1 404 Not Found\nContent-Length: 3\n\nnop", "nop", 404, 1, 1}, /* bare LF */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "4\r\nWiki\r\n5;ext=\"a;b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n",
         "Wikipedia in\r\n\r\nchunks.", 200, 1, 1},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", "x", 201, 1, 1},
        {"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", "", 204, 1, 1},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "", 200, 1, 1},
        {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz", "z", 200, 0, 1},
        {"HTTP/1.0 200 OK\r\n\r\nuntil the end", "until the end", 200, 0, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", "abc", 200, 1, 1},
        {"\r\nHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "", 200, 1, 1}, /* no reason phrase */
    };
    struct qload_http_resp r;
    qload_http_resp_init(&r);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const size_t len = strlen(good[i].text);
        /* whole, byte by byte, and in 7-byte pieces: the same result */
        const size_t steps[] = {0, 1, 7};
        for (size_t k = 0; k < 3; k++) {
            qload_http_resp_reset(&r);
            struct body_sink b = {.len = 0};
            size_t taken = 0;
            int rc = feed_pieces(&r, good[i].text, len, steps[k], &b, &taken);
            if (!good[i].done) {
                assert_int_equal(rc, QLOAD_HTTP_MORE);
                assert_int_equal(qload_http_eof(&r), QLOAD_HTTP_DONE);
            } else {
                assert_int_equal(rc, QLOAD_HTTP_DONE);
                assert_int_equal(taken, len);
            }
            assert_int_equal(r.status, good[i].status);
            assert_int_equal(r.keep_alive, good[i].keep_alive);
            assert_int_equal(b.len, strlen(good[i].body));
            assert_memory_equal(b.data, good[i].body, b.len);
        }
    }

    /* two responses back to back: the first takes only its own bytes */
    const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n";
    qload_http_resp_reset(&r);
    struct body_sink b = {.len = 0};
    size_t used = 0;
    assert_int_equal(qload_http_feed(&r, two, sizeof two - 1, &used, sink_body, &b), QLOAD_HTTP_DONE);
    assert_int_equal(used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"));

    /* cut short: the close does not complete a response with a length */
    const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    qload_http_resp_reset(&r);
    assert_int_equal(qload_http_feed(&r, cut, sizeof cut - 1, &used, sink_body, &b), QLOAD_HTTP_MORE);
    assert_int_equal(qload_http_eof(&r), 0);
    assert_int_equal(r.bytes_seen, sizeof cut - 1);

    /* the body callback stops the parser */
    const char stream[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    qload_http_resp_reset(&r);
    struct body_sink stopper = {.len = 0, .stop_after = 3};
    assert_int_equal(qload_http_feed(&r, stream, sizeof stream - 1, &used, sink_body, &stopper),
                     QLOAD_HTTP_STOPPED);
    assert_int_equal(stopper.len, 3);

    /* malformed responses */
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890123456\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qload_http_resp_reset(&r);
        struct body_sink sink = {.len = 0};
        const int rc = qload_http_feed(&r, bad[i], strlen(bad[i]), &used, sink_body, &sink);
        if (rc != QLOAD_HTTP_BAD)
            fail_msg("accepted malformed response %zu: %s", i, bad[i]);
        assert_non_null(r.error);
    }

    /* a head over the limit, however it is cut */
    const size_t big = QLOAD_HTTP_MAX_HEAD + 100;
    char *huge = malloc(big);
    assert_non_null(huge);
    memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 21);
    memset(huge + 21, 'a', big - 21);
    for (size_t step = 1000; step <= big; step *= 8) {
        qload_http_resp_reset(&r);
        size_t pos = 0;
        int rc = QLOAD_HTTP_MORE;
        while (rc == QLOAD_HTTP_MORE && pos < big) {
            const size_t n = big - pos < step ? big - pos : step;
            rc = qload_http_feed(&r, huge + pos, n, &used, NULL, NULL);
            pos += used;
        }
        assert_int_equal(rc, QUARRY_ERANGE);
    }
    free(huge);
    qload_http_resp_free(&r);
}

/* Merging per-thread statistics gives what one thread recording every
 * request would have. */
static void test_stats_merge(void **state)
{
    (void)state;
    quarry_error err;
    const struct qload_slo slo = {.ttft_ms = 50};
    struct qload_stats all, a, b;
    assert_int_equal(qload_stats_init(&all, 3, &slo, &err), 0);
    assert_int_equal(qload_stats_init(&a, 3, &slo, &err), 0);
    assert_int_equal(qload_stats_init(&b, 3, &slo, &err), 0);
    uint64_t rng = 12345;
    for (int i = 0; i < 500; i++) {
        int64_t gaps[3] = {(int64_t)(tu_rand_u64(&rng) % 9000000), 1000 + i, 7};
        struct qload_record r = {
            .id = (uint64_t)i,
            .tenant = i % 3,
            .outcome = i % 17 == 0 ? QLOAD_OUT_TIMEOUT : i % 13 == 0 ? QLOAD_OUT_CANCELLED : QLOAD_OUT_OK,
            .http_status = i % 17 == 0 ? 0 : 200,
            .intended_ns = i * 1000000LL,
            .sent_ns = i * 1000000LL + (int64_t)(tu_rand_u64(&rng) % 50000),
            .first_token_ns = i * 1000000LL + 1000000 + (int64_t)(tu_rand_u64(&rng) % 90000000),
            .prompt_tokens = 10 + i % 7,
            .completion_tokens = 4,
            .output_chunks = 4,
            .max_itl_ns = 9000000,
            .bytes_received = 100 + i,
            .error_text = i % 17 == 0 ? "timed out" : NULL,
            .itl_ns = gaps,
            .n_itl = 3,
        };
        r.end_ns = r.first_token_ns + (int64_t)(tu_rand_u64(&rng) % 20000000);
        qload_stats_add(&all, &r);
        qload_stats_add(i % 4 == 1 ? &b : &a, &r);
        all.sent++;
        (i % 4 == 1 ? &b : &a)->sent++;
    }
    a.connections_opened = 3;
    b.connections_opened = 2;
    all.connections_opened = 5;
    qload_stats_merge(&a, &b);
    assert_true(a.sent == all.sent && a.slo_met == all.slo_met && a.bytes_received == all.bytes_received);
    assert_true(a.wall_ns == all.wall_ns && a.connections_opened == all.connections_opened);
    assert_true(a.total_prompt_tokens == all.total_prompt_tokens);
    assert_memory_equal(a.outcomes, all.outcomes, sizeof a.outcomes);
    assert_memory_equal(a.http_status, all.http_status, sizeof a.http_status);
    for (int t = 0; t < 3; t++)
        assert_true(a.tenant_sent[t] == all.tenant_sent[t] && a.tenant_ok[t] == all.tenant_ok[t] &&
                    a.tenant_errors[t] == all.tenant_errors[t]);
    assert_string_equal(a.error_example[QLOAD_OUT_TIMEOUT], "timed out");
    const struct qload_hist *ha[] = {&a.ttft, &a.itl, &a.tpot, &a.e2e, &a.queue, &a.prompt_tokens};
    const struct qload_hist *hall[] = {&all.ttft, &all.itl, &all.tpot, &all.e2e, &all.queue, &all.prompt_tokens};
    for (size_t i = 0; i < sizeof ha / sizeof ha[0]; i++) {
        assert_true(ha[i]->count == hall[i]->count && ha[i]->count > 0);
        assert_true(ha[i]->min == hall[i]->min && ha[i]->max == hall[i]->max);
        assert_memory_equal(ha[i]->buckets, hall[i]->buckets, QLOAD_HIST_BUCKETS * sizeof(uint64_t));
        assert_true(fabs(qload_hist_mean(ha[i]) - qload_hist_mean(hall[i])) <= 1e-9 * qload_hist_mean(hall[i]));
        assert_true(fabs(qload_hist_stddev(ha[i]) - qload_hist_stddev(hall[i])) <=
                    1e-6 * qload_hist_stddev(hall[i]) + 1e-9);
    }
    qload_stats_free(&all);
    qload_stats_free(&a);
    qload_stats_free(&b);
}

static void test_url_parse(void **state)
{
    (void)state;
    struct qload_url u;
    quarry_error err;
    assert_int_equal(qload_url_parse("http://127.0.0.1:8080/v1/completions?x=1#frag", &u, &err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.port, "8080");
    assert_string_equal(u.authority, "127.0.0.1:8080");
    assert_string_equal(u.target, "/v1/completions?x=1");
    assert_int_equal(qload_url_parse("HTTP://Example.org", &u, &err), 0);
    assert_string_equal(u.host, "Example.org");
    assert_string_equal(u.port, "80");
    assert_string_equal(u.target, "/");
    assert_int_equal(qload_url_parse("http://[::1]:9/health", &u, &err), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.port, "9");
    assert_string_equal(u.authority, "[::1]:9");
    assert_int_equal(qload_url_parse("http://h?q", &u, &err), 0);
    assert_string_equal(u.target, "/?q");
    assert_int_equal(qload_url_parse("https://h/", &u, &err), QUARRY_EUNSUPPORTED);
    const char *bad[] = {"h:80/x", "http://", "http://:80/", "http://h:0/", "http://h:65536/", "http://h:8x/",
                         "http://u:p@h/", "http://[::1/", "http://h/a b", "ftp//h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(qload_url_parse(bad[i], &u, &err), QUARRY_EINVAL);
}

static void test_length_specs(void **state)
{
    (void)state;
    struct qload_len_spec sp;
    quarry_error err;
    assert_int_equal(qload_len_spec_parse("128", &sp, &err), 0);
    assert_int_equal(sp.kind, QLOAD_LEN_FIXED);
    assert_int_equal(qload_len_spec_parse("uniform:10:20", &sp, &err), 0);
    assert_int_equal(sp.kind, QLOAD_LEN_UNIFORM);
    assert_int_equal(qload_len_spec_parse("normal:100:10", &sp, &err), 0);
    const char *bad[] = {"0", "-3", "1.5", "uniform:20:10", "uniform:5", "normal:10:-1", "abc", "", "12x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(qload_len_spec_parse(bad[i], &sp, &err), QUARRY_EINVAL);

    /* sampled lengths stay in range and cover it */
    struct qload_prompt_opts po = {.seed = 7};
    assert_int_equal(qload_len_spec_parse("uniform:3:6", &po.prompt_tokens, &err), 0);
    assert_int_equal(qload_len_spec_parse("normal:50:5", &po.max_tokens, &err), 0);
    struct qload_prompts *p;
    assert_int_equal(qload_prompts_open(&po, &p, &err), 0);
    int seen[7] = {0};
    double sum = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
        struct qload_prompt pr;
        assert_int_equal(qload_prompts_get(p, (uint64_t)i, &pr, &err), 0);
        assert_true(pr.prompt_words >= 3 && pr.prompt_words <= 6);
        seen[pr.prompt_words]++;
        /* the text has exactly that many words */
        int words = 1;
        for (const char *c = pr.text; *c; c++)
            words += *c == ' ';
        assert_int_equal(words, pr.prompt_words);
        sum += pr.max_tokens;
    }
    for (int w = 3; w <= 6; w++)
        assert_true(seen[w] > n / 4 - n / 10);
    assert_true(fabs(sum / n - 50.0) < 0.5);
    qload_prompts_free(p);
}

/* With a shared-prefix ratio the first words are common to every prompt and
 * the rest differ; the same (seed, index) gives the same prompt. */
static void test_shared_prefix(void **state)
{
    (void)state;
    quarry_error err;
    struct qload_prompt_opts po = {.seed = 3, .shared_prefix = 0.5};
    assert_int_equal(qload_len_spec_parse("40", &po.prompt_tokens, &err), 0);
    assert_int_equal(qload_len_spec_parse("8", &po.max_tokens, &err), 0);
    struct qload_prompts *p;
    assert_int_equal(qload_prompts_open(&po, &p, &err), 0);
    char first[4096], second[4096];
    struct qload_prompt pr;
    assert_int_equal(qload_prompts_get(p, 0, &pr, &err), 0);
    snprintf(first, sizeof first, "%s", pr.text);
    assert_int_equal(qload_prompts_get(p, 1, &pr, &err), 0);
    snprintf(second, sizeof second, "%s", pr.text);
    /* position of the end of word 20 */
    size_t cut = 0;
    for (int words = 0; first[cut] && words < 20; cut++)
        if (first[cut] == ' ')
            words++;
    assert_true(cut > 0);
    assert_memory_equal(first, second, cut);
    assert_string_not_equal(first + cut, second + cut);
    /* deterministic per index, whatever was asked before */
    assert_int_equal(qload_prompts_get(p, 0, &pr, &err), 0);
    assert_string_equal(pr.text, first);
    qload_prompts_free(p);
    po.shared_prefix = 1.5;
    assert_int_equal(qload_prompts_open(&po, &p, &err), QUARRY_EINVAL);
}

static void test_slo_and_thresholds_parse(void **state)
{
    (void)state;
    quarry_error err;
    struct qload_slo slo;
    assert_int_equal(qload_slo_parse("ttft=200,itl=50,e2e=2000", &slo, &err), 0);
    assert_true(slo.ttft_ms == 200 && slo.itl_ms == 50 && slo.e2e_ms == 2000 && slo.tpot_ms == 0);
    assert_int_equal(qload_slo_parse("ttft=0", &slo, &err), QUARRY_EINVAL);
    assert_int_equal(qload_slo_parse("foo=3", &slo, &err), QUARRY_EINVAL);
    assert_int_equal(qload_slo_parse("ttft=3,", &slo, &err), 0);
    assert_int_equal(qload_slo_parse("", &slo, &err), QUARRY_EINVAL);

    /* goodput: a record meets the SLO only when every given limit holds */
    struct qload_record r = {.outcome = QLOAD_OUT_OK, .intended_ns = 0, .first_token_ns = 150000000,
                             .end_ns = 1000000000, .max_itl_ns = 60000000, .completion_tokens = 10};
    assert_int_equal(qload_slo_parse("ttft=200,e2e=2000", &slo, &err), 0);
    assert_true(qload_slo_met(&slo, &r));
    assert_int_equal(qload_slo_parse("ttft=200,itl=50", &slo, &err), 0);
    assert_false(qload_slo_met(&slo, &r));
    assert_int_equal(qload_slo_parse("tpot=90", &slo, &err), 0); /* (1000-150)/9 = 94.4 ms */
    assert_false(qload_slo_met(&slo, &r));
    assert_int_equal(qload_slo_parse("tpot=95", &slo, &err), 0);
    assert_true(qload_slo_met(&slo, &r));
    r.outcome = QLOAD_OUT_TIMEOUT;
    assert_false(qload_slo_met(&slo, &r));

    struct qload_thresholds th = {0};
    assert_int_equal(qload_thresholds_add(&th, "p99_ttft>500,p99.9_e2e>=3,error_rate<0.5,rps<=1", &err), 0);
    assert_int_equal(th.n, 4);
    assert_string_equal(th.items[1].metric, "p99.9_e2e");
    assert_int_equal(th.items[1].op, QLOAD_CMP_GE);
    assert_int_equal(th.items[3].op, QLOAD_CMP_LE);
    const char *bad[] = {"p99_ttft", "p99_ttft>", ">5", "p98_ttft>1", "p99_foo>1", "p99_ttft>1x", "mean>1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct qload_thresholds t2 = {0};
        assert_int_equal(qload_thresholds_add(&t2, bad[i], &err), QUARRY_EINVAL);
        qload_thresholds_free(&t2);
    }
    /* evaluation against real stats */
    struct qload_stats st;
    assert_int_equal(qload_stats_init(&st, 1, NULL, &err), 0);
    for (int i = 1; i <= 100; i++) {
        struct qload_record rec = {.outcome = QLOAD_OUT_OK, .intended_ns = 0,
                                   .first_token_ns = (int64_t)i * 1000000, .end_ns = (int64_t)i * 2000000,
                                   .completion_tokens = 2, .prompt_tokens = 1, .max_itl_ns = -1};
        st.sent++;
        qload_stats_add(&st, &rec);
    }
    /* p99 of 1..100 ms is 99 ms (within the histogram's 0.4%) */
    struct qload_thresholds t3 = {0};
    assert_int_equal(qload_thresholds_add(&t3, "p99_ttft>98,p99_ttft>100,error_rate>0", &err), 0);
    assert_int_equal(qload_thresholds_check(&t3, &st), 1);
    assert_true(t3.items[0].broken && !t3.items[1].broken && !t3.items[2].broken);
    assert_true(fabs(t3.items[0].value - 99.0) < 99.0 * 0.005);
    qload_thresholds_free(&t3);
    qload_stats_free(&st);
    qload_thresholds_free(&th);
}

/* ---- the --serve mode ---- */

static int serve(int argc, char **argv)
{
    struct fake_server_opts o = {.first_token_ms = 20, .token_ms = 10, .n_chunks = 0};
    if (argc >= 5) {
        o.first_token_ms = (unsigned)atoi(argv[2]);
        o.token_ms = (unsigned)atoi(argv[3]);
        o.n_chunks = atoi(argv[4]);
    }
    if (argc >= 6)
        o.health_delay_us = (unsigned)atoi(argv[5]);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the server's threads inherit the mask */
    struct fake_server *srv;
    uint16_t port;
    if (fake_server_start(&o, &srv, &port) != 0) {
        fprintf(stderr, "fake server: cannot start\n");
        return 1;
    }
    printf("%u\n", (unsigned)port);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fake_server_stop(srv);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
        return serve(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_specs),
        cmocka_unit_test(test_shared_prefix),
        cmocka_unit_test(test_slo_and_thresholds_parse),
        cmocka_unit_test(test_closed_loop_completions),
        cmocka_unit_test(test_open_loop_constant),
        cmocka_unit_test(test_open_loop_queue_counts_in_latency),
        cmocka_unit_test(test_errors_by_kind),
        cmocka_unit_test(test_cancel_ratio),
        cmocka_unit_test(test_fail_if_exit_status),
        cmocka_unit_test(test_chat_tenants_and_prompts_file),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_duration_and_drain),
        cmocka_unit_test(test_server_rss),
        cmocka_unit_test(test_plain_get),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_server_drops_keepalive),
        cmocka_unit_test(test_http_framings),
        cmocka_unit_test(test_http1_parser),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_stats_merge),
    };
    setvbuf(stdout, NULL, _IONBF, 0);
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
