/*
 * simd_avx512.h - AVX-512 (F/BW/VL/DQ/VNNI) building blocks shared by the
 * kernels/..._avx512.c files, on top of kernels/simd_avx2.h (which it
 * includes): fp16 scale gathers of 8 legacy blocks by word permutes, masked
 * tails, nibble unpacking, the q8_0/q8_1 block quantizer, the stores of
 * dequantized blocks, and the K-quant super-block loops and reductions.
 *
 * Only for files compiled with the AVX-512 flags (kernels/..._avx512.c);
 * never include it from a scalar or AVX2 file.
 */
#ifndef QUARRY_SIMD_AVX512_H
#define QUARRY_SIMD_AVX512_H

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__AVX512DQ__) || !defined(__AVX512VNNI__)
#error "kernels/simd_avx512.h needs the AVX-512 flags: include it only from the ..._avx512.c files"
#endif

#include "kernels/simd_avx2.h"

/* ---- masks and float accumulation ------------------------------------------ */

/* the first `left` lanes (all of them when left >= the lane count) */
static inline __mmask16 avx512_tail_mask16(int64_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

static inline __mmask32 avx512_tail_mask32(int64_t left)
{
    return left >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << left) - 1);
}

/* Adds the 16 floats of a to the double accumulators (8 lanes each). */
static inline void avx512_widen_into(__m512 a, __m512d *lo, __m512d *hi)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
}

/* ---- legacy quants: scales of 8 blocks ------------------------------------- */

/* d of q8_0 blocks y[0..7] as floats. Block k's d is word 17k of the 272
 * bytes: k < 4 from bytes [0, 128), k >= 4 from bytes [128, 192) and
 * [176, 240) (words 64..95 and 88..119). */
static inline __m256 avx512_q8_0_scales_8(const void *y)
{
    const uint8_t *p = y;
    const __m512i idx_lo = _mm512_zextsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 0, 0, 0, 0));
    const __m512i idx_hi = _mm512_zextsi128_si512(_mm_setr_epi16(0, 0, 0, 0, 68 - 64, 85 - 64,
                                                                 32 + 102 - 88, 32 + 119 - 88));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx_hi,
                                                 _mm512_loadu_si512(p + 176));
    return _mm256_cvtph_ps(_mm_blend_epi32(_mm512_castsi512_si128(lo), _mm512_castsi512_si128(hi), 0xC));
}

/* 16 fp16 words (firsts of 8 blocks, then seconds) as a pair of 8 floats */
static inline struct fp16_pairs avx512_widen_pairs(__m256i words)
{
    const __m512 f = _mm512_cvtph_ps(words);
    return (struct fp16_pairs){_mm512_castps512_ps256(f), _mm512_extractf32x8_ps(f, 1)};
}

/* (d, s) of q8_1 blocks y[0..7]: words 18k and 18k+1 of the 288 bytes;
 * k < 4 from bytes [0, 128), k >= 4 from bytes [128, 256). */
static inline struct fp16_pairs avx512_q8_1_scales_8(const void *y)
{
    const uint8_t *p = y;
    const __m512i idx_lo = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 18, 36, 54, 0, 0, 0, 0, 1, 19, 37, 55, 0, 0, 0, 0));
    const __m512i idx_hi = _mm512_zextsi256_si512(_mm256_setr_epi16(
        0, 0, 0, 0, 72 - 64, 90 - 64, 108 - 64, 126 - 64, 0, 0, 0, 0, 73 - 64, 91 - 64, 109 - 64,
        127 - 64));
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo,
                                                 _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx_hi,
                                                 _mm512_loadu_si512(p + 192));
    return avx512_widen_pairs(_mm256_mask_blend_epi16((__mmask16)0xF0F0, _mm512_castsi512_si256(lo),
                                                      _mm512_castsi512_si256(hi)));
}

/* ---- legacy quants: codes and dequantized stores --------------------------- */

