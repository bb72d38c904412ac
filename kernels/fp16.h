/*
 * fp16.h - conversions between float and the two 16-bit float formats
 * stored in GGUF files: IEEE binary16 ("f16") and bfloat16 ("bf16").
 *
 * Both conversions round to nearest, ties to even, and give the same bits as
 * ggml (ggml_compute_fp32_to_fp16 / ggml_compute_fp32_to_bf16), so quantized
 * blocks written by quarry match llama.cpp's byte for byte. Plain C, no SIMD:
 * the vector kernels use F16C / AVX-512 BF16 instructions instead.
 */
#ifndef QUARRY_FP16_H
#define QUARRY_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t quarry_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float quarry_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* binary16 -> float, exact (every half is representable as a float). */
static inline float quarry_fp16_to_fp32(uint16_t h)
{
    /* Shift the half into a float's exponent/mantissa, then rescale by
     * 2^-112 (normal numbers) or build denormals with a magic subtraction. */
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & UINT32_C(0x80000000);
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = UINT32_C(0xE0) << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized = quarry_f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = UINT32_C(126) << 23;
    const float magic_bias = 0.5f;
    const float denormalized = quarry_f32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = UINT32_C(1) << 27;
    const uint32_t result = sign |
        (two_w < denormalized_cutoff ? quarry_f32_bits(denormalized) : quarry_f32_bits(normalized));
    return quarry_f32_from_bits(result);
}

/* float -> binary16, round to nearest even; overflow gives inf, NaN stays NaN. */
static inline uint16_t quarry_fp32_to_fp16(float f)
{
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (f < 0 ? -f : f) * scale_to_inf;
    base *= scale_to_zero;
    const uint32_t w = quarry_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & UINT32_C(0x80000000);
    uint32_t bias = shl1_w & UINT32_C(0xFF000000);
    if (bias < UINT32_C(0x71000000))
        bias = UINT32_C(0x71000000);
    base = quarry_f32_from_bits((bias >> 1) + UINT32_C(0x07800000)) + base;
    const uint32_t bits = quarry_f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
    const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

/* bfloat16 -> float, exact. */
static inline float quarry_bf16_to_fp32(uint16_t h)
{
    return quarry_f32_from_bits((uint32_t)h << 16);
}

/* float -> bfloat16, round to nearest even; NaN becomes a quiet NaN. */
static inline uint16_t quarry_fp32_to_bf16(float f)
{
    const uint32_t u = quarry_f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

#endif
