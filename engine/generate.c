/*
 * generate.c - generation sessions (see generate.h): prompt in batched
 * chunks, then one sampled token per step, streamed through the detokenizer
 * and the stop-string matcher to the caller's callback.
 *
 * A session moves through three phases:
 *   PROMPT  prompt tokens not yet through the model remain; each step adds a
 *           chunk of them, and the chunk that ends the prompt asks for the
 *           logits of its last token;
 *   DECODE  the token sampled last is waiting to go through the model (its
 *           logits give the next one);
 *   DONE    finished (or never started).
 * The shared batch remembers nothing about sessions: each session notes how
 * many tokens it put in which batch and which logits row is its own.
 */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum gen_phase { PHASE_DONE = 0, PHASE_PROMPT, PHASE_DECODE };

struct quarry_gen_batch {
    int32_t capacity, n_vocab;
    int32_t n_tokens, n_out;
    int32_t *token;   /* [capacity] */
    int32_t *pos;     /* [capacity] */
    int32_t *seq_id;  /* [capacity] */
    int8_t *want;     /* [capacity] 1 = logits wanted */
    float *logits;    /* [logits_rows][n_vocab] */
    int32_t logits_rows;
    uint64_t serial;  /* changes on every clear: tells sessions one step from the next */
};

struct quarry_gen {
    const quarry_model *model;
    const quarry_tokenizer *tok;
    quarry_context *ctx;
    int32_t seq;
    int32_t n_ctx;                 /* the context's positions per sequence */
    struct quarry_gen_params p;    /* stops pointer cleared: the matcher keeps copies */
    quarry_gen_piece_fn on_piece;
    void *user;

    quarry_sampler *sampler;
    quarry_stop_matcher *stop;
    struct quarry_detok_stream detok;

    int32_t *prompt, n_prompt, prompt_cap;
    int32_t *output, n_output, output_cap;
    int32_t n_fed;                 /* prompt tokens already through the model */

    enum gen_phase phase;
    /* the step in progress */
    const quarry_gen_batch *batch; /* the batch this session added to, or NULL */
    uint64_t batch_serial;
    int32_t n_added;               /* tokens added to it */
    int32_t out_row;               /* its logits row there, or -1 */

