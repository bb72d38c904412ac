/*
 * test_model.c - the llama model end to end.
 *
 * - Golden decoding: greedy (argmax) generation from the prompt ids in
 *   tests/data/<model>.greedy.txt must give exactly the ids llama.cpp produced
 *   (stories260K: F32 weights, GQA; llama-2-tiny-random: F16 weights, the
 *   32000-token vocabulary). The ids are parsed from the files.
 * - Batching: a prompt in one batch, in uneven chunks and token by token
 *   gives the same logits; two sequences interleaved in one batch give what
 *   each gives alone; rewinding the KV cache and decoding again equals a fresh
 *   decode; a copied sequence continues like its source.
 * - Limits and errors: the context size, bad batches, and malformed files
 *   (missing tensor, wrong shape, unknown architecture) refused with a
 *   message naming what is wrong; an absent output.weight ties to the
 *   embedding (stories260K's output.weight is a copy of it, so logits match).
 * - Rope: linear scaling and llama-3 frequency factors (written into copies
 *   of stories260K) act as they should.
 * - Synthesized random-weight models (engine/synth.h): quantized weight types
 *   and the Q8_0 KV cache, which the two real test models cannot use.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/synth.h"
#include "engine/threadpool.h"

#define STORIES "tests/data/stories260K.gguf"
#define TINY "tests/data/llama-2-tiny-random.gguf"
#define NMSE_BATCH 1e-6

/* ---- helpers ------------------------------------------------------------ */

/* Parses "<label> (N): id id ..." from a golden file; returns N (checked
 * against the ids actually listed) or -1. */
