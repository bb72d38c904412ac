/*
 * matmul_qgemm_avx512.c - the quantized GEMM of matmul_qgemm.h with AVX-512
 * VNNI: packing 16 weight rows into a strip, and the kernels that multiply a
 * strip with tiles of activation rows.
 *
 * Strip layout, per block (legacy types, 32 weights, in the order their fold
 * visits them: legacy_position) or super-block (K-quants, 256 weights, in
 * order):
 *   legacy  quants 8 x 64 B (vector t: weights 4t..4t+3 of rows 0..15, as
 *           unsigned bytes u), d[16] (float), m[16] (float; q4_1/q5_1's min)
 *   K       quants 64 x 64 B, sc[16][16] (int32 sub-block scales),
 *           corr[8][16] (int16 pairs: coefficients c[2p], c[2p+1] for the
 *           q8_K sums bsums[2p], bsums[2p+1]), d[16], dmin[16] (float)
 *
 * How each type maps onto u (value = u - zp, or d*sc*u - dmin*m):
 *   q4_0 u = code, zp 8      q5_0 u = code, zp 16     q8_0 u = q + 128, zp 128
 *   q4_1, q5_1 u = code, min term fp16(m) * fp16(y.s)
 *   q4_K, q5_K u = code; corr = (m[j], m[j]) against (bsums[2j], bsums[2j+1])
 *   q2_K       u = code; corr = (m[2p], m[2p+1])
 *   q6_K       u = code (0..63), zp 32; corr = 32*sc
 *   q3_K       u = low 2 bits + 4*high bit (0..7), zp 4; corr = 4*sc
 * so the integer sums equal the scalar vec_dot's exactly:
 *   legacy zp:  sumi = sum u*q8 - zp*sum q8   (the second term comes with the
 *               activation's side data, as the accumulator's start value)
 *   K:          isum = sum_j sc[j]*(sum u*q8 over sub-block j), then
 *               isum - corr (q3_K, q6_K) or isum_m = corr (mins).
 * The float folding then repeats each scalar reference's operations (see
 * kernels/<type>.c) lane by lane: per super-block in order for the K-quants,
 * the 16 running sums and the pairwise tree of legacy_common.h for the
 * legacy types.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kquant_common.h"
#include "kernels/legacy_common.h"
#include "kernels/matmul_qgemm.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* legacy block in a strip */
#define LG_Q 0
#define LG_D 512
#define LG_M 576
#define LG_BYTES 640
/* K super-block in a strip */
#define KQ_Q 0
#define KQ_SC 4096
#define KQ_CORR 5120
#define KQ_D 5632
#define KQ_DM 5696
#define KQ_BYTES 5760

#define TILE 8 /* activation rows per kernel call */

/* offsets inside a q8_K block (float d, int8 qs[256], int16 bsums[16]) */
#define Q8K_QS 4
#define Q8K_BSUMS 260

enum family {
    FAM_NONE = 0,
    FAM_LEGACY_ZP,   /* q4_0, q5_0, q8_0 . q8_0 */
    FAM_LEGACY_MIN,  /* q4_1, q5_1 . q8_1 */
    FAM_K32_MIN,     /* q4_K, q5_K: 8 sub-blocks of 32, mins */
    FAM_K16_MIN,     /* q2_K: 16 sub-blocks of 16, mins */
    FAM_K16_ZP,      /* q3_K, q6_K: 16 sub-blocks of 16, offset folded into isum */
};

static enum family family_of(enum quarry_type t)
{
    switch (t) {
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q8_0: return FAM_LEGACY_ZP;
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q5_1: return FAM_LEGACY_MIN;
    case QUARRY_TYPE_Q4_K:
    case QUARRY_TYPE_Q5_K: return FAM_K32_MIN;
    case QUARRY_TYPE_Q2_K: return FAM_K16_MIN;
    case QUARRY_TYPE_Q3_K:
    case QUARRY_TYPE_Q6_K: return FAM_K16_ZP;
    default: return FAM_NONE;
    }
}

static int is_legacy(enum family f) { return f == FAM_LEGACY_ZP || f == FAM_LEGACY_MIN; }

/* Legacy blocks are stored in the order the fold visits them (see
 * legacy_tile): sum s takes blocks s, s + 16, s + 32, ..., so block b sits at
 * position (b % 16) * per_sum + b / 16, per_sum = ceil(nb / 16). Positions of
 * the sums with fewer blocks stay unused. */
static int64_t legacy_per_sum(int64_t nb) { return (nb + LQ_FOLD_LANES - 1) / LQ_FOLD_LANES; }
static int64_t legacy_positions(int64_t nb) { return LQ_FOLD_LANES * legacy_per_sum(nb); }
static int64_t legacy_position(int64_t b, int64_t nb)
{
    return (b % LQ_FOLD_LANES) * legacy_per_sum(nb) + b / LQ_FOLD_LANES;
}

size_t quarry_qgemm_strip_bytes(enum quarry_type t, int64_t k)
{
    const enum family f = family_of(t);
    if (f == FAM_NONE)
        return 0;
    return is_legacy(f) ? (size_t)legacy_positions(k / 32) * LG_BYTES
                        : (size_t)(k / QK_K) * KQ_BYTES;
}

