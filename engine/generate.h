/*
 * generate.h - a generation session: one prompt in, streamed text out.
 *
 * A session (quarry_gen) owns one sequence of a context: it tokenizes the
 * prompt (or takes token ids), runs it through the model in batched forwards
 * of at most n_batch tokens, then decodes one token per step: sample from the
 * logits (engine/sampler.h), turn the token into text with the streaming
 * detokenizer (never a broken UTF-8 character), pass the text through the
 * stop-string matcher (text that could be the start of a stop string is held
 * back until it is known not to be one) and hand what may be shown to the
 * caller's callback. It ends with a reason (stop string, token limit or full
 * context, end-of-generation token, cancelled by the callback, error), token
 * counts and timings.
 *
 * Two ways to drive sessions:
 *   - quarry_gen_run(): blocking, one session (the `quarry run` command).
 *   - the step API, for a server that serves several sessions in one forward
 *     pass: build a shared quarry_gen_batch, let every live session add its
 *     next tokens (quarry_gen_add: a prompt chunk, or the token it sampled
 *     last), run quarry_gen_batch_forward() once, then let every session that
 *     added tokens consume its logits row (quarry_gen_update). Sessions of one
 *     batch must use the same context and different sequence ids.
 *
 * Callbacks: once per sampled token, from quarry_gen_update (or run), with the
 * text released by that token - possibly empty (held back) or longer than the
 * token's own piece (held text released). The last call of a session has
 * finish set and carries whatever was still held (token QUARRY_TOKEN_NULL
 * when no token was sampled: a failed forward pass, max_tokens 0), except
 * when the callback itself cancelled. Nothing else calls back.
 *
 * A session is used by one thread at a time; sessions on different contexts
 * are independent. The model, tokenizer and context are borrowed and must
 * outlive the session.
 */
#ifndef QUARRY_GENERATE_H
#define QUARRY_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/batch.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

enum quarry_finish {
    QUARRY_FINISH_NONE = 0,   /* still running (or not started) */
    QUARRY_FINISH_STOP,       /* a stop string appeared: text before it was shown */
    QUARRY_FINISH_LENGTH,     /* max_tokens reached, or the sequence filled the context */
    QUARRY_FINISH_EOS,        /* the model produced an end-of-generation token */
    QUARRY_FINISH_CANCELLED,  /* the callback asked to stop */
    QUARRY_FINISH_ERROR,      /* a forward pass or sampling failed (see stats.error) */
};

/* "stop", "length", "eos", "cancelled", "error", "none" (OpenAI's finish_reason
 * words where they exist). */
const char *quarry_finish_name(enum quarry_finish f);

struct quarry_gen_params {
    struct quarry_sampler_params sampling; /* temperature 0 = greedy */
    const struct quarry_logit_bias *logit_bias; /* n_logit_bias entries (copied) */
    size_t n_logit_bias;
    int32_t max_tokens;        /* tokens to sample at most; < 0: until EOS, stop or full context */
    const char *const *stops;  /* n_stops non-empty stop strings (copied) */
    size_t n_stops;
    bool add_special;          /* prompt text: add BOS/EOS as the model's flags say */
    bool parse_special;        /* prompt text: "<s>", "<|im_end|>"... become those tokens */
    bool render_special;       /* generated control tokens appear as their text */
    bool ignore_eos;           /* end-of-generation tokens do not end the session */
    int32_t n_batch;           /* prompt tokens per forward pass at most */
};

/* sampling: quarry_sampler_params_default (llama.cpp's); max_tokens -1; no
 * logit biases, no stops; add_special true; parse_special, render_special, ignore_eos false;
 * n_batch 512. */
void quarry_gen_params_default(struct quarry_gen_params *p);

/* What one callback call carries. */
struct quarry_gen_piece {
    int32_t token;             /* the sampled token */
    const char *text;          /* text released now (not NUL-terminated; valid during the call) */
    size_t len;
    enum quarry_finish finish; /* NONE, except on the session's last call */
};

/* Return 0 to go on, non-zero to cancel the session (finish CANCELLED; the
 * text of this call was already delivered). */
typedef int (*quarry_gen_piece_fn)(void *user, const struct quarry_gen_piece *piece);