/* The 32 4-bit codes of a legacy block in weight order: the 16 bytes qs in
 * both halves, the upper half shifted down a nibble. */
static inline __m256i avx512_nibbles_32(const uint8_t *qs)
{
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    q = _mm256_mask_srli_epi16(q, (__mmask16)0xFF00, q, 4);
    return _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
}

/* 32 signed codes (lo: 0..15, hi: 16..31) times d, stored to y[0..31] */
static inline void avx512_store_scaled_i8x32(__m128i lo, __m128i hi, __m512 d, float *y)
{
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
}

/* 32 unsigned codes c as c*d + m, stored to y[0..31] */
static inline void avx512_store_affine_u8x32(__m256i c, __m512 d, __m512 m, float *y)
{
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(c)));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(c, 1)));
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(lo, d), m));
    _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(hi, d), m));
}

/* ---- q8_0 / q8_1 activation quantizer -------------------------------------- */

/* roundf(v) for finite v (ties away from zero): truncate, then step one away
 * from zero when the dropped fraction (exact) is at least one half. */
static inline __m512 avx512_round_half_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f),
                                    _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* avx2_q8_quantize_block (kernels/simd_avx2.h) with 16-lane vectors: the
 * same steps, the same outputs, the same fallback contract. */
SIMD_ALWAYS_INLINE bool avx512_q8_quantize_block(const float *x, uint16_t *d16, int8_t *qs,
                                                 float *d_out, int32_t *sum)
{
    const __m512 finite_max = _mm512_set1_ps(FLT_MAX);
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
    const __mmask16 ok0 = _mm512_cmp_ps_mask(a0, finite_max, _CMP_LE_OQ);
    const __mmask16 ok1 = _mm512_cmp_ps_mask(a1, finite_max, _CMP_LE_OQ);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    if ((ok0 & ok1) != 0xFFFF || !(id <= FLT_MAX))
        return false;
    *d16 = quarry_fp32_to_fp16(d);
    if (d_out)
        *d_out = d;
    /* |x * id| <= 127 (+ rounding), so the int32 -> int8 narrowing never saturates */
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(avx512_round_half_away(_mm512_mul_ps(v0, vid)));
    const __m512i q1 = _mm512_cvtps_epi32(avx512_round_half_away(_mm512_mul_ps(v1, vid)));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
    if (sum)
        *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    return true;
}

/* ---- K-quants (see the K-quant section of kernels/simd_avx2.h) ------------- */

/* 32 bytes (0..255) -> 32 floats d*q - m at y */
static inline void avx512_kq_store_u8x32(__m256i q, __m512 d, __m512 m, float *y)
{
    const __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q)));
    const __m512 f1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1)));
    _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d, f0), m));
    _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(d, f1), m));
}

/* 16 bytes (0..255) -> 16 floats d*q - m at y */
static inline void avx512_kq_store_u8x16(__m128i q, __m512 d, __m512 m, float *y)
{
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
    _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d, f), m));
}

/* 16 signed bytes -> 16 floats d*q at y */
static inline void avx512_kq_store_i8x16(__m128i q, __m512 d, float *y)
{
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
}

/* q4_K / q5_K: the 12 packed scale bytes as 16 bytes, scales 0..7 then mins
 * 0..7, with vector operations (kq_scales_mins_k4 in one vector). The 16-byte
 * load also reads the first 4 bytes of qs (ignored). */
static inline __m128i avx512_kq_scales_mins_k4(const uint8_t *packed)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)packed);
    /* a: bytes 0-3, 8-11, 4-7, 8-11; b: the top-2-bit sources for 4-7 / 12-15 */
    const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                      _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    const __m128i top = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30));
    return _mm_or_si128(low, top);
}

/* q4_K / q5_K: vpshufb control that turns the 16 scale/min bytes (in every
 * 128-bit lane) into the 16-bit scale of sub-block 2m (lanes 0-1) and 2m+1
 * (lanes 2-3), zero-extended. */
