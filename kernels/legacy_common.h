/*
 * legacy_common.h - scalar helpers shared by the legacy block quants (q4_0,
 * q4_1, q5_0, q5_1, q8_0, q8_1; kernels/q[458]_[01]*.c): ggml's rounding of
 * codes and activations, the 16-lane float fold of their dot products, the
 * packed fifth bits of q5_0/q5_1, and the reference quantization of one
 * q8_0 / q8_1 block, which the scalar reference quantizers run on every
 * block and the SIMD quantizers on the blocks they cannot vectorize
 * (non-finite values or scales), so both give ggml's bytes for every input.
 *
 * Plain C: included by scalar and SIMD files alike.
 */
#ifndef QUARRY_LEGACY_COMMON_H
#define QUARRY_LEGACY_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/types.h"

/* The code ggml writes for v >= 0 (what finite input produces): MIN(hi,
 * (int8_t)v) in q4_0/q4_1/q5_0, (uint8_t)v (always <= hi) in q5_1; made
 * defined for every input (saturating at hi; NaN gives 0). */
static inline uint8_t lq_truncate_code(float v, int hi)
{
    if (!(v > 0.0f))
        return 0;
    return v < (float)hi ? (uint8_t)v : (uint8_t)hi;
}

/* (int8_t)roundf(v) for |v| <= 127.5 as ggml writes it, made defined for
 * every input: saturates, and NaN (only from non-finite input) gives 0. */
static inline int8_t lq_round_to_i8(float v)
{
    const float r = roundf(v);
    if (r >= 127.0f)
        return 127;
    if (r <= -128.0f)
        return -128;
    return r == r ? (int8_t)r : 0;
}

/* The 32 fifth bits of a q5_0 / q5_1 block (little-endian u32). */
static inline uint32_t lq_load_qh(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static inline void lq_store_qh(uint8_t qh[4], uint32_t bits)
{
    const uint8_t bytes[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                              (uint8_t)(bits >> 24)};
    memcpy(qh, bytes, sizeof bytes);
}

/* ---- the float fold of the legacy dot products ---------------------------- */
/*
 * The legacy dot products (q4_0, q5_0, q8_0 . q8_0; q4_1, q5_1 . q8_1) fold
 * their per-block float terms t_b into LQ_FOLD_LANES running sums instead of
 * one, so that vector code adds 16 blocks' terms with one vector add rather
 * than a serial chain of scalar adds, and then combine the sums by a fixed
 * pairwise tree:
 *   acc[0..15] = +0.0f
 *   for each block b, in order:  acc[b % 16] = acc[b % 16] + t_b
 *   for w = 8, 4, 2, 1:          acc[i] = acc[i] + acc[i + w]  (i < w)
 *   result acc[0]
 * Every ISA level reproduces this bit for bit (AVX-512: one 16-lane vector;
 * AVX2: two 8-lane vectors, lanes 0-7 and 8-15). A lane is never -0.0f (it
 * starts at +0.0f, and a rounded-to-nearest sum is -0.0f only when both
 * addends are), so vector code may add +0.0f into lanes that get no block
 * (a row's last, partial group of 16) without changing any bit.
 */
#define LQ_FOLD_LANES 16

/* acc[b % 16] += t (block b's term) */
static inline void lq_fold_add(float acc[LQ_FOLD_LANES], int b, float t)
{
    acc[b % LQ_FOLD_LANES] = acc[b % LQ_FOLD_LANES] + t;
}

/* the pairwise tree over acc (modified), returning the result */
static inline float lq_fold_finish(float acc[LQ_FOLD_LANES])
{
    for (int w = LQ_FOLD_LANES / 2; w >= 1; w /= 2) {
        for (int i = 0; i < w; i++)
            acc[i] = acc[i] + acc[i + w];
    }
    return acc[0];
}

_Static_assert(QK8_0 == QK8_1, "q8_0 and q8_1 blocks hold the same number of values");

/* The scale of a q8_0 / q8_1 block as ggml's reference quantizers compute
 * it: d = amax/127 (returned) and *id = 1/d, 0 when d is 0. */
static inline float lq_q8_scale(const float *x, float *id)
{
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a; /* ggml's MAX(), NaN included */
    }
    const float d = amax / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    return d;
}

/* ggml's quantize_row_q8_0_ref on one block: q = roundf(x/d) computed as
 * x * (1/d), d stored as fp16 of the float d. */
static inline void lq_quantize_block_q8_0(const float *x, block_q8_0 *y)
{
    float id;
    const float d = lq_q8_scale(x, &id);
    y->d = quarry_fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; j++)
        y->qs[j] = lq_round_to_i8(x[j] * id);
}

/* ggml's quantize_row_q8_1_ref on one block: as q8_0, plus
 * s = fp16((float)sum(q) * d) with the unrounded float d. */
static inline void lq_quantize_block_q8_1(const float *x, block_q8_1 *y)
{
    float id;
    const float d = lq_q8_scale(x, &id);
    y->d = quarry_fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; j++) {
        y->qs[j] = lq_round_to_i8(x[j] * id);
        sum += y->qs[j];
    }
    y->s = quarry_fp32_to_fp16((float)sum * d);
}

#endif