/* ---- activations (legacy types) --------------------------------------------
 *
 * The legacy kernels read their activations repacked per row, in the strip's
 * block order (legacy_position), 40 bytes per block: the 32 quants of the
 * q8_0 / q8_1 block, the scale fp16(y.d) as a float, and -zp*sum(q) (int32;
 * q4_0, q5_0, q8_0) or fp16(y.s) (float; q4_1, q5_1). The K-quants read their
 * q8_K rows as they are. */
struct lg_act {
    int8_t qs[32];
    float d;
    union {
        int32_t neg_zp_sum;
        float s;
    } u;
};
_Static_assert(sizeof(struct lg_act) == 40, "lg_act is 40 bytes");

static int legacy_zero_point(enum quarry_type t)
{
    switch (t) {
    case QUARRY_TYPE_Q4_0: return 8;
    case QUARRY_TYPE_Q5_0: return 16;
    case QUARRY_TYPE_Q8_0: return 128;
    default: return 0;
    }
}

size_t quarry_qgemm_act_bytes(enum quarry_type t, int64_t k)
{
    return is_legacy(family_of(t)) ? (size_t)legacy_positions(k / 32) * sizeof(struct lg_act) : 0;
}

void quarry_qgemm_act(enum quarry_type t, const void *xq_row, int64_t k, void *act_row)
{
    struct lg_act *out = act_row;
    const int64_t nb = k / 32;
    if (family_of(t) == FAM_LEGACY_ZP) {
        const block_q8_0 *y = xq_row;
        const int zp = legacy_zero_point(t);
        for (int64_t b = 0; b < nb; b++) {
            struct lg_act *o = &out[legacy_position(b, nb)];
            int32_t sum = 0;
            for (int j = 0; j < 32; j++)
                sum += y[b].qs[j];
            memcpy(o->qs, y[b].qs, 32);
            o->d = quarry_fp16_to_fp32(y[b].d);
            o->u.neg_zp_sum = -zp * sum;
        }
    } else if (family_of(t) == FAM_LEGACY_MIN) {
        const block_q8_1 *y = xq_row;
        for (int64_t b = 0; b < nb; b++) {
            struct lg_act *o = &out[legacy_position(b, nb)];
            memcpy(o->qs, y[b].qs, 32);
            o->d = quarry_fp16_to_fp32(y[b].d);
            o->u.s = quarry_fp16_to_fp32(y[b].s);
        }
    }
}

/* ---- packing ---------------------------------------------------------------
 *
 * Every type is packed the same way: the raw bytes of 16 rows are loaded as
 * 16 vectors and transposed as 16 x 16 dwords, so that vector t holds dword t
 * of every row; because each type keeps 4 consecutive weights' bits in one
 * dword of its arrays, the unsigned bytes u of 4 consecutive weights of all
 * 16 rows then come out of one or two transposed vectors with lane-parallel
 * shifts and masks. Per-row parameters (fp16 scales, K-quant sub-block scales
 * and mins) are gathered one dword per row and decoded lane by lane. Rows >=
 * rows are zero. */

/* Transposes a[16] (16 rows x 16 dwords) into out[t] = dword t of every row. */
static ALWAYS_INLINE void transpose16(const __m512i a_in[16], __m512i out[16])
{
    __m512i a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
        b[i] = _mm512_unpacklo_epi32(a_in[i], a_in[i + 1]);
        b[i + 1] = _mm512_unpackhi_epi32(a_in[i], a_in[i + 1]);
    }
    /* b[2g], b[2g+1]: rows 2g, 2g+1 interleaved (dwords 0,1 / 2,3 of each lane) */
    for (int g = 0; g < 16; g += 4) {
        a[g + 0] = _mm512_unpacklo_epi64(b[g], b[g + 2]);
        a[g + 1] = _mm512_unpackhi_epi64(b[g], b[g + 2]);
        a[g + 2] = _mm512_unpacklo_epi64(b[g + 1], b[g + 3]);
        a[g + 3] = _mm512_unpackhi_epi64(b[g + 1], b[g + 3]);
    }
    /* a[4g + e], 128-bit lane L: rows 4g..4g+3, dword 4L + e */
    for (int e = 0; e < 4; e++) {
        const __m512i x0 = _mm512_shuffle_i32x4(a[e], a[4 + e], 0x88);
        const __m512i x1 = _mm512_shuffle_i32x4(a[e], a[4 + e], 0xDD);
        const __m512i y0 = _mm512_shuffle_i32x4(a[8 + e], a[12 + e], 0x88);
        const __m512i y1 = _mm512_shuffle_i32x4(a[8 + e], a[12 + e], 0xDD);
        out[e] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        out[8 + e] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
        out[4 + e] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        out[12 + e] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
    }
}

/* Loads 64 bytes at p + off of rows 0..rows-1 (row stride rs) and transposes
 * them: out[t] = dword t of each row. */