    char *text;                    /* the text of the callback being built */
    size_t text_len, text_cap;
    double t_start, t_first, t_last;
    struct quarry_gen_stats stats;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *quarry_finish_name(enum quarry_finish f)
{
    switch (f) {
    case QUARRY_FINISH_NONE: return "none";
    case QUARRY_FINISH_STOP: return "stop";
    case QUARRY_FINISH_LENGTH: return "length";
    case QUARRY_FINISH_EOS: return "eos";
    case QUARRY_FINISH_CANCELLED: return "cancelled";
    case QUARRY_FINISH_ERROR: return "error";
    }
    return "?";
}

void quarry_gen_params_default(struct quarry_gen_params *p)
{
    memset(p, 0, sizeof *p);
    quarry_sampler_params_default(&p->sampling);
    p->max_tokens = -1;
    p->add_special = true;
    p->n_batch = 512;
}

/* ---- growable buffers --------------------------------------------------- */

static int grow_ids(int32_t **ids, int32_t *cap, int32_t need)
{
    if (need <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    if (c > INT32_MAX)
        return QUARRY_ENOMEM;
    int32_t *p = realloc(*ids, (size_t)c * sizeof *p);
    if (!p)
        return QUARRY_ENOMEM;
    *ids = p;
    *cap = (int32_t)c;
    return 0;
}

static int text_append(quarry_gen *g, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (g->text_len + n > g->text_cap) {
        size_t c = g->text_cap ? g->text_cap : 256;
        while (c < g->text_len + n)
            c *= 2;
        char *t = realloc(g->text, c);
        if (!t)
            return QUARRY_ENOMEM;
        g->text = t;
        g->text_cap = c;
    }
    memcpy(g->text + g->text_len, s, n);
    g->text_len += n;
    return 0;
}

/* ---- sessions ------------------------------------------------------------ */

int quarry_gen_new(const quarry_model *m, const quarry_tokenizer *tok, quarry_context *ctx,
                   int32_t seq, const struct quarry_gen_params *p, quarry_gen_piece_fn on_piece,
                   void *user, quarry_gen **out, quarry_error *err)
{
    *out = NULL;
    if (!m || !ctx || !p)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: model, context and parameters needed");
    const struct quarry_kvcache_params *kp = quarry_kvcache_params(quarry_context_kv(ctx));
    if (seq < 0 || seq >= kp->n_seq)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: sequence id %d outside 0..%d", seq,
                             kp->n_seq - 1);
    if (p->n_batch < 1)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: n_batch must be at least 1, not %d",
                             p->n_batch);
    if (p->n_stops > 0 && !tok)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: stop strings need a tokenizer");
    if (tok && quarry_tokenizer_n_vocab(tok) > (size_t)m->hp.n_vocab)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "generate: the tokenizer has %zu tokens, the model only %d",
                             quarry_tokenizer_n_vocab(tok), m->hp.n_vocab);
    int rc = quarry_sampler_params_check(&p->sampling, err);
    if (rc)
        return rc;
    quarry_gen *g = calloc(1, sizeof *g);
    if (!g)
        return quarry_errorf(err, QUARRY_ENOMEM, "generate: out of memory");
    g->model = m;
    g->tok = tok;
    g->ctx = ctx;
    g->seq = seq;
    g->n_ctx = kp->n_ctx;
    g->p = *p;
    g->p.stops = NULL;
    g->p.logit_bias = NULL;
    g->on_piece = on_piece;
    g->user = user;
    g->out_row = -1;
    g->stats.stop_index = -1;
    if ((rc = quarry_sampler_new(&p->sampling, m->hp.n_vocab, &g->sampler, err)) ||
        (rc = quarry_sampler_set_logit_bias(g->sampler, p->logit_bias, p->n_logit_bias, err)) ||
        (rc = quarry_stop_new(p->stops, p->n_stops, &g->stop, err))) {
        quarry_gen_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void quarry_gen_free(quarry_gen *g)
{
    if (!g)
        return;
    quarry_sampler_free(g->sampler);
    quarry_stop_free(g->stop);
    free(g->prompt);
    free(g->output);
    free(g->text);
    free(g);
}

int quarry_gen_start_tokens(quarry_gen *g, const int32_t *ids, int32_t n, quarry_error *err)
{
    g->phase = PHASE_DONE;
    if (n <= 0 || !ids)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: the prompt is empty");
    if (n > g->n_ctx)
        return quarry_errorf(err, QUARRY_ERANGE,
                             "generate: the prompt has %d tokens, the context only %d positions",
                             n, g->n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g->model->hp.n_vocab)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "generate: prompt token %d has id %d, outside 0..%d", i, ids[i],
                                 g->model->hp.n_vocab - 1);
    if (grow_ids(&g->prompt, &g->prompt_cap, n))
        return quarry_errorf(err, QUARRY_ENOMEM, "generate: out of memory");
    if (g->prompt != ids)
        memmove(g->prompt, ids, (size_t)n * sizeof *ids);
    int rc = quarry_kvcache_clear(quarry_context_kv(g->ctx), g->seq, err);
    if (rc)
        return rc;
    g->n_prompt = n;
    g->n_output = 0;
    g->n_fed = 0;
    quarry_sampler_reset(g->sampler);
    for (int32_t i = 0; i < n; i++)
        quarry_sampler_accept(g->sampler, ids[i]);
    quarry_stop_reset(g->stop);
    /* The text streamed continues the prompt: no leading space is stripped. */
    quarry_detok_stream_init(&g->detok, g->tok, g->p.render_special, false);
    memset(&g->stats, 0, sizeof g->stats);
    g->stats.stop_index = -1;
    g->stats.n_prompt = n;
    g->batch = NULL;
    g->n_added = 0;
    g->out_row = -1;
    g->t_start = g->t_first = g->t_last = 0;
    g->phase = PHASE_PROMPT;
    return 0;
}

int quarry_gen_start_text(quarry_gen *g, const char *text, size_t len, quarry_error *err)
{
    g->phase = PHASE_DONE;
    if (!g->tok)
        return quarry_errorf(err, QUARRY_EINVAL, "generate: a text prompt needs a tokenizer");
    size_t n = 0;
    int rc = quarry_tokenize(g->tok, text, len, g->p.add_special, g->p.parse_special, g->prompt,
                             (size_t)g->prompt_cap, &n, err);
    if (rc == QUARRY_ERANGE) {
        if (n > INT32_MAX || grow_ids(&g->prompt, &g->prompt_cap, (int32_t)n))
            return quarry_errorf(err, QUARRY_ENOMEM, "generate: out of memory for %zu tokens", n);
        rc = quarry_tokenize(g->tok, text, len, g->p.add_special, g->p.parse_special, g->prompt,
                             (size_t)g->prompt_cap, &n, err);
    }
    if (rc)
        return rc;
    return quarry_gen_start_tokens(g, g->prompt, (int32_t)n, err);
}

