/*
 * flash_attn.c - tiled attention with an online softmax (see flash_attn.h).
 *
 * One task = one KV head x one block of FA_Q_BLOCK query tokens. It walks the
 * visible keys in tiles of QUARRY_FA_KV_TILE: converts the tile's K slice of
 * its head to float, transposed (kt[d][j], so scores for many keys are
 * computed at once without horizontal sums), and its V slice row by row, once
 * per tile; then for every query row of the block (each token x each query
 * head of the group) the tile kernel computes the tile's scores and folds
 * them into that row's running state:
 *
 *   m' = max(m, max_j s_j)            running maximum
 *   c  = exp(m - m')                  rescales what was accumulated so far
 *   l' = l * c + sum_j exp(s_j - m')  running denominator
 *   o' = o * c + sum_j exp(s_j - m') v_j
 *
 * and at the end divides o by l. The output rows themselves hold o, so the
 * scratch is the two tiles, one row of scores and (m, l) per row.
 * This file holds the driver and the scalar tile kernel; flash_attn_avx2.c
 * and flash_attn_avx512.c hold the vector tile kernels.
 */
#include "kernels/flash_attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FA_TILE QUARRY_FA_KV_TILE
#define FA_Q_BLOCK 16 /* query tokens per task */

int quarry_attn_check(const struct quarry_attn *a, quarry_error *err)
{
    if (a->n_q < 0 || a->n_kv < 0 || a->n_head <= 0 || a->n_head_kv <= 0 || a->head_dim <= 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "attention: bad sizes (n_q %d, n_kv %d, heads %d/%d, head_dim %d)",
                             a->n_q, a->n_kv, a->n_head, a->n_head_kv, a->head_dim);
    if (a->n_head % a->n_head_kv != 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "attention: %d query heads is not a multiple of %d KV heads",
                             a->n_head, a->n_head_kv);
    const struct quarry_type_info *info = quarry_type_info(a->kv_type);
    if (!info)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "attention: unknown KV type %d",
                             (int)a->kv_type);
    if (a->kv_type != QUARRY_TYPE_F32) {
        const struct quarry_type_traits *tr = quarry_traits(a->kv_type);
        if (!tr || !tr->to_float)
            return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                                 "attention: no conversion to float for KV type %s", info->name);
    }
    if (a->head_dim % info->block_size != 0)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "attention: head size %d is not a multiple of the %s block size %d",
                             a->head_dim, info->name, info->block_size);
    if (a->n_q > 0 && (!a->q || !a->out))
        return quarry_errorf(err, QUARRY_EINVAL, "attention: missing q or out");
    if (a->n_kv > 0 && (!a->k || !a->v))
        return quarry_errorf(err, QUARRY_EINVAL, "attention: missing k or v");
    if (a->q_pos) {
        for (int t = 0; t < a->n_q; t++)
            if (a->q_pos[t] < 0 || a->q_pos[t] >= a->n_kv)
                return quarry_errorf(err, QUARRY_EINVAL,
                                     "attention: query %d at position %d, but keys are 0..%d", t,
                                     (int)a->q_pos[t], a->n_kv - 1);
    }
    return 0;
}

static int query_blocks(const struct quarry_attn *a)
{
    return (a->n_q + FA_Q_BLOCK - 1) / FA_Q_BLOCK;
}

int quarry_flash_attn_tasks(const struct quarry_attn *a)
{
    return a->n_head_kv * query_blocks(a);
}

size_t quarry_flash_attn_scratch_floats(const struct quarry_attn *a)
{
    const size_t group = (size_t)(a->n_head / a->n_head_kv);
    return 2 * (size_t)FA_TILE * (size_t)a->head_dim /* K (transposed) and V tiles */
           + (size_t)a->head_dim                      /* one converted K row */
           + 4 * FA_TILE                              /* scores of four rows */
           + 2 * FA_Q_BLOCK * group;                  /* (m, l) per row */
}

