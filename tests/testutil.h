/*
 * testutil.h - small helpers shared by the cmocka suites: cmocka's includes,
 * reading test data files, a seeded random generator, and error metrics.
 * Every suite runs from the repository root, so data paths are "tests/data/...".
 */
#ifndef QUARRY_TESTUTIL_H
#define QUARRY_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Reads a whole file into a malloc'd buffer (NULL on failure). */
void *tu_read_file(const char *path, size_t *size);

/* xorshift64* generator; state must be non-zero. */
uint64_t tu_rand_u64(uint64_t *state);
float tu_rand_uniform(uint64_t *state);  /* [0, 1) */
float tu_rand_normal(uint64_t *state);   /* N(0, 1), Box-Muller */

/* Normalised mean squared error sum((a-ref)^2) / sum(ref^2) (ggml's NMSE). */
double tu_nmse(const float *a, const float *ref, size_t n);
/* Root mean squared difference. */
double tu_rms_diff(const float *a, const float *b, size_t n);

/* Runs a cmocka group with stdout unbuffered (so output order is kept). */
#define TU_RUN_GROUP(tests) \
    (setvbuf(stdout, NULL, _IONBF, 0), cmocka_run_group_tests(tests, NULL, NULL))

#endif