static int parse_ids(const char *text, const char *label, int32_t *ids, int max)
{
    const char *line = strstr(text, label);
    if (!line)
        return -1;
    int declared = -1;
    if (sscanf(line + strlen(label), " (%d):", &declared) != 1)
        return -1;
    const char *p = strchr(line, ':');
    if (!p)
        return -1;
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (n >= max)
            return -1;
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n == declared ? n : -1;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static quarry_model *open_model(const char *path)
{
    quarry_model *m = NULL;
    quarry_error err = {0};
    int rc = quarry_model_open(path, &m, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    return m;
}

static quarry_context *new_context(const quarry_model *m, int32_t n_ctx, int32_t n_seq,
                                   enum quarry_type kv_type, quarry_threadpool *pool)
{
    struct quarry_context_params p;
    quarry_context_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.kv_type = kv_type;
    p.pool = pool;
    quarry_context *ctx = NULL;
    quarry_error err = {0};
    int rc = quarry_context_new(m, &p, &ctx, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    return ctx;
}

/* Runs tokens [0, n) of one sequence as one batch starting at the sequence's
 * end; all_logits: a row per token, else only the last. */
static void run_tokens(const quarry_model *m, quarry_context *ctx, int32_t seq,
                       const int32_t *tokens, int32_t n, bool all_logits, float *logits)
{
    int32_t *seqs = malloc(n * sizeof *seqs);
    int8_t *want = malloc(n);
    assert_non_null(seqs && want);
    for (int32_t i = 0; i < n; i++) {
        seqs[i] = seq;
        want[i] = all_logits || i == n - 1;
    }
    quarry_batch b = {.n_tokens = n, .token = tokens, .seq_id = seqs, .logits = want};
    quarry_error err = {0};
    int rc = quarry_forward(m, ctx, &b, logits, &err);
    if (rc)
        print_error("forward: %s\n", err.msg);
    assert_int_equal(rc, 0);
    free(seqs);
    free(want);
}

/* Greedy generation: prompt in one batch, then n_gen single-token steps. */
static void greedy(const quarry_model *m, quarry_context *ctx, const int32_t *prompt,
                   int32_t n_prompt, int32_t n_gen, int32_t *out)
{
    const int32_t n_vocab = m->hp.n_vocab;
    float *logits = malloc(n_vocab * sizeof *logits);
    assert_non_null(logits);
    run_tokens(m, ctx, 0, prompt, n_prompt, false, logits);
    for (int32_t i = 0; i < n_gen; i++) {
        out[i] = argmax(logits, n_vocab);
        if (i + 1 < n_gen)
            run_tokens(m, ctx, 0, &out[i], 1, false, logits);
    }
    free(logits);
}

static void check_golden(const char *model_path, const char *golden_path,
                         enum quarry_type kv_type, int n_threads)
{
    size_t size;
    char *text = tu_read_file(golden_path, &size);
    assert_non_null(text);
    int32_t prompt[64], want[256], got[256];
    const int n_prompt = parse_ids(text, "prompt_token_ids", prompt, 64);
    const int n_gen = parse_ids(text, "generated_token_ids", want, 256);
    free(text);
    assert_true(n_prompt > 0 && n_gen > 0);

    quarry_threadpool *pool = NULL;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(n_threads, &pool, &err), 0);
    quarry_model *m = open_model(model_path);
    quarry_context *ctx = new_context(m, 0, 1, kv_type, pool);
    greedy(m, ctx, prompt, n_prompt, n_gen, got);
    int first_bad = -1;
    for (int i = 0; i < n_gen && first_bad < 0; i++)
        if (got[i] != want[i])
            first_bad = i;
    if (first_bad >= 0)
        print_error("%s (%s KV, %d threads): id %d is %d, llama.cpp gave %d\n", model_path,
                    quarry_type_info(kv_type)->name, n_threads, first_bad, got[first_bad],
                    want[first_bad]);
    assert_int_equal(first_bad, -1);
    quarry_context_free(ctx);
    quarry_model_free(m);
    quarry_threadpool_free(pool);
}

/* The prompt and continuation from the stories golden file (69 ids). */
static int stories_ids(int32_t *ids, int max)
{
    size_t size;
    char *text = tu_read_file("tests/data/stories260K.greedy.txt", &size);
    assert_non_null(text);
    int n = parse_ids(text, "prompt_token_ids", ids, max);
    assert_true(n > 0);
    int k = parse_ids(text, "generated_token_ids", ids + n, max - n);
    assert_true(k > 0);
    free(text);
    return n + k;
}

/* ---- golden decoding ---------------------------------------------------- */

static void test_hparams_stories(void **state)
{
    (void)state;
    /* Shapes as tests/data's models README describes the file. */
    quarry_model *m = open_model(STORIES);
    const struct quarry_hparams *hp = &m->hp;
    assert_int_equal(hp->n_embd, 64);
    assert_int_equal(hp->n_layer, 5);
    assert_int_equal(hp->n_head, 8);
    assert_int_equal(hp->n_head_kv, 4);
    assert_int_equal(hp->head_dim, 8);
    assert_int_equal(hp->n_ff, 172);
    assert_int_equal(hp->n_rot, 8);
    assert_int_equal(hp->n_vocab, 512);
    assert_int_equal(hp->n_ctx_train, 128);
    assert_true(fabsf(hp->norm_eps - 1e-5f) < 1e-9f);
    assert_true(hp->rope_freq_base == 10000.0f && hp->rope_freq_scale == 1.0f);
    assert_int_equal(m->token_embd.type, QUARRY_TYPE_F32);
    assert_false(m->output_tied); /* the file has an output.weight */
    assert_null(m->rope_freqs);
    quarry_model_free(m);

    m = open_model(TINY);
    assert_int_equal(m->hp.n_vocab, 32000);
    assert_int_equal(m->hp.n_embd, 8);
    assert_int_equal(m->hp.head_dim, 4);
    assert_int_equal(m->hp.n_head_kv, 2);
    assert_int_equal(m->layers[0].wq.type, QUARRY_TYPE_F16);
    quarry_model_free(m);
}

static void test_golden_stories260K(void **state)
{
    (void)state;
    check_golden(STORIES, "tests/data/stories260K.greedy.txt", QUARRY_TYPE_F16, 2);
    check_golden(STORIES, "tests/data/stories260K.greedy.txt", QUARRY_TYPE_F32, 1);
}

static void test_golden_llama2_tiny(void **state)
{
    (void)state;
    check_golden(TINY, "tests/data/llama-2-tiny-random.greedy.txt", QUARRY_TYPE_F16, 2);
    check_golden(TINY, "tests/data/llama-2-tiny-random.greedy.txt", QUARRY_TYPE_F32, 1);
}

/* ---- batching ----------------------------------------------------------- */

/* One batch vs chunks of 7/13/rest vs one token at a time, all logits. */
static void test_batch_equivalence(void **state)
{
    (void)state;
    int32_t ids[128];
    const int n = stories_ids(ids, 128) - 20; /* 49 tokens: the one-batch run uses BLAS */
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    quarry_model *m = open_model(STORIES);
    const int32_t V = m->hp.n_vocab;
    float *whole = malloc((size_t)n * V * sizeof(float));
    float *chunked = malloc((size_t)n * V * sizeof(float));
    float *single = malloc((size_t)n * V * sizeof(float));
    assert_non_null(whole && chunked && single);

    quarry_context *ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, pool);
    run_tokens(m, ctx, 0, ids, n, true, whole);
    assert_int_equal(quarry_kvcache_seq_len(quarry_context_kv(ctx), 0), n);
    quarry_context_free(ctx);

    ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, pool);
    const int chunks[] = {7, 33, n - 40}; /* the 33-token chunk takes the BLAS path too */
    for (int c = 0, at = 0; c < 3; at += chunks[c], c++)
        run_tokens(m, ctx, 0, ids + at, chunks[c], true, chunked + (size_t)at * V);
    quarry_context_free(ctx);

    ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, pool);
    for (int i = 0; i < n; i++)
        run_tokens(m, ctx, 0, ids + i, 1, true, single + (size_t)i * V);
    quarry_context_free(ctx);

    const double e_chunk = tu_nmse(chunked, whole, (size_t)n * V);
    const double e_single = tu_nmse(single, whole, (size_t)n * V);
    printf("  NMSE vs one batch: chunks %.3g, token by token %.3g\n", e_chunk, e_single);
    assert_true(e_chunk < NMSE_BATCH);
    assert_true(e_single < NMSE_BATCH);
    free(whole), free(chunked), free(single);
    quarry_model_free(m);
    quarry_threadpool_free(pool);
}

