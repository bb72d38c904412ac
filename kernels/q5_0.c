/*
 * q5_0.c - scalar reference kernels for q5_0: blocks of 32 weights stored as
 * 5-bit codes c (0..31) with one fp16 scale d, w = d*(c - 16). The low four
 * bits are packed like q4_0 (byte j of qs: weight j low nibble, weight j+16
 * high nibble); the fifth bit of weight j is bit j of qh read as a
 * little-endian u32. Activations for vec_dot are q8_0.
 *
 * Quantizer (ggml's quantize_row_q5_0_ref): max = the value of largest
 * magnitude (the first one on ties), d = max / -16, c = min(31, trunc(x/d +
 * 16.5)) with x/d computed as x * (1/d) (0 when d is 0); d stored as fp16 of
 * the float d.
 *
 * vec_dot q5_0 . q8_0 - the accumulation order every ISA level reproduces:
 *   acc[0..15] = +0.0f
 *   for each block b, in order:
 *     sumi = sum_{j<32} (c_j - 16) * y.qs[j]               (int32, exact)
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

static void quantize_row_q5_0_ref(const float *x, void *vy, int64_t n)
{
    block_q5_0 *y = vy;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quarry_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t lo = lq_truncate_code(xb[j] * id + 16.5f, 31);
            const uint8_t hi = lq_truncate_code(xb[j + QK5_0 / 2] * id + 16.5f, 31);
            y[i].qs[j] = (uint8_t)((lo & 0x0F) | ((hi & 0x0F) << 4));
            qh |= (uint32_t)(lo >> 4) << j;
            qh |= (uint32_t)(hi >> 4) << (j + QK5_0 / 2);
        }
        lq_store_qh(y[i].qh, qh);
    }
}

static void dequantize_row_q5_0(const void *vx, float *y, int64_t n)
{
    const block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        const uint32_t qh = lq_load_qh(x[i].qh);
        float *yb = y + i * QK5_0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int c0 = (x[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int c1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + QK5_0 / 2)) & 1) << 4;
            yb[j] = (float)(c0 - 16) * d;
            yb[j + QK5_0 / 2] = (float)(c1 - 16) * d;
        }
    }
}

static void vec_dot_q5_0_q8_0(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK5_0;
    float acc[LQ_FOLD_LANES] = {0.0f};
    for (int i = 0; i < nb; i++) {
        const uint32_t qh = lq_load_qh(x[i].qh);
        int32_t sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int c0 = (x[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int c1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + QK5_0 / 2)) & 1) << 4;
            sumi += (c0 - 16) * (int32_t)y[i].qs[j];
            sumi += (c1 - 16) * (int32_t)y[i].qs[j + QK5_0 / 2];
        }
        const float d = quarry_fp16_to_fp32(x[i].d) * quarry_fp16_to_fp32(y[i].d);
        lq_fold_add(acc, i, (float)sumi * d);
    }
    *s = lq_fold_finish(acc);
}

void quarry_kernels_q5_0_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_0];
    t->to_float = dequantize_row_q5_0;
    t->from_float_ref = quantize_row_q5_0_ref;
    t->from_float = quantize_row_q5_0_ref;
    t->vec_dot = vec_dot_q5_0_q8_0;
    t->vec_dot_type = QUARRY_TYPE_Q8_0;
}
