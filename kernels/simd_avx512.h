/*
 * simd_avx512.h - AVX-512 (F/BW/VL/DQ/VNNI) building blocks shared by the
 * kernels/..._avx512.c files, on top of kernels/simd_avx2.h (which it
 * includes): masked tails, nibble unpacking, the 16-block group loop of the
 * legacy dot products (a group's q8_0 or q8_1 activations in the quad layout,
 * the reduction of the quads' sums, the fifth bits of q5_0/q5_1 as byte
 * masks), the q8_0/q8_1 block quantizer, the stores of dequantized blocks,
 * and the K-quant super-block loops and reductions.
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

/* ---- legacy quants: 16-block groups against q8_0 activations -------------- */
/*
 * The AVX-512 legacy dot products (q4_0, q5_0, q8_0 . q8_0; q4_1, q5_1 .
 * q8_1) take 16 blocks (a group) per step, in 512-bit vectors throughout:
 *   - a group's bytes are read as 64-byte chunks (where the group is not a
 *     whole number of chunks, the last one overlaps the one before, so that
 *     nothing past the group is read), and vpermt2w word permutes of two
 *     chunks pick out what the vectors need: codes, activations, fp16 scales;
 *   - quad q (blocks 4q..4q+3) is two vpdpbusd products (the quad layout):
 *     the activations 0..15 of block 4q+p in 128-bit lane p (lo) against the
 *     weight codes 0..15 in the same lanes, and likewise 16..31 (hi), so that
 *     lane p ends with 4 int32 partial sums of block 4q+p and nothing else
 *     (a constant code offset, like q4_0's 8, comes off after the reduction
 *     as offset * the block's sum of activations, see avx512_act_group);
 *   - two levels of in-lane unpack + add turn the four quads' vectors into
 *     the 16 block sums (avx512_group_sums), which come out transposed:
 *     int32 lane L holds block 4 (L mod 4) + L / 4 (the group lane order);
 *     the scales are gathered in the same order, so the terms
 *     (float)sumi * (fp16(x.d) * fp16(y.d)) [+ fp16(x.m) * fp16(y.s)] are
 *     formed lane by lane with the scalar's roundings, and one vector add per
 *     group puts them into a 16-lane accumulator whose lane L is fold lane
 *     4 (L mod 4) + L / 4 of the scalar reference (kernels/legacy_common.h);
 *   - a row's last, partial group is copied into zeroed buffers and goes
 *     through the same code: a zero block has zero scales and sumi = 0, so
 *     its term is +0.0f, which changes no lane;
 *   - at the end one permute puts fold lane j in lane j (the transpose is its
 *     own inverse), and the pairwise tree is the scalar's (legacy_fold_finish).
 * The integer sums are exact, so the result is the scalar reference's bit for
 * bit. For q4_0 a group is about 120 vector instructions (loads included),
 * where the 8-blocks-at-a-time 256-bit loop of kernels/simd_avx2.h (with
 * 128-bit scale gathers and 8x8 transposing reductions) took about 200.
 */

/* v, kept in a register: an empty asm statement the compiler cannot look
 * through. The chunks of a group are each read by several word permutes, and
 * vpermt2w overwrites one of its tables; without this GCC re-loads a chunk from
 * memory for every use rather than copying it, and the loads then bound the
 * loop. */
static inline __m512i avx512_keep(__m512i v)
{
    __asm__("" : "+v"(v));
    return v;
}

static inline __m512i avx512_load_kept(const uint8_t *p)
{
    return avx512_keep(_mm512_loadu_si512(p));
}

/* Permute indices of the group lane order: lane L holds block
 * 4 (L mod 4) + L / 4 (a 4x4 transpose, its own inverse). */