/* Two sequences interleaved in one batch (and then one decode step for both)
 * give what each gives alone. */
static void test_two_sequences(void **state)
{
    (void)state;
    int32_t ids[128];
    stories_ids(ids, 128);
    const int32_t *pa = ids, *pb = ids + 30; /* two different prompts */
    const int na = 11, nb = 6;
    quarry_model *m = open_model(STORIES);
    const int32_t V = m->hp.n_vocab;

    /* alone: all logits of each prompt, then one more token */
    float alone_a[12 * 512], alone_b[7 * 512];
    quarry_context *ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, NULL);
    run_tokens(m, ctx, 0, pa, na, true, alone_a);
    run_tokens(m, ctx, 0, &ids[60], 1, true, alone_a + na * V);
    quarry_context_free(ctx);
    ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, NULL);
    run_tokens(m, ctx, 0, pb, nb, true, alone_b);
    run_tokens(m, ctx, 0, &ids[61], 1, true, alone_b + nb * V);
    quarry_context_free(ctx);

    /* together: sequence 1 = a, sequence 2 = b (sequence 0 stays unused),
     * interleaved b, a, a, b, ... in batch order */
    ctx = new_context(m, 0, 3, QUARRY_TYPE_F16, NULL);
    int32_t tok[17], seq[17], pos[17];
    int ia = 0, ib = 0;
    for (int i = 0; i < na + nb; i++) {
        const bool take_b = ib < nb && (i % 3 == 0 || ia == na);
        tok[i] = take_b ? pb[ib] : pa[ia];
        seq[i] = take_b ? 2 : 1;
        pos[i] = take_b ? ib++ : ia++;
    }
    float together[17 * 512];
    quarry_batch b = {.n_tokens = na + nb, .token = tok, .pos = pos, .seq_id = seq,
                      .logits = (const int8_t *)"\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1"};
    quarry_error err;
    assert_int_equal(quarry_forward(m, ctx, &b, together, &err), 0);
    /* rows come back in batch order */
    ia = ib = 0;
    for (int i = 0; i < na + nb; i++) {
        const float *ref = seq[i] == 2 ? alone_b + (ib++) * V : alone_a + (ia++) * V;
        assert_true(tu_nmse(together + i * V, ref, V) < NMSE_BATCH);
    }
    /* one decode step for both sequences in one batch */
    int32_t step_tok[2] = {ids[61], ids[60]}, step_seq[2] = {2, 1};
    float step[2 * 512];
    quarry_batch sb = {.n_tokens = 2, .token = step_tok, .seq_id = step_seq,
                       .logits = (const int8_t *)"\1\1"};
    assert_int_equal(quarry_forward(m, ctx, &sb, step, &err), 0);
    assert_true(tu_nmse(step, alone_b + nb * V, V) < NMSE_BATCH);
    assert_true(tu_nmse(step + V, alone_a + na * V, V) < NMSE_BATCH);
    quarry_kvcache *kv = quarry_context_kv(ctx);
    assert_int_equal(quarry_kvcache_seq_len(kv, 0), 0);
    assert_int_equal(quarry_kvcache_seq_len(kv, 1), na + 1);
    assert_int_equal(quarry_kvcache_seq_len(kv, 2), nb + 1);
    quarry_context_free(ctx);
    quarry_model_free(m);
}

