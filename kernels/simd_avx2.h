/*
 * simd_avx2.h - AVX2 (+FMA, F16C) building blocks shared by the vector
 * kernels: lane reductions, the float folds that keep SIMD dot products
 * bit-identical to the scalar references (in order for the K-quants,
 * 16-lane for the legacy quants), fp16 scale gathers,
 * nibble and bit unpacking, the q8_0/q8_1 block quantizer, and the loops and
 * folds of the legacy-quant and K-quant dot products. Every kernel file keeps
 * its own block decoding and documents its accumulation order; what it hands
 * to the loops here is how to get one block's (or super-block's) integer
 * sums.
 *
 * Only for files compiled with -mavx2 -mfma -mf16c: the kernels/..._avx2.c
 * and kernels/..._avx512.c files (the latter get those flags too).
 * Everything is static inline; the row loops are always inlined, so that the
 * per-block callbacks they are given (constant function pointers) become
 * direct calls, inlined or not as the compiler sees fit, and the kernels
 * compile as if the loop were written out in each file. Helpers are written
 * out without loops over arrays of vectors where the originals were, so
 * that nothing depends on the compiler unrolling them.
 */
#ifndef QUARRY_SIMD_AVX2_H
#define QUARRY_SIMD_AVX2_H

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels/simd_avx2.h needs -mavx2 -mfma -mf16c: include it only from *_avx2.c and *_avx512.c"
#endif

#include <float.h>
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kquant_common.h"
#include "kernels/legacy_common.h"
#include "kernels/types.h"

#define SIMD_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- unaligned scalar loads ------------------------------------------------ */

static inline uint16_t simd_load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t simd_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- reductions ------------------------------------------------------------ */

/* lane k of the result = sum of the 8 int32 lanes of v_k */
static inline __m256i avx2_sum_lanes_8x8(__m256i v0, __m256i v1, __m256i v2, __m256i v3, __m256i v4,
                                         __m256i v5, __m256i v6, __m256i v7)
{
    /* pairs: per 128-bit half [a0+a2, b0+b2, a1+a3, b1+b3] */
    const __m256i t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
    const __m256i t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
    const __m256i t45 = _mm256_add_epi32(_mm256_unpacklo_epi32(v4, v5), _mm256_unpackhi_epi32(v4, v5));
    const __m256i t67 = _mm256_add_epi32(_mm256_unpacklo_epi32(v6, v7), _mm256_unpackhi_epi32(v6, v7));
    /* quads: per 128-bit half [s0, s1, s2, s3] (half-sums of each vector) */
    const __m256i q0 = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
    const __m256i q1 = _mm256_add_epi32(_mm256_unpacklo_epi64(t45, t67), _mm256_unpackhi_epi64(t45, t67));
    /* add the two halves of each vector */
    return _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20),
                            _mm256_permute2x128_si256(q0, q1, 0x31));
}

/* sum of the 8 int32 lanes of v */
static inline int32_t avx2_sum_lanes_8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* the largest of the 8 lanes of v (max_ps semantics: NaN lanes of v lose to
 * the value compared with them) */
static inline float avx2_max_lanes(__m256 v)
{
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* Adds the 8 floats of a to the double accumulators (4 lanes each). */
static inline void avx2_widen_into(__m256 a, __m256d *lo, __m256d *hi)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
}

/* lo + hi, then the sum of the 4 lanes: (l0+h0 + l2+h2) + (l1+h1 + l3+h3) */
static inline double avx2_sum_widened(__m256d lo, __m256d hi)
{
    const __m256d t = _mm256_add_pd(lo, hi);
    const __m128d t2 = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t2, _mm_unpackhi_pd(t2, t2)));
}

/* ---- fp16 scales of 8 blocks ----------------------------------------------- */

/* 8 fp16 values, the k-th at p + k*stride, as floats */
static inline __m256 avx2_fp16_8_strided(const uint8_t *p, size_t stride)
{
    __m128i h = _mm_cvtsi32_si128(simd_load_u16(p));
    h = _mm_insert_epi16(h, simd_load_u16(p + 1 * stride), 1);
    h = _mm_insert_epi16(h, simd_load_u16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, simd_load_u16(p + 3 * stride), 3);
    h = _mm_insert_epi16(h, simd_load_u16(p + 4 * stride), 4);
    h = _mm_insert_epi16(h, simd_load_u16(p + 5 * stride), 5);
    h = _mm_insert_epi16(h, simd_load_u16(p + 6 * stride), 6);
    h = _mm_insert_epi16(h, simd_load_u16(p + 7 * stride), 7);
    return _mm256_cvtph_ps(h);
}

