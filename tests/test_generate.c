/*
 * test_generate.c - generation sessions (engine/generate.h) end to end: text
 * prompt in, streamed text out.
 *
 * - Golden: greedy generation from the prompt text of tests/data/<model>.greedy.txt
 *   tokenizes to llama.cpp's prompt ids and gives exactly its generated ids,
 *   and the streamed text is the golden text after the prompt's pieces (all
 *   parsed from the files). The prompt in chunks of 2 gives the same ids.
 *   Every streamed piece of llama-2-tiny-random (Cyrillic, Thai: multi-byte
 *   characters over byte tokens) is whole UTF-8.
 * - Stop strings: the text ends right before the first stop string (inside a
 *   token or across tokens), nothing after it is ever streamed; a stop string
 *   that never appears changes nothing.
 * - Limits: max_tokens gives finish "length" with exactly that many tokens;
 *   a full context gives "length" with context_full; an EOS token (forced by a
 *   logit bias) gives "eos" and no text; the callback can cancel.
 * - Sampling: the same seed gives the same tokens (also when a session is
 *   restarted); another seed gives other tokens.
 * - The step API: two sessions decoding together in shared batches give what
 *   each gives alone.
 * - Errors: empty prompt, prompt longer than the context, bad sequence id,
 *   stop strings without a tokenizer.
 */
#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "engine/tokenizer.h"

#define STORIES "tests/data/stories260K.gguf"
#define TINY "tests/data/llama-2-tiny-random.gguf"
#define MAX_IDS 256

/* ---- the golden files ---------------------------------------------------- */

struct golden {
    char prompt[256];          /* the prompt text */
    int32_t prompt_ids[MAX_IDS];
    int n_prompt;
    int32_t gen_ids[MAX_IDS];
    int n_gen;
    char *text;                /* prompt pieces + generated pieces (malloc'd) */
};

