/*
 * main.c - quarry-load, the load generator's command line: parses options,
 * builds the prompts and (open loop) the arrival schedule, scrapes the
 * server's /metrics, runs the workload (loadgen/client.h), prints the table,
 * writes the JSON result and checks the --fail-if thresholds.
 *
 * Exit status: 0 on a completed run, 1 on bad options or a run that could not
 * happen, 2 when a --fail-if threshold is broken (so CI can gate on it).
 * Failed requests alone do not make the status non-zero; gate them with
 * --fail-if error_rate>0.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cJSON.h>

#include "harness/results.h"
#include "loadgen/arrivals.h"
#include "loadgen/client.h"
#include "loadgen/openai.h"
#include "loadgen/prompts.h"
#include "loadgen/report.h"
#include "loadgen/rss.h"
#include "loadgen/scrape.h"
#include "loadgen/stats.h"
#include "loadgen/thresholds.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: quarry-load [options]\n"
"Load generator for OpenAI-compatible servers (HTTP/1.1, streaming SSE).\n"
"\n"
"Target:\n"
"  --url URL              server base URL, plain http:// (default\n"
"                         http://127.0.0.1:8080)\n"
"  --endpoint PATH        /v1/completions (default), /v1/chat/completions, or any\n"
"                         other path, fetched with a plain GET (e.g. /health)\n"
"  --model NAME           model field of each request (default quarry)\n"
"  --api-key KEY          bearer token for every request\n"
"  --api-keys-file FILE   one key per line: requests go round-robin over them\n"
"                         (tenants; blank lines and # comments skipped)\n"
"  --timeout S            per-request timeout in seconds (default 60)\n"
"  --connect-timeout S    connection timeout in seconds (default 10)\n"
"  --metrics-path PATH    scraped before and after the run (default /metrics;\n"
"                         'none' to skip)\n"
"Workload (closed loop by default, 1 client):\n"
"  --concurrency N        closed loop: N clients, each sends its next request\n"
"                         when its last one ends\n"
"  --rate R               open loop: R requests/s on a schedule computed up\n"
"                         front; latency counts from each intended send time\n"
"  --arrival KIND         poisson (default), gamma or constant gaps\n"
"  --burstiness K         gamma shape (1 = Poisson, < 1 burstier); implies gamma\n"
"  --max-concurrency N    open loop: at most N in flight, the rest queue in the\n"
"                         client (queue time reported separately)\n"
"  --seed N               seeds schedule, prompts and cancellations (default 1)\n"
"  --threads N            event loops on N threads (default 1), each with its\n"
"                         share of the clients (closed loop; at least N) or of\n"
"                         the schedule and the cap (open loop)\n"
"Bounds (a run always stops by itself; default --duration 10):\n"
"  --requests N           stop after N requests\n"
"  --duration S           send no request after S seconds\n"
"  --drain S              then abort requests still running after S more\n"
"                         seconds (default: the timeout)\n"
"Requests:\n"
"  --prompt-tokens SPEC   synthetic prompt length in words (~tokens): N,\n"
"                         uniform:A:B or normal:MEAN:SD (default 128)\n"
"  --max-tokens SPEC      max_tokens, same syntax (default 64)\n"
"  --prompts-file FILE    JSONL prompts: {\"prompt\": ...} or {\"messages\": [...]},\n"
"                         optional \"max_tokens\"; used in order, wrapping around\n"
"  --shared-prefix R      share of each synthetic prompt that is a common prefix\n"
"                         (0..1, default 0)\n"
"  --cancel-ratio R       share of requests cancelled mid-stream (0..1)\n"
"  --ignore-eos           send \"ignore_eos\": true (full max_tokens outputs)\n"
"Output:\n"
"  --output FILE          write the JSON result to FILE\n"
"  --json                 print the JSON result on stdout (the table goes to stderr)\n"
"  --save-detailed        include every request's record in the JSON\n"
"  --slo ttft=MS,itl=MS,tpot=MS,e2e=MS\n"
"                         goodput: requests/s meeting every objective given\n"
"                         (itl: the request's largest gap)\n"
"  --fail-if COND[,COND]  exit 2 when a condition holds, e.g. p99_ttft>500,\n"
"                         error_rate>0.01, rps<10 (latencies in ms; metrics:\n"
"                         p50|p90|p95|p99|p99.9|mean|stddev|max _ ttft|itl|tpot|\n"
"                         e2e|queue, rps, goodput, output_tps, error_rate,\n"
"                         errors, ok, sent, cancelled); may be repeated\n"
"  --server-pid PID       sample the server's resident memory during the run\n"
"  --rss-interval-ms MS   sampling interval (default 100)\n"
"  --quiet                no table\n"
"  --help                 this text\n"
"Exit status: 0 run completed, 1 bad options or run failed, 2 threshold broken.\n");
}

struct options {
    const char *url, *endpoint, *model, *api_key, *keys_file;
    double timeout_s, connect_timeout_s, drain_s;
    const char *metrics_path;
    int concurrency;
    double rate;
    const char *arrival;
    double burstiness;
    int max_concurrency;
    uint64_t seed;
    int64_t requests;
    double duration_s;
    const char *prompt_tokens, *max_tokens, *prompts_file;
    double shared_prefix, cancel_ratio;
    int ignore_eos;
    const char *output;
    int json, save_detailed, quiet;
    const char *slo;
    int server_pid;
    double rss_interval_ms;
    int threads;
};

enum {
    OPT_URL = 1000, OPT_ENDPOINT, OPT_MODEL, OPT_API_KEY, OPT_KEYS_FILE, OPT_TIMEOUT,
    OPT_CONNECT_TIMEOUT, OPT_METRICS_PATH, OPT_CONCURRENCY, OPT_RATE, OPT_ARRIVAL, OPT_BURSTINESS,
    OPT_MAX_CONCURRENCY, OPT_SEED, OPT_REQUESTS, OPT_DURATION, OPT_DRAIN, OPT_PROMPT_TOKENS,
    OPT_MAX_TOKENS, OPT_PROMPTS_FILE, OPT_SHARED_PREFIX, OPT_CANCEL_RATIO, OPT_IGNORE_EOS,
    OPT_OUTPUT, OPT_JSON, OPT_SAVE_DETAILED, OPT_SLO, OPT_FAIL_IF, OPT_SERVER_PID,
    OPT_RSS_INTERVAL, OPT_QUIET, OPT_HELP, OPT_THREADS,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"api-keys-file", required_argument, NULL, OPT_KEYS_FILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"metrics-path", required_argument, NULL, OPT_METRICS_PATH},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"rate", required_argument, NULL, OPT_RATE},
    {"arrival", required_argument, NULL, OPT_ARRIVAL},
    {"burstiness", required_argument, NULL, OPT_BURSTINESS},
    {"max-concurrency", required_argument, NULL, OPT_MAX_CONCURRENCY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"prompts-file", required_argument, NULL, OPT_PROMPTS_FILE},
    {"shared-prefix", required_argument, NULL, OPT_SHARED_PREFIX},
    {"cancel-ratio", required_argument, NULL, OPT_CANCEL_RATIO},
    {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"save-detailed", no_argument, NULL, OPT_SAVE_DETAILED},
    {"slo", required_argument, NULL, OPT_SLO},
    {"fail-if", required_argument, NULL, OPT_FAIL_IF},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"rss-interval-ms", required_argument, NULL, OPT_RSS_INTERVAL},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {NULL, 0, NULL, 0},
};

static int parse_double(const char *name, const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    const double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "quarry-load: --%s '%s': expected a number in %g..%g\n", name, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *text, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    const long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "quarry-load: --%s '%s': expected an integer in %lld..%lld\n", name, text, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Reads API keys, one per line (trimmed; blank and # lines skipped). */
static int read_keys(const char *path, char ***keys, int *n)
{
    *keys = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "quarry-load: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int count = 0, kcap = 0, rc = 0;
    char **k = NULL;
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == ' ' || s[l - 1] == '\t'))
            s[--l] = '\0';
        if (l == 0 || s[0] == '#')
            continue;
        if (count == kcap) {
            kcap = kcap ? kcap * 2 : 16;
            char **nk = realloc(k, (size_t)kcap * sizeof *nk);
            if (!nk) {
                rc = -1;
                break;
            }
            k = nk;
        }
        k[count] = strdup(s);
        if (!k[count]) {
            rc = -1;
            break;
        }
        count++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && count == 0) {
        fprintf(stderr, "quarry-load: %s: no keys in the file\n", path);
        rc = -1;
    } else if (rc != 0) {
        fprintf(stderr, "quarry-load: out of memory reading %s\n", path);
    }
    if (rc != 0) {
        for (int i = 0; i < count; i++)
            free(k[i]);
        free(k);
        return -1;
    }
    *keys = k;
    *n = count;
    return 0;
}

