/*
 * test_q2_k.c - q2_K kernels. The shared kernel checks (tests/kernelcheck.h):
 * ggml's golden bytes, floats and dots, every ISA level against scalar, and
 * ggml's test-quantize-fns round-trip thresholds. The K-quant family checks
 * (tests/kernelcheck_family.h) on this type's blocks:
 *   - saturated blocks (every quant, scale and min at its extreme) whose dot
 *     is known in closed form: the integer sums must be exact (no int16/int32
 *     overflow at any level) and the float result must equal, bit for bit, the
 *     fold documented in kernels/q2_k.c (what the SIMD levels must reproduce);
 *   - vec_dot against the double-precision dot of the dequantized operands on
 *     random multi-block rows (catches any quant/scale mispairing);
 *   - the quantizers do not depend on what the output buffer held before.
 */
#include "tests/kernelcheck_family.h"

/* A q2_K super-block filled with constant bytes, and what every weight of it
 * decodes to: a scale byte is scale | min << 4 for each of the 16 sub-blocks;
 * every 2-bit field of a qs byte 0xFF is 3, of 0x55 is 1. */
#define FILL(field, value) KC_FILL(block_q2_K, field, value)
static struct kc_kq_saturated_blocks saturated = {QUARRY_TYPE_Q2_K, {
    {{FILL(scales, 0xFF), FILL(qs, 0xFF)}, {15, 15, 3, 0.5f, 0.25f}},
    {{FILL(scales, 0x0F), FILL(qs, 0x55)}, {15, 0, 1, 3.0f, 1.5f}},
    {{FILL(scales, 0xF0), FILL(qs, 0xFF)}, {0, 15, 3, 65504.0f, 2.0f}},
}};
#undef FILL

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q2_K),
        KC_KQUANT_TESTS(saturated),
    };
    return TU_RUN_GROUP(tests);
}