/* 4 dwords, the k-th at p + k*stride */
static inline __m128i avx2_dwords_4(const uint8_t *p, size_t stride)
{
    __m128i v = _mm_cvtsi32_si128((int)simd_load_u32(p));
    v = _mm_insert_epi32(v, (int)simd_load_u32(p + stride), 1);
    v = _mm_insert_epi32(v, (int)simd_load_u32(p + 2 * stride), 2);
    return _mm_insert_epi32(v, (int)simd_load_u32(p + 3 * stride), 3);
}

/* The two fp16 fields at the start of 8 blocks, as floats: first[k] and
 * second[k] for block k (d and m of q4_1/q5_1, d and s of q8_1). */
struct fp16_pairs {
    __m256 first, second;
};

/* the pairs of 8 blocks starting at p, `stride` bytes apart */
static inline struct fp16_pairs avx2_fp16_pairs_8(const uint8_t *p, size_t stride)
{
    const __m256i pairs = _mm256_inserti128_si256(_mm256_castsi128_si256(avx2_dwords_4(p, stride)),
                                                  avx2_dwords_4(p + 4 * stride, stride), 1);
    const __m256i first = _mm256_and_si256(pairs, _mm256_set1_epi32(0xFFFF));
    const __m256i second = _mm256_srli_epi32(pairs, 16);
    /* per 128-bit half [f0..f3 s0..s3 | f4..f7 s4..s7] -> [f0..f7 | s0..s7] */
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(first, second),
                                                   _MM_SHUFFLE(3, 1, 2, 0));
    return (struct fp16_pairs){_mm256_cvtph_ps(_mm256_castsi256_si128(words)),
                               _mm256_cvtph_ps(_mm256_extracti128_si256(words, 1))};
}

/* ---- legacy quants: codes and fifth bits ----------------------------------- */

/* The 32 4-bit codes of a legacy block in weight order: the low nibbles of
 * the 16 bytes qs are weights 0..15, the high nibbles 16..31. */
static inline __m256i avx2_nibbles_32(const uint8_t *qs)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                            _mm256_set1_epi8(0x0F));
}

/* 0xFF in byte j where bit j of the 32 bits at qh (q5_0/q5_1's fifth bits,
 * little-endian) is set, 0 elsewhere: each byte of qh spread over 8 bytes by a
 * shuffle, then tested against its bit. */
static inline __m256i avx2_bits_to_bytes(const uint8_t *qh)
{
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)simd_load_u32(qh)),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                           0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

/* 32 signed codes times d, stored to y[0..31]: lo holds codes 0..15, hi
 * 16..31 (q4_0, q5_0 dequantization: w = d * code) */
static inline void avx2_store_scaled_i8x32(__m128i lo, __m128i hi, __m256 d, float *y)
{
    _mm256_storeu_ps(y + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(lo, lo))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(hi, hi))), d));
}

/* 32 int8 codes times d, stored to y[0..31] (q8_0, q8_1 dequantization) */
static inline void avx2_store_scaled_q8_32(const int8_t *qs, __m256 d, float *y)
{
    for (int k = 0; k < 4; k++) {
        const __m128i q = _mm_loadl_epi64((const __m128i *)(qs + 8 * k));
        _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    }
}

/* the low 8 bytes of c (codes, unsigned) as floats */
static inline __m256 avx2_codes_8(__m128i c)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
}

/* 32 unsigned codes c as c*d + m, stored to y[0..31] (q4_1, q5_1
 * dequantization) */
static inline void avx2_store_affine_u8x32(__m256i c, __m256 d, __m256 m, float *y)
{
    const __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
    _mm256_storeu_ps(y + 0, _mm256_add_ps(_mm256_mul_ps(avx2_codes_8(lo), d), m));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(avx2_codes_8(_mm_unpackhi_epi64(lo, lo)), d), m));
    _mm256_storeu_ps(y + 16, _mm256_add_ps(_mm256_mul_ps(avx2_codes_8(hi), d), m));
    _mm256_storeu_ps(y + 24, _mm256_add_ps(_mm256_mul_ps(avx2_codes_8(_mm_unpackhi_epi64(hi, hi)), d), m));
}

/* ---- legacy quants: the row dot product ------------------------------------ */
/*
 * Every legacy block starts with its fp16 d (q4_1/q5_1: then m; q8_1: then
 * s). The dot products take 16 blocks at a time: block_dot gives a block's
 * integer sum as 8 int32 partial sums, the sums of blocks 0-7 and 8-15 are
 * gathered into two vectors by transposing reductions, the per-block float
 * terms are formed in vector lanes, and the two vectors are added into the
 * two accumulators (lanes 0-7 and 8-15 of the 16-lane fold that the scalar
 * references define, kernels/legacy_common.h), so block b lands in lane
 * b % 16 and 16 blocks cost one add per accumulator. The terms are those of
 * the scalar references (kernels/q4_0.c, kernels/q4_1.c):
 *   without min:  (float)sumi * (fp16(x.d) * fp16(y.d))
 *   with min:     (float)sumi * (fp16(x.d) * fp16(y.d)) + fp16(x.m) * fp16(y.s)
 * A row's last, partial group goes through the same lanes: 8 blocks as a
 * vector if there are that many, the rest term by term into a zeroed
 * array, and the lanes without a block add +0.0f, which changes nothing
 * (legacy_common.h). Finally the pairwise tree: lo + hi, then halves, pairs,
 * and lane 0 + lane 1.
 */