void quarry_fa_tile_scalar(const float *q, const float *kt, const float *v, int n, int hd,
                           float scale, float *scores, float *m, float *l, float *o)
{
    for (int j = 0; j < n; j++)
        scores[j] = 0.0f;
    for (int d = 0; d < hd; d++) { /* s_j += q_d k_jd for all keys of the tile at once */
        const float qd = q[d];
        const float *row = kt + (size_t)d * FA_TILE;
        for (int j = 0; j < n; j++)
            scores[j] += qd * row[j];
    }
    float tile_max = -INFINITY;
    for (int j = 0; j < n; j++) {
        scores[j] *= scale;
        if (scores[j] > tile_max)
            tile_max = scores[j];
    }
    if (tile_max > *m) {
        /* New maximum: rescale what earlier tiles accumulated. (First tile:
         * m = -inf, c = 0, and o and l are 0 anyway.) */
        const float c = expf(*m - tile_max);
        *l *= c;
        for (int d = 0; d < hd; d++)
            o[d] *= c;
        *m = tile_max;
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - *m);
        sum += scores[j];
    }
    *l += sum;
    for (int j = 0; j < n; j++) {
        const float p = scores[j];
        const float *vj = v + (size_t)j * hd;
        for (int d = 0; d < hd; d++)
            o[d] += p * vj[d];
    }
}

static quarry_fa_tile_fn tile_kernel(enum quarry_isa isa)
{
    if (isa >= QUARRY_ISA_AVX512)
        return quarry_fa_tile_avx512;
    if (isa >= QUARRY_ISA_AVX2)
        return quarry_fa_tile_avx2;
    return quarry_fa_tile_scalar;
}

/* Levels without a four-row kernel: the single-row one per row. */
static void fold_rows(quarry_fa_tile_fn one, const float *q, size_t q_stride, const float *kt,
                      const float *v, int n, int hd, float scale, float *scores, float *m, float *l,
                      float *o, size_t o_stride)
{
    for (int r = 0; r < 4; r++)
        one(q + (size_t)r * q_stride, kt, v, n, hd, scale, scores, &m[r], &l[r],
            o + (size_t)r * o_stride);
}

/* Byte address of row j's slice for KV head kvh. */
static const uint8_t *kv_row(const void *base, size_t stride, size_t head_off, int j)
{
    return (const uint8_t *)base + (size_t)j * stride + head_off;
}

void quarry_flash_attn_task_isa(const struct quarry_attn *a, int task, float *scratch,
                                enum quarry_isa isa)
{
    const quarry_fa_tile_fn fold_tile = tile_kernel(isa);
    const int hd = a->head_dim;
    const int group = a->n_head / a->n_head_kv;
    const int kvh = task % a->n_head_kv;
    const int t0 = (task / a->n_head_kv) * FA_Q_BLOCK;
    const int t1 = t0 + FA_Q_BLOCK < a->n_q ? t0 + FA_Q_BLOCK : a->n_q;

    float *k_tile = scratch;                                /* [hd][FA_TILE], transposed */
    float *v_tile = k_tile + (size_t)FA_TILE * hd;          /* [FA_TILE][hd] */
    float *k_row = v_tile + (size_t)FA_TILE * hd;           /* [hd] */
    float *scores = k_row + hd;                             /* [4][FA_TILE] */
    float *row_max = scores + 4 * FA_TILE;                  /* [(t1-t0) * group] */
    float *row_sum = row_max + (size_t)FA_Q_BLOCK * group;  /* [(t1-t0) * group] */

    quarry_to_float_fn to_float =
        a->kv_type == QUARRY_TYPE_F32 ? NULL : quarry_traits(a->kv_type)->to_float;
    const size_t head_off = quarry_row_size(a->kv_type, (int64_t)kvh * hd);

    /* Keys any row of this block can see. */
    int kv_end = a->n_kv;
    if (a->q_pos) {
        kv_end = 0;
        for (int t = t0; t < t1; t++)
            if (a->q_pos[t] + 1 > kv_end)
                kv_end = a->q_pos[t] + 1;
    }

    for (int t = t0; t < t1; t++)
        for (int g = 0; g < group; g++) {
            memset(a->out + (int64_t)t * a->out_stride + (int64_t)(kvh * group + g) * hd, 0,
                   (size_t)hd * sizeof(float));
            row_max[(t - t0) * group + g] = -INFINITY;
            row_sum[(t - t0) * group + g] = 0.0f;
        }

