/*
 * kquant_common.h - helpers shared by the K-quant kernels (q2_K .. q6_K,
 * kernels/q*_k*.c): ggml's rounding trick, unpacking of the packed 6-bit
 * scales, and the scale-search routines the reference quantizers use.
 *
 * The search routines (kquant_common.c) reproduce ggml's make_qx_quants,
 * make_q3_quants and make_qkx2_quants operation for operation, because every
 * float rounding inside them decides which bytes the quantizer writes and the
 * bytes must equal ggml's. They are only called the way ggml's *_ref
 * quantizers call them (no importance matrix), so the variants that take one
 * are left out.
 */
#ifndef QUARRY_KQUANT_COMMON_H
#define QUARRY_KQUANT_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/types.h"

/* Groups whose largest |x| is below this are treated as all zero (ggml's
 * GROUP_MAX_EPS). */
#define KQ_GROUP_MAX_EPS 1e-15f

static inline int kq_min_int(int a, int b) { return a < b ? a : b; }
static inline int kq_max_int(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even, for |fval| < 2^22: adding 1.5*2^23 moves
 * the integer part into the low mantissa bits. ggml's nearest_int; outside
 * that range the result is meaningless but deterministic, exactly as in ggml
 * (the callers clamp it). */
static inline int kq_nearest_int(float fval)
{
    const float val = fval + 12582912.f;
    int32_t bits;
    memcpy(&bits, &val, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* q4_K / q5_K: scale and min of sub-block j (0..7) from the 12 packed bytes.
 * Bytes 0..3 hold the low 6 bits of scales 0..3, bytes 4..7 those of mins
 * 0..3; bytes 8..11 hold the low 4 bits of scale (low nibble) and min (high
 * nibble) 4..7, whose top 2 bits sit in the top bits of bytes 0..3 (scales)
 * and 4..7 (mins). */
static inline void kq_scale_min_k4(int j, const uint8_t *q, uint8_t *scale, uint8_t *min)
{
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* kq_scale_min_k4 for all 8 sub-blocks at once, as 32-bit words of bytes:
 * out[0..1] = scales 0..7, out[2..3] = mins 0..7 (byte j of the 8 bytes is
 * sub-block j). */
static inline void kq_scales_mins_k4(const uint8_t *packed, uint32_t out[4])
{
    uint32_t a[3];
    memcpy(a, packed, sizeof a);
    out[0] = a[0] & 0x3f3f3f3fu;
    out[1] = (a[2] & 0x0f0f0f0fu) | (((a[0] >> 6) & 0x03030303u) << 4);
    out[2] = a[1] & 0x3f3f3f3fu;
    out[3] = ((a[2] >> 4) & 0x0f0f0f0fu) | (((a[1] >> 6) & 0x03030303u) << 4);
}

/* Inverse of kq_scale_min_k4 for sub-block j (ls, lm < 64), as ggml's q4_K /
 * q5_K quantizers do it: must be called for j = 0..7 in order, because for
 * j >= 4 the top bits are ORed into bytes written at j-4. */
static inline void kq_pack_scale_min_k4(uint8_t *q, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* q3_K: the 16 signed sub-block scales (-32..31) from the 12 packed bytes.
 * Scale j has its low 4 bits in byte j%8 (low nibble for j < 8, high nibble
 * otherwise) and its top 2 bits in byte 8 + j%4 at bit 2*(j/4); stored with
 * a bias of 32. */
static inline void kq_q3_K_scales(const uint8_t *packed, int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
        const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((low | (high << 4)) - 32);
    }
}

/* ggml's make_qx_quants with rmse_type 1 and no importance weights: symmetric
 * quantization of x[0..n) to L[i] in [0, 2*nmax) (stored with a bias of
 * nmax), weighting each value by x^2 and trying 18 scales around nmax/max.
 * Returns the scale (0 for an all-zero group). */
float kq_make_qx_quants(int n, int nmax, const float *x, int8_t *L);

/* ggml's make_q3_quants with do_rmse: symmetric quantization to [0, 2*nmax)
 * (bias nmax), refined by up to 5 passes of coordinate descent on the
 * x^2-weighted error. Returns the scale. */
float kq_make_q3_quants(int n, int nmax, const float *x, int8_t *L);

/* ggml's make_qkx2_quants: asymmetric quantization x ~ scale*L - the_min with
 * L in [0, nmax], searching nstep+1 scales (rmin + rdelta*is + nmax)/(max-min)
 * and fitting scale and min by weighted least squares; the error is weighted
 * |diff| (use_mad) or diff^2. Laux is n bytes of scratch. Returns the scale;
 * *the_min receives the (non-negative) min. */
float kq_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                          float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                          int use_mad);

/* q4_K / q5_K: one super-block of 256 values x as ggml's quantize_row_q4_K_ref
 * and quantize_row_q5_K_ref do it, up to the packing of the quants: per
 * sub-block of 32 a scale and min by make_qkx2_quants (weights av_x + |x|,
 * quants 0..nmax, the search parameters rmin and nstep those ggml passes:
 * -1, 20 for q4_K and -0.5, 15 for q5_K), the 6-bit scales and mins packed
 * into scales[12] (kq_pack_scale_min_k4) under the fp16 super-block scales
 * *d and *dmin, and the quants requantized with the decoded scales into
 * L[0..255] (0..nmax). */
static inline void kq_quantize_superblock_k4(const float *x, int nmax, float rmin, int nstep, uint8_t scales[12],
                                             uint16_t *d, uint16_t *dmin, uint8_t L[QK_K])
{
    uint8_t Laux[32];
    float weights[32];
    float mins[QK_K / 32];
    float sub_scales[QK_K / 32];
    float max_scale = 0; /* the min is subtracted, so scales are >= 0 */
    float max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        sub_scales[j] = kq_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                            0.1f, nstep, 0);
        if (sub_scales[j] > max_scale)
            max_scale = sub_scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }

    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
        /* ggml stores nearest_int's result in a uint8_t, then clamps */
        uint8_t ls = (uint8_t)kq_nearest_int(inv_scale * sub_scales[j]);
        uint8_t lm = (uint8_t)kq_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        kq_pack_scale_min_k4(scales, j, ls, lm);
    }
    *d = quarry_fp32_to_fp16(max_scale / 63.f);
    *dmin = quarry_fp32_to_fp16(max_min / 63.f);

    /* Requantize with the scales as they will be decoded. */
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        kq_scale_min_k4(j, scales, &sc, &m);
        const float dl = quarry_fp16_to_fp32(*d) * (float)sc;
        if (dl == 0)
            continue;
        const float dm = quarry_fp16_to_fp32(*dmin) * (float)m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = kq_nearest_int((x[32 * j + ii] + dm) / dl);
            L[32 * j + ii] = (uint8_t)kq_max_int(0, kq_min_int(nmax, l));
        }
    }
}

#endif
