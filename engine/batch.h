/*
 * batch.h - a batch: the tokens one forward pass processes together.
 *
 * Each token carries its sequence id and its position in that sequence, and a
 * flag saying whether the caller wants its logits. A whole prompt goes in one
 * batch (every token but the last unflagged); a decoding step of several
 * sequences is one token per sequence, all flagged; both can be mixed.
 *
 * Rules the forward pass checks (and refuses with QUARRY_EINVAL otherwise):
 * the tokens of one sequence appear in increasing position order and continue
 * that sequence exactly where its KV cache ends: positions len, len+1, ...
 * Tokens of different sequences may interleave in any order.
 *
 * The arrays are the caller's; the forward pass only reads them.
 */
#ifndef QUARRY_BATCH_H
#define QUARRY_BATCH_H

#include <stdint.h>

typedef struct quarry_batch {
    int32_t n_tokens;
    const int32_t *token;  /* [n_tokens] token ids */
    const int32_t *pos;    /* [n_tokens] positions; NULL: each sequence continues where it ends */
    const int32_t *seq_id; /* [n_tokens] sequence ids; NULL: all sequence 0 */
    const int8_t *logits;  /* [n_tokens] nonzero = return this token's logits; NULL: last token only */
} quarry_batch;

/* Number of logits rows a forward pass of b writes. */
static inline int32_t quarry_batch_n_outputs(const quarry_batch *b)
{
    if (!b->logits)
        return b->n_tokens > 0 ? 1 : 0;
    int32_t n = 0;
    for (int32_t i = 0; i < b->n_tokens; i++)
        n += b->logits[i] != 0;
    return n;
}

#endif
