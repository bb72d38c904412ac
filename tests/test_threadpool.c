/*
 * test_threadpool.c - the fork/join pool (engine/threadpool.h): every thread
 * index runs exactly once per call, results are visible to the caller when
 * run() returns, back-to-back calls, the NULL pool, the sleep/wake path under
 * stress (no lost wake-ups), pinning, and clean shutdown (threads joined);
 * run_any(): every work item handed out exactly once, never on a thread
 * index twice, interleaved with run() calls that still reach every index.
 * A watchdog alarm turns a hang (a lost wake-up) into a failed suite.
 */
#include "tests/testutil.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/threadpool.h"

#define MAX_T 8

struct count_task {
    atomic_int calls[MAX_T];   /* times each index ran in this call */
    atomic_int bad_n;          /* calls that saw a wrong n_threads */
    int expect_n;
    uint64_t stamp[MAX_T];     /* plain writes, read by the caller after run() */
    uint64_t round;
};

static void count_fn(void *arg, int i, int n)
{
    struct count_task *t = arg;
    if (n != t->expect_n || i < 0 || i >= n || i >= MAX_T) {
        atomic_fetch_add(&t->bad_n, 1);
        return;
    }
    atomic_fetch_add(&t->calls[i], 1);
    t->stamp[i] = t->round * 1000 + (uint64_t)i;
}

/* Runs `rounds` calls and checks each index ran once per call, with its
 * plain write visible afterwards. */
static void run_rounds(quarry_threadpool *pool, int rounds, int sleep_every, unsigned sleep_us)
{
    struct count_task t;
    memset(&t, 0, sizeof t);
    const int n = quarry_threadpool_size(pool);
    t.expect_n = n;
    for (int r = 1; r <= rounds; r++) {
        for (int i = 0; i < MAX_T; i++)
            atomic_store(&t.calls[i], 0);
        t.round = (uint64_t)r;
        quarry_threadpool_run(pool, count_fn, &t);
        for (int i = 0; i < n; i++) {
            if (atomic_load(&t.calls[i]) != 1)
                fail_msg("round %d: index %d ran %d times (n=%d)", r, i, atomic_load(&t.calls[i]), n);
            if (t.stamp[i] != (uint64_t)r * 1000 + (uint64_t)i)
                fail_msg("round %d: index %d's write not visible", r, i);
        }
        for (int i = n; i < MAX_T; i++)
            assert_int_equal(atomic_load(&t.calls[i]), 0);
        if (sleep_every > 0 && r % sleep_every == 0)
            usleep(sleep_us);
    }
    assert_int_equal(atomic_load(&t.bad_n), 0);
}

static int threads_in_process(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

static void test_null_pool(void **state)
{
    (void)state;
    assert_int_equal(quarry_threadpool_size(NULL), 1);
    run_rounds(NULL, 10, 0, 0);
    quarry_threadpool_free(NULL);
}

static void test_one_to_four_threads(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        quarry_threadpool *pool;
        quarry_error err;
        assert_int_equal(quarry_threadpool_new(n, &pool, &err), 0);
        assert_int_equal(quarry_threadpool_size(pool), n);
        run_rounds(pool, 200, 0, 0);
        quarry_threadpool_free(pool);
    }
}

static void test_default_size_is_physical_cores(void **state)
{
    (void)state;
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(0, &pool, &err), 0);
    const int cores = quarry_physical_cores();
    assert_true(cores >= 1);
    assert_int_equal(quarry_threadpool_size(pool), cores);
    /* sysconf counts logical CPUs: never fewer than physical cores */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(online <= 0 || cores <= online);
    run_rounds(pool, 20, 0, 0);
    quarry_threadpool_free(pool);
}

static void test_back_to_back(void **state)
{
    (void)state;
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    run_rounds(pool, 20000, 0, 0);
    quarry_threadpool_free(pool);
}

/* With spinning off, every hand-off goes through the condition variables;
 * pauses let the workers fall asleep at varying moments. */
static void test_no_lost_wakeups(void **state)
{
    (void)state;
    const char *spins[] = {"0", "1", "20"};
    for (size_t s = 0; s < sizeof spins / sizeof spins[0]; s++) {
        setenv("QUARRY_POOL_SPIN_US", spins[s], 1);
        for (int n = 2; n <= 4; n++) {
            quarry_threadpool *pool;
            quarry_error err;
            assert_int_equal(quarry_threadpool_new(n, &pool, &err), 0);
            run_rounds(pool, 3000, 0, 0);
            run_rounds(pool, 300, 3, 30 + 17 * (unsigned)s);
            quarry_threadpool_free(pool);
        }
    }
    unsetenv("QUARRY_POOL_SPIN_US");
}

struct affinity_task {
    int cpus[MAX_T]; /* CPUs in each thread's affinity mask */
};