/* sum_j x_j * y_j of one block pair as 8 int32 partial sums (exact) */
typedef __m256i (*legacy_block_dot_fn)(const void *x, const void *y);
/* d of 8 consecutive blocks as floats */
typedef __m256 (*legacy_scales_8_fn)(const void *blocks);
/* (d, m) or (d, s) of 8 consecutive blocks as floats */
typedef struct fp16_pairs (*legacy_pairs_8_fn)(const void *blocks);

/* d of 8 q8_0 blocks (the activation blocks of q4_0, q5_0, q8_0) */
static inline __m256 avx2_q8_0_scales_8(const void *y)
{
    return avx2_fp16_8_strided(y, sizeof(block_q8_0));
}

/* (d, s) of 8 q8_1 blocks (the activation blocks of q4_1, q5_1) */
static inline struct fp16_pairs avx2_q8_1_scales_8(const void *y)
{
    return avx2_fp16_pairs_8(y, sizeof(block_q8_1));
}

/* The integer sums of blocks 0..7 (x_bytes / y_bytes apart), lane k = block k. */
SIMD_ALWAYS_INLINE __m256i legacy_block_sums_8(const uint8_t *x, size_t x_bytes, const uint8_t *y,
                                               size_t y_bytes, legacy_block_dot_fn block_dot)
{
    return avx2_sum_lanes_8x8(
        block_dot(x, y), block_dot(x + 1 * x_bytes, y + 1 * y_bytes),
        block_dot(x + 2 * x_bytes, y + 2 * y_bytes), block_dot(x + 3 * x_bytes, y + 3 * y_bytes),
        block_dot(x + 4 * x_bytes, y + 4 * y_bytes), block_dot(x + 5 * x_bytes, y + 5 * y_bytes),
        block_dot(x + 6 * x_bytes, y + 6 * y_bytes), block_dot(x + 7 * x_bytes, y + 7 * y_bytes));
}

/* The terms of blocks 0..7 without min: (float)sumi_k * (dx_k * dy_k) */
SIMD_ALWAYS_INLINE __m256 legacy_terms_8(const uint8_t *x, size_t x_bytes, const uint8_t *y, size_t y_bytes,
                                         legacy_block_dot_fn block_dot, legacy_scales_8_fn x_scales,
                                         legacy_scales_8_fn y_scales)
{
    const __m256i sumi = legacy_block_sums_8(x, x_bytes, y, y_bytes, block_dot);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(x_scales(x), y_scales(y)));
}

/* The terms of blocks 0..7 with min: (float)sumi_k * (dx_k * dy_k) + mx_k * sy_k */
SIMD_ALWAYS_INLINE __m256 legacy_terms_min_8(const uint8_t *x, size_t x_bytes, const uint8_t *y,
                                             size_t y_bytes, legacy_block_dot_fn block_dot,
                                             legacy_pairs_8_fn x_scales, legacy_pairs_8_fn y_scales)
{
    const __m256i sumi = legacy_block_sums_8(x, x_bytes, y, y_bytes, block_dot);
    const struct fp16_pairs dm = x_scales(x), ds = y_scales(y);
    const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dm.first, ds.first));
    return _mm256_add_ps(t, _mm256_mul_ps(dm.second, ds.second));
}

/* One block's term, computed as the scalar reference does (with_min: plus
 * fp16 field 2 of x times that of y). */
SIMD_ALWAYS_INLINE float legacy_term_1(const uint8_t *x, const uint8_t *y, legacy_block_dot_fn block_dot,
                                       bool with_min)
{
    const int32_t sumi = avx2_sum_lanes_8(block_dot(x, y));
    const float d = _cvtsh_ss(simd_load_u16(x)) * _cvtsh_ss(simd_load_u16(y));
    float t = (float)sumi * d;
    if (with_min)
        t = t + _cvtsh_ss(simd_load_u16(x + 2)) * _cvtsh_ss(simd_load_u16(y + 2));
    return t;
}

/* The last left (1..15) blocks' terms into lanes 0..left-1 of *lo, *hi
 * (+0.0f in the lanes after them): 8 as a vector when there are that many
 * (terms8 != NULL then holds their terms), the rest one by one. */
