/*
 * bench_suite.c - the benchmark suite: membw, kernels, attention and model
 * benchmarks in one run and one document (see bench_suite.h). Each part is
 * run through its own module; this file only turns their rows into figures,
 * adds the bandwidth fractions and hardware counters, and fills the document.
 */
#include "harness/bench_suite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "harness/bench_attention.h"
#include "harness/bench_kernels.h"
#include "harness/counters.h"
#include "harness/import.h"
#include "harness/membw.h"
#include "harness/results.h"
#include "kernels/kernels.h"

#define MEMBW_BYTES ((size_t)512 << 20)
#define MEMBW_BYTES_QUICK ((size_t)128 << 20)
#define MEMBW_RUNS 7
#define MEMBW_RUNS_QUICK 3
#define COUNTED_TOKENS 32

struct suite {
    const struct quarry_bench_suite_opts *o;
    const struct quarry_bench_suite_callbacks *cb;
    cJSON *doc;
    cJSON *figures;          /* doc.results */
    int threads;             /* resolved */
    int thread_counts[2];    /* {1, threads} (one entry when threads is 1) */
    int n_thread_counts;
    double membw_best[2];    /* GB/s per entry of thread_counts */
    struct quarry_counters counters;
    cJSON *counters_per_model; /* doc.counters.per_token: model file -> object */
    double decode_bytes;     /* weight bytes per decoded token of the model being measured */
    int failed;              /* a callback could not add its figure */
};

void quarry_bench_suite_opts_default(struct quarry_bench_suite_opts *o)
{
    memset(o, 0, sizeof *o);
    o->run_kernels = o->run_attention = o->run_model = 1;
    o->git_dirty = -1;
}

void quarry_cpu_flags(char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (colon) {
            colon++;
            while (*colon == ' ')
                colon++;
            snprintf(buf, size, "%s", colon);
            buf[strcspn(buf, "\n")] = '\0';
        }
        break;
    }
    free(line);
    fclose(f);
}

static void note(struct suite *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct suite *s, const char *fmt, ...)
{
    if (!s->cb || !s->cb->on_note)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    s->cb->on_note(text, s->cb->ud);
}

/* Adds the figure to the document (extra: more members for its object,
 * taken over) and reports it. */
