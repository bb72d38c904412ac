/*
 * q4_0.c - scalar reference kernels for q4_0: blocks of 32 weights stored as
 * 4-bit codes c (0..15) with one fp16 scale d, w = d*(c - 8). Byte j of qs
 * holds weight j in its low nibble and weight j+16 in its high nibble.
 * Activations for vec_dot are q8_0.
 *
 * Quantizer (ggml's quantize_row_q4_0_ref): max = the value of largest
 * magnitude (the first one on ties), d = max / -8, c = min(15, trunc(x/d +
 * 8.5)) with x/d computed as x * (1/d) (0 when d is 0); d stored as fp16 of
 * the float d. The sign flip makes the extreme value map to code 0 (-8).
 *
 * vec_dot q4_0 . q8_0 - the accumulation order every ISA level reproduces:
 *   acc[0..15] = +0.0f
 *   for each block b, in order:
 *     sumi = sum_{j<32} (c_j - 8) * y.qs[j]                (int32, exact)
 *     t    = (float)sumi * (fp16(x.d) * fp16(y.d))  (scale product rounded,
 *            then the product with sumi)
 *     acc[b % 16] = acc[b % 16] + t
 *   for w = 8, 4, 2, 1: acc[i] = acc[i] + acc[i + w] for i < w
 *   *s = acc[0]
 * (kernels/legacy_common.h: lq_fold_add, lq_fold_finish.)
 * Separate float multiplies and adds, no FMA. Because sumi is exact, SIMD
 * code may form it in any order; the per-block terms t_b may be computed in
 * vector lanes (elementwise operations round identically), and lane b % 16
 * of a 16-lane accumulator takes block b's term, so 16 blocks are folded by
 * one vector add and no serial chain of adds bounds the speed. The tree's
 * order is fixed: every level must reproduce it exactly.
 */
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"

static void quantize_row_q4_0_ref(const float *x, void *vy, int64_t n)
{
    block_q4_0 *y = vy;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quarry_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const uint8_t lo = lq_truncate_code(xb[j] * id + 8.5f, 15);
            const uint8_t hi = lq_truncate_code(xb[j + QK4_0 / 2] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

static void dequantize_row_q4_0(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        float *yb = y + i * QK4_0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            yb[j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            yb[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void vec_dot_q4_0_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK4_0;
    float acc[LQ_FOLD_LANES] = {0.0f};
    for (int i = 0; i < nb; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0F) - 8) * (int32_t)y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * (int32_t)y[i].qs[j + QK4_0 / 2];
        }
        const float d = quarry_fp16_to_fp32(x[i].d) * quarry_fp16_to_fp32(y[i].d);
        lq_fold_add(acc, i, (float)sumi * d);
    }
    *s = lq_fold_finish(acc);
}

void quarry_kernels_q4_0_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_0];
    t->to_float = dequantize_row_q4_0;
    t->from_float_ref = quantize_row_q4_0_ref;
    t->from_float = quantize_row_q4_0_ref;
    t->vec_dot = vec_dot_q4_0_q8_0;
    t->vec_dot_type = QUARRY_TYPE_Q8_0;
}