SIMD_ALWAYS_INLINE void legacy_tail_terms(const uint8_t *x, size_t x_bytes, const uint8_t *y, size_t y_bytes,
                                          int left, legacy_block_dot_fn block_dot, bool with_min,
                                          const __m256 *terms8, __m256 *lo, __m256 *hi)
{
    _Alignas(32) float t[LQ_FOLD_LANES] = {0.0f};
    const int first = terms8 ? 8 : 0;
    for (int k = first; k < left; k++)
        t[k] = legacy_term_1(x + k * x_bytes, y + k * y_bytes, block_dot, with_min);
    *lo = terms8 ? *terms8 : _mm256_load_ps(t);
    *hi = _mm256_load_ps(t + 8);
}

/* The pairwise tree of the 16-lane fold (lanes 0-7 in lo, 8-15 in hi):
 * acc[i] + acc[i + w] for w = 8, 4, 2, 1; returns acc[0]. */
static inline float legacy_fold_finish(__m256 lo, __m256 hi)
{
    const __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* The dot product of nb blocks without min (q4_0, q5_0, q8_0 . q8_0). */
SIMD_ALWAYS_INLINE float legacy_vec_dot(int nb, const void *vx, size_t x_bytes, const void *vy,
                                        size_t y_bytes, legacy_block_dot_fn block_dot,
                                        legacy_scales_8_fn x_scales, legacy_scales_8_fn y_scales)
{
    const uint8_t *x = vx, *y = vy;
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= nb; i += 16) {
        const uint8_t *xb = x + i * x_bytes, *yb = y + i * y_bytes;
        acc_lo = _mm256_add_ps(acc_lo, legacy_terms_8(xb, x_bytes, yb, y_bytes, block_dot, x_scales, y_scales));
        acc_hi = _mm256_add_ps(acc_hi, legacy_terms_8(xb + 8 * x_bytes, x_bytes, yb + 8 * y_bytes, y_bytes,
                                                      block_dot, x_scales, y_scales));
    }
    if (i < nb) {
        const uint8_t *xb = x + i * x_bytes, *yb = y + i * y_bytes;
        const int left = nb - i;
        __m256 t8 = _mm256_setzero_ps(), lo, hi;
        if (left >= 8)
            t8 = legacy_terms_8(xb, x_bytes, yb, y_bytes, block_dot, x_scales, y_scales);
        legacy_tail_terms(xb, x_bytes, yb, y_bytes, left, block_dot, false, left >= 8 ? &t8 : NULL, &lo, &hi);
        acc_lo = _mm256_add_ps(acc_lo, lo);
        acc_hi = _mm256_add_ps(acc_hi, hi);
    }
    return legacy_fold_finish(acc_lo, acc_hi);
}

/* The dot product of nb blocks with min (q4_1, q5_1 . q8_1): the second
 * fp16 field of x is m, of y s. */
SIMD_ALWAYS_INLINE float legacy_vec_dot_min(int nb, const void *vx, size_t x_bytes, const void *vy,
                                            size_t y_bytes, legacy_block_dot_fn block_dot,
                                            legacy_pairs_8_fn x_scales, legacy_pairs_8_fn y_scales)
{
    const uint8_t *x = vx, *y = vy;
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= nb; i += 16) {
        const uint8_t *xb = x + i * x_bytes, *yb = y + i * y_bytes;
        acc_lo = _mm256_add_ps(acc_lo,
                               legacy_terms_min_8(xb, x_bytes, yb, y_bytes, block_dot, x_scales, y_scales));
        acc_hi = _mm256_add_ps(acc_hi, legacy_terms_min_8(xb + 8 * x_bytes, x_bytes, yb + 8 * y_bytes, y_bytes,
                                                          block_dot, x_scales, y_scales));
    }
    if (i < nb) {
        const uint8_t *xb = x + i * x_bytes, *yb = y + i * y_bytes;
        const int left = nb - i;
        __m256 t8 = _mm256_setzero_ps(), lo, hi;
        if (left >= 8)
            t8 = legacy_terms_min_8(xb, x_bytes, yb, y_bytes, block_dot, x_scales, y_scales);
        legacy_tail_terms(xb, x_bytes, yb, y_bytes, left, block_dot, true, left >= 8 ? &t8 : NULL, &lo, &hi);
        acc_lo = _mm256_add_ps(acc_lo, lo);
        acc_hi = _mm256_add_ps(acc_hi, hi);
    }
    return legacy_fold_finish(acc_lo, acc_hi);
}

/* ---- q8_0 / q8_1 activation quantizer -------------------------------------- */

/* roundf(v) for finite v (ties away from zero): truncate, then step one away
 * from zero when the dropped fraction (exact) is at least one half. */
static inline __m256 avx2_round_half_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* One block of 32 floats as ggml's q8_0/q8_1 reference quantizers do it,
 * step by step: amax, d = amax/127, id = 1/d, roundf(x*id) (ties away from
 * zero). Writes fp16(d) to *d16 and the 32 int8 codes to qs (and for q8_1,
 * with sum non-NULL, the sum of the codes to *sum and d to *d_out, for s)
 * and returns true; returns false, writing nothing, when a value or the
 * inverse scale is not finite: the caller then quantizes the block with the
 * scalar reference (kernels/legacy_common.h). */