static void affinity_fn(void *arg, int i, int n)
{
    (void)n;
    struct affinity_task *t = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    t->cpus[i] = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
}

/* Workers are bound to one core each: on this machine (no SMT) one CPU. */
static void test_workers_pinned(void **state)
{
    (void)state;
    quarry_threadpool *pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(2, &pool, &err), 0);
    struct affinity_task t;
    memset(&t, 0, sizeof t);
    quarry_threadpool_run(pool, affinity_fn, &t);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    const int cores = quarry_physical_cores();
    const int pus_per_core = online > 0 && cores > 0 ? (int)(online / cores) : 1;
    assert_true(t.cpus[1] >= 1);
    if (t.cpus[1] > pus_per_core)
        fail_msg("worker 1 may run on %d CPUs; expected it pinned to one core (%d CPUs)",
                 t.cpus[1], pus_per_core);
    quarry_threadpool_free(pool);
}

static void test_clean_shutdown(void **state)
{
    (void)state;
    const int before = threads_in_process();
    for (int rep = 0; rep < 50; rep++) {
        quarry_threadpool *pool;
        quarry_error err;
        const int n = 1 + rep % 4;
        assert_int_equal(quarry_threadpool_new(n, &pool, &err), 0);
        if (rep % 2 == 0)
            run_rounds(pool, 5, 0, 0);
        if (rep % 5 == 0)
            usleep(300); /* let the workers go to sleep before the stop */
        quarry_threadpool_free(pool);
    }
    assert_int_equal(threads_in_process(), before);
}

#define ANY_ITEMS 64

struct any_task {
    atomic_int next;                /* the dynamic hand-out */
    int done[ANY_ITEMS];            /* plain writes: round number per item */
    atomic_int index_calls[MAX_T];  /* calls per thread index in this round */
    int round;
    unsigned spin;                  /* busy work per item */
};

static void any_fn(void *arg, int ti, int n)
{
    struct any_task *t = arg;
    (void)n;
    atomic_fetch_add(&t->index_calls[ti], 1);
    for (int i = atomic_fetch_add(&t->next, 1); i < ANY_ITEMS; i = atomic_fetch_add(&t->next, 1)) {
        for (unsigned k = 0; k < t->spin; k++)
            __asm__ volatile("" ::: "memory"); /* busy work the compiler keeps */
        t->done[i] = t->done[i] == t->round - 1 ? t->round : -1; /* -1: twice or skipped */
    }
}

static void test_run_any_hands_out_everything_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        quarry_threadpool *pool;
        quarry_error err;
        assert_int_equal(quarry_threadpool_new(n, &pool, &err), 0);
        struct any_task *t = calloc(1, sizeof *t);
        assert_non_null(t);
        for (int r = 1; r <= 20000; r++) {
            atomic_store(&t->next, 0);
            for (int i = 0; i < MAX_T; i++)
                atomic_store(&t->index_calls[i], 0);
            t->round = r;
            t->spin = (unsigned)(r % 7) * 50;
            quarry_threadpool_run_any(pool, any_fn, t);
            for (int i = 0; i < ANY_ITEMS; i++)
                if (t->done[i] != r)
                    fail_msg("n=%d round %d: item %d done %d (want %d)", n, r, i, t->done[i], r);
            assert_int_equal(atomic_load(&t->index_calls[0]), 1);
            for (int i = 1; i < MAX_T; i++)
                if (atomic_load(&t->index_calls[i]) > (i < n ? 1 : 0))
                    fail_msg("n=%d round %d: index %d ran %d times", n, r, i,
                             atomic_load(&t->index_calls[i]));
            if (r % 1000 == 0)
                run_rounds(pool, 3, 0, 0); /* run() still reaches every index */
            if (r % 5000 == 0)
                usleep(500); /* workers go to sleep between runs */
        }
        free(t);
        quarry_threadpool_free(pool);
    }
}

static void test_too_many_threads(void **state)
{
    (void)state;
    quarry_threadpool *pool = (quarry_threadpool *)&pool;
    quarry_error err;
    assert_int_equal(quarry_threadpool_new(QUARRY_THREADPOOL_MAX + 1, &pool, &err), QUARRY_EINVAL);
    assert_null(pool);
    assert_int_equal(err.code, QUARRY_EINVAL);
}

int main(void)
{
    alarm(60); /* a lost wake-up would hang: fail the suite instead */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_pool),
        cmocka_unit_test(test_one_to_four_threads),
        cmocka_unit_test(test_default_size_is_physical_cores),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_no_lost_wakeups),
        cmocka_unit_test(test_workers_pinned),
        cmocka_unit_test(test_clean_shutdown),
        cmocka_unit_test(test_too_many_threads),
        cmocka_unit_test(test_run_any_hands_out_everything_once),
    };
    return TU_RUN_GROUP(tests);
}
