/*
 * q4_0_avx512.c - AVX-512 kernels for q4_0 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_0 activations, bit-identical to kernels/q4_0.c.
 *
 * vec_dot works on groups of 16 blocks with 512-bit vectors throughout
 * (avx512_legacy_vec_dot and the group layout in kernels/simd_avx512.h). A
 * group's 288 weight bytes are read as five 64-byte chunks; for quad q (blocks
 * 4q..4q+3) one vpermt2w of two chunks gathers the four blocks' 16 code bytes
 * into one vector, block 4q+p in 128-bit lane p, and a mask and a shift split
 * it into the low nibbles (codes 0..15) and the high ones (16..31). Two
 * vpdpbusd against the q8_0 activations in the same layout give
 * sum_j c_j * y_j, and subtracting 8 * sum_j y_j (the prepared block sums)
 * after the reduction gives sumi = sum_j (c_j - 8) * y_j, exact (codes <= 15 and |y| <= 128 keep every
 * lane far from overflow). The quads' sums are reduced to the 16 block sums,
 * the terms (float)sumi * (fp16(x.d) * fp16(y.d)) are formed in 16 lanes and
 * added into the 16-lane accumulator with one vector add per group, each
 * block into its fold lane of the scalar reference; the pairwise tree at the
 * end is the scalar's. The 16 d's of the weights come out of the same chunks
 * by word permutes.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* vpermt2w index of quad q's code bytes, relative to the quad's 72 bytes:
 * block p of the quad (p = w / 8) has its 16 code bytes at 18p + 2, i.e.
 * words 9p + 1 .. 9p + 8, and word w of the vector takes word 9p + 1 + w % 8.
 * Quads 0..2 read the chunks at 64q and 64q + 64, which start 4q words
 * before the quad. */
static const uint16_t q4_0_codes_idx[32] __attribute__((aligned(64))) = {
    1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
    19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};

/* Quad 3 (bytes 216..287) reads the chunks at 192 and 224: byte b is word
 * (b - 192) / 2 of the first below 256 and word (b - 224) / 2 of the second
 * (index 32 + that) from 256 on. */
static const uint16_t q4_0_last_codes_idx[32] __attribute__((aligned(64))) = {
    13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29,
    31, 48, 49, 50, 51, 52, 53, 54, 56, 57, 58, 59, 60, 61, 62, 63};

/* The d's of the 16 blocks in the group lane order (lane L: block
 * b = 4 (L mod 4) + L / 4), block b's d being word 9b of the group: blocks
 * 0..7 from the chunks at 0 and 64 (word 9b; lo), blocks 8..14 from those at
 * 128 and 192 (word 9b - 64; hi), and block 15 (lane 15) by a masked vpermw
 * of the chunk at 224 (word 23, lane 15 of hi). */
#define Q4_0_D_HI_LANES 0x4CCC /* lanes of blocks 8..14 */
static const uint16_t q4_0_d_lo_idx[32] __attribute__((aligned(64))) = {
    0, 36, 0, 0, 9, 45, 0, 0, 18, 54, 0, 0, 27, 63, 0, 0};
static const uint16_t q4_0_d_hi_idx[32] __attribute__((aligned(64))) = {
    0, 0, 8, 44, 0, 0, 17, 53, 0, 0, 26, 62, 0, 0, 35, 23};

/* sum_j c_j * y_j of the quad's blocks (lane p: 4 partial sums of block p),
 * given its code bytes and its activations (lo, hi) */
static inline __m512i q4_0_quad_sums(__m512i codes, __m512i ylo, __m512i yhi)
{
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_and_si512(codes, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ylo), hi, yhi);
}

/* The terms of the 16 blocks at x against the prepared q8_0 activations act, in
 * the group lane order (kernels/simd_avx512.h); the code offset 8 comes off
 * as 8 * (each block's sum of activations). The weight chunks are the 64
 * bytes at 0, 64, 128, 192 and, so that nothing past the group is read, 224. */
SIMD_ALWAYS_INLINE __m512 q4_0_terms(const uint8_t *x, const struct avx512_act_group *act)
{
    const __m512i c0 = avx512_load_kept(x), c1 = avx512_load_kept(x + 64);
    const __m512i c2 = avx512_load_kept(x + 128), c3 = avx512_load_kept(x + 192);
    const __m512i end = avx512_load_kept(x + 224);
    const __m512i idx = _mm512_load_si512(q4_0_codes_idx);
    const __m512i s0 = q4_0_quad_sums(_mm512_permutex2var_epi16(c0, idx, c1), act->lo[0], act->hi[0]);
    const __m512i s1 = q4_0_quad_sums(
        _mm512_permutex2var_epi16(c1, _mm512_add_epi16(idx, _mm512_set1_epi16(4)), c2), act->lo[1], act->hi[1]);
    const __m512i s2 = q4_0_quad_sums(
        _mm512_permutex2var_epi16(c2, _mm512_add_epi16(idx, _mm512_set1_epi16(8)), c3), act->lo[2], act->hi[2]);
    const __m512i s3 = q4_0_quad_sums(
        _mm512_permutex2var_epi16(c3, _mm512_load_si512(q4_0_last_codes_idx), end), act->lo[3], act->hi[3]);
    const __m512i sumi = _mm512_sub_epi32(avx512_group_sums(s0, s1, s2, s3), _mm512_slli_epi32(act->sum, 3));
    __m512i dx = _mm512_mask_blend_epi16((__mmask32)Q4_0_D_HI_LANES,
                                         _mm512_permutex2var_epi16(c0, _mm512_load_si512(q4_0_d_lo_idx), c1),
                                         _mm512_permutex2var_epi16(c2, _mm512_load_si512(q4_0_d_hi_idx), c3));
    dx = _mm512_mask_permutexvar_epi16(dx, (__mmask32)0x8000, _mm512_load_si512(q4_0_d_hi_idx), end);
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dx)), act->d);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), d);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q4_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    const int64_t nb = n / QK4_0;
    const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i qs = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight);
        avx512_store_scaled_i8x32(lo, hi, _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK4_0);
    }
}

static void vec_dot_q4_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = avx512_legacy_vec_dot(n / QK4_0, vx, sizeof(block_q4_0), vy, sizeof(block_q8_0),
                               avx512_act_group_q8_0, q4_0_terms);
}

static void vec_dot_q4_0_prepared_avx512(int n, float *s, const void *vx, const void *prepared)
{
    *s = avx512_legacy_vec_dot_prepared(n / QK4_0, vx, sizeof(block_q4_0), prepared, q4_0_terms);
}

void quarry_kernels_q4_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q4_0];
    t->to_float = dequantize_row_q4_0_avx512;
    t->vec_dot = vec_dot_q4_0_q8_0_avx512;
    t->act_prepared_size = avx512_legacy_prepared_size;
    t->act_prepare = avx512_prepare_q8_0;
    t->vec_dot_prepared = vec_dot_q4_0_prepared_avx512;
}
