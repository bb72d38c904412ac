/*
 * blas.h - OpenBLAS, loaded once at start-up with dlopen (see blas.c for
 * why it is not linked).
 *
 * quarry_blas() returns the entry points quarry uses, or NULL when the
 * library could not be loaded (matmul then keeps to its own kernels, and
 * quarry_blas_status() says why). The first call loads it; the kernel
 * registry makes that call while the process is still single-threaded.
 */
#ifndef QUARRY_KERNELS_BLAS_H
#define QUARRY_KERNELS_BLAS_H

#include <cblas.h>

struct quarry_blas {
    void (*sgemm)(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a,
                  enum CBLAS_TRANSPOSE trans_b, blasint m, blasint n, blasint k, float alpha,
                  const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c,
                  blasint ldc);
    int (*get_num_threads)(void);
    void (*set_num_threads)(int n);
    char *(*get_config)(void);   /* e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
    char *(*get_corename)(void); /* the kernel set it chose, e.g. "SkylakeX" */
};

const struct quarry_blas *quarry_blas(void);

/* One line for humans and machine records: what was loaded and how its
 * kernel set was chosen, or why nothing was loaded. */
const char *quarry_blas_status(void);

#endif
