/*
 * cli_serve.c - `quarry serve`: loads a model and serves the OpenAI-compatible
 * API (engine/server/server.h) until SIGINT or SIGTERM.
 *
 * The HTTP server starts first, so /health answers 503 "loading" while the
 * model loads; then the engine is attached and requests are served. SIGINT
 * and SIGTERM are blocked in every thread and taken by this thread with
 * sigwait(), which then runs the graceful shutdown (stop accepting, let
 * running generations finish for --shutdown-grace seconds, end the rest with
 * a final event) and exits 0. SIGPIPE is ignored: a client that goes away is
 * an ordinary event, not a reason to die.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/cli.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/server/auth.h"
#include "engine/server/server.h"
#include "engine/threadpool.h"
#include "engine/tokenizer.h"

void quarry_help_serve(void)
{
    printf(
        "usage: quarry serve -m MODEL [options]\n\n"
        "Serves MODEL over an OpenAI-compatible HTTP API:\n"
        "  POST /v1/chat/completions, POST /v1/completions (JSON or streamed SSE),\n"
        "  GET /v1/models, GET /health, GET /metrics (Prometheus), GET / (a chat page).\n\n"
        "options:\n"
        "  -m, --model FILE        the GGUF model\n"
        "      --host ADDR         address to listen on (default 127.0.0.1)\n"
        "      --port N            port (default 8080; 0 = any free port, printed at start)\n"
        "  -t, --threads N         engine threads (default: one per physical core)\n"
        "  -c, --ctx N             context positions per sequence (default: the model's)\n"
        "      --parallel N        sequences generated together (default 4)\n"
        "      --queue N           requests that may wait for a sequence (default 64);\n"
        "                          beyond that the server answers 503 at once\n"
        "      --batch N           prompt tokens per sequence per engine step (default 256)\n"
        "      --api-keys FILE     require keys; one tenant per line:\n"
        "                          KEY TENANT REQ_PER_MIN TOKENS_PER_MIN MAX_CONCURRENT\n"
        "                          (0 = unlimited). Without it the server is open.\n"
        "      --alias NAME        the model's id in the API (default: file name)\n"
        "      --chat-template T   chat template family or text (default: the model's)\n"
        "      --log-format F      access log on stdout: text (default) or json\n"
        "      --no-log            no access log\n"
        "      --max-body BYTES    largest request body (default 1048576)\n"
        "      --timeout S         per-connection idle/header timeout (default 30)\n"
        "      --max-connections N (default 256)\n"
        "      --keepalive S       SSE comment after S seconds without output (default 5)\n"
        "      --shutdown-grace S  on SIGINT/SIGTERM, time running generations get to\n"
        "                          finish before they are ended (default 10)\n\n"
        "Point an OpenAI client at base URL http://HOST:PORT/v1.\n"
        "exit status: 0 after a clean shutdown, 1 failure, 2 usage\n");
}

struct serve_opts {
    const char *model, *host, *api_keys, *alias, *chat_template;
    long port, threads, n_ctx, parallel, queue, batch, max_body, timeout, max_conn;
    double keepalive, grace;
    enum srv_log_format log_format;
    bool no_log;
};

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, double *out)
{
    char *end = NULL;
    const double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 86400)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct serve_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->queue = 64;
    o->batch = 256;
    o->max_body = 1 << 20;
    o->timeout = 30;
    o->max_conn = 256;
    o->keepalive = 5;
    o->grace = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--host"))
            o->host = v;
        else if (!strcmp(a, "--port"))
            ok = v && parse_long(v, 0, 65535, &o->port);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
            ok = v && parse_long(v, 0, 1024, &o->threads);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx"))
            ok = v && parse_long(v, 0, INT32_MAX, &o->n_ctx);
        else if (!strcmp(a, "--parallel"))
            ok = v && parse_long(v, 1, 1024, &o->parallel);
        else if (!strcmp(a, "--queue"))
            ok = v && parse_long(v, 0, 1 << 20, &o->queue);
        else if (!strcmp(a, "--batch"))
            ok = v && parse_long(v, 1, 1 << 16, &o->batch);
        else if (!strcmp(a, "--api-keys"))
            o->api_keys = v;
        else if (!strcmp(a, "--alias"))
            o->alias = v;
        else if (!strcmp(a, "--chat-template"))
            o->chat_template = v;
        else if (!strcmp(a, "--max-body"))
            ok = v && parse_long(v, 1, 1L << 30, &o->max_body);
        else if (!strcmp(a, "--timeout"))
            ok = v && parse_long(v, 1, 86400, &o->timeout);
        else if (!strcmp(a, "--max-connections"))
            ok = v && parse_long(v, 1, 1 << 16, &o->max_conn);
        else if (!strcmp(a, "--keepalive"))
            ok = v && parse_seconds(v, &o->keepalive) && o->keepalive > 0;
        else if (!strcmp(a, "--shutdown-grace"))
            ok = v && parse_seconds(v, &o->grace);
        else if (!strcmp(a, "--log-format")) {
            ok = v && (!strcmp(v, "text") || !strcmp(v, "json"));
            if (ok)
                o->log_format = !strcmp(v, "json") ? SRV_LOG_JSON : SRV_LOG_TEXT;
        } else if (!strcmp(a, "--no-log")) {
            o->no_log = true;
            takes = false;
        } else {
            fprintf(stderr, "quarry serve: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (takes && !v) {
            fprintf(stderr, "quarry serve: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "quarry serve: bad value '%s' for %s (see --help)\n", v, a);
            return 2;
        }
        if (takes)
            i++;
    }
    if (!o->model) {
        fprintf(stderr, "quarry serve: -m MODEL is required (see --help)\n");
        return 2;
    }
    return 0;
}

/* The model's API id: the file name without directories and ".gguf". */
static void default_model_id(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

static int choose_template(const struct serve_opts *o, const gguf_file *f,
                           enum quarry_chat_template *out)
{
    struct gguf_str tmpl = {0, NULL};
    const bool has = gguf_get_str(f, "tokenizer.chat_template", &tmpl, NULL) == 0;
    struct quarry_chat_choice choice;
    quarry_error err = {0};
    if (quarry_chat_select(has ? tmpl.data : NULL, has ? tmpl.len : 0, o->chat_template, &choice,
                           &err) != 0) {
        fprintf(stderr, "quarry serve: --chat-template: %s\n", err.msg);
        return -1;
    }
    if (choice.fallback)
        fprintf(stderr, "quarry serve: %s; chat requests use the plain \"User: / Assistant:\" "
                        "format\n",
                !has ? "the model has no chat template"
                : choice.unsupported ? "the model's chat template family is not rendered by quarry"
                                     : "the model's chat template is not recognised");
    else
        fprintf(stderr, "quarry serve: chat template: %s\n",
                quarry_chat_template_name(choice.tmpl));
    *out = choice.tmpl;
    return 0;
}

int quarry_cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status;

    /* Every thread started from here on inherits this mask: only sigwait
     * below sees SIGINT and SIGTERM. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    status = 1;
    char errbuf[512];
    struct srv_keys keys = {0};
    bool have_keys = false;
    srv_server *srv = NULL;
    quarry_model *model = NULL;
    quarry_tokenizer *tok = NULL;
    quarry_threadpool *pool = NULL;
    quarry_context *ctx = NULL;
    quarry_error err = {0};

    if (o.api_keys) {
        const int rc = srv_keys_load(o.api_keys, &keys, errbuf, sizeof errbuf);
        if (rc) {
            fprintf(stderr, "quarry serve: %s\n", rc == -2 ? "out of memory" : errbuf);
            goto done;
        }
        have_keys = true;
    }
    char model_id[256];
    if (o.alias)
        snprintf(model_id, sizeof model_id, "%s", o.alias);
    else
        default_model_id(o.model, model_id, sizeof model_id);

    const struct srv_options so = {
        .host = o.host, .port = (uint16_t)o.port, .keys = have_keys ? &keys : NULL,
        .max_body = (size_t)o.max_body, .timeout_s = (unsigned)o.timeout,
        .max_connections = (unsigned)o.max_conn, .keepalive_s = o.keepalive,
        .model_id = model_id, .log_format = o.log_format, .log = o.no_log ? NULL : stdout};
    if (srv_server_start(&so, &srv, &err)) {
        fprintf(stderr, "quarry serve: %s\n", err.msg);
        goto done;
    }
    const bool v6 = strchr(o.host, ':') != NULL;
    fprintf(stderr, "quarry serve: listening on http://%s%s%s:%u (OpenAI base URL "
                    "http://%s%s%s:%u/v1)\n",
            v6 ? "[" : "", o.host, v6 ? "]" : "", (unsigned)srv_server_port(srv), v6 ? "[" : "",
            o.host, v6 ? "]" : "", (unsigned)srv_server_port(srv));
    if (have_keys)
        fprintf(stderr, "quarry serve: %zu API key(s) loaded from %s\n", keys.n, o.api_keys);
    else
        fprintf(stderr, "quarry serve: no --api-keys: the server is OPEN (no authentication, "
                        "no rate limits)\n");
    fprintf(stderr, "quarry serve: loading %s\n", o.model);

    if (quarry_model_open(o.model, &model, &err) ||
        quarry_tokenizer_load(model->own_file, &tok, &err)) {
        fprintf(stderr, "quarry serve: %s\n", err.msg);
        goto done;
    }
    enum quarry_chat_template tmpl;
    if (choose_template(&o, model->own_file, &tmpl))
        goto done;
    if (quarry_threadpool_new((int)o.threads, &pool, &err)) {
        fprintf(stderr, "quarry serve: %s\n", err.msg);
        goto done;
    }
    struct quarry_context_params cp;
    quarry_context_params_default(&cp);
    cp.n_ctx = (int32_t)o.n_ctx;
    cp.n_seq = (int32_t)o.parallel;
    cp.pool = pool;
    if (quarry_context_new(model, &cp, &ctx, &err)) {
        fprintf(stderr, "quarry serve: %s\n", err.msg);
        goto done;
    }
    const struct srv_engine eng = {
        .model = model, .tok = tok, .ctx = ctx, .chat_template = tmpl,
        .sched = {.n_slots = (int32_t)o.parallel, .queue_cap = (int32_t)o.queue,
                  .prompt_chunk = (int32_t)o.batch}};
    if (srv_server_set_engine(srv, &eng, &err)) {
        fprintf(stderr, "quarry serve: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr,
            "quarry serve: ready: model '%s', %d sequence slots x %d positions, queue %ld, "
            "%d thread(s)\n",
            model_id, (int)o.parallel,
            (int)quarry_kvcache_params(quarry_context_kv(ctx))->n_ctx, o.queue,
            quarry_threadpool_size(pool));

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    fprintf(stderr, "quarry serve: %s received: stopping (grace %.0f s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", o.grace);
    srv_server_shutdown(srv, o.grace);
    status = 0;
done:
    srv_server_free(srv); /* before the engine it borrows */
    quarry_context_free(ctx);
    quarry_threadpool_free(pool);
    quarry_tokenizer_free(tok);
    quarry_model_free(model);
    srv_keys_free(&keys);
    if (status == 0)
        fprintf(stderr, "quarry serve: stopped\n");
    return status;
}