static const int32_t avx512_group_order[16] __attribute__((aligned(64))) = {
    0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

/* The integer sums of the 16 blocks of a group in the group lane order,
 * given the quads' vectors a0..a3 (128-bit lane p of a_q: 4 int32 partial
 * sums of block 4q+p): int32 lane 4p+q of the result is block 4q+p. */
static inline __m512i avx512_group_sums(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
    /* per 128-bit lane p: [a0[0]+a0[2], a1[0]+a1[2], a0[1]+a0[3], a1[1]+a1[3]] */
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    /* per 128-bit lane p: [sum a0, sum a1, sum a2, sum a3] */
    return _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
}

/* The activations of a group of 16 q8_0 blocks (544 bytes) in the quad
 * layout: lo[q] holds values 0..15 and hi[q] values 16..31 of block 4q+p in
 * 128-bit lane p; d holds the 16 fp16 scales in the group lane order. */
struct avx512_q8_0_group {
    __m512i lo[4], hi[4];
    __m256i d;
};

/* vpermt2w index of the pair of blocks 2m, 2m+1 (see avx512_q8_0_group_load)
 * relative to the 68 bytes at 68m: block 2m's 32 values are words 1..16,
 * block 2m+1's words 18..33. */
static const uint16_t avx512_q8_0_pair_idx[32] __attribute__((aligned(64))) = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33};

/* The same for the last pair (bytes 476..543), read from the chunks at 448
 * and 480: byte b is word (b - 448) / 2 of the first below 512 and word
 * (b - 480) / 2 of the second (index 32 + that) from 512 on. */
