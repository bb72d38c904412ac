/*
 * matmul.c - Y = X . W^T over the traits table (see matmul.h for shapes and
 * the four paths). The kernels themselves (vec_dot, from_float, to_float,
 * the qgemm of matmul_qgemm.h, the gemm of matmul_gemm.h, OpenBLAS's sgemm)
 * come from elsewhere; this file chooses the path, quantizes the activations,
 * splits the work across threads and orders the loops for the caches.
 *
 * Work distribution: every path cuts its work into chunks of W rows that
 * threads take from one atomic counter (none is pre-assigned, so a worker the
 * OS runs late finds the work done instead of holding up the caller), with
 * enough chunks per thread to even out two threads. Products below
 * QUARRY_MATMUL_SERIAL_BYTES (weight bytes x activation rows) run on the
 * calling thread alone: waking the pool costs microseconds when a worker
 * spins and a scheduler time slice when the machine is busy.
 *
 * Cache plan for the vec_dot path (per thread, per chunk of W rows):
 *   for each tile of activation rows  (tile <= TILE_BYTES of quantized rows: L2)
 *     for each W row j in the chunk   (chunk <= CHUNK_MAX_BYTES: stays in L2)
 *       for each activation row i     (W row j is hot in L1 across the tile)
 *         Y[i][j] = vec_dot(W[j], Xq[i])
 *   where the type has vec_dot_prepared (kernels.h), each Xq row is prepared
 *   once before the chunks are handed out and the loop calls that instead.
 * BLAS (per thread, per panel of up to BLAS_PANEL_ROWS W rows): F16/BF16 rows
 *   converted to float, then one single-threaded sgemm over all of X.
 * gemm (per thread, per chunk of GEMM_CHUNK_ROWS W rows, see matmul_gemm):
 *   for each K block of GEMM_K_BLOCK weights
 *     convert the chunk's block into strips of 32 rows (<= 512 KiB: L2)
 *     for each panel of 12 X rows (packed on first use, shared)
 *       for each strip: Y[panel rows][strip rows] (+)= panel . strip^T
 * qgemm (per thread, per chunk of strips of 16 W rows):
 *   unpack the chunk's strips (<= QGEMM_CHUNK_BYTES: L2) once
 *   for each tile of activation rows (<= QGEMM_TILE_BYTES: L1/L2)
 *     for each strip: Y[tile][strip rows] (kernel: 8 activation rows at once)
 * Sizes come from the core's private L2 (1 MiB here) and never from L3 (hwloc
 * reports a bogus L3 inside VMs).
 */
#include "kernels/matmul.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/blas.h"
#include "kernels/matmul_gemm.h"
#include "kernels/matmul_qgemm.h"

#define CHUNK_MIN_BYTES (16 * 1024)       /* below this the atomic hand-out costs too much */
#define CHUNK_MAX_BYTES (256 * 1024)      /* W chunk kept in L2 while tiles pass over it */
#define TILE_BYTES (256 * 1024)           /* quantized activation rows per tile */
#define CHUNKS_PER_THREAD 8               /* load balance for shared / noisy machines */
#define QGEMM_CHUNK_BYTES (256 * 1024)    /* unpacked strips per chunk */
#define QGEMM_TILE_BYTES (96 * 1024)      /* quantized activation rows per tile (x 8) */
#define BLAS_PANEL_ROWS 512               /* W rows per sgemm call (see matmul_blas) */
#define QUANTIZE_ROWS 4                   /* activation rows per hand-out */
#define GEMM_CHUNK_ROWS 128               /* W rows per gemm chunk (see matmul_gemm) */
#define GEMM_K_BLOCK 1024                 /* weights per gemm K block */
#define PREFETCH_AHEAD_BYTES 4096          /* vec_dot path, quantized W: see dot_chunk */

/* Measured crossovers (activation rows from which the qgemm beats vec_dot),
 * see the comment on quarry_matmul_qgemm_min_m(). */
#define QGEMM_MIN_M_LEGACY 3
#define QGEMM_MIN_M_KQUANT 4

struct quarry_matmul_ws {
    void *buf;
    size_t cap;
};

quarry_matmul_ws *quarry_matmul_ws_new(void)
{
    return calloc(1, sizeof(struct quarry_matmul_ws));
}

void quarry_matmul_ws_free(quarry_matmul_ws *ws)
{
    if (!ws)
        return;
    free(ws->buf);
    free(ws);
}

/* Returns ws's buffer grown to at least size bytes (64-byte aligned), or NULL.
 * The contents are not kept. */
static void *ws_reserve(quarry_matmul_ws *ws, size_t size)
{
    if (size <= ws->cap && ws->buf)
        return ws->buf;
    size_t cap = (size + 63) & ~(size_t)63;
    void *buf = aligned_alloc(64, cap);
    if (!buf)
        return NULL;
    free(ws->buf);
    ws->buf = buf;
    ws->cap = cap;
    return buf;
}

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static const struct quarry_type_traits *table_entry(const struct quarry_type_traits *table,
                                                    enum quarry_type t)
{
    if (!table)
        return quarry_traits(t);
    if ((unsigned)t >= QUARRY_TYPE_COUNT || table[t].name == NULL)
        return NULL;
    return &table[t];
}

