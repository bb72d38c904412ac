/*
 * q8_k_avx2.c - the q8_K activation quantizer for AVX2: a row of floats to
 * q8_K blocks (256 int8 values, an fp32 scale and the 16 sums bsums[]), which
 * every K-quant dot product takes as its right-hand side.
 *
 * It produces the same bytes as the reference (ggml's quantize_row_q8_K_ref):
 * the block's value of largest magnitude is the first one with
 * |x| == max|x| (NaNs never win, as in the scalar `>` scan),
 * iscale = -127/that value, q = min(127, nearest_int(iscale*x)) with ggml's
 * 1.5*2^23 rounding trick done lane by lane (same float operations, so the
 * same result even for odd inputs; the byte stored is the low 8 bits, as the
 * C conversion to int8_t does), d = 1/iscale, bsums = sums of the stored
 * bytes. An all-zero block stores d = 0, zero quants and zero sums.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* Index of the first element of x[0..255] whose |x| equals amax (exists). */
static inline int first_index_of_abs(const float *x, float amax)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), target = _mm256_set1_ps(amax);
    for (int j = 0; j < QK_K; j += 8) {
        const __m256 ax = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(ax, target, _CMP_EQ_OQ));
        if (mask)
            return j + __builtin_ctz((unsigned)mask);
    }
    return 0; /* not reached: amax is one of the |x| */
}

/* 8 floats -> min(127, nearest_int(iscale * x)) as int32. */
static inline __m256i quantize8(const float *x, __m256 iscale)
{
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(iscale, _mm256_loadu_ps(x)), magic);
    const __m256i bits = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x007fffff));
    const __m256i q = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x00400000));
    return _mm256_min_epi32(q, _mm256_set1_epi32(127));
}

/* bsums of one block from its 256 stored bytes: sad against zero of the
 * bytes offset by 128 gives sums of 8 (biased by 1024), combined in pairs. */
static inline void block_sums(const int8_t *qs, int16_t *bsums)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qs + 32 * k)), flip), zero);
    /* s[k] dwords: lane 0 {a,0,b,0} = bytes 32k+0..15, lane 1 = 32k+16..31 */
    const __m256i h01 = _mm256_hadd_epi32(s[0], s[1]), h23 = _mm256_hadd_epi32(s[2], s[3]);
    const __m256i h45 = _mm256_hadd_epi32(s[4], s[5]), h67 = _mm256_hadd_epi32(s[6], s[7]);
    const __m256i bias = _mm256_set1_epi32(2048);
    /* g0 lane 0 = sums 0,2,4,6; lane 1 = 1,3,5,7; g1 the same for 8..15 */
    const __m256i g0 = _mm256_sub_epi32(_mm256_hadd_epi32(h01, h23), bias);
    const __m256i g1 = _mm256_sub_epi32(_mm256_hadd_epi32(h45, h67), bias);
    const __m256i p = _mm256_packs_epi32(g0, g1); /* lane 0: 0,2,..,14; lane 1: 1,3,..,15 */
    const __m128i even = _mm256_castsi256_si128(p), odd = _mm256_extracti128_si256(p, 1);
    _mm_storeu_si128((__m128i *)bsums, _mm_unpacklo_epi16(even, odd));
    _mm_storeu_si128((__m128i *)(bsums + 8), _mm_unpackhi_epi16(even, odd));
}

static void quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i low8 = _mm256_set1_epi32(0xFF);
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        __m256 vmax = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) /* NaN lanes keep the running max */
            vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), vmax);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float max = x[first_index_of_abs(x, amax)];
        const float iscale = -127.f / max;
        const __m256 vis = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            /* keep the low byte of each int32 (as a conversion to int8_t does), then pack */
            const __m256i a = _mm256_and_si256(quantize8(x + j, vis), low8);
            const __m256i b = _mm256_and_si256(quantize8(x + j + 8, vis), low8);
            const __m256i c = _mm256_and_si256(quantize8(x + j + 16, vis), low8);
            const __m256i d = _mm256_and_si256(quantize8(x + j + 24, vis), low8);
            const __m256i ab = _mm256_packus_epi32(a, b), cd = _mm256_packus_epi32(c, d);
            const __m256i abcd = _mm256_packus_epi16(ab, cd); /* dword order 0 2 4 6 1 3 5 7 */
            const __m256i ordered = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), ordered);
        }
        block_sums(y[i].qs, y[i].bsums);
        y[i].d = 1 / iscale;
    }
}

void quarry_kernels_q8_K_avx2(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q8_K].from_float = quantize_row_q8_K_avx2;
}
