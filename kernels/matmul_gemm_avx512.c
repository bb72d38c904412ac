/*
 * matmul_gemm_avx512.c - the AVX-512F float GEMM behind matmul.c's "gemm"
 * path (layouts and contract in kernels/matmul_gemm.h): packing of X into
 * 12-row panels, conversion of F32/F16/BF16 weight rows into 32-row strips,
 * and the 12 x 32 micro-kernel.
 *
 * Why this shape: the target cores (Zen 4/5) have two 512-bit FMA pipes of
 * latency 4, so at least 8 independent accumulators are needed and 24 hide
 * the latency with room to spare; 24 accumulators + 2 weight vectors + one
 * broadcast fit the 32 zmm registers. Per k step the kernel loads 128 bytes
 * of weights (2 zmm) and 48 of activations (12 broadcasts) for 24 FMAs (12
 * cycles), so the strip streams from L2 at about 11 bytes per cycle and the
 * X panel's block (12 x kc floats) from L1/L2 at 4. With everything in cache
 * the 12 x 32 tile runs at 200-212 GFLOP/s on one Zen 5 core here (the FMA
 * peak measured with 16 independent chains: ~210).
 *
 * Memory the tiles would otherwise wait on is prefetched: the next X panel's
 * block (during the first strip's tile), the tile's Y lines (at its start:
 * every K block after the first adds to Y) and the raw weights of the next
 * K block (a few lines per X panel; see struct w_prefetch).
 *
 * Both packings are 16 x 16 transposes in registers (unpcklps/unpckhps,
 * unpcklpd/unpckhpd, then two rounds of vshuff32x4): 16 rows of 16
 * consecutive k go in, 16 vectors of one k each come out.
 */
#include <immintrin.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "kernels/matmul_gemm.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* the first `left` lanes (all 16 when left >= 16, none when left <= 0) */
static ALWAYS_INLINE __mmask16 tail_mask(int64_t left)
{
    if (left <= 0)
        return 0;
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- 16 x 16 transpose ------------------------------------------------------ */

/* In: r[i] = row i (16 floats). Out: r[c] = column c (element i = row i's c). */
static ALWAYS_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    /* per 128-bit lane L: t[2i] = a0 b0 a1 b1, t[2i+1] = a2 b2 a3 b3 (a = r[2i], b = r[2i+1],
     * element e meaning column 4L+e) */
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i+e], lane L: rows 4i .. 4i+3 of column 4L+e */
    __m512 u[16];
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* column 4L+e = lane L of u[e], u[4+e], u[8+e], u[12+e], in that order */
    for (int e = 0; e < 4; e++) {
        const __m512 ab02 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x44);  /* a.0 a.1 b.0 b.1 */
        const __m512 ab13 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xEE);  /* a.2 a.3 b.2 b.3 */
        const __m512 cd02 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x44);
        const __m512 cd13 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xEE);
        r[0 + e] = _mm512_shuffle_f32x4(ab02, cd02, 0x88);  /* a.0 b.0 c.0 d.0 */
        r[4 + e] = _mm512_shuffle_f32x4(ab02, cd02, 0xDD);  /* a.1 b.1 c.1 d.1 */
        r[8 + e] = _mm512_shuffle_f32x4(ab13, cd13, 0x88);  /* a.2 b.2 c.2 d.2 */
        r[12 + e] = _mm512_shuffle_f32x4(ab13, cd13, 0xDD); /* a.3 b.3 c.3 d.3 */
    }
}

/* ---- packing ------------------------------------------------------------------ */

/* The lanes in mask of the 16 weights of type t from element c of row p, as
 * floats; the other lanes 0 and never read. */
static ALWAYS_INLINE __m512 load_weights(enum quarry_type t, const uint8_t *p, int64_t c,
                                         __mmask16 mask)
{
    switch (t) {
    case QUARRY_TYPE_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)p + c));
    case QUARRY_TYPE_BF16: /* bf16 is the top half of a float */
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)p + c)), 16));
    default:
        return _mm512_maskz_loadu_ps(mask, (const float *)p + c);
    }
}