static ALWAYS_INLINE void load_t64(const uint8_t *p, size_t rs, int rows, size_t off,
                                   __m512i out[16])
{
    __m512i a[16];
    for (int r = 0; r < 16; r++)
        a[r] = r < rows ? _mm512_loadu_si512(p + (size_t)r * rs + off) : _mm512_setzero_si512();
    transpose16(a, out);
}

/* The same for 32 bytes (out[0..7] valid, out[8..15] zero). */
static ALWAYS_INLINE void load_t32(const uint8_t *p, size_t rs, int rows, size_t off,
                                   __m512i out[16])
{
    __m512i a[16];
    for (int r = 0; r < 16; r++)
        a[r] = r < rows ? _mm512_castsi256_si512(
                              _mm256_loadu_si256((const __m256i *)(p + (size_t)r * rs + off)))
                        : _mm512_setzero_si512();
    for (int r = 0; r < 16; r++)
        a[r] = _mm512_maskz_mov_epi32(0x00FF, a[r]);
    transpose16(a, out);
}

/* Reading one dword of each of the 16 rows: a gather with byte offsets
 * r * row stride (int32, so only for strides below 2^31 / 16; beyond that,
 * 16 plain loads). Lanes r >= rows read nothing and are 0. */
struct rows16 {
    size_t rs;
    int rows;
    __mmask16 live;
    int gather;
    __m512i idx;
};

static struct rows16 rows16_init(size_t rs, int rows)
{
    struct rows16 g = {.rs = rs, .rows = rows, .live = (__mmask16)((1u << rows) - 1),
                       .gather = rs <= (size_t)INT32_MAX / 16};
    g.idx = g.gather ? _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                            12, 13, 14, 15),
                                          _mm512_set1_epi32((int)rs))
                     : _mm512_setzero_si512();
    return g;
}

static ALWAYS_INLINE __m512i rows_u32(const struct rows16 *g, const uint8_t *p, size_t off)
{
    if (g->gather)
        return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), g->live, g->idx, p + off, 1);
    _Alignas(64) uint32_t v[16] = {0};
    for (int r = 0; r < g->rows; r++)
        memcpy(&v[r], p + (size_t)r * g->rs + off, sizeof v[r]);
    return _mm512_load_si512(v);
}

/* fp16 in the low / high half of each dword lane, as floats */
static ALWAYS_INLINE __m512 fp16_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
static ALWAYS_INLINE __m512 fp16_hi(__m512i v) { return fp16_lo(_mm512_srli_epi32(v, 16)); }

static ALWAYS_INLINE __m512i and8(__m512i v, int mask) { return _mm512_and_si512(v, _mm512_set1_epi8((char)mask)); }
static ALWAYS_INLINE __m512i and32(__m512i v, int mask) { return _mm512_and_si512(v, _mm512_set1_epi32(mask)); }

/* Byte i (0..3) of each dword lane, zero- or sign-extended. */
static ALWAYS_INLINE __m512i byte_u(__m512i v, int i) { return and32(_mm512_srli_epi32(v, 8 * i), 0xFF); }
static ALWAYS_INLINE __m512i byte_s(__m512i v, int i) { return _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * i), 24); }

/* (lo & 0xFFFF) | hi << 16: an int16 pair in each lane */
static ALWAYS_INLINE __m512i pair16(__m512i lo, __m512i hi)
{
    return _mm512_or_si512(and32(lo, 0xFFFF), _mm512_slli_epi32(hi, 16));
}

/* Bits 0..3 of each dword to bit 4 of its bytes 0..3 (the fifth bits of 4
 * consecutive q5 weights). */
static ALWAYS_INLINE __m512i spread4_to_bit4(__m512i x)
{
    const __m512i v = _mm512_mullo_epi32(and32(x, 0xF), _mm512_set1_epi32(0x00204081));
    return _mm512_slli_epi32(and32(v, 0x01010101), 4);
}

/* q4_0, q4_1, q5_0, q5_1: four blocks (16 qs bytes each) per transpose. */
static void pack_legacy_nibbles(const uint8_t *w, size_t rs, int rows, int64_t nb,
                                size_t type_size, int qs_off, int qh_off, int has_min,
                                uint8_t *dst)
{
    const struct rows16 g = rows16_init(rs, rows);
    for (int64_t b0 = 0; b0 < nb; b0 += 4) {
        const int nq = nb - b0 < 4 ? (int)(nb - b0) : 4;
        __m512i a[16], T[16];
        for (int r = 0; r < 16; r++) {
            __m512i v = _mm512_setzero_si512();
            if (r < rows) {
                const uint8_t *p = w + (size_t)r * rs + (size_t)b0 * type_size + qs_off;
                v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
                if (nq > 1)
                    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + type_size)), 1);
                if (nq > 2)
                    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * type_size)), 2);
                if (nq > 3)
                    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * type_size)), 3);
            }
            a[r] = v;
        }
        transpose16(a, T);
        for (int q = 0; q < nq; q++) {
            const uint8_t *bp = w + (size_t)(b0 + q) * type_size;
            uint8_t *blk = dst + (size_t)legacy_position(b0 + q, nb) * LG_BYTES;
            const __m512i qh = qh_off >= 0 ? rows_u32(&g, bp, (size_t)qh_off) : _mm512_setzero_si512();
            for (int e = 0; e < 4; e++) {
                const __m512i v = T[4 * q + e];
                __m512i lo = and8(v, 0x0F), hi = and8(_mm512_srli_epi32(v, 4), 0x0F);
                if (qh_off >= 0) {
                    lo = _mm512_or_si512(lo, spread4_to_bit4(_mm512_srli_epi32(qh, 4 * e)));
                    hi = _mm512_or_si512(hi, spread4_to_bit4(_mm512_srli_epi32(qh, 16 + 4 * e)));
                }
                _mm512_storeu_si512(blk + LG_Q + 64 * e, lo);
                _mm512_storeu_si512(blk + LG_Q + 64 * (e + 4), hi);
            }
            const __m512i dm = rows_u32(&g, bp, 0); /* d, and m for q4_1 / q5_1 */
            _mm512_storeu_ps(blk + LG_D, fp16_lo(dm));
            _mm512_storeu_ps(blk + LG_M, has_min ? fp16_hi(dm) : _mm512_setzero_ps());
        }
    }
}