static const uint16_t avx512_q8_0_last_pair_idx[32] __attribute__((aligned(64))) = {
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* vpermw indices taking the d's out of the blended chunks (block 2m's d at
 * word 2m, block 2m+1's at word 2m + 17) in the group lane order: lane L
 * takes block b = 4 (L mod 4) + L / 4, word b (b even) or b + 16 (b odd). */
static const uint16_t avx512_q8_0_d_idx[32] __attribute__((aligned(64))) = {
    0, 4, 8, 12, 17, 21, 25, 29, 2, 6, 10, 14, 19, 23, 27, 31};

/* Chunk m is the 64 bytes at 64m (m = 0..7); the pair of blocks 2m, 2m+1
 * (bytes 68m..68m+67) lies in chunks m and m+1, 4m bytes into chunk m, and one
 * vpermt2w gives [the 32 values of block 2m | those of block 2m+1]. The last
 * pair takes the group's last 64 bytes (at 480) for its second chunk, so
 * nothing past the group is read. Two 128-bit shuffles of the pairs of a quad
 * give its lo and hi vectors. Block 2m's d is word 2m of chunk m and block
 * 2m+1's word 2m + 17: all at different word positions, so a tree of 7 word
 * blends collects them into one vector and a vpermw puts them in the group
 * lane order. */
SIMD_ALWAYS_INLINE struct avx512_q8_0_group avx512_q8_0_group_load(const uint8_t *y)
{
    const __m512i c0 = avx512_load_kept(y), c1 = avx512_load_kept(y + 64);
    const __m512i c2 = avx512_load_kept(y + 128), c3 = avx512_load_kept(y + 192);
    const __m512i c4 = avx512_load_kept(y + 256), c5 = avx512_load_kept(y + 320);
    const __m512i c6 = avx512_load_kept(y + 384), c7 = avx512_load_kept(y + 448);
    const __m512i end = avx512_load_kept(y + 480);
    const __m512i idx = _mm512_load_si512(avx512_q8_0_pair_idx);
    /* the pair in chunks (a, b), 2m words into a */
#define AVX512_Q8_0_PAIR(a, b, words) \
    _mm512_permutex2var_epi16(a, _mm512_add_epi16(idx, _mm512_set1_epi16(words)), b)
    const __m512i p0 = AVX512_Q8_0_PAIR(c0, c1, 0), p1 = AVX512_Q8_0_PAIR(c1, c2, 2);
    const __m512i p2 = AVX512_Q8_0_PAIR(c2, c3, 4), p3 = AVX512_Q8_0_PAIR(c3, c4, 6);
    const __m512i p4 = AVX512_Q8_0_PAIR(c4, c5, 8), p5 = AVX512_Q8_0_PAIR(c5, c6, 10);
    const __m512i p6 = AVX512_Q8_0_PAIR(c6, c7, 12);
#undef AVX512_Q8_0_PAIR
    const __m512i p7 = _mm512_permutex2var_epi16(c7, _mm512_load_si512(avx512_q8_0_last_pair_idx), end);
    struct avx512_q8_0_group g;
    /* 128-bit lanes 0, 2 (values 0..15 of each block) and 1, 3 (16..31) */
    g.lo[0] = _mm512_shuffle_i64x2(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[0] = _mm512_shuffle_i64x2(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[1] = _mm512_shuffle_i64x2(p2, p3, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[1] = _mm512_shuffle_i64x2(p2, p3, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[2] = _mm512_shuffle_i64x2(p4, p5, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[2] = _mm512_shuffle_i64x2(p4, p5, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[3] = _mm512_shuffle_i64x2(p6, p7, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[3] = _mm512_shuffle_i64x2(p6, p7, _MM_SHUFFLE(3, 1, 3, 1));
    /* the mask of chunk m's two d words */
#define AVX512_Q8_0_D(m) ((1u << (2 * (m))) | (1u << (2 * (m) + 17)))
    const __m512i d01 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(1), c0, c1);
    const __m512i d23 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(3), c2, c3);
    const __m512i d45 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(5), c4, c5);
    const __m512i d67 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(7), c6, c7);
    const __m512i d03 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(2) | AVX512_Q8_0_D(3), d01, d23);
    const __m512i d47 = _mm512_mask_blend_epi16(AVX512_Q8_0_D(6) | AVX512_Q8_0_D(7), d45, d67);
    const __m512i d07 = _mm512_mask_blend_epi16(
        AVX512_Q8_0_D(4) | AVX512_Q8_0_D(5) | AVX512_Q8_0_D(6) | AVX512_Q8_0_D(7), d03, d47);
#undef AVX512_Q8_0_D
    g.d = _mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_load_si512(avx512_q8_0_d_idx), d07));
    return g;
}

/* ---- legacy quants: 16-block groups against q8_1 activations -------------- */
/*
 * q4_1 and q5_1 take q8_1 activations (36-byte blocks: d, s, 32 values); a
 * group of 16 is 576 bytes, exactly 9 chunks. The same layout as above, with
 * s (the fp16 of d * sum(values)) gathered beside d for the min term.
 */

/* The activations of a group of 16 q8_1 blocks in the quad layout (as
 * struct avx512_q8_0_group), d and s in the group lane order. */
struct avx512_q8_1_group {
    __m512i lo[4], hi[4];
    __m256i d, s;
};

/* vpermt2w index of the pair of blocks 2m, 2m+1 relative to the 72 bytes at
 * 72m: block 2m's 32 values are words 2..17, block 2m+1's words 20..35. */
static const uint16_t avx512_q8_1_pair_idx[32] __attribute__((aligned(64))) = {
    2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17,
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};

/* vpermw indices of d and s out of the blended chunks (block b's (d, s)
 * dword at dword b for b even, (b + 8) mod 16 for b odd), in the group lane
 * order (lane L: block 4 (L mod 4) + L / 4). */
static const uint16_t avx512_q8_1_d_idx[32] __attribute__((aligned(64))) = {
    0, 8, 16, 24, 18, 26, 2, 10, 4, 12, 20, 28, 22, 30, 6, 14};
static const uint16_t avx512_q8_1_s_idx[32] __attribute__((aligned(64))) = {
    1, 9, 17, 25, 19, 27, 3, 11, 5, 13, 21, 29, 23, 31, 7, 15};

/* Chunk m is the 64 bytes at 64m (m = 0..8); the pair of blocks 2m, 2m+1
 * (bytes 72m..72m+71) lies in chunks m and m+1, 8m bytes into chunk m, and one
 * vpermt2w gives [the 32 values of block 2m | those of block 2m+1]; two
 * 128-bit shuffles of the pairs of a quad give its lo and hi vectors. The
 * (d, s) dword of block b (at 36b) is dword b of chunk b / 2 for b even, and
 * for b odd dword b + 8 of chunk b / 2 (b < 8) or dword b - 8 of chunk
 * b / 2 + 1 (b > 8): 16 different dword positions, so a tree of 8 dword
 * blends collects them into one vector, and two vpermw split it into d and s
 * in the group lane order. */
SIMD_ALWAYS_INLINE struct avx512_q8_1_group avx512_q8_1_group_load(const uint8_t *y)
{
    const __m512i c0 = avx512_load_kept(y), c1 = avx512_load_kept(y + 64);
    const __m512i c2 = avx512_load_kept(y + 128), c3 = avx512_load_kept(y + 192);
    const __m512i c4 = avx512_load_kept(y + 256), c5 = avx512_load_kept(y + 320);
    const __m512i c6 = avx512_load_kept(y + 384), c7 = avx512_load_kept(y + 448);
    const __m512i c8 = avx512_load_kept(y + 512);
    const __m512i idx = _mm512_load_si512(avx512_q8_1_pair_idx);
    /* the pair in chunks (a, b), 4m words into a */
#define AVX512_Q8_1_PAIR(a, b, words) \
    _mm512_permutex2var_epi16(a, _mm512_add_epi16(idx, _mm512_set1_epi16(words)), b)
    const __m512i p0 = AVX512_Q8_1_PAIR(c0, c1, 0), p1 = AVX512_Q8_1_PAIR(c1, c2, 4);
    const __m512i p2 = AVX512_Q8_1_PAIR(c2, c3, 8), p3 = AVX512_Q8_1_PAIR(c3, c4, 12);
    const __m512i p4 = AVX512_Q8_1_PAIR(c4, c5, 16), p5 = AVX512_Q8_1_PAIR(c5, c6, 20);
    const __m512i p6 = AVX512_Q8_1_PAIR(c6, c7, 24), p7 = AVX512_Q8_1_PAIR(c7, c8, 28);
#undef AVX512_Q8_1_PAIR
    struct avx512_q8_1_group g;
    g.lo[0] = _mm512_shuffle_i64x2(p0, p1, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[0] = _mm512_shuffle_i64x2(p0, p1, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[1] = _mm512_shuffle_i64x2(p2, p3, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[1] = _mm512_shuffle_i64x2(p2, p3, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[2] = _mm512_shuffle_i64x2(p4, p5, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[2] = _mm512_shuffle_i64x2(p4, p5, _MM_SHUFFLE(3, 1, 3, 1));
    g.lo[3] = _mm512_shuffle_i64x2(p6, p7, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi[3] = _mm512_shuffle_i64x2(p6, p7, _MM_SHUFFLE(3, 1, 3, 1));
    /* the (d, s) dwords of chunk m: 0x201 << 2m (m = 0..3), 0x100 (m = 4),
     * 0x402 << 2 (m - 5) (m = 5..7), 0x080 (m = 8) */
    const __m512i t01 = _mm512_mask_blend_epi32(0x0804, c0, c1);
    const __m512i t23 = _mm512_mask_blend_epi32(0x8040, c2, c3);
    const __m512i t45 = _mm512_mask_blend_epi32(0x0402, c4, c5);
    const __m512i t67 = _mm512_mask_blend_epi32(0x4020, c6, c7);
    const __m512i t03 = _mm512_mask_blend_epi32(0x2010 | 0x8040, t01, t23);
    const __m512i t47 = _mm512_mask_blend_epi32(0x1008 | 0x4020, t45, t67);
    const __m512i t07 = _mm512_mask_blend_epi32(0x0100 | 0x0402 | 0x1008 | 0x4020, t03, t47);
    const __m512i ds = _mm512_mask_blend_epi32(0x0080, t07, c8);
    g.d = _mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_load_si512(avx512_q8_1_d_idx), ds));
    g.s = _mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_load_si512(avx512_q8_1_s_idx), ds));
    return g;
}

/* The 5-bit codes (0..31) of a quad of q5_0 / q5_1 blocks as unsigned bytes
 * of the quad layout: *lo values 0..15 of each block, *hi values 16..31,
 * given the quad's code bytes (block p's 16 in 128-bit lane p) and qh with
 * block p's 32 fifth bits in the first dword of lane p. Bit j of the fifth
 * bits adds 16 to value j: vpshufb spreads each byte of them over 8 bytes,
 * and vptestmb against 1, 2, 4, ..., 128 picks bit j out of byte j, giving
 * the byte masks of the adds. */
static inline void avx512_quad_5bit_codes(__m512i codes, __m512i qh, __m512i *lo, __m512i *hi)
{
    const __m512i bit = _mm512_set1_epi64((long long)0x8040201008040201ULL);
    const __m512i spread_lo = _mm512_set4_epi64(0x0101010101010101LL, 0, 0x0101010101010101LL, 0);
    const __m512i spread_hi = _mm512_set4_epi64(0x0303030303030303LL, 0x0202020202020202LL,
                                                0x0303030303030303LL, 0x0202020202020202LL);
    const __mmask64 bits_lo = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, spread_lo), bit);
    const __mmask64 bits_hi = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, spread_hi), bit);
    const __m512i low4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    const __m512i l = _mm512_and_si512(codes, low4);
    const __m512i h = _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4);
    *lo = _mm512_mask_add_epi8(l, bits_lo, l, sixteen);
    *hi = _mm512_mask_add_epi8(h, bits_hi, h, sixteen);
}