/*
 * One strip: W rows 0 .. rows-1 (rows <= 32, row stride w_row_bytes), weights
 * k0 .. k0+kb-1, to ws[c][r] (kb x 32 floats, rows past `rows` zero).
 * Per half strip (16 rows) and group of GROUP weights: each row's group is
 * read in one go (whole cache lines, converted into tmp, which stays in L1),
 * then transposed 16 weights at a time. Reading 16 rows 16 weights at a time
 * instead missed L1 on every load when rows are 4 KiB apart (F16, k = 2048:
 * the 16 lines fall in one 12-way set and evict each other before their
 * second half is read).
 */
#define GROUP 64

/* Columns 16q .. 16q+15 of the 16 rows in tmp, transposed: v[e] holds
 * column 16q + e (lane r: row r). */
static ALWAYS_INLINE void load_transposed(float tmp[16][GROUP], int q, __m512 v[16])
{
    for (int r = 0; r < 16; r++)
        v[r] = _mm512_load_ps(tmp[r] + 16 * q);
    transpose16(v);
}

static ALWAYS_INLINE void pack_strip_t(enum quarry_type t, const uint8_t *w, size_t w_row_bytes,
                                       int rows, int64_t k0, int64_t kb, float *ws)
{
    float tmp[16][GROUP] __attribute__((aligned(64)));
    for (int h = 0; h < 2; h++) {
        const int valid = rows - 16 * h; /* rows of this half present (may be <= 0) */
        for (int64_t c0 = 0; c0 < kb; c0 += GROUP) {
            const int64_t g = min64(GROUP, kb - c0);
            for (int r = 0; r < 16; r++) {
                const uint8_t *src = w + (size_t)(16 * h + r) * w_row_bytes;
                for (int q = 0; q < GROUP / 16; q++)
                    _mm512_store_ps(tmp[r] + 16 * q,
                                    r < valid && 16 * q < g
                                        ? load_weights(t, src, k0 + c0 + 16 * q, tail_mask(g - 16 * q))
                                        : _mm512_setzero_ps());
            }
            for (int q = 0; 16 * q < g; q++) {
                __m512 v[16];
                load_transposed(tmp, q, v);
                const int64_t nt = min64(16, g - 16 * q);
                for (int64_t e = 0; e < nt; e++)
                    _mm512_store_ps(ws + (c0 + 16 * q + e) * QUARRY_GEMM_NR + 16 * h, v[e]);
            }
        }
    }
}

static void pack_strip(enum quarry_type t, const uint8_t *w, size_t w_row_bytes, int rows,
                       int64_t k0, int64_t kb, float *ws)
{
    switch (t) {
    case QUARRY_TYPE_F16: pack_strip_t(QUARRY_TYPE_F16, w, w_row_bytes, rows, k0, kb, ws); break;
    case QUARRY_TYPE_BF16: pack_strip_t(QUARRY_TYPE_BF16, w, w_row_bytes, rows, k0, kb, ws); break;
    default: pack_strip_t(QUARRY_TYPE_F32, w, w_row_bytes, rows, k0, kb, ws); break;
    }
}

/* Same scheme as pack_strip_t: 12 rows (4 zero rows complete the 16 x 16
 * transposes), each row's group of GROUP floats read in one go. */
