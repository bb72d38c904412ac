/*
 * flash_attn.h - scaled dot-product attention on the CPU, computed the
 * "flash" way (Dao et al. 2022): keys and values are visited in tiles, and a
 * running maximum and running sum per query row (the online softmax of
 * Milakov & Gimelshein 2018) let each tile be folded into the output at once,
 * so the n_q x n_kv score matrix never exists; only one tile's scores do.
 *
 *   out[t, h] = sum_j softmax_j(scale * q[t, h] . k[j, h / g]) v[j, h / g]
 *
 * Grouped-query attention: query head h reads key/value head h / g with
 * g = n_head / n_head_kv (consecutive query heads share a KV head, as in
 * ggml's broadcasting). Causal masking: query t sees keys 0..q_pos[t]; without
 * q_pos every key is visible. Keys and values are rows of any type with a
 * to_float kernel (F32, F16, Q8_0 for the KV cache), converted one tile at a
 * time; the arithmetic is float.
 *
 * Work is split into independent tasks (one KV head x one block of query
 * rows) so a caller with a thread pool can spread them; each task needs its
 * own scratch of quarry_flash_attn_scratch_floats() floats.
 * kernels/attn_ref.h holds the plain reference this is tested against.
 *
 * Variants: the per-tile arithmetic (scores, online softmax, weighted sum of
 * V) exists as scalar C (flash_attn.c), AVX2+FMA (flash_attn_avx2.c) and
 * AVX-512 (flash_attn_avx512.c); the process uses the level the traits table
 * chose (QUARRY_ISA overrides), and the _isa entry points pick one
 * explicitly so tests can compare them. The SIMD versions use a polynomial
 * exp (relative error ~1e-7) and FMA, so they round differently from scalar.
 */
#ifndef QUARRY_FLASH_ATTN_H
#define QUARRY_FLASH_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "kernels/kernels.h"
#include "kernels/types.h"

#define QUARRY_FA_KV_TILE 64 /* keys per tile */

/* One attention problem: the queries of one sequence against its keys. */
struct quarry_attn {
    int n_q;                 /* query tokens */
    int n_kv;                /* keys / values 0 .. n_kv-1 */
    int n_head;              /* query heads */
    int n_head_kv;           /* key/value heads; divides n_head */
    int head_dim;            /* values per head */
    float scale;             /* score scale, usually 1/sqrt(head_dim) */
    const float *q;          /* [n_q][n_head][head_dim], rows q_stride floats apart */
    int64_t q_stride;
    enum quarry_type kv_type;
    const void *k;           /* n_kv rows of [n_head_kv][head_dim] kv_type values, k_stride bytes apart */
    size_t k_stride;
    const void *v;           /* same layout as k */
    size_t v_stride;
    const int32_t *q_pos;    /* [n_q] causal limit: query t sees keys j <= q_pos[t]; NULL: all keys */
    float *out;              /* [n_q][n_head][head_dim], rows out_stride floats apart */
    int64_t out_stride;
};

/* Checks shapes and types (head counts, kv_type convertible, head_dim a
 * multiple of its block size, q_pos within n_kv). 0 or QUARRY_EINVAL /
 * QUARRY_EUNSUPPORTED with a message. */
int quarry_attn_check(const struct quarry_attn *a, quarry_error *err);

/* Number of independent tasks for a (n_head_kv x query blocks). */
int quarry_flash_attn_tasks(const struct quarry_attn *a);
/* Scratch floats one task needs (the same for every task of a). */
size_t quarry_flash_attn_scratch_floats(const struct quarry_attn *a);
/* Runs task number `task` (0 <= task < tasks), writing its rows of out.
 * a must have passed quarry_attn_check. Tasks may run concurrently. */
void quarry_flash_attn_task(const struct quarry_attn *a, int task, float *scratch);

/* Convenience: checks a, then runs every task on the calling thread. */
int quarry_flash_attn(const struct quarry_attn *a, quarry_error *err);

/* The same with an explicit ISA level (at most quarry_isa_detected()). */
void quarry_flash_attn_task_isa(const struct quarry_attn *a, int task, float *scratch,
                                enum quarry_isa isa);
int quarry_flash_attn_isa(const struct quarry_attn *a, enum quarry_isa isa, quarry_error *err);

/* The per-tile kernel of each level: folds keys 0..n-1 (n <= QUARRY_FA_KV_TILE)
 * of a tile into one query row's running state.
 *   q       [head_dim] the query row
 *   kt      [head_dim][QUARRY_FA_KV_TILE] the tile's keys, transposed
 *           (columns n.. may hold anything)
 *   v       [n][head_dim] the tile's values
 *   scores  [QUARRY_FA_KV_TILE] scratch
 *   m, l    running maximum and sum of exponentials; o [head_dim] running output */
typedef void (*quarry_fa_tile_fn)(const float *q, const float *kt, const float *v, int n,
                                  int head_dim, float scale, float *scores, float *m, float *l,
                                  float *o);
void quarry_fa_tile_scalar(const float *q, const float *kt, const float *v, int n, int head_dim,
                           float scale, float *scores, float *m, float *l, float *o);
void quarry_fa_tile_avx2(const float *q, const float *kt, const float *v, int n, int head_dim,
                         float scale, float *scores, float *m, float *l, float *o);
void quarry_fa_tile_avx512(const float *q, const float *kt, const float *v, int n, int head_dim,
                           float scale, float *scores, float *m, float *l, float *o);

/* The same for four query rows against one tile (rows r = 0..3 at q + r *
 * q_stride and o + r * o_stride, state m[r], l[r], scores [4][QUARRY_FA_KV_TILE]),
 * each row's result bit for bit that of the single-row kernel of its level.
 * The AVX-512 level has its own (K and V loaded once for the four rows); the
 * others call their single-row kernel four times. */
typedef void (*quarry_fa_tile4_fn)(const float *q, size_t q_stride, const float *kt, const float *v,
                                   int n, int head_dim, float scale, float *scores, float *m, float *l,
                                   float *o, size_t o_stride);
void quarry_fa_tile4_avx512(const float *q, size_t q_stride, const float *kt, const float *v, int n,
                            int head_dim, float scale, float *scores, float *m, float *l, float *o,
                            size_t o_stride);

#endif