bool quarry_gen_done(const quarry_gen *g)
{
    return g->phase == PHASE_DONE;
}

const struct quarry_gen_stats *quarry_gen_stats(const quarry_gen *g)
{
    return &g->stats;
}

const int32_t *quarry_gen_prompt(const quarry_gen *g, int32_t *n)
{
    *n = g->n_prompt;
    return g->prompt;
}

const int32_t *quarry_gen_output(const quarry_gen *g, int32_t *n)
{
    *n = g->n_output;
    return g->output;
}

/* ---- the shared batch ----------------------------------------------------- */

int quarry_gen_batch_new(int32_t capacity, int32_t n_vocab, quarry_gen_batch **out,
                         quarry_error *err)
{
    *out = NULL;
    if (capacity < 1 || n_vocab < 1)
        return quarry_errorf(err, QUARRY_EINVAL, "batch: bad capacity %d or vocabulary %d",
                             capacity, n_vocab);
    quarry_gen_batch *b = calloc(1, sizeof *b);
    if (!b)
        return quarry_errorf(err, QUARRY_ENOMEM, "batch: out of memory");
    b->capacity = capacity;
    b->n_vocab = n_vocab;
    b->token = malloc((size_t)capacity * sizeof *b->token);
    b->pos = malloc((size_t)capacity * sizeof *b->pos);
    b->seq_id = malloc((size_t)capacity * sizeof *b->seq_id);
    b->want = malloc((size_t)capacity);
    if (!b->token || !b->pos || !b->seq_id || !b->want) {
        quarry_gen_batch_free(b);
        return quarry_errorf(err, QUARRY_ENOMEM, "batch: out of memory");
    }
    *out = b;
    return 0;
}

void quarry_gen_batch_free(quarry_gen_batch *b)
{
    if (!b)
        return;
    free(b->token);
    free(b->pos);
    free(b->seq_id);
    free(b->want);
    free(b->logits);
    free(b);
}

void quarry_gen_batch_clear(quarry_gen_batch *b)
{
    b->n_tokens = 0;
    b->n_out = 0;
    b->serial++;
}

int32_t quarry_gen_batch_size(const quarry_gen_batch *b)
{
    return b->n_tokens;
}

int32_t quarry_gen_batch_room(const quarry_gen_batch *b)
{
    return b->capacity - b->n_tokens;
}

quarry_batch quarry_gen_batch_view(const quarry_gen_batch *b)
{
    return (quarry_batch){.n_tokens = b->n_tokens, .token = b->token, .pos = b->pos,
                          .seq_id = b->seq_id, .logits = b->want};
}

int quarry_gen_batch_forward(const quarry_model *m, quarry_context *ctx, quarry_gen_batch *b,
                             quarry_error *err)
{
    if (b->n_tokens == 0)
        return 0;
    if (b->n_vocab != m->hp.n_vocab)
        return quarry_errorf(err, QUARRY_EINVAL, "batch: made for %d tokens, the model has %d",
                             b->n_vocab, m->hp.n_vocab);
    if (b->n_out > b->logits_rows) {
        float *l = realloc(b->logits, (size_t)b->n_out * (size_t)b->n_vocab * sizeof *l);
        if (!l)
            return quarry_errorf(err, QUARRY_ENOMEM, "batch: out of memory for %d logits rows",
                                 b->n_out);
        b->logits = l;
        b->logits_rows = b->n_out;
    }
    const quarry_batch view = quarry_gen_batch_view(b);
    return quarry_forward(m, ctx, &view, b->n_out ? b->logits : NULL, err);
}

/* Appends one token of the session's sequence at the given position. */
static void batch_push(quarry_gen_batch *b, int32_t token, int32_t seq, int32_t pos, bool want)
{
    const int32_t i = b->n_tokens++;
    b->token[i] = token;
    b->seq_id[i] = seq;
    b->pos[i] = pos;
    b->want[i] = want;
    b->n_out += want;
}

