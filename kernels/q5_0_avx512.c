/*
 * q5_0_avx512.c - AVX-512 kernels for q5_0 (F/BW/VL + VNNI): dequantize and
 * the dot product against q8_0 activations, bit-identical to kernels/q5_0.c.
 *
 * vec_dot works on groups of 16 blocks with 512-bit vectors throughout
 * (avx512_legacy_vec_dot and the group layout in kernels/simd_avx512.h). A
 * group's 352 weight bytes are read as six 64-byte chunks; for quad q (blocks
 * 4q..4q+3) one vpermt2w of two chunks gathers the four blocks' 16 code bytes
 * into one vector, block 4q+p in 128-bit lane p, and a mask and a shift
 * split it into the low nibbles (values 0..15) and the high ones (16..31).
 * The quad's fifth bits (qh) come out of the same chunks by another vpermt2w
 * and become two 64-bit byte masks in the same layout (vpshufb + vptestmb),
 * and a masked add of 16 makes the codes c_j (0..31). Two vpdpbusd against the q8_0 activations in the
 * same layout give sum_j c_j * y_j, and subtracting 16 * sum_j y_j (the
 * prepared block sums) after the reduction gives sumi = sum_j (c_j - 16) * y_j, exact (codes <= 31 and
 * |y| <= 128 keep every lane far from overflow). The quads' sums are reduced
 * to the 16 block sums, the terms (float)sumi * (fp16(x.d) * fp16(y.d)) are
 * formed in 16 lanes and added into the 16-lane accumulator with one vector
 * add per group, each block into its fold lane of the scalar reference; the
 * pairwise tree at the end is the scalar's. The d's of the weights come out
 * of the same chunks by word blends and a word permute.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd_avx512.h"

/* vpermt2w index of quad q's code bytes, relative to the quad's 88 bytes:
 * block p of the quad (p = w / 8) has its 16 code bytes at 22p + 6, i.e.
 * words 11p + 3 .. 11p + 10, and word w of the vector takes word
 * 11p + 3 + w % 8. The chunks a quad reads start 0, 12, 8 and 20 words
 * before quads 0..3 (see q5_0_group). */
static const uint16_t q5_0_codes_idx[32] __attribute__((aligned(64))) = {
    3,  4,  5,  6,  7,  8,  9,  10, 14, 15, 16, 17, 18, 19, 20, 21,
    25, 26, 27, 28, 29, 30, 31, 32, 36, 37, 38, 39, 40, 41, 42, 43};

/* The same for the quad's fifth bits: block p's qh (at 22p + 2, words
 * 11p + 1 and 11p + 2) into the first dword of 128-bit lane p. */
static const uint16_t q5_0_qh_idx[32] __attribute__((aligned(64))) = {
    1, 2, 0, 0, 0, 0, 0, 0, 12, 13, 0, 0, 0, 0, 0, 0, 23, 24, 0, 0, 0, 0, 0, 0, 34, 35};

/* vpermw index of the d's out of the blended chunks, in the group lane order
 * (lane L: block 4 (L mod 4) + L / 4). Block b's d (at 22b) is taken from
 * the chunk at 0 (b = 0..2), 64 (3..5), 128 (6..8), 160 (9, 10), 224 (11..13)
 * or 288 (14, 15), where it is word 0, 11, 22 / 1, 12, 23 / 2, 13, 24 /
 * 19, 30 / 9, 20, 31 / 10, 21: all different, so word blends with these
 * masks collect them into one vector. */
static const uint16_t q5_0_d_idx[32] __attribute__((aligned(64))) = {
    0, 12, 24, 20, 11, 23, 19, 31, 22, 2, 30, 10, 1, 13, 9, 21};
#define Q5_0_D_AT_64 0x00801002u
#define Q5_0_D_AT_128 0x01002004u
#define Q5_0_D_AT_160 0x40080000u
#define Q5_0_D_AT_224 0x80100200u
#define Q5_0_D_AT_288 0x00200400u

/* sum_j (c_j - 16) * y_j of the quad's blocks (lane p: 4 partial sums of
 * block p), given its code bytes, its fifth bits (block p's in the first
 * dword of lane p) and its activations (lo, hi) */
static inline __m512i q5_0_quad_sums(__m512i codes, __m512i qh, __m512i ylo, __m512i yhi)
{
    __m512i lo, hi;
    avx512_quad_5bit_codes(codes, qh, &lo, &hi);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ylo), hi, yhi);
}