static void pack_x(const float *x, int64_t m, int64_t k, int64_t p0, int64_t p1, float *xp)
{
    float tmp[16][GROUP] __attribute__((aligned(64)));
    memset(tmp, 0, sizeof tmp); /* rows 12..15 and the rows past m stay zero */
    for (int64_t p = p0; p < p1; p++) {
        const int64_t i0 = p * QUARRY_GEMM_MR;
        const int64_t rows = min64(QUARRY_GEMM_MR, m - i0);
        float *out = xp + (size_t)p * (size_t)k * QUARRY_GEMM_MR;
        if (rows < QUARRY_GEMM_MR)
            memset(tmp, 0, sizeof tmp);
        for (int64_t c0 = 0; c0 < k; c0 += GROUP) {
            const int64_t g = min64(GROUP, k - c0);
            for (int64_t r = 0; r < rows; r++)
                for (int q = 0; q < GROUP / 16; q++)
                    _mm512_store_ps(tmp[r] + 16 * q,
                                    16 * q < g ? _mm512_maskz_loadu_ps(tail_mask(g - 16 * q),
                                                                       x + (i0 + r) * k + c0 + 16 * q)
                                               : _mm512_setzero_ps());
            for (int q = 0; 16 * q < g; q++) {
                __m512 v[16];
                load_transposed(tmp, q, v);
                /* column e has the 12 rows in lanes 0..11 */
                const int64_t nt = min64(16, g - 16 * q);
                for (int64_t e = 0; e < nt; e++)
                    _mm512_mask_storeu_ps(out + (c0 + 16 * q + e) * QUARRY_GEMM_MR, 0x0FFF, v[e]);
            }
        }
    }
}

/* ---- micro-kernel ---------------------------------------------------------------- */

/*
 * Y[r][0..32) (+)= sum over c < kb of xs[c][r] * ws[c][0..32), r < MR.
 * xs: the X panel at the block's first k (stride 12 per k); ws: the strip
 * (stride 32 per k); y: Y[first row][first column] (row stride ldy); m0, m1:
 * the valid columns among 0..15 and 16..31; accumulate: add to Y instead of
 * overwriting it (K blocks after the first).
 */
static ALWAYS_INLINE void tile_t(const int MR, const float *xs, const float *ws, int64_t kb,
                                 float *y, int64_t ldy, __mmask16 m0, __mmask16 m1, int accumulate,
                                 const float *pf)
{
#define DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = _mm512_setzero_ps();
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5)
    DECL(6) DECL(7) DECL(8) DECL(9) DECL(10) DECL(11)
#undef DECL
    /* the tile's Y lines (read-modify-write at the end; rows n floats apart,
     * not in any cache after a whole K block of other tiles) */
#define PREFETCH_Y(r)                                                                          \
    if (MR > r) {                                                                              \
        _mm_prefetch((const char *)(y + (r) * ldy), _MM_HINT_T0);                              \
        if (m1)                                                                                \
            _mm_prefetch((const char *)(y + (r) * ldy + 16), _MM_HINT_T0);                     \
    }
    PREFETCH_Y(0) PREFETCH_Y(1) PREFETCH_Y(2) PREFETCH_Y(3) PREFETCH_Y(4) PREFETCH_Y(5)
    PREFETCH_Y(6) PREFETCH_Y(7) PREFETCH_Y(8) PREFETCH_Y(9) PREFETCH_Y(10) PREFETCH_Y(11)
