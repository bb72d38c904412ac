/*
 * membw.h - memory read bandwidth, measured the way a decoding step reads
 * weights: every thread of the pool streams through its own contiguous slice
 * of one buffer far larger than the caches, and the run's time is that of
 * the slowest thread (the pool returns when all are done).
 *
 * The buffer is written once before measuring (so its pages exist), then read
 * `runs` times; the best run is the figure to compare kernels against (the
 * machine's reachable ceiling), the mean and spread show how noisy it was.
 */
#ifndef QUARRY_HARNESS_MEMBW_H
#define QUARRY_HARNESS_MEMBW_H

#include <stddef.h>

#include "engine/error.h"
#include "engine/threadpool.h"
#include "harness/timing.h"

struct quarry_membw_result {
    int threads;
    size_t bytes;               /* buffer size read per run */
    double best_gbps;           /* 1 GB = 1e9 bytes */
    struct quarry_stats gbps;   /* over all runs */
};

/* Reads a buffer of `bytes` bytes `runs` times with the pool's threads.
 * Returns 0, QUARRY_EINVAL (bytes < 1 MiB, runs < 1) or QUARRY_ENOMEM. */
int quarry_membw_read(quarry_threadpool *pool, size_t bytes, int runs,
                      struct quarry_membw_result *out, quarry_error *err);

#endif