int32_t quarry_gen_add(quarry_gen *g, quarry_gen_batch *b)
{
    if (g->phase == PHASE_DONE || quarry_gen_batch_room(b) == 0)
        return 0;
    if (g->batch == b && g->batch_serial == b->serial)
        return 0; /* already in this step */
    const int32_t pos0 = quarry_kvcache_seq_len(quarry_context_kv(g->ctx), g->seq);
    int32_t n = 0;
    g->out_row = -1;
    if (g->phase == PHASE_PROMPT) {
        if (g->n_fed == 0 && g->t_start == 0)
            g->t_start = now_s();
        n = g->n_prompt - g->n_fed;
        if (n > g->p.n_batch)
            n = g->p.n_batch;
        if (n > quarry_gen_batch_room(b))
            n = quarry_gen_batch_room(b);
        const bool last_chunk = g->n_fed + n == g->n_prompt;
        for (int32_t i = 0; i < n; i++) {
            const bool want = last_chunk && i == n - 1;
            if (want)
                g->out_row = b->n_out;
            batch_push(b, g->prompt[g->n_fed + i], g->seq, pos0 + i, want);
        }
    } else {
        g->out_row = b->n_out;
        batch_push(b, g->output[g->n_output - 1], g->seq, pos0, true);
        n = 1;
    }
    g->batch = b;
    g->batch_serial = b->serial;
    g->n_added = n;
    return n;
}

/* Ends the session: releases held text into g->text, sets the reason. */
static void finish(quarry_gen *g, enum quarry_finish why)
{
    if (why != QUARRY_FINISH_STOP && why != QUARRY_FINISH_CANCELLED) {
        /* bytes of an unfinished UTF-8 character go to the stop matcher like
         * any text (they could complete a stop string), then all it holds */
        char tail[4];
        const size_t nt = quarry_detok_stream_flush(&g->detok, tail);
        const char *emit;
        size_t emit_len;
        int rc = quarry_stop_feed(g->stop, tail, nt, &emit, &emit_len);
        if (rc >= 0 && text_append(g, emit, emit_len) != 0)
            rc = QUARRY_ENOMEM;
        if (rc == 1) {
            why = QUARRY_FINISH_STOP;
        } else if (rc == 0) {
            quarry_stop_flush(g->stop, &emit, &emit_len);
            if (text_append(g, emit, emit_len) != 0)
                rc = QUARRY_ENOMEM;
        }
        if (rc < 0 && why != QUARRY_FINISH_ERROR) {
            why = QUARRY_FINISH_ERROR;
            quarry_errorf(&g->stats.error, rc, "generate: out of memory");
        }
    }
    g->stats.finish = why;
    g->stats.stop_index = quarry_stop_which(g->stop);
    g->phase = PHASE_DONE;
}

/* Delivers g->text with token; a non-zero answer cancels a running session. */
static void deliver(quarry_gen *g, int32_t token)
{
    if (!g->on_piece) {
        g->text_len = 0;
        return;
    }
    const struct quarry_gen_piece piece = {.token = token, .text = g->text ? g->text : "",
                                           .len = g->text_len, .finish = g->stats.finish};
    g->text_len = 0;
    if (g->on_piece(g->user, &piece) != 0 && g->phase != PHASE_DONE)
        finish(g, QUARRY_FINISH_CANCELLED);
}

static int fail_with(quarry_gen *g, int32_t token, int code)
{
    if (g->stats.error.code == 0)
        g->stats.error.code = code;
    finish(g, QUARRY_FINISH_ERROR);
    deliver(g, token);
    return code;
}

void quarry_gen_fail(quarry_gen *g, const quarry_error *err)
{
    if (g->phase == PHASE_DONE)
        return;
    g->stats.error = err ? *err : (quarry_error){.code = QUARRY_EINVAL};
    g->batch = NULL;
    g->n_added = 0;
    fail_with(g, QUARRY_TOKEN_NULL, g->stats.error.code ? g->stats.error.code : QUARRY_EINVAL);
}

