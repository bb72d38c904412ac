/*
 * bench_model.c - llama-bench's pp/tg measurement for quarry models (see
 * bench_model.h). For each model: load it once; for each thread count: one
 * pool and one context sized for the largest test; then the pp tests and the
 * tg tests, each a warm-up and reps runs from an empty KV cache.
 */
#include "harness/bench_model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "engine/tokenizer.h"
#include "harness/results.h"

void quarry_bench_model_opts_default(struct quarry_bench_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_prompt[0] = 512;
    o->n_n_prompt = 1;
    o->n_gen[0] = 128;
    o->n_n_gen = 1;
    o->threads[0] = quarry_physical_cores();
    o->n_threads = 1;
    o->reps = 5;
    o->n_batch = 512;
    o->kv_type = QUARRY_TYPE_F16;
    o->seed = 1;
}

const char *quarry_bench_ftype_desc(uint32_t ftype)
{
    /* llama.cpp's llama_model_ftype_name() */
    switch (ftype) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return NULL;
    }
}

/* llama.cpp's size label for the llama architecture, chosen by layer count
 * as its loader does; "?B" otherwise (stories260K, custom shapes). */
static const char *llama_size_label(int32_t n_layer, int32_t n_vocab)
{
    switch (n_layer) {
    case 16: return "1B";
    case 22: return "1B";
    case 26: return "3B";
    case 28: return "3B";
    case 32: return n_vocab == 128256 ? "8B" : "7B";
    case 40: return "13B";
    case 48: return "34B";
    case 60: return "30B";
    case 80: return "70B";
    default: return "?B";
    }
}

/* A file without general.file_type: as llama.cpp, the file type of the
 * tensor type most tensors have (K-quants as their _M mixture). */
static uint32_t guess_ftype(const gguf_file *f)
{
    uint64_t count[QUARRY_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if ((unsigned)f->tensors[i].type < QUARRY_TYPE_COUNT)
            count[f->tensors[i].type]++;
    int best = 0;
    for (int t = 1; t < QUARRY_TYPE_COUNT; t++)
        if (count[t] > count[best])
            best = t;
    switch (best) {
    case QUARRY_TYPE_F32: return 0;
    case QUARRY_TYPE_F16: return 1;
    case QUARRY_TYPE_Q4_0: return 2;
    case QUARRY_TYPE_Q4_1: return 3;
    case QUARRY_TYPE_Q8_0: return 7;
    case QUARRY_TYPE_Q5_0: return 8;
    case QUARRY_TYPE_Q5_1: return 9;
    case QUARRY_TYPE_Q2_K: return 10;
    case QUARRY_TYPE_Q3_K: return 12;
    case QUARRY_TYPE_Q4_K: return 15;
    case QUARRY_TYPE_Q5_K: return 17;
    case QUARRY_TYPE_Q6_K: return 18;
    case QUARRY_TYPE_BF16: return 32;
    default: return UINT32_MAX;
    }
}

/* ---- a loaded model and what the rows say about it ----------------------- */

struct bench_model {
    quarry_model *m;
    const char *path;
    char desc[128];
    uint64_t size, n_params;
    double layer_matrix_params;  /* weights of the per-layer matrices */
    double output_params;        /* weights of the output matrix */
    bool add_bos;
    int32_t bos;
};

static double weight_params(const struct quarry_weight *w)
{
    return (double)w->n_rows * (double)w->n_cols;
}

static int bench_model_open(const char *path, struct bench_model *bm, quarry_error *err)
{
    memset(bm, 0, sizeof *bm);
    bm->path = path;
    int rc = quarry_model_open(path, &bm->m, err);
    if (rc)
        return rc;
    const gguf_file *f = bm->m->own_file;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        bm->size += f->tensors[i].n_bytes;
        bm->n_params += f->tensors[i].n_elements;
    }
    const struct quarry_hparams *hp = &bm->m->hp;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const struct quarry_layer *L = &bm->m->layers[l];
        bm->layer_matrix_params += weight_params(&L->wq) + weight_params(&L->wk) +
                                   weight_params(&L->wv) + weight_params(&L->wo) +
                                   weight_params(&L->w_gate) + weight_params(&L->w_up) +
                                   weight_params(&L->w_down);
    }
    bm->output_params = weight_params(&bm->m->output);
    uint32_t ftype = UINT32_MAX;
    const bool has_ftype = gguf_get_u32(f, "general.file_type", &ftype, NULL) == 0;
    if (!has_ftype)
        ftype = guess_ftype(f);
    const char *fdesc = quarry_bench_ftype_desc(ftype);
    snprintf(bm->desc, sizeof bm->desc, "%s %s %s%s", bm->m->arch->name,
             llama_size_label(hp->n_layer, hp->n_vocab), fdesc ? fdesc : "(unknown type)",
             !has_ftype && fdesc ? " (guessed)" : "");
    /* The first token is BOS when the model adds one (as in llama-bench). A
     * file without a usable tokenizer gets random ids only. */
    quarry_tokenizer *tok = NULL;
    bm->bos = -1;
    if (quarry_tokenizer_load(f, &tok, NULL) == 0) {
        bm->add_bos = quarry_tokenizer_add_bos(tok);
        bm->bos = quarry_tokenizer_bos(tok);
        if (bm->bos < 0 || bm->bos >= hp->n_vocab)
            bm->add_bos = false;
        quarry_tokenizer_free(tok);
    }
    return 0;
}