/* ---- path choice ---------------------------------------------------------- */

static int is_float_type(enum quarry_type t)
{
    return t == QUARRY_TYPE_F32 || t == QUARRY_TYPE_F16 || t == QUARRY_TYPE_BF16;
}

static int blas_possible(const struct quarry_type_traits *table, enum quarry_type wtype)
{
    if (!quarry_blas())
        return 0;
    if (wtype == QUARRY_TYPE_F32)
        return 1;
    const struct quarry_type_traits *tr = table_entry(table, wtype);
    return is_float_type(wtype) && tr && tr->to_float;
}

/* The qgemm needs AVX-512 VNNI, and the table must be at that level: a table
 * built for a lower level (tests, QUARRY_ISA=avx2) keeps to its level. */
static int qgemm_possible(const struct quarry_type_traits *table, enum quarry_type wtype)
{
    if (quarry_isa_detected() < QUARRY_ISA_AVX512 || !quarry_qgemm_supported(wtype))
        return 0;
    const struct quarry_type_traits *tr = table_entry(table, wtype);
    return tr && tr->vec_dot && tr->isa >= QUARRY_ISA_AVX512;
}

/* The gemm needs AVX-512F, and the table must be at that level (as for the
 * qgemm: a table of a lower level keeps to its level). */
static int gemm_possible(const struct quarry_type_traits *table, enum quarry_type wtype)
{
    if (quarry_isa_detected() < QUARRY_ISA_AVX512 || !quarry_gemm_supported(wtype))
        return 0;
    const struct quarry_type_traits *tr = table_entry(table, wtype);
    return tr && tr->isa >= QUARRY_ISA_AVX512;
}

/*
 * Crossover m of the qgemm against vec_dot, measured on the 2-core Zen 4 VM
 * (one thread, weights cold in memory, the two paths interleaved, best of 9
 * to 15 runs): unpacking a matrix costs one to three vec_dot rows, after
 * which an activation row costs a fifth to a tenth of a vec_dot row.
 *   n x k = 2048 x 2048: q4_0 wins from m = 3 (302 vs 239 us at 3; it won
 *     from 2 before the legacy vec_dots got their 16-sum fold), q8_0 and
 *     q5_0 tie at 3 and win from 4 (453 vs 346 us for q8_0), q4_1 q5_1 q3_K
 *     win from 3, q2_K q4_K q5_K from 4 (ties at 3), q6_K from 5 (448 vs 348
 *     us at 6, 304 vs 329 at 4)
 *   n x k = 2048 x 5632: q4_0 q8_0 from 2, q4_K from 3-4, q6_K from 4
 * Results do not depend on the choice: both paths give the same bits.
 */
int64_t quarry_matmul_qgemm_min_m(enum quarry_type wtype)
{
    if (!quarry_qgemm_supported(wtype))
        return INT64_MAX;
    switch (wtype) {
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q5_1:
    case QUARRY_TYPE_Q8_0: return QGEMM_MIN_M_LEGACY;
    default: return QGEMM_MIN_M_KQUANT;
    }
}

enum quarry_matmul_path quarry_matmul_path(const struct quarry_matmul_opts *opts,
                                           enum quarry_type wtype, int64_t n, int64_t k,
                                           int64_t m)
{
    const struct quarry_matmul_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    /* float weights: the gemm (AVX-512) first, else BLAS; BLAS_NEVER keeps
     * them on vec_dot unless the gemm is forced */
    const int gemm = opts->gemm != QUARRY_MATMUL_GEMM_NEVER && gemm_possible(opts->table, wtype);
    if (gemm && opts->gemm == QUARRY_MATMUL_GEMM_ALWAYS)
        return QUARRY_MATMUL_PATH_GEMM;
    if (opts->blas != QUARRY_MATMUL_BLAS_NEVER) {
        const int blas = blas_possible(opts->table, wtype);
        if (blas && opts->blas == QUARRY_MATMUL_BLAS_ALWAYS)
            return QUARRY_MATMUL_PATH_BLAS;
        if (gemm && m >= QUARRY_MATMUL_GEMM_MIN && n >= QUARRY_MATMUL_GEMM_MIN &&
            k >= QUARRY_MATMUL_GEMM_MIN)
            return QUARRY_MATMUL_PATH_GEMM;
        if (blas && m >= QUARRY_MATMUL_BLAS_MIN && n >= QUARRY_MATMUL_BLAS_MIN &&
            k >= QUARRY_MATMUL_BLAS_MIN)
            return QUARRY_MATMUL_PATH_BLAS;
    }
    if (opts->qgemm != QUARRY_MATMUL_QGEMM_NEVER && qgemm_possible(opts->table, wtype)) {
        if (opts->qgemm == QUARRY_MATMUL_QGEMM_ALWAYS || m >= quarry_matmul_qgemm_min_m(wtype))
            return QUARRY_MATMUL_PATH_QGEMM;
    }
    return QUARRY_MATMUL_PATH_VEC_DOT;
}

