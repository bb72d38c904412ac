/*
 * q2_k.c - scalar reference kernels for q2_K: 2-bit weights in 256-weight
 * super-blocks of 16 sub-blocks of 16, each sub-block with a 4-bit scale and
 * a 4-bit min, both scaled by the super-block's fp16 d and dmin:
 *     w = d*sc[j]*q - dmin*m[j],  q in 0..3.
 * Layout (block_q2_K): scales[j] = sc[j] | m[j] << 4; qs holds weights in two
 * halves of 128: byte l of half h (qs[32*h + l]) carries weights
 * 128*h + 32*s + l at bits 2*s (s = 0..3).
 *
 * Quantizer: ggml's quantize_row_q2_K_ref (make_qkx2_quants per sub-block,
 * then 4-bit scales and mins, then requantization with the rounded scales).
 *
 * vec_dot against q8_K - the accumulation order every ISA level reproduces:
 *   for each super-block i, in order:
 *     isum   = sum over sub-blocks j=0..15 of sc[j] * sum_{16 weights} q*q8   (int32, exact)
 *     isum_m = sum over j=0..15 of m[j] * y.bsums[j]                           (int32, exact)
 *     d      = y.d * fp16(x.d)
 *     dmin   = y.d * fp16(x.dmin)
 *     sumf   = sumf + (d*(float)isum - dmin*(float)isum_m)
 *   with sumf starting at 0.0f; separate float multiplies, no FMA. Since the
 *   integer sums are exact, SIMD code may form them in any order.
 */
#include <math.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

static void quantize_row_q2_K_ref(const float *x, void *vy, int64_t k)
{
    block_q2_K *y = vy;
    const int64_t nb = k / QK_K;
    const float q4scale = 15.f;

    uint8_t L[QK_K];
    uint8_t Laux[16];
    float weights[16];
    float mins[QK_K / 16];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        float max_scale = 0; /* the min is subtracted, so scales are >= 0 */
        float max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = kq_make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j],
                                            Laux, -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }

        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j)
                y[i].scales[j] = (uint8_t)kq_nearest_int(iscale * scales[j]);
            y[i].d = quarry_fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j)
                y[i].scales[j] = 0;
            y[i].d = quarry_fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) {
                const int l = kq_nearest_int(iscale * mins[j]);
                y[i].scales[j] |= (uint8_t)((unsigned)l << 4);
            }
            y[i].dmin = quarry_fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = quarry_fp32_to_fp16(0.f);
        }

        /* Requantize with the scales as they will be decoded. */
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = quarry_fp16_to_fp32(y[i].d) * (float)(y[i].scales[j] & 0xF);
            if (d == 0)
                continue;
            const float dm = quarry_fp16_to_fp32(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = kq_nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)kq_max_int(0, kq_min_int(3, l));
            }
        }

        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        x += QK_K;
    }
}

static void dequantize_row_q2_K(const void *vx, float *y, int64_t k)
{
    const block_q2_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        const float min = quarry_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                /* two sub-blocks of 16 per shift: bytes 0..15, then 16..31 */
                for (int part = 0; part < 32; part += 16) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0xF);
                    const float ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * (float)((q[part + l] >> shift) & 3) - ml;
                }
            }
            q += 32;
        }
    }
}

static void vec_dot_q2_K_q8_K(int n, float *s, const void *vx, const void *vy)
{
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;

    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const uint8_t *sc = x[i].scales;

        int32_t isum_m = 0;
        for (int j = 0; j < QK_K / 16; ++j)
            isum_m += (int32_t)y[i].bsums[j] * (sc[j] >> 4);

        int32_t isum = 0;
        int is = 0;
        for (int half = 0; half < QK_K / 128; ++half) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 32; part += 16) {
                    int32_t sub = 0;
                    for (int l = 0; l < 16; ++l)
                        sub += q8[l] * ((q2[part + l] >> shift) & 3);
                    isum += (sc[is++] & 0xF) * sub;
                    q8 += 16;
                }
            }
            q2 += 32;
        }

        const float d = y[i].d * quarry_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * quarry_fp16_to_fp32(x[i].dmin);
        sumf += d * (float)isum - dmin * (float)isum_m;
    }
    *s = sumf;
}

void quarry_kernels_q2_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q2_K];
    t->to_float = dequantize_row_q2_K;
    t->from_float_ref = quantize_row_q2_K_ref;
    t->from_float = quantize_row_q2_K_ref;
    t->vec_dot = vec_dot_q2_K_q8_K;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