/* ---- one test ------------------------------------------------------------ */

struct bench_run {
    const struct bench_model *bm;
    quarry_context *ctx;
    float *logits;        /* [n_vocab] */
    int32_t *tokens;      /* [capacity] */
    int32_t n_batch;
    uint64_t rng;
};

static uint64_t next_random(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static int32_t random_token(struct bench_run *r)
{
    return (int32_t)(next_random(&r->rng) % (uint64_t)r->bm->m->hp.n_vocab);
}

/* llama-bench's test_prompt: n tokens (BOS first) in passes of n_batch. */
static int run_prompt(struct bench_run *r, int32_t n, quarry_error *err)
{
    for (int32_t i = 0; i < n; i++)
        r->tokens[i] = i == 0 && r->bm->add_bos ? r->bm->bos : random_token(r);
    for (int32_t done = 0; done < n;) {
        const int32_t chunk = n - done < r->n_batch ? n - done : r->n_batch;
        const quarry_batch b = {.n_tokens = chunk, .token = r->tokens + done};
        int rc = quarry_forward(r->bm->m, r->ctx, &b, r->logits, err);
        if (rc)
            return rc;
        done += chunk;
    }
    return 0;
}

/* llama-bench's test_gen: n passes of one token (BOS first, then random). */
static int run_gen(struct bench_run *r, int32_t n, quarry_error *err)
{
    int32_t token = r->bm->add_bos ? r->bm->bos : random_token(r);
    for (int32_t i = 0; i < n; i++) {
        const quarry_batch b = {.n_tokens = 1, .token = &token};
        int rc = quarry_forward(r->bm->m, r->ctx, &b, r->logits, err);
        if (rc)
            return rc;
        token = random_token(r);
    }
    return 0;
}

static double load_average(void)
{
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

static cJSON *row_json(const struct quarry_bench_model_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ns = cJSON_CreateDoubleArray(r->samples_ns, r->n_samples);
    cJSON *ts = cJSON_CreateDoubleArray(r->samples_ts, r->n_samples);
    cJSON *stats = quarry_stats_json(&r->ts, "tokens/s");
    bool ok = o && ns && ts && stats;
    /* llama-bench's fields */
    ok = ok && cJSON_AddStringToObject(o, "model_filename", r->model_filename);
    ok = ok && cJSON_AddStringToObject(o, "model_type", r->model_type);
    ok = ok && cJSON_AddNumberToObject(o, "model_size", (double)r->model_size);
    ok = ok && cJSON_AddNumberToObject(o, "model_n_params", (double)r->n_params);
    ok = ok && cJSON_AddNumberToObject(o, "n_params", (double)r->n_params);
    ok = ok && cJSON_AddStringToObject(o, "backends", "CPU");
    ok = ok && cJSON_AddNumberToObject(o, "n_batch", r->n_batch);
    ok = ok && cJSON_AddNumberToObject(o, "n_ubatch", r->n_batch);
    ok = ok && cJSON_AddNumberToObject(o, "n_threads", r->n_threads);
    ok = ok && cJSON_AddStringToObject(o, "type_k", r->type_kv);
    ok = ok && cJSON_AddStringToObject(o, "type_v", r->type_kv);
    ok = ok && cJSON_AddNumberToObject(o, "n_gpu_layers", 0);
    ok = ok && cJSON_AddBoolToObject(o, "flash_attn", 1); /* quarry's attention is flash-style */
    ok = ok && cJSON_AddNumberToObject(o, "n_prompt", r->n_prompt);
    ok = ok && cJSON_AddNumberToObject(o, "n_gen", r->n_gen);
    ok = ok && cJSON_AddNumberToObject(o, "n_depth", 0);
    ok = ok && cJSON_AddStringToObject(o, "test_time", r->test_time);
    ok = ok && cJSON_AddNumberToObject(o, "avg_ns", r->ns.mean);
    ok = ok && cJSON_AddNumberToObject(o, "stddev_ns", r->ns.stddev);
    ok = ok && cJSON_AddNumberToObject(o, "avg_ts", r->ts.mean);
    ok = ok && cJSON_AddNumberToObject(o, "stddev_ts", r->ts.stddev);
    ok = ok && cJSON_AddItemToObject(o, "samples_ns", ns);
    if (ok)
        ns = NULL;
    ok = ok && cJSON_AddItemToObject(o, "samples_ts", ts);
    if (ok)
        ts = NULL;
    /* quarry's additions */
    ok = ok && cJSON_AddStringToObject(o, "test", r->test);
    ok = ok && cJSON_AddItemToObject(o, "tokens_per_s", stats);
    if (ok)
        stats = NULL;
    ok = ok && (r->load_before >= 0 ? cJSON_AddNumberToObject(o, "load_avg_before", r->load_before)
                                    : cJSON_AddNullToObject(o, "load_avg_before"));
    ok = ok && (r->load_after >= 0 ? cJSON_AddNumberToObject(o, "load_avg_after", r->load_after)
                                   : cJSON_AddNullToObject(o, "load_avg_after"));
    if (r->n_prompt > 0)
        ok = ok && cJSON_AddNumberToObject(o, "gflops", r->gflops);
    else
        ok = ok && cJSON_AddNumberToObject(o, "weight_gbps", r->weight_gbps);
    cJSON_Delete(ns);
    cJSON_Delete(ts);
    cJSON_Delete(stats);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Warm-up, then reps timed runs of one test (n_prompt or n_gen is 0). */
static int run_test(struct bench_run *r, const struct quarry_bench_model_opts *o, int n_threads,
                    int32_t n_prompt, int32_t n_gen, cJSON *rows,
                    quarry_bench_model_row_fn on_row, void *ud, quarry_error *err)
{
    quarry_kvcache *kv = quarry_context_kv(r->ctx);
    double samples_ns[QUARRY_BENCH_MODEL_MAX_REPS], samples_ts[QUARRY_BENCH_MODEL_MAX_REPS];
    char test[32], when[32] = "";
    snprintf(test, sizeof test, n_prompt > 0 ? "pp%d" : "tg%d", n_prompt > 0 ? n_prompt : n_gen);
    const time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const double load_before = load_average();
    int rc = quarry_kvcache_clear(kv, -1, err);
    /* warm-up, as llama-bench: the whole prompt, or a single generated token */
    if (!rc)
        rc = n_prompt > 0 ? run_prompt(r, n_prompt, err) : run_gen(r, 1, err);
    for (int i = 0; i < o->reps && !rc; i++) {
        if ((rc = quarry_kvcache_clear(kv, -1, err)))
            break;
        const double t0 = quarry_now_s();
        rc = n_prompt > 0 ? run_prompt(r, n_prompt, err) : run_gen(r, n_gen, err);
        const double dt = quarry_now_s() - t0;
        samples_ns[i] = dt * 1e9;
        samples_ts[i] = (double)(n_prompt + n_gen) / dt;
    }
    if (rc)
        return rc;
    struct quarry_bench_model_row row = {
        .model_filename = r->bm->path, .model_type = r->bm->desc, .model_size = r->bm->size,
        .n_params = r->bm->n_params, .n_threads = n_threads, .n_prompt = n_prompt,
        .n_gen = n_gen, .n_batch = o->n_batch, .type_kv = quarry_type_info(o->kv_type)->name,
        .test = test, .samples_ns = samples_ns, .samples_ts = samples_ts, .n_samples = o->reps,
        .load_before = load_before, .load_after = load_average(), .test_time = when};
    quarry_stats_compute(samples_ns, o->reps, &row.ns);
    quarry_stats_compute(samples_ts, o->reps, &row.ts);
    if (n_prompt > 0)
        row.gflops = 2.0 * (r->bm->layer_matrix_params * n_prompt + r->bm->output_params *
                            ((n_prompt + o->n_batch - 1) / o->n_batch)) * row.ts.mean /
                     n_prompt / 1e9;
    else
        row.weight_gbps = (double)r->bm->size * row.ts.mean / 1e9;
    if (rows) {
        cJSON *j = row_json(&row);
        if (!j || !cJSON_AddItemToArray(rows, j)) {
            cJSON_Delete(j);
            return quarry_errorf(err, QUARRY_ENOMEM, "bench model: out of memory");
        }
    }
    if (on_row)
        on_row(&row, ud);
    return 0;
}

static int check_opts(const struct quarry_bench_model_opts *o, quarry_error *err)
{
    if (o->n_models < 1 || o->n_models > QUARRY_BENCH_MODEL_MAX_LIST)
        return quarry_errorf(err, QUARRY_EINVAL, "bench model: give 1 to %d models",
                             QUARRY_BENCH_MODEL_MAX_LIST);
    if (o->reps < 1 || o->reps > QUARRY_BENCH_MODEL_MAX_REPS)
        return quarry_errorf(err, QUARRY_EINVAL, "bench model: repetitions must be 1..%d",
                             QUARRY_BENCH_MODEL_MAX_REPS);
    if (o->n_batch < 1)
        return quarry_errorf(err, QUARRY_EINVAL, "bench model: n_batch must be at least 1");
    if (o->n_threads < 1 || o->n_n_prompt < 0 || o->n_n_gen < 0 ||
        o->n_threads > QUARRY_BENCH_MODEL_MAX_LIST || o->n_n_prompt > QUARRY_BENCH_MODEL_MAX_LIST ||
        o->n_n_gen > QUARRY_BENCH_MODEL_MAX_LIST)
        return quarry_errorf(err, QUARRY_EINVAL, "bench model: bad list lengths");
    for (int i = 0; i < o->n_threads; i++)
        if (o->threads[i] < 1 || o->threads[i] > QUARRY_THREADPOOL_MAX)
            return quarry_errorf(err, QUARRY_EINVAL, "bench model: bad thread count %d",
                                 o->threads[i]);
    for (int i = 0; i < o->n_n_prompt; i++)
        if (o->n_prompt[i] < 0)
            return quarry_errorf(err, QUARRY_EINVAL, "bench model: bad prompt size %d",
                                 o->n_prompt[i]);
    for (int i = 0; i < o->n_n_gen; i++)
        if (o->n_gen[i] < 0)
            return quarry_errorf(err, QUARRY_EINVAL, "bench model: bad generation size %d",
                                 o->n_gen[i]);
    return 0;
}

int quarry_bench_model(const struct quarry_bench_model_opts *o, cJSON *rows,
                       quarry_bench_model_row_fn on_row, void *ud, quarry_error *err)
{
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    /* the largest prompt / generation: the context and token buffer size */
    int32_t n_ctx = 1;
    for (int i = 0; i < o->n_n_prompt; i++)
        n_ctx = o->n_prompt[i] > n_ctx ? o->n_prompt[i] : n_ctx;
    for (int i = 0; i < o->n_n_gen; i++)
        n_ctx = o->n_gen[i] > n_ctx ? o->n_gen[i] : n_ctx;
    for (int mi = 0; mi < o->n_models && !rc; mi++) {
        struct bench_model bm;
        if ((rc = bench_model_open(o->models[mi], &bm, err)))
            break;
        struct bench_run r = {.bm = &bm, .n_batch = o->n_batch, .rng = o->seed | 1};
        r.logits = malloc((size_t)bm.m->hp.n_vocab * sizeof *r.logits);
        r.tokens = malloc((size_t)n_ctx * sizeof *r.tokens);
        if (!r.logits || !r.tokens)
            rc = quarry_errorf(err, QUARRY_ENOMEM, "bench model: out of memory");
        for (int ti = 0; ti < o->n_threads && !rc; ti++) {
            quarry_threadpool *pool = NULL;
            if ((rc = quarry_threadpool_new(o->threads[ti], &pool, err)))
                break;
            struct quarry_context_params cp;
            quarry_context_params_default(&cp);
            cp.n_ctx = n_ctx;
            cp.kv_type = o->kv_type;
            cp.pool = pool;
            rc = quarry_context_new(bm.m, &cp, &r.ctx, err);
            for (int i = 0; i < o->n_n_prompt && !rc; i++)
                if (o->n_prompt[i] > 0)
                    rc = run_test(&r, o, o->threads[ti], o->n_prompt[i], 0, rows, on_row, ud, err);
            for (int i = 0; i < o->n_n_gen && !rc; i++)
                if (o->n_gen[i] > 0)
                    rc = run_test(&r, o, o->threads[ti], 0, o->n_gen[i], rows, on_row, ud, err);
            quarry_context_free(r.ctx);
            r.ctx = NULL;
            quarry_threadpool_free(pool);
        }
        free(r.logits);
        free(r.tokens);
        quarry_model_free(bm.m);
    }
    return rc;
}

static cJSON *int_array(const int32_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

cJSON *quarry_bench_model_config_json(const struct quarry_bench_model_opts *o)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *models = cJSON_CreateStringArray(o->models, o->n_models);
    cJSON *pp = int_array(o->n_prompt, o->n_n_prompt);
    cJSON *tg = int_array(o->n_gen, o->n_n_gen);
    cJSON *th = cJSON_CreateIntArray(o->threads, o->n_threads);
    bool ok = c && models && pp && tg && th;
    ok = ok && cJSON_AddItemToObject(c, "models", models);
    if (ok)
        models = NULL;
    ok = ok && cJSON_AddItemToObject(c, "n_prompt", pp);
    if (ok)
        pp = NULL;
    ok = ok && cJSON_AddItemToObject(c, "n_gen", tg);
    if (ok)
        tg = NULL;
    ok = ok && cJSON_AddItemToObject(c, "threads", th);
    if (ok)
        th = NULL;
    ok = ok && cJSON_AddNumberToObject(c, "reps", o->reps);
    ok = ok && cJSON_AddNumberToObject(c, "n_batch", o->n_batch);
    ok = ok && cJSON_AddStringToObject(c, "type_kv", quarry_type_info(o->kv_type)->name);
    ok = ok && cJSON_AddNumberToObject(c, "seed", (double)o->seed);
    ok = ok && cJSON_AddStringToObject(c, "method",
                                       "llama-bench: random token ids, warm-up run, KV cache "
                                       "cleared before each run, tokens/s = n / wall time");
    cJSON_Delete(models);
    cJSON_Delete(pp);
    cJSON_Delete(tg);
    cJSON_Delete(th);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}
