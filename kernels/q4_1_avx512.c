/*
 * q4_1_avx512.c - AVX-512 kernels for q4_1 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_1 activations, bit-identical to kernels/q4_1.c.
 *
 * vec_dot works on groups of 16 blocks with 512-bit vectors throughout
 * (avx512_legacy_vec_dot and the group layout in kernels/simd_avx512.h). A
 * group's 320 weight bytes are exactly five 64-byte chunks; for quad q
 * (blocks 4q..4q+3) one vpermt2w of chunks q and q+1 gathers the four blocks'
 * 16 code bytes into one vector, block 4q+p in 128-bit lane p, and a mask and
 * a shift split it into the low nibbles (codes 0..15) and the high ones
 * (16..31). Two vpdpbusd against the q8_1 activations in the same layout
 * give sumi = sum_j c_j * y_j, exact. The quads' sums are reduced to the 16
 * block sums, and the terms
 *   t = (float)sumi * (fp16(x.d) * fp16(y.d)) + fp16(x.m) * fp16(y.s)
 * are formed in 16 lanes with the scalar's roundings and added into the
 * 16-lane accumulator with one vector add per group, each block into its fold
 * lane of the scalar reference; the pairwise tree at the end is the
 * scalar's. The (d, m) pairs of the weights come out of the same chunks by
 * dword blends and word permutes.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* vpermt2w index of quad q's code bytes, relative to the quad's 80 bytes:
 * block p of the quad (p = w / 8) has its 16 code bytes at 20p + 4, i.e.
 * words 10p + 2 .. 10p + 9, and word w of the vector takes word
 * 10p + 2 + w % 8. Quad q reads chunks q and q+1, which start 8q words
 * before the quad. */
static const uint16_t q4_1_codes_idx[32] __attribute__((aligned(64))) = {
    2,  3,  4,  5,  6,  7,  8,  9,  12, 13, 14, 15, 16, 17, 18, 19,
    22, 23, 24, 25, 26, 27, 28, 29, 32, 33, 34, 35, 36, 37, 38, 39};

/* vpermw indices of d and m out of the blended chunks (block b's (d, m)
 * dword, at 20b, is dword 5b mod 16 of chunk 20b / 64, or of the next chunk
 * where it does not fit: all different), in the group lane order (lane L:
 * block 4 (L mod 4) + L / 4). */
static const uint16_t q4_1_d_idx[32] __attribute__((aligned(64))) = {
    0, 8, 16, 24, 10, 18, 26, 2, 20, 28, 4, 12, 30, 6, 14, 22};
static const uint16_t q4_1_m_idx[32] __attribute__((aligned(64))) = {
    1, 9, 17, 25, 11, 19, 27, 3, 21, 29, 5, 13, 31, 7, 15, 23};

/* sum_j c_j * y_j of the quad's blocks (lane p: 4 partial sums of block p),
 * given its code bytes and its activations (lo, hi) */
static inline __m512i q4_1_quad_sums(__m512i codes, __m512i ylo, __m512i yhi)
{
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_and_si512(codes, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ylo), hi, yhi);
}

/* The terms of the 16 blocks at x against the q8_1 blocks at y, in the group
 * lane order (kernels/simd_avx512.h). */
SIMD_ALWAYS_INLINE __m512 q4_1_terms(const uint8_t *x, const struct avx512_act_group *act)
{
    const __m512i c0 = avx512_load_kept(x), c1 = avx512_load_kept(x + 64);
    const __m512i c2 = avx512_load_kept(x + 128), c3 = avx512_load_kept(x + 192);
    const __m512i c4 = avx512_load_kept(x + 256);
    const __m512i idx = _mm512_load_si512(q4_1_codes_idx);
#define Q4_1_CODES(a, b, words) _mm512_permutex2var_epi16(a, _mm512_add_epi16(idx, _mm512_set1_epi16(words)), b)
    const __m512i sumi = avx512_group_sums(q4_1_quad_sums(Q4_1_CODES(c0, c1, 0), act->lo[0], act->hi[0]),
                                           q4_1_quad_sums(Q4_1_CODES(c1, c2, 8), act->lo[1], act->hi[1]),
                                           q4_1_quad_sums(Q4_1_CODES(c2, c3, 16), act->lo[2], act->hi[2]),
                                           q4_1_quad_sums(Q4_1_CODES(c3, c4, 24), act->lo[3], act->hi[3]));
#undef Q4_1_CODES
    /* the (d, m) dwords of chunk c: 0x8421 >> c, and 0x0842 in chunk 4 */
    const __m512i t01 = _mm512_mask_blend_epi32(0x4210, c0, c1);
    const __m512i t23 = _mm512_mask_blend_epi32(0x1084, c2, c3);
    const __m512i t03 = _mm512_mask_blend_epi32(0x2108 | 0x1084, t01, t23);
    const __m512i dm = _mm512_mask_blend_epi32(0x0842, t03, c4);
    const __m512i xd = _mm512_permutexvar_epi16(_mm512_load_si512(q4_1_d_idx), dm);
    const __m512i xm = _mm512_permutexvar_epi16(_mm512_load_si512(q4_1_m_idx), dm);
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(xd)), act->d);
    const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), d);
    return _mm512_add_ps(t, _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(xm)), act->s));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_1 *x = vx;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++)
        avx512_store_affine_u8x32(avx512_nibbles_32(x[i].qs), _mm512_set1_ps(_cvtsh_ss(x[i].d)),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].m)), y + i * QK4_1);
}

static void vec_dot_q4_1_q8_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = avx512_legacy_vec_dot(n / QK4_1, vx, sizeof(block_q4_1), vy, sizeof(block_q8_1),
                               avx512_act_group_q8_1, q4_1_terms);
}

static void vec_dot_q4_1_prepared_avx512(int n, float *s, const void *vx, const void *prepared)
{
    *s = avx512_legacy_vec_dot_prepared(n / QK4_1, vx, sizeof(block_q4_1), prepared, q4_1_terms);
}

void quarry_kernels_q4_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_1];
    t->to_float = dequantize_row_q4_1_avx512;
    t->vec_dot = vec_dot_q4_1_q8_1_avx512;
    t->act_prepared_size = avx512_legacy_prepared_size;
    t->act_prepare = avx512_prepare_q8_1;
    t->vec_dot_prepared = vec_dot_q4_1_prepared_avx512;
}