const char *quarry_matmul_path_name(enum quarry_matmul_path path)
{
    switch (path) {
    case QUARRY_MATMUL_PATH_QGEMM: return "qgemm";
    case QUARRY_MATMUL_PATH_BLAS: return "blas";
    case QUARRY_MATMUL_PATH_GEMM: return "gemm";
    default: return "vec_dot";
    }
}

int quarry_matmul_uses_blas(const struct quarry_matmul_opts *opts, enum quarry_type wtype,
                            int64_t n, int64_t k, int64_t m)
{
    return quarry_matmul_path(opts, wtype, n, k, m) == QUARRY_MATMUL_PATH_BLAS;
}

/* ---- running tasks -------------------------------------------------------- */

/* How a product runs: on the pool, or on the caller alone (serial). */
struct runner {
    quarry_threadpool *pool;
    int serial;
    int n_threads; /* 1 when serial */
};

/* The pool, or the caller alone for products (weight bytes x activation
 * rows) too small to pay for waking it, or when opts says so. */
static struct runner make_runner(quarry_threadpool *pool, const struct quarry_matmul_opts *opts,
                                 double bytes)
{
    struct runner r = {.pool = pool, .n_threads = quarry_threadpool_size(pool)};
    r.serial = r.n_threads == 1 || opts->serial || bytes < (double)QUARRY_MATMUL_SERIAL_BYTES;
    if (r.serial)
        r.n_threads = 1;
    return r;
}

static void run(const struct runner *r, quarry_task_fn fn, void *arg)
{
    if (r->serial)
        fn(arg, 0, 1);
    else
        quarry_threadpool_run_any(r->pool, fn, arg);
}

/* ---- activation quantization ------------------------------------------ */

struct quantize_task {
    quarry_from_float_fn from_float;
    enum quarry_type wtype;
    const float *x;   /* m rows of k floats */
    uint8_t *xq;      /* m rows of xq_row_bytes */
    size_t xq_row_bytes;
    uint8_t *act;     /* NULL, or m rows of act_row_bytes (qgemm's repacked rows) */
    size_t act_row_bytes;
    int64_t k, m;
    atomic_int_fast64_t next;
};

static void quantize_rows(void *arg, int ti, int nt)
{
    struct quantize_task *t = arg;
    (void)ti, (void)nt;
    for (int64_t i0 = atomic_fetch_add(&t->next, QUANTIZE_ROWS); i0 < t->m;
         i0 = atomic_fetch_add(&t->next, QUANTIZE_ROWS)) {
        for (int64_t i = i0; i < min64(t->m, i0 + QUANTIZE_ROWS); i++) {
            uint8_t *row = t->xq + (size_t)i * t->xq_row_bytes;
            t->from_float(t->x + i * t->k, row, t->k);
            if (t->act)
                quarry_qgemm_act(t->wtype, row, t->k, t->act + (size_t)i * t->act_row_bytes);
        }
    }
}

/* Quantizes X to the activation type into xq (and the qgemm's repacked rows
 * into act when given). */
static void quantize_activations(const struct runner *r, quarry_from_float_fn from_float,
                                 enum quarry_type wtype, const float *x, int64_t m, int64_t k,
                                 uint8_t *xq, size_t xq_row_bytes, uint8_t *act,
                                 size_t act_row_bytes)
{
    struct quantize_task qt = {.from_float = from_float, .wtype = wtype, .x = x, .xq = xq,
                               .xq_row_bytes = xq_row_bytes, .act = act,
                               .act_row_bytes = act_row_bytes, .k = k, .m = m};
    atomic_init(&qt.next, 0);
    if (m <= QUANTIZE_ROWS) {
        quantize_rows(&qt, 0, 1);
        return;
    }
    run(r, quantize_rows, &qt);
}

/* ---- the vec_dot path ----------------------------------------------------- */

/* One weight matrix of a vec_dot product (several when they share X). */
struct dot_part {
    quarry_vec_dot_fn vec_dot;
    const uint8_t *w;          /* n rows of w_row_bytes */
    size_t w_row_bytes;
    float *y;                  /* m rows of n */
    int64_t n, chunk_rows, first_chunk;
    int prefetch;              /* software prefetch of W (see dot_chunk) */
};

struct dot_task {
    struct dot_part parts[QUARRY_MATMUL_MAX_PARTS];
    int n_parts;
    const uint8_t *xq;         /* m rows of xq_row_bytes */
    size_t xq_row_bytes;
    int64_t m;
    int k;
    int64_t n_chunks, tile_rows;
    atomic_int_fast64_t next_chunk;
};

/*
 * Before each W row, the bytes PREFETCH_AHEAD_BYTES further on are
 * prefetched, one row's worth, so the stream is requested about 4 KiB ahead
 * of the dot products. For quantized weights in decoding (one activation row,
 * W streamed from memory once) this measured +15-25% on Q4_0 tg128 and +5%
 * on Q8_0, Q6_K and Q4_K_M (TinyLlama-1.1B shapes, 2 threads, Zen 5 VM; 2 KiB
 * ahead gave half the gain, 6-8 KiB about the same); for F16 it cost 2-3%,
 * so float weights are left to the hardware prefetcher. Prefetches past the
 * end of W are harmless (they never fault).
 */