static inline __m512i avx512_kq_k4_scale_ctl(int m)
{
    const __m256i lo = _mm256_set1_epi16((short)(0xFF00 | (2 * m)));
    const __m256i hi = _mm256_set1_epi16((short)(0xFF00 | (2 * m + 1)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* q3_K / q6_K: vpermw indices giving 16-bit lane w of zmm m the scale of
 * sub-block 4m + w/8 (of the 16 scales in the low 16 words). */
static inline __m512i avx512_kq_scale_idx(int m)
{
    const __m128i l0 = _mm_set1_epi16((short)(4 * m)), l1 = _mm_set1_epi16((short)(4 * m + 1));
    const __m128i l2 = _mm_set1_epi16((short)(4 * m + 2)), l3 = _mm_set1_epi16((short)(4 * m + 3));
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(l1, l0)), _mm256_set_m128i(l3, l2), 1);
}

/* The 16-bit sub-block scales of zmm m, picked out of `scales` by ctl: with
 * a byte shuffle (vpshufb; ctl from avx512_kq_k4_scale_ctl or the q2_K
 * file's) or, with words true, a word permute (vpermw; ctl from
 * avx512_kq_scale_idx). */
static inline __m512i avx512_kq_pick_scales(__m512i scales, __m512i ctl, bool words)
{
    return words ? _mm512_permutexvar_epi16(ctl, scales) : _mm512_shuffle_epi8(scales, ctl);
}

/* int32 lanes of sum_m dpwssd(maddubs(u_m, q8[64m..]), s_m) over the four
 * 64-weight zmm of a super-block: the 16-bit pair sums of u*y times the 16-bit
 * sub-block scales s_m = avx512_kq_pick_scales(scales, ctl[m], words), in two
 * accumulators ((m0 + m2) + (m1 + m3)). */
static inline __m512i avx512_kq_dot_4x64(__m512i u0, __m512i u1, __m512i u2, __m512i u3, const int8_t *q8,
                                         __m512i scales, const __m512i ctl[4], bool words)
{
    __m512i acc0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u0, _mm512_loadu_si512(q8)),
                                       avx512_kq_pick_scales(scales, ctl[0], words));
    __m512i acc1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u1, _mm512_loadu_si512(q8 + 64)),
                                       avx512_kq_pick_scales(scales, ctl[1], words));
    acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(u2, _mm512_loadu_si512(q8 + 128)),
                               avx512_kq_pick_scales(scales, ctl[2], words));
    acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(u3, _mm512_loadu_si512(q8 + 192)),
                               avx512_kq_pick_scales(scales, ctl[3], words));
    return _mm512_add_epi32(acc0, acc1);
}

/* q3_K / q6_K: int32 lanes summing to isum = sum_k sc_k * sum (u - 2^bias_shift)*y,
 * given the unsigned quants u_m of the four 64-weight zmm, the 16 signed
 * scales sc16 and the vpermw indices idx[m] (avx512_kq_scale_idx); the bias
 * is taken back through the activation's bsums, as in avx2_kq_signed_sums. */
static inline __m512i avx512_kq_signed_sums(__m512i u0, __m512i u1, __m512i u2, __m512i u3, __m256i sc16,
                                            const block_q8_K *y, const __m512i idx[4], int bias_shift)
{
    const __m512i scales = _mm512_castsi256_si512(sc16); /* vpermw reads only the low 16 words */
    const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y->bsums)),
                                           bias_shift);
    return _mm512_sub_epi32(avx512_kq_dot_4x64(u0, u1, u2, u3, y->qs, scales, idx, true), _mm512_zextsi256_si512(bias));
}

/* a0..a3 halved and then quartered: lane 4k + l of the result holds a quarter
 * of a_k's 16 lanes summed */
static inline __m512i avx512_kq_quarter4(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
    const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i64x2(a0, a1, 0x44), _mm512_shuffle_i64x2(a0, a1, 0xEE));
    const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i64x2(a2, a3, 0x44), _mm512_shuffle_i64x2(a2, a3, 0xEE));
    return _mm512_add_epi32(_mm512_shuffle_i64x2(s01, s23, 0x88), _mm512_shuffle_i64x2(s01, s23, 0xDD));
}