/* Decode 30 tokens; rewind to 23 and decode the same tokens 23..29 again (in
 * one batch): same logits as the first time. A copy of a sequence continues
 * like the original. */
static void test_truncate_and_copy(void **state)
{
    (void)state;
    int32_t ids[128];
    stories_ids(ids, 128);
    quarry_model *m = open_model(STORIES);
    const int32_t V = m->hp.n_vocab;
    float *fresh = malloc(30 * (size_t)V * sizeof(float));
    float *again = malloc(20 * (size_t)V * sizeof(float));
    float *copy = malloc(7 * (size_t)V * sizeof(float));
    assert_non_null(fresh && again && copy);
    for (int kv_type = 0; kv_type < 2; kv_type++) {
        const enum quarry_type t = kv_type ? QUARRY_TYPE_F32 : QUARRY_TYPE_F16;
        quarry_context *ctx = new_context(m, 0, 2, t, NULL);
        quarry_kvcache *kv = quarry_context_kv(ctx);
        run_tokens(m, ctx, 0, ids, 20, true, fresh);
        for (int i = 20; i < 30; i++)
            run_tokens(m, ctx, 0, ids + i, 1, true, fresh + (size_t)i * V);
        quarry_error err;
        assert_int_equal(quarry_kvcache_truncate(kv, 0, 23, &err), 0);
        assert_int_equal(quarry_kvcache_seq_len(kv, 0), 23);
        assert_int_equal(quarry_kvcache_copy(kv, 0, 1, &err), 0);
        run_tokens(m, ctx, 0, ids + 23, 7, true, again);
        assert_true(tu_nmse(again, fresh + 23 * (size_t)V, 7 * (size_t)V) < NMSE_BATCH);
        for (int i = 23; i < 30; i++)
            run_tokens(m, ctx, 1, ids + i, 1, true, copy + (size_t)(i - 23) * V);
        assert_true(tu_nmse(copy, fresh + 23 * (size_t)V, 7 * (size_t)V) < NMSE_BATCH);
        /* truncating past the end is refused; clearing empties */
        assert_int_equal(quarry_kvcache_truncate(kv, 0, 31, &err), QUARRY_EINVAL);
        assert_int_equal(quarry_kvcache_clear(kv, 0, &err), 0);
        assert_int_equal(quarry_kvcache_seq_len(kv, 0), 0);
        assert_int_equal(quarry_kvcache_seq_len(kv, 1), 30);
        /* after clear the sequence decodes from position 0 like a fresh one */
        run_tokens(m, ctx, 0, ids, 20, true, again);
        assert_true(tu_nmse(again, fresh, 20 * (size_t)V) < NMSE_BATCH);
        quarry_context_free(ctx);
    }
    free(fresh), free(again), free(copy);
    quarry_model_free(m);
}