static void dot_chunk(const struct dot_task *t, int64_t chunk)
{
    const struct dot_part *p = &t->parts[0];
    while (p + 1 < t->parts + t->n_parts && chunk >= p[1].first_chunk)
        p++;
    const int64_t j0 = (chunk - p->first_chunk) * p->chunk_rows, j1 = min64(p->n, j0 + p->chunk_rows);
    for (int64_t i0 = 0; i0 < t->m; i0 += t->tile_rows) {
        const int64_t i1 = min64(t->m, i0 + t->tile_rows);
        for (int64_t j = j0; j < j1; j++) {
            const uint8_t *wrow = p->w + (size_t)j * p->w_row_bytes;
            if (p->prefetch) {
                const char *ahead = (const char *)wrow + PREFETCH_AHEAD_BYTES;
                for (size_t o = 0; o < p->w_row_bytes; o += 64)
                    __builtin_prefetch(ahead + o, 0, 3);
            }
            for (int64_t i = i0; i < i1; i++)
                p->vec_dot(t->k, &p->y[i * p->n + j], wrow, t->xq + (size_t)i * t->xq_row_bytes);
        }
    }
}

static void dot_rows(void *arg, int ti, int nt)
{
    struct dot_task *t = arg;
    (void)ti, (void)nt;
    for (int64_t c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed);
         c < t->n_chunks; c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed))
        dot_chunk(t, c);
}

/* Quantizer of the activation type atr, or an error. */
static int activation_quantizer(const struct quarry_type_traits *atr, quarry_from_float_fn *out,
                                quarry_error *err)
{
    *out = atr->from_float ? atr->from_float : atr->from_float_ref;
    if (!*out)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "matmul: no quantizer for activation type %s", atr->name);
    return 0;
}

/* Whether the parts can run as one vec_dot product: each takes the vec_dot
 * path, all have one activation type and the same activation preparation (or
 * none), so one quantized (prepared) X serves them all. */
static int can_share_activations(const struct quarry_matmul_opts *opts,
                                 const struct quarry_matmul_part *parts, int n_parts, int64_t k,
                                 int64_t m)
{
    const struct quarry_type_traits *first = table_entry(opts->table, parts[0].type);
    if (!first)
        return 0;
    for (int p = 0; p < n_parts; p++) {
        const struct quarry_type_traits *tr = table_entry(opts->table, parts[p].type);
        if (!tr || !tr->vec_dot || tr->vec_dot_type != first->vec_dot_type ||
            tr->act_prepare != first->act_prepare || !parts[p].w || !parts[p].y ||
            parts[p].n <= 0 || quarry_row_size(parts[p].type, k) == 0 ||
            quarry_matmul_path(opts, parts[p].type, parts[p].n, k, m) != QUARRY_MATMUL_PATH_VEC_DOT)
            return 0;
    }
    return table_entry(opts->table, first->vec_dot_type) && quarry_row_size(first->vec_dot_type, k) > 0;
}

/* The vec_dot path over n_parts weight matrices that share X (see
 * can_share_activations): X is quantized (and prepared) once and the chunks
 * of all parts are handed out from one counter, in one run of the pool. */
