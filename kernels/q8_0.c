/*
 * q8_0.c - scalar reference kernels for q8_0: blocks of 32 weights stored as
 * int8 q with one fp16 scale d, w = d*q. q8_0 is also the activation type of
 * q4_0, q5_0 and q8_0 weights, so its from_float quantizes activations.
 *
 * Quantizer (ggml's quantize_row_q8_0_ref): d = amax/127, q = roundf(x/d)
 * computed as x * (1/d) (0 when d is 0), d stored as fp16 of the float d.
 *
 * vec_dot q8_0 . q8_0 - the accumulation order every ISA level reproduces:
 *   acc[0..15] = +0.0f
 *   for each block b, in order:
 *     sumi = sum_{j<32} x.qs[j] * y.qs[j]                  (int32, exact)
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

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"

static void quantize_row_q8_0_ref(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++)
        lq_quantize_block_q8_0(x + i * QK8_0, &y[i]);
}

static void dequantize_row_q8_0(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

static void vec_dot_q8_0_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    float acc[LQ_FOLD_LANES] = {0.0f};
    for (int i = 0; i < nb; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK8_0; j++)
            sumi += (int32_t)x[i].qs[j] * (int32_t)y[i].qs[j];
        const float d = quarry_fp16_to_fp32(x[i].d) * quarry_fp16_to_fp32(y[i].d);
        lq_fold_add(acc, i, (float)sumi * d);
    }
    *s = lq_fold_finish(acc);
}

void quarry_kernels_q8_0_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q8_0];
    t->to_float = dequantize_row_q8_0;
    t->from_float_ref = quantize_row_q8_0_ref;
    t->from_float = quantize_row_q8_0_ref;
    t->vec_dot = vec_dot_q8_0_q8_0;
    t->vec_dot_type = QUARRY_TYPE_Q8_0;
}