/* ---- limits and bad batches --------------------------------------------- */

static void test_context_limit(void **state)
{
    (void)state;
    int32_t ids[128];
    stories_ids(ids, 128);
    quarry_model *m = open_model(STORIES);
    float *logits = malloc(512 * sizeof(float));
    quarry_context *ctx = new_context(m, 16, 1, QUARRY_TYPE_F16, NULL);
    quarry_kvcache *kv = quarry_context_kv(ctx);
    quarry_batch b = {.n_tokens = 17, .token = ids};
    quarry_error err = {0};
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_ERANGE);
    assert_non_null(strstr(err.msg, "context"));
    assert_int_equal(quarry_kvcache_seq_len(kv, 0), 0);
    b.n_tokens = 16;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), 0);
    b.n_tokens = 1;
    b.token = ids + 16;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_ERANGE);
    assert_int_equal(quarry_kvcache_seq_len(kv, 0), 16);
    quarry_context_free(ctx);

    /* the default limit is the file's context_length (128 for stories260K) */
    ctx = new_context(m, 0, 1, QUARRY_TYPE_F16, NULL);
    assert_int_equal(quarry_kvcache_params(quarry_context_kv(ctx))->n_ctx, 128);
    quarry_context_free(ctx);
    free(logits);
    quarry_model_free(m);
}

static void test_bad_batches(void **state)
{
    (void)state;
    quarry_model *m = open_model(STORIES);
    quarry_context *ctx = new_context(m, 0, 2, QUARRY_TYPE_F16, NULL);
    float logits[512];
    quarry_error err = {0};
    int32_t tok[3] = {1, 403, 407}, pos[3] = {0, 1, 3}, seq[3] = {0, 0, 0};
    quarry_batch b = {.n_tokens = 3, .token = tok, .pos = pos, .seq_id = seq};
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_EINVAL); /* gap */
    assert_non_null(strstr(err.msg, "position 3"));
    pos[2] = 2;
    tok[1] = 512;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_EINVAL); /* vocab */
    tok[1] = 403;
    seq[1] = 2;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_EINVAL); /* seq id */
    seq[1] = 0;
    assert_int_equal(quarry_forward(m, ctx, &b, NULL, &err), QUARRY_EINVAL); /* no buffer */
    b.n_tokens = 0;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_EINVAL);
    assert_int_equal(quarry_kvcache_seq_len(quarry_context_kv(ctx), 0), 0);
    b.n_tokens = 3;
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), 0);
    assert_int_equal(quarry_forward(m, ctx, &b, logits, &err), QUARRY_EINVAL); /* pos 0 again */
    quarry_context_free(ctx);

    /* Q8_0 cache rows need whole 32-value blocks per head; stories has 8 */
    struct quarry_context_params p;
    quarry_context_params_default(&p);
    p.kv_type = QUARRY_TYPE_Q8_0;
    assert_int_equal(quarry_context_new(m, &p, &ctx, &err), QUARRY_EUNSUPPORTED);
    assert_null(ctx);
    quarry_model_free(m);
}

/* ---- malformed files ---------------------------------------------------- */

enum edit { DROP, RESHAPE, KEEP };