static int matmul_vec_dot(const struct quarry_matmul_opts *opts, const struct runner *r,
                          quarry_matmul_ws *ws, const struct quarry_matmul_part *parts,
                          int n_parts, int64_t k, const float *x, int64_t m, quarry_error *err)
{
    const struct quarry_type_traits *wtr = table_entry(opts->table, parts[0].type);
    const struct quarry_type_traits *atr = table_entry(opts->table, wtr->vec_dot_type);
    const uint8_t *xq;
    size_t xq_row_bytes;
    /* prepared activations only where every part has the prepared kernel */
    int prepare = !opts->unprepared;
    for (int p = 0; p < n_parts; p++)
        prepare &= table_entry(opts->table, parts[p].type)->vec_dot_prepared != NULL;
    if (wtr->vec_dot_type == QUARRY_TYPE_F32) {
        xq = (const uint8_t *)x;
        xq_row_bytes = (size_t)k * sizeof(float);
        prepare = 0;
    } else {
        quarry_from_float_fn from_float;
        int rc = activation_quantizer(atr, &from_float, err);
        if (rc)
            return rc;
        xq_row_bytes = quarry_row_size(wtr->vec_dot_type, k);
        /* the quantized rows, then (where the types have them) the prepared ones */
        const size_t prepared_row_bytes = prepare ? wtr->act_prepared_size(k) : 0;
        const size_t bytes = align64(xq_row_bytes * (size_t)m) + prepared_row_bytes * (size_t)m;
        uint8_t *buf = ws_reserve(ws, bytes);
        if (!buf)
            return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%zu bytes)", bytes);
        quantize_activations(r, from_float, parts[0].type, x, m, k, buf, xq_row_bytes, NULL, 0);
        xq = buf;
        if (prepare) {
            uint8_t *prepared = buf + align64(xq_row_bytes * (size_t)m);
            for (int64_t i = 0; i < m; i++)
                wtr->act_prepare(k, buf + (size_t)i * xq_row_bytes,
                                 prepared + (size_t)i * prepared_row_bytes);
            xq = prepared;
            xq_row_bytes = prepared_row_bytes;
        }
    }

    struct dot_task t = {
        .n_parts = n_parts, .xq = xq, .xq_row_bytes = xq_row_bytes, .m = m, .k = (int)k,
    };
    int64_t n_total = 0;
    for (int p = 0; p < n_parts; p++)
        n_total += parts[p].n;
    for (int p = 0; p < n_parts; p++) {
        const struct quarry_type_traits *tr = table_entry(opts->table, parts[p].type);
        struct dot_part *d = &t.parts[p];
        d->vec_dot = prepare ? tr->vec_dot_prepared : tr->vec_dot;
        d->w = parts[p].w;
        d->w_row_bytes = quarry_row_size(parts[p].type, k);
        d->y = parts[p].y;
        d->n = parts[p].n;
        d->prefetch = !is_float_type(parts[p].type);
        const int64_t row = (int64_t)d->w_row_bytes;
        if (opts->rows_per_chunk > 0) {
            d->chunk_rows = opts->rows_per_chunk;
        } else if (r->n_threads == 1) {
            /* one thread: chunks only for the cache plan */
            d->chunk_rows = m > 1 ? max64(1, CHUNK_MAX_BYTES / row) : d->n;
        } else {
            /* the balance is over all parts' rows */
            const int64_t balanced = ceil_div(n_total, (int64_t)r->n_threads * CHUNKS_PER_THREAD);
            int64_t rows = max64(balanced, ceil_div(CHUNK_MIN_BYTES, row));
            if (m > 1) /* the chunk is reused across tiles: keep it in L2 */
                rows = min64(rows, max64(1, CHUNK_MAX_BYTES / row));
            d->chunk_rows = max64(1, rows);
        }
        d->first_chunk = t.n_chunks;
        t.n_chunks += ceil_div(d->n, d->chunk_rows);
    }
    t.tile_rows = opts->cols_per_tile > 0
                      ? opts->cols_per_tile
                      : max64(1, TILE_BYTES / (int64_t)xq_row_bytes);
    atomic_init(&t.next_chunk, 0);
    run(r, dot_rows, &t);
    return 0;
}

/* ---- the qgemm path ------------------------------------------------------- */

struct qgemm_task {
    enum quarry_type wtype;
    const uint8_t *w;          /* n rows of w_row_bytes */
    size_t w_row_bytes;
    const uint8_t *act;        /* m rows of act_row_bytes (repacked or q8_K) */
    size_t act_row_bytes;
    float *y;                  /* m rows of n */
    int64_t n, k, m;
    uint8_t *strips;           /* per thread: strips_per_chunk strips */
    size_t strip_bytes;
    int64_t strips_per_chunk, n_chunks, tile_rows;
    atomic_int_fast64_t next_chunk;
};

static void qgemm_rows(void *arg, int ti, int nt)
{
    struct qgemm_task *t = arg;
    (void)nt;
    uint8_t *mine = t->strips + (size_t)ti * (size_t)t->strips_per_chunk * t->strip_bytes;
    const int64_t chunk_rows = t->strips_per_chunk * QUARRY_QGEMM_ROWS;
    for (int64_t c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed);
         c < t->n_chunks; c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed)) {
        const int64_t j0 = c * chunk_rows;
        const int64_t n_strips = ceil_div(min64(chunk_rows, t->n - j0), QUARRY_QGEMM_ROWS);
        for (int64_t s = 0; s < n_strips; s++) {
            const int64_t js = j0 + s * QUARRY_QGEMM_ROWS;
            quarry_qgemm_pack(t->wtype, t->w + (size_t)js * t->w_row_bytes, t->w_row_bytes,
                              (int)min64(QUARRY_QGEMM_ROWS, t->n - js), t->k,
                              mine + (size_t)s * t->strip_bytes);
        }
        for (int64_t i0 = 0; i0 < t->m; i0 += t->tile_rows) {
            const int64_t mt = min64(t->tile_rows, t->m - i0);
            for (int64_t s = 0; s < n_strips; s++) {
                const int64_t js = j0 + s * QUARRY_QGEMM_ROWS;
                quarry_qgemm_multiply(t->wtype, mine + (size_t)s * t->strip_bytes,
                                      (int)min64(QUARRY_QGEMM_ROWS, t->n - js), t->k,
                                      t->act + (size_t)i0 * t->act_row_bytes, t->act_row_bytes,
                                      mt, t->y + i0 * t->n + js, t->n);
            }
        }
    }
}