    for (int j0 = 0; j0 < kv_end; j0 += FA_TILE) {
        const int j1 = j0 + FA_TILE < kv_end ? j0 + FA_TILE : kv_end;
        for (int j = j0; j < j1; j++) {
            const uint8_t *kr = kv_row(a->k, a->k_stride, head_off, j);
            const uint8_t *vr = kv_row(a->v, a->v_stride, head_off, j);
            float *vd = v_tile + (size_t)(j - j0) * hd;
            if (to_float) {
                to_float(kr, k_row, hd);
                to_float(vr, vd, hd);
            } else {
                memcpy(k_row, kr, (size_t)hd * sizeof(float));
                memcpy(vd, vr, (size_t)hd * sizeof(float));
            }
            for (int d = 0; d < hd; d++)
                k_tile[(size_t)d * FA_TILE + (j - j0)] = k_row[d];
        }

        for (int t = t0; t < t1; t++) {
            int limit = j1; /* keys j0..limit-1 of this tile are visible to token t */
            if (a->q_pos && a->q_pos[t] + 1 < limit)
                limit = a->q_pos[t] + 1;
            if (limit <= j0)
                continue;
            int g = 0;
            /* the group's query heads four at a time (contiguous in q and
             * out, hd apart), then one at a time */
            for (; g + 4 <= group; g += 4) {
                const int h = kvh * group + g;
                const int r = (t - t0) * group + g;
                const float *qr = a->q + (int64_t)t * a->q_stride + (int64_t)h * hd;
                float *orow = a->out + (int64_t)t * a->out_stride + (int64_t)h * hd;
                if (isa >= QUARRY_ISA_AVX512)
                    quarry_fa_tile4_avx512(qr, (size_t)hd, k_tile, v_tile, limit - j0, hd, a->scale,
                                           scores, &row_max[r], &row_sum[r], orow, (size_t)hd);
                else
                    fold_rows(fold_tile, qr, (size_t)hd, k_tile, v_tile, limit - j0, hd, a->scale,
                              scores, &row_max[r], &row_sum[r], orow, (size_t)hd);
            }
            for (; g < group; g++) {
                const int h = kvh * group + g;
                const int r = (t - t0) * group + g;
                fold_tile(a->q + (int64_t)t * a->q_stride + (int64_t)h * hd, k_tile, v_tile,
                          limit - j0, hd, a->scale, scores, &row_max[r], &row_sum[r],
                          a->out + (int64_t)t * a->out_stride + (int64_t)h * hd);
            }
        }
    }

    for (int t = t0; t < t1; t++)
        for (int g = 0; g < group; g++) {
            const float l = row_sum[(t - t0) * group + g];
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            float *o = a->out + (int64_t)t * a->out_stride + (int64_t)(kvh * group + g) * hd;
            for (int d = 0; d < hd; d++)
                o[d] *= inv;
        }
}

void quarry_flash_attn_task(const struct quarry_attn *a, int task, float *scratch)
{
    quarry_flash_attn_task_isa(a, task, scratch, quarry_isa_chosen());
}

int quarry_flash_attn_isa(const struct quarry_attn *a, enum quarry_isa isa, quarry_error *err)
{
    if (isa > quarry_isa_detected())
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "attention: this CPU cannot run %s",
                             quarry_isa_name(isa));
    int rc = quarry_attn_check(a, err);
    if (rc)
        return rc;
    float *scratch = malloc(quarry_flash_attn_scratch_floats(a) * sizeof(float));
    if (!scratch)
        return quarry_errorf(err, QUARRY_ENOMEM, "attention: out of memory for scratch");
    const int tasks = quarry_flash_attn_tasks(a);
    for (int i = 0; i < tasks; i++)
        quarry_flash_attn_task_isa(a, i, scratch, isa);
    free(scratch);
    return 0;
}

int quarry_flash_attn(const struct quarry_attn *a, quarry_error *err)
{
    return quarry_flash_attn_isa(a, quarry_isa_chosen(), err);
}