SIMD_ALWAYS_INLINE bool avx2_q8_quantize_block(const float *x, uint16_t *d16, int8_t *qs, float *d_out,
                                               int32_t *sum)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 finite_max = _mm256_set1_ps(FLT_MAX);
    __m256 v[4], amax8 = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        const __m256 a = _mm256_andnot_ps(sign, v[k]);
        ok = _mm256_and_ps(ok, _mm256_cmp_ps(a, finite_max, _CMP_LE_OQ));
        amax8 = _mm256_max_ps(amax8, a);
    }
    const float amax = avx2_max_lanes(amax8);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (_mm256_movemask_ps(ok) != 0xFF || !(id <= FLT_MAX))
        return false;
    *d16 = quarry_fp32_to_fp16(d);
    if (d_out)
        *d_out = d;
    /* |x * id| <= 127 (+ rounding), so the narrowing packs never saturate */
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(avx2_round_half_away(_mm256_mul_ps(v[k], vid)));
    /* packs work per 128-bit half: bytes come out as 4-byte groups
     * 0 2 4 6 1 3 5 7, put back in order by a dword permute */
    const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    if (sum)
        *sum = avx2_sum_lanes_8(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return true;
}

/* ---- K-quants --------------------------------------------------------------- */
/*
 * A K-quant super-block holds 256 weights with an fp16 scale d (and, for
 * q2_K/q4_K/q5_K, an fp16 dmin next to it); its dot with a q8_K block is an
 * exact integer sum isum (and isum_m against the mins) folded into the float
 * result as kernels/q2_k.c .. q6_k.c document:
 *   with mins:     sumf = sumf + (d*(float)isum - dmin*(float)isum_m)
 *   without mins:  sumf = sumf + d*(float)isum
 * with d = y.d * fp16(x.d), dmin = y.d * fp16(x.dmin). The loops below take
 * four super-blocks at a time: each file's callback gives a super-block's
 * integer sums spread over int32 lanes, the four are reduced together, the
 * products d*isum (and dmin*isum_m) are formed in vector lanes (which rounds
 * exactly as the scalar multiplies) and the terms are added to sumf one
 * super-block at a time, in order.
 */

/* 32 bytes (0..255) -> 32 floats d*q - m at y */
static inline void avx2_kq_store_u8x32(__m256i q, __m256 d, __m256 m, float *y)
{
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d, f), m));
    }
}

/* 16 bytes (0..255) -> 16 floats d*q - m at y */
static inline void avx2_kq_store_u8x16(__m128i q, __m256 d, __m256 m, float *y)
{
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(d, f0), m));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(d, f1), m));
}

/* 16 signed bytes -> 16 floats d*q at y */
static inline void avx2_kq_store_i8x16(__m128i q, __m256 d, float *y)
{
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_mul_ps(d, f0));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, f1));
}

/* q4_K / q5_K: the 12 packed scale bytes as 16 bytes, scales 0..7 then mins
 * 0..7 (kq_scales_mins_k4, kernels/kquant_common.h, in one vector). */
static inline __m128i avx2_kq_scales_mins_k4(const uint8_t *packed)
{
    uint32_t sm[4];
    kq_scales_mins_k4(packed, sm);
    return _mm_set_epi64x((long long)((uint64_t)sm[3] << 32 | sm[2]), (long long)((uint64_t)sm[1] << 32 | sm[0]));
}

/* q5_K: bit k of every byte of qh moved to bit 4, other bits cleared (16-bit
 * shifts: bits that cross into the neighbouring byte land outside bit 4). */
static inline __m256i avx2_kq_fifth_bit(__m256i qh, int k)
{
    const __m256i b4 = _mm256_set1_epi8(0x10);
    return k < 4 ? _mm256_and_si256(_mm256_slli_epi16(qh, 4 - k), b4)
                 : _mm256_and_si256(_mm256_srli_epi16(qh, k - 4), b4);
}

/* q3_K: the 16 scales (-32..31) of a block as bytes, from the 12 packed
 * bytes: scale k has its low 4 bits in byte k%8 (low nibble for k < 8) and
 * its top 2 bits at bit 2*(k/4) of byte 8 + k%4; stored with a bias of 32. */
static inline __m128i avx2_kq_q3_scales(const uint8_t *packed)
{
    /* v: the 12 bytes (two loads, so nothing past the block is read) */
    const __m128i v = _mm_unpacklo_epi64(_mm_loadu_si64(packed), _mm_loadu_si32(packed + 8));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    /* low 4 bits: scale k < 8 from the low nibble of byte k, k >= 8 from the high nibble of byte k-8 */
    const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    /* top 2 bits: byte 8 + k%4 shifted right by 2*(k/4) (one shift count per dword) */
    const __m128i w = _mm_shuffle_epi8(v, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11));
    const __m128i top = _mm_and_si128(_mm_slli_epi16(_mm_srlv_epi32(w, _mm_setr_epi32(0, 2, 4, 6)), 4),
                                      _mm_set1_epi8(0x30));
    return _mm_sub_epi8(_mm_or_si128(low, top), _mm_set1_epi8(32));
}