static void add_figure(struct suite *s, const struct quarry_figure *f, cJSON *extra)
{
    cJSON *j = quarry_figure_json(f);
    int ok = j != NULL;
    for (cJSON *it = extra ? extra->child : NULL; ok && it; it = it->next) {
        cJSON *copy = cJSON_Duplicate(it, 1);
        ok = copy && cJSON_AddItemToObject(j, it->string, copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    cJSON_Delete(extra);
    if (!ok || !cJSON_AddItemToArray(s->figures, j)) {
        cJSON_Delete(j);
        s->failed = 1;
        return;
    }
    if (s->cb && s->cb->on_figure)
        s->cb->on_figure(f, s->cb->ud);
}

/* ---- document sections ---------------------------------------------------- */

static int describe_build(struct suite *s)
{
    cJSON *build = cJSON_GetObjectItemCaseSensitive(s->doc, "build");
    cJSON *machine = cJSON_GetObjectItemCaseSensitive(s->doc, "machine");
    if (!build || !machine)
        return -1;
    const struct quarry_bench_suite_opts *o = s->o;
    int ok = (o->git_sha ? cJSON_AddStringToObject(build, "git_sha", o->git_sha)
                         : cJSON_AddNullToObject(build, "git_sha")) != NULL;
    ok = ok && (o->git_dirty >= 0 ? cJSON_AddBoolToObject(build, "git_dirty", o->git_dirty)
                                  : cJSON_AddNullToObject(build, "git_dirty"));
    ok = ok && (o->cflags ? cJSON_AddStringToObject(build, "cflags", o->cflags)
                          : cJSON_AddNullToObject(build, "cflags"));
    char flags[4096];
    quarry_cpu_flags(flags, sizeof flags);
    ok = ok && (flags[0] ? cJSON_AddStringToObject(machine, "cpu_flags", flags)
                         : cJSON_AddNullToObject(machine, "cpu_flags"));
    cJSON *config = quarry_results_config(s->doc);
    ok = ok && config && cJSON_AddNumberToObject(config, "threads", s->threads);
    ok = ok && cJSON_AddBoolToObject(config, "quick", o->quick);
    ok = ok && cJSON_AddBoolToObject(config, "kernels", o->run_kernels);
    ok = ok && cJSON_AddBoolToObject(config, "attention", o->run_attention);
    ok = ok && cJSON_AddBoolToObject(config, "model", o->run_model);
    cJSON *models = ok ? cJSON_CreateStringArray(o->models, o->n_models) : NULL;
    ok = models && cJSON_AddItemToObject(config, "models", models);
    if (!ok)
        cJSON_Delete(models);
    return ok ? 0 : -1;
}

static cJSON *raw_section(struct suite *s, const char *name)
{
    cJSON *raw = cJSON_GetObjectItemCaseSensitive(s->doc, "raw");
    if (!raw)
        raw = cJSON_AddObjectToObject(s->doc, "raw");
    return raw ? cJSON_AddArrayToObject(raw, name) : NULL;
}

/* ---- memory bandwidth --------------------------------------------------------- */

static int run_membw(struct suite *s, quarry_error *err)
{
    cJSON *section = cJSON_AddObjectToObject(s->doc, "membw");
    if (!section)
        return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
    for (int i = 0; i < s->n_thread_counts; i++) {
        quarry_threadpool *pool = NULL;
        int rc = quarry_threadpool_new(s->thread_counts[i], &pool, err);
        struct quarry_membw_result r;
        if (rc == 0)
            rc = quarry_membw_read(pool, s->o->quick ? MEMBW_BYTES_QUICK : MEMBW_BYTES,
                                   s->o->quick ? MEMBW_RUNS_QUICK : MEMBW_RUNS, &r, err);
        quarry_threadpool_free(pool);
        if (rc)
            return rc;
        s->membw_best[i] = r.best_gbps;
        char name[32];
        snprintf(name, sizeof name, "read t%d", r.threads);
        struct quarry_figure f = {.group = "membw", .name = name, .unit = "GB/s",
                                  .stats = r.gbps, .higher_is_better = 1,
                                  .fraction_of_membw = -1};
        quarry_figure_label_num(&f, "threads", r.threads);
        quarry_figure_label_num(&f, "bytes", (double)r.bytes);
        add_figure(s, &f, NULL);
        cJSON *o = cJSON_CreateObject();
        char key[16];
        snprintf(key, sizeof key, "t%d", r.threads);
        int ok = o && cJSON_AddNumberToObject(o, "threads", r.threads) &&
                 cJSON_AddNumberToObject(o, "bytes", (double)r.bytes) &&
                 cJSON_AddNumberToObject(o, "best_gbps", r.best_gbps) &&
                 cJSON_AddItemToObject(o, "gbps", quarry_stats_json(&r.gbps, "GB/s")) &&
                 cJSON_AddItemToObject(section, key, o);
        if (!ok) {
            cJSON_Delete(o);
            return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
        }
    }
    return 0;
}

/* Best bandwidth measured with `threads` threads (or the closest fewer). */
static double membw_for(const struct suite *s, int threads)
{
    double best = -1;
    for (int i = 0; i < s->n_thread_counts; i++)
        if (s->thread_counts[i] <= threads && s->membw_best[i] > best)
            best = s->membw_best[i];
    return best;
}

/* ---- kernels -------------------------------------------------------------------- */

static void on_kernel_row(const struct quarry_bench_row *r, void *ud)
{
    struct suite *s = ud;
    char shape[48] = "", name[160];
    if (r->n > 0)
        snprintf(shape, sizeof shape, "%lldx%lld m%lld", (long long)r->n, (long long)r->k,
                 (long long)r->m);
    else if (r->elements > 0)
        snprintf(shape, sizeof shape, "%lld", (long long)r->elements);
    if (strcmp(r->op, "membw_read") == 0)
        snprintf(name, sizeof name, "membw_read %s t%d", r->path ? r->path : "", r->threads);
    else
        snprintf(name, sizeof name, "%s %s %s %s t%d", r->op, r->type, r->isa, shape,
                 r->threads);
    struct quarry_figure f = {.group = "kernels", .name = name, .unit = r->unit,
                              .stats = r->value, .higher_is_better = 1,
                              .fraction_of_membw = r->fraction_of_membw};
    quarry_figure_label_str(&f, "op", r->op);
    quarry_figure_label_str(&f, "type", r->type);
    quarry_figure_label_str(&f, "isa", r->isa);
    quarry_figure_label_str(&f, "shape", shape);
    quarry_figure_label_num(&f, "threads", r->threads);
    if (r->path)
        quarry_figure_label_str(&f, "path", r->path);
    add_figure(s, &f, NULL);
}

static void on_kernel_note(const char *text, void *ud)
{
    note(ud, "kernels: %s", text);
}

static int run_kernels(struct suite *s, quarry_error *err)
{
    cJSON *raw = raw_section(s, "kernels");
    if (!raw)
        return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
    const struct quarry_bench_callbacks cb = {on_kernel_row, on_kernel_note, s};
    /* every level: the single-thread kernels and matvec */
    struct quarry_bench_kernels_opts ko;
    memset(&ko, 0, sizeof ko);
    ko.quick = s->o->quick;
    ko.ops = QUARRY_BENCH_QUANTIZE | QUARRY_BENCH_DEQUANTIZE | QUARRY_BENCH_VEC_DOT |
             QUARRY_BENCH_MATVEC;
    for (int i = 0; i < s->n_thread_counts; i++)
        ko.threads[ko.n_threads++] = s->thread_counts[i];
    int rc = quarry_bench_kernels(&ko, raw, &cb, err);
    if (rc)
        return rc;
    /* matmul (prompt processing) only at the level the engine uses: at the
     * lower levels it takes minutes and says little */
    memset(&ko, 0, sizeof ko);
    ko.quick = s->o->quick;
    ko.ops = QUARRY_BENCH_MATMUL;
    ko.isa_mask = 1u << quarry_isa_chosen();
    ko.threads[ko.n_threads++] = s->threads;
    return quarry_bench_kernels(&ko, raw, &cb, err);
}

/* ---- attention -------------------------------------------------------------------- */

static void on_attention_row(const struct quarry_bench_attention_row *r, void *ud)
{
    struct suite *s = ud;
    char name[128];
    if (strcmp(r->impl, "flash") == 0)
        snprintf(name, sizeof name, "flash %s %s d%d q%d", r->isa, r->kv_type, r->depth, r->n_q);
    else
        snprintf(name, sizeof name, "%s %s d%d q%d", r->impl, r->kv_type, r->depth, r->n_q);
    struct quarry_figure f = {.group = "attention", .name = name, .unit = "GFLOP/s",
                              .stats = r->gflops, .higher_is_better = 1,
                              .fraction_of_membw = -1};
    quarry_figure_label_str(&f, "impl", r->impl);
    quarry_figure_label_str(&f, "isa", r->isa);
    quarry_figure_label_str(&f, "kv_type", r->kv_type);
    quarry_figure_label_num(&f, "depth", r->depth);
    quarry_figure_label_num(&f, "n_q", r->n_q);
    quarry_figure_label_num(&f, "threads", 1);
    cJSON *extra = cJSON_CreateObject();
    if (extra) {
        cJSON_AddNumberToObject(extra, "kv_gbytes_per_s", r->kv_gbytes_per_s);
        if (r->nmse >= 0)
            cJSON_AddNumberToObject(extra, "nmse_vs_reference", r->nmse);
        else
            cJSON_AddNullToObject(extra, "nmse_vs_reference");
    }
    add_figure(s, &f, extra);
}

static int run_attention(struct suite *s, quarry_error *err)
{
    cJSON *raw = raw_section(s, "attention");
    if (!raw)
        return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
    struct quarry_bench_attention_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.kv_type = QUARRY_TYPE_F16;
    ao.quick = s->o->quick;
    return quarry_bench_attention(&ao, raw, on_attention_row, s, err);
}

/* ---- model -------------------------------------------------------------------------- */

/* Bytes a decoding step reads from the weights: every tensor, except that
 * the token embedding gives one row per token - unless the output matrix is
 * tied to it and read whole. 0 when the file cannot be read. */
static double decode_bytes_per_token(const char *path)
{
    gguf_file *f = NULL;
    quarry_error err = {0};
    if (gguf_open(path, &f, &err) != 0)
        return 0;
    const struct gguf_tensor *embd = gguf_find_tensor(f, "token_embd.weight");
    const int tied = gguf_find_tensor(f, "output.weight") == NULL;
    double bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        bytes += (double)f->tensors[i].n_bytes;
    if (embd && !tied && embd->n_dims >= 2 && embd->ne[1] > 0)
        bytes -= (double)embd->n_bytes - (double)embd->n_bytes / (double)embd->ne[1];
    gguf_close(f);
    return bytes;
}

/* Hardware counters over a 1-thread decode of COUNTED_TOKENS tokens. Fills
 * values (all -1 when nothing could be counted). */
static int count_decode(struct suite *s, const char *path, long long values[QUARRY_CTR_COUNT],
                        quarry_error *err)
{
    for (int e = 0; e < QUARRY_CTR_COUNT; e++)
        values[e] = -1;
    quarry_model *m = NULL;
    quarry_context *ctx = NULL;
    float *logits = NULL;
    int rc = quarry_model_open(path, &m, err);
    if (rc)
        return rc;
    struct quarry_context_params cp;
    quarry_context_params_default(&cp);
    cp.n_ctx = COUNTED_TOKENS + 1;
    cp.pool = NULL; /* the counting thread does all the work */
    if ((rc = quarry_context_new(m, &cp, &ctx, err)))
        goto done;
    logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    if (!logits) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
        goto done;
    }
    int32_t token = 1 % m->hp.n_vocab;
    quarry_batch b = {.n_tokens = 1, .token = &token};
    if ((rc = quarry_forward(m, ctx, &b, logits, err))) /* warm-up: page the weights in */
        goto done;
    if (quarry_counters_start(&s->counters) != 0)
        goto done;
    for (int i = 0; i < COUNTED_TOKENS && rc == 0; i++) {
        token = (int32_t)((7919u * (unsigned)(i + 2)) % (unsigned)m->hp.n_vocab);
        rc = quarry_forward(m, ctx, &b, logits, err);
    }
    quarry_counters_stop(&s->counters, values);
done:
    free(logits);
    quarry_context_free(ctx);
    quarry_model_free(m);
    return rc;
}

static void on_model_row(const struct quarry_bench_model_row *r, void *ud)
{
    struct suite *s = ud;
    char name[256];
    quarry_model_figure_name(name, sizeof name, r->model_type, r->test, r->n_threads);
    struct quarry_figure f = {.group = "model", .name = name, .unit = "tokens/s",
                              .stats = r->ts, .samples = r->samples_ts,
                              .n_samples = r->n_samples, .higher_is_better = 1,
                              .fraction_of_membw = -1};
    const double bw = membw_for(s, r->n_threads);
    const double decode_gbps = s->decode_bytes * r->ts.mean * 1e-9;
    if (r->n_gen > 0 && r->n_prompt == 0 && bw > 0 && decode_gbps > 0)
        f.fraction_of_membw = decode_gbps / bw;
    quarry_figure_label_str(&f, "model", r->model_type);
    quarry_figure_label_str(&f, "model_filename", r->model_filename);
    quarry_figure_label_str(&f, "test", r->test);
    quarry_figure_label_num(&f, "threads", r->n_threads);
    quarry_figure_label_num(&f, "n_prompt", r->n_prompt);
    quarry_figure_label_num(&f, "n_gen", r->n_gen);
    quarry_figure_label_num(&f, "model_size", (double)r->model_size);
    quarry_figure_label_num(&f, "n_params", (double)r->n_params);
    quarry_figure_label_str(&f, "type_kv", r->type_kv);
    cJSON *extra = cJSON_CreateObject();
    if (extra) {
        if (r->n_prompt > 0)
            cJSON_AddNumberToObject(extra, "gflops", r->gflops);
        else {
            cJSON_AddNumberToObject(extra, "weight_gbps", r->weight_gbps);
            cJSON_AddNumberToObject(extra, "decode_bytes_per_token", s->decode_bytes);
            cJSON_AddNumberToObject(extra, "decode_gbps", decode_gbps);
        }
        if (r->load_before >= 0)
            cJSON_AddNumberToObject(extra, "load_avg_before", r->load_before);
        if (r->load_after >= 0)
            cJSON_AddNumberToObject(extra, "load_avg_after", r->load_after);
        if (r->n_gen > 0) {
            /* filled in after the counted decode (null until then) */
            cJSON *c = quarry_counters_json(&s->counters, NULL, 1);
            if (c)
                cJSON_AddItemToObject(extra, "counters_per_token", c);
        }
    }
    add_figure(s, &f, extra);
}

/* Replaces the counters_per_token of this model's tg figures. */
static int attach_counters(struct suite *s, const char *model_path, const cJSON *per_token)
{
    cJSON *fig;
    cJSON_ArrayForEach(fig, s->figures)
    {
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(fig, "labels");
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(labels, "model_filename");
        if (!cJSON_IsString(file) || strcmp(file->valuestring, model_path) != 0 ||
            !cJSON_GetObjectItemCaseSensitive(fig, "counters_per_token"))
            continue;
        cJSON *copy = cJSON_Duplicate(per_token, 1);
        if (!copy || !cJSON_ReplaceItemInObjectCaseSensitive(fig, "counters_per_token", copy)) {
            cJSON_Delete(copy);
            return -1;
        }
    }
    return 0;
}

static int run_model(struct suite *s, quarry_error *err)
{
    cJSON *raw = raw_section(s, "model");
    if (!raw)
        return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
    for (int mi = 0; mi < s->o->n_models; mi++) {
        struct quarry_bench_model_opts mo;
        quarry_bench_model_opts_default(&mo);
        mo.models[0] = s->o->models[mi];
        mo.n_models = 1;
        mo.threads[0] = s->threads;
        mo.n_threads = 1;
        if (s->o->quick) {
            mo.n_prompt[0] = 64;
            mo.n_gen[0] = 16;
            mo.reps = 2;
        }
        if (s->o->n_prompt > 0)
            mo.n_prompt[0] = s->o->n_prompt;
        if (s->o->n_gen > 0)
            mo.n_gen[0] = s->o->n_gen;
        if (s->o->reps > 0)
            mo.reps = s->o->reps;
        note(s, "model %d/%d: %s", mi + 1, s->o->n_models, s->o->models[mi]);
        s->decode_bytes = decode_bytes_per_token(s->o->models[mi]);
        int rc = quarry_bench_model(&mo, raw, on_model_row, s, err);
        if (rc)
            return rc;
        if (s->counters.n_available == 0)
            continue;
        long long values[QUARRY_CTR_COUNT];
        if ((rc = count_decode(s, s->o->models[mi], values, err)))
            return rc;
        cJSON *per_token = quarry_counters_json(&s->counters, values, COUNTED_TOKENS);
        const int ok = per_token && attach_counters(s, s->o->models[mi], per_token) == 0 &&
                       cJSON_AddItemToObject(s->counters_per_model, s->o->models[mi], per_token);
        if (!ok) {
            cJSON_Delete(per_token);
            return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
        }
    }
    return 0;
}

/* ---- driver ------------------------------------------------------------------------ */

static int open_counters(struct suite *s)
{
    quarry_counters_open(&s->counters);
    cJSON *c = cJSON_AddObjectToObject(s->doc, "counters");
    cJSON *avail = c ? cJSON_AddArrayToObject(c, "available") : NULL;
    int ok = avail != NULL;
    for (int e = 0; ok && e < QUARRY_CTR_COUNT; e++)
        if (s->counters.available[e])
            ok = cJSON_AddItemToArray(avail, cJSON_CreateString(quarry_counter_name((enum quarry_counter)e)));
    ok = ok && cJSON_AddStringToObject(c, "note", s->counters.note);
    ok = ok && cJSON_AddStringToObject(c, "method",
                                       "PAPI events of one thread over a 1-thread decode of 32 "
                                       "tokens after a warm-up token, divided by 32");
    s->counters_per_model = ok ? cJSON_AddObjectToObject(c, "per_token") : NULL;
    if (!s->counters_per_model)
        return -1;
    if (s->counters.n_available == 0)
        note(s, "hardware counters: none available on this machine (%s): cycles, "
                "instructions, IPC and cache misses are null in the results",
             s->counters.note[0] ? s->counters.note : "PAPI");
    else if (s->counters.note[0])
        note(s, "hardware counters: %d of %d events available; %s", s->counters.n_available,
             QUARRY_CTR_COUNT, s->counters.note);
    return 0;
}

int quarry_bench_suite(const struct quarry_bench_suite_opts *o, cJSON *doc,
                       const struct quarry_bench_suite_callbacks *cb, quarry_error *err)
{
    struct suite s = {.o = o, .cb = cb, .doc = doc, .figures = quarry_results_rows(doc)};
    s.counters.eventset = -1;
    if (!s.figures)
        return quarry_errorf(err, QUARRY_EINVAL, "bench suite: not a results document");
    if (o->n_models < 0 || o->n_models > QUARRY_BENCH_MODEL_MAX_LIST)
        return quarry_errorf(err, QUARRY_EINVAL, "bench suite: 0 to %d models",
                             QUARRY_BENCH_MODEL_MAX_LIST);
    s.threads = o->threads > 0 ? o->threads : quarry_physical_cores();
    s.thread_counts[s.n_thread_counts++] = 1;
    if (s.threads > 1)
        s.thread_counts[s.n_thread_counts++] = s.threads;
    if (describe_build(&s) != 0 || open_counters(&s) != 0) {
        quarry_counters_close(&s.counters);
        return quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory");
    }
    note(&s, "memory read bandwidth (%d and %d threads)", 1, s.threads);
    int rc = run_membw(&s, err);
    if (rc == 0 && o->run_kernels) {
        note(&s, "kernels: every type and ISA level");
        rc = run_kernels(&s, err);
    }
    if (rc == 0 && o->run_attention) {
        note(&s, "attention: flash vs reference, 1 thread");
        rc = run_attention(&s, err);
    }
    if (rc == 0 && o->run_model && o->n_models > 0)
        rc = run_model(&s, err);
    else if (rc == 0 && o->run_model)
        note(&s, "model: no model files given, skipped");
    quarry_counters_close(&s.counters);
    if (rc == 0 && s.failed)
        rc = quarry_errorf(err, QUARRY_ENOMEM, "bench suite: out of memory recording figures");
    return rc;
}
