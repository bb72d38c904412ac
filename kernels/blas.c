/*
 * blas.c - loads OpenBLAS with dlopen instead of linking it, so that quarry
 * can choose OpenBLAS's kernel set before the library initialises.
 *
 * Why: OpenBLAS picks its kernels in a constructor that runs when the
 * library is loaded, from the CPU or from the OPENBLAS_CORETYPE variable.
 * Debian 12's OpenBLAS 0.3.21 does not know AMD's Zen 4 and Zen 5 and falls
 * back to its Haswell (AVX2) kernels on them, although they run AVX-512.
 * Measured on the 2-core Zen 5 VM (F16 TinyLlama-1.1B, pp512, 2 threads):
 * 78 tok/s with the Haswell kernels, 120 with SkylakeX's. A linked library
 * is initialised before main() runs, too early to set the variable; a
 * library loaded here, after the variable is set, is not.
 *
 * The rule: when OPENBLAS_CORETYPE is unset and the CPU (and OS) run
 * SkylakeX's AVX-512 subsets (F, CD, BW, DQ, VL), set it to SKYLAKEX; a
 * value already in the environment is kept. OPENBLAS_NUM_THREADS is set to 1
 * when unset: quarry runs one single-threaded sgemm per pool thread, and
 * OpenBLAS would otherwise start idle threads of its own at load.
 *
 * The load happens once (pthread_once), first from the kernel registry's
 * start-up, while the process has no other threads calling getenv.
 */
#include "kernels/blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static struct quarry_blas blas_entry;
static const struct quarry_blas *blas_loaded;
static char blas_status_text[256];

static const char *const library_names[] = {"libopenblas.so.0", "libopenblas.so"};

/* __builtin_cpu_supports checks the OS's register state (XCR0) too. Not the
 * registry's detection: the registry loads BLAS from its own start-up. */
static int cpu_runs_skylakex(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static void load_blas(void)
{
    const char *coretype_note = "OPENBLAS_CORETYPE from the environment";
    if (!getenv("OPENBLAS_CORETYPE")) {
        if (cpu_runs_skylakex() && setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 0) == 0)
            coretype_note = "OPENBLAS_CORETYPE=SKYLAKEX set by quarry (AVX-512 CPU)";
        else
            coretype_note = "kernel set detected by OpenBLAS";
    }
    if (!getenv("OPENBLAS_NUM_THREADS"))
        setenv("OPENBLAS_NUM_THREADS", "1", 0);

    void *lib = NULL;
    const char *why = "not found";
    for (size_t i = 0; i < sizeof library_names / sizeof library_names[0] && !lib; i++) {
        lib = dlopen(library_names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            const char *e = dlerror();
            why = e ? e : why;
        }
    }
    if (!lib) {
        snprintf(blas_status_text, sizeof blas_status_text,
                 "OpenBLAS not loaded (%s): large F32/F16/BF16 products use quarry's own kernels",
                 why);
        return;
    }
    /* POSIX guarantees that a function pointer survives a round trip through
     * void * for dlsym's results; the memcpy keeps -Wpedantic quiet. */
#define LOAD(field, symbol)                                                                        \
    do {                                                                                           \
        void *p = dlsym(lib, symbol);                                                              \
        if (!p) {                                                                                  \
            snprintf(blas_status_text, sizeof blas_status_text,                                    \
                     "OpenBLAS not loaded: %s lacks %s", library_names[0], symbol);              \
            dlclose(lib);                                                                          \
            return;                                                                                \
        }                                                                                          \
        memcpy(&blas_entry.field, &p, sizeof p);                                                   \
    } while (0)
    LOAD(sgemm, "cblas_sgemm");
    LOAD(get_num_threads, "openblas_get_num_threads");
    LOAD(set_num_threads, "openblas_set_num_threads");
    LOAD(get_config, "openblas_get_config");
    LOAD(get_corename, "openblas_get_corename");
#undef LOAD
    const char *config = blas_entry.get_config();
    const char *core = blas_entry.get_corename();
    snprintf(blas_status_text, sizeof blas_status_text, "%s; kernels %s (%s)",
             config ? config : "OpenBLAS", core ? core : "?", coretype_note);
    blas_loaded = &blas_entry;
}

const struct quarry_blas *quarry_blas(void)
{
    pthread_once(&blas_once, load_blas);
    return blas_loaded;
}

const char *quarry_blas_status(void)
{
    pthread_once(&blas_once, load_blas);
    return blas_status_text;
}
