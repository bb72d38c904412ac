/*
 * q3_k.c - scalar reference kernels for q3_K: 3-bit signed weights in
 * 256-weight super-blocks of 16 sub-blocks of 16, each sub-block with a 6-bit
 * signed scale, all scaled by the super-block's fp16 d:
 *     w = d*sc[j]*q,  q in -4..3, sc[j] in -32..31.
 * Layout (block_q3_K): qs holds the low 2 bits of q+4 like q2_K (byte l of
 * half h carries weights 128*h + 32*s + l at bits 2*s); hmask[l % 32] bit
 * l / 32 is the third bit of weight l (set: q+4 >= 4); the 12 scale bytes are
 * decoded by kq_q3_K_scales (kquant_common.h).
 *
 * Quantizer: ggml's quantize_row_q3_K_ref (make_q3_quants per sub-block,
 * 6-bit scales, requantization with the rounded scales).
 *
 * vec_dot against q8_K - the accumulation order every ISA level reproduces:
 *   for each super-block i, in order:
 *     isum = sum over sub-blocks j=0..15 of sc[j] * sum_{16 weights} q*q8   (int32, exact)
 *     d    = y.d * fp16(x.d)
 *     sumf = sumf + d*(float)isum
 *   with sumf starting at 0.0f; no FMA. (q is the signed value -4..3.)
 */
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

static void quantize_row_q3_K_ref(const float *x, void *vy, int64_t k)
{
    block_q3_K *y = vy;
    const int64_t nb = k / QK_K;

    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        /* The sub-block scale of largest magnitude, with its sign. */
        float max_scale = 0;
        float amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = kq_make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }

        memset(y[i].scales, 0, 12);
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                /* ggml stores nearest_int's result in an int8_t first */
                int8_t l = (int8_t)kq_nearest_int(iscale * scales[j]);
                l = (int8_t)(kq_max_int(-32, kq_min_int(31, l)) + 32);
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l = (int8_t)(l >> 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y[i].d = quarry_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = quarry_fp32_to_fp16(0.f);
        }

        /* Requantize with the scales as they will be decoded. */
        int8_t sc[16];
        kq_q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = quarry_fp16_to_fp32(y[i].d) * (float)sc[j];
            if (d == 0)
                continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = kq_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(kq_max_int(-4, kq_min_int(3, l)) + 4);
            }
        }

        /* Third bits: weights 0..31 go to bit 0 of hmask[0..31], 32..63 to
         * bit 1, and so on. */
        memset(y[i].hmask, 0, QK_K / 8);
        for (int j = 0; j < QK_K; ++j) {
            if (L[j] > 3) {
                y[i].hmask[j % (QK_K / 8)] |= (uint8_t)(1u << (j / (QK_K / 8)));
                L[j] = (int8_t)(L[j] - 4);
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        x += QK_K;
    }
}

static void dequantize_row_q3_K(const void *vx, float *y, int64_t k)
{
    const block_q3_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        const float d_all = quarry_fp16_to_fp32(x[i].d);
        int8_t sc[16];
        kq_q3_K_scales(x[i].scales, sc);

        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 32; part += 16) {
                    const float dl = d_all * (float)sc[is++];
                    for (int l = part; l < part + 16; ++l) {
                        const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

static void vec_dot_q3_K_q8_K(int n, float *s, const void *vx, const void *vy)
{
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;

    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q3 = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        int8_t sc[16];
        kq_q3_K_scales(x[i].scales, sc);

        int32_t isum = 0;
        int is = 0;
        uint8_t m = 1;
        for (int half = 0; half < QK_K / 128; ++half) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 32; part += 16) {
                    int32_t sub = 0;
                    for (int l = part; l < part + 16; ++l) {
                        const int q = ((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        sub += q8[l - part] * q;
                    }
                    isum += sc[is++] * sub;
                    q8 += 16;
                }
                m = (uint8_t)(m << 1);
            }
            q3 += 32;
        }

        const float d = y[i].d * quarry_fp16_to_fp32(x[i].d);
        sumf += d * (float)isum;
    }
    *s = sumf;
}

void quarry_kernels_q3_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q3_K];
    t->to_float = dequantize_row_q3_K;
    t->from_float_ref = quantize_row_q3_K_ref;
    t->from_float = quantize_row_q3_K_ref;
    t->vec_dot = vec_dot_q3_K_q8_K;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
