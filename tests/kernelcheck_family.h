/*
 * kernelcheck_family.h - checks shared by the suites of one family of types,
 * on top of the contract every type meets (tests/kernelcheck.h). The suites
 * keep only what is particular to their type (blocks worked out by hand,
 * known conversions); what the members of a family check alike lives here,
 * parameterised by the type id:
 *
 *   K-quants (q2_K .. q6_K)
 *     saturated  blocks whose every quant, scale and min sits at an extreme
 *                and whose dot is known in closed form (the suite builds the
 *                blocks): the integer sums must be exact at every ISA level
 *                (no int16/int32 overflow) and the float result must equal,
 *                bit for bit, the fold documented in kernels/<type>.c
 *     dequantized vec_dot at every level against the double-precision dot of
 *                the dequantized operands on random multi-block rows, within
 *                1e-6 of the magnitude sum (catches quant/scale mispairing)
 *     output     the quantizers (reference and fast, every level) write the
 *                same bytes whatever the output buffer held before
 *   legacy quants (q4_0, q5_0, q8_0 with q8_0 activations; q4_1, q5_1 with
 *   q8_1 activations)
 *     dequantized the scalar vec_dot against the exact dot of the
 *                dequantized rows (for q4_1/q5_1 written the way the q8_1
 *                sum term defines it), within 1e-6 of the magnitude sum
 *   16-bit floats (f16, bf16)
 *     exact dot  a dot whose every product and partial sum is exact
 *     subnormal  f32 subnormal inputs and their neighbours: every level's
 *                fast and reference conversions give the reference bits, for
 *                lengths that exercise the vector tails
 *
 * As in kernelcheck.h, each check is a plain function taking the type and a
 * cmocka entry point taking it from the initial state (KC_STATE).
 */
#ifndef QUARRY_KERNELCHECK_FAMILY_H
#define QUARRY_KERNELCHECK_FAMILY_H

#include <stddef.h>

#include "tests/kernelcheck.h"

/* ---- K-quants -------------------------------------------------------------- */

/* What every weight of a constant-filled K-quant super-block decodes to: the
 * quant q, its sub-block scale sc and min m (0 for q3_K and q6_K, which have
 * none), and the super-block scales d and dmin (stored as fp16). */
struct kc_kq_saturated {
    int sc, m, q;
    float d, dmin;
};

/* A field of a block filled with one byte value. */
struct kc_fill {
    size_t offset, size;
    uint8_t byte;
};
/* KC_FILL(block_q4_K, qs, 0xFF): every byte of x.qs is 0xFF */
#define KC_FILL(block_type, field, value) \
    {offsetof(block_type, field), sizeof(((block_type *)0)->field), (value)}

/* A saturated super-block: its quant and sub-block scale fields filled with
 * constant bytes (unused entries have size 0), and what that decodes to. */
struct kc_kq_case {
    struct kc_fill fills[3];
    struct kc_kq_saturated decodes;
};

/* A suite's three saturated super-blocks. */
struct kc_kq_saturated_blocks {
    enum quarry_type type;
    struct kc_kq_case cases[3];
};

/* The three super-blocks (d and dmin stored by the check) against
 * activations of all +127 (scale 0.5/127), a pattern running through
 * -127..127 (scale 0.0123) and all -127 (scale 0.5/127): the dot at every
 * level must equal, bit for bit,
 *     sum_b  d_b*(float)isum_b - dmin_b*(float)isum_m_b    (q2_K, q4_K, q5_K)
 *     sum_b  d_b*(float)isum_b                             (q3_K, q6_K)
 * with isum = sc*q*sum(y.qs), isum_m = m*sum(y.qs), d = y.d*fp16(x.d) and
 * dmin = y.d*fp16(x.dmin), added in block order. */
void kc_check_kquant_saturated(const struct kc_kq_saturated_blocks *blocks);

/* vec_dot at every level vs the double dot of the dequantized operands on
 * rows of 1, 3 and 16 super-blocks (x: 0.05*N(0,1) with a 1.0 every 97
 * values; y: N(0,1); both by the reference quantizers): within 1e-6 of
 * sum |x_i*y_i|. */
void kc_check_kquant_dot_vs_dequantized(enum quarry_type type);

/* Reference and fast quantizers of every level, on a 4-block row of every
 * data case, into buffers filled with 0x00 and with 0xFF: same bytes. */
void kc_check_quantize_ignores_output_contents(enum quarry_type type);

/* cmocka entry points; kc_test_kquant_saturated's initial state is the
 * suite's struct kc_kq_saturated_blocks, the others' KC_STATE(type) */
void kc_test_kquant_saturated(void **state);
void kc_test_kquant_dot_vs_dequantized(void **state);
void kc_test_quantize_ignores_output_contents(void **state);

/* The K-quant family tests of a suite, given its saturated blocks (a
 * struct kc_kq_saturated_blocks object). */
#define KC_KQUANT_TESTS(blocks)                                                              \
    cmocka_unit_test_prestate(kc_test_kquant_saturated, &(blocks)),                          \
    cmocka_unit_test_prestate(kc_test_kquant_dot_vs_dequantized, KC_STATE((blocks).type)),    \
    cmocka_unit_test_prestate(kc_test_quantize_ignores_output_contents, KC_STATE((blocks).type))

/* ---- legacy quants --------------------------------------------------------- */

/* Scalar vec_dot on 24-block rows (8 seeds; x normal, for q4_1/q5_1
 * alternately normal and offset; activations normal, reference-quantized)
 * against the double dot of the dequantized rows; for q4_1/q5_1 per block
 * sum (dq(x) - m)*dq(y) + m*fp16(y.s), the form the q8_1 sum term defines.
 * Within 1e-6 of the magnitude sum. */
void kc_check_legacy_dot_vs_dequantized(enum quarry_type type);
void kc_test_legacy_dot_vs_dequantized(void **state);

/* ---- 16-bit floats (f16, bf16) --------------------------------------------- */

/* x_i = (i - 18)/4, y_i = 3i % 11 - 5 for 37 values: representable exactly in
 * both formats and the dot exact in float, so the scalar vec_dot must give it. */
void kc_check_half_dot_exact(enum quarry_type type);
/* Random f32 subnormals of either sign with normal neighbours and zeros mixed
 * in: from_float and from_float_ref at every level, every length 1..40 and
 * then every 9th up to 77, give the scalar reference's bits. */
void kc_check_half_subnormal_inputs(enum quarry_type type);
void kc_test_half_dot_exact(void **state);
void kc_test_half_subnormal_inputs(void **state);

#endif
