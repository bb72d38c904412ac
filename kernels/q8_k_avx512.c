/*
 * q8_k_avx512.c - the q8_K activation quantizer for AVX-512 (F/BW/VL/DQ): a
 * row of floats to q8_K blocks (256 int8 values, an fp32 scale and the 16
 * sums bsums[]), the right-hand side of every K-quant dot product.
 *
 * Same bytes as the reference (ggml's quantize_row_q8_K_ref), as in
 * q8_k_avx2.c: the first value with |x| == max|x| sets iscale = -127/x (NaNs
 * never win), q = min(127, nearest_int(iscale*x)) with ggml's 1.5*2^23
 * rounding trick lane by lane, stored as the low 8 bits (vpmovdb truncates,
 * like the C conversion to int8_t), d = 1/iscale, bsums = sums of the stored
 * bytes. An all-zero block stores d = 0, zero quants and zero sums.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

/* bsums of one block from its 256 stored bytes: sad against zero of the
 * bytes offset by 128 gives sums of 8 (biased by 1024), added in pairs. */
static inline void block_sums(const int8_t *qs, int16_t *bsums)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i s[4];
    for (int k = 0; k < 4; k++) {
        /* qword 2g / 2g+1 = first / second 8 bytes of group 4k+g */
        const __m512i sad = _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(qs + 64 * k), flip), zero);
        s[k] = _mm512_add_epi64(sad, _mm512_bsrli_epi128(sad, 8)); /* group sums in even qwords */
    }
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i g0 = _mm512_permutex2var_epi64(s[0], even, s[1]); /* groups 0..7 */
    const __m512i g1 = _mm512_permutex2var_epi64(s[2], even, s[3]); /* groups 8..15 */
    const __m128i bias = _mm_set1_epi16(2048);
    _mm_storeu_si128((__m128i *)bsums, _mm_sub_epi16(_mm512_cvtepi64_epi16(g0), bias));
    _mm_storeu_si128((__m128i *)(bsums + 8), _mm_sub_epi16(_mm512_cvtepi64_epi16(g1), bias));
}

static void quantize_row_q8_K_avx512(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m512i magic = _mm512_castps_si512(_mm512_set1_ps(12582912.f));
    const __m512i mant = _mm512_set1_epi32(0x007fffff), half = _mm512_set1_epi32(0x00400000);
    const __m512i q127 = _mm512_set1_epi32(127);
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        __m512 vmax = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16) /* NaN lanes keep the running max */
            vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + j)), vmax);
        const float amax = _mm512_reduce_max_ps(vmax);
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        /* first element with |x| == amax */
        const __m512 target = _mm512_set1_ps(amax);
        int first = 0;
        for (int j = 0; j < QK_K; j += 16) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), target, _CMP_EQ_OQ);
            if (hit) {
                first = j + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        const __m512 vis = _mm512_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 16) {
            const __m512 v = _mm512_add_ps(_mm512_mul_ps(vis, _mm512_loadu_ps(x + j)), _mm512_castsi512_ps(magic));
            const __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(v), mant), half);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(_mm512_min_epi32(q, q127)));
        }
        block_sums(y[i].qs, y[i].bsums);
        y[i].d = 1 / iscale;
    }
}

void quarry_kernels_q8_K_avx512(struct quarry_type_traits *table)
{
    table[QUARRY_TYPE_Q8_K].from_float = quantize_row_q8_K_avx512;
}
