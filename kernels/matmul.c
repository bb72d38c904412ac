/*
 * matmul.c - Y = X . W^T over the traits table (see matmul.h for shapes and
 * the two paths). The kernels themselves (vec_dot, from_float, to_float) come
 * from the table; this file only quantizes the activations, splits the work
 * across threads and orders the loops for the caches.
 *
 * Cache plan for the vec_dot path (per thread, per chunk of W rows):
 *   for each tile of activation rows  (tile <= TILE_BYTES of quantized rows: L2)
 *     for each W row j in the chunk   (chunk <= CHUNK_MAX_BYTES: stays in L2)
 *       for each activation row i     (W row j is hot in L1 across the tile)
 *         Y[i][j] = vec_dot(W[j], Xq[i])
 * Sizes come from the core's private L2 (1 MiB here) and never from L3 (hwloc
 * reports a bogus L3 inside VMs).
 */
#include "kernels/matmul.h"

#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN_BYTES (32 * 1024)       /* below this the atomic hand-out costs too much */
#define CHUNK_MAX_BYTES (256 * 1024)      /* W chunk kept in L2 while tiles pass over it */
#define TILE_BYTES (256 * 1024)           /* quantized activation rows per tile */
#define CHUNKS_PER_THREAD 8               /* load balance for shared / noisy machines */
#define PANEL_BYTES (4 * 1024 * 1024)     /* F16/BF16 rows converted per sgemm call */

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

/* Returns ws's buffer grown to at least size bytes (64-byte aligned), or NULL. */
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

static int is_float_type(enum quarry_type t)
{
    return t == QUARRY_TYPE_F32 || t == QUARRY_TYPE_F16 || t == QUARRY_TYPE_BF16;
}

static int blas_possible(const struct quarry_type_traits *table, enum quarry_type wtype)
{
    if (wtype == QUARRY_TYPE_F32)
        return 1;
    const struct quarry_type_traits *tr = table_entry(table, wtype);
    return is_float_type(wtype) && tr && tr->to_float;
}

int quarry_matmul_uses_blas(const struct quarry_matmul_opts *opts, enum quarry_type wtype,
                            int64_t n, int64_t k, int64_t m)
{
    const struct quarry_matmul_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (opts->blas == QUARRY_MATMUL_BLAS_NEVER || !blas_possible(opts->table, wtype))
        return 0;
    if (opts->blas == QUARRY_MATMUL_BLAS_ALWAYS)
        return 1;
    return m >= QUARRY_MATMUL_BLAS_MIN && n >= QUARRY_MATMUL_BLAS_MIN &&
           k >= QUARRY_MATMUL_BLAS_MIN;
}

/* ---- activation quantization ------------------------------------------ */

struct quantize_task {
    quarry_from_float_fn from_float;
    const float *x;   /* m rows of k floats */
    uint8_t *xq;      /* m rows of xq_row_bytes */
    size_t xq_row_bytes;
    int64_t k, m;
};

static void quantize_rows(void *arg, int ti, int nt)
{
    const struct quantize_task *t = arg;
    for (int64_t i = ti; i < t->m; i += nt)
        t->from_float(t->x + i * t->k, t->xq + (size_t)i * t->xq_row_bytes, t->k);
}

/* ---- the vec_dot path ----------------------------------------------------- */

struct dot_task {
    quarry_vec_dot_fn vec_dot;
    const uint8_t *w;          /* n rows of w_row_bytes */
    size_t w_row_bytes;
    const uint8_t *xq;         /* m rows of xq_row_bytes */
    size_t xq_row_bytes;
    float *y;                  /* m rows of n */
    int64_t n, m;
    int k;
    int64_t chunk_rows, n_chunks, tile_rows;
    atomic_int_fast64_t next_chunk; /* chunks below n_threads are pre-assigned */
};

static void dot_chunk(const struct dot_task *t, int64_t chunk)
{
    const int64_t j0 = chunk * t->chunk_rows, j1 = min64(t->n, j0 + t->chunk_rows);
    for (int64_t i0 = 0; i0 < t->m; i0 += t->tile_rows) {
        const int64_t i1 = min64(t->m, i0 + t->tile_rows);
        for (int64_t j = j0; j < j1; j++) {
            const uint8_t *wrow = t->w + (size_t)j * t->w_row_bytes;
            for (int64_t i = i0; i < i1; i++)
                t->vec_dot(t->k, &t->y[i * t->n + j], wrow, t->xq + (size_t)i * t->xq_row_bytes);
        }
    }
}

static void dot_rows(void *arg, int ti, int nt)
{
    struct dot_task *t = arg;
    (void)nt;
    /* first chunk: the thread's own index, so m = 1 starts streaming at once */
    for (int64_t c = ti; c < t->n_chunks;
         c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed)) {
        dot_chunk(t, c);
    }
}