/* Integer totals of four super-blocks, {isum0, isum_m0, isum1, isum_m1, ...}:
 * isum_k sums the 16 lanes of a_k, isum_m_k the 4 lanes of m_k. */
static inline __m256i avx512_kq_reduce4_min(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m128i m0,
                                            __m128i m1, __m128i m2, __m128i m3)
{
    /* t = {a0: 4 lanes, a1: 4, a2: 4, a3: 4} */
    const __m512i t = avx512_kq_quarter4(a0, a1, a2, a3);
    const __m512i m = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(m1, m0)), _mm256_set_m128i(m3, m2), 1);
    /* per 128-bit lane k: {t0+t2, m0+m2, t1+t3, m1+m3}, then {isum_k, isum_m_k, ..} */
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi32(t, m), _mm512_unpackhi_epi32(t, m));
    const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_BADC));
    return _mm512_castsi512_si256(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 0, 0, 0, 0, 0, 0, 0, 0), v));
}

/* Integer totals of four super-blocks {isum0, .., isum3}: each sums the 16
 * int32 lanes of its accumulator. */
static inline __m128i avx512_kq_reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
    const __m512i t = avx512_kq_quarter4(a0, a1, a2, a3);
    const __m512i u = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_BADC));
    const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_CDAB));
    return _mm512_castsi512_si128(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
}

/* one super-block's int32 isum lanes (returned) and isum_m lanes (*mins);
 * consts: the file's constants, made once per row */
typedef __m512i (*avx512_kq_sums_min_fn)(const void *x, const block_q8_K *y, const void *consts, __m128i *mins);
/* one super-block's int32 isum lanes */
typedef __m512i (*avx512_kq_sums_fn)(const void *x, const block_q8_K *y, const void *consts);

/* avx2_kq_vec_dot_min with 16-lane accumulators. */
SIMD_ALWAYS_INLINE float avx512_kq_vec_dot_min(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                               const block_q8_K *y, const void *consts, avx512_kq_sums_min_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const uint8_t *xb = x + i * x_bytes;
        const __m512i zero = _mm512_setzero_si512();
        __m128i m0, m1 = _mm_setzero_si128(), m2 = _mm_setzero_si128(), m3 = _mm_setzero_si128();
        const __m512i a0 = sums(xb, y + i, consts, &m0);
        const __m512i a1 = count > 1 ? sums(xb + x_bytes, y + i + 1, consts, &m1) : zero;
        const __m512i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + i + 2, consts, &m2) : zero;
        const __m512i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + i + 3, consts, &m3) : zero;
        sumf = kq_fold4_min(sumf, avx512_kq_reduce4_min(a0, a1, a2, a3, m0, m1, m2, m3),
                            kq_scales4_min(xb + d_offset, x_bytes, y + i, count), count);
    }
    return sumf;
}

/* avx2_kq_vec_dot with 16-lane accumulators. */
SIMD_ALWAYS_INLINE float avx512_kq_vec_dot(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                           const block_q8_K *y, const void *consts, avx512_kq_sums_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    for (int i = 0; i < nb; i += 4) {
        const int count = nb - i < 4 ? nb - i : 4;
        const uint8_t *xb = x + i * x_bytes;
        const __m512i zero = _mm512_setzero_si512();
        const __m512i a0 = sums(xb, y + i, consts);
        const __m512i a1 = count > 1 ? sums(xb + x_bytes, y + i + 1, consts) : zero;
        const __m512i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + i + 2, consts) : zero;
        const __m512i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + i + 3, consts) : zero;
        sumf = kq_fold4(sumf, avx512_kq_reduce4(a0, a1, a2, a3), kq_scales4(xb + d_offset, x_bytes, y + i, count),
                        count);
    }
    return sumf;
}

#endif