/* Extra metadata / tensors for a variant file. */
struct extras {
    const char *arch;           /* replaces general.architecture */
    float rope_linear_factor;   /* > 0: adds rope.scaling.type linear + factor */
    const float *rope_freqs;    /* adds rope_freqs.weight of n_rope_freqs floats */
    uint64_t n_rope_freqs;
};

/* Writes a copy of src to path with tensor `name` dropped or reshaped
 * (ne[1] halved), plus the extras. */
static void write_variant(const char *src, const char *path, const char *name, enum edit edit,
                          const struct extras *x)
{
    static const struct extras none = {0};
    if (!x)
        x = &none;
    gguf_file *f;
    quarry_error err;
    assert_int_equal(gguf_open(src, &f, &err), 0);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        if (x->arch && gguf_str_eq(f->kvs[i].key, "general.architecture"))
            assert_int_equal(gguf_writer_set_str(w, "general.architecture", x->arch), 0);
        else
            assert_int_equal(gguf_writer_copy_kv(w, &f->kvs[i]), 0);
    }
    if (x->rope_linear_factor > 0) {
        assert_int_equal(gguf_writer_set_str(w, "llama.rope.scaling.type", "linear"), 0);
        assert_int_equal(gguf_writer_set_f32(w, "llama.rope.scaling.factor",
                                             x->rope_linear_factor), 0);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char tname[GGUF_MAX_NAME + 1];
        snprintf(tname, sizeof tname, "%.*s", (int)t->name.len, t->name.data);
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (name && strcmp(tname, name) == 0) {
            if (edit == DROP)
                continue;
            if (edit == RESHAPE)
                ne[1] /= 2;
        }
        assert_int_equal(gguf_writer_add_tensor(w, tname, t->type, t->n_dims, ne, t->data), 0);
    }
    if (x->rope_freqs)
        assert_int_equal(gguf_writer_add_tensor(w, "rope_freqs.weight", QUARRY_TYPE_F32, 1,
                                                &x->n_rope_freqs, x->rope_freqs), 0);
    int rc = gguf_writer_write(w, path, &err);
    if (rc)
        print_error("write: %s\n", err.msg);
    assert_int_equal(rc, 0);
    gguf_writer_free(w);
    gguf_close(f);
}

static int load_variant(const char *path, quarry_error *err, quarry_model **out)
{
    *out = NULL;
    return quarry_model_open(path, out, err);
}

static void test_malformed_files(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/quarry-test-model-%d.gguf", (int)getpid());
    quarry_error err = {0};
    quarry_model *m;

    write_variant(STORIES, path, "blk.3.ffn_up.weight", DROP, NULL);
    assert_int_equal(load_variant(path, &err, &m), QUARRY_EFORMAT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "blk.3.ffn_up.weight"));
    assert_non_null(strstr(err.msg, "missing"));

    write_variant(STORIES, path, "blk.2.attn_k.weight", RESHAPE, NULL);
    assert_int_equal(load_variant(path, &err, &m), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "blk.2.attn_k.weight"));
    assert_non_null(strstr(err.msg, "shape"));

    write_variant(STORIES, path, "blk.4.ffn_norm.weight", DROP, NULL);
    assert_int_equal(load_variant(path, &err, &m), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "blk.4.ffn_norm.weight"));

    write_variant(STORIES, path, "token_embd.weight", RESHAPE, NULL); /* 256 rows, 512 tokens */
    assert_int_equal(load_variant(path, &err, &m), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "token_embd.weight"));

    struct extras gpt5 = {.arch = "gpt5"};
    write_variant(STORIES, path, NULL, KEEP, &gpt5);
    assert_int_equal(load_variant(path, &err, &m), QUARRY_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "gpt5"));

    unlink(path);
}

/* Without output.weight the embedding is the output projection; stories260K
 * stores output.weight as a copy of the embedding, so the logits agree. */