/* q8_0: two blocks (32 bytes each) per transpose; u = q + 128. */
static void pack_q8_0(const uint8_t *w, size_t rs, int rows, int64_t nb, uint8_t *dst)
{
    const size_t ts = sizeof(block_q8_0);
    const struct rows16 g = rows16_init(rs, rows);
    for (int64_t b0 = 0; b0 < nb; b0 += 2) {
        const int nq = nb - b0 < 2 ? (int)(nb - b0) : 2;
        __m512i a[16], T[16];
        for (int r = 0; r < 16; r++) {
            __m512i v = _mm512_setzero_si512();
            if (r < rows) {
                const uint8_t *p = w + (size_t)r * rs + (size_t)b0 * ts + 2;
                v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p));
                if (nq > 1)
                    v = _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)(p + ts)), 1);
            }
            a[r] = v;
        }
        transpose16(a, T);
        for (int q = 0; q < nq; q++) {
            const uint8_t *bp = w + (size_t)(b0 + q) * ts;
            uint8_t *blk = dst + (size_t)legacy_position(b0 + q, nb) * LG_BYTES;
            for (int e = 0; e < 8; e++)
                _mm512_storeu_si512(blk + LG_Q + 64 * e,
                                    _mm512_xor_si512(T[8 * q + e], _mm512_set1_epi8((char)0x80)));
            _mm512_storeu_ps(blk + LG_D, fp16_lo(rows_u32(&g, bp, 0)));
            _mm512_storeu_ps(blk + LG_M, _mm512_setzero_ps());
        }
    }
}

static ALWAYS_INLINE void store_sc(uint8_t *blk, int j, __m512i sc)
{
    _mm512_storeu_si512(blk + KQ_SC + 64 * j, sc);
}

static ALWAYS_INLINE void store_corr(uint8_t *blk, int p, __m512i c)
{
    _mm512_storeu_si512(blk + KQ_CORR + 64 * p, c);
}

static ALWAYS_INLINE void store_d(uint8_t *blk, __m512 d, __m512 dmin)
{
    _mm512_storeu_ps(blk + KQ_D, d);
    _mm512_storeu_ps(blk + KQ_DM, dmin);
}

/* q4_K / q5_K: sub-block j of 32 weights = nibble j&1 of qs chunk j/2;
 * q5_K's fifth bit of weight 32j + l is bit j of qh[l]. Scales and mins as in
 * kq_scales_mins_k4 (kquant_common.h), lane by lane. */
static void pack_q45_K(const uint8_t *w, size_t rs, int rows, int64_t nsb, int five,
                       uint8_t *dst)
{
    const size_t ts = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_off = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    const size_t sc_off = offsetof(block_q4_K, scales); /* same in both, as d and dmin */
    const struct rows16 g = rows16_init(rs, rows);
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *bp = w + (size_t)b * ts;
        uint8_t *blk = dst + (size_t)b * KQ_BYTES;
        __m512i T[2][16], H[16];
        load_t64(bp, rs, rows, qs_off, T[0]);
        load_t64(bp, rs, rows, qs_off + 64, T[1]);
        if (five)
            load_t32(bp, rs, rows, offsetof(block_q5_K, qh), H);
        for (int j = 0; j < 8; j++) {
            const int c = j / 2;
            for (int e = 0; e < 8; e++) {
                const __m512i v = T[c / 2][8 * (c % 2) + e];
                __m512i u = (j & 1) ? and8(_mm512_srli_epi32(v, 4), 0x0F) : and8(v, 0x0F);
                if (five)
                    u = _mm512_or_si512(u, _mm512_slli_epi32(and8(_mm512_srli_epi32(H[e], j), 1), 4));
                _mm512_storeu_si512(blk + KQ_Q + 64 * (8 * j + e), u);
            }
        }
        const __m512i a0 = rows_u32(&g, bp, sc_off), a1 = rows_u32(&g, bp, sc_off + 4),
                      a2 = rows_u32(&g, bp, sc_off + 8);
        const __m512i sm[4] = {
            and32(a0, 0x3f3f3f3f),
            _mm512_or_si512(and32(a2, 0x0f0f0f0f), _mm512_slli_epi32(and32(_mm512_srli_epi32(a0, 6), 0x03030303), 4)),
            and32(a1, 0x3f3f3f3f),
            _mm512_or_si512(and32(_mm512_srli_epi32(a2, 4), 0x0f0f0f0f),
                            _mm512_slli_epi32(and32(_mm512_srli_epi32(a1, 6), 0x03030303), 4)),
        };
        for (int j = 0; j < 8; j++) {
            const __m512i mn = byte_u(sm[2 + j / 4], j % 4);
            store_sc(blk, j, byte_u(sm[j / 4], j % 4));
            store_corr(blk, j, pair16(mn, mn));
        }
        const __m512i dd = rows_u32(&g, bp, offsetof(block_q4_K, d)); /* d | dmin << 16 */
        store_d(blk, fp16_lo(dd), fp16_hi(dd));
    }
}

