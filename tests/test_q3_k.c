/*
 * test_q3_k.c - q3_K kernels. The shared kernel checks (tests/kernelcheck.h):
 * ggml's golden bytes, floats and dots, every ISA level against scalar, and
 * ggml's test-quantize-fns round-trip thresholds. The K-quant family checks
 * (tests/kernelcheck_family.h) on this type's blocks:
 *   - saturated blocks (quants and scales at their extremes) whose dot is
 *     known in closed form: the integer sums must be exact (no int16/int32
 *     overflow at any level) and the float result must equal, bit for bit, the
 *     fold documented in kernels/q3_k.c (what the SIMD levels must reproduce);
 *   - vec_dot against the double-precision dot of the dequantized operands on
 *     random multi-block rows (catches any quant/scale mispairing);
 *   - the quantizers do not depend on what the output buffer held before.
 */
#include "tests/kernelcheck_family.h"

/* A q3_K super-block filled with constant bytes, and what every weight of it
 * decodes to: the quant is (2-bit field of qs) - 4 unless its hmask bit is
 * set, so hmask/qs 0xFF/0xFF give 3, 0x00/0x00 give -4, 0x00/0xFF give -1;
 * scale bytes 0xFF give 63 - 32 = 31 for all 16 sub-blocks, 0x00 give -32,
 * 0xAA give (0xA | 2 << 4) - 32 = 10. */
#define FILL(field, value) KC_FILL(block_q3_K, field, value)
static struct kc_kq_saturated_blocks saturated = {QUARRY_TYPE_Q3_K, {
    {{FILL(hmask, 0xFF), FILL(qs, 0xFF), FILL(scales, 0xFF)}, {.q = 3, .sc = 31, .d = 0.5f}},
    {{FILL(hmask, 0x00), FILL(qs, 0x00), FILL(scales, 0x00)}, {.q = -4, .sc = -32, .d = 3.0f}},
    {{FILL(hmask, 0x00), FILL(qs, 0xFF), FILL(scales, 0xAA)}, {.q = -1, .sc = 10, .d = 65504.0f}},
}};
#undef FILL

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q3_K),
        KC_KQUANT_TESTS(saturated),
    };
    return TU_RUN_GROUP(tests);
}