static void test_tied_output(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/quarry-test-tied-%d.gguf", (int)getpid());
    write_variant(STORIES, path, "output.weight", DROP, NULL);
    quarry_model *tied = open_model(path), *full = open_model(STORIES);
    assert_true(tied->output_tied);
    assert_ptr_equal(tied->output.data, tied->token_embd.data);
    int32_t ids[128];
    stories_ids(ids, 128);
    float a[512], b[512];
    quarry_context *ca = new_context(tied, 0, 1, QUARRY_TYPE_F16, NULL);
    quarry_context *cb = new_context(full, 0, 1, QUARRY_TYPE_F16, NULL);
    run_tokens(tied, ca, 0, ids, 10, false, a);
    run_tokens(full, cb, 0, ids, 10, false, b);
    assert_memory_equal(a, b, sizeof a);
    /* a context belongs to its model */
    quarry_error err;
    quarry_batch batch = {.n_tokens = 1, .token = ids};
    assert_int_equal(quarry_forward(full, ca, &batch, a, &err), QUARRY_EINVAL);
    quarry_context_free(ca);
    quarry_context_free(cb);
    quarry_model_free(tied);
    quarry_model_free(full);
    unlink(path);
}


/* Logits of the first n tokens of the stories ids, last token only. */
static void last_logits(const char *path, int n, float *out)
{
    int32_t ids[128];
    stories_ids(ids, 128);
    quarry_model *m = open_model(path);
    quarry_context *ctx = new_context(m, 0, 1, QUARRY_TYPE_F32, NULL);
    run_tokens(m, ctx, 0, ids, n, false, out);
    quarry_context_free(ctx);
    quarry_model_free(m);
}

/* Linear rope scaling by 2 and llama-3 style frequency factors of 2 both
 * halve every angle (exactly, a power of two), so they give the same logits,
 * and those differ from the unscaled model's. Factors of 1 change nothing. */
static void test_rope_scaling_and_freq_factors(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/quarry-test-rope-%d.gguf", (int)getpid());
    float plain[512], linear[512], factors[512], ones_out[512];
    last_logits(STORIES, 30, plain);

    struct extras lin = {.rope_linear_factor = 2.0f};
    write_variant(STORIES, path, NULL, KEEP, &lin);
    quarry_model *m = open_model(path);
    assert_true(m->hp.rope_freq_scale == 0.5f);
    quarry_model_free(m);
    last_logits(path, 30, linear);

    const float twos[4] = {2, 2, 2, 2}, ones[4] = {1, 1, 1, 1}; /* n_rot / 2 = 4 */
    struct extras ff = {.rope_freqs = twos, .n_rope_freqs = 4};
    write_variant(STORIES, path, NULL, KEEP, &ff);
    m = open_model(path);
    assert_non_null(m->rope_freqs);
    quarry_model_free(m);
    last_logits(path, 30, factors);

    struct extras ff1 = {.rope_freqs = ones, .n_rope_freqs = 4};
    write_variant(STORIES, path, NULL, KEEP, &ff1);
    last_logits(path, 30, ones_out);

    assert_memory_equal(linear, factors, sizeof linear);
    assert_memory_equal(ones_out, plain, sizeof plain);
    assert_true(tu_nmse(linear, plain, 512) > 1e-6);

    /* a rope_freqs tensor of the wrong length is refused by name */
    struct extras bad = {.rope_freqs = twos, .n_rope_freqs = 2};
    write_variant(STORIES, path, NULL, KEEP, &bad);
    quarry_error err;
    assert_int_equal(quarry_model_open(path, &m, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "rope_freqs.weight"));
    unlink(path);
}

/* ---- synthesized models: quantized weights, Q8_0 KV cache --------------- */

/* A random-weight llama (engine/synth.h) with 32-value heads (so a Q8_0 KV
 * cache applies) and 256-wide rows (so K-quants apply), in several weight
 * types made from the same seed: the same underlying weights, quantized. */
#define SYNTH_DIMS "embd=256,layers=2,heads=8,kv_heads=2,ff=512,ctx=64"

