/*
 * q5_1_avx512.c - AVX-512 kernels for q5_1 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_1 activations, bit-identical to kernels/q5_1.c.
 *
 * vec_dot works on groups of 16 blocks with 512-bit vectors throughout
 * (avx512_legacy_vec_dot and the group layout in kernels/simd_avx512.h). A
 * group's 384 weight bytes are exactly six 64-byte chunks; for quad q
 * (blocks 4q..4q+3) one vpermt2w of two chunks gathers the four blocks' 16
 * code bytes into one vector, block 4q+p in 128-bit lane p, and a mask and a
 * shift split it into the low nibbles (values 0..15) and the high ones
 * (16..31). The quad's fifth bits (qh) come out of the same chunks by another
 * vpermt2w and become two 64-bit byte masks in the same layout (vpshufb +
 * vptestmb), and a masked add of 16 makes the codes c_j (0..31). Two
 * vpdpbusd against the q8_1 activations in the same layout give
 * sumi = sum_j c_j * y_j, exact. The quads' sums are reduced to the 16 block
 * sums, and the terms
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

/* vpermt2w index of quad q's code bytes, relative to the quad's 96 bytes:
 * block p of the quad (p = w / 8) has its 16 code bytes at 24p + 8, i.e.
 * words 12p + 4 .. 12p + 11, and word w of the vector takes word
 * 12p + 4 + w % 8. Quads 0..3 (at 0, 96, 192, 288) read the chunks at 0 and
 * 64, 64 and 128, 192 and 256, 256 and 320, which start 0, 16, 0 and 16 words
 * before them. */
static const uint16_t q5_1_codes_idx[32] __attribute__((aligned(64))) = {
    4,  5,  6,  7,  8,  9,  10, 11, 16, 17, 18, 19, 20, 21, 22, 23,
    28, 29, 30, 31, 32, 33, 34, 35, 40, 41, 42, 43, 44, 45, 46, 47};

/* The same for the quad's fifth bits: block p's qh (at 24p + 4, words
 * 12p + 2 and 12p + 3) into the first dword of 128-bit lane p. */
static const uint16_t q5_1_qh_idx[32] __attribute__((aligned(64))) = {
    2, 3, 0, 0, 0, 0, 0, 0, 14, 15, 0, 0, 0, 0, 0, 0, 26, 27, 0, 0, 0, 0, 0, 0, 38, 39};

/* vpermt2w indices of d and m, in the group lane order (lane L: block
 * b = 4 (L mod 4) + L / 4), out of two vectors of blended chunks: the first
 * holds the (d, m) dwords of blocks 0..7, the second those of blocks 8..15,
 * block b's at dword 6b mod 16 (b < 8) or 6 (b - 8) mod 16, the chunk it is
 * in being the 64 bytes at 64 * (24b / 64). */
static const uint16_t q5_1_d_idx[32] __attribute__((aligned(64))) = {
    0, 16, 32, 48, 12, 28, 44, 60, 24, 8, 56, 40, 4, 20, 36, 52};
static const uint16_t q5_1_m_idx[32] __attribute__((aligned(64))) = {
    1, 17, 33, 49, 13, 29, 45, 61, 25, 9, 57, 41, 5, 21, 37, 53};
/* the (d, m) dwords of blocks 8k + 3..5 (second chunk of 8 blocks) and
 * 8k + 6, 7 (third) */
#define Q5_1_DM_SECOND 0x4104
#define Q5_1_DM_THIRD 0x0410

/* sum_j c_j * y_j of the quad's blocks (lane p: 4 partial sums of block p),
 * given its code bytes, its fifth bits (block p's in the first dword of
 * lane p) and its activations (lo, hi) */
static inline __m512i q5_1_quad_sums(__m512i codes, __m512i qh, __m512i ylo, __m512i yhi)
{
    __m512i lo, hi;
    avx512_quad_5bit_codes(codes, qh, &lo, &hi);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ylo), hi, yhi);
}

/* The terms of the 16 blocks at x against the q8_1 blocks at y, in the group
 * lane order (kernels/simd_avx512.h). */
SIMD_ALWAYS_INLINE __m512 q5_1_terms(const uint8_t *x, const struct avx512_act_group *act)
{
    const __m512i c0 = avx512_load_kept(x), c1 = avx512_load_kept(x + 64);
    const __m512i c2 = avx512_load_kept(x + 128), c3 = avx512_load_kept(x + 192);
    const __m512i c4 = avx512_load_kept(x + 256), c5 = avx512_load_kept(x + 320);
    const __m512i codes = _mm512_load_si512(q5_1_codes_idx), qh = _mm512_load_si512(q5_1_qh_idx);
    /* quad q's codes and fifth bits from chunks (a, b), which start `words` before it */
#define Q5_1_QUAD(a, b, words, q)                                                                          \
    q5_1_quad_sums(_mm512_permutex2var_epi16(a, _mm512_add_epi16(codes, _mm512_set1_epi16(words)), b),   \
                   _mm512_permutex2var_epi16(a, _mm512_add_epi16(qh, _mm512_set1_epi16(words)), b), act->lo[q], \
                   act->hi[q])
    const __m512i sumi = avx512_group_sums(Q5_1_QUAD(c0, c1, 0, 0), Q5_1_QUAD(c1, c2, 16, 1),
                                           Q5_1_QUAD(c3, c4, 0, 2), Q5_1_QUAD(c4, c5, 16, 3));
#undef Q5_1_QUAD
    const __m512i dm0 = _mm512_mask_blend_epi32(Q5_1_DM_THIRD, _mm512_mask_blend_epi32(Q5_1_DM_SECOND, c0, c1), c2);
    const __m512i dm1 = _mm512_mask_blend_epi32(Q5_1_DM_THIRD, _mm512_mask_blend_epi32(Q5_1_DM_SECOND, c3, c4), c5);
    const __m512i xd = _mm512_permutex2var_epi16(dm0, _mm512_load_si512(q5_1_d_idx), dm1);
    const __m512i xm = _mm512_permutex2var_epi16(dm0, _mm512_load_si512(q5_1_m_idx), dm1);
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(xd)), act->d);
    const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), d);
    return _mm512_add_ps(t, _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(xm)), act->s));
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_1_avx512(const void *vx, float *y, int64_t n)
{
    const block_q5_1 *x = vx;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++)
        avx512_store_affine_u8x32(avx512_5bit_codes_32(x[i].qs, x[i].qh), _mm512_set1_ps(_cvtsh_ss(x[i].d)),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].m)), y + i * QK5_1);
}

static void vec_dot_q5_1_q8_1_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = avx512_legacy_vec_dot(n / QK5_1, vx, sizeof(block_q5_1), vy, sizeof(block_q8_1),
                               avx512_act_group_q8_1, q5_1_terms);
}

static void vec_dot_q5_1_prepared_avx512(int n, float *s, const void *vx, const void *prepared)
{
    *s = avx512_legacy_vec_dot_prepared(n / QK5_1, vx, sizeof(block_q5_1), prepared, q5_1_terms);
}

void quarry_kernels_q5_1_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_1];
    t->to_float = dequantize_row_q5_1_avx512;
    t->vec_dot = vec_dot_q5_1_q8_1_avx512;
    t->act_prepared_size = avx512_legacy_prepared_size;
    t->act_prepare = avx512_prepare_q8_1;
    t->vec_dot_prepared = vec_dot_q5_1_prepared_avx512;
}