#undef PREFETCH_Y
    for (int64_t c = 0; c < kb; c++) {
        const __m512 w0 = _mm512_load_ps(ws + c * QUARRY_GEMM_NR);
        const __m512 w1 = _mm512_load_ps(ws + c * QUARRY_GEMM_NR + 16);
        const float *xc = xs + c * QUARRY_GEMM_MR;
        _mm_prefetch((const char *)(pf + c * QUARRY_GEMM_MR), _MM_HINT_T0);
#define ROW(r)                                                                                 \
    if (MR > r) {                                                                              \
        const __m512 b = _mm512_set1_ps(xc[r]);                                                \
        c##r##_0 = _mm512_fmadd_ps(b, w0, c##r##_0);                                           \
        c##r##_1 = _mm512_fmadd_ps(b, w1, c##r##_1);                                           \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
        ROW(6) ROW(7) ROW(8) ROW(9) ROW(10) ROW(11)
#undef ROW
    }
#define STORE(r)                                                                               \
    if (MR > r) {                                                                              \
        float *yr = y + (r) * ldy;                                                             \
        if (accumulate) {                                                                      \
            c##r##_0 = _mm512_add_ps(c##r##_0, _mm512_maskz_loadu_ps(m0, yr));                 \
            c##r##_1 = _mm512_add_ps(c##r##_1, _mm512_maskz_loadu_ps(m1, yr + 16));            \
        }                                                                                      \
        _mm512_mask_storeu_ps(yr, m0, c##r##_0);                                               \
        _mm512_mask_storeu_ps(yr + 16, m1, c##r##_1);                                          \
    }
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
    STORE(6) STORE(7) STORE(8) STORE(9) STORE(10) STORE(11)
#undef STORE
}

typedef void (*tile_fn)(const float *xs, const float *ws, int64_t kb, float *y, int64_t ldy,
                        __mmask16 m0, __mmask16 m1, int accumulate, const float *pf);

#define TILE(MR)                                                                               \
    static void tile_##MR(const float *xs, const float *ws, int64_t kb, float *y, int64_t ldy, \
                          __mmask16 m0, __mmask16 m1, int accumulate, const float *pf)         \
    {                                                                                          \
        tile_t(MR, xs, ws, kb, y, ldy, m0, m1, accumulate, pf);                                \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) TILE(12)
#undef TILE

static const tile_fn tiles[QUARRY_GEMM_MR + 1] = {
    NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6,
    tile_7, tile_8, tile_9, tile_10, tile_11, tile_12,
};

/* ---- prefetching the next weights ---------------------------------------------------- */

/*
 * While a K block is multiplied, the raw weights of the next one (the same
 * chunk's next block, or the first block of the chunk claimed next) are
 * prefetched into L2 a few lines per tile, so that the conversion does not
 * wait on memory: the weights come from a file mapping, read once per
 * product, and the packing reads 32 rows of only kb weights each.
 */
struct w_prefetch {
    uintptr_t w;            /* the block's first weight in the first row */
    size_t w_row_bytes;
    int64_t row_lines;      /* lines per row (a segment may start inside a line: one more) */
    int64_t lines, next;    /* lines in all, the next to fetch */
    int64_t per_step;       /* lines per call of prefetch_some */
};

static void prefetch_init(struct w_prefetch *pf, const struct quarry_gemm_args *a, int64_t j0,
                          int64_t rows, int64_t k0, int64_t steps)
{
    const size_t es = a->wtype == QUARRY_TYPE_F32 ? 4 : 2; /* bytes per weight */
    const int64_t kb = min64(a->kc, a->k - k0);
    /* addresses as integers: a line past the end of W is prefetched harmlessly
     * but would be an out-of-bounds pointer */
    pf->w = (uintptr_t)(a->w + (size_t)j0 * a->w_row_bytes + (size_t)k0 * es);
    pf->w_row_bytes = a->w_row_bytes;
    pf->row_lines = (int64_t)(((size_t)kb * es + 63) / 64) + 1;
    pf->lines = rows * pf->row_lines;
    pf->next = 0;
    pf->per_step = (pf->lines + steps - 1) / steps;
}

static ALWAYS_INLINE void prefetch_some(struct w_prefetch *pf)
{
    const int64_t end = min64(pf->lines, pf->next + pf->per_step);
    for (int64_t l = pf->next; l < end; l++) {
        const int64_t r = l / pf->row_lines, c = l % pf->row_lines;
        const uintptr_t line = (pf->w + (uintptr_t)r * pf->w_row_bytes) & ~(uintptr_t)63;
        _mm_prefetch((const char *)(line + (uintptr_t)c * 64), _MM_HINT_T1);
    }
    pf->next = end;
}

/* ---- one chunk of W rows ------------------------------------------------------------ */

/* Makes sure X panel p is packed: packs the next unclaimed panels until p
 * is ready (waits only while another thread is packing p itself). */
static void ensure_panel(const struct quarry_gemm_args *a, int64_t p)
{
    const int64_t n_panels = quarry_gemm_x_panels(a->m);
    while (!atomic_load_explicit(&a->ready[p], memory_order_acquire)) {
        const int64_t q = atomic_fetch_add_explicit(a->next_panel, 1, memory_order_relaxed);
        if (q < n_panels) {
            pack_x(a->x, a->m, a->k, q, q + 1, a->xp);
            atomic_store_explicit(&a->ready[q], 1, memory_order_release);
        } else {
            _mm_pause();
        }
    }
}

/* K block k0 of the chunk j0 .. j0+rows: convert, then every X panel against
 * every strip; pf (may be NULL) is advanced once per X panel. */
static void gemm_block(const struct quarry_gemm_args *a, int64_t j0, int64_t rows, int64_t k0,
                       float *panel, struct w_prefetch *pf)
{
    const int64_t n_strips = (rows + QUARRY_GEMM_NR - 1) / QUARRY_GEMM_NR;
    const int64_t n_panels = quarry_gemm_x_panels(a->m);
    const int64_t kb = min64(a->kc, a->k - k0);
    /* the chunk's K block, converted: n_strips strips of kb x 32 floats (L2) */
    for (int64_t s = 0; s < n_strips; s++) {
        const int64_t js = j0 + s * QUARRY_GEMM_NR;
        pack_strip(a->wtype, a->w + (size_t)js * a->w_row_bytes, a->w_row_bytes,
                   (int)min64(QUARRY_GEMM_NR, j0 + rows - js), k0, kb,
                   panel + (size_t)s * (size_t)kb * QUARRY_GEMM_NR);
    }
    /* each X panel's block (12 x kb floats: L1) against every strip; the
     * first strip's tile also prefetches the next panel's block */
    for (int64_t p = 0; p < n_panels; p++) {
        const int64_t i0 = p * QUARRY_GEMM_MR;
        const tile_fn tile = tiles[min64(QUARRY_GEMM_MR, a->m - i0)];
        const float *xs = a->xp + ((size_t)p * (size_t)a->k + (size_t)k0) * QUARRY_GEMM_MR;
        ensure_panel(a, p);
        if (pf)
            prefetch_some(pf);
        for (int64_t s = 0; s < n_strips; s++) {
            const int64_t js = j0 + s * QUARRY_GEMM_NR;
            const int64_t cols = min64(QUARRY_GEMM_NR, j0 + rows - js);
            tile(xs, panel + (size_t)s * (size_t)kb * QUARRY_GEMM_NR, kb,
                 a->y + i0 * a->n + js, a->n, tail_mask(cols), tail_mask(cols - 16), k0 > 0,
                 s == 0 && p + 1 < n_panels ? xs + a->k * QUARRY_GEMM_MR : xs);
        }
    }
}

void quarry_gemm_thread(const struct quarry_gemm_args *a, atomic_int_fast64_t *next_chunk,
                        int64_t chunk_rows, float *panel)
{
    const int64_t n_chunks = (a->n + chunk_rows - 1) / chunk_rows;
    const int64_t n_panels = quarry_gemm_x_panels(a->m);
    int64_t c = atomic_fetch_add_explicit(next_chunk, 1, memory_order_relaxed);
    while (c < n_chunks) {
        const int64_t j0 = c * chunk_rows, rows = min64(chunk_rows, a->n - j0);
        int64_t next = n_chunks;
        for (int64_t k0 = 0; k0 < a->k; k0 += a->kc) {
            struct w_prefetch pf;
            if (k0 + a->kc < a->k) {
                prefetch_init(&pf, a, j0, rows, k0 + a->kc, n_panels);
            } else {
                /* the last block: claim the next chunk now and fetch its first block */
                next = atomic_fetch_add_explicit(next_chunk, 1, memory_order_relaxed);
                if (next < n_chunks)
                    prefetch_init(&pf, a, next * chunk_rows,
                                  min64(chunk_rows, a->n - next * chunk_rows), 0, n_panels);
            }
            gemm_block(a, j0, rows, k0, panel,
                       k0 + a->kc < a->k || next < n_chunks ? &pf : NULL);
        }
        c = next;
    }
}
