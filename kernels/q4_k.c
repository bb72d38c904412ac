/*
 * q4_k.c - scalar reference kernels for q4_K: 4-bit weights in 256-weight
 * super-blocks of 8 sub-blocks of 32, each sub-block with a 6-bit scale and
 * a 6-bit min, scaled by the super-block's fp16 d and dmin:
 *     w = d*sc[j]*q - dmin*m[j],  q in 0..15.
 * Layout (block_q4_K): scales/mins packed in 12 bytes (kq_scale_min_k4 in
 * kquant_common.h); qs in four chunks of 32 bytes, chunk c holding sub-block
 * 2c in the low nibbles and sub-block 2c+1 in the high nibbles.
 *
 * Quantizer: ggml's quantize_row_q4_K_ref (make_qkx2_quants per sub-block
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

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

static void quantize_row_q4_K_ref(const float *x, void *vy, int64_t k)
{
    block_q4_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K];

    for (int64_t i = 0; i < nb; i++) {
        kq_quantize_superblock_k4(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);

        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; ++l)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
        x += QK_K;
    }
}

static void dequantize_row_q4_K(const void *vx, float *y, int64_t k)
{
    const block_q4_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = quarry_fp16_to_fp32(x[i].d);
        const float min = quarry_fp16_to_fp32(x[i].dmin);
        for (int is = 0; is < QK_K / 32; is += 2) {
            uint8_t sc, m;
            kq_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = min * (float)m;
            kq_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc;
            const float m2 = min * (float)m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

static void vec_dot_q4_K_q8_K(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;

    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;

        int32_t isum = 0;
        int32_t isum_m = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            uint8_t sc, m;
            kq_scale_min_k4(j, x[i].scales, &sc, &m);
            /* sub-block j: low nibbles of chunk j/2 if j is even, else high */
            const int shift = (j & 1) * 4;
            int32_t sub = 0;
            for (int l = 0; l < 32; ++l)
                sub += q8[l] * ((q4[l] >> shift) & 0xF);
            isum += sc * sub;
            isum_m += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
            q8 += 32;
            if (j & 1)
                q4 += 32;
        }

        const float d = y[i].d * quarry_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * quarry_fp16_to_fp32(x[i].dmin);
        sumf += d * (float)isum - dmin * (float)isum_m;
    }
    *s = sumf;
}

void quarry_kernels_q4_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_K];
    t->to_float = dequantize_row_q4_K;
    t->from_float_ref = quantize_row_q4_K_ref;
    t->from_float = quantize_row_q4_K_ref;
    t->vec_dot = vec_dot_q4_K_q8_K;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