/* q2_K / q3_K: weight 128h + 32s + l has bits 2s of qs[32h + l] (vector
 * 32h + 8s + e of u comes from qs dword 8h + e); q3_K adds bit 4h + s of
 * hmask[l] as bit 2. */
static void pack_q23_K(const uint8_t *w, size_t rs, int rows, int64_t nsb, int three,
                       uint8_t *dst)
{
    const size_t ts = three ? sizeof(block_q3_K) : sizeof(block_q2_K);
    const size_t qs_off = three ? offsetof(block_q3_K, qs) : offsetof(block_q2_K, qs);
    const struct rows16 g = rows16_init(rs, rows);
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *bp = w + (size_t)b * ts;
        uint8_t *blk = dst + (size_t)b * KQ_BYTES;
        __m512i Q[16], H[16];
        load_t64(bp, rs, rows, qs_off, Q);
        if (three)
            load_t32(bp, rs, rows, offsetof(block_q3_K, hmask), H);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int e = 0; e < 8; e++) {
                    __m512i u = and8(_mm512_srli_epi32(Q[8 * h + e], 2 * s), 0x03);
                    if (three)
                        u = _mm512_or_si512(
                            u, _mm512_slli_epi32(and8(_mm512_srli_epi32(H[e], 4 * h + s), 1), 2));
                    _mm512_storeu_si512(blk + KQ_Q + 64 * (32 * h + 8 * s + e), u);
                }
        if (three) {
            /* kq_q3_K_scales lane by lane: scale j has its low 4 bits in
             * byte j%8 (nibble j/8) and its top 2 bits at bit 2(j/4) of byte
             * 8 + j%4; biased by 32 */
            const size_t so = offsetof(block_q3_K, scales);
            const __m512i a[3] = {rows_u32(&g, bp, so), rows_u32(&g, bp, so + 4),
                                  rows_u32(&g, bp, so + 8)};
            __m512i sc[16];
            for (int j = 0; j < 16; j++) {
                const __m512i low = and32(_mm512_srli_epi32(a[(j / 4) % 2], 8 * (j % 4) + 4 * (j / 8)), 0xF);
                const __m512i high = and32(_mm512_srli_epi32(a[2], 8 * (j % 4) + 2 * (j / 4)), 3);
                sc[j] = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)),
                                         _mm512_set1_epi32(32));
                store_sc(blk, j, sc[j]);
            }
            for (int p = 0; p < 8; p++)
                store_corr(blk, p, pair16(_mm512_slli_epi32(sc[2 * p], 2),
                                          _mm512_slli_epi32(sc[2 * p + 1], 2)));
            /* d is the last field: read the dword that ends with it */
            const __m512i dd = rows_u32(&g, bp, offsetof(block_q3_K, d) - 2);
            store_d(blk, fp16_hi(dd), _mm512_setzero_ps());
        } else {
            /* scales[j] = sc | m << 4 */
            const size_t so = offsetof(block_q2_K, scales);
            __m512i m[16];
            for (int q = 0; q < 4; q++) {
                const __m512i a = rows_u32(&g, bp, so + 4 * (size_t)q);
                for (int i = 0; i < 4; i++) {
                    store_sc(blk, 4 * q + i, and32(_mm512_srli_epi32(a, 8 * i), 0xF));
                    m[4 * q + i] = and32(_mm512_srli_epi32(a, 8 * i + 4), 0xF);
                }
            }
            for (int p = 0; p < 8; p++)
                store_corr(blk, p, pair16(m[2 * p], m[2 * p + 1]));
            const __m512i dd = rows_u32(&g, bp, offsetof(block_q2_K, d)); /* d | dmin << 16 */
            store_d(blk, fp16_lo(dd), fp16_hi(dd));
        }
    }
}

/* q6_K: weight 128h + 32s + l: low 4 bits in ql[64h + 32(s&1) + l] (nibble
 * s/2), high 2 bits at bit 2s of qh[32h + l]; u = the 6-bit code. */
