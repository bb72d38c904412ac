/*
 * kernelcheck.h - the checks every kernel test suite (tests/test_<type>.c)
 * shares, parameterised by type id, so that a suite for a new type is a few
 * lines and every type is held to the same contract (brief: KERNELS.md):
 *
 *   traits     the traits table has the functions and activation type ggml has
 *   golden     tests/data/quant-golden.gguf: q.T byte for byte (reference
 *              quantizer), dq.T bit for bit (to_float), dot.T within 1e-5 of
 *              the magnitude sum (vec_dot against activations quantized by
 *              our reference quantizer of the activation type)
 *   isa        every ISA level this CPU runs (quarry_traits_build) against the
 *              scalar table on synthetic rows (many lengths, zero rows, huge,
 *              tiny, mixed-sign and rounding-tie data, unaligned buffers):
 *              from_float_ref and to_float bit-identical, integer dots
 *              bit-identical, float dots within 1e-6 * sum|x_i*y_i|, fast
 *              from_float bit-identical to the reference; for the activation
 *              quantizers (q8_0, q8_1, q8_K) the contract also allows
 *              near-misses: each value at most one quantization step off,
 *              reported with a "note:" line, and the round-trip test then
 *              holds them to ggml's reference error < 1e-4
 *   round trip ggml's test-quantize-fns measures on its synthetic cos data,
 *              at every ISA level: total quantization error, reference
 *              implementation error, dot product error, with its thresholds
 *
 * Typical suite (the standard tests plus whatever is special to the type):
 *
 *     #include "tests/kernelcheck.h"
 *
 *     static void test_known_block(void **state) { ... }
 *
 *     int main(void)
 *     {
 *         const struct CMUnitTest tests[] = {
 *             KC_STANDARD_TESTS(QUARRY_TYPE_Q4_K),
 *             cmocka_unit_test(test_known_block),
 *         };
 *         return TU_RUN_GROUP(tests);
 *     }
 *
 * What is expected of each type (activation type, whether ggml has a
 * to_float / vec_dot for it, whether its dot is integer-accumulating, the
 * test-quantize-fns thresholds) comes from kc_expect(); the standard tests
 * skip what does not apply (e.g. no dq/dot golden for q8_1 and q8_K, no
 * golden at all for f32). All check functions fail the current cmocka test
 * on a mismatch, with a message naming the type, ISA level, row and index.
 */
#ifndef QUARRY_KERNELCHECK_H
#define QUARRY_KERNELCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* TU_RUN_GROUP uses setvbuf */

#include "kernels/kernels.h"
#include "tests/testutil.h"

/* ---- what each type is expected to provide ------------------------------- */

struct kc_expect {
    enum quarry_type type;
    enum quarry_type vec_dot_type; /* ggml's activation type for vec_dot */
    bool has_to_float;      /* ggml dequantizes it (golden dq.T exists unless f32) */
    bool has_vec_dot;       /* ggml has a vec_dot for it (false for q8_1, q8_K) */
    bool integer_dot;       /* vec_dot sums integers: all ISA levels bit-identical */
    bool has_golden;        /* quant-golden.gguf has q.T (everything but f32) */
    double max_total_error; /* test-quantize-fns MAX_QUANTIZATION_TOTAL_ERROR*:
                             * 0.0075 q2_K, 0.004 q3_K, else 0.002 */
    double max_dot_error;   /* test-quantize-fns MAX_DOT_PRODUCT_ERROR*: 0.04 for
                             * q2_K (ggml's low-bit list), else 0.02 */
};

/* Expectations for a supported type (cmocka failure for an unknown id). */
struct kc_expect kc_expect(enum quarry_type type);

/* ---- standard tests (cmocka) --------------------------------------------- */

/* The type travels to the test in cmocka's initial state (+1 so that F32,
 * id 0, is not the NULL "no state"). */
#define KC_STATE(type) ((void *)(uintptr_t)((uintptr_t)(type) + 1))
enum quarry_type kc_state_type(void **state);

void kc_test_traits(void **state);            /* traits table entries at every level */
void kc_test_golden_quantize(void **state);   /* q.T byte for byte */
void kc_test_golden_dequantize(void **state); /* dq.T bit for bit, every level */
void kc_test_golden_dot(void **state);        /* dot.T within 1e-5, every level */
void kc_test_isa_levels(void **state);        /* every level vs scalar, synthetic data */
void kc_test_round_trip(void **state);        /* test-quantize-fns measures, every level */

#define KC_STANDARD_TESTS(type)                                          \
    cmocka_unit_test_prestate(kc_test_traits, KC_STATE(type)),           \
    cmocka_unit_test_prestate(kc_test_golden_quantize, KC_STATE(type)),  \
    cmocka_unit_test_prestate(kc_test_golden_dequantize, KC_STATE(type)),\
    cmocka_unit_test_prestate(kc_test_golden_dot, KC_STATE(type)),       \
    cmocka_unit_test_prestate(kc_test_isa_levels, KC_STATE(type)),       \
    cmocka_unit_test_prestate(kc_test_round_trip, KC_STATE(type))

/* The same checks as plain functions, for suites that want to call them
 * with other arguments. */