/* base + path without a doubled or missing slash; malloc'd. */
static char *join_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    const int slash = path[0] != '/';
    const size_t len = bl + (size_t)slash + strlen(path) + 1;
    char *u = malloc(len);
    if (u)
        snprintf(u, len, "%.*s%s%s", (int)bl, base, slash ? "/" : "", path);
    return u;
}

/* Scrapes metrics into *out (NULL when it fails; *why says why, malloc'd). */
static void scrape(const char *url, double timeout_s, cJSON **out, char **why)
{
    *out = NULL;
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    quarry_error err = {0};
    if (qload_http_get(url, timeout_s, &body, &len, &status, &err) != 0) {
        if (!*why)
            *why = strdup(err.msg);
        return;
    }
    if (status != 200) {
        if (!*why) {
            char msg[256];
            snprintf(msg, sizeof msg, "GET %.180s: HTTP %ld", url, status);
            *why = strdup(msg);
        }
        free(body);
        return;
    }
    *out = qload_prometheus_parse(body, len);
    free(body);
}

static int add_config(cJSON *cfg, const struct options *o, const char *url, const char *api,
                      const char *arrival, int n_keys, int64_t schedule_len)
{
    int ok = cJSON_AddStringToObject(cfg, "url", url) != NULL;
    ok = ok && cJSON_AddStringToObject(cfg, "api", api);
    ok = ok && cJSON_AddStringToObject(cfg, "model", o->model);
    ok = ok && cJSON_AddStringToObject(cfg, "mode", o->concurrency > 0 ? "closed" : "open");
    if (o->concurrency > 0) {
        ok = ok && cJSON_AddNumberToObject(cfg, "concurrency", o->concurrency);
    } else {
        ok = ok && cJSON_AddNumberToObject(cfg, "rate", o->rate);
        ok = ok && cJSON_AddStringToObject(cfg, "arrival", arrival);
        ok = ok && cJSON_AddNumberToObject(cfg, "burstiness", o->burstiness);
        ok = ok && cJSON_AddNumberToObject(cfg, "max_concurrency", o->max_concurrency);
        ok = ok && cJSON_AddNumberToObject(cfg, "scheduled_requests", (double)schedule_len);
    }
    ok = ok && cJSON_AddNumberToObject(cfg, "seed", (double)o->seed);
    ok = ok && cJSON_AddNumberToObject(cfg, "threads", o->threads);
    if (o->requests > 0)
        ok = ok && cJSON_AddNumberToObject(cfg, "requests", (double)o->requests);
    else
        ok = ok && cJSON_AddNullToObject(cfg, "requests");
    if (o->duration_s > 0)
        ok = ok && cJSON_AddNumberToObject(cfg, "duration_s", o->duration_s);
    else
        ok = ok && cJSON_AddNullToObject(cfg, "duration_s");
    ok = ok && cJSON_AddNumberToObject(cfg, "timeout_s", o->timeout_s);
    ok = ok && cJSON_AddNumberToObject(cfg, "connect_timeout_s", o->connect_timeout_s);
    ok = ok && cJSON_AddNumberToObject(cfg, "drain_s", o->drain_s);
    ok = ok && cJSON_AddStringToObject(cfg, "prompt_tokens", o->prompt_tokens);
    ok = ok && cJSON_AddStringToObject(cfg, "max_tokens", o->max_tokens);
    if (o->prompts_file)
        ok = ok && cJSON_AddStringToObject(cfg, "prompts_file", o->prompts_file);
    else
        ok = ok && cJSON_AddNullToObject(cfg, "prompts_file");
    ok = ok && cJSON_AddNumberToObject(cfg, "shared_prefix", o->shared_prefix);
    ok = ok && cJSON_AddNumberToObject(cfg, "cancel_ratio", o->cancel_ratio);
    ok = ok && cJSON_AddBoolToObject(cfg, "ignore_eos", o->ignore_eos);
    ok = ok && cJSON_AddNumberToObject(cfg, "tenants", n_keys);
    if (o->slo)
        ok = ok && cJSON_AddStringToObject(cfg, "slo", o->slo);
    else
        ok = ok && cJSON_AddNullToObject(cfg, "slo");
    ok = ok && cJSON_AddNumberToObject(cfg, "server_pid", o->server_pid);
    ok = ok && cJSON_AddNumberToObject(cfg, "rss_interval_ms", o->rss_interval_ms);
    ok = ok && cJSON_AddStringToObject(cfg, "metrics_path", o->metrics_path);
    ok = ok && cJSON_AddBoolToObject(cfg, "save_detailed", o->save_detailed);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct options o = {
        .url = "http://127.0.0.1:8080",
        .endpoint = "/v1/completions",
        .model = "quarry",
        .timeout_s = 60,
        .connect_timeout_s = 10,
        .drain_s = -1,
        .metrics_path = "/metrics",
        .seed = 1,
        .prompt_tokens = "128",
        .max_tokens = "64",
        .rss_interval_ms = 100,
        .burstiness = -1,
        .threads = 1,
    };
    struct qload_thresholds thresholds = {0};
    int exit_code = 1;
    long long iv;
    int opt;

    /* declared up front so every exit path can free them */
    char **keys = NULL;
    int n_keys = 0;
    char *url = NULL, *metrics_url = NULL, *metrics_error = NULL;
    struct qload_prompts *prompts = NULL;
    int64_t *schedule = NULL;
    size_t schedule_len = 0;
    struct qload_stats stats;
    int stats_ready = 0;
    struct qload_records records = {0};
    cJSON *metrics_before = NULL, *metrics_after = NULL, *doc = NULL;
    quarry_error err = {0};

    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case OPT_URL: o.url = optarg; break;
        case OPT_ENDPOINT: o.endpoint = optarg; break;
        case OPT_MODEL: o.model = optarg; break;
        case OPT_API_KEY: o.api_key = optarg; break;
        case OPT_KEYS_FILE: o.keys_file = optarg; break;
        case OPT_TIMEOUT: bad = parse_double("timeout", optarg, 0.001, 1e6, &o.timeout_s); break;
        case OPT_CONNECT_TIMEOUT:
            bad = parse_double("connect-timeout", optarg, 0.001, 1e6, &o.connect_timeout_s);
            break;
        case OPT_METRICS_PATH: o.metrics_path = optarg; break;
        case OPT_CONCURRENCY:
            bad = parse_int("concurrency", optarg, 1, 100000, &iv);
            o.concurrency = (int)iv;
            break;
        case OPT_RATE: bad = parse_double("rate", optarg, 1e-6, 1e7, &o.rate); break;
        case OPT_ARRIVAL: o.arrival = optarg; break;
        case OPT_BURSTINESS: bad = parse_double("burstiness", optarg, 1e-3, 1e6, &o.burstiness); break;
        case OPT_MAX_CONCURRENCY:
            bad = parse_int("max-concurrency", optarg, 1, 100000, &iv);
            o.max_concurrency = (int)iv;
            break;
        case OPT_SEED:
            bad = parse_int("seed", optarg, 0, INT64_MAX, &iv);
            o.seed = (uint64_t)iv;
            break;
        case OPT_REQUESTS:
            bad = parse_int("requests", optarg, 1, (long long)QLOAD_SCHEDULE_MAX, &iv);
            o.requests = iv;
            break;
        case OPT_DURATION: bad = parse_double("duration", optarg, 0.001, 1e7, &o.duration_s); break;
        case OPT_DRAIN: bad = parse_double("drain", optarg, 0, 1e6, &o.drain_s); break;
        case OPT_PROMPT_TOKENS: o.prompt_tokens = optarg; break;
        case OPT_MAX_TOKENS: o.max_tokens = optarg; break;
        case OPT_PROMPTS_FILE: o.prompts_file = optarg; break;
        case OPT_SHARED_PREFIX: bad = parse_double("shared-prefix", optarg, 0, 1, &o.shared_prefix); break;
        case OPT_CANCEL_RATIO: bad = parse_double("cancel-ratio", optarg, 0, 1, &o.cancel_ratio); break;
        case OPT_IGNORE_EOS: o.ignore_eos = 1; break;
        case OPT_OUTPUT: o.output = optarg; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_SAVE_DETAILED: o.save_detailed = 1; break;
        case OPT_SLO: o.slo = optarg; break;
        case OPT_FAIL_IF:
            if (qload_thresholds_add(&thresholds, optarg, &err) != 0) {
                fprintf(stderr, "quarry-load: %s\n", err.msg);
                bad = 1;
            }
            break;
        case OPT_SERVER_PID:
            bad = parse_int("server-pid", optarg, 1, 1 << 30, &iv);
            o.server_pid = (int)iv;
            break;
        case OPT_RSS_INTERVAL:
            bad = parse_double("rss-interval-ms", optarg, 1, 1e7, &o.rss_interval_ms);
            break;
        case OPT_QUIET: o.quiet = 1; break;
        case OPT_THREADS:
            bad = parse_int("threads", optarg, 1, 1024, &iv);
            o.threads = (int)iv;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit_code = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
        if (bad)
            goto out;
    }
    if (optind < argc) {
        fprintf(stderr, "quarry-load: unexpected argument '%s' (see --help)\n", argv[optind]);
        goto out;
    }

    /* ---- resolve and check the options ---- */
    if (o.concurrency > 0 && o.rate > 0) {
        fprintf(stderr, "quarry-load: --concurrency (closed loop) and --rate (open loop) exclude each other\n");
        goto out;
    }
    if (o.rate <= 0 && (o.arrival || o.burstiness > 0 || o.max_concurrency > 0)) {
        fprintf(stderr, "quarry-load: --arrival, --burstiness and --max-concurrency need --rate\n");
        goto out;
    }
    if (o.rate <= 0 && o.concurrency <= 0)
        o.concurrency = 1;
    if (o.requests <= 0 && o.duration_s <= 0)
        o.duration_s = 10;
    if (o.drain_s < 0)
        o.drain_s = o.timeout_s;
    enum qload_arrival_kind arrival = QLOAD_ARRIVAL_POISSON;
    if (o.arrival && qload_arrival_from_name(o.arrival, &arrival) != 0) {
        fprintf(stderr, "quarry-load: --arrival '%s': expected poisson, gamma or constant\n", o.arrival);
        goto out;
    }
    if (!o.arrival && o.burstiness > 0)
        arrival = QLOAD_ARRIVAL_GAMMA;
    if (o.burstiness > 0 && arrival != QLOAD_ARRIVAL_GAMMA && o.burstiness != 1.0) {
        fprintf(stderr, "quarry-load: --burstiness applies to --arrival gamma\n");
        goto out;
    }
    if (o.burstiness <= 0)
        o.burstiness = 1.0;
    const enum qload_api api = qload_api_for_path(o.endpoint);
    struct qload_slo slo = {0};
    if (o.slo && qload_slo_parse(o.slo, &slo, &err) != 0) {
        fprintf(stderr, "quarry-load: %s\n", err.msg);
        goto out;
    }
    if (o.api_key && o.keys_file) {
        fprintf(stderr, "quarry-load: use --api-key or --api-keys-file, not both\n");
        goto out;
    }
    if (o.keys_file && read_keys(o.keys_file, &keys, &n_keys) != 0)
        goto out;
    if (o.api_key) {
        keys = malloc(sizeof *keys);
        if (!keys || !(keys[0] = strdup(o.api_key))) {
            free(keys);
            keys = NULL;
            fprintf(stderr, "quarry-load: out of memory\n");
            goto out;
        }
        n_keys = 1;
    }
    url = join_url(o.url, o.endpoint);
    const int scrape_metrics = strcmp(o.metrics_path, "none") != 0;
    if (scrape_metrics)
        metrics_url = join_url(o.url, o.metrics_path);
    if (!url || (scrape_metrics && !metrics_url)) {
        fprintf(stderr, "quarry-load: out of memory\n");
        goto out;
    }

    struct qload_prompt_opts po = {.shared_prefix = o.shared_prefix, .seed = o.seed, .file = o.prompts_file};
    if (qload_len_spec_parse(o.prompt_tokens, &po.prompt_tokens, &err) != 0 ||
        qload_len_spec_parse(o.max_tokens, &po.max_tokens, &err) != 0 ||
        (api != QLOAD_API_PLAIN_GET && qload_prompts_open(&po, &prompts, &err) != 0)) {
        fprintf(stderr, "quarry-load: %s\n", err.msg);
        goto out;
    }
    if (o.rate > 0) {
        struct qload_schedule_opts so = {
            .rate = o.rate,
            .kind = arrival,
            .burstiness = o.burstiness,
            .seed = o.seed,
            .max_requests = o.requests,
            .duration_s = o.duration_s,
        };
        if (qload_schedule_build(&so, &schedule, &schedule_len, &err) != 0) {
            fprintf(stderr, "quarry-load: %s\n", err.msg);
            goto out;
        }
    }
    if (qload_stats_init(&stats, n_keys, &slo, &err) != 0) {
        fprintf(stderr, "quarry-load: %s\n", err.msg);
        goto out;
    }
    stats_ready = 1;

    /* ---- run ---- */
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake within 1 us of a schedule time, not 50 */
    struct rlimit nofile; /* one descriptor per connection: allow as many as the hard limit */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    const double scrape_timeout = o.timeout_s < 10 ? o.timeout_s : 10;
    if (scrape_metrics)
        scrape(metrics_url, scrape_timeout, &metrics_before, &metrics_error);
    struct qload_config cfg = {
        .url = url,
        .api = api,
        .model = o.model,
        .api_keys = (const char *const *)keys,
        .n_keys = n_keys,
        .concurrency = o.concurrency,
        .schedule_ns = schedule,
        .schedule_len = schedule_len,
        .max_concurrency = o.max_concurrency,
        .max_requests = o.requests,
        .duration_s = o.duration_s,
        .timeout_s = o.timeout_s,
        .connect_timeout_s = o.connect_timeout_s,
        .drain_s = o.drain_s,
        .cancel_ratio = o.cancel_ratio,
        .seed = o.seed,
        .ignore_eos = o.ignore_eos,
        .prompts = prompts,
        .save_detailed = o.save_detailed,
        .server_pid = o.server_pid,
        .rss_interval_s = o.rss_interval_ms / 1000.0,
        .threads = o.threads,
    };
    struct qload_rss rss;
    qload_rss_init(&rss, o.server_pid);
    if (qload_run(&cfg, &stats, &records, o.server_pid > 0 ? &rss : NULL, &err) != 0) {
        fprintf(stderr, "quarry-load: %s\n", err.msg);
        goto out;
    }
    if (scrape_metrics) {
        scrape(metrics_url, scrape_timeout, &metrics_after, &metrics_error);
        if ((!metrics_before || !metrics_after) && !metrics_error)
            metrics_error = strdup("out of memory parsing /metrics");
    }
    const size_t broken = qload_thresholds_check(&thresholds, &stats);

    /* ---- report ---- */
    char desc[512];
    char bound[64] = "";
    if (o.requests > 0 && o.duration_s > 0)
        snprintf(bound, sizeof bound, "%lld requests or %g s", (long long)o.requests, o.duration_s);
    else if (o.requests > 0)
        snprintf(bound, sizeof bound, "%lld requests", (long long)o.requests);
    else
        snprintf(bound, sizeof bound, "%g s", o.duration_s);
    if (o.concurrency > 0)
        snprintf(desc, sizeof desc, "closed loop, %d client%s, %s; %s %s", o.concurrency,
                 o.concurrency == 1 ? "" : "s", bound, api == QLOAD_API_PLAIN_GET ? "GET" : "POST", url);
    else {
        char shape[48] = "", cap[48] = "no cap on requests in flight";
        if (arrival == QLOAD_ARRIVAL_GAMMA)
            snprintf(shape, sizeof shape, " (burstiness %g)", o.burstiness);
        if (o.max_concurrency > 0)
            snprintf(cap, sizeof cap, "at most %d in flight", o.max_concurrency);
        snprintf(desc, sizeof desc, "open loop, %g req/s %s%s, %s, %s; %s %s", o.rate,
                 qload_arrival_name(arrival), shape, cap, bound, api == QLOAD_API_PLAIN_GET ? "GET" : "POST",
                 url);
    }
    if (o.threads > 1) {
        const size_t used = strlen(desc);
        snprintf(desc + used, sizeof desc - used, " (%d threads)", o.threads);
    }
    const struct qload_report rep = {
        .description = desc,
        .stats = &stats,
        .rss = o.server_pid > 0 ? &rss : NULL,
        .records = o.save_detailed ? &records : NULL,
        .thresholds = &thresholds,
        .metrics_before = metrics_before,
        .metrics_after = metrics_after,
        .metrics_error = metrics_error,
    };
    if (!o.quiet)
        qload_report_table(o.json ? stderr : stdout, &rep);
    if (o.output || o.json) {
        doc = quarry_results_new("load");
        cJSON *build = doc ? cJSON_GetObjectItemCaseSensitive(doc, "build") : NULL;
        int ok = doc && build && cJSON_AddStringToObject(build, "libcurl", qload_curl_version());
        ok = ok && add_config(quarry_results_config(doc), &o, url, qload_api_name(api),
                              qload_arrival_name(arrival), n_keys, (int64_t)schedule_len) == 0;
        if (!ok || qload_report_json(doc, &rep, &err) != 0) {
            fprintf(stderr, "quarry-load: out of memory building the JSON result\n");
            goto out;
        }
        quarry_results_set_complete(doc, 1);
        if (o.output && quarry_results_write(doc, o.output, &err) != 0) {
            fprintf(stderr, "quarry-load: %s\n", err.msg);
            goto out;
        }
        if (o.json) {
            char *text = cJSON_Print(doc);
            if (!text) {
                fprintf(stderr, "quarry-load: out of memory printing JSON\n");
                goto out;
            }
            puts(text);
            free(text);
        }
    }
    exit_code = broken > 0 ? 2 : 0;
    if (broken > 0)
        fprintf(stderr, "quarry-load: %zu threshold%s broken\n", broken, broken == 1 ? "" : "s");

out:
    cJSON_Delete(doc);
    cJSON_Delete(metrics_before);
    cJSON_Delete(metrics_after);
    free(metrics_error);
    qload_records_free(&records);
    if (stats_ready)
        qload_stats_free(&stats);
    free(schedule);
    qload_prompts_free(prompts);
    free(url);
    free(metrics_url);
    for (int i = 0; i < n_keys; i++)
        free(keys[i]);
    free(keys);
    qload_thresholds_free(&thresholds);
    return exit_code;
}