static void pack_q6_K(const uint8_t *w, size_t rs, int rows, int64_t nsb, uint8_t *dst)
{
    const size_t ts = sizeof(block_q6_K);
    const struct rows16 g = rows16_init(rs, rows);
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *bp = w + (size_t)b * ts;
        uint8_t *blk = dst + (size_t)b * KQ_BYTES;
        __m512i L[2][16], H[16];
        load_t64(bp, rs, rows, offsetof(block_q6_K, ql), L[0]);
        load_t64(bp, rs, rows, offsetof(block_q6_K, ql) + 64, L[1]);
        load_t64(bp, rs, rows, offsetof(block_q6_K, qh), H);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int e = 0; e < 8; e++) {
                    const __m512i lo = and8(_mm512_srli_epi32(L[h][8 * (s & 1) + e], 4 * (s >> 1)), 0x0F);
                    const __m512i hi = and8(_mm512_srli_epi32(H[8 * h + e], 2 * s), 0x03);
                    _mm512_storeu_si512(blk + KQ_Q + 64 * (32 * h + 8 * s + e),
                                        _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)));
                }
        const size_t so = offsetof(block_q6_K, scales);
        __m512i sc[16];
        for (int q = 0; q < 4; q++) {
            const __m512i a = rows_u32(&g, bp, so + 4 * (size_t)q);
            for (int i = 0; i < 4; i++) {
                sc[4 * q + i] = byte_s(a, i);
                store_sc(blk, 4 * q + i, sc[4 * q + i]);
            }
        }
        for (int p = 0; p < 8; p++)
            store_corr(blk, p, pair16(_mm512_slli_epi32(sc[2 * p], 5),
                                      _mm512_slli_epi32(sc[2 * p + 1], 5)));
        /* d is the last field: read the dword that ends with it */
        const __m512i dd = rows_u32(&g, bp, offsetof(block_q6_K, d) - 2);
        store_d(blk, fp16_hi(dd), _mm512_setzero_ps());
    }
}

void quarry_qgemm_pack(enum quarry_type t, const uint8_t *w, size_t w_row_bytes, int rows,
                       int64_t k, void *strip)
{
    uint8_t *dst = strip;
    const int64_t nb = k / 32, nsb = k / QK_K;
    /* The packers read 16 rows side by side, a little of each at a time: too
     * many slow streams for the hardware prefetcher (cold weights came in at
     * 4-6 GB/s). The rows are adjacent in memory, so one sequential pass that
     * loads a byte of every cache line brings them in first (12-16 GB/s;
     * software prefetches instead of loads reached 7-9 GB/s). */
    const size_t span = (size_t)rows * w_row_bytes;
    uint8_t touched = 0;
    for (size_t off = 0; off < span; off += 64)
        touched ^= w[off];
    volatile uint8_t sink = touched;
    (void)sink;
    switch (t) {
    case QUARRY_TYPE_Q4_0:
        pack_legacy_nibbles(w, w_row_bytes, rows, nb, sizeof(block_q4_0),
                            offsetof(block_q4_0, qs), -1, 0, dst);
        break;
    case QUARRY_TYPE_Q4_1:
        pack_legacy_nibbles(w, w_row_bytes, rows, nb, sizeof(block_q4_1),
                            offsetof(block_q4_1, qs), -1, 1, dst);
        break;
    case QUARRY_TYPE_Q5_0:
        pack_legacy_nibbles(w, w_row_bytes, rows, nb, sizeof(block_q5_0),
                            offsetof(block_q5_0, qs), offsetof(block_q5_0, qh), 0, dst);
        break;
    case QUARRY_TYPE_Q5_1:
        pack_legacy_nibbles(w, w_row_bytes, rows, nb, sizeof(block_q5_1),
                            offsetof(block_q5_1, qs), offsetof(block_q5_1, qh), 1, dst);
        break;
    case QUARRY_TYPE_Q8_0: pack_q8_0(w, w_row_bytes, rows, nb, dst); break;
    case QUARRY_TYPE_Q2_K: pack_q23_K(w, w_row_bytes, rows, nsb, 0, dst); break;
    case QUARRY_TYPE_Q3_K: pack_q23_K(w, w_row_bytes, rows, nsb, 1, dst); break;
    case QUARRY_TYPE_Q4_K: pack_q45_K(w, w_row_bytes, rows, nsb, 0, dst); break;
    case QUARRY_TYPE_Q5_K: pack_q45_K(w, w_row_bytes, rows, nsb, 1, dst); break;
    case QUARRY_TYPE_Q6_K: pack_q6_K(w, w_row_bytes, rows, nsb, dst); break;
    default: break;
    }
}

/* ---- kernels -------------------------------------------------------------- */

static ALWAYS_INLINE __m512i bcast32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

static ALWAYS_INLINE __m512 bcastf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_ps(v);
}

/* Legacy types, R activation rows (repacked, struct lg_act). Block b's
 * term, lane by lane, as the scalar vec_dot:
 *   zp:  t = (float)sumi * (d_x * d_y)
 *   min: t = (float)sumi * (d_x * d_y); t = t + m_x * s_y
 * folded as kernels/legacy_common.h does (lq_fold_add / lq_fold_finish):
 * LQ_FOLD_LANES running sums, block b into sum b % LQ_FOLD_LANES in block
 * order, then the fixed pairwise tree. The sums are formed one after the
 * other (blocks s, s + 16, s + 32, ... for sum s: the same terms in the same
 * order), over strip and activations stored in that order. */
