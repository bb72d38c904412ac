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

#include <stdint.h>
#include <string.h>

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

#endif
