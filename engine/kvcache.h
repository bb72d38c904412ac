/*
 * kvcache.h - the key/value cache: for every sequence, every layer and every
 * position already processed, the K and V rows (n_head_kv x head_dim values)
 * that attention reads back on later steps.
 *
 * Layout: each sequence has its own buffers, K and V, each
 *   [n_layer][capacity][kv_dim] values of the cache type,
 * so one layer of one sequence is a run of rows row_size bytes apart, exactly
 * what flash attention takes. Positions are dense: a sequence holding len
 * positions has rows 0..len-1, and the next token goes to position len.
 * Buffers are allocated on first use and grow by doubling up to n_ctx, the
 * hard limit per sequence (from the model's context length unless the caller
 * asks for less or more); asking for more gives QUARRY_ERANGE.
 *
 * Types: F16 (the default, as in llama.cpp), Q8_0 (half the memory; needs
 * head_dim to be a multiple of 32, since each head is read as whole blocks) and
 * F32. Rows are converted with the traits table's from_float.
 *
 * Per-sequence edits: clear (forget everything), copy (a prefix shared by a
 * fork, e.g. several completions of one prompt) and truncate (rewind to a
 * shorter length, e.g. after speculative tokens were rejected).
 *
 * Not thread-safe: one forward pass or edit at a time per cache.
 */
#ifndef QUARRY_KVCACHE_H
#define QUARRY_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "kernels/types.h"

struct quarry_kvcache_params {
    int32_t n_layer;
    int32_t n_ctx;          /* positions per sequence, the limit */
    int32_t n_seq;          /* sequence ids are 0 .. n_seq-1 */
    int32_t n_head_kv;
    int32_t head_dim;       /* kv_dim = n_head_kv * head_dim values per row */
    enum quarry_type type;  /* QUARRY_TYPE_F16, QUARRY_TYPE_Q8_0 or QUARRY_TYPE_F32 */
};

typedef struct quarry_kvcache quarry_kvcache;

/* Checks the parameters (type supported and its kernels present, head_dim a
 * multiple of the type's block size) and creates an empty cache. No sequence
 * memory is allocated yet. */
int quarry_kvcache_new(const struct quarry_kvcache_params *p, quarry_kvcache **out,
                       quarry_error *err);
void quarry_kvcache_free(quarry_kvcache *c);

const struct quarry_kvcache_params *quarry_kvcache_params(const quarry_kvcache *c);
/* Bytes of one K or V row (kv_dim values of the cache type). */
size_t quarry_kvcache_row_size(const quarry_kvcache *c);
/* Positions stored for seq (0 for a sequence never used); -1 for a bad id. */
int32_t quarry_kvcache_seq_len(const quarry_kvcache *c, int32_t seq);
/* Bytes currently allocated for all sequences. */
size_t quarry_kvcache_bytes(const quarry_kvcache *c);

/* Forgets seq's positions (seq < 0: every sequence). Memory is kept. */
int quarry_kvcache_clear(quarry_kvcache *c, int32_t seq, quarry_error *err);
/* Makes dst a copy of src (dst's old contents are dropped). */
int quarry_kvcache_copy(quarry_kvcache *c, int32_t src, int32_t dst, quarry_error *err);
/* Keeps the first n_keep positions of seq (n_keep <= its length). */
int quarry_kvcache_truncate(quarry_kvcache *c, int32_t seq, int32_t n_keep, quarry_error *err);

/* ---- used by the forward pass ------------------------------------------- */

/* Makes room for positions 0..n_pos-1 of seq (allocating or growing its
 * buffers). QUARRY_ERANGE with a message when n_pos exceeds n_ctx;
 * QUARRY_ENOMEM. The length does not change. */
int quarry_kvcache_reserve(quarry_kvcache *c, int32_t seq, int32_t n_pos, quarry_error *err);
/* Stores the K and V rows (kv_dim floats each) of one position; the position
 * must have been reserved. Does not change the length. */
void quarry_kvcache_write(quarry_kvcache *c, int32_t seq, int32_t layer, int32_t pos,
                          const float *k, const float *v);
/* Sets seq's length after a forward pass has written positions up to n_pos-1
 * (reserved). */
void quarry_kvcache_set_len(quarry_kvcache *c, int32_t seq, int32_t n_pos);
/* Row 0 of K / V of one layer of seq; rows are row_size bytes apart. NULL if
 * the sequence has no memory yet. */
const void *quarry_kvcache_k(const quarry_kvcache *c, int32_t seq, int32_t layer);
const void *quarry_kvcache_v(const quarry_kvcache *c, int32_t seq, int32_t layer);

#endif
