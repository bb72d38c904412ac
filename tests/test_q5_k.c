/*
 * test_q5_k.c - q5_K kernels. The shared kernel checks (tests/kernelcheck.h):
 * ggml's golden bytes, floats and dots, every ISA level against scalar, and
 * ggml's test-quantize-fns round-trip thresholds. The K-quant family checks
 * (tests/kernelcheck_family.h) on this type's blocks:
 *   - saturated blocks (every quant, scale and min at its extreme) whose dot
 *     is known in closed form: the integer sums must be exact (no int16/int32
 *     overflow at any level) and the float result must equal, bit for bit, the
 *     fold documented in kernels/q5_k.c (what the SIMD levels must reproduce);
 *   - vec_dot against the double-precision dot of the dequantized operands on
 *     random multi-block rows (catches any quant/scale mispairing);
 *   - the quantizers do not depend on what the output buffer held before.
 */
#include "tests/kernelcheck_family.h"

/* A q5_K super-block filled with constant bytes, and what every weight of it
 * decodes to: 0xFF scale bytes give scale 63 and min 63 for all eight
 * sub-blocks; the quant is (qs nibble) + 16 * (qh bit): 0xFF/0xFF gives 31,
 * 0x00/0x00 gives 0, qs 0x00 with qh 0xFF gives 16. */
#define FILL(field, value) KC_FILL(block_q5_K, field, value)
static struct kc_kq_saturated_blocks saturated = {QUARRY_TYPE_Q5_K, {
    {{FILL(scales, 0xFF), FILL(qh, 0xFF), FILL(qs, 0xFF)}, {63, 63, 31, 0.5f, 0.25f}},
    {{FILL(scales, 0xFF), FILL(qh, 0x00), FILL(qs, 0x00)}, {63, 63, 0, 3.0f, 1.5f}},
    {{FILL(scales, 0xFF), FILL(qh, 0xFF), FILL(qs, 0x00)}, {63, 63, 16, 65504.0f, 0.0f}},
}};
#undef FILL

int main(void)
{
    const struct CMUnitTest tests[] = {
        KC_STANDARD_TESTS(QUARRY_TYPE_Q5_K),
        KC_KQUANT_TESTS(saturated),
    };
    return TU_RUN_GROUP(tests);
}