static ALWAYS_INLINE void legacy_tile(const uint8_t *strip, int64_t nb, const uint8_t *act,
                                      size_t act_row, const int R, const int has_min, float *y,
                                      int64_t ldy, __mmask16 mask)
{
    const int64_t per_sum = legacy_per_sum(nb);
    __m512 fold[TILE][LQ_FOLD_LANES];
    for (int s = 0; s < LQ_FOLD_LANES; s++) {
        __m512 sumf[TILE];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            sumf[r] = _mm512_setzero_ps();
        const int64_t count = s < nb ? (nb - s + LQ_FOLD_LANES - 1) / LQ_FOLD_LANES : 0;
        for (int64_t i = 0; i < count; i++) {
            const int64_t pos = s * per_sum + i;
            const uint8_t *p = strip + pos * LG_BYTES;
            const uint8_t *a = act + (size_t)pos * sizeof(struct lg_act);
            __m512i acc[TILE];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                acc[r] = has_min ? _mm512_setzero_si512()
                                 : bcast32(a + r * act_row + offsetof(struct lg_act, u));
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) {
                const __m512i wq = _mm512_loadu_si512(p + LG_Q + 64 * t);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++)
                    acc[r] = _mm512_dpbusd_epi32(acc[r], wq, bcast32(a + r * act_row + 4 * t));
            }
            const __m512 xd = _mm512_loadu_ps(p + LG_D);
            if (has_min) {
                const __m512 xm = _mm512_loadu_ps(p + LG_M);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    const uint8_t *ar = a + r * act_row;
                    const __m512 d = _mm512_mul_ps(xd, bcastf(ar + offsetof(struct lg_act, d)));
                    __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r]), d);
                    t = _mm512_add_ps(t, _mm512_mul_ps(xm, bcastf(ar + offsetof(struct lg_act, u))));
                    sumf[r] = _mm512_add_ps(sumf[r], t);
                }
            } else {
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    const __m512 d = _mm512_mul_ps(xd, bcastf(a + r * act_row + offsetof(struct lg_act, d)));
                    sumf[r] = _mm512_add_ps(sumf[r], _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r]), d));
                }
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            fold[r][s] = sumf[r];
    }
    _Static_assert(LQ_FOLD_LANES == 16, "the tree below is written for 16 sums");
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m512 *f = fold[r];
        const __m512 a0 = _mm512_add_ps(f[0], f[8]), a1 = _mm512_add_ps(f[1], f[9]),
                     a2 = _mm512_add_ps(f[2], f[10]), a3 = _mm512_add_ps(f[3], f[11]),
                     a4 = _mm512_add_ps(f[4], f[12]), a5 = _mm512_add_ps(f[5], f[13]),
                     a6 = _mm512_add_ps(f[6], f[14]), a7 = _mm512_add_ps(f[7], f[15]);
        const __m512 b0 = _mm512_add_ps(a0, a4), b1 = _mm512_add_ps(a1, a5),
                     b2 = _mm512_add_ps(a2, a6), b3 = _mm512_add_ps(a3, a7);
        const __m512 c0 = _mm512_add_ps(b0, b2), c1 = _mm512_add_ps(b1, b3);
        _mm512_mask_storeu_ps(y + r * ldy, mask, _mm512_add_ps(c0, c1));
    }
}

/* K-quants, R activation rows of q8_K blocks. Per super-block, lane by lane:
 *   isum = sum_j sc[j] * sub_j  (sub_j = sum of u*q8 over sub-block j)
 *   corr = sum_p c[2p]*bsums[2p] + c[2p+1]*bsums[2p+1]
 *   mins: sumf = sumf + ((y.d*d)*(float)isum - (y.d*dmin)*(float)corr)
 *   zp:   sumf = sumf + (y.d*d)*(float)(isum - corr) */
static ALWAYS_INLINE void kquant_tile(const uint8_t *strip, int64_t nsb, const uint8_t *xq,
                                      size_t xq_row, const int R, const int n_sub,
                                      const int has_min, float *y, int64_t ldy, __mmask16 mask)
{
    const int per_sub = 64 / n_sub; /* quant vectors (4 weights each) per sub-block */
    __m512 sumf[TILE];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        sumf[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *p = strip + b * KQ_BYTES;
        const uint8_t *a = xq + (size_t)b * sizeof(block_q8_K);
        __m512i isum[TILE], sub[TILE];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            isum[r] = _mm512_setzero_si512();
        for (int j = 0; j < n_sub; j++) {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                sub[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int t = 0; t < per_sub; t++) {
                const int v = j * per_sub + t;
                const __m512i wq = _mm512_loadu_si512(p + KQ_Q + 64 * v);
#pragma GCC unroll 8
                for (int r = 0; r < R; r++)
                    sub[r] = _mm512_dpbusd_epi32(sub[r], wq, bcast32(a + r * xq_row + Q8K_QS + 4 * v));
            }
            const __m512i sc = _mm512_loadu_si512(p + KQ_SC + 64 * j);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(sub[r], sc));
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            sub[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const __m512i c = _mm512_loadu_si512(p + KQ_CORR + 64 * q);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                sub[r] = _mm512_dpwssd_epi32(sub[r], c, bcast32(a + r * xq_row + Q8K_BSUMS + 4 * q));
        }
        const __m512 xd = _mm512_loadu_ps(p + KQ_D);
        if (has_min) {
            const __m512 xdm = _mm512_loadu_ps(p + KQ_DM);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m512 yd = bcastf(a + r * xq_row);
                const __m512 d = _mm512_mul_ps(yd, xd), dmin = _mm512_mul_ps(yd, xdm);
                const __m512 t = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[r])),
                                               _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(sub[r])));
                sumf[r] = _mm512_add_ps(sumf[r], t);
            }
        } else {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m512 d = _mm512_mul_ps(bcastf(a + r * xq_row), xd);
                const __m512i s = _mm512_sub_epi32(isum[r], sub[r]);
                sumf[r] = _mm512_add_ps(sumf[r], _mm512_mul_ps(d, _mm512_cvtepi32_ps(s)));
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        _mm512_mask_storeu_ps(y + r * ldy, mask, sumf[r]);
}