/* The 32 codes (0..31) of one q5_0 / q5_1 block in weight order, from its 16
 * code bytes and its 4 bytes of fifth bits (bit j adds 16 to weight j). */
static inline __m256i avx512_5bit_codes_32(const uint8_t *qs, const uint8_t *qh)
{
    const __m256i q = avx512_nibbles_32(qs);
    return _mm256_mask_add_epi8(q, (__mmask32)simd_load_u32(qh), q, _mm256_set1_epi8(16));
}

/* ---- legacy quants: activations prepared once per matrix product ----------- */
/*
 * Every weight row of a matrix product meets the same activation row, so the
 * work of putting a group's activations into the quad layout (nine loads,
 * eight vpermt2w, eight 128-bit shuffles, the scale gathers) and the
 * activation-only terms of the sums are done once per activation row rather
 * than once per weight row: struct avx512_act_group is a group of 16 q8_0 or
 * q8_1 blocks ready for the dot products. The `sum` lanes hold each block's
 * sum of values, so a constant code offset o (q4_0's 8, q5_0's 16, the 128 of
 * q8_0's biased codes) costs one shift and one subtraction per group:
 *     sum_j (c_j - o) * y_j = sum_j c_j * y_j - o * sum_j y_j,
 * exact in int32 like the rest. The scales are stored as floats (the fp16
 * values converted exactly), so the terms keep the scalar's roundings and the
 * prepared dot product equals the unprepared one bit for bit. The unprepared
 * kernels build the same struct in registers (avx512_act_group_q8_0 / _q8_1)
 * and share the weight side with the prepared ones.
 */