static int matmul_vec_dot(const struct quarry_matmul_opts *opts, quarry_threadpool *pool,
                          quarry_matmul_ws *ws, const struct quarry_type_traits *wtr,
                          const struct quarry_type_traits *atr, const void *w, size_t w_row_bytes,
                          int64_t n, int64_t k, const float *x, int64_t m, float *y,
                          quarry_error *err)
{
    const int nt = quarry_threadpool_size(pool);
    const uint8_t *xq;
    size_t xq_row_bytes;
    if (wtr->vec_dot_type == QUARRY_TYPE_F32) {
        xq = (const uint8_t *)x;
        xq_row_bytes = (size_t)k * sizeof(float);
    } else {
        quarry_from_float_fn from_float = atr->from_float ? atr->from_float : atr->from_float_ref;
        if (!from_float)
            return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                                 "matmul: no quantizer for activation type %s", atr->name);
        xq_row_bytes = quarry_row_size(wtr->vec_dot_type, k);
        uint8_t *buf = ws_reserve(ws, xq_row_bytes * (size_t)m);
        if (!buf)
            return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%zu bytes)",
                                 xq_row_bytes * (size_t)m);
        struct quantize_task qt = {from_float, x, buf, xq_row_bytes, k, m};
        if (m == 1)
            quantize_rows(&qt, 0, 1);
        else
            quarry_threadpool_run(pool, quantize_rows, &qt);
        xq = buf;
    }

    struct dot_task t = {
        .vec_dot = wtr->vec_dot, .w = w, .w_row_bytes = w_row_bytes, .xq = xq,
        .xq_row_bytes = xq_row_bytes, .y = y, .n = n, .m = m, .k = (int)k,
    };
    if (opts->rows_per_chunk > 0) {
        t.chunk_rows = opts->rows_per_chunk;
    } else {
        const int64_t row = (int64_t)w_row_bytes;
        const int64_t balanced = ceil_div(n, (int64_t)nt * CHUNKS_PER_THREAD);
        int64_t rows = max64(balanced, ceil_div(CHUNK_MIN_BYTES, row));
        if (m > 1) /* the chunk is reused across tiles: keep it in L2 */
            rows = min64(rows, max64(1, CHUNK_MAX_BYTES / row));
        t.chunk_rows = max64(1, rows);
    }
    t.n_chunks = ceil_div(n, t.chunk_rows);
    t.tile_rows = opts->cols_per_tile > 0
                      ? opts->cols_per_tile
                      : max64(1, TILE_BYTES / (int64_t)xq_row_bytes);
    atomic_init(&t.next_chunk, nt);
    quarry_threadpool_run(pool, dot_rows, &t);
    return 0;
}

/* ---- the BLAS path -------------------------------------------------------- */

struct convert_task {
    quarry_to_float_fn to_float;
    const uint8_t *w;      /* first row of the panel */
    size_t w_row_bytes;
    float *panel;          /* rows x k floats */
    int64_t rows, k;
};

static void convert_rows(void *arg, int ti, int nt)
{
    const struct convert_task *t = arg;
    const int64_t per = ceil_div(t->rows, nt);
    const int64_t r0 = ti * per, r1 = min64(t->rows, r0 + per);
    for (int64_t r = r0; r < r1; r++)
        t->to_float(t->w + (size_t)r * t->w_row_bytes, t->panel + r * t->k, t->k);
}

static int matmul_blas(quarry_threadpool *pool, quarry_matmul_ws *ws,
                       const struct quarry_type_traits *wtr, enum quarry_type wtype,
                       const void *w, size_t w_row_bytes, int64_t n, int64_t k, const float *x,
                       int64_t m, float *y, quarry_error *err)
{
    if (n > INT_MAX || k > INT_MAX || m > INT_MAX)
        return quarry_errorf(err, QUARRY_ERANGE, "matmul: shape too large for BLAS");
    openblas_set_num_threads(quarry_threadpool_size(pool));
    if (wtype == QUARRY_TYPE_F32) {
        /* Y (m x n, ld n) = X (m x k, ld k) . W^T (W: n x k, ld k) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, x,
                    (int)k, w, (int)k, 0.0f, y, (int)n);
        return 0;
    }
    const int64_t panel_rows = min64(n, max64(QUARRY_MATMUL_BLAS_MIN,
                                              PANEL_BYTES / (k * (int64_t)sizeof(float))));
    float *panel = ws_reserve(ws, (size_t)panel_rows * (size_t)k * sizeof(float));
    if (!panel)
        return quarry_errorf(err, QUARRY_ENOMEM, "matmul: out of memory (%lld x %lld panel)",
                             (long long)panel_rows, (long long)k);
    for (int64_t j0 = 0; j0 < n; j0 += panel_rows) {
        const int64_t rows = min64(panel_rows, n - j0);
        struct convert_task ct = {wtr->to_float, (const uint8_t *)w + (size_t)j0 * w_row_bytes,
                                  w_row_bytes, panel, rows, k};
        quarry_threadpool_run(pool, convert_rows, &ct);
        /* columns j0 .. j0+rows of Y = X . panel^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)rows, (int)k, 1.0f, x,
                    (int)k, panel, (int)k, 0.0f, y + j0, (int)n);
    }
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
    int rc;
    if (quarry_matmul_uses_blas(opts, wtype, n, k, m)) {
        rc = matmul_blas(pool, ws, wtr, wtype, w, w_row_bytes, n, k, x, m, y, err);
    } else if (!wtr->vec_dot) {
        rc = quarry_errorf(err, QUARRY_EUNSUPPORTED, "matmul: no dot-product kernel for %s",
                           wtr->name);
    } else {
        const struct quarry_type_traits *atr = table_entry(opts->table, wtr->vec_dot_type);
        if (!atr || quarry_row_size(wtr->vec_dot_type, k) == 0)
            rc = quarry_errorf(err, QUARRY_EINVAL,
                               "matmul: k=%lld does not fit %s's activation type",
                               (long long)k, wtr->name);
        else
            rc = matmul_vec_dot(opts, pool, ws, wtr, atr, w, w_row_bytes, n, k, x, m, y, err);
    }
    quarry_matmul_ws_free(own_ws);
    return rc;
}

int quarry_matmul(quarry_threadpool *pool, quarry_matmul_ws *ws, enum quarry_type wtype,
                  const void *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
                  quarry_error *err)
{
    return quarry_matmul_ex(NULL, pool, ws, wtype, w, n, k, x, m, y, err);
}