/* Parses "<label> (N): id id ..."; returns N (checked against the ids listed) or -1. */
static int parse_ids(const char *text, const char *label, int32_t *ids, int max)
{
    const char *line = strstr(text, label);
    if (!line)
        return -1;
    int declared = -1;
    if (sscanf(line + strlen(label), " (%d):", &declared) != 1)
        return -1;
    const char *p = strchr(line, ':') + 1;
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

static void load_golden(const char *path, struct golden *g)
{
    size_t size;
    char *file = tu_read_file(path, &size);
    assert_non_null(file);
    memset(g, 0, sizeof *g);
    /* prompt: "..." (no quotes inside in these files) */
    const char *p = strstr(file, "prompt: \"");
    assert_non_null(p);
    p += strlen("prompt: \"");
    const char *q = strchr(p, '"');
    assert_non_null(q);
    assert_true((size_t)(q - p) < sizeof g->prompt);
    memcpy(g->prompt, p, (size_t)(q - p));
    g->n_prompt = parse_ids(file, "prompt_token_ids", g->prompt_ids, MAX_IDS);
    g->n_gen = parse_ids(file, "generated_token_ids", g->gen_ids, MAX_IDS);
    assert_true(g->n_prompt > 0 && g->n_gen > 0);
    /* the text sits between the marker line and "\n--- end ---" */
    const char *mark = "--- text (prompt pieces + generated pieces) ---\n";
    const char *t = strstr(file, mark);
    assert_non_null(t);
    t += strlen(mark);
    const char *e = strstr(t, "\n--- end ---");
    assert_non_null(e);
    g->text = malloc((size_t)(e - t) + 1);
    assert_non_null(g->text);
    memcpy(g->text, t, (size_t)(e - t));
    g->text[e - t] = 0;
    free(file);
}

/* The golden text after the pieces of the prompt ids (rendered with special
 * tokens, as the golden files were written). */
static const char *golden_generated_text(const struct golden *g, const quarry_tokenizer *tok)
{
    const char *t = g->text;
    for (int i = 0; i < g->n_prompt; i++) {
        size_t len;
        const char *piece = quarry_token_piece(tok, g->prompt_ids[i], true, &len);
        assert_non_null(piece);
        assert_memory_equal(t, piece, len);
        t += len;
    }
    return t;
}

/* ---- a model with its tokenizer, context and pool -------------------------- */

struct rig {
    quarry_model *model;
    quarry_tokenizer *tok;
    quarry_threadpool *pool;
    quarry_context *ctx;
};

static void rig_open(struct rig *r, const char *path, int32_t n_ctx, int32_t n_seq, int n_threads)
{
    quarry_error err = {0};
    memset(r, 0, sizeof *r);
    int rc = quarry_model_open(path, &r->model, &err);
    if (rc == 0)
        rc = quarry_tokenizer_load(r->model->own_file, &r->tok, &err);
    if (rc == 0)
        rc = quarry_threadpool_new(n_threads, &r->pool, &err);
    if (rc == 0) {
        struct quarry_context_params cp;
        quarry_context_params_default(&cp);
        cp.n_ctx = n_ctx;
        cp.n_seq = n_seq;
        cp.pool = r->pool;
        rc = quarry_context_new(r->model, &cp, &r->ctx, &err);
    }
    if (rc)
        print_error("%s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
}

static void rig_close(struct rig *r)
{
    quarry_context_free(r->ctx);
    quarry_threadpool_free(r->pool);
    quarry_tokenizer_free(r->tok);
    quarry_model_free(r->model);
}

/* What the callback saw. */
struct stream {
    char text[4096];
    size_t len;
    int calls;
    int finals;                 /* calls with finish set */
    enum quarry_finish last_finish;
    bool all_pieces_utf8;       /* every piece was whole UTF-8 on its own */
    int cancel_after;           /* cancel on this call (0: never) */
};

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                                   : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static int on_piece(void *user, const struct quarry_gen_piece *p)
{
    struct stream *s = user;
    s->calls++;
    if (p->finish != QUARRY_FINISH_NONE) {
        s->finals++;
        s->last_finish = p->finish;
    }
    if (!valid_utf8(p->text, p->len))
        s->all_pieces_utf8 = false;
    assert_true(s->len + p->len < sizeof s->text);
    memcpy(s->text + s->len, p->text, p->len);
    s->len += p->len;
    s->text[s->len] = 0;
    return s->cancel_after > 0 && s->calls == s->cancel_after;
}

static void stream_init(struct stream *s)
{
    memset(s, 0, sizeof *s);
    s->all_pieces_utf8 = true;
}

static void greedy_params(struct quarry_gen_params *p, int32_t max_tokens)
{
    quarry_gen_params_default(p);
    p->sampling.temperature = 0;
    p->max_tokens = max_tokens;
}

/* Runs one session on seq 0 of r from text; returns it (caller frees). */
static quarry_gen *run_text(struct rig *r, const struct quarry_gen_params *p, const char *text,
                            struct stream *s)
{
    quarry_error err = {0};
    quarry_gen *g = NULL;
    stream_init(s);
    int rc = quarry_gen_new(r->model, r->tok, r->ctx, 0, p, on_piece, s, &g, &err);
    if (rc == 0)
        rc = quarry_gen_start_text(g, text, strlen(text), &err);
    if (rc == 0)
        rc = quarry_gen_run(g, &err);
    if (rc)
        print_error("generate: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return g;
}

static void assert_ids_equal(const int32_t *got, const int32_t *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            print_error("%s: id %d is %d, expected %d\n", what, i, got[i], want[i]);
            fail();
        }
}

/* ---- golden generation ------------------------------------------------------ */

static void check_golden(const char *model_path, const char *golden_path, int n_threads,
                         int32_t n_batch)
{
    struct golden gold;
    load_golden(golden_path, &gold);
    struct rig r;
    rig_open(&r, model_path, 0, 1, n_threads);
    struct quarry_gen_params p;
    greedy_params(&p, gold.n_gen);
    p.n_batch = n_batch;
    struct stream s;
    quarry_gen *g = run_text(&r, &p, gold.prompt, &s);

    int32_t n;
    const int32_t *ids = quarry_gen_prompt(g, &n);
    assert_int_equal(n, gold.n_prompt);
    assert_ids_equal(ids, gold.prompt_ids, n, "prompt");
    ids = quarry_gen_output(g, &n);
    assert_int_equal(n, gold.n_gen);
    assert_ids_equal(ids, gold.gen_ids, n, "generated");

    const char *want_text = golden_generated_text(&gold, r.tok);
    if (strcmp(s.text, want_text) != 0)
        print_error("streamed text:\n[%s]\nexpected:\n[%s]\n", s.text, want_text);
    assert_string_equal(s.text, want_text);
    assert_true(s.all_pieces_utf8);
    assert_int_equal(s.calls, gold.n_gen); /* one call per token */
    assert_int_equal(s.finals, 1);

    const struct quarry_gen_stats *st = quarry_gen_stats(g);
    assert_int_equal(st->finish, QUARRY_FINISH_LENGTH);
    assert_false(st->context_full);
    assert_int_equal(st->n_prompt, gold.n_prompt);
    assert_int_equal(st->n_gen, gold.n_gen);
    assert_int_equal(st->n_prompt_evals, (gold.n_prompt + n_batch - 1) / n_batch);
    assert_int_equal(st->n_gen_evals, gold.n_gen - 1);
    assert_true(st->t_prompt_s > 0 && st->t_gen_s > 0);
    quarry_gen_free(g);
    rig_close(&r);
    free(gold.text);
}

static void test_golden_stories(void **state)
{
    (void)state;
    check_golden(STORIES, "tests/data/stories260K.greedy.txt", 2, 512);
}

static void test_golden_stories_chunked_prompt(void **state)
{
    (void)state;
    check_golden(STORIES, "tests/data/stories260K.greedy.txt", 1, 2);
}

static void test_golden_llama2_tiny(void **state)
{
    (void)state;
    check_golden(TINY, "tests/data/llama-2-tiny-random.greedy.txt", 1, 512);
}

/* ---- stop strings ----------------------------------------------------------- */

/* Generates greedily with one stop string and checks the text is the golden
 * text up to the stop's first appearance. */
static void check_stop(const struct golden *gold, struct rig *r, const char *stop)
{
    const char *full = golden_generated_text(gold, r->tok);
    const char *hit = strstr(full, stop);
    assert_non_null(hit); /* the stop must occur for this check */
    struct quarry_gen_params p;
    greedy_params(&p, gold->n_gen);
    const char *stops[2] = {"never in the story", stop};
    p.stops = stops;
    p.n_stops = 2;
    struct stream s;
    quarry_gen *g = run_text(r, &p, gold->prompt, &s);
    const struct quarry_gen_stats *st = quarry_gen_stats(g);
    assert_int_equal(st->finish, QUARRY_FINISH_STOP);
    assert_int_equal(st->stop_index, 1);
    assert_int_equal(s.len, (size_t)(hit - full));
    assert_memory_equal(s.text, full, s.len);
    assert_int_equal(s.finals, 1);
    assert_int_equal(s.last_finish, QUARRY_FINISH_STOP);
    /* it stopped at the token that completed the stop string: fewer tokens */
    assert_true(st->n_gen < gold->n_gen);
    int32_t n;
    const int32_t *ids = quarry_gen_output(g, &n);
    assert_ids_equal(ids, gold->gen_ids, n, "ids before the stop");
    quarry_gen_free(g);
}

static void test_stop_strings(void **state)
{
    (void)state;
    struct golden gold;
    load_golden("tests/data/stories260K.greedy.txt", &gold);
    struct rig r;
    rig_open(&r, STORIES, 0, 1, 1);
    check_stop(&gold, &r, "little girl");   /* spans several tokens */
    check_stop(&gold, &r, "ov");            /* inside one token ("loved") */
    check_stop(&gold, &r, ".\nLily");       /* across the byte token for the newline */
    check_stop(&gold, &r, ",");             /* right at the start */

    /* a stop string that never appears changes nothing */
    struct quarry_gen_params p;
    greedy_params(&p, gold.n_gen);
    const char *stops[1] = {"dragon"};
    p.stops = stops;
    p.n_stops = 1;
    struct stream s;
    quarry_gen *g = run_text(&r, &p, gold.prompt, &s);
    assert_int_equal(quarry_gen_stats(g)->finish, QUARRY_FINISH_LENGTH);
    assert_int_equal(quarry_gen_stats(g)->stop_index, -1);
    assert_string_equal(s.text, golden_generated_text(&gold, r.tok));
    quarry_gen_free(g);
    rig_close(&r);
    free(gold.text);
}

/* ---- limits ------------------------------------------------------------------ */

static void test_max_tokens_and_context(void **state)
{
    (void)state;
    struct golden gold;
    load_golden("tests/data/stories260K.greedy.txt", &gold);
    struct rig r;
    rig_open(&r, STORIES, 0, 1, 1);
    struct quarry_gen_params p;
    struct stream s;
    for (int32_t max = 1; max <= 10; max += 9) {
        greedy_params(&p, max);
        quarry_gen *g = run_text(&r, &p, gold.prompt, &s);
        const struct quarry_gen_stats *st = quarry_gen_stats(g);
        assert_int_equal(st->finish, QUARRY_FINISH_LENGTH);
        assert_false(st->context_full);
        assert_int_equal(st->n_gen, max);
        assert_int_equal(s.calls, max);
        assert_int_equal(s.last_finish, QUARRY_FINISH_LENGTH);
        int32_t n;
        assert_ids_equal(quarry_gen_output(g, &n), gold.gen_ids, max, "max_tokens");
        quarry_gen_free(g);
    }
    /* max_tokens 0: the prompt is processed, nothing sampled */
    greedy_params(&p, 0);
    quarry_gen *g = run_text(&r, &p, gold.prompt, &s);
    assert_int_equal(quarry_gen_stats(g)->finish, QUARRY_FINISH_LENGTH);
    assert_int_equal(quarry_gen_stats(g)->n_gen, 0);
    assert_int_equal(s.finals, 1);
    assert_int_equal(quarry_kvcache_seq_len(quarry_context_kv(r.ctx), 0), gold.n_prompt);
    quarry_gen_free(g);
    rig_close(&r);

    /* a context of 8 positions: 5 prompt tokens, then 3 fed back, the 4th
     * sampled token fills it */
    rig_open(&r, STORIES, 8, 1, 1);
    greedy_params(&p, -1);
    g = run_text(&r, &p, gold.prompt, &s);
    const struct quarry_gen_stats *st = quarry_gen_stats(g);
    assert_int_equal(st->finish, QUARRY_FINISH_LENGTH);
    assert_true(st->context_full);
    assert_int_equal(st->n_gen, 8 - gold.n_prompt + 1);
    int32_t n;
    const int32_t *ids = quarry_gen_output(g, &n);
    assert_int_equal(n, st->n_gen);
    assert_ids_equal(ids, gold.gen_ids, n, "context full");
    quarry_gen_free(g);
    rig_close(&r);
    free(gold.text);
}

static void test_eos_and_cancel(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r, STORIES, 0, 1, 1);
    const int32_t eos = quarry_tokenizer_eos(r.tok);
    assert_true(eos >= 0);
    struct quarry_gen_params p;
    greedy_params(&p, 20);
    const struct quarry_logit_bias bias = {.token = eos, .bias = 1000.0f};
    p.logit_bias = &bias;
    p.n_logit_bias = 1;
    struct stream s;
    quarry_gen *g = run_text(&r, &p, "Once upon a time", &s);
    const struct quarry_gen_stats *st = quarry_gen_stats(g);
    assert_int_equal(st->finish, QUARRY_FINISH_EOS);
    assert_int_equal(st->n_gen, 1);
    assert_int_equal(s.len, 0); /* the EOS token has no text */
    assert_int_equal(s.last_finish, QUARRY_FINISH_EOS);
    quarry_gen_free(g);

    /* with ignore_eos the same bias makes 20 EOS tokens, rendered as nothing */
    p.ignore_eos = true;
    g = run_text(&r, &p, "Once upon a time", &s);
    assert_int_equal(quarry_gen_stats(g)->finish, QUARRY_FINISH_LENGTH);
    assert_int_equal(quarry_gen_stats(g)->n_gen, 20);
    quarry_gen_free(g);

    /* the callback cancels on its third call */
    greedy_params(&p, 20);
    quarry_error err = {0};
    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 0, &p, on_piece, &s, &g, &err), 0);
    stream_init(&s);
    s.cancel_after = 3;
    assert_int_equal(quarry_gen_start_text(g, "Once upon a time", 16, &err), 0);
    assert_int_equal(quarry_gen_run(g, &err), 0);
    assert_int_equal(quarry_gen_stats(g)->finish, QUARRY_FINISH_CANCELLED);
    assert_int_equal(quarry_gen_stats(g)->n_gen, 3);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.finals, 0);
    quarry_gen_free(g);
    rig_close(&r);
}