struct avx512_act_group {
    __m512i lo[4], hi[4]; /* the quad layout (struct avx512_q8_0_group) */
    __m512i sum;          /* q8_0: each block's sum of values; q8_1: zero (unused) */
    __m512 d, s;          /* the fp16 d (and q8_1's s) as floats; s zero for q8_0 */
};                        /* group lane order throughout; 704 bytes */

/* The value sums of a quad's blocks (lane p: 4 partial sums of block p). */
static inline __m512i avx512_quad_value_sums(__m512i lo, __m512i hi)
{
    const __m512i one = _mm512_set1_epi8(1);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, lo), one, hi);
}

/* Written out vector by vector, without loops over the arrays: GCC keeps the
 * struct in registers then, where loops (or array arguments) made it go
 * through the stack and halved the speed of the unprepared dot products. */
SIMD_ALWAYS_INLINE struct avx512_act_group avx512_act_group_q8_0(const uint8_t *y)
{
    const struct avx512_q8_0_group g = avx512_q8_0_group_load(y);
    struct avx512_act_group a = {
        .lo = {g.lo[0], g.lo[1], g.lo[2], g.lo[3]},
        .hi = {g.hi[0], g.hi[1], g.hi[2], g.hi[3]},
        .sum = avx512_group_sums(avx512_quad_value_sums(g.lo[0], g.hi[0]),
                                 avx512_quad_value_sums(g.lo[1], g.hi[1]),
                                 avx512_quad_value_sums(g.lo[2], g.hi[2]),
                                 avx512_quad_value_sums(g.lo[3], g.hi[3])),
        .d = _mm512_cvtph_ps(g.d),
        .s = _mm512_setzero_ps(),
    };
    return a;
}

SIMD_ALWAYS_INLINE struct avx512_act_group avx512_act_group_q8_1(const uint8_t *y)
{
    const struct avx512_q8_1_group g = avx512_q8_1_group_load(y);
    struct avx512_act_group a = {
        .lo = {g.lo[0], g.lo[1], g.lo[2], g.lo[3]},
        .hi = {g.hi[0], g.hi[1], g.hi[2], g.hi[3]},
        .sum = _mm512_setzero_si512(),
        .d = _mm512_cvtph_ps(g.d),
        .s = _mm512_cvtph_ps(g.s),
    };
    return a;
}

/* the 16 terms of the group of weight blocks at x against prepared activations */
typedef __m512 (*avx512_legacy_terms_fn)(const uint8_t *x, const struct avx512_act_group *a);
typedef struct avx512_act_group (*avx512_act_group_fn)(const uint8_t *y);

/* The largest block of either side (q8_0: 34 bytes, q8_1: 36). */
#define AVX512_LEGACY_MAX_BLOCK 36