static int matmul_qgemm(const struct quarry_matmul_opts *opts, const struct runner *r,
                        quarry_threadpool *pool, quarry_matmul_ws *ws,
                        const struct quarry_type_traits *wtr, const struct quarry_type_traits *atr,
                        enum quarry_type wtype, const void *w, size_t w_row_bytes, int64_t n,
                        int64_t k, const float *x, int64_t m, float *y, quarry_error *err)
{
    quarry_from_float_fn from_float;
    int rc = activation_quantizer(atr, &from_float, err);
    if (rc)
        return rc;
    const size_t xq_row_bytes = quarry_row_size(wtr->vec_dot_type, k);
    const size_t act_row_bytes = quarry_qgemm_act_bytes(wtype, k); /* 0: use xq */
    const size_t strip_bytes = quarry_qgemm_strip_bytes(wtype, k);
    const int64_t n_strips = ceil_div(n, QUARRY_QGEMM_ROWS);
    int64_t spc; /* strips per chunk */
    if (opts->rows_per_chunk > 0) {
        spc = ceil_div(opts->rows_per_chunk, QUARRY_QGEMM_ROWS);
    } else {
        spc = max64(1, QGEMM_CHUNK_BYTES / (int64_t)strip_bytes);
        /* at least CHUNKS_PER_THREAD/2 chunks per thread where n allows */
        spc = min64(spc, max64(1, n_strips / ((int64_t)r->n_threads * CHUNKS_PER_THREAD / 2)));
    }
    spc = min64(spc, n_strips);
    /* every pool thread may run the task: scratch for all of them */
    const int n_scratch = quarry_threadpool_size(pool);
    const size_t xq_bytes = align64(xq_row_bytes * (size_t)m);
    const size_t act_bytes = align64(act_row_bytes * (size_t)m);
    const size_t strips_bytes = (size_t)n_scratch * (size_t)spc * strip_bytes;
    uint8_t *buf = ws_reserve(ws, xq_bytes + act_bytes + strips_bytes);
    if (!buf)
        return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%zu bytes)",
                             xq_bytes + act_bytes + strips_bytes);
    uint8_t *xq = buf, *act = act_row_bytes ? buf + xq_bytes : NULL;
    quantize_activations(r, from_float, wtype, x, m, k, xq, xq_row_bytes, act, act_row_bytes);

    struct qgemm_task t = {
        .wtype = wtype, .w = w, .w_row_bytes = w_row_bytes, .act = act ? act : xq,
        .act_row_bytes = act ? act_row_bytes : xq_row_bytes, .y = y, .n = n, .k = k, .m = m,
        .strips = buf + xq_bytes + act_bytes, .strip_bytes = strip_bytes,
        .strips_per_chunk = spc, .n_chunks = ceil_div(n_strips, spc),
        .tile_rows = opts->cols_per_tile > 0
                         ? opts->cols_per_tile
                         : max64(8, QGEMM_TILE_BYTES / (int64_t)(act ? act_row_bytes : xq_row_bytes) / 8 * 8),
    };
    atomic_init(&t.next_chunk, 0);
    run(r, qgemm_rows, &t);
    return 0;
}

/* ---- the BLAS path -------------------------------------------------------- */

struct blas_task {
    const struct quarry_blas *blas;
    enum quarry_type wtype;
    quarry_to_float_fn to_float;
    const uint8_t *w;      /* n rows of w_row_bytes */
    size_t w_row_bytes;
    const float *x;        /* m x k */
    float *y;              /* m x n */
    int n, k, m;
    float *panels;         /* per thread: panel_rows x k floats (F16/BF16) */
    int64_t panel_rows, n_chunks;
    atomic_int_fast64_t next_chunk;
};

static void blas_rows(void *arg, int ti, int nt)
{
    struct blas_task *t = arg;
    (void)nt;
    float *panel = t->panels ? t->panels + (size_t)ti * (size_t)t->panel_rows * (size_t)t->k : NULL;
    for (int64_t c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed);
         c < t->n_chunks; c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed)) {
        const int64_t j0 = c * t->panel_rows;
        const int rows = (int)min64(t->panel_rows, t->n - j0);
        const uint8_t *wrows = t->w + (size_t)j0 * t->w_row_bytes;
        const float *pw = (const float *)wrows;
        if (t->wtype != QUARRY_TYPE_F32) {
            for (int r = 0; r < rows; r++)
                t->to_float(wrows + (size_t)r * t->w_row_bytes, panel + (size_t)r * t->k, t->k);
            pw = panel;
        }
        /* columns j0 .. j0+rows of Y (m x n, ld n) = X (m x k) . pw^T (rows x k) */
        t->blas->sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->m, rows, t->k, 1.0f, t->x, t->k,
                    pw, t->k, 0.0f, t->y + j0, t->n);
    }
}

