/*
 * q6_k.c - scalar reference kernels for q6_K: 6-bit signed weights in
 * 256-weight super-blocks of 16 sub-blocks of 16, each sub-block with an
 * 8-bit signed scale, all scaled by the super-block's fp16 d:
 *     w = d*sc[j]*q,  q in -32..31.
 * Layout (block_q6_K), per half h of 128 weights (ql += 64, qh += 32):
 * weight 128*h + 32*s + l (s = 0..3, l = 0..31) has its low 4 bits in
 * ql[l + 32*(s&1)] (low nibble for s < 2, high for s >= 2) and its top
 * 2 bits in qh[l] at bit 2*s; stored with a bias of 32.
 *
 * Quantizer: ggml's quantize_row_q6_K_ref (make_qx_quants per sub-block,
 * 8-bit scales, requantization with the rounded scales).
 *
 * vec_dot against q8_K - the accumulation order every ISA level reproduces:
 *   for each super-block i, in order:
 *     isum = sum over sub-blocks j=0..15 of sc[j] * sum_{16 weights} q*q8   (int32, exact)
 *     d    = y.d * fp16(x.d)
 *     sumf = sumf + d*(float)isum
 *   with sumf starting at 0.0f; no FMA. (q is the signed value -32..31.)
 */
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kquant_common.h"

/* Signed 6-bit quant of weight 32*s + l (s = 0..3, l = 0..31) of the half
 * whose ql/qh start at the given pointers. */
static inline int q6_K_value(const uint8_t *ql, const uint8_t *qh, int s, int l)
{
    const int low = (ql[l + 32 * (s & 1)] >> (4 * (s >> 1))) & 0xF;
    const int high = (qh[l] >> (2 * s)) & 3;
    return (low | (high << 4)) - 32;
}

static void quantize_row_q6_K_ref(const float *x, void *vy, int64_t k)
{
    block_q6_K *y = vy;
    const int64_t nb = k / QK_K;

    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < nb; i++) {
        /* The sub-block scale of largest magnitude, with its sign. */
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = kq_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }

        if (max_abs_scale < KQ_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(block_q6_K));
            y[i].d = quarry_fp32_to_fp16(0.f);
            x += QK_K;
            continue;
        }

        const float iscale = -128.f / max_scale;
        y[i].d = quarry_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            y[i].scales[ib] = (int8_t)kq_min_int(127, kq_nearest_int(iscale * scales[ib]));

        /* Requantize with the scales as they will be decoded. */
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = quarry_fp16_to_fp32(y[i].d) * (float)y[i].scales[j];
            if (d == 0)
                continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = kq_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(kq_max_int(-32, kq_min_int(31, l)) + 32);
            }
        }

        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        x += QK_K;
    }
}

static void dequantize_row_q6_K(const void *vx, float *y, int64_t k)
{
    const block_q6_K *x = vx;
    const int64_t nb = k / QK_K;

    for (int64_t i = 0; i < nb; i++) {
        const float d = quarry_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < QK_K; half += 128) {
            for (int s = 0; s < 4; ++s)
                for (int l = 0; l < 32; ++l) /* sub-block 2s + l/16 of this half */
                    *y++ = d * (float)sc[2 * s + l / 16] * (float)q6_K_value(ql, qh, s, l);
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void vec_dot_q6_K_q8_K(int n, float *s, const void *vx, const void *vy)
{
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;

    float sumf = 0.0f;
    for (int i = 0; i < nb; ++i) {
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        const int8_t *sc = x[i].scales;

        int32_t isum = 0;
        for (int half = 0; half < QK_K / 128; ++half) {
            for (int s4 = 0; s4 < 4; ++s4) {
                for (int part = 0; part < 32; part += 16) {
                    int32_t sub = 0;
                    for (int l = part; l < part + 16; ++l)
                        sub += q8[l - part] * q6_K_value(ql, qh, s4, l);
                    isum += *sc++ * sub;
                    q8 += 16;
                }
            }
            ql += 64;
            qh += 32;
        }

        const float d = y[i].d * quarry_fp16_to_fp32(x[i].d);
        sumf += d * (float)isum;
    }
    *s = sumf;
}

void quarry_kernels_q6_K_scalar(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q6_K];
    t->to_float = dequantize_row_q6_K;
    t->from_float_ref = quantize_row_q6_K_ref;
    t->from_float = quantize_row_q6_K_ref;
    t->vec_dot = vec_dot_q6_K_q8_K;
    t->vec_dot_type = QUARRY_TYPE_Q8_K;
}
