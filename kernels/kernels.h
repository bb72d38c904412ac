/*
 * kernels.h - the traits table: for every tensor type, the functions that
 * convert it to and from float and take dot products against it.
 *
 * The table is filled once (pthread_once) on first use: first with the scalar
 * reference kernels, then overwritten with the vector kernels of the best ISA
 * level this CPU supports (cpuid + xgetbv), newest first. QUARRY_ISA=scalar|
 * avx2|avx512 forces a lower level so every path runs on one machine.
 *
 * Kernel naming, used by every kernel file (T = type name as in ggml):
 *   kernels/T.c          scalar reference: quantize_row_T_ref, dequantize_row_T,
 *                        vec_dot_T_<activation type>; registers itself with
 *                        quarry_kernels_T_scalar(table)
 *   kernels/T_avx2.c     AVX2+FMA+F16C versions, quarry_kernels_T_avx2(table)
 *   kernels/T_avx512.c   AVX-512 (F/BW/VL/DQ/VNNI/BF16), quarry_kernels_T_avx512(table)
 * kernels/kernel_list.h lists which of these exist; registry.c calls them.
 *
 * Conventions: n (elements) is a multiple of the type's block size. vec_dot
 * computes *s = sum_i x[i]*y[i] where x is a row of the weight type and y a row
 * of its vec_dot_type (the activation type: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for
 * Q4_1/Q5_1, Q8_K for the K-quants, F16/BF16/F32 for themselves).
 */
#ifndef QUARRY_KERNELS_H
#define QUARRY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

enum quarry_isa {
    QUARRY_ISA_SCALAR = 0,
    QUARRY_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    QUARRY_ISA_AVX512 = 2, /* AVX-512 F, BW, VL, DQ, VNNI, BF16 */
    QUARRY_ISA_COUNT = 3
};

typedef void (*quarry_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*quarry_from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*quarry_vec_dot_fn)(int n, float *s, const void *x, const void *y);
typedef size_t (*quarry_prepared_size_fn)(int64_t k);
typedef void (*quarry_act_prepare_fn)(int64_t k, const void *y, void *prepared);

struct quarry_type_traits {
    const char *name;        /* NULL for unsupported ids */
    int block_size;
    size_t type_size;
    quarry_to_float_fn to_float;          /* dequantize (NULL for q8_1/q8_K... if absent) */
    quarry_from_float_fn from_float_ref;  /* reference quantizer: ggml's bytes, deterministic */
    quarry_from_float_fn from_float;      /* fast quantizer (activations); may equal the ref */
    quarry_vec_dot_fn vec_dot;            /* row of this type . row of vec_dot_type */
    enum quarry_type vec_dot_type;
    /* Optional (NULL when absent; set by a SIMD level together): a matrix
     * product's activation row (k values of vec_dot_type) rearranged once by
     * act_prepare into act_prepared_size(k) bytes at a 64-byte aligned
     * address, after which vec_dot_prepared(k, s, x, prepared) equals
     * vec_dot(k, s, x, y) bit for bit for every weight row x. It moves the
     * activation-only work of the dot product out of the per-row loop. */
    quarry_prepared_size_fn act_prepared_size;
    quarry_act_prepare_fn act_prepare;
    quarry_vec_dot_fn vec_dot_prepared;
    enum quarry_isa isa;                  /* highest level that supplied a function */
};

/* The process-wide table for the chosen ISA level (initialises on first call).
 * Returns NULL for an unsupported type id. */
const struct quarry_type_traits *quarry_traits(enum quarry_type type);

/* Builds the table for one ISA level (scalar, then each level up to isa) into
 * table[QUARRY_TYPE_COUNT]. Tests and benchmarks use it to compare levels.
 * Returns 0, or QUARRY_EUNSUPPORTED if this CPU cannot run that level. */
int quarry_traits_build(enum quarry_isa isa, struct quarry_type_traits *table);

/* Levels this CPU can run / the level the process table uses. */
enum quarry_isa quarry_isa_detected(void);
enum quarry_isa quarry_isa_chosen(void);
const char *quarry_isa_name(enum quarry_isa isa);
/* Parses "scalar"/"avx2"/"avx512"; -1 when unknown. */
int quarry_isa_from_name(const char *name);
/* Non-NULL when QUARRY_ISA was set to something unusable (message for the user). */
const char *quarry_isa_warning(void);

/* Registration hooks, one per kernel file (see kernel_list.h). */
#define QUARRY_KERNEL(T, LEVEL) void quarry_kernels_##T##_##LEVEL(struct quarry_type_traits *table);
#include "kernel_list.h"
#undef QUARRY_KERNEL

#endif