/* ---- sampling ---------------------------------------------------------------- */

static void sample_ids(struct rig *r, uint64_t seed, int32_t *out, int n)
{
    struct quarry_gen_params p;
    quarry_gen_params_default(&p);
    p.sampling.temperature = 1.0f;
    p.sampling.top_k = 0;
    p.sampling.top_p = 1.0f;
    p.sampling.min_p = 0.0f;
    p.sampling.seed = seed;
    p.max_tokens = n;
    p.ignore_eos = true;
    struct stream s;
    quarry_gen *g = run_text(r, &p, "Once upon a time", &s);
    int32_t got;
    memcpy(out, quarry_gen_output(g, &got), (size_t)n * sizeof *out);
    assert_int_equal(got, n);
    /* a restarted session is re-seeded: the same tokens again */
    quarry_error err = {0};
    stream_init(&s);
    assert_int_equal(quarry_gen_start_text(g, "Once upon a time", 16, &err), 0);
    assert_int_equal(quarry_gen_run(g, &err), 0);
    assert_ids_equal(quarry_gen_output(g, &got), out, n, "restarted session");
    quarry_gen_free(g);
}

static void test_seeded_sampling(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r, STORIES, 0, 1, 1);
    enum { N = 32 };
    int32_t a[N], b[N], c[N];
    sample_ids(&r, 1234, a, N);
    sample_ids(&r, 1234, b, N);
    sample_ids(&r, 98765, c, N);
    assert_ids_equal(b, a, N, "same seed");
    /* full-vocabulary sampling at temperature 1: two seeds agreeing on 32
     * tokens would be a broken generator */
    assert_true(memcmp(a, c, sizeof a) != 0);
    rig_close(&r);
}