static int matmul_blas(const struct quarry_matmul_opts *opts, const struct runner *r,
                       quarry_threadpool *pool, quarry_matmul_ws *ws,
                       const struct quarry_type_traits *wtr, enum quarry_type wtype,
                       const void *w, size_t w_row_bytes, int64_t n, int64_t k, const float *x,
                       int64_t m, float *y, quarry_error *err)
{
    if (n > INT_MAX || k > INT_MAX || m > INT_MAX)
        return quarry_errorf(err, QUARRY_ERANGE, "matmul: shape too large for BLAS");
    /* each pool thread runs its own single-threaded sgemm
     * Measured (F16, m = 512, one thread): 2048 x 5632 weights ran at 59
     * GFLOP/s in 46-row panels (1 MiB of floats), 77 at 186 rows, 83 at 512,
     * 84 at 2048; 2048 x 2048 at 96-98 from 128 rows up. */
    const struct quarry_blas *blas = quarry_blas(); /* non-NULL: blas_possible() */
    if (blas->get_num_threads() != 1)
        blas->set_num_threads(1);
    /* Each sgemm call repacks all of X, so calls should be few and wide:
     * BLAS_PANEL_ROWS rows, fewer only where the threads would otherwise go
     * without work. */
    int64_t rows = opts->rows_per_chunk > 0
                       ? opts->rows_per_chunk
                       : max64(16, min64(BLAS_PANEL_ROWS, ceil_div(n, (int64_t)r->n_threads)));
    rows = min64(rows, n);
    struct blas_task t = {.blas = blas, .wtype = wtype, .to_float = wtr->to_float, .w = w,
                          .w_row_bytes = w_row_bytes, .x = x, .y = y, .n = (int)n, .k = (int)k,
                          .m = (int)m, .panel_rows = rows, .n_chunks = ceil_div(n, rows)};
    if (wtype != QUARRY_TYPE_F32) {
        const size_t bytes = (size_t)quarry_threadpool_size(pool) * (size_t)rows * (size_t)k *
                             sizeof(float);
        t.panels = ws_reserve(ws, bytes);
        if (!t.panels)
            return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%zu bytes)", bytes);
    }
    atomic_init(&t.next_chunk, 0);
    run(r, blas_rows, &t);
    return 0;
}

/* ---- the gemm path -------------------------------------------------------- */

struct gemm_task {
    struct quarry_gemm_args args;
    float *panels;          /* per thread: chunk_rows x kc floats */
    size_t panel_floats;
    int64_t chunk_rows;
    atomic_int_fast64_t next_chunk;
};

static void gemm_rows(void *arg, int ti, int nt)
{
    struct gemm_task *t = arg;
    (void)nt;
    quarry_gemm_thread(&t->args, &t->next_chunk, t->chunk_rows,
                       t->panels + (size_t)ti * t->panel_floats);
}

/*
 * Threads take chunks of chunk_rows W rows; per chunk and K block of kc
 * weights the chunk is converted into a panel of chunk_rows x kc floats
 * (128 x 1024 x 4 = 512 KiB: L2) and every 12-row X panel's block is
 * multiplied with its strips; X panels are packed on first use by whichever
 * thread needs one (kernels/matmul_gemm.h).
 * Measured (F16, m = 512, 2 threads, interleaved, best of 8-20; weights read
 * from the model file's mapping): kc from 512 to 2048 and chunks of 64 to
 * 256 rows within +-3% of each other on 2048x2048, 2048x5632, 5632x2048;
 * kc = 1024 halves the read-modify-write passes over Y against 512 and was
 * 1-3% ahead end to end (pp512). Chunks of 128 rows give 8 per thread on
 * 2048-row matrices, for balance when the other core is taken by another
 * process.
 */
static int matmul_gemm(const struct quarry_matmul_opts *opts, const struct runner *r,
                       quarry_threadpool *pool, quarry_matmul_ws *ws, enum quarry_type wtype,
                       const void *w, size_t w_row_bytes, int64_t n, int64_t k, const float *x,
                       int64_t m, float *y, quarry_error *err)
{
    const int64_t kc = min64(k, opts->k_block > 0 ? opts->k_block : GEMM_K_BLOCK);
    int64_t rows;
    if (opts->rows_per_chunk > 0) {
        rows = opts->rows_per_chunk;
    } else {
        /* at most GEMM_CHUNK_ROWS, and CHUNKS_PER_THREAD / 2 chunks per thread where n allows */
        rows = min64(GEMM_CHUNK_ROWS, ceil_div(n, (int64_t)r->n_threads * (CHUNKS_PER_THREAD / 2)));
    }
    /* whole strips of 32 rows, no more than n needs */
    rows = min64(ceil_div(rows, QUARRY_GEMM_NR), ceil_div(n, QUARRY_GEMM_NR)) * QUARRY_GEMM_NR;
    const int64_t n_panels = quarry_gemm_x_panels(m);
    const size_t xp_bytes = align64((size_t)n_panels * (size_t)k * QUARRY_GEMM_MR * sizeof(float));
    const size_t panel_floats = (size_t)rows * (size_t)kc; /* a multiple of 32: 64-byte aligned */
    const size_t panels_bytes = (size_t)quarry_threadpool_size(pool) * panel_floats * sizeof(float);
    const size_t bytes = xp_bytes + panels_bytes + (size_t)n_panels * sizeof(atomic_uchar);
    uint8_t *buf = ws_reserve(ws, bytes);
    if (!buf)
        return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%zu bytes)", bytes);
    atomic_uchar *ready = (atomic_uchar *)(buf + xp_bytes + panels_bytes);
    for (int64_t p = 0; p < n_panels; p++)
        atomic_init(&ready[p], 0);

    atomic_int_fast64_t next_panel;
    atomic_init(&next_panel, 0);
    struct gemm_task t = {
        .args = {.wtype = wtype, .w = w, .w_row_bytes = w_row_bytes, .n = n, .k = k, .m = m,
                 .x = x, .xp = (float *)buf, .ready = ready, .next_panel = &next_panel, .y = y,
                 .kc = kc},
        .panels = (float *)(buf + xp_bytes), .panel_floats = panel_floats,
        .chunk_rows = rows,
    };
    atomic_init(&t.next_chunk, 0);
    run(r, gemm_rows, &t);
    return 0;
}