/* q2_K: isum_m lanes, m_k * bsums[k] summed in pairs, from the 16 scale
 * bytes (min in the high nibble) */
static inline __m128i avx2_kq_q2_mins(__m128i packed, const block_q8_K *y)
{
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
    const __m256i mprod = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)y->bsums));
    return _mm_add_epi32(_mm256_castsi256_si128(mprod), _mm256_extracti128_si256(mprod, 1));
}

/* q4_K / q5_K: isum_m lanes, m_j * (bsums[2j] + bsums[2j+1]) in pairs, from
 * the 16 scale/min bytes sm (mins in bytes 8..15) */
static inline __m128i avx2_kq_k4_mins(__m128i sm, const block_q8_K *y)
{
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    const __m128i bs_pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(_mm_unpackhi_epi8(sm, _mm_setzero_si128()), bs_pairs);
}

/* q4_K / q5_K: acc + madd(maddubs(lo, y[64j..]), scale 2j) + madd(maddubs(hi,
 * y[64j+32..]), scale 2j+1): the sums of sub-blocks 2j and 2j+1, whose quants
 * (as bytes) are lo and hi; scales holds the 16 scale/min bytes in both
 * 128-bit lanes. maddubs forms 16-bit pair sums of q*y (no saturation for
 * q <= 31: 31*128*2 < 2^15), madd multiplies them by the sub-block scale,
 * picked out of the scale bytes by a byte shuffle. */
static inline __m256i avx2_kq_k4_chunk(__m256i acc, __m256i scales, __m256i lo, __m256i hi, const int8_t *q8,
                                       int j)
{
    /* row k turns the 16 scale/min bytes (in both 128-bit lanes) into scale
     * k, zero-extended to every 16-bit slot */
    static _Alignas(32) const uint8_t scale_bcast16[8][32] = {
#define ROW(k) {k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, \
                k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80, k, 0x80}
        ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7)
#undef ROW
    };
    const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
    const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
    const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)scale_bcast16[2 * j]));
    const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)scale_bcast16[2 * j + 1]));
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(pl, sl), _mm256_madd_epi16(ph, sh)));
}

/* q2_K / q3_K / q6_K: int32 lanes of sum_g madd(maddubs(u[g], y8[32g..]),
 * shuffle(sc, ctl[g])) over the four 32-weight groups of a 128-weight half:
 * the 16-bit pair sums of u*y times the sub-block scales that the shuffle
 * controls ctl pick out of sc, added as (g0 + g1) + (g2 + g3). */
static inline __m256i avx2_kq_half_sums(const __m256i u[4], const int8_t *y8, __m256i sc, const __m256i ctl[4])
{
    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u[0], _mm256_loadu_si256((const __m256i *)y8)),
                                         _mm256_shuffle_epi8(sc, ctl[0]));
    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(u[1], _mm256_loadu_si256((const __m256i *)(y8 + 32))),
                                         _mm256_shuffle_epi8(sc, ctl[1]));
    const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(u[2], _mm256_loadu_si256((const __m256i *)(y8 + 64))),
                                         _mm256_shuffle_epi8(sc, ctl[2]));
    const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(u[3], _mm256_loadu_si256((const __m256i *)(y8 + 96))),
                                         _mm256_shuffle_epi8(sc, ctl[3]));
    return _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3));
}

/* q3_K / q6_K: the unsigned quants u of half h (128 weights) of super-block
 * x as four vectors of 32 bytes: u[g] = weights 128h + 32g .. */
typedef void (*avx2_kq_unpack_half_fn)(const void *x, int h, __m256i u[4]);

/* q3_K / q6_K: int32 lanes summing to isum = sum_k sc_k * sum (u - 2^bias_shift)*y
 * over the 16 sub-blocks of 16 of super-block x, given its 16 signed scales
 * sc16 and how to unpack its unsigned quants u. The bias is taken back
 * through the activation's bsums (the exact 16-value sums of y.qs):
 * isum = sum_k sc_k * sum u*y - 2^bias_shift * sum_k sc_k*bsums[k]. */