/* ---- the step API ------------------------------------------------------------ */

static void test_shared_batches(void **state)
{
    (void)state;
    struct golden gold;
    load_golden("tests/data/stories260K.greedy.txt", &gold);
    const char *other = "The little dog ran to the park with his ball and";
    struct rig r;
    rig_open(&r, STORIES, 0, 2, 1);

    /* the second prompt alone, for reference */
    struct quarry_gen_params p;
    greedy_params(&p, 40);
    struct stream s_ref;
    quarry_gen *ref = run_text(&r, &p, other, &s_ref);
    int32_t n_ref;
    const int32_t *ref_ids = quarry_gen_output(ref, &n_ref);
    assert_int_equal(n_ref, 40);

    /* both together: session a on sequence 1 (the golden prompt, 64 tokens),
     * b on sequence 0, prompt chunks of 4 so prompt and decode steps mix */
    quarry_error err = {0};
    quarry_gen *a = NULL, *b = NULL;
    struct stream sa, sb;
    stream_init(&sa);
    stream_init(&sb);
    struct quarry_gen_params pa;
    greedy_params(&pa, gold.n_gen);
    p.n_batch = 4;
    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 1, &pa, on_piece, &sa, &a, &err), 0);
    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 0, &p, on_piece, &sb, &b, &err), 0);
    assert_int_equal(quarry_gen_start_text(a, gold.prompt, strlen(gold.prompt), &err), 0);
    assert_int_equal(quarry_gen_start_text(b, other, strlen(other), &err), 0);
    quarry_gen_batch *batch = NULL;
    assert_int_equal(quarry_gen_batch_new(16, r.model->hp.n_vocab, &batch, &err), 0);
    int steps = 0, mixed = 0;
    while (!quarry_gen_done(a) || !quarry_gen_done(b)) {
        quarry_gen_batch_clear(batch);
        const int32_t na = quarry_gen_add(a, batch);
        const int32_t nb = quarry_gen_add(b, batch);
        assert_int_equal(quarry_gen_add(b, batch), 0); /* once per step */
        assert_int_equal(quarry_gen_batch_size(batch), na + nb);
        mixed += na == 1 && nb > 1;
        int rc = quarry_gen_batch_forward(r.model, r.ctx, batch, &err);
        if (rc)
            print_error("%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(quarry_gen_update(a, batch, &err), 0);
        assert_int_equal(quarry_gen_update(b, batch, &err), 0);
        assert_true(++steps < 200);
    }
    assert_true(mixed > 0); /* a decoded while b's prompt was still going in */
    int32_t n;
    const int32_t *ids = quarry_gen_output(a, &n);
    assert_int_equal(n, gold.n_gen);
    assert_ids_equal(ids, gold.gen_ids, n, "session a");
    assert_string_equal(sa.text, golden_generated_text(&gold, r.tok));
    ids = quarry_gen_output(b, &n);
    assert_int_equal(n, n_ref);
    assert_ids_equal(ids, ref_ids, n, "session b");
    assert_string_equal(sb.text, s_ref.text);

    quarry_gen_batch_free(batch);
    quarry_gen_free(a);
    quarry_gen_free(b);
    quarry_gen_free(ref);
    rig_close(&r);
    free(gold.text);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r, STORIES, 16, 1, 1);
    struct quarry_gen_params p;
    greedy_params(&p, 4);
    quarry_error err = {0};
    quarry_gen *g = NULL;

    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 1, &p, NULL, NULL, &g, &err),
                     QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "sequence"));
    const char *stops[1] = {"x"};
    p.stops = stops;
    p.n_stops = 1;
    assert_int_equal(quarry_gen_new(r.model, NULL, r.ctx, 0, &p, NULL, NULL, &g, &err),
                     QUARRY_EINVAL);
    p.n_stops = 0;
    p.sampling.top_p = 2.0f;
    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 0, &p, NULL, NULL, &g, &err),
                     QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "top_p"));
    p.sampling.top_p = 1.0f;

    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 0, &p, NULL, NULL, &g, &err), 0);
    p.add_special = false;
    quarry_gen *no_bos = NULL;
    assert_int_equal(quarry_gen_new(r.model, r.tok, r.ctx, 0, &p, NULL, NULL, &no_bos, &err), 0);
    assert_int_equal(quarry_gen_start_text(no_bos, "", 0, &err), QUARRY_EINVAL);
    assert_true(quarry_gen_done(no_bos));
    quarry_gen_free(no_bos);
    /* 16 positions: a long prompt does not fit */
    const char *long_text = "Once upon a time there was a little girl named Lily who loved to "
                            "play in the park with her big red ball every day";
    assert_int_equal(quarry_gen_start_text(g, long_text, strlen(long_text), &err), QUARRY_ERANGE);
    assert_non_null(strstr(err.msg, "context"));
    const int32_t bad[2] = {1, 100000};
    assert_int_equal(quarry_gen_start_tokens(g, bad, 2, &err), QUARRY_EINVAL);
    assert_true(quarry_gen_done(g));
    /* a session without a tokenizer runs from ids */
    quarry_gen_free(g);
    greedy_params(&p, 3);
    assert_int_equal(quarry_gen_new(r.model, NULL, r.ctx, 0, &p, NULL, NULL, &g, &err), 0);
    const int32_t ids[3] = {1, 403, 407};
    assert_int_equal(quarry_gen_start_tokens(g, ids, 3, &err), 0);
    assert_int_equal(quarry_gen_run(g, &err), 0);
    assert_int_equal(quarry_gen_stats(g)->n_gen, 3);
    quarry_gen_free(g);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_stories),
        cmocka_unit_test(test_golden_stories_chunked_prompt),
        cmocka_unit_test(test_golden_llama2_tiny),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_max_tokens_and_context),
        cmocka_unit_test(test_eos_and_cancel),
        cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_shared_batches),
        cmocka_unit_test(test_errors),
    };
    return TU_RUN_GROUP(tests);
}
