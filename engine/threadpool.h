/*
 * threadpool.h - a fork/join thread pool for the engine's parallel loops.
 *
 * Decoding one token runs a few hundred small matrix-vector products, each
 * only tens of microseconds long, so the cost of waking threads matters more
 * than anything else here. The pool keeps n-1 worker threads (the caller is
 * thread 0); quarry_threadpool_run() publishes a task by bumping an atomic
 * generation counter, runs its own share, and waits for the others. Idle
 * workers spin on the counter for a short while (default 100 us, override
 * with the environment variable QUARRY_POOL_SPIN_US read when the pool is
 * created; 0 = never spin) and then sleep on a condition variable, so a pool
 * left alone costs no CPU.
 *
 * Workers are pinned to physical cores with hwloc (worker i to core i modulo
 * the core count; the caller's own thread is left as it is). Pinning that the
 * system refuses is not an error: the workers then float.
 *
 * One thread drives a pool: run() must not be called concurrently on the same
 * pool, nor from inside a task running on it.
 */
#ifndef QUARRY_THREADPOOL_H
#define QUARRY_THREADPOOL_H

#include "engine/error.h"

typedef struct quarry_threadpool quarry_threadpool;

/* Creates a pool of n_threads threads counting the caller (n_threads - 1
 * workers are started). n_threads <= 0: one per physical core (hwloc).
 * Returns 0 and *out, or QUARRY_EINVAL (more than QUARRY_THREADPOOL_MAX) /
 * QUARRY_ENOMEM (allocation or thread start failed). */
#define QUARRY_THREADPOOL_MAX 1024
int quarry_threadpool_new(int n_threads, quarry_threadpool **out, quarry_error *err);

/* Stops and joins the workers, frees the pool. NULL is allowed. No run() may
 * be in progress. */
void quarry_threadpool_free(quarry_threadpool *pool);

/* Number of threads including the caller; 1 for a NULL pool. */
int quarry_threadpool_size(const quarry_threadpool *pool);

/* A task: called once on every thread with its index in [0, n_threads). */
typedef void (*quarry_task_fn)(void *arg, int thread_index, int n_threads);

/* Runs fn(arg, i, n) on every thread (the caller is thread 0) and returns when
 * all are done; everything the task wrote is then visible to the caller.
 * pool may be NULL: runs fn(arg, 0, 1). */
void quarry_threadpool_run(quarry_threadpool *pool, quarry_task_fn fn, void *arg);

/* Like run(), for tasks that hand out their work dynamically (an atomic
 * counter, never a share fixed by thread index): fn runs on the caller and
 * on the workers that start before the caller has returned from its own
 * call of fn; a worker the OS runs late skips the run instead of holding up
 * the caller. thread_index is still unique per call (per-thread scratch by
 * index is safe). */
void quarry_threadpool_run_any(quarry_threadpool *pool, quarry_task_fn fn, void *arg);

/* Number of physical cores hwloc reports (at least 1). */
int quarry_physical_cores(void);

#endif
