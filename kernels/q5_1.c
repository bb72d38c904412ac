/*
 * q5_1.c - scalar reference kernels for q5_1: blocks of 32 weights stored as
 * 5-bit codes c (0..31) with an fp16 scale d and an fp16 minimum m,
 * w = d*c + m. Low four bits packed like q4_1, the fifth bit of weight j is
 * bit j of qh (little-endian u32). Activations for vec_dot are q8_1.
 *
 * Quantizer (ggml's quantize_row_q5_1_ref): min and max over the block,
 * d = (max - min) / 31, c = trunc((x - min)/d + 0.5) with /d computed as
 * * (1/d) (0 when d is 0); d and min stored as fp16 of the float values.
 *
 * vec_dot q5_1 . q8_1 - the accumulation order every ISA level reproduces:
 *   acc[0..15] = +0.0f
 *   for each block b, in order:
 *     sumi = sum_{j<32} c_j * y.qs[j]                       (int32, exact)
 *     t    = (float)sumi * (fp16(x.d) * fp16(y.d))          (two roundings)
 *     t    = t + fp16(x.m) * fp16(y.s)                      (product, add)
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
#include <float.h>
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/legacy_common.h"

static void quantize_row_q5_1_ref(const float *x, void *vy, int64_t n)
{
    block_q5_1 *y = vy;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_1;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (xb[j] < min)
                min = xb[j];
            if (xb[j] > max)
                max = xb[j];
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quarry_fp32_to_fp16(d);
        y[i].m = quarry_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t lo = lq_truncate_code((xb[j] - min) * id + 0.5f, 31);
            const uint8_t hi = lq_truncate_code((xb[j + QK5_1 / 2] - min) * id + 0.5f, 31);
            y[i].qs[j] = (uint8_t)((lo & 0x0F) | ((hi & 0x0F) << 4));
            qh |= (uint32_t)(lo >> 4) << j;
            qh |= (uint32_t)(hi >> 4) << (j + QK5_1 / 2);
        }
        lq_store_qh(y[i].qh, qh);
    }
}

static void dequantize_row_q5_1(const void *vx, float *y, int64_t n)
{
    const block_q5_1 *x = vx;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        const float m = quarry_fp16_to_fp32(x[i].m);
        const uint32_t qh = lq_load_qh(x[i].qh);
        float *yb = y + i * QK5_1;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int c0 = (x[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int c1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + QK5_1 / 2)) & 1) << 4;
            yb[j] = (float)c0 * d + m;
            yb[j + QK5_1 / 2] = (float)c1 * d + m;
        }
    }
}

static void vec_dot_q5_1_q8_1(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    const int nb = n / QK5_1;
    float acc[LQ_FOLD_LANES] = {0.0f};
    for (int i = 0; i < nb; i++) {
        const uint32_t qh = lq_load_qh(x[i].qh);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int c0 = (x[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int c1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + QK5_1 / 2)) & 1) << 4;
            sumi += c0 * (int32_t)y[i].qs[j];
            sumi += c1 * (int32_t)y[i].qs[j + QK5_1 / 2];
        }
        const float d = quarry_fp16_to_fp32(x[i].d) * quarry_fp16_to_fp32(y[i].d);
        float t = (float)sumi * d;
        t = t + quarry_fp16_to_fp32(x[i].m) * quarry_fp16_to_fp32(y[i].s);
        lq_fold_add(acc, i, t);
    }
    *s = lq_fold_finish(acc);
}

void quarry_kernels_q5_1_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_1];
    t->to_float = dequantize_row_q5_1;
    t->from_float_ref = quantize_row_q5_1_ref;
    t->from_float = quantize_row_q5_1_ref;
    t->vec_dot = vec_dot_q5_1_q8_1;
    t->vec_dot_type = QUARRY_TYPE_Q8_1;
}
