/*
 * membw.c - streaming read bandwidth (see membw.h). The read loop uses SSE2
 * (baseline x86-64, so no -m flags are needed) with eight independent
 * accumulators so that loads, not the dependency chain, limit it; elsewhere
 * a plain 64-bit loop. The XOR of everything read is kept so the compiler
 * cannot drop the loads.
 */
#include "harness/membw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_THREADS 256

struct read_task {
    const uint8_t *buf;
    size_t bytes;               /* multiple of 128 * threads */
    uint64_t sink[MAX_THREADS]; /* one per thread, so the loads are used */
};

static uint64_t read_slice(const uint8_t *p, size_t bytes)
{
#if defined(__SSE2__)
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    for (size_t off = 0; off < bytes; off += 128) {
        const __m128i *v = (const __m128i *)(p + off);
        a0 = _mm_xor_si128(a0, _mm_load_si128(v + 0));
        a1 = _mm_xor_si128(a1, _mm_load_si128(v + 1));
        a2 = _mm_xor_si128(a2, _mm_load_si128(v + 2));
        a3 = _mm_xor_si128(a3, _mm_load_si128(v + 3));
        a4 = _mm_xor_si128(a4, _mm_load_si128(v + 4));
        a5 = _mm_xor_si128(a5, _mm_load_si128(v + 5));
        a6 = _mm_xor_si128(a6, _mm_load_si128(v + 6));
        a7 = _mm_xor_si128(a7, _mm_load_si128(v + 7));
    }
    a0 = _mm_xor_si128(_mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3)),
                       _mm_xor_si128(_mm_xor_si128(a4, a5), _mm_xor_si128(a6, a7)));
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)lanes, a0);
    return lanes[0] ^ lanes[1];
#else
    uint64_t acc[8] = {0};
    for (size_t off = 0; off < bytes; off += 64) {
        const uint64_t *v = (const uint64_t *)(p + off);
        for (int i = 0; i < 8; i++)
            acc[i] ^= v[i];
    }
    return acc[0] ^ acc[1] ^ acc[2] ^ acc[3] ^ acc[4] ^ acc[5] ^ acc[6] ^ acc[7];
#endif
}

static void read_task_fn(void *arg, int ti, int nt)
{
    struct read_task *t = arg;
    const size_t slice = t->bytes / (size_t)nt;
    t->sink[ti] ^= read_slice(t->buf + slice * (size_t)ti, slice);
}

static void fill_task_fn(void *arg, int ti, int nt)
{
    struct read_task *t = arg;
    const size_t slice = t->bytes / (size_t)nt;
    /* first touch from the thread that will read it (NUMA placement) */
    memset((uint8_t *)t->buf + slice * (size_t)ti, 0x5a + ti, slice);
}

int quarry_membw_read(quarry_threadpool *pool, size_t bytes, int runs,
                      struct quarry_membw_result *out, quarry_error *err)
{
    const int nt = quarry_threadpool_size(pool);
    if (bytes < ((size_t)1 << 20) || runs < 1 || runs > QUARRY_MEASURE_MAX_REPS || nt > MAX_THREADS)
        return quarry_errorf(err, QUARRY_EINVAL, "membw: %zu bytes, %d runs, %d threads", bytes,
                             runs, nt);
    const size_t unit = (size_t)128 * (size_t)nt;
    bytes -= bytes % unit;
    struct read_task *t = calloc(1, sizeof *t);
    uint8_t *buf = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    if (!t || !buf) {
        free(t);
        free(buf);
        return quarry_errorf(err, QUARRY_ENOMEM, "membw: cannot allocate %zu bytes", bytes);
    }
    t->buf = buf;
    t->bytes = bytes;
    quarry_threadpool_run(pool, fill_task_fn, t);
    quarry_threadpool_run(pool, read_task_fn, t); /* warm-up: TLB, page tables */

    double gbps[QUARRY_MEASURE_MAX_REPS];
    for (int r = 0; r < runs; r++) {
        const double t0 = quarry_now_s();
        quarry_threadpool_run(pool, read_task_fn, t);
        const double dt = quarry_now_s() - t0;
        gbps[r] = (double)bytes / dt * 1e-9;
    }
    out->threads = nt;
    out->bytes = bytes;
    quarry_stats_compute(gbps, runs, &out->gbps);
    out->best_gbps = out->gbps.max;
    /* fold the sinks into something observable so the reads stay */
    uint64_t s = 0;
    for (int i = 0; i < nt; i++)
        s ^= t->sink[i];
    __asm__ volatile("" : : "r"(s));
    free(buf);
    free(t);
    return 0;
}