SIMD_ALWAYS_INLINE __m256i avx2_kq_signed_sums(const void *x, avx2_kq_unpack_half_fn unpack_half, __m256i sc16,
                                               const block_q8_K *y, int bias_shift)
{
    /* row g broadcasts 16-bit scale 2g (of 8 in each 128-bit lane) over the
     * low lane and 2g+1 over the high lane (the sub-blocks of the low and
     * high 16 weights of a 32-weight group) */
    static _Alignas(32) const uint8_t scale_pair_bcast[4][32] = {
#define ROW(j) {4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, 4*j, 4*j+1, \
    4*j, 4*j+1, 4*j, 4*j+1, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, \
    4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3, 4*j+2, 4*j+3}
        ROW(0), ROW(1), ROW(2), ROW(3)
#undef ROW
    };
    /* scales 8h..8h+7 as 16-bit values in both 128-bit lanes, for half h */
    const __m256i sc_half0 = _mm256_permute4x64_epi64(sc16, 0x44), sc_half1 = _mm256_permute4x64_epi64(sc16, 0xEE);
    /* 2^bias_shift * sum_k sc_k * bsums[k] over 8 lanes */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)),
                                           bias_shift);
    const __m256i ctl[4] = {_mm256_load_si256((const __m256i *)scale_pair_bcast[0]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[1]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[2]),
                            _mm256_load_si256((const __m256i *)scale_pair_bcast[3])};
    __m256i u[4];
    unpack_half(x, 0, u);
    const __m256i acc0 = avx2_kq_half_sums(u, y->qs, sc_half0, ctl);
    unpack_half(x, 1, u);
    const __m256i acc1 = avx2_kq_half_sums(u, y->qs + 128, sc_half1, ctl);
    return _mm256_sub_epi32(_mm256_add_epi32(acc0, acc1), bias);
}

/* Integer totals of four super-blocks, {isum0, isum_m0, isum1, isum_m1, ...}:
 * isum_k sums the 8 lanes of a_k, isum_m_k the 4 lanes of m_k. */
static inline __m256i avx2_kq_reduce4_min(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m128i m0,
                                          __m128i m1, __m128i m2, __m128i m3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    const __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    const __m128i isum_m = _mm_hadd_epi32(_mm_hadd_epi32(m0, m1), _mm_hadd_epi32(m2, m3));
    return _mm256_set_m128i(_mm_unpackhi_epi32(isum, isum_m), _mm_unpacklo_epi32(isum, isum_m));
}

/* Integer totals of four super-blocks {isum0, .., isum3}: each sums the 8
 * int32 lanes of its accumulator. */
static inline __m128i avx2_kq_reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* {d0, dmin0, d1, dmin1, ..} with d = y.d * fp16(x.d), dmin = y.d * fp16(x.dmin)
 * for the first count (1..4) super-blocks; later lanes repeat block 0. xd
 * points at the first block's d (dmin follows it), x_bytes apart. */
static inline __m256 kq_scales4_min(const uint8_t *xd, size_t x_bytes, const block_q8_K *y, int count)
{
    const int k1 = count > 1 ? 1 : 0, k2 = count > 2 ? 2 : 0, k3 = count > 3 ? 3 : 0;
    const __m128i h01 = _mm_unpacklo_epi32(_mm_loadu_si32(xd), _mm_loadu_si32(xd + k1 * x_bytes));
    const __m128i h23 = _mm_unpacklo_epi32(_mm_loadu_si32(xd + k2 * x_bytes), _mm_loadu_si32(xd + k3 * x_bytes));
    const __m256 x_scales = _mm256_cvtph_ps(_mm_unpacklo_epi64(h01, h23));
    const __m128 y01 = _mm_unpacklo_ps(_mm_load_ss(&y[0].d), _mm_load_ss(&y[k1].d));
    const __m128 y23 = _mm_unpacklo_ps(_mm_load_ss(&y[k2].d), _mm_load_ss(&y[k3].d));
    const __m256 yd = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_movelh_ps(y01, y23)),
                                               _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    return _mm256_mul_ps(yd, x_scales);
}

/* d = y.d * fp16(x.d) for the first count (1..4) super-blocks; later lanes
 * repeat block 0. xd points at the first block's d, x_bytes apart. */
static inline __m128 kq_scales4(const uint8_t *xd, size_t x_bytes, const block_q8_K *y, int count)
{
    const int k1 = count > 1 ? 1 : 0, k2 = count > 2 ? 2 : 0, k3 = count > 3 ? 3 : 0;
    const __m128i h01 = _mm_unpacklo_epi16(_mm_loadu_si16(xd), _mm_loadu_si16(xd + k1 * x_bytes));
    const __m128i h23 = _mm_unpacklo_epi16(_mm_loadu_si16(xd + k2 * x_bytes), _mm_loadu_si16(xd + k3 * x_bytes));
    const __m128 x_scales = _mm_cvtph_ps(_mm_unpacklo_epi32(h01, h23));
    const __m128 y01 = _mm_unpacklo_ps(_mm_load_ss(&y[0].d), _mm_load_ss(&y[k1].d));
    const __m128 y23 = _mm_unpacklo_ps(_mm_load_ss(&y[k2].d), _mm_load_ss(&y[k3].d));
    return _mm_mul_ps(_mm_movelh_ps(y01, y23), x_scales);
}