void kc_check_traits(enum quarry_type type);
void kc_check_golden_quantize(enum quarry_type type);
void kc_check_golden_dequantize(enum quarry_type type);
/* rel_tol: allowed |ours - golden| / max(|golden|, sum_i |dq(x)_i * dq(y)_i|),
 * x the golden q.T row and y the act row quantized by our reference
 * quantizer of the activation type (the standard test uses 1e-5). Also run
 * with each level's fast activation quantizer. */
void kc_check_golden_dot(enum quarry_type type, double rel_tol);
void kc_check_isa_levels(enum quarry_type type);
void kc_check_round_trip(enum quarry_type type);

/* ---- ISA levels ---------------------------------------------------------- */

/* Fills tables[0..n) with the traits tables of every level this CPU runs
 * (tables[0] is scalar) and returns n (1..QUARRY_ISA_COUNT). */
int kc_build_levels(struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT]);

/* ---- the golden file ----------------------------------------------------- */

#define KC_GOLDEN_PATH "tests/data/quant-golden.gguf"

typedef struct kc_golden kc_golden;

/* Opens KC_GOLDEN_PATH; fails the current test if it cannot. */
kc_golden *kc_golden_open(void);
void kc_golden_close(kc_golden *g);
/* Tensor `name` ("src", "act", "q.q4_0", "dq.q4_0", "dot.q4_0", ...): fails
 * the current test unless it exists with type `type` and two dimensions;
 * returns its data and sets *ne0 (row length) and *ne1 (rows). */
const void *kc_golden_tensor(const kc_golden *g, const char *name, enum quarry_type type,
                             int64_t *ne0, int64_t *ne1);
/* Whether tensor `name` exists. */
bool kc_golden_has(const kc_golden *g, const char *name);

/* ---- data and buffers ---------------------------------------------------- */

/* Synthetic data cases used by the ISA comparison. */
enum kc_case {
    KC_CASE_NORMAL,      /* N(0, 1) */
    KC_CASE_ZERO,        /* all zero */
    KC_CASE_HUGE,        /* N(0, 1) * 1e30: fp16 scales overflow to inf */
    KC_CASE_LARGE,       /* N(0, 1) * 1e4: large but representable scales */
    KC_CASE_TINY,        /* N(0, 1) * 1e-30: fp16 scales underflow to 0 */
    KC_CASE_SMALL,       /* N(0, 1) * 1e-6: fp16 scales are subnormal */
    KC_CASE_MIXED,       /* each 32 values: own scale 1e-6..1e30, sign pattern, zeros */
    KC_CASE_OFFSET,      /* 3 + uniform[0, 1): one-signed, non-zero minimum */
    KC_CASE_TIES,        /* amax 127 (q8 scale exactly 1) and k + 0.5 values: roundf
                          * ties; also fp16 and bf16 halfway values */
    KC_CASE_COUNT
};
const char *kc_case_name(enum kc_case c);
/* Fills x[0..n) with case c from a generator seeded with seed (deterministic). */
void kc_fill_case(enum kc_case c, uint64_t seed, float *x, size_t n);

/* ggml test-quantize-fns' generator: dst[i] = 0.1 + 2*cos(i + offset). */
void kc_quantize_fns_data(float offset, size_t n, float *dst);

/* Bytes of a row of n values of type (n a multiple of its block size). */
size_t kc_row_bytes(enum quarry_type type, int64_t n);

/* Dequantizes a row of the given type into y[n] with the
 * scalar kernels; also handles q8_1 and q8_K, for which ggml has no
 * to_float (d * qs). Fails the test for a type it cannot dequantize. */
void kc_dequantize(enum quarry_type type, const void *x, float *y, int64_t n);

/* sum_i dq(x)_i * dq(y)_i in double, x of type xt and y of type yt. With
 * abs_sum non-NULL, also sum_i |dq(x)_i * dq(y)_i| (the dot's magnitude). */
double kc_dequant_dot(enum quarry_type xt, const void *x, enum quarry_type yt, const void *y,
                      int64_t n, double *abs_sum);

/* Float equality as the ISA checks use it: same bits, or both NaN. */
bool kc_same_float(float a, float b);

/* ---- ggml test-quantize-fns measures ------------------------------------- */
/* These compute exactly what test-quantize-fns computes (including its
 * "rmse", which is sqrt(sum of squares) / n, not a mean): with `table` one
 * level's traits and test_data of n values. */

/* from_float then to_float, error against the input. */
double kc_total_quantization_error(const struct quarry_type_traits *table, enum quarry_type type,
                                   const float *test_data, size_t n);
/* from_float vs from_float_ref, both dequantized. */
double kc_reference_quantization_error(const struct quarry_type_traits *table,
                                       enum quarry_type type, const float *test_data, size_t n);
/* |vec_dot(from_float(a), vdt.from_float(b)) - sum a_i*b_i| / n. */
double kc_dot_product_error(const struct quarry_type_traits *table, enum quarry_type type,
                            const float *a, const float *b, size_t n);

/* test-quantize-fns thresholds and test size */
#define KC_QFNS_TEST_SIZE (32 * 128)
#define KC_MAX_REFERENCE_ERROR 0.0001

#endif