/* The terms of the 16 blocks at x against the q8_0 blocks at y, in the group
 * lane order (kernels/simd_avx512.h). The weight chunks are the 64 bytes at
 * 0, 64, 128, 160, 224 and 288 (the group's last 64); quads 0..3 (at 0, 88,
 * 176, 264) read those at 0 and 64, 64 and 128, 160 and 224, 224 and 288. */
SIMD_ALWAYS_INLINE __m512 q5_0_terms(const uint8_t *x, const struct avx512_act_group *act)
{
    const __m512i c0 = avx512_load_kept(x), c64 = avx512_load_kept(x + 64);
    const __m512i c128 = avx512_load_kept(x + 128), c160 = avx512_load_kept(x + 160);
    const __m512i c224 = avx512_load_kept(x + 224), c288 = avx512_load_kept(x + 288);
    const __m512i codes = _mm512_load_si512(q5_0_codes_idx), qh = _mm512_load_si512(q5_0_qh_idx);
    /* quad q's codes and fifth bits from chunks (a, b), which start `words` before it */
#define Q5_0_QUAD(a, b, words, q)                                                                          \
    q5_0_quad_sums(_mm512_permutex2var_epi16(a, _mm512_add_epi16(codes, _mm512_set1_epi16(words)), b),   \
                   _mm512_permutex2var_epi16(a, _mm512_add_epi16(qh, _mm512_set1_epi16(words)), b), act->lo[q], \
                   act->hi[q])
    const __m512i cy = avx512_group_sums(Q5_0_QUAD(c0, c64, 0, 0), Q5_0_QUAD(c64, c128, 12, 1),
                                         Q5_0_QUAD(c160, c224, 8, 2), Q5_0_QUAD(c224, c288, 20, 3));
    const __m512i sumi = _mm512_sub_epi32(cy, _mm512_slli_epi32(act->sum, 4)); /* the offset 16 */
#undef Q5_0_QUAD
    const __m512i d01 = _mm512_mask_blend_epi16(Q5_0_D_AT_64, c0, c64);
    const __m512i d23 = _mm512_mask_blend_epi16(Q5_0_D_AT_160, c128, c160);
    const __m512i d03 = _mm512_mask_blend_epi16(Q5_0_D_AT_128 | Q5_0_D_AT_160, d01, d23);
    const __m512i d45 = _mm512_mask_blend_epi16(Q5_0_D_AT_288, c224, c288);
    const __m512i d05 = _mm512_mask_blend_epi16(Q5_0_D_AT_224 | Q5_0_D_AT_288, d03, d45);
    const __m512i dx = _mm512_permutexvar_epi16(_mm512_load_si512(q5_0_d_idx), d05);
    const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dx)), act->d);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sumi), d);
}

/* ---- kernels --------------------------------------------------------------- */

static void dequantize_row_q5_0_avx512(const void *vx, float *y, int64_t n)
{
    const block_q5_0 *x = vx;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i w = _mm256_sub_epi8(avx512_5bit_codes_32(x[i].qs, x[i].qh), _mm256_set1_epi8(16));
        avx512_store_scaled_i8x32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1),
                                  _mm512_set1_ps(_cvtsh_ss(x[i].d)), y + i * QK5_0);
    }
}

static void vec_dot_q5_0_q8_0_avx512(int n, float *s, const void *vx, const void *vy)
{
    *s = avx512_legacy_vec_dot(n / QK5_0, vx, sizeof(block_q5_0), vy, sizeof(block_q8_0),
                               avx512_act_group_q8_0, q5_0_terms);
}

static void vec_dot_q5_0_prepared_avx512(int n, float *s, const void *vx, const void *prepared)
{
    *s = avx512_legacy_vec_dot_prepared(n / QK5_0, vx, sizeof(block_q5_0), prepared, q5_0_terms);
}

void quarry_kernels_q5_0_avx512(struct quarry_type_traits *table)
{
    struct quarry_type_traits *t = &table[QUARRY_TYPE_Q5_0];
    t->to_float = dequantize_row_q5_0_avx512;
    t->vec_dot = vec_dot_q5_0_q8_0_avx512;
    t->act_prepared_size = avx512_legacy_prepared_size;
    t->act_prepare = avx512_prepare_q8_0;
    t->vec_dot_prepared = vec_dot_q5_0_prepared_avx512;
}
