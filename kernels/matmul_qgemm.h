/*
 * matmul_qgemm.h - the quantized GEMM behind matmul.c's prompt path (internal
 * to kernels/matmul*.c; the engine calls quarry_matmul()).
 *
 * With many activation rows, the vec_dot path unpacks every weight block once
 * per activation row. The qgemm unpacks 16 weight rows at a time into a
 * "strip" once per product and then multiplies it with every activation row:
 *
 *   strip (16 weight rows, one (super-)block after the other):
 *     quants  the weights as unsigned bytes u (q4_0: the code 0..15; q8_0:
 *             q + 128; q6_K: 0..63; ...), interleaved so that one 64-byte
 *             vector holds 4 consecutive weights of each of the 16 rows
 *     params  per row and block, in 16-lane vectors: the fp16 scales as
 *             floats, the K-quants' integer sub-block scales, and the
 *             coefficients of the correction sum (the offset of u from the
 *             signed value, or the K-quant mins) as int16 pairs
 *   kernel   one VPDPBUSD (u8 x s8, 4 products per int32 lane) per 4
 *             weights, the activation dword broadcast: 16 weight rows x 1
 *             activation row per instruction, no horizontal sums.
 *
 * The activations are the ones the vec_dot path uses (the weight type's
 * vec_dot_type, quantized by the same from_float), the integer sums are exact,
 * and every float operation is the one the type's scalar vec_dot documents,
 * in the same order (lanes = weight rows; elementwise operations round
 * identically): Y is bit-identical to the vec_dot path, so where the
 * crossover lies changes no result.
 *
 * AVX-512 F/BW/VNNI only (kernels/matmul_qgemm_avx512.c): callers check the
 * ISA level (quarry_isa_detected() >= QUARRY_ISA_AVX512) and
 * quarry_qgemm_supported() before calling any of the functions below.
 */
#ifndef QUARRY_MATMUL_QGEMM_H
#define QUARRY_MATMUL_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

#define QUARRY_QGEMM_ROWS 16 /* weight rows per strip */

/* Whether the qgemm has kernels for weights of type t. (Inline: callers
 * ask before they know the CPU can run matmul_qgemm_avx512.c's code.) */
static inline int quarry_qgemm_supported(enum quarry_type t)
{
    switch (t) {
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q5_1:
    case QUARRY_TYPE_Q8_0:
    case QUARRY_TYPE_Q2_K:
    case QUARRY_TYPE_Q3_K:
    case QUARRY_TYPE_Q4_K:
    case QUARRY_TYPE_Q5_K:
    case QUARRY_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

/* Bytes of one strip of 16 rows of k weights of type t (k a multiple of the
 * block size); 0 when t is not supported. */
size_t quarry_qgemm_strip_bytes(enum quarry_type t, int64_t k);

/* The legacy types' kernels read their activations repacked (blocks in the
 * strip's order, scales as floats, the zero-point or min term precomputed):
 * act_bytes per row (0 for the K-quants, which read their q8_K rows as they
 * are), written by quarry_qgemm_act from a quantized row. */
size_t quarry_qgemm_act_bytes(enum quarry_type t, int64_t k);
void quarry_qgemm_act(enum quarry_type t, const void *xq_row, int64_t k, void *act_row);

/* Packs weight rows 0 .. rows-1 (rows <= 16; the missing lanes are zero) of
 * w (row stride w_row_bytes) into strip. */
void quarry_qgemm_pack(enum quarry_type t, const uint8_t *w, size_t w_row_bytes, int rows,
                       int64_t k, void *strip);

/* Y[i][0 .. rows) = dot(W row, activation row i) for i < m: act holds m rows
 * (stride act_row_bytes), repacked by quarry_qgemm_act for the legacy types,
 * the vec_dot type's rows (q8_K) otherwise; y points at Y[0][first row of the
 * strip] (stride ldy). */
void quarry_qgemm_multiply(enum quarry_type t, const void *strip, int rows, int64_t k,
                           const uint8_t *act, size_t act_row_bytes, int64_t m, float *y,
                           int64_t ldy);

#endif
