/*
 * test_q6_k.c - q6_K kernels. The shared kernel checks (tests/kernelcheck.h):
 * ggml's golden bytes, floats and dots, every ISA level against scalar, and
 * ggml's test-quantize-fns round-trip thresholds. The K-quant family checks
 * (tests/kernelcheck_family.h) on this type's blocks:
 *   - saturated blocks (quants and scales at their extremes) whose dot is
 *     known in closed form: the integer sums must be exact (no int16/int32
 *     overflow at any level) and the float result must equal, bit for bit, the
 *     fold documented in kernels/q6_k.c (what the SIMD levels must reproduce);
 *   - vec_dot against the double-precision dot of the dequantized operands on
 *     random multi-block rows (catches any quant/scale mispairing);
 *   - the quantizers do not depend on what the output buffer held before.
 */
#include "tests/kernelcheck_family.h"

/* A q6_K super-block filled with constant bytes, and what every weight of it
 * decodes to: the quant is (ql nibble | qh 2-bit field << 4) - 32, so
 * ql/qh 0xFF/0xFF give 31, 0x00/0x00 give -32, 0x55/0xAA give 5 | 2 << 4
 * minus 32 = 5; the scales are plain int8. */
#define FILL(field, value) KC_FILL(block_q6_K, field, value)
static struct kc_kq_saturated_blocks saturated = {QUARRY_TYPE_Q6_K, {
    {{FILL(ql, 0xFF), FILL(qh, 0xFF), FILL(scales, 0x7F)}, {.q = 31, .sc = 127, .d = 0.5f}},
    {{FILL(ql, 0x00), FILL(qh, 0x00), FILL(scales, 0x80)}, {.q = -32, .sc = -128, .d = 3.0f}},
    {{FILL(ql, 0x55), FILL(qh, 0xAA), FILL(scales, 0xFF)}, {.q = 5, .sc = -1, .d = 65504.0f}},
}};
#undef FILL

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q6_K),
        KC_KQUANT_TESTS(saturated),
    };
    return TU_RUN_GROUP(tests);
}