/* One instantiation per family and tile height R (constant after inlining). */
#define DEFINE_TILES(R)                                                                            \
    static void legacy_zp_##R(const uint8_t *s, int64_t nb, const uint8_t *a, size_t ar, float *y, \
                              int64_t ldy, __mmask16 k)                                            \
    {                                                                                              \
        legacy_tile(s, nb, a, ar, R, 0, y, ldy, k);                                                \
    }                                                                                              \
    static void legacy_min_##R(const uint8_t *s, int64_t nb, const uint8_t *a, size_t ar,         \
                               float *y, int64_t ldy, __mmask16 k)                                 \
    {                                                                                              \
        legacy_tile(s, nb, a, ar, R, 1, y, ldy, k);                                                \
    }                                                                                              \
    static void k32_min_##R(const uint8_t *s, int64_t nb, const uint8_t *a, size_t ar, float *y,   \
                            int64_t ldy, __mmask16 k)                                              \
    {                                                                                              \
        kquant_tile(s, nb, a, ar, R, 8, 1, y, ldy, k);                                             \
    }                                                                                              \
    static void k16_min_##R(const uint8_t *s, int64_t nb, const uint8_t *a, size_t ar, float *y,   \
                            int64_t ldy, __mmask16 k)                                              \
    {                                                                                              \
        kquant_tile(s, nb, a, ar, R, 16, 1, y, ldy, k);                                            \
    }                                                                                              \
    static void k16_zp_##R(const uint8_t *s, int64_t nb, const uint8_t *a, size_t ar, float *y,    \
                           int64_t ldy, __mmask16 k)                                               \
    {                                                                                              \
        kquant_tile(s, nb, a, ar, R, 16, 0, y, ldy, k);                                            \
    }

DEFINE_TILES(1)
DEFINE_TILES(2)
DEFINE_TILES(3)
DEFINE_TILES(4)
DEFINE_TILES(5)
DEFINE_TILES(6)
DEFINE_TILES(7)
DEFINE_TILES(8)

typedef void (*tile_fn)(const uint8_t *strip, int64_t nb, const uint8_t *act, size_t act_row,
                        float *y, int64_t ldy, __mmask16 mask);

#define TILE_TABLE(NAME) {NULL, NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, NAME##_7, NAME##_8}
static const tile_fn legacy_zp_tiles[TILE + 1] = TILE_TABLE(legacy_zp);
static const tile_fn legacy_min_tiles[TILE + 1] = TILE_TABLE(legacy_min);
static const tile_fn k32_min_tiles[TILE + 1] = TILE_TABLE(k32_min);
static const tile_fn k16_min_tiles[TILE + 1] = TILE_TABLE(k16_min);
static const tile_fn k16_zp_tiles[TILE + 1] = TILE_TABLE(k16_zp);

void quarry_qgemm_multiply(enum quarry_type t, const void *strip, int rows, int64_t k,
                           const uint8_t *act, size_t act_row_bytes, int64_t m, float *y,
                           int64_t ldy)
{
    const tile_fn *tiles;
    int64_t nb;
    switch (family_of(t)) {
    case FAM_LEGACY_ZP: tiles = legacy_zp_tiles, nb = k / 32; break;
    case FAM_LEGACY_MIN: tiles = legacy_min_tiles, nb = k / 32; break;
    case FAM_K32_MIN: tiles = k32_min_tiles, nb = k / QK_K; break;
    case FAM_K16_MIN: tiles = k16_min_tiles, nb = k / QK_K; break;
    case FAM_K16_ZP: tiles = k16_zp_tiles, nb = k / QK_K; break;
    default: return;
    }
    const __mmask16 mask = rows >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1);
    for (int64_t i = 0; i < m; i += TILE) {
        const int r = m - i < TILE ? (int)(m - i) : TILE;
        tiles[r](strip, nb, act + (size_t)i * act_row_bytes, act_row_bytes, y + i * ldy, ldy,
                 mask);
    }
}