/* ---- entry points --------------------------------------------------------- */

int quarry_matmul_ex(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                     quarry_matmul_ws *ws, enum quarry_type wtype, const void *w, int64_t n,
                     int64_t k, const float *x, int64_t m, float *y, quarry_error *err)
{
    const struct quarry_matmul_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (n < 0 || k < 0 || m < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "matmul: negative shape (n=%lld k=%lld m=%lld)",
                             (long long)n, (long long)k, (long long)m);
    if (n == 0 || m == 0)
        return 0;
    if (!w || !x || !y)
        return quarry_errorf(err, QUARRY_EINVAL, "matmul: NULL matrix");
    if (k > INT_MAX)
        return quarry_errorf(err, QUARRY_ERANGE, "matmul: rows of %lld weights are too long",
                             (long long)k);
    const struct quarry_type_traits *wtr = table_entry(opts->table, wtype);
    if (!wtr)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "matmul: unknown weight type %d", (int)wtype);
    const size_t w_row_bytes = quarry_row_size(wtype, k);
    if (k == 0 || w_row_bytes == 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "matmul: k=%lld is not a positive multiple of %s's block size %d",
                             (long long)k, wtr->name, wtr->block_size);

    quarry_matmul_ws *own_ws = NULL;
    if (!ws) {
        ws = own_ws = quarry_matmul_ws_new();
        if (!ws)
            return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory");
    }
    const struct runner r = make_runner(pool, opts, (double)w_row_bytes * (double)n * (double)m);
    const enum quarry_matmul_path path = quarry_matmul_path(opts, wtype, n, k, m);
    const struct quarry_type_traits *atr = NULL;
    int rc;
    if (path == QUARRY_MATMUL_PATH_GEMM) {
        rc = matmul_gemm(opts, &r, pool, ws, wtype, w, w_row_bytes, n, k, x, m, y, err);
    } else if (path == QUARRY_MATMUL_PATH_BLAS) {
        rc = matmul_blas(opts, &r, pool, ws, wtr, wtype, w, w_row_bytes, n, k, x, m, y, err);
    } else if (!wtr->vec_dot) {
        rc = quarry_errorf(err, QUARRY_EUNSUPPORTED, "matmul: no dot-product kernel for %s",
                           wtr->name);
    } else if (!(atr = table_entry(opts->table, wtr->vec_dot_type)) ||
               quarry_row_size(wtr->vec_dot_type, k) == 0) {
        rc = quarry_errorf(err, QUARRY_EINVAL, "matmul: k=%lld does not fit %s's activation type",
                           (long long)k, wtr->name);
    } else if (path == QUARRY_MATMUL_PATH_QGEMM) {
        rc = matmul_qgemm(opts, &r, pool, ws, wtr, atr, wtype, w, w_row_bytes, n, k, x, m, y, err);
    } else {
        const struct quarry_matmul_part part = {.type = wtype, .w = w, .n = n, .y = y};
        rc = matmul_vec_dot(opts, &r, ws, &part, 1, k, x, m, err);
    }
    quarry_matmul_ws_free(own_ws);
    return rc;
}

int quarry_matmul_shared_ex(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                            quarry_matmul_ws *ws, const struct quarry_matmul_part *parts,
                            int n_parts, int64_t k, const float *x, int64_t m, quarry_error *err)
{
    const struct quarry_matmul_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (n_parts < 1 || n_parts > QUARRY_MATMUL_MAX_PARTS || !parts)
        return quarry_errorf(err, QUARRY_EINVAL, "matmul: %d parts (1 to %d)", n_parts,
                             QUARRY_MATMUL_MAX_PARTS);
    /* together only where the parts can share the quantized X (decoding);
     * otherwise each part on its own */
    if (n_parts == 1 || m <= 0 || k <= 0 || k > INT_MAX || !x ||
        !can_share_activations(opts, parts, n_parts, k, m)) {
        for (int p = 0; p < n_parts; p++) {
            int rc = quarry_matmul_ex(opts, pool, ws, parts[p].type, parts[p].w, parts[p].n, k, x,
                                      m, parts[p].y, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    double bytes = 0;
    for (int p = 0; p < n_parts; p++)
        bytes += (double)quarry_row_size(parts[p].type, k) * (double)parts[p].n * (double)m;
    quarry_matmul_ws *own_ws = NULL;
    if (!ws) {
        ws = own_ws = quarry_matmul_ws_new();
        if (!ws)
            return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory");
    }
    const struct runner r = make_runner(pool, opts, bytes);
    int rc = matmul_vec_dot(opts, &r, ws, parts, n_parts, k, x, m, err);
    quarry_matmul_ws_free(own_ws);
    return rc;
}

int quarry_matmul(quarry_threadpool *pool, quarry_matmul_ws *ws, enum quarry_type wtype,
                  const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                  quarry_error *err)
{
    return quarry_matmul_ex(NULL, pool, ws, wtype, w, n, k, x, m, y, err);
}