/* Bytes of a prepared activation row of k values (whole groups; 64-aligned). */
static inline size_t avx512_legacy_prepared_size(int64_t k)
{
    return (size_t)((k / 32 + 15) / 16) * sizeof(struct avx512_act_group);
}

/* Prepares the activation row vy (k / 32 blocks of y_bytes) into out, which is
 * 64-byte aligned and avx512_legacy_prepared_size(k) bytes; a last, partial
 * group is read from a zeroed copy (zero blocks: zero values, sums, scales). */
SIMD_ALWAYS_INLINE void avx512_legacy_prepare(int64_t k, const void *vy, size_t y_bytes, void *out,
                                              avx512_act_group_fn load)
{
    const uint8_t *y = vy;
    struct avx512_act_group *g = out;
    const int64_t nb = k / 32;
    int64_t i = 0;
    for (; i + 16 <= nb; i += 16)
        *g++ = load(y + (size_t)i * y_bytes);
    if (i < nb) {
        _Alignas(64) uint8_t yt[16 * AVX512_LEGACY_MAX_BLOCK] = {0};
        memcpy(yt, y + (size_t)i * y_bytes, (size_t)(nb - i) * y_bytes);
        *g = load(yt);
    }
}

/* act_prepare of the traits for q8_0 and q8_1 activations, defined once (in
 * q8_0_avx512.c and q8_1_avx512.c) so that every weight type with the same
 * activations has the same function: matmul shares one prepared X between
 * products whose act_prepare is the same. */
void avx512_prepare_q8_0(int64_t k, const void *vy, void *prepared);
void avx512_prepare_q8_1(int64_t k, const void *vy, void *prepared);

/* The 16 fold lanes of acc in order and the scalar's pairwise tree. */
static inline float avx512_legacy_finish(__m512 acc)
{
    acc = _mm512_permutexvar_ps(_mm512_load_si512(avx512_group_order), acc); /* lane j: fold lane j */
    return legacy_fold_finish(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
}

/* acc plus the terms of nb weight blocks (x_bytes each) 16 at a time against
 * the prepared activations a, group after group; the last, partial group of
 * weights (1..15 blocks) is copied into a zeroed buffer first (a zero block
 * against a zero activation block: sumi = 0 and a zero scale, so its term is
 * +0.0f, which changes no lane). terms gives the group's terms in the group
 * lane order. */
SIMD_ALWAYS_INLINE __m512 avx512_legacy_accumulate(__m512 acc, int64_t nb, const uint8_t *x,
                                                   size_t x_bytes, const struct avx512_act_group *a,
                                                   avx512_legacy_terms_fn terms)
{
    int64_t i = 0;
    for (; i + 16 <= nb; i += 16)
        acc = _mm512_add_ps(acc, terms(x + (size_t)i * x_bytes, a++));
    if (i < nb) {
        _Alignas(64) uint8_t xt[16 * AVX512_LEGACY_MAX_BLOCK] = {0};
        memcpy(xt, x + (size_t)i * x_bytes, (size_t)(nb - i) * x_bytes);
        acc = _mm512_add_ps(acc, terms(xt, a));
    }
    return acc;
}

/* The dot product of nb weight blocks against prepared activations. */
SIMD_ALWAYS_INLINE float avx512_legacy_vec_dot_prepared(int nb, const void *vx, size_t x_bytes,
                                                        const struct avx512_act_group *a,
                                                        avx512_legacy_terms_fn terms)
{
    return avx512_legacy_finish(avx512_legacy_accumulate(_mm512_setzero_ps(), nb, vx, x_bytes, a, terms));
}

/* The same against raw activation blocks (y_bytes each), each group's
 * activations prepared in registers beside the weights' unpacking: the same
 * terms added in the same order, so the same bits. (Preparing a few groups
 * at a time into a stack buffer instead measured slower for q4_0, q4_1 and
 * q5_0; the matrix products use the prepared form anyway.) */
SIMD_ALWAYS_INLINE float avx512_legacy_vec_dot(int nb, const void *vx, size_t x_bytes, const void *vy,
                                               size_t y_bytes, avx512_act_group_fn load,
                                               avx512_legacy_terms_fn terms)
{
    const uint8_t *x = vx, *y = vy;
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= nb; i += 16) {
        const struct avx512_act_group a = load(y + (size_t)i * y_bytes);
        acc = _mm512_add_ps(acc, terms(x + (size_t)i * x_bytes, &a));
    }
    if (i < nb) {
        _Alignas(64) uint8_t xt[16 * AVX512_LEGACY_MAX_BLOCK] = {0};
        _Alignas(64) uint8_t yt[16 * AVX512_LEGACY_MAX_BLOCK] = {0};
        memcpy(xt, x + (size_t)i * x_bytes, (size_t)(nb - i) * x_bytes);
        memcpy(yt, y + (size_t)i * y_bytes, (size_t)(nb - i) * y_bytes);
        const struct avx512_act_group a = load(yt);
        acc = _mm512_add_ps(acc, terms(xt, &a));
    }
    return avx512_legacy_finish(acc);
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

/* One group of count (1..4) super-blocks of avx512_kq_vec_dot_min; the
 * loops below call it with a constant 4 for whole groups, so the branches on
 * count compile away there (they cost a third of q4_K's time). */
SIMD_ALWAYS_INLINE float avx512_kq_group_min(float sumf, int count, const uint8_t *xb, size_t x_bytes,
                                             size_t d_offset, const block_q8_K *y, const void *consts,
                                             avx512_kq_sums_min_fn sums)
{
    const __m512i zero = _mm512_setzero_si512();
    __m128i m0, m1 = _mm_setzero_si128(), m2 = _mm_setzero_si128(), m3 = _mm_setzero_si128();
    const __m512i a0 = sums(xb, y, consts, &m0);
    const __m512i a1 = count > 1 ? sums(xb + x_bytes, y + 1, consts, &m1) : zero;
    const __m512i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + 2, consts, &m2) : zero;
    const __m512i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + 3, consts, &m3) : zero;
    return kq_fold4_min(sumf, avx512_kq_reduce4_min(a0, a1, a2, a3, m0, m1, m2, m3),
                        kq_scales4_min(xb + d_offset, x_bytes, y, count), count);
}