struct quarry_gen_stats {
    enum quarry_finish finish;
    int stop_index;            /* which stop string matched, or -1 */
    bool context_full;         /* finish LENGTH because the sequence reached n_ctx */
    int32_t n_prompt;          /* prompt tokens */
    int32_t n_gen;             /* tokens sampled (an end-of-generation token included) */
    int32_t n_prompt_evals;    /* forward passes that carried prompt tokens */
    int32_t n_gen_evals;       /* forward passes that carried a sampled token (n_gen - 1 at most) */
    double t_prompt_s;         /* first prompt token added -> first token sampled */
    double t_gen_s;            /* first token sampled -> last token sampled */
    quarry_error error;        /* when finish is ERROR */
};

typedef struct quarry_gen quarry_gen;

/* A session on sequence seq of ctx (made for m). tok may be NULL when the
 * prompt is given as ids and no text is wanted: the callback then gets empty
 * text, stop strings are refused and no token counts as end of generation.
 * Checks the parameters (QUARRY_EINVAL naming the bad one). on_piece may be
 * NULL. */
int quarry_gen_new(const quarry_model *m, const quarry_tokenizer *tok, quarry_context *ctx,
                   int32_t seq, const struct quarry_gen_params *p, quarry_gen_piece_fn on_piece,
                   void *user, quarry_gen **out, quarry_error *err);
void quarry_gen_free(quarry_gen *g);

/* Starts a generation (a session can be started again when done): forgets
 * the sequence's KV cache, resets the sampler (re-seeded), the stop matcher and
 * the statistics, and records the prompt; the sampler's penalty window sees the
 * prompt tokens, as in llama.cpp's CLI. The prompt must be non-empty, its ids
 * valid, and fit the context (QUARRY_ERANGE). No forward pass runs yet. */
int quarry_gen_start_text(quarry_gen *g, const char *text, size_t len, quarry_error *err);
int quarry_gen_start_tokens(quarry_gen *g, const int32_t *ids, int32_t n, quarry_error *err);

/* Runs a started session to its end, alone. Returns 0 when it finished for
 * any reason but ERROR, else the error code (also in the stats). */
int quarry_gen_run(quarry_gen *g, quarry_error *err);

bool quarry_gen_done(const quarry_gen *g);
const struct quarry_gen_stats *quarry_gen_stats(const quarry_gen *g);
/* The prompt ids and the sampled ids so far (valid until the next start). */
const int32_t *quarry_gen_prompt(const quarry_gen *g, int32_t *n);
const int32_t *quarry_gen_output(const quarry_gen *g, int32_t *n);

/* ---- the step API: several sessions in one forward pass ------------------ */

typedef struct quarry_gen_batch quarry_gen_batch;

/* A batch of at most capacity tokens for a model of n_vocab tokens. */
int quarry_gen_batch_new(int32_t capacity, int32_t n_vocab, quarry_gen_batch **out,
                         quarry_error *err);
void quarry_gen_batch_free(quarry_gen_batch *b);
/* Empties the batch for the next step. */
void quarry_gen_batch_clear(quarry_gen_batch *b);
int32_t quarry_gen_batch_size(const quarry_gen_batch *b);   /* tokens in it */
int32_t quarry_gen_batch_room(const quarry_gen_batch *b);   /* tokens that still fit */
/* The batch as quarry_forward takes it. */
quarry_batch quarry_gen_batch_view(const quarry_gen_batch *b);
/* Runs the batch (quarry_forward) into its own logits rows. An empty batch is
 * a no-op. On error no sequence advanced; call quarry_gen_fail on each
 * session that added tokens (or clear the batch and retry). */
int quarry_gen_batch_forward(const quarry_model *m, quarry_context *ctx, quarry_gen_batch *b,
                             quarry_error *err);

/* Adds the session's next tokens to b: the next chunk of the prompt (at most
 * n_batch tokens and the batch's room), or the token sampled last. Returns the
 * number added: 0 when the session is done, not started, already in this
 * batch, or the batch is full. */
int32_t quarry_gen_add(quarry_gen *g, quarry_gen_batch *b);
/* After quarry_gen_batch_forward(b) succeeded: the session takes note of the
 * tokens that went through and, when it asked for logits, samples the next
 * token from its row and streams its text. A session that added nothing
 * returns 0 at once. Returns 0, or the error code of a failed sampling or
 * detokenization (the session then finishes with ERROR). */
int quarry_gen_update(quarry_gen *g, const quarry_gen_batch *b, quarry_error *err);
/* After a failed forward: the session finishes with ERROR and err's message. */
void quarry_gen_fail(quarry_gen *g, const quarry_error *err);

#endif