/* sumf + (d_k*isum_k - dmin_k*isum_m_k) for k = 0..count-1, in order. */
static inline float kq_fold4_min(float sumf, __m256i totals, __m256 dd, int count)
{
    const __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(totals), dd);
    const __m256 t = _mm256_sub_ps(p, _mm256_movehdup_ps(p)); /* term k in lane 2k */
    const __m128 lo = _mm256_castps256_ps128(t), hi = _mm256_extractf128_ps(t, 1);
    sumf += _mm_cvtss_f32(lo);
    if (count > 1)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(lo, lo));
    if (count > 2)
        sumf += _mm_cvtss_f32(hi);
    if (count > 3)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(hi, hi));
    return sumf;
}

/* sumf + d_k*isum_k for k = 0..count-1, in order. */
static inline float kq_fold4(float sumf, __m128i totals, __m128 d, int count)
{
    const __m128 p = _mm_mul_ps(_mm_cvtepi32_ps(totals), d);
    sumf += _mm_cvtss_f32(p);
    if (count > 1)
        sumf += _mm_cvtss_f32(_mm_movehdup_ps(p));
    if (count > 2)
        sumf += _mm_cvtss_f32(_mm_movehl_ps(p, p));
    if (count > 3)
        sumf += _mm_cvtss_f32(_mm_shuffle_ps(p, p, 3));
    return sumf;
}

/* one super-block's int32 isum lanes (returned) and isum_m lanes (*mins) */
typedef __m256i (*avx2_kq_sums_min_fn)(const void *x, const block_q8_K *y, __m128i *mins);
/* one super-block's int32 isum lanes */
typedef __m256i (*avx2_kq_sums_fn)(const void *x, const block_q8_K *y);

/* One group of count (1..4) super-blocks of avx2_kq_vec_dot_min; the loops
 * call it with a constant 4 for whole groups, so the branches on count
 * compile away there. */
SIMD_ALWAYS_INLINE float avx2_kq_group_min(float sumf, int count, const uint8_t *xb, size_t x_bytes,
                                           size_t d_offset, const block_q8_K *y, avx2_kq_sums_min_fn sums)
{
    const __m256i zero = _mm256_setzero_si256();
    __m128i m0, m1 = _mm_setzero_si128(), m2 = _mm_setzero_si128(), m3 = _mm_setzero_si128();
    const __m256i a0 = sums(xb, y, &m0);
    const __m256i a1 = count > 1 ? sums(xb + x_bytes, y + 1, &m1) : zero;
    const __m256i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + 2, &m2) : zero;
    const __m256i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + 3, &m3) : zero;
    return kq_fold4_min(sumf, avx2_kq_reduce4_min(a0, a1, a2, a3, m0, m1, m2, m3),
                        kq_scales4_min(xb + d_offset, x_bytes, y, count), count);
}

/* The dot product of nb super-blocks with mins (q2_K, q4_K, q5_K . q8_K);
 * d_offset: where d (then dmin) sits in a block of x_bytes. */
SIMD_ALWAYS_INLINE float avx2_kq_vec_dot_min(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                             const block_q8_K *y, avx2_kq_sums_min_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    int i = 0;
    for (; i + 4 <= nb; i += 4)
        sumf = avx2_kq_group_min(sumf, 4, x + i * x_bytes, x_bytes, d_offset, y + i, sums);
    if (i < nb)
        sumf = avx2_kq_group_min(sumf, nb - i, x + i * x_bytes, x_bytes, d_offset, y + i, sums);
    return sumf;
}

/* One group of count (1..4) super-blocks of avx2_kq_vec_dot. */
SIMD_ALWAYS_INLINE float avx2_kq_group(float sumf, int count, const uint8_t *xb, size_t x_bytes,
                                       size_t d_offset, const block_q8_K *y, avx2_kq_sums_fn sums)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m256i a0 = sums(xb, y);
    const __m256i a1 = count > 1 ? sums(xb + x_bytes, y + 1) : zero;
    const __m256i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + 2) : zero;
    const __m256i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + 3) : zero;
    return kq_fold4(sumf, avx2_kq_reduce4(a0, a1, a2, a3), kq_scales4(xb + d_offset, x_bytes, y, count), count);
}

/* The dot product of nb super-blocks without mins (q3_K, q6_K . q8_K). */
SIMD_ALWAYS_INLINE float avx2_kq_vec_dot(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                         const block_q8_K *y, avx2_kq_sums_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    int i = 0;
    for (; i + 4 <= nb; i += 4)
        sumf = avx2_kq_group(sumf, 4, x + i * x_bytes, x_bytes, d_offset, y + i, sums);
    if (i < nb)
        sumf = avx2_kq_group(sumf, nb - i, x + i * x_bytes, x_bytes, d_offset, y + i, sums);
    return sumf;
}

#endif
