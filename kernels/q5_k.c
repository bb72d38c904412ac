/*
 * q5_k.c - scalar reference kernels for q5_K: 5-bit weights in 256-weight
 * super-blocks of 8 sub-blocks of 32, each sub-block with a 6-bit scale and
 * a 6-bit min, scaled by the super-block's fp16 d and dmin:
 *     w = d*sc[j]*q - dmin*m[j],  q in 0..31.
 * Layout (block_q5_K): scales/mins as in q4_K (kq_scale_min_k4); qs holds the
 * low 4 bits like q4_K (chunk c of 32 bytes: sub-block 2c low nibbles, 2c+1
 * high nibbles); qh[l] bit j is the fifth bit of weight 32*j + l.
 *
 * Quantizer: ggml's quantize_row_q5_K_ref (make_qkx2_quants per sub-block
 * with weights av_x + |x|, 6-bit scales and mins, requantization).
 *
 * vec_dot against q8_K - the accumulation order every ISA level reproduces:
 *   for each super-block i, in order:
 *     isum   = sum over sub-blocks j=0..7 of sc[j] * sum_{32 weights} q*q8   (int32, exact)
 *     isum_m = sum over j=0..7 of m[j] * (y.bsums[2j] + y.bsums[2j+1])       (int32, exact)
 *     d      = y.d * fp16(x.d)
 *     dmin   = y.d * fp16(x.dmin)
 *     sumf   = sumf + (d*(float)isum - dmin*(float)isum_m)
 *   with sumf starting at 0.0f; separate float multiplies, no FMA.
 */
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

static void quantize_row_q5_K_ref(const float *x, void *vy, int64_t k)
{
    block_q5_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K];

    for (int64_t i = 0; i < nb; i++) {
        kq_quantize_superblock_k4(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);

        uint8_t *qh = y[i].qh;
        uint8_t *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[n + j];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                int l2 = L[n + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
            ql += 32;
        }
        x += QK_K;
    }
}

static void dequantize_row_q5_K(const void *vx, float *y, int64_t k)
{
    const block_q5_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = quarry_fp16_to_fp32(x[i].d);
        const float min = quarry_fp16_to_fp32(x[i].dmin);
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < QK_K / 32; is += 2) {
            uint8_t sc, m;
            kq_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = min * (float)m;
            kq_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc;
            const float m2 = min * (float)m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

static void vec_dot_q5_K_q8_K(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;

    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;

        int32_t isum = 0;
        int32_t isum_m = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            uint8_t sc, m;
            kq_scale_min_k4(j, x[i].scales, &sc, &m);
            const int shift = (j & 1) * 4;
            int32_t sub = 0;
            for (int l = 0; l < 32; ++l) {
                const int q = ((ql[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4);
                sub += q8[l] * q;
            }
            isum += sc * sub;
            isum_m += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
            q8 += 32;
            if (j & 1)
                ql += 32;
        }

        const float d = y[i].d * quarry_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * quarry_fp16_to_fp32(x[i].dmin);
        sumf += d * (float)isum - dmin * (float)isum_m;
    }
    *s = sumf;
}

void quarry_kernels_q5_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_K];
    t->to_float = dequantize_row_q5_K;
    t->from_float_ref = quantize_row_q5_K_ref;
    t->from_float = quantize_row_q5_K_ref;
    t->vec_dot = vec_dot_q5_K_q8_K;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
