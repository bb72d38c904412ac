/*
 * sampler.h - choosing the next token from a logits vector, and cutting the
 * streamed text at stop strings.
 *
 * A sampler runs the stages of llama.cpp's default chain, in llama.cpp's
 * order, over the candidates (one per vocabulary entry):
 *
 *   logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> draw
 *
 * - logit bias: adds a per-token constant (-INFINITY bans a token).
 * - penalties (llama.cpp's "penalties" sampler): for each token seen c > 0
 *   times among the last penalty_last_n accepted tokens, a positive logit is
 *   divided by repeat_penalty and a non-positive one multiplied by it, then
 *   c * frequency_penalty + presence_penalty is subtracted.
 * - top-k keeps the k largest logits (0 = off).
 * - top-p keeps the smallest prefix of the candidates sorted by probability
 *   whose cumulative probability reaches p (1 = off).
 * - min-p keeps the candidates whose probability is at least min_p times the
 *   largest one (0 = off).
 * - temperature divides the logits; temperature 0 means greedy: the argmax is
 *   taken and no random number is drawn (ties go to the lowest token id).
 * - the draw picks one remaining candidate with probability softmax(logit).
 * As in llama.cpp, top-p and min-p look at the distribution before the
 * temperature is applied (temperature comes last in the chain).
 *
 * Randomness comes from the sampler's own xoshiro256** generator seeded with
 * splitmix64 from params.seed: the same seed, logits and accepted tokens give
 * the same tokens on every machine. Nothing is global; a sampler may be used
 * by one thread at a time, and different samplers are independent.
 *
 * End of generation by EOS token or by a maximum token count is the caller's
 * business; the stop-string matcher at the end of this header handles stop
 * strings in the streamed text.
 */
#ifndef QUARRY_SAMPLER_H
#define QUARRY_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

struct quarry_sampler_params {
    float temperature;        /* >= 0; 0 = greedy */
    int32_t top_k;            /* >= 0; 0 = off */
    float top_p;              /* in [0, 1]; 1 = off */
    float min_p;              /* in [0, 1]; 0 = off */
    int32_t penalty_last_n;   /* >= 0: window of accepted tokens the penalties count; 0 = off */
    float repeat_penalty;     /* > 0; 1 = off */
    float frequency_penalty;  /* finite; 0 = off */
    float presence_penalty;   /* finite; 0 = off */
    size_t min_keep;          /* top-p / min-p keep at least this many (llama.cpp: 1) */
    uint64_t seed;
};

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * penalty_last_n 64, repeat 1.0, frequency 0, presence 0, min_keep 1,
 * seed 0x5eed. */
void quarry_sampler_params_default(struct quarry_sampler_params *p);

/* Checks every field; QUARRY_EINVAL with a message naming the bad one. */
int quarry_sampler_params_check(const struct quarry_sampler_params *p, quarry_error *err);

typedef struct quarry_sampler quarry_sampler;

/* Creates a sampler for a vocabulary of n_vocab tokens (its buffers are sized
 * once here; sampling allocates nothing). */
int quarry_sampler_new(const struct quarry_sampler_params *p, int32_t n_vocab,
                       quarry_sampler **out, quarry_error *err);
void quarry_sampler_free(quarry_sampler *s);

struct quarry_logit_bias {
    int32_t token;
    float bias;               /* finite, or -INFINITY to ban the token */
};

/* Replaces the sampler's logit biases (a copy is kept; n = 0 clears them).
 * A token outside the vocabulary or a NaN/+inf bias is QUARRY_EINVAL. */
int quarry_sampler_set_logit_bias(quarry_sampler *s, const struct quarry_logit_bias *bias,
                                  size_t n, quarry_error *err);

/* Picks a token from logits[n_vocab] (not modified). Does not record the
 * token: call quarry_sampler_accept() with every token that becomes part of
 * the sequence (the prompt too, if the penalties should see it).
 * QUARRY_EINVAL if a logit is NaN or no candidate is left (every token banned). */
int quarry_sampler_sample(quarry_sampler *s, const float *logits, int32_t *token,
                          quarry_error *err);

/* Records a token in the penalty window (the oldest falls out when full).
 * Tokens outside the vocabulary are ignored. */
void quarry_sampler_accept(quarry_sampler *s, int32_t token);

/* Forgets the accepted tokens and re-seeds the generator with params.seed. */
void quarry_sampler_reset(quarry_sampler *s);

/* ---- the stages, on a candidate array (exposed for tests and tools) ------ */

struct quarry_candidate {
    int32_t id;
    float logit;
    float p;                  /* filled by quarry_candidates_softmax */
};

struct quarry_candidates {
    struct quarry_candidate *data;
    size_t size;
    bool sorted;              /* data is in descending logit order */
    struct quarry_candidate *scratch; /* NULL, or room for size entries: lets
                                         large sorts use a radix sort */
};

/* Sorts by descending logit (ties: lower id first) and sets p = softmax. */
void quarry_candidates_softmax(struct quarry_candidates *c);
void quarry_candidates_top_k(struct quarry_candidates *c, int32_t k);
void quarry_candidates_top_p(struct quarry_candidates *c, float p, size_t min_keep);
void quarry_candidates_min_p(struct quarry_candidates *c, float p, size_t min_keep);
/* temperature <= 0: every logit but the first largest becomes -INFINITY. */
void quarry_candidates_temperature(struct quarry_candidates *c, float temperature);
/* counts[id] = occurrences of id in the window (NULL: no penalties). */
void quarry_candidates_penalties(struct quarry_candidates *c, const int32_t *counts,
                                 float repeat, float frequency, float presence);

/* ---- stop strings over streamed text ------------------------------------- */

/*
 * The matcher is fed the generated text piece by piece (as detokenized) and
 * says what may be shown now. It holds back the end of the text while that
 * end could still be the start of a stop string, and an incomplete UTF-8
 * sequence at the very end; once a stop string appears, the text before it
 * is released and everything from the stop string on is dropped. When
 * generation ends for another reason (EOS, token limit), call
 * quarry_stop_flush() to release what is still held.
 */
typedef struct quarry_stop_matcher quarry_stop_matcher;

/* stops: n non-empty strings (copied). n = 0 is allowed (only UTF-8 holding). */
int quarry_stop_new(const char *const *stops, size_t n, quarry_stop_matcher **out,
                    quarry_error *err);
void quarry_stop_free(quarry_stop_matcher *m);

/* Feeds len bytes. *emit / *emit_len: text that may be shown now (valid until
 * the next call on m). Returns 0 (keep going), 1 (a stop string was found:
 * *emit is the text before it; later feeds emit nothing and return 1), or
 * QUARRY_ENOMEM. */
int quarry_stop_feed(quarry_stop_matcher *m, const char *piece, size_t len, const char **emit,
                     size_t *emit_len);
/* Releases everything still held (after a stop: nothing). */
void quarry_stop_flush(quarry_stop_matcher *m, const char **emit, size_t *emit_len);
/* Index of the stop string that matched, or -1. */
int quarry_stop_which(const quarry_stop_matcher *m);
/* Forgets held text and the stopped state, for a new generation. */
void quarry_stop_reset(quarry_stop_matcher *m);

#endif
