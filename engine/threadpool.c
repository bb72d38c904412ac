/*
 * threadpool.c - the fork/join pool of threadpool.h.
 *
 * Hand-off protocol (all shared counters are C11 atomics, sequentially
 * consistent where two threads must not both miss each other). A run is
 * described by one 64-bit ticket word: its run number (high 32 bits), a
 * CLOSED bit and the number of workers that joined it (low bits).
 *   run():  write fn/arg, finished = 0, ticket = (run << 32), then bump
 *           generation (the wake-up signal) and wake sleepers if any; run
 *           share 0. run_all waits until all n-1 workers have joined and
 *           finished; run_any sets CLOSED (no worker may join afterwards)
 *           and waits only for the workers that joined before that.
 *   worker: wait until generation changes, then join the ticket's run with
 *           a compare-and-swap (refused when CLOSED or when the run is one
 *           it has served), read fn/arg, run its share, finished += 1; a
 *           sleeping caller is woken.
 * fn/arg are plain fields: written before the ticket store (release) and
 * read after the CAS that joins (acquire), and not rewritten until every
 * worker that joined has finished. A worker the OS runs late therefore holds
 * up a run_any caller only if it joined in time; one that wakes after the
 * caller closed the run skips it.
 * Waiting is a bounded spin followed by a condition-variable sleep. A sleeper
 * announces itself (n_sleeping / caller_sleeping) under the mutex *before*
 * re-checking the condition, and a waker changes the condition *before*
 * looking at the announcement: with both steps seq_cst, at least one side
 * sees the other, and the waker takes the mutex before signalling, so the
 * signal cannot fall between the sleeper's check and its wait (no lost
 * wake-ups).
 */
#include "engine/threadpool.h"

#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SPIN_US 100

struct worker {
    struct quarry_threadpool *pool;
    pthread_t thread;
    int index;   /* 1 .. n_threads-1 */
};

struct quarry_threadpool {
    int n_threads;
    int64_t spin_ns;        /* how long a waiter spins before sleeping */
    struct worker *workers; /* n_threads - 1 entries */
    int n_started;

    /* the published task */
    quarry_task_fn fn;
    void *arg;

    _Alignas(64) atomic_uint_fast64_t generation; /* bumped once per run and at shutdown */
    atomic_int stop;
    _Alignas(64) atomic_uint_fast64_t ticket;     /* run << 32 | CLOSED | workers joined */
    _Alignas(64) atomic_int finished;             /* workers that joined and are done */
    uint32_t last_run;                            /* the caller's run counter */
    _Alignas(64) atomic_int n_sleeping;           /* workers asleep on work_cond */
    atomic_int caller_sleeping;                   /* caller asleep on done_cond */

    pthread_mutex_t mutex;
    pthread_cond_t work_cond;
    pthread_cond_t done_cond;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until generation differs from seen or spin_ns has passed; returns the
 * last value read. */
static uint_fast64_t spin_on_generation(struct quarry_threadpool *pool, uint_fast64_t seen)
{
    uint_fast64_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
    if (g != seen || pool->spin_ns <= 0)
        return g;
    const int64_t deadline = monotonic_ns() + pool->spin_ns;
    for (unsigned i = 1;; i++) {
        cpu_relax();
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen)
            return g;
        if ((i & 63) == 0 && monotonic_ns() > deadline)
            return g;
    }
}

static uint_fast64_t wait_for_generation(struct quarry_threadpool *pool, uint_fast64_t seen)
{
    uint_fast64_t g = spin_on_generation(pool, seen);
    if (g != seen)
        return g;
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add(&pool->n_sleeping, 1);
    while ((g = atomic_load(&pool->generation)) == seen)
        pthread_cond_wait(&pool->work_cond, &pool->mutex);
    atomic_fetch_sub(&pool->n_sleeping, 1);
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

#define TICKET_CLOSED ((uint_fast64_t)1 << 31)
#define TICKET_JOINED_MASK (TICKET_CLOSED - 1)

static uint32_t ticket_run(uint_fast64_t t) { return (uint32_t)(t >> 32); }

/* Joins the current run unless it is closed or already served (last_served);
 * returns 1 and its run number in *run when joined. */
static int join_run(struct quarry_threadpool *pool, uint32_t last_served, uint32_t *run)
{
    uint_fast64_t t = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        if (ticket_run(t) == last_served || (t & TICKET_CLOSED))
            return 0;
        if (atomic_compare_exchange_weak_explicit(&pool->ticket, &t, t + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *run = ticket_run(t);
            return 1;
        }
    }
}

static void *worker_main(void *p)
{
    struct worker *self = p;
    struct quarry_threadpool *pool = self->pool;
    uint_fast64_t seen = 0;
    uint32_t served = 0; /* run numbers start at 1 */
    for (;;) {
        seen = wait_for_generation(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire))
            break;
        uint32_t run;
        if (!join_run(pool, served, &run))
            continue; /* closed before this worker came: the caller did the work */
        served = run;
        pool->fn(pool->arg, self->index, pool->n_threads);
        atomic_fetch_add(&pool->finished, 1);
        if (atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done_cond);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return NULL;
}

/* Waits until `workers` workers have finished the current run. */
static void wait_for_workers(struct quarry_threadpool *pool, int workers)
{
    if (atomic_load_explicit(&pool->finished, memory_order_acquire) == workers)
        return;
    if (pool->spin_ns > 0) {
        const int64_t deadline = monotonic_ns() + pool->spin_ns;
        for (unsigned i = 1;; i++) {
            cpu_relax();
            if (atomic_load_explicit(&pool->finished, memory_order_acquire) == workers)
                return;
            if ((i & 63) == 0 && monotonic_ns() > deadline)
                break;
        }
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->caller_sleeping, 1);
    while (atomic_load(&pool->finished) != workers)
        pthread_cond_wait(&pool->done_cond, &pool->mutex);
    atomic_store(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->mutex);
}

/* Publishes fn/arg as the next run and wakes the workers. */
static void publish(struct quarry_threadpool *pool, quarry_task_fn fn, void *arg)
{
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    pool->last_run = pool->last_run == UINT32_MAX ? 1 : pool->last_run + 1;
    atomic_store_explicit(&pool->ticket, (uint_fast64_t)pool->last_run << 32, memory_order_release);
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->work_cond);
        pthread_mutex_unlock(&pool->mutex);
    }
}