/* The sampled token's consequences: stream its text, decide whether to go on. */
static int take_token(quarry_gen *g, int32_t token, quarry_error *err)
{
    g->t_last = now_s();
    if (g->n_output == 0) {
        g->t_first = g->t_last;
        g->stats.t_prompt_s = g->t_first - g->t_start;
    }
    g->stats.t_gen_s = g->t_last - g->t_first;
    if (grow_ids(&g->output, &g->output_cap, g->n_output + 1)) {
        quarry_errorf(&g->stats.error, QUARRY_ENOMEM, "generate: out of memory");
        *err = g->stats.error;
        return fail_with(g, token, QUARRY_ENOMEM);
    }
    g->output[g->n_output++] = token;
    g->stats.n_gen = g->n_output;
    quarry_sampler_accept(g->sampler, token);

    if (!g->p.ignore_eos && g->tok && quarry_tokenizer_is_eog(g->tok, token)) {
        finish(g, QUARRY_FINISH_EOS);
    } else if (g->tok) {
        /* a piece plus at most 3 held bytes; a piece is short, but ask if not */
        char buf[256];
        char *piece = buf;
        size_t n = 0;
        int rc = quarry_detok_stream_push(&g->detok, token, buf, sizeof buf, &n, err);
        if (rc == QUARRY_ERANGE) {
            piece = malloc(n);
            rc = piece ? quarry_detok_stream_push(&g->detok, token, piece, n, &n, err)
                       : quarry_errorf(err, QUARRY_ENOMEM, "generate: out of memory");
        }
        if (rc) {
            if (piece != buf)
                free(piece);
            g->stats.error = *err;
            return fail_with(g, token, rc);
        }
        const char *emit;
        size_t emit_len;
        rc = quarry_stop_feed(g->stop, piece, n, &emit, &emit_len);
        if (piece != buf)
            free(piece);
        if (rc >= 0 && text_append(g, emit, emit_len) != 0)
            rc = QUARRY_ENOMEM;
        if (rc < 0) {
            quarry_errorf(&g->stats.error, rc, "generate: out of memory");
            *err = g->stats.error;
            return fail_with(g, token, rc);
        }
        if (rc == 1)
            finish(g, QUARRY_FINISH_STOP);
    }
    if (g->phase != PHASE_DONE) {
        if (g->p.max_tokens >= 0 && g->n_output >= g->p.max_tokens) {
            finish(g, QUARRY_FINISH_LENGTH);
        } else if (quarry_kvcache_seq_len(quarry_context_kv(g->ctx), g->seq) >= g->n_ctx) {
            g->stats.context_full = true;
            finish(g, QUARRY_FINISH_LENGTH);
        }
    }
    if (g->phase != PHASE_DONE)
        g->phase = PHASE_DECODE;
    deliver(g, token);
    return 0;
}

int quarry_gen_update(quarry_gen *g, const quarry_gen_batch *b, quarry_error *err)
{
    if (g->phase == PHASE_DONE || g->batch != b || g->batch_serial != b->serial || g->n_added == 0)
        return 0;
    const int32_t n = g->n_added;
    const int32_t row = g->out_row;
    g->batch = NULL;
    g->n_added = 0;
    g->out_row = -1;
    if (g->phase == PHASE_PROMPT) {
        g->n_fed += n;
        g->stats.n_prompt_evals++;
    } else {
        g->stats.n_gen_evals++;
    }
    if (row < 0)
        return 0; /* a prompt chunk before the last */
    if (g->p.max_tokens == 0) {
        /* only the prompt was wanted (e.g. to fill the cache) */
        g->t_first = g->t_last = now_s();
        g->stats.t_prompt_s = g->t_first - g->t_start;
        finish(g, QUARRY_FINISH_LENGTH);
        deliver(g, QUARRY_TOKEN_NULL);
        return 0;
    }
    int32_t token;
    int rc = quarry_sampler_sample(g->sampler, b->logits + (size_t)row * b->n_vocab, &token, err);
    if (rc) {
        g->stats.error = *err;
        return fail_with(g, QUARRY_TOKEN_NULL, rc);
    }
    return take_token(g, token, err);
}

int quarry_gen_run(quarry_gen *g, quarry_error *err)
{
    if (g->phase == PHASE_DONE)
        return g->stats.finish == QUARRY_FINISH_ERROR ? g->stats.error.code : 0;
    quarry_gen_batch *b = NULL;
    int32_t cap = g->p.n_batch < g->n_prompt ? g->p.n_batch : g->n_prompt;
    int rc = quarry_gen_batch_new(cap, g->model->hp.n_vocab, &b, err);
    if (rc) {
        quarry_gen_fail(g, err);
        return rc;
    }
    while (g->phase != PHASE_DONE) {
        quarry_gen_batch_clear(b);
        quarry_gen_add(g, b);
        if ((rc = quarry_gen_batch_forward(g->model, g->ctx, b, err))) {
            quarry_gen_fail(g, err);
            break;
        }
        if ((rc = quarry_gen_update(g, b, err)))
            break;
    }
    quarry_gen_batch_free(b);
    return rc;
}