/* avx2_kq_vec_dot_min with 16-lane accumulators. */
SIMD_ALWAYS_INLINE float avx512_kq_vec_dot_min(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                               const block_q8_K *y, const void *consts, avx512_kq_sums_min_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    int i = 0;
    for (; i + 4 <= nb; i += 4)
        sumf = avx512_kq_group_min(sumf, 4, x + i * x_bytes, x_bytes, d_offset, y + i, consts, sums);
    if (i < nb)
        sumf = avx512_kq_group_min(sumf, nb - i, x + i * x_bytes, x_bytes, d_offset, y + i, consts, sums);
    return sumf;
}

/* One group of count (1..4) super-blocks of avx512_kq_vec_dot (see
 * avx512_kq_group_min). */
SIMD_ALWAYS_INLINE float avx512_kq_group(float sumf, int count, const uint8_t *xb, size_t x_bytes,
                                         size_t d_offset, const block_q8_K *y, const void *consts,
                                         avx512_kq_sums_fn sums)
{
    const __m512i zero = _mm512_setzero_si512();
    const __m512i a0 = sums(xb, y, consts);
    const __m512i a1 = count > 1 ? sums(xb + x_bytes, y + 1, consts) : zero;
    const __m512i a2 = count > 2 ? sums(xb + 2 * x_bytes, y + 2, consts) : zero;
    const __m512i a3 = count > 3 ? sums(xb + 3 * x_bytes, y + 3, consts) : zero;
    return kq_fold4(sumf, avx512_kq_reduce4(a0, a1, a2, a3), kq_scales4(xb + d_offset, x_bytes, y, count), count);
}

/* avx2_kq_vec_dot with 16-lane accumulators. */
SIMD_ALWAYS_INLINE float avx512_kq_vec_dot(int nb, const void *vx, size_t x_bytes, size_t d_offset,
                                           const block_q8_K *y, const void *consts, avx512_kq_sums_fn sums)
{
    const uint8_t *x = vx;
    float sumf = 0.0f;
    int i = 0;
    for (; i + 4 <= nb; i += 4)
        sumf = avx512_kq_group(sumf, 4, x + i * x_bytes, x_bytes, d_offset, y + i, consts, sums);
    if (i < nb)
        sumf = avx512_kq_group(sumf, nb - i, x + i * x_bytes, x_bytes, d_offset, y + i, consts, sums);
    return sumf;
}

#endif