static void synth_model(const char *path, const char *ftype)
{
    struct quarry_synth_params p = {0};
    quarry_error err = {0};
    assert_int_equal(quarry_synth_parse_dims(SYNTH_DIMS, &p.shape, &err), 0);
    p.ftype = quarry_ftype_from_name(ftype);
    assert_true(p.ftype >= 0);
    p.vocab_from = STORIES;
    p.out_path = path;
    p.seed = 7;
    p.n_threads = 1;
    if (quarry_synth(&p, &err) != 0)
        fail_msg("synth %s: %s", ftype, err.msg);
}

/* All logits of 16 tokens; token_by_token: one forward per token. */
static void synth_logits(const char *path, enum quarry_type kv_type, bool token_by_token,
                         float *out)
{
    quarry_model *m = open_model(path);
    quarry_context *ctx = new_context(m, 0, 1, kv_type, NULL);
    int32_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = (i * 37 + 1) % m->hp.n_vocab;
    if (token_by_token)
        for (int i = 0; i < 16; i++)
            run_tokens(m, ctx, 0, ids + i, 1, true, out + (size_t)i * m->hp.n_vocab);
    else
        run_tokens(m, ctx, 0, ids, 16, true, out);
    quarry_context_free(ctx);
    quarry_model_free(m);
}

/* Logits of the quantized variants stay near the F32 model's. The bounds are
 * sanity bounds a few times above what the weights' own quantization error
 * gives (measured: f16 4e-7, q8_0 3e-4, q4_0 4e-2, q4_K_M 2.4e-2); a wrong
 * block layout or a type mix-up gives an NMSE near 1 or more. The Q8_0 KV
 * cache (values rounded to 1/254 of each block's maximum) stays within flash
 * attention's 5e-4, and batches agree with token-by-token decoding with it. */
static void test_synthesized_models(void **state)
{
    (void)state;
    char dir[] = "/tmp/quarry-test-synth-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    const size_t n = 16 * 512;
    float *ref = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    float *single = malloc(n * sizeof(float));
    assert_non_null(ref && got && single);

    snprintf(path, sizeof path, "%s/f32.gguf", dir);
    synth_model(path, "f32");
    synth_logits(path, QUARRY_TYPE_F32, false, ref);

    synth_logits(path, QUARRY_TYPE_Q8_0, false, got);
    const double e_kv = tu_nmse(got, ref, n);
    synth_logits(path, QUARRY_TYPE_Q8_0, true, single);
    const double e_kv_single = tu_nmse(single, got, n);
    printf("  q8_0 KV cache: NMSE %.3g vs f32 cache, token by token vs batch %.3g\n", e_kv,
           e_kv_single);
    assert_true(e_kv < 5e-4);
    assert_true(e_kv_single < NMSE_BATCH);
    unlink(path);

    const struct {
        const char *ftype;
        double bound;
    } variants[] = {{"f16", 1e-5}, {"q8_0", 2e-3}, {"q4_0", 0.15}, {"q4_K_M", 0.1}};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, variants[i].ftype);
        synth_model(path, variants[i].ftype);
        synth_logits(path, QUARRY_TYPE_F32, false, got);
        const double e = tu_nmse(got, ref, n);
        printf("  %-6s weights: NMSE %.3g vs f32 weights\n", variants[i].ftype, e);
        assert_true(e < variants[i].bound);
        unlink(path);
    }
    rmdir(dir);
    free(ref), free(got), free(single);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hparams_stories),
        cmocka_unit_test(test_golden_stories260K),
        cmocka_unit_test(test_golden_llama2_tiny),
        cmocka_unit_test(test_batch_equivalence),
        cmocka_unit_test(test_two_sequences),
        cmocka_unit_test(test_truncate_and_copy),
        cmocka_unit_test(test_context_limit),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_tied_output),
        cmocka_unit_test(test_rope_scaling_and_freq_factors),
        cmocka_unit_test(test_synthesized_models),
    };
    return TU_RUN_GROUP(tests);
}