void quarry_threadpool_run(quarry_threadpool *pool, quarry_task_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    publish(pool, fn, arg);
    fn(arg, 0, pool->n_threads);
    wait_for_workers(pool, pool->n_threads - 1);
}

void quarry_threadpool_run_any(quarry_threadpool *pool, quarry_task_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    publish(pool, fn, arg);
    fn(arg, 0, pool->n_threads);
    const uint_fast64_t closed =
        atomic_fetch_or_explicit(&pool->ticket, TICKET_CLOSED, memory_order_acq_rel);
    wait_for_workers(pool, (int)(closed & TICKET_JOINED_MASK));
}

int quarry_threadpool_size(const quarry_threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

/* ---- topology ---------------------------------------------------------- */

static int count_cores(hwloc_topology_t topo)
{
    int n = topo ? hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) : 0;
    return n > 0 ? n : 1;
}

static hwloc_topology_t load_topology(void)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return NULL;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return NULL;
    }
    return topo;
}

int quarry_physical_cores(void)
{
    hwloc_topology_t topo = load_topology();
    int n = count_cores(topo);
    if (topo)
        hwloc_topology_destroy(topo);
    return n;
}

/* Pins a worker to core (index mod cores); failures are ignored (see header). */
static void pin_worker(hwloc_topology_t topo, struct worker *w)
{
    if (!topo)
        return;
    const int n_cores = count_cores(topo);
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)(w->index % n_cores));
    if (core && core->cpuset)
        (void)hwloc_set_thread_cpubind(topo, w->thread, core->cpuset, HWLOC_CPUBIND_THREAD);
}

static int64_t spin_ns_from_env(void)
{
    const char *s = getenv("QUARRY_POOL_SPIN_US");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v >= 0 && v <= 1000000)
            return (int64_t)v * 1000;
    }
    return (int64_t)DEFAULT_SPIN_US * 1000;
}

void quarry_threadpool_free(quarry_threadpool *pool)
{
    if (!pool)
        return;
    if (pool->n_started > 0) {
        pthread_mutex_lock(&pool->mutex);
        atomic_store(&pool->stop, 1);
        atomic_fetch_add(&pool->generation, 1);
        pthread_cond_broadcast(&pool->work_cond);
        pthread_mutex_unlock(&pool->mutex);
        for (int i = 0; i < pool->n_started; i++)
            pthread_join(pool->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&pool->done_cond);
    pthread_cond_destroy(&pool->work_cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

int quarry_threadpool_new(int n_threads, quarry_threadpool **out, quarry_error *err)
{
    *out = NULL;
    if (n_threads > QUARRY_THREADPOOL_MAX)
        return quarry_errorf(err, QUARRY_EINVAL, "thread pool: %d threads asked, at most %d",
                             n_threads, QUARRY_THREADPOOL_MAX);
    hwloc_topology_t topo = load_topology();
    if (n_threads <= 0)
        n_threads = count_cores(topo);

    /* aligned: the hot counters sit on their own cache lines */
    struct quarry_threadpool *pool = aligned_alloc(64, sizeof *pool);
    if (!pool) {
        if (topo)
            hwloc_topology_destroy(topo);
        return quarry_errorf(err, QUARRY_ENOMEM, "thread pool: out of memory");
    }
    memset(pool, 0, sizeof *pool);
    pool->n_threads = n_threads;
    pool->spin_ns = spin_ns_from_env();
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->ticket, 0);
    atomic_init(&pool->finished, 0);
    atomic_init(&pool->n_sleeping, 0);
    atomic_init(&pool->caller_sleeping, 0);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->work_cond, NULL);
    pthread_cond_init(&pool->done_cond, NULL);

    int rc = 0;
    if (n_threads > 1) {
        pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
        if (!pool->workers) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "thread pool: out of memory");
            goto done;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            struct worker *w = &pool->workers[i];
            w->pool = pool;
            w->index = i + 1;
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                rc = quarry_errorf(err, QUARRY_ENOMEM,
                                   "thread pool: could not start thread %d of %d", i + 1, n_threads);
                goto done;
            }
            pool->n_started++;
            pin_worker(topo, w);
        }
    }
done:
    if (topo)
        hwloc_topology_destroy(topo);
    if (rc != 0) {
        quarry_threadpool_free(pool);
        return rc;
    }
    *out = pool;
    return 0;
}
